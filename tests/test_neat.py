"""NEAT: genome operators stay valid, the forward pass equals a NumPy evaluation, and it learns."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neuroevo as ne
from neuroevo.nn import neat as neat_nn
from neuroevo.strategies import neat_genes
from neuroevo.strategies import neat_ops as ops

P = 8  # genomes evolved together, so that innovation numbering across genomes is exercised
N, C = 10, 16  # small tables: overflow happens within a few generations
STEPS = 25  # mutation rounds (one compilation per feed_forward value)


def params(**overrides):
    base = dict(
        sigma=0.5,
        node_add_prob=0.5,
        node_delete_prob=0.1,
        conn_add_prob=0.9,
        conn_delete_prob=0.1,
        enabled_mutate_rate=0.2,
        activation_mutate_rate=0.3,
    )
    base.update(overrides)
    strategy = ne.strategies.neat(popsize=P, max_nodes=N, max_conns=C, **base)
    return strategy, strategy.init(jax.random.key(0), neat_nn.template(3, 2)).params


@partial(jax.jit, static_argnums=(1, 2))
def mutate_many(key, steps, feed_forward):
    """``steps`` rounds of every mutation on P genomes, the way ``tell`` applies them."""
    _, p = params()
    pop = jax.vmap(lambda k: ops.initial_genome(k, 3, 2, N, C, p, 0))(jax.random.split(key, P))
    options = jnp.array([0, 1, 2])

    def round_(carry, key):
        pop, next_node, next_innov = carry
        k1, k2, k3, k4 = jax.random.split(key, 4)
        keys = lambda k: jax.random.split(k, P)  # noqa: E731
        pop = jax.vmap(ops.mutate_delete, in_axes=(0, 0, None))(keys(k1), pop, p)
        props = jax.vmap(ops.propose, in_axes=(0, 0, None, None))(keys(k2), pop, p, feed_forward)
        nums, next_node, next_innov = ops.number_proposals(props, next_node, next_innov)
        pop = jax.vmap(ops.apply_structure, in_axes=(0, 0, 0, 0, None, None))(
            keys(k3), pop, props, nums, p, 0
        )
        pop = jax.vmap(ops.mutate_attributes, in_axes=(0, 0, None, None))(keys(k4), pop, p, options)
        return (pop, next_node, next_innov), (props, nums)

    init = (pop, jnp.int32(5), jnp.int32(6))
    return jax.lax.scan(round_, init, jax.random.split(key, steps))


def genomes(pop):
    pop = jax.tree_util.tree_map(np.asarray, pop)
    return [jax.tree_util.tree_map(lambda x, i=i: x[i], pop) for i in range(P)]


def has_cycle(g):
    edges = {(int(g.conn_in[c]), int(g.conn_out[c])) for c in np.nonzero(g.innov >= 0)[0]}
    reach = {n: {b for a, b in edges if a == n} for n in range(N)}
    for _ in range(N):
        reach = {n: r | set().union(*(reach[m] for m in r)) for n, r in reach.items()}
    return any(n in r for n, r in reach.items())


def check_valid(g, feed_forward):
    nodes, conns = g.node_id >= 0, g.innov >= 0
    n_nodes, n_conns = nodes.sum(), conns.sum()
    # Valid rows are contiguous, within capacity, inputs and outputs keep their slots.
    assert nodes[:n_nodes].all() and not nodes[n_nodes:].any()
    assert conns[:n_conns].all() and not conns[n_conns:].any()
    np.testing.assert_array_equal(g.node_id[:5], np.arange(5))
    # Node ids and innovation numbers are unique and sorted; endpoints are valid nodes.
    ids, innov = g.node_id[:n_nodes], g.innov[:n_conns]
    assert np.all(np.diff(ids) > 0) and np.all(np.diff(innov) > 0)
    src, dst = g.conn_in[:n_conns], g.conn_out[:n_conns]
    assert np.all((src >= 0) & (src < n_nodes) & (dst >= 3) & (dst < n_nodes))
    assert not np.any((src >= 3) & (src < 5)), "outputs never feed other nodes"
    assert len(set(zip(src.tolist(), dst.tolist(), strict=True))) == n_conns, "duplicate connection"
    assert not (g.enabled & ~conns).any()
    if feed_forward:
        assert not has_cycle(g)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), feed_forward=st.booleans())
def test_random_mutation_sequences_keep_genomes_valid(seed, feed_forward):
    (pop, next_node, next_innov), _ = mutate_many(jax.random.key(seed), STEPS, feed_forward)
    for g in genomes(pop):
        check_valid(g, feed_forward)
        assert g.innov.max() < int(next_innov) and g.node_id.max() < int(next_node)
    # Tables filled up: the skipped mutations did not corrupt anything.
    assert max(int((g.innov >= 0).sum()) for g in genomes(pop)) >= C - 2


def test_identical_mutations_in_one_generation_share_numbers():
    props = ops.Proposal(
        add_node=jnp.array([True, True, False, True]),
        split=jnp.zeros(4, jnp.int32),
        split_innov=jnp.array([7, 7, 9, 3]),
        add_conn=jnp.array([True, False, True, True]),
        src=jnp.zeros(4, jnp.int32),
        dst=jnp.zeros(4, jnp.int32),
        src_id=jnp.array([1, 1, 1, 0]),
        dst_id=jnp.array([5, 5, 5, 5]),
    )
    nums, next_node, next_innov = ops.number_proposals(props, jnp.int32(20), jnp.int32(100))
    # Two distinct splits (innovations 3 and 7): nodes 20, 21; connections 100-103.
    assert nums.node_id[0] == nums.node_id[1] == 21 and nums.node_id[3] == 20
    np.testing.assert_array_equal(nums.split_innovs[0], [102, 103])
    np.testing.assert_array_equal(nums.split_innovs[3], [100, 101])
    # Two distinct new connections, (0, 5) and (1, 5): 104 and 105, shared by genomes 0 and 2.
    assert nums.conn_innov[3] == 104 and nums.conn_innov[0] == nums.conn_innov[2] == 105
    assert int(next_node) == 22 and int(next_innov) == 106


def test_crossover_with_itself_returns_the_genome_and_keeps_the_fitter_structure():
    (pop, _, _), _ = mutate_many(jax.random.key(3), STEPS, True)
    _, p = params()
    a, b = (jax.tree_util.tree_map(lambda x, i=i: x[i], pop) for i in (0, 1))
    for key in range(5):
        same = neat_genes.crossover(jax.random.key(key), a, a, 1.0, 1.0, p)
        for x, y in zip(jax.tree_util.tree_leaves(same), jax.tree_util.tree_leaves(a), strict=True):
            np.testing.assert_array_equal(x, y)
    child = neat_genes.crossover(jax.random.key(0), a, b, 0.0, 1.0, p)  # b is fitter: b's genes
    np.testing.assert_array_equal(child.innov, b.innov)
    np.testing.assert_array_equal(child.conn_in, b.conn_in)
    np.testing.assert_array_equal(child.node_id, b.node_id)
    match, j = neat_genes.align(b, a)
    w = np.asarray(child.weight)
    assert np.all(
        (w == np.asarray(b.weight)) | (np.asarray(match) & (w == np.asarray(a.weight)[np.asarray(j)]))
    )


ACT = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-np.clip(5 * z, -60, 60))),
    "tanh": lambda z: np.tanh(np.clip(2.5 * z, -60, 60)),
    "relu": lambda z: np.maximum(z, 0),
}


def numpy_forward(genome, x, feed_forward, steps=5):
    """Plain evaluation from the exported genome: topological order, or synchronous steps."""
    info = ne.strategies.neat_module.export(genome)
    nodes = {n["id"]: n for n in info["nodes"]}
    inputs = [n["id"] for n in info["nodes"] if n["type"] == "input"]
    outputs = [n["id"] for n in info["nodes"] if n["type"] == "output"]
    conns = [c for c in info["connections"] if c["enabled"]]

    def value(nid, v):
        z = sum(c["weight"] * v[c["in"]] for c in conns if c["out"] == nid)
        n = nodes[nid]
        return ACT[n["activation"]](n["bias"] + n["response"] * z)

    v = {nid: 0.0 for nid in nodes} | dict(zip(inputs, x, strict=True))
    if feed_forward:
        done = set(inputs)
        while len(done) < len(nodes):
            ready = [
                n for n in nodes if n not in done and all(c["in"] in done for c in conns if c["out"] == n)
            ]
            for n in ready:
                v[n] = value(n, v)
            done |= set(ready)
    else:
        for _ in range(steps):
            v = {n: (v[n] if n in inputs else value(n, v)) for n in nodes}
    return np.array([v[o] for o in outputs])


@pytest.mark.parametrize("feed_forward", [True, False])
def test_forward_pass_equals_numpy_evaluation_of_the_same_graph(feed_forward):
    (pop, _, _), _ = mutate_many(jax.random.key(11), STEPS, feed_forward)
    x = np.array([0.3, -1.2, 0.7], np.float32)
    hidden_seen = 0
    for g in genomes(pop):
        net = ops.to_network(jax.tree_util.tree_map(jnp.asarray, g), feed_forward, 5, (0, 1, 2))
        ours = np.asarray(neat_nn.forward(net, x))
        np.testing.assert_allclose(ours, numpy_forward(g, x, feed_forward), rtol=1e-5, atol=1e-6)
        batch = np.stack([x, -x, 2 * x])  # all rows in one pass: the values row by row (to rounding)
        rows = np.stack([np.asarray(neat_nn.forward(net, r)) for r in batch])
        np.testing.assert_allclose(np.asarray(neat_nn.forward_batch(net, batch)), rows, rtol=1e-6, atol=1e-7)
        hidden_seen += int((g.node_id >= 5).sum())
    assert hidden_seen > 0  # the graphs were not trivial


def test_feed_forward_pass_stops_at_the_bound_when_values_never_repeat():
    net = neat_nn.template(1, 1)
    net = net.replace(weights=net.weights.at[1, 0].set(jnp.nan), until_fixed_point=True, steps=jnp.array(3))
    assert np.isnan(np.asarray(neat_nn.forward(net, np.ones(1)))).all()  # returns (NaN), no endless loop
    with pytest.raises(ValueError, match=r"shape \(batch, 1\)"):
        neat_nn.forward_batch(net, np.ones(3))


def numpy_distance(a, b, c1=1.0, c2=1.0, c3=0.5):
    """neat-python's distance, with excess genes separated from disjoint ones (eq. 1)."""
    ea, eb = (ne.strategies.neat_module.export(g) for g in (a, b))
    ca = {c["innovation"]: c for c in ea["connections"]}
    cb = {c["innovation"]: c for c in eb["connections"]}
    match = ca.keys() & cb.keys()
    w = sum(abs(ca[k]["weight"] - cb[k]["weight"]) + (ca[k]["enabled"] != cb[k]["enabled"]) for k in match)
    unmatched = [k for k in ca.keys() ^ cb.keys()]
    excess = sum(1 for k in unmatched if k > min(max(ca, default=-1), max(cb, default=-1)))
    conn = (c1 * excess + c2 * (len(unmatched) - excess) + c3 * w) / max(len(ca), len(cb), 1)
    na = {n["id"]: n for n in ea["nodes"] if n["type"] != "input"}
    nb = {n["id"]: n for n in eb["nodes"] if n["type"] != "input"}
    nm = na.keys() & nb.keys()
    wn = sum(
        abs(na[k]["bias"] - nb[k]["bias"])
        + abs(na[k]["response"] - nb[k]["response"])
        + (na[k]["activation"] != nb[k]["activation"])
        for k in nm
    )
    node = (c2 * len(na.keys() ^ nb.keys()) + c3 * wn) / max(len(na), len(nb), 1)
    return conn + node


def test_compatibility_distance_matrix_equals_a_reference():
    (pop, _, _), _ = mutate_many(jax.random.key(5), STEPS, True)
    _, p = params()
    reps = jax.tree_util.tree_map(lambda x: x[:3], pop)
    d = np.asarray(neat_genes.distances(pop, reps, p))
    gs = genomes(pop)
    ref = np.array([[numpy_distance(gs[i], gs[j]) for j in range(3)] for i in range(P)])
    np.testing.assert_allclose(d, ref, rtol=1e-5, atol=1e-6)
    assert np.all(np.diag(d[:3]) == 0) and d.max() > 0


def test_speciation_of_few_unplaced_members_equals_the_full_computation(monkeypatch):
    """Founding a species measures only the unplaced members (gathered, when few are): the run is
    bit-for-bit the one that measures every member, through foundings with few and many unplaced."""
    task = ne.tasks.xor()

    def run():
        strategy = ne.strategies.make("neat", popsize=60, max_species=6, target_species=4)
        state, _ = ne.evolve(jax.random.key(8), strategy, task, task.init_solution(None), 12, log_every=12)
        return state

    monkeypatch.setattr(ne.strategies.neat_module, "FEW_UNPLACED", 8)
    few = run()
    monkeypatch.setattr(ne.strategies.neat_module, "FEW_UNPLACED", 60)
    full = run()
    for a, b in zip(jax.tree_util.tree_leaves(few), jax.tree_util.tree_leaves(full), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(full.species_active.sum()) >= 2


def test_neat_learns_xor_and_export_and_drawing(tmp_path):
    task = ne.tasks.xor()
    strategy = ne.strategies.make("neat", popsize=150)
    state, history = ne.evolve(jax.random.key(3), strategy, task, task.init_solution(None), 60, log_every=60)
    best = history["best"]
    # From about 3.0 (an output stuck near 0.5) to solved (fitness 3.9, every output on the right side).
    assert best[0] < 3.1 and best[-1] >= 3.9 and history["solved"][-1] > 0
    assert int(jnp.sum(state.species_active)) >= 1
    info = ne.strategies.neat_module.export(state.best_genome)
    assert [n["type"] for n in info["nodes"][:3]] == ["input", "input", "output"]
    assert all(set(c) == {"in", "out", "weight", "enabled", "innovation"} for c in info["connections"])
    path = tmp_path / "best.png"
    ne.strategies.neat_module.draw(state.best_genome, str(path))
    assert path.stat().st_size > 1000


def test_bad_input_names_the_problem():
    strategy = ne.strategies.make("neat", popsize=8, max_nodes=4)
    with pytest.raises(ValueError, match="Network template"):
        strategy.init(jax.random.key(0), jnp.ones(3))
    with pytest.raises(ValueError, match="max_nodes=4 cannot hold 3 inputs and 2 outputs"):
        strategy.init(jax.random.key(0), neat_nn.template(3, 2))
    with pytest.raises(ValueError, match="max_conns=4 cannot hold the 6 initial"):
        ne.strategies.make("neat", popsize=8, max_conns=4).init(jax.random.key(0), neat_nn.template(3, 2))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        ne.strategies.make("neat", popsize=8, activation="swish")
    with pytest.raises(ValueError, match="max_species must be at least 1"):
        ne.strategies.make("neat", popsize=8, max_species=0)
    with pytest.raises(ValueError, match="has 2 inputs, got an input of shape"):
        neat_nn.forward(neat_nn.template(2, 1), jnp.ones(3))


def test_neat_trains_a_gymnax_policy_through_the_cli_path(tmp_path):
    out = str(tmp_path / "run")
    result = ne.train(env="CartPole-v1", strategy="neat", popsize=32, generations=3, eval_episodes=2, out=out)
    assert (tmp_path / "run" / "best_network.png").exists() and (
        tmp_path / "run" / "best_genome.json"
    ).exists()
    assert ne.rl.evaluate_run(out) == pytest.approx(result.final_return)
    assert isinstance(result.final_params, neat_nn.Network)
    assert result.final_params.num_inputs == 4 and result.final_params.num_outputs == 2
    assert np.isfinite(result.final_return) and result.final_return >= 8
