"""Text classification (``task: text-classification``): one text (or a text pair) and one label per row."""

from __future__ import annotations

from ..config import Recipe


def build_text_classification(recipe: Recipe, accelerator) -> dict:
    from ..data.text import load_text_classification, tokenize_dataset
    from ..engine.task import ClassificationTask
    from ..models.factory import build_classifier, check_model_name

    check_model_name(recipe.model.name)  # a mistyped built-in name fails before the data is read

    with accelerator.main_process_first():
        splits = load_text_classification(recipe.data)
    texts = splits.train[recipe.data.text_column][:]
    model, tokenizer = build_classifier(recipe.model, splits.label_map.id2label, texts)
    # the raw label values of the files, so eval/predict read files that use them (saved in config.json)
    model.config.nct_raw_labels = list(splits.label_map.raw)
    with accelerator.main_process_first():
        train = tokenize_dataset(splits.train, tokenizer, recipe.data)
        dev = tokenize_dataset(splits.dev, tokenizer, recipe.data) if splits.dev is not None else None
    return {
        "model": model,
        "tokenizer": tokenizer,
        "train_dataset": train,
        "eval_dataset": dev,
        "task": ClassificationTask(splits.label_map.names),
    }
