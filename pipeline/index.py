"""Stage 3, index: a collection folder -> Lucene index (Anserini IndexCollection, in this process's one JVM).

Impact indexes read `<variant>/collection/*.jsonl` (JsonVectorCollection, `--impact --pretokenized`: integer weights
become term frequencies, terms are kept verbatim) and also get `df.json` (document frequency per term, the
idf source of `qweight=idf` queries). BM25 indexes read a JsonCollection of title + text. The build itself, checked
and renamed only when complete, is engines/lucene.py's; here each index is reused only while it is the one its
manifest recorded (same collection, files of the recorded sizes).
"""
from __future__ import annotations

import json
from pathlib import Path

from common import layout
from engines.lucene import build_lucene, damaged
from pipeline.project import project
from plumbing import cli
from plumbing.artifacts import folder_lock, manifest, read_json, write_json, write_text
from plumbing.datasets import Dataset
from plumbing.settings import DataSettings, ModelSettings, Variant


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
