"""The relabeling loop: mine → export → (annotate) → import → retrain → mine again, round after round.

State lives in ``<workdir>/loop_state.json`` (round counter, current version, phase, one summary row per
round), so the loop survives restarts and the annotation step can take days. Layout::

    workdir/versions/            the version store (original training file never modified)
    workdir/round_N/mine/        OOF scores of round N (on the current version)
    workdir/round_N/annotate.*   the export of round N
    workdir/round_N/retrain/     training runs after importing round N's answers
    workdir/summary.md           the summary table (one row per finished round)

Each call of :meth:`HardCaseLoop.step` does the next thing: with no round open it mines and exports; with a
round waiting for annotations and ``annotations`` given it imports, retrains, and opens the next round.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional, Sequence

from ..config import Recipe
from ..utils.io import atomic_write_text
from ._common import atomic_write_json
from .export import export_hard_cases
from .importer import VersionStore, import_annotations
from .mine import mine
from .retrain import train_and_evaluate

__all__ = ["HardCaseLoop", "summary_table"]

SUMMARY_COLUMNS = ["round", "version", "exported", "relabel", "confirm", "drop", "add", "conflicts",
                   "flagged", "dev_acc_before", "dev_acc_after", "delta"]


def summary_table(rows: list[dict]) -> str:
    head = "| " + " | ".join(SUMMARY_COLUMNS) + " |\n|" + "---|" * len(SUMMARY_COLUMNS) + "\n"

    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))

    return head + "".join("| " + " | ".join(fmt(r.get(c)) for c in SUMMARY_COLUMNS) + " |\n" for r in rows)


class HardCaseLoop:
    def __init__(self, recipe: Recipe, workdir, folds: int = 5, top: Optional[int] = None,
                 budget: Optional[float] = 0.1, by: str = "error", emphasis: str = "none", factor: float = 2.0,
                 rule: str = "majority", priority: Sequence[str] = (), jobs: int = 1):
        self.recipe, self.workdir = recipe, Path(workdir)
        self.folds, self.top, self.budget, self.by = folds, top, (None if top is not None else budget), by
        self.emphasis, self.factor, self.rule, self.priority, self.jobs = emphasis, factor, rule, priority, jobs
        self.store = VersionStore(self.workdir / "versions", recipe)
        self.state_path = self.workdir / "loop_state.json"

    def state(self) -> dict:
        if self.state_path.is_file():
            return json.loads(self.state_path.read_text())
        return {"round": 0, "version": None, "phase": "new", "rounds": [], "dev_before": None}

    def _save(self, st: dict) -> None:
        atomic_write_json(self.state_path, st)
        atomic_write_text(self.workdir / "summary.md", summary_table(st["rounds"]))

    def _open_round(self, st: dict) -> dict:
        st["round"] += 1
        rdir = self.workdir / f"round_{st['round']}"
        rec = self.store.recipe_for(st["version"])
        res = mine(rec, rdir / "mine", folds=self.folds, ids=self.store.ids(st["version"]), jobs=self.jobs)
        paths = export_hard_cases(rdir / "mine", rdir, top=self.top, budget=self.budget, by=self.by)
        st.update(phase="awaiting_annotation", export=paths, flagged=res.summary["n_label_issues"],
                  exported=len(json.loads(Path(paths["labelstudio"]).read_text())) if "labelstudio" in paths else None)
        self._save(st)
        return st

    def step(self, annotations=None) -> dict:
        """Advance the loop; returns the state (``phase``: awaiting_annotation after every call)."""
        st = self.state()
        if st["phase"] == "new":
            return self._open_round(st)
        if annotations is None:
            raise ValueError(f"round {st['round']} waits for annotations of {st['export'].get('csv')}; "
                             "pass the annotated file(s)")
        rdir = self.workdir / f"round_{st['round']}"
        if st.get("imported"):  # imported before an interrupted retrain: do not import twice
            rep = st["imported"]
        else:
            rep = import_annotations(annotations, self.recipe, self.store.root, base=st["version"] or "v0",
                                     rule=self.rule, priority=self.priority)
            rep = {"version": rep["version"], "counts": rep["counts"], "conflicts": rep["conflicts"]}
            st["imported"] = rep
            self._save(st)
        version = rep["version"]
        if st.get("dev_before") is None:
            # the loop owns its retrain folders: a run cut short by an interruption is redone from scratch
            st["dev_before"] = train_and_evaluate(_owned(self.store.recipe_for(st["version"])),
                                                  rdir / "retrain" / "before")
            self._save(st)
        hard = [c["id"] for c in self.store.changes(version, chain=True) if c["action"] in ("relabel", "confirm")]
        after = train_and_evaluate(_owned(self.store.recipe_for(version)), rdir / "retrain" / "after", None,
                                   self.store.ids(version), hard, self.emphasis, self.factor)
        b, a = st["dev_before"].get("dev/accuracy"), after.get("dev/accuracy")
        st["rounds"].append({"round": st["round"], "version": version, "exported": st.get("exported"),
                             **rep["counts"], "conflicts": len(rep["conflicts"]), "flagged": st.get("flagged"),
                             "dev_acc_before": b, "dev_acc_after": a,
                             "delta": None if a is None or b is None else a - b})
        # the round is closed and recorded before the next one is mined (an interruption there resumes mining)
        st.update(version=version, dev_before=after, imported=None, phase="new")
        self._save(st)
        return self._open_round(st)


def _owned(recipe: Recipe) -> Recipe:
    return dataclasses.replace(recipe, output=dataclasses.replace(recipe.output, overwrite=True))
