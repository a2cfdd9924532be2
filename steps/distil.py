"""Distillation: the fused one-forward teacher on train queries, the no-LLM word student from stored embeddings.

The functions behind `python -m pipeline.distil` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.errors import InputError
from common.threads import claim_cores
from encoders.embedder import Embedder
from encoders.models import load_model
from encoders.queries import l2_normalise
from encoders.student import NEIGHBOUR_WORDS, STUDENT_K, Neighbours, Student, StudentData, idf_flops, listwise_kl
from plumbing.artifacts import folder_lock, manifest, read_json, write_bytes_with, write_json
from plumbing.datasets import Dataset
from plumbing.model_card import write_model_card
from plumbing.runs import score
from plumbing.settings import DEPTH, DataSettings, ModelSettings, SearchSettings, Variant
from plumbing.shards import load_shards

FUSION_GRID = tuple(round(w, 1) for w in np.arange(0.0, 1.01, 0.1))
NEIGHBOUR_COUNTS = (5, 10, 15)  # the dense neighbours a document may borrow words from (chosen on dev)
NEIGHBOUR_WEIGHTS = (0.1, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class DistilSettings:
    """Everything that decides the student's weights."""

    pool: int = 32  # per query: the teacher's top `pool` and the word hybrid's top `pool` documents
    steps: int = 100  # on scifact no step of a 300-step run beat step 0 on dev (see the README); 100 keep it short
    batch: int = 16  # queries per step
    lr: float = 1e-2  # the own-word boost and the expansion scale
    adapter_lr: float = 1e-5
    teacher_temperature: float = 0.05  # the teacher's fused scores (in [0, 1]) are divided by it before the softmax
    flops_weight: float = 1e-3
    k: int = STUDENT_K
    seed: int = 13
    dev_queries: int = 60  # the train queries the embedder held out: the student's dev set too
    eval_every: int = 25
    neighbour_words: int = NEIGHBOUR_WORDS  # borrowed words new to a document at most (0: no neighbours)


def refuse_test_queries(query_ids: list[str], test_ids: set[str]) -> None:
    """The teacher sees train queries only: any id the test split holds is refused before a score is made."""
    leaked = sorted(set(query_ids) & test_ids)
    if leaked:
        raise InputError(f"the teacher was asked to score {len(leaked)} test quer{'y' if len(leaked) == 1 else 'ies'} "
                         f"(e.g. {leaked[0]!r}); distillation uses train-split queries only")


def top_normalised(scores: np.ndarray, depth: int = DEPTH) -> np.ndarray:
    """Per row, min-max over the row's top `depth` scores, 0 elsewhere: what ranx's min-max does to a run."""
    out = np.zeros_like(scores, dtype=np.float32)
    depth = min(depth, scores.shape[1])
    top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    values = np.take_along_axis(scores, top, axis=1)
    low, high = values.min(axis=1, keepdims=True), values.max(axis=1, keepdims=True)
    np.put_along_axis(out, top, (values - low) / np.maximum(high - low, 1e-12), axis=1)
    return out


def ndcg_of(scores: np.ndarray, query_ids: list[str], doc_ids: list[str], qrels: dict, depth: int = 100) -> float:
    """nDCG@10 of a [queries, docs] score matrix (its top `depth` per query) against qrels."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
    run = {q: [(doc_ids[j], float(scores[i, j])) for j in top[i]] for i, q in enumerate(query_ids)}
    return score({q: qrels[q] for q in query_ids}, run)


def hybrid_scores(needs, model: ModelSettings, queries: list[str], doc_ids: list[str]) -> np.ndarray:
    """[queries, docs] scores of the word hybrid index, exactly as Lucene sums them (integer query x document
    weights), computed from its collection and query encoder."""
    from scipy.sparse import csr_matrix

    from plumbing.collection import read_collection
    from plumbing.index_queries import sparse_index, token_encoder

    variant = Variant.build(model.preset)
    needs.sparse_index(model, variant)
    folder, info = sparse_index(needs.data, model, variant)
    encoder = token_encoder(folder, info, "idf")
    vocab: dict[str, int] = {}
    row = {d: i for i, d in enumerate(doc_ids)}
    entries = [(row[obj["id"]], vocab.setdefault(t, len(vocab)), w)
               for obj in read_collection(folder / "collection") for t, w in obj["vector"].items()]
    r, c, v = zip(*entries)
    documents = csr_matrix((np.array(v, dtype=np.float32), (r, c)), shape=(len(doc_ids), len(vocab)))
    q_entries = [(i, vocab[t], w) for i, text in enumerate(queries) for t, w in encoder.encode(text).items() if t in vocab]
    qr, qc, qv = zip(*q_entries) if q_entries else ((), (), ())
    query_matrix = csr_matrix((np.array(qv, dtype=np.float32), (qr, qc)), shape=(len(queries), len(vocab)))
    return (query_matrix @ documents.T).toarray().astype(np.float32)


@dataclass
class Teacher:
    """The fused teacher over the corpus for the train queries, and what it was chosen from."""

    query_ids: list[str]
    scores: np.ndarray  # [queries, docs]
    hybrid: np.ndarray  # [queries, docs] the word hybrid's scores (the pools' second half)
    weight: float  # of the hybrid in the fusion (the dense run gets 1 - weight)
    dev: dict[str, float]  # dev nDCG@10 of hybrid, dense, teacher


def build_teacher(train: Dataset, needs, model: ModelSettings, doc_ids: list[str], embeddings: np.ndarray,
                  query_ids: list[str], dev_ids: list[str], test_ids: set[str]) -> Teacher:
    refuse_test_queries(query_ids, test_ids)
    texts = [train.queries[q] for q in query_ids]
    hybrid = hybrid_scores(needs, model, texts, doc_ids)
    embedder = Embedder(model.preset, load_model(model.preset, model.device, model.dtype))
    query_embeddings = embedder.encode(texts, is_query=True).embeddings
    dense = l2_normalise(query_embeddings) @ l2_normalise(embeddings).T
    hybrid_n, dense_n = top_normalised(hybrid), top_normalised(dense)
    dev_rows = [query_ids.index(q) for q in dev_ids]
    judged = {q: train.qrels[q] for q in dev_ids}
    grid = {w: ndcg_of(w * hybrid_n[dev_rows] + (1 - w) * dense_n[dev_rows], dev_ids, doc_ids, judged)
            for w in FUSION_GRID}
    weight = max(grid, key=lambda w: (grid[w], w))  # ties go to the sparse side
    dev = {"hybrid": grid[1.0], "dense": grid[0.0], "teacher": grid[weight]}
    print(f"teacher: wsum {weight} hybrid + {round(1 - weight, 1)} dense, chosen on {len(dev_ids)} dev queries; "
          f"dev nDCG@10 hybrid {dev['hybrid']}, dense {dev['dense']}, teacher {dev['teacher']}")
    return Teacher(query_ids, weight * hybrid_n + (1 - weight) * dense_n, hybrid, weight, dev)


def pools(teacher: Teacher, size: int) -> np.ndarray:
    """[queries, <= 2 size] document rows: the teacher's top `size` then the hybrid's top `size` not already in."""
    out = []
    for t_row, h_row in zip(teacher.scores, teacher.hybrid):
        first = list(np.argsort(-t_row, kind="stable")[:size])
        out.append(first + [d for d in np.argsort(-h_row, kind="stable")[:2 * size] if d not in set(first)][:size])
    width = max(len(p) for p in out)
    return np.array([p + [-1] * (width - len(p)) for p in out], dtype=np.int64)


def train_student(data: StudentData, teacher: Teacher, train_rows: list[int], dev_rows: list[int], qrels: dict,
                  doc_ids: list[str], texts: list[str], settings: DistilSettings) -> tuple[Student, list[dict]]:
    """Fit the student to the teacher on the train rows; return the one with the best dev nDCG@10, and the curve."""
    torch.manual_seed(settings.seed)
    student = Student(data.embeddings.shape[1], settings.k)
    scale = torch.nn.Parameter(torch.tensor(0.0))  # log of the student's score scale in the softmax (not indexed)
    optimizer = student.optimizer(settings.lr, settings.adapter_lr, scale)
    pool = pools(teacher, settings.pool)
    queries = data.queries(texts)
    dev_ids = [teacher.query_ids[r] for r in dev_rows]
    dev_qrels = {q: qrels[q] for q in dev_ids}

    def dev_point(step: int) -> dict:
        scores = data.all_scores(student, [queries[r] for r in dev_rows])
        return {"step": step, "ndcg@10": ndcg_of(scores, dev_ids, doc_ids, dev_qrels),
                "own_boost": round(float(student.own_boost.detach()), 4),
                "expansion_scale": round(float(student.expansion_scale.detach()), 4)}

    curve = [dev_point(0)]
    best = (curve[0]["ndcg@10"], {k: v.detach().clone() for k, v in student.state_dict().items()})
    rng = np.random.default_rng(settings.seed)
    with tqdm(total=settings.steps, desc="distil", unit="step") as bar:
        for step in range(1, settings.steps + 1):
            rows = rng.choice(train_rows, size=min(settings.batch, len(train_rows)), replace=False)
            batch_pool = pool[rows]
            docs = np.unique(batch_pool[batch_pool >= 0])
            column = {int(d): i for i, d in enumerate(docs)}
            columns, query_matrix = data.query_matrix([queries[r] for r in rows])
            weights, top_ids, top_weights = student.weights(data.embeddings[docs], data.own(docs), data.head,
                                                            data.lm_head, data.space, columns)
            scores = query_matrix @ weights.T  # [batch, docs]: the index's score on the batch's query words
            mask = torch.from_numpy(batch_pool >= 0)
            index = torch.tensor([[column.get(int(d), 0) for d in row] for row in batch_pool])
            student_scores = scores.gather(1, index) * scale.exp()
            teacher_scores = torch.from_numpy(np.take_along_axis(teacher.scores[rows], np.maximum(batch_pool, 0), 1))
            loss = listwise_kl(student_scores, teacher_scores, mask, settings.teacher_temperature)
            flops = idf_flops(top_ids, top_weights, data.head_idf)
            total = loss + settings.flops_weight * flops
            if not torch.isfinite(total):
                raise InputError(f"distil step {step}: the loss is not finite; lower lr (now {settings.lr})")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            bar.update(1)
            bar.set_postfix(kl=f"{float(loss.detach()):.4f}", flops=f"{float(flops.detach()):.3f}")
            if step % settings.eval_every == 0 or step == settings.steps:
                curve.append({**dev_point(step), "kl": round(float(loss.detach()), 5),
                              "flops": round(float(flops.detach()), 4)})
                bar.write(f"step {step}: dev nDCG@10 {curve[-1]['ndcg@10']} (kl {loss:.4f})")
                if curve[-1]["ndcg@10"] > best[0]:
                    best = (curve[-1]["ndcg@10"], {k: v.detach().clone() for k, v in student.state_dict().items()})
    student.load_state_dict(best[1])
    return student, curve


def choose_neighbours(data: StudentData, student: Student, queries: list[dict[int, float]], dev_ids: list[str],
                      doc_ids: list[str], qrels: dict, new_words: int) -> dict[str, float]:
    """Set the student's neighbours to the (n, weight) with the best dev nDCG@10, or off when none beats the student
    alone; returns every point of the grid."""
    student.neighbours = Neighbours()
    alone = data.all_scores(student, queries)
    grid = {"off": ndcg_of(alone, dev_ids, doc_ids, qrels)}
    best = (grid["off"], Neighbours())
    for n in NEIGHBOUR_COUNTS if new_words > 0 else ():
        for weight in NEIGHBOUR_WEIGHTS:
            neighbours = Neighbours(n, weight, new_words)
            grid[f"n={n} weight={weight}"] = ndcg_of(alone + data.neighbour_scores(neighbours, queries), dev_ids,
                                                     doc_ids, qrels)
            if grid[f"n={n} weight={weight}"] > best[0]:
                best = (grid[f"n={n} weight={weight}"], neighbours)
    student.neighbours = best[1]
    print(f"neighbours chosen on dev: {asdict(best[1]) if best[1].on else 'off'} (dev nDCG@10 {best[0]})")
    return grid


def student_state(data: DataSettings, model: ModelSettings, settings: DistilSettings) -> str:
    """'ready', 'absent' or 'stale: <why>' for the model's student (the demo reuses a ready one)."""
    info_path = model.student_dir / "manifest.json"
    if not info_path.is_file() or not (info_path.parent / "student.pt").is_file():
        return "absent"
    info = read_json(info_path, "student manifest")
    embeddings = read_json(model.embeddings_dir(replace(data, split="train")) / "manifest.json")
    if info.get("embeddings_written") != embeddings["written"]:
        return "stale: trained on other embeddings"
    if info.get("settings") != asdict(settings):
        return "stale: other settings"
    return "ready"


def distil(data: DataSettings, model: ModelSettings, settings: DistilSettings) -> Path:
    """Teacher on train queries -> student from stored embeddings -> `models/<embedder>/student/`."""
    from plumbing.datasets import split_dev
    from steps.needs import Needs

    if model.preset.kind != "decoder":
        raise InputError(f"model={model.model}: distillation reads an LLM embedder's embeddings and LM head")
    claim_cores()
    folder = model.student_dir
    train_data = replace(data, split="train")  # a --limit slice distils on the train split's slice (tests)
    try:
        train = train_data.load()
    except InputError as exc:
        raise InputError(f"dataset {data.name} has no train split to distil on ({exc}); use a student trained on "
                         f"another dataset (its index applies as it is)") from None
    test_ids = set(replace(data, split="test", limit=None).load().queries)
    with folder_lock(folder):
        started = time.time()
        needs = Needs(train, train_data, SearchSettings().threads)
        embeddings_dir = needs.embeddings(model)
        doc_ids, embeddings, _ = load_shards(embeddings_dir)
        trained_ids, dev_ids = split_dev(train, settings.dev_queries, settings.seed)
        query_ids = trained_ids + dev_ids
        teacher = build_teacher(train, needs, model, doc_ids, embeddings, query_ids, dev_ids, test_ids)
        loaded = load_model(model.preset, model.device, model.dtype)
        texts = [train.corpus[d].contents for d in doc_ids]
        student_data = StudentData(texts, embeddings, loaded.lm_head, loaded.tokenizer)
        rows = {q: i for i, q in enumerate(query_ids)}
        student, curve = train_student(student_data, teacher, [rows[q] for q in trained_ids],
                                       [rows[q] for q in dev_ids], train.qrels, doc_ids,
                                       [train.queries[q] for q in query_ids], settings)
        dev_queries = student_data.queries([train.queries[q] for q in dev_ids])
        dev_qrels = {q: train.qrels[q] for q in dev_ids}
        neighbour_grid = choose_neighbours(student_data, student, dev_queries, dev_ids, doc_ids, dev_qrels,
                                           settings.neighbour_words)
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_with(folder / "student.pt", lambda tmp: torch.save(student.state_dict(), tmp))
        bm25 = student_data.all_scores(Student.bm25(embeddings.shape[1]), dev_queries)
        pool = pools(teacher, settings.pool)
        write_json(folder / "teacher.json", {"hybrid_weight": teacher.weight, "queries": {
            q: {doc_ids[d]: round(float(teacher.scores[i, d]), 5) for d in pool[i] if d >= 0}
            for i, q in enumerate(query_ids)}})
        dev = {**teacher.dev, "bm25 (own words, idf)": ndcg_of(bm25, dev_ids, doc_ids, dev_qrels),
               "student": max(p["ndcg@10"] for p in curve), "student with neighbours": max(neighbour_grid.values())}
        write_json(folder / "manifest.json", manifest(
            "distil", model=model.name, dataset=data.name, settings=asdict(settings), hidden=int(embeddings.shape[1]),
            embeddings_written=read_json(embeddings_dir / "manifest.json")["written"],
            teacher={"fusion": "wsum min-max over each run's top 1000", "hybrid_weight": teacher.weight,
                     "runs": [f"{model.name} word hybrid (query=tokens)", f"{model.name} dense"],
                     "chosen on": f"{len(dev_ids)} dev queries of the train split"},
            train_queries=len(trained_ids), dev_queries=len(dev_ids), dev_ndcg=dev, curve=curve,
            neighbours=asdict(student.neighbours), neighbour_grid=neighbour_grid,
            kept_step=max(curve, key=lambda p: (p["ndcg@10"], -p["step"]))["step"],
            seconds=round(time.time() - started, 1)))
    if model.trained_folder is not None:
        write_model_card(model.trained_folder)
    print(f"student: {folder} (dev nDCG@10 {dev})")
    return folder
