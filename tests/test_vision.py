"""Image classification with timm: data, transforms, models, tricks and a tiny training run on MNIST images."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import timm
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

import nlp_cv_tricks.tasks.image_classification as vt  # noqa: E402
from nlp_cv_tricks.tricks.mixup import MixupCutmix  # noqa: E402
from nlp_cv_tricks.config import recipe_from_dict  # noqa: E402
from nlp_cv_tricks.data.vision import (ImageDataError, build_transforms, check_images, image_collate,  # noqa: E402
                                       load_image_classification, resolve_data_config, set_augmentation_epoch,
                                       with_image_transform)
from nlp_cv_tricks.runner import build_trainer
from nlp_cv_tricks.models.vision import (TimmImageClassifier, create_timm_classifier, freeze_stages,  # noqa: E402
                                         layer_decay_param_groups, load_timm_classifier)

from conftest import shared_data  # noqa: E402
from trick_cases import IMAGE  # noqa: E402

# the first 60 images of each digit of the shared mnist_5k.csv.gz (the rows mnist_small takes from it)
MNIST = Path(__file__).parents[1] / "tests" / "fixtures" / "images" / "mnist_600.csv.gz"
TINY = {"channels": [8, 16, 32, 64], "stem_width": 8}  # resnet10t with few channels
IMAGE_OPTS = {"input_size": 32, "hflip": 0.0, "scale": [0.8, 1.0], "ratio": [0.9, 1.1], "color_jitter": 0.0,
              "mean": 0.5, "std": 0.5, "crop_pct": 1.0}
LABELS10 = [str(i) for i in range(10)]


def _data_cfg(**kw):
    base = dict(train_file=None, dev_file=None, test_file=None, format="auto", hub_name=None, hub_config=None,
                train_split="train", dev_split="validation", label_column="label", label_names=None,
                max_train_samples=None, max_eval_samples=None)
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.fixture(scope="module")
def mnist_small(tmp_path_factory) -> Path:
    """60 images per digit from the MNIST 5k CSV (no header, label last), as a smaller CSV."""
    df = pd.read_csv(MNIST, header=None)
    small = df.groupby(784, group_keys=False).head(60).sample(frac=1.0, random_state=0)
    path = tmp_path_factory.mktemp("mnist") / "mnist_600.csv"
    small.to_csv(path, header=False, index=False)
    return path


def _tiny(labels=LABELS10, seed=0, **kw) -> TimmImageClassifier:
    torch.manual_seed(seed)
    return create_timm_classifier("resnet10t", labels, model_args=TINY, **kw)


# ---- data and transforms ----------------------------------------------------------------------------------
def test_mnist_csv_transform_and_collate_shapes(mnist_small):
    splits = load_image_classification(_data_cfg(train_file=str(mnist_small)), {"dev_fraction": 0.25})
    assert splits.label_names == LABELS10
    assert len(splits.train) == 450 and len(splits.dev) == 150
    # stratified: every digit in the dev split 15 times
    assert np.bincount(np.asarray(splits.dev["labels"]), minlength=10).tolist() == [15] * 10
    model = _tiny()
    cfg = resolve_data_config(model, IMAGE_OPTS)
    assert cfg["input_size"] == (3, 32, 32) and tuple(cfg["mean"]) == (0.5, 0.5, 0.5)
    train = with_image_transform(splits.train, build_transforms(cfg, IMAGE_OPTS, is_training=True))
    dev = with_image_transform(splits.dev, build_transforms(cfg, IMAGE_OPTS, is_training=False))
    batch = image_collate([train[i] for i in range(5)])
    assert batch["pixel_values"].shape == (5, 3, 32, 32) and batch["pixel_values"].dtype == torch.float32
    assert batch["labels"].shape == (5,) and batch["labels"].dtype == torch.long
    # grayscale → RGB: the three channels are equal; normalised with mean/std 0.5 → values in [-1, 1]
    x = image_collate([dev[0]])["pixel_values"][0]
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert x.min() >= -1.0 - 1e-6 and x.max() <= 1.0 + 1e-6 and x.max() > 0.5  # a digit is there
    # evaluation is deterministic, training augmentation is not
    assert torch.equal(dev[3]["pixel_values"], dev[3]["pixel_values"])
    torch.manual_seed(0)
    a = train[3]["pixel_values"]
    assert any(not torch.equal(a, train[3]["pixel_values"]) for _ in range(5))
    # a one-channel model gets one channel
    gray = _tiny(in_chans=1)
    cfg1 = resolve_data_config(gray, {**IMAGE_OPTS, "input_size": 28})
    one = with_image_transform(splits.dev, build_transforms(cfg1, IMAGE_OPTS), in_chans=1)
    assert image_collate([one[0], one[1]])["pixel_values"].shape == (2, 1, 28, 28)


# every random source of the training transform: RandomResizedCrop (Python's random), flips (torch),
# RandAugment (numpy's choice of operations, Python's random for their magnitudes), random erasing (random, torch)
AUGMENT = {**IMAGE_OPTS, "scale": [0.3, 1.0], "ratio": [0.75, 1.33], "hflip": 0.5, "vflip": 0.5,
           "auto_augment": "rand-m9-mstd0.5", "re_prob": 0.5}


def test_train_augmentation_is_a_function_of_seed_epoch_and_example(mnist_small):
    import random

    splits = load_image_classification(_data_cfg(train_file=str(mnist_small)), {"dev_fraction": 0})
    cfg = resolve_data_config(_tiny(), AUGMENT)

    def view(seed, epoch):  # a new dataset instance and a new transform each time
        ds = with_image_transform(splits.train, build_transforms(cfg, AUGMENT, is_training=True), seed=seed)
        assert set_augmentation_epoch(ds, epoch)
        return ds

    rows = [5, 17, 300, 599]
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    before = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    a = torch.stack(view(7, 1)[rows]["pixel_values"])  # one batch
    # fetching draws nothing from the global generators (the data loader fetches a batch ahead of a checkpoint)
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
    assert np.array_equal(np.random.get_state()[1], before[2])
    # another instance, the rows one by one in another order: the same images
    b = view(7, 1)
    assert all(torch.equal(b[i]["pixel_values"], a[rows.index(i)]) for i in reversed(rows))
    # the augmentation index follows the row through select (hard-case mining trains on a subset)
    sub = b.select([599, 17])
    assert torch.equal(sub[0]["pixel_values"], a[3]) and torch.equal(sub[1]["pixel_values"], a[1])
    # another epoch or another run seed: other images, for every row
    for other in (torch.stack(view(7, 2)[rows]["pixel_values"]), torch.stack(view(8, 1)[rows]["pixel_values"])):
        assert all(not torch.equal(other[k], a[k]) for k in range(len(rows)))
    # data-loader worker processes compute the same images
    loader = torch.utils.data.DataLoader(view(7, 1).select(rows), batch_size=2, num_workers=2,
                                         collate_fn=image_collate)
    assert torch.equal(torch.cat([batch["pixel_values"] for batch in loader]), a)
    # evaluation stays deterministic and has no index column
    dev = with_image_transform(splits.train, build_transforms(cfg, AUGMENT, is_training=False))
    assert "augment_index" not in dev.column_names and torch.equal(dev[3]["pixel_values"], dev[3]["pixel_values"])


def test_randaugment_and_random_erasing_are_in_the_train_transform():
    model = _tiny()
    opts = {**IMAGE_OPTS, "auto_augment": "rand-m9-mstd0.5", "re_prob": 0.25}
    names = repr(build_transforms(resolve_data_config(model, opts), opts, is_training=True))
    assert "RandAugment" in names and "RandomErasing" in names
    assert "RandAugment" not in repr(build_transforms(resolve_data_config(model, opts), opts, is_training=False))


def test_lfw_npy_with_label_blocks():
    splits = load_image_classification(_data_cfg(train_file=str(shared_data("images/lfw_subset.npy"))),
                                       {"label_blocks": [["face", 100], ["non-face", 100]], "dev_fraction": 0.2})
    assert splits.label_names == ["face", "non-face"]
    assert len(splits.train) == 160 and len(splits.dev) == 40
    item = splits.train[0]["image"]
    assert np.asarray(item).shape == (25, 25, 1)
    with pytest.raises(ImageDataError, match="200 images"):
        load_image_classification(_data_cfg(train_file=str(shared_data("images/lfw_subset.npy"))),
                                  {"label_blocks": [["face", 100]]})


def test_hymenoptera_placeholder_gif_is_read_as_rgb():
    import datasets
    from PIL import Image

    gif = shared_data("images/hymenoptera/train/ants/imageNotFound.gif")
    ds = datasets.Dataset.from_dict({"image": [str(gif)], "labels": [0]}).cast_column("image", datasets.Image())
    checked, skipped = check_images(ds, "gif")
    assert skipped == [] and len(checked) == 1
    assert Image.open(gif).mode != "RGB"  # palette image: must be converted for an RGB model
    model = _tiny(labels=["ants", "bees"])
    cfg = resolve_data_config(model, {"input_size": 64})
    out = with_image_transform(checked, build_transforms(cfg))[0]["pixel_values"]
    assert out.shape == (3, 64, 64)


def test_unreadable_image_error_names_the_file_and_skip_reports_it(tmp_path):
    from PIL import Image

    for cls in ("ants", "bees"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    bad = tmp_path / "bees" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    cfg = _data_cfg(train_file=str(tmp_path))
    with pytest.raises(ImageDataError, match=r"broken\.jpg.*unreadable image"):
        load_image_classification(cfg, {"dev_fraction": 0.0})
    splits = load_image_classification(cfg, {"dev_fraction": 0.0, "on_error": "skip"})
    assert len(splits.train) == 6 and splits.dev is None
    assert [Path(p).name for p in splits.skipped] == ["broken.jpg"]
    assert splits.label_names == ["ants", "bees"]


def test_csv_with_a_bad_pixel_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    rows = [",".join(["0"] * 16 + ["1"]), ",".join(["0"] * 7 + ["x"] + ["0"] * 8 + ["2"])]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(ImageDataError, match=r"bad\.csv: line 2, pixel column 7: 'x' is not a number"):
        load_image_classification(_data_cfg(train_file=str(path)), {"dev_fraction": 0.0})


# ---- models -----------------------------------------------------------------------------------------------
def test_local_pretrained_file_loads_backbone_and_resets_head(tmp_path):
    from safetensors.torch import save_file

    source = _tiny(seed=1)
    weights = tmp_path / "resnet10t_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in source.timm_model.state_dict().items()}, str(weights))
    torch.manual_seed(2)
    model = create_timm_classifier("resnet10t", ["ants", "bees"], pretrained_file=str(weights), model_args=TINY)
    src, dst = source.timm_model.state_dict(), model.timm_model.state_dict()
    head = {"fc.weight", "fc.bias"}
    for k in src:
        if k not in head:
            assert torch.equal(src[k], dst[k]), k
    assert dst["fc.weight"].shape == (2, 64) and src["fc.weight"].shape == (10, 64)
    assert not torch.allclose(dst["fc.weight"], src["fc.weight"][:2])
    assert model.config.id2label == {0: "ants", 1: "bees"}
    # a saved model directory works as pretrained_file too (its head is reset to the new label set as well)
    source.save_pretrained(tmp_path / "saved")
    again = create_timm_classifier("resnet10t", ["a", "b", "c"], pretrained_file=str(tmp_path / "saved"))
    assert torch.equal(again.timm_model.state_dict()["conv1.0.weight"], src["conv1.0.weight"])
    assert again.timm_model.fc.out_features == 3
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_timm_classifier("resnet10t", ["a"], pretrained_file=str(tmp_path / "missing.safetensors"))


def test_save_load_round_trip_timm_and_transformers(tmp_path):
    from transformers import AutoModelForImageClassification

    model = _tiny(labels=[f"digit-{i}" for i in range(10)]).eval()
    model.set_data_config(resolve_data_config(model, IMAGE_OPTS))
    out = tmp_path / "model"
    model.save_pretrained(out)
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architecture"] == "resnet10t" and cfg["num_classes"] == 10
    assert cfg["label_names"][3] == "digit-3" and cfg["model_args"]["channels"] == [8, 16, 32, 64]
    assert cfg["pretrained_cfg"]["input_size"] == [3, 32, 32] and cfg["pretrained_cfg"]["mean"] == [0.5] * 3
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(pixel_values=x).logits
        by_timm = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
        assert torch.allclose(by_timm(x), expected, atol=1e-6)
        ours = load_timm_classifier(str(out)).eval()
        assert torch.allclose(ours(pixel_values=x).logits, expected, atol=1e-6)
        assert ours.config.id2label[3] == "digit-3"
        assert resolve_data_config(ours)["input_size"] == (3, 32, 32)
        auto = AutoModelForImageClassification.from_pretrained(out).eval()
        assert torch.allclose(auto(pixel_values=x).logits, expected, atol=1e-6)


def test_layer_decay_sets_different_learning_rates_per_group():
    from transformers import get_scheduler

    model = _tiny()
    model.layer_decay = 0.5
    groups = model.optimizer_param_groups(weight_decay=0.05, lr=1e-3)
    lrs = sorted({g["lr"] for g in groups})
    assert len(lrs) >= 5  # stem, 4 stages, head
    assert max(lrs) == pytest.approx(1e-3) and min(lrs) < 1e-3 * 0.5 ** 3
    by_param = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert by_param[id(model.timm_model.fc.weight)] == pytest.approx(1e-3)
    assert by_param[id(model.timm_model.conv1[0].weight)] == pytest.approx(min(lrs))
    assert by_param[id(model.timm_model.layer3[0].conv1.weight)] < by_param[id(model.timm_model.layer4[0].conv1.weight)]
    # no weight decay on biases / norms
    assert all(g["weight_decay"] == 0.0 for g in groups if any(p.ndim <= 1 for p in g["params"]))
    # the optimizer and transformers' scheduler keep the per-group rates (the scheduler scales each group)
    initial = [g["lr"] for g in groups]
    opt = torch.optim.AdamW(groups, lr=1e-3)
    sched = get_scheduler("linear", opt, num_warmup_steps=0, num_training_steps=10)
    opt.step()
    sched.step()
    after = [g["lr"] for g in opt.param_groups]
    assert after == pytest.approx([lr * 0.9 for lr in initial])
    # without layer decay: one learning rate
    model.layer_decay = None
    assert {g["lr"] for g in model.optimizer_param_groups(0.05, 1e-3)} == {1e-3}
    assert {g["lr"] for g in layer_decay_param_groups(model, 0.0, 2e-3, 0.8)} != {2e-3}


def test_layer_decay_reaches_the_trainer_optimizer_or_is_refused(mnist_small, tmp_path):
    """Layer decay is never silently dropped: either the trainer's optimizer uses the model's groups, or the
    builder refuses the recipe with a clear error."""
    from nlp_cv_tricks.engine.trainer import build_optimizer
    from nlp_cv_tricks.runner import build_trainer

    recipe = _recipe(mnist_small, tmp_path, max_steps=1, layer_decay=0.5)
    model = _tiny()
    model.layer_decay = 0.5
    cfg = recipe.train
    honoured = len({g["lr"] for g in build_optimizer(model, cfg).param_groups}) > 1
    if honoured:
        trainer = build_trainer(recipe)
        trainer.fit()
        assert len({round(g["lr"], 12) for g in trainer.optimizer.param_groups}) >= 5
    else:
        with pytest.raises(NotImplementedError, match="layer_decay"):
            build_trainer(recipe)


def test_freeze_stages_freezes_stem_and_first_stages():
    model = _tiny()
    frozen = freeze_stages(model, 2)
    assert "conv1.0.weight" in frozen and any(n.startswith("layer1.") for n in frozen)
    params = dict(model.timm_model.named_parameters())
    assert not params["conv1.0.weight"].requires_grad and not params["layer1.0.conv1.weight"].requires_grad
    assert params["layer2.0.conv1.weight"].requires_grad and params["fc.weight"].requires_grad
    assert type(model.timm_model.layer1[0].bn1).__name__ == "FrozenBatchNorm2d"
    assert type(model.timm_model.layer2[0].bn1).__name__ == "BatchNorm2d"
    with pytest.raises(ValueError, match="freezable blocks"):
        freeze_stages(_tiny(), 6)


def test_gradient_checkpointing_gives_the_same_gradients():
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    grads = []
    for ckpt in (False, True):
        model = _tiny(seed=3).train()
        model.timm_model.set_grad_checkpointing(ckpt)
        torch.nn.functional.cross_entropy(model(pixel_values=x).logits, y).backward()
        grads.append(model.timm_model.conv1[0].weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


# ---- tricks -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [8, 7])
def test_mixup_targets_sum_to_one(n):
    torch.manual_seed(0)
    trick = MixupCutmix(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=10)
    x, y = torch.randn(n, 3, 16, 16), torch.arange(n) % 10
    original = x.clone()
    seen_mixed = False
    for _ in range(4):
        xm, t = trick.mix(x, y)
        assert xm.shape == x.shape and t.shape == (n, 10)
        assert torch.allclose(t.sum(1), torch.ones(n), atol=1e-6)
        assert (t >= 0).all()
        seen_mixed |= not torch.equal(xm, x)
    assert seen_mixed
    # the input batch is not modified in place; the loss is soft-target cross-entropy
    assert torch.equal(x, original)
    logits = torch.randn(n, 10)
    manual = -(t * torch.log_softmax(logits, -1)).sum(-1).mean()
    assert trick.loss_fn(logits, t, None) == pytest.approx(float(manual), rel=1e-5)


def test_image_task_soft_target_loss():
    task = vt.ImageClassificationTask(LABELS10)
    logits = torch.randn(3, 10)
    hard = torch.tensor([1, 2, 3])
    out = SimpleNamespace(logits=logits)
    soft = torch.nn.functional.one_hot(hard, 10).float()
    assert task.default_loss(out, {"labels": soft}) == pytest.approx(float(task.default_loss(out, {"labels": hard})))


# ---- training through the Trainer -------------------------------------------------------------------------
def _recipe(csv: Path, tmp_path: Path, tricks=(), max_steps=None, layer_decay=None, epochs=4):
    kwargs = {"model_args": TINY, "image": IMAGE_OPTS}
    if layer_decay is not None:
        kwargs["layer_decay"] = layer_decay
    return recipe_from_dict({
        "name": "mnist_tiny", "task": "image-classification",
        "data": {"train_file": str(csv), "max_train_samples": 400},
        "model": {"name": "resnet10t", "kwargs": kwargs},
        "train": {"seed": 0, "epochs": epochs, "max_steps": max_steps, "batch_size": 32, "eval_batch_size": 100,
                  "learning_rate": 1e-2, "lr_scheduler": "cosine", "warmup_ratio": 0.1, "progress_bar": False},
        "tricks": list(tricks),
        "output": {"dir": str(tmp_path / "run"), "report_to": "none"},
    })


def test_tiny_mnist_training_is_clearly_above_chance_and_saves_a_timm_model(mnist_small, tmp_path):
    recipe = _recipe(mnist_small, tmp_path, tricks=[{"ema": {"decay": 0.9}}])
    trainer = build_trainer(recipe)
    assert isinstance(trainer.task, vt.ImageClassificationTask) and len(trainer.eval_dataset) == 120
    result = trainer.fit()
    acc = result.metrics["eval/accuracy"]
    print(f"tiny MNIST run: eval accuracy {acc:.3f}")
    assert acc > 0.5, acc  # chance is 0.1
    assert "eval_ema/accuracy" in result.metrics
    saved = Path(result.model_dir)
    assert (saved / "model.safetensors").is_file() and (saved / "recipe.yaml").is_file()
    loaded = load_timm_classifier(str(saved)).eval()
    assert loaded.config.id2label == dict(enumerate(LABELS10))
    # the reloaded model scores the dev set as the trainer did at the best step
    batch = image_collate([trainer.eval_dataset[i] for i in range(len(trainer.eval_dataset))])
    with torch.no_grad():
        pred = loaded(pixel_values=batch["pixel_values"]).logits.argmax(-1)
    best = json.loads((saved / "eval_metrics.json").read_text())["eval/accuracy"]
    assert float((pred == batch["labels"]).float().mean()) == pytest.approx(best, abs=1e-6)
    # eval / predict from the command line read images as the recipe did (pixel CSV, its options)
    from nlp_cv_tricks.cli import main

    out = tmp_path / "m.json"
    assert main(["eval", str(tmp_path / "run"), "--data", str(mnist_small), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["n"] == 600 and m["accuracy"] > 0.5
    pred_path = tmp_path / "p.jsonl"
    assert main(["predict", str(saved), "--data", str(mnist_small), "--out", str(pred_path)]) == 0
    rows = [json.loads(line) for line in pred_path.read_text().splitlines()]
    assert len(rows) == 600 and rows[0]["image"] == f"{mnist_small}:1" and rows[0]["row"] == 1
    assert sum(r["pred_label"] == r["label"] for r in rows) / 600 == pytest.approx(m["accuracy"])
    assert sum(rows[0][f"prob/{n}"] for n in LABELS10) == pytest.approx(1.0, abs=1e-4)


def test_mixup_num_classes_must_match_the_data(mnist_small, tmp_path):
    recipe = _recipe(mnist_small, tmp_path, tricks=[{"mixup": {"num_classes": 5}}], max_steps=1)
    with pytest.raises(ValueError, match="mixup.num_classes=5 but the data has 10 labels"):
        build_trainer(recipe).fit()


def test_mixup_trick_runs_through_the_trainer(mnist_small, tmp_path):
    recipe = _recipe(mnist_small, tmp_path, tricks=[{"mixup": {"mixup_alpha": 0.4, "cutmix_alpha": 1.0}}],
                     max_steps=3)
    trainer = build_trainer(recipe)
    seen = []
    original = trainer.criterion

    def spy(outputs, batch, step=None):
        seen.append(batch["labels"])
        return original(outputs, batch, step)

    trainer.criterion = spy
    result = trainer.fit()
    assert result.global_step == 3 and len(seen) == 3
    assert all(t.is_floating_point() and torch.allclose(t.sum(1), torch.ones(len(t))) for t in seen)
    history = [json.loads(ln) for ln in (Path(result.output_dir) / "history.jsonl").read_text().splitlines()]
    assert any(np.isfinite(h.get("train/loss", np.nan)) for h in history)


def test_pixel_fgsm_and_label_smoothing_run_on_images(mnist_small, tmp_path):
    recipe = _recipe(mnist_small, tmp_path, tricks=[{"pixel_fgsm": {"epsilon": 0.05}},
                                                    {"label_smoothing": {"epsilon": 0.1}}], max_steps=2)
    result = build_trainer(recipe).fit()
    history = [json.loads(ln) for ln in (Path(result.output_dir) / "history.jsonl").read_text().splitlines()]
    logged = [h for h in history if "train/adv_loss" in h]
    assert result.global_step == 2 and logged and np.isfinite(logged[-1]["train/adv_loss"])


def test_ema_use_for_eval_selects_and_saves_the_ema_weights(mnist_small, tmp_path):
    from safetensors.torch import load_file

    from nlp_cv_tricks.tricks.ema import ModelEma

    recipe = _recipe(mnist_small, tmp_path, tricks=[{"ema": {"decay": 0.5, "use_for_eval": True}}], max_steps=3)
    trainer = build_trainer(recipe)
    result = trainer.fit()
    ema = next(t for t in trainer.tricks if isinstance(t, ModelEma))
    assert "eval_raw/accuracy" in result.metrics and "eval/accuracy" in result.metrics
    saved = load_file(str(Path(result.model_dir) / "model.safetensors"))
    reference = ema.ema.module.timm_model.state_dict()
    assert all(torch.equal(saved[k], reference[k]) for k in saved)
    final = trainer.accelerator.unwrap_model(trainer.model).timm_model.state_dict()
    assert all(torch.equal(saved[k], final[k]) for k in saved)  # at the end the model holds the EMA weights
    assert result.metrics["eval/accuracy"] != result.metrics["eval_raw/accuracy"] or \
        result.metrics["eval/loss"] != result.metrics["eval_raw/loss"]
    with pytest.raises(ValueError, match="save_steps"):
        r2 = _recipe(mnist_small, tmp_path / "b", tricks=[{"ema": {"use_for_eval": True}}], max_steps=1)
        r2.train.save_steps = 1
        build_trainer(r2).fit()


def test_vision_recipes_load():
    from nlp_cv_tricks.config import load_recipe

    recipes = sorted((Path(__file__).parents[1] / "recipes").glob("vision_*.yaml"))
    assert len(recipes) >= 3
    for path in recipes:
        r = load_recipe(path)
        assert r.task == "image-classification"
        opts = vt.ImageOptions.from_recipe(r)
        assert opts.image == ({**r.model.kwargs, **r.task_options}.get("image") or {})  # either spelling
        assert opts.model_args == (r.model.kwargs.get("model_args") or {})


def test_image_options_are_typed_and_checked():
    opts = vt.ImageOptions.from_kwargs({"drop_path_rate": 0.1, "freeze_stages": 2, "layer_decay": None,
                                        "image": {"input_size": 32, "on_error": "skip"}})
    assert (opts.drop_path_rate, opts.freeze_stages, opts.layer_decay, opts.pretrained) == (0.1, 2, None, False)
    assert opts.image == {"input_size": 32, "on_error": "skip"}
    assert vt.ImageOptions.from_kwargs(None) == vt.ImageOptions()
    for kwargs, expected in [
        ({"freeze_stages": -1}, "model.kwargs.freeze_stages=-1; expected an integer >= 0"),
        ({"freeze_stages": "2"}, "model.kwargs.freeze_stages='2'"),
        ({"drop_path_rate": 1.5}, "model.kwargs.drop_path_rate=1.5; expected a number in [0, 1)"),
        ({"layer_decay": 0}, "model.kwargs.layer_decay=0"),
        ({"pretrained": "yes"}, "model.kwargs.pretrained='yes'; expected true or false"),
        ({"model_args": [16, 32]}, "model.kwargs.model_args=[16, 32]"),
        ({"image": {"on_error": "ignore"}}, "model.kwargs.image.on_error='ignore'; expected one of ['error', 'skip']"),
        ({"image": {"dev_fraction": 1.0}}, "model.kwargs.image.dev_fraction=1.0"),
        ({"image": {"hflips": 0.5}}, "did you mean 'hflip'"),
    ]:
        with pytest.raises(ValueError) as e:
            vt.ImageOptions.from_kwargs(kwargs, "recipes/x.yaml: ")
        assert str(e.value).startswith("recipes/x.yaml: model.kwargs") and expected in str(e.value), str(e.value)


def test_unknown_vision_option_is_an_error(mnist_small, tmp_path):
    recipe = _recipe(mnist_small, tmp_path)
    recipe.model.kwargs["image"] = {**IMAGE_OPTS, "hflips": 0.5}
    with pytest.raises(ValueError, match="did you mean 'hflip'"):
        build_trainer(recipe)


def test_core_dev_fraction_and_split_seed_are_honoured():
    from nlp_cv_tricks.config import DataConfig

    opts = {"label_blocks": [["face", 100], ["non-face", 100]]}
    lfw = str(shared_data("images/lfw_subset.npy"))
    a = load_image_classification(DataConfig(train_file=lfw, dev_fraction=0.3, split_seed=7), opts)
    assert (len(a.train), len(a.dev)) == (140, 60)
    assert sorted(np.bincount(a.dev["labels"]).tolist()) == [30, 30]  # stratified
    b = load_image_classification(DataConfig(train_file=lfw, split_seed=7), {**opts, "dev_fraction": 0.3})
    c = load_image_classification(DataConfig(train_file=lfw, split_seed=8), {**opts, "dev_fraction": 0.3})
    first = np.asarray(a.dev[:5]["image"], dtype=np.uint8)
    assert np.array_equal(first, np.asarray(b.dev[:5]["image"], dtype=np.uint8))  # same seed, same split
    assert not np.array_equal(first, np.asarray(c.dev[:5]["image"], dtype=np.uint8))
    default = load_image_classification(DataConfig(train_file=lfw), opts)
    assert len(default.dev) == 40  # 0.2 when neither is set
    with pytest.raises(ImageDataError, match="disagree"):
        load_image_classification(DataConfig(train_file=lfw, dev_fraction=0.3), {**opts, "dev_fraction": 0.2})


@pytest.mark.parametrize("section,key,expected", [
    ("model.kwargs.image", "hflips", "did you mean 'hflip' (model.kwargs.image.hflip)?"),
    ("model.kwargs.image", "drop_path", "did you mean model.kwargs.drop_path_rate?"),
    ("model.kwargs.image", "drop_rate", "it belongs under model.kwargs (model.kwargs.drop_rate)"),
    ("model.kwargs", "input_size", "it belongs under model.kwargs.image (model.kwargs.image.input_size)"),
    ("model.kwargs", "autoaugment", "did you mean model.kwargs.image.auto_augment?"),
    ("model.kwargs", "batch_size", "it is a recipe key of its own: train.batch_size"),
])
def test_unknown_vision_key_names_the_nearest_valid_key(section, key, expected):
    valid = vt.IMAGE_KWARGS if section.endswith("image") else vt.MODEL_KWARGS
    with pytest.raises(ValueError) as e:
        vt._check_keys({key: 1}, valid, section, "recipes/x.yaml: ")
    msg = str(e.value)
    assert msg.startswith(f"recipes/x.yaml: {section}: unknown option {key!r}") and expected in msg


@pytest.mark.slow
@pytest.mark.parametrize("name", ["plain", *sorted(IMAGE)])
def test_image_tricks_resume_exactly(mnist_small, tmp_path, name):
    """Killed after a checkpoint and resumed: the same weights and history as the run that never stopped, for
    every image-only trick of the table (tests/trick_cases.py; the text tricks: tests/test_trainer.py), with
    random crops and flips, and PGD with its random start. The data loader fetches a batch ahead of the step a
    checkpoint is taken at; the augmentation of an example depends only on (seed, epoch, example), so the
    resumed run sees the same images and draws the same random numbers. ``plain`` (no trick) resumes in the
    second epoch, whose augmentation differs from the first's."""
    import dataclasses

    from safetensors.torch import load_file
    from test_trainer import _Kill

    tricks = IMAGE.get(name, [])
    if name == "pixel_pgd":
        tricks = [{"pixel_pgd": {**tricks[0]["pixel_pgd"], "random_start": True}}]
    steps, save, kill = (14, 11, 13) if name == "plain" else (6, 3, 5)  # 10 batches an epoch

    def run(out, kill=None, resume=None):
        r = _recipe(mnist_small, tmp_path / out, tricks=tricks, max_steps=steps)
        augment = {**r.model.kwargs, "image": {**IMAGE_OPTS, "scale": [0.5, 1.0], "hflip": 0.5}}
        r = dataclasses.replace(r, model=dataclasses.replace(r.model, kwargs=augment),
                                train=dataclasses.replace(r.train, save_steps=save, save_total_limit=None,
                                                          eval_steps=2, eval_each_epoch=False, logging_steps=1,
                                                          resume_from=resume),
                                output=dataclasses.replace(r.output, save_best=False, report=False))
        t = build_trainer(r)
        if kill is not None:
            t.tricks.append(_Kill(at=kill))
        return t, t.fit()

    t, _ = run("full")
    if name == "plain":  # the trainer told the augmentation the epoch
        assert t.train_dataset.format["format_kwargs"]["transform"].epoch == 1
    with pytest.raises(KeyboardInterrupt):
        run("cut", kill=kill)
    assert run("cut", resume="latest")[1].global_step == steps
    a, b = (load_file(str(tmp_path / d / "run" / "final" / "model.safetensors")) for d in ("full", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name  # bit-identical
    rows = [[{k: v for k, v in json.loads(ln).items() if k != "train/seconds"}
             for ln in (tmp_path / d / "run" / "history.jsonl").read_text().splitlines()] for d in ("full", "cut")]
    assert rows[0] == rows[1], name


# a training run that writes (epoch, label, hash of the pixels) of every training image its process sees
_SEEN_SCRIPT = """
import hashlib, json, sys
from nlp_cv_tricks.config import load_recipe
from nlp_cv_tricks.engine.events import Trick
from nlp_cv_tricks.runner import build_trainer


class Seen(Trick):
    rows = []

    def on_micro_batch(self, state, view):
        for x, y in zip(view.batch["pixel_values"], view.batch["labels"]):
            self.rows.append([int(state.epoch), int(y), hashlib.md5(x.cpu().numpy().tobytes()).hexdigest()])


t = build_trainer(load_recipe(sys.argv[1]))
t.tricks.append(Seen())
t.fit()
with open(sys.argv[2] + f"_{t.accelerator.process_index}.json", "w") as f:
    json.dump(Seen.rows, f)
"""


@pytest.mark.slow
def test_ddp_processes_see_the_augmented_images_of_one_process(mnist_small, tmp_path):
    """Two DDP processes (16 images each) see, over two epochs, the random crops and flips one process of 32
    sees: an example's augmentation depends on (seed, epoch, example), not on the process reading it."""
    import subprocess
    import sys

    from conftest import ROOT
    from nlp_cv_tricks.config import save_recipe

    script = tmp_path / "seen.py"
    script.write_text(_SEEN_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    seen = {}
    for name, batch, launch in (("single", 32, [sys.executable]),
                                ("ddp", 16, [str(Path(sys.executable).with_name("accelerate")), "launch",
                                             "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                                             "--mixed_precision", "no", "--dynamo_backend", "no",
                                             "--main_process_port", "29547"])):
        r = _recipe(mnist_small, tmp_path / name, epochs=2)
        r.model.kwargs["image"] = {**IMAGE_OPTS, "scale": [0.5, 1.0], "hflip": 0.5}
        r.train.batch_size, r.train.eval_each_epoch, r.output.save_best = batch, False, False
        save_recipe(r, tmp_path / f"{name}.yaml")
        proc = subprocess.run([*launch, str(script), str(tmp_path / f"{name}.yaml"), str(tmp_path / name)],
                              capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        seen[name] = [tuple(row) for f in sorted(tmp_path.glob(f"{name}_*.json")) for row in json.loads(f.read_text())]
    single, ddp = seen["single"], seen["ddp"]
    assert len(single) == 800 and len({h for _, _, h in single}) == 800  # 400 images, 2 epochs, no two alike
    # DDP pads its last global batch with the first examples again (even batches): the same images, repeated
    assert set(ddp) == set(single) and len(ddp) == 832


def test_ema_resumes_after_the_run_directory_moved(mnist_small, tmp_path):
    import dataclasses
    import shutil

    r = _recipe(mnist_small, tmp_path, tricks=[{"ema": {"decay": 0.9}}], max_steps=4)
    r.train.save_steps, r.train.eval_each_epoch = 2, False
    build_trainer(r).fit()
    state = json.loads((tmp_path / "run" / "checkpoints" / "step_4" / "trainer_state.json").read_text())
    assert state["tricks"][0]["state"] == {"file": "ema.safetensors"}  # relative to its checkpoint
    shutil.move(str(tmp_path / "run"), str(tmp_path / "moved"))
    r2 = dataclasses.replace(r, train=dataclasses.replace(r.train, max_steps=6, resume_from="latest"),
                             output=dataclasses.replace(r.output, dir=str(tmp_path / "moved")))
    trainer = build_trainer(r2)
    assert trainer.fit().global_step == 6 and trainer.tricks[0].ema is not None
