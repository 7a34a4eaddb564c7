"""The run loop and checkpoints."""

from neuroevo.engine.loop import RunResult, evaluate_population, evolve, make_step, run

__all__ = ["RunResult", "evaluate_population", "evolve", "make_step", "run"]
