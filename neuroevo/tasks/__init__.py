"""Tasks: ``Task``/``Evaluation`` and the built-in task factories."""

from neuroevo.tasks import gymnax as gymnax_module
from neuroevo.tasks import maze as maze_module
from neuroevo.tasks import nas as nas_module
from neuroevo.tasks import playground as playground_module
from neuroevo.tasks import qd as qd_module
from neuroevo.tasks import text as text_module
from neuroevo.tasks.base import Evaluation, Task, function, rastrigin, sphere
from neuroevo.tasks.bbob import bbob
from neuroevo.tasks.compression import compression
from neuroevo.tasks.discrete import nk_landscape, trap
from neuroevo.tasks.dtlz import dtlz
from neuroevo.tasks.gymnax import ObsStats, Trajectory, env_ids, gymnax
from neuroevo.tasks.maze import maze
from neuroevo.tasks.nas import nas
from neuroevo.tasks.playground import env_names as playground_env_names
from neuroevo.tasks.playground import playground
from neuroevo.tasks.qd import arm, linear_projection
from neuroevo.tasks.text import text
from neuroevo.tasks.xor import xor
from neuroevo.tasks.zdt import zdt, zdt1, zdt2, zdt3, zdt4, zdt6

__all__ = [
    "Evaluation",
    "ObsStats",
    "Task",
    "Trajectory",
    "arm",
    "bbob",
    "dtlz",
    "nk_landscape",
    "trap",
    "zdt",
    "zdt1",
    "zdt2",
    "zdt3",
    "zdt4",
    "zdt6",
    "compression",
    "env_ids",
    "function",
    "gymnax",
    "gymnax_module",
    "linear_projection",
    "maze",
    "maze_module",
    "nas",
    "nas_module",
    "playground",
    "playground_env_names",
    "playground_module",
    "qd_module",
    "rastrigin",
    "sphere",
    "text",
    "text_module",
    "xor",
]
