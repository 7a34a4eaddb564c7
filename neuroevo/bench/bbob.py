"""BBOB campaigns: a strategy on every (function, instance) of each dimension (``ne.bench``).

``bbob_campaign(strategy, dimensions, instances, functions, budget_multiplier, out)``
runs, per dimension, ONE compiled program in float64: the strategy is vmapped
over all (function, instance) problems of the dimension; the population of the
problems of function ``f`` is evaluated by ``f``'s evaluator vmapped over its
instances (instance data stacked as arguments), so all 24 functions share the
program without evaluating one another. The problems are a task whose state is
the COCO record (:func:`neuroevo.bench.program.coco_task`); generations run on
the device in blocks of the engine's loop (:func:`neuroevo.engine.loop.block_runner`)
and the host sees only the progress display (the engine's) and the stop check
between blocks.

Suites: ``suite="bbob"`` (f1-f24) or ``"bbob-noisy"`` (f101-f130, ``ne.bbob``'s
noisy functions): the strategy sees the noisy f - fopt (noise drawn from the
campaign's key), while the hits, targets and stop test use the noise-free value,
which COCO's ``bbob-noisy`` observer records (its "best noise-free fitness"
column; the measured columns hold the noisy values).

Strategies: any registered strategy that searches a flat real vector (``cma_es``,
``snes``, ``openai_es``, ``evosax:<Name>`` ...). Those that need behaviour
descriptors (``ns_*``) or another kind of genotype (``neat``) are refused up
front with a ``ValueError``.

Protocol (COCO's): x0 is uniform in ``[-4, 4]^d`` per problem (seeded);
evaluations are counted in order over the live members of each generation (the
first ``live.count(state)`` with the strategy's ``live`` capability, all
members otherwise), so the evaluation at which a target is first hit is exact.
A problem ends when ``f - fopt <= 1e-8`` or when its budget ``budget_multiplier
* d`` is spent. A strategy with restarts (a ``restarts`` hyperparameter: CMA-ES,
sep-CMA-ES) restarts with ``restarts="ipop"`` (default; ``"bipop"`` possible)
from a uniform point of ``[-4, 4]^d`` (``restart_box``), and when none is left
begins again from the first popsize (``cycle=True``); ``max_restarts`` defaults
to the largest ``k`` with ``popsize * 2**k * 10 d <= budget`` (a larger
population could not run 10 d generations; the static population capacity is
``popsize * 2**k``). A strategy whose state stops (``state.stop``) with budget
left begins again from a fresh state (a new uniform x0), so every problem runs
until its target or budget. Other strategies get ``popsize = max(8, 4 + 3 ln
d, even)`` unless given.

Cost: with the strategy's ``live`` capability (:class:`neuroevo.strategy.Live`)
a generation samples, evaluates and recombines only the chunks of ``popsize``
members that some unfinished problem has live (evaluation per function), not the
whole capacity, and draws normals only for the live members of unfinished problems
(one pool per generation, :func:`neuroevo.bench.program.live_normals`); the
program of a dimension ends when all its problems are done. On the CPU it is
compiled with :data:`neuroevo.bench.parallel.CPU_COMPILE_OPTIONS` (about twice as
fast to compile). On a Linux CPU with several cores (``processes=None``, the
default) each dimension compiles and runs in its own process, all at once, the
largest at the highest priority, and each dimension's files are written as soon as
it is done; otherwise (a GPU, or ``processes=False``) the dimensions compile in
parallel threads and each runs as soon as it is compiled, one at a time
(:mod:`neuroevo.bench.parallel`).

Modules: :mod:`~neuroevo.bench.program` (the compiled program of a dimension and
its task), :mod:`~neuroevo.bench.record` (the on-device COCO record),
:mod:`~neuroevo.bench.results` (targets, ERT, results),
:mod:`~neuroevo.bench.coco_files` (the files), :mod:`~neuroevo.bench.parallel`
and :mod:`~neuroevo.bench.worker` (threads and processes).

Files written to ``out``:
- COCO's observer format (``bbobexp_f<F>.info``, its ``suite`` and ``logger`` the
  suite's name, ``data_f<F>/bbobexp_f<F>_DIM<D>.dat`` and ``.tdat``), which
  ``cocopp`` post-processes. The ``.dat`` holds a line at the first evaluation, at
  each first crossing of a ``10**(k/5)`` precision and at the last evaluation; the
  ``.tdat`` the best-so-far at COCO's fixed evaluation counts. Columns:
  evaluations, 0, best noise-free f - fopt, measured f, best measured f (no x).
- ``campaign.json`` (what campaign this is, hits of the 51 targets ``1e2 .. 1e-8``
  per problem), ``ert_d<D>.md`` / ``.csv`` (ERT for targets ``1e1 .. 1e-8``),
  ``ecdf_d<D>.png``.

``out`` must be absent, empty, or hold the same campaign (a rerun replaces its files):
the files of another campaign would stay beside this one's, and cocopp would read
them as one experiment. Anything else is refused with a ``ValueError``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from neuroevo.bench import coco_files, parallel
from neuroevo.bench.coco_files import plot_ecdf, write, write_dimension, write_index
from neuroevo.bench.program import Job
from neuroevo.bench.results import (
    ECDF_TARGETS,
    ERT_TARGETS,
    LEVELS,
    PRECISION,
    SUITES,
    CampaignResult,
    DimensionResult,
    ert,
    function_name,
    tdat_evaluations,
)
from neuroevo.strategies.cma_steps import default_popsize

__all__ = [
    "ECDF_TARGETS",
    "ERT_TARGETS",
    "LEVELS",
    "PRECISION",
    "SUITES",
    "CampaignResult",
    "DimensionResult",
    "bbob_campaign",
    "campaign_hyperparameters",
    "default_max_restarts",
    "ert",
    "function_name",
    "parse_range",
    "plot_ecdf",
    "tdat_evaluations",
    "write",
    "write_dimension",
    "write_index",
]


# --------------------------------------------------------------------------- #
# input checks


def _ints(values: Iterable[int], what: str, low: int, high: int | None = None) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise ValueError(f"{what}: expected integers, got {v!r}")
        if v < low or (high is not None and v > high):
            rng = f"{low}..{high}" if high is not None else f">= {low}"
            raise ValueError(f"{what} must be {rng}, got {v}")
        out.append(int(v))
    if not out:
        raise ValueError(f"{what}: empty")
    return out


def parse_range(text: str, what: str = "value") -> list[int]:
    """'1-15', '2,3,5', '1-5,8' -> list of ints; bad syntax raises ValueError."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, "")
                lo, hi = int(lo), int(hi)
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"bad {what} range {text!r}: use e.g. 1-15 or 2,3,5") from None
    return out


# --------------------------------------------------------------------------- #
# the strategy of a campaign


def min_generations(dim: int) -> int:
    """Generations a restart regime must be able to run within the budget to be useful: ``10 d``."""
    return 10 * dim


def default_max_restarts(budget: int, base: int, dim: int) -> int:
    """The largest k <= 9 with ``base * 2**k * min_generations(dim) <= budget`` (0 if none).

    A run of population ``base * 2**k`` must fit ``10 d`` generations in the
    budget; larger regimes could not even adapt their step size (and would only
    make every generation of the vmapped program cost more).
    """
    g = min_generations(dim)
    return max(0, min(9, int(math.floor(math.log2(max(budget / (g * base), 1))))))


def campaign_hyperparameters(name: str, dim: int, budget: int, hyperparameters: dict) -> dict:
    """``hyperparameters`` with the campaign's defaults for strategy ``name`` filled in.

    A strategy with a ``restarts`` hyperparameter gets COCO's protocol: IPOP restarts
    from a uniform point of ``[-4, 4]^d``, again from the first popsize when none is
    left (``cycle``), ``max_restarts`` from the budget (:func:`default_max_restarts`).
    Any other gets ``popsize = max(8, 4 + 3 ln d)`` rounded up to even, unless given.
    """
    from neuroevo import strategies

    valid = strategies.hyperparameters(name)
    hp = dict(hyperparameters)
    if "restarts" in valid:
        hp.setdefault("restarts", "ipop")
        if hp["restarts"] is not None:
            defaults = {"restart_box": (-4.0, 4.0), "cycle": True}
            base = hp.get("popsize") or default_popsize(dim)
            defaults["max_restarts"] = default_max_restarts(budget, base, dim)
            for k, v in defaults.items():
                if k in valid:
                    hp.setdefault(k, v)
    elif hp.get("popsize") is None:
        hp["popsize"] = max(8, 2 * ((default_popsize(dim) + 1) // 2))
    return hp


def check_strategy(name: str, dim: int, hyperparameters: dict) -> None:
    """``ValueError`` unless strategy ``name`` can run a BBOB campaign: it needs no behaviour
    descriptors, and its members are flat real vectors of length ``dim`` (it is built with
    ``hyperparameters`` and traced abstractly: one ``init``, ``ask`` and ``decode``)."""
    import jax
    import jax.numpy as jnp

    from neuroevo import strategies

    if strategies.needs_descriptors(name):
        raise ValueError(
            f"strategy {name!r} needs behaviour descriptors (novelty search), which BBOB problems "
            "do not have: use a strategy that searches a flat real vector (e.g. cma_es, snes, openai_es)"
        )
    strategy = strategies.make(name, **hyperparameters)  # unknown hyperparameters raise here

    def member():
        key = jax.random.key(0)
        state = strategy.init(key, jnp.zeros((dim,)))
        genotypes, state = strategy.ask(key, state)
        return strategy.decode(state, jax.tree_util.tree_map(lambda a: a[0], genotypes))

    try:
        shape = jax.eval_shape(member)
    except Exception as e:  # noqa: BLE001  (any failure means: not a flat real vector)
        raise ValueError(
            f"strategy {name!r} cannot run a BBOB campaign: it does not search a flat real vector "
            f"of length {dim} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    ok = isinstance(shape, jax.ShapeDtypeStruct) and shape.shape == (dim,)
    if not ok or not jnp.issubdtype(shape.dtype, jnp.floating):
        raise ValueError(
            f"strategy {name!r} cannot run a BBOB campaign: its members are {shape}, "
            f"not flat real vectors of length {dim}"
        )


# --------------------------------------------------------------------------- #
# public


def bbob_campaign(
    strategy: str = "cma_es",
    dimensions: Sequence[int] = (2, 3, 5),
    instances: Iterable[int] = range(1, 16),
    functions: Iterable[int] | None = None,
    budget_multiplier: float = 1000,
    out: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    block: int = 100,
    suite: str = "bbob",
    processes: bool | None = None,
    **hyperparameters,
) -> CampaignResult:
    """Run ``strategy`` on every (function, instance) of each dimension; write COCO data and a summary.

    Args:
      strategy: a registered strategy that searches a flat real vector (see the module
        docstring); ``hyperparameters`` go to it (the campaign fills in its defaults).
      dimensions, instances, functions: the problems; ``functions`` defaults to all of
        the suite's.
      budget_multiplier: a problem's budget is ``budget_multiplier * d`` evaluations.
      out: write the COCO files, ``campaign.json``, ERT tables and ECDF plots here
        (absent, empty, or holding the same campaign; else ``ValueError``).
      seed: the campaign's seed (x0, samples, noise).
      progress: draw a progress bar per dimension.
      block: generations per compiled block (the host checks for the end between blocks).
      suite: ``"bbob"`` (functions 1-24) or ``"bbob-noisy"`` (101-130: the strategy sees
        the noisy values, the records and targets use the noise-free ones, as COCO's).
      processes: one process per dimension (None: on Linux when the backend is the CPU
        and there are several cores and several dimensions; the results are the same
        either way).

    Returns a :class:`CampaignResult` (``result.dimensions[d].hit_evals``: the evaluation
    at which each problem first reached each of ``LEVELS``). Bad input raises ``ValueError``
    before anything is compiled or written.
    """
    from neuroevo import strategies

    if strategy not in strategies.names():
        raise ValueError(f"unknown strategy {strategy!r}; valid names: {strategies.names()}")
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; valid suites: {list(SUITES)}")
    fids = SUITES[suite]
    dimensions = _ints(dimensions, "dimension", 2)
    instances = _ints(instances, "instance", 1)
    functions = _ints(fids if functions is None else functions, f"{suite} function id", fids[0], fids[-1])
    if not budget_multiplier > 0:
        raise ValueError(f"budget_multiplier must be > 0, got {budget_multiplier!r}")
    budgets = {dim: max(1, int(budget_multiplier * dim)) for dim in dimensions}
    jobs = {
        dim: Job(
            strategy=strategy,
            dimension=dim,
            functions=functions,
            instances=instances,
            budget=budgets[dim],
            seed=seed,
            hyperparameters=campaign_hyperparameters(strategy, dim, budgets[dim], hyperparameters),
            block=block,
        )
        for dim in dimensions
    }
    for job in jobs.values():  # bad hyperparameters raise here, before any process starts
        strategies.make(strategy, **job.hyperparameters)
    smallest = jobs[min(dimensions)]
    check_strategy(strategy, smallest.dimension, smallest.hyperparameters)
    campaign = coco_files.identity(strategy, suite, functions, instances, budgets, hyperparameters)
    if out is not None:
        coco_files.check_out(out, campaign)
    if processes is None:  # several CPU cores and dimensions (on Linux): one process each
        linux = hasattr(os, "sched_getaffinity") and hasattr(os, "fork")
        cores = len(os.sched_getaffinity(0)) if linux else 1
        processes = linux and len(jobs) > 1 and cores > 1 and parallel.cpu_backend()
    elif processes and not hasattr(os, "sched_getaffinity"):
        raise ValueError("processes=True needs Linux (os.fork and CPU affinity); use processes=False")
    if out is not None:
        coco_files.start(out, campaign)

    def finished(r: DimensionResult) -> None:  # a dimension's files, while the others still run
        write_dimension(strategy, r, out)

    run = parallel.in_processes if processes else parallel.in_threads
    bar = _Bar(sorted(dimensions)) if progress else None
    try:
        done = run(jobs, bar.update if bar else lambda *a: None, finished if out is not None else None)
    finally:
        if bar is not None:
            bar.close()
    result = CampaignResult(strategy=strategy, out=Path(out) if out is not None else None, suite=suite)
    for dim in dimensions:
        result.dimensions[dim] = done[dim]
    if out is not None:
        write_index(result, out, hyperparameters)
    return result


class _Bar:
    """The engine's progress display, a row per dimension (started at its first report)."""

    def __init__(self, dimensions):
        self.dimensions, self.bar = dimensions, None

    def update(self, dim, gen, done, total, evals):
        from neuroevo.engine.progress import Progress

        if self.bar is None:
            self.bar = Progress("{task.description}")
        name = f"bbob d={dim} problems done"
        if name not in self.bar:
            self.bar.add(name, total)
        self.bar.update(name, done, f"generation {gen}, {evals:,} evaluations")

    def close(self):
        if self.bar is not None:
            self.bar.close()
