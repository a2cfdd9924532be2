"""Serving on Qdrant: a variant's collection as Qdrant sparse vectors, in process (qdrant-edge) or on a server.

`python -m engines.qdrant` (`make export engine=qdrant`) reads the variant's JsonVectorCollection (the same integer
impacts Lucene indexes) and writes `<variant>/qdrant/`: `terms.json` (term -> u32 index, in order of first
appearance, so a rebuild gives the same ids), `docids.json` (point id -> document id) and `shard/`, a Qdrant Edge
shard with one named sparse vector `tok` per document (Qdrant's own Rust sparse index). The shard is built under
a temporary name and renamed once its point count equals the collection's. With QDRANT_URL set (a user's server
or cluster) the same points go to the collection `keytokens-<dataset>-<model>-<variant>` through qdrant-client.
Search (`make eval engine=qdrant`): QdrantIndex below (engines/retrieval.py lists it among the engines), score = sum of query weight x document
weight over shared terms, exactly Lucene's impact score.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from common.errors import InputError
from plumbing import cli
from plumbing.artifacts import folder_lock, manifest, read_json, write_json
from plumbing.collection import read_collection
from plumbing.runs import Run
from plumbing.settings import DEPTH, DataSettings, ModelSettings, Variant

VECTOR = "tok"
BATCH = 1000


class QdrantIndex:
    """A Qdrant Edge shard of a variant (built below): the same integer impacts, Qdrant's sparse index.

    Ties are ordered by collection row (the order Lucene indexed the documents in), so runs are deterministic."""

    def __init__(self, folder: Path) -> None:
        from qdrant_edge import EdgeShard

        self.terms: dict[str, int] = json.loads((folder / "terms.json").read_text(encoding="utf-8"))
        self.doc_ids: list[str] = json.loads((folder / "docids.json").read_text(encoding="utf-8"))
        self.shard = EdgeShard.load(str(folder / "shard"))

    def search_one(self, query: dict[str, int], k: int = DEPTH) -> list[tuple[str, float]]:
        from qdrant_edge import Query, QueryRequest, SparseVector

        pairs = sorted((self.terms[t], float(w)) for t, w in query.items() if t in self.terms)
        if not pairs:
            return []
        vector = SparseVector(indices=[i for i, _ in pairs], values=[w for _, w in pairs])
        # Ties ordered as Lucene orders them (score, then the external id's UTF-8 bytes), so both engines give the
        # same ranking, not only the same metrics; twice the depth is fetched so ties at the cut are rarely cut apart.
        hits = self.shard.query(QueryRequest(limit=2 * k, query=Query.Nearest(vector, using="tok")))
        ranked = sorted(((self.doc_ids[int(p.id)], float(p.score)) for p in hits),
                        key=lambda hit: (-hit[1], hit[0].encode("utf-8")))
        return ranked[:k]

    def search(self, queries: dict[str, dict[str, int]], k: int = DEPTH, threads: int = 1) -> Run:
        return {qid: self.search_one(terms, k) for qid, terms in queries.items()}

    def close(self) -> None:
        self.shard.close()



def qdrant_dir(variant_folder: Path) -> Path:
    return variant_folder / "qdrant"


def build_points(collection: Path) -> tuple[list[str], dict[str, int], list[tuple[np.ndarray, np.ndarray]]]:
    """Doc ids, the term dictionary, and each document's (indices, values) as compact arrays, from a collection."""
    terms: dict[str, int] = {}
    doc_ids, vectors = [], []
    for obj in read_collection(collection):
        doc_ids.append(obj["id"])
        ids = np.array([terms.setdefault(term, len(terms)) for term in obj["vector"]], dtype=np.uint32)
        values = np.array(list(obj["vector"].values()), dtype=np.float32)
        order = np.argsort(ids)
        vectors.append((ids[order], values[order]))
    return doc_ids, terms, vectors


def build_edge_shard(folder: Path, vectors: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """A Qdrant Edge shard of the vectors (point id = row), built under `<folder>.tmp` and renamed when complete."""
    from qdrant_edge import EdgeConfig, EdgeShard, EdgeSparseVectorParams, Point, SparseVector, UpdateOperation

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.time()
    shard = EdgeShard.create(str(tmp), EdgeConfig(sparse_vectors={VECTOR: EdgeSparseVectorParams()}))
    for start in range(0, len(vectors), BATCH):
        points = [Point(row, {VECTOR: SparseVector(indices=ids.tolist(), values=values.tolist())})
                  for row, (ids, values) in enumerate(vectors[start:start + BATCH], start=start)]
        shard.update(UpdateOperation.upsert_points(points))
    shard.flush()
    count = shard.info().points_count
    shard.close()
    if count != len(vectors):
        raise InputError(f"Qdrant shard {tmp} holds {count} points but the collection has {len(vectors)}; rerun the export")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"points": count, "seconds": round(time.time() - started, 1), "bytes": size}


def upload_to_server(url: str, name: str, doc_ids: list[str], vectors: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """The same points into a Qdrant server or cluster collection through qdrant-client (QDRANT_URL)."""
    try:
        from qdrant_client import QdrantClient, models
    except ImportError:
        raise InputError("QDRANT_URL is set but qdrant-client is not installed: `.venv/bin/pip install qdrant-client`") from None
    client = QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY"))
    if client.collection_exists(name):
        client.delete_collection(name)
    client.create_collection(name, vectors_config={}, sparse_vectors_config={VECTOR: models.SparseVectorParams()})
    for start in range(0, len(vectors), BATCH):
        client.upsert(name, points=[
            models.PointStruct(id=row, vector={VECTOR: models.SparseVector(indices=ids.tolist(), values=values.tolist())},
                               payload={"doc_id": doc_ids[row]})
            for row, (ids, values) in enumerate(vectors[start:start + BATCH], start=start)])
    return {"url": url, "collection": name, "points": client.count(name).count}


def export(data: DataSettings, model: ModelSettings, variant: Variant, index: str | None = None) -> Path:
    """The variant's collection as Qdrant sparse vectors (an Edge shard here; QDRANT_URL: also a server collection)."""
    folder = Path(index) if index else variant.dir(data, model)
    info = read_json(folder / "manifest.json", "collection manifest (run `make index` first)")
    out = qdrant_dir(folder)
    with folder_lock(out):
        done = out / "manifest.json"
        if done.exists() and read_json(done).get("collection_written") == info["written"] and not os.environ.get("QDRANT_URL"):
            print(f"qdrant shard up to date: {out / 'shard'}")
            return out
        doc_ids, terms, vectors = build_points(folder / "collection")
        write_json(out / "terms.json", terms)
        write_json(out / "docids.json", doc_ids)
        stats = build_edge_shard(out / "shard", vectors)
        server = None
        if os.environ.get("QDRANT_URL"):
            name = f"keytokens-{data.key}-{model.name}-{folder.name}".replace("/", "-")
            server = upload_to_server(os.environ["QDRANT_URL"], name, doc_ids, vectors)
        write_json(done, manifest("export", engine="qdrant", model=info["model"], variant=folder.name,
                                  collection_written=info["written"], terms=len(terms), shard=stats, server=server))
    print(f"qdrant: {out / 'shard'} ({stats['points']} points, {len(terms)} terms, {stats['bytes'] / 1e6:.1f} MB)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("engines.qdrant", __doc__, cli.dataset_options, cli.model_options, cli.variant_options)
    parser.add_argument("--index", default=None, help="explicit variant folder (default: from model and variant options)")
    args = parser.parse_args(argv)
    model = cli.model_settings(args)
    export(cli.data_settings(args), model, cli.variant(args, model), args.index)
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
