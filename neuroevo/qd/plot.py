"""The archive as a heat map (PNG): each cell coloured by its elite's fitness.

A 2-D grid is drawn cell by cell (empty cells blank); a grid of more
dimensions is projected on its first two, each drawn cell showing the best elite
over the others; a 1-D grid is a single row. A CVT archive is drawn as its
centroids (the first two coordinates), coloured where they hold an elite.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroevo.qd.archive import Archive, GridArchive, Repertoire


def heatmap(
    repertoire: Repertoire,
    archive: Archive,
    path: str,
    *,
    title: str = "",
    vmin: float | None = None,
    vmax: float | None = None,
    extra: Any = None,
) -> None:
    """Save ``repertoire`` as a heat map PNG at ``path``.

    ``vmin``/``vmax`` fix the colour range (default: the elites' range);
    ``extra(ax)`` draws over the cells (e.g. the maze's walls) and may adjust the axes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fitness = np.where(np.asarray(repertoire.occupied), np.asarray(repertoire.fitness), np.nan)
    finite = fitness[np.isfinite(fitness)]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=90)
    bounds = archive.bounds if archive.descriptor_dim >= 2 else archive.bounds + ((0.0, 1.0),)
    (x0, x1), (y0, y1) = bounds[0], bounds[1]
    if isinstance(archive, GridArchive):
        grid = fitness.reshape(archive.cells)
        if grid.ndim == 1:
            grid = grid[:, None]
        elif grid.ndim > 2:  # the best elite over the other dimensions
            flat = grid.reshape(grid.shape[0], grid.shape[1], -1)
            grid = np.max(np.nan_to_num(flat, nan=-np.inf), axis=-1)
            grid[np.isneginf(grid)] = np.nan
        image = ax.imshow(
            grid.T,
            origin="lower",
            extent=(x0, x1, y0, y1),
            aspect="auto",
            cmap="viridis",
            vmin=lo,
            vmax=hi,
            interpolation="nearest",
        )
    else:
        centers = archive.cell_centers()
        ys = centers[:, 1] if centers.shape[1] > 1 else np.full(len(centers), 0.5)
        empty = np.isnan(fitness)
        ax.scatter(centers[empty, 0], ys[empty], s=4, c="lightgrey", lw=0)
        image = ax.scatter(
            centers[~empty, 0], ys[~empty], s=8, c=fitness[~empty], cmap="viridis", vmin=lo, vmax=hi
        )
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    if extra is not None:
        extra(ax)
    fig.colorbar(image, ax=ax, label="fitness")
    coverage = float(np.mean(np.asarray(repertoire.occupied)))
    ax.set_title(f"{title}  (coverage {coverage:.1%})".strip(), fontsize=9)
    ax.set_xlabel("descriptor 0")
    ax.set_ylabel("descriptor 1" if archive.descriptor_dim > 1 else "")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
