"""neuroevo: gradient-free optimisation of neural networks in JAX.

Every optimiser is a :class:`Strategy` of pure functions (``init/ask/tell/decode``);
a run is one compiled program that can be vmapped over seeds and sweeps.
"""

from neuroevo import (
    bbob,
    bench,
    compress,
    nas,
    nn,
    perturbation,
    rl,
    rng,
    shaping,
    sorting,
    strategies,
    strategy,
    tasks,
)
from neuroevo.engine import RunResult, callbacks, distributed, evaluate_population, evolve, run
from neuroevo.engine.pbt import PBT
from neuroevo.engine.sweep import SweepResult, sweep
from neuroevo.rl import train
from neuroevo.strategy import Strategy, population

__version__ = "0.1.0"

__all__ = [
    "PBT",
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
    "nas",
    "nn",
    "perturbation",
    "population",
    "rl",
    "rng",
    "run",
    "shaping",
    "sorting",
    "strategies",
    "strategy",
    "sweep",
    "tasks",
    "train",
]
