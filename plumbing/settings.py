"""Typed, frozen settings passed between stages, and the one place for defaults.

Built once at the CLI edge (plumbing/cli.py) from flags or manifests; every stage function takes these, never an
argparse Namespace. `ModelSettings.preset` resolves the preset once per settings object; `Variant` is the collection
variant (its `name` is the folder, `as_dict()` the manifest entry); `QuerySettings` the sparse query mode.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path

from common import layout
from common.errors import InputError
from encoders.aligned import WEIGHTINGS
from encoders.presets import TRAINED_PRESET_FILE, Preset, resolve_preset

# Retrieval defaults, shared by every stage that searches or scores.
DEPTH = 1000  # hits per query in every run
ALIGNED_M = 32  # aligned tokens added per query in query=aligned
DEFAULT_K = 1024
# The default variant, chosen on scifact's train split (never its test queries): the hybrid won among the LLM variants
# (`make sweep`, runs/scifact/sweep.md: train nDCG@10 0.6250; the best top-K aligned variant, K=1024, 0.5775), and
# over Lucene-analyzed words it beats the same hybrid over sub-word tokens (smollm2-expand, 809 train queries: 0.7037
# against 0.6424; the word control, BM25 itself, 0.6970).
DEFAULTS = {"source": "hybrid", "k": DEFAULT_K, "weighting": None, "normalize": "on", "vocab": "text", "pc1": "remove",
            "terms": "words"}
TERMS = ("tokens", "words")  # index terms: the tokenizer's (normalised) tokens, or Lucene-analyzed words
BEFORE_WORDS = {"terms": "tokens"}  # manifests written before terms existed describe token variants
DEFAULT_WEIGHTING = {"aligned": "log", "own": "bm25tf", "hybrid": "bm25tf", "expansion": "log", "distilled": "learned"}
# source=expansion (encoders/expansion.py): K expansion words per document, and no PC1 step (training never saw one).
EXPANSION_DEFAULTS = {"k": 64, "pc1": "off", "terms": "words"}
# source=distilled (encoders/student.py, trained by `make distil`): the student's own K and PC1 removal, words.
DISTILLED_DEFAULTS = {"k": 64, "pc1": "remove", "terms": "words"}
SOURCE_DEFAULTS = {"expansion": EXPANSION_DEFAULTS, "distilled": DISTILLED_DEFAULTS}
# The levers each source reads; a lever given on the command line that the chosen source never reads is refused
# (it would be ignored, yet written into the manifest as if it had made the index).
USED_LEVERS = {"aligned": {"k", "weighting", "normalize", "vocab", "pc1", "terms"},
               "own": {"weighting", "normalize", "terms"},
               "hybrid": {"weighting", "normalize", "pc1", "terms"},
               "expansion": {"k", "pc1", "terms"},
               "distilled": {"terms"}}
CONTROL_WEIGHTINGS = ("uniform", "bm25tf")


@dataclass(frozen=True)
class DataSettings:
    """Which dataset slice: name, qrels split, an optional deterministic slice and where the files are."""

    name: str = "scifact"
    split: str = "test"
    limit: int | None = None
    data_dir: str | None = None
    beir_dir: str | None = None

    def __post_init__(self) -> None:
        layout.check_dataset_name(self.name)

    @property
    def key(self) -> str:
        return layout.dataset_key(self.name, self.limit, self.split)

    @property
    def run_dir(self):
        return layout.run_dir(self.key, self.split)

    def with_split(self, split: str) -> "DataSettings":
        return replace(self, split=split)

    def load(self):
        from plumbing.datasets import load_dataset

        return load_dataset(self.name, self.split, self.data_dir, self.beir_dir, self.limit)


@dataclass(frozen=True)
class ModelSettings:
    """Which embedder and how to run it; `preset` is resolved once, `name` is its folder name."""

    model: str = "smollm2"
    pooling: str | None = None
    max_length: int | None = None
    batch_size: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    task: str = ""  # the dataset whose task instruction an instruction-tuned preset is given (encoders/instructions.py)

    @cached_property
    def preset(self) -> Preset:
        return resolve_preset(self.model, self.pooling, self.max_length, self.batch_size).for_task(self.task)

    @property
    def name(self) -> str:
        """Folder and run name: the preset's, tagged `-bf16` / `-fp16` when the forward runs in another dtype than
        float32. Such embeddings are another artifact (they differ in the 4th digit), so their indexes and runs
        never mix with float32 ones and a leaderboard says which path made each row."""
        from encoders.models import dtype_tag

        tag = dtype_tag(self.dtype, self.device)
        return f"{self.preset.name}-{tag}" if tag else self.preset.name

    def other(self, model: str) -> "ModelSettings":
        """Another embedder on the same device, with its own preset's pooling and lengths."""
        return ModelSettings(model=model, device=self.device, dtype=self.dtype, task=self.task)

    def embeddings_dir(self, data: DataSettings):
        return layout.embeddings_dir(data.key, self.name)

    @property
    def trained_folder(self) -> Path | None:
        """The folder `make train` wrote this model into (`models/<name>/`, or wherever it was copied), None for a
        preset or hub model."""
        source = Path(self.preset.source)
        return source.parent if source.name == "model" and (source / TRAINED_PRESET_FILE).is_file() else None

    @property
    def student_dir(self) -> Path:
        """Where `make distil` keeps this embedder's student: beside the trained model wherever it lives
        (`model=<path>` of a shared model finds its student), else under the models root."""
        return layout.student_dir(self.name, self.trained_folder)


@dataclass(frozen=True)
class Variant:
    """A collection variant: which terms a document gets and how they are weighted (see steps/project.py)."""

    source: str = "hybrid"
    k: int | None = DEFAULT_K
    weighting: str | None = "bm25tf"
    normalize: str = "on"
    vocab: str = "text"
    pc1: str = "remove"
    terms: str = "words"  # Lucene's analyzed words (encoders/words.py), or "tokens": the tokenizer's own

    @classmethod
    def build(cls, preset: Preset, **given) -> "Variant":
        """The variant for `preset` from the given levers (None = default), validated."""
        if preset.kind == "splade":  # SPLADE's own weights over raw WordPiece terms by default
            return cls("splade", None, "max log(1+relu(mlm))", given.get("normalize") or "off", "all", "off", "tokens")
        defaults = {**DEFAULTS, **SOURCE_DEFAULTS.get(given.get("source") or "", {})}
        values = {key: given[key] if given.get(key) is not None else value for key, value in defaults.items()}
        if values["weighting"] is None:
            values["weighting"] = DEFAULT_WEIGHTING.get(values["source"])
        variant = cls(**values)
        variant.validate()
        return variant

    @staticmethod
    def refuse_unused(preset: Preset, given: dict) -> None:
        """Refuse, before any work, a lever given explicitly that the variant it asks for would not read."""
        given = {k: v for k, v in given.items() if v is not None}
        if preset.kind == "splade":
            unused = sorted(set(given) - {"normalize"})
            what = f"model={preset.name} (SPLADE keeps its own WordPiece terms and weights)"
        else:
            source = given.get("source", DEFAULTS["source"])
            unused = sorted(set(given) - {"source"} - USED_LEVERS.get(source, set(given)))
            what = f"source={source}"
        if unused:
            raise InputError(f"{', '.join(f'{k}={given[k]}' for k in unused)}: not used by {what}; drop "
                             f"{'it' if len(unused) == 1 else 'them'}")

    @classmethod
    def from_dict(cls, values: dict) -> "Variant":
        return cls(**{key: values.get(key, BEFORE_WORDS.get(key, DEFAULTS[key])) for key in DEFAULTS})

    @classmethod
    def experiment(cls, preset: Preset, levers: dict) -> "Variant":
        """The defaults with some levers set, whatever the command line said (an experiment's fixed variant)."""
        return cls.build(preset, **{**DEFAULTS, **levers})

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def name(self) -> str:
        norm = "words" if self.terms == "words" else "norm" if self.normalize == "on" else "raw"
        pc1 = str(self.pc1).replace("-", "m")
        if self.source == "splade":
            return f"splade-{norm}"
        if self.source == "own":
            return f"own-{self.weighting}-{norm}"
        if self.source == "hybrid":
            return f"hybrid-{self.weighting}-{norm}-pc1{pc1}"
        if self.source == "expansion":
            return f"expand{self.k}-{norm}-pc1{pc1}"
        if self.source == "distilled":
            return f"distilled-{norm}"
        return f"k{self.k}-{self.weighting}-{norm}-{self.vocab}-pc1{pc1}"

    def dir(self, data: DataSettings, model: ModelSettings):
        return layout.variant_dir(data.key, model.name, self.name)

    def validate(self) -> None:
        if self.source not in ("aligned", "own", "hybrid", "expansion", "distilled"):
            raise InputError(f"source={self.source}: choose aligned, own, hybrid, expansion or distilled")
        if self.source in ("expansion", "distilled") and self.terms != "words":
            raise InputError(f"source={self.source} is a word index: use it with terms=words")
        if self.source == "distilled" and str(self.pc1) != "remove":
            raise InputError("source=distilled removes PC1 as its student was trained to: drop pc1=")
        allowed = {"aligned": WEIGHTINGS, "own": CONTROL_WEIGHTINGS, "hybrid": ("bm25tf",),
                   "expansion": ("log",), "distilled": ("learned",)}[self.source]
        if self.weighting not in allowed:
            raise InputError(f"weighting={self.weighting} is not for source={self.source}: choose {', '.join(allowed)}")
        if self.terms not in TERMS:
            raise InputError(f"terms={self.terms}: choose {' or '.join(TERMS)}")
        if self.terms == "words" and self.normalize != "on":
            raise InputError("terms=words are always normalised (Lucene's analyzer): normalize=off is for terms=tokens "
                             "(add terms=tokens)")
        if self.normalize not in ("on", "off") or self.vocab not in ("all", "text"):
            raise InputError(f"normalize={self.normalize} vocab={self.vocab}: use normalize=on|off, vocab=all|text")
        if int(self.k) <= 0:
            raise InputError(f"k={self.k}: K must be a positive number of tokens")
        if self.pc1 not in ("off", "remove", "auto"):
            try:
                finite = math.isfinite(float(self.pc1))
            except ValueError:
                finite = False
            if not finite:
                raise InputError(f"pc1={self.pc1}: use off, remove, auto or a finite number lambda")


@dataclass(frozen=True)
class QuerySettings:
    """The sparse query side: `tokens` (own tokens, no LLM) or `aligned` (+ top-M aligned tokens, one forward)."""

    query: str = "tokens"
    qweight: str = "idf"
    m: int = ALIGNED_M

    @property
    def mode(self) -> str:
        return f"aligned{self.m}" if self.query == "aligned" else "tokens"


@dataclass(frozen=True)
class SearchSettings:
    """How runs are made: threads, an explicit index folder, rerun even when a run file exists."""

    threads: int = 2
    index: str | None = None
    force: bool = False
    engine: str = "lucene"  # or "qdrant" (engines/qdrant.py) for sparse runs
    keep_identical_ids: bool = False  # BEIR removes hits whose id is the query's id; True keeps them

    @property
    def run_suffix(self) -> str:
        """Sparse runs of another engine are named apart, so both can sit in one leaderboard."""
        return "" if self.engine == "lucene" else f"@{self.engine}"
