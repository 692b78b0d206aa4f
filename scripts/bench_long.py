#!/usr/bin/env python
"""Peak memory and time of one forward+backward at batch 1 against sequence length: full attention vs Longformer.

Models (all from the offline MiniLM, 6 layers, hidden 384, 12 heads):

* ``full-eager``   BertForSequenceClassification, eager attention (the materialised n x n softmax),
* ``full-sdpa``    the same with ``torch.nn.functional.scaled_dot_product_attention`` (transformers' default),
* ``longformer``   ``convert-long`` of the same weights, window 256, global attention on [CLS]
                   (LongformerForSequenceClassification),
* ``... +gc``      each with gradient (activation) checkpointing.

For lengths over 512 the full-attention BERT gets its 512 position embeddings tiled (the same copy as the
conversion) - the cost is what matters here, not the accuracy.

Method: every configuration runs in a fresh Python subprocess (``--worker``), train mode (dropout on), batch 1,
random token ids, labels given. After the model and inputs are built the kernel's peak-RSS counter is reset
(``echo 5 > /proc/self/clear_refs``); peak memory = ``VmHWM`` after the warm-up step minus the RSS before it
(activations + saved tensors + parameter gradients + workspace; parameters and imports excluded). Where
clear_refs is unavailable, ``ru_maxrss`` is used and the table says so. Time = median of ``--reps`` timed steps
after one warm-up step, ``torch.set_num_threads(--threads)``; ``cpu_s`` is the process CPU time of the same
step (less sensitive than wall time to other jobs sharing the machine).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_long.py --lengths 512 1024 2048 4096 --out benchmarks/long_memory.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = ("full-eager", "full-eager+gc", "full-sdpa", "full-sdpa+gc", "longformer", "longformer+gc")


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _long_bert(src: str, length: int, attn: str):
    """MiniLM as BertForSequenceClassification with max(512, length) positions (rows tiled)."""
    from transformers import AutoConfig, BertForSequenceClassification

    cfg = AutoConfig.from_pretrained(src, num_labels=2, attn_implementation=attn)
    n_src = cfg.max_position_embeddings
    base = BertForSequenceClassification.from_pretrained(src, config=cfg)
    if length <= n_src:
        return base
    cfg_long = AutoConfig.from_pretrained(src, num_labels=2, attn_implementation=attn, max_position_embeddings=length)
    model = BertForSequenceClassification(cfg_long)
    sd = base.state_dict()
    pos = sd["bert.embeddings.position_embeddings.weight"]
    sd["bert.embeddings.position_embeddings.weight"] = pos.repeat((length + n_src - 1) // n_src, 1)[:length]
    sd.pop("bert.embeddings.position_ids", None)
    model.load_state_dict(sd, strict=False)
    return model


def _enable_gc(model) -> None:
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable()


def worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    kind, length = args.kind, args.length
    from transformers import LongformerForSequenceClassification

    if kind.startswith("longformer"):
        model = LongformerForSequenceClassification.from_pretrained(args.long_dir, num_labels=2)
    else:
        model = _long_bert(args.src, length, "eager" if kind.startswith("full-eager") else "sdpa")
    if kind.endswith("+gc"):
        _enable_gc(model)
    model.train()
    ids = torch.randint(1000, 29000, (1, length))
    ids[0, 0], ids[0, -1] = 101, 102
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([1])}
    if kind.startswith("longformer"):
        gm = torch.zeros_like(ids)
        gm[0, 0] = 1
        inputs["global_attention_mask"] = gm

    def step():
        loss = model(**inputs).loss
        loss.backward()
        model.zero_grad(set_to_none=False)

    gc.collect()
    exact = _reset_peak()
    base = _rss()
    t0 = time.perf_counter()
    step()
    warm = time.perf_counter() - t0
    peak = _peak() - base
    times, cpu = [], []
    for _ in range(args.reps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "kind": kind,
        "length": length,
        "peak_mb": peak / 2**20,
        "time_s": statistics.median(times) if times else warm,
        "cpu_s": statistics.median(cpu) if cpu else None,
        "warmup_s": warm,
        "reps": args.reps,
        "peak_method": "VmHWM after clear_refs" if exact else "ru_maxrss (includes load)",
        "params": sum(p.numel() for p in model.parameters()),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--max-full-length", type=int, default=2048,
                   help="skip full attention without checkpointing above this length (its n^2 activations, "
                        "~4 GB at 2048 so ~16 GB at 4096; on CPU, SDPA in train mode is quadratic in memory too)")
    p.add_argument("--max-full-gc-length", type=int, default=4096,
                   help="skip full attention with checkpointing above this length")
    p.add_argument("--out", default="runs/bench/long_memory.json",
                   help="results JSON (default under runs/; benchmarks/ files only when named)")
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)
    p.add_argument("--length", type=int, help=argparse.SUPPRESS)
    p.add_argument("--src", help=argparse.SUPPRESS)
    p.add_argument("--long-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0

    from nlp_cv_tricks.models.long import convert_to_longformer, resolve_model_path

    src = resolve_model_path(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        long_dir = Path(tmp) / "long"
        convert_to_longformer(src, max_length=max(args.lengths), attention_window=args.window, out_dir=long_dir)
        for length in args.lengths:
            for kind in args.kinds:
                limit = args.max_full_gc_length if kind.endswith("+gc") else args.max_full_length
                if kind.startswith("full") and length > limit:
                    rows.append({"kind": kind, "length": length, "skipped": f"length > {limit} (memory)"})
                    print(f"skip {kind} @ {length}", file=sys.stderr, flush=True)
                    continue
                cmd = [sys.executable, __file__, "--worker", "--kind", kind, "--length", str(length), "--src", src,
                       "--long-dir", str(long_dir), "--threads", str(args.threads), "--reps", str(args.reps)]
                t0 = time.time()
                proc = subprocess.run(cmd, capture_output=True, text=True)
                lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
                if proc.returncode != 0 or not lines:
                    rows.append({"kind": kind, "length": length, "skipped": f"failed rc={proc.returncode}",
                                 "stderr": proc.stderr[-2000:]})
                    print(f"FAILED {kind} @ {length}: {proc.stderr[-500:]}", file=sys.stderr, flush=True)
                    continue
                row = json.loads(lines[-1][len("RESULT "):])
                rows.append(row)
                print(f"{kind:>14} @ {length:>5}: peak {row['peak_mb']:8.1f} MB, {row['time_s']:7.2f} s, "
                      f"cpu {row['cpu_s']:7.2f} s "
                      f"(wall {time.time() - t0:.0f} s)", file=sys.stderr, flush=True)

    table = render(rows, args)
    print(table)
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs (shared), "
                   f"torch threads {args.threads}",
        "model": args.model,
        "window": args.window,
        "memory_method": "peak RSS (VmHWM, reset via /proc/self/clear_refs) minus RSS before the first step, "
                         "fresh subprocess per configuration",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmpname = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({"meta": meta, "rows": rows, "table": table}, f, indent=2)
    os.replace(tmpname, out)
    return 0


def render(rows, args) -> str:
    by = {(r["kind"], r["length"]): r for r in rows}
    kinds = [k for k in args.kinds]
    lines = ["| model | " + " | ".join(f"{n} tokens: MB / wall s / CPU s" for n in args.lengths) + " |",
             "|---|" + "---|" * len(args.lengths)]
    for k in kinds:
        cells = []
        for n in args.lengths:
            r = by.get((k, n))
            if r is None:
                cells.append("")
            elif "skipped" in r:
                cells.append("skipped")
            else:
                cells.append(f"{r['peak_mb']:.0f} / {r['time_s']:.2f} / {r['cpu_s']:.2f}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lens = args.lengths
    if 1024 in lens and 4096 in lens:
        lines.append("")
        lines.append("Peak-memory ratio 4096 / 1024 tokens (linear = 4x, quadratic = 16x):")
        for k in kinds:
            a, b = by.get((k, 1024)), by.get((k, 4096))
            if a and b and "peak_mb" in a and "peak_mb" in b:
                lines.append(f"- {k}: {b['peak_mb'] / a['peak_mb']:.2f}x")
    for k in ("full-eager", "full-sdpa", "longformer"):
        for n in lens:
            a, b = by.get((k, n)), by.get((k + "+gc", n))
            if a and b and "peak_mb" in a and "peak_mb" in b:
                lines.append(f"- checkpointing saving, {k} @ {n}: {100 * (1 - b['peak_mb'] / a['peak_mb']):.0f}% "
                             f"memory, {b['cpu_s'] / a['cpu_s']:.2f}x CPU time")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
