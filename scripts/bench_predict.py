#!/usr/bin/env python
"""Wall time of ``nlp-cv-tricks predict`` on 1,821 SST-2 sentences against a bare loop that sorts the inputs by
length and batches them at 64, and against ``transformers.pipeline`` (goal: predict <= 1.15x the bare loop).

Every contender is a fresh process timed end to end (interpreter start, imports, model load, reading the
sentences, the forward passes, writing one prediction per sentence), on the same model, the same sentences and
the same threads; they run interleaved, ``--pairs`` times, so a busy machine slows all of them alike, and the
table gives each pair's ratio to the bare loop. The model is a quick-start MiniLM trained for a few steps
(trained here first when ``--model`` does not exist; only its weights' shape matters for the time).

The 1,821 sentences (the size of the SST-2 test split, which is not bundled): the 872 dev sentences of
data/sst2/dev.txt, then the first 949 of data/sst2/train.txt (``--n``), in that order, as kim2014 lines.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_predict.py --pairs 3 \\
        --json benchmarks/predict_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the bare loop: what a user would write by hand (tokenize once, sort by length, batches of 64, unsort)
BARE = r'''
import json, sys
import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model_dir, data, out, bs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
in_file_order = len(sys.argv) > 5 and sys.argv[5] == "file-order"
model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
tok = AutoTokenizer.from_pretrained(model_dir)
texts = [ln.rstrip("\n").split(" ", 1)[1] for ln in open(data, encoding="utf-8") if ln.strip()]
enc = tok(texts, truncation=True, max_length=64)
order = np.argsort([-len(x) for x in enc["input_ids"]], kind="stable")
if in_file_order:  # what prediction did before: batches in file order, each padded to its longest sentence
    order = np.arange(len(texts))
probs = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
with torch.inference_mode():
    for i in range(0, len(texts), bs):
        idx = order[i:i + bs]
        batch = tok.pad({k: [enc[k][j] for j in idx] for k in enc}, return_tensors="pt")
        probs[idx] = torch.softmax(model(**batch).logits.float(), -1).numpy()
names = model.config.id2label
with open(out, "w", encoding="utf-8") as f:
    for t, p in zip(texts, probs):
        f.write(json.dumps({"text": t, "pred_label": names[int(p.argmax())], "pred_prob": float(p.max())}) + "\n")
'''

PIPELINE = r'''
import json, sys
from transformers import pipeline

model_dir, data, out, bs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
texts = [ln.rstrip("\n").split(" ", 1)[1] for ln in open(data, encoding="utf-8") if ln.strip()]
clf = pipeline("text-classification", model=model_dir, tokenizer=model_dir, device="cpu", batch_size=bs,
               truncation=True, max_length=64)
with open(out, "w", encoding="utf-8") as f:
    for t, r in zip(texts, clf(texts)):
        f.write(json.dumps({"text": t, "pred_label": r["label"], "pred_prob": r["score"]}) + "\n")
'''


def sentences(n: int, path: Path) -> Path:
    dev = (ROOT / "data/sst2/dev.txt").read_text(encoding="utf-8").splitlines()
    train = (ROOT / "data/sst2/train.txt").read_text(encoding="utf-8").splitlines()
    lines = (dev + train)[:n]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_model(model: Path, env: dict, steps: int) -> None:
    cmd = [str(Path(sys.executable).parent / "nlp-cv-tricks"), "--quiet", "train", "recipes/quickstart.yaml",
           f"train.max_steps={steps}", f"output.dir={model}", "output.report=false", "output.report_to=none"]
    print("training the model first:", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def timed(cmd: list[str], env: dict, err: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the process) of one run."""
    t = time.perf_counter()
    with open(err, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=fh)
        _, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{err.read_text()[-3000:]}")
    return dt, usage.ru_utime + usage.ru_stime


def table(title: str, times: dict, base: str, pairs: int) -> dict:
    print(f"{title}\n")
    print("| contender | " + " | ".join(f"pair {i + 1} s" for i in range(pairs)) + " | median s | "
          + " | ".join(f"ratio {i + 1}" for i in range(pairs)) + " | median ratio |")
    print("|---|" + "---:|" * (2 * pairs + 2))
    ratios = {}
    for name, ts in times.items():
        r = [t / b for t, b in zip(ts, times[base])]
        ratios[name] = r
        print(f"| {name} | " + " | ".join(f"{t:.2f}" for t in ts) + f" | {statistics.median(ts):.2f} | "
              + " | ".join(f"{x:.2f}x" for x in r) + f" | {statistics.median(r):.2f}x |")
    print()
    return ratios


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="/tmp/bp_model", help="run directory of the model (trained first if absent)")
    p.add_argument("--train-steps", type=int, default=20)
    p.add_argument("--n", type=int, default=1821, help="sentences to label")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-pipeline", action="store_true", help="leave transformers.pipeline out")
    p.add_argument("--eval", action="store_true", help="also time `nlp-cv-tricks eval` on the same sentences")
    p.add_argument("--file-order", action="store_true",
                   help="also time the bare loop in file order (no sorting): what the padding costs")
    p.add_argument("--json", default=None, help="write the records here")
    args = p.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "NLP_CV_TRICKS_PROGRESS": "off"}
    model = Path(args.model)
    if not (model / "best" / "config.json").is_file() and not (model / "final" / "config.json").is_file():
        train_model(model, env, args.train_steps)
    model_dir = model / "best" if (model / "best" / "config.json").is_file() else model / "final"
    work = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    data = sentences(args.n, work / "sst2_1821.txt")
    cli = str(Path(sys.executable).parent / "nlp-cv-tricks")
    bs = str(args.batch_size)
    contenders = {
        "nlp-cv-tricks predict": [cli, "--quiet", "predict", str(model), "--data", str(data), "--out",
                                  str(work / "cli.jsonl"), "--overwrite", "--batch-size", bs],
        "bare loop (sorted, batch 64)": [sys.executable, "-c", BARE, str(model_dir), str(data),
                                         str(work / "bare.jsonl"), bs],
    }
    if args.file_order:
        contenders["bare loop (file order, batch 64)"] = [sys.executable, "-c", BARE, str(model_dir), str(data),
                                                         str(work / "bare_fo.jsonl"), bs, "file-order"]
    if args.eval:
        contenders["nlp-cv-tricks eval"] = [cli, "--quiet", "eval", str(model), "--data", str(data), "--batch-size",
                                            bs]
    if not args.no_pipeline:
        contenders["transformers.pipeline"] = [sys.executable, "-c", PIPELINE, str(model_dir), str(data),
                                               str(work / "pipe.jsonl"), bs]
    base = "bare loop (sorted, batch 64)"
    times: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    load0 = os.getloadavg()
    for i in range(args.pairs):
        for name in (names if i % 2 == 0 else names[::-1]):  # alternate who goes first
            wall, used = timed(contenders[name], env, work / "stderr.txt")
            times[name].append(wall)
            cpu[name].append(used)
            print(f"pair {i + 1}: {name}: {wall:.2f} s wall, {used:.2f} s CPU", flush=True)
    # the predictions agree (same labels; probabilities to float tolerance)
    cli_rows = [json.loads(x) for x in (work / "cli.jsonl").read_text(encoding="utf-8").splitlines()]
    bare_rows = [json.loads(x) for x in (work / "bare.jsonl").read_text(encoding="utf-8").splitlines()]
    agree = sum(a["pred_label"] == b["pred_label"] for a, b in zip(cli_rows, bare_rows)) / max(len(bare_rows), 1)
    max_dp = max(abs(a["pred_prob"] - b["pred_prob"]) for a, b in zip(cli_rows, bare_rows))
    load = os.getloadavg()
    print(f"load average at the start {load0[0]:.1f}, at the end {load[0]:.1f}")
    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs, torch threads from OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '(unset)')}, load average {load[0]:.1f}; {args.n} sentences, "
          f"batch {args.batch_size}, {args.pairs} pairs (fresh process each, end to end)\n")
    ratios = table("Wall time (the goal's measure; on a shared machine it swings with the other load):", times,
                   base, args.pairs)
    cpu_ratios = table("CPU time of the process (user + system; steadier when the machine is shared):", cpu, base,
                       args.pairs)
    print(f"predict vs bare loop: same label on {agree:.2%} of the sentences, largest probability difference "
          f"{max_dp:.1e}")
    record = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "n": args.n, "pairs": args.pairs,
              "batch_size": args.batch_size, "model": str(model_dir), "seconds": times, "ratio_to_bare": ratios,
              "median_ratio": {k: statistics.median(v) for k, v in ratios.items()},
              "cpu_seconds": cpu, "cpu_ratio_to_bare": cpu_ratios,
              "median_cpu_ratio": {k: statistics.median(v) for k, v in cpu_ratios.items()},
              "label_agreement": agree, "max_prob_diff": max_dp, "loadavg_at_start": load0, "loadavg_at_end": load,
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cpus": os.cpu_count(),
              "data": "data/sst2/dev.txt (872) + first 949 lines of data/sst2/train.txt"}
    print("\n" + json.dumps(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
