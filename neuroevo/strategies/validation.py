"""Checks of hyperparameter values given to ``ne.strategies.make``, before anything is traced.

Types follow each factory's defaults: where the default is a number the value
must be a finite number (or a callable: a schedule), where it is a bool a bool,
where it is an int an int. Ranges follow the hyperparameter's name, the same
in every strategy: noise scales and step sizes are positive, decays and limits
non-negative, rates and probabilities in [0, 1]. Traced values (a sweep's) are
not checked: only concrete Python or NumPy numbers are.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import jax

POSITIVE = frozenset(
    {"sigma", "learning_rate", "sigma_max_change", "max_speed", "weight_max", "compatibility_threshold"}
)
NON_NEGATIVE = frozenset(
    {
        "sigma_decay",
        "sigma_limit",
        "sigma_learning_rate",
        "shape_learning_rate",
        "weight_decay",
        "weight_delta",
        "weight_init_stdev",
        "bias_init_stdev",
        "bias_mutate_power",
        "response_mutate_power",
        "tolfun",
        "tolfunhist",
        "tolx",
    }
)
UNIT = frozenset({"momentum", "crossover_rate", "disable_inherited", "survival_threshold", "weight"})


def _rule(name: str) -> tuple[str, float, float, bool] | None:
    """``(words, low, high, low_open)`` for ``name``'s range, or None."""
    if name in POSITIVE:
        return "positive", 0.0, math.inf, True
    if name in NON_NEGATIVE:
        return "non-negative", 0.0, math.inf, False
    if name in UNIT or (name.endswith(("_rate", "_prob")) and "learning_rate" not in name):
        return "in [0, 1]", 0.0, 1.0, False
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_value(strategy: str, name: str, value: Any, default: Any) -> None:
    """Raise ``ValueError`` naming ``name`` if ``value`` has the wrong type or range."""
    if isinstance(value, jax.core.Tracer) or value is None or callable(value):
        return
    if isinstance(value, jax.Array) and value.ndim == 0:
        value = value.item()
    where = f"hyperparameter {name!r} of strategy {strategy!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be True or False, got {value!r}")
        return
    if (
        isinstance(default, numbers.Integral)
        and not isinstance(value, numbers.Integral)
        or (isinstance(default, numbers.Integral) and isinstance(value, bool))
    ):
        raise ValueError(f"{where} must be an int, got {value!r}")
    if isinstance(default, numbers.Real) and not _is_number(value):
        raise ValueError(f"{where} must be a number, got {value!r}")
    if not _is_number(value):
        return
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite, got {value!r}")
    rule = _rule(name)
    if rule is not None:
        words, low, high, low_open = rule
        if value < low or (low_open and value == low) or value > high:
            raise ValueError(f"{where} must be {words}, got {value!r}")


def check_values(strategy: str, defaults: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """:func:`check_value` for every given hyperparameter (``defaults``: the factory's)."""
    for name, value in values.items():
        check_value(strategy, name, value, defaults.get(name))
