"""A campaign's files: COCO's observer format (``.info``, ``.dat``, ``.tdat``), which cocopp
post-processes, ERT tables, ECDF plots, and ``campaign.json`` (which also says what campaign a
directory holds, so that another one is not written into it: :func:`check_out`)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroevo.bench.results import ERT_TARGETS, SUITES, CampaignResult, DimensionResult, function_name


def _line(e, best, fopt, f, f_best):
    """A .dat/.tdat line: evaluations, 0, best noise-free f - fopt, measured f, best measured f."""
    return f"{int(e)} 0 {best:+.9e} {f + fopt:+.9e} {f_best + fopt:+.9e}\n"


def _write_run(dat, tdat, r: DimensionResult, p: int) -> None:
    """Problem ``p``'s lines: .dat at evaluation 1, at each first crossing of LEVELS and at
    the last evaluation; .tdat at ``r.tdat_evals``. Noiseless: measured = noise-free."""
    fopt, last = r.fopt[p], int(r.final_evals[p])
    noisy = r.hit_measured is not None
    head = (
        "% f evaluations | g evaluations | best noise-free fitness - Fopt "
        f"({fopt:.12e}) + sum g_i+ | measured fitness "
        "| best measured fitness or single-digit g-values\n"
    )
    dat.write(head)
    tdat.write(head)
    m_first = r.first_measured[p] if noisy else r.first_delta[p]
    events = {1: (r.first_delta[p], m_first, m_first)}  # e -> (noise-free, measured, best measured)
    for k in np.flatnonzero(np.isfinite(r.hit_evals[p])):  # levels crossed at one evaluation: one member
        hit = (r.hit_delta[p, k], r.hit_measured[p, k], r.hit_best_measured[p, k]) if noisy else None
        events[int(r.hit_evals[p, k])] = hit or (r.hit_delta[p, k],) * 3
    best = best_m = np.inf
    for e in sorted(events):
        v, m, bm = events[e]
        best, best_m = min(best, v), min(best_m, bm if noisy else v)
        dat.write(_line(e, best, fopt, m, best_m))
    final_m = r.best_measured[p] if noisy else r.best_delta[p]
    if last not in events:
        dat.write(_line(last, r.best_delta[p], fopt, final_m, final_m))
    tb_m = r.tdat_best_measured[p] if noisy else r.tdat_best[p]
    for e, v, m in zip(r.tdat_evals, r.tdat_best[p], tb_m, strict=True):
        if e <= last and np.isfinite(v):
            tdat.write(_line(e, v, fopt, m, m))
    if last not in set(int(e) for e in r.tdat_evals):
        tdat.write(_line(last, r.best_delta[p], fopt, final_m, final_m))


def write(result: CampaignResult, out: str | Path, hyperparameters: dict | None = None) -> None:
    """COCO data, campaign.json, ERT tables and ECDF plots of ``result`` in ``out``."""
    for r in result.dimensions.values():
        write_dimension(result.strategy, r, out)
    write_index(result, out, hyperparameters)


def write_dimension(strategy: str, r: DimensionResult, out: str | Path) -> None:
    """One dimension's files: its ``.dat``/``.tdat`` data, ERT tables and ECDF plot (a campaign
    writes each dimension as soon as it is done, while the others still run)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dim = r.dimension
    for fid in np.unique(r.fids):
        rel = _data_path(int(fid), dim)
        (out / rel).parent.mkdir(exist_ok=True)
        with open(out / f"{rel}.dat", "w") as dat, open(out / f"{rel}.tdat", "w") as tdat:
            for p in np.flatnonzero(r.fids == fid):
                _write_run(dat, tdat, r, p)
    table = r.ert_table()
    heads = [f"1e{int(round(math.log10(t)))}" for t in ERT_TARGETS]
    md = [
        f"ERT ({strategy}, dimension {dim}, budget {r.budget}, instances {len(np.unique(r.instances))})",
        "",
    ]
    md.append("| f | name | " + " | ".join(heads) + " | solved |")
    md.append("|---" * (len(heads) + 3) + "|")
    csv = ["fid," + ",".join(heads) + ",solved,runs"]
    for fid, erts in table.items():
        m = r.fids == fid
        solved = int(np.isfinite(r.hit_evals[m, -1]).sum())
        cells = [f"{v:.3g}" if np.isfinite(v) else "inf" for v in erts]
        md.append(f"| {fid} | {function_name(fid)} | " + " | ".join(cells) + f" | {solved}/{int(m.sum())} |")
        csv.append(f"{fid}," + ",".join(cells) + f",{solved},{int(m.sum())}")
    (out / f"ert_d{dim}.md").write_text("\n".join(md) + "\n")
    (out / f"ert_d{dim}.csv").write_text("\n".join(csv) + "\n")
    label = f"{strategy} ({out.name})"
    _ecdf_figure([(label, _summary(r))], dim, [_suite_of(r)], out / f"ecdf_d{dim}.png")


def write_index(result: CampaignResult, out: str | Path, hyperparameters: dict | None = None) -> None:
    """The ``.info`` files (one per function, a block per dimension) and ``campaign.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    alg = result.strategy
    info: dict[int, list[str]] = {}
    for dim, r in result.dimensions.items():
        for fid in np.unique(r.fids):
            fid = int(fid)
            rows = np.flatnonzero(r.fids == fid)
            runs = ", ".join(
                f"{int(r.instances[p])}:{int(r.final_evals[p])}|{r.best_delta[p]:.1e}" for p in rows
            )
            info.setdefault(fid, []).append(
                f"suite = '{result.suite}', funcId = {fid}, DIM = {dim}, Precision = 1.000e-08, "
                f"algId = '{alg}', coco_version = 'neuroevo', logger = '{result.suite}', "
                "data_format = 'bbob-new2'\n"
                f"% neuroevo {alg} {json.dumps(hyperparameters or {}, default=str)}\n"
                f"{_data_path(fid, dim)}.dat, {runs}\n"
            )
    for fid, blocks in info.items():
        (out / f"bbobexp_f{fid}.info").write_text("".join(blocks))
    r0 = next(iter(result.dimensions.values()))
    budgets = {d: r.budget for d, r in result.dimensions.items()}
    campaign = identity(
        alg, result.suite, np.unique(r0.fids), np.unique(r0.instances), budgets, hyperparameters
    )
    summary = {
        "strategy": alg,
        "suite": result.suite,
        "hyperparameters": campaign["hyperparameters"],
        "campaign": campaign,
        "dimensions": {str(d): _summary(r) for d, r in result.dimensions.items()},
    }
    (out / "campaign.json").write_text(json.dumps(summary))


def identity(strategy, suite, functions, instances, budgets: dict, hyperparameters: dict | None) -> dict:
    """What makes two campaigns write the same files: strategy, suite, functions, instances,
    each dimension's budget and the hyperparameters (as text)."""
    return {
        "strategy": strategy,
        "suite": suite,
        "functions": sorted(int(f) for f in functions),
        "instances": sorted(int(i) for i in instances),
        "budgets": {str(d): int(b) for d, b in sorted(budgets.items())},
        "hyperparameters": {k: str(v) for k, v in sorted((hyperparameters or {}).items())},
    }


def check_out(out: str | Path, campaign: dict) -> None:
    """Refuse to write ``campaign`` (an :func:`identity`) into ``out`` unless ``out`` is absent,
    empty, or holds the same campaign (a rerun, which replaces every file).

    Otherwise its ``.info``/``.dat`` files would stay beside the new ones, and cocopp would
    read both as one experiment: ``ValueError`` saying what differs.
    """
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"out directory {out} is a file, not a directory")
    if not any(out.iterdir()):
        return
    hint = f"use an empty or new directory (e.g. {out / campaign['strategy']})"
    path = out / "campaign.json"
    if not path.exists():
        raise ValueError(
            f"out directory {out} is not empty and holds no campaign.json: refusing to write a campaign "
            f"among files cocopp might read with it; {hint}"
        )
    try:
        old = json.loads(path.read_text()).get("campaign")
    except (ValueError, AttributeError):
        old = None
    if old == campaign:
        return
    if old is None:
        what = "a campaign of an earlier neuroevo (it does not say which)"
    else:
        diff = [f"{k} {old.get(k)!r} instead of {v!r}" for k, v in campaign.items() if old.get(k) != v]
        what = "another campaign: " + "; ".join(diff)
    raise ValueError(
        f"out directory {out} holds {what}. Its .info/.dat files would stay beside this campaign's and "
        f"cocopp would read them as one experiment; {hint}, or rerun the same campaign there"
    )


def start(out: str | Path, campaign: dict) -> None:
    """Mark ``out`` as holding ``campaign`` (before its files are written), so that an
    interrupted campaign can be rerun into it and no other campaign is written there."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "campaign.json").write_text(json.dumps({"campaign": campaign, "dimensions": {}}))


def _data_path(fid: int, dim: int) -> str:
    return f"data_f{fid}/bbobexp_f{fid}_DIM{dim}"


def _suite_of(r: DimensionResult) -> str:
    return "bbob-noisy" if int(r.fids[0]) in SUITES["bbob-noisy"] else "bbob"


def _summary(r: DimensionResult) -> dict:
    """A dimension's entry of campaign.json."""
    return {
        "fids": r.fids.tolist(),
        "instances": r.instances.tolist(),
        "budget": r.budget,
        "final_evals": r.final_evals.tolist(),
        "best_delta": r.best_delta.tolist(),
        "ecdf_hits": [[None if not np.isfinite(v) else int(v) for v in row] for row in r.ecdf_hits()],
        "seconds": r.seconds,
    }


def _load(directory: Path) -> dict:
    path = Path(directory) / "campaign.json"
    if not path.exists():
        raise ValueError(f"{directory}: no campaign.json (not a neuroevo bbob campaign directory)")
    return json.loads(path.read_text())


def plot_ecdf(directories: Sequence[str | Path], out: str | Path, dimension: int | None = None) -> list[Path]:
    """ECDF of (problem, target) pairs reached vs log10(evaluations / d), one curve per campaign.

    With ``dimension`` None, one PNG per dimension found (``out`` is then a
    directory, or a file name that gets ``_d<D>`` inserted). Returns the paths.
    """
    runs = [_load(d) for d in directories]
    dims = [dimension] if dimension is not None else sorted({int(d) for r in runs for d in r["dimensions"]})
    out = Path(out)
    suites = sorted({run.get("suite", "bbob") for run in runs})
    written = []
    for dim in dims:
        curves = [
            (f"{run['strategy']} ({Path(directory).name})", run["dimensions"][str(dim)])
            for directory, run in zip(directories, runs, strict=True)
            if str(dim) in run["dimensions"]
        ]
        if dimension is not None:
            path = out
        elif out.suffix == ".png":
            path = out.with_name(f"{out.stem}_d{dim}.png")
        else:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"ecdf_d{dim}.png"
        _ecdf_figure(curves, dim, suites, path)
        written.append(path)
    return written


def import_pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ecdf_figure(curves: list[tuple[str, dict]], dim: int, suites: list[str], path: Path) -> None:
    """One ECDF plot: ``curves`` are (label, a dimension's campaign.json entry)."""
    plt = import_pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, rd in curves:
        hits = np.array([[np.inf if v is None else v for v in row] for row in rd["ecdf_hits"]], float)
        x = np.log10(np.sort(hits[np.isfinite(hits)]) / dim)
        y = np.arange(1, x.size + 1) / hits.size
        xmax = math.log10(rd["budget"] / dim)
        ax.step(np.concatenate([[0], x, [xmax]]), np.concatenate([[0], y, [y[-1] if y.size else 0]]),
                where="post", label=label)  # fmt: skip
    ax.set_xlabel("log10(evaluations / dimension)")
    ax.set_ylabel("fraction of (function, target) pairs")
    ax.set_ylim(0, 1)
    ax.set_title(f"{', '.join(suites)}, dimension {dim}, 51 targets 1e2..1e-8")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.subplots_adjust(
        left=0.11, right=0.97, bottom=0.12, top=0.91
    )  # tight_layout's, without its extra draw
    fig.savefig(path, dpi=100)
    plt.close(fig)
