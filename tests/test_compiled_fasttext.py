"""The compiled FastText loop (engine/compiled_loop.py, models/fasttext_kernels.py, tasks/fasttext_compiled.py):
its bags and SGD steps are the trainer's FastText numbers, its schedules transformers', and a run through it leaves
the run directory and the saved model the trainer leaves -- loadable, evaluable, the same files -- without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nlp_cv_tricks.cli import main
from nlp_cv_tricks.config import RecipeError, load_recipe
from nlp_cv_tricks.engine.compiled_loop import SCHEDULES, schedule_factors
from nlp_cv_tricks.models import fasttext_kernels as K
from nlp_cv_tricks.runner import choose_engine

pytestmark = pytest.mark.skipif(not K.kernels_available(), reason="numba (the 'fast' extra) is not installed")

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "thucnews"


def _ragged(seed: int, n: int = 40, vocab: int = 50, max_len: int = 12):
    rng = np.random.default_rng(seed)
    lens = rng.integers(0, max_len, n)
    ids = rng.integers(2, vocab, int(lens.sum()))
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return ids.astype(np.int64), offsets, lens


def _padded(ids, offsets, lens):
    pad = np.zeros((len(lens), max(1, int(lens.max()))), np.int64)
    mask = np.zeros_like(pad)
    for i in range(len(lens)):
        pad[i, :lens[i]] = ids[offsets[i]:offsets[i + 1]]
        mask[i, :lens[i]] = 1
    return torch.tensor(pad), torch.tensor(mask)


def test_hash_and_bags_are_the_models():
    from nlp_cv_tricks.models.text_baselines.layers_fasttext import _HASH_MULT, fasttext_bags

    assert K.HASH_MULT == _HASH_MULT
    for seed, n in ((0, 3), (1, 2), (2, 1)):
        ids, offsets, lens = _ragged(seed)
        flat, bag_offsets = K.fasttext_bag_ids(ids, offsets, 50, n, 1009)
        ref_flat, ref_offsets = fasttext_bags(*_padded(ids, offsets, lens), 50, n, 1009)
        assert np.array_equal(flat, ref_flat.numpy()) and np.array_equal(bag_offsets[:-1], ref_offsets.numpy())


def test_sgd_steps_equal_the_trainers_fasttext():
    """Same start weights, same batches: the kernel's steps give the weights that torch's FastText module, its
    cross-entropy (mean over the batch) and plain SGD give, and the same losses."""
    from nlp_cv_tricks.models.text_baselines import build_baseline

    ids, offsets, lens = _ragged(3, n=30)
    labels = np.random.default_rng(4).integers(0, 3, 30).astype(np.int64)
    texts = ["一二三四五六七八九十"] * 2
    torch.manual_seed(0)
    model, _ = build_baseline("fasttext", {"embedding_dim": 8, "word_ngrams": 3, "bucket": 101, "sparse": False},
                              {"level": "char"}, texts, {0: "a", 1: "b", 2: "c"}, pretrained_model=False)
    rows = model.embeddings.weight.shape[0]
    vocab = rows - 101
    ids = ids % vocab
    with torch.no_grad():  # a non-zero classifier, so every gradient path is exercised
        model.classifier.weight.normal_(0, 0.3)
        model.classifier.bias.normal_(0, 0.1)
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    bag, bag_offsets = K.fasttext_bag_ids(ids, offsets, vocab, 3, 101)
    order = np.random.default_rng(5).permutation(30).astype(np.int64)
    lrs = np.array([0.9, 0.5, 0.7, 0.3])
    losses = np.zeros(4)
    assert K.train_fasttext_steps(weights, bag, bag_offsets, labels, order, 0, 8, lrs, losses) == 4

    pad, mask = _padded(ids, offsets, lens)
    y = torch.tensor(labels)
    for step, lr in enumerate(lrs):
        b = torch.tensor(order[step * 8:(step + 1) * 8])
        out = model(input_ids=pad[b], attention_mask=mask[b])
        loss = torch.nn.functional.cross_entropy(out.logits, y[b])
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        assert losses[step] == pytest.approx(loss.item(), rel=1e-5)
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(weights[k], v.numpy(), rtol=1e-5, atol=1e-6)
    logits = K.fasttext_logits(weights, bag, bag_offsets)
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(input_ids=pad, attention_mask=mask).logits.numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_a_non_finite_loss_stops_before_its_update():
    ids, offsets, _ = _ragged(6, n=16)
    bag, bag_offsets = K.fasttext_bag_ids(ids, offsets, 50, 2, 97)
    weights = K.init_fasttext_weights(50 + 97, 4, 2, 0, seed=0)
    weights["classifier.weight"][:] = np.float32(3e38)
    weights["classifier.weight"][1] = np.float32(-3e38)
    before = {k: v.copy() for k, v in weights.items()}
    losses = np.zeros(2)
    done = K.train_fasttext_steps(weights, bag, bag_offsets, np.zeros(16, np.int64) + 1, np.arange(16), 0, 8,
                                  np.array([0.1, 0.1]), losses)
    assert done == 0 and not np.isfinite(losses[0])
    assert all(np.array_equal(before[k], weights[k]) for k in weights)


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_are_transformers(name):
    from transformers import get_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = get_scheduler(name, opt, num_warmup_steps=7, num_training_steps=50)
    ours = 2.0 * schedule_factors(name, 7, 50, np.arange(51))
    theirs = []
    for _ in range(51):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# a run
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def thuc(tmp_path_factory) -> Path:
    """240 training and 60 dev THUCNews titles (the repository's fixture) and a FastText recipe on them."""
    d = tmp_path_factory.mktemp("thuc")
    lines = (FIXTURE / "train.first300.txt").read_text(encoding="utf-8").splitlines()
    (d / "train.txt").write_text("\n".join(lines[:240]) + "\n", encoding="utf-8")
    (d / "dev.txt").write_text("\n".join(lines[240:]) + "\n", encoding="utf-8")
    recipe = (ROOT / "recipes" / "thucnews_fasttext.yaml").read_text(encoding="utf-8")
    recipe = (recipe.replace("thucnews/train.txt", str(d / "train.txt"))
              .replace("thucnews/dev.txt", str(d / "dev.txt"))
              .replace("thucnews/class.txt", str(FIXTURE / "class.txt"))
              .replace("bucket: 250499", "bucket: 5003").replace("batch_size: 128", "batch_size: 16")
              .replace("learning_rate: 48.0", "learning_rate: 6.0").replace("logging_steps: 50", "logging_steps: 7"))
    (d / "fasttext.yaml").write_text(recipe, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def runs(thuc, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("runs")
    got = {}
    for engine in ("compiled", "trainer"):
        rc = main(["train", str(thuc / "fasttext.yaml"), f"train.engine={engine}", f"output.dir={out / engine}",
                   "output.report_to=none", "train.progress_bar=false"])
        assert rc == 0
        got[engine] = out / engine
    return got


def test_the_run_directory_is_the_trainers(runs):
    c, t = runs["compiled"], runs["trainer"]
    assert json.loads((c / "metrics.json").read_text())["engine"] == "compiled"
    for name in ("recipe.yaml", "history.jsonl", "metrics.json", "report.html", "best"):
        assert (c / name).exists(), name
    manifest = json.loads((c / ".nlp_cv_tricks_run.json").read_text())["entries"]
    assert {"recipe.yaml", "history.jsonl", "metrics.json", "best", "report.html", "report_files"} <= set(manifest)
    keys = [[set(json.loads(ln)) for ln in (d / "history.jsonl").read_text().splitlines()] for d in (c, t)]
    assert keys[0] == keys[1]  # the same rows (logging and evaluation steps) with the same keys
    steps = [[json.loads(ln)["step"] for ln in (d / "history.jsonl").read_text().splitlines()] for d in (c, t)]
    assert steps[0] == steps[1]
    assert sorted(p.name for p in (c / "best").iterdir()) == sorted(p.name for p in (t / "best").iterdir())
    assert json.loads((c / "best" / "config.json").read_text()) == json.loads((t / "best" / "config.json").read_text())
    assert json.loads((c / "best" / "tokenizer.json").read_text()) == \
        json.loads((t / "best" / "tokenizer.json").read_text())
    for f in ("layers_fasttext.py", "modeling_fasttext.py", "layers_base.py", "modeling_base.py"):
        assert (c / "best" / f).read_bytes() == (t / "best" / f).read_bytes()
    from safetensors import safe_open

    shapes = []
    for d in (c, t):
        with safe_open(str(d / "best" / "model.safetensors"), "np") as f:
            shapes.append({k: (f.get_tensor(k).shape, f.get_tensor(k).dtype) for k in f.keys()})
            assert f.metadata() == {"format": "pt"}
    assert shapes[0] == shapes[1]
    summary = [json.loads((d / "best" / "training_summary.json").read_text()) for d in (c, t)]
    assert summary[0] == summary[1]


def test_the_saved_model_scores_as_in_training(runs, thuc, capsys):
    """``eval`` of the compiled run's best/ (torch, through the package's loader) gives the accuracy the loop
    measured with the kernels; transformers loads it with trust_remote_code and its tokenizer with AutoTokenizer."""
    best = runs["compiled"] / "best"
    assert main(["eval", str(best), "--data", str(thuc / "dev.txt")]) == 0
    printed = json.loads(capsys.readouterr().out)
    kept = json.loads((best / "eval_metrics.json").read_text())
    assert printed["accuracy"] == pytest.approx(kept["eval/accuracy"], abs=1e-9)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(best), trust_remote_code=True)
    tok = AutoTokenizer.from_pretrained(str(best))
    ref = AutoTokenizer.from_pretrained(str(runs["trainer"] / "best"))
    texts = [ln.rsplit("\t", 1)[0] for ln in (thuc / "dev.txt").read_text(encoding="utf-8").splitlines()]
    assert tok(texts, truncation=True)["input_ids"] == ref(texts, truncation=True)["input_ids"]
    with torch.no_grad():
        out = model(**tok(texts[:4], padding=True, truncation=True, return_tensors="pt")).logits
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_accuracy_is_the_trainers_within_noise(tmp_path):
    """5,000 THUCNews titles (every 9th), 1,000 dev titles, 5 epochs: both loops learn, to within 3 points of each
    other (they differ only in the random draws: initial weights and shuffling). Measured when written: compiled
    0.801, trainer 0.809."""
    from conftest import shared_data

    thu = shared_data("thucnews")
    lines = (thu / "train.txt").read_text(encoding="utf-8").splitlines()[::9]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dev = (thu / "dev.txt").read_text(encoding="utf-8").splitlines()[:1000]
    (tmp_path / "dev.txt").write_text("\n".join(dev) + "\n", encoding="utf-8")
    acc = {}
    for engine in ("compiled", "trainer"):
        assert main(["train", str(ROOT / "recipes" / "thucnews_fasttext.yaml"), f"data.train_file={tmp_path / 'train.txt'}",
                     f"data.dev_file={tmp_path / 'dev.txt'}", f"data.label_names_file={thu / 'class.txt'}",
                     "model.kwargs.bucket=50021", "train.batch_size=32", "train.learning_rate=24",
                     f"train.engine={engine}", f"output.dir={tmp_path / engine}", "output.report=false",
                     "output.report_to=none", "train.progress_bar=false"]) == 0
        acc[engine] = json.loads((tmp_path / engine / "metrics.json").read_text())["best_metric"]
    assert min(acc.values()) > 0.7 and abs(acc["compiled"] - acc["trainer"]) <= 0.03, acc


def test_engine_choice(thuc):
    recipe = str(thuc / "fasttext.yaml")
    assert choose_engine(load_recipe(recipe, [])) == "compiled"
    for override in ("tricks=[fgm]", "train.optimizer=adagrad", "train.momentum=0.9", "train.save_steps=10",
                     "model.kwargs.hidden_size=16", "train.engine=trainer", "train.max_grad_norm=1.0",
                     "train.metric=f1/finance", "train.mixed_precision=bf16", "data.group_by_length=true",
                     "train.gradient_accumulation_steps=2", "train.eval_steps=5", "model.kwargs.init=kaiming"):
        assert choose_engine(load_recipe(recipe, [override])) == "trainer", override
    with pytest.raises(RecipeError, match="tricks"):
        choose_engine(load_recipe(recipe, ["train.engine=compiled", "tricks=[fgm]"]))


def test_a_compiled_run_imports_no_torch(thuc, tmp_path):
    code = ("import sys; from nlp_cv_tricks.cli import main; "
            f"rc = main(['train', {str(thuc / 'fasttext.yaml')!r}, 'output.dir={tmp_path / 'r'}', "
            "'train.progress_bar=false']); "
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'accelerate', 'sklearn') if m in sys.modules]; "
            "assert rc == 0 and not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "r" / "report.html").is_file() and (tmp_path / "r" / "logs" / "nlp-cv-tricks").is_dir()


def test_a_failed_write_is_one_sentence(thuc, tmp_path, monkeypatch, capsys):
    """A full disk while best/ is written: the one-sentence error of the trainer, exit status 2, no best.tmp left."""
    import errno

    from nlp_cv_tricks.tasks import fasttext_compiled

    def full(self, directory, weights):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fasttext_compiled.CompiledFastText, "write", full)
    rc = main(["train", str(thuc / "fasttext.yaml"), f"output.dir={tmp_path / 'r'}", "output.report_to=none",
               "train.progress_bar=false"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "best" in err and "space" in err.lower()
    assert not (tmp_path / "r" / "best.tmp").exists()


def test_flat_char_ids_are_the_lookups():
    """The numpy lookup of a character tokenizer's ids gives char_lookup's ids (the trainer's tokenization),
    texts with a line break or an added token's first character included (those go through the Rust tokenizer)."""
    import itertools

    from tokenizers import Tokenizer

    from nlp_cv_tricks.data.encode import char_ids_flat, char_lookup
    from nlp_cv_tricks.data.vocab import build_tokenizer_backend

    texts = [ln.rsplit("\t", 1)[0] for ln in (FIXTURE / "train.first300.txt").read_text(encoding="utf-8").splitlines()]
    tok = build_tokenizer_backend(texts[:200], "char", max_vocab_size=300)
    bt = Tokenizer.from_str(tok.to_str())
    bt.enable_truncation(12)
    probe = texts + ["a\nb[PAD]c", "x[UNK]" * 5, "[", "😀x中 ", "\U0010ffff", "  "]
    for max_length in (12, None):
        if max_length is None:
            bt.no_truncation()
        flat, offsets = char_ids_flat(tok, probe, max_length, bt)
        ids = char_lookup(tok, ["input_ids"])(probe, max_length, bt)["input_ids"]
        assert np.diff(offsets).tolist() == [len(x) for x in ids]
        assert flat.tolist() == list(itertools.chain.from_iterable(ids))


def test_a_live_run_folder_is_refused_and_ctrl_c_is_one_line(thuc, tmp_path, monkeypatch, capsys):
    """The compiled loop keeps the trainer's run-directory rules: a folder a live training holds is refused (nothing
    written), and a Ctrl-C stops with one line naming the step, with best/ written from the best evaluation."""
    from test_run_lock import _holder

    from nlp_cv_tricks.tasks import fasttext_compiled

    out = tmp_path / "held"
    out.mkdir()
    holder = _holder(out)
    try:
        args = ["train", str(thuc / "fasttext.yaml"), f"output.dir={out}", "output.report_to=none",
                "train.progress_bar=false", "output.report=false"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"PID {holder.pid}" in err and "in use" in err
        assert sorted(p.name for p in out.iterdir()) == [".nlp_cv_tricks.lock"]
    finally:
        holder.kill()
        holder.wait()

    calls = {"n": 0}
    real = fasttext_compiled.CompiledFastText.train_steps

    def interrupted(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:  # in the second epoch (15 steps an epoch; chunks end at multiples of 7: 7, 14, 15, 21)
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(fasttext_compiled.CompiledFastText, "train_steps", interrupted)
    run = tmp_path / "stopped"
    assert main(["train", str(thuc / "fasttext.yaml"), f"output.dir={run}", "output.report_to=none",
                 "train.progress_bar=false", "output.report=false"]) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted (Ctrl-C) at step 21 of 75" in err, err
    assert "best/ from step 15" in err
    assert json.loads((run / "best" / "eval_metrics.json").read_text())["step"] == 15


def test_a_history_line_that_does_not_fit_leaves_none_cut_off(thuc, tmp_path, monkeypatch, capsys):
    """The history is appended through the same writer as the trainer's: a line that does not fit is one sentence
    and leaves the file as it was."""
    from conftest import full_history_open

    import nlp_cv_tricks.utils.io as io_mod

    monkeypatch.setattr(io_mod, "open", full_history_open(from_call=3), raising=False)
    out = tmp_path / "r"
    assert main(["train", str(thuc / "fasttext.yaml"), f"output.dir={out}", "output.report_to=none",
                 "train.progress_bar=false", "output.report=false"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"could not write the training history {out / 'history.jsonl'}" in err
    rows = [json.loads(ln) for ln in (out / "history.jsonl").read_text().splitlines()]
    assert len(rows) == 2


def test_csv_data_max_steps_and_no_evaluation(thuc, tmp_path):
    """A CSV file goes through the trainer's reader (the same label map); max_steps stops inside an epoch and
    evaluates there, as the trainer does; without evaluation the final weights are the model (final/)."""
    import csv

    for split in ("train", "dev"):
        rows = [ln.rsplit("\t", 1) for ln in (thuc / f"{split}.txt").read_text(encoding="utf-8").splitlines()]
        with open(tmp_path / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            w.writerows(rows)
    base = ["train", str(thuc / "fasttext.yaml"), f"data.train_file={tmp_path / 'train.csv'}",
            f"data.dev_file={tmp_path / 'dev.csv'}", "data.format=auto",
            "output.report_to=none", "train.progress_bar=false", "output.report=false"]
    assert main(base + [f"output.dir={tmp_path / 'a'}", "train.max_steps=20"]) == 0
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["engine"] == "compiled"
    hist = [json.loads(ln) for ln in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    evals = [r for r in hist if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [15, 20] and evals[-1]["epoch"] == pytest.approx(1 + 5 / 15, abs=1e-4)
    config = json.loads((tmp_path / "a" / "best" / "config.json").read_text())
    assert config["nct_raw_labels"] == [str(i) for i in range(10)] and config["id2label"]["0"] == "finance"
    assert main(base + [f"output.dir={tmp_path / 'b'}", "train.eval_each_epoch=false"]) == 0
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["best_metric"] is None and metrics["model_dir"].endswith("final")
    assert (tmp_path / "b" / "final" / "model.safetensors").is_file() and not (tmp_path / "b" / "best").exists()
