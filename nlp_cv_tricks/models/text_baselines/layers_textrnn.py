"""TextRNN and TextRNN + attention pooling: its config and its layers (``TextRNNLayers``).

Imports only ``torch``, ``transformers``' configuration and output classes and its sibling ``layers_base``: the
package trains the layers as a plain ``nn.Module`` (``modules.py``), ``modeling_textrnn.py`` puts them on a
``PreTrainedModel``, and both files are copied next to every saved model of this family (its ``config.json`` has
an ``auto_map``), so the model loads without this package::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

import torch
from torch import nn

from .layers_base import TextBaselineConfig, _BaselineLayers, _FeatureNorm, _masked_max, _AttentionPool, _run_rnn

__all__ = ["TextRNNConfig", "TextRNNLayers"]


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


class TextRNNLayers(_BaselineLayers):
    """TextRNN: embeddings -> stacked (bi)LSTM/GRU (packed, so padding is skipped) -> pooling (final states,
    max, mean or Zhou et al. 2016 attention) -> dropout -> linear.

    Expected effect: about TextCNN's accuracy on short texts (THUCNews reference: BiLSTM 91.12, with attention
    90.90). Cost: sequential in the length; on CPU the slowest of the baselines per token.
    """


    def _build(self, config: TextRNNConfig) -> None:
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


# a saved model's config.json names this file in its auto_map (the model class: modeling_textrnn.py); what
# TextRNNConfig.register_for_auto_class() sets, without the 0.25 s import of transformers.models.auto it makes to check
# the name
TextRNNConfig._auto_class = "AutoConfig"
