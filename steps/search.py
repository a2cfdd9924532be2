"""Search: indexes -> TREC runs with manifests, on any engine; one query's term contributions.

The functions behind `python -m pipeline.search` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from common.errors import InputError
from encoders.embedder import Embedder
from encoders.models import load_model
from engines.retrieval import BM25Index, DenseIndex, impact_search
from plumbing.artifacts import manifest, read_json, write_json
from plumbing.datasets import Dataset
from plumbing.index_queries import encode_queries, sparse_index
from plumbing.runs import IDENTICAL_IDS_RULE, Run, exclude_own_ids, sparse_run_name, write_trec
from plumbing.settings import DataSettings, ModelSettings, QuerySettings, SearchSettings, Variant
from plumbing.shards import load_shards


def run_inputs(dataset: Dataset, built: Path, search: SearchSettings) -> dict:
    """What a run is made from: the corpus and queries (fingerprint, split), the stamp of the index manifest it
    searched and the identical-ids rule. A run file is reused only when all of it matches (steps/evaluate.py)."""
    return {**dataset.fingerprint, "index_written": read_json(built).get("written") if built.is_file() else None,
            "identical_ids_kept": search.keep_identical_ids}


def _save_run(data: DataSettings, name: str, run: Run, info: dict, search: SearchSettings) -> Path:
    if not search.keep_identical_ids:
        run, info = exclude_own_ids(run), {**info, "own_ids_excluded": IDENTICAL_IDS_RULE}
    path = data.run_dir / f"{name}.trec"
    write_trec(path, run, name)
    write_json(path.with_suffix(".json"), manifest("search", name=name, queries=len(run), split=data.split, **info))
    print(f"run: {path}")
    return path


def run_name(info: dict, folder: Path, query: QuerySettings, engine_suffix: str = "") -> str:
    if info["settings"]["source"] == "splade":
        return sparse_run_name(info["model"], folder.name, engine_suffix=engine_suffix)
    return sparse_run_name(info["model"], folder.name, query.mode, query.qweight, engine_suffix)


def run_sparse(dataset: Dataset, data: DataSettings, model: ModelSettings, variant: Variant, query: QuerySettings,
               search: SearchSettings) -> Path:
    folder, info = sparse_index(data, model, variant, search.index)
    started = time.time()
    queries = encode_queries(dataset, model, query, folder, info)
    encoded = time.time()
    location = folder / "lucene"
    if search.engine == "qdrant":
        from engines.qdrant import export

        location = export(data, model, variant, search.index)
    run = impact_search(location, queries, threads=search.threads, engine=search.engine)
    source = info["settings"]["source"]
    kind = {"own": "control", "splade": "splade"}.get(source, "sparse")
    return _save_run(data, run_name(info, folder, query, search.run_suffix), run, {"engine": search.engine,
        "kind": kind, "model": info["model"], "variant": folder.name, "query_mode": query.query, "qweight": query.qweight,
        "m": query.m if query.query == "aligned" else None, "k": info["settings"].get("k"), "index": str(folder / "lucene"),
        "llm_forward_per_query": query.query == "aligned" or source == "splade",
        "data_source": dataset.source, "inputs": run_inputs(dataset, folder / "lucene.manifest.json", search),
        "timings": {"encode_seconds": round(encoded - started, 2), "search_seconds": round(time.time() - encoded, 2)}},
        search)


def run_dense(dataset: Dataset, data: DataSettings, model: ModelSettings, search: SearchSettings = SearchSettings()) -> Path:
    doc_ids, embeddings, _ = load_shards(model.embeddings_dir(data))
    qids = list(dataset.queries)
    started = time.time()
    embedder = Embedder(model.preset, load_model(model.preset, model.device, model.dtype))
    queries = embedder.encode([dataset.queries[q] for q in qids], is_query=True)
    encoded = time.time()
    run = DenseIndex(doc_ids, embeddings).search(queries.embeddings, qids)
    return _save_run(data, f"{model.name}.dense", run, {
        "kind": "dense", "model": model.name, "variant": "faiss-flat-ip", "query_mode": "embedding",
        "llm_forward_per_query": True, "index_bytes": int(embeddings.nbytes),
        "data_source": dataset.source, "inputs": run_inputs(dataset, model.embeddings_dir(data) / "manifest.json", search),
        "timings": {"encode_seconds": round(encoded - started, 2), "search_seconds": round(time.time() - encoded, 2)}},
        search)


def run_bm25(dataset: Dataset, data: DataSettings, search: SearchSettings, lucene: Path) -> Path:
    """BM25 over the dataset's Lucene index (`Needs.bm25()` builds it), Anserini's k1=0.9 b=0.4."""
    started = time.time()
    run = BM25Index(lucene).search(dataset.queries, threads=search.threads)
    return _save_run(data, "bm25", run, {"kind": "bm25", "model": "bm25", "variant": "flat k1=0.9 b=0.4",
                                         "query_mode": "bag of words", "llm_forward_per_query": False,
                                         "index": str(lucene), "data_source": dataset.source, "inputs": run_inputs(dataset, lucene.parent / "manifest.json", search),
                                         "timings": {"search_seconds": round(time.time() - started, 2)}}, search)


def explain(dataset: Dataset, data: DataSettings, model: ModelSettings, variant: Variant, query: QuerySettings,
            qid: str, index: str | None = None, top: int = 5) -> str:
    """Shared terms and their contributions for one query's top documents, as plain text."""
    if qid not in dataset.queries:
        raise InputError(f"query id {qid!r} is not among the {len(dataset.queries)} queries of {dataset.name}/{dataset.split}")
    folder, info = sparse_index(data, model, variant, index)
    built_from = read_json(Path(info["embeddings"]) / "manifest.json", "embeddings manifest").get("corpus_sha1")
    if built_from not in (None, dataset.fingerprint["corpus_sha1"]):
        raise InputError(f"index {folder} was built from another corpus than {dataset.source} now holds; rerun "
                         f"`make index` for it before explaining its hits")
    one = Dataset(dataset.name, dataset.split, dataset.source, {}, {qid: dataset.queries[qid]}, {})
    terms = encode_queries(one, model, query, folder, info)[qid]
    hits = impact_search(folder / "lucene", {qid: terms}, k=top)[qid]
    wanted = {doc for doc, _ in hits}
    vectors = {}
    for part in sorted((folder / "collection").glob("*.jsonl")):
        for line in part.open(encoding="utf-8"):
            obj = json.loads(line)
            if obj["id"] in wanted:
                vectors[obj["id"]] = obj["vector"]
    relevant = dataset.qrels.get(qid, {})
    lines = [f"query {qid}: {dataset.queries[qid]}", f"query terms: {dict(sorted(terms.items(), key=lambda x: -x[1]))}"]
    for rank, (doc, score) in enumerate(hits, start=1):
        shared = sorted(((t, w * vectors[doc][t]) for t, w in terms.items() if t in vectors[doc]), key=lambda x: -x[1])
        mark = " (relevant)" if relevant.get(doc, 0) > 0 else ""
        lines.append(f"#{rank} {doc} score {score:.0f}{mark}: " + ", ".join(f"{t}={c}" for t, c in shared))
        lines.append(f"    {dataset.corpus[doc].contents[:160]}" if doc in dataset.corpus else "")
    return "\n".join(lines)
