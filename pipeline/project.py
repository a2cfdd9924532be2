"""Stage 2, project: stored embeddings -> JsonVectorCollection shards for one variant, without the transformer.

Reads only `indexes/<dataset>/<model>/embeddings/` (plus the model's LM head and tokenizer) and writes
`indexes/<dataset>/<model>/<variant>/collection/part-XXXXX.jsonl` lines `{"id", "contents", "vector": {term: int}}`
and a manifest. A K sweep therefore costs seconds per K, not an LLM pass.

Variants:
  --source aligned   top-K aligned tokens of the (PC1-adjusted) embedding, weighted by --weighting logit|log|softmax
  --source own       the LLM-free control: each document's own tokens, --weighting uniform|bm25tf
  --source hybrid    own tokens, BM25-tf x (1 + the token's aligned logit, min-max scaled in the document)
  --source expansion (terms=words) own words at BM25 tf + the top-K words of the embedding through the LM head,
                     log(1 + logit - the (K+1)-th's): what `make train sparse_target=expansion` trains
  --vocab text       keep only aligned tokens whose term occurs in the document (all = expansion, as the paper)
  --normalize on     canonical lower-cased terms (see encoders/vocab.py); off = raw tokenizer tokens
  --pc1 remove|auto|L  project PC1 out of the embedding, or add L * u1 (auto: L maximising local alignment);
                     u1 estimated on this corpus, kept in the manifest so queries get the same adjustment
"""
from __future__ import annotations

from plumbing import cli
from steps.project import project


def main(argv: list[str] | None = None) -> int:
    parser = cli.stage_parser("pipeline.project", __doc__, cli.dataset_options, cli.model_options, cli.variant_options)
    args = parser.parse_args(argv)
    model = cli.model_settings(args)
    project(cli.data_settings(args), model, cli.variant(args, model))
    return 0


if __name__ == "__main__":
    cli.cli_main(main)
