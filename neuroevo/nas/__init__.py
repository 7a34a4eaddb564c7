"""Neural architecture search (``ne.nas``): search spaces as fixed-capacity supernets.

- Spaces: :class:`CNNSpace`, :class:`MLPSpace` (``sample``, ``build``, ``count_params``,
  ``flops``; masks over one maximal network, so a population is one ``vmap``).
- Training: :func:`train_population` (every member trained at once), :func:`train_supernet`
  and :func:`score` (the one-shot variant); the task is :func:`neuroevo.tasks.nas`.
- :func:`early_exit` (EEEA-Net's initial population under a parameter threshold) and
  :func:`random_search` (the baseline).
- Data: :func:`digits` (scikit-learn's, fixed split), :class:`Dataset`.
- :mod:`pruning`: per-layer magnitude-pruning levels under a global budget (EvoPress's
  space; the search is :func:`neuroevo.compress.evopress`).
"""

from neuroevo.nas import pruning
from neuroevo.nas.data import Dataset, as_dataset, digits, split
from neuroevo.nas.early_exit import early_exit, sample_within
from neuroevo.nas.random_search import RandomSearchState, random_search
from neuroevo.nas.spaces import ACTIVATIONS, Architecture, Block, BlockSpace, CNNSpace, Gene, MLPSpace
from neuroevo.nas.training import score, train_network, train_population, train_supernet

__all__ = [
    "ACTIVATIONS",
    "Architecture",
    "Block",
    "BlockSpace",
    "CNNSpace",
    "Dataset",
    "Gene",
    "MLPSpace",
    "RandomSearchState",
    "as_dataset",
    "digits",
    "early_exit",
    "pruning",
    "random_search",
    "sample_within",
    "score",
    "split",
    "train_network",
    "train_population",
    "train_supernet",
]
