"""Stage 0, train: contrastive fine-tuning of a decoder embedder, the way E5-Mistral / GritLM / LLM2Vec were made.

InfoNCE with in-batch negatives (cosine / temperature) on the preset's pooling (PromptEOL by default, or mean).
Training pairs, each source switchable (`--data`) and recorded in the manifest:
  supervised  the dataset's train split only (claim -> each cited document), never test; a seeded part of the
              train queries (`--dev-queries`) is held out for the learning curve and never trained on;
  corpus      title -> abstract pairs of the corpus (label-free in-domain adaptation; results trained with it are
              labelled "adapted on the target corpus" in every leaderboard, as BEIR papers do for GPL).
Each batch takes an equal share of every enabled source. The token embeddings (and so the tied LM head) and the
final norm stay frozen: the aligned tokens of the trained embedder are read through the backbone's own head.

Written under `models/<name>/` (git-ignored; KEYTOKENS_MODELS moves it): `checkpoint.pt` (resume state, written
atomically every `--save-every` steps: a killed run resumes where it stopped and ends with the same weights),
`model/` (a Hugging Face folder plus `keytokens-preset.json`, so `model=<name>` works in every stage),
`manifest.json` (base model, data, steps, loss curve, dev nDCG@10 curve, timings) and `training.png`.
The batch of step s is a function of (seed, s) only, so resuming replays exactly the batches a straight run sees.
"""
from __future__ import annotations

from plumbing import cli
from plumbing.settings import ModelSettings
from steps.train import DEFAULT_STEPS, OBJECTIVES, PRECISIONS, TrainRun, TrainSettings, train


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.train", __doc__, cli.dataset_options, cli.model_options)
    group = parser.add_argument_group("training")
    group.add_argument("--data", default="supervised,corpus", help="pair sources, comma-separated: supervised "
                       "(train split claims -> cited docs), corpus (title -> abstract); default both")
    defaults = TrainSettings("", "", ())
    group.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                       help=f"optimizer steps (default {DEFAULT_STEPS}: about 25 min on 2 cores)")
    group.add_argument("--batch", dest="train_batch", type=int, default=defaults.batch_size,
                       help="pairs per step (in-batch negatives)")
    group.add_argument("--lr", type=float, default=defaults.lr)
    group.add_argument("--temperature", type=float, default=defaults.temperature)
    group.add_argument("--query-max-length", type=int, default=defaults.query_max_length)
    group.add_argument("--doc-max-length", type=int, default=defaults.doc_max_length)
    group.add_argument("--seed", type=int, default=defaults.seed)
    group.add_argument("--name", default=None, help="trained model name (default <model>-ft, e.g. smollm2-ft)")
    group.add_argument("--save-every", type=int, default=20, help="checkpoint every N steps (resume point)")
    group.add_argument("--eval-every", type=int, default=40, help="dev nDCG@10 every N steps; 0 turns it off")
    group.add_argument("--dev-queries", type=int, default=defaults.dev_queries, help="train queries held out for the curve")
    group.add_argument("--dev-docs", type=int, default=300, help="documents of the dev ranking (judged + random)")
    group.add_argument("--grad-checkpointing", action="store_true", help="less memory, about 30%% more time")
    group.add_argument("--objective", default=defaults.objective, choices=OBJECTIVES,
                       help="dense: InfoNCE on the embedding (default); joint: + InfoNCE on the aligned-token scores "
                            "the index gives (encoders/joint.py)")
    group.add_argument("--sparse-weight", type=float, default=defaults.sparse_weight, help="joint: weight of the sparse loss")
    group.add_argument("--sparse-temperature", type=float, default=defaults.sparse_temperature,
                       help="joint: the sparse scores are divided by it before the softmax")
    group.add_argument("--sparse-target", default=defaults.sparse_target, choices=("hybrid", "aligned", "expansion"),
                       help="joint: which index variant's weights are trained (default hybrid, the default variant)")
    group.add_argument("--flops-weight", type=float, default=defaults.flops_weight, help="joint: FLOPS regulariser weight")
    group.add_argument("--hard-negatives", type=int, default=defaults.hard_negatives,
                       help="BM25 hard negatives per supervised pair, drawn from the query's top-30 BM25 documents "
                            "of the train split that are not relevant (default 0: in-batch negatives only)")
    group.add_argument("--precision", default=defaults.precision, choices=PRECISIONS,
                       help="auto (default): bfloat16 autocast on CUDA or a CPU with bf16 in hardware (AVX512-BF16, "
                            "AMX), float32 elsewhere; float32 or bfloat16 to choose (weights stay float32 either way)")
    args = parser.parse_args(argv)
    model = ModelSettings(args.model, args.pooling, device=args.device, dtype=args.dtype, task=args.dataset)
    settings = TrainSettings(base=model.preset.name, pooling=model.preset.pooling,
                             data=tuple(s.strip() for s in args.data.split(",") if s.strip()), batch_size=args.train_batch,
                             lr=args.lr, temperature=args.temperature, seed=args.seed, dev_queries=args.dev_queries,
                             query_max_length=args.query_max_length, doc_max_length=args.doc_max_length,
                             grad_checkpointing=args.grad_checkpointing, objective=args.objective,
                             sparse_weight=args.sparse_weight, sparse_temperature=args.sparse_temperature,
                             sparse_target=args.sparse_target, flops_weight=args.flops_weight,
                             hard_negatives=args.hard_negatives, precision=args.precision)
    train(cli.data_settings(args), model, settings,
          TrainRun(args.steps, args.name, args.save_every, args.eval_every, args.dev_docs))
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
