"""Document term vectors: what each variant puts in a document's impact vector, as pure functions.

  own      the LLM-free control: the document's own terms, uniform or BM25-tf weighted
  hybrid   own terms, BM25-tf x (1 + a), a in [0, 1] the term's aligned logit min-max scaled within the document
  aligned  the top-K aligned tokens (optionally only among the document's own terms), log/logit/softmax weighted
All return integer vectors (quantized with one scale per collection) and that scale, which queries reuse.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from tqdm import tqdm

from common.errors import InputError
from encoders.aligned import candidate_logits, global_scale, quantize, top_k
from encoders.vocab import Vocabulary

BM25_K1, BM25_B = 0.9, 0.4  # Anserini's BEIR "flat" settings: the BM25 run and the control's tf saturation
PROJECT_BATCH = 256  # documents per LM-head batch: [256, vocab] logits at a time, never the whole corpus


def bm25_tf(counts: Counter, avg_len: float) -> dict[str, float]:
    """BM25's saturated term frequency (k1=0.9, b=0.4) of a document's own terms: the LLM-free control."""
    length = sum(counts.values())
    norm = BM25_K1 * (1 - BM25_B + BM25_B * length / max(avg_len, 1e-9))
    return {term: tf * (BM25_K1 + 1) / (tf + norm) for term, tf in counts.items()}


def term_candidates(vocab: Vocabulary, token_ids: np.ndarray, term_ids: dict[str, list[int]]) -> np.ndarray:
    """Token ids whose term occurs in the document (so `ĠCat` may stand for the document's `cat`)."""
    terms = vocab.own_term_counts(token_ids)
    if not terms:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate([term_ids[t] for t in terms]))


def term_index(vocab: Vocabulary) -> dict[str, list[int]]:
    """Term -> every token id that maps to it."""
    term_ids: dict[str, list[int]] = {}
    for token_id, term in enumerate(vocab.terms):
        if term is not None:
            term_ids.setdefault(term, []).append(token_id)
    return term_ids


def own_vectors(vocab: Vocabulary, tokens: list[np.ndarray], weighting: str) -> tuple[list[dict[str, int]], float]:
    counts = [vocab.own_term_counts(ids) for ids in tokens]
    if weighting == "uniform":
        return [{term: 1 for term in c} for c in counts], 1.0
    avg_len = float(np.mean([sum(c.values()) for c in counts])) if counts else 1.0
    scale = 100 / (BM25_K1 + 1)
    return [quantize(bm25_tf(c, avg_len), scale) for c in counts], scale


def hybrid_vectors(vocab: Vocabulary, embeddings: np.ndarray, lm_head, tokens: list[np.ndarray]
                   ) -> tuple[list[dict[str, int]], float]:
    """Own terms with BM25-tf x (1 + a), a in [0, 1] the term's aligned logit min-max scaled within the document.

    The LLM-free control says how much plain term statistics give; `a` is what the aligned tokens add on top of
    them: among a document's own terms, those its embedding decodes to get up to twice the weight.
    """
    term_ids = term_index(vocab)
    counts = [vocab.own_term_counts(ids) for ids in tokens]
    avg_len = float(np.mean([sum(c.values()) for c in counts])) if counts else 1.0
    candidates = [term_candidates(vocab, ids, term_ids) for ids in tokens]
    merged = []
    for ids, logits, count in zip(candidates, candidate_logits(embeddings, lm_head, candidates), counts):
        term_logit = vocab.merge(ids, logits)
        if not term_logit:
            merged.append({})
            continue
        low, high = min(term_logit.values()), max(term_logit.values())
        span = max(high - low, 1e-9)
        tf = bm25_tf(count, avg_len)
        merged.append({t: tf[t] * (1 + (term_logit[t] - low) / span) for t in tf})
    scale = 100 / (2 * (BM25_K1 + 1))
    return [quantize(doc, scale) for doc in merged], scale


def check_k(k: int, vocabulary: int, unit: str = "tokens") -> None:
    """Top-K over a vocabulary of `vocabulary` tokens (or words): refused, not silently clamped, when K is not
    smaller."""
    if k >= vocabulary:
        raise InputError(f"k={k} is not smaller than the vocabulary ({vocabulary} {unit}); choose a smaller K")


def aligned_vectors(vocab: Vocabulary, embeddings: np.ndarray, lm_head, tokens: list[np.ndarray], k: int,
                    weighting: str, within_text: bool) -> tuple[list[dict[str, int]], float]:
    """Top-K aligned tokens per document (`within_text`: only tokens whose term occurs in it), merged into terms."""
    check_k(k, len(vocab))
    candidates = None
    if within_text:
        term_ids = term_index(vocab)
        candidates = [term_candidates(vocab, ids, term_ids) for ids in tokens]
    merged: list[dict[str, float]] = []
    for start in tqdm(range(0, len(embeddings), PROJECT_BATCH), desc="project", unit="batch"):
        chunk = top_k(embeddings[start:start + PROJECT_BATCH], lm_head, k, weighting,
                      candidates[start:start + PROJECT_BATCH] if candidates is not None else None)
        merged.extend(vocab.merge(ids, weights) for ids, weights in zip(chunk.ids, chunk.weights))
    return weighted_vectors(merged)


def weighted_vectors(merged: list[dict[str, float]]) -> tuple[list[dict[str, int]], float]:
    """Quantize float term weights with one global scale for the whole collection."""
    scale = global_scale(np.array([w for doc in merged for w in doc.values()], dtype=np.float32))
    return [quantize(doc, scale) for doc in merged], scale


def local_alignment_score(vocab: Vocabulary, lm_head, tokens: list[np.ndarray]):
    """Score for pc1=auto: the local alignment rate of adjusted embeddings with their documents' own tokens."""
    from encoders.alignment_rates import measure

    return lambda adjusted, rows: measure(vocab, adjusted, lm_head, [tokens[i] for i in rows])[0].local


def own_word_vectors(word_counts: list[Counter], weighting: str) -> tuple[list[dict[str, int]], float]:
    """The LLM-free control on words: each document's analyzed words, uniform or BM25-tf weighted (BM25 itself,
    once a query weights its words by idf)."""
    if weighting == "uniform":
        return [{term: 1 for term in c} for c in word_counts], 1.0
    avg_len = float(np.mean([sum(c.values()) for c in word_counts])) if word_counts else 1.0
    scale = 100 / (BM25_K1 + 1)
    return [quantize(bm25_tf(c, avg_len), scale) for c in word_counts], scale


def hybrid_word_vectors(word_counts: list[Counter], pieces: list[dict[str, np.ndarray]], embeddings: np.ndarray,
                        lm_head) -> tuple[list[dict[str, int]], float]:
    """Own words with BM25-tf x (1 + a), a in [0, 1] the word's aligned logit (max over its pieces) min-max scaled
    within the document; a word with no piece found (the analyzer and the tokenizer disagree on it) gets a = 0."""
    avg_len = float(np.mean([sum(c.values()) for c in word_counts])) if word_counts else 1.0
    candidates = [np.unique(np.concatenate(list(p.values()))) if p else np.zeros(0, dtype=np.int64) for p in pieces]
    merged = []
    for count, piece, ids, logits in zip(word_counts, pieces, candidates,
                                         candidate_logits(embeddings, lm_head, candidates)):
        tf = bm25_tf(count, avg_len)
        if not len(ids):
            merged.append(tf)
            continue
        logit_of = dict(zip(ids.tolist(), logits.tolist()))
        word_logit = {w: max(logit_of[int(i)] for i in p) for w, p in piece.items() if len(p)}
        low, high = min(word_logit.values()), max(word_logit.values())
        span = max(high - low, 1e-9)
        merged.append({t: tf[t] * (1 + (word_logit[t] - low) / span if t in word_logit else 1) for t in tf})
    scale = 100 / (2 * (BM25_K1 + 1))
    return [quantize(doc, scale) for doc in merged], scale


def expansion_word_vectors(word_counts: list[Counter], head, embeddings: np.ndarray, lm_head, k: int
                           ) -> tuple[list[dict[str, int]], float]:
    """source=expansion: own words at BM25 tf plus the top-k words the embedding decodes to (encoders/expansion.py),
    quantized with one scale for the collection."""
    from encoders.expansion import expanded

    avg_len = float(np.mean([sum(c.values()) for c in word_counts])) if word_counts else 1.0
    expansions = head.expansion_dicts(embeddings, lm_head, k)
    return weighted_vectors([expanded(bm25_tf(c, avg_len), e) for c, e in zip(word_counts, expansions)])
