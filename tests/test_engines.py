"""Other engines: Qdrant (in process, the real Rust engine) gives Lucene's run; bulk files for OpenSearch and
Elasticsearch are well-formed and their token mapping round-trips."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from steps.bulk import ENGINES, feature_name, query_body, token_of, write_bulk
from tests.conftest import SLICE, slice_data, slice_model, variant


def test_qdrant_gives_lucenes_docids_at_every_score_level(embeddings, sliced):
    from plumbing.runs import read_trec, score
    from plumbing.settings import QuerySettings, SearchSettings
    from steps.index import index_variant
    from steps.search import run_sparse

    data, model, levers = slice_data(), slice_model(), variant()
    index_variant(data, model, levers)
    lucene = run_sparse(sliced, data, model, levers, QuerySettings(), SearchSettings(force=True))
    qdrant = run_sparse(sliced, data, model, levers, QuerySettings(), SearchSettings(force=True, engine="qdrant"))
    assert qdrant.name.endswith("@qdrant.trec")
    by_lucene, by_qdrant = read_trec(lucene), read_trec(qdrant)
    assert by_lucene.keys() == by_qdrant.keys() and sum(map(len, by_lucene.values())) > 100
    for qid, hits in by_lucene.items():  # the slice has 50 documents: every matching one is returned by both
        assert by_qdrant[qid] == hits, qid  # the same documents with the same scores, so the same score levels
        assert list(by_qdrant[qid]) == list(hits), qid  # and the same ranking: ties ordered as Lucene orders them
    assert score(sliced.qrels, qdrant) == score(sliced.qrels, lucene)
    manifest = json.loads((levers.dir(data, model) / "qdrant" / "manifest.json").read_text())
    assert manifest["shard"]["points"] == len(sliced.corpus)


@given(st.text(max_size=40))
def test_feature_names_round_trip_without_dots(token):
    name = feature_name(token)
    assert "." not in name and token_of(name) == token


def test_bulk_files_are_well_formed(tmp_path):
    documents = [("d1", {"cell.biology": 7, "Ġcat": 3}), ("d2", {"%x": 1})]
    for engine, (field_type, query_type, key) in ENGINES.items():
        out = tmp_path / engine
        stats = write_bulk(out, engine, "kt-test", iter(documents), {"q1": {"cell.biology": 2}})
        assert stats == {"engine": engine, "index": "kt-test", "documents": 2, "queries": 1}
        mapping = json.loads((out / "index.json").read_text())
        assert mapping["mappings"]["properties"]["keytokens"]["type"] == field_type
        lines = [json.loads(line) for line in (out / "documents.ndjson").read_text().splitlines()]
        assert [line["index"]["_id"] for line in lines[0::2]] == ["d1", "d2"]  # action, source, action, source
        assert lines[1]["keytokens"] == {"cell%2Ebiology": 7, "Ġcat": 3} and lines[3]["keytokens"] == {"%25x": 1}
        query = json.loads((out / "queries.ndjson").read_text())
        assert query["qid"] == "q1" and query_type in query["query"]
    assert query_body("elastic", {"a.b": 2})["query"] == {"sparse_vector": {"field": "keytokens", "query_vector": {"a%2Eb": 2}}}
    assert query_body("opensearch", {"a": 1})["query"] == {"neural_sparse": {"keytokens": {"query_tokens": {"a": 1}}}}


def test_synthetic_collection_follows_its_profile_and_both_engines_agree(tmp_path):
    import numpy as np

    from studies.scale import measure, synthesize

    profile = {"documents": 100, "lengths": [40, 60, 80, 100], "vocabulary": 3000, "zipf_exponent": 1.0}
    weights = np.zeros(101)
    weights[[10, 50, 100]] = [0.5, 0.3, 0.2]
    synthesize(tmp_path / "c", 300, profile, weights)
    docs = [json.loads(line) for line in (tmp_path / "c" / "part-00000.jsonl").read_text().splitlines()]
    assert len(docs) == 300 and {len(d["vector"]) for d in docs} <= {40, 60, 80, 100}
    assert {w for d in docs for w in d["vector"].values()} <= {10, 50, 100}
    row = measure(300, profile, weights, queries_count=20)
    assert row["top10_agreement"] == 1.0  # both engines are exact
    assert 0.5 <= row["seismic"]["recall@10"] <= 1.0  # approximate, measured against the exact top-10
    assert row["lucene"]["p50_ms"] > 0 and row["qdrant"]["bytes"] > 0
    assert row["pisa"]["same_scores"] == 1.0 and row["pisa"]["bytes"] > 0  # exact: Lucene's scores at every rank


def test_pisa_gives_lucenes_scores_on_a_real_collection(embeddings, tmp_path):
    """PISA over the default variant's collection (real impacts, real queries): every query's score list equals the
    lean Lucene path's, and the documents strictly above the k-th score are the same (ties may be ordered apart)."""
    from engines.pisa import PisaIndex, build_pisa
    from engines.retrieval import ImpactIndex
    from plumbing.datasets import load_dataset
    from plumbing.index_queries import token_encoder
    from steps.index import index_variant

    lucene = index_variant(slice_data(), slice_model(), variant())
    built = build_pisa(lucene.parent / "collection", tmp_path / "pisa")
    assert built["bytes"] > 0
    info = json.loads((lucene.parent / "manifest.json").read_text())
    encoder = token_encoder(lucene.parent, info, "idf")
    pisa, lean = PisaIndex(tmp_path / "pisa"), ImpactIndex(lucene)
    compared = 0
    for text in load_dataset("scifact", "test").queries.values():
        terms = encoder.encode(text)
        for k in (1000, 10):
            ours, theirs = lean.search_one(terms, k), pisa.search_one(terms, k)
            assert [round(s) for _, s in theirs] == [round(s) for _, s in ours]
            if ours:
                kth = ours[-1][1]
                assert {d for d, s in theirs if s > kth + 0.5} == {d for d, s in ours if s > kth + 0.5}
            compared += len(ours)
    assert compared > 1000
    queries = {qid: encoder.encode(text) for qid, text in list(load_dataset("scifact", "test").queries.items())[:5]}
    assert pisa.search(queries, 10) == {qid: pisa.search_one(terms, 10) for qid, terms in queries.items()}
    pisa.close()
    lean.close()


def test_every_sparse_engine_offers_the_searcher_interface():
    """Lucene impact and BM25, Qdrant and PISA all answer search_one / search / close (engines.retrieval.SparseSearcher),
    so a stage or a study swaps one for another without knowing which it holds."""
    import inspect

    from engines.pisa import PisaIndex
    from engines.retrieval import SPARSE_ENGINES, BM25Index, SparseSearcher

    wanted = {name for name, _ in inspect.getmembers(SparseSearcher, inspect.isfunction) if not name.startswith("_")}
    assert wanted == {"search_one", "search", "close"}
    for engine in (*SPARSE_ENGINES.values(), BM25Index, PisaIndex):
        assert all(callable(getattr(engine, name, None)) for name in wanted), engine


def test_qdrant_evaluation_leaves_lucenes_leaderboard_alone(evaluated, isolated_outputs):
    from pipeline.evaluate import main as evaluate_main

    folder, _ = evaluated
    before = {name: (folder / name).read_bytes() for name in ("metrics.json", "leaderboard.md")}
    evaluate_main(["--dataset", "scifact", "--limit", str(SLICE), "--quick", "--no-train", "--device", "cpu",
                   "--engine", "qdrant"])
    assert {name: (folder / name).read_bytes() for name in before} == before
    rows = json.loads((folder / "metrics@qdrant.json").read_text())["runs"]
    assert any(r["name"].endswith("@qdrant") for r in rows) and (folder / "leaderboard@qdrant.md").is_file()
