"""Pinned trajectories: a change that only moves code keeps every result bit for bit.

Each case runs a short seeded trajectory (CMA-ES plain, IPOP, BIPOP, sep, in
float32 and float64; ``ne.evolve`` of several strategies; small BBOB campaigns)
and compares a SHA-256 digest of everything it produced (each generation's
fitness, every leaf of the final state, a campaign's records) with the digest
in ``tests/pinned.json``. Bits depend on the platform (JAX version, CPU): on
another platform the cases are skipped, not failed. After a change that is
meant to change results, regenerate the file and say so in the commit:

    PYTHONPATH=. python tests/test_pinned.py
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_cma_es import rastrigin, rotated_ellipsoid  # (tests/ is on the path)

import neuroevo as ne

PINS = Path(__file__).with_name("pinned.json")


def platform_key() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"jax {jax.__version__}, {platform.machine()}, {cpu}"


def digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def trajectory(strategy, f, x0, generations):
    """Every generation's fitness and the final state's leaves, from one compiled scan."""

    def step(state, k):
        k_ask, k_tell = jax.random.split(k)
        g, state = strategy.ask(k_ask, state)
        fitness = -f(ne.population(strategy, state, g))
        return strategy.tell(k_tell, state, g, fitness), fitness

    state = strategy.init(jax.random.key(0), x0)
    keys = jax.random.split(jax.random.key(1), generations)
    state, fitness = jax.jit(lambda s: jax.lax.scan(step, s, keys))(state)
    return [fitness, *jax.tree_util.tree_leaves(state)]


def cma(dtype, generations=300, dim=8, **kw):
    def run():
        with jax.enable_x64(dtype == jnp.float64):
            strategy = ne.strategies.make(kw.pop("name", "cma_es"), **kw)
            return trajectory(strategy, rotated_ellipsoid(dim), jnp.zeros(dim, dtype), generations)

    return run


def restarts(dtype, generations, **kw):
    def run():
        with jax.enable_x64(dtype == jnp.float64):
            strategy = ne.strategies.make("cma_es", **kw)
            return trajectory(strategy, rastrigin, jnp.full(4, 2.0, dtype), generations)

    return run


def evolve(name, **kw):
    def run():
        strategy = ne.strategies.make(name, **kw)
        task = ne.tasks.function(ne.tasks.rastrigin)
        state, history = ne.evolve(jax.random.key(3), strategy, task, jnp.full(6, 1.5), 20, log_every=7)
        return [history[k] for k in sorted(history)] + jax.tree_util.tree_leaves(state)

    return run


def campaign(**kw):
    def run():
        from neuroevo.bench import bbob as bench_bbob

        result = bench_bbob.bbob_campaign(progress=False, processes=False, **kw)
        out = []
        for d in sorted(result.dimensions):
            r = result.dimensions[d]
            out += [r.hit_evals, r.hit_delta, r.first_delta, r.final_evals, r.best_delta, r.tdat_best]
            out += [a for a in (r.hit_measured, r.hit_best_measured, r.best_measured) if a is not None]
        return out

    return run


CASES = {
    "cma_es float32": cma(jnp.float32),
    "cma_es float64": cma(jnp.float64),
    "sep_cma_es float32": cma(jnp.float32, 200, 12, name="sep_cma_es", sigma=1.0),
    "sep_cma_es float64": cma(jnp.float64, 200, 12, name="sep_cma_es", sigma=1.0),
    "ipop float64": restarts(
        jnp.float64, 500, popsize=6, restarts="ipop", max_restarts=2, restart_box=(-4.0, 4.0)
    ),
    "ipop cycle float32": restarts(
        jnp.float32, 400, popsize=6, sigma=1.0, restarts="ipop", max_restarts=1, cycle=True
    ),
    "bipop float64": restarts(
        jnp.float64, 1000, popsize=6, restarts="bipop", max_restarts=3, restart_box=(-4.0, 4.0)
    ),
    "bipop float32": restarts(jnp.float32, 600, popsize=6, restarts="bipop", max_restarts=2),
    "evolve cma_es": evolve("cma_es", popsize=8),
    "evolve openai_es": evolve("openai_es", popsize=16),
    "evolve snes": evolve("snes", popsize=8),
    "evolve ga": evolve("ga", popsize=16),
    "campaign cma_es": campaign(
        strategy="cma_es", dimensions=(2, 3), instances=(1, 2), functions=(1, 8, 15, 21),
        budget_multiplier=300,
    ),
    "campaign cma_es no restarts": campaign(
        strategy="cma_es", dimensions=(2,), instances=(1,), functions=(1, 8), budget_multiplier=200,
        restarts=None,
    ),
    "campaign noisy": campaign(
        strategy="cma_es", dimensions=(2,), instances=(1, 2), functions=(101, 104), budget_multiplier=100,
        suite="bbob-noisy",
    ),
}  # fmt: skip


def load() -> dict:
    return json.loads(PINS.read_text()) if PINS.exists() else {}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pinned(name):
    pins = load()
    if pins.get("platform") != platform_key():
        pytest.skip(f"pins recorded on {pins.get('platform')!r}, this is {platform_key()!r}")
    if name not in pins.get("cases", {}):
        pytest.fail(f"no pin for {name!r}: regenerate tests/pinned.json (see the module docstring)")
    assert digest(CASES[name]()) == pins["cases"][name], f"{name}: results changed"


def regenerate(names=None) -> None:
    pins = load()
    if pins.get("platform") != platform_key():
        pins = {}
    pins["platform"] = platform_key()
    cases = pins.setdefault("cases", {})
    for name in names or sorted(CASES):
        cases[name] = digest(CASES[name]())
        print(name, cases[name][:16])
    PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    regenerate(sys.argv[1:])
