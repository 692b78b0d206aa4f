"""Span-extraction heads for machine reading comprehension on top of any Hugging Face encoder.

Three interchangeable heads, each a :class:`~transformers.PreTrainedModel` with its own config (the encoder
config is nested under ``config.encoder``), registered with ``AutoConfig`` / ``AutoModelForQuestionAnswering``
by :func:`register_auto_classes`. This file imports only ``torch`` and ``transformers`` and is saved next to
every model (``auto_map``), so ``AutoModelForQuestionAnswering.from_pretrained(dir, trust_remote_code=True)``
loads one without the package:

``linear`` — :class:`LinearSpanQAModel`
    The BERT baseline (Devlin et al., 2019, §4.2): one linear layer gives start/end logits per token.
    Parameter overhead: ``2 * (d + 1)`` (770 on MiniLM); cost: nothing measurable.
``biattention`` — :class:`BiAttentionQAModel`
    BiDAF's attention flow (Seo et al., 2017, "Bidirectional Attention Flow for Machine Comprehension") applied to
    the encoder's token outputs: similarity ``S_tj = w·[h_t; u_j; h_t∘u_j]`` between every token ``t`` and every
    question token ``j``; context-to-query attention ``Ũ = softmax_j(S) U``; query-to-context attention
    ``h̃ = softmax_t(max_j S) H`` tiled; ``G = [H; Ũ; H∘Ũ; H∘h̃]``; a bidirectional LSTM modelling layer ``M``;
    start logits from ``[G; M]``, end logits from ``[G; LSTM(M)]``.
    Parameter overhead on MiniLM-L6 (22.6 M encoder parameters): 3.55 M at the default head width h = 384,
    0.45 M at h = 128. Cost: two BiLSTMs over the sequence (sequential in its length: the dominant extra time,
    on CPU and GPU alike) and one L x L similarity matrix.
``coattention`` — :class:`CoAttentionQAModel`
    DCN's co-attention encoder (Xiong et al., 2017, "Dynamic Coattention Networks for Question Answering"):
    non-linear question projection ``Q' = tanh(W U + b)`` plus a learned sentinel; affinity ``L = H Q'ᵀ``;
    ``A^Q = softmax`` over the document, ``A^D = softmax`` over the question; question summaries
    ``C^Q = A^Qᵀ H``; co-attention context ``C^D = A^D [Q'; C^Q]``; fusion BiLSTM over ``[H; C^D]``; start/end
    pointers are linear layers on the fused states. DCN's iterative dynamic pointing decoder (highway maxout
    networks) is replaced by these linear pointers, as in BERT-era DCN variants: with a pre-trained encoder the
    start/end decision is already easy, and the decoder's iterations would cost more than the rest of the head;
    the end pointer sees the start distribution's summary (a one-step version of DCN's decoder state).
    Parameter overhead on MiniLM-L6: 2.22 M at h = 384, 0.30 M at h = 128. Cost: one BiLSTM and two
    (L+1) x (L+1) attention matrices.

The tuning tip these heads let one check ("adding bi-attention or co-attention after the BERT layers works
wonders for MRC") is measured by ``scripts/bench_mrc.py``; see the MRC section of ``benchmarks/RESULTS.md`` for what it found.

Question and context tokens are separated, in order of preference, by an explicit ``context_mask`` argument
(1 on context tokens, what :func:`nlp_cv_tricks.data.mrc.prepare_train_features` returns with
``return_context_mask=True``), by ``token_type_ids`` (1 = second segment, BERT-style encoders), or by the
``[SEP]`` tokens (``config.sep_token_id``) for encoders without token types (RoBERTa): the context is what
follows the first run of separators. By default (``mask_non_context=True``) the start/end logits of every
token that is neither context nor the first token (the ``[CLS]`` null answer of SQuAD v2) are set to ``-1e4``,
so question tokens and padding can never be chosen, also by a plain ``argmax``. LSTMs run on packed sequences,
so padding never changes the outputs of real tokens (same logits whatever the batch's padding).

All heads return :class:`~transformers.modeling_outputs.QuestionAnsweringModelOutput` with the BERT loss
(mean of start and end cross-entropy; out-of-range positions ignored) when ``start_positions`` and
``end_positions`` are given, and expose ``get_input_embeddings()`` so embedding-level adversarial training
(FGM / PGD) works unchanged.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import AutoConfig, AutoModel, AutoModelForQuestionAnswering, PretrainedConfig, PreTrainedModel
from transformers.configuration_utils import SubConfigSpec
from transformers.modeling_outputs import QuestionAnsweringModelOutput

__all__ = [
    "MRCHeadConfig",
    "LinearSpanQAConfig",
    "BiAttentionQAConfig",
    "CoAttentionQAConfig",
    "MRCHeadPreTrainedModel",
    "LinearSpanQAModel",
    "BiAttentionQAModel",
    "CoAttentionQAModel",
    "HEADS",
    "build_qa_model",
    "register_auto_classes",
    "segment_masks",
    "head_parameter_count",
]

_NEG = -1e4  # finite (fp16-safe) "minus infinity" for masked logits


class MRCHeadConfig(PretrainedConfig):
    """Config shared by the MRC heads.

    Args:
        encoder: the encoder's config (a ``PretrainedConfig`` or its dict; any ``AutoModel`` architecture).
        head_hidden_size: width of the attention head (default: the encoder's hidden size); the encoder output
            is projected to it when they differ.
        head_dropout: dropout on the head's inputs and attention outputs.
        num_modeling_layers: layers of the BiLSTM modelling / fusion layer (BiDAF uses 2; default 1).
        mask_non_context: set logits of non-context tokens (except the first, null-answer token) to -1e4.
        sep_token_id: separator id, needed only for encoders without ``token_type_ids`` when no
            ``context_mask`` is passed.
    """

    model_type = "nct-mrc"
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder: Union[PretrainedConfig, dict, None] = None
    head_hidden_size: Optional[int] = None
    head_dropout: float = 0.1
    num_modeling_layers: int = 1
    mask_non_context: bool = True
    sep_token_id: Optional[int] = None
    initializer_range: float = 0.02

    @property
    def encoder_hidden_size(self) -> int:
        hidden = getattr(self.encoder, "hidden_size", None) or getattr(self.encoder, "d_model", None)
        if hidden is None:
            raise ValueError(f"{type(self).__name__}: the encoder config ({type(self.encoder).__name__}) has no "
                             f"hidden_size/d_model")
        return int(hidden)

    @property
    def hidden_size(self) -> int:  # what DeepSpeed "auto" / accelerate helpers look for
        return self.encoder_hidden_size

    @property
    def resolved_head_hidden_size(self) -> int:
        return int(self.head_hidden_size or self.encoder_hidden_size)


class LinearSpanQAConfig(MRCHeadConfig):
    model_type = "nct-linear-qa"


class BiAttentionQAConfig(MRCHeadConfig):
    model_type = "nct-biattention-qa"


class CoAttentionQAConfig(MRCHeadConfig):
    model_type = "nct-coattention-qa"


# ---------------------------------------------------------------------------------------------------------
# masks and small helpers
# ---------------------------------------------------------------------------------------------------------
def segment_masks(input_ids: Optional[torch.Tensor], attention_mask: torch.Tensor,
                  token_type_ids: Optional[torch.Tensor] = None, context_mask: Optional[torch.Tensor] = None,
                  sep_token_id: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean ``(context, question)`` masks of shape (batch, length).

    Context comes from ``context_mask`` if given, else ``token_type_ids == 1`` (separator tokens excluded when
    ``sep_token_id`` is known), else the tokens after the first run of ``sep_token_id`` (RoBERTa-style
    ``<s> q </s></s> c </s>``). Question = every other attended token (``[CLS]``/``[SEP]`` included, so it is
    never empty).
    """
    attn = attention_mask.bool()
    if context_mask is not None:
        ctx = context_mask.bool() & attn
    elif token_type_ids is not None and bool((token_type_ids[attn] != 0).any()):
        ctx = (token_type_ids == 1) & attn
        if input_ids is not None and sep_token_id is not None:
            ctx &= input_ids != sep_token_id
    else:
        if input_ids is None or sep_token_id is None:
            raise ValueError(
                "cannot tell question from context: pass context_mask (prepare_*_features(return_context_mask="
                "True)), token_type_ids with type 1 on the context, or set config.sep_token_id with input_ids")
        is_sep = (input_ids == sep_token_id) & attn
        seen_sep = torch.cumsum(is_sep.int(), dim=1) > 0
        # start of context: first non-separator token after the first separator
        after_first_run = seen_sep & ~is_sep
        started = torch.cumsum(after_first_run.int(), dim=1) > 0
        ctx = started & ~is_sep & attn
    return ctx, attn & ~ctx


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=dim)


class _PackedBiLSTM(nn.Module):
    """Bidirectional LSTM on right-padded sequences, run packed so padding never leaks into real tokens."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        if hidden_size % 2:
            raise ValueError(f"head hidden size must be even for a BiLSTM, got {hidden_size}")
        self.lstm = nn.LSTM(input_size, hidden_size // 2, num_layers=num_layers, batch_first=True,
                            bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        total = x.size(1)
        dtype = x.dtype
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=total)
        return out.to(dtype)


# ---------------------------------------------------------------------------------------------------------
# heads (plain modules: hidden states + masks -> start/end logits)
# ---------------------------------------------------------------------------------------------------------
class LinearSpanHead(nn.Module):
    def __init__(self, config: MRCHeadConfig):
        super().__init__()
        self.qa_outputs = nn.Linear(config.encoder_hidden_size, 2)

    def forward(self, hidden, ctx_mask, q_mask, attn, lengths):
        start, end = self.qa_outputs(hidden).split(1, dim=-1)
        return start.squeeze(-1), end.squeeze(-1)


class BiAttentionHead(nn.Module):
    """BiDAF attention flow + modelling layer + span pointers (see module docstring)."""

    def __init__(self, config: MRCHeadConfig):
        super().__init__()
        d, h = config.encoder_hidden_size, config.resolved_head_hidden_size
        self.proj = nn.Linear(d, h) if h != d else nn.Identity()
        self.dropout = nn.Dropout(config.head_dropout)
        # trilinear similarity w·[c; q; c∘q], split in its three parts
        self.w_c = nn.Linear(h, 1, bias=False)
        self.w_q = nn.Linear(h, 1, bias=False)
        self.w_cq = nn.Parameter(torch.zeros(h))
        self.modeling = _PackedBiLSTM(4 * h, h, config.num_modeling_layers, config.head_dropout)
        self.end_lstm = _PackedBiLSTM(h, h, 1, 0.0)
        self.start_out = nn.Linear(5 * h, 1)
        self.end_out = nn.Linear(5 * h, 1)

    def forward(self, hidden, ctx_mask, q_mask, attn, lengths):
        H = self.dropout(self.proj(hidden))  # (B, L, h): every token plays "context"; q_mask picks the query
        sim = self.w_c(H) + self.w_q(H).transpose(1, 2) + torch.matmul(H * self.w_cq, H.transpose(1, 2))  # (B,L,L)
        c2q = _masked_softmax(sim, q_mask[:, None, :], dim=-1)  # over question tokens
        U_tilde = torch.matmul(c2q, H)  # (B, L, h)
        s_max = sim.masked_fill(~q_mask[:, None, :], torch.finfo(sim.dtype).min).max(dim=-1).values  # (B, L)
        q2c = _masked_softmax(s_max, ctx_mask, dim=-1)  # over context tokens
        h_tilde = torch.matmul(q2c[:, None, :], H)  # (B, 1, h)
        G = torch.cat([H, U_tilde, H * U_tilde, H * h_tilde], dim=-1)
        G = G * attn[..., None].to(G.dtype)
        M = self.modeling(self.dropout(G), lengths)
        M2 = self.end_lstm(self.dropout(M), lengths)
        start = self.start_out(torch.cat([G, M], dim=-1)).squeeze(-1)
        end = self.end_out(torch.cat([G, M2], dim=-1)).squeeze(-1)
        return start, end


class CoAttentionHead(nn.Module):
    """DCN co-attention encoder + fusion BiLSTM + linear span pointers (see module docstring)."""

    def __init__(self, config: MRCHeadConfig):
        super().__init__()
        d, h = config.encoder_hidden_size, config.resolved_head_hidden_size
        self.proj = nn.Linear(d, h) if h != d else nn.Identity()
        self.dropout = nn.Dropout(config.head_dropout)
        self.q_proj = nn.Linear(h, h)
        self.q_sentinel = nn.Parameter(torch.zeros(h))
        self.d_sentinel = nn.Parameter(torch.zeros(h))
        self.fusion = _PackedBiLSTM(3 * h, h, config.num_modeling_layers, config.head_dropout)
        self.start_out = nn.Linear(h, 1)
        self.end_out = nn.Linear(2 * h, 1)

    def forward(self, hidden, ctx_mask, q_mask, attn, lengths):
        B = hidden.size(0)
        D = self.dropout(self.proj(hidden))  # (B, L, h)
        Q = torch.tanh(self.q_proj(D))  # (B, L, h) non-linear question projection (used where q_mask)
        Qs = torch.cat([Q, self.q_sentinel.expand(B, 1, -1)], dim=1)  # (B, L+1, h)
        Ds = torch.cat([D, self.d_sentinel.expand(B, 1, -1)], dim=1)  # (B, L+1, h)
        one = torch.ones(B, 1, dtype=torch.bool, device=D.device)
        qm = torch.cat([q_mask, one], dim=1)  # (B, L+1)
        dm = torch.cat([ctx_mask, one], dim=1)
        affinity = torch.matmul(Ds, Qs.transpose(1, 2))  # (B, L+1, L+1): doc rows x question columns
        A_q = _masked_softmax(affinity, dm[:, :, None], dim=1)  # attention over the document, per question word
        A_d = _masked_softmax(affinity, qm[:, None, :], dim=2)  # attention over the question, per document word
        C_q = torch.matmul(A_q.transpose(1, 2), Ds)  # (B, L+1, h) document summary per question word
        C_d = torch.matmul(A_d, torch.cat([Qs, C_q], dim=-1))[:, :-1]  # (B, L, 2h) co-attention context
        fused_in = torch.cat([D, C_d], dim=-1) * attn[..., None].to(D.dtype)
        U = self.fusion(self.dropout(fused_in), lengths)  # (B, L, h)
        start = self.start_out(self.dropout(U)).squeeze(-1)
        # the end pointer sees the start distribution's summary (a one-step version of DCN's decoder state)
        p_start = _masked_softmax(start.detach(), ctx_mask | _first_token(ctx_mask), dim=-1)
        u_start = torch.matmul(p_start[:, None, :].to(U.dtype), U).expand_as(U)
        end = self.end_out(self.dropout(torch.cat([U, U * u_start], dim=-1))).squeeze(-1)
        return start, end


def _first_token(mask: torch.Tensor) -> torch.Tensor:
    first = torch.zeros_like(mask)
    first[:, 0] = True
    return first


# ---------------------------------------------------------------------------------------------------------
# PreTrainedModel wrappers
# ---------------------------------------------------------------------------------------------------------
def _build_encoder(encoder_config: PretrainedConfig) -> PreTrainedModel:
    try:  # BERT-family: no pooler, so no unused parameters under DDP
        return AutoModel.from_config(encoder_config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(encoder_config)


class MRCHeadPreTrainedModel(PreTrainedModel):
    """Encoder + span head. Subclasses set ``config_class`` and ``head_class``."""

    config_class = MRCHeadConfig
    head_class: type = LinearSpanHead
    base_model_prefix = "encoder"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    def __init__(self, config: MRCHeadConfig):
        super().__init__(config)
        self.encoder = _build_encoder(config.encoder)
        self.qa_head = self.head_class(config)
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, BiAttentionHead):
            nn.init.zeros_(module.w_cq)
        elif isinstance(module, CoAttentionHead):
            nn.init.normal_(module.q_sentinel, std=self.config.initializer_range)
            nn.init.normal_(module.d_sentinel, std=self.config.initializer_range)

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.encoder.set_input_embeddings(value)

    def span_logits(self, hidden: torch.Tensor, attention_mask: torch.Tensor, input_ids: Optional[torch.Tensor] = None,
                    token_type_ids: Optional[torch.Tensor] = None, context_mask: Optional[torch.Tensor] = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The head alone: start/end logits from the encoder's token states (B, L, d). Useful to train or probe
        heads on cached encoder outputs (``scripts/bench_mrc.py --mode frozen``)."""
        ctx_mask, q_mask = segment_masks(input_ids, attention_mask, token_type_ids, context_mask,
                                         self.config.sep_token_id)
        attn = attention_mask.bool()
        lengths = attention_mask.sum(dim=1)
        start_logits, end_logits = self.qa_head(hidden, ctx_mask, q_mask, attn, lengths)
        if self.config.mask_non_context:
            allowed = ctx_mask | _first_token(ctx_mask)
            start_logits = start_logits.masked_fill(~allowed, _NEG)
            end_logits = end_logits.masked_fill(~allowed, _NEG)
        return start_logits.contiguous(), end_logits.contiguous()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        start_positions: Optional[torch.Tensor] = None,
        end_positions: Optional[torch.Tensor] = None,
        context_mask: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> Union[QuestionAnsweringModelOutput, tuple]:
        if input_ids is None and inputs_embeds is None:
            raise ValueError(f"{type(self).__name__}.forward needs input_ids or inputs_embeds")
        ref = input_ids if input_ids is not None else inputs_embeds[..., 0]
        if attention_mask is None:
            attention_mask = torch.ones(ref.shape, dtype=torch.long, device=ref.device)
        enc_kwargs = dict(attention_mask=attention_mask, return_dict=True)
        if token_type_ids is not None:
            enc_kwargs["token_type_ids"] = token_type_ids
        if position_ids is not None:
            enc_kwargs["position_ids"] = position_ids
        if output_attentions is not None:
            enc_kwargs["output_attentions"] = output_attentions
        if output_hidden_states is not None:
            enc_kwargs["output_hidden_states"] = output_hidden_states
        outputs = self.encoder(input_ids=input_ids, inputs_embeds=inputs_embeds, **enc_kwargs)
        start_logits, end_logits = self.span_logits(outputs.last_hidden_state, attention_mask, input_ids,
                                                    token_type_ids, context_mask)

        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        if return_dict is False:
            out = (start_logits, end_logits)
            return ((loss,) + out) if loss is not None else out
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                            hidden_states=outputs.hidden_states, attentions=outputs.attentions)


def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor,
              end_positions: torch.Tensor) -> torch.Tensor:
    """BERT's QA loss: mean of start and end cross-entropy; positions outside the sequence are ignored."""
    if start_positions.dim() > 1:
        start_positions = start_positions.squeeze(-1)
    if end_positions.dim() > 1:
        end_positions = end_positions.squeeze(-1)
    ignored = start_logits.size(1)
    start_positions = start_positions.clamp(0, ignored)
    end_positions = end_positions.clamp(0, ignored)
    fct = nn.CrossEntropyLoss(ignore_index=ignored)
    return (fct(start_logits.float(), start_positions) + fct(end_logits.float(), end_positions)) / 2


class LinearSpanQAModel(MRCHeadPreTrainedModel):
    """Encoder + linear start/end layer (the BERT SQuAD baseline)."""

    config_class = LinearSpanQAConfig
    head_class = LinearSpanHead


class BiAttentionQAModel(MRCHeadPreTrainedModel):
    """Encoder + BiDAF bi-attention head (Seo et al., 2017)."""

    config_class = BiAttentionQAConfig
    head_class = BiAttentionHead


class CoAttentionQAModel(MRCHeadPreTrainedModel):
    """Encoder + DCN co-attention head (Xiong et al., 2017)."""

    config_class = CoAttentionQAConfig
    head_class = CoAttentionHead


HEADS: dict[str, tuple[type[MRCHeadConfig], type[MRCHeadPreTrainedModel]]] = {
    "linear": (LinearSpanQAConfig, LinearSpanQAModel),
    "biattention": (BiAttentionQAConfig, BiAttentionQAModel),
    "coattention": (CoAttentionQAConfig, CoAttentionQAModel),
}


def register_auto_classes() -> None:
    """Register the three configs with ``AutoConfig`` and models with ``AutoModelForQuestionAnswering``
    (idempotent). Call it once at import time of the package (``nlp_cv_tricks/__init__.py``)."""
    for config_cls, model_cls in HEADS.values():
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        AutoModelForQuestionAnswering.register(config_cls, model_cls, exist_ok=True)


def build_qa_model(encoder: Union[str, PretrainedConfig], head: str = "linear", pretrained: bool = True,
                   sep_token_id: Optional[int] = None, **head_kwargs) -> MRCHeadPreTrainedModel:
    """Build an MRC model: ``encoder`` is a Hub id / local path (weights loaded when ``pretrained``) or a config.

    ``head`` is ``"linear"``, ``"biattention"`` or ``"coattention"``; ``head_kwargs`` go to the config
    (``head_hidden_size``, ``head_dropout``, ``num_modeling_layers``, ``mask_non_context``).
    """
    if head not in HEADS:
        raise ValueError(f"unknown MRC head {head!r}: expected one of {sorted(HEADS)}")
    config_cls, model_cls = HEADS[head]
    if isinstance(encoder, PretrainedConfig):
        enc_config, path = encoder, None
    else:
        enc_config, path = AutoConfig.from_pretrained(encoder), encoder
    config = config_cls(encoder=enc_config, sep_token_id=sep_token_id, **head_kwargs)
    model = model_cls(config)
    if pretrained and path is not None:
        source = AutoModel.from_pretrained(path)
        missing, unexpected = model.encoder.load_state_dict(source.state_dict(), strict=False)
        unexpected = [k for k in unexpected if not k.startswith("pooler.")]
        if missing or unexpected:
            raise ValueError(f"encoder weights from {path} do not match the encoder built from its config: "
                             f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        del source
    return model


def head_parameter_count(model: MRCHeadPreTrainedModel) -> int:
    """Parameters of the head alone (what it adds on top of the encoder)."""
    return sum(p.numel() for p in model.qa_head.parameters())


# This file imports only torch and transformers: saved models carry it and an auto_map (AutoConfig /
# AutoModelForQuestionAnswering -> these classes), so they load with trust_remote_code=True where the package is
# not installed.
for _config_cls, _model_cls in HEADS.values():
    _config_cls.register_for_auto_class()
    _model_cls.register_for_auto_class("AutoModelForQuestionAnswering")
