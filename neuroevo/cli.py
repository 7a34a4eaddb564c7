"""The ``neuroevo`` command line.

neuroevo train --env CartPole-v1 --out runs/cartpole        # or: --config run.toml
neuroevo train --resume runs/cartpole                       # continue, bit for bit
neuroevo train --strategy cma_me --descriptor final_obs --out runs/qd   # quality-diversity: archive.png
neuroevo eval runs/cartpole --episodes 20 --gif cartpole.gif
neuroevo strategies
neuroevo sweep sweep.toml --out runs/sweep                  # configs x seeds, one compiled program
neuroevo bench bbob --strategy cma_es --dimensions 2,3,5 --instances 1-15 --budget-multiplier 1000 --out bbob/
neuroevo bench bbob --suite bbob-noisy --dimensions 2,5 --out bbob-noisy/   # f101-f130
neuroevo bench plot bbob/cma_es bbob/snes --out ecdf.png
neuroevo bench moo --problem zdt1 --strategy nsga2 --out moo/   # front.csv, history.csv, front.png
neuroevo nas --space cnn --strategy regularized_evolution --generations 10 --out runs/nas   # digits
"""

from __future__ import annotations

import argparse
import ast
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Any

SUPPRESS = argparse.SUPPRESS  # only flags given on the command line reach the config
LOG_HELP = "tensorboard or wandb (repeat, or a comma list): log every metric per generation under --out"


def _parse_hp(items: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs (from every ``--hp`` flag); values are Python literals (numbers, bools,
    None) or strings. A name given twice is an error."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--hp expects name=value, got {item!r}")
        name, value = item.split("=", 1)
        if not name:
            raise ValueError(f"--hp expects name=value, got {item!r}")
        if name in out:
            raise ValueError(f"--hp {name} is given twice; give each hyperparameter once")
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = value
    return out


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"func", "command", "config", "out", "resume", "quiet", "log"}
    overrides = {k: v for k, v in vars(args).items() if k not in skip}
    if "hp" in overrides:
        overrides["hp"] = _parse_hp(overrides["hp"])
    return overrides


def train(args: argparse.Namespace) -> float:
    from neuroevo import rl

    overrides = _overrides(args)
    resume = getattr(args, "resume", None)
    if resume is not None:
        changed = sorted(set(overrides) - {"generations"})
        if changed or getattr(args, "config", None):
            raise ValueError(
                f"--resume continues a run with its own config; only --generations may change, "
                f"got {', '.join('--' + c.replace('_', '-') for c in changed) or '--config'}"
            )
        config = rl.load_config(resume)
        result = rl.train(
            config,
            out=resume,
            resume=True,
            progress=not args.quiet,
            log=getattr(args, "log", None),
            **overrides,
        )
    else:
        result = rl.train(
            file=getattr(args, "config", None),
            out=getattr(args, "out", None),
            progress=not args.quiet,
            log=getattr(args, "log", None),
            **overrides,
        )
    if "final_eval_bits_per_char" in result.summary:
        loss, bits = -result.final_return, result.summary["final_eval_bits_per_char"]
        print(f"final validation loss: {loss:.4f} nats/char ({bits:.3f} bits/char)")
    else:
        print(f"final evaluation return: {result.final_return:.2f}{_yardsticks(result.summary)}")
    return result.final_return


def _yardsticks(summary: dict) -> str:
    """`` (reference R, random r)``: gymnax's reference return and a random policy's, where known."""
    parts = []
    if "reference_return" in summary:
        parts.append(f"reference {summary['reference_return']:g}")
    if "random_return" in summary:
        parts.append(f"random {summary['random_return']:.2f}")
    return f" ({', '.join(parts)})" if parts else ""


def evaluate(args: argparse.Namespace) -> float:
    from neuroevo import rl
    from neuroevo.rl import paths

    if args.gif:
        paths.check_output_file(args.gif, "--gif")
    value = rl.evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed, which=args.which)
    print(f"evaluation return ({args.which} policy): {value:.2f}")
    if args.gif:
        frames = rl.render_gif(args.run_dir, args.gif, which=args.which, seed=args.seed or 0)
        print(f"wrote {args.gif} ({frames} frames)")
    return value


def bench_bbob(args: argparse.Namespace) -> None:
    import math

    from neuroevo.rl import paths

    # Checked before the campaign runs (it writes only at its end).
    if not math.isfinite(args.budget_multiplier) or args.budget_multiplier <= 0:
        raise ValueError(
            f"--budget-multiplier must be a positive finite number, got {args.budget_multiplier}"
        )
    hp = _parse_hp(args.hp)
    paths.check_output_dir(args.out)
    from neuroevo.bench import bbob

    result = bbob.bbob_campaign(
        strategy=args.strategy,
        dimensions=bbob.parse_range(args.dimensions, "dimension"),
        instances=bbob.parse_range(args.instances, "instance"),
        functions=None if args.functions is None else bbob.parse_range(args.functions, "function"),
        suite=args.suite,
        budget_multiplier=args.budget_multiplier,
        out=args.out,
        seed=args.seed,
        progress=not args.quiet,
        **hp,
    )
    for dim, r in result.dimensions.items():
        print(f"d={dim}: {result.solved(dim)}/{len(r.fids)} problems reached 1e-8 ({r.seconds:.1f} s)")
        print((result.out / f"ert_d{dim}.md").read_text())
    print(f"wrote COCO data, ERT tables and ECDF plots to {result.out}")


def bench_plot(args: argparse.Namespace) -> None:
    from neuroevo.bench import plot_ecdf

    for path in plot_ecdf(args.dirs, args.out):
        print(f"wrote {path}")


def bench_moo(args: argparse.Namespace) -> None:
    from neuroevo.bench import moo

    result = moo.moo_run(
        args.problem,
        args.strategy,
        popsize=args.popsize,
        generations=args.generations,
        seed=args.seed,
        n_var=args.n_var,
        n_objectives=args.n_objectives,
        out=args.out,
        **_parse_hp(args.hp),
    )
    final = {k: float(v[-1]) for k, v in result.history.items()}
    hv = f"hypervolume {final['hypervolume']:.6g}, " if "hypervolume" in final else ""
    print(
        f"{args.strategy} on {args.problem}: {len(result.front)} non-dominated members after "
        f"{args.generations} generations, {hv}IGD {final['igd']:.4g} ({result.seconds:.1f} s)"
    )
    print(f"wrote {result.out}/front.csv, history.csv and front.png")


def sweep(args: argparse.Namespace) -> None:
    from neuroevo.engine import sweep as engine_sweep
    from neuroevo.rl import paths
    from neuroevo.rl.sweep_file import sweep_file

    paths.check_output_dir(args.out)
    result = sweep_file(args.config, args.out, log=args.log)
    config, score = engine_sweep.best_config(result)
    print(
        f"{len(result.configs)} configs x {len(result.keys)} seeds in {result.seconds:.1f} s "
        f"({result.compilations} compilation)"
    )
    print(f"best config: {engine_sweep.label(config)} (final best fitness {score:.4g}, mean over seeds)")
    print(f"wrote {args.out}/sweep.csv and {args.out}/sweep.png")


def nas(args: argparse.Namespace) -> None:
    from neuroevo import nas_search

    data = None
    if args.data is not None:
        import numpy as np

        try:
            arrays = np.load(args.data)
        except (OSError, ValueError) as e:
            raise ValueError(f"--data {args.data!r} cannot be read as a .npz file of arrays: {e}") from None
        if "x" not in arrays or "y" not in arrays:
            raise ValueError(f"--data needs arrays named x and y, {args.data!r} holds {sorted(arrays)}")
        data = (arrays["x"], arrays["y"])
    result = nas_search.search(
        space=args.space,
        strategy=args.strategy,
        data=data,
        popsize=args.popsize,
        generations=args.generations,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_params=args.max_params,
        final_steps=args.final_steps,
        seed=args.seed,
        out=args.out,
        progress=not args.quiet,
        hp=_parse_hp(args.hp),
    )
    print(nas_search.summary(result))
    if args.out is not None:
        print(
            f"wrote {args.out}: candidates.csv, front.png, best_architecture.json, best_params.msgpack, "
            "metrics.csv"
        )


def add_nas_parser(sub) -> None:
    n = sub.add_parser(
        "nas",
        help="architecture search on digits (or --data): the accuracy/parameters front, the best network",
        description="Each generation's candidates are trained at once, in one vmapped program.",
    )
    n.add_argument("--space", default="cnn", choices=["cnn", "mlp"])
    n.add_argument(
        "--strategy", default="regularized_evolution", choices=["regularized_evolution", "nsga2", "random"]
    )
    n.add_argument("--popsize", type=int, default=16, help="candidates trained per generation")
    n.add_argument("--generations", type=int, default=10)
    n.add_argument("--steps", type=int, default=100, help="training steps per candidate")
    n.add_argument("--batch-size", type=int, default=32)
    n.add_argument("--learning-rate", type=float, default=1e-2)
    n.add_argument(
        "--max-params", type=int, default=None, help="EEEA-Net early exit: initial candidates' cap"
    )
    n.add_argument(
        "--final-steps", type=int, default=None, help="retraining of the best (default 4 x --steps)"
    )
    n.add_argument("--data", default=None, metavar="FILE.npz", help="arrays x (examples) and y (labels)")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--hp", nargs="*", default=[], metavar="NAME=VALUE", help="strategy hyperparameters")
    n.add_argument(
        "--out", default=None, help="run directory (an existing one continues from its checkpoint)"
    )
    n.add_argument("--quiet", action="store_true", help="no progress bar")
    n.set_defaults(func=nas)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuroevo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train",
        help="evolve a policy on a gymnax (or playground:NAME) environment",
        description="Settings come from the defaults, the env's preset, --config FILE, then flags.",
    )
    t.add_argument("--config", default=SUPPRESS, metavar="FILE", help="a TOML or YAML file of settings")
    t.add_argument(
        "--env",
        default=SUPPRESS,
        help="gymnax id (CartPole-v1, Breakout-MinAtar...), playground:NAME, or text / text:PATH "
        "(character-level language model: --hidden one width per GRU layer, --episodes windows "
        "per member, --max-steps window length)",
    )
    t.add_argument("--strategy", default=SUPPRESS, help="a name from `neuroevo strategies`")
    t.add_argument("--popsize", type=int, default=SUPPRESS)
    t.add_argument("--generations", type=int, default=SUPPRESS)
    t.add_argument("--seed", type=int, default=SUPPRESS)
    t.add_argument("--episodes", type=int, default=SUPPRESS, help="episodes per member per generation")
    t.add_argument("--eval-episodes", type=int, default=SUPPRESS, help="episodes of the final evaluation")
    t.add_argument(
        "--hidden", default=SUPPRESS, help="hidden layer widths, e.g. 32,32 ('' for none: a linear policy)"
    )
    t.add_argument("--network", default=SUPPRESS, choices=["mlp", "cnn"])
    t.add_argument("--max-steps", type=int, default=SUPPRESS, help="episode length cap")
    t.add_argument("--normalize-obs", action=argparse.BooleanOptionalAction, default=SUPPRESS)
    t.add_argument(
        "--descriptor",
        default=SUPPRESS,
        choices=["final_obs", "mean_obs"],
        help="behaviour descriptor for novelty search and quality-diversity strategies (e.g. cma_me)",
    )
    t.add_argument(
        "--chunk-size", type=int, default=SUPPRESS, help="members evaluated at once (memory bound)"
    )
    t.add_argument("--log-every", type=int, default=SUPPRESS, help="generations per compiled block")
    t.add_argument("--checkpoint-every", type=int, default=SUPPRESS, help="generations between checkpoints")
    t.add_argument(
        "--hp",
        nargs="*",
        action="extend",
        default=SUPPRESS,
        metavar="NAME=VALUE",
        help="strategy hyperparameters (the flag may be repeated)",
    )
    t.add_argument(
        "--out", default=SUPPRESS, help="run directory: config, metrics, plot, params, checkpoints"
    )
    t.add_argument(
        "--resume", default=SUPPRESS, metavar="DIR", help="continue the run in DIR from its checkpoint"
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--log", action="append", default=SUPPRESS, metavar="NAME", help=LOG_HELP)
    t.set_defaults(func=train)
    e = sub.add_parser("eval", help="re-evaluate a trained policy, optionally drawing a GIF")
    e.add_argument("run_dir", help="a directory written by `neuroevo train --out`")
    e.add_argument("--which", default="final", choices=["final", "best"], help="the policy to evaluate")
    e.add_argument("--episodes", type=int, default=None, help="default: the run's eval_episodes")
    e.add_argument("--seed", type=int, default=None, help="default: the run's (reproduces its summary)")
    e.add_argument("--gif", default=None, metavar="PATH", help="draw one episode to this GIF")
    e.set_defaults(func=evaluate)
    w = sub.add_parser(
        "sweep",
        help="run configs x seeds as one compiled program; write sweep.csv and sweep.png",
        description="CONFIG holds train settings plus seeds and a [grid] or [samples] table.",
    )
    w.add_argument("config", metavar="CONFIG", help="a TOML or YAML file")
    w.add_argument("--out", required=True, help="output directory")
    w.add_argument("--log", action="append", default=None, metavar="NAME", help=LOG_HELP)
    w.set_defaults(func=sweep)
    s = sub.add_parser("strategies", help="list the registered strategies and their hyperparameters")
    s.set_defaults(func=_list_strategies)
    b = sub.add_parser("bench", help="benchmark campaigns (bbob)").add_subparsers(dest="bench", required=True)
    bb = b.add_parser(
        "bbob", help="a strategy on COCO's bbob or bbob-noisy suite: COCO data, ERT tables, ECDF plots"
    )
    bb.add_argument("--strategy", default="cma_es", help="a name from `neuroevo strategies`")
    bb.add_argument("--dimensions", default="2,3,5,10,20,40", help="e.g. 2,3,5 or 2-5")
    bb.add_argument("--instances", default="1-15", help="e.g. 1-15")
    bb.add_argument("--suite", default="bbob", help="COCO suite: bbob (f1-f24) or bbob-noisy (f101-f130)")
    bb.add_argument(
        "--functions", default=None, help="function ids of the suite (default all), e.g. 1-24, 1,8 or 101-130"
    )
    bb.add_argument(
        "--budget-multiplier", type=float, default=1000, help="budget = N * dimension evaluations"
    )
    bb.add_argument("--seed", type=int, default=0)
    bb.add_argument(
        "--hp", nargs="*", action="extend", default=[], metavar="NAME=VALUE", help="strategy hyperparameters"
    )
    bb.add_argument(
        "--out",
        required=True,
        help="output directory (COCO data for cocopp + summary): new, empty, or holding the same campaign",
    )
    bb.add_argument("--quiet", action="store_true", help="no progress display")
    bb.set_defaults(func=bench_bbob)
    bp = b.add_parser("plot", help="ECDF of several campaigns on one plot per dimension")
    bp.add_argument("dirs", nargs="+", help="campaign directories written by `neuroevo bench bbob`")
    bp.add_argument("--out", required=True, help="a directory, or NAME.png (becomes NAME_d<D>.png)")
    bp.set_defaults(func=bench_plot)
    bm = b.add_parser(
        "moo", help="NSGA-II/III on a ZDT or DTLZ problem: front.csv, history.csv (HV, IGD), front.png"
    )
    bm.add_argument("--problem", default="zdt1", help="zdt1-zdt4, zdt6 or dtlz1-dtlz7")
    bm.add_argument("--strategy", default="nsga2", help="nsga2 or nsga3")
    bm.add_argument("--popsize", type=int, default=100)
    bm.add_argument("--generations", type=int, default=250)
    bm.add_argument("--seed", type=int, default=0)
    bm.add_argument("--n-var", type=int, default=None, help="variables (default: the problem's)")
    bm.add_argument("--n-objectives", type=int, default=None, help="DTLZ objectives (default 3)")
    bm.add_argument(
        "--hp", nargs="*", action="extend", default=[], metavar="NAME=VALUE", help="strategy hyperparameters"
    )
    bm.add_argument("--out", required=True, help="output directory")
    bm.set_defaults(func=bench_moo)
    add_nas_parser(sub)
    return parser


def _list_strategies(args: argparse.Namespace) -> None:
    import neuroevo as ne

    for name in ne.strategies.names():
        hp = ", ".join(f"{k}={v!r}" for k, v in ne.strategies.hyperparameters(name).items())
        print(f"{name}: {hp}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line each: ``warning: ...``."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            args.func(args)
    except (ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a further Ctrl-C: no traceback over the hint
        where = getattr(args, "resume", None) or getattr(args, "out", None)
        hint = f"; continue with: neuroevo train --resume {where}" if where else ""
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
