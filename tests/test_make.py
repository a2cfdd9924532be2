"""`make` as a user types it: parameters are data (never read by a shell), misspellings are refused, a failing
stage fails the target, and a corpus changed under the same name is never answered "up to date"."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from common.errors import InputError
from plumbing.datasets import load_dataset
from steps.encode import encode_corpus
from steps.index import bm25_index
from tests.conftest import REPO, SLICE, slice_data, slice_model


def _make(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "-C", str(REPO), *args], capture_output=True, text=True, cwd=cwd,
                          env=os.environ.copy(), timeout=600)


def test_shell_metacharacters_are_data_not_commands(tmp_path):
    for value in ("x;touch PWNED #", "$(shell touch PWNED)", "`touch PWNED`"):
        result = _make("index", f"dataset={value}", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines()[0].startswith("error: dataset=")
    assert not (tmp_path / "PWNED").exists() and not (REPO / "PWNED").exists()


@pytest.mark.parametrize("args, line", [
    (["index", "K=512"], "error: unknown parameter K; did you mean k?"),
    (["eval", "modle=gemma3"], "error: unknown parameter modle; did you mean model?"),
    (["encode", "engine=ray", "worker=1"], "error: unknown parameter worker; did you mean workers?"),
])
def test_misspelt_parameters_are_refused_before_any_work(args, line):
    result = _make(*args)
    assert result.returncode == 2 and result.stderr.splitlines()[0] == line


def test_a_failing_stage_fails_the_target(tmp_path):
    result = _make("encode", "dataset=nosuch", f"data_dir={tmp_path / 'missing'}")
    assert result.returncode != 0
    assert "error: data_dir=" in result.stderr


def _other_corpus(folder: Path, sliced) -> Path:
    """A BEIR folder with the slice's queries and judged documents but other distractor texts (same count)."""
    (folder / "qrels").mkdir(parents=True)
    docs = [{"_id": d, "title": doc.title, "text": doc.text if i < 10 else f"another text {i}"}
            for i, (d, doc) in enumerate(sliced.corpus.items())]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n"
                                                  for q, t in sliced.queries.items()), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{s}\n" for q, judged in sliced.qrels.items() for d, s in judged.items()), encoding="utf-8")
    return folder


def test_another_corpus_under_the_same_name_is_not_up_to_date(embeddings, sliced, tmp_path):
    other = load_dataset("scifact", "test", data_dir=_other_corpus(tmp_path / "other", sliced), limit=SLICE)
    assert len(other.corpus) == len(sliced.corpus) and other.fingerprint != sliced.fingerprint
    with pytest.raises(InputError, match="embeddings of another corpus"):
        encode_corpus(other, slice_data(), slice_model())
    key = slice_data().key
    bm25_index(sliced, key)
    manifest = Path(bm25_index(other, key)).parent / "manifest.json"
    assert json.loads(manifest.read_text())["corpus"]["corpus_sha1"] == other.fingerprint["corpus_sha1"]


def test_ctrl_c_in_make_is_one_line_per_level_and_status_130(tmp_path):
    """Ctrl-C (SIGINT to make's whole process group, as a terminal sends it) during `make encode`: the stage says
    what it kept, the parameter reader says how to resume, no Python traceback, and make fails the target."""
    import signal
    import time

    env = {**os.environ, "KEYTOKENS_INDEXES": str(tmp_path / "indexes")}
    child = subprocess.Popen(["make", "-s", "-C", str(REPO), "encode", "dataset=scifact"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    deadline = time.time() + 300
    while not list(tmp_path.glob("indexes/scifact/*/embeddings")) and child.poll() is None and time.time() < deadline:
        time.sleep(0.1)  # the stage holds its output folder: it runs, minutes from done on the full corpus
    time.sleep(2)
    os.killpg(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=300)
    assert child.returncode != 0 and "Traceback" not in err, err[-1500:]
    assert "interrupted: what was complete is kept" in err and "make encode: interrupted; rerun the same command" in err
