"""SPLADE, the learned-sparse competitor, through the same encode -> project -> index -> search stages.

Weights are the standard SPLADE max pooling: w_j = max over positions of log(1 + relu(MLM logit_j)), masked by
attention, for queries and documents alike. The MLM head yields a vocabulary-wide row per position, so the
log/relu/max is done per batch and only the non-zero entries are kept. Works for any naver/splade checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from encoders.models import LoadedModel
from encoders.presets import Preset


@dataclass
class SparseBatch:
    """Per text: non-zero vocabulary ids and their float weights, in input order."""

    ids: list[np.ndarray]
    weights: list[np.ndarray]
    token_ids: list[np.ndarray]
    truncated: np.ndarray


class SpladeEncoder:
    def __init__(self, preset: Preset, loaded: LoadedModel) -> None:
        self.preset = preset
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer

    @torch.inference_mode()
    def encode(self, texts: list[str], is_query: bool = False, progress=None) -> SparseBatch:
        max_length = self.preset.query_max_length if is_query else self.preset.max_length
        own = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: (-len(own[i]), i))
        ids_out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(texts)
        w_out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(texts)
        for start in range(0, len(order), self.preset.batch_size):
            batch = order[start:start + self.preset.batch_size]
            enc = self.tokenizer([texts[i] for i in batch], truncation=True, max_length=max_length, padding=True,
                                 return_tensors="pt").to(self.loaded.device)
            logits = self.loaded.model(**enc).logits
            weights = torch.log1p(torch.relu(logits)) * enc["attention_mask"].unsqueeze(-1)
            pooled = weights.max(dim=1).values
            for row, i in enumerate(batch):
                nz = torch.nonzero(pooled[row]).squeeze(1)
                ids_out[i] = nz.cpu().numpy()
                w_out[i] = pooled[row, nz].float().cpu().numpy()
            if progress is not None:
                progress.update(len(batch))
        truncated = np.array([len(ids) > max_length - 2 for ids in own], dtype=bool)
        return SparseBatch(ids_out, w_out, [np.asarray(ids, dtype=np.int32) for ids in own], truncated)
