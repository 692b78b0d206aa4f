"""DPCNN (Johnson & Zhang 2017) as a self-contained Hugging Face model: the layers of ``layers_dpcnn.py`` on
``transformers.PreTrainedModel``.

Imports only ``torch``, ``transformers`` and its siblings ``layers_dpcnn`` and ``modeling_base``: it is copied next
to every saved model of this family (``register_for_auto_class`` writes an ``auto_map``), so the model loads
without this package::

    AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

from .layers_dpcnn import DPCNNConfig, DPCNNLayers
from .modeling_base import _BaselinePreTrainedModel

__all__ = ["DPCNNConfig", "DPCNNForSequenceClassification"]


class DPCNNForSequenceClassification(DPCNNLayers, _BaselinePreTrainedModel):
    """DPCNN as a ``PreTrainedModel`` (the network: :class:`DPCNNLayers`)."""

    config_class = DPCNNConfig
    base_model_prefix = "dpcnn"


# saved models carry this file (and the files it imports) and an auto_map
DPCNNForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
