"""Scale measured, not extrapolated: synthetic impact collections of 100k-1M documents, Lucene against other engines.

The synthetic documents follow the real collection's shape: postings per document and document frequencies from
the dataset's own terms (the hybrid variants index exactly the document's own terms, so Lucene's analyzer for
`--terms words`, the default, or the tokenizer for `--terms tokens` gives them, no LLM), terms drawn by the Zipf
law fitted to those frequencies from a vocabulary that grows with the corpus (Heaps' law; for tokens up to the
tokenizer's own term count), impact weights drawn from a real collection's weight histogram. Queries: 20-term
samples of the same law with idf-like weights, 1,000 hits. Word and sub-word curves are written apart
(scale.json for words, scale-tokens.json), so both can stand side by side.
For each size: build time and bytes of the Lucene impact index and of each other engine's (Anserini's path, Qdrant
Edge, Seismic, PISA), search p50/p95 one query at a time (one thread, warm), and each engine's agreement with the
exact top-k (Qdrant and PISA are exact, so 1.0 up to ties; Seismic is approximate).

    python -m studies.scale [--sizes 100000,300000,1000000] [--queries 200] [--terms words|tokens]
        ->  runs/bench/scale.json, scale.md (words) or scale-tokens.json, scale-tokens.md
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from common import layout
from common.errors import InputError
from encoders.models import load_tokenizer
from encoders.vocab import Vocabulary
from plumbing import cli
from plumbing.artifacts import manifest, write_json, write_text
from plumbing.collection import read_collection
from plumbing.settings import TERMS, DataSettings, ModelSettings, Variant

PART = 10_000
ENGINES = ("lucene", "anserini", "qdrant", "seismic", "pisa")
QUERY_TERMS = 20
DEPTH = 1000


def corpus_profile(data: DataSettings, model: ModelSettings, terms: str = "words") -> dict:
    """Postings per document and the Zipf exponent of document frequencies, from the corpus's own terms: its
    Lucene-analyzed words, or its normalised tokenizer tokens (`terms=tokens`, capped at the tokenizer's count)."""
    dataset = data.load()
    lengths, df = [], {}
    if terms == "words":
        from encoders.words import word_analyzer

        analyzer = word_analyzer()
        own = (set(analyzer.terms(doc.contents)) for doc in dataset.corpus.values())
        cap = {}
    else:
        vocab = Vocabulary(load_tokenizer(model.preset.source), normalize=True)
        own = (vocab.own_term_counts(vocab.tokenizer(doc.contents, add_special_tokens=False)["input_ids"])
               for doc in dataset.corpus.values())
        cap = {"max_vocabulary": len({t for t in vocab.terms if t is not None})}
    for document_terms in own:
        lengths.append(len(document_terms))
        for term in document_terms:
            df[term] = df.get(term, 0) + 1
    freq = np.sort(np.array(list(df.values()), dtype=float))[::-1]
    ranks = np.arange(1, len(freq) + 1)
    head = slice(0, max(10, len(freq) // 2))  # the law's fit on the frequent half (the tail is all ones)
    exponent = float(-np.polyfit(np.log(ranks[head]), np.log(freq[head]), 1)[0])
    return {"documents": len(lengths), "lengths": lengths, "vocabulary": len(df), "zipf_exponent": round(exponent, 3),
            "mean_postings": round(float(np.mean(lengths)), 1), "terms": terms, **cap}


def weight_histogram(collection: Path) -> np.ndarray:
    """Probability of each integer impact 1..100 in a real collection."""
    counts = np.zeros(101)
    for obj in read_collection(collection):
        for weight in obj["vector"].values():
            counts[min(int(weight), 100)] += 1
    counts[0] = 0
    return counts / counts.sum()


def _zipf_sampler(vocabulary: int, exponent: float, rng: np.random.Generator):
    p = 1.0 / np.arange(1, vocabulary + 1) ** exponent
    cdf = np.cumsum(p / p.sum())
    return lambda n: np.minimum(np.searchsorted(cdf, rng.random(n)), vocabulary - 1)


def synthesize(folder: Path, n: int, profile: dict, weights: np.ndarray, seed: int = 0) -> int:
    """`n` synthetic documents in JsonVectorCollection parts; the vocabulary grows with n as Heaps' law has it."""
    rng = np.random.default_rng(seed)
    vocabulary = int(profile["vocabulary"] * (n / profile["documents"]) ** 0.6)  # Heaps' law (tokens: capped at the
    vocabulary = max(min(vocabulary, profile.get("max_vocabulary", vocabulary)), 2 * max(profile["lengths"]))  # tokenizer's)
    draw = _zipf_sampler(vocabulary, profile["zipf_exponent"], rng)
    lengths = rng.choice(np.maximum(profile["lengths"], 1), size=n)
    folder.mkdir(parents=True, exist_ok=True)
    for part, start in enumerate(range(0, n, PART)):
        lines = []
        for row in range(start, min(n, start + PART)):
            length = int(lengths[row])
            terms = np.unique(draw(length * 2))
            while len(terms) < length:  # the Zipf head repeats: draw until the document has its length
                terms = np.unique(np.concatenate([terms, draw(length)]))
            terms = rng.permutation(terms)[:length]
            values = rng.choice(101, size=len(terms), p=weights)
            lines.append(json.dumps({"id": f"d{row}", "contents": "",
                                     "vector": {f"t{t}": int(v) for t, v in zip(terms, values)}}))
        (folder / f"part-{part:05d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vocabulary


def synthetic_queries(count: int, vocabulary: int, profile: dict, seed: int = 1) -> list[dict[str, int]]:
    rng = np.random.default_rng(seed)
    draw = _zipf_sampler(vocabulary, profile["zipf_exponent"], rng)
    queries = []
    for _ in range(count):
        terms = np.unique(draw(QUERY_TERMS))
        queries.append({f"t{t}": int(10 + rng.integers(0, 60)) for t in terms})
    return queries


def measure(n: int, profile: dict, weights: np.ndarray, queries_count: int, engines: tuple[str, ...] = ENGINES) -> dict:
    """One size: the engines built from the same synthetic collection and searched with the same queries. The lean
    Lucene path always runs: it is the exact reference the others are checked against."""
    from engines.lucene import build_lucene
    from engines.retrieval import ImpactIndex
    from studies.bench import latency_stats, timed_search

    work = Path(tempfile.mkdtemp(prefix=f"kt-scale-{n}-"))
    try:
        started = time.time()
        vocabulary = synthesize(work / "collection", n, profile, weights)
        generated = time.time() - started
        lucene = build_lucene(work / "collection", work / "lucene", impact=True, threads=2)
        queries = synthetic_queries(queries_count, vocabulary, profile)
        lucene_index = ImpactIndex(work / "lucene")
        lucene_hits, lucene_seconds = timed_search(lambda q: lucene_index.search_one(q, DEPTH), queries)
        lucene_index.close()
        row = {"documents": n, "vocabulary": vocabulary, "generate_seconds": round(generated, 1),
               "lucene": {"build_seconds": lucene["seconds"], "bytes": lucene["bytes"], **latency_stats(lucene_seconds)}}
        if "anserini" in engines:
            anserini_hits, anserini_seconds = timed_search(anserini_search(work / "lucene"), queries)
            assert anserini_hits == lucene_hits, "the lean path must give SimpleImpactSearcher's hits"
            row["anserini"] = {"build_seconds": lucene["seconds"], "bytes": lucene["bytes"], **latency_stats(anserini_seconds)}
        if "qdrant" in engines:
            qdrant_stats, qdrant_hits, qdrant_seconds = qdrant_engine(work, queries)
            row["qdrant"] = {**qdrant_stats, **latency_stats(qdrant_seconds)}
            row["top10_agreement"] = round(recall(lucene_hits, qdrant_hits, 10), 4)
        if "seismic" in engines:
            seismic_stats, seismic = seismic_engine(work / "collection", work)
            seismic_hits, seismic_seconds = timed_search(seismic, queries)
            row["seismic"] = {**seismic_stats, **latency_stats(seismic_seconds),
                              "recall@10": round(recall(lucene_hits, seismic_hits, 10), 4),
                              "recall@1000": round(recall(lucene_hits, seismic_hits, DEPTH), 4)}
        if "pisa" in engines:
            from engines.pisa import PisaIndex, build_pisa

            built = build_pisa(work / "collection", work / "pisa")
            pisa = PisaIndex(work / "pisa")
            pisa_hits, pisa_seconds = timed_search(lambda q: pisa.search_one(q, DEPTH), queries)
            row["pisa"] = {**built, **latency_stats(pisa_seconds), "same_scores": same_scores(lucene_hits, pisa_hits),
                           "recall@10": round(recall(lucene_hits, pisa_hits, 10), 4),
                           "recall@1000": round(recall(lucene_hits, pisa_hits, DEPTH), 4)}
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def qdrant_engine(work: Path, queries: list[dict[str, int]]):
    """The same impacts in a Qdrant Edge shard (exact): build stats, hits and per-query seconds."""
    from engines.qdrant import build_edge_shard, build_points
    from engines.qdrant import QdrantIndex
    from studies.bench import timed_search

    started = time.time()
    doc_ids, terms, vectors = build_points(work / "collection")
    (work / "qdrant").mkdir()
    (work / "qdrant" / "terms.json").write_text(json.dumps(terms))
    (work / "qdrant" / "docids.json").write_text(json.dumps(doc_ids))
    del doc_ids, terms
    built = build_edge_shard(work / "qdrant" / "shard", vectors)
    del vectors
    index = QdrantIndex(work / "qdrant")
    hits, seconds = timed_search(lambda q: index.search_one(q, DEPTH), queries)
    index.close()
    return ({"build_seconds": built["seconds"], "bytes": built["bytes"],
             "seconds_with_reading": round(time.time() - started, 1)}, hits, seconds)


def seismic_engine(collection: Path, work: Path):
    """Seismic (PyPI pyseismic-lsr, Rust; approximate): the same impacts, integer ids; build stats and a searcher."""
    from seismic import SeismicIndex, get_seismic_string


    doc_ids = []
    with (work / "seismic.jsonl").open("w", encoding="utf-8") as handle:
        for row, obj in enumerate(read_collection(collection)):
            doc_ids.append(obj["id"])
            handle.write(json.dumps({"id": row, "content": "", "vector": {t: float(w) for t, w in obj["vector"].items()}}) + "\n")
    started = time.time()
    index = SeismicIndex.build(str(work / "seismic.jsonl"), num_threads=2)
    seconds = time.time() - started
    index.save(str(work / "seismic"))
    size = sum(p.stat().st_size for p in work.glob("seismic*.seismic"))
    kind = get_seismic_string()

    def search(terms: dict[str, int]) -> list[tuple[str, float]]:
        hits = index.search(query_id="q", query_components=np.array(list(terms), dtype=kind),
                            query_values=np.array(list(terms.values()), dtype=np.float32), k=DEPTH,
                            query_cut=len(terms), heap_factor=0.8)
        return [(doc_ids[int(doc)], float(score)) for _, score, doc in hits]

    return {"build_seconds": round(seconds, 1), "bytes": size}, search


def recall(exact: list[list[tuple[str, float]]], approximate: list[list[tuple[str, float]]], k: int) -> float:
    """Mean share of the exact top-k that the approximate engine returns in its top-k."""
    return float(np.mean([len({d for d, _ in a[:k]} & {d for d, _ in b[:k]}) / max(1, min(k, len(a)))
                          for a, b in zip(exact, approximate)]))


def same_scores(exact: list[list[tuple[str, float]]], other: list[list[tuple[str, float]]]) -> float:
    """Share of queries whose score lists are equal rank by rank (exact engines differ only in the order of ties)."""
    return float(np.mean([[round(s, 3) for _, s in a] == [round(s, 3) for _, s in b] for a, b in zip(exact, other)]))


def anserini_search(index_dir: Path):
    """Anserini's SimpleImpactSearcher through pyjnius, as the pipeline searched before the lean path (the baseline)."""
    from common.jvm import autoclass

    searcher = autoclass("io.anserini.search.SimpleImpactSearcher")(str(index_dir))
    JHashMap, JInt = autoclass("java.util.HashMap"), autoclass("java.lang.Integer")

    def search(terms: dict[str, int]) -> list[tuple[str, float]]:
        query = JHashMap()
        for term, weight in terms.items():
            query.put(term, JInt(int(weight)))
        return [(hit.docid, float(hit.score)) for hit in searcher.search(query, DEPTH)]

    return search


def report(results: dict) -> str:
    from studies.bench import SEARCH_WARMUP_PASSES
    lines = [f"# Scale: synthetic impact collections shaped like {results['dataset']} ({results['profile']})", "",
             "| documents | engine | build s | index MB | search p50 ms | p95 ms | recall@10 / @1000 vs exact |",
             "|---|---|---|---|---|---|---|"]
    for row in results["sizes"]:
        for engine in [e for e in ENGINES if e in row]:
            e = row[engine]
            quality = {"qdrant": f"{row.get('top10_agreement')} (exact)",
                       "seismic": f"{e.get('recall@10')} / {e.get('recall@1000')}",
                       "pisa": f"{e.get('recall@10')} / {e.get('recall@1000')} (exact: same scores "
                               f"{e.get('same_scores', 0):.0%})"}.get(engine, "exact")
            lines.append(f"| {row['documents']:,} | {engine} | {e['build_seconds']} | {e['bytes'] / 1e6:.1f} | "
                         f"{e['p50_ms']} | {e['p95_ms']} | {quality} |")
    if len(results["sizes"]) >= 2:
        docs = np.array([r["documents"] for r in results["sizes"]], dtype=float)
        lines += ["", "Least-squares lines through the measured points (per 1M documents; residual = largest misfit):", ""]
        for engine in [e for e in ENGINES if all(e in r for r in results["sizes"])]:
            for key in ("build_seconds", "p50_ms"):
                values = np.array([r[engine][key] for r in results["sizes"]], dtype=float)
                slope, intercept = np.polyfit(docs, values, 1)
                residual = float(np.max(np.abs(values - (slope * docs + intercept))))
                lines.append(f"- {engine} {key}: {slope * 1e6:.3g} per 1M documents + {intercept:.3g} "
                             f"(largest residual {residual:.3g})")
    lines += ["", "lucene: the lean path (keytokens.LeanSearcher, arrays in and out); anserini: the same index through "
              "Anserini's SimpleImpactSearcher and pyjnius (one stored document and one Python object per hit), the "
              "path the pipeline used before; qdrant: the same impacts in a Qdrant Edge shard; seismic: PyPI pyseismic-lsr "
              "with its default build settings and heap_factor 0.8 (approximate: its recall against the exact top-k "
              "is given); pisa: PISA's compiled core from PyPI pyterrier-pisa (block_simdbp, MaxScore, score = query "
              "weight x impact: exact, documents tied at the k-th score may differ). One thread, k=1000, after "
              f"{SEARCH_WARMUP_PASSES} warm passes over the queries; the lean path's "
              "hits equal Anserini's for every query (checked in the run)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("studies.scale", __doc__, cli.dataset_options, cli.model_options)
    parser.add_argument("--sizes", default="100000,300000,1000000", help="synthetic collection sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="queries per size (default 200)")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated, from {', '.join(ENGINES)} (default all; lucene always runs)")
    parser.add_argument("--weights-from", default=None, metavar="COLLECTION",
                        help="a real collection folder for the weight histogram (default: the default variant of the "
                        "dataset slice, which `make index` builds)")
    parser.add_argument("--terms", default=None, choices=TERMS,
                        help="the index terms the synthetic collection is shaped like (default: the default variant's, words)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"sizes={args.sizes}: give document counts, comma-separated (e.g. 100000,1000000)") from None
    if not sizes or min(sizes) <= 0:
        raise InputError(f"sizes={args.sizes}: every size must be a positive number of documents")
    data, model = cli.data_settings(args), cli.model_settings(args)
    variant = Variant.build(model.preset, terms=args.terms)
    weights_from = Path(args.weights_from) if args.weights_from else variant.dir(data, model) / "collection"
    if not weights_from.is_dir():
        raise InputError(f"no collection at {weights_from}; run `make index` first or pass --weights-from")
    profile = corpus_profile(DataSettings(data.name, data.split, None, data.data_dir, data.beir_dir), model,
                             variant.terms)
    weights = weight_histogram(weights_from)
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise InputError(f"engines={args.engines}: unknown {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    results = {"dataset": data.name, "profile": f"{profile['mean_postings']} {variant.terms} postings/doc, Zipf "
               f"s={profile['zipf_exponent']}, weights from {weights_from.parent.name}", "terms": variant.terms, "sizes": []}
    out = layout.bench_dir()
    name = "scale" if variant.terms == "words" else f"scale-{variant.terms}"
    for n in sizes:
        print(f"scale: {n:,} documents", flush=True)
        results["sizes"].append(measure(n, profile, weights, args.queries, engines))
        write_json(out / f"{name}.json", manifest("scale", **results, weights=weights.tolist()))
        write_text(out / f"{name}.md", report(results))
    print(report(results))
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
