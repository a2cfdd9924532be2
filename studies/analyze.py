"""make analyze: the paper's alignment and principal-component analysis for one decoder, as files and plots.

For the first N corpus texts, embedded twice: with the same LLM under mean pooling (where the paper says raw
backbones fail to align) and the preset's PromptEOL pooling; or, with `--versus BACKBONE`, by a trained embedder
(`make train`) and the backbone it was trained from, the paper's embedder-vs-backbone case:
  alignment.json   hit@10, local and global alignment, with and without normalisation, with PC1 off / removed /
                   shifted by the lambda that maximises local alignment
  texts.md/.csv    per text: its top-10 aligned terms, `*` marking those that occur in the text
  variation.png    per principal component, the mean coefficient difference between the two sources
  contribution.png logits of one text's top aligned tokens from the whole embedding, its PC1 part and the rest
  lambda.png       hit@10 and local alignment as e + lambda * u1 moves along PC1
  report.md        the numbers above in prose-ready tables
Outputs under runs/<dataset>/analysis/<model>[-vs-<backbone>]/. N defaults to 300 texts at 128 tokens (minutes on 2 cores).
"""
from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from common.errors import InputError
from encoders import pc1
from encoders.alignment_rates import measure
from encoders.embedder import Embedder
from encoders.models import load_model
from encoders.presets import Preset, resolve_preset
from encoders.vocab import Vocabulary
from plumbing import cli
from plumbing.artifacts import manifest, write_json, write_text
from plumbing.settings import DataSettings, ModelSettings

COMPONENTS = 20
EXAMPLE_DOC = "4983"  # scifact: cerebral white matter of newborns


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def component_variation(a: np.ndarray, b: np.ndarray, n: int = COMPONENTS) -> np.ndarray:
    """Mean coefficient difference (b - a) on the top-n principal directions of b (uncentred, as the paper)."""
    _, _, vt = np.linalg.svd(b.astype(np.float64), full_matrices=False)
    directions = vt[:n]
    return ((b - a) @ directions.T).mean(axis=0)


def pc1_contribution(embedding: np.ndarray, u1: np.ndarray, lm_head: torch.Tensor, top: int = 10):
    """Logits of the embedding's top tokens from the whole vector, its PC1 part and the rest."""
    e = torch.from_numpy(embedding)
    part = torch.from_numpy(float(embedding @ u1) * u1)
    whole = lm_head @ e
    ids = torch.topk(whole, top).indices
    return ids.numpy(), whole[ids].numpy(), (lm_head @ part)[ids].numpy(), (lm_head @ (e - part))[ids].numpy()


def analyze(data: DataSettings, model: ModelSettings, n: int, versus: str | None = None) -> Path:
    dataset = data.load()
    docs = list(dataset.corpus.values())[:n]
    texts = [d.contents for d in docs]
    base = resolve_preset(model.model, None, model.max_length or 128, model.batch_size)
    sources = embedding_sources(base, versus, model.batch_size)
    loaded = load_model(base, model.device, model.dtype)
    embedded = {name: Embedder(p, load_model(p, model.device, model.dtype)).encode(texts) for name, p in sources.items()}
    tokens = next(iter(embedded.values())).token_ids
    vocabs = {"normalized": Vocabulary(loaded.tokenizer, True), "raw": Vocabulary(loaded.tokenizer, False)}
    first, second = sources
    out = data.run_dir / "analysis" / (f"{base.name}-vs-{first}" if versus else base.name)
    results: dict = {"texts": len(texts), "model": base.name, "max_length": base.max_length, "alignment": {},
                     "lambda_sweep": {}, "compared": [first, second]}
    for name, batch in embedded.items():
        u1, coefficient = pc1.direction(batch.embeddings)
        sweep = {}
        for t in pc1.LAMBDA_GRID:
            adjusted = pc1.adjust(batch.embeddings, pc1.shift(u1, t * coefficient))
            sweep[float(t)] = measure(vocabs["normalized"], adjusted, loaded.lm_head, tokens)[0].as_dict()
        best = max(sweep, key=lambda t: (sweep[t]["local"], -abs(t)))
        results["lambda_sweep"][name] = {"mean_coefficient": coefficient, "grid": sweep, "best_multiple": best}
        variants = {"pc1=off": batch.embeddings,
                    "pc1=remove": pc1.adjust(batch.embeddings, pc1.removal(u1)),
                    f"pc1=auto (lambda={best:+.2f} x mean coef)": pc1.adjust(batch.embeddings, pc1.shift(u1, best * coefficient))}
        for label, matrix in variants.items():
            for vname, vocab in vocabs.items():
                metrics, own, ranked = measure(vocab, matrix, loaded.lm_head, tokens)
                results["alignment"][f"{name} {label} {vname}"] = metrics.as_dict()
                if label == "pc1=off" and vname == "normalized":
                    results.setdefault("examples", {})[name] = [
                        {"id": d.doc_id, "text": d.contents[:120], "top10": [f"{t}*" if t in o else t for t in r[:10]]}
                        for d, o, r in zip(docs, own, ranked)]
    results["variation"] = component_variation(embedded[first].embeddings, embedded[second].embeddings).tolist()
    _write_outputs(out, results, embedded[second].embeddings, docs, vocabs["normalized"], loaded.lm_head)
    return out


def embedding_sources(base: Preset, versus: str | None, batch_size: int | None) -> dict[str, Preset]:
    """The two embeddings compared, reference first: mean vs the preset's pooling, or backbone vs trained."""
    if versus:
        backbone = resolve_preset(versus, None, base.max_length, batch_size)
        if backbone.name == base.name:
            raise InputError(f"versus={versus}: compare the model with another one (its backbone), not itself")
        return {backbone.name: backbone, base.name: base}
    return {"mean": replace(base, pooling="mean", template="{text}"), base.pooling: base}


def _side_by_side(rows: list[tuple], per_source: int = 100) -> list[tuple]:
    """The markdown table's rows: each text under both sources, one after the other, for the first texts."""
    by_id: dict[str, list[tuple]] = {}
    for row in rows:
        by_id.setdefault(row[1], []).append(row)
    return [row for group in list(by_id.values())[:per_source] for row in group]


def _write_outputs(out: Path, results: dict, embeddings: np.ndarray, docs, vocab: Vocabulary, lm_head) -> None:
    write_json(out / "alignment.json", {**manifest("analyze"), **results})
    rows = [(name, e["id"], e["text"], " ".join(e["top10"])) for name, ex in results["examples"].items() for e in ex]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([("pooling", "id", "text", "top10 aligned (* = in text)"), *rows])
    write_text(out / "texts.csv", buffer.getvalue())
    write_text(out / "texts.md", "| pooling | id | text | top-10 aligned terms (* = occurs in the text) |\n|---|---|---|---|\n"
               + "\n".join(f"| {p} | {i} | {t.replace('|', ' ')} | {a.replace('|', ' ')} |" for p, i, t, a in _side_by_side(rows)) + "\n")
    plt = _plt()
    variation = np.abs(results["variation"])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(range(1, len(variation) + 1), variation, color=["tab:red"] + ["tab:blue"] * (len(variation) - 1))
    ax.set_xticks(range(1, len(variation) + 1))
    first, second = results["compared"]
    ax.set_xlabel(f"principal component (of the {second} embeddings)")
    ax.set_ylabel("|mean coefficient difference|")
    ax.set_title(f"{results['model']}: {second} vs {first}, per component (PC1 in red)")
    fig.tight_layout(), fig.savefig(out / "variation.png", dpi=110), plt.close(fig)

    index = next((i for i, d in enumerate(docs) if d.doc_id == EXAMPLE_DOC), 0)
    ids, whole, part, rest = pc1_contribution(embeddings[index], pc1.direction(embeddings)[0], lm_head)
    labels = [vocab.terms[int(i)] or vocab.tokenizer.convert_ids_to_tokens(int(i)) for i in ids]
    fig, ax = plt.subplots(figsize=(10, 4))
    x = np.arange(len(ids))
    for offset, values, label in ((-0.27, whole, "whole embedding"), (0, part, "PC1 part"), (0.27, rest, "rest")):
        ax.bar(x + offset, values, width=0.27, label=label)
    ax.set_xticks(x, labels, rotation=30)
    ax.set_ylabel("logit")
    ax.set_title(f"Top aligned tokens of doc {docs[index].doc_id}: where their logits come from")
    ax.legend(loc="lower right", framealpha=0.9)
    fig.tight_layout(), fig.savefig(out / "contribution.png", dpi=110), plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    for name, sweep in results["lambda_sweep"].items():
        grid = sorted(sweep["grid"])
        ax.plot(grid, [sweep["grid"][t]["hit@k"] for t in grid], marker="o", label=f"{name} hit@10")
        ax.plot(grid, [sweep["grid"][t]["local"] for t in grid], marker="s", linestyle="--", label=f"{name} local")
    ax.set_xlabel("lambda / (corpus mean's PC1 coefficient)   (e' = e + lambda u1)")
    ax.set_ylabel("alignment (normalised terms)")
    ax.set_title(f"{results['model']}: alignment along PC1")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout(), fig.savefig(out / "lambda.png", dpi=110), plt.close(fig)

    lines = [f"# Alignment analysis: {results['model']}, {results['texts']} texts at {results['max_length']} tokens", "",
             "| pooling / PC1 / terms | hit@10 | local | global |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['hit@k']:.3f} | {v['local']:.3f} | {v['global']:.3f} |" for k, v in results["alignment"].items()]
    lines += ["", "PC1 variation share: |PC1 difference| / sum over the first "
              f"{len(variation)} components = {variation[0] / variation.sum():.2f}", "",
              "Plots: variation.png, contribution.png, lambda.png; per-text table: texts.md / texts.csv"]
    write_text(out / "report.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"analysis: {out}")


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("studies.analyze", __doc__, cli.dataset_options, cli.model_options)
    parser.add_argument("--n", type=int, default=300, help="corpus texts to analyse (default 300)")
    parser.add_argument("--versus", default=None, metavar="BACKBONE",
                        help="compare with this model (a trained embedder's backbone) instead of mean pooling")
    args = parser.parse_args(argv)
    if args.n <= 0:
        raise InputError(f"n={args.n}: analyse at least one corpus text (default 300)")
    analyze(cli.data_settings(args), cli.model_settings(args), args.n, args.versus)
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
