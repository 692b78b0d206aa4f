"""Long text: Longformer conversion, truncation strategies, chunk-and-pool, Longformer inputs, Hyperpartisan."""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import (  # noqa: E402
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertModel,
    BertTokenizer,
    LongformerForSequenceClassification,
    LongformerModel,
    RobertaConfig,
    RobertaModel,
    RobertaTokenizer,
)

from nlp_cv_tricks.data.long import (  # noqa: E402
    LongformerCollator,
    SpecialTokenTemplate,
    global_attention_mask,
    load_hyperpartisan,
    make_truncation_fn,
    pad_to_window_multiple,
    read_hyperpartisan,
    truncate_ids,
)
from nlp_cv_tricks.models.modeling_chunk_pool import chunk_spans  # noqa: E402
from nlp_cv_tricks.cli.convert_long import add_cli  # noqa: E402
from nlp_cv_tricks.models.long import (  # noqa: E402
    ChunkPoolConfig,
    ChunkPoolForSequenceClassification,
    convert_to_longformer,
    register_auto_classes,
    resolve_model_path,
)

from conftest import SHARED_DATA, shared_data  # noqa: E402

torch.set_num_threads(1)
HP = SHARED_DATA / "hyperpartisan"  # each test that reads it asks shared_data first (skips without it)
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(700)]


# ---------------------------------------------------------------------------------------------------------------
# fixtures: a tiny BERT and a tiny RoBERTa checkpoint on disk, with tokenizers
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bert_tokenizer(tmp_path_factory):
    d = tmp_path_factory.mktemp("vocab")
    (d / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    return BertTokenizer(vocab=str(d / "vocab.txt"))


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory, bert_tokenizer):
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=64, type_vocab_size=2, pad_token_id=0,
    )
    model = BertModel(cfg)
    with torch.no_grad():  # make token types matter
        model.embeddings.token_type_embeddings.weight.normal_(0, 0.5)
    d = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(d)
    bert_tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_roberta_dir(tmp_path_factory):
    torch.manual_seed(1)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab["\u0120" + ch] = len(vocab)
    tok = RobertaTokenizer(vocab=vocab, merges=[])
    cfg = RobertaConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=34, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    d = tmp_path_factory.mktemp("tiny_roberta")
    RobertaModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _ids(n, seed=0, low=5, high=len(WORDS)):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (n,), generator=g)


# ---------------------------------------------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------------------------------------------
def test_bert_conversion_matches_source_within_original_limit(tiny_bert_dir, tmp_path):
    out = tmp_path / "long"
    convert_to_longformer(str(tiny_bert_dir), max_length=256, attention_window=16, out_dir=out)
    source = BertModel.from_pretrained(tiny_bert_dir).eval()
    # a window covering the whole input (one-sided 64 >= 63) makes windowed attention equal to full attention
    long = AutoModel.from_pretrained(out, attention_window=128).eval()
    assert isinstance(long, LongformerModel)
    # batch with right padding and a second segment (token types 1)
    ids = torch.full((2, 64), 0)
    ids[0] = torch.cat([torch.tensor([2]), _ids(62, 1), torch.tensor([3])])
    ids[1, :40] = torch.cat([torch.tensor([2]), _ids(38, 2), torch.tensor([3])])
    mask = (ids != 0).long()
    types = torch.zeros_like(ids)
    types[0, 30:] = 1
    types[1, 20:40] = 1
    with torch.no_grad():
        ref = source(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        got = long(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        gm = global_attention_mask(ids, mask)
        got_global = long(input_ids=ids, attention_mask=mask, token_type_ids=types, global_attention_mask=gm)
    real = mask.bool()
    assert torch.allclose(got[real], ref[real], atol=1e-5)
    assert torch.allclose(got_global.last_hidden_state[real], ref[real], atol=1e-5)
    # the pooler is carried over (BERT's pooler = dense + tanh on the first token)
    assert torch.allclose(got_global.pooler_output, source(input_ids=ids, attention_mask=mask,
                                                           token_type_ids=types).pooler_output, atol=1e-5)


def test_bert_conversion_weights_positions_and_tokenizer(tiny_bert_dir, tmp_path):
    out = tmp_path / "long"
    convert_to_longformer(str(tiny_bert_dir), max_length=150, attention_window=16, out_dir=out)
    src = BertModel.from_pretrained(tiny_bert_dir)
    long = LongformerModel.from_pretrained(out)
    cfg = long.config
    assert cfg.model_type == "longformer" and cfg.attention_window == [16, 16]
    assert cfg.max_position_embeddings == 150 + 1  # BERT pad id 0 -> Longformer positions start at 1
    sp, lp = src.embeddings.position_embeddings.weight, long.embeddings.position_embeddings.weight
    assert torch.equal(lp[1:65], sp)  # copied...
    assert torch.equal(lp[65:129], sp)  # ...and tiled
    assert torch.equal(lp[129:151], sp[:22])  # last partial copy
    assert torch.equal(long.embeddings.token_type_embeddings.weight, src.embeddings.token_type_embeddings.weight)
    for i in range(2):
        s = src.encoder.layer[i].attention.self
        a = long.encoder.layer[i].attention.self
        for name in ("query", "key", "value"):
            assert torch.equal(getattr(a, name).weight, getattr(s, name).weight)
            assert torch.equal(getattr(a, f"{name}_global").weight, getattr(s, name).weight)
            assert torch.equal(getattr(a, f"{name}_global").bias, getattr(s, name).bias)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.model_max_length == 150
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 150
    assert "no further pre-training" in (out / "README.md").read_text()
    assert (out / "model.safetensors").is_file()
    # loads as a sequence classifier (fresh head)
    clf = LongformerForSequenceClassification.from_pretrained(out, num_labels=3)
    assert torch.equal(clf.longformer.embeddings.position_embeddings.weight, lp)
    clf2 = AutoModelForSequenceClassification.from_pretrained(out, num_labels=3)
    assert isinstance(clf2, LongformerForSequenceClassification)
    # refuses to write into a non-empty directory
    with pytest.raises(FileExistsError, match="not empty"):
        convert_to_longformer(str(tiny_bert_dir), max_length=150, attention_window=16, out_dir=out)


def test_roberta_conversion_handles_position_offset(tiny_roberta_dir, tmp_path):
    out = tmp_path / "long"
    convert_to_longformer(str(tiny_roberta_dir), max_length=96, attention_window=8, out_dir=out)
    src = RobertaModel.from_pretrained(tiny_roberta_dir).eval()
    long = AutoModel.from_pretrained(out, attention_window=64).eval()
    assert long.config.max_position_embeddings == 96 + 2
    sp, lp = src.embeddings.position_embeddings.weight, long.embeddings.position_embeddings.weight
    assert torch.equal(lp[:2], sp[:2]) and torch.equal(lp[2:34], sp[2:34]) and torch.equal(lp[34:66], sp[2:34])
    ids = torch.cat([torch.tensor([0]), torch.randint(5, 57, (30,), generator=torch.Generator().manual_seed(3)),
                     torch.tensor([2])]).unsqueeze(0)  # 32 tokens = RoBERTa's limit of 34 - 2
    with torch.no_grad():
        ref = src(input_ids=ids).last_hidden_state
        got = long(input_ids=ids, global_attention_mask=global_attention_mask(ids)).last_hidden_state
    assert torch.allclose(got, ref, atol=1e-5)


def test_conversion_rejects_bad_input(tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match="even"):
        convert_to_longformer(str(tiny_bert_dir), max_length=128, attention_window=15)
    with pytest.raises(ValueError, match="2 layers"):
        convert_to_longformer(str(tiny_bert_dir), max_length=128, attention_window=[8, 8, 8])
    d = tmp_path / "gpt"
    from transformers import GPT2Config, GPT2Model

    GPT2Model(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=30, n_positions=16)).save_pretrained(d)
    with pytest.raises(ValueError, match="model_type 'gpt2' is not supported"):
        convert_to_longformer(str(d), max_length=64)


def test_windowed_attention_beyond_original_limit_forward_backward(tiny_bert_dir):
    model, _ = convert_to_longformer(str(tiny_bert_dir), max_length=256, attention_window=16)
    model.train()
    ids = torch.cat([torch.tensor([2]), _ids(198, 5), torch.tensor([3])]).unsqueeze(0)  # 200 > 64 positions
    out = model(input_ids=ids, global_attention_mask=global_attention_mask(ids))
    assert out.last_hidden_state.shape == (1, 200, 32)
    (out.last_hidden_state.pow(2).mean() + out.pooler_output.sum()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    pos_grad = model.embeddings.position_embeddings.weight.grad
    assert pos_grad[150:200].abs().sum() > 0  # positions past the source's 64 are used and trained
    assert pos_grad[202:].abs().sum() == 0  # positions past the input are not


def _grads(model, ids, labels):
    model.zero_grad()
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    return out.loss.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _enable_checkpointing(model):
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable()


def test_gradient_checkpointing_gives_same_gradients(tiny_bert_dir, tmp_path):
    out = tmp_path / "long"
    convert_to_longformer(str(tiny_bert_dir), max_length=256, attention_window=16, out_dir=out)
    kw = dict(num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    plain = LongformerForSequenceClassification.from_pretrained(out, **kw).train()
    torch.manual_seed(0)
    ckpt = LongformerForSequenceClassification.from_pretrained(out, **kw).train()
    _enable_checkpointing(ckpt)
    assert ckpt.longformer.encoder.layer[0].gradient_checkpointing
    ids = torch.cat([torch.tensor([2]), _ids(150, 7), torch.tensor([3])]).unsqueeze(0).repeat(2, 1)
    labels = torch.tensor([0, 1])
    l1, g1 = _grads(plain, ids, labels)
    l2, g2 = _grads(ckpt, ids, labels)
    assert torch.allclose(l1, l2, atol=1e-6)
    assert g1.keys() == g2.keys() and len(g1) > 10
    for name in g1:
        assert torch.allclose(g1[name], g2[name], atol=1e-6, rtol=1e-4), name


def test_tiny_training_run_converted_longformer(tiny_bert_dir, tmp_path):
    """Label = whether marker tokens occur in the second half of a 120-token document (past BERT's 64 positions)."""
    out = tmp_path / "long"
    convert_to_longformer(str(tiny_bert_dir), max_length=128, attention_window=16, out_dir=out)
    torch.manual_seed(0)
    model = LongformerForSequenceClassification.from_pretrained(out, num_labels=2).train()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(6, len(WORDS), (16, 120), generator=g)
    labels = torch.arange(16) % 2
    ids[labels.bool(), 70:118:2] = 5  # the marker token, only beyond the source's position limit
    ids[:, 0], ids[:, -1] = 2, 3
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gm = global_attention_mask(ids)
    losses = []
    for _ in range(40):
        loss = model(input_ids=ids, global_attention_mask=gm, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses


def test_cli_convert_long(tiny_bert_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="nlp-cv-tricks")
    sub = parser.add_subparsers(dest="command")
    add_cli(sub)
    out = tmp_path / "cli_out"
    args = parser.parse_args(["convert-long", str(tiny_bert_dir), "--max-length", "200", "--window", "8,16",
                              "--out", str(out)])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["attention_window"] == [8, 16] and report["max_position_embeddings"] == 201
    assert AutoConfig.from_pretrained(out).model_type == "longformer"


def test_real_minilm_conversion_equivalence(tmp_path):
    out = tmp_path / "minilm_long"
    convert_to_longformer("minilm-l6", max_length=4096, attention_window=256, out_dir=out)
    src_dir = resolve_model_path("minilm-l6")
    source = AutoModel.from_pretrained(src_dir).eval()
    long = AutoModel.from_pretrained(out, attention_window=512).eval()  # one-sided 256 covers 200 tokens
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.model_max_length == 4096
    texts = ["Longformer reads long documents with windowed attention. " * 20, "A short sentence."]
    enc = tok(texts, padding=True, truncation=True, max_length=200, return_tensors="pt")
    with torch.no_grad():
        ref = source(**enc).last_hidden_state
        got = long(**enc, global_attention_mask=global_attention_mask(enc["input_ids"], enc["attention_mask"]))
    real = enc["attention_mask"].bool()
    assert torch.allclose(got.last_hidden_state[real], ref[real], atol=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# truncation strategies
# ---------------------------------------------------------------------------------------------------------------
def test_truncate_ids_exact_tokens():
    ids = list(range(1000))
    assert truncate_ids(ids, 510, "head") == list(range(510))
    assert truncate_ids(ids, 510, "tail") == list(range(490, 1000))
    ht = truncate_ids(ids, 510, "head+tail", head_tokens=128)
    assert ht == list(range(128)) + list(range(1000 - 382, 1000)) and len(ht) == 510
    assert truncate_ids(ids[:300], 510, "head+tail") == ids[:300]  # fits: untouched
    assert truncate_ids(ids, 10, "head+tail", head_tokens=10) == list(range(10))
    assert truncate_ids(ids, 10, "head+tail", head_tokens=0) == list(range(990, 1000))
    with pytest.raises(ValueError, match="unknown truncation strategy"):
        truncate_ids(ids, 10, "middle")


def test_truncation_fns_in_batched_map(bert_tokenizer):
    from datasets import Dataset

    docs = [" ".join(f"w{i}" for i in range(n)) for n in (600, 30, 62, 63)]
    ds = Dataset.from_dict({"text": docs, "label": [0, 1, 0, 1]})
    expected_word_ids = lambda n: [WORDS.index(f"w{i}") for i in range(n)]  # noqa: E731
    for strategy in ("head", "tail", "head+tail"):
        out = ds.map(make_truncation_fn(bert_tokenizer, strategy, max_length=64, head_tokens=20), batched=True,
                     batch_size=3)
        assert out["num_tokens"] == [600, 30, 62, 63]
        assert out["num_truncated"] == [538, 0, 0, 1]
        full = expected_word_ids(600)
        keep = {"head": full[:62], "tail": full[-62:], "head+tail": full[:20] + full[-42:]}[strategy]
        assert out[0]["input_ids"] == [2] + keep + [3]
        assert out[1]["input_ids"] == [2] + expected_word_ids(30) + [3]
        assert out[2]["input_ids"] == [2] + expected_word_ids(62) + [3] and len(out[2]["input_ids"]) == 64
        assert all(len(x) <= 64 for x in out["input_ids"])
        assert out[0]["attention_mask"] == [1] * 64 and out[0]["token_type_ids"] == [0] * 64
    # same result as the tokenizer's own truncation for "head"
    ref = bert_tokenizer(docs, truncation=True, max_length=64)["input_ids"]
    assert ds.map(make_truncation_fn(bert_tokenizer, "head", 64), batched=True)["input_ids"] == ref
    with pytest.raises(ValueError, match="head_tokens=62 keeps no tail within max_length=64"):
        make_truncation_fn(bert_tokenizer, "head+tail", 64, head_tokens=62)


def test_truncation_with_question_keeps_question(bert_tokenizer):
    fn = make_truncation_fn(bert_tokenizer, "head+tail", max_length=32, head_tokens=5, question_column="q")
    batch = {"text": [" ".join(f"w{i}" for i in range(100))], "q": ["w600 w601 w602"]}
    out = fn(batch)
    q = [WORDS.index(w) for w in ("w600", "w601", "w602")]
    doc = [WORDS.index(f"w{i}") for i in range(100)]
    budget = 32 - 3 - 3
    assert out["input_ids"][0] == [2] + q + [3] + doc[:5] + doc[-(budget - 5):] + [3]
    assert out["token_type_ids"][0] == [0] * 5 + [1] * (budget + 1)
    assert out["num_truncated"] == [100 - budget]
    with pytest.raises(KeyError, match="text column 'body'"):
        make_truncation_fn(bert_tokenizer, "head", 32, text_column="body")({"text": ["w1"]})


def test_special_template_roberta(tiny_roberta_dir):
    tok = AutoTokenizer.from_pretrained(tiny_roberta_dir)
    t = SpecialTokenTemplate.from_tokenizer(tok)
    assert (t.prefix, t.suffix, t.middle) == ((0,), (2,), (2, 2))


# ---------------------------------------------------------------------------------------------------------------
# chunking and chunk-and-pool
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,size,overlap", [(1000, 510, 128), (510, 510, 128), (511, 510, 128), (0, 10, 3),
                                            (37, 10, 3), (100, 10, 0)])
def test_chunk_spans_cover_and_overlap(n, size, overlap):
    spans = chunk_spans(n, size, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(0 < e - s <= size for s, e in spans) or n == 0
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert e0 - s1 == overlap  # consecutive windows share exactly `overlap` tokens
        assert e0 - s0 == size  # only the last one may be shorter
    covered = set()
    for s, e in spans:
        covered.update(range(s, e))
    assert covered == set(range(n))


def _tiny_chunk_pool(pooling="mean", **kw):
    enc = BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=64)
    cfg = ChunkPoolConfig(encoder=enc.to_dict(), chunk_size=16, chunk_overlap=4, pooling=pooling, num_labels=3,
                          cls_token_id=2, sep_token_id=3, pad_token_id=0, **kw)
    torch.manual_seed(0)
    return ChunkPoolForSequenceClassification(cfg)


def test_chunk_pool_token_accounting():
    model = _tiny_chunk_pool()
    doc = _ids(40, 11, low=6)
    ids = torch.zeros((2, 42), dtype=torch.long)
    ids[0] = torch.cat([torch.tensor([2]), doc, torch.tensor([3])])
    ids[1, :12] = torch.cat([torch.tensor([2]), doc[:10], torch.tensor([3])])
    chunks, mask, counts = model.make_chunks(ids, (ids != 0).long())
    assert counts == [4, 1]  # 40 tokens, 14 per chunk, step 10: [0,14) [10,24) [20,34) [30,40)
    rebuilt = []
    for i in range(4):
        row = chunks[i][mask[i].bool()]
        assert row[0] == 2 and row[-1] == 3
        content = row[1:-1].tolist()
        assert content == doc[i * 10: i * 10 + 14].tolist()
        rebuilt += content if i == 0 else content[4:]  # drop the 4 overlapping tokens
    assert rebuilt == doc.tolist()  # nothing dropped, nothing duplicated beyond the overlap
    assert chunks[4][mask[4].bool()].tolist() == ids[1, :12].tolist()
    with pytest.raises(ValueError, match="expected \\[CLS\\]"):
        model.make_chunks(doc.unsqueeze(0))
    limited = _tiny_chunk_pool(max_chunks=2)
    with pytest.raises(ValueError, match="max_chunks=2"):
        limited.make_chunks(ids[:1])


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_chunk_pool_save_load_round_trip(pooling, tmp_path):
    register_auto_classes()
    model = _tiny_chunk_pool(pooling, chunk_representation="mean" if pooling == "max" else "cls").eval()
    ids = torch.cat([torch.tensor([2]), _ids(40, 12, low=6), torch.tensor([3])]).unsqueeze(0)
    ids = torch.cat([ids, torch.cat([ids[:, :9], torch.tensor([[3]]), torch.zeros((1, 32), dtype=torch.long)], 1)])
    mask = (ids != 0).long()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    cfg = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(cfg, ChunkPoolConfig) and cfg.pooling == pooling and cfg.encoder.model_type == "bert"
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, ChunkPoolForSequenceClassification)
    with torch.no_grad():
        got = loaded(input_ids=ids, attention_mask=mask)
    assert torch.allclose(got.logits, ref.logits, atol=1e-6)
    if pooling == "attention":
        w = got.attentions[0]
        assert torch.allclose(w.sum(-1), torch.ones(2)) and w[1, 1:].sum() == 0  # padded chunks get no weight


def test_chunk_pool_rejects_bad_config():
    with pytest.raises(ValueError, match="pooling"):
        _tiny_chunk_pool("sum")
    enc = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, max_position_embeddings=64)
    with pytest.raises(ValueError, match="exceeds the encoder's 64 positions"):
        ChunkPoolConfig(encoder=enc.to_dict(), chunk_size=128, chunk_overlap=8)
    with pytest.raises(ValueError, match="chunk_overlap"):
        ChunkPoolConfig(encoder=enc.to_dict(), chunk_size=16, chunk_overlap=14)


def test_chunk_pool_trains_and_checkpointing_matches():
    model = _tiny_chunk_pool("attention", classifier_dropout=0.0)
    model.config.encoder.hidden_dropout_prob = 0.0
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(6, len(WORDS), (12, 50), generator=g)
    labels = torch.arange(12) % 3
    ids[:, 41] = torch.tensor([600, 601, 602])[labels]  # class marker late in the document (4th chunk)
    ids[:, 0], ids[:, -1] = 2, 3
    model.train()
    l1, g1 = _grads(model, ids, labels)
    _enable_checkpointing(model)
    assert model.encoder.encoder.layer[0].gradient_checkpointing
    l2, g2 = _grads(model, ids, labels)
    assert torch.allclose(l1, l2, atol=1e-6)
    for name in g1:
        assert torch.allclose(g1[name], g2[name], atol=1e-6, rtol=1e-4), name
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------------------------------------------------------
# Longformer input helpers
# ---------------------------------------------------------------------------------------------------------------
def test_global_attention_mask_cls_and_question():
    ids = torch.tensor([[2, 10, 11, 3, 20, 21, 22, 3, 0, 0], [2, 10, 3, 20, 3, 0, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    assert global_attention_mask(ids, mask).tolist() == [[1] + [0] * 9, [1] + [0] * 9]
    q = global_attention_mask(ids, mask, sep_token_id=3, on_question=True)
    assert q.tolist() == [[1, 1, 1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]]
    with pytest.raises(ValueError, match="no separator"):
        global_attention_mask(torch.tensor([[2, 5, 6]]), sep_token_id=3, on_question=True)


def test_pad_to_window_and_collator(bert_tokenizer):
    feats = {"input_ids": torch.ones((2, 10), dtype=torch.long), "attention_mask": torch.ones((2, 10)),
             "labels": torch.tensor([0, 1])}
    out = pad_to_window_multiple(feats, 8, pad_token_id=0)
    assert out["input_ids"].shape == (2, 16) and out["input_ids"][:, 10:].eq(0).all()
    assert out["attention_mask"][:, 10:].eq(0).all() and out["labels"].tolist() == [0, 1]
    fn = make_truncation_fn(bert_tokenizer, "head", 64)
    rows = fn({"text": ["w1 w2 w3", " ".join(f"w{i}" for i in range(20))]})
    examples = [{k: rows[k][i] for k in rows} | {"labels": i} for i in range(2)]
    batch = LongformerCollator(bert_tokenizer, attention_window=16)(examples)
    assert batch["input_ids"].shape == (2, 32)  # 22 tokens -> next multiple of 16
    assert batch["global_attention_mask"][:, 0].tolist() == [1, 1] and batch["global_attention_mask"].sum() == 2
    assert "num_tokens" not in batch and batch["labels"].tolist() == [0, 1]


# ---------------------------------------------------------------------------------------------------------------
# Hyperpartisan
# ---------------------------------------------------------------------------------------------------------------
def test_hyperpartisan_counts_match_source():
    records = read_hyperpartisan(shared_data("hyperpartisan"))
    assert len(records) == 645
    assert [r["id"] for r in records] == [f"{i:07d}" for i in range(645)]
    assert sum(r["label"] for r in records) == 238
    assert all(r["text"] and "<p>" not in r["text"] for r in records)
    assert records[0]["title"] == "Kucinich: Reclaiming the money power"
    words = sorted(len(r["text"].split()) for r in records)
    assert 540 <= sum(words) / len(words) <= 590 and words[-1] > 5000  # SOURCE.txt: mean 565, max 5,537


def test_hyperpartisan_stratified_split():
    ds = load_hyperpartisan(shared_data("hyperpartisan"), seed=13)
    assert [ds[s].num_rows for s in ("train", "validation", "test")] == [516, 64, 65]
    ids = [set(ds[s]["id"]) for s in ("train", "validation", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert len(ids[0] | ids[1] | ids[2]) == 645
    for s in ds:
        assert abs(sum(ds[s]["label"]) / ds[s].num_rows - 238 / 645) < 0.02  # stratified
    assert ds["train"].features["label"].names == ["false", "true"]
    again, other = load_hyperpartisan(HP, seed=13), load_hyperpartisan(HP, seed=14)
    assert again["test"]["id"] == ds["test"]["id"] and other["test"]["id"] != ds["test"]["id"]


def test_hyperpartisan_paper_split_overlaps_and_warns():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_hyperpartisan(shared_data("hyperpartisan"), split="paper")
    assert any("overlaps" in str(w.message) for w in caught)
    assert [ds[s].num_rows for s in ("train", "validation", "test")] == [516, 64, 65]
    assert [sum(ds[s]["label"]) for s in ("train", "validation", "test")] == [187, 26, 27]
    tr, dv, te = (set(ds[s]["id"]) for s in ("train", "validation", "test"))
    assert len(tr & te) == 51 and len(dv & te) == 7 and len(tr | dv | te) == 587


def test_hyperpartisan_bad_input_names_file_and_id(tmp_path):
    (tmp_path / "articles-training-byarticle-20181122.xml").write_text(
        '<articles><article id="1" title="t"><p>x</p></article><article id="2" title="u"><p>y</p></article></articles>'
    )
    gt = tmp_path / "ground-truth-training-byarticle-20181122.xml"
    gt.write_text('<articles><article id="1" hyperpartisan="true"/></articles>')
    with pytest.raises(ValueError, match=r"articles-training-byarticle-20181122.xml: article id=2 has no label"):
        read_hyperpartisan(tmp_path)
    gt.write_text('<articles><article id="1" hyperpartisan="maybe"/><article id="2" hyperpartisan="false"/></articles>')
    with pytest.raises(ValueError, match="id=1: hyperpartisan='maybe'"):
        read_hyperpartisan(tmp_path)
    with pytest.raises(FileNotFoundError, match="Hyperpartisan file not found"):
        read_hyperpartisan(tmp_path / "nope")


# ---------------------------------------------------------------------------------------------------------------
# recipes and the long-text-classification task through the trainer
# ---------------------------------------------------------------------------------------------------------------
RECIPES = Path(__file__).parents[1] / "recipes"


@pytest.mark.parametrize("name", ["head", "headtail", "chunkpool", "longformer"])
def test_long_recipes_load(name):
    from nlp_cv_tricks.config import load_recipe
    from nlp_cv_tricks.tasks.long_text import LongTextOptions

    r = load_recipe(RECIPES / f"long_hyperpartisan_{name}.yaml")
    assert r.task == "long-text-classification"
    opts = LongTextOptions.from_recipe(r)
    assert opts.strategy == {"head": "head", "headtail": "head+tail", "chunkpool": "chunk_pool",
                                "longformer": "longformer"}[name]
    with pytest.raises(ValueError, match="did you mean 'pooling'"):
        LongTextOptions.from_kwargs({"poolng": "max"})


def test_long_text_options_are_typed_and_checked():
    from nlp_cv_tricks.config import RecipeError
    from nlp_cv_tricks.tasks.long_text import LongTextOptions

    opts = LongTextOptions.from_kwargs({"strategy": "chunk_pool", "chunk_size": 256, "chunk_overlap": 64})
    assert (opts.strategy, opts.chunk_size, opts.chunk_overlap, opts.pooling) == ("chunk_pool", 256, 64, "mean")
    assert LongTextOptions.from_kwargs(None) == LongTextOptions()
    for kwargs, expected in [
        ({"strategy": "middle"}, "model.kwargs.strategy='middle'; expected one of"),
        ({"chunk_representation": "max"}, "model.kwargs.chunk_representation='max'"),
        ({"chunk_size": 128, "chunk_overlap": 126}, "model.kwargs.chunk_overlap=126 must be smaller than"),
        ({"attention_window": 255}, "model.kwargs.attention_window=255 must be even"),
        ({"head_tokens": "128"}, "model.kwargs.head_tokens='128'; expected an integer >= 0"),
        ({"encoder_batch_size": 0}, "model.kwargs.encoder_batch_size=0; expected an integer >= 1 or null"),
        ({"global_on_question": "yes"}, "model.kwargs.global_on_question='yes'; expected true or false"),
        ({"hyperpartisan_split": "random"}, "model.kwargs.hyperpartisan_split='random'"),
    ]:
        with pytest.raises(RecipeError) as e:
            LongTextOptions.from_kwargs(kwargs)
        assert expected in str(e.value), str(e.value)


@pytest.mark.parametrize("strategy", ["head+tail", "chunk_pool", "longformer"])
def test_long_task_trains_through_trainer(strategy, tiny_bert_dir, tmp_path):
    from nlp_cv_tricks.config import recipe_from_dict
    from nlp_cv_tricks.runner import build_trainer
    register_auto_classes()
    max_length = 64 if strategy == "head+tail" else 160
    kwargs = {"strategy": strategy, "head_tokens": 16, "chunk_size": 32, "chunk_overlap": 8, "pooling": "attention",
              "attention_window": 16}
    recipe = recipe_from_dict({
        "name": "t", "task": "long-text-classification",
        "data": {"train_file": str(shared_data("hyperpartisan")), "max_length": max_length, "max_train_samples": 8, "max_eval_samples": 4},
        "model": {"name": str(tiny_bert_dir), "kwargs": kwargs, "gradient_checkpointing": strategy == "longformer"},
        "train": {"max_steps": 2, "batch_size": 4, "eval_batch_size": 4, "progress_bar": False, "cpu": True,
                  "metric": "f1_macro"},
        "output": {"dir": str(tmp_path / "run"), "report_to": "none"},
    })
    trainer = build_trainer(recipe, output_dir=str(tmp_path / "run"))
    assert len(trainer.train_dataset) == 8 and set(trainer.train_dataset.column_names) >= {"input_ids", "labels"}
    assert max(len(x) for x in trainer.train_dataset["input_ids"]) == max_length  # long articles are cut there
    result = trainer.fit()
    assert result.global_step == 2 and "eval/f1_macro" in result.metrics
    loaded = AutoModelForSequenceClassification.from_pretrained(result.model_dir)
    expected = {"head+tail": "BertForSequenceClassification", "chunk_pool": "ChunkPoolForSequenceClassification",
                "longformer": "LongformerForSequenceClassification"}[strategy]
    assert type(loaded).__name__ == expected


def test_eval_and_predict_prepare_inputs_as_the_long_task_trained(tiny_bert_dir, tmp_path):
    """A head+tail model is evaluated on head+tail inputs (not head-truncated ones) by ``eval``/``predict``."""
    from nlp_cv_tricks.config import recipe_from_dict
    from nlp_cv_tricks.data.long import make_truncation_fn
    from nlp_cv_tricks.runner import build_trainer
    from nlp_cv_tricks.inference import evaluate_file, predict_file, saved_long_options
    register_auto_classes()
    recipe = recipe_from_dict({
        "name": "t", "task": "long-text-classification",
        "data": {"train_file": str(shared_data("hyperpartisan")), "max_length": 48, "max_train_samples": 8, "max_eval_samples": 4},
        "model": {"name": str(tiny_bert_dir), "kwargs": {"strategy": "head+tail", "head_tokens": 16}},
        "train": {"max_steps": 1, "batch_size": 4, "progress_bar": False, "cpu": True},
        "output": {"dir": str(tmp_path / "run"), "report_to": "none"},
    })
    result = build_trainer(recipe, output_dir=str(tmp_path / "run")).fit()
    assert saved_long_options(result.model_dir).strategy == "head+tail"
    names = AutoModelForSequenceClassification.from_pretrained(result.model_dir).config.id2label
    words = WORDS[5:]
    rng = torch.Generator().manual_seed(0)  # documents of in-vocabulary words, longer than max_length
    docs = [{"text": " ".join(words[j] for j in torch.randint(len(words), (120,), generator=rng).tolist()),
             "label": i % 2} for i in range(3)]
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"text": d["text"], "label": names[d["label"]]}) + "\n" for d in docs))
    import datasets

    from nlp_cv_tricks.inference import load_model_dir, predict_logits

    model, tok, cfg = load_model_dir(result.model_dir)
    model.eval()
    with torch.no_grad():  # a freshly initialised head barely varies with the input: amplify it
        model.classifier.weight.mul_(1000)
    got, _ = predict_logits(model, tok, datasets.Dataset.from_list([{"text": d["text"]} for d in docs]), cfg,
                            long_opts=saved_long_options(result.model_dir))
    expect = {}
    for strategy in ("head+tail", "head"):
        enc = make_truncation_fn(tok, strategy, max_length=48, head_tokens=16)({"text": [d["text"] for d in docs]})
        with torch.no_grad():
            expect[strategy] = torch.cat([model(input_ids=torch.tensor([ids])).logits for ids in enc["input_ids"]])
    assert (expect["head+tail"] - expect["head"]).abs().max() > 1e-4  # the two inputs really differ
    assert torch.allclose(torch.from_numpy(got), expect["head+tail"], atol=1e-5)
    assert evaluate_file(result.model_dir, str(data))["n"] == 3
    assert predict_file(result.model_dir, str(data), str(tmp_path / "pred.jsonl")) == 3
