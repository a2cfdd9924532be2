"""Stage 4, search: indexes -> TREC runs (k=1000) under `runs/<dataset>/`, one file per run plus its manifest.

Kinds of run:
  sparse   the aligned-token impact index; --query tokens (own tokens, no LLM) or aligned (+ top-M aligned tokens)
  control  the same path over the LLM-free `--source own` collection
  dense    FAISS IndexFlatIP over the L2-normalised stored document embeddings and embedded queries
  bm25     Lucene BM25 (k1=0.9, b=0.4) over title + text

`--explain QID` prints, for one query and its top documents, the shared terms and each term's contribution
(query weight x document weight): what an aligned-token index can say about a hit and a dense index cannot.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from encoders.aligned import WEIGHTINGS, quantize
from encoders.embedder import Embedder
from encoders.models import load_model, load_tokenizer
from encoders.presets import Preset, resolve_preset
from encoders.queries import QUERY_MODES, QWEIGHTS, AlignedQueryEncoder, TokenQueryEncoder, l2_normalise
from encoders.splade import SpladeEncoder
from encoders.vocab import Vocabulary
from pipeline.artifacts import manifest, read_json, runs_root, write_json, write_text
from pipeline.datasets import Dataset, add_dataset_args, dataset_from_args
from pipeline.encode import add_model_args, dataset_key, load_shards, model_dir
from pipeline.errors import InputError, cli_main, stage_parser
from pipeline.jvm import autoclass, start_jvm
from pipeline.project import add_variant_args, variant_name, variant_settings

Run = dict[str, list[tuple[str, float]]]
DEPTH = 1000
THREADS = os.cpu_count() or 1


def write_trec(path: Path, run: Run, tag: str) -> None:
    lines = [f"{qid} Q0 {doc} {rank} {score:.6f} {tag}"
             for qid, hits in run.items() for rank, (doc, score) in enumerate(hits, start=1)]
    write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def read_trec(path: Path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if len(parts) != 6:
                raise InputError(f"{path}:{number}: not a TREC run line (qid Q0 docid rank score tag)")
            run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
    return run


def java_query(query: dict[str, int]):
    """A term -> integer weight map as the java.util.HashMap<String, Integer> SimpleImpactSearcher takes."""
    JHashMap, JInt = autoclass("java.util.HashMap"), autoclass("java.lang.Integer")
    jquery = JHashMap()
    for term, weight in query.items():
        jquery.put(term, JInt(int(weight)))
    return jquery


def impact_search(index_dir: Path, queries: dict[str, dict[str, int]], k: int = DEPTH, threads: int = THREADS) -> Run:
    """Batch search of integer-weighted term maps with Anserini's SimpleImpactSearcher (score = sum q_w x d_w)."""
    start_jvm()
    searcher = autoclass("io.anserini.search.SimpleImpactSearcher")(str(index_dir))
    JArrayList = autoclass("java.util.ArrayList")
    qids = [q for q, terms in queries.items() if terms]
    run: Run = {q: [] for q in queries}
    if not qids:
        return run
    jqueries, jqids = JArrayList(), JArrayList()
    for qid in qids:
        jqueries.add(java_query(queries[qid]))
        jqids.add(qid)
    results = searcher.batch_search(jqueries, jqids, k, threads)
    for qid in qids:
        run[qid] = [(hit.docid, float(hit.score)) for hit in results.get(qid)]
    searcher.close()
    return run


def bm25_search(index_dir: Path, queries: dict[str, str], k: int = DEPTH, threads: int = THREADS) -> Run:
    start_jvm()
    from pyserini.search.lucene import LuceneSearcher

    searcher = LuceneSearcher(str(index_dir))
    searcher.set_bm25(0.9, 0.4)
    qids = [q for q, text in queries.items() if text.strip()]
    results = searcher.batch_search([queries[q] for q in qids], qids, k=k, threads=threads)
    run: Run = {q: [] for q in queries}
    for qid in qids:
        run[qid] = [(hit.docid, float(hit.score)) for hit in results[qid]]
    return run


def dense_search(doc_ids: list[str], doc_embeddings: np.ndarray, query_embeddings: np.ndarray, qids: list[str],
                 k: int = DEPTH) -> Run:
    import faiss

    index = faiss.IndexFlatIP(doc_embeddings.shape[1])
    index.add(l2_normalise(doc_embeddings))
    scores, rows = index.search(l2_normalise(query_embeddings), min(k, len(doc_ids)))
    return {qid: [(doc_ids[r], float(s)) for r, s in zip(row, score) if r >= 0]
            for qid, row, score in zip(qids, rows, scores)}


def run_dir(args: argparse.Namespace) -> Path:
    """runs/<dataset>/ for the test split, runs/<dataset>/<split>/ for others (e.g. train runs that tune fusion)."""
    base = runs_root() / dataset_key(args)
    return base if args.split == "test" else base / args.split


def _save_run(args: argparse.Namespace, name: str, run: Run, info: dict) -> Path:
    path = run_dir(args) / f"{name}.trec"
    write_trec(path, run, name)
    write_json(path.with_suffix(".json"), manifest("search", name=name, queries=len(run), split=args.split, **info))
    print(f"run: {path}")
    return path


def _sparse_index(args: argparse.Namespace) -> tuple[Path, dict]:
    """The variant's Lucene index and its manifest; refuses an index built for another model or normalisation."""
    preset = resolve_preset(args.model, args.pooling, args.max_length, args.batch_size)
    settings = variant_settings(args)
    folder = Path(args.index) if args.index else model_dir(args, preset.name) / variant_name(settings)
    info = read_json(folder / "manifest.json", "collection manifest (run `make index` first)")
    if info["model"] != preset.name:
        raise InputError(f"index {folder} was built with model {info['model']!r}, the query side asks for "
                         f"{preset.name!r}; pass the matching --model")
    if info["settings"]["normalize"] != settings["normalize"]:
        raise InputError(f"index {folder} was built with normalize={info['settings']['normalize']}, the query side "
                         f"asks for normalize={settings['normalize']}; use the same on both sides")
    if not (folder / "lucene" / "df.json").exists():
        raise InputError(f"no Lucene index in {folder}; run `make index` first")
    return folder, info


def collection_preset(info: dict) -> Preset:
    """The preset a collection was projected with, from its manifest (a pooling override such as `smollm2-mean` is
    not a preset name, so the name alone cannot be resolved)."""
    return Preset.from_dict(info["preset"]) if "preset" in info else resolve_preset(info["model"])


def token_encoder(folder: Path, info: dict, qweight: str) -> TokenQueryEncoder:
    tokenizer = load_tokenizer(collection_preset(info).source)  # no weights: this mode runs no forward pass
    table = read_json(folder / "lucene" / "df.json")
    return TokenQueryEncoder(Vocabulary(tokenizer, info["settings"]["normalize"] == "on"), qweight,
                             table["df"], table["documents"])


def query_encoder(args: argparse.Namespace, folder: Path, info: dict):
    """The query encoder of a variant: `encode(text)` / `encode_many(texts)` -> {term: int} (tokens or aligned)."""
    tokens = token_encoder(folder, info, args.qweight)
    if args.query == "tokens":
        return tokens
    preset = resolve_preset(args.model, args.pooling, args.max_length, args.batch_size)
    weighting = info["settings"]["weighting"] if info["settings"]["weighting"] in WEIGHTINGS else "log"
    return AlignedQueryEncoder(tokens, Embedder(preset, load_model(preset, args.device, args.dtype)), args.m, weighting,
                               info["scale"], info.get("pc1"))


def encode_queries(args: argparse.Namespace, dataset: Dataset, folder: Path, info: dict) -> dict[str, dict[str, int]]:
    if info["settings"]["source"] == "splade":
        return splade_queries(dataset, info, args.device, args.dtype)
    qids = list(dataset.queries)
    return dict(zip(qids, query_encoder(args, folder, info).encode_many([dataset.queries[q] for q in qids])))


def splade_queries(dataset: Dataset, info: dict, device: str, dtype: str = "auto") -> dict[str, dict[str, int]]:
    """SPLADE query vectors (one MLM forward per query), quantized with the documents' scale."""
    preset = collection_preset(info)
    loaded = load_model(preset, device, dtype)
    vocab = Vocabulary(loaded.tokenizer, info["settings"]["normalize"] == "on")
    qids = list(dataset.queries)
    batch = SpladeEncoder(preset, loaded).encode([dataset.queries[q] for q in qids], is_query=True)
    return {q: quantize(vocab.merge(ids, w), info["scale"]) for q, ids, w in zip(qids, batch.ids, batch.weights)}


def sparse_run_name(model: str, variant: str, query: str, qweight: str, m: int) -> str:
    mode = f"aligned{m}" if query == "aligned" else "tokens"
    return f"{model}.{variant}.{mode}-{qweight}"


def run_sparse(args: argparse.Namespace, dataset: Dataset) -> Path:
    folder, info = _sparse_index(args)
    started = time.time()
    queries = encode_queries(args, dataset, folder, info)
    encoded = time.time()
    run = impact_search(folder / "lucene", queries, threads=args.threads)
    source = info["settings"]["source"]
    kind = {"own": "control", "splade": "splade"}.get(source, "sparse")
    name = f"{info['model']}.{folder.name}" if source == "splade" else \
        sparse_run_name(info["model"], folder.name, args.query, args.qweight, args.m)
    return _save_run(args, name, run, {
        "kind": kind, "model": info["model"], "variant": folder.name, "query_mode": args.query, "qweight": args.qweight,
        "m": args.m if args.query == "aligned" else None, "k": info["settings"].get("k"), "index": str(folder / "lucene"),
        "llm_forward_per_query": args.query == "aligned" or source == "splade",
        "timings": {"encode_seconds": round(encoded - started, 2), "search_seconds": round(time.time() - encoded, 2)}})


def run_dense(args: argparse.Namespace, dataset: Dataset) -> Path:
    preset = resolve_preset(args.model, args.pooling, args.max_length, args.batch_size)
    doc_ids, embeddings, _ = load_shards(model_dir(args, preset.name) / "embeddings")
    qids = list(dataset.queries)
    started = time.time()
    queries = Embedder(preset, load_model(preset, args.device, args.dtype)).encode([dataset.queries[q] for q in qids], is_query=True)
    encoded = time.time()
    run = dense_search(doc_ids, embeddings, queries.embeddings, qids)
    return _save_run(args, f"{preset.name}.dense", run, {
        "kind": "dense", "model": preset.name, "variant": "faiss-flat-ip", "query_mode": "embedding",
        "llm_forward_per_query": True, "index_bytes": int(embeddings.nbytes),
        "timings": {"encode_seconds": round(encoded - started, 2), "search_seconds": round(time.time() - encoded, 2)}})


def run_bm25(args: argparse.Namespace, dataset: Dataset) -> Path:
    from pipeline.index import bm25_index

    lucene = bm25_index(dataset, dataset_key(args), args.threads)
    started = time.time()
    run = bm25_search(lucene, dataset.queries, threads=args.threads)
    return _save_run(args, "bm25", run, {"kind": "bm25", "model": "bm25", "variant": "flat k1=0.9 b=0.4",
                                         "query_mode": "bag of words", "llm_forward_per_query": False,
                                         "index": str(lucene), "timings": {"search_seconds": round(time.time() - started, 2)}})


def explain(args: argparse.Namespace, dataset: Dataset, qid: str, top: int = 5) -> str:
    """Shared terms and their contributions for one query's top documents, as plain text."""
    if qid not in dataset.queries:
        raise InputError(f"query id {qid!r} is not among the {len(dataset.queries)} queries of {dataset.name}/{dataset.split}")
    folder, info = _sparse_index(args)
    one = Dataset(dataset.name, dataset.split, dataset.source, {}, {qid: dataset.queries[qid]}, {})
    query = encode_queries(args, one, folder, info)[qid]
    hits = impact_search(folder / "lucene", {qid: query}, k=top, threads=1)[qid]
    wanted = {doc for doc, _ in hits}
    vectors = {}
    for part in sorted((folder / "collection").glob("*.jsonl")):
        for line in part.open(encoding="utf-8"):
            obj = json.loads(line)
            if obj["id"] in wanted:
                vectors[obj["id"]] = obj["vector"]
    relevant = dataset.qrels.get(qid, {})
    lines = [f"query {qid}: {dataset.queries[qid]}", f"query terms: {dict(sorted(query.items(), key=lambda x: -x[1]))}"]
    for rank, (doc, score) in enumerate(hits, start=1):
        shared = sorted(((t, w * vectors[doc][t]) for t, w in query.items() if t in vectors[doc]), key=lambda x: -x[1])
        mark = " (relevant)" if relevant.get(doc, 0) > 0 else ""
        lines.append(f"#{rank} {doc} score {score:.0f}{mark}: " + ", ".join(f"{t}={c}" for t, c in shared))
        lines.append(f"    {dataset.corpus[doc].contents[:160]}" if doc in dataset.corpus else "")
    return "\n".join(lines)


def add_search_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("search")
    group.add_argument("--query", default="tokens", choices=QUERY_MODES, help="sparse query mode (default tokens: no LLM)")
    group.add_argument("--qweight", default="idf", choices=QWEIGHTS, help="weights of the query's own tokens (default idf)")
    group.add_argument("--m", type=int, default=32, help="aligned tokens added per query in --query aligned (default 32)")
    group.add_argument("--index", default=None, help="explicit variant folder (default: from model and variant options)")
    group.add_argument("--threads", type=int, default=THREADS, help=f"search threads (default {THREADS})")


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("pipeline.search", __doc__, add_dataset_args, add_model_args, add_variant_args, add_search_args)
    parser.add_argument("--kind", default="sparse", choices=("sparse", "dense", "bm25"), help="which run (default sparse)")
    parser.add_argument("--explain", metavar="QID", default=None, help="explain one query's top hits instead of a run")
    args = parser.parse_args(argv)
    dataset = dataset_from_args(args)
    if args.explain:
        print(explain(args, dataset, args.explain))
    else:
        {"sparse": run_sparse, "dense": run_dense, "bm25": run_bm25}[args.kind](args, dataset)
    return 0


if __name__ == "__main__":
    cli_main(main)
