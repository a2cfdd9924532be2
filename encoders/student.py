"""The distilled word index (`source=distilled`): document word weights taught by a stronger ranking, from stored
embeddings, with queries that stay BM25's lookup (analyzed words x idf, no LLM).

A document's weight for word t, computed from its stored pooled embedding e through the frozen LM head:
  z        = e + A e                      a residual linear adapter (A starts at 0, so z = e at first)
  l(t)     = max over the vocabulary tokens that start t of head(z)       (encoders/expansion.py's WordHead)
  own(t)   = tf_bm25(t) x (1 + beta x a(t)),  a = l min-max scaled over the document's own words (the word hybrid)
  new(t)   = gamma x log(1 + max(0, l(t) - l_(K+1)))                       (the top-K words the embedding decodes to)
  w(t)     = own(t) + new(t)
Queries are scored as BM25 scores them: count x idf over the document's own words' df (`query_df.json` beside the
collection), so at A = 0, beta = 0, gamma = 0 the index is BM25 itself. Training (pipeline/distil.py) fits A,
beta and gamma to a teacher's scores over each train query's candidate pool (listwise KL), with IDF-aware FLOPS
on the expansion; the same `weights` function projects every document into the index, so the index holds what
training scored. Postings per document: own words + at most K.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from encoders.documents import bm25_tf
from encoders.expansion import WordHead
from encoders.queries import TokenQueryEncoder

STUDENT_K = 64  # expansion words per document at most


@dataclass
class WordSpace:
    """Every word a document or query can carry: the head's words first, then corpus words no token starts."""

    words: list[str]
    position: dict[str, int]
    head_columns: torch.Tensor  # [head words] the space column of each head word

    @classmethod
    def build(cls, head: WordHead, corpus_words: list[str]) -> "WordSpace":
        words = list(head.words) + sorted(set(corpus_words) - set(head.words))
        position = {w: i for i, w in enumerate(words)}
        return cls(words, position, torch.arange(len(head.words)))

    def __len__(self) -> int:
        return len(self.words)

    def matrix(self, rows: list[dict[str, float]]) -> torch.Tensor:
        """Sparse {word: value} rows as a dense [rows, space] float32 matrix (words outside the space dropped)."""
        out = torch.zeros((len(rows), len(self.words)))
        for r, row in enumerate(rows):
            cols = [self.position[w] for w in row if w in self.position]
            if cols:
                out[r, cols] = torch.tensor([v for w, v in row.items() if w in self.position], dtype=torch.float32)
        return out


class Student(torch.nn.Module):
    """The adapter and the two weights of the distilled index; `weights` is the one function training and
    projection share."""

    def __init__(self, hidden: int, k: int = STUDENT_K) -> None:
        super().__init__()
        self.adapter = torch.nn.Linear(hidden, hidden, bias=False)
        torch.nn.init.zeros_(self.adapter.weight)
        self.own_boost = torch.nn.Parameter(torch.tensor(1.0))  # beta: the word hybrid's boost to start from
        self.expansion_scale = torch.nn.Parameter(torch.tensor(0.25))  # gamma
        self.k = k

    def optimizer(self, lr: float, adapter_lr: float, *extra: torch.nn.Parameter) -> torch.optim.Optimizer:
        """Adam with two step sizes: the two weights move freely; the adapter (hidden x hidden entries, each shifting
        every word logit) moves slowly, or one step would reorder the whole vocabulary."""
        return torch.optim.Adam([{"params": [self.own_boost, self.expansion_scale, *extra], "lr": lr},
                                 {"params": self.adapter.parameters(), "lr": adapter_lr}])

    @classmethod
    def bm25(cls, hidden: int) -> "Student":
        """The student with nothing learned and nothing added (beta = gamma = 0): BM25's own weights."""
        student = cls(hidden)
        with torch.no_grad():
            student.own_boost.zero_()
            student.expansion_scale.zero_()
        return student

    def weights(self, embeddings: torch.Tensor, own_tf: torch.Tensor, head: WordHead, lm_head: torch.Tensor,
                space: WordSpace) -> tuple[torch.Tensor, torch.Tensor]:
        """[docs, space] word weights, and [docs, head words] expansion weights (for FLOPS)."""
        z = embeddings.float() + self.adapter(embeddings.float())
        logits = head.word_logits(z, lm_head)  # [docs, head words]
        n = len(embeddings)
        head_logit = logits.new_full((n, len(space)), float("-inf"))
        head_logit[:, space.head_columns] = logits
        own = (own_tf > 0) & torch.isfinite(head_logit)
        safe = head_logit.masked_fill(~own, 0.0)  # finite everywhere, so no NaN reaches a gradient
        has_own = own.any(dim=1, keepdim=True)
        low = torch.where(has_own, safe.masked_fill(~own, float("inf")).min(dim=1, keepdim=True).values, 0.0)
        high = torch.where(has_own, safe.masked_fill(~own, float("-inf")).max(dim=1, keepdim=True).values, 0.0)
        scaled = ((safe - low) / (high - low).clamp_min(1e-6)).masked_fill(~own, 0.0)
        weights = own_tf * (1 + self.own_boost * scaled)
        k = min(self.k, logits.shape[1] - 1)
        threshold = logits.topk(k + 1, dim=1).values[:, k:k + 1]
        expansion = self.expansion_scale.clamp_min(0) * torch.log1p((logits - threshold).clamp_min(0))
        weights = weights.index_add(1, space.head_columns, expansion)
        return weights, expansion


class DocumentWords:
    """The corpus side the student needs: each document's own analyzed words at BM25 tf, the df and idf of own
    words (BM25's, the query side's table), computed once."""

    def __init__(self, texts: list[str], analyzer) -> None:
        counts = [Counter(analyzer.terms(t)) for t in texts]
        avg_len = float(np.mean([sum(c.values()) for c in counts])) if counts else 1.0
        self.tf = [bm25_tf(c, avg_len) for c in counts]
        self.df: Counter = Counter(w for c in counts for w in c)
        self.documents = len(counts)

    def idf(self, word: str) -> float:
        return TokenQueryEncoder.bm25_idf(self.df.get(word, 0), self.documents)


def idf_flops(expansion: torch.Tensor, idf: torch.Tensor) -> torch.Tensor:
    """IDF-aware FLOPS over a batch: each head word's batch-mean expansion weight, squared, over its idf, summed:
    common words (long postings, cheap to match) cost more than rare ones."""
    return (expansion.mean(dim=0).pow(2) / idf.clamp_min(1e-3)).sum()


def listwise_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) over each query's pool ([queries, pool]; `mask` False past a short pool): the
    student learns the teacher's order and margins, not only its top document."""
    neg = torch.finfo(student.dtype).min
    target = torch.softmax((teacher / temperature).masked_fill(~mask, neg), dim=1)
    log_student = torch.log_softmax(student.masked_fill(~mask, neg), dim=1)
    return (target * (torch.log(target.clamp_min(1e-12)) - log_student)).masked_fill(~mask, 0).sum(dim=1).mean()


class StudentData:
    """The corpus as the student reads it: stored embeddings, own words at BM25 tf, their idf, the word space."""

    def __init__(self, texts: list[str], embeddings: np.ndarray, lm_head: torch.Tensor, tokenizer) -> None:
        from encoders.words import WordVocabulary, word_analyzer

        analyzer = word_analyzer()
        self.head = WordHead(WordVocabulary(tokenizer, analyzer))
        self.words = DocumentWords(texts, analyzer)
        self.space = WordSpace.build(self.head, list(self.words.df))
        self.embeddings = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
        self.lm_head = lm_head.float()
        self.analyzer = analyzer
        self.head_idf = torch.tensor([self.words.idf(w) for w in self.head.words])

    def own(self, rows: list[int]) -> torch.Tensor:
        return self.space.matrix([self.words.tf[r] for r in rows])

    def queries(self, texts: list[str]) -> torch.Tensor:
        """[queries, space] count x idf of each query's analyzed words that the corpus holds (BM25's query)."""
        rows = []
        for text in texts:
            counts: dict[str, int] = {}
            for word in self.analyzer.terms(text):
                if word in self.words.df:
                    counts[word] = counts.get(word, 0) + 1
            rows.append({w: c * self.words.idf(w) for w, c in counts.items()})
        return self.space.matrix(rows)

    def all_scores(self, student: Student, queries: torch.Tensor, chunk: int = 512) -> np.ndarray:
        """[queries, docs] exact student scores over the whole corpus, in document chunks (no gradients)."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(self.embeddings), chunk):
                rows = list(range(start, min(start + chunk, len(self.embeddings))))
                weights, _ = student.weights(self.embeddings[rows], self.own(rows), self.head, self.lm_head, self.space)
                out.append((queries @ weights.T).numpy())
        return np.concatenate(out, axis=1)


    def vectors(self, student: Student, chunk: int = 512) -> list[dict[str, float]]:
        """Every document's {word: weight} through the student (no gradients): what the index holds, unquantized."""
        out: list[dict[str, float]] = []
        words = self.space.words
        with torch.inference_mode():
            for start in range(0, len(self.embeddings), chunk):
                rows = list(range(start, min(start + chunk, len(self.embeddings))))
                weights, _ = student.weights(self.embeddings[rows], self.own(rows), self.head, self.lm_head, self.space)
                for row in weights.numpy():
                    nonzero = np.flatnonzero(row > 0)
                    out.append({words[i]: float(row[i]) for i in nonzero})
        return out


def load_student(folder: Path) -> Student:
    """The kept student of `make distil` (models/<embedder>/student*/: student.pt and its manifest)."""
    from common.errors import InputError

    path, info = folder / "student.pt", folder / "manifest.json"
    if not (path.is_file() and info.is_file()):
        raise InputError(f"no distilled student at {folder}; run `make distil` for this model first")
    settings = json.loads(info.read_text(encoding="utf-8"))
    student = Student(int(settings["hidden"]), int(settings["settings"]["k"]))
    student.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return student.eval()
