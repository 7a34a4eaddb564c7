"""Archives from plain data: what a config file or a saved repertoire holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neuroevo.qd.archive import Archive, GridArchive
from neuroevo.qd.cvt import CVTArchive


def archive_from_config(config: Archive | Mapping[str, Any] | None, descriptor_dim: int = 2) -> Archive:
    """An archive from itself, from plain data (``Archive.config()``, or a config file's table
    ``{"cells": [...], "bounds": [...]}``; ``"kind": "cvt"`` with ``centroids`` or ``cells``
    for a CVT), or, for None, the default: a grid over ``[-1, 1]`` in each of
    ``descriptor_dim`` dimensions with about 4096 cells in all (64 x 64 in 2-D)."""
    if isinstance(config, Archive):
        return config
    if config is None:
        per_dim = max(2, int(round(4096 ** (1 / descriptor_dim))))
        return GridArchive((per_dim,) * descriptor_dim, ((-1.0, 1.0),) * descriptor_dim)
    if not isinstance(config, Mapping):
        raise ValueError(
            f"archive must be a GridArchive, a CVTArchive or a table like "
            f"{{'cells': [50, 50], 'bounds': [[-1, 1], [-1, 1]]}}, got {config!r}"
        )
    config = dict(config)
    kind = config.pop("kind", "cvt" if "centroids" in config else "grid")
    if kind == "grid":
        return GridArchive(**config)
    if kind == "cvt":
        return CVTArchive(**config)
    raise ValueError(f"unknown archive kind {kind!r}; valid: 'grid', 'cvt'")
