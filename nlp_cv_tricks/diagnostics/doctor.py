"""Fit-regime doctor: read a run's metrics history, say which regime it is in, and prescribe remedies.

The method is the first tuning tip: start from the plain model, find out whether it *underfits* or
*overfits*, and only then choose the remedy — widen/deepen, augment, change the activation for an underfit;
dropout, BatchNorm, dropout on the embeddings, R-Drop (Liang et al. 2021), fewer epochs and a weight-decay A/B
for an overfit; and, on imbalanced data, focal loss (Lin et al. 2017), class weights and F1/AUC monitoring,
because a falling loss there does not rule out overfitting.

Regimes (checked in this order; every threshold is a field of :class:`Thresholds` and is printed):

``diverging``
    a train/dev loss or gradient norm became NaN/inf, or the smoothed train loss climbed back by at least
    ``diverge_factor``× its running minimum *and* gave back at least ``diverge_giveback`` of what it had
    gained, and stayed there. Onset: the last good step (the minimum before the climb) or the first NaN.
``not_converging``
    the train loss fell by less than ``min_drop`` (relative) from the first ``edge_frac`` of the run to the
    last. Onset: the first logged step (it never started learning).
``overfitting``
    the dev loss rose ``overfit_loss_rise`` (relative) above its best and stayed above it for at least
    ``patience`` evaluations, or the dev metric / AUC fell ``overfit_metric_drop`` below its best for
    ``patience`` evaluations, while the train loss kept falling; or the train-minus-dev accuracy gap
    (needs ``train_eval/accuracy``, see the ``train_eval`` trick) exceeds ``overfit_gap`` and grows. Onset:
    the step of the best dev value (where the curves turned), the earliest over the dev signals that fired;
    the first step above the gap threshold when only the gap fired.
``underfitting``
    none of the above, and the model does not fit even the training data: train accuracy below
    ``underfit_train_acc`` (when ``train_eval/accuracy`` is logged), otherwise the smoothed train loss still
    above ``underfit_loss_ratio`` of its starting value. Onset: where the train loss reached its plateau
    (within 10 % of the final drop).
``not_converged``
    none of the above, and the dev metric (``eval/loss`` when no metric is logged) was still improving at the
    last evaluation: its last value is its best and beats the best of all earlier evaluations by at least
    ``improving_gain`` (relative), and (with three or more evaluations) the one before was a new best too. Not to be confused with ``not_converging`` (the train loss never fell):
    here training works and simply stopped too early. Onset: the last evaluation. Remedies: train longer
    *and* try a higher learning rate (``nlp-cv-tricks lr-sweep`` starting above the current one).
``healthy``
    none of the above.

Independently, an *imbalance* finding is raised when the dev loss improved while macro-F1, AUC or a minority
class's recall/F1 fell (see :mod:`.imbalance`), or when the history carries ``eval/imbalance_warning``.

Cost: microseconds; it reads the history only.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from ..callbacks.imbalance_watch import FLAG_KEY, imbalance_signal
from ._io import DiagnosticsError, load_history

__all__ = ["Thresholds", "Diagnosis", "Remedy", "diagnose", "diagnose_run", "format_diagnosis", "prescribe",
           "ablate_command", "remedy_variants", "REGIMES"]

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


# ---- series helpers ---------------------------------------------------------------------------------------

def _series(records: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key``; a repeated step (after a resume) keeps its last value."""
    by_step: dict[int, float] = {}
    for r in records:
        v = r.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        by_step[int(r["step"])] = float(v)
    steps = np.array(sorted(by_step), dtype=np.int64)
    return steps, np.array([by_step[s] for s in steps], dtype=np.float64)


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average with shrinking windows at the edges (no lag, no padding artefacts)."""
    n = len(x)
    w = max(1, min(int(window), n))
    half = w // 2
    c = np.concatenate([[0.0], np.cumsum(x)])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + (w - half), 0, n)
    return (c[hi] - c[lo]) / (hi - lo)


def _edge(n: int, frac: float) -> int:
    return max(1, int(round(n * frac)))


def _slope(steps: np.ndarray, values: np.ndarray) -> dict:
    if len(values) < 3 or np.ptp(steps) == 0:
        return {"slope_per_1k_steps": None, "p_value": None}
    from ..utils.optional import require

    # scipy.stats.linregress's slope and two-sided p-value, through scipy.special alone (scipy.stats takes ~1.5 s
    # to import, which the end-of-training report paid)
    stdtr = require("scipy.special", purpose="the trend test of diagnose").stdtr
    x, y = steps.astype(float), np.asarray(values, dtype=float)
    xm, ym = x - x.mean(), y - y.mean()
    ssxm, ssym, ssxym = float(np.mean(xm * xm)), float(np.mean(ym * ym)), float(np.mean(xm * ym))
    slope = ssxym / ssxm
    if ssym == 0.0:
        return {"slope_per_1k_steps": slope * 1000, "p_value": float("nan")}  # as linregress: r undefined
    r = min(1.0, max(-1.0, ssxym / np.sqrt(ssxm * ssym)))
    df = len(x) - 2
    t = r * np.sqrt(df / ((1.0 - r + 1e-20) * (1.0 + r + 1e-20)))
    return {"slope_per_1k_steps": float(slope * 1000), "p_value": float(2 * stdtr(df, -abs(t)))}


def _first_nonfinite(records: Sequence[dict], keys: Iterable[str]) -> Optional[tuple[int, str]]:
    for r in records:
        for k in keys:
            v = r.get(k)
            if isinstance(v, float) and not math.isfinite(v):
                return int(r["step"]), k
    return None


def _primary_metric(records: Sequence[dict], recipe: Optional[dict]) -> Optional[str]:
    wanted = None
    if recipe and isinstance(recipe.get("train"), dict) and recipe["train"].get("metric"):
        wanted = str(recipe["train"]["metric"])
        wanted = wanted if wanted.startswith("eval/") else f"eval/{wanted}"
    keys = {k for r in records for k in r}
    for k in [wanted, "eval/f1_macro", "eval/accuracy"]:
        if k and k in keys and k != "eval/loss":
            return k
    return None


# ---- the classifier --------------------------------------------------------------------------------------

def diagnose(history: Union[str, os.PathLike, Iterable[dict]], thresholds: Optional[Thresholds] = None,  # noqa: C901
             recipe: Optional[dict] = None, metric: Optional[str] = None,
             minority: Optional[Sequence[str]] = None) -> Diagnosis:
    """Classify the fit regime of a metrics history (a run dir, a ``history.jsonl`` path or a list of dicts).

    Args:
        thresholds: decision thresholds (defaults: :class:`Thresholds`).
        recipe: the resolved recipe as a dict (used for the primary metric and to tailor remedies).
        metric: dev metric to watch (``eval/f1_macro`` …); default: the recipe's ``train.metric``, else
            macro-F1, else accuracy.
        minority: labels whose recall/F1 the imbalance check watches (default: from the logged support).
    """
    th = thresholds or Thresholds()
    records = load_history(history)
    ev: dict[str, Any] = {}
    reasons: list[str] = []

    tsteps, tloss = _series(records, "train/loss")
    esteps, eloss = _series(records, "eval/loss")
    if len(tloss) == 0 and len(eloss) == 0:
        raise DiagnosticsError("history has neither 'train/loss' nor 'eval/loss' values; nothing to diagnose")
    metric = metric or _primary_metric(records, recipe)
    if metric and not metric.startswith("eval/"):
        metric = f"eval/{metric}"
    ev["primary_metric"] = metric
    # evaluations: those with a dev loss, or with the dev metric where no loss is logged (question answering)
    n_evals = max(len(eloss), len(_series(records, metric)[1]) if metric else 0)
    ev["n_train_logs"], ev["n_evals"] = int(len(tloss)), int(n_evals)

    # imbalance finding (independent of the regime)
    evals = [r for r in records if "eval/loss" in r]
    imb_events = []
    for prev, cur in zip(evals, evals[1:]):
        for e in imbalance_signal(prev, cur, minority, th.imbalance_drop):
            imb_events.append({"step": int(cur["step"]), **e})
    flagged = [int(r["step"]) for r in records if r.get(FLAG_KEY) in (1, True, 1.0)]
    for s in flagged:
        if not any(e["step"] == s for e in imb_events):
            imb_events.append({"step": s, "key": FLAG_KEY, "before": None, "after": 1, "drop": None})
    imbalanced = bool(imb_events)
    if imbalanced and not minority and evals:
        from ..callbacks.imbalance_watch import minority_labels

        last = evals[-1]
        logged = [k for k in last if k.startswith("eval/support/")]
        if len(logged) >= 2 and not minority_labels(last):
            # balanced classes (logged support): a macro-F1/AUC dip while the dev loss falls is noise or
            # calibration, not an imbalance problem -- keep the events as evidence, prescribe nothing for them
            imbalanced = False
            ev["imbalance_events_ignored"] = f"{len(imb_events)} (classes balanced by their dev support)"

    def done(regime: str, onset: Optional[int]) -> Diagnosis:
        if onset is not None:
            at = [r for r in records if r["step"] <= onset and isinstance(r.get("epoch"), (int, float))]
            if at:
                ev["onset_epoch"] = float(at[-1]["epoch"])
        return Diagnosis(regime=regime, onset_step=None if onset is None else int(onset), evidence=ev,
                         thresholds=dataclasses.asdict(th), reasons=reasons, imbalanced=imbalanced,
                         imbalance_events=sorted(imb_events, key=lambda e: e["step"]))

    # gradient-norm evidence
    gsteps, gnorm = _series(records, "train/grad_norm")
    if len(gnorm) >= 4:
        early = np.median(gnorm[np.isfinite(gnorm)][: _edge(len(gnorm), th.edge_frac)]) if np.isfinite(gnorm).any() else float("nan")
        ev["grad_norm_early_median"] = float(early)
        ev["grad_norm_max"] = float(np.nanmax(np.where(np.isfinite(gnorm), gnorm, np.nan))) if np.isfinite(gnorm).any() else None
        over = np.nonzero(~np.isfinite(gnorm) | (gnorm > th.grad_explode * early))[0]
        ev["grad_norm_exploding_from_step"] = int(gsteps[over[0]]) if len(over) else None

    # train vs dev accuracy (needs train_eval/accuracy: the train_eval trick)
    gap = gap_steps = None
    gs, gap_train = _series(records, "train_eval/accuracy")
    if len(gap_train):
        es2, acc = _series(records, "eval/accuracy")
        common = np.intersect1d(gs, es2)
        ev["train_accuracy_end"] = float(gap_train[-1])
        if len(common):
            gap_steps = common
            gap = np.array([gap_train[gs == c][0] - acc[es2 == c][0] for c in common])
            ev.update({"train_dev_gap_start": float(gap[0]), "train_dev_gap_end": float(gap[-1])})

    # 1. diverging -----------------------------------------------------------------------------------------
    nf = _first_nonfinite(records, ["train/loss", "eval/loss", "train/grad_norm"])
    if nf is not None:
        ev["first_nonfinite"] = {"step": nf[0], "key": nf[1]}
        reasons.append(f"{nf[1]} became non-finite at step {nf[0]}")
        return done("diverging", nf[0])
    if len(tloss) >= 3:
        s = _smooth(tloss, th.smooth)
        run_min = np.minimum.accumulate(s)
        thr = np.maximum(th.diverge_factor * run_min, run_min + th.diverge_giveback * (s[0] - run_min))
        cross = np.nonzero((s > thr) & (s[-1] > thr))[0]
        if len(cross):
            i = int(cross[0])
            turn = int(np.argmin(s[: i + 1]))
            ev.update({"train_loss_min_smoothed": float(s[turn]), "train_loss_min_step": int(tsteps[turn]),
                       "train_loss_end_smoothed": float(s[-1]), "diverge_detected_step": int(tsteps[i])})
            reasons.append(f"smoothed train loss climbed from its minimum {s[turn]:.4g} (step {tsteps[turn]}) to "
                           f"{s[-1]:.4g} at the end (> {th.diverge_factor}× the minimum and more than "
                           f"{th.diverge_giveback:.0%} of the gain given back)")
            return done("diverging", int(tsteps[turn]))

    # 2. not converging ------------------------------------------------------------------------------------
    if len(tloss) >= 3:
        k = _edge(len(tloss), th.edge_frac)
        head, tail = float(np.mean(tloss[:k])), float(np.mean(tloss[-k:]))
        rel_drop = (head - tail) / abs(head) if head else 0.0
        s = _smooth(tloss, th.smooth)
        ev.update({"train_loss_start": head, "train_loss_end": tail, "train_loss_rel_drop": rel_drop,
                   "train_loss_noise": float(np.std(tloss - s) / (abs(np.mean(tloss)) or 1.0)),
                   **{f"train_loss_{k2}": v for k2, v in _slope(tsteps, tloss).items()}})
        if rel_drop < th.min_drop:
            reasons.append(f"train loss fell only {rel_drop:.1%} (start {head:.4g} → end {tail:.4g}; threshold "
                           f"{th.min_drop:.0%})")
            return done("not_converging", int(tsteps[0]))
    else:
        s = tloss

    # 3. overfitting ---------------------------------------------------------------------------------------
    onsets: list[int] = []

    def train_loss_at(step: int) -> Optional[float]:
        if len(tloss) == 0:
            return None
        j = int(np.searchsorted(tsteps, step, side="right")) - 1
        return float(_smooth(tloss, th.smooth)[max(j, 0)])

    train_end = float(_smooth(tloss, th.smooth)[-1]) if len(tloss) else None

    def train_kept_improving(step: int) -> bool:
        at = train_loss_at(step)
        return at is None or train_end is None or train_end <= at * 1.05

    if len(eloss) >= th.patience + 1:
        b = len(eloss) - 1 - int(np.argmin(eloss[::-1]))  # the last time it was at its best: where it turned
        after = eloss[b + 1:]
        ev.update({"eval_loss_best": float(eloss[b]), "eval_loss_best_step": int(esteps[b]),
                   "eval_loss_end": float(eloss[-1]), "eval_loss_rise": float(eloss[-1] / eloss[b] - 1) if eloss[b] else None})
        if (len(after) >= th.patience and np.all(after > eloss[b]) and eloss[-1] > eloss[b] * (1 + th.overfit_loss_rise)
                and train_kept_improving(int(esteps[b]))):
            onsets.append(int(esteps[b]))
            reasons.append(f"dev loss rose from its best {eloss[b]:.4g} at step {esteps[b]} to {eloss[-1]:.4g} "
                           f"(+{eloss[-1] / eloss[b] - 1:.1%} > {th.overfit_loss_rise:.0%}) over {len(after)} evaluations "
                           f"while the train loss kept falling")
    for key in dict.fromkeys([metric, "eval/f1_macro", "eval/auc"]):  # the tip: watch F1/AUC, not only the loss
        if not key:
            continue
        msteps, mval = _series(records, key)
        if len(mval) < th.patience + 1:
            continue
        lower_better = "loss" in key
        vals = -mval if lower_better else mval
        b = len(vals) - 1 - int(np.argmax(vals[::-1]))
        after = vals[b + 1:]
        name = key.split("/", 1)[1]
        ev[f"{name}_best"], ev[f"{name}_best_step"], ev[f"{name}_end"] = float(mval[b]), int(msteps[b]), float(mval[-1])
        if (len(after) >= th.patience and np.all(after < vals[b]) and vals[b] - vals[-1] >= th.overfit_metric_drop
                and train_kept_improving(int(msteps[b]))):
            onsets.append(int(msteps[b]))
            still_falling = len(eloss) and ev.get("eval_loss_best_step", -1) >= int(msteps[-1])
            reasons.append(f"dev {name} fell from its best {mval[b]:.4f} at step {msteps[b]} to {mval[-1]:.4f} "
                           f"(−{vals[b] - vals[-1]:.4f} ≥ {th.overfit_metric_drop}) over {len(after)} evaluations"
                           + ("; the dev loss was still falling, so the loss alone hides this overfit" if still_falling else ""))
    if gap is not None and gap[-1] >= th.overfit_gap and gap[-1] > gap[0]:
        gap_onset = int(gap_steps[np.nonzero(gap >= th.overfit_gap)[0][0]])
        reasons.append(f"train−dev accuracy gap grew from {gap[0]:.3f} to {gap[-1]:.3f} (≥ {th.overfit_gap}; "
                       f"first above at step {gap_onset})")
    else:
        gap_onset = None
    if onsets or gap_onset is not None:
        # where the dev curve turned is the onset; the gap alone (dev still improving) only when nothing turned
        ev["dev_turned"] = bool(onsets)
        if not onsets:
            reasons.append("the dev score has not turned (still at or near its best): no earlier stopping point; "
                           "the gap calls for regularisation, not for stopping")
        return done("overfitting", min(onsets) if onsets else gap_onset)

    # 4. underfitting --------------------------------------------------------------------------------------
    train_acc = ev.get("train_accuracy_end")
    if train_acc is not None:
        if train_acc < th.underfit_train_acc:
            reasons.append(f"train accuracy only {train_acc:.3f} (< {th.underfit_train_acc}): the model does not fit "
                           f"the training data")
            return done("underfitting", _plateau_step(tsteps, tloss, th))
    elif len(tloss) >= 3:
        ratio = ev["train_loss_end"] / ev["train_loss_start"] if ev["train_loss_start"] else 1.0
        ev["train_loss_end_over_start"] = ratio
        if ratio > th.underfit_loss_ratio:
            reasons.append(f"train loss still at {ratio:.0%} of its start ({ev['train_loss_start']:.4g} → "
                           f"{ev['train_loss_end']:.4g}; threshold {th.underfit_loss_ratio:.0%}): the model does not "
                           f"fit the training data")
            return done("underfitting", _plateau_step(tsteps, tloss, th))

    # 5. not converged: the dev score was still improving at the last evaluation -----------------------------
    still = _still_improving(records, metric, th)
    ev.update(still.get("evidence", {}))
    if "reason" in still:
        reasons.append(still["reason"])
        return done("not_converged", still["step"])

    if len(tloss) < 3 and n_evals < th.patience + 1:
        reasons.append(f"only {len(tloss)} train logs and {n_evals} evaluations: too few points to judge, so "
                       f"this 'healthy' is weak; log more often (train.logging_steps, train.eval_steps)")
    trend = ("train loss fell" if len(tloss) >= 2 and tloss[-1] < tloss[0]
             else "train loss trend unknown (fewer than 2 logs)" if len(tloss) < 2 else "train loss did not fall")
    reasons.append(f"{trend}, no sustained rise of the dev loss or fall of the dev metric"
                   + (f" (dev {metric.split('/', 1)[1]} best {ev.get(metric.split('/', 1)[1] + '_best', float('nan')):.4f})"
                      if metric and metric.split('/', 1)[1] + '_best' in ev else ""))
    return done("healthy", None)


def _still_improving(records: Sequence[dict], metric: Optional[str], th: Thresholds) -> dict:
    """The dev metric (else the dev loss) at its best at the last evaluation, ahead of every earlier one by at
    least ``th.improving_gain`` (relative), the evaluation before it a new best too (when there are three or
    more): ``{"step", "reason", "evidence"}``; only ``{"evidence"}`` (possibly empty) when not."""
    key = metric if metric and len(_series(records, metric)[1]) >= 2 else "eval/loss"
    steps, vals = _series(records, key)
    if len(vals) < 2 or not np.isfinite(vals).all():
        return {}
    lower_better = key.endswith("loss")
    v = -vals if lower_better else vals
    prev_best = float(np.max(v[:-1]))
    gain = (float(v[-1]) - prev_best) / (abs(prev_best) or 1.0)
    name = key.split("/", 1)[1]
    evidence = {"last_eval_step": int(steps[-1]), f"{name}_last_gain": gain}
    if gain < th.improving_gain:
        return {"evidence": evidence}
    if len(v) >= 3 and v[-2] < np.max(v[:-2]):  # one lucky last evaluation after a plateau is noise, not a trend
        evidence[f"{name}_previous_eval_was_best"] = False
        return {"evidence": evidence}
    trail = " → ".join(f"{x:.4g}" for x in vals[-4:])
    return {"step": int(steps[-1]), "evidence": evidence,
            "reason": f"still improving at the end: train longer. Dev {name} {'fell' if lower_better else 'rose'} "
                      f"to its best at the last evaluation (step {steps[-1]}; last {min(len(vals), 4)}: {trail}), "
                      f"{gain:.1%} past every earlier evaluation (threshold {th.improving_gain:.1%})"}


def _plateau_step(steps: np.ndarray, loss: np.ndarray, th: Thresholds) -> Optional[int]:
    if len(loss) < 3:
        return None
    s = _smooth(loss, th.smooth)
    total = s[0] - s[-1]
    if total <= 0:
        return int(steps[0])
    idx = np.nonzero(s - s[-1] <= 0.1 * total)[0]
    return int(steps[idx[0]])


# ---- remedies ---------------------------------------------------------------------------------------------

# this package's own text baselines (models/text_baselines.py): width and depth options per architecture
_OWN_MODELS = {
    "textcnn": ("num_filters", 100, None, None), "fasttext": ("hidden_size", 0, None, None),
    "dpcnn": ("num_filters", 250, "num_blocks", None), "textrnn": ("hidden_size", 128, "num_layers", 2),
    "textrnn_att": ("hidden_size", 128, "num_layers", 2), "textrcnn": ("hidden_size", 256, "num_layers", 1),
}
_ALIASES = {"text_cnn": "textcnn", "cnn": "textcnn", "fast_text": "fasttext", "text_rnn": "textrnn",
            "bilstm": "textrnn", "textrnn-att": "textrnn_att", "text_rcnn": "textrcnn", "rcnn": "textrcnn"}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _recipe_tricks(recipe: dict) -> list[str]:
    return [next(iter(t)) if isinstance(t, dict) else str(t) for t in (recipe.get("tricks") or [])]


def prescribe(diag: Diagnosis, recipe: Optional[dict] = None, model_config: Optional[dict] = None) -> list[Remedy]:  # noqa: C901  (complex today; the list only shrinks)
    """The remedies of the tips for ``diag.regime`` (and for an imbalance finding), in order, as overrides.

    ``recipe`` is the run's resolved recipe (``recipe.yaml``), used to pick the keys and the values (current
    dropout + 0.1, half the learning rate, the epoch of the best dev score, …); ``model_config`` is the saved
    model's ``config.json`` (which dropout/activation keys it has). Each override is checked against this
    build's recipe schema and trick registry when they are importable; one that is not is kept with
    ``available=False`` and a note.
    """
    r = recipe or {}
    train = r.get("train") or {}
    model = r.get("model") or {}
    mc = model_config or {}
    arch = _ALIASES.get(str(model.get("name", "")).lower(), str(model.get("name", "")).lower())
    own = arch in _OWN_MODELS
    kw = model.get("kwargs") or {}
    co = model.get("config_overrides") or {}
    lr = float(train.get("learning_rate", 5e-5))
    out: list[Remedy] = []

    def add(why, override, vary=None, note=""):
        out.append(Remedy(why=why, override=override, vary=vary if vary is not None else override, note=note))

    def trick(why, name, note=""):
        # `tricks+=name` extends the recipe's list and keeps the options of the tricks already there
        add(why, f"tricks+={name}", vary=f"tricks=+{name}", note=note)
        if name in _recipe_tricks(r):
            out[-1].available = False
            out[-1].note = (note + "; " if note else "") + f"{name} is already in the recipe"

    regime = diag.regime
    from ..tasks import task_modality

    image = task_modality(str(r.get("task", ""))) == "image"
    if image and regime in ("underfitting", "overfitting", "not_converging"):
        _image_remedies(diag, r, add, trick)
    elif regime == "underfitting":
        if own:
            wkey, wdef, dkey, ddef = _OWN_MODELS[arch]
            w = int(kw.get(wkey, wdef)) or 128
            new_w = 2 * w if int(kw.get(wkey, wdef)) else w
            add(f"widen 2× ({wkey} {kw.get(wkey, wdef)} → {new_w})", f"model.kwargs.{wkey}={new_w}")
            if dkey:
                d = kw.get(dkey, ddef)
                if d is None:
                    add(f"deepen: more {dkey}", f"model.kwargs.{dkey}=4", note="default depth follows the length")
                else:
                    add(f"deepen 2× ({dkey} {d} → {2 * int(d)})", f"model.kwargs.{dkey}={2 * int(d)}")
            else:
                add(f"deepen: {arch} has a fixed depth; a deeper baseline is dpcnn", None,
                    note="set model.name=dpcnn with its own kwargs (num_filters, num_blocks): not a one-key change")
        elif model.get("from_scratch"):
            hs = int(co.get("hidden_size", mc.get("hidden_size", 256)))
            nl = int(co.get("num_hidden_layers", mc.get("num_hidden_layers", 4)))
            heads = int(co.get("num_attention_heads", mc.get("num_attention_heads", 4)))
            add(f"widen 2× (hidden {hs} → {2 * hs})", f"model.config_overrides.hidden_size={2 * hs}",
                note=f"keep hidden_size divisible by num_attention_heads={heads}")
            add(f"deepen 2× ({nl} → {2 * nl} layers)", f"model.config_overrides.num_hidden_layers={2 * nl}")
        else:
            add("widen/deepen 2×: a pretrained encoder's shape is fixed — use a larger checkpoint",
                "model.name=bert-base-uncased", note="any larger encoder (Hub id or local path)")
        _train_longer(train, add)
        add("data augmentation (more varied training text)", None,
            note="no augmentation trick in this build; augment the training file (e.g. EDA, back-translation)")
        act = kw.get("activation") if own else co.get("hidden_act", mc.get("hidden_act"))
        if own:
            add("activation choice: the baselines use ReLU inside and never on the output; look for dead units "
                "with `nlp-cv-tricks inspect` before changing the architecture", None)
        elif model.get("from_scratch"):
            add(f"activation choice (now {act or '?'})", "model.config_overrides.hidden_act=gelu"
                if act != "gelu" else "model.config_overrides.hidden_act=relu")
        else:
            add(f"activation choice: a pretrained encoder keeps {act or 'its activation'}; check the head has no "
                "ReLU before the output (nlp-cv-tricks inspect)", None)
    elif regime == "overfitting":
        if own:
            cur = float(kw.get("dropout", 0.0 if arch == "fasttext" else 0.5))
            add(f"dropout {cur:g} → {min(cur + 0.2, 0.7):g}", f"model.kwargs.dropout={min(cur + 0.2, 0.7):g}")
            if kw.get("norm", "none") != "batch":
                add("BatchNorm on the hidden features", "model.kwargs.norm=batch")
            ecur = float(kw.get("embedding_dropout", 0.0))
            add(f"dropout on the embeddings {ecur:g} → {min(ecur + 0.2, 0.5):g}",
                f"model.kwargs.embedding_dropout={min(ecur + 0.2, 0.5):g}")
        else:
            key = "hidden_dropout_prob" if "hidden_dropout_prob" in mc or not mc else (
                "dropout" if "dropout" in mc else "hidden_dropout_prob")
            cur = float(co.get(key, mc.get(key, 0.1)))
            add(f"dropout {cur:g} → {min(cur + 0.1, 0.5):g} ({key})", f"model.config_overrides.{key}={min(cur + 0.1, 0.5):g}")
            add("BatchNorm: only for this package's own models (transformers use LayerNorm)", None)
            trick("dropout on the embedding output", "embedding_dropout")
        trick("R-Drop: two forwards, symmetric KL between them (Liang et al. 2021)", "rdrop")
        _stop_earlier(diag, train, add)
    elif regime == "diverging":
        add(f"halve the learning rate ({lr:g} → {lr / 2:g}); keep halving while it diverges",
            f"train.learning_rate={lr / 2:.3g}", vary=f"train.learning_rate={lr / 2:.3g},{lr / 4:.3g},{lr / 8:.3g}")
        if train.get("max_grad_norm") in (None, 0):
            add("clip gradients", "train.max_grad_norm=1.0")
        if not train.get("warmup_ratio") and not train.get("warmup_steps"):
            add("warm up the learning rate", "train.warmup_ratio=0.1")
        if str(train.get("mixed_precision", "no")) == "fp16":
            add("fp16 overflow: try bf16 or full precision", "train.mixed_precision=bf16")
    elif regime == "not_converging":
        if own or model.get("from_scratch"):
            add("learning-rate search from 0.01 downwards by halving", "train.learning_rate=0.01",
                vary="train.learning_rate=0.01,0.005,0.0025,0.00125")
            trick("Xavier / truncated-normal initialisation speeds up convergence", "init",
                  note="defaults: scheme xavier_uniform on the head; for a model trained from scratch use "
                       "{init: {scheme: trunc_normal, target: all}}")
        else:
            add(f"learning-rate search around {lr:g}: double and halve", f"train.learning_rate={lr * 2:.3g}",
                vary=f"train.learning_rate={lr * 2:.3g},{lr:.3g},{lr / 2:.3g}")
        if not train.get("warmup_ratio") and not train.get("warmup_steps"):
            add("warm up the learning rate", "train.warmup_ratio=0.1")
        add("check the data: labels shuffled or misaligned with the text? (nlp-cv-tricks probe-cls on the data)", None)
    elif regime == "not_converged":
        _train_longer(train, add)
        add(f"a higher learning rate ({lr:g} → {2 * lr:.3g}): a run still improving at its end may also be "
            f"moving too slowly", f"train.learning_rate={2 * lr:.3g}",
            vary=f"train.learning_rate={2 * lr:.3g},{4 * lr:.3g}",
            note=f"search it with `nlp-cv-tricks lr-sweep RECIPE --start {4 * lr:.3g} --patience 2` (halves from "
                 f"4× the current rate until the dev metric stops improving)")
    if diag.imbalanced or regime == "imbalanced":
        trick("focal loss (Lin et al. 2017): tune gamma in steps of 10× (0.1, 1, 10)", "focal_loss")
        trick("class weights derived from the label distribution", "class_weights")
        metric = str(train.get("metric", "accuracy"))
        if metric in ("accuracy", "loss", "eval/accuracy", "eval/loss"):
            add("select and early-stop on macro-F1 (or AUC), not loss/accuracy", "train.metric=f1_macro",
                vary="train.metric=f1_macro,auc")
        # an observer: it changes no number, so there is nothing to vary
        add("keep watching minority recall/F1 and AUC during training", "callbacks+=imbalance_watch", vary="")
    _check(out, r)
    return out


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


# default depth (blocks per stage) of the small timm ResNets, for "deepen 2×" on image recipes
_TIMM_RESNET_LAYERS = {"resnet10t": [1, 1, 1, 1], "resnet14t": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2],
                       "resnet18d": [2, 2, 2, 2], "resnet26": [2, 2, 2, 2], "resnet26d": [2, 2, 2, 2],
                       "resnet34": [3, 4, 6, 3], "resnet34d": [3, 4, 6, 3]}


def _image_remedies(diag: Diagnosis, r: dict, add, trick) -> None:  # noqa: C901  (complex today; the list only shrinks)
    """Remedies for ``task: image-classification`` recipes (timm models; options in ``model.kwargs``).

    Underfitting: widen (``model_args.channels`` 2×) or deepen (``model_args.layers`` 2×) the timm model, train
    longer, less regularisation (drop rates, RandAugment, random erasing, mixup) and the activation
    (``model_args.act_layer``). Overfitting: classifier dropout (``drop_rate``), stochastic depth
    (``drop_path_rate``, Huang et al. 2016), RandAugment (Cubuk et al. 2020), random erasing (Zhong et al. 2020),
    mixup/cutmix, label smoothing, then fewer epochs / early stopping / a weight-decay A/B. Not converging: a
    learning-rate search (from 0.01 down when trained from scratch) and a look at the data.
    """
    train = r.get("train") or {}
    model = r.get("model") or {}
    kw = model.get("kwargs") or {}
    margs = kw.get("model_args") or {}
    image = kw.get("image") or {}
    name = str(model.get("name", "")).lower()
    scratch = bool(model.get("from_scratch")) or not (kw.get("pretrained") or kw.get("pretrained_file"))
    regime = diag.regime
    lr = float(train.get("learning_rate", 1e-3))
    tricks_in = _recipe_tricks(r)

    def flow(v) -> str:  # a YAML flow list for an override value
        return "[" + ",".join(str(x) for x in v) + "]"

    if regime == "underfitting":
        if scratch and isinstance(margs.get("channels"), list):
            ch = [2 * int(c) for c in margs["channels"]]
            add(f"widen 2× (channels {margs['channels']} → {ch})", f"model.kwargs.model_args.channels={flow(ch)}")
        elif scratch:
            add("widen 2×: a wider timm model of the same family (e.g. resnet18 → wide_resnet50_2, convnext_atto → "
                "convnext_femto), or model.kwargs.model_args.channels for timm ResNets", None)
        else:
            add("widen/deepen: a pretrained model's shape is fixed — fine-tune a larger pretrained timm model", None,
                note="e.g. model.name=resnet50.a1_in1k with model.kwargs.pretrained=true (online)")
        layers = margs.get("layers") or _TIMM_RESNET_LAYERS.get(name)
        if scratch and isinstance(layers, (list, tuple)):
            deeper = [2 * int(n) for n in layers]
            add(f"deepen 2× (blocks per stage {list(layers)} → {deeper})", f"model.kwargs.model_args.layers={flow(deeper)}")
        elif scratch:
            add("deepen: a deeper timm model of the same family (e.g. resnet18 → resnet34)", None)
        _train_longer(train, add)
        if float(kw.get("drop_path_rate") or 0) > 0:
            add(f"less stochastic depth (drop_path_rate {kw['drop_path_rate']} → 0)", "model.kwargs.drop_path_rate=0.0")
        if float(kw.get("drop_rate") or 0) > 0:
            add(f"less dropout before the classifier (drop_rate {kw['drop_rate']} → 0)", "model.kwargs.drop_rate=0.0")
        if image.get("auto_augment"):
            add(f"weaker augmentation: without RandAugment ({image['auto_augment']})", "model.kwargs.image.auto_augment=null")
        if float(image.get("re_prob") or 0) > 0:
            add(f"weaker augmentation: no random erasing (re_prob {image['re_prob']} → 0)", "model.kwargs.image.re_prob=0.0")
        if "mixup" in tricks_in:
            add("mixup/cutmix slows fitting on short schedules: compare without it", None,
                note="remove the mixup entry from tricks")
        add("activation choice (timm act_layer, ReLU by default in ResNets); look for dead ReLU units with "
            "`nlp-cv-tricks inspect` first", "model.kwargs.model_args.act_layer=silu" if scratch else None)
    elif regime == "overfitting":
        cur = float(kw.get("drop_rate") or 0.0)
        add(f"dropout before the classifier {cur:g} → {min(cur + 0.2, 0.5):g}",
            f"model.kwargs.drop_rate={min(cur + 0.2, 0.5):g}")
        dp = float(kw.get("drop_path_rate") or 0.0)
        add(f"stochastic depth (drop_path_rate {dp:g} → {min(dp + 0.1, 0.4):g}; Huang et al. 2016)",
            f"model.kwargs.drop_path_rate={min(dp + 0.1, 0.4):g}")
        if not image.get("auto_augment"):
            add("RandAugment (Cubuk et al. 2020)", "model.kwargs.image.auto_augment=rand-m9-mstd0.5")
        if not float(image.get("re_prob") or 0):
            add("random erasing (Zhong et al. 2020)", "model.kwargs.image.re_prob=0.25")
        trick("mixup/cutmix (Zhang et al. 2018; Yun et al. 2019) with timm's soft-target loss", "mixup",
              note="pays off on longer schedules")
        if "mixup" not in tricks_in:
            trick("label smoothing (Szegedy et al. 2016)", "label_smoothing")
        _stop_earlier(diag, train, add)
    elif regime == "not_converging":
        if scratch:
            add("learning-rate search from 0.01 downwards by halving", "train.learning_rate=0.01",
                vary="train.learning_rate=0.01,0.005,0.0025,0.00125")
        else:
            add(f"learning-rate search around {lr:g}: double and halve", f"train.learning_rate={lr * 2:.3g}",
                vary=f"train.learning_rate={lr * 2:.3g},{lr:.3g},{lr / 2:.3g}")
        if not train.get("warmup_ratio") and not train.get("warmup_steps"):
            add("warm up the learning rate", "train.warmup_ratio=0.1")
        add("check the data: labels misaligned with the images, or a transform that destroys them (mean/std, "
            "input_size)? `nlp-cv-tricks plot-embeddings RUN_DIR` shows whether the classes separate", None)


def _check(remedies: list[Remedy], recipe: dict) -> None:
    """Mark overrides this build cannot apply (unknown recipe key or unregistered trick)."""
    try:
        from ..config import RecipeError, apply_overrides
    except ImportError:  # pragma: no cover - config not in this build
        return
    from ..callbacks.registry import available_callbacks
    from ..tricks.registry import available_tricks

    # the static tables: nothing is imported
    tables = {"tricks": ("trick", set(available_tricks())), "callbacks": ("callback", set(available_callbacks()))}
    for rem in remedies:
        if rem.override is None or not rem.available:
            rem.available = False
            continue
        key = rem.override.split("+=", 1)[0]
        if "+=" in rem.override and key in tables:
            kind, known = tables[key]
            name = rem.override.split("+=", 1)[1]
            if name not in known:
                rem.available = False
                rem.note = (rem.note + "; " if rem.note else "") + f"{kind} {name!r} is not registered in this build"
            continue
        try:
            apply_overrides(recipe or {}, [rem.override])
        except RecipeError as e:
            rem.available = False
            rem.note = (rem.note + "; " if rem.note else "") + str(e)


# ---- run directories -------------------------------------------------------------------------------------

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


# ---- running the remedies ----------------------------------------------------------------------------------

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
