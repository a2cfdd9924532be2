"""The Java bootstrap starts Pyserini, and a JsonVectorCollection impact index round-trips odd tokens exactly."""
from __future__ import annotations

import json

from common.jvm import autoclass, start_jvm
from engines.lucene import build_lucene
from engines.retrieval import impact_search

TOKENS = {"d1": {"Ġcat": 30, "▁dog": 2}, "d2": {"##ing": 7, "Ġcafé": 5, '"': 3}, "d3": {"Ċ": 11, "Cat": 4, "cat": 9}}


def test_java_21_runs():
    start_jvm()
    assert int(autoclass("java.lang.System").getProperty("java.version").split(".")[0]) >= 21


def test_impact_index_keeps_tokens_and_scores_exactly(tmp_path):
    collection = tmp_path / "collection"
    collection.mkdir()
    lines = [json.dumps({"id": d, "contents": "", "vector": v}, ensure_ascii=False) for d, v in TOKENS.items()]
    (collection / "part-00000.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    stats = build_lucene(collection, tmp_path / "lucene", impact=True, threads=1)
    assert stats["documents"] == 3
    queries = {"q1": {"Ġcat": 2}, "q2": {"Ġcafé": 3, '"': 1}, "q3": {"Cat": 5}, "q4": {"cat": 1, "Ċ": 2},
               "q5": {"▁dog": 1, "##ing": 1}, "q6": {"not-there": 4}}
    run = impact_search(tmp_path / "lucene", queries, k=10, threads=1)
    assert run["q1"] == [("d1", 60.0)]
    assert run["q2"] == [("d2", 18.0)]
    assert run["q3"] == [("d3", 20.0)]
    assert run["q4"] == [("d3", 31.0)]
    assert sorted(run["q5"]) == [("d1", 2.0), ("d2", 7.0)]
    assert run["q6"] == []
    df = json.loads((tmp_path / "lucene" / "df.json").read_text(encoding="utf-8"))
    assert df["documents"] == 3 and df["df"]["Ġcat"] == 1
