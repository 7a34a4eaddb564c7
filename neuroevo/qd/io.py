"""Export and reload a repertoire: NumPy ``.npz`` (everything) or CSV (one row per elite).

``save(path, repertoire, archive)`` writes ``fitness``, ``occupied``,
``descriptors``, ``filled``, one ``solution_<i>`` array per leaf of the solutions pytree
(in ``jax.tree_util`` leaf order, each with a leading n_cells axis; their key
paths in ``solution_paths``) and the archive's configuration (JSON in
``archive``). ``load(path, like)`` gives back ``(Repertoire, Archive)``: the
solutions rebuilt in the structure of ``like`` (e.g. ``x0``), or, without it,
the single array of a one-leaf save.

``to_csv`` writes the elites only: ``cell, fitness, descriptor_0.., solution_0..``
(solutions ravelled as ``jax.flatten_util.ravel_pytree`` ravels them);
``from_csv(path, archive, like)`` puts them back in their cells.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from neuroevo.qd.archive import Archive, Repertoire, filled_order
from neuroevo.qd.configs import archive_from_config

PyTree = Any


def save(path: str, repertoire: Repertoire, archive: Archive) -> None:
    """Write ``repertoire`` (and ``archive``'s configuration) to ``path`` (.npz), atomically."""
    leaves_with_paths = jax.tree_util.tree_leaves_with_path(repertoire.solutions)
    arrays = {
        "fitness": np.asarray(repertoire.fitness),
        "occupied": np.asarray(repertoire.occupied),
        "descriptors": np.asarray(repertoire.descriptors),
        "filled": np.asarray(repertoire.filled),
        "solution_paths": np.array([jax.tree_util.keystr(p) for p, _ in leaves_with_paths]),
        "archive": np.array(json.dumps(archive.config())),
    }
    for i, (_, leaf) in enumerate(leaves_with_paths):
        arrays[f"solution_{i}"] = np.asarray(leaf)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load(path: str, like: PyTree = None) -> tuple[Repertoire, Archive]:
    """``(repertoire, archive)`` from a :func:`save` file; solutions in the structure of ``like``."""
    with np.load(path, allow_pickle=False) as data:
        archive = archive_from_config(json.loads(str(data["archive"])))
        n_leaves = len(data["solution_paths"])
        leaves = [jnp.asarray(data[f"solution_{i}"]) for i in range(n_leaves)]
        if like is None:
            if n_leaves != 1:
                raise ValueError(
                    f"{path} holds a pytree of {n_leaves} leaves: pass like= (e.g. x0) to rebuild it"
                )
            solutions = leaves[0]
        else:
            treedef = jax.tree_util.tree_structure(like)
            if treedef.num_leaves != n_leaves:
                raise ValueError(f"{path} holds {n_leaves} solution leaves but like has {treedef.num_leaves}")
            solutions = jax.tree_util.tree_unflatten(treedef, leaves)
        repertoire = Repertoire(
            fitness=jnp.asarray(data["fitness"]),
            occupied=jnp.asarray(data["occupied"]),
            descriptors=jnp.asarray(data["descriptors"]),
            solutions=solutions,
            filled=jnp.asarray(data["filled"]),
        )
    return repertoire, archive


def to_csv(path: str, repertoire: Repertoire) -> int:
    """Write the elites (occupied cells) as CSV rows; returns how many."""
    occupied = np.asarray(repertoire.occupied)
    cells = np.nonzero(occupied)[0]
    flat = np.asarray(jax.vmap(lambda s: ravel_pytree(s)[0])(repertoire.solutions))[cells]
    descriptors = np.asarray(repertoire.descriptors)[cells]
    fitness = np.asarray(repertoire.fitness)[cells]
    header = (
        ["cell", "fitness"]
        + [f"descriptor_{j}" for j in range(descriptors.shape[1])]
        + [f"solution_{j}" for j in range(flat.shape[1])]
    )
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i, cell in enumerate(cells):
            writer.writerow([int(cell), repr(float(fitness[i]))] + [repr(float(v)) for v in descriptors[i]]
                            + [repr(float(v)) for v in flat[i]])  # fmt: skip
    os.replace(tmp, path)
    return len(cells)


def from_csv(path: str, archive: Archive, like: PyTree) -> Repertoire:
    """The repertoire of a :func:`to_csv` file, in ``archive``'s cells, solutions shaped like ``like``."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    k = sum(1 for h in header if h.startswith("descriptor_"))
    if k != archive.descriptor_dim:
        raise ValueError(
            f"{path} has {k} descriptor columns but the archive has {archive.descriptor_dim} dimensions"
        )
    values = np.array([[float(v) for v in row] for row in body], np.float64).reshape(len(body), len(header))
    cells = values[:, 0].astype(np.int64)
    if np.any((cells < 0) | (cells >= archive.n_cells)):
        raise ValueError(f"{path} has cells outside [0, {archive.n_cells}) for this archive")
    flat_like, unravel = ravel_pytree(like)
    d = flat_like.shape[0]
    if values.shape[1] != 2 + k + d:
        raise ValueError(f"{path} has {values.shape[1] - 2 - k} solution columns but like has {d} parameters")
    repertoire = archive.empty(like)
    index = jnp.asarray(cells, jnp.int32)
    solutions = jax.vmap(unravel)(jnp.asarray(values[:, 2 + k :], flat_like.dtype))
    occupied = repertoire.occupied.at[index].set(True)
    return Repertoire(
        fitness=repertoire.fitness.at[index].set(jnp.asarray(values[:, 1], jnp.float32)),
        occupied=occupied,
        descriptors=repertoire.descriptors.at[index].set(jnp.asarray(values[:, 2 : 2 + k], jnp.float32)),
        solutions=jax.tree_util.tree_map(lambda t, s: t.at[index].set(s), repertoire.solutions, solutions),
        filled=filled_order(occupied),
    )
