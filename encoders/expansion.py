"""The word expansion (`source=expansion`, terms=words): the paper's representation, trained to be an index.

A document is its own analyzed words at BM25's saturated tf, plus the top-K words its pooled embedding decodes to
through the LM head: a word's logit is the max over the vocabulary tokens that start it (encoders/words.py), and its
expansion weight is log(1 + logit - the (K+1)-th word's logit), added to the word's tf (an own word can be boosted,
a new word is added). Queries stay a lookup: their analyzed words with BM25 idf, no LLM. The same torch function
serves `make train objective=joint sparse_target=expansion` (with gradients into the embedder; the head is frozen)
and `make index source=expansion terms=words` (without), so the index holds what training optimised.
"""
from __future__ import annotations

import numpy as np
import torch

from encoders.words import WordVocabulary

EXPANSION_K = 64  # expansion words per document: postings per document are bounded by own words + K


class WordHead:
    """The LM head folded onto the word vocabulary (max over the tokens that start each word)."""

    def __init__(self, vocab: WordVocabulary) -> None:
        self.words = sorted({t for t in vocab.terms if t is not None})
        position = {w: i for i, w in enumerate(self.words)}
        token_word = np.array([position[t] if t is not None else -1 for t in vocab.terms], dtype=np.int64)
        self.tokens = torch.from_numpy(np.flatnonzero(token_word >= 0))  # token ids that start a word
        self.token_word = torch.from_numpy(token_word[token_word >= 0])  # ... and the word each one starts

    def __len__(self) -> int:
        return len(self.words)

    def word_logits(self, embeddings: torch.Tensor, lm_head: torch.Tensor) -> torch.Tensor:
        """[batch, words]: each word's logit, the max over its tokens' logits."""
        logits = embeddings.float() @ lm_head[self.tokens.to(lm_head.device)].float().T
        return self._fold(logits)

    def fold_token_logits(self, token_logits: torch.Tensor) -> torch.Tensor:
        """[batch, words] from logits over the whole vocabulary [batch, tokens] (already computed elsewhere)."""
        return self._fold(token_logits[:, self.tokens.to(token_logits.device)])

    def _fold(self, logits: torch.Tensor) -> torch.Tensor:
        index = self.token_word.to(logits.device).expand(len(logits), -1)
        return logits.new_full((len(logits), len(self.words)), float("-inf")).scatter_reduce(
            1, index, logits, reduce="amax")

    def expansion(self, embeddings: torch.Tensor, lm_head: torch.Tensor, k: int = EXPANSION_K
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per document the top-k word indexes and their weights log(1 + logit - logit of the (k+1)-th word)."""
        k = min(k, len(self.words) - 1)
        values, ids = self.word_logits(embeddings, lm_head).topk(k + 1, dim=1)
        weights = torch.log1p((values[:, :k] - values[:, k:k + 1]).clamp_min(0))
        return ids[:, :k], weights

    def expansion_dicts(self, embeddings: np.ndarray, lm_head: torch.Tensor, k: int = EXPANSION_K,
                        batch: int = 64) -> list[dict[str, float]]:
        """The expansion of stored embeddings as {word: weight} per document (no gradients), in batches."""
        out: list[dict[str, float]] = []
        with torch.inference_mode():
            for start in range(0, len(embeddings), batch):
                chunk = torch.from_numpy(np.ascontiguousarray(embeddings[start:start + batch])).to(lm_head.device)
                ids, weights = self.expansion(chunk, lm_head, k)
                for row_ids, row_weights in zip(ids.cpu().numpy(), weights.cpu().numpy()):
                    out.append({self.words[i]: float(w) for i, w in zip(row_ids, row_weights) if w > 0})
        return out


def expanded(own_tf: dict[str, float], expansion: dict[str, float]) -> dict[str, float]:
    """A document's indexed weights: own words' BM25 tf plus their expansion weight, and the new expansion words."""
    out = dict(own_tf)
    for word, weight in expansion.items():
        out[word] = out.get(word, 0.0) + weight
    return out
