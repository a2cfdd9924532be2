"""The Python API (keytokens/__init__.py): its docstring examples and the README's Python blocks run as written, on
the real scifact slice, SmolLM2 and Lucene; Pyserini's own searcher gives the lean path's hits on our index."""
from __future__ import annotations

import doctest
import re

import pytest

from tests.conftest import REPO


def test_api_examples_run(embeddings):
    import keytokens.api

    import keytokens.terrier

    for module in (keytokens.api, keytokens.terrier):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted >= 6 and result.failed == 0, module.__name__


def test_readme_python_blocks_run(embeddings):
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    assert blocks, "the README has no Python example"
    namespace = {"__name__": "readme"}  # one namespace, as a reader pasting the blocks in order into one interpreter
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)


def test_pyserini_searcher_equals_the_lean_path_on_every_slice_query(embeddings, sliced):
    """Pyserini's LuceneImpactSearcher with our query encoder: the same top-10 documents and scores as ours."""
    import keytokens
    from pyserini.search.lucene import LuceneImpactSearcher

    index = keytokens.index("scifact", model="smollm2", limit=5)
    ours = keytokens.search(index, sliced.queries, k=10)
    searcher = LuceneImpactSearcher(str(index.lucene), keytokens.query_encoder(index), min_idf=-1)
    for qid, text in sliced.queries.items():
        theirs = [(hit.docid, round(hit.score, 3)) for hit in searcher.search(text, k=10)]
        assert theirs == [(d, round(s, 3)) for d, s in ours[qid]]


def _top10(run) -> dict[str, list[str]]:
    return {q: [d for d, _ in sorted(hits, key=lambda h: (-h[1], h[0]))[:10]] for q, hits in run.items() if hits}


def _trec_top10(path) -> dict[str, list[str]]:
    """A TREC run file read with no project code: query -> top-10 doc ids (ties by id, as both sides sort)."""
    run: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, []).append((doc, round(float(score), 3)))
    return _top10(run)


def test_pyterrier_experiment_gives_make_evals_top10_and_significance(evaluated, sliced):
    """pt.Experiment over BM25, the keytokens default and its fusion with dense: each retriever's top-10 is the
    run `make eval` wrote for it, the fusion's is ranx's wsum of those two runs, and PyTerrier reports a p-value
    against BM25 for each."""
    import pyterrier as pt
    from ranx import Run, fuse

    import keytokens
    from keytokens.terrier import Fusion, Retriever, frame_run, qrels_frame, topics_frame

    folder, metrics = evaluated
    index = keytokens.index("scifact", model="smollm2", limit=5)
    bm25, words = Retriever(keytokens.bm25("scifact", limit=5)), Retriever(index)
    dense = Retriever(index, query="dense")
    fused = Fusion([words, dense])
    topics = topics_frame(sliced.queries)
    sparse_name = metrics["key_run"]
    for retriever, name in ((bm25, "bm25"), (words, sparse_name), (dense, "smollm2.dense")):
        ours = {q: [(d, round(s, 3)) for d, s in hits] for q, hits in frame_run(retriever.transform(topics)).items()}
        assert _top10(ours) == _trec_top10(folder / f"{name}.trec"), name
    files = [Run.from_file(str(folder / f"{n}.trec"), kind="trec") for n in (sparse_name, "smollm2.dense")]
    expected = fuse(files, norm="min-max", method="wsum", params={"weights": [0.5, 0.5]}).to_dict()
    got = frame_run(fused.transform(topics))
    for qid, docs in expected.items():
        top = [d for d, _ in sorted(docs.items(), key=lambda x: (-x[1], x[0]))[:10]]
        assert [d for d, _ in got[qid][:10]] == top
    table = pt.Experiment([bm25, words, fused], topics, qrels_frame(sliced.qrels), eval_metrics=["ndcg_cut_10"],
                          names=["bm25", "keytokens", "keytokens+dense"], baseline=0)
    rows = table.set_index("name")
    assert rows.loc["bm25", "ndcg_cut_10"] == pytest.approx(metrics_of(metrics, "bm25"), abs=1e-4)
    assert rows.loc["keytokens", "ndcg_cut_10"] == pytest.approx(metrics_of(metrics, sparse_name), abs=1e-4)
    assert 0 <= rows.loc["keytokens", "ndcg_cut_10 p-value"] <= 1


def metrics_of(metrics: dict, name: str) -> float:
    return next(r["metrics"]["ndcg@10"] for r in metrics["runs"] if r["name"] == name)
