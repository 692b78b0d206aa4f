"""Tips on imbalanced data from the records of ``nlp-cv-tricks ablate``: focal loss / class weights vs
cross-entropy (tip 25) and what the dev curves say about selecting a checkpoint by loss or by F1/AUC (tip 11).

Reads each ablation folder's ``ablation.json`` and every run's ``train/history.jsonl`` (one evaluation per
epoch) and prints markdown tables:

1. per variant, at the checkpoint the recipe selected (``train.metric``): the minority class's F1, PR-AUC
   (average precision), ROC-AUC and macro-F1, mean ± sd over seeds, and the paired difference to the baseline
   with a 95% t-interval over seeds and the smallest difference that 80% power could detect from the spread of
   the paired differences (two-sided 5% paired t-test);
2. per variant, the checkpoint selected by dev loss, by minority F1, by PR-AUC, by macro-F1 and the last one,
   each scored on minority F1 and PR-AUC (selection and score on the same dev set: the diagonal is optimistic);
3. the baseline's mean curves per epoch (train loss, dev loss, minority F1, PR-AUC) and how often the dev loss
   reached its minimum after the minority F1 / PR-AUC had peaked.

    python scripts/bench_tips_imbalance.py DIR [DIR ...] --minority spam --json OUT.json [--histories OUT.jsonl]

``--histories`` also writes the evaluation rows of every run (the keys the tables use), so the tables can be
rebuilt from committed records without the run folders: ``--from-histories OUT.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

KEYS = ("eval/loss", "eval/f1_macro", "eval/auc", "eval/pr_auc", "eval/accuracy")


def minority_keys(minority: str) -> tuple[str, ...]:
    return (f"eval/f1/{minority}", f"eval/precision/{minority}", f"eval/recall/{minority}")


def read_runs(folder: Path, minority: str) -> list[dict]:
    """One dict per finished run: variant, seed, evals (list of rows with the KEYS), train_loss (per epoch)."""
    abl = json.loads((folder / "ablation.json").read_text(encoding="utf-8"))
    out = []
    keep = KEYS + minority_keys(minority)
    for r in abl["runs"]:
        if r.get("error"):
            continue
        # run_dir is OUT/runs/<variant>/seed<N>, relative to where ablate ran: read it under this folder
        hist = folder.joinpath(*Path(r["run_dir"]).parts[-3:]) / "train" / "history.jsonl"
        evals, train = [], {}
        for line in hist.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "eval/loss" in row:
                evals.append({"step": row["step"], "epoch": row.get("epoch"), **{k: row.get(k) for k in keep}})
            elif "train/loss" in row:
                train[row["step"]] = row["train/loss"]
        # the training loss logged at (or last before) each evaluation step
        for e in evals:
            steps = [s for s in train if s <= e["step"]]
            e["train/loss"] = train[max(steps)] if steps else None
        out.append({"folder": folder.name, "variant": r["variant"], "seed": r["seed"],
                    "metric_name": r["metric_name"], "greater_is_better": r["greater_is_better"], "evals": evals})
    return out


def select(evals: list[dict], key: str, greater: bool) -> dict:
    """The first evaluation with the best value (the trainer keeps the first best: strict improvement)."""
    best = None
    for e in evals:
        v = e.get(key)
        if v is None:
            continue
        if best is None or (v > best[key] if greater else v < best[key]):
            best = e
    return best


def paired(values: list[float], base: list[float]) -> dict:
    d = np.asarray(values, float) - np.asarray(base, float)
    n = d.size
    out = {"n": int(n), "delta": float(d.mean())}
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    t975, t80 = stats.t.ppf(0.975, n - 1), stats.t.ppf(0.80, n - 1)
    half = t975 * sd / math.sqrt(n)
    out.update(sd_diff=sd, ci_low=out["delta"] - half, ci_high=out["delta"] + half,
               mde80=(t975 + t80) * sd / math.sqrt(n),
               p=float(stats.ttest_rel(values, base).pvalue) if sd > 0 else (0.0 if out["delta"] else 1.0))
    return out


def fmt(x, spec=".3f", signed=False):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(x, ("+" if signed else "") + spec)


def tables(runs: list[dict], minority: str) -> tuple[str, dict]:
    fkey = f"eval/f1/{minority}"
    records: dict = {"minority": minority, "folders": {}}
    md = []
    for folder in sorted({r["folder"] for r in runs}):
        rs = [r for r in runs if r["folder"] == folder]
        variants = list(dict.fromkeys(r["variant"] for r in rs))
        sel_key = rs[0]["metric_name"]
        rec = {"selected_by": sel_key, "variants": {}, "selection": {}, "curves": {}}
        by = {v: {r["seed"]: r for r in rs if r["variant"] == v} for v in variants}
        base = by[variants[0]]  # ablate's baseline row (lr-sweep: its first learning rate)
        # 1. at the recipe's selected checkpoint
        md.append(f"\n**{folder}**: at the checkpoint selected by `{sel_key}` (first best of the per-epoch "
                  f"evaluations), mean ± sd over seeds; Δ = paired difference to the baseline, 95% t-interval "
                  f"over seeds, MDE = smallest Δ detectable with 80% power from the spread of the paired "
                  f"differences.\n")
        cols = (fkey, "eval/pr_auc", "eval/auc", "eval/f1_macro")
        names = (f"F1 {minority}", "PR-AUC", "ROC-AUC", "macro-F1")
        head = ["variant", "seeds"] + [f"{n}" for n in names] + [f"Δ {n} [95% CI] (MDE)" for n in names[:2]] + \
               ["Δ macro-F1 [95% CI] (MDE)"]
        md.append("| " + " | ".join(head) + " |")
        md.append("|" + "---|" * len(head))
        for v in variants:
            seeds = sorted(set(by[v]) & set(base))
            picked = {s: select(by[v][s]["evals"], sel_key, by[v][s]["greater_is_better"]) for s in by[v]}
            bpicked = {s: select(base[s]["evals"], sel_key, base[s]["greater_is_better"]) for s in base}
            row = [v, str(len(by[v]))]
            vrec = {"seeds": sorted(by[v])}
            for c in cols:
                vals = [picked[s][c] for s in sorted(picked)]
                vrec[c] = {"values": vals, "mean": float(np.mean(vals)),
                           "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None}
                row.append(f"{np.mean(vals):.3f} ± {fmt(vrec[c]['sd'])}")
            for c in (fkey, "eval/pr_auc", "eval/f1_macro"):
                if v == variants[0]:
                    row.append("–")
                    continue
                st = paired([picked[s][c] for s in seeds], [bpicked[s][c] for s in seeds])
                vrec[c]["paired"] = st
                row.append(f"{fmt(st['delta'], '.4f', True)} [{fmt(st.get('ci_low'), '.4f', True)}, "
                           f"{fmt(st.get('ci_high'), '.4f', True)}] ({fmt(st.get('mde80'), '.4f')})")
            rec["variants"][v] = vrec
            md.append("| " + " | ".join(row) + " |")
        # 2. selection rules
        rules = [("dev loss (min)", "eval/loss", False), (f"F1 {minority} (max)", fkey, True),
                 ("PR-AUC (max)", "eval/pr_auc", True), ("macro-F1 (max)", "eval/f1_macro", True),
                 ("last epoch", None, None)]
        md.append(f"\n**{folder}**: the checkpoint each rule selects, scored on F1 {minority} / PR-AUC "
                  f"(mean over seeds; same dev set for selection and score), and its mean epoch.\n")
        md.append("| variant | " + " | ".join(r[0] for r in rules) + " |")
        md.append("|---|" + "---|" * len(rules))
        for v in variants:
            cells, vsel = [], {}
            for name, key, greater in rules:
                picks = [by[v][s]["evals"][-1] if key is None else select(by[v][s]["evals"], key, greater)
                         for s in sorted(by[v])]
                f1s, aps = [p[fkey] for p in picks], [p["eval/pr_auc"] for p in picks]
                eps = [p["epoch"] for p in picks]
                vsel[name] = {"f1": f1s, "pr_auc": aps, "epoch": eps}
                cells.append(f"{np.mean(f1s):.3f} / {np.mean(aps):.3f} (ep {np.mean(eps):.1f})")
            rec["selection"][v] = vsel
            md.append(f"| {v} | " + " | ".join(cells) + " |")
        # paired over seeds: selecting by the metric itself vs by dev loss (optimistic: same dev set)
        md.append(f"\n**{folder}**: selecting by the metric instead of by dev loss, paired over seeds, 95% "
                  f"t-interval; the metric is scored on the dev set it selected on.\n")
        md.append(f"| variant | Δ F1 {minority} (by F1 − by loss) | Δ F1 {minority} (by macro-F1 − by loss) | "
                  f"Δ PR-AUC (by PR-AUC − by loss) |")
        md.append("|---|---|---|---|")
        rec["selection_vs_loss"] = {}
        for v in variants:
            sel = rec["selection"][v]
            cells, srec = [], {}
            for name, a, b, k in (("f1_by_f1", f"F1 {minority} (max)", "dev loss (min)", "f1"),
                                  ("f1_by_macro_f1", "macro-F1 (max)", "dev loss (min)", "f1"),
                                  ("pr_auc_by_pr_auc", "PR-AUC (max)", "dev loss (min)", "pr_auc")):
                st = paired(sel[a][k], sel[b][k])
                srec[name] = st
                cells.append(f"{fmt(st['delta'], '.4f', True)} [{fmt(st.get('ci_low'), '.4f', True)}, "
                             f"{fmt(st.get('ci_high'), '.4f', True)}]")
            rec["selection_vs_loss"][v] = srec
            md.append(f"| {v} | " + " | ".join(cells) + " |")
        # 3. curves of the baseline
        n_ep = min(len(r["evals"]) for r in base.values())
        curve = {k: [float(np.mean([base[s]["evals"][i][k] for s in base])) for i in range(n_ep)]
                 for k in ("train/loss", "eval/loss", fkey, "eval/pr_auc")}
        rec["curves"]["baseline"] = curve
        md.append(f"\n**{folder}**: baseline mean curves per epoch ({len(base)} seeds).\n")
        md.append("| epoch | " + " | ".join(str(i + 1) for i in range(n_ep)) + " |")
        md.append("|---|" + "---|" * n_ep)
        for k, label in (("train/loss", "train loss"), ("eval/loss", "dev loss"), (fkey, f"dev F1 {minority}"),
                         ("eval/pr_auc", "dev PR-AUC")):
            md.append(f"| {label} | " + " | ".join(f"{x:.3f}" for x in curve[k]) + " |")
        later_f1 = later_ap = earlier = 0
        allr = [r for r in rs]
        for r in allr:
            e_loss = select(r["evals"], "eval/loss", False)["epoch"]
            later_f1 += e_loss > select(r["evals"], fkey, True)["epoch"]
            later_ap += e_loss > select(r["evals"], "eval/pr_auc", True)["epoch"]
            earlier += e_loss < select(r["evals"], fkey, True)["epoch"]
        rec["loss_vs_f1"] = {"runs": len(allr), "loss_min_after_f1_peak": later_f1,
                             "loss_min_after_pr_auc_peak": later_ap, "loss_min_before_f1_peak": earlier}
        md.append(f"\nOver all {len(allr)} runs of {folder}: the dev loss reached its minimum after the F1 "
                  f"{minority} peak in {later_f1}, after the PR-AUC peak in {later_ap}, and before the F1 "
                  f"peak in {earlier}.\n")
        records["folders"][folder] = rec
    return "\n".join(md) + "\n", records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", help="ablation output folders (ablation.json + runs/)")
    ap.add_argument("--minority", required=True, help="label name of the rare class (e.g. spam)")
    ap.add_argument("--json", default=None, help="write the computed records here")
    ap.add_argument("--histories", default=None, help="write every run's evaluation rows here (JSONL)")
    ap.add_argument("--from-histories", default=None, help="read the runs from such a JSONL instead of folders")
    args = ap.parse_args(argv)
    if args.from_histories:
        runs = [json.loads(l) for l in Path(args.from_histories).read_text(encoding="utf-8").splitlines() if l]
    else:
        if not args.folders:
            ap.error("give ablation folders or --from-histories")
        runs = [r for f in args.folders for r in read_runs(Path(f), args.minority)]
    if args.histories:
        Path(args.histories).write_text("".join(json.dumps(r) + "\n" for r in runs), encoding="utf-8")
    md, rec = tables(runs, args.minority)
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(rec, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
