"""Reliability: overwrite removes only what a run wrote, resume checks the recipe, messages name what to do."""

import json
import shutil
from pathlib import Path

import pytest

from nlp_cv_tricks.cli import main
from nlp_cv_tricks.engine.run_manifest import MANIFEST_NAME, RunManifest, legacy_entries

from conftest import ROOT


def _common(tiny_bert, toy_data, out, *extra):
    return ["train", str(ROOT / "recipes/quickstart.yaml"), f"data.train_file={toy_data['train']}",
            f"data.dev_file={toy_data['dev']}", f"model.name={tiny_bert}", "train.batch_size=8",
            "train.learning_rate=1e-3", "data.max_length=16", "output.report_to=none", "train.progress_bar=false",
            f"output.dir={out}", "train.eval_steps=null", "data.label_names=[negative,positive]", *extra]


def _tree(d):
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))


# ---- part 1: overwrite removes only what a run wrote -----------------------------------------------------------

def test_overwrite_refuses_a_project_folder_that_never_held_a_run(tiny_bert, toy_data, tmp_path, capsys):
    """`train proj/recipe.yaml output.dir=proj output.overwrite=true`: the recipe being trained from and the
    user's logs/diary.txt stay; the run is refused with what to do."""
    proj = tmp_path / "proj"
    (proj / "logs").mkdir(parents=True)
    recipe_text = (ROOT / "recipes/quickstart.yaml").read_text()
    (proj / "recipe.yaml").write_text(recipe_text)
    (proj / "logs" / "diary.txt").write_text("my notes")
    args = _common(tiny_bert, toy_data, proj, "train.max_steps=1", "output.overwrite=true")
    args[1] = str(proj / "recipe.yaml")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "holds no run of this package" in err and "nothing was removed" in err and "output.dir" in err
    assert (proj / "recipe.yaml").read_text() == recipe_text
    assert (proj / "logs" / "diary.txt").read_text() == "my notes"
    assert _tree(proj) == ["logs", "logs/diary.txt", "recipe.yaml"]


def test_overwrite_keeps_a_user_folder_inside_checkpoints(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "run"
    assert main(_common(tiny_bert, toy_data, out, "train.max_steps=4", "train.save_steps=2")) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())["entries"]
    assert manifest == {"best": "tree", "best.old": "tree", "best.tmp": "tree", "checkpoints": "dir",
                        "checkpoints/step_2": "tree", "checkpoints/step_4": "tree", "history.jsonl": "file",
                        "metrics.json": "file", "recipe.yaml": "file", "report.html": "file", "report_files": "tree"}
    (out / "checkpoints" / "my_own").mkdir()
    (out / "checkpoints" / "my_own" / "w.bin").write_text("user weights")
    (out / "notes.txt").write_text("mine")
    assert main(_common(tiny_bert, toy_data, out, "train.max_steps=1", "train.save_steps=1",
                        "output.overwrite=true", "data.dev_file=null")) == 0
    assert (out / "checkpoints" / "my_own" / "w.bin").read_text() == "user weights"
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["my_own", "step_1"]
    assert not (out / "best").exists() and (out / "final").is_dir()
    # the new manifest lists only the new run's outputs; checkpoints/ was there before it, so it is not its own
    entries = json.loads((out / MANIFEST_NAME).read_text())["entries"]
    assert "checkpoints" not in entries and "checkpoints/step_1" in entries and "best" not in entries
    # overwriting again still leaves checkpoints/ (and the user folder in it)
    assert main(_common(tiny_bert, toy_data, out, "train.max_steps=1", "output.overwrite=true",
                        "data.dev_file=null")) == 0
    assert _tree(out / "checkpoints") == ["my_own", "my_own/w.bin"]


def test_overwrite_keeps_a_user_file_in_logs(tiny_bert, toy_data, tmp_path):
    """logs/ created by a run holds the tracker's folder (listed) and maybe a user file (not listed)."""
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    args = [a for a in _common(tiny_bert, toy_data, out, "train.max_steps=1", "data.dev_file=null")
            if a != "output.report_to=none"] + ["output.report_to=tensorboard"]
    assert main(args) == 0
    entries = json.loads((out / MANIFEST_NAME).read_text())["entries"]
    assert entries["logs"] == "dir" and entries["logs/nlp-cv-tricks"] == "tree"
    (out / "logs" / "diary.txt").write_text("mine")
    old_events = sorted((out / "logs" / "nlp-cv-tricks").rglob("events.*"))
    assert main(args + ["output.overwrite=true"]) == 0
    assert (out / "logs" / "diary.txt").read_text() == "mine"
    assert not any(p.exists() for p in old_events) and any((out / "logs" / "nlp-cv-tricks").rglob("events.*"))


def test_overwrite_never_replaces_the_recipe_being_trained_from(tiny_bert, toy_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_common(tiny_bert, toy_data, out, "train.max_steps=1", "data.dev_file=null")) == 0
    edited = (out / "recipe.yaml").read_text().replace("learning_rate: 0.001", "learning_rate: 0.002")
    (out / "recipe.yaml").write_text(edited)
    before = _tree(out)
    args = _common(tiny_bert, toy_data, out, "train.max_steps=1", "data.dev_file=null", "output.overwrite=true")
    args[1] = str(out / "recipe.yaml")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "the recipe being trained from" in err and "cp " in err
    assert (out / "recipe.yaml").read_text() == edited and _tree(out) == before
    # training from a copy works, and the copy outside the run is untouched
    copy = tmp_path / "my_recipe.yaml"
    shutil.copy(out / "recipe.yaml", copy)
    args[1] = str(copy)
    assert main(args) == 0 and copy.read_text() == edited


def test_overwrite_of_a_run_from_an_earlier_version_without_manifest(tiny_bert, toy_data, tmp_path, capsys):
    """A run directory of the previous version (no manifest): recognised by its resolved recipe.yaml and its
    history, and overwritten only when every file there is one that version wrote (checked by content); user
    files and folders inside are named, and nothing is removed until they are moved away."""
    out = tmp_path / "run"
    assert main(_common(tiny_bert, toy_data, out, "train.max_steps=2", "train.save_steps=1",
                        "output.report=false")) == 0
    (out / MANIFEST_NAME).unlink()
    (out / "checkpoints" / "my_own").mkdir()
    (out / "checkpoints" / "step_9").mkdir()  # named like a checkpoint, but not one (no trainer_state.json)
    (out / "logs").mkdir()
    (out / "logs" / "diary.txt").write_text("dear diary")
    assert set(legacy_entries(out)) == {"recipe.yaml", "history.jsonl", "metrics.json", "best", "checkpoints",
                                        "checkpoints/step_1", "checkpoints/step_2"}
    before = _tree(out)
    capsys.readouterr()
    args = _common(tiny_bert, toy_data, out, "train.max_steps=1", "output.overwrite=true", "data.dev_file=null")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "earlier version" in err and "checkpoints/my_own/, checkpoints/step_9/, logs/" in err
    assert "nothing was removed" in err and "Move those out" in err
    assert _tree(out) == before
    # moved away: the old run's outputs go
    shutil.move(out / "logs", tmp_path / "logs")
    shutil.move(out / "checkpoints" / "my_own", tmp_path / "my_own")
    shutil.move(out / "checkpoints" / "step_9", tmp_path / "step_9")
    assert main(args) == 0
    assert not (out / "checkpoints").exists() and not (out / "best").exists() and (out / MANIFEST_NAME).is_file()
    # a hand-written recipe.yaml alone is not a run
    other = tmp_path / "other"
    other.mkdir()
    (other / "recipe.yaml").write_text("train: {epochs: 1}\n")
    (other / "history.jsonl").write_text("{}\n")
    assert legacy_entries(other) is None


def test_manifest_entries_stay_inside_the_run_dir(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"entries": {"../outside": "tree"}}))
    with pytest.raises(FileExistsError, match="not a path inside the run directory"):
        RunManifest.load(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(FileExistsError, match="not a readable run manifest"):
        RunManifest.load(tmp_path)


# ---- part 2: resume checks the recipe ----------------------------------------------------------------------

def _textcnn(tiny_bert, toy_data, out, *extra):
    args = _common(tiny_bert, toy_data, out, "model.name=textcnn", "train.logging_steps=1",
                   "model.kwargs={embedding_dim: 8, num_filters: 4, filter_sizes: [2]}", "train.save_steps=2",
                   "data.dev_file=null", *extra)
    return args


@pytest.fixture()
def stopped_run(tiny_bert, toy_data, tmp_path):
    """A TextCNN run stopped at step 4 (checkpointed) of a longer plan, to be resumed."""
    out = tmp_path / "run"
    assert main(_textcnn(tiny_bert, toy_data, out, "train.max_steps=4")) == 0
    return out


def _snapshot(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_resume_refuses_a_changed_batch_size_with_a_diff(tiny_bert, toy_data, stopped_run, capsys):
    before = _snapshot(stopped_run)
    assert main(_textcnn(tiny_bert, toy_data, stopped_run, "train.max_steps=8", "train.batch_size=16",
                         "train.seed=7", "train.resume_from=latest")) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "train.batch_size: 8 -> 16" in err and "train.seed: 42 -> 7" in err
    assert "train.resume_force=true" in err and "Traceback" not in err
    assert "train.max_steps" not in err.split("train.resume_force")[0]  # a safe change is not among the refused
    assert _snapshot(stopped_run) == before  # refused before anything was touched


def test_resume_refuses_changed_data_labels_and_model(tiny_bert, toy_data, stopped_run, tmp_path, capsys):
    # the same file name, other content (a new vocabulary)
    changed = tmp_path / "train.txt"
    changed.write_text(toy_data["train"].read_text().replace("movie", "cinema"))
    args = _textcnn(tiny_bert, toy_data, stopped_run, "train.max_steps=8", "train.resume_from=latest")
    args = [a if not a.startswith("data.train_file=") else f"data.train_file={changed}" for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "data.train_file (file and content)" in err and "sha256" in err
    # the same file read without the label names: the saved names negative/positive would become 0/1
    assert main(_textcnn(tiny_bert, toy_data, stopped_run, "train.max_steps=8", "train.resume_from=latest",
                         "data.label_names=null")) == 2
    err = capsys.readouterr().err
    assert "data.label_names: [\"negative\", \"positive\"] -> null" in err
    assert "label names (from the data): [\"negative\", \"positive\"] -> [\"0\", \"1\"]" in err
    # model kwargs (another architecture shape)
    assert main(_textcnn(tiny_bert, toy_data, stopped_run, "train.max_steps=8", "train.resume_from=latest",
                         "model.kwargs.num_filters=6")) == 2
    err = capsys.readouterr().err
    assert "model.kwargs.num_filters: 4 -> 6" in err and "Traceback" not in err


def test_resume_force_with_a_new_shape_is_a_clear_error(tiny_bert, toy_data, stopped_run, capsys):
    assert main(_textcnn(tiny_bert, toy_data, stopped_run, "train.max_steps=8", "train.resume_from=latest",
                         "model.kwargs.num_filters=6", "train.resume_force=true")) == 2
    err = capsys.readouterr().err
    assert "does not fit the model or optimizer built from the current recipe" in err and "size mismatch" in err
    assert "Traceback" not in err and "RuntimeError" not in err


def test_resume_safe_changes_pass_and_are_recorded(tiny_bert, toy_data, stopped_run, caplog):
    recipe_before = (stopped_run / "recipe.yaml").read_text()
    with caplog.at_level("INFO"):
        assert main(_textcnn(tiny_bert, toy_data, stopped_run, "train.max_steps=6", "train.logging_steps=2",
                             "train.resume_from=latest", "output.report_to=none")) == 0
    assert "train.max_steps: 4 -> 6" in caplog.text
    assert (stopped_run / "recipe.yaml").read_text() == recipe_before  # the recipe the run started with
    changes = [json.loads(ln) for ln in (stopped_run / "resume_changes.jsonl").read_text().splitlines()]
    assert changes[0]["forced"] is False and changes[0]["step"] == 4
    assert changes[0]["changes"] == {"train.logging_steps": [1, 2], "train.max_steps": [4, 6]}
    state = json.loads((stopped_run / "checkpoints" / "step_6" / "trainer_state.json").read_text())
    assert state["resume_changes"] == changes and state["recipe"]["train"]["max_steps"] == 6
    assert set(state["data_files"]) == {"data.train_file"} and len(state["data_files"]["data.train_file"]["sha256"]) == 64
    assert "resume_changes.jsonl" in json.loads((stopped_run / MANIFEST_NAME).read_text())["entries"]


def test_resume_force_continues_and_records_the_change(tiny_bert, toy_data, stopped_run, caplog):
    recipe_before = (stopped_run / "recipe.yaml").read_text()
    with caplog.at_level("WARNING"):
        assert main(_textcnn(tiny_bert, toy_data, stopped_run, "train.max_steps=6", "train.batch_size=4",
                             "train.resume_from=latest", "train.resume_force=true")) == 0
    assert "train.resume_force=true" in caplog.text and "train.batch_size: 8 -> 4" in caplog.text
    assert (stopped_run / "recipe.yaml").read_text() == recipe_before
    change = json.loads((stopped_run / "resume_changes.jsonl").read_text())
    assert change["forced"] is True and change["changes"]["train.batch_size"] == [8, 4]
    state = json.loads((stopped_run / "checkpoints" / "step_6" / "trainer_state.json").read_text())
    assert state["resume_changes"][0]["changes"]["train.batch_size"] == [8, 4]
    # the next resume compares with what the run now uses (batch size 4): no refusal
    assert main(_textcnn(tiny_bert, toy_data, stopped_run, "train.max_steps=7", "train.batch_size=4",
                         "train.resume_from=latest")) == 0


def test_resume_of_a_checkpoint_from_an_earlier_version(tiny_bert, toy_data, stopped_run, capsys):
    """Checkpoints without a recorded recipe are compared with the run's recipe.yaml."""
    for p in (stopped_run / "checkpoints").glob("step_*/trainer_state.json"):
        state = json.loads(p.read_text())
        for k in ("recipe", "data_files", "label_names", "resume_changes"):
            state.pop(k)
        p.write_text(json.dumps(state))
    assert main(_textcnn(tiny_bert, toy_data, stopped_run, "train.max_steps=8", "train.batch_size=16",
                         "train.resume_from=latest")) == 2
    err = capsys.readouterr().err
    assert "train.batch_size: 8 -> 16" in err and "records no data hashes" in err
    assert main(_textcnn(tiny_bert, toy_data, stopped_run, "train.max_steps=6", "train.resume_from=latest")) == 0


# ---- part 4: the weaker cases -------------------------------------------------------------------------------

def test_label_spellings_that_mix_are_warned(tmp_path, caplog):
    from nlp_cv_tricks.config import DataConfig
    from nlp_cv_tricks.data.text import load_text_classification

    f = tmp_path / "mixed.csv"
    f.write_text("text,label\na b,0\nc d,1\ne f,negative\ng h,positive\ni j,Positive\n")
    with caplog.at_level("WARNING"):
        splits = load_text_classification(DataConfig(train_file=str(f)))
    assert len(splits.label_map) == 5
    assert "mixed.csv: labels that differ only in case or spaces: 'Positive' / 'positive'" in caplog.text
    assert "integer labels (0, 1) next to named ones (Positive, negative, positive)" in caplog.text
    caplog.clear()
    g = tmp_path / "clean.csv"
    g.write_text("text,label\na b,negative\nc d,positive\n")
    with caplog.at_level("WARNING"):
        load_text_classification(DataConfig(train_file=str(g)))
    assert "spelling" not in caplog.text


def test_empty_class_folder_is_warned(tmp_path, caplog):
    from PIL import Image

    from nlp_cv_tricks.data.vision import _load_imagefolder

    for cls in ("ants", "bees"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (4, 4), (i * 50, 0, 0)).save(tmp_path / "train" / cls / f"{i}.png")
    (tmp_path / "train" / "wasps").mkdir()
    with caplog.at_level("WARNING"):
        ds, names = _load_imagefolder(str(tmp_path / "train"), None)
    assert names == ["ants", "bees"]
    assert "class folder 'wasps' holds no images and is left out: the model gets 2 classes" in caplog.text


def test_unknown_model_name_suggests_before_any_hub_call(toy_data, tmp_path, capsys, monkeypatch):
    import transformers

    def no_hub(*a, **k):
        raise AssertionError("the Hub was asked")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", no_hub)
    rc = main(["train", str(ROOT / "recipes/quickstart.yaml"), "model.name=textcnnn",
               f"data.train_file={toy_data['train']}", "data.dev_file=null", f"output.dir={tmp_path / 'o'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "model.name='textcnnn'" in err and "did you mean 'textcnn'?" in err
    assert not (tmp_path / "o").exists()


def test_probes_on_a_textcnn_run_say_what_is_supported(tiny_bert, toy_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_textcnn(tiny_bert, toy_data, out, "train.max_steps=1", "train.save_steps=null")) == 0
    capsys.readouterr()
    for cmd in (["probe-cls", str(out), "--data", str(toy_data["dev"])],
                ["plot-embeddings", str(out), "--data", str(toy_data["dev"]), "--out", str(tmp_path / "p.png")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "no transformer encoder layers to probe" in err and "(supported: albert, bert," in err
        assert len(err) < 800 and "Config" not in err


def test_hardcases_overrides_anywhere_on_the_line(tmp_path):
    from nlp_cv_tricks.cli import build_parser, parse_args_with_overrides

    p = build_parser()
    a = parse_args_with_overrides(p, ["hardcases", "mine", "r.yaml", "--out", "d", "train.epochs=1", "--folds",
                                      "3", "tricks+=fgm"])
    assert a.overrides == ["train.epochs=1", "tricks+=fgm"] and a.folds == 3 and a.out == "d"
    a = parse_args_with_overrides(p, ["hardcases", "retrain", "r.yaml", "data.max_length=8", "--out", "o",
                                      "train.seed=3"])
    assert a.overrides == ["data.max_length=8", "train.seed=3"]
    f = tmp_path / "ann.csv"
    f.write_text("id\n")
    a = parse_args_with_overrides(p, ["hardcases", "import", "r.yaml", "--files", str(f), "train.seed=1",
                                      "--base", "v0"])
    assert a.files == [str(f)] and a.overrides == ["train.seed=1"] and a.base == "v0"
    with pytest.raises(SystemExit):  # an unknown option is still argparse's error
        parse_args_with_overrides(p, ["hardcases", "mine", "r.yaml", "--out", "d", "--bogus"])


def test_every_cli_option_has_help():
    import argparse

    from nlp_cv_tricks.cli import build_parser

    missing = []

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in action._choices_actions}
                for name, sub in action.choices.items():
                    if not helps.get(name):
                        missing.append(f"{path} {name} (the command)")
                    walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and (not action.help or action.help == argparse.SUPPRESS):
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "nlp-cv-tricks")
    assert missing == []


def test_stale_temp_files_of_an_interrupted_save_are_removed(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "run"
    assert main(_textcnn(tiny_bert, toy_data, out, "train.max_steps=4")) == 0
    ck4 = out / "checkpoints" / "step_4"
    (ck4 / "trainer_state.json").unlink()  # killed while step 4 was saved
    (ck4 / ".tmpAb3xY9").write_bytes(b"\0" * 1000)  # safetensors' temporary file
    (out / ".history.jsonl.k2j3h4g5.tmp").write_text("half")  # an atomic write's temporary file
    (out / ".tmpnotes").write_text("not ours")  # user files of other names stay
    (ck4 / "my.tmp").write_text("not ours either")
    assert main(_textcnn(tiny_bert, toy_data, out, "train.max_steps=4", "train.resume_from=latest")) == 0
    assert not (ck4 / ".tmpAb3xY9").exists() and not (out / ".history.jsonl.k2j3h4g5.tmp").exists()
    assert (out / ".tmpnotes").is_file() and (ck4 / "my.tmp").is_file() and (ck4 / "trainer_state.json").is_file()
    # the next save of a checkpoint folder cleans it too
    from nlp_cv_tricks.engine.run_manifest import remove_stale_temp_files

    (ck4 / ".tmpZZZZZZ").write_text("x")
    assert [p.name for p in remove_stale_temp_files(ck4)] == [".tmpZZZZZZ"]


def test_predict_ignores_a_label_column_it_does_not_need(tiny_bert, toy_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_textcnn(tiny_bert, toy_data, out, "train.max_steps=2", "train.save_steps=null")) == 0
    data = tmp_path / "new.csv"
    data.write_text("text,label\nthe movie was good,neutral\nawful plot,\n")
    pred = tmp_path / "p.jsonl"
    assert main(["predict", str(out), "--data", str(data), "--out", str(pred)]) == 0
    rows = [json.loads(ln) for ln in pred.read_text().splitlines()]
    assert len(rows) == 2 and all("label" not in r and r["pred_label"] in ("negative", "positive") for r in rows)
    # eval needs the labels: still an error naming the row
    assert main(["eval", str(out), "--data", str(data)]) == 2
    assert "label 'neutral' never seen" in capsys.readouterr().err


def test_jsonl_errors_name_the_line_and_datasets_says_nothing(tmp_path, capfd):
    from nlp_cv_tricks.config import DataConfig
    from nlp_cv_tricks.data.text import DataError, load_split

    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n{"text": "c" "label": 0}\n')
    with pytest.raises(DataError, match=r"bad.jsonl: line 4: not valid JSON \(Expecting ',' delimiter"):
        load_split(str(f), DataConfig())
    assert "Failed to load JSON" not in capfd.readouterr().err  # datasets' own ERROR line is not printed


def test_header_only_csv(tmp_path):
    from nlp_cv_tricks.config import DataConfig
    from nlp_cv_tricks.data.text import DataError, load_text_classification

    f = tmp_path / "h.csv"
    f.write_text("text,label\n")
    with pytest.raises(DataError, match="h.csv: the file has a header but no rows"):
        load_text_classification(DataConfig(train_file=str(f)))
    f.write_text("")
    with pytest.raises(DataError, match="h.csv: the file is empty"):
        load_text_classification(DataConfig(train_file=str(f)))


def test_section_typo_suggests_the_section(tmp_path):
    from nlp_cv_tricks.config import RecipeError, load_recipe

    r = tmp_path / "r.yaml"
    r.write_text("trian:\n  epochs: 2\n")
    with pytest.raises(RecipeError, match="unknown recipe section 'trian'; did you mean 'train'"):
        load_recipe(r)
    with pytest.raises(RecipeError, match="unknown recipe key 'trian.epochs'; did you mean 'train.epochs'"):
        load_recipe(ROOT / "recipes/quickstart.yaml", ["trian.epochs=3"])


def test_one_example_class_is_named(tmp_path):
    from nlp_cv_tricks.config import DataConfig
    from nlp_cv_tricks.data.text import DataError, load_text_classification

    f = tmp_path / "one.txt"
    f.write_text("0 a b\n0 c d\n0 e f\n1 g h\n1 i j\n2 k l\n")
    cfg = DataConfig(train_file=str(f), format="kim2014", dev_fraction=0.3, label_names=["neg", "pos", "neutral"])
    with pytest.raises(DataError, match="class 'neutral' has a single example"):
        load_text_classification(cfg)


def test_ddp_refused_output_dir_stops_every_process(tiny_bert, toy_data, tmp_path):
    """With two processes a refused output directory stops both with the message (no process waits forever)."""
    import os
    import subprocess
    import sys

    from conftest import tiny_recipe
    from nlp_cv_tricks.config import save_recipe

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "notes.txt").write_text("mine")
    save_recipe(tiny_recipe(tiny_bert, toy_data, proj, "train.max_steps=1", "output.overwrite=true"),
                tmp_path / "r.yaml")
    launcher = Path(sys.executable).with_name("accelerate")
    proc = subprocess.run(
        [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
         "no", "--dynamo_backend", "no", "--main_process_port", "29541", str(ROOT / "scripts" / "train.py"),
         str(tmp_path / "r.yaml")],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
        timeout=300, cwd=ROOT)
    assert proc.returncode != 0
    assert proc.stderr.count("holds no run of this package") >= 2  # both processes say why
    assert (proj / "notes.txt").read_text() == "mine" and sorted(p.name for p in proj.iterdir()) == ["notes.txt"]
