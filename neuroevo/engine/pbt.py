"""Population-based training (Jaderberg et al. 2017, arXiv:1711.09846) as a mode of ``ne.sweep``.

The members of a population are a sweep's configs (one population per seed).
They run ``interval`` generations; then, inside the compiled program, they are
ranked by their recent fitness, the lowest ``fraction`` copy the whole state of
a random member of the highest ``fraction`` (exploit: truncation selection) and
perturb the hyperparameters they copied with it (explore: multiply each by a
factor drawn from ``perturb``, or with ``resample_prob`` draw it anew from the
grid or range), clipped to the bounds. A ``lax.scan`` runs the intervals; the
strategy is rebuilt with each member's current hyperparameters in every
interval, so one compilation serves the whole run.

A hyperparameter only changes a run if the strategy reads it after ``init``.
``openai_es`` reads ``learning_rate`` (Adam's step, a closure) at every ``tell``
and ``sigma`` at every ``tell`` too, which sets the noise scale of the next
``ask`` (so a new ``sigma`` takes effect one generation after the exploit).
Strategies that keep a hyperparameter in their state and adapt it (CMA-ES's
``sigma``, an optax ``inject_hyperparams`` learning rate) only read the value at
``init``: exploring it does nothing; the copied state's value wins.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.shaping import sanitize

PyTree = Any


class PBT(NamedTuple):
    """Settings of population-based training; pass as ``ne.sweep(..., pbt=ne.PBT(interval=10))``.

    Attributes:
      interval: generations between two exploit/explore steps (divides ``generations``).
      fraction: the lowest ``fraction`` of members copy a member of the highest
        ``fraction`` (0 < fraction <= 0.5; at least one member).
      perturb: explore multiplies each hyperparameter by one of these factors, drawn uniformly.
      resample_prob: probability of drawing a hyperparameter anew instead (from
        the grid's values, or uniformly / log-uniformly in the sample range).
      hyperparameters: the names explored (default: all); the others are copied unchanged.
      bounds: name -> (low, high) to clip to; default the grid's smallest and
        largest value, or the sample range.
      metric: the per-generation metric members are ranked by (higher is better).
      window: members are ranked by the mean of ``metric`` over the last
        ``window`` generations of each interval.
    """

    interval: int
    fraction: float = 0.25
    perturb: tuple[float, ...] = (0.8, 1.2)
    resample_prob: float = 0.0
    hyperparameters: tuple[str, ...] | None = None
    bounds: Mapping[str, tuple[float, float]] | None = None
    metric: str = "generation_best"
    window: int = 1


class Space(NamedTuple):
    """Where explore may move one hyperparameter."""

    low: float
    high: float
    log: bool  # resample log-uniformly (a log-scale sample range)
    values: tuple[float, ...] | None  # resample from these (a grid), else from [low, high]


# --------------------------------------------------------------------------- #
# Checks
# --------------------------------------------------------------------------- #


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check(pbt: PBT, names: Sequence[str], members: int, generations: int) -> None:
    """Raise ``ValueError`` naming the problem with ``pbt`` for a sweep of ``members`` configs."""
    if not isinstance(pbt, PBT):
        raise ValueError(f"pbt must be an ne.PBT(...), got {type(pbt).__name__}")
    if not is_int(pbt.interval) or pbt.interval < 1:
        raise ValueError(f"pbt.interval must be an int >= 1, got {pbt.interval!r}")
    if generations % pbt.interval:
        raise ValueError(
            f"generations {generations} is not a multiple of pbt.interval {pbt.interval}: "
            f"PBT runs whole intervals"
        )
    if not is_real(pbt.fraction) or not 0 < pbt.fraction <= 0.5:
        raise ValueError(f"pbt.fraction must be in (0, 0.5], got {pbt.fraction!r}")
    if members < 2:
        raise ValueError(f"PBT needs at least 2 members (configs), got {members}")
    perturb = pbt.perturb
    if isinstance(perturb, (str, bytes)) or not isinstance(perturb, Sequence) or not perturb:
        raise ValueError(f"pbt.perturb must be a non-empty tuple of factors, got {perturb!r}")
    if not all(is_real(f) and f > 0 for f in perturb):
        raise ValueError(f"pbt.perturb factors must be positive numbers, got {perturb!r}")
    if not is_real(pbt.resample_prob) or not 0 <= pbt.resample_prob <= 1:
        raise ValueError(f"pbt.resample_prob must be in [0, 1], got {pbt.resample_prob!r}")
    if not is_int(pbt.window) or not 1 <= pbt.window <= pbt.interval:
        raise ValueError(f"pbt.window must be an int in [1, interval={pbt.interval}], got {pbt.window!r}")
    if not isinstance(pbt.metric, str):
        raise ValueError(f"pbt.metric must be a metric name, got {pbt.metric!r}")
    for what, given in (("hyperparameters", pbt.hyperparameters), ("bounds", pbt.bounds)):
        unknown = [n for n in (given or ()) if n not in names]
        if unknown:
            raise ValueError(
                f"pbt.{what}: unknown hyperparameter {unknown[0]!r}; the sweep's are {', '.join(names)}"
            )
    for name, pair in (pbt.bounds or {}).items():
        ok = isinstance(pair, Sequence) and len(pair) == 2 and all(is_real(v) for v in pair)
        if not ok or not pair[0] <= pair[1]:
            raise ValueError(f"pbt.bounds[{name!r}] must be (low, high) with low <= high, got {pair!r}")


def spaces(
    pbt: PBT,
    names: Sequence[str],
    grid: Mapping[str, Sequence[float]] | None,
    ranges: Mapping[str, tuple[float, float, str]] | None,
) -> dict[str, Space]:
    """The explored hyperparameters and where each may go (from the grid or the sample ranges)."""
    explored = tuple(pbt.hyperparameters) if pbt.hyperparameters is not None else tuple(names)
    out = {}
    for name in explored:
        if grid is not None:
            values = tuple(float(v) for v in grid[name])
            low, high, log = min(values), max(values), False
        else:
            low, high, scale = ranges[name]
            values, log = None, scale == "log"
        if pbt.bounds and name in pbt.bounds:
            low, high = (float(v) for v in pbt.bounds[name])
        out[name] = Space(low, high, log, values)
    return out


# --------------------------------------------------------------------------- #
# Exploit and explore (pure, one population; leading axis = member)
# --------------------------------------------------------------------------- #


def truncation_count(members: int, fraction: float) -> int:
    """How many members are replaced (and how many may be copied): ``fraction`` of them, at least one."""
    return max(1, int(members * fraction))


def take(tree: PyTree, index: jax.Array) -> PyTree:
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def exploit(key: jax.Array, score: jax.Array, count: int) -> jax.Array:
    """``source[m]``: the member whose state ``m`` takes next.

    The ``count`` lowest-scoring members (NaN is lowest) each take a member drawn
    uniformly from the ``count`` highest; every other member keeps its own.
    """
    members = score.shape[0]
    order = jnp.argsort(sanitize(score))  # ascending: the worst first
    picks = order[members - count :][jax.random.randint(key, (count,), 0, count)]
    return jnp.arange(members).at[order[:count]].set(picks)


def sample_space(key: jax.Array, space: Space, shape: tuple[int, ...]) -> jax.Array:
    """Fresh values: uniform over the grid's values, else (log-)uniform in ``[low, high]``."""
    if space.values is not None:
        return jnp.asarray(space.values, jnp.float32)[jax.random.randint(key, shape, 0, len(space.values))]
    u = jax.random.uniform(key, shape)
    if space.log:
        return jnp.exp(math.log(space.low) + u * (math.log(space.high) - math.log(space.low)))
    return space.low + u * (space.high - space.low)


def explore(
    key: jax.Array,
    hp: dict[str, jax.Array],
    replaced: jax.Array,
    spaces: Mapping[str, Space],
    perturb: Sequence[float],
    resample_prob: float,
) -> dict[str, jax.Array]:
    """Perturb (or resample) the explored hyperparameters of the ``replaced`` members, within bounds."""
    out = dict(hp)
    factors = jnp.asarray(perturb, jnp.float32)
    for i, (name, space) in enumerate(spaces.items()):
        k_factor, k_sample, k_coin = jax.random.split(jax.random.fold_in(key, i), 3)
        value = hp[name]
        perturbed = value * factors[jax.random.randint(k_factor, value.shape, 0, len(perturb))]
        fresh = sample_space(k_sample, space, value.shape)
        new = jnp.where(jax.random.uniform(k_coin, value.shape) < resample_prob, fresh, perturbed)
        new = jnp.clip(new, space.low, space.high).astype(value.dtype)
        out[name] = jnp.where(replaced, new, value)
    return out


def score_of(metrics: dict[str, jax.Array], metric: str, window: int) -> jax.Array:
    """Each member's mean ``metric`` over its last ``window`` generations (``metrics[k]``: [member, gen])."""
    if metric not in metrics:
        known = ", ".join(sorted(metrics))
        raise ValueError(f"pbt.metric {metric!r} is not a run metric; the run's are {known}")
    return jnp.mean(sanitize(metrics[metric][:, -window:]), axis=1)


# --------------------------------------------------------------------------- #
# One population's run: a scan over intervals
# --------------------------------------------------------------------------- #


def population_run(
    start: Callable[[jax.Array, dict], tuple[Any, jax.Array]],
    steps: Callable[[Any, jax.Array, dict, jax.Array], tuple[Any, dict]],
    pbt: PBT,
    spaces: Mapping[str, Space],
    intervals: int,
) -> Callable[[jax.Array, dict], tuple[Any, dict, dict, jax.Array]]:
    """``(key, hp) -> (final carries, metrics, schedule, parents)`` for one population.

    ``start(key, hp) -> (carry, loop_key)`` begins one member; ``steps(carry,
    loop_key, hp, first) -> (carry, metrics)`` runs it ``pbt.interval``
    generations from generation ``first``. ``hp`` leaves are [member]; the
    returned metrics are [member, generation], the schedule (the
    hyperparameters in force) and ``parents`` (whose state each member took at
    the end of the interval; itself if kept) are [member, interval]. No exploit
    follows the last interval.
    """

    def run(key: jax.Array, hp: dict[str, jax.Array]):
        members = next(iter(hp.values())).shape[0]
        count = truncation_count(members, pbt.fraction)
        k_members, k_pbt = jax.random.split(key)
        keys = jax.vmap(lambda m: jax.random.fold_in(k_members, m))(jnp.arange(members))
        carries, loop_keys = jax.vmap(start)(keys, hp)
        run_interval = jax.vmap(steps, in_axes=(0, 0, 0, None))

        def body(state, i):
            carries, hp = state
            carries, metrics = run_interval(carries, loop_keys, hp, i * pbt.interval)
            k_exploit, k_explore = jax.random.split(jax.random.fold_in(k_pbt, i))
            source = exploit(k_exploit, score_of(metrics, pbt.metric, pbt.window), count)
            source = jnp.where(i < intervals - 1, source, jnp.arange(members))
            replaced = source != jnp.arange(members)
            new_hp = explore(k_explore, take(hp, source), replaced, spaces, pbt.perturb, pbt.resample_prob)
            return (take(carries, source), new_hp), (metrics, hp, source)

        (carries, _), (metrics, schedule, parents) = jax.lax.scan(body, (carries, hp), jnp.arange(intervals))
        # [interval, member, generation-in-interval] -> [member, generation]
        metrics = {k: jnp.swapaxes(v, 0, 1).reshape(members, -1) for k, v in metrics.items()}
        schedule = {k: v.T for k, v in schedule.items()}
        return carries, metrics, schedule, parents.T

    return run
