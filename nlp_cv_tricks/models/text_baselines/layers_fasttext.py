"""FastText (Joulin et al. 2016): its config and its layers (``FastTextLayers``), with the fastText n-gram hashing it
computes from token ids.

Imports only ``torch``, ``transformers``' configuration and output classes and its sibling ``layers_base``: the
package trains the layers as a plain ``nn.Module`` (``modules.py``), ``modeling_fasttext.py`` puts them on a
``PreTrainedModel``, and both files are copied next to every saved model of this family (its ``config.json`` has
an ``auto_map``), so the model loads without this package::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .layers_base import TextBaselineConfig, _BaselineLayers, _FeatureNorm

__all__ = ["FastTextConfig", "FastTextLayers", "hashed_ngram_ids", "fasttext_features", "fasttext_bags"]


# multipliers of the polynomial n-gram hash; 116049371 is the one the official fastText uses in addWordNgrams
_HASH_MULT = 116049371

# ---------------------------------------------------------------------------------------------------------------
# fastText hashed n-grams
# ---------------------------------------------------------------------------------------------------------------
def hashed_ngram_ids(
    input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor], n: int, bucket: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hash the word n-grams of each row of ``input_ids`` into ``[0, bucket)``.

    The hash is the polynomial ``h = ((h * 116049371) + id) mod bucket`` over the n token ids (the multiplier of
    fastText's ``addWordNgrams``), computed modulo ``bucket`` at each step so that it never overflows int64 and
    gives the same ids on every device. An n-gram is valid when all its n positions are real tokens.

    Args:
        input_ids: ``(batch, length)`` token ids.
        attention_mask: ``(batch, length)`` 1 for real tokens (``None``: all real).
        n: n-gram order (>= 2).
        bucket: number of hash buckets.

    Returns:
        ``(ids, valid)``, both ``(batch, max(length - n + 1, 0))``: the bucket of each n-gram starting at each
        position, and a bool mask of valid n-grams.
    """
    if n < 2:
        raise ValueError(f"n-gram order must be >= 2, got {n}")
    if bucket < 1:
        raise ValueError(f"bucket must be >= 1, got {bucket}")
    b, length = input_ids.shape
    m = length - n + 1
    if m <= 0:
        empty = input_ids.new_zeros((b, 0))
        return empty, empty.bool()
    ids = input_ids.long()
    mult = _HASH_MULT % bucket
    h = ids[:, 0:m] % bucket
    for j in range(1, n):
        h = (h * mult + ids[:, j : j + m]) % bucket
    if attention_mask is None:
        valid = torch.ones_like(h, dtype=torch.bool)
    else:
        am = attention_mask.bool()
        valid = am[:, 0:m].clone()
        for j in range(1, n):
            valid &= am[:, j : j + m]
    return h, valid


def fasttext_features(
    input_ids: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    vocab_size: int,
    word_ngrams: int,
    bucket: int,
    pad_id: int = 0,
) -> torch.Tensor:
    """The fastText bag of one text: its unigram ids followed by the hashed ids of its 2..``word_ngrams``-grams,
    offset by ``vocab_size`` (rows ``vocab_size .. vocab_size + bucket - 1`` of the input matrix, as in fastText).

    Invalid positions (padding, n-grams that cross the padding) are set to ``pad_id`` so that an
    ``EmbeddingBag(padding_idx=pad_id)`` leaves them out of the average.

    Returns:
        ``(batch, length + sum_{n=2..word_ngrams} (length - n + 1))`` int64 ids.
    """
    ids = input_ids.long()
    if attention_mask is None:
        attention_mask = torch.ones_like(ids)
    parts = [ids.masked_fill(~attention_mask.bool(), pad_id)]
    for n in range(2, word_ngrams + 1):
        h, valid = hashed_ngram_ids(ids, attention_mask, n, bucket)
        parts.append((h + vocab_size).masked_fill(~valid, pad_id))
    return torch.cat(parts, dim=1)


def fasttext_bags(
    input_ids: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    vocab_size: int,
    word_ngrams: int,
    bucket: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fastText bags of a batch in ``EmbeddingBag``'s flat form: ``(ids, offsets)``, where ``ids`` holds, text
    after text, the text's real unigram ids followed by the hashed ids of its valid 2..``word_ngrams``-grams
    (offset by ``vocab_size``), and ``offsets[i]`` is where text ``i`` starts. The same bag as
    :func:`fasttext_features` (same hash, same order), without padding: a lookup over it needs no
    ``padding_idx``, which on CPU makes ``EmbeddingBag`` several times slower forward and backward.

    The n-gram hashes are built incrementally (order ``n`` from order ``n - 1``: one multiply-add-mod per order),
    so the cost is ``O(batch * length * word_ngrams)`` tensor arithmetic, a handful of vectorised ops per batch.
    """
    ids = input_ids.long()
    real = torch.ones_like(ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    parts, masks = [ids], [real]
    if word_ngrams > 1:
        mult = _HASH_MULT % bucket
        h, valid = ids % bucket, real
        for n in range(2, word_ngrams + 1):
            if ids.shape[1] < n:
                break
            # hash of ids[p .. p+n-1] = (hash of ids[p .. p+n-2]) * mult + ids[p+n-1]  (mod bucket)
            h = (h[:, :-1] * mult + ids[:, n - 1:]) % bucket
            valid = valid[:, :-1] & real[:, n - 1:]
            parts.append(h + vocab_size)
            masks.append(valid)
    mask = torch.cat(masks, dim=1)
    flat = torch.masked_select(torch.cat(parts, dim=1), mask)  # row-major: text after text; ~25% faster than [mask]
    counts = mask.sum(dim=1)
    offsets = torch.cumsum(counts, dim=0) - counts
    return flat, offsets


class FastTextConfig(TextBaselineConfig):
    """FastText (Joulin et al. 2016, "Bag of Tricks for Efficient Text Classification").

    Args:
        word_ngrams: largest n-gram order (1 = bag of words; the THUCNews reference uses 3: uni+bi+tri).
        bucket: hash buckets for the n-grams (official default 2,000,000; THUCNews reference 250,499).
        hidden_size: 0 = the paper's linear classifier on the averaged vector; > 0 adds a ReLU hidden layer
            (what the THUCNews reference port does, hidden 256).
        sparse: sparse gradients for the bag (only touched rows are updated; use Adagrad, see
            :func:`preferred_optimizer`).
        embedding_dim: default 100 (official fastText ``-dim`` default).
        dropout: default 0.0 (fastText has none).
    """

    model_type = "nct-fasttext"

    def __init__(
        self,
        word_ngrams: int = 2,
        bucket: int = 250499,
        hidden_size: int = 0,
        sparse: bool = True,
        embedding_dim: int = 100,
        dropout: float = 0.0,
        **kwargs,
    ):
        if word_ngrams < 1:
            raise ValueError(f"FastTextConfig: word_ngrams must be >= 1, got {word_ngrams}")
        if word_ngrams > 1 and bucket < 1:
            raise ValueError(f"FastTextConfig: bucket must be >= 1 when word_ngrams > 1, got {bucket}")
        self.word_ngrams = int(word_ngrams)
        self.bucket = int(bucket) if word_ngrams > 1 else 0
        self.hidden_size = int(hidden_size)
        self.sparse = bool(sparse)
        super().__init__(embedding_dim=embedding_dim, dropout=dropout, **kwargs)


# FastText
# =============================================================================================================
class _MeanBagSparseGrad(torch.autograd.Function):
    """``F.embedding_bag(ids, weight, offsets, mode="mean")`` whose weight gradient is built directly as the
    uncoalesced sparse COO tensor ``(ids, grad[bag of each id] / bag size)`` -- the same tensor (indices, values
    and order) torch's own sparse backward returns, without its generic path (~0.25 ms less per batch of 128
    THUCNews titles on CPU, benchmarks/RESULTS.md)."""

    @staticmethod
    def forward(ctx, weight, ids, offsets):
        out = F.embedding_bag(ids, weight, offsets, mode="mean")
        ctx.save_for_backward(ids, offsets)
        ctx.weight_shape, ctx.weight_dtype = weight.shape, weight.dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        ids, offsets = ctx.saved_tensors
        n = ids.numel()
        grad = grad.to(ctx.weight_dtype)
        counts = torch.diff(offsets, append=offsets.new_tensor([n]))
        bag_of = torch.repeat_interleave(torch.arange(offsets.numel(), device=ids.device), counts, output_size=n)
        scale = 1.0 / counts.clamp(min=1).to(grad.dtype)
        values = (grad * scale.unsqueeze(1)).index_select(0, bag_of)
        gw = torch.sparse_coo_tensor(ids.long().unsqueeze(0), values, ctx.weight_shape, is_coalesced=False,
                                     check_invariants=False)
        return gw, None, None


class _FastTextBag(nn.EmbeddingBag):
    """The FastText bag: an ``nn.EmbeddingBag`` (same parameter, same hooks) whose sparse mean lookup over flat
    ids + offsets (increasing, as :func:`fasttext_bags` makes them) takes
    :class:`_MeanBagSparseGrad`; every other use is ``nn.EmbeddingBag.forward``."""

    def forward(self, input, offsets=None, per_sample_weights=None):
        if (self.sparse and self.mode == "mean" and offsets is not None and per_sample_weights is None
                and input.dim() == 1 and self.padding_idx is None and self.max_norm is None
                and not self.scale_grad_by_freq and not self.include_last_offset and self.weight.requires_grad
                and torch.is_grad_enabled()):
            return _MeanBagSparseGrad.apply(self.weight, input, offsets)
        return super().forward(input, offsets, per_sample_weights)


class FastTextLayers(_BaselineLayers):
    """Joulin et al. (2016) fastText classifier: the average of the embeddings of the text's tokens and hashed
    word n-grams (one ``nn.EmbeddingBag`` over ``vocab_size + bucket`` rows, mode ``mean``, sparse gradients)
    followed by a linear classifier (softmax loss).

    Expected effect: about the accuracy of TextCNN on short texts (THUCNews reference with uni+bi+tri-grams:
    92.23) at a fraction of the cost: one bag lookup and one small matrix product per text. Train it with plain
    SGD and a linearly decaying learning rate, as the official fastText does (fastest; momentum 0, lr scaled
    with the batch), or with Adagrad (``train.optimizer: auto``; :func:`preferred_optimizer`) -- Adam's dense
    moments defeat sparse updates. The bag is fed flat, without padding (:func:`fasttext_bags`), so the lookup needs no ``padding_idx``. The n-gram ids are computed from the token ids, so any
    tokenizer works. ``get_input_embeddings()`` is the bag: its output is the averaged text vector (where an
    adversarial perturbation of FGM/PGD lands). Weight decay must be 0 with sparse gradients.
    """


    def _build(self, config: FastTextConfig) -> None:
        rows = config.vocab_size + (config.bucket if config.word_ngrams > 1 else 0)
        # no padding_idx: padding never reaches the bag (see features), and on CPU a padding_idx makes the lookup
        # and its sparse backward ~5x slower
        # _weight: no N(0, 1) fill of the (often 100 MB) table here; _init_weights sets fastText's uniform init
        self.embeddings = _FastTextBag(rows, config.embedding_dim, mode="mean", sparse=config.sparse,
                                       _weight=torch.empty(rows, config.embedding_dim))
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        dim = config.embedding_dim
        if config.hidden_size > 0:
            self.hidden = nn.Linear(dim, config.hidden_size)
            dim = config.hidden_size
        else:
            self.hidden = None
        self.norm = _FeatureNorm(config.norm, dim)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(dim, config.num_labels)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        # official fastText: output matrix starts at zero (only for the linear model; a hidden layer needs symmetry
        # breaking)
        if module is getattr(self, "classifier", None) and self.config.hidden_size == 0:
            nn.init.zeros_(module.weight)

    def bag_ids(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The ids the bag averages: token ids then hashed n-gram ids (padding = ``pad_token_id``)."""
        cfg = self.config
        if attention_mask is None:
            attention_mask = input_ids != cfg.pad_token_id
        return fasttext_features(input_ids, attention_mask, cfg.vocab_size, cfg.word_ngrams, cfg.bucket, cfg.pad_token_id)

    def features(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> torch.Tensor:
        if inputs_embeds is not None:
            raise ValueError("FastText averages a bag of ids; inputs_embeds is not supported (hook the bag output)")
        if input_ids is None:
            raise ValueError("FastText needs input_ids")
        cfg = self.config
        if attention_mask is None:
            attention_mask = input_ids != cfg.pad_token_id
        # a flat bag of the valid ids with offsets: padding costs nothing in the lookup or in the sparse gradient
        flat, offsets = fasttext_bags(input_ids, attention_mask, cfg.vocab_size, cfg.word_ngrams, cfg.bucket)
        h = self.embedding_dropout(self.embeddings(flat, offsets))
        if self.hidden is not None:
            h = F.relu(self.hidden(h))
        return self.norm(h)


# =============================================================================================================


# a saved model's config.json names this file in its auto_map (the model class: modeling_fasttext.py); what
# FastTextConfig.register_for_auto_class() sets, without the 0.25 s import of transformers.models.auto it makes to check
# the name
FastTextConfig._auto_class = "AutoConfig"
