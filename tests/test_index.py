"""encode -> project -> index on a real scifact slice with the real SmolLM2 weights."""
from __future__ import annotations

import json

import numpy as np

from engines.lucene import lucene_doc_count
from plumbing.shards import shard_paths
from steps.encode import encode_corpus
from steps.index import index_variant
from steps.project import project
from tests.conftest import slice_data, slice_model, variant

KEY_WORDS = {"white", "matter", "brain", "cerebral", "newborn", "neonatal", "neuro", "infant", "diffusion"}


def _collection(folder):
    lines = []
    for part in sorted((folder / "collection").glob("part-*.jsonl")):
        lines += [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines()]
    return lines


def test_embeddings_manifest(embeddings, sliced):
    info = json.loads((embeddings / "manifest.json").read_text())
    assert info["complete"] and info["counts"]["documents"] == len(sliced.corpus) == 50
    assert info["preset"]["pooling"] == "prompteol"
    vectors = np.load(shard_paths(embeddings, 0)[0])
    assert vectors.dtype == np.float32 and vectors.shape == (50, 576)


def test_aligned_tokens_of_known_passage_hold_its_key_words(embeddings):
    folder = project(slice_data(), slice_model(), variant(source="aligned", k=128, vocab="all", pc1="remove", terms="tokens"))
    docs = _collection(folder)
    hits = {d["id"]: len(KEY_WORDS & set(d["vector"])) for d in docs}
    assert hits["4983"] >= 3, hits["4983"]  # cerebral white matter in newborns: brain, neonatal, neuro (measured)
    assert max(n for doc_id, n in hits.items() if doc_id != "4983") <= 1  # and no other passage of the slice


def test_collection_lines_hold_positive_ints_within_scale(embeddings):
    folder = project(slice_data(), slice_model(), variant(source="aligned", k=64, vocab="all", pc1="off", weighting="logit", normalize="off",
                                                                  terms="tokens"))
    docs = _collection(folder)
    assert len(docs) == 50
    for doc in docs:
        assert doc["contents"] == ""
        assert all(isinstance(w, int) and 1 <= w <= 100 for w in doc["vector"].values())
        assert 0 < len(doc["vector"]) <= 64
    assert any(term.startswith("Ġ") for doc in docs for term in doc["vector"])  # raw tokens kept verbatim


def test_index_has_corpus_count_and_df(embeddings):
    lucene = index_variant(slice_data(), slice_model(), variant())
    assert lucene_doc_count(lucene) == 50
    df = json.loads((lucene / "df.json").read_text())
    assert df["documents"] == 50 and all(v >= 1 for v in df["df"].values())


def test_project_twice_gives_same_bytes_and_another_k_reuses_embeddings(embeddings):
    stamp = {p: p.stat().st_mtime_ns for p in embeddings.glob("part-*")}
    first = project(slice_data(), slice_model(), variant(source="aligned", k=32, vocab="all"))
    before = {p.name: p.read_bytes() for p in (first / "collection").glob("*.jsonl")}
    (first / "manifest.json").unlink()  # force a rebuild
    again = project(slice_data(), slice_model(), variant(source="aligned", k=32, vocab="all"))
    assert {p.name: p.read_bytes() for p in (again / "collection").glob("*.jsonl")} == before
    other = project(slice_data(), slice_model(), variant(source="aligned", k=8, vocab="all"))
    assert all(len(d["vector"]) <= 8 for d in _collection(other))
    assert {p: p.stat().st_mtime_ns for p in embeddings.glob("part-*")} == stamp


def test_resume_after_interruption_is_byte_identical(embeddings, sliced, tmp_path, monkeypatch):
    """On a copy of the shared embeddings (other tests keep theirs untouched, whatever the order)."""
    import shutil

    monkeypatch.setenv("KEYTOKENS_INDEXES", str(tmp_path / "indexes"))
    copy = slice_model().embeddings_dir(slice_data())
    shutil.copytree(embeddings, copy, ignore=shutil.ignore_patterns(".lock*"))
    embeddings = copy
    vectors, meta = shard_paths(embeddings, 0)
    expected = (vectors.read_bytes(), meta.read_bytes())
    vectors.unlink()  # a killed run: the shard's last file never got renamed into place
    vectors.with_name(vectors.name + ".tmp").write_bytes(b"partial")
    encode_corpus(sliced, slice_data(), slice_model())
    assert (vectors.read_bytes(), meta.read_bytes()) == expected
    info = json.loads((embeddings / "manifest.json").read_text())
    assert info["timings"]["shards_encoded_last_run"] == 1  # the rerun redid exactly the interrupted shard
    assert not vectors.with_name(vectors.name + ".tmp").exists()
