"""Per-environment training defaults: what ``neuroevo train --env ENV`` uses.

Keys are those of ``neuroevo.rl.DEFAULTS``; a preset overrides the global
defaults and is overridden by a config file and by flags. Each entry was
measured by ``benchmarks/rl.py`` (3 seeds, 10 evaluation episodes each); the
figures are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": {},
}
