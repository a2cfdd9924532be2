"""Texts -> pooled embeddings with a decoder LLM (last, mean, position-weighted mean, PromptEOL).

The pooled vectors come from the base model's `last_hidden_state`, which in Hugging Face decoders (Llama, Gemma,
Mistral, Qwen3, OPT, GPT-Neo, GPT-J) is already passed through the final norm. So the aligned-token projection
applies only the LM head to them: lm_head(final_norm(h)) is exactly what pooling the last hidden state gives for
last-token and PromptEOL pooling, and for mean pooling it is the mean of normed states, as the paper's code uses it
(it also decodes E5's and GritLM's L2-normalised outputs as they are: `Preset.normalize`).

Prompts follow the preset (see encoders/presets.py): `pieces` assembles ids (special ids + instruction + template
prefix, the text's tokens, template suffix), so an over-long text is cut inside the prompt and PromptEOL's
`means in one word:"` ending is never lost; `whole` tokenises the whole string as the embedder's authors do. Where
a long text is cut follows `Preset.truncation`, each embedder's own rule: the text's own tokens (`text`: the budget
counts the text only), the whole prompt string (`whole`: GritLM, E5, Qwen3, PromptEOL at its position limit), or
LLM2Vec's word trimming to 400 tokens before the whole string is cut (`llm2vec`). Named text preparations (the
paper's PromptEOL code turns `_` into spaces) change only what the model reads, never the index's own terms.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from encoders.models import LoadedModel
from encoders.presets import LLM2VEC_DOC_MAX_LENGTH, Preset


def prepare_text(text: str, steps: tuple[str, ...]) -> str:
    """The preset's named text preparations (encoders/presets.TEXT_PREPARATIONS), in order."""
    for step in steps:
        if step == "underscores":
            text = text.replace("_", " ")
        elif step == "rstrip":  # llm2vec's prepare_for_tokenization strips the [INST]-wrapped string: the text's end
            text = text.rstrip()
        elif step == "prompteol-punctuation":  # PromptEOL's evaluation script, sentence by sentence
            if text and text[-1] not in ".?\"'":
                text += "."
            text = text.replace('"', "'")
            if text and text[-1] == "?":
                text = text[:-1] + "."
    return text


@dataclass
class EncodedBatch:
    """Embeddings for a list of texts, in input order, plus each text's own (untruncated) token ids."""

    embeddings: np.ndarray  # [n, hidden] float32
    token_ids: list[np.ndarray]  # the text's own tokens, no prompt, not truncated
    truncated: np.ndarray  # [n] bool: the text was cut to fit its budget


@dataclass
class Prompts:
    """Model inputs for a list of texts: ids, the first position mean pooling covers, and what was cut."""

    own: list[list[int]]  # each text's own token ids (no specials, untruncated): the index's terms come from these
    inputs: list[list[int]]
    starts: list[int]  # positions before this are the instruction (pooled only where the preset says so)
    truncated: list[bool]


class Embedder:
    """Pools one decoder's hidden states into text embeddings, for documents or queries."""

    def __init__(self, preset: Preset, loaded: LoadedModel) -> None:
        self.preset = preset
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _leading_specials(self) -> list[int]:
        """The special ids the tokenizer itself puts before a text (Gemma's <bos>, Llama's <s>; none for SmolLM2).

        Asked of the tokenizer by example, because `add_bos_token` is not set on every tokenizer that adds one, and a
        Gemma forward without its <bos> decodes to punctuation instead of key tokens."""
        plain = self._ids("a")
        full = self.tokenizer("a")["input_ids"]
        return full[:full.index(plain[0])] if plain and plain[0] in full else []

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def _cut(self, text: str, budget: int) -> str:
        """The text up to the end of its `budget`-th token (so the whole prompt can be tokenised as one string)."""
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return text[:offsets[budget - 1][1]]

    def _append(self, ids: list[int]) -> list[int]:
        """The preset's closing token (E5's `</s>`, Qwen3's `<|endoftext|>`) unless the tokenizer already put it."""
        if not self.preset.append_token:
            return ids or [self.pad_id]
        token = self.tokenizer.convert_tokens_to_ids(self.preset.append_token)
        return ids if ids and ids[-1] == token else ids + [token]

    def prompts(self, texts: list[str], is_query: bool) -> Prompts:
        """Each text's own token ids, and the model inputs (instruction + template around the text, cut as the
        preset's `truncation` says)."""
        preset = self.preset
        instruction = preset.query_instruction if is_query else preset.doc_instruction
        budget = max(1, preset.query_max_length if is_query else preset.max_length)
        prefix, _, suffix = preset.side_template(is_query).partition("{text}")
        own = self.tokenize(texts)
        if preset.tokenization == "pieces":
            head, tail = self._leading_specials() + self._ids(instruction + prefix), self._ids(suffix)
            return Prompts(own, [self._append(head + ids[:budget] + tail) for ids in own],
                           [0 if preset.pool_span == "all" else len(head)] * len(own), [len(ids) > budget for ids in own])
        lead = len(self.tokenizer(instruction + prefix)["input_ids"]) if instruction + prefix else 0
        # the budget holds the closing token too: cut one short where the tokenizer does not put it itself
        limit = budget - 1 if preset.append_token and not self._closes_itself() else budget
        inputs, starts, truncated = [], [], []
        for text, ids in zip(texts, own):
            before = tuple(step for step in preset.text_preparation if step != "rstrip")
            text, cut = prepare_text(text, before), False
            if preset.truncation == "text":
                cut = len(ids) > budget
                text = self._cut(text, budget) if cut else text
            elif preset.truncation == "llm2vec":  # trimmed by words before the wrapping (llm2vec's _convert_to_str)
                text, cut = self._trim_words(text, budget)
            if "rstrip" in preset.text_preparation:  # after the trim, as prepare_for_tokenization runs after it
                text = prepare_text(text, ("rstrip",))
            string = instruction + prefix + text + suffix
            full = self.tokenizer(string)["input_ids"]
            if preset.truncation == "template" and len(full) > limit:
                text, full, cut = self._cut_inside(instruction + prefix, text, suffix, limit)
            elif preset.truncation != "text" and len(full) > limit:  # as the authors call their tokenizer
                full, cut = self.tokenizer(string, truncation=True, max_length=limit)["input_ids"], True
            if preset.pool_span == "text":  # LLM2Vec's embed_mask: the last len(tokenize(text + suffix)) positions
                starts.append(max(0, len(full) - min(len(self._ids(text + suffix)), budget)))
            else:  # GritLM masks the first len(tokenize(instruction)) positions
                starts.append(lead if preset.pool_span == "after-instruction" else 0)
            inputs.append(self._append(full))
            truncated.append(cut)
        return Prompts(own, inputs, starts, truncated)

    def _closes_itself(self) -> bool:
        """Whether the tokenizer itself ends a text with the preset's closing token (Qwen3-Embedding's tokenizer puts
        `<|endoftext|>`; E5's stand-in and older revisions do not)."""
        ids = self.tokenizer("a")["input_ids"]
        return bool(ids) and ids[-1] == self.tokenizer.convert_tokens_to_ids(self.preset.append_token)

    def _cut_inside(self, head: str, text: str, tail: str, limit: int) -> tuple[str, list[int], bool]:
        """truncation=template: the whole prompt within `limit` tokens, cut inside the text, so the template's end
        (PromptEOL's `means in one word:"`, whose last position is pooled) is always there."""
        room = limit - len(self.tokenizer(head + tail)["input_ids"])
        while room > 0:
            text = self._cut(text, min(room, len(self._ids(text))))
            full = self.tokenizer(head + text + tail)["input_ids"]
            if len(full) <= limit:
                return text, full, True
            room -= len(full) - limit  # a merge across the cut: one more round, shorter
        return "", self.tokenizer(head + tail)["input_ids"][:limit], True

    def _trim_words(self, text: str, budget: int) -> tuple[str, bool]:
        """LLM2Vec._convert_to_str: while the text (its tokens capped at `budget`) has more than 400 tokens, keep
        `int(words * 400 / tokens)` of its whitespace-split words, joined by single spaces."""
        length = min(len(self._ids(text)), budget)
        trimmed = False
        while length > LLM2VEC_DOC_MAX_LENGTH:
            words = text.split()
            text = " ".join(words[:int(len(words) * LLM2VEC_DOC_MAX_LENGTH / length)])
            length = min(len(self._ids(text)), budget)
            trimmed = True
        return text, trimmed

    @torch.inference_mode()
    def encode(self, texts: list[str], is_query: bool = False, progress=None) -> EncodedBatch:
        """Embed texts in length-sorted batches (little padding), returning them in input order."""
        prompts = self.prompts(texts, is_query)
        inputs = prompts.inputs
        order = sorted(range(len(texts)), key=lambda i: (-len(inputs[i]), i))
        hidden = self.loaded.lm_head.shape[1] if self.loaded.lm_head is not None else self.loaded.model.config.hidden_size
        out = np.zeros((len(texts), hidden), dtype=np.float32)
        for start in range(0, len(order), self.preset.batch_size):
            batch = order[start:start + self.preset.batch_size]
            pooled = self.pool([inputs[i] for i in batch], [prompts.starts[i] for i in batch])
            out[batch] = pooled.cpu().numpy()
            if progress is not None:
                progress.update(len(batch))
        return EncodedBatch(out, [np.asarray(ids, dtype=np.int32) for ids in prompts.own],
                            np.array(prompts.truncated, dtype=bool))

    def pool(self, sequences: list[list[int]], starts: list[int] | None = None) -> torch.Tensor:
        """Pooled float32 embeddings [n, hidden] of prompt-wrapped id lists; differentiable (training uses it)."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        device = self.loaded.device
        states = self.loaded.model.base_model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        states = states.float()
        pooled_mask = mask.clone()
        for row, first in enumerate(starts or []):
            pooled_mask[row, :first] = 0
        mask_f = pooled_mask.to(device).unsqueeze(-1).float()
        pooling = self.preset.pooling
        if pooling in ("last", "prompteol"):
            last = mask.sum(dim=1) - 1
            pooled = states[torch.arange(len(sequences)), last.to(device)]
        elif pooling == "mean":
            pooled = (states * mask_f).sum(1) / mask_f.sum(1).clamp_min(1.0)
        elif pooling == "weighted-mean":  # SGPT: weight of position i is i (1-based), over real tokens
            positions = torch.arange(1, width + 1, device=device).float().view(1, -1, 1) * mask_f
            pooled = (states * positions).sum(1) / positions.sum(1).clamp_min(1.0)
        else:
            raise ValueError(f"pooling {pooling!r} is not a decoder pooling")
        if self.preset.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled
