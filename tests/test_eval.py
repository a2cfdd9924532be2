"""make eval on a slice: valid TREC runs, ranx metrics, ratios computed from runs, BM25 regression value."""
from __future__ import annotations

import pytest
from ranx import Qrels, Run, evaluate

from pipeline.report import leaderboard
from pipeline.runs import read_trec

# nDCG@10 of Lucene BM25 (k1=0.9, b=0.4, title + text) on the first 20 test queries of scifact with the limit=20
# slice (20 queries, 200 documents), measured once with this code; full scifact gives Anserini's 0.6789.
BM25_SLICE20_NDCG10 = 0.9132


def test_runs_are_valid_trec_and_ranx_reads_them(evaluated, sliced):
    folder, metrics = evaluated
    kinds = {r["kind"] for r in metrics["runs"]}
    assert {"bm25", "dense", "sparse", "control", "fusion"} <= kinds
    for row in metrics["runs"]:
        path = folder / f"{row['name']}.trec"
        for line in path.read_text().splitlines():
            qid, q0, doc, rank, score, tag = line.split()
            assert q0 == "Q0" and int(rank) >= 1 and doc in sliced.corpus and qid in sliced.queries
            float(score)
        run = Run.from_dict(read_trec(path))
        value = evaluate(Qrels.from_dict(sliced.qrels), run, "ndcg@10", make_comparable=True)
        assert value == pytest.approx(row["metrics"]["ndcg@10"], abs=1e-4)


def test_ratio_is_computed_from_the_two_runs(evaluated):
    _, metrics = evaluated
    rows = {r["name"]: r for r in metrics["runs"]}
    assert metrics["ratios"]
    for pair, ratio in metrics["ratios"].items():
        sparse, dense = pair.split("/")
        assert ratio == pytest.approx(rows[sparse]["metrics"]["ndcg@10"] / rows[dense]["metrics"]["ndcg@10"], abs=1e-3)


def test_leaderboard_labels_references_as_published(evaluated):
    folder, metrics = evaluated
    text = (folder / "leaderboard.md").read_text()
    assert text == leaderboard(metrics)
    assert "| BM25 flat (Anserini) | bm25 (published) | 0.6789 |" in text
    for line in text.splitlines():
        if "(paper)" in line or "Anserini" in line or "SPLADE++" in line:
            assert "(published)" in line and "(ours)" not in line
    assert "sparse/dense nDCG@10 =" in text.split("|")[0]


def test_bm25_matches_its_regression_value_on_a_slice():
    from pipeline.search import run_bm25
    from pipeline.settings import DataSettings, SearchSettings

    data = DataSettings("scifact", "test", 20)
    dataset = data.load()
    path = run_bm25(dataset, data, SearchSettings())
    value = evaluate(Qrels.from_dict(dataset.qrels), Run.from_dict(read_trec(path)), "ndcg@10")
    assert value == pytest.approx(BM25_SLICE20_NDCG10, abs=5e-4)
