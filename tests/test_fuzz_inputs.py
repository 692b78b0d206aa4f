"""Fuzzed inputs (hypothesis): generated data files and recipe overrides.

Each data test writes a generated file (random unicode, quotes, separators, blank lines, byte-order marks,
empty fields, huge fields, mixed label types) and loads it with ``load_text_classification``. The result is
compared with an independent reference parser (Python's ``csv`` and ``json`` modules, ``str.split`` for the line
formats) and the rules the package documents: when the reference finds a valid file, the package must give
exactly its rows (texts and labels, in order); when it does not, the package must raise its own
:class:`DataError` naming the file. Any other exception fails the test.

Labels are compared as the package keys them (README, Data): the value's text with surrounding spaces removed,
``true``/``false`` in lower case, integer-valued numbers (``1``, ``1.0``) as the integer.

Example counts (``FUZZ_EXAMPLES``, per format) are reported in benchmarks/RESULTS.md.

Each data test runs twice: on the fixed corpus (``derandomize``: the same examples every run, so a failure
reproduces) and on ``FRESH_EXAMPLES`` new examples drawn from a seed chosen per session, printed in the test
header (``fuzz seed: N``) and set with ``NCT_FUZZ_SEED=N`` to repeat a run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import re
import string
import sys
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nlp_cv_tricks.config import DataConfig, RecipeError, load_recipe, recipe_to_dict  # noqa: E402
from nlp_cv_tricks.data.text import DataError, load_text_classification  # noqa: E402

from conftest import ROOT  # noqa: E402

FUZZ_EXAMPLES = {"csv": 300, "tsv": 300, "jsonl": 300, "kim2014": 300, "thucnews": 300, "overrides": 300}
FRESH_EXAMPLES = 60  # per format, drawn anew each session
FUZZ_SEED = int(os.environ.get("NCT_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                        HealthCheck.data_too_large, HealthCheck.large_base_example])
MODES = ["fixed", "fresh"]
LONG = 131_073 + 7_000  # over Python csv's default field limit (131,072 characters)


@pytest.fixture(autouse=True, scope="module")
def _say_the_seed(request):
    """The seed of the fresh examples, printed once (also with -q and captured output)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # past the output capture of the test session
            reporter.write_line(f"fuzz seed: {FUZZ_SEED} (repeat these examples with NCT_FUZZ_SEED={FUZZ_SEED})")
    yield


def fuzz(mode: str, n: int, strategy, body):
    """Run ``body`` on ``n`` examples of ``strategy``: the fixed corpus, or ``FRESH_EXAMPLES`` new ones drawn from
    ``FUZZ_SEED`` (a failure then names the seed to repeat it)."""
    if mode == "fixed":
        return settings(max_examples=n, **_SETTINGS)(given(strategy)(body))()
    fresh = dict(_SETTINGS, derandomize=False)
    test = hypothesis.seed(FUZZ_SEED)(settings(max_examples=FRESH_EXAMPLES, **fresh)(given(strategy)(body)))
    try:
        test()
    except BaseException as e:  # noqa: BLE001 - re-raised with the seed that repeats it
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise AssertionError(f"fresh fuzz examples failed; repeat with NCT_FUZZ_SEED={FUZZ_SEED}: {e}") from e

@pytest.fixture(autouse=True, scope="module")
def _datasets_cache_in_tmp(tmp_path_factory):
    """The ~1,000 generated files would each leave an Arrow cache entry in the user's ~/.cache: keep them in a
    temporary folder instead."""
    import datasets.config

    old = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = tmp_path_factory.mktemp("datasets_cache")
    yield
    datasets.config.HF_DATASETS_CACHE = old


# ---- generated pieces ----------------------------------------------------------------------------------------
# text: any unicode (NUL excluded: no text format here can hold it), biased towards the characters that matter to
# the parsers (quotes, separators, line breaks, spaces, digits, BOMs, unicode line separators)
_SPECIAL = st.sampled_from(list(',;"\'\t \r\n\\#-+.0123456789') + ["\ufeff", "\u2028", "\x85", "\u3000", "é", "标",
                                                                    "NA", "null", "None", "nan", "true", "False"])
_CHAR = st.one_of(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), _SPECIAL)
TEXT = st.one_of(
    st.lists(_CHAR, max_size=30).map("".join),
    st.sampled_from(["", " ", "NA", "null", "007", "1.5", "True", "  padded  ", "a,b", 'say "hi"', "x" * 100_000,
                     "y" * LONG, ('long, "quoted"\nfield ' * (LONG // 20 + 1))]),
)
LABEL = st.one_of(
    st.integers(-3, 12).map(str),
    st.sampled_from(["0", "1", "1.0", "2.50", "-1", "007", " 1", "positive", "negative", "Positive", "true",
                     "False", "TRUE", "", " ", "NA", "null", "a,b", 'q"q', "标签"]),
    st.lists(_CHAR, min_size=1, max_size=6).map("".join),
)


@st.composite
def rows_of(draw, text, label, max_rows: int = 6, clean_text=None):
    """Rows of a file: half of the files use a small label pool and texts with a visible character (the valid
    files a user writes), the others any text and label (mostly invalid files)."""
    n = draw(st.integers(0, max_rows))
    if draw(st.booleans()):
        pool = draw(st.lists(label, min_size=2, max_size=3))
        clean = (clean_text if clean_text is not None else text).filter(lambda t: isinstance(t, str) and t.strip())
        return [(draw(clean), draw(st.sampled_from(pool)))
                for _ in range(n)]
    return [(draw(text), draw(label)) for _ in range(n)]


def ref_label_key(s: str) -> str:
    """The documented label key of a label read as text."""
    s = s.strip()
    if s.lower() in ("true", "false"):
        return s.lower()
    m = re.fullmatch(r"(-?[0-9]+)\.0*", s)
    if m:
        return str(int(m.group(1)))
    return s


def ref_value_key(v) -> str:
    """The label key of a JSON value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, str):
        return ref_label_key(v)
    return str(v).strip()


def _valid_rows(texts, keys) -> bool:
    """The package's documented row rules: every text has a non-space character, every label is given, and there
    are at least two label values."""
    return (len(texts) > 0 and all(isinstance(t, str) and t.strip() for t in texts)
            and all(k is not None and k != "" for k in keys) and len(set(keys)) >= 2)


def check_load(path: Path, expected, event: bool = True, **cfg):
    """``expected``: ``(texts, keys)`` when the reference reads a valid file, None when it does not."""
    if event:
        hypothesis.event("valid" if expected is not None else "invalid")
    try:
        splits = load_text_classification(DataConfig(train_file=str(path), **cfg))
    except DataError as e:
        assert str(path) in str(e), f"the error does not name the file: {e}"
        assert expected is None, f"valid file refused: {e}"
        return
    assert expected is not None, "an invalid file was loaded"
    texts, keys = expected
    ds = splits.train
    assert ds[cfg.get("text_column", "text")][:] == texts
    raw = splits.label_map.raw
    assert [raw[i] for i in ds["labels"][:]] == keys


def _unique(tmp_path_factory, suffix: str) -> Path:
    d = tmp_path_factory.mktemp("fuzz", numbered=True)
    return d / f"data{suffix}"


# ---- CSV ---------------------------------------------------------------------------------------------------
@st.composite
def csv_files(draw):
    rows = draw(rows_of(TEXT, LABEL))
    order = draw(st.sampled_from([("text", "label"), ("label", "text"), ("id", "text", "label")]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    buf = io.StringIO()
    w = csv.writer(buf, quoting=quoting, lineterminator=eol)
    w.writerow(order)
    lines = [buf.getvalue()]
    for i, (t, y) in enumerate(rows):
        buf = io.StringIO()
        csv.writer(buf, quoting=quoting, lineterminator=eol).writerow(
            [{"id": str(i), "text": t, "label": y}[c] for c in order])
        lines.append(buf.getvalue())
        if draw(st.integers(0, 5)) == 0:
            lines.append(eol)  # a blank line
    if draw(st.integers(0, 6)) == 0:  # a ragged or junk line
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(["a,b,c,d" + eol, "onlyone" + eol,
                                                                             '"unclosed,1' + eol])))
    text = "".join(lines)
    if draw(st.booleans()):
        text = "\ufeff" + text
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # no final line break
    return text


def ref_csv(text: str, delimiter: str = ",", quoting=csv.QUOTE_MINIMAL):
    body = text[1:] if text.startswith("\ufeff") else text
    default = csv.field_size_limit(sys.maxsize)  # the reference reads fields of any length, as the package must;
    try:  # the limit is process-wide: restored, so the package's reads meet the default
        rows = [r for r in csv.reader(io.StringIO(body, newline=""), delimiter=delimiter, quoting=quoting,
                                      strict=True) if r]
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(default)
    if not rows:
        return None
    header, data = rows[0], rows[1:]
    if "text" not in header or "label" not in header or any(len(r) != len(header) for r in data):
        return None
    texts = [r[header.index("text")] for r in data]
    keys = [ref_label_key(r[header.index("label")]) for r in data]
    return (texts, keys) if _valid_rows(texts, keys) else None


@pytest.mark.parametrize("mode", MODES)
def test_fuzz_csv(tmp_path_factory, mode):
    def body(text):
        path = _unique(tmp_path_factory, ".csv")
        path.write_text(text, encoding="utf-8", newline="")
        check_load(path, ref_csv(text))

    fuzz(mode, FUZZ_EXAMPLES["csv"], csv_files(), body)


# ---- TSV (no quoting: quotes are text) --------------------------------------------------------------------------
_TSV_CHAR = st.one_of(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\t\r\n"),
                      st.sampled_from(list('",; #\'\\') + ["\ufeff", "\u2028", "\x85", "NA", "null"]))
TSV_TEXT = st.one_of(st.lists(_TSV_CHAR, max_size=30).map("".join),
                     st.sampled_from(["", " ", "NA", "007", '"quoted"', 'a "b" c', "x" * 100_000, "y" * LONG,
                                      'long "quoted" field ' * (LONG // 20 + 1)]))
TSV_LABEL = LABEL.map(lambda s: s.replace("\t", " ").replace("\r", " ").replace("\n", " "))


@st.composite
def tsv_files(draw):
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines = ["text\tlabel" + eol]
    for t, y in draw(rows_of(TSV_TEXT, TSV_LABEL)):
        lines.append(f"{t}\t{y}{eol}")
        if draw(st.integers(0, 5)) == 0:
            lines.append(eol)
    if draw(st.integers(0, 6)) == 0:
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(["a\tb\tc" + eol, "onlyone" + eol])))
    text = "".join(lines)
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text


def ref_tsv(text: str):
    body = text[1:] if text.startswith("\ufeff") else text
    rows = [ln.split("\t") for ln in re.split(r"\r\n|\n", body) if ln != ""]
    if not rows:
        return None
    header, data = rows[0], rows[1:]
    if any(len(r) != len(header) for r in data):
        return None
    texts = [r[0] for r in data]
    keys = [ref_label_key(r[1]) for r in data]
    return (texts, keys) if _valid_rows(texts, keys) else None


@pytest.mark.parametrize("mode", MODES)
def test_fuzz_tsv(tmp_path_factory, mode):
    def body(text):
        path = _unique(tmp_path_factory, ".tsv")
        path.write_text(text, encoding="utf-8", newline="")
        check_load(path, ref_tsv(text))

    fuzz(mode, FUZZ_EXAMPLES["tsv"], tsv_files(), body)


# ---- JSONL -------------------------------------------------------------------------------------------------
JSON_LABEL = st.one_of(st.integers(-3, 12), st.sampled_from([0.0, 1.0, 2.5, True, False, None]), LABEL)
JSON_TEXT = st.one_of(TEXT, st.sampled_from([None, 5, 1.5, True]))
# label pools of JSON booleans and nulls, alone and mixed with their spellings as text and numbers: a boolean
# keyed as "True"/"1" instead of "true" (or a null taken for a label) shows here
JSON_POOLS = st.sampled_from([[True, False], [False, True], [True, False, None], [True, "false"], ["True", False],
                              [True, 1], [0, False], [True, "true", False], [None, 1], ["null", True]])


@st.composite
def jsonl_files(draw):
    lines = []
    if draw(st.integers(0, 3)) == 0:
        pool = draw(JSON_POOLS)
        rows = [(draw(TEXT.filter(lambda t: t.strip())), draw(st.sampled_from(pool)))
                for _ in range(draw(st.integers(1, 6)))]
    else:
        rows = draw(rows_of(JSON_TEXT, JSON_LABEL, clean_text=TEXT))
    for t, y in rows:
        obj = {"text": t, "label": y}
        if draw(st.integers(0, 30)) == 0:
            obj.pop(draw(st.sampled_from(["text", "label"])))
        if draw(st.integers(0, 8)) == 0:
            obj["extra"] = draw(st.sampled_from([1, "x", [1, 2], {"a": 1}]))
        lines.append(json.dumps(obj, ensure_ascii=draw(st.booleans())))
        if draw(st.integers(0, 5)) == 0:
            lines.append("")
    if draw(st.integers(0, 6)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(['{"text": "a" "label": 1}', "[1, 2]",
                                                                             "not json", '"a string"'])))
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n"]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text


def ref_jsonl(text: str):
    body = text[1:] if text.startswith("\ufeff") else text
    objs = []
    for ln in body.split("\n"):
        if not ln.strip():
            continue
        try:
            obj = json.loads(ln)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        objs.append(obj)
    if not objs or any("text" not in o or "label" not in o for o in objs):
        return None
    texts = [o["text"] for o in objs]
    labels = [o["label"] for o in objs]
    if any(v is None or isinstance(v, (list, dict)) for v in labels):
        return None
    keys = [ref_value_key(v) for v in labels]
    return (texts, keys) if _valid_rows(texts, keys) else None


@pytest.mark.parametrize("mode", MODES)
def test_fuzz_jsonl(tmp_path_factory, mode):
    def body(text):
        path = _unique(tmp_path_factory, ".jsonl")
        path.write_text(text, encoding="utf-8", newline="")
        check_load(path, ref_jsonl(text))

    fuzz(mode, FUZZ_EXAMPLES["jsonl"], jsonl_files(), body)


# ---- the line formats: kim2014 ('<label> <text>') and thucnews ('<text><TAB><label id>') ----------------------
_LINE_CHAR = st.one_of(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n"),
                       st.sampled_from(list(" \t\r-0123456789") + ["\ufeff", "\u2028", "\x85", "²", "٣"]))
LINE_TEXT = st.one_of(st.lists(_LINE_CHAR, max_size=25).map("".join),
                      st.sampled_from(["", " ", "x" * 100_000, "y" * LONG]))
LINE_LABEL = st.one_of(st.integers(-2, 12).map(str), st.sampled_from(["", "-", "--1", "+1", "1.0", "²", "٣", "007",
                                                                     "a", " 1", "1 "]))


@st.composite
def line_files(draw, fmt):
    lines = []
    for t, y in draw(rows_of(LINE_TEXT, LINE_LABEL, max_rows=7)):
        lines.append(f"{y} {t}" if fmt == "kim2014" else f"{t}\t{y}")
        if draw(st.integers(0, 8)) == 0:
            lines.append(draw(st.sampled_from(["", " ", "\r"])))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + draw(st.sampled_from(["", eol]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text


def ref_lines(text: str, fmt: str):
    body = text[1:] if text.startswith("\ufeff") else text
    # lines end in \n or \r\n (a stray \r before the break is dropped too); the file may end with a break
    lines = [ln.rstrip("\r") for ln in body.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    texts, keys = [], []
    for ln in lines:
        if not ln.strip():
            return None
        if fmt == "kim2014":
            y, sep, t = ln.partition(" ")
        else:
            t, sep, y = ln.rpartition("\t")
            y = y.strip()
        if not sep or not re.fullmatch(r"-?[0-9]+", y):
            return None
        texts.append(t)
        keys.append(str(int(y)))
    return (texts, keys) if _valid_rows(texts, keys) else None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", ["kim2014", "thucnews"])
def test_fuzz_line_formats(tmp_path_factory, fmt, mode):
    def body(text):
        path = _unique(tmp_path_factory, ".txt")
        path.write_text(text, encoding="utf-8", newline="")
        check_load(path, ref_lines(text, fmt), format=fmt)

    fuzz(mode, FUZZ_EXAMPLES[fmt], line_files(fmt), body)


# ---- recipe overrides ------------------------------------------------------------------------------------------
def _valid_keys() -> list[str]:
    from nlp_cv_tricks.config import _all_keys

    return _all_keys()


KEY = st.one_of(
    st.sampled_from(_valid_keys()),
    st.sampled_from(_valid_keys()).map(lambda k: k[:-1] if len(k) > 3 else k),  # typos
    st.sampled_from(["model.kwargs.x", "model.config_overrides.hidden_dropout_prob", "trian.epochs", "tricks+",
                     "tricks", "train", "data", "name", "", ".", "a..b", "train.", " train.epochs"]),
    st.text(alphabet=string.ascii_letters + "._+-", max_size=15),
)
VALUE = st.one_of(
    st.sampled_from(["1", "0", "-1", "3e-5", "1e400", "nan", "inf", "true", "no", "null", "~", "", "[]", "{}",
                     "[fgm, rdrop]", "{a: 1}", "linear", "bf16", "fp16", "csv", "x: [", "'", '"', "!!python/none",
                     "{label_smoothing: {epsilon: 0.1}}", "[1, [2]]", "2.5", "0.5", "-0.1", "1.0", "12345678901234567890"]),
    st.text(max_size=12),
    st.integers(-5, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=FUZZ_EXAMPLES["overrides"], **_SETTINGS)
@given(pairs=st.lists(st.tuples(KEY, st.sampled_from(["=", "+="]), VALUE), max_size=4))
def test_fuzz_recipe_overrides(tmp_path_factory, pairs):
    """Random keys and values: a valid recipe (which survives a save and reload unchanged) or a RecipeError."""
    overrides = [f"{k}{op}{v}" for k, op, v in pairs]
    try:
        r = load_recipe(ROOT / "recipes" / "quickstart.yaml", overrides)
    except RecipeError:
        hypothesis.event("recipe error")
        return
    hypothesis.event("valid recipe")
    from nlp_cv_tricks.config import save_recipe

    path = _unique(tmp_path_factory, ".yaml")
    save_recipe(r, path)
    again = load_recipe(path)
    a, b = recipe_to_dict(r), recipe_to_dict(again)
    assert _same(a, b), (overrides, a, b)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)


# ---- the cases the fuzzing found, pinned --------------------------------------------------------------------------
@pytest.mark.parametrize("name, content, cfg, expected", [
    # CSV texts are read as written: 'NA' and '007' are text, not a missing value or the number 7
    ("a.csv", "text,label\nNA,0\n007,1\n", {}, (["NA", "007"], ["0", "1"])),
    # broken quoting is refused with its line instead of gluing lines into one field
    ("b.csv", 'text,label\n"unclosed,1\nok,0\n0,"a,b"\n', {}, None),
    # '²' passes str.isdigit() but is no integer label: a data error, not a ValueError
    ("c.txt", "² good\n1 bad\n", {"format": "kim2014"}, None),
    # a lone \r inside a line is text, not a line break
    ("d.txt", "good\rday\t0\nbad\t1\n", {"format": "thucnews"}, (["good\rday", "bad"], ["0", "1"])),
    ("e.txt", "0 good\rday\n1 bad\n", {"format": "kim2014"}, (["good\rday", "bad"], ["0", "1"])),
    # JSON Lines with labels of two types and a blank line (Arrow cannot type the column)
    ("f.jsonl", '{"text": "a", "label": 0}\n\n{"text": "b", "label": "1"}\n{"text": "c", "label": 1.0}\n', {},
     (["a", "b", "c"], ["0", "1", "1"])),
    # a list is no label
    ("g.jsonl", '{"text": "a", "label": [1]}\n{"text": "b", "label": 0}\n', {}, None),
    # JSON booleans are the labels true/false (as the text "True"/"false" is), never 1/0 or "True"
    ("h.jsonl", '{"text": "a", "label": true}\n{"text": "b", "label": false}\n{"text": "c", "label": "True"}\n', {},
     (["a", "b", "c"], ["true", "false", "true"])),
    # JSON text labels next to numbers stay as written: "007" is not 7, "NaN" is not a missing value
    ("l.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": "007"}\n{"text": "c", "label": "NaN"}\n', {},
     (["a", "b", "c"], ["0", "007", "NaN"])),
    ("m.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": "2.50", "extra": 1}\n', {},
     (["a", "b"], ["0", "2.50"])),
    # a null label is a missing label
    ("i.jsonl", '{"text": "a", "label": true}\n{"text": "b", "label": null}\n', {}, None),
    # a field longer than Python csv's default limit (131,072 characters) is read, in CSV and TSV
    ("j.csv", 'text,label\n"' + "long, " * 30_000 + '",1\nok,0\n', {}, (["long, " * 30_000, "ok"], ["1", "0"])),
    ("k.tsv", "text\tlabel\n" + "z" * 200_000 + "\t1\nok\t0\n", {}, (["z" * 200_000, "ok"], ["1", "0"])),
])
def test_fuzz_findings(tmp_path, name, content, cfg, expected):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8", newline="")
    check_load(path, expected, event=False, **cfg)
