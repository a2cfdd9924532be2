"""Stage 1, encode: corpus -> pooled document embeddings, in resumable shards.

Writes `indexes/<dataset>/<model>/embeddings/`: `part-XXXXX.npy` (float32 [n, hidden], the pooled vectors before
the LM head), `part-XXXXX.meta.npz` (doc ids, each document's own token ids, truncation flags) and
`manifest.json`. The transformer runs here only: `project` (aligned tokens for any K / weighting) and the dense
run read these files. A shard is written under a temporary name and renamed when complete, so a rerun skips
complete shards and redoes at most the one that was interrupted. `--shards S --shard i` encodes every S-th shard
starting at i (a Slurm array or Ray task per part); the manifest is completed by whichever part finds all shards.
`--engine ray --workers N` runs the N parts as Ray tasks (engines/ray_executor.py): a local Ray started for the run,
or the cluster at RAY_ADDRESS.
"""
from __future__ import annotations

from common.errors import InputError
from plumbing import cli
from steps.encode import SHARD_SIZE, encode_corpus, encode_on_ray


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.encode", __doc__, cli.dataset_options, cli.model_options)
    parser.add_argument("--shards", type=int, default=1, help="split the work into S parts (default 1)")
    parser.add_argument("--shard-size", type=int, default=SHARD_SIZE,
                        help=f"documents per resumable shard (default {SHARD_SIZE}); a kill loses at most one shard")
    parser.add_argument("--shard", type=int, default=0, help="which part this process encodes, 0..S-1")
    parser.add_argument("--engine", default="local", choices=("local", "ray"), help="local (default) or ray: the parts "
                        "as Ray tasks, one model load each, retried when a worker dies")
    parser.add_argument("--workers", type=int, default=2, help="ray: parts run side by side (default 2)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="ray: GPUs per part (default 0)")
    args = parser.parse_args(argv)
    if not 0 <= args.shard < args.shards:
        raise InputError(f"shard={args.shard} shards={args.shards}: need 0 <= shard < shards")
    data = cli.data_settings(args)
    dataset = data.load()
    print(dataset.summary())
    if args.engine == "ray":
        folder = encode_on_ray(dataset, data, cli.model_settings(args), args.workers, args.gpus_per_worker, args.shard_size)
    else:
        folder = encode_corpus(dataset, data, cli.model_settings(args), args.shards, args.shard, args.shard_size)
    print(f"embeddings: {folder}")
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
