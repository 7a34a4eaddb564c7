"""Policies: flax modules mapping an observation to an action.

``MLP`` and ``CNN`` produce raw outputs; an action head turns them into an
action for a gymnax space: ``argmax`` for ``Discrete``, ``tanh`` scaled to the
bounds for ``Box``. ``policy_for(space)`` assembles the usual pairing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from neuroevo.nn import neat

Array = jax.Array


class MLP(nn.Module):
    """A fully connected network on one (flattened) observation."""

    hidden: Sequence[int] = (32, 32)
    out: int = 1
    activation: Callable[[Array], Array] = nn.tanh

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x, jnp.float32).reshape(-1)
        for width in self.hidden:
            x = self.activation(nn.Dense(width)(x))
        return nn.Dense(self.out)(x)


class CNN(nn.Module):
    """A small convolutional network for image-like observations (H, W, C), e.g. MinAtar."""

    channels: Sequence[int] = (16,)
    kernel: int = 3
    hidden: Sequence[int] = (64,)
    out: int = 1
    activation: Callable[[Array], Array] = nn.relu

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x, jnp.float32)
        for c in self.channels:
            x = self.activation(nn.Conv(c, (self.kernel, self.kernel))(x))
        x = x.reshape(-1)
        for width in self.hidden:
            x = self.activation(nn.Dense(width)(x))
        return nn.Dense(self.out)(x)


def discrete_head(raw: Array) -> Array:
    """Greedy action of a ``Discrete`` space: the index of the largest output."""
    return jnp.argmax(raw, axis=-1).astype(jnp.int32)


def box_head(low: Array, high: Array, shape: tuple[int, ...]) -> Callable[[Array], Array]:
    """``tanh`` squashed into ``[low, high]``, reshaped to the space's shape."""
    low = jnp.broadcast_to(jnp.asarray(low, jnp.float32), shape)
    high = jnp.broadcast_to(jnp.asarray(high, jnp.float32), shape)

    def head(raw: Array) -> Array:
        return low + (jnp.tanh(raw.reshape(shape)) + 1.0) * 0.5 * (high - low)

    return head


def head_for(space: Any) -> tuple[int, Callable[[Array], Array]]:
    """(number of raw outputs, head) for a gymnax ``Discrete`` or ``Box`` space."""
    kind = type(space).__name__
    if kind == "Discrete":
        return int(space.n), discrete_head
    if kind == "Box":
        shape = tuple(space.shape)
        size = 1
        for s in shape:
            size *= int(s)
        return size, box_head(space.low, space.high, shape)
    raise ValueError(
        f"no action head for a {kind} action space; supported: Discrete, Box "
        f"(pass your own policy module for other spaces)"
    )


class Policy(nn.Module):
    """``head(body(obs))``: a network followed by an action head."""

    body: nn.Module
    head: Callable[[Array], Array]

    @nn.compact
    def __call__(self, obs: Array) -> Array:
        return self.head(self.body(obs))


def policy_for(space: Any, hidden: Sequence[int] = (32, 32), network: str = "mlp", **kwargs) -> Policy:
    """The default policy for an action ``space``: an MLP (or CNN) and its action head."""
    n_out, head = head_for(space)
    if network == "mlp":
        body = MLP(hidden=tuple(hidden), out=n_out, **kwargs)
    elif network == "cnn":
        body = CNN(hidden=tuple(hidden), out=n_out, **kwargs)
    else:
        raise ValueError(f"unknown network {network!r}; valid: 'mlp', 'cnn'")
    return Policy(body=body, head=head)


def policy_functions(policy: nn.Module | Callable, obs_shape: tuple[int, ...]):
    """``(apply, init_solution, action_shape)`` of a policy, for a task on ``obs_shape``.

    A flax module gives ``module.apply``, an ``init_solution(key)`` drawing fresh
    parameters, and the ``jax.ShapeDtypeStruct`` of its action (computed without
    running it, so a task can check it against its action space before compiling).
    A plain ``apply(params, obs)`` function gives ``(apply, None, None)``.
    """
    if isinstance(policy, neat.FunctionalPolicy):
        example = jax.eval_shape(policy.init_solution, jax.random.key(0))
        action = jax.eval_shape(policy.apply, example, jax.ShapeDtypeStruct(obs_shape, jnp.float32))
        return policy.apply, policy.init_solution, action
    if not isinstance(policy, nn.Module):
        return policy, None, None
    module = policy

    def init_solution(key):
        return module.init(key, jnp.zeros(obs_shape, jnp.float32))

    example = jax.eval_shape(init_solution, jax.random.key(0))
    action = jax.eval_shape(module.apply, example, jax.ShapeDtypeStruct(obs_shape, jnp.float32))
    return module.apply, init_solution, action


__all__ = [
    "CNN",
    "MLP",
    "Policy",
    "neat",
    "box_head",
    "discrete_head",
    "head_for",
    "policy_for",
    "policy_functions",
]
