"""SQuAD-style extractive QA data: loading (v1.1 / v2.0 JSON or Hub names) and feature preparation.

The feature pipeline follows Hugging Face's ``run_qa.py`` / ``utils_qa.py`` (the de-facto reference for BERT-style
extractive QA, Devlin et al. 2019 §4.2-4.3): each (question, context) pair is tokenised with the question first,
``truncation="only_second"``, ``max_length`` and ``stride=doc_stride`` so that a long context is split into
overlapping *features*; ``offset_mapping`` maps every context token back to its character span, so a predicted
token span becomes an exact substring of the original context.

* Questions longer than ``max_query_length`` tokens (default 64, BERT's value) are cut at a token boundary; a
  question that still leaves a context window (``max_length`` minus question and special tokens) not larger
  than ``doc_stride`` is an error that names it.
* Training features carry ``start_positions`` / ``end_positions`` (token indices). A feature that does not
  contain the whole gold answer, and an unanswerable (SQuAD v2) question, points at the ``[CLS]`` token — the
  null answer of Devlin et al.
* Evaluation features carry ``example_id`` and an ``offset_mapping`` where non-context tokens (question,
  special tokens, padding) are ``None``: post-processing (:mod:`nlp_cv_tricks.data.mrc_postprocess`) can then
  never choose them.

Loading accepts the official nested SQuAD JSON (``{"data": [{"title", "paragraphs": [{"context", "qas":
[{"id", "question", "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}``, used by SQuAD v1.1/v2.0,
XQuAD, CMRC 2018, DRCD) or any ``datasets`` dataset (local or on the Hub) with the flat ``squad`` columns
``id, title, context, question, answers{text, answer_start}``. Real files have misaligned ``answer_start``
values (CMRC 2018 dev: 200 answers with ``-1``); they are re-aligned to the nearest occurrence of the answer
text, and answers that cannot be found keep ``-1``: they still count for evaluation (metrics compare text), but
an example without any aligned answer produces no training feature.
"""

from __future__ import annotations

import json
import logging
import os
import random
from typing import Any, Optional, Sequence

import datasets

__all__ = [
    "SQUAD_COLUMNS",
    "read_squad_json",
    "load_squad",
    "split_by_article",
    "align_answer_start",
    "prepare_train_features",
    "prepare_eval_features",
    "tokenize_train",
    "tokenize_eval",
    "context_token_mask",
    "truncate_questions",
]

SQUAD_COLUMNS = ("id", "title", "context", "question", "answers")

_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "context": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": {"text": datasets.Sequence(datasets.Value("string")),
                    "answer_start": datasets.Sequence(datasets.Value("int32"))},
    }
)

logger = logging.getLogger(__name__)


def align_answer_start(context: str, text: str, start: int) -> int:
    """Return ``start`` if ``context[start:start+len(text)] == text``, else the start of the occurrence of
    ``text`` nearest to ``start`` (any occurrence when ``start < 0``), else ``-1``."""
    if not text:
        return -1
    if 0 <= start and context[start:start + len(text)] == text:
        return start
    best, pos = -1, context.find(text)
    while pos != -1:
        if best == -1 or abs(pos - start) < abs(best - start):
            best = pos
        pos = context.find(text, pos + 1)
    return best


def read_squad_json(path: str, realign: bool = True) -> datasets.Dataset:  # noqa: C901  (complex today; the list only shrinks)
    """Read an official-format SQuAD JSON file into a flat :class:`datasets.Dataset` (one row per question).

    Rows have ``id, title, context, question, answers{text, answer_start}``. For SQuAD v2 ``is_impossible``
    questions, ``answers`` is empty (``plausible_answers`` are ignored, as in the official evaluation).
    Raises ``ValueError`` naming the file and the JSON path of the first malformed entry.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise ValueError(f"{path}: expected a SQuAD-format object with a 'data' list of articles")
    rows: dict[str, list[Any]] = {k: [] for k in SQUAD_COLUMNS}
    seen: set[str] = set()
    for a_i, article in enumerate(raw["data"]):
        where_a = f"{path}: data[{a_i}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise ValueError(f"{where_a}: expected an article with a 'paragraphs' list")
        title = str(article.get("title", article.get("id", f"article-{a_i}")))
        for p_i, para in enumerate(article["paragraphs"]):
            where_p = f"{where_a}.paragraphs[{p_i}]"
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str) or not context.strip():
                raise ValueError(f"{where_p}: expected a non-empty string 'context'")
            qas = para.get("qas")
            if not isinstance(qas, list):
                raise ValueError(f"{where_p}: expected a 'qas' list")
            for q_i, qa in enumerate(qas):
                where_q = f"{where_p}.qas[{q_i}]"
                if not isinstance(qa, dict) or "id" not in qa or not isinstance(qa.get("question"), str):
                    raise ValueError(f"{where_q}: expected an object with 'id' and a string 'question'")
                qid = str(qa["id"]).strip()
                if qid in seen:
                    raise ValueError(f"{where_q}: duplicate question id {qid!r}")
                seen.add(qid)
                answers = [] if qa.get("is_impossible", False) else qa.get("answers", [])
                if not isinstance(answers, list):
                    raise ValueError(f"{where_q}: 'answers' must be a list")
                texts, starts = [], []
                for n_i, ans in enumerate(answers):
                    if not isinstance(ans, dict) or not isinstance(ans.get("text"), str):
                        raise ValueError(f"{where_q}.answers[{n_i}]: expected an object with a string 'text'")
                    try:
                        start = int(ans.get("answer_start", -1))
                    except (TypeError, ValueError):
                        raise ValueError(f"{where_q}.answers[{n_i}]: 'answer_start' must be an integer, got "
                                         f"{ans.get('answer_start')!r}") from None
                    if realign:
                        start = align_answer_start(context, ans["text"], start)
                    texts.append(ans["text"])
                    starts.append(start)
                rows["id"].append(qid)
                rows["title"].append(title)
                rows["context"].append(context)
                rows["question"].append(qa["question"])
                rows["answers"].append({"text": texts, "answer_start": starts})
    if not rows["id"]:
        raise ValueError(f"{path}: no questions found")
    return datasets.Dataset.from_dict(rows, features=_FEATURES)


def load_squad(source: str, split: Optional[str] = None, realign: bool = True, **load_kwargs) -> datasets.Dataset:
    """Load SQuAD-style data from a local official-format JSON file or a ``datasets`` name / folder.

    ``source`` ending in ``.json`` must be an existing file (read with :func:`read_squad_json`); anything else is
    passed to :func:`datasets.load_dataset` (e.g. ``"rajpurkar/squad"``, ``split="validation"``) and must have the
    flat squad columns. Answers are re-aligned as described in the module docstring.
    """
    if source.endswith(".json") or os.path.isfile(source):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"SQuAD file not found: {source}")
        return read_squad_json(source, realign=realign)
    loaded = datasets.load_dataset(source, split=split, **load_kwargs)
    if isinstance(loaded, datasets.DatasetDict):
        raise ValueError(f"{source}: several splits {list(loaded)}; pass split=")
    missing = [c for c in ("id", "context", "question", "answers") if c not in loaded.column_names]
    if missing:
        raise ValueError(f"{source}: missing SQuAD column(s) {missing}; has {loaded.column_names}")
    if "title" not in loaded.column_names:
        loaded = loaded.add_column("title", [""] * len(loaded))
    if realign:
        def _realign(row):
            ans = row["answers"]
            return {"answers": {"text": list(ans["text"]), "answer_start": [
                align_answer_start(row["context"], t, int(s)) for t, s in zip(ans["text"], ans["answer_start"])]}}
        loaded = loaded.map(_realign)
    return loaded


def split_by_article(ds: datasets.Dataset, n_train: int, n_eval: int, seed: int = 0
                     ) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split questions by article title (no context is shared between the two sides).

    Titles are taken in first-appearance order, shuffled with ``random.Random(seed)``; the first ``n_train`` go
    to train, the next ``n_eval`` to eval. XQuAD-en has 48 articles: 40 / 8 is the recipe's split.
    """
    titles = list(dict.fromkeys(ds["title"]))
    if n_train + n_eval > len(titles):
        raise ValueError(f"split_by_article: asked for {n_train} + {n_eval} articles but the data has {len(titles)}")
    random.Random(seed).shuffle(titles)
    train_t, eval_t = set(titles[:n_train]), set(titles[n_train:n_train + n_eval])
    all_titles = ds["title"]
    train_idx = [i for i, t in enumerate(all_titles) if t in train_t]
    eval_idx = [i for i, t in enumerate(all_titles) if t in eval_t]
    return ds.select(train_idx), ds.select(eval_idx)


def _pad_on_right(tokenizer) -> bool:
    return tokenizer.padding_side == "right"


def truncate_questions(questions: Sequence[str], tokenizer, max_query_length: Optional[int]) -> list[str]:
    """Cut questions longer than ``max_query_length`` tokens at a token boundary (BERT's ``max_query_length``,
    64 in its SQuAD script); leading whitespace is removed (it only shifts offsets)."""
    questions = [q.lstrip() for q in questions]
    if not max_query_length:
        return questions
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for q, offs in zip(questions, enc["offset_mapping"]):
        out.append(q[:offs[max_query_length - 1][1]] if len(offs) > max_query_length else q)
    return out


def _tokenize(examples: dict, tokenizer, max_length: int, doc_stride: int, padding: bool,
              max_query_length: Optional[int]):
    pad_on_right = _pad_on_right(tokenizer)
    if doc_stride >= max_length:
        raise ValueError(f"doc_stride ({doc_stride}) must be smaller than max_length ({max_length})")
    questions = truncate_questions(examples["question"], tokenizer, max_query_length)
    n_special = tokenizer.num_special_tokens_to_add(pair=True)
    q_lens = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    for q, n in zip(questions, q_lens):
        if max_length - n - n_special <= doc_stride:  # the tokenizer would panic; say why instead
            raise ValueError(
                f"question {q!r} has {n} tokens: max_length ({max_length}) - {n} - {n_special} special tokens leaves "
                f"a context window not larger than doc_stride ({doc_stride}); raise max_length or lower doc_stride "
                f"or max_query_length ({max_query_length})")
    return tokenizer(
        questions if pad_on_right else examples["context"],
        examples["context"] if pad_on_right else questions,
        truncation="only_second" if pad_on_right else "only_first",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length" if padding else False,
    )


def context_token_mask(sequence_ids: Sequence[Optional[int]], context_index: int) -> list[int]:
    """1 on context tokens, 0 elsewhere (question, special tokens, padding)."""
    return [1 if s == context_index else 0 for s in sequence_ids]


def prepare_train_features(examples: dict, tokenizer, max_length: int = 384, doc_stride: int = 128,  # noqa: C901
                           padding: bool = False, return_context_mask: bool = False,
                           keep_offsets: bool = False, max_query_length: Optional[int] = 64) -> dict:
    """Batched ``Dataset.map`` function: examples → training features with start/end token positions.

    The first aligned gold answer is the label (SQuAD train has one answer per question); whitespace at its
    ends is not part of the span (tokens never cover whitespace). A feature that does
    not contain the whole answer, and an unanswerable question, is labelled with the ``[CLS]`` index. Examples
    that have answers but none aligned to the context are skipped (no feature). Also returns
    ``example_id`` (the question id) and, with ``keep_offsets``, the ``offset_mapping`` (``None`` outside
    the context), so callers and tests can check the round trip.
    """
    if tokenizer.is_fast is False:
        raise ValueError("prepare_train_features needs a fast tokenizer (offset mapping)")
    keep = [i for i, a in enumerate(examples["answers"]) if _answer_located(a)]
    if not keep:
        raise ValueError(f"none of these {len(examples['answers'])} questions has an answer found in its context")
    sub = {k: [examples[k][i] for i in keep] for k in ("id", "question", "context", "answers")}
    tokenized = _tokenize(sub, tokenizer, max_length, doc_stride, padding, max_query_length)
    pad_on_right = _pad_on_right(tokenizer)
    ctx_index = 1 if pad_on_right else 0
    sample_map = tokenized.pop("overflow_to_sample_mapping")
    offset_mapping = tokenized.pop("offset_mapping")
    starts, ends, example_ids, context_masks = [], [], [], []
    for i, offsets in enumerate(offset_mapping):
        input_ids = tokenized["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
        seq_ids = tokenized.sequence_ids(i)
        s_i = sample_map[i]
        example_ids.append(sub["id"][s_i])
        if return_context_mask:
            context_masks.append(context_token_mask(seq_ids, ctx_index))
        answers = sub["answers"][s_i]
        aligned = [(t, s) for t, s in zip(answers["text"], answers["answer_start"]) if s >= 0]
        if not aligned:
            starts.append(cls_index)
            ends.append(cls_index)
            continue
        text, start_char = aligned[0]
        end_char = start_char + len(text)
        context = sub["context"][s_i]
        while start_char < end_char and context[start_char].isspace():  # " answer " -> "answer"
            start_char += 1
        while end_char > start_char and context[end_char - 1].isspace():
            end_char -= 1
        tok_start = 0
        while seq_ids[tok_start] != ctx_index:
            tok_start += 1
        tok_end = len(input_ids) - 1
        while seq_ids[tok_end] != ctx_index:
            tok_end -= 1
        if not (offsets[tok_start][0] <= start_char and offsets[tok_end][1] >= end_char):
            starts.append(cls_index)
            ends.append(cls_index)
            continue
        while tok_start < len(offsets) and seq_ids[tok_start] == ctx_index and offsets[tok_start][0] <= start_char:
            tok_start += 1
        while seq_ids[tok_end] == ctx_index and offsets[tok_end][1] >= end_char:
            tok_end -= 1
        tok_start -= 1
        tok_end += 1
        # characters no token covers (control/zero-width chars dropped by the normaliser) at the answer's ends
        while tok_start < tok_end and offsets[tok_start][1] <= start_char:
            tok_start += 1
        while tok_end > tok_start and offsets[tok_end][0] >= end_char:
            tok_end -= 1
        starts.append(tok_start)
        ends.append(tok_end)
    tokenized["start_positions"] = starts
    tokenized["end_positions"] = ends
    tokenized["example_id"] = example_ids
    if keep_offsets:
        tokenized["offset_mapping"] = [
            [o if s == ctx_index else None for s, o in zip(tokenized.sequence_ids(i), offs)]
            for i, offs in enumerate(offset_mapping)]
    if return_context_mask:
        tokenized["context_mask"] = context_masks
    return dict(tokenized)


def prepare_eval_features(examples: dict, tokenizer, max_length: int = 384, doc_stride: int = 128,
                          padding: bool = False, return_context_mask: bool = False,
                          max_query_length: Optional[int] = 64) -> dict:
    """Batched ``Dataset.map`` function: examples → evaluation features with ``example_id`` and an
    ``offset_mapping`` that is ``None`` outside the context."""
    if tokenizer.is_fast is False:
        raise ValueError("prepare_eval_features needs a fast tokenizer (offset mapping)")
    tokenized = _tokenize(examples, tokenizer, max_length, doc_stride, padding, max_query_length)
    ctx_index = 1 if _pad_on_right(tokenizer) else 0
    sample_map = tokenized.pop("overflow_to_sample_mapping")
    example_ids, context_masks = [], []
    for i in range(len(tokenized["input_ids"])):
        seq_ids = tokenized.sequence_ids(i)
        example_ids.append(examples["id"][sample_map[i]])
        tokenized["offset_mapping"][i] = [o if seq_ids[k] == ctx_index else None
                                          for k, o in enumerate(tokenized["offset_mapping"][i])]
        if return_context_mask:
            context_masks.append(context_token_mask(seq_ids, ctx_index))
    tokenized["example_id"] = example_ids
    if return_context_mask:
        tokenized["context_mask"] = context_masks
    return dict(tokenized)


def _answer_located(a: dict) -> bool:
    """An unanswerable question, or one with at least one answer found in its context."""
    return len(a["text"]) == 0 or any(s >= 0 for s in a["answer_start"])


def tokenize_train(ds: datasets.Dataset, tokenizer, max_length: int = 384, doc_stride: int = 128,
                   padding: bool = False, return_context_mask: bool = False, num_proc: Optional[int] = None,
                   max_query_length: Optional[int] = 64, source: str = "training data") -> datasets.Dataset:
    """Map :func:`prepare_train_features` over a flat SQuAD dataset (original columns removed). Questions whose
    answers are not found in their context are left out, with a warning that counts them; ``ValueError`` (naming
    ``source``) when that leaves nothing."""
    located = [_answer_located(a) for a in ds["answers"]]
    n_bad = located.count(False)
    if n_bad:
        bad_ids = [i for i, ok in zip(ds["id"], located) if not ok][:5]
        if n_bad == len(ds):
            raise ValueError(f"{source}: none of the {len(ds)} questions has an answer text found in its context "
                             f"(e.g. ids {', '.join(map(str, bad_ids))}); check answer_start/text")
        logger.warning("%s: %d of %d questions left out: answer text not found in the context (e.g. ids %s)",
                       source, n_bad, len(ds), ", ".join(map(str, bad_ids)))
        ds = ds.select([i for i, ok in enumerate(located) if ok])
    return ds.map(prepare_train_features, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                  fn_kwargs=dict(tokenizer=tokenizer, max_length=max_length, doc_stride=doc_stride,
                                 padding=padding, return_context_mask=return_context_mask,
                                 max_query_length=max_query_length),
                  desc="QA train features")


def tokenize_eval(ds: datasets.Dataset, tokenizer, max_length: int = 384, doc_stride: int = 128,
                  padding: bool = False, return_context_mask: bool = False, num_proc: Optional[int] = None,
                  max_query_length: Optional[int] = 64) -> datasets.Dataset:
    """Map :func:`prepare_eval_features` over a flat SQuAD dataset (original columns removed)."""
    return ds.map(prepare_eval_features, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                  fn_kwargs=dict(tokenizer=tokenizer, max_length=max_length, doc_stride=doc_stride,
                                 padding=padding, return_context_mask=return_context_mask,
                                 max_query_length=max_query_length),
                  desc="QA eval features")
