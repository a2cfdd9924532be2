"""Stage 2, project: stored embeddings -> JsonVectorCollection shards for one variant, without the transformer.

Reads only `indexes/<dataset>/<model>/embeddings/` (plus the model's LM head and tokenizer) and writes
`indexes/<dataset>/<model>/<variant>/collection/part-XXXXX.jsonl` lines `{"id", "contents", "vector": {term: int}}`
and a manifest. A K sweep therefore costs seconds per K, not an LLM pass.

Variants:
  --source aligned   top-K aligned tokens of the (PC1-adjusted) embedding, weighted by --weighting logit|log|softmax
  --source own       the LLM-free control: each document's own tokens, --weighting uniform|bm25tf
  --source hybrid    own tokens, BM25-tf x (1 + the token's aligned logit, min-max scaled in the document)
  --vocab text       keep only aligned tokens whose term occurs in the document (all = expansion, as the paper)
  --normalize on     canonical lower-cased terms (see encoders/vocab.py); off = raw tokenizer tokens
  --pc1 remove|auto|L  project PC1 out of the embedding, or add L * u1 (auto: L maximising local alignment);
                     u1 estimated on this corpus, kept in the manifest so queries get the same adjustment
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from encoders.aligned import WEIGHTINGS, adjust_pc1, candidate_logits, global_scale, quantize, top_k
from encoders.models import load_model, load_tokenizer
from encoders.pc1 import pc1_setting
from encoders.presets import resolve_preset
from encoders.vocab import Vocabulary
from pipeline.artifacts import folder_lock, manifest, read_json, write_json, write_text
from pipeline.datasets import add_dataset_args
from pipeline.encode import add_model_args, load_shards, load_sparse, model_dir
from pipeline.errors import InputError, cli_main, stage_parser

CONTROL_WEIGHTINGS = ("uniform", "bm25tf")
PROJECT_BATCH = 256  # documents per LM-head batch: [256, vocab] logits at a time, never the whole corpus
COLLECTION_PART = 10_000  # documents per JsonVectorCollection file
# Anserini skips documents without terms; this term (no tokenizer term can equal it: `<` and `:` around a space-free
# word are kept, but `keytokens:empty` is no vocabulary entry) keeps them in the index so counts match.
EMPTY_TERM = "<keytokens:empty>"
BM25_K1, BM25_B = 0.9, 0.4
# The default variant: chosen on scifact's train split by `make sweep` (runs/scifact/sweep.md): the hybrid won among the
# LLM variants (train nDCG@10 0.6250; the best top-K aligned variant, K=1024, 0.5775).
DEFAULTS = {"source": "hybrid", "k": 1024, "weighting": None, "normalize": "on", "vocab": "text", "pc1": "remove"}
DEFAULT_WEIGHTING = {"aligned": "log", "own": "bm25tf", "hybrid": "bm25tf"}


def variant_name(settings: dict) -> str:
    norm = "norm" if settings["normalize"] == "on" else "raw"
    if settings["source"] == "splade":
        return f"splade-{norm}"
    if settings["source"] == "own":
        return f"own-{settings['weighting']}-{norm}"
    if settings["source"] == "hybrid":
        return f"hybrid-{settings['weighting']}-{norm}-pc1{str(settings['pc1']).replace('-', 'm')}"
    pc1 = str(settings["pc1"]).replace("-", "m")
    return f"k{settings['k']}-{settings['weighting']}-{norm}-{settings['vocab']}-pc1{pc1}"


def variant_settings(args: argparse.Namespace) -> dict:
    if resolve_preset(args.model).kind == "splade":  # SPLADE's own weights over raw WordPiece terms by default
        return {"source": "splade", "k": None, "weighting": "max log(1+relu(mlm))",
                "normalize": getattr(args, "normalize", None) or "off", "vocab": "all", "pc1": "off"}
    settings = {key: getattr(args, key) if getattr(args, key, None) is not None else value
                for key, value in DEFAULTS.items()}
    if settings["weighting"] is None:
        settings["weighting"] = DEFAULT_WEIGHTING.get(settings["source"])
    _validate(settings)
    return settings


def _validate(settings: dict) -> None:
    if settings["source"] not in ("aligned", "own", "hybrid"):
        raise InputError(f"source={settings['source']}: choose aligned, own or hybrid")
    allowed = {"aligned": WEIGHTINGS, "own": CONTROL_WEIGHTINGS, "hybrid": ("bm25tf",)}[settings["source"]]
    if settings["weighting"] not in allowed:
        raise InputError(f"weighting={settings['weighting']} is not for source={settings['source']}: choose {', '.join(allowed)}")
    if settings["normalize"] not in ("on", "off") or settings["vocab"] not in ("all", "text"):
        raise InputError(f"normalize={settings['normalize']} vocab={settings['vocab']}: use normalize=on|off, vocab=all|text")
    if int(settings["k"]) <= 0:
        raise InputError(f"k={settings['k']}: K must be a positive number of tokens")
    if settings["pc1"] not in ("off", "remove", "auto"):
        try:
            float(settings["pc1"])
        except ValueError:
            raise InputError(f"pc1={settings['pc1']}: use off, remove, auto or a number lambda") from None


def bm25_tf(counts: Counter, avg_len: float) -> dict[str, float]:
    """BM25's saturated term frequency (k1=0.9, b=0.4) of a document's own terms: the LLM-free control."""
    length = sum(counts.values())
    norm = BM25_K1 * (1 - BM25_B + BM25_B * length / max(avg_len, 1e-9))
    return {term: tf * (BM25_K1 + 1) / (tf + norm) for term, tf in counts.items()}


def _term_candidates(vocab: Vocabulary, token_ids: np.ndarray, term_ids: dict[str, list[int]]) -> np.ndarray:
    """Token ids whose term occurs in the document (so `ĠCat` may stand for the document's `cat`)."""
    terms = vocab.own_term_counts(token_ids)
    if not terms:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate([term_ids[t] for t in terms]))


def project(args: argparse.Namespace) -> Path:
    preset = resolve_preset(args.model, args.pooling, args.max_length, args.batch_size)
    settings = variant_settings(args)
    base = model_dir(args, preset.name)
    out = base / variant_name(settings)
    with folder_lock(out):
        embeddings_manifest = read_json(base / "embeddings" / "manifest.json", "embeddings manifest")
        done = out / "manifest.json"
        previous = read_json(done) if done.exists() else {}
        if previous.get("settings") == settings and previous.get("embeddings_written") == embeddings_manifest["written"]:
            print(f"collection up to date: {out / 'collection'}")
            return out
        started = time.time()
        doc_ids, embeddings, tokens = load_shards(base / "embeddings")
        vocab = Vocabulary(load_tokenizer(preset.source), settings["normalize"] == "on")
        lm_head = load_model(preset, args.device, args.dtype).lm_head if settings["source"] in ("aligned", "hybrid") else None
        pc1 = None
        if settings["source"] == "splade":
            vectors, scale = _weighted_vectors([vocab.merge(ids, w) for ids, w in load_sparse(base / "embeddings")])
        elif settings["source"] == "own":
            vectors, scale = _own_vectors(vocab, tokens, settings)
        elif settings["source"] == "hybrid":
            pc1 = pc1_setting(embeddings, str(settings["pc1"]), local_alignment_score(vocab, lm_head, tokens))
            vectors, scale = _hybrid_vectors(vocab, adjust_pc1(embeddings, pc1), lm_head, tokens)
        else:
            pc1 = pc1_setting(embeddings, str(settings["pc1"]), local_alignment_score(vocab, lm_head, tokens))
            vectors, scale = aligned_vectors(vocab, adjust_pc1(embeddings, pc1), lm_head, tokens, settings)
        collection = out / "collection"
        collection.mkdir(parents=True, exist_ok=True)
        for old in collection.glob("part-*.jsonl"):
            old.unlink()
        stats = write_collection(collection, doc_ids, vectors)
        info = manifest("project", model=preset.name, preset=preset.describe(), variant=out.name, settings=settings,
                        scale=scale, max_weight=100, pc1=pc1, embeddings=str(base / "embeddings"),
                        embeddings_written=embeddings_manifest["written"], counts=stats,
                        timings={"seconds": round(time.time() - started, 1)},
                        merge="max over tokens mapping to one term")
        write_json(done, info)
    print(f"collection: {collection} ({stats['documents']} docs, {stats['avg_terms_per_document']} terms/doc)")
    return out


def local_alignment_score(vocab: Vocabulary, lm_head, tokens: list[np.ndarray]):
    """Score for pc1=auto: the local alignment rate of adjusted embeddings with their documents' own tokens."""
    from encoders.alignment import measure

    return lambda adjusted, rows: measure(vocab, adjusted, lm_head, [tokens[i] for i in rows])[0].local


def _own_vectors(vocab: Vocabulary, tokens: list[np.ndarray], settings: dict) -> tuple[list[dict[str, int]], float]:
    counts = [vocab.own_term_counts(ids) for ids in tokens]
    if settings["weighting"] == "uniform":
        return [{term: 1 for term in c} for c in counts], 1.0
    avg_len = float(np.mean([sum(c.values()) for c in counts])) if counts else 1.0
    scale = 100 / (BM25_K1 + 1)
    return [quantize(bm25_tf(c, avg_len), scale) for c in counts], scale


def _hybrid_vectors(vocab: Vocabulary, embeddings: np.ndarray, lm_head, tokens: list[np.ndarray]
                    ) -> tuple[list[dict[str, int]], float]:
    """Own terms with BM25-tf x (1 + a), a in [0, 1] the term's aligned logit min-max scaled within the document.

    The LLM-free control says how much plain term statistics give; `a` is what the aligned tokens add on top of
    them: among a document's own terms, those its embedding decodes to get up to twice the weight.
    """
    term_ids = _term_index(vocab)
    counts = [vocab.own_term_counts(ids) for ids in tokens]
    avg_len = float(np.mean([sum(c.values()) for c in counts])) if counts else 1.0
    candidates = [_term_candidates(vocab, ids, term_ids) for ids in tokens]
    merged = []
    for ids, logits, count in zip(candidates, candidate_logits(embeddings, lm_head, candidates), counts):
        term_logit = vocab.merge(ids, logits)
        if not term_logit:
            merged.append({})
            continue
        low, high = min(term_logit.values()), max(term_logit.values())
        span = max(high - low, 1e-9)
        tf = bm25_tf(count, avg_len)
        merged.append({t: tf[t] * (1 + (term_logit[t] - low) / span) for t in tf})
    scale = 100 / (2 * (BM25_K1 + 1))
    return [quantize(doc, scale) for doc in merged], scale


def _term_index(vocab: Vocabulary) -> dict[str, list[int]]:
    """Term -> every token id that maps to it."""
    term_ids: dict[str, list[int]] = {}
    for token_id, term in enumerate(vocab.terms):
        if term is not None:
            term_ids.setdefault(term, []).append(token_id)
    return term_ids


def aligned_vectors(vocab: Vocabulary, embeddings: np.ndarray, lm_head, tokens: list[np.ndarray],
                     settings: dict) -> tuple[list[dict[str, int]], float]:
    k = int(settings["k"])
    if k >= len(vocab):
        raise InputError(f"k={k} is not smaller than the vocabulary ({len(vocab)} tokens); choose a smaller K")
    candidates = None
    if settings["vocab"] == "text":
        term_ids = _term_index(vocab)
        candidates = [_term_candidates(vocab, ids, term_ids) for ids in tokens]
    merged: list[dict[str, float]] = []
    for start in tqdm(range(0, len(embeddings), PROJECT_BATCH), desc="project", unit="batch"):
        chunk = top_k(embeddings[start:start + PROJECT_BATCH], lm_head, k, settings["weighting"],
                      candidates[start:start + PROJECT_BATCH] if candidates is not None else None)
        merged.extend(vocab.merge(ids, weights) for ids, weights in zip(chunk.ids, chunk.weights))
    return _weighted_vectors(merged)


def _weighted_vectors(merged: list[dict[str, float]]) -> tuple[list[dict[str, int]], float]:
    """Quantize float term weights with one global scale for the whole collection."""
    scale = global_scale(np.array([w for doc in merged for w in doc.values()], dtype=np.float32))
    return [quantize(doc, scale) for doc in merged], scale


def write_collection(folder: Path, doc_ids: list[str], vectors: list[dict[str, int]]) -> dict:
    lengths = [len(v) for v in vectors]
    for number, start in enumerate(range(0, len(doc_ids), COLLECTION_PART)):
        part = slice(start, start + COLLECTION_PART)
        lines = [json.dumps({"id": doc_id, "contents": "", "vector": vector or {EMPTY_TERM: 1}}, ensure_ascii=False)
                 for doc_id, vector in zip(doc_ids[part], vectors[part])]
        write_text(folder / f"part-{number:05d}.jsonl", "\n".join(lines) + "\n")
    return {"documents": len(doc_ids), "documents_without_terms": int(sum(n == 0 for n in lengths)),
            "avg_terms_per_document": round(float(np.mean(lengths)) if lengths else 0.0, 1),
            "postings_weight_sum": int(sum(sum(v.values()) for v in vectors))}


def add_variant_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("variant (defaults: " + ", ".join(f"{k}={v}" for k, v in DEFAULTS.items()) + ")")
    group.add_argument("--source", default=None, help="aligned (LLM aligned tokens), own (LLM-free control) or hybrid "
                       "(own tokens, BM25-tf x (1 + aligned logit))")
    group.add_argument("--k", type=int, default=None, help="aligned tokens kept per document")
    group.add_argument("--weighting", default=None, help="aligned: logit|log|softmax; own: uniform|bm25tf")
    group.add_argument("--normalize", default=None, help="on: canonical lower-cased terms; off: raw tokens")
    group.add_argument("--vocab", default=None, help="all: expansion; text: only terms occurring in the document")
    group.add_argument("--pc1", default=None, help="off, remove, auto (lambda maximising local alignment), "
                       "or lambda for e + lambda * u1")


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("pipeline.project", __doc__, add_dataset_args, add_model_args, add_variant_args)
    project(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    cli_main(main)
