"""Hard-case loop: K-fold OOF mining, rankings, export/import round trip, validation, conflicts, versions,
retrain emphasis, the loop end to end and the CLI — all on a tiny BERT built in code."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_tiny_bert, tiny_recipe, toy_sentences, write_kim
from conftest import read_csv_rows as _read_csv, write_csv_rows as _write_csv

from nlp_cv_tricks.hardcases import (HardCaseLoop, ImportValidationError, VersionStore, export_hard_cases,
                                     import_annotations, mine, rank_label_issues)
from nlp_cv_tricks.hardcases.mine import confident_learning_issues, make_folds

torch.set_num_threads(1)
FLIP = set(range(3, 150, 10))  # 15 of 150


def sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("hardcases")
    bert = make_tiny_bert(d / "bert")
    clean = toy_sentences(150, 1)
    noisy = [(1 - y if i in FLIP else y, t) for i, (y, t) in enumerate(clean)]
    data = {"train": write_kim(d / "train.txt", noisy), "dev": write_kim(d / "dev.txt", toy_sentences(48, 2))}
    # mining runs through the trainer on any recipe; here the package's fastText baseline (word unigrams),
    # which learns the keyword task in a few epochs (the tiny BERT is used for the loop and retraining)
    from nlp_cv_tricks.models.text_baselines import register_architectures

    register_architectures()
    recipe = tiny_recipe(bert, data, d / "run", "model.name=fasttext",
                         "model.kwargs={embedding_dim: 16, word_ngrams: 1, bucket: 1000, hidden_size: 0, "
                         "sparse: false, dropout: 0.0, tokenizer: {level: word, split: whitespace_split, "
                         "max_length: 16}}", "train.optimizer=adam", "train.epochs=10", "train.learning_rate=0.05",
                         "train.batch_size=16", "train.eval_each_epoch=false")
    res = mine(recipe, d / "mine", folds=3)
    return {"dir": d, "bert": bert, "data": data, "recipe": recipe, "res": res, "clean": clean,
            "sha": sha(data["train"])}


# ---- mining ---------------------------------------------------------------------------------------------
def test_oof_every_example_once_never_by_a_model_that_saw_it(setup):
    res, d = setup["res"], setup["dir"]
    assert res.oof_probs.shape == (150, 2)
    np.testing.assert_allclose(res.oof_probs.sum(1), 1.0, atol=1e-5)
    held_all = []
    for k in range(3):
        z = np.load(d / "mine" / "folds" / f"fold_{k}" / "result.npz")
        assert not set(z["held"].tolist()) & set(z["fit_idx"].tolist())  # scored only by a model that did not see it
        assert set(z["held"].tolist()) | set(z["fit_idx"].tolist()) == set(range(150))
        assert np.all(res.folds[z["held"]] == k)
        held_all += z["held"].tolist()
    assert sorted(held_all) == list(range(150))  # exactly one OOF prediction each
    # training dynamics: each example trained in 2 of 3 folds x 10 epochs
    assert {s["epochs_seen"] for s in res.scores} == {20}
    for s in res.scores:
        assert 0 <= s["confidence"] <= 1 and 0 <= s["correctness"] <= 1 and s["variability"] >= 0
    rows = list(csv.DictReader(open(d / "mine" / "scores.csv")))
    assert len(rows) == 150 and {"aum", "confidence", "error_rank", "difficulty_rank", "text"} <= set(rows[0])


def test_flipped_labels_rank_high(setup):
    scores = setup["res"].scores
    top = {s["id"] for s in sorted(scores, key=lambda s: s["error_rank"])[:15]}
    assert len(top & FLIP) / 15 >= 0.7  # random: 0.1
    flipped_rank = np.mean([s["error_rank"] for s in scores if s["id"] in FLIP])
    other_rank = np.mean([s["error_rank"] for s in scores if s["id"] not in FLIP])
    assert flipped_rank < other_rank / 2
    aum_flipped = np.mean([s["aum"] for s in scores if s["id"] in FLIP])
    aum_other = np.mean([s["aum"] for s in scores if s["id"] not in FLIP])
    assert aum_flipped < aum_other


@pytest.mark.parametrize("use_cleanlab", [True, False])
def test_ranking_on_constructed_probabilities(use_cleanlab):
    rng = np.random.default_rng(0)
    n = 60
    labels = np.array([i % 3 for i in range(n)])
    probs = np.full((n, 3), 0.05)
    probs[np.arange(n), labels] = 0.9
    probs += rng.uniform(0, 0.02, probs.shape)
    wrong = [4, 17, 33]  # confidently predicted as another class
    for i in wrong:
        probs[i] = 0.02
        probs[i, (labels[i] + 1) % 3] = 0.96
    probs /= probs.sum(1, keepdims=True)
    r = rank_label_issues(labels, probs, use_cleanlab=use_cleanlab)
    assert set(np.flatnonzero(r["is_label_issue"]).tolist()) == set(wrong)
    assert set(np.argsort(r["error_rank"])[:3].tolist()) == set(wrong)
    assert sorted(r["error_rank"].tolist()) == list(range(1, n + 1))
    assert r["method"].startswith("cleanlab") == use_cleanlab and r["method"].startswith("builtin") != use_cleanlab
    assert set(np.flatnonzero(confident_learning_issues(labels, probs)).tolist()) == set(wrong)


def test_folds_stratified_and_single_fold_mode(setup, tmp_path):
    labels = np.array([0] * 30 + [1] * 12)
    f = make_folds(labels, 3, 0)
    for k in range(3):
        assert (labels[f == k] == 1).sum() == 4
    with pytest.raises(ValueError, match="folds must be at least 2"):
        make_folds(labels, 1, 0)
    # a fold run alone (as a separate process would), then the merge
    import shutil

    shutil.copytree(setup["dir"] / "mine", tmp_path / "m")
    (tmp_path / "m" / "folds" / "fold_1" / "result.npz").unlink()
    with pytest.raises(FileNotFoundError, match="fold 1 has no result"):
        from nlp_cv_tricks.hardcases.mine import merge_folds

        merge_folds(setup["recipe"], tmp_path / "m")
    assert mine(setup["recipe"], tmp_path / "m", folds=3, fold=1) is None
    res = mine(setup["recipe"], tmp_path / "m", folds=3)
    assert res.oof_probs.shape == (150, 2)
    with pytest.raises(ValueError, match="folds=3"):
        mine(setup["recipe"], tmp_path / "m", folds=4)
    # finished folds belong to one recipe and one training set: another of either is refused, not mixed in
    import dataclasses

    other = dataclasses.replace(setup["recipe"], train=dataclasses.replace(setup["recipe"].train, epochs=3))
    with pytest.raises(ValueError, match=r"another recipe \(differs in train.epochs\)"):
        mine(other, tmp_path / "m", folds=3)
    relabelled = tmp_path / "relabelled.txt"
    lines = Path(setup["data"]["train"]).read_text().splitlines()
    lines[0] = ("1" if lines[0][0] == "0" else "0") + lines[0][1:]
    relabelled.write_text("\n".join(lines) + "\n")
    moved = dataclasses.replace(setup["recipe"], data=dataclasses.replace(setup["recipe"].data,
                                                                          train_file=str(relabelled)))
    with pytest.raises(ValueError, match="other training data .*1 labels differ"):
        mine(moved, tmp_path / "m", folds=3)


# ---- export / import ----------------------------------------------------------------------------------
def test_export_formats(setup, tmp_path):
    paths = export_hard_cases(setup["dir"] / "mine", tmp_path, top=10)
    rows = _read_csv(paths["csv"])
    assert len(rows) == 10
    for col in ("id", "text", "current_label", "predicted_label", "probabilities", "new_label", "note"):
        assert col in rows[0]
    assert all(r["new_label"] == "" and r["note"] == "" for r in rows)
    ranks = {s["id"]: s["error_rank"] for s in setup["res"].scores}
    assert sorted(ranks[int(r["id"])] for r in rows) == list(range(1, 11))
    assert set(json.loads(rows[0]["probabilities"])) == {"negative", "positive"}
    ls = json.loads(Path(paths["labelstudio"]).read_text())
    assert len(ls) == 10 and ls[0]["data"]["text"] == rows[0]["text"]
    assert "<Choice value=\"negative\"/>" in (tmp_path / "label_config.xml").read_text()
    jl = [json.loads(x) for x in Path(paths["jsonl"]).read_text().splitlines()]
    assert [j["id"] for j in jl] == [int(r["id"]) for r in rows]
    with pytest.raises(FileExistsError):
        export_hard_cases(setup["dir"] / "mine", tmp_path, top=10)
    by_diff = export_hard_cases(setup["dir"] / "mine", tmp_path, budget=0.1, by="difficulty", name="d",
                                formats=("csv",))
    assert len(_read_csv(by_diff["csv"])) == 15


def test_round_trip_import_keeps_everything_and_drop_undoes(setup, tmp_path):
    recipe, train = setup["recipe"], setup["data"]["train"]
    paths = export_hard_cases(setup["dir"] / "mine", tmp_path, top=6)
    rows = _read_csv(paths["csv"])
    ids = [int(r["id"]) for r in rows]
    names = ["negative", "positive"]
    cur = {int(r["id"]): r["current_label"] for r in rows}
    other = lambda i: names[1 - names.index(cur[i])]  # noqa: E731
    rows[0].update(new_label=other(ids[0]), annotator="ann", note="obvious flip")
    rows[1].update(new_label=cur[ids[1]], annotator="ann", time="2026-01-01T00:00:00")
    rows[2].update(action="drop", annotator="ann")
    # rows[3..5] left unanswered
    rows.append({**{k: "" for k in rows[0]}, "text": "a really nice film", "new_label": "positive",
                 "action": "add", "annotator": "ann"})
    ann = _write_csv(tmp_path / "done.csv", rows)
    vdir = tmp_path / "versions"
    rep = import_annotations(ann, recipe, vdir, now="2026-11-27T10:00:00+00:00")
    assert rep["version"] == "v0001" and rep["unanswered_rows"] == 3
    assert rep["counts"] == {"relabel": 1, "confirm": 1, "drop": 1, "add": 1}
    store = VersionStore(vdir, recipe)
    vfile = store.train_file("v0001")
    assert vfile.name == train.name and vfile.parent == vdir / "v0001"
    orig_lines = train.read_text().splitlines()
    new_lines = vfile.read_text().splitlines()
    vids = store.ids("v0001")
    assert len(new_lines) == len(orig_lines) and ids[2] not in vids and vids[-1] == 150
    by_id = dict(zip(vids, new_lines))
    for i in range(150):
        if i in (ids[0], ids[2]):
            continue
        assert by_id[i] == orig_lines[i]  # untouched rows identical, text and label
    y0, t0 = orig_lines[ids[0]].split(" ", 1)
    assert by_id[ids[0]] == f"{1 - int(y0)} {t0}"
    assert by_id[150] == "1 a really nice film"
    ch = {c["id"]: c for c in store.changes("v0001")}
    assert ch[ids[0]]["action"] == "relabel" and ch[ids[0]]["original_label"] == cur[ids[0]]
    assert ch[ids[0]]["new_label"] == other(ids[0]) and ch[ids[0]]["annotator"] == "ann"
    assert ch[ids[0]]["note"] == "obvious flip" and ch[ids[0]]["time"] == "2026-11-27T10:00:00+00:00"
    assert ch[ids[1]]["action"] == "confirm" and ch[ids[1]]["time"] == "2026-01-01T00:00:00"
    assert ch[ids[2]]["action"] == "drop" and ch[150]["action"] == "add"
    assert "done.csv: row 1 (line 2)" in ch[ids[0]]["source"]
    # the recipe trains on the version as-is
    from nlp_cv_tricks.data.text import load_text_classification
    from nlp_cv_tricks.hardcases._common import with_train_file

    assert len(load_text_classification(with_train_file(recipe, str(vfile)).data).train) == 150
    # a second version on top; the parent cannot be dropped first
    rows2 = _read_csv(paths["csv"])[3:4]
    rows2[0].update(new_label=rows2[0]["current_label"])
    rep2 = import_annotations(_write_csv(tmp_path / "r2.csv", rows2), recipe, vdir)
    assert rep2["version"] == "v0002" and rep2["parent"] == "v0001"
    assert len(store.changes("v0002", chain=True)) == 5
    with pytest.raises(ValueError, match="parent of v0002"):
        store.drop("v0001")
    store.drop("v0002")
    store.drop("v0001")
    assert store.names() == [] and sha(train) == setup["sha"]
    assert sorted(p.name for p in vdir.iterdir()) == ["dropped_versions.json"]
    # a dropped version's name is never given to other data
    assert import_annotations(_write_csv(tmp_path / "r3.csv", rows2), recipe, vdir)["version"] == "v0003"


def test_jsonl_and_label_studio_import(setup, tmp_path):
    recipe = setup["recipe"]
    paths = export_hard_cases(setup["dir"] / "mine", tmp_path, top=4)
    jl = [json.loads(x) for x in Path(paths["jsonl"]).read_text().splitlines()]
    jl[0]["new_label"] = jl[0]["predicted_label"]
    Path(tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in jl))
    tasks = json.loads(Path(paths["labelstudio"]).read_text())
    export = []
    for t in tasks[:2]:
        export.append({**t, "annotations": [{"completed_by": {"email": "x@y.z"}, "created_at": "2026-11-27T09:00:00Z",
                                             "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                                         "value": {"choices": [t["data"]["current_label"]]}},
                                                        {"from_name": "note", "value": {"text": ["ok"]}}]}]})
    Path(tmp_path / "ls.json").write_text(json.dumps(export))
    rep = import_annotations([tmp_path / "ls.json"], recipe, tmp_path / "v")
    assert rep["counts"]["confirm"] == 2
    ch = VersionStore(tmp_path / "v", recipe).changes(rep["version"])
    assert {c["annotator"] for c in ch} == {"x@y.z"} and {c["note"] for c in ch} == {"ok"}
    rep = import_annotations([tmp_path / "a.jsonl"], recipe, tmp_path / "v")
    assert rep["version"] == "v0002" and sum(rep["counts"].values()) == 1


def test_every_validation_error_names_file_row_reason(setup, tmp_path):
    recipe = setup["recipe"]
    texts = [t for _, t in setup["clean"]]
    cols = ["id", "text", "current_label", "new_label", "action", "annotator", "note"]
    bad = [
        {"id": "9999", "new_label": "positive"},                       # row 1 unknown id
        {"id": "1", "new_label": "neutral"},                           # row 2 label outside the set
        {"id": "2", "new_label": "positive", "annotator": "a"},        # row 3 ok
        {"id": "2", "new_label": "negative", "annotator": "a"},        # row 4 duplicate of row 3
        {"id": "5", "new_label": "positive", "action": "flip"},        # row 5 bad action
        {"id": "", "new_label": "positive", "action": "add"},          # row 6 add without text
        {"id": "7", "new_label": "positive", "text": "something else entirely"},  # row 7 text mismatch
        {"id": "abc", "new_label": "positive"},                        # row 8 unknown id (not a number)
    ]
    cur8 = setup["data"]["train"].read_text().splitlines()[8].split(" ", 1)[0]
    bad.append({"id": "8", "new_label": ["negative", "positive"][int(cur8)], "action": "relabel"})  # row 9 relabel=same
    bad.append({"id": "10", "new_label": "", "action": "confirm", "text": texts[10]})  # row 10 ok
    f = tmp_path / "bad.csv"
    _write_csv(f, [{c: r.get(c, "") for c in cols} for r in bad])
    with pytest.raises(ImportValidationError) as ei:
        import_annotations(f, recipe, tmp_path / "v")
    errs = ei.value.errors
    expect = {1: "unknown id '9999'", 2: "new_label 'neutral' is not in the label set", 4: "duplicate answer",
              5: "action 'flip' is not one of", 6: "needs a non-empty text", 7: "differs from the dataset's text",
              8: "unknown id 'abc'", 9: "action 'relabel' needs a new_label different"}
    assert len(errs) == len(expect)
    for row, reason in expect.items():
        assert any(e.startswith(f"{f}: row {row} (line {row + 1}): ") and reason in e for e in errs), (row, errs)
    assert "also at" in next(e for e in errs if "duplicate" in e)
    assert not (tmp_path / "v").exists() or VersionStore(tmp_path / "v", recipe).names() == []
    # file-level errors
    g = tmp_path / "nocol.csv"
    g.write_text("id,label\n1,positive\n")
    with pytest.raises(ImportValidationError, match=r"nocol.csv: header: missing column\(s\) \['new_label'\]"):
        import_annotations(g, recipe, tmp_path / "v")
    h = tmp_path / "bad.jsonl"
    h.write_text('{"id": 1, "new_label": "positive"}\nnot json\n{"id": 2}\n')
    with pytest.raises(ImportValidationError) as ei:
        import_annotations(h, recipe, tmp_path / "v")
    assert any("bad.jsonl: line 2: not a JSON object" in e for e in ei.value.errors)
    assert any("bad.jsonl: line 3: missing key(s) ['new_label']" in e for e in ei.value.errors)
    with pytest.raises(ImportValidationError, match="unknown annotation file type"):
        import_annotations(tmp_path / "x.txt", recipe, tmp_path / "v") if (tmp_path / "x.txt").write_text("") == 0 else None
    assert sha(setup["data"]["train"]) == setup["sha"]


def test_conflicting_annotators_resolved_by_rule(setup, tmp_path):
    recipe = setup["recipe"]
    lines = setup["data"]["train"].read_text().splitlines()
    names = ["negative", "positive"]
    cur = lambda i: names[int(lines[i].split(" ", 1)[0])]  # noqa: E731
    flip = lambda i: names[1 - int(lines[i].split(" ", 1)[0])]  # noqa: E731
    rows = [  # id 0: 2 vs 1 -> majority relabel; id 1: tie; id 2: all agree
        {"id": 0, "new_label": flip(0), "annotator": "a", "time": "2026-01-01T00:00:03"},
        {"id": 0, "new_label": flip(0), "annotator": "b", "time": "2026-01-01T00:00:01"},
        {"id": 0, "new_label": cur(0), "annotator": "c", "time": "2026-01-01T00:00:09"},
        {"id": 1, "new_label": flip(1), "annotator": "a", "time": "2026-01-01T00:00:01"},
        {"id": 1, "new_label": cur(1), "annotator": "b", "time": "2026-01-01T00:00:02"},
        {"id": 2, "new_label": cur(2), "annotator": "a"}, {"id": 2, "new_label": cur(2), "annotator": "b"},
    ]
    f = _write_csv(tmp_path / "multi.csv", [{**{"action": "", "note": "", "time": ""}, **r} for r in rows])
    rep = import_annotations(f, recipe, tmp_path / "maj", rule="majority")
    conf = {c["example"]: c for c in rep["conflicts"]}
    assert set(conf) == {"0", "1"}
    assert conf["0"]["chosen"] == {"action": "relabel", "new_label": flip(0)} and "majority 2/3" in conf["0"]["resolution"]
    assert conf["1"]["chosen"] is None and "tie" in conf["1"]["resolution"]
    ch = {c["id"]: c for c in VersionStore(tmp_path / "maj", recipe).changes("v0001")}
    assert ch[0]["annotator"] == "a,b" and 1 not in ch and ch[2]["action"] == "confirm"
    rep = import_annotations(f, recipe, tmp_path / "lat", rule="latest")
    conf = {c["example"]: c for c in rep["conflicts"]}
    assert conf["0"]["chosen"]["action"] == "confirm" and conf["1"]["chosen"]["action"] == "confirm"
    rep = import_annotations(f, recipe, tmp_path / "pri", rule="priority", priority=["b", "a"])
    conf = {c["example"]: c for c in rep["conflicts"]}
    assert conf["1"]["chosen"]["action"] == "confirm" and "annotator b" in conf["1"]["resolution"]
    with pytest.raises(ImportValidationError) as ei:
        import_annotations(f, recipe, tmp_path / "str", rule="strict")
    assert len(ei.value.errors) == 2 and all("multi.csv: row" in e and "rule 'strict'" in e for e in ei.value.errors)


def test_interrupted_import_leaves_no_partial_version(setup, tmp_path):
    recipe = setup["recipe"]
    f = _write_csv(tmp_path / "a.csv", [{"id": "0", "new_label": "positive", "annotator": "a"}])

    def crash(path, cols, fmt):
        Path(path).write_text("half a file")
        raise KeyboardInterrupt("killed mid-write")

    with pytest.raises(KeyboardInterrupt):
        import_annotations(f, recipe, tmp_path / "v", _write=crash)
    assert list((tmp_path / "v").iterdir()) == []
    (tmp_path / "v" / ".incoming-deadbeef").mkdir()  # as after a hard kill
    assert VersionStore(tmp_path / "v", recipe).names() == []
    rep = import_annotations(f, recipe, tmp_path / "v")
    assert rep["version"] == "v0001" and [p.name for p in (tmp_path / "v").iterdir()] == ["v0001"]
    assert sha(setup["data"]["train"]) == setup["sha"]


# ---- retrain and the loop -----------------------------------------------------------------------------------
def test_retrain_emphasis(setup, tmp_path):
    from nlp_cv_tricks.hardcases.retrain import train_and_evaluate

    recipe = setup["recipe"]
    quick = tiny_recipe(setup["bert"], setup["data"], tmp_path / "r", "train.epochs=1", "train.batch_size=32")
    over = train_and_evaluate(quick, tmp_path / "o", ids=list(range(150)), hard_ids=[0, 1, 2], emphasis="oversample",
                              factor=3, keep_model=False)
    assert over["n_train_rows"] == 156 and over["n_hard"] == 3 and 0 <= over["dev/accuracy"] <= 1
    w = train_and_evaluate(quick, tmp_path / "w", hard_ids=[0, 1], emphasis="weight", factor=5, keep_model=False)
    assert w["n_train_rows"] == 150 and "dev/f1_macro" in w
    smooth = tiny_recipe(setup["bert"], setup["data"], tmp_path / "s", "tricks=[{label_smoothing: {epsilon: 0.1}}]")
    with pytest.raises(ValueError, match="replaces the criterion"):
        train_and_evaluate(smooth, tmp_path / "s2", hard_ids=[0], emphasis="weight")
    assert recipe.train.epochs == 10  # recipes are copied, never edited


def test_loop_end_to_end(setup, tmp_path, monkeypatch):
    d = tmp_path
    clean = toy_sentences(60, 5)
    noisy = [(1 - y if i % 10 == 0 else y, t) for i, (y, t) in enumerate(clean)]
    data = {"train": write_kim(d / "train.txt", noisy), "dev": setup["data"]["dev"]}
    before_sha = sha(data["train"])
    recipe = tiny_recipe(setup["bert"], data, d / "run", "train.epochs=3", "train.batch_size=16",
                         "train.eval_each_epoch=false", "train.learning_rate=3e-3")
    loop = HardCaseLoop(recipe, d / "work", folds=2, top=6)
    st = loop.step()
    assert st["round"] == 1 and st["phase"] == "awaiting_annotation"
    with pytest.raises(ValueError, match="waits for annotations"):
        loop.step()
    rows = _read_csv(st["export"]["csv"])
    names = ["negative", "positive"]
    for r in rows:  # the simulated annotator knows the truth
        r["new_label"], r["annotator"] = names[clean[int(r["id"])][0]], "sim"
    # killed while mining the next round: the finished import and retraining are kept, and the same command
    # again resumes with the mining (nothing imported or trained twice)
    import nlp_cv_tricks.hardcases.loop as loop_mod

    real_mine = loop_mod.mine

    def killed(*a, **k):
        raise KeyboardInterrupt("killed while mining round 2")

    monkeypatch.setattr(loop_mod, "mine", killed)
    ann = _write_csv(d / "ann1.csv", rows)
    with pytest.raises(KeyboardInterrupt):
        loop.step(ann)
    saved = loop.state()
    assert saved["phase"] == "new" and saved["version"] == "v0001" and len(saved["rounds"]) == 1
    monkeypatch.setattr(loop_mod, "mine", real_mine)
    st = HardCaseLoop(recipe, d / "work", folds=2, top=6).step(ann)
    assert st["round"] == 2 and st["version"] == "v0001" and len(st["rounds"]) == 1
    assert VersionStore(d / "work" / "versions", recipe).names() == ["v0001"]
    row = st["rounds"][0]
    assert row["relabel"] + row["confirm"] == 6 and row["exported"] == 6
    assert 0 <= row["dev_acc_before"] <= 1 and 0 <= row["dev_acc_after"] <= 1
    assert (d / "work" / "round_2" / "annotate.csv").is_file()
    assert "| 1 | v0001 | 6 |" in (d / "work" / "summary.md").read_text()
    fixed = {int(r["id"]) for r in rows if r["new_label"] != r["current_label"]}
    vlines = VersionStore(d / "work" / "versions", recipe).train_file("v0001").read_text().splitlines()
    for i in fixed:
        assert int(vlines[i].split(" ", 1)[0]) == clean[i][0]
    assert sha(data["train"]) == before_sha
    # the state survives a restart
    assert HardCaseLoop(recipe, d / "work", folds=2, top=6).state()["round"] == 2


def test_cli(setup, tmp_path, capsys):
    import argparse

    from nlp_cv_tricks.cli.hardcases import add_cli, main

    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["hardcases", "export", str(setup["dir"] / "mine"), "--out", str(tmp_path), "--top", "3"])
    assert args.func(args) == 0
    rows = _read_csv(tmp_path / "annotate.csv")
    rows[0]["new_label"] = rows[0]["current_label"]
    _write_csv(tmp_path / "a.csv", rows)
    rec = setup["dir"] / "mine" / "recipe.yaml"
    vd = str(tmp_path / "v")
    assert main(["import", str(rec), "--files", str(tmp_path / "a.csv"), "--versions-dir", vd]) == 0
    assert main(["versions", str(rec), "--versions-dir", vd]) == 0
    assert "v0001" in capsys.readouterr().out
    assert main(["import", str(rec), "--files", str(tmp_path / "missing.csv"), "--versions-dir", vd]) == 2
    assert "missing.csv: file does not exist" in capsys.readouterr().err
    assert main(["versions", str(rec), "--versions-dir", vd, "--drop", "v0001"]) == 0
    assert VersionStore(vd, setup["recipe"]).names() == []


def test_annotation_files_as_people_really_send_them(setup, tmp_path):
    """A spreadsheet's BOM is read; broken rows, a repeated import, an emptied id on an existing text, malformed
    Label Studio annotations, non-string texts and a file with no answer are refused, naming file and row."""
    recipe = setup["recipe"]
    lines = setup["data"]["train"].read_text().splitlines()
    names = ["negative", "positive"]
    y0, t0 = lines[0].split(" ", 1)
    flip0 = names[1 - int(y0)]
    ok = tmp_path / "excel.csv"
    ok.write_bytes(("\ufeffid,new_label,annotator\r\n0," + flip0 + ",ann\r\n").encode("utf-8"))
    rep = import_annotations(ok, recipe, tmp_path / "v")
    assert rep["counts"]["relabel"] == 1
    with pytest.raises(ImportValidationError, match=r"excel.csv: this exact file was already imported as version v0001"):
        import_annotations(ok, recipe, tmp_path / "v")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('id,new_label,note\n3,positive,"a note\nover two lines"\n4,positive,x,y,z\n5\n')
    with pytest.raises(ImportValidationError) as ei:
        import_annotations(ragged, recipe, tmp_path / "v")
    assert sorted(ei.value.errors) == sorted([
        f"{ragged}: row 2 (line 4): 5 fields where the header has 3 (a broken row: unquoted comma or a cut line?)",
        f"{ragged}: row 3 (line 5): 1 fields where the header has 3 (a broken row: unquoted comma or a cut line?)"])
    blank_id = tmp_path / "blank.csv"
    blank_id.write_text(f"id,text,new_label\n,{t0},{flip0}\n")
    with pytest.raises(ImportValidationError, match=r"blank.csv: row 1 \(line 2\): action 'add' of a text that is "
                                                    r"already example id 0"):
        import_annotations(blank_id, recipe, tmp_path / "v")
    ls = tmp_path / "ls.json"
    ls.write_text(json.dumps([{"data": {"id": 1, "text": lines[1].split(" ", 1)[1]}, "annotations": ["oops"]}]))
    with pytest.raises(ImportValidationError, match=r"ls.json: task 1, annotation 1: not a Label Studio annotation"):
        import_annotations(ls, recipe, tmp_path / "v")
    jl = tmp_path / "num.jsonl"
    jl.write_text('{"id": null, "action": "add", "new_label": "positive", "text": 123}\n')
    with pytest.raises(ImportValidationError, match=r"num.jsonl: line 1: 'text' must be a string, got int"):
        import_annotations(jl, recipe, tmp_path / "v")
    empty = tmp_path / "empty.csv"
    empty.write_text("id,new_label\n1,\n2,\n")
    with pytest.raises(ImportValidationError, match=r"empty.csv: no answer to import \(2 unanswered rows\)"):
        import_annotations(empty, recipe, tmp_path / "v")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("id,new_label,note\n1,positive,好\n".encode("gbk"))
    with pytest.raises(ImportValidationError, match=r"gbk.csv: not UTF-8 text"):
        import_annotations(gbk, recipe, tmp_path / "v")
    assert VersionStore(tmp_path / "v", recipe).names() == ["v0001"] and sha(setup["data"]["train"]) == setup["sha"]


def test_export_and_versions_name_what_is_missing(setup, tmp_path):
    from nlp_cv_tricks.hardcases.export import export_hard_cases as export

    with pytest.raises(FileNotFoundError, match="no finished mining here"):
        export(tmp_path / "nothing", tmp_path / "out", top=3)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="is a file; export writes its files into a directory"):
        export(setup["dir"] / "mine", tmp_path / "afile", top=3)


def test_export_and_import_write_failures_are_one_sentence(setup, tmp_path, monkeypatch, capsys):
    """Disk full while exporting, no permission while importing: one line naming the file or version, nothing
    half-written left behind."""
    import errno
    import os
    import tempfile

    from nlp_cv_tricks.cli import main

    real = tempfile.mkstemp

    def failing(name, code):
        def mkstemp(*a, **kw):
            if str(kw.get("prefix", "")).startswith(f".{name}."):
                raise OSError(code, os.strerror(code))
            return real(*a, **kw)
        return mkstemp

    out = tmp_path / "ann"
    monkeypatch.setattr(tempfile, "mkstemp", failing("annotate.csv", errno.ENOSPC))
    assert main(["hardcases", "export", str(setup["dir"] / "mine"), "--out", str(out), "--top", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith(f"error: could not write {out / 'annotate.csv'}: the disk is full") and "intact" in err
    assert not (out / "annotate.csv").exists()
    monkeypatch.undo()
    assert main(["hardcases", "export", str(setup["dir"] / "mine"), "--out", str(out), "--top", "3"]) == 0
    rows = _read_csv(out / "annotate.csv")
    rows[0]["new_label"] = rows[0]["current_label"]
    _write_csv(tmp_path / "a.csv", rows)
    vd = tmp_path / "v"
    monkeypatch.setattr(tempfile, "mkstemp", failing("ids.json", errno.EACCES))
    capsys.readouterr()
    assert main(["hardcases", "import", str(setup["dir"] / "mine" / "recipe.yaml"), "--files",
                 str(tmp_path / "a.csv"), "--versions-dir", str(vd)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"error: could not write the new dataset version v0001 {vd / 'v0001'}: permission "
                          "denied") and "run the command again" in err
    assert [p.name for p in vd.iterdir()] == []  # no partial version
