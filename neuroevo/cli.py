"""The ``neuroevo`` command line.

neuroevo train --env CartPole-v1 --strategy openai_es --generations 50 --out runs/cartpole
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

DEFAULTS = {
    "env": "CartPole-v1",
    "strategy": "openai_es",
    "popsize": 256,
    "generations": 50,
    "seed": 0,
    "episodes": 1,
    "eval_episodes": 10,
    "hidden": "32,32",
    "max_steps": None,
    "normalize_obs": False,
    "chunk_size": None,
    "log_every": 1,
    "hp": [],
}


def _parse_hp(items: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs; values are Python literals (numbers, bools, None) or strings."""
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"error: --hp expects name=value, got {item!r}")
        name, value = item.split("=", 1)
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = value
    return out


def final_solution(state: Any) -> Any:
    """The policy a run hands over: the distribution mean if it has one, else the best member."""
    return state.mean if hasattr(state, "mean") else state.best_solution


def train(args: argparse.Namespace) -> float:
    import jax
    import numpy as np

    import neuroevo as ne

    hidden = tuple(int(h) for h in str(args.hidden).split(",") if h)
    hp = _parse_hp(args.hp)
    # Validate every name before anything compiles.
    strategy = ne.strategies.make(args.strategy, popsize=args.popsize, **hp)

    def make_task(episodes):
        return ne.tasks.gymnax(
            args.env,
            hidden=hidden,
            episodes=episodes,
            max_steps=args.max_steps,
            normalize_obs=args.normalize_obs,
        )

    task, eval_task = make_task(args.episodes), make_task(args.eval_episodes)
    config = {k: v for k, v in vars(args).items() if k != "func"}
    out = args.out
    metrics_file = None
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        metrics_file = open(os.path.join(out, "metrics.jsonl"), "a")

    key = jax.random.key(args.seed)
    k_params, k_run, k_eval = jax.random.split(key, 3)
    x0 = task.init_solution(k_params)
    popsize = args.popsize

    def log(generation, state, metrics):
        if metrics_file is None:
            return
        n = len(metrics["best"])
        for i in range(n):
            row = {"generation": generation - n + i + 1}
            row.update({k: float(v[i]) for k, v in metrics.items()})
            if "env_steps" in row:
                row["env_steps"] *= popsize
            metrics_file.write(json.dumps(row) + "\n")
        metrics_file.flush()

    t0 = time.perf_counter()
    result = ne.run(
        k_run,
        strategy,
        task,
        x0,
        args.generations,
        chunk_size=args.chunk_size,
        log_every=args.log_every,
        callbacks=[log],
        progress=not args.quiet,
    )
    if metrics_file is not None:
        metrics_file.close()
    solution = jax.tree_util.tree_map(lambda x: x[None], final_solution(result.state))
    evaluation, _ = jax.jit(eval_task.evaluate)(k_eval, result.task_state, solution)
    final = float(np.asarray(evaluation.fitness)[0])
    if out:
        summary = {
            "final_eval_return": final,
            "generations": result.generations,
            "env_steps": float(np.sum(result.history.get("env_steps", [0.0])) * popsize),
            "wall_time_s": time.perf_counter() - t0,
            "best_fitness": float(np.asarray(result.state.best_fitness)),
        }
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    print(f"final evaluation return: {final:.2f}")
    return final


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuroevo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="evolve a policy on a gymnax environment")
    t.add_argument("--env", default=DEFAULTS["env"], help="gymnax environment id")
    t.add_argument("--strategy", default=DEFAULTS["strategy"], help="a name from `neuroevo strategies`")
    t.add_argument("--popsize", type=int, default=DEFAULTS["popsize"])
    t.add_argument("--generations", type=int, default=DEFAULTS["generations"])
    t.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    t.add_argument("--episodes", type=int, default=DEFAULTS["episodes"], help="episodes per member")
    t.add_argument("--eval-episodes", type=int, default=DEFAULTS["eval_episodes"])
    t.add_argument("--hidden", default=DEFAULTS["hidden"], help="hidden layer widths, e.g. 32,32")
    t.add_argument("--max-steps", type=int, default=DEFAULTS["max_steps"])
    t.add_argument("--normalize-obs", action="store_true")
    t.add_argument("--chunk-size", type=int, default=DEFAULTS["chunk_size"])
    t.add_argument("--log-every", type=int, default=DEFAULTS["log_every"])
    t.add_argument("--hp", nargs="*", default=[], metavar="NAME=VALUE", help="strategy hyperparameters")
    t.add_argument("--out", default=None, help="directory for config, metrics and summary")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=train)
    s = sub.add_parser("strategies", help="list the registered strategies and their hyperparameters")
    s.set_defaults(func=_list_strategies)
    return parser


def _list_strategies(args: argparse.Namespace) -> None:
    import neuroevo as ne

    for name in ne.strategies.names():
        hp = ", ".join(f"{k}={v!r}" for k, v in ne.strategies.hyperparameters(name).items())
        print(f"{name}: {hp}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
