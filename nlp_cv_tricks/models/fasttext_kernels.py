"""FastText as compiled loops over numpy arrays: the bag of a text (its token ids, then the hashed ids of its
2..``word_ngrams``-grams: the same ids, in the same order, as :func:`.text_baselines.layers_fasttext.fasttext_bags`), one training
step per batch (mean of the bag's rows, linear classifier, softmax cross-entropy averaged over the batch, plain SGD
on every parameter: what the trainer does with ``optimizer: sgd``, momentum 0, weight decay 0), and the logits.

Why hand-written: the trainer runs FastText through torch (an ``EmbeddingBag`` lookup, a sparse COO gradient, an
optimizer step, Accelerate's and the trainer's per-step work): ~2.8 ms a step of 128 THUCNews titles, where the
arithmetic itself is ~0.3 ms. No library trains a bag-of-n-grams classifier with batch-mean SGD on arrays (the
official fastText updates after every text, from its own file format). numba compiles these loops (the ``fast``
extra; cached on disk after the first run); imports numpy and numba only, no torch.

The weights are the ``FastText`` module's: ``embeddings.weight`` ``(vocab + bucket, dim)``, ``classifier.weight``
``(num_labels, dim)`` and ``classifier.bias``, float32, for the linear model (``hidden_size: 0``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..utils.jit import njit

# the n-gram hash multiplier of text_baselines/layers_fasttext.py (official fastText's addWordNgrams); that file is
# copied next to saved models and imports nothing of the package, so the number is written in both places (a test
# checks they agree, and that the bags are the same ids)
HASH_MULT = 116049371

__all__ = ["kernels_available", "fasttext_bag_ids", "init_fasttext_weights", "train_fasttext_steps",
           "fasttext_logits"]


def _bags(ids, offsets, vocab_size, word_ngrams, bucket, mult):  # pragma: no cover - compiled
    n = len(offsets) - 1
    counts = np.zeros(n + 1, np.int64)
    for i in range(n):
        m = offsets[i + 1] - offsets[i]
        c = m
        for k in range(2, word_ngrams + 1):
            if m >= k:
                c += m - k + 1
        counts[i + 1] = counts[i] + c
    out = np.empty(counts[n], np.int64)
    for i in range(n):
        s = offsets[i]
        m = offsets[i + 1] - s
        p = counts[i]
        for j in range(m):
            out[p] = ids[s + j]
            p += 1
        for k in range(2, word_ngrams + 1):
            for j in range(m - k + 1):
                h = ids[s + j] % bucket
                for q in range(1, k):
                    h = (h * mult + ids[s + j + q]) % bucket
                out[p] = h + vocab_size
                p += 1
    return out, counts


def _train_steps(emb, weight, bias, bag, bag_offsets, labels, order, start, batch_size, lrs,  # noqa: C901
                 losses):  # pragma: no cover - compiled
    """Steps ``0 .. len(lrs) - 1`` of an epoch: step ``k`` takes the texts ``order[start + k * batch_size ...]``
    (the last batch may be short). Returns the number of steps done: fewer than ``len(lrs)`` when a batch's loss
    is not finite (that batch is not applied; its loss is in ``losses``)."""
    n = len(order)
    dim = emb.shape[1]
    k_labels = weight.shape[0]
    h = np.empty((batch_size, dim), np.float32)
    g = np.empty((batch_size, k_labels), np.float32)
    g_weight = np.empty((k_labels, dim), np.float32)
    g_bias = np.empty(k_labels, np.float32)
    g_h = np.empty(dim, np.float32)
    for step in range(len(lrs)):
        s = start + step * batch_size
        e = min(s + batch_size, n)
        m = e - s
        lr = np.float32(lrs[step])
        loss = 0.0
        for r in range(m):
            i = order[s + r]
            a = bag_offsets[i]
            z = bag_offsets[i + 1]
            for d in range(dim):
                h[r, d] = 0.0
            for p in range(a, z):
                row = bag[p]
                for d in range(dim):
                    h[r, d] += emb[row, d]
            inv = np.float32(1.0 / max(z - a, 1))
            for d in range(dim):
                h[r, d] *= inv
            top = -np.inf
            for c in range(k_labels):
                acc = bias[c]
                for d in range(dim):
                    acc += weight[c, d] * h[r, d]
                g[r, c] = acc
                if acc > top:
                    top = acc
            total = np.float32(0.0)
            for c in range(k_labels):
                g[r, c] = np.exp(g[r, c] - top)
                total += g[r, c]
            loss += np.log(total) - np.log(g[r, labels[i]])
            for c in range(k_labels):
                g[r, c] = g[r, c] / total / m
            g[r, labels[i]] -= np.float32(1.0 / m)
        losses[step] = loss / m
        if not np.isfinite(losses[step]):
            return step
        g_weight[:] = 0.0
        g_bias[:] = 0.0
        for r in range(m):
            for c in range(k_labels):
                g_bias[c] += g[r, c]
                for d in range(dim):
                    g_weight[c, d] += g[r, c] * h[r, d]
        for r in range(m):
            i = order[s + r]
            a = bag_offsets[i]
            z = bag_offsets[i + 1]
            inv = np.float32(1.0 / max(z - a, 1))
            for d in range(dim):
                acc = np.float32(0.0)
                for c in range(k_labels):
                    acc += weight[c, d] * g[r, c]
                g_h[d] = acc * inv * lr
            for p in range(a, z):
                row = bag[p]
                for d in range(dim):
                    emb[row, d] -= g_h[d]
        for c in range(k_labels):
            bias[c] -= lr * g_bias[c]
            for d in range(dim):
                weight[c, d] -= lr * g_weight[c, d]
    return len(lrs)


def _logits(emb, weight, bias, bag, bag_offsets):  # pragma: no cover - compiled
    n = len(bag_offsets) - 1
    dim = emb.shape[1]
    k_labels = weight.shape[0]
    out = np.empty((n, k_labels), np.float32)
    h = np.empty(dim, np.float32)
    for i in range(n):
        a = bag_offsets[i]
        z = bag_offsets[i + 1]
        for d in range(dim):
            h[d] = 0.0
        for p in range(a, z):
            row = bag[p]
            for d in range(dim):
                h[d] += emb[row, d]
        inv = np.float32(1.0 / max(z - a, 1))
        for d in range(dim):
            h[d] *= inv
        for c in range(k_labels):
            acc = bias[c]
            for d in range(dim):
                acc += weight[c, d] * h[d]
            out[i, c] = acc
    return out


_COMPILED: Optional[dict] = None
# the sums over the embedding dimension may be reordered (vectorised); no flag that assumes values are finite, so
# a non-finite loss is still seen
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


def _compiled() -> Optional[dict]:
    global _COMPILED
    if _COMPILED is None:
        fns = {"bags": njit(_bags), "train": njit(_train_steps, fastmath=FASTMATH),
               "logits": njit(_logits, fastmath=FASTMATH)}
        _COMPILED = fns if all(fns.values()) else {}
    return _COMPILED or None


def kernels_available() -> bool:
    """True when numba can compile the loops (the ``fast`` extra is installed and works with this numpy)."""
    return _compiled() is not None


def fasttext_bag_ids(ids: np.ndarray, offsets: np.ndarray, vocab_size: int, word_ngrams: int,
                     bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """The bags of texts given as flat token ids + ``offsets`` (``len(texts) + 1``): ``(bag ids, bag offsets)``,
    each text's token ids then the hashed ids of its 2..``word_ngrams``-grams (offset by ``vocab_size``)."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if word_ngrams < 2:
        return ids.copy(), offsets.copy()
    return _compiled()["bags"](ids, offsets, int(vocab_size), int(word_ngrams), int(bucket),
                               int(HASH_MULT % bucket))


def init_fasttext_weights(rows: int, dim: int, num_labels: int, pad_token_id: Optional[int],
                          seed: int) -> dict[str, np.ndarray]:
    """The FastText module's initialisation (official fastText's): the bag uniform in ``(-1/dim, 1/dim)`` with the
    padding row zero, the classifier zero (weights and bias). Drawn with numpy's generator of ``seed`` (the
    distribution of the trainer's, not its numbers)."""
    rng = np.random.default_rng(seed)
    emb = rng.random((rows, dim), dtype=np.float32)
    emb *= np.float32(2.0 / dim)
    emb -= np.float32(1.0 / dim)
    if pad_token_id is not None and 0 <= pad_token_id < rows:
        emb[pad_token_id] = 0.0
    return {"embeddings.weight": emb, "classifier.weight": np.zeros((num_labels, dim), np.float32),
            "classifier.bias": np.zeros(num_labels, np.float32)}


def train_fasttext_steps(weights: dict[str, np.ndarray], bag: np.ndarray, bag_offsets: np.ndarray,
                         labels: np.ndarray, order: np.ndarray, start: int, batch_size: int, lrs: np.ndarray,
                         losses: np.ndarray) -> int:
    """Run ``len(lrs)`` SGD steps in place on ``weights`` (batches of ``order`` from ``start``; step ``k`` at rate
    ``lrs[k]``), each step's mean loss into ``losses``. Returns the steps done (fewer when a loss is not finite)."""
    return int(_compiled()["train"](weights["embeddings.weight"], weights["classifier.weight"],
                                    weights["classifier.bias"], bag, bag_offsets, labels, order, int(start),
                                    int(batch_size), np.ascontiguousarray(lrs, dtype=np.float64), losses))


def fasttext_logits(weights: dict[str, np.ndarray], bag: np.ndarray, bag_offsets: np.ndarray) -> np.ndarray:
    """``(texts, num_labels)`` float32 logits of the bags."""
    return _compiled()["logits"](weights["embeddings.weight"], weights["classifier.weight"],
                                 weights["classifier.bias"], bag, bag_offsets)
