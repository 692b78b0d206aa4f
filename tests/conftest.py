"""Shared fixtures: a tiny BERT built in code, a toy dataset, paths to the shared real data."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

WORDS = ["good", "great", "fine", "nice", "bad", "awful", "poor", "sad", "the", "movie", "was", "a", "plot",
         "actor", "very", "really", "story", "film", "it", "and"]
POS, NEG = WORDS[:4], WORDS[4:8]
FILLER = WORDS[8:]


def make_tiny_bert(path: Path, hidden: int = 32, layers: int = 2, dropout: float = 0.0, seed: int = 0) -> Path:
    """A 2-layer BERT with a 30-token WordPiece vocab, saved with its tokenizer (no download)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    backend = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                  cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    tok.save_pretrained(path)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=hidden * 2, max_position_embeddings=64, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    BertModel(cfg).save_pretrained(path)
    return path


def toy_sentences(n: int, seed: int) -> list[tuple[int, str]]:
    """Sentiment by keyword: one polar word among fillers; label 1 for a positive word."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = rng.sample(FILLER, rng.randint(2, 6)) + [rng.choice(POS if label else NEG)]
        rng.shuffle(words)
        out.append((label, " ".join(words)))
    return out


def write_kim(path: Path, rows) -> Path:
    path.write_text("".join(f"{y} {t}\n" for y, t in rows))
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("toy_data")
    return {"train": write_kim(d / "train.txt", toy_sentences(192, 1)),
            "dev": write_kim(d / "dev.txt", toy_sentences(64, 2))}


def tiny_recipe(tiny_bert: Path, toy_data: dict, out: Path, *overrides: str):
    from nlp_cv_tricks.config import load_recipe

    base = [
        f"data.train_file={toy_data['train']}", f"data.dev_file={toy_data['dev']}", "data.format=kim2014",
        "data.label_names=[negative,positive]", "data.max_length=16",
        f"model.name={tiny_bert}", "train.epochs=3", "train.batch_size=8", "train.learning_rate=1e-3",
        "train.logging_steps=4", "train.progress_bar=false", "output.report_to=none", f"output.dir={out}",
        "output.report=false",  # the end-of-training report (about 1 s a run) is tested in test_report.py
        "train.warmup_ratio=0.0", "train.eval_batch_size=32", "train.lr_scheduler=linear", "train.max_grad_norm=1.0",
    ]
    return load_recipe(ROOT / "recipes" / "quickstart.yaml", base + list(overrides) + ["tricks=[]"]
                       if not any(o.startswith("tricks") for o in overrides) else base + list(overrides))


def read_csv_rows(p) -> list[dict]:
    """The rows of a CSV file (an annotation export) as dicts."""
    with open(p, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_csv_rows(p, rows: list[dict]):
    """Write dict rows as CSV (the union of their keys as columns, missing values empty); returns ``p``."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    return p
