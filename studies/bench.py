"""make bench: cost of keytokens against its own dense path, BM25 and SPLADE, measured side by side in one run.

Machines are noisy, so every figure that matters is a ratio between systems timed in the same process:
  query path   per query (p50 / p95 / mean, one thread, warm: searches after full passes): (a) sparse query=tokens, (b) sparse
               query=aligned, (c) dense (LLM query embedding + FAISS flat), (d) BM25, (e) SPLADE; encode and search
               timed apart; Lucene through the lean path at k=1000 and k=10, with the Java and Python shares of
               each call; batch throughput with all threads
  cpu paths    the forward in float32 (2 and 1 threads), bfloat16 and int8 dynamic quantisation: docs/s as a ratio
               to float32, cosine and top-64 aligned-token overlap with float32; a training step in float32 vs bf16
               autocast (studies/cpu_paths.py). `--only cpu-paths` runs this section alone (no index needed)
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

import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from common import layout
from common.errors import InputError
from encoders import pc1
from encoders.aligned import quantize, top_k
from encoders.embedder import Embedder
from encoders.models import load_model
from encoders.vocab import Vocabulary
from engines.retrieval import BM25Index, DenseIndex, ImpactIndex
from plumbing import cli
from plumbing.artifacts import read_json, write_json, write_text
from plumbing.index_queries import SpladeQueryEncoder, query_encoder, token_encoder
from plumbing.settings import DEFAULT_K, DataSettings, ModelSettings, QuerySettings, Variant
from plumbing.shards import embedding_width, load_shards
from steps.evaluate import SPLADE_MODEL, with_default_source

WARMUP = 5  # calls before timing an LLM forward (each costs tens of ms)
SEARCH_WARMUP_PASSES = 3  # full passes over the queries before timing a search: the JIT compiles the hot loops


def latency_stats(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3)}


def timed(fn, items, warmup: int = WARMUP) -> tuple[list, list[float]]:
    """Results and seconds of `fn` over items, one at a time, after `warmup` calls (JIT, caches, the JVM)."""
    for call in range(warmup if items else 0):
        fn(items[call % len(items)])
    out, times = [], []
    for item in items:
        start = time.perf_counter()
        out.append(fn(item))
        times.append(time.perf_counter() - start)
    return out, times


def timed_search(fn, queries: list) -> tuple[list, list[float]]:
    """A search probe: timed after SEARCH_WARMUP_PASSES full passes, so every number is the warm JVM's (or engine's)."""
    return timed(fn, queries, warmup=SEARCH_WARMUP_PASSES * len(queries))


def lucene_search(index, queries: list, k: int) -> tuple[list[float], dict]:
    """Per-query seconds of a lean Lucene search at depth k, with the Java and Python shares of each call."""
    java: list[float] = []

    def one(query):
        hits = index.search_one(query, k)
        java.append(index.java_seconds)
        return hits

    _, seconds = timed_search(one, queries)
    java = java[-len(seconds):]  # the warm-up calls come first
    return seconds, {f"search k={k}": latency_stats(seconds), f"  of it in Java (k={k})": latency_stats(java),
                     f"  of it in Python (k={k})": latency_stats(list(np.subtract(seconds, java)))}


def query_path(dataset, data: DataSettings, model: ModelSettings, folder: Path, info: dict, loaded) -> dict:
    texts = list(dataset.queries.values())
    searcher = ImpactIndex(folder / "lucene")
    tokens = token_encoder(folder, info, "idf")
    embedder = Embedder(model.preset, loaded)
    result: dict = {}

    encoded, enc_t = timed(tokens.encode, texts)
    search_t, parts = lucene_search(searcher, encoded, 1000)
    _, parts10 = lucene_search(searcher, encoded, 10)
    result["a sparse tokens"] = {"encode": latency_stats(enc_t), **parts, **parts10,
                                 "total": latency_stats(list(np.add(enc_t, search_t)))}

    aligned = query_encoder(model, QuerySettings("aligned", "idf"), folder, info)
    encoded_aligned, enc_a = timed(aligned.encode, texts)
    search_a, _ = lucene_search(searcher, encoded_aligned, 1000)
    result["b sparse aligned"] = {"encode": latency_stats(enc_a), "search": latency_stats(search_a),
                                  "total": latency_stats(list(np.add(enc_a, search_a)))}

    doc_ids, embeddings, _ = load_shards(model.embeddings_dir(data))
    index = DenseIndex(doc_ids, embeddings)
    vectors, enc_d = timed(lambda t: embedder.encode([t], is_query=True).embeddings, texts)  # DenseIndex normalises
    _, search_d = timed_search(index.search_vectors, vectors)
    result["c dense"] = {"encode": latency_stats(enc_d), "search": latency_stats(search_d), "total": latency_stats(list(np.add(enc_d, search_d)))}

    bm25 = BM25Index(layout.bm25_dir(data.key) / "lucene")
    bm25_t, bm25_parts = lucene_search(bm25, texts, 1000)
    _, bm25_parts10 = lucene_search(bm25, texts, 10)
    result["d bm25"] = {**bm25_parts, **bm25_parts10, "total": latency_stats(bm25_t)}

    splade = model.other(SPLADE_MODEL)  # the same dtype as the embedder, as `make eval` indexes it
    splade_folder = layout.variant_dir(data.key, splade.name, "splade-raw")
    if (splade_folder / "lucene").exists():
        splade_info = read_json(splade_folder / "manifest.json")
        splade_searcher = ImpactIndex(splade_folder / "lucene")
        encoded_s, enc_s = timed(SpladeQueryEncoder(splade_info, splade.device, splade.dtype).encode, texts)
        search_s, _ = lucene_search(splade_searcher, encoded_s, 1000)
        result["e splade"] = {"encode": latency_stats(enc_s), "search": latency_stats(search_s), "total": latency_stats(list(np.add(enc_s, search_s)))}

    sub_words = sub_word_row(data, model, texts)
    if sub_words:
        result["f sparse sub-words"] = sub_words

    qids = list(dataset.queries)
    start = time.perf_counter()
    searcher.search(dict(zip(qids, encoded)), threads=cli.THREADS)
    result["batch all threads"] = {"sparse tokens queries/s": round(len(qids) / (time.perf_counter() - start), 1),
                                   "threads": cli.THREADS}
    dense_total = result["c dense"]["total"]["mean_ms"]
    result["ratios"] = {"dense / sparse tokens (mean end-to-end)": round(dense_total / result["a sparse tokens"]["total"]["mean_ms"], 1),
                        "dense / sparse aligned": round(dense_total / result["b sparse aligned"]["total"]["mean_ms"], 2),
                        "sparse tokens / bm25": round(result["a sparse tokens"]["total"]["mean_ms"] / result["d bm25"]["total"]["mean_ms"], 2),
                        "dense / sparse tokens (p50 end-to-end)": round(result["c dense"]["total"]["p50_ms"] / result["a sparse tokens"]["total"]["p50_ms"], 1)}
    for k in (1000, 10):  # the no-LLM run's goal: p50 no slower than BM25's on the same lean path
        result["ratios"][f"sparse tokens / bm25 (p50 k={k})"] = round(
            result["a sparse tokens"][f"search k={k}"]["p50_ms"] / result["d bm25"][f"search k={k}"]["p50_ms"], 2)
        if sub_words:
            result["ratios"][f"sparse sub-words / bm25 (p50 k={k})"] = round(
                sub_words[f"search k={k}"]["p50_ms"] / result["d bm25"][f"search k={k}"]["p50_ms"], 2)
    result["postings"] = {f"default ({info['settings'].get('terms', 'tokens')}) terms per query":
                          round(float(np.mean([len(q) for q in encoded])), 1),
                          f"default ({info['settings'].get('terms', 'tokens')}) terms per document":
                          info.get("counts", {}).get("avg_terms_per_document"),
                          **(sub_words.pop("postings") if sub_words else {}), **bm25_words(data, model)}
    return result


def experiment_folder(data: DataSettings, model: ModelSettings, name: str) -> Path:
    from plumbing.runs import EXPERIMENTS

    return Variant.experiment(model.preset, next(e.levers for e in EXPERIMENTS if e.name == name)).dir(data, model)


def sub_word_row(data: DataSettings, model: ModelSettings, texts: list[str]) -> dict | None:
    """The sub-word hybrid's no-LLM query path (normalised tokenizer tokens, idf), when `make eval` has built its
    index: the same timings as the default's row, and its postings per query and per document."""
    folder = experiment_folder(data, model, "sub-word hybrid")
    if not (folder / "lucene" / "df.json").exists():
        return None
    info = read_json(folder / "manifest.json")
    encoder = token_encoder(folder, info, "idf")
    encoded, enc_t = timed(encoder.encode, texts)
    searcher = ImpactIndex(folder / "lucene")
    search_t, parts = lucene_search(searcher, encoded, 1000)
    _, parts10 = lucene_search(searcher, encoded, 10)
    return {"encode": latency_stats(enc_t), **parts, **parts10, "total": latency_stats(list(np.add(enc_t, search_t))),
            "postings": {"sub-word hybrid terms per query": round(float(np.mean([len(q) for q in encoded])), 1),
                         "sub-word hybrid terms per document": info.get("counts", {}).get("avg_terms_per_document")}}


def bm25_words(data: DataSettings, model: ModelSettings) -> dict:
    """BM25's distinct words per document: the word control's postings, which are BM25's own (its collection)."""
    folder = experiment_folder(data, model, "words control bm25tf")
    if not (folder / "manifest.json").exists():
        return {}
    return {"bm25 distinct words per document": read_json(folder / "manifest.json")["counts"]["avg_terms_per_document"]}


def doc_path(dataset, preset, loaded, info: dict, n: int = 64) -> dict:
    """Documents per second of the forward alone, and of forward + the aligned-token projection to JSON lines."""
    texts = [d.contents for d in list(dataset.corpus.values())[:n]]
    embedder = Embedder(preset, loaded)
    vocab = Vocabulary(loaded.tokenizer, info["settings"]["normalize"] == "on")
    embedder.encode(texts[:8])
    start = time.perf_counter()
    batch = embedder.encode(texts)
    forward = time.perf_counter() - start
    start = time.perf_counter()
    chosen = top_k(pc1.adjust(batch.embeddings, info.get("pc1")), loaded.lm_head, int(info["settings"]["k"] or DEFAULT_K), "log")
    lines = [json.dumps({"id": str(i), "vector": quantize(vocab.merge(ids, w), info["scale"])})
             for i, (ids, w) in enumerate(zip(chosen.ids, chosen.weights))]
    projection = time.perf_counter() - start
    return {"documents": len(lines), "forward_docs_per_s": round(n / forward, 2),
            "forward_plus_projection_docs_per_s": round(n / (forward + projection), 2),
            "projection_share_of_forward": round(projection / forward, 4),
            "profile": forward_profile(preset, loaded, texts[:16])}


def footprint(data: DataSettings, model: ModelSettings) -> dict:
    embeddings = model.embeddings_dir(data)
    out = {}
    for manifest_path in sorted(layout.index_root().glob(f"{data.key}/*/*/lucene.manifest.json")):
        info = read_json(manifest_path)
        collection = read_json(manifest_path.parent / "manifest.json")
        coll_bytes = sum(p.stat().st_size for p in (manifest_path.parent / "collection").glob("*.jsonl"))
        out[f"{info['model']}/{info['variant']}"] = {
            "lucene_bytes": info["lucene"]["bytes"], "collection_bytes": coll_bytes,
            "postings_per_doc": collection["counts"]["avg_terms_per_document"]}
    emb = read_json(embeddings / "manifest.json")
    out["faiss flat float32"] = {"bytes": emb["counts"]["documents"] * embedding_width(embeddings) * 4}
    bm25 = layout.bm25_dir(data.key) / "lucene"
    out["bm25"] = {"lucene_bytes": sum(p.stat().st_size for p in bm25.rglob("*") if p.is_file())}
    return out


ENCODE_FRACTIONS = (0.01, 0.02, 0.05)  # live encode timings (the forward is about 1.4 docs/s on 2 cores); 100% from the encode manifest
FRACTIONS = (0.1, 0.3, 1.0)


def indexing_and_scaling(data: DataSettings, model: ModelSettings, folder: Path, queries: dict[str, dict[str, int]],
                         documents: int) -> dict:
    """Each job in its own process (own peak RSS): indexing with 1 and 2 threads, then index + serve + encode at
    corpus fractions, a fitted slope per figure and its estimate for 1M documents."""
    from studies.bench_probe import run_probe

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
            stats = run_probe({"job": "encode", "dataset": data.name, "data_dir": data.data_dir, "model": model.model,
                               "n": n, "device": model.device})
            result["encode"].append({"fraction": fraction, **stats})
        whole = read_json(model.embeddings_dir(data) / "manifest.json").get("timings", {})
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
    lines += [f"## Query path (one thread, per query; searches after {SEARCH_WARMUP_PASSES} warm passes over the queries, LLM forwards after {WARMUP} calls)", "", "| system | part | p50 ms | p95 ms | mean ms |", "|---|---|---|---|---|"]
    for system, parts in results["query_path"].items():
        if system in ("ratios", "batch all threads", "postings"):
            continue
        for part, s in parts.items():
            lines.append(f"| {system} | {part} | {s['p50_ms']} | {s['p95_ms']} | {s['mean_ms']} |")
    lines += ["", f"Ratios: {results['query_path']['ratios']}", f"Batch: {results['query_path']['batch all threads']}",
              f"Postings: {results['query_path']['postings']}", ""]
    if "doc_path" not in results:  # --only query
        return "\n".join(lines) + "\n"
    doc = results["doc_path"]
    lines += ["## Document path", "", f"- {doc['documents']} documents: forward alone {doc['forward_docs_per_s']} docs/s, "
              f"forward + LM head + top-K + quantize + JSON {doc['forward_plus_projection_docs_per_s']} docs/s; the "
              f"aligned-token step adds {doc['projection_share_of_forward']:.1%} to the forward (goal: at most 5%)", "",
              "Where the forward time goes (torch.profiler, self CPU share):", "", "| operator | share | calls |", "|---|---|---|"]
    lines += [f"| {r['op']} | {r['share']:.1%} | {r['calls']} |" for r in doc["profile"]]
    if "cpu_paths" in results:
        from studies.cpu_paths import report_lines

        lines += [""] + report_lines(results["cpu_paths"])
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


def cpu_paths(dataset, data: DataSettings, model: ModelSettings) -> dict:
    """The CPU paths section, always against the float32 model (whatever dtype the bench's runs use); on a --limit
    slice a taste of it (8 documents, a training batch of 2), on a full dataset 32 documents and a batch of 8."""
    from studies.cpu_paths import encode_efficiency, encode_paths, train_step_paths

    loaded = load_model(model.preset, "cpu", "float32")
    n, batch = (8, 2) if data.limit else (32, 8)
    texts = [d.contents for d in list(dataset.corpus.values())[:n]]
    return {"encode": encode_paths(model.preset, loaded, texts),
            "efficiency": encode_efficiency(model.preset, loaded, texts),
            "train_step": train_step_paths(model.preset, loaded, data.name, batch)}


def _cpu_paths_only(data: DataSettings, model: ModelSettings) -> int:
    from studies.cpu_paths import report_lines

    result = cpu_paths(data.load(), data, model)
    out = layout.bench_dir()
    write_json(out / f"{data.key}.cpu-paths.json", result)
    text = "\n".join(report_lines(result))
    write_text(out / f"{data.key}.cpu-paths.md", text)
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("studies.bench", __doc__, cli.dataset_options, cli.model_options)
    parser.add_argument("--only", choices=("all", "query", "cpu-paths"), default="all",
                        help="query: the query path alone (minutes); cpu-paths: the CPU forward/training paths alone "
                             "(no index needed); all (default): every section")
    args = parser.parse_args(argv)
    data, model = cli.data_settings(args), cli.model_settings(args)
    if args.only == "cpu-paths":
        return _cpu_paths_only(data, model)
    folder = Variant.build(model.preset, **with_default_source(model, {})).dir(data, model)  # what eval opens with
    if not (folder / "lucene").exists():
        raise InputError(f"no index at {folder}; run `make eval dataset={data.name}` first")
    info = read_json(folder / "manifest.json")
    dataset = data.load()
    loaded = load_model(model.preset, model.device, model.dtype)
    results = {"dataset": data.key, "model": model.name, "variant": folder.name,
               "queries": len(dataset.queries), "documents": len(dataset.corpus)}
    results["query_path"] = query_path(dataset, data, model, folder, info, loaded)
    if args.only == "all":
        results["doc_path"] = doc_path(dataset, model.preset, loaded, info)
        results["cpu_paths"] = cpu_paths(dataset, data, model)
        results["footprint"] = footprint(data, model)
        tokens = token_encoder(folder, info, "idf")
        results["scaling"] = indexing_and_scaling(data, model, folder, {q: tokens.encode(t) for q, t in dataset.queries.items()},
                                                  len(dataset.corpus))
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out = layout.bench_dir()
    stem = data.key if args.only == "all" else f"{data.key}.{args.only}"
    write_json(out / f"{stem}.json", results)
    text = report(results)
    write_text(out / f"{stem}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
