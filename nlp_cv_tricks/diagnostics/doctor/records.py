"""What the doctor finds and prescribes: the thresholds it decides with, a diagnosis, a remedy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["REGIMES", "Thresholds", "Remedy", "Diagnosis"]

REGIMES = ("underfitting", "overfitting", "not_converged", "healthy", "not_converging", "diverging")


@dataclass
class Thresholds:
    """Every number the doctor decides with (all printed with the diagnosis)."""

    smooth: int = 5                 # centred moving-average window (log points) on the train loss
    edge_frac: float = 0.2          # share of the run averaged as "start" and "end"
    diverge_factor: float = 1.5     # smoothed train loss > factor × running minimum ...
    diverge_giveback: float = 0.5   # ... and back above min + giveback × (start − min)
    grad_explode: float = 10.0      # grad norm above this × its early median is reported as exploding
    min_drop: float = 0.05          # relative train-loss drop below this: not converging
    overfit_loss_rise: float = 0.05  # dev loss above best × (1 + this) at the end
    overfit_metric_drop: float = 0.02  # dev metric/AUC below best by this (absolute) at the end
    overfit_gap: float = 0.10       # train_eval − eval accuracy gap
    patience: int = 2               # evaluations after the best that must all be worse
    underfit_train_acc: float = 0.90
    underfit_loss_ratio: float = 0.6
    imbalance_drop: float = 0.03    # fall of AUC / macro-F1 / minority recall or F1 while dev loss improves
    improving_gain: float = 0.005   # last evaluation beats all earlier ones by this (relative): not converged


@dataclass
class Remedy:
    """One prescription: why, the recipe override that applies it, and whether this build can run it."""

    why: str
    override: Optional[str]
    vary: Optional[str] = None      # the same change as an `ablate --vary` argument ("" when nothing to vary)
    available: bool = True
    note: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Diagnosis:
    regime: str
    onset_step: Optional[int]
    evidence: dict
    thresholds: dict
    reasons: list = field(default_factory=list)
    imbalanced: bool = False
    imbalance_events: list = field(default_factory=list)
    remedies: list = field(default_factory=list)
    run_dir: Optional[str] = None

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["remedies"] = [r.as_dict() if isinstance(r, Remedy) else r for r in self.remedies]
        return d
