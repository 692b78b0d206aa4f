#!/usr/bin/env python
"""GPU paths that a CPU machine cannot check, in one short run (driven by scripts/gpu_check.sh).

1. ``tricks``: a few training steps of MiniLM on SST-2 through the package trainer under bf16 and fp16
   (Accelerate's autocast, and its GradScaler for fp16) with each trick: plain, FGM, PGD, FreeLB, AWP, R-Drop,
   focal loss, label smoothing. Checks: every logged loss finite, the loss went down, parameters finite at the
   end, for fp16 the GradScaler's scale stayed finite; reports ms/step.
2. ``longformer``: MiniLM converted into a Longformer (``convert_to_longformer``, window 256) at 1024, 2048 and
   4096 tokens, batch 1, bf16 autocast: forward+backward time and peak GPU memory with and without gradient
   checkpointing, and that checkpointing gives the same gradients (fp32).
3. ``quickstart``: recipes/quickstart.yaml (one epoch of SST-2, batch 32) on CUDA, in fp32 and bf16: training
   sequences/s, wall time and dev accuracy (CPU reference, recipe of benchmarks/RESULTS.md's quick start:
   ~220 s of training on a quiet 2-core machine, dev accuracy 0.884).

``--smoke`` shrinks every part to seconds so the script itself can be checked on a CPU (no fp16 there: CPU
Accelerate has no fp16 path). Prints markdown tables and writes ``--out``/gpu_check.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

TRICKS = {
    "plain": [],
    "fgm": ["fgm"],
    "pgd (K=3)": [{"pgd": {"steps": 3}}],
    "freelb (K=3)": [{"freelb": {"steps": 3}}],
    "awp": ["awp"],
    "rdrop": ["rdrop"],
    "focal_loss": ["focal_loss"],
    "label_smoothing": ["label_smoothing"],
}


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _checkpointing(model, on: bool) -> None:
    """transformers 5 renamed gradient checkpointing to activation checkpointing (the old names warn)."""
    name = "activation_checkpointing_" if hasattr(model, "activation_checkpointing_enable") else "gradient_checkpointing_"
    getattr(model, name + ("enable" if on else "disable"))()


def _history(run_dir: Path) -> list[dict]:
    p = run_dir / "history.jsonl"
    return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()] if p.exists() else []


def part_tricks(args, model: str, work: Path) -> list[dict]:
    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.runner import build_trainer

    precisions = ["bf16"] if args.device == "cpu" else ["bf16", "fp16"]
    steps = 6 if args.smoke else 30  # ms/step skips the first 3 steps: at least 5 are needed
    rows = []
    for prec in precisions:
        for name, tricks in TRICKS.items():
            out = work / f"tricks-{prec}-{name.split()[0]}"
            ovr = [f"model.name={model}", f"train.max_steps={steps}", "train.batch_size=32", "train.logging_steps=1",
                   "train.eval_steps=null", "train.eval_each_epoch=false", f"train.mixed_precision={prec}",
                   "train.learning_rate=5e-5", "train.warmup_ratio=0", "output.report_to=none",
                   "output.save_best=false", "train.progress_bar=false", f"output.dir={out}",
                   f"tricks={json.dumps(tricks)}", f"train.cpu={'true' if args.device == 'cpu' else 'false'}"]
            row = {"precision": prec, "trick": name}
            try:
                trainer = build_trainer(load_recipe(ROOT / "recipes" / "quickstart.yaml", ovr))
                trainer.eval_dataset = None
                _sync()
                res = trainer.fit()
                _sync()
                hist = [h for h in _history(Path(res.output_dir)) if "train/loss" in h]
                losses = [h["train/loss"] for h in hist]
                k = max(1, len(losses) // 4)
                params_ok = all(torch.isfinite(p).all().item() for p in trainer.model.parameters())
                scaler = getattr(trainer.accelerator, "scaler", None)
                scale = float(scaler.get_scale()) if scaler is not None else None
                # ms/step from the logged cumulative seconds, first 3 steps (compilation, caches) excluded
                secs = [h["train/seconds"] for h in hist]
                ms = (secs[-1] - secs[2]) / (len(secs) - 3) * 1000 if len(secs) > 4 else float("nan")
                row.update(steps=res.global_step, loss_first=sum(losses[:k]) / k, loss_last=sum(losses[-k:]) / k,
                           all_finite=all(math.isfinite(v) for v in losses) and params_ok, grad_scale=scale,
                           ms_per_step=ms, skipped=sum(1 for h in hist if h.get("train/skipped_nonfinite")))
                row["ok"] = row["all_finite"] and row["loss_last"] < row["loss_first"] and (
                    prec != "fp16" or (scale is not None and math.isfinite(scale)))
            except Exception as e:  # report and go on: one broken path must not hide the others
                row.update(ok=False, error=f"{type(e).__name__}: {e}", trace=traceback.format_exc(limit=5))
            print(json.dumps(row), flush=True)
            rows.append(row)
    print("\n| precision | trick | steps | loss first→last quarter | finite | fp16 scale | ms/step | ok |")
    print("|---|---|---|---|---|---|---|---|")
    base = {r["precision"]: r.get("ms_per_step") for r in rows if r["trick"] == "plain"}
    for r in rows:
        if "error" in r:
            print(f"| {r['precision']} | {r['trick']} | – | {r['error'][:80]} | – | – | – | NO |")
            continue
        ratio = r["ms_per_step"] / base[r["precision"]] if base.get(r["precision"]) else float("nan")
        print(f"| {r['precision']} | {r['trick']} | {r['steps']} | {r['loss_first']:.3f}→{r['loss_last']:.3f} | "
              f"{r['all_finite']} | {r['grad_scale'] if r['grad_scale'] is not None else '–'} | "
              f"{r['ms_per_step']:.1f} ({ratio:.2f}×) | {'yes' if r['ok'] else 'NO'} |")
    return rows


def part_longformer(args, model: str) -> dict:
    from nlp_cv_tricks.models.long import convert_to_longformer

    dev = torch.device(args.device)
    lengths = [256, 512] if args.smoke else [1024, 2048, 4096]
    long_model, _ = convert_to_longformer(model, max_length=max(lengths), attention_window=256 if not args.smoke
                                          else 64)
    long_model.to(dev).train()
    rows = []
    for n in lengths:
        for gc in (False, True):
            if gc:
                _checkpointing(long_model, True)
            else:
                _checkpointing(long_model, False)
            g = torch.Generator().manual_seed(0)
            ids = torch.randint(1000, 20000, (1, n), generator=g).to(dev)
            glob = torch.zeros_like(ids)
            glob[:, 0] = 1
            times = []
            if dev.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            for _ in range(1 if args.smoke else 4):
                long_model.zero_grad(set_to_none=True)
                _sync()
                t = time.perf_counter()
                with torch.autocast(dev.type, dtype=torch.bfloat16):
                    out = long_model(input_ids=ids, global_attention_mask=glob).last_hidden_state
                out.float().pow(2).mean().backward()
                _sync()
                times.append(time.perf_counter() - t)
            peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else float("nan")
            t_med = sorted(times[1:] or times)[len(times[1:] or times) // 2]
            rows.append({"length": n, "checkpointing": gc, "ms": t_med * 1000, "peak_mib": peak})
            print(json.dumps(rows[-1]), flush=True)
    # checkpointing must not change the gradients (fp32, dropout off)
    long_model.eval()
    n = lengths[0]
    ids = torch.randint(1000, 20000, (1, n), generator=torch.Generator().manual_seed(1)).to(dev)
    grads = []
    for gc in (False, True):
        _checkpointing(long_model, gc)
        long_model.train()
        for m in long_model.modules():  # dropout off, also Longformer's functional attention dropout
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
            elif isinstance(getattr(m, "dropout", None), float):
                m.dropout = 0.0
        long_model.zero_grad(set_to_none=True)
        long_model(input_ids=ids).last_hidden_state.pow(2).mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in long_model.parameters() if p.grad is not None]))
    gdiff = ((grads[0] - grads[1]).abs().max() / grads[0].abs().max()).item()
    by = {(r["length"], r["checkpointing"]): r for r in rows}
    print("\n| tokens | fwd+bwd ms | peak MiB | fwd+bwd ms (checkpointing) | peak MiB (checkpointing) |")
    print("|---|---|---|---|---|")
    for n in lengths:
        a, b = by[(n, False)], by[(n, True)]
        print(f"| {n} | {a['ms']:.1f} | {a['peak_mib']:.0f} | {b['ms']:.1f} | {b['peak_mib']:.0f} |")
    ratio = by[(lengths[-1], False)]["peak_mib"] / by[(lengths[0], False)]["peak_mib"]
    print(f"\npeak memory {lengths[-1]} vs {lengths[0]} tokens: {ratio:.2f}× (linear would be "
          f"{lengths[-1] / lengths[0]:.0f}×); max relative gradient difference with checkpointing: {gdiff:.2e}")
    return {"rows": rows, "memory_ratio": ratio, "checkpointing_grad_rel_diff": gdiff}


def part_quickstart(args, model: str, work: Path) -> list[dict]:
    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.runner import build_trainer

    rows = []
    for prec in ("no", "bf16"):
        ovr = [f"model.name={model}", f"train.mixed_precision={prec}", "output.report_to=none",
               "train.progress_bar=false", f"output.dir={work / ('quickstart-' + prec)}",
               f"train.cpu={'true' if args.device == 'cpu' else 'false'}"]
        if args.smoke:
            ovr += ["train.max_steps=3", "data.max_eval_samples=64", "train.eval_steps=null"]
        trainer = build_trainer(load_recipe(ROOT / "recipes" / "quickstart.yaml", ovr))
        n_train = len(trainer.train_dataset)
        t = time.perf_counter()
        res = trainer.fit()
        wall = time.perf_counter() - t
        seqs = min(n_train, res.global_step * 32)
        row = {"precision": prec, "steps": res.global_step, "train_seconds": res.train_seconds, "wall_seconds": wall,
               "train_seq_per_s": seqs / res.train_seconds, "dev_accuracy": res.best_metric}
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| precision | steps | training s | seq/s | fit wall s | dev accuracy |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['precision']} | {r['steps']} | {r['train_seconds']:.1f} | {r['train_seq_per_s']:.0f} | "
              f"{r['wall_seconds']:.1f} | {r['dev_accuracy']} |")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm-l6", help="MiniLM directory (scripts/gpu_check.sh prepare makes one)")
    p.add_argument("--parts", default="tricks,longformer,quickstart")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--smoke", action="store_true", help="a small version of every part (checks the script; ~3 min on 2 CPU cores)")
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "runs" / "gpu_check"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {"python": platform.python_version(), "torch": torch.__version__, "device": args.device,
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "bf16_supported": torch.cuda.is_bf16_supported() if torch.cuda.is_available() else None}
    import transformers

    env["transformers"] = transformers.__version__
    print("#", json.dumps(env), flush=True)
    results = {"env": env, "smoke": args.smoke}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for part in args.parts.split(","):
            t = time.time()
            print(f"\n## {part}\n", flush=True)
            try:
                if part == "tricks":
                    results[part] = part_tricks(args, args.model, Path(tmp))
                elif part == "longformer":
                    results[part] = part_longformer(args, args.model)
                elif part == "quickstart":
                    results[part] = part_quickstart(args, args.model, Path(tmp))
                else:
                    raise SystemExit(f"--parts: unknown part {part!r}")
            except SystemExit:
                raise
            except Exception as e:
                results[part] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
                print(results[part]["trace"], flush=True)
            print(f"\n({part}: {time.time() - t:.0f} s)", flush=True)
            tmpf = out / "gpu_check.json.tmp"
            tmpf.write_text(json.dumps(_json_safe(results), indent=2, default=str))  # strict JSON: NaN -> null
            os.replace(tmpf, out / "gpu_check.json")
    print(f"\ntotal {time.time() - t0:.0f} s; JSON: {out / 'gpu_check.json'}")
    bad = [r for r in results.get("tricks", []) if isinstance(r, dict) and not r.get("ok")]
    lf = results.get("longformer")
    gdiff = lf.get("checkpointing_grad_rel_diff") if isinstance(lf, dict) else None
    if gdiff is not None and not gdiff <= 1e-4:  # checkpointing must not change the gradients (fp32)
        print(f"FAIL: gradient checkpointing changed the Longformer gradients (relative difference {gdiff:.2e})")
        bad.append("longformer")
    for r in results.get("quickstart", []) if isinstance(results.get("quickstart"), list) else []:
        acc = r.get("dev_accuracy")
        if not args.smoke and (acc is None or acc < 0.85):  # the CPU run reaches 0.87 +- 0.01 over seeds
            print(f"FAIL: quick start {r.get('precision')} reached dev accuracy {acc} (< 0.85)")
            bad.append("quickstart")
    return 1 if bad or any(isinstance(v, dict) and "error" in v for v in results.values()) else 0


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


if __name__ == "__main__":
    sys.exit(main())
