"""The lean query path (java/keytokens/LeanSearcher.java) against Anserini itself: every hit and every score of
SimpleImpactSearcher (impact queries) and LuceneSearcher (BM25), for all 300 scifact test queries on the slice."""
from __future__ import annotations

import json

from tests.conftest import slice_data, slice_model, variant


def test_impact_hits_and_scores_are_anserinis(embeddings):
    from common.jvm import autoclass
    from engines.retrieval import ImpactIndex
    from plumbing.datasets import load_dataset
    from plumbing.index_queries import token_encoder
    from steps.index import index_variant

    lucene = index_variant(slice_data(), slice_model(), variant())
    info = json.loads((lucene.parent / "manifest.json").read_text())
    encoder = token_encoder(lucene.parent, info, "idf")
    queries = {q: encoder.encode(t) for q, t in load_dataset("scifact", "test").queries.items()}
    anserini = autoclass("io.anserini.search.SimpleImpactSearcher")(str(lucene))
    JHashMap, JInt = autoclass("java.util.HashMap"), autoclass("java.lang.Integer")
    lean = ImpactIndex(lucene)
    compared, boundary_ties = 0, 0
    for terms in queries.values():
        if not terms:
            continue
        query = JHashMap()
        for term, weight in terms.items():
            query.put(term, JInt(int(weight)))
        everything = lean.search_one(terms, 1000)
        for k in (1000, 10, 3):  # small k: the lean path collects by score alone and must restore id order of ties
            expected = [(hit.docid, float(hit.score)) for hit in anserini.search(query, k)]
            assert lean.search_one(terms, k) == expected, k
            compared += len(expected)
            boundary_ties += len(everything) > k and _raw_tie(everything, k)
    assert compared > 1000
    assert boundary_ties >= 5  # (10 on this slice) the tie path (more hits fetched, ties ordered by id) was exercised
    batch = lean.search(queries, 1000, threads=2)
    assert all(batch[q] == lean.search_one(t, 1000) for q, t in queries.items())


def _raw_tie(hits: list[tuple[str, float]], k: int) -> bool:
    """Whether the k-th and (k+1)-th hits tie (scores of equal raw value differ by the tie adjuster's 1e-6 steps)."""
    return abs(hits[k - 1][1] - hits[k][1]) < 1e-4


def test_bm25_hits_and_scores_are_lucenesearchers(sliced):
    from common.jvm import start_jvm
    from engines.retrieval import BM25Index
    from plumbing.datasets import load_dataset
    from steps.index import bm25_index

    start_jvm()
    from pyserini.search.lucene import LuceneSearcher

    lucene = bm25_index(sliced, slice_data().key)
    anserini = LuceneSearcher(str(lucene))
    anserini.set_bm25(0.9, 0.4)
    lean = BM25Index(lucene)
    queries = load_dataset("scifact", "test").queries
    for text in queries.values():
        for k in (1000, 10):
            assert lean.search_one(text, k) == [(hit.docid, float(hit.score)) for hit in anserini.search(text, k=k)]
    assert lean.search(queries, 1000, threads=2) == {q: lean.search_one(t, 1000) for q, t in queries.items()}
