"""The output of an ablation: the markdown table (mean ± std, paired Δ with its interval and p-value, time,
memory), the caution under it for few seeds, and ``ablation.md`` / ``ablation.json``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from .grid import RunResult
from .stats import VariantSummary

__all__ = ["markdown_table", "AblationResult"]


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


def _write_report(out: Path, title: str, md: str, summaries, runs, extra: Optional[dict] = None) -> None:
    from ..utils.io import atomic_write_json, atomic_write_text

    atomic_write_text(out / "ablation.md", f"# {title}\n\n{md}")
    atomic_write_json(out / "ablation.json", {"title": title, "summaries": [s.__dict__ for s in summaries],
                                         "runs": [r.__dict__ for r in runs], **(extra or {})})
