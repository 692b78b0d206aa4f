"""Command-line verbs of the diagnostics: ``diagnose``, ``inspect``, ``probe-cls``, ``plot-embeddings``.

The main CLI wires them with :func:`add_cli` (``add_cli(subparsers)`` on its ``argparse`` sub-parsers); each
sets ``func`` to a callable taking the parsed ``args`` and returning an exit code. Also runnable alone:
``python -m nlp_cv_tricks.cli.diagnostics probe-cls ...``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Optional

from ..data.vision import ImageDataError
from ..diagnostics._io import DiagnosticsError, atomic_write_json

__all__ = ["add_cli", "main"]


def _threads(args) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(int(args.threads))


def _parse_thresholds(items):
    from ..diagnostics.doctor import Thresholds

    th = Thresholds()
    valid = {f for f in vars(th)}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or key not in valid:
            import difflib

            near = difflib.get_close_matches(key, sorted(valid), n=1)
            raise DiagnosticsError(f"--threshold {item!r}: expected NAME=VALUE with NAME one of {sorted(valid)}"
                                   + (f"; did you mean {near[0]!r}?" if near else ""))
        cur = getattr(th, key)
        try:
            setattr(th, key, type(cur)(float(val)) if isinstance(cur, int) else float(val))
        except ValueError:
            raise DiagnosticsError(f"--threshold {item!r}: {val!r} is not a number") from None
    return th


# ---- diagnose ----------------------------------------------------------------------------------------------

def cmd_diagnose(args) -> int:
    from ..diagnostics.doctor import ablate_command, diagnose_run, format_diagnosis

    if args.json and Path(args.json).exists() and not args.overwrite:  # checked before the work
        raise FileExistsError(f"{args.json} already exists; pass --overwrite to replace it")
    diag = diagnose_run(args.run_dir, _parse_thresholds(args.threshold), metric=args.metric,
                        minority=args.minority or None)
    if args.json:
        atomic_write_json(args.json, diag.as_dict())
    print(format_diagnosis(diag))
    cmd = ablate_command(diag, args.seeds)
    if cmd:
        print("\nto compare them against the baseline: " + " ".join(shlex.quote(c) for c in cmd))
    if args.run:
        if not cmd:
            print("no remedy can be run automatically for this regime", file=sys.stderr)
            return 1
        result = run_remedies(diag, seeds=args.seeds, out_dir=args.out, in_process=args.in_process)
        print(result.markdown)
    return 0


# ---- inspect -----------------------------------------------------------------------------------------------

_DEFAULT_SENTENCES = [
    "the film is a charming and often affecting journey .",
    "a dull , lifeless and utterly predictable thriller .",
    "the service was quick and the food was excellent .",
    "i would not recommend this product to anyone .",
    "what is the capital city of australia ?",
    "stocks rose sharply after the central bank cut rates .",
    "the match ended in a goalless draw on saturday night .",
    "this phone's battery barely lasts half a day .",
]


def _sample_batch(model, tokenizer, data_path: Optional[str], n: int, max_length: int, seed: int = 0):
    import numpy as np

    from ..diagnostics.textdata import read_labelled_texts

    source = "built-in sentences"
    labels = None
    pairs = None
    if data_path:
        data = read_labelled_texts(data_path)
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.permutation(len(data))[: n])
        texts = [data.texts[i] for i in idx]
        pairs = [data.pairs[i] for i in idx] if data.pairs else None
        raw = [str(data.labels[i]) for i in idx]
        l2i = {str(k): int(v) for k, v in (getattr(model.config, "label2id", None) or {}).items()}
        i2l = {str(k): str(v) for k, v in (getattr(model.config, "id2label", None) or {}).items()}
        if raw and all(r in l2i for r in raw):
            labels = [l2i[r] for r in raw]
        elif raw and all(r in i2l for r in raw):  # labels written as ids
            labels = [int(r) for r in raw]
        source = f"{len(texts)} examples of {data_path}"
    else:
        texts = _DEFAULT_SENTENCES[:n]
    enc = tokenizer(texts, pairs, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    batch = dict(enc)
    if labels is not None and hasattr(model.config, "num_labels"):
        import torch

        batch["labels"] = torch.tensor(labels)
    return batch, source


def cmd_inspect(args) -> int:
    _threads(args)
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from ..diagnostics.probes import register_package_models, resolve_model_path

    target = Path(args.model)
    run_dir = _run_dir_of(target)
    path = resolve_model_path(args.model)
    from ..diagnostics.images import is_image_model_dir

    if is_image_model_dir(path):
        return _inspect_image(args, path, run_dir)
    if args.image_option:
        raise DiagnosticsError(f"{path}: --image-option applies to image models only")
    data = args.data
    if data is None and run_dir is not None and (run_dir / "recipe.yaml").is_file():
        import yaml

        rec = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
        dev = (rec.get("data") or {}).get("dev_file")
        if dev and Path(dev).is_file():
            data = dev
        elif dev:
            print(f"note: the run's dev file {dev} is not found from {Path.cwd()} (relative paths are read from the "
                  "current directory): the sample batch uses built-in sentences; pass --data for the run's data",
                  file=sys.stderr)
    from ..tasks.question_answering import is_qa_model_dir

    if is_qa_model_dir(path):
        raise DiagnosticsError(f"{path}: a question-answering model; inspect supports text-classification and "
                               "image models")
    register_package_models()
    try:
        cfg = AutoConfig.from_pretrained(path)
        arch = " ".join(cfg.architectures or [])
        cls = AutoModelForSequenceClassification if "ForSequenceClassification" in arch else AutoModel
        model = cls.from_pretrained(path)
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        msg = str(e) if len(str(e)) <= 300 else str(e)[:300] + " ..."
        raise DiagnosticsError(f"{path}: cannot load a model and tokenizer from here ({msg})") from None
    batch, source = _sample_batch(model, tok, data, args.n, args.max_length)
    return _report_layers(args, model, batch, path, run_dir, source)


def _report_layers(args, model, batch, path: str, run_dir: Optional[Path], source: str) -> int:
    """Layer statistics of ``model`` on ``batch``, printed and saved (JSON + PNG) under the run or --out."""
    from ..callbacks.layer_report import format_layer_report, layer_report, save_layer_report

    report = layer_report(model, batch, gradients=not args.no_grad)
    report["model"] = path
    report["sample"] = source
    out = Path(args.out) if args.out else (run_dir / "diagnostics" if run_dir else Path("diagnostics") / Path(path).name)
    label = run_dir.name if run_dir else Path(path).name
    paths = save_layer_report(report, out, overwrite=args.overwrite, title=f"{label} — {source}")
    print(format_layer_report(report))
    print(f"sample batch: {source}")
    print(f"wrote {paths['json']} and {paths.get('png')}")
    return 0


def _quiet_datasets() -> None:
    """No per-file progress bars of ``datasets`` (image folders) in the command's output."""
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass


def _inspect_image(args, path: str, run_dir: Optional[Path]) -> int:
    """``inspect`` for a timm image model: the sample batch is ``pixel_values`` (+ labels) through the model's
    evaluation transform, from ``--data`` or the run's dev split."""
    from ..diagnostics.images import image_sample_batch, load_image_model, load_labelled_images, parse_image_options

    _quiet_datasets()
    model = load_image_model(path)
    ds, names, source = load_labelled_images(args.data, run_dir, parse_image_options(args.image_option))
    batch, labels = image_sample_batch(model, ds, names, n=args.n)
    if labels is None:
        source += " (its labels are not the model's: gradients against the model's own predictions)"
    else:
        source = f"{len(labels)} of the " + source
    return _report_layers(args, model, batch, path, run_dir, source)


# ---- probe-cls -------------------------------------------------------------------------------------------

def cmd_probe(args) -> int:
    _threads(args)
    from ..diagnostics.images import is_image_model_dir, refuse_cls_probe
    from ..diagnostics.probes import format_probe_report, probe_cls, resolve_model_path
    from ..diagnostics.textdata import read_labelled_texts

    if is_image_model_dir(resolve_model_path(args.model)):
        refuse_cls_probe(resolve_model_path(args.model))
    if not args.data:
        raise DiagnosticsError("probe-cls needs --data (labelled texts)")
    if args.json and Path(args.json).exists() and not args.overwrite:  # before the work
        raise FileExistsError(f"{args.json} already exists; pass --overwrite to replace it")
    data = read_labelled_texts(args.data, fmt=args.format, text_column=args.text_column,
                               text_pair_column=args.pair_column, label_column=args.label_column)
    res = probe_cls(args.model, data, layers=args.layers, poolings=args.poolings, folds=args.folds,
                    max_examples=args.max_examples, max_length=args.max_length, seed=args.seed)
    if args.json:
        atomic_write_json(args.json, res)
    print(format_probe_report(res))
    return 0


# ---- plot-embeddings -------------------------------------------------------------------------------------

def cmd_plot(args) -> int:
    _threads(args)
    from ..diagnostics.images import is_image_model_dir
    from ..diagnostics.plots import plot_embeddings, sample_per_class
    from ..diagnostics.probes import load_encoder, pooled_layers, resolve_model_path
    from ..diagnostics.textdata import read_labelled_texts

    target = Path(args.model)
    if is_image_model_dir(resolve_model_path(args.model)):
        return _plot_image(args, resolve_model_path(args.model), _run_dir_of(target))
    if args.image_option or args.format in _IMAGE_FORMATS:
        raise DiagnosticsError(f"{args.model}: --image-option and --format {'/'.join(_IMAGE_FORMATS)} apply to "
                               "image models only")
    if not args.data:
        raise DiagnosticsError("plot-embeddings needs --data (labelled texts) for a text model")
    data = read_labelled_texts(args.data, fmt=args.format, text_column=args.text_column, label_column=args.label_column)
    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} already exists; pass --overwrite to replace it")
    n_classes = len(set(map(str, data.labels)))
    if n_classes > args.max_classes and not args.force:  # refuse before the (slow) encoding
        raise DiagnosticsError(f"{args.data}: {n_classes} classes is too many to read in one t-SNE plot (limit "
                               f"{args.max_classes}); raise --max-classes or pass --force to keep the most frequent")
    keep = sample_per_class(data.labels, args.per_class, args.seed)
    texts = [data.texts[i] for i in keep]
    labels = [str(data.labels[i]) for i in keep]
    tok, model, path = load_encoder(args.model)
    emb = pooled_layers(model, tok, texts, max_length=args.max_length, poolings=[args.pooling])[args.pooling]
    layer = args.layer if args.layer >= 0 else emb.shape[0] + args.layer
    if not 0 <= layer < emb.shape[0]:
        raise DiagnosticsError(f"--layer {args.layer}: the model has layers 0..{emb.shape[0] - 1}")
    info = plot_embeddings(emb[layer], labels, args.out, per_class=args.per_class, max_classes=args.max_classes,
                           force=args.force, pca_dims=args.pca_dims, perplexity=args.perplexity, seed=args.seed,
                           overwrite=args.overwrite,
                           title=f"{Path(path).name}: layer {layer} {args.pooling} pooling — {Path(args.data).name}")
    for w in info["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    print(json.dumps({k: v for k, v in info.items() if k != "warnings"}, indent=1))
    return 0


_IMAGE_FORMATS = ("imagefolder", "image_csv", "image_npy")


def _plot_image(args, path: str, run_dir: Optional[Path]) -> int:
    """``plot-embeddings`` for a timm image model: PCA → t-SNE of the penultimate features (``--layer -1``) or
    of a stage's pooled feature map, coloured by label, from ``--data`` or the run's dev split."""
    from ..diagnostics.images import (image_features, load_image_model, load_labelled_images, n_feature_layers,
                         parse_image_options)
    from ..diagnostics.plots import plot_embeddings, sample_per_class

    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} already exists; pass --overwrite to replace it")
    opts = parse_image_options(args.image_option)
    if args.format and args.format != "auto":
        if args.format not in _IMAGE_FORMATS:
            raise DiagnosticsError(f"--format {args.format}: {path} is an image model; image data formats are "
                                   f"{', '.join(_IMAGE_FORMATS)} (or auto)")
        opts["format"] = args.format
    _quiet_datasets()
    model = load_image_model(path)
    ds, names, source = load_labelled_images(args.data, run_dir, opts)
    all_labels = [str(names[int(i)]) for i in ds["labels"]]
    if len(set(all_labels)) > args.max_classes and not args.force:
        raise DiagnosticsError(f"{source}: {len(set(all_labels))} classes is too many to read in one t-SNE plot "
                               f"(limit {args.max_classes}); raise --max-classes or pass --force to keep the most "
                               "frequent")
    keep = sample_per_class(all_labels, args.per_class, args.seed)
    n_layers = n_feature_layers(model)
    layer = args.layer if args.layer >= 0 else n_layers + args.layer
    emb = image_features(model, ds, keep, layer=args.layer, pooling=args.pooling)
    what = ("penultimate features" if layer == n_layers - 1 else f"stage {layer} ({args.pooling} pooled)")
    info = plot_embeddings(emb, [all_labels[i] for i in keep], args.out, per_class=args.per_class,
                           max_classes=args.max_classes, force=args.force, pca_dims=args.pca_dims,
                           perplexity=args.perplexity, seed=args.seed, overwrite=args.overwrite,
                           title=f"{run_dir.name if run_dir else Path(path).name}: {what} — {source}")
    info["features"] = what
    for w in info["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    print(json.dumps({k: v for k, v in info.items() if k != "warnings"}, indent=1))
    return 0


# ---- wiring ----------------------------------------------------------------------------------------------

def _data_args(p, pairs: bool = True) -> None:
    text_formats = ["auto", "kim2014", "thucnews", "csv", "tsv", "json", "jsonl", "parquet"]
    if pairs:  # probe-cls: text only
        p.add_argument("--data", help="labelled text file: kim2014 '<label> <text>', '<text>\\t<label>', "
                                      "csv/tsv with a header, jsonl or parquet (required)")
        p.add_argument("--format", default="auto", choices=text_formats,
                       help="format of --data (default: from the extension)")
    else:  # plot-embeddings: text or image models
        p.add_argument("--data", help="text models: labelled text file (kim2014, '<text>\\t<label>', csv/tsv with a "
                                      "header, jsonl, parquet; required); image models: an image folder (one "
                                      "sub-folder per class), a pixel CSV or an .npy array (default: the run's dev "
                                      "split)")
        p.add_argument("--format", default="auto", choices=text_formats + list(_IMAGE_FORMATS),
                       help="format of --data (default: from the extension or folder)")
        p.add_argument("--image-option", action="append", metavar="KEY=VALUE",
                       help="image models: a task_options.image reading option, e.g. label_blocks=[[a,100],[b,100]]")
    p.add_argument("--text-column", help="csv/tsv/json: column with the text (default: text)")
    if pairs:
        p.add_argument("--pair-column", help="second text of a pair (makes the data text pairs)")
    p.add_argument("--label-column", help="csv/tsv/json: column with the label (default: label)")
    p.add_argument("--max-length", type=int, default=128, help="tokens per text after truncation (default 128)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling, folds and t-SNE (default 0)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _run_dir_of(target: Path) -> Optional[Path]:
    """``target`` when it is a run directory (a ``best/`` or ``final/`` model inside), else None."""
    return target if any((target / sub).is_dir() for sub in ("best", "final")) else None


def _guard(fn):
    from ..utils.optional import MissingExtraError

    def run(args) -> int:
        try:
            return fn(args)
        except (DiagnosticsError, ImageDataError, FileExistsError, MissingExtraError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return run


def add_cli(subparsers) -> None:
    """Add ``diagnose``, ``inspect``, ``probe-cls`` and ``plot-embeddings`` to an argparse sub-parser set."""
    p = subparsers.add_parser("diagnose", help="classify a run's fit regime and prescribe remedies",
                              description="Read RUN_DIR/history.jsonl (+ recipe.yaml) and say whether the run "
                                          "underfits, overfits, is still improving at its end (not converged), is "
                                          "healthy, does not converge or diverges, with the "
                                          "evidence, the thresholds and the remedies as recipe overrides.")
    p.add_argument("run_dir", help="run directory (or its history.jsonl)")
    p.add_argument("--metric", help="dev metric to watch (default: the recipe's train.metric, else f1_macro/accuracy)")
    p.add_argument("--minority", nargs="*", help="labels whose recall/F1 the imbalance check watches")
    p.add_argument("--threshold", action="append", metavar="NAME=VALUE", help="change a decision threshold")
    p.add_argument("--json", help="also write the diagnosis as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--run", action="store_true", help="launch the remedies through `nlp-cv-tricks ablate`")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant for --run")
    p.add_argument("--out", help="--run: ablation directory (default RUN_DIR/remedies)")
    p.add_argument("--in-process", action="store_true", help="--run: train in this process (tiny models)")
    p.set_defaults(func=_guard(cmd_diagnose))

    p = subparsers.add_parser("inspect", help="per-layer parameter/activation/gradient statistics (JSON + PNG)")
    p.add_argument("model", help="model directory, run directory (uses best/), Hub id or minilm-l6")
    p.add_argument("--data", help="labelled data for the sample batch (default: the run's dev file, else built-in "
                                  "sentences); image models: an image folder, pixel CSV or .npy (default: the "
                                  "run's dev split)")
    p.add_argument("--n", type=int, default=16, help="sample batch size")
    p.add_argument("--max-length", type=int, default=128, help="tokens per text after truncation (default 128)")
    p.add_argument("--out", help="output directory (default: RUN_DIR/diagnostics or ./diagnostics/<model>)")
    p.add_argument("--no-grad", action="store_true", help="skip the backward pass")
    p.add_argument("--image-option", action="append", metavar="KEY=VALUE",
                   help="image models: a task_options.image reading option for --data, e.g. csv_header=true")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(func=_guard(cmd_inspect))

    p = subparsers.add_parser("probe-cls", help="is [CLS] a usable sentence embedding? per-layer, per-pooling probes "
                                                "(text models only)")
    p.add_argument("model", help="model directory, run directory, Hub id or minilm-l6")
    _data_args(p)
    p.add_argument("--layers", type=int, nargs="*", help="layers to probe (0 = embeddings, -1 = last; default all)")
    p.add_argument("--poolings", nargs="+", default=["cls", "mean", "max"], choices=["cls", "mean", "max"],
                   help="sentence poolings to compare (default: all three)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds of the linear probe (default 5)")
    p.add_argument("--max-examples", type=int, default=2000, help="probe at most this many examples (default 2000)")
    p.add_argument("--json", help="also write the results as JSON here")
    p.set_defaults(func=_guard(cmd_probe))

    p = subparsers.add_parser("plot-embeddings", help="PCA → t-SNE plot of sentence or image embeddings coloured by label")
    p.add_argument("model", help="model directory, run directory, Hub id or minilm-l6")
    _data_args(p, pairs=False)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--layer", type=int, default=-1, help="-1: last layer (image models: penultimate features); "
                                                         "image models: k = stage k of the backbone")
    p.add_argument("--pooling", default="mean", choices=["cls", "mean", "max"],
                   help="token pooling (text) or spatial pooling of a stage (images: mean or max)")
    p.add_argument("--per-class", type=int, default=200, help="points sampled per class (default 200)")
    p.add_argument("--max-classes", type=int, default=20, help="refuse more classes than this unless --force "
                   "(default 20)")
    p.add_argument("--force", action="store_true", help="plot the most frequent classes when there are too many")
    p.add_argument("--pca-dims", type=int, default=50, help="PCA dimensions before t-SNE (default 50)")
    p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (default 30)")
    p.set_defaults(func=_guard(cmd_plot))


def main(argv=None) -> int:
    """Stand-alone entry (``python -m nlp_cv_tricks.cli.diagnostics``): the diagnostics verbs alone."""
    parser = argparse.ArgumentParser(prog="nlp-cv-tricks")
    sub = parser.add_subparsers(dest="command", required=True)
    add_cli(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def run_remedies(diag, seeds: int = 3, out_dir: Optional[str] = None, in_process: bool = False,
                 **kwargs):
    """Run the baseline and each runnable remedy over ``seeds`` seeds through the ablation harness
    (:func:`nlp_cv_tricks.ablate.ablate`); results go to ``out_dir`` (default ``RUN_DIR/remedies``)."""
    from ..ablate import ablate
    from ..diagnostics.doctor import _recipe_file, remedy_variants

    recipe = _recipe_file(diag)
    vary = remedy_variants(diag)
    if not vary:
        raise DiagnosticsError(f"no runnable remedy for regime {diag.regime!r}")
    out = out_dir or str(Path(diag.run_dir) / "remedies")
    return ablate(str(recipe), vary=vary, seeds=seeds, out_dir=out, in_process=in_process, **kwargs)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

