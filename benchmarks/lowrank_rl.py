"""Learning at an equal budget: ``eggroll`` against ``openai_es``, side by side.

Each run gets the same budget of *process CPU time* (``time.process_time()``,
which counts every XLA thread, compilation included): the machine is shared,
and equal wall time would favour whichever side ran under less load. The two
strategies alternate seed by seed: one job per (part, seed) runs eggroll then
openai_es in one process; ``--jobs N`` runs N such jobs side by side (each in
its own process, so each has its own CPU clock). A run evolves in compiled
blocks of generations until its budget is spent, then its final mean is
evaluated.

- RL: Breakout-MinAtar with the CLI's settings (``neuroevo train`` defaults and
  the Breakout preset: popsize 256, sigma 0.1, Adam 0.03, normalised
  observations, one episode per member) and a 256x256 MLP, then the CNN policy
  (16 3x3 filters, 256x256 hidden); 3 seeds; the figure is the final mean
  policy's return over 10 evaluation episodes. Target: eggroll's mean >=
  openai_es's, on each network.
- Text: ``ne.tasks.text()`` (the stdlib corpus, the default GRU of width 128,
  one 64-character window per member per generation) with the ``text`` preset
  for both (popsize 256, sigma 0.05, Adam 0.01); the figure is the final mean's
  loss on 256 fixed validation windows, in bits per character. Target:
  eggroll's below openai_es's and below the corpus's unigram entropy.
- GA (part ``ga``): the Deep GA with dense mutations against ``ga(rank=1)``
  (defaults: popsize 256, sigma 0.02, 25 parents; the best member is handed
  over) on Breakout-MinAtar with the 256x256 MLP, ``--ga-budget`` each; information only.

    python -m benchmarks.lowrank_rl [--budget 300] [--text-budget 600] [--seeds 3] [--parts mlp,cnn,text,ga]
                                    [--jobs 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
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
    config = ne.rl.resolve(env="text", strategy=name, seed=seed)
    task = ne.tasks.text(val_batch=0)  # validated at the end, on 256 windows
    strategy = ne.rl.make_strategy(config)
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


def job(part: str, seed: int, a) -> list[dict]:
    """One (part, seed): both sides, one after the other, in this process."""
    if part in ("mlp", "cnn"):
        return [rl_run(name, part, seed, a.budget) for name in ("eggroll", "openai_es")]
    if part == "text":
        return [text_run(name, seed, a.text_budget) for name in ("eggroll", "openai_es")]
    return [ga_run(rank, seed, a.ga_budget) for rank in (None, 1)]


def run_jobs(jobs: list[tuple[str, int]], a, record) -> None:
    """Each job in a child process, ``a.jobs`` at a time; rows are recorded as they arrive."""
    if a.jobs <= 1:
        for part, seed in jobs:
            for row in job(part, seed, a):
                record(row)
        return
    common = ["--budget", str(a.budget), "--text-budget", str(a.text_budget), "--ga-budget", str(a.ga_budget)]
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < a.jobs:
            part, seed = pending.pop(0)
            cmd = [sys.executable, "-m", "benchmarks.lowrank_rl", "--child", part, str(seed), *common]
            running.append(
                subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            )
        time.sleep(5)
        for proc in [p for p in running if p.poll() is not None]:
            running.remove(proc)
            for line in proc.stdout.read().splitlines():
                if line.startswith("{"):
                    record(json.loads(line))


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=float, default=300.0, help="CPU seconds per RL run")
    p.add_argument("--text-budget", type=float, default=600.0, help="CPU seconds per text run")
    p.add_argument("--ga-budget", type=float, default=120.0, help="CPU seconds per GA run")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--parts", default="mlp,cnn,text")
    p.add_argument("--jobs", type=int, default=1, help="(part, seed) jobs run side by side")
    p.add_argument("--child", nargs=2, metavar=("PART", "SEED"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        for row in job(a.child[0], int(a.child[1]), a):
            print(json.dumps(row), flush=True)
        return 0
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    rows = []

    def record(row):
        row.setdefault("load", round(os.getloadavg()[0], 2))
        print(json.dumps(row), flush=True)
        rows.append(row)

    parts = a.parts.split(",")
    jobs = [(part, seed) for part in parts if part != "text" for seed in range(a.seeds)]
    jobs += [("text", 0)] if "text" in parts else []
    run_jobs(jobs, a, record)

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
    if "ga" in parts:
        for rank in (None, 1):
            values = [r["final_return"] for r in rows if r["strategy"] == f"ga(rank={rank})"]
            summary.append(f"ga(rank={rank}) {np.mean(values):.2f}")
    print(
        f"lowrank_rl: equal CPU budgets ({a.budget:.0f} s RL, {a.text_budget:.0f} s text, "
        f"{a.ga_budget:.0f} s GA), "
        f"{a.seeds} seeds: {'; '.join(summary)}; {'all targets met' if ok else 'TARGET MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
