"""One measured job per process, so `make bench` can report each job's own peak memory (ru_maxrss is per process).

    python -m studies.bench_probe '{"job": "index", ...}'   -> prints one JSON line: the job's figures + peak_rss_mb
Jobs: `encode` (the first n corpus documents through the embedder), `index` (Lucene impact indexing of a
collection folder), `serve` (load an impact index and answer a file of encoded queries, one thread).
Called by studies/bench.py; a user never needs it directly.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from common.threads import claim_cores


def peak_rss_mb() -> float:
    """This process's own peak RSS: VmHWM, because Linux's ru_maxrss survives fork + exec, so a child started by
    a 6 GB parent would report the parent's 6 GB."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def encode_job(spec: dict) -> dict:
    import torch

    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import resolve_preset
    from plumbing.datasets import load_dataset

    claim_cores()
    dataset = load_dataset(spec["dataset"], "test", spec.get("data_dir"))
    texts = [d.contents for d in list(dataset.corpus.values())[: spec["n"]]]
    preset = resolve_preset(spec["model"])
    embedder = Embedder(preset, load_model(preset, spec.get("device", "auto")))
    embedder.encode(texts[:4])
    start = time.perf_counter()
    embedder.encode(texts)
    seconds = time.perf_counter() - start
    return {"documents": len(texts), "seconds": round(seconds, 2), "docs_per_second": round(len(texts) / seconds, 2)}


def index_job(spec: dict) -> dict:
    from engines.lucene import build_lucene

    stats = build_lucene(Path(spec["collection"]), Path(spec["out"]), impact=True, threads=spec["threads"])
    return {"documents": stats.get("documents"), "seconds": stats["seconds"], "docs_per_second": stats["docs_per_second"],
            "index_bytes": stats["bytes"]}


def serve_job(spec: dict) -> dict:
    from engines.retrieval import ImpactIndex

    queries = json.loads(Path(spec["queries"]).read_text(encoding="utf-8"))
    searcher = ImpactIndex(Path(spec["index"]))
    for query in queries[:10]:  # a warm JVM: JIT and index caches, as in every other timing
        searcher.search_one(query)
    start = time.perf_counter()
    for query in queries:
        searcher.search_one(query)
    seconds = time.perf_counter() - start
    return {"queries": len(queries), "seconds": round(seconds, 3), "queries_per_second": round(len(queries) / seconds, 1)}


JOBS = {"encode": encode_job, "index": index_job, "serve": serve_job}


def run_probe(spec: dict) -> dict:
    """Run one job in a fresh interpreter and return its figures (with its own peak RSS)."""
    done = subprocess.run([sys.executable, "-m", "studies.bench_probe", json.dumps(spec)], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"bench probe {spec['job']} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = JOBS[spec["job"]](spec)
    print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
