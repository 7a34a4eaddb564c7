"""CMA-ES: it optimises, its update is the tutorial's, its termination criteria and
restarts work inside the compiled program, and its state never holds a NaN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neuroevo as ne
from neuroevo.strategies.cma_es import CRITERIA, default_popsize, recombination


def rotated_ellipsoid(dim, condition=1e6, seed=0):
    """f(x) = sum_i cond^((i-1)/(n-1)) (R (x - xopt))_i^2: a rotated, ill-conditioned quadratic."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    xopt = rng.uniform(-3, 3, dim)
    scales = condition ** (np.arange(dim) / (dim - 1))

    def f(x):
        z = (jnp.asarray(q, x.dtype) @ (x - jnp.asarray(xopt, x.dtype)).T).T
        return jnp.sum(jnp.asarray(scales, x.dtype) * z**2, axis=-1)

    return f


def rastrigin(x):
    return 10 * x.shape[-1] + jnp.sum(x**2 - 10 * jnp.cos(2 * jnp.pi * x), axis=-1)


def minimise(strategy, f, x0, generations, key=0):
    """A whole run in one lax.scan; returns (state, best f - 0 per generation)."""

    def step(state, k):
        k_ask, k_tell = jax.random.split(k)
        g, state = strategy.ask(k_ask, state)
        fitness = -f(ne.population(strategy, state, g))
        state = strategy.tell(k_tell, state, g, fitness)
        return state, -state.best_fitness

    state = strategy.init(jax.random.key(key), x0)
    return jax.jit(lambda s: jax.lax.scan(step, s, jax.random.split(jax.random.key(key + 1), generations)))(
        state
    )


def finite(tree):
    """No NaN anywhere; -inf only where it means "nothing yet" (best fitness, histories)."""
    return all(
        bool(jnp.all(~jnp.isnan(x))) for x in jax.tree_util.tree_leaves(tree) if x.dtype.kind == "f"
    ) and all(
        bool(jnp.all(jnp.isfinite(x)))
        for x in (tree.sigma, tree.C, tree.D, tree.p_sigma, tree.p_c, tree.mean)
    )


def test_solves_a_rotated_ill_conditioned_quadratic_to_1e_8_in_float64():
    with jax.enable_x64(True):
        f = rotated_ellipsoid(10)
        state, best = minimise(ne.strategies.make("cma_es", sigma=2.0), f, jnp.zeros(10, jnp.float64), 800)
        assert best.dtype == jnp.float64
        hit = int(np.argmax(np.asarray(best) < 1e-8))
        # pycma needs about 6000 evaluations (600 generations of 10) on this problem.
        assert best[-1] < 1e-8 and 0 < hit < 800, (float(best[-1]), hit)
        assert int(state.popsize) == default_popsize(10) == 10
        # Learned C ~ the inverse Hessian: its condition number approaches 1e6.
        eig = np.linalg.eigvalsh(np.asarray(state.C))
        assert 1e5 < eig.max() / eig.min() < 1e7


def test_float32_reaches_1e_8_on_the_ellipsoid_despite_the_lattice():
    """A float32 search (as in JAX's default) of a function evaluated in float64, as cocoex does."""
    with jax.enable_x64(True):
        f = rotated_ellipsoid(8)
        strategy = ne.strategies.make("cma_es", sigma=2.0)
        state, best = minimise(strategy, lambda x: f(x.astype(jnp.float64)), jnp.zeros(8, jnp.float32), 1000)
        assert state.C.dtype == state.sigma.dtype == jnp.float32
        assert float(best.min()) < 1e-8
        assert finite(state)


def test_sep_cma_es_on_a_separable_ellipsoid_in_100_dimensions():
    def ellipsoid(x):
        return jnp.sum(1e3 ** (jnp.arange(x.shape[-1]) / (x.shape[-1] - 1)) * (x - 1.0) ** 2, axis=-1)

    state, best = minimise(ne.strategies.make("sep_cma_es", sigma=1.0), ellipsoid, jnp.zeros(100), 1000)
    assert state.C.shape == (100,) and state.B.shape == (0,)  # diagonal: O(n) memory
    assert float(best[-1]) < 1e-6 * float(best[0])
    c = np.asarray(state.C)
    assert c[0] > 10 * c[-1]  # it learned the scaling: variance is larger where curvature is smaller


def test_first_update_matches_the_tutorial_formulas():
    """One tell against a NumPy transcription of the tutorial (C = I, m = 0)."""
    with jax.enable_x64(True):
        n, lam = 4, 8
        strategy = ne.strategies.cma_es(popsize=lam, sigma=0.5)
        state = strategy.init(jax.random.key(0), jnp.zeros(n))
        g, state = strategy.ask(jax.random.key(1), state)
        x = g.x
        fitness = -jnp.sum((x - 1.0) ** 2, axis=1)
        new = jax.jit(strategy.tell)(jax.random.key(2), state, g, fitness)

        X, F = np.asarray(x), np.asarray(fitness)
        y = X[np.argsort(-F)] / 0.5
        raw = np.log((lam + 1) / 2) - np.log(np.arange(1, lam + 1))
        mu = lam // 2
        mueff = raw[:mu].sum() ** 2 / (raw[:mu] ** 2).sum()
        mueff_neg = raw[mu:].sum() ** 2 / (raw[mu:] ** 2).sum()
        cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
        cs = (mueff + 2) / (n + mueff + 3)  # pycma's constants (the tutorial has + 5 and no 0.25)
        c1 = 2 / ((n + 1.3) ** 2 + mueff)
        cmu = min(1 - c1, 2 * (0.25 + mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))
        ds = 1 + 2 * max(0, max(1, 3 * (1 - 0.5 ** (n / 9))) * np.sqrt((mueff - 1) / (n + 1)) - 1) + cs
        neg = min(1 + c1 / cmu, 1 + 2 * mueff_neg / (mueff + 2), (1 - c1 - cmu) / (n * cmu))
        w = np.concatenate([raw[:mu] / raw[:mu].sum(), neg * raw[mu:] / -raw[mu:].sum()])
        yw = w[:mu] @ y[:mu]
        ps = np.sqrt(cs * (2 - cs) * mueff) * yw
        pc = np.sqrt(cc * (2 - cc) * mueff) * yw  # h_sigma = 1 in generation 1 here
        wc = np.where(w >= 0, w, w * n / np.sum(y**2, axis=1))
        C = (1 - c1 - cmu * w.sum()) * np.eye(n) + c1 * np.outer(pc, pc) + cmu * (y.T * wc) @ y
        chin = np.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n**2))
        sigma = 0.5 * np.exp(min(1, cs / ds * (np.linalg.norm(ps) / chin - 1)))

        r = recombination(jnp.asarray(lam), lam, n, False, jnp.float64)
        np.testing.assert_allclose(r.weights, w, rtol=1e-12)
        np.testing.assert_allclose(new.mean, 0.5 * yw, rtol=1e-10)
        np.testing.assert_allclose(new.p_sigma, ps, rtol=1e-10)
        np.testing.assert_allclose(new.p_c, pc, rtol=1e-10)
        np.testing.assert_allclose(new.C, C, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(new.sigma, sigma, rtol=1e-10)
        assert np.isclose(w[:mu].sum(), 1) and w[mu:].sum() < 0  # active CMA


@pytest.mark.parametrize("dim, popsize", [(10, 10), (5, 24), (40, 15)])
def test_weights_and_learning_rates_are_pycmas(dim, popsize):
    import warnings

    import cma

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es = cma.CMAEvolutionStrategy(np.zeros(dim), 1.0, {"verbose": -9, "popsize": popsize})
    with jax.enable_x64(True):
        r = recombination(jnp.asarray(popsize), popsize + 3, dim, False, jnp.float64)
    np.testing.assert_allclose(r.weights[:popsize], np.asarray(es.sp.weights), rtol=1e-10)
    assert np.all(np.asarray(r.weights[popsize:]) == 0)  # beyond the live population
    for ours, theirs in [
        ("c_1", es.sp.c1),
        ("c_mu", es.sp.cmu),
        ("c_c", es.sp.cc),
        ("mueff", es.sp.weights.mueff),
    ]:
        assert float(getattr(r, ours)) == pytest.approx(theirs, rel=1e-10), ours
    assert float(r.c_s) == pytest.approx(es.adapt_sigma.cs, rel=1e-10)
    assert float(r.d_s) == pytest.approx(es.adapt_sigma.damps, rel=1e-10)


def test_flat_fitness_stops_a_run_without_restarts():
    strategy = ne.strategies.make("cma_es", popsize=8, sigma=1.0)
    state, _ = minimise(strategy, lambda x: jnp.zeros(x.shape[0]), jnp.zeros(3), 6)
    assert bool(state.stop) and bool(state.termination.flat_fitness)
    # pycma's tolflatfitness=1: stop after the second flat generation; then nothing moves.
    assert int(state.generation) == 6 and int(state.run_generation) == 2
    assert int(state.evaluations) == 16


def test_tolfun_or_tolx_ends_a_converged_float64_run():
    with jax.enable_x64(True):
        state, best = minimise(
            ne.strategies.make("cma_es", sigma=1.0),
            lambda x: jnp.sum(x**2, -1),
            jnp.ones(5, jnp.float64),
            1500,
        )
        fired = {c for c in CRITERIA if bool(getattr(state.termination, c))}
        assert bool(state.stop) and fired & {"tolfun", "tolfunhist", "tolx"}, fired
        assert float(best[-1]) < 1e-10


def test_conditioncov_fires_on_a_hopelessly_conditioned_function():
    with jax.enable_x64(True):
        f = rotated_ellipsoid(4, condition=1e20)
        state, _ = minimise(
            ne.strategies.make("cma_es", sigma=1.0, tolfun=0.0, tolfunhist=0.0, tolx=0.0),
            f,
            jnp.zeros(4, jnp.float64),
            3000,
        )
        assert bool(state.stop) and bool(state.termination.conditioncov), state.termination


def test_an_unbounded_linear_function_stops_cleanly_without_nan():
    state, _ = minimise(ne.strategies.make("cma_es", sigma=1.0), lambda x: -jnp.sum(x, -1), jnp.zeros(5), 400)
    assert bool(state.stop)
    assert bool(state.termination.tolupsigma | state.termination.numerics), state.termination
    assert finite(state)


def test_tolstagnation_on_a_noisy_plateau():
    def noisy(x):  # pure noise: nothing improves
        bits = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32).sum(-1)
        return (bits % 1000).astype(jnp.float32)

    state, _ = minimise(ne.strategies.make("cma_es", sigma=1.0), noisy, jnp.zeros(2), 400)
    assert bool(state.stop) and bool(state.termination.tolstagnation), state.termination


def test_ipop_restarts_double_the_population_inside_one_compiled_run():
    strategy = ne.strategies.make("cma_es", popsize=6, sigma=2.0, restarts="ipop", max_restarts=3)
    state, best = minimise(strategy, rastrigin, jnp.full(5, 2.0), 1500)
    assert int(state.restarts) == 3 and int(state.popsize) == 6 * 2**3
    g, _ = strategy.ask(jax.random.key(0), state)
    assert g.x.shape == g.z.shape == (6 * 2**3, 5)  # the static capacity
    plain, plain_best = minimise(
        ne.strategies.make("cma_es", popsize=6, sigma=2.0), rastrigin, jnp.full(5, 2.0), 1500
    )
    assert float(best[-1]) < float(plain_best[-1])  # larger populations find better optima
    assert finite(state)


def test_bipop_alternates_regimes_and_counts_budgets():
    strategy = ne.strategies.make(
        "cma_es", popsize=6, sigma=2.0, restarts="bipop", max_restarts=4, restart_box=(-4.0, 4.0)
    )

    def step(carry, k):
        state = carry
        k_ask, k_tell = jax.random.split(k)
        g, s = strategy.ask(k_ask, state)
        s = strategy.tell(k_tell, s, g, -rastrigin(g.x))
        return s, (s.popsize, s.small_regime, s.restarts)

    state = strategy.init(jax.random.key(0), jnp.full(5, 2.0))
    state, (lam, small, large) = jax.jit(
        lambda s: jax.lax.scan(step, s, jax.random.split(jax.random.key(1), 3000))
    )(state)
    lam, small = np.asarray(lam), np.asarray(small)
    assert small.any() and (~small[1:]).any()  # both regimes ran
    assert lam[small].max() <= 6 * 2 ** int(state.restarts)
    assert int(state.evaluations) == int(state.large_evaluations) + int(state.small_evaluations)
    assert finite(state)


_GUARD = ne.strategies.make("cma_es", popsize=8, sigma=1.0, restarts="ipop", max_restarts=1)


@jax.jit
def _four_generations(values, key):
    """Four generations whose fitness is ``values`` rolled over the live members."""
    state = _GUARD.init(key, jnp.zeros(3))

    def step(state, g):
        genotypes, state = _GUARD.ask(jax.random.fold_in(key, g), state)
        fitness = jnp.full(genotypes.x.shape[0], -jnp.inf).at[:8].set(jnp.roll(values, g))
        state = _GUARD.tell(jax.random.fold_in(key, 100 + g), state, genotypes, fitness)
        return state, state

    return jax.lax.scan(step, state, jnp.arange(4))[1]


@settings(max_examples=30)
@given(
    st.lists(
        st.sampled_from([0.0, 1.0, -1.0, 1e30, -1e30, np.nan, -np.inf, np.inf, 3.5]), min_size=8, max_size=8
    ),
    st.integers(0, 2**16),
)
def test_no_nan_state_whatever_the_fitness(values, seed):
    states = _four_generations(jnp.array(values, jnp.float32), jax.random.key(seed))
    assert finite(states)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="restarts must be None, 'ipop' or 'bipop'"):
        ne.strategies.make("cma_es", restarts="lpop")
    with pytest.raises(ValueError, match="max_restarts"):
        ne.strategies.make("cma_es", restarts="ipop", max_restarts=-1)
    with pytest.raises(ValueError, match="popsize must be at least 4"):
        ne.strategies.make("cma_es", popsize=3)
    assert {"cma_es", "sep_cma_es"} <= set(ne.strategies.names())


def test_cycle_begins_again_from_the_first_population_instead_of_stopping():
    """With cycle=True a run whose restarts are spent starts over at popsize (a new point of
    restart_box) and never stops; without it, the same run stops."""
    kw = dict(popsize=6, sigma=1.0, restarts="ipop", max_restarts=1, restart_box=(-4.0, 4.0))

    def trace(strategy, n=40):
        def step(s, k):
            k_ask, k_tell = jax.random.split(k)
            g, s = strategy.ask(k_ask, s)
            s = strategy.tell(k_tell, s, g, jnp.zeros(g.x.shape[0]))  # flat: every run ends fast
            return s, (s.popsize, s.restarts, s.stop, s.mean)

        s0 = strategy.init(jax.random.key(0), jnp.zeros(3))
        return jax.lax.scan(step, s0, jax.random.split(jax.random.key(1), n))[1]

    lam, restarts, stop, means = map(np.asarray, trace(ne.strategies.make("cma_es", cycle=True, **kw)))
    assert not stop.any()
    assert set(lam.tolist()) == {6, 12} and (np.diff(lam) < 0).any()  # back to 6 after 12
    assert set(restarts.tolist()) == {0, 1}
    starts = np.flatnonzero(np.diff(lam) != 0) + 1
    assert len({tuple(means[i]) for i in starts}) == len(starts)  # each start a new point
    assert np.asarray(trace(ne.strategies.make("cma_es", **kw))[2]).any()
    with pytest.raises(ValueError, match="cycle"):
        ne.strategies.make("cma_es", cycle=True)


def test_members_without_a_sample_give_a_finite_update():
    """z = 0 rows with nonzero (negative) weights, as a finished problem of a vmapped campaign
    gets: the active-CMA weight n w / |z|^2 must not overflow into -inf * 0 = NaN."""
    with jax.enable_x64(True):
        strategy = ne.strategies.make("cma_es", popsize=6, sigma=1.0, restarts="ipop", max_restarts=0)
        state = strategy.init(jax.random.key(0), jnp.zeros(4))
        g, state = strategy.live.ask(jax.random.key(1), state, None, jnp.zeros((6, 4)))
        new = strategy.tell(jax.random.key(2), state, g, jnp.arange(6.0))
        assert not bool(new.termination.numerics)
        assert finite(new)


def test_restarts_declare_the_live_capability():
    """With restarts, CMA-ES declares ``live``: the first ``popsize`` members of the capacity
    are live, sampled chunk by chunk, from supplied normals when given; without restarts,
    every member is live and there is no such capability."""
    assert ne.strategies.make("cma_es").live is None
    strategy = ne.strategies.make("cma_es", popsize=6, sigma=0.5, restarts="ipop", max_restarts=2)
    live = strategy.live
    state = strategy.init(jax.random.key(0), jnp.ones(3))
    assert int(live.count(state)) == 6 and live.chunk(state) == 6
    # chunks=None, normals=None: the plain ask and tell
    g, _ = strategy.ask(jax.random.key(1), state)
    g_live, _ = live.ask(jax.random.key(1), state, None, None)
    np.testing.assert_array_equal(g.x, g_live.x)
    assert g.x.shape == (24, 3) and np.all(np.asarray(g.z[6:]) == 0)  # capacity 6 * 2**2; dead rows z = 0
    fitness = -jnp.sum(g.x**2, axis=1)
    a = strategy.tell(jax.random.key(2), state, g, fitness)
    b = live.tell(jax.random.key(2), state, g, fitness, jnp.asarray(1))
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.C, b.C)
    # supplied normals: x = m + sigma z (C = I), only the live rows
    z = jax.random.normal(jax.random.key(3), (24, 3))
    g_z, _ = live.ask(jax.random.key(4), state, jnp.asarray(1), z)
    np.testing.assert_allclose(g_z.x[:6], 1.0 + 0.5 * z[:6], rtol=1e-6)
    np.testing.assert_array_equal(g_z.z[:6], z[:6])
    assert np.all(np.asarray(g_z.z[6:]) == 0) and np.all(np.asarray(g_z.x[6:]) == 1.0)
