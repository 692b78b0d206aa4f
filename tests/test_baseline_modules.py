"""The text baselines as plain ``nn.Module``s (``models/text_baselines/modules.py``): the same network as the
``PreTrainedModel`` classes, saved as the same files, and a recipe training that never imports
``transformers.modeling_utils``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nlp_cv_tricks.models.text_baselines import build_baseline

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["the movie was good", "awful plot really", "a very nice film and a great story", "sad"] * 3
LABELS = torch.tensor([1, 0, 1, 0] * 3)


def _pair(name: str, kwargs: dict):
    torch.manual_seed(0)
    module, tok = build_baseline(name, kwargs, {"level": "word", "max_length": 32}, TEXTS, {0: "neg", 1: "pos"},
                                 pretrained_model=False)
    torch.manual_seed(0)
    pretrained, _ = build_baseline(name, kwargs, {"level": "word", "max_length": 32}, TEXTS, {0: "neg", 1: "pos"})
    return module, pretrained, tok


@pytest.mark.parametrize("name", ["textcnn", "fasttext", "dpcnn", "textrnn", "textrnn_att", "textrcnn"])
@pytest.mark.parametrize("kwargs", [{"embedding_dim": 16, "norm": "batch"},
                                    {"embedding_dim": 16, "init": "kaiming", "norm": "layer", "dropout": 0.0}])
def test_module_twin_has_the_pretrained_models_weights_outputs_and_saved_files(name, kwargs, tmp_path):
    from safetensors.torch import load_file
    from transformers import PreTrainedModel

    module, pretrained, tok = _pair(name, kwargs)
    assert not isinstance(module, PreTrainedModel) and isinstance(pretrained, PreTrainedModel)
    a, b = module.state_dict(), pretrained.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)  # same seed, same init draws
    enc = tok(TEXTS, return_tensors="pt", padding=True)
    module.train()
    pretrained.train()
    torch.manual_seed(1)
    out_a = module(**enc, labels=LABELS)
    torch.manual_seed(1)
    out_b = pretrained(**enc, labels=LABELS)
    assert torch.equal(out_a.logits, out_b.logits) and torch.equal(out_a.loss, out_b.loss)

    module.save_pretrained(tmp_path / "module")
    pretrained.save_pretrained(tmp_path / "pretrained")
    files = sorted(p.name for p in (tmp_path / "module").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "pretrained").iterdir())
    for f in files:
        if f.endswith(".py"):
            assert (tmp_path / "module" / f).read_bytes() == (tmp_path / "pretrained" / f).read_bytes()
    assert (json.loads((tmp_path / "module" / "config.json").read_text())
            == json.loads((tmp_path / "pretrained" / "config.json").read_text()))
    wa, wb = load_file(tmp_path / "module" / "model.safetensors"), load_file(tmp_path / "pretrained" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_module_loads_back_as_the_pretrained_model_and_converts_in_memory(tmp_path):
    from transformers import AutoModelForSequenceClassification

    import nlp_cv_tricks

    module, _, tok = _pair("fasttext", {"embedding_dim": 8, "word_ngrams": 2, "bucket": 101})
    module.eval()
    module.save_pretrained(tmp_path / "m")
    nlp_cv_tricks.register_auto_classes()
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    assert type(loaded).__name__ == "FastTextForSequenceClassification"
    enc = tok(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = module(**enc).logits
        assert torch.equal(loaded(**enc).logits, expected)
        rng = torch.get_rng_state()
        converted = module.to_pretrained_model()
        assert torch.equal(torch.get_rng_state(), rng)  # its init draws do not move the caller's RNG
        assert not converted.training and torch.equal(converted(**enc).logits, expected)


def test_module_refuses_save_options_it_does_not_implement(tmp_path):
    module, _, _ = _pair("textcnn", {"embedding_dim": 8})
    with pytest.raises(TypeError, match="to_pretrained_model"):
        module.save_pretrained(tmp_path / "m", max_shard_size="1MB")
    with pytest.raises(ValueError, match="safetensors"):
        module.save_pretrained(tmp_path / "m", safe_serialization=False)


_TRAIN_AND_LIST_MODULES = r"""
import sys
from nlp_cv_tricks.cli import main
rc = main(sys.argv[1:])
print("RC", rc, "MODELING_UTILS", "transformers.modeling_utils" in sys.modules)
"""


def test_training_a_baseline_recipe_does_not_import_transformers_modeling_utils(toy_data, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(ROOT / "recipes/quickstart.yaml"), f"data.train_file={toy_data['train']}",
            f"data.dev_file={toy_data['dev']}", "model.name=fasttext",
            "model.kwargs={embedding_dim: 8, word_ngrams: 2, bucket: 101}", "train.optimizer=sgd",
            "train.learning_rate=1.0", "train.momentum=0", "train.weight_decay=0.0", "train.epochs=1", "train.batch_size=32",
            "train.eval_steps=null", "data.max_length=16", "output.report_to=none",
            "tricks=[]", "callbacks=[]", "train.progress_bar=false", f"output.dir={run}", "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", _TRAIN_AND_LIST_MODULES, *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert "RC 0 MODELING_UTILS False" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]
    config = json.loads((run / "best" / "config.json").read_text())
    assert config["architectures"] == ["FastTextForSequenceClassification"]
    assert config["auto_map"]["AutoModelForSequenceClassification"] == (
        "modeling_fasttext.FastTextForSequenceClassification")
