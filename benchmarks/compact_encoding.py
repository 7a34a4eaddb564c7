"""Such et al.'s compact encoding: a 1M-parameter network after 1000 GA generations as a seed chain.

The Deep GA (``ne.strategies.ga(lineage_capacity=...)``) runs a sphere task (a
cheap fitness) on 1,000,000 parameters for 1000 generations; x0 is drawn from a
key, as a flax ``init`` would. The best member is then stored as its chain of
(seed, sigma) mutations plus the x0 key (``ne.strategies.ga.encode``) and rebuilt
from those bytes alone (``ne.strategies.ga.decode_lineage``). Exits non-zero if
the chain is 64 KiB or more, or the rebuilt network is not bit-for-bit the
evolved one.

    python -m benchmarks.compact_encoding [--dim 1000000] [--generations 1000] [--popsize 8]
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import neuroevo as ne
from benchmarks.common import machine

LIMIT_BYTES = 64 * 1024


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dim", type=int, default=1_000_000)
    p.add_argument("--generations", type=int, default=1000)
    p.add_argument("--popsize", type=int, default=4)
    p.add_argument("--truncation", type=int, default=1)
    p.add_argument("--sigma", type=float, default=1e-5)  # below |x| / dim, so that mutations can improve
    a = p.parse_args(argv)

    def init(key):  # x0 from a key, as a network initialiser would draw it
        return {"w": 0.1 * jax.random.normal(key, (a.dim,), jnp.float32)}

    x0_key = jax.random.key(2017)
    x0 = init(x0_key)
    ga = ne.strategies.ga(a.popsize, sigma=a.sigma, truncation=a.truncation, lineage_capacity=a.generations)
    task = ne.tasks.function(ne.tasks.sphere)
    t = time.perf_counter()
    state, history = ne.evolve(jax.random.key(0), ga, task, x0, a.generations, log_every=100)
    jax.block_until_ready(state)
    run_s = time.perf_counter() - t

    chain = ne.strategies.ga.encode(state, x0_seed=x0_key)
    t = time.perf_counter()
    rebuilt = ne.strategies.ga.decode_lineage(chain, init=init)
    jax.block_until_ready(rebuilt)
    rebuild_s = time.perf_counter() - t
    identical = all(
        np.array_equal(np.asarray(r), np.asarray(b))
        for r, b in zip(
            jax.tree_util.tree_leaves(rebuilt), jax.tree_util.tree_leaves(state.best_solution), strict=True
        )
    )
    dense_bytes = a.dim * 4
    mutations = int(state.best_lineage.length)
    print(f"machine: {machine()}")
    print(
        f"workload: ga popsize {a.popsize}, {a.truncation} parents, sigma {a.sigma}, sphere, "
        f"{a.dim:,} parameters, {a.generations} generations"
    )
    print(f"run: {run_s:.1f} s; sphere {-history['best'][0]:.3f} -> {-history['best'][-1]:.3f}")
    print(f"best member: {mutations} mutations in its chain (the elite's unchanged copies add none)")
    print(f"rebuild from the chain: {rebuild_s:.1f} s, bit-for-bit identical: {identical}")
    print(f"dense network: {dense_bytes:,} bytes; chain: {len(chain):,} bytes ({len(chain) / 1024:.1f} KiB)")
    evolved = mutations >= a.generations // 2  # the chain must be a long one to mean anything
    ok = identical and len(chain) < LIMIT_BYTES and evolved
    print(
        f"compact encoding: {len(chain):,} bytes (limit {LIMIT_BYTES:,}), "
        f"{dense_bytes / len(chain):.0f}x smaller than dense, {mutations} mutations, bit-for-bit: {identical}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
