"""The text-classification baselines of nlp-cv-tricks as self-contained Hugging Face models: TextCNN, FastText,
DPCNN, TextRNN (+ attention pooling) and TextRCNN -- their configs, their modules and the fastText n-gram hashing
they compute from token ids.

This file imports only ``torch`` and ``transformers``: it is copied next to every saved baseline
(``register_for_auto_class`` + ``save_pretrained`` write it and an ``auto_map`` into ``config.json``), so a saved
model loads where the package is not installed::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)

Inside the package, :mod:`nlp_cv_tricks.models.text_baselines` re-exports these classes and adds the builder
(tokenizer, pretrained vectors), the registry of names and the optimizer hint; see it for the behaviour that
all baselines share (masked padding, ``inputs_embeds``, norms, init schemes, Kim 2014's max-norm).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.loss.loss_utils import ForSequenceClassificationLoss
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = [
    "TextBaselineConfig", "TextCNNConfig", "FastTextConfig", "DPCNNConfig", "TextRNNConfig", "TextRCNNConfig",
    "TextCNNForSequenceClassification", "FastTextForSequenceClassification", "DPCNNForSequenceClassification",
    "TextRNNForSequenceClassification", "TextRCNNForSequenceClassification", "MODEL_CLASSES",
    "hashed_ngram_ids", "fasttext_features", "fasttext_bags",
]

_NORMS = ("none", "batch", "layer")
_INITS = ("xavier_normal", "xavier_uniform", "kaiming", "normal")

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


class TextCNNConfig(TextBaselineConfig):
    """TextCNN (Kim 2014, "Convolutional Neural Networks for Sentence Classification").

    Args:
        filter_sizes: convolution widths (Kim: 3, 4, 5; THUCNews reference: 2, 3, 4).
        num_filters: feature maps per width (Kim: 100; THUCNews reference: 256).
        multichannel: Kim's CNN-multichannel: a second, frozen copy of the embedding as another input channel.
    """

    model_type = "nct-textcnn"

    def __init__(self, filter_sizes=(3, 4, 5), num_filters: int = 100, multichannel: bool = False, **kwargs):
        self.filter_sizes = [int(k) for k in filter_sizes]
        if not self.filter_sizes or min(self.filter_sizes) < 1:
            raise ValueError(f"TextCNNConfig: filter_sizes must be positive widths, got {filter_sizes}")
        self.num_filters = int(num_filters)
        self.multichannel = bool(multichannel)
        super().__init__(**kwargs)


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


class DPCNNConfig(TextBaselineConfig):
    """DPCNN (Johnson & Zhang 2017, "Deep Pyramid Convolutional Neural Networks for Text Categorization").

    Args:
        num_filters: feature maps of every layer (paper: 250, fixed so that shortcuts need no projection).
        region_size: width of the region-embedding convolution (paper: 3).
        num_blocks: number of "pool by 1/2 + two convolutions + shortcut" blocks after the first block; ``None``
            derives it from ``max_seq_length`` (halve until length 2, as the reference code: 32 -> 4 blocks).
    """

    model_type = "nct-dpcnn"

    def __init__(self, num_filters: int = 250, region_size: int = 3, num_blocks: Optional[int] = None, **kwargs):
        self.num_filters = int(num_filters)
        self.region_size = int(region_size)
        if num_blocks is None:
            ml = kwargs.get("max_seq_length") or 32
            num_blocks = max(1, int(math.ceil(math.log2(max(int(ml), 2)))) - 1)
        self.num_blocks = int(num_blocks)
        super().__init__(**kwargs)


class TextRNNConfig(TextBaselineConfig):
    """TextRNN: a (bi)LSTM/GRU encoder with last-state, max, mean or attention pooling.

    ``pooling="attention"`` is TextRNN_Att (Zhou et al. 2016, "Attention-Based Bidirectional LSTM Networks for
    Relation Classification": ``alpha = softmax(w^T tanh(H))``, ``h = tanh(H alpha)``).

    Args:
        rnn_type: ``"lstm"`` or ``"gru"``.
        hidden_size: per direction (THUCNews reference: 128). num_layers: 2. bidirectional: True.
        pooling: ``"last"`` (final forward + backward states), ``"max"``, ``"mean"`` or ``"attention"``.
        rnn_dropout: dropout between stacked RNN layers.
    """

    model_type = "nct-textrnn"

    def __init__(
        self,
        rnn_type: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 2,
        bidirectional: bool = True,
        pooling: str = "last",
        rnn_dropout: float = 0.0,
        **kwargs,
    ):
        if rnn_type not in ("lstm", "gru"):
            raise ValueError(f"TextRNNConfig: rnn_type must be 'lstm' or 'gru', got {rnn_type!r}")
        if pooling not in ("last", "max", "mean", "attention"):
            raise ValueError(f"TextRNNConfig: pooling must be last/max/mean/attention, got {pooling!r}")
        self.rnn_type = rnn_type
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.pooling = pooling
        self.rnn_dropout = float(rnn_dropout)
        super().__init__(**kwargs)


class TextRCNNConfig(TextBaselineConfig):
    """TextRCNN (Lai et al. 2015, "Recurrent Convolutional Neural Networks for Text Classification").

    Args:
        rnn_type: ``"lstm"`` or ``"gru"``; hidden_size: per direction (reference: 256); num_layers: 1.
        latent_size: size of the ``tanh(W [left; word; right])`` layer before max-pooling (paper: 100).
    """

    model_type = "nct-textrcnn"

    def __init__(
        self, rnn_type: str = "lstm", hidden_size: int = 256, num_layers: int = 1, latent_size: int = 100, **kwargs
    ):
        if rnn_type not in ("lstm", "gru"):
            raise ValueError(f"TextRCNNConfig: rnn_type must be 'lstm' or 'gru', got {rnn_type!r}")
        self.rnn_type = rnn_type
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.latent_size = int(latent_size)
        super().__init__(**kwargs)


# =============================================================================================================
# shared pieces
# =============================================================================================================
def _masked_max(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Max over ``dim`` of ``x`` where ``mask`` (broadcastable bool) is True."""
    return x.masked_fill(~mask, float("-inf")).amax(dim=dim)


class _FeatureNorm(nn.Module):
    """BatchNorm or LayerNorm over the channel axis of ``(B, C)``, ``(B, C, L)`` (``channels_last=False``) or
    ``(B, L, C)`` (``channels_last=True``) features.

    BatchNorm on per-position features (TextCNN/DPCNN feature maps, TextRCNN states) takes its batch statistics
    over padded positions too; LayerNorm normalises each position on its own and is unaffected by padding (the
    tip: LayerNorm for sequence features, BatchNorm otherwise)."""

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
        if self.kind == "none" or x.dim() == 2:
            return self.norm(x)
        if self.kind == "batch":
            return self.norm(x.transpose(1, 2)).transpose(1, 2) if self.channels_last else self.norm(x)
        return self.norm(x) if self.channels_last else self.norm(x.transpose(1, 2)).transpose(1, 2)


class _BaselinePreTrainedModel(PreTrainedModel):
    """Weight init, embedding access, the classification loss and the padding mask, shared by all baselines."""

    config_class = TextBaselineConfig
    base_model_prefix = "baseline"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _no_split_modules: list = []

    # ---- init ------------------------------------------------------------------------------------------------
    def _init_weights(self, module: nn.Module) -> None:
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

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """``PreTrainedModel.from_pretrained`` that re-applies ``freeze_embeddings`` (loading replaces parameters)."""
        out = super().from_pretrained(*args, **kwargs)
        model = out[0] if isinstance(out, tuple) else out
        model._apply_freeze()
        return out

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
        # transformers' own sequence-classification loss (problem_type inferred as its models do)
        return ForSequenceClassificationLoss(labels, logits.float(), self.config)

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
        sparse = isinstance(self.config, FastTextConfig) and self.config.sparse and any(
            p.requires_grad for p in self.get_input_embeddings().parameters())  # frozen: no sparse gradients
        return "adagrad" if sparse else "adam"


# =============================================================================================================
# TextCNN
# =============================================================================================================
class TextCNNForSequenceClassification(_BaselinePreTrainedModel):
    """Kim (2014) TextCNN: embeddings -> parallel 1-D convolutions of several widths -> ReLU -> max-over-time
    pooling -> concatenation -> dropout -> linear.

    Expected effect: a strong, fast sentence classifier (Kim 2014 CNN-rand: SST-2 82.7, TREC 91.2, MR 76.1;
    THUCNews reference 91.22). Cost: one convolution layer, O(L * sum(widths) * E * F) per text.
    Windows that run into the padding are excluded from the max (a text shorter than the widest filter keeps
    its single zero-padded window, as in Kim's zero padding). Kim's L2 max-norm constraint on the output weight
    vectors is the ``max_norm`` option (off by default; Zhang & Wallace 2015 found it makes little difference),
    applied after each optimizer step by :meth:`apply_weight_constraints`; Kim's ``s = 3`` is ``max_norm = 1.5``
    with torch's inverted dropout (see :class:`TextBaselineConfig`). Kim's full CNN-rand setting:
    ``recipes/sst2_textcnn.yaml`` (Adadelta rho 0.95, batch 50, dropout 0.5, max-norm, U(-0.25, 0.25) vectors).
    """

    config_class = TextCNNConfig
    base_model_prefix = "textcnn"

    def __init__(self, config: TextCNNConfig):
        super().__init__(config)
        E, F_ = config.embedding_dim, config.num_filters
        self.embeddings = nn.Embedding(config.vocab_size, E, padding_idx=config.pad_token_id)
        self.static_embeddings = (
            nn.Embedding(config.vocab_size, E, padding_idx=config.pad_token_id) if config.multichannel else None
        )
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        in_ch = E * (2 if config.multichannel else 1)
        self.convs = nn.ModuleList([nn.Conv1d(in_ch, F_, k) for k in config.filter_sizes])
        self.norms = nn.ModuleList([_FeatureNorm(config.norm, F_) for _ in config.filter_sizes])
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(F_ * len(config.filter_sizes), config.num_labels)
        self.post_init()
        self._apply_freeze()

    def features(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> torch.Tensor:
        x = self._embed(input_ids, inputs_embeds)
        mask = self._mask(input_ids, attention_mask, x)
        if self.static_embeddings is not None:
            if input_ids is None:
                raise ValueError("TextCNN multichannel needs input_ids (the static channel is a lookup)")
            x = torch.cat([x, self.static_embeddings(input_ids)], dim=-1)
        x = self.embedding_dropout(x) * mask.unsqueeze(-1).to(x.dtype)
        kmax = max(self.config.filter_sizes)
        if x.shape[1] < kmax:  # zero-pad short batches up to the widest filter
            x = F.pad(x, (0, 0, 0, kmax - x.shape[1]))
            mask = F.pad(mask, (0, kmax - mask.shape[1]), value=False)
        x = x.transpose(1, 2)  # (B, E, L)
        lengths = mask.sum(dim=1, keepdim=True)  # (B, 1)
        mf = mask.to(x.dtype).unsqueeze(1)
        pooled = []
        for k, conv, norm in zip(self.config.filter_sizes, self.convs, self.norms):
            c = F.relu(norm(conv(x)))  # (B, F, L-k+1)
            # a window is valid when it holds min(k, length) real tokens
            real = F.conv1d(mf, torch.ones(1, 1, k, dtype=x.dtype, device=x.device)).squeeze(1)  # (B, L-k+1)
            valid = real >= torch.clamp(lengths, max=k).to(real.dtype) - 0.5
            pooled.append(_masked_max(c, valid.unsqueeze(1), dim=2))
        return torch.cat(pooled, dim=1)


# =============================================================================================================
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


class FastTextForSequenceClassification(_BaselinePreTrainedModel):
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

    config_class = FastTextConfig
    base_model_prefix = "fasttext"

    def __init__(self, config: FastTextConfig):
        super().__init__(config)
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
        self.post_init()
        self._apply_freeze()

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
# DPCNN
# =============================================================================================================
class _PreActConv(nn.Module):
    """norm -> ReLU -> conv (width 3, same padding): the pre-activation unit of DPCNN."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.norm = _FeatureNorm(norm, channels)
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, mf: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(self.norm(x)) * mf)


class DPCNNForSequenceClassification(_BaselinePreTrainedModel):
    """Johnson & Zhang (2017) DPCNN: region embedding (a width-3 convolution of the word vectors to 250 maps),
    two pre-activation convolutions with an identity shortcut, then ``num_blocks`` times [max-pool width 3 stride
    2 (halving the length) -> two pre-activation convolutions -> identity shortcut], global max-pooling, dropout
    (0.5 on the input of the top layer, as in the paper) and a linear classifier.

    Expected effect: about TextCNN's accuracy on short texts (THUCNews reference 91.25), better on long documents
    where depth pays. Cost: 1 + 2 * (num_blocks + 1) convolution layers of 250x250x3 -- several times TextCNN.
    Padding is zeroed before every convolution and excluded from every max-pool, so the logits are those of the
    unpadded text. The depth is fixed by the config (not by the batch's padded length).
    """

    config_class = DPCNNConfig
    base_model_prefix = "dpcnn"

    def __init__(self, config: DPCNNConfig):
        super().__init__(config)
        C = config.num_filters
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.region = nn.Conv1d(config.embedding_dim, C, config.region_size, padding=config.region_size // 2)
        self.blocks = nn.ModuleList(
            [nn.ModuleList([_PreActConv(C, config.norm), _PreActConv(C, config.norm)]) for _ in range(config.num_blocks + 1)]
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(C, config.num_labels)
        self.post_init()
        self._apply_freeze()

    def features(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> torch.Tensor:
        x = self._embed(input_ids, inputs_embeds)
        mask = self._mask(input_ids, attention_mask, x)
        x = (self.embedding_dropout(x) * mask.unsqueeze(-1).to(x.dtype)).transpose(1, 2)  # (B, E, L)
        mf = mask.unsqueeze(1).to(x.dtype)
        x = self.region(x)
        if self.config.region_size % 2 == 0:  # even width: same-length output
            x = x[:, :, : mask.shape[1]]
        x = x * mf
        for i, (c1, c2) in enumerate(self.blocks):
            if i > 0:
                # pool by 1/2 (width 3, stride 2); output j is centred on input 2j, valid iff 2j is a real token
                x = F.max_pool1d(x.masked_fill(mf == 0, float("-inf")), kernel_size=3, stride=2, padding=1)
                mask = mask[:, ::2]
                mf = mask.unsqueeze(1).to(x.dtype)
                x = x.masked_fill(mf == 0, 0.0)
            x = (x + c2(c1(x, mf), mf)) * mf
        return _masked_max(x, mask.unsqueeze(1), dim=2)


# =============================================================================================================
# TextRNN / TextRNN_Att / TextRCNN
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


class TextRNNForSequenceClassification(_BaselinePreTrainedModel):
    """TextRNN: embeddings -> stacked (bi)LSTM/GRU (packed, so padding is skipped) -> pooling (final states,
    max, mean or Zhou et al. 2016 attention) -> dropout -> linear.

    Expected effect: about TextCNN's accuracy on short texts (THUCNews reference: BiLSTM 91.12, with attention
    90.90). Cost: sequential in the length; on CPU the slowest of the baselines per token.
    """

    config_class = TextRNNConfig
    base_model_prefix = "textrnn"

    def __init__(self, config: TextRNNConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        rnn_cls = nn.LSTM if config.rnn_type == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            config.embedding_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            batch_first=True,
            dropout=config.rnn_dropout if config.num_layers > 1 else 0.0,
        )
        out_dim = config.hidden_size * (2 if config.bidirectional else 1)
        self.attention = _AttentionPool(out_dim) if config.pooling == "attention" else None
        self.norm = _FeatureNorm(config.norm, out_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(out_dim, config.num_labels)
        self.post_init()
        self._apply_freeze()

    def features(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> torch.Tensor:
        x = self._embed(input_ids, inputs_embeds)
        mask = self._mask(input_ids, attention_mask, x)
        x = self.embedding_dropout(x)
        out, h_n = _run_rnn(self.rnn, x, mask)
        pooling = self.config.pooling
        if pooling == "last":
            dirs = 2 if self.config.bidirectional else 1
            h = torch.cat([h_n[-dirs + d] for d in range(dirs)], dim=-1)  # last layer, forward (+ backward)
        elif pooling == "max":
            h = _masked_max(out, mask.unsqueeze(-1), dim=1)
        elif pooling == "mean":
            mf = mask.unsqueeze(-1).to(out.dtype)
            h = (out * mf).sum(dim=1) / mf.sum(dim=1)
        else:
            h = self.attention(out, mask)
        return self.norm(h)


class TextRCNNForSequenceClassification(_BaselinePreTrainedModel):
    """Lai et al. (2015) RCNN: a bidirectional RNN gives each word a left and a right context; ``[left; word;
    right]`` goes through ``tanh(W . + b)`` (``latent_size``), then max-pooling over time, dropout and a linear
    classifier. (As in common implementations the context at position i is the RNN state *including* word i.)

    Expected effect: THUCNews reference 91.54, the best of the non-BERT baselines there. Cost: one BiRNN layer plus
    a per-position linear layer.
    """

    config_class = TextRCNNConfig
    base_model_prefix = "textrcnn"

    def __init__(self, config: TextRCNNConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        rnn_cls = nn.LSTM if config.rnn_type == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            config.embedding_dim, config.hidden_size, num_layers=config.num_layers, bidirectional=True, batch_first=True
        )
        self.latent = nn.Linear(2 * config.hidden_size + config.embedding_dim, config.latent_size)
        self.norm = _FeatureNorm(config.norm, config.latent_size, channels_last=True)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.latent_size, config.num_labels)
        self.post_init()
        self._apply_freeze()

    def features(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> torch.Tensor:
        x = self._embed(input_ids, inputs_embeds)
        mask = self._mask(input_ids, attention_mask, x)
        x = self.embedding_dropout(x)
        out, _ = _run_rnn(self.rnn, x, mask)
        H = self.config.hidden_size
        y = torch.tanh(self.norm(self.latent(torch.cat([out[..., :H], x, out[..., H:]], dim=-1))))  # (B, L, latent)
        return _masked_max(y, mask.unsqueeze(-1), dim=1)


MODEL_CLASSES = [
    TextCNNForSequenceClassification,
    FastTextForSequenceClassification,
    DPCNNForSequenceClassification,
    TextRNNForSequenceClassification,
    TextRCNNForSequenceClassification,
]

# saved models carry this file and an auto_map (AutoConfig / AutoModelForSequenceClassification -> these classes)
for _model_cls in MODEL_CLASSES:
    _model_cls.config_class.register_for_auto_class()
    _model_cls.register_for_auto_class("AutoModelForSequenceClassification")
