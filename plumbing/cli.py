"""The command-line edge: one parser shape for every stage, the shared option groups, and the settings they build.

Stages never see an argparse Namespace: `main(argv)` parses, calls the builders below once, and passes typed
settings (plumbing/settings.py) to the stage functions. `cli_main` turns an InputError into one line and exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from common.errors import InputError
from common.threads import usable_cores
from encoders.queries import QUERY_MODES, QWEIGHTS
from plumbing.settings import ALIGNED_M, DEFAULTS, DataSettings, ModelSettings, QuerySettings, SearchSettings, Variant

THREADS = usable_cores()
ENGINES = ("lucene", "qdrant")


def cli_main(main: Callable[[list[str] | None], int | None]) -> None:
    """Run a stage's `main(argv)`, turning InputError (and Ctrl-C) into one line and an exit status."""
    try:
        code = main(None)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: what was complete is kept (encoded shards, finished indexes, written runs; a half-built "
              "index is removed); rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def stage_parser(module: str, doc: str | None, *groups: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """A stage CLI's parser: `python -m <module>`, the module docstring as help, then the shared option groups."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for add in groups:
        add(parser)
    return parser


def dataset_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset")
    group.add_argument("--dataset", default="scifact", help="BEIR dataset name (default: scifact)")
    group.add_argument("--split", default="test", help="qrels split: test (default), train, dev")
    group.add_argument("--data-dir", default=None, help="explicit BEIR folder (corpus.jsonl, queries.jsonl, qrels/); wins over BEIR_DIR")
    group.add_argument("--beir-dir", default=None, help="folder holding <dataset>/ BEIR folders (default: $BEIR_DIR); "
                       "when neither has the dataset, ir_datasets is used")
    group.add_argument("--limit", type=int, default=None, help="deterministic slice: first N queries, their judged docs, "
                       "and the first corpus docs up to N*10 in all")


def model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="smollm2", help="preset name (smollm2, gemma3, splade-tiny, e5-mistral-7b, "
                       "...), an HF id, a local folder or a .gguf file (default: smollm2)")
    group.add_argument("--pooling", default=None, help="override the preset's pooling: last, mean, weighted-mean, prompteol")
    group.add_argument("--max-length", type=int, default=None, help="the document token budget, as the preset's "
                       "truncation rule reads it: the text's own tokens for `text` presets (smollm2 246, SGPT 2,046: "
                       "prompt and instruction on top), the whole prompt string for `whole`, `llm2vec` and `template` "
                       "presets (GritLM and LLM2Vec 512, E5 4,096 and Qwen3-Embedding 8,192 with their closing token, "
                       "PromptEOL 2,048 cut inside the text: instruction and template included)")
    group.add_argument("--batch-size", type=int, default=None, help="texts per forward pass (preset default)")
    group.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    group.add_argument("--dtype", default="auto", help="weights' dtype: auto (bfloat16 on CUDA, float32 elsewhere; "
                       "default), float32, bfloat16, float16")


def variant_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("variant (defaults: " + ", ".join(f"{k}={v}" for k, v in DEFAULTS.items()) + ")")
    group.add_argument("--source", default=None, help="aligned (LLM aligned tokens), own (LLM-free control), hybrid "
                       "(own tokens, BM25-tf x (1 + aligned logit)) or expansion (terms=words: own words + the top-K "
                       "words of the embedding, the trained expansion) or distilled (terms=words: the index `make distil` taught "
                       "the fused hybrid + dense ranking; queries stay BM25's lookup)")
    group.add_argument("--k", type=int, default=None, help="aligned tokens kept per document")
    group.add_argument("--weighting", default=None, help="aligned: logit|log|softmax; own: uniform|bm25tf")
    group.add_argument("--normalize", default=None, help="on: canonical lower-cased terms; off: raw tokens")
    group.add_argument("--vocab", default=None, help="all: expansion; text: only terms occurring in the document")
    group.add_argument("--terms", default=None, choices=("tokens", "words"), help="index terms: tokens (the "
                       "tokenizer's, normalised) or words (Lucene's English analyzer, as BM25 indexes them)")
    group.add_argument("--pc1", default=None, help="off, remove, auto (lambda maximising local alignment), "
                       "or lambda for e + lambda * u1")


def search_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("search")
    group.add_argument("--query", default="tokens", choices=QUERY_MODES, help="sparse query mode (default tokens: no LLM)")
    group.add_argument("--qweight", default="idf", choices=QWEIGHTS, help="weights of the query's own tokens (default idf)")
    group.add_argument("--m", type=int, default=ALIGNED_M, help=f"aligned tokens added per query in --query aligned (default {ALIGNED_M})")
    group.add_argument("--index", default=None, help="explicit variant folder (default: from model and variant options)")
    group.add_argument("--threads", type=int, default=THREADS, help=f"search threads (default {THREADS})")
    group.add_argument("--keep-identical-ids", action="store_true", help="keep hits whose document id is the query's "
                       "id (by default they are removed on every dataset, as BEIR's evaluation and Pyserini's 2CR do)")
    group.add_argument("--engine", default="lucene", choices=ENGINES, help="engine of the sparse runs: lucene (default) or "
                       "qdrant (the variant exported to a Qdrant Edge shard first)")


def data_settings(args: argparse.Namespace) -> DataSettings:
    return DataSettings(args.dataset, args.split, args.limit, args.data_dir, args.beir_dir)


def model_settings(args: argparse.Namespace) -> ModelSettings:
    return ModelSettings(args.model, args.pooling, args.max_length, args.batch_size, args.device, args.dtype,
                         task=getattr(args, "dataset", ""))


def variant(args: argparse.Namespace, model: ModelSettings) -> Variant:
    return Variant.build(model.preset, **variant_levers(args, model))


def variant_levers(args: argparse.Namespace, model: ModelSettings) -> dict:
    """The variant levers as given on the command line (None = the default), for stages that build several variants;
    a lever the asked-for variant would not read is refused here, before any work."""
    levers = {key: getattr(args, key, None) for key in DEFAULTS}
    Variant.refuse_unused(model.preset, levers)
    return levers


def query_settings(args: argparse.Namespace) -> QuerySettings:
    return QuerySettings(args.query, args.qweight, args.m)


def search_settings(args: argparse.Namespace) -> SearchSettings:
    return SearchSettings(getattr(args, "threads", THREADS), getattr(args, "index", None), getattr(args, "force", False),
                          getattr(args, "engine", "lucene"), getattr(args, "keep_identical_ids", False))
