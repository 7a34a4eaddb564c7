"""NAS search spaces: the masked supernet equals the standalone network, counts, genes, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neuroevo as ne
from neuroevo.nas import supernet

CNN = ne.nas.CNNSpace(max_blocks=3, widths=(3, 8), kernels=(1, 3, 5), reductions=(1,))
CNN_GAP = ne.nas.CNNSpace(max_blocks=2, min_blocks=2, widths=(4, 6), kernels=(3,), head="gap", skips=(True,))
MLP = ne.nas.MLPSpace(max_blocks=3, widths=(5, 16, 70), activations=("relu", "tanh", "gelu", "sigmoid"))
SPACES = {"cnn": (CNN, (8, 8, 2)), "cnn_gap": (CNN_GAP, (6, 6, 1)), "mlp": (MLP, (7, 9))}


def supernet_params(space, shape, seed=0):
    """Freshly initialised supernet parameters with non-zero biases (zeros would hide a wrong slice)."""
    x = jnp.zeros((1, *shape))
    params = space.supernet().init(jax.random.key(seed), x, jnp.asarray(space.smallest()))
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    bias = lambda leaf, k: leaf + 0.1 * jax.random.normal(k, leaf.shape) if leaf.ndim == 1 else leaf
    return jax.tree_util.tree_unflatten(tree, [bias(leaf, k) for leaf, k in zip(leaves, keys, strict=True)])


@pytest.mark.parametrize("name", SPACES)
def test_masked_supernet_equals_standalone_network(name):
    """The issue's exactness: max abs error <= 1e-5 in float32, with the same weights."""
    space, shape = SPACES[name]
    params = supernet_params(space, shape)
    x = jax.random.normal(jax.random.key(7), (6, *shape))
    apply = jax.jit(space.supernet().apply)
    genotypes = np.asarray(space.sample(jax.random.key(3), 6))
    genotypes = np.concatenate(
        [genotypes, space.smallest()[None], (space.cardinalities - 1)[None].astype(np.int32)]
    )
    for genotype in genotypes:
        masked = apply(params, x, genotype)
        standalone = space.build(genotype).apply(space.extract(genotype, params), x)
        assert masked.shape == standalone.shape == (6, space.num_classes)
        assert float(jnp.max(jnp.abs(masked - standalone))) <= 1e-5, space.architecture(genotype).describe()


@settings(max_examples=8)
@given(seed=st.integers(0, 2**31 - 1))
def test_exactness_property_cnn(seed):
    genotype = np.asarray(CNN.sample(jax.random.key(seed)))
    params = supernet_params(CNN, (8, 8, 2), seed % 7)
    x = jax.random.normal(jax.random.key(seed % 11), (3, 8, 8, 2))
    masked = CNN.supernet().apply(params, x, genotype)
    standalone = CNN.build(genotype).apply(CNN.extract(genotype, params), x)
    np.testing.assert_allclose(masked, standalone, atol=1e-5)


@pytest.mark.parametrize("name", SPACES)
def test_counts_of_the_effective_architecture(name):
    space, shape = SPACES[name]
    genotypes = space.sample(jax.random.key(5), 12)
    traced_params = jax.jit(jax.vmap(lambda g: space.params_of(g, shape)))(genotypes)
    traced_flops = jax.jit(jax.vmap(lambda g: space.flops_of(g, shape)))(genotypes)
    counts = []
    for g, p, f in zip(
        np.asarray(genotypes), np.asarray(traced_params), np.asarray(traced_flops), strict=True
    ):
        count = space.count_params(g, shape)  # the built module's own parameter count
        assert count == int(p)
        assert space.flops(g, shape) == pytest.approx(float(f), rel=1e-6)
        counts.append(count)
    assert len(set(counts)) > 3  # the members really differ
    # The smallest genotype is the smallest architecture; the supernet is the largest.
    assert space.count_params(space.smallest(), shape) <= min(counts)
    assert max(counts) <= space.max_params(shape)


def test_flops_by_hand():
    """conv3x3(8) on 8x8x2 then pool, flattened 4x4x8 head: FLOPs = 2 x multiply-accumulates."""
    space = ne.nas.CNNSpace(
        max_blocks=2,
        min_blocks=1,
        widths=(8,),
        kernels=(3,),
        activations=("relu",),
        skips=(False,),
        reductions=(0,),
    )
    genotype = np.array([0], np.int32)  # depth 1
    assert space.architecture(genotype).describe() == "conv3x3(8, relu) -> avgpool2 -> flatten -> dense(10)"
    assert space.flops(genotype, (8, 8, 2)) == 2 * 64 * 9 * 2 * 8 + 2 * 4 * 4 * 8 * 10
    assert space.count_params(genotype, (8, 8, 2)) == 9 * 2 * 8 + 8 + 4 * 4 * 8 * 10 + 10


def test_genes_and_decoding():
    space = ne.nas.MLPSpace(max_blocks=2, widths=(8, 16), activations=("relu",), skips=(False, True))
    # depth, then per block: width, skip (a one-option menu is not a gene)
    assert [(g.name, g.block) for g in space.genes] == [
        ("depth", -1),
        ("width", 0),
        ("skip", 0),
        ("width", 1),
        ("skip", 1),
    ]
    np.testing.assert_array_equal(space.cardinalities, [2, 2, 2, 2, 2])
    arch = space.architecture(np.array([1, 1, 0, 0, 1], np.int32))
    assert arch.blocks == (ne.nas.Block(16, 0, "relu", False), ne.nas.Block(8, 0, "relu", True))
    arch = space.architecture(np.array([0, 0, 1, 1, 1], np.int32))  # depth 1: block 1 is absent
    assert arch.blocks == (ne.nas.Block(8, 0, "relu", True),)
    samples = np.asarray(space.sample(jax.random.key(0), 2000))
    assert samples.dtype == np.int32 and samples.min() == 0
    np.testing.assert_array_equal(samples.max(0), space.cardinalities - 1)
    assert abs(samples.mean() - 0.5) < 0.02


def test_bad_spaces_raise():
    with pytest.raises(ValueError, match="menu widths is empty"):
        ne.nas.MLPSpace(widths=())
    with pytest.raises(ValueError, match="menu activations is empty"):
        ne.nas.CNNSpace(activations=[])
    with pytest.raises(ValueError, match="menu kernels is empty"):
        ne.nas.CNNSpace(kernels=())
    with pytest.raises(ValueError, match="odd positive ints"):
        ne.nas.CNNSpace(kernels=(2, 3))
    with pytest.raises(ValueError, match="names in"):
        ne.nas.MLPSpace(activations=("relu", "softplusplus"))
    with pytest.raises(ValueError, match="min_blocks <= max_blocks"):
        ne.nas.MLPSpace(min_blocks=3, max_blocks=2)
    with pytest.raises(ValueError, match="positive ints"):
        ne.nas.MLPSpace(widths=(8, 0))
    with pytest.raises(ValueError, match="repeated"):
        ne.nas.MLPSpace(widths=(8, 8))
    with pytest.raises(ValueError, match="reductions"):
        ne.nas.CNNSpace(max_blocks=2, reductions=(2,))
    with pytest.raises(ValueError, match="head"):
        ne.nas.CNNSpace(head="attention")


def test_genotype_space():
    pytest.importorskip("neuroevo.space")  # issue 20's discrete genotypes
    space = MLP.genotype_space()
    np.testing.assert_array_equal(space.cardinalities, MLP.cardinalities)
    with pytest.raises(ValueError, match="single architecture"):
        ne.nas.MLPSpace(max_blocks=1, widths=(4,), activations=("relu",), skips=(False,)).genotype_space()


def test_bad_inputs_and_genotypes_raise():
    with pytest.raises(ValueError, match="add a channel axis"):
        CNN.check_input((8, 8))
    with pytest.raises(ValueError, match="too small"):
        ne.nas.CNNSpace(reductions=(0, 1, 2)).check_input((4, 4, 1))
    with pytest.raises(ValueError, match="integer vector of"):
        MLP.architecture(np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="outside"):
        MLP.architecture(np.full(MLP.n_genes, 9, np.int32))


def test_member_init_has_the_effective_fan_in():
    """Each member's kernels are scaled as a standalone network of its architecture would be drawn."""
    space = ne.nas.MLPSpace(max_blocks=1, widths=(4, 256), activations=("relu",), skips=(False,))
    x = jnp.zeros((1, 64))
    stds = []
    for gene in (0, 1):
        keys = jax.random.split(jax.random.key(0), 64)
        params = jax.vmap(lambda k, g=gene: supernet.member_init(space, k, jnp.array([g]), x))(keys)
        width = space.widths[gene]
        head = params["params"]["head"]["kernel"][:, :width, :]  # the rows the member uses
        stds.append(float(jnp.std(head)))
        assert float(jnp.std(head)) == pytest.approx(1.0 / np.sqrt(width), rel=0.1)
    assert stds[0] > 4 * stds[1]
