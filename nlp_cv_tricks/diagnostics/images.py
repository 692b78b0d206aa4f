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
``task_options.image`` options when a run directory is given, and ``--image-option KEY=VALUE`` on top.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..tasks.image_classification import (IMAGE_LOADER_KEYS, eval_view, is_image_model_dir, label_map_for_model,
                                          load_image_model, load_labelled_images, run_image_options)
from ._io import DiagnosticsError

__all__ = ["is_image_model_dir", "load_image_model", "run_image_options", "load_labelled_images",
           "image_sample_batch", "image_features", "refuse_cls_probe", "parse_image_options", "IMAGE_LOADER_KEYS"]

def parse_image_options(items: Optional[Sequence[str]]) -> dict:
    """``--image-option KEY=VALUE`` items (VALUE read as YAML: ``label_blocks=[[face,100],[non-face,100]]``)."""
    import yaml

    from ..tasks.image_classification import IMAGE_KWARGS

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


def image_sample_batch(model, ds, label_names: Sequence[str], n: int = 16, seed: int = 0) -> tuple[dict, Optional[list]]:
    """A seeded sample of ``n`` images as ``{"pixel_values": (n, C, H, W), "labels": (n,)}`` through the model's
    evaluation transform. ``labels`` is left out (and the second value is None) when the data's label names are
    not the model's; the second value lists the sampled images' label names otherwise."""
    from ..data.vision import image_collate

    if len(ds) == 0:
        raise DiagnosticsError("the image data is empty")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(ds))[: max(1, int(n))])
    batch = image_collate([ex for ex in eval_view(model, ds, idx)])
    mapping = label_map_for_model(model, label_names)
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
    tds = eval_view(model, ds, indices)
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
