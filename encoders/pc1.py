"""First principal component: where an embedder differs from its backbone (Nie et al., 2025, Sec. 5), in one place.

u1 is the top right-singular vector of the centred embedding matrix, its sign fixed so that the corpus mean has a
positive coefficient (so `lambda > 0` moves towards the mean direction and results are reproducible).
`PC1Mode` is the typed lever (`pc1=off|remove|auto|<lambda>`); `estimate` turns it into the manifest entry (mode,
u1, lambda) that `adjust` applies, identically to documents (project) and queries (encoders/queries.py);
`direction`, `removal` and `shift` serve the analyses (analyze, the sweep's lambda curve) with the same arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from common.errors import InputError

MAX_ROWS = 20000
LAMBDA_GRID = tuple(np.round(np.linspace(-2.0, 1.0, 13), 2))  # in units of the mean's PC1 coefficient
AUTO_SAMPLE = 500  # documents pc1=auto scores the local alignment rate on


@dataclass(frozen=True)
class PC1Mode:
    """`off`, `remove` (project u1 out), `auto` (lambda chosen by local alignment) or `shift` by a given lambda."""

    kind: str
    lam: float | None = None

    @classmethod
    def parse(cls, text: str) -> "PC1Mode":
        if text in ("off", "remove", "auto"):
            return cls(text)
        try:
            return cls("shift", float(text))
        except ValueError:
            raise InputError(f"pc1={text}: use off, remove, auto or a number lambda") from None


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


def direction(embeddings: np.ndarray) -> tuple[np.ndarray, float]:
    """u1 and the corpus mean's coefficient on it (the unit lambda is measured in)."""
    mean, directions, _ = principal_components(embeddings, 1)
    return directions[0], float(mean @ directions[0])


def removal(u1: np.ndarray) -> dict:
    return {"mode": "remove", "u1": u1}


def shift(u1: np.ndarray, lam: float) -> dict:
    return {"mode": "shift", "u1": u1, "lambda": lam}


def adjust(embeddings: np.ndarray, entry: dict | None) -> np.ndarray:
    """Apply an entry: `remove` projects u1 out; `shift` adds lambda * u1 (e + lambda u1); None leaves e as is."""
    if not entry:
        return embeddings
    u1 = np.asarray(entry["u1"], dtype=np.float32)
    if entry["mode"] == "remove":
        return embeddings - np.outer(embeddings @ u1, u1).astype(np.float32)
    return embeddings + np.float32(entry["lambda"]) * u1


def estimate(embeddings: np.ndarray, mode: PC1Mode | str,
             score: Callable[[np.ndarray, np.ndarray], float] | None = None) -> dict | None:
    """The manifest entry for a mode: mode, lambda and u1 (estimated on the corpus itself); None for `off`.

    `auto` picks lambda (e + lambda * u1) from LAMBDA_GRID x the corpus mean's PC1 coefficient by `score(adjusted,
    rows)`, e.g. the local alignment rate of the first AUTO_SAMPLE documents: no relevance labels are used.
    """
    mode = PC1Mode.parse(mode) if isinstance(mode, str) else mode
    if mode.kind == "off":
        return None
    mean, directions, singular = principal_components(embeddings, 1)
    u1, coefficient = directions[0], float(mean @ directions[0])
    entry = {"mode": "remove" if mode.kind == "remove" else "shift", "u1": u1.tolist(),
             "mean_coefficient": coefficient, "singular_value": float(singular[0])}
    if mode.kind == "auto":
        if score is None:
            raise ValueError("pc1=auto needs a score function")
        rows = np.arange(min(AUTO_SAMPLE, len(embeddings)))
        grid = {float(t): score(adjust(embeddings[rows], shift(u1, t * coefficient)), rows) for t in LAMBDA_GRID}
        best = max(grid, key=lambda t: (grid[t], -abs(t)))
        entry.update({"lambda": best * coefficient, "auto": {"criterion": "local alignment rate", "grid": grid,
                                                            "chosen_multiple_of_mean_coefficient": best}})
    elif mode.kind == "shift":
        entry["lambda"] = mode.lam
    return entry
