"""First principal component tools: where an embedder differs from its backbone (Nie et al., 2025, Sec. 5).

u1 is the top right-singular vector of the centred embedding matrix, its sign fixed so that the corpus mean has a
positive coefficient (so `lambda > 0` moves towards the mean direction and results are reproducible).
"""
from __future__ import annotations

from typing import Callable

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


LAMBDA_GRID = tuple(np.round(np.linspace(-2.0, 1.0, 13), 2))  # in units of the mean's PC1 coefficient
AUTO_SAMPLE = 500


def pc1_setting(embeddings: np.ndarray, mode: str,
                score: Callable[[np.ndarray, np.ndarray], float] | None = None) -> dict | None:
    """The manifest entry for `pc1=off|remove|auto|<lambda>`: mode, lambda and u1 (estimated on the corpus itself).

    `auto` picks lambda (e + lambda * u1) from LAMBDA_GRID x the corpus mean's PC1 coefficient by `score(adjusted,
    rows)`, e.g. the local alignment rate of the first AUTO_SAMPLE documents: no relevance labels are used.
    """
    if mode == "off":
        return None
    mean, directions, singular = principal_components(embeddings, 1)
    u1 = directions[0]
    coefficient = float(mean @ u1)
    entry = {"mode": "remove" if mode == "remove" else "shift", "u1": u1.tolist(),
             "mean_coefficient": coefficient, "singular_value": float(singular[0])}
    if mode == "auto":
        if score is None:
            raise ValueError("pc1=auto needs a score function")
        rows = np.arange(min(AUTO_SAMPLE, len(embeddings)))
        grid = {float(t): score(embeddings[rows] + np.float32(t * coefficient) * u1, rows) for t in LAMBDA_GRID}
        best = max(grid, key=lambda t: (grid[t], -abs(t)))
        entry.update({"lambda": best * coefficient, "auto": {"criterion": "local alignment rate", "grid": grid,
                                                            "chosen_multiple_of_mean_coefficient": best}})
    elif mode != "remove":
        entry["lambda"] = float(mode)
    return entry
