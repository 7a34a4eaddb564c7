"""What produced a run, written into its checkpoints so that a resume cannot mix two runs.

A fingerprint is a flat JSON table:

- ``key``: the run key's data;
- ``strategy`` and ``hyperparameters``: the name and resolved hyperparameters a
  strategy built by ``ne.strategies.make`` records (``Strategy.config``); None
  for a strategy built otherwise, whose values cannot be known;
- ``popsize``: the population size (``ask``'s leading axis);
- ``x0`` and ``state``: every leaf's path, dtype and shape, of the starting
  point and of the run's carry (strategy and task state);
- ``task``: the task's identity where it has one (``info["env_id"]`` or ``info["name"]``);
- ``program``: a digest of one traced generation (its jaxpr): a catch-all that
  changes with any strategy or task constant traced into it (a hyperparameter
  of a strategy built without ``make``, an episode length, a reward scale);
- ``versions``: JAX's and neuroevo's, to tell a changed program from an upgrade.

:func:`differences` names each field in which two fingerprints disagree.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from neuroevo.strategy import Strategy, population_size

PyTree = Any
FIELDS = ("key", "strategy", "hyperparameters", "popsize", "x0", "state", "task", "program")


def describe(value: Any) -> Any:
    """A JSON value standing for ``value``, the same in every process that builds it the same way.

    Numbers, strings, bools and None stay themselves; sequences and mappings are
    described item by item; a function by its module and qualified name; a
    small concrete array by its values, a large one by a digest; anything else
    by its type's name.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, Mapping):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [describe(v) for v in value]
    if isinstance(value, jax.core.Tracer):
        return f"<traced {value.dtype}{list(value.shape)}>"
    if isinstance(value, (np.ndarray, jax.Array)) and not callable(value):
        array = np.asarray(value)
        if array.size <= 16:
            return describe(array.tolist())
        return f"{array.dtype}{list(array.shape)} sha256:{hashlib.sha256(array.tobytes()).hexdigest()[:16]}"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def leaves(tree: PyTree) -> dict[str, str]:
    """``{path: "dtype[shape]"}`` of every leaf of ``tree`` (concrete or abstract)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): f"{leaf.dtype}{list(leaf.shape)}" for path, leaf in flat}


def task_identity(task: Any) -> str | None:
    info = getattr(task, "info", None) or {}
    identity = info.get("env_id") or info.get("name")
    return str(identity) if identity else None


def program_digest(step: Callable, carry: Any, key: jax.Array) -> str:
    """A digest of one traced generation ``step(carry, key)`` (traced, not compiled)."""
    text = str(jax.make_jaxpr(step)(carry, key))
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)  # function reprs carry memory addresses
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def fingerprint(
    key_data: Any, strategy: Strategy, task: Any, x0: PyTree, carry: Any, step: Callable, step_key: jax.Array
) -> dict[str, Any]:
    """The fingerprint of a run (see the module docstring).

    Args:
      key_data: the run key's raw data.
      carry: the (abstract) ``(strategy state, task state)`` the run starts from.
      step: one generation, ``step(carry, key) -> (carry, metrics)``, and ``step_key`` a key for it.
    """
    config = getattr(strategy, "config", None)
    genotypes, _ = jax.eval_shape(strategy.ask, step_key, carry[0])
    return {
        "key": np.asarray(key_data).tolist(),
        "strategy": None if config is None else str(config.get("name")),
        "hyperparameters": None if config is None else describe(dict(config.get("hyperparameters", {}))),
        "popsize": population_size(genotypes),
        "x0": leaves(x0),
        "state": leaves(carry),
        "task": task_identity(task),
        "program": program_digest(step, carry, step_key),
        "versions": {"jax": jax.__version__, "neuroevo": _version()},
    }


def _version() -> str | None:
    try:
        return importlib.metadata.version("neuroevo")
    except importlib.metadata.PackageNotFoundError:
        return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _tree_difference(name: str, stored: Mapping[str, str], now: Mapping[str, str]) -> str:
    paths = [p for p in {**stored, **now} if stored.get(p) != now.get(p)]
    shown = "; ".join(
        f"{p or '(root)'}: {stored.get(p, 'absent')} vs {now.get(p, 'absent')}" for p in paths[:3]
    )
    more = f" (and {len(paths) - 3} more)" if len(paths) > 3 else ""
    return f"{name} leaves differ ({shown}{more})"


def differences(stored: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """Each field in which ``stored`` (a checkpoint's) and ``now`` disagree, as ``"field: a vs b"``.

    The strategy's name and hyperparameters are compared only when both are
    known (see :func:`upgrade_only` for a program that differs after an upgrade).
    """
    found = []
    for name in FIELDS:
        a, b = stored.get(name), now.get(name)
        if name in ("strategy", "hyperparameters") and (a is None or b is None):
            continue
        if name == "hyperparameters" and stored.get("strategy") != now.get("strategy"):
            continue  # another strategy: its hyperparameters are not comparable
        if a == b:
            continue
        if name == "hyperparameters":
            for hp in sorted(set(a) | set(b) - {"popsize"}):  # popsize: its own field
                if a.get(hp) != b.get(hp):
                    found.append(f"hyperparameter {hp}: {_show(a.get(hp))} vs {_show(b.get(hp))}")
        elif name in ("x0", "state"):
            found.append(_tree_difference(name, a or {}, b or {}))
        elif name == "program":
            found.append("program: the traced generation differs (strategy or task code or constants)")
        else:
            found.append(f"{name}: {_show(a)} vs {_show(b)}")
    return found


def upgrade_only(found: list[str], stored: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
    """Whether the only difference is the traced program, between different JAX or neuroevo
    versions: an upgrade may trace the same run differently, so this cannot be told from a change."""
    upgraded = stored.get("versions") != now.get("versions")
    return upgraded and bool(found) and all(f.startswith("program:") for f in found)
