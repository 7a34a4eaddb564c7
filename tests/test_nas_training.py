"""Population-parallel training of architectures, the one-shot supernet, ne.tasks.nas, early exit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neuroevo as ne
from neuroevo.nas import supernet, training

DIGITS = ne.nas.digits()
X, Y = jnp.asarray(DIGITS.x_train[:96]), jnp.asarray(DIGITS.y_train[:96])
TINY = ne.nas.Dataset(*(a[:96] for a in DIGITS))  # 96 examples of each split
CNN = ne.nas.CNNSpace(max_blocks=2, widths=(2, 4), kernels=(1, 3), activations=("relu", "tanh"))
MLP = ne.nas.MLPSpace(max_blocks=2, widths=(3, 8), activations=("relu", "swish"))


def test_digits_split_is_fixed():
    again = ne.nas.digits()
    assert DIGITS.input_shape == (8, 8, 1) and DIGITS.num_classes == 10
    assert [len(a) for a in DIGITS[::2]] == [1079, 359, 359]
    for a, b in zip(DIGITS, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert 0.0 <= DIGITS.x_train.min() and DIGITS.x_train.max() <= 1.0


@pytest.mark.parametrize("space", [CNN, MLP], ids=["cnn", "mlp"])
def test_population_training_equals_training_each_network_alone(space):
    """Member i of the vmapped population ends where its standalone flax network, trained alone
    from the same initial weights on the same minibatches with the same optax optimiser, ends."""
    steps, batch, lr = 4, 8, 1e-2
    key = jax.random.key(0)
    genotypes = space.sample(jax.random.key(1), 3)
    trained = jax.jit(
        lambda k, g: training.train_population(
            k, space, g, X, Y, steps=steps, batch_size=batch, learning_rate=lr
        )
    )(key, genotypes)
    k_init, k_batches = jax.random.split(key)  # train_population's keys
    for i, genotype in enumerate(np.asarray(genotypes)):
        module = space.build(genotype)
        initial = supernet.member_init(space, k_init, jnp.asarray(genotype), X[:1])
        params = space.extract(genotype, initial)
        opt = optax.adam(lr)
        state = opt.init(params)
        loss = lambda p, xb, yb, m=module: training.cross_entropy(m.apply(p, xb), yb)

        @jax.jit
        def step(params, state, k, loss=loss, opt=opt):
            index = jax.random.randint(k, (batch,), 0, X.shape[0])
            updates, state = opt.update(jax.grad(loss)(params, X[index], Y[index]), state, params)
            return optax.apply_updates(params, updates), state

        for k in jax.random.split(k_batches, steps):
            params, state = step(params, state, k)
        member = jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], trained)
        ours = space.extract(genotype, member)
        for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(params), strict=True):
            np.testing.assert_allclose(a, b, atol=2e-5)
        # The weights the member does not use never move.
        moved = jax.tree_util.tree_map(lambda a, b: np.any(np.asarray(a) != np.asarray(b)), member, initial)
        kept = space.extract(genotype, initial)
        assert sum(leaf.size for leaf in jax.tree_util.tree_leaves(kept)) == space.count_params(
            genotype, (8, 8, 1)
        )
        assert any(jax.tree_util.tree_leaves(moved))


def test_score_shared_and_per_member_agree():
    genotypes = MLP.sample(jax.random.key(2), 3)
    shared = MLP.supernet().init(jax.random.key(0), X[:1], genotypes[0])
    stacked = jax.tree_util.tree_map(lambda leaf: jnp.stack([leaf] * 3), shared)
    acc_a, loss_a = training.score(MLP, shared, genotypes, X, Y, shared=True, chunk=40)
    acc_b, loss_b = training.score(MLP, stacked, genotypes, X, Y, chunk=96)
    np.testing.assert_allclose(acc_a, acc_b)
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
    # By hand for member 0.
    logits = MLP.supernet().apply(shared, X, genotypes[0])
    assert float(acc_a[0]) == pytest.approx(float(jnp.mean(jnp.argmax(logits, -1) == Y)))
    assert float(loss_a[0]) == pytest.approx(float(training.cross_entropy(logits, Y)), rel=1e-5)


def test_task_fitness_objectives_and_metrics():
    task = ne.tasks.nas(MLP, TINY, steps=3, batch_size=16, objectives=("accuracy", "params"))
    genotypes = MLP.sample(jax.random.key(3), 5)
    evaluation, _ = jax.jit(task.evaluate)(jax.random.key(0), task.init(jax.random.key(0)), genotypes)
    assert evaluation.fitness.shape == (5, 2) and task.info["n_objectives"] == 2
    counts = [MLP.count_params(g, (8, 8, 1)) for g in np.asarray(genotypes)]
    np.testing.assert_array_equal(evaluation.metrics["params"], counts)
    np.testing.assert_allclose(evaluation.fitness[:, 1], -np.array(counts) / MLP.max_params((8, 8, 1)))
    np.testing.assert_array_equal(evaluation.fitness[:, 0], evaluation.metrics["accuracy"])
    assert np.all((evaluation.fitness[:, 0] >= 0) & (evaluation.fitness[:, 0] <= 1))
    # One-shot: inherited weights, no training; the same accuracy as score(shared=True).
    shared = training.train_supernet(jax.random.key(1), MLP, X, Y, steps=3, batch_size=16, paths=2)
    one_shot = ne.tasks.nas(MLP, TINY, one_shot=shared)
    evaluation, _ = one_shot.evaluate(jax.random.key(0), (), genotypes)
    assert evaluation.fitness.shape == (5,)
    expected, _ = training.score(
        MLP, shared, genotypes, jnp.asarray(TINY.x_val), jnp.asarray(TINY.y_val), shared=True
    )
    np.testing.assert_allclose(evaluation.fitness, expected)


def test_training_learns_digits():
    """A short population-parallel run is far above chance (0.1) on the validation split."""
    space = ne.nas.CNNSpace(max_blocks=2, widths=(8,), kernels=(3,), activations=("relu",), skips=(False,))
    task = ne.tasks.nas(space, steps=60, batch_size=32)
    evaluation, _ = jax.jit(task.evaluate)(jax.random.key(0), (), jnp.array([[0], [1]], jnp.int32))
    assert float(evaluation.fitness.min()) > 0.6


def test_bad_data_raises_before_training():
    x, y = DIGITS.x_train[:50], DIGITS.y_train[:50]
    with pytest.raises(ValueError, match="add a channel axis"):
        ne.tasks.nas(CNN, (x[..., 0], y))
    with pytest.raises(ValueError, match="one label per example"):
        ne.tasks.nas(CNN, (x, y[:40]))
    with pytest.raises(ValueError, match="num_classes=5"):
        ne.tasks.nas(ne.nas.MLPSpace(num_classes=5), (x, y))
    with pytest.raises(ValueError, match="integer class labels"):
        ne.tasks.nas(MLP, (x, y + 0.5))
    with pytest.raises(ValueError, match="NaN"):
        ne.tasks.nas(MLP, (np.where(x > 0.5, np.nan, x), y))
    with pytest.raises(ValueError, match="batch_size must be in"):
        ne.tasks.nas(MLP, (x, y), batch_size=64)
    with pytest.raises(ValueError, match="objectives"):
        ne.tasks.nas(MLP, (x, y), batch_size=8, objectives=("accuracy", "flops"))
    with pytest.raises(ValueError, match="one_shot"):
        ne.tasks.nas(MLP, (x, y), batch_size=8, one_shot={"params": {}})
    with pytest.raises(ValueError, match="too few"):
        ne.tasks.nas(MLP, (x[:2], y[:2]))


def test_early_exit_sampling_meets_the_threshold():
    shape = (8, 8, 1)
    space = ne.nas.CNNSpace()
    counts = jax.vmap(lambda g: space.params_of(g, shape))(space.sample(jax.random.key(0), 256))
    threshold = int(np.percentile(np.asarray(counts), 20))  # four in five random draws are too large
    genotypes, rounds = jax.jit(lambda k: ne.nas.sample_within(k, space, 64, shape, threshold))(
        jax.random.key(1)
    )
    within = jax.vmap(lambda g: space.params_of(g, shape))(genotypes)
    assert int(within.max()) <= threshold
    assert 1 <= int(rounds) <= 64
    assert len({tuple(g) for g in np.asarray(genotypes)}) > 32  # still diverse, not the smallest one
    # One round only: the members that are still too large become the smallest architecture.
    genotypes, rounds = ne.nas.sample_within(jax.random.key(1), space, 64, shape, threshold, max_tries=1)
    assert int(rounds) == 1
    assert int(jax.vmap(lambda g: space.params_of(g, shape))(genotypes).max()) <= threshold
    # A threshold below the smallest architecture: an error, not an endless loop.
    smallest = space.count_params(space.smallest(), shape)
    with pytest.raises(ValueError, match=f"smallest architecture of the space has {smallest} parameters"):
        ne.nas.sample_within(jax.random.key(1), space, 8, shape, smallest - 1)
    with pytest.raises(ValueError, match="no candidate can meet"):
        ne.nas.early_exit(ne.nas.random_search(space), space, shape, smallest - 1)


def test_early_exit_needs_a_population_field():
    strategy = ne.nas.early_exit(ne.nas.random_search(MLP, 4), MLP, (8, 8, 1), 10**6)
    with pytest.raises(ValueError, match="initial population"):
        strategy.init(jax.random.key(0), None)
