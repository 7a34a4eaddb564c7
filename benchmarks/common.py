"""Shared helpers for the side-by-side benchmarks: timing and the results footer."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import jax


def machine() -> str:
    dev = jax.devices()[0]
    return (
        f"{dev.platform}:{dev.device_kind} x{jax.device_count()}, {os.cpu_count()} cpus, {platform.machine()}"
    )


def timed(fn: Callable, *args, repeats: int = 7) -> tuple[float, float]:
    """(compile+first run seconds, best steady-state seconds) of ``fn(*args)``, blocking on results."""
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return first, best


def timed_pair(fn_a: Callable, fn_b: Callable, *args, repeats: int = 10) -> tuple[float, float, float, float]:
    """Compile both, then alternate them ``repeats`` times: (compile_a, best_a, compile_b, best_b).

    Alternating keeps a slow spell of the machine from landing on one side only.
    """
    ca, _ = timed(fn_a, *args, repeats=0)
    cb, _ = timed(fn_b, *args, repeats=0)
    best_a = best_b = float("inf")
    for _ in range(repeats):
        for fn, side in ((fn_a, 0), (fn_b, 1)):
            t = time.perf_counter()
            jax.block_until_ready(fn(*args))
            dt = time.perf_counter() - t
            if side == 0:
                best_a = min(best_a, dt)
            else:
                best_b = min(best_b, dt)
    return ca, best_a, cb, best_b
