"""What the text baselines share: the config fields, masked pooling, feature norms, the RNN runner, and
:class:`_BaselineLayers`, the behaviour every baseline network has whichever base class carries it (init schemes,
``inputs_embeds``, the classification loss, Kim 2014's max-norm, the optimizer hint).

Imports only ``torch`` and ``transformers``' configuration and output classes, not ``transformers.modeling_utils``
(about 2 s of imports on a CPU machine): the package trains a baseline as a plain ``nn.Module``
(:mod:`.modules`), and ``modeling_base`` puts the same layers on a ``PreTrainedModel`` for loading. Copied next
to every saved baseline with the family's files.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn
from torch.nn import functional as F
from transformers.configuration_utils import PretrainedConfig
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = ["TextBaselineConfig"]


_NORMS = ("none", "batch", "layer")
_INITS = ("xavier_normal", "xavier_uniform", "kaiming", "normal")


# =============================================================================================================
# configs
# =============================================================================================================
class TextBaselineConfig(PretrainedConfig):
    """Fields shared by all baselines.

    Args:
        vocab_size: rows of the token embedding (the tokenizer's ``len()``).
        embedding_dim: token vector size (300 in Kim 2014 and in the THUCNews reference code).
        pad_token_id: id of ``[PAD]`` (its embedding row is zero and not trained).
        dropout: dropout before the classifier (Kim 2014: 0.5).
        embedding_dropout: dropout on the embedding output (a regulariser from the tricks issue; 0 = off).
        norm: ``"none"``, ``"batch"`` or ``"layer"`` normalisation of hidden features.
        freeze_embeddings: keep the embedding fixed (e.g. "CNN-static" with pretrained vectors).
        max_seq_length: the tokenizer's truncation length (informational; DPCNN derives its depth from it).
        init: initialisation of non-embedding weights (biases are zero).
        embedding_init_std: std of the random embedding init (missing pretrained rows use the vectors' std).
        embedding_init_uniform: when set to ``a``, random embedding rows are ``U(-a, a)`` instead of
            ``N(0, embedding_init_std)`` (Kim 2014's code: ``a = 0.25`` for CNN-rand).
        pretrained_vectors: filled by :func:`build_baseline` with the vector report (provenance, coverage).
        max_norm: L2 max-norm constraint on the weight vectors of the final layer (one row of the classifier per
            class; Kim 2014: ``s = 3``, i.e. ``max_norm = 1.5`` here, see below): after each optimizer step a row
            whose norm exceeds ``max_norm`` is
            rescaled to norm ``max_norm`` (Hinton et al. 2012; Srivastava et al. 2014 pair it with dropout).
            ``None`` = off. Applied by :meth:`apply_weight_constraints`, which the trainer calls after every
            optimizer step; in a plain PyTorch loop call it after ``optimizer.step()`` or attach it once with
            :meth:`attach_weight_constraints`. Cost: one norm per class row per step (negligible). Kim's code
            (like Hinton et al.'s) drops units without rescaling and multiplies the weights by ``1 - dropout`` at
            test time; torch's dropout instead rescales the kept units by ``1 / (1 - dropout)`` in training, so
            the same constraint on our weights is ``s * (1 - dropout)``: Kim's ``s = 3`` with dropout 0.5 is
            ``max_norm = 1.5`` (what the Kim recipes set).
    """

    model_type = "nct-text-baseline"

    def __init__(
        self,
        vocab_size: int = 1000,
        embedding_dim: int = 300,
        pad_token_id: int = 0,
        dropout: float = 0.5,
        embedding_dropout: float = 0.0,
        norm: str = "none",
        freeze_embeddings: bool = False,
        max_seq_length: Optional[int] = None,
        init: str = "xavier_normal",
        embedding_init_std: float = 1.0,
        pretrained_vectors: Optional[dict] = None,
        max_norm: Optional[float] = None,
        embedding_init_uniform: Optional[float] = None,
        **kwargs,
    ):
        if embedding_init_uniform is not None and not float(embedding_init_uniform) > 0:
            raise ValueError(f"{type(self).__name__}: embedding_init_uniform must be > 0 or None, "
                             f"got {embedding_init_uniform}")
        if max_norm is not None and not float(max_norm) > 0:
            raise ValueError(f"{type(self).__name__}: max_norm must be > 0 or None, got {max_norm}")
        if norm not in _NORMS:
            raise ValueError(f"{type(self).__name__}: norm must be one of {_NORMS}, got {norm!r}")
        if init not in _INITS:
            raise ValueError(f"{type(self).__name__}: init must be one of {_INITS}, got {init!r}")
        for name, p in (("dropout", dropout), ("embedding_dropout", embedding_dropout)):
            if not 0.0 <= float(p) < 1.0:
                raise ValueError(f"{type(self).__name__}: {name} must be in [0, 1), got {p}")
        if vocab_size < 2 or embedding_dim < 1:
            raise ValueError(f"{type(self).__name__}: vocab_size >= 2 and embedding_dim >= 1 expected")
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.dropout = float(dropout)
        self.embedding_dropout = float(embedding_dropout)
        self.norm = norm
        self.freeze_embeddings = bool(freeze_embeddings)
        self.max_seq_length = max_seq_length
        self.init = init
        self.embedding_init_std = float(embedding_init_std)
        self.pretrained_vectors = pretrained_vectors
        self.max_norm = float(max_norm) if max_norm is not None else None
        self.embedding_init_uniform = float(embedding_init_uniform) if embedding_init_uniform is not None else None
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(pad_token_id=pad_token_id, **kwargs)




def sequence_classification_loss(labels: torch.Tensor, logits: torch.Tensor, config) -> torch.Tensor:
    """The loss transformers' sequence classifiers compute (``ForSequenceClassificationLoss``), without importing
    its loss module (which loads the object-detection losses and scipy): ``config.problem_type`` is inferred as
    they infer it and kept; mean-squared error for regression, cross-entropy (ignore index -100) for single-label,
    BCE with logits for multi-label classification."""
    n = config.num_labels
    if config.problem_type is None:
        if n == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    labels = labels.to(logits.device)
    if config.problem_type == "regression":
        return F.mse_loss(logits.squeeze(), labels.squeeze()) if n == 1 else F.mse_loss(logits, labels)
    if config.problem_type == "single_label_classification":
        return F.cross_entropy(logits.view(-1, n), labels.view(-1), ignore_index=-100)
    if config.problem_type == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(logits, labels)
    raise RuntimeError(f"Invalid problem type: {config.problem_type}")


def _masked_max(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Max over ``dim`` of ``x`` where ``mask`` (broadcastable bool) is True."""
    return x.masked_fill(~mask, float("-inf")).amax(dim=dim)


class _FeatureNorm(nn.Module):
    """BatchNorm or LayerNorm over the channel axis of ``(B, C)``, ``(B, C, L)`` (``channels_last=False``) or
    ``(B, L, C)`` (``channels_last=True``) features.

    BatchNorm on per-position features (TextCNN/DPCNN feature maps, TextRCNN states) takes its batch statistics
    over padded positions too; LayerNorm normalises each position on its own and is unaffected by padding (the
    tip: LayerNorm for sequence features, BatchNorm otherwise).

    A training batch with one value per channel (a last batch of one text, pooled features) has no batch
    statistics: BatchNorm normalises it with its running statistics and leaves them unchanged, instead of
    torch's error ending the run."""

    def __init__(self, kind: str, channels: int, channels_last: bool = False):
        super().__init__()
        self.kind = kind
        self.channels_last = channels_last
        if kind == "batch":
            self.norm = nn.BatchNorm1d(channels)
        elif kind == "layer":
            self.norm = nn.LayerNorm(channels)
        else:
            self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "batch" and self.training and x.numel() == self.norm.num_features:
            return self._running_stats(x)
        if self.kind == "none" or x.dim() == 2:
            return self.norm(x)
        if self.kind == "batch":
            return self.norm(x.transpose(1, 2)).transpose(1, 2) if self.channels_last else self.norm(x)
        return self.norm(x) if self.channels_last else self.norm(x.transpose(1, 2)).transpose(1, 2)

    def _running_stats(self, x: torch.Tensor) -> torch.Tensor:
        """BatchNorm of ``x`` with the running statistics (not updated), as in evaluation."""
        bn, turn = self.norm, self.channels_last and x.dim() == 3
        y = nn.functional.batch_norm(x.transpose(1, 2) if turn else x, bn.running_mean, bn.running_var, bn.weight,
                                     bn.bias, training=False, eps=bn.eps)
        return y.transpose(1, 2) if turn else y


class _BaselineLayers:
    """Weight init, embedding access, the classification loss and the padding mask, shared by all baselines.

    A mixin without state of its own: each family's ``*Layers`` class adds ``_build(config)`` (its modules) and
    ``features()``; :class:`~.modeling_base._BaselinePreTrainedModel` (a ``PreTrainedModel``) and
    :class:`~nlp_cv_tricks.models.text_baselines.modules.BaselineModule` (a plain ``nn.Module``) supply the
    ``nn.Module`` and ``config``."""

    # ---- init ------------------------------------------------------------------------------------------------
    def _init_weights(self, module: nn.Module) -> None:  # noqa: C901  (complex today; the list only shrinks)
        cfg = self.config
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            if cfg.init == "xavier_normal":
                nn.init.xavier_normal_(module.weight)
            elif cfg.init == "xavier_uniform":
                nn.init.xavier_uniform_(module.weight)
            elif cfg.init == "kaiming":
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            else:
                nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.LSTM, nn.GRU)):
            for name, p in module.named_parameters():
                if "weight" in name:
                    (nn.init.xavier_normal_ if cfg.init == "xavier_normal" else nn.init.xavier_uniform_)(p)
                elif "bias" in name:
                    nn.init.zeros_(p)
        elif isinstance(module, nn.EmbeddingBag):
            # official fastText: input matrix uniform(-1/dim, 1/dim); the [PAD] row is zero (FastText never feeds
            # it to the bag: padding is dropped before the lookup)
            nn.init.uniform_(module.weight, -1.0 / cfg.embedding_dim, 1.0 / cfg.embedding_dim)
            pad = module.padding_idx if module.padding_idx is not None else cfg.pad_token_id
            if pad is not None and 0 <= pad < module.weight.shape[0]:
                with torch.no_grad():
                    module.weight[pad].zero_()
        elif isinstance(module, nn.Embedding):
            a = getattr(cfg, "embedding_init_uniform", None)
            if a:
                nn.init.uniform_(module.weight, -a, a)
            else:
                nn.init.normal_(module.weight, std=cfg.embedding_init_std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, (nn.BatchNorm1d, nn.LayerNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm1d):
                module.reset_running_stats()
        elif isinstance(module, _AttentionPool):
            nn.init.normal_(module.w, std=0.05)

    # ---- embeddings --------------------------------------------------------------------------------------------
    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.embeddings = value
        self._apply_freeze()

    def _apply_freeze(self) -> None:
        emb = self.get_input_embeddings()
        emb.weight.requires_grad_(not self.config.freeze_embeddings)
        static = getattr(self, "static_embeddings", None)
        if static is not None:
            static.weight.requires_grad_(False)

    def load_embedding_matrix(self, matrix: torch.Tensor) -> None:
        """Copy ``matrix`` (``vocab_size x embedding_dim``) into the first rows of the input embedding (and into
        the static channel of a multichannel TextCNN)."""
        emb = self.get_input_embeddings()
        v, d = matrix.shape
        if d != emb.weight.shape[1] or v > emb.weight.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: embedding matrix {tuple(matrix.shape)} does not fit the embedding "
                f"{tuple(emb.weight.shape)} (vocab_size x embedding_dim)"
            )
        with torch.no_grad():
            emb.weight[:v].copy_(matrix.to(emb.weight.dtype))
            static = getattr(self, "static_embeddings", None)
            if static is not None:
                static.weight[:v].copy_(matrix.to(static.weight.dtype))

    # ---- helpers -------------------------------------------------------------------------------------------------
    def _mask(self, input_ids: Optional[torch.Tensor], attention_mask: Optional[torch.Tensor], ref: torch.Tensor):
        """Bool ``(B, L)`` mask of real tokens; rows without any real token get position 0 (so pooling is defined)."""
        if attention_mask is not None:
            mask = attention_mask.bool()
        elif input_ids is not None:
            mask = input_ids != self.config.pad_token_id
        else:
            mask = torch.ones(ref.shape[:2], dtype=torch.bool, device=ref.device)
        if mask.shape != ref.shape[:2]:
            raise ValueError(f"attention_mask shape {tuple(mask.shape)} does not match the input {tuple(ref.shape[:2])}")
        empty = ~mask.any(dim=1)
        if empty.any():
            mask = mask.clone()
            mask[empty, 0] = True
        return mask

    def _embed(self, input_ids, inputs_embeds) -> torch.Tensor:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of input_ids or inputs_embeds")
        return self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds

    def _loss(self, logits: torch.Tensor, labels: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        if labels is None:
            return None
        return sequence_classification_loss(labels, logits.float(), self.config)

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs: Any,
    ):
        # shared by every baseline: each defines features(), dropout and classifier; token_type_ids is accepted
        # and ignored so a BERT-style batch can be passed as it is
        h = self.features(input_ids, attention_mask, inputs_embeds)
        logits = self.classifier(self.dropout(h))
        return self._output(h, logits, labels, output_hidden_states, return_dict)

    def _output(self, features, logits, labels, output_hidden_states, return_dict):
        loss = self._loss(logits, labels)
        hidden = (features,) if output_hidden_states else None
        if return_dict is False:
            out = (logits,) + ((hidden,) if hidden is not None else ())
            return ((loss,) + out) if loss is not None else out
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden)

    # ---- constraints -------------------------------------------------------------------------------------------
    def apply_weight_constraints(self) -> bool:
        """Enforce ``config.max_norm`` (Kim 2014's L2 max-norm ``s``) on the classifier's weight vectors: every
        class row ``w`` with ``||w||_2 > s`` is rescaled to ``s * w / ||w||_2`` (``torch.renorm``); rows within
        the ball are left unchanged. Call it after each optimizer step (the trainer does). Idempotent.

        Returns:
            True when a constraint is configured (and was applied), False when ``max_norm`` is None.
        """
        s = getattr(self.config, "max_norm", None)
        if not s:
            return False
        with torch.no_grad():
            self.classifier.weight.renorm_(2, 0, s)
        return True

    def attach_weight_constraints(self, optimizer: torch.optim.Optimizer):
        """Apply :meth:`apply_weight_constraints` after every ``optimizer.step()`` (a PyTorch optimizer step
        post-hook), for plain training loops. Returns the hook handle (``.remove()`` detaches it)."""
        return optimizer.register_step_post_hook(lambda opt, args, kwargs: self.apply_weight_constraints())

    def num_parameters_trainable(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def preferred_optimizer(self) -> str:
        """Name of the optimizer the tip recommends (read by the trainer when ``train.optimizer: auto``):
        ``"adagrad"`` for FastText with sparse, trainable embeddings (Adam cannot update sparse gradients),
        ``"adam"`` otherwise (``nlp_cv_tricks.models.text_baselines.preferred_optimizer`` adds a learning rate)."""
        sparse = bool(getattr(self.config, "sparse", False)) and any(
            p.requires_grad for p in self.get_input_embeddings().parameters())  # frozen: no sparse gradients
        return "adagrad" if sparse else "adam"


# =============================================================================================================


class _AttentionPool(nn.Module):
    """Zhou et al. (2016): ``alpha = softmax(w^T tanh(H))`` over real positions, output ``tanh(sum alpha H)``."""

    def __init__(self, dim: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(dim))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = (torch.tanh(h) @ self.w).masked_fill(~mask, float("-inf"))  # (B, L)
        alpha = torch.softmax(scores, dim=1)
        return torch.tanh((alpha.unsqueeze(-1) * h).sum(dim=1))


def _run_rnn(rnn: nn.RNNBase, x: torch.Tensor, mask: torch.Tensor):
    """Packed (padding-free) run of ``rnn`` over ``x`` (B, L, E); returns padded outputs (B, L, H*dirs) and h_n."""
    lengths = mask.sum(dim=1).clamp(min=1).cpu()
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h = rnn(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    if isinstance(h, tuple):  # LSTM: (h_n, c_n)
        h = h[0]
    return out, h
