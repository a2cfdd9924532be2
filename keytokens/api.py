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
    """A built index: its folder (collection, Lucene index, manifests) and how it was made. `model="bm25"` is the
    dataset's BM25 index (`bm25()`), searched with the query's text."""

    folder: Path
    model: str
    dtype: str
    variant: str
    dataset: str = ""  # whose task instruction an instruction-tuned embedder's queries get

    @property
    def lucene(self) -> Path:
        """The Lucene index folder (an impact index opens in Pyserini's LuceneImpactSearcher, BM25's in LuceneSearcher)."""
        return self.folder / "lucene"

    @property
    def embeddings(self) -> Path:
        """The embedder's stored document embeddings the index was projected from (what `query="dense"` searches)."""
        return self.folder.parent / "embeddings"


def dataset(name: str = "scifact", split: str = "test", *, limit: int | None = None, data_dir: str | None = None):
    """A dataset split (BEIR folder under BEIR_DIR, `data_dir`, or ir_datasets): `.corpus`, `.queries`, `.qrels`."""
    from plumbing.settings import DataSettings

    return DataSettings(name, split, limit, data_dir).load()


def index(name: str = "scifact", *, model: str = "smollm2", limit: int | None = None, data_dir: str | None = None,
          dtype: str = "auto", device: str = "auto", verbose: bool = False, **levers) -> Index:
    """Encode (resumable, reused when done), project and index a dataset, as `make index` does; returns the Index.
    `levers`: source=, terms=, k=, weighting=, normalize=, vocab=, pc1= (see `make help`); `verbose` prints the
    stages' lines."""
    from plumbing.settings import DataSettings
    from steps.index import index_variant

    lucene, variant = _through_stages(DataSettings(name, "test", limit, data_dir), model, dtype, device, verbose,
                                      levers, index_variant)
    return Index(lucene.parent, model, dtype, variant.name, name)


def _through_stages(data, model: str, dtype: str, device: str, verbose: bool, levers: dict, last):
    """Encode the dataset (resumable, reused when done), then run `last(data, model settings, variant)` (project, or
    project and index); the variant is checked before any model loads. Returns what `last` returned, and the variant."""
    from plumbing.settings import ModelSettings, Variant
    from steps.encode import encode_corpus

    settings = ModelSettings(model, device=device, dtype=dtype, task=data.name)
    Variant.refuse_unused(settings.preset, levers)
    variant = Variant.build(settings.preset, **levers)
    with _stage_lines(verbose):
        encode_corpus(data.load(), data, settings)
        return last(data, settings, variant), variant


def bm25(name: str = "scifact", *, limit: int | None = None, data_dir: str | None = None) -> Index:
    """The dataset's Lucene BM25 index (title + text, k1=0.9 b=0.4, Anserini's BEIR settings), built once; search
    it with `search()` like any index."""
    from plumbing.settings import DataSettings
    from steps.index import bm25_index

    start_jvm()
    data = DataSettings(name, "test", limit, data_dir)
    lucene = bm25_index(data.load(), data.key)
    return Index(lucene.parent, "bm25", "none", "flat k1=0.9 b=0.4", name)


def _documents_folder(documents: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str:
    """Your documents ({id: text} or (id, text) pairs) as a BEIR folder under the index root (`<name>-documents/`),
    so they go through the stages as any dataset does."""
    import json

    from common import layout
    from plumbing.artifacts import write_text

    pairs = list(documents.items()) if isinstance(documents, Mapping) else list(documents)
    folder = layout.inside(layout.index_root(), f"{name}-documents")
    write_text(folder / "corpus.jsonl", "".join(json.dumps({"_id": str(i), "title": "", "text": t}, ensure_ascii=False)
                                                + "\n" for i, t in pairs))
    write_text(folder / "queries.jsonl", "")
    write_text(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\n")
    return str(folder)


def index_documents(documents: Mapping[str, str] | Iterable[tuple[str, str]], name: str, *, model: str = "smollm2",
                    dtype: str = "auto", device: str = "auto", verbose: bool = False, **levers) -> Index:
    """Index your own documents ({id: text} or (id, text) pairs) under the dataset name `name`."""
    return index(name, model=model, data_dir=_documents_folder(documents, name), dtype=dtype, device=device,
                 verbose=verbose, **levers)


def encode(texts: Mapping[str, str] | Iterable[str], *, name: str = "texts", model: str = "smollm2", dtype: str = "auto",
           device: str = "auto", verbose: bool = False, **levers) -> dict[str, dict[str, int]]:
    """Texts to the word weights an index would hold for them ({id: {term: impact}}; a list of texts is keyed
    "0", "1", ...): encoded and projected by the same stages as `index()`, kept under the dataset name `name`.

    >>> import keytokens
    >>> weights = keytokens.encode(["White matter of the newborn brain, seen by diffusion MRI."])
    >>> "brain" in weights["0"] and all(isinstance(w, int) and w > 0 for w in weights["0"].values())
    True
    """
    from plumbing.collection import collection_vectors
    from plumbing.settings import DataSettings
    from steps.project import project

    pairs = texts.items() if isinstance(texts, Mapping) else ((str(i), t) for i, t in enumerate(texts))
    data = DataSettings(name, "test", None, _documents_folder(pairs, name))
    folder, _ = _through_stages(data, model, dtype, device, verbose, levers, project)
    return collection_vectors(folder / "collection")


def query_encoder(built: Index, query: str = "tokens"):
    """The index's query encoder: `encode(text) -> {term: int}`. `tokens` (default): the query's analyzed words x
    idf, no LLM; `aligned`: plus the query embedding's top aligned tokens (one LLM forward)."""
    from plumbing.artifacts import read_json
    from plumbing.index_queries import query_encoder as variant_query_encoder
    from plumbing.settings import ModelSettings, QuerySettings

    info = read_json(built.folder / "manifest.json", "collection manifest")
    settings = ModelSettings(built.model, dtype=built.dtype, task=built.dataset)
    return variant_query_encoder(settings, QuerySettings(query), built.folder, info)


def search(built: Index, queries: str | Mapping[str, str], *, k: int = 1000, query: str = "tokens",
           threads: int = 1) -> dict[str, list[tuple[str, float]]]:
    """Search an index: one query text (its run is keyed "q") or {query id: text}; hits best first. `query`:
    `tokens` (no LLM, the lean Lucene path: the same hits and scores as Pyserini's LuceneImpactSearcher),
    `aligned` (one LLM forward adds the query's aligned tokens), `dense` (one forward, exact cosine over the
    stored document embeddings with FAISS). A BM25 index (`bm25()`) is searched with the query's text."""
    from engines.retrieval import BM25Index, DenseIndex, impact_search

    texts = {"q": queries} if isinstance(queries, str) else dict(queries)
    if not texts:
        return {}
    if built.model == "bm25":
        return BM25Index(built.lucene).search(texts, k=k, threads=threads)
    if query == "dense":
        from encoders.embedder import Embedder
        from encoders.models import load_model
        from plumbing.settings import ModelSettings
        from plumbing.shards import load_shards

        settings = ModelSettings(built.model, dtype=built.dtype, task=built.dataset)
        doc_ids, embeddings, _ = load_shards(built.embeddings)
        embedder = Embedder(settings.preset, load_model(settings.preset, settings.device, settings.dtype))
        vectors = embedder.encode(list(texts.values()), is_query=True).embeddings
        return DenseIndex(doc_ids, embeddings).search(vectors, list(texts), k=k)
    start_jvm()
    encoder = query_encoder(built, query)
    encoded = dict(zip(texts, encoder.encode_many(list(texts.values()))))
    return impact_search(built.lucene, encoded, k=k, threads=threads)


def fuse(runs: Iterable[Mapping[str, list[tuple[str, float]]]], weights: Iterable[float] | None = None, *,
         k: int = 1000) -> dict[str, list[tuple[str, float]]]:
    """Weighted sum of min-max normalised scores (ranx `fuse(norm="min-max", method="wsum")`, as `make eval`'s
    fusions; equal weights by default); a query one run found nothing for keeps the other runs' hits.

    >>> import keytokens
    >>> fused = keytokens.fuse([{"q": [("a", 3.0), ("b", 1.0)]}, {"q": [("b", 0.9), ("c", 0.5), ("a", 0.1)]}], [0.4, 0.6])
    >>> [(doc, round(score, 2)) for doc, score in fused["q"]]
    [('b', 0.6), ('a', 0.4), ('c', 0.3)]
    """
    from ranx import fuse as ranx_fuse

    from plumbing.runs import fusable, fused_ranking

    runs = [{q: dict(hits) for q, hits in run.items()} for run in runs]
    weights = list(weights) if weights is not None else [1 / len(runs)] * len(runs)
    fused = ranx_fuse(fusable({str(i): run for i, run in enumerate(runs)}), norm="min-max", method="wsum",
                      params={"weights": weights})
    return fused_ranking(fused, k)


def evaluate(run: Mapping[str, list[tuple[str, float]]], qrels: Mapping[str, Mapping[str, int]],
             metrics: Iterable[str] = ("ndcg@10", "recall@100", "recall@1000", "mrr@10")) -> dict[str, float]:
    """ranx metrics of a run against qrels; a judged query with no hit scores 0, as in every leaderboard here."""
    from plumbing.runs import score

    return {metric: score(dict(qrels), {q: list(run.get(q, [])) for q in qrels}, metric) for metric in metrics}
