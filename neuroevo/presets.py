"""Per-environment training defaults: what ``neuroevo train --env ENV`` uses.

Keys are those of ``neuroevo.rl.DEFAULTS``; a preset overrides the global
defaults and is overridden by a config file and by flags. Each entry was
measured by ``benchmarks/rl.py`` (3 seeds, 10 evaluation episodes each); the
figures are in ``benchmarks/RESULTS.md``.

The comments give the final evaluation return over seeds 0, 1 and 2 (mean /
worst) and the wall time of one run, compile included, on the project's
2-core CPU machine: quiet (the benchmarks/rl.py run of 2026-11-30), and while
it was shared with other jobs (the tuning runs). The runs are deterministic:
the tuning runs and the benchmark gave the same returns.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The global defaults (openai_es, popsize 256, 50 generations, 1 episode,
    # MLP 32x32, sigma 0.1, Adam 0.03) already solve it:
    # 500.0 / 500.0 (target 475); 6-13 s quiet, 33-39 s shared.
    "CartPole-v1": {},
    # Three episodes per member average out the random starts (the global
    # defaults gave -85.5, -88.2, -76.8): -78.6 / -81.6 (target -100);
    # 20-22 s quiet, 73-118 s shared.
    "Acrobot-v1": {"episodes": 3},
    # The swing-up is found by gradient estimates over 20 starts per member and a
    # large Adam step (0.125) with small noise (0.05), as in gymnax-blines' ES
    # agent; normalised observations. Every seed tried (0-5) swung up by
    # generation 100; a 500-episode evaluation of the final policies gives
    # -143 to -167, and 10 episodes scatter about +-40 around that.
    # -181.7 / -224.6 (target -250); 33-36 s quiet, 60-70 s shared.
    "Pendulum-v1": {
        "popsize": 100,
        "episodes": 20,
        "generations": 300,
        "normalize_obs": True,
        "hp": {"sigma": 0.05, "learning_rate": 0.125},
    },
    # Normalised observations make the policy see the ball: a lone 1 among 400
    # binary inputs becomes a large input (without them: 1.8 after 150
    # generations). No target: 10.5 / 6.6 (13.6, 11.4, 6.6) after 500
    # generations, about 1.3e7 env steps; 79-109 s quiet, 250-370 s shared.
    # Runs stall on plateaus where every member scores the same (seed 2 stays
    # at 6.6 to generation 900); weight decay 0.03/0.1, sigma 0.2, popsize 512,
    # Adam 0.01 and 2 episodes did not do better over the three seeds.
    "Breakout-MinAtar": {
        "generations": 500,
        "normalize_obs": True,
    },
    # Character-level language modelling (ne.tasks.text, a GRU of width 128 on the
    # stdlib sources): Adam 0.03 with sigma 0.1 diverges (the loss rises from
    # generation 100); Adam 0.01 with sigma 0.05 goes below the corpus's unigram
    # entropy within about 100 generations (benchmarks/lowrank_rl.py).
    "text": {
        "strategy": "eggroll",
        "hidden": (128,),
        "generations": 1000,
        "hp": {"sigma": 0.05, "learning_rate": 0.01},
    },
}
