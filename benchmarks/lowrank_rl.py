"""Learning at an equal budget: ``eggroll`` against ``openai_es``, side by side.

Each run gets the same budget of *process CPU time* (``time.process_time()``,
which counts every XLA thread, compilation included): the machine is shared,
and equal wall time would favour whichever side ran under less load. The two
strategies alternate seed by seed. A run evolves in compiled blocks of
generations until its budget is spent, then its final mean is evaluated.

- RL: Breakout-MinAtar with the CLI's settings (``neuroevo train`` defaults and
  the Breakout preset: popsize 256, sigma 0.1, Adam 0.03, normalised
  observations, one episode per member) and a 256x256 MLP, then the CNN policy
  (16 3x3 filters, 256x256 hidden); 3 seeds; the figure is the final mean
  policy's return over 10 evaluation episodes. Target: eggroll's mean >=
  openai_es's, on each network.
- Text: ``ne.tasks.text()`` (the stdlib corpus, the default transformer),
  popsize 256; the figure is the final mean's loss on 256 fixed validation
  windows, in bits per character. Target: eggroll's below openai_es's and
  below the corpus's unigram entropy.
- GA (``--ga``): the Deep GA with dense mutations against ``ga(rank=1)``
  on Breakout-MinAtar with the 256x256 MLP, same budget; information only.

    python -m benchmarks.lowrank_rl [--budget 300] [--text-budget 600] [--seeds 3] [--parts mlp,cnn,text]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import neuroevo as ne
from benchmarks.common import machine


def run_for(strategy, task, x0, budget_s: float, seed: int, block: int) -> tuple:
    """Evolve in blocks of ``block`` generations until ``budget_s`` of process CPU time is spent."""
    step = ne.engine.make_step(strategy, task)
    run_block = jax.jit(lambda carry, keys: jax.lax.scan(step, carry, keys))
    k_init, k_task, k_loop = jax.random.split(jax.random.key(seed), 3)
    start = time.process_time()
    wall = time.perf_counter()
    carry = (strategy.init(k_init, x0), task.init(k_task))
    generations = 0
    history = []
    while time.process_time() - start < budget_s:
        keys = jax.vmap(lambda g: jax.random.fold_in(k_loop, g))(jnp.arange(generations, generations + block))
        carry, metrics = run_block(carry, keys)
        jax.block_until_ready(carry)
        generations += block
        history.append({k: float(np.mean(v)) for k, v in metrics.items()})
    cpu = time.process_time() - start
    return carry, generations, history, cpu, time.perf_counter() - wall


def rl_run(name: str, network: str, seed: int, budget: float) -> dict:
    config = ne.rl.resolve(
        env="Breakout-MinAtar", strategy=name, hidden=(256, 256), network=network, seed=seed
    )
    strategy = ne.rl.make_strategy(config)
    task = ne.rl.make_task(config)
    eval_task = ne.rl.make_task(config, episodes=10)
    k_params, k_run, k_eval = ne.rl.run_keys(seed)
    x0 = task.init_solution(k_params)
    (state, task_state), generations, history, cpu, wall = run_for(strategy, task, x0, budget, seed, block=5)
    final = ne.rl.evaluate_policy(eval_task, task_state, state.mean, k_eval)
    return {
        "part": network,
        "strategy": name,
        "seed": seed,
        "generations": generations,
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
        "last_mean_return": history[-1]["return"],
        "final_return": final,
    }


def text_run(name: str, seed: int, budget: float) -> dict:
    task = ne.tasks.text()
    strategy = ne.strategies.make(name, popsize=256)
    x0 = task.init_solution(jax.random.key(seed))
    (state, _), generations, history, cpu, wall = run_for(strategy, task, x0, budget, seed, block=5)
    windows = jnp.asarray(task.info["validation_windows"](256))
    loss = float(jax.jit(task.info["loss"])(state.mean, windows))
    return {
        "part": "text",
        "strategy": name,
        "seed": seed,
        "generations": generations,
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
        "val_loss": loss,
        "val_bits_per_char": loss / math.log(2),
        "unigram_bits": task.info["unigram_entropy_bits"],
    }


def ga_run(rank, seed: int, budget: float) -> dict:
    config = ne.rl.resolve(env="Breakout-MinAtar", strategy="ga", hidden=(256, 256), seed=seed)
    strategy = ne.strategies.make("ga", popsize=config["popsize"], rank=rank)
    task = ne.rl.make_task(config)
    eval_task = ne.rl.make_task(config, episodes=10)
    k_params, _, k_eval = ne.rl.run_keys(seed)
    x0 = task.init_solution(k_params)
    (state, task_state), generations, history, cpu, wall = run_for(strategy, task, x0, budget, seed, block=5)
    final = ne.rl.evaluate_policy(eval_task, task_state, state.best_solution, k_eval)
    return {
        "part": "ga",
        "strategy": f"ga(rank={rank})",
        "seed": seed,
        "generations": generations,
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
        "best_fitness": float(state.best_fitness),
        "final_return": final,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=float, default=300.0, help="CPU seconds per RL run")
    p.add_argument("--text-budget", type=float, default=600.0, help="CPU seconds per text run")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--parts", default="mlp,cnn,text")
    p.add_argument("--ga", action="store_true", help="also: ga vs ga(rank=1) on the MLP (information)")
    a = p.parse_args(argv)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    rows = []

    def record(row):
        row["load"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row), flush=True)
        rows.append(row)

    parts = a.parts.split(",")
    for network in [p for p in parts if p in ("mlp", "cnn")]:
        for seed in range(a.seeds):
            for name in ("eggroll", "openai_es"):
                record(rl_run(name, network, seed, a.budget))
    if "text" in parts:
        for name in ("eggroll", "openai_es"):
            record(text_run(name, 0, a.text_budget))
    if a.ga:
        for seed in range(a.seeds):
            for rank in (None, 1):
                record(ga_run(rank, seed, a.budget))

    ok, summary = True, []
    for network in [p for p in parts if p in ("mlp", "cnn")]:
        mean = {
            name: float(
                np.mean([r["final_return"] for r in rows if r["part"] == network and r["strategy"] == name])
            )
            for name in ("eggroll", "openai_es")
        }
        ok &= mean["eggroll"] >= mean["openai_es"]
        summary.append(
            f"Breakout {network}: eggroll {mean['eggroll']:.2f} vs openai_es {mean['openai_es']:.2f}"
        )
    if "text" in parts:
        text = {r["strategy"]: r for r in rows if r["part"] == "text"}
        egg, es = text["eggroll"], text["openai_es"]
        ok &= egg["val_loss"] < es["val_loss"] and egg["val_bits_per_char"] < egg["unigram_bits"]
        summary.append(
            f"text: eggroll {egg['val_bits_per_char']:.3f} vs openai_es {es['val_bits_per_char']:.3f} "
            f"bits/char (unigram {egg['unigram_bits']:.3f})"
        )
    if a.ga:
        for rank in (None, 1):
            values = [r["final_return"] for r in rows if r["strategy"] == f"ga(rank={rank})"]
            summary.append(f"ga(rank={rank}) {np.mean(values):.2f}")
    print(
        f"lowrank_rl: equal CPU budgets ({a.budget:.0f} s RL, {a.text_budget:.0f} s text), "
        f"{a.seeds} seeds: {'; '.join(summary)}; {'all targets met' if ok else 'TARGET MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
