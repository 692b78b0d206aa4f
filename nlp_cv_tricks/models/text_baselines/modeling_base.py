"""The ``PreTrainedModel`` base of the text baselines: the shared layers behaviour of ``layers_base`` on
``transformers.PreTrainedModel``, so a saved baseline loads through ``AutoModelForSequenceClassification``.

Imports only ``torch``, ``transformers`` and its sibling ``layers_base``: it is copied next to every saved baseline
with the family's files.
"""

from __future__ import annotations

from transformers import PreTrainedModel

from .layers_base import TextBaselineConfig, _BaselineLayers

__all__ = ["TextBaselineConfig"]


class _BaselinePreTrainedModel(_BaselineLayers, PreTrainedModel):
    """A baseline family's layers (its ``*Layers`` mixin, listed first in the subclass's bases) as a
    ``PreTrainedModel``: ``PreTrainedModel.__init__``, then the family's ``_build(config)``, then the weight init
    (``post_init``) and the embedding freeze."""

    config_class = TextBaselineConfig
    base_model_prefix = "baseline"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _no_split_modules: list = []

    def __init__(self, config: TextBaselineConfig):
        super().__init__(config)
        self._build(config)
        self.post_init()
        self._apply_freeze()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """``PreTrainedModel.from_pretrained`` that re-applies ``freeze_embeddings`` (loading replaces parameters)."""
        out = super().from_pretrained(*args, **kwargs)
        model = out[0] if isinstance(out, tuple) else out
        model._apply_freeze()
        return out
