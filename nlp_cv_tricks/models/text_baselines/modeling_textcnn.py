"""TextCNN (Kim 2014) as a self-contained Hugging Face model: the layers of ``layers_textcnn.py`` on
``transformers.PreTrainedModel``.

Imports only ``torch``, ``transformers`` and its siblings ``layers_textcnn`` and ``modeling_base``: it is copied next
to every saved model of this family (``register_for_auto_class`` writes an ``auto_map``), so the model loads
without this package::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

from .layers_textcnn import TextCNNConfig, TextCNNLayers
from .modeling_base import _BaselinePreTrainedModel

__all__ = ["TextCNNConfig", "TextCNNForSequenceClassification"]


class TextCNNForSequenceClassification(TextCNNLayers, _BaselinePreTrainedModel):
    """TextCNN as a ``PreTrainedModel`` (the network: :class:`TextCNNLayers`)."""

    config_class = TextCNNConfig
    base_model_prefix = "textcnn"


# saved models carry this file (and the files it imports) and an auto_map
TextCNNForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
