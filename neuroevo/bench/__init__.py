"""Benchmark campaigns (``ne.bench``): ``bbob_campaign`` runs a strategy on COCO's bbob suite."""

from neuroevo.bench.bbob import CampaignResult, bbob_campaign, ert, plot_ecdf
from neuroevo.bench.moo import MOOResult, moo_run

__all__ = ["CampaignResult", "MOOResult", "bbob_campaign", "ert", "moo_run", "plot_ecdf"]
