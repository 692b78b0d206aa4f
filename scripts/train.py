#!/usr/bin/env python
"""Entry point for ``accelerate launch scripts/train.py RECIPE [key=value ...]``: the same code as
``nlp-cv-tricks train``."""

import sys

from nlp_cv_tricks.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
