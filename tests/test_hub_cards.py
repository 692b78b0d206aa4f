"""Hub cards describe the model they ship: per task, from the run's real facts (epochs and steps done, pretrained
base or from scratch, input size), with huggingface_hub's ModelCard metadata (model-index, library_name), no
absolute local paths; a push is one commit."""

import json
import re

import pytest
import yaml
from huggingface_hub import ModelCard

from nlp_cv_tricks.cli import main
from nlp_cv_tricks.hub import build_model_card, model_card, push

from conftest import ROOT


def _meta(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


def _no_local_paths(card: str, *roots) -> None:
    for root in roots:
        assert str(root) not in card
    assert not re.search(r"(?<![\w.])/(tmp|home|root|work|Users)/", card), card


def _train(args, out):
    assert main(["train", str(ROOT / "recipes/quickstart.yaml"), *args, "output.report_to=none",
                 f"output.dir={out}", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def text_run(tiny_bert, toy_data, tmp_path_factory):
    """A MiniLM-style fine-tune stopped by max_steps inside epoch 2: 40 steps of 24 per epoch = 1.67 epochs."""
    out = tmp_path_factory.mktemp("cards") / "text"
    return _train([f"data.train_file={toy_data['train']}", f"data.dev_file={toy_data['dev']}",
                   f"model.name={tiny_bert}", "train.epochs=1", "train.max_steps=40", "train.batch_size=8",
                   "train.learning_rate=1e-3", "train.eval_steps=20", "data.max_length=16"], out)


def test_text_card_reports_the_steps_done_and_no_local_paths(text_run, tiny_bert, toy_data):
    card = model_card(text_run / "best", "me/tiny-sentiment")
    summary = json.loads((text_run / "best" / "training_summary.json").read_text())
    assert summary["steps_per_epoch"] == 24 and summary["step"] in (20, 40)
    epochs = summary["step"] / 24
    assert f"trained for {epochs:.2f} epochs ({summary['step']} optimizer steps, 24 per epoch) on 192 training " \
           "examples" in card
    training = card.split("## Training\n")[1].split("## ")[0]
    assert "recipe setting: max_steps 40" in training and "epochs: 1" not in training and " 1 epoch" not in training
    assert "of the 40 steps the run made" in card  # the best checkpoint, and how far the run went
    _no_local_paths(card, tiny_bert, toy_data["train"].parent, text_run)
    assert "- train: `train.txt`" in card and "- dev: `dev.txt`" in card
    assert "texts truncated to 16 tokens" in card and "Inputs longer than 16 tokens were truncated" in card
    meta = _meta(card)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    assert "base_model" not in meta  # a local checkpoint is no Hub id
    assert f"fine-tuned from a local checkpoint ({tiny_bert.name})." in card
    results = meta["model-index"][0]["results"][0]
    assert results["task"]["type"] == "text-classification" and results["dataset"]["name"] == "dev.txt"
    accuracy = json.loads((text_run / "best" / "eval_metrics.json").read_text())["eval/accuracy"]
    assert {"type": "accuracy", "name": "eval/accuracy", "value": round(accuracy, 4)} in results["metrics"]
    # a valid huggingface_hub card: its metadata parses back into eval results
    parsed = ModelCard(card)
    assert any(r.metric_type == "accuracy" for r in parsed.data.eval_results)
    assert "trust_remote_code" not in card  # a standard transformers architecture


def test_a_hub_base_model_is_named_in_the_metadata(text_run, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(text_run / "best", d)
    recipe = yaml.safe_load((d / "recipe.yaml").read_text())
    recipe["model"]["name"] = "minilm-l6"
    (d / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    card = model_card(d, "me/x")
    assert _meta(card)["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "and of its base model" in card and "trained from scratch" not in card


def test_own_baseline_card_is_from_scratch_and_loads_with_remote_code(toy_data, tmp_path):
    run = _train([f"data.train_file={toy_data['train']}", f"data.dev_file={toy_data['dev']}", "model.name=textcnn",
                  "model.kwargs={embedding_dim: 16, num_filters: 8, filter_sizes: [2, 3]}", "train.epochs=2",
                  "train.batch_size=16", "train.learning_rate=1e-2", "train.eval_steps=null", "data.max_length=16"],
                 tmp_path / "run")
    card = model_card(run / "best", "me/textcnn")
    meta = _meta(card)
    assert "base_model" not in meta and {"custom_code", "textcnn"} <= set(meta["tags"])
    assert "architecture `nct-textcnn`, trained from scratch" in card and "TextCNN (Kim 2014)" in card
    assert "initial weights: random (trained from scratch)" in card and "base model" not in card
    assert 'trust_remote_code=True' in card and "import nlp_cv_tricks" not in card
    assert "trained for 2.00 epochs (24 optimizer steps, 12 per epoch)" in card
    _no_local_paths(card, tmp_path, toy_data["train"].parent)


def _tiny_images(root, n=12):
    from PIL import Image

    for label, colour in (("ants", (200, 30, 30)), ("bees", (30, 30, 200))):
        (root / label).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (20, 20), tuple(min(255, c + 5 * i) for c in colour)).save(root / label / f"{i}.png")
    return root


def test_image_card_from_scratch_speaks_of_images_and_timm(tmp_path):
    pytest.importorskip("timm")
    from nlp_cv_tricks.config import recipe_from_dict
    from nlp_cv_tricks.runner import build_trainer

    images = _tiny_images(tmp_path / "imgs")
    recipe = recipe_from_dict({
        "name": "tiny_images", "task": "image-classification",
        "data": {"train_file": str(images), "dev_fraction": 0.25, "split_seed": 0},
        "model": {"name": "resnet10t", "kwargs": {"model_args": {"channels": [8, 8, 8, 8], "stem_width": 8},
                                                  "image": {"input_size": 16, "mean": 0.5, "std": 0.5,
                                                            "crop_pct": 1.0}}},
        "train": {"seed": 0, "epochs": 3, "batch_size": 6, "learning_rate": 1e-2, "progress_bar": False},
        "output": {"dir": str(tmp_path / "run"), "report_to": "none"}})
    build_trainer(recipe).fit()
    card = model_card(tmp_path / "run" / "best", "me/tiny-images")
    meta = _meta(card)
    assert meta["library_name"] == "timm" and meta["pipeline_tag"] == "image-classification"
    assert "base_model" not in meta and "base model" not in card and "initial weights: random" in card
    assert "trained from scratch (randomly initialised weights" in card
    assert "images resized and cropped to 16x16 pixels, 3 channels" in card
    assert "timm.create_model(\"hf-hub:me/tiny-images\"" in card
    for text_word in ("tokens", "truncated", "text_column", "label_column", "AutoTokenizer", "texts like"):
        assert text_word not in card, text_word
    summary = json.loads((tmp_path / "run" / "best" / "training_summary.json").read_text())
    assert summary["steps_per_epoch"] == 3  # 18 training images in batches of 6
    assert f"trained for {summary['step'] / 3:.2f} epochs ({summary['step']} optimizer steps, 3 per epoch) on 18 " \
           "training examples" in card and "of the 9 steps the run made" in card
    assert card.count("An image classification model trained with") == 1
    assert "- train: `imgs`" in card and "25% stratified split of imgs" in card
    _no_local_paths(card, tmp_path)
    assert meta["model-index"][0]["results"][0]["task"]["type"] == "image-classification"


def test_image_card_fine_tuned_from_timm_weights_names_the_base(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"architecture": "resnet18", "num_classes": 2,
                                               "label_names": ["ants", "bees"],
                                               "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [0.5] * 3,
                                                                  "std": [0.5] * 3}}))
    (d / "recipe.yaml").write_text(yaml.safe_dump({"task": "image-classification",
                                                   "data": {"train_file": "/data/hymenoptera/train"},
                                                   "model": {"name": "resnet18.a1_in1k",
                                                             "kwargs": {"pretrained": True}}}))
    card = model_card(d, "me/ants")
    assert _meta(card)["base_model"] == "timm/resnet18.a1_in1k"
    assert "fine-tuned from timm's pretrained `resnet18.a1_in1k` weights" in card and "224x224" in card
    assert "/data/hymenoptera" not in card and "- train: `train`" in card
    assert "No evaluation was recorded" in card and "model-index" not in card


def test_long_text_card_describes_the_chunking(tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    from nlp_cv_tricks.models.long import ChunkPoolForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    model = ChunkPoolForSequenceClassification.from_encoder(str(tiny_bert), tokenizer=tok, num_labels=2,
                                                            chunk_size=16, chunk_overlap=4, pooling="attention")
    d = tmp_path / "m"
    model.save_pretrained(d)
    (d / "recipe.yaml").write_text(yaml.safe_dump({
        "task": "long-text-classification", "data": {"train_file": "data/hyperpartisan", "max_length": 4096},
        "model": {"name": "minilm-l6", "kwargs": {"strategy": "chunk_pool", "chunk_size": 16, "chunk_overlap": 4,
                                                  "pooling": "attention"}}}))
    (d / "training_summary.json").write_text(json.dumps({"step": 30, "epoch": 2.5, "steps_per_epoch": 12}))
    card = model_card(d, "me/long")
    meta = _meta(card)
    assert meta["pipeline_tag"] == "text-classification" and meta["base_model"] == \
        "sentence-transformers/all-MiniLM-L6-v2" and "custom_code" in meta["tags"]
    assert "chunks of 16 tokens (specials included) overlapping by 4" in card and "pooled by attention" in card
    assert "trained for 2.50 epochs (30 optimizer steps, 12 per epoch)" in card
    assert "Inputs longer than" not in card and "- train: `data/hyperpartisan`" in card
    assert "long-document classification" in card and "trust_remote_code=True" in card


def test_qa_card_describes_windows_and_head(tiny_bert, tmp_path):
    from nlp_cv_tricks.models.mrc_heads import build_qa_model

    model = build_qa_model(str(tiny_bert), head="biattention", head_hidden_size=8)
    model.config.nct_qa = {"max_length": 64, "doc_stride": 16, "max_query_length": 12}
    d = tmp_path / "qa"
    model.save_pretrained(d)
    (d / "recipe.yaml").write_text(yaml.safe_dump({
        "task": "question-answering", "data": {"train_file": str(tmp_path / "squad.json"), "max_length": 64},
        "model": {"name": str(tiny_bert), "kwargs": {"head": "biattention"}}}))
    (d / "eval_metrics.json").write_text(json.dumps({"step": 10, "eval/exact_match": 50.0, "eval/f1": 61.5}))
    card = model_card(d, "me/qa")
    meta = _meta(card)
    assert meta["pipeline_tag"] == "question-answering" and meta["library_name"] == "transformers"
    names = {m["type"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert names == {"exact_match", "f1"}
    assert "BiDAF bi-attention head" in card and "windows of at most 64 tokens" in card and "stride 16" in card
    assert "AutoModelForQuestionAnswering" in card and "trust_remote_code=True" in card
    assert "Answers are spans of the given context" in card and "- train: `squad.json`" in card
    _no_local_paths(card, tmp_path, tiny_bert)


def test_push_is_one_commit_with_the_card_and_a_recipe_without_local_paths(text_run, monkeypatch, toy_data):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create_repo", repo_id))
            return f"https://huggingface.co/{repo_id}"

        def create_commit(self, repo_id, operations, commit_message, **kw):
            calls.append(("create_commit", repo_id, list(operations)))
            return type("Info", (), {"commit_url": "https://huggingface.co/x/commit/1"})()

        def upload_file(self, *a, **kw):  # pragma: no cover - must not be used
            raise AssertionError("a second commit")

        upload_folder = upload_file

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    result = push(str(text_run), "me/tiny-sentiment")
    commits = [c for c in calls if c[0] == "create_commit"]
    assert len(commits) == 1 and result["commit"].endswith("/commit/1")
    ops = {op.path_in_repo: op for op in commits[0][2]}
    assert {"README.md", "model.safetensors", "config.json", "recipe.yaml", "training_summary.json"} <= set(ops)
    readme = ops["README.md"].path_or_fileobj
    assert isinstance(readme, bytes) and b"model-index" in readme
    recipe = ops["recipe.yaml"].path_or_fileobj
    assert isinstance(recipe, bytes) and str(toy_data["train"].parent).encode() not in recipe
    assert yaml.safe_load(recipe)["data"]["train_file"] == "train.txt"
    assert not (text_run / "best" / "README.md").exists()  # nothing written into the user's directory
    assert str(toy_data["train"]) in (text_run / "best" / "recipe.yaml").read_text()  # and nothing changed there


def test_build_model_card_returns_a_huggingface_model_card(text_run):
    card = build_model_card(text_run / "best", "me/tiny")
    assert isinstance(card, ModelCard) and card.data.library_name == "transformers"
    assert card.data.eval_results and card.data.model_name == "tiny"


def test_head_tail_card_on_hub_data_names_the_dataset(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertForSequenceClassification"],
                                               "id2label": {"0": "neg", "1": "pos"}}))
    (d / "recipe.yaml").write_text(yaml.safe_dump({
        "task": "long-text-classification",
        "data": {"format": "hub", "hub_name": "stanfordnlp/imdb", "max_length": 512, "text_column": "text"},
        "model": {"name": "google-bert/bert-base-uncased", "kwargs": {"strategy": "head+tail", "head_tokens": 128}},
        "train": {"epochs": 2}}))
    (d / "eval_metrics.json").write_text(json.dumps({"step": 7, "eval/accuracy": 0.91}))
    card = model_card(d, "me/imdb-headtail")
    meta = _meta(card)
    assert meta["datasets"] == ["stanfordnlp/imdb"] and meta["base_model"] == "google-bert/bert-base-uncased"
    assert meta["model-index"][0]["results"][0]["dataset"] == {"name": "stanfordnlp/imdb",
                                                               "type": "stanfordnlp/imdb", "split": "validation"}
    assert "the first 128 and the last 384 (head+tail" in card and "never seen by the model" in card
    assert "trained for 7 optimizer steps" in card  # no summary, no history: the step only, never the recipe's 2
    assert "2.00 epochs" not in card and "custom_code" not in meta["tags"]
