"""Vocabularies for the models trained from scratch: tokenizers trained on the training texts (the text
baselines' word/char tokenizers; :func:`build_char_tokenizer`, the character WordPiece vocabulary of the reading-
comprehension models), fastText-style hashed n-gram features, and pretrained word/char vectors with a coverage
report.

Tokenizers are built with the Hugging Face ``tokenizers`` library (a ``WordLevel`` model trained by
``WordLevelTrainer``) and wrapped as :class:`transformers.PreTrainedTokenizerFast`, so they save next to the
model (``tokenizer.json`` + ``tokenizer_config.json``) and load back with ``AutoTokenizer.from_pretrained``.

Levels:

* ``"char"`` -- one token per character (whitespace kept as a token by default), the usual unit for Chinese
  short texts (THUCNews titles in 649453932/Chinese-Text-Classification-Pytorch are char-level).
* ``"word"`` -- words split on whitespace (``split="whitespace_split"``, for pre-tokenised data such as the
  Kim 2014 files) or on whitespace and punctuation (``split="whitespace"``, for raw text).

fastText-style features (Joulin et al. 2016, "Bag of Tricks for Efficient Text Classification"): a text is the
bag of its unigrams plus its word n-grams, each n-gram hashed into one of ``bucket`` rows. The unigrams come from
the tokenizer; the n-gram ids are computed from the unigram ids inside the model
(:func:`nlp_cv_tricks.models.text_baselines.layers_fasttext.hashed_ngram_ids`, called by
:class:`~nlp_cv_tricks.models.text_baselines.FastTextForSequenceClassification`), so the saved tokenizer stays a
standard ``tokenizer.json`` and ``model(**tokenizer(texts))`` works anywhere. Hashing ids instead of strings is
what the reference PyTorch port does too (``biGramHash``/``triGramHash`` in 649453932's ``utils_fasttext.py``);
the official fastText hashes the word strings (FNV-1a) -- with a fixed vocabulary the two are the same feature map
up to which collisions happen.

Pretrained vectors: :func:`load_pretrained_vectors` reads either a ``.npz`` matrix row-aligned with a vocab file
(one token per line, line *i* = row *i*; e.g. ../shared/data/thucnews/embedding_Tencent.npz + vocab.txt) or a
word2vec/GloVe text file (optional ``"<count> <dim>"`` header, then ``token v1 ... vD`` per line; a ``.bin``
file is read as word2vec binary), keeps only the rows of tokens in the tokenizer's vocabulary, and returns an
embedding matrix plus a :class:`VectorReport` (token-type coverage and, when texts are given, running-token
coverage and the most frequent missing tokens). Missing tokens get random vectors with the same standard
deviation as the loaded ones (Kim 2014 initialises unknown words at the variance of the pretrained ones); the
padding row is zero.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

import numpy as np

if TYPE_CHECKING:  # torch is imported where vectors are loaded: building a tokenizer needs none
    import torch

__all__ = [
    "PAD_TOKEN",
    "UNK_TOKEN",
    "TOKENIZER_LEVELS",
    "build_tokenizer",
    "build_tokenizer_backend",
    "detect_level",
    "build_char_tokenizer",
    "VectorReport",
    "read_vectors",
    "load_pretrained_vectors",
]

logger = logging.getLogger(__name__)

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
TOKENIZER_LEVELS = ("char", "word")
_SPLITS = ("whitespace_split", "whitespace")
# spellings of the unknown token in common vector files (the THUCNews vocab ends with <UNK>, <PAD>)
_UNK_ALIASES = ("[UNK]", "<UNK>", "<unk>", "UNK", "</s>")

# ---------------------------------------------------------------------------------------------------------------
# tokenizers
# ---------------------------------------------------------------------------------------------------------------
def build_tokenizer(
    texts: Iterable[str],
    level: str = "char",
    *,
    max_vocab_size: Optional[int] = None,
    min_freq: int = 1,
    lowercase: bool = False,
    unicode_normalization: Optional[str] = None,
    split: str = "whitespace",
    keep_whitespace: bool = True,
    max_length: Optional[int] = 128,
):
    """Train a word- or character-level tokenizer on ``texts`` and wrap it as ``PreTrainedTokenizerFast``.

    Args:
        texts: the training texts (the vocabulary is built from them only).
        level: ``"char"`` (one token per character) or ``"word"``.
        max_vocab_size: keep at most this many tokens (by frequency, ties broken by the token string), not counting
            the two special tokens; ``None`` keeps all. (649453932's THUCNews vocab: 10,000, min_freq 1.)
        min_freq: drop tokens seen fewer times.
        lowercase: lowercase before tokenising.
        unicode_normalization: ``None``, ``"NFKC"``, ``"NFC"``, ``"NFD"`` or ``"NFKD"``.
        split: for ``level="word"``: ``"whitespace_split"`` (split on whitespace only, for pre-tokenised text) or
            ``"whitespace"`` (split on whitespace and punctuation, ``\\w+|[^\\w\\s]+``).
        keep_whitespace: for ``level="char"``: keep spaces as tokens (as the THUCNews reference vocab does);
            otherwise characters are taken from whitespace-separated chunks.
        max_length: ``model_max_length`` of the tokenizer (truncation length); THUCNews reference: 32.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``[PAD]`` = 0 and ``[UNK]`` = 1, right padding, and
        ``model_input_names = ["input_ids", "attention_mask"]`` (no token_type_ids).
    """
    from transformers import PreTrainedTokenizerFast

    tok = build_tokenizer_backend(texts, level, max_vocab_size=max_vocab_size, min_freq=min_freq, lowercase=lowercase,
                                  unicode_normalization=unicode_normalization, split=split,
                                  keep_whitespace=keep_whitespace)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=max_length if max_length else int(1e30),
        padding_side="right",
        truncation_side="right",
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=False,
    )
    return fast


def build_tokenizer_backend(
    texts: Iterable[str],
    level: str = "char",
    *,
    max_vocab_size: Optional[int] = None,
    min_freq: int = 1,
    lowercase: bool = False,
    unicode_normalization: Optional[str] = None,
    split: str = "whitespace",
    keep_whitespace: bool = True,
):
    """The ``tokenizers.Tokenizer`` that :func:`build_tokenizer` wraps (same options): a ``WordLevel`` model
    trained on ``texts`` with ``[PAD]`` = 0 and ``[UNK]`` = 1. Needs only the ``tokenizers`` library."""
    from tokenizers import Tokenizer, models, trainers

    texts = _checked_training_texts(texts, level, split, min_freq, max_vocab_size)
    tok = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    normalizer = _normalizer(unicode_normalization, lowercase)
    if normalizer is not None:
        tok.normalizer = normalizer
    _set_pre_tokenizer(tok, level, split, keep_whitespace)

    vocab_size = (max_vocab_size + 2) if max_vocab_size else 10**9
    counted = _char_vocab(texts, vocab_size, min_freq) if (level == "char" and keep_whitespace
                                                            and normalizer is None) else None
    if counted is not None:  # the vocabulary the trainer below would make, counted directly (~5x faster)
        tok.model = models.WordLevel(counted, unk_token=UNK_TOKEN)
        tok.add_special_tokens([PAD_TOKEN, UNK_TOKEN])
    else:
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_freq, special_tokens=[PAD_TOKEN, UNK_TOKEN], show_progress=False
        )
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    if tok.get_vocab_size() <= 2:
        raise ValueError(
            f"build_tokenizer: the vocabulary is empty after training on {len(texts)} texts "
            f"(level={level!r}, min_freq={min_freq}); are the texts empty?"
        )
    return tok


_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _char_vocab(texts: list[str], vocab_size: int, min_freq: int) -> Optional[dict[str, int]]:
    """The ``WordLevelTrainer`` vocabulary of a character tokenizer that splits every character (``Split(".")``,
    no normalizer): ``[PAD]``, ``[UNK]``, then the characters seen at least ``min_freq`` times by count, most
    frequent first, ties in code-point order, up to ``vocab_size`` entries. None when a text holds a line break
    (which ``.`` does not match): the trainer decides then."""
    from collections import Counter

    joined = "".join(texts)
    if any(c in joined for c in _LINE_BREAKS):
        return None
    counts = Counter(joined)
    ranked = sorted((c for c, n in counts.items() if n >= min_freq and c not in (PAD_TOKEN, UNK_TOKEN)),
                    key=lambda c: (-counts[c], c))
    vocab = {PAD_TOKEN: 0, UNK_TOKEN: 1}
    for c in ranked[:max(0, vocab_size - 2)]:
        vocab[c] = len(vocab)
    return vocab


def detect_level(texts: Sequence[str]) -> str:
    """``"char"`` when more than 30% of the non-space characters of the first 2,000 texts are CJK, else ``"word"``
    (what a baseline's ``tokenizer: {level: auto}`` means)."""
    sample = "".join(texts[:2000])
    cjk = sum(1 for ch in sample if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff")
    letters = sum(1 for ch in sample if not ch.isspace())
    return "char" if letters and cjk / letters > 0.3 else "word"


def _checked_training_texts(texts: Iterable[str], level: str, split: str, min_freq: int,
                            max_vocab_size: Optional[int]) -> list[str]:
    """Check :func:`build_tokenizer`'s options and texts; the texts as a list."""
    if level not in TOKENIZER_LEVELS:
        raise ValueError(f"tokenizer level must be one of {TOKENIZER_LEVELS}, got {level!r}")
    if split not in _SPLITS:
        raise ValueError(f"tokenizer split must be one of {_SPLITS}, got {split!r}")
    if min_freq < 1:
        raise ValueError(f"min_freq must be >= 1, got {min_freq}")
    if max_vocab_size is not None and max_vocab_size < 1:
        raise ValueError(f"max_vocab_size must be >= 1 or None, got {max_vocab_size}")
    texts = list(texts)
    if not texts:
        raise ValueError("build_tokenizer: no training texts given")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"build_tokenizer: training text #{i} is {type(t).__name__}, expected str")
    return texts


def _normalizer(unicode_normalization: Optional[str], lowercase: bool):
    """The ``tokenizers`` normalizer for the options (None when there is nothing to normalise)."""
    from tokenizers import normalizers

    norms = []
    if unicode_normalization:
        form = unicode_normalization.upper()
        if form not in ("NFKC", "NFC", "NFD", "NFKD"):
            raise ValueError(f"unicode_normalization must be NFKC/NFC/NFD/NFKD or None, got {unicode_normalization!r}")
        norms.append(getattr(normalizers, form)())
    if lowercase:
        norms.append(normalizers.Lowercase())
    if not norms:
        return None
    return norms[0] if len(norms) == 1 else normalizers.Sequence(norms)


def _set_pre_tokenizer(tok, level: str, split: str, keep_whitespace: bool) -> None:
    """Split into characters (``level="char"``) or words, and fuse characters back when decoding."""
    from tokenizers import Regex, decoders, pre_tokenizers

    if level == "char":
        if keep_whitespace:
            # every character (spaces included) is its own token; "." does not match newlines, which are dropped
            tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"."), behavior="isolated")
        else:
            tok.pre_tokenizer = pre_tokenizers.Sequence(
                [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"."), behavior="isolated")]
            )
        if keep_whitespace:
            tok.decoder = decoders.Fuse()  # tokens concatenate back into the text
    else:
        tok.pre_tokenizer = (
            pre_tokenizers.WhitespaceSplit() if split == "whitespace_split" else pre_tokenizers.Whitespace()
        )


def build_char_tokenizer(texts, save_dir: Optional[str] = None, min_freq: int = 1, lowercase: bool = True):
    """A BERT-style WordPiece tokenizer whose vocabulary is the characters of ``texts`` (each also as a ``##``
    continuation, so runs of Latin letters/digits split into characters instead of ``[UNK]``), built with the
    ``tokenizers`` library (BERT normaliser: CJK characters are split one by one). Saved to ``save_dir`` if
    given."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    counts: Counter = Counter()
    for t in texts:
        counts.update(t.lower() if lowercase else t)
    chars = sorted(c for c, n in counts.items() if n >= min_freq and not c.isspace())
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars]
    backend = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]",
                                         max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                    strip_accents=None, lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                  cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                  model_max_length=512)
    if save_dir is not None:
        tok.save_pretrained(save_dir)
    return tok


# ---------------------------------------------------------------------------------------------------------------
# pretrained vectors
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class VectorReport:
    """What :func:`load_pretrained_vectors` found.

    Attributes:
        path: the vector file; vocab_path: its vocab file (``.npz`` only).
        dim: vector dimension; file_tokens: tokens in the file.
        vocab_size: tokenizer vocabulary (special tokens included).
        found: vocabulary tokens (specials excluded) with a vector, exact match; found_lowercase: found only
            through their lowercase form; missing: the rest (random init).
        type_coverage: (found + found_lowercase) / non-special vocabulary size.
        token_coverage: share of running tokens in ``texts`` (when given) whose token has a vector.
        missing_examples: up to 20 missing tokens (most frequent in ``texts`` first, when given).
        unk_from_file: whether the ``[UNK]`` row came from the file (``<UNK>``, ``<unk>`` ...).
    """

    path: str
    vocab_path: Optional[str]
    dim: int
    file_tokens: int
    vocab_size: int
    found: int
    found_lowercase: int
    missing: int
    type_coverage: float
    token_coverage: Optional[float] = None
    missing_examples: list = field(default_factory=list)
    unk_from_file: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        tc = "n/a" if self.token_coverage is None else f"{100 * self.token_coverage:.2f}%"
        return (
            f"pretrained vectors {self.path}: dim {self.dim}, {self.file_tokens} tokens in file; "
            f"vocabulary {self.vocab_size}: {self.found} found, {self.found_lowercase} via lowercase, "
            f"{self.missing} missing (random init); type coverage {100 * self.type_coverage:.2f}%, "
            f"running-token coverage {tc}; missing e.g. {self.missing_examples[:10]}"
        )


def _read_vocab_lines(vocab_path: Path) -> list[str]:
    with open(vocab_path, encoding="utf-8", newline="") as f:
        raw = f.read()
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    # keep a token that *is* a space (THUCNews vocab line 0); strip only Windows line ends
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _is_word2vec_header(parts: list[str]) -> bool:
    return len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit()


def read_vectors(
    path: str | os.PathLike,
    vocab_path: Optional[str | os.PathLike] = None,
    *,
    wanted: Optional[set] = None,
    npz_key: Optional[str] = None,
) -> tuple[dict[str, np.ndarray], int, int]:
    """Read a vector file into ``{token: vector}`` (only tokens in ``wanted`` when given, to bound memory).

    Formats: ``.npz`` (needs ``vocab_path``; the array under ``npz_key``, or the only array, or ``embeddings``),
    ``.npy`` (needs ``vocab_path``), ``.bin`` (word2vec binary), anything else: word2vec/GloVe text.

    Returns:
        ``(vectors, dim, number_of_tokens_in_file)``.

    Raises:
        FileNotFoundError / ValueError naming the file, line or key and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained vectors: file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".npz", ".npy"):
        return _read_matrix_vectors(path, vocab_path, wanted, npz_key)
    if suffix == ".bin":
        return _read_word2vec_binary(path, wanted)
    return _read_text_vectors(path, wanted)


def _read_matrix_vectors(path: Path, vocab_path: Optional[str | os.PathLike], wanted: Optional[set],
                         npz_key: Optional[str]) -> tuple[dict[str, np.ndarray], int, int]:
    """A ``.npz``/``.npy`` matrix whose row *i* is the token on line *i* of ``vocab_path``."""
    suffix = path.suffix.lower()
    out: dict[str, np.ndarray] = {}
    if vocab_path is None:
        raise ValueError(f"pretrained vectors {path}: a {suffix} matrix needs a vocab file (one token per line)")
    vocab_path = Path(vocab_path)
    if not vocab_path.is_file():
        raise FileNotFoundError(f"pretrained vectors: vocab file not found: {vocab_path}")
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            if npz_key is None:
                npz_key = keys[0] if len(keys) == 1 else ("embeddings" if "embeddings" in keys else None)
            if npz_key is None or npz_key not in keys:
                raise ValueError(f"pretrained vectors {path}: no array {npz_key!r}; arrays in the file: {keys}")
            mat = z[npz_key]
    else:
        mat = np.load(path, allow_pickle=False)
    if mat.ndim != 2:
        raise ValueError(f"pretrained vectors {path}: expected a 2-D (tokens, dim) array, got shape {mat.shape}")
    tokens = _read_vocab_lines(vocab_path)
    if len(tokens) != mat.shape[0]:
        raise ValueError(
            f"pretrained vectors {path} has {mat.shape[0]} rows but vocab file {vocab_path} has {len(tokens)} "
            f"lines; they must be row-aligned (line i = row i)"
        )
    for i, t in enumerate(tokens):
        if (wanted is None or t in wanted) and t not in out:
            out[t] = mat[i]
    return out, int(mat.shape[1]), len(tokens)


def _read_word2vec_binary(path: Path, wanted: Optional[set]) -> tuple[dict[str, np.ndarray], int, int]:
    """A word2vec binary file: a ``<count> <dim>`` header, then ``token<space><dim float32>`` per entry."""
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        header = f.readline().decode("utf-8", "strict").split()
        if not _is_word2vec_header(header):
            raise ValueError(f"pretrained vectors {path}: word2vec binary must start with '<count> <dim>', got {header}")
        count, dim = int(header[0]), int(header[1])
        for row in range(count):
            chars = bytearray()
            while True:
                c = f.read(1)
                if not c:
                    raise ValueError(f"pretrained vectors {path}: file ends inside entry {row + 1} of {count}")
                if c == b" ":
                    break
                if c != b"\n":
                    chars.extend(c)
            token = chars.decode("utf-8", "replace")
            buf = f.read(4 * dim)
            if len(buf) != 4 * dim:
                raise ValueError(f"pretrained vectors {path}: entry {row + 1} ({token!r}) has a short vector")
            if (wanted is None or token in wanted) and token not in out:
                out[token] = np.frombuffer(buf, dtype="<f4").copy()
    return out, dim, count


def _read_text_vectors(path: Path, wanted: Optional[set]) -> tuple[dict[str, np.ndarray], int, int]:
    """A word2vec/GloVe text file: an optional ``<count> <dim>`` header, then ``token v1 ... vD`` per line."""
    out: dict[str, np.ndarray] = {}
    dim: Optional[int] = None
    n_tokens = 0
    numeric_extra = []  # lines whose "token" ends in a number: one number too many (a wrong dimension)?
    with open(path, encoding="utf-8", errors="strict") as f:
        lines, lineno = enumerate(f, 1), 0
        while True:
            try:
                lineno, line = next(lines)
            except StopIteration:
                break
            except UnicodeDecodeError as e:  # reported near where the reader stopped (it decodes in blocks)
                raise ValueError(f"pretrained vectors {path}: not UTF-8 text after line {lineno} ({e.reason}); "
                                 "convert the file to UTF-8") from None
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            parts = line.rstrip(" ").split(" ")
            if lineno == 1 and _is_word2vec_header(parts):
                dim = int(parts[1])
                continue
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise ValueError(f"pretrained vectors {path}, line {lineno}: expected 'token v1 ... vD', got {line[:80]!r}")
            if len(parts) < dim + 1:
                raise ValueError(
                    f"pretrained vectors {path}, line {lineno}: expected a token and {dim} numbers, got {len(parts)} fields"
                )
            token = " ".join(parts[: len(parts) - dim])  # GloVe 840B has a few tokens that contain spaces
            if len(parts) > dim + 1 and _is_number(parts[len(parts) - dim - 1]):
                numeric_extra.append(lineno)
            n_tokens += 1
            if (wanted is None or token in wanted) and token not in out:
                try:
                    out[token] = np.asarray(parts[len(parts) - dim :], dtype=np.float32)
                except ValueError as e:
                    raise ValueError(f"pretrained vectors {path}, line {lineno} ({token!r}): not a number: {e}") from None
    if dim is None:
        raise ValueError(f"pretrained vectors {path}: the file holds no vectors")
    if numeric_extra:
        logger.warning("pretrained vectors %s: %d line(s) have more than %d numbers (e.g. line %d): their extra "
                       "leading number became part of the token; check the vector dimension", path,
                       len(numeric_extra), dim, numeric_extra[0])
    return out, dim, n_tokens


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_pretrained_vectors(
    tokenizer,
    path: str | os.PathLike,
    vocab_path: Optional[str | os.PathLike] = None,
    *,
    texts: Optional[Sequence[str]] = None,
    npz_key: Optional[str] = None,
    lowercase_fallback: bool = True,
    seed: int = 0,
) -> tuple[torch.Tensor, VectorReport]:
    """Build an embedding matrix for ``tokenizer``'s vocabulary from a pretrained vector file.

    Row ``i`` is the vector of token ``i`` when the file has it (exactly, or -- with ``lowercase_fallback`` --
    through its lowercase form); the ``[UNK]`` row uses the file's unknown vector when it has one (``<UNK>``,
    ``<unk>`` ...); the ``[PAD]`` row is zero; every other row is drawn from ``N(0, s)`` with ``s`` the standard
    deviation of the loaded vectors (seeded). The vocabulary mismatch is counted in the returned report and logged.

    Args:
        tokenizer: a tokenizer from :func:`build_tokenizer` (any tokenizer with ``get_vocab()`` works).
        path: ``.npz``/``.npy`` matrix (with ``vocab_path``), word2vec ``.bin`` or word2vec/GloVe text.
        vocab_path: the row-aligned vocab file of a ``.npz``/``.npy`` matrix.
        texts: optional texts (e.g. the training set) to measure running-token coverage.
        npz_key: array name inside the ``.npz``.
        lowercase_fallback: look up ``token.lower()`` when ``token`` is missing.
        seed: seed of the random rows.

    Returns:
        ``(matrix, report)``: a float32 ``(vocab_size, dim)`` tensor and a :class:`VectorReport`.
    """
    import torch

    vocab: dict[str, int] = tokenizer.get_vocab()
    size = max(vocab.values()) + 1
    specials = set(getattr(tokenizer, "all_special_tokens", []) or [PAD_TOKEN, UNK_TOKEN])
    wanted = set(vocab) | {t.lower() for t in vocab} | set(_UNK_ALIASES)
    vectors, dim, file_tokens = read_vectors(path, vocab_path, wanted=wanted, npz_key=npz_key)

    loaded = np.stack(list(vectors.values())).astype(np.float64) if vectors else np.zeros((1, dim))
    std = float(loaded.std()) if vectors else 0.1
    gen = torch.Generator().manual_seed(seed)
    mat = torch.randn((size, dim), generator=gen, dtype=torch.float64) * (std if std > 0 else 0.1)

    found, found_lower, have = _fill_known_rows(mat, vocab, specials, vectors, lowercase_fallback)
    unk_from_file = _fill_special_rows(mat, tokenizer, vocab, vectors)

    n_regular = sum(1 for t in vocab if t not in specials)
    missing_tokens = [t for t in vocab if t not in specials and t not in have]
    token_cov = None
    if texts is not None:
        token_cov, counts = _running_token_coverage(tokenizer, texts, have)
        missing_tokens.sort(key=lambda t: -counts.get(t, 0))
    report = VectorReport(
        path=str(path),
        vocab_path=str(vocab_path) if vocab_path is not None else None,
        dim=dim,
        file_tokens=file_tokens,
        vocab_size=size,
        found=found,
        found_lowercase=found_lower,
        missing=len(missing_tokens),
        type_coverage=(found + found_lower) / n_regular if n_regular else 0.0,
        token_coverage=token_cov,
        missing_examples=missing_tokens[:20],
        unk_from_file=unk_from_file,
    )
    logger.info(str(report))
    return mat.float(), report


def _fill_known_rows(mat: torch.Tensor, vocab: dict, specials: set, vectors: dict,
                     lowercase_fallback: bool) -> tuple[int, int, set]:
    """Copy the file's vectors into the rows of the regular tokens; ``(found, found_lowercase, tokens_with_a_vector)``."""
    import torch

    found = found_lower = 0
    have: set[str] = set()
    for tok, idx in vocab.items():
        if tok in specials:
            continue
        if tok in vectors:
            mat[idx] = torch.from_numpy(np.asarray(vectors[tok], dtype=np.float64))
            found += 1
            have.add(tok)
        elif lowercase_fallback and tok.lower() in vectors:
            mat[idx] = torch.from_numpy(np.asarray(vectors[tok.lower()], dtype=np.float64))
            found_lower += 1
            have.add(tok)
    return found, found_lower, have


def _fill_special_rows(mat: torch.Tensor, tokenizer, vocab: dict, vectors: dict) -> bool:
    """The unknown token's row from the file's unknown vector (when it has one), the padding row zero;
    whether the unknown row came from the file."""
    import torch

    unk_from_file = False
    unk = getattr(tokenizer, "unk_token", None) or UNK_TOKEN
    if unk in vocab:
        for alias in (unk,) + _UNK_ALIASES:
            if alias in vectors:
                mat[vocab[unk]] = torch.from_numpy(np.asarray(vectors[alias], dtype=np.float64))
                unk_from_file = True
                break
    pad = getattr(tokenizer, "pad_token", None) or PAD_TOKEN
    if pad in vocab:
        mat[vocab[pad]] = 0.0
    return unk_from_file


def _running_token_coverage(tokenizer, texts: Sequence[str], have: set) -> tuple[Optional[float], Counter]:
    """The share of running tokens in ``texts`` that have a vector, and the token counts."""
    counts: Counter = Counter()
    backend = tokenizer.backend_tokenizer if hasattr(tokenizer, "backend_tokenizer") else None
    for enc in (backend.encode_batch(list(texts), add_special_tokens=False) if backend else []):
        counts.update(enc.tokens)
    total = sum(counts.values())
    covered = sum(c for t, c in counts.items() if t in have)
    return (covered / total if total else None), counts
