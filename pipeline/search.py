"""Stage 4, search: indexes -> TREC runs (k=1000) under `runs/<dataset>/`, one file per run plus its manifest.

Kinds of run:
  sparse   the aligned-token impact index; --query tokens (own tokens, no LLM) or aligned (+ top-M aligned tokens)
  control  the same path over the LLM-free `--source own` collection
  dense    FAISS IndexFlatIP over the L2-normalised stored document embeddings and embedded queries
  bm25     Lucene BM25 (k1=0.9, b=0.4) over title + text

`--explain QID` prints, for one query and its top documents, the shared terms and each term's contribution
(query weight x document weight): what an aligned-token index can say about a hit and a dense index cannot.
"""
from __future__ import annotations

from plumbing import cli
from steps.search import explain, run_bm25, run_dense, run_sparse


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.search", __doc__, cli.dataset_options, cli.model_options, cli.variant_options,
                              cli.search_options)
    parser.add_argument("--kind", default="sparse", choices=("sparse", "dense", "bm25"), help="which run (default sparse)")
    parser.add_argument("--explain", metavar="QID", default=None, help="explain one query's top hits instead of a run")
    args = parser.parse_args(argv)
    data, model = cli.data_settings(args), cli.model_settings(args)
    dataset = data.load()
    if args.explain:
        print(explain(dataset, data, model, cli.variant(args, model), cli.query_settings(args), args.explain, args.index))
    elif args.kind == "sparse":
        run_sparse(dataset, data, model, cli.variant(args, model), cli.query_settings(args), cli.search_settings(args))
    elif args.kind == "dense":
        run_dense(dataset, data, model, cli.search_settings(args))
    else:
        from steps.needs import Needs

        run_bm25(dataset, data, cli.search_settings(args), Needs(dataset, data, args.threads).bm25())
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
