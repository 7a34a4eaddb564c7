"""NSGA-II and NSGA-III: operators against pymoo's, survival, bad input, and the engine
(history, checkpoints resumed bit for bit, sweeps, sharding) with multi-objective fitness."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo import moo
from neuroevo.rng import Stream
from neuroevo.strategies import moo_ops
from tests.oracles import require

ZDT1 = ne.tasks.zdt1(8)


def quantiles(x):
    return np.quantile(np.asarray(x), np.linspace(0.05, 0.95, 19))


def test_sbx_children_are_distributed_as_pymoo_s():
    sbx = require("pymoo.operators.crossover.sbx")
    n = 20000
    a, b = np.array([0.2, 0.5, 0.9, 0.3]), np.array([0.4, 0.6, 0.1, 0.3])
    low, high = np.zeros(4), np.ones(4)
    theirs = sbx.cross_sbx(
        np.stack([np.tile(a, (n, 1)), np.tile(b, (n, 1))]),
        low,
        high,
        np.full((n, 1), 15.0),
        np.full((n, 1), 1.0),
        np.full((n, 1), 0.5),
        random_state=np.random.default_rng(0),
    )
    first, second = moo_ops.sbx(
        Stream(jax.random.key(0)), jnp.tile(a, (n, 1)), jnp.tile(b, (n, 1)), low, high, 15.0, 1.0
    )
    for j in range(4):
        ours = np.concatenate([first[:, j], second[:, j]])
        np.testing.assert_allclose(quantiles(ours), quantiles(theirs[:, :, j].ravel()), atol=0.01)
    assert np.all((np.asarray(first) >= 0) & (np.asarray(first) <= 1))
    np.testing.assert_array_equal(first[:, 3], np.float32(0.3))  # equal parents are not crossed


def test_polynomial_mutation_is_distributed_as_pymoo_s():
    pm = require("pymoo.operators.mutation.pm")
    n = 20000
    x = np.tile(np.array([0.05, 0.5, 0.97]), (n, 1))
    low, high = np.zeros(3), np.ones(3)
    theirs = pm.mut_pm(
        x, low, high, np.full(n, 20.0), np.full(n, 1.0), False, random_state=np.random.default_rng(0)
    )
    ours = np.asarray(
        moo_ops.polynomial_mutation(Stream(jax.random.key(0)), jnp.asarray(x), low, high, 20.0, 1.0)
    )
    for j in range(3):
        np.testing.assert_allclose(quantiles(ours[:, j]), quantiles(theirs[:, j]), atol=0.005)
    rare = np.asarray(
        moo_ops.polynomial_mutation(Stream(jax.random.key(1)), jnp.asarray(x), low, high, 20.0, 0.1)
    )
    assert abs(np.mean(rare != x.astype(np.float32)) - 0.1) < 0.01


@pytest.mark.parametrize("name", ["nsga2", "nsga3"])
def test_bad_input_names_the_values(name):
    make = getattr(ne.strategies, name)
    with pytest.raises(ValueError, match=r"low < high, got low=1.0 >= high=1.0 at index \(2,\)"):
        make(bounds=(np.array([0.0, 0.0, 1.0]), np.ones(3)))
    with pytest.raises(ValueError, match=r"low=2.0 >= high=1.0"):
        make(bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="needs bounds="):
        make()
    with pytest.raises(ValueError, match="not both"):
        make(bounds=(0.0, 1.0), space=ne.space.categorical([2, 2]))
    with pytest.raises(ValueError, match="ref_point must be"):
        make(bounds=(0.0, 1.0), ref_point=[0.0])
    with pytest.raises(ValueError, match=r"crossover_rate.*must be in \[0, 1\], got 1.5"):
        make(bounds=(0.0, 1.0), crossover_rate=1.5)
    strategy = make(bounds=(np.zeros(3), np.ones(3)))
    with pytest.raises(ValueError, match=r"bounds' low has shape \(3,\), but x0 has shape \(4,\)"):
        strategy.init(jax.random.key(0), jnp.zeros(4))
    with pytest.raises(ValueError, match="n_objectives"):
        make(bounds=(0.0, 1.0), n_objectives=0)


def test_nsga3_reference_directions_input():
    with pytest.raises(ValueError, match=r"91 reference directions need popsize >= 91, got popsize=50"):
        ne.strategies.nsga3(50, bounds=(0.0, 1.0), n_partitions=12)
    with pytest.raises(ValueError, match="non-negative"):
        ne.strategies.nsga3(8, bounds=(0.0, 1.0), reference_directions=-np.eye(3))
    with pytest.raises(ValueError, match="not both"):
        ne.strategies.nsga3(8, bounds=(0.0, 1.0), reference_directions=np.eye(3), n_partitions=2)


def test_decode_returns_members_inside_the_bounds():
    strategy = ne.strategies.nsga2(8, bounds=(-1.0, np.array([1.0, 2.0, 3.0])))
    state = strategy.init(jax.random.key(0), jnp.zeros(3))
    member = strategy.decode(state, jnp.array([-5.0, 5.0, 0.5]))
    np.testing.assert_array_equal(member, [-1.0, 2.0, 0.5])
    genotypes, state = strategy.ask(jax.random.key(1), state)
    assert np.all(np.asarray(genotypes) >= -1.0) and np.all(np.asarray(genotypes) <= [1.0, 2.0, 3.0])


def test_nsga2_survival_keeps_whole_fronts_then_the_least_crowded():
    strategy = ne.strategies.nsga2(40, bounds=(0.0, 1.0))
    state = strategy.init(jax.random.key(0), jnp.zeros(2))
    rng = np.random.default_rng(0)
    merged = np.round(rng.random((80, 2)), 3).astype(np.float32)  # with ties in each objective
    members = np.arange(160, dtype=np.float32).reshape(80, 2) / 160  # member i identifies itself
    state = state._replace(population=jnp.asarray(members[:40]), fitness=jnp.asarray(merged[:40]))
    told = strategy.tell(jax.random.key(1), state, jnp.asarray(members[40:]), jnp.asarray(merged[40:]))
    chosen = np.round(np.asarray(told.population)[:, 0] * 80).astype(int)
    assert len(set(chosen)) == 40
    rank = np.asarray(moo.non_dominated_ranks(merged))
    crowding = np.asarray(moo.crowding_distance(merged, rank))
    last = rank[chosen].max()
    assert set(np.flatnonzero(rank < last)) <= set(chosen.tolist())  # every better front whole
    left = np.setdiff1d(np.flatnonzero(rank == last), chosen)
    assert left.size and crowding[chosen[rank[chosen] == last]].min() >= crowding[left].max()
    np.testing.assert_array_equal(told.rank, rank[chosen])
    np.testing.assert_array_equal(told.crowding, crowding[chosen])


def test_nsga3_niching_keeps_one_member_per_reference_direction():
    # 20 members on DTLZ1's front (sum 0.5): 10 on the 10 directions of 3 partitions, 10 between them.
    directions = moo.das_dennis(3, 3)
    on = 0.5 * directions
    between = 0.5 * (directions + np.roll(directions, 1, axis=0)) / 2
    merged = -np.concatenate([between, on]).astype(np.float32)
    strategy = ne.strategies.nsga3(10, bounds=(0.0, 1.0), n_partitions=3)
    state = strategy.init(jax.random.key(0), jnp.zeros(3))
    state = state._replace(fitness=jnp.asarray(merged[:10]), population=jnp.zeros((10, 3)))
    told = strategy.tell(jax.random.key(1), state, jnp.ones((10, 3)), jnp.asarray(merged[10:]))
    np.testing.assert_allclose(np.sort(-np.asarray(told.fitness), axis=0), np.sort(on, axis=0), atol=1e-6)
    np.testing.assert_allclose(told.ideal, 0.0, atol=1e-6)


@pytest.mark.parametrize("name", ["nsga2", "nsga3"])
def test_engine_history_and_resume_bit_for_bit(name, tmp_path):
    task = ne.tasks.dtlz(2, 3, 6) if name == "nsga3" else ZDT1
    m = task.info["n_objectives"]
    popsize = 16 if name == "nsga2" else 15

    def make():
        return ne.strategies.make(
            name,
            popsize=popsize,
            bounds=task.info["bounds"],
            n_objectives=m,
            ref_point=task.info["ref_point"],
        )

    x0 = task.init_solution(None)
    key = jax.random.key(4)
    full, history = ne.evolve(key, make(), task, x0, 6, log_every=2)
    assert set(history) >= {"best", "generation_best", "mean", "hypervolume", "front_size"}
    assert history["hypervolume"].shape == (6,) and history["hypervolume"][-1] > 0
    front = np.asarray(full.fitness)[np.asarray(full.rank) == 0]
    expected = moo.hypervolume(front[np.all(front > task.info["ref_point"], 1)], task.info["ref_point"])
    assert history["hypervolume"][-1] == pytest.approx(float(expected), rel=1e-5)
    assert history["front_size"][-1] == np.sum(np.asarray(full.rank) == 0)
    ne.evolve(key, make(), task, x0, 3, log_every=2, checkpoint_dir=str(tmp_path))
    resumed, resumed_history = ne.evolve(key, make(), task, x0, 6, log_every=2, checkpoint_dir=str(tmp_path))
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    for k in history:
        np.testing.assert_array_equal(history[k], resumed_history[k])


def test_sweep_over_seeds_and_a_hyperparameter_equals_separate_runs():
    make = lambda mutation_eta: ne.strategies.nsga2(
        12, bounds=(0.0, 1.0), mutation_eta=mutation_eta, mutation_rate=0.5
    )
    x0 = ZDT1.init_solution(None)
    result = ne.sweep(
        jax.random.key(0), make, ZDT1, x0, grid={"mutation_eta": [5.0, 40.0]}, seeds=2, generations=4
    )
    assert result.compilations == 1
    for c, config in enumerate(result.configs):
        for s in range(2):
            state, history = ne.evolve(result.keys[s], make(**config), ZDT1, x0, 4)
            np.testing.assert_allclose(result.states.fitness[c, s], state.fitness, rtol=1e-6)
            np.testing.assert_allclose(result.history["front_size"][c, s], history["front_size"])
    assert not np.allclose(result.states.population[0, 0], result.states.population[1, 0])


SHARDED = r"""
import json
import jax
import numpy as np
import neuroevo as ne

mesh = ne.distributed.mesh()
out = {"devices": mesh.size}
for name, task in (("nsga2", ne.tasks.zdt1(8)), ("nsga3", ne.tasks.dtlz(2, 3, 6))):
    m = task.info["n_objectives"]
    strategy = ne.strategies.make(name, popsize=16, bounds=task.info["bounds"], n_objectives=m,
                                  ref_point=task.info["ref_point"])
    x0 = task.init_solution(None)
    a, ha = ne.evolve(jax.random.key(3), strategy, task, x0, 4)
    b, hb = ne.evolve(jax.random.key(3), strategy, task, x0, 4, mesh=mesh)
    out[name] = {
        "fitness": float(np.max(np.abs(np.asarray(a.fitness) - np.asarray(b.fitness)))),
        "hypervolume": [float(ha["hypervolume"][-1]), float(hb["hypervolume"][-1])],
    }
print("RESULT", json.dumps(out))
"""


def test_sharded_multi_objective_runs_equal_unsharded():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads([x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1][len("RESULT ") :])
    assert out["devices"] == 4
    for name in ("nsga2", "nsga3"):
        assert out[name]["fitness"] <= 1e-6, name
        assert out[name]["hypervolume"][1] == pytest.approx(out[name]["hypervolume"][0], rel=1e-6)


def test_nsga3_niching_with_non_finite_distances_picks_candidates_of_the_last_front():
    from neuroevo.strategies.nsga3 import select

    rank = jnp.array([2, 0, 0, 1, 1, 1, 1, 2], jnp.int32)
    niche = jnp.array([0, 1, 1, 0, 0, 1, 1, 0], jnp.int32)  # direction 0 has no survivor yet
    distance = jnp.array([0.0, 0.1, 0.1, jnp.inf, jnp.inf, jnp.inf, 0.3, 0.0])
    for seed in range(5):
        # Direction 0 takes both its candidates (3, 4), though their distances are not finite.
        assert set(np.asarray(select(jax.random.key(seed), rank, niche, distance, 2, 4)).tolist()) == {
            1,
            2,
            3,
            4,
        }
