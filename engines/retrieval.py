"""The retrieval layer: the one place searchers are built (Lucene impact, Lucene BM25, FAISS, Qdrant), for runs,
the benchmark, the training curve and `--explain` alike. Every searcher returns runs (plumbing/runs.py).

Lucene is searched through the lean path (java/keytokens/LeanSearcher.java): the query Anserini builds, its
similarity, its tie order and its score rounding, without a stored-document load and a Python object per hit;
tests/test_lean.py checks every hit and score against SimpleImpactSearcher and LuceneSearcher.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from common.errors import InputError
from common.jvm import autoclass, lean_available, start_jvm
from encoders.documents import BM25_B, BM25_K1
from encoders.queries import l2_normalise
from engines.qdrant import QdrantIndex
from plumbing.runs import Run
from plumbing.settings import DEPTH


class SparseSearcher(Protocol):
    """What every sparse engine offers (Lucene impact and BM25, Qdrant, PISA): one query's hits, best first, with
    ties in Lucene's order where the engine can; a whole query set as a run; and `close` for its native handles."""

    def search_one(self, query, k: int) -> list[tuple[str, float]]: ...

    def search(self, queries: dict, k: int = DEPTH, threads: int = 1) -> Run: ...

    def close(self) -> None: ...


class LeanLucene:
    """keytokens.LeanSearcher (java/, compiled by `make setup`): Anserini's hits and scores, arrays in and out.

    `search_one` returns [(docid, score)] and keeps the Java share of the last call in `java_seconds`."""

    def __init__(self, index_dir: Path, similarity: str) -> None:
        self.searcher = autoclass("keytokens.LeanSearcher")(str(index_dir), similarity, BM25_K1, BM25_B)
        self.ids = list(self.searcher.ids)
        self.java_seconds = 0.0

    def _hits(self, hits) -> list[tuple[str, float]]:
        ids = self.ids
        return [(ids[doc], score) for doc, score in zip(hits.docs, hits.scores)]

    def search_one(self, terms: dict[str, float], k: int = DEPTH) -> list[tuple[str, float]]:
        if not terms:
            return []
        hits = self.searcher.search(list(terms), [float(w) for w in terms.values()], k)
        self.java_seconds = hits.nanos / 1e9
        return self._hits(hits)

    def search(self, queries: dict[str, dict[str, float]], k: int = DEPTH, threads: int = 1) -> Run:
        qids = [q for q, terms in queries.items() if terms]
        run: Run = {q: [] for q in queries}
        if not qids:
            return run
        terms, weights, offsets = [], [], [0]
        for qid in qids:
            terms += list(queries[qid])
            weights += [float(w) for w in queries[qid].values()]
            offsets.append(len(terms))
        for qid, hits in zip(qids, self.searcher.batch(terms, weights, offsets, k, threads)):
            run[qid] = self._hits(hits)
        return run

    def close(self) -> None:
        self.searcher.close()


class ImpactIndex(LeanLucene):
    """An impact index: score = sum of query weight x document weight (Anserini's SimpleImpactSearcher's hits)."""

    def __init__(self, index_dir: Path) -> None:
        start_jvm()
        if not lean_available():
            raise InputError("the lean searcher is not built: run `make setup` (it compiles java/keytokens/LeanSearcher.java)")
        super().__init__(index_dir, "impact")


def impact_search(location: Path, queries: dict[str, dict[str, int]], k: int = DEPTH, threads: int = 1,
                  engine: str = "lucene") -> Run:
    """A run of weighted-term queries on one engine's index of a collection (`lucene`: the Lucene impact index;
    `qdrant`: the variant's Qdrant Edge shard)."""
    index = SPARSE_ENGINES[engine](location)
    try:
        return index.search(queries, k, threads)
    finally:
        index.close()


class BM25Index(LeanLucene):
    """Lucene BM25 (k1=0.9, b=0.4, Anserini's BEIR flat settings) over title + text; the query text is analysed and
    built by Anserini's own generator inside the JVM, so hits and scores are LuceneSearcher's."""

    def __init__(self, index_dir: Path) -> None:
        start_jvm()
        if not lean_available():
            raise InputError("the lean searcher is not built: run `make setup` (it compiles java/keytokens/LeanSearcher.java)")
        super().__init__(index_dir, "bm25")

    def search_one(self, text: str, k: int = DEPTH) -> list[tuple[str, float]]:
        if not text.strip():
            return []
        hits = self.searcher.searchText(text, k)
        self.java_seconds = hits.nanos / 1e9
        return self._hits(hits)

    def search(self, queries: dict[str, str], k: int = DEPTH, threads: int = 1) -> Run:
        qids = [q for q, text in queries.items() if text.strip()]
        run: Run = {q: [] for q in queries}
        for qid, hits in zip(qids, self.searcher.batchText([queries[q] for q in qids], k, threads) if qids else []):
            run[qid] = self._hits(hits)
        return run


class DenseIndex:
    """FAISS IndexFlatIP over L2-normalised document embeddings: exact cosine search."""

    def __init__(self, doc_ids: list[str], embeddings: np.ndarray) -> None:
        import faiss

        self.doc_ids = doc_ids
        self.index = faiss.IndexFlatIP(embeddings.shape[1])
        self.index.add(l2_normalise(embeddings))

    def search_vectors(self, vectors: np.ndarray, k: int = DEPTH):
        return self.index.search(l2_normalise(vectors), min(k, len(self.doc_ids)))

    def search(self, query_embeddings: np.ndarray, qids: list[str], k: int = DEPTH) -> Run:
        scores, rows = self.search_vectors(query_embeddings, k)
        return {qid: [(self.doc_ids[r], float(s)) for r, s in zip(row, score) if r >= 0]
                for qid, row, score in zip(qids, rows, scores)}


SPARSE_ENGINES: dict[str, type[SparseSearcher]] = {"lucene": ImpactIndex, "qdrant": QdrantIndex}
