"""Tasks: ``Task``/``Evaluation`` and the built-in task factories."""

from neuroevo.tasks import gymnax as gymnax_module
from neuroevo.tasks.base import Evaluation, Task, function, rastrigin, sphere
from neuroevo.tasks.gymnax import ObsStats, env_ids, gymnax

__all__ = [
    "Evaluation",
    "ObsStats",
    "Task",
    "env_ids",
    "function",
    "gymnax",
    "gymnax_module",
    "rastrigin",
    "sphere",
]
