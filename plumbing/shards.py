"""The embeddings' shard format, written by encode and read by every later stage through `read_shards`.

`part-XXXXX.meta.npz` holds doc ids, each document's own token ids (flat + offsets), truncation flags and, for
SPLADE, its non-zero vocabulary ids and weights; `part-XXXXX.npy` holds float32 [n, hidden] vectors and is written
last, so its presence marks the shard complete. Both are written under temporary names and renamed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from common.errors import InputError
from encoders.splade import SparseBatch
from plumbing.artifacts import read_json, write_bytes_with


@dataclass
class Shard:
    """One shard read back: ids, vectors (memory-mapped), each document's own tokens, and the raw meta arrays."""

    doc_ids: list[str]
    vectors: np.ndarray
    tokens: list[np.ndarray]
    truncated: np.ndarray
    meta: dict


def shard_paths(folder: Path, number: int) -> tuple[Path, Path]:
    return folder / f"part-{number:05d}.npy", folder / f"part-{number:05d}.meta.npz"


def embedding_width(folder: Path) -> int | None:
    """The dense embedding's width, read from the first shard's header (no array is loaded); None before any shard."""
    first = shard_paths(folder, 0)[0]
    return int(np.load(first, mmap_mode="r").shape[1]) if first.exists() else None


def shard_complete(folder: Path, number: int) -> bool:
    vectors, meta = shard_paths(folder, number)
    return vectors.exists() and meta.exists()


def _rows(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def read_shard(folder: Path, number: int) -> Shard:
    vec_path, meta_path = shard_paths(folder, number)
    meta = dict(np.load(meta_path))
    return Shard(meta["doc_ids"].tolist(), np.load(vec_path, mmap_mode="r"),
                 _rows(meta["token_ids"], meta["token_offsets"]), meta["truncated"], meta)


def read_shards(folder: Path, require_complete: bool = True) -> Iterator[Shard]:
    """Every shard of a complete embeddings folder, in corpus order."""
    info = read_json(folder / "manifest.json", "embeddings manifest")
    if require_complete and not info.get("complete"):
        raise InputError(f"embeddings in {folder} are incomplete; rerun `make encode` (or all --shard parts) first")
    for number in range(info["shards"]):
        yield read_shard(folder, number)


def load_shards(folder: Path) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    """All shards in order: doc ids, embeddings [N, hidden] ([N, 0] for SPLADE), each doc's own token ids."""
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    tokens: list[np.ndarray] = []
    for shard in read_shards(folder):
        ids.extend(shard.doc_ids)
        vectors.append(np.array(shard.vectors))
        tokens.extend(shard.tokens)
    return ids, np.concatenate(vectors), tokens


def load_sparse(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """SPLADE shards: per document, its non-zero vocabulary ids and weights."""
    rows = []
    for shard in read_shards(folder, require_complete=False):
        offsets = shard.meta["sparse_offsets"]
        rows.extend(zip(_rows(shard.meta["sparse_ids"], offsets), _rows(shard.meta["sparse_weights"], offsets)))
    return rows


def _ragged(arrays: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length rows as one flat array plus offsets (row i is flat[offsets[i]:offsets[i+1]])."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in arrays])
    flat = np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)
    return flat, offsets


def write_shard(folder: Path, number: int, doc_ids: list[str], batch) -> None:
    """One shard: meta (ids, own tokens, SPLADE weights if any) first, then the vectors that mark it complete."""
    vectors, meta = shard_paths(folder, number)
    flat, offsets = _ragged(batch.token_ids, np.int32)
    arrays = {"doc_ids": np.array(doc_ids, dtype=str), "token_ids": flat, "token_offsets": offsets,
              "truncated": batch.truncated}
    if isinstance(batch, SparseBatch):
        arrays["sparse_ids"], arrays["sparse_offsets"] = _ragged(batch.ids, np.int32)
        arrays["sparse_weights"], _ = _ragged(batch.weights, np.float32)
        embeddings = np.zeros((len(doc_ids), 0), dtype=np.float32)
    else:
        embeddings = batch.embeddings.astype(np.float32)

    def write_meta(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    def write_vectors(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, embeddings)

    write_bytes_with(meta, write_meta)
    write_bytes_with(vectors, write_vectors)  # last: its presence marks the shard complete
