"""Strategy registry: ``names()`` lists every strategy, ``make(name, ...)`` builds one."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from neuroevo.strategies import evosax_adapter
from neuroevo.strategies import neat as neat_module
from neuroevo.strategies.ars import ARSState, ars
from neuroevo.strategies.cma_es import CMAState, cma_es, sep_cma_es
from neuroevo.strategies.evopress import EvoPressState, evopress
from neuroevo.strategies.ga import GAState, ga
from neuroevo.strategies.neat import NEATState, neat
from neuroevo.strategies.ns import NSESState, NSGAState, ns_es, ns_ga, nsr_es, nsra_es
from neuroevo.strategies.openai_es import OpenESState, openai_es
from neuroevo.strategies.pgpe import ClipUpState, PGPEState, clipup, pgpe
from neuroevo.strategies.snes import SNESState, snes
from neuroevo.strategies.xnes import XNESState, xnes
from neuroevo.strategy import Strategy

_REGISTRY: dict[str, Callable[..., Strategy]] = {}


def register(name: str, factory: Callable[..., Strategy]) -> None:
    """Add ``factory`` to the registry under ``name`` (it must accept ``popsize=``)."""
    if name in _REGISTRY:
        raise ValueError(f"strategy {name!r} is already registered")
    _REGISTRY[name] = factory


def names() -> list[str]:
    """Every registered strategy name, sorted."""
    return sorted(_REGISTRY)


def hyperparameters(name: str) -> dict[str, object]:
    """The keyword arguments ``make(name, ...)`` accepts, with their defaults."""
    factory = _lookup(name)
    return {
        p.name: p.default
        for p in inspect.signature(factory).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def make(name: str, popsize: int | None = None, **hyperparams) -> Strategy:
    """Build the strategy ``name``; unknown names or hyperparameters raise ``ValueError``."""
    factory = _lookup(name)
    valid = hyperparameters(name)
    unknown = sorted(set(hyperparams) - set(valid))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for strategy {name!r}; valid: {sorted(valid)}")
    if popsize is not None:
        hyperparams["popsize"] = popsize
    return factory(**hyperparams)


def needs_descriptors(name: str) -> bool:
    """Whether ``name``'s strategies need behaviour descriptors in ``tell`` (novelty search)."""
    return bool(getattr(_lookup(name), "needs_descriptors", False))


def _lookup(name: str) -> Callable[..., Strategy]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; valid names: {names()}") from None


register("openai_es", openai_es)
register("ga", ga)
register("snes", snes)
register("xnes", xnes)
register("pgpe", pgpe)
register("ars", ars)
register("cma_es", cma_es)
register("sep_cma_es", sep_cma_es)
register("ns_ga", ns_ga)
register("ns_es", ns_es)
register("nsr_es", nsr_es)
register("nsra_es", nsra_es)
register("neat", neat)
evosax_adapter.register_all(register)  # "evosax:<Name>" for every evosax algorithm, imported lazily

__all__ = [
    "CMAState",
    "cma_es",
    "sep_cma_es",
    "EvoPressState",
    "evopress",
    "ARSState",
    "ClipUpState",
    "PGPEState",
    "SNESState",
    "XNESState",
    "ars",
    "clipup",
    "pgpe",
    "snes",
    "xnes",
    "GAState",
    "OpenESState",
    "ga",
    "hyperparameters",
    "make",
    "names",
    "needs_descriptors",
    "NEATState",
    "neat",
    "neat_module",
    "NSESState",
    "NSGAState",
    "ns_es",
    "ns_ga",
    "nsr_es",
    "nsra_es",
    "openai_es",
    "register",
]
