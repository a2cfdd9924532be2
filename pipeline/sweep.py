"""make sweep: nDCG@10 of aligned-token variants over K, weighting, normalisation, vocab, PC1, query weights and
query modes, from the stored embeddings (no re-encoding), on the train split (for choosing) and the test split
(for reporting). The variant that wins on train is the one to make the default of `make index`; test numbers are
reported beside it, never used to choose.

Outputs: runs/<dataset>/sweep.json, sweep.md and sweep.png (nDCG@10 vs K, one line per variant family, with
dense, BM25 and SPLADE as horizontal lines).
"""
from __future__ import annotations

import argparse
from copy import copy
from pathlib import Path

from pipeline.artifacts import write_json, write_text
from pipeline.datasets import add_dataset_args, dataset_from_args
from pipeline.encode import add_model_args
from pipeline.errors import InputError, cli_main, stage_parser
from pipeline.search import add_search_args, run_dir

KS = (16, 64, 256, 1024, 2048)
EXPANSION_KS = KS[:3]  # vocab=all writes K postings per document whatever its length: indexing cost grows with K
# family name -> (variant settings, query mode, query weight, Ks swept)
FAMILIES = {
    "log-norm-text-pc1remove tokens-idf": ({"weighting": "log", "normalize": "on", "vocab": "text", "pc1": "remove"}, "tokens", "idf", KS),
    "log-norm-all-pc1remove tokens-idf": ({"weighting": "log", "normalize": "on", "vocab": "all", "pc1": "remove"}, "tokens", "idf", EXPANSION_KS),
    "logit-raw-all-pc1off tokens-count (paper)": ({"weighting": "logit", "normalize": "off", "vocab": "all", "pc1": "off"}, "tokens", "count", EXPANSION_KS),
}
# single points at one K: one lever changed at a time from the first family
POINT_K = 256
POINTS = {
    "weighting=logit": ({"weighting": "logit", "normalize": "on", "vocab": "text", "pc1": "remove"}, "tokens", "idf"),
    "weighting=softmax": ({"weighting": "softmax", "normalize": "on", "vocab": "text", "pc1": "remove"}, "tokens", "idf"),
    "normalize=off": ({"weighting": "log", "normalize": "off", "vocab": "text", "pc1": "remove"}, "tokens", "idf"),
    "pc1=off": ({"weighting": "log", "normalize": "on", "vocab": "text", "pc1": "off"}, "tokens", "idf"),
    "qweight=count": ({"weighting": "log", "normalize": "on", "vocab": "text", "pc1": "remove"}, "tokens", "count"),
    "query=aligned": ({"weighting": "log", "normalize": "on", "vocab": "text", "pc1": "remove"}, "aligned", "idf"),
    "vocab=all query=aligned": ({"weighting": "log", "normalize": "on", "vocab": "all", "pc1": "remove"}, "aligned", "idf"),
    "hybrid pc1=remove": ({"source": "hybrid", "weighting": "bm25tf", "normalize": "on", "vocab": "text", "pc1": "remove"}, "tokens", "idf"),
    "hybrid pc1=off": ({"source": "hybrid", "weighting": "bm25tf", "normalize": "on", "vocab": "text", "pc1": "off"}, "tokens", "idf"),
    "pc1=auto": ({"weighting": "log", "normalize": "on", "vocab": "text", "pc1": "auto"}, "tokens", "idf"),
    "control own uniform (no LLM)": ({"source": "own", "weighting": "uniform", "normalize": "on", "vocab": "text", "pc1": "off"}, "tokens", "idf"),
    "control own bm25tf (no LLM)": ({"source": "own", "weighting": "bm25tf", "normalize": "on", "vocab": "text", "pc1": "off"}, "tokens", "idf"),
}


def _score(path: Path, qrels) -> float:
    from ranx import Qrels, Run, evaluate

    from pipeline.search import read_trec

    return round(float(evaluate(Qrels.from_dict(qrels), Run.from_dict(read_trec(path)), "ndcg@10",
                                make_comparable=True)), 4)


def sweep(args: argparse.Namespace) -> dict:
    from pipeline.evaluate import _variant_runs, produce_runs, splade_run

    splits = {}
    for split in ("train", "test"):
        split_args = copy(args)
        split_args.split, split_args.quick = split, True
        dataset = dataset_from_args(split_args)
        baselines = {p.stem: _score(p, dataset.qrels) for p in produce_runs(split_args, dataset)}
        baselines[f"{args.model_name}.dense"] = baselines.get(f"{args.model_name}.dense")
        splade = splade_run(split_args, dataset)
        rows = []
        grid = [(name, k, settings, query, qweight) for name, (settings, query, qweight, ks) in FAMILIES.items() for k in ks]
        grid += [(name, POINT_K, *spec) for name, spec in POINTS.items()]
        for name, k, settings, query, qweight in grid:
            settings = {"source": "aligned", "k": k, **settings}
            path = _variant_runs(split_args, dataset, settings, [(query, qweight)])[0]
            rows.append({"family": name, **settings, "query": query, "qweight": qweight,
                         "ndcg@10": _score(path, dataset.qrels), "run": path.stem})
        splits[split] = {"rows": rows, "bm25": baselines.get("bm25"), "dense": baselines[f"{args.model_name}.dense"],
                         "splade": _score(splade, dataset.qrels), "queries": len(dataset.queries)}
    best = max((r for r in splits["train"]["rows"] if r["source"] != "own"), key=lambda r: r["ndcg@10"])
    test_of_best = next(r for r in splits["test"]["rows"] if r["run"] == best["run"])
    return {"dataset": args.dataset, "model": args.model_name, "splits": splits,
            "chosen_on_train": {**best, "test_ndcg@10": test_of_best["ndcg@10"]}}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, split in zip(axes, ("train", "test")):
        data = results["splits"][split]
        for family in FAMILIES:
            rows = sorted((r for r in data["rows"] if r["family"] == family), key=lambda r: r["k"])
            ax.plot([r["k"] for r in rows], [r["ndcg@10"] for r in rows], marker="o", label=family)
        for name, style in (("dense", ":"), ("bm25", "--"), ("splade", "-.")):
            if data.get(name) is not None:
                ax.axhline(data[name], linestyle=style, color="grey", label=f"{name} {data[name]:.3f}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("K (aligned tokens per document)")
        ax.set_title(f"{results['dataset']} {split} ({data['queries']} queries), {results['model']}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("nDCG@10")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(results: dict) -> str:
    lines = [f"# Sweep: {results['dataset']}, {results['model']} (nDCG@10)", "",
             f"Chosen on train: `{results['chosen_on_train']['run']}` train {results['chosen_on_train']['ndcg@10']:.4f}, "
             f"test {results['chosen_on_train']['test_ndcg@10']:.4f}", ""]
    for split in ("train", "test"):
        data = results["splits"][split]
        lines += [f"## {split} ({data['queries']} queries): BM25 {data['bm25']}, dense {data['dense']}, SPLADE-tiny {data['splade']}",
                  "", "| family / lever | source | K | weighting | normalize | vocab | pc1 | query | qweight | nDCG@10 |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['family']} | {r['source']} | {r['k'] if r['source'] == 'aligned' else ''} | {r['weighting']} | {r['normalize']} | {r['vocab']} | {r['pc1']} | "
                  f"{r['query']} | {r['qweight']} | {r['ndcg@10']:.4f} |" for r in data["rows"]]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("pipeline.sweep", __doc__, add_dataset_args, add_model_args, add_search_args)
    parser.add_argument("--force", action="store_true", help="rerun searches even when run files exist")
    args = parser.parse_args(argv)
    from encoders.presets import resolve_preset

    args.model_name = resolve_preset(args.model, args.pooling, args.max_length, args.batch_size).name
    for key in ("source", "k", "weighting", "normalize", "vocab", "pc1"):
        setattr(args, key, None)
    if args.limit:
        raise InputError("sweep chooses on the train split, whose judged documents need the whole corpus: drop limit=")
    results = sweep(args)
    args.split = "test"
    folder = run_dir(args)
    write_json(folder / "sweep.json", results)
    text = table(results)
    write_text(folder / "sweep.md", text)
    plot(results, folder / "sweep.png")
    print(text)
    print(f"sweep: {folder / 'sweep.md'}, {folder / 'sweep.png'}")
    return 0


if __name__ == "__main__":
    cli_main(main)
