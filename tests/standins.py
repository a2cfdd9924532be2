"""Tiny random stand-ins for every paper preset, published into a Hugging Face cache so the real loading path runs.

Each preset's HF ids (embedder, backbone, adapters) get a model of the same architecture (hidden size 32, two
layers) with its family's real tokenizer: Mistral v1's SentencePiece (shipped in PyPI `mistral-common`) for the
Mistral presets, and from the vocabularies llama.cpp keeps (tests/vocabularies.py) LLaMA's SentencePiece, GPT-2's BPE
for GPT-Neo, GPT-J (+ its 143 extra tokens) and OPT (its specials and id offset), and Qwen's BPE. Headless embedders
are saved without a head (as E5-Mistral, SGPT and Qwen3-Embedding are), adapters as real PEFT LoRA folders with
non-zero weights. The random weights only exercise code paths: no number from them means anything.

    python -m tests.standins /tmp/hub     # then: HF_HUB_CACHE=/tmp/hub HF_HUB_OFFLINE=1 make index model=e5-mistral-7b limit=5
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from encoders.presets import PRESETS
from tests import vocabularies

COMMIT = "0" * 40
SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             head_dim=8, max_position_embeddings=4096)
# The presets with stand-ins, and the tokenizer family each one's real tokenizer belongs to.
STANDIN_PRESETS = ("e5-mistral-7b", "gritlm-7b", "llm2vec-mistral-7b", "sgpt-125m", "sgpt-5.8b",
                   "prompteol-opt-1.3b", "prompteol-llama-7b", "prompteol-cse-opt-1.3b", "prompteol-cse-llama-7b",
                   "qwen3-embedding-0.6b")


def mistral_tokenizer():
    """Mistral v1's SentencePiece model from `mistral-common`, as a Hugging Face tokenizer (adds <s>)."""
    import json
    import shutil
    import tempfile

    from transformers import AutoTokenizer

    model = vocabularies.mistral_model_file()
    folder = Path(tempfile.mkdtemp())
    shutil.copy(model, folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False, "legacy": False}))
    return AutoTokenizer.from_pretrained(str(folder))


FAMILIES = ("mistral", "llama", "gpt2", "gpt-j", "opt", "qwen")


def tokenizer_of(family: str):
    """The real tokenizer of one family (tests/vocabularies.py for all but Mistral's)."""
    return mistral_tokenizer() if family == "mistral" else vocabularies.family(family)


def _ids(tokenizer) -> dict:
    return dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id)


def _model(kind: str, tokenizer, head: bool, repo_id: str, tied: bool = False):
    """A tiny model of one architecture, with or without its LM head, seeded by the repository it stands in for: two
    repositories of one architecture (E5's backbone, GritLM, LLM2Vec's base) never share weights, so a preset that
    loads another preset's model or head fails its tests."""
    import zlib

    import transformers as tf

    torch.manual_seed(zlib.crc32(f"{repo_id}/{kind}/{head}".encode()))
    ids = _ids(tokenizer)
    if kind in ("mistral", "llama", "qwen3"):
        config = {"mistral": tf.MistralConfig, "llama": tf.LlamaConfig, "qwen3": tf.Qwen3Config}[kind](
            **SMALL, **ids, tie_word_embeddings=tied)
    elif kind == "gpt-neo":
        config = tf.GPTNeoConfig(hidden_size=32, num_layers=2, num_heads=4, attention_types=[[["global", "local"], 1]],
                                 window_size=16, max_position_embeddings=2048, **ids, tie_word_embeddings=True)
    elif kind == "gpt-j":
        config = tf.GPTJConfig(n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_positions=2048, **ids,
                               tie_word_embeddings=False)
    elif kind == "opt":
        config = tf.OPTConfig(hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                              word_embed_proj_dim=32, **ids, tie_word_embeddings=True)
    else:
        raise ValueError(kind)
    cls = tf.AutoModelForCausalLM if head else tf.AutoModel
    return cls.from_config(config).eval()


def snapshot(cache: Path, repo_id: str) -> Path:
    """The folder a Hugging Face cache keeps `repo_id`'s files in (refs/main -> one snapshot)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    folder = repo / "snapshots" / COMMIT
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _publish(cache: Path, repo_id: str, model, tokenizer) -> None:
    folder = snapshot(cache, repo_id)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


def _adapter(cache: Path, repo_id: str, base, seed: int, base_repo: str | None = None, tokenizer=None) -> None:
    """A LoRA adapter with random, non-zero A and B (so it changes the output) over `base`'s attention projections.
    With `base_repo`, laid out as LLM2Vec's MNTP repository on the Hub: its adapter config names the base repository
    (`base_model_name_or_path`, which transformers' `from_pretrained` follows when peft is installed), beside the
    base's config and the tokenizer."""
    import copy
    import json

    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    folder = snapshot(cache, repo_id)
    get_peft_model(copy.deepcopy(base), config).save_pretrained(str(folder))
    if base_repo is not None:
        adapter_config = folder / "adapter_config.json"
        values = json.loads(adapter_config.read_text(encoding="utf-8"))
        adapter_config.write_text(json.dumps({**values, "base_model_name_or_path": base_repo}, indent=2), encoding="utf-8")
        base.config.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))


def closing(tokenizer, token: str):
    """A copy of `tokenizer` whose post-processor ends every text with `token` (Qwen3-Embedding's tokenizer.json)."""
    import copy

    from tokenizers.processors import TemplateProcessing

    closed = copy.deepcopy(tokenizer)
    token_id = closed.convert_tokens_to_ids(token)
    closed._tokenizer.post_processor = TemplateProcessing(single=f"$A {token}", pair=f"$A {token} $B {token}",
                                                          special_tokens=[(token, token_id)])
    return closed


def save_tokenizers(folder: Path) -> Path:
    """Every family's stand-in tokenizer as plain folders (about 20 MB), for a machine without the model packages
    or the vocabularies."""
    for family in FAMILIES:
        tokenizer_of(family).save_pretrained(str(Path(folder) / family))
    return Path(folder)


def build(cache: Path, tokenizers: Path | None = None) -> Path:
    """Publish every stand-in into the Hugging Face cache folder `cache` (idempotent: a second call rebuilds);
    `tokenizers` is a `save_tokenizers` folder to use instead of the installed packages and vocabularies."""
    from transformers import AutoTokenizer

    cache = Path(cache)
    if tokenizers is not None:
        tok = {f: AutoTokenizer.from_pretrained(str(Path(tokenizers) / f)) for f in FAMILIES}
    else:
        tok = {f: tokenizer_of(f) for f in FAMILIES}
    mistral = tok["mistral"]
    p = PRESETS

    def publish(repo_id: str, kind: str, tokenizer, head: bool, tied: bool = False):
        model = _model(kind, tokenizer, head, repo_id, tied)
        _publish(cache, repo_id, model, tokenizer)
        return model

    # E5-Mistral: a headless MistralModel, decoded through Mistral-7B-v0.1's (untied) head.
    publish(p["e5-mistral-7b"].source, "mistral", mistral, head=False)
    publish(p["e5-mistral-7b"].backbone, "mistral", mistral, head=True)
    # GritLM: a full causal LM (it generates too); its own head decodes.
    publish(p["gritlm-7b"].source, "mistral", mistral, head=True)
    # LLM2Vec: Mistral-7B-Instruct-v0.2 with the MNTP LoRA (a repository naming its base, as on the Hub), then the
    # supervised LoRA, both over the base model.
    llm2vec = p["llm2vec-mistral-7b"]
    instruct = publish(llm2vec.source, "mistral", mistral, head=True)
    _adapter(cache, llm2vec.adapters[0], instruct.model, seed=1, base_repo=llm2vec.source, tokenizer=mistral)
    _adapter(cache, llm2vec.adapters[1], instruct.model, seed=2)
    # SGPT: headless GPT-Neo / GPT-J, decoded through the backbone's head (GPT-J's is untied).
    for name, kind, family in (("sgpt-125m", "gpt-neo", "gpt2"), ("sgpt-5.8b", "gpt-j", "gpt-j")):
        publish(p[name].source, kind, tok[family], head=False)
        publish(p[name].backbone, kind, tok[family], head=True)
    # PromptEOL: raw OPT and LLaMA backbones; the -cse presets add a LoRA over the causal LM.
    opt = publish(p["prompteol-opt-1.3b"].source, "opt", tok["opt"], head=True)
    llama = publish(p["prompteol-llama-7b"].source, "llama", tok["llama"], head=True)
    _adapter(cache, p["prompteol-cse-opt-1.3b"].adapters[0], opt, seed=3)
    _adapter(cache, p["prompteol-cse-llama-7b"].adapters[0], llama, seed=4)
    # Qwen3-Embedding: a headless Qwen3Model, decoded through Qwen3-0.6B-Base's tied embeddings; its tokenizer ends
    # every text with <|endoftext|> itself, as the Hub repository's does (the Base model's does not).
    qwen = p["qwen3-embedding-0.6b"]
    publish(qwen.source, "qwen3", closing(tok["qwen"], "<|endoftext|>"), head=False)
    publish(qwen.backbone, "qwen3", tok["qwen"], head=True, tied=True)
    return cache


if __name__ == "__main__":
    target = build(Path(sys.argv[1] if len(sys.argv) > 1 else "stand-in-hub"))
    print(f"stand-ins written; use them with: export HF_HUB_CACHE={target.resolve()} HF_HUB_OFFLINE=1")
