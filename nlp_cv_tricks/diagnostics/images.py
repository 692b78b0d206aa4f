"""The diagnostics on image models: timm classifiers saved by the trainer (timm Hub format: ``config.json`` with
``architecture`` and ``pretrained_cfg``, ``model.safetensors``).

* ``inspect`` — :func:`image_sample_batch` gives :func:`~nlp_cv_tricks.diagnostics.layers.layer_report` a batch of
  ``pixel_values`` (the model's own evaluation transform: resize, center crop, its mean/std) and ``labels``
  (mapped by name onto the model's ``label2id``), read from ``--data`` or the run's dev split;
* ``plot-embeddings`` — :func:`image_features`: the penultimate features (timm ``forward_head(...,
  pre_logits=True)``: the globally pooled vector the classifier reads) or, for ``--layer k``, the output of
  stage ``k`` (timm ``forward_intermediates``) pooled over height and width (``mean`` or ``max``);
* ``probe-cls`` — text only: the [CLS] token has no counterpart in a CNN, and the command says so
  (:func:`refuse_cls_probe`);
* ``diagnose`` reads only the run's history and recipe, so it works unchanged; its remedies for image recipes
  (augmentation, mixup, drop_path, wider timm models) come from :func:`nlp_cv_tricks.diagnostics.doctor.prescribe`.

Data sources are the vision loader's (:mod:`nlp_cv_tricks.data.vision`): an image folder (one sub-folder per
class), a pixel CSV (``.csv``/``.csv.gz``), an ``.npy`` array with labels, read with the run recipe's
``model.kwargs.image`` options when a run directory is given, and ``--image-option KEY=VALUE`` on top.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from ._io import DiagnosticsError

__all__ = ["is_image_model_dir", "load_image_model", "run_image_options", "load_labelled_images",
           "image_sample_batch", "image_features", "refuse_cls_probe", "parse_image_options", "IMAGE_LOADER_KEYS"]

# options of model.kwargs.image that choose how files are read (the transform keys come from the model itself)
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
    from .probes import resolve_model_path

    cfg = _config(resolve_model_path(path))
    if not cfg:
        return False
    return "architecture" in cfg and ("pretrained_cfg" in cfg or cfg.get("model_type") == "timm_wrapper")


def load_image_model(path: Union[str, os.PathLike]):
    """The :class:`~nlp_cv_tricks.models.vision.TimmImageClassifier` saved at ``path`` (eval mode)."""
    from ..models.vision import load_timm_classifier

    try:
        return load_timm_classifier(str(path)).eval()
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise DiagnosticsError(f"{path}: cannot load the timm image model saved here ({type(e).__name__}: {e})") from None


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
        raise DiagnosticsError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise DiagnosticsError(f"{path}: expected a mapping (the resolved recipe), got {type(data).__name__}")
    return data


def run_image_options(run_dir: Optional[Union[str, os.PathLike]]) -> dict:
    """``model.kwargs.image`` of the run's ``recipe.yaml`` (empty without a run directory or recipe)."""
    rec = _read_recipe(Path(run_dir) if run_dir else None) or {}
    opts = ((rec.get("model") or {}).get("kwargs") or {}).get("image") or {}
    if not isinstance(opts, dict):
        raise DiagnosticsError(f"{run_dir}/recipe.yaml: model.kwargs.image must be a mapping, got {opts!r}")
    return dict(opts)


def parse_image_options(items: Optional[Sequence[str]]) -> dict:
    """``--image-option KEY=VALUE`` items (VALUE read as YAML: ``label_blocks=[[face,100],[non-face,100]]``)."""
    import yaml

    from ..vision_task import IMAGE_KWARGS

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or key not in IMAGE_KWARGS:
            import difflib

            near = difflib.get_close_matches(key, IMAGE_KWARGS, n=1)
            raise DiagnosticsError(f"--image-option {item!r}: expected KEY=VALUE with KEY an image option "
                                   f"({', '.join(IMAGE_KWARGS)})" + (f"; did you mean {near[0]!r}?" if near else ""))
        try:
            out[key] = yaml.safe_load(val)
        except yaml.YAMLError as e:
            raise DiagnosticsError(f"--image-option {item!r}: the value is not valid YAML ({e})") from None
    return out


def load_labelled_images(data: Optional[str] = None, run_dir: Optional[Union[str, os.PathLike]] = None,
                         options: Optional[dict] = None):
    """``(dataset, label_names, source)``: a ``datasets.Dataset`` with an ``image`` column and ``labels``
    (ids into ``label_names``).

    With ``data`` (an image folder, pixel CSV or ``.npy`` array) every image of it is used; without it, the
    dev split of the run in ``run_dir`` as its recipe defines it (the training split when it has none).
    Reading options: the run recipe's ``model.kwargs.image`` loader keys, updated by ``options``.
    """
    from ..config import DataConfig, RecipeError, recipe_from_dict
    from ..data.vision import ImageDataError, load_image_classification

    run = Path(run_dir) if run_dir else None
    rec = _read_recipe(run)
    recipe_opts = run_image_options(run) if rec else {}
    try:
        if data:
            opts = {k: v for k, v in recipe_opts.items() if k in IMAGE_LOADER_KEYS}
            opts.update(options or {})
            opts["dev_fraction"] = 0  # the whole source
            splits = load_image_classification(DataConfig(train_file=str(data)), opts)
            return splits.train, splits.label_names, f"{len(splits.train)} images of {data}"
        if rec is None:
            raise DiagnosticsError("image model without data: pass --data (an image folder, a pixel CSV or an "
                                   ".npy array with labels), or give a run directory whose recipe.yaml names its data")
        try:
            recipe = recipe_from_dict(rec, source=str(run / "recipe.yaml"))
        except RecipeError as e:
            raise DiagnosticsError(str(e)) from None
        opts = {**recipe_opts, **(options or {})}
        splits = load_image_classification(recipe.data, opts)
    except ImageDataError as e:
        raise DiagnosticsError(str(e)) from None
    if splits.dev is not None and len(splits.dev):
        return splits.dev, splits.label_names, f"{len(splits.dev)} dev images of run {run}"
    return splits.train, splits.label_names, f"{len(splits.train)} training images of run {run}"


def _label_map(model, data_names: Sequence[str]) -> Optional[dict[int, int]]:
    """Data label id → model label id, by name; None when some data label is not one of the model's."""
    l2i = {str(k): int(v) for k, v in (getattr(model.config, "label2id", None) or {}).items()}
    if not l2i or not all(str(n) in l2i for n in data_names):
        return None
    return {i: l2i[str(n)] for i, n in enumerate(data_names)}


def _eval_dataset(model, ds, indices: Sequence[int]):
    from ..data.vision import build_transforms, resolve_data_config, with_image_transform

    cfg = getattr(model, "data_config", None) or resolve_data_config(model)
    cfg = resolve_data_config(model, {k: cfg[k] for k in ("input_size", "interpolation", "mean", "std",
                                                           "crop_pct", "crop_mode") if k in cfg})
    transform = build_transforms(cfg, is_training=False)
    return with_image_transform(ds.select([int(i) for i in indices]), transform, int(cfg["input_size"][0]))


def image_sample_batch(model, ds, label_names: Sequence[str], n: int = 16, seed: int = 0) -> tuple[dict, Optional[list]]:
    """A seeded sample of ``n`` images as ``{"pixel_values": (n, C, H, W), "labels": (n,)}`` through the model's
    evaluation transform. ``labels`` is left out (and the second value is None) when the data's label names are
    not the model's; the second value lists the sampled images' label names otherwise."""
    from ..data.vision import image_collate

    if len(ds) == 0:
        raise DiagnosticsError("the image data is empty")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(ds))[: max(1, int(n))])
    batch = image_collate([ex for ex in _eval_dataset(model, ds, idx)])
    mapping = _label_map(model, label_names)
    if mapping is None:
        batch.pop("labels", None)
        return batch, None
    raw = batch["labels"].tolist()
    batch["labels"] = torch.tensor([mapping[int(i)] for i in raw], dtype=torch.long)
    return batch, [str(label_names[int(i)]) for i in raw]


def n_feature_layers(model) -> int:
    """Layers :func:`image_features` can read: the stages of ``forward_intermediates`` (when the timm model has
    it) plus the penultimate (pre-logits) features, which are the last."""
    inner = getattr(model, "timm_model", model)
    info = getattr(inner, "feature_info", None)
    if hasattr(inner, "forward_intermediates") and info:
        return len(info) + 1
    return 1


@torch.no_grad()
def image_features(model, ds, indices: Optional[Sequence[int]] = None, layer: int = -1, pooling: str = "mean",
                   batch_size: int = 64) -> np.ndarray:
    """Features ``[n, d]`` of the images ``ds[indices]`` (all when None) through the model's eval transform.

    ``layer=-1`` (or the last index): the penultimate features — timm's ``forward_head(forward_features(x),
    pre_logits=True)``, the pooled vector the classifier reads (``pooling`` does not apply: the model's own
    global pool is used). ``layer=k`` for ``0 <= k < n_feature_layers(model) - 1``: the output of stage ``k``
    from timm's ``forward_intermediates``, pooled over height and width by ``pooling`` (``mean`` or ``max``).
    """
    from ..data.vision import image_collate

    if pooling not in ("mean", "max"):
        raise DiagnosticsError(f"--pooling {pooling!r}: image feature maps are pooled over height and width with "
                               "'mean' or 'max' ([CLS] pooling is for text encoders)")
    inner = getattr(model, "timm_model", model)
    n_layers = n_feature_layers(model)
    k = layer if layer >= 0 else n_layers + layer
    if not 0 <= k < n_layers:
        raise DiagnosticsError(f"--layer {layer}: this image model has layers 0..{n_layers - 1} "
                               f"({n_layers - 1} stages of forward_intermediates, then the penultimate features)")
    indices = list(range(len(ds))) if indices is None else list(indices)
    tds = _eval_dataset(model, ds, indices)
    was = inner.training
    inner.eval()
    device = next(inner.parameters()).device
    out = []
    try:
        for start in range(0, len(tds), batch_size):
            x = image_collate([tds[i] for i in range(start, min(start + batch_size, len(tds)))])["pixel_values"]
            x = x.to(device)
            if k == n_layers - 1:
                f = inner.forward_head(inner.forward_features(x), pre_logits=True)
            else:
                maps = inner.forward_intermediates(x, indices=[k], intermediates_only=True)
                m = maps[-1]
                if m.dim() == 4:
                    f = m.mean(dim=(2, 3)) if pooling == "mean" else m.amax(dim=(2, 3))
                elif m.dim() == 3:  # tokens (B, N, C)
                    f = m.mean(dim=1) if pooling == "mean" else m.amax(dim=1)
                else:
                    f = m
            out.append(f.reshape(len(x), -1).float().cpu().numpy())
    finally:
        inner.train(was)
    return np.concatenate(out, 0)


def refuse_cls_probe(path: str) -> None:
    """``probe-cls`` on a timm image model: a clear error instead of a tokenizer crash."""
    raise DiagnosticsError(
        f"{path}: probe-cls probes the [CLS] token (and mean/max token pooling) of a text encoder's layers; this "
        "is a timm image model, which has no tokens or [CLS]. For images use `nlp-cv-tricks plot-embeddings "
        f"{path}` (PCA → t-SNE of the penultimate features, or of a stage with --layer) and `nlp-cv-tricks "
        f"inspect {path}` (layer statistics)")
