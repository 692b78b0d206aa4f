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

import argparse
import difflib
import hashlib
import itertools
import json
import math
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from .config import RecipeError
from .engine.run_lock import lock_folder, releases_locks

__all__ = ["Variant", "RunResult", "VariantSummary", "AblationResult", "parse_vary", "build_variants",
           "run_one", "summarize", "markdown_table", "ablate", "lr_sweep", "add_cli"]

RESULT_FILE = "ablate_result.json"


class AblateError(RecipeError):
    """A malformed --vary specification or an unusable recipe for ablation (a RecipeError, so the command line
    reports it as ``error: ...`` with exit code 2)."""


# ---------------------------------------------------------------------------------------------------------
# variants
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Variant:
    """One row of an ablation: ``overrides`` on the ablated recipe, or on another ``recipe`` file (``--vary
    recipe=a.yaml,b.yaml``: compare whole set-ups, e.g. TextCNN vs FastText, on the same data)."""

    name: str
    overrides: list[str] = field(default_factory=list)
    recipe: Optional[str] = None


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside ``{}``, ``[]`` and ``()``."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
            if depth < 0:
                raise AblateError(f"unbalanced brackets in {text!r}")
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise AblateError(f"unbalanced brackets in {text!r}")
    out.append("".join(cur))
    return [s.strip() for s in out if s.strip()]


_TRICK_OP = re.compile(r"([+-])\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\{[^{}]*\})?")


def _trick_name(spec: Any) -> str:
    return spec if isinstance(spec, str) else next(iter(spec))


def apply_trick_ops(base: list, ops: str) -> list:
    """Apply ``+name``, ``+name{opts}`` and ``-name`` operations to a recipe's trick list."""
    from .callbacks.registry import available_callbacks
    from .tricks import available_tricks

    tricks = list(base)
    pos, ops = 0, ops.strip()
    if not ops:
        raise AblateError("empty tricks variant (use +name or -name)")
    while pos < len(ops):
        m = _TRICK_OP.match(ops, pos)
        if not m:
            raise AblateError(f"tricks variant {ops!r}: expected +name, +name{{opt: value}} or -name at "
                              f"{ops[pos:]!r}")
        sign, name, opts = m.groups()
        if name not in available_tricks() and name not in available_callbacks():  # observers listed under tricks
            near = difflib.get_close_matches(name, available_tricks(), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise AblateError(f"tricks variant {ops!r}: unknown trick {name!r}{hint} (available: "
                              f"{', '.join(available_tricks())})")
        if sign == "+":
            if opts:
                try:
                    parsed = yaml.safe_load(opts)
                except yaml.YAMLError as e:
                    raise AblateError(f"tricks variant {ops!r}: options {opts} are not a YAML mapping: {e}") from None
                if not isinstance(parsed, dict):
                    raise AblateError(f"tricks variant {ops!r}: options {opts} must be a mapping")
                tricks = [t for t in tricks if _trick_name(t) != name] + [{name: parsed}]
            else:
                tricks = [t for t in tricks if _trick_name(t) != name] + [name]
        else:
            if opts:
                raise AblateError(f"tricks variant {ops!r}: -{name} takes no options")
            if not any(_trick_name(t) == name for t in tricks):
                raise AblateError(f"tricks variant {ops!r}: the recipe has no trick {name!r} to remove "
                                  f"(it has {[_trick_name(t) for t in tricks]})")
            tricks = [t for t in tricks if _trick_name(t) != name]
        pos = m.end()
        while pos < len(ops) and ops[pos].isspace():
            pos += 1
    return tricks


def parse_vary(spec: str, base_tricks: list) -> list[Variant]:
    """One ``--vary KEY=V1,V2`` specification → its variants."""
    if "=" not in spec:
        raise AblateError(f"--vary {spec!r} must look like KEY=V1,V2 (e.g. train.learning_rate=0.01,0.005 or "
                          "tricks=+fgm,+rdrop)")
    key, _, values = spec.partition("=")
    key = key.strip()
    vals = split_top_level(values)
    if not vals:
        raise AblateError(f"--vary {spec!r} lists no values")
    out = []
    for v in vals:
        if key == "recipe":
            out.append(_recipe_variant(v))
        elif key == "tricks":
            tricks = apply_trick_ops(base_tricks, v)
            out.append(Variant(f"tricks={v}", [f"tricks={json.dumps(tricks)}"]))
        else:
            out.append(Variant(f"{key}={v}", [f"{key}={v}"]))
    return out


def _recipe_variant(path: str) -> Variant:
    from .config import RecipeError, resolve_recipe

    try:
        p = resolve_recipe(path)  # a file, or the name of a built-in recipe
    except RecipeError as e:
        raise AblateError(f"--vary recipe={path}: {e}") from None
    return Variant(f"recipe={p.stem}", [], recipe=str(p))


def _raw_recipe(recipe: str | os.PathLike, overrides: Sequence[str]) -> dict:
    from .config import apply_overrides, load_recipe

    from .config import resolve_recipe

    load_recipe(recipe, list(overrides))  # validates, with the recipe's own error messages
    data = yaml.safe_load(resolve_recipe(recipe).read_text(encoding="utf-8")) or {}
    return apply_overrides(data, list(overrides))


def build_variants(recipe: str | os.PathLike, vary: Sequence[str], overrides: Sequence[str] = (),
                   grid: bool = False) -> list[Variant]:
    """``[baseline, variant, ...]``; with ``grid`` the cartesian product of the axes. Trick operations of
    several axes compose in grid mode (each applies to the list the previous one produced)."""
    base_tricks = list(_raw_recipe(recipe, overrides).get("tricks") or [])
    variants = [Variant("baseline", [])]
    if not grid:
        seen = {"baseline"}
        for spec in vary:
            for v in parse_vary(spec, base_tricks):
                if v.name in seen:
                    raise AblateError(f"variant {v.name!r} is listed twice")
                seen.add(v.name)
                variants.append(v)
        return _validated(variants, overrides)
    axes = []
    for spec in vary:
        key, _, values = spec.partition("=")
        if "=" not in spec:
            raise AblateError(f"--vary {spec!r} must look like KEY=V1,V2")
        axes.append([(key.strip(), v) for v in split_top_level(values)])
    for combo in itertools.product(*axes):
        tricks, ovr, names, other = list(base_tricks), [], [], None
        for key, v in combo:
            names.append(f"{key}={v}")
            if key == "recipe":
                other = _recipe_variant(v).recipe
                tricks = list(_raw_recipe(other, overrides).get("tricks") or [])
            elif key == "tricks":
                tricks = apply_trick_ops(tricks, v)
            else:
                ovr.append(f"{key}={v}")
        if any(k == "tricks" for k, _ in combo):
            ovr.append(f"tricks={json.dumps(tricks)}")
        variants.append(Variant(" ".join(names), ovr, recipe=other))
    return _validated(variants, overrides)


def _validated(variants: list[Variant], overrides: Sequence[str]) -> list[Variant]:
    """Variants on other recipe files: each file loads with the common overrides (errors name the file) before
    any run starts."""
    from .config import load_recipe

    for v in variants:
        if v.recipe is not None:
            try:
                load_recipe(v.recipe, list(overrides) + list(v.overrides))
            except RecipeError as e:
                raise AblateError(f"variant {v.name!r} ({v.recipe}): {e}") from None
    return variants


def _slug(variant: Variant) -> str:
    if variant.name == "baseline":
        return "baseline"
    short = re.sub(r"[^A-Za-z0-9._=+-]+", "_", variant.name)[:60].strip("_")
    key = variant.overrides if variant.recipe is None else [variant.recipe] + variant.overrides
    h = hashlib.sha1(json.dumps(key).encode()).hexdigest()[:8]
    return f"{short}-{h}"


# ---------------------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------------------
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
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _reset_accelerate_state() -> None:
    from .engine.trainer import reset_accelerate_state

    reset_accelerate_state()


def _train_in_process(recipe: str, overrides: list[str]) -> dict:
    """Train once in this process; return the fields of :class:`RunResult` it knows."""
    import torch

    from .config import load_recipe
    from .runner import build_trainer

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    # no report.html per run: the ablation's own page (nlp-cv-tricks report OUT_DIR) shows them side by side
    r = load_recipe(recipe, list(overrides) + ["output.report=false"])
    _reset_accelerate_state()  # runs in one process may differ in mixed precision or accumulation
    trainer = build_trainer(r)
    res = trainer.fit()
    key = trainer._metric_key()
    last = res.metrics.get(key)
    return {
        "metric": res.best_metric if res.best_metric is not None else last,
        "last_metric": last,
        "metric_name": key,
        "greater_is_better": bool(trainer._greater_is_better()),
        "train_seconds": res.train_seconds,
        "peak_mem_mb": _peak_rss_mb(),
        "gpu_peak_mem_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if torch.cuda.is_available() else None,
        "is_main": trainer.accelerator.is_main_process,
    }


def _atomic_json(path: Path, obj: Any) -> None:
    from .utils.io import atomic_write_json

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
    from .utils.executors import Job, make_executor

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


# ---------------------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------------------
@dataclass
class VariantSummary:
    name: str
    n: int
    mean: Optional[float]
    std: Optional[float]
    delta: Optional[float]
    ci_low: Optional[float]
    ci_high: Optional[float]
    p_value: Optional[float]
    seconds: Optional[float]
    peak_mem_mb: Optional[float]
    gpu_peak_mem_mb: Optional[float]
    values: list
    failed: int


def paired_stats(values: Sequence[float], baseline: Sequence[float], n_boot: int = 10000,
                 seed: int = 0) -> tuple[float, float, float, float]:
    """Mean paired difference, its 95% bootstrap interval (resampling seeds) and the paired t-test p-value
    (nan when undefined: fewer than 2 pairs or identical differences)."""
    import numpy as np

    d = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    if d.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = (float(x) for x in np.percentile(boots, [2.5, 97.5]))
    if np.allclose(d, d[0]):
        p = 0.0 if d[0] != 0 else 1.0
    else:
        from .utils.optional import require

        stats = require("scipy.stats", purpose="the paired t-test of ablate (2+ seeds)")
        p = float(stats.ttest_rel(np.asarray(values, float), np.asarray(baseline, float)).pvalue)
    return mean, lo, hi, p


def summarize(runs: Sequence[RunResult], variant_names: Sequence[str], report: str = "best") -> list[VariantSummary]:
    """Per-variant statistics; differences are paired by seed against ``baseline`` (the first name)."""
    import numpy as np

    def value(r: RunResult):
        return r.metric if report == "best" else r.last_metric

    by: dict[str, dict[int, RunResult]] = {}
    for r in runs:
        by.setdefault(r.variant, {})[r.seed] = r
    base = {s: value(r) for s, r in by.get(variant_names[0], {}).items() if r.error is None and value(r) is not None}
    out = []
    for name in variant_names:
        rs = by.get(name, {})
        ok = {s: value(r) for s, r in rs.items() if r.error is None and value(r) is not None}
        vals = [ok[s] for s in sorted(ok)]
        mean = float(np.mean(vals)) if vals else None
        std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None  # one seed has no spread
        delta = lo = hi = p = None
        if name != variant_names[0]:
            common = sorted(set(ok) & set(base))
            if common:
                delta, lo, hi, p = paired_stats([ok[s] for s in common], [base[s] for s in common])
        secs = [r.seconds for r in rs.values() if r.error is None]
        mems = [r.peak_mem_mb for r in rs.values() if r.peak_mem_mb is not None]
        gmems = [r.gpu_peak_mem_mb for r in rs.values() if r.gpu_peak_mem_mb is not None]
        out.append(VariantSummary(name, len(vals), mean, std, delta, lo, hi, p,
                                  float(np.mean(secs)) if secs else None, max(mems) if mems else None,
                                  max(gmems) if gmems else None, vals,
                                  sum(1 for r in rs.values() if r.error is not None)))
    return out


def _fmt(x: Optional[float], spec: str = ".4f", signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(x, ("+" if signed else "") + spec)


def markdown_table(summaries: Sequence[VariantSummary], metric_name: str) -> str:
    gpu = any(s.gpu_peak_mem_mb is not None for s in summaries)
    head = ["variant", f"{metric_name} mean ± std", "Δ vs baseline", "95% CI of Δ", "p (paired t)", "seeds",
            "time/run (s)", "peak RSS (MB)"] + (["peak GPU (MB)"] if gpu else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        has_ci = s.ci_low is not None and math.isfinite(s.ci_low)
        ci = f"[{_fmt(s.ci_low, signed=True)}, {_fmt(s.ci_high, signed=True)}]" if has_ci else "–"
        if s.mean is None:
            value = "–"
        else:
            value = _fmt(s.mean) + (f" ± {_fmt(s.std)}" if s.std is not None else " (1 seed)")
        seeds = f"{s.n}" + (f" ({s.failed} failed)" if s.failed else "")
        row = [s.name, value,
               _fmt(s.delta, signed=True), ci, _fmt(s.p_value, ".3f"), seeds, _fmt(s.seconds, ".1f"),
               _fmt(s.peak_mem_mb, ".0f")] + ([_fmt(s.gpu_peak_mem_mb, ".0f")] if gpu else [])
        lines.append("| " + " | ".join(row) + " |")
    few = min((s.n for s in summaries[1:] if s.ci_low is not None), default=None)  # n: seeds that finished
    if few == 1:
        lines += ["", "One seed: no spread and no interval; a difference this size may be seed noise. Add seeds "
                      "(--seeds 3) before concluding."]
    elif few is not None and few < 5:
        lines += ["", f"With {few} paired seeds the bootstrap interval is little more than the range of the "
                      "differences: treat it as indicative and add seeds before concluding."]
    return "\n".join(lines) + "\n"


@dataclass
class AblationResult:
    markdown: str
    summaries: list[VariantSummary]
    runs: list[RunResult]
    out_dir: str
    metric_name: str


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


def _write_report(out: Path, title: str, md: str, summaries, runs, extra: Optional[dict] = None) -> None:
    from .utils.io import atomic_write_text

    atomic_write_text(out / "ablation.md", f"# {title}\n\n{md}")
    _atomic_json(out / "ablation.json", {"title": title, "summaries": [s.__dict__ for s in summaries],
                                         "runs": [r.__dict__ for r in runs], **(extra or {})})


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


# ---------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------
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
    from .utils.executors import add_executor_args

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
    from .utils.executors import ExecutorError, executor_from_args

    try:
        return executor_from_args(a, fresh_process=not a.in_process)
    except ExecutorError as e:
        raise AblateError(str(e)) from None


def _cmd_ablate(args) -> int:
    a = ablate_parser().parse_intermixed_args(args.rest)
    if not a.vary:
        raise AblateError("give at least one --vary KEY=V1,V2 (e.g. --vary tricks=+fgm,+rdrop)")
    from .utils.executors import GridInterrupted

    try:
        with _executor(a) as ex:
            res = ablate(args.recipe, a.vary, _seed_arg(a), a.overrides, a.out, a.grid, a.in_process, a.launcher,
                         a.report, a.force, a.save_models, executor=ex)
    except GridInterrupted as e:
        print(f"\n{e}", file=sys.stderr)
        return 130
    print()
    print(res.markdown)
    print(f"written to {Path(res.out_dir) / 'ablation.md'} and ablation.json")
    return 0 if all(s.failed == 0 for s in res.summaries) else 1


def _cmd_lr_sweep(args) -> int:
    a = lr_sweep_parser().parse_intermixed_args(args.rest)
    from .utils.executors import GridInterrupted

    try:
        with _executor(a) as ex:
            res = lr_sweep(args.recipe, _seed_arg(a), a.start, a.factor, a.min_lr, a.patience, a.overrides, a.out,
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
    """Add the ``ablate`` and ``lr-sweep`` subcommands (``nlp_cv_tricks.cli.register_cli(add_cli)``).

    Everything after RECIPE is parsed by :func:`ablate_parser` / :func:`lr_sweep_parser` with
    ``parse_intermixed_args``, so options and ``key=value`` overrides can come in any order."""
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


def _worker_main(argv: Sequence[str]) -> int:
    """``python -m nlp_cv_tricks.ablate _worker --result FILE RECIPE overrides...`` (one run)."""
    p = argparse.ArgumentParser(prog="nlp_cv_tricks.ablate _worker")
    p.add_argument("recipe")
    p.add_argument("--result", required=True)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    from .utils.logs import setup_logging

    setup_logging()
    fields = _train_in_process(args.recipe, args.overrides)
    if fields.pop("is_main", True):
        _atomic_json(Path(args.result), fields)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_worker":
        return _worker_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m nlp_cv_tricks.ablate")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (AblateError, RecipeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
