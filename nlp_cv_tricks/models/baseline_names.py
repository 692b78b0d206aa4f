"""The names of the text baselines trained from scratch and their aliases: one table for the model factory, the
baselines themselves and the doctor's remedies (imports nothing, so reading a name loads no model code)."""

from __future__ import annotations

__all__ = ["BASELINE_NAMES", "BASELINE_ALIASES"]

BASELINE_NAMES = ("textcnn", "fasttext", "dpcnn", "textrnn", "textrnn_att", "textrcnn")
BASELINE_ALIASES = {"text_cnn": "textcnn", "cnn": "textcnn", "fast_text": "fasttext", "text_rnn": "textrnn",
                    "bilstm": "textrnn", "textrnn-att": "textrnn_att", "text_rcnn": "textrcnn", "rcnn": "textrcnn"}

# the keys of a baseline's ``model.kwargs.tokenizer`` (data/vocab.py build_tokenizer's options, level and max_length)
TOKENIZER_KEYS = ("level", "max_vocab_size", "min_freq", "lowercase", "unicode_normalization", "split",
                  "keep_whitespace", "max_length")
