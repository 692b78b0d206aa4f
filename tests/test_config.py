import pytest
import yaml

from nlp_cv_tricks.config import RecipeError, load_recipe, recipe_to_dict, save_recipe

from conftest import ROOT

QUICK = ROOT / "recipes" / "quickstart.yaml"


def test_quickstart_loads_typed():
    r = load_recipe(QUICK)
    assert r.model.name == "minilm-l6"
    assert isinstance(r.train.learning_rate, float) and r.train.learning_rate == 5e-5
    assert r.data.label_names == ["negative", "positive"]


def test_override_types_and_lists():
    r = load_recipe(QUICK, ["train.learning_rate=3e-5", "train.batch_size=16", "train.max_grad_norm=null",
                            "tricks=[label_smoothing]", "tricks+=grad_norm_logging", "data.group_by_length=true",
                            "model.config_overrides.hidden_dropout_prob=0.2"])
    # PyYAML reads 3e-5 as a string; the dataclass type makes it a float
    assert r.train.learning_rate == 3e-5 and isinstance(r.train.learning_rate, float)
    assert r.train.batch_size == 16 and r.train.max_grad_norm is None
    assert r.tricks == ["label_smoothing", "grad_norm_logging"]
    assert r.data.group_by_length is True
    assert r.model.config_overrides == {"hidden_dropout_prob": 0.2}
    # YAML 1.1 would read `no` as False; string fields keep the text
    r = load_recipe(QUICK, ["train.mixed_precision=no", "model.name=on", "data.dev_file=null"])
    assert (r.train.mixed_precision, r.model.name, r.data.dev_file) == ("no", "on", None)


def test_unknown_key_names_nearest():
    with pytest.raises(RecipeError, match=r"unknown recipe key 'train.learning_rte'.*'train.learning_rate'"):
        load_recipe(QUICK, ["train.learning_rte=1e-4"])
    with pytest.raises(RecipeError, match=r"'trian.epochs'.*'train.epochs'"):
        load_recipe(QUICK, ["trian.epochs=2"])


def test_unknown_key_in_file(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("data: {train_file: x.txt, formt: csv}\n")
    with pytest.raises(RecipeError, match=r"r.yaml: unknown recipe key 'data.formt'; did you mean 'data.format'"):
        load_recipe(p)


def test_bad_types_and_choices():
    with pytest.raises(RecipeError, match=r"train.batch_size: expected int, got 'big'"):
        load_recipe(QUICK, ["train.batch_size=big"])
    with pytest.raises(RecipeError, match=r"train.mixed_precision='fp32' is not one of"):
        load_recipe(QUICK, ["train.mixed_precision=fp32"])
    with pytest.raises(RecipeError, match=r"train.epochs must be >= 1"):
        load_recipe(QUICK, ["train.epochs=0"])
    with pytest.raises(RecipeError, match="must look like key=value"):
        load_recipe(QUICK, ["train.epochs"])


def test_unknown_trick_is_reported():
    from nlp_cv_tricks.tricks import build_tricks

    with pytest.raises(ValueError, match=r"unknown trick 'label_smothing'; did you mean 'label_smoothing'"):
        build_tricks(["label_smothing"])
    with pytest.raises(ValueError, match=r"unknown option 'epsilom'; did you mean 'epsilon'"):
        build_tricks([{"label_smoothing": {"epsilom": 0.1}}])


def test_callbacks_key_and_observers_still_accepted_under_tricks(caplog, monkeypatch):
    import logging

    from nlp_cv_tricks import runner

    from nlp_cv_tricks.callbacks.grad_norm import GradNormLogging
    from nlp_cv_tricks.callbacks.train_eval import TrainEval
    from nlp_cv_tricks.report.run_report import RunReport
    from nlp_cv_tricks.runner import build_plugins, build_tricks
    from nlp_cv_tricks.tricks.adversarial import FGM

    r = load_recipe(QUICK, ["callbacks+=train_eval"])
    assert r.tricks == [] and r.callbacks == [{"grad_norm_logging": {"every": 50}}, "train_eval"]
    with pytest.raises(RecipeError, match="callbacks: expected list"):
        load_recipe(QUICK, ["callbacks=train_eval"])
    plugins = build_plugins(load_recipe(QUICK, ["tricks=[fgm]", "callbacks=[train_eval]"]))
    assert [type(p) for p in plugins] == [FGM, TrainEval, RunReport]  # the order the trainer calls them in
    assert [p.name for p in build_plugins(r, report=False)] == ["grad_norm_logging", "train_eval"]
    # a recipe written before callbacks: existed: the observer runs in its place, with a one-line note
    monkeypatch.setattr(runner, "_NOTED", set())  # the note comes once per name and process
    with caplog.at_level(logging.WARNING, logger="nlp_cv_tricks.runner"):
        old = build_tricks([{"grad_norm_logging": {"every": 5}}, "fgm"])
        build_tricks(["grad_norm_logging"])
    assert [type(p) for p in old] == [GradNormLogging, FGM] and old[0].every == 5
    notes = [m.getMessage() for m in caplog.records if "grad_norm_logging" in m.getMessage()]
    assert len(notes) == 1 and "list it under callbacks:" in notes[0] and "\n" not in notes[0]
    with pytest.raises(ValueError, match="unknown trick 'train_evl'; did you mean 'train_eval'"):
        build_tricks(["train_evl"])
    with pytest.raises(ValueError, match="'fgm' appears twice"):
        build_plugins(load_recipe(QUICK, ["tricks=[fgm]", "callbacks=[]"]), [FGM()])


def test_resume_takes_observers_moved_from_tricks_to_callbacks_as_no_change():
    from nlp_cv_tricks.engine.resume_check import recipe_changes

    saved = recipe_to_dict(load_recipe(QUICK, ["callbacks=[]", "tricks=[fgm, {grad_norm_logging: {every: 50}}]"]))
    refused, _ = recipe_changes(saved, load_recipe(QUICK, ["tricks=[fgm]"]))
    assert refused == {}
    refused, _ = recipe_changes(saved, load_recipe(QUICK, ["tricks=[rdrop]"]))
    assert set(refused) == {"tricks", "callbacks"}  # a trick that changed is still refused


def test_save_roundtrip(tmp_path):
    r = load_recipe(QUICK, ["train.seed=7"])
    save_recipe(r, tmp_path / "recipe.yaml")
    again = load_recipe(tmp_path / "recipe.yaml")
    assert recipe_to_dict(again) == recipe_to_dict(r)
    assert yaml.safe_load((tmp_path / "recipe.yaml").read_text())["train"]["seed"] == 7


def test_a_bad_command_line_value_is_blamed_on_the_command_line():
    from nlp_cv_tricks.config import RecipeError, load_recipe

    recipe = ROOT / "recipes" / "quickstart.yaml"
    with pytest.raises(RecipeError, match=r"^command line \(train.epochs=abc\): train.epochs: expected int"):
        load_recipe(recipe, ["train.epochs=abc"])
    with pytest.raises(RecipeError, match=r"^command line \(train.mixed_precision=fp8\): train.mixed_precision='fp8'"):
        load_recipe(recipe, ["train.mixed_precision=fp8"])
