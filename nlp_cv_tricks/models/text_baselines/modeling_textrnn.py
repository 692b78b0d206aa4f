"""TextRNN and TextRNN + attention pooling as a self-contained Hugging Face model: the layers of ``layers_textrnn.py`` on
``transformers.PreTrainedModel``.

Imports only ``torch``, ``transformers`` and its siblings ``layers_textrnn`` and ``modeling_base``: it is copied next
to every saved model of this family (``register_for_auto_class`` writes an ``auto_map``), so the model loads
without this package::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

from .layers_textrnn import TextRNNConfig, TextRNNLayers
from .modeling_base import _BaselinePreTrainedModel

__all__ = ["TextRNNConfig", "TextRNNForSequenceClassification"]


class TextRNNForSequenceClassification(TextRNNLayers, _BaselinePreTrainedModel):
    """TextRNN as a ``PreTrainedModel`` (the network: :class:`TextRNNLayers`)."""

    config_class = TextRNNConfig
    base_model_prefix = "textrnn"


# saved models carry this file (and the files it imports) and an auto_map
TextRNNForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
