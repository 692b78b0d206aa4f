"""``nlp-cv-tricks hardcases mine|export|import|retrain|loop|versions``; wire with ``add_cli(subparsers)``.

Also runnable alone: ``python -m nlp_cv_tricks.cli.hardcases mine|export|...`` (the fold processes of
``mine --jobs N`` use ``python -m nlp_cv_tricks.cli.hardcases mine ... --fold k``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ._args import parse_args_with_overrides


def _recipe(args):
    from ..config import load_recipe

    return load_recipe(args.recipe, list(args.overrides or []))


def _print(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def cmd_mine(args) -> int:
    from ..hardcases.importer import VersionStore
    from ..hardcases.mine import mine

    recipe = _recipe(args)
    ids = None
    if args.version:
        store = VersionStore(args.versions_dir, recipe)
        recipe = store.recipe_for(args.version)
        ids = store.ids(args.version)
    from ..utils.executors import GridInterrupted
    from ._args import executor_from_args
    from ..hardcases.mine import FoldsFailed

    try:
        # --fold k trains that fold here, whatever the executor
        with executor_from_args(args if args.fold is None else _local_args(args), workers=args.jobs) as ex:
            res = mine(recipe, args.out, folds=args.folds, seed=args.seed, ids=ids, fold=args.fold, jobs=args.jobs,
                       keep_models=args.keep_models, use_cleanlab=False if args.no_cleanlab else None, executor=ex)
    except GridInterrupted as e:
        print(f"\n{e}", file=sys.stderr)
        return 130
    except FoldsFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if res is not None:
        _print(res.summary)
    return 0


def _local_args(args):
    return argparse.Namespace(**{**vars(args), "executor": "local", "ray_address": None, "gpus_per_run": 0})


def cmd_export(args) -> int:
    from ..hardcases.export import export_hard_cases

    _print(export_hard_cases(args.mine_dir, args.out, top=args.top, budget=args.budget, by=args.by,
                             only_issues=args.only_issues, name=args.name, image_url_prefix=args.image_url_prefix))
    return 0


def cmd_import(args) -> int:
    from ..hardcases.importer import import_annotations

    rep = import_annotations(args.files, _recipe(args), args.versions_dir, base=args.base, rule=args.rule,
                             priority=args.priority.split(",") if args.priority else (),
                             default_annotator=args.annotator)
    _print(rep)
    return 0


def cmd_versions(args) -> int:
    from ..hardcases.importer import VersionStore

    if not Path(args.versions_dir).is_dir():
        raise FileNotFoundError(f"--versions-dir {args.versions_dir} does not exist (no version was imported there)")
    store = VersionStore(args.versions_dir, _recipe(args))
    if args.drop:
        store.drop(args.drop)
        print(f"dropped {args.drop}")
        return 0
    for n in store.names():
        m = store.manifest(n)
        print(f"{n}  parent={m.get('parent') or 'v0'}  created={m['created']}  n={m['n_examples']}  "
              f"counts={m['counts']}  conflicts={len(m['conflicts'])}")
        over = store.overrides(n)
        print("    train on it with: " + " ".join(shlex.quote(f"{k}={_yaml_value(v)}") for k, v in over.items()))
    return 0


def cmd_retrain(args) -> int:
    from ..hardcases.retrain import retrain

    _print(retrain(_recipe(args), args.versions_dir, args.version, args.out, emphasis=args.emphasis,
                   factor=args.factor))
    return 0


def cmd_loop(args) -> int:
    from ..hardcases.loop import HardCaseLoop, summary_table

    lp = HardCaseLoop(_recipe(args), args.workdir, folds=args.folds, top=args.top, budget=args.budget,
                      by=args.by, emphasis=args.emphasis, factor=args.factor, rule=args.rule,
                      priority=args.priority.split(",") if args.priority else (), jobs=args.jobs)
    st = lp.step(args.annotations or None)
    print(summary_table(st["rounds"]))
    # the next command repeats every option given now (the loop does not store them)
    defaults = {"folds": 5, "top": None, "budget": 0.1, "by": "error", "emphasis": "none", "factor": 2.0,
                "rule": "majority", "priority": "", "jobs": 1}
    opts = [f"--{k} {shlex.quote(str(getattr(args, k)))}" for k, d in defaults.items() if getattr(args, k) != d]
    over = [shlex.quote(o) for o in (args.overrides or [])]
    cmd = " ".join(["nlp-cv-tricks hardcases loop", shlex.quote(str(args.recipe)), *over, "--workdir",
                    shlex.quote(str(args.workdir)), *opts, "--annotations <file>"])
    print(f"round {st['round']}: annotate {st['export'].get('csv')} (or the Label Studio file), then run\n  {cmd}")
    return 0


def _yaml_value(v) -> str:
    import yaml

    text = yaml.safe_dump(v, default_flow_style=True, width=10**9).strip()
    return text.removesuffix("...").strip()


def _guard(fn):
    def run(args) -> int:
        from ..utils.io import WriteError
        from ..hardcases.importer import ImportValidationError

        try:
            return fn(args)
        except (ImportValidationError, ValueError, FileNotFoundError, FileExistsError, WriteError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return run


_VERSIONS_HELP = "directory of the dataset versions (default hardcases/versions)"
_BY_HELP = "rank by error (likely label errors first; default) or by difficulty"
_RULE_HELP = ("how several annotations of one example are merged: majority (default), latest, first, priority "
              "(--priority order) or strict (disagreement is an error)")
_EMPHASIS_HELP = ("emphasise the confirmed hard cases (relabelled or confirmed by an annotator): none (default), "
                  "oversample or weight")
_FACTOR_HELP = ("oversample: each hard case is seen this many times per epoch; weight: its loss is multiplied by "
                "this (default 2)")


def _add_recipe(p) -> None:
    p.add_argument("recipe", help="recipe YAML")
    p.add_argument("overrides", nargs="*", help="dotted key=value recipe overrides (anywhere on the line)")


def _mine_args(p) -> None:
    p.add_argument("--out", required=True, help="output directory of the scores")
    p.add_argument("--folds", type=int, default=5, help="K of the K-fold out-of-fold scoring (default 5)")
    p.add_argument("--seed", type=int, default=None, help="fold split seed (default: train.seed)")
    p.add_argument("--fold", type=int, default=None, help="run only this fold (merge with a later call)")
    p.add_argument("--jobs", type=int, default=1, help="folds run as this many separate processes")
    p.add_argument("--keep-models", action="store_true", help="keep each fold's trained model (default: deleted)")
    p.add_argument("--no-cleanlab", action="store_true", help="use the built-in confident learning")
    p.add_argument("--version", default=None, help="mine a dataset version instead of the original")
    p.add_argument("--versions-dir", default="hardcases/versions", help=_VERSIONS_HELP)
    from ._args import add_executor_args

    add_executor_args(p)


def add_cli(subparsers) -> None:
    """Add ``hardcases`` with its sub-verbs to an argparse subparsers object."""
    hp = subparsers.add_parser("hardcases", help="mine, annotate, import, retrain: the hard-case relabeling loop")
    sub = hp.add_subparsers(dest="hardcases_command", required=True)
    _build(sub)


def _build(sub) -> None:
    p = sub.add_parser("mine", help="K-fold out-of-fold probabilities, training dynamics, rankings")
    _add_recipe(p)
    _mine_args(p)
    p.set_defaults(func=_guard(cmd_mine))

    p = sub.add_parser("export", help="top N / budget to CSV, JSONL and Label Studio JSON")
    p.add_argument("mine_dir", help="output directory of 'hardcases mine'")
    p.add_argument("--out", required=True, help="directory that receives the annotation files")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--top", type=int, help="export the N hardest examples")
    g.add_argument("--budget", type=float, help="fraction of the data (< 1) or a count")
    p.add_argument("--by", choices=["error", "difficulty"], default="error", help=_BY_HELP)
    p.add_argument("--only-issues", action="store_true", help="export only the examples flagged as likely label errors")
    p.add_argument("--name", default="annotate", help="base name of the exported files (default annotate)")
    p.add_argument("--image-url-prefix", default="",
                   help="prefix of image paths in the Label Studio JSON (e.g. '/data/local-files/?d=')")
    p.set_defaults(func=_guard(cmd_export))

    p = sub.add_parser("import", help="validate annotations and write a new dataset version")
    _add_recipe(p)
    p.add_argument("--files", nargs="+", required=True, help="annotated CSV / JSONL / Label Studio export JSON")
    p.add_argument("--versions-dir", default="hardcases/versions", help=_VERSIONS_HELP)
    p.add_argument("--base", default="latest", help="version to build on (latest, v0 = original, vNNNN)")
    p.add_argument("--rule", default="majority", choices=["majority", "latest", "first", "priority", "strict"],
                   help=_RULE_HELP)
    p.add_argument("--priority", default="", help="annotators in order, for --rule priority")
    p.add_argument("--annotator", default="", help="annotator name for rows without one")
    p.set_defaults(func=_guard(cmd_import))

    p = sub.add_parser("versions", help="list dataset versions, or --drop one (undo an import)")
    _add_recipe(p)
    p.add_argument("--versions-dir", default="hardcases/versions", help=_VERSIONS_HELP)
    p.add_argument("--drop", default=None, help="remove this version (e.g. v0003); its name is never used again")
    p.set_defaults(func=_guard(cmd_versions))

    p = sub.add_parser("retrain", help="train on a version (and its parent), compare on the same dev set")
    _add_recipe(p)
    p.add_argument("--versions-dir", default="hardcases/versions", help=_VERSIONS_HELP)
    p.add_argument("--version", default="latest", help="version to train on (latest, or vNNNN)")
    p.add_argument("--out", required=True, help="directory of the two training runs and their comparison")
    p.add_argument("--emphasis", choices=["none", "oversample", "weight"], default="none", help=_EMPHASIS_HELP)
    p.add_argument("--factor", type=float, default=2.0, help=_FACTOR_HELP)
    p.set_defaults(func=_guard(cmd_retrain))

    p = sub.add_parser("loop", help="one step of the mine → export → import → retrain loop")
    _add_recipe(p)
    p.add_argument("--workdir", required=True, help="directory that holds the loop's rounds")
    p.add_argument("--annotations", nargs="*", default=None,
                   help="the annotated files of the current round (none: start or show the round)")
    p.add_argument("--folds", type=int, default=5, help="K of the K-fold mining (default 5)")
    p.add_argument("--top", type=int, default=None, help="export the N hardest examples (instead of --budget)")
    p.add_argument("--budget", type=float, default=0.1, help="fraction of the data (< 1) or a count to export "
                   "(default 0.1)")
    p.add_argument("--by", choices=["error", "difficulty"], default="error", help=_BY_HELP)
    p.add_argument("--emphasis", choices=["none", "oversample", "weight"], default="none", help=_EMPHASIS_HELP)
    p.add_argument("--factor", type=float, default=2.0, help=_FACTOR_HELP)
    p.add_argument("--rule", default="majority", choices=["majority", "latest", "first", "priority", "strict"],
                   help=_RULE_HELP)
    p.add_argument("--priority", default="", help="annotators in order, for --rule priority")
    p.add_argument("--jobs", type=int, default=1, help="mining folds run as this many separate processes")
    p.set_defaults(func=_guard(cmd_loop))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp_cv_tricks.cli.hardcases")
    sub = parser.add_subparsers(dest="hardcases_command", required=True)
    _build(sub)
    args = parse_args_with_overrides(parser, argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
