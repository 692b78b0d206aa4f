"""``nlp-cv-tricks convert-long MODEL --max-length 4096 --window 256 --out DIR``
(:func:`nlp_cv_tricks.models.long.convert_to_longformer`)."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_cli"]


def _parse_window(text: str) -> int | list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--window expects an even integer or a comma list, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def _run_convert(args: argparse.Namespace) -> int:
    from ..models.long import convert_to_longformer

    model, tok = convert_to_longformer(
        args.model,
        max_length=args.max_length,
        attention_window=args.window,
        out_dir=args.out,
        tokenizer_name_or_path=args.tokenizer,
        overwrite=args.overwrite,
    )
    n = sum(p.numel() for p in model.parameters())
    print(
        json.dumps(
            {
                "out": str(args.out),
                "max_length": args.max_length,
                "attention_window": model.config.attention_window,
                "max_position_embeddings": model.config.max_position_embeddings,
                "parameters": n,
            }
        )
    )
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Add ``convert-long MODEL --max-length 4096 --window 256 --out DIR`` to an argparse subparsers object."""
    from ..models.long import convert_to_longformer

    p = subparsers.add_parser(
        "convert-long",
        help="turn a BERT/RoBERTa-style checkpoint into a Longformer (tiled positions, global q/k/v from local)",
        description=convert_to_longformer.__doc__.split("\n\n")[0],
    )
    p.add_argument("model", help="Hub id or local directory of a BERT/RoBERTa-style model ('minilm-l6' offline)")
    p.add_argument("--max-length", type=int, default=4096, help="new maximum length in tokens (default 4096)")
    p.add_argument("--window", type=_parse_window, default=256, help="attention window, even (default 256)")
    p.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    p.add_argument("--tokenizer", default=None, help="tokenizer source if not the model's")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.set_defaults(func=_run_convert)
    return p
