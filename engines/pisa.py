"""PISA over an impact collection: build and search, the engine `make scale engines=pisa` measures beside Lucene.

PISA (pisa-engine, C++) ships on PyPI inside pyterrier-pisa as one compiled module, `_pisathon`. Its PyTerrier
wrapper (and PyTerrier itself) is not needed and not imported: the module is loaded from the package's folder, and
pyterrier-pisa is installed with --no-deps (requirements-models.txt). Its own toks indexer inverts in Python lists,
too slow at 1M documents, so the collection is inverted here with numpy into PISA's binary collection (uint32
sequences of [length, values...]: inv.docs with a [1, documents] header, inv.freqs, inv.sizes), terms in sorted
order as its lexicon wants. PISA then compresses it (block_simdbp) with block-max data for its `quantized` scorer:
score = query weight x stored impact, Lucene's impact similarity, so scores are the same numbers. The query weight
is an integer (PISA's Python entry repeats each term `weight` times), as ours are. Exact search (MaxScore);
ties are ordered by PISA's docid (collection order), not by document id as Lucene orders them.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import time
from array import array
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from common.errors import InputError
from plumbing.collection import read_collection
from plumbing.runs import Run
from plumbing.settings import DEPTH

ENCODING = "block_simdbp"
ALGORITHM = "maxscore"  # 100k synthetic docs, k=1000: maxscore 7.9 ms, block-max MaxScore 9.5, WAND 12.3, block-max WAND 18.6


@lru_cache(maxsize=1)
def pisathon():
    """PISA's compiled module, loaded without running pyterrier_pisa/__init__.py (which imports PyTerrier)."""
    spec = importlib.util.find_spec("pyterrier_pisa")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("PISA is not installed; run `make setup` (pyterrier-pisa, from requirements-models.txt)")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("_pisathon*.so"))
    if not found:
        raise InputError(f"no _pisathon module in {spec.submodule_search_locations[0]}; reinstall pyterrier-pisa")
    loader = importlib.machinery.ExtensionFileLoader("_pisathon", str(found[0]))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("_pisathon", loader))
    loader.exec_module(module)
    return module


@contextmanager
def _quiet() -> Iterator[None]:
    """PISA's C++ core prints a progress line per percent while it compresses: sent to /dev/null, not the log."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 1)
        os.dup2(sink, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, sink):
            os.close(fd)


def _sequences(counts: np.ndarray, values: np.ndarray, header: list[int]) -> np.ndarray:
    """PISA's binary sequence file: the header, then [count, values of that list...] for each list in turn."""
    out = np.empty(len(header) + len(counts) + len(values), dtype=np.uint32)
    out[:len(header)] = header
    before = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=before[1:])
    starts = len(header) + np.arange(len(counts), dtype=np.int64) + before
    out[starts] = counts
    mask = np.ones(len(out), dtype=bool)
    mask[:len(header)] = False
    mask[starts] = False
    out[mask] = values
    return out


def build_pisa(collection: Path, folder: Path) -> dict:
    """Invert a JsonVectorCollection folder into a PISA index in `folder`; returns seconds and bytes."""
    started = time.time()
    folder.mkdir(parents=True, exist_ok=True)
    lexicon: dict[str, int] = {}
    terms, weights, lengths = array("I"), array("I"), array("I")
    with (folder / "fwd.documents").open("w", encoding="utf-8") as documents:
        for obj in read_collection(collection):
            vector = obj["vector"]
            documents.write(obj["id"] + "\n")
            terms.extend(lexicon.setdefault(term, len(lexicon)) for term in vector)
            weights.extend(int(w) for w in vector.values())
            lengths.append(len(vector))
    names = list(lexicon)
    order = sorted(range(len(names)), key=names.__getitem__)
    new_id = np.empty(len(names), dtype=np.uint32)
    new_id[order] = np.arange(len(names), dtype=np.uint32)
    (folder / "fwd.terms").write_text("".join(names[i] + "\n" for i in order), encoding="utf-8")
    term_ids = new_id[np.frombuffer(terms, dtype=np.uint32)]
    del terms
    lengths_np = np.frombuffer(lengths, dtype=np.uint32)
    docs = np.repeat(np.arange(len(lengths_np), dtype=np.uint32), lengths_np)
    by_term = np.argsort(term_ids, kind="stable")  # stable: each list keeps increasing docids
    counts = np.bincount(term_ids, minlength=len(names)).astype(np.uint32)
    impacts = np.frombuffer(weights, dtype=np.uint32)
    _sequences(counts, docs[by_term], [1, len(lengths_np)]).tofile(folder / "inv.docs")
    _sequences(counts, impacts[by_term], []).tofile(folder / "inv.freqs")
    sizes = np.bincount(docs, weights=impacts, minlength=len(lengths_np)).astype(np.uint32)
    np.concatenate([[len(lengths_np)], sizes]).astype(np.uint32).tofile(folder / "inv.sizes")
    module = pisathon()
    module.build_binlex(str(folder / "fwd.documents"), str(folder / "fwd.doclex"))
    module.build_binlex(str(folder / "fwd.terms"), str(folder / "fwd.termlex"))
    PisaIndex(folder)  # the first open compresses and writes the block-max data
    compressed = [p for p in folder.iterdir() if p.name.startswith("quantized.")]
    return {"build_seconds": round(time.time() - started, 1), "bytes": sum(p.stat().st_size for p in compressed)}


class PisaIndex:
    """A PISA index over impacts: `search_one({term: int weight}, k) -> [(docid, score)]`, best first."""

    def __init__(self, folder: Path) -> None:
        module = pisathon()
        self.module = module
        self.context = module.RetrievalContext()
        with _quiet():  # compresses and writes the block-max data on first open
            module.prepare_index(self.context, str(folder), ENCODING, "quantized", "", quantize=0, stop_fname="")

    def search_one(self, terms: dict[str, int], k: int) -> list[tuple[str, float]]:
        docnos = np.empty(k, dtype=object)
        scores = np.empty(k, dtype=np.float32)
        size = self.module.retrieve(self.context, ALGORITHM, [(0, {t: float(w) for t, w in terms.items()})], k=k,
                                    threads=1, pretokenised=True, query_weighted=1,
                                    result_qidxs=np.empty(k, dtype=np.int32), result_docnos=docnos,
                                    result_ranks=np.empty(k, dtype=np.int32), result_scores=scores)
        return list(zip(docnos[:size].tolist(), scores[:size].tolist()))

    def search(self, queries: dict[str, dict[str, int]], k: int = DEPTH, threads: int = 1) -> Run:
        return {qid: self.search_one(terms, k) for qid, terms in queries.items()}

    def close(self) -> None:
        self.context = None
