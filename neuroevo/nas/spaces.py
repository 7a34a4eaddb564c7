"""Search spaces of network architectures as fixed-capacity supernets (``ne.nas``).

A space is a menu of categorical choices: the number of blocks (``min_blocks`` ..
``max_blocks``), and for every block its width (units or channels), kernel size
(CNN), activation and whether it has a skip connection. A **genotype** is an
``int32`` vector with one gene per choice that has more than one option (a menu of
one is a fixed choice, not a gene), in this order::

    [depth] + for each block b < max_blocks: [width_b, kernel_b (CNN), activation_b, skip_b]

gene ``g`` taking values ``0 .. cardinalities[g] - 1`` (an index into its menu;
``space.genes`` names them). Blocks ``b >= depth`` are absent. Every genotype decodes
into **masks over one maximal network** (:meth:`supernet`): blocks of the widest
width and the largest kernel, where

- a block of width ``w`` keeps its first ``w`` units (channels) and zeroes the rest;
- a kernel of size ``k`` keeps the centred ``k x k`` window of the largest kernel
  (kernel sizes are odd; ``SAME`` padding), which is exactly a ``k x k`` convolution;
- the activation is selected from the menu;
- a skip connection adds the block's input, zero-padded or truncated to the block's
  width (a parameter-free shortcut, ResNet's option A);
- an absent block is the identity.

So every member's forward pass is the same program, and a population of different
architectures is one ``vmap``. :meth:`build` gives a standalone flax module of the
*effective* architecture (what the masks leave) and :meth:`extract` its parameters
from the supernet's: both give the same outputs (``tests/test_nas_spaces.py``).
Parameters and FLOPs are those of the effective architecture: :meth:`count_params`
(of the built module), :meth:`params_of` and :meth:`flops_of` (traced, on device).
FLOPs count ``2 x`` the multiply-accumulates of the dense and convolution layers.

The CNN works on ``(H, W, C)`` images: its blocks keep the resolution (``SAME``),
a 2 x 2 average pool follows each block listed in ``reductions`` (present or not),
and the head is a dense layer on the flattened feature map (``head="flatten"``) or on
its global average (``head="gap"``). The MLP flattens its
input. Both end in ``num_classes`` logits.

Your own space: any object with the methods of :class:`BlockSpace` (``genes``,
``sample``, ``smallest``, ``supernet``, ``build``, ``extract``, ``params_of``,
``flops_of``, ``count_params``, ``check_input``) works with :func:`neuroevo.tasks.nas`
and :mod:`neuroevo.nas.early_exit`; subclassing :class:`MLPSpace` or :class:`CNNSpace`
with other menus is the usual way.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.nas import supernet
from neuroevo.nas.architecture import ACTIVATIONS, HEADS, Architecture, Block

Array = jax.Array


class Gene(NamedTuple):
    """One categorical choice: ``name`` (depth, width, kernel, activation, skip), its ``block``
    (-1 for the depth) and its menu of ``choices``."""

    name: str
    block: int
    choices: tuple


class Choices(NamedTuple):
    """A genotype's choices as arrays (traced): ``depth`` and per block ``width``, ``kernel``,
    ``activation`` (menu index) and ``skip``."""

    depth: Array
    width: Array
    kernel: Array
    activation: Array
    skip: Array


def _menu(name: str, values: Any, kind: type, valid: Callable[[Any], bool], rule: str) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        values = (values,)
    values = tuple(values)
    if not values:
        raise ValueError(f"the search-space menu {name} is empty: give at least one {rule}")
    for v in values:
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)) or not valid(v):
            raise ValueError(f"{name} must hold {rule}, got {v!r} in {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has repeated choices: {values}")
    return values


@dataclasses.dataclass(frozen=True)
class BlockSpace:
    """The choices shared by :class:`MLPSpace` and :class:`CNNSpace` (see the module docstring)."""

    max_blocks: int = 4
    min_blocks: int = 1
    widths: tuple = (16, 32, 64)
    activations: tuple = ("relu", "tanh", "gelu")
    skips: tuple = (False, True)
    num_classes: int = 10
    kernels: tuple = (0,)  # CNN only
    reductions: tuple = ()  # CNN only
    head: str = "flatten"  # CNN only: "flatten" or "gap"

    kind = "mlp"

    def __post_init__(self):
        for name in ("max_blocks", "min_blocks", "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if not 1 <= self.min_blocks <= self.max_blocks:
            raise ValueError(
                f"need 1 <= min_blocks <= max_blocks, got min_blocks={self.min_blocks}, "
                f"max_blocks={self.max_blocks}"
            )
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        set_ = functools.partial(object.__setattr__, self)
        set_("widths", _menu("widths", self.widths, int, lambda v: v >= 1, "positive ints"))
        set_(
            "activations",
            _menu(
                "activations",
                self.activations,
                str,
                ACTIVATIONS.__contains__,
                f"names in {list(ACTIVATIONS)}",
            ),
        )
        set_(
            "skips", _menu("skips", self.skips, bool, lambda v: True, "booleans (False: no skip, True: skip)")
        )
        if self.kind == "cnn":
            set_(
                "kernels",
                _menu("kernels", self.kernels, int, lambda v: v >= 1 and v % 2, "odd positive ints"),
            )
            reductions = tuple(self.reductions)
            for r in reductions:
                if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < self.max_blocks:
                    raise ValueError(
                        f"reductions are block indices in [0, {self.max_blocks - 1}] (a 2x2 average pool "
                        f"after each), got {reductions}"
                    )
            set_("reductions", tuple(sorted(set(reductions))))
            if self.head not in HEADS:
                raise ValueError(f"head must be one of {list(HEADS)}, got {self.head!r}")
        elif self.kernels != (0,) or self.reductions != ():
            raise ValueError("kernels and reductions belong to CNNSpace; an MLPSpace has neither")
        else:
            set_("head", "dense")

    # ------------------------------------------------------------------ genes

    @functools.cached_property
    def genes(self) -> tuple[Gene, ...]:
        """Every choice with more than one option, in genotype order."""
        genes = []
        if self.max_blocks > self.min_blocks:
            genes.append(Gene("depth", -1, tuple(range(self.min_blocks, self.max_blocks + 1))))
        for b in range(self.max_blocks):
            for name, menu in self._block_menus():
                if len(menu) > 1:
                    genes.append(Gene(name, b, menu))
        return tuple(genes)

    def _block_menus(self) -> list[tuple[str, tuple]]:
        menus = [("width", self.widths)]
        if self.kind == "cnn":
            menus.append(("kernel", self.kernels))
        return menus + [("activation", self.activations), ("skip", self.skips)]

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def cardinalities(self) -> np.ndarray:
        """The number of options of each gene (int64)."""
        return np.array([len(g.choices) for g in self.genes], np.int64)

    def genotype_space(self):
        """The genes as a :mod:`neuroevo.space` space, for ``regularized_evolution``, ``nsga2``, ``ga``."""
        from neuroevo import space

        if not self.genes:
            raise ValueError(
                f"{self!r} has a single architecture: every menu has one choice, nothing to search"
            )
        return space.categorical(self.cardinalities.tolist())

    def sample(self, key: Array, n: int | None = None) -> Array:
        """Genotypes, every gene uniform over its options: ``int32[n, n_genes]`` (``[n_genes]``)."""
        cards = jnp.asarray(self.cardinalities, jnp.int32)
        shape = (self.n_genes,) if n is None else (n, self.n_genes)
        u = jax.random.uniform(key, shape)
        return jnp.minimum((u * cards).astype(jnp.int32), cards - 1)

    def smallest(self) -> np.ndarray:
        """The genotype of the fewest parameters and FLOPs: the fewest blocks, each of the
        smallest width and kernel (both counts grow with every width, kernel and block)."""
        genes = []
        for g in self.genes:
            if g.name in ("depth", "width", "kernel"):
                genes.append(int(np.argmin(g.choices)))
            else:
                genes.append(0)
        return np.array(genes, np.int32)

    # ------------------------------------------------------------- decoding

    def decode(self, genotype: Array) -> Choices:
        """The choices of one genotype, as (traced) arrays."""
        genotype = jnp.asarray(genotype, jnp.int32)
        position = {(g.name, g.block): i for i, g in enumerate(self.genes)}

        def pick(name: str, block: int, menu: tuple, dtype) -> Array:
            table = jnp.asarray(np.asarray(menu), dtype)
            i = position.get((name, block))
            return table[0] if i is None else table[genotype[i]]

        per_block = lambda name, menu, dtype: jnp.stack(
            [pick(name, b, menu, dtype) for b in range(self.max_blocks)]
        )
        index = tuple(range(len(self.activations)))
        return Choices(
            depth=pick("depth", -1, tuple(range(self.min_blocks, self.max_blocks + 1)), jnp.int32),
            width=per_block("width", self.widths, jnp.int32),
            kernel=per_block("kernel", self.kernels, jnp.int32),
            activation=per_block("activation", index, jnp.int32),
            skip=per_block("skip", self.skips, bool),
        )

    def architecture(self, genotype: Any) -> Architecture:
        """The effective architecture of a concrete genotype (on the host)."""
        genes = np.asarray(genotype)
        if genes.shape != (self.n_genes,) or not np.issubdtype(genes.dtype, np.integer):
            raise ValueError(
                f"a genotype of this space is an integer vector of {self.n_genes} genes, "
                f"got shape {genes.shape} and dtype {genes.dtype}"
            )
        bad = np.flatnonzero((genes < 0) | (genes >= self.cardinalities))
        if bad.size:
            g = self.genes[int(bad[0])]
            raise ValueError(
                f"gene {int(bad[0])} ({g.name} of block {g.block}) is {int(genes[bad[0]])}, "
                f"outside 0..{len(g.choices) - 1}"
            )
        value = {(g.name, g.block): g.choices[int(v)] for g, v in zip(self.genes, genes, strict=True)}
        get = lambda name, block, menu: value.get((name, block), menu[0])
        depth = get("depth", -1, (self.min_blocks,))
        layers = []
        for b in range(self.max_blocks):
            if b < depth:
                layers.append(
                    Block(
                        width=int(get("width", b, self.widths)),
                        kernel=int(get("kernel", b, self.kernels)),
                        activation=str(get("activation", b, self.activations)),
                        skip=bool(get("skip", b, self.skips)),
                    )
                )
            if b in self.reductions:
                layers.append("pool")
        return Architecture(self.kind, tuple(layers), self.num_classes, self.head)

    # --------------------------------------------------------------- networks

    def supernet(self):
        """The maximal network, masked by a genotype: ``module.apply(params, x, genotype)`` on a
        batch ``x`` of inputs; its parameters (``module.init(key, x, genotype)``) serve every member."""
        return supernet.MaskedCNN(self) if self.kind == "cnn" else supernet.MaskedMLP(self)

    def build(self, genotype: Any):
        """A standalone flax module of ``genotype``'s effective architecture (on a batch of inputs)."""
        return supernet.network(self.architecture(genotype))

    def extract(self, genotype: Any, supernet_params: Any) -> Any:
        """The parameters of :meth:`build` (``genotype``) cut out of the supernet's ``supernet_params``:
        both networks then compute the same function."""
        return supernet.extract(self.architecture(genotype), supernet_params)

    def count_params(self, genotype: Any, input_shape: Sequence[int]) -> int:
        """The parameter count of :meth:`build` (``genotype``) on inputs of ``input_shape`` (one example)."""
        input_shape = self.check_input(input_shape)
        module = self.build(genotype)
        shapes = jax.eval_shape(
            module.init, jax.random.key(0), jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
        )
        return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(shapes)))

    def flops(self, genotype: Any, input_shape: Sequence[int]) -> int:
        """FLOPs of one forward pass of the effective architecture on one example (exact int)."""
        input_shape = self.check_input(input_shape)
        arch = self.architecture(genotype)
        return _cost(self, _host_choices(self, arch), input_shape, np.where, object)[1]

    def params_of(self, genotype: Array, input_shape: Sequence[int]) -> Array:
        """:meth:`count_params` as a traced ``int32`` (jit/vmap-able)."""
        input_shape = self.check_input(input_shape)
        return _cost(self, self.decode(genotype), input_shape, jnp.where, jnp.int32)[0]

    def flops_of(self, genotype: Array, input_shape: Sequence[int]) -> Array:
        """:meth:`flops` as a traced ``float32`` (jit/vmap-able)."""
        input_shape = self.check_input(input_shape)
        return _cost(self, self.decode(genotype), input_shape, jnp.where, jnp.float32)[1]

    def max_params(self, input_shape: Sequence[int]) -> int:
        """The supernet's parameter count (every member's storage)."""
        input_shape = self.check_input(input_shape)
        x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
        g = jax.ShapeDtypeStruct((self.n_genes,), jnp.int32)
        shapes = jax.eval_shape(self.supernet().init, jax.random.key(0), x, g)
        return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(shapes)))

    def check_input(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """``input_shape`` (one example) as a tuple, or ``ValueError`` if the space cannot take it."""
        try:
            shape = tuple(int(s) for s in input_shape)
        except TypeError:
            raise ValueError(f"input_shape must be a sequence of ints, got {input_shape!r}") from None
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"input_shape must be non-empty with positive sizes, got {shape}")
        if self.kind == "cnn":
            if len(shape) != 3:
                raise ValueError(
                    "a CNNSpace takes images of shape (height, width, channels), "
                    f"got examples of shape {shape}"
                    + (" (add a channel axis: x[..., None])" if len(shape) == 2 else "")
                )
            smallest = 2 ** len(self.reductions)
            if shape[0] < smallest or shape[1] < smallest:
                raise ValueError(
                    f"images of {shape[0]}x{shape[1]} are too small for {len(self.reductions)} 2x2 poolings "
                    f"(reductions={self.reductions}): need at least {smallest}x{smallest}"
                )
        return shape


@dataclasses.dataclass(frozen=True)
class MLPSpace(BlockSpace):
    """Dense blocks ``act(Dense(width)(x)) [+ x]`` on the flattened input, then ``Dense(num_classes)``.

    Args:
      max_blocks, min_blocks: the depth choices ``min_blocks .. max_blocks``.
      widths: units per block. activations: names in ``ACTIVATIONS``. skips: ``(False, True)``
        lets evolution choose; ``(False,)`` never has skips.
      num_classes: outputs (logits).
    """

    widths: tuple = (16, 32, 64, 128)
    kind = "mlp"


@dataclasses.dataclass(frozen=True)
class CNNSpace(BlockSpace):
    """Conv blocks ``act(Conv(width, k x k, SAME)(x)) [+ x]``, 2 x 2 average pools after the blocks
    in ``reductions``, then ``Dense(num_classes)`` on the flattened (or averaged) feature map.

    Args: as :class:`MLPSpace`, plus ``kernels`` (odd sizes), ``reductions`` (block indices
    followed by a pool) and ``head`` (``"flatten"`` or ``"gap"``, global average pooling).
    The defaults suit 8 x 8 digits: three blocks at most, a pool after the first.
    """

    max_blocks: int = 3
    widths: tuple = (4, 8, 16)
    kernels: tuple = (1, 3, 5)
    activations: tuple = ("relu", "tanh", "swish")
    reductions: tuple = (0,)
    kind = "cnn"


def _host_choices(space: BlockSpace, arch: Architecture) -> Choices:
    blocks = arch.blocks
    pad = lambda values, fill: np.array(list(values) + [fill] * (space.max_blocks - len(values)), object)
    return Choices(
        depth=len(blocks),
        width=pad([b.width for b in blocks], 0),
        kernel=pad([b.kernel for b in blocks], 0),
        activation=None,
        skip=None,
    )


def _cost(space: BlockSpace, choices: Choices, input_shape: tuple, where: Callable, dtype) -> tuple[Any, Any]:
    """(parameters, FLOPs) of the effective architecture. ``where``/``dtype``: numpy with Python
    ints (exact, on the host) or jax.numpy (traced)."""
    cast = (lambda v: v) if dtype is object else (lambda v: jnp.asarray(v, dtype))
    zero = cast(0)
    params, flops = zero, zero
    if space.kind == "cnn":
        height, width_px, previous = input_shape
    else:
        height = width_px = 1
        previous = math.prod(input_shape)
    previous = cast(previous)
    for b in range(space.max_blocks):
        active = b < choices.depth
        units, kernel = cast(choices.width[b]), cast(choices.kernel[b])
        fan_in = previous * kernel * kernel if space.kind == "cnn" else previous
        params = params + where(active, (fan_in + 1) * units, zero)
        flops = flops + where(active, 2 * height * width_px * fan_in * units, zero)
        previous = where(active, units, previous)
        if b in space.reductions:
            height, width_px = height // 2, width_px // 2
    classes = space.num_classes
    if space.kind == "cnn" and space.head == "flatten":
        previous = previous * height * width_px
    params = params + (previous + 1) * classes
    flops = flops + 2 * previous * classes
    if dtype is object:
        return int(params), int(flops)
    return params, flops
