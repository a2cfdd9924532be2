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
from typing import TYPE_CHECKING

import yaml

from common import layout
from common.errors import InputError
from plumbing.artifacts import read_json, versions, write_text
from plumbing.runs import read_trec
from plumbing.settings import DataSettings, ModelSettings
from plumbing.shards import embedding_width

if TYPE_CHECKING:
    from mteb.models.model_meta import ModelMeta

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


@lru_cache
def _git(*args: str) -> str | None:
    """One git query about this checkout (its output), or None where git or the answer is missing."""
    try:
        return subprocess.run(["git", *args], cwd=layout.REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def git_revision() -> str:
    return _git("rev-parse", "HEAD") or "unknown"


def git_date() -> str | None:
    """The commit date of HEAD (YYYY-MM-DD): the release date of the code that made the numbers."""
    return _git("show", "-s", "--format=%cs", "HEAD")


def repository_url() -> str | None:
    """Where the code lives (git's `origin`), or None for a checkout without one."""
    return _git("remote", "get-url", "origin")


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


def mteb_model_meta(system: str, kind: str, model: ModelSettings, data: DataSettings) -> "ModelMeta":
    """mteb's own `ModelMeta` for one of our systems, validated by mteb as it is built (a field mteb refuses raises
    here, not in the results repository's CI). What we do not know is None, which mteb allows (parameters, memory)."""
    from mteb.models.model_meta import ModelMeta

    encoded = read_json(model.embeddings_dir(data) / "manifest.json")
    preset = encoded["preset"]
    trained = layout.trained_model_dir(model.model) / "manifest.json"
    training = read_json(trained) if trained.is_file() else None
    return ModelMeta(
        loader=None, name=f"keytokens/{system}", revision=git_revision()[:12], release_date=git_date(),
        languages=["eng-Latn"], n_parameters=None, memory_usage_mb=None, max_tokens=preset["max_length"],
        embed_dim=embedding_width(model.embeddings_dir(data)) if kind == "dense" else None, license="not specified", open_weights=True, public_training_code=repository_url(),
        public_training_data=(f"BEIR {training['dataset']} train split" if training else None),
        framework=["PyTorch", "Transformers"] + (["GGUF"] if preset["source"].endswith(".gguf") else []),
        reference="https://arxiv.org/abs/2406.17378", similarity_fn_name="cosine" if kind == "dense" else "dot",
        use_instructions=bool(preset.get("query_instruction")),
        training_datasets=({MTEB_TASKS[training["dataset"]]} if training and training["dataset"] in MTEB_TASKS else None),
        adapted_from=training["base_source"] if training else None, model_type=["dense" if kind == "dense" else "sparse"])


def write_mteb_result(folder: Path, system: str, dataset: str, split: str, scores: dict, seconds: float,
                      meta: "ModelMeta") -> Path | None:
    """One TaskResult JSON and its model_meta.json, both written by mteb's own `ResultCache` in the layout the
    results repository uses (results/<org>__<model>/<revision>/<Task>.json); None where MTEB has no such task."""
    if dataset not in MTEB_TASKS:
        return None
    import mteb
    from mteb.cache import ResultCache

    task = mteb.get_task(MTEB_TASKS[dataset])
    result = mteb.TaskResult.from_task_results(task, {split: {"default": scores}}, evaluation_time=seconds)
    cache = ResultCache(folder / "mteb")
    cache.save_to_cache(result, meta)
    return cache.get_task_result_path(task.metadata.name, meta)


def two_cr_name(dataset: str) -> str:
    """Pyserini's dataset key: `cqadupstack/android` -> `cqadupstack-android`."""
    return dataset.replace("/", "-")


def from_two_cr_name(key: str) -> str:
    """Our dataset name for Pyserini's key: `cqadupstack-android` -> `cqadupstack/android`; others are the same."""
    return key.replace("cqadupstack-", "cqadupstack/", 1) if key.startswith("cqadupstack-") else key


def two_cr_command(run: str, flags: list[str]) -> str:
    """The condition's command as Pyserini's 2CR runner fills it (`${dataset}` = its key, `${output}` = a run file):
    the dataset evaluated exactly as the suite evaluated it (same split, variant flags, slice), then the run copied."""
    import shlex

    tail = shlex.join(["--run", run, *flags]).replace("$", "$$")  # `$` is the template's own sign
    return f"python -m pipeline.reproduce --dataset ${{dataset}} --output ${{output}} {tail}"


def write_two_cr(path: Path, results: dict[str, dict], flags: list[str]) -> dict:
    """A 2CR-style YAML of our runs: one condition per system, scores per dataset from each metrics.json."""
    conditions: dict[str, dict] = {}
    for dataset, metrics in results.items():
        for row in metrics["runs"]:
            condition = conditions.setdefault(row["name"], {
                "name": f"keytokens.{row['name']}", "command": two_cr_command(row["name"], flags), "datasets": []})
            condition["datasets"].append({"dataset": two_cr_name(dataset), "scores": [
                {label: row["metrics"][name] for label, name in TWO_CR_METRICS.items()}]})
    document = {"conditions": list(conditions.values())}
    write_text(path, yaml.safe_dump(document, sort_keys=False, width=4096))
    return document


IR_METADATA_SCHEMA = "0.1"
BEIR_SOURCE = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
LUCENE_ENGLISH = {"tokenizer": "org.apache.lucene.analysis.standard.StandardTokenizer",
                  "stemmer": "org.apache.lucene.analysis.en.PorterStemFilter",
                  "stopwords": "org.apache.lucene.analysis.en.EnglishAnalyzer.ENGLISH_STOP_WORDS_SET"}
BM25 = {"name": "bm25", "method": "org.apache.lucene.search.similarities.BM25Similarity", "k1": 0.9, "b": 0.4}
TIES = "score descending, then the document id's UTF-8 bytes (Lucene's order, on every engine)"


def _read(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return None


def anserini_jars() -> list[str]:
    """The Anserini version Pyserini runs (its fat jar's name, e.g. anserini==1.7.1): Lucene and the analyzers."""
    import importlib.util

    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.origin:
        return []
    jars = sorted((Path(spec.origin).parent / "resources" / "jars").glob("anserini-*-fatjar.jar"))
    return [f"anserini=={jar.name[len('anserini-'):-len('-fatjar.jar')]}" for jar in jars]


@lru_cache(maxsize=1)
def platform_metadata() -> dict:
    """PRIMAD's platform: CPU, GPU where torch sees one, RAM, OS, libraries and the retrieval toolkits."""
    import os

    found = versions()
    hardware: dict = {"cpu": {"model": _read("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
                              "architecture": platform.machine(), "operation mode": platform.architecture()[0],
                              "number of cores": os.cpu_count()}}
    ram = _read("/proc/meminfo", "MemTotal")
    if ram:
        hardware["ram"] = f"{int(ram.split()[0]) / 2**20:.1f} GiB"
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            hardware["gpu"] = {"model": props.name, "number of gpus": torch.cuda.device_count(),
                               "memory": f"{props.total_memory / 2**30:.1f} GiB"}
    except ImportError:
        pass
    distribution = _read("/etc/os-release", "PRETTY_NAME=")
    toolkits = [f"keytokens@{git_revision()[:12]}"] + [f"{name}=={found[name]}" for name in ("pyserini", "faiss-cpu", "ranx")
                                                        if name in found]
    return {"hardware": hardware,
            "operating system": {"kernel": f"{platform.system()} {platform.release()}",
                                 **({"distribution": distribution} if distribution else {})},
            "software": {"libraries": {"python": [f"{k}=={v}" for k, v in found.items() if k != "python"],
                                       "java": anserini_jars()},
                         "retrieval toolkit": toolkits + anserini_jars()}}


def retrieval_metadata(info: dict) -> tuple[list[dict], dict | None]:
    """PRIMAD's method -> retrieval components of one run, and its indexing (analyzer) where it is Lucene's."""
    kind, name = info.get("kind"), info.get("name")
    if kind == "bm25":
        return [BM25], LUCENE_ENGLISH
    if kind == "dense":
        return [{"name": name or "dense", "method": "faiss.IndexFlatIP over the embedder's L2-normalised embeddings",
                 "model": info.get("model")}], None
    if kind == "fusion":
        fusion = dict(info.get("fusion") or {})
        if not fusion and name and name.startswith("fusion-"):  # written before fusions recorded their parts
            method, _, parts = name[len("fusion-"):].partition(".")
            fusion = {"method": method, "interpolates": parts.split("+")}
        parts = fusion.pop("interpolates", [])
        method = fusion.pop("method", None)
        return ([{"name": part} for part in parts]
                + [{"name": name, "method": {"rrf": "reciprocal rank fusion", "wsum": "weighted sum"}.get(method, method),
                    **({"weight": fusion.pop("weights")} if "weights" in fusion else {}), "params": fusion,
                    "interpolates": parts}]), None
    words = "words" in str(info.get("variant", ""))
    component = {"name": name, "method": "Lucene impact search: sum of query weight x quantised document weight",
                 "model": info.get("model"), "variant": info.get("variant"), "query mode": info.get("query_mode"),
                 "query weight": info.get("qweight"), "top-k aligned tokens": info.get("k"),
                 "LLM forward per query": info.get("llm_forward_per_query")}
    return [{k: v for k, v in component.items() if v is not None}], (LUCENE_ENGLISH if words else None)


def data_metadata(dataset: str, split: str, model: str | None, read_from: str | None = None) -> dict:
    """PRIMAD's data: the test collection (where it was read from, topics, qrels, ir_datasets id) and what the
    embedder trained on. `read_from` is the run manifest's `data_source` (a local BEIR folder or ir_datasets);
    the BEIR download is named as the collection's origin, not as the source, when a local folder was read."""
    from encoders.models import untagged
    from plumbing.datasets import ir_datasets_id

    archive = BEIR_SOURCE.format(name=dataset.split("/")[0])
    inside = f"{dataset}/"  # the zip's folder: scifact/, cqadupstack/android/
    folder = _local_folder(read_from)
    if folder is not None:
        collection = {"name": f"beir/{dataset}", "split": split, "source": f"local BEIR folder {folder}",
                      "origin": archive, "topics": str(folder / "queries.jsonl"),
                      "qrels": str(folder / "qrels" / f"{split}.tsv")}
    else:
        collection = {"name": f"beir/{dataset}", "split": split, "source": archive,
                      "topics": f"{archive}#{inside}queries.jsonl", "qrels": f"{archive}#{inside}qrels/{split}.tsv"}
    try:
        collection["ir_datasets"] = f"https://ir-datasets.com/beir#{ir_datasets_id(dataset, split)}"
    except InputError:  # a folder ir_datasets does not know: the field is left out
        pass
    out = {"test collection": collection}
    trained = layout.trained_model_dir(untagged(model)) / "manifest.json" if model else None
    if trained is not None and trained.is_file():
        info = json.loads(trained.read_text())
        out["training data"] = [{"name": f"beir/{info['dataset']} train split ({', '.join(info.get('data', []))})",
                                 "source": BEIR_SOURCE.format(name=info["dataset"])}]
    return out


def _local_folder(read_from: str | None) -> Path | None:
    """The BEIR folder a dataset was read from (its `source`: a folder path, or `ir_datasets:<id>`, with
    ` (limit=N)` for a slice); None for ir_datasets or an older run manifest without one."""
    if not read_from or read_from.startswith("ir_datasets:"):
        return None
    return Path(read_from.split(" (limit=")[0])


EVALUATION = {"measures": ["ndcg_cut_10", "recall_100", "recall_1000", "recip_rank (cut 10)"],
              "reported measures": ["ndcg_cut_10"], "significance test": [{"name": "paired t-test",
                                                                          "correction method": "none"}]}


def ir_metadata(run_path: Path, dataset: str, split: str) -> dict:
    """The PRIMAD description of one run (ir-metadata 0.1: platform, research goal, implementation, method, actor,
    data), from the run's manifest and this machine; a field we cannot know is left out, never guessed."""
    info = json.loads(run_path.with_suffix(".json").read_text(encoding="utf-8"))
    info.setdefault("name", run_path.stem)
    retrieval, indexing = retrieval_metadata(info)
    source = {"lang": ["python", "java"], "commit": git_revision()}
    if repository_url():
        source["repository"] = repository_url()
    return {
        "schema-version": IR_METADATA_SCHEMA,
        "run-version": "1.0",
        "tag": run_path.stem,
        "platform": platform_metadata(),
        "research goal": {"description": "aligned-token sparse retrieval from LLM embeddings (Nie et al., ACL 2025) "
                                         "against BM25, SPLADE and dense retrieval",
                          "publication": "https://arxiv.org/abs/2406.17378",
                          # every run of the leaderboard is judged against BM25 (repro_eval's filter_by_baseline)
                          "evaluation": {**EVALUATION, "baseline": ["bm25"]}},
        "implementation": {"executable": {"cmd": info.get("command", "")}, "source": source},
        "method": {"automatic": True, "score ties": TIES, **({"indexing": indexing} if indexing else {}),
                   "retrieval": retrieval},
        "actor": {"team": "keytokens"},
        "data": data_metadata(dataset, split, info.get("model"), info.get("data_source")),
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
