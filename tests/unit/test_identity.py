"""What makes an artifact: names that stay under their roots, corpora refused when unusable, fingerprints."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import layout
from common.errors import InputError
from plumbing.datasets import load_dataset
from plumbing.settings import DataSettings


def _beir(folder: Path, docs: list[dict], queries: list[dict], qrels: str) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels, encoding="utf-8")
    return folder


DOCS = [{"_id": "d1", "title": "", "text": "white matter"}, {"_id": "d2", "title": "t", "text": "grey matter"}]


@pytest.mark.parametrize("name", ["../../escape", "/abs", "x;touch PWNED #", "a/../b", "", "sci fact"])
def test_a_dataset_name_is_a_name(name):
    with pytest.raises(InputError, match="is not a dataset name"):
        DataSettings(name)


def test_paths_stay_under_their_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYTOKENS_INDEXES", str(tmp_path / "i"))
    (tmp_path / "i").mkdir()
    (tmp_path / "i" / "link").symlink_to(tmp_path)  # a folder that leads out
    with pytest.raises(InputError, match="outside"):
        layout.model_dir("link", "..")
    assert layout.model_dir("cqadupstack/android", "smollm2") == tmp_path / "i" / "cqadupstack" / "android" / "smollm2"


def test_a_limited_slice_of_another_split_is_named_apart():
    assert DataSettings("scifact", "test", 5).key == "scifact-limit5"
    assert DataSettings("scifact", "train", 5).key == "scifact-limit5-train"
    assert DataSettings("scifact", "train").key == "scifact"  # the whole corpus is the same for every split


def test_empty_corpus_is_refused_with_the_file(tmp_path):
    folder = _beir(tmp_path / "empty", [], [{"_id": "q1", "text": "matter"}], "q1\td1\t1\n")
    with pytest.raises(InputError, match=r"corpus.jsonl holds 0 documents"):
        load_dataset("x", data_dir=folder)


def test_qrels_that_judge_no_known_query_are_refused(tmp_path):
    folder = _beir(tmp_path / "noq", DOCS, [{"_id": "q1", "text": "matter"}], "q9\td1\t1\n")
    with pytest.raises(InputError, match=r"test.tsv: no judged query"):
        load_dataset("x", data_dir=folder)


def test_fingerprint_tells_corpora_apart(tmp_path):
    one = load_dataset("x", data_dir=_beir(tmp_path / "a", DOCS, [{"_id": "q1", "text": "m"}], "q1\td1\t1\n"))
    two = load_dataset("x", data_dir=_beir(tmp_path / "b", DOCS[:1] + [{**DOCS[1], "text": "gray matter"}],
                                           [{"_id": "q1", "text": "m"}], "q1\td1\t1\n"))
    assert one.fingerprint["documents"] == two.fingerprint["documents"]
    assert one.fingerprint["corpus_sha1"] != two.fingerprint["corpus_sha1"]
    assert one.fingerprint["queries_sha1"] == two.fingerprint["queries_sha1"]


def test_test_qrels_never_stand_in_for_a_tuning_split():
    from plumbing.datasets import ir_datasets_id

    assert ir_datasets_id("arguana", "test") == "beir/arguana"  # a single-split set: that split is test
    with pytest.raises(InputError, match="unknown dataset 'arguana' \\(split 'train'\\)"):
        ir_datasets_id("arguana", "train")
    assert ir_datasets_id("scifact", "train") == "beir/scifact/train"
    assert ir_datasets_id("webis-touche2020", "test") == "beir/webis-touche2020/v2"  # the collection Pyserini reports
