"""The benchmark harness produces a well-formed report on a tiny slice (no timing is asserted)."""
from __future__ import annotations

import json

from tests.conftest import SLICE


def test_bench_report_is_well_formed(evaluated, isolated_outputs):
    from studies.bench import main

    main(["--dataset", "scifact", "--limit", str(SLICE), "--device", "cpu"])
    data = json.loads((isolated_outputs / "runs" / "bench" / f"scifact-limit{SLICE}.json").read_text())
    query = data["query_path"]
    for system in ("a sparse tokens", "b sparse aligned", "c dense", "d bm25", "e splade", "f sparse sub-words"):
        for part in query[system].values():
            assert part["p50_ms"] > 0 and part["mean_ms"] > 0, system
    assert set(query["ratios"]) == {"dense / sparse tokens (mean end-to-end)", "dense / sparse aligned", "sparse tokens / bm25",
                                    "dense / sparse tokens (p50 end-to-end)"} | {
        f"sparse {terms} / bm25 (p50 k={k})" for terms in ("tokens", "sub-words") for k in (1000, 10)}
    # the default indexes words: fewer than the sub-word hybrid's terms per query and per document, and exactly
    # BM25's distinct words per document (the hybrid reweights a document's own words, adds none)
    postings = query["postings"]
    assert postings["default (words) terms per query"] < postings["sub-word hybrid terms per query"]
    assert postings["default (words) terms per document"] < postings["sub-word hybrid terms per document"]
    assert postings["default (words) terms per document"] == postings["bm25 distinct words per document"]
    for system in ("a sparse tokens", "d bm25"):  # the lean path at both depths, its time split into Java and Python
        for k in (10, 1000):
            parts = query[system]
            assert {f"search k={k}", f"  of it in Java (k={k})", f"  of it in Python (k={k})"} <= set(parts)
            assert parts[f"  of it in Java (k={k})"]["mean_ms"] <= parts[f"search k={k}"]["mean_ms"]
    assert data["doc_path"]["forward_docs_per_s"] > 0
    assert [(s["fraction"], s["documents"]) for s in data["scaling"]["scaling"]] == [(0.1, 5), (0.3, 15), (1.0, 50)]
    assert all(s["index_peak_rss_mb"] > 0 and s["serve_peak_rss_mb"] > 0 for s in data["scaling"]["scaling"])
    assert [(e["fraction"], e["documents"]) for e in data["scaling"]["encode"]][:3] == [(0.01, 1), (0.02, 1), (0.05, 2)]
    assert data["scaling"]["scaling"][0]["index_bytes"] < data["scaling"]["scaling"][2]["index_bytes"]
    assert data["doc_path"]["profile"] and {"op", "share", "calls"} <= set(data["doc_path"]["profile"][0])
    assert data["footprint"]["faiss flat float32"]["bytes"] == 50 * 576 * 4
    paths = data["cpu_paths"]["encode"]["paths"]
    assert set(paths) == {"float32", "bfloat16", "int8 dynamic", "float32, 1 thread"}
    # bf16 weights change the embeddings a little, never a lot; one thread changes only the summation order
    assert 0.9 < paths["bfloat16"]["cosine_min"] < 0.99999 and paths["float32, 1 thread"]["cosine_min"] > 0.9999
    assert all(p["docs_per_second"] > 0 and -1 <= p["cosine_min"] <= 1 for p in paths.values())
    efficiency = data["cpu_paths"]["efficiency"]
    # the profiler's matmul FLOPs hold every linear layer over every real token (2 FLOPs per weight and token), and
    # at most the padding and attention's products on top; each path's wall time is split without a gap
    useful = 2 * efficiency["linear_parameters"] * efficiency["tokens"] / 1e12
    assert {"float32"} <= set(efficiency["paths"])
    for p in efficiency["paths"].values():
        assert useful * 0.99 <= p["matmul_tflop"] <= useful * 3, (useful, p)
        assert 0 < p["share_of_matmul_rate"] and p["matmul_rate_tflops"] > 0
        assert 0.95 <= sum(p["share_of_wall"].values()) <= 1.5, p["share_of_wall"]
    step = data["cpu_paths"]["train_step"]
    assert set(step["seconds_per_step"]) == {"float32", "bfloat16 autocast", "float32, beside a busy process",
                                             "bfloat16 autocast, beside a busy process"}
    assert all(v > 0 for v in step["busy_slowdown"].values()) and step["threads"] >= 1
    assert "smollm2/hybrid-bm25tf-words-pc1remove" in data["footprint"] and data["peak_rss_mb"] > 0
    text = (isolated_outputs / "runs" / "bench" / f"scifact-limit{SLICE}.md").read_text()
    assert text.startswith("# Bench:") and "## Query path" in text and "## Scaling" in text and "1M documents" in text
    assert "## CPU paths" in text and "| int8 dynamic |" in text and "Where an encode's time goes" in text
