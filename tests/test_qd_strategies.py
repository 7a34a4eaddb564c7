"""MAP-Elites, CMA-ME and ME-ES: their operators, rankings and restarts, quality against pyribs,
resume bit for bit with the archive, and ``neuroevo train`` with descriptors."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo import qd
from neuroevo.strategies.cma_me import improvement_ranking

pytest.importorskip("ribs")


def filled_archive(x0, n=6, seed=0):
    archive = qd.GridArchive(cells=(8, 8), bounds=((0, 1), (0, 1)))
    rng = np.random.default_rng(seed)
    sols = jnp.asarray(rng.normal(size=(n,) + x0.shape), jnp.float32)
    desc = jnp.asarray(rng.uniform(size=(n, 2)), jnp.float32)
    rep, _ = archive.insert(archive.empty(x0), sols, jnp.arange(n, dtype=jnp.float32), desc)
    return archive, rep


def test_map_elites_variation():
    """Without noise children are elites; Iso+LineDD's spread is iso_sigma plus line_sigma along
    the line to the second parent; an empty archive gives x0 plus noise."""
    x0 = jnp.zeros(3)
    archive, rep = filled_archive(x0)
    elites = np.asarray(rep.solutions)[np.asarray(rep.occupied)]
    quiet = ne.strategies.make("map_elites", popsize=500, archive=archive, iso_sigma=0.0, line_sigma=0.0)
    state = quiet.init(jax.random.key(0), x0)._replace(archive=rep)
    children, _ = quiet.ask(jax.random.key(1), state)
    hits = (np.abs(np.asarray(children)[:, None, :] - elites[None]) < 1e-7).all(-1)
    assert hits.any(1).all() and hits.any(0).all()  # every child an elite, every elite drawn
    iso = ne.strategies.make("map_elites", popsize=20_000, archive=archive, iso_sigma=0.3, line_sigma=0.0)
    children, _ = iso.ask(jax.random.key(2), state)
    nearest = np.abs(np.asarray(children)[:, None, :] - elites[None]).sum(-1).argmin(1)
    residual = np.asarray(children) - elites[nearest]
    assert np.std(residual) == pytest.approx(0.3, rel=0.05)
    empty = iso.init(jax.random.key(0), x0 + 2.0)
    children, _ = iso.ask(jax.random.key(3), empty)
    assert np.mean(children) == pytest.approx(2.0, abs=0.02) and np.std(children) == pytest.approx(
        0.3, rel=0.05
    )
    gauss = ne.strategies.make("map_elites", popsize=20_000, archive=archive, variation="gaussian", sigma=0.5)
    children, _ = gauss.ask(jax.random.key(4), gauss.init(jax.random.key(0), x0))
    assert np.std(children) == pytest.approx(0.5, rel=0.05)


def test_improvement_ranking_matches_pyribs_two_stage_ranker():
    from ribs.emitters.rankers import TwoStageImprovementRanker

    rng = np.random.default_rng(0)
    status = rng.integers(0, 3, size=(5, 17)).astype(np.int32)
    value = np.round(rng.normal(size=(5, 17)), 1).astype(np.float32)  # ties within a status
    ours = np.asarray(improvement_ranking(jnp.asarray(status), jnp.asarray(value)))
    ranker = TwoStageImprovementRanker()
    for s, v, o in zip(status, value, ours, strict=True):
        order, _ = ranker.rank(None, None, None, {"status": s, "value": v.astype(np.float64)})
        # pyribs' order (best first) sorts by status, then value; ours gives each member lam - rank.
        key = list(zip(-s[order], -v[order], strict=True))
        assert key == sorted(key)
        ours_order = np.argsort(-o, stable=True)
        assert list(zip(-s[ours_order], -v[ours_order], strict=True)) == key


def test_cma_me_restarts_emitters_that_add_nothing():
    archive = qd.GridArchive(cells=(10, 10), bounds=((-1, 1), (-1, 1)))
    strategy = ne.strategies.make("cma_me", popsize=12, emitters=3, archive=archive, sigma=0.3)
    task = ne.tasks.arm(6)
    state = strategy.init(jax.random.key(0), jnp.zeros(6))
    tell = jax.jit(strategy.tell)
    genotypes, state = strategy.ask(jax.random.key(1), state)
    evaluation, _ = task.evaluate(None, (), ne.population(strategy, state, genotypes))
    state = tell(jax.random.key(2), state, genotypes, evaluation.fitness, evaluation.descriptor)
    assert int(state.restarts.sum()) == 0 and int(state.metrics["elites"]) > 0
    # The same members again add nothing (no strict improvement): every emitter restarts at an elite.
    again = tell(jax.random.key(3), state, genotypes, evaluation.fitness, evaluation.descriptor)
    np.testing.assert_array_equal(again.restarts, [1, 1, 1])
    elites = np.asarray(again.archive.solutions)[np.asarray(again.archive.occupied)]
    for mean in np.asarray(again.emitters.mean):
        assert np.min(np.abs(elites - mean).sum(1)) < 1e-6
    np.testing.assert_allclose(again.emitters.sigma, 0.3)
    # All-NaN fitness: nothing enters, nothing is NaN, and the emitters restart too.
    nan = tell(jax.random.key(3), state, genotypes, jnp.full(12, jnp.nan), evaluation.descriptor)
    np.testing.assert_array_equal(nan.restarts, [1, 1, 1])
    assert not any(
        bool(jnp.any(jnp.isnan(x))) for x in jax.tree_util.tree_leaves(nan) if x.dtype == jnp.float32
    )


def test_me_es_alternates_exploration_and_restarts_from_elites():
    archive = qd.GridArchive(cells=(10, 10), bounds=((-1, 1), (-1, 1)))
    strategy = ne.strategies.make("me_es", popsize=8, archive=archive, optimization_steps=2, sigma=0.5)
    task = ne.tasks.arm(5)
    step = ne.engine.make_step(strategy, task)

    @jax.jit
    def run(key):
        state = strategy.init(key, jnp.zeros(5))
        return jax.lax.scan(step, (state, ()), jax.random.split(key, 8))

    (state, _), history = run(jax.random.key(0))
    np.testing.assert_array_equal(history["explore"], [0, 0, 1, 1, 0, 0, 1, 1])
    assert int(state.es.generation) == 0  # a new parent (and optimiser) every 2 generations
    elites = np.asarray(state.archive.solutions)[np.asarray(state.archive.occupied)]
    assert np.min(np.abs(elites - np.asarray(state.mean)).sum(1)) < 1e-6  # theta is an elite
    assert np.all(np.diff(history["elites"]) >= 0) and history["elites"][-1] > history["elites"][0]


def arm_qd_score_vs_ribs(seeds=2, iterations=40, dof=8):
    """(ours, pyribs) mean final QD-scores of MAP-Elites (2 x 32 per iteration) on the arm."""
    from ribs.archives import GridArchive
    from ribs.emitters import IsoLineEmitter
    from ribs.schedulers import Scheduler

    from benchmarks.qd_vs_ribs import numpy_arm

    task = ne.tasks.arm(dof)
    archive = qd.GridArchive(cells=(20, 20), bounds=((-1, 1), (-1, 1)), qd_offset=-(np.pi**2))
    strategy = ne.strategies.make("map_elites", popsize=64, archive=archive, iso_sigma=0.05, line_sigma=0.2)
    step = ne.engine.make_step(strategy, task)

    @jax.jit
    def run(key):
        carry = (strategy.init(key, jnp.zeros(dof)), ())
        return jax.lax.scan(step, carry, jax.random.split(key, iterations))[0][0].metrics["qd_score"]

    ours = [float(run(jax.random.key(s))) for s in range(seeds)]
    theirs = []
    for s in range(seeds):
        ref = GridArchive(
            solution_dim=dof, dims=(20, 20), ranges=[(-1, 1), (-1, 1)], qd_score_offset=-(np.pi**2)
        )
        emitters = [
            IsoLineEmitter(
                ref, x0=np.zeros(dof), iso_sigma=0.05, line_sigma=0.2, batch_size=32, seed=10 * s + i
            )
            for i in range(2)
        ]
        scheduler = Scheduler(ref, emitters)
        for _ in range(iterations):
            x = scheduler.ask()
            scheduler.tell(*numpy_arm(x))
        theirs.append(float(ref.stats.qd_score))
    return np.mean(ours), np.mean(theirs)


def test_map_elites_matches_pyribs_quality_on_the_arm():
    ours, theirs = arm_qd_score_vs_ribs()
    assert ours >= 0.9 * theirs, (ours, theirs)


@pytest.mark.parametrize("name", ["map_elites", "cma_me"])
def test_run_resumes_bit_for_bit_with_its_archive(tmp_path, name):
    archive = qd.GridArchive(cells=(6, 6), bounds=((-1, 1), (-1, 1)))
    strategy = ne.strategies.make(name, popsize=8, archive=archive)
    task = ne.tasks.arm(4)
    x0 = jnp.zeros(4)
    key = jax.random.key(5)
    whole = ne.run(key, strategy, task, x0, 6, log_every=2)
    ckpt = str(tmp_path / "ckpt")
    ne.run(key, strategy, task, x0, 4, log_every=2, checkpoint_dir=ckpt, checkpoint_every=2)
    resumed = ne.run(key, strategy, task, x0, 6, log_every=2, checkpoint_dir=ckpt, checkpoint_every=2)
    for a, b in zip(
        jax.tree_util.tree_leaves(whole.state), jax.tree_util.tree_leaves(resumed.state), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.state.archive.occupied.sum()) > 0
    np.testing.assert_array_equal(whole.history["qd_score"], resumed.history["qd_score"])


def test_train_cli_with_descriptors_writes_the_archive(tmp_path, capsys):
    from neuroevo.cli import main

    out = str(tmp_path / "run")
    common = ["train", "--env", "CartPole-v1", "--strategy", "map_elites", "--popsize", "16", "--quiet"]
    common += ["--eval-episodes", "2", "--checkpoint-every", "2", "--out", out]
    assert main(common + ["--generations", "2", "--descriptor", "final_obs"]) == 0
    for name in ("archive.png", "archive.npz", "archive.csv", "archive/generation_000002.png"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert {"qd_score", "coverage", "max_fitness", "mean_fitness"} <= set(rows[-1])
    rep, archive = qd.load(os.path.join(out, "archive.npz"), like=ne.rl.load_run(out)[3])
    assert archive.descriptor_dim == 4 and int(rep.occupied.sum()) == int(rows[-1]["elites"])
    assert main(["train", "--resume", out, "--generations", "4", "--quiet"]) == 0
    assert os.path.exists(os.path.join(out, "archive/generation_000004.png"))
    assert main(["eval", out, "--episodes", "2"]) == 0
    # Without descriptors a QD strategy is refused before anything compiles or is written.
    assert main(common[:-1] + [str(tmp_path / "none"), "--generations", "2"]) == 2
    assert "needs behaviour descriptors" in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / "none"))
