"""Every path keytokens reads or writes, in one place (the README's "Where outputs land" describes this module).

indexes/<dataset>/<model>/embeddings/        encode: float32 shards + manifest
indexes/<dataset>/<model>/<variant>/         project: collection/ + manifest; index: lucene/ (+ df.json)
indexes/<dataset>/bm25/                      the BM25 index of title + text
runs/<dataset>/[<split>/]                    search/evaluate: <run>.trec + <run>.json, metrics.json, leaderboard.md
runs/<dataset>/analysis/<model>/             analyze;  runs/bench/<dataset>.md  bench
models/<name>/                               train: model/, checkpoint.pt, manifest.json, training.png
.cache/models/, .cache/gguf/                 dequantized GGUF models, assembled split GGUF files
`<dataset>` is `scifact`, or `scifact-limit50` for a `limit=50` slice. KEYTOKENS_INDEXES, KEYTOKENS_RUNS,
KEYTOKENS_MODELS and KEYTOKENS_CACHE move the four roots (the tests use temporary ones).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def index_root() -> Path:
    return Path(os.environ.get("KEYTOKENS_INDEXES", REPO_ROOT / "indexes"))


def runs_root() -> Path:
    return Path(os.environ.get("KEYTOKENS_RUNS", REPO_ROOT / "runs"))


def models_root() -> Path:
    """Where `make train` puts trained embedders."""
    return Path(os.environ.get("KEYTOKENS_MODELS", REPO_ROOT / "models"))


def cache_dir() -> Path:
    return Path(os.environ.get("KEYTOKENS_CACHE", REPO_ROOT / ".cache"))


def dataset_key(name: str, limit: int | None) -> str:
    """Folder name for a dataset slice: `scifact`, or `scifact-limit50` for a limited run."""
    return name if not limit else f"{name}-limit{limit}"


def model_dir(key: str, model_name: str) -> Path:
    return index_root() / key / model_name


def embeddings_dir(key: str, model_name: str) -> Path:
    return model_dir(key, model_name) / "embeddings"


def variant_dir(key: str, model_name: str, variant_name: str) -> Path:
    return model_dir(key, model_name) / variant_name


def bm25_dir(key: str) -> Path:
    return index_root() / key / "bm25"


def run_dir(key: str, split: str) -> Path:
    """runs/<dataset>/ for the test split, runs/<dataset>/<split>/ for others (e.g. train runs that tune fusion)."""
    base = runs_root() / key
    return base if split == "test" else base / split


def bench_dir() -> Path:
    return runs_root() / "bench"


def trained_model_dir(name: str) -> Path:
    return models_root() / name


def gguf_cache(stem: str) -> Path:
    """The dequantized float32 folder of a GGUF file."""
    return cache_dir() / "models" / stem


def assembled_gguf(name: str) -> Path:
    return cache_dir() / "gguf" / name


def java_classes() -> Path:
    """The lean searcher's classes, compiled from java/ by `make setup`."""
    return cache_dir() / "java"
