"""MAP-Elites and CVT-MAP-Elites under the ``Strategy`` contract.

MAP-Elites (Mouret & Clune, "Illuminating search spaces by mapping elites",
arXiv:1504.04909, 2015), with the variation operators of Vassiliades & Mouret,
"Discovering the Elite Hypervolume by Leveraging Interspecies Correlation",
GECCO 2018 (arXiv:1804.03906)::

    archive A (a grid, or a CVT: Vassiliades et al., IEEE TEVC 2018), empty
    for t = 0, 1, 2, ...
        for i = 1..popsize
            if A is empty:   x_i, y_i = x0
            else:            x_i, y_i ~ uniform over the elites of A (with replacement)
            iso_line:  child_i = x_i + iso_sigma N(0, I) + line_sigma N(0, 1) (y_i - x_i)
            gaussian:  child_i = x_i + sigma N(0, I)
            (clipped to ``clip`` = (low, high) if given)
        evaluate: fitness f_i, descriptor b_i
        insert the batch in A (each cell keeps its best; see neuroevo.qd.archive)

Hyperparameters are named as pyribs names them (``IsoLineEmitter``'s
``iso_sigma`` and ``line_sigma``, ``GaussianEmitter``'s ``sigma``), with its
defaults; pyribs' emitters each sample their batch uniformly from the same
archive, so ``E`` emitters of batch ``b`` are one population of ``E * b`` here.

Genotypes are the dense children (f[popsize, d]); ``decode`` unravels one into
x0's structure. The state's ``archive`` is a :class:`~neuroevo.qd.Repertoire`
(``fitness``, ``occupied``, ``descriptors``, ``solutions``); ``metrics`` holds the QD
metrics of the archive after each ``tell`` (``qd_score``, ``coverage``,
``max_fitness``, ``mean_fitness``, ``elites``), which ``ne.evolve`` logs;
``best_solution``/``best_fitness`` are the best member ever evaluated.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo import rng
from neuroevo.qd.archive import Archive, Repertoire, flat_solutions, sample_cells
from neuroevo.qd.configs import archive_from_config
from neuroevo.qd.cvt import CVTArchive
from neuroevo.strategy import (
    Strategy,
    check_fitness,
    check_popsize,
    check_x0,
    population_size,
    static_int,
    unravel_like,
    update_best_member,
)

PyTree = Any
VARIATIONS = ("iso_line", "gaussian")


class MAPElitesState(NamedTuple):
    archive: Repertoire
    x0: jax.Array  # flat start: the parent while the archive is empty
    metrics: dict[str, jax.Array]  # QD metrics of ``archive`` (``ne.evolve`` logs them)
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def make_archive(archive: Archive | Mapping | None, descriptor_dim: int | None) -> Archive:
    """The strategy's archive: given, built from a table, or the default grid of ``descriptor_dim``
    dimensions; a ``descriptor_dim`` that disagrees with the archive raises ``ValueError``."""
    if descriptor_dim is not None:
        static_int("descriptor_dim", descriptor_dim, 1)
    spec = archive_from_config(archive, descriptor_dim or 2)
    if descriptor_dim is not None and spec.descriptor_dim != descriptor_dim:
        raise ValueError(
            f"descriptor_dim={descriptor_dim} but the archive has {spec.descriptor_dim} descriptor dimensions"
        )
    return spec


def qd_start(archive: Archive, x0: PyTree) -> dict[str, Any]:
    """The fields every QD state starts with: an empty repertoire, its metrics, best and generation."""
    check_x0(x0)
    repertoire = archive.empty(x0)
    return dict(
        archive=repertoire,
        metrics=archive.metrics(repertoire),
        best_solution=jax.tree_util.tree_map(jnp.asarray, x0),
        best_fitness=jnp.array(-jnp.inf, jnp.float32),
        generation=jnp.zeros((), jnp.int32),
    )


def qd_step(archive: Archive, decode: Callable, state: Any, genotypes: Any, fitness, descriptors, who: str):
    """Check a ``tell``'s inputs, insert the batch and update the common fields.

    Returns ``(fields, insertion, fitness, descriptors)``; ``fields`` holds the new
    ``archive``, ``metrics``, ``best_solution``, ``best_fitness`` and ``generation``.
    """
    n = population_size(genotypes)
    fitness = check_fitness(fitness, n)
    descriptors = archive.check_descriptors(descriptors, n, who)
    members = jax.vmap(decode, in_axes=(None, 0))(state, genotypes)
    repertoire, insertion = archive.insert(state.archive, members, fitness, descriptors)
    best_solution, best_fitness = update_best_member(decode, state, genotypes, fitness)
    fields = dict(
        archive=repertoire,
        metrics=archive.metrics(repertoire),
        best_solution=best_solution,
        best_fitness=best_fitness,
        generation=state.generation + 1,
    )
    return fields, insertion, fitness, descriptors


def gaussian(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """Standard normals from the cheap counter-based hash stream (:func:`neuroevo.rng.hash_bits`)."""
    if jnp.dtype(dtype) != jnp.float32:
        return jax.random.normal(key, shape, dtype)
    return rng.normal_from_words(rng.hash_bits(key, math.prod(shape))).reshape(shape)


def materialized(x: jax.Array) -> jax.Array:
    """``x`` itself, computed apart: XLA fuses elementwise work into its consumers, and a consumer
    that also gathers (the elites) then runs it unvectorised, at 2-3x the cost. A reduction (here
    ``max(x, -inf)``, which XLA does not simplify away) is never fused into its consumer."""
    return jnp.max(jnp.stack([x, jnp.full_like(x, -jnp.inf)], axis=-1), axis=-1)


def iso_line(key: jax.Array, parents: jax.Array, others: jax.Array, iso_sigma, line_sigma) -> jax.Array:
    """Iso+LineDD (Vassiliades & Mouret 2018): ``x + iso_sigma N(0, I) + line_sigma N(0, 1) (y - x)``."""
    k_iso, k_line = jax.random.split(key)
    iso = materialized(gaussian(k_iso, parents.shape, parents.dtype))
    line = materialized(gaussian(k_line, (parents.shape[0], 1), parents.dtype))
    return (
        parents
        + jnp.asarray(iso_sigma, parents.dtype) * iso
        + jnp.asarray(line_sigma, parents.dtype) * line * (others - parents)
    )


def map_elites(
    popsize: int = 64,
    archive: Archive | Mapping | None = None,
    variation: str = "iso_line",
    iso_sigma: float = 0.01,
    line_sigma: float = 0.2,
    sigma: float = 0.1,
    clip: tuple[float, float] | None = None,
    descriptor_dim: int | None = None,
) -> Strategy:
    """Build MAP-Elites (see the module docstring).

    Args:
      popsize: children per generation (static); pyribs' ``E`` emitters of batch ``b`` are ``E * b``.
      archive: a :class:`~neuroevo.qd.GridArchive` or :class:`~neuroevo.qd.CVTArchive`, a table
        (``{"cells": [50, 50], "bounds": [[-1, 1], [-1, 1]]}``), or None: a grid of about 4096
        cells over ``[-1, 1]`` in each of ``descriptor_dim`` dimensions.
      variation: ``"iso_line"`` (Iso+LineDD) or ``"gaussian"``.
      iso_sigma, line_sigma: Iso+LineDD's step sizes (traceable; pyribs' defaults).
      sigma: the Gaussian variation's step size (traceable).
      clip: ``(low, high)``: children are clipped to this box (pyribs' emitter ``bounds``).
      descriptor_dim: descriptor length (static; default the archive's, 2 for the default archive).
    """
    check_popsize(popsize, minimum=1)
    if variation not in VARIATIONS:
        raise ValueError(f"unknown variation {variation!r}; valid: {list(VARIATIONS)}")
    spec = make_archive(archive, descriptor_dim)

    def init(key: jax.Array, x0: PyTree) -> MAPElitesState:
        del key
        flat, _ = check_x0(x0)
        return MAPElitesState(x0=flat, **qd_start(spec, x0))

    def ask(key: jax.Array, state: MAPElitesState) -> tuple[jax.Array, MAPElitesState]:
        k_cells, k_vary = jax.random.split(key)
        cells = sample_cells(k_cells, state.archive, 2 * popsize)
        any_elite = jnp.any(state.archive.occupied)
        chosen = flat_solutions(state.archive, cells).astype(state.x0.dtype)
        chosen = jnp.where(any_elite, chosen, state.x0[None, :])
        parents, others = chosen[:popsize], chosen[popsize:]
        if variation == "iso_line":
            children = iso_line(k_vary, parents, others, iso_sigma, line_sigma)
        else:
            noise = materialized(gaussian(k_vary, parents.shape, parents.dtype))
            children = parents + jnp.asarray(sigma, parents.dtype) * noise
        if clip is not None:
            children = jnp.clip(children, clip[0], clip[1])
        return children, state

    def decode(state: MAPElitesState, genotype: jax.Array) -> PyTree:
        return unravel_like(state.best_solution)(genotype)

    def tell(key, state: MAPElitesState, genotypes: jax.Array, fitness, descriptors=None) -> MAPElitesState:
        del key
        fields, _, _, _ = qd_step(spec, decode, state, genotypes, fitness, descriptors, "MAP-Elites")
        return MAPElitesState(x0=state.x0, **fields)

    return Strategy(init, ask, tell, decode)


@functools.lru_cache(maxsize=8)
def default_cvt(cells: int, dim: int) -> CVTArchive:
    """The default CVT archive: ``cells`` centroids over ``[-1, 1]^dim`` (k-means once per process)."""
    return CVTArchive(cells=cells, bounds=((-1.0, 1.0),) * dim)


def cvt_archive(archive: Archive | Mapping | None, cells: int, descriptor_dim: int | None) -> CVTArchive:
    """``cvt_map_elites``'s archive: given, from a table, or the default of ``cells`` centroids."""
    if archive is None:
        dim = 2 if descriptor_dim is None else static_int("descriptor_dim", descriptor_dim, 1)
        archive = default_cvt(static_int("cells", cells, 1), dim)
    elif isinstance(archive, Mapping) and "kind" not in archive:
        archive = {"kind": "cvt", **archive}
    spec = make_archive(archive, descriptor_dim)
    if not isinstance(spec, CVTArchive):
        raise ValueError(f"cvt_map_elites needs a CVTArchive, got {spec!r}: use map_elites for a grid")
    return spec


def archive_for(name: str, hyperparams: Mapping[str, Any]) -> Archive:
    """The archive ``ne.strategies.make(name, **hyperparams)`` builds (to draw or save a repertoire)."""
    dim = hyperparams.get("descriptor_dim")
    if name == "cvt_map_elites":
        return cvt_archive(hyperparams.get("archive"), hyperparams.get("cells", 1000), dim)
    return make_archive(hyperparams.get("archive"), dim)


def cvt_map_elites(
    popsize: int = 64,
    archive: Archive | Mapping | None = None,
    cells: int = 1000,
    variation: str = "iso_line",
    iso_sigma: float = 0.01,
    line_sigma: float = 0.2,
    sigma: float = 0.1,
    clip: tuple[float, float] | None = None,
    descriptor_dim: int | None = None,
) -> Strategy:
    """CVT-MAP-Elites (Vassiliades, Chatzilygeroudis & Mouret 2018): MAP-Elites on a CVT archive.

    Args:
      archive: a :class:`~neuroevo.qd.CVTArchive` (or its table); None builds one of ``cells``
        centroids (k-means on device) over ``[-1, 1]`` in each of ``descriptor_dim`` dimensions.
      cells: centroids of the default archive (static).
      The others: as :func:`map_elites`.
    """
    spec = cvt_archive(archive, cells, descriptor_dim)
    return map_elites(popsize, spec, variation, iso_sigma, line_sigma, sigma, clip, descriptor_dim)


# Their strategies need behaviour descriptors in ``tell`` (ne.strategies.needs_descriptors).
map_elites.needs_descriptors = True
cvt_map_elites.needs_descriptors = True
