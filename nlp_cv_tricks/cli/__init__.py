"""The ``nlp-cv-tricks`` command. ``scripts/train.py`` (for ``accelerate launch``) runs the same ``train``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Optional

from ._args import parse_args_with_overrides

__all__ = ["main", "train_main", "register_cli", "build_parser", "parse_args_with_overrides"]

_EXTRA_CLIS: list[Callable] = []

# The verbs other modules define: verb -> ("module:add_cli", one-line help). Only the module of the verb being run
# is imported (``--help`` imports none), so the CLI is the one place that knows every verb and no module imports
# the CLI back. One ``add_cli(subparsers)`` may define several verbs.
VERBS: dict[str, tuple[str, str]] = {
    "ablate": ("nlp_cv_tricks.cli.ablate:add_cli",
               "baseline vs variants over N seeds: mean ± std, paired deltas, time, memory (resumable)"),
    "lr-sweep": ("nlp_cv_tricks.cli.ablate:add_cli",
                 "learning-rate halving search from --start until the dev metric stops improving"),
    "hardcases": ("nlp_cv_tricks.cli.hardcases:add_cli",
                  "mine, annotate, import, retrain: the hard-case relabeling loop"),
    "diagnose": ("nlp_cv_tricks.cli.diagnostics:add_cli", "classify a run's fit regime and prescribe remedies"),
    "inspect": ("nlp_cv_tricks.cli.diagnostics:add_cli",
                "per-layer parameter/activation/gradient statistics (JSON + PNG)"),
    "probe-cls": ("nlp_cv_tricks.cli.diagnostics:add_cli",
                  "is [CLS] a usable sentence embedding? per-layer, per-pooling probes (text models only)"),
    "plot-embeddings": ("nlp_cv_tricks.cli.diagnostics:add_cli",
                        "PCA → t-SNE plot of sentence or image embeddings coloured by label"),
    "report": ("nlp_cv_tricks.cli.report:add_cli",
               "write report.html with figures for a run, ablation, lr-sweep or hardcases mine directory"),
    "convert-long": ("nlp_cv_tricks.cli.convert_long:add_cli",
                     "turn a BERT/RoBERTa-style checkpoint into a Longformer (tiled positions, global q/k/v from local)"),
}


def register_cli(add: Callable) -> None:
    """Third-party verbs: ``add(subparsers)`` adds parsers and sets ``func`` on each (built-in verbs: ``VERBS``)."""
    if add not in _EXTRA_CLIS:
        _EXTRA_CLIS.append(add)


def _setup_logging() -> None:
    from ..utils.logs import setup_logging

    setup_logging()


def train_main(recipe_path: str, overrides: list[str]):
    from ..config import load_recipe
    from ..runner import choose_engine

    recipe = load_recipe(recipe_path, overrides)
    if choose_engine(recipe) == "compiled":  # FastText: the compiled loop (no torch, no Accelerate)
        from ..engine.result import load_lines, metric_key
        from ..runner import train_compiled

        result = train_compiled(recipe)
        _print_result(result, metric_key(recipe.train), load_lines(result.model_dir))
        return result
    from ..runner import build_trainer

    trainer = build_trainer(recipe)
    result = trainer.fit()
    if trainer.accelerator.is_main_process:  # the run's public state; the task says how to load its model
        _print_result(result, trainer.state.metric_key, trainer.task.cli_summary(result.model_dir))
    trainer.accelerator.end_training()  # end of the script: release the process group
    return result


def _print_result(result, key: str, load_lines: list[str]) -> None:
    print()
    print(f"run directory : {result.output_dir}")
    if result.best_metric is not None:
        print(f"best {key:<9}: {result.best_metric:.4f} (step {result.best_step} of {result.global_step})")
    acc = result.metrics.get("eval/accuracy")
    if acc is not None:
        print(f"dev accuracy  : {acc:.4f} (last evaluation)")
    print(f"train time    : {result.train_seconds:.1f} s")
    print(f"model saved to: {result.model_dir}")
    for line in load_lines:  # how to load it, how to evaluate it
        print(line)


def _resume_command(args) -> str:
    """The command that ran this training, without the overrides a resume replaces (the resume hint adds
    ``train.resume_from=latest output.dir=...``)."""
    import shlex

    keep = [o for o in args.overrides if not o.startswith(("train.resume_from=", "output.dir=", "output.overwrite="))]
    launched = os.path.basename(sys.argv[0] or "") == "train.py"  # accelerate launch scripts/train.py
    head = ["accelerate", "launch", sys.argv[0]] if launched else ["nlp-cv-tricks", "train"]
    return shlex.join([*head, args.recipe, *keep])


def _cmd_train(args) -> int:
    from ..engine.run_stop import TrainingInterrupted, TrainingWriteError

    try:
        train_main(args.recipe, args.overrides)
    except TrainingInterrupted as e:  # one line: the step reached, the last checkpoint, the resume command
        if e.main_process:
            print(e.sentence(_resume_command(args)), file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C) before training started; nothing was trained", file=sys.stderr)
        return 130
    except TrainingWriteError as e:
        print(f"error: {e.sentence(command=_resume_command(args))}", file=sys.stderr)
        return 2
    return 0


def _inference_request(args, **kw):
    from ..engine.task import InferenceRequest

    return InferenceRequest(args.model_dir, args.data, batch_size=args.batch_size, overwrite=args.overwrite,
                            format=getattr(args, "format", None), text_column=getattr(args, "text_column", None),
                            text_pair_column=getattr(args, "text_pair_column", None),
                            label_column=getattr(args, "label_column", None), encoding=getattr(args, "encoding", None),
                            **kw)


def _cmd_eval(args) -> int:
    from ..utils.io import atomic_write_text
    from ..inference import evaluate

    if getattr(args, "qa_alias", False):  # qa-eval: --out is a folder for the predictions
        from ..tasks.question_answering import QATask

        print(json.dumps(evaluate(_inference_request(args, metric=args.metric, predictions_dir=args.out),
                                  task=QATask), indent=2))
        return 0
    if args.out and os.path.isdir(args.out):
        raise FileExistsError(f"--out {args.out} is a directory; --out names the metrics JSON file to write")
    if args.out and os.path.exists(args.out) and not args.overwrite:  # before the work, not after
        raise FileExistsError(f"{args.out} exists; choose another --out or pass --overwrite")
    from ..engine.run_lock import warn_if_live

    warn_if_live(args.model_dir, "eval")  # a run still training: its best/ may be replaced while read
    metrics = evaluate(_inference_request(args))  # the model's task reads the data as in training
    text = json.dumps(metrics, indent=2)
    if args.out:
        if os.path.exists(args.out) and not args.overwrite:
            raise FileExistsError(f"{args.out} exists; choose another --out or pass --overwrite")
        atomic_write_text(args.out, text + "\n")
    print(text)
    return 0


def _cmd_predict(args) -> int:
    from ..inference import predict

    if getattr(args, "qa_alias", False):  # qa-predict
        from ..tasks.question_answering import QATask

        n, _ = predict(_inference_request(args, out=args.out), task=QATask)
        print(f"wrote {n} predictions to {args.out}")
        return 0
    from ..engine.run_lock import warn_if_live

    warn_if_live(args.model_dir, "predict")  # a run still training: its best/ may be replaced while read
    _, message = predict(_inference_request(args, out=args.out))  # the model's task writes what it predicts
    print(message)
    return 0


def _cmd_recipes(args) -> int:
    from ..config import RecipeError, unknown_recipe_message
    from ..recipe_catalog import catalog
    from ..utils.bundled import bundled_recipes

    if args.action == "show":  # the file as shipped, to read or to start from: recipes show NAME > my.yaml
        builtin = bundled_recipes()
        name = args.name[:-5] if args.name and args.name.endswith(".yaml") else args.name
        if not name:
            raise RecipeError("recipes show needs a recipe name (nlp-cv-tricks recipes lists them)")
        if name not in builtin:
            raise RecipeError(unknown_recipe_message(args.name, builtin))
        sys.stdout.write(builtin[name].read_text(encoding="utf-8"))
        return 0
    if args.name:
        raise RecipeError(f"recipes {args.name!r}: did you mean `nlp-cv-tricks recipes show {args.name}`?")
    entries = catalog()
    if not entries:
        print("no built-in recipes found (the package was installed without its recipes)")
        return 1
    width = max(len(e.name) for e in entries)
    for e in entries:
        print(f"{e.name:<{width}}  {e.task:<24}  data: {e.data}")
        print(f"{'':<{width}}  {e.summary}")
        print(f"{'':<{width}}  cost: {e.cost}")
    print()
    print("train one:  nlp-cv-tricks train NAME [key=value ...]   (e.g. nlp-cv-tricks train quickstart)")
    print("print one:  nlp-cv-tricks recipes show NAME > my_recipe.yaml   (then train my_recipe.yaml)")
    print("data root:  the public datasets are read from data.root=DIR, $NLP_CV_TRICKS_DATA or ../shared/data; "
          "a recipe's `# Hub:` line reads its dataset from the Hugging Face Hub instead")
    return 0


def _cmd_push(args) -> int:
    from ..hub import push

    result = push(args.path, args.repo_id, private=args.private, dry_run=args.dry_run,
                  commit_message=args.message)
    if args.dry_run:
        print(f"dry run: would create/update {'private' if args.private else 'public'} model repo {args.repo_id}")
        print(f"from {result['model_dir']}, uploading {len(result['files'])} files:")
        for f in result["files"]:
            size = result["sizes"].get(f)
            print(f"  {f}  ({size:,} bytes" + (", generated)" if f in result.get("generated", ()) else ")"))
        if result.get("model_card"):
            print("\ngenerated model card (README.md):\n")
            print(result["model_card"])
    else:
        print(f"uploaded {len(result['files'])} files to {result['url']}")
    return 0


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", help="a saved model directory, or a run directory (its best/ model is used)")
    p.add_argument("--data", required=True, help="data file (csv, tsv, json, jsonl, parquet, or the recipe's format); "
                   "for an image model an image folder, pixel CSV or .npy array as in training; for a "
                   "question-answering model a SQuAD-format JSON file")
    p.add_argument("--format", default=None, help="override the data format saved with the model")
    p.add_argument("--text-column", default=None, help="column with the text (default: the one saved with the model)")
    p.add_argument("--text-pair-column", default=None,
                   help="column with the second text of a pair model (default: the one saved with the model)")
    p.add_argument("--encoding", default=None, help="text encoding of a text data file, e.g. gbk, latin-1, utf-16 "
                   "(default: the data.encoding saved with the model, else utf-8)")
    p.add_argument("--batch-size", type=int, default=64, help="examples per forward pass (default 64)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def _qa_aliases(sub) -> None:
    """``qa-eval`` / ``qa-predict``: ``eval`` / ``predict`` for a question-answering model (also another
    ``*ForQuestionAnswering`` checkpoint), with their own options and defaults."""
    p = sub.add_parser("qa-eval", help="score a saved question-answering model on a SQuAD-format file (eval)")
    p.add_argument("model_dir", help="a saved question-answering model, or its run directory (best/ is used)")
    p.add_argument("--data", required=True, help="SQuAD-format JSON file or datasets name")
    p.add_argument("--metric", default=None, choices=["squad", "squad_v2", "cmrc2018"],
                   help="scoring (default: the one the model was trained with)")
    p.add_argument("--batch-size", type=int, default=32, help="features per forward pass (default 32)")
    p.add_argument("--out", default=None, help="also write predictions.json / nbest_predictions.json here")
    p.add_argument("--overwrite", action="store_true", help="replace existing prediction files in --out")
    p.set_defaults(func=_cmd_eval, qa_alias=True)
    p = sub.add_parser("qa-predict", help="answer the questions of a SQuAD-format file with a saved model (predict)")
    p.add_argument("model_dir", help="a saved question-answering model, or its run directory (best/ is used)")
    p.add_argument("--data", required=True, help="SQuAD-format JSON file with the questions and contexts")
    p.add_argument("--out", required=True, help="output directory for predictions.json / nbest_predictions.json")
    p.add_argument("--batch-size", type=int, default=32, help="features per forward pass (default 32)")
    p.add_argument("--overwrite", action="store_true", help="replace existing prediction files in --out")
    p.set_defaults(func=_cmd_predict, qa_alias=True)


def build_parser(verb: Optional[str] = None) -> argparse.ArgumentParser:
    """The full parser of ``verb`` (its module imported), with one-line entries for the other verbs; ``verb=None``
    builds every verb (imports every CLI module: for tests and documentation)."""
    parser = argparse.ArgumentParser(prog="nlp-cv-tricks", description=__doc__)
    # read anywhere on the line (see _progress_options); listed here for --help
    parser.add_argument("--progress", choices=("auto", "bar", "log", "off"), default=None,
                        help="how long loops report: a tqdm bar, a plain log line every 10%% or 60 s, or nothing; "
                        "auto (default) = bar on a terminal, log otherwise; also the NLP_CV_TRICKS_PROGRESS "
                        "environment variable; may be given after the subcommand too")
    parser.add_argument("--quiet", action="store_true", help="no progress output (--progress off)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train from a recipe: nlp-cv-tricks train RECIPE [key=value ...]")
    p.add_argument("recipe", help="a recipe YAML file, or the name of a built-in recipe (nlp-cv-tricks recipes "
                   "lists them, e.g. quickstart)")
    p.add_argument("overrides", nargs="*", help="recipe overrides section.key=value (train.learning_rate=3e-5, "
                   "data.train_file=x.csv, output.overwrite=true); 'tricks+=fgm' appends a trick; values are YAML "
                   "(README, Recipes)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("recipes", help="list the built-in recipes (name, task, data, cost), or print one: "
                       "nlp-cv-tricks recipes show NAME")
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list", help="list (default) or show")
    p.add_argument("name", nargs="?", help="with show: the recipe to print (a name that `recipes` lists)")
    p.set_defaults(func=_cmd_recipes)

    p = sub.add_parser("eval", help="evaluate a saved model on a labelled data file (metrics JSON)")
    _data_args(p)
    p.add_argument("--label-column", default=None, help="column with the gold labels (default: the one saved with "
                   "the model)")
    p.add_argument("--out", default=None, help="also write the metrics JSON here")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("predict", help="label a data file with a saved model (predictions with probabilities)")
    _data_args(p)
    p.add_argument("--out", required=True, help="output file: .jsonl (default) or .csv; for a question-answering "
                   "model a folder that receives predictions.json and nbest_predictions.json")
    p.set_defaults(func=_cmd_predict)

    _qa_aliases(sub)

    p = sub.add_parser("push", help="upload a model to the Hugging Face Hub with a generated model card")
    p.add_argument("path", help="run directory or model directory")
    p.add_argument("--repo-id", required=True, help="Hub model repository to create or update, e.g. you/sst2-minilm")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--dry-run", action="store_true", help="list exactly what would be uploaded, upload nothing")
    p.add_argument("--message", default=None, help="commit message")
    p.set_defaults(func=_cmd_push)

    from ..utils.registry import import_target

    wanted = {target for name, (target, _) in VERBS.items() if verb is None or name == verb}
    for name, (target, helptext) in VERBS.items():
        if target not in wanted:
            sub.add_parser(name, help=helptext)  # listed by --help; its module is not imported
    for target in dict.fromkeys(t for t, _ in VERBS.values()):
        if target in wanted:
            import_target(target)(sub)
    for add in _EXTRA_CLIS:
        add(sub)
    return parser


def _verb_of(argv: list[str]) -> Optional[str]:
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def _progress_options(argv: list[str]) -> list[str]:
    """Take ``--quiet`` and ``--progress MODE`` from anywhere on the line (before or after the subcommand) and
    set the progress mode (:mod:`nlp_cv_tricks.utils.progress`); returns the other arguments."""
    from ..utils.progress import MODES

    rest, mode, i = [], None, 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest += argv[i:]
            break
        if a == "--quiet":
            mode = "off"
        elif a == "--progress" or a.startswith("--progress="):
            value = a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 0 if "=" in a else 1
            if value not in MODES:
                raise SystemExit(f"nlp-cv-tricks: error: --progress {value!r}: choose one of {', '.join(MODES)}")
            mode = value if mode != "off" else mode
        else:
            rest.append(a)
        i += 1
    from ..utils.progress import ENV_VAR, _check

    try:  # the libraries' own bars are switched off in main, after parsing: --help imports none of them
        if mode is not None:
            os.environ[ENV_VAR] = _check(mode, "progress mode")
        else:
            _check(os.environ.get(ENV_VAR) or "auto", ENV_VAR)
    except ValueError as e:  # a bad NLP_CV_TRICKS_PROGRESS value
        raise SystemExit(f"nlp-cv-tricks: error: {e}") from None
    return rest


def _recipe_names(args) -> Optional[int]:
    """A built-in recipe's name becomes its file (every verb that takes a recipe takes a name:
    :func:`nlp_cv_tricks.config.resolve_recipe`), and ``recipes`` runs, before torch and the data libraries load:
    a wrong name is reported at once. An exit status when the command is over, else None."""
    from ..config import RecipeError, resolve_recipe

    try:
        if args.func is _cmd_recipes:
            return _cmd_recipes(args)
        if isinstance(getattr(args, "recipe", None), str):
            args.recipe = str(resolve_recipe(args.recipe))
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return None


def main(argv: Optional[list[str]] = None) -> int:
    argv = _progress_options(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(_verb_of(argv) or "")
    args = parse_args_with_overrides(parser, argv)  # --help and errors exit here, before transformers is imported
    from ..utils.gc_policy import tune_for_a_command

    tune_for_a_command()
    done = _recipe_names(args)
    if done is not None:
        return done
    _setup_logging()
    from ..utils.progress import quiet_library_bars, resolve_mode

    if resolve_mode() != "bar":
        quiet_library_bars()
    from ..config import RecipeError
    from ..data.errors import DataError
    from ..utils.io import WriteError
    from ..utils.optional import MissingExtraError

    try:
        return int(args.func(args) or 0)
    except (RecipeError, DataError, FileExistsError, FileNotFoundError, MissingExtraError, WriteError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except (ValueError, OSError) as e:
        # bad arguments found deeper down (a model that cannot be loaded offline, an invalid option value):
        # one line for the user; the traceback on request
        if os.environ.get("NCT_TRACEBACK"):
            raise
        print(f"error: {type(e).__name__}: {e}\n(set NCT_TRACEBACK=1 to see where it was raised)", file=sys.stderr)
        return 2
