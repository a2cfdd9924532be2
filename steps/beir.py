"""The BEIR suite: every dataset evaluated as one, the cross-dataset table, the exports shared leaderboards take.

The functions behind `python -m pipeline.beir` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import layout
from common.errors import InputError
from plumbing import exports
from plumbing.artifacts import manifest, read_json, write_json, write_text
from plumbing.datasets import evaluation_split
from plumbing.published import pyserini_version, two_cr_scores
from plumbing.settings import DataSettings, ModelSettings, SearchSettings, Variant
from steps.evaluate import default_sparse_run, evaluate

BEIR_13 = ("trec-covid", "nfcorpus", "nq", "hotpotqa", "fiqa", "arguana", "webis-touche2020", "quora",
           "dbpedia-entity", "scidocs", "fever", "climate-fever", "scifact")
CQADUPSTACK = tuple(f"cqadupstack/{forum}" for forum in (
    "android", "english", "gaming", "gis", "mathematica", "physics", "programmers", "stats", "tex", "unix",
    "webmasters", "wordpress"))
LICENCE_GATED = ("bioasq", "signal1m", "trec-news", "robust04")


def expand(spec: str) -> list[str]:
    """`all`, `cqadupstack` and dataset names, comma-separated, in order, each once."""
    names: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        names += list(BEIR_13) if item == "all" else list(CQADUPSTACK) if item == "cqadupstack" else [item] if item else []
    if not names:
        raise InputError(f"datasets={spec!r}: name datasets (e.g. scifact,nfcorpus), all, or cqadupstack")
    return list(dict.fromkeys(names))


def column_of(dataset: str) -> str:
    return "cqadupstack" if dataset.startswith("cqadupstack/") else dataset


def suite_dir(model: ModelSettings, limit: int | None = None) -> Path:
    """runs/beir/<model>/, or runs/beir/<model>-limitN/ for sliced suites (never mixed with full ones)."""
    return layout.runs_root() / "beir" / (f"{model.name}-limit{limit}" if limit else model.name)


def run_suite(names: list[str], model: ModelSettings, levers: dict, m: int, search: SearchSettings,
              quick: bool = False, no_train: bool = False, beir_dir: str | None = None,
              limit: int | None = None) -> dict[str, dict]:
    """Each dataset through evaluate (or reused), its MTEB exports written; failures reported, never fatal."""
    status: dict[str, dict] = {}
    out = suite_dir(model, limit) / "exports"
    main_systems = [f"{model.name}.dense", default_sparse_run(model, Variant.build(model.preset, **levers))]
    for number, name in enumerate(names, start=1):
        data = DataSettings(name, evaluation_split(name), limit=limit, beir_dir=beir_dir)
        model = replace(model, task=name)  # each dataset's own task instruction (encoders/instructions.py)
        done = data.run_dir / "metrics.json"
        print(f"[{number}/{len(names)}] {name} ({data.split})", flush=True)
        if done.exists() and not search.force and read_json(done).get("model") == model.name:
            status[name] = {"status": "reused", "metrics": str(done)}
            try:  # the exports are written for reused datasets too, so the suite's exports are always complete
                write_exports(out, main_systems, name, data, model, data.load(), 0.0)
            except InputError as exc:
                print(f"  exports of {name} skipped: {exc}", flush=True)
            continue
        started = time.time()
        try:
            results, dataset = evaluate(data, model, levers, m, search, quick=quick, no_train=no_train)
            write_exports(out, main_systems, name, data, model, dataset, time.time() - started)
        except Exception as exc:  # noqa: BLE001 - one dataset's failure is reported and the suite goes on
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"  failed: {name}: {message}", flush=True)
            status[name] = {"status": "failed", "error": f"{type(exc).__name__}: {message}"}
            continue
        status[name] = {"status": "done", "metrics": str(done), "seconds": round(time.time() - started, 1)}
    return status


def write_exports(out: Path, systems: list[str], name: str, data: DataSettings, model: ModelSettings, dataset,
                  seconds: float) -> None:
    """MTEB TaskResult files (and mteb's model_meta.json) of the main systems' runs on one dataset."""
    for system in systems:
        run = data.run_dir / f"{system}.trec"
        if run.exists():
            kind = read_json(run.with_suffix(".json")).get("kind", "sparse")
            meta = exports.mteb_model_meta(system, kind, model, data)
            exports.write_mteb_result(out, system, name, data.split, exports.mteb_scores(dataset.qrels, run), seconds,
                                      meta)


def published_rows(columns: list[str]) -> dict[str, dict[str, float]]:
    """nDCG@10 of Pyserini's BEIR reproduction conditions, read from the 2CR file pyserini installs."""
    rows: dict[str, dict[str, float]] = {}
    for condition, by_dataset in two_cr_scores().items():
        row = {}
        for column in columns:
            if column == "cqadupstack":
                forums = [by_dataset.get(exports.two_cr_name(f), {}).get("nDCG@10") for f in CQADUPSTACK]
                if all(v is not None for v in forums):
                    row[column] = round(float(np.mean(forums)), 4)
            elif column in by_dataset:
                row[column] = by_dataset[column]["nDCG@10"]
        rows[f"{condition} (published, Pyserini {pyserini_version()} 2CR)"] = row
    return rows


def cross_table(results: dict[str, dict]) -> dict:
    """Rows = systems, columns = datasets (CQADupStack forums averaged), and the mean over common datasets."""
    forums_run = sum(d.startswith("cqadupstack/") for d in results)
    partial = f"cqadupstack ({forums_run}/{len(CQADUPSTACK)} forums, partial)"

    def column(dataset: str) -> str:
        """CQADupStack is one column only as the mean of all 12 forums (as papers and Pyserini report it)."""
        name = column_of(dataset)
        return partial if name == "cqadupstack" and forums_run < len(CQADUPSTACK) else name

    columns = list(dict.fromkeys(column(d) for d in results))
    cells: dict[str, dict[str, list[float]]] = {}
    ratios: dict[str, dict[str, float]] = {}
    for dataset, metrics in results.items():
        for row in metrics["runs"]:
            cells.setdefault(row["name"], {}).setdefault(column(dataset), []).append(row["metrics"]["ndcg@10"])
        for pair, ratio in metrics.get("ratios", {}).items():
            ratios.setdefault(pair, {}).setdefault(column(dataset), []).append(ratio)
    forums = {c: sum(column(d) == c for d in results) for c in columns}
    rows = {name: {c: round(float(np.mean(v)), 4) for c, v in by_column.items()
                   if not c.startswith("cqadupstack") or len(v) == forums[c]} for name, by_column in cells.items()}
    kinds = {row["name"]: row["kind"] for metrics in results.values() for row in metrics["runs"]}
    rows.update(published_rows(columns))
    common = [c for c in columns if c != partial and all(c in row for row in rows.values())]
    for row in rows.values():
        row["mean"] = round(float(np.mean([row[c] for c in common])), 4) if common else None
    ratio_rows = {pair: {c: round(float(np.mean(v)), 3) for c, v in by_column.items()} for pair, by_column in ratios.items()}
    for row in ratio_rows.values():
        values = [row[c] for c in columns if c in row]
        row["mean"] = round(float(np.mean(values)), 3) if values else None
    return {"columns": columns, "mean_over": common, "rows": rows, "kinds": kinds, "ratios": ratio_rows}


def table_markdown(table: dict, status: dict[str, dict], model: str) -> str:
    columns = table["columns"]
    lines = [f"# BEIR suite: {model} (nDCG@10)", "",
             f"Mean over the datasets every row has: {', '.join(table['mean_over']) or 'none'}.", "",
             "| system | " + " | ".join(columns) + " | mean |", "|---" * (len(columns) + 2) + "|"]
    ordered = sorted(table["rows"].items(), key=lambda kv: -(kv[1].get("mean") or 0))
    for name, row in ordered:
        cells = " | ".join(f"{row[c]:.4f}" if c in row else "" for c in columns)
        lines.append(f"| {name} | {cells} | {'' if row.get('mean') is None else format(row['mean'], '.4f')} |")
    lines += ["", "## Sparse/dense nDCG@10 (paper: about 0.80)", "", "| runs | " + " | ".join(columns) + " | mean |",
              "|---" * (len(columns) + 2) + "|"]
    for pair, row in table["ratios"].items():
        cells = " | ".join(f"{row[c]:.3f}" if c in row else "" for c in columns)
        lines.append(f"| {pair} | {cells} | {'' if row.get('mean') is None else format(row['mean'], '.3f')} |")
    failed = {n: s for n, s in status.items() if s["status"] == "failed"}
    if failed:
        lines += ["", "## Not evaluated", ""] + [f"- {n}: {s['error']}" for n, s in failed.items()]
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path, systems: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = table["columns"]
    shown = [s for s in systems if s in table["rows"]]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(columns) * max(1, len(shown)) / 3), 4.5))
    width = 0.8 / max(1, len(shown))
    for i, system in enumerate(shown):
        values = [table["rows"][system].get(c, np.nan) for c in columns]
        ax.bar(np.arange(len(columns)) + i * width, values, width=width, label=system)
    ax.set_xticks(np.arange(len(columns)) + 0.4 - width / 2, columns, rotation=30)
    ax.set_ylabel("nDCG@10")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_suite(names: list[str], status: dict[str, dict], model: ModelSettings, levers: dict,
                limit: int | None = None, flags: list[str] | None = None) -> Path:
    """The cross-dataset report and the exports that need only run files and metrics."""
    results = {n: read_json(Path(s["metrics"])) for n, s in status.items() if s["status"] != "failed"}
    folder = suite_dir(model, limit)
    table = cross_table(results)
    write_json(folder / "suite.json", manifest("beir", model=model.name, datasets=names, status=status, table=table))
    text = table_markdown(table, status, model.name)
    write_text(folder / "suite.md", text)
    sparse = default_sparse_run(model, Variant.build(model.preset, **levers))
    plot(table, folder / "suite.png", ["bm25", f"{model.name}.dense", sparse, "splade-tiny.splade-raw",
                                       next((r for r in table["rows"] if r.startswith("splade-pp-ed")), "")])
    exports.write_two_cr(folder / "exports" / "2cr.yaml", results, flags or ["--model", model.model])
    for dataset, metrics in results.items():
        data = DataSettings(dataset, evaluation_split(dataset), limit=limit)
        for row in metrics["runs"]:
            run = data.run_dir / f"{row['name']}.trec"
            if run.exists() and run.with_suffix(".json").exists():
                exports.write_ir_metadata(run, dataset, data.split, folder / "exports" / "trec" / dataset)
    print(text)
    print(f"suite: {folder / 'suite.md'}, {folder / 'suite.png'}, exports in {folder / 'exports'}")
    return folder


NOT_REPRODUCED = {"--datasets": 1, "--beir-dir": 1, "--force": 0}  # option -> how many values follow it


def reproduction_flags(argv: list[str], model: ModelSettings) -> list[str]:
    """The suite's own flags that decide a dataset's numbers (model, variant, slice, quick, engine), for the 2CR
    commands: which datasets, where they live and `--force` do not change a number, so they are left out."""
    kept, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in NOT_REPRODUCED:
            skip = 0 if "=" in arg else NOT_REPRODUCED[name]
            continue
        kept.append(arg)
    if not any(a == "--model" or a.startswith("--model=") for a in kept):
        kept = ["--model", model.model, *kept]
    return kept
