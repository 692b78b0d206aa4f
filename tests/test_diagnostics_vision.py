"""The diagnostics on image models (issue 9): inspect, plot-embeddings and diagnose on a timm classifier saved by
the trainer, probe-cls refused with a clear error, image-aware remedies.

One tiny timm ResNet (resnet10t with 8/8/16/16 channels, 16x16 input) is trained for 3 epochs on 48 MNIST digits
(dev: 40) by the real trainer in a module fixture; every test reads that run directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

from nlp_cv_tricks.diagnostics import DiagnosticsError  # noqa: E402
from nlp_cv_tricks.cli.diagnostics import main as diag_main  # noqa: E402
from nlp_cv_tricks.diagnostics.doctor import Diagnosis, diagnose_run, prescribe  # noqa: E402

from conftest import shared_data  # noqa: E402

MNIST = Path(__file__).parents[1] / "tests" / "fixtures" / "images" / "mnist_600.csv.gz"  # 60 per digit
TINY = {"channels": [8, 8, 16, 16], "stem_width": 8}
IMAGE = {"input_size": 16, "mean": 0.5, "std": 0.5, "crop_pct": 1.0, "hflip": 0.0, "scale": [0.9, 1.0]}


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    from nlp_cv_tricks.config import recipe_from_dict
    from nlp_cv_tricks.runner import build_trainer

    out = tmp_path_factory.mktemp("image_run") / "run"
    recipe = recipe_from_dict({
        "name": "tiny_mnist", "task": "image-classification",
        "data": {"train_file": str(MNIST), "max_train_samples": 48, "max_eval_samples": 40},
        "model": {"name": "resnet10t", "kwargs": {"model_args": TINY, "image": IMAGE}},
        "train": {"seed": 0, "epochs": 3, "batch_size": 16, "learning_rate": 3e-3, "progress_bar": False,
                  "logging_steps": 1},
        "output": {"dir": str(out), "report_to": "none"},
    })
    build_trainer(recipe).fit()
    return out


def _json_out(capsys) -> dict:
    text = capsys.readouterr().out
    return json.loads(text[text.index("{"):])


def test_saved_image_model_is_recognised_and_loss_with_labels_is_cross_entropy(image_run, tmp_path):
    from nlp_cv_tricks.diagnostics.images import is_image_model_dir, load_image_model

    assert is_image_model_dir(image_run) and is_image_model_dir(image_run / "best")
    assert not is_image_model_dir(image_run / "nothing here")
    # a run without model selection (no dev evaluation) keeps final/ instead of best/
    from nlp_cv_tricks.diagnostics.probes import resolve_model_path
    import shutil

    no_best = tmp_path / "run_without_best"
    shutil.copytree(image_run / "best", no_best / "final")
    assert resolve_model_path(no_best) == str(no_best / "final") and is_image_model_dir(no_best)
    model = load_image_model(image_run / "best")
    x = torch.randn(4, 3, 16, 16)
    y = torch.tensor([0, 3, 7, 9])
    out = model(pixel_values=x, labels=y)  # transformers' loss for the wrapper: not the causal-LM fallback
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, y), atol=1e-6)


def test_inspect_image_run_uses_its_dev_split_and_labels(image_run, tmp_path):
    out = tmp_path / "diag"
    assert diag_main(["inspect", str(image_run), "--n", "8", "--out", str(out)]) == 0
    report = json.loads((out / "layer_report.json").read_text())
    assert (out / "layer_report.png").stat().st_size > 1000
    assert report["model_class"] == "TimmImageClassifier"
    assert report["batch"]["pixel_values"] == [8, 3, 16, 16]
    assert report["sample"].startswith("8 of the 40 dev images of run")
    assert report["gradients"]["label_source"] == "labels"
    layers = report["layers"]
    assert {"fc", "layer1.0", "layer4.0"} <= set(layers) and "timm_model" not in layers
    assert all(v > 0 for v in report["gradients"]["per_layer"].values())
    relus = [a for a in report["activations"]["modules"] if "dead_fraction" in a]
    assert len(relus) >= 8  # the ReLUs of the stem and of each block
    # every conv of a ResNet is followed by BatchNorm: the raw conv sign is no dead-unit evidence there
    convs = [a for a in report["activations"]["modules"] if a["type"] == "Conv2d"]
    assert convs and all(a.get("followed_by_norm") for a in convs)
    assert not any("never positive" in f["what"] for f in report["flags"])


def test_inspect_image_model_on_other_data_with_image_options(image_run, tmp_path, capsys):
    out = tmp_path / "lfw"
    LFW = shared_data("images/lfw_subset.npy")
    rc = diag_main(["inspect", str(image_run / "best"), "--data", str(LFW), "--image-option",
                    "label_blocks=[[face, 100], [non-face, 100]]", "--n", "6", "--out", str(out), "--no-grad"])
    assert rc == 0
    report = json.loads((out / "layer_report.json").read_text())
    assert report["batch"]["pixel_values"] == [6, 3, 16, 16]  # 25x25 grayscale → the model's 3x16x16
    assert "not the model's" in report["sample"] and "gradients" not in report
    # without its labels the .npy array is refused with the option to set
    rc = diag_main(["inspect", str(image_run / "best"), "--data", str(LFW), "--out", str(tmp_path / "x")])
    assert rc == 2 and "label_blocks" in capsys.readouterr().err
    rc = diag_main(["inspect", str(image_run / "best"), "--data", str(LFW), "--image-option", "label_block=[[a,200]]",
                    "--out", str(tmp_path / "y")])
    assert rc == 2 and "did you mean 'label_blocks'" in capsys.readouterr().err


def test_image_features_are_what_the_classifier_reads(image_run):
    from nlp_cv_tricks.data.vision import load_image_classification
    from nlp_cv_tricks.diagnostics.images import image_features, load_image_model, n_feature_layers
    from nlp_cv_tricks.tasks.image_classification import eval_view

    model = load_image_model(image_run / "best")
    from nlp_cv_tricks.config import DataConfig

    LFW = shared_data("images/lfw_subset.npy")
    ds = load_image_classification(DataConfig(train_file=str(LFW)), {"label_blocks": [["face", 100], ["non-face", 100]],
                                                                      "dev_fraction": 0}).train
    idx = [0, 5, 150, 199]
    feats = image_features(model, ds, idx)
    x = torch.stack([torch.as_tensor(e["pixel_values"]) for e in eval_view(model, ds, idx)])
    inner = model.timm_model
    with torch.no_grad():
        logits = model(pixel_values=x).logits
    assert feats.shape == (4, inner.num_features)
    assert torch.allclose(inner.get_classifier()(torch.from_numpy(feats)), logits, atol=1e-5)
    n = n_feature_layers(model)
    assert n == len(inner.feature_info) + 1
    stage = image_features(model, ds, idx, layer=2, pooling="max")
    assert stage.shape == (4, inner.feature_info[2]["num_chs"])
    with torch.no_grad():
        fmap = inner.forward_intermediates(x, indices=[2], intermediates_only=True)[-1]
    np.testing.assert_allclose(stage, fmap.amax(dim=(2, 3)).numpy(), atol=1e-5)
    with pytest.raises(DiagnosticsError, match="layers 0"):
        image_features(model, ds, idx, layer=n)


def test_plot_embeddings_of_an_image_run(image_run, tmp_path, capsys):
    png = tmp_path / "emb.png"
    rc = diag_main(["plot-embeddings", str(image_run), "--out", str(png), "--per-class", "3", "--perplexity", "5"])
    assert rc == 0 and png.stat().st_size > 1000
    info = _json_out(capsys)
    assert info["features"] == "penultimate features"
    assert info["n_points"] == 30 and len(info["classes"]) == 10  # 3 per digit of the 40-image dev split
    assert info["input_dims"] == 16
    rc = diag_main(["plot-embeddings", str(image_run), "--out", str(png), "--per-class", "3"])
    assert rc == 2 and "already exists" in capsys.readouterr().err  # never overwrites silently
    rc = diag_main(["plot-embeddings", str(image_run), "--out", str(tmp_path / "s.png"), "--layer", "1",
                    "--pooling", "cls"])
    assert rc == 2 and "'mean' or 'max'" in capsys.readouterr().err


def test_probe_cls_says_it_is_text_only(image_run, capsys):
    rc = diag_main(["probe-cls", str(image_run), "--data", str(shared_data("images/hymenoptera/val"))])
    err = capsys.readouterr().err
    assert rc == 2
    assert "timm image model" in err and "[CLS]" in err and "plot-embeddings" in err


def test_diagnose_image_run_and_image_remedies(image_run, tmp_path):
    diag = diagnose_run(image_run)
    assert diag.regime in ("healthy", "not_converged", "underfitting", "overfitting", "not_converging", "diverging")
    assert diag_main(["diagnose", str(image_run), "--json", str(tmp_path / "d.json")]) == 0
    recipe = {"task": "image-classification",
              "model": {"name": "resnet10t", "kwargs": {"model_args": TINY, "image": IMAGE}},
              "train": {"epochs": 5, "learning_rate": 3e-3, "weight_decay": 0.05}, "tricks": []}
    over = prescribe(Diagnosis("overfitting", 300, {"onset_epoch": 2.5}, {}), recipe)
    runnable = {r.override for r in over if r.available}
    assert {"model.kwargs.drop_rate=0.2", "model.kwargs.drop_path_rate=0.1",
            "task_options.image.auto_augment=rand-m9-mstd0.5", "task_options.image.re_prob=0.25",
            "tricks+=mixup", "tricks+=label_smoothing", "train.epochs=3"} <= runnable
    assert not any("embedding" in r.why or "rdrop" in str(r.override) for r in over)  # text-only remedies
    under = prescribe(Diagnosis("underfitting", None, {}, {}), recipe)
    runnable = {r.override for r in under if r.available}
    assert {"model.kwargs.model_args.channels=[16,16,32,32]", "model.kwargs.model_args.layers=[2,2,2,2]",
            "train.epochs=10"} <= runnable
    # the overrides really build: a wider, deeper tiny ResNet
    from nlp_cv_tricks.config import apply_overrides
    from nlp_cv_tricks.models.vision import create_timm_classifier

    applied = apply_overrides(recipe, ["model.kwargs.model_args.channels=[16,16,32,32]",
                                       "model.kwargs.model_args.layers=[2,2,2,2]"])
    m = create_timm_classifier("resnet10t", ["a", "b"], model_args=applied["model"]["kwargs"]["model_args"])
    assert len(m.timm_model.layer1) == 2 and m.timm_model.layer4[0].conv1.out_channels == 32
