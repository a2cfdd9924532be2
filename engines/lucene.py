"""Lucene indexes built by Anserini's IndexCollection in this process's one JVM, checked before they are trusted.

The index is built under a temporary name and renamed only after its document count equals the collection's, so an
interrupted or broken build is never mistaken for a complete one; the size of every file is recorded, so a file
truncated or removed later is found (`damaged`). Impact collections also get `df.json` (document frequency per
term, the idf source of `qweight=idf` queries).
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

from common.errors import InputError
from common.jvm import autoclass, start_jvm
from plumbing.artifacts import write_json
from plumbing.collection import EMPTY_TERM

JAVA_BLANKS = "".join(chr(c) for c in range(33))  # what Java's String.trim() strips (Anserini tests contents.trim())


def _count_collection(collection: Path, impact: bool) -> tuple[int, Counter]:
    """Documents Lucene will hold from a collection folder, and the document frequency of each vector term (none for
    JsonCollection). A JsonCollection document with blank contents (an empty title and text) is skipped by Anserini
    as an empty document: it could match no query, so it is not counted (impact collections carry EMPTY_TERM)."""
    documents, df = 0, Counter()
    for part in sorted(collection.glob("*.jsonl")):
        with part.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    obj = json.loads(line)
                    if impact or obj.get("contents", "").strip(JAVA_BLANKS):
                        documents += 1
                    df.update(obj.get("vector", {}).keys())
    return documents, df


def lucene_doc_count(index_dir: Path) -> int:
    start_jvm()
    from pyserini.index.lucene import LuceneIndexReader

    return int(LuceneIndexReader(str(index_dir)).stats()["documents"])


def build_lucene(collection: Path, index_dir: Path, impact: bool, threads: int = 2) -> dict:
    """Run IndexCollection into `<index_dir>.tmp`, check the count, rename; returns counts and timing."""
    start_jvm()
    expected, df = _count_collection(collection, impact)
    tmp = index_dir.with_name(index_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    args = ["-collection", "JsonVectorCollection" if impact else "JsonCollection", "-input", str(collection),
            "-index", str(tmp), "-generator", "DefaultLuceneDocumentGenerator", "-threads", str(threads)]
    args += ["-impact", "-pretokenized"] if impact else ["-storePositions", "-storeDocvectors", "-storeRaw"]
    started = time.time()
    try:
        autoclass("io.anserini.index.IndexCollection").main(args)
        seconds = time.time() - started
        found = lucene_doc_count(tmp)
        if found != expected:
            raise InputError(f"Lucene index {tmp} holds {found} documents but the collection {collection} has "
                             f"{expected}; the build is incomplete, rerun `make index`")
        shutil.rmtree(index_dir, ignore_errors=True)
        tmp.replace(index_dir)
    except BaseException:  # Ctrl-C (the JVM runs with -Xrs, so it reaches Python) or a failure: no half index left
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if impact:
        df.pop(EMPTY_TERM, None)
        write_json(index_dir / "df.json", {"documents": expected, "df": dict(sorted(df.items()))})
    files = file_sizes(index_dir)
    return {"documents": found, "seconds": round(seconds, 1), "docs_per_second": round(found / max(seconds, 1e-9), 1),
            "bytes": sum(files.values()), "terms": len(df) if impact else None, "files": files}


def file_sizes(index_dir: Path) -> dict[str, int]:
    """Every file of a built index (Lucene's segments and df.json) with its size, as recorded at build time."""
    return {str(p.relative_to(index_dir)): p.stat().st_size for p in sorted(index_dir.rglob("*")) if p.is_file()}


def damaged(index_dir: Path, stats: dict) -> str | None:
    """Why a built index no longer is what its manifest recorded (a file missing, truncated or grown), or None.
    Indexes from before sizes were recorded are trusted."""
    recorded = stats.get("files")
    if recorded is None:
        return None
    found = file_sizes(index_dir)
    for name, size in recorded.items():
        if found.get(name) != size:
            return f"{name} is {'missing' if name not in found else f'{found[name]} bytes, built as {size}'}"
    return None
