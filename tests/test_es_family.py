"""SNES, xNES, PGPE (with ClipUp) and ARS: they optimise, their updates are the
papers' formulas, compact and dense genotypes agree, bad settings are refused."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg

import neuroevo as ne
from neuroevo import perturbation
from neuroevo.shaping import centered_ranks, nes_utilities

D = 10
# Problem 0: sphere. Problem 1: ellipsoid with condition number 1e2, optimum shifted off zero.
COND = jnp.stack([jnp.ones(D), 10.0 ** (2 * jnp.arange(D) / (D - 1))])
SHIFT = jnp.stack([jnp.zeros(D), jnp.linspace(-2.0, 2.0, D)])


def quadratic(x, cond, shift):
    return jnp.sum(cond * (x - shift) ** 2)


def optimise(strategy, generations):
    """Best value found on (sphere, shifted ellipsoid) from x0 = 3: one compiled, vmapped run."""

    def run(cond, shift):
        k_init, k_loop = jax.random.split(jax.random.key(0))
        state = strategy.init(k_init, jnp.full(D, 3.0))

        def step(state, key):
            k_ask, k_tell = jax.random.split(key)
            genotypes, state = strategy.ask(k_ask, state)
            members = ne.population(strategy, state, genotypes)
            fitness = -jax.vmap(quadratic, (0, None, None))(members, cond, shift)
            return strategy.tell(k_tell, state, genotypes, fitness), None

        state, _ = jax.lax.scan(step, state, jax.random.split(k_loop, generations))
        return -state.best_fitness

    return np.asarray(jax.jit(jax.vmap(run))(COND, SHIFT))


@pytest.mark.parametrize(
    "name, hp, generations, thresholds",
    [
        # Without sigma adaptation SNES stalls near (1.5, 20); xNES without B adaptation near (1e-10, 3e-6).
        ("snes", dict(popsize=16, sigma=1.0), 300, (1e-8, 1e-8)),
        ("xnes", dict(popsize=16, sigma=1.0), 600, (1e-7, 1e-7)),
        # Without sigma adaptation PGPE stalls near (1.0, 9.0).
        ("pgpe", dict(popsize=32, sigma=1.0), 400, (0.1, 1.0)),
        ("ars", dict(popsize=32, sigma=0.1, learning_rate=0.1, top_k=8), 300, (0.05, 0.5)),
    ],
)
def test_optimises_sphere_and_shifted_ill_conditioned_quadratic(name, hp, generations, thresholds):
    start = np.asarray(jax.vmap(quadratic, (None, 0, 0))(jnp.full(D, 3.0), COND, SHIFT))
    best = optimise(ne.strategies.make(name, **hp), generations)
    assert np.all(best < np.asarray(thresholds)), (best, start)


def test_nes_utilities():
    u = nes_utilities(jnp.array([1.0, jnp.nan, 3.0, -jnp.inf]))
    raw = np.maximum(0.0, np.log(3.0) - np.log([1.0, 2.0, 3.0, 4.0]))
    by_rank = raw / raw.sum() - 0.25  # ranks: 3.0 first, 1.0 second, NaN and -inf last
    np.testing.assert_allclose(u, by_rank[[1, 2, 0, 3]], atol=1e-6)
    assert float(u.sum()) == pytest.approx(0.0, abs=1e-6)


def one_generation(strategy, x0):
    """(state, genotypes, members, fitness, next state) of one compiled generation."""

    @jax.jit
    def run(x0):
        state = strategy.init(jax.random.key(0), x0)
        genotypes, state = strategy.ask(jax.random.key(1), state)
        members = ne.population(strategy, state, genotypes)
        fitness = -jnp.sum((members - 1.0) ** 2, axis=-1)
        return state, genotypes, members, fitness, strategy.tell(jax.random.key(2), state, genotypes, fitness)

    return run(x0)


def test_snes_tell_is_the_papers_update():
    x0, sigma, n = jnp.linspace(-1.0, 1.0, 6), 0.5, 8
    state, _, members, fitness, new = one_generation(ne.strategies.snes(n, sigma=sigma, dense=True), x0)
    s = (np.asarray(members) - np.asarray(x0)) / sigma
    u = np.asarray(nes_utilities(fitness))
    eta_sigma = (3 + np.log(6)) / (5 * np.sqrt(6))
    np.testing.assert_allclose(new.mean, x0 + sigma * (u @ s), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new.sigma, sigma * np.exp(eta_sigma / 2 * (u @ (s**2 - 1))), rtol=1e-5)


def test_xnes_tell_is_the_papers_update():
    x0, sigma, n, d = jnp.linspace(-1.0, 1.0, 4), 0.5, 8, 4
    xn = ne.strategies.xnes(n, sigma=sigma, dense=True)
    state, _, members, fitness, new = one_generation(xn, x0)
    s = (np.asarray(members) - np.asarray(x0)) / sigma  # B = I initially
    u = np.asarray(nes_utilities(fitness))
    eta = 0.6 * (3 + np.log(d)) / (d * np.sqrt(d))
    g_m = (s.T * u) @ s - u.sum() * np.eye(d)
    g_sigma = np.trace(g_m) / d
    np.testing.assert_allclose(new.mean, x0 + sigma * (u @ s), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new.sigma, sigma * np.exp(eta / 2 * g_sigma), rtol=1e-5)
    expected_b = scipy.linalg.expm(eta / 2 * (g_m - g_sigma * np.eye(d)))
    np.testing.assert_allclose(new.B, expected_b, rtol=1e-4, atol=1e-6)
    assert np.linalg.det(new.B) == pytest.approx(1.0, abs=1e-4)


def as_dense(genotypes):
    """The compact genotypes' own noise, stored: the same members, regenerated nowhere."""
    noise = jax.vmap(lambda g: jnp.sign(g.scale) * perturbation.eps(g, D))(genotypes)
    return perturbation.Perturbation(genotypes.parent, jnp.abs(genotypes.scale), noise=noise)


@pytest.mark.parametrize(
    "name, hp",
    [
        ("snes", dict(popsize=8, chunk_size=3)),
        ("xnes", dict(popsize=8, mirrored=True)),
        ("pgpe", dict(popsize=8, optimizer="adam", chunk_size=3)),
        ("ars", dict(popsize=8, top_k=2, chunk_size=3)),
    ],
)
def test_compact_and_dense_genotypes_give_the_same_tell(name, hp):
    compact = ne.strategies.make(name, dense=False, sigma=0.3, **hp)
    dense = ne.strategies.make(name, dense=True, sigma=0.3, **hp)

    @jax.jit
    def both(x0):
        state = compact.init(jax.random.key(0), x0)
        g, _ = compact.ask(jax.random.key(1), state)
        g_dense = as_dense(g)
        members = ne.population(compact, state, g)
        fitness = -jnp.sum((members - 0.5) ** 2, axis=1)
        a = compact.tell(jax.random.key(2), state, g, fitness)
        b = dense.tell(jax.random.key(2), state, g_dense, fitness)
        return state, g, members, ne.population(dense, state, g_dense), a, b

    state, g, members, dense_members, a, b = both(jnp.linspace(-1.0, 1.0, D))
    assert g.noise is None and g.seed.shape == (8, 2)
    np.testing.assert_allclose(dense_members, members, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-5)
    assert not np.allclose(a.mean, state.mean)


def test_clipup_velocity_never_exceeds_max_speed():
    lr, max_speed = 0.1, 0.15
    opt = ne.strategies.clipup(lr, momentum=0.9, max_speed=max_speed)
    scales = np.array([1e-3, 1e3, 0.0, 1.0, 50.0] * 8)  # includes a zero gradient
    grads = np.random.default_rng(0).normal(size=(40, 7)).astype(np.float32) * scales[:, None]
    grads[10:20] = 1.0  # a steady direction: momentum runs into the cap

    def step(carry, g):
        params, state = carry
        updates, state = opt.update({"w": g}, state, params)
        return (optax.apply_updates(params, updates), state), (updates["w"], state.velocity["w"])

    params = {"w": jnp.zeros(7)}
    _, (updates, velocity) = jax.jit(lambda g: jax.lax.scan(step, (params, opt.init(params)), g))(grads)
    speed = np.linalg.norm(np.asarray(velocity), axis=1)
    assert speed.max() <= max_speed * (1 + 1e-5)
    assert speed[19] == pytest.approx(max_speed, rel=1e-5)  # the cap is reached, not just respected
    np.testing.assert_allclose(updates, -velocity)
    np.testing.assert_allclose(updates[0], -lr * grads[0] / np.linalg.norm(grads[0]), rtol=1e-5)
    # max_speed defaults to twice the step size.
    default = ne.strategies.clipup(lr)
    push = lambda i, state: default.update(jnp.ones(3), state)[1]
    state = jax.lax.fori_loop(0, 30, push, default.init(jnp.zeros(3)))
    assert np.linalg.norm(state.velocity) == pytest.approx(2 * lr, rel=1e-5)


def test_ars_update_uses_exactly_the_top_b_directions():
    n_dir, b, lr = 6, 2, 0.3
    ars = ne.strategies.ars(2 * n_dir, sigma=0.5, learning_rate=lr, top_k=b, dense=True)
    state, g, _, _, _ = one_generation(ars, jnp.zeros(D))
    tell = jax.jit(lambda f: ars.tell(jax.random.key(2), state, g, f))
    delta = np.asarray(g.noise[:n_dir])
    r_plus = np.array([1.0, 5.0, 0.0, 2.0, -1.0, 0.5])
    r_minus = np.array([0.0, 1.0, 4.0, 3.0, 0.0, -2.0])  # max per direction: 1, 5, 4, 3, 0, 0.5
    top = [1, 2]
    used = np.concatenate([r_plus[top], r_minus[top]])
    expected = lr / (b * used.std()) * ((r_plus - r_minus)[top] @ delta[top])
    new = tell(jnp.asarray(np.concatenate([r_plus, r_minus])))
    np.testing.assert_allclose(new.mean, expected, rtol=1e-5, atol=1e-6)
    # Directions outside the top b do not matter at all, whatever their returns...
    others = np.concatenate([[-9.0, 5.0, 0.0, 3.5, 2.0, -7.0], [0.1, 1.0, 4.0, -3.0, 3.9, 2.0]])
    moved = tell(jnp.asarray(others))
    np.testing.assert_array_equal(moved.mean, new.mean)
    # ...but with b = all directions they do.
    every = ne.strategies.ars(2 * n_dir, sigma=0.5, learning_rate=lr, dense=True)
    tell_every = jax.jit(lambda f: every.tell(jax.random.key(2), state, g, f))
    assert not np.allclose(tell_every(jnp.asarray(others)).mean, new.mean)


def test_ars_non_finite_returns_rank_last_and_keep_the_mean_finite():
    ars = ne.strategies.ars(8, sigma=0.5, learning_rate=0.1, top_k=2, dense=True)
    state, g, _, _, _ = one_generation(ars, jnp.zeros(3))
    tell = jax.jit(lambda f: ars.tell(jax.random.key(2), state, g, f))
    fitness = jnp.array([jnp.nan, 1.0, -jnp.inf, 2.0, 0.0, 3.0, 1.0, 0.5])
    new = tell(fitness)
    clean = tell(fitness.at[0].set(0.0).at[2].set(0.0))  # NaN and -inf count as the worst finite: 0
    np.testing.assert_allclose(new.mean, clean.mean)
    assert np.all(np.isfinite(new.mean))


@pytest.mark.parametrize(
    "name, hp, match",
    [
        ("ars", dict(popsize=12, top_k=7), r"top_k.*popsize/2 = 6.*7"),
        ("ars", dict(popsize=12, top_k=0), r"top_k.*0"),
        ("ars", dict(version=3), r"version must be 1 or 2.*3"),
        ("ars", dict(popsize=7), r"even"),
        ("pgpe", dict(optimizer="rmsprop"), r"unknown optimizer 'rmsprop'.*clipup.*adam"),
        ("pgpe", dict(popsize=9), r"even"),
        ("snes", dict(popsize=9, mirrored=True), r"even"),
        ("xnes", dict(popsize=1), r"at least 2"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_problem(name, hp, match):
    with pytest.raises(ValueError, match=match):
        ne.strategies.make(name, **hp)


def test_pgpe_tell_is_the_papers_symmetric_update_with_sigma_moving_at_most_20_percent():
    sigma, lr_sigma, pairs = jnp.linspace(0.1, 0.5, D), 3.0, 4
    pg = ne.strategies.pgpe(2 * pairs, sigma=sigma, sigma_learning_rate=lr_sigma, optimizer=optax.sgd(1.0))
    _, _, members, fitness, new = one_generation(pg, jnp.zeros(D))
    eps = np.asarray(members[:pairs])  # x0 = 0: member k is +eps_k, member pairs + k is -eps_k
    np.testing.assert_allclose(members[pairs:], -eps, atol=1e-6)
    r = np.asarray(centered_ranks(fitness))
    r_plus, r_minus, sigma = r[:pairs], r[pairs:], np.asarray(sigma)
    g_mu = np.mean((r_plus - r_minus)[:, None] / 2 * eps, axis=0)
    g_sigma = np.mean(((r_plus + r_minus) / 2 - r.mean())[:, None] * (eps**2 - sigma**2) / sigma, axis=0)
    np.testing.assert_allclose(new.mean, g_mu, rtol=1e-5, atol=1e-7)  # SGD, step 1: mu + g_mu
    unclipped = sigma + lr_sigma * g_sigma
    np.testing.assert_allclose(new.sigma, np.clip(unclipped, 0.8 * sigma, 1.2 * sigma), rtol=1e-5)
    assert np.any(np.abs(unclipped / sigma - 1) > 0.2)  # the clip is active
