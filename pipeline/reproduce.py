"""The command a 2CR condition runs: one dataset evaluated as `make beir` evaluated it, one run copied out.

    python -m pipeline.reproduce --dataset cqadupstack-android --run bm25 --output run.txt [the suite's flags]

`--dataset` takes Pyserini's key (`cqadupstack-android`) or ours (`cqadupstack/android`); the split is the one the
suite uses (dev for msmarco, else test), the data is found as for `make beir` (BEIR_DIR, or ir_datasets). The
dataset goes through the evaluate stage with the suite's flags (variant, slice, --quick, --no-train, engine), so a
run already there is reused when its inputs match and made again when they do not, and the run file named by
`--run` is copied to `--output`: the file whose scores the 2CR YAML lists.
"""
from __future__ import annotations

from pathlib import Path
from plumbing import cli
from steps.reproduce import reproduce


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.reproduce", __doc__, cli.model_options, cli.variant_options, cli.search_options)
    parser.add_argument("--dataset", required=True, help="Pyserini's key (cqadupstack-android) or ours")
    parser.add_argument("--run", required=True, help="the run's name, e.g. bm25 or smollm2.dense")
    parser.add_argument("--output", required=True, type=Path, help="where the TREC run is copied")
    parser.add_argument("--limit", type=int, default=None, help="the slice the suite ran (make beir limit=N)")
    parser.add_argument("--quick", action="store_true", help="as the suite's --quick")
    parser.add_argument("--no-train", action="store_true", help="as the suite's --no-train")
    args = parser.parse_args(argv)
    model = cli.model_settings(args)
    reproduce(args.dataset, args.run, args.output, args.limit, model=model,
              levers=cli.variant_levers(args, model), m=args.m, search=cli.search_settings(args), quick=args.quick,
              no_train=args.no_train)
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
