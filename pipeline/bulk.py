"""Bulk files for the sparse engines keytokens cannot run here, in their documented formats.

  opensearch  neural sparse: an index body whose field is `rank_features`, `_bulk` NDJSON of the documents
              ({token: weight}), and one `neural_sparse` query per line with `query_tokens`
  elastic     `sparse_vector`: an index body whose field is `sparse_vector`, `_bulk` NDJSON of the documents, and one
              `sparse_vector` query per line with `query_vector`
Feature names may not contain `.` in Elasticsearch (ELSER rewrites it), and both engines split paths on it, so
every token goes through `feature_name`, a reversible escape (`%` -> `%25`, `.` -> `%2E`; `token_of` undoes it).
Weights are the collection's integer impacts (at most 100: exact in Elasticsearch's 9 significant bits).

    python -m pipeline.bulk --engine opensearch|elastic [variant options]  ->  <variant>/bulk/<engine>/
"""
from __future__ import annotations

from plumbing import cli
from steps.bulk import ENGINES, export


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.bulk", __doc__, cli.dataset_options, cli.model_options, cli.variant_options)
    parser.add_argument("--engine", required=True, choices=tuple(ENGINES), help="opensearch or elastic")
    args = parser.parse_args(argv)
    model = cli.model_settings(args)
    export(cli.data_settings(args), model, cli.variant(args, model), args.engine)
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
