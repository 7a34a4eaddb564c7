"""What a BBOB campaign measures: COCO's targets and evaluation counts, ERT, and the results
of a dimension and of a campaign (host-side NumPy; the on-device record is
:mod:`neuroevo.bench.record`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuroevo.bbob import NAMES, NOISY_NAMES

PRECISION = 1e-8
# .dat triggers: 10**(k/5) from 1e4 down to 1e-8 (COCO logs each first crossing)
LEVELS = 10.0 ** (np.arange(20, -41, -1) / 5.0)
ECDF_TARGETS = 10.0 ** (np.arange(10, -41, -1) / 5.0)  # 51 targets, 1e2 .. 1e-8
ERT_TARGETS = 10.0 ** np.arange(1, -9, -1.0)  # 1e1 .. 1e-8
_ECDF_IDX = np.arange(10, 61)  # ECDF_TARGETS[j] == LEVELS[10 + j]
_ERT_IDX = np.arange(15, 61, 5)  # ERT_TARGETS[j] == LEVELS[15 + 5 j]
SUITES = {"bbob": range(1, 25), "bbob-noisy": range(101, 131)}  # COCO's suite name -> function ids


def function_name(fid: int) -> str:
    """The name of BBOB function ``fid`` (noiseless or noisy)."""
    return NAMES[fid] if fid in NAMES else NOISY_NAMES[fid]


def tdat_evaluations(dim: int, budget: int) -> np.ndarray:
    """COCO's fixed evaluation counts: floor(10**(i/20)) and dim * {1, 2, 5} * 10**k, up to budget."""
    a = np.unique(np.floor(10.0 ** (np.arange(0, 20 * math.log10(budget) + 2) / 20.0)).astype(np.int64))
    b = [dim * m * 10**k for k in range(12) for m in (1, 2, 5)]
    e = np.unique(np.concatenate([a, np.array(b, np.int64)]))
    return e[(e >= 1) & (e <= budget)]


def ert(evals_to_hit: np.ndarray, final_evals: np.ndarray) -> float:
    """ERT = (evaluations of all runs until they hit the target, or ended) / (runs that hit it)."""
    evals_to_hit, final_evals = np.asarray(evals_to_hit, float), np.asarray(final_evals, float)
    hit = np.isfinite(evals_to_hit)
    if not hit.any():
        return math.inf
    return float(np.where(hit, evals_to_hit, final_evals).sum() / hit.sum())


@dataclass
class DimensionResult:
    """One dimension of a campaign; arrays are per problem (functions x instances, in that order)."""

    dimension: int
    fids: np.ndarray
    instances: np.ndarray
    fopt: np.ndarray
    budget: int
    hit_evals: np.ndarray  # (P, len(LEVELS)) first evaluation with f - fopt <= level, inf if none
    hit_delta: np.ndarray  # (P, len(LEVELS)) f - fopt of that evaluation
    first_delta: np.ndarray  # (P,) f - fopt of evaluation 1
    final_evals: np.ndarray  # (P,)
    best_delta: np.ndarray  # (P,)
    tdat_evals: np.ndarray  # (K,)
    tdat_best: np.ndarray  # (P, K) best f - fopt after tdat_evals[k] evaluations (nan if not reached)
    seconds: float  # wall time of the dimension, compilation included
    generations: int
    compile_seconds: float = 0.0
    # bbob-noisy: the measured (noisy) f - fopt: at each hit, best so far at each hit,
    # at evaluation 1, best of the run, best so far at tdat_evals (None: as the noise-free)
    hit_measured: np.ndarray | None = None
    hit_best_measured: np.ndarray | None = None
    first_measured: np.ndarray | None = None
    best_measured: np.ndarray | None = None
    tdat_best_measured: np.ndarray | None = None

    def ert_table(self) -> dict[int, list[float]]:
        """fid -> ERT for each of ERT_TARGETS."""
        out = {}
        for fid in np.unique(self.fids):
            m = self.fids == fid
            out[int(fid)] = [ert(self.hit_evals[m, i], self.final_evals[m]) for i in _ERT_IDX]
        return out

    def ecdf_hits(self) -> np.ndarray:
        """(P, 51) evaluations to each of ECDF_TARGETS (inf if missed)."""
        return self.hit_evals[:, _ECDF_IDX]


@dataclass
class CampaignResult:
    """A campaign: its strategy and suite, a :class:`DimensionResult` per dimension, where its
    files are (``out``, or None)."""

    strategy: str
    dimensions: dict[int, DimensionResult] = field(default_factory=dict)
    out: Path | None = None
    suite: str = "bbob"

    def solved(self, dimension: int | None = None) -> int:
        """Problems that reached 1e-8 (in ``dimension``, or in all)."""
        dims = [dimension] if dimension is not None else list(self.dimensions)
        return int(sum(np.isfinite(self.dimensions[d].hit_evals[:, -1]).sum() for d in dims))

    def problems(self) -> int:
        """Problems of the campaign, all dimensions."""
        return int(sum(len(r.fids) for r in self.dimensions.values()))
