"""neuroevo: gradient-free optimisation of neural networks in JAX.

Every optimiser is a :class:`Strategy` of pure functions (``init/ask/tell/decode``);
a run is one compiled program that can be vmapped over seeds and sweeps.
"""

from neuroevo import (
    bbob,
    bench,
    compress,
    moo,
    nas,
    nn,
    perturbation,
    qd,
    rl,
    rng,
    shaping,
    sorting,
    space,
    strategies,
    strategy,
    tasks,
)
from neuroevo.engine import RunResult, callbacks, distributed, evaluate_population, evolve, run
from neuroevo.engine.pbt import PBT
from neuroevo.engine.sweep import SweepResult, sweep
from neuroevo.rl import train
from neuroevo.strategy import Members, Strategy, population, population_apply

__version__ = "0.1.0"

__all__ = [
    "PBT",
    "Members",
    "RunResult",
    "Strategy",
    "SweepResult",
    "bbob",
    "bench",
    "callbacks",
    "compress",
    "distributed",
    "evaluate_population",
    "evolve",
    "moo",
    "nas",
    "nn",
    "perturbation",
    "population",
    "population_apply",
    "qd",
    "rl",
    "rng",
    "run",
    "shaping",
    "sorting",
    "space",
    "strategies",
    "strategy",
    "sweep",
    "tasks",
    "train",
]
