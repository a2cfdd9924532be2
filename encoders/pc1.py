"""First principal component tools: where an embedder differs from its backbone (Nie et al., 2025, Sec. 5).

u1 is the top right-singular vector of the centred embedding matrix, its sign fixed so that the corpus mean has a
positive coefficient (so `lambda > 0` moves towards the mean direction and results are reproducible).
"""
from __future__ import annotations

import numpy as np

MAX_ROWS = 20000


def principal_components(embeddings: np.ndarray, n: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, top-n unit principal directions [n, d] and singular values, on at most MAX_ROWS sampled rows."""
    matrix = embeddings
    if len(matrix) > MAX_ROWS:
        rows = np.random.default_rng(seed).choice(len(matrix), MAX_ROWS, replace=False)
        matrix = matrix[np.sort(rows)]
    matrix = matrix.astype(np.float64)
    mean = matrix.mean(axis=0)
    _, singular, vt = np.linalg.svd(matrix - mean, full_matrices=False)
    directions = vt[:n].copy()
    for row in directions:
        if row @ mean < 0:
            row *= -1
    return mean.astype(np.float32), directions.astype(np.float32), singular[:n].astype(np.float32)


def pc1_setting(embeddings: np.ndarray, mode: str) -> dict | None:
    """The manifest entry for `pc1=off|remove|<lambda>`: mode, lambda and u1 (estimated on the corpus itself)."""
    if mode == "off":
        return None
    mean, directions, singular = principal_components(embeddings, 1)
    u1 = directions[0]
    entry = {"mode": "remove" if mode == "remove" else "shift", "u1": u1.tolist(),
             "mean_coefficient": float(mean @ u1), "singular_value": float(singular[0])}
    if mode != "remove":
        entry["lambda"] = float(mode)
    return entry
