"""ne.moo: non-dominated sorting, crowding distance, hypervolume, IGD and reference directions,
against brute force and against pymoo 0.6 (the oracle)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroevo import moo
from neuroevo.moo import dominance
from tests.oracles import require


def brute_ranks(f: np.ndarray) -> np.ndarray:
    """Fronts by definition: peel the members no remaining member dominates (maximisation)."""
    f = np.where(np.isnan(f), -np.inf, f)
    n = len(f)
    dom = np.all(f[:, None] >= f[None], -1) & np.any(f[:, None] > f[None], -1)  # [i, j]: i dominates j
    rank = np.full(n, n)
    k = 0
    while (rank == n).any():
        remaining = rank == n
        front = remaining & ~np.any(dom & remaining[:, None], axis=0)
        rank[front] = k
        k += 1
    return rank


@settings(max_examples=25)
@given(
    st.integers(1, 4).flatmap(
        lambda m: st.lists(st.lists(st.integers(-3, 3), min_size=m, max_size=m), min_size=1, max_size=40)
    ),
    st.integers(1, 8),
)
def test_ranks_equal_brute_force_with_ties(rows, chunk):
    f = np.asarray(rows, np.float32)
    expected = brute_ranks(f)
    np.testing.assert_array_equal(moo.non_dominated_ranks(f, chunk_size=chunk), expected)
    # n_stop: the first fronts holding at least n_stop members are exact, the rest get rank n.
    stop = max(1, len(f) // 2)
    partial = np.asarray(moo.non_dominated_ranks(f, n_stop=stop, chunk_size=chunk))
    ranked = partial < len(f)
    assert ranked.sum() >= stop
    np.testing.assert_array_equal(partial[ranked], expected[ranked])
    last = expected[ranked].max()
    assert np.all(expected[~ranked] > last)


@pytest.mark.parametrize("m", [2, 3, 5])
def test_ranks_equal_pymoo(m):
    nds = require("pymoo.util.nds.non_dominated_sorting")
    f = np.random.default_rng(m).random((300, m))
    _, rank = nds.NonDominatedSorting().do(f, return_rank=True)
    np.testing.assert_array_equal(moo.non_dominated_ranks(-f), rank)


def test_two_objective_peeling_equals_counting_on_a_large_population():
    rng = np.random.default_rng(0)
    # 5000 members: the associative-scan path of the peeling (4096 and more), and packed sorts.
    f = np.concatenate([rng.integers(0, 40, (4000, 2)), rng.random((1000, 2)) * 40]).astype(np.float32)
    f[::97] = -np.inf  # NaN-like members, and -0.0 equal to 0.0
    f[1::89, 0] = -0.0
    f[2::89, 0] = 0.0
    two = jax.jit(lambda f: dominance._ranks_two(f, f.shape[0]))(f)
    counting = jax.jit(lambda f: dominance._ranks_counting(f, f.shape[0], 128))(f)
    np.testing.assert_array_equal(two, counting)


@pytest.mark.parametrize("packed_from", [1, 4096])
def test_orderings_equal_numpy(packed_from, monkeypatch):
    monkeypatch.setattr(moo.ordering, "PACKED_FROM", packed_from)  # packed sorts, or lax.sort
    rng = np.random.default_rng(5)
    for n in (1, 7, 300):
        primary, secondary = rng.integers(0, 5, n), rng.integers(0, 5, n)
        np.testing.assert_array_equal(
            moo.ordering.lexsort(jnp.asarray(primary), jnp.asarray(secondary)),
            np.lexsort((secondary, primary)),
        )
        words = rng.integers(0, 2**32, n, dtype=np.uint32)
        shuffled = np.asarray(moo.ordering.permutation(jnp.asarray(words)))
        assert sorted(shuffled.tolist()) == list(range(n))
        if packed_from == 4096:  # lax.sort: ties by the words themselves
            np.testing.assert_array_equal(shuffled, np.argsort(words, kind="stable"))
        order = np.asarray(
            moo.ordering.lexsort(jnp.asarray(primary), jnp.asarray(secondary), jnp.asarray(words))
        )
        key = np.lexsort((secondary, primary))
        np.testing.assert_array_equal(primary[order], primary[key])  # the keys in order,
        np.testing.assert_array_equal(secondary[order], secondary[key])
        assert sorted(order.tolist()) == list(range(n))  # a permutation, ties at random
        assert n < 100 or not np.array_equal(order, key)
        keys = rng.normal(size=n).astype(np.float32)
        keys[::3] = 0.5
        np.testing.assert_array_equal(
            moo.ordering.argsort(jnp.asarray(keys)), np.argsort(keys, kind="stable")
        )


def test_three_objectives_chunked_equals_one_chunk():
    f = np.random.default_rng(1).integers(0, 12, (1500, 3)).astype(np.float32)
    a = moo.non_dominated_ranks(f, chunk_size=64)
    b = moo.non_dominated_ranks(f, chunk_size=1500)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, brute_ranks(f))


def test_nan_is_worst_and_shapes_are_checked():
    f = np.array([[1.0, 1.0], [np.nan, 5.0], [0.0, 0.0], [np.nan, np.nan]], np.float32)
    # NaN is -inf: [nan, 5] is not dominated by [1, 1] (it is better in the second objective).
    np.testing.assert_array_equal(moo.non_dominated_ranks(f), [0, 0, 1, 2])
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        moo.non_dominated_ranks(np.zeros(4))
    with pytest.raises(ValueError, match="n_stop"):
        moo.non_dominated_ranks(f, n_stop=5)


def test_crowding_distance_equals_pymoo_per_front():
    metrics = require("pymoo.operators.survival.rank_and_crowding.metrics")
    nds = require("pymoo.util.nds.non_dominated_sorting")
    rng = np.random.default_rng(2)
    for m in (2, 3):
        f = rng.random((120, m))
        fronts = nds.NonDominatedSorting().do(f)
        ours = np.asarray(moo.crowding_distance(-f, moo.non_dominated_ranks(-f)))
        crowding = metrics.get_crowding_function("cd")  # what pymoo's NSGA-II survival uses
        for front in fronts:
            np.testing.assert_allclose(ours[front], crowding.do(f[front]), rtol=1e-5)


def test_crowding_distance_small_and_flat_fronts():
    f = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], np.float32)
    rank = np.array([0, 0, 1, 2, 2, 2])
    cd = np.asarray(moo.crowding_distance(f, rank))
    assert np.all(np.isinf(cd[:3]))  # fronts of one or two members
    np.testing.assert_array_equal(cd[3:], 0.0)  # a front equal in every objective


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_equals_pymoo(m):
    hv = require("pymoo.indicators.hv")
    rng = np.random.default_rng(m)
    for n in (1, 5, 60):
        f = rng.random((n, m))  # minimised, some dominated points and a duplicate
        f[-1] = f[0]
        reference = np.full(m, 1.1)
        expected = hv.HV(ref_point=reference)(f)
        np.testing.assert_allclose(moo.hypervolume(-f, -reference), expected, rtol=1e-5)
        np.testing.assert_allclose(jax.jit(moo.hypervolume)(-f, -reference), expected, rtol=1e-5)


def test_hypervolume_known_values_mask_and_chunks():
    square = np.array([[1.0, 1.0]])
    assert float(moo.hypervolume(square, np.zeros(2))) == 1.0
    staircase = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [1.0, 1.0]])
    assert float(moo.hypervolume(staircase, np.zeros(2))) == pytest.approx(6.0)
    assert float(moo.hypervolume(staircase, np.zeros(2), mask=np.array([1, 0, 1, 0], bool))) == pytest.approx(
        5.0
    )
    cubes = np.random.default_rng(3).random((50, 3)) + 0.01
    a = moo.hypervolume(cubes, np.zeros(3), chunk_size=7)
    b = moo.hypervolume(cubes, np.zeros(3), chunk_size=50)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    # Inside jit a point not beyond the reference point adds nothing (it cannot be checked there).
    worse = np.array([[1.0, 1.0], [-1.0, 5.0]])
    assert float(jax.jit(moo.hypervolume)(worse, np.zeros(2))) == pytest.approx(1.0)


def test_hypervolume_bad_input_names_the_values():
    with pytest.raises(
        ValueError, match=r"reference point \[0.0, 0.0\] is not worse than point 1 \[-1.0, 5.0\]"
    ):
        moo.hypervolume(np.array([[1.0, 1.0], [-1.0, 5.0]]), np.zeros(2))
    with pytest.raises(ValueError, match=r"not worse than point 0"):
        moo.hypervolume(np.array([[0.0, 1.0]]), np.zeros(2))  # equal in one objective
    with pytest.raises(ValueError, match=r"shape \(3,\).*2 objectives"):
        moo.hypervolume(np.ones((2, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="exact for 2 or 3 objectives, got 4"):
        moo.hypervolume(np.ones((2, 4)), np.zeros(4))


def test_igd_equals_pymoo_and_masks():
    igd = require("pymoo.indicators.igd")
    rng = np.random.default_rng(4)
    front, points = rng.random((200, 3)), rng.random((40, 3))
    np.testing.assert_allclose(moo.igd(points, front, chunk_size=33), igd.IGD(front)(points), rtol=1e-5)
    mask = np.arange(40) < 10
    np.testing.assert_allclose(moo.igd(points, front, mask), igd.IGD(front)(points[:10]), rtol=1e-5)
    with pytest.raises(ValueError, match="front has 2 objectives"):
        moo.igd(points, front[:, :2])


@pytest.mark.parametrize("m, p", [(2, 5), (3, 12), (5, 4)])
def test_das_dennis_equals_pymoo(m, p):
    ref_dirs = require("pymoo.util.ref_dirs")
    ours = moo.das_dennis(m, p)
    theirs = ref_dirs.get_reference_directions("das-dennis", m, n_partitions=p)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(np.sort(ours, axis=0), np.sort(theirs, axis=0), atol=1e-12)
    np.testing.assert_allclose(ours.sum(1), 1.0)
    assert len({tuple(r) for r in np.round(ours * p).astype(int)}) == len(ours)
    assert moo.partitions_for(3, 92) == 12 and moo.partitions_for(3, 90) == 11
    with pytest.raises(ValueError, match="n_partitions"):
        moo.das_dennis(3, 0)


def test_perpendicular_distances():
    points = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    directions = jnp.array([[1.0, 0.0], [0.5, 0.5]])
    d = np.asarray(moo.perpendicular_distances(points, directions))
    np.testing.assert_allclose(d, [[0.0, np.sqrt(0.5)], [1.0, 0.0], [2.0, np.sqrt(2.0)]], atol=1e-6)
