"""make sweep: nDCG@10 of aligned-token variants over K, weighting, normalisation, vocab, PC1, query weights and
query modes, from the stored embeddings (no re-encoding), on the train split (for choosing) and the test split
(for reporting). The variant that wins on train is the one to make the default of `make index`; test numbers are
reported beside it, never used to choose. Its levers are the sub-word variants' (terms=tokens: normalize, vocab and
the top-K weightings are choices over tokenizer tokens; the word default is compared in the leaderboard).

The PC1 curve answers the paper-inspired question "does the lambda that maximises local alignment also maximise
nDCG@10?": top-1024 aligned tokens with e + lambda * u1 for lambda on a grid (multiples of the corpus mean's PC1
coefficient, as pc1=auto searches it), nDCG@10 on both splits beside the local alignment rate pc1=auto maximises.

Outputs: runs/<dataset>/sweep.json, sweep.md, sweep.png (nDCG@10 vs K, one line per variant family, with dense,
BM25 and SPLADE as horizontal lines) and pc1_lambda.png (nDCG@10 and local alignment vs lambda).
"""
from __future__ import annotations

from pathlib import Path

from common.errors import InputError
from plumbing import cli
from plumbing.artifacts import write_json, write_text
from plumbing.runs import TOP_K_ALIGNED, score
from plumbing.settings import DataSettings, ModelSettings, SearchSettings, Variant

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


def sweep(data: DataSettings, model: ModelSettings, m: int, search: SearchSettings) -> dict:
    from steps.evaluate import produce_runs, splade_run, variant_runs
    from steps.needs import Needs

    splits = {}
    for split in ("train", "test"):
        split_data = data.with_split(split)
        dataset = split_data.load()
        needs = Needs(dataset, split_data, search.threads)
        baselines = {p.stem: score(dataset.qrels, p) for p in produce_runs(needs, model, {}, m, search, quick=True)}
        baselines[f"{model.name}.dense"] = baselines.get(f"{model.name}.dense")
        splade = splade_run(needs, model, {}, search)
        rows = []
        grid = [(name, k, settings, query, qweight) for name, (settings, query, qweight, ks) in FAMILIES.items() for k in ks]
        grid += [(name, POINT_K, *spec) for name, spec in POINTS.items()]
        for name, k, settings, query, qweight in grid:
            settings = {"source": "aligned", "k": k, "terms": "tokens", **settings}  # the sub-word levers
            variant = Variant.experiment(model.preset, settings)
            path = variant_runs(needs, model, variant, [(query, qweight)], m, search)[0]
            rows.append({"family": name, **settings, "query": query, "qweight": qweight,
                         "ndcg@10": score(dataset.qrels, path), "run": path.stem})
        splits[split] = {"rows": rows, "bm25": baselines.get("bm25"), "dense": baselines[f"{model.name}.dense"],
                         "splade": score(dataset.qrels, splade), "queries": len(dataset.queries)}
    results_pc1 = pc1_curve(data, model, m, search)
    best = max((r for r in splits["train"]["rows"] if r["source"] != "own"), key=lambda r: r["ndcg@10"])
    test_of_best = next(r for r in splits["test"]["rows"] if r["run"] == best["run"])
    return {"dataset": data.name, "model": model.name, "splits": splits,
            "chosen_on_train": {**best, "test_ndcg@10": test_of_best["ndcg@10"]}, "pc1_curve": results_pc1}


PC1_MULTIPLES = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5)  # x the corpus mean's PC1 coefficient; 0 is pc1=off


def pc1_curve(data: DataSettings, model: ModelSettings, m: int, search: SearchSettings) -> dict:
    """nDCG@10 (train and test) and local alignment of the top-1024 aligned tokens as e + lambda * u1 moves along PC1."""
    import numpy as np

    from encoders import pc1
    from encoders.documents import local_alignment_score
    from encoders.models import load_model
    from encoders.vocab import Vocabulary
    from plumbing.shards import load_shards
    from steps.evaluate import variant_runs
    from steps.needs import Needs

    _, embeddings, tokens = load_shards(model.embeddings_dir(data))
    loaded = load_model(model.preset, model.device, model.dtype)
    alignment = local_alignment_score(Vocabulary(loaded.tokenizer, True), loaded.lm_head, tokens)
    u1, coefficient = pc1.direction(embeddings)
    sample = np.arange(min(pc1.AUTO_SAMPLE, len(embeddings)))  # the documents pc1=auto scores alignment on
    splits = {split: Needs(data.with_split(split).load(), data.with_split(split), search.threads)
              for split in ("train", "test")}
    rows = []
    for multiple in PC1_MULTIPLES:
        lam = round(multiple * coefficient, 4)
        variant = Variant.experiment(model.preset, {**TOP_K_ALIGNED, "pc1": "off" if multiple == 0 else str(lam)})
        row = {"multiple": multiple, "lambda": lam,
               "local_alignment": round(alignment(pc1.adjust(embeddings[sample], pc1.shift(u1, lam)), sample), 4)}
        for split, needs in splits.items():
            path = variant_runs(needs, model, variant, [("tokens", "idf")], m, search)[0]
            row[f"{split}_ndcg@10"] = score(needs.dataset.qrels, path)
        rows.append(row)
    by_alignment = max(rows, key=lambda r: r["local_alignment"])
    by_train = max(rows, key=lambda r: r["train_ndcg@10"])
    return {"rows": rows, "mean_coefficient": coefficient, "best_by_local_alignment": by_alignment["multiple"],
            "best_by_train_ndcg@10": by_train["multiple"], "agree": by_alignment["multiple"] == by_train["multiple"]}


def plot_pc1(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["pc1_curve"]["rows"]
    x = [r["multiple"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(x, [r["train_ndcg@10"] for r in rows], "o-", label="nDCG@10 train")
    ax.plot(x, [r["test_ndcg@10"] for r in rows], "s-", label="nDCG@10 test")
    ax.set_xlabel("lambda / (corpus mean's PC1 coefficient)   (e' = e + lambda u1; 0 = pc1 off)")
    ax.set_ylabel("nDCG@10 (top-1024 aligned, query=tokens)")
    right = ax.twinx()
    right.plot(x, [r["local_alignment"] for r in rows], "^--", color="tab:green", label="local alignment (500 docs)")
    right.set_ylabel("local alignment rate")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="lower left")
    ax.set_title(f"{results['dataset']}, {results['model']}: does the alignment-best lambda also retrieve best?")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    curve = results["pc1_curve"]
    lines += ["## PC1 lambda curve (top-1024 aligned, query=tokens idf)", "",
              f"Lambda in multiples of the corpus mean's PC1 coefficient ({curve['mean_coefficient']:.3f}). Best by local "
              f"alignment: {curve['best_by_local_alignment']}; best by train nDCG@10: {curve['best_by_train_ndcg@10']} "
              f"({'they agree' if curve['agree'] else 'they disagree'}).", "",
              "| multiple | lambda | local alignment | train nDCG@10 | test nDCG@10 |", "|---|---|---|---|---|"]
    lines += [f"| {r['multiple']} | {r['lambda']} | {r['local_alignment']:.4f} | {r['train_ndcg@10']:.4f} | {r['test_ndcg@10']:.4f} |"
              for r in curve["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("studies.sweep", __doc__, cli.dataset_options, cli.model_options, cli.search_options)
    parser.add_argument("--force", action="store_true", help="rerun searches even when run files exist")
    args = parser.parse_args(argv)
    if args.limit:
        raise InputError("sweep chooses on the train split, whose judged documents need the whole corpus: drop limit=")
    data = cli.data_settings(args).with_split("test")
    results = sweep(data, cli.model_settings(args), args.m, cli.search_settings(args))
    folder = data.run_dir
    write_json(folder / "sweep.json", results)
    text = table(results)
    write_text(folder / "sweep.md", text)
    plot(results, folder / "sweep.png")
    plot_pc1(results, folder / "pc1_lambda.png")
    print(text)
    print(f"sweep: {folder / 'sweep.md'}, {folder / 'sweep.png'}, {folder / 'pc1_lambda.png'}")
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
