"""The command a 2CR condition runs: one dataset evaluated as `make beir` evaluated it, one run copied out.

    python -m pipeline.reproduce --dataset cqadupstack-android --run bm25 --output run.txt [the suite's flags]

`--dataset` takes Pyserini's key (`cqadupstack-android`) or ours (`cqadupstack/android`); the split is the one the
suite uses (dev for msmarco, else test), the data is found as for `make beir` (BEIR_DIR, or ir_datasets). The
dataset goes through the evaluate stage with the suite's flags (variant, slice, --quick, --no-train, engine), so a
run already there is reused when its inputs match and made again when they do not, and the run file named by
`--run` is copied to `--output`: the file whose scores the 2CR YAML lists.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from common.errors import InputError
from pipeline.evaluate import evaluate
from plumbing import cli
from plumbing.datasets import evaluation_split
from plumbing.exports import from_two_cr_name
from plumbing.settings import DataSettings


def reproduce(dataset: str, run: str, output: Path, data_limit: int | None, **evaluate_args) -> Path:
    name = from_two_cr_name(dataset)
    data = DataSettings(name, evaluation_split(name), limit=data_limit)
    evaluate(data, **evaluate_args)
    made = data.run_dir / f"{run}.trec"
    if not made.is_file():
        raise InputError(f"--run {run}: the evaluation of {name} made no such run (see {data.run_dir}); "
                         f"use a condition name from the 2CR YAML without its 'keytokens.' prefix")
    output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(made, output)
    print(f"{run} on {name} ({data.split}): {output}")
    return output


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
