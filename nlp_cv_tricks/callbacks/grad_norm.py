"""Per-layer gradient-norm logging: an observer on the ``before_optimizer_step`` hook.

Measures the L2 norm of the (unscaled, clipped-before) gradients of each top-level block of the model every
``every`` optimizer steps; the history gets their mean as ``train/grad_norm/<block>`` in each logging row. Expected effect on training: none. Use it to see
vanishing or exploding gradients per layer. Cost: one norm per parameter on logging steps only.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from ..engine.events import Callback


_PREFIXES = {"bert", "roberta", "distilbert", "electra", "deberta", "longformer", "albert", "xlm_roberta",
             "transformer", "model", "backbone", "encoder_model", "base_model", "timm_model"}


def layer_key(name: str) -> str:
    """Group a parameter name into a layer: ``bert.encoder.layer.3.attention.self.query.weight`` →
    ``encoder.layer.3``; ``bert.embeddings.word_embeddings.weight`` → ``embeddings``; ``classifier.bias`` →
    ``classifier``."""
    parts = name.split(".")[:-1] or name.split(".")
    if len(parts) > 1 and parts[0] in _PREFIXES:
        parts = parts[1:]
    for i, p in enumerate(parts):
        if p.isdigit():
            return ".".join(parts[: i + 1])
    return parts[0]


def layer_grad_norms(model: torch.nn.Module) -> dict[str, float]:
    """L2 norm of the gradients grouped by :func:`layer_key`; parameters without a gradient are left out."""
    sq: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros(()))
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        g = p.grad.detach()
        if g.is_sparse:
            g = g.coalesce().values()
        key = layer_key(name)
        sq[key] = sq[key].to(g.device) + g.float().pow(2).sum()
    return {k: float(v.sqrt()) for k, v in sq.items()}


class GradNormLogging(Callback):
    """Recipe key ``grad_norm_logging`` (option ``every``, default 50): the L2 gradient norm of each top-level
    block, measured every ``every`` optimizer steps and written as ``train/grad_norm/<block>`` in the next
    logging row (the mean of the measurements since the previous row; rows come every ``train.logging_steps``).
    Expected effect on training: none. Cost: one norm per parameter on measured steps."""

    name = "grad_norm_logging"

    def __init__(self, every: int = 50):
        if int(every) < 1:
            raise ValueError(f"grad_norm_logging.every must be >= 1, got {every}")
        self.every = int(every)

    def before_optimizer_step(self, step):
        if (step.global_step + 1) % self.every:
            return
        for key, value in layer_grad_norms(step.unwrapped_model).items():
            step.log(f"grad_norm/{key}", value)
