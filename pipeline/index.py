"""Stage 3, index: a collection folder -> Lucene index (Anserini IndexCollection, in this process's one JVM).

Impact indexes read `<variant>/collection/*.jsonl` (JsonVectorCollection, `--impact --pretokenized`: integer weights
become term frequencies, terms are kept verbatim) and also get `df.json` (document frequency per term, the
idf source of `qweight=idf` queries). BM25 indexes read a JsonCollection of title + text. The build itself, checked
and renamed only when complete, is engines/lucene.py's; here each index is reused only while it is the one its
manifest recorded (same collection, files of the recorded sizes).
"""
from __future__ import annotations

from plumbing import cli
from steps.index import bm25_index, index_variant


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.index", __doc__, cli.dataset_options, cli.model_options, cli.variant_options)
    parser.add_argument("--threads", type=int, default=2, help="indexing threads (default 2)")
    parser.add_argument("--bm25", action="store_true", help="build the BM25 index of title + text instead")
    args = parser.parse_args(argv)
    data = cli.data_settings(args)
    if args.bm25:
        print(f"index: {bm25_index(data.load(), data.key, args.threads)}")
    else:
        model = cli.model_settings(args)
        index_variant(data, model, cli.variant(args, model), args.threads)
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
