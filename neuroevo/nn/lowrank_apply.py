"""Evaluate a low-rank population at the speed of inference, by intercepting flax layers.

A population of ``n`` members ``W + s_i A_i B_i^T / sqrt(r)`` (see
:mod:`neuroevo.lowrank`) is evaluated by :class:`LowRankMembers.apply` without
ever building a member's weight matrices: the user's function runs under
``vmap`` over the members with the *shared* mean weights, so every layer's
``x @ W`` is one matrix product over the whole population (XLA batches the
members' inputs against the one unbatched ``W``), and
``flax.linen.intercept_methods`` adds each member's term after the layer:

- ``nn.Dense``:        ``+ s/sqrt(r) * (x @ A) @ B^T``
- ``nn.DenseGeneral``: the same with ``A`` reshaped to the kernel's input axes
  (``batch_dims`` not supported)
- ``nn.Conv``:         the convolution of ``x`` with ``A`` as a ``(kh, kw, c_in, r)``
  kernel (same strides, padding, kernel dilation), computed as one
  ``(..., c_in) @ (c_in, r)`` product per kernel offset on shifted views of the
  padded input, then ``@ B^T`` (a 1x1 convolution); ``feature_group_count > 1``,
  a ``mask``, ``input_dilation`` or a custom ``conv_general_dilated`` are not
  supported
- ``nn.Embed``:        ``+ s/sqrt(r) * A[ids] @ B^T`` (``__call__``) and
  ``+ s/sqrt(r) * (q @ B) @ A^T`` (``attend``)

Only these exact classes are intercepted (not subclasses, which may compute
something else), and only when they use the default ``dot_general``. Vector
and scalar leaves (biases, norms) get their dense per-member noise: they are
small. A matrix leaf is low-rank in the forward pass only if intercepted
layers are its only readers: before the first call, the function is traced
once with each intercepted layer's output computed from a zero kernel, and a
kernel the traced program still reads (your own ``params["w"] @ x``, a kernel
passed to a layer that is not intercepted) is perturbed densely per member
instead, with one warning naming it. The result is the same either way (the
member's exact output); only the cost differs.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from flax.linen.linear import canonicalize_padding
from jax.extend import core as jax_core

from neuroevo import lowrank
from neuroevo.strategy import Members, PyTree

Array = jax.Array

# The weight each intercepted class reads, and the methods whose output gets the low-rank term.
WEIGHT_NAMES = {nn.Dense: "kernel", nn.DenseGeneral: "kernel", nn.Conv: "kernel", nn.Embed: "embedding"}
METHODS = {nn.Dense: ("__call__",), nn.DenseGeneral: ("__call__",), nn.Conv: ("__call__",)}
METHODS[nn.Embed] = ("__call__", "attend")


def supported(module: nn.Module, method: str) -> str | None:
    """The name of the weight ``module.method`` reads if its output can take a low-rank term, else None."""
    kind = type(module)
    if kind not in WEIGHT_NAMES or method not in METHODS[kind]:
        return None
    if kind in (nn.Dense, nn.DenseGeneral) and (module.dot_general is not None or module.dot_general_cls):
        return None
    if kind is nn.DenseGeneral and module.batch_dims:
        return None
    if kind is nn.Conv and (
        module.feature_group_count != 1
        or module.mask is not None
        or any(d != 1 for d in _broadcast(module.input_dilation, 1))
        or module.conv_general_dilated is not None
        or module.conv_general_dilated_cls is not None
    ):
        return None
    return WEIGHT_NAMES[kind]


def lowrank_term(module: nn.Module, method: str, args: tuple, a: Array, b: Array) -> Array:
    """``x (A B^T)`` of the layer's input ``x`` for a kernel ``A B^T`` (``A``: rows of the matrix view)."""
    kind = type(module)
    x = args[0]
    if kind is nn.Embed:
        if method == "attend":
            return (x @ b) @ a.T
        ids = jnp.zeros_like(x) if module.num_embeddings == 1 else x
        return jnp.take(a, ids, axis=0) @ b.T
    x = jnp.asarray(x, jnp.result_type(x, a))
    if kind is nn.Dense:
        return (x @ a) @ b.T
    kernel_shape = module.get_variable("params", "kernel").shape
    r = a.shape[-1]
    if kind is nn.Conv:
        return conv_term(module, x, a.reshape(kernel_shape[:-1] + (r,))) @ b.T
    axes = module.axis if isinstance(module.axis, tuple | list) else (module.axis,)
    axes = tuple(ax % x.ndim for ax in axes)
    z = jax.lax.dot_general(
        x, a.reshape(kernel_shape[:-1] + (r,)), ((axes, tuple(range(len(axes)))), ((), ()))
    )
    return z @ b.T


def _broadcast(value: Any, n: int) -> tuple[int, ...]:
    if value is None:
        return (1,) * n
    return (value,) * n if isinstance(value, int) else tuple(value)


def conv_pads(module: nn.Conv, spatial: tuple[int, ...], dilated: list[int], strides) -> tuple[list, str]:
    """``(pads, mode)`` of the input that make ``module``'s convolution a VALID one (flax's rules)."""
    padding = canonicalize_padding(module.padding, len(spatial))
    if padding in ("CIRCULAR", "REFLECT"):
        return [((k - 1) // 2, k // 2) for k in dilated], {"CIRCULAR": "wrap", "REFLECT": "reflect"}[padding]
    if padding == "CAUSAL":
        return [(dilated[0] - 1, 0)], "constant"
    if isinstance(padding, str):
        return list(jax.lax.padtype_to_pads(spatial, dilated, strides, padding)), "constant"
    return [tuple(p) for p in padding], "constant"


def conv_term(module: nn.Conv, x: Array, kernel: Array) -> Array:
    """``module``'s convolution of ``x`` with a narrow ``kernel`` (kh, kw, c_in, r), as shifted products.

    One ``(..., c_in) @ (c_in, r)`` product per kernel offset, on strided views of
    the padded input: with r = 1 or 2 outputs this is far cheaper than a
    convolution per member (which ``vmap`` would turn into a grouped one).
    """
    sizes = tuple(kernel.shape[:-2])
    n = len(sizes)
    strides = _broadcast(module.strides, n)
    dilation = _broadcast(module.kernel_dilation, n)
    spatial = tuple(x.shape[-n - 1 : -1])
    dilated = [(k - 1) * d + 1 for k, d in zip(sizes, dilation, strict=True)]
    pads, mode = conv_pads(module, spatial, dilated, strides)
    lead = [(0, 0)] * (x.ndim - n - 1)
    x = jnp.pad(x, lead + list(pads) + [(0, 0)], mode=mode)
    out = [
        (s + lo + hi - e) // st + 1
        for s, (lo, hi), e, st in zip(spatial, pads, dilated, strides, strict=True)
    ]
    total = 0.0
    for offset in itertools.product(*(range(k) for k in sizes)):
        start = [0] * len(lead) + [o * d for o, d in zip(offset, dilation, strict=True)] + [0]
        limit = list(x.shape[: len(lead)])
        limit += [
            st0 + (m - 1) * st + 1 for st0, m, st in zip(start[len(lead) : -1], out, strides, strict=True)
        ]
        limit += [x.shape[-1]]
        view = jax.lax.slice(x, start, limit, [1] * len(lead) + list(strides) + [1])
        total = total + view @ kernel[offset]
    return total


def intercepted(context: Any, busy: list, by_id: dict) -> tuple[str | None, int | None]:
    """``(weight name, leaf index)`` of the layer call ``context`` if it reads one of the leaves
    ``by_id`` (keyed by ``id``) and is not nested in an intercepted call (``busy``), else Nones."""
    name = None if busy else supported(context.module, context.method_name)
    index = None if name is None else by_id.get(id(context.module.get_variable("params", name)))
    return name, index


def output_with_weight(module: nn.Module, method: str, name: str, weight: Array, args: tuple, kwargs: dict):
    """The layer's output with its weight ``name`` replaced by ``weight`` (its other variables kept)."""
    variables = {col: dict(v) for col, v in module.variables.items()}
    variables["params"][name] = weight
    return module.clone(parent=None).apply(variables, *args, method=method, **kwargs)


def lowrank_leaves(fn: Callable, base: PyTree, lay: lowrank.Layout, member_args: tuple) -> frozenset[int]:
    """The matrix leaves that intercepted layers alone read when ``fn(base, *member_args)`` runs.

    Traces ``fn`` once (abstractly) with every intercepted layer computed from a
    zero weight, and keeps the leaves the traced program does not read otherwise.
    """
    leaves, treedef = jax.tree_util.tree_flatten(base)
    candidates = [i for i, m in enumerate(lay.matrix) if m]
    seen: set[int] = set()

    def probed(leaves, *args):
        by_id = {id(leaves[i]): i for i in candidates}
        busy: list[int] = []

        def interceptor(next_fun, a, kw, context):
            name, index = intercepted(context, busy, by_id)
            if index is None:
                return next_fun(*a, **kw)
            seen.add(index)
            busy.append(index)
            try:
                w = context.module.get_variable("params", name)
                zero = jnp.zeros(w.shape, w.dtype)  # the probe's stand-in, which does not read the weight
                return output_with_weight(context.module, context.method_name, name, zero, a, kw)
            finally:
                busy.pop()

        with nn.intercept_methods(interceptor):
            return fn(treedef.unflatten(leaves), *args)

    shapes = [jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)) for x in leaves]
    jaxpr = jax.make_jaxpr(probed)(shapes, *member_args).jaxpr
    read = set()
    for eqn in jaxpr.eqns:
        read.update(id(v) for v in eqn.invars if not isinstance(v, jax_core.Literal))
    read.update(id(v) for v in jaxpr.outvars if not isinstance(v, jax_core.Literal))
    return frozenset(i for i in seen if id(jaxpr.invars[i]) not in read)


@struct.dataclass
class LowRankMembers(Members):
    """A population ``base + scale_i * eps_i`` with low-rank matrix noise (:mod:`neuroevo.lowrank`).

    ``factors`` holds, per leaf of ``base`` and with a leading population axis,
    ``(A, B)`` for matrix leaves and the dense noise of the others: O(n * sum
    (m + k) r) numbers, drawn once (per generation, per chunk) and then shared by
    every call of :meth:`apply`.

    With ``parent`` (the GA's children of a few parents), ``base`` is a table of
    parents (every leaf has a leading axis of T rows) and member ``i`` is
    ``base[parent_i] + scale_i * eps_i``: each intercepted layer then runs once
    per parent on the whole population (T shared matrix products) and every
    member keeps its parent's output, so this pays off while T is small.
    """

    base: PyTree
    scale: Array  # (n,): the signed step of each member (+sigma, -sigma for a mirrored pair)
    factors: list
    parent: Array | None = None  # (n,) int: the row of a table ``base`` each member starts from
    layout: lowrank.Layout = struct.field(pytree_node=False, default=None)

    @classmethod
    def from_seeds(
        cls,
        base: PyTree,
        seeds: Array,
        scale: Array,
        lay: lowrank.Layout,
        mirrored: bool = False,
        parent: Array | None = None,
    ) -> LowRankMembers:
        """Draw every member's factors; ``mirrored``: the second half's seeds repeat the first half's."""
        dtype = jax.tree_util.tree_leaves(base)[0].dtype
        half = seeds.shape[0] // 2 if mirrored else seeds.shape[0]
        factors = jax.vmap(lambda s: lowrank.draw(s, lay, dtype))(seeds[:half])
        if mirrored:
            factors = jax.tree_util.tree_map(lambda f: jnp.concatenate([f, f]), factors)
        return cls(base=base, scale=scale, factors=factors, parent=parent, layout=lay)

    @property
    def size(self) -> int:
        return int(self.scale.shape[0])

    def apply(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(member_params, *args_i)`` for every member (see the module docstring)."""
        n = self.size
        for arg in jax.tree_util.tree_leaves(args):
            if jnp.ndim(arg) < 1 or jnp.shape(arg)[0] != n:
                raise ValueError(
                    f"population_apply: every argument needs a leading population axis of {n}, "
                    f"got an argument of shape {jnp.shape(arg)}"
                )
        lay = self.layout
        table = self.parent is not None
        base_leaves, treedef = jax.tree_util.tree_flatten(self.base)
        # What the layers see for a low-rank leaf: the shared matrix (the first parent's, with a table).
        shared = [w[0] for w in base_leaves] if table else base_leaves
        member_args = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), args)
        fast = lowrank_leaves(fn, treedef.unflatten(shared), lay, member_args)
        dense = [lay.paths[i] for i, m in enumerate(lay.matrix) if m and i not in fast]
        if dense:
            warnings.warn(
                f"population_apply: parameters {', '.join(dense)} are not read by intercepted flax layers "
                "(Dense, DenseGeneral, Conv, Embed) alone; they are perturbed densely per member "
                "(exact, but memory and time grow with the population)",
                stacklevel=2,
            )
        inv_sqrt_rank = np.float32(1.0 / math.sqrt(lay.rank))
        parent = self.parent if table else jnp.zeros((n,), jnp.int32)

        def member(factors, scale, parent, *member_args):
            leaves = []
            for i, (w, f) in enumerate(zip(base_leaves, factors, strict=True)):
                own = w[parent] if table else w
                if i in fast:
                    leaves.append(shared[i])
                elif lay.matrix[i]:
                    leaves.append(
                        own + (scale * inv_sqrt_rank * (f[0] @ f[1].T)).reshape(own.shape).astype(w.dtype)
                    )
                else:
                    leaves.append(own + (scale * f).astype(w.dtype))
            by_id = {id(leaves[i]): i for i in fast}
            busy: list[int] = []

            def interceptor(next_fun, a, kw, context):
                name, index = intercepted(context, busy, by_id)
                if index is None:
                    return next_fun(*a, **kw)
                busy.append(index)
                try:
                    if table:  # every parent's output on this input; the member keeps its parent's
                        rows = base_leaves[index]
                        outs = [
                            output_with_weight(context.module, context.method_name, name, w, a, kw)
                            for w in rows
                        ]
                        out = jnp.stack(outs)[parent]
                    else:
                        out = next_fun(*a, **kw)
                    fa, fb = factors[index]
                    term = lowrank_term(context.module, context.method_name, a, fa, fb)
                finally:
                    busy.pop()
                return out + (scale * inv_sqrt_rank * term).astype(out.dtype)

            with nn.intercept_methods(interceptor):
                return fn(treedef.unflatten(leaves), *member_args)

        return jax.vmap(member)(self.factors, self.scale, parent, *args)
