"""Results in the formats the community submits, each written with or checked by the tool that reads it.

  MTEB        one `TaskResult` JSON per dataset and system (mteb's own class builds and reloads it), under
              mteb/<model name>/<revision>/<TaskName>.json, as embeddings-benchmark/results lays results out
  2CR YAML    Pyserini's reproduction-conditions shape (`pyserini/2cr/beir.yaml`): a command template with
              ${dataset} and ${output}, and per dataset the nDCG@10 / R@100 / R@1000 it gives
  ir-metadata a PRIMAD YAML beside each TREC run, and annotated copies of the runs (metadata in `# ` lines before
              the run, written by repro_eval's MetadataHandler, the reference reader TIRA-style tooling uses)
"""
from __future__ import annotations

import json
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import yaml

from common import layout
from plumbing.artifacts import versions, write_text
from plumbing.runs import read_trec

# BEIR dataset -> MTEB task name (mteb.get_task resolves each; tests/test_beir.py checks them all).
MTEB_TASKS = {"scifact": "SciFact", "nfcorpus": "NFCorpus", "trec-covid": "TRECCOVID", "nq": "NQ",
              "hotpotqa": "HotpotQA", "fiqa": "FiQA2018", "arguana": "ArguAna", "webis-touche2020": "Touche2020",
              "quora": "QuoraRetrieval", "dbpedia-entity": "DBPedia", "scidocs": "SCIDOCS", "fever": "FEVER",
              "climate-fever": "ClimateFEVER", "msmarco": "MSMARCO",
              **{f"cqadupstack/{forum}": f"CQADupstack{forum.capitalize()}Retrieval" for forum in
                 ("android", "english", "gaming", "gis", "mathematica", "physics", "programmers", "stats", "tex",
                  "unix", "webmasters", "wordpress")}}
MTEB_CUTOFFS = (1, 3, 5, 10, 20, 100, 1000)
TWO_CR_METRICS = {"nDCG@10": "ndcg@10", "R@100": "recall@100", "R@1000": "recall@1000"}


@lru_cache(maxsize=1)
def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=layout.REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def mteb_scores(qrels: dict, run_path: Path) -> dict[str, float]:
    """MTEB's retrieval scores (ndcg/map/recall/precision/mrr at its cut-offs, main_score = nDCG@10), via ranx."""
    from ranx import Qrels, Run, evaluate

    names = {f"{family}_at_{k}": f"{ranx_name}@{k}" for k in MTEB_CUTOFFS
             for family, ranx_name in (("ndcg", "ndcg"), ("map", "map"), ("recall", "recall"),
                                       ("precision", "precision"), ("mrr", "mrr"))}
    values = evaluate(Qrels.from_dict(qrels), Run.from_dict(read_trec(run_path)), list(names.values()),
                      make_comparable=True)
    scores = {key: round(float(values[name]), 5) for key, name in names.items()}
    return {**scores, "main_score": scores["ndcg_at_10"]}


def write_mteb_result(folder: Path, system: str, dataset: str, split: str, scores: dict, seconds: float) -> Path | None:
    """One TaskResult JSON (built by mteb itself) for a system on a dataset; None where MTEB has no such task."""
    if dataset not in MTEB_TASKS:
        return None
    import mteb

    task = mteb.get_task(MTEB_TASKS[dataset])
    result = mteb.TaskResult.from_task_results(task, {split: {"default": scores}}, evaluation_time=seconds)
    path = folder / "mteb" / f"keytokens__{system}" / git_revision()[:12] / f"{task.metadata.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    result.to_disk(path)
    meta = {"name": f"keytokens/{system}", "revision": git_revision()[:12], "framework": ["keytokens"],
            "open_weights": True, "reference": "https://arxiv.org/abs/2406.17378", "languages": ["eng-Latn"]}
    write_text(path.parent / "model_meta.json", json.dumps(meta, indent=2) + "\n")
    return path


def two_cr_name(dataset: str) -> str:
    """Pyserini's dataset key: `cqadupstack/android` -> `cqadupstack-android`."""
    return dataset.replace("/", "-")


def write_two_cr(path: Path, model: str, results: dict[str, dict], extra_flags: str = "") -> dict:
    """A 2CR-style YAML of our runs: one condition per system, scores per dataset from each metrics.json."""
    conditions: dict[str, dict] = {}
    for dataset, metrics in results.items():
        for row in metrics["runs"]:
            condition = conditions.setdefault(row["name"], {
                "name": f"keytokens.{row['name']}",
                "command": (f"python -m pipeline.evaluate --dataset ${{dataset}} --model {model}{extra_flags} && "
                            f"cp runs/${{dataset}}/{row['name']}.trec $output"),
                "datasets": []})
            condition["datasets"].append({"dataset": two_cr_name(dataset), "scores": [
                {label: row["metrics"][name] for label, name in TWO_CR_METRICS.items()}]})
    document = {"conditions": list(conditions.values())}
    write_text(path, yaml.safe_dump(document, sort_keys=False, width=4096))
    return document


def ir_metadata(run_path: Path, dataset: str, split: str) -> dict:
    """The PRIMAD description of one run (ir-metadata 0.1: platform, research goal, implementation, method, actor,
    data), from the run's manifest."""
    info = json.loads(run_path.with_suffix(".json").read_text(encoding="utf-8"))
    method = {"name": info.get("name", run_path.stem), "kind": info.get("kind"), "model": info.get("model"),
              "variant": info.get("variant"), "query mode": info.get("query_mode"),
              "LLM forward per query": info.get("llm_forward_per_query")}
    return {
        "tag": run_path.stem,
        "actor": {"team": "keytokens"},
        "research goal": {"description": "aligned-token sparse retrieval from LLM embeddings (Nie et al., ACL 2025) "
                                         "against BM25, SPLADE and dense retrieval"},
        "platform": {"hardware": {"machine": platform.machine()}, "operating system": {"kernel": platform.release()},
                     "software": {"libraries": {"python": [f"{k}=={v}" for k, v in versions().items()]}}},
        "implementation": {"source": {"lang": ["python"], "commit": git_revision(),
                                      "command": info.get("command", "")}},
        "method": {"retrieval": [{k: v for k, v in method.items() if v is not None}]},
        "data": {"test collection": {"name": f"beir/{dataset}", "split": split}},
    }


def write_ir_metadata(run_path: Path, dataset: str, split: str, annotated_dir: Path) -> tuple[Path, Path]:
    """`<run>.ir_metadata.yml` beside the run, and an annotated copy of the run written by repro_eval."""
    from repro_eval.metadata import MetadataHandler

    beside = run_path.with_name(f"{run_path.stem}.ir_metadata.yml")
    write_text(beside, yaml.safe_dump(ir_metadata(run_path, dataset, split), sort_keys=False, width=4096))
    annotated = annotated_dir / f"{run_path.stem}.trec"
    annotated.parent.mkdir(parents=True, exist_ok=True)
    MetadataHandler(str(run_path), metadata_path=str(beside)).write_metadata(run_path=str(annotated))
    return beside, annotated
