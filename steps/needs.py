"""What a run needs, resolved in one place: the embeddings, the BM25 index, a variant's collection and Lucene index.

A stage that runs searches (evaluate, search, train's hard negatives) asks a `Needs` for the artifacts instead of
calling encode, project and index itself, so a full `make eval` reaches each of those stages through this one door,
once per artifact and process. Each stage it calls is resumable and checks its inputs (a changed corpus is rebuilt,
an up-to-date one is reused), so asking is cheap when nothing is missing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from plumbing.datasets import Dataset
from plumbing.settings import DataSettings, ModelSettings, Variant


class Needs:
    """The artifacts of one dataset slice, built where missing and remembered once resolved."""

    def __init__(self, dataset: Dataset, data: DataSettings, threads: int = 2) -> None:
        self.dataset, self.data, self.threads = dataset, data, threads
        self._resolved: dict[tuple, Path] = {}

    def _once(self, key: tuple, build: Callable[[], Path]) -> Path:
        if key not in self._resolved:
            self._resolved[key] = build()
        return self._resolved[key]

    def embeddings(self, model: ModelSettings) -> Path:
        """The model's embedding shards of the corpus (the encode stage)."""
        from steps.encode import encode_corpus

        return self._once(("embeddings", model), lambda: encode_corpus(self.dataset, self.data, model))

    def bm25(self) -> Path:
        """The Lucene BM25 index of title + text."""
        from steps.index import bm25_index

        return self._once(("bm25",), lambda: bm25_index(self.dataset, self.data.key, self.threads))

    def sparse_index(self, model: ModelSettings, variant: Variant) -> Path:
        """The variant's Lucene impact index, projecting its collection from the embeddings first where missing."""
        from steps.index import index_variant

        self.embeddings(model)
        return self._once(("sparse", model, variant), lambda: index_variant(self.data, model, variant, self.threads))
