"""The chunk-and-pool document classifier of nlp-cv-tricks as a self-contained Hugging Face model.

``ChunkPoolForSequenceClassification`` is the usual baseline for encoders with short limits (e.g. Pappagari et
al. 2019, "Hierarchical Transformers for Long Document Classification", https://arxiv.org/abs/1910.10781):
overlapping windows encoded separately by any ``AutoModel`` encoder, pooled by mean, max or attention over
chunks, then a linear classifier. Cost: one encoder pass per chunk (about (n / (chunk - overlap)) x 512-token
passes), memory linear in the number of chunks.

This file imports only ``torch`` and ``transformers``: it is copied next to every saved chunk-and-pool model
(``register_for_auto_class`` + ``save_pretrained`` write it and an ``auto_map`` into ``config.json``), so a saved
model loads where the package is not installed::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec
from transformers.loss.loss_utils import ForSequenceClassificationLoss
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = ["chunk_spans", "POOLINGS", "CHUNK_REPRESENTATIONS", "ChunkPoolConfig", "ChunkAttentionPool",
           "ChunkPoolForSequenceClassification"]

# ---------------------------------------------------------------------------------------------------------------
# Chunking (chunk-and-pool baseline)
# ---------------------------------------------------------------------------------------------------------------
def chunk_spans(num_tokens: int, chunk_len: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` spans of overlapping windows covering ``range(num_tokens)``.

    Window ``i`` starts at ``i * (chunk_len - overlap)``; consecutive windows share exactly ``overlap`` tokens and
    the last one ends at ``num_tokens`` (it may be shorter). An empty document gives one empty span, so every
    document yields at least one chunk. Every token is covered; none is dropped.
    """
    if chunk_len < 1:
        raise ValueError(f"chunk_len must be >= 1, got {chunk_len}")
    if not 0 <= overlap < chunk_len:
        raise ValueError(f"overlap must be in [0, chunk_len={chunk_len}), got {overlap}")
    if num_tokens <= chunk_len:
        return [(0, num_tokens)]
    step = chunk_len - overlap
    n_chunks = math.ceil((num_tokens - chunk_len) / step) + 1
    return [(i * step, min(i * step + chunk_len, num_tokens)) for i in range(n_chunks)]


# ---------------------------------------------------------------------------------------------------------------
# Chunk-and-pool classifier
# ---------------------------------------------------------------------------------------------------------------
POOLINGS = ("mean", "max", "attention")
CHUNK_REPRESENTATIONS = ("cls", "mean")


class ChunkPoolConfig(PreTrainedConfig):
    r"""Configuration of :class:`ChunkPoolForSequenceClassification`.

    Args:
        encoder: the encoder's config (any ``AutoModel`` config, or its dict).
        chunk_size: tokens per chunk *including* the two special tokens (512 for BERT).
        chunk_overlap: document tokens shared by consecutive chunks.
        pooling: ``mean``, ``max`` or ``attention`` (a learned softmax over chunks, Yang et al. 2016 style).
        chunk_representation: ``cls`` (first token's last hidden state) or ``mean`` (masked mean of tokens).
        max_chunks: if set, documents with more chunks raise an error (nothing is dropped silently).
        encoder_batch_size: chunks per encoder call (None: all chunks of the batch at once).
        cls_token_id / sep_token_id / pad_token_id: special ids used to frame each chunk.
        classifier_dropout: dropout before the linear classifier.
    """

    model_type = "chunk_pool"
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder: PreTrainedConfig | dict | None = None
    chunk_size: int = 512
    chunk_overlap: int = 128
    pooling: str = "mean"
    chunk_representation: str = "cls"
    max_chunks: int | None = None
    encoder_batch_size: int | None = None
    cls_token_id: int | None = 101
    sep_token_id: int | None = 102
    pad_token_id: int | None = 0
    classifier_dropout: float = 0.1
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.pooling not in POOLINGS:
            raise ValueError(f"ChunkPoolConfig.pooling={self.pooling!r}; expected one of {POOLINGS}")
        if self.chunk_representation not in CHUNK_REPRESENTATIONS:
            raise ValueError(
                f"ChunkPoolConfig.chunk_representation={self.chunk_representation!r}; expected one of {CHUNK_REPRESENTATIONS}"
            )
        if self.chunk_size < 3:
            raise ValueError(f"ChunkPoolConfig.chunk_size={self.chunk_size}; must hold the two specials and text")
        if not 0 <= self.chunk_overlap < self.chunk_size - 2:
            raise ValueError(
                f"ChunkPoolConfig.chunk_overlap={self.chunk_overlap}; must be in [0, chunk_size - 2 = {self.chunk_size - 2})"
            )
        limit = getattr(self.encoder, "max_position_embeddings", None)
        if limit is not None and self.chunk_size > limit:
            raise ValueError(f"ChunkPoolConfig.chunk_size={self.chunk_size} exceeds the encoder's {limit} positions")
        for name in ("cls_token_id", "sep_token_id", "pad_token_id"):
            if getattr(self, name) is None:
                raise ValueError(f"ChunkPoolConfig.{name} must be set (take it from the tokenizer)")


class ChunkAttentionPool(nn.Module):
    """Additive attention over chunk vectors: ``softmax_c(v . tanh(W h_c))``, masked to real chunks."""

    def __init__(self, hidden: int):
        super().__init__()
        self.proj = nn.Linear(hidden, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.score(torch.tanh(self.proj(h))).squeeze(-1)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        return torch.einsum("bc,bch->bh", weights, h), weights


class ChunkPoolPreTrainedModel(PreTrainedModel):
    config_class = ChunkPoolConfig
    config: ChunkPoolConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module):
        if isinstance(module, (ChunkAttentionPool,)) or getattr(module, "_chunk_pool_head", False):
            for sub in module.modules():
                if isinstance(sub, nn.Linear):
                    nn.init.normal_(sub.weight, mean=0.0, std=self.config.initializer_range)
                    if sub.bias is not None:
                        nn.init.zeros_(sub.bias)


class ChunkPoolForSequenceClassification(ChunkPoolPreTrainedModel):
    """Chunk-and-pool document classifier over any ``AutoModel`` encoder.

    Input: ``input_ids`` / ``attention_mask`` of whole documents as the tokenizer makes them
    (``[CLS] doc [SEP] [PAD]...``, any length). Each document's tokens between the first and last special token
    are cut into windows of ``chunk_size - 2`` tokens overlapping by ``chunk_overlap`` (:func:`chunk_spans`),
    each framed as ``[CLS] window [SEP]`` and encoded; chunk vectors are pooled per document and classified.
    Output: ``SequenceClassifierOutput`` (loss as in HF heads: CE, MSE for one label, BCE for multi-label);
    with ``pooling="attention"`` its ``attentions`` is ``(weights,)``, the (batch, max_chunks) weights over chunks.
    """

    def __init__(self, config: ChunkPoolConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        try:
            self.encoder = AutoModel.from_config(config.encoder, add_pooling_layer=False)
        except TypeError:
            self.encoder = AutoModel.from_config(config.encoder)
        hidden = config.encoder.hidden_size
        self.chunk_attention = ChunkAttentionPool(hidden) if config.pooling == "attention" else None
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(hidden, config.num_labels)
        self.classifier._chunk_pool_head = True
        self.post_init()

    @classmethod
    def from_encoder(cls, encoder_name_or_path: str, tokenizer=None, **config_kwargs) -> "ChunkPoolForSequenceClassification":
        """Build a fresh classifier around a pretrained encoder (a Hub id or a local directory; inside the package
        ``nlp_cv_tricks.models.long.resolve_model_path`` turns offline aliases such as ``minilm-l6`` into one).

        Special ids come from ``tokenizer`` (or are loaded from the encoder path); ``config_kwargs`` go to
        :class:`ChunkPoolConfig` (e.g. ``num_labels=2, pooling="attention", chunk_overlap=128``).
        """
        from transformers import AutoTokenizer

        path = encoder_name_or_path
        encoder = AutoModel.from_pretrained(path)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(path)
        cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        config_kwargs.setdefault("chunk_size", min(512, getattr(encoder.config, "max_position_embeddings", 512)))
        config = ChunkPoolConfig(
            encoder=encoder.config.to_dict(),
            cls_token_id=cls_id,
            sep_token_id=sep_id,
            pad_token_id=tokenizer.pad_token_id,
            **config_kwargs,
        )
        model = cls(config)
        missing, unexpected = model.encoder.load_state_dict(encoder.state_dict(), strict=False)
        missing = [k for k in missing if not k.startswith("pooler.")]
        unexpected = [k for k in unexpected if not k.startswith("pooler.")]
        if missing or unexpected:
            raise ValueError(f"{encoder_name_or_path}: encoder weights mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
        return model

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.encoder.set_input_embeddings(value)

    # -- chunking -----------------------------------------------------------------------------------------------
    def make_chunks(
        self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """``(chunk_ids, chunk_mask, chunks_per_document)`` for a batch of whole-document inputs."""
        cfg = self.config
        if attention_mask is None:
            attention_mask = (input_ids != cfg.pad_token_id).long()
        content_len = cfg.chunk_size - 2
        rows, counts = [], []
        for b in range(input_ids.shape[0]):
            ids = input_ids[b][attention_mask[b].bool()]
            if ids.numel() < 2 or int(ids[0]) != cfg.cls_token_id or int(ids[-1]) != cfg.sep_token_id:
                raise ValueError(
                    f"batch row {b}: expected [CLS]={cfg.cls_token_id} ... [SEP]={cfg.sep_token_id} around the "
                    f"document (tokenize with add_special_tokens=True, single sequence), got first/last "
                    f"{ids[:1].tolist()} / {ids[-1:].tolist()}"
                )
            content = ids[1:-1]
            spans = chunk_spans(content.numel(), content_len, cfg.chunk_overlap)
            if cfg.max_chunks is not None and len(spans) > cfg.max_chunks:
                raise ValueError(
                    f"batch row {b}: {content.numel()} tokens need {len(spans)} chunks > max_chunks={cfg.max_chunks}; "
                    "truncate the documents first or raise max_chunks"
                )
            for s, e in spans:
                rows.append(torch.cat([ids[:1], content[s:e], ids[-1:]]))
            counts.append(len(spans))
        width = max(r.numel() for r in rows)
        chunk_ids = input_ids.new_full((len(rows), width), cfg.pad_token_id)
        chunk_mask = torch.zeros_like(chunk_ids)
        for i, r in enumerate(rows):
            chunk_ids[i, : r.numel()] = r
            chunk_mask[i, : r.numel()] = 1
        return chunk_ids, chunk_mask, counts

    def encode_chunks(self, chunk_ids: torch.Tensor, chunk_mask: torch.Tensor) -> torch.Tensor:
        """One vector per chunk (``cls`` or masked ``mean`` of the last hidden state)."""
        step = self.config.encoder_batch_size or chunk_ids.shape[0]
        outs = []
        for i in range(0, chunk_ids.shape[0], step):
            ids, mask = chunk_ids[i: i + step], chunk_mask[i: i + step]
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            if self.config.chunk_representation == "cls":
                outs.append(hidden[:, 0])
            else:
                m = mask.unsqueeze(-1).to(hidden.dtype)
                outs.append((hidden * m).sum(1) / m.sum(1).clamp(min=1))
        return torch.cat(outs, dim=0)

    def pool(self, vectors: torch.Tensor, counts: list[int]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Pool chunk vectors per document; returns ``(doc_vectors, attention_weights_or_None)``."""
        n_max = max(counts)
        hidden = vectors.shape[-1]
        padded = vectors.new_zeros((len(counts), n_max, hidden))
        mask = torch.zeros((len(counts), n_max), dtype=torch.bool, device=vectors.device)
        start = 0
        for b, c in enumerate(counts):
            padded[b, :c] = vectors[start: start + c]
            mask[b, :c] = True
            start += c
        if self.config.pooling == "mean":
            m = mask.unsqueeze(-1).to(padded.dtype)
            return (padded * m).sum(1) / m.sum(1), None
        if self.config.pooling == "max":
            return padded.masked_fill(~mask.unsqueeze(-1), torch.finfo(padded.dtype).min).amax(1), None
        return self.chunk_attention(padded, mask)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        return_dict: Optional[bool] = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        if token_type_ids is not None and bool((token_type_ids != 0).any()):
            raise ValueError("ChunkPoolForSequenceClassification takes single-sequence documents (token_type_ids all 0)")
        chunk_ids, chunk_mask, counts = self.make_chunks(input_ids, attention_mask)
        vectors = self.encode_chunks(chunk_ids, chunk_mask)
        doc, weights = self.pool(vectors, counts)
        logits = self.classifier(self.dropout(doc))
        loss = None
        if labels is not None:
            loss = self._loss(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits, attentions=(weights,) if weights is not None else None)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return ForSequenceClassificationLoss(labels, logits, self.config)


# saved models carry this file and an auto_map (AutoConfig / AutoModelForSequenceClassification -> these classes)
ChunkPoolConfig.register_for_auto_class()
ChunkPoolForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
