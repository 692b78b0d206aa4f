"""Regularisation: weight-decay parameter groups (bias and norm parameters excluded) and embedding dropout.

Weight decay is applied by the optimizer, which the trainer builds; :func:`decay_parameter_groups` is the
helper it uses, so that "weight decay on/off" is a recipe value (``train.weight_decay=0.0,0.01`` in an
ablation) and bias/LayerNorm/BatchNorm parameters are never decayed (Loshchilov & Hutter, "Decoupled Weight
Decay Regularization", ICLR 2019; BERT's original optimizer excluded them the same way). The tip is to
*compare* with and without weight decay rather than assume it helps.
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch
import torch.nn.functional as F

from ..engine.events import Trick
from .adversarial import input_embeddings
from .registry import register_trick

__all__ = ["NORM_TYPES", "no_decay_parameter_names", "decay_parameter_groups", "embedding_dropout",
           "EmbeddingDropout"]

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


def embedding_dropout(x: torch.Tensor, p: float, mode: str = "element", training: bool = True,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Dropout on an embedding output ``(B, L, H)``.

    ``element``: ordinary dropout of single units. ``token``: whole token vectors are zeroed (the rest scaled by
    ``1/(1-p)``), the "word dropout" of Gal & Ghahramani 2016 applied to the embedding output.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"embedding dropout p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    if mode == "element":
        if generator is None:
            return F.dropout(x, p, training=True)
        keep = torch.rand(x.shape, device=x.device, generator=generator) >= p
        return x * keep.to(x.dtype) / (1.0 - p)
    if mode == "token":
        shape = x.shape[:-1] + (1,)
        keep = torch.rand(shape, device=x.device, generator=generator) >= p
        return x * keep.to(x.dtype) / (1.0 - p)
    raise ValueError(f"embedding dropout mode must be 'element' or 'token', got {mode!r}")


@register_trick("embedding_dropout")
class EmbeddingDropout(Trick):
    """Dropout on the output of ``get_input_embeddings()`` (or the module at ``module``), in training only.

    Source: Gal & Ghahramani, "A Theoretically Grounded Application of Dropout in Recurrent Neural Networks",
    NeurIPS 2016 (embedding/word dropout); the tip "add dropout, also on the embedding layer, the more the
    model overfits". Expected effect: less overfitting on small data; too much hurts. Cost: negligible.

    Recipe key ``embedding_dropout``: ``p`` (0.1), ``mode`` (``element`` or ``token``), ``module``.
    The hook is registered at fit start and removed at fit end; it follows ``module.training``, so evaluation
    and prediction are unaffected.
    """

    def __init__(self, p: float = 0.1, mode: str = "element", module: Optional[str] = None):
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"embedding_dropout.p must be in [0, 1), got {p}")
        if mode not in ("element", "token"):
            raise ValueError(f"embedding_dropout.mode must be 'element' or 'token', got {mode!r}")
        self.p, self.mode, self.module = float(p), mode, module
        self._handle = None

    def attach(self, model: torch.nn.Module) -> None:
        """Register the hook on ``model`` (what ``on_fit_start`` does; usable in any training loop)."""
        self.detach()
        emb = input_embeddings(model, self.module)
        if self.mode == "token" and isinstance(emb, torch.nn.EmbeddingBag):
            # a bag returns one averaged vector per text: "token" would drop whole examples
            raise ValueError(f"embedding_dropout.mode='token' needs per-token embeddings; {type(model).__name__}'s "
                             "EmbeddingBag returns one vector per text (use mode: element, or the model's own "
                             "embedding_dropout option)")

        def hook(module, inputs, output):
            if not torch.is_tensor(output):
                raise TypeError(f"embedding_dropout: {type(module).__name__} returns {type(output).__name__}, "
                                "not a tensor")
            return embedding_dropout(output, self.p, self.mode, training=module.training)

        self._handle = emb.register_forward_hook(hook)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def on_fit_start(self, trainer):
        self.attach(trainer.accelerator.unwrap_model(trainer.model))

    def on_fit_end(self, trainer):
        self.detach()
