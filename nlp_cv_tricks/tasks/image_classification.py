"""Image classification with timm under the same trainer, recipes and tricks as text (task
``image-classification``); mixup/cutmix and EMA are tricks (``nlp_cv_tricks.tricks.mixup`` / ``.ema``).

Recipe (the timm model's arguments live in ``model.kwargs``, the task's options in ``task_options``; both are
read into :class:`ImageOptions`; ``task_options.image`` holds the data and transform options)::

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
    task_options:
      layer_decay: null                      # e.g. 0.75: layer-wise LR decay (needs the trainer hook)
      freeze_stages: 0                       # freeze stem + first N-1 stages
      image: {input_size: 32, hflip: 0.0, auto_augment: rand-m9-mstd0.5, re_prob: 0.25, on_error: error}
    tricks: [{mixup: {mixup_alpha: 0.8, cutmix_alpha: 1.0, label_smoothing: 0.1}}, {ema: {decay: 0.999}}]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import torch.nn.functional as F

from ..config import saved_task_options, split_task_options
from ..data.vision import ImageDataError, build_transforms, resolve_data_config, with_image_transform
from ..engine.losses import soft_target_cross_entropy
from ..engine.task import CardModel, ClassificationTask, InferenceRequest

logger = logging.getLogger(__name__)

__all__ = ["ImageClassificationTask", "ImageOptions", "build_image_classification", "MODEL_KWARGS"]

MODEL_ARGS = ("pretrained", "pretrained_file", "model_args", "in_chans", "drop_rate", "drop_path_rate")
TASK_OPTIONS = ("layer_decay", "freeze_stages", "image")
MODEL_KWARGS = MODEL_ARGS + TASK_OPTIONS  # everything model.kwargs held before task_options (the old spelling)
IMAGE_KWARGS = ("format", "on_error", "dev_fraction", "split_seed", "csv_header", "csv_label_column",
                "image_shape", "labels_file", "label_blocks", "image_column",
                "input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode",
                "scale", "ratio", "hflip", "vflip", "color_jitter", "auto_augment", "re_prob", "re_mode",
                "re_count", "train_crop_mode")


class ImageClassificationTask(ClassificationTask):
    """Single-label image classification: the model gets ``pixel_values``; the loss is cross-entropy, or
    soft-target cross-entropy when the batch's ``labels`` are class distributions (mixup/cutmix). A saved model
    is a timm classifier in timm's Hub format; ``eval``/``predict`` read images with the loader options of the
    run's recipe."""

    name = "image-classification"
    description = "image classification"
    pipeline_tag = "image-classification"
    modality = "image"
    auto_class = "AutoModelForImageClassification"
    uses_tokenizer = False
    eval_data_hint = "IMAGES"

    def model_inputs(self, batch: dict) -> dict:
        if "pixel_values" not in batch:
            raise KeyError(f"image batch without 'pixel_values' (keys: {sorted(batch)})")
        return {"pixel_values": batch["pixel_values"]}

    def default_loss(self, outputs, batch):
        logits, labels = self.logits_of(outputs), batch["labels"]
        if labels.is_floating_point() and labels.ndim == 2:
            return soft_target_cross_entropy(logits, labels)
        return F.cross_entropy(logits.float(), labels.view(-1))

    # ---- a saved model -------------------------------------------------------------------------------------------
    @classmethod
    def recognizes(cls, model_dir: Path) -> bool:
        return is_image_model_dir(model_dir)

    @classmethod
    def load_for_inference(cls, model_dir: str):
        return load_image_model(model_dir)

    @classmethod
    def preprocess_for_inference(cls, loaded, data, request: Optional[InferenceRequest] = None):
        """The images of ``data`` (a ``datasets.Dataset`` with an ``image`` column) with the model's evaluation
        transform."""
        return eval_view(loaded, data, range(len(data)))

    @classmethod
    def evaluate(cls, request: InferenceRequest) -> dict:
        """Metrics of a saved image classifier on labelled images (every label must be one of the model's)."""
        from ..data.text import DataError
        from ..metrics.classification import classification_metrics
        from ..utils.model_dir import resolve_model_dir

        _, names, data_names, logits, gold, _ = _image_logits(request.model_dir, request.data, request.batch_size)
        if gold is None:
            unknown = [n for n in data_names if n not in set(names)]
            raise DataError(f"{request.data}: label(s) {', '.join(map(str, unknown[:10]))} are not among the "
                            f"model's labels ({', '.join(names[:20])})")
        metrics = classification_metrics(logits, gold, names)
        metrics["data"] = os.path.abspath(request.data)
        metrics["model"] = str(resolve_model_dir(request.model_dir))
        return metrics

    @classmethod
    def predict(cls, request: InferenceRequest) -> int:
        """One prediction per image (JSONL, or CSV when ``out`` ends in .csv): where the image comes from, the
        predicted label, its probability, the probability of every label, and the data's label when it is one
        of the model's."""
        from ._outputs import prediction_rows, write_rows

        out = request.out
        if os.path.isdir(out):
            raise FileExistsError(f"--out {out} is a directory; --out names the .jsonl or .csv file to write")
        if os.path.exists(out) and not request.overwrite:
            raise FileExistsError(f"{out} exists; choose another --out or pass --overwrite")
        _, names, _, logits, gold, sources = _image_logits(request.model_dir, request.data, request.batch_size)
        rows = prediction_rows([{"row": i + 1, "image": src} for i, src in enumerate(sources)], logits, names, gold)
        write_rows(out, rows)
        return len(rows)

    # ---- the model card ------------------------------------------------------------------------------------------
    @classmethod
    def card_model(cls, config: dict, recipe: dict) -> CardModel:
        from ..utils.publish import public_model_name, public_path

        model = recipe.get("model") or {}
        kwargs = model.get("kwargs") or {}
        hub_id, shown = public_model_name(model.get("name"))
        scratch = bool(model.get("from_scratch"))
        if kwargs.get("pretrained_file") and not scratch:
            src = public_path(kwargs["pretrained_file"])
            origin, hub_id = f"fine-tuned from local weights (`{src}`) of the same architecture", None
        elif kwargs.get("pretrained") and not scratch:
            origin = f"fine-tuned from timm's pretrained `{shown}` weights"
            if hub_id is None and shown and not shown.startswith("a local"):
                hub_id = f"timm/{shown}"  # timm's pretrained weights live under the timm organisation
        else:
            scratch, hub_id = True, None
            origin = "trained from scratch (randomly initialised weights, no pretrained checkpoint)"
        inputs = []
        pcfg = config.get("pretrained_cfg") or {}
        size = pcfg.get("input_size")
        if size:
            chans, h, w = (list(size) + [None, None, None])[:3]
            inputs.append(f"images resized and cropped to {h}x{w} pixels, {chans} channel{'s' if chans != 1 else ''}"
                          + (f" (crop_pct {pcfg['crop_pct']})" if pcfg.get("crop_pct") else ""))
        if pcfg.get("mean") is not None:
            inputs.append(f"normalised with mean {list(pcfg['mean'])} and std {list(pcfg.get('std') or [])}")
        model_type = str(config.get("model_type", ""))
        return CardModel(library="timm", architecture=str(config.get("architecture") or model.get("name")
                                                          or "timm model"),
                         own_code=model_type.startswith("nct-") or model_type == "chunk_pool", base_model=hub_id,
                         origin=origin, from_scratch=scratch, inputs=inputs)

    @classmethod
    def card_recipe_keeps(cls, section: str, key: str, section_values: dict) -> bool:
        if section == "data":  # text-only keys mean nothing for images
            return key not in _TEXT_ONLY_DATA_KEYS and not (key == "label_column"
                                                            and section_values.get("format") != "hub")
        return not (section == "model" and key == "tokenizer")

    @classmethod
    def card_usage(cls, repo_id: str, model: CardModel) -> list[str]:
        return ["```python", "import timm, torch", "from PIL import Image", "",
                f'model = timm.create_model("hf-hub:{repo_id}", pretrained=True).eval()',
                "transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))",
                'x = transform(Image.open("image.jpg").convert("RGB")).unsqueeze(0)',
                "probs = model(x).softmax(-1)  # classes in the order of config.json's label_names",
                "```", "",
                "It also loads with `transformers.AutoModelForImageClassification.from_pretrained` (TimmWrapper)."]

    @classmethod
    def card_limitations(cls, model: CardModel, max_length) -> list[str]:
        return ["- Images of other sizes are resized to the input size above; content unlike the training "
                "images (other domains, lighting, framing) may be misclassified."]


# data keys that only mean something for text; an image card's recipe leaves them out
_TEXT_ONLY_DATA_KEYS = ("text_column", "text_pair_column", "max_length", "group_by_length", "tensor_batches",
                        "encoding")


_SECTIONS = {"model.kwargs": MODEL_ARGS, "task_options": TASK_OPTIONS, "task_options.image": IMAGE_KWARGS}
# the sections of the old spelling, all under model.kwargs (ImageOptions.from_kwargs)
_LEGACY_SECTIONS = {"model.kwargs": MODEL_KWARGS, "model.kwargs.image": IMAGE_KWARGS}
# first-class recipe keys users may put under model.kwargs / task_options(.image) by mistake
_CORE_KEYS = {"gradient_checkpointing": "model.gradient_checkpointing", "from_scratch": "model.from_scratch",
              "label_names": "data.label_names", "max_train_samples": "data.max_train_samples",
              "max_eval_samples": "data.max_eval_samples", "batch_size": "train.batch_size",
              "learning_rate": "train.learning_rate", "weight_decay": "train.weight_decay",
              "label_smoothing": "tricks: [{label_smoothing: {epsilon: 0.1}}]",
              "mixup": "tricks: [{mixup: {...}}]", "ema": "tricks: [{ema: {...}}]"}


def _check_keys(given: dict, valid: tuple, where: str, source: str = "") -> None:
    """Refuse unknown keys of ``model.kwargs`` / ``task_options(.image)``, naming the nearest valid key with its
    full dotted path (a key of the other section, or a first-class recipe key, is pointed to where it belongs)."""
    import difflib

    if not isinstance(given, dict):
        raise ValueError(f"{source}{where} must be a mapping, got {type(given).__name__} {given!r}")
    sections = _LEGACY_SECTIONS if where.startswith("model.kwargs") and valid != MODEL_ARGS else _SECTIONS
    for key in given:
        if key in valid:
            continue
        section = where if where in sections else None
        other = [s for s, keys in sections.items() if s != section and key in keys and section is not None]
        if other:
            hint = f"; it belongs under {other[0]} ({other[0]}.{key})"
        elif key in _CORE_KEYS:
            hint = f"; it is a recipe key of its own: {_CORE_KEYS[key]}"
        else:  # the closest key here, in the other section or among the first-class keys
            pool = {k: f"{s}.{k}" for s, keys in sections.items() if s != section for k in keys}
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


_ON_ERROR = ("error", "skip")


@dataclasses.dataclass
class ImageOptions:
    """The options of ``task: image-classification``: the timm model's own from a recipe's ``model.kwargs``
    (typed and range-checked here) and the task's from its ``task_options`` (``layer_decay``, ``freeze_stages``
    and ``image``, the data and transform options; ``model.kwargs``, their deprecated spelling, is still read).
    ``image`` stays a mapping of the keys in ``IMAGE_KWARGS``: they are the loader's (``nlp_cv_tricks.data.vision``)
    and timm's ``resolve_data_config`` / ``create_transform`` keywords, passed through unchanged, so their schema
    has one home there; this class refuses unknown keys and checks the values the task itself acts on."""

    pretrained: bool = False  # true: timm weights from the Hub (online)
    pretrained_file: Optional[str] = None  # local weights file or timm Hub-format directory
    model_args: dict = dataclasses.field(default_factory=dict)  # timm.create_model keyword arguments
    in_chans: Optional[int] = None
    drop_rate: Optional[float] = None
    drop_path_rate: Optional[float] = None
    layer_decay: Optional[float] = None  # layer-wise LR decay factor in (0, 1]
    freeze_stages: int = 0  # freeze the stem and the first N-1 stages
    image: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, kwargs: Optional[dict], source: str = "") -> "ImageOptions":
        """Validated options from one mapping of all of them (``model.kwargs`` before ``task_options``);
        ``source`` (``"recipes/x.yaml: "``) prefixes every error message."""
        kwargs = {} if kwargs is None else kwargs
        _check_keys(kwargs, MODEL_KWARGS, "model.kwargs", source)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}  # null: the default
        _check_keys(kwargs.get("image") or {}, IMAGE_KWARGS, "model.kwargs.image", source)
        opts = cls(**kwargs)
        opts.validate(source)
        return opts

    @classmethod
    def from_recipe(cls, recipe) -> "ImageOptions":
        """Validated options of ``model.kwargs`` (the model's) and ``task_options`` (the task's)."""
        source = f"{recipe.source}: " if getattr(recipe, "source", None) else ""
        task, kwargs = split_task_options(recipe.task_options, recipe.model.kwargs, TASK_OPTIONS, source)
        _check_keys(kwargs, MODEL_ARGS, "model.kwargs", source)
        _check_keys(task, TASK_OPTIONS, "task_options", source)
        _check_keys(task.get("image") or {}, IMAGE_KWARGS, "task_options.image", source)
        opts = cls(**{k: v for k, v in {**kwargs, **task}.items() if v is not None})  # null: the default
        opts.validate(source, task_section="task_options")
        return opts

    @staticmethod
    def saved_image_options(recipe: dict) -> dict:
        """``task_options.image`` of a saved recipe (a mapping, either spelling)."""
        return saved_task_options(recipe, TASK_OPTIONS).get("image") or {}

    def validate(self, source: str = "", task_section: str = "model.kwargs") -> None:
        def bad(key, value, expected):
            section = task_section if key.split(".")[0] in TASK_OPTIONS else "model.kwargs"
            raise ValueError(f"{source}{section}.{key}={value!r}; expected {expected}")

        if not isinstance(self.pretrained, bool):
            bad("pretrained", self.pretrained, "true or false (local weights: pretrained_file)")
        if not isinstance(self.model_args, dict):
            bad("model_args", self.model_args, "a mapping of timm.create_model keyword arguments")
        if self.in_chans is not None and (isinstance(self.in_chans, bool) or not isinstance(self.in_chans, int)
                                          or self.in_chans < 1):
            bad("in_chans", self.in_chans, "an integer >= 1")
        for key in ("drop_rate", "drop_path_rate"):
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1):
                bad(key, v, "a number in [0, 1)")
        v = self.layer_decay
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1):
            bad("layer_decay", v, "a number in (0, 1] or null")
        if isinstance(self.freeze_stages, bool) or not isinstance(self.freeze_stages, int) or self.freeze_stages < 0:
            bad("freeze_stages", self.freeze_stages, "an integer >= 0")
        on_error = self.image.get("on_error", "error")
        if on_error not in _ON_ERROR:
            bad("image.on_error", on_error, f"one of {list(_ON_ERROR)}")
        frac = self.image.get("dev_fraction")
        if frac is not None and (isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1):
            bad("image.dev_fraction", frac, "a number in [0, 1) (0: no dev split)")


def _check_layer_decay_wired(model) -> None:
    """Refuse a layer_decay the trainer's optimizer would silently drop."""
    from types import SimpleNamespace

    from ..engine.trainer import build_optimizer

    cfg = SimpleNamespace(optimizer="adamw", learning_rate=1.0, weight_decay=0.0, adam_beta1=0.9,
                          adam_beta2=0.999, adam_epsilon=1e-8)
    lrs = {g["lr"] for g in build_optimizer(model, cfg).param_groups}
    if len(lrs) < 2:
        raise NotImplementedError(
            "task_options.layer_decay is set, but this trainer's build_optimizer does not use "
            "model.optimizer_param_groups(weight_decay, lr); layer-wise LR decay would be silently dropped")


def build_image_classification(recipe, accelerator) -> dict:
    """Task builder for ``image-classification``: data, timm model and transforms from the recipe."""
    from ..utils.optional import require

    require("timm", purpose="task: image-classification")  # the error names the extra before anything is read
    from ..data.vision import (build_transforms, image_collate, load_image_classification, resolve_data_config,
                              with_image_transform)
    from ..models.vision import create_timm_classifier, freeze_stages

    opts = ImageOptions.from_recipe(recipe)
    image_opts = dict(opts.image)
    if recipe.model.config_overrides:
        raise ValueError("model.config_overrides do not apply to timm models; use model.kwargs.model_args, "
                         "drop_rate or drop_path_rate")
    with accelerator.main_process_first():
        splits = load_image_classification(recipe.data, image_opts)
    if splits.skipped:
        logger.warning("image-classification: %d unreadable image(s) skipped: %s", len(splits.skipped),
                       ", ".join(splits.skipped))
    pretrained = opts.pretrained and not recipe.model.from_scratch
    pretrained_file = None if recipe.model.from_scratch else opts.pretrained_file
    model = create_timm_classifier(recipe.model.name, splits.label_names, pretrained=pretrained,
                                   pretrained_file=pretrained_file, in_chans=opts.in_chans,
                                   drop_rate=opts.drop_rate, drop_path_rate=opts.drop_path_rate,
                                   model_args=opts.model_args or None)
    if opts.layer_decay is not None:
        model.layer_decay = float(opts.layer_decay)
        _check_layer_decay_wired(model)
    if opts.freeze_stages:
        frozen = freeze_stages(model, opts.freeze_stages)
        logger.info("froze %d parameter tensors (first %s blocks)", len(frozen), opts.freeze_stages)
    if recipe.model.gradient_checkpointing:
        model.timm_model.set_grad_checkpointing(True)
    data_config = resolve_data_config(model, image_opts)
    model.set_data_config(data_config)
    in_chans = int(data_config["input_size"][0])
    # augmentation seeded per example from (train.seed, epoch, row): resumes exactly, same in every process
    train = with_image_transform(splits.train, build_transforms(data_config, image_opts, is_training=True),
                                 in_chans, seed=recipe.train.seed)
    eval_tf = build_transforms(data_config, image_opts, is_training=False)
    dev = with_image_transform(splits.dev, eval_tf, in_chans) if splits.dev is not None else None
    return {
        "model": model,
        "train_dataset": train,
        "eval_dataset": dev,
        "task": ImageClassificationTask(splits.label_names),
        "collate_fn": image_collate,
    }


# ---------------------------------------------------------------------------------------------------------------
# Inference side: a saved image model and the images to run it on, read with the run's own loader options
# ---------------------------------------------------------------------------------------------------------------
# options of task_options.image that choose how files are read (the transform keys come from the model itself)
IMAGE_LOADER_KEYS = ("format", "on_error", "csv_header", "csv_label_column", "image_shape", "labels_file",
                     "label_blocks", "image_column")


def _config(path: Union[str, os.PathLike]) -> Optional[dict]:
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return None
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def is_image_model_dir(path: Union[str, os.PathLike]) -> bool:
    """True for a directory holding a timm classifier in timm's Hub format (what the trainer saves for
    ``task: image-classification``), or a run directory whose ``best/`` (or ``final/``) holds one."""
    from ..utils.model_dir import resolve_model_dir

    try:
        cfg = _config(resolve_model_dir(str(path)))
    except FileNotFoundError:
        return False
    if not cfg:
        return False
    return "architecture" in cfg and ("pretrained_cfg" in cfg or cfg.get("model_type") == "timm_wrapper")


def load_image_model(path: Union[str, os.PathLike]):
    """The :class:`~nlp_cv_tricks.models.vision.TimmImageClassifier` saved at ``path`` (eval mode)."""
    from ..models.vision import load_timm_classifier

    try:
        return load_timm_classifier(str(path)).eval()
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise ImageDataError(f"{path}: cannot load the timm image model saved here ({type(e).__name__}: {e})") from None


def _read_recipe(run_dir: Optional[Path]) -> Optional[dict]:
    if run_dir is None:
        return None
    path = run_dir / "recipe.yaml"
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ImageDataError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ImageDataError(f"{path}: expected a mapping (the resolved recipe), got {type(data).__name__}")
    return data


def run_image_options(run_dir: Optional[Union[str, os.PathLike]]) -> dict:
    """``task_options.image`` of the run's ``recipe.yaml`` (either spelling; empty without a run directory or
    recipe)."""
    rec = _read_recipe(Path(run_dir) if run_dir else None) or {}
    opts = ImageOptions.saved_image_options(rec)
    if not isinstance(opts, dict):
        raise ImageDataError(f"{run_dir}/recipe.yaml: task_options.image must be a mapping, got {opts!r}")
    return dict(opts)


def load_labelled_images(data: Optional[str] = None, run_dir: Optional[Union[str, os.PathLike]] = None,
                         options: Optional[dict] = None):
    """``(dataset, label_names, source)``: a ``datasets.Dataset`` with an ``image`` column and ``labels``
    (ids into ``label_names``).

    With ``data`` (an image folder, pixel CSV or ``.npy`` array) every image of it is used; without it, the
    dev split of the run in ``run_dir`` as its recipe defines it (the training split when it has none).
    Reading options: the run recipe's ``task_options.image`` loader keys, updated by ``options``.
    """
    from ..config import DataConfig, RecipeError, recipe_from_dict
    from ..data.vision import load_image_classification

    run = Path(run_dir) if run_dir else None
    rec = _read_recipe(run)
    recipe_opts = run_image_options(run) if rec else {}
    if data:
        opts = {k: v for k, v in recipe_opts.items() if k in IMAGE_LOADER_KEYS}
        opts.update(options or {})
        opts["dev_fraction"] = 0  # the whole source
        splits = load_image_classification(DataConfig(train_file=str(data)), opts)
        return splits.train, splits.label_names, f"{len(splits.train)} images of {data}"
    if rec is None:
        raise ImageDataError("image model without data: pass --data (an image folder, a pixel CSV or an "
                             ".npy array with labels), or give a run directory whose recipe.yaml names its data")
    try:
        recipe = recipe_from_dict(rec, source=str(run / "recipe.yaml"))
    except RecipeError as e:
        raise ImageDataError(str(e)) from None
    opts = {**recipe_opts, **(options or {})}
    splits = load_image_classification(recipe.data, opts)
    if splits.dev is not None and len(splits.dev):
        return splits.dev, splits.label_names, f"{len(splits.dev)} dev images of run {run}"
    return splits.train, splits.label_names, f"{len(splits.train)} training images of run {run}"


def label_map_for_model(model, data_names: Sequence[str]) -> Optional[dict[int, int]]:
    """Data label id → model label id, by name; None when some data label is not one of the model's."""
    l2i = {str(k): int(v) for k, v in (getattr(model.config, "label2id", None) or {}).items()}
    if not l2i or not all(str(n) in l2i for n in data_names):
        return None
    return {i: l2i[str(n)] for i, n in enumerate(data_names)}


def eval_view(model, ds, indices: Sequence[int]):

    cfg = getattr(model, "data_config", None) or resolve_data_config(model)
    cfg = resolve_data_config(model, {k: cfg[k] for k in ("input_size", "interpolation", "mean", "std",
                                                           "crop_pct", "crop_mode") if k in cfg})
    transform = build_transforms(cfg, is_training=False)
    return with_image_transform(ds.select([int(i) for i in indices]), transform, int(cfg["input_size"][0]))


# ---------------------------------------------------------------------------------------------------------------
# eval / predict with a saved model: the same data forms the recipe trains on
# ---------------------------------------------------------------------------------------------------------------
def _image_logits(model_dir: str, data: str, batch_size: int):
    """``(model, names, data_names, logits, gold, sources)`` for every image of ``data`` (an image folder, pixel
    CSV or ``.npy`` array, read with the loader options of the recipe saved with the model). ``gold`` holds model
    label ids, or None when the data's label names are not all the model's (``predict`` then writes no
    ``label``)."""
    import numpy as np
    import torch

    from ..data.text import DataError
    from ..data.vision import image_collate
    from ..utils.model_dir import resolve_model_dir
    from ..utils.progress import progress

    path = resolve_model_dir(model_dir)
    try:
        model = ImageClassificationTask.load_for_inference(path)
        ds, data_names, _ = load_labelled_images(data, run_dir=path)
    except ImageDataError as e:
        raise DataError(str(e)) from None
    names = [str(model.config.id2label[i]) for i in sorted(int(k) for k in model.config.id2label)]
    mapping = label_map_for_model(model, data_names)
    sources = _image_sources(ds, data)
    view = ImageClassificationTask.preprocess_for_inference(model, ds)
    dl = torch.utils.data.DataLoader(view, batch_size=batch_size, shuffle=False, collate_fn=image_collate)
    logits, labels = [], []
    with torch.no_grad():
        for batch in progress(dl, desc="predict", unit="batch"):
            labels.append(batch.pop("labels"))
            logits.append(model(pixel_values=batch["pixel_values"]).logits.float())
    logits_np = torch.cat(logits).numpy() if logits else np.zeros((0, len(names)), dtype=np.float32)
    gold = None
    if mapping is not None and labels:
        gold = np.array([mapping[int(i)] for i in torch.cat(labels).tolist()], dtype=np.int64)
    return model, names, data_names, logits_np, gold, sources


def _image_sources(ds, data: str) -> list[str]:
    """Where each image comes from: its file for an image folder, ``<file>:<row>`` for arrays and pixel CSVs."""
    import datasets

    if isinstance(ds.features.get("image"), datasets.Image):
        items = ds.cast_column("image", datasets.Image(decode=False))["image"]
        return [(it or {}).get("path") or f"{data}:{i + 1}" for i, it in enumerate(items)]
    return [f"{data}:{i + 1}" for i in range(len(ds))]
