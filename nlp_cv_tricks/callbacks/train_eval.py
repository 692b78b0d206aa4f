"""Train-set evaluation next to every dev evaluation, so the doctor sees the train/dev gap.

The fit-regime tip needs both curves: underfitting is poor accuracy *on the training data*, overfitting a
growing gap between train and dev. The training loss alone is measured with dropout on and averaged over a
moving model; this callback evaluates a fixed, seeded subset of the training set in eval mode with the trainer's
own ``evaluate`` and adds ``train_eval/<metric>`` keys (accuracy, loss, macro-F1, AUC) to the metrics dict, which
the trainer writes to ``history.jsonl``. Recipe name ``train_eval``; option ``max_samples`` (default 512).
Expected effect on training: none. Cost: one extra evaluation pass over ``max_samples`` examples per dev
evaluation.
"""

from __future__ import annotations

from ..engine.events import Callback

__all__ = ["TrainEval"]

_KEEP = ("accuracy", "loss", "f1_macro", "auc")


class TrainEval(Callback):
    """Recipe key ``train_eval`` (options ``max_samples`` 512, ``seed`` 0): a fixed seeded subset of the training
    set is evaluated next to every dev evaluation and written as ``train_eval/<metric>``; the doctor reads the
    train/dev gap from it. Expected effect on training: none. Cost: one evaluation pass over ``max_samples``."""

    name = "train_eval"

    def __init__(self, max_samples: int = 512, seed: int = 0):
        if int(max_samples) < 1:
            raise ValueError(f"train_eval.max_samples must be >= 1, got {max_samples}")
        self.max_samples, self.seed = int(max_samples), int(seed)
        self._subset = None

    def _train_subset(self, trainer):
        if self._subset is None:
            ds = trainer.train_dataset
            n = len(ds)
            if n > self.max_samples:
                import numpy as np

                idx = np.sort(np.random.default_rng(self.seed).permutation(n)[: self.max_samples]).tolist()
                ds = ds.select(idx) if hasattr(ds, "select") else __import__("torch").utils.data.Subset(ds, idx)
            self._subset = ds
        return self._subset

    def on_eval_end(self, trainer, metrics: dict) -> None:
        res = trainer.evaluate(self._train_subset(trainer), prefix="train_eval")
        for k, v in res.items():
            if k.split("/", 1)[1] in _KEEP and isinstance(v, (int, float)):
                metrics[k] = v
