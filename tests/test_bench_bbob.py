"""ne.bench.bbob_campaign: COCO files that cocopp reads, exact hit counts, ERT, CLI errors."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from oracles import require

from neuroevo import cli
from neuroevo.bench import bbob as bench_bbob
from neuroevo.bench import coco_files, parallel
from neuroevo.bench.program import Job

FIDS, INSTANCES, DIM = (1, 2, 8), (1, 2), 2


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    out = tmp_path_factory.mktemp("bbob") / "cma_es"
    result = bench_bbob.bbob_campaign(
        "cma_es", (DIM,), INSTANCES, FIDS, budget_multiplier=200, out=out, seed=0, progress=False
    )
    return result, out


def test_files_written(campaign):
    result, out = campaign
    r = result.dimensions[DIM]
    assert r.final_evals.max() <= 400 and r.final_evals.min() > 0
    assert np.isfinite(r.hit_evals[r.fids == 1, -1]).all()  # the sphere reaches 1e-8
    for fid in FIDS:
        info = (out / f"bbobexp_f{fid}.info").read_text().splitlines()
        assert info[0].startswith(f"suite = 'bbob', funcId = {fid}, DIM = {DIM}")
        assert info[2].startswith(f"data_f{fid}/bbobexp_f{fid}_DIM{DIM}.dat, 1:")
        for ext in ("dat", "tdat"):
            text = (out / f"data_f{fid}/bbobexp_f{fid}_DIM{DIM}.{ext}").read_text()
            assert text.count("% f evaluations") == len(INSTANCES)
    for name in (f"ert_d{DIM}.md", f"ert_d{DIM}.csv", f"ecdf_d{DIM}.png", "campaign.json"):
        assert (out / name).stat().st_size > 0


def test_hits_agree_with_trace(campaign):
    """Two on-device records computed independently: level crossings (argmax) and the
    best-so-far at the .tdat evaluation counts (cummin); and the crossings as evaluated."""
    r = campaign[0].dimensions[DIM]
    for p in range(len(r.fids)):
        for k, e in enumerate(r.tdat_evals):
            if e > r.final_evals[p]:
                continue
            reached = r.tdat_best[p, k] <= bench_bbob.LEVELS
            np.testing.assert_array_equal(reached, r.hit_evals[p] <= e)
        hit = np.isfinite(r.hit_evals[p])
        assert (r.hit_delta[p, hit] <= bench_bbob.LEVELS[hit]).all()
        assert (np.diff(r.hit_evals[p, hit]) >= 0).all()
        if r.final_evals[p] in r.tdat_evals:
            assert r.tdat_best[p, list(r.tdat_evals).index(r.final_evals[p])] == r.best_delta[p]


def test_cocopp_reads_and_processes(campaign, tmp_path):
    cocopp = require("cocopp")
    result, out = campaign
    r = result.dimensions[DIM]
    # cocopp's reader: evaluations to the targets equal ours, run by run
    dsl = cocopp.load(str(out))
    assert len(dsl) == len(FIDS)
    for ds in dsl:
        rows = np.flatnonzero(r.fids == ds.funcId)
        assert sorted(ds.instancenumbers) == list(INSTANCES)
        targets = [1e1, 1e-1, 1e-3, 1e-8]
        got = ds.detEvals(targets)
        for t, evals in zip(targets, got, strict=True):
            j = int(np.argmin(np.abs(bench_bbob.LEVELS - t)))
            order = np.argsort(r.instances[rows])
            mine = r.hit_evals[rows[order], j]
            np.testing.assert_array_equal(np.nan_to_num(np.asarray(evals, float), nan=np.inf), mine)
    # the pages, on f1 alone (cocopp takes ~10 s per function)
    one = tmp_path / "cma_es"
    (one / "data_f1").mkdir(parents=True)
    shutil.copy(out / "bbobexp_f1.info", one)
    shutil.copy(out / f"data_f1/bbobexp_f1_DIM{DIM}.dat", one / "data_f1")
    shutil.copy(out / f"data_f1/bbobexp_f1_DIM{DIM}.tdat", one / "data_f1")
    cocopp.main(f"--no-svg -o {tmp_path / 'pp'} {one}")
    pages = list((tmp_path / "pp").rglob("*.html"))
    assert any(p.name == "index.html" for p in pages) and len(pages) > 3


def test_ert_hand_example():
    # three runs: hit at 100 and 300; the third ends unsuccessful after 1000
    assert bench_bbob.ert([100, 300, np.inf], [150, 400, 1000]) == pytest.approx((100 + 300 + 1000) / 2)
    assert bench_bbob.ert([np.inf, np.inf], [10, 20]) == math.inf
    assert bench_bbob.ert([5], [5]) == 5.0


def test_ert_table_matches_definition(campaign):
    r = campaign[0].dimensions[DIM]
    table = r.ert_table()
    for fid, row in table.items():
        m = r.fids == fid
        j = int(np.argmin(np.abs(bench_bbob.LEVELS - 1e-2)))
        hits = r.hit_evals[m, j]
        expected = (
            np.where(np.isfinite(hits), hits, r.final_evals[m]).sum() / np.isfinite(hits).sum()
            if np.isfinite(hits).any()
            else math.inf
        )
        assert row[3] == pytest.approx(expected)


def test_parse_range():
    assert bench_bbob.parse_range("1-3,5") == [1, 2, 3, 5]
    assert bench_bbob.parse_range("2") == [2]
    for bad in ("1-", "a", "3-1", ""):
        with pytest.raises(ValueError):
            bench_bbob.parse_range(bad)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--strategy", "nope"], "unknown strategy"),
        (["--dimensions", "1"], "dimension"),
        (["--instances", "0"], "instance"),
        (["--functions", "25"], "function id"),
        (["--instances", "1-x"], "bad instance range"),
    ],
)
def test_cli_bad_input(argv, message, tmp_path, capsys):
    assert cli.main(["bench", "bbob", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_plot_several(campaign, tmp_path):
    _, out = campaign
    paths = bench_bbob.plot_ecdf([out, out], tmp_path / "ecdf.png")
    assert [p.name for p in paths] == [f"ecdf_d{DIM}.png"] and paths[0].stat().st_size > 0


NOISY_FIDS = (101, 104)


@pytest.fixture(scope="module")
def noisy_campaign(tmp_path_factory):
    out = tmp_path_factory.mktemp("bbob-noisy") / "cma_es"
    result = bench_bbob.bbob_campaign(
        "cma_es", (DIM,), INSTANCES, NOISY_FIDS, budget_multiplier=100, out=out, progress=False,
        suite="bbob-noisy",
    )  # fmt: skip
    return result, out


def test_noisy_campaign_files_and_cocopp(noisy_campaign, tmp_path):
    """bbob-noisy: COCO's noisy observer format (suite and logger 'bbob-noisy'); records use the
    noise-free f - fopt, the measured columns the noisy values; cocopp reads and processes it."""
    cocopp = require("cocopp")
    result, out = noisy_campaign
    r = result.dimensions[DIM]
    assert r.final_evals.max() <= 200 and r.best_measured is not None
    for fid in NOISY_FIDS:
        info = (out / f"bbobexp_f{fid}.info").read_text().splitlines()
        assert info[0].startswith(f"suite = 'bbob-noisy', funcId = {fid}, DIM = {DIM}")
        assert "logger = 'bbob-noisy'" in info[0]
        runs = (out / f"data_f{fid}/bbobexp_f{fid}_DIM{DIM}.dat").read_text().split("% f evaluations")[1:]
        assert len(runs) == len(INSTANCES)
        for run in runs:  # best noise-free f - fopt and best measured f only fall, run by run
            rows = np.array([[float(v) for v in line.split()] for line in run.splitlines()[1:]])
            assert rows[0, 0] == 1 and (np.diff(rows[:, 0]) > 0).all()
            assert (np.diff(rows[:, 2]) <= 0).all() and (np.diff(rows[:, 4]) <= 0).all()
    dsl = cocopp.load(str(out))
    assert sorted(ds.funcId for ds in dsl) == list(NOISY_FIDS)
    for ds in dsl:
        rows = np.flatnonzero(r.fids == ds.funcId)
        got = ds.detEvals([1e-1])[0]
        j = int(np.argmin(np.abs(bench_bbob.LEVELS - 1e-1)))
        mine = r.hit_evals[rows[np.argsort(r.instances[rows])], j]
        np.testing.assert_array_equal(np.nan_to_num(np.asarray(got, float), nan=np.inf), mine)
    one = tmp_path / "cma_es"
    (one / "data_f101").mkdir(parents=True)
    shutil.copy(out / "bbobexp_f101.info", one)
    for ext in ("dat", "tdat"):
        shutil.copy(out / f"data_f101/bbobexp_f101_DIM{DIM}.{ext}", one / "data_f101")
    cocopp.main(f"--no-svg -o {tmp_path / 'pp'} {one}")
    assert any(p.name == "index.html" for p in (tmp_path / "pp").rglob("*.html"))


def test_bad_suite_names_the_valid_ones():
    with pytest.raises(ValueError, match="bbob-noisy"):
        bench_bbob.bbob_campaign("cma_es", (2,), (1,), suite="bbob-largescale", progress=False)
    with pytest.raises(ValueError, match="101"):
        bench_bbob.bbob_campaign("cma_es", (2,), (1,), (1,), suite="bbob-noisy", progress=False)


def test_processes_match_threads():
    """One process per dimension (the CPU default) gives the same campaign as threads."""
    kw = dict(dimensions=(2, 3), instances=(1, 2), functions=(1, 8), budget_multiplier=400, progress=False)
    a = bench_bbob.bbob_campaign("cma_es", processes=True, **kw)
    b = bench_bbob.bbob_campaign("cma_es", processes=False, **kw)
    for d in (2, 3):
        ra, rb = a.dimensions[d], b.dimensions[d]
        np.testing.assert_array_equal(ra.hit_evals, rb.hit_evals)
        np.testing.assert_array_equal(ra.final_evals, rb.final_evals)
        np.testing.assert_array_equal(ra.tdat_best, rb.tdat_best)
    assert np.isfinite(a.dimensions[2].hit_evals[a.dimensions[2].fids == 1, -1]).all()


def test_bad_hyperparameter_raises_before_any_process():
    with pytest.raises(ValueError, match="restarts"):
        bench_bbob.bbob_campaign("cma_es", (2, 3), (1,), (1,), 10, progress=False, restarts="sometimes")


def test_failed_dimension_process_reports_its_error():
    job = Job("no_such_strategy", 2, [1], [1], 20, 0, {}, 10)  # only the worker sees it (no early check)
    with pytest.raises(RuntimeError, match="(?s)dimension's process failed.*no_such_strategy"):
        parallel.in_processes({2: job}, lambda *a: None, lambda r: None)


def test_forked_worker_in_a_fresh_process_matches_threads():
    """A process that has not started a JAX backend forks the campaign's worker (no new
    interpreter): same campaign as threads."""
    import json
    import subprocess
    import sys

    code = (
        "import json, numpy as np\n"
        "from neuroevo.bench import bbob as bench_bbob\n"
        "from neuroevo.bench import parallel\n"
        "assert not parallel.backend_started()\n"
        "r = bench_bbob.bbob_campaign('cma_es', (2, 3), (1, 2), (1, 8), 100,"
        " progress=False, processes=True)\n"
        "assert not parallel.backend_started()  # the parent never started one\n"
        "hits = {d: np.nan_to_num(r.dimensions[d].hit_evals, posinf=-1).tolist() for d in (2, 3)}\n"
        "print(json.dumps(hits))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    forked = json.loads(out.stdout.strip().splitlines()[-1])
    threads = bench_bbob.bbob_campaign("cma_es", (2, 3), (1, 2), (1, 8), 100, progress=False, processes=False)
    for d in (2, 3):
        np.testing.assert_array_equal(
            forked[str(d)], np.nan_to_num(threads.dimensions[d].hit_evals, posinf=-1)
        )


# --------------------------------------------------------------------------- #
# any strategy that searches a flat real vector; the others refused up front


def host_loop(name, dim, fids, instances, budget, seed=0):
    """The campaign's protocol for a strategy without restarts or the live capability,
    written as a plain loop of one problem at a time: (final evaluations, best f - fopt)."""
    import jax
    import jax.numpy as jnp

    from neuroevo import strategies
    from neuroevo.bbob import function

    hp = bench_bbob.campaign_hyperparameters(name, dim, budget, {})
    strategy = strategies.make(name, **hp)
    problems = [(f, i) for f in fids for i in instances]
    P = len(problems)
    key = jax.random.fold_in(jax.random.key(seed), dim)
    k0, k1 = jax.random.split(key)
    x0 = jax.random.uniform(k0, (P, dim), jnp.float64, -4.0, 4.0)
    loop_key = jax.random.fold_in(key, 1)
    finals, bests = [], []
    for p, (fid, inst) in enumerate(problems):
        f = function(fid, dim, inst)
        state = strategy.init(jax.random.split(k1, P)[p], x0[p])
        evaluations, best, g = 0, np.inf, 0
        while evaluations < budget and best > bench_bbob.PRECISION:
            k_ask, k_tell = jax.random.split(jax.random.fold_in(loop_key, g))
            genotypes, state = strategy.ask(jax.random.split(k_ask, P)[p], state)
            delta = f.raw(jax.vmap(strategy.decode, in_axes=(None, 0))(state, genotypes))
            n = min(len(delta), budget - evaluations)
            best = min(best, float(np.min(np.asarray(delta)[:n])))
            evaluations += n
            state = strategy.tell(jax.random.split(k_tell, P)[p], state, genotypes, -delta)
            g += 1
        finals.append(evaluations)
        bests.append(best)
    return np.array(finals), np.array(bests)


@pytest.mark.parametrize("name", ["openai_es", "snes", "evosax:SNES"])
def test_any_flat_vector_strategy_runs_a_campaign(name, tmp_path):
    """The generic path (no live capability): the campaign equals the same protocol written as
    a plain loop over problems, and writes COCO files."""
    import jax

    fids, instances, budget = (1, 8), (1, 2), 150
    result = bench_bbob.bbob_campaign(
        name, (DIM,), instances, fids, budget / DIM, out=tmp_path / name, progress=False, processes=False
    )
    r = result.dimensions[DIM]
    with jax.enable_x64(True):
        finals, bests = host_loop(name, DIM, fids, instances, budget)
    np.testing.assert_array_equal(r.final_evals, finals)
    # (vmapped over problems or not, the strategies' float32 parts round differently)
    np.testing.assert_allclose(r.best_delta, bests, rtol=1e-6)
    assert (out := tmp_path / name / "bbobexp_f8.info").exists() and f"algId = '{name}'" in out.read_text()


@pytest.mark.parametrize(
    "name, message",
    [("neat", "does not search a flat real vector"), ("ns_es", "needs behaviour descriptors")],
)
def test_strategies_without_flat_vectors_are_refused_up_front(name, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        bench_bbob.bbob_campaign(name, (2,), (1,), (1,), 10, out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing written


# --------------------------------------------------------------------------- #
# --out: one campaign per directory


def test_out_with_another_campaign_is_refused(campaign, tmp_path, capsys):
    """A second campaign into an existing one's directory would leave the first one's .info/.dat
    files beside its own (cocopp reads them as one experiment): refused, saying what differs,
    before anything is compiled or written; the same campaign may be rerun there."""
    _, out = campaign
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(ValueError, match="(?s)another campaign: strategy 'cma_es' instead of 'snes'.*cocopp"):
        bench_bbob.bbob_campaign("snes", (DIM,), INSTANCES, FIDS, 200, out=out, progress=False)
    with pytest.raises(ValueError, match="instances"):
        bench_bbob.bbob_campaign("cma_es", (DIM,), (1, 2, 3), FIDS, 200, out=out, progress=False, seed=0)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    args = ["bench", "bbob", "--strategy", "snes", "--dimensions", str(DIM), "--out", str(out), "--quiet"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "another campaign" in err
    # the same campaign again is allowed (it replaces every file)
    same = coco_files.identity("cma_es", "bbob", FIDS, INSTANCES, {DIM: 200 * DIM}, {})
    coco_files.check_out(out, same)
    # a directory of other files is refused too
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no campaign.json"):
        bench_bbob.bbob_campaign("cma_es", (DIM,), INSTANCES, FIDS, 200, out=other, progress=False)
