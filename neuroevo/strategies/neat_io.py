"""Reading a NEAT genome: its nodes and connections as plain data, and a drawing of the network."""

from __future__ import annotations

from typing import Any

import jax

from neuroevo.nn.neat import ACTIVATION_NAMES
from neuroevo.strategies import neat_ops as ops
from neuroevo.strategies.neat_ops import Genome


def export(genome: Genome) -> dict[str, Any]:
    """A genome as plain Python data: its nodes and connection genes (valid rows only)."""
    import numpy as np

    g = jax.tree_util.tree_map(np.asarray, genome)
    ni, no = genome.num_inputs, genome.num_outputs
    nodes = []
    for slot in np.nonzero(g.node_id >= 0)[0]:
        kind = "input" if slot < ni else "output" if slot < ni + no else "hidden"
        node = {"id": int(g.node_id[slot]), "type": kind}
        if kind != "input":
            node.update(
                bias=float(g.bias[slot]),
                response=float(g.response[slot]),
                activation=ACTIVATION_NAMES[int(g.activation[slot])],
                aggregation="sum",
            )
        nodes.append(node)
    conns = [
        {
            "in": int(g.node_id[g.conn_in[c]]),
            "out": int(g.node_id[g.conn_out[c]]),
            "weight": float(g.weight[c]),
            "enabled": bool(g.enabled[c]),
            "innovation": int(g.innov[c]),
        }
        for c in np.nonzero(g.innov >= 0)[0]
    ]
    return {"num_inputs": ni, "num_outputs": no, "nodes": nodes, "connections": conns}


def draw(genome: Genome, path: str, *, title: str = "", show_disabled: bool = False) -> None:
    """Draw a genome's network to ``path`` (PNG): layers by depth, inputs left, outputs right,
    edge width by |weight| (red negative, blue positive)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    info = export(genome)
    d = np.asarray(ops.depth(genome))
    ni, no = genome.num_inputs, genome.num_outputs
    hidden = info["nodes"][ni + no :]
    layer = {n["id"]: 0 for n in info["nodes"][:ni]}
    layer.update({n["id"]: max(int(d[i]), 1) for i, n in enumerate(hidden, start=ni + no)})
    out_col = max([c for nid, c in layer.items()] + [0]) + 1
    layer.update({n["id"]: out_col for n in info["nodes"][ni : ni + no]})
    columns: dict[int, list[int]] = {}
    for n in info["nodes"]:
        columns.setdefault(layer[n["id"]], []).append(n["id"])
    pos = {nid: (x, (i + 1) / (len(ids) + 1)) for x, ids in columns.items() for i, nid in enumerate(ids)}
    fig, ax = plt.subplots(figsize=(2 + 1.5 * len(columns), 4))
    wmax = max([abs(c["weight"]) for c in info["connections"]] + [1e-9])
    for c in info["connections"]:
        if not c["enabled"] and not show_disabled:
            continue
        (x1, y1), (x2, y2) = pos[c["in"]], pos[c["out"]]
        ax.annotate(
            "",
            xy=(x2, y2),
            xytext=(x1, y1),
            arrowprops=dict(
                arrowstyle="->",
                color=("tab:blue" if c["weight"] > 0 else "tab:red") if c["enabled"] else "lightgray",
                lw=0.5 + 3.0 * abs(c["weight"]) / wmax,
                linestyle="-" if c["enabled"] else ":",
                shrinkA=9,
                shrinkB=9,
            ),
        )
    colors = {"input": "lightgreen", "output": "lightskyblue", "hidden": "white"}
    for n in info["nodes"]:
        x, y = pos[n["id"]]
        ax.scatter([x], [y], s=500, c=colors[n["type"]], edgecolors="black", zorder=3)
        ax.text(x, y, str(n["id"]), ha="center", va="center", fontsize=8, zorder=4)
    ax.set_axis_off()
    ax.set_title(
        title or f"{len(info['nodes'])} nodes, {sum(c['enabled'] for c in info['connections'])} connections"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
