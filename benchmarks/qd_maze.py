"""MAP-Elites on the deceptive hard maze: does an archive of final positions find the goal? (issue 22)

``ne.tasks.maze()`` (Lehman & Stanley's hard maze: fitness -distance to the goal
at the end, descriptor the final (x, y)); MAP-Elites with a grid archive of
final positions over the maze (``--cells`` per side), ``--seeds`` seeds
vmapped into one compiled program, ``--evaluations`` per seed (generations =
evaluations // popsize), the same budget as ``benchmarks/maze.py`` gives
``ns_ga``. A seed succeeds when some member ended within 5% of the maze's size
of the goal (``best_fitness > -0.05 * size``). Target: >= 8 of 10 seeds. Saves
the archives as heat maps over the maze's walls (``--out``: one PNG of the first
seed's archive, one of every seed's elites). Exits non-zero on a miss; the
headline is the last line.

    python -m benchmarks.qd_maze [--seeds 10] [--evaluations 100000] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

import neuroevo as ne
from benchmarks.common import machine
from neuroevo.tasks import maze_module

CONFIG = dict(popsize=200, variation="iso_line", iso_sigma=0.3, line_sigma=0.3)


def runs(evaluations: int, seeds: int, cells: int, hidden: tuple[int, ...], config: dict):
    """(best distance[seeds], repertoires stacked over seeds, the archive) of ``seeds`` vmapped runs."""
    task = ne.tasks.maze(hidden=hidden)
    archive = ne.qd.GridArchive(cells=(cells, cells), bounds=((0.0, 205.0), (0.0, 205.0)), qd_offset=-300.0)
    strategy = ne.strategies.make("map_elites", archive=archive, **config)
    generations = evaluations // config["popsize"]
    step = ne.engine.make_step(strategy, task)

    @jax.jit
    def run(key):
        k_x0, k_init, k_loop = jax.random.split(key, 3)
        carry = (strategy.init(k_init, task.init_solution(k_x0)), ())
        (state, _), _ = jax.lax.scan(step, carry, jax.random.split(k_loop, generations))
        return -state.best_fitness, state.archive

    distance, repertoires = jax.vmap(run)(jax.random.split(jax.random.key(0), seeds))
    return np.asarray(distance), repertoires, archive


def walls(ax) -> None:
    """The maze's walls, start and goal over a heat map; y grows downwards, as in the maze files."""
    for x1, y1, x2, y2 in maze_module.HARD_MAZE_WALLS:
        ax.plot([x1, x2], [y1, y2], "k-", lw=2, zorder=3)
    ax.plot(*maze_module.START, "go", ms=8, zorder=4)
    ax.plot(*maze_module.GOAL, "r*", ms=12, zorder=4)
    ax.set_ylim(205, 0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--evaluations", type=int, default=100_000, help="budget per seed")
    p.add_argument("--cells", type=int, default=40, help="archive cells per side of the maze")
    p.add_argument("--hidden", type=str, default="", help="hidden widths, comma-separated ('' = linear)")
    p.add_argument("--out", type=str, default="benchmarks/results")
    p.add_argument("--hp", nargs="*", default=[], metavar="NAME=VALUE", help="map_elites settings to change")
    a = p.parse_args(argv)
    config = dict(CONFIG, **{k: (v if k == "variation" else float(v) if "." in v else int(v)) for k, v in
                             (item.split("=", 1) for item in a.hp)})  # fmt: skip
    hidden = tuple(int(h) for h in a.hidden.split(",") if h)
    threshold = 0.05 * maze_module.SIZE
    print(f"machine: {machine()}; load {os.getloadavg()[0]:.1f}")
    print(
        f"workload: hard maze, policy MLP hidden={hidden} (tanh), 400 steps; map_elites {config}, "
        f"{a.cells} x {a.cells} archive of final positions; {a.evaluations} evaluations per seed, "
        f"{a.seeds} seeds; success: distance < {threshold:.2f} (5% of {maze_module.SIZE:.0f})"
    )
    t = time.perf_counter()
    distance, repertoires, archive = runs(a.evaluations, a.seeds, a.cells, hidden, config)
    seconds = time.perf_counter() - t
    wins = int(np.sum(distance < threshold))
    os.makedirs(a.out, exist_ok=True)
    first = jax.tree_util.tree_map(lambda x: x[0], repertoires)
    path = os.path.join(a.out, "maze_map_elites_archive.png")
    ne.qd.heatmap(first, archive, path, title="map_elites, seed 0: -distance to goal", extra=walls)
    occupied = np.asarray(repertoires.occupied)
    positions = np.where(occupied[..., None], np.asarray(repertoires.descriptors), np.nan)
    all_path = os.path.join(a.out, "maze_map_elites.png")
    maze_module.plot(
        positions, all_path, title=f"map_elites: elites of {a.seeds} seeds ({wins} reach the goal)"
    )
    coverage = occupied.mean(axis=1)
    print(
        f"map_elites: reached the goal in {wins}/{a.seeds} seeds ({seconds:.0f} s); best distance per seed: "
        + " ".join(f"{d:.1f}" for d in distance)
        + f"; archive coverage {coverage.mean():.1%} (min {coverage.min():.1%}); plots {path}, {all_path}"
    )
    ok = wins >= 0.8 * a.seeds
    print(
        f"MAP-Elites on the hard maze: reached the goal in {wins}/{a.seeds} seeds at {a.evaluations} "
        f"evaluations (target >= 8/10)  -- {'target met' if ok else 'TARGET MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
