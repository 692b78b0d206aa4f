"""Sliding-window lexical baseline for extractive QA (the reference row of ``bench_mrc.py``).

After the sliding-window baseline of Richardson et al. (2013, MCTest) as adapted for SQuAD by Rajpurkar et al.
(2016, section 5.1): every candidate span is scored by the inverse-count-weighted overlap between the question
and a window of passage words around the candidate; the best-scoring candidate is the answer. The SQuAD paper
takes constituents of a parse tree as candidates; without a parser offline, the candidates here are word n-grams
of 1-4 words inside one sentence that do not start or end with punctuation or a stop word and do not consist of
question words (an answer rarely repeats the question). Ties go to the candidate whose window is closest to the
question words (the paper's distance-based extension, simplified). No training, no learned parameters.
"""

from __future__ import annotations

import math
import re
from collections import Counter

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_SENT_END = {".", "!", "?"}
STOP = set("""a an the of in on at to for from by with and or but is are was were be been being as that this these
those it its which who whom whose what when where why how do does did has have had not no than then there their they
he she his her him we our you your i me my s 's""".split())


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


def _is_content(w: str) -> bool:
    return w.isalnum() and w.lower() not in STOP


def predict_one(context: str, question: str, max_n: int = 4) -> str:
    words = _words(context)
    if not words:
        return ""
    low = [w.lower() for w, _, _ in words]
    counts = Counter(low)
    ic = {w: math.log(1.0 + 1.0 / c) for w, c in counts.items()}
    q = {w.lower() for w, _, _ in _words(question) if _is_content(w)}
    half = max(3, len(q))  # window: the candidate plus |Q| words on each side
    # sentence id per word
    sent, sid = [], 0
    for w in low:
        sent.append(sid)
        if w in _SENT_END:
            sid += 1
    qpos = [i for i, w in enumerate(low) if w in q]
    best, best_key = None, None
    n = len(words)
    for i in range(n):
        if not _is_content(words[i][0]):
            continue
        for j in range(i, min(n, i + max_n)):
            if sent[j] != sent[i]:
                break
            if not _is_content(words[j][0]):
                continue
            span = set(low[i:j + 1])
            if span <= q:
                continue
            lo, hi = max(0, i - half), min(n, j + 1 + half)
            seen = {w for w in low[lo:i] + low[j + 1:hi] if w in q}
            score = sum(ic[w] for w in seen)
            if score <= 0:
                continue
            dist = min((abs(p - i) for p in qpos), default=n)
            key = (score, -dist, -(j - i))
            if best_key is None or key > best_key:
                best_key, best = key, (words[i][1], words[j][2])
    if best is None:
        return words[0][0]
    return context[best[0]:best[1]]


def predict(examples) -> dict:
    """``{id: answer text}`` for a flat SQuAD dataset (columns id, context, question)."""
    return {ex["id"]: predict_one(ex["context"], ex["question"]) for ex in examples}
