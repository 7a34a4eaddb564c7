"""ne.bbob's noisy suite (f101-f130) against COCO's own ``bbob-noisy`` suite (cocoex).

What matches and how:

- The noise-free part exactly. cocoex's noise is not random: a fresh
  ``cocoex.Suite`` resets two global counters (30) and every evaluation draws
  from COCO's legacy generator with the next seed (Gaussian: one normal; uniform:
  two uniforms; Cauchy: a uniform, then two normals). Replaying those draws
  through our noise models (``f_gn``, ``f_un``, ``f_cn``) on our noise-free
  ``f - fopt`` reproduces cocoex's noisy values to 1e-9 (relative) at random
  points inside and outside [-5, 5]: this checks xopt, fopt, rotations, the
  cores (with the suite's conditioning, factors and penalties) and the noise
  formulas together.
- Our own draws (from a JAX key) have the definitions' distributions: at a fixed
  point, quantiles of the noise factor agree with cocoex's over many evaluations.
- One deliberate difference: below ``f - fopt = 1e-8`` the definitions apply no
  noise (and no 1.01e-8 offset); cocoex 2.8 applies both everywhere, so at xopt
  it returns ``fopt + 1.01e-8`` (Gaussian, uniform) and ``fopt + 1000 alpha +
  1.01e-8`` (Cauchy), we return ``fopt``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracles import require

import neuroevo as ne
from neuroevo.bbob import legacy_rng, noisy

cocoex = require("cocoex")

INSTANCES = (1, 7, 42)


class CocoDraws:
    """The random numbers a fresh cocoex suite draws, in order (two counters starting at 30)."""

    def __init__(self):
        self.useed = self.nseed = 30

    def uniform(self):
        self.useed += 1
        return legacy_rng.unif(1, self.useed)[0]

    def normal(self):
        self.nseed += 1
        return legacy_rng.gauss(1, self.nseed)[0]

    def draws(self, model):
        if model == "gaussian":
            return (self.normal(),)
        if model == "uniform":
            return (self.uniform(), self.uniform())
        u = self.uniform()
        return (u, self.normal(), self.normal())


# every core in 2 of COCO's dimensions (the noisy suite has only 2, 3, 5, 10, 20, 40), all covered
DIMS = {1: (2, 40), 8: (3, 20), 7: (5, 10), 10: (3, 40), 14: (2, 10), 17: (5, 20), 19: (3, 10), 21: (2, 20)}


def test_matches_cocoex_noise_free_part_and_noise_formula():
    suite = cocoex.Suite("bbob-noisy", "instances: " + ",".join(map(str, INSTANCES)), "")
    coco = CocoDraws()  # must be created with the suite and follow every evaluation in order
    rs = np.random.default_rng(0)
    worst = 0.0
    with jax.enable_x64(True):
        for fid in range(101, 131):
            base, model, _ = noisy._TABLE[fid]
            for d in DIMS[base]:
                for inst in INSTANCES:
                    f = ne.bbob.function(fid, d, inst)
                    assert isinstance(f, ne.bbob.NoisyBBOBFunction)
                    p = suite.get_problem_by_function_dimension_instance(fid, d, inst)
                    X = np.concatenate([rs.uniform(-5, 5, (6, d)), rs.uniform(-6, 6, (2, d))])
                    ref = np.array([p(x) for x in X])
                    draws = [coco.draws(model) for _ in X]
                    g = np.asarray(f.core.raw(jnp.asarray(X)))
                    assert np.all(g >= 1e-8)
                    cols = tuple(jnp.asarray(c) for c in zip(*draws, strict=True))
                    ours = f.fopt + np.asarray(noisy.apply_model(jnp.asarray(g), model, f.params, cols))
                    ours = ours + np.asarray(noisy.penalty(jnp.asarray(X)))
                    dref = ref - f.fopt
                    atol = 8 * np.finfo(np.float64).eps * abs(f.fopt)
                    err = np.abs(ours - ref)
                    assert np.all(err <= 1e-9 * np.abs(dref) + atol), (fid, d, inst, err / np.abs(dref))
                    worst = max(worst, float(np.max(err / np.abs(dref))))
                    # the noise-free value is what cocoex records as "noise-free"
                    np.testing.assert_allclose(
                        np.asarray(f.noiseless(jnp.asarray(X))),
                        f.fopt + g + np.asarray(noisy.penalty(jnp.asarray(X))),
                        rtol=1e-13,
                    )
    print(f"noisy suite: max rel err of (f - fopt) vs cocoex with COCO's draws {worst:.1e}")


@pytest.mark.parametrize("fid", [101, 108, 109, 115, 123, 130])
def test_at_the_optimum_no_noise_below_1e8(fid):
    base, model, _ = noisy._TABLE[fid]
    f = ne.bbob.noisy_function(fid, 5, 3)
    suite = cocoex.Suite("bbob-noisy", "instances: 3", "dimensions: 5")
    p = suite.get_problem_by_function_dimension_instance(fid, 5, 3)
    ref = p(f.xopt) - f.fopt
    alpha = f.params.get("alpha", 0.0) if model == "cauchy" else 0.0
    assert ref == pytest.approx(1000.0 * alpha + 1.01e-8, rel=1e-6, abs=1e-3 * alpha)  # cocoex 2.8
    with jax.enable_x64(True):
        x = jnp.asarray(f.xopt)
        assert float(f.raw(x)) == pytest.approx(0.0, abs=1e-20)
        assert float(f.delta(jax.random.key(0), x)) == float(f.raw(x))  # the definitions
        assert float(f(jax.random.key(0), x)) == pytest.approx(f.fopt, abs=1e-12)


@pytest.mark.parametrize("fid", [107, 108, 109, 102, 103])
def test_noise_distribution_matches_cocoex(fid):
    """Quantiles of (noisy f - fopt) at a fixed point: our JAX draws vs cocoex's draws."""
    n = 4000
    base, model, _ = noisy._TABLE[fid]
    f = ne.bbob.noisy_function(fid, 5, 2)
    suite = cocoex.Suite("bbob-noisy", "instances: 2", "dimensions: 5")
    p = suite.get_problem_by_function_dimension_instance(fid, 5, 2)
    x = f.xopt + 0.3
    ref = np.array([p(x) for _ in range(n)]) - f.fopt
    with jax.enable_x64(True):
        xs = jnp.broadcast_to(jnp.asarray(x), (n, 5))
        ours = np.asarray(jax.jit(f.delta)(jax.random.key(1), xs))
        g = float(f.raw(jnp.asarray(x)))
    distinct = n * f.params["p"] / 2 if model == "cauchy" else n / 2
    assert np.unique(ours).size > distinct  # a draw per point
    qs = (0.05, 0.25, 0.5, 0.75, 0.95)
    if model == "cauchy":
        # g + 1000 alpha except with probability p: an outlier of alpha N1/|N2|
        base_value = g + 1000.0 * f.params["alpha"] + 1.01e-8
        outliers = [v[np.abs(v - base_value) > 1e-9 * base_value] for v in (ours, ref)]
        for v in outliers:
            assert abs(v.size / n - f.params["p"]) < 0.03
        for v in outliers:  # alpha times a standard Cauchy: quartiles -alpha, 0, alpha
            q = np.quantile(v - base_value, (0.25, 0.5, 0.75)) / f.params["alpha"]
            np.testing.assert_allclose(q, [-1.0, 0.0, 1.0], atol=0.5)  # ~2.5 sigma at n p = 200
    else:
        lo, lr = np.log(ours - 1.01e-8), np.log(ref - 1.01e-8)
        qo, qr = np.quantile(lo, qs), np.quantile(lr, qs)
        spread = qr[-1] - qr[0]
        np.testing.assert_allclose(qo, qr, atol=0.06 * spread)
        if model == "gaussian":  # log(noisy / g) ~ N(0, beta^2)
            assert np.median(lo) == pytest.approx(np.log(g), abs=0.05)
            assert np.std(lo) == pytest.approx(f.params["beta"], rel=0.05)


def test_api_jit_vmap_float32_and_task():
    f = ne.bbob.function(113, 4, 2)
    assert isinstance(f, ne.bbob.NoisyBBOBFunction) and "step ellipsoid" in repr(f)
    x = jax.random.uniform(jax.random.key(0), (3, 3, 4), minval=-5, maxval=5)
    y = f(jax.random.key(1), x)
    assert y.shape == (3, 3) and y.dtype == jnp.float32
    np.testing.assert_array_equal(jax.jit(f)(jax.random.key(1), x), y)  # pure: same key, same values
    assert not np.array_equal(f(jax.random.key(2), x), y)
    keys = jax.random.split(jax.random.key(3), 3)
    assert jax.vmap(f)(keys, x).shape == (3, 3)
    np.testing.assert_allclose(f.noiseless(x), f.raw(x) + np.float32(f.fopt), rtol=1e-6)
    # inside [-5, 5] the noise-free part is f7's landscape (same instance data, no penalty there)
    f7 = ne.bbob.function(7, 4, 2)
    np.testing.assert_allclose(f.raw(x), f7.raw(x), rtol=1e-6)
    np.testing.assert_array_equal(f.xopt, f7.xopt)
    assert f.fopt == f7.fopt

    task = ne.tasks.bbob(113, 4, 2)
    assert task.info["noisy"] and task.info["name"] == "bbob_noisy_f113_i02_d04"
    sols = jnp.stack([jnp.zeros(4), jnp.asarray(f.xopt, dtype=jnp.float32), jnp.full(4, 7.0)])
    # outside [-5, 5]: f_pen = 100 * 4 * 2^2 (f7's own penalty, 4 * 2^2, is not in the core)
    np.testing.assert_allclose(f.raw(sols)[2] - f.core.raw(sols)[2], 1600.0, rtol=1e-6)
    ev, _ = task.evaluate(jax.random.key(4), task.init(jax.random.key(0)), sols)
    np.testing.assert_allclose(ev.fitness, -ev.metrics["delta"])
    np.testing.assert_allclose(ev.metrics["noiseless_delta"], f.raw(sols), rtol=1e-6)
    np.testing.assert_allclose(ev.metrics["delta"], f.delta(jax.random.key(4), sols), rtol=1e-6)
    np.testing.assert_allclose(ev.metrics["value"], f(jax.random.key(4), sols), rtol=1e-6)
    # at xopt (rounded to float32) f - fopt < 1e-8: no noise, the fitness is the noise-free value
    assert 0.0 <= float(ev.metrics["noiseless_delta"][1]) < 1e-8
    assert float(ev.fitness[1]) == -float(ev.metrics["noiseless_delta"][1])


def test_suite_and_bad_arguments():
    problems = ne.bbob.suite(functions=range(101, 131), dimensions=[2], instances=[1, 2])
    assert len(problems) == 60 and problems[0] == (101, 2, 1)
    assert isinstance(problems[-1].function(), ne.bbob.NoisyBBOBFunction)
    for bad in (0, 25, 100, 131, 1.5):
        with pytest.raises(ValueError, match=r"1\.\.24 \(noiseless\) or 101\.\.130"):
            ne.bbob.function(bad, 2, 1)
        with pytest.raises(ValueError, match=r"101\.\.130"):
            ne.tasks.bbob(bad, 2, 1)
    with pytest.raises(ValueError, match=r"101\.\.130"):
        ne.bbob.noisy_function(1, 2, 1)
    with pytest.raises(ValueError, match=">= 2"):
        ne.bbob.noisy_function(101, 1, 1)
    with pytest.raises(ValueError, match=">= 1"):
        ne.bbob.noisy_function(101, 2, 0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        ne.bbob.noisy_function(101, 3, 1)(jax.random.key(0), jnp.zeros((2, 4)))
