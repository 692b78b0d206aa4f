"""DPCNN (Johnson & Zhang 2017): its config and its layers (``DPCNNLayers``).

Imports only ``torch``, ``transformers``' configuration and output classes and its sibling ``layers_base``: the
package trains the layers as a plain ``nn.Module`` (``modules.py``), ``modeling_dpcnn.py`` puts them on a
``PreTrainedModel``, and both files are copied next to every saved model of this family (its ``config.json`` has
an ``auto_map``), so the model loads without this package::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .layers_base import TextBaselineConfig, _BaselineLayers, _FeatureNorm, _masked_max

__all__ = ["DPCNNConfig", "DPCNNLayers"]


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


class DPCNNLayers(_BaselineLayers):
    """Johnson & Zhang (2017) DPCNN: region embedding (a width-3 convolution of the word vectors to 250 maps),
    two pre-activation convolutions with an identity shortcut, then ``num_blocks`` times [max-pool width 3 stride
    2 (halving the length) -> two pre-activation convolutions -> identity shortcut], global max-pooling, dropout
    (0.5 on the input of the top layer, as in the paper) and a linear classifier.

    Expected effect: about TextCNN's accuracy on short texts (THUCNews reference 91.25), better on long documents
    where depth pays. Cost: 1 + 2 * (num_blocks + 1) convolution layers of 250x250x3 -- several times TextCNN.
    Padding is zeroed before every convolution and excluded from every max-pool, so the logits are those of the
    unpadded text. The depth is fixed by the config (not by the batch's padded length).
    """


    def _build(self, config: DPCNNConfig) -> None:
        C = config.num_filters
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.region = nn.Conv1d(config.embedding_dim, C, config.region_size, padding=config.region_size // 2)
        self.blocks = nn.ModuleList(
            [nn.ModuleList([_PreActConv(C, config.norm), _PreActConv(C, config.norm)]) for _ in range(config.num_blocks + 1)]
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(C, config.num_labels)

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


# a saved model's config.json names this file in its auto_map (the model class: modeling_dpcnn.py); what
# DPCNNConfig.register_for_auto_class() sets, without the 0.25 s import of transformers.models.auto it makes to check
# the name
DPCNNConfig._auto_class = "AutoConfig"
