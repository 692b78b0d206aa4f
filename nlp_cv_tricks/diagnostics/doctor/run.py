"""The doctor on a run directory: diagnose and prescribe from its history, recipe and model config; the report
as text; the remedies as an ``ablate`` command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from .._io import DiagnosticsError
from .records import Diagnosis, Remedy, Thresholds
from .regimes import diagnose
from .remedies import prescribe


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _read_yaml(path: Path) -> Optional[dict]:
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise DiagnosticsError(f"{path}: not valid YAML ({e})") from None
    if data is not None and not isinstance(data, dict):
        raise DiagnosticsError(f"{path}: expected a mapping (the resolved recipe), got {type(data).__name__}")
    return data


def diagnose_run(run: Union[str, os.PathLike, Iterable[dict]], thresholds: Optional[Thresholds] = None,
                 metric: Optional[str] = None, minority: Optional[Sequence[str]] = None,
                 recipe: Optional[dict] = None) -> Diagnosis:
    """:func:`diagnose` plus remedies, reading ``recipe.yaml`` and ``best/config.json`` from a run directory."""
    model_config = None
    run_dir = None
    if isinstance(run, (str, os.PathLike)):
        p = Path(run)
        run_dir = p if p.is_dir() else p.parent
        recipe = recipe if recipe is not None else _read_yaml(run_dir / "recipe.yaml")
        cfg = run_dir / "best" / "config.json"
        if cfg.is_file():
            import json

            try:
                model_config = json.loads(cfg.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise DiagnosticsError(f"{cfg}: not valid JSON ({e.msg})") from None
    diag = diagnose(run, thresholds, recipe=recipe, metric=metric, minority=minority)
    diag.run_dir = str(run_dir) if run_dir else None
    diag.remedies = prescribe(diag, recipe, model_config)
    return diag


def format_diagnosis(diag: Diagnosis) -> str:
    """Human-readable report: regime, onset, reasons, evidence, thresholds, remedies (in order)."""
    lines = [f"regime: {diag.regime}" + (f" (from step {diag.onset_step})" if diag.onset_step is not None else "")]
    if diag.run_dir:
        lines.insert(0, f"run: {diag.run_dir}")
    for r in diag.reasons:
        lines.append(f"  - {r}")
    if diag.imbalanced:
        lines.append("imbalance: dev loss improved while these fell:")
        for e in diag.imbalance_events[:8]:
            if e.get("before") is None:
                lines.append(f"  - step {e['step']}: {e['key']} flagged during training")
            else:
                lines.append(f"  - step {e['step']}: {e['key']} {e['before']:.4f} → {e['after']:.4f}")
    lines.append("evidence:")
    for k, v in diag.evidence.items():
        if not k.startswith("_"):
            lines.append(f"  {k}: {_fmt(v)}")
    lines.append("thresholds: " + ", ".join(f"{k}={_fmt(v)}" for k, v in diag.thresholds.items()))
    if diag.remedies:
        lines.append("remedies (in order):")
        for i, rem in enumerate(diag.remedies, 1):
            rem = rem if isinstance(rem, Remedy) else Remedy(**rem)
            tag = rem.override if rem.override else "(advice, no override)"
            already = "is already in the recipe" in (rem.note or "")
            extra = ("" if rem.available or rem.override is None
                     else "  [already in the recipe]" if already else "  [not applicable here]")
            note = f"  — {rem.note}" if rem.note else ""
            lines.append(f"  {i}. {tag}{extra}    # {rem.why}{note}")
    return "\n".join(lines)


def _recipe_file(diag: Diagnosis) -> Path:
    if not diag.run_dir:
        raise DiagnosticsError("the remedies can only be run for a run directory (with its recipe.yaml)")
    path = Path(diag.run_dir) / "recipe.yaml"
    if not path.is_file():
        raise DiagnosticsError(f"{path}: no resolved recipe in the run directory; cannot run the remedies")
    return path


def remedy_variants(diag: Diagnosis) -> list[str]:
    """The runnable remedies as ``ablate --vary`` arguments (a remedy with ``vary=""`` changes no number, e.g.
    an observer: there is nothing to compare)."""
    vary = [r.override if r.vary is None else r.vary for r in diag.remedies if r.override and r.available]
    return [v for v in vary if v]


def ablate_command(diag: Diagnosis, seeds: int = 3) -> Optional[list]:
    """``nlp-cv-tricks ablate RUN_DIR/recipe.yaml --vary ... --seeds N`` for the runnable remedies (or None)."""
    vary = remedy_variants(diag)
    if not vary or not diag.run_dir:
        return None
    cmd = ["nlp-cv-tricks", "ablate", str(Path(diag.run_dir) / "recipe.yaml")]
    for v in vary:
        cmd += ["--vary", v]
    return cmd + ["--seeds", str(seeds)]
