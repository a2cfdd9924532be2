"""Dataset layer on the real scifact folder, the real ir_datasets path, and broken inputs."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from common.errors import InputError
from plumbing.datasets import load_dataset
from tests.conftest import REPO, beir_dir


def test_full_scifact_counts():
    dataset = load_dataset("scifact", "test")
    assert len(dataset.corpus) == 5183
    assert len(dataset.queries) == 300
    assert sum(len(v) for v in dataset.qrels.values()) == 339
    assert list(dataset.corpus)[0] == "4983"
    train = load_dataset("scifact", "train")
    assert len(train.queries) == 809 and sum(len(v) for v in train.qrels.values()) == 919


def test_limit_slice_is_deterministic_and_keeps_judged_docs():
    first = load_dataset("scifact", "test", limit=5)
    again = load_dataset("scifact", "test", limit=5)
    assert list(first.corpus) == list(again.corpus)
    assert len(first.queries) == 5 and len(first.corpus) == 50
    judged = {d for docs in first.qrels.values() for d in docs}
    assert judged <= set(first.corpus)
    assert set(first.qrels) <= set(first.queries)


def test_limit_larger_than_corpus_keeps_everything():
    dataset = load_dataset("scifact", "test", limit=10_000)
    assert len(dataset.corpus) == 5183 and len(dataset.queries) == 300


def test_ir_datasets_path_offline(tmp_path):
    """The real ir_datasets loader (its home is read at import, hence a subprocess), cache seeded from the BEIR folder."""
    env = {"PATH": "/usr/bin:/bin", "IR_DATASETS_HOME": str(tmp_path / "ird")}
    result = subprocess.run([sys.executable, "-m", "pipeline.inspect_dataset", "--dataset", "scifact", "--seed-ir-datasets",
                             str(beir_dir() / "scifact")], cwd=REPO, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "scifact/test from ir_datasets:beir/scifact/test: 5,183 docs, 300 queries, 339 qrels" in result.stdout
    assert (tmp_path / "ird" / "beir" / "scifact" / "source.zip").is_file()


def test_failed_ir_datasets_download_is_one_line_and_leaves_no_empty_file(tmp_path):
    """A download that cannot happen (no network here; elsewhere a dead proxy forces it) leaves no 0-byte file in
    ir_datasets' cache that a later run would take as the data."""
    env = {"PATH": "/usr/bin:/bin", "IR_DATASETS_HOME": str(tmp_path / "ird"), "HTTPS_PROXY": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-m", "pipeline.inspect_dataset", "--dataset", "nfcorpus"], cwd=REPO,
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("error: ir_datasets could not")
    assert not [p for p in (tmp_path / "ird").rglob("*") if p.is_file() and p.stat().st_size == 0]


def _beir(tmp_path, corpus: bytes, qrels: str = "query-id\tcorpus-id\tscore\nq1\td1\t1\n"):
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_bytes(corpus)
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "cats"}\n', encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return folder


@pytest.mark.parametrize("corpus, message", [
    (b'{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": "caf\xe9"}\n', "corpus.jsonl:2: invalid UTF-8"),
    (b'{"_id": "d1", "text": "ok"}\nnot json\n', "corpus.jsonl:2: not a JSON object"),
    (b'{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n', "corpus.jsonl:2: duplicate document id 'd1'"),
    (b'{"_id": "d1", "text": "a"}\n{"text": "no id"}\n', "corpus.jsonl:2: missing '_id'"),
])
def test_broken_corpus_is_refused_with_file_and_line(tmp_path, corpus, message):
    folder = _beir(tmp_path, corpus)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        load_dataset("mini", data_dir=folder)


def test_odd_but_valid_corpus_is_kept(tmp_path):
    corpus = ('\ufeff{"_id": "d1", "title": "", "text": "emoji only \U0001F600"}\r\n'
              '{"_id": "d2", "title": "Κείμενο", "text": "中文 \u0007 control"}\r\n'
              '{"_id": "d3", "title": "", "text": ""}\r\n').encode("utf-8")
    dataset = load_dataset("mini", data_dir=_beir(tmp_path, corpus))
    assert list(dataset.corpus) == ["d1", "d2", "d3"]
    assert dataset.corpus["d3"].contents == ""


def test_qrels_naming_unknown_docs_warn_and_go_on(tmp_path):
    folder = _beir(tmp_path, b'{"_id": "d1", "text": "a"}\n',
                   "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tghost\t1\nq9\td1\t1\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_dataset("mini", data_dir=folder)
    assert dataset.qrels == {"q1": {"d1": 1}}
    assert any("1 unknown document(s) and 1 unknown query" in str(w.message) for w in caught)


def test_missing_file_names_it(tmp_path):
    folder = _beir(tmp_path, b'{"_id": "d1", "text": "a"}\n')
    (folder / "queries.jsonl").unlink()
    with pytest.raises(InputError, match="missing file .*queries.jsonl"):
        load_dataset("mini", data_dir=folder)


def test_cli_unknown_dataset_is_one_line_and_nonzero(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipeline.inspect_dataset", "--dataset", "no-such-set"], cwd=REPO,
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "IR_DATASETS_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: unknown dataset 'no-such-set'")


def test_cli_help_describes_options():
    result = subprocess.run([sys.executable, "-m", "pipeline.inspect_dataset", "--help"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--dataset", "--split", "--data-dir", "--beir-dir", "--limit"):
        assert option in result.stdout
