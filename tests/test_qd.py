"""Quality-diversity archives against pyribs, their bad input, export/reload and plots; the QD tasks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo import qd

ribs_archives = pytest.importorskip("ribs.archives")


def random_batches(rng, n_batches, n, sol_dim, low, high, ties=True):
    for _ in range(n_batches):
        sol = rng.normal(size=(n, sol_dim)).astype(np.float32)
        fit = rng.normal(size=n).astype(np.float32)
        if ties:
            fit = np.round(fit, 1)  # many equal fitnesses, in the same cells too
        desc = rng.uniform(low, high, size=(n, len(low))).astype(np.float32)
        yield sol, fit, desc


@pytest.mark.parametrize("cells", [(7, 5), (4, 3, 5), (9,)])
def test_grid_insertion_matches_pyribs(cells):
    """Cells, statuses, values, elites and the QD metrics equal pyribs' GridArchive's, batch after
    batch, with ties (the first of equal best wins) and descriptors beyond the bounds (clipped)."""
    k = len(cells)
    bounds = [(-1.0, 1.0), (0.0, 2.0), (-3.0, -1.0)][:k]
    ours = qd.GridArchive(cells=cells, bounds=bounds, qd_offset=-3.0)
    ref = ribs_archives.GridArchive(solution_dim=3, dims=cells, ranges=bounds, qd_score_offset=-3.0)
    low = np.array([b[0] for b in bounds]) - 0.5
    high = np.array([b[1] for b in bounds]) + 0.5
    repertoire = ours.empty(jnp.zeros(3))
    insert = jax.jit(ours.insert)
    for sol, fit, desc in random_batches(np.random.default_rng(0), 12, 40, 3, low, high):
        repertoire, info = insert(repertoire, sol, fit, desc)
        want = ref.add(sol.astype(np.float64), fit.astype(np.float64), desc.astype(np.float64))
        np.testing.assert_array_equal(info.cell, ref.index_of(desc.astype(np.float64)))
        np.testing.assert_array_equal(info.status, want["status"])
        np.testing.assert_allclose(info.value, want["value"], rtol=1e-6, atol=1e-6)
    data = ref.data()
    occupied = np.zeros(ours.n_cells, bool)
    occupied[data["index"]] = True
    np.testing.assert_array_equal(repertoire.occupied, occupied)
    np.testing.assert_array_equal(np.asarray(repertoire.fitness)[data["index"]], data["objective"])
    np.testing.assert_array_equal(
        np.asarray(repertoire.solutions)[data["index"]], data["solution"].astype(np.float32)
    )
    np.testing.assert_array_equal(
        np.asarray(repertoire.descriptors)[data["index"]], data["measures"].astype(np.float32)
    )
    assert np.all(np.asarray(repertoire.fitness)[~occupied] == -np.inf)
    metrics = jax.jit(ours.metrics)(repertoire)
    stats = ref.stats
    assert float(metrics["qd_score"]) == pytest.approx(float(stats.qd_score), rel=1e-5)
    assert float(metrics["coverage"]) == pytest.approx(float(stats.coverage))
    assert float(metrics["max_fitness"]) == pytest.approx(float(stats.obj_max))
    assert float(metrics["mean_fitness"]) == pytest.approx(float(stats.obj_mean), rel=1e-5)
    assert int(metrics["elites"]) == stats.num_elites
    # The filled list holds exactly the occupied cells.
    count = int(metrics["elites"])
    assert sorted(np.asarray(repertoire.filled)[:count].tolist()) == sorted(data["index"].tolist())


def test_ties_go_to_the_first_in_the_batch_and_bad_values_never_enter():
    archive = qd.GridArchive(cells=(2,), bounds=((0.0, 1.0),))
    rep = archive.empty(jnp.zeros(1))
    sol = jnp.arange(6.0)[:, None]
    fit = jnp.array([1.0, 3.0, 3.0, jnp.nan, jnp.inf, -jnp.inf])
    desc = jnp.array([[0.1], [0.2], [0.3], [0.8], [0.9], [0.7]])
    rep, info = archive.insert(rep, sol, fit, desc)
    assert rep.solutions[0, 0] == 1.0 and rep.fitness[0] == 3.0  # member 1, not member 2
    np.testing.assert_array_equal(info.added, [False, True, False, False, False, False])
    assert not bool(rep.occupied[1])  # NaN, +inf and -inf fitness never enter
    np.testing.assert_array_equal(info.status, [2, 2, 2, 0, 0, 0])
    assert not np.any(np.isnan(np.asarray(info.value)))
    # A non-finite descriptor never enters either; a strictly better member replaces the elite.
    rep, info = archive.insert(rep, sol[:2], jnp.array([5.0, 4.0]), jnp.array([[jnp.nan], [0.0]]))
    np.testing.assert_array_equal(info.status, [0, 1])
    assert float(info.value[1]) == pytest.approx(1.0) and rep.fitness[0] == 4.0


def test_metrics_of_an_empty_archive_and_uniform_sampling():
    archive = qd.GridArchive(cells=(10, 10), bounds=((0, 1), (0, 1)), qd_offset=-1.0)
    rep = archive.empty({"w": jnp.zeros((2, 2))})
    m = archive.metrics(rep)
    assert float(m["qd_score"]) == 0.0 and float(m["coverage"]) == 0.0
    assert float(m["max_fitness"]) == -np.inf and float(m["mean_fitness"]) == -np.inf
    desc = jnp.array([[0.05, 0.05], [0.55, 0.95], [0.95, 0.15]])
    rep, _ = archive.insert(rep, {"w": jnp.ones((3, 2, 2))}, jnp.zeros(3), desc)
    cells = np.asarray(qd.sample_cells(jax.random.key(0), rep, 30_000))
    expected = sorted(np.asarray(archive.index(desc)).tolist())
    assert sorted(set(cells.tolist())) == expected  # only elites are drawn
    counts = np.bincount(cells, minlength=100)[expected]
    assert np.all(np.abs(counts - 10_000) < 400)  # uniformly (4 sd)
    assert float(archive.metrics(rep)["qd_score"]) == pytest.approx(3.0)  # (0 - (-1)) per elite


def test_cvt_archive_matches_pyribs_and_kmeans_is_close_to_sklearn():
    archive = qd.CVTArchive(cells=40, bounds=((-1, 1), (0, 2)), samples=4000, iterations=25, seed=1)
    assert archive.centroids.shape == (40, 2)
    assert np.all(archive.centroids >= [-1, 0]) and np.all(archive.centroids <= [1, 2])
    ref = ribs_archives.CVTArchive(
        solution_dim=2, centroids=archive.centroids.astype(np.float64), ranges=[(-1, 1), (0, 2)]
    )
    rng = np.random.default_rng(3)
    rep = archive.empty(jnp.zeros(2))
    for sol, fit, desc in random_batches(
        rng, 5, 64, 2, np.array([-1.0, 0.0]), np.array([1.0, 2.0]), ties=False
    ):
        np.testing.assert_array_equal(archive.index(desc), ref.index_of(desc.astype(np.float64)))
        rep, info = archive.insert(rep, sol, fit, desc)
        want = ref.add(sol.astype(np.float64), fit.astype(np.float64), desc.astype(np.float64))
        np.testing.assert_array_equal(info.status, want["status"])
    assert float(archive.metrics(rep)["qd_score"]) == pytest.approx(float(ref.stats.qd_score), rel=1e-5)
    # Lloyd's k-means on device against scikit-learn's on the same kind of samples.
    from sklearn.cluster import KMeans

    points = rng.uniform([-1, 0], [1, 2], size=(4000, 2))

    def inertia(c):
        return np.sum(np.min(((points[:, None] - c[None]) ** 2).sum(-1), axis=1))

    sk = KMeans(40, n_init=1, random_state=0).fit(points).cluster_centers_
    assert inertia(archive.centroids) < 1.1 * inertia(sk)
    # Given centroids are used as they are.
    given = qd.CVTArchive(centroids=archive.centroids, bounds=((-1, 1), (0, 2)))
    np.testing.assert_array_equal(given.centroids, archive.centroids)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: qd.GridArchive(cells=(0, 5), bounds=((0, 1), (0, 1))), "cells must be positive"),
        (
            lambda: qd.GridArchive(cells=(5, 5), bounds=((1, 1), (0, 1))),
            r"bounds\[0\].*low must be below high",
        ),
        (
            lambda: qd.GridArchive(cells=(5, 5), bounds=((0, 1), (2, -1))),
            r"bounds\[1\].*low must be below high",
        ),
        (lambda: qd.GridArchive(cells=(5, 5), bounds=((0, 1),)), "1 .* pairs but cells has 2"),
        (lambda: qd.GridArchive(cells=(5,), bounds=((0, np.inf),)), "finite"),
        (
            lambda: qd.GridArchive(cells=(100_000, 100_000), bounds=((0, 1), (0, 1))),
            r"needs .*GiB.*use fewer cells",
        ),
        (lambda: qd.GridArchive(cells=(2.5,), bounds=((0, 1),)), "cells must be positive ints"),
        (lambda: qd.CVTArchive(cells=0, bounds=((0, 1),)), "cells must be a positive int"),
        (lambda: qd.CVTArchive(centroids=np.zeros((4, 3)), bounds=((0, 1), (0, 1))), r"shape \(cells, 2\)"),
        (lambda: qd.CVTArchive(cells=10, bounds=((0, 1),), samples=5), "at least cells"),
        (lambda: ne.strategies.make("map_elites", variation="nope"), "unknown variation"),
        (
            lambda: ne.strategies.make(
                "map_elites", archive={"cells": [4], "bounds": [[0, 1]]}, descriptor_dim=2
            ),
            "descriptor_dim=2 but the archive has 1",
        ),  # fmt: skip
        (lambda: ne.strategies.make("cma_me", popsize=30, emitters=4), "multiple of emitters=4"),
        (lambda: ne.strategies.make("cma_me", restart_rule="never"), "unknown restart_rule"),
        (lambda: ne.strategies.make("me_es", mode="both"), "unknown mode"),
        (
            lambda: ne.strategies.make("cvt_map_elites", archive=qd.GridArchive(4, ((0, 1),))),
            "needs a CVTArchive",
        ),
    ],
)
def test_bad_configuration_raises_before_compiling(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_archive_too_large_for_the_solutions_is_refused_at_init():
    """The cells fit, but not with a 1M-parameter solution in each: init (trace time) says the size."""
    archive = qd.GridArchive(cells=(1000, 1000), bounds=((0, 1), (0, 1)))
    strategy = ne.strategies.make("map_elites", popsize=8, archive=archive)
    with pytest.raises(ValueError, match=r"needs [0-9.]+ TiB \(1000000 cells x 1000005 float32"):
        jax.eval_shape(strategy.init, jax.random.key(0), jax.ShapeDtypeStruct((1_000_000,), jnp.float32))


@pytest.mark.parametrize("name", ["map_elites", "cma_me", "me_es"])
def test_wrong_descriptor_dimension_raises_at_trace_time(name):
    archive = qd.GridArchive(cells=(4, 4, 4), bounds=((0, 1),) * 3)
    strategy = ne.strategies.make(name, popsize=8, archive=archive)
    state = strategy.init(jax.random.key(0), jnp.zeros(4))
    genotypes, state = strategy.ask(jax.random.key(1), state)
    with pytest.raises(ValueError, match=r"\(8, 2\).*expected shape \(8, 3\)"):
        jax.eval_shape(
            lambda d: strategy.tell(jax.random.key(2), state, genotypes, jnp.zeros(8), d), jnp.zeros((8, 2))
        )


def test_export_and_reload_npz_and_csv(tmp_path):
    x0 = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(2)}
    archive = qd.GridArchive(cells=(5, 4), bounds=((-1, 1), (-1, 1)), qd_offset=-2.0)
    rep = archive.empty(x0)
    rng = np.random.default_rng(0)
    sols = {
        "w": jnp.asarray(rng.normal(size=(30, 2, 3)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(30, 2)), jnp.float32),
    }
    rep, _ = archive.insert(
        rep,
        sols,
        jnp.asarray(rng.normal(size=30), jnp.float32),
        jnp.asarray(rng.uniform(-1, 1, (30, 2)), jnp.float32),
    )
    qd.save(str(tmp_path / "a.npz"), rep, archive)
    back, spec = qd.load(str(tmp_path / "a.npz"), like=x0)
    for a, b in zip(jax.tree_util.tree_leaves(rep), jax.tree_util.tree_leaves(back), strict=True):
        np.testing.assert_array_equal(a, b)
    assert spec.cells == archive.cells and spec.bounds == archive.bounds and spec.qd_offset == -2.0
    n = qd.to_csv(str(tmp_path / "a.csv"), rep)
    assert n == int(rep.occupied.sum())
    again = qd.from_csv(str(tmp_path / "a.csv"), archive, x0)
    for field in ("fitness", "occupied", "descriptors"):
        np.testing.assert_array_equal(getattr(again, field), getattr(rep, field))
    for a, b in zip(
        jax.tree_util.tree_leaves(again.solutions), jax.tree_util.tree_leaves(rep.solutions), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="pass like="):
        qd.load(str(tmp_path / "a.npz"))
    cvt = qd.CVTArchive(centroids=np.array([[0.0, 0.0], [1.0, 1.0]]), bounds=((0, 1), (0, 1)))
    qd.save(str(tmp_path / "c.npz"), cvt.empty(jnp.zeros(3)), cvt)
    _, spec = qd.load(str(tmp_path / "c.npz"))
    np.testing.assert_array_equal(spec.centroids, cvt.centroids)


@pytest.mark.parametrize(
    "archive",
    [
        qd.GridArchive(cells=(6, 5), bounds=((0, 1), (0, 1))),
        qd.GridArchive(cells=(3, 3, 3), bounds=((0, 1),) * 3),
        qd.GridArchive(cells=(7,), bounds=((0, 1),)),
        qd.CVTArchive(centroids=np.random.default_rng(0).uniform(size=(20, 2)), bounds=((0, 1), (0, 1))),
    ],
)
def test_heatmap_writes_a_png(tmp_path, archive):
    rep = archive.empty(jnp.zeros(2))
    d = archive.descriptor_dim
    desc = jnp.asarray(np.random.default_rng(1).uniform(size=(15, d)), jnp.float32)
    rep, _ = archive.insert(rep, jnp.zeros((15, 2)), jnp.arange(15.0), desc)
    path = tmp_path / "map.png"
    qd.heatmap(rep, archive, str(path), title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tasks_match_their_numpy_twins_in_the_benchmark():
    """The linear-projection functions and the arm give what pyribs' side of benchmarks/qd_vs_ribs
    computes in NumPy: both sides solve the same problems."""
    from benchmarks.qd_vs_ribs import numpy_arm, numpy_projection

    rng = np.random.default_rng(0)
    x = rng.uniform(-8, 8, size=(50, 100)).astype(np.float32)
    for function in ("sphere", "rastrigin"):
        evaluation, _ = ne.tasks.linear_projection(function, 100).evaluate(None, (), jnp.asarray(x))
        objective, descriptors = numpy_projection(function, x.astype(np.float64))
        np.testing.assert_allclose(evaluation.fitness, objective, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(evaluation.descriptor, descriptors, rtol=1e-4, atol=1e-3)
    best, _ = ne.tasks.linear_projection("sphere", 10).evaluate(None, (), jnp.full((1, 10), 0.4 * 5.12))
    assert float(best.fitness[0]) == pytest.approx(100.0)
    angles = rng.uniform(-4, 4, size=(50, 12)).astype(np.float32)
    evaluation, _ = ne.tasks.arm(12).evaluate(None, (), jnp.asarray(angles))
    objective, effector = numpy_arm(angles.astype(np.float64))
    np.testing.assert_allclose(evaluation.fitness, objective, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(evaluation.descriptor, effector, atol=1e-5)
    assert np.all(np.abs(np.asarray(evaluation.descriptor)) <= 1.0 + 1e-6)
    straight, _ = ne.tasks.arm(4).evaluate(None, (), jnp.zeros((1, 4)))
    np.testing.assert_allclose(straight.descriptor, [[1.0, 0.0]], atol=1e-6)
    assert float(straight.fitness[0]) == 0.0
    with pytest.raises(ValueError, match="unknown function"):
        ne.tasks.linear_projection("ackley")
