"""make eval on a slice: valid ranked TREC runs, every experiment reported, BM25 regression value (metrics and ratios
against hand-computed values: tests/unit/test_metrics.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ranx import Qrels, Run, evaluate

from plumbing.runs import read_trec



def test_runs_are_valid_ranked_trec(evaluated, sliced):
    folder, metrics = evaluated
    kinds = {r["kind"] for r in metrics["runs"]}
    assert {"bm25", "dense", "sparse", "control", "fusion", "splade"} <= kinds
    for row in metrics["runs"]:
        by_query: dict[str, list[tuple[int, float]]] = {}
        for line in (folder / f"{row['name']}.trec").read_text().splitlines():
            qid, q0, doc, rank, score, tag = line.split()
            assert q0 == "Q0" and doc in sliced.corpus and qid in sliced.queries and tag == row["name"]
            by_query.setdefault(qid, []).append((int(rank), float(score)))
        for hits in by_query.values():
            assert [r for r, _ in hits] == list(range(1, len(hits) + 1)), row["name"]  # ranks 1..n in order
            assert all(a >= b for (_, a), (_, b) in zip(hits, hits[1:])), row["name"]  # best first
            assert len(hits) <= 1000


def test_every_experiment_and_the_key_figure_are_reported(evaluated):
    from plumbing.runs import EXPERIMENTS

    folder, metrics = evaluated
    names = {r["name"] for r in metrics["runs"]}
    variants = {r["variant"] for r in metrics["runs"] if r["kind"] in ("sparse", "control")}
    assert len(variants) == len(EXPERIMENTS) - 1  # the hybrid experiment is the default variant itself
    assert "smollm2.hybrid-bm25tf-words-pc1remove.tokens-idf" in names
    assert "fusion-rrf.smollm2.hybrid-bm25tf-words-pc1remove.tokens-idf+smollm2.dense" in names
    text = (folder / "leaderboard.md").read_text()
    key = "smollm2.hybrid-bm25tf-words-pc1remove.tokens-idf"
    assert metrics["key_run"] == key and metrics["faithful_run"].endswith(".aligned32-count")
    opening = text.splitlines()[2]
    assert opening.startswith(f"**The no-LLM sparse run ({key}: the default variant") and "against BM25" in opening
    assert "against SPLADE-tiny" in opening and "against the best LLM-free control" in opening
    assert metrics["splade_run"] == "splade-tiny.splade-raw"
    assert any(line.startswith("Against the embedder's own dense run") for line in text.splitlines()[3:9])
    assert any(line.startswith("The paper's own recipe") for line in text.splitlines()[3:11])
    for line in text.splitlines():
        if "(paper)" in line or "Anserini" in line or "SPLADE++" in line:
            assert "(published)" in line and "(ours)" not in line


def test_word_control_is_bm25_in_impact_form(evaluated):
    """terms=words: the LLM-free control (own analyzed words at BM25 tf, idf query) scores as Lucene BM25 does on the
    same slice (integer weights cost at most a little), and has fewer terms per document than the sub-word control."""
    _, metrics = evaluated
    rows = {r["name"]: r for r in metrics["runs"]}
    words, bm25 = rows["smollm2.own-bm25tf-words.tokens-idf"], rows["bm25"]
    assert words["kind"] == "control" and abs(words["metrics"]["ndcg@10"] - bm25["metrics"]["ndcg@10"]) <= 0.005
    assert "smollm2.hybrid-bm25tf-words-pc1remove.tokens-idf" in rows and "smollm2.expand64-words-pc1off.tokens-idf" in rows


def test_bm25_gives_anserinis_regression_value_on_full_scifact():
    """BM25 (k1=0.9, b=0.4, title + text) on the whole of scifact's test split scores what Anserini's BEIR
    regression publishes for it (flat index, nDCG@10 0.6789): an independent value, not one this code measured."""
    from plumbing.published import two_cr_scores
    from plumbing.settings import DataSettings, SearchSettings
    from steps.needs import Needs
    from steps.search import run_bm25

    data = DataSettings("scifact", "test")
    dataset = data.load()
    path = run_bm25(dataset, data, SearchSettings(threads=2), Needs(dataset, data).bm25())
    value = evaluate(Qrels.from_dict(dataset.qrels), Run.from_dict(read_trec(path)), "ndcg@10")
    published = two_cr_scores()["bm25-flat"]["scifact"]["nDCG@10"]  # read from Pyserini's own 2CR beir.yaml
    assert published == 0.6789 and value == pytest.approx(published, abs=5e-5)


def _two_split_folder(folder, train, test, queries_each: int = 6, extra_docs: int = 20):
    """A BEIR folder with a train and a test split, cut from scifact: each split's first queries, the documents
    they judge, and some unjudged ones."""
    import json

    train_q, test_q = list(train.qrels)[:queries_each], list(test.qrels)[:queries_each]
    docs = {d for q in train_q for d in train.qrels[q]} | {d for q in test_q for d in test.qrels[q]}
    docs |= set(list(test.corpus)[:extra_docs])
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": test.corpus[d].title,
                                                             "text": test.corpus[d].text}) + "\n" for d in sorted(docs)))
    texts = {**{q: train.queries[q] for q in train_q}, **{q: test.queries[q] for q in test_q}}
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in texts.items()))
    for split, data, ids in (("train", train, train_q), ("test", test, test_q)):
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
            f"{q}\t{d}\t{g}\n" for q in ids for d, g in data.qrels[q].items()))
    return set(train_q), set(test_q)


def test_fusion_is_tuned_on_train_queries_and_qrels_only(tmp_path, monkeypatch):
    """`make eval` on a collection with a train split tunes the wsum fusion weights with ranx's optimize_fusion:
    every query id and every qrel it is given is the train split's, none of the test split's (the tuned weights
    are then applied to the test runs)."""
    import ranx

    from pipeline.evaluate import main as evaluate_main
    from plumbing.datasets import load_dataset

    train_ids, test_ids = _two_split_folder(tmp_path / "twosplit", load_dataset("scifact", "train"),
                                            load_dataset("scifact", "test"))
    seen: list[tuple[set, set]] = []
    real = ranx.optimize_fusion

    def recording(qrels, runs, **kwargs):
        seen.append((set(qrels.to_dict()), {q for run in runs for q in run.to_dict()}))
        return real(qrels, runs, **kwargs)

    monkeypatch.setattr(ranx, "optimize_fusion", recording)
    evaluate_main(["--dataset", "twosplit", "--data-dir", str(tmp_path / "twosplit"), "--device", "cpu"])
    assert len(seen) == 2  # with dense and with BM25
    for qrels_ids, run_ids in seen:
        assert qrels_ids == train_ids and run_ids <= train_ids and not (qrels_ids | run_ids) & test_ids
    runs = Path(os.environ["KEYTOKENS_RUNS"]) / "twosplit"
    tuned = [json.loads(p.read_text()) for p in runs.glob("fusion-wsum.*.json")]
    assert len(tuned) == 2 and all(t["fusion"]["tuned on"] == "train" for t in tuned)
    scored = {line.split()[0] for p in runs.glob("fusion-wsum.*.trec") for line in p.read_text().splitlines()}
    assert scored <= test_ids  # the tuned weights were applied to the test runs
