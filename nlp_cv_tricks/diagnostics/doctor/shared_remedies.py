"""Remedies shared by text and image recipes: train longer, stop earlier, a weight-decay A/B."""

from __future__ import annotations

import math

from .records import Diagnosis


def _recipe_tricks(recipe: dict) -> list[str]:
    return [next(iter(t)) if isinstance(t, dict) else str(t) for t in (recipe.get("tricks") or [])]


def _train_longer(train: dict, add) -> None:
    """Twice the budget, in the unit that bounds the run (``train.max_steps`` wins over epochs)."""
    steps = train.get("max_steps")
    if steps:
        add(f"train longer ({steps} → {2 * int(steps)} steps) while the train loss still falls",
            f"train.max_steps={2 * int(steps)}")
        return
    epochs = int(train.get("epochs", 1))
    add(f"train longer ({epochs} → {2 * epochs} epochs) while the train loss still falls", f"train.epochs={2 * epochs}")


def _stop_earlier(diag: Diagnosis, train: dict, add) -> None:
    """Overfitting remedies shared by text and images: fewer epochs, early stopping, a weight-decay A/B."""
    onset = diag.onset_step if diag.evidence.get("dev_turned", True) else None  # a gap alone: no stop point
    epoch_at = diag.evidence.get("onset_epoch") if onset is not None else None
    if epoch_at is not None and not train.get("max_steps"):
        add(f"fewer epochs: the dev score turned at step {onset} (epoch {epoch_at:.2f})",
            f"train.epochs={max(1, math.ceil(epoch_at))}")
    elif onset is not None:  # also when train.max_steps bounds the run (it wins over epochs)
        add(f"fewer steps: the dev score turned at step {onset}", f"train.max_steps={max(1, onset)}")
    if not train.get("early_stopping_patience"):
        add("early stopping on the dev metric", "train.early_stopping_patience=2")
    wd = float(train.get("weight_decay", 0.01))
    other = 0.0 if wd > 0 else 0.01
    add(f"weight decay A/B ({wd:g} vs {other:g}); compare rather than assume it helps",
        f"train.weight_decay={other:g}", vary=f"train.weight_decay={wd:g},{other:g}")
