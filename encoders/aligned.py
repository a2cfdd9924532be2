"""Aligned tokens: embeddings -> LM-head logits -> top-K tokens -> integer term weights.

logits = lm_head(e) (the pooled states are already after the final norm, see encoders/embedder.py), computed in
batches so that vocabulary-wide logits never exist for the whole corpus. Weightings of the top-K, all positive:
  logit    s = logit - logit[K+1]           (raw logit above the first token left out)
  log      log(1 + s)                       (SPLADE-style saturation)
  softmax  p = softmax(logits over the whole vocabulary)
Quantisation: w -> max(1, round(w * scale)), clipped at MAX_WEIGHT, with one global scale per collection (stored in
the manifest) so that documents keep their relative weights and queries can be put on the same scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

WEIGHTINGS = ("logit", "log", "softmax")
MAX_WEIGHT = 100
BATCH = 256


@dataclass
class TopK:
    """Per text: its top-K token ids (descending logit) and their float weights."""

    ids: np.ndarray  # [n, K] int64
    weights: np.ndarray  # [n, K] float32


def top_k(embeddings: np.ndarray, lm_head: torch.Tensor, k: int, weighting: str,
          candidates: list[np.ndarray] | None = None) -> TopK:
    """Top-K aligned tokens per embedding; with `candidates`, only those token ids compete (vocab=text)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}")
    vocab = lm_head.shape[0]
    k = min(k, vocab - 1)
    ids_out = np.zeros((len(embeddings), k), dtype=np.int64)
    w_out = np.zeros((len(embeddings), k), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(embeddings), BATCH):
            chunk = torch.from_numpy(np.ascontiguousarray(embeddings[start:start + BATCH])).to(lm_head.device)
            logits = chunk @ lm_head.T
            lse = torch.logsumexp(logits, dim=1, keepdim=True)
            if candidates is not None:
                mask = torch.full_like(logits, float("-inf"))
                for row, allowed in enumerate(candidates[start:start + BATCH]):
                    if len(allowed):
                        idx = torch.from_numpy(np.asarray(allowed, dtype=np.int64)).to(logits.device)
                        mask[row, idx] = 0.0
                logits_sel = logits + mask
            else:
                logits_sel = logits
            values, ids = torch.topk(logits_sel, k + 1, dim=1)
            top, threshold = values[:, :k], values[:, k:k + 1]
            if weighting == "softmax":
                weights = torch.exp(top - lse)
            else:
                finite_min = top.masked_fill(~torch.isfinite(top), float("inf")).min(dim=1, keepdim=True).values
                floor = torch.where(torch.isfinite(threshold), threshold, finite_min - 1)
                shifted = (top - floor).clamp_min(0)
                weights = shifted if weighting == "logit" else torch.log1p(shifted)
            weights = torch.where(torch.isfinite(top), weights, torch.zeros_like(weights))
            ids_out[start:start + len(chunk)] = ids[:, :k].cpu().numpy()
            w_out[start:start + len(chunk)] = weights.cpu().numpy()
    return TopK(ids_out, w_out)


def candidate_logits(embeddings: np.ndarray, lm_head: torch.Tensor, candidates: list[np.ndarray]) -> list[np.ndarray]:
    """The logits of given token ids only (a document's own tokens), computed in batches."""
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(embeddings), BATCH):
            chunk = torch.from_numpy(np.ascontiguousarray(embeddings[start:start + BATCH])).to(lm_head.device)
            logits = chunk @ lm_head.T
            for row, ids in enumerate(candidates[start:start + BATCH]):
                index = torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(logits.device)
                out.append(logits[row, index].cpu().numpy())
    return out


def global_scale(weights: np.ndarray, quantile: float = 0.999) -> float:
    """One scale per collection: its `quantile` weight maps to MAX_WEIGHT (a few outliers get clipped)."""
    positive = weights[weights > 0]
    if positive.size == 0:
        return 1.0
    return float(MAX_WEIGHT / max(np.quantile(positive, quantile), 1e-12))


def quantize(weights: dict[str, float], scale: float) -> dict[str, int]:
    """Float term weights -> positive ints in [1, MAX_WEIGHT]; monotone, zero/negative weights dropped."""
    out = {}
    for term, weight in weights.items():
        if weight > 0:
            out[term] = int(min(MAX_WEIGHT, max(1, round(weight * scale))))
    return out
