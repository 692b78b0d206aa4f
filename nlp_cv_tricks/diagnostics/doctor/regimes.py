"""The fit-regime classifier: which regime a metrics history is in, from when, and why (the rules are in the
docstring of :mod:`nlp_cv_tricks.diagnostics.doctor`)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from ...metrics.imbalance import FLAG_KEY, imbalance_signal
from .._io import DiagnosticsError, load_history
from .records import Diagnosis, Thresholds
from .series import _edge, _first_nonfinite, _primary_metric, _series, _slope, _smooth

__all__ = ["diagnose"]

Found = Optional[tuple[str, Optional[int]]]  # (regime, onset step) when a check fired


@dataclass
class _Curves:
    """The series every check reads, taken from the history once."""

    records: Sequence[dict]
    th: Thresholds
    metric: Optional[str]
    n_evals: int
    tsteps: np.ndarray
    tloss: np.ndarray
    esteps: np.ndarray
    eloss: np.ndarray
    gap_steps: Optional[np.ndarray] = None  # steps with both train_eval/accuracy and eval/accuracy
    gap: Optional[np.ndarray] = None        # train − dev accuracy at those steps

    def smoothed_train_loss(self) -> np.ndarray:
        return _smooth(self.tloss, self.th.smooth)

    def train_kept_improving(self, step: int) -> bool:
        """The smoothed train loss at the end is not above its value at ``step`` (5 % slack)."""
        if len(self.tloss) == 0:
            return True
        j = int(np.searchsorted(self.tsteps, step, side="right")) - 1
        s = self.smoothed_train_loss()
        return float(s[-1]) <= float(s[max(j, 0)]) * 1.05


def diagnose(history: Union[str, os.PathLike, Iterable[dict]], thresholds: Optional[Thresholds] = None,
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

    imb_events, imbalanced = _imbalance_findings(records, minority, th, ev)

    def done(regime: str, onset: Optional[int]) -> Diagnosis:
        if onset is not None:
            at = [r for r in records if r["step"] <= onset and isinstance(r.get("epoch"), (int, float))]
            if at:
                ev["onset_epoch"] = float(at[-1]["epoch"])
        return Diagnosis(regime=regime, onset_step=None if onset is None else int(onset), evidence=ev,
                         thresholds=dataclasses.asdict(th), reasons=reasons, imbalanced=imbalanced,
                         imbalance_events=sorted(imb_events, key=lambda e: e["step"]))

    _grad_norm_evidence(records, th, ev)
    c = _Curves(records, th, metric, n_evals, tsteps, tloss, esteps, eloss)
    c.gap_steps, c.gap = _train_dev_gap(records, ev)
    for check in (_diverging, _not_converging, _overfitting, _underfitting, _not_converged):
        found = check(c, ev, reasons)
        if found is not None:
            return done(*found)
    reasons.extend(_healthy_reasons(c, ev))
    return done("healthy", None)


def _imbalance_findings(records: Sequence[dict], minority: Optional[Sequence[str]], th: Thresholds,
                        ev: dict) -> tuple[list[dict], bool]:
    """Falls of macro-F1, AUC or a minority class's recall/F1 while the dev loss improved, and the steps the
    history flags; whether they count (not when the logged dev support shows balanced classes)."""
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
        from ...metrics.imbalance import minority_labels

        last = evals[-1]
        logged = [k for k in last if k.startswith("eval/support/")]
        if len(logged) >= 2 and not minority_labels(last):
            # balanced classes (logged support): a macro-F1/AUC dip while the dev loss falls is noise or
            # calibration, not an imbalance problem -- keep the events as evidence, prescribe nothing for them
            imbalanced = False
            ev["imbalance_events_ignored"] = f"{len(imb_events)} (classes balanced by their dev support)"
    return imb_events, imbalanced


def _grad_norm_evidence(records: Sequence[dict], th: Thresholds, ev: dict) -> None:
    gsteps, gnorm = _series(records, "train/grad_norm")
    if len(gnorm) >= 4:
        early = np.median(gnorm[np.isfinite(gnorm)][: _edge(len(gnorm), th.edge_frac)]) if np.isfinite(gnorm).any() else float("nan")
        ev["grad_norm_early_median"] = float(early)
        ev["grad_norm_max"] = float(np.nanmax(np.where(np.isfinite(gnorm), gnorm, np.nan))) if np.isfinite(gnorm).any() else None
        over = np.nonzero(~np.isfinite(gnorm) | (gnorm > th.grad_explode * early))[0]
        ev["grad_norm_exploding_from_step"] = int(gsteps[over[0]]) if len(over) else None


def _train_dev_gap(records: Sequence[dict], ev: dict) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """Train vs dev accuracy (needs train_eval/accuracy: the train_eval callback): ``(steps, gap)`` or Nones."""
    gs, gap_train = _series(records, "train_eval/accuracy")
    if not len(gap_train):
        return None, None
    es2, acc = _series(records, "eval/accuracy")
    common = np.intersect1d(gs, es2)
    ev["train_accuracy_end"] = float(gap_train[-1])
    if not len(common):
        return None, None
    gap = np.array([gap_train[gs == c][0] - acc[es2 == c][0] for c in common])
    ev.update({"train_dev_gap_start": float(gap[0]), "train_dev_gap_end": float(gap[-1])})
    return common, gap


def _diverging(c: _Curves, ev: dict, reasons: list[str]) -> Found:
    """1. a non-finite loss or gradient norm, or a smoothed train loss that climbed back and stayed up."""
    th, tloss, tsteps = c.th, c.tloss, c.tsteps
    nf = _first_nonfinite(c.records, ["train/loss", "eval/loss", "train/grad_norm"])
    if nf is not None:
        ev["first_nonfinite"] = {"step": nf[0], "key": nf[1]}
        reasons.append(f"{nf[1]} became non-finite at step {nf[0]}")
        return "diverging", nf[0]
    if len(tloss) >= 3:
        s = c.smoothed_train_loss()
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
            return "diverging", int(tsteps[turn])
    return None


def _not_converging(c: _Curves, ev: dict, reasons: list[str]) -> Found:
    """2. the train loss fell by less than ``min_drop`` from the start of the run to its end."""
    th, tloss, tsteps = c.th, c.tloss, c.tsteps
    if len(tloss) < 3:
        return None
    k = _edge(len(tloss), th.edge_frac)
    head, tail = float(np.mean(tloss[:k])), float(np.mean(tloss[-k:]))
    rel_drop = (head - tail) / abs(head) if head else 0.0
    s = c.smoothed_train_loss()
    ev.update({"train_loss_start": head, "train_loss_end": tail, "train_loss_rel_drop": rel_drop,
               "train_loss_noise": float(np.std(tloss - s) / (abs(np.mean(tloss)) or 1.0)),
               **{f"train_loss_{k2}": v for k2, v in _slope(tsteps, tloss).items()}})
    if rel_drop < th.min_drop:
        reasons.append(f"train loss fell only {rel_drop:.1%} (start {head:.4g} → end {tail:.4g}; threshold "
                       f"{th.min_drop:.0%})")
        return "not_converging", int(tsteps[0])
    return None


def _overfitting(c: _Curves, ev: dict, reasons: list[str]) -> Found:
    """3. the dev loss or a dev metric turned while the train loss kept falling, or the train−dev gap grew."""
    th, gap = c.th, c.gap
    onsets = _dev_loss_turned(c, ev, reasons) + _dev_metric_turned(c, ev, reasons)
    if gap is not None and gap[-1] >= th.overfit_gap and gap[-1] > gap[0]:
        gap_onset = int(c.gap_steps[np.nonzero(gap >= th.overfit_gap)[0][0]])
        reasons.append(f"train−dev accuracy gap grew from {gap[0]:.3f} to {gap[-1]:.3f} (≥ {th.overfit_gap}; "
                       f"first above at step {gap_onset})")
    else:
        gap_onset = None
    if not onsets and gap_onset is None:
        return None
    # where the dev curve turned is the onset; the gap alone (dev still improving) only when nothing turned
    ev["dev_turned"] = bool(onsets)
    if not onsets:
        reasons.append("the dev score has not turned (still at or near its best): no earlier stopping point; "
                       "the gap calls for regularisation, not for stopping")
    return "overfitting", min(onsets) if onsets else gap_onset


def _dev_loss_turned(c: _Curves, ev: dict, reasons: list[str]) -> list[int]:
    """The step of the dev loss's best when it rose ``overfit_loss_rise`` above it for ``patience`` evaluations."""
    th, eloss, esteps = c.th, c.eloss, c.esteps
    if len(eloss) < th.patience + 1:
        return []
    b = len(eloss) - 1 - int(np.argmin(eloss[::-1]))  # the last time it was at its best: where it turned
    after = eloss[b + 1:]
    ev.update({"eval_loss_best": float(eloss[b]), "eval_loss_best_step": int(esteps[b]),
               "eval_loss_end": float(eloss[-1]), "eval_loss_rise": float(eloss[-1] / eloss[b] - 1) if eloss[b] else None})
    if (len(after) >= th.patience and np.all(after > eloss[b]) and eloss[-1] > eloss[b] * (1 + th.overfit_loss_rise)
            and c.train_kept_improving(int(esteps[b]))):
        reasons.append(f"dev loss rose from its best {eloss[b]:.4g} at step {esteps[b]} to {eloss[-1]:.4g} "
                       f"(+{eloss[-1] / eloss[b] - 1:.1%} > {th.overfit_loss_rise:.0%}) over {len(after)} evaluations "
                       f"while the train loss kept falling")
        return [int(esteps[b])]
    return []


def _dev_metric_turned(c: _Curves, ev: dict, reasons: list[str]) -> list[int]:
    """The steps of the best dev metric, macro-F1 and AUC that each fell ``overfit_metric_drop`` below it."""
    th = c.th
    onsets = []
    for key in dict.fromkeys([c.metric, "eval/f1_macro", "eval/auc"]):  # the tip: watch F1/AUC, not only the loss
        if not key:
            continue
        msteps, mval = _series(c.records, key)
        if len(mval) < th.patience + 1:
            continue
        lower_better = "loss" in key
        vals = -mval if lower_better else mval
        b = len(vals) - 1 - int(np.argmax(vals[::-1]))
        after = vals[b + 1:]
        name = key.split("/", 1)[1]
        ev[f"{name}_best"], ev[f"{name}_best_step"], ev[f"{name}_end"] = float(mval[b]), int(msteps[b]), float(mval[-1])
        if (len(after) >= th.patience and np.all(after < vals[b]) and vals[b] - vals[-1] >= th.overfit_metric_drop
                and c.train_kept_improving(int(msteps[b]))):
            onsets.append(int(msteps[b]))
            still_falling = len(c.eloss) and ev.get("eval_loss_best_step", -1) >= int(msteps[-1])
            reasons.append(f"dev {name} fell from its best {mval[b]:.4f} at step {msteps[b]} to {mval[-1]:.4f} "
                           f"(−{vals[b] - vals[-1]:.4f} ≥ {th.overfit_metric_drop}) over {len(after)} evaluations"
                           + ("; the dev loss was still falling, so the loss alone hides this overfit" if still_falling else ""))
    return onsets


def _underfitting(c: _Curves, ev: dict, reasons: list[str]) -> Found:
    """4. the model does not fit even the training data (low train accuracy, or a train loss still high)."""
    th = c.th
    train_acc = ev.get("train_accuracy_end")
    if train_acc is not None:
        if train_acc < th.underfit_train_acc:
            reasons.append(f"train accuracy only {train_acc:.3f} (< {th.underfit_train_acc}): the model does not fit "
                           f"the training data")
            return "underfitting", _plateau_step(c.tsteps, c.tloss, th)
    elif len(c.tloss) >= 3:
        ratio = ev["train_loss_end"] / ev["train_loss_start"] if ev["train_loss_start"] else 1.0
        ev["train_loss_end_over_start"] = ratio
        if ratio > th.underfit_loss_ratio:
            reasons.append(f"train loss still at {ratio:.0%} of its start ({ev['train_loss_start']:.4g} → "
                           f"{ev['train_loss_end']:.4g}; threshold {th.underfit_loss_ratio:.0%}): the model does not "
                           f"fit the training data")
            return "underfitting", _plateau_step(c.tsteps, c.tloss, th)
    return None


def _not_converged(c: _Curves, ev: dict, reasons: list[str]) -> Found:
    """5. the dev score was still improving at the last evaluation."""
    still = _still_improving(c.records, c.metric, c.th)
    ev.update(still.get("evidence", {}))
    if "reason" in still:
        reasons.append(still["reason"])
        return "not_converged", still["step"]
    return None


def _healthy_reasons(c: _Curves, ev: dict) -> list[str]:
    reasons = []
    tloss, metric = c.tloss, c.metric
    if len(tloss) < 3 and c.n_evals < c.th.patience + 1:
        reasons.append(f"only {len(tloss)} train logs and {c.n_evals} evaluations: too few points to judge, so "
                       f"this 'healthy' is weak; log more often (train.logging_steps, train.eval_steps)")
    trend = ("train loss fell" if len(tloss) >= 2 and tloss[-1] < tloss[0]
             else "train loss trend unknown (fewer than 2 logs)" if len(tloss) < 2 else "train loss did not fall")
    reasons.append(f"{trend}, no sustained rise of the dev loss or fall of the dev metric"
                   + (f" (dev {metric.split('/', 1)[1]} best {ev.get(metric.split('/', 1)[1] + '_best', float('nan')):.4f})"
                      if metric and metric.split('/', 1)[1] + '_best' in ev else ""))
    return reasons


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
