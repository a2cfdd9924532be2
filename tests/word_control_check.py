"""By hand, on a full dataset: the LLM-free control on words against BM25, the check that the word mapping is right.

    python -m tests.word_control_check [--dataset scifact] [--split test]

Indexes every document's Lucene-analyzed words (encoders/words.py) at BM25's saturated tf as an impact index, searches
each query's analyzed words x idf (`query=tokens`, no LLM), and prints nDCG@10 of that run and of Lucene BM25 (k1=0.9,
b=0.4) on the same queries, with the difference: it should be within 0.005 (integer weights cost a little). No
embedder is needed, so it runs in a few minutes on 2 cores. Writes only to a temporary folder. The test tier checks
the same on the slice (tests/test_eval.py); this is the full-corpus version the README quotes.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

from encoders.documents import own_word_vectors
from encoders.models import load_tokenizer
from encoders.presets import resolve_preset
from encoders.queries import TokenQueryEncoder
from encoders.words import WordVocabulary, word_analyzer
from engines.lucene import build_lucene
from engines.retrieval import BM25Index, impact_search
from plumbing.collection import write_collection
from plumbing.datasets import load_dataset
from plumbing.runs import score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.word_control_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    dataset = load_dataset(args.dataset, args.split)
    analyzer = word_analyzer()
    doc_ids = list(dataset.corpus)
    counts = [Counter(analyzer.terms(dataset.corpus[d].contents)) for d in doc_ids]
    vectors, _ = own_word_vectors(counts, "bm25tf")
    with tempfile.TemporaryDirectory(prefix="kt-words-") as tmp:
        work = Path(tmp)
        (work / "collection").mkdir()
        write_collection(work / "collection", doc_ids, vectors)
        build_lucene(work / "collection", work / "lucene", impact=True)
        df = json.loads((work / "lucene" / "df.json").read_text())
        encoder = TokenQueryEncoder(WordVocabulary(load_tokenizer(resolve_preset("smollm2").source), analyzer), "idf",
                                    df["df"], df["documents"])
        queries = {q: encoder.encode(t) for q, t in dataset.queries.items()}
        words = score(dataset.qrels, impact_search(work / "lucene", queries))
        (work / "bm25").mkdir()
        (work / "bm25" / "part-00000.jsonl").write_text("".join(
            json.dumps({"id": d, "contents": dataset.corpus[d].contents}) + "\n" for d in doc_ids), encoding="utf-8")
        build_lucene(work / "bm25", work / "bm25-lucene", impact=False)
        bm25 = score(dataset.qrels, BM25Index(work / "bm25-lucene").search(dataset.queries))
    terms = sum(len(q) for q in queries.values()) / max(1, len(queries))
    print(f"{args.dataset}/{args.split}: {len(dataset.queries)} queries, {len(doc_ids)} documents")
    print(f"word control (own words, BM25 tf, idf query; {terms:.1f} words per query) nDCG@10 {words:.4f}")
    print(f"BM25 (Lucene, k1=0.9 b=0.4) nDCG@10 {bm25:.4f}; difference {words - bm25:+.4f}")
    return 0 if abs(words - bm25) <= 0.005 else 1


if __name__ == "__main__":
    sys.exit(main())
