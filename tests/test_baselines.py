"""Tests of the text baselines (nlp_cv_tricks.models.text_baselines) and their vocabularies (nlp_cv_tricks.data.vocab).

Tiny models built in code; real data: THUCNews titles (a 300-title sample in tests/fixtures/, the rest from
../shared/data, skipped without it) and the bundled SST-2 sentences."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from nlp_cv_tricks.data.vocab import (  # noqa: E402
    build_tokenizer,
    load_pretrained_vectors,
    read_vectors,
)
from nlp_cv_tricks.engine.optimizer_factory import create_optimizer  # noqa: E402
from nlp_cv_tricks.models.text_baselines.layers_fasttext import fasttext_features, hashed_ngram_ids  # noqa: E402
from nlp_cv_tricks.models.text_baselines import (  # noqa: E402
    BASELINES,
    FastTextConfig,
    FastTextForSequenceClassification,
    build_baseline,
    preferred_optimizer,
    register_architectures,
    register_auto_classes,
)

from conftest import shared_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
THUC_SAMPLE = ROOT / "tests" / "fixtures" / "thucnews"  # first 300 training titles + class.txt
SST2_DEV = ROOT / "data" / "sst2" / "dev.txt"  # the bundled copy of kim2014/stsa.binary.dev

torch.set_num_threads(1)

# tiny but complete settings of every baseline
TINY = {
    "textcnn": dict(embedding_dim=16, filter_sizes=[2, 3, 4], num_filters=8),
    "fasttext": dict(embedding_dim=16, word_ngrams=3, bucket=1009),
    "dpcnn": dict(embedding_dim=16, num_filters=8, num_blocks=3),
    "textrnn": dict(embedding_dim=16, hidden_size=8, num_layers=2),
    "textrnn_att": dict(embedding_dim=16, hidden_size=8, num_layers=1),
    "textrcnn": dict(embedding_dim=16, hidden_size=8, latent_size=12),
}
assert set(TINY) == set(BASELINES)


def _read_thuc(path: Path, n: int | None = None, seed: int | None = None):
    rows = [line.rsplit("\t", 1) for line in path.read_text(encoding="utf-8").splitlines()]
    if seed is not None:
        rows = random.Random(seed).sample(rows, n)
    elif n is not None:
        rows = rows[:n]
    return [r[0] for r in rows], [int(r[1]) for r in rows]


@pytest.fixture(scope="module")
def titles():
    return _read_thuc(THUC_SAMPLE / "train.first300.txt", 300)[0]


@pytest.fixture(scope="module")
def id2label():
    names = (THUC_SAMPLE / "class.txt").read_text(encoding="utf-8").split()
    return dict(enumerate(names))


def _build(name, titles, id2label, **extra):
    torch.manual_seed(0)
    return build_baseline(name, {**TINY[name], **extra}, {"level": "char", "max_length": 32}, titles, id2label)


# ---------------------------------------------------------------------------------------------------------------
# shapes, gradients, padding
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_shapes_gradients_and_output(name, titles, id2label):
    model, tok = _build(name, titles, id2label)
    batch = tok(titles[:5], padding=True, truncation=True, return_tensors="pt")
    assert set(batch) == {"input_ids", "attention_mask"}
    labels = torch.tensor([0, 1, 2, 3, 9])
    if name == "fasttext":  # fastText's output matrix starts at zero, so the first backward reaches no embedding
        assert model.classifier.weight.abs().sum() == 0
        torch.nn.init.normal_(model.classifier.weight)
    out = model(**batch, token_type_ids=torch.zeros_like(batch["input_ids"]), labels=labels)  # ignored
    assert out.logits.shape == (5, 10)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    ref = torch.nn.functional.cross_entropy(out.logits, labels)
    assert torch.allclose(out.loss, ref)
    out.loss.backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: no gradient for {pname}"
            g = p.grad.coalesce().values() if p.grad.is_sparse else p.grad
            assert torch.isfinite(g).all(), pname
    emb = model.get_input_embeddings()
    assert emb.weight.grad is not None and emb.weight.grad.abs().sum() > 0
    # the padding row is never trained
    g = emb.weight.grad.to_dense() if emb.weight.grad.is_sparse else emb.weight.grad
    assert g[tok.pad_token_id].abs().sum() == 0
    # hidden features are exposed, tuples work
    hs = model(**batch, output_hidden_states=True).hidden_states
    assert hs is not None and hs[0].shape[0] == 5
    tup = model(**batch, labels=labels, return_dict=False)
    assert torch.equal(tup[1], model(**batch).logits) or model.training  # dropout in train mode


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_padding_does_not_change_logits(name, titles, id2label):
    model, tok = _build(name, titles, id2label)
    model.eval()
    texts = [titles[3], "短", titles[7] + titles[8]]
    with torch.no_grad():
        alone = [model(**tok([t], truncation=True, return_tensors="pt")).logits[0] for t in texts]
        padded = model(**tok(texts, padding="max_length", max_length=32, truncation=True, return_tensors="pt")).logits
        longest = model(**tok(texts, padding=True, truncation=True, return_tensors="pt")).logits
    for i in range(len(texts)):
        assert torch.allclose(alone[i], padded[i], atol=1e-5), (name, i)
        assert torch.allclose(alone[i], longest[i], atol=1e-5), (name, i)


@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_norm_and_embedding_dropout_options(name, norm, titles, id2label):
    model, tok = _build(name, titles, id2label, norm=norm, embedding_dropout=0.2, dropout=0.1)
    norms = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm))]
    assert norms and all(isinstance(m, torch.nn.BatchNorm1d if norm == "batch" else torch.nn.LayerNorm) for m in norms)
    batch = tok(titles[:4], padding=True, return_tensors="pt")
    out = model(**batch, labels=torch.tensor([0, 1, 2, 3]))
    out.loss.backward()
    assert all(p.grad is not None for m in norms for p in m.parameters())
    model.eval()
    with torch.no_grad():  # embedding dropout is off in eval mode: deterministic
        assert torch.equal(model(**batch).logits, model(**batch).logits)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_batchnorm_trains_on_a_batch_of_one_text(name, titles, id2label):
    """A last training batch of one text gives pooled features with one value per channel: BatchNorm uses its
    running statistics there (as in evaluation, not updating them) instead of torch's error ending the run."""
    model, tok = _build(name, titles, id2label, norm="batch", dropout=0.0)
    one = tok(titles[:1], padding=True, return_tensors="pt")
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    before = [m.running_mean.clone() for m in bns]
    model.train()
    out = model(**one, labels=torch.tensor([0]))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    model.eval()
    with torch.no_grad():
        ref = model(**one).logits
    if name in ("fasttext", "textrnn", "textrnn_att"):  # norm on pooled features only: running statistics
        assert all(m.running_mean.equal(b) for m, b in zip(bns, before))
        assert torch.allclose(out.logits.detach(), ref, atol=1e-6)
    else:  # per-position features of one text of several tokens: batch statistics, updated
        assert not all(m.running_mean.equal(b) for m, b in zip(bns, before))


def test_embedding_output_hook_changes_logits(titles, id2label):
    """What FGM/PGD do: perturb the output of get_input_embeddings() through a forward hook."""
    for name in ("textcnn", "fasttext", "textrnn"):
        model, tok = _build(name, titles, id2label)
        model.eval()
        torch.nn.init.normal_(model.classifier.weight)  # (fastText's starts at zero)
        batch = tok(titles[:3], padding=True, return_tensors="pt")
        with torch.no_grad():
            clean = model(**batch).logits
            handle = model.get_input_embeddings().register_forward_hook(lambda m, i, o: o + 0.5)
            perturbed = model(**batch).logits
            handle.remove()
            again = model(**batch).logits
        assert not torch.allclose(clean, perturbed), name
        assert torch.equal(clean, again), name


def test_inputs_embeds_matches_input_ids(titles, id2label):
    for name in ("textcnn", "dpcnn", "textrcnn"):
        model, tok = _build(name, titles, id2label)
        model.eval()
        b = tok(titles[:3], padding=True, return_tensors="pt")
        with torch.no_grad():
            a = model(**b).logits
            e = model(inputs_embeds=model.get_input_embeddings()(b["input_ids"]), attention_mask=b["attention_mask"]).logits
        assert torch.allclose(a, e, atol=1e-6)
    with pytest.raises(ValueError, match="inputs_embeds"):
        _build("fasttext", titles, id2label)[0](inputs_embeds=torch.zeros(1, 3, 16))


# ---------------------------------------------------------------------------------------------------------------
# Hub round trip
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_save_and_auto_from_pretrained_identical_logits(name, titles, id2label, tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    register_auto_classes()
    register_auto_classes()  # idempotent
    model, tok = _build(name, titles, id2label, freeze_embeddings=(name == "textcnn"))
    model.eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    cfg = AutoConfig.from_pretrained(tmp_path)
    assert type(cfg) is type(model.config) and cfg.model_type.startswith("nct-")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(loaded) is type(model)
    loaded.eval()
    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    texts = titles[10:16]
    with torch.no_grad():
        a = model(**tok(texts, padding=True, truncation=True, return_tensors="pt")).logits
        b = loaded(**tok2(texts, padding=True, truncation=True, return_tensors="pt")).logits
    assert torch.equal(a, b)
    assert loaded.config.id2label == id2label
    if name == "textcnn":
        assert not loaded.get_input_embeddings().weight.requires_grad


# ---------------------------------------------------------------------------------------------------------------
# tokenizers
# ---------------------------------------------------------------------------------------------------------------
def test_char_tokenizer_round_trip(titles, tmp_path):
    from transformers import AutoTokenizer

    tok = build_tokenizer(titles, level="char", max_length=32)
    assert tok.pad_token_id == 0 and tok.unk_token_id == 1
    text = titles[0]
    ids = tok(text)["input_ids"]
    assert len(ids) == len(text) and tok.unk_token_id not in ids
    assert tok.decode(ids) == text
    # unknown characters map to [UNK]; truncation to model_max_length
    assert tok("\u2603")["input_ids"] == [tok.unk_token_id]
    assert len(tok("字" * 100, truncation=True)["input_ids"]) == 32
    # deterministic vocabulary (frequency, then token string)
    assert build_tokenizer(titles, level="char").get_vocab() == tok.get_vocab()
    tok.save_pretrained(tmp_path)
    back = AutoTokenizer.from_pretrained(tmp_path)
    assert back.get_vocab() == tok.get_vocab()
    assert back(titles[:5])["input_ids"] == tok(titles[:5])["input_ids"]
    assert back.decode(back(text)["input_ids"]) == text
    assert back.model_max_length == 32


def test_word_tokenizer_and_vocab_limits():
    lines = SST2_DEV.read_text(encoding="utf-8").splitlines()[:200]
    texts = [ln.split(" ", 1)[1] for ln in lines]
    tok = build_tokenizer(texts, level="word", split="whitespace_split", max_length=64)
    assert tok.convert_ids_to_tokens(tok(texts[0])["input_ids"]) == texts[0].split()
    assert tok.decode(tok(texts[0])["input_ids"]) == texts[0]
    small = build_tokenizer(texts, level="word", split="whitespace_split", max_vocab_size=50)
    assert len(small) == 52
    assert "the" in small.get_vocab() and "," in small.get_vocab()  # the most frequent survive
    freq2 = build_tokenizer(texts, level="word", split="whitespace_split", min_freq=2)
    assert len(freq2) < len(tok)
    punct = build_tokenizer(["Hello, world!"], level="word", split="whitespace", lowercase=True)
    assert punct.convert_ids_to_tokens(punct("HELLO, World!")["input_ids"]) == ["hello", ",", "world", "!"]
    with pytest.raises(ValueError, match="level"):
        build_tokenizer(texts, level="bpe")
    with pytest.raises(ValueError, match="empty"):
        build_tokenizer(["", " "], level="word")


def test_auto_level_detection(titles, id2label):
    _, tok = build_baseline("fasttext", TINY["fasttext"], {}, titles, id2label)
    assert len(tok(titles[0])["input_ids"]) == len(titles[0])  # char level for Chinese
    en = ["a stirring , funny film", "a dull film"]
    _, tok_en = build_baseline("fasttext", TINY["fasttext"], {}, en, {0: "neg", 1: "pos"})
    assert tok_en.convert_ids_to_tokens(tok_en("a dull film")["input_ids"]) == ["a", "dull", "film"]


# ---------------------------------------------------------------------------------------------------------------
# fastText features
# ---------------------------------------------------------------------------------------------------------------
def test_hashed_ngrams_match_the_polynomial_hash():
    ids = torch.tensor([[5, 7, 9, 0], [3, 4, 0, 0]])
    mask = ids != 0
    h, valid = hashed_ngram_ids(ids, mask, 2, 1009)
    mult = 116049371 % 1009
    assert h[0, 0].item() == ((5 % 1009) * mult + 7) % 1009
    assert h[0, 1].item() == ((7 % 1009) * mult + 9) % 1009
    assert valid.tolist() == [[True, True, False], [True, False, False]]
    h3, v3 = hashed_ngram_ids(ids, mask, 3, 1009)
    assert h3[0, 0].item() == ((((5 * mult) + 7) % 1009) * mult + 9) % 1009
    assert v3.tolist() == [[True, False], [False, False]]
    assert ((h >= 0) & (h < 1009)).all()
    feats = fasttext_features(ids, mask, vocab_size=10, word_ngrams=3, bucket=1009)
    assert feats.shape == (2, 4 + 3 + 2)
    assert feats[1].tolist()[:4] == [3, 4, 0, 0]
    assert (feats[0, 4:6] == h[0, :2] + 10).all() and feats[0, 6] == 0  # invalid bigram -> padding id
    # large ids do not overflow
    big = torch.tensor([[2**40, 2**41, 2**42]])
    hb, _ = hashed_ngram_ids(big, None, 3, 2_000_003)
    assert 0 <= hb.item() < 2_000_003


def test_fasttext_sparse_gradients_and_adagrad(titles, id2label):
    model, tok = _build("fasttext", titles, id2label)
    assert model.config.sparse and isinstance(model.get_input_embeddings(), torch.nn.EmbeddingBag)
    assert preferred_optimizer(model)["name"] == "adagrad" and model.preferred_optimizer() == "adagrad"
    batch = tok(titles[:4], padding=True, return_tensors="pt")
    bag = model.bag_ids(batch["input_ids"], batch["attention_mask"])
    touched = set(bag[bag != 0].tolist())
    torch.nn.init.normal_(model.classifier.weight)  # fastText's output matrix starts at zero: no signal yet
    out = model(**batch, labels=torch.tensor([1, 2, 3, 4]))
    out.loss.backward()
    grad = model.get_input_embeddings().weight.grad
    assert grad.is_sparse
    rows = set(grad.coalesce().indices()[0].tolist())
    assert rows == touched  # exactly the unigram + hashed n-gram rows of the batch, no padding row
    before = model.get_input_embeddings().weight.detach().clone()
    opt = create_optimizer(model)
    assert isinstance(opt, torch.optim.Adagrad)
    opt.step()
    after = model.get_input_embeddings().weight.detach()
    changed = set(torch.nonzero((after - before).abs().sum(1) > 0).flatten().tolist())
    assert changed and changed <= touched
    with pytest.raises(ValueError, match="weight decay"):
        create_optimizer(model, weight_decay=0.01)
    dense = FastTextForSequenceClassification(FastTextConfig(vocab_size=50, sparse=False, num_labels=2))
    assert preferred_optimizer(dense)["name"] == "adam"
    # the official fastText starts from a zero output matrix
    fresh, _ = _build("fasttext", titles, id2label)
    assert fresh.classifier.weight.abs().sum() == 0


# ---------------------------------------------------------------------------------------------------------------
# pretrained vectors
# ---------------------------------------------------------------------------------------------------------------
def _tiny_npz(tmp_path, tokens, dim=4, seed=0):
    mat = np.random.default_rng(seed).normal(size=(len(tokens), dim))
    np.savez(tmp_path / "emb.npz", embeddings=mat)
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return tmp_path / "emb.npz", tmp_path / "vocab.txt", mat


def test_npz_vectors_with_vocabulary_mismatch(tmp_path):
    texts = ["中华 女子", "中华中华", "学院"]
    tok = build_tokenizer(texts, level="char")
    # the file has a space token (as THUCNews vocab.txt line 0), <UNK>, most chars, one char not in our vocab,
    # and misses "院"
    file_tokens = [" ", "中", "华", "女", "子", "学", "龙", "<UNK>", "<PAD>"]
    npz, vocab, mat = _tiny_npz(tmp_path, file_tokens)
    emb, rep = load_pretrained_vectors(tok, npz, vocab, texts=texts)
    v = tok.get_vocab()
    assert emb.shape == (len(tok), 4)
    for t in [" ", "中", "华", "女", "子", "学"]:
        assert torch.allclose(emb[v[t]], torch.tensor(mat[file_tokens.index(t)], dtype=torch.float32))
    assert rep.found == 6 and rep.missing == 1 and rep.missing_examples == ["院"]
    assert rep.type_coverage == pytest.approx(6 / 7)
    n_tokens = sum(len(t) for t in texts)
    assert rep.token_coverage == pytest.approx((n_tokens - 1) / n_tokens)
    assert rep.unk_from_file and torch.allclose(emb[tok.unk_token_id], torch.tensor(mat[7], dtype=torch.float32))
    assert emb[tok.pad_token_id].abs().sum() == 0
    assert "missing" in str(rep) and rep.to_dict()["dim"] == 4
    # a misaligned vocab file is refused with both file names
    (tmp_path / "short.txt").write_text("中\n华\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"emb\.npz.*9 rows.*short\.txt.*2 lines"):
        load_pretrained_vectors(tok, npz, tmp_path / "short.txt")
    np.savez(tmp_path / "two.npz", a=mat, b=mat)
    with pytest.raises(ValueError, match=r"no array.*\['a', 'b'\]"):
        read_vectors(tmp_path / "two.npz", vocab)
    with pytest.raises(ValueError, match="needs a vocab file"):
        read_vectors(npz)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        read_vectors(tmp_path / "nope.npz", vocab)


def test_word2vec_glove_text_and_binary(tmp_path):
    texts = ["The cat sat", "the dog sat"]
    tok = build_tokenizer(texts, level="word", split="whitespace_split")
    w2v = tmp_path / "vec.txt"
    w2v.write_text("3 2\nthe 0.1 0.2\ncat 1 2\nsat -1 0.5\n", encoding="utf-8")
    emb, rep = load_pretrained_vectors(tok, w2v, texts=texts)
    v = tok.get_vocab()
    assert torch.allclose(emb[v["The"]], torch.tensor([0.1, 0.2]))  # lowercase fallback
    assert rep.found == 3 and rep.found_lowercase == 1 and rep.missing == 1 and rep.missing_examples == ["dog"]
    assert rep.token_coverage == pytest.approx(5 / 6)
    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2\nnew york 3 4\n", encoding="utf-8")
    vecs, dim, n = read_vectors(glove)
    assert dim == 2 and n == 2 and np.allclose(vecs["new york"], [3, 4])
    bad = tmp_path / "bad.txt"
    bad.write_text("the 0.1 0.2\ncat 0.3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt, line 2"):
        read_vectors(bad)
    nan = tmp_path / "nan.txt"
    nan.write_text("the 0.1 x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1 \('the'\): not a number"):
        read_vectors(nan)
    binf = tmp_path / "vec.bin"
    with open(binf, "wb") as f:
        f.write(b"2 3\n")
        for word, vec in (("cat", [1.0, 2.0, 3.0]), ("sat", [4.0, 5.0, 6.0])):
            f.write(word.encode() + b" " + struct.pack("<3f", *vec) + b"\n")
    vecs, dim, n = read_vectors(binf)
    assert dim == 3 and n == 2 and np.allclose(vecs["sat"], [4, 5, 6])


def test_build_baseline_loads_real_thucnews_vectors(titles, id2label):
    THUC = shared_data("thucnews")
    model, tok = build_baseline(
        "textcnn",
        {"filter_sizes": [2, 3], "num_filters": 4, "freeze_embeddings": True,
         "pretrained_vectors": str(THUC / "embedding_Tencent.npz"), "vectors_vocab": str(THUC / "vocab.txt")},
        {"level": "char", "max_length": 32},
        titles,
        id2label,
    )
    assert model.config.embedding_dim == 200
    rep = model.vector_report
    # every character of the 45k-title prefix is in the official vocab (SOURCE.txt: OOV rate 0.0)
    assert rep.missing == 0 and rep.token_coverage == 1.0 and rep.unk_from_file
    assert model.config.pretrained_vectors["type_coverage"] == 1.0
    vocab_lines = (THUC / "vocab.txt").read_text(encoding="utf-8").split("\n")
    mat = np.load(THUC / "embedding_Tencent.npz")["embeddings"]
    w = model.get_input_embeddings().weight
    ch = titles[0][0]
    assert torch.allclose(w[tok.convert_tokens_to_ids(ch)], torch.tensor(mat[vocab_lines.index(ch)], dtype=torch.float32))
    assert not w.requires_grad
    with pytest.raises(ValueError, match="dimension 200"):
        build_baseline("textcnn", {"embedding_dim": 50, "pretrained_vectors": str(THUC / "embedding_Tencent.npz"),
                                   "vectors_vocab": str(THUC / "vocab.txt")}, {}, titles, id2label)


def test_multichannel_textcnn(titles, id2label, tmp_path):
    npz, vocab, _ = _tiny_npz(tmp_path, sorted(set("".join(titles)))[:50], dim=8)
    model, tok = build_baseline("textcnn", {"multichannel": True, "num_filters": 4, "pretrained_vectors": str(npz),
                                            "vectors_vocab": str(vocab)}, {"level": "char"}, titles, id2label)
    assert torch.equal(model.static_embeddings.weight, model.get_input_embeddings().weight)
    assert not model.static_embeddings.weight.requires_grad and model.get_input_embeddings().weight.requires_grad
    out = model(**tok(titles[:2], padding=True, return_tensors="pt"), labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert model.static_embeddings.weight.grad is None


# ---------------------------------------------------------------------------------------------------------------
# builder and recipe wiring
# ---------------------------------------------------------------------------------------------------------------
def test_build_baseline_errors(titles, id2label):
    with pytest.raises(ValueError, match="unknown baseline 'bert'.*textcnn"):
        build_baseline("bert", {}, {}, titles, id2label)
    with pytest.raises(ValueError, match=r"unknown model.kwargs \['filter_size'\]; did you mean 'filter_sizes'"):
        build_baseline("textcnn", {"filter_size": 3}, {}, titles, id2label)
    with pytest.raises(ValueError, match=r"unknown model.kwargs.tokenizer keys \['lower'\]"):
        build_baseline("textcnn", {}, {"lower": True}, titles, id2label)
    with pytest.raises(ValueError, match="train_texts is empty"):
        build_baseline("textcnn", {}, {}, [], id2label)
    with pytest.raises(ValueError, match="norm must be one of"):
        build_baseline("dpcnn", {"norm": "group"}, {}, titles, id2label)
    m, _ = build_baseline("bilstm", {"embedding_dim": 8, "hidden_size": 4}, {}, titles, id2label)  # alias
    assert m.config.model_type == "nct-textrnn"
    att, _ = build_baseline("textrnn_att", {"embedding_dim": 8, "hidden_size": 4}, {}, titles, id2label)
    assert att.config.pooling == "attention"
    dp, _ = build_baseline("dpcnn", {"embedding_dim": 8, "num_filters": 4}, {"max_length": 32}, titles, id2label)
    assert dp.config.num_blocks == 4  # 32 -> 16 -> 8 -> 4 -> 2, as the reference code
    # vector keys set to null (how a command line drops the vectors a recipe names) are no keys
    plain, _ = build_baseline("textrnn", {"embedding_dim": 8, "hidden_size": 4, "pretrained_vectors": None,
                                          "vectors_vocab": None}, {}, titles, id2label)
    assert plain.config.pretrained_vectors is None and plain.vector_report is None
    with pytest.raises(ValueError, match="vectors_vocab/vectors_npz_key given without pretrained_vectors"):
        build_baseline("textrnn", {"embedding_dim": 8, "vectors_vocab": "vocab.txt"}, {}, titles, id2label)


def test_recipe_architecture_builder(titles, id2label):
    from nlp_cv_tricks.config import ModelConfig
    from nlp_cv_tricks.models.factory import build_classifier

    register_architectures()
    cfg = ModelConfig(name="textcnn", kwargs={"embedding_dim": 8, "num_filters": 4, "tokenizer": {"level": "char"},
                                              "max_length": 24},
                      config_overrides={"dropout": 0.3})
    model, tok = build_classifier(cfg, id2label, titles)
    assert model.config.dropout == 0.3 and tok.model_max_length == 24
    assert model.config.num_labels == 10


# ---------------------------------------------------------------------------------------------------------------
# a tiny real training run
# ---------------------------------------------------------------------------------------------------------------
# small models that still learn from 800 titles in 6 epochs (Kim-like U(-0.25, 0.25)-scale random embeddings)
TRAIN = {
    "textcnn": dict(embedding_dim=32, num_filters=32, embedding_init_std=0.3, dropout=0.2),
    "fasttext": dict(embedding_dim=32, word_ngrams=3, bucket=5003),
    "dpcnn": dict(embedding_dim=32, num_filters=16, num_blocks=2, embedding_init_std=0.1, dropout=0.2),
    "textrnn": dict(embedding_dim=32, hidden_size=32, num_layers=1),
    "textrnn_att": dict(embedding_dim=32, hidden_size=32, num_layers=1),
    "textrcnn": dict(embedding_dim=32, hidden_size=32, latent_size=32),
}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_tiny_thucnews_training_beats_chance(name, id2label):
    """800 THUCNews titles, 6 epochs, scored on 300 dev titles. 10 balanced classes: chance is 10%, and a
    chance-level classifier exceeds 20% on 300 titles with probability < 1e-8 (binomial), so > 20% is clearly
    above chance. (When written: about 0.4-0.7 depending on the model.)"""
    THUC = shared_data("thucnews")
    tr_x, tr_y = _read_thuc(THUC / "train.txt", 800, seed=0)
    dv_x, dv_y = _read_thuc(THUC / "dev.txt", 300, seed=1)
    torch.manual_seed(0)
    model, tok = build_baseline(name, TRAIN[name], {"level": "char", "max_length": 24}, tr_x, id2label)
    torch.manual_seed(0)
    X = tok(tr_x, padding=True, truncation=True, max_length=24, return_tensors="pt")
    Y = torch.tensor(tr_y)
    opt = create_optimizer(model, lr=0.5 if name == "fasttext" else 3e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(6):
        perm = torch.randperm(len(Y), generator=g)
        for i in range(0, len(Y), 32):
            b = perm[i: i + 32]
            loss = model(input_ids=X["input_ids"][b], attention_mask=X["attention_mask"][b], labels=Y[b]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(**tok(dv_x, padding=True, truncation=True, max_length=24, return_tensors="pt")).logits.argmax(-1)
    acc = (pred == torch.tensor(dv_y)).float().mean().item()
    assert acc > 0.2, f"{name}: dev accuracy {acc:.3f} is not clearly above chance (0.10)"


# ---------------------------------------------------------------------------------------------------------------
# Kim 2014 faithfulness: max-norm constraint, Adadelta, uniform init, recipes
# ---------------------------------------------------------------------------------------------------------------
def test_max_norm_constraint_holds_after_every_step(titles, id2label):
    """Kim's L2 max-norm: after each optimizer step every class row of the classifier has norm <= s, rows inside
    the ball are untouched, and without the constraint the same training leaves the ball (so the check binds)."""
    THUC = shared_data("thucnews")
    tr_x, tr_y = _read_thuc(THUC / "train.txt", 200, seed=3)
    s = 0.3

    def train(max_norm, attach):
        torch.manual_seed(0)
        model, tok = build_baseline("textcnn", {**TINY["textcnn"], "max_norm": max_norm, "dropout": 0.5},
                                    {"level": "char", "max_length": 24}, tr_x, id2label)
        X = tok(tr_x, padding=True, truncation=True, max_length=24, return_tensors="pt")
        Y = torch.tensor(tr_y)
        opt = create_optimizer(model, name="adadelta")
        assert isinstance(opt, torch.optim.Adadelta) and opt.defaults["rho"] == 0.95 and opt.defaults["lr"] == 1.0
        if attach:
            model.attach_weight_constraints(opt)
        norms = []
        model.train()
        for i in range(0, 200, 50):  # Kim's mini-batch of 50
            loss = model(input_ids=X["input_ids"][i:i + 50], attention_mask=X["attention_mask"][i:i + 50],
                         labels=Y[i:i + 50]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            norms.append(model.classifier.weight.detach().norm(dim=1))
        return model, norms

    model, norms = train(s, attach=True)
    assert model.config.max_norm == s
    for n in norms:
        assert (n <= s + 1e-5).all(), n
    assert any((n > s - 1e-4).any() for n in norms)  # the constraint was active (some row sat on the sphere)
    _, free = train(None, attach=False)
    assert any((n > s + 1e-3).any() for n in free)
    # the method alone: rows outside the ball are projected onto it, rows inside are unchanged
    w = model.classifier.weight
    with torch.no_grad():
        w.copy_(torch.randn_like(w))
        w[0].mul_(0.01 / w[0].norm())
    before = w.detach().clone()
    assert model.apply_weight_constraints() is True
    after = w.detach()
    assert torch.allclose(after[0], before[0])
    assert torch.allclose(after.norm(dim=1)[1:], torch.full((w.shape[0] - 1,), s), atol=1e-5)
    assert torch.allclose(after[1] / after[1].norm(), before[1] / before[1].norm(), atol=1e-6)  # direction kept
    # off by default; invalid values are rejected
    plain, _ = _build("textcnn", titles, id2label)
    assert plain.config.max_norm is None and plain.apply_weight_constraints() is False
    with pytest.raises(ValueError, match="max_norm"):
        _build("textcnn", titles, id2label, max_norm=0)


def test_uniform_embedding_init(titles, id2label):
    model, _ = _build("textcnn", titles, id2label, embedding_init_uniform=0.25)
    w = model.get_input_embeddings().weight.detach()
    assert w[0].abs().sum() == 0  # [PAD]
    assert w[1:].abs().max() <= 0.25 and w[1:].abs().max() > 0.24
    assert abs(w[1:].std().item() - 0.25 / 3 ** 0.5) < 0.01  # U(-a, a) has std a / sqrt(3)


@pytest.mark.parametrize("name,n_train,n_dev,n_labels", [("trec", 4906, 546, 6), ("mr", 9595, 1067, 2),
                                                          ("sst2", 6920, 872, 2)])
def test_kim_recipes_build_the_paper_setting(name, n_train, n_dev, n_labels, tmp_path):
    """The Kim 2014 recipes load their data (latin-1 files, seeded stratified dev split where there is no dev
    file) and build TextCNN-rand with the paper's settings; the optimizer is Adadelta(rho 0.95)."""
    from nlp_cv_tricks import load_recipe
    from nlp_cv_tricks.engine.trainer import build_optimizer
    from nlp_cv_tricks.runner import build_trainer

    shared_data("kim2014")
    root = Path(__file__).parents[1]
    recipe = load_recipe(root / "recipes" / f"{name}_textcnn.yaml",
                         ["output.report_to=none", "train.progress_bar=false"])
    cwd = os.getcwd()
    os.chdir(root)
    try:
        trainer = build_trainer(recipe, output_dir=str(tmp_path / name))
    finally:
        os.chdir(cwd)
    assert (len(trainer.train_dataset), len(trainer.eval_dataset)) == (n_train, n_dev)
    cfg = trainer.model.config
    assert cfg.num_labels == n_labels and cfg.max_norm == 1.5 and cfg.dropout == 0.5  # Kim's s=3, see recipe
    assert cfg.filter_sizes == [3, 4, 5] and cfg.num_filters == 100 and cfg.embedding_dim == 300
    assert cfg.embedding_init_uniform == 0.25
    assert recipe.train.batch_size == 50 and recipe.train.epochs == 25
    opt = build_optimizer(trainer.model, recipe.train)
    assert isinstance(opt, torch.optim.Adadelta) and opt.defaults["rho"] == 0.95 and opt.defaults["lr"] == 1.0
    if name != "sst2":
        labels = np.asarray(trainer.eval_dataset["labels"][:])
        counts = np.bincount(labels, minlength=n_labels)
        assert (counts > 0).all()  # stratified: every class in the dev split


# ---------------------------------------------------------------------------------------------------------------
# FastText speed path: flat bags, no padding_idx, SGD
# ---------------------------------------------------------------------------------------------------------------
def test_fasttext_flat_bags_equal_padded_features():
    from nlp_cv_tricks.models.text_baselines.layers_fasttext import fasttext_bags

    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        length = int(torch.randint(1, 12, (1,), generator=g))
        ids = torch.randint(2, 50, (7, length), generator=g)
        am = (torch.rand(7, length, generator=g) > 0.3).long()
        for n in (1, 2, 3, 4):
            padded = fasttext_features(ids, am, 50, n, 97, 0)
            flat, offsets = fasttext_bags(ids, am, 50, n, 97)
            ends = offsets.tolist()[1:] + [len(flat)]
            assert [flat[a:b].tolist() for a, b in zip(offsets.tolist(), ends)] == \
                [row[row != 0].tolist() for row in padded]


def test_fasttext_sgd_updates_only_touched_rows(titles, id2label):
    """Plain SGD (fastText's optimizer) on the sparse bag: only the batch's rows move, [PAD] stays zero, and the
    bag has no padding_idx (padding never reaches it)."""
    model, tok = _build("fasttext", titles, id2label)
    assert model.get_input_embeddings().padding_idx is None
    batch = tok(titles[:6], padding=True, return_tensors="pt")
    touched = set(model.bag_ids(batch["input_ids"], batch["attention_mask"]).flatten().tolist()) - {0}
    torch.nn.init.normal_(model.classifier.weight)
    opt = create_optimizer(model, name="sgd", lr=5.0)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.0
    before = model.get_input_embeddings().weight.detach().clone()
    model(**batch, labels=torch.arange(6)).loss.backward()
    opt.step()
    after = model.get_input_embeddings().weight.detach()
    changed = set(torch.nonzero((after - before).abs().sum(1) > 0).flatten().tolist())
    assert changed == touched
    assert after[tok.pad_token_id].abs().sum() == 0
    with pytest.raises(ValueError, match="sparse"):
        create_optimizer(model, name="adam")


def test_trainer_applies_max_norm_after_every_step(tmp_path, monkeypatch):
    """TextCNN with max_norm through the trainer: after fit, every class row of the classifier has norm <= s."""
    from nlp_cv_tricks import load_recipe
    from nlp_cv_tricks.runner import build_trainer

    s = 0.05
    shared_data("kim2014/TREC.train.all")
    monkeypatch.chdir(ROOT)  # the recipe's data path is relative to the repository root
    recipe = load_recipe(ROOT / "recipes" / "trec_textcnn.yaml",
                         ["output.report_to=none", "train.progress_bar=false", "train.max_steps=6",
                          "train.eval_each_epoch=false", "output.save_best=false", f"model.kwargs.max_norm={s}",
                          "model.kwargs.embedding_dim=16", "model.kwargs.num_filters=8"])
    trainer = build_trainer(recipe, output_dir=str(tmp_path / "run"))
    trainer.fit()
    w = trainer.accelerator.unwrap_model(trainer.model).classifier.weight.detach()
    assert trainer.model.config.max_norm == s
    assert (w.norm(dim=1) <= s + 1e-6).all(), w.norm(dim=1)


def test_sgd_momentum_refused_with_sparse_embeddings():
    from nlp_cv_tricks.config import TrainConfig
    from nlp_cv_tricks.engine.trainer import build_optimizer

    model = torch.nn.Sequential(torch.nn.EmbeddingBag(10, 4, sparse=True), torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="train.momentum must be 0"):
        build_optimizer(model, TrainConfig(optimizer="sgd", momentum=0.9, weight_decay=0.0))
    assert isinstance(build_optimizer(model, TrainConfig(optimizer="sgd", momentum=0.0, weight_decay=0.0)),
                      torch.optim.SGD)
    # dense-only optimizers and weight decay are refused before the first step, not by torch at it
    for name in ("adamw", "adam", "adadelta"):
        with pytest.raises(ValueError, match=f"train.optimizer='{name}' cannot update sparse gradients"):
            build_optimizer(model, TrainConfig(optimizer=name, weight_decay=0.0))
    # weight decay leaves the sparse embeddings out (torch cannot decay sparse gradients)
    opt = build_optimizer(model, TrainConfig(optimizer="adagrad", weight_decay=0.01))
    decayed = [p for g in opt.param_groups if g["weight_decay"] for p in g["params"]]
    assert all(p is not model[0].weight for p in decayed)


def _tiny_textcnn_with_vectors(tmp_path):
    """A word-level TextCNN whose embeddings come from a 4-d vector file ``v.txt`` (good / bad)."""
    vec = tmp_path / "v.txt"
    vec.write_text("good 0.5 0.5 0.5 0.5\nbad -0.5 -0.5 -0.5 -0.5\n")
    return build_baseline("textcnn", {"embedding_dim": 4, "num_filters": 3, "filter_sizes": [2],
                                      "pretrained_vectors": str(vec)},
                          {"level": "word"}, ["good film", "bad film"] * 5, {0: "neg", 1: "pos"})


def test_init_all_keeps_pretrained_vectors(tmp_path):
    from nlp_cv_tricks.tricks.init import Init

    model, tok = _tiny_textcnn_with_vectors(tmp_path)
    before = model.embeddings.weight.detach().clone()
    conv = model.convs[0].weight.detach().clone()
    Init(target="all", scheme="xavier_normal").apply(model)
    assert torch.equal(model.embeddings.weight, before)  # the vectors stay
    assert not torch.equal(model.convs[0].weight, conv)  # everything else is re-initialised


def test_vector_files_with_a_wrong_dimension_or_encoding_are_reported(tmp_path, caplog):
    from nlp_cv_tricks.data.vocab import read_vectors

    long = tmp_path / "long.txt"
    long.write_text("the 0.1 0.2 0.3 0.4\ngood -0.12 0.1 0.2 0.3 0.4\n")
    with caplog.at_level("WARNING"):
        vecs, dim, n = read_vectors(str(long))
    assert dim == 4 and "1 line(s) have more than 4 numbers (e.g. line 2)" in caplog.text
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 0.1 0.2\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.txt: not UTF-8 text after line 0"):
        read_vectors(str(latin))


def test_model_card_of_a_baseline_trained_from_pretrained_vectors(tmp_path):
    from nlp_cv_tricks.hub import model_card

    model, tok = _tiny_textcnn_with_vectors(tmp_path)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    card = model_card(tmp_path / "m", "me/tc")
    assert "architecture `nct-textcnn`, trained from scratch, word vectors initialised from `v.txt`" in card
    assert "biases of its training data and of its pretrained word vectors" in card and "base model" not in card


def test_fasttext_bag_starts_with_fasttexts_uniform_init(titles, id2label):
    """The bag table is filled once, by fastText's U(-1/dim, 1/dim) (not left as torch.empty's memory)."""
    model, tok = _build("fasttext", titles, id2label)
    w = model.get_input_embeddings().weight.detach()
    bound = 1.0 / model.config.embedding_dim
    assert torch.isfinite(w).all() and w.abs().max() <= bound
    assert w.abs().mean() > bound / 4  # uniform, not zeros: the mean of |U(-b, b)| is b / 2
    assert w[tok.pad_token_id].abs().sum() == 0
    assert (model.classifier.weight == 0).all()  # and the output matrix at zero, as fastText


def test_frozen_fasttext_bag_takes_dense_optimizers(titles, id2label):
    """With the bag frozen there are no sparse gradients: Adam and weight decay are fine (as in the trainer)."""
    model, _ = _build("fasttext", titles, id2label, freeze_embeddings=True)
    assert preferred_optimizer(model)["name"] == "adam"
    assert isinstance(create_optimizer(model, name="adam", weight_decay=0.01), torch.optim.Adam)
