"""The paper's alignment metrics between a text's own tokens and its aligned tokens (Nie et al. 2025, Sec. 3).

For a text with distinct own tokens T and aligned tokens ranked by logit:
  hit@k      1 if any of the top-k aligned tokens is in T
  local      |T ∩ top-|T| aligned| / |T|, averaged over texts
  global     |∪ (T_i ∩ top-|T_i| aligned_i)| / |∪ T_i| over the whole set
Tokens are compared as index terms of one Vocabulary, so the same code gives the raw (normalize=off) and the
normalised (normalize=on) figures.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from encoders.vocab import Vocabulary


@dataclass
class Alignment:
    hit_at_k: float
    local: float
    global_rate: float
    texts: int

    def as_dict(self) -> dict:
        return {"hit@k": round(self.hit_at_k, 4), "local": round(self.local, 4), "global": round(self.global_rate, 4),
                "texts": self.texts}


def alignment_from_lists(own: list[set[str]], ranked: list[list[str]], k: int) -> Alignment:
    """Metrics from each text's own term set and its aligned terms in descending order."""
    hits, locals_, matched, union = [], [], set(), set()
    for terms, aligned in zip(own, ranked):
        if not terms:
            continue
        hits.append(bool(set(aligned[:k]) & terms))
        top = set(aligned[:len(terms)])
        found = terms & top
        locals_.append(len(found) / len(terms))
        matched |= found
        union |= terms
    n = len(hits)
    return Alignment(float(np.mean(hits)) if n else 0.0, float(np.mean(locals_)) if n else 0.0,
                     len(matched) / len(union) if union else 0.0, n)


def ranked_terms(vocab: Vocabulary, embeddings: np.ndarray, lm_head: torch.Tensor, depth: int) -> list[list[str]]:
    """Each embedding's aligned terms, best first, distinct, from its top-`depth` tokens."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(embeddings), 256):
            logits = torch.from_numpy(np.ascontiguousarray(embeddings[start:start + 256])) @ lm_head.T
            ids = torch.topk(logits, min(depth, logits.shape[1]), dim=1).indices.numpy()
            for row in ids:
                seen: dict[str, None] = {}
                for token_id in row:
                    term = vocab.terms[int(token_id)]
                    if term is not None:
                        seen.setdefault(term, None)
                out.append(list(seen))
    return out


def measure(vocab: Vocabulary, embeddings: np.ndarray, lm_head: torch.Tensor, token_ids: list[np.ndarray],
            k: int = 10) -> tuple[Alignment, list[set[str]], list[list[str]]]:
    """Alignment of embeddings with their texts' own tokens (in `vocab`'s term space)."""
    own = [set(vocab.own_term_counts(ids)) for ids in token_ids]
    depth = max([k] + [4 * len(t) for t in own])
    ranked = ranked_terms(vocab, embeddings, lm_head, min(depth, 4096))
    return alignment_from_lists(own, ranked, k), own, ranked
