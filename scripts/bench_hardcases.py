"""Benchmark of the hard-case loop: find flipped labels, relabel them, recover accuracy.

Protocol (issue 8): take a real training set, flip 10% of its labels with a fixed seed, run ``hardcases mine``
(K-fold OOF through the trainer), and report precision/recall of the flipped examples within the top 10% for
(ours) the mine ranking, (a) cleanlab's ``find_label_issues`` on the same OOF probabilities, (b) random ranking,
plus the training-dynamics rankings (AUM, cartography confidence). Then an annotator is simulated who restores
the true labels of the exported 10% budget (through export → CSV → import → version), and dev accuracy is
reported for training on the clean data, the noisy data, and the version after one round.

Datasets (``--dataset``):

* ``thucnews`` (default): THUCNews titles (``../shared/data/thucnews``, ``text<TAB>label_id``, 10 classes) with
  the package's FastText baseline (``recipes/thucnews_fasttext.yaml``); ``--n-train`` titles drawn with the seed
  from the 45k training titles (all of them with ``--n-train 45000``), each flipped label moved to a uniformly
  drawn *different* class; dev = the first ``--n-dev`` of the 10k dev titles.
* ``sst2``: SST-2 sentences (Kim 2014 copy) with a fine-tuned MiniLM (``recipes/quickstart.yaml``); a flipped
  label is the other class.

``--seeds 0 1 2`` repeats the whole pipeline (sample, flips, folds, training seeds) per seed and reports
mean ± std over seeds.

    HF_HUB_OFFLINE=1 python scripts/bench_hardcases.py --dataset thucnews --n-train 45000 --folds 5 --seeds 0 1 2
    HF_HUB_OFFLINE=1 python scripts/bench_hardcases.py --dataset sst2 --n-train 600 --n-dev 400 --folds 3 \\
        --epochs 2 --lr 1e-4 --batch-size 16

Prints markdown tables and writes JSON (``--json``).
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

DEFAULTS = {  # per dataset: data dir, n_train, n_dev, epochs, lr, batch size
    "sst2": dict(data=ROOT.parent / "shared" / "data" / "kim2014", n_train=1000, n_dev=872, epochs=2, lr=5e-5,
                 batch_size=32),
    "thucnews": dict(data=ROOT.parent / "shared" / "data" / "thucnews", n_train=45000, n_dev=10000, epochs=5,
                     lr=0.2, batch_size=128, optimizer="auto"),
}
# the settings a run depends on (a --resume reuses finished seeds only when all of them match)
RUN_KEYS = ("dataset", "data", "n_train", "n_dev", "noise", "train_seed", "folds", "epochs", "mine_epochs",
            "no_retrain", "model", "lr", "batch_size", "optimizer", "threads")


def p_r(selected, flipped):
    sel = set(selected)
    hit = len(sel & flipped)
    return (hit / len(sel) if sel else 0.0), hit / len(flipped)


def flip_labels(labels: list[int], n_classes: int, noise: float, rng: random.Random) -> tuple[list[int], set]:
    """Flip round(noise * n) labels chosen with ``rng``; each goes to a uniformly drawn different class."""
    n_flip = int(round(noise * len(labels)))
    flipped = set(rng.sample(range(len(labels)), n_flip))
    noisy = list(labels)
    for i in sorted(flipped):
        noisy[i] = rng.choice([c for c in range(n_classes) if c != labels[i]])
    return noisy, flipped


def prepare(args, seed: int, work: Path):
    """Clean rows, noisy rows, flipped set, files and the recipe overrides for one seed."""
    rng = random.Random(seed)
    data = Path(args.data)
    if args.dataset == "sst2":
        lines = Path(data, "stsa.binary.train").read_text(encoding="latin-1").splitlines()
        picked = rng.sample(range(len(lines)), min(args.n_train, len(lines)))
        rows = [(int(lines[i].split(" ", 1)[0]), lines[i].split(" ", 1)[1]) for i in picked]
        n_classes, fmt = 2, "kim2014"
        dev_lines = Path(data, "stsa.binary.dev").read_text(encoding="latin-1").splitlines()[: args.n_dev]
    else:
        lines = [ln for ln in Path(data, "train.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
        picked = (list(range(len(lines))) if args.n_train >= len(lines) else
                  sorted(rng.sample(range(len(lines)), args.n_train)))
        rows = []
        for i in picked:
            text, lab = lines[i].rsplit("\t", 1)
            rows.append((int(lab), text))
        n_classes = len([ln for ln in Path(data, "class.txt").read_text(encoding="utf-8").splitlines() if ln.strip()])
        fmt = "thucnews"
        dev_lines = [ln for ln in Path(data, "dev.txt").read_text(encoding="utf-8").splitlines()
                     if ln.strip()][: args.n_dev]
    labels, texts = [y for y, _ in rows], [t for _, t in rows]
    noisy_labels, flipped = flip_labels(labels, n_classes, args.noise, rng)
    noisy = list(zip(noisy_labels, texts))

    def line(y, t):
        return f"{y} {t}\n" if fmt == "kim2014" else f"{t}\t{y}\n"

    clean_f, noisy_f = work / "clean" / "train.txt", work / "noisy" / "train.txt"
    for f, rr in ((clean_f, rows), (noisy_f, noisy)):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(line(y, t) for y, t in rr), encoding="utf-8")
    dev_f = work / "dev.txt"
    dev_f.write_text("\n".join(dev_lines) + "\n", encoding="utf-8")
    train_seed = seed if args.train_seed is None else args.train_seed
    common = [f"data.train_file={noisy_f}", f"data.dev_file={dev_f}", f"train.seed={train_seed}",
              f"train.batch_size={args.batch_size}", f"train.learning_rate={args.lr}", "train.progress_bar=false",
              *([f"train.optimizer={args.optimizer}"] if args.optimizer else []),
              "output.report_to=none", "train.eval_steps=null", "train.eval_each_epoch=false",
              "train.logging_steps=100"]
    if args.dataset == "sst2":
        recipe_path = ROOT / "recipes" / "quickstart.yaml"
        base = common + ["data.format=kim2014", "data.label_names=[negative,positive]", "data.max_length=64",
                         f"model.name={args.model}", "train.eval_batch_size=128", "tricks=[]", "callbacks=[]",
                         "train.warmup_ratio=0.06"]
    else:
        recipe_path = ROOT / "recipes" / "thucnews_fasttext.yaml"
        base = common + ["data.format=thucnews", f"data.label_names_file={data / 'class.txt'}",
                         "train.eval_batch_size=2048"]
    return rows, noisy, flipped, clean_f, noisy_f, len(dev_lines), recipe_path, base


def run_seed(args, seed: int, work: Path) -> dict:
    import numpy as np
    import torch

    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.hardcases import export_hard_cases, import_annotations, mine
    from nlp_cv_tricks.hardcases.importer import VersionStore
    from nlp_cv_tricks.hardcases.retrain import train_and_evaluate

    t_start = time.time()
    work.mkdir(parents=True, exist_ok=True)
    rows, noisy, flipped, clean_f, noisy_f, n_dev, recipe_path, base = prepare(args, seed, work)
    n_flip = len(flipped)
    recipe = load_recipe(recipe_path, base + [f"train.epochs={args.epochs}"])
    mine_recipe = load_recipe(recipe_path, base + [f"train.epochs={args.mine_epochs or args.epochs}"])

    t0 = time.time()
    res = mine(mine_recipe, work / "mine", folds=args.folds, seed=seed)
    t_mine = time.time() - t0
    scores = res.scores
    k = n_flip  # top 10% = the number of flipped labels
    labels = np.array([s["label"] for s in scores])
    probs = res.oof_probs

    def topk(key):
        vals = [(s[key] if s[key] is not None else float("inf"), s["row"]) for s in scores]
        return [r for _, r in sorted(vals)[:k]]

    table = {}
    table["ours: mine error ranking (CL flags first, then OOF p(label))"] = p_r(topk("error_rank"), flipped)
    from cleanlab.filter import find_label_issues

    cl_ranked = list(find_label_issues(labels, probs, return_indices_ranked_by="self_confidence"))
    table["(a) cleanlab find_label_issues (self_confidence), top k"] = p_r(cl_ranked[:k], flipped)
    rnd = random.Random(seed + 1)
    rand = [p_r(rnd.sample(range(len(scores)), k), flipped) for _ in range(100)]
    table["(b) random ranking (mean of 100 draws)"] = (float(np.mean([p for p, _ in rand])),
                                                      float(np.mean([r for _, r in rand])))
    table["training dynamics: area under the margin (ascending)"] = p_r(topk("aum"), flipped)
    table["training dynamics: cartography confidence (ascending)"] = p_r(topk("confidence"), flipped)
    flagged = set(np.flatnonzero([s["is_label_issue"] for s in scores]).tolist())
    order = [s["row"] for s in sorted(scores, key=lambda s: s["error_rank"])]
    at_budget = {}
    for frac in (0.05, 0.10, 0.15, 0.20):  # ours at other budgets: what a larger annotation budget buys
        pb, rb = p_r(order[: int(round(frac * len(scores)))], flipped)
        at_budget[f"{frac:.2f}"] = {"precision": pb, "recall": rb}
    out = {"seed": seed, "n_train": len(rows), "n_dev": n_dev, "n_flipped": n_flip, "k": k,
           "rankings": {n: {"precision": p, "recall": r} for n, (p, r) in table.items()},
           "cleanlab_flagged": len(cl_ranked), "ours_at_budget": at_budget,
           "ours_flagged": {"n": len(flagged), "precision": p_r(flagged, flipped)[0] if flagged else 0.0,
                            "recall": p_r(flagged, flipped)[1]},
           "oof_accuracy_vs_noisy": res.summary["oof_accuracy"],
           "oof_accuracy_vs_clean": float((probs.argmax(1) == np.array([y for y, _ in rows])).mean()),
           "method": res.summary["method"], "seconds": {"mine": t_mine}, "workdir": str(work)}
    print(f"\n#### seed {seed}: {len(rows)} training examples, {n_flip} flipped, {args.folds}-fold OOF, "
          f"top {k} (10%)\n", flush=True)
    print("| ranking | precision@10% | recall@10% |\n|---|---|---|")
    for name, (p, r) in table.items():
        print(f"| {name} | {p:.3f} | {r:.3f} |")
    print(f"\nOOF accuracy vs noisy labels {out['oof_accuracy_vs_noisy']:.4f}, vs clean labels "
          f"{out['oof_accuracy_vs_clean']:.4f}; confident-learning flags: {len(flagged)} "
          f"({res.summary['method']}); cleanlab self_confidence flags {len(cl_ranked)}; mining {t_mine:.0f} s",
          flush=True)
    print("ours at other budgets (precision / recall): " + ", ".join(
        f"{float(f):.0%}: {v['precision']:.3f} / {v['recall']:.3f}" for f, v in at_budget.items()), flush=True)
    if args.no_retrain:
        return out
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
    # the version really holds the restored labels
    restored = sum(1 for c in store.changes(rep["version"]) if c["action"] == "relabel")
    t1 = time.time()
    acc_clean = train_and_evaluate(recipe, work / "train_clean", clean_f, keep_model=False)
    acc_noisy = train_and_evaluate(recipe, work / "train_noisy", noisy_f, keep_model=False)
    acc_round = train_and_evaluate(recipe, work / "train_round1", store.train_file(rep["version"]),
                                   keep_model=False)
    t_train = time.time() - t1
    a_c, a_n, a_r = (x["dev/accuracy"] for x in (acc_clean, acc_noisy, acc_round))
    lost = a_c - a_n
    recovered = (a_r - a_n) / lost if lost > 0 else float("nan")
    print(f"\nOne round: {rep['counts']['relabel']} relabelled, {rep['counts']['confirm']} confirmed of "
          f"{len(exp_rows)} exported; dev accuracy ({n_dev} dev examples): clean {a_c:.4f}, noisy {a_n:.4f}, "
          f"after round 1 {a_r:.4f}; lost {lost:+.4f}, recovered {recovered:.2f} of it. Mining {t_mine:.0f} s, "
          f"three trainings {t_train:.0f} s, total {time.time() - t_start:.0f} s "
          f"({torch.get_num_threads()} thread(s)).", flush=True)
    out.update({"import": {"version": rep["version"], "counts": rep["counts"], "relabel_records": restored},
                "dev_accuracy": {"clean": a_c, "noisy": a_n, "after_round_1": a_r}, "accuracy_lost": lost,
                "recovered_fraction": recovered,
                "flipped_left_after_round_1": n_flip - len(set(int(r["id"]) for r in exp_rows) & flipped)})
    out["seconds"].update(train=t_train, total=time.time() - t_start)
    return out


def aggregate(runs: list[dict]) -> dict:
    import numpy as np

    def ms(vals):
        vals = [v for v in vals if v == v]
        return {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                "n": len(vals), "values": vals}

    agg = {"rankings": {}}
    for name in runs[0]["rankings"]:
        agg["rankings"][name] = {m: ms([r["rankings"][name][m] for r in runs]) for m in ("precision", "recall")}
    agg["oof_accuracy_vs_clean"] = ms([r["oof_accuracy_vs_clean"] for r in runs])
    if "dev_accuracy" in runs[0]:
        for key in ("clean", "noisy", "after_round_1"):
            agg[f"dev_accuracy_{key}"] = ms([r["dev_accuracy"][key] for r in runs])
        agg["accuracy_lost"] = ms([r["accuracy_lost"] for r in runs])
        agg["accuracy_recovered"] = ms([r["dev_accuracy"]["after_round_1"] - r["dev_accuracy"]["noisy"]
                                        for r in runs])
        agg["recovered_fraction_per_seed"] = ms([r["recovered_fraction"] for r in runs])
        lost, rec = agg["accuracy_lost"]["mean"], agg["accuracy_recovered"]["mean"]
        agg["recovered_fraction_of_means"] = rec / lost if lost > 0 else float("nan")
    return agg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=sorted(DEFAULTS), default="thucnews")
    ap.add_argument("--data", default=None, help="data directory (default: the dataset's under ../shared/data)")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-dev", type=int, default=None)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=None, help="one seed (same as --seeds N)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="run the whole pipeline once per seed")
    ap.add_argument("--train-seed", type=int, default=None,
                    help="train.seed of every training (default: the run's seed; the SST-2 runs made before "
                         "--dataset existed used the recipe's 42)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None, help="epochs of the clean/noisy/round-1 trainings")
    ap.add_argument("--mine-epochs", type=int, default=None, help="epochs of the fold models (default: --epochs)")
    ap.add_argument("--no-retrain", action="store_true", help="only the ranking part")
    ap.add_argument("--model", default="minilm-l6", help="sst2 only: the encoder")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--optimizer", default=None,
                    help="train.optimizer (thucnews default: auto = the FastText model's Adagrad, pinned so that the "
                         "benchmark does not follow edits of the recipe; sst2: the recipe's)")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the finished seeds of --json when it was written with the same settings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None, help="default: runs/bench/hardcases_<dataset>.json (benchmarks/ files only when named)")
    args = ap.parse_args()
    for key, val in DEFAULTS[args.dataset].items():
        if getattr(args, key, None) is None:
            setattr(args, key, val)
    args.data = str(args.data)
    seeds = args.seeds or [0 if args.seed is None else args.seed]
    args.json = args.json or str(ROOT / "runs" / "bench" / f"hardcases_{args.dataset}.json")

    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_hardcases_"))
    t0 = time.time()
    runs = []
    done = {}
    if args.resume and Path(args.json).is_file():
        old = json.loads(Path(args.json).read_text())
        same = all(str(old["args"].get(k)) == str(getattr(args, k)) for k in RUN_KEYS)
        if not same:
            diff = {k: (old["args"].get(k), getattr(args, k)) for k in RUN_KEYS
                    if str(old["args"].get(k)) != str(getattr(args, k))}
            raise SystemExit(f"--resume: {args.json} was written with other settings {diff}")
        done = {r["seed"]: r for r in old["runs"]}
    for s in seeds:
        if s in done:
            print(f"seed {s}: reused from {args.json}", flush=True)
            runs.append(done[s])
            continue
        runs.append(run_seed(args, s, work / f"seed_{s}"))
        _write_json(args.json, {"args": vars(args), "runs": runs, "aggregate": aggregate(runs),
                                "seconds_total": time.time() - t0, "load_avg_end": os.getloadavg()})
    agg = aggregate(runs)
    r0 = runs[0]
    print(f"\n### {args.dataset}: {r0['n_train']} training examples, {r0['n_flipped']} flipped "
          f"({args.noise:.0%}), {args.folds}-fold OOF, top {r0['k']}; seeds {seeds} (mean ± std)\n")
    print("| ranking | precision@10% | recall@10% |\n|---|---|---|")
    for name, v in agg["rankings"].items():
        print(f"| {name} | {v['precision']['mean']:.3f} ± {v['precision']['std']:.3f} | "
              f"{v['recall']['mean']:.3f} ± {v['recall']['std']:.3f} |")
    if "dev_accuracy_clean" in agg:
        print(f"\n| training data | dev accuracy ({r0['n_dev']} dev examples) |\n|---|---|")
        for key, label in (("clean", "clean labels"), ("noisy", f"{args.noise:.0%} flipped"),
                           ("after_round_1", "after one round")):
            v = agg[f"dev_accuracy_{key}"]
            print(f"| {label} | {v['mean']:.4f} ± {v['std']:.4f} |")
        print(f"\nLost to noise {agg['accuracy_lost']['mean']:+.4f} ± {agg['accuracy_lost']['std']:.4f}; recovered "
              f"{agg['accuracy_recovered']['mean']:+.4f} ± {agg['accuracy_recovered']['std']:.4f} "
              f"({agg['recovered_fraction_of_means']:.2f} of the mean loss). Total {time.time() - t0:.0f} s, "
              f"load average at the end {os.getloadavg()[0]:.1f}.")
    print(f"\nJSON: {args.json}")


def _write_json(path, out) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2, default=str))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
