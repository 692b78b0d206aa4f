"""``nlp-cv-tricks ablate`` and ``nlp-cv-tricks lr-sweep`` (:func:`nlp_cv_tricks.ablate.ablate`,
:func:`nlp_cv_tricks.ablate.lr_sweep`). Everything after RECIPE is parsed by :func:`ablate_parser` /
:func:`lr_sweep_parser` with ``parse_intermixed_args``, so options and ``key=value`` overrides can come in any order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from ._args import add_executor_args

__all__ = ["add_cli", "ablate_parser", "lr_sweep_parser", "main"]


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (recipe seed, +1, ...); default 3")
    p.add_argument("--seed-list", default=None, help="explicit comma-separated seeds (instead of --seeds)")
    p.add_argument("--out", default=None, help="output directory (default runs/ablate/<recipe file name>, "
                                                "lr-sweep: runs/ablate/<recipe file name>-lr-sweep)")
    p.add_argument("--in-process", action="store_true", help="train in this process instead of one subprocess "
                                                             "per run")
    p.add_argument("--launcher", default=None, help='prefix for the per-run subprocess, e.g. "accelerate launch '
                                                    '--num_processes 2" (default: this python)')
    p.add_argument("--report", choices=("best", "last"), default="best",
                   help="metric of a run: best evaluation (default) or last evaluation")
    p.add_argument("--force", action="store_true", help="redo runs that already have a result")
    add_executor_args(p)


def ablate_parser() -> argparse.ArgumentParser:
    """Options of ``ablate`` after RECIPE (options and key=value overrides may be intermixed)."""
    p = argparse.ArgumentParser(prog="nlp-cv-tricks ablate RECIPE", add_help=True)
    _common_args(p)
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                   help="one variant per value; tricks=+fgm,+rdrop,-label_smoothing,+focal_loss{gamma: 1}; "
                        "recipe=other.yaml,... (other recipe files, the same overrides); repeatable")
    p.add_argument("--grid", action="store_true", help="cartesian product of the --vary axes")
    p.add_argument("--save-models", action="store_true", help="keep output.save_best of the recipe")
    return p


def lr_sweep_parser() -> argparse.ArgumentParser:
    """Options of ``lr-sweep`` after RECIPE."""
    p = argparse.ArgumentParser(prog="nlp-cv-tricks lr-sweep RECIPE", add_help=True)
    _common_args(p)
    p.set_defaults(seeds=1)
    p.add_argument("--start", type=float, default=0.01,
                   help="first learning rate (default 0.01, the tip's start; for pretrained transformers start "
                        "near 1e-4)")
    p.add_argument("--factor", type=float, default=0.5, help="multiplier between learning rates (default 0.5)")
    p.add_argument("--min-lr", type=float, default=1e-7, help="stop below this learning rate (default 1e-7)")
    p.add_argument("--patience", type=int, default=1, help="learning rates without improvement before stopping")
    return p


def _seed_arg(args):
    return [int(s) for s in args.seed_list.split(",")] if args.seed_list else args.seeds


def _executor(a):
    """The executor of ``--executor`` (a bad setting is an :class:`AblateError`: ``error: ...``, exit code 2)."""
    from ..experiments.variants import AblateError
    from ..utils.executors import ExecutorError
    from ._args import executor_from_args

    try:
        return executor_from_args(a, fresh_process=not a.in_process)
    except ExecutorError as e:
        raise AblateError(str(e)) from None


def _cmd_ablate(args) -> int:
    from .. import ablate as run
    from ..experiments.variants import AblateError

    a = ablate_parser().parse_intermixed_args(args.rest)
    if not a.vary:
        raise AblateError("give at least one --vary KEY=V1,V2 (e.g. --vary tricks=+fgm,+rdrop)")
    from ..utils.executors import GridInterrupted

    try:
        with _executor(a) as ex:
            res = run.ablate(args.recipe, a.vary, _seed_arg(a), a.overrides, a.out, a.grid, a.in_process, a.launcher,
                         a.report, a.force, a.save_models, executor=ex)
    except GridInterrupted as e:
        print(f"\n{e}", file=sys.stderr)
        return 130
    print()
    print(res.markdown)
    print(f"written to {Path(res.out_dir) / 'ablation.md'} and ablation.json")
    return 0 if all(s.failed == 0 for s in res.summaries) else 1


def _cmd_lr_sweep(args) -> int:
    from .. import ablate as run

    a = lr_sweep_parser().parse_intermixed_args(args.rest)
    from ..utils.executors import GridInterrupted

    try:
        with _executor(a) as ex:
            res = run.lr_sweep(args.recipe, _seed_arg(a), a.start, a.factor, a.min_lr, a.patience, a.overrides, a.out,
                           a.in_process, a.launcher, a.report, a.force, executor=ex)
    except GridInterrupted as e:
        print(f"\n{e}", file=sys.stderr)
        return 130
    print()
    print(res.markdown)
    print(f"written to {Path(res.out_dir) / 'ablation.md'} and ablation.json")
    return 0


class _InnerHelp(argparse.Action):
    """``--help`` of ``ablate``/``lr-sweep``: the help of the parser that reads what follows RECIPE."""

    def __init__(self, option_strings, dest, inner, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)
        self.inner = inner

    def __call__(self, parser, namespace, values, option_string=None):
        self.inner().print_help()
        parser.exit()


def add_cli(subparsers) -> None:
    """Add the ``ablate`` and ``lr-sweep`` subcommands (the CLI's verb table names this function)."""
    for name, helptext, inner, func in (
        ("ablate", "baseline vs variants over N seeds: mean ± std, paired deltas, time, memory (resumable)",
         ablate_parser, _cmd_ablate),
        ("lr-sweep", "learning-rate halving search from --start until the dev metric stops improving",
         lr_sweep_parser, _cmd_lr_sweep),
    ):
        # --help prints the inner parser's help: one usage block, every option (the outer parser only takes
        # RECIPE and passes the rest on)
        p = subparsers.add_parser(name, help=helptext, add_help=False)
        p.add_argument("-h", "--help", action=_InnerHelp, inner=inner, help="show this help message and exit")
        p.add_argument("recipe", help="recipe YAML")
        p.add_argument("rest", nargs=argparse.REMAINDER, help="options and key=value overrides (see above)")
        p.set_defaults(func=func)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``ablate`` / ``lr-sweep`` alone (``python -m nlp_cv_tricks.cli.ablate ablate RECIPE ...``)."""
    from ..config import RecipeError

    parser = argparse.ArgumentParser(prog="python -m nlp_cv_tricks.cli.ablate")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args) or 0)
    except (RecipeError, FileNotFoundError) as e:  # AblateError is a RecipeError
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
