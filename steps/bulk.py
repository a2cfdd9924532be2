"""OpenSearch / Elasticsearch bulk files of a variant: features, documents, query bodies.

The functions behind `python -m pipeline.bulk` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import json
from pathlib import Path

from plumbing.artifacts import read_json, write_json, write_text
from plumbing.collection import read_collection
from plumbing.settings import DataSettings, ModelSettings, QuerySettings, Variant

FIELD = "keytokens"
ENGINES = {"opensearch": ("rank_features", "neural_sparse", "query_tokens"),
           "elastic": ("sparse_vector", "sparse_vector", "query_vector")}


def feature_name(token: str) -> str:
    return token.replace("%", "%25").replace(".", "%2E")


def token_of(feature: str) -> str:
    return feature.replace("%2E", ".").replace("%25", "%")


def features(vector: dict[str, int]) -> dict[str, int]:
    return {feature_name(token): int(weight) for token, weight in vector.items()}


def query_body(engine: str, vector: dict[str, int], k: int = 1000) -> dict:
    _, query_type, key = ENGINES[engine]
    if engine == "elastic":
        return {"size": k, "query": {query_type: {"field": FIELD, key: features(vector)}}}
    return {"size": k, "query": {query_type: {FIELD: {key: features(vector)}}}}


def write_bulk(out: Path, engine: str, index_name: str, documents, queries: dict[str, dict[str, int]]) -> dict:
    """index.json (settings + mappings), documents.ndjson (`_bulk` action and source lines), queries.ndjson."""
    field_type, _, _ = ENGINES[engine]
    write_json(out / "index.json", {"mappings": {"properties": {"id": {"type": "keyword"}, FIELD: {"type": field_type}}}})
    lines, count = [], 0
    for doc_id, vector in documents:
        lines.append(json.dumps({"index": {"_index": index_name, "_id": doc_id}}, ensure_ascii=False))
        lines.append(json.dumps({"id": doc_id, FIELD: features(vector)}, ensure_ascii=False))
        count += 1
    write_text(out / "documents.ndjson", "\n".join(lines) + "\n")
    write_text(out / "queries.ndjson", "".join(json.dumps({"qid": qid, **query_body(engine, vector)}, ensure_ascii=False)
                                                 + "\n" for qid, vector in queries.items()))
    return {"engine": engine, "index": index_name, "documents": count, "queries": len(queries)}


def export(data: DataSettings, model: ModelSettings, variant: Variant, engine: str) -> Path:
    """The variant's collection and its `query=tokens` queries as bulk files for one engine."""
    from plumbing.index_queries import encode_queries

    folder = variant.dir(data, model)
    info = read_json(folder / "manifest.json", "collection manifest (run `make index` first)")
    dataset = data.load()
    queries = encode_queries(dataset, model, QuerySettings(), folder, info)
    documents = ((obj["id"], obj["vector"]) for obj in read_collection(folder / "collection"))
    out = folder / "bulk" / engine
    stats = write_bulk(out, engine, f"keytokens-{data.key}-{model.name}-{folder.name}".lower().replace("/", "-"),
                       documents, queries)
    print(f"{engine}: {out} ({stats['documents']} documents, {stats['queries']} queries)")
    return out
