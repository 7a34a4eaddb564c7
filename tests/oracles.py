"""Reference implementations the tests compare against (pycma, cocoex, cocopp, MuJoCo Playground...).

``require(name)`` imports one. Outside the project's test command a missing oracle skips the
tests that need it; ``./scripts/test`` installs every oracle and sets ``NEUROEVO_REQUIRE_ORACLES=1``,
so there a missing or broken oracle fails the run instead of silently skipping its tests.
"""

import importlib
import os

import pytest


def require(name: str):
    """Import module ``name``; skip if it is missing, unless oracles are required (then fail)."""
    if os.environ.get("NEUROEVO_REQUIRE_ORACLES") == "1":
        return importlib.import_module(name)
    return pytest.importorskip(name)
