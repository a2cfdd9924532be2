"""The model card of a trained model folder (`models/<name>/README.md`), in the Hugging Face model-card layout.

A folder someone else receives has to say what it is: the base model, the data and objective it was trained on,
its steps, the student `make distil` added, the full-collection results with the commands that made them, and the
limits. Everything here is read from the folder's own manifests and from the leaderboards `make eval` wrote for it
(full collections only: a `limit=` slice is no result to share); the card is rewritten after each of those stages.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from common import layout
from plumbing.artifacts import read_json, write_text

CARD = "README.md"
LICENSES = {"smollm2": "apache-2.0", "gemma3": "gemma"}  # the base models' own licences
BASE_IDS = {"smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct", "gemma3": "google/gemma-3-270m"}


def full_results(name: str) -> list[dict]:
    """The leaderboards of full collections (no `limit=`) evaluated with this model, any dtype."""
    from encoders.models import untagged

    found = []
    for path in sorted(layout.runs_root().glob("*/metrics.json")):
        metrics = read_json(path, "leaderboard metrics")
        if "-limit" not in path.parent.name and untagged(str(metrics.get("model", ""))) == name:
            found.append(metrics)
    return found


def _rows(metrics: dict) -> list[tuple[str, str, float]]:
    """(what, run, nDCG@10) of the runs a reader compares: the no-LLM index, BM25, the teacher, dense, SPLADE."""
    by_name = {r["name"]: r["metrics"]["ndcg@10"] for r in metrics["runs"]}
    wanted = [("the no-LLM index (queries are a lookup)", metrics.get("key_run")), ("BM25 (Lucene, k1=0.9 b=0.4)", "bm25"),
              ("teacher: word hybrid + dense (one LLM forward per query)", metrics.get("teacher_run")),
              ("dense (one LLM forward per query)", next((n for n in by_name if n.endswith(".dense")), None)),
              ("SPLADE-tiny", metrics.get("splade_run"))]
    return [(what, run, by_name[run]) for what, run in wanted if run in by_name]


def card_text(folder: Path) -> str:
    """The card of one trained model folder, from its manifests and its full-collection leaderboards."""
    info = read_json(folder / "manifest.json", "trained model manifest")
    settings = info["settings"]
    name, base, dataset = info["name"], info["base_model"], info["dataset"]
    student_files = sorted(folder.glob("student*/manifest.json"))
    results = full_results(name)
    front = {"base_model": BASE_IDS.get(base, info["base_source"]), "datasets": [f"BeIR/{dataset}"], "language": ["en"],
             "library_name": "transformers", "license": LICENSES.get(base, "other"), "pipeline_tag": "feature-extraction",
             "tags": ["keytokens", "sparse-retrieval", "learned-sparse", "aligned-tokens", "lucene", "beir"]}
    if results:
        front["model-index"] = [{"name": name, "results": [
            {"task": {"type": "retrieval"},
             "dataset": {"type": f"BeIR/{m['dataset']}", "name": m["dataset"], "split": m["split"]},
             "metrics": [{"type": "ndcg_at_10", "value": score, "name": what} for what, _, score in _rows(m)]}
            for m in results]}]
    body = [f"# {name}", "",
            f"An embedder fine-tuned by keytokens from `{base}` (`{info['base_source']}`). Its pooled embedding, "
            "multiplied by the backbone's LM head, ranks the vocabulary; the top words are the document's key words, "
            "and keytokens turns them into a Lucene impact index searched with no LLM at query time.", "",
            "## Training", "",
            f"- Base model: `{base}` ({BASE_IDS.get(base, info['base_source'])}), pooling "
            f"`{read_json(folder / 'model' / 'keytokens-preset.json', 'trained preset')['pooling']}`",
            f"- Data: {dataset}: " + ", ".join(f"{n} {source} pairs" for source, n in info["pairs"].items())
            + f"; {info['dev_queries_held_out']} train queries held out as the dev split",
            f"- Objective: `{settings['objective']}` (InfoNCE, temperature {settings['temperature']}), lr {settings['lr']}, "
            f"batch {settings['batch_size']}, {info['steps']} steps, document length {settings['doc_max_length']} tokens, "
            f"autocast {info.get('autocast', 'off (float32)')}, seed {settings['seed']}, {info['seconds']} s",
            f"- Command: `make train dataset={dataset} model={base}` (settings above are its defaults unless listed in "
            "`manifest.json`)"]
    for path in student_files:
        student = read_json(path, "student manifest")
        dev = student.get("dev_ndcg", {})
        body.append(f"- Student `{path.parent.name}/` (`make distil`: the distilled index's document and query word "
                    f"weights, trained on stored embeddings to reproduce the teacher over a candidate pool): "
                    f"{student['settings']['steps']} steps, step {student.get('kept_step')} kept on the dev curve; "
                    f"dev nDCG@10 student {dev.get('student')}, teacher {dev.get('teacher')}, BM25 "
                    f"{dev.get('bm25 (own words, idf)')}")
    body += ["", "## Use", "", "Copy this folder anywhere and name it as the model:", "", "```",
             f"make index dataset=scifact model=/path/to/{name}", f"make eval dataset=scifact model=/path/to/{name}",
             "```", "", f"or from Python: `keytokens.index(\"scifact\", model=\"/path/to/{name}\")`.", ""]
    body += ["## Results", ""]
    if not results:
        body.append(f"No full-collection evaluation yet: `make eval dataset={dataset} model={name}` writes it here.")
    for metrics in results:
        dtype = " dtype=bfloat16" if "-bf16" in metrics["model"] else ""
        body += [f"Full {metrics['dataset']} {metrics['split']} ({metrics['queries']} queries, {metrics['documents']} "
                 f"documents), nDCG@10, `make eval dataset={metrics['dataset']} model={name}{dtype}`:", "",
                 "| run | name | nDCG@10 |", "| --- | --- | --- |"]
        body += [f"| {what} | `{run}` | {score:.4f} |" for what, run, score in _rows(metrics)]
        body += [""] + [f"> {line}" for line in metrics.get("key_figure", [])[:2]] + [""]
    body += ["## Limits", "",
             f"- Trained on {dataset} only: on other collections it is used as trained there, nothing tuned on them; "
             "check it against BM25 on yours (`make eval data_dir=<BEIR folder>`).",
             f"- A {base} backbone from a quantised GGUF; English text; documents cut at "
             f"{settings['doc_max_length']} tokens in training.",
             "- Figures above are single runs; differences to BM25 come with paired t-tests in the leaderboard.", ""]
    return "---\n" + yaml.safe_dump(front, sort_keys=False, width=4096) + "---\n\n" + "\n".join(body)


def write_model_card(folder: Path) -> Path:
    """(Re)write `<folder>/README.md` for a trained model folder; returns its path."""
    path = folder / CARD
    write_text(path, card_text(folder))
    return path
