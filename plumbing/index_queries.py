"""The query side of an index: its query encoder, built from what the index stage wrote beside it.

A variant's folder says how its documents were made (the collection manifest: preset, settings, scale, PC1) and
holds the df table its queries are weighted with (`lucene/df.json`, or `query_df.json` for a distilled index, whose
queries take BM25's df of own words). From those alone this builds the encoder a query needs: `tokens` (no LLM),
`aligned` (one forward) or SPLADE's (one MLM forward), each `encode(text) -> {term: int}` as Pyserini's
LuceneImpactSearcher expects. Runs, the bench, bulk exports, distillation and the Python API all build it here.
"""
from __future__ import annotations

from pathlib import Path

from common.errors import InputError
from encoders.aligned import WEIGHTINGS, quantize
from encoders.embedder import Embedder
from encoders.models import load_model, load_tokenizer
from encoders.presets import Preset, resolve_preset
from encoders.queries import AlignedQueryEncoder, TokenQueryEncoder
from encoders.splade import SpladeEncoder
from encoders.vocab import Vocabulary
from encoders.words import WordVocabulary
from plumbing.artifacts import read_json
from plumbing.collection import QUERY_DF
from plumbing.datasets import Dataset
from plumbing.settings import DataSettings, ModelSettings, QuerySettings, Variant


def sparse_index(data: DataSettings, model: ModelSettings, variant: Variant, index: str | None = None) -> tuple[Path, dict]:
    """The variant's Lucene index and its manifest; refuses an index built for another model or normalisation."""
    folder = Path(index) if index else variant.dir(data, model)
    info = read_json(folder / "manifest.json", "collection manifest (run `make index` first)")
    if info["model"] != model.name:
        raise InputError(f"index {folder} was built with model {info['model']!r}, the query side asks for "
                         f"{model.name!r}; pass the matching --model")
    if info["settings"]["normalize"] != variant.normalize:
        raise InputError(f"index {folder} was built with normalize={info['settings']['normalize']}, the query side "
                         f"asks for normalize={variant.normalize}; use the same on both sides")
    if not (folder / "lucene" / "df.json").exists():
        raise InputError(f"no Lucene index in {folder}; run `make index` first")
    return folder, info


def collection_preset(info: dict) -> Preset:
    """The preset a collection was projected with, from its manifest (a pooling override such as `smollm2-mean` is
    not a preset name, so the name alone cannot be resolved)."""
    return Preset.from_dict(info["preset"]) if "preset" in info else resolve_preset(info["model"])


def token_encoder(folder: Path, info: dict, qweight: str) -> TokenQueryEncoder:
    tokenizer = load_tokenizer(collection_preset(info).source)  # no weights: this mode runs no forward pass
    own_table = folder / QUERY_DF  # a distilled index: BM25's df of own words, as the student was trained with
    table = read_json(own_table if own_table.is_file() else folder / "lucene" / "df.json")
    if info["settings"].get("terms") == "words":  # the query's analyzed words, as BM25 reads a query
        vocab = WordVocabulary(tokenizer)
    else:
        vocab = Vocabulary(tokenizer, info["settings"]["normalize"] == "on")
    return TokenQueryEncoder(vocab, qweight, table["df"], table["documents"])


def query_encoder(model: ModelSettings, query: QuerySettings, folder: Path, info: dict):
    """The query encoder of a variant: `encode(text)` / `encode_many(texts)` -> {term: int} (tokens or aligned)."""
    tokens = token_encoder(folder, info, query.qweight)
    if query.query == "tokens":
        return tokens
    weighting = info["settings"]["weighting"] if info["settings"]["weighting"] in WEIGHTINGS else "log"
    embedder = Embedder(model.preset, load_model(model.preset, model.device, model.dtype))
    return AlignedQueryEncoder(tokens, embedder, query.m, weighting, info["scale"], info.get("pc1"))


def encode_queries(dataset: Dataset, model: ModelSettings, query: QuerySettings, folder: Path,
                   info: dict) -> dict[str, dict[str, int]]:
    if info["settings"]["source"] == "splade":
        return splade_queries(dataset, info, model.device, model.dtype)
    qids = list(dataset.queries)
    return dict(zip(qids, query_encoder(model, query, folder, info).encode_many([dataset.queries[q] for q in qids])))


class SpladeQueryEncoder:
    """SPLADE query vectors (one MLM forward per batch of queries), quantized with the documents' scale; the model
    and the vocabulary tables are built once, so a per-query caller (the bench) times the forward, not the set-up."""

    def __init__(self, info: dict, device: str, dtype: str = "auto") -> None:
        preset = collection_preset(info)
        loaded = load_model(preset, device, dtype)
        self.encoder = SpladeEncoder(preset, loaded)
        self.vocab = Vocabulary(loaded.tokenizer, info["settings"]["normalize"] == "on")
        self.scale = info["scale"]

    def encode_many(self, texts: list[str]) -> list[dict[str, int]]:
        batch = self.encoder.encode(texts, is_query=True)
        return [quantize(self.vocab.merge(ids, w), self.scale) for ids, w in zip(batch.ids, batch.weights)]

    def encode(self, text: str) -> dict[str, int]:
        return self.encode_many([text])[0]


def splade_queries(dataset: Dataset, info: dict, device: str, dtype: str = "auto") -> dict[str, dict[str, int]]:
    """SPLADE query vectors of every query of the dataset."""
    qids = list(dataset.queries)
    return dict(zip(qids, SpladeQueryEncoder(info, device, dtype).encode_many([dataset.queries[q] for q in qids])))
