"""The effective architecture a genotype stands for: blocks, pools and a head (plain data).

Shared by :mod:`neuroevo.nas.spaces` (which decodes genotypes into it) and
:mod:`neuroevo.nas.supernet` (which builds networks from it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array

HEADS = ("flatten", "gap")
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "swish": jax.nn.swish,
    "sigmoid": jax.nn.sigmoid,
    "elu": jax.nn.elu,
    "identity": lambda x: x,
}


class Block(NamedTuple):
    """One block of an effective architecture."""

    width: int
    kernel: int  # 0 for an MLP block
    activation: str
    skip: bool


class Architecture(NamedTuple):
    """An effective architecture: ``layers`` are :class:`Block` s and ``"pool"`` (2 x 2 average)."""

    kind: str  # "mlp" or "cnn"
    layers: tuple
    num_classes: int
    head: str = "flatten"  # CNN: "flatten" or "gap"

    @property
    def blocks(self) -> tuple[Block, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, Block))

    def describe(self) -> str:
        parts = []
        for layer in self.layers:
            if layer == "pool":
                parts.append("avgpool2")
                continue
            kind = f"conv{layer.kernel}x{layer.kernel}" if layer.kernel else "dense"
            parts.append(f"{kind}({layer.width}, {layer.activation}{', skip' if layer.skip else ''})")
        head = f"{self.head} -> dense" if self.kind == "cnn" else "dense"
        return " -> ".join(parts + [f"{head}({self.num_classes})"])
