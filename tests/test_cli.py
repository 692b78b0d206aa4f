"""The command line: train → eval → predict → push --dry-run, and the errors users see."""

import csv
import json

import pytest
import yaml

from nlp_cv_tricks.cli import main
from nlp_cv_tricks.hub import files_to_upload, model_card

from conftest import ROOT


@pytest.fixture(scope="module")
def trained(tiny_bert, toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    rc = main(["train", str(ROOT / "recipes/quickstart.yaml"), f"data.train_file={toy_data['train']}",
               f"data.dev_file={toy_data['dev']}", f"model.name={tiny_bert}", "train.epochs=3", "train.batch_size=8",
               "train.learning_rate=1e-3", "train.eval_steps=null", "data.max_length=16", "output.report_to=none",
               "train.progress_bar=false", f"output.dir={out}", "tricks=[{label_smoothing: {epsilon: 0.1}}]"])
    assert rc == 0
    return out


def test_train_prints_where_and_how(trained, capsys):
    # the summary was printed by the fixture's run; the run dir has everything
    assert (trained / "best" / "model.safetensors").exists()
    recipe = yaml.safe_load((trained / "recipe.yaml").read_text())
    assert recipe["tricks"] == [{"label_smoothing": {"epsilon": 0.1}}]


def test_eval_matches_training_eval(trained, toy_data, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["eval", str(trained), "--data", str(toy_data["dev"]), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    saved = json.loads((trained / "best" / "eval_metrics.json").read_text())
    assert m["accuracy"] == pytest.approx(saved["eval/accuracy"])
    assert m["n"] == 64 and m["accuracy"] > 0.9
    # --out is never overwritten silently
    assert main(["eval", str(trained), "--data", str(toy_data["dev"]), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_predict_jsonl_and_csv(trained, tmp_path):
    data = tmp_path / "new.csv"
    data.write_text("id,text\na7,the movie was good\nb9,awful plot really\n")
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(trained / "best"), "--data", str(data), "--out", str(out), "--format", "csv"]) == 0
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r["pred_label"] for r in rows] == ["positive", "negative"]
    assert [r["id"] for r in rows] == ["a7", "b9"]  # the input's other columns travel with the predictions
    for r in rows:
        assert r["prob/negative"] + r["prob/positive"] == pytest.approx(1.0, abs=1e-5)
        assert r["pred_prob"] == max(r["prob/negative"], r["prob/positive"])
    out_csv = tmp_path / "pred.csv"
    assert main(["predict", str(trained), "--data", str(data), "--out", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert rows[0]["text"] == "the movie was good" and rows[0]["pred_label"] == "positive"


def test_predict_keeps_the_pair_text_and_refuses_a_labels_column(trained, tmp_path, capsys):
    pair = tmp_path / "pair.csv"
    pair.write_text("id,text,text2\na7,the movie was good,really\n")
    out = tmp_path / "pair.jsonl"
    assert main(["predict", str(trained), "--data", str(pair), "--out", str(out), "--text-pair-column", "text2"]) == 0
    row = json.loads(out.read_text())
    assert (row["id"], row["text"], row["text_pair"]) == ("a7", "the movie was good", "really")
    # a column named "labels" would be taken for the encoded labels: refused with the file and what to do
    bad = tmp_path / "labels.csv"
    bad.write_text("text,labels\ngood movie,pos\n")
    assert main(["predict", str(trained), "--data", str(bad), "--out", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "labels.csv: has a column named 'labels'" in err and "data.label_column=labels" in err
    assert not (tmp_path / "x.jsonl").exists()


def test_cli_errors_name_the_problem(trained, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence,label\nhi,1\n")
    assert main(["eval", str(trained), "--data", str(bad), "--format", "csv"]) == 2
    assert "bad.csv: missing column 'text'" in capsys.readouterr().err
    unknown = tmp_path / "u.txt"
    unknown.write_text("0 good\n7 bad\n")
    assert main(["eval", str(trained), "--data", str(unknown)]) == 2
    assert "u.txt: line 2: label '7' never seen in the model's label set" in capsys.readouterr().err
    assert main(["train", str(ROOT / "recipes/quickstart.yaml"), "train.lr=1"]) == 2
    assert "unknown recipe key 'train.lr'" in capsys.readouterr().err


def test_push_dry_run_and_model_card(trained, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    assert main(["push", str(trained), "--repo-id", "me/tiny-sentiment", "--dry-run", "--private"]) == 0
    out = capsys.readouterr().out
    assert "hf_secret_token_value" not in out
    listing, _, shown_card = out.partition("generated model card (README.md):")
    listed = [l.split()[0] for l in listing.splitlines() if l.startswith("  ")]
    assert listed == files_to_upload(trained / "best")
    assert "## How to use" in shown_card and "AutoModelForSequenceClassification" in shown_card
    assert {"model.safetensors", "config.json", "tokenizer.json", "recipe.yaml", "README.md"} <= set(listed)
    assert not any(f.endswith((".tmp", ".old")) or f.endswith(".bin") for f in listed)
    card = model_card(trained / "best", "me/tiny-sentiment")
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["pipeline_tag"] == "text-classification" and "label_smoothing" in meta["tags"]
    assert meta["model-index"][0]["results"][0]["metrics"]
    for section in ("## Data", "## Metrics", "## Training recipe", "## Intended use", "## Limitations", "## How to use"):
        assert section in card
    assert "`negative`, `positive`" in card and "label_smoothing" in card
    assert not (trained / "best" / "README.md").exists()  # the card is never written into the user's directory
    assert main(["push", str(trained), "--repo-id", "bad//id", "--dry-run"]) == 2
    assert "error: HFValidationError" in capsys.readouterr().err


def test_overwrite_starts_a_clean_run(tiny_bert, toy_data, tmp_path, capsys):
    """output.overwrite=true: the previous run's history, checkpoints and best model go; other files stay; a
    run without evaluation then reports its own final/ weights, never the old best/."""
    out = tmp_path / "run"
    common = [str(ROOT / "recipes/quickstart.yaml"), f"data.train_file={toy_data['train']}", f"model.name={tiny_bert}",
              "train.batch_size=8", "train.learning_rate=1e-3", "data.max_length=16", "output.report_to=none",
              "train.progress_bar=false", f"output.dir={out}", "train.eval_steps=null"]
    assert main(["train", *common, f"data.dev_file={toy_data['dev']}", "train.max_steps=6", "train.save_steps=3"]) == 0
    assert (out / "best").is_dir() and sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_3", "step_6"]
    (out / "notes.txt").write_text("mine")
    assert main(["train", *common, "data.dev_file=null", "train.max_steps=2", "train.save_steps=1",
                 "output.overwrite=true"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "best").exists() and (out / "final" / "model.safetensors").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_1", "step_2"]
    steps = [json.loads(l)["step"] for l in (out / "history.jsonl").read_text().splitlines()]
    assert max(steps) == 2
    assert json.loads((out / "metrics.json").read_text())["model_dir"] == str(out / "final")
    # the last step is checkpointed even off the save_steps grid, so a longer run resumes from the end
    assert main(["train", *common, "data.dev_file=null", "train.max_steps=3", "train.save_steps=2",
                 "output.overwrite=true"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_2", "step_3"]
    assert main(["train", *common, "data.dev_file=null", "train.max_steps=4", "train.save_steps=2",
                 "train.resume_from=latest"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_3", "step_4"]
    assert [json.loads(l)["step"] for l in (out / "history.jsonl").read_text().splitlines()][-1] == 4
    # a directory that holds no run (no run manifest) is refused and keeps everything
    other = tmp_path / "mine"
    (other / "logs").mkdir(parents=True)
    (other / "logs" / "x.txt").write_text("user log")
    assert main(["train", *common[:-2], f"output.dir={other}", "train.eval_steps=null", "data.dev_file=null",
                 "train.max_steps=1", "output.overwrite=true"]) == 2
    assert "holds no run of this package" in capsys.readouterr().err
    assert (other / "logs" / "x.txt").read_text() == "user log" and len(list(other.rglob("*"))) == 2


def test_bool_csv_labels_match_true_false_names(tmp_path):
    """A CSV label column of true/false: the labels stay the words (the column is read as text)."""
    from nlp_cv_tricks.config import DataConfig
    from nlp_cv_tricks.data.text import LabelMap, encode_labels, load_split

    f = tmp_path / "b.csv"
    f.write_text("text,label\ngood,true\nbad,false\nfine,true\n")
    ds, fmt = load_split(str(f), DataConfig())
    assert ds["label"][0] == "true"
    lm = LabelMap.from_train(ds["label"], DataConfig())
    assert lm.names == ["false", "true"]
    assert encode_labels(ds, str(f), fmt, DataConfig(), lm)["labels"] == [1, 0, 1]
    # against a model trained on 0/1 the booleans still match; an unknown one names itself
    assert encode_labels(ds, str(f), fmt, DataConfig(), LabelMap(["0", "1"], ["neg", "pos"]))["labels"] == [1, 0, 1]
    from nlp_cv_tricks.data.text import DataError

    with pytest.raises(DataError, match=r"b.csv: row 1 \(line 2\): label 'true' never seen"):
        encode_labels(ds, str(f), fmt, DataConfig(), LabelMap(["a", "b"], ["a", "b"]))


def test_cli_argument_errors_are_one_line(tmp_path, capsys, monkeypatch):
    """Errors raised below the CLI (an invalid option value, a directory as --data) come as one `error:` line."""
    assert main(["convert-long", "minilm-l6", "--max-length", "256", "--window", "127",
                 "--out", str(tmp_path / "long")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ValueError:") and "even" in err and "Traceback" not in err
    assert not (tmp_path / "long").exists()
    monkeypatch.setenv("NCT_TRACEBACK", "1")
    with pytest.raises(ValueError, match="even"):
        main(["convert-long", "minilm-l6", "--max-length", "256", "--window", "127", "--out", str(tmp_path / "long")])


def test_data_directory_is_named_as_such(trained, tmp_path, capsys):
    assert main(["eval", str(trained), "--data", str(tmp_path)]) == 2
    assert "is a directory; expected a csv" in capsys.readouterr().err
