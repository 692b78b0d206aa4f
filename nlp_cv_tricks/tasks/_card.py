"""The model-card facts every task with a transformers model shares: where the weights come from (a Hub
checkpoint, a local one, random initialisation, or one of the package's own from-scratch baselines)."""

from __future__ import annotations

from ..engine.task import CardModel
from ..utils.publish import public_model_name, public_path

__all__ = ["BASELINE_NAMES", "transformers_card_model"]

BASELINE_NAMES = {"nct-textcnn": "TextCNN (Kim 2014)", "nct-fasttext": "fastText (Joulin et al. 2016)",
                  "nct-dpcnn": "DPCNN (Johnson & Zhang 2017)", "nct-textrnn": "TextRNN",
                  "nct-textrcnn": "TextRCNN (Lai et al. 2015)"}


def transformers_card_model(config: dict, recipe: dict) -> CardModel:
    """Library, architecture and origin of a transformers model saved with ``config``; no inputs yet (the task
    adds how it prepares them)."""
    model = recipe.get("model") or {}
    model_type = str(config.get("model_type", ""))
    hub_id, shown = public_model_name(model.get("name"))
    scratch = bool(model.get("from_scratch"))
    vectors = None
    if model_type in BASELINE_NAMES:
        vectors = config.get("pretrained_vectors") or None
        scratch, hub_id = True, None
        origin = (f"architecture `{model_type}`, trained from scratch"
                  + (f", word vectors initialised from `{public_path(vectors.get('path')) or 'a vector file'}`"
                     f" (token coverage {vectors.get('token_coverage')})" if vectors else "")
                  + "; its tokenizer was built from the training data")
    elif scratch:
        origin = f"the architecture of {shown if shown.startswith('a local') else f'`{shown}`'} with randomly " \
                 "initialised weights (trained from scratch)"
        hub_id = None
    else:
        origin = (f"fine-tuned from {shown}" if shown and shown.startswith("a local checkpoint") else
                  f"fine-tuned from `{shown}`" if shown else "fine-tuned from a pretrained checkpoint")
    return CardModel(library="transformers", architecture=model_type or "transformers model",
                     own_code=model_type.startswith("nct-") or model_type == "chunk_pool", base_model=hub_id,
                     origin=origin, from_scratch=scratch, vectors=vectors)
