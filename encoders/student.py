"""The distilled word index (`source=distilled`): document word weights taught by a stronger ranking, from stored
embeddings, with queries that stay BM25's lookup (analyzed words x idf, no LLM).

A document's weight for word t, computed from its stored pooled embedding e through the frozen LM head:
  z        = e + A e                      e with the corpus's PC1 projected out; a residual linear adapter A
                                          (A starts at 0, so z = e at first)
  own(t)   = tf_bm25(t) x (1 + beta x a(t)),  a = the max of head(z) over the token pieces t was split into in the
             document, min-max scaled over the document's own words (the word hybrid's weight at beta = 1)
  l(t)     = max over the vocabulary tokens that start t of head(z)       (encoders/expansion.py's WordHead)
  new(t)   = gamma x log(1 + max(0, l(t) - l_(K+1)))                       (the top-K words the embedding decodes to)
  w(t)     = own(t) + new(t)
Queries are scored as BM25 scores them: count x idf over the document's own words' df (`query_df.json` beside the
collection), so at A = 0, beta = 0, gamma = 0 the index is BM25 itself. Training (steps/distil.py) fits A,
beta and gamma to a teacher's scores over each train query's candidate pool (listwise KL), with IDF-aware FLOPS
on the expansion; the same `weights` function projects every document into the index, so the index holds what
training scored. Postings per document: own words + at most K.

Neighbours (chosen on dev after training, off unless it wins there): a document also borrows the own words of its
n nearest documents by the embedder's dense cosine, each at BM25 tf times the neighbour's share of the n cosines,
added with weight lambda; at most NEIGHBOUR_WORDS borrowed words new to the document are kept (the largest), so
postings grow by that much at most. This moves part of what the dense half of the teacher knows (which documents
are about the same thing) into document-side words, so queries stay BM25's lookup (cf. document expansion by
nearest neighbours; the dev probe of studies/teacher_gap.py).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.sparse import csr_matrix

from encoders.documents import bm25_tf
from encoders.expansion import WordHead
from encoders.queries import TokenQueryEncoder

STUDENT_K = 64  # expansion words per document at most
NEIGHBOUR_WORDS = 32  # borrowed words new to a document at most


@dataclass(frozen=True)
class Neighbours:
    """How a document borrows its dense neighbours' words: `n` nearest documents (0: off), added with `weight`."""

    n: int = 0
    weight: float = 0.0
    new_words: int = NEIGHBOUR_WORDS

    @property
    def on(self) -> bool:
        return self.n > 0 and self.weight > 0


def nearest_documents(embeddings: np.ndarray, n: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Each document's n nearest other documents by cosine ([docs, n] rows and cosines), in row chunks so memory
    stays chunk x docs; exact, like the dense run's FAISS flat index."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    n = min(n, len(unit) - 1)
    rows, cosines = [], []
    for start in range(0, len(unit), chunk):
        similarity = unit[start:start + chunk] @ unit.T
        similarity[np.arange(len(similarity)), np.arange(start, start + len(similarity))] = -np.inf  # not itself
        nearest = np.argpartition(-similarity, n - 1, axis=1)[:, :n] if n > 0 else np.zeros((len(similarity), 0), int)
        rows.append(nearest)
        cosines.append(np.take_along_axis(similarity, nearest, 1))
    return np.concatenate(rows), np.concatenate(cosines)


def borrowed_words(nearest: np.ndarray, cosines: np.ndarray, own_tf: csr_matrix, new_words: int) -> csr_matrix:
    """[docs, words]: the neighbours' own words at BM25 tf, each neighbour weighted by its share of the (positive)
    cosines; of the words a document does not hold, only its `new_words` largest are kept."""
    docs, n = nearest.shape
    share = np.maximum(cosines, 0).astype(np.float32)
    share /= np.maximum(share.sum(axis=1, keepdims=True), 1e-9)
    graph = csr_matrix((share.ravel(), (np.repeat(np.arange(docs), n), nearest.ravel())), shape=(docs, docs))
    borrowed = (graph @ own_tf).tocsr()
    borrowed.sort_indices()
    own_tf = own_tf.tocsr()
    rows, cols, values = [], [], []
    for row in range(docs):
        start, end = borrowed.indptr[row], borrowed.indptr[row + 1]
        columns, weights = borrowed.indices[start:end], borrowed.data[start:end]
        held = np.isin(columns, own_tf.indices[own_tf.indptr[row]:own_tf.indptr[row + 1]])
        new = np.flatnonzero(~held)
        if len(new) > new_words:
            new = new[np.argsort(-weights[new], kind="stable")[:new_words]]
        keep = np.sort(np.concatenate([np.flatnonzero(held), new]))
        rows.append(np.full(len(keep), row))
        cols.append(columns[keep])
        values.append(weights[keep])
    return csr_matrix((np.concatenate(values) if values else [], (np.concatenate(rows) if rows else [],
                       np.concatenate(cols) if cols else [])), shape=borrowed.shape, dtype=np.float32)


@dataclass
class WordSpace:
    """Every word a document or query can carry, as ids: the head's words first (id = head word index), then corpus
    words no vocabulary token starts."""

    words: list[str]
    position: dict[str, int]
    head_words: int

    @classmethod
    def build(cls, head: WordHead, corpus_words: list[str]) -> "WordSpace":
        words = list(head.words) + sorted(set(corpus_words) - set(head.words))
        return cls(words, {w: i for i, w in enumerate(words)}, len(head.words))

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class OwnWords:
    """A batch of documents' own words, padded: space ids [docs, m] and BM25 tf [docs, m] (0 where padded), and the
    token pieces each word was split into in the document: token ids [docs, p] and the word slot of each (-1: pad)."""

    ids: torch.Tensor
    tf: torch.Tensor
    piece_tokens: torch.Tensor
    piece_slots: torch.Tensor


class Student(torch.nn.Module):
    """The adapter and the two weights of the distilled index; `weights` is the one function training and
    projection share."""

    def __init__(self, hidden: int, k: int = STUDENT_K) -> None:
        super().__init__()
        self.adapter = torch.nn.Linear(hidden, hidden, bias=False)
        torch.nn.init.zeros_(self.adapter.weight)
        self.own_boost = torch.nn.Parameter(torch.tensor(1.0))  # beta: the word hybrid's boost to start from
        self.expansion_scale = torch.nn.Parameter(torch.tensor(0.05))  # gamma: starts next to the word hybrid
        self.k = k
        self.neighbours = Neighbours()  # chosen on dev after training, not learned (kept in the student's manifest)

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

    def weights(self, embeddings: torch.Tensor, own: OwnWords, head: WordHead, lm_head: torch.Tensor,
                space: WordSpace, columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The documents' weights on the given space columns ([docs, columns]: all of them to index, the batch's
        query words to train), and each document's top-K expansion (head word ids, weights) for FLOPS."""
        z = embeddings.float() + self.adapter(embeddings.float())
        token_logits = z @ lm_head.float().T  # [docs, vocabulary tokens], once for both uses below
        logits = head.fold_token_logits(token_logits)  # [docs, head words]
        # an own word's aligned logit: the max over the token pieces it was split into in this document, as the word
        # hybrid reads it (continuation pieces included); a word with no piece keeps its tf (a = 0)
        valid = own.piece_slots >= 0
        piece_logit = token_logits.gather(1, own.piece_tokens).masked_fill(~valid, -1e30)
        own_logit = torch.full(own.tf.shape, -1e30).scatter_reduce(1, torch.where(valid, own.piece_slots, 0),
                                                                   piece_logit, reduce="amax")
        is_scored = (own.tf > 0) & (own_logit > -1e29)
        own_logit = own_logit.masked_fill(~is_scored, 0.0)
        has_own = is_scored.any(dim=1, keepdim=True)
        low = torch.where(has_own, own_logit.masked_fill(~is_scored, float("inf")).min(dim=1, keepdim=True).values, 0.0)
        high = torch.where(has_own, own_logit.masked_fill(~is_scored, float("-inf")).max(dim=1, keepdim=True).values,
                           0.0)
        scaled = ((own_logit - low) / (high - low).clamp_min(1e-6)).masked_fill(~is_scored, 0.0)
        own_weight = own.tf * (1 + self.own_boost * scaled)
        position = torch.full((len(space),), -1, dtype=torch.long)
        position[columns] = torch.arange(len(columns))
        own_position = position[own.ids]
        kept = (own_position >= 0) & (own.tf > 0)
        weights = torch.zeros((len(embeddings), len(columns))).scatter_add(
            1, torch.where(kept, own_position, 0), own_weight * kept)
        k = min(self.k, logits.shape[1] - 1)
        top, top_ids = logits.topk(k + 1, dim=1)
        threshold = top[:, k:k + 1]
        scale = self.expansion_scale.clamp_min(0)
        head_columns = torch.nonzero(columns < space.head_words).flatten()
        expansion = scale * torch.log1p((logits[:, columns[head_columns]] - threshold).clamp_min(0))
        weights = weights.index_add(1, head_columns, expansion)
        return weights, top_ids[:, :k], scale * torch.log1p((top[:, :k] - threshold).clamp_min(0))


class DocumentWords:
    """The corpus side the student needs: each document's own analyzed words at BM25 tf and the token pieces each
    was split into (encoders/words.py `document_words`, as the word hybrid reads them), and the df and idf of own
    words (BM25's, the query side's table), computed once."""

    def __init__(self, texts: list[str], analyzer, tokenizer) -> None:
        from tqdm import tqdm

        from encoders.words import document_words

        parsed = [document_words(t, tokenizer, analyzer) for t in tqdm(texts, desc="words", unit="doc")]
        counts = [c for c, _ in parsed]
        avg_len = float(np.mean([sum(c.values()) for c in counts])) if counts else 1.0
        self.tf = [bm25_tf(c, avg_len) for c in counts]
        self.pieces = [p for _, p in parsed]
        self.df: Counter = Counter(w for c in counts for w in c)
        self.documents = len(counts)

    def idf(self, word: str) -> float:
        return TokenQueryEncoder.bm25_idf(self.df.get(word, 0), self.documents)


def idf_flops(top_ids: torch.Tensor, top_weights: torch.Tensor, idf: torch.Tensor) -> torch.Tensor:
    """IDF-aware FLOPS over a batch of top-K expansions: each head word's batch-mean expansion weight, squared, over
    its idf, summed: common words (long postings, cheap to match) cost more than rare ones."""
    mean = torch.zeros(len(idf)).index_add(0, top_ids.flatten(), top_weights.flatten()) / len(top_ids)
    return (mean.pow(2) / idf.clamp_min(1e-3)).sum()


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
        self.words = DocumentWords(texts, analyzer, tokenizer)
        self.space = WordSpace.build(self.head, list(self.words.df))
        from encoders import pc1

        # PC1 projected out, estimated on this corpus (as the word hybrid's pc1=remove): the aligned words then
        # follow the text rather than the direction every embedding of the embedder shares (Nie et al. 2025, Sec. 5)
        self.pc1 = pc1.estimate(np.asarray(embeddings, dtype=np.float32), "remove")
        adjusted = pc1.adjust(np.asarray(embeddings, dtype=np.float32), self.pc1)
        self.embeddings = torch.from_numpy(np.ascontiguousarray(adjusted, dtype=np.float32))
        self.lm_head = lm_head.float()
        self.analyzer = analyzer
        self.head_idf = torch.tensor([self.words.idf(w) for w in self.head.words])

        self._own_ids = [np.array([self.space.position[w] for w in tf], dtype=np.int64) for tf in self.words.tf]
        self._own_tf = [np.array(list(tf.values()), dtype=np.float32) for tf in self.words.tf]
        self._pieces = []  # per document: (token ids, slot of the own word each piece belongs to)
        for tf, pieces in zip(self.words.tf, self.words.pieces):
            slot = {w: i for i, w in enumerate(tf)}
            pairs = [(int(token), slot[w]) for w, tokens in pieces.items() if w in slot for token in tokens]
            self._pieces.append(np.array(pairs, dtype=np.int64).reshape(-1, 2))
        self.all_columns = torch.arange(len(self.space))
        self.raw_embeddings = np.asarray(embeddings, dtype=np.float32)  # the dense run's space, for neighbours
        self.own_tf = csr_matrix((np.concatenate(self._own_tf + [np.zeros(0, np.float32)]),
                                  (np.repeat(np.arange(len(self._own_ids)), [len(i) for i in self._own_ids]),
                                   np.concatenate(self._own_ids + [np.zeros(0, np.int64)]))),
                                 shape=(len(self._own_ids), len(self.space)), dtype=np.float32)
        self._borrowed: dict[tuple[int, int], csr_matrix] = {}

    def borrowed(self, neighbours: Neighbours) -> csr_matrix:
        """[docs, space] words each document borrows from its neighbours (before the weight), computed once per n."""
        key = (neighbours.n, neighbours.new_words)
        if key not in self._borrowed:
            nearest, cosines = nearest_documents(self.raw_embeddings, neighbours.n)
            self._borrowed[key] = borrowed_words(nearest, cosines, self.own_tf, neighbours.new_words)
        return self._borrowed[key]

    def own(self, rows) -> OwnWords:
        """The documents' own words and their pieces, padded to the longest of them."""
        width = max([len(self._own_ids[r]) for r in rows] + [1])
        ids, tf = np.zeros((len(rows), width), dtype=np.int64), np.zeros((len(rows), width), dtype=np.float32)
        pieces = max([len(self._pieces[r]) for r in rows] + [1])
        tokens, slots = np.zeros((len(rows), pieces), dtype=np.int64), np.full((len(rows), pieces), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, :len(self._own_ids[r])], tf[i, :len(self._own_tf[r])] = self._own_ids[r], self._own_tf[r]
            tokens[i, :len(self._pieces[r])], slots[i, :len(self._pieces[r])] = self._pieces[r][:, 0], self._pieces[r][:, 1]
        return OwnWords(*(torch.from_numpy(a) for a in (ids, tf, tokens, slots)))

    def queries(self, texts: list[str]) -> list[dict[int, float]]:
        """Each query as BM25 reads it: count x idf of its analyzed words that the corpus holds, by space id."""
        out = []
        for text in texts:
            counts = Counter(w for w in self.analyzer.terms(text) if w in self.words.df)
            out.append({self.space.position[w]: c * self.words.idf(w) for w, c in counts.items()})
        return out

    @staticmethod
    def query_matrix(queries: list[dict[int, float]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The queries' word columns (sorted space ids) and their [queries, columns] weights."""
        columns = sorted({c for q in queries for c in q})
        place = {c: i for i, c in enumerate(columns)}
        matrix = torch.zeros((len(queries), len(columns)))
        for row, query in enumerate(queries):
            for column, weight in query.items():
                matrix[row, place[column]] = weight
        return torch.tensor(columns, dtype=torch.long), matrix

    def all_scores(self, student: Student, queries: list[dict[int, float]], chunk: int = 512) -> np.ndarray:
        """[queries, docs] exact student scores over the whole corpus, in document chunks (no gradients)."""
        columns, matrix = self.query_matrix(queries)
        out = []
        with torch.inference_mode():
            for start in range(0, len(self.embeddings), chunk):
                rows = list(range(start, min(start + chunk, len(self.embeddings))))
                weights = student.weights(self.embeddings[rows], self.own(rows), self.head, self.lm_head, self.space,
                                          columns)[0]
                out.append((matrix @ weights.T).numpy())
        scores = np.concatenate(out, axis=1)
        return scores + self.neighbour_scores(student.neighbours, queries) if student.neighbours.on else scores

    def neighbour_scores(self, neighbours: Neighbours, queries: list[dict[int, float]]) -> np.ndarray:
        """[queries, docs] what the borrowed words add to the scores, weight included."""
        columns, matrix = self.query_matrix(queries)
        borrowed = self.borrowed(neighbours)[:, columns.numpy()]
        return neighbours.weight * np.asarray((borrowed @ matrix.numpy().T).T)

    def vectors(self, student: Student, chunk: int = 256) -> list[dict[str, float]]:
        """Every document's {word: weight} through the student (no gradients): what the index holds, unquantized."""
        out: list[dict[str, float]] = []
        words = self.space.words
        borrowed = self.borrowed(student.neighbours) if student.neighbours.on else None
        with torch.inference_mode():
            for start in range(0, len(self.embeddings), chunk):
                rows = list(range(start, min(start + chunk, len(self.embeddings))))
                weights = student.weights(self.embeddings[rows], self.own(rows), self.head, self.lm_head, self.space,
                                          self.all_columns)[0].numpy()
                if borrowed is not None:
                    weights += student.neighbours.weight * borrowed[rows].toarray()
                for row in weights:
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
    student.neighbours = Neighbours(**settings.get("neighbours", {}))  # students kept before neighbours: off
    return student.eval()
