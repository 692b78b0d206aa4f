"""Layer report: per-layer parameter statistics, activation statistics, dead ReLUs and gradient norms.

Tuning tips behind it: print every layer's parameters and check that they look normally distributed
(initialisation such as Xavier — Glorot & Bengio 2010 — or truncated normal keeps them so; heavy tails or a
collapsed spread point to a bad init or an unstable run); look at ReLU's effect when results drop (units that
output zero for every input are "dead" and never learn again — Lu et al. 2019, "Dying ReLU and Initialization");
never put a ReLU on the last layer (it clips the logits at zero); and watch per-layer gradient norms for
vanishing or exploding gradients (Pascanu et al. 2013).

Use :func:`layer_report` on any ``torch.nn.Module`` (Hugging Face models included) with a sample batch, or
``nlp-cv-tricks inspect MODEL_OR_RUN_DIR``; :func:`save_layer_report` writes JSON plus a PNG figure. During
training, the callback :class:`LayerReportTrick` (recipe name ``layer_report``) writes the parameter and gradient
part every N optimizer steps. Cost: one forward and one backward on the sample batch, plus a sort of at most
``max_ks_samples`` values per parameter tensor for the normality score.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..engine.events import Callback
from ..utils.io import atomic_save_figure
from ..utils.io import atomic_write_json as _write_json

__all__ = ["tensor_stats", "parameter_stats", "activation_stats", "gradient_norms", "layer_report",
           "save_layer_report", "plot_layer_report", "format_layer_report", "LayerReportTrick", "layer_of", "RELU_TYPES"]

RELU_TYPES = (nn.ReLU, nn.ReLU6)
_RELU_NAMES = {"relu", "relu6", "relusquaredactivation"}


def layer_of(name: str) -> str:
    """Group a parameter or module name into a layer: ``bert.encoder.layer.3.attention.self.query.weight`` →
    ``encoder.layer.3``; ``bert.embeddings.word_embeddings.weight`` → ``embeddings``; ``classifier.bias`` →
    ``classifier``; ``net.2.weight`` → ``net.2``."""
    from .grad_norm import layer_key  # the grouping the gradient-norm trick logs, so reports line up

    if name.startswith("timm_model."):  # timm classifiers (TimmImageClassifier): timm_model.layer1.0.conv1.weight
        name = name[len("timm_model."):]  # → layer1.0; timm_model.fc.weight → fc
    return layer_key(name)


def _is_relu(m: nn.Module) -> bool:
    return isinstance(m, RELU_TYPES) or type(m).__name__.lower() in _RELU_NAMES


# ---- statistics of one tensor -----------------------------------------------------------------------------

def tensor_stats(x: torch.Tensor, max_ks_samples: int = 100_000, seed: int = 0) -> dict:
    """Summary statistics of all values of ``x`` (computed in float64).

    Returns mean, std (unbiased, as ``torch.std``), min, max, abs_mean, rms, frac_zero, skew (biased, as
    ``scipy.stats.skew``), kurtosis (excess, Fisher, biased, as ``scipy.stats.kurtosis``), ks (the
    Kolmogorov–Smirnov distance between the standardised values and N(0, 1), as ``scipy.stats.kstest``) and
    ``normality = 1 − ks`` (1 for a perfect Gaussian; ≈ 0.94 for a uniform, lower for heavy tails or spikes).
    Tensors over ``max_ks_samples`` values use a seeded random subsample for the KS distance only.
    """
    v = x.detach().reshape(-1).to(torch.float64).cpu()
    n = v.numel()
    out: dict[str, Any] = {"numel": int(n)}
    if n == 0:
        return out
    finite = torch.isfinite(v)
    out["nonfinite"] = int((~finite).sum())
    if out["nonfinite"]:
        v = v[finite]
        n = v.numel()
        if n == 0:
            return out
    mean = v.mean()
    c = v - mean
    m2 = (c * c).mean()
    out.update({
        "mean": float(mean), "std": float(v.std()) if n > 1 else 0.0, "min": float(v.min()), "max": float(v.max()),
        "abs_mean": float(v.abs().mean()), "rms": float(v.pow(2).mean().sqrt()), "frac_zero": float((v == 0).double().mean()),
    })
    if n > 2 and float(m2) > 0:
        out["skew"] = float((c ** 3).mean() / m2 ** 1.5)
        out["kurtosis"] = float((c ** 4).mean() / m2 ** 2 - 3.0)
        from ..utils.optional import require

        kstest = require("scipy.stats", purpose="the Kolmogorov-Smirnov statistic of layer_report").kstest

        z = c / m2.sqrt()
        if n > max_ks_samples:
            g = torch.Generator().manual_seed(seed)
            z = z[torch.randint(0, n, (max_ks_samples,), generator=g)]
        ks = float(kstest(z.numpy(), "norm").statistic)
        out["ks"] = ks
        out["normality"] = 1.0 - ks
    else:
        out.update({"skew": None, "kurtosis": None, "ks": None, "normality": None})
    return out


# ---- parameters --------------------------------------------------------------------------------------------

def parameter_stats(model: nn.Module, max_ks_samples: int = 100_000) -> list[dict]:
    """:func:`tensor_stats` of every parameter, with its name, layer, shape and flags."""
    rows = []
    for name, p in model.named_parameters():
        st = tensor_stats(p, max_ks_samples)
        row = {"name": name, "layer": layer_of(name), "shape": list(p.shape), "trainable": bool(p.requires_grad), **st}
        flags = []
        if st.get("nonfinite"):
            flags.append(f"{st['nonfinite']} non-finite values")
        if p.dim() >= 2 and st.get("std") == 0.0:
            flags.append("constant weight matrix (std 0): broken init or collapsed")
        if p.dim() >= 2 and p.numel() >= 1000 and st.get("kurtosis") is not None and st["kurtosis"] > 10:
            flags.append(f"heavy-tailed weights (excess kurtosis {st['kurtosis']:.1f} > 10; outlier dimensions are "
                         f"usual in pretrained transformers, suspicious in a model trained from scratch)")
        if p.dim() >= 2 and p.numel() >= 1000 and st.get("normality") is not None and st["normality"] < 0.9:
            flags.append(f"weights far from normal (normality {st['normality']:.3f} < 0.9)")
        row["flags"] = flags
        rows.append(row)
    return rows


# ---- activations -------------------------------------------------------------------------------------------

def _first_tensor(out: Any) -> Optional[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        for o in out:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def _model_inputs(batch: dict, model: Optional[nn.Module] = None) -> dict:
    """The tensors of ``batch``, less ``labels`` when the model's forward does not take them."""
    out = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    if model is not None and "labels" in out:
        import inspect

        params = inspect.signature(model.forward).parameters
        if "labels" not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            out.pop("labels")
    return out


def activation_stats(model: nn.Module, batch: dict, mask_key: str = "attention_mask") -> dict:  # noqa: C901  (complex today; the list only shrinks)
    """Forward ``batch`` once (eval mode, no grad) with hooks on every leaf module.

    For each leaf module, in execution order: mean, std, abs_mean, min, max, frac_zero, frac_negative of its
    output over the real (non-padding) positions when the output's first two dims match ``attention_mask``.
    ReLU-type modules also get ``dead_fraction``: the share of units (last dimension) that are ≤ 0 on every
    position of the batch; Linear and Conv outputs get ``never_positive_fraction`` (the same share before the
    activation: the units a following functional ``F.relu`` kills). Flags: dead units, non-finite outputs, exploding activations, a ReLU as the last
    operation of the model (logits clipped at 0).
    """
    inputs = _model_inputs(batch, model)
    mask = inputs.get(mask_key)
    records: list[dict] = []
    handles = []
    order: list[str] = []

    def hook(name: str, module: nn.Module):
        def fn(_m, _inp, out):
            t = _first_tensor(out)
            if t is None or not t.is_floating_point():
                return
            t = t.detach()
            x = t
            if mask is not None and t.dim() >= 2 and tuple(t.shape[:2]) == tuple(mask.shape):
                x = t[mask.bool()]
            x = x.to(torch.float64)
            rec = {"name": name, "type": type(module).__name__, "shape": list(t.shape)}
            flat = x.reshape(-1)
            fin = torch.isfinite(flat)
            rec["nonfinite"] = int((~fin).sum())
            f = flat[fin]
            if f.numel():
                rec.update({"mean": float(f.mean()), "std": float(f.std()) if f.numel() > 1 else 0.0,
                            "abs_mean": float(f.abs().mean()), "min": float(f.min()), "max": float(f.max()),
                            "frac_zero": float((f == 0).double().mean()), "frac_negative": float((f < 0).double().mean())})
            if isinstance(module, (nn.Conv1d, nn.Conv2d)) and t.dim() >= 3:
                # channels are dim 1: the share that is never positive is dead if a (functional) ReLU follows
                ch = t.transpose(0, 1).reshape(t.shape[1], -1)
                rec["never_positive_fraction"] = float((ch <= 0).all(dim=1).double().mean())
            elif isinstance(module, nn.Linear) and x.dim() >= 1:
                rec["never_positive_fraction"] = float((x.reshape(-1, x.shape[-1]) <= 0).all(dim=0).double().mean())
            if _is_relu(module):
                units = x.reshape(-1, x.shape[-1]) if x.dim() >= 1 else x.reshape(-1, 1)
                dead = (units <= 0).all(dim=0)
                rec["dead_fraction"] = float(dead.double().mean())
                rec["dead_units"] = int(dead.sum())
                rec["units"] = int(dead.numel())
            records.append(rec)
            order.append(name)
        return fn

    for name, m in model.named_modules():
        if name and (len(list(m.children())) == 0 or _is_relu(m)):
            handles.append(m.register_forward_hook(hook(name, m)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(**inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    flags = []
    for i, rec in enumerate(records):
        # a normalisation layer right after the conv (Conv → BatchNorm → ReLU, as in ResNets) re-centres the
        # channels, so the sign of the raw conv output says nothing about dead units there
        rec_next_norm = i + 1 < len(records) and "Norm" in records[i + 1]["type"]
        if rec_next_norm and "never_positive_fraction" in rec:
            rec["followed_by_norm"] = True
        if rec.get("dead_fraction", 0) > 0:
            sev = "warning" if rec["dead_fraction"] >= 0.1 else "info"
            flags.append({"severity": sev, "where": rec["name"],
                          "what": f"{rec['dead_units']}/{rec['units']} dead ReLU units ({rec['dead_fraction']:.1%}) "
                                  f"on this batch"})
        if rec.get("never_positive_fraction", 0) >= 0.1 and "Conv" in rec["type"] and not rec_next_norm:
            flags.append({"severity": "info", "where": rec["name"],
                          "what": f"{rec['never_positive_fraction']:.1%} of the channels are never positive on this batch "
                                  f"(dead if a ReLU follows, as in CNN text models)"})
        if rec.get("nonfinite"):
            flags.append({"severity": "error", "where": rec["name"], "what": f"{rec['nonfinite']} non-finite outputs"})
        if rec.get("abs_mean") is not None and rec["abs_mean"] > 1e3:
            flags.append({"severity": "warning", "where": rec["name"],
                          "what": f"exploding activations (mean |x| {rec['abs_mean']:.3g} > 1e3)"})
    # the last operation of the model: a ReLU there clips the logits at zero
    last_relu = None
    if records:
        mods = dict(model.named_modules())
        last = records[-1]["name"]
        if _is_relu(mods[last]):
            last_relu = last
    out_t = _first_tensor(output.logits if hasattr(output, "logits") else output)
    if last_relu is not None:
        flags.append({"severity": "error", "where": last_relu,
                      "what": "ReLU before the output: the logits cannot go below 0 (never use ReLU on the last layer)"})
    return {"modules": records, "flags": flags, "relu_on_output": last_relu is not None,
            "output_min": float(out_t.min()) if out_t is not None and out_t.numel() else None}


# ---- gradients ---------------------------------------------------------------------------------------------

def gradient_norms(model: nn.Module, batch: dict, label_key: str = "labels") -> dict:
    """One forward + backward on ``batch`` (eval mode: no dropout) and the gradient L2 norm per parameter and
    per layer (:func:`layer_of`). The loss is the model's own when the batch has labels; without labels and
    with ``logits`` in the output, cross-entropy against the model's own predictions (noted in the result).
    The model's existing ``.grad`` values are saved and restored.
    """
    inputs = _model_inputs(batch, model)
    labels = batch.get(label_key) if isinstance(batch.get(label_key), torch.Tensor) else None
    saved = {n: (p.grad.detach().clone() if p.grad is not None else None) for n, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    label_source = "labels" if labels is not None else None
    try:
        model.zero_grad(set_to_none=True)
        out = model(**inputs)
        loss = getattr(out, "loss", None) if not isinstance(out, torch.Tensor) else None
        if loss is None:
            logits = out if isinstance(out, torch.Tensor) else getattr(out, "logits", None)
            if logits is None:
                return {"skipped": "the model returns no loss and no logits (a bare encoder): no gradients to show"}
            if labels is not None:
                target = labels
            else:
                target = logits.detach().argmax(-1)
                label_source = "model predictions (no labels given)"
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1))
        loss.backward()
        per_param, sq = {}, defaultdict(float)
        unused = []
        for n, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if p.grad is None:
                unused.append(n)
                continue
            g = float(p.grad.detach().double().norm())
            per_param[n] = g
            sq[layer_of(n)] += g * g
        per_layer = {k: math.sqrt(v) for k, v in sq.items()}
    finally:
        for n, p in model.named_parameters():
            p.grad = saved[n]
        model.train(was_training)
    flags = []
    vals = [v for v in per_layer.values() if math.isfinite(v) and v > 0]
    med = float(np.median(vals)) if vals else 0.0
    for k, v in per_layer.items():
        if not math.isfinite(v):
            flags.append({"severity": "error", "where": k, "what": "non-finite gradient norm"})
        elif med > 0 and v > 100 * med:
            flags.append({"severity": "warning", "where": k, "what": f"exploding gradient: norm {v:.3g} > 100× the median layer ({med:.3g})"})
        elif med > 0 and v < 1e-3 * med:
            flags.append({"severity": "warning", "where": k, "what": f"vanishing gradient: norm {v:.3g} < 1e-3× the median layer ({med:.3g})"})
    if unused:
        flags.append({"severity": "info", "where": ", ".join(unused[:4]) + (" …" if len(unused) > 4 else ""),
                      "what": f"{len(unused)} trainable parameters got no gradient (unused in the forward)"})
    return {"loss": float(loss.detach()), "label_source": label_source, "per_parameter": per_param,
            "per_layer": per_layer, "median_layer_norm": med, "unused": unused, "flags": flags}


# ---- the whole report --------------------------------------------------------------------------------------

def layer_report(model: nn.Module, batch: Optional[dict] = None, gradients: bool = True,
                 max_ks_samples: int = 100_000) -> dict:
    """Parameters (+ per-layer summary), activations and gradients on ``batch``, and every flag raised.

    ``batch`` is a dict of tensors as the model takes it (``input_ids``, ``attention_mask``, optionally
    ``labels``); without a batch only the parameter part is computed.
    """
    params = parameter_stats(model, max_ks_samples)
    report: dict[str, Any] = {"model_class": type(model).__name__,
                              "n_parameters": int(sum(p.numel() for p in model.parameters())),
                              "parameters": params}
    flags = [{"severity": "warning", "where": r["name"], "what": f} for r in params for f in r["flags"]]
    if batch is not None:
        acts = activation_stats(model, batch)
        report["activations"] = acts
        flags += acts["flags"]
        if gradients:
            grads = gradient_norms(model, batch)
            report["gradients"] = grads
            flags += grads.get("flags", [])
        report["batch"] = {k: list(v.shape) for k, v in _model_inputs(batch).items()}
    layers: dict[str, dict] = {}
    for r in params:
        L = layers.setdefault(r["layer"], {"numel": 0, "_sq": 0.0, "normality_min": None, "kurtosis_max": None})
        L["numel"] += r["numel"]
        L["_sq"] += (r.get("rms") or 0.0) ** 2 * r["numel"]
        if len(r["shape"]) >= 2 and r.get("normality") is not None:
            L["normality_min"] = r["normality"] if L["normality_min"] is None else min(L["normality_min"], r["normality"])
            L["kurtosis_max"] = r["kurtosis"] if L["kurtosis_max"] is None else max(L["kurtosis_max"], r["kurtosis"])
    for k, L in layers.items():
        L["param_rms"] = math.sqrt(L.pop("_sq") / L["numel"]) if L["numel"] else 0.0
        if "gradients" in report and "per_layer" in report["gradients"]:
            L["grad_norm"] = report["gradients"]["per_layer"].get(k)
    report["layers"] = layers
    order = {"error": 0, "warning": 1, "info": 2}
    report["flags"] = sorted(flags, key=lambda f: order.get(f["severity"], 3))
    return report


def plot_layer_report(report: dict, path: Union[str, os.PathLike], title: Optional[str] = None) -> Path:
    """Four panels: weight std per matrix, normality and kurtosis per matrix, activation std / dead-ReLU share
    per module, gradient norm per layer. Written atomically as PNG."""
    plt = _pyplot()
    weights = [r for r in report["parameters"] if len(r["shape"]) >= 2 and r.get("std") is not None]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    ax = axes[0, 0]
    ax.bar(range(len(weights)), [max(r["std"], 1e-12) for r in weights], color="tab:blue")
    ax.set_yscale("log")
    ax.set_title("weight std per matrix")
    _sparse_ticks(ax, [r["name"] for r in weights])
    ax = axes[0, 1]
    ax.plot(range(len(weights)), [r.get("normality") or 0 for r in weights], "o-", ms=3, label="normality (1 − KS)")
    ax.axhline(0.9, color="gray", ls="--", lw=0.8)
    ax.set_ylim(0, 1.02)
    ax2 = ax.twinx()
    ax2.plot(range(len(weights)), [r.get("kurtosis") or 0 for r in weights], "s-", ms=3, color="tab:red",
             label="excess kurtosis")
    ax2.set_ylabel("excess kurtosis", color="tab:red")
    ax.set_title("normality of weights")
    ax.legend(loc="lower left", fontsize=8)
    _sparse_ticks(ax, [r["name"] for r in weights])
    ax = axes[1, 0]
    acts = (report.get("activations") or {}).get("modules", [])
    if acts:
        ax.bar(range(len(acts)), [max(a.get("std") or 0, 1e-12) for a in acts], color="tab:green")
        ax.set_yscale("log")
        relu = [(i, a["dead_fraction"]) for i, a in enumerate(acts) if "dead_fraction" in a]
        if relu:
            ax3 = ax.twinx()
            ax3.plot([i for i, _ in relu], [d for _, d in relu], "v", color="black", label="dead ReLU share")
            ax3.set_ylim(0, 1.02)
            ax3.legend(loc="upper right", fontsize=8)
        _sparse_ticks(ax, [a["name"] for a in acts])
        ax.set_title("activation std per module (sample batch)")
    else:
        ax.text(0.5, 0.5, "no sample batch", ha="center", va="center")
        ax.set_axis_off()
    ax = axes[1, 1]
    grads = (report.get("gradients") or {}).get("per_layer") or {}
    if grads:
        names = list(grads)
        ax.bar(range(len(names)), [max(grads[n], 1e-30) for n in names], color="tab:orange")
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_title("gradient norm per layer")
    else:
        ax.text(0.5, 0.5, "no gradients computed", ha="center", va="center")
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        return atomic_save_figure(fig, path)
    finally:
        plt.close(fig)


def _sparse_ticks(ax, names: Sequence[str], max_ticks: int = 14) -> None:
    if not names:
        return
    step = max(1, math.ceil(len(names) / max_ticks))
    idx = list(range(0, len(names), step))
    ax.set_xticks(idx)
    ax.set_xticklabels([names[i].replace(".weight", "")[-38:] for i in idx], rotation=60, ha="right", fontsize=7)


def _pyplot():
    from ..utils.optional import require

    require("matplotlib", purpose="the figures").use("Agg")
    return require("matplotlib.pyplot", purpose="the figures")


def save_layer_report(report: dict, out_dir: Union[str, os.PathLike], stem: str = "layer_report",
                      overwrite: bool = False, title: Optional[str] = None, figure: bool = True) -> dict:
    """Write ``<stem>.json`` and ``<stem>.png`` into ``out_dir``; refuses to replace existing files unless
    ``overwrite``. Returns the paths written."""
    out = Path(out_dir)
    paths = {"json": out / f"{stem}.json"}
    if figure:
        paths["png"] = out / f"{stem}.png"
    for p in paths.values():
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} already exists; pass --overwrite to replace it")
    _write_json(paths["json"], report, finite=True)
    if figure:
        plot_layer_report(report, paths["png"], title=title)
    return {k: str(v) for k, v in paths.items()}


def format_layer_report(report: dict, top: int = 40) -> str:
    """A text table of the per-layer summary and the flags."""
    lines = [f"{report['model_class']}: {report['n_parameters']:,} parameters"]
    lines.append(f"{'layer':40s} {'params':>10s} {'rms':>9s} {'min normality':>13s} {'max kurt':>9s} {'grad norm':>10s}")
    for k, L in list(report["layers"].items())[:top]:
        nm = "-" if L["normality_min"] is None else f"{L['normality_min']:.3f}"
        ku = "-" if L["kurtosis_max"] is None else f"{L['kurtosis_max']:.2f}"
        gn = "-" if L.get("grad_norm") is None else f"{L['grad_norm']:.3g}"
        lines.append(f"{k[:40]:40s} {L['numel']:>10,d} {L['param_rms']:>9.4f} {nm:>13s} {ku:>9s} {gn:>10s}")
    relus = [a for a in (report.get("activations") or {}).get("modules", []) if "dead_fraction" in a]
    if relus:
        lines.append("ReLU modules: " + ", ".join(f"{a['name']} dead {a['dead_fraction']:.1%}" for a in relus[:12]))
    if report.get("gradients", {}).get("label_source"):
        lines.append(f"gradients: loss {report['gradients']['loss']:.4f} against {report['gradients']['label_source']}")
    elif report.get("gradients", {}).get("skipped"):
        lines.append(f"gradients: {report['gradients']['skipped']}")
    lines.append(f"flags ({len(report['flags'])}):" if report["flags"] else "flags: none")
    for f in report["flags"][:30]:
        lines.append(f"  [{f['severity']}] {f['where']}: {f['what']}")
    return "\n".join(lines)


# ---- during training -------------------------------------------------------------------------------------

class LayerReportTrick(Callback):
    """Write the parameter statistics and per-layer gradient norms every ``every`` optimizer steps (and at the
    end of training) to ``<run dir>/layer_reports/step_<N>.json`` (+ ``.png`` when ``figure``).

    The gradients are the real training gradients of that step (read in ``before_optimizer_step``, after
    clipping). Expected effect on training: none. Cost: a pass over all parameters on report steps (a sort
    of up to 100k values per tensor for the normality score).
    """

    name = "layer_report"

    def __init__(self, every: int = 500, figure: bool = False, out_dir: Optional[str] = None,
                 max_ks_samples: int = 20_000):
        if int(every) < 1:
            raise ValueError(f"layer_report.every must be >= 1, got {every}")
        self.every, self.figure, self.out_dir, self.max_ks_samples = int(every), bool(figure), out_dir, int(max_ks_samples)
        self.written: list[str] = []

    def _dir(self, trainer) -> Optional[Path]:
        if self.out_dir:
            return Path(self.out_dir)
        for attr in ("output_dir", "run_dir", "out_dir"):
            d = getattr(trainer, attr, None)
            if d:
                return Path(d) / "layer_reports"
        return None

    def _write(self, model: nn.Module, trainer, step: int) -> None:
        acc = getattr(trainer, "accelerator", None)
        if acc is not None and not acc.is_main_process:
            return
        out = self._dir(trainer)
        if out is None:
            return
        report = layer_report(model, None, max_ks_samples=self.max_ks_samples)
        per_layer: dict[str, float] = defaultdict(float)
        for n, p in model.named_parameters():
            if p.grad is not None:
                per_layer[layer_of(n)] += float(p.grad.detach().double().norm()) ** 2
        if per_layer:
            report["gradients"] = {"per_layer": {k: math.sqrt(v) for k, v in per_layer.items()}, "label_source": "training step"}
            for k, L in report["layers"].items():
                L["grad_norm"] = report["gradients"]["per_layer"].get(k)
        report["step"] = step
        paths = save_layer_report(report, out, stem=f"step_{step}", overwrite=True, figure=self.figure,
                                  title=f"step {step}")
        self.written.append(paths["json"])

    def before_optimizer_step(self, step) -> None:
        if (step.global_step + 1) % self.every == 0:
            self._write(step.unwrapped_model, step.state, step.global_step + 1)

    def on_fit_end(self, trainer) -> None:
        model = getattr(trainer, "model", None)
        if model is None:
            return
        acc = getattr(trainer, "accelerator", None)
        model = acc.unwrap_model(model) if acc is not None else model
        self._write(model, trainer, int(getattr(trainer, "global_step", 0)))
