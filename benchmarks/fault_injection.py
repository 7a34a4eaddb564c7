"""Fault injection: kill ``neuroevo train`` at random points, resume it, compare with an uninterrupted run.

Each kill point is one of

- ``compile``: SIGKILL while the first process compiles (a random moment after ``config.json``
  is written);
- ``block``: SIGKILL at a random moment of the generation loop;
- ``checkpoint``: SIGKILL the moment a checkpoint is being written (orbax's temporary
  directory exists, or a step has no checksums yet);
- ``final``: SIGKILL at a random moment after the last checkpoint (final evaluation, outputs);
- ``sigint``: two Ctrl-Cs in quick succession while a checkpoint is being written (the
  process must exit with status 130, print no traceback and resume as the others).

Kill points come in chains: a run is interrupted at ``--chain`` points in a row (each
``neuroevo train --resume`` is the next victim), then resumed to its end, and its files
(config, metrics, parameters, observation statistics, learning curve, summary but its
wall time) must equal an uninterrupted run's byte for byte. A chain resumed exactly
counts each of its kill points as resumed exactly.

    PYTHONPATH=. python -m benchmarks.fault_injection            # 50 kill points, 10 chains of 5

The processes are real ``python -m neuroevo.cli`` processes. All but a chain's first use
JAX's persistent compilation cache, filled by the uninterrupted run (no process is killed
while writing it), so that a resume does not recompile. The last line is the headline;
the exit status is 1 unless every kill point resumed exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from neuroevo.engine.checkpoint import CHECKSUMS

PHASES = ("compile", "block", "sigint", "checkpoint", "final")
MIDDLE = ("compile", "block", "sigint", "checkpoint")  # "final" ends a chain: no block runs after it
GENERATIONS = 40
ARGS = [
    "train",
    "--generations",
    str(GENERATIONS),
    "--checkpoint-every",
    "2",
    "--log-every",
    "1",
    "--seed",
    "3",
    "--popsize",
    "16",
    "--max-steps",
    "30",
    "--hidden",
    "4",
    "--eval-episodes",
    "2",
    "--normalize-obs",
    "--quiet",
]
FILES = (
    "config.json",
    "metrics.jsonl",
    "metrics.csv",
    "final_params.msgpack",
    "best_params.msgpack",
    "obs_stats.json",
    "learning_curve.png",
)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Process:
    """One ``python -m neuroevo.cli`` process, its stderr collected in a file."""

    def __init__(self, argv: list[str], log: str, cache: str | None):
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if cache is not None:
            env.update(
                JAX_COMPILATION_CACHE_DIR=cache,
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
            )
        self.log = log
        self._err = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "neuroevo.cli", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
        )
        self.started = time.perf_counter()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 600) -> tuple[int, str]:
        rc = self.proc.wait(timeout)
        self._err.close()
        with open(self.log, errors="replace") as f:
            return rc, f.read()


def _rows(out: str) -> int:
    try:
        with open(os.path.join(out, "metrics.jsonl")) as f:
            return sum(1 for line in f if line.endswith("\n"))
    except OSError:
        return 0


def _writing_checkpoint(out: str, before: set[str]) -> bool:
    directory = os.path.join(out, "checkpoints")
    try:
        names = set(os.listdir(directory))
    except OSError:
        return False
    for name in names - before:
        if "tmp" in name:
            return True
        if name.isdigit() and not os.path.exists(os.path.join(directory, name, CHECKSUMS)):
            return True
    return False


def _until(process: Process, condition, timeout: float = 300) -> bool:
    """Poll ``condition`` until it holds (True) or the process ends (False)."""
    deadline = time.perf_counter() + timeout
    while process.alive():
        if condition():
            return True
        if time.perf_counter() > deadline:
            raise TimeoutError("the run neither reached the kill point nor ended")
        time.sleep(0.001)
    return False


def interrupt(process: Process, out: str, phase: str, rng: random.Random, startup: float) -> str:
    """Interrupt ``process`` at a random moment of ``phase``; what happened: killed, interrupted,
    or finished (the run ended before the kill point)."""
    start_rows = _rows(out)
    if phase == "compile":
        # A fresh run writes config.json just before it compiles; a resumed one is killed at
        # a random moment of its start (imports, restore, compilation or cache loading).
        if not os.path.exists(os.path.join(out, "summary.json")) and start_rows == 0:
            reached = _until(process, lambda: os.path.exists(os.path.join(out, "config.json")))
            delay = rng.uniform(0.0, 1.5)
        else:
            reached, delay = True, rng.uniform(0.2, max(0.3, startup))
        time.sleep(delay if reached else 0)
    elif phase == "block":
        reached = _until(process, lambda: _rows(out) > start_rows)
        time.sleep(rng.uniform(0.0, 0.3) if reached else 0)
    elif phase == "sigint":  # Ctrl-C twice while a checkpoint is written (in the loop, or at its end)
        reached = _until(process, lambda: _rows(out) > start_rows)
        before = set(os.listdir(os.path.join(out, "checkpoints"))) if reached else set()
        reached = reached and _until(process, lambda: _writing_checkpoint(out, before))
    elif phase == "checkpoint":
        before = (
            set(os.listdir(os.path.join(out, "checkpoints")))
            if os.path.isdir(out + "/checkpoints")
            else set()
        )
        reached = _until(process, lambda: _writing_checkpoint(out, before))
    else:  # final
        reached = _until(process, lambda: os.path.isdir(os.path.join(out, "checkpoints", str(GENERATIONS))))
        time.sleep(rng.uniform(0.0, 0.5) if reached else 0)
    if not process.alive():
        return "finished"
    if phase == "sigint":
        process.signal(signal.SIGINT)
        time.sleep(rng.uniform(0.002, 0.05))
        process.signal(signal.SIGINT)
        return "interrupted"
    process.signal(signal.SIGKILL)
    return "killed"


def differences(run: str, reference: str) -> list[str]:
    """The files of ``run`` that differ from ``reference``'s (summary.json: all but the wall time)."""
    found = []
    for name in FILES:
        paths = [os.path.join(d, name) for d in (run, reference)]
        data = [open(p, "rb").read() if os.path.exists(p) else None for p in paths]
        if data[0] != data[1]:
            found.append(name)
    summaries = []
    for d in (run, reference):
        path = os.path.join(d, "summary.json")
        summary = json.load(open(path)) if os.path.exists(path) else {}
        summary.pop("wall_time_s", None)
        summaries.append(summary)
    if summaries[0] != summaries[1]:
        found.append("summary.json")
    return found


def reference_run(work: str, cache: str) -> str:
    """An uninterrupted run (it also fills the compilation cache)."""
    out = os.path.join(work, "reference")
    rc, err = Process([*ARGS, "--out", out], os.path.join(work, "reference.log"), cache).wait()
    if rc != 0:
        raise RuntimeError(f"the uninterrupted run failed ({rc}):\n{err}")
    return out


def chain(
    work: str, name: str, phases: list[str], cache: str, rng: random.Random
) -> tuple[list[str], list[str]]:
    """Interrupt a run at ``phases`` in a row, resume it to its end; ``(outcomes, problems)``."""
    out = os.path.join(work, name)
    outcomes, problems = [], []
    startup = 3.0
    for i, phase in enumerate(phases):
        argv = [*ARGS, "--out", out] if i == 0 else ["train", "--resume", out, "--quiet"]
        # A chain's first process compiles; the others load the compiled programs from the cache.
        process = Process(argv, os.path.join(work, f"{name}-{i}.log"), None if i == 0 else cache)
        outcome = interrupt(process, out, phase, rng, startup)
        rc, err = process.wait()
        if outcome == "killed" and rc != -signal.SIGKILL:
            outcome = "finished"
        if outcome != "killed" and ("Traceback" in err or rc not in (0, 130)):
            problems.append(f"{name}: {phase}: exit {rc}: {err.strip()[-600:]}")
        if outcome == "interrupted" and rc == 130 and "neuroevo train --resume" not in err:
            problems.append(f"{name}: {phase}: no resume hint in: {err.strip()[-300:]}")
        if i > 0 and outcome != "killed":
            startup = max(startup, time.perf_counter() - process.started)
        outcomes.append(outcome if rc != 0 or outcome == "killed" else "finished")
    rc, err = Process(
        ["train", "--resume", out, "--quiet"], os.path.join(work, f"{name}-end.log"), cache
    ).wait()
    if rc != 0 or "Traceback" in err:
        problems.append(f"{name}: final resume: exit {rc}: {err.strip()[-600:]}")
    return outcomes, problems


def campaign(
    kills: int, length: int, seed: int, work: str, verbose: bool = True
) -> tuple[int, int, list[str]]:
    """``kills`` kill points in chains of ``length``; ``(resumed exactly, hit, problems)``."""
    rng = random.Random(seed)
    cache = os.path.join(work, "jax-cache")
    reference = reference_run(work, cache)
    exact = hit = 0
    problems: list[str] = []
    for c in range((kills + length - 1) // length):
        n = min(length, kills - c * length)
        phases = ["compile"] + [rng.choice(MIDDLE) for _ in range(n - 2)] + [rng.choice(PHASES)][: n - 1]
        if c == 0:  # the first chain visits every phase once
            phases = list(PHASES[:n])
        outcomes, chain_problems = chain(work, f"chain{c}", phases, cache, rng)
        different = differences(os.path.join(work, f"chain{c}"), reference)
        if different:
            chain_problems.append(
                f"chain{c}: files differ from the uninterrupted run: {', '.join(different)}"
            )
        problems += chain_problems
        exact += 0 if chain_problems else n
        hit += sum(o != "finished" for o in outcomes)
        if verbose:
            shown = ", ".join(f"{p}:{o}" for p, o in zip(phases, outcomes, strict=True))
            print(f"chain {c}: {shown} -> {'exact' if not chain_problems else 'DIFFERENT'}", flush=True)
    return exact, hit, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--chain", type=int, default=5, help="kill points per chain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="neuroevo-faults-")
    t0 = time.perf_counter()
    try:
        exact, hit, problems = campaign(args.kills, args.chain, args.seed, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for problem in problems:
        print(problem)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{args.kills} kill points ({hit} hit before the run ended) in {time.perf_counter() - t0:.0f} s, "
        f"load {load:.1f}; resumed exactly: {exact}/{args.kills} (target {args.kills}/{args.kills})"
    )
    return 0 if exact == args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
