"""Registration of the package's own architectures with the ``transformers`` Auto classes.

``import nlp_cv_tricks`` registers nothing (it stays cheap); the package's loaders call
:func:`register_auto_classes` before they load a saved model, and so can a user:

    import nlp_cv_tricks
    nlp_cv_tricks.register_auto_classes()
    AutoModelForSequenceClassification.from_pretrained("runs/x/best")   # a TextCNN, FastText, chunk-and-pool ...
"""

from __future__ import annotations

_DONE = False


def register_auto_classes() -> None:
    """Text baselines, chunk-and-pool and the MRC heads with ``AutoConfig`` / ``AutoModelFor*`` (idempotent)."""
    global _DONE
    if _DONE:
        return
    from . import long, mrc_heads, text_baselines

    text_baselines.register_auto_classes()
    mrc_heads.register_auto_classes()
    long.register_auto_classes()
    _DONE = True
