"""The aligned-token loss of `make train objective=joint`: the index's document weights, as a torch function.

Documents get the weights steps/project.py would index, computed from the embedding with gradients: for each
of the document's own terms (normalised, as `normalize=on` indexes them) its aligned logit is the frozen LM head
applied to the embedding, max over the token ids that normalise to the term (`vocab.merge`), and
  hybrid   (the default variant)  w(t) = tf_bm25(t) x (1 + a(t)), a = the logit min-max scaled within the document
  aligned  (top-K own terms, log) w(t) = log(1 + l(t) - min l + 1), min over the document's candidate token ids
Queries are scored as `query=tokens` scores them: the query's own terms, count x idf (BM25 idf, df over the
corpus), no LLM. The score of query i and document j is the dot product of the two sparse vectors, and InfoNCE
over the batch (the same in-batch negatives as the dense loss) trains the embedding so that the index ranks the
positive first. FLOPS (SPLADE's regulariser, the squared batch-mean weight per term) is there but off by default:
both targets post every own term, so a document's postings are its own terms by construction, whatever training does.
Not modelled: the corpus PC1 step of `pc1=remove` (the eval shows pc1=off runs beside it) and quantisation.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from encoders.documents import bm25_tf, term_candidates, term_index
from encoders.queries import TokenQueryEncoder
from encoders.vocab import Vocabulary

TARGETS = ("hybrid", "aligned", "expansion")


@dataclass
class DocTerms:
    """One document's own terms, their BM25 tf, and the candidate token ids with the term each maps to."""

    terms: list[str]
    tf: torch.Tensor  # [n_terms] BM25-saturated term frequency
    candidates: torch.Tensor  # [n_candidates] token ids whose term occurs in the document
    term_of: torch.Tensor  # [n_candidates] index into `terms`


class SparseTarget:
    """Corpus statistics (df, average length) and the differentiable document / query sparse vectors."""

    def __init__(self, tokenizer, corpus_token_ids: list[list[int]], target: str = "hybrid") -> None:
        if target not in ("hybrid", "aligned"):
            raise ValueError(f"sparse target {target!r}: choose hybrid or aligned (expansion: ExpansionTarget)")
        self.target = target
        self.vocab = Vocabulary(tokenizer, normalize=True)
        self.term_ids = term_index(self.vocab)
        counts = [self.vocab.own_term_counts(ids) for ids in corpus_token_ids]
        self.documents = len(counts)
        self.df: Counter = Counter(t for c in counts for t in c)
        self.avg_len = float(np.mean([sum(c.values()) for c in counts])) if counts else 1.0
        self.queries = TokenQueryEncoder(self.vocab, "idf", self.df, self.documents)
        self._docs: dict[tuple[int, ...], DocTerms] = {}

    def query_vector(self, token_ids: list[int]) -> dict[str, float]:
        """`query=tokens` with idf weights, unrounded: count x idf of the query's own terms found in the corpus."""
        idf = self.queries.idf
        return {t: c * idf(t) for t, c in self.vocab.own_term_counts(token_ids).items() if t in self.df}

    def doc_terms(self, token_ids: list[int]) -> DocTerms:
        key = tuple(token_ids)
        if key not in self._docs:
            counts = self.vocab.own_term_counts(token_ids)
            terms = list(counts)
            saturated = bm25_tf(counts, self.avg_len)
            tf = torch.tensor([saturated[t] for t in terms], dtype=torch.float32)
            candidates = term_candidates(self.vocab, np.asarray(token_ids, dtype=np.int64), self.term_ids)
            position = {t: i for i, t in enumerate(terms)}
            term_of = torch.tensor([position[self.vocab.terms[int(c)]] for c in candidates], dtype=torch.long)
            self._docs[key] = DocTerms(terms, tf, torch.from_numpy(candidates.astype(np.int64)), term_of)
        return self._docs[key]

    def doc_weights(self, embeddings: torch.Tensor, lm_head: torch.Tensor, docs: list[DocTerms]) -> list[torch.Tensor]:
        """Each document's weight per own term, differentiable in its embedding (the head itself stays frozen)."""
        out = []
        for embedding, doc in zip(embeddings, docs):
            if not doc.terms:
                out.append(embedding.new_zeros(0))
                continue
            logits = lm_head[doc.candidates.to(lm_head.device)].float() @ embedding.float()
            term_logit = logits.new_full((len(doc.terms),), float("-inf")).scatter_reduce(
                0, doc.term_of.to(logits.device), logits, reduce="amax")
            if self.target == "hybrid":
                low, high = term_logit.min(), term_logit.max()
                scaled = (term_logit - low) / (high - low).clamp_min(1e-9)
                out.append(doc.tf.to(logits.device) * (1 + scaled))
            else:
                out.append(torch.log1p(term_logit - logits.min() + 1))
        return out

    def scores(self, queries: list[dict[str, float]], docs: list[DocTerms], weights: list[torch.Tensor]) -> torch.Tensor:
        """[queries, docs] dot products of the sparse vectors, over the batch's own term space."""
        space = {t: i for i, t in enumerate(dict.fromkeys(t for doc in docs for t in doc.terms))}
        device = weights[0].device if weights else torch.device("cpu")
        query_matrix = torch.zeros((len(queries), len(space)), device=device)
        for row, query in enumerate(queries):
            for term, value in query.items():
                if term in space:
                    query_matrix[row, space[term]] = value
        doc_rows = []
        for doc, weight in zip(docs, weights):
            row = weight.new_zeros(len(space))
            if doc.terms:
                row = row.index_put((torch.tensor([space[t] for t in doc.terms], device=device),), weight)
            doc_rows.append(row)
        return query_matrix @ torch.stack(doc_rows).T

    def batch_scores(self, queries: list[tuple[str, list[int]]], docs: list[tuple[str, list[int]]],
                     embeddings: torch.Tensor, lm_head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[queries, docs] index scores of a batch ((text, own token ids) pairs) and the documents' FLOPS."""
        terms = [self.doc_terms(own) for _, own in docs]
        weights = self.doc_weights(embeddings, lm_head, terms)
        return self.scores([self.query_vector(own) for _, own in queries], terms, weights), self.flops(terms, weights)

    @staticmethod
    def flops(docs: list[DocTerms], weights: list[torch.Tensor]) -> torch.Tensor:
        """SPLADE's FLOPS regulariser over the batch: sum over terms of (mean weight over the batch documents)^2."""
        total: dict[str, torch.Tensor] = {}
        for doc, weight in zip(docs, weights):
            for term, value in zip(doc.terms, weight):
                total[term] = total.get(term, 0) + value
        if not total:
            return torch.zeros(())
        return (torch.stack(list(total.values())) / len(docs)).pow(2).sum()


class ExpansionTarget:
    """sparse_target=expansion, over Lucene-analyzed words (encoders/expansion.py): documents = own words at BM25 tf +
    the top-K words the embedding decodes to, queries = analyzed words x idf (no LLM); the score is their dot product
    over the batch's word space, as the index will give it. FLOPS here is IDF-aware: the batch-mean expansion weight
    of each word, squared and divided by its idf, so that common words (cheap to match, long postings) cost more
    than rare ones (our reading of the IDF-aware FLOPS of arXiv 2411.04403)."""

    def __init__(self, tokenizer, corpus_texts: list[str], k: int | None = None) -> None:
        from encoders.expansion import EXPANSION_K, WordHead
        from encoders.words import WordVocabulary, word_analyzer

        self.analyzer = word_analyzer()
        vocab = WordVocabulary(tokenizer, self.analyzer)
        self.head = WordHead(vocab)
        self.k = k or EXPANSION_K
        counts = [Counter(self.analyzer.terms(text)) for text in corpus_texts]
        self.df: Counter = Counter(t for c in counts for t in c)
        self.avg_len = float(np.mean([sum(c.values()) for c in counts])) if counts else 1.0
        self.queries = TokenQueryEncoder(vocab, "idf", self.df, len(counts))  # the index's own idf and query words
        self._own: dict[str, dict[str, float]] = {}

    def query_vector(self, text: str) -> dict[str, float]:
        """`query=tokens` on words with idf weights, unrounded: count x idf of the query's analyzed words."""
        idf = self.queries.idf
        return {w: c * idf(w) for w, c in self.queries.vocab.text_terms(text).items() if w in self.df}

    def own_tf(self, text: str) -> dict[str, float]:
        if text not in self._own:
            self._own[text] = bm25_tf(Counter(self.analyzer.terms(text)), self.avg_len)
        return self._own[text]

    def batch_scores(self, queries: list[tuple[str, list[int]]], docs: list[tuple[str, list[int]]],
                     embeddings: torch.Tensor, lm_head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids, weights = self.head.expansion(embeddings, lm_head, self.k)
        own = [self.own_tf(text) for text, _ in docs]
        query_vectors = [self.query_vector(text) for text, _ in queries]
        words = self.head.words
        space = {w: i for i, w in enumerate(dict.fromkeys(
            [w for doc in own for w in doc] + [words[int(i)] for i in ids.flatten()]))}
        device = weights.device
        base = torch.zeros((len(docs), len(space)), device=device)
        for row, doc in enumerate(own):
            for word, tf in doc.items():
                base[row, space[word]] = tf
        columns = torch.tensor([[space[words[int(i)]] for i in row] for row in ids.cpu()], device=device)
        matrix = base.scatter_add(1, columns, weights)
        query_matrix = torch.zeros((len(queries), len(space)), device=device)
        for row, query in enumerate(query_vectors):
            for word, value in query.items():
                if word in space:
                    query_matrix[row, space[word]] = value
        idf = torch.tensor([self.queries.idf(w) for w in space], device=device).clamp_min(1e-3)
        mean = torch.zeros(len(space), device=device).scatter_add(0, columns.flatten(), weights.flatten()) / len(docs)
        return query_matrix @ matrix.T, (mean.pow(2) / idf).sum()
