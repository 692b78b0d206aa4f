"""Losses shared by tasks and tricks."""

from __future__ import annotations

import torch


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum(targets * log_softmax(logits))`` (timm's ``SoftTargetCrossEntropy``): the
    loss of class-distribution targets such as mixup/cutmix's."""
    return torch.sum(-targets.float() * torch.log_softmax(logits.float(), dim=-1), dim=-1).mean()
