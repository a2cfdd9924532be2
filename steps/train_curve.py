"""The learning curve of `make train`: dev nDCG@10 (dense and aligned-token sparse) and the loss, per step.

The dev set is held-out *train* queries (never test) ranked over a small document pool (their judged documents
plus seeded random others), encoded at the training lengths so an evaluation costs about a minute on 2 cores.
Dense: FAISS cosine, as the dense run. Sparse: each document's top-1024 aligned tokens among its own terms
(log weights, normalised, no PC1: the TOP_K_ALIGNED family without the PC1 step), indexed by Lucene and searched
with idf-weighted query tokens, as the `query=tokens` run is: what the aligned tokens alone give, without BM25-tf.
Hybrid: the sub-word hybrid's weights (BM25-tf x (1 + scaled aligned logit) over tokens, no PC1), the same way;
with sparse_target=expansion also the word expansion and the word control (BM25 in impact form).
"""
from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encoders.documents import aligned_vectors, expansion_word_vectors, hybrid_vectors, own_word_vectors
from encoders.queries import TokenQueryEncoder
from encoders.vocab import Vocabulary
from encoders.words import WordVocabulary
from engines.lucene import build_lucene
from engines.retrieval import DenseIndex, impact_search
from plumbing.artifacts import read_json
from plumbing.collection import write_collection
from plumbing.datasets import Dataset
from plumbing.runs import TOP_K_ALIGNED, score


@dataclass
class DevSet:
    queries: dict[str, str]
    doc_ids: list[str]
    docs: list[str]
    qrels: dict[str, dict[str, int]]

    @classmethod
    def build(cls, train: Dataset, query_ids: list[str], n_docs: int, seed: int) -> "DevSet":
        judged = sorted({d for q in query_ids for d in train.qrels[q]})
        others = sorted(set(train.corpus) - set(judged))
        rng = np.random.default_rng(seed)
        extra = rng.choice(others, size=max(0, min(len(others), n_docs - len(judged))), replace=False).tolist()
        doc_ids = judged + sorted(extra)
        return cls({q: train.queries[q] for q in query_ids}, doc_ids, [train.corpus[d].contents for d in doc_ids],
                   {q: train.qrels[q] for q in query_ids})


def _sparse_run(vocab: Vocabulary, vectors: list[dict[str, int]], doc_ids: list[str],
                queries: dict[str, str]) -> dict[str, list[tuple[str, float]]]:
    """The pipeline's own path on the dev pool: JsonVectorCollection -> Lucene impact index -> impact search."""
    with tempfile.TemporaryDirectory(prefix="kt-dev-") as tmp:
        work = Path(tmp)
        (work / "collection").mkdir()
        write_collection(work / "collection", doc_ids, vectors)
        build_lucene(work / "collection", work / "lucene", impact=True)
        df = read_json(work / "lucene" / "df.json")
        encoder = TokenQueryEncoder(vocab, "idf", df["df"], df["documents"])
        return impact_search(work / "lucene", {q: encoder.encode(t) for q, t in queries.items()}, k=10)


def dev_ndcg(trainer, dev: DevSet) -> dict[str, float]:
    """Dense and sparse nDCG@10 of the model as it is now (eval mode for the measurement, train mode after)."""
    trainer.model.eval()
    try:
        embedder = trainer.embedder
        docs = embedder.encode(dev.docs)
        queries = embedder.encode(list(dev.queries.values()), is_query=True)
        qids = list(dev.queries)
        dense = DenseIndex(dev.doc_ids, docs.embeddings).search(queries.embeddings, qids, k=10)
        vocab = Vocabulary(embedder.tokenizer, normalize=True)
        vectors, _ = aligned_vectors(vocab, docs.embeddings, embedder.loaded.lm_head, docs.token_ids,
                                     k=TOP_K_ALIGNED["k"], weighting=TOP_K_ALIGNED["weighting"], within_text=True)
        sparse = _sparse_run(vocab, vectors, dev.doc_ids, dev.queries)
        hybrid, _ = hybrid_vectors(vocab, docs.embeddings, embedder.loaded.lm_head, docs.token_ids)
        out = {"dense_ndcg@10": score(dev.qrels, dense), "sparse_ndcg@10": score(dev.qrels, sparse),
               "hybrid_ndcg@10": score(dev.qrels, _sparse_run(vocab, hybrid, dev.doc_ids, dev.queries))}
        target = getattr(trainer, "sparse", None)
        if target is not None and hasattr(target, "head"):  # sparse_target=expansion: the index it trains, on words
            counts = [Counter(target.analyzer.terms(text)) for text in dev.docs]
            vectors, _ = expansion_word_vectors(counts, target.head, docs.embeddings, embedder.loaded.lm_head, target.k)
            words = WordVocabulary(embedder.tokenizer, target.analyzer)
            out["expansion_ndcg@10"] = score(dev.qrels, _sparse_run(words, vectors, dev.doc_ids, dev.queries))
            control, _ = own_word_vectors(counts, "bm25tf")  # BM25 in impact form: the bar the expansion must clear
            out["words_control_ndcg@10"] = score(dev.qrels, _sparse_run(words, control, dev.doc_ids, dev.queries))
        return out
    finally:
        trainer.model.train()


def plot_training(state: dict, path: Path, name: str) -> None:
    """Loss per step (with a 10-step mean) and dev nDCG@10 against steps, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = np.array(state["losses"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.arange(1, len(losses) + 1)
    left.plot(steps, losses, color="0.7", label="loss per step")
    window = min(10, len(losses))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    left.plot(steps[window - 1:], smooth, color="C0", label=f"{window}-step mean")
    parts = state.get("loss_parts") or []
    if any("sparse" in p for p in parts):
        offset = len(losses) - len(parts)  # a model resumed from a checkpoint older than the parts has fewer
        for part, colour in (("dense", "C2"), ("sparse", "C3")):
            left.plot(steps[offset:], [p.get(part, np.nan) for p in parts], color=colour, alpha=0.6, label=f"{part} part")
    left.set(title=f"{name}: InfoNCE training loss", xlabel="step", ylabel="loss")
    left.legend()
    curve = state["curve"]
    if curve:
        at = [c["step"] for c in curve]
        right.plot(at, [c["dense_ndcg@10"] for c in curve], "o-", label="dense (cosine)")
        right.plot(at, [c["sparse_ndcg@10"] for c in curve], "s-", label="sparse (top-1024 aligned, idf query)")
        if all("hybrid_ndcg@10" in c for c in curve):
            right.plot(at, [c["hybrid_ndcg@10"] for c in curve], "^-", label="sub-word hybrid (no LLM)")
        if all("expansion_ndcg@10" in c for c in curve):
            right.plot(at, [c["expansion_ndcg@10"] for c in curve], "v-", label="word expansion (trained index)")
            right.plot(at, [c["words_control_ndcg@10"] for c in curve], "k--", label="word control (BM25, no LLM)")
        right.legend()
    right.set(title="dev nDCG@10 (held-out train queries)", xlabel="step", ylabel="nDCG@10")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
