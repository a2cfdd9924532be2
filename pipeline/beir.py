"""make beir: the BEIR suite in one command, a cross-dataset table, and the exports shared leaderboards take.

Datasets: `all` is the 13 public BEIR sets papers average (trec-covid, nfcorpus, nq, hotpotqa, fiqa, arguana,
webis-touche2020, quora, dbpedia-entity, scidocs, fever, climate-fever, scifact); `cqadupstack` adds its 12 forums
(one column, their mean, as papers report it); `msmarco` (dev split) on request; the licence-gated bioasq,
signal1m, trec-news and robust04 by name, where a BEIR folder for them exists under BEIR_DIR or ir_datasets' cache.
Each dataset goes through `make eval` (pipeline/evaluate.py) exactly as alone, so its leaderboard is the same; a
dataset whose metrics.json is already there for this model is reused (the suite resumes); a dataset that fails is
reported in one line, the rest carry on, and the exit status is 1. BEIR's rule (a query's own id is not a hit) is
applied on every dataset where every run is written (pipeline/search.py); CQADupStack is a column only as the mean of
all 12 forums (a partial set is named so and left out of the mean).

Outputs under runs/beir/<model>/: suite.json, suite.md (rows = systems, columns = datasets, last column the mean
over the datasets every row has; Pyserini's published 2CR rows beside ours; sparse/dense ratios), suite.png, and
exports/: MTEB TaskResult JSONs, 2cr.yaml, ir-metadata YAMLs and annotated runs (plumbing/exports.py).
"""
from __future__ import annotations

from plumbing import cli
from steps.beir import expand, reproduction_flags, run_suite, write_suite
import sys


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.beir", __doc__, cli.model_options, cli.variant_options, cli.search_options)
    parser.add_argument("--datasets", default="all", help="all (the 13 public BEIR sets), cqadupstack, msmarco, or "
                        "names, comma-separated (default all)")
    parser.add_argument("--beir-dir", default=None, help="folder holding <dataset>/ BEIR folders (default: $BEIR_DIR)")
    parser.add_argument("--limit", type=int, default=None, help="per dataset a deterministic slice: the first N queries, "
                        "their judged documents and distractors up to N*10 documents (as `make eval limit=N`)")
    parser.add_argument("--quick", action="store_true", help="per dataset only BM25, dense and the default sparse variant")
    parser.add_argument("--no-train", action="store_true", help="skip the train-split runs that tune the wsum fusion")
    parser.add_argument("--force", action="store_true", help="rerun datasets and searches even when results exist")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    names = expand(args.datasets)
    model, search = cli.model_settings(args), cli.search_settings(args)
    levers = cli.variant_levers(args, model)
    status = run_suite(names, model, levers, args.m, search, args.quick, args.no_train, args.beir_dir, args.limit)
    write_suite(names, status, model, levers, args.limit, reproduction_flags(argv, model))
    failed = [n for n, s in status.items() if s["status"] == "failed"]
    if failed:
        print(f"{len(failed)} of {len(names)} dataset(s) failed: {', '.join(failed)} (see suite.md); the rest are done")
    return 1 if failed else 0


if __name__ == "__main__":
    cli.cli_main(main)
