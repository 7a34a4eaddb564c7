"""Strategy registry: ``names()`` lists every strategy, ``make(name, ...)`` builds one."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from neuroevo.strategies import evosax_adapter, validation
from neuroevo.strategies import neat as neat_module
from neuroevo.strategies.ars import ARSState, ars
from neuroevo.strategies.cma_es import CMAState, cma_es, sep_cma_es
from neuroevo.strategies.cma_me import CMAMEState, cma_me
from neuroevo.strategies.eggroll import EggrollState, eggroll
from neuroevo.strategies.evopress import EvoPressState, evopress
from neuroevo.strategies.ga import GAState, ga
from neuroevo.strategies.map_elites import MAPElitesState, cvt_map_elites, map_elites
from neuroevo.strategies.me_es import MEESState, me_es
from neuroevo.strategies.moo_ops import pareto_front
from neuroevo.strategies.neat import NEATState, neat
from neuroevo.strategies.ns import NSESState, NSGAState, ns_es, ns_ga, nsr_es, nsra_es
from neuroevo.strategies.nsga2 import NSGA2State, nsga2
from neuroevo.strategies.nsga3 import NSGA3State, nsga3
from neuroevo.strategies.openai_es import OpenESState, openai_es
from neuroevo.strategies.pgpe import ClipUpState, PGPEState, clipup, pgpe
from neuroevo.strategies.regularized_evolution import REState, regularized_evolution
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
    """Build the strategy ``name``; unknown names or hyperparameters, or bad values, raise ``ValueError``.

    Values are checked before the factory runs (:mod:`neuroevo.strategies.validation`).
    The strategy records its name and resolved hyperparameters in ``Strategy.config``
    (checkpoints compare them on resume).
    """
    factory = _lookup(name)
    valid = hyperparameters(name)
    unknown = sorted(set(hyperparams) - set(valid))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for strategy {name!r}; valid: {sorted(valid)}")
    if popsize is not None:
        hyperparams["popsize"] = popsize
    validation.check_values(name, valid, hyperparams)
    strategy = factory(**hyperparams)
    return strategy._replace(config={"name": name, "hyperparameters": {**valid, **hyperparams}})


def needs_descriptors(name: str) -> bool:
    """Whether ``name``'s strategies need behaviour descriptors in ``tell`` (novelty search)."""
    return bool(getattr(_lookup(name), "needs_descriptors", False))


def multi_objective(name: str) -> bool:
    """Whether ``name``'s strategies take fitness of shape ``(popsize, n_objectives)`` (NSGA-II/III)."""
    return bool(getattr(_lookup(name), "multi_objective", False))


def _lookup(name: str) -> Callable[..., Strategy]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; valid names: {names()}") from None


register("openai_es", openai_es)
register("eggroll", eggroll)
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
register("nsga2", nsga2)
register("nsga3", nsga3)
register("regularized_evolution", regularized_evolution)
register("map_elites", map_elites)
register("cvt_map_elites", cvt_map_elites)
register("cma_me", cma_me)
register("me_es", me_es)
evosax_adapter.register_all(register)  # "evosax:<Name>" for every evosax algorithm, imported lazily

__all__ = [
    "CMAMEState",
    "CMAState",
    "MAPElitesState",
    "cma_me",
    "cvt_map_elites",
    "map_elites",
    "MEESState",
    "me_es",
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
    "EggrollState",
    "eggroll",
    "GAState",
    "OpenESState",
    "ga",
    "hyperparameters",
    "make",
    "multi_objective",
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
    "NSGA2State",
    "NSGA3State",
    "REState",
    "nsga2",
    "nsga3",
    "openai_es",
    "pareto_front",
    "regularized_evolution",
    "register",
]
