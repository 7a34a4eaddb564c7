"""NEAT's gene alignment: crossover and the compatibility distance (Stanley & Miikkulainen 2002).

Genes of two genomes are aligned by innovation number; a genome's valid connections are
sorted by it (:mod:`neuroevo.strategies.neat_ops`), so aligning is a binary search.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from neuroevo.strategies.neat_ops import BIG, Genome, Params, in_blocks, uniform, valid_conns, valid_nodes

Array = jax.Array


def _sorted_innov(g: Genome) -> Array:
    return jnp.where(valid_conns(g), g.innov, BIG)


def align(a: Genome, b: Genome) -> tuple[Array, Array]:
    """For each connection slot of ``a``: whether ``b`` has the same innovation, and its slot in ``b``."""
    keys_b = _sorted_innov(b)
    j = jnp.clip(jnp.searchsorted(keys_b, a.innov), 0, keys_b.shape[0] - 1)
    return valid_conns(a) & (keys_b[j] == a.innov), j


def crossover(key: Array, a: Genome, b: Genome, fitness_a: Array, fitness_b: Array, p: Params) -> Genome:
    """NEAT crossover: the fitter parent's genes (its structure), matching genes' attributes from
    either parent at random; a gene disabled in either parent is disabled with ``disable_inherited``
    chance. Ties keep ``a``'s structure. ``crossover(g, g)`` is ``g``."""
    swap = fitness_b > fitness_a
    fit, other = jax.tree_util.tree_map(lambda x, y: jnp.where(swap, y, x), (a, b), (b, a))
    n, c = fit.node_id.shape[-1], fit.innov.shape[-1]
    u = uniform(key, 2 * c + n)
    match, j = align(fit, other)
    take = match & (u[:c] < 0.5)
    either_off = match & (~fit.enabled | ~other.enabled[j])
    chosen_on = jnp.where(take, other.enabled[j], fit.enabled)
    enabled = chosen_on & ~(either_off & (u[c : 2 * c] < p.disable_inherited))
    # Node genes aligned by node id.
    same = (fit.node_id[:, None] == other.node_id[None, :]) & (fit.node_id[:, None] >= 0)
    has = jnp.any(same, 1)
    jn = jnp.sum(jnp.where(same, jnp.arange(n), 0), 1)  # node ids are unique: at most one match
    take_n = has & (u[2 * c :] < 0.5)
    return fit.replace(
        weight=jnp.where(take, other.weight[j], fit.weight),
        enabled=enabled,
        bias=jnp.where(take_n, other.bias[jn], fit.bias),
        response=jnp.where(take_n, other.response[jn], fit.response),
        activation=jnp.where(take_n, other.activation[jn], fit.activation),
    )


def distances(pop: Genome, reps: Genome, p: Params) -> Array:
    """See :func:`_distances`; computed :func:`in_blocks` of ``pop``."""
    return in_blocks(lambda block: _distances(block, reps, p), pop)


def _distances(pop: Genome, reps: Genome, p: Params) -> Array:
    """Compatibility distance of every genome in ``pop`` (leading axis P) to every genome in
    ``reps`` (leading axis S): f32[P, S] (Stanley & Miikkulainen 2002, eq. 1, normalised as in
    neat-python).

    Connection genes: ``(c1 E + c2 D + c3 W) / N_conn`` with E excess and D
    disjoint genes (aligned by innovation number), W the summed difference of
    matching genes (|weight difference|, plus 1 where one is disabled) and
    N_conn the larger genome's connection count. Node genes (outputs and hidden,
    aligned by node id) add ``(c2 D_node + c3 W_node) / N_node``, W_node summing
    |bias difference| + |response difference| + 1 for a different activation.

    Genes are aligned through a table over the representatives' genes: each gene
    of ``pop`` is looked up once (a binary search), so the cost is
    O(P S C + P C log(S C)) rather than a search per pair.
    """
    conn = _gene_distance(
        pop.innov, valid_conns(pop), reps.innov, valid_conns(reps),
        (pop.weight, pop.enabled.astype(jnp.float32)), (reps.weight, reps.enabled.astype(jnp.float32)),
        (lambda a, b: jnp.abs(a - b), lambda a, b: (a != b).astype(jnp.float32)),
        p, excess=True,
    )  # fmt: skip
    slot = jnp.arange(pop.node_id.shape[-1])
    genes = lambda g: valid_nodes(g) & (slot >= g.num_inputs)  # noqa: E731  (inputs are not genes)
    node = _gene_distance(
        pop.node_id, genes(pop), reps.node_id, genes(reps),
        (pop.bias, pop.response, pop.activation), (reps.bias, reps.response, reps.activation),
        (lambda a, b: jnp.abs(a - b),) * 2 + (lambda a, b: (a != b).astype(jnp.float32),),
        p, excess=False,
    )  # fmt: skip
    return conn + node


def _gene_distance(key_g, valid_g, key_r, valid_r, attrs_g, attrs_r, diffs, p: Params, excess: bool) -> Array:
    S, width = key_r.shape
    kr = jnp.where(valid_r, key_r, BIG)
    kg = jnp.where(valid_g, key_g, BIG)
    union = jnp.sort(kr.ravel())
    pos_r = jnp.searchsorted(union, kr)  # [S, width]; equal keys share the first position
    pos_g = jnp.clip(jnp.searchsorted(union, kg), 0, union.shape[0] - 1)  # [P, width]
    in_union = valid_g & (union[pos_g] == kg)
    rows = jnp.arange(S)[:, None]
    drop = jnp.where(valid_r, pos_r, union.shape[0])  # invalid rep genes go nowhere

    def table(x, fill):
        return jnp.full((S, union.shape[0]), fill, x.dtype).at[rows, drop].set(x, mode="drop")

    present = table(valid_r, False)[:, pos_g]  # [S, P, width]
    match = jnp.moveaxis(present, 0, 1) & in_union[:, None, :]  # [P, S, width]
    gene_d = sum(
        f(a[:, None, :], jnp.moveaxis(table(b, jnp.zeros((), b.dtype))[:, pos_g], 0, 1))
        for f, a, b in zip(diffs, attrs_g, attrs_r, strict=True)
    )
    wsum = jnp.sum(jnp.where(match, gene_d, 0.0), -1)
    n_match = jnp.sum(match, -1)
    n_g = jnp.sum(valid_g, -1)[:, None]
    n_r = jnp.sum(valid_r, -1)[None, :]
    unmatched = n_g + n_r - 2 * n_match
    if excess:
        max_g = jnp.max(jnp.where(valid_g, key_g, -1), -1)
        max_r = jnp.max(jnp.where(valid_r, key_r, -1), -1)
        ex = jnp.sum(valid_g[:, None, :] & ~match & (key_g[:, None, :] > max_r[None, :, None]), -1)
        ex = ex + jnp.sum(valid_r[None] & (key_r[None] > max_g[:, None, None]), -1)
        mismatch = p.excess_coefficient * ex + p.disjoint_coefficient * (unmatched - ex)
    else:
        mismatch = p.disjoint_coefficient * unmatched
    return (mismatch + p.weight_coefficient * wsum) / jnp.maximum(jnp.maximum(n_g, n_r), 1)


def distance(a: Genome, b: Genome, p: Params) -> Array:
    """The compatibility distance of two genomes (see :func:`distances`)."""
    one = lambda g: jax.tree_util.tree_map(lambda x: x[None], g)  # noqa: E731
    return distances(one(a), one(b), p)[0, 0]
