"""The JsonVectorCollection format the impact index reads: `{"id", "contents", "vector": {term: int}}` lines.

Written in parts of COLLECTION_PART documents. Anserini skips documents without terms; EMPTY_TERM (no tokenizer term
can equal it: `<` and `:` around a space-free word are kept, but `keytokens:empty` is no vocabulary entry) keeps
them in the index so document counts match the corpus, and the index stage leaves it out of the df table.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from plumbing.artifacts import write_text

COLLECTION_PART = 10_000
EMPTY_TERM = "<keytokens:empty>"
QUERY_DF = "query_df.json"  # beside a collection whose queries take idf from another table than the index's df


def write_collection(folder: Path, doc_ids: list[str], vectors: list[dict[str, int]]) -> dict:
    """The collection's parts (any older parts removed first, so a smaller corpus leaves none behind) and its
    counts for the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.jsonl"):
        old.unlink()
    lengths = [len(v) for v in vectors]
    for number, start in enumerate(range(0, len(doc_ids), COLLECTION_PART)):
        part = slice(start, start + COLLECTION_PART)
        lines = [json.dumps({"id": doc_id, "contents": "", "vector": vector or {EMPTY_TERM: 1}}, ensure_ascii=False)
                 for doc_id, vector in zip(doc_ids[part], vectors[part])]
        write_text(folder / f"part-{number:05d}.jsonl", "\n".join(lines) + "\n")
    return {"documents": len(doc_ids), "documents_without_terms": int(sum(n == 0 for n in lengths)),
            "avg_terms_per_document": round(float(np.mean(lengths)) if lengths else 0.0, 1),
            "postings_weight_sum": int(sum(sum(v.values()) for v in vectors))}


def read_collection(folder: Path) -> Iterator[dict]:
    """Each document's line `{"id", "contents", "vector"}`, in the order `write_collection` wrote them."""
    for part in sorted(folder.glob("part-*.jsonl")):
        with part.open(encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)


def collection_vectors(folder: Path) -> dict[str, dict[str, int]]:
    """{doc id: {term: impact}}, without the placeholder an empty document carries."""
    return {obj["id"]: {t: w for t, w in obj["vector"].items() if t != EMPTY_TERM} for obj in read_collection(folder)}
