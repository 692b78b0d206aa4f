"""SQuAD-style extractive QA metrics: SQuAD v1.1, SQuAD v2.0 (HasAns / NoAns) and CMRC 2018 (Chinese).

These are hand-written ports of the official evaluation scripts, kept to their behaviour line by line, because
the ``evaluate`` library's ``squad`` / ``squad_v2`` metrics are scripts that live on the Hugging Face Hub and
cannot be loaded offline (this package must score on machines without internet, and CI has none):

* SQuAD v1.1 — ``evaluate-v1.1.py`` (Rajpurkar et al., 2016, "SQuAD: 100,000+ Questions for Machine
  Comprehension of Text"): answers are normalised by lower-casing, removing ASCII punctuation
  (``string.punctuation``), removing the articles *a/an/the* and collapsing whitespace; EM is exact equality
  after normalisation, F1 is bag-of-tokens overlap; both take the max over the gold answers. A question with no
  prediction counts as 0 and stays in the total.
* SQuAD v2.0 — ``evaluate-v2.0.py`` (Rajpurkar et al., 2018, "Know What You Don't Know"): same normalisation; a
  question whose gold answers normalise to nothing is unanswerable, its only correct prediction is ``""`` and F1
  is 1 when both sides are empty, else 0. Reports overall, ``HasAns_*`` and ``NoAns_*`` and, when no-answer
  probabilities are given, the ``best_exact`` / ``best_f1`` thresholds. One documented difference: the official
  v2 script *skips* questions missing from the predictions (it shrinks the total, and then crashes when it builds
  the HasAns/NoAns splits); here a missing prediction scores 0 as in v1.1, and ``missing`` counts them.
* CMRC 2018 — ``cmrc2018_evaluate.py`` v5 (Cui et al., 2019, "A Span-Extraction Dataset for Chinese Machine
  Reading Comprehension"): text is segmented into Chinese characters (and punctuation) with runs of other
  characters tokenised as words; F1 uses the longest common *contiguous* segment sequence (not a bag of tokens);
  EM compares the strings after removing the script's punctuation list. The official script tokenises the
  non-Chinese runs with ``nltk.word_tokenize``; when ``nltk`` is installed its Treebank word tokenizer is used
  here (the part of ``word_tokenize`` that matters for short answers), otherwise a regex split of words, numbers
  and single punctuation marks (different only for English contractions such as ``don't``).

All functions take plain Python data: gold data either as a SQuAD JSON ``data`` list / whole dict, or as a
mapping ``id -> list of gold texts``; predictions as ``id -> text``. Scores are percentages (0–100), as printed
by the official scripts.
"""

from __future__ import annotations

import collections
import re
import string
from typing import Iterable, Mapping, Optional, Sequence, Union

__all__ = [
    "normalize_answer",
    "exact_match_score",
    "f1_score",
    "squad_v1_evaluate",
    "squad_v2_evaluate",
    "compute_exact_v2",
    "compute_f1_v2",
    "find_best_thresh",
    "cmrc_mixed_segmentation",
    "cmrc_remove_punctuation",
    "cmrc_f1_score",
    "cmrc_em_score",
    "cmrc2018_evaluate",
    "gold_answers_from_squad",
    "squad_metrics",
]

GoldData = Union[Mapping[str, Sequence[str]], Mapping[str, object], Sequence[Mapping]]

# ------------------------------------------------------------------------------------------------------------
# SQuAD v1.1 (evaluate-v1.1.py)
# ------------------------------------------------------------------------------------------------------------
_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (the official SQuAD normalisation).

    The order is the official one: lower → remove punctuation → remove articles → fix whitespace.
    """
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    """Official v1.1 EM of one pair: equality after :func:`normalize_answer`."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """Official v1.1 token F1 of one pair (0 when nothing overlaps, including when either side is empty)."""
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def _max_over(metric_fn, prediction: str, ground_truths: Iterable[str]) -> float:
    return max(metric_fn(prediction, gt) for gt in ground_truths)


def gold_answers_from_squad(data: GoldData, source: str = "<gold data>") -> dict[str, list[str]]:
    """``id -> [gold answer texts]`` from a SQuAD JSON dict (``{"data": [...]}``), its ``data`` list, a
    ``datasets.Dataset`` / list of flat rows with ``id`` and ``answers`` (``{"text": [...]}``), or an already
    built mapping ``id -> list of texts``."""
    if isinstance(data, Mapping) and "data" in data and isinstance(data["data"], list):
        data = data["data"]
    if isinstance(data, Mapping):
        out = {}
        for qid, texts in data.items():
            if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
                raise ValueError(f"{source}: gold answers of id {qid!r} must be a list of strings, got {texts!r}")
            out[str(qid)] = [str(t) for t in texts]
        return out
    out: dict[str, list[str]] = {}
    for i, item in enumerate(data):
        if "paragraphs" in item:  # SQuAD article
            for p_i, para in enumerate(item["paragraphs"]):
                for q_i, qa in enumerate(para.get("qas", [])):
                    try:
                        out[str(qa["id"])] = [str(a["text"]) for a in qa.get("answers", [])]
                    except (KeyError, TypeError) as err:
                        raise ValueError(
                            f"{source}: data[{i}].paragraphs[{p_i}].qas[{q_i}] needs 'id' and answers with 'text' "
                            f"({err!r})"
                        ) from None
        elif "id" in item and "answers" in item:  # flat row
            answers = item["answers"]
            texts = answers["text"] if isinstance(answers, Mapping) else [a["text"] for a in answers]
            out[str(item["id"])] = [str(t) for t in texts]
        else:
            raise ValueError(f"{source}: item {i} is neither a SQuAD article (with 'paragraphs') nor a row with "
                             f"'id' and 'answers': keys {sorted(item)}")
    return out


def squad_v1_evaluate(gold: GoldData, predictions: Mapping[str, str]) -> dict[str, float]:
    """Official SQuAD v1.1 scoring: ``{"exact_match", "f1", "total", "missing"}`` (scores in %).

    A question without a prediction scores 0 and counts in the total (the official script prints a message).
    Questions without any gold answer are an error in v1.1 (use :func:`squad_v2_evaluate`).
    """
    gold_map = gold_answers_from_squad(gold)
    em = f1 = 0.0
    missing = 0
    for qid, truths in gold_map.items():
        if not truths:
            raise ValueError(f"question {qid!r} has no gold answer: SQuAD v1.1 scoring needs at least one "
                             f"(unanswerable questions need squad_v2_evaluate)")
        if qid not in predictions:
            missing += 1
            continue
        pred = str(predictions[qid])
        em += _max_over(exact_match_score, pred, truths)
        f1 += _max_over(f1_score, pred, truths)
    total = len(gold_map)
    if total == 0:
        raise ValueError("no questions in the gold data")
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total, "total": total, "missing": missing}


# ------------------------------------------------------------------------------------------------------------
# SQuAD v2.0 (evaluate-v2.0.py)
# ------------------------------------------------------------------------------------------------------------
def _get_tokens(s: str) -> list[str]:
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact_v2(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1_v2(a_gold: str, a_pred: str) -> float:
    """v2.0 F1: like v1.1 but two empty answers agree (F1 1) and empty vs non-empty gives 0."""
    gold_toks = _get_tokens(a_gold)
    pred_toks = _get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return float(gold_toks == pred_toks)
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def find_best_thresh(preds: Mapping[str, str], scores: Mapping[str, float], na_probs: Mapping[str, float],
                     qid_to_has_ans: Mapping[str, bool]) -> tuple[float, float]:
    """The official search for the no-answer probability threshold that maximises a score."""
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur_score = num_no_ans
    best_score = cur_score
    best_thresh = 0.0
    qid_list = sorted(na_probs, key=lambda k: na_probs[k])
    for qid in qid_list:
        if qid not in scores:
            continue
        if qid_to_has_ans[qid]:
            diff = scores[qid]
        else:
            diff = -1 if preds.get(qid) else 0
        cur_score += diff
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def squad_v2_evaluate(gold: GoldData, predictions: Mapping[str, str], na_probs: Optional[Mapping[str, float]] = None,
                      na_prob_thresh: float = 1.0) -> dict[str, float]:
    """Official SQuAD v2.0 scoring (scores in %).

    Returns ``exact``, ``f1``, ``total``, ``HasAns_exact/f1/total``, ``NoAns_exact/f1/total`` (when such
    questions exist), ``missing``, and with ``na_probs`` (``id -> probability of no answer``) also ``best_exact``,
    ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh``. A question whose ``na_prob > na_prob_thresh`` is
    scored as a no-answer prediction, as in the official script.
    """
    gold_map = gold_answers_from_squad(gold)
    if not gold_map:
        raise ValueError("no questions in the gold data")
    qid_to_has_ans = {qid: bool(texts) for qid, texts in gold_map.items()}
    exact_scores: dict[str, float] = {}
    f1_scores: dict[str, float] = {}
    missing = 0
    for qid, texts in gold_map.items():
        gold_answers = [a for a in texts if normalize_answer(a)] or [""]
        if qid not in predictions:
            missing += 1
            exact_scores[qid] = 0.0
            f1_scores[qid] = 0.0
            continue
        a_pred = str(predictions[qid])
        exact_scores[qid] = float(max(compute_exact_v2(a, a_pred) for a in gold_answers))
        f1_scores[qid] = max(compute_f1_v2(a, a_pred) for a in gold_answers)
    probs = {k: 0.0 for k in gold_map} if na_probs is None else {k: float(na_probs.get(k, 0.0)) for k in gold_map}

    def apply_thresh(scores):
        return {qid: (float(not qid_to_has_ans[qid]) if probs[qid] > na_prob_thresh else s)
                for qid, s in scores.items()}

    exact_t, f1_t = apply_thresh(exact_scores), apply_thresh(f1_scores)

    def make(qids):
        n = len(qids)
        return {"exact": 100.0 * sum(exact_t[k] for k in qids) / n, "f1": 100.0 * sum(f1_t[k] for k in qids) / n,
                "total": n}

    out: dict[str, float] = dict(make(list(gold_map)))
    has = [k for k, v in qid_to_has_ans.items() if v]
    no = [k for k, v in qid_to_has_ans.items() if not v]
    if has:
        out.update({f"HasAns_{k}": v for k, v in make(has).items()})
    if no:
        out.update({f"NoAns_{k}": v for k, v in make(no).items()})
    if na_probs is not None:
        preds_all = {k: str(predictions.get(k, "")) for k in gold_map}
        best_exact, exact_thresh = find_best_thresh(preds_all, exact_scores, probs, qid_to_has_ans)
        best_f1, f1_thresh = find_best_thresh(preds_all, f1_scores, probs, qid_to_has_ans)
        out.update(best_exact=best_exact, best_exact_thresh=exact_thresh, best_f1=best_f1, best_f1_thresh=f1_thresh)
    out["missing"] = missing
    return out


# ------------------------------------------------------------------------------------------------------------
# CMRC 2018 (cmrc2018_evaluate.py, v5)
# ------------------------------------------------------------------------------------------------------------
_CMRC_SP_CHAR = ["-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
                 "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、",
                 "「", "」", "（", "）", "－", "～", "『", "』"]
_CJK = re.compile(r"[\u4e00-\u9fa5]")
_WORD_RE = re.compile(r"\d+(?:[.,]\d+)*|\w+|[^\w\s]", re.UNICODE)


def _word_tokenize(text: str) -> list[str]:
    try:  # the official script uses nltk.word_tokenize; its Treebank tokenizer needs no downloaded data
        from nltk.tokenize import NLTKWordTokenizer  # type: ignore

        return NLTKWordTokenizer().tokenize(text)
    except ImportError:
        return _WORD_RE.findall(text)


def cmrc_mixed_segmentation(in_str: str, rm_punc: bool = False) -> list[str]:
    """Split Chinese characters (and the script's punctuation list) one by one, tokenise other runs as words."""
    in_str = str(in_str).lower().strip()
    segs_out: list[str] = []
    temp_str = ""
    for char in in_str:
        if rm_punc and char in _CMRC_SP_CHAR:
            continue
        if _CJK.search(char) or char in _CMRC_SP_CHAR:
            if temp_str != "":
                segs_out.extend(_word_tokenize(temp_str))
                temp_str = ""
            segs_out.append(char)
        else:
            temp_str += char
    if temp_str != "":
        segs_out.extend(_word_tokenize(temp_str))
    return segs_out


def cmrc_remove_punctuation(in_str: str) -> str:
    in_str = str(in_str).lower().strip()
    return "".join(ch for ch in in_str if ch not in _CMRC_SP_CHAR)


def _find_lcs(s1: Sequence[str], s2: Sequence[str]) -> tuple[Sequence[str], int]:
    """Longest common contiguous subsequence (the official ``find_lcs``)."""
    m = [[0] * (len(s2) + 1) for _ in range(len(s1) + 1)]
    mmax = 0
    p = 0
    for i in range(len(s1)):
        for j in range(len(s2)):
            if s1[i] == s2[j]:
                m[i + 1][j + 1] = m[i][j] + 1
                if m[i + 1][j + 1] > mmax:
                    mmax = m[i + 1][j + 1]
                    p = i + 1
    return s1[p - mmax:p], mmax


def cmrc_f1_score(answers: Sequence[str], prediction: str) -> float:
    """Max over gold answers of the LCS-based character/word F1 (0–1)."""
    f1_scores = []
    prediction_segs = cmrc_mixed_segmentation(prediction, rm_punc=True)
    for ans in answers:
        ans_segs = cmrc_mixed_segmentation(ans, rm_punc=True)
        _, lcs_len = _find_lcs(ans_segs, prediction_segs)
        if lcs_len == 0:
            f1_scores.append(0.0)
            continue
        precision = lcs_len / len(prediction_segs)
        recall = lcs_len / len(ans_segs)
        f1_scores.append((2 * precision * recall) / (precision + recall))
    return max(f1_scores)


def cmrc_em_score(answers: Sequence[str], prediction: str) -> int:
    """1 when the prediction equals a gold answer after removing the script's punctuation, else 0."""
    prediction_ = cmrc_remove_punctuation(prediction)
    return int(any(cmrc_remove_punctuation(ans) == prediction_ for ans in answers))


def cmrc2018_evaluate(gold: GoldData, predictions: Mapping[str, str]) -> dict[str, float]:
    """Official CMRC 2018 scoring: ``{"exact_match", "f1", "average", "total", "missing"}`` (in %).

    Missing predictions count as 0 and stay in the total (the official script's ``skip_count``).
    """
    gold_map = gold_answers_from_squad(gold)
    if not gold_map:
        raise ValueError("no questions in the gold data")
    f1 = em = 0.0
    missing = 0
    for qid, answers in gold_map.items():
        if not answers:
            raise ValueError(f"question {qid!r} has no gold answer: CMRC 2018 scoring needs at least one")
        if qid not in predictions:
            missing += 1
            continue
        prediction = str(predictions[qid])
        f1 += cmrc_f1_score(answers, prediction)
        em += cmrc_em_score(answers, prediction)
    total = len(gold_map)
    f1_score_ = 100.0 * f1 / total
    em_score = 100.0 * em / total
    return {"exact_match": em_score, "f1": f1_score_, "average": (em_score + f1_score_) * 0.5, "total": total,
            "missing": missing}


def squad_metrics(gold: GoldData, predictions: Mapping[str, str], metric: str = "squad",
                  na_probs: Optional[Mapping[str, float]] = None) -> dict[str, float]:
    """Dispatch by name: ``"squad"`` (v1.1), ``"squad_v2"`` or ``"cmrc2018"``; keys always include
    ``exact_match`` and ``f1`` (v2's ``exact`` is copied to ``exact_match``)."""
    if metric in ("squad", "squad_v1", "squad_v1.1"):
        return squad_v1_evaluate(gold, predictions)
    if metric in ("squad_v2", "squad_v2.0"):
        out = squad_v2_evaluate(gold, predictions, na_probs=na_probs)
        out["exact_match"] = out["exact"]
        return out
    if metric in ("cmrc2018", "cmrc"):
        return cmrc2018_evaluate(gold, predictions)
    raise ValueError(f"unknown QA metric {metric!r}: expected 'squad', 'squad_v2' or 'cmrc2018'")
