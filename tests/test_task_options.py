"""Task options live in the recipe's ``task_options``; ``model.kwargs``, their old spelling, is still read."""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path

import pytest
import yaml

from nlp_cv_tricks import config
from nlp_cv_tricks.config import (RecipeError, apply_overrides, load_recipe, recipe_from_dict, recipe_to_dict,
                                  split_task_options, task_option_key)
from nlp_cv_tricks.engine.resume_check import RESUME_CHANGES_FILE, ResumeError, recipe_changes
from nlp_cv_tricks.tasks.image_classification import TASK_OPTIONS as IMAGE_TASK_OPTIONS
from nlp_cv_tricks.tasks import image_classification as vt
from nlp_cv_tricks.tasks.image_classification import ImageOptions
from nlp_cv_tricks.tasks.long_text import LongTextOptions
from nlp_cv_tricks.tasks.question_answering import QAOptions

RECIPES = sorted((Path(__file__).parents[1] / "recipes").glob("*.yaml"))
OPTIONS = {"long-text-classification": LongTextOptions, "question-answering": QAOptions,
           "image-classification": ImageOptions}
LEGACY = {"long-text-classification": LongTextOptions.LEGACY_KEYS, "question-answering": QAOptions.LEGACY_KEYS,
          "image-classification": IMAGE_TASK_OPTIONS}  # the options each task read from model.kwargs before


def _task_options(recipe):
    return split_task_options(recipe.task_options, recipe.model.kwargs, LEGACY.get(recipe.task, ()))[0]


@pytest.fixture(autouse=True)
def _fresh_notes(monkeypatch):
    monkeypatch.setattr(config, "_NOTED", set())  # each test sees the once-per-key notes afresh


def _old_spelling(raw: dict) -> dict:
    """The recipe as it was written before ``task_options``: every task option under ``model.kwargs``."""
    raw = copy.deepcopy(raw)
    opts = raw.pop("task_options", None) or {}
    if opts:
        model = raw.setdefault("model", {})
        model["kwargs"] = {**(model.get("kwargs") or {}), **opts}
    return raw


def _resolved(recipe):
    cls = OPTIONS.get(recipe.task)
    return dataclasses.asdict(cls.from_recipe(recipe)) if cls else None


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_shipped_recipe_resolves_to_the_same_options_in_both_spellings(path, caplog):
    with caplog.at_level(logging.WARNING, logger="nlp_cv_tricks.config"):
        new = load_recipe(path)
    assert "deprecated" not in caplog.text  # the shipped recipes use the new spelling
    assert not set(LEGACY.get(new.task, ())) & set(new.model.kwargs), "a task option left in model.kwargs"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    old = recipe_from_dict(_old_spelling(raw), source=str(path))
    assert _resolved(old) == _resolved(new)
    assert old.model.kwargs == {**new.model.kwargs, **new.task_options}
    assert recipe_changes(recipe_to_dict(old), new) == ({}, {})  # a run saved with the old spelling resumes
    if new.task in OPTIONS and raw.get("task_options"):
        assert new.task_options == raw["task_options"]


def test_legacy_keys_are_options_of_their_task():
    long_fields = {f.name for f in dataclasses.fields(LongTextOptions)}
    qa_fields = {f.name for f in dataclasses.fields(QAOptions)} - {"max_length"}  # max_length is data.max_length
    assert set(LongTextOptions.LEGACY_KEYS) == long_fields
    assert set(QAOptions.LEGACY_KEYS) == qa_fields
    assert set(IMAGE_TASK_OPTIONS) == {"image", "layer_decay", "freeze_stages"}
    assert not set(IMAGE_TASK_OPTIONS) & set(vt.MODEL_ARGS)  # the timm model's arguments stay in model.kwargs


LONG = {"task": "long-text-classification", "data": {"train_file": "x.csv"}}


def test_old_spelling_is_read_with_one_note_per_key(caplog):
    raw = {**LONG, "model": {"kwargs": {"strategy": "tail", "split_seed": 7}}}
    with caplog.at_level(logging.WARNING, logger="nlp_cv_tricks.config"):
        r = recipe_from_dict(raw, source="old.yaml")
        assert LongTextOptions.from_recipe(r).strategy == "tail"
        assert LongTextOptions.from_recipe(r).split_seed == 7
    assert _task_options(r) == {"strategy": "tail", "split_seed": 7}
    notes = [m for m in caplog.messages if "deprecated" in m]
    assert len(notes) == 2, notes  # strategy and split_seed, once each
    assert "old.yaml: model.kwargs.strategy" in notes[0] and "task_options.strategy" in notes[0]
    # a Recipe built in code with the old spelling reads the same
    built = config.Recipe(task="long-text-classification")
    built.model.kwargs = {"strategy": "head+tail", "head_tokens": 64}
    opts = LongTextOptions.from_recipe(built)
    assert (opts.strategy, opts.head_tokens) == ("head+tail", 64)


def test_an_option_in_both_places_is_an_error_naming_both():
    raw = {**LONG, "task_options": {"strategy": "head"}, "model": {"kwargs": {"strategy": "tail"}}}
    with pytest.raises(RecipeError) as e:
        recipe_from_dict(raw, source="both.yaml")
    msg = str(e.value)
    assert msg.startswith("both.yaml: ") and "task_options.strategy" in msg and "model.kwargs.strategy" in msg


def test_model_arguments_stay_in_model_kwargs():
    raw = {"task": "image-classification", "data": {"train_file": "x.csv"},
           "model": {"name": "resnet10t", "kwargs": {"drop_rate": 0.1, "freeze_stages": 1,
                                                     "image": {"input_size": 32}}}}
    r = recipe_from_dict(raw)
    assert _task_options(r) == {"freeze_stages": 1, "image": {"input_size": 32}}
    opts = ImageOptions.from_recipe(r)
    assert (opts.drop_rate, opts.freeze_stages, opts.image) == (0.1, 1, {"input_size": 32})
    # a model argument under task_options (or a task option's typo) is pointed to where it belongs
    r = recipe_from_dict({**raw, "model": {"name": "resnet10t"}, "task_options": {"drop_rate": 0.1}})
    with pytest.raises(ValueError, match=r"task_options: unknown option 'drop_rate'; it belongs under model.kwargs"):
        ImageOptions.from_recipe(r)
    r = recipe_from_dict({**raw, "model": {"name": "resnet10t"}, "task_options": {"image": {"hflips": 0.5}}})
    with pytest.raises(ValueError, match=r"task_options.image: unknown option 'hflips'; did you mean 'hflip'"):
        ImageOptions.from_recipe(r)
    r = recipe_from_dict({**raw, "model": {"name": "resnet10t"}, "task_options": {"freeze_stages": -1}})
    with pytest.raises(ValueError, match=r"task_options.freeze_stages=-1; expected an integer >= 0"):
        ImageOptions.from_recipe(r)


def test_unknown_task_option_names_the_key_and_the_valid_ones():
    r = recipe_from_dict({**LONG, "task_options": {"stratgy": "tail"}}, source="r.yaml")
    with pytest.raises(RecipeError) as e:
        LongTextOptions.from_recipe(r)
    msg = str(e.value)
    assert "r.yaml: task_options" in msg and "'stratgy'" in msg and "did you mean 'strategy'" in msg
    assert "head_tokens" in msg  # the valid keys
    qa = {"task": "question-answering", "data": {"train_file": "x.json", "max_length": 128}}
    with pytest.raises(RecipeError) as e:
        QAOptions.from_recipe(recipe_from_dict({**qa, "task_options": {"doc_strid": 3}}))
    assert "task_options.doc_strid" in str(e.value) and "did you mean 'doc_stride'" in str(e.value)
    assert "qa_metric" in str(e.value)
    with pytest.raises(RecipeError, match=r"task_options.doc_stride=100 must be in"):
        QAOptions.from_recipe(recipe_from_dict({**qa, "task_options": {"doc_stride": 100}}))
    with pytest.raises(RecipeError, match=r"task_options.strategy='middle'; expected one of"):
        LongTextOptions.from_recipe(recipe_from_dict({**LONG, "task_options": {"strategy": "middle"}}))
    with pytest.raises(RecipeError, match=r"task text-classification has no task options"):
        config.check_task_option_keys({"strategy": "head"}, (), "text-classification")


def test_overrides_take_either_spelling():
    path = Path(__file__).parents[1] / "recipes" / "long_hyperpartisan_head.yaml"
    assert load_recipe(path, ["task_options.strategy=head+tail"]).task_options["strategy"] == "head+tail"
    r = load_recipe(path, ["model.kwargs.strategy=tail"])  # the old spelling goes where the option lives
    assert r.task_options["strategy"] == "tail" and "strategy" not in r.model.kwargs
    with pytest.raises(RecipeError, match=r"did you mean 'task_options.strategy'"):
        load_recipe(path, ["task_option.strategy=tail"])
    # an old-spelling recipe mapping takes a new-spelling override (ablate --vary task_options.x=...)
    old = _old_spelling(yaml.safe_load(path.read_text(encoding="utf-8")))
    data = apply_overrides(old, ["task_options.strategy=tail"])
    assert data["task_options"]["strategy"] == "tail" and "strategy" not in data["model"]["kwargs"]
    image = {"task_options": {"image": {"input_size": 32}}, "model": {"kwargs": {"model_args": {}}}}
    assert task_option_key("model.kwargs.image.format", image) == "task_options.image.format"
    assert task_option_key("model.kwargs.model_args", image) == "model.kwargs.model_args"
    assert task_option_key("model.kwargs.strategy", {}) == "model.kwargs.strategy"


def test_ablate_varies_a_task_option():
    from nlp_cv_tricks.experiments.variants import build_variants

    path = Path(__file__).parents[1] / "recipes" / "long_hyperpartisan_head.yaml"
    variants = build_variants(path, ["task_options.strategy=head,head+tail"])
    assert [v.overrides for v in variants] == [[], ["task_options.strategy=head"], ["task_options.strategy=head+tail"]]
    assert load_recipe(path, variants[2].overrides).task_options["strategy"] == "head+tail"


def test_resume_reads_a_saved_recipe_of_the_old_spelling_as_unchanged():
    path = Path(__file__).parents[1] / "recipes" / "vision_mnist.yaml"
    current = load_recipe(path)
    saved = _old_spelling(recipe_to_dict(current))  # what a run of an earlier version saved
    assert "image" in saved["model"]["kwargs"] and "task_options" not in saved
    assert recipe_changes(saved, current) == ({}, {})
    changed = load_recipe(path, ["task_options.image.hflip=0.5"])
    refused, safe = recipe_changes(saved, changed)
    assert list({**refused, **safe}) == ["task_options.image.hflip"]


def test_doctor_remedies_name_the_new_key():
    from nlp_cv_tricks.diagnostics.doctor import prescribe
    from nlp_cv_tricks.diagnostics.doctor.records import Diagnosis

    path = Path(__file__).parents[1] / "recipes" / "vision_hymenoptera.yaml"
    old = _old_spelling(recipe_to_dict(load_recipe(path)))  # a run saved before task_options
    under = prescribe(Diagnosis("underfitting", None, {}, {}), old)
    overrides = [rx.override for rx in under if rx.override]
    assert "task_options.image.re_prob=0.0" in overrides  # read from the old spelling, named in the new
    assert "task_options.image.auto_augment=null" in overrides
    assert not [o for o in overrides if o.startswith("model.kwargs.image")]
    new = recipe_to_dict(load_recipe(path, ["task_options.image.re_prob=0", "task_options.image.auto_augment=null"]))
    over = [rx for rx in prescribe(Diagnosis("overfitting", None, {}, {}), new) if rx.override]
    assert {"task_options.image.re_prob=0.25", "task_options.image.auto_augment=rand-m9-mstd0.5"} <= {
        rx.override for rx in over}
    assert all(rx.available for rx in over if rx.override.startswith("task_options."))


def test_a_run_saved_with_the_old_spelling_resumes_under_the_new_one(tmp_path):
    """End to end: a long-text run written with model.kwargs (as earlier versions saved it) resumes from its
    checkpoint under the recipe's task_options spelling without a recipe change."""
    from conftest import shared_data

    from nlp_cv_tricks.runner import build_trainer

    def recipe(spelling: str, max_steps: int, resume=None, strategy="tail"):
        opts = {"strategy": strategy, "split_seed": 3}
        return recipe_from_dict({
            "name": "t", "task": "long-text-classification",
            "data": {"train_file": str(shared_data("hyperpartisan")), "max_length": 32, "max_train_samples": 8,
                     "max_eval_samples": 4},
            "model": {"name": "minilm-l6", **({"kwargs": opts} if spelling == "old" else {})},
            **({"task_options": opts} if spelling == "new" else {}),
            "train": {"max_steps": max_steps, "batch_size": 4, "eval_batch_size": 4, "progress_bar": False,
                      "cpu": True, "save_steps": 1, "logging_steps": 1, "resume_from": resume},
            "output": {"dir": str(tmp_path / "run"), "report_to": "none", "report": False},
        })

    first = build_trainer(recipe("old", 1)).fit()
    saved = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text(encoding="utf-8"))
    assert saved["model"]["kwargs"]["strategy"] == "tail"  # the old spelling, as written
    assert first.global_step == 1
    with pytest.raises(ResumeError, match=r"task_options.strategy: 'tail' -> 'head'"):  # a real change is one
        build_trainer(recipe("new", 2, resume="latest", strategy="head")).fit()
    resumed = build_trainer(recipe("new", 2, resume="latest")).fit()
    assert resumed.global_step == 2
    import json

    changes = [json.loads(line) for line in
               (tmp_path / "run" / RESUME_CHANGES_FILE).read_text(encoding="utf-8").splitlines() if line.strip()]
    keys = {k for c in changes for k in c["changes"]}
    assert "train.max_steps" in keys  # the safe change this resume made, recorded
    assert not [k for k in keys if k.startswith(("task_options", "model.kwargs"))], keys  # the spelling is none
