"""Stage 6, report: metrics.json (machine-readable) and leaderboard.md (our runs beside published references).

Published rows come from ../shared/ANCHORS.md (Anserini 1.7.1 regression configs and Nie et al. 2025) and are
labelled `published`, never as ours. The key figure is printed first: sparse/dense nDCG@10 per query mode, with
the paper's 0.80 beside it and whether the sparse run beats BM25 and the LLM-free control.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.artifacts import write_json, write_text

# dataset -> [(system, nDCG@10, note)]: published numbers, not runs of ours.
PUBLISHED: dict[str, list[tuple[str, float, str]]] = {
    "scifact": [("BM25 flat (Anserini)", 0.6789, "bm25"), ("BM25 multifield (Anserini)", 0.6647, "bm25"),
                ("SPLADE++ ED", 0.7041, "learned sparse"), ("SPLADE-v3", 0.7140, "learned sparse"),
                ("BGE-base-en-v1.5", 0.7408, "dense"), ("GritLM-7B dense (paper)", 0.792, "dense"),
                ("GritLM-7B aligned-token sparse (paper)", 0.703, "sparse"),
                ("LLM2Vec-Mistral dense (paper)", 0.789, "dense"),
                ("LLM2Vec-Mistral aligned-token sparse (paper)", 0.669, "sparse")],
    "nfcorpus": [("BM25 flat (Anserini)", 0.3218, "bm25"), ("SPLADE++ ED", 0.3470, "learned sparse"),
                 ("SPLADE-v3", 0.3629, "learned sparse"), ("BGE-base-en-v1.5", 0.3735, "dense")],
    "fiqa": [("BM25 flat (Anserini)", 0.2361, "bm25"), ("SPLADE++ ED", 0.3475, "learned sparse"),
             ("SPLADE-v3", 0.3798, "learned sparse"), ("BGE-base-en-v1.5", 0.4065, "dense")],
    "arguana": [("BM25 flat (Anserini)", 0.3970, "bm25"), ("SPLADE++ ED", 0.5203, "learned sparse"),
                ("SPLADE-v3", 0.4872, "learned sparse"), ("BGE-base-en-v1.5", 0.6361, "dense")],
    "scidocs": [("BM25 flat (Anserini)", 0.1490, "bm25"), ("SPLADE++ ED", 0.1591, "learned sparse"),
                ("SPLADE-v3", 0.1567, "learned sparse"), ("BGE-base-en-v1.5", 0.2170, "dense")],
    "trec-covid": [("BM25 flat (Anserini)", 0.5947, "bm25"), ("SPLADE++ ED", 0.7274, "learned sparse"),
                   ("SPLADE-v3", 0.7299, "learned sparse"), ("BGE-base-en-v1.5", 0.7814, "dense")],
}


def _footprint(row: dict) -> tuple[str, str]:
    """Index size on disk and terms per document, read from the run's index manifests when it has one."""
    index = row.get("index")
    if not index:
        return "", ""
    folder = Path(index).parent
    size, terms = "", ""
    for name in ("lucene.manifest.json", "manifest.json"):
        path = folder / name
        if path.exists():
            info = json.loads(path.read_text(encoding="utf-8"))
            if "lucene" in info and isinstance(info["lucene"], dict):
                size = f"{info['lucene']['bytes'] / 1e6:.1f} MB"
            if "counts" in info:
                terms = f"{info['counts'].get('avg_terms_per_document', '')}"
    return size, terms


def p_text(p: float | None) -> str:
    """A p-value as people read it: '<0.001' rather than 0, three significant digits otherwise."""
    if p is None:
        return ""
    if p != p:  # NaN: the two runs score every query the same
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def key_figure(results: dict) -> list[str]:
    rows = {r["name"]: r for r in results["runs"]}
    bm25 = rows.get("bm25", {}).get("metrics", {}).get("ndcg@10")
    control = rows.get(results.get("best_control") or "", {}).get("metrics", {}).get("ndcg@10")
    lines = []
    for pair, ratio in results["ratios"].items():
        sparse = rows[pair.split("/")[0]]
        ndcg = sparse["metrics"]["ndcg@10"]
        verdict = []
        if bm25 is not None:
            verdict.append(f"{'beats' if ndcg > bm25 else 'below'} BM25 {bm25:.4f}")
        if control is not None:
            p = sparse.get("p_vs_best_control")
            significant = "" if p is None else ("significant" if p < 0.05 else "not significant")
            verdict.append(f"{'above' if ndcg > control else 'below'} the LLM-free control {control:.4f}"
                           + (f" (paired t-test p{'' if p_text(p).startswith('<') else '='}{p_text(p)}, {significant} at 0.05)" if p is not None else ""))
        lines.append(f"sparse/dense nDCG@10 = {ratio:.3f} (paper: {results['paper_ratio']:.2f}) for "
                     f"{sparse['name']} [{sparse['query_mode']}], nDCG@10 {ndcg:.4f}; " + "; ".join(verdict))
    return lines


def leaderboard(results: dict) -> str:
    dataset = results["dataset"].split("-limit")[0]
    head = [f"# Leaderboard: {results['dataset']} ({results['split']}, {results['queries']} queries, "
            f"{results['documents']} documents)", ""]
    head += [f"- {line}" for line in key_figure(results)] + [""]
    table = ["| run | kind | nDCG@10 | R@100 | R@1000 | MRR@10 | p vs dense | LLM forward / query | index size | terms / doc "
             "| embedder training |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(results["runs"], key=lambda r: -r["metrics"]["ndcg@10"]):
        m = row["metrics"]
        size, terms = _footprint(row)
        llm = {True: "yes", False: "no"}.get(row.get("llm_forward_per_query"), "mixed" if row["kind"] == "fusion" else "")
        p = p_text(row.get("p_vs_dense"))
        table.append(f"| {row['name']} | {row['kind']} (ours) | {m['ndcg@10']:.4f} | {m['recall@100']:.4f} | "
                     f"{m['recall@1000']:.4f} | {m['mrr@10']:.4f} | {p} | {llm} | {size} | {terms} | {row.get('trained_on', '')} |")
    published = PUBLISHED.get(dataset, [])
    if published:
        table.append("")
        table.append("Published references (not run here; full test set; ../shared/ANCHORS.md):")
        table.append("")
        table.append("| system | kind | nDCG@10 |")
        table.append("|---|---|---|")
        table += [f"| {name} | {kind} (published) | {value:.4f} |" for name, value, kind in published]
    notes = [""] + [f"Note: {n}" for n in results.get("notes", [])]
    return "\n".join(head + table + notes) + "\n"


def write_reports(results: dict, folder: Path) -> None:
    write_json(folder / "metrics.json", results)
    text = leaderboard(results)
    write_text(folder / "leaderboard.md", text)
    print(text)
    print(f"metrics: {folder / 'metrics.json'}\nleaderboard: {folder / 'leaderboard.md'}")
