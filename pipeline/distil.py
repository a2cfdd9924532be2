"""Stage: distil (`make distil`) -- teach the no-LLM word index the ranking of one LLM forward per query.

Teacher: the word hybrid (the embedder's own words index, no LLM at query time) fused with the embedder's dense run
(one forward per query): weighted sum of each run's top-1000 scores min-max normalised per query, as the
leaderboard's `fusion-wsum` does; the weight is chosen on the held-out dev queries of the train split. It is
computed for train-split queries only: a query id that the test split holds is refused, so no test query reaches
the teacher, the pools or the student.

Student (encoders/student.py): document word weights from the stored embeddings, through a residual adapter and
the frozen LM head (own words boosted, up to K new words), queries as BM25's lookup. It is trained on the train
queries the embedder was trained on (the dev queries are held out from both), with listwise KL to the teacher over
each query's pool (the teacher's top `pool` and the word hybrid's top `pool`) and IDF-aware FLOPS on the new words.
Training reads only stored embeddings (no LLM forward but the train queries' dense encoding, once): a run takes
minutes. The dev curve (nDCG@10 of the student over the whole corpus, exact scores) picks the step that is kept;
step 0 is the untrained student, so a student that does not beat it on dev is kept at its start.

Writes `models/<embedder>/student/`: `student.pt` (the kept weights), `manifest.json` (teacher, pools, settings,
dev curve, the dev nDCG@10 of BM25, hybrid, dense, teacher and student), `teacher.json` (per-query pools and
teacher scores, train queries only). `make index source=distilled` then projects the corpus through it.
"""
from __future__ import annotations

from dataclasses import asdict
from plumbing import cli
from steps.distil import DistilSettings, distil


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.distil", __doc__, cli.dataset_options, cli.model_options)
    defaults = DistilSettings()
    group = parser.add_argument_group("distillation")
    for name, value in asdict(defaults).items():
        group.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    settings = DistilSettings(**{name: getattr(args, name) for name in asdict(defaults)})
    distil(cli.data_settings(args), cli.model_settings(args), settings)
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
