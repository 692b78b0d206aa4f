"""Render the record-backed parts of ``benchmarks/RESULTS.md`` and ``docs/TIPS.md`` from the committed records.

A generated part sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``: a table on its own
lines, or a phrase inside one line (a cell of the tips table). Everything outside the markers is hand-written and
left as it is. Each NAME is rendered from the JSON records under ``benchmarks/`` (``tips/*/epochs.json``,
``tips/imbalance.json``, ``tips/tsne.json``, ``ablate_quickstart_minilm/ablation.json``, ...), so a figure on
the page cannot drift from its record.

Differences are paired by seed. For each one the page gives the mean difference, the 95% t-interval over the
paired differences, their seed-to-seed sd and the minimum detectable effect (MDE) of a two-sided 5% paired t-test
at 80% power, ``(t(0.975, n-1) + t(0.80, n-1)) * sd / sqrt(n)`` (``bench_tips_imbalance.paired``).

    python scripts/render_results.py            # rewrite the generated parts in place
    python scripts/render_results.py --check    # exit 1, naming the parts that differ from their records
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
TIPS = BENCH / "tips"
PAGES = (BENCH / "RESULTS.md", ROOT / "docs" / "TIPS.md")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tips_imbalance import paired  # noqa: E402

MARKER = re.compile(r"<!-- generated:([\w-]+) -->(.*?)<!-- /generated:\1 -->", re.S)
MINUS = "\u2212"


# --------------------------------------------------------------------------------------------- formatting
def num(x: float, spec: str = ".4f", signed: bool = False) -> str:
    s = format(x, ("+" if signed else "") + spec)
    return s.replace("-", MINUS)


def msd(values, spec: str = ".4f") -> str:
    v = np.asarray(values, float)
    return f"{num(v.mean(), spec)} ± {num(v.std(ddof=1), spec)}" if v.size > 1 else num(v.mean(), spec)


def delta_cell(st: dict, spec: str = ".4f", power: bool = True) -> str:
    """``+Δ [lo, hi] (sd s, MDE m)`` of one paired comparison."""
    if st["n"] < 2:
        return f"{num(st['delta'], spec, True)} (1 seed)"
    out = f"{num(st['delta'], spec, True)} [{num(st['ci_low'], spec, True)}, {num(st['ci_high'], spec, True)}]"
    if power:
        out += f" (sd {num(st['sd_diff'], spec)}, MDE {num(st['mde80'], spec)})"
    return out


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def seeds_text(seeds) -> str:
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return "seed " + str(seeds[0]) if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))


# --------------------------------------------------------------------------------------------- records
@functools.lru_cache(maxsize=None)
def _read(rel: str):
    return json.loads((BENCH / rel).read_text(encoding="utf-8"))


def _jsonl(rel: str) -> list[dict]:
    """A JSON-lines record under ``benchmarks/``, one dict per non-empty line."""
    return [json.loads(ln) for ln in (BENCH / rel).read_text(encoding="utf-8").splitlines() if ln.strip()]


def _json(rel: str):
    """A record under ``benchmarks/`` (read once per process; each caller gets its own copy)."""
    return copy.deepcopy(_read(rel))


def epochs(folder: str) -> dict:
    """``tips/FOLDER/epochs.json``: {variant: {seed: {"curve": [...], "best": x}}}."""
    (rec,) = _json(f"tips/{folder}/epochs.json").values()
    return {v: {s: {"curve": c, "best": b} for s, c, b in zip(d["seeds"], d["curves"], d["best"])}
            for v, d in rec["variants"].items()}


def imbalance(rel: str, folder: str) -> dict:
    """``tips/imbalance.json``-style record: {variant: {seed: {metric: value}}} at the selected checkpoint."""
    rec = _json(rel)["folders"][folder]["variants"]
    out = {}
    for v, d in rec.items():
        keys = [k for k in d if k != "seeds"]
        out[v] = {s: {k: d[k]["values"][i] for k in keys} for i, s in enumerate(d["seeds"])}
    return out


def ablation(rel: str) -> dict:
    """An ``ablation.json``: {variant: {seed: metric}} of the finished runs."""
    out: dict = {}
    for r in _json(rel)["runs"]:
        if r.get("error") is None and r.get("metric") is not None:
            out.setdefault(r["variant"], {})[r["seed"]] = r["metric"]
    return out


def pair(a: dict, b: dict, pick=lambda x: x) -> dict:
    """Paired statistics of {seed: value} dicts over their common seeds (values through ``pick``)."""
    seeds = sorted(set(a) & set(b))
    st = paired([pick(a[s]) for s in seeds], [pick(b[s]) for s in seeds])
    st["seeds"] = seeds
    return st


def best(x):
    return x["best"]


def at_epoch(i: int):
    return lambda x: x["curve"][i - 1]


def values(d: dict, pick=lambda x: x) -> list:
    return [pick(d[s]) for s in sorted(d)]


# --------------------------------------------------------------------------------------------- RESULTS tables
LOSS_NAMES = {"baseline": "cross-entropy", "tricks=+focal_loss{gamma: 0.5}": "focal γ=0.5",
              "tricks=+focal_loss{gamma: 2}": "focal γ=2", "tricks=+focal_loss{gamma: 5}": "focal γ=5",
              "tricks=+class_weights": "class weights"}
INIT_NAMES = {"baseline": "Xavier normal (default)", "model.kwargs.init=kaiming": "Kaiming normal",
              "model.kwargs.init=normal": "normal, std 0.02",
              "tricks=+init{scheme: trunc_normal, target: [convs, classifier]}": "truncated normal, std 0.02"}


LR_SEARCHES = (("SMS spam (FastText, Adam)", "sms_lr"), ("2.9% variant (FastText, Adam)", "hard_lr"),
               ("TREC (reduced TextCNN, Adam)", "trec_lr"))
LR_SEARCHES_MORE = (("SST-2 (reduced TextCNN, Adam)", "sst2_lr"), ("THUCNews (FastText, Adagrad)", "thuc_lr"))


def t_lr_search(searches=LR_SEARCHES) -> str:
    rows = []
    for data, folder in searches:
        rec = _json(f"tips/{folder}/ablation.json")
        means = {s["name"]: s["mean"] for s in rec["summaries"]}
        picked = max(means, key=means.get)
        for s in rec["summaries"]:
            rate = s["name"].split("=", 1)[1]
            rows.append([data, rate, msd(s["values"]), str(s["n"]), "picked" if s["name"] == picked else ""])
    return table(["data", "rate", "dev metric (best), mean ± sd", "seeds", ""], rows)


def t_loss(folder: str) -> str:
    rec = imbalance("tips/imbalance.json", folder)
    base = rec["baseline"]
    rows = []
    for v, d in rec.items():
        row = [LOSS_NAMES.get(v, v)] + [msd(values(d, lambda x, k=k: x[k]), ".3f")
                                        for k in ("eval/f1/spam", "eval/pr_auc", "eval/f1_macro")]
        for k in ("eval/f1/spam", "eval/pr_auc", "eval/f1_macro"):
            row.append("–" if v == "baseline" else delta_cell(pair(d, base, lambda x, k=k: x[k])))
        rows.append(row)
    return table(["variant", "F1 spam", "PR-AUC", "macro-F1", "Δ F1 spam [95% CI] (sd, MDE)",
                  "Δ PR-AUC [95% CI] (sd, MDE)", "Δ macro-F1 [95% CI] (sd, MDE)"], rows)


def t_curves(folder: str) -> str:
    c = _json("tips/imbalance.json")["folders"][folder]["curves"]["baseline"]
    n = len(c["eval/loss"])
    label = {"sms_loss": "SMS spam, epoch", "hard_loss": "2.9% variant, epoch"}[folder]
    rows = [[name] + [f"{x:.3f}" for x in c[k]] for k, name in
            (("train/loss", "train loss"), ("eval/loss", "dev loss"), ("eval/f1/spam", "dev F1 spam"),
             ("eval/pr_auc", "dev PR-AUC"))]
    return table([label] + [str(i + 1) for i in range(n)], rows)


def t_selection() -> str:
    rows = []
    for data, folder in (("SMS spam", "sms_loss"), ("2.9% variant", "hard_loss")):
        sel = _json("tips/imbalance.json")["folders"][folder]["selection"]["baseline"]
        cells = [f"{np.mean(sel[r]['f1']):.3f} / {np.mean(sel[r]['pr_auc']):.3f} ({np.mean(sel[r]['epoch']):.1f})"
                 for r in ("dev loss (min)", "F1 spam (max)", "PR-AUC (max)", "last epoch")]
        st = paired(sel["F1 spam (max)"]["f1"], sel["dev loss (min)"]["f1"])
        rows.append([data] + cells + [delta_cell(st)])
    return table(["data", "by dev loss", "by F1 spam", "by PR-AUC", "last epoch",
                  "Δ F1 spam, by F1 − by loss [95% CI] (sd, MDE)"], rows)


NORM_RUNS = (  # model (where the norm sits), data, folder, where the no-norm runs are (folder, variant)
    ("TextCNN (per-position features)", "TREC (accuracy)", "trec_norm", ("trec_init", "baseline")),
    ("TextCNN (per-position features)", "SMS spam (macro-F1)", "sms_norm", None),
    ("TextRNN (pooled features)", "TREC (accuracy)", "trec_rnn_norm", ("trec_rnn_norm", "model.kwargs.norm=none")),
    ("TextRNN (pooled features)", "SMS spam (macro-F1)", "sms_rnn_norm", ("sms_rnn_norm", "model.kwargs.norm=none")),
)


def t_norm() -> str:
    rows = []
    for model, data, folder, none in NORM_RUNS:
        if not (TIPS / folder / "epochs.json").is_file():
            continue
        e = epochs(folder)
        ln, bn = e["baseline"], e["model.kwargs.norm=batch"]
        no = msd(values(epochs(none[0])[none[1]], best)) if none else "–"
        rows.append([model, data, no, msd(values(ln, best)), msd(values(bn, best)), delta_cell(pair(bn, ln, best)),
                     delta_cell(pair(bn, ln, at_epoch(1)), power=False)])
    return table(["model (norm on)", "data (metric)", "no norm", "LayerNorm", "BatchNorm",
                  "BatchNorm − LayerNorm at the best epoch [95% CI] (sd, MDE)", "at epoch 1 [95% CI]"], rows)


def t_init(folder: str) -> str:
    e = epochs(folder)
    base = e["baseline"]
    rows = []
    for v, d in e.items():
        row = [INIT_NAMES.get(v, v), msd(values(d, at_epoch(1))), msd(values(d, at_epoch(2))), msd(values(d, best))]
        for pick in (at_epoch(1), at_epoch(2), best):
            row.append("–" if v == "baseline" else delta_cell(pair(d, base, pick)))
        rows.append(row)
    return table(["scheme", "epoch 1", "epoch 2", "best of 4 epochs", "Δ epoch 1 [95% CI] (sd, MDE)",
                  "Δ epoch 2", "Δ best"], rows)


ABL_NAMES = {"baseline": "recipe (dropout 0.5 before the classifier)", "model.kwargs.dropout=0": "no dropout",
             "model.kwargs.embedding_dropout=0.2": "+ embedding dropout 0.2", "tricks=+rdrop": "+ R-Drop",
             "tricks=+fgm{epsilon: 0.2}": "+ FGM, ε 0.2", "tricks=+fgm{epsilon: 1.0}": "+ FGM, ε 1",
             "tricks=+fgm{epsilon: 3.0}": "+ FGM, ε 3", "tricks=+pgd{epsilon: 0.2}": "+ PGD, ε 0.2",
             "tricks=+pgd{epsilon: 1.0}": "+ PGD, ε 1", "tricks=+pgd{epsilon: 3.0}": "+ PGD, ε 3",
             "model.kwargs.num_filters=4": "2× wider: 4 filters per width",
             "model.kwargs.embedding_dim=8": "2× wider vectors: 8-d",
             "train.epochs=6": "2× longer: 6 epochs",
             "train.optimizer=adam train.learning_rate=0.0025": "Adam at the searched 0.0025",
             "train.optimizer=auto train.learning_rate=0.01": "Adagrad at the searched 0.01",
             "tricks=+lr_halving": "halving on a plateau (`lr_halving`)",
             "train.weight_decay=0": "no decay", "train.weight_decay=0.1": "decay 0.1",
             "batch 200, lr 0.005": "batch 200, lr 0.005", "batch 200, lr 0.01 (sqrt)": "batch 200, lr 0.01 (√ rule)",
             "batch 500, lr 0.005": "batch 500, lr 0.005",
             "batch 500, lr 0.0158114 (sqrt)": "batch 500, lr 0.0158 (√ rule)"}


def t_ablation(folder: str, data: str = "", base_name: str = "") -> str:
    """One ``ablate`` record: each variant's dev metric (best evaluation) and its paired Δ against the baseline."""
    runs = ablation(f"tips/{folder}/ablation.json")
    base = runs["baseline"]
    rows = []
    for v, d in runs.items():
        label = (base_name or "as is") if v == "baseline" and (base_name or data) else ABL_NAMES.get(v, f"`{v}`")
        rows.append(([data] if data else []) + [label, msd(values(d)), str(len(d)),
                    "–" if v == "baseline" else delta_cell(pair(d, base))])
    return table((["data"] if data else []) + ["variant", "dev accuracy (best), mean ± sd", "seeds",
                                               "Δ [95% CI] (sd, MDE)"], rows)


def t_underfit() -> str:
    parts = [t_ablation(folder, data).splitlines() for folder, data in (("trec_underfit", "TREC"),
                                                                        ("sst2_underfit", "SST-2"))]
    return "\n".join(parts[0] + parts[1][2:])


def t_stacked(parts) -> str:
    """Several ``ablate`` records in one table: (folder, data, baseline label) each."""
    tables = [t_ablation(folder, data, base).splitlines() for folder, data, base in parts]
    return "\n".join(tables[0] + [line for t in tables[1:] for line in t[2:]])


def _abl(folder: str, v: str, b: str = "baseline"):
    runs = ablation(f"tips/{folder}/ablation.json")
    return pair(runs[v], runs[b])


OPT_NAMES = {"adagrad": "Adagrad", "adam": "Adam", "sparse_adam": "SparseAdam", "sgd": "SGD", "auto": "Adagrad"}


def opt_label(v: str) -> str:
    """``train.optimizer=adagrad train.learning_rate=0.2`` -> ``Adagrad, lr 0.2``."""
    kv = dict(part.split("=", 1) for part in v.split())
    return f"{OPT_NAMES.get(kv.get('train.optimizer'), kv.get('train.optimizer'))}, lr {kv.get('train.learning_rate')}"


OPT_RUNS = (  # folder, data and model, metric, baseline label, keep the baseline row
    ("thuc_opt", "THUCNews FastText (sparse bag)", "accuracy", "SGD, lr 48, linear decay (recipe)", True),
    ("thuc_opt_sparse_adam", "THUCNews FastText (sparse bag)", "accuracy", "", False),
    ("sms_opt", "SMS spam FastText (dense, `sparse: false`)", "macro-F1", "Adam, lr 0.01 (recipe)", True),
    ("trec_opt", "TREC reduced TextCNN (dense)", "accuracy", "Adam, lr 0.005 (searched, tip 7)", True),
)


def t_optimizers() -> str:
    """Tip 8: each optimizer and rate against the recipe's, paired by seed."""
    rows = []
    for folder, data, metric, base_name, keep in OPT_RUNS:
        if not (TIPS / folder / "ablation.json").is_file():
            continue
        runs = ablation(f"tips/{folder}/ablation.json")
        base = runs["baseline"]
        for v, d in runs.items():
            if v == "baseline" and not keep:
                continue
            rows.append([data, metric, base_name if v == "baseline" else opt_label(v), msd(values(d)), str(len(d)),
                         "–" if v == "baseline" else delta_cell(pair(d, base))])
    return table(["data and model", "dev metric", "optimizer", "best dev metric, mean ± sd", "seeds",
                  "Δ vs the recipe's optimizer [95% CI] (sd, MDE)"], rows)


def _best_opt(folder: str, prefix: str) -> str:
    """The variant of ``folder`` starting with ``prefix`` with the best mean dev metric (the rate picked on dev)."""
    runs = ablation(f"tips/{folder}/ablation.json")
    return max((v for v in runs if v.startswith(prefix)), key=lambda v: float(np.mean(values(runs[v]))))


def _opt_pair(folder: str, a: str, b: str, other: str = "") -> dict:
    """Paired stats of variant ``a`` − ``b`` (names or ``best:PREFIX``), ``b`` possibly from folder ``other``."""
    ra = ablation(f"tips/{folder}/ablation.json")
    rb = ablation(f"tips/{other or folder}/ablation.json")
    a = _best_opt(folder, a[5:]) if a.startswith("best:") else a
    b = _best_opt(other or folder, b[5:]) if b.startswith("best:") else b
    return pair(ra[a], rb[b])


MODEL_NAMES = {"baseline": "TextCNN (recipe, 3 epochs)", "recipe=thucnews_fasttext": "FastText (recipe, 5 epochs)",
               "recipe=thucnews_dpcnn": "DPCNN (recipe, 3 epochs)"}


def t_models() -> str:
    """Tip 26: the THUCNews TextCNN, FastText and DPCNN recipes over seeds, paired against TextCNN, with the time
    of a run."""
    rec = _json("tips/thuc_models/ablation.json")
    runs = ablation("tips/thuc_models/ablation.json")
    secs: dict = {}
    for r in rec["runs"]:
        if r.get("error") is None:
            secs.setdefault(r["variant"], []).append(r["seconds"])
    base = runs["baseline"]
    rows = []
    for v, d in runs.items():
        rows.append([MODEL_NAMES.get(v, v), msd(values(d)), str(len(d)),
                     "–" if v == "baseline" else delta_cell(pair(d, base)), f"{np.median(secs[v]):.0f}",
                     f"{np.median(secs[v]) / np.median(secs['baseline']):.2f}×"])
    return table(["model", "dev accuracy (best), mean ± sd", "seeds", "Δ vs TextCNN [95% CI] (sd, MDE)",
                  "s per run (median)", "× TextCNN's time"], rows)


def t_lr_vs_recipe() -> str:
    e = epochs("trec_lr_vs_recipe")
    base, adam = e["baseline"], e["train.optimizer=adam train.learning_rate=0.005"]
    picks = (at_epoch(1), at_epoch(2), best)
    rows = [["recipe: Adadelta, lr 1.0"] + [msd(values(base, p)) for p in picks],
            ["Adam at the searched 0.005"] + [msd(values(adam, p)) for p in picks],
            ["Δ [95% CI] (sd, MDE)"] + [delta_cell(pair(adam, base, p)) for p in picks]]
    return table(["", "epoch 1", "epoch 2", "best of 4 epochs"], rows)


def t_lr_halving() -> str:
    e = epochs("sms_lr_halving")
    base, halv = e["baseline"], e["tricks=+lr_halving"]
    picks = (at_epoch(1), at_epoch(5), at_epoch(10), best)
    rows = [["constant 0.01"] + [msd(values(base, p)) for p in picks],
            ["halving on a plateau (`lr_halving`)"] + [msd(values(halv, p)) for p in picks],
            ["Δ [95% CI] (sd, MDE)"] + [delta_cell(pair(halv, base, p)) for p in picks]]
    return table(["dev macro-F1", "epoch 1", "epoch 5", "epoch 10", "best of 10 epochs"], rows)


def t_wd() -> str:
    rows = []
    sms = imbalance("tips/sms_wd/imbalance.json", "sms_wd")
    base = sms["baseline"]
    for v in ("train.weight_decay=0.01", "train.weight_decay=0.1"):
        d = sms[v]
        change = ", ".join(f"{name} {np.mean(values(base, lambda x, k=k: x[k])):.3f} → "
                           f"{np.mean(values(d, lambda x, k=k: x[k])):.3f}"
                           for k, name in (("eval/f1/spam", "spam-F1"), ("eval/f1_macro", "macro-F1")))
        deltas = "; ".join(f"{name} {delta_cell(pair(d, base, lambda x, k=k: x[k]))}" for k, name in
                           (("eval/f1/spam", "spam-F1"), ("eval/f1_macro", "macro-F1"), ("eval/pr_auc", "PR-AUC")))
        rows.append(["SMS spam, FastText + AdamW", v.split("=")[1], change, deltas])
    e = epochs("trec_wd")
    for v, label in (("train.weight_decay=0.0001", "1e-4"), ("train.weight_decay=0.001", "1e-3")):
        rows.append(["TREC, TextCNN + Adadelta", label,
                     f"accuracy {np.mean(values(e['baseline'], best)):.4f} → {np.mean(values(e[v], best)):.4f}",
                     "accuracy " + delta_cell(pair(e[v], e["baseline"], best))])
    return table(["data, model", "decay", "metric (no decay → with)", "Δ [95% CI] (sd, MDE)"], rows)


BATCH = {"sms_bs": ("SMS spam", "64 (recipe)", "0.01"), "thuc_bs": ("THUCNews", "128 (recipe)", "48")}


def t_batch() -> str:
    rows = []
    for folder, (data, bname, rate) in BATCH.items():
        e = epochs(folder)
        base = e["baseline"]
        for v, d in e.items():
            if v == "baseline":
                rows.append([data, bname, rate, msd(values(d, best)), "–", "–"])
                continue
            m = re.fullmatch(r"batch (\d+), lr ([\d.]+)( \(linear\))?", v)
            n = f" ({len(d)} seeds)" if len(d) != len(base) else ""
            rows.append([data, m.group(1), m.group(2) + (" (linear)" if m.group(3) else ""),
                         msd(values(d, best)) + n, delta_cell(pair(d, base, best)),
                         delta_cell(pair(d, base, at_epoch(1)), power=False)])
    return table(["data", "batch", "rate", "best, mean ± sd", "Δ best [95% CI] (sd, MDE)",
                  "Δ after epoch 1 [95% CI]"], rows)


MINILM_BATCH = (  # folder, variant, batch, rate
    ("minilm_bs128", "baseline", "128", "5e-5"),
    ("minilm_bs512", "baseline", "512", "5e-5"),
    ("minilm_bs512", "train.learning_rate=2.0e-4", "512", "2e-4 (√ rule)"),
)


def t_batch_minilm() -> str:
    """MiniLM quick start (one epoch) at larger batches, paired by seed against the recipe's batch 32."""
    base = ablation("ablate_quickstart_minilm/ablation.json")["baseline"]
    rows = [["32 (recipe)", "5e-5", "217", msd(values(base)), "–"]]
    for folder, v, batch, rate in MINILM_BATCH:
        if not (TIPS / folder / "ablation.json").is_file():
            continue
        d = ablation(f"tips/{folder}/ablation.json")[v]
        rows.append([batch, rate, str(-(-6920 // int(batch))), msd(values(d)), delta_cell(pair(d, base))])
    return table(["batch", "rate", "steps", "best dev accuracy, mean ± sd", "Δ vs batch 32 [95% CI] (sd, MDE)"],
                 rows)


TSNE_SETS = (("mnist", "MNIST"), ("trec_minilm", "TREC, MiniLM"))


def _tsne() -> dict:
    rec = _json("tips/tsne.json")
    out: dict = {}
    for r in rec["runs"]:
        out.setdefault(r["set"], {}).setdefault(r["arm"], {})[r["seed"]] = r
    return out


def t_tsne() -> str:
    runs = _tsne()
    rows = []
    for key, name in TSNE_SETS:
        for arm, label in (("pca50", "PCA-50 → t-SNE"), ("tsne_only", "t-SNE alone")):
            d = runs[key][arm]
            rows.append([name, label, f"{np.mean(values(d, lambda x: x['seconds'])):.1f}",
                         msd(values(d, lambda x: x["trustworthiness"]), ".3f"),
                         msd(values(d, lambda x: x["knn_2d"]), ".3f")])
    return table(["data", "arm", "time (s)", "trustworthiness", "10-NN label agreement in 2-D"], rows)


def t_tsne_paired() -> str:
    runs = _tsne()
    rows = []
    for key, name in TSNE_SETS:
        a, b = runs[key]["pca50"], runs[key]["tsne_only"]
        rows.append([name] + [delta_cell(pair(a, b, lambda x, k=k: x[k]), spec)
                              for k, spec in (("trustworthiness", ".4f"), ("knn_2d", ".4f"), ("seconds", ".1f"))])
    return table(["data", "Δ trustworthiness [95% CI] (sd, MDE)", "Δ 10-NN agreement", "Δ time, s"], rows)


QS_NAMES = {"baseline": "baseline", "tricks=+fgm": "FGM", "tricks=+pgd": "PGD (K=3)", "tricks=+rdrop": "R-Drop",
            "tricks=+label_smoothing": "label smoothing", "tricks=+embedding_dropout{p: 0.1}": "embedding dropout 0.1",
            "model.config_overrides.hidden_dropout_prob=0.0": "no hidden dropout (0.0)"}


def t_quickstart() -> str:
    rel = "ablate_quickstart_minilm/ablation.json"
    runs = ablation(rel)
    summ = {s["name"]: s for s in _json(rel)["summaries"]}
    base = runs["baseline"]
    rows = []
    for v, d in runs.items():
        s = summ[v]
        boot = "–" if s["ci_low"] is None else f"[{num(s['ci_low'], signed=True)}, {num(s['ci_high'], signed=True)}]"
        rows.append([QS_NAMES.get(v, v), msd(values(d)), " / ".join(f"{x:.4f}" for x in values(d)),
                     "–" if v == "baseline" else delta_cell(pair(d, base)), boot,
                     f"{s['seconds']:.1f}", f"{s['seconds'] / summ['baseline']['seconds']:.2f}",
                     f"{s['peak_mem_mb']:.0f}"])
    return table(["variant", "dev accuracy (best), mean ± sd", "seeds 42 / 43 / 44",
                  "Δ vs baseline [95% t-interval] (sd, MDE)", "95% CI (paired bootstrap)", "time/run (s)",
                  "× baseline time", "peak RSS (MB)"], rows)


# the quick-start tricks: seeds 42-44 of the quick-start ablation, then further seeds of the same command in records
# of their own; each run of a variant is paired with the plain run of the same seed in the same record
MINILM_RECORDS = ("ablate_quickstart_minilm/ablation.json", "tips/minilm_tricks_4546/ablation_rdrop_fgm.json",
                  "tips/minilm_tricks_4546/ablation_pgd.json")
MINILM_EMBDROP = "tips/minilm_embdrop/ablation.json"
MINILM_HIDDEN_DROPOUT = "tips/minilm_hidden_dropout/ablation.json"


def minilm_tricks(records=MINILM_RECORDS) -> dict:
    """{variant: {seed: (best dev accuracy, its record's plain run at that seed)}} over every recorded seed (the
    first record that has a seed gives it)."""
    out: dict = {}
    for rel in records:
        if not (BENCH / rel).is_file():
            continue
        runs = ablation(rel)
        base = runs.get("baseline", {})
        for v, d in runs.items():
            for seed, x in d.items():
                if seed in base:
                    out.setdefault(v, {}).setdefault(seed, (x, base[seed]))
    return out


def _qs_pair(d: dict) -> dict:
    return pair({s: x for s, (x, _) in d.items()}, {s: b for s, (_, b) in d.items()})


def t_quickstart_seeds(records=MINILM_RECORDS) -> str:
    """The quick-start tricks over all recorded seeds, each run paired with the plain run of its own record."""
    runs = minilm_tricks(records)
    seeds = sorted(runs["baseline"])
    rows = []
    for v, d in runs.items():
        rows.append([QS_NAMES.get(v, v), str(len(d)), msd([d[s][0] for s in sorted(d)]),
                     " / ".join(f"{d[s][0]:.4f}" if s in d else "–" for s in seeds),
                     "–" if v == "baseline" else delta_cell(_qs_pair(d))])
    return table(["variant", "seeds", "dev accuracy (best), mean ± sd", "seeds " + " / ".join(map(str, seeds)),
                  "Δ vs baseline [95% t-interval] (sd, MDE)"], rows)


def t_quickstart_embdrop() -> str:
    return t_quickstart_seeds((MINILM_EMBDROP,))


def t_quickstart_hidden_dropout() -> str:
    return t_quickstart_seeds((MINILM_HIDDEN_DROPOUT,))


# --------------------------------------------------------------------------------------------- other sections
def t_trainer() -> str:
    rows = [[r["loop"], f"{r['median_ms']:.1f}", f"{r['p10_ms']:.1f}–{r['p90_ms']:.1f}", f"{r['ratio']:.3f}"]
            for r in _json("bench_trainer.json")["rows"]]
    return table(["loop", "median ms/step", "p10–p90 ms", "ratio to bare loop"], rows)


INTEGRATION_PAIRS = {
    "transformers.Trainer vs TricksTrainer (no trick)": ("`transformers.Trainer` → `TricksTrainer`, no trick", "≤ 1.02×"),
    "package trainer FGM vs TricksTrainer FGM": ("the package's trainer with FGM → `TricksTrainer` with FGM", "≤ 1.05×"),
    "Accelerate loop vs TrickStep (no trick)": ("Accelerate loop (`accelerator.backward`) → `TrickStep`, no trick", "–"),
}


def t_integrations() -> str:
    rows = []
    for r in _json("integrations.json")["records"]:
        name, goal = INTEGRATION_PAIRS.get(r["pair"], (r["pair"], "–"))
        rows.append([name, f"{np.median(r['base_s_per_step']):.3f}", f"{np.median(r['new_s_per_step']):.3f}",
                     f"{r['median_ratio']:.2f}×", ", ".join(f"{x:.3f}" for x in r["ratios"]), goal])
    return table(["pair", "base s/step", "new s/step", "new / base (median)", "ratios of the 3 pairs", "goal"], rows)


def t_integrations_accuracy() -> str:
    """The ``transformers.Trainer`` example's runs at the quick-start budget beside the package trainer's seeds
    42-44 of the same recipe."""
    rows = []
    for r in _json("integrations_quickstart.json")["runs"]:
        rows.append(["`transformers.Trainer` + `TricksTrainer`", "FGM" if r["tricks"] == ["fgm"] else "none",
                     str(r["seed"]), f"{r['dev_accuracy_best']:.4f}"])
    rows.sort(key=lambda row: row[1] != "none")
    runs = ablation("ablate_quickstart_minilm/ablation.json")
    for v, name in (("baseline", "none"), ("tricks=+fgm", "FGM")):
        d = {s: runs[v][s] for s in (42, 43, 44)}
        rows.append(["the package's trainer", name, " / ".join(map(str, d)),
                     " / ".join(f"{x:.4f}" for x in d.values()) + f" ({msd(list(d.values()))})"])
    return table(["loop", "tricks", "seed", "dev accuracy (best of the evaluations)"], rows)


def t_import_time() -> str:
    before, after = _json("import_time_before.json")["seconds"], _json("import_time.json")["seconds"]
    med = {k: float(np.median(v)) for k, v in before.items()}, {k: float(np.median(v)) for k, v in after.items()}
    rows = []
    for cmd in after:
        cells = []
        for m in med:
            cell = f"{m[cmd]:.2f} s"
            if cmd in ("import nlp_cv_tricks", "nlp-cv-tricks --help"):
                cell += f" ({num(m[cmd] - m['import transformers'], '.1f', True)} s vs transformers)"
            cells.append(cell)
        label = "import nlp_cv_tricks; load_recipe(...)" if cmd == "import nlp_cv_tricks; load_recipe" else cmd
        rows.append([f"`{label}`"] + cells)
    return table(["command (median of 5 fresh interpreters)", "before (commit 463ae92)", "after (lazy API, verb table)"],
                 rows)


def t_long_memory() -> str:
    rows = _json("long_memory.json")["rows"]
    lengths = sorted({r["length"] for r in rows})
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    cell = {(r["kind"], r["length"]): r for r in rows}
    body = []
    for k in kinds:
        row = [k]
        for n in lengths:
            r = cell.get((k, n))
            row.append("skipped" if r is None or r.get("peak_mb") is None else
                       f"{r['peak_mb']:.0f} / {r['time_s']:.2f} / {r['cpu_s']:.2f}")
        body.append(row)
    out = [table(["model"] + [f"{n} tokens: MB / wall s / CPU s" for n in lengths], body), "",
           "Peak-memory ratio 4096 / 1024 tokens (linear = 4x, quadratic = 16x), and what checkpointing saves:", ""]
    for k in kinds:
        if (k, 4096) in cell and (k, 1024) in cell and cell[(k, 4096)].get("peak_mb"):
            out.append(f"- {k}: {cell[(k, 4096)]['peak_mb'] / cell[(k, 1024)]['peak_mb']:.2f}x")
    for k in kinds:
        if k.endswith("+gc"):
            continue
        for n in lengths:
            a, b = cell.get((k, n)), cell.get((k + "+gc", n))
            if a and b and a.get("peak_mb") and b.get("peak_mb"):
                out.append(f"- checkpointing saving, {k} @ {n}: {1 - b['peak_mb'] / a['peak_mb']:.0%} memory, "
                           f"{b['cpu_s'] / a['cpu_s']:.2f}x CPU time")
    return "\n".join(out)


def t_hardcases_rankings() -> str:
    agg = _json("hardcases_thucnews.json")["aggregate"]["rankings"]
    names = {"ours: mine error ranking (CL flags first, then OOF p(label))":
             "ours: `hardcases mine` error ranking (confident-learning flags first, then OOF p(label))",
             "(a) cleanlab find_label_issues (self_confidence), top k":
             "(a) cleanlab `find_label_issues` on the same OOF probs, ranked by self_confidence, top 4,500"}
    rows = [[names.get(k, k), f"{v['precision']['mean']:.3f} ± {v['precision']['std']:.3f}",
             f"{v['recall']['mean']:.3f} ± {v['recall']['std']:.3f}"] for k, v in agg.items()]
    return table(["ranking", "precision@10%", "recall@10%"], rows)


def t_hardcases_budgets() -> str:
    """Precision and recall of the mined ranking at several budgets (mean of the seeds of the THUCNews record)."""
    runs = _json("hardcases_thucnews.json")["runs"]
    budgets = list(runs[0]["ours_at_budget"])
    rows = [[f"{k} (mean of {len(runs)} seeds)"] + [f"{np.mean([r['ours_at_budget'][b][k] for r in runs]):.3f}"
                                                   for b in budgets] for k in ("precision", "recall")]
    return table(["budget"] + [f"{float(b):.0%}" for b in budgets], rows)


def t_hardcases_dev() -> str:
    rec = _json("hardcases_thucnews.json")
    agg, seeds = rec["aggregate"], [r["seed"] for r in rec["runs"]]
    rows = []
    for key, label in (("dev_accuracy_clean", "clean labels"), ("dev_accuracy_noisy", "10% flipped"),
                       ("dev_accuracy_after_round_1", "after one round (v0001)"), ("accuracy_lost", "lost to noise")):
        a = agg[key]
        rows.append([label] + [f"{x:.4f}" for x in a["values"]] + [f"{a['mean']:.4f} ± {a['std']:.4f}"])
    rec_, frac = agg["accuracy_recovered"], agg["recovered_fraction_per_seed"]["values"]
    rows.append(["recovered by one round"] + [f"{x:.4f} ({f:.0%})" for x, f in zip(rec_["values"], frac)] +
                [f"{rec_['mean']:.4f} ± {rec_['std']:.4f} ({agg['recovered_fraction_of_means']:.0%} of the mean loss)"])
    return table(["training data"] + [f"seed {s}" for s in seeds] + ["mean ± std"], rows)


def t_vision() -> str:
    rec = _json("vision.json")
    rows = []
    for data, part, size, epochs in (("MNIST 5k (32x32)", "mnist", None, rec["args"]["epochs"]),
                                     (f"hymenoptera ({rec['args']['hym_size']}x{rec['args']['hym_size']})",
                                      "hymenoptera", None, rec["args"]["hym_epochs"])):
        for setting, r in rec[part].items():
            load = r["load_avg_1min"]
            rows.append([data, setting, str(r["n_train"]), str(r["n_eval"]), str(epochs),
                         f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f}",
                         ", ".join(f"{x:.3f}" for x in r["accuracies"]), f"{r['train_images_per_s']:.0f}",
                         f"{r['eval_images_per_s']:.0f}", f"{min(load):.1f}–{max(load):.1f}"])
    return table(["data", "setting", "train imgs", "dev imgs", "epochs", "accuracy (mean ± std over seeds 0,1,2)",
                  "per seed", "train img/s", "eval img/s", "load avg (1 min)"], rows)


KIM_DATA = {"sst2": ("stsa.binary.train → stsa.binary.dev (sentences only): 6,920 → 872", 83.5),
            "trec": ("seeded stratified 90/10 of TREC.train.all: 4,906 → 546", 88.2),
            "mr": ("seeded stratified 90/10 of rt-polarity.all: 9,595 → 1,067", 75.9)}


HP_METHODS = {
    "head512": "MiniLM head-512",
    "headtail512": "MiniLM head+tail 128+382",
    "chunkpool": "MiniLM chunk-and-pool (≤ 1,024 tokens; chunks of 512 overlapping by 128, mean of [CLS])",
    "longformer": "MiniLM converted to Longformer (≤ 1,024 tokens, window 256)",
    "fasttext": "FastText, word uni+bi-grams, whole text (≤ 4,096 words)",
    "tfidf_lr": "TF-IDF (1–2-grams) + logistic regression (scikit-learn, C on dev)",
}


def _hp_settings(r: dict) -> str:
    st = r["settings"]
    if r["method"] == "tfidf_lr":
        return f"C = {r['C']} (picked on dev)"
    if r["method"] == "fasttext":
        if st.get("batch") == 1:
            return f"per-document SGD, lr {st['lr']:g}, {st['epochs']} epochs"
        return f"batch 16, lr {st['lr']:g}, {st['epochs']} epochs"
    batch = "batch 4 × 4 accumulated" if r["method"] == "longformer" else "batch 8"
    mant, exp = f"{st['lr']:.0e}".split("e")
    return f"lr {mant}e{int(exp)}, {st['epochs']:g} epochs, {batch}"


def t_hyperpartisan(test_counts=(24, 41)) -> str:
    """One row per recorded run of ``long_hyperpartisan.jsonl`` (method, settings, seed): dev macro-F1, test
    accuracy with its Wilson interval, test macro-F1 with the bootstrap interval of the confusion matrix its scores
    imply (``bench_long_hyperpartisan.macro_f1_ci``), and which setting each method's dev split picks (mean dev
    macro-F1 over the seeds of a setting; a tie marks every tied setting)."""
    from bench_long_hyperpartisan import METHODS, macro_f1_ci, wilson

    recs = [r for r in _jsonl("long_hyperpartisan.jsonl") if not r["method"].startswith("_")]
    setting = {}
    for r in recs:
        setting.setdefault((r["method"], _hp_settings(r)), []).append(r["best_dev"])
    picked = {}
    for (m, st), devs in setting.items():
        picked.setdefault(m, []).append((round(float(np.mean(devs)), 6), st))
    order = list(METHODS)
    rows, named = [], set()
    for r in sorted(recs, key=lambda r: (order.index(r["method"]), _hp_settings(r), r["seed"])):
        st = _hp_settings(r)
        top = max(d for d, _ in picked[r["method"]])
        tied = [s for d, s in picked[r["method"]] if d == top]
        sel = ("yes (tie)" if len(tied) > 1 else "yes") if st in tied else ""
        lo, hi = wilson(r["test_accuracy"], sum(test_counts))
        f1 = macro_f1_ci(r["test_accuracy"], r["test_f1_macro"], *test_counts)
        f1_cell = f"{r['test_f1_macro']:.3f}" + (f" [{f1[0]:.2f}, {f1[1]:.2f}]" if f1 else "")
        name = HP_METHODS[r["method"]] if r["method"] not in named else HP_METHODS[r["method"]].split(" (")[0]
        named.add(r["method"])
        rows.append([name, st, str(r["seed"]), f"{r['best_dev']:.3f}",
                     f"{r['test_accuracy']:.3f} [{lo:.2f}, {hi:.2f}]", f1_cell, f"{r['train_seconds']:.0f}", sel])
    return table(["method", "settings", "seed", "dev macro-F1", "test accuracy [95% CI]", "test macro-F1 [95% CI]",
                  "train s", "picked on dev"], rows)


def t_cls_probe() -> str:
    """``probe-cls --json`` of the offline MiniLM on SST-2 dev: one row per layer and pooling."""
    rows = []
    for r in _json("cls_probe_minilm_sst2.json")["rows"]:
        f = (lambda k, spec=".3f": "–" if r.get(k) is None else num(r[k], spec))
        rows.append([str(r["layer"]), r["pooling"], f"{f('probe_acc')} ± {f('probe_acc_std')}", f("majority_acc"),
                     f("anisotropy"), f("alignment"), f("uniformity"), f("spearman")])
    return table(["layer", "pooling", "probe acc (± sd over folds)", "majority", "anisotropy", "alignment",
                  "uniformity", "Spearman"], rows)


def _cls_folds(pooling: str, other: str = "cls", layer: int = 6) -> dict:
    """Paired statistics over the cross-validation folds (the same folds for every row) of two poolings."""
    rows = {r["pooling"]: r for r in _json("cls_probe_minilm_sst2.json")["rows"] if r["layer"] == layer}
    a, b = rows[pooling]["probe_fold_accs"], rows[other]["probe_fold_accs"]
    st = paired(a, b)
    st["seeds"], st["unit"] = list(range(1, len(a) + 1)), "folds"
    return st


def t_overhead() -> str:
    """``bench_tricks.py --part overhead``: median step time of each trick inside the real trainer."""
    rows = []
    for r in _json("tricks.json")["overhead"]["rows"]:
        goal = "–" if r["goal"] is None else f"≤ {r['goal']:.2f}×"
        met = "–" if r["meets_goal"] is None else ("yes" if r["meets_goal"] else "no")
        rows.append([r["variant"], f"{r['median_ms']:.0f}", f"{r['ratio']:.2f}×", goal, met])
    return table(["variant", "median step (ms)", "ratio to plain", "goal", "met"], rows)


def t_abl_summaries(rel: str, name: str) -> str:
    """An ablation kept in a ``bench_tricks.py`` record, as ``ablate`` prints it (the package's own table)."""
    from nlp_cv_tricks.experiments.tables import markdown_table
    from nlp_cv_tricks.experiments.stats import VariantSummary

    summaries = [VariantSummary(**d) for d in _json(rel)["ablations"][name]["summaries"]]
    return markdown_table(summaries, "eval/accuracy (best)").split("\n\n")[0].rstrip("\n")


TRICK_NAMES = {"baseline": "baseline", "tricks=+fgm": "FGM", "tricks=+pgd": "PGD (K=3)",
               "tricks=+freelb": "FreeLB (K=3)", "tricks=+rdrop": "R-Drop", "tricks=+focal_loss": "focal loss"}


def t_minilm54() -> str:
    """The 54-step MiniLM ablation of ``tricks_minilm_ablate.json`` with each seed's value."""
    rows = []
    for d in _json("tricks_minilm_ablate.json")["ablations"]["quickstart"]["summaries"]:
        base = d["delta"] is None
        rows.append([TRICK_NAMES.get(d["name"], d["name"]), msd(d["values"]),
                     ", ".join(f"{v:.4f}" for v in d["values"]),
                     "–" if base else num(d["delta"], ".4f", True),
                     "–" if base else f"[{num(d['ci_low'], '.4f', True)}, {num(d['ci_high'], '.4f', True)}]",
                     "–" if base else f"{d['p_value']:.2f}", f"{d['seconds']:.1f}", f"{d['peak_mem_mb']:.0f}"])
    return table(["variant", "eval/accuracy mean ± std", "per seed (42, 43, 44)", "Δ vs baseline", "95% CI of Δ",
                  "p (paired t)", "time/run (s)", "peak RSS (MB)"], rows)


RAY_RUNS = (("ray_grid_first.json", "1"), ("ray_grid.json", "2"), ("ray_grid_quiet.json", "3"))


def t_ray() -> str:
    """``bench_ray_grid.py`` records: the same 4-run grid run locally and on a local Ray, with the machine's
    parallel capacity measured before each grid."""
    rows = []
    for rel, run in RAY_RUNS:
        d = _json(rel)
        loc, ray = d["results"]["local"], d["results"]["ray"]
        cap = ("–" if loc.get("capacity_before") is None
               else f"{loc['capacity_before']['capacity']:.2f} / {ray['capacity_before']['capacity']:.2f}")
        train = [[r["train_seconds"] for r in g["runs"]] for g in (loc, ray)]
        rows.append([f"{run} (`benchmarks/{rel}`)", f"{loc['wall_seconds']:.1f}", f"{ray['wall_seconds']:.1f}",
                     f"{d['ratio_ray_over_local']:.2f}×", cap,
                     " → ".join(f"{min(t):.0f}–{max(t):.0f}" for t in train), "yes" if d["same_metrics"] else "no",
                     f"{d['load_before'][0]:.1f}"])
    return table(["run", "local wall (s)", "Ray wall (s)", "Ray / local", "capacity before local / before Ray",
                  "train s per run, local → Ray", "per-seed metrics equal", "load average before"], rows)


def _med(xs) -> float:
    return float(np.median(list(xs)))


def t_ft_e2e(rel: str) -> str:
    """``bench_fasttext_e2e.py`` pairs: the medians of wall, CPU and peak RSS of the official fastText and of our
    ``train`` (and of an earlier checkout, when the record has one), with the per-pair ratios."""
    recs = _jsonl(rel)
    runs = ["ours"] + (["before"] if "before" in recs[0] else [])
    names = {"ours": "`train`", "before": "`train` before"}
    head = [f"median of {len(recs)} pairs", "official fastText"]
    for n in runs:
        head += [names[n], f"{names[n]} / official"]
    rows = []
    for key, label, spec in (("wall_s", "wall, s", ".2f"), ("cpu_s", "CPU, s", ".2f"),
                             ("peak_rss_mb", "peak RSS, MB", ",.0f")):
        row = [label, format(_med(r["official"][key] for r in recs), spec)]
        for n in runs:
            ratios = [r[n][key] / r["official"][key] for r in recs]
            row += [format(_med(r[n][key] for r in recs), spec),
                    f"**{_med(ratios):.2f}×** ({' / '.join(f'{x:.2f}' for x in ratios)})"]
        rows.append(row)
    rows.append(["dev accuracy", f"{recs[0]['official']['dev_acc']:.4f}"]
                + [c for n in runs for c in (f"{recs[0][n]['dev_acc']:.4f}", "")])
    return table(head, rows)


def t_ft_engines() -> str:
    """``bench_fasttext_engines.py``: the compiled loop and the trainer on the FastText recipe over seeds."""
    runs = _json("fasttext_engines.json")["runs"]
    rows = []
    for engine in ("compiled", "trainer"):
        rs = sorted((r for r in runs if r["engine"] == engine), key=lambda r: r["seed"])
        acc = [r["dev_acc"] for r in rs]
        rows.append([f"`train.engine={engine}`", " / ".join(f"{a:.4f}" for a in acc), f"**{msd(acc, '.4f')}**",
                     f"{_med(r['wall_s'] for r in rs):.1f}", f"{_med(r['peak_rss_mb'] for r in rs):,.0f}"])
    seeds = sorted({r["seed"] for r in runs})
    return table(["loop", f"dev accuracy, seeds {', '.join(map(str, seeds))}", "mean ± sd", "wall s (median)",
                  "peak RSS MB (median)"], rows)


FT_PHASES = ("startup_s", "data_s", "model_s", "train_s", "eval_s", "save_s", "report_s")


def t_ft_phases(rel: str) -> str:
    """The phase breakdown of ``bench_fasttext_e2e.py`` (medians over the pairs, seconds)."""
    recs = _jsonl(rel)
    runs = ["ours"] + (["before"] if "before" in recs[0] else [])
    official = ("startup_s", "data_s", "train_s", "eval_s")  # the phases the official run times
    head = ["phase"] + [f"{'now' if n == 'ours' else 'before'}, {u}" for n in runs for u in ("CPU", "wall")]
    rows = []
    for ph in FT_PHASES:
        row = [ph[:-2].replace("startup", "start-up")]
        for n in runs:
            row += [f"{_med(r[n]['breakdown_cpu'][ph] for r in recs):.2f}",
                    f"{_med(r[n]['breakdown'][ph] for r in recs):.2f}"]
        row.append(f"{_med(r['official'][ph] for r in recs):.2f}" if ph in official else "–")
        rows.append(row)
    return table(head + ["official, wall"], rows)


def t_kim() -> str:
    runs = _json("baselines_kim.json")["kim"]
    rows = []
    for task, (split, harvard) in KIM_DATA.items():
        rs = sorted((r for r in runs if r["task"] == task), key=lambda r: r["seed"])
        acc = [r["dev_acc_best"] for r in rs]
        pub = rs[0]["published_cnn_rand"]
        secs = [r["train_s"] for r in rs]
        rows.append([task, split, " / ".join(f"{x:.2f}" for x in acc), f"**{msd(acc, '.2f')}**", f"{pub:.1f}",
                     num(np.mean(acc) - pub, ".1f", True), f"{harvard:.1f}", f"{min(secs):.0f}–{max(secs):.0f}"])
    return table(["data", "train → dev", "dev acc (best epoch), seeds " + " / ".join(str(r["seed"]) for r in rs),
                  "**mean ± std**", "Kim 2014 CNN-rand (test)", "difference", "harvardnlp re-impl.", "train s per run"],
                 rows)


def t_thucnews() -> str:
    runs = _json("baselines_thucnews.json")["thucnews"]
    ft = next(r["train_s"] for r in runs if r["model"] == "fasttext")
    rows = [[r["model"], str(r["epochs"]), " / ".join(f"{x:.2f}" for x in r["dev_acc_per_eval"]),
             f"**{r['dev_acc_best']:.2f}**", f"{r['published_test_acc']:.2f}", f"{r['train_s']:.1f}",
             f"{r['train_s'] / ft:.1f}", f"{r['infer_sents_per_s']:,.0f}", f"{r['params']:,}"] for r in runs]
    return table(["model", "epochs", "dev acc per epoch", "dev acc (best = last)", "published test acc (180k)",
                  "train s", "train s / FastText", "infer sents/s", "params"], rows)


def t_step_cost() -> str:
    runs = _json("baselines_speed.json")["speed"]
    ft = next(r["train_ms_per_step"] for r in runs if r["model"] == "fasttext")
    rows = [[r["model"], f"{r['train_ms_per_step']:.1f}", f"{r['train_ms_per_step'] / ft:.1f}",
             f"{r['train_epoch_s_est']:.0f}", f"{r['infer_sents_per_s']:,.0f}", f"{r['params']:,}"] for r in runs]
    return table(["model", "train ms/step", "× FastText", "est. s per 45k epoch", "infer sents/s", "params"], rows)


FASTTEXT_ROWS = {
    "official": "official fastText (`train_supervised`: read + dictionary + train)",
    "ours_compact_sgd": "ours, model + SGD alone (pre-tokenised tensors)",
    "ours_compact_adagrad": "ours, model + Adagrad (lr 0.2) alone",
    "ours_trainer": "ours, trainer, the recipe (dev evaluation every epoch)",
    "ours_trainer_noeval": "ours, trainer, `train.eval_each_epoch=false` (scored after `fit`, as the official model is)",
}
FASTTEXT_BOLD = {("ours_compact_sgd", "train"), ("ours_trainer_noeval", "train"), ("ours_trainer_noeval", "e2e")}


def t_fasttext_loop() -> str:
    rec = _json("baselines_fasttext.json")["fasttext"]
    rows = []
    for key, label in FASTTEXT_ROWS.items():
        med = rec["median"][key]
        if key == "official":
            rows.append([label, f"{med['dev_acc']:.2f}", f"{med['train_s']:.2f}", "1", "1.00",
                         f"{med['train_s']:.2f}", "1.00"])
            continue
        tr, e2e = rec["ratio_to_official"][f"{key}.train_s"], rec["ratio_to_official"][f"{key}.end_to_end_s"]

        def bold(x: str, col: str, key=key) -> str:
            return f"**{x}**" if (key, col) in FASTTEXT_BOLD else x

        rows.append([label, f"{med['dev_acc']:.2f}", f"{med['train_s']:.2f}",
                     " / ".join(f"{x:.2f}" for x in tr["per_round"]), bold(f"{tr['median']:.2f}", "train"),
                     f"{med['end_to_end_s']:.2f}", bold(f"{e2e['median']:.2f}", "e2e")])
    return table(["run", "dev acc", "train s (median)", "× official, per round", "× official (median)",
                  "end-to-end s (median)", "× official end-to-end (median)"], rows)


PREDICT_ROWS = {"nlp-cv-tricks predict": "`nlp-cv-tricks predict` (longest first)",
                "bare loop (sorted, batch 64)": "bare loop, sorted, batch 64 (reference)",
                "bare loop (file order, batch 64)": "bare loop, file order, batch 64",
                "nlp-cv-tricks eval": "`nlp-cv-tricks eval` (longest first)",
                "transformers.pipeline": "`transformers.pipeline`"}


def t_predict() -> str:
    rec = _json("predict_speed.json")
    rows = []
    for key, label in PREDICT_ROWS.items():
        strong = key == "nlp-cv-tricks predict"
        wall, cpu = f"{rec['median_ratio'][key]:.2f}×", f"{rec['median_cpu_ratio'][key]:.2f}×"
        rows.append([label, " / ".join(f"{x:.1f}" for x in rec["seconds"][key]),
                     f"**{wall}**" if strong else wall, " / ".join(f"{x:.1f}" for x in rec["cpu_seconds"][key]),
                     " / ".join(f"{x:.2f}" for x in rec["cpu_ratio_to_bare"][key]), f"**{cpu}**" if strong else cpu])
    return table(["contender", "wall s (pairs 1–3)", "median wall ratio", "CPU s (pairs 1–3)", "CPU ratio (pairs 1–3)",
                  "median CPU ratio"], rows)


MRC_HEADS = {"linear": "linear", "biattention": "biattention (BiDAF)", "coattention": "coattention (DCN)"}


def _mrc_runs() -> tuple[dict, dict]:
    heads: dict = {}
    lexical = {}
    for line in (BENCH / "mrc_records.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line) if line.strip() else {}
        if r.get("eval_key") != "xquad-split:40/8/0":
            continue
        if r.get("method") == "sliding-window":
            lexical = r
        elif r.get("method") == "head" and r["settings"]["lr"] == 3e-4:
            heads.setdefault(r["head"], {})[r["seed"]] = r
    return heads, lexical


def t_mrc() -> str:
    heads, lex = _mrc_runs()
    rows = [["sliding-window lexical baseline", "1", f"{lex['exact_match']:.1f}", f"{lex['f1']:.1f}", "", "", "0"]]
    base = heads["linear"]
    for h, d in heads.items():
        row = [MRC_HEADS.get(h, h), str(len(d)), msd(values(d, lambda x: x["exact_match"]), ".1f"),
               msd(values(d, lambda x: x["f1"]), ".1f")]
        for k in ("exact_match", "f1"):
            if h == "linear":
                row.append("")
                continue
            st = pair(d, base, lambda x, k=k: x[k])
            row.append(f"{num(st['delta'], '.1f', True)} [{num(st['ci_low'], '.1f', True)}, "
                       f"{num(st['ci_high'], '.1f', True)}] (MDE {num(st['mde80'], '.1f')})")
        quiet = [d[s]["train_seconds"] for s in sorted(d) if s != 0]
        row.append(f"{np.mean(quiet):.0f} ({', '.join(f'{x:.0f}' for x in quiet)})")
        rows.append(row)
    return table(["head", "n", "EM", "F1", "ΔEM vs linear, paired [95% CI] (MDE)", "ΔF1 vs linear, paired [95% CI] (MDE)",
                  "train s/run, quiet machine (seeds 1, 2)"], rows)


def t_mrc_seeds() -> str:
    heads, _ = _mrc_runs()
    seeds = sorted(heads["linear"])
    rows = [[str(s)] + [f"{heads[h][s]['exact_match']:.1f} / {heads[h][s]['f1']:.1f}" for h in heads] for s in seeds]
    return table(["seed"] + list(heads), rows)


# --------------------------------------------------------------------------------------------- power of each verdict
def _imb(folder, v, k):
    rec = imbalance("tips/imbalance.json", folder)
    return pair(rec[v], rec["baseline"], lambda x: x[k])


def _sel(folder):
    sel = _json("tips/imbalance.json")["folders"][folder]["selection"]["baseline"]
    st = paired(sel["F1 spam (max)"]["f1"], sel["dev loss (min)"]["f1"])
    st["seeds"] = sorted(_json("tips/imbalance.json")["folders"][folder]["variants"]["baseline"]["seeds"])
    return st


def _ep(folder, v, b="baseline", pick=best):
    e = epochs(folder)
    return pair(e[v], e[b], pick)


def _wd(v, k):
    rec = imbalance("tips/sms_wd/imbalance.json", "sms_wd")
    return pair(rec[v], rec["baseline"], lambda x: x[k])


def _hardcases():
    runs = {r["seed"]: r["dev_accuracy"] for r in _json("hardcases_thucnews.json")["runs"]}
    return pair({s: r["after_round_1"] for s, r in runs.items()}, {s: r["noisy"] for s, r in runs.items()})


def _mrc(head: str) -> dict:
    """F1 (as a 0-1 fraction) of the fine-tuned heads on the 8 held-out XQuAD articles, by seed."""
    out: dict = {}
    for line in (BENCH / "mrc_records.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line) if line.strip() else {}
        if r.get("method") == "head" and r.get("eval_key") == "xquad-split:40/8/0" and r["settings"]["lr"] == 3e-4:
            out.setdefault(r["head"], {})[r["seed"]] = r["f1"] / 100
    return pair(out[head], out["linear"])


def _mbs(v):
    base = ablation("ablate_quickstart_minilm/ablation.json")["baseline"]
    return pair(ablation("tips/minilm_bs512/ablation.json")[v], base)


def _qs(v, records=MINILM_RECORDS):
    return _qs_pair(minilm_tricks(records)[v])


def _qs_hidden_dropout():
    """The encoder's hidden dropout (0.1, the recipe) − none: the plain run against the variant without it."""
    d = minilm_tricks((MINILM_HIDDEN_DROPOUT,))["model.config_overrides.hidden_dropout_prob=0.0"]
    return pair({s: b for s, (_, b) in d.items()}, {s: x for s, (x, _) in d.items()})


def _tsne_pair(key, k):
    runs = _tsne()
    return pair(runs[key]["pca50"], runs[key]["tsne_only"], lambda x: x[k])


# tip -> comparisons: (label, statistics, claimed size in points of the metric, two-sided).
# Δ is oriented so that a positive value is what the tip claims; "two-sided" tips claim a difference either way.
# Where a tip names no size, the size that would matter is 1 point of the metric (0.01 on a 0–1 scale).
POWER = {
    2: lambda: [("SST-2 underfit TextCNN, 2× wider − as is, accuracy", _abl("sst2_underfit", "model.kwargs.num_filters=4"),
                 1.0, False),
                ("SST-2, 2× longer − as is", _abl("sst2_underfit", "train.epochs=6"), 1.0, False),
                ("TREC underfit TextCNN, 2× wider − as is", _abl("trec_underfit", "model.kwargs.num_filters=4"), 1.0,
                 False),
                ("TREC, 2× longer − as is", _abl("trec_underfit", "train.epochs=6"), 1.0, False)],
    3: lambda: [("MiniLM quick start, R-Drop − plain, accuracy", _qs("tricks=+rdrop"), 1.0, False),
                ("MiniLM quick start, embedding dropout 0.1 − plain, accuracy",
                 _qs("tricks=+embedding_dropout{p: 0.1}", (MINILM_EMBDROP,)), 1.0, False),
                ("MiniLM quick start, hidden dropout 0.1 (the encoder's) − none, accuracy", _qs_hidden_dropout(), 1.0,
                 False),
                ("TREC reduced TextCNN, dropout 0.5 − none, accuracy",
                 _abl("trec_dropout", "baseline", "model.kwargs.dropout=0"), 1.0, False),
                ("TREC, + embedding dropout 0.2", _abl("trec_dropout", "model.kwargs.embedding_dropout=0.2"), 1.0,
                 False),
                ("TREC, + R-Drop", _abl("trec_dropout", "tricks=+rdrop"), 1.0, False)],
    5: lambda: [("SMS spam FastText, decay 0.1 − none, macro-F1", _wd("train.weight_decay=0.1", "eval/f1_macro"), 1.0, False),
                ("SMS spam, decay 0.01 − none, macro-F1", _wd("train.weight_decay=0.01", "eval/f1_macro"), 1.0, False),
                ("TREC TextCNN, decay 1e-4 − none, accuracy", _ep("trec_wd", "train.weight_decay=0.0001"), 1.0, False),
                ("TREC, decay 1e-3 − none, accuracy", _ep("trec_wd", "train.weight_decay=0.001"), 1.0, False),
                ("MiniLM quick start, decay 0.01 (recipe) − none, accuracy",
                 _abl("minilm_wd", "baseline", "train.weight_decay=0"), 1.0, False),
                ("MiniLM, decay 0.1 − none", _abl("minilm_wd", "train.weight_decay=0.1", "train.weight_decay=0"), 1.0,
                 False)],
    7: lambda: [("TREC, searched Adam 0.005 − recipe, accuracy at the best epoch",
                 _ep("trec_lr_vs_recipe", "train.optimizer=adam train.learning_rate=0.005"), 1.0, False),
                ("SST-2 reduced TextCNN, searched Adam 0.0025 − recipe, accuracy",
                 _abl("sst2_lr_vs_recipe", "train.optimizer=adam train.learning_rate=0.0025"), 1.0, False),
                ("THUCNews FastText, searched Adagrad 0.01 − recipe, accuracy",
                 _abl("thuc_lr_vs_recipe", "train.optimizer=auto train.learning_rate=0.01"), 1.0, False),
                ("SMS spam, halving on a plateau − constant, macro-F1",
                 _ep("sms_lr_halving", "tricks=+lr_halving"), 1.0, False),
                ("SST-2, halving on a plateau − constant, accuracy", _abl("sst2_lr_halving", "tricks=+lr_halving"),
                 1.0, False),
                ("THUCNews, halving on a plateau − constant, accuracy", _abl("thuc_lr_halving", "tricks=+lr_halving"),
                 1.0, False)],
    8: lambda: [("THUCNews FastText (sparse bag), Adagrad at its dev-picked rate − SGD (the recipe), accuracy",
                 _opt_pair("thuc_opt", "best:train.optimizer=adagrad", "baseline"), 1.0, False),
                ("THUCNews, Adagrad − SparseAdam, each at its dev-picked rate",
                 _opt_pair("thuc_opt", "best:train.optimizer=adagrad", "best:train.optimizer=sparse_adam",
                           "thuc_opt_sparse_adam"), 1.0, False),
                ("SMS spam FastText (dense), Adam (the recipe) − Adagrad at its dev-picked rate, macro-F1",
                 _opt_pair("sms_opt", "baseline", "best:train.optimizer=adagrad"), 1.0, False),
                ("TREC reduced TextCNN (dense), Adam at the searched 0.005 − Adagrad at its dev-picked rate, accuracy",
                 _opt_pair("trec_opt", "baseline", "best:train.optimizer=adagrad"), 1.0, False)],
    10: lambda: [("THUCNews, batch 512 − 128 at lr 48, accuracy", _ep("thuc_bs", "batch 512, lr 48"), 1.0, True),
                 ("THUCNews, batch 32 at lr 12 − 128, accuracy", _ep("thuc_bs", "batch 32, lr 12 (linear)"), 1.0, True),
                 ("SMS spam, batch 256 − 64 at lr 0.01, macro-F1", _ep("sms_bs", "batch 256, lr 0.01"), 1.0, True),
                 ("SMS spam, batch 32 − 64 at lr 0.01, macro-F1", _ep("sms_bs", "batch 32, lr 0.01"), 1.0, True),
                 ("TREC TextCNN, batch 500 − 50 at lr 0.005, accuracy", _abl("trec_bs", "batch 500, lr 0.005"), 1.0,
                  True),
                 ("TREC, batch 500 at the √-scaled 0.0158 − 50",
                  _abl("trec_bs", "batch 500, lr 0.0158114 (sqrt)"), 1.0, True),
                 ("MiniLM quick start, batch 512 − 32 at lr 5e-5, accuracy", _mbs("baseline"), 1.0, True),
                 ("MiniLM, batch 512 at the √-scaled 2e-4 − 32", _mbs("train.learning_rate=2.0e-4"), 1.0, True)],
    11: lambda: [("2.9% variant, spam-F1 selecting on F1 − on dev loss", _sel("hard_loss"), 1.0, False),
                 ("SMS spam 13%, the same", _sel("sms_loss"), 1.0, False)],
    13: lambda: [("THUCNews FastText, 10% of labels flipped, dev accuracy after one round − before",
                  _hardcases(), 1.0, False)],
    17: lambda: [("last layer of the offline MiniLM on SST-2 dev, linear probe on mean pooling − on [CLS], accuracy",
                  _cls_folds("mean"), 1.0, False)],
    18: lambda: [("SMS spam TextCNN, LayerNorm − BatchNorm, macro-F1",
                  _ep("sms_norm", "baseline", "model.kwargs.norm=batch"), 1.0, False),
                 ("TREC, LayerNorm − BatchNorm, accuracy", _ep("trec_norm", "baseline", "model.kwargs.norm=batch"),
                  1.0, False),
                 ("TREC TextRNN (norm on pooled features), BatchNorm − LayerNorm, accuracy",
                  _ep("trec_rnn_norm", "model.kwargs.norm=batch"), 1.0, False),
                 ("SMS spam TextRNN, BatchNorm − LayerNorm, macro-F1",
                  _ep("sms_rnn_norm", "model.kwargs.norm=batch"), 1.0, False)],
    21: lambda: [("TREC TextCNN, Xavier − N(0, 0.02) after epoch 1, accuracy",
                  _ep("trec_init", "baseline", "model.kwargs.init=normal", at_epoch(1)), 1.0, False),
                 ("TREC, truncated normal − Xavier after epoch 1",
                  _ep("trec_init", INIT_TRUNC, "baseline", at_epoch(1)), 1.0, False),
                 ("SMS spam, truncated normal − Xavier after epoch 1, macro-F1",
                  _ep("sms_init", INIT_TRUNC, "baseline", at_epoch(1)), 1.0, False)],
    23: lambda: [("MiniLM quick start, FGM − plain, accuracy", _qs("tricks=+fgm"), 1.0, False),
                 ("PGD − plain", _qs("tricks=+pgd"), 1.0, False),
                 ("TREC reduced TextCNN, FGM ε 0.2 − plain, accuracy",
                  _abl("trec_adv", "tricks=+fgm{epsilon: 0.2}"), 1.0, False),
                 ("TREC, PGD ε 0.2 − plain", _abl("trec_adv", "tricks=+pgd{epsilon: 0.2}"), 1.0, False)],
    25: lambda: [("13% spam, focal γ=2 − cross-entropy, spam-F1",
                  _imb("sms_loss", "tricks=+focal_loss{gamma: 2}", "eval/f1/spam"), 1.0, False),
                 ("13%, γ=5, spam-F1", _imb("sms_loss", "tricks=+focal_loss{gamma: 5}", "eval/f1/spam"), 1.0, False),
                 ("2.9% variant, γ=5, spam-F1", _imb("hard_loss", "tricks=+focal_loss{gamma: 5}", "eval/f1/spam"),
                  1.0, False),
                 ("2.9%, γ=5, PR-AUC", _imb("hard_loss", "tricks=+focal_loss{gamma: 5}", "eval/pr_auc"), 1.0, False)],
    29: lambda: [("XQuAD-en 40/8 articles, bi-attention − linear head, F1", _mrc("biattention"), 1.0, False),
                 ("co-attention − linear, F1", _mrc("coattention"), 1.0, False)],
    26: lambda: [("THUCNews, FastText − TextCNN (each recipe), accuracy",
                  _abl("thuc_models", "recipe=thucnews_fasttext"), 1.0, True),
                 ("THUCNews, DPCNN − TextCNN", _abl("thuc_models", "recipe=thucnews_dpcnn"), 1.0, True)],
    27: lambda: [("TREC/MiniLM vectors, PCA first − t-SNE alone, 10-NN agreement", _tsne_pair("trec_minilm", "knn_2d"),
                  1.0, False),
                 ("MNIST, the same", _tsne_pair("mnist", "knn_2d"), 1.0, False)],
}
INIT_TRUNC = "tricks=+init{scheme: trunc_normal, target: [convs, classifier]}"


def pts(x: float) -> str:
    return num(100 * x, ".2f", True)


def reading(st: dict, claim: float, two_sided: bool) -> str:
    """What the interval says about a claimed difference of ``claim`` points."""
    if st["n"] < 2:
        return "one seed: no interval"
    lo, hi = 100 * st["ci_low"], 100 * st["ci_high"]
    if two_sided:
        if lo > 0 or hi < 0:
            return "a difference: interval excludes 0"
        if -claim < lo and hi < claim:
            return f"no difference of {claim:g}: interval within ±{claim:g}"
        return "not resolved"
    if lo > 0:
        return "a gain: interval above 0"
    if hi < 0:
        return "a loss: interval below 0"
    if hi < claim:
        return f"no gain of {claim:g}: interval below +{claim:g}"
    return "not resolved: interval contains 0 and +" + f"{claim:g}"


def power_rows():
    for tip in sorted(POWER):
        for label, st, claim, two in POWER[tip]():
            yield tip, label, st, claim, two


def t_power() -> str:
    rows = []
    for tip, label, st, claim, two in power_rows():
        rows.append([str(tip), label, str(st["n"]) + (" folds" if st.get("unit") == "folds" else ""), pts(st["delta"]),
                     f"[{pts(st['ci_low'])}, {pts(st['ci_high'])}]", num(100 * st["sd_diff"], ".2f"),
                     num(100 * st["mde80"], ".2f"), ("±" if two else "+") + f"{claim:g}", reading(st, claim, two)])
    return table(["tip", "comparison (Δ: what the tip claims, positive)", "seeds", "Δ (points)", "95% t-interval",
                  "sd of Δ", "MDE (80% power)", "size tested", "reading"], rows)


def tip_power(tip: int) -> str:
    """The power phrase of one row of docs/TIPS.md."""
    parts = []
    seeds = set()
    for label, st, claim, two in POWER[tip]():
        seeds.update(st["seeds"])
        parts.append(f"{label}: Δ {pts(st['delta'])} [{pts(st['ci_low'])}, {pts(st['ci_high'])}], "
                     f"sd {num(100 * st['sd_diff'], '.2f')}, MDE {num(100 * st['mde80'], '.2f')} "
                     f"({reading(st, claim, two)})")
    if all(st.get("unit") == "folds" for _, st, _, _ in POWER[tip]()):
        return (f"*Power* ({len(seeds)} cross-validation folds of one checkpoint, paired; points; sd = fold-to-fold "
                f"sd of the paired Δ; MDE at 80% power; the folds share training data, so the interval is, if anything, "
                f"too narrow): " + "; ".join(parts) + ".")
    return (f"*Power* ({seeds_text(seeds)}, paired; points; sd = seed-to-seed sd of the paired Δ; "
            f"MDE at 80% power): " + "; ".join(parts) + ".")


RENDER = {
    "tips-lr-search": t_lr_search,
    "tips-lr-search-more": lambda: t_lr_search(LR_SEARCHES_MORE),
    "tips-loss-sms": lambda: t_loss("sms_loss"),
    "tips-loss-hard": lambda: t_loss("hard_loss"),
    "tips-curves-sms": lambda: t_curves("sms_loss"),
    "tips-curves-hard": lambda: t_curves("hard_loss"),
    "tips-selection": t_selection,
    "tips-norm": t_norm,
    "tips-init-trec": lambda: t_init("trec_init"),
    "tips-init-sms": lambda: t_init("sms_init"),
    "tips-lr-vs-recipe": t_lr_vs_recipe,
    "tips-lr-halving": t_lr_halving,
    "tips-wd": t_wd,
    "tips-dropout-trec": lambda: t_ablation("trec_dropout"),
    "tips-adv-sweep-trec": lambda: t_ablation("trec_adv_sweep", base_name="plain"),
    "tips-adv-trec": lambda: t_ablation("trec_adv", base_name="plain"),
    "tips-underfit": t_underfit,
    "tips-batch-trec": lambda: t_ablation("trec_bs", base_name="batch 50, lr 0.005 (the recipe's batch)"),
    "tips-wd-minilm": lambda: t_ablation("minilm_wd", base_name="decay 0.01 (the recipe)"),
    "tips-lr-vs-recipe-more": lambda: t_stacked([("sst2_lr_vs_recipe", "SST-2, reduced TextCNN, 4 epochs",
                                                  "recipe: Adadelta, lr 1.0"),
                                                 ("thuc_lr_vs_recipe", "THUCNews, FastText, 5 epochs",
                                                  "recipe: SGD, lr 48, linear decay")]),
    "tips-lr-halving-more": lambda: t_stacked([("sst2_lr_halving", "SST-2, reduced TextCNN, Adam, 8 epochs",
                                                "constant 0.01"),
                                               ("thuc_lr_halving", "THUCNews, FastText, Adagrad, 5 epochs",
                                                "constant 0.2")]),
    "tips-batch": t_batch,
    "tips-tsne": t_tsne,
    "tips-tsne-paired": t_tsne_paired,
    "tips-power": t_power,
    "tricks-quickstart": t_quickstart,
    "tricks-quickstart-seeds": t_quickstart_seeds,
    "tricks-quickstart-embdrop": t_quickstart_embdrop,
    "tricks-quickstart-hidden-dropout": t_quickstart_hidden_dropout,
    "trainer-step": t_trainer,
    "integrations-step": t_integrations,
    "integrations-accuracy": t_integrations_accuracy,
    "import-time": t_import_time,
    "long-memory": t_long_memory,
    "hardcases-rankings": t_hardcases_rankings,
    "hardcases-dev": t_hardcases_dev,
    "hardcases-budgets": t_hardcases_budgets,
    "vision": t_vision,
    "baselines-kim": t_kim,
    "long-hyperpartisan": t_hyperpartisan,
    "cls-probe": t_cls_probe,
    "tricks-overhead": t_overhead,
    "tricks-textcnn-1epoch": lambda: t_abl_summaries("tricks.json", "sst2_textcnn"),
    "tricks-minilm-54": t_minilm54,
    "ray-grid": t_ray,
    "tips-optimizers": t_optimizers,
    "tips-models": t_models,
    "tips-batch-minilm": t_batch_minilm,
    "fasttext-e2e-shared": lambda: t_ft_e2e("fasttext_e2e.jsonl"),
    "fasttext-e2e-shared-phases": lambda: t_ft_phases("fasttext_e2e.jsonl"),
    "fasttext-e2e-compiled": lambda: t_ft_e2e("fasttext_e2e_compiled.jsonl"),
    "fasttext-e2e-compiled-phases": lambda: t_ft_phases("fasttext_e2e_compiled.jsonl"),
    "fasttext-engines": t_ft_engines,
    "fasttext-e2e-quiet": lambda: t_ft_e2e("fasttext_e2e_quiet.jsonl"),
    "fasttext-e2e-quiet-phases": lambda: t_ft_phases("fasttext_e2e_quiet.jsonl"),
    "fasttext-loop": t_fasttext_loop,
    "predict-speed": t_predict,
    "baselines-thucnews": t_thucnews,
    "baselines-step-cost": t_step_cost,
    "mrc-xquad": t_mrc,
    "mrc-xquad-seeds": t_mrc_seeds,
    **{f"power-{tip}": (lambda tip=tip: tip_power(tip)) for tip in POWER},
}


# --------------------------------------------------------------------------------------------- pages
def render(text: str, where: str = "page") -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in RENDER:
            raise SystemExit(f"{where}: unknown generated part {name!r}; known: {', '.join(sorted(RENDER))}")
        body = RENDER[name]()
        body = f"\n{body}\n" if "\n" in m.group(2) else body
        return f"<!-- generated:{name} -->{body}<!-- /generated:{name} -->"

    return MARKER.sub(sub, text)


def stale_parts(old: str, new: str) -> list[str]:
    a = {m.group(1): m.group(0) for m in MARKER.finditer(old)}
    b = {m.group(1): m.group(0) for m in MARKER.finditer(new)}
    return sorted(k for k in a if a[k] != b.get(k))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page differs from its records")
    args = ap.parse_args(argv)
    bad = []
    for page in PAGES:
        old = page.read_text(encoding="utf-8")
        new = render(old, str(page))
        if new == old:
            continue
        if args.check:
            bad.append(f"{page.relative_to(ROOT)}: {', '.join(stale_parts(old, new))}")
            continue
        tmp = page.with_suffix(".md.tmp")
        tmp.write_text(new, encoding="utf-8")
        os.replace(tmp, page)
        print(f"updated {page.relative_to(ROOT)}")
    if bad:
        print("out of date with the records (run python scripts/render_results.py):\n  " + "\n  ".join(bad),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
