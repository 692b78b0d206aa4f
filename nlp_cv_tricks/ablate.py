"""Ablations: run a recipe's baseline and variants over the same seeds and tabulate the spread.

Command line::

    nlp-cv-tricks ablate RECIPE --vary tricks=+fgm,+rdrop --vary train.learning_rate=0.01,0.005 --seeds 3 \
        [--grid] [--out DIR] [--in-process] [--launcher "accelerate launch --num_processes 2"] \
        [--executor local|ray] [--retries N] [key=value ...]
    nlp-cv-tricks lr-sweep RECIPE --start 0.01 --factor 0.5 --seeds 3 [--patience 1] [key=value ...]

``--vary KEY=V1,V2,...`` adds one variant per value (commas inside ``{}``/``[]`` do not split). For ``tricks``
a value is a sequence of ``+name`` (append a trick), ``+name{opt: value, ...}`` (with options, YAML flow
mapping) and ``-name`` (remove it from the recipe's list), e.g. ``tricks=+fgm,+fgm{epsilon: 0.3},+fgm+rdrop``.
``recipe=other.yaml,...`` runs other recipe files as variants -- whole set-ups against the ablated recipe, with
the trailing ``key=value`` arguments applied to all, e.g. the text baselines on your own data::

    nlp-cv-tricks ablate recipes/thucnews_textcnn.yaml --vary recipe=recipes/thucnews_fasttext.yaml,\
        recipes/thucnews_dpcnn.yaml data.train_file=my_train.tsv data.dev_file=my_dev.tsv --seeds 3

Any other key is a recipe override (``train.batch_size=32,64,128,512``). Variants are one-factor-at-a-time
against the baseline; ``--grid`` takes the cartesian product of the ``--vary`` axes instead. Trailing
``key=value`` arguments apply to every run (baseline included).

Every run is ``(variant, seed)`` with its own directory under ``--out`` (default ``runs/ablate/<recipe>``);
a finished run leaves ``ablate_result.json`` there and is not redone when the command runs again (resumable).
The table (``ablation.md``, also printed) and ``ablation.json`` are written to ``--out``: the tracked dev
metric (``train.metric``, best value over the run's evaluations; ``--report last`` for the last one) as mean ±
std over seeds, the mean paired difference to the baseline with a 95% paired-bootstrap interval and a paired
t-test p-value, wall time per run and peak memory.

Runs go through a subprocess per run by default: every run gets a fresh process (no state leaks between runs:
RNG, thread settings, cached modules, memory), its own peak memory is measurable (``ru_maxrss`` of the child;
``torch.cuda.max_memory_allocated`` on GPU), a crash fails one run rather than the sweep, and ``--launcher``
can start it under ``accelerate launch`` for several GPUs. ``--in-process`` (and ``in_process=True`` from
Python) runs the trainer in the calling process instead: faster for tiny models and tests; its peak memory is
the process's high-water mark so far (GPU peaks are still per run).

``--executor ray`` (``[--ray-address auto|HOST:PORT] [--cpus-per-run N] [--gpus-per-run N]``) sends each run to
Ray as a task that calls :func:`run_one` on a worker (:func:`run_grid`, :mod:`nlp_cv_tricks.utils.executors`):
the same run directory and record, written by the worker under ``--out`` (on a cluster a shared filesystem).
``--retries N`` (either executor) tries a failed run again; a run that still fails is reported and left out.

From Python::

    from nlp_cv_tricks.ablate import ablate
    result = ablate("recipes/quickstart.yaml", vary=["tricks=+fgm,+rdrop"], seeds=3)
    print(result.markdown)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from .engine.run_lock import lock_folder, releases_locks
from .experiments.grid import (RESULT_FILE, RunResult, _atomic_json, _run_overrides, _train_in_process,  # noqa: F401
                               reused_result, run_grid, run_one)
from .experiments.stats import VariantSummary, paired_stats, summarize  # noqa: F401
from .experiments.tables import AblationResult, _fmt, _write_report, markdown_table  # noqa: F401
from .experiments.variants import (AblateError, Variant, _slug, apply_trick_ops, build_variants,  # noqa: F401
                                   parse_vary, split_top_level)

__all__ = ["Variant", "RunResult", "VariantSummary", "AblationResult", "parse_vary", "build_variants",
           "run_one", "summarize", "markdown_table", "ablate", "lr_sweep"]


def _default_out(recipe) -> Path:
    return Path("runs") / "ablate" / Path(recipe).stem


def _seeds(recipe, overrides, seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise AblateError(f"--seeds must be >= 1, got {seeds}")
        from .config import load_recipe

        start = load_recipe(recipe, list(overrides)).train.seed
        return [start + i for i in range(seeds)]
    return [int(s) for s in seeds]


@releases_locks
def ablate(recipe: str | os.PathLike, vary: Sequence[str], seeds: int | Sequence[int] = 3,
           overrides: Sequence[str] = (), out_dir: Optional[str | os.PathLike] = None, grid: bool = False,
           in_process: bool = False, launcher: Optional[str] = None, report: str = "best", force: bool = False,
           save_models: bool = False, verbose: bool = True, executor: Any = "local",
           retries: int = 0) -> AblationResult:
    """Run the baseline and every variant over the same seeds; write ``ablation.md``/``ablation.json`` to
    ``out_dir`` and return the table. ``save_models=False`` sets ``output.save_best=false`` (the final model
    of each run is still saved by the trainer). ``executor``: ``"local"``, ``"ray"`` or an
    :class:`~nlp_cv_tricks.utils.executors.Executor` (see :func:`run_grid`); ``retries`` for a name."""
    if report not in ("best", "last"):
        raise AblateError(f"report must be 'best' or 'last', got {report!r}")
    overrides = list(overrides) + ([] if save_models else ["output.save_best=false"]) + ["output.report_to=none"]
    variants = build_variants(recipe, vary, overrides, grid)
    seed_list = _seeds(recipe, overrides, seeds)
    out = Path(out_dir) if out_dir else _default_out(recipe)
    out.mkdir(parents=True, exist_ok=True)
    lock_folder(out, "ablation")  # one ablation writes here at a time; released when this returns or raises
    total = len(variants) * len(seed_list)
    from .utils.progress import progress

    bar = progress(total=total, desc="ablate", unit="run", enabled=verbose, every_seconds=0)

    def show(i: int, variant: Variant, seed: int, r: RunResult) -> None:
        if verbose:
            state = "reused" if r.reused else ("FAILED: " + r.error if r.error else f"{r.seconds:.1f}s")
            print(f"[{i}/{total}] {variant.name} seed={seed}: {r.metric_name}={_fmt(r.metric)} ({state})",
                  flush=True)
        bar.update(1)

    try:
        runs = run_grid(recipe, [(v, s) for s in seed_list for v in variants], out, overrides, in_process, launcher,
                        force, executor, retries, show)
    finally:
        bar.close()
    metric_name = next((r.metric_name for r in runs if r.error is None), "metric")
    summaries = summarize(runs, [v.name for v in variants], report)
    md = markdown_table(summaries, metric_name + (" (best)" if report == "best" else " (last)"))
    title = f"Ablation of {recipe} over seeds {seed_list}"
    _write_report(out, title, md, summaries, runs, {"variants": [v.__dict__ for v in variants]})
    return AblationResult(md, summaries, runs, str(out), metric_name)


@releases_locks
def lr_sweep(recipe: str | os.PathLike, seeds: int | Sequence[int] = 1, start: float = 0.01, factor: float = 0.5,
             min_lr: float = 1e-7, patience: int = 1, overrides: Sequence[str] = (),
             out_dir: Optional[str | os.PathLike] = None, in_process: bool = False, launcher: Optional[str] = None,
             report: str = "best", force: bool = False, verbose: bool = True, executor: Any = "local",
             retries: int = 0) -> AblationResult:
    """The halving search: train at ``start``, ``start*factor``, ... (over the same seeds) and stop once the
    mean dev metric has not improved on the best so far for ``patience`` consecutive learning rates. The
    table's "baseline" row is the first learning rate; the best one is named in ``ablation.json``. The seeds of
    one learning rate run together through ``executor`` (as in :func:`ablate`); the next rate waits for them."""
    from .tricks.lr import halving_values, is_improvement

    if start <= 0 or not 0 < factor < 1:
        raise AblateError(f"lr-sweep needs --start > 0 and 0 < --factor < 1, got start={start:g}, factor={factor:g}")
    if start < min_lr:
        raise AblateError(f"--start {start:g} is below --min-lr {min_lr:g}: no learning rate to try")
    if patience < 1:
        raise AblateError(f"--patience must be >= 1, got {patience}")
    overrides = list(overrides) + ["output.save_best=false", "output.report_to=none"]
    seed_list = _seeds(recipe, overrides, seeds)
    out = Path(out_dir) if out_dir else _default_out(recipe).with_name(Path(recipe).stem + "-lr-sweep")
    out.mkdir(parents=True, exist_ok=True)
    lock_folder(out, "learning-rate sweep")  # released when this returns or raises
    runs, names = [], []
    best, best_lr, bad, mode = None, None, 0, None
    own = isinstance(executor, str)
    if own:
        from .utils.executors import make_executor

        executor = make_executor(executor, retries=retries, fresh_process=not in_process)

    def show(i: int, v: Variant, seed: int, r: RunResult) -> None:
        if verbose:
            val = r.metric if report == "best" else r.last_metric
            print(f"{v.name.replace('train.learning_rate', 'lr')} seed={seed}: {r.metric_name}={_fmt(val)}"
                  + (f" FAILED: {r.error}" if r.error else ""), flush=True)

    try:
        for lr in halving_values(start, factor, min_lr):
            v = Variant(f"train.learning_rate={lr:g}", [f"train.learning_rate={lr!r}"])
            names.append(v.name)
            vals = []
            for r in run_grid(recipe, [(v, s) for s in seed_list], out, overrides, in_process, launcher, force,
                              executor, retries, show):
                r.variant = v.name
                runs.append(r)
                val = r.metric if report == "best" else r.last_metric
                if r.error is None and val is not None:
                    vals.append(val)
                    mode = "max" if r.greater_is_better else "min"
            mean = sum(vals) / len(vals) if vals else None
            if mean is not None and is_improvement(mean, best, mode or "max"):
                best, best_lr, bad = mean, lr, 0
            else:
                bad += 1
                if bad >= patience:
                    break
    finally:
        if own:
            executor.close()
    metric_name = next((r.metric_name for r in runs if r.error is None), "metric")
    summaries = summarize(runs, names, report)
    md = markdown_table(summaries, metric_name + (" (best)" if report == "best" else " (last)"))
    md += f"\nBest learning rate: {best_lr!r} ({metric_name} {_fmt(best)}).\n" if best_lr is not None else ""
    _write_report(out, f"Learning-rate halving sweep of {recipe} from {start:g} (factor {factor:g}), seeds "
                       f"{seed_list}", md, summaries, runs, {"best_lr": best_lr, "best_metric": best})
    return AblationResult(md, summaries, runs, str(out), metric_name)


def _worker_main(argv: Sequence[str]) -> int:
    """``python -m nlp_cv_tricks.ablate _worker --result FILE RECIPE overrides...``: one run, the command line
    :func:`nlp_cv_tricks.experiments.grid.run_one` starts (the commands themselves are in :mod:`nlp_cv_tricks.cli`)."""
    result, rest, it = None, [], iter(argv)
    for a in it:
        if a == "--result":
            result = next(it, None)
        elif a.startswith("--result="):
            result = a.split("=", 1)[1]
        else:
            rest.append(a)
    if not result or not rest:
        raise SystemExit("usage: python -m nlp_cv_tricks.ablate _worker --result FILE RECIPE [key=value ...]")
    from .utils.gc_policy import tune_for_a_command
    from .utils.logs import setup_logging

    tune_for_a_command()
    setup_logging()
    fields = _train_in_process(rest[0], rest[1:])
    if fields.pop("is_main", True):
        _atomic_json(Path(result), fields)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_worker":
        return _worker_main(argv[1:])
    raise SystemExit("python -m nlp_cv_tricks.ablate runs one run of a grid (_worker); the commands are "
                     "`nlp-cv-tricks ablate` and `nlp-cv-tricks lr-sweep`")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
