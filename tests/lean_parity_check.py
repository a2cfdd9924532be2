"""By hand, on a full dataset: the lean Lucene path against Anserini, every hit and score, on every index built.

    python -m tests.lean_parity_check scifact [--k 1000,10,3]

For each impact index under indexes/<dataset>/<model>/<variant>/lucene (its own `query=tokens` idf queries) and the
BM25 index, every test query is searched at each k through keytokens.LeanSearcher and through Anserini's
SimpleImpactSearcher / SimpleSearcher (BM25 k1=0.9, b=0.4); prints hits compared and queries that differ. The
test tier (tests/test_lean.py) does the same on the slice; this is the full-corpus version the README quotes.
"""
from __future__ import annotations

import argparse
import sys

from common import layout
from common.jvm import autoclass
from engines.retrieval import BM25Index, ImpactIndex
from plumbing.artifacts import read_json
from plumbing.datasets import load_dataset
from plumbing.index_queries import token_encoder


def impact_parity(lucene, queries: dict[str, str], depths: list[int]) -> tuple[int, int]:
    folder = lucene.parent
    encoder = token_encoder(folder, read_json(folder / "manifest.json"), "idf")
    lean = ImpactIndex(lucene)
    anserini = autoclass("io.anserini.search.SimpleImpactSearcher")(str(lucene))
    JHashMap, JInt = autoclass("java.util.HashMap"), autoclass("java.lang.Integer")
    hits = differing = 0
    for text in queries.values():
        terms = encoder.encode(text)
        query = JHashMap()
        for term, weight in terms.items():
            query.put(term, JInt(int(weight)))
        for k in depths:
            expected = [(hit.docid, float(hit.score)) for hit in anserini.search(query, k)]
            hits += len(expected)
            differing += lean.search_one(terms, k) != expected
    return hits, differing


def bm25_parity(lucene, queries: dict[str, str], depths: list[int]) -> tuple[int, int]:
    lean = BM25Index(lucene)
    anserini = autoclass("io.anserini.search.SimpleSearcher")(str(lucene))
    anserini.set_bm25(0.9, 0.4)
    hits = differing = 0
    for text in queries.values():
        for k in depths:
            expected = [(hit.docid, float(hit.score)) for hit in anserini.search(text, k)]
            hits += len(expected)
            differing += lean.search_one(text, k) != expected
    return hits, differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--k", default="1000,10,3", help="depths, comma-separated")
    args = parser.parse_args(argv)
    depths = [int(k) for k in args.k.split(",")]
    queries = load_dataset(args.dataset, "test").queries
    root = layout.index_root() / args.dataset
    total_hits = total_differing = 0
    for manifest in sorted(root.glob("*/*/manifest.json")):
        lucene = manifest.parent / "lucene"
        if not lucene.is_dir() or manifest.parent.parent.name == "bm25":
            continue
        hits, differing = impact_parity(lucene, queries, depths)
        print(f"{manifest.parent.relative_to(root)}: {hits} hits compared, {differing} query x k differ", flush=True)
        total_hits, total_differing = total_hits + hits, total_differing + differing
    bm25 = layout.bm25_dir(args.dataset) / "lucene"
    if bm25.is_dir():
        hits, differing = bm25_parity(bm25, queries, depths)
        print(f"bm25: {hits} hits compared, {differing} query x k differ")
        total_hits, total_differing = total_hits + hits, total_differing + differing
    print(f"all: {total_hits} hits compared, {total_differing} query x k differ")
    return 1 if total_differing else 0


if __name__ == "__main__":
    sys.exit(main())
