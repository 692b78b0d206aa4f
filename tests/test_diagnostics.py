"""Diagnostics: fit-regime doctor, imbalance watch, layer statistics, [CLS] probes, embedding plots."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from nlp_cv_tricks.diagnostics import (DiagnosticsError, ImbalanceWatch, Thresholds, TrainEval,
                                       activation_stats, diagnose, diagnose_run, gradient_norms, imbalance_signal,
                                       layer_report, parameter_stats, plot_embeddings, probe_cls, probe_embeddings,
                                       read_labelled_texts, save_layer_report, tensor_stats)
from nlp_cv_tricks.cli.diagnostics import main as diag_main
from nlp_cv_tricks.diagnostics.probes import POOLINGS

from conftest import shared_data

ROOT = Path(__file__).resolve().parents[1]
SST2_DEV = ROOT / "data" / "sst2" / "dev.txt"  # the bundled copy of kim2014/stsa.binary.dev
SST2_TRAIN = ROOT / "data" / "sst2" / "train.txt"  # ... of kim2014/stsa.binary.train
TREC = ROOT / "tests" / "fixtures" / "kim2014" / "TREC.first300.txt"  # first 300 lines of kim2014/TREC.train.all

torch.set_num_threads(1)


# ---- synthetic histories ----------------------------------------------------------------------------------

def history(kind: str, seed: int = 0) -> list[dict]:
    """1,000 steps, a train log every 10 steps, a dev evaluation every 100 (one epoch = 100 steps)."""
    rng = np.random.default_rng(seed)
    recs = []
    for step in range(10, 1001, 10):
        t = step / 1000
        if kind == "healthy":
            tl = 0.7 * math.exp(-4 * t) + 0.1
        elif kind == "overfit":
            tl = 0.7 * math.exp(-5 * t) + 0.02
        elif kind == "underfit":
            tl = 0.69 - 0.12 * (1 - math.exp(-8 * t))
        elif kind == "not_converging":
            tl = 0.69
        elif kind == "diverging":
            tl = 0.7 * math.exp(-3) + 0.2 if step > 500 else 0.7 * math.exp(-6 * t) + 0.2
            if step > 500:
                tl *= math.exp(6 * (t - 0.5))
        elif kind == "nan":
            tl = 0.7 * math.exp(-4 * t) + 0.1 if step < 730 else float("nan")
        tl *= 1 + 0.03 * rng.standard_normal()
        recs.append({"step": step, "epoch": step / 100, "train/loss": tl, "train/lr": 5e-5, "train/grad_norm": 1.0})
        if step % 100 == 0 and not (kind == "nan" and step > 730):
            e = step // 100
            el, acc = {
                "healthy": (0.35 * math.exp(-0.5 * e) + 0.25, 0.9 - 0.2 * math.exp(-0.6 * e)),
                "overfit": (0.4 + 0.02 * (e - 4) ** 2, 0.85 - 0.01 * abs(e - 4)),
                "underfit": (0.60, 0.65), "not_converging": (0.69, 0.5), "diverging": (0.5, 0.7),
                "nan": (0.4, 0.8),
            }[kind]
            acc += 0.004 * rng.standard_normal()
            recs.append({"step": step, "epoch": float(e), "eval/loss": el, "eval/accuracy": acc, "eval/f1_macro": acc})
    return recs


@pytest.mark.parametrize("kind,regime,onset", [
    ("healthy", "healthy", None),
    ("overfit", "overfitting", 400),
    ("underfit", "underfitting", "plateau"),
    ("not_converging", "not_converging", 10),
    ("diverging", "diverging", (450, 510)),
    ("nan", "diverging", 730),
])
def test_doctor_classifies_each_regime_with_its_onset(kind, regime, onset):
    for seed in range(3):
        d = diagnose(history(kind, seed))
        assert d.regime == regime, (kind, seed, d.reasons)
        if onset is None:
            assert d.onset_step is None
        elif onset == "plateau":  # where the train loss came within 10 % of its final level
            assert 200 <= d.onset_step <= 600
        elif isinstance(onset, tuple):
            assert onset[0] <= d.onset_step <= onset[1], d.onset_step
            assert d.evidence["diverge_detected_step"] > d.onset_step
        else:
            assert d.onset_step == onset
        assert d.reasons and d.thresholds["patience"] == 2


def test_overfit_remedies_are_ready_overrides_in_the_tips_order():
    from nlp_cv_tricks.config import apply_overrides, recipe_from_dict
    import yaml

    recipe = yaml.safe_load((ROOT / "recipes" / "quickstart.yaml").read_text())
    d = diagnose_run(history("overfit"), recipe=recipe)
    overrides = [r.override for r in d.remedies if r.override]
    assert overrides[0] == "model.config_overrides.hidden_dropout_prob=0.2"  # dropout first
    assert "train.epochs=4" in overrides  # the dev loss turned at epoch 4
    assert "tricks+=rdrop" in overrides and "tricks+=embedding_dropout" in overrides
    assert overrides.index("train.epochs=4") < overrides.index("train.weight_decay=0")  # fewer epochs, then WD A/B
    for r in d.remedies:  # every runnable remedy is a valid override of the real recipe
        if r.available:
            recipe_from_dict(apply_overrides(recipe, [r.override]))
    extended = apply_overrides(dict(recipe, tricks=[{"label_smoothing": {"epsilon": 0.1}}]), ["tricks+=rdrop"])
    assert extended["tricks"] == [{"label_smoothing": {"epsilon": 0.1}}, "rdrop"]  # existing trick options are kept
    assert extended["callbacks"] == [{"grad_norm_logging": {"every": 50}}]
    with_rdrop = dict(recipe, tricks=["rdrop"])
    rd = next(r for r in diagnose_run(history("overfit"), recipe=with_rdrop).remedies if "rdrop" in (r.override or ""))
    assert not rd.available and "already in the recipe" in rd.note
    diverging = diagnose_run(history("diverging"), recipe=recipe)
    assert diverging.remedies[0].override == "train.learning_rate=2.5e-05"


def test_imbalanced_overfit_hidden_by_a_falling_loss():
    recs = []
    for e in range(1, 9):
        f1 = 0.80 - 0.04 * max(0, e - 3)  # the minority gets worse after epoch 3 ...
        recs.append({"step": 10 * e - 5, "epoch": e - 0.5, "train/loss": 0.5 * 0.8 ** e})
        recs.append({"step": 10 * e, "epoch": float(e), "eval/loss": 0.5 - 0.02 * e,  # ... while dev loss falls
                     "eval/accuracy": 0.92, "eval/f1_macro": f1, "eval/auc": 0.9 - 0.01 * max(0, e - 3),
                     "eval/recall/spam": 0.7 - 0.08 * max(0, e - 3), "eval/recall/ham": 0.99,
                     "eval/support/spam": 50, "eval/support/ham": 950})
    d = diagnose_run(recs, recipe={"train": {"metric": "accuracy"}})
    assert d.regime == "overfitting" and d.onset_step == 30
    assert d.imbalanced and {e["key"] for e in d.imbalance_events} >= {"eval/f1_macro", "eval/recall/spam"}
    assert "eval/recall/ham" not in {e["key"] for e in d.imbalance_events}  # the majority class is not watched
    names = " ".join(r.override or "" for r in d.remedies)
    assert "focal_loss" in names and "class_weights" in names and "train.metric=f1_macro" in names


def test_gap_alone_means_overfitting_from_the_first_step_above_the_threshold():
    recs = []
    for e in range(1, 7):
        recs.append({"step": 10 * e - 5, "train/loss": 0.6 * 0.6 ** e})
        recs.append({"step": 10 * e, "eval/loss": 0.5 - 0.01 * e, "eval/accuracy": 0.70 + 0.002 * e,
                     "train_eval/accuracy": min(1.0, 0.72 + 0.06 * e)})
    d = diagnose(recs)
    assert d.regime == "overfitting" and d.onset_step == 20  # 0.84 − 0.704 ≥ 0.10 first at step 20
    assert diagnose(recs, Thresholds(overfit_gap=0.5)).regime == "healthy"
    # the dev score never turned: no "stop earlier" prescription, regularisation instead
    d = diagnose_run(recs, recipe={"train": {"metric": "accuracy", "epochs": 3}})
    overrides = [r.override or "" for r in d.remedies]
    assert not any(o.startswith(("train.epochs=", "train.max_steps=")) for o in overrides), overrides
    assert any("has not turned" in r for r in d.reasons)


def test_stop_earlier_speaks_in_max_steps_when_they_bound_the_run():
    recs = []
    for e in range(1, 9):
        recs.append({"step": 10 * e - 5, "epoch": e / 8, "train/loss": 0.6 * 0.7 ** e})
        recs.append({"step": 10 * e, "epoch": e / 8, "eval/loss": 0.3 + 0.05 * abs(e - 3),
                     "eval/accuracy": 0.85 - 0.03 * abs(e - 3)})
    d = diagnose_run(recs, recipe={"train": {"metric": "accuracy", "epochs": 1, "max_steps": 80}})
    assert d.regime == "overfitting" and d.onset_step == 30
    overrides = [r.override or "" for r in d.remedies]
    assert "train.max_steps=30" in overrides and not any(o.startswith("train.epochs=") for o in overrides)


def test_question_answering_evaluations_are_counted_without_a_dev_loss():
    recs = [{"step": 2, "train/loss": 5.0}] + [{"step": s, "eval/f1": 10.0 + s, "eval/exact_match": 5.0 + s}
                                                for s in (3, 6, 9)]
    d = diagnose_run(recs, recipe={"train": {"metric": "f1"}})
    assert d.evidence["n_evals"] == 3 and d.evidence["primary_metric"] == "eval/f1"
    assert not any("0 evaluations" in r for r in d.reasons)


def test_underfit_from_train_accuracy_and_threshold_changes():
    recs = [{"step": s, "train/loss": 0.7 - 0.0002 * s} for s in range(10, 510, 10)]
    recs += [{"step": s, "eval/loss": 0.6, "eval/accuracy": 0.71, "train_eval/accuracy": 0.72} for s in (100, 300, 500)]
    d = diagnose(recs)
    assert d.regime == "underfitting" and d.evidence["train_accuracy_end"] == 0.72
    assert diagnose(recs, Thresholds(underfit_train_acc=0.7)).regime == "healthy"


def test_history_file_errors_name_file_and_line(tmp_path):
    (tmp_path / "history.jsonl").write_text('{"step": 1, "train/loss": 0.7}\n\n{"step": 2, "train/loss": \n')
    with pytest.raises(DiagnosticsError, match=r"history.jsonl:3: not valid JSON"):
        diagnose(tmp_path)
    (tmp_path / "history.jsonl").write_text('{"step": 1.5, "train/loss": 0.7}\n')
    with pytest.raises(DiagnosticsError, match=r"history.jsonl:1: expected an integer 'step'"):
        diagnose(tmp_path)
    with pytest.raises(DiagnosticsError, match="no metrics history"):
        diagnose(tmp_path / "nowhere")


def test_diagnose_cli_on_a_run_dir(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history("overfit")))
    (run / "recipe.yaml").write_text((ROOT / "recipes" / "quickstart.yaml").read_text())
    out = tmp_path / "diag.json"
    assert diag_main(["diagnose", str(run), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "regime: overfitting (from step 400)" in text and "train.epochs=4" in text
    assert "nlp-cv-tricks ablate" in text and "--vary tricks=+rdrop" in text
    saved = json.loads(out.read_text())
    assert saved["regime"] == "overfitting" and saved["remedies"][0]["override"].startswith("model.config_overrides")
    assert diag_main(["diagnose", str(run), "--threshold", "patiense=3"]) == 2
    assert "did you mean 'patience'" in capsys.readouterr().err


def test_diagnose_run_launches_the_remedies_through_ablate(tmp_path, monkeypatch, capsys):
    import nlp_cv_tricks.ablate as ablate_mod

    run = tmp_path / "run"
    run.mkdir()
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history("overfit")))
    (run / "recipe.yaml").write_text((ROOT / "recipes" / "quickstart.yaml").read_text())
    calls = []

    def fake_ablate(recipe, vary, seeds, out_dir, in_process, **kw):
        calls.append((recipe, vary, seeds, out_dir, in_process))
        return SimpleNamespace(markdown="| variant | accuracy |")

    monkeypatch.setattr(ablate_mod, "ablate", fake_ablate)
    assert diag_main(["diagnose", str(run), "--run", "--seeds", "2", "--in-process"]) == 0
    (recipe, vary, seeds, out_dir, in_process), = calls
    assert recipe == str(run / "recipe.yaml") and seeds == 2 and in_process and out_dir == str(run / "remedies")
    assert vary[0] == "model.config_overrides.hidden_dropout_prob=0.2" and "tricks=+rdrop" in vary
    assert "train.weight_decay=0.01,0" in vary and "| variant | accuracy |" in capsys.readouterr().out
    ablate_mod.build_variants(recipe, vary)  # the harness accepts every --vary the doctor produced


# ---- imbalance watch --------------------------------------------------------------------------------------

def test_imbalance_signal_and_watch_trick(caplog):
    prev = {"eval/loss": 0.40, "eval/auc": 0.90, "eval/f1_macro": 0.80, "eval/recall/pos": 0.70,
            "eval/recall/neg": 0.98, "eval/support/pos": 100, "eval/support/neg": 900}
    worse = dict(prev, **{"eval/loss": 0.38, "eval/recall/pos": 0.60})
    assert [e["key"] for e in imbalance_signal(prev, worse)] == ["eval/recall/pos"]
    assert imbalance_signal(prev, dict(worse, **{"eval/loss": 0.41})) == []  # loss did not improve
    watch = ImbalanceWatch()
    fake = SimpleNamespace(label_counts=[900, 100], task=SimpleNamespace(label_names=["neg", "pos"]), global_step=7)
    watch.on_fit_start(fake)
    assert watch.minority == ["pos"]
    m1, m2 = dict(prev), dict(worse)
    with caplog.at_level(logging.WARNING):
        watch.on_eval_end(fake, m1)
        watch.on_eval_end(fake, m2)
    assert m1["eval/imbalance_warning"] == 0 and m2["eval/imbalance_warning"] == 1
    assert "recall/pos 0.700→0.600" in caplog.text
    restored = ImbalanceWatch()
    restored.load_state_dict(json.loads(json.dumps(watch.state_dict())))
    assert restored.warnings == watch.warnings


# ---- layer statistics -------------------------------------------------------------------------------------

def test_tensor_stats_equal_torch_and_scipy():
    from scipy import stats

    g = torch.Generator().manual_seed(0)
    for x in [torch.randn(4000, generator=g) * 2 + 1, torch.rand(50, 80, generator=g),
              torch.distributions.StudentT(3.0).sample((3000,))]:
        s = tensor_stats(x)
        v = x.double().numpy().ravel()
        assert s["mean"] == pytest.approx(float(x.double().mean()), abs=1e-12)
        assert s["std"] == pytest.approx(float(x.double().std()), rel=1e-10)
        assert s["skew"] == pytest.approx(float(stats.skew(v)), rel=1e-8, abs=1e-10)
        assert s["kurtosis"] == pytest.approx(float(stats.kurtosis(v)), rel=1e-8, abs=1e-10)
        z = (v - v.mean()) / v.std()
        assert s["ks"] == pytest.approx(float(stats.kstest(z, "norm").statistic), rel=1e-8)
        assert s["min"] == float(x.min()) and s["max"] == float(x.max())
    assert tensor_stats(torch.randn(20000, generator=g))["normality"] > 0.98
    assert 0.9 < tensor_stats(torch.rand(20000, generator=g))["normality"] < 0.96  # uniform: KS ≈ 0.058
    bad = tensor_stats(torch.tensor([1.0, float("nan"), 3.0]))
    assert bad["nonfinite"] == 1 and bad["mean"] == 2.0


def test_parameter_stats_on_known_weights_and_flags():
    lin = nn.Linear(50, 40)
    with torch.no_grad():
        lin.weight.copy_(torch.arange(2000, dtype=torch.float32).reshape(40, 50))
        lin.bias.zero_()
    rows = {r["name"]: r for r in parameter_stats(lin)}
    w = rows["weight"]
    assert w["mean"] == pytest.approx(999.5) and w["std"] == pytest.approx(float(torch.arange(2000.).std()))
    assert w["skew"] == pytest.approx(0.0, abs=1e-9) and w["kurtosis"] == pytest.approx(-1.2, abs=1e-3)
    assert w["normality"] == pytest.approx(1 - 0.0577, abs=0.005) and w["flags"] == []  # uniform-like: KS ≈ 0.058
    assert rows["bias"]["frac_zero"] == 1.0 and rows["bias"]["flags"] == []
    with torch.no_grad():  # a spike: almost all zeros and a few huge values
        lin.weight.zero_()
        lin.weight[0, :5] = 100.0
    flags = {r["name"]: r for r in parameter_stats(lin)}["weight"]["flags"]
    assert any("heavy-tailed" in f for f in flags) and any("far from normal" in f for f in flags)


class _MLP(nn.Module):
    def __init__(self, relu_last: bool):
        super().__init__()
        layers = [nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)]
        self.net = nn.Sequential(*(layers + [nn.ReLU()] if relu_last else layers))

    def forward(self, x):
        return self.net(x)


def test_dead_relu_and_relu_on_the_output_are_detected():
    torch.manual_seed(0)
    m = _MLP(relu_last=True)
    with torch.no_grad():
        m.net[0].bias[:4] = -100.0  # four hidden units can never fire
    acts = activation_stats(m, {"x": torch.randn(64, 8)})
    hidden = next(a for a in acts["modules"] if a["name"] == "net.1")
    assert hidden["dead_units"] == 4 and hidden["dead_fraction"] == 0.25
    assert acts["relu_on_output"] and any("ReLU before the output" in f["what"] for f in acts["flags"])
    lin_out = next(a for a in acts["modules"] if a["name"] == "net.0")
    assert lin_out["never_positive_fraction"] == 0.25  # the same four units, seen before the activation
    ok = _MLP(relu_last=False)
    acts2 = activation_stats(ok, {"x": torch.randn(64, 8)})
    assert not acts2["relu_on_output"]
    assert lin_out["frac_negative"] > 0


def _sst2_vocab_bert(tmp: Path, classify: bool = True, hidden: int = 32, layers: int = 2) -> Path:
    """A tiny BERT whose WordPiece vocab is the 600 most frequent SST-2 training words (no download)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import (BertConfig, BertForSequenceClassification, BertModel, PreTrainedTokenizerFast)

    words = Counter(w for line in SST2_TRAIN.read_text().splitlines() for w in line.split()[1:])
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for w, _ in words.most_common(600)]
    backend = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                  sep_token="[SEP]", mask_token="[MASK]")
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=128, hidden_dropout_prob=0.1,
                     id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1})
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg) if classify else BertModel(cfg)
    tok.save_pretrained(tmp)
    model.save_pretrained(tmp)
    return tmp


@pytest.fixture(scope="module")
def sst_bert(tmp_path_factory) -> Path:
    return _sst2_vocab_bert(tmp_path_factory.mktemp("sst_bert"))


def _batch(path: Path, n: int = 12, with_labels: bool = True):
    from transformers import AutoTokenizer

    data = read_labelled_texts(SST2_DEV)
    tok = AutoTokenizer.from_pretrained(path)
    batch = dict(tok(data.texts[:n], padding=True, return_tensors="pt"))
    if with_labels:
        batch["labels"] = torch.tensor([int(x) for x in data.labels[:n]])
    return batch


def test_activation_stats_use_real_tokens_only(sst_bert):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(sst_bert)
    batch = _batch(sst_bert)
    acts = {a["name"]: a for a in activation_stats(model, batch)["modules"]}
    with torch.no_grad():
        hs = model.eval()(**{k: v for k, v in batch.items() if k != "labels"}, output_hidden_states=True).hidden_states
    real = hs[0][batch["attention_mask"].bool()].double()
    ln = acts["bert.embeddings.LayerNorm"]
    assert ln["mean"] == pytest.approx(float(real.mean()), abs=1e-9)
    assert ln["std"] == pytest.approx(float(real.std()), rel=1e-6)
    model.train()
    activation_stats(model, batch)
    assert model.training


def test_gradient_norms_equal_direct_backward(sst_bert):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(sst_bert)
    batch = _batch(sst_bert)
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)  # pre-existing gradients must survive
    res = gradient_norms(model, batch)
    model.eval()
    model.zero_grad(set_to_none=True)
    model(**batch).loss.backward()
    direct = {n: float(p.grad.double().norm()) for n, p in model.named_parameters() if p.grad is not None}
    assert set(res["per_parameter"]) == set(direct)
    for n, v in direct.items():
        assert res["per_parameter"][n] == pytest.approx(v, rel=1e-6, abs=1e-12)
    layer0 = math.sqrt(sum(v * v for n, v in direct.items() if ".layer.0." in n))
    assert res["per_layer"]["encoder.layer.0"] == pytest.approx(layer0, rel=1e-6)
    assert res["label_source"] == "labels"
    fresh = AutoModelForSequenceClassification.from_pretrained(sst_bert)
    for p in fresh.parameters():
        p.grad = torch.full_like(p, 7.0)
    gradient_norms(fresh, batch)
    assert all(torch.all(p.grad == 7.0) for p in fresh.parameters())
    unlabelled = gradient_norms(fresh, {k: v for k, v in batch.items() if k != "labels"})
    assert unlabelled["label_source"].startswith("model predictions")


def test_layer_report_json_and_png(sst_bert, tmp_path):
    from PIL import Image
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(sst_bert)
    rep = layer_report(model, _batch(sst_bert))
    assert set(rep["layers"]) >= {"embeddings", "encoder.layer.0", "encoder.layer.1", "classifier"}
    assert rep["layers"]["classifier"]["grad_norm"] > 0
    paths = save_layer_report(rep, tmp_path / "rep")
    data = json.loads(Path(paths["json"]).read_text())
    assert data["n_parameters"] == sum(p.numel() for p in model.parameters())
    png = Path(paths["png"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(paths["png"]) as im:
        assert im.size[0] > 500 and im.size[1] > 400
    with pytest.raises(FileExistsError):
        save_layer_report(rep, tmp_path / "rep")


def test_inspect_cli_on_a_model_dir(sst_bert, tmp_path, capsys):
    out = tmp_path / "inspect"
    assert diag_main(["inspect", str(sst_bert), "--data", str(SST2_DEV), "--n", "8", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "encoder.layer.1" in text and "against labels" in text
    assert (out / "layer_report.json").is_file() and (out / "layer_report.png").stat().st_size > 1000


# ---- probes -----------------------------------------------------------------------------------------------

def test_probe_measures_on_constructed_embeddings():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b"], 100)
    blobs = rng.normal(size=(200, 16)) + np.where(y[:, None] == "a", 3.0, -3.0) * np.eye(16)[0]
    r = probe_embeddings(blobs, y)
    assert r["probe_acc"] > 0.95 and r["majority_acc"] == 0.5 and r["spearman"] > 0.5
    noise = probe_embeddings(rng.normal(size=(200, 16)), y)
    assert noise["probe_acc"] < 0.7 and abs(noise["anisotropy"]) < 0.05 and abs(noise["spearman"]) < 0.1
    cone = probe_embeddings(rng.normal(size=(200, 16)) + 10.0, y)
    assert cone["anisotropy"] > 0.9 and cone["uniformity"] > noise["uniformity"]
    # per-fold scores, on the same folds for every representation (so rows compare fold by fold)
    assert len(r["probe_fold_accs"]) == r["probe_folds"] == 5
    assert np.mean(r["probe_fold_accs"]) == pytest.approx(r["probe_acc"])
    assert min(a - b for a, b in zip(r["probe_fold_accs"], noise["probe_fold_accs"])) > 0.1
    assert -4.0 <= noise["uniformity"] <= 0.0 and 0.0 <= noise["alignment"] <= 4.0


def test_probe_cls_tiny_model_on_sst2(sst_bert):
    data = read_labelled_texts(SST2_DEV)
    res = probe_cls(sst_bert, data, max_examples=200, folds=3)
    assert res["n_examples"] == 200 and res["n_layers"] == 2 and len(res["rows"]) == 3 * 3
    for r in res["rows"]:
        assert 0.3 <= r["probe_acc"] <= 1.0 and 0.5 <= r["majority_acc"] <= 0.6
        assert -1.0 <= r["anisotropy"] <= 1.0
    cls0 = next(r for r in res["rows"] if r["layer"] == 0 and r["pooling"] == "cls")
    assert cls0["anisotropy"] == pytest.approx(1.0, abs=1e-6) and cls0["spearman"] is None  # identical [CLS] at layer 0
    assert cls0["probe_acc"] == pytest.approx(cls0["majority_acc"], abs=0.02)
    v = res["verdict"]
    assert v["recommended_pooling"] in POOLINGS and isinstance(v["cls_trustworthy"], bool) and v["text"]


def test_probe_cls_pairs_spearman(sst_bert, tmp_path):
    data = read_labelled_texts(SST2_DEV)
    rng = np.random.default_rng(0)
    rows = ["text_a\ttext_b\tlabel"]
    for i in range(60):
        a = data.texts[i]
        rows.append(f"{a}\t{a}\t1" if i % 2 else f"{a}\t{data.texts[int(rng.integers(100, 800))]}\t0")
    f = tmp_path / "pairs.tsv"
    f.write_text("\n".join(rows) + "\n")
    pairs = read_labelled_texts(f)
    assert pairs.pairs is not None and len(pairs) == 60
    res = probe_cls(sst_bert, pairs, layers=[-1], folds=3)
    mean = next(r for r in res["rows"] if r["pooling"] == "mean")
    assert res["pairs"] and mean["spearman"] > 0.8  # identical texts: cosine 1 against < 1


def test_probe_cls_minilm_sst2_small():
    data = read_labelled_texts(SST2_DEV)
    res = probe_cls("minilm-l6", data, layers=[-1], poolings=["cls", "mean"], max_examples=160, folds=4)
    mean = next(r for r in res["rows"] if r["pooling"] == "mean")
    assert mean["probe_acc"] > mean["majority_acc"] + 0.15
    assert res["verdict"]["trained_pooling"] == "mean"


# ---- plots ------------------------------------------------------------------------------------------------

def test_plot_embeddings_png_and_class_limits(tmp_path, caplog):
    from PIL import Image

    rng = np.random.default_rng(0)
    y = np.repeat([f"c{i}" for i in range(4)], 60)
    emb = rng.normal(size=(240, 64)) + 4 * np.eye(64)[np.repeat(np.arange(4), 60)]
    info = plot_embeddings(emb, y, tmp_path / "e.png", per_class=40, pca_dims=20)
    assert info["n_points"] == 160 and info["pca_dims"] == 20 and set(info["classes"].values()) == {40}
    with Image.open(tmp_path / "e.png") as im:
        im.verify()
    with pytest.raises(FileExistsError):
        plot_embeddings(emb, y, tmp_path / "e.png")
    many = np.array([f"k{i % 25}" for i in range(250)])
    emb2 = rng.normal(size=(250, 8))
    with pytest.raises(DiagnosticsError, match="25 classes is too many"):
        plot_embeddings(emb2, many, tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()
    with caplog.at_level(logging.WARNING):
        info = plot_embeddings(emb2, many, tmp_path / "m.png", force=True, max_classes=12)
    assert len(info["classes"]) == 12 and "most frequent" in info["warnings"][0] and "hard to tell" in caplog.text


def test_plot_embeddings_cli_on_trec(sst_bert, tmp_path, capsys):
    lines = TREC.read_text(encoding="latin-1").splitlines()[:300]
    f = tmp_path / "trec.txt"
    f.write_text("\n".join(lines) + "\n")
    out = tmp_path / "trec.png"
    assert diag_main(["plot-embeddings", str(sst_bert), "--data", str(f), "--out", str(out), "--per-class", "30"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(capsys.readouterr().out)["n_points"] <= 6 * 30
    assert diag_main(["plot-embeddings", str(sst_bert), "--data", str(f), "--out", str(tmp_path / "x.png"),
                      "--max-classes", "3"]) == 2
    assert "too many" in capsys.readouterr().err


# ---- data reading -----------------------------------------------------------------------------------------

def test_text_files_errors_name_file_and_row(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 fine sentence\n0\n")
    with pytest.raises(DiagnosticsError, match=r"bad.txt:2: expected '<label> <sentence>'"):
        read_labelled_texts(bad)
    csv = tmp_path / "d.csv"
    csv.write_text("sentence,y\nhello,1\n")
    with pytest.raises(DiagnosticsError, match=r"d.csv: no label column .*columns are \['sentence', 'y'\]"):
        read_labelled_texts(csv)
    assert read_labelled_texts(csv, label_column="y").labels == ["1"]
    tsv = tmp_path / "e.tsv"
    tsv.write_text("label\ttext_a\n1\tok\n0\t \n")
    with pytest.raises(DiagnosticsError, match=r"e.tsv: row 3: empty"):
        read_labelled_texts(tsv)
    thuc = read_labelled_texts(shared_data("thucnews/dev.txt"))
    assert len(thuc) == 10000 and thuc.labels[0] == "8"


# ---- with the package's trainer ---------------------------------------------------------------------------

def test_real_short_run_history_is_diagnosable(tiny_bert, toy_data, tmp_path):
    from conftest import tiny_recipe
    from nlp_cv_tricks.runner import build_trainer

    out = tmp_path / "run"
    recipe = tiny_recipe(tiny_bert, toy_data, out,
                         "callbacks=[train_eval,imbalance_watch,{layer_report: {every: 10}}]", "train.epochs=2")
    res = build_trainer(recipe, output_dir=str(out)).fit()
    lines = [json.loads(x) for x in (Path(res.output_dir) / "history.jsonl").read_text().splitlines()]
    evals = [r for r in lines if "eval/loss" in r]
    assert evals and all("train_eval/accuracy" in r and "eval/imbalance_warning" in r for r in evals)
    d = diagnose_run(res.output_dir)
    assert d.regime in ("healthy", "not_converged", "underfitting", "overfitting", "not_converging")
    assert d.evidence["n_evals"] == len(evals)
    assert d.evidence["train_accuracy_end"] == evals[-1]["train_eval/accuracy"]
    reports = sorted((Path(res.output_dir) / "layer_reports").glob("step_*.json"))
    assert [p.name for p in reports][:2] == ["step_10.json", "step_20.json"]
    during = json.loads(reports[0].read_text())
    assert during["step"] == 10 and during["gradients"]["per_layer"]["classifier"] > 0


def test_train_eval_trick_adds_train_metrics():
    class FakeTrainer:
        train_dataset = list(range(1000))

        def evaluate(self, dataset, prefix):
            self.seen = len(dataset)
            return {f"{prefix}/accuracy": 0.9, f"{prefix}/loss": 0.3, f"{prefix}/recall/x": 0.1}

    t, metrics = FakeTrainer(), {"eval/accuracy": 0.8}
    TrainEval(max_samples=100).on_eval_end(t, metrics)
    assert t.seen == 100 and metrics == {"eval/accuracy": 0.8, "train_eval/accuracy": 0.9, "train_eval/loss": 0.3}



def test_a_macro_f1_dip_on_balanced_classes_is_not_called_imbalance():
    recs = []
    for e in range(1, 6):
        recs.append({"step": 10 * e - 5, "epoch": e - 0.5, "train/loss": 0.5 * 0.8 ** e})
        recs.append({"step": 10 * e, "epoch": float(e), "eval/loss": 0.5 - 0.02 * e, "eval/accuracy": 0.9,
                     "eval/f1_macro": 0.9 - (0.05 if e == 3 else 0.0),
                     "eval/support/a": 50, "eval/support/b": 50})
    d = diagnose_run(recs, recipe={"train": {"metric": "accuracy"}})
    assert not d.imbalanced and "balanced" in d.evidence["imbalance_events_ignored"]
    assert not any("focal_loss" in (r.override or "") for r in d.remedies)
    # the same dip with a 10:1 class ratio is an imbalance signal
    for r in recs:
        if "eval/support/a" in r:
            r["eval/support/a"] = 500
    assert diagnose_run(recs, recipe={"train": {"metric": "accuracy"}}).imbalanced


def test_imbalance_watch_refuses_minority_labels_the_data_lacks():
    from types import SimpleNamespace

    from nlp_cv_tricks.diagnostics.imbalance import ImbalanceWatch

    trainer = SimpleNamespace(label_counts=[50, 50], task=SimpleNamespace(label_names=["negative", "positive"]))
    with pytest.raises(ValueError, match=r"imbalance_watch.minority: \['neg'\] not among the labels"):
        ImbalanceWatch(minority=["neg"]).on_fit_start(trainer)
    ImbalanceWatch(minority=["negative"]).on_fit_start(trainer)


# ---- "not converged": the dev metric still improving at the last evaluation ------------------------------

def _still_rising(accs, losses, train_start=0.70, train_end=0.30, per_eval=5, every=100):
    """A history whose dev metric keeps rising up to its last evaluation (train loss falling meanwhile)."""
    recs, n = [], len(accs)
    for e, (acc, loss) in enumerate(zip(accs, losses), 1):
        for j in range(per_eval):
            step = (e - 1) * every + (j + 1) * every // per_eval
            t = step / (n * every)
            recs.append({"step": step, "epoch": t, "train/loss": train_start + (train_end - train_start) * t})
        recs.append({"step": e * every, "epoch": e / n, "eval/loss": loss, "eval/accuracy": acc})
    return recs


def test_not_converged_when_the_dev_metric_still_rises_at_the_end():
    import yaml

    from nlp_cv_tricks.config import apply_overrides, recipe_from_dict

    # the quick start's own curve: 0.839 → 0.873 → 0.884 at the three evaluations of its one epoch
    recipe = yaml.safe_load((ROOT / "recipes" / "quickstart.yaml").read_text())
    d = diagnose_run(_still_rising([0.839, 0.873, 0.884], [0.37, 0.31, 0.29]), recipe=recipe)
    assert d.regime == "not_converged" and d.onset_step == 300, d.reasons
    assert "still improving at the end: train longer" in d.reasons[0]
    assert d.evidence["accuracy_last_gain"] == pytest.approx(0.884 / 0.873 - 1)
    overrides = [r.override for r in d.remedies if r.available]
    epochs, lr = int(recipe["train"]["epochs"]), float(recipe["train"]["learning_rate"])
    assert overrides[:2] == [f"train.epochs={2 * epochs}", f"train.learning_rate={2 * lr:.3g}"]  # longer AND faster
    sweep = d.remedies[1]
    assert f"lr-sweep RECIPE --start {4 * lr:.3g}" in sweep.note and sweep.vary.startswith("train.learning_rate=")
    for r in d.remedies:
        if r.available:
            recipe_from_dict(apply_overrides(recipe, [r.override]))
    # the long-document case: two evaluations 0.78 → 0.84, loss 1.55 → 0.81, bounded by max_steps
    d = diagnose_run(_still_rising([0.78, 0.84], [1.2, 0.9], train_start=1.55, train_end=0.81),
                     recipe={"train": {"max_steps": 400, "learning_rate": 5e-5}})
    assert d.regime == "not_converged"
    assert [r.override for r in d.remedies][:2] == ["train.max_steps=800", "train.learning_rate=0.0001"]


def test_a_plateau_or_a_single_lucky_evaluation_is_not_not_converged():
    # flat at the end: healthy
    assert diagnose(_still_rising([0.80, 0.85, 0.86, 0.86], [0.5, 0.4, 0.38, 0.38])).regime == "healthy"
    # the last evaluation is a new best by more than the threshold, but the one before was not a best: noise
    d = diagnose(_still_rising([0.80, 0.86, 0.85, 0.87], [0.5, 0.4, 0.41, 0.39]))
    assert d.regime == "healthy" and d.evidence["accuracy_previous_eval_was_best"] is False
    # a gain below the threshold (0.5 % relative) is convergence
    assert diagnose(_still_rising([0.80, 0.85, 0.852, 0.854], [0.5, 0.4, 0.4, 0.4])).regime == "healthy"
    assert diagnose(_still_rising([0.80, 0.85, 0.852, 0.854], [0.5, 0.4, 0.4, 0.4]),
                    Thresholds(improving_gain=0.001)).regime == "not_converged"
    # without a dev metric the dev loss decides (lower is better)
    recs = [{k: v for k, v in r.items() if k != "eval/accuracy"} for r in _still_rising([0, 0, 0], [0.5, 0.4, 0.3])]
    assert diagnose(recs).regime == "not_converged"
