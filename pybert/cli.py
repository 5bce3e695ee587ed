"""The ``pybert`` command line: ``embed`` sentences, ``rank`` a file against a query (cosine),
``rerank`` it with a cross-encoder."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import List, Optional

import numpy as np

from . import _inputs
from ._inputs import PRECISIONS
from .encoder import DEFAULT_MODEL_HINT, default_model_path  # noqa: F401  (re-exported)

SAMPLE_CORPUS = os.path.join(os.path.dirname(__file__), "data", "sample_corpus.txt")
POOLING_CHOICES = ("cls", "mean", "max", "mean_sqrt_len", "pooler")


def _read_lines(source: Optional[str], keep_blank: bool) -> List[str]:
    """One sentence per line from a file, or stdin when source is None or "-"."""
    name = "standard input" if source in (None, "-") else repr(source)
    try:
        if source in (None, "-"):
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as f:
                text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"cannot read {name}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise ValueError(f"cannot read {name}: {e.strerror or e}") from None
    lines = text.splitlines()
    if not keep_blank:
        lines = [line for line in lines if line.strip()]
    if not lines:
        raise ValueError(f"{name} is empty: expected one sentence per line")
    return lines


def _encoder(args: argparse.Namespace):
    from .encoder import SentenceEncoder

    return SentenceEncoder(args.model, num_threads=args.threads, precision=args.precision)


def _write_jsonl(output: Optional[str], rows) -> None:
    """(text, embedding) rows as JSON lines, to ``output`` or stdout."""
    out = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        for text, embedding in rows:
            out.write(json.dumps({"text": text, "embedding": embedding}, ensure_ascii=False)
                      + "\n")
    finally:
        if out is not sys.stdout:
            out.close()


def _embed_retrieval(args: argparse.Namespace) -> int:
    """embed --sparse (SparseEncoder) or --multi-vector (MultiVectorEncoder)."""
    kind = "--sparse" if args.sparse else "--multi-vector"
    if not args.model:
        raise ValueError(f"{kind} needs --model DIR, a sentence-transformers "
                         f"{'SparseEncoder' if args.sparse else 'MultiVectorEncoder'} directory")
    if args.pooling is not None or args.normalize is not None:
        raise ValueError(f"--pooling and --normalize do not apply to {kind}")
    if args.pool_factor is not None and not args.multi_vector:
        raise ValueError("--pool-factor applies to --multi-vector only")
    from .token_pooling import HierarchicalTokenPooling

    pooling = None if args.pool_factor is None else \
        HierarchicalTokenPooling(pool_factor=args.pool_factor)
    if args.output and not args.output.endswith((".npz", ".jsonl")):
        raise ValueError(f"--output {args.output!r}: {kind} writes a .npz or .jsonl file")
    sentences = _read_lines(args.input, keep_blank=True)
    if args.sparse:
        from .sparse import SparseEncoder

        encoder = SparseEncoder(args.model, num_threads=args.threads, precision=args.precision)
    else:
        from .multivector import MultiVectorEncoder

        encoder = MultiVectorEncoder(args.model, num_threads=args.threads,
                                     precision=args.precision, token_pooling=pooling)
    encode = {None: encoder.encode, "query": encoder.encode_query,
              "document": encoder.encode_document}[args.task]
    result = encode(sentences, batch_size=args.batch_size)
    npz = bool(args.output) and args.output.endswith(".npz")
    if args.sparse:
        if npz:  # the CSR arrays, as scipy.sparse.load_npz reads them
            np.savez(args.output, indptr=result.indptr, indices=result.indices,
                     data=result.data, shape=np.array(result.shape), format="csr")
        else:
            _write_jsonl(args.output, ((text, {str(int(i)): float(v)
                                               for i, v in zip(*result.row(r))})
                                       for r, text in enumerate(sentences)))
        summary = f"{len(sentences)} sparse embeddings ({result.nnz} nonzeros)"
    else:
        if npz:  # all token vectors stacked; text i in rows offsets[i]:offsets[i + 1]
            offsets = _inputs.offsets([len(v) for v in result])
            np.savez(args.output, vectors=np.concatenate(result), offsets=offsets)
        else:
            _write_jsonl(args.output, ((text, v.tolist()) for text, v in zip(sentences, result)))
        summary = f"{sum(len(v) for v in result)} token vectors of {len(sentences)} texts"
    if args.output:
        print(f"wrote {summary} to {args.output}", file=sys.stderr)
    return 0


def _embed(args: argparse.Namespace) -> int:
    if args.sparse or args.multi_vector:
        return _embed_retrieval(args)
    if args.task is not None:
        raise ValueError("--task applies to --sparse and --multi-vector only")
    if args.output and not args.output.endswith((".npy", ".jsonl")):
        raise ValueError(f"--output {args.output!r}: expected a .npy or .jsonl file name")
    sentences = _read_lines(args.input, keep_blank=True)
    vectors = _encoder(args).encode(sentences, batch_size=args.batch_size,
                                    normalize=args.normalize, pooling=args.pooling)
    if args.output and args.output.endswith(".npy"):
        np.save(args.output, vectors)
    else:
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
        try:
            for text, vec in zip(sentences, vectors):
                out.write(json.dumps({"text": text, "embedding": vec.tolist()},
                                     ensure_ascii=False) + "\n")
        finally:
            if out is not sys.stdout:
                out.close()
    if args.output:
        print(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {args.output}",
              file=sys.stderr)
    return 0


def _rank(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    lines = _read_lines(args.file, keep_blank=False)
    encoder = _encoder(args)
    query = encoder.encode(args.query, normalize=True)  # (dim,)
    corpus = encoder.encode(lines, normalize=True)      # (n, dim)
    scores = corpus @ query                             # (n,) cosine similarities
    order = np.argsort(-scores, kind="stable")[:args.top]
    _print_ranked(args.query, lines, [(i, scores[i]) for i in order])
    return 0


def _print_ranked(query: str, lines: List[str], ranked: List[tuple]) -> None:
    """The query, then ``rank. score  line`` for (index, score) pairs, best first."""
    print(f"query: {query}")
    for rank, (i, score) in enumerate(ranked, 1):
        print(f"{rank:3d}. {score:.4f}  {lines[i]}")


def _rerank(args: argparse.Namespace) -> int:
    from .cross_encoder import CrossEncoder

    if args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    lines = _read_lines(args.file, keep_blank=False)
    model = CrossEncoder(args.model, num_threads=args.threads, precision=args.precision)
    ranked = model.rank(args.query, lines, top_k=args.top, batch_size=args.batch_size)
    _print_ranked(args.query, lines, [(r["corpus_id"], r["score"]) for r in ranked])
    return 0


def _demo(args: argparse.Namespace) -> int:
    from . import BertModel

    model = BertModel.from_pretrained(args.model or default_model_path(),
                                      num_threads=args.threads, precision=args.precision)
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


def _classify(args: argparse.Namespace) -> int:
    from . import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(args.model, num_threads=args.threads,
                                                          precision=args.precision)
    lines = _read_lines(args.input, keep_blank=False)
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

    model = BertForMaskedLM.from_pretrained(args.model, num_threads=args.threads,
                                            precision=args.precision)
    for i, tokens in enumerate(model.fill_mask(args.text, top_k=args.top_k)):
        if i:
            print()
        for t in tokens:
            print(f"{t['token']}\t{t['score']:.6g}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        from .server import app, tasks
    except ImportError as e:
        raise ValueError(f"pybert serve needs the server extra ({e}); install it with: "
                         'pip install "pybert[server]"') from None
    specs = args.model or []
    named = [m for m in specs if "=" in m]
    if args.task not in (None, "embed") and not specs:
        raise ValueError(f"--task {args.task} needs --model DIR, a {args.task} model's "
                         "directory")
    from .server import config as defaults

    config = defaults.ServerConfig(**{f.name: getattr(args, f.name)
                                      for f in dataclasses.fields(defaults.ServerConfig)})
    options = dict(host=args.host, port=args.port, config=config, num_threads=args.threads,
                   precision=args.precision, log_level=args.log_level,
                   api_key=args.api_key or os.environ.get(defaults.API_KEY_ENV) or None,
                   cors_allow_origins=args.cors_allow_origin or ())
    if named:
        if len(named) != len(specs) or args.served_model_name:
            raise ValueError("several models: give each as --model NAME=[TASK:]DIR (the NAME is "
                             "its served name; no --served-model-name)")
        models = dict(m.split("=", 1) for m in specs)
        if len(models) != len(specs):
            raise ValueError("two --model options have the same NAME")
        app.serve(models, args.task, **options)
    else:
        if len(specs) > 1:
            raise ValueError("several models: give each as --model NAME=[TASK:]DIR")
        task, path = tasks.parse_model_spec(specs[0] if specs else default_model_path(),
                                                   args.task)
        app.serve(path, task, served_model_name=args.served_model_name, **options)
    return 0


def _runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, help="threads (default: all CPUs)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="arithmetic of the Linear layers (default: fp32); bf16 needs AMX, "
                   "int8 quantizes dynamically, int8_bf16_attention adds bf16 attention (AMX); see "
                   "pybert.cpu_info()")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model directory or Hub model id (default: all-MiniLM-L6-v2)")
    _runtime(p)


def _serve_options(p: argparse.ArgumentParser) -> None:
    from .server import config as defaults

    p.add_argument("--model", action="append", metavar="[NAME=][TASK:]DIR",
                   help="a model directory (default: all-MiniLM-L6-v2); repeat as NAME=DIR to "
                        "serve several, each under its NAME; TASK (embed, classify, rerank, "
                        "sparse) defaults to what the directory holds")
    _runtime(p)
    p.add_argument("--task", choices=defaults.TASKS, default=None,
                   help="the task of a model given without TASK: (default: detected from its "
                        "directory: a sentence-transformers model embeds, a sequence "
                        "classifier with one label reranks, with several classifies)")
    p.add_argument("--served-model-name", default=None,
                   help="the model's name in requests and answers (default: its own, e.g. "
                        f"{defaults.DEFAULT_MODEL_NAME}, or its directory's name)")
    p.add_argument("--host", default=defaults.HOST,
                   help=f"address to listen on (default: {defaults.HOST})")
    p.add_argument("--port", type=int, default=defaults.PORT,
                   help=f"default: {defaults.PORT}")
    for flag, kwargs in defaults.ServerConfig.flags().items():
        p.add_argument(flag, **kwargs)
    p.add_argument("--api-key", default=None,
                   help="require 'Authorization: Bearer KEY' on every route but /health "
                        f"(default: ${defaults.API_KEY_ENV}, else no key)")
    p.add_argument("--cors-allow-origin", action="append", metavar="ORIGIN",
                   help="let browser pages from ORIGIN call the server (repeatable; * for any)")
    p.add_argument("--log-level", default=defaults.LOG_LEVEL, choices=defaults.LOG_LEVELS)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pybert", description="BERT inference on CPU.")
    sub = parser.add_subparsers(dest="command")

    embed = sub.add_parser("embed", help="sentence embeddings, one sentence per input line")
    _common(embed)
    embed.add_argument("--pooling", choices=POOLING_CHOICES,
                       help="pooling mode (default: the model's sentence-transformers config)")
    embed.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                       help="L2-normalize (default: the model's config)")
    embed.add_argument("--batch-size", type=int, default=32)
    kind = embed.add_mutually_exclusive_group()
    kind.add_argument("--sparse", action="store_true",
                      help="SPLADE vectors of a SparseEncoder --model: JSON lines of "
                           "{token id: weight}, or the CSR arrays in FILE.npz")
    kind.add_argument("--multi-vector", action="store_true",
                      help="token vectors of a MultiVectorEncoder --model: JSON lines of "
                           "[[...], ...], or FILE.npz (vectors, offsets)")
    embed.add_argument("--pool-factor", type=float, default=None,
                       help="with --multi-vector: pool each document's token vectors into about "
                       "1 / F as many (HierarchicalTokenPooling, Ward clustering)")
    embed.add_argument("--task", choices=("query", "document"), default=None,
                       help="with --sparse / --multi-vector: encode as queries or documents")
    embed.add_argument("--output", help="FILE.npy or FILE.jsonl (default: JSON lines on stdout); "
                       "FILE.npz or FILE.jsonl with --sparse / --multi-vector")
    embed.add_argument("input", nargs="?", help="text file, one sentence per line (default: stdin)")
    embed.set_defaults(func=_embed)

    rank = sub.add_parser("rank", help="rank a file's lines by cosine similarity to a query")
    _common(rank)
    rank.add_argument("--top", type=int, default=5, help="how many lines to show (default: 5)")
    rank.add_argument("query")
    rank.add_argument("file", help="text file, one candidate per line")
    rank.set_defaults(func=_rank)

    rerank = sub.add_parser("rerank", help="rank a file's lines by a cross-encoder's score "
                            "against a query")
    rerank.add_argument("--model", required=True,
                        help="a cross-encoder directory or Hub model id (sentence-transformers "
                        "CrossEncoder, any BERT family)")
    _runtime(rerank)
    rerank.add_argument("--top", type=int, default=5, help="how many lines to show (default: 5)")
    rerank.add_argument("--batch-size", type=int, default=32)
    rerank.add_argument("query")
    rerank.add_argument("file", help="text file, one candidate per line")
    rerank.set_defaults(func=_rerank)

    demo = sub.add_parser("demo", help="run the default model on a sample batch")
    _common(demo)
    demo.set_defaults(func=_demo)

    classify = sub.add_parser("classify", help="label each line of INPUT with a sequence "
                              "classifier: 'label<TAB>score' per line")
    classify.add_argument("--model", required=True,
                          help="a *ForSequenceClassification directory (any BERT family)")
    _runtime(classify)
    classify.add_argument("input", nargs="?", help="text file, one input per line (default: stdin)")
    classify.add_argument("--pairs", action="store_true",
                          help="each line is 'text<TAB>pair' (e.g. query and passage)")
    classify.add_argument("--top-k", type=int, default=1, help="labels per line (default: 1)")
    classify.add_argument("--max-length", type=int, default=None)
    classify.set_defaults(func=_classify)
    fill = sub.add_parser("fill-mask", help="the most probable tokens for each mask token "
                          "([MASK], RoBERTa's <mask>): 'token<TAB>probability' per line, a "
                          "blank line between masks")
    fill.add_argument("--model", required=True, help="masked-LM directory (BERT, RoBERTa, XLM-R, "
                      "DistilBERT, Megatron-BERT)")
    _runtime(fill)
    fill.add_argument("text", help='text with the mask token, e.g. "Paris is the [MASK] of '
                      'France."')
    fill.add_argument("--top-k", type=int, default=5)
    fill.set_defaults(func=_fill_mask)

    serve = sub.add_parser("serve", help="an HTTP server for embeddings, classification, "
                           "reranking and sparse vectors, with the APIs of OpenAI, TEI, Jina "
                           "and Cohere and dynamic batching (needs pybert[server])")
    _serve_options(serve)
    serve.set_defaults(func=_serve)

    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["demo"] + (sys.argv[1:] if argv is None else argv))
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return status
    except BrokenPipeError:
        # The reader stopped early (`pybert rank ... | head`): what it read is what it wanted.
        # Stop quietly as Unix tools do, with stdout on /dev/null so that the interpreter's last
        # flush does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # no file descriptor behind sys.stdout (captured)
            pass
        return 0
    except (OSError, ValueError, TypeError, IndexError) as e:
        print(f"pybert: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
