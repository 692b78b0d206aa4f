"""Regularisation: weight-decay parameter groups (bias and norm parameters excluded) and embedding dropout.

Weight decay is applied by the optimizer, which the trainer builds; :func:`decay_parameter_groups` is the
helper it uses, so that "weight decay on/off" is a recipe value (``train.weight_decay=0.0,0.01`` in an
ablation) and bias/LayerNorm/BatchNorm parameters are never decayed (Loshchilov & Hutter, "Decoupled Weight
Decay Regularization", ICLR 2019; BERT's original optimizer excluded them the same way). The tip is to
*compare* with and without weight decay rather than assume it helps.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..engine.events import Trick
from ..engine.optimizer_factory import NORM_TYPES, decay_parameter_groups, no_decay_parameter_names  # noqa: F401
from .adversarial import input_embeddings

__all__ = ["NORM_TYPES", "no_decay_parameter_names", "decay_parameter_groups", "embedding_dropout",
           "EmbeddingDropout"]


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


class EmbeddingDropout(Trick):
    """Dropout on the output of ``get_input_embeddings()`` (or the module at ``module``), in training only.

    Source: Gal & Ghahramani, "A Theoretically Grounded Application of Dropout in Recurrent Neural Networks",
    NeurIPS 2016 (embedding/word dropout); the tip "add dropout, also on the embedding layer, the more the
    model overfits". Expected effect: less overfitting on small data; too much hurts. Cost: negligible.

    Recipe key ``embedding_dropout``: ``p`` (0.1), ``mode`` (``element`` or ``token``), ``module``.
    The hook is registered at fit start and removed at fit end; it follows ``module.training``, so evaluation
    and prediction are unaffected.
    """

    name = "embedding_dropout"

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
