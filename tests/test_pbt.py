"""Population-based training as a mode of ne.sweep (issue 8; docs/concepts/sweeps.md)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo.engine import pbt

GRID = {"sigma": [0.05, 0.1, 0.2], "learning_rate": [0.01, 0.1]}


def make_es(sigma, learning_rate):
    return ne.strategies.openai_es(8, sigma=sigma, learning_rate=learning_rate)


def es_states(members: int):
    """``members`` distinct openai_es states (different means and Adam moments), leading axis = member."""
    strategy = make_es(0.1, 0.05)
    task = ne.tasks.function(ne.tasks.sphere)
    x0s = jnp.arange(members * 3, dtype=jnp.float32).reshape(members, 3)
    step = ne.engine.loop.make_step(strategy, task)

    def one(x0):
        state = strategy.init(jax.random.key(0), x0)
        (state, _), _ = step((state, ()), jax.random.key(1))
        return state

    return jax.vmap(one)(x0s)


def test_exploit_copies_states_exactly():
    states = es_states(8)
    score = jnp.asarray([3.0, -1.0, 7.0, jnp.nan, 5.0, 0.0, 9.0, 2.0])
    count = pbt.truncation_count(8, 0.25)
    assert count == 2
    source = np.asarray(pbt.exploit(jax.random.key(4), score, count))
    copied = pbt.take(states, source)
    bottom, top = {3, 1}, {6, 2}  # NaN ranks lowest
    for m in range(8):
        assert (source[m] in top) if m in bottom else (source[m] == m)
        for before, after in zip(jax.tree.leaves(states), jax.tree.leaves(copied), strict=True):
            np.testing.assert_array_equal(np.asarray(after[m]), np.asarray(before[source[m]]))
    # Every source among the top is reachable: over many keys both are drawn.
    drawn = {int(pbt.exploit(jax.random.key(k), score, count)[1]) for k in range(20)}
    assert drawn == top


def test_explore_moves_only_replaced_members_within_bounds():
    spaces = {
        "sigma": pbt.Space(0.05, 0.2, False, (0.05, 0.1, 0.2)),  # a grid
        "learning_rate": pbt.Space(1e-3, 0.1, True, None),  # a log range
    }
    hp = {"sigma": jnp.full(64, 0.1), "learning_rate": jnp.full(64, 0.09)}
    replaced = jnp.arange(64) % 2 == 0
    new = pbt.explore(jax.random.key(0), hp, replaced, spaces, (0.8, 1.2), resample_prob=0.3)
    for name, space in spaces.items():
        value, old = np.asarray(new[name]), np.asarray(hp[name])
        kept = ~np.asarray(replaced)
        np.testing.assert_array_equal(value[kept], old[kept])
        moved = value[~kept]
        assert np.all((moved >= space.low) & (moved <= space.high))
        assert np.mean(moved != old[~kept]) > 0.5
    sigma = np.asarray(new["sigma"])[np.asarray(replaced)]
    perturbed = np.isclose(sigma, 0.08) | np.isclose(sigma, 0.12)
    resampled = np.isclose(sigma[:, None], np.asarray(spaces["sigma"].values)).any(axis=1)
    assert np.all(perturbed | resampled)
    assert 0 < np.sum(~perturbed) < np.sum(perturbed)  # some resampled, most perturbed
    lr = np.asarray(new["learning_rate"])[np.asarray(replaced)]
    assert np.any(np.isclose(lr, 0.072)) and np.any(np.isclose(lr, 0.1))  # 0.09 * 1.2 is clipped to 0.1


def run_pbt(key):
    task = ne.tasks.function(ne.tasks.rastrigin)
    settings = ne.PBT(interval=2, fraction=0.34, perturb=(0.5, 2.0), resample_prob=0.2)
    return ne.sweep(key, make_es, task, jnp.full(4, 1.5), grid=GRID, seeds=2, generations=6, pbt=settings)


def test_pbt_sweep_compiles_once_is_deterministic_and_records_its_schedule(tmp_path):
    result = run_pbt(jax.random.key(0))
    assert result.compilations == 1
    assert result.curves.shape == (6, 2, 6) and result.interval == 2
    assert result.parents.shape == (6, 2, 3) and result.schedule["sigma"].shape == (6, 2, 3)
    members = np.arange(6)[:, None]
    np.testing.assert_array_equal(
        result.parents[:, :, -1], np.broadcast_to(members, (6, 2))
    )  # no last exploit
    for name in GRID:
        schedule = result.schedule[name]
        np.testing.assert_allclose(
            schedule[:, :, 0], np.asarray([c[name] for c in result.configs])[:, None] * [1, 1]
        )
        assert np.all((schedule >= min(GRID[name])) & (schedule <= max(GRID[name])))
    replaced = result.parents[:, :, :-1] != members[:, :, None]
    assert replaced.sum() == 2 * 2 * 2  # 2 of 6 members (fraction 0.34), 2 seeds, 2 exploits
    for c, s, k in zip(*np.nonzero(replaced), strict=True):
        p, g = result.parents[c, s, k], 2 * (k + 1)
        # The copy inherits its parent's best fitness so far.
        assert result.curves[c, s, g] >= result.curves[p, s, g - 1]
    for c, s, k in zip(*np.nonzero(~replaced), strict=True):
        for name in GRID:  # a kept member keeps its hyperparameters
            assert result.schedule[name][c, s, k + 1] == result.schedule[name][c, s, k]
    again = run_pbt(jax.random.key(0))
    np.testing.assert_array_equal(again.curves, result.curves)
    np.testing.assert_array_equal(again.parents, result.parents)
    for name in GRID:
        np.testing.assert_array_equal(again.schedule[name], result.schedule[name])
    result.plot_schedule(str(tmp_path / "pbt.png"))
    assert (tmp_path / "pbt.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(interval=2, fraction=0.0), "fraction must be in"),
        (dict(interval=2, fraction=0.6), "fraction must be in"),
        (dict(interval=0), "interval must be an int >= 1"),
        (dict(interval=3), "not a multiple of pbt.interval"),
        (dict(interval=2, hyperparameters=("lr",)), "unknown hyperparameter 'lr'"),
        (dict(interval=2, bounds={"temperature": (0.0, 1.0)}), "unknown hyperparameter 'temperature'"),
        (dict(interval=2, bounds={"sigma": (1.0, 0.1)}), "low <= high"),
        (dict(interval=2, perturb=(0.8, -1.0)), "perturb factors must be positive"),
        (dict(interval=2, resample_prob=2.0), "resample_prob"),
        (dict(interval=2, window=3), "window"),
        (dict(interval=2, metric="loss"), "not a run metric"),
    ],
)
def test_pbt_rejects_bad_input(settings, message):
    task = ne.tasks.function(ne.tasks.sphere)
    with pytest.raises(ValueError, match=message):
        ne.sweep(
            jax.random.key(0), make_es, task, jnp.ones(2), grid=GRID, generations=4, pbt=ne.PBT(**settings)
        )


def test_pbt_needs_two_members():
    task = ne.tasks.function(ne.tasks.sphere)
    grid = {"sigma": [0.1], "learning_rate": [0.1]}
    with pytest.raises(ValueError, match="at least 2 members"):
        ne.sweep(jax.random.key(0), make_es, task, jnp.ones(2), grid=grid, generations=4, pbt=ne.PBT(2))
