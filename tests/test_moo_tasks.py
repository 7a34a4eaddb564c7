"""ZDT and DTLZ tasks against pymoo's problems and fronts; the discrete NK and trap tasks."""

import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo import moo
from tests.oracles import require


def fitness(task, x):
    return np.asarray(task.evaluate(None, (), jnp.asarray(x, jnp.float32))[0].fitness, np.float64)


@pytest.mark.parametrize("number, n_var", [(1, 30), (2, 30), (3, 30), (4, 10), (6, 10), (1, 5)])
def test_zdt_equals_pymoo(number, n_var):
    problems = require("pymoo.problems")
    task = ne.tasks.zdt(number, n_var)
    low, high = task.info["bounds"]
    x = low + np.random.default_rng(number).random((64, n_var)) * (high - low)
    expected = problems.get_problem(f"zdt{number}", n_var=n_var).evaluate(x)
    np.testing.assert_allclose(-fitness(task, x), expected, rtol=2e-5, atol=2e-5)
    assert task.info["n_objectives"] == 2 and task.info["n_var"] == n_var


@pytest.mark.parametrize("number, m, n_var", [(n, 3, None) for n in range(1, 8)] + [(2, 5, 14), (7, 4, 10)])
def test_dtlz_equals_pymoo(number, m, n_var):
    problems = require("pymoo.problems")
    task = ne.tasks.dtlz(number, m, n_var)
    n = task.info["n_var"]
    x = np.random.default_rng(number).random((64, n))
    x[0] = 0.5  # on the front for DTLZ1-5
    expected = problems.get_problem(f"dtlz{number}", n_var=n, n_obj=m).evaluate(x)
    np.testing.assert_allclose(-fitness(task, x), expected, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("name", ["zdt1", "zdt2", "zdt3", "dtlz1", "dtlz2"])
def test_true_fronts_match_pymoo(name):
    problems = require("pymoo.problems")
    ref_dirs = require("pymoo.util.ref_dirs")
    task = ne.bench.moo.problem(name)
    if name.startswith("dtlz"):  # 91 points: the 91 Das-Dennis directions of 12 partitions, as pymoo's
        directions = ref_dirs.get_reference_directions("das-dennis", 3, n_partitions=12)
        theirs = problems.get_problem(name, n_obj=3).pareto_front(directions)
        ours = -task.info["pareto_front"](91)
        np.testing.assert_allclose(
            np.unique(ours.round(9), axis=0), np.unique(theirs.round(9), axis=0), atol=1e-9
        )
        return
    theirs = problems.get_problem(name).pareto_front(300)
    ours = -task.info["pareto_front"](300)
    # Each sample lies on the other: mutual IGD near 0 (the samples differ).
    assert float(moo.igd(ours, theirs)) < 0.01 and float(moo.igd(theirs, ours)) < 0.01


@pytest.mark.parametrize("number", [2, 3, 4, 5, 6])
def test_dtlz_fronts_in_any_dimension_lie_on_the_sphere(number):
    task = ne.tasks.dtlz(number, 5)
    front = -task.info["pareto_front"](200)
    np.testing.assert_allclose(np.linalg.norm(front, axis=1), 1.0, atol=1e-9)
    assert np.all(front >= -1e-12)
    # And a point evaluated at distance g = 0 lies on it.
    x = np.full(task.info["n_var"], 0.5 if number != 6 else 0.0)
    np.testing.assert_allclose(np.linalg.norm(fitness(task, x[None])), 1.0, rtol=1e-5)


def test_dtlz7_front_is_non_dominated_and_reference_points_are_worse():
    task = ne.tasks.dtlz(7, 3)
    front = task.info["pareto_front"](300)  # maximisation convention
    assert np.all(np.asarray(moo.non_dominated_ranks(front)) == 0)
    for name in ne.bench.moo.PROBLEMS:
        t = ne.bench.moo.problem(name)
        moo.check_reference(t.info["pareto_front"](100), t.info["ref_point"])  # raises if not worse


def test_problem_bad_input():
    with pytest.raises(ValueError, match="unknown ZDT problem 5"):
        ne.tasks.zdt(5)
    with pytest.raises(ValueError, match="n_var >= 2"):
        ne.tasks.zdt(1, 1)
    with pytest.raises(ValueError, match="n_var >= n_objectives = 4"):
        ne.tasks.dtlz(2, 4, 3)
    with pytest.raises(ValueError, match="n_objectives >= 2"):
        ne.tasks.dtlz(2, 1)
    with pytest.raises(ValueError, match="zdt1 has 2 objectives"):
        ne.bench.moo.problem("zdt1", n_objectives=3)


def test_nk_landscape_equals_its_definition():
    task = ne.tasks.nk_landscape(12, 3, seed=5)
    tables, neighbours = task.info["tables"], task.info["neighbours"]
    x = np.random.default_rng(0).integers(0, 2, (20, 12))
    expected = [
        np.mean([tables[i, int("".join(str(b) for b in row[neighbours[i]]), 2)] for i in range(12)])
        for row in x
    ]
    np.testing.assert_allclose(task.evaluate(None, (), jnp.asarray(x))[0].fitness, expected, rtol=1e-6)
    assert task.info["space"].n_genes == 12 and list(task.info["space"].cardinalities) == [2] * 12
    with pytest.raises(ValueError, match="k must be in"):
        ne.tasks.nk_landscape(4, 4)


def test_trap_values():
    task = ne.tasks.trap(n_blocks=2, k=4)
    x = jnp.array([[1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 1], [0] * 8, [1] * 8])
    # Blocks score 4 (all ones), else 3 - ones: [4 + 3, 0 + 2, 3 + 3, 4 + 4] / 8.
    np.testing.assert_allclose(task.evaluate(None, (), x)[0].fitness, [7 / 8, 2 / 8, 6 / 8, 1.0])
