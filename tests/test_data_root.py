"""Recipes find their data: relative data paths are read from the current directory, else from the data root
(data.root, else NLP_CV_TRICKS_DATA, else ../shared/data); a missing dataset fails before any work with an
error that says what was tried, how to point at the data and where the public data comes from."""

import shlex
from pathlib import Path

import pytest

from nlp_cv_tricks.config import load_recipe
from nlp_cv_tricks.data.root import DATA_ENV, DataNotFoundError, recipe_data_source, resolve_data_paths

from conftest import SHARED_DATA, shared_data

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """work/ (the current directory) beside shared/data, plus two other data folders; each holds kim/a.txt
    with a different first line, so the test can tell which one was read."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    for name in ("shared/data", "env_root", "recipe_root"):
        d = tmp_path / name / "kim"
        d.mkdir(parents=True)
        (d / "a.txt").write_text(f"0 from {name}\n1 second line\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("# Data: a toy set from somewhere public\n#   (second line of the source)\n"
                      "# Hub: data.format=hub data.hub_name=someone/toy\n"
                      "name: t\ndata:\n  train_file: kim/a.txt\n  format: kim2014\n")
    return tmp_path, recipe


def _read(recipe_path, *overrides):
    r = resolve_data_paths(load_recipe(recipe_path, list(overrides)))
    return Path(r.data.train_file).read_text().splitlines()[0]


def test_resolution_order_root_then_env_then_default(layout, monkeypatch):
    tmp, recipe = layout
    assert _read(recipe) == "0 from shared/data"  # ../shared/data from the current directory
    monkeypatch.setenv(DATA_ENV, str(tmp / "env_root"))
    assert _read(recipe) == "0 from env_root"
    assert _read(recipe, f"data.root={tmp / 'recipe_root'}") == "0 from recipe_root"
    # a relative data.root is taken from the current directory, like the command line's other paths
    assert _read(recipe, "data.root=../recipe_root") == "0 from recipe_root"
    # a path that exists from the current directory wins (files given on the command line, data/sst2)
    (tmp / "work" / "kim").mkdir()
    (tmp / "work" / "kim" / "a.txt").write_text("0 from work\n1 x\n")
    assert _read(recipe) == "0 from work"
    # absolute paths are used as they are
    assert _read(recipe, f"data.train_file={tmp / 'shared/data/kim/a.txt'}") == "0 from shared/data"


def test_old_recipes_with_shared_data_prefix_keep_working(layout, monkeypatch):
    tmp, recipe = layout
    old = ["data.train_file=../shared/data/kim/a.txt"]
    assert _read(recipe, *old) == "0 from shared/data"  # as before: relative to the current directory
    monkeypatch.chdir(tmp)  # no ../shared/data from here: the prefix means "the data root"
    monkeypatch.setenv(DATA_ENV, str(tmp / "env_root"))
    assert _read(recipe, *old) == "0 from env_root"


def test_saved_recipe_keeps_the_paths_as_written(layout):
    tmp, recipe = layout
    r = load_recipe(recipe)
    resolved = resolve_data_paths(r)
    assert r.data.train_file == "kim/a.txt" and resolved.data.train_file == str(Path("../shared/data/kim/a.txt"))


def test_missing_dataset_error_says_what_was_tried_and_what_to_do(layout, monkeypatch):
    tmp, recipe = layout
    monkeypatch.setenv(DATA_ENV, str(tmp / "nowhere"))
    with pytest.raises(DataNotFoundError) as e:
        resolve_data_paths(load_recipe(recipe, ["data.train_file=kim2014/stsa.binary.train"]))
    msg = str(e.value)
    assert msg.startswith(f"{recipe}: data.train_file='kim2014/stsa.binary.train': dataset 'kim2014' not found")
    assert "kim2014/stsa.binary.train  (from the current directory)" in msg
    assert f"{tmp / 'nowhere' / 'kim2014' / 'stsa.binary.train'}  (under the data root, from ${DATA_ENV})" in msg
    assert "data.root=DIR" in msg and f"export {DATA_ENV}=DIR" in msg
    assert "Data: a toy set from somewhere public" in msg and "(second line of the source)" in msg
    assert "Hub: data.format=hub data.hub_name=someone/toy" in msg
    monkeypatch.delenv(DATA_ENV)
    (tmp / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp / "a" / "b")  # no ../shared/data from here, no variable: no data root at all
    with pytest.raises(DataNotFoundError, match=r"no data root: data.root is not set, \$NLP_CV_TRICKS_DATA is not set"):
        resolve_data_paths(load_recipe(recipe))


def test_training_fails_on_missing_data_before_any_work(layout, monkeypatch, tmp_path):
    from nlp_cv_tricks.runner import build_trainer

    tmp, recipe = layout
    out = tmp / "run"
    r = load_recipe(recipe, ["data.train_file=thucnews/train.txt", "data.root=../nowhere", f"output.dir={out}",
                             "output.report_to=none", "model.name=textcnn"])
    with pytest.raises(DataNotFoundError, match="dataset 'thucnews' not found"):
        build_trainer(r)
    assert not out.exists()


def test_hub_recipes_skip_the_file_paths_and_model_paths_resolve(layout, monkeypatch):
    tmp, recipe = layout
    r = resolve_data_paths(load_recipe(recipe, ["data.format=hub", "data.hub_name=someone/toy",
                                                "data.train_file=not/here.txt"]))
    assert r.data.train_file == "not/here.txt"  # not read: the data come from the Hub
    with pytest.raises(DataNotFoundError, match=r"model.kwargs.vectors_vocab='kim/vocab.txt'"):
        resolve_data_paths(load_recipe(recipe, ["model.kwargs.pretrained_vectors=kim/a.txt",
                                                "model.kwargs.vectors_vocab=kim/vocab.txt"]))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_names_its_data_source_and_its_hub_override_is_valid(path, monkeypatch):
    """Each recipe header says where its data come from; a Hub line's overrides are valid recipe keys that
    switch the recipe off its local files (checked offline: nothing is downloaded)."""
    r = load_recipe(path)
    source = recipe_data_source(r)
    assert source and source[0].startswith("Data:"), f"{path.name}: no '# Data:' line in the header"
    hub = [i for i, s in enumerate(source) if s.startswith("Hub:")]
    if not hub:
        return
    text = " ".join(s.strip() for s in source[hub[0]:])[len("Hub:"):]
    words = shlex.split(text.split("(")[0])
    overrides = [w for w in words if "=" in w and not w.startswith("or")]
    hub_recipe = load_recipe(path, overrides)
    assert hub_recipe.data.format == "hub" and hub_recipe.data.hub_name
    monkeypatch.setenv(DATA_ENV, str(Path("/nonexistent-data-root")))
    resolve_data_paths(hub_recipe)  # no local file is needed any more


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_finds_its_data_under_the_shared_folder(path, monkeypatch):
    shared_data()
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(DATA_ENV, str(SHARED_DATA))
    r = resolve_data_paths(load_recipe(path))
    for p in (r.data.train_file, r.data.dev_file, r.data.label_names_file, r.model.kwargs.get("pretrained_vectors")):
        assert p is None or Path(p).exists(), p
