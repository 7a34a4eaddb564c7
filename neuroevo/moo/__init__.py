"""Multi-objective building blocks (``ne.moo``), free of any strategy: Pareto dominance,
non-dominated sorting and crowding distance (exact, on device), hypervolume (exact for 2 and 3
objectives) and IGD, and Das-Dennis reference directions. Every objective is maximised; NaN is worst.
"""

from neuroevo.moo import ordering
from neuroevo.moo.dominance import crowding_distance, dominates, non_dominated_ranks
from neuroevo.moo.indicators import check_reference, hypervolume, igd
from neuroevo.moo.reference import das_dennis, partitions_for, perpendicular_distances

__all__ = [
    "check_reference",
    "crowding_distance",
    "das_dennis",
    "dominates",
    "hypervolume",
    "igd",
    "non_dominated_ranks",
    "ordering",
    "partitions_for",
    "perpendicular_distances",
]
