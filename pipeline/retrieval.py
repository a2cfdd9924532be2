"""The retrieval layer: the one place searchers are built (Lucene impact, Lucene BM25, FAISS), for runs, the
benchmark, the training curve and `--explain` alike. Every searcher returns runs (pipeline/runs.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from encoders.documents import BM25_B, BM25_K1
from encoders.queries import l2_normalise
from pipeline.jvm import autoclass, start_jvm
from pipeline.runs import Run
from pipeline.settings import DEPTH


def java_query(query: dict[str, int]):
    """A term -> integer weight map as the java.util.HashMap<String, Integer> SimpleImpactSearcher takes."""
    JHashMap, JInt = autoclass("java.util.HashMap"), autoclass("java.lang.Integer")
    jquery = JHashMap()
    for term, weight in query.items():
        jquery.put(term, JInt(int(weight)))
    return jquery


class ImpactIndex:
    """Anserini's SimpleImpactSearcher over an impact index: score = sum of query weight x document weight."""

    def __init__(self, index_dir: Path) -> None:
        start_jvm()
        self.searcher = autoclass("io.anserini.search.SimpleImpactSearcher")(str(index_dir))

    def search_one(self, query: dict[str, int], k: int = DEPTH) -> list:
        return self.searcher.search(java_query(query), k) if query else []

    def search(self, queries: dict[str, dict[str, int]], k: int = DEPTH, threads: int = 1) -> Run:
        """Batch search of integer-weighted term maps (queries without terms get no hits)."""
        JArrayList = autoclass("java.util.ArrayList")
        qids = [q for q, terms in queries.items() if terms]
        run: Run = {q: [] for q in queries}
        if not qids:
            return run
        jqueries, jqids = JArrayList(), JArrayList()
        for qid in qids:
            jqueries.add(java_query(queries[qid]))
            jqids.add(qid)
        results = self.searcher.batch_search(jqueries, jqids, k, threads)
        for qid in qids:
            run[qid] = [(hit.docid, float(hit.score)) for hit in results.get(qid)]
        return run

    def close(self) -> None:
        self.searcher.close()


def impact_search(index_dir: Path, queries: dict[str, dict[str, int]], k: int = DEPTH, threads: int = 1) -> Run:
    index = ImpactIndex(index_dir)
    try:
        return index.search(queries, k, threads)
    finally:
        index.close()


class QdrantIndex:
    """A Qdrant Edge shard of a variant (pipeline/qdrant.py): the same integer impacts, Qdrant's sparse index.

    Ties are ordered by collection row (the order Lucene indexed the documents in), so runs are deterministic."""

    def __init__(self, folder: Path) -> None:
        import json

        from qdrant_edge import EdgeShard

        self.terms: dict[str, int] = json.loads((folder / "terms.json").read_text(encoding="utf-8"))
        self.doc_ids: list[str] = json.loads((folder / "docids.json").read_text(encoding="utf-8"))
        self.shard = EdgeShard.load(str(folder / "shard"))

    def search_one(self, query: dict[str, int], k: int = DEPTH) -> list[tuple[str, float]]:
        from qdrant_edge import Query, QueryRequest, SparseVector

        pairs = sorted((self.terms[t], float(w)) for t, w in query.items() if t in self.terms)
        if not pairs:
            return []
        vector = SparseVector(indices=[i for i, _ in pairs], values=[w for _, w in pairs])
        hits = self.shard.query(QueryRequest(limit=k, query=Query.Nearest(vector, using="tok")))
        return [(self.doc_ids[int(p.id)], float(p.score)) for p in sorted(hits, key=lambda p: (-p.score, int(p.id)))]

    def search(self, queries: dict[str, dict[str, int]], k: int = DEPTH, threads: int = 1) -> Run:
        return {qid: self.search_one(terms, k) for qid, terms in queries.items()}

    def close(self) -> None:
        self.shard.close()


class BM25Index:
    """Lucene BM25 (k1=0.9, b=0.4, Anserini's BEIR flat settings) over title + text."""

    def __init__(self, index_dir: Path) -> None:
        start_jvm()
        from pyserini.search.lucene import LuceneSearcher

        self.searcher = LuceneSearcher(str(index_dir))
        self.searcher.set_bm25(BM25_K1, BM25_B)

    def search_one(self, text: str, k: int = DEPTH) -> list:
        return self.searcher.search(text, k=k)

    def search(self, queries: dict[str, str], k: int = DEPTH, threads: int = 1) -> Run:
        qids = [q for q, text in queries.items() if text.strip()]
        results = self.searcher.batch_search([queries[q] for q in qids], qids, k=k, threads=threads)
        run: Run = {q: [] for q in queries}
        for qid in qids:
            run[qid] = [(hit.docid, float(hit.score)) for hit in results[qid]]
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
