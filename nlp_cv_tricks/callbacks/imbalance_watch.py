"""Imbalance watch: dev loss improves while the minority class (or AUC / macro-F1) gets worse.

Tuning tip behind it: on data with many negatives, a falling loss does not mean the model is not
overfitting — the loss is dominated by the majority class, so watch per-class F1/recall and AUC instead
(see e.g. He & Garcia, "Learning from Imbalanced Data", IEEE TKDE 2009; Lin et al. 2017, focal loss).

Two forms, as for every plug-in in this package:

* :func:`imbalance_signal` — a pure function comparing two evaluation dicts;
* :class:`ImbalanceWatch` — a :class:`~nlp_cv_tricks.engine.events.Callback` (recipe name ``imbalance_watch``)
  whose ``on_eval_end`` logs a warning and sets ``metrics["eval/imbalance_warning"] = 1`` (0 otherwise), which
  the trainer writes into ``history.jsonl``.

Expected effect on training: none (observation only). Cost: a few dict look-ups per evaluation.
"""

from __future__ import annotations

import logging
from typing import Iterable, Optional

from ..engine.events import Callback
# the analysis is plain numbers on metric dicts; its home is metrics/ (the run doctor reads it without torch)
from ..metrics.imbalance import FLAG_KEY, _num, imbalance_signal, minority_labels  # noqa: F401

__all__ = ["imbalance_signal", "minority_labels", "ImbalanceWatch", "FLAG_KEY"]

logger = logging.getLogger(__name__)

class ImbalanceWatch(Callback):
    """Warn when the dev loss improves while minority-class recall/F1, macro-F1 or AUC falls.

    Options: ``minority`` (labels to watch; default: derived from the logged class support), ``drop``
    (absolute fall that counts, default 0.03). Writes ``eval/imbalance_warning`` (1 or 0) into every
    evaluation's metrics; ``nlp-cv-tricks diagnose`` reads it back and prescribes focal loss, class weights and
    F1/AUC-based model selection.
    """

    name = "imbalance_watch"

    def __init__(self, minority: Optional[Iterable[str]] = None, drop: float = 0.03):
        if not 0 < float(drop) < 1:
            raise ValueError(f"imbalance_watch.drop must be in (0, 1), got {drop}")
        self.minority = [str(m) for m in minority] if minority is not None else None
        self.drop = float(drop)
        self._prev: Optional[dict] = None
        self.warnings: list[dict] = []

    def on_fit_start(self, trainer) -> None:
        """Without an explicit ``minority``, take the labels below the mean train count (when the largest class
        is at least 1.5× the smallest) from the trainer's ``label_counts``."""
        counts = getattr(trainer, "label_counts", None)
        names = getattr(getattr(trainer, "task", None), "label_names", None)
        if self.minority is not None and names:
            unknown = [m for m in self.minority if m not in {str(n) for n in names}]
            if unknown:
                raise ValueError(f"imbalance_watch.minority: {unknown} not among the labels "
                                 f"({', '.join(map(str, names))})")
        if self.minority is None and counts and names and len(counts) == len(names):
            support = {f"eval/support/{n}": c for n, c in zip(names, counts)}
            found = minority_labels(support)
            if found:
                self.minority = found

    def on_eval_end(self, trainer, metrics: dict) -> None:
        events = imbalance_signal(self._prev, metrics, self.minority, self.drop) if self._prev else []
        metrics[FLAG_KEY] = 1 if events else 0
        if events:
            what = ", ".join(f"{e['key']} {e['before']:.3f}→{e['after']:.3f}" for e in events)
            step = metrics.get("step", getattr(trainer, "global_step", "?"))
            logger.warning("imbalance watch (step %s): dev loss improved %.4f→%.4f but %s fell; on imbalanced "
                           "data watch F1/AUC, consider tricks focal / class weights and train.metric=f1_macro",
                           step, self._prev.get("eval/loss"), metrics.get("eval/loss"), what)
            self.warnings.append({"step": step, "events": events})
        self._prev = {k: v for k, v in metrics.items() if k.startswith("eval/")}

    def state_dict(self) -> dict:
        return {"prev": self._prev, "warnings": self.warnings}

    def load_state_dict(self, state: dict) -> None:
        self._prev = state.get("prev")
        self.warnings = list(state.get("warnings", []))
