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
    (needs ``train_eval/accuracy``, see the ``train_eval`` callback) exceeds ``overfit_gap`` and grows. Onset:
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

from .records import REGIMES, Diagnosis, Remedy, Thresholds
from .regimes import diagnose
from .remedies import prescribe
from .run import _recipe_file, ablate_command, diagnose_run, format_diagnosis, remedy_variants  # noqa: F401

__all__ = ["Thresholds", "Diagnosis", "Remedy", "diagnose", "diagnose_run", "format_diagnosis", "prescribe",
           "ablate_command", "remedy_variants", "REGIMES"]
