"""Runnable NEAT networks: the decoded form of a genome, and its forward pass.

A :class:`Network` is what ``neat.decode`` returns and what a task's ``apply``
runs. It has the static shape of the genome's capacity (``max_nodes``), so a
population of different topologies is one batch of arrays:

- ``weights[dst, src]``: the enabled connections as a dense matrix;
- ``bias``, ``response``, ``activation`` (an index into :data:`ACTIVATIONS`) per
  node slot; node slots ``0..num_inputs-1`` are the inputs and the next
  ``num_outputs`` slots the outputs;
- ``steps``: how many synchronous updates the forward pass makes (at most,
  when ``until_fixed_point``).

Every non-input node computes ``act(bias + response * sum_j w_ij v_j)`` (sum
aggregation). The forward pass updates all nodes together, starting from zero.
A recurrent genome makes ``steps`` activation steps. A feed-forward genome
(``until_fixed_point``) updates until no value changes: after ``d`` updates
every node of depth ``<= d`` (the longest path from a source) holds its final
value, so the values stop changing after ``depth + 1`` updates, and since the
update is a deterministic function of the values, a repeat is the unique fixed
point of an acyclic graph: exactly what a topological-order evaluation gives,
without computing the depth first. ``steps`` (the number of node slots: a
depth never exceeds it) only bounds the loop, e.g. for a NaN that never
repeats. Activation functions follow neat-python's definitions
(``sigmoid(z) = 1 / (1 + exp(-5 z))``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

Array = jax.Array


def _sigmoid(z):
    return jax.nn.sigmoid(jnp.clip(5.0 * z, -60.0, 60.0))


def _tanh(z):
    return jnp.tanh(jnp.clip(2.5 * z, -60.0, 60.0))


def _sin(z):
    return jnp.sin(jnp.clip(5.0 * z, -60.0, 60.0))


def _gauss(z):
    z = jnp.clip(z, -3.4, 3.4)
    return jnp.exp(-5.0 * z * z)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "relu": jax.nn.relu,
    "identity": lambda z: z,
    "sin": _sin,
    "gauss": _gauss,
    "abs": jnp.abs,
    "clamped": lambda z: jnp.clip(z, -1.0, 1.0),
}
ACTIVATION_NAMES: tuple[str, ...] = tuple(ACTIVATIONS)


def activation_index(name: str) -> int:
    """The index of activation ``name`` in :data:`ACTIVATIONS`; unknown names raise ``ValueError``."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {list(ACTIVATION_NAMES)}")
    return ACTIVATION_NAMES.index(name)


def activate(index: Array, z: Array, options: tuple[int, ...] | None = None) -> Array:
    """Apply activation ``index[i]`` to ``z[i]``. ``options`` (static) lists the indices that can
    occur; only those functions are computed (all of them when None)."""
    options = tuple(range(len(ACTIVATIONS))) if options is None else options
    fns = list(ACTIVATIONS.values())
    out = fns[options[0]](z)
    for i in options[1:]:
        out = jnp.where(index == i, fns[i](z), out)
    return out


@struct.dataclass
class Network:
    """A decoded NEAT genome (see the module docstring). ``num_inputs``/``num_outputs`` are static."""

    weights: Array  # f32[N, N], weights[dst, src]
    bias: Array  # f32[N]
    response: Array  # f32[N]
    activation: Array  # i32[N]
    steps: Array  # i32[]
    num_inputs: int = struct.field(pytree_node=False, default=1)
    num_outputs: int = struct.field(pytree_node=False, default=1)
    activations: tuple[int, ...] | None = struct.field(pytree_node=False, default=None)  # indices in use
    until_fixed_point: bool = struct.field(pytree_node=False, default=False)  # feed-forward

    @property
    def max_nodes(self) -> int:
        return int(self.bias.shape[-1])


def template(num_inputs: int, num_outputs: int, activation: str = "sigmoid") -> Network:
    """The smallest network for ``num_inputs`` inputs and ``num_outputs`` outputs, with no
    connections: the ``x0`` a NEAT strategy starts from (it reads the two counts)."""
    if not isinstance(num_inputs, int) or num_inputs < 1:
        raise ValueError(f"num_inputs must be a positive int, got {num_inputs!r}")
    if not isinstance(num_outputs, int) or num_outputs < 1:
        raise ValueError(f"num_outputs must be a positive int, got {num_outputs!r}")
    n = num_inputs + num_outputs
    return Network(
        weights=jnp.zeros((n, n), jnp.float32),
        bias=jnp.zeros((n,), jnp.float32),
        response=jnp.ones((n,), jnp.float32),
        activation=jnp.full((n,), activation_index(activation), jnp.int32),
        steps=jnp.ones((), jnp.int32),
        num_inputs=num_inputs,
        num_outputs=num_outputs,
    )


def forward(network: Network, inputs: Array) -> Array:
    """The network's outputs (``f32[num_outputs]``) for one input vector (flattened)."""
    inputs = jnp.asarray(inputs, jnp.float32).reshape(-1)
    if inputs.shape[0] != network.num_inputs:
        raise ValueError(f"the network has {network.num_inputs} inputs, got an input of shape {inputs.shape}")
    return forward_batch(network, inputs[None])[0]


def forward_batch(network: Network, inputs: Array) -> Array:
    """The outputs (``f32[B, num_outputs]``) for a batch of input vectors ``f32[B, num_inputs]``:
    one pass that updates the values of all ``B`` inputs together (a matrix product per update)."""
    inputs = jnp.asarray(inputs, jnp.float32)
    ni, no = network.num_inputs, network.num_outputs
    if inputs.ndim != 2 or inputs.shape[1] != ni:
        raise ValueError(f"forward_batch takes inputs of shape (batch, {ni}), got {inputs.shape}")
    n = network.max_nodes
    is_input = (jnp.arange(n) < ni)[:, None]
    clamp = jnp.zeros((n, inputs.shape[0]), jnp.float32).at[:ni].set(inputs.T)  # values[node, b]

    def update(v):
        z = network.bias[:, None] + network.response[:, None] * (network.weights @ v)
        return jnp.where(is_input, clamp, activate(network.activation[:, None], z, network.activations))

    if network.until_fixed_point:

        def step(carry):
            v, _, i = carry
            new = update(v)
            return new, jnp.any((new != v) & ~(jnp.isnan(new) & jnp.isnan(v))), i + 1

        again = lambda carry: carry[1] & (carry[2] < network.steps)  # noqa: E731
        values = jax.lax.while_loop(again, step, (clamp, jnp.array(True), jnp.array(0, jnp.int32)))[0]
    else:
        values = jax.lax.fori_loop(0, network.steps, lambda _, v: update(v), clamp)
    return values[ni : ni + no].T


class FunctionalPolicy(NamedTuple):
    """A policy that is not a flax module: ``apply(solution, obs) -> action`` and
    ``init_solution(key) -> solution`` (e.g. a NEAT network and its template)."""

    apply: Callable[[Any, Array], Array]
    init_solution: Callable[[Array], Any]


def neat_policy(
    obs_shape: tuple[int, ...], num_outputs: int, head: Callable[[Array], Array] = lambda y: y
) -> FunctionalPolicy:
    """A NEAT policy: the flattened observation feeds the network, ``head`` maps its outputs
    to an action; ``init_solution`` gives the :func:`template` a NEAT strategy starts from."""
    num_inputs = 1
    for s in obs_shape:
        num_inputs *= int(s)
    net0 = template(num_inputs, int(num_outputs))
    return FunctionalPolicy(
        apply=lambda network, obs: head(forward(network, obs)), init_solution=lambda key: net0
    )
