"""Look at a dataset before running anything on it: what the one dataset reader (plumbing/datasets.py) finds.

    python -m pipeline.inspect_dataset --dataset scifact [--split test] [--limit N]
    python -m pipeline.inspect_dataset --dataset scifact --seed-ir-datasets BEIR_FOLDER   (offline: fill ir_datasets' cache)

Prints the counts, the source it was read from and any notes (e.g. queries without judgements dropped).
"""
from __future__ import annotations

from pathlib import Path

from plumbing import cli
from plumbing.datasets import load_ir_datasets, seed_ir_datasets_cache, slice_dataset


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.inspect_dataset", __doc__, cli.dataset_options)
    parser.add_argument("--seed-ir-datasets", metavar="BEIR_FOLDER", default=None,
                        help="zip this BEIR folder into ir_datasets' cache ($IR_DATASETS_HOME) as --dataset, then load through ir_datasets")
    args = parser.parse_args(argv)
    if args.seed_ir_datasets:
        path = seed_ir_datasets_cache(Path(args.seed_ir_datasets), args.dataset)
        print(f"seeded {path}")
        dataset = load_ir_datasets(args.dataset, args.split)
        dataset = slice_dataset(dataset, args.limit) if args.limit else dataset
    else:
        dataset = cli.data_settings(args).load()
    print(dataset.summary())
    for note in dataset.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
