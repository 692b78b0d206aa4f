"""Adversarial training: FGM, PGD and FreeLB on the embedding output, AWP on the weights, FGSM/PGD on pixels.

All of them follow the same step shape (see :mod:`nlp_cv_tricks.engine.events`): the trainer runs the clean
forward/backward, then ``after_backward`` makes the adversarial pass(es) through ``step.backward`` inside the
same accumulation block, so gradient accumulation, fp16 loss scaling and DDP stay correct. The *last* pass of a
step runs inside ``step.extra_pass(last=True)`` (DDP all-reduces there, once); intermediate PGD passes only ask
``torch.autograd.grad`` for the gradient of the perturbation and never touch parameter gradients.

Embedding tricks (FGM, PGD, FreeLB) perturb the *output* of ``model.get_input_embeddings()`` through a forward
hook, never ``weight.data``: that works for every model with input embeddings (HF encoders, this package's own
models), with FSDP/ZeRO-3 sharding, and nothing needs restoring (the hook is removed at the end of the step, in a
``finally``). Every trick always makes the same number of passes, even when a gradient is zero or non-finite
(fp16 overflow: the perturbation is then zero and the GradScaler skips the step), so DDP ranks never disagree on
the number of collective calls.

Norms are per example by default (``norm="example"``: the L2 norm of one example's gradient over all its tokens
and hidden units, as in Miyato et al.), which makes the result independent of how a batch is split into
micro-batches. ``norm="batch"`` gives the norm over the whole micro-batch (the popular FGM snippet that
normalises the gradient of the embedding matrix), ``norm="token"`` one norm per token vector.
"""

from ._shared import sync_skipped_step
from .awp import AWP, awp_perturbation
from .embedding import (FGM, PGD, EmbeddingOutputHook, FreeLB, _EmbeddingAdversarial, fgm_perturbation,  # noqa: F401
                        freelb_init, input_embeddings, pgd_step, project_l2)
from .pixel import PixelFGSM, PixelPGD, _PixelAdversarial, fgsm_perturbation, project_linf  # noqa: F401

__all__ = [
    "fgm_perturbation", "project_l2", "pgd_step", "freelb_init", "fgsm_perturbation", "project_linf",
    "awp_perturbation", "input_embeddings", "EmbeddingOutputHook", "sync_skipped_step", "FGM", "PGD", "FreeLB", "AWP",
    "PixelFGSM", "PixelPGD",
]
