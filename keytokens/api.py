"""keytokens from Python: the same stages `make` runs, as a handful of functions.

Build a Lucene impact index of a dataset with an LLM embedder, search it with no LLM at query time (the query's
words x idf, BM25's lookup), score the run with ranx:

>>> import keytokens
>>> index = keytokens.index("scifact", model="smollm2", limit=5)     # encode -> project -> Lucene (cached)
>>> run = keytokens.search(index, {"q": "cells divide in the immune system"}, k=3)
>>> [len(hits) for hits in run.values()]
[3]
>>> dataset = keytokens.dataset("scifact", limit=5)
>>> round(keytokens.evaluate(keytokens.search(index, dataset.queries), dataset.qrels)["ndcg@10"], 2) > 0
True

Pyserini users search the same index with Pyserini's own searcher and our query encoder (any object with
`encode(text) -> {term: int}` serves it):

>>> from pyserini.search.lucene import LuceneImpactSearcher
>>> searcher = LuceneImpactSearcher(str(index.lucene), keytokens.query_encoder(index), min_idf=-1)
>>> [hit.docid for hit in searcher.search("cells divide in the immune system", k=3)] == [d for d, _ in run["q"]]
True

Every function takes the parameters the make targets take (model=, dtype=, data_dir=, the variant's levers) and
writes the same artifacts under the same roots (KEYTOKENS_INDEXES, KEYTOKENS_RUNS, KEYTOKENS_MODELS).
"""
from __future__ import annotations

import common.threads  # noqa: F401  (OpenMP's wait policy, before torch loads)

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from common.jvm import start_jvm

@contextlib.contextmanager
def _stage_lines(verbose: bool) -> Iterator[None]:
    """The stages print a line per artifact (`index: ...`); from Python they stay quiet unless `verbose=True`
    (progress bars still go to stderr)."""
    if verbose:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@dataclass(frozen=True)
class Index:
    """A built keytokens index: its variant folder (collection, Lucene index, manifests) and how it was made."""

    folder: Path
    model: str
    dtype: str
    variant: str

    @property
    def lucene(self) -> Path:
        """The Lucene impact index folder (what Pyserini's LuceneImpactSearcher opens)."""
        return self.folder / "lucene"


def dataset(name: str = "scifact", split: str = "test", *, limit: int | None = None, data_dir: str | None = None):
    """A dataset split (BEIR folder under BEIR_DIR, `data_dir`, or ir_datasets): `.corpus`, `.queries`, `.qrels`."""
    from plumbing.settings import DataSettings

    return DataSettings(name, split, limit, data_dir).load()


def index(name: str = "scifact", *, model: str = "smollm2", limit: int | None = None, data_dir: str | None = None,
          dtype: str = "auto", device: str = "auto", verbose: bool = False, **levers) -> Index:
    """Encode (resumable, reused when done), project and index a dataset, as `make index` does; returns the Index.
    `levers`: source=, terms=, k=, weighting=, normalize=, vocab=, pc1= (see `make help`); `verbose` prints the
    stages' lines."""
    from pipeline.encode import encode_corpus
    from pipeline.index import index_variant
    from plumbing.settings import DataSettings, ModelSettings, Variant

    data = DataSettings(name, "test", limit, data_dir)
    settings = ModelSettings(model, device=device, dtype=dtype)
    Variant.refuse_unused(settings.preset, levers)
    variant = Variant.build(settings.preset, **levers)
    with _stage_lines(verbose):
        encode_corpus(data.load(), data, settings)
        lucene = index_variant(data, settings, variant)
    return Index(lucene.parent, model, dtype, variant.name)


def index_documents(documents: Mapping[str, str] | Iterable[tuple[str, str]], name: str, *, model: str = "smollm2",
                    dtype: str = "auto", device: str = "auto", verbose: bool = False, **levers) -> Index:
    """Index your own documents ({id: text} or (id, text) pairs) under the dataset name `name`: they are written as
    a BEIR folder under the index root (`<name>-documents/`), then indexed as any dataset."""
    import json

    from common import layout
    from plumbing.artifacts import write_text

    pairs = list(documents.items()) if isinstance(documents, Mapping) else list(documents)
    folder = layout.inside(layout.index_root(), f"{name}-documents")
    write_text(folder / "corpus.jsonl", "".join(json.dumps({"_id": str(i), "title": "", "text": t}, ensure_ascii=False)
                                                + "\n" for i, t in pairs))
    write_text(folder / "queries.jsonl", "")
    write_text(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\n")
    return index(name, model=model, data_dir=str(folder), dtype=dtype, device=device, verbose=verbose, **levers)


def query_encoder(built: Index, query: str = "tokens"):
    """The index's query encoder: `encode(text) -> {term: int}`. `tokens` (default): the query's analyzed words x
    idf, no LLM; `aligned`: plus the query embedding's top aligned tokens (one LLM forward)."""
    from pipeline.search import query_encoder as variant_query_encoder
    from plumbing.artifacts import read_json
    from plumbing.settings import ModelSettings, QuerySettings

    info = read_json(built.folder / "manifest.json", "collection manifest")
    return variant_query_encoder(ModelSettings(built.model, dtype=built.dtype), QuerySettings(query), built.folder, info)


def search(built: Index, queries: str | Mapping[str, str], *, k: int = 1000, query: str = "tokens",
           threads: int = 1) -> dict[str, list[tuple[str, float]]]:
    """Search an index: one query text (its run is keyed "q") or {query id: text}; hits best first, as the lean
    Lucene path gives them (the same hits and scores as Pyserini's LuceneImpactSearcher)."""
    from engines.retrieval import impact_search

    start_jvm()
    texts = {"q": queries} if isinstance(queries, str) else dict(queries)
    encoder = query_encoder(built, query)
    encoded = dict(zip(texts, encoder.encode_many(list(texts.values()))))
    return impact_search(built.lucene, encoded, k=k, threads=threads)


def evaluate(run: Mapping[str, list[tuple[str, float]]], qrels: Mapping[str, Mapping[str, int]],
             metrics: Iterable[str] = ("ndcg@10", "recall@100", "recall@1000", "mrr@10")) -> dict[str, float]:
    """ranx metrics of a run against qrels; a judged query with no hit scores 0, as in every leaderboard here."""
    from plumbing.runs import score

    return {metric: score(dict(qrels), {q: list(run.get(q, [])) for q in qrels}, metric) for metric in metrics}
