"""TextRCNN (Lai et al. 2015): its config and its layers (``TextRCNNLayers``).

Imports only ``torch``, ``transformers``' configuration and output classes and its sibling ``layers_base``: the
package trains the layers as a plain ``nn.Module`` (``modules.py``), ``modeling_textrcnn.py`` puts them on a
``PreTrainedModel``, and both files are copied next to every saved model of this family (its ``config.json`` has
an ``auto_map``), so the model loads without this package::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

import torch
from torch import nn

from .layers_base import TextBaselineConfig, _BaselineLayers, _FeatureNorm, _masked_max, _run_rnn

__all__ = ["TextRCNNConfig", "TextRCNNLayers"]


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


class TextRCNNLayers(_BaselineLayers):
    """Lai et al. (2015) RCNN: a bidirectional RNN gives each word a left and a right context; ``[left; word;
    right]`` goes through ``tanh(W . + b)`` (``latent_size``), then max-pooling over time, dropout and a linear
    classifier. (As in common implementations the context at position i is the RNN state *including* word i.)

    Expected effect: THUCNews reference 91.54, the best of the non-BERT baselines there. Cost: one BiRNN layer plus
    a per-position linear layer.
    """


    def _build(self, config: TextRCNNConfig) -> None:
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

    def features(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> torch.Tensor:
        x = self._embed(input_ids, inputs_embeds)
        mask = self._mask(input_ids, attention_mask, x)
        x = self.embedding_dropout(x)
        out, _ = _run_rnn(self.rnn, x, mask)
        H = self.config.hidden_size
        y = torch.tanh(self.norm(self.latent(torch.cat([out[..., :H], x, out[..., H:]], dim=-1))))  # (B, L, latent)
        return _masked_max(y, mask.unsqueeze(-1), dim=1)


# a saved model's config.json names this file in its auto_map (the model class: modeling_textrcnn.py); what
# TextRCNNConfig.register_for_auto_class() sets, without the 0.25 s import of transformers.models.auto it makes to check
# the name
TextRCNNConfig._auto_class = "AutoConfig"
