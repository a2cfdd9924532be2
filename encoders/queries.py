"""Query encoders for the impact index: text -> {term: int}, in the index's own vocabulary.

`tokens` (no LLM forward, the cheap mode): the query's own tokenizer tokens, normalised exactly as the documents
were, weighted by `count` or `idf` (idf = ln(1 + (N - df + 0.5) / (df + 0.5)), the BM25 idf, from the df table
written beside the index; scaled by IDF_SCALE and rounded to positive ints).
`aligned` (one LLM forward): the above plus the query embedding's top-M aligned tokens (same pooling, prompt, the
preset's query instruction and the corpus's PC1 adjustment), weighted and quantized with the documents' scale.
"""
from __future__ import annotations

import math

import numpy as np

from encoders import pc1
from encoders.aligned import quantize, top_k
from encoders.embedder import Embedder
from encoders.vocab import Vocabulary

IDF_SCALE = 10
QWEIGHTS = ("count", "idf")
QUERY_MODES = ("tokens", "aligned")


class TokenQueryEncoder:
    """The cheap mode; `encode(text) -> {term: int}` as LuceneImpactSearcher expects of a query encoder."""

    def __init__(self, vocab: Vocabulary, qweight: str, df: dict[str, int], documents: int) -> None:
        self.vocab = vocab
        self.qweight = qweight
        self.df = df
        self.documents = documents

    @staticmethod
    def bm25_idf(df: int, documents: int) -> float:
        """BM25's idf (Lucene's): ln(1 + (N - df + 0.5) / (df + 0.5))."""
        return math.log(1 + (documents - df + 0.5) / (df + 0.5))

    def idf(self, term: str) -> float:
        return self.bm25_idf(self.df.get(term, 0), self.documents)

    def encode(self, text: str) -> dict[str, int]:
        counts = self.vocab.text_terms(text)
        counts = {t: c for t, c in counts.items() if t in self.df}
        if self.qweight == "count":
            return dict(counts)
        return {t: max(1, round(c * self.idf(t) * IDF_SCALE)) for t, c in counts.items()}

    def encode_many(self, texts: list[str]) -> list[dict[str, int]]:
        return [self.encode(text) for text in texts]


class AlignedQueryEncoder:
    """Own tokens plus the top-M aligned tokens of the query embedding (one forward per batch of queries)."""

    def __init__(self, tokens: TokenQueryEncoder, embedder: Embedder, m: int, weighting: str, scale: float,
                 pc1: dict | None) -> None:
        self.tokens = tokens
        self.embedder = embedder
        self.m = m
        self.weighting = weighting
        self.scale = scale
        self.pc1 = pc1

    def encode_many(self, texts: list[str]) -> list[dict[str, int]]:
        batch = self.embedder.encode(texts, is_query=True)
        embeddings = pc1.adjust(batch.embeddings, self.pc1)
        aligned = top_k(embeddings, self.embedder.loaded.lm_head, self.m, self.weighting)
        out = []
        for text, ids, weights in zip(texts, aligned.ids, aligned.weights):
            query = self.tokens.encode(text)
            extra = quantize(self.tokens.vocab.merge(ids, weights), self.scale)
            for term, weight in extra.items():
                if term in self.tokens.df:
                    query[term] = query.get(term, 0) + weight
            out.append(query)
        return out

    def encode(self, text: str) -> dict[str, int]:
        return self.encode_many([text])[0]


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)
