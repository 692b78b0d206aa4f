"""Built-in recipes by name: a bare name that is not a file is the built-in recipe, a path is a file, the catalog
lists every recipe of ``recipes/``, and a name that is neither gets the nearest names. Run from a directory that
is not the repository, as an installed package is."""

import pytest
import yaml

from nlp_cv_tricks.cli import main
from nlp_cv_tricks.config import RecipeError, load_recipe, resolve_recipe
from nlp_cv_tricks.data.root import DataNotFoundError, resolve_data_paths
from nlp_cv_tricks.recipe_catalog import catalog
from nlp_cv_tricks.utils.bundled import bundle_root, bundled_recipes

from conftest import ROOT

RECIPE_FILES = sorted(p.stem for p in (ROOT / "recipes").glob("*.yaml"))


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working directory outside the repository, with no data root."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NLP_CV_TRICKS_DATA", raising=False)
    return tmp_path


def test_every_recipe_of_the_repository_is_built_in():
    assert bundle_root() == ROOT  # a clone: the repository's recipes/ and data/ are the bundle
    assert list(bundled_recipes()) == RECIPE_FILES
    assert len(RECIPE_FILES) >= 21


def test_a_bare_name_is_the_built_in_recipe(elsewhere):
    assert resolve_recipe("quickstart") == ROOT / "recipes" / "quickstart.yaml"
    assert resolve_recipe("quickstart.yaml") == ROOT / "recipes" / "quickstart.yaml"
    r = load_recipe("quickstart", ["train.max_steps=3"])
    assert r.name == "quickstart" and r.train.max_steps == 3
    assert r.source == str(ROOT / "recipes" / "quickstart.yaml")


def test_a_file_of_that_name_wins(elsewhere):
    mine = elsewhere / "quickstart"
    mine.write_text((ROOT / "recipes" / "quickstart.yaml").read_text().replace("name: quickstart", "name: mine"))
    assert resolve_recipe("quickstart").resolve() == mine.resolve()  # the path as given
    assert load_recipe("quickstart").name == "mine"


def test_the_quick_start_finds_its_bundled_data_from_any_directory(elsewhere):
    r = resolve_data_paths(load_recipe("quickstart"))
    assert r.data.train_file == str(ROOT / "data" / "sst2" / "train.txt")
    assert r.data.dev_file == str(ROOT / "data" / "sst2" / "dev.txt")
    # a copy in the working directory is read first
    (elsewhere / "data" / "sst2").mkdir(parents=True)
    (elsewhere / "data" / "sst2" / "train.txt").write_text("1 good\n0 bad\n")
    r = resolve_data_paths(load_recipe("quickstart"))
    assert r.data.train_file == "data/sst2/train.txt"
    assert r.data.dev_file == str(ROOT / "data" / "sst2" / "dev.txt")


def test_only_the_bundled_data_folder_is_searched(elsewhere):
    r = load_recipe("quickstart", ["data.train_file=recipes/quickstart.yaml"])  # exists under the bundle root
    with pytest.raises(DataNotFoundError):
        resolve_data_paths(r)


def test_a_missing_public_dataset_says_where_to_point_and_the_hub_line(elsewhere):
    with pytest.raises(DataNotFoundError) as e:
        resolve_data_paths(load_recipe("mr_textcnn"))
    msg = str(e.value)
    assert "dataset 'kim2014' not found" in msg
    assert "data.root=DIR" in msg and "NLP_CV_TRICKS_DATA" in msg
    assert "Hub: data.format=hub data.hub_name=cornell-movie-review-data/rotten_tomatoes" in msg


@pytest.mark.parametrize("name, near", [("quikstart", "'quickstart'"), ("vision_mnst", "'vision_mnist'"),
                                         ("mnist", "'vision_mnist'"), ("thucnews_textcnn.yml", "'thucnews_textcnn'")])
def test_an_unknown_name_gets_the_nearest_names(elsewhere, name, near):
    with pytest.raises(RecipeError) as e:
        resolve_recipe(name)
    msg = str(e.value)
    assert f"recipe {name!r} is neither a file nor a built-in recipe; did you mean {near}" in msg
    assert "quickstart, " in msg or ", quickstart" in msg  # the full list follows


def test_a_missing_path_is_a_missing_file(elsewhere):
    with pytest.raises(RecipeError, match=r"recipe file 'recipes/quickstart.yaml' does not exist; a built-in "
                                          r"recipe has that name: use 'quickstart'"):
        resolve_recipe("recipes/quickstart.yaml")
    with pytest.raises(RecipeError, match=r"recipe file 'my/own.yaml' does not exist$"):
        load_recipe("my/own.yaml")
    with pytest.raises(RecipeError, match="is a directory"):
        resolve_recipe(str(elsewhere))


def test_the_catalog_describes_every_recipe():
    entries = {e.name: e for e in catalog()}
    assert list(entries) == RECIPE_FILES
    for e in entries.values():
        raw = yaml.safe_load(e.path.read_text(encoding="utf-8"))
        assert e.task == raw.get("task", "text-classification")
        assert e.summary and e.data
    q = entries["quickstart"]
    assert q.data == "bundled (data/sst2/)"
    assert q.summary.startswith("MiniLM fine-tuned on the bundled SST-2")
    assert "CPU" in q.cost
    assert entries["thucnews_textcnn"].data == "thucnews/ under the data root"
    assert entries["mr_textcnn"].data == "kim2014/ under the data root (or Hub)"
    assert entries["mrc_xquad_en"].cost.endswith("hours on 2 CPU cores.")  # a continued Cost: line is joined


def test_cli_recipes_lists_and_shows(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in RECIPE_FILES:
        assert f"\n{name} " in "\n" + out
    assert "bundled (data/sst2/)" in out and "recipes show NAME" in out
    assert main(["recipes", "show", "quickstart"]) == 0
    assert capsys.readouterr().out == (ROOT / "recipes" / "quickstart.yaml").read_text(encoding="utf-8")


def test_cli_unknown_names_get_a_did_you_mean(elsewhere, capsys):
    assert main(["recipes", "show", "quikstart"]) == 2
    assert "did you mean 'quickstart'?" in capsys.readouterr().err
    assert main(["train", "quikstart", "train.max_steps=1"]) == 2
    assert "did you mean 'quickstart'?" in capsys.readouterr().err


def test_every_verb_that_takes_a_recipe_takes_a_name(elsewhere, monkeypatch):
    import nlp_cv_tricks.cli.ablate as ablate

    seen = []
    monkeypatch.setattr(ablate, "_cmd_ablate", lambda args: seen.append(args.recipe) or 0)
    assert main(["ablate", "sst2_textcnn", "--vary", "tricks=+fgm"]) == 0
    assert seen == [str(ROOT / "recipes" / "sst2_textcnn.yaml")]
