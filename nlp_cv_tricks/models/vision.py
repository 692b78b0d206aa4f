"""timm image classifiers for the trainer: creation by name, local or Hub pretrained weights with a new head,
layer-wise LR decay, stage freezing, gradient checkpointing, and saving in timm's Hub format (the EMA of the
weights is the ``ema`` trick, :mod:`nlp_cv_tricks.tricks.ema`).

The model class, :class:`TimmImageClassifier`, is a ``transformers`` ``TimmWrapperForImageClassification``
(a ``PreTrainedModel`` around a timm model at ``.timm_model``), so it has ``.config.id2label`` and works with
the trainer, ``AutoModelForImageClassification`` and ``push_to_hub``. Two things differ from the transformers
class:

* weights keep timm's own initialisation (the transformers wrapper re-initialises every conv/linear with
  ``N(0, 0.02)``, which hurts ResNets trained from scratch);
* :meth:`TimmImageClassifier.save_pretrained` writes timm's Hub format — ``config.json`` with ``architecture``,
  ``num_classes``, ``label_names``, ``model_args`` and ``pretrained_cfg`` (mean/std/input size used), and
  ``model.safetensors`` with native timm keys — so ``timm.create_model("local-dir:<dir>")``,
  ``timm.create_model("hf-hub:<id>")`` after a push, and ``AutoModelForImageClassification.from_pretrained``
  all load it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from ..utils.optional import require

timm = require("timm", purpose="image models (timm)")  # first: transformers' timm wrapper needs it too

from transformers import TimmWrapperConfig, TimmWrapperForImageClassification  # noqa: E402
from transformers.models.timm_wrapper.modeling_timm_wrapper import TimmWrapperPreTrainedModel  # noqa: E402

logger = logging.getLogger(__name__)

__all__ = [
    "TimmImageClassifier",
    "create_timm_classifier",
    "load_timm_classifier",
    "layer_decay_param_groups",
    "freeze_stages",
    "num_stages",
]


class TimmImageClassifier(TimmWrapperForImageClassification):
    """A timm classifier as a ``PreTrainedModel``: ``forward(pixel_values)`` returns ``.logits``.

    Attributes set for training (not saved): ``layer_decay`` (float or None) used by
    :meth:`optimizer_param_groups`.
    """

    def __init__(self, config: TimmWrapperConfig, timm_model: Optional[torch.nn.Module] = None):
        if timm_model is None:
            super().__init__(config)
        else:  # wrap an already built (e.g. pretrained) timm model instead of creating a fresh one
            TimmWrapperPreTrainedModel.__init__(self, config)
            self.timm_model = timm_model
            self.num_labels = config.num_labels
            self.post_init()
        self.layer_decay: Optional[float] = None
        # transformers picks the loss of forward(labels=...) from the class name, and this one does not end in
        # "ForImageClassification": without this it falls back to the causal-LM loss and crashes
        self.loss_type = "ForImageClassification"

    def _init_weights(self, module):
        """Keep timm's initialisation (kaiming for convs, zero-init of last BN gammas, ...)."""

    # ---- optimisation --------------------------------------------------------------------------
    def optimizer_param_groups(self, weight_decay: float, lr: float) -> list[dict]:
        """Parameter groups for the optimizer: timm's layer-wise LR decay when ``self.layer_decay`` is set
        (each group has ``lr = lr * lr_scale``), otherwise timm's weight-decay split. Biases, norms and the
        model's ``no_weight_decay()`` parameters get no weight decay in both cases."""
        return layer_decay_param_groups(self, weight_decay, lr, self.layer_decay)

    # ---- saving / loading ----------------------------------------------------------------------
    def save_pretrained(self, save_directory: Union[str, os.PathLike], state_dict: Optional[dict] = None,
                        safe_serialization: bool = True, data_config: Optional[dict] = None, **kwargs) -> None:
        """Write timm's Hub format (``config.json`` + ``model.safetensors``), each file atomically.

        ``state_dict`` may be the wrapper's (keys ``timm_model.*``, as the trainer passes it) or timm's.
        ``data_config`` (input_size, mean, std, interpolation, crop_pct) is recorded in ``pretrained_cfg``;
        by default the one set with :meth:`set_data_config` is used."""
        from safetensors.torch import save_file
        from timm.models._hub import save_config_for_hf

        if not safe_serialization:
            raise ValueError("TimmImageClassifier saves safetensors only (safe_serialization=True)")
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        sd = self.state_dict() if state_dict is None else state_dict
        sd = {(k[len("timm_model."):] if k.startswith("timm_model.") else k): v.detach().contiguous().cpu()
              for k, v in sd.items()}
        labels = [self.config.id2label[i] for i in range(self.config.num_labels)]
        data_config = data_config or getattr(self, "data_config", None)
        with tempfile.TemporaryDirectory(dir=out, prefix=".save.") as tmp:
            save_file(sd, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
            save_config_for_hf(self.timm_model, os.path.join(tmp, "config.json"),
                               model_config={"label_names": labels},
                               data_config=_timm_data_args(data_config) if data_config else None)
            # mark the file as a transformers TimmWrapper config too (timm ignores the extra key)
            cfg = json.loads(Path(tmp, "config.json").read_text())
            cfg.setdefault("model_type", "timm_wrapper")
            # the class count lives at the root (num_classes); a duplicate in model_args breaks transformers
            if isinstance(cfg.get("model_args"), dict):
                cfg["model_args"].pop("num_classes", None)
                if not cfg["model_args"]:
                    cfg.pop("model_args")
            Path(tmp, "config.json").write_text(json.dumps(cfg, indent=2))
            for name in ("model.safetensors", "config.json"):
                os.replace(os.path.join(tmp, name), out / name)

    def set_data_config(self, data_config: dict) -> None:
        """Remember the preprocessing (timm data config) to record in ``config.json`` when saving."""
        self.data_config = dict(data_config)


def _timm_data_args(data_config: dict) -> dict:
    keys = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in data_config.items() if k in keys}


def _wrap(timm_model: torch.nn.Module, architecture: str, label_names: Sequence[str],
          model_args: Optional[dict]) -> TimmImageClassifier:
    labels = [str(x) for x in label_names]
    model_args = {k: v for k, v in (model_args or {}).items() if k != "num_classes"}
    config = TimmWrapperConfig(architecture=architecture, model_args=model_args or None,
                               num_labels=len(labels), id2label=dict(enumerate(labels)),
                               label2id={n: i for i, n in enumerate(labels)})
    return TimmImageClassifier(config, timm_model=timm_model)


def create_timm_classifier(  # noqa: C901
    name: str,
    label_names: Sequence[str],
    pretrained: bool = False,
    pretrained_file: Optional[str] = None,
    in_chans: Optional[int] = None,
    drop_rate: Optional[float] = None,
    drop_path_rate: Optional[float] = None,
    model_args: Optional[dict] = None,
) -> TimmImageClassifier:
    """Create a timm model by name with a head for ``label_names``.

    * ``name``: a timm architecture (``resnet10t``, ``convnext_atto``, ``vit_tiny_patch16_224``...),
      ``hf-hub:<repo>`` or ``local-dir:<dir>`` (a timm Hub-format directory, e.g. one this package saved).
    * ``pretrained_file``: a local checkpoint (``.safetensors``/``.pth``) of the same architecture, loaded
      through ``pretrained_cfg_overlay=dict(file=...)``; ``pretrained=True`` without it downloads from the Hub.
    * With pretrained weights whose head has a different number of classes, timm drops the old classifier and
      the new head is freshly initialised (the backbone weights are loaded unchanged).
    * ``model_args`` are extra ``create_model`` keyword arguments (e.g. ``{"channels": [16, 32, 64, 128]}``).
    """
    labels = list(label_names)
    if not labels:
        raise ValueError("create_timm_classifier: label_names is empty")
    kwargs = dict(model_args or {})
    for key, value in (("in_chans", in_chans), ("drop_rate", drop_rate), ("drop_path_rate", drop_path_rate)):
        if value is not None:
            kwargs[key] = value
    if pretrained_file is not None:
        path = Path(pretrained_file)
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"pretrained_file {str(path)!r} is a directory without config.json; "
                                        "give a weights file or a timm Hub-format directory")
            name, pretrained, pretrained_file = f"local-dir:{path}", True, None
        elif not path.is_file():
            raise FileNotFoundError(f"pretrained_file {str(path)!r} does not exist")
    create_kwargs: dict[str, Any] = dict(kwargs)
    if pretrained_file is not None:
        create_kwargs["pretrained_cfg_overlay"] = dict(file=str(pretrained_file))
        pretrained = True
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=len(labels), **create_kwargs)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise ValueError(f"model.name={name!r} is not a timm model (see timm.list_models())") from e
        raise
    except TypeError as e:  # a keyword the architecture does not take (model_args written for another model)
        if "unexpected keyword argument" in str(e) and model_args:
            raise ValueError(f"model.kwargs.model_args {dict(model_args)} do not fit model.name={name!r} ({e}); "
                             "set model.kwargs.model_args={} (or arguments of that architecture)") from e
        raise
    except OSError as e:  # Hub download failed (offline, unknown repo)
        if pretrained and pretrained_file is None and not name.startswith("local-dir:"):
            raise OSError(f"could not fetch pretrained weights for {name!r} ({e}); offline, give a local weights "
                          "file or directory as model.kwargs.pretrained_file") from e
        raise
    architecture = model.pretrained_cfg.get("architecture") or name
    # model_args that rebuild the architecture (recorded by timm's factory), for TimmWrapperConfig
    try:
        from timm.models._hub import get_model_args

        arch_args = get_model_args(model, {})
    except (ImportError, ValueError, TypeError):
        arch_args = {k: v for k, v in kwargs.items() if k not in ("drop_rate", "drop_path_rate")}
    return _wrap(model, architecture, labels, arch_args)


def load_timm_classifier(path_or_id: str) -> TimmImageClassifier:
    """Load a classifier saved in timm's Hub format: a local directory or ``hf-hub:<repo>``."""
    if path_or_id.startswith(("hf-hub:", "local-dir:")):
        spec = path_or_id
    else:
        if not (Path(path_or_id) / "config.json").is_file():
            raise FileNotFoundError(f"{path_or_id!r}: no config.json (expected a timm Hub-format directory)")
        spec = f"local-dir:{path_or_id}"
    model = timm.create_model(spec, pretrained=True)
    cfg = model.pretrained_cfg
    labels = cfg.get("label_names") or [str(i) for i in range(model.num_classes)]
    if isinstance(labels, dict):
        labels = [labels[k] for k in sorted(labels, key=int)]
    try:
        from timm.models._hub import get_model_args

        arch_args = get_model_args(model, {})
    except (ImportError, ValueError, TypeError):
        arch_args = None
    wrapped = _wrap(model, cfg.get("architecture") or spec, labels, arch_args)
    wrapped.set_data_config({k: cfg[k] for k in ("input_size", "interpolation", "mean", "std", "crop_pct")
                             if k in cfg})
    return wrapped


# ---- layer-wise LR decay ----------------------------------------------------------------------------
def layer_decay_param_groups(model: torch.nn.Module, weight_decay: float, lr: float,
                             layer_decay: Optional[float] = None) -> list[dict]:
    """Optimizer parameter groups with layer-wise learning-rate decay.

    Source: BEiT (Bao et al., ICLR 2022) / ELECTRA (Clark et al., 2020). The head keeps ``lr``; each block
    closer to the input gets ``lr * layer_decay ** depth``. Expected effect: better fine-tuning of pretrained
    backbones (the low layers move less); no effect from scratch. Cost: none.

    Uses timm's ``param_groups_layer_decay`` (blocks from the model's ``group_matcher``) and sets each group's
    ``lr`` explicitly, so torch optimizers and transformers' schedulers (which scale each group's initial lr)
    keep the per-group rates. Without ``layer_decay`` the groups are timm's weight-decay split.
    """
    from timm.optim import param_groups_layer_decay, param_groups_weight_decay

    inner = getattr(model, "timm_model", model)
    no_wd = set(inner.no_weight_decay()) if hasattr(inner, "no_weight_decay") else set()
    if layer_decay is None:
        groups = param_groups_weight_decay(inner, weight_decay, no_weight_decay_list=no_wd)
        for g in groups:
            g["lr"] = lr
        return [g for g in groups if g["params"]]
    if not 0.0 < float(layer_decay) <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
    groups = param_groups_layer_decay(inner, weight_decay=weight_decay, no_weight_decay_list=no_wd,
                                      layer_decay=float(layer_decay))
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    return groups


# ---- freezing ---------------------------------------------------------------------------------------
def _stage_groups(model: torch.nn.Module) -> list[list[str]]:
    """Parameter names per coarse block (stem, stage 1, ..., head), from timm's ``group_matcher``."""
    from timm.models import group_parameters

    inner = getattr(model, "timm_model", model)
    if not hasattr(inner, "group_matcher"):
        raise ValueError(f"{type(inner).__name__} has no group_matcher(); cannot freeze by stage")
    groups = group_parameters(inner, inner.group_matcher(coarse=True))
    return [list(groups[k]) for k in sorted(groups)]


def num_stages(model: torch.nn.Module) -> int:
    """Number of coarse blocks (stem and stages; the head is the last one)."""
    return len(_stage_groups(model))


def freeze_stages(model: torch.nn.Module, n: int) -> list[str]:
    """Freeze the first ``n`` coarse blocks (the stem counts as one) with ``timm.utils.freeze``: their
    parameters stop requiring gradients and their BatchNorm layers become ``FrozenBatchNorm2d`` (running
    statistics fixed). The head can not be frozen. Returns the frozen parameter names.

    Expected effect: faster, more stable fine-tuning on small data sets when the backbone is pretrained;
    cost: none (less backward compute)."""
    from timm.utils.model import freeze

    inner = getattr(model, "timm_model", model)
    groups = _stage_groups(inner)
    if not 0 <= n < len(groups):
        raise ValueError(f"freeze_stages={n}: the model has {len(groups) - 1} freezable blocks "
                         f"(stem + stages; the head, block {len(groups) - 1}, stays trainable)")
    names = [p for g in groups[:n] for p in g]
    if not names:
        return []
    module_names = sorted({p.rsplit(".", 1)[0] for p in names if "." in p})
    freeze(inner, submodules=module_names)
    for pname, p in inner.named_parameters():  # parameters registered directly on the root (e.g. pos_embed)
        if pname in names:
            p.requires_grad_(False)
    return names
