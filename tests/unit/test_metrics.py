"""Scoring and the leaderboard on a hand-made fixture whose nDCG@10, MRR@10 and ratio are computed by hand."""
from __future__ import annotations

import json
import math

import pytest

from plumbing.datasets import Dataset, Document
from plumbing.runs import read_trec, score, write_trec
from plumbing.settings import DataSettings, ModelSettings

QRELS = {"q1": {"d1": 1, "d3": 1}, "q2": {"d2": 2}}
DENSE = {"q1": [("d1", 3.0), ("d2", 2.0), ("d3", 1.0)], "q2": [("d1", 3.0), ("d2", 2.0)]}
SPARSE = {"q1": [("d3", 2.0), ("d1", 1.0)], "q2": [("d2", 5.0)]}
# q1: DCG = 1 + 1/log2(4) = 1.5, ideal 1 + 1/log2(3); q2: the one relevant document at rank 2 -> 1/log2(3)
DENSE_NDCG = ((1.5 / (1 + 1 / math.log2(3))) + 1 / math.log2(3)) / 2  # 0.775325...


def test_ndcg_of_hand_made_runs():
    assert score(QRELS, DENSE) == pytest.approx(DENSE_NDCG, abs=1e-4)
    assert score(QRELS, SPARSE) == 1.0
    assert score(QRELS, DENSE, "mrr@10") == pytest.approx((1 + 1 / 2) / 2)


def test_trec_round_trip(tmp_path):
    path = tmp_path / "run.trec"
    write_trec(path, DENSE, "tag")
    assert path.read_text().splitlines()[0] == "q1 Q0 d1 1 3.000000 tag"
    assert read_trec(path) == {q: dict(hits) for q, hits in DENSE.items()}
    assert score(QRELS, path) == pytest.approx(DENSE_NDCG, abs=1e-4)


def _run_files(folder):
    paths = []
    for name, kind, run in (("bm25", "bm25", DENSE), ("m.dense", "dense", DENSE), ("m.sparse", "sparse", SPARSE)):
        path = folder / f"{name}.trec"
        write_trec(path, run, name)
        path.with_suffix(".json").write_text(json.dumps({"kind": kind, "model": "m", "query_mode": "tokens",
                                                         "llm_forward_per_query": kind == "dense"}))
        paths.append(path)
    return paths


def test_evaluate_and_leaderboard_on_known_runs(tmp_path):
    from plumbing.leaderboard import leaderboard
    from steps.evaluate import evaluate_runs

    corpus = {d: Document(d, "", d) for d in ("d1", "d2", "d3")}
    dataset = Dataset("toy", "test", "hand-made", corpus, {"q1": "a", "q2": "b"}, QRELS)
    results = evaluate_runs(DataSettings("toy"), ModelSettings("org/m"), dataset, _run_files(tmp_path))
    rows = {r["name"]: r for r in results["runs"]}
    assert rows["m.dense"]["metrics"]["ndcg@10"] == pytest.approx(DENSE_NDCG, abs=1e-4)
    assert rows["m.sparse"]["metrics"] == {"ndcg@10": 1.0, "recall@100": 1.0, "recall@1000": 1.0, "mrr@10": 1.0}
    assert results["ratios"] == {"m.sparse/m.dense": round(1 / round(DENSE_NDCG, 4), 3)}  # 1.29
    text = leaderboard(results)
    assert text.splitlines()[0] == "# Leaderboard: toy (test, 2 queries, 3 documents)"
    opening = text.splitlines()[2]
    assert opening.startswith("**The no-LLM sparse run (m.sparse: the default variant, chosen on the train split; "
                              "queries are a lookup, no LLM) scores 1.0000: +0.2247 against BM25 (0.7753), not a "
                              "significant difference (paired t-test over 2 queries, p=") and opening.endswith(".**")
    assert text.splitlines()[4] == ("Against the embedder's own dense run (0.7753) that is 1.29 times its nDCG@10: a "
                                    "ratio above 1 means the embedder's dense run is weaker than lexical matching on "
                                    "this set, not that sparse retrieval beats dense retrieval.")
    assert "| m.sparse | sparse (ours) | 1.0000 | 1.0000 | 1.0000 | 1.0000 |" in text
    assert text.index("| m.sparse |") < text.index("| m.dense |")  # sorted by nDCG@10
    assert "(published)" not in text  # no published rows for a dataset the anchors do not list
