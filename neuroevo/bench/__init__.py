"""Benchmark campaigns (``ne.bench``): ``bbob_campaign`` runs a strategy on COCO's bbob suite."""

from neuroevo.bench.bbob import CampaignResult, bbob_campaign, ert, plot_ecdf

__all__ = ["CampaignResult", "bbob_campaign", "ert", "plot_ecdf"]
