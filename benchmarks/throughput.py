"""Generations per second, side by side with evosax, on the same workload.

100-D Rastrigin, population 1024, 200 generations in one compiled ``lax.scan``:
neuroevo ``openai_es`` vs evosax ``Open_ES`` and neuroevo ``ga`` vs evosax
``SimpleGA`` (same sigma, same optimiser, same number of parents), plus a bare
hand-written OpenAI-ES kernel as the floor. Exits non-zero if ours is slower
than evosax (target >= 1.0x; the goal is 1.5x).

    python benchmarks/throughput.py [--dim 100] [--popsize 1024] [--generations 200]
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import optax

import neuroevo as ne
from benchmarks.common import machine, timed, timed_pair
from neuroevo import rng
from neuroevo.shaping import centered_ranks


def rastrigin(x):
    return 10.0 * x.shape[-1] + jnp.sum(x * x - 10.0 * jnp.cos(2.0 * jnp.pi * x), axis=-1)


def ours(strategy, x0, generations):
    step = ne.engine.make_step(strategy, ne.tasks.function(rastrigin))

    @jax.jit
    def run(key):
        k_init, k_loop = jax.random.split(key)
        carry = (strategy.init(k_init, x0), ())
        carry, metrics = jax.lax.scan(step, carry, jax.random.split(k_loop, generations))
        return metrics["best"][-1]

    return run


def evosax_run(algo, params, x0, generations, population_based):
    @jax.jit
    def run(key):
        k_init, k_loop = jax.random.split(key)
        if population_based:
            pop = x0 + 0.1 * jax.random.normal(k_init, (algo.population_size, x0.shape[0]))
            state = algo.init(k_init, pop, rastrigin(pop), params)
        else:
            state = algo.init(k_init, x0, params)

        def step(state, key):
            k_ask, k_tell = jax.random.split(key)
            pop, state = algo.ask(k_ask, state, params)
            fit = rastrigin(pop)
            state, _ = algo.tell(k_tell, pop, fit, state, params)
            return state, state.best_fitness

        state, best = jax.lax.scan(step, state, jax.random.split(k_loop, generations))
        return -best[-1]

    return run


def bare_es(popsize, sigma, lr, x0, generations):
    """The floor: the same noise, ranks and Adam step as ``openai_es``, with no bookkeeping."""
    opt = optax.adam(lr)
    half = popsize // 2

    @jax.jit
    def run(key):
        def step(carry, key):
            mean, opt_state = carry
            z = rng.normal(key, (half, mean.shape[0]))
            f = -rastrigin(jnp.concatenate([mean + sigma * z, mean - sigma * z]))
            w = centered_ranks(f)
            grad = (w[:half] - w[half:]) @ z / (popsize * sigma)
            updates, opt_state = opt.update(-grad, opt_state)
            return (mean + updates, opt_state), jnp.max(f)

        (mean, _), best = jax.lax.scan(step, (x0, opt.init(x0)), jax.random.split(key, generations))
        return best.max()

    return run


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--popsize", type=int, default=1024)
    p.add_argument("--generations", type=int, default=200)
    p.add_argument("--target", type=float, default=1.0)
    a = p.parse_args(argv)
    from evosax.algorithms import Open_ES, SimpleGA

    x0 = jnp.full((a.dim,), 3.0)
    sigma, lr, parents = 0.1, 0.01, a.popsize // 2
    key = jax.random.key(0)
    pairs = {
        "openai_es vs Open_ES": (
            ours(ne.strategies.openai_es(a.popsize, sigma=sigma, learning_rate=lr), x0, a.generations),
            evosax_run(
                o := Open_ES(
                    a.popsize, x0, optimizer=optax.adam(lr), std_schedule=optax.constant_schedule(sigma)
                ),
                o.default_params,
                x0,
                a.generations,
                False,
            ),
        ),
        "ga vs SimpleGA": (
            ours(ne.strategies.ga(a.popsize, sigma=sigma, truncation=parents), x0, a.generations),
            evosax_run(
                g := SimpleGA(a.popsize, x0, std_schedule=optax.constant_schedule(sigma)),
                g.default_params,
                x0,
                a.generations,
                True,
            ),
        ),
    }
    print(f"machine: {machine()}  workload: {a.dim}-D Rastrigin, popsize {a.popsize}, {a.generations} gens")
    ratios = []
    for name, (mine, theirs) in pairs.items():
        c1, t1, c2, t2 = timed_pair(mine, theirs, key)
        r = t2 / t1
        ratios.append(r)
        print(
            f"{name:24s} ours {a.generations / t1:9.1f} gen/s "
            f"(best {float(mine(key)):9.2f}, compile {c1:.1f}s)"
            f" | evosax {a.generations / t2:9.1f} gen/s (best {float(theirs(key)):9.2f}, compile {c2:.1f}s)"
            f" | ratio {r:.2f}x"
        )
    _, tb = timed(bare_es(a.popsize, sigma, lr, x0, a.generations), key)
    print(f"{'bare OpenAI-ES kernel':24s} {a.generations / tb:9.1f} gen/s (the floor)")
    worst = min(ratios)
    print(f"throughput ratio vs evosax (min over pairs): {worst:.2f}x (target >= {a.target}x)")
    return 0 if worst >= a.target else 1


if __name__ == "__main__":
    sys.exit(main())
