"""Stage 5, evaluate: build what is missing, run every system, score with ranx, write metrics and a leaderboard.

Runs (all on the same dataset slice, k=1000): BM25; the embedder's dense run (FAISS over the stored embeddings);
the default aligned-token variant with `query=tokens` (no LLM at query time) and `query=aligned`; the top-1024
aligned tokens with pc1=off|remove|auto (does the PC1 fix of alignment help retrieval?); the paper-faithful variant (raw tokens, expansion, no PC1, count queries); the LLM-free controls (the document's
own tokens, uniform and BM25-tf weights) and the hybrid (the control's BM25-tf scaled up by aligned logits); SPLADE run here when its model is installed; RRF and weighted-sum
fusions (the weight tuned on the train split, never on test). ranx gives nDCG@10, R@100, R@1000, MRR@10 and a
paired t-test against the dense run. The key figure, printed first: sparse/dense nDCG@10 per query mode.

Outputs: runs/<dataset>/metrics.json, runs/<dataset>/leaderboard.md (see plumbing/leaderboard.py).
"""
from __future__ import annotations

from plumbing import cli
from steps.evaluate import evaluate


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.evaluate", __doc__, cli.dataset_options, cli.model_options, cli.variant_options,
                              cli.search_options)
    parser.add_argument("--quick", action="store_true", help="only BM25, dense and the default sparse variant")
    parser.add_argument("--no-train", action="store_true", help="skip the train-split runs that tune the wsum fusion")
    parser.add_argument("--force", action="store_true", help="rerun searches even when run files exist")
    parser.add_argument("--also", nargs="*", default=[], metavar="MODEL",
                        help="more embedders whose runs join the leaderboard (e.g. the backbone of a trained model)")
    args = parser.parse_args(argv)
    model = cli.model_settings(args)
    for other in args.also:  # an unknown model is refused before the first run, not after the main model's
        model.other(other).preset
    evaluate(cli.data_settings(args), model, cli.variant_levers(args, model), args.m,
             cli.search_settings(args), args.quick, args.no_train, tuple(args.also))
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
