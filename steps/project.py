"""Projection: stored embeddings -> one variant's JsonVectorCollection, without the transformer.

The functions behind `python -m pipeline.project` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.errors import InputError
from encoders import pc1
from encoders.aligned import top_k
from encoders.documents import (
    aligned_vectors,
    check_k,
    expansion_word_vectors,
    hybrid_vectors,
    hybrid_word_vectors,
    local_alignment_score,
    own_vectors,
    own_word_vectors,
    weighted_vectors,
)
from encoders.expansion import WordHead
from encoders.models import load_model, load_tokenizer
from encoders.vocab import Vocabulary
from encoders.words import WordVocabulary, document_words, word_analyzer
from plumbing.artifacts import folder_lock, manifest, read_json, write_json
from plumbing.collection import QUERY_DF, write_collection
from plumbing.settings import DataSettings, ModelSettings, Variant
from plumbing.shards import load_shards, load_sparse


def project(data: DataSettings, model: ModelSettings, variant: Variant) -> Path:
    preset = model.preset
    embeddings_dir = model.embeddings_dir(data)
    out = variant.dir(data, model)
    settings = variant.as_dict()
    with folder_lock(out):
        embeddings_manifest = read_json(embeddings_dir / "manifest.json", "embeddings manifest")
        done = out / "manifest.json"
        previous = read_json(done) if done.exists() else {}
        built = {"terms": "tokens", **previous.get("settings", {})}  # collections from before terms=words are tokens
        student = student_stamp(model, variant)
        if (built == settings and previous.get("embeddings_written") == embeddings_manifest["written"]
                and previous.get("student_written") == student):
            print(f"collection up to date: {out / 'collection'}")
            return out
        started = time.time()
        doc_ids, embeddings, tokens = load_shards(embeddings_dir)
        tokenizer = load_tokenizer(preset.source)
        lm_head = (load_model(preset, model.device, model.dtype).lm_head
                   if variant.source in ("aligned", "hybrid", "expansion", "distilled") else None)
        entry = None
        if variant.source == "distilled":
            vectors, scale, entry = distilled_word_vectors(corpus_texts(data, doc_ids), embeddings, tokenizer, lm_head,
                                                           model.student_dir, out)
        elif variant.terms == "words":
            vectors, scale, entry = word_vectors(data, variant, doc_ids, embeddings, tokens, tokenizer, lm_head)
        elif variant.source == "splade":
            vocab = Vocabulary(tokenizer, variant.normalize == "on")
            vectors, scale = weighted_vectors([vocab.merge(ids, w) for ids, w in load_sparse(embeddings_dir)])
        elif variant.source == "own":
            vectors, scale = own_vectors(Vocabulary(tokenizer, variant.normalize == "on"), tokens, variant.weighting)
        else:
            vocab = Vocabulary(tokenizer, variant.normalize == "on")
            entry = pc1.estimate(embeddings, str(variant.pc1), local_alignment_score(vocab, lm_head, tokens))
            adjusted = pc1.adjust(embeddings, entry)
            if variant.source == "hybrid":
                vectors, scale = hybrid_vectors(vocab, adjusted, lm_head, tokens)
            else:
                vectors, scale = aligned_vectors(vocab, adjusted, lm_head, tokens, int(variant.k), variant.weighting,
                                                 variant.vocab == "text")
        collection = out / "collection"
        stats = write_collection(collection, doc_ids, vectors)
        info = manifest("project", model=model.name, preset=preset.describe(), variant=out.name, settings=settings,
                        scale=scale, max_weight=100, pc1=entry, embeddings=str(embeddings_dir),
                        embeddings_written=embeddings_manifest["written"], student_written=student, counts=stats,
                        timings={"seconds": round(time.time() - started, 1)},
                        merge="max over tokens mapping to one term")
        write_json(done, info)
    print(f"collection: {collection} ({stats['documents']} docs, {stats['avg_terms_per_document']} terms/doc)")
    return out


def student_stamp(model: ModelSettings, variant: Variant) -> str | None:
    """When the student a distilled collection was projected through was written (None for other variants): a
    retrained student makes the collection stale."""
    if variant.source != "distilled":
        return None
    info = model.student_dir / "manifest.json"
    if not info.is_file():
        raise InputError(f"source=distilled needs a student for {model.name}: run `make distil model={model.model}` "
                         f"(dtype= as for these embeddings) first")
    return read_json(info, "student manifest")["written"]


def distilled_word_vectors(texts: list[str], embeddings, tokenizer, lm_head, student: Path, out: Path
                           ) -> tuple[list[dict[str, int]], float, dict]:
    """source=distilled: every document through the student `make distil` kept. The query side's idf table,
    `query_df.json` beside the collection, is BM25's (df of the documents' own words), as in training: new words
    in a document do not make a query word look common."""
    from encoders.student import StudentData, load_student

    words = StudentData(texts, embeddings, lm_head, tokenizer)
    write_json(out / QUERY_DF, {"documents": words.words.documents, "df": dict(sorted(words.words.df.items()))})
    return (*weighted_vectors(words.vectors(load_student(student))), words.pc1)


def corpus_texts(data: DataSettings, doc_ids: list[str]) -> list[str]:
    """The corpus text of each embedded document (the analyzer needs the whole text, which the embeddings'
    truncated token ids are not)."""
    dataset = data.load()
    missing = [d for d in doc_ids if d not in dataset.corpus]
    if missing:
        raise InputError(f"the embeddings hold {len(missing)} document(s) the corpus no longer has (e.g. {missing[0]!r}); "
                         f"rerun `make encode` for this corpus")
    return [dataset.corpus[d].contents for d in doc_ids]


def word_vectors(data: DataSettings, variant: Variant, doc_ids: list[str], embeddings, tokens, tokenizer, lm_head):
    """terms=words: the documents' own analyzed words (from the corpus text: the analyzer needs the whole text,
    which the embeddings' truncated token ids are not), their pieces' aligned logits, or aligned tokens as words."""
    if variant.source == "splade":
        raise InputError("terms=words is for the LLM embedders' variants; SPLADE keeps its own WordPiece terms")
    analyzer = word_analyzer()
    texts = tqdm(corpus_texts(data, doc_ids), desc="words", unit="doc")
    if variant.source in ("own", "expansion"):  # own words' counts only: no token pieces needed
        counts = [Counter(analyzer.terms(t)) for t in texts]
        if variant.source == "own":
            return (*own_word_vectors(counts, variant.weighting), None)
    else:  # the pieces each word was split into, for their aligned logits
        words = [document_words(t, tokenizer, analyzer) for t in texts]
    vocab = WordVocabulary(tokenizer, analyzer)
    entry = pc1.estimate(embeddings, str(variant.pc1), local_alignment_score(Vocabulary(tokenizer, True), lm_head, tokens))
    adjusted = pc1.adjust(embeddings, entry)
    if variant.source == "expansion":
        head = WordHead(vocab)
        check_k(int(variant.k), len(head), "words that a token starts")
        return (*expansion_word_vectors(counts, head, adjusted, lm_head, int(variant.k)), entry)
    if variant.source == "hybrid":
        return (*hybrid_word_vectors([c for c, _ in words], [p for _, p in words], adjusted, lm_head), entry)
    check_k(int(variant.k), len(tokenizer))  # aligned tokens are chosen among the tokens, then merged into words
    if variant.vocab == "text":
        candidates = [np.unique(np.concatenate(list(p.values()))) if p else np.zeros(0, dtype=np.int64) for _, p in words]
        chunks = top_k(adjusted, lm_head, int(variant.k), variant.weighting, candidates)
    else:
        chunks = top_k(adjusted, lm_head, int(variant.k), variant.weighting)
    return (*weighted_vectors([vocab.merge(i, w) for i, w in zip(chunks.ids, chunks.weights)]), entry)
