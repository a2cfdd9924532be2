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
import re
from pathlib import Path

from common.errors import InputError

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


DATASET_NAME = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")


def check_dataset_name(name: str) -> str:
    """A dataset name is a name (letters, digits, `-`, `_`, and `/` between the parts of an ir_datasets id), never
    a path: it becomes a folder under every root, so `..` or an absolute path would write outside them."""
    if not DATASET_NAME.fullmatch(name or ""):
        raise InputError(f"dataset={name!r} is not a dataset name: use letters, digits, '-', '_' and '/' "
                         f"(e.g. scifact, cqadupstack/android); a folder of your own goes in data_dir=")
    return name


def inside(root: Path, *parts: str) -> Path:
    """`root/parts...`, refused unless it stays under `root` once resolved (symlinks and `..` included)."""
    path = root.joinpath(*parts)
    resolved, base = path.resolve(), root.resolve()
    if resolved != base and base not in resolved.parents:
        raise InputError(f"{path} resolves to {resolved}, outside {base}; use a plain name for the dataset and model")
    return path


def dataset_key(name: str, limit: int | None, split: str = "test") -> str:
    """Folder name for a dataset slice: `scifact`, or `scifact-limit50` for a limited run; a limited slice of another
    split than test is named apart (`scifact-limit50-train`): the slice keeps the split's judged documents."""
    check_dataset_name(name)
    if not limit:
        return name
    return f"{name}-limit{limit}" if split == "test" else f"{name}-limit{limit}-{split}"


def model_dir(key: str, model_name: str) -> Path:
    return inside(index_root(), key, model_name)


def embeddings_dir(key: str, model_name: str) -> Path:
    return model_dir(key, model_name) / "embeddings"


def variant_dir(key: str, model_name: str, variant_name: str) -> Path:
    return inside(index_root(), key, model_name, variant_name)


def bm25_dir(key: str) -> Path:
    return inside(index_root(), key, "bm25")


def run_dir(key: str, split: str) -> Path:
    """runs/<dataset>/ for the test split, runs/<dataset>/<split>/ for others (e.g. train runs that tune fusion)."""
    base = inside(runs_root(), key)
    return base if split == "test" else inside(runs_root(), key, split)


def bench_dir() -> Path:
    return runs_root() / "bench"


def trained_model_dir(name: str) -> Path:
    return inside(models_root(), name)


def student_dir(model_name: str, model_folder: Path | None = None) -> Path:
    """`models/<embedder>/student[-<dtype tag>]/` (or inside `model_folder`, a trained model's folder kept
    elsewhere): the distilled index's weights belong to the embedder (and the dtype of the embeddings) they were
    trained on; `smollm2-ft-bf16` -> models/smollm2-ft/student-bf16/."""
    for tag in ("bf16", "fp16"):
        if model_name.endswith(f"-{tag}"):
            base, leaf = model_name.removesuffix(f"-{tag}"), f"student-{tag}"
            break
    else:
        base, leaf = model_name, "student"
    return model_folder / leaf if model_folder is not None else inside(models_root(), base, leaf)


def gguf_cache(stem: str) -> Path:
    """The dequantized float32 folder of a GGUF file."""
    return cache_dir() / "models" / stem


def assembled_gguf(name: str) -> Path:
    return cache_dir() / "gguf" / name


def java_classes() -> Path:
    """The lean searcher's classes, compiled from java/ by `make setup`."""
    return cache_dir() / "java"
