"""Long-document data: truncation strategies, Longformer inputs, and the Hyperpartisan reader.

Truncation strategies for encoders limited to 512 positions (Sun et al. 2019, "How to Fine-Tune BERT for Text
Classification?", section 5.3.1, https://arxiv.org/abs/1905.05583):

* ``head``: keep the first ``max_length - specials`` tokens (what ``truncation=True`` does).
* ``tail``: keep the last tokens.
* ``head+tail``: keep the first ``head_tokens`` and the last ``budget - head_tokens`` tokens; 128 + 382 was the
  best of their settings on IMDb and Sogou (error 5.42 vs 5.63 head-only on IMDb). Same cost as ``head``.

Every strategy is a tokenization function for a *batched* ``datasets.map`` that returns the model inputs plus
two accounting columns, ``num_tokens`` (document tokens before truncation, specials excluded) and
``num_truncated`` (document tokens dropped), so nothing is dropped silently.

Longformer inputs (Beltagy, Peters & Cohan 2020, https://arxiv.org/abs/2004.05150): sequences padded to a
multiple of the attention window and a ``global_attention_mask`` that is 1 on [CLS] (classification) and,
optionally, on the question tokens of a pair (QA-style tasks), as in the paper's fine-tuning setups.

Hyperpartisan (SemEval-2019 Task 4, by-article training set, 645 articles): :func:`read_hyperpartisan` and
:func:`load_hyperpartisan` with a seeded stratified split (default 80/10/10). The Longformer ``hp-splits.json``
overlaps (51 ids in train and test, 7 in dev and test; allenai/longformer issues #181, #234), so it is offered
only as ``split="paper"`` for comparison with the paper, with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

logger = logging.getLogger(__name__)

__all__ = [
    "TRUNCATION_STRATEGIES",
    "SpecialTokenTemplate",
    "truncate_ids",
    "make_truncation_fn",
    "global_attention_mask",
    "pad_to_window_multiple",
    "LongformerCollator",
    "read_hyperpartisan",
    "load_hyperpartisan",
    "HYPERPARTISAN_ARTICLES",
    "HYPERPARTISAN_LABELS",
    "HYPERPARTISAN_PAPER_SPLITS",
]

TRUNCATION_STRATEGIES = ("head", "tail", "head+tail")


# ---------------------------------------------------------------------------------------------------------------
# Special tokens, read off the tokenizer's own output (works for BERT [CLS]/[SEP], RoBERTa <s>/</s>, ...)
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpecialTokenTemplate:
    """Where a tokenizer puts its special tokens, learned by encoding a probe with and without them.

    Single sequence: ``prefix + A + suffix``; pair: ``prefix + A + middle + B + pair_suffix``. Token type ids are
    read off the same probe (0 for the first segment and its specials, the tokenizer's value for the second).
    """

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    pair_prefix: tuple[int, ...]
    middle: tuple[int, ...]
    pair_suffix: tuple[int, ...]
    type_first: int = 0
    type_second: int = 0
    has_token_types: bool = True

    @property
    def num_single(self) -> int:
        return len(self.prefix) + len(self.suffix)

    @property
    def num_pair(self) -> int:
        return len(self.pair_prefix) + len(self.middle) + len(self.pair_suffix)

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialTokenTemplate":
        def plain(text: str) -> list[int]:
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])

        a, b = "hello", "world"
        pa, pb = plain(a), plain(b)
        single = tokenizer(a, add_special_tokens=True)
        ids = list(single["input_ids"])
        i = _find_sub(ids, pa)
        if i < 0:
            raise ValueError(f"cannot locate the text tokens {pa} inside the tokenizer's output {ids}")
        prefix, suffix = tuple(ids[:i]), tuple(ids[i + len(pa):])
        pair = tokenizer(a, b, add_special_tokens=True)
        pids = list(pair["input_ids"])
        ia = _find_sub(pids, pa)
        ib = _find_sub(pids, pb, start=ia + len(pa))
        if ia < 0 or ib < 0:
            raise ValueError(f"cannot locate the pair tokens inside the tokenizer's output {pids}")
        has_types = "token_type_ids" in pair
        types = list(pair["token_type_ids"]) if has_types else [0] * len(pids)
        return cls(
            prefix=prefix,
            suffix=suffix,
            pair_prefix=tuple(pids[:ia]),
            middle=tuple(pids[ia + len(pa): ib]),
            pair_suffix=tuple(pids[ib + len(pb):]),
            type_first=types[ia],
            type_second=types[ib],
            has_token_types=has_types,
        )

    def build(self, ids: Sequence[int], first: Optional[Sequence[int]] = None) -> tuple[list[int], list[int]]:
        """``(input_ids, token_type_ids)`` for ``ids`` alone, or for the pair ``(first, ids)``."""
        if first is None:
            out = [*self.prefix, *ids, *self.suffix]
            return out, [self.type_first] * len(out)
        head = [*self.pair_prefix, *first, *self.middle]
        tail = [*ids, *self.pair_suffix]
        return head + tail, [self.type_first] * len(head) + [self.type_second] * len(tail)


def _find_sub(seq: Sequence[int], sub: Sequence[int], start: int = 0) -> int:
    n = len(sub)
    for i in range(start, len(seq) - n + 1):
        if list(seq[i: i + n]) == list(sub):
            return i
    return -1


# ---------------------------------------------------------------------------------------------------------------
# Truncation
# ---------------------------------------------------------------------------------------------------------------
def truncate_ids(ids: Sequence[int], budget: int, strategy: str = "head", head_tokens: int = 128) -> list[int]:
    """Keep at most ``budget`` tokens of ``ids`` by ``strategy`` (``head``, ``tail`` or ``head+tail``).

    ``head+tail`` keeps ``ids[:head_tokens] + ids[-(budget - head_tokens):]`` when the document is longer than the
    budget (Sun et al. 2019 use 128 + 382 = 510 for BERT's 512 with [CLS] and [SEP]). A document that fits is
    returned whole by every strategy.
    """
    if strategy not in TRUNCATION_STRATEGIES:
        raise ValueError(f"unknown truncation strategy {strategy!r}; expected one of {TRUNCATION_STRATEGIES}")
    if budget < 1:
        raise ValueError(f"truncation budget must be >= 1 token, got {budget}")
    ids = list(ids)
    if len(ids) <= budget:
        return ids
    if strategy == "head":
        return ids[:budget]
    if strategy == "tail":
        return ids[len(ids) - budget:]
    if not 0 <= head_tokens <= budget:
        raise ValueError(f"head+tail: head_tokens={head_tokens} must be within [0, budget={budget}]")
    tail = budget - head_tokens
    return ids[:head_tokens] + (ids[len(ids) - tail:] if tail else [])


def make_truncation_fn(
    tokenizer,
    strategy: str = "head",
    max_length: int = 512,
    head_tokens: int = 128,
    text_column: str = "text",
    question_column: Optional[str] = None,
) -> Callable[[dict], dict]:
    """A batched ``datasets.map`` function tokenizing ``text_column`` and truncating it by ``strategy``.

    ``max_length`` counts special tokens (512 for BERT). With ``question_column`` the question comes first and is
    kept whole (``[CLS] question [SEP] document [SEP]``); only the document is truncated. Returned columns:
    ``input_ids``, ``attention_mask``, ``token_type_ids`` (if the tokenizer makes them), ``num_tokens`` (document
    tokens before truncation) and ``num_truncated`` (document tokens dropped).

    Example::

        ds = ds.map(make_truncation_fn(tok, "head+tail", 512, head_tokens=128), batched=True)
    """
    if strategy not in TRUNCATION_STRATEGIES:
        raise ValueError(f"unknown truncation strategy {strategy!r}; expected one of {TRUNCATION_STRATEGIES}")
    template = SpecialTokenTemplate.from_tokenizer(tokenizer)
    n_special = template.num_pair if question_column else template.num_single
    if max_length <= n_special:
        raise ValueError(f"max_length={max_length} leaves no room for text after {n_special} special tokens")
    if strategy == "head+tail" and head_tokens >= max_length - n_special:
        raise ValueError(f"head+tail with head_tokens={head_tokens} keeps no tail within max_length={max_length} "
                         f"({max_length - n_special} text tokens): lower task_options.head_tokens or use 'head'")

    def fn(batch: dict) -> dict:
        if text_column not in batch:
            raise KeyError(f"text column {text_column!r} not in the dataset columns {sorted(batch)}")
        texts = batch[text_column]
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ValueError(f"row {i} of the batch: column {text_column!r} must be a string, got {type(t).__name__}")
        doc_ids = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        questions = None
        if question_column:
            if question_column not in batch:
                raise KeyError(f"question column {question_column!r} not in the dataset columns {sorted(batch)}")
            questions = tokenizer(list(batch[question_column]), add_special_tokens=False, verbose=False)["input_ids"]
        out: dict[str, list] = {"input_ids": [], "attention_mask": [], "num_tokens": [], "num_truncated": []}
        if template.has_token_types:
            out["token_type_ids"] = []
        for i, ids in enumerate(doc_ids):
            q = questions[i] if questions is not None else None
            budget = max_length - n_special - (len(q) if q is not None else 0)
            if budget < 1:
                raise ValueError(
                    f"row {i}: the question has {len(q)} tokens, leaving no room for the document in {max_length}"
                )
            kept = truncate_ids(ids, budget, strategy, head_tokens=min(head_tokens, budget))
            input_ids, types = template.build(kept, q)
            out["input_ids"].append(input_ids)
            out["attention_mask"].append([1] * len(input_ids))
            if template.has_token_types:
                out["token_type_ids"].append(types)
            out["num_tokens"].append(len(ids))
            out["num_truncated"].append(len(ids) - len(kept))
        return out

    return fn


# ---------------------------------------------------------------------------------------------------------------
# Longformer inputs
# ---------------------------------------------------------------------------------------------------------------
def global_attention_mask(
    input_ids: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
    *,
    sep_token_id: Optional[int] = None,
    on_question: bool = False,
) -> torch.Tensor:
    """Longformer ``global_attention_mask``: 1 on the first token ([CLS] / <s>) and, with ``on_question``, on
    every token before the first ``sep_token_id`` (the question of a ``[CLS] q [SEP] doc [SEP]`` pair, the rule
    of ``LongformerForQuestionAnswering``). Padding (``attention_mask == 0``) is never global.

    Cost: each global token attends to the whole sequence and is attended by it, O(n) per global token.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, seq), got shape {tuple(input_ids.shape)}")
    mask = torch.zeros_like(input_ids)
    mask[:, 0] = 1
    if on_question:
        if sep_token_id is None:
            raise ValueError("on_question=True needs sep_token_id")
        is_sep = input_ids == sep_token_id
        if not bool(is_sep.any(dim=1).all()):
            rows = (~is_sep.any(dim=1)).nonzero().flatten().tolist()
            raise ValueError(f"rows {rows} have no separator token {sep_token_id}; cannot find the question end")
        first_sep = is_sep.int().argmax(dim=1, keepdim=True)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        mask = torch.where(positions < first_sep, torch.ones_like(mask), mask)
    if attention_mask is not None:
        mask = mask * (attention_mask > 0).to(mask.dtype)
    return mask


def pad_to_window_multiple(
    features: dict[str, torch.Tensor], attention_window: int | Sequence[int], pad_token_id: int
) -> dict[str, torch.Tensor]:
    """Right-pad every (batch, seq) tensor in ``features`` to a multiple of the attention window.

    ``input_ids`` get ``pad_token_id``; masks, token types, global masks get 0; ``labels`` of token tasks get -100.
    ``LongformerModel`` pads internally too, but doing it here keeps shapes visible to the collator/trainer.
    """
    window = max(attention_window) if not isinstance(attention_window, int) else attention_window
    if window < 2 or window % 2:
        raise ValueError(f"attention_window must be a positive even number, got {attention_window}")
    seq = features["input_ids"].shape[1]
    pad = (-seq) % window
    if pad == 0:
        return dict(features)
    out = {}
    for key, value in features.items():
        if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[1] == seq:
            fill = pad_token_id if key == "input_ids" else (-100 if key == "labels" else 0)
            value = torch.nn.functional.pad(value, (0, pad), value=fill)
        out[key] = value
    return out


@dataclass
class LongformerCollator:
    """Pads a list of tokenized examples for Longformer: dynamic padding to a multiple of the attention window
    (``DataCollatorWithPadding(pad_to_multiple_of=window)``) plus ``global_attention_mask`` on [CLS] and, with
    ``global_on_question``, the question tokens. Extra accounting columns (``num_tokens``...) are dropped."""

    tokenizer: Any
    attention_window: int = 512
    global_on_question: bool = False
    max_length: Optional[int] = None
    drop_columns: tuple[str, ...] = ("num_tokens", "num_truncated")
    _inner: Any = field(default=None, init=False, repr=False)

    def __post_init__(self):
        from transformers import DataCollatorWithPadding

        window = max(self.attention_window) if not isinstance(self.attention_window, int) else self.attention_window
        self._inner = DataCollatorWithPadding(self.tokenizer, pad_to_multiple_of=window, return_tensors="pt")

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        examples = [{k: v for k, v in ex.items() if k not in self.drop_columns} for ex in examples]
        batch = dict(self._inner(examples))
        batch["global_attention_mask"] = global_attention_mask(
            batch["input_ids"],
            batch.get("attention_mask"),
            sep_token_id=self.tokenizer.sep_token_id,
            on_question=self.global_on_question,
        )
        return batch


# ---------------------------------------------------------------------------------------------------------------
# Hyperpartisan
# ---------------------------------------------------------------------------------------------------------------
HYPERPARTISAN_ARTICLES = "articles-training-byarticle-20181122.xml"
HYPERPARTISAN_LABELS = "ground-truth-training-byarticle-20181122.xml"
HYPERPARTISAN_PAPER_SPLITS = "hp-splits.json"
_WS = re.compile(r"\s+")


def read_hyperpartisan(data_dir: str | os.PathLike, include_title: bool = False) -> list[dict]:
    """Read the by-article Hyperpartisan XML pair into records ``{id, title, published_at, text, label}``.

    ``text`` is the article's XML text content (``<p>``/``<a>`` markup dropped, as ElementTree ``method='text'``
    in Longformer's hp_preprocess.py) with whitespace collapsed; ``label`` is 1 for hyperpartisan="true".
    Articles and labels are joined on ``id``; a missing or unexpected label is an error naming the file and id.
    """
    data_dir = Path(data_dir)
    art_path, gt_path = data_dir / HYPERPARTISAN_ARTICLES, data_dir / HYPERPARTISAN_LABELS
    for p in (art_path, gt_path):
        if not p.is_file():
            raise FileNotFoundError(f"Hyperpartisan file not found: {p}")
    labels: dict[str, int] = {}
    for _, el in ET.iterparse(gt_path, events=("end",)):
        if el.tag != "article":
            continue
        aid, hp = el.get("id"), el.get("hyperpartisan")
        if aid is None:
            raise ValueError(f"{gt_path}: an <article> has no id attribute")
        if hp not in ("true", "false"):
            raise ValueError(f"{gt_path}: article id={aid}: hyperpartisan={hp!r}, expected 'true' or 'false'")
        if aid in labels:
            raise ValueError(f"{gt_path}: article id={aid} appears twice")
        labels[aid] = int(hp == "true")
        el.clear()
    records: list[dict] = []
    seen: set[str] = set()
    for _, el in ET.iterparse(art_path, events=("end",)):
        if el.tag != "article":
            continue
        aid = el.get("id")
        if aid is None:
            raise ValueError(f"{art_path}: article #{len(records)} has no id attribute")
        if aid not in labels:
            raise ValueError(f"{art_path}: article id={aid} has no label in {gt_path}")
        if aid in seen:
            raise ValueError(f"{art_path}: article id={aid} appears twice")
        seen.add(aid)
        title = el.get("title") or ""
        body = _WS.sub(" ", "".join(el.itertext())).strip()
        text = f"{title}. {body}" if include_title and title else body
        if not text:
            raise ValueError(f"{art_path}: article id={aid} has empty text")
        records.append(
            {"id": aid, "title": title, "published_at": el.get("published-at") or "", "text": text, "label": labels[aid]}
        )
        el.clear()
    missing = sorted(set(labels) - seen)
    if missing:
        raise ValueError(f"{gt_path}: {len(missing)} labelled ids have no article in {art_path}, e.g. {missing[:5]}")
    return records


def load_hyperpartisan(
    data_dir: str | os.PathLike,
    split: str = "stratified",
    seed: int = 42,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    include_title: bool = False,
):
    """Hyperpartisan as a ``datasets.DatasetDict`` with ``train`` / ``validation`` / ``test``.

    ``split="stratified"`` (default): a seeded split stratified on the label (scikit-learn's
    ``train_test_split`` twice, through :func:`nlp_cv_tricks.data.split.stratified_split`), disjoint by
    construction; with 645 articles and 80/10/10 it gives 516/64/65.
    ``split="paper"``: Longformer's ``hp-splits.json`` as released (train 516, dev 64, test 65) - it overlaps
    (51 train/test, 7 dev/test ids), so test scores on it are optimistic; use it only to compare with the paper.
    Columns: id, title, published_at, text, label (ClassLabel names ``["false", "true"]``).
    """
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    records = read_hyperpartisan(data_dir, include_title=include_title)
    features = Features(
        {
            "id": Value("string"),
            "title": Value("string"),
            "published_at": Value("string"),
            "text": Value("string"),
            "label": ClassLabel(names=["false", "true"]),
        }
    )
    if split == "paper":
        path = Path(data_dir) / HYPERPARTISAN_PAPER_SPLITS
        try:
            spec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read {path}: {e}") from e
        by_id = {int(r["id"]): r for r in records}
        parts = {}
        for src, dst in (("train", "train"), ("dev", "validation"), ("test", "test")):
            if src not in spec:
                raise ValueError(f"{path}: key {src!r} missing; expected train/dev/test lists of article ids")
            ids = spec[src]
            unknown = [i for i in ids if int(i) not in by_id]
            if unknown:
                raise ValueError(f"{path}: split {src!r} has ids not in the articles: {unknown[:5]}")
            parts[dst] = [by_id[int(i)] for i in ids]
        overlap = {
            "train/test": len({r["id"] for r in parts["train"]} & {r["id"] for r in parts["test"]}),
            "validation/test": len({r["id"] for r in parts["validation"]} & {r["id"] for r in parts["test"]}),
            "train/validation": len({r["id"] for r in parts["train"]} & {r["id"] for r in parts["validation"]}),
        }
        if any(overlap.values()):
            warnings.warn(
                f"{path}: the paper split overlaps ({overlap}); test scores on it are optimistic "
                "(allenai/longformer issues #181, #234). Use split='stratified' for a leak-free benchmark.",
                stacklevel=2,
            )
    elif split == "stratified":
        from .split import stratified_split

        if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) <= 0:
            raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
        idx = list(range(len(records)))
        y = [r["label"] for r in records]
        rest = fractions[1] + fractions[2]
        train_idx, tmp_pos = stratified_split(y, rest, seed)
        tmp_idx = [idx[i] for i in tmp_pos]
        val_pos, test_pos = stratified_split([y[i] for i in tmp_idx], fractions[2] / rest, seed)
        val_idx, test_idx = [tmp_idx[i] for i in val_pos], [tmp_idx[i] for i in test_pos]
        parts = {
            "train": [records[i] for i in sorted(train_idx)],
            "validation": [records[i] for i in sorted(val_idx)],
            "test": [records[i] for i in sorted(test_idx)],
        }
    else:
        raise ValueError(f"unknown Hyperpartisan split {split!r}; expected 'stratified' or 'paper'")
    return DatasetDict(
        {
            name: Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)
            for name, rows in parts.items()
        }
    )
