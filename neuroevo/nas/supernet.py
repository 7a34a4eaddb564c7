"""The masked supernets of :mod:`neuroevo.nas.spaces` and the standalone networks they stand for.

``MaskedMLP`` / ``MaskedCNN`` hold the largest choice of everything and take a genotype
as a second input (see the spaces' module docstring for the masks); ``MLPNet`` /
``CNNNet`` are ordinary flax networks of one effective architecture (``nn.Dense``,
``nn.Conv``), built by :func:`network`. :func:`extract` cuts a standalone network's
parameters out of the supernet's, so that both compute the same function.

The supernet's convolution is a sum of matrix products, one per tap of the largest
kernel, each on a shifted copy of the input: under ``vmap`` over members with their
own weights these become batched matrix products, which XLA runs well on CPUs and
accelerators (a vmapped ``lax.conv`` becomes a grouped convolution, 2x slower on a
CPU here), and nothing of the size ``K x K x`` the activations is stored.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.nas.architecture import ACTIVATIONS, Architecture, Block

Array = jax.Array


def fit_features(x: Array, n: int) -> Array:
    """``x``'s last axis zero-padded or truncated to ``n`` (the skip connection's shortcut)."""
    size = x.shape[-1]
    if size >= n:
        return x[..., :n]
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n - size)])


def select_activation(h: Array, index: Array, names: tuple[str, ...]) -> Array:
    """``ACTIVATIONS[names[index]](h)`` for a traced ``index``."""
    if len(names) == 1:
        return ACTIVATIONS[names[0]](h)
    outs = [ACTIVATIONS[name](h) for name in names]
    return jnp.select([index == i for i in range(len(names))], outs)


def kernel_mask(size: Array, largest: int) -> Array:
    """The centred ``size x size`` window of a ``largest x largest`` kernel, ``float32[K, K]``."""
    offset = jnp.abs(jnp.arange(largest) - largest // 2)
    inside = offset <= size // 2
    return (inside[:, None] & inside[None, :]).astype(jnp.float32)


def conv_same(x: Array, kernel: Array) -> Array:
    """``SAME`` convolution of ``x`` (B, H, W, C) with ``kernel`` (K, K, C, O), stride 1, K odd: the sum
    over the kernel's ``K x K`` taps of a shifted copy of ``x`` times that tap's ``C x O`` matrix."""
    k = kernel.shape[0]
    pad = k // 2
    height, width = x.shape[1:3]
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = None
    for i in range(k):
        for j in range(k):
            tap = jnp.einsum("bhwc,co->bhwo", padded[:, i : i + height, j : j + width, :], kernel[i, j])
            out = tap if out is None else out + tap
    return out


def head_features(h: Array, head: str) -> Array:
    """A CNN's feature map (B, H, W, C) flattened (``"flatten"``) or averaged (``"gap"``)."""
    return h.reshape(h.shape[0], -1) if head == "flatten" else jnp.mean(h, axis=(1, 2))


def average_pool(x: Array) -> Array:
    """2 x 2 average pool, stride 2 (a reduction)."""
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


def block_output(space: Any, choices: Any, b: int, z: Array, h: Array) -> Array:
    """Block ``b``'s output from its layer's pre-activation ``z`` (widest width) and input ``h``:
    the chosen activation, the skip connection if chosen, the width mask, and the identity if
    the block is absent."""
    widest = z.shape[-1]
    z = select_activation(z, choices.activation[b], space.activations)
    if True in space.skips:
        z = z + jnp.where(choices.skip[b], fit_features(h, widest), 0.0)
    z = z * (jnp.arange(widest) < choices.width[b])
    return z if b < space.min_blocks else jnp.where(b < choices.depth, z, h)


class MaskedMLP(nn.Module):
    """The MLP space's supernet: ``apply(params, x, genotype)`` on a batch ``x``."""

    space: Any

    @nn.compact
    def __call__(self, x: Array, genotype: Array) -> Array:
        space = self.space
        choices = space.decode(genotype)
        widest = max(space.widths)
        h = jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)
        for b in range(space.max_blocks):
            h = block_output(space, choices, b, nn.Dense(widest, name=f"block_{b}")(h), h)
        return nn.Dense(space.num_classes, name="head")(h)


class MaskedCNN(nn.Module):
    """The CNN space's supernet: ``apply(params, x, genotype)`` on a batch ``x`` of (H, W, C) images."""

    space: Any

    @nn.compact
    def __call__(self, x: Array, genotype: Array) -> Array:
        space = self.space
        choices = space.decode(genotype)
        widest, largest = max(space.widths), max(space.kernels)
        h = jnp.asarray(x, jnp.float32)
        for b in range(space.max_blocks):
            kernel = self.param(
                f"block_{b}_kernel", nn.initializers.lecun_normal(), (largest, largest, h.shape[-1], widest)
            )
            bias = self.param(f"block_{b}_bias", nn.initializers.zeros, (widest,))
            mask = kernel_mask(choices.kernel[b], largest)[:, :, None, None]
            h = block_output(space, choices, b, conv_same(h, kernel * mask) + bias, h)
            if b in space.reductions:
                h = average_pool(h)
        return nn.Dense(space.num_classes, name="head")(head_features(h, space.head))


class MLPNet(nn.Module):
    """A standalone MLP of one effective architecture."""

    layers: tuple
    num_classes: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        h = jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)
        for i, block in enumerate(b for b in self.layers if isinstance(b, Block)):
            z = ACTIVATIONS[block.activation](nn.Dense(block.width, name=f"block_{i}")(h))
            h = z + fit_features(h, block.width) if block.skip else z
        return nn.Dense(self.num_classes, name="head")(h)


class CNNNet(nn.Module):
    """A standalone CNN of one effective architecture (``nn.Conv`` blocks, pools, GAP, dense head)."""

    layers: tuple
    num_classes: int
    head: str = "flatten"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        h = jnp.asarray(x, jnp.float32)
        i = 0
        for layer in self.layers:
            if layer == "pool":
                h = average_pool(h)
                continue
            conv = nn.Conv(layer.width, (layer.kernel, layer.kernel), padding="SAME", name=f"block_{i}")
            z = ACTIVATIONS[layer.activation](conv(h))
            h = z + fit_features(h, layer.width) if layer.skip else z
            i += 1
        return nn.Dense(self.num_classes, name="head")(head_features(h, self.head))


def network(arch: Architecture) -> nn.Module:
    """The standalone flax module of an effective architecture."""
    if arch.kind == "cnn":
        return CNNNet(layers=arch.layers, num_classes=arch.num_classes, head=arch.head)
    return MLPNet(layers=arch.layers, num_classes=arch.num_classes)


def extract(arch: Architecture, supernet_params: Any) -> dict:
    """The standalone network's parameters (:func:`network`) cut out of the supernet's."""
    p = supernet_params["params"] if "params" in supernet_params else supernet_params
    out = {}
    previous = None  # input features: all of the first block's
    for i, block in enumerate(arch.blocks):
        if arch.kind == "cnn":
            kernel = np.asarray(p[f"block_{i}_kernel"])
            centre, r = kernel.shape[0] // 2, block.kernel // 2
            window = kernel[
                centre - r : centre + r + 1, centre - r : centre + r + 1, :previous, : block.width
            ]
            out[f"block_{i}"] = {"kernel": window, "bias": np.asarray(p[f"block_{i}_bias"])[: block.width]}
        else:
            dense = p[f"block_{i}"]
            out[f"block_{i}"] = {
                "kernel": np.asarray(dense["kernel"])[:previous, : block.width],
                "bias": np.asarray(dense["bias"])[: block.width],
            }
        previous = block.width
    kernel = np.asarray(p["head"]["kernel"])
    if arch.kind == "cnn" and arch.head == "flatten":  # rows ordered (height, width, channel)
        widest = p["block_0_kernel"].shape[-1]
        kernel = kernel.reshape(-1, widest, kernel.shape[-1])[:, :previous].reshape(-1, kernel.shape[-1])
    else:
        kernel = kernel[:previous]
    out["head"] = {"kernel": kernel, "bias": np.asarray(p["head"]["bias"])}
    return {"params": jax.tree_util.tree_map(jnp.asarray, out)}


def member_init(space: Any, key: Array, genotype: Array, example: Array) -> dict:
    """Supernet parameters for one member whose effective weights are distributed as a freshly
    initialised standalone network's (:func:`network`): each kernel drawn by flax's default
    LeCun normal for the supernet's fan-in, rescaled to the member's effective fan-in."""
    params = space.supernet().init(key, example, genotype)
    choices = space.decode(genotype)
    widest = max(space.widths)
    inputs = example.shape[-1] if space.kind == "cnn" else int(np.prod(example.shape[1:]))
    largest = max(space.kernels) if space.kind == "cnn" else 1
    p = dict(params["params"])
    for b in range(space.max_blocks):
        previous_max = inputs if b == 0 else widest
        previous = inputs if b == 0 else choices.width[b - 1]
        k = choices.kernel[b] if space.kind == "cnn" else 1
        scale = jnp.sqrt(largest * largest * previous_max / jnp.asarray(k * k * previous, jnp.float32))
        if space.kind == "cnn":
            p[f"block_{b}_kernel"] = p[f"block_{b}_kernel"] * scale
        else:
            p[f"block_{b}"] = dict(p[f"block_{b}"], kernel=p[f"block_{b}"]["kernel"] * scale)
    last = choices.width[choices.depth - 1]  # the head's fan-in is proportional to it
    p["head"] = dict(
        p["head"], kernel=p["head"]["kernel"] * jnp.sqrt(widest / jnp.asarray(last, jnp.float32))
    )
    return {"params": p}
