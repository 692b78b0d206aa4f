"""FastText (Joulin et al. 2016) as a self-contained Hugging Face model: the layers of ``layers_fasttext.py`` on
``transformers.PreTrainedModel``.

Imports only ``torch``, ``transformers`` and its siblings ``layers_fasttext`` and ``modeling_base``: it is copied next
to every saved model of this family (``register_for_auto_class`` writes an ``auto_map``), so the model loads
without this package::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

from .layers_fasttext import FastTextConfig, FastTextLayers
from .modeling_base import _BaselinePreTrainedModel

__all__ = ["FastTextConfig", "FastTextForSequenceClassification"]


class FastTextForSequenceClassification(FastTextLayers, _BaselinePreTrainedModel):
    """FastText as a ``PreTrainedModel`` (the network: :class:`FastTextLayers`)."""

    config_class = FastTextConfig
    base_model_prefix = "fasttext"


# saved models carry this file (and the files it imports) and an auto_map
FastTextForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
