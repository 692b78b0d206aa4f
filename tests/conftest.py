"""Shared fixtures: a tiny BERT built in code, a toy dataset, paths to the shared real data.

Tests that read the large shared datasets (``../shared/data`` beside the repository, or the folder named by
``NLP_CV_TRICKS_DATA``) get their paths from :func:`shared_data`, which skips the test with the missing path
as its reason on a clone of the repository alone. Under ``NLP_CV_TRICKS_REQUIRE_SHARED=1`` (``.ci/run`` sets it
where the folder exists) such a skip is a failure instead. Small real samples live in ``tests/fixtures/``.

``--runslow`` also runs the tests marked ``slow`` (``.ci/run`` passes it).
"""

from __future__ import annotations

import csv
import os
import random
import signal
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NLP_CV_TRICKS_DATA") or ROOT.parent / "shared" / "data")
FIXTURES = ROOT / "tests" / "fixtures"
REQUIRE_SHARED = os.environ.get("NLP_CV_TRICKS_REQUIRE_SHARED", "") not in ("", "0")


def shared_data(rel: str = "") -> Path:
    """``SHARED_DATA / rel`` when it exists; otherwise the calling test (or fixture) skips, naming the missing
    path, or fails when ``NLP_CV_TRICKS_REQUIRE_SHARED`` is set (CI, where the shared folder must be complete)."""
    p = SHARED_DATA / rel
    if p.exists():
        return p
    why = (f"needs the shared dataset {p}, which is not there (a clone without ../shared/data; "
           f"NLP_CV_TRICKS_DATA=<folder> points the tests at a copy)")
    if REQUIRE_SHARED:
        pytest.fail(f"{why}; NLP_CV_TRICKS_REQUIRE_SHARED is set, so it must exist", pytrace=False)
    pytest.skip(why)


def sigint_default_in_child() -> None:
    """``preexec_fn`` of a child that must take Ctrl-C: a suite started as a background job of a shell (``cmd &``,
    ``nohup``) inherits SIGINT ignored, and a Python child would ignore the test's SIGINT too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def sigint_default():
    """Python's own Ctrl-C handler for the test, whatever the suite inherited (a background job ignores SIGINT)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run the tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="marked slow: run with --runslow (.ci/run does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

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
    # the quick start's own plug-ins (its gradient-norm logging) only where a test names plug-ins itself
    own = [f"{key}=[]" for key in ("tricks", "callbacks") if not any(o.startswith(key) for o in overrides)]
    return load_recipe(ROOT / "recipes" / "quickstart.yaml", base + list(overrides) + own)


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


def full_history_open(from_call: int = 1):
    """An ``open`` for ``nlp_cv_tricks.utils.io`` (where history lines are appended) under which the
    ``from_call``-th and later appends to a ``history.jsonl`` write 7 characters and then fail as on a full file
    system (EFBIG); every other file opens as usual."""
    import builtins
    import errno

    real_open = builtins.open
    calls = {"n": 0}

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def tell(self):
            return self.f.tell()

        def truncate(self, n):
            return self.f.truncate(n)

        def write(self, text):
            self.f.write(text[:7])
            self.f.flush()
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

        def flush(self):
            self.f.flush()

    def fake_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        if str(path).endswith("history.jsonl") and "a" in mode:
            calls["n"] += 1
            if calls["n"] >= from_call:
                return Full(f)
        return f

    return fake_open
