"""`make beir` offline: two small BEIR folders cut from scifact under BEIR names, and a name nothing can provide.

Checks the loop (one failure reported, the rest carried on), resume (a second run reuses every result), BEIR's
own-id rule for arguana, that a dataset's suite numbers are exactly its `make eval` numbers, the cross-dataset
mean, and every export read back by the tool that reads it (mteb, Pyserini's 2CR reader, repro_eval).
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from string import Template

import numpy as np
import pytest
import yaml

from tests.conftest import beir_dir

SELF = "4983"  # a scifact document; in the arguana stand-in it is also a query's id (as arguana's arguments are)


def _write(folder: Path, corpus: list[dict], queries: list[dict], qrels: list[tuple[str, str]],
           split: str = "test") -> None:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels))


@pytest.fixture(scope="module")
def suite_beir(tmp_path_factory):
    """nfcorpus = scifact's first 2 queries and 12 documents; arguana = 2 other queries, one with a document's id;
    one CQADupStack forum (cqadupstack/android/) and msmarco (its dev split), 2 queries each: the four kinds of
    dataset the 2CR commands must reproduce."""
    source = beir_dir() / "scifact"
    docs = {d["_id"]: d for d in map(json.loads, (source / "corpus.jsonl").read_text().splitlines())}
    queries = {q["_id"]: q for q in map(json.loads, (source / "queries.jsonl").read_text().splitlines())}
    qrels = [line.split("\t")[:2] for line in (source / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    root = tmp_path_factory.mktemp("beir")
    first, second = qrels[:2], qrels[2:4]
    filler = [d for d in list(docs)[:60] if d not in {x for _, x in qrels[:8]} and d != SELF]
    own = filler[0]  # nfcorpus gets a query with a document's id too: BEIR removes such hits on every dataset
    _write(root / "nfcorpus", [docs[d] for _, d in first] + [docs[d] for d in filler[:10]],
           [queries[q] for q, _ in first] + [{"_id": own, "text": docs[own]["title"]}], first + [(own, first[0][1])])
    self_query = {"_id": SELF, "text": docs[SELF]["title"]}
    _write(root / "arguana", [docs[d] for _, d in second] + [docs[SELF]] + [docs[d] for d in filler[10:19]],
           [queries[q] for q, _ in second] + [self_query], second + [(SELF, second[0][1])])
    for folder, judged, extra, split in ((root / "cqadupstack" / "android", qrels[4:6], filler[19:27], "test"),
                                         (root / "msmarco", qrels[6:8], filler[27:35], "dev")):
        _write(folder, [docs[d] for d in dict.fromkeys(d for _, d in judged)] + [docs[d] for d in extra],
               [queries[q] for q in dict.fromkeys(q for q, _ in judged)], judged, split)
    return root


@pytest.fixture(scope="module")
def suite(suite_beir, isolated_outputs):
    from pipeline.beir import main

    flags = ["--datasets", "nfcorpus,arguana,cqadupstack/android,msmarco,no-such-dataset", "--beir-dir",
             str(suite_beir), "--quick", "--device", "cpu"]
    assert main(flags) == 1  # a requested dataset failed: the suite says so in its exit status, the rest is done
    folder = isolated_outputs / "runs" / "beir" / "smollm2"
    FIRST_RUN.update(json.loads((folder / "suite.json").read_text())["status"])  # before any rerun, in any order
    return folder, flags


FIRST_RUN: dict[str, dict] = {}  # the first suite run's status per dataset (a later test reruns the suite)


def test_failure_is_reported_and_the_rest_carried_on(suite):
    folder, _ = suite
    status = FIRST_RUN
    assert status["nfcorpus"]["status"] == status["arguana"]["status"] == "done"
    assert status["no-such-dataset"]["status"] == "failed" and "unknown dataset" in status["no-such-dataset"]["error"]
    assert "## Not evaluated" in (folder / "suite.md").read_text()


def test_second_run_reuses_every_result(suite, isolated_outputs):
    from pipeline.beir import main

    folder, flags = suite
    metrics = isolated_outputs / "runs" / "nfcorpus" / "metrics.json"
    stamp = metrics.stat().st_mtime_ns
    assert main(flags) == 1
    status = json.loads((folder / "suite.json").read_text())["status"]
    assert status["nfcorpus"]["status"] == status["arguana"]["status"] == "reused"
    assert metrics.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("dataset", ["arguana", "nfcorpus"])
def test_own_id_is_never_a_hit(suite, suite_beir, isolated_outputs, dataset):
    runs = isolated_outputs / "runs" / dataset
    corpus = {json.loads(line)["_id"] for line in (suite_beir / dataset / "corpus.jsonl").read_text().splitlines()}
    for run in runs.glob("*.trec"):
        hits = [line.split() for line in run.read_text().splitlines()]
        assert all(qid != doc for qid, _, doc, *_ in hits), run.name
    bm25 = [line.split() for line in (runs / "bm25.trec").read_text().splitlines()]
    assert {qid for qid, *_ in bm25} & corpus  # a query with a document's id is searched; only that document is dropped


def test_suite_numbers_are_what_pyserini_and_trec_eval_give(suite, suite_beir, isolated_outputs):
    """The suite's BM25 row on nfcorpus, recomputed by other code end to end: Pyserini's own LuceneSearcher (BM25
    k1=0.9 b=0.4) on the suite's BM25 index, hits with the query's own id removed (BEIR's rule), scored by
    trec_eval's code (pytrec_eval) on the qrels file read as plain TSV."""
    import csv

    import pytrec_eval
    from pyserini.search.lucene import LuceneSearcher

    from common.jvm import start_jvm

    start_jvm()
    in_suite = {r["name"]: r["metrics"] for r in json.loads(
        (isolated_outputs / "runs" / "nfcorpus" / "metrics.json").read_text())["runs"]}
    folder = suite_beir / "nfcorpus"
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").read_text().splitlines())}
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open() as handle:
        for query, doc, grade in list(csv.reader(handle, delimiter="\t"))[1:]:
            qrels.setdefault(query, {})[doc] = int(grade)
    searcher = LuceneSearcher(str(isolated_outputs / "indexes" / "nfcorpus" / "bm25" / "lucene"))
    searcher.set_bm25(0.9, 0.4)
    run = {q: {h.docid: h.score for h in searcher.search(queries[q], k=1000) if h.docid != q} for q in qrels}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    ndcg = sum(per_query.get(q, {}).get("ndcg_cut_10", 0.0) for q in qrels) / len(qrels)
    assert in_suite["bm25"]["ndcg@10"] == pytest.approx(ndcg, abs=5e-5)


def test_cross_table_mean_over_common_datasets(suite, isolated_outputs):
    folder, _ = suite
    table = json.loads((folder / "suite.json").read_text())["table"]
    assert table["columns"] == ["nfcorpus", "arguana", "cqadupstack (1/12 forums, partial)", "msmarco"]
    assert table["mean_over"] == ["nfcorpus", "arguana"]  # Pyserini publishes no msmarco row in its BEIR 2CR
    for name in ("bm25", "smollm2.dense"):
        per = [next(r for r in json.loads((isolated_outputs / "runs" / d / "metrics.json").read_text())["runs"]
                    if r["name"] == name)["metrics"]["ndcg@10"] for d in ("nfcorpus", "arguana")]
        assert table["rows"][name]["mean"] == pytest.approx(round(float(np.mean(per)), 4))
    published = [r for r in table["rows"] if r.startswith("bm25-flat (published, Pyserini")]
    assert published and table["rows"][published[0]]["nfcorpus"] == 0.3218  # read from pyserini's beir.yaml
    assert (folder / "suite.png").read_bytes()[:4] == b"\x89PNG"


def test_mteb_results_load_back(suite, isolated_outputs):
    """mteb's own ResultCache reads our results folder back, and every model_meta.json passes mteb's ModelMeta
    validation (the registry entry a submission adds is this object)."""
    import mteb
    from mteb.cache import ResultCache
    from mteb.models.model_meta import ModelMeta

    folder, _ = suite
    cache = folder / "exports" / "mteb"
    files = sorted(cache.rglob("NFCorpus.json"))
    assert len(files) == 2  # the dense run and the default sparse run, as two systems
    loaded = ResultCache(cache).load_results(tasks=[mteb.get_task("NFCorpus")])
    by_model = {m.model_name: m for m in loaded.model_results}
    assert set(by_model) == {"keytokens/smollm2.dense", "keytokens/smollm2.hybrid-bm25tf-words-pc1remove.tokens-idf"}
    ours = next(r for r in json.loads((isolated_outputs / "runs" / "nfcorpus" / "metrics.json").read_text())["runs"]
                if r["name"] == "smollm2.dense")
    result = by_model["keytokens/smollm2.dense"].task_results[0]
    assert result.task_name == "NFCorpus"
    assert result.get_score() == pytest.approx(ours["metrics"]["ndcg@10"], abs=1e-4)
    sparse = next(r for r in json.loads((isolated_outputs / "runs" / "nfcorpus" / "metrics.json").read_text())["runs"]
                  if r["name"] == "smollm2.hybrid-bm25tf-words-pc1remove.tokens-idf")
    sparse_result = by_model["keytokens/smollm2.hybrid-bm25tf-words-pc1remove.tokens-idf"].task_results[0]
    assert sparse_result.get_score() == pytest.approx(sparse["metrics"]["ndcg@10"], abs=1e-4)
    metas = {}
    for path in cache.rglob("model_meta.json"):
        raw = json.loads(path.read_text())
        meta = ModelMeta.model_validate({k: v for k, v in raw.items() if k in ModelMeta.model_fields} | {"loader": None})
        metas[meta.name] = meta
    # SmolLM2-135M's hidden size (its config: 576) is the dense system's width; a sparse system has none
    assert metas["keytokens/smollm2.dense"].embed_dim == 576 and metas["keytokens/smollm2.dense"].model_type == ["dense"]
    sparse_meta = metas["keytokens/smollm2.hybrid-bm25tf-words-pc1remove.tokens-idf"]
    assert sparse_meta.embed_dim is None and sparse_meta.model_type == ["sparse"]


def test_two_cr_yaml_reads_like_pyserinis(suite):
    two_cr = importlib.import_module("pyserini.2cr.beir")
    folder, _ = suite
    conditions = yaml.safe_load((folder / "exports" / "2cr.yaml").read_text())["conditions"]
    assert {c["name"] for c in conditions} >= {"keytokens.bm25", "keytokens.smollm2.dense"}
    for condition in conditions:
        for entry in condition["datasets"]:
            assert entry["dataset"] in two_cr.beir_keys or entry["dataset"] == "msmarco"  # not in BEIR's 2CR list
            Template(condition["command"]).substitute(  # as pyserini's run_conditions builds the command
                dataset=entry["dataset"], output="run.txt", sparse_threads=1, sparse_batch_size=1, dense_threads=1,
                dense_batch_size=1, query_prefix='""')
            for scores in entry["scores"]:
                assert set(scores) == set(two_cr.trec_eval_metric_definitions)


@pytest.mark.parametrize("key", ["nfcorpus", "arguana", "cqadupstack-android", "msmarco"])
def test_two_cr_command_runs_as_written_and_gives_its_numbers(suite, suite_beir, isolated_outputs, tmp_path, key):
    """One command per dataset kind (plain, own ids, a CQADupStack forum, msmarco's dev split), filled in as
    Pyserini's 2CR runner fills it and run by a shell into an empty runs folder (so the run is searched again, not
    copied from the suite's): trec_eval's own code (pytrec_eval) on the qrels file, read here as plain TSV, gives
    the numbers the YAML publishes."""
    import csv
    import os
    import subprocess
    import sys

    import pytrec_eval

    folder, _ = suite
    conditions = yaml.safe_load((folder / "exports" / "2cr.yaml").read_text())["conditions"]
    condition = next(c for c in conditions if c["name"] == "keytokens.smollm2.hybrid-bm25tf-words-pc1remove.tokens-idf")
    entry = next(e for e in condition["datasets"] if e["dataset"] == key)
    output = tmp_path / "run.txt"
    command = Template(condition["command"]).substitute(dataset=key, output=str(output))
    env = {**os.environ, "BEIR_DIR": str(suite_beir), "KEYTOKENS_RUNS": str(tmp_path / "fresh-runs"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(command, shell=True, cwd=Path(__file__).resolve().parent.parent, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list((tmp_path / "fresh-runs").rglob("*.trec"))  # searched here, into the empty folder
    split = "dev" if key == "msmarco" else "test"
    with (suite_beir / key.replace("cqadupstack-", "cqadupstack/") / "qrels" / f"{split}.tsv").open() as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    qrels: dict[str, dict[str, int]] = {}
    for query, doc, grade in rows:
        qrels.setdefault(query, {})[doc] = int(grade)
    run: dict[str, dict[str, float]] = {}
    for line in output.read_text().splitlines():
        query, _, doc, _, score, _ = line.split()
        run.setdefault(query, {})[doc] = float(score)
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    mean = {m: sum(per_query.get(q, {}).get(m, 0.0) for q in qrels) / len(qrels) for m in ("ndcg_cut_10", "recall_100")}
    assert round(mean["ndcg_cut_10"], 4) == entry["scores"][0]["nDCG@10"]
    assert round(mean["recall_100"], 4) == entry["scores"][0]["R@100"]


def test_ir_metadata_beside_runs_and_in_annotated_runs(suite, isolated_outputs):
    from repro_eval.metadata import MetadataAnalyzer, MetadataHandler

    from plumbing.runs import read_trec

    folder, _ = suite
    run = isolated_outputs / "runs" / "nfcorpus" / "bm25.trec"
    beside = yaml.safe_load(run.with_name("bm25.ir_metadata.yml").read_text())
    assert beside["tag"] == "bm25" and beside["data"]["test collection"]["name"] == "beir/nfcorpus"
    assert beside["schema-version"] == "0.1" and beside["implementation"]["executable"]["cmd"]
    assert {"model", "architecture", "number of cores"} <= set(beside["platform"]["hardware"]["cpu"])
    assert beside["platform"]["hardware"]["ram"] and beside["platform"]["operating system"]["kernel"]
    assert any(t.startswith("anserini==") for t in beside["platform"]["software"]["retrieval toolkit"])
    assert beside["method"]["retrieval"] == [{"name": "bm25", "method": "org.apache.lucene.search.similarities."
                                              "BM25Similarity", "k1": 0.9, "b": 0.4}]
    collection = beside["data"]["test collection"]
    assert {"source", "topics", "qrels", "ir_datasets"} <= set(collection)
    # the suite read a local BEIR folder: the metadata names it (the download is the origin, not the source)
    assert collection["source"].startswith("local BEIR folder ") and Path(collection["qrels"]).is_file()
    assert collection["origin"].endswith("/nfcorpus.zip")
    goal = beside["research goal"]["evaluation"]
    assert goal["baseline"] == ["bm25"] and "ndcg_cut_10" in goal["reported measures"]
    # repro_eval's own filter finds every run judged against the bm25 run (it fails without an evaluation section)
    runs = [str(p) for p in (folder / "exports" / "trec" / "nfcorpus").glob("*.trec")]
    assert len(MetadataAnalyzer.filter_by_baseline(str(annotated_path(folder)), runs)) == len(runs) > 1
    fused = next((isolated_outputs / "runs" / "nfcorpus").glob("fusion-rrf.*+bm25.trec"))
    fusion = yaml.safe_load(fused.with_name(f"{fused.stem}.ir_metadata.yml").read_text())["method"]["retrieval"]
    assert fusion[-1]["interpolates"] == [c["name"] for c in fusion[:-1]] and fusion[-1]["interpolates"][1] == "bm25"
    annotated = folder / "exports" / "trec" / "nfcorpus" / "bm25.trec"
    assert MetadataHandler.read_metadata(str(annotated)) == beside
    stripped = MetadataHandler.strip_metadata(str(annotated))
    assert {q: dict(d) for q, d in stripped.items()} == read_trec(run)


def annotated_path(folder: Path) -> Path:
    return folder / "exports" / "trec" / "nfcorpus" / "bm25.trec"


def test_cqadupstack_is_one_column_only_as_the_mean_of_all_forums():
    from steps.beir import CQADUPSTACK, cross_table

    def metrics(value: float) -> dict:
        return {"runs": [{"name": "bm25", "kind": "bm25", "metrics": {"ndcg@10": value}}], "ratios": {}}

    one = cross_table({"cqadupstack/android": metrics(0.4), "scifact": metrics(0.6)})
    assert one["columns"] == ["cqadupstack (1/12 forums, partial)", "scifact"] and one["mean_over"] == ["scifact"]
    every = cross_table({f: metrics(0.1 * (i % 5)) for i, f in enumerate(CQADUPSTACK)})
    assert every["columns"] == ["cqadupstack"] and every["rows"]["bm25"]["cqadupstack"] == round(
        float(np.mean([0.1 * (i % 5) for i in range(12)])), 4)
