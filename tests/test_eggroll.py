"""EGGROLL: low-rank perturbations, population_apply's interception, and the tasks' fast path."""

import warnings

import flax.linen as nn
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neuroevo as ne
from neuroevo import lowrank


class Everything(nn.Module):
    """Every intercepted layer (and a norm, whose scale and bias get dense noise)."""

    conv: dict

    @nn.compact
    def __call__(self, image, ids):
        embed = nn.Embed(11, 6)
        h = embed(ids).sum(0) + nn.Dense(6)(image.reshape(-1)[:16])
        h = nn.LayerNorm()(h)
        h = nn.DenseGeneral((2, 3))(h)
        h = nn.DenseGeneral(5, axis=(-2, -1))(h)
        c = nn.Conv(**self.conv)(image)
        h = h + nn.Dense(5)(jnp.tanh(c).reshape(-1))
        return embed.attend(nn.Dense(6)(jnp.tanh(h)))


CONVS = [
    dict(features=3, kernel_size=(3, 3)),
    dict(features=2, kernel_size=(3, 2), strides=2, padding="VALID"),
    dict(features=2, kernel_size=(3, 3), kernel_dilation=2, padding=((1, 2), (0, 1))),
    dict(features=2, kernel_size=(2, 2), padding="CIRCULAR", strides=(1, 2)),
]


def setup(module, args, popsize=8, rank=1, sigma=0.5, seed=0):
    params = module.init(jax.random.key(seed), *args)
    strategy = ne.strategies.make("eggroll", popsize=popsize, rank=rank, sigma=sigma)
    state = strategy.init(jax.random.key(seed), params)
    genotypes, state = strategy.ask(jax.random.key(seed + 1), state)
    return strategy, state, genotypes


def batch(key, popsize, *shapes):
    keys = jax.random.split(key, len(shapes))
    return [jax.random.normal(k, (popsize,) + s) for k, s in zip(keys, shapes, strict=True)]


def reference(strategy, state, genotypes, fn, *args):
    return jax.vmap(lambda g, *a: fn(strategy.decode(state, g), *a))(genotypes, *args)


def rel_error(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("conv", range(len(CONVS)))
def test_population_apply_equals_vmap_of_decode(conv, rank):
    module = Everything(CONVS[conv])
    image, ids = jnp.ones((7, 6, 3)), jnp.array([1, 2, 3])
    strategy, state, genotypes = setup(module, (image, ids), rank=rank, seed=conv)
    (images,) = batch(jax.random.key(9), 8, image.shape)
    idss = jax.random.randint(jax.random.key(10), (8, 3), 0, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every matrix is intercepted: no dense fallback
        fast = jax.jit(lambda s, g, *a: ne.population_apply(strategy, s, g, module.apply, *a))(
            state, genotypes, images, idss
        )
    slow = reference(strategy, state, genotypes, module.apply, images, idss)
    assert fast.shape == (8, 11)
    assert rel_error(fast, slow) <= 1e-4
    # The members differ from the mean (the perturbation is really applied) ...
    mean_out = jax.vmap(module.apply, in_axes=(None, 0, 0))(state.mean, images, idss)
    assert rel_error(fast, mean_out) > 1e-2
    # ... and a member's dense form has the low-rank structure: rank-r change of every matrix.
    member = strategy.decode(state, jax.tree_util.tree_map(lambda x: x[0], genotypes))
    delta = member["params"]["Dense_1"]["kernel"] - state.mean["params"]["Dense_1"]["kernel"]
    assert np.linalg.matrix_rank(np.asarray(delta), tol=1e-5) == rank


def test_default_path_is_vmap_of_decode():
    strategy = ne.strategies.make("openai_es", popsize=6)
    x0 = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    state = strategy.init(jax.random.key(0), x0)
    genotypes, state = strategy.ask(jax.random.key(1), state)
    fn = lambda p, x: x @ p["w"] + p["b"]  # noqa: E731
    (xs,) = batch(jax.random.key(2), 6, (3,))
    out = ne.population_apply(strategy, state, genotypes, fn, xs)
    np.testing.assert_allclose(out, reference(strategy, state, genotypes, fn, xs), rtol=1e-6)
    members = ne.strategy.members(strategy, state, genotypes)
    assert isinstance(members, ne.strategy.DenseMembers) and members.size == 6


def test_leaves_read_outside_intercepted_layers_fall_back_to_dense_and_warn():
    module = nn.Dense(4)
    params = module.init(jax.random.key(0), jnp.ones(3))
    strategy = ne.strategies.make("eggroll", popsize=4, sigma=0.5)
    state = strategy.init(jax.random.key(0), params)
    genotypes, state = strategy.ask(jax.random.key(1), state)
    (xs,) = batch(jax.random.key(2), 4, (3,))
    # The kernel is read by the layer and by the user's own code: perturbed densely, still exact.
    fn = lambda p, x: module.apply(p, x) + p["params"]["kernel"].sum()  # noqa: E731
    with pytest.warns(UserWarning, match=r"\['params'\]\['kernel'\].*densely"):
        out = ne.population_apply(strategy, state, genotypes, fn, xs)
    assert rel_error(out, reference(strategy, state, genotypes, fn, xs)) <= 1e-5
    # A plain function (no flax layer at all) works the same way.
    plain = lambda p, x: jnp.tanh(x @ p["params"]["kernel"])  # noqa: E731
    with pytest.warns(UserWarning, match="densely"):
        out = ne.population_apply(strategy, state, genotypes, plain, xs)
    assert rel_error(out, reference(strategy, state, genotypes, plain, xs)) <= 1e-5


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="rank must be at least 1"):
        ne.strategies.make("eggroll", rank=0)
    with pytest.raises(ValueError, match="hyperparameter 'rank' of strategy 'eggroll' must be an int"):
        ne.strategies.make("eggroll", rank=1.5)
    with pytest.raises(ValueError, match="rank must be a Python int"):
        ne.strategies.eggroll(rank=1.5)
    strategy = ne.strategies.make("eggroll", popsize=4, rank=3)
    x0 = {"w": jnp.ones((5, 2)), "b": jnp.ones(7)}
    with pytest.raises(ValueError, match=r"rank=3 .*\['w'\] of shape \(5, 2\).*\[1, 2\]"):
        strategy.init(jax.random.key(0), x0)
    # A DenseGeneral bias (2-D) gets dense noise: no rank limit from it.
    lowrank.layout({"kernel": jnp.ones((4, 4)), "bias": jnp.ones((2, 1))}, 3)
    strategy = ne.strategies.make("eggroll", popsize=4)
    state = strategy.init(jax.random.key(0), x0)
    genotypes, state = strategy.ask(jax.random.key(1), state)
    with pytest.raises(ValueError, match="leading population axis of 4"):
        ne.population_apply(strategy, state, genotypes, lambda p, x: x @ p["w"], jnp.ones((3, 5)))


@pytest.mark.parametrize("mirrored", [True, False])
def test_tell_is_the_es_gradient_step(mirrored):
    """With SGD(1), the new mean is mean + sum_i w_i (member_i - mean) / (n sigma^2), whatever the chunk."""
    x0 = {"a": jnp.linspace(-1, 1, 12).reshape(4, 3), "b": jnp.ones(3), "c": jnp.ones((3, 2, 2))}
    fitness = jnp.arange(8.0) ** 2 - 10.0
    means = []
    for chunk in (None, 1, 3):
        strategy = ne.strategies.eggroll(
            8, rank=2, sigma=0.3, optimizer=optax.sgd(1.0), mirrored=mirrored, chunk_size=chunk
        )
        state = strategy.init(jax.random.key(0), x0)
        genotypes, state = strategy.ask(jax.random.key(1), state)
        new = strategy.tell(jax.random.key(2), state, genotypes, fitness)
        means.append(new.mean)
    members = ne.population(strategy, state, genotypes)
    w = ne.shaping.centered_ranks(fitness)
    expected = jax.tree_util.tree_map(
        lambda m, x: m + jnp.tensordot(w, x - m, axes=1) / (8 * 0.3**2), state.mean, members
    )
    for mean in means:
        for got, want in zip(
            jax.tree_util.tree_leaves(mean), jax.tree_util.tree_leaves(expected), strict=True
        ):
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


def test_noise_has_unit_variance_per_entry():
    lay = lowrank.layout({"w": jnp.zeros((40, 30)), "b": jnp.zeros(30)}, 4)
    seeds = jax.random.key_data(jax.random.split(jax.random.key(0), 200))
    noise = jax.vmap(lambda s: lowrank.dense_noise(lowrank.draw(s, lay), lay))(seeds)
    b, w = np.asarray(noise[0]), np.asarray(noise[1])  # leaves in key order
    assert w.shape == (200, 40, 30) and b.shape == (200, 30)
    assert abs(w.mean()) < 0.01 and abs(w.var() - 1.0) < 0.05  # 4 standard errors
    assert abs(b.mean()) < 0.06 and abs(b.var() - 1.0) < 0.08


@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_gymnax_fast_path_equals_decoded_members(network):
    env, params = ne.tasks.gymnax_module.make_env("Breakout-MinAtar")
    policy = ne.nn.policy_for(env.action_space(params), (32,), network)
    task = ne.tasks.gymnax("Breakout-MinAtar", policy, max_steps=40, normalize_obs=True)
    assert task.info["members"]
    strategy = ne.strategies.make("eggroll", popsize=8, sigma=0.5)
    state = strategy.init(jax.random.key(0), task.init_solution(jax.random.key(0)))
    genotypes, state = strategy.ask(jax.random.key(1), state)
    key, stats = jax.random.key(3), task.init(None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast, fast_stats = jax.jit(
            lambda s, g: task.evaluate(key, stats, ne.strategy.members(strategy, s, g))
        )(state, genotypes)
    slow, slow_stats = jax.jit(lambda s, g: task.evaluate(key, stats, ne.population(strategy, s, g)))(
        state, genotypes
    )
    np.testing.assert_array_equal(fast.fitness, slow.fitness)
    np.testing.assert_array_equal(fast.metrics["episode_length"], slow.metrics["episode_length"])
    np.testing.assert_allclose(fast_stats.mean, slow_stats.mean, rtol=1e-6)


def members_task():
    """A task that evaluates through Members.apply: a tiny MLP regressing sin(x)."""
    module = ne.nn.MLP(hidden=(8,), out=1)
    xs = jnp.linspace(-2, 2, 16)[:, None]

    def evaluate(key, task_state, solutions):
        members = ne.strategy.as_members(solutions)
        inputs = jnp.broadcast_to(xs, (members.size,) + xs.shape)
        out = members.apply(jax.vmap(module.apply, in_axes=(None, 0)), inputs)
        loss = jnp.mean((out[..., 0] - jnp.sin(xs[:, 0])) ** 2, axis=1)
        return ne.tasks.Evaluation(fitness=-loss, metrics={"loss": loss}), task_state

    init = lambda key: module.init(key, xs[0])  # noqa: E731
    return ne.tasks.Task(init=lambda key: (), evaluate=evaluate, init_solution=init, info={"members": True})


def test_engine_chunks_and_resumes_through_members(tmp_path):
    task = members_task()
    x0 = task.init_solution(jax.random.key(0))
    strategy = ne.strategies.make("eggroll", popsize=16, sigma=0.1)
    s1, h1 = ne.evolve(jax.random.key(0), strategy, task, x0, 6)
    s2, h2 = ne.evolve(jax.random.key(0), strategy, task, x0, 6, chunk_size=4)
    for k in h1:
        np.testing.assert_allclose(h1[k], h2[k], rtol=1e-5)
    assert h1["loss"][-1] < h1["loss"][0]  # it learns
    # The dense path (a strategy without the fast path) gives the same fitness for the same members.
    dense = strategy._replace(members=None)
    s3, h3 = ne.evolve(jax.random.key(0), dense, task, x0, 6)
    np.testing.assert_allclose(h3["best"], h1["best"], rtol=1e-4)
    ckpt = str(tmp_path / "ckpt")
    ne.evolve(jax.random.key(0), strategy, task, x0, 4, log_every=2, checkpoint_dir=ckpt)
    s4, h4 = ne.evolve(jax.random.key(0), strategy, task, x0, 6, log_every=3, checkpoint_dir=ckpt)
    for a, b in zip(jax.tree_util.tree_leaves(s4), jax.tree_util.tree_leaves(s1), strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- #
# The Deep GA with low-rank mutations (ga(..., rank=r)).
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("options", [{}, {"crossover": "uniform", "self_adaptive": True}])
def test_ga_low_rank_mutations(options):
    x0 = {"w": jnp.zeros((6, 5)), "b": jnp.zeros(5), "c": jnp.zeros((2, 3, 4))}
    strategy = ne.strategies.make("ga", popsize=12, rank=2, sigma=0.5, **options)
    state = strategy.init(jax.random.key(0), x0)
    genotypes, state = strategy.ask(jax.random.key(1), state)
    assert genotypes.noise is None  # compact: the seed regenerates the low-rank noise
    members = ne.population(strategy, state, genotypes)
    for i in range(1, 12):  # member 0 is the elite (unchanged)
        assert np.linalg.matrix_rank(np.asarray(members["w"][i]), tol=1e-5) == 2
        assert np.linalg.matrix_rank(np.asarray(members["c"][i].reshape(6, 4)), tol=1e-5) == 2
        assert np.linalg.matrix_rank(np.asarray(members["b"][i][None]), tol=1e-5) == 1
    np.testing.assert_array_equal(members["w"][0], 0.0)
    fitness = -jax.vmap(ne.tasks.sphere)(members)
    bad = fitness.at[::3].set(jnp.nan)
    new = jax.jit(strategy.tell)(jax.random.key(2), state, genotypes, bad)
    # The parents are the selected members, decoded exactly.
    top = int(jnp.argmax(jnp.where(jnp.isnan(bad), -jnp.inf, bad)))
    np.testing.assert_allclose(new.parents[0], ravel_member(members, top), rtol=1e-6)
    assert not any(bool(jnp.any(jnp.isnan(x))) for x in jax.tree_util.tree_leaves(new))


def ravel_member(members, i):
    return jax.flatten_util.ravel_pytree(jax.tree_util.tree_map(lambda x: x[i], members))[0]


def test_ga_low_rank_learns_and_checks_its_input():
    task = members_task()
    x0 = task.init_solution(jax.random.key(0))
    strategy = ne.strategies.make("ga", popsize=32, rank=1, sigma=0.05)
    _, history = ne.evolve(jax.random.key(0), strategy, task, x0, 10)
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ValueError, match="lineage_capacity=4.*rank=None"):
        ne.strategies.make("ga", rank=1, lineage_capacity=4)
    with pytest.raises(ValueError, match="rank must be at least 1"):
        ne.strategies.make("ga", rank=0)
    with pytest.raises(ValueError, match=r"rank=9 .*\(1, 8\).*\[1, 1\]"):
        ne.strategies.make("ga", popsize=8, rank=9).init(jax.random.key(0), x0)


@pytest.mark.parametrize("options", [{}, {"self_adaptive": True, "selection": "tournament"}])
def test_ga_low_rank_fast_path_shares_its_parents(options):
    """With few parents, ne.population_apply runs each layer once per parent: exact, no dense member."""
    module = Everything(CONVS[1])
    image, ids = jnp.ones((7, 6, 3)), jnp.array([1, 2, 3])
    params = module.init(jax.random.key(0), image, ids)
    strategy = ne.strategies.make("ga", popsize=8, rank=2, sigma=0.3, truncation=3, **options)
    assert strategy.members is not None
    assert ne.strategies.make("ga", popsize=8, rank=2, truncation=3, shared_parents=2).members is None
    assert ne.strategies.make("ga", popsize=8, truncation=3).members is None  # dense mutations
    state = strategy.init(jax.random.key(0), params)
    (images,) = batch(jax.random.key(9), 8, image.shape)
    idss = jax.random.randint(jax.random.key(10), (8, 3), 0, 11)
    for generation in range(2):  # the second generation has three different parents
        genotypes, state = strategy.ask(jax.random.key(generation), state)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fast = jax.jit(lambda s, g, *a: ne.population_apply(strategy, s, g, module.apply, *a))(
                state, genotypes, images, idss
            )
        slow = reference(strategy, state, genotypes, module.apply, images, idss)
        assert rel_error(fast, slow) <= 1e-4
        fitness = -jnp.sum(slow**2, axis=1)
        state = strategy.tell(jax.random.key(5), state, genotypes, fitness)
    assert len({float(x) for x in state.parents[:, 0]}) == 3
