"""`make demo`: the whole loop on the embedded default, from a fresh clone, with the time of every stage.

  train    models/smollm2-ft (`make train`'s settings), only when it is absent or stale; reused otherwise. Stale:
           fewer steps than asked (training resumes from its checkpoint) or other settings (the old folder is
           moved aside to `<name>.stale-<time>`, never deleted, and a new one is trained)
  encode   the corpus with the trained embedder, then with SPLADE-tiny, in resumable shards
  distil   the student (pipeline/distil.py): the fused hybrid + dense ranking of the train queries taught to the no-LLM
           word index, from the stored embeddings (minutes); reused when it matches the embeddings and settings
  eval     project + index every variant, BM25, dense, both query modes, the paper-faithful expansion, the LLM-free
           controls, SPLADE and fusions (pipeline/evaluate.py); the leaderboard opens with the key figure

The forward runs in bfloat16 where the CPU multiplies bf16 in hardware (AVX512-BF16 / AMX) or on CUDA: 1.6-1.8x
the float32 docs/s here, embeddings at cosine 0.9975 to float32's (`make bench only=cpu-paths`). Its artifacts
are named `-bf16` (smollm2-ft-bf16), so they never mix with float32 ones; `--dtype float32` asks for the exact path.
`--limit N` is the few-minute taste: an N-query slice and, when no full model is there, a short taste model.
Stage times go to runs/<dataset>/demo.json and are printed last.
"""
from __future__ import annotations

from plumbing import cli
from plumbing.settings import ModelSettings
from steps.demo import BACKBONE, run_demo


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.demo", __doc__, cli.dataset_options)
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    parser.add_argument("--dtype", default="auto", help="auto (default: bfloat16 where it is the fast path, else "
                        "float32), float32, bfloat16")
    parser.add_argument("--also", nargs="*", default=[], metavar="MODEL",
                        help="more embedders in the leaderboard, e.g. the raw backbone: --also smollm2")
    args = parser.parse_args(argv)
    run_demo(cli.data_settings(args), ModelSettings(BACKBONE, device=args.device, task=args.dataset), args.dtype,
             tuple(args.also))
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
