"""keytokens in PyTerrier: retrievers over keytokens indexes, an indexer, and fusion, as `pt.Transformer`s.

They take PyTerrier's frames (topics: `qid`, `query`; results: `qid`, `docno`, `score`, `rank`) and call the same
functions as `import keytokens` (and so the same stages as `make`), so `pt.Experiment` puts a keytokens index
beside BM25 and dense with PyTerrier's own significance tests. Nothing here needs Terrier's jars:

>>> import keytokens, pyterrier as pt
>>> from keytokens.terrier import Retriever, topics_frame, qrels_frame
>>> data = keytokens.dataset("scifact", limit=5)
>>> bm25 = Retriever(keytokens.bm25("scifact", limit=5))
>>> words = Retriever(keytokens.index("scifact", model="smollm2", limit=5))
>>> table = pt.Experiment([bm25, words, 0.5 * words + 0.5 * bm25], topics_frame(data.queries), qrels_frame(data.qrels),
...                       eval_metrics=["ndcg_cut_10"], names=["bm25", "keytokens", "sum"], baseline=0)
>>> list(table["name"])
['bm25', 'keytokens', 'sum']
"""
from __future__ import annotations

from typing import Iterable, Mapping

import pandas as pd
import pyterrier as pt

from keytokens import api

RESULT_COLUMNS = ["qid", "query", "docno", "score", "rank"]


def topics_frame(queries: Mapping[str, str]) -> pd.DataFrame:
    """{query id: text} as PyTerrier topics."""
    return pd.DataFrame({"qid": list(queries), "query": list(queries.values())})


def qrels_frame(qrels: Mapping[str, Mapping[str, int]]) -> pd.DataFrame:
    """{query id: {doc id: grade}} as PyTerrier qrels."""
    rows = [(q, d, int(g)) for q, docs in qrels.items() for d, g in docs.items()]
    return pd.DataFrame(rows, columns=["qid", "docno", "label"])


def results_frame(topics: pd.DataFrame, run: Mapping[str, list[tuple[str, float]]]) -> pd.DataFrame:
    """A run as PyTerrier results (ranks from 0, best first); a topic without hits has no row, as in PyTerrier."""
    texts = dict(zip(topics["qid"], topics["query"]))
    rows = [(qid, texts[qid], doc, score, rank) for qid in texts for rank, (doc, score) in enumerate(run.get(qid, []))]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def frame_run(results: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    """PyTerrier results back to a run: {qid: [(docno, score), ...]} best first."""
    ordered = results.sort_values(["qid", "score"], ascending=[True, False])
    run: dict[str, list[tuple[str, float]]] = {}
    for qid, doc, score in zip(ordered["qid"], ordered["docno"], ordered["score"]):
        run.setdefault(qid, []).append((doc, float(score)))
    return run


def query_outputs(columns: list[str]) -> list[str]:
    """What a retriever here returns for a frame of `columns` (refused, as PyTerrier does, without `qid`/`query`)."""
    pt.validate.query_frame(pd.DataFrame(columns=columns), ["query"])
    return RESULT_COLUMNS


class Retriever(pt.Transformer):
    """Searches a keytokens index (or `keytokens.bm25()`'s) for each topic: `query="tokens"` needs no LLM,
    `aligned` and `dense` one forward per query (see `keytokens.search`)."""

    def __init__(self, index: api.Index, *, k: int = 1000, query: str = "tokens", threads: int = 1) -> None:
        self.index, self.k, self.query, self.threads = index, k, query, threads

    def transform(self, topics: pd.DataFrame) -> pd.DataFrame:
        pt.validate.query_frame(topics, ["query"])
        queries = dict(zip(topics["qid"], topics["query"]))
        return results_frame(topics, api.search(self.index, queries, k=self.k, query=self.query, threads=self.threads))

    def transform_outputs(self, columns: list[str]) -> list[str]:
        """PyTerrier's inspection without a search (a dense retriever would load its LLM for an empty frame)."""
        return query_outputs(columns)

    def __repr__(self) -> str:
        return f"keytokens.Retriever({self.index.model}/{self.index.variant}, query={self.query})"


class Fusion(pt.Transformer):
    """Weighted sum of min-max normalised scores of several retrievers (`keytokens.fuse`, as `make eval`'s wsum
    fusions): PyTerrier's own `a + b` adds raw scores, which BM25's and cosine's scales make one-sided."""

    def __init__(self, retrievers: Iterable[pt.Transformer], weights: Iterable[float] | None = None, *,
                 k: int = 1000) -> None:
        self.retrievers = list(retrievers)
        self.weights = list(weights) if weights is not None else None
        self.k = k

    def transform(self, topics: pd.DataFrame) -> pd.DataFrame:
        pt.validate.query_frame(topics, ["query"])
        runs = [frame_run(retriever.transform(topics)) for retriever in self.retrievers]
        return results_frame(topics, api.fuse(runs, self.weights, k=self.k))

    def transform_outputs(self, columns: list[str]) -> list[str]:
        return query_outputs(columns)

    def __repr__(self) -> str:
        return f"keytokens.Fusion({', '.join(map(repr, self.retrievers))}, weights={self.weights})"


class Indexer(pt.Indexer):
    """Indexes PyTerrier documents (dicts with `docno` and `text`) as the dataset `name`; `index()` returns the
    keytokens Index a Retriever searches."""

    def __init__(self, name: str, *, model: str = "smollm2", dtype: str = "auto", **levers) -> None:
        self.name, self.model, self.dtype, self.levers = name, model, dtype, levers

    def index(self, documents: Iterable[dict]) -> api.Index:
        pairs = ((str(doc["docno"]), str(doc.get("text", ""))) for doc in documents)
        return api.index_documents(pairs, self.name, model=self.model, dtype=self.dtype, **self.levers)
