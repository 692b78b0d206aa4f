"""Inputs a user really has, read or refused with a sentence that says what to do: CSV/TSV fields longer than
Python's default csv limit (131,072 characters), binary or cut-off report inputs, files in another encoding for
eval/predict, the different things given to eval instead of a model, a repeated annotation file imported on
another base version, and the help of ablate/lr-sweep."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from conftest import make_tiny_bert, tiny_recipe, toy_sentences, write_kim
from nlp_cv_tricks.cli import main
from nlp_cv_tricks.config import DataConfig
from nlp_cv_tricks.data.text import load_text_classification

torch.set_num_threads(1)
MB = 1_000_000


# ---- long fields -------------------------------------------------------------------------------------------------
def test_csv_and_tsv_fields_of_a_megabyte_are_read(tmp_path):
    """A quoted CSV field of 1 MB (commas, quotes and line breaks inside) and a 1 MB TSV field are read exactly;
    Python's csv module alone refuses fields over 131,072 characters."""
    long_text = ("word, \"quoted\" and\nmore " * (MB // 24 + 1))[:MB]
    assert len(long_text) == MB > csv.field_size_limit()
    p = tmp_path / "long.csv"
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerows([["text", "label"], ["short one", "0"], [long_text, "1"], ["another", "0"]])
    splits = load_text_classification(DataConfig(train_file=str(p)))
    assert splits.train["text"][:] == ["short one", long_text, "another"]
    assert [splits.label_map.raw[i] for i in splits.train["labels"][:]] == ["0", "1", "0"]
    assert csv.field_size_limit() == 131_072  # the process-wide limit is left as it was

    t = tmp_path / "long.tsv"
    tsv_text = long_text.replace("\n", " ")
    t.write_text(f"text\tlabel\nshort\t0\n{tsv_text}\t1\n", encoding="utf-8")
    splits = load_text_classification(DataConfig(train_file=str(t)))
    assert splits.train["text"][:] == ["short", tsv_text]


def test_broken_quoting_after_a_long_field_still_names_its_line(tmp_path):
    p = tmp_path / "broken.csv"
    p.write_text('text,label\n"' + "x" * 200_000 + '",1\nok,0\n"unclosed,1\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken.csv: line 4: broken CSV quoting"):
        load_text_classification(DataConfig(train_file=str(p)))


# ---- report inputs ---------------------------------------------------------------------------------------------
def _history_run(tmp_path) -> Path:
    import yaml

    from test_diagnostics import _still_rising

    run = tmp_path / "run"
    run.mkdir()
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _still_rising(
        [0.839, 0.873, 0.884], [0.37, 0.31, 0.29])))
    (run / "recipe.yaml").write_text(yaml.safe_dump({"train": {"epochs": 1, "learning_rate": 5e-5}}))
    return run


def test_report_of_a_binary_history_names_the_file(tmp_path, capsys):
    run = _history_run(tmp_path)
    (run / "history.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'history.jsonl'}: not a metrics history" in err and "binary" in err
    assert "Traceback" not in err and "UnicodeDecodeError" not in err


def test_report_skips_a_cut_off_last_history_line_with_a_note(tmp_path, capsys):
    run = _history_run(tmp_path)
    full = (run / "history.jsonl").read_text()
    with open(run / "history.jsonl", "a") as f:
        f.write('{"step": 310, "epoch": 1.03, "train/lo')  # a live run, mid-write
    assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"{run / 'history.jsonl'}:{full.count(chr(10)) + 1}: the last line is cut off" in err
    html = (run / "report.html").read_text()
    assert "the last line is cut off" in html and "Fit regime: not_converged" in html
    # a bad line before the end is still refused, with its line
    (run / "history.jsonl").write_text('{"step": 1, "train/lo\n' + full)
    assert main(["report", str(run)]) == 2
    assert "history.jsonl:1: not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["truth.txt", "truth.json"])
def test_binary_true_labels_file_is_named(tmp_path, name):
    from nlp_cv_tricks.report import ReportError
    from nlp_cv_tricks.report.build import read_true_labels

    p = tmp_path / name
    p.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<i8'}\xff\xfe\x00")
    with pytest.raises(ReportError, match=rf"{name}: not .*binary file"):
        read_true_labels(p, ["negative", "positive"], 3)


# ---- eval / predict --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    """A tiny (untrained) text classifier with label names, saved as eval/predict read it."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    d = tmp_path_factory.mktemp("clf")
    bert = make_tiny_bert(d / "bert")
    cfg = BertConfig.from_pretrained(bert, num_labels=2, id2label={0: "negative", 1: "positive"},
                                     label2id={"negative": 0, "positive": 1})
    torch.manual_seed(0)
    out = d / "model"
    BertForSequenceClassification(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(bert).save_pretrained(out)
    return out


def test_eval_and_predict_read_another_encoding_with_encoding_option(classifier, tmp_path, capsys):
    data = tmp_path / "latin.csv"
    data.write_bytes("text,label\ngood café,positive\nbad crème,negative\n".encode("latin-1"))
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(classifier), "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "latin.csv: line 2: not valid utf-8 text" in err and "--encoding" in err
    assert main(["predict", str(classifier), "--data", str(data), "--out", str(out), "--encoding", "latin-1"]) == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["good café", "bad crème"]
    capsys.readouterr()
    assert main(["eval", str(classifier), "--data", str(data), "--encoding", "latin-1"]) == 0
    assert json.loads(capsys.readouterr().out)["data"] == str(data)
    assert main(["eval", str(classifier), "--data", str(data), "--encoding", "latin-9x"]) == 2
    assert "--encoding 'latin-9x': not a text encoding" in capsys.readouterr().err


def test_eval_says_which_kind_of_folder_it_was_given(classifier, tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("text,label\ngood,positive\n")
    run = tmp_path / "run"
    (run / "checkpoints" / "step_4").mkdir(parents=True)
    (run / "checkpoints" / "step_4" / "trainer_state.json").write_text("{}")
    (run / "history.jsonl").write_text('{"step": 4, "train/loss": 0.5}\n')

    def err(path) -> str:
        assert main(["eval", str(path), "--data", str(data)]) == 2
        return capsys.readouterr().err

    assert f"{tmp_path / 'nope'}: no such directory" in err(tmp_path / "nope")
    assert "is a file; give the model directory that holds it" in err(data)
    e = err(run)
    assert f"{run} is a run directory without a saved model (no best/ nor final/" in e
    assert "train.resume_from=latest" in e
    e = err(run / "checkpoints" / "step_4")
    assert "step_4 is a training checkpoint" in e and f"the run {run} has no saved model" in e
    assert f"{run / 'history.jsonl'}" in e
    assert "is a run's checkpoints folder" in err(run / "checkpoints")
    # with a saved model, the checkpoint message says which command evaluates it
    import shutil

    shutil.copytree(classifier, run / "best")
    assert f"`nlp-cv-tricks eval {run}`" in err(run / "checkpoints" / "step_4")
    assert main(["eval", str(run), "--data", str(data)]) == 0


# ---- hard cases: the same file on another base ----------------------------------------------------------------
def test_same_annotation_file_imports_on_v0_next_to_the_version_that_holds_it(tmp_path):
    from nlp_cv_tricks.hardcases import ImportValidationError, VersionStore, import_annotations

    rows = toy_sentences(20, 3)
    data = {"train": write_kim(tmp_path / "train.txt", rows), "dev": write_kim(tmp_path / "dev.txt", rows[:6])}
    recipe = tiny_recipe(make_tiny_bert(tmp_path / "bert"), data, tmp_path / "run")
    ann = tmp_path / "a.csv"
    ann.write_text(f"id,new_label\n0,{['negative', 'positive'][1 - rows[0][0]]}\n")
    vd = tmp_path / "versions"
    assert import_annotations(ann, recipe, vd)["version"] == "v0001"
    with pytest.raises(ImportValidationError, match="already imported as version v0001"):
        import_annotations(ann, recipe, vd)  # on latest (v0001): its answers are already there
    rep = import_annotations(ann, recipe, vd, base="v0")  # a new branch from the original: they are not
    assert rep["version"] == "v0002" and rep["parent"] is None and rep["counts"]["relabel"] == 1
    store = VersionStore(vd, recipe)
    assert store.train_file("v0002").read_text() == store.train_file("v0001").read_text()
    with pytest.raises(ImportValidationError, match="already imported as version v0002"):
        import_annotations(ann, recipe, vd, base="v0002")


# ---- help --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("verb, option", [("ablate", "--vary"), ("lr-sweep", "--start")])
def test_ablate_and_lr_sweep_help_has_one_usage_block(verb, option, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.count("usage:") == 1 and option in out and f"nlp-cv-tricks {verb} RECIPE" in out
