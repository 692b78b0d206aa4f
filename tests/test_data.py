import json

import pytest

from nlp_cv_tricks.config import DataConfig
from nlp_cv_tricks.data.text import DataError, LengthGroupedSampler, load_text_classification

from conftest import shared_data


def cfg(**kw):
    return DataConfig(**kw)


def test_shared_formats_load():
    thu = load_text_classification(cfg(train_file=str(shared_data("thucnews/dev.txt")), format="thucnews",
                                       label_names_file=str(shared_data("thucnews/class.txt"))))
    assert len(thu.train) == 10000 and len(thu.label_map) == 10
    assert thu.label_map.names[0] == "finance"
    kim = load_text_classification(cfg(train_file=str(shared_data("kim2014/stsa.binary.train")),
                                       dev_file=str(shared_data("kim2014/stsa.binary.dev")), format="kim2014"))
    assert (len(kim.train), len(kim.dev)) == (6920, 872)
    assert sorted(set(kim.dev["labels"])) == [0, 1]
    tsv = load_text_classification(cfg(train_file=str(shared_data("chnsenticorp/dev.tsv")), text_column="text_a"))
    assert len(tsv.train) == 1200 and tsv.label_map.raw == ["0", "1"]


def test_csv_jsonl_parquet_and_pairs(tmp_path):
    import pandas as pd

    rows = [{"q": "a b", "p": "c", "y": "yes"}, {"q": "d", "p": "e f", "y": "no"}, {"q": "g", "p": "h", "y": "yes"}]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pd.DataFrame(rows).to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.jsonl", "t.parquet"):
        s = load_text_classification(cfg(train_file=str(tmp_path / name), text_column="q", text_pair_column="p",
                                         label_column="y"))
        assert s.label_map.names == ["no", "yes"] and s.train["labels"] == [1, 0, 1], name


def test_missing_column(tmp_path):
    (tmp_path / "a.csv").write_text("sentence,label\nhi,1\nho,0\n")
    with pytest.raises(DataError, match=r"a.csv: missing column 'text' \(data.text_column\); columns found: sentence, label"):
        load_text_classification(cfg(train_file=str(tmp_path / "a.csv")))


def test_empty_text_names_row(tmp_path):
    (tmp_path / "a.csv").write_text('text,label\nhi,1\n"  ",0\nok,0\n')
    with pytest.raises(DataError, match=r"a.csv: row 2 \(line 3\): empty or non-text value in column 'text'"):
        load_text_classification(cfg(train_file=str(tmp_path / "a.csv")))


def test_dev_label_unseen_in_train(tmp_path):
    (tmp_path / "train.txt").write_text("0 good\n1 bad\n")
    (tmp_path / "dev.txt").write_text("0 fine\n2 odd\n")
    with pytest.raises(DataError, match=r"dev.txt: line 2: label '2' never seen in the training file .*train.txt"):
        load_text_classification(cfg(train_file=str(tmp_path / "train.txt"), dev_file=str(tmp_path / "dev.txt"),
                                     format="kim2014"))


def test_malformed_lines_and_files(tmp_path):
    (tmp_path / "bad.txt").write_text("0 good\nnolabel here\n")
    with pytest.raises(DataError, match=r"bad.txt: line 2: expected '<integer label> <text>'"):
        load_text_classification(cfg(train_file=str(tmp_path / "bad.txt"), format="kim2014"))
    (tmp_path / "thu.txt").write_text("标题一\t3\n标题二 没有标签\n")
    with pytest.raises(DataError, match=r"thu.txt: line 2: expected '<text><TAB><integer label>'"):
        load_text_classification(cfg(train_file=str(tmp_path / "thu.txt"), format="thucnews"))
    (tmp_path / "broken.jsonl").write_text('{"text": "a", "label": 1}\n{"text": "b", "label"\n')
    with pytest.raises(DataError, match=r"broken.jsonl: line 2: not valid JSON"):
        load_text_classification(cfg(train_file=str(tmp_path / "broken.jsonl")))
    (tmp_path / "latin.txt").write_bytes("0 caf\xe9 good\n1 bad\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt: line 1: not valid utf-8 text .*data.encoding"):
        load_text_classification(cfg(train_file=str(tmp_path / "latin.txt"), format="kim2014"))
    ok = load_text_classification(cfg(train_file=str(tmp_path / "latin.txt"), format="kim2014", encoding="latin-1"))
    assert ok.train["text"][0] == "café good"
    with pytest.raises(DataError, match=r"data file '.*nope.csv' does not exist"):
        load_text_classification(cfg(train_file=str(tmp_path / "nope.csv")))
    with pytest.raises(DataError, match=r"cannot tell the format"):
        load_text_classification(cfg(train_file=str(tmp_path / "bad.txt")))


def test_single_label_rejected(tmp_path):
    (tmp_path / "t.txt").write_text("1 a\n1 b\n")
    with pytest.raises(DataError, match="only one label value"):
        load_text_classification(cfg(train_file=str(tmp_path / "t.txt"), format="kim2014"))


def test_length_grouped_sampler_is_a_deterministic_permutation():
    lengths = [(i * 37) % 50 + 1 for i in range(200)]
    s = LengthGroupedSampler(lengths, batch_size=8, seed=3, mega=4)
    s.set_epoch(1)
    a = list(s)
    s.set_epoch(1)
    assert a == list(s) and sorted(a) == list(range(200))
    s.set_epoch(2)
    assert list(s) != a
    # inside each mega-batch after the first swap, lengths are sorted descending: far less padding than random
    batches = [a[i:i + 8] for i in range(0, 200, 8)]
    pad = sum(max(lengths[j] for j in b) * len(b) - sum(lengths[j] for j in b) for b in batches)
    import random
    r = list(range(200)); random.Random(0).shuffle(r)
    rb = [r[i:i + 8] for i in range(0, 200, 8)]
    pad_random = sum(max(lengths[j] for j in b) * len(b) - sum(lengths[j] for j in b) for b in rb)
    assert pad < pad_random / 3


def test_dev_fraction_is_a_seeded_stratified_partition():
    from collections import Counter

    mr = str(shared_data("kim2014/rt-polarity.all"))
    a = load_text_classification(cfg(train_file=mr, format="kim2014", encoding="latin-1", dev_fraction=0.1, split_seed=7))
    b = load_text_classification(cfg(train_file=mr, format="kim2014", encoding="latin-1", dev_fraction=0.1, split_seed=7))
    c = load_text_classification(cfg(train_file=mr, format="kim2014", encoding="latin-1", dev_fraction=0.1, split_seed=8))
    assert len(a.train) + len(a.dev) == 10662 and len(a.dev) == 1067
    assert list(a.dev["text"]) == list(b.dev["text"]) != list(c.dev["text"])  # seeded
    full = load_text_classification(cfg(train_file=mr, format="kim2014", encoding="latin-1")).train["text"]
    assert Counter(list(a.train["text"]) + list(a.dev["text"])) == Counter(list(full))  # a partition: every row exactly once
    tr, dv = Counter(a.train["labels"]), Counter(a.dev["labels"])
    assert abs(dv[1] / len(a.dev) - tr[1] / len(a.train)) < 0.002  # stratified (MR is 50/50)
    assert "seed 7" in a.sources["dev"]
    with pytest.raises(DataError, match="dev split exists"):
        load_text_classification(cfg(train_file=mr, dev_file=mr, format="kim2014", encoding="latin-1", dev_fraction=0.1))



def test_encodings_bom_and_multiline_rows_are_reported_where_they_are(tmp_path):
    """Non-UTF-8 bytes name the line and data.encoding (also for JSON Lines, where data.encoding applies too); a
    byte-order mark is not part of the first text; a row after a quoted multi-line field names its real line."""
    (tmp_path / "g.csv").write_bytes("text,label\nok,0\n好的,1\n".encode("gbk"))
    with pytest.raises(DataError, match=r"g.csv: line 3: not valid utf-8 text; set data.encoding"):
        load_text_classification(cfg(train_file=str(tmp_path / "g.csv")))
    (tmp_path / "g.jsonl").write_bytes('{"text": "好的", "label": 0}\n{"text": "坏", "label": 1}\n'.encode("gbk"))
    with pytest.raises(DataError, match=r"g.jsonl: line 1: not valid utf-8 text; set data.encoding"):
        load_text_classification(cfg(train_file=str(tmp_path / "g.jsonl")))
    ok = load_text_classification(cfg(train_file=str(tmp_path / "g.jsonl"), encoding="gbk"))
    assert ok.train["text"] == ["好的", "坏"]
    (tmp_path / "bom.txt").write_bytes("\ufeff0 good film\n1 bad film\n".encode("utf-8"))
    ok = load_text_classification(cfg(train_file=str(tmp_path / "bom.txt"), format="kim2014"))
    assert ok.train["text"][0] == "good film"
    (tmp_path / "ml.csv").write_text('text,label\n"two\nlines",0\n,1\n')
    with pytest.raises(DataError, match=r"ml.csv: row 2 \(line 4\): empty or non-text value in column 'text'"):
        load_text_classification(cfg(train_file=str(tmp_path / "ml.csv")))
    (tmp_path / "names.csv").write_text("text,label\ngood,positive\nbad,negative\n")
    with pytest.raises(DataError, match=r"names.csv: label 'negative' is not an integer: data.label_names names"):
        load_text_classification(cfg(train_file=str(tmp_path / "names.csv"), label_names=["negative", "positive"]))


def _tok_ds(n_repeat=1):
    import datasets

    texts = ["the movie was good", "A really, REALLY awful plot and the actor was sad " * 3, "", "fine film",
             "ünïcode café story"] * n_repeat
    pairs = ["it was nice", "bad", "the story", "", "good good good good good good good good"] * n_repeat
    return datasets.Dataset.from_dict({"text": texts, "text_b": pairs, "labels": [0, 1, 0, 1, 0] * n_repeat})


@pytest.mark.parametrize("max_length,side,pair", [(8, "right", None), (8, "left", None), (10, "right", "text_b"),
                                                  (9, "left", "text_b"), (None, "right", None)])
def test_tokenize_dataset_backend_path_equals_the_tokenizer_call(tiny_bert, max_length, side, pair):
    """The Rust-backend encoding gives what ``tokenizer(texts, [pairs], truncation=True, max_length=...)`` gives:
    ids, type ids, masks; truncation on either side, pairs (longest first), and no max_length (the tokenizer's
    own limit)."""
    from transformers import AutoTokenizer

    from nlp_cv_tricks.data.text import _backend_encoder, tokenize_dataset

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    tok.truncation_side = side
    if max_length is None:
        tok.model_max_length = 12
    ds = _tok_ds()
    out = tokenize_dataset(ds, tok, cfg(max_length=max_length, text_pair_column=pair))
    ref = tok(list(ds["text"]), list(ds["text_b"]) if pair else None, truncation=True, max_length=max_length)
    assert set(out.column_names) == {"labels"} | set(ref.keys())
    for k in ref.keys():
        assert list(out[k]) == ref[k], k
    # the backend encoder itself (not the fall-back) gives the same
    direct = _backend_encoder(tok, max_length)(list(ds["text"]), list(ds["text_b"]) if pair else None)
    assert direct == {k: ref[k] for k in ref.keys()}
    assert max(len(x) for x in out["input_ids"]) == (max_length or 12)  # something was truncated


def test_tokenize_dataset_checks_the_backend_once_and_falls_back_on_a_difference(tiny_bert, monkeypatch):
    from transformers import AutoTokenizer

    from nlp_cv_tricks.data.text import tokenize_dataset

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    ds = _tok_ds(500)  # 2,500 rows: three batches of datasets.map
    original = type(tok).__call__
    calls = []

    def counting(self, *a, **k):
        calls.append(len(a[0]))
        return original(self, *a, **k)

    monkeypatch.setattr(type(tok), "__call__", counting)
    out = tokenize_dataset(ds, tok, cfg(max_length=8))
    assert calls == [1000]  # the first batch compared with the tokenizer's call, the rest from the backend
    assert list(out["input_ids"]) == original(tok, list(ds["text"]), truncation=True, max_length=8)["input_ids"]

    # a tokenizer whose call does more than its backend (here: drops the last id): its own call for every batch
    def different(self, *a, **k):
        enc = original(self, *a, **k)
        for key in list(enc.keys()):
            enc[key] = [x[:-1] for x in enc[key]]
        return enc

    monkeypatch.setattr(type(tok), "__call__", different)
    out = tokenize_dataset(ds, tok, cfg(max_length=8))
    assert list(out["input_ids"]) == different(tok, list(ds["text"]), truncation=True, max_length=8)["input_ids"]
