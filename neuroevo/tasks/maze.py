"""The deceptive "hard maze" of Lehman & Stanley (2011), in pure JAX.

A wheeled robot (radius 8) starts at the bottom left of a 200 x 200 maze and must
reach the goal at the top left. The straight way up ends in a dead end just
under the goal, separated from it by a wall: following the distance to the goal
(the fitness) leads there, while the real path winds right, up the far side and
back along the top. Novelty search (descriptor = where the robot ended) finds it.

Layout and robot: the "hard map" of Lehman & Stanley's maze-navigation
experiments, as in their simulator (and its ports, e.g. goNEAT_NS): the bounding
box plus seven inner walls, start (36, 184) heading 0, goal (31, 20); y grows
downwards, as in their screen coordinates. Sensors: six rangefinders (-90, -45,
0, 45, 90 and 180 degrees from the heading, range 100, reported as
distance / range) and a goal radar of four 90-degree pie slices (one-hot). The
policy maps those 10 inputs to two outputs squashed to (-1/2, 1/2) by
``tanh / 2`` (the original's ``sigmoid - 1/2``), which are *accelerations*, as in
the original simulator: each step the angular velocity changes by ``out[0]``
degrees and the speed by ``out[1]`` units, clipped to ``max_turn`` (3 degrees)
and ``max_speed`` (3 units) per step; the robot moves along its heading at that
speed, then turns. A move that would bring the robot within its radius (8) of a
wall is cancelled (the robot stays put). Fitness is
``-distance(final position, goal)``; the descriptor is the final ``(x, y)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo import nn as ne_nn
from neuroevo.tasks.base import Evaluation, Task

PyTree = Any

#: Walls of the hard maze as segments (x1, y1, x2, y2): the bounding box, then the inner walls.
HARD_MAZE_WALLS = np.array(
    [
        [5, 5, 5, 200],
        [5, 200, 200, 200],
        [200, 200, 200, 5],
        [200, 5, 5, 5],
        [5, 49, 57, 53],
        [56, 54, 56, 157],
        [57, 106, 158, 162],
        [77, 200, 108, 164],
        [5, 80, 33, 121],
        [200, 146, 87, 91],
        [56, 55, 133, 30],
    ],
    np.float32,
)
START = (36.0, 184.0)
GOAL = (31.0, 20.0)
SIZE = 195.0  # side of the bounding box
RANGEFINDER_ANGLES = np.deg2rad(np.array([-90.0, -45.0, 0.0, 45.0, 90.0, 180.0], np.float32))
N_INPUTS = len(RANGEFINDER_ANGLES) + 4


def _cross(ax, ay, bx, by):
    return ax * by - ay * bx


def ray_distances(pos: jax.Array, angles: jax.Array, walls: jax.Array, max_range: float) -> jax.Array:
    """Distance along each ray from ``pos`` (f[2]) at ``angles`` (f[R]) to the nearest wall, capped."""
    dx, dy = jnp.cos(angles)[:, None], jnp.sin(angles)[:, None]  # (R, 1)
    x1, y1, x2, y2 = (walls[None, :, i] for i in range(4))  # (1, W)
    ex, ey = x2 - x1, y2 - y1
    qx, qy = x1 - pos[0], y1 - pos[1]
    denom = _cross(dx, dy, ex, ey)
    ok = jnp.abs(denom) > 1e-9
    safe = jnp.where(ok, denom, 1.0)
    t = _cross(qx, qy, ex, ey) / safe  # along the ray
    u = _cross(qx, qy, dx, dy) / safe  # along the wall
    hit = ok & (t >= 0) & (u >= 0) & (u <= 1)
    return jnp.minimum(jnp.min(jnp.where(hit, t, max_range), axis=1), max_range)


def wall_distance(pos: jax.Array, walls: jax.Array) -> jax.Array:
    """Smallest distance from ``pos`` to any wall segment."""
    a, b = walls[:, :2], walls[:, 2:]
    e = b - a
    t = jnp.clip(jnp.sum((pos - a) * e, axis=1) / jnp.maximum(jnp.sum(e * e, axis=1), 1e-9), 0.0, 1.0)
    closest = a + t[:, None] * e
    return jnp.min(jnp.sqrt(jnp.sum(jnp.square(pos - closest), axis=1)))


def radar(pos: jax.Array, heading: jax.Array, goal: jax.Array) -> jax.Array:
    """One-hot f32[4]: the goal is in front, left, behind or right (90-degree pie slices)."""
    angle = jnp.arctan2(goal[1] - pos[1], goal[0] - pos[0]) - heading
    rel = jnp.mod(angle + jnp.pi / 4, 2 * jnp.pi)  # 0..2pi, the front slice first
    return jax.nn.one_hot(jnp.floor(rel / (jnp.pi / 2)).astype(jnp.int32) % 4, 4)


def sense(pos, heading, walls, goal, max_range):
    """The 10 inputs: six rangefinders (fraction of range) and the goal radar."""
    ranges = ray_distances(pos, heading + RANGEFINDER_ANGLES, walls, max_range) / max_range
    return jnp.concatenate([ranges, radar(pos, heading, goal)])


def control(speed, turn, out, max_speed, max_turn):
    """The original's velocity update: ``out`` in (-1/2, 1/2) adds to speed and (in degrees) turn rate."""
    speed = jnp.clip(speed + out[1], -max_speed, max_speed)
    turn = jnp.clip(turn + jnp.deg2rad(out[0]), -max_turn, max_turn)
    return speed, turn


def simulate(
    apply: Callable[[PyTree, jax.Array], jax.Array],
    solution: PyTree,
    *,
    steps: int = 400,
    walls: jax.Array | None = None,
    start: tuple[float, float] = START,
    goal: tuple[float, float] = GOAL,
    heading: float = 0.0,
    radius: float = 8.0,
    max_speed: float = 3.0,
    max_turn: float = float(np.deg2rad(3.0)),
    max_range: float = 100.0,
    trajectory: bool = False,
):
    """One robot for ``steps`` steps: its final position f[2] (and every position if ``trajectory``).

    The robot starts at rest; ``max_speed`` is in units and ``max_turn`` in radians per step.
    """
    walls = jnp.asarray(HARD_MAZE_WALLS if walls is None else walls, jnp.float32)
    goal = jnp.asarray(goal, jnp.float32)

    def step(carry, _):
        pos, theta, speed, turn = carry
        raw = jnp.asarray(apply(solution, sense(pos, theta, walls, goal, max_range))).reshape(-1)
        speed, turn = control(speed, turn, 0.5 * jnp.tanh(raw), max_speed, max_turn)
        new = pos + speed * jnp.stack([jnp.cos(theta), jnp.sin(theta)])
        pos = jnp.where(wall_distance(new, walls) < radius, pos, new)
        return (pos, theta + turn, speed, turn), pos if trajectory else None

    zero = jnp.zeros((), jnp.float32)
    init = (jnp.asarray(start, jnp.float32), jnp.asarray(heading, jnp.float32), zero, zero)
    (pos, *_), path = jax.lax.scan(step, init, None, length=steps)
    return (pos, path) if trajectory else pos


def maze(
    policy: Any = None,
    *,
    hidden: tuple[int, ...] = (16,),
    steps: int = 400,
    **physics,
) -> Task:
    """The hard maze as a :class:`~neuroevo.tasks.Task` (see the module docstring).

    Args:
      policy: a flax module with 2 outputs or ``apply(solution, obs[10]) -> f[2]``;
        default ``ne.nn.MLP(hidden, out=2)`` (tanh); its outputs, squashed by ``tanh / 2``,
        are the accelerations of turn rate and speed.
      steps: timesteps per episode.
      physics: ``walls``, ``start``, ``goal``, ``heading``, ``radius``, ``max_speed``,
        ``max_turn``, ``max_range`` of :func:`simulate`.
    Fitness ``-distance to the goal`` at the end; descriptor the final ``(x, y)``;
    metrics ``distance`` and ``success`` (distance below 5% of the maze's size).
    """
    if policy is None:
        policy = ne_nn.MLP(hidden=tuple(hidden), out=2)
    apply, init_solution, _ = ne_nn.policy_functions(policy, (N_INPUTS,))
    goal = jnp.asarray(physics.get("goal", GOAL), jnp.float32)

    def evaluate(key, task_state, solutions):
        del key
        final = jax.vmap(lambda s: simulate(apply, s, steps=steps, **physics))(solutions)
        distance = jnp.sqrt(jnp.sum(jnp.square(final - goal), axis=-1))
        metrics = {"distance": distance, "success": (distance < 0.05 * SIZE).astype(jnp.float32)}
        return Evaluation(fitness=-distance, descriptor=final, metrics=metrics), task_state

    info = {"name": "maze", "descriptor_dim": 2, "apply": apply, "size": SIZE, "steps": steps}
    return Task(init=lambda key: (), evaluate=evaluate, init_solution=init_solution, info=info)


def plot(positions: np.ndarray, path: str, *, title: str = "", walls: np.ndarray | None = None) -> None:
    """Save a PNG of final positions (``[..., 2]``) over the maze's walls, start and goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    walls = HARD_MAZE_WALLS if walls is None else np.asarray(walls)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
    for x1, y1, x2, y2 in walls:
        ax.plot([x1, x2], [y1, y2], "k-", lw=2)
    pts = np.asarray(positions).reshape(-1, 2)
    ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.4, c="tab:blue", lw=0)
    ax.plot(*START, "go", ms=8, label="start")
    ax.plot(*GOAL, "r*", ms=12, label="goal")
    ax.set_xlim(0, 205)
    ax.set_ylim(205, 0)  # y grows downwards, as in the original maze files
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ``ne.tasks.maze`` is the factory; the plot and the layout travel with it.
maze.plot = plot
maze.simulate = simulate
maze.WALLS = HARD_MAZE_WALLS
