"""Prediction runs its forward passes longest first (little padding) and returns every output in input order:
text and long-text classification (``predict_logits``, behind ``eval``/``predict``) and question answering
(``predict_qa``). Each is compared with the same call in file order and with one example per forward pass."""

from __future__ import annotations

import random
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from conftest import WORDS, make_tiny_bert
from nlp_cv_tricks.config import DataConfig

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert"))


def _texts(n: int, seed: int, lo: int = 1, hi: int = 40) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


class _Spy:
    """Wraps a collator: records the padded length of every batch."""

    def __init__(self, inner, widths: list):
        self.inner, self.widths = inner, widths

    def __call__(self, rows):
        out = self.inner(rows)
        self.widths.append(int(out["input_ids"].shape[1]))
        return out


def _in_file_order(monkeypatch, module):
    monkeypatch.setattr(module, "longest_first", lambda lengths: np.arange(len(lengths)))


def test_text_prediction_sorted_by_length_keeps_input_order(bert, monkeypatch):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    import nlp_cv_tricks.inference as inf
    import nlp_cv_tricks.tasks.text_classification as text_task  # the text task's inference loop

    cfg = BertConfig.from_pretrained(bert, num_labels=3)
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg).eval()
    with torch.no_grad():  # a fresh head barely varies with the input: make every row's logits distinct
        model.classifier.weight.mul_(1000)
    tok = AutoTokenizer.from_pretrained(bert)
    texts = _texts(50, 1)
    ds = datasets.Dataset.from_dict({"text": texts, "labels": [i % 3 for i in range(50)]})
    data_cfg = DataConfig(max_length=48)
    widths: list = []
    import transformers

    real = transformers.DataCollatorWithPadding
    monkeypatch.setattr(transformers, "DataCollatorWithPadding", lambda t: _Spy(real(t), widths))
    logits, labels = inf.predict_logits(model, tok, ds, data_cfg, batch_size=8)
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]  # longest first
    assert labels.tolist() == [i % 3 for i in range(50)]  # the labels come back in input order too
    with torch.no_grad():  # one text per forward pass: no padding at all
        one = np.concatenate([model(**tok([t], truncation=True, max_length=48, return_tensors="pt")).logits.numpy()
                              for t in texts])
    np.testing.assert_allclose(logits, one, atol=1e-4)
    _in_file_order(monkeypatch, text_task)
    plain, _ = inf.predict_logits(model, tok, ds, data_cfg, batch_size=8)
    np.testing.assert_allclose(logits, plain, atol=1e-4)
    assert len({tuple(np.round(r, 3)) for r in logits}) > 40  # distinct rows: a shuffled output would show


def test_long_text_prediction_sorted_by_length_keeps_input_order(bert, monkeypatch):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    import nlp_cv_tricks.inference as inf
    import nlp_cv_tricks.tasks.text_classification as text_task  # the text task's inference loop
    from nlp_cv_tricks.tasks.long_text import LongTextOptions

    cfg = BertConfig.from_pretrained(bert, num_labels=2)
    torch.manual_seed(1)
    model = BertForSequenceClassification(cfg).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(1000)
    tok = AutoTokenizer.from_pretrained(bert)
    ds = datasets.Dataset.from_dict({"text": _texts(30, 2, 2, 120)})
    opts = LongTextOptions(strategy="head+tail", head_tokens=16)
    data_cfg = DataConfig(max_length=48)
    got, _ = inf.predict_logits(model, tok, ds, data_cfg, batch_size=4, long_opts=opts)
    _in_file_order(monkeypatch, text_task)
    plain, _ = inf.predict_logits(model, tok, ds, data_cfg, batch_size=4, long_opts=opts)
    np.testing.assert_allclose(got, plain, atol=1e-4)
    assert len({tuple(np.round(r, 3)) for r in got}) > 25


def test_question_answering_prediction_sorted_by_length_keeps_every_answer(bert, monkeypatch):
    from transformers import AutoTokenizer, BertConfig

    import nlp_cv_tricks.data.text as text
    from nlp_cv_tricks.models.mrc_heads import build_qa_model
    from nlp_cv_tricks.tasks.question_answering import QAOptions, predict_qa

    tok = AutoTokenizer.from_pretrained(bert)
    torch.manual_seed(2)
    model = build_qa_model(BertConfig.from_pretrained(bert), head="linear", sep_token_id=3, pretrained=False).eval()
    contexts = _texts(12, 3, 3, 60)
    questions = _texts(12, 4, 1, 4)
    examples = datasets.Dataset.from_dict({
        "id": [f"q{i}" for i in range(12)], "title": ["t"] * 12, "context": contexts, "question": questions,
        "answers": [{"text": [c.split()[0]], "answer_start": [0]} for c in contexts]})
    opts = QAOptions(max_length=48, doc_stride=16, max_query_length=8, n_best_size=5)
    got = predict_qa(model, tok, examples, opts, batch_size=4, device="cpu")
    one = predict_qa(model, tok, examples, opts, batch_size=1, device="cpu")
    _in_file_order(monkeypatch, text)
    plain = predict_qa(model, tok, examples, opts, batch_size=4, device="cpu")
    assert dict(got) == dict(plain) == dict(one) and len(got) == 12
    for k in got:
        assert [a["text"] for a in got.nbest[k]] == [a["text"] for a in plain.nbest[k]]
        np.testing.assert_allclose([a["probability"] for a in got.nbest[k]],
                                   [a["probability"] for a in plain.nbest[k]], atol=1e-4)


@pytest.mark.slow
def test_predict_under_two_processes_writes_every_row_once_in_input_order(bert, tmp_path):
    """``accelerate launch --num_processes 2`` (gloo on CPU): the length-sorted batches are sharded between the
    processes and gathered back; the file holds every row once, in input order, as one process writes it."""
    import json
    import os
    import subprocess
    import sys

    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from conftest import ROOT

    cfg = BertConfig.from_pretrained(bert, num_labels=2, id2label={0: "negative", 1: "positive"},
                                     label2id={"negative": 0, "positive": 1})
    torch.manual_seed(3)
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():
        model.classifier.weight.mul_(1000)
    model.save_pretrained(tmp_path / "model")
    AutoTokenizer.from_pretrained(bert).save_pretrained(tmp_path / "model")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(_texts(37, 5))))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = ["predict", str(tmp_path / "model"), "--data", str(data), "--batch-size", "4"]
    subprocess.run([sys.executable, "-m", "nlp_cv_tricks.cli", "--quiet", *args, "--out", str(tmp_path / "one.jsonl")],
                   check=True, env=env, cwd=ROOT, capture_output=True)
    launcher = Path(sys.executable).with_name("accelerate")
    proc = subprocess.run([str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29541",
                           "-m", "nlp_cv_tricks.cli", "--quiet", *args, "--out", str(tmp_path / "two.jsonl")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = [json.loads(x) for x in (tmp_path / "one.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert [r["id"] for r in two] == list(range(37)) == [r["id"] for r in one]
    assert [r["pred_label"] for r in two] == [r["pred_label"] for r in one]
    np.testing.assert_allclose([r["pred_prob"] for r in two], [r["pred_prob"] for r in one], atol=1e-4)
