"""Read a directory the package wrote, draw its figures and write its report page.

Kinds of directory (:func:`detect_kind`): a training run (``history.jsonl``), an ablation or a learning-rate
sweep (``ablation.json``), a ``hardcases mine`` directory (``scores.jsonl`` + ``folds.json``); several run
directories are overlaid on one page.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from .errors import ReportError
from .page import FILES_DIR, REPORT_FILE, Figure, Note, Page, Section, Table, png_size, write_page

__all__ = ["detect_kind", "run_page", "ablation_page", "mining_page", "overlay_page", "write_report",
           "read_true_labels", "KINDS"]

logger = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]
KINDS = ("run", "ablation", "lr-sweep", "mining")
_WHAT = ("a run directory (with history.jsonl), an ablation or lr-sweep directory (with ablation.json) or a "
         "`hardcases mine` directory (with scores.jsonl and folds.json)")


def detect_kind(path: PathLike) -> str:
    """``run``, ``ablation``, ``lr-sweep`` or ``mining``; a clear error for anything else."""
    p = Path(path)
    if not p.exists():
        raise ReportError(f"{p}: no such directory; give {_WHAT}")
    if p.is_file():
        raise ReportError(f"{p} is a file; give the directory that holds it: {_WHAT}")
    if (p / "ablation.json").is_file():
        data = _read_json(p / "ablation.json")
        return "lr-sweep" if "best_lr" in data else "ablation"
    if (p / "scores.jsonl").is_file() and (p / "folds.json").is_file():
        return "mining"
    if (p / "history.jsonl").is_file():
        return "run"
    found = sorted(x.name + ("/" if x.is_dir() else "") for x in p.iterdir())[:12]
    raise ReportError(f"{p}: not a directory the report can read (it holds {', '.join(found) or 'nothing'}); give "
                      f"{_WHAT}")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    except UnicodeDecodeError as e:
        raise ReportError(f"{path}: not JSON text (byte {e.start} is not UTF-8: a binary file?)") from None
    except OSError as e:
        raise ReportError(f"{path}: cannot be read ({e.strerror})") from None


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ReportError(f"{path}: not valid YAML ({e})") from None
    return data if isinstance(data, dict) else {}


class _Steps:
    """Progress of a report: one log line per figure (drawing is the slow part)."""

    def __init__(self, what: str, log: Callable[[str], None]):
        self.what, self.log, self.t0, self.n = what, log, time.perf_counter(), 0

    def __call__(self, name: str) -> None:
        self.n += 1
        self.log(f"report of {self.what}: {name} ({time.perf_counter() - self.t0:.1f} s)")


def _history(run: Path, notes: Optional[list] = None) -> list[dict]:
    """The run's history; a last line cut off (a live or killed run) is skipped and said in ``notes``."""
    from ..diagnostics._io import DiagnosticsError, load_history

    try:
        return load_history(run, notes=notes)
    except DiagnosticsError as e:
        raise ReportError(str(e)) from None


# ---- one run ------------------------------------------------------------------------------------------------
def _model_eval_metrics(run: Path) -> tuple[Optional[dict], str]:
    """The dev metrics saved with the selected model (``best/``) or, without one, with the final model."""
    for sub, which in (("best", "best"), ("final", "final")):
        p = run / sub / "eval_metrics.json"
        if p.is_file():
            return _read_json(p), which
    return None, ""


def _per_class(m: dict) -> dict:
    out: dict = {}
    for k, v in m.items():
        parts = k.split("/", 2)
        if len(parts) == 3 and parts[0] == "eval" and parts[1] in ("precision", "recall", "f1", "support"):
            out.setdefault(parts[2], {})[parts[1]] = v
    return {n: d for n, d in out.items() if "f1" in d}


def _fmt_s(x) -> str:
    return "–" if x is None else f"{x:.1f} s"


def run_page(run: PathLike, max_points: int = 2000, log: Callable[[str], None] = logger.info) -> Page:
    from ._mpl import Columns
    from .run_figures import grad_norm_figure

    run = Path(run)
    step = _Steps(str(run), log)
    notes: list[str] = []
    records = _history(run, notes)
    for n in notes:
        log(n)
    history = Columns(records)  # read once: every figure takes its series from here
    metrics = _read_json(run / "metrics.json") if (run / "metrics.json").is_file() else None
    recipe = _read_yaml(run / "recipe.yaml")
    train = recipe.get("train") or {}
    metric_key = (metrics or {}).get("metric") or ("eval/" + str(train.get("metric", "accuracy")).replace("eval/", ""))
    gib = train.get("greater_is_better")
    gib = (not metric_key.endswith("loss")) if gib is None else bool(gib)
    best_step = (metrics or {}).get("best_step")
    page = Page(f"Run {recipe.get('name') or run.name}", str(run), "training run")

    page.sections.append(_summary_section(run, recipe, metrics, metric_key, best_step, notes))
    has_eval = any(k.startswith("eval/") for k in history.keys)
    page.sections.append(_curves_section(history, has_eval, metric_key, best_step, gib, step, max_points))
    if has_eval:
        page.sections.append(_dev_section(run, step))

    if any(k.startswith("train/grad_norm/") for k in history.keys):
        step("gradient norms")
        page.sections.append(Section("Gradients", [grad_norm_figure(history, max_points)]))

    page.sections.append(_doctor_section(run, records, history, recipe, step, max_points))
    extra = _existing_figures(run)
    if extra:
        page.sections.append(Section("Diagnostics figures", extra))
    return page


def _summary_section(run: Path, recipe: dict, metrics: Optional[dict], metric_key: str, best_step,
                     notes: list[str]) -> Section:
    """What was trained, how, and how it ended (or that it has not ended)."""
    train = recipe.get("train") or {}
    summary = Section("Summary")
    rows = [("task", recipe.get("task")), ("model", (recipe.get("model") or {}).get("name")),
            ("training data", (recipe.get("data") or {}).get("train_file")),
            ("dev data", (recipe.get("data") or {}).get("dev_file")),
            ("tricks", ", ".join(next(iter(t)) if isinstance(t, dict) else str(t) for t in recipe.get("tricks") or [])
             or "none"),
            ("learning rate", train.get("learning_rate")), ("batch size", train.get("batch_size")),
            ("epochs / max steps", f"{train.get('epochs')} / {train.get('max_steps') or '–'}")]
    if metrics:
        rows += [("steps trained", metrics.get("global_step")),
                 (f"best {metric_key}", metrics.get("best_metric")), ("best step", best_step),
                 ("stopped early", metrics.get("stopped_early")), ("train time", _fmt_s(metrics.get("train_seconds"))),
                 ("processes × precision", f"{metrics.get('num_processes')} × {metrics.get('mixed_precision')}")]
    else:
        summary.items.append(Note(f"{run / 'metrics.json'} is missing: the run has not finished (or crashed); the "
                                  "figures show the history so far.", "warn"))
    summary.items += [Note(n, "warn") for n in notes]
    summary.items.insert(0, Table("Run", ["", "value"], [(k, v) for k, v in rows if v is not None]))
    return summary


def _curves_section(history, has_eval: bool, metric_key: str, best_step, gib: bool, step,
                    max_points: int) -> Section:
    """Training (and dev) curves, with a warning when the run has no dev evaluation."""
    from .run_figures import training_curves

    curves = Section("Training curves")
    has_train = "train/loss" in history.keys
    if not has_eval:
        curves.items.append(Note("This run has no dev evaluation (no data.dev_file / data.dev_fraction, or "
                                 "train.eval_steps and train.eval_each_epoch off): the curves show training only, "
                                 "and there is no confusion matrix, per-class score or best model.", "warn"))
    if has_train or has_eval:
        step("training curves")
        curves.items.append(training_curves(history, metric_key if has_eval else None, best_step, gib, max_points))
    return curves


def _dev_section(run: Path, step) -> Section:
    """The saved dev metrics of the best (or final) model: confusion matrix, per-class scores, aggregates."""
    from .run_figures import confusion_matrix_figure, per_class_figure

    dev = Section("Dev set: the best model")
    em, which = _model_eval_metrics(run)
    if em is None:
        dev.items.append(Note("no saved dev metrics of a model (best/eval_metrics.json or "
                              "final/eval_metrics.json); no confusion matrix", "warn"))
        return dev
    at = em.get("step")
    if which == "final":
        dev.items.append(Note("no best/ model was kept (output.save_best=false): the dev scores below are "
                              f"those of the final model (last evaluation, step {at})."))
    pc = _per_class(em)
    cm = em.get("eval/confusion_matrix")
    if cm is not None and pc and len(pc) == len(cm):
        step("confusion matrix")
        dev.items.append(confusion_matrix_figure(cm, list(pc), at, which))
    elif cm is None:
        dev.items.append(Note("the saved dev metrics have no confusion matrix (not a classification task)"))
    if pc:
        step("per-class scores")
        dev.items.append(per_class_figure(pc, at, which))
        dev.items.append(Table("Per-class scores", ["class", "precision", "recall", "F1", "support"],
                               [(n, d.get("precision"), d.get("recall"), d.get("f1"), d.get("support"))
                                for n, d in pc.items()],
                               f"dev set, {which} model, step {at}"))
    agg = [(k.split("/", 1)[1], v) for k, v in em.items()
           if k.startswith("eval/") and k.count("/") == 1 and isinstance(v, (int, float))
           and not isinstance(v, bool)]
    dev.items.append(Table("Dev metrics", ["metric", "value"], agg, f"{which} model, step {at}"))
    return dev


def _doctor_section(run: Path, rows: list[dict], history, recipe: dict, step, max_points: int = 2000) -> Section:
    """The doctor's verdict on the history already read (what ``nlp-cv-tricks diagnose RUN_DIR`` prints)."""
    from ..diagnostics import DiagnosticsError, diagnose, prescribe
    from ..utils.optional import MissingExtraError
    from .doctor_figures import regime_figure

    sec = Section("Doctor")
    try:
        diag = diagnose(rows, recipe=recipe or None)
        cfg = run / "best" / "config.json"
        diag.run_dir = str(run)
        diag.remedies = prescribe(diag, recipe or None, _read_json(cfg) if cfg.is_file() else None)
    except (DiagnosticsError, MissingExtraError) as e:
        sec.items.append(Note(f"the doctor cannot judge this run: {e}", "warn"))
        return sec
    d = diag.as_dict()
    step("doctor")
    sec.items.append(regime_figure(history, d, max_points))
    sec.items.append(Table("Why", ["reason"], [(r,) for r in d["reasons"]] or [("–",)]))
    if d["imbalanced"]:
        events = "; ".join(f"step {e['step']}: {e['key']}" + (f" {e['before']:.4f} → {e['after']:.4f}"
                                                              if e.get("before") is not None else " flagged")
                           for e in d["imbalance_events"][:6])
        sec.items.append(Note(f"imbalance: the dev loss improved while these fell: {events}", "warn"))
    if d["remedies"]:
        sec.items.append(Table("Remedies, in order", ["override", "why", "note", "runnable here"],
                               [(r["override"] or "(advice)", r["why"], r["note"], r["available"])
                                for r in d["remedies"]],
                               f"run them side by side: nlp-cv-tricks diagnose {run} --run"))
    sec.items.append(Table("Evidence", ["key", "value"],
                           [(k, v if not isinstance(v, (dict, list)) else json.dumps(v))
                            for k, v in d["evidence"].items() if not k.startswith("_")],
                           "every threshold is printed by nlp-cv-tricks diagnose", collapsed=True))
    return sec


def _existing_figures(run: Path, max_layer: int = 2) -> list[Figure]:
    """Figures other diagnostics wrote into the run: the layer reports (latest ``max_layer``) and PNG files at the
    top of the run directory (e.g. from ``plot-embeddings``), embedded as they are."""
    found = []
    layer = sorted((run / "layer_reports").glob("step_*.png"),
                   key=lambda p: int(p.stem.split("_")[1]) if p.stem.split("_")[1].isdigit() else 0)[-max_layer:]
    for p in layer:
        found.append((p, f"layer_{p.stem}", f"Layer report, {p.stem.replace('_', ' ')}",
                      "Per-layer parameter, activation and gradient statistics written by the layer_report trick "
                      "(nlp-cv-tricks inspect explains each panel)."))
    for p in sorted(run.glob("*.png")):
        found.append((p, f"file_{p.stem}", p.name, "A figure found in the run directory (for example from "
                                                   "nlp-cv-tricks plot-embeddings or inspect), embedded as it is."))
    out = []
    for p, name, title, caption in found:
        data = p.read_bytes()
        try:
            png_size(data)
        except ValueError:
            continue
        out.append(Figure(name, title, caption, data))
    return out


# ---- several runs ----------------------------------------------------------------------------------------------
def _run_names(runs: Sequence[Path]) -> list[str]:
    parts = [r.resolve().parts for r in runs]
    for k in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-k:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(r) for r in runs]


def overlay_page(runs: Sequence[PathLike], max_points: int = 2000, log: Callable[[str], None] = logger.info) -> Page:
    from .run_figures import eval_metric_keys, overlay_figure

    runs = [Path(r) for r in runs]
    for r in runs:
        if detect_kind(r) != "run":
            raise ReportError(f"{r}: only run directories can be overlaid (this one holds: {detect_kind(r)})")
    step = _Steps(f"{len(runs)} runs", log)
    names = _run_names(runs)
    notes: list[str] = []
    hist = {n: _history(r, notes) for n, r in zip(names, runs)}
    for n in notes:
        log(n)
    metrics = {n: (_read_json(r / "metrics.json") if (r / "metrics.json").is_file() else {})
               for n, r in zip(names, runs)}
    keys = [m.get("metric") for m in metrics.values() if m.get("metric")]
    key = keys[0] if keys and all(k == keys[0] for k in keys) else next(
        (k for k in (eval_metric_keys(h) for h in hist.values()) for k in k), None)
    page = Page(f"{len(runs)} runs compared", ", ".join(str(r) for r in runs), "overlay")
    rows = []
    for n, r in zip(names, runs):
        m = metrics[n]
        rec = _read_yaml(r / "recipe.yaml")
        rows.append((n, (rec.get("model") or {}).get("name"), (rec.get("train") or {}).get("learning_rate"),
                     m.get("best_metric"), m.get("best_step"), m.get("global_step"), m.get("train_seconds")))
    sec = Section("Runs", [Table("Runs", ["run", "model", "learning rate", f"best {key or 'metric'}", "best step",
                                          "steps", "train s"], rows)])
    sec.items += [Note(n, "warn") for n in notes]
    if any(m.get("metric") != key for m in metrics.values() if m):
        sec.items.append(Note("the runs select their models on different metrics; the overlay shows "
                              f"{key} for all", "warn"))
    step("overlay")
    sec.items.append(overlay_figure(hist, key, max_points))
    page.sections.append(sec)
    return page


# ---- ablations and sweeps -------------------------------------------------------------------------------------
def ablation_page(path: PathLike, log: Callable[[str], None] = logger.info) -> Page:
    from .ablation_figures import forest_plot, learning_rate_of, lr_sweep_figure, time_figure

    path = Path(path)
    step = _Steps(str(path), log)
    data = _read_json(path / "ablation.json")
    for key in ("summaries", "runs"):
        if not isinstance(data.get(key), list):
            raise ReportError(f"{path / 'ablation.json'}: no {key!r} list; was it written by nlp-cv-tricks ablate?")
    summaries, runs = data["summaries"], data["runs"]
    if not summaries:
        raise ReportError(f"{path / 'ablation.json'}: no variants in 'summaries'")
    sweep = "best_lr" in data
    metric = next((r.get("metric_name") for r in runs if not r.get("error") and r.get("metric_name")), "metric")
    page = Page(data.get("title") or path.name, str(path), "learning-rate sweep" if sweep else "ablation")
    sec = Section("Results")

    def f(x, spec=".4f", signed=False):
        ok = isinstance(x, (int, float)) and math.isfinite(x)
        return format(x, ("+" if signed else "") + spec) if ok else "–"

    rows = []
    for s in summaries:
        ci = (f"[{f(s.get('ci_low'), signed=True)}, {f(s.get('ci_high'), signed=True)}]"
              if f(s.get("ci_low")) != "–" else "–")
        spread = f" ± {f(s.get('std'))}" if f(s.get("std")) != "–" else (" (1 seed)" if s.get("n") == 1 else "")
        rows.append((s["name"], f"{f(s.get('mean'))}{spread}", f(s.get("delta"), signed=True), ci,
                     f(s.get("p_value"), ".3f"),
                     f"{s.get('n')}" + (f" ({s['failed']} failed)" if s.get("failed") else ""),
                     f(s.get("seconds"), ".1f")))
    sec.items.append(Table("Variants", ["variant", f"{metric} mean ± std", "Δ vs baseline", "95% CI of Δ",
                                        "p (paired t)", "seeds", "time/run (s)"], rows,
                           "Δ and its interval are paired by seed against the first row"
                           + (" (the first learning rate)" if sweep else "")))
    failed = [r for r in runs if r.get("error")]
    if failed:
        first = failed[0]
        sec.items.append(Note(f"{len(failed)} run(s) failed, e.g. {first.get('variant')} seed {first.get('seed')}: "
                              f"{str(failed[0].get('error'))[:300]}", "warn"))
    if sweep:
        best = data.get("best_lr")
        sec.items.append(Note(f"best learning rate: {best!r} ({metric} {f(data.get('best_metric'))})"
                              if best is not None else "no learning rate gave a result", "info"))
        if any(learning_rate_of(s["name"]) is not None for s in summaries):
            step("learning-rate sweep")
            sec.items.append(lr_sweep_figure(summaries, runs, metric, best))
    if len(summaries) > 1 and not sweep:
        step("forest plot")
        sec.items.append(forest_plot(summaries, runs, metric))
    if any(isinstance(s.get("seconds"), (int, float)) for s in summaries):
        step("time per run")
        sec.items.append(time_figure(summaries))
    page.sections.append(sec)
    return page


# ---- hard cases ------------------------------------------------------------------------------------------------
def read_true_labels(path: PathLike, label_names: Sequence[str], n: int) -> list[int]:
    """True label ids of the mined training rows, in row order: ``.npy`` (integers), ``.json`` (a list) or a text
    file with one label per line; ids or label names."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise ReportError(f"--true-labels {p}: no such file")
    if p.suffix == ".npy":
        try:
            vals = np.load(p, allow_pickle=False).tolist()
        except ValueError as e:
            raise ReportError(f"{p}: not a plain .npy array of labels ({e})") from None
    elif p.suffix == ".json":
        vals = _read_json(p)
        if not isinstance(vals, list):
            raise ReportError(f"{p}: expected a JSON list with one label per training row")
    else:
        try:
            vals = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError as e:
            raise ReportError(f"--true-labels {p}: not a text file with one label per line (byte {e.start} is not "
                              "UTF-8: a binary file?); give a .npy array, a .json list, or UTF-8 text with one label "
                              "per line") from None
    if len(vals) != n:
        raise ReportError(f"{p}: {len(vals)} labels for the {n} mined training rows; give one label per row, in the "
                          "order of the training file")
    index = {str(name): i for i, name in enumerate(label_names)}
    out = []
    for i, v in enumerate(vals, 1):
        s = str(v)
        if s in index:
            out.append(index[s])
        elif s.lstrip("-").isdigit() and 0 <= int(s) < len(label_names):
            out.append(int(s))
        else:
            raise ReportError(f"{p}: entry {i}: {v!r} is neither a label name ({', '.join(map(str, label_names))}) "
                              f"nor a label id 0..{len(label_names) - 1}")
    return out


def mining_page(path: PathLike, true_labels: Optional[PathLike] = None, top: int = 20,
                log: Callable[[str], None] = logger.info) -> Page:
    from .hardcases_figures import budget_curve, cartography_map, error_histogram, recall_at_budget

    path = Path(path)
    step = _Steps(str(path), log)
    scores = []
    with open(path / "scores.jsonl", encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if line.strip():
                try:
                    scores.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ReportError(f"{path / 'scores.jsonl'}:{i}: not valid JSON ({e.msg})") from None
    if not scores:
        raise ReportError(f"{path / 'scores.jsonl'} is empty; the mining has not finished (run hardcases mine again)")
    summary = _read_json(path / "summary.json") if (path / "summary.json").is_file() else {}
    names = summary.get("label_names") or sorted({s["label_name"] for s in scores})
    page = Page(f"Hard cases of {Path(summary.get('train_file') or path.name).name}", str(path), "hard-case mining")
    sec = Section("Summary", [Table("Mining", ["", "value"], [
        ("training examples", summary.get("n", len(scores))), ("folds", summary.get("folds")),
        ("method", summary.get("method")), ("flagged as likely label errors", summary.get("n_label_issues")),
        ("out-of-fold accuracy (against the given labels)", summary.get("oof_accuracy")),
        ("training file", summary.get("train_file"))])])
    page.sections.append(sec)
    figs = Section("Where the errors are")
    step("cartography map")
    figs.items.append(cartography_map(scores))
    step("error-score histogram")
    figs.items.append(error_histogram(scores))
    if true_labels is not None:
        truth = read_true_labels(true_labels, names, len(scores))
        by_row = sorted(scores, key=lambda s: s["row"])
        step("budget curve")
        figs.items.append(budget_curve(by_row, truth))
        import numpy as np

        wrong = np.array([t != s["label"] for t, s in zip(truth, by_row)], dtype=np.int64)
        order = [s["row"] for s in sorted(by_row, key=lambda s: s["error_rank"])]
        rec = recall_at_budget(order, wrong)
        n = len(order)
        figs.items.append(Table("Found at budget", ["budget", "reviewed", "wrong labels found", "share found"],
                                [(f"{b:.0%}", k, int(round(rec[k - 1] * wrong.sum())), float(rec[k - 1]))
                                 for b in (0.05, 0.10, 0.15, 0.20) for k in [max(1, round(b * n))]],
                                "mine error ranking (flagged first), as in benchmarks/RESULTS.md"))
    else:
        figs.items.append(Note("budget curve: the true labels are not known here. Pass them with "
                               "`nlp-cv-tricks report DIR --true-labels FILE` (one label per training row) to see "
                               "the share of wrong labels each review budget finds."))
    page.sections.append(figs)
    kind = summary.get("example_kind") or "text"
    ranked = sorted(scores, key=lambda s: s["error_rank"])[:top]
    page.sections.append(Section("First examples to review", [Table(
        f"Top {len(ranked)} by error rank", ["rank", "row", "given label", "predicted", "p(given)", "flagged",
                                             "region", kind],
        [(s["error_rank"], s["row"], s["label_name"], s["pred_name"], s["p_label"], s["is_label_issue"], s["region"],
          str(s.get(kind, ""))[:140]) for s in ranked],
        "export them for annotation with nlp-cv-tricks hardcases export")]))
    return page


# ---- entry point ------------------------------------------------------------------------------------------------
def write_report(paths: Union[PathLike, Sequence[PathLike]], out: Optional[PathLike] = None,
                 true_labels: Optional[PathLike] = None, max_points: int = 2000,
                 log: Callable[[str], None] = logger.info) -> dict:
    """Write ``report.html`` (self-contained) and ``report_files/*.png`` for one directory (into it, unless
    ``out``) or for several run directories overlaid (into ``out``, which is then required).

    Returns ``{"kind", "html", "figures", "seconds"}``."""
    t0 = time.perf_counter()
    if max_points < 10:
        raise ReportError(f"--max-points must be at least 10 (points per drawn curve), got {max_points}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ReportError(f"give at least one directory: {_WHAT}")
    if len(paths) > 1:
        if out is None:
            raise ReportError("several directories are overlaid on one page: say where it goes with --out DIR")
        page, kind = overlay_page(paths, max_points, log), "overlay"
    else:
        kind = detect_kind(paths[0])
        if true_labels is not None and kind != "mining":
            raise ReportError(f"--true-labels is for a `hardcases mine` directory; {paths[0]} is a {kind} directory")
        if kind == "run":
            page = run_page(paths[0], max_points, log)
        elif kind in ("ablation", "lr-sweep"):
            page = ablation_page(paths[0], log)
        else:
            page = mining_page(paths[0], true_labels, log=log)
    target = Path(out) if out is not None else paths[0]
    if target.exists() and not target.is_dir():
        raise ReportError(f"--out {target} is a file; --out names the directory that receives {REPORT_FILE} and "
                          f"{FILES_DIR}/")
    written = write_page(page, target)
    return {"kind": kind, **written, "seconds": round(time.perf_counter() - t0, 3)}
