"""Tensor batches (data.tensor_batches): the pre-padded path returns exactly the collator's batches, falls back where
it cannot, and trains to the same weights."""

import datasets
import pytest
import torch
from transformers import AutoTokenizer, DataCollatorWithPadding

from nlp_cv_tricks.data.batches import PaddedTokenDataset, identity_collate, tensor_batch_reason
from nlp_cv_tricks.engine.trainer import Trainer
from nlp_cv_tricks.runner import build_trainer

from conftest import tiny_recipe, toy_sentences


@pytest.fixture()
def tok_ds(tiny_bert):
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    rows = toy_sentences(60, seed=3)
    texts = [t for _, t in rows]
    pairs = [t.split()[0] for t in texts]
    enc = tok(texts, pairs, truncation=True, max_length=10, return_token_type_ids=True)  # pairs: token_type_ids with 1s, varied lengths
    ds = datasets.Dataset.from_dict({**enc, "labels": [y for y, _ in rows]})
    return tok, ds


def _equal(a: dict, b: dict):
    assert set(a) == set(b), (set(a), set(b))
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("multiple", [None, 8])
def test_batches_equal_the_collator(tok_ds, multiple):
    tok, ds = tok_ds
    lens = [len(x) for x in ds["input_ids"][:]]
    assert len(set(lens)) > 3 and max(lens) == 10 and "token_type_ids" in ds.column_names
    collator = DataCollatorWithPadding(tok, pad_to_multiple_of=multiple)
    pds = PaddedTokenDataset(ds, tok.pad_token_id, tok.pad_token_type_id, pad_to_multiple_of=multiple)
    g = torch.Generator().manual_seed(0)
    for size in (1, 5, 16, 60):
        idx = torch.randperm(len(ds), generator=g)[:size].tolist()
        _equal(pds.__getitems__(idx), collator([ds[i] for i in idx]))
    for i in (0, 7):  # single rows as the source rows
        row = pds[i]
        assert row["input_ids"].tolist() == ds[i]["input_ids"] and int(row["labels"]) == ds[i]["labels"]


def test_index_mapped_dataset_and_dataloader(tok_ds):
    tok, ds = tok_ds
    sub = ds.shuffle(seed=1).select(range(20))  # an indices mapping over the Arrow table
    pds = PaddedTokenDataset(sub, tok.pad_token_id)
    dl = torch.utils.data.DataLoader(pds, batch_size=6, shuffle=False, collate_fn=identity_collate)
    ref = torch.utils.data.DataLoader(sub, batch_size=6, shuffle=False, collate_fn=DataCollatorWithPadding(tok))
    n = 0
    for a, b in zip(dl, ref):
        _equal(a, b)
        n += 1
    assert n == 4


def test_reasons_to_keep_the_collator(tok_ds):
    tok, ds = tok_ds
    assert tensor_batch_reason(ds, tok) is None
    assert "['text']" in tensor_batch_reason(ds.add_column("text", ["x"] * len(ds)), tok)
    assert "no input_ids" in tensor_batch_reason(ds.remove_columns("input_ids"), tok)
    fixed = datasets.Dataset.from_dict({"input_ids": [[1, 2], [3, 4]], "labels": [0, 1]},
                                       features=datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int64"), length=2),
                                                                   "labels": datasets.Value("int64")}))
    assert "not a variable-length list" in tensor_batch_reason(fixed, tok)
    tok.padding_side = "left"
    assert tensor_batch_reason(ds, tok) == "left padding"
    tok.padding_side = "right"
    assert "too large" in tensor_batch_reason(ds, tok, max_elements=10)
    masked = ds.map(lambda r: {"attention_mask": [1] * (len(r["input_ids"]) - 1) + [0]})
    with pytest.raises(ValueError, match="attention_mask"):
        PaddedTokenDataset(masked, tok.pad_token_id)


def _loader_dataset(trainer):
    return trainer._train_dataloader().dataset


def test_trainer_uses_tensor_batches_and_trains_to_the_same_weights(tiny_bert, toy_data, tmp_path):
    common = ["train.epochs=2", "output.save_best=false", "train.eval_each_epoch=true"]
    runs = {}
    for name, flag in (("tensor", "true"), ("collator", "false")):
        t = build_trainer(tiny_recipe(tiny_bert, toy_data, tmp_path / name, f"data.tensor_batches={flag}",
                                            *common))
        kind = type(_loader_dataset(t)).__name__
        assert kind == ("PaddedTokenDataset" if flag == "true" else "Dataset")
        res = t.fit()
        runs[name] = (t.accelerator.unwrap_model(t.model).state_dict(), res.metrics["eval/loss"])
    (wa, la), (wb, lb) = runs["tensor"], runs["collator"]
    assert la == pytest.approx(lb, abs=1e-6)
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6), k


def test_a_custom_collator_is_kept(tiny_bert, toy_data, tmp_path):
    r = tiny_recipe(tiny_bert, toy_data, tmp_path / "c")
    t = build_trainer(r)
    custom = DataCollatorWithPadding(t.tokenizer)
    t2 = Trainer(r, model=t.model, tokenizer=t.tokenizer, train_dataset=t.train_dataset,
                 eval_dataset=t.eval_dataset, collate_fn=custom, accelerator=t.accelerator, output_dir=t.output_dir)
    dl = t2._train_dataloader()
    assert dl.collate_fn is custom and type(dl.dataset).__name__ == "Dataset"


def test_group_by_length_batches_equal_the_collator(tiny_bert, toy_data, tmp_path):
    loaders = {}
    for flag in ("true", "false"):
        r = tiny_recipe(tiny_bert, toy_data, tmp_path / flag, "data.group_by_length=true", f"data.tensor_batches={flag}")
        t = build_trainer(r)
        loaders[flag] = list(t._train_dataloader())
    assert len(loaders["true"]) == len(loaders["false"]) > 3
    widths = set()
    for a, b in zip(loaders["true"], loaders["false"]):
        _equal(a, b)
        widths.add(a["input_ids"].shape[1])
    assert len(widths) > 1  # batches are cut to their own longest row
