"""Mixup / CutMix on image batches (timm's ``Mixup``), recipe key ``mixup``."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..engine.events import Trick
from ..engine.losses import soft_target_cross_entropy


class MixupCutmix(Trick):
    """Mixup / CutMix on image batches with timm's ``Mixup`` and its soft-target loss.

    Sources: Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018; Yun et al., "CutMix",
    ICCV 2019. Each training batch is blended with its reverse (mixup: pixel-wise ``lam``; cutmix: a pasted box
    whose area sets ``lam``), targets become ``lam * onehot(y) + (1 - lam) * onehot(y_flipped)`` (smoothed
    by ``label_smoothing``), and the loss is soft-target cross-entropy. Expected effect: better generalisation
    and calibration for longer trainings (hundreds of epochs on ImageNet); on short runs it usually slows
    convergence. Cost: negligible compute, no extra forward.

    Recipe key ``mixup``: ``mixup_alpha`` (0.8), ``cutmix_alpha`` (1.0), ``prob`` (1.0), ``switch_prob``
    (0.5), ``mode`` (batch|pair|elem), ``label_smoothing`` (0.1), ``key`` (pixel_values). It replaces the
    criterion, so it does not combine with the ``label_smoothing`` trick (use its own option). timm mixes even
    batches only: an odd batch mixes all but its last example, which keeps a smoothed one-hot target.
    """

    name = "mixup"

    replaces_criterion = True

    def __init__(self, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, prob: float = 1.0,
                 switch_prob: float = 0.5, mode: str = "batch", label_smoothing: float = 0.1,
                 key: str = "pixel_values", num_classes: Optional[int] = None):
        if mixup_alpha < 0 or cutmix_alpha < 0 or (mixup_alpha == 0 and cutmix_alpha == 0):
            raise ValueError("mixup: mixup_alpha and cutmix_alpha must be >= 0 and not both 0")
        if not 0.0 <= prob <= 1.0 or not 0.0 <= switch_prob <= 1.0:
            raise ValueError("mixup: prob and switch_prob must be in [0, 1]")
        if mode not in ("batch", "pair", "elem"):
            raise ValueError(f"mixup.mode must be batch, pair or elem, got {mode!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"mixup.label_smoothing must be in [0, 1), got {label_smoothing}")
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.prob, self.switch_prob, self.mode = float(prob), float(switch_prob), mode
        self.label_smoothing, self.key = float(label_smoothing), key
        self.num_classes = num_classes
        self._mixup = None

    def _make(self, num_classes: int):
        from timm.data import Mixup

        self.num_classes = num_classes
        self._mixup = Mixup(mixup_alpha=self.mixup_alpha, cutmix_alpha=self.cutmix_alpha, prob=self.prob,
                            switch_prob=self.switch_prob, mode=self.mode, label_smoothing=self.label_smoothing,
                            num_classes=num_classes)

    def on_fit_start(self, trainer):
        names = getattr(trainer.task, "label_names", None)
        n = self.num_classes or (len(names) if names else None)
        if not n:
            raise ValueError("mixup: the number of classes is unknown (task.label_names is empty); "
                             "set mixup.num_classes")
        if names and n != len(names):
            raise ValueError(f"mixup.num_classes={n} but the data has {len(names)} labels; leave num_classes out "
                             "(it is taken from the data)")
        self._make(n)

    def mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed inputs and soft targets for a batch of images ``x`` (B, C, H, W) and class ids ``y`` (B,)."""
        from timm.data.mixup import mixup_target

        if self._mixup is None:
            if self.num_classes is None:
                raise ValueError("mixup: call on_fit_start or give num_classes")
            self._make(self.num_classes)
        x = x.clone()  # timm mixes in place
        if len(x) % 2 == 0:
            return self._mixup(x, y)
        if len(x) == 1:
            return x, mixup_target(y, self.num_classes, 1.0, self.label_smoothing)
        xm, ym = self._mixup(x[:-1], y[:-1])
        last = mixup_target(y[-1:], self.num_classes, 1.0, self.label_smoothing)
        return torch.cat([xm, x[-1:]]), torch.cat([ym, last.to(ym.dtype)])

    def forward_loss(self, step, compute):
        batch = step.batch
        y = batch.get("labels")
        if y is not None and not y.is_floating_point():
            x = batch.get(self.key)
            if not torch.is_tensor(x):
                raise ValueError(f"mixup: the batch has no tensor {self.key!r} (keys: {sorted(batch)})")
            xm, ym = self.mix(x, y)
            step.batch = {**batch, self.key: xm, "labels": ym}
        return compute()

    def loss_fn(self, logits, labels, step):
        if labels.is_floating_point() and labels.ndim == 2:
            return soft_target_cross_entropy(logits, labels)
        return F.cross_entropy(logits.float(), labels.view(-1), label_smoothing=self.label_smoothing)


# where a key that is valid elsewhere in the recipe belongs (a misplaced key gets its full dotted path)
