"""The package's own architectures (text baselines, chunk-and-pool, MRC heads) are saved with self-contained
modeling code and an ``auto_map``, so ``from_pretrained(dir, trust_remote_code=True)`` loads them and predicts
in a fresh Python process where ``nlp_cv_tricks`` cannot be imported."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT

# run in a fresh interpreter: nlp_cv_tricks made unimportable (meta-path blocker; the venv has it installed in
# editable mode), cwd and sys.path without the repository
_LOADER = r'''
import importlib.abc, json, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "nlp_cv_tricks" or name.startswith("nlp_cv_tricks."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
sys.meta_path.insert(0, _Block())
# the repository leaves sys.path; a virtual environment inside it (.venv, as make creates) stays: it holds torch
sys.path = [p for p in sys.path if p and not (p == REPO or (p.startswith(REPO + "/") and "site-packages" not in p))]
import torch, transformers
model_dir, auto, inputs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
model = getattr(transformers, auto).from_pretrained(model_dir, trust_remote_code=True).eval()
tok = transformers.AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)
if auto == "AutoModelForQuestionAnswering":
    enc = tok(inputs[0], inputs[1], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**enc)
    result = {"start": out.start_logits.tolist(), "end": out.end_logits.tolist()}
else:
    enc = tok(inputs, return_tensors="pt", padding=True, truncation=True, max_length=32)
    with torch.no_grad():
        out = model(**enc)
    result = {"logits": out.logits.tolist(), "labels": [model.config.id2label[int(i)] for i in out.logits.argmax(-1)]}
assert not any(m == "nlp_cv_tricks" or m.startswith("nlp_cv_tricks.") for m in sys.modules)
result["class_module"] = type(model).__module__
print("RESULT " + json.dumps(result))
'''


def _load_without_package(model_dir: Path, auto: str, inputs, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "hf_modules"), TOKENIZERS_PARALLELISM="false")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir(exist_ok=True)
    code = f"REPO = {str(ROOT)!r}\n" + _LOADER
    proc = subprocess.run([sys.executable, "-c", code, str(model_dir), auto, json.dumps(inputs)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _assert_standalone(model_dir: Path, module_file: str, auto: str) -> None:
    code = (model_dir / module_file).read_text(encoding="utf-8")
    assert "import nlp_cv_tricks" not in code and "from nlp_cv_tricks" not in code
    # every relative import is a file saved beside it, none of which imports package code
    seen, todo = set(), [module_file]
    while todo:
        name = todo.pop()
        seen.add(name)
        lines = (model_dir / name).read_text(encoding="utf-8").splitlines()
        assert not [ln for ln in lines if ln.startswith(("from nlp_cv_tricks", "import nlp_cv_tricks", "from .."))]
        for ln in lines:
            if ln.startswith("from ."):
                dep = ln.split()[1][1:] + ".py"
                assert (model_dir / dep).is_file(), (name, ln)
                if dep not in seen:
                    todo.append(dep)
    auto_map = json.loads((model_dir / "config.json").read_text())["auto_map"]
    stem = module_file[:-3]
    assert auto_map[auto].startswith(stem + ".")
    assert auto_map["AutoConfig"].split(".")[0] + ".py" in seen


TEXTS = ["the movie was good", "awful plot really", "a very nice film and a great story", "sad"]


@pytest.mark.parametrize("name", ["textcnn", "fasttext", "textrnn_att"])
def test_baseline_loads_and_predicts_without_the_package(name, tmp_path):
    from nlp_cv_tricks.models.text_baselines import build_baseline

    torch.manual_seed(0)
    texts = TEXTS * 3
    model, tok = build_baseline(name, {"embedding_dim": 16, "dropout": 0.0},
                                {"level": "word", "max_length": 32}, texts, {0: "negative", 1: "positive"})
    model.eval()
    out = tmp_path / "m"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    family = {"textcnn": "textcnn", "fasttext": "fasttext", "textrnn_att": "textrnn"}[name]
    _assert_standalone(out, f"modeling_{family}.py", "AutoModelForSequenceClassification")
    enc = tok(TEXTS, return_tensors="pt", padding=True, truncation=True, max_length=32)
    with torch.no_grad():
        expected = model(**enc).logits.numpy()
    got = _load_without_package(out, "AutoModelForSequenceClassification", TEXTS, tmp_path)
    assert got["class_module"].startswith("transformers_modules.")  # the saved code, not the package
    np.testing.assert_allclose(np.array(got["logits"]), expected, rtol=1e-5, atol=1e-6)
    assert got["labels"] == [model.config.id2label[int(i)] for i in expected.argmax(-1)]


def test_trained_baseline_run_dir_loads_without_the_package_and_still_with_it(toy_data, tmp_path):
    """The trainer's saved model (best/) carries the code; eval through the package still loads it."""
    from nlp_cv_tricks.cli import main

    run = tmp_path / "run"
    assert main(["train", str(ROOT / "recipes/quickstart.yaml"), f"data.train_file={toy_data['train']}",
                 f"data.dev_file={toy_data['dev']}", "model.name=textcnn", "model.kwargs={embedding_dim: 16, "
                 "num_filters: 8, filter_sizes: [2, 3]}", "train.epochs=2", "train.batch_size=16",
                 "train.learning_rate=1e-2", "train.eval_steps=null", "data.max_length=16", "output.report_to=none",
                 "train.progress_bar=false", f"output.dir={run}", "--quiet"]) == 0
    best = run / "best"
    _assert_standalone(best, "modeling_textcnn.py", "AutoModelForSequenceClassification")
    got = _load_without_package(best, "AutoModelForSequenceClassification", TEXTS, tmp_path)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import nlp_cv_tricks

    nlp_cv_tricks.register_auto_classes()  # the package's own classes, no remote code

    model = AutoModelForSequenceClassification.from_pretrained(best).eval()
    assert type(model).__module__ == "nlp_cv_tricks.models.text_baselines.modeling_textcnn"
    tok = AutoTokenizer.from_pretrained(best)
    with torch.no_grad():
        expected = model(**tok(TEXTS, return_tensors="pt", padding=True, truncation=True, max_length=32)).logits
    np.testing.assert_allclose(np.array(got["logits"]), expected.numpy(), rtol=1e-5, atol=1e-6)
    assert main(["eval", str(run), "--data", str(toy_data["dev"]), "--quiet"]) == 0


def test_chunk_pool_loads_and_predicts_without_the_package(tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    from nlp_cv_tricks.models.long import ChunkPoolForSequenceClassification

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    model = ChunkPoolForSequenceClassification.from_encoder(
        str(tiny_bert), tokenizer=tok, num_labels=2, id2label={0: "no", 1: "yes"}, label2id={"no": 0, "yes": 1},
        chunk_size=8, chunk_overlap=2, pooling="attention").eval()
    out = tmp_path / "cp"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    _assert_standalone(out, "modeling_chunk_pool.py", "AutoModelForSequenceClassification")
    enc = tok(TEXTS, return_tensors="pt", padding=True, truncation=True, max_length=32)
    with torch.no_grad():
        expected = model(**enc).logits.numpy()
    got = _load_without_package(out, "AutoModelForSequenceClassification", TEXTS, tmp_path)
    np.testing.assert_allclose(np.array(got["logits"]), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head", ["linear", "coattention"])
def test_mrc_head_loads_and_predicts_without_the_package(head, tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    from nlp_cv_tricks.models.mrc_heads import build_qa_model

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    model = build_qa_model(str(tiny_bert), head=head, head_hidden_size=8, sep_token_id=tok.sep_token_id).eval()
    out = tmp_path / "qa"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    _assert_standalone(out, "mrc_heads.py", "AutoModelForQuestionAnswering")
    questions, contexts = ["what was good", "what was sad"], ["the movie was good", "a sad story and a plot"]
    enc = tok(questions, contexts, return_tensors="pt", padding=True)
    with torch.no_grad():
        o = model(**enc)
    got = _load_without_package(out, "AutoModelForQuestionAnswering", [questions, contexts], tmp_path)
    np.testing.assert_allclose(np.array(got["start"]), o.start_logits.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.array(got["end"]), o.end_logits.numpy(), rtol=1e-5, atol=1e-5)


def test_a_model_saved_without_modeling_code_still_loads_through_the_package(toy_data, tmp_path):
    """Models saved before the code travelled with them (no auto_map, no modeling file) load as before after
    ``nlp_cv_tricks.register_auto_classes()``, and eval/predict read them."""
    from transformers import AutoModelForSequenceClassification

    from nlp_cv_tricks.cli import main
    from nlp_cv_tricks.models.text_baselines import build_baseline

    texts = [line.split(" ", 1)[1] for line in toy_data["train"].read_text().splitlines()]
    model, tok = build_baseline("textcnn", {"embedding_dim": 8, "num_filters": 4}, {"level": "word"}, texts,
                                {0: "negative", 1: "positive"})
    out = tmp_path / "old"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    cfg = json.loads((out / "config.json").read_text())
    cfg.pop("auto_map")
    (out / "config.json").write_text(json.dumps(cfg))
    for name in ("modeling_textcnn.py", "modeling_base.py", "layers_textcnn.py", "layers_base.py"):
        (out / name).unlink()
    (out / "recipe.yaml").write_text("data:\n  max_length: 16\n")
    import nlp_cv_tricks

    nlp_cv_tricks.register_auto_classes()
    loaded = AutoModelForSequenceClassification.from_pretrained(out)
    assert type(loaded).__name__ == "TextCNNForSequenceClassification"
    new = tmp_path / "new.csv"
    new.write_text("text\n" + "\n".join(texts[:10]) + "\n")
    assert main(["predict", str(out), "--data", str(new), "--out", str(tmp_path / "p.jsonl"), "--quiet"]) == 0
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 10
