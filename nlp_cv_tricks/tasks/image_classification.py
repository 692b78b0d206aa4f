"""Image classification with timm under the same trainer, recipes and tricks as text (task
``image-classification``), and the mixup/cutmix trick (recipe key ``mixup``).

Recipe (options not in the core recipe schema live in ``model.kwargs``; ``model.kwargs.image`` holds the data
and transform options — see /work/notes/vision_config_requests.md for the proposed first-class keys)::

    task: image-classification
    data: {train_file: ../shared/data/images/mnist_5k.csv.gz}     # dir → imagefolder, .csv(.gz), .npy
    model:
      name: resnet10t                        # any timm name, hf-hub:<repo> or local-dir:<dir>
      gradient_checkpointing: false          # timm set_grad_checkpointing
      kwargs:
        pretrained: false                    # true: timm weights from the Hub (online)
        pretrained_file: null                # local weights file or timm Hub-format directory
        model_args: {channels: [16, 32, 64, 128], stem_width: 16}
        drop_rate: 0.0
        drop_path_rate: 0.0
        layer_decay: null                    # e.g. 0.75: layer-wise LR decay (needs the trainer hook)
        freeze_stages: 0                     # freeze stem + first N-1 stages
        image: {input_size: 32, hflip: 0.0, auto_augment: rand-m9-mstd0.5, re_prob: 0.25, on_error: error}
    tricks: [{mixup: {mixup_alpha: 0.8, cutmix_alpha: 1.0, label_smoothing: 0.1}}, {ema: {decay: 0.999}}]
"""

from __future__ import annotations

import logging
from typing import Optional

import torch
import torch.nn.functional as F

from .engine.events import Trick
from .engine.task import ClassificationTask
from .tricks.registry import register_trick

logger = logging.getLogger(__name__)

__all__ = ["ImageClassificationTask", "MixupCutmix", "build_image_classification", "MODEL_KWARGS"]

MODEL_KWARGS = ("pretrained", "pretrained_file", "model_args", "in_chans", "drop_rate", "drop_path_rate",
                "layer_decay", "freeze_stages", "image")
IMAGE_KWARGS = ("format", "on_error", "dev_fraction", "split_seed", "csv_header", "csv_label_column",
                "image_shape", "labels_file", "label_blocks", "image_column",
                "input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode",
                "scale", "ratio", "hflip", "vflip", "color_jitter", "auto_augment", "re_prob", "re_mode",
                "re_count", "train_crop_mode")


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """timm's ``SoftTargetCrossEntropy``: mean over the batch of ``-sum(targets * log_softmax(logits))``."""
    from timm.loss import SoftTargetCrossEntropy

    return SoftTargetCrossEntropy()(logits.float(), targets.float())


class ImageClassificationTask(ClassificationTask):
    """Single-label image classification: the model gets ``pixel_values``; the loss is cross-entropy, or
    soft-target cross-entropy when the batch's ``labels`` are class distributions (mixup/cutmix)."""

    def model_inputs(self, batch: dict) -> dict:
        if "pixel_values" not in batch:
            raise KeyError(f"image batch without 'pixel_values' (keys: {sorted(batch)})")
        return {"pixel_values": batch["pixel_values"]}

    def default_loss(self, outputs, batch):
        logits, labels = self.logits_of(outputs), batch["labels"]
        if labels.is_floating_point() and labels.ndim == 2:
            return soft_target_cross_entropy(logits, labels)
        return F.cross_entropy(logits.float(), labels.view(-1))


@register_trick("mixup")
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
_SECTIONS = {"model.kwargs": MODEL_KWARGS, "model.kwargs.image": IMAGE_KWARGS}
# first-class recipe keys users may put under model.kwargs(.image) by mistake
_CORE_KEYS = {"gradient_checkpointing": "model.gradient_checkpointing", "from_scratch": "model.from_scratch",
              "label_names": "data.label_names", "max_train_samples": "data.max_train_samples",
              "max_eval_samples": "data.max_eval_samples", "batch_size": "train.batch_size",
              "learning_rate": "train.learning_rate", "weight_decay": "train.weight_decay",
              "label_smoothing": "tricks: [{label_smoothing: {epsilon: 0.1}}]",
              "mixup": "tricks: [{mixup: {...}}]", "ema": "tricks: [{ema: {...}}]"}


def _check_keys(given: dict, valid: tuple, where: str, source: str = "") -> None:
    """Refuse unknown keys of ``model.kwargs`` / ``model.kwargs.image``, naming the nearest valid key with its
    full dotted path (a key of the other section, or a first-class recipe key, is pointed to where it belongs)."""
    import difflib

    if not isinstance(given, dict):
        raise ValueError(f"{source}{where} must be a mapping, got {type(given).__name__} {given!r}")
    for key in given:
        if key in valid:
            continue
        section = where if where in _SECTIONS else None
        other = [s for s, keys in _SECTIONS.items() if s != section and key in keys and section is not None]
        if other:
            hint = f"; it belongs under {other[0]} ({other[0]}.{key})"
        elif key in _CORE_KEYS:
            hint = f"; it is a recipe key of its own: {_CORE_KEYS[key]}"
        else:  # the closest key here, in the other section or among the first-class keys
            pool = {k: f"{s}.{k}" for s, keys in _SECTIONS.items() if s != section for k in keys}
            pool.update({k: v for k, v in _CORE_KEYS.items() if " " not in v})
            pool.update({k: f"{where}.{k}" for k in valid})
            near = difflib.get_close_matches(str(key), list(pool), n=1, cutoff=0.6)
            if not near:
                hint = ""
            elif near[0] in valid:
                hint = f"; did you mean {near[0]!r} ({pool[near[0]]})?"
            else:
                hint = f"; did you mean {pool[near[0]]}?"
        raise ValueError(f"{source}{where}: unknown option {key!r}{hint} (valid under {where}: {', '.join(valid)})")


def _check_layer_decay_wired(model) -> None:
    """Refuse a layer_decay the trainer's optimizer would silently drop."""
    from types import SimpleNamespace

    from .engine.trainer import build_optimizer

    cfg = SimpleNamespace(optimizer="adamw", learning_rate=1.0, weight_decay=0.0, adam_beta1=0.9,
                          adam_beta2=0.999, adam_epsilon=1e-8)
    lrs = {g["lr"] for g in build_optimizer(model, cfg).param_groups}
    if len(lrs) < 2:
        raise NotImplementedError(
            "model.kwargs.layer_decay is set, but this trainer's build_optimizer does not use "
            "model.optimizer_param_groups(weight_decay, lr); layer-wise LR decay would be silently dropped")


def build_image_classification(recipe, accelerator) -> dict:
    """Task builder for ``image-classification``: data, timm model and transforms from the recipe."""
    from .data.vision import (build_transforms, image_collate, load_image_classification, resolve_data_config,
                              with_image_transform)
    from .models.vision import create_timm_classifier, freeze_stages

    source = f"{recipe.source}: " if getattr(recipe, "source", None) else ""
    opts = dict(recipe.model.kwargs or {})
    _check_keys(opts, MODEL_KWARGS, "model.kwargs", source)
    _check_keys(opts.get("image") or {}, IMAGE_KWARGS, "model.kwargs.image", source)
    image_opts = dict(opts.get("image") or {})
    if recipe.model.config_overrides:
        raise ValueError("model.config_overrides do not apply to timm models; use model.kwargs.model_args, "
                         "drop_rate or drop_path_rate")
    with accelerator.main_process_first():
        splits = load_image_classification(recipe.data, image_opts)
    if splits.skipped:
        logger.warning("image-classification: %d unreadable image(s) skipped: %s", len(splits.skipped),
                       ", ".join(splits.skipped))
    pretrained = bool(opts.get("pretrained", False)) and not recipe.model.from_scratch
    pretrained_file = None if recipe.model.from_scratch else opts.get("pretrained_file")
    model = create_timm_classifier(recipe.model.name, splits.label_names, pretrained=pretrained,
                                   pretrained_file=pretrained_file, in_chans=opts.get("in_chans"),
                                   drop_rate=opts.get("drop_rate"), drop_path_rate=opts.get("drop_path_rate"),
                                   model_args=opts.get("model_args"))
    if opts.get("layer_decay") is not None:
        model.layer_decay = float(opts["layer_decay"])
        _check_layer_decay_wired(model)
    if opts.get("freeze_stages"):
        frozen = freeze_stages(model, int(opts["freeze_stages"]))
        logger.info("froze %d parameter tensors (first %s blocks)", len(frozen), opts["freeze_stages"])
    if recipe.model.gradient_checkpointing:
        model.timm_model.set_grad_checkpointing(True)
    data_config = resolve_data_config(model, image_opts)
    model.set_data_config(data_config)
    in_chans = int(data_config["input_size"][0])
    train = with_image_transform(splits.train, build_transforms(data_config, image_opts, is_training=True),
                                 in_chans)
    eval_tf = build_transforms(data_config, image_opts, is_training=False)
    dev = with_image_transform(splits.dev, eval_tf, in_chans) if splits.dev is not None else None
    return {
        "model": model,
        "train_dataset": train,
        "eval_dataset": dev,
        "task": ImageClassificationTask(splits.label_names),
        "collate_fn": image_collate,
    }

# the EMA trick lives with the model code; importing it registers the ``ema`` recipe key
from .models import vision as _vision  # noqa: E402,F401
