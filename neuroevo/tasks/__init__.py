"""Tasks: ``Task``/``Evaluation`` and the built-in task factories."""

from neuroevo.tasks import gymnax as gymnax_module
from neuroevo.tasks import maze as maze_module
from neuroevo.tasks import nas as nas_module
from neuroevo.tasks import playground as playground_module
from neuroevo.tasks.base import Evaluation, Task, function, rastrigin, sphere
from neuroevo.tasks.bbob import bbob
from neuroevo.tasks.compression import compression
from neuroevo.tasks.gymnax import ObsStats, Trajectory, env_ids, gymnax
from neuroevo.tasks.maze import maze
from neuroevo.tasks.nas import nas
from neuroevo.tasks.playground import env_names as playground_env_names
from neuroevo.tasks.playground import playground
from neuroevo.tasks.xor import xor

__all__ = [
    "Evaluation",
    "ObsStats",
    "Task",
    "Trajectory",
    "bbob",
    "compression",
    "env_ids",
    "function",
    "gymnax",
    "gymnax_module",
    "maze",
    "maze_module",
    "nas",
    "nas_module",
    "playground",
    "playground_env_names",
    "playground_module",
    "rastrigin",
    "sphere",
    "xor",
]
