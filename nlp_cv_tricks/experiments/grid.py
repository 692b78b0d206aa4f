"""Running a grid of ablation runs: each ``(variant, seed)`` in its own directory, in a fresh subprocess (``python -m
nlp_cv_tricks.ablate _worker``), in this process, or on Ray through :mod:`nlp_cv_tricks.utils.executors`; a
finished run leaves its record and is reused when the grid runs again."""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from ..utils.io import sha256_file
from .variants import Variant, _slug

__all__ = ["RESULT_FILE", "RunResult", "reused_result", "run_one", "run_grid"]

RESULT_FILE = "ablate_result.json"


@dataclass
class RunResult:
    variant: str
    seed: int
    metric: Optional[float]
    last_metric: Optional[float]
    metric_name: str
    greater_is_better: bool
    seconds: float
    train_seconds: Optional[float]
    peak_mem_mb: Optional[float]
    gpu_peak_mem_mb: Optional[float]
    run_dir: str
    overrides: list[str]
    reused: bool = False
    error: Optional[str] = None
    recipe: Optional[str] = None
    recipe_sha256: Optional[str] = None  # of the recipe file's bytes: an edited recipe is a new experiment


def _file_sha256(path: str | os.PathLike) -> Optional[str]:
    try:
        return sha256_file(path)
    except OSError:
        return None


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _reset_accelerate_state() -> None:
    from ..engine.trainer import reset_accelerate_state

    reset_accelerate_state()


def _train_in_process(recipe: str, overrides: list[str]) -> dict:
    """Train once in this process; return the fields of :class:`RunResult` it knows."""
    import torch

    from ..config import load_recipe
    from ..runner import build_trainer

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    # no report.html per run: the ablation's own page (nlp-cv-tricks report OUT_DIR) shows them side by side
    r = load_recipe(recipe, list(overrides) + ["output.report=false"])
    _reset_accelerate_state()  # runs in one process may differ in mixed precision or accumulation
    trainer = build_trainer(r)
    res = trainer.fit()
    key = trainer.state.metric_key  # the run's public view, as the plug-ins read it
    last = res.metrics.get(key)
    return {
        "metric": res.best_metric if res.best_metric is not None else last,
        "last_metric": last,
        "metric_name": key,
        "greater_is_better": bool(trainer.state.greater_is_better),
        "train_seconds": res.train_seconds,
        "peak_mem_mb": _peak_rss_mb(),
        "gpu_peak_mem_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if torch.cuda.is_available() else None,
        "is_main": trainer.accelerator.is_main_process,
    }


def _atomic_json(path: Path, obj: Any) -> None:
    from ..utils.io import atomic_write_json

    atomic_write_json(path, obj)


def _run_overrides(variant: Variant, seed: int, run_dir: Path, overrides: Sequence[str]) -> list[str]:
    return list(overrides) + list(variant.overrides) + [
        f"train.seed={seed}", f"output.dir={run_dir / 'train'}", "output.overwrite=true", "train.progress_bar=false"]


def reused_result(recipe: str | os.PathLike, variant: Variant, seed: int, run_dir: str | os.PathLike,
                  overrides: Sequence[str] = ()) -> Optional[RunResult]:
    """The finished result of this ``(variant, seed)`` in ``run_dir`` when it can be reused (the same overrides,
    the same recipe file, no error), else None."""
    run_dir = Path(run_dir)
    result_path = run_dir / RESULT_FILE
    if not result_path.is_file():
        return None
    recipe = variant.recipe or recipe
    saved = json.loads(result_path.read_text(encoding="utf-8"))
    if saved.get("overrides") == _run_overrides(variant, seed, run_dir, overrides) \
            and saved.get("recipe") in (None, str(recipe)) and saved.get("error") is None:
        if saved.get("recipe_sha256") == _file_sha256(recipe):
            saved["reused"] = True
            return RunResult(**{k: saved.get(k) for k in RunResult.__dataclass_fields__})
        print(f"{run_dir}: {recipe} changed since this run: training it again", file=sys.stderr, flush=True)
    return None


def run_one(recipe: str | os.PathLike, variant: Variant, seed: int, run_dir: str | os.PathLike,
            overrides: Sequence[str] = (), in_process: bool = False, launcher: Optional[str] = None,
            force: bool = False) -> RunResult:
    """Run (or reuse) one ``(variant, seed)``. The run's overrides: the common ``overrides``, the variant's,
    then ``train.seed``, ``output.dir`` (``run_dir/train``), ``output.overwrite=true`` (an unfinished run is
    redone from scratch) and ``train.progress_bar=false``."""
    run_dir = Path(run_dir)
    result_path = run_dir / RESULT_FILE
    recipe = variant.recipe or recipe
    all_ovr = _run_overrides(variant, seed, run_dir, overrides)
    recipe_sha = _file_sha256(recipe)
    if not force:
        saved = reused_result(recipe, variant, seed, run_dir, overrides)
        if saved is not None:
            return saved
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    error = None
    fields: dict = {}
    if in_process:
        try:
            fields = _train_in_process(str(recipe), all_ovr)
        except Exception as e:  # one failed run must not lose the sweep; the table shows it
            error = f"{type(e).__name__}: {e}"
    else:
        worker_out = run_dir / "worker.json"
        if worker_out.exists():
            worker_out.unlink()
        cmd = (shlex.split(launcher) if launcher else [sys.executable]) + [
            "-m", "nlp_cv_tricks.ablate", "_worker", "--result", str(worker_out), str(recipe), *all_ovr]
        with open(run_dir / "worker.log", "w", encoding="utf-8") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        if proc.returncode != 0 or not worker_out.is_file():
            tail = (run_dir / "worker.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            error = f"exit code {proc.returncode}: " + " | ".join(tail)
        else:
            fields = json.loads(worker_out.read_text(encoding="utf-8"))
    seconds = time.perf_counter() - t0
    res = RunResult(variant=variant.name, seed=int(seed), metric=fields.get("metric"),
                    last_metric=fields.get("last_metric"), metric_name=fields.get("metric_name", "?"),
                    greater_is_better=bool(fields.get("greater_is_better", True)), seconds=round(seconds, 2),
                    train_seconds=fields.get("train_seconds"), peak_mem_mb=fields.get("peak_mem_mb"),
                    gpu_peak_mem_mb=fields.get("gpu_peak_mem_mb"), run_dir=str(run_dir), overrides=all_ovr,
                    error=error, recipe=str(recipe), recipe_sha256=recipe_sha)
    _atomic_json(result_path, res.__dict__)
    return res


def run_grid(recipe: str | os.PathLike, items: Sequence[tuple[Variant, int]], out: Path,
             overrides: Sequence[str] = (), in_process: bool = False, launcher: Optional[str] = None,
             force: bool = False, executor: Any = "local", retries: int = 0, on_run=None) -> list[RunResult]:
    """Every ``(variant, seed)`` of ``items`` through ``executor`` (:mod:`nlp_cv_tricks.utils.executors`), each by
    :func:`run_one` into ``out/runs/<variant>/seed<seed>``; results in the order of ``items``. ``on_run(i,
    variant, seed, result)`` is called as each run finishes (``i`` = runs finished so far).

    Local: the runs go one after another, as :func:`run_one` always ran them. Ray: finished runs are found here
    and not submitted; each other run is a task that calls :func:`run_one` on a worker and writes its run
    directory and record there (``out`` must be on a filesystem the workers share); a worker process runs one
    task (a fresh process per run, as the local subprocess), unless ``in_process`` asks to reuse them;
    ``launcher`` (e.g. ``accelerate launch``) still starts each run as a subprocess of its task. A run that fails
    is tried ``retries`` more times and then reported with its error; the grid goes on."""
    from ..utils.executors import Job, make_executor

    own = isinstance(executor, str)
    if own:
        executor = make_executor(executor, retries=retries, fresh_process=not in_process)
    out = Path(out)
    results: dict[str, RunResult] = {}
    keys, jobs, reused = [], [], 0
    for variant, seed in items:
        run_dir = out / "runs" / _slug(variant) / f"seed{seed}"
        key = f"{variant.name} seed={seed}"
        keys.append(key)
        r = reused_result(recipe, variant, seed, run_dir, overrides) if executor.remote and not force else None
        if r is not None:
            results[key] = r
            reused += 1
            if on_run:
                on_run(reused, variant, seed, r)
            continue
        paths = {"the recipe": str(variant.recipe or recipe), "the grid's output directory": str(out)}
        jobs.append(Job(key, run_one, (recipe, variant, seed, run_dir, list(overrides)),
                        {"in_process": in_process if not executor.remote else launcher is None,
                         "launcher": launcher, "force": force},
                        paths=paths if executor.remote else {}))

    def done(o) -> None:
        recipe_, variant, seed, run_dir, ovr = o.job.args
        r = o.value
        if r is None:  # the job raised (a worker that could not reach a path, a crashed worker)
            rec = variant.recipe or recipe_
            r = RunResult(variant=variant.name, seed=int(seed), metric=None, last_metric=None, metric_name="?",
                          greater_is_better=True, seconds=0.0, train_seconds=None, peak_mem_mb=None,
                          gpu_peak_mem_mb=None, run_dir=str(run_dir), overrides=_run_overrides(variant, seed,
                                                                                               run_dir, ovr),
                          error=o.error, recipe=str(rec), recipe_sha256=_file_sha256(rec))
        if r.error is not None and o.host and executor.remote:
            r.error = f"{r.error} (on worker {o.host})"
        if r.error is not None and o.attempts > 1:
            r.error = f"{r.error} (after {o.attempts} attempts)"
        results[o.job.key] = r
        if on_run:
            on_run(reused + o.finished, variant, seed, r)

    try:
        executor.run(jobs, done, error_of=lambda r: r.error,
                     resume_hint=f"run the same command again (the records are under {out})")
    finally:
        if own:
            executor.close()
    return [results[k] for k in keys]
