"""Where the distillation teacher's gain lives, and whether an index with no LLM at query time can hold it.

The teacher (`make distil`) is the word hybrid fused with the embedder's dense run: one LLM forward per query. A
no-forward index can only move what is decomposable over the query's words into the documents. Two probes, on the
dev queries of the train split only (held out from training the embedder and the student; never test):

  words    the dense score taken apart over words: each query word's own query embedding (one forward per word of
           the vocabulary, done once at index time, so a lookup at query time) against the document embedding,
           summed with the query's idf weights; alone, and fused with the word hybrid as the teacher fuses dense.
  neighbours  documents expanded at index time with their dense neighbours' words (BM25 tf, weighted by cosine,
           the n nearest: the distilled index's rule, encoders/student.py, uncapped), added with weight lambda to BM25
           and to the word hybrid.

    python -m studies.teacher_gap --dataset scifact --model smollm2-ft --dtype bfloat16

Writes runs/<dataset>/teacher_gap.json and .md: dev nDCG@10 of BM25, the hybrid, dense, the teacher and each probe.
"""
from __future__ import annotations

import time
from collections import Counter

import numpy as np

from common.threads import claim_cores
from plumbing import cli
from plumbing.artifacts import manifest, write_json, write_text
from plumbing.settings import DataSettings, ModelSettings, SearchSettings

NEIGHBOURS = (5, 10, 15)
LAMBDAS = (0.3, 0.5, 1.0)
FUSION = tuple(round(w, 1) for w in np.arange(0.5, 1.01, 0.1))


def _bm25_side(texts: list[str]):
    """Documents' own words at BM25 tf as a sparse matrix, the vocabulary, df and the query encoder BM25 uses."""
    from scipy.sparse import csr_matrix

    from encoders.documents import bm25_tf
    from encoders.words import word_analyzer

    analyzer = word_analyzer()
    counts = [Counter(analyzer.terms(t)) for t in texts]
    average = float(np.mean([sum(c.values()) for c in counts])) if counts else 1.0
    vocab: dict[str, int] = {}
    rows, cols, values = [], [], []
    for row, count in enumerate(counts):
        for word, weight in bm25_tf(count, average).items():
            rows.append(row)
            cols.append(vocab.setdefault(word, len(vocab)))
            values.append(weight)
    matrix = csr_matrix((np.array(values, np.float32), (rows, cols)), shape=(len(texts), len(vocab)))
    df = Counter(w for c in counts for w in c)
    return analyzer, vocab, df, matrix


def _query_words(analyzer, vocab, df, documents: int, texts: list[str]) -> list[dict[str, float]]:
    from encoders.queries import TokenQueryEncoder

    return [{w: c * TokenQueryEncoder.bm25_idf(df[w], documents) for w, c in Counter(
        w for w in analyzer.terms(t) if w in vocab).items()} for t in texts]


def teacher_gap(data: DataSettings, model: ModelSettings, dev_count: int = 60, seed: int = 13) -> dict:
    from scipy.sparse import csr_matrix

    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.student import borrowed_words, nearest_documents
    from plumbing.datasets import split_dev
    from plumbing.shards import load_shards
    from steps.distil import build_teacher, ndcg_of, top_normalised
    from steps.needs import Needs

    claim_cores()
    started = time.time()
    train = data.load()
    test_ids = set(DataSettings(data.name, "test", data_dir=data.data_dir, beir_dir=data.beir_dir).load().queries)
    needs = Needs(train, data, SearchSettings().threads)
    doc_ids, embeddings, _ = load_shards(needs.embeddings(model))
    _, dev = split_dev(train, dev_count, seed)
    teacher = build_teacher(train, needs, model, doc_ids, embeddings, dev, dev, test_ids)
    judged = {q: train.qrels[q] for q in dev}
    analyzer, vocab, df, documents = _bm25_side([train.corpus[d].contents for d in doc_ids])
    queries = _query_words(analyzer, vocab, df, len(doc_ids), [train.queries[q] for q in dev])
    query_matrix = csr_matrix((np.array([w for q in queries for w in q.values()], np.float32),
                               ([i for i, q in enumerate(queries) for _ in q], [vocab[w] for q in queries for w in q])),
                              shape=(len(dev), len(vocab)))
    bm25 = (query_matrix @ documents.T).toarray()
    hybrid = teacher.hybrid * (bm25.max(1, keepdims=True) / np.maximum(teacher.hybrid.max(1, keepdims=True), 1e-9))
    result = {"dev_queries": len(dev), "bm25": ndcg_of(bm25, dev, doc_ids, judged), **teacher.dev,
              "teacher_weight": teacher.weight}

    # words: the dense score as a sum over the query's words, each word's own query embedding
    words = sorted({w for q in queries for w in q})
    embedder = Embedder(model.preset, load_model(model.preset, model.device, model.dtype))
    word_vectors = embedder.encode(words, is_query=True).embeddings
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosine = (word_vectors / np.linalg.norm(word_vectors, axis=1, keepdims=True)) @ unit.T
    position = {w: i for i, w in enumerate(words)}
    by_words = np.stack([sum((weight * cosine[position[w]] for w, weight in q.items()), np.zeros(len(doc_ids)))
                         for q in queries])
    fused = {w: ndcg_of(w * top_normalised(teacher.hybrid) + (1 - w) * top_normalised(by_words), dev, doc_ids, judged)
             for w in FUSION}
    result["words"] = {"alone": ndcg_of(by_words, dev, doc_ids, judged), "fused_with_hybrid": fused,
                       "words_encoded": len(words)}

    # neighbours: each document plus its dense neighbours' words
    probes = {}
    for n in NEIGHBOURS:  # the distilled index's borrowing rule, with no cap on the words borrowed
        lent = borrowed_words(*nearest_documents(embeddings, n), documents, new_words=documents.shape[1])
        borrowed = (query_matrix @ lent.T).toarray()
        for lam in LAMBDAS:
            probes[f"n={n} lambda={lam}"] = {"bm25+neighbours": ndcg_of(bm25 + lam * borrowed, dev, doc_ids, judged),
                                             "hybrid+neighbours": ndcg_of(hybrid + lam * borrowed, dev, doc_ids, judged)}
    result["neighbours"] = probes
    result["seconds"] = round(time.time() - started, 1)
    return result


def report(result: dict, model: str) -> str:
    best_fused = max(result["words"]["fused_with_hybrid"].items(), key=lambda kv: kv[1])
    best_nb = max(result["neighbours"].items(), key=lambda kv: kv[1]["hybrid+neighbours"])
    lines = [f"# Where the teacher's gain lives ({model}, {result['dev_queries']} dev queries of the train split)", "",
             "| ranking | dev nDCG@10 |", "| --- | --- |",
             f"| BM25 (own words, idf) | {result['bm25']:.4f} |", f"| word hybrid | {result['hybrid']:.4f} |",
             f"| dense (one forward per query) | {result['dense']:.4f} |",
             f"| teacher: hybrid {result['teacher_weight']} + dense | {result['teacher']:.4f} |",
             f"| dense taken apart over query words, alone | {result['words']['alone']:.4f} |",
             f"| ... fused with the hybrid (best weight {best_fused[0]}) | {best_fused[1]:.4f} |",
             f"| hybrid + dense neighbours' words (best: {best_nb[0]}) | {best_nb[1]['hybrid+neighbours']:.4f} |", "",
             "Every neighbour setting:", "", "| setting | BM25 + neighbours | hybrid + neighbours |", "| --- | --- | --- |"]
    lines += [f"| {name} | {v['bm25+neighbours']:.4f} | {v['hybrid+neighbours']:.4f} |"
              for name, v in result["neighbours"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("studies.teacher_gap", __doc__, cli.dataset_options, cli.model_options)
    parser.add_argument("--dev-queries", type=int, default=60, help="held-out train queries (as make train/distil)")
    args = parser.parse_args(argv)
    data = cli.data_settings(args).with_split("train")
    model = cli.model_settings(args)
    result = teacher_gap(data, model, args.dev_queries)
    folder = DataSettings(data.name, "test", data.limit, data.data_dir, data.beir_dir).run_dir
    write_json(folder / "teacher_gap.json", manifest("teacher_gap", model=model.name, **result))
    text = report(result, model.name)
    write_text(folder / "teacher_gap.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
