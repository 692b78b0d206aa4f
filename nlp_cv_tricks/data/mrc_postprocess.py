"""Turn per-feature start/end logits into answer texts: n-best spans across the features of each example.

The procedure is the one of BERT's ``run_squad.py`` (Devlin et al., 2019) as kept in Hugging Face's
``utils_qa.postprocess_qa_predictions``: for every feature of an example take the ``n_best_size`` highest start
and end logits, keep the pairs ``start <= end`` whose tokens are both *context* tokens (their offset is not
``None``; question tokens, special tokens and padding have ``None`` offsets and can never be chosen) and whose
length is at most ``max_answer_length`` tokens; score = start logit + end logit; pool the candidates of all the
example's features and keep the ``n_best_size`` best. The answer text is the exact context substring
``context[offsets[start][0]:offsets[end][1]]``.

SQuAD v2: the null score of an example is the *minimum* over its features of ``start[0] + end[0]`` (the
``[CLS]`` token); the prediction is ``""`` when ``null_score - best_span_score > null_score_diff_threshold``.
The difference is also returned per example (``null_odds``), the official v2 evaluation's ``na_prob`` input,
so the threshold can be tuned on dev (``squad_v2_evaluate(..., na_probs=null_odds)['best_f1_thresh']``).

Outputs can be written in the official formats: ``predictions.json`` (``{id: text}``), ``nbest_predictions.json``
(``{id: [{"text", "probability", "start_logit", "end_logit", "offsets"}]}``) and, for v2, ``null_odds.json``
(``{id: score}``), each written atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import collections
import json
import os
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..utils.io import atomic_write_text

__all__ = ["postprocess_qa_predictions", "write_json_atomic", "QAPredictions"]


class QAPredictions(dict):
    """``{id: text}`` with the n-best lists and (v2) null odds attached as ``.nbest`` and ``.null_odds``."""

    nbest: dict[str, list[dict]]
    null_odds: dict[str, float]


def write_json_atomic(obj: Any, path: str, overwrite: bool = True) -> str:
    """Write ``obj`` as UTF-8 JSON to ``path`` through a temporary file in the same folder and ``os.replace``.

    With ``overwrite=False`` an existing file is an error (never clobber a user's file by accident)."""
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists; refusing to overwrite it (pass overwrite=True, on the command line --overwrite)")
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
    return path


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()


def _rows(data: Any) -> list[Mapping]:
    if hasattr(data, "to_list"):  # datasets.Dataset
        return data.to_list()
    return list(data)


def postprocess_qa_predictions(
    examples: Union[Sequence[Mapping], Any],
    features: Union[Sequence[Mapping], Any],
    start_logits: Union[np.ndarray, Sequence[Sequence[float]]],
    end_logits: Union[np.ndarray, Sequence[Sequence[float]]],
    version_2_with_negative: bool = False,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
    output_dir: Optional[str] = None,
    prefix: Optional[str] = None,
    overwrite: bool = True,
) -> QAPredictions:
    """Post-process span logits into ``{example id: answer text}`` (see the module docstring).

    Args:
        examples: rows with ``id`` and ``context`` (a ``datasets.Dataset`` or a list of dicts).
        features: rows with ``example_id`` and ``offset_mapping`` (``None`` outside the context), in the same
            order as the logits (what :func:`nlp_cv_tricks.data.mrc.prepare_eval_features` returns).
        start_logits, end_logits: one row per feature; rows may be longer than a feature (batch padding).
        version_2_with_negative: allow the null answer (SQuAD v2).
        n_best_size: candidates per feature for start and end, and answers kept in the n-best list.
        max_answer_length: longest answer in tokens.
        null_score_diff_threshold: v2 — predict ``""`` when ``null - best > threshold``.
        output_dir: when given, write ``[prefix_]predictions.json``, ``[prefix_]nbest_predictions.json`` and
            (v2) ``[prefix_]null_odds.json`` there, atomically.
        overwrite: allow replacing existing output files.
    """
    examples = _rows(examples)
    features = _rows(features)
    if len(features) != len(start_logits) or len(features) != len(end_logits):
        raise ValueError(f"got {len(features)} features but {len(start_logits)} start and {len(end_logits)} end "
                         f"logit rows")
    if n_best_size < 1 or max_answer_length < 1:
        raise ValueError("n_best_size and max_answer_length must be >= 1")
    feats_per_example = _features_by_example(features)

    predictions = QAPredictions()
    predictions.nbest = {}
    predictions.null_odds = {}
    for ex_i, example in enumerate(examples):
        if "id" not in example or "context" not in example:
            raise ValueError(f"example {ex_i} needs 'id' and 'context'; has {sorted(example)}")
        qid, context = str(example["id"]), example["context"]
        min_null: Optional[dict] = None
        candidates: list[dict] = []
        for f_i in feats_per_example.get(qid, []):
            null, spans = _feature_candidates(start_logits[f_i], end_logits[f_i], features[f_i]["offset_mapping"],
                                              n_best_size, max_answer_length)
            if min_null is None or null["score"] < min_null["score"]:
                min_null = null
            candidates.extend(spans)
        if min_null is None:
            raise ValueError(f"example {qid!r} has no feature (were the features built from these examples?)")
        best = _n_best(candidates, min_null, context, n_best_size, version_2_with_negative)
        if not version_2_with_negative:
            predictions[qid] = best[0]["text"]
        else:
            predictions[qid], predictions.null_odds[qid] = _null_or_span(best, min_null, null_score_diff_threshold)
        predictions.nbest[qid] = [
            {"text": c["text"], "probability": c["probability"], "start_logit": float(c["start_logit"]),
             "end_logit": float(c["end_logit"]), "offsets": list(c["offsets"])}
            for c in best]

    if output_dir is not None:
        _write_predictions(predictions, output_dir, prefix, version_2_with_negative, overwrite)
    return predictions


def _features_by_example(features: list[Mapping]) -> dict[str, list[int]]:
    """``{example id: [feature index, ...]}``; every feature must carry ``example_id`` and ``offset_mapping``."""
    feats_per_example: dict[str, list[int]] = collections.defaultdict(list)
    for i, f in enumerate(features):
        if "example_id" not in f or "offset_mapping" not in f:
            raise ValueError(f"feature {i} needs 'example_id' and 'offset_mapping' (use prepare_eval_features); "
                             f"has {sorted(f)}")
        feats_per_example[str(f["example_id"])].append(i)
    return feats_per_example


def _feature_candidates(start_logits, end_logits, offsets, n_best_size: int,
                        max_answer_length: int) -> tuple[dict, list[dict]]:
    """One feature's null candidate and its valid spans among the ``n_best_size`` best starts and ends."""
    s_log = np.asarray(start_logits, dtype=np.float64)
    e_log = np.asarray(end_logits, dtype=np.float64)
    n_tok = min(len(offsets), len(s_log), len(e_log))
    null = {"offsets": (0, 0), "score": s_log[0] + e_log[0], "start_logit": s_log[0], "end_logit": e_log[0]}
    start_idx = np.argsort(s_log[:n_tok])[-1:-n_best_size - 1:-1]
    end_idx = np.argsort(e_log[:n_tok])[-1:-n_best_size - 1:-1]
    spans = []
    for s in start_idx:
        if offsets[s] is None or len(offsets[s]) < 2:
            continue
        for e in end_idx:
            if offsets[e] is None or len(offsets[e]) < 2 or e < s or e - s + 1 > max_answer_length:
                continue
            spans.append({"offsets": (int(offsets[s][0]), int(offsets[e][1])),
                          "score": s_log[s] + e_log[e], "start_logit": s_log[s],
                          "end_logit": e_log[e]})
    return null, spans


def _n_best(candidates: list[dict], min_null: dict, context: str, n_best_size: int,
            version_2_with_negative: bool) -> list[dict]:
    """The ``n_best_size`` best candidates (v2: the null one always among them) with text and probability."""
    if version_2_with_negative:
        candidates.append(min_null)
    best = sorted(candidates, key=lambda c: c["score"], reverse=True)[:n_best_size]
    if version_2_with_negative and not any(c is min_null for c in best):
        best.append(min_null)
    for c in best:
        c["text"] = "" if c is min_null else context[c["offsets"][0]:c["offsets"][1]]
    if not best or (len(best) == 1 and best[0]["text"] == "" and not version_2_with_negative):
        best = [{"offsets": (0, 0), "text": "", "score": 0.0, "start_logit": 0.0, "end_logit": 0.0}]
    probs = _softmax(np.array([c["score"] for c in best]))
    for c, p in zip(best, probs):
        c["probability"] = float(p)
    return best


def _null_or_span(best: list[dict], min_null: dict, null_score_diff_threshold: float) -> tuple[str, float]:
    """SQuAD v2: the answer (``""`` when ``null - best span > threshold``) and the null odds."""
    non_null = next((c for c in best if c is not min_null), None)
    if non_null is None:
        return "", 1e9  # no span candidate at all: certainly null (finite, so the JSON stays standard)
    diff = float(min_null["score"] - non_null["start_logit"] - non_null["end_logit"])
    return ("" if diff > null_score_diff_threshold else non_null["text"]), diff


def _write_predictions(predictions: QAPredictions, output_dir: str, prefix: Optional[str],
                       version_2_with_negative: bool, overwrite: bool) -> None:
    pre = f"{prefix}_" if prefix else ""
    write_json_atomic(dict(predictions), os.path.join(output_dir, f"{pre}predictions.json"), overwrite)
    write_json_atomic(predictions.nbest, os.path.join(output_dir, f"{pre}nbest_predictions.json"), overwrite)
    if version_2_with_negative:
        write_json_atomic(predictions.null_odds, os.path.join(output_dir, f"{pre}null_odds.json"), overwrite)
