"""NEAT genomes of static shape, and the operators on them (Stanley & Miikkulainen 2002).

A :class:`Genome` holds a node table and a connection table of fixed capacity
(``max_nodes``, ``max_conns``); empty rows have ``node_id == -1`` or
``innov == -1``. Valid rows are contiguous at the front of each table, node
slots ``0..num_inputs-1`` are the inputs and the next ``num_outputs`` slots the
outputs. A connection names its endpoints by node *slot* (``conn_in``,
``conn_out``) and carries its innovation number; within a genome valid
connections are sorted by innovation number (new genes always get numbers above
every number issued before), which makes aligning two genomes a binary search.

Every operator is a pure function of one genome (``vmap`` it over a population);
structural mutations are proposed per genome, numbered for the whole population
at once (:func:`number_proposals`: identical mutations in one generation share a
number) and then applied. A mutation that does not fit in the tables is skipped,
never truncated.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from neuroevo.nn.neat import Network
from neuroevo.rng import hash_bits, normal_from_bits, uniform16
from neuroevo.strategy import chunk_length

Array = jax.Array
BIG = jnp.iinfo(jnp.int32).max


BLOCK = 512  # genomes per block of the population-wide operators (keeps their tables in cache)


def in_blocks(fn, *mapped):
    """``fn(*mapped)`` along the leading (population) axis, ``BLOCK`` rows at a time (a ``lax.map``
    over blocks): the same result, about twice as fast on the CPU for populations of thousands."""
    n = jax.tree_util.tree_leaves(mapped)[0].shape[0]
    c = chunk_length(n, BLOCK)
    if c == n:
        return fn(*mapped)
    split = lambda x: x.reshape((n // c, c) + x.shape[1:])  # noqa: E731
    out = jax.lax.map(lambda parts: fn(*parts), jax.tree_util.tree_map(split, mapped))
    return jax.tree_util.tree_map(lambda x: x.reshape((n,) + x.shape[2:]), out)


@struct.dataclass
class Genome:
    """One NEAT genome (or a population of them, with a leading axis on every array)."""

    node_id: Array  # i32[N]: global node id, -1 for an empty slot
    bias: Array  # f32[N]
    response: Array  # f32[N]
    activation: Array  # i32[N]: index into neuroevo.nn.neat.ACTIVATIONS
    conn_in: Array  # i32[C]: source node slot, -1 when empty
    conn_out: Array  # i32[C]: destination node slot, -1 when empty
    weight: Array  # f32[C]
    enabled: Array  # bool[C]
    innov: Array  # i32[C]: innovation number, -1 for an empty slot
    num_inputs: int = struct.field(pytree_node=False, default=1)
    num_outputs: int = struct.field(pytree_node=False, default=1)


class Params(NamedTuple):
    """NEAT's numeric hyperparameters (traced: a sweep over any of them compiles once).

    Attribute mutation follows neat-python: with probability ``*_mutate_rate`` a
    value is perturbed by ``N(0, *_mutate_power)``, else with probability
    ``*_replace_rate`` it is drawn afresh from ``N(*_init_mean, *_init_stdev)``;
    then it is clipped to ``[-*_max, *_max]``.
    """

    weight_init_mean: Array
    weight_init_stdev: Array
    weight_mutate_rate: Array
    weight_mutate_power: Array
    weight_replace_rate: Array
    weight_max: Array
    bias_init_mean: Array
    bias_init_stdev: Array
    bias_mutate_rate: Array
    bias_mutate_power: Array
    bias_replace_rate: Array
    bias_max: Array
    response_mutate_rate: Array
    response_mutate_power: Array
    response_max: Array
    enabled_mutate_rate: Array
    activation_mutate_rate: Array
    node_add_prob: Array
    node_delete_prob: Array
    conn_add_prob: Array
    conn_delete_prob: Array
    disable_inherited: Array  # chance a gene disabled in either parent is disabled in the child
    excess_coefficient: Array  # c1
    disjoint_coefficient: Array  # c2
    weight_coefficient: Array  # c3


def valid_nodes(g: Genome) -> Array:
    return g.node_id >= 0


def valid_conns(g: Genome) -> Array:
    return g.innov >= 0


# Per-genome random words come from ``hash_bits`` keyed by threefry keys (one per genome):
# threefry's twenty rounds for each of the few hundred words a genome draws per generation
# were about a fifth of a generation on the CPU; the counter hash costs a fraction of that.


def uniform(key: Array, n: int) -> Array:
    """``n`` uniforms in (0, 1) at 16-bit resolution (two per word)."""
    return uniform16(hash_bits(key, (n + 1) // 2), n)


def _normal(key, shape, mean, std):
    return mean + std * normal_from_bits(hash_bits(key, (math.prod(shape) + 1) // 2), shape)


def initial_genome(
    key: Array, num_inputs: int, num_outputs: int, max_nodes: int, max_conns: int, p: Params, activation: int
) -> Genome:
    """Inputs fully connected to outputs (innovation ``i * num_outputs + o``), random weights/biases."""
    ni, no = num_inputs, num_outputs
    k_w, k_b = jax.random.split(key)
    slots = jnp.arange(max_nodes)
    io = slots < ni + no
    c = jnp.arange(max_conns)
    full = c < ni * no
    w = jnp.clip(
        _normal(k_w, (max_conns,), p.weight_init_mean, p.weight_init_stdev), -p.weight_max, p.weight_max
    )
    b = jnp.clip(_normal(k_b, (max_nodes,), p.bias_init_mean, p.bias_init_stdev), -p.bias_max, p.bias_max)
    return Genome(
        node_id=jnp.where(io, slots, -1).astype(jnp.int32),
        bias=jnp.where(io & (slots >= ni), b, 0.0),
        response=jnp.ones((max_nodes,), jnp.float32),
        activation=jnp.full((max_nodes,), activation, jnp.int32),
        conn_in=jnp.where(full, c // no, -1).astype(jnp.int32),
        conn_out=jnp.where(full, ni + c % no, -1).astype(jnp.int32),
        weight=jnp.where(full, w, 0.0),
        enabled=full,
        innov=jnp.where(full, c, -1).astype(jnp.int32),
        num_inputs=ni,
        num_outputs=no,
    )


# --------------------------------------------------------------------------- #
# Graph queries.
# --------------------------------------------------------------------------- #


def _edge_index(g: Genome, mask: Array) -> tuple[Array, Array]:
    """Endpoints of the connections in ``mask``; others point out of range (dropped by scatters)."""
    n = g.node_id.shape[-1]
    return jnp.where(mask, g.conn_in, n), jnp.where(mask, g.conn_out, n)


def reachable_from(g: Genome, start: Array) -> Array:
    """bool[N]: the node slots reachable from slot ``start`` along any connection gene
    (enabled or not, so that re-enabling a gene can never close a cycle)."""
    n = g.node_id.shape[-1]
    src, dst = _edge_index(g, valid_conns(g))
    r0 = jnp.zeros((n,), bool).at[start].set(True)

    def step(carry):
        r, _ = carry
        hit = jnp.take(r, src, mode="fill", fill_value=False)
        new = r.at[dst].max(hit, mode="drop")
        return new, jnp.any(new != r)

    return jax.lax.while_loop(lambda c: c[1], step, (r0, jnp.array(True)))[0]


def depth(g: Genome) -> Array:
    """i32[N]: the longest path (in enabled connections) from a source to each node; 0 for sources."""
    n = g.node_id.shape[-1]
    src, dst = _edge_index(g, valid_conns(g) & g.enabled)

    def step(carry):
        d, _, i = carry
        cand = jnp.take(d, src, mode="fill", fill_value=-1) + 1
        new = jnp.zeros((n,), jnp.int32).at[dst].max(cand, mode="drop")
        return new, jnp.any(new != d) & (i < n), i + 1

    return jax.lax.while_loop(lambda c: c[1], step, (jnp.zeros((n,), jnp.int32), jnp.array(True), 0))[0]


def to_network(
    g: Genome,
    feed_forward: bool,
    recurrent_steps: Array | int = 5,
    activations: tuple[int, ...] | None = None,
) -> Network:
    """The runnable form of a genome (``neat.decode``): dense weights and the number of updates
    (feed-forward: until the values repeat, at most one per node slot; see ``neuroevo.nn.neat``)."""
    n = g.node_id.shape[-1]
    src, dst = _edge_index(g, valid_conns(g) & g.enabled)
    weights = jnp.zeros((n, n), jnp.float32).at[dst, src].add(g.weight, mode="drop")
    steps = n if feed_forward else recurrent_steps
    return Network(
        weights=weights,
        bias=jnp.where(valid_nodes(g), g.bias, 0.0),
        response=g.response,
        activation=g.activation,
        steps=jnp.asarray(steps, jnp.int32),
        num_inputs=g.num_inputs,
        num_outputs=g.num_outputs,
        activations=activations,
        until_fixed_point=feed_forward,
    )


def _choice(u: Array, mask: Array) -> Array:
    """The index where ``mask`` is True picked by the uniform ``u`` (uniformly; 0 when none is)."""
    count = jnp.sum(mask)
    r = jnp.minimum(jnp.floor(u * count).astype(jnp.int32), jnp.maximum(count - 1, 0))
    # The first index whose running count exceeds r: counted rather than argmax'd (an argmax
    # under vmap is a slow reduction on the CPU).
    return jnp.where(count > 0, jnp.sum(jnp.cumsum(mask) <= r), 0)


def _compact(g: Genome, keep_node: Array, keep_conn: Array) -> Genome:
    """Drop rows, keeping the survivors in order at the front; connections of dropped nodes go too."""
    n, c = g.node_id.shape[-1], g.innov.shape[-1]
    keep_node = keep_node & valid_nodes(g)
    new_slot = jnp.where(keep_node, jnp.cumsum(keep_node) - 1, -1)
    endpoint_ok = (jnp.take(new_slot, jnp.maximum(g.conn_in, 0)) >= 0) & (
        jnp.take(new_slot, jnp.maximum(g.conn_out, 0)) >= 0
    )
    keep_conn = keep_conn & valid_conns(g) & endpoint_ok
    node_to = jnp.where(keep_node, new_slot, n)
    conn_to = jnp.where(keep_conn, jnp.cumsum(keep_conn) - 1, c)

    def move(x, to, size, fill):
        return jnp.full((size,), fill, x.dtype).at[to].set(x, mode="drop")

    return g.replace(
        node_id=move(g.node_id, node_to, n, -1),
        bias=move(g.bias, node_to, n, 0.0),
        response=move(g.response, node_to, n, 1.0),
        activation=move(g.activation, node_to, n, 0),
        conn_in=move(jnp.take(new_slot, jnp.maximum(g.conn_in, 0)), conn_to, c, -1),
        conn_out=move(jnp.take(new_slot, jnp.maximum(g.conn_out, 0)), conn_to, c, -1),
        weight=move(g.weight, conn_to, c, 0.0),
        enabled=move(g.enabled, conn_to, c, False),
        innov=move(g.innov, conn_to, c, -1),
    )


# --------------------------------------------------------------------------- #
# Structural mutation: delete, propose, number (population-wide), apply.
# --------------------------------------------------------------------------- #


def mutate_delete(key: Array, g: Genome, p: Params) -> Genome:
    """neat-python's delete mutations, each with its probability: a random hidden node (with its
    connections) and a random connection gene, removed in one compaction."""
    u = uniform(key, 4)
    slots, conn_slots = jnp.arange(g.node_id.shape[-1]), jnp.arange(g.innov.shape[-1])
    hidden = valid_nodes(g) & (slots >= g.num_inputs + g.num_outputs)
    drop_node = (u[0] < p.node_delete_prob) & jnp.any(hidden)
    conns = valid_conns(g)
    drop_conn = (u[2] < p.conn_delete_prob) & jnp.any(conns)
    keep_node = ~(drop_node & (slots == _choice(u[1], hidden)))
    keep_conn = ~(drop_conn & (conn_slots == _choice(u[3], conns)))
    return _compact(g, keep_node, keep_conn)


class Proposal(NamedTuple):
    """One genome's structural mutations this generation, before they are numbered."""

    add_node: Array  # bool: split connection slot ``split``
    split: Array  # i32: connection slot
    split_innov: Array  # i32: its innovation number (the key identical splits share)
    add_conn: Array  # bool: a new connection src -> dst (node slots)
    src: Array
    dst: Array
    src_id: Array  # i32: global node ids (the key identical new connections share)
    dst_id: Array


def propose(key: Array, g: Genome, p: Params, feed_forward: bool) -> Proposal:
    """Draw an add-node and an add-connection mutation (neat-python's rules); invalid ones are off.

    Add-node splits a random enabled connection (needs one free node slot and two
    free connection slots). Add-connection joins a random input/hidden node to a
    random hidden/output node; it is skipped when the connection exists, when it
    would close a cycle (feed-forward), or when the table is full.
    """
    u = uniform(key, 5)
    n = g.node_id.shape[-1]
    slots = jnp.arange(n)
    nodes, conns = valid_nodes(g), valid_conns(g)
    n_nodes, n_conns = jnp.sum(nodes), jnp.sum(conns)
    free_conns = g.innov.shape[-1] - n_conns

    split = _choice(u[1], conns & g.enabled)
    add_node = (u[0] < p.node_add_prob) & jnp.any(conns & g.enabled) & (n_nodes < n) & (free_conns >= 2)
    is_output = (slots >= g.num_inputs) & (slots < g.num_inputs + g.num_outputs)
    src = _choice(u[3], nodes & ~is_output)
    dst = _choice(u[4], nodes & (slots >= g.num_inputs))
    exists = jnp.any(conns & (g.conn_in == src) & (g.conn_out == dst))
    cycle = (src == dst) | reachable_from(g, dst)[src] if feed_forward else jnp.array(False)
    add_conn = (
        (u[2] < p.conn_add_prob) & ~exists & ~cycle & (free_conns >= 1 + 2 * add_node.astype(jnp.int32))
    )
    return Proposal(
        add_node=add_node,
        split=split,
        split_innov=g.innov[split],
        add_conn=add_conn,
        src=src,
        dst=dst,
        src_id=g.node_id[src],
        dst_id=g.node_id[dst],
    )


class Numbers(NamedTuple):
    """Global numbers assigned to each genome's proposals."""

    node_id: Array  # i32[P]: the new node of an add-node
    split_innovs: Array  # i32[P, 2]: its two connections
    conn_innov: Array  # i32[P]: the new connection of an add-connection


def _dense_rank(keys: tuple[Array, ...], flag: Array) -> tuple[Array, Array]:
    """Rank of each flagged row's key among the distinct flagged keys (lexicographic), and their count."""
    keys = tuple(jnp.where(flag, k, BIG) for k in keys)
    order = jnp.lexsort(keys[::-1])
    sorted_keys = [k[order] for k in keys]
    differs = jnp.zeros(flag.shape, bool).at[0].set(True)
    for k in sorted_keys:
        differs = differs | jnp.concatenate([jnp.array([True]), k[1:] != k[:-1]])
    new = flag[order] & differs
    rank_sorted = jnp.cumsum(new) - 1
    rank = jnp.zeros_like(rank_sorted).at[order].set(rank_sorted)
    return rank.astype(jnp.int32), jnp.sum(new).astype(jnp.int32)


def number_proposals(props: Proposal, next_node: Array, next_innov: Array) -> tuple[Numbers, Array, Array]:
    """Number a population's proposals: genomes that split the same connection get the same new
    node and connection numbers, and genomes adding the same (src, dst) connection share one.
    Returns the numbers and the advanced (next_node, next_innov) counters."""
    node_rank, n_split = _dense_rank((props.split_innov,), props.add_node)
    conn_rank, n_conn = _dense_rank((props.src_id, props.dst_id), props.add_conn)
    split_base = next_innov + 2 * node_rank
    numbers = Numbers(
        node_id=next_node + node_rank,
        split_innovs=jnp.stack([split_base, split_base + 1], -1),
        conn_innov=next_innov + 2 * n_split + conn_rank,
    )
    return numbers, next_node + n_split, next_innov + 2 * n_split + n_conn


def apply_structure(
    key: Array, g: Genome, prop: Proposal, num: Numbers, p: Params, activation: int
) -> Genome:
    """Apply one genome's numbered proposals: the split first, then the new connection."""
    nodes, conns = valid_nodes(g), valid_conns(g)
    n_nodes, n_conns = jnp.sum(nodes), jnp.sum(conns)
    c = g.innov.shape[-1]
    # Add node: slot n_nodes; connections a -> new (weight 1) and new -> b (the old weight).
    a, b, w = g.conn_in[prop.split], g.conn_out[prop.split], g.weight[prop.split]
    an = prop.add_node
    node_slot = jnp.where(an, n_nodes, g.node_id.shape[-1])
    g = g.replace(
        node_id=g.node_id.at[node_slot].set(num.node_id, mode="drop"),
        bias=g.bias.at[node_slot].set(0.0, mode="drop"),
        response=g.response.at[node_slot].set(1.0, mode="drop"),
        activation=g.activation.at[node_slot].set(activation, mode="drop"),
        enabled=g.enabled.at[prop.split].set(jnp.where(an, False, g.enabled[prop.split])),
    )
    pair = jnp.where(an, n_conns + jnp.arange(2), c)
    g = g.replace(
        conn_in=g.conn_in.at[pair].set(jnp.stack([a, n_nodes]), mode="drop"),
        conn_out=g.conn_out.at[pair].set(jnp.stack([n_nodes, b]), mode="drop"),
        weight=g.weight.at[pair].set(jnp.stack([jnp.ones_like(w), w]), mode="drop"),
        enabled=g.enabled.at[pair].set(True, mode="drop"),
        innov=g.innov.at[pair].set(num.split_innovs, mode="drop"),
    )
    # Add connection: the next free slot, a fresh weight.
    slot = jnp.where(prop.add_conn, n_conns + 2 * an.astype(jnp.int32), c)
    w_new = jnp.clip(_normal(key, (), p.weight_init_mean, p.weight_init_stdev), -p.weight_max, p.weight_max)
    return g.replace(
        conn_in=g.conn_in.at[slot].set(prop.src, mode="drop"),
        conn_out=g.conn_out.at[slot].set(prop.dst, mode="drop"),
        weight=g.weight.at[slot].set(w_new, mode="drop"),
        enabled=g.enabled.at[slot].set(True, mode="drop"),
        innov=g.innov.at[slot].set(num.conn_innov, mode="drop"),
    )


# --------------------------------------------------------------------------- #
# Attribute mutation.
# --------------------------------------------------------------------------- #


def _mutate_float(r, z, x, rate, power, replace_rate, init_mean, init_std, limit):
    """Perturb (``r < rate``) by ``power * z`` or replace (next ``replace_rate``) by ``init_mean +
    init_std * z``: one uniform ``r`` and one normal ``z`` per gene, the two branches being exclusive."""
    out = jnp.where(r < rate, x + power * z, jnp.where(r < rate + replace_rate, init_mean + init_std * z, x))
    return jnp.clip(out, -limit, limit)


def mutate_attributes(key: Array, g: Genome, p: Params, activation_options: Array) -> Genome:
    """Weights, biases, responses, enabled flags and activations, gene by gene (neat-python's rules)."""
    n, c = g.node_id.shape[-1], g.innov.shape[-1]
    n_u, n_z = 3 * c + 4 * n, c + 2 * n  # uniforms, then normals: two per word each
    words = hash_bits(key, (n_u + 1) // 2 + (n_z + 1) // 2)
    u = uniform16(words, n_u)
    uc = u[: 3 * c].reshape(3, c)  # weight, enabled flip, enabled value
    un = u[3 * c :].reshape(4, n)  # bias, response, activation change, activation pick
    z = normal_from_bits(words[(n_u + 1) // 2 :], (n_z,))
    conns, nodes = valid_conns(g), valid_nodes(g)
    hidden_or_out = nodes & (jnp.arange(n) >= g.num_inputs)
    weight = _mutate_float(
        uc[0], z[:c], g.weight, p.weight_mutate_rate, p.weight_mutate_power, p.weight_replace_rate,
        p.weight_init_mean, p.weight_init_stdev, p.weight_max,
    )  # fmt: skip
    bias = _mutate_float(
        un[0], z[c : c + n], g.bias, p.bias_mutate_rate, p.bias_mutate_power, p.bias_replace_rate,
        p.bias_init_mean, p.bias_init_stdev, p.bias_max,
    )  # fmt: skip
    response = _mutate_float(
        un[1], z[c + n :], g.response, p.response_mutate_rate, p.response_mutate_power, 0.0, 1.0, 0.0,
        p.response_max,
    )  # fmt: skip
    enabled = jnp.where(uc[1] < p.enabled_mutate_rate, uc[2] < 0.5, g.enabled)
    change = un[2] < p.activation_mutate_rate
    k = activation_options.shape[0]
    pick = activation_options[jnp.minimum((un[3] * k).astype(jnp.int32), k - 1)]
    return g.replace(
        weight=jnp.where(conns, weight, 0.0),
        enabled=enabled & conns,
        bias=jnp.where(hidden_or_out, bias, g.bias),
        response=jnp.where(hidden_or_out, response, g.response),
        activation=jnp.where(hidden_or_out & change, pick, g.activation),
    )
