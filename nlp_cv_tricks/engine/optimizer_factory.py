"""Optimizers and schedules from a recipe: parameter groups with weight decay on weight matrices only, the
optimizer ``train.optimizer`` names (sparse-row variants for sparse embeddings), the learning-rate schedule, and
:func:`create_optimizer` for a model used outside the trainer. The one home of optimizer construction."""

from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
from torch import nn

__all__ = ["NORM_TYPES", "no_decay_parameter_names", "decay_parameter_groups", "param_groups", "build_optimizer",
           "build_scheduler", "create_optimizer"]

NORM_TYPES: tuple[type, ...] = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.LocalResponseNorm,
                                torch.nn.modules.batchnorm._NormBase)
if hasattr(torch.nn, "RMSNorm"):
    NORM_TYPES = NORM_TYPES + (torch.nn.RMSNorm,)


def _is_norm(module: torch.nn.Module) -> bool:
    # HF models define their own norms (T5LayerNorm, LlamaRMSNorm, DebertaLayerNorm): match by class name too
    return isinstance(module, NORM_TYPES) or "norm" in type(module).__name__.lower()


def no_decay_parameter_names(model: torch.nn.Module, exclude_embeddings: bool = False,
                             extra: Iterable[str] = ()) -> set[str]:
    """Names of parameters that get no weight decay: every bias, every parameter of a normalisation module
    (LayerNorm, BatchNorm, GroupNorm, RMSNorm and custom ``*Norm`` classes), embeddings with sparse gradients,
    optionally all embedding tables, and any name containing one of ``extra``."""
    names: set[str] = set()
    extra = tuple(extra)
    for mod_name, module in model.named_modules():
        norm = _is_norm(module)
        emb = exclude_embeddings and isinstance(module, torch.nn.Embedding)
        # torch optimizers refuse weight decay on sparse gradients (FastText's EmbeddingBag(sparse=True))
        emb = emb or bool(getattr(module, "sparse", False))
        for p_name, _ in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if norm or emb or p_name == "bias" or p_name.endswith("_bias") or any(e in full for e in extra):
                names.add(full)
    return names


def decay_parameter_groups(model: torch.nn.Module, weight_decay: float, lr: Optional[float] = None,
                           exclude_embeddings: bool = False, extra_no_decay: Iterable[str] = ()) -> list[dict]:
    """Optimizer parameter groups: ``[{params: decayed, weight_decay}, {params: others, weight_decay: 0}]``.

    Only trainable parameters are included; empty groups are left out; ``lr`` is set on each group when given.
    With ``weight_decay == 0`` a single group is returned. Usage::

        torch.optim.AdamW(decay_parameter_groups(model, 0.01), lr=2e-5)
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    skip = no_decay_parameter_names(model, exclude_embeddings, extra_no_decay)
    decay, no_decay = [], []
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (no_decay if name in skip or weight_decay == 0 else decay).append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": float(weight_decay)})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    if not groups:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    if lr is not None:
        for g in groups:
            g["lr"] = float(lr)
    return groups


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices only: biases and normalisation parameters are excluded."""
    return decay_parameter_groups(model, weight_decay)


def build_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    name = cfg.optimizer
    if name == "auto":
        name = getattr(model, "preferred_optimizer", None) or "adamw"
        if callable(name):
            name = name()
    lr = cfg.learning_rate
    sparse = any(getattr(m, "sparse", False) and any(p.requires_grad for p in m.parameters())
                 for m in model.modules() if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)))
    if sparse and name not in ("sgd", "adagrad", "sparse_adam"):
        raise ValueError(f"train.optimizer={name!r} cannot update sparse gradients (the model has sparse embeddings, "
                         "e.g. FastText's sparse: true): use train.optimizer=auto (Adagrad), sgd with "
                         "train.momentum=0 or sparse_adam, or set model.kwargs.sparse=false")
    if name == "sparse_adam":  # SparseAdam for the sparse rows, the same masked Adam for the dense layers
        from .optim import SparseDenseAdam

        return SparseDenseAdam([p for p in model.parameters() if p.requires_grad], lr=lr,
                               betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon)
    # a model may bring its own groups (e.g. layer-wise LR decay of timm models: each group has its own lr)
    hook = getattr(model, "optimizer_param_groups", None)
    groups = hook(cfg.weight_decay, lr) if callable(hook) else param_groups(model, cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon)
    if name == "sgd":
        if sparse:
            if cfg.momentum:
                raise ValueError("train.momentum must be 0 with sparse gradients (e.g. FastText's sparse embeddings): "
                                 "torch's SGD momentum buffer of sparse gradients grows every step; set "
                                 "train.momentum=0")
            from .optim import SparseRowSGD  # torch's SGD with a compiled CPU update of sparse rows

            return SparseRowSGD(groups, lr=lr, momentum=0.0)
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum)
    if name == "adagrad":
        if sparse:
            from .optim import SparseRowAdagrad  # torch's Adagrad with a compiled CPU update of sparse rows

            return SparseRowAdagrad(groups, lr=lr)
        return torch.optim.Adagrad(groups, lr=lr)
    if name == "adadelta":  # Zeiler 2012 as used by Kim 2014: rho 0.95, eps 1e-6; learning_rate 1.0 is the paper's
        return torch.optim.Adadelta(groups, lr=lr, rho=0.95, eps=1e-6)
    raise ValueError(f"train.optimizer: unknown optimizer {name!r}")


def build_scheduler(optimizer, cfg, num_training_steps: int):
    from transformers import get_scheduler

    warmup = cfg.warmup_steps or int(math.ceil(cfg.warmup_ratio * num_training_steps))
    return get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=num_training_steps)


def create_optimizer(
    model: nn.Module, lr: Optional[float] = None, weight_decay: Optional[float] = None, name: Optional[str] = None
):
    """Instantiate an optimizer over the trainable parameters: the model's own ``preferred_optimizer()`` by default
    (the text baselines: Adagrad for FastText's sparse bag, Adam otherwise; see
    :func:`nlp_cv_tricks.models.text_baselines.preferred_optimizer`), or ``name`` (``"adagrad"``, ``"adam"``,
    ``"sgd"`` -- plain SGD without momentum, fastText's optimizer --, ``"adadelta"`` -- Kim 2014's, rho 0.95, eps
    1e-6, lr 1.0 by default). ``lr``/``weight_decay`` override the defaults (weight decay 0)."""
    m = getattr(model, "module", model)  # DDP
    preferred = m.preferred_optimizer() if callable(getattr(m, "preferred_optimizer", None)) else "adam"
    hint = {"name": preferred, "weight_decay": 0.0,
            # trainable sparse embeddings (FastText's bag with sparse=True): only Adagrad and SGD update them
            "sparse": any(getattr(mod, "sparse", False) and any(p.requires_grad for p in mod.parameters())
                          for mod in m.modules() if isinstance(mod, (nn.Embedding, nn.EmbeddingBag)))}
    name = (name or hint["name"]).lower()
    defaults = {"adagrad": 0.2, "adam": 1e-3, "sgd": 0.5, "adadelta": 1.0}
    if name not in defaults:
        raise ValueError(f"create_optimizer: unknown optimizer {name!r}; choose one of {sorted(defaults)}")
    lr = defaults[name] if lr is None else lr
    wd = hint["weight_decay"] if weight_decay is None else weight_decay
    params = [p for p in model.parameters() if p.requires_grad]
    if hint["sparse"] and wd:
        raise ValueError("weight decay is not supported with sparse gradients (FastText sparse=True)")
    if name == "adagrad":
        if hint["sparse"]:
            from .optim import SparseRowAdagrad

            return SparseRowAdagrad(params, lr=lr, weight_decay=wd)
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    if name == "sgd":
        if hint["sparse"]:
            from .optim import SparseRowSGD

            return SparseRowSGD(params, lr=lr, momentum=0.0, weight_decay=wd)
        return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=wd)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, rho=0.95, eps=1e-6, weight_decay=wd)
    if hint["sparse"]:
        raise ValueError("Adam does not support sparse gradients (FastText sparse=True): use adagrad or sgd")
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)
