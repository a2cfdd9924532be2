"""Indexing: a variant's collection -> Lucene impact index; a corpus -> BM25 index; reused while intact.

The functions behind `python -m pipeline.index` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import json
from pathlib import Path

from common import layout
from engines.lucene import build_lucene, damaged
from plumbing.artifacts import folder_lock, manifest, read_json, write_json, write_text
from plumbing.datasets import Dataset
from plumbing.settings import DataSettings, ModelSettings, Variant
from steps.project import project


def index_variant(data: DataSettings, model: ModelSettings, variant: Variant, threads: int = 2) -> Path:
    """Lucene impact index of one variant's collection (built by `project` if missing)."""
    out = variant.dir(data, model)
    project(data, model, variant)
    lucene = out / "lucene"
    info = read_json(out / "manifest.json", "collection manifest")
    done = out / "lucene.manifest.json"
    with folder_lock(out):
        built = read_json(done, "index manifest") if done.exists() and lucene.exists() else {}
        if built.get("collection_written") == info["written"]:
            why = damaged(lucene, built.get("lucene", {}))
            if why is None:
                print(f"index up to date: {lucene}")
                return lucene
            print(f"index {lucene} is damaged ({why}); rebuilding it")
        stats = build_lucene(out / "collection", lucene, impact=True, threads=threads)
        write_json(done, manifest("index", model=model.name, variant=out.name, settings=info["settings"],
                                  scale=info["scale"], collection_written=info["written"], lucene=stats,
                                  normalize=info["settings"]["normalize"]))
    print(f"index: {lucene} ({stats['documents']} docs, {stats['bytes'] / 1e6:.1f} MB)")
    return lucene


def bm25_index(dataset: Dataset, key: str, threads: int = 2) -> Path:
    """Lucene BM25 index of title + text (the BEIR "flat" convention), built once per dataset slice."""
    base = layout.bm25_dir(key)
    lucene = base / "lucene"
    corpus = {k: v for k, v in dataset.fingerprint.items() if k in ("documents", "corpus_sha1")}
    with folder_lock(base):
        done = base / "manifest.json"
        if done.exists() and lucene.exists():
            info = read_json(done, "BM25 index manifest")
            built, why = info.get("corpus"), damaged(lucene, info.get("lucene", {}))
            if built in (None, corpus) and why is None:  # None: built before corpus hashes were recorded
                return lucene
            print(f"BM25 index {lucene} " + (f"is damaged ({why})" if why else
                                             f"was built from another corpus ({built} != {corpus})") + "; rebuilding it")
        lines = [json.dumps({"id": d.doc_id, "contents": d.contents}, ensure_ascii=False) for d in dataset.corpus.values()]
        write_text(base / "collection" / "part-00000.jsonl", "\n".join(lines) + "\n")
        stats = build_lucene(base / "collection", lucene, impact=False, threads=threads)
        write_json(base / "manifest.json", manifest("index", model="bm25", analyzer="Lucene English (Anserini default)",
                                                    lucene=stats, documents=len(lines), corpus=corpus))
    return lucene
