"""Benchmark of the hard-case loop: find flipped labels, relabel them, recover accuracy.

Protocol (issue 8): take SST-2 training sentences (Kim 2014 copy under ../shared/data/kim2014), flip 10% of the
training labels with a fixed seed, run ``hardcases mine`` (K-fold OOF through the trainer), and report
precision/recall of the flipped examples within the top 10% for (ours) the mine ranking, (a) cleanlab's
``find_label_issues`` on the same OOF probabilities, (b) random ranking, plus the training-dynamics rankings
(AUM, cartography confidence). Then an annotator is simulated who restores the true labels of the exported
10% budget (through export → CSV → import → version), and dev accuracy is reported for training on the clean
data, the noisy data, and the version after one round.

    HF_HUB_OFFLINE=1 python scripts/bench_hardcases.py --n-train 1000 --folds 4 --epochs 2

Prints a markdown table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def p_r(selected, flipped):
    sel = set(selected)
    hit = len(sel & flipped)
    return (hit / len(sel) if sel else 0.0), hit / len(flipped)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "kim2014"))
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-dev", type=int, default=872)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--mine-epochs", type=int, default=None, help="epochs of the fold models (default: --epochs)")
    ap.add_argument("--no-retrain", action="store_true", help="only the ranking part")
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "hardcases.json"))
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.hardcases import export_hard_cases, import_annotations, mine
    from nlp_cv_tricks.hardcases.importer import VersionStore
    from nlp_cv_tricks.hardcases.retrain import train_and_evaluate

    t_start = time.time()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_hardcases_"))
    work.mkdir(parents=True, exist_ok=True)
    lines = Path(args.data, "stsa.binary.train").read_text(encoding="latin-1").splitlines()
    rng = random.Random(args.seed)
    picked = rng.sample(range(len(lines)), args.n_train)
    rows = [(int(lines[i].split(" ", 1)[0]), lines[i].split(" ", 1)[1]) for i in picked]
    n_flip = int(round(args.noise * len(rows)))
    flipped = set(rng.sample(range(len(rows)), n_flip))
    noisy = [(1 - y if i in flipped else y, t) for i, (y, t) in enumerate(rows)]
    clean_f, noisy_f = work / "clean" / "train.txt", work / "noisy" / "train.txt"
    for f, rr in ((clean_f, rows), (noisy_f, noisy)):
        f.parent.mkdir(exist_ok=True)
        f.write_text("".join(f"{y} {t}\n" for y, t in rr), encoding="utf-8")
    dev_lines = Path(args.data, "stsa.binary.dev").read_text(encoding="latin-1").splitlines()[: args.n_dev]
    dev_f = work / "dev.txt"
    dev_f.write_text("\n".join(dev_lines) + "\n", encoding="utf-8")

    base = [f"data.train_file={noisy_f}", f"data.dev_file={dev_f}", "data.format=kim2014",
            "data.label_names=[negative,positive]", "data.max_length=64", f"model.name={args.model}",
            f"train.epochs={args.epochs}", f"train.batch_size={args.batch_size}", f"train.learning_rate={args.lr}",
            "train.eval_batch_size=128", "train.progress_bar=false", "output.report_to=none", "tricks=[]",
            "train.eval_steps=null", "train.eval_each_epoch=false", "train.warmup_ratio=0.06", "train.logging_steps=50"]
    recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml", base)
    mine_recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml",
                              base + [f"train.epochs={args.mine_epochs or args.epochs}"])

    t0 = time.time()
    res = mine(mine_recipe, work / "mine", folds=args.folds, seed=args.seed)
    t_mine = time.time() - t0
    scores = res.scores
    k = n_flip  # top 10% = the number of flipped labels
    labels = np.array([s["label"] for s in scores])
    probs = res.oof_probs

    def topk(key, reverse=False):
        vals = [(s[key] if s[key] is not None else (float("inf") if not reverse else float("-inf")), s["row"])
                for s in scores]
        return [r for _, r in sorted(vals, reverse=reverse)[:k]]

    table = {}
    table["ours: mine error ranking (CL flags first, then OOF p(label))"] = p_r(topk("error_rank"), flipped)
    from cleanlab.filter import find_label_issues

    cl_ranked = list(find_label_issues(labels, probs, return_indices_ranked_by="self_confidence"))
    table[f"(a) cleanlab find_label_issues, ranked by self_confidence ({len(cl_ranked)} flagged), top {k}"] = \
        p_r(cl_ranked[:k], flipped)
    rnd = random.Random(args.seed + 1)
    rand = [p_r(rnd.sample(range(len(scores)), k), flipped) for _ in range(100)]
    table["(b) random ranking (mean of 100 draws)"] = (float(np.mean([p for p, _ in rand])),
                                                      float(np.mean([r for _, r in rand])))
    table["training dynamics: area under the margin (ascending)"] = p_r(topk("aum"), flipped)
    table["training dynamics: cartography confidence (ascending)"] = p_r(topk("confidence"), flipped)

    out = {"args": vars(args), "n_flipped": n_flip, "k": k,
           "rankings": {n: {"precision": p, "recall": r} for n, (p, r) in table.items()},
           "oof_accuracy": res.summary["oof_accuracy"], "n_label_issues": res.summary["n_label_issues"],
           "method": res.summary["method"], "seconds": {"mine": t_mine}, "workdir": str(work)}
    print(f"\n### Finding flipped labels: {len(rows)} SST-2 train sentences, {n_flip} flipped (seed {args.seed}), "
          f"{args.folds}-fold OOF, top {k} (10%)\n")
    print("| ranking | precision@10% | recall@10% |\n|---|---|---|")
    for name, (p, r) in table.items():
        print(f"| {name} | {p:.3f} | {r:.3f} |")
    print(f"\nOOF accuracy vs the noisy labels: {res.summary['oof_accuracy']:.3f}; confident-learning flags: "
          f"{res.summary['n_label_issues']} ({res.summary['method']}); mining {t_mine:.0f} s")
    if args.no_retrain:
        _write_json(args.json, out)
        return
    # simulated annotator restores the true labels of the exported budget
    paths = export_hard_cases(work / "mine", work / "round_1", budget=args.noise)
    names = res.summary["label_names"]
    annotated = work / "round_1" / "annotated.csv"
    with open(paths["csv"], newline="", encoding="utf-8") as f:
        exp_rows = list(csv.DictReader(f))
    for r in exp_rows:
        r["new_label"] = names[rows[int(r["id"])][0]]
        r["annotator"] = "simulated"
    with open(annotated, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(exp_rows[0].keys()))
        w.writeheader()
        w.writerows(exp_rows)
    rep = import_annotations([annotated], recipe, work / "versions")
    store = VersionStore(work / "versions", recipe)
    t1 = time.time()
    acc_clean = train_and_evaluate(recipe, work / "train_clean", clean_f, keep_model=False)
    acc_noisy = train_and_evaluate(recipe, work / "train_noisy", noisy_f, keep_model=False)
    acc_round = train_and_evaluate(recipe, work / "train_round1", store.train_file(rep["version"]),
                                   keep_model=False)
    t_train = time.time() - t1
    a_c, a_n, a_r = (x["dev/accuracy"] for x in (acc_clean, acc_noisy, acc_round))
    lost = a_c - a_n
    recovered = (a_r - a_n) / lost if lost > 0 else float("nan")

    print(f"\n### One relabeling round ({rep['counts']['relabel']} relabelled, {rep['counts']['confirm']} confirmed "
          f"of {len(exp_rows)} exported), dev = first {len(dev_lines)} SST-2 dev sentences\n")
    print("| training data | dev accuracy |\n|---|---|")
    print(f"| clean labels | {a_c:.4f} |\n| 10% flipped | {a_n:.4f} |\n| after one round ({rep['version']}) | {a_r:.4f} |")
    print(f"\nAccuracy lost to noise: {lost:+.4f}; recovered by one round: {recovered:.2f} of it. "
          f"Mining {t_mine:.0f} s, three trainings {t_train:.0f} s, total {time.time() - t_start:.0f} s "
          f"({torch.get_num_threads()} thread(s), CPU).")
    out.update({"import": {kk: rep[kk] for kk in ("version", "counts")},
                "dev_accuracy": {"clean": a_c, "noisy": a_n, "after_round_1": a_r}, "recovered_fraction": recovered})
    out["seconds"].update(train=t_train, total=time.time() - t_start)
    _write_json(args.json, out)


def _write_json(path, out) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
