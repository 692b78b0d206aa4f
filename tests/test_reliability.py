"""Reliability: overwrite removes only what a run wrote, resume checks the recipe, messages name what to do."""

import json
import shutil

import pytest
import yaml

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
                        "metrics.json": "file", "recipe.yaml": "file"}
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


def test_overwrite_of_a_run_from_an_earlier_version_without_manifest(tiny_bert, toy_data, tmp_path):
    """A run directory of the previous version (no manifest): recognised by its resolved recipe.yaml and its
    history; only that version's outputs go, checked by content; user files and folders inside stay."""
    out = tmp_path / "run"
    assert main(_common(tiny_bert, toy_data, out, "train.max_steps=2", "train.save_steps=1")) == 0
    (out / MANIFEST_NAME).unlink()
    (out / "checkpoints" / "my_own").mkdir()
    (out / "checkpoints" / "step_9").mkdir()  # named like a checkpoint, but not one (no trainer_state.json)
    (out / "logs").mkdir()
    (out / "logs" / "diary.txt").write_text("dear diary")
    assert set(legacy_entries(out)) == {"recipe.yaml", "history.jsonl", "metrics.json", "best", "checkpoints",
                                        "checkpoints/step_1", "checkpoints/step_2"}
    assert main(_common(tiny_bert, toy_data, out, "train.max_steps=1", "output.overwrite=true",
                        "data.dev_file=null")) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["my_own", "step_9"]
    assert (out / "logs" / "diary.txt").read_text() == "dear diary"
    assert not (out / "best").exists() and (out / MANIFEST_NAME).is_file()
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
    assert "does not fit the model built from the current recipe" in err and "size mismatch" in err
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
