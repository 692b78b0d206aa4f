"""TextRCNN (Lai et al. 2015) as a self-contained Hugging Face model: the layers of ``layers_textrcnn.py`` on
``transformers.PreTrainedModel``.

Imports only ``torch``, ``transformers`` and its siblings ``layers_textrcnn`` and ``modeling_base``: it is copied next
to every saved model of this family (``register_for_auto_class`` writes an ``auto_map``), so the model loads
without this package::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

from .layers_textrcnn import TextRCNNConfig, TextRCNNLayers
from .modeling_base import _BaselinePreTrainedModel

__all__ = ["TextRCNNConfig", "TextRCNNForSequenceClassification"]


class TextRCNNForSequenceClassification(TextRCNNLayers, _BaselinePreTrainedModel):
    """TextRCNN as a ``PreTrainedModel`` (the network: :class:`TextRCNNLayers`)."""

    config_class = TextRCNNConfig
    base_model_prefix = "textrcnn"


# saved models carry this file (and the files it imports) and an auto_map
TextRCNNForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
