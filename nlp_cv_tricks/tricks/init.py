"""Weight initialisation: Xavier uniform/normal or truncated-normal re-initialisation of new heads or of a
whole non-pretrained model.

Sources: Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural networks",
AISTATS 2010 (Xavier); truncated normal N(0, 0.02) clipped at 2 std is BERT's initialiser (Devlin et al. 2019).
Expected effect: the tip is that Xavier/truncated-normal init speeds convergence of models trained from
scratch; for a pretrained encoder only the new head is re-initialised and the effect is small. Cost: one pass
over the re-initialised parameters at fit start.

Linear/Conv weights get the scheme, biases zero; embeddings get the scheme (their ``padding_idx`` row zero);
normalisation layers get weight 1, bias 0; RNN weight matrices get the scheme, biases zero. Random numbers come
from a CPU generator seeded with ``seed``, so every DDP process and every device draws the same weights.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence, Union

import torch

from ..engine.events import Trick

__all__ = ["SCHEMES", "HEAD_NAMES", "init_tensor_", "reinit_", "head_modules", "Init"]

SCHEMES = ("xavier_uniform", "xavier_normal", "trunc_normal", "normal")
HEAD_NAMES = ("classifier", "qa_outputs", "score", "head", "heads", "fc", "pre_classifier", "out_proj",
              "output_layer")

_NORMS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._NormBase)

logger = logging.getLogger(__name__)


def init_tensor_(t: torch.Tensor, scheme: str, std: float = 0.02, gain: float = 1.0,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Fill ``t`` in place with ``scheme``; numbers are drawn on the CPU (fp32) and copied, so the result is the
    same on every device for the same generator state."""
    if scheme not in SCHEMES:
        raise ValueError(f"init scheme must be one of {SCHEMES}, got {scheme!r}")
    tmp = torch.empty(t.shape, dtype=torch.float32)
    if scheme in ("xavier_uniform", "xavier_normal") and tmp.dim() < 2:
        raise ValueError(f"{scheme} needs a tensor with at least 2 dims, got shape {tuple(t.shape)}")
    if scheme == "xavier_uniform":
        torch.nn.init.xavier_uniform_(tmp, gain=gain, generator=generator)
    elif scheme == "xavier_normal":
        torch.nn.init.xavier_normal_(tmp, gain=gain, generator=generator)
    elif scheme == "trunc_normal":
        torch.nn.init.trunc_normal_(tmp, 0.0, std, -2.0 * std, 2.0 * std, generator=generator)
    else:
        torch.nn.init.normal_(tmp, 0.0, std, generator=generator)
    with torch.no_grad():
        t.copy_(tmp.to(device=t.device, dtype=t.dtype))
    return t


def reinit_(module: torch.nn.Module, scheme: str = "xavier_uniform", std: float = 0.02, gain: float = 1.0,
            generator: Optional[torch.Generator] = None, skip: Sequence[torch.nn.Module] = ()) -> int:
    """Re-initialise every supported layer inside ``module`` (except the modules in ``skip``); returns the number
    of tensors written."""
    n = 0
    skipped = {id(m) for m in skip}
    with torch.no_grad():
        for m in module.modules():
            if id(m) in skipped:
                continue
            if isinstance(m, (torch.nn.Linear, torch.nn.modules.conv._ConvNd, torch.nn.Bilinear)):
                init_tensor_(m.weight, scheme, std, gain, generator)
                n += 1
                if m.bias is not None:
                    m.bias.zero_()
                    n += 1
            elif isinstance(m, torch.nn.Embedding):
                init_tensor_(m.weight, scheme, std, gain, generator)
                if m.padding_idx is not None:
                    m.weight[m.padding_idx].zero_()
                n += 1
            elif isinstance(m, _NORMS) or (type(m).__name__.lower().endswith("norm") and hasattr(m, "weight")):
                if getattr(m, "weight", None) is not None:
                    m.weight.fill_(1.0)
                    n += 1
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
                    n += 1
            elif isinstance(m, torch.nn.RNNBase):
                for name, p in m.named_parameters(recurse=False):
                    if name.startswith("weight"):
                        init_tensor_(p, scheme, std, gain, generator)
                    else:
                        p.zero_()
                    n += 1
    return n


def head_modules(model: torch.nn.Module, names: Sequence[str] = HEAD_NAMES) -> list[tuple[str, torch.nn.Module]]:
    """The task head(s): direct children of the model whose name is one of ``names``."""
    return [(n, m) for n, m in model.named_children() if n in names]


class Init(Trick):
    """Re-initialise the task head (``target: head``), the whole model (``target: all``, for models trained
    from scratch), or the listed dotted module paths, at fit start (never again after a resume).

    Recipe key ``init``: ``scheme`` (xavier_uniform | xavier_normal | trunc_normal | normal), ``target``
    (``head``), ``std`` (0.02, for the normal schemes), ``gain`` (1.0, Xavier), ``seed`` (0).
    See the module docstring for the source, expected effect and cost.
    """

    name = "init"

    def __init__(self, scheme: str = "xavier_uniform", target: Union[str, list] = "head", std: float = 0.02,
                 gain: float = 1.0, seed: int = 0):
        if scheme not in SCHEMES:
            raise ValueError(f"init.scheme must be one of {SCHEMES}, got {scheme!r}")
        if float(std) <= 0:
            raise ValueError(f"init.std must be > 0, got {std}")
        if isinstance(target, str) and target not in ("head", "all"):
            target = [target]
        self.scheme, self.target, self.std, self.gain, self.seed = scheme, target, float(std), float(gain), int(seed)
        self.done = False

    def modules(self, model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
        if self.target == "all":
            return [("", model)]
        if self.target == "head":
            heads = head_modules(model)
            if not heads:
                raise ValueError(f"init: found no head in {type(model).__name__} (children: "
                                 f"{[n for n, _ in model.named_children()]}); list its module path in target")
            return heads
        out = []
        for path in self.target:
            try:
                out.append((path, model.get_submodule(path)))
            except AttributeError:
                raise ValueError(f"init.target: {type(model).__name__} has no module {path!r}") from None
        return out

    def apply(self, model: torch.nn.Module) -> int:
        """Re-initialise ``model``'s target modules now; returns the number of tensors written. With ``target:
        all``, embeddings loaded from pretrained vectors (``config.pretrained_vectors``) are kept."""
        gen = torch.Generator().manual_seed(self.seed)
        skip = []
        if self.target == "all" and getattr(getattr(model, "config", None), "pretrained_vectors", None):
            skip = [m for m in (getattr(model, "embeddings", None), getattr(model, "static_embeddings", None))
                    if isinstance(m, torch.nn.Module)]
            logger.warning("init: target all keeps the %d embedding table(s) loaded from pretrained vectors",
                           len(skip))
        return sum(reinit_(m, self.scheme, self.std, self.gain, gen, skip) for _, m in self.modules(model))

    def on_fit_start(self, trainer):
        if self.done or getattr(trainer, "global_step", 0) > 0:
            self.done = True
            return
        self.apply(trainer.accelerator.unwrap_model(trainer.model))
        self.done = True

    def state_dict(self):
        return {"done": self.done}

    def load_state_dict(self, state):
        self.done = bool(state.get("done", False))
