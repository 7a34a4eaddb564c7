"""Final returns of ``neuroevo train --env ENV`` with its default settings, per seed.

For each environment and seed this runs exactly what
``neuroevo train --env ENV --seed S --out DIR --quiet`` runs (``neuroevo.cli.main``
in-process, so the settings are the global defaults plus the env's preset in
``neuroevo/presets.py``), times it (compile included), and reads the run's
``summary.json``: ``final_eval_return`` is the mean return of the final policy
(the distribution mean) over the run's ``eval_episodes`` evaluation episodes.
Targets: CartPole-v1 >= 475, Acrobot-v1 >= -100, Pendulum-v1 >= -250 on every
seed; Breakout-MinAtar has none (higher is better). Exits non-zero if any
environment's worst seed misses its target. The last line is the headline.

    python -m benchmarks.rl [--envs CartPole-v1 ...] [--seeds 0 1 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time

from benchmarks.common import machine
from neuroevo import cli
from neuroevo.rl import DEFAULTS

TARGETS: dict[str, float | None] = {
    "CartPole-v1": 475.0,
    "Acrobot-v1": -100.0,
    "Pendulum-v1": -250.0,
    "Breakout-MinAtar": None,
}


def run_one(env: str, seed: int, out: str) -> dict:
    """``neuroevo train --env env --seed seed --out out --quiet``; its summary plus wall time."""
    argv = ["train", "--env", env, "--seed", str(seed), "--out", out, "--quiet"]
    printed = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        rc = cli.main(argv)
    wall = time.perf_counter() - t
    if rc != 0:
        raise RuntimeError(f"neuroevo {' '.join(argv)} exited with {rc}")
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "config.json")) as f:
        summary["config"] = json.load(f)
    summary["wall_s"] = wall
    return summary


def describe(config: dict) -> str:
    """The settings that differ from the global defaults, compactly."""
    parts = []
    for key, value in config.items():
        if key in ("env", "seed"):
            continue
        default = DEFAULTS[key]
        if key == "hidden":
            value, default = tuple(value), tuple(default)
        if key == "hp":
            parts += [f"{k}={v}" for k, v in value.items()]
        elif value != default:
            parts.append(f"{key}={','.join(map(str, value)) if key == 'hidden' else value}")
    return " ".join(parts) or "global defaults"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", nargs="+", default=list(TARGETS), metavar="ENV")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", default=None, help="root of the run directories (default: a new temp dir)")
    a = p.parse_args(argv)
    root = a.out or tempfile.mkdtemp(prefix="neuroevo-rl-")
    os.makedirs(root, exist_ok=True)
    t0 = time.perf_counter()

    print(f"machine: {machine()}  runs under {root}", flush=True)
    header = ("env", "seed", "final_eval_return", "gens", "env steps", "wall s")
    print("{:18s} {:>4s} {:>17s} {:>5s} {:>13s} {:>7s}".format(*header))
    results: dict[str, list[dict]] = {}
    for env in a.envs:
        for seed in a.seeds:
            out = os.path.join(root, f"{env}-seed{seed}")
            if os.path.exists(out):
                raise SystemExit(f"{out} already exists: pass a new --out")
            try:
                s = run_one(env, seed, out)
            except Exception as e:  # a failed run counts as a miss, and the others still run
                print(f"{env:18s} {seed:4d} FAILED: {e}", flush=True)
                s = {"final_eval_return": float("-inf"), "generations": 0, "env_steps": 0.0}
                s.update(wall_s=0.0, config={}, failed=True)
            results.setdefault(env, []).append(s)
            if s.get("failed"):
                continue
            print(
                f"{env:18s} {seed:4d} {s['final_eval_return']:17.1f} {s['generations']:5d} "
                f"{s['env_steps']:13,.0f} {s['wall_s']:7.1f}",
                flush=True,
            )

    print()
    header = ("env", "mean", "min", "target", "wall s mean/max", "status", "settings")
    print("{:18s} {:>8s} {:>8s} {:>8s} {:>15s}  {:7s} {}".format(*header))
    headline, missed = [], []
    for env, runs in results.items():
        returns = [r["final_eval_return"] for r in runs]
        mean, worst = sum(returns) / len(returns), min(returns)
        walls = [r["wall_s"] for r in runs]
        target = TARGETS.get(env)
        shown = "-" if target is None else f"{target:g}"
        if any(r.get("failed") for r in runs):
            status = "FAILED"
        elif target is None:
            status = "-"
        else:
            status = "met" if worst >= target else "MISSED"
        if status in ("FAILED", "MISSED"):
            missed.append(env)
        settings = describe(next((r["config"] for r in runs if r["config"]), {}))
        wall = f"{sum(walls) / len(walls):.0f}/{max(walls):.0f}"
        print(f"{env:18s} {mean:8.1f} {worst:8.1f} {shown:>8s} {wall:>15s}  {status:7s} {settings}")
        headline.append(f"{env} {mean:.1f}")
    print(f"total wall time: {time.perf_counter() - t0:.0f} s")
    n = len(a.seeds)
    verdict = "all targets met" if not missed else f"target missed: {', '.join(missed)}"
    print(f"rl: {', '.join(headline)} (mean of {n} seed{'s' if n != 1 else ''}); {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
