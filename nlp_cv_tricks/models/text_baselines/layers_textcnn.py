"""TextCNN (Kim 2014): its config and its layers (``TextCNNLayers``).

Imports only ``torch``, ``transformers``' configuration and output classes and its sibling ``layers_base``: the
package trains the layers as a plain ``nn.Module`` (``modules.py``), ``modeling_textcnn.py`` puts them on a
``PreTrainedModel``, and both files are copied next to every saved model of this family (its ``config.json`` has
an ``auto_map``), so the model loads without this package::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers_base import TextBaselineConfig, _BaselineLayers, _FeatureNorm, _masked_max

__all__ = ["TextCNNConfig", "TextCNNLayers"]


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


# TextCNN
# =============================================================================================================
class TextCNNLayers(_BaselineLayers):
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


    def _build(self, config: TextCNNConfig) -> None:
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


# a saved model's config.json names this file in its auto_map (the model class: modeling_textcnn.py); what
# TextCNNConfig.register_for_auto_class() sets, without the 0.25 s import of transformers.models.auto it makes to check
# the name
TextCNNConfig._auto_class = "AutoConfig"
