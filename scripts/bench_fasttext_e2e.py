#!/usr/bin/env python
"""End to end: ``nlp-cv-tricks train recipes/thucnews_fasttext.yaml`` against the official fastText doing the same
job, side by side in ``--pairs`` pairs (official, then ours), each in a fresh process.

* official (``fasttext-wheel``, the ``bench`` extra): convert THUCNews train/dev to fastText's format (characters
  separated by spaces, first 32 kept, as the recipe's tokenizer), ``train_supervised`` with the recipe's dimension,
  n-gram order, buckets and epochs on one thread (lr ``--official-lr``), score dev.
* ours: the CLI's ``main(["train", recipe, ...])`` in a fresh interpreter, with wall/CPU timers wrapped around
  seven functions for the breakdown (start-up = interpreter start to the trainer's build, minus data; data =
  reading the files + tokenization; model = building the trainer minus data (the tokenizer's vocabulary, the
  model and its imports); train = the loop minus evaluation
  and saving; eval; save = best/ and final writes; report = the end-of-run report page).

Per process: wall time, CPU time (user + system from ``os.wait4`` of that child) and peak RSS. Ratios are
ours / official of the same pair; medians over the pairs. The machine may be shared: compare the ratios, and the
CPU ratios above all. Writes the JSON records (one a line) to ``--json`` and prints a markdown table::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_fasttext_e2e.py --pairs 3 \\
        --json benchmarks/fasttext_e2e.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = "recipes/thucnews_fasttext.yaml"

OFFICIAL = r"""
import json, sys, time
t0 = time.perf_counter()
import fasttext
import yaml
root, tmp, lr, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rk = yaml.safe_load(open(sys.argv[5]))
mk = rk["model"]["kwargs"]
t_start = time.perf_counter()
for split in ("train", "dev"):
    with open(f"{root}/thucnews/{split}.txt", encoding="utf-8") as f, open(f"{tmp}/{split}.ft", "w",
                                                                          encoding="utf-8") as g:
        for line in f:
            t, y = line.rstrip("\n").rsplit("\t", 1)
            g.write(f"__label__{y} " + " ".join(c for c in t[:32] if not c.isspace()) + "\n")
t_conv = time.perf_counter()
m = fasttext.train_supervised(f"{tmp}/train.ft", dim=mk["embedding_dim"], wordNgrams=mk["word_ngrams"],
                              bucket=mk["bucket"], minn=0, maxn=0, epoch=rk["train"]["epochs"], lr=lr, thread=1,
                              verbose=0, seed=seed)
t_train = time.perf_counter()
n, p, _ = m.test(f"{tmp}/dev.ft")
t_eval = time.perf_counter()
print("RESULT " + json.dumps({"dev_acc": round(p, 4), "startup_s": t_start - t0, "data_s": t_conv - t_start,
                              "train_s": t_train - t_conv, "eval_s": t_eval - t_train}))
"""

OURS = r"""
import json, sys, time
T0 = time.perf_counter()
C0 = time.process_time()
spans = {}

def _wrap_now(module, owner, name, key):
    obj = getattr(module, owner, None) if owner else module
    f = getattr(obj, name, None) if obj is not None else None
    if f is None:  # a checkout without it (the compiled loop, or the trainer's) has nothing there to time
        return
    def timed(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        try:
            return f(*a, **k)
        finally:
            s = spans.setdefault(key, [0.0, 0.0, 0])
            s[0] += time.perf_counter() - w
            s[1] += time.process_time() - c
            s[2] += 1
    setattr(obj, name, timed)

# timers go on when their module is imported (importing the trainer here would load torch into a run without it)
import importlib.abc
pending = {}

class _After(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in pending:
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        else:
            return None
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            for args in pending.pop(fullname, []):
                _wrap_now(module, *args)
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _After())

def wrap(mod, owner, name, key):
    if mod in sys.modules:
        _wrap_now(sys.modules[mod], owner, name, key)
    else:
        pending.setdefault(mod, []).append((owner, name, key))

from nlp_cv_tricks import cli
wrap("nlp_cv_tricks.runner", None, "build_trainer", "build")
wrap("nlp_cv_tricks.engine.trainer", "Trainer", "fit", "fit")
wrap("nlp_cv_tricks.engine.trainer", "Trainer", "evaluate", "eval")
wrap("nlp_cv_tricks.engine.trainer", "Trainer", "save_model", "save")
wrap("nlp_cv_tricks.report", None, "report_after_training", "report")
wrap("nlp_cv_tricks.data.text", None, "load_text_classification", "data")
wrap("nlp_cv_tricks.data.text", None, "tokenize_dataset", "data")
# the compiled FastText loop (train.engine: auto picks it for this recipe): the same phases
wrap("nlp_cv_tricks.tasks.fasttext_compiled", None, "build_compiled_fasttext", "build")
wrap("nlp_cv_tricks.tasks.fasttext_compiled", None, "_read", "data")
wrap("nlp_cv_tricks.tasks.fasttext_compiled", None, "_encode", "data")
wrap("nlp_cv_tricks.models.fasttext_kernels", None, "fasttext_bag_ids", "data")
wrap("nlp_cv_tricks.engine.compiled_loop", "CompiledLoop", "fit", "fit")
wrap("nlp_cv_tricks.engine.compiled_loop", "CompiledLoop", "evaluate", "eval")
wrap("nlp_cv_tricks.engine.compiled_loop", "CompiledLoop", "_save", "save")
rc = cli.main(sys.argv[1:])
T1 = time.perf_counter()
print("RESULT " + json.dumps({"rc": rc, "wall_in_process_s": T1 - T0, "cpu_in_process_s": time.process_time() - C0,
                              "spans": spans, "torch_imported": "torch" in sys.modules}))
"""


def _run(cmd: list[str], env: dict, cwd: Path = REPO) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    res = {"rc": p.returncode, "wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
           "peak_rss_mb": round(ru.ru_maxrss / 1024), "load_1m": round(os.getloadavg()[0], 2)}
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
    if p.returncode != 0 or line is None:
        raise SystemExit(f"{' '.join(cmd[:3])} failed (exit {p.returncode}):\n{out[-3000:]}")
    res.update(json.loads(line[len("RESULT "):]))
    res["stdout_tail"] = out.splitlines()[-12:]
    return res


def _breakdown(r: dict, which: int = 0) -> dict:
    """Wall (``which=0``) or CPU (1) seconds of the phases of our run from the timers (module docstring)."""
    sp = {k: v[which] for k, v in r["spans"].items()}
    fit, ev, save, rep = sp.get("fit", 0), sp.get("eval", 0), sp.get("save", 0), sp.get("report", 0)
    data, build = sp.get("data", 0), sp.get("build", 0)
    startup = (r["wall_s"], r["cpu_s"])[which] - fit - build  # process start, imports, recipe, until the trainer is built; and exit
    return {"startup_s": round(startup, 2), "data_s": round(data, 2), "model_s": round(build - data, 2),
            "train_s": round(fit - ev - save - rep, 2), "eval_s": round(ev, 2), "save_s": round(save, 2),
            "report_s": round(rep, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--official-lr", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default="")
    ap.add_argument("--before", default="", help="a checkout of an earlier commit (e.g. a git worktree): its "
                    "'train' runs third in each pair's round, with the same timers")
    args = ap.parse_args()
    root = os.environ.get("NLP_CV_TRICKS_DATA") or str(REPO.parent / "shared" / "data")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "NLP_CV_TRICKS_PROGRESS": "log",
           "NLP_CV_TRICKS_DATA": root}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    recs = []
    for i in range(args.pairs):
        with tempfile.TemporaryDirectory(prefix="bench_ft_e2e_") as tmp:
            off = _run([sys.executable, "-c", OFFICIAL, root, tmp, str(args.official_lr), str(args.seed),
                        str(REPO / RECIPE)], env)
            ours = _run([sys.executable, "-c", OURS, "train", RECIPE, f"output.dir={tmp}/run",
                         f"train.seed={args.seed}"], env)
            before = None
            if args.before:
                benv = {**env, "PYTHONPATH": args.before + os.pathsep + os.environ.get("PYTHONPATH", "")}
                before = _run([sys.executable, "-c", OURS, "train", RECIPE, f"output.dir={tmp}/run_before",
                               f"train.seed={args.seed}"], benv, cwd=Path(args.before))
        rec = {"pair": i + 1, "official": off, "ours": ours,
               "ratio_wall": round(ours["wall_s"] / off["wall_s"], 2), "ratio_cpu": round(ours["cpu_s"] / off["cpu_s"], 2)}
        for r in (ours, before):
            if r is not None:
                r["breakdown"], r["breakdown_cpu"], r["dev_acc"] = _breakdown(r), _breakdown(r, 1), _dev_acc(
                    r["stdout_tail"])
        if before is not None:
            rec.update(before=before, before_ratio_wall=round(before["wall_s"] / off["wall_s"], 2),
                       before_ratio_cpu=round(before["cpu_s"] / off["cpu_s"], 2))
        recs.append(rec)
        print(f"pair {i + 1}: official {off['wall_s']} s wall / {off['cpu_s']} s CPU, acc {off['dev_acc']}; ours "
              f"{ours['wall_s']} s / {ours['cpu_s']} s, acc {ours['dev_acc']}; {ours['breakdown_cpu']}" + (
                  f"; before {before['wall_s']} s / {before['cpu_s']} s, acc {before['dev_acc']}" if before else ""),
              flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
    _table(recs)
    return 0


def _dev_acc(tail: list[str]):
    for ln in tail:
        if ln.startswith("dev accuracy"):
            return float(ln.split(":", 1)[1].split()[0])
    return None


def _table(recs: list[dict]) -> None:
    med = statistics.median
    runs = ["ours"] + (["before"] if "before" in recs[0] else [])
    print("\n| median of %d pairs | official fastText | " % len(recs) + " | ".join(
        f"{n} | {n} / official" for n in runs) + " |\n|---|---|" + "---|---|" * len(runs))
    for key, label in (("wall_s", "wall, s"), ("cpu_s", "CPU (user+sys), s"), ("peak_rss_mb", "peak RSS, MB")):
        o = med(r["official"][key] for r in recs)
        cells = []
        for n in runs:
            u = med(r[n][key] for r in recs)
            cells.append(f"{u} | {med(r[n][key] / r['official'][key] for r in recs):.2f}x")
        print(f"| {label} | {o} | " + " | ".join(cells) + " |")
    print(f"| dev accuracy | {recs[0]['official']['dev_acc']} | " + " | ".join(
        f"{recs[0][n]['dev_acc']} | " for n in runs) + " |")
    for n in runs:
        for bk, unit in (("breakdown", "wall"), ("breakdown_cpu", "CPU")):
            print(f"\n| phase ({n}, {unit} s) | " + " | ".join(f"pair {r['pair']}" for r in recs) + " | median |")
            print("|---|" + "---|" * (len(recs) + 1))
            for k in recs[0][n][bk]:
                vals = [r[n][bk][k] for r in recs]
                print(f"| {k[:-2]} | " + " | ".join(str(v) for v in vals) + f" | {med(vals):.2f} |")
    offk = ("startup_s", "data_s", "train_s", "eval_s")
    print("\n| phase (official, wall s) | " + " | ".join(k[:-2] for k in offk) + " |\n|---|" + "---|" * len(offk))
    for r in recs:
        print(f"| pair {r['pair']} | " + " | ".join(f"{r['official'][k]:.2f}" for k in offk) + " |")


if __name__ == "__main__":
    sys.exit(main())
