"""The JsonVectorCollection format the impact index reads: `{"id", "contents", "vector": {term: int}}` lines.

Written in parts of COLLECTION_PART documents. Anserini skips documents without terms; EMPTY_TERM (no tokenizer term
can equal it: `<` and `:` around a space-free word are kept, but `keytokens:empty` is no vocabulary entry) keeps
them in the index so document counts match the corpus, and the index stage leaves it out of the df table.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from plumbing.artifacts import write_text

COLLECTION_PART = 10_000
EMPTY_TERM = "<keytokens:empty>"
QUERY_DF = "query_df.json"  # beside a collection whose queries take idf from another table than the index's df


def write_collection(folder: Path, doc_ids: list[str], vectors: list[dict[str, int]]) -> dict:
    lengths = [len(v) for v in vectors]
    for number, start in enumerate(range(0, len(doc_ids), COLLECTION_PART)):
        part = slice(start, start + COLLECTION_PART)
        lines = [json.dumps({"id": doc_id, "contents": "", "vector": vector or {EMPTY_TERM: 1}}, ensure_ascii=False)
                 for doc_id, vector in zip(doc_ids[part], vectors[part])]
        write_text(folder / f"part-{number:05d}.jsonl", "\n".join(lines) + "\n")
    return {"documents": len(doc_ids), "documents_without_terms": int(sum(n == 0 for n in lengths)),
            "avg_terms_per_document": round(float(np.mean(lengths)) if lengths else 0.0, 1),
            "postings_weight_sum": int(sum(sum(v.values()) for v in vectors))}
