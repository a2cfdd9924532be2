"""Runs in ranx's spirit: the Run type, TREC files, scoring, and the experiment list every report names runs from.

A run is `{qid: [(docid, score), ...]}` best first. TREC files are written atomically with the run's name as tag.
`score` is the one place a run is scored (ranx), for evaluate, sweep and the training curve alike. `EXPERIMENTS`
declares the leaderboard's sparse runs once, by name: evaluate makes them, sweep and fusion look them up by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.errors import InputError
from plumbing.artifacts import write_text
from plumbing.settings import DEFAULT_K

Run = dict[str, list[tuple[str, float]]]
Qrels = dict[str, dict[str, int]]


def write_trec(path: Path, run: Run, tag: str) -> None:
    lines = [f"{qid} Q0 {doc} {rank} {score:.6f} {tag}"
             for qid, hits in run.items() for rank, (doc, score) in enumerate(hits, start=1)]
    write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def read_trec(path: Path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if len(parts) != 6:
                raise InputError(f"{path}:{number}: not a TREC run line (qid Q0 docid rank score tag)")
            run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
    return run


# BEIR's evaluation drops a hit whose document id is the query's own id (EvaluateRetrieval's ignore_identical_ids,
# True by default, on every dataset), as every Pyserini 2CR command does (`--remove-query`): so do we, unless
# `--keep-identical-ids` asks otherwise (SearchSettings.keep_identical_ids).
IDENTICAL_IDS_RULE = "hits whose id is the query's id removed (BEIR ignore_identical_ids, Pyserini --remove-query)"


def exclude_own_ids(run: Run) -> Run:
    return {qid: [(doc, s) for doc, s in hits if doc != qid] for qid, hits in run.items()}


def ranx_run(path: Path):
    from ranx import Run as RanxRun

    return RanxRun.from_dict(read_trec(path), name=path.stem)


NO_HIT = "<keytokens:no-hit>"  # stands in for a query's empty ranking where ranx needs one; never written to a run


def fusable_runs(paths: list[Path]) -> list:
    """The TREC runs at `paths` as ranx runs over the same query ids (see `fusable`), named by file stem."""
    return fusable({p.stem: read_trec(p) for p in paths})


def fusable(runs: dict[str, dict[str, dict[str, float]]]) -> list:
    """ranx runs over the same query ids, for fusion: a query that one run found nothing for (a query of stopwords
    only, an empty query) gets an empty ranking there (NO_HIT, scored 0), so fusion takes the union as Pyserini's
    and ranx's fusions of such runs do, instead of refusing the runs. `fused_ranking` drops NO_HIT again."""
    from ranx import Run as RanxRun

    queries = sorted({q for run in runs.values() for q in run})
    return [RanxRun.from_dict({q: run.get(q) or {NO_HIT: 0.0} for q in queries}, name=name) for name, run in runs.items()]


def fused_ranking(fused, depth: int) -> Run:
    """A fused ranx run as our Run: top `depth` per query by score, NO_HIT removed (a query may keep no hit)."""
    return {q: [(d, s) for d, s in sorted(docs.items(), key=lambda x: -x[1]) if d != NO_HIT][:depth]
            for q, docs in fused.to_dict().items()}


def score(qrels: Qrels, run: Run | Path, metric: str = "ndcg@10") -> float:
    """One metric of a run (a TREC file or an in-memory run) against qrels, rounded to 4 places."""
    from ranx import Qrels as RanxQrels
    from ranx import Run as RanxRun
    from ranx import evaluate

    if isinstance(run, Path):
        scores = read_trec(run)
    else:
        scores = {q: {d: s for d, s in hits} or {"<none>": 0.0} for q, hits in run.items()}
    return round(float(evaluate(RanxQrels.from_dict(qrels), RanxRun.from_dict(scores), metric,
                                make_comparable=True)), 4)


def sparse_run_name(model: str, variant: str, mode: str | None = None, qweight: str | None = None,
                    engine_suffix: str = "") -> str:
    """The one place a sparse run is named (search writes it, evaluate looks it up): model, variant, query mode
    (none for SPLADE, whose queries are its own), and the engine when it is not Lucene."""
    query = f".{mode}-{qweight}" if mode else ""
    return f"{model}.{variant}{query}{engine_suffix}"


@dataclass(frozen=True)
class Experiment:
    """A named family of sparse runs: a fixed variant (levers over the defaults) and the query modes it is run with.

    `levers=None` is the user's own variant (the command line's, or the defaults)."""

    name: str
    levers: dict | None
    modes: tuple[tuple[str, str], ...]  # (query, qweight)
    full_only: bool = True  # skipped by `evaluate --quick`


# Sub-word variants: the tokenizer's own tokens, normalised or raw (the paper's terms).
TOP_K_ALIGNED = {"source": "aligned", "k": DEFAULT_K, "weighting": "log", "normalize": "on", "vocab": "text", "pc1": "remove",
                 "terms": "tokens"}
PAPER_FAITHFUL = {"source": "aligned", "k": 128, "weighting": "logit", "normalize": "off", "vocab": "all", "pc1": "off",
                  "terms": "tokens"}
EXPERIMENTS = (
    Experiment("default", None, (("tokens", "idf"), ("aligned", "idf")), full_only=False),
    Experiment("top-k aligned", TOP_K_ALIGNED, (("tokens", "idf"), ("aligned", "idf"))),
    Experiment("sub-word hybrid", {"source": "hybrid", "weighting": "bm25tf", "pc1": "remove", "terms": "tokens"},
               (("tokens", "idf"),), full_only=False),
    Experiment("top-k aligned pc1=off", {**TOP_K_ALIGNED, "pc1": "off"}, (("tokens", "idf"),)),
    Experiment("top-k aligned pc1=auto", {**TOP_K_ALIGNED, "pc1": "auto"}, (("tokens", "idf"),)),
    Experiment("paper-faithful", PAPER_FAITHFUL, (("tokens", "count"), ("aligned", "count"))),
    Experiment("control uniform", {"source": "own", "weighting": "uniform", "terms": "tokens"}, (("tokens", "idf"),)),
    Experiment("control bm25tf", {"source": "own", "weighting": "bm25tf", "terms": "tokens"}, (("tokens", "idf"),)),
    # terms=words: Lucene's analyzed words (encoders/words.py). The control is BM25 itself in impact form (the check
    # that the mapping is right); the hybrid (the default variant) adds the aligned logits of each word's pieces.
    Experiment("words control bm25tf", {"source": "own", "weighting": "bm25tf", "terms": "words"}, (("tokens", "idf"),),
               full_only=False),
    Experiment("words hybrid", {"source": "hybrid", "weighting": "bm25tf", "terms": "words"},
               (("tokens", "idf"), ("aligned", "idf")), full_only=False),
    Experiment("words paper-faithful", {**PAPER_FAITHFUL, "normalize": "on", "terms": "words"}, (("aligned", "count"),)),
    # own words + the top-64 words of the embedding: what `make train sparse_target=expansion` trains (no LLM query)
    Experiment("words expansion", {"source": "expansion", "weighting": "log", "k": 64, "pc1": "off", "terms": "words"},
               (("tokens", "idf"),)),
)
