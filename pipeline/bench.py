"""make bench: cost of keytokens against its own dense path, BM25 and SPLADE, measured side by side in one run.

Machines are noisy, so every figure that matters is a ratio between systems timed in the same process:
  query path   per query (p50 / p95 / mean after warm-up, one thread): (a) sparse query=tokens, (b) sparse
               query=aligned, (c) dense (LLM query embedding + FAISS flat), (d) BM25, (e) SPLADE; encode and search
               timed apart; batch throughput with all threads
  doc path     docs/s of the LLM forward alone vs forward + LM head + top-K + quantize + JSON line, and a
               torch.profiler table of the operators the forward spends its time in
  footprint    Lucene index bytes per variant (ours, SPLADE, BM25), FAISS float32 bytes, collection bytes,
               postings per document
  indexing     Lucene impact indexing docs/s with 1 and 2 threads, each in its own process (own peak RSS)
  scaling      index and serve time and peak RSS at 10%, 30%, 100% of the corpus, encode time at 1%, 2%, 5% (and
               100% from the encode manifest), fitted slopes and estimates for 1M documents
Needs the indexes of `make eval`. Writes runs/bench/<dataset>.json and .md. Not a test: nothing here asserts.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from encoders.aligned import adjust_pc1, quantize, top_k
from encoders.embedder import Embedder
from encoders.models import load_model
from encoders.presets import resolve_preset
from encoders.queries import l2_normalise
from encoders.vocab import Vocabulary
from pipeline.artifacts import index_root, read_json, runs_root, write_json, write_text
from pipeline.datasets import add_dataset_args, dataset_from_args
from pipeline.encode import add_model_args, dataset_key, load_shards, model_dir
from pipeline.errors import InputError, cli_main, stage_parser
from pipeline.jvm import autoclass
from pipeline.project import DEFAULTS, variant_name, variant_settings
from pipeline.search import THREADS, impact_search, java_query, query_encoder, splade_queries, token_encoder

WARMUP = 5


def _stats(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3)}


def _timed(fn, items) -> tuple[list, list[float]]:
    for item in items[:WARMUP]:
        fn(item)
    out, times = [], []
    for item in items:
        start = time.perf_counter()
        out.append(fn(item))
        times.append(time.perf_counter() - start)
    return out, times


def query_path(args, dataset, folder: Path, info: dict, preset, loaded) -> dict:
    texts = list(dataset.queries.values())
    searcher = autoclass("io.anserini.search.SimpleImpactSearcher")(str(folder / "lucene"))
    tokens = token_encoder(folder, info, "idf")
    embedder = Embedder(preset, loaded)
    result: dict = {}

    encoded, enc_t = _timed(tokens.encode, texts)
    _, search_t = _timed(lambda q: searcher.search(java_query(q), 1000) if q else [], encoded)
    result["a sparse tokens"] = {"encode": _stats(enc_t), "search": _stats(search_t),
                                 "total": _stats(list(np.add(enc_t, search_t)))}

    aligned = query_encoder(argparse.Namespace(**{**vars(args), "query": "aligned", "qweight": "idf"}), folder, info)
    encoded_aligned, enc_a = _timed(aligned.encode, texts)
    _, search_a = _timed(lambda q: searcher.search(java_query(q), 1000) if q else [], encoded_aligned)
    result["b sparse aligned"] = {"encode": _stats(enc_a), "search": _stats(search_a),
                                  "total": _stats(list(np.add(enc_a, search_a)))}

    import faiss

    doc_ids, embeddings, _ = load_shards(model_dir(args, preset.name) / "embeddings")
    index = faiss.IndexFlatIP(embeddings.shape[1])
    index.add(l2_normalise(embeddings))
    vectors, enc_d = _timed(lambda t: l2_normalise(embedder.encode([t], is_query=True).embeddings), texts)
    _, search_d = _timed(lambda v: index.search(v, 1000), vectors)
    result["c dense"] = {"encode": _stats(enc_d), "search": _stats(search_d), "total": _stats(list(np.add(enc_d, search_d)))}

    from pyserini.search.lucene import LuceneSearcher

    bm25 = LuceneSearcher(str(index_root() / dataset_key(args) / "bm25" / "lucene"))
    bm25.set_bm25(0.9, 0.4)
    _, bm25_t = _timed(lambda t: bm25.search(t, k=1000), texts)
    result["d bm25"] = {"total": _stats(bm25_t)}

    splade_folder = model_dir(argparse.Namespace(**{**vars(args), "model": "splade-tiny"}), "splade-tiny") / "splade-raw"
    if (splade_folder / "lucene").exists():
        splade_info = read_json(splade_folder / "manifest.json")
        splade_searcher = autoclass("io.anserini.search.SimpleImpactSearcher")(str(splade_folder / "lucene"))
        one = lambda t: splade_queries(dataset.__class__(dataset.name, "", "", {}, {"q": t}, {}), splade_info, "cpu")["q"]  # noqa: E731
        encoded_s, enc_s = _timed(one, texts)
        _, search_s = _timed(lambda q: splade_searcher.search(java_query(q), 1000), encoded_s)
        result["e splade"] = {"encode": _stats(enc_s), "search": _stats(search_s), "total": _stats(list(np.add(enc_s, search_s)))}

    qids = list(dataset.queries)
    start = time.perf_counter()
    impact_search(folder / "lucene", dict(zip(qids, encoded)), threads=THREADS)
    result["batch all threads"] = {"sparse tokens queries/s": round(len(qids) / (time.perf_counter() - start), 1),
                                   "threads": THREADS}
    dense_total = result["c dense"]["total"]["mean_ms"]
    result["ratios"] = {"dense / sparse tokens (mean end-to-end)": round(dense_total / result["a sparse tokens"]["total"]["mean_ms"], 1),
                        "dense / sparse aligned": round(dense_total / result["b sparse aligned"]["total"]["mean_ms"], 2),
                        "sparse tokens / bm25": round(result["a sparse tokens"]["total"]["mean_ms"] / result["d bm25"]["total"]["mean_ms"], 2)}
    return result


def doc_path(dataset, preset, loaded, info: dict, n: int = 64) -> dict:
    texts = [d.contents for d in list(dataset.corpus.values())[:n]]
    embedder = Embedder(preset, loaded)
    vocab = Vocabulary(loaded.tokenizer, info["settings"]["normalize"] == "on")
    embedder.encode(texts[:8])
    start = time.perf_counter()
    batch = embedder.encode(texts)
    forward = time.perf_counter() - start
    start = time.perf_counter()
    chosen = top_k(adjust_pc1(batch.embeddings, info.get("pc1")), loaded.lm_head, int(info["settings"]["k"] or 1024), "log")
    lines = [json.dumps({"id": str(i), "vector": quantize(vocab.merge(ids, w), info["scale"])})
             for i, (ids, w) in enumerate(zip(chosen.ids, chosen.weights))]
    projection = time.perf_counter() - start
    return {"documents": len(lines), "forward_docs_per_s": round(n / forward, 2),
            "forward_plus_projection_docs_per_s": round(n / (forward + projection), 2),
            "projection_share_of_forward": round(projection / forward, 4),
            "profile": forward_profile(preset, loaded, texts[:16])}


def footprint(args, preset) -> dict:
    base = model_dir(args, preset.name)
    out = {}
    for manifest_path in sorted(index_root().glob(f"{dataset_key(args)}/*/*/lucene.manifest.json")):
        info = read_json(manifest_path)
        collection = read_json(manifest_path.parent / "manifest.json")
        coll_bytes = sum(p.stat().st_size for p in (manifest_path.parent / "collection").glob("*.jsonl"))
        out[f"{info['model']}/{info['variant']}"] = {
            "lucene_bytes": info["lucene"]["bytes"], "collection_bytes": coll_bytes,
            "postings_per_doc": collection["counts"]["avg_terms_per_document"]}
    emb = read_json(base / "embeddings" / "manifest.json")
    hidden = np.load(next((base / "embeddings").glob("part-*.npy")), mmap_mode="r").shape[1]
    out["faiss flat float32"] = {"bytes": emb["counts"]["documents"] * hidden * 4}
    bm25 = index_root() / dataset_key(args) / "bm25" / "lucene"
    out["bm25"] = {"lucene_bytes": sum(p.stat().st_size for p in bm25.rglob("*") if p.is_file())}
    return out


ENCODE_FRACTIONS = (0.01, 0.02, 0.05)  # live encode timings (the forward is about 1.4 docs/s on 2 cores); 100% from the encode manifest
FRACTIONS = (0.1, 0.3, 1.0)


def indexing_and_scaling(args, folder: Path, queries: dict[str, dict[str, int]], documents: int, base: Path) -> dict:
    """Each job in its own process (own peak RSS): indexing with 1 and 2 threads, then index + serve + encode at
    corpus fractions, a fitted slope per figure and its estimate for 1M documents."""
    from pipeline.bench_probe import run_probe

    lines = [line for part in sorted((folder / "collection").glob("*.jsonl")) for line in part.open(encoding="utf-8")]
    work = Path(tempfile.mkdtemp(prefix="kt-bench-"))
    result: dict = {"indexing": {}, "scaling": [], "encode": []}
    try:
        for threads in (1, 2):
            stats = run_probe({"job": "index", "collection": str(folder / "collection"), "out": str(work / f"t{threads}"),
                               "threads": threads})
            result["indexing"][f"{threads} thread(s)"] = {"docs_per_second": stats["docs_per_second"],
                                                          "peak_rss_mb": stats["peak_rss_mb"]}
        (work / "queries.json").write_text(json.dumps(list(queries.values())), encoding="utf-8")
        for fraction in FRACTIONS:
            part = work / f"f{fraction}"
            (part / "collection").mkdir(parents=True)
            count = max(1, int(len(lines) * fraction))
            (part / "collection" / "part-00000.jsonl").write_text("".join(lines[:count]), encoding="utf-8")
            index = run_probe({"job": "index", "collection": str(part / "collection"), "out": str(part / "lucene"), "threads": 2})
            serve = run_probe({"job": "serve", "index": str(part / "lucene"), "queries": str(work / "queries.json")})
            result["scaling"].append({"fraction": fraction, "documents": count, "index_seconds": index["seconds"],
                                      "index_peak_rss_mb": index["peak_rss_mb"], "index_bytes": index["index_bytes"],
                                      "search_seconds": serve["seconds"], "serve_peak_rss_mb": serve["peak_rss_mb"]})
        for fraction in ENCODE_FRACTIONS:
            n = max(1, int(documents * fraction))
            stats = run_probe({"job": "encode", "dataset": args.dataset, "data_dir": args.data_dir, "model": args.model,
                               "n": n, "device": args.device})
            result["encode"].append({"fraction": fraction, **stats})
        whole = read_json(base / "embeddings" / "manifest.json").get("timings", {})
        if whole.get("seconds_last_run") and whole.get("docs_per_second_last_run"):
            result["encode"].append({"fraction": 1.0, "documents": documents, "seconds": whole["seconds_last_run"],
                                     "docs_per_second": whole["docs_per_second_last_run"],
                                     "peak_rss_mb": None, "note": "the make encode run, from its manifest"})
        fits = {"scaling": ("index_seconds", "search_seconds", "index_bytes", "index_peak_rss_mb", "serve_peak_rss_mb"),
                "encode": ("seconds",)}
        for table, keys in fits.items():
            docs = np.array([s["documents"] for s in result[table]], dtype=float)
            for key in keys:
                slope, intercept = np.polyfit(docs, [s[key] for s in result[table]], 1)
                result.setdefault("fits", {})[key] = {"per_document": float(slope),
                                                      "estimate_1M_documents": round(float(slope * 1e6 + intercept), 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def forward_profile(preset, loaded, texts: list[str], top: int = 8) -> list[dict]:
    """torch.profiler over one batch of document forwards: the operators that take the time."""
    from torch.profiler import ProfilerActivity, profile

    embedder = Embedder(preset, loaded)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        embedder.encode(texts)
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in rows) or 1
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3), "calls": e.count} for e in rows[:top]]


def report(results: dict) -> str:
    lines = [f"# Bench: {results['dataset']}, {results['model']} ({results['queries']} queries, {results['documents']} documents)", ""]
    lines += ["## Query path (one thread, per query, after warm-up)", "", "| system | part | p50 ms | p95 ms | mean ms |", "|---|---|---|---|---|"]
    for system, parts in results["query_path"].items():
        if system in ("ratios", "batch all threads"):
            continue
        for part, s in parts.items():
            lines.append(f"| {system} | {part} | {s['p50_ms']} | {s['p95_ms']} | {s['mean_ms']} |")
    lines += ["", f"Ratios: {results['query_path']['ratios']}", f"Batch: {results['query_path']['batch all threads']}", ""]
    doc = results["doc_path"]
    lines += ["## Document path", "", f"- {doc['documents']} documents: forward alone {doc['forward_docs_per_s']} docs/s, "
              f"forward + LM head + top-K + quantize + JSON {doc['forward_plus_projection_docs_per_s']} docs/s; the "
              f"aligned-token step adds {doc['projection_share_of_forward']:.1%} to the forward (goal: at most 5%)", "",
              "Where the forward time goes (torch.profiler, self CPU share):", "", "| operator | share | calls |", "|---|---|---|"]
    lines += [f"| {r['op']} | {r['share']:.1%} | {r['calls']} |" for r in doc["profile"]]
    lines += ["", "## Footprint", "", "| index | figures |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in results["footprint"].items()]
    lines += ["", f"Peak RSS of the bench process (models, FAISS, all searchers): {results['peak_rss_mb']} MB", "",
              "## Indexing (one process each)", "", "| threads | docs/s | peak RSS MB |", "|---|---|---|"]
    lines += [f"| {k} | {v['docs_per_second']} | {v['peak_rss_mb']} |" for k, v in results["scaling"]["indexing"].items()]
    lines += ["", "## Scaling (one process per job)", "",
              "| fraction | docs | index s | index peak RSS MB | index bytes | search s (all queries, 1 thread) | serve peak RSS MB |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {s['fraction']} | {s['documents']} | {s['index_seconds']} | {s['index_peak_rss_mb']} | {s['index_bytes']} | "
              f"{s['search_seconds']} | {s['serve_peak_rss_mb']} |" for s in results["scaling"]["scaling"]]
    lines += ["", "| encode fraction | docs | seconds | docs/s | peak RSS MB |", "|---|---|---|---|---|"]
    lines += [f"| {e['fraction']} | {e['documents']} | {e['seconds']} | {e['docs_per_second']} | {e['peak_rss_mb'] or e.get('note', '')} |"
              for e in results["scaling"]["encode"]]
    lines += ["", "Fitted slopes and 1M-document estimates:", ""]
    lines += [f"- {k}: {v['per_document']:.4g} per document -> {v['estimate_1M_documents']} for 1M documents"
              for k, v in results["scaling"].get("fits", {}).items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("pipeline.bench", __doc__, add_dataset_args, add_model_args)
    args = parser.parse_args(argv)
    args.m, args.index = 32, None
    for key, value in DEFAULTS.items():
        setattr(args, key, None)
    preset = resolve_preset(args.model, args.pooling, args.max_length, args.batch_size)
    folder = model_dir(args, preset.name) / variant_name(variant_settings(args))
    if not (folder / "lucene").exists():
        raise InputError(f"no index at {folder}; run `make eval dataset={args.dataset}` first")
    info = read_json(folder / "manifest.json")
    dataset = dataset_from_args(args)
    loaded = load_model(preset, args.device, args.dtype)
    results = {"dataset": dataset_key(args), "model": preset.name, "variant": folder.name,
               "queries": len(dataset.queries), "documents": len(dataset.corpus)}
    results["query_path"] = query_path(args, dataset, folder, info, preset, loaded)
    results["doc_path"] = doc_path(dataset, preset, loaded, info)
    results["footprint"] = footprint(args, preset)
    tokens = token_encoder(folder, info, "idf")
    results["scaling"] = indexing_and_scaling(args, folder, {q: tokens.encode(t) for q, t in dataset.queries.items()},
                                              len(dataset.corpus), model_dir(args, preset.name))
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out = runs_root() / "bench"
    write_json(out / f"{dataset_key(args)}.json", results)
    text = report(results)
    write_text(out / f"{dataset_key(args)}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    cli_main(main)
