"""The distilled index (encoders/student.py, steps/distil.py) on real SmolLM2 embeddings of a scifact slice:
the teacher never sees a test query, the student's loss falls on a fixed batch, IDF-aware FLOPS shrinks the new
words while postings stay within own words + K, and the Lucene index holds exactly what the student computes from
the stored embeddings (the scores Lucene returns are the student's quantized dot products)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import slice_data, slice_model, variant


@pytest.fixture(scope="module")
def corpus(sliced, embeddings):
    """The slice as the student reads it: stored embeddings, own words, the word space."""
    from encoders.models import load_model
    from encoders.student import StudentData
    from plumbing.shards import load_shards

    doc_ids, vectors, _ = load_shards(embeddings)
    loaded = load_model(slice_model().preset, "cpu")
    data = StudentData([sliced.corpus[d].contents for d in doc_ids], vectors, loaded.lm_head, loaded.tokenizer)
    return doc_ids, data


def _queries(sliced, data):
    return data.query_matrix(data.queries(list(sliced.queries.values())))


def _keep_student(student, hybrid_weight: float) -> Path:
    """Write a student where `make distil` keeps the slice model's (state, and a manifest with its neighbours and
    the teacher's weight); returns the folder."""
    from dataclasses import asdict

    from common import layout
    from plumbing.artifacts import manifest, write_json

    folder = layout.student_dir(slice_model().name)
    folder.mkdir(parents=True)
    torch.save(student.state_dict(), folder / "student.pt")
    write_json(folder / "manifest.json", manifest("distil", hidden=student.adapter.in_features,
                                                  settings={"k": student.k}, teacher={"hybrid_weight": hybrid_weight},
                                                  neighbours=asdict(student.neighbours)))
    return folder


def test_teacher_refuses_a_planted_test_query(sliced):
    """A test query id among the teacher's queries is refused before anything is scored."""
    from common.errors import InputError
    from plumbing.datasets import load_dataset
    from steps.distil import build_teacher

    train = load_dataset("scifact", "train", limit=5)
    planted = list(train.queries)[:3] + [next(iter(sliced.queries))]
    with pytest.raises(InputError, match="1 test query"):
        build_teacher(train, None, slice_model(), [], np.zeros((0, 1)), planted, [], set(sliced.queries))


def test_student_loss_falls_on_a_fixed_batch(sliced, corpus):
    """Adam on one fixed batch lowers the listwise KL to a teacher (here the dense cosine of the stored embeddings)."""
    from encoders.queries import l2_normalise
    from encoders.student import Student, listwise_kl

    doc_ids, data = corpus
    columns, queries = _queries(sliced, data)
    unit = l2_normalise(data.embeddings.numpy())
    teacher = torch.from_numpy(unit[: len(queries)] @ unit.T)  # any fixed, learnable target over all documents
    student = Student(data.embeddings.shape[1])
    optimizer = student.optimizer(1e-2, 1e-5)
    mask = torch.ones_like(teacher, dtype=torch.bool)
    losses = []
    for _ in range(15):
        weights = student.weights(data.embeddings, data.own(list(range(len(doc_ids)))), data.head, data.lm_head,
                                  data.space, columns)[0]
        loss = listwise_kl(queries @ weights.T * 0.1, teacher, mask, 0.05)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses


def test_flops_shrinks_new_words_and_postings_stay_bounded(corpus):
    """IDF-aware FLOPS alone, minimised, lowers the expansion's weight; whatever the weights, a document posts its
    own words plus at most K new ones."""
    from encoders.student import Student, idf_flops

    doc_ids, data = corpus
    rows = list(range(len(doc_ids)))
    student = Student(data.embeddings.shape[1], k=16)
    optimizer = student.optimizer(1e-2, 1e-5)
    before = None
    for _ in range(10):
        _, top_ids, top_weights = student.weights(data.embeddings, data.own(rows), data.head, data.lm_head, data.space,
                                                  data.all_columns[:1])
        flops = idf_flops(top_ids, top_weights, data.head_idf)
        before = float(flops.detach()) if before is None else before
        optimizer.zero_grad()
        flops.backward()
        optimizer.step()
    assert float(flops) < 0.5 * before
    vectors = data.vectors(student)
    for row, vector in zip(rows, vectors):
        own = set(data.words.tf[row])
        assert own <= set(vector) and len(set(vector) - own) <= 16


def test_index_holds_what_the_student_scores(sliced, corpus, isolated_outputs, tmp_path, monkeypatch):
    """A student with a trained-looking (random, non-zero) adapter and neighbours on, projected and indexed by `make
    index source=distilled`: Lucene's score of every hit equals the integer dot product of the query encoder's weights
    and the student's weights quantized with the collection's scale; the queries use BM25's df of own words."""
    from encoders.aligned import quantize
    from encoders.student import Neighbours, Student
    from plumbing.artifacts import read_json
    from plumbing.index_queries import query_encoder, sparse_index
    from plumbing.runs import read_trec
    from plumbing.settings import QuerySettings, SearchSettings
    from steps.index import index_variant
    from steps.search import run_sparse

    monkeypatch.setenv("KEYTOKENS_MODELS", str(tmp_path / "models"))
    doc_ids, data = corpus
    torch.manual_seed(3)
    student = Student(data.embeddings.shape[1])
    with torch.no_grad():
        student.adapter.weight.normal_(0, 0.02)
        student.own_boost.fill_(0.7)
        student.expansion_scale.fill_(0.5)
    student.neighbours = Neighbours(n=3, weight=0.3, new_words=8)  # borrowed words reach the index too
    _keep_student(student, 0.5)
    distilled = variant(source="distilled")
    index_variant(slice_data(), slice_model(), distilled, 1)
    out, info = sparse_index(slice_data(), slice_model(), distilled)
    assert read_json(out / "query_df.json")["df"] == dict(sorted(data.words.df.items()))
    expected = [quantize(v, info["scale"]) for v in data.vectors(student)]
    encoder = query_encoder(slice_model(), QuerySettings(), out, info)
    run = read_trec(run_sparse(sliced, slice_data(), slice_model(), distilled, QuerySettings(), SearchSettings(threads=1)))
    checked = 0
    for qid, text in sliced.queries.items():
        query = encoder.encode(text)
        for doc, lucene_score in run.get(qid, {}).items():
            vector = expected[doc_ids.index(doc)]
            assert lucene_score == pytest.approx(sum(w * vector.get(t, 0) for t, w in query.items()), abs=1e-3)
            checked += 1
    assert checked > 50


def test_training_columns_are_the_index_columns(sliced, corpus):
    """Training scores only the batch's query words; those columns are exactly the index's (all-word) weights."""
    from encoders.student import Student

    doc_ids, data = corpus
    torch.manual_seed(5)
    student = Student(data.embeddings.shape[1])
    with torch.no_grad():
        student.adapter.weight.normal_(0, 0.02)
    columns, _ = _queries(sliced, data)
    rows = list(range(len(doc_ids)))
    with torch.no_grad():
        full = student.weights(data.embeddings, data.own(rows), data.head, data.lm_head, data.space, data.all_columns)[0]
        part = student.weights(data.embeddings, data.own(rows), data.head, data.lm_head, data.space, columns)[0]
    assert torch.equal(full[:, columns], part) and part.abs().sum() > 0


def test_dev_scores_are_the_index_weights_with_neighbours(sliced, corpus):
    """What the dev set scores (`all_scores`, used to choose the neighbours) is the query weights' dot product with
    the weights the index is given (`vectors`), borrowed words included; the borrowed words change the scores."""
    from encoders.student import Neighbours, Student

    doc_ids, data = corpus
    student = Student(data.embeddings.shape[1])
    queries = data.queries(list(sliced.queries.values()))
    alone = data.all_scores(student, queries)
    student.neighbours = Neighbours(n=4, weight=0.5, new_words=6)
    scores = data.all_scores(student, queries)
    vectors = data.vectors(student)
    words = data.space.words
    for q, query in enumerate(queries):
        for d, vector in enumerate(vectors):
            assert scores[q, d] == pytest.approx(sum(w * vector.get(words[c], 0.0) for c, w in query.items()), abs=1e-3)
    assert not np.allclose(scores, alone)
    for row, vector in enumerate(vectors):
        own = set(data.words.tf[row])
        assert len(set(vector) - own) <= student.k + 6


def test_a_collection_without_a_train_split_is_evaluated_with_the_kept_student(sliced, isolated_outputs, tmp_path,
                                                                                 monkeypatch):
    """`make eval` on a BEIR folder with test qrels only (a user's own collection): the leaderboard opens with the
    distilled index of the student kept for the embedder, applied as it is; nothing is tuned on the collection (no
    weighted fusion, and a note says why), the teacher row uses the weight stored with the student, and the
    student's files are left as they were."""
    import json

    from encoders.student import Neighbours, Student
    from plumbing.settings import ALIGNED_M, DataSettings, SearchSettings
    from steps.evaluate import evaluate

    monkeypatch.setenv("KEYTOKENS_MODELS", str(tmp_path / "models"))
    queries = list(sliced.queries)[:3]
    judged = {d for q in queries for d in sliced.qrels[q]}
    docs = sorted(judged) + [d for d in sliced.corpus if d not in judged][:12]
    folder = tmp_path / "testonly"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": sliced.corpus[d].title,
                                                             "text": sliced.corpus[d].text}) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": sliced.queries[q]}) + "\n"
                                                  for q in queries))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{g}\n" for q in queries for d, g in sliced.qrels[q].items()))
    student = Student(576)
    student.neighbours = Neighbours(n=2, weight=0.3, new_words=4)
    student_folder = _keep_student(student, 0.3)
    kept = {p.name: p.read_bytes() for p in student_folder.iterdir()}

    data = DataSettings("testonly", data_dir=str(folder))
    results, dataset = evaluate(data, slice_model(), {}, ALIGNED_M, SearchSettings(threads=1))
    names = {r["name"] for r in results["runs"]}
    assert results["key_run"] == f"{slice_model().name}.distilled-words.tokens-idf"
    assert any("no train split" in note for note in dataset.notes)
    assert not [n for n in names if n.startswith("fusion-wsum.")] and [n for n in names if n.startswith("fusion-rrf.")]
    teacher = json.loads((data.run_dir / f"{results['teacher_run']}.json").read_text())
    assert teacher["fusion"]["weights"] == [0.3, 0.7]
    assert {p.name: p.read_bytes() for p in student_folder.iterdir()} == kept
