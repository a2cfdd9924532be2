"""Stage 3, index: a collection folder -> Lucene index (Anserini IndexCollection, in this process's one JVM).

Impact indexes read `<variant>/collection/*.jsonl` (JsonVectorCollection, `--impact --pretokenized`: integer weights
become term frequencies, terms are kept verbatim) and also get `df.json` (document frequency per term, the
idf source of `qweight=idf` queries). BM25 indexes read a JsonCollection of title + text. The index is built under
a temporary name and renamed only after its document count equals the collection's, so an interrupted or
broken build is never mistaken for a complete one: a rerun rebuilds it from the complete collection.
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

from common import layout
from common.errors import InputError
from common.jvm import autoclass, start_jvm
from pipeline.project import project
from plumbing import cli
from plumbing.artifacts import folder_lock, manifest, read_json, write_json, write_text
from plumbing.collection import EMPTY_TERM
from plumbing.datasets import Dataset
from plumbing.settings import DataSettings, ModelSettings, Variant


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


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.index", __doc__, cli.dataset_options, cli.model_options, cli.variant_options)
    parser.add_argument("--threads", type=int, default=2, help="indexing threads (default 2)")
    parser.add_argument("--bm25", action="store_true", help="build the BM25 index of title + text instead")
    args = parser.parse_args(argv)
    data = cli.data_settings(args)
    if args.bm25:
        print(f"index: {bm25_index(data.load(), data.key, args.threads)}")
    else:
        model = cli.model_settings(args)
        index_variant(data, model, cli.variant(args, model), args.threads)
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
