"""The evosax adapter: every evosax algorithm as "evosax:<Name>" (the contract itself is checked
by test_contract.test_fused_contract)."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neuroevo as ne
from neuroevo.strategies import evosax_adapter


def evolve_sphere(strategy, generations, x0=None):
    """``generations`` of the 5-d sphere from x0 = ones; returns the final state."""
    x0 = jnp.ones(5) if x0 is None else x0

    def step(state, key):
        k_ask, k_tell = jax.random.split(key)
        genotypes, state = strategy.ask(k_ask, state)
        fitness = -jax.vmap(ne.tasks.sphere)(ne.population(strategy, state, genotypes))
        return strategy.tell(k_tell, state, genotypes, fitness), None

    @jax.jit
    def run(key):
        k_init, k_loop = jax.random.split(key)
        state = strategy.init(k_init, x0)
        return jax.lax.scan(step, state, jax.random.split(k_loop, generations))[0]

    return run(jax.random.key(0))


def test_every_evosax_algorithm_is_registered():
    from evosax.algorithms import algorithms

    assert sorted(evosax_adapter.ALGORITHMS) == sorted(algorithms)
    evosax_names = [n for n in ne.strategies.names() if n.startswith("evosax:")]
    assert len(evosax_names) >= 30
    assert {"evosax:CMA_ES", "evosax:Open_ES", "evosax:SimpleGA", "evosax:PSO"} <= set(evosax_names)
    assert set(ne.strategies.hyperparameters("evosax:CMA_ES")) == {"popsize", "sigma", "params", "options"}


def test_importing_neuroevo_does_not_import_evosax():
    code = "import sys, neuroevo; print('evosax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "name, options, sigma, generations, threshold",
    [
        ("CMA_ES", None, 0.5, 40, -1e-3),
        ("Open_ES", {"optimizer": optax.adam(0.1)}, 0.2, 60, -0.05),
    ],
)
def test_maximises(name, options, sigma, generations, threshold):
    """From f = -5 at x0 = ones(5) to near the optimum; a wrong sign would walk away from it."""
    strategy = ne.strategies.make(f"evosax:{name}", popsize=16, sigma=sigma, options=options)
    state = evolve_sphere(strategy, generations)
    assert float(state.best_fitness) > threshold
    assert float(ne.tasks.sphere(state.mean)) < 0.1
    assert int(state.generation) == generations


def test_unknown_names_raise():
    with pytest.raises(ValueError, match=r"unknown evosax algorithm 'CMAES'.*'CMA_ES'"):
        evosax_adapter.evosax_strategy("CMAES")
    with pytest.raises(ValueError, match=r"unknown strategy 'evosax:CMAES'.*evosax:CMA_ES"):
        ne.strategies.make("evosax:CMAES")
    with pytest.raises(ValueError, match=r"unknown params field\(s\) \['c_meen'\].*'c_mean'"):
        ne.strategies.make("evosax:CMA_ES", params={"c_meen": 1.0})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['optimiser'\].*'optimizer'"):
        ne.strategies.make("evosax:Open_ES", options={"optimiser": optax.sgd(1e-3)})
    with pytest.raises(ValueError, match="not both"):
        ne.strategies.make("evosax:CMA_ES", sigma=0.1, params={"std_init": 0.2})
    with pytest.raises(ValueError, match="num_populations"):
        ne.strategies.make("evosax:SV_CMA_ES", popsize=15)


def test_sigma_targets():
    targets = {
        name: evosax_adapter.sigma_target(evosax_adapter.algorithm_class(name))
        for name in evosax_adapter.ALGORITHMS
    }
    assert targets["CMA_ES"] == targets["SNES"] == targets["MR15_GA"] == targets["SV_CMA_ES"] == "std_init"
    assert targets["Open_ES"] == targets["ARS"] == targets["SimpleGA"] == "std_schedule"
    assert targets["GradientlessDescent"] == "radius_max"
    assert targets["PSO"] == targets["DifferentialEvolution"] == targets["DiffusionEvolution"] == "population"


@pytest.mark.parametrize("name", ["CMA_ES", "Open_ES", "MR15_GA"])
def test_sigma_is_the_initial_step_size(name):
    x0 = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(())}
    state = ne.strategies.make(f"evosax:{name}", popsize=8, sigma=0.3).init(jax.random.key(0), x0)
    np.testing.assert_allclose(state.inner.std, 0.3, rtol=1e-6)
    default = ne.strategies.make(f"evosax:{name}", popsize=8).init(jax.random.key(0), x0)
    np.testing.assert_allclose(default.inner.std, 1.0)  # sigma=None keeps evosax's default


def test_population_based_generation_zero_evaluates_x0_and_its_neighbourhood():
    strategy = ne.strategies.make("evosax:PSO", popsize=64, sigma=0.5)
    x0 = jnp.arange(4.0)
    state = strategy.init(jax.random.key(0), x0)
    assert not hasattr(state, "mean")
    genotypes, state = strategy.ask(jax.random.key(1), state)
    np.testing.assert_array_equal(genotypes[0], x0)
    assert float(jnp.std(genotypes[1:] - x0)) == pytest.approx(0.5, rel=0.2)


def test_params_override_and_stein_particles():
    strategy = ne.strategies.make(
        "evosax:SV_CMA_ES", popsize=12, sigma=0.2, params={"alpha": 0.5}, options={"num_populations": 3}
    )
    state = strategy.init(jax.random.key(0), {"w": jnp.ones(3)})
    assert state.mean["w"].shape == (3, 3)  # one mean per particle
    np.testing.assert_array_equal(state.mean["w"][0], jnp.ones(3))  # particle 0 starts at x0
    genotypes, _ = strategy.ask(jax.random.key(1), state)
    assert genotypes.shape == (12, 3)
