"""Texts -> pooled embeddings with a decoder LLM (last, mean, position-weighted mean, PromptEOL).

The pooled vectors come from the base model's `last_hidden_state`, which in Hugging Face decoders (Llama, Gemma,
Mistral, OPT, GPT-Neo) is already passed through the final norm. So the aligned-token projection applies only the
LM head to them: lm_head(final_norm(h)) is exactly what pooling the last hidden state gives for last-token and
PromptEOL pooling, and for mean pooling it is the mean of normed states, as the paper's embedders use it.

Prompts are assembled from token ids (instruction + template prefix, the text's tokens, template suffix), so an
over-long text is truncated inside the prompt and PromptEOL's `means in one word:"` ending is never cut off.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from encoders.models import LoadedModel
from encoders.presets import Preset


@dataclass
class EncodedBatch:
    """Embeddings for a list of texts, in input order, plus each text's own (untruncated) token ids."""

    embeddings: np.ndarray  # [n, hidden] float32
    token_ids: list[np.ndarray]  # the text's own tokens, no prompt, not truncated
    truncated: np.ndarray  # [n] bool: the text was cut to fit max_length


class Embedder:
    """Pools one decoder's hidden states into text embeddings, for documents or queries."""

    def __init__(self, preset: Preset, loaded: LoadedModel) -> None:
        self.preset = preset
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def _prompt_ids(self, instruction: str) -> tuple[list[int], list[int]]:
        prefix, _, suffix = self.preset.template.partition("{text}")
        encode = lambda s: self.tokenizer(s, add_special_tokens=False)["input_ids"] if s else []  # noqa: E731
        return self._leading_specials() + encode(instruction + prefix), encode(suffix)

    def _leading_specials(self) -> list[int]:
        """The special ids the tokenizer itself puts before a text (Gemma's <bos>, Llama's <s>; none for SmolLM2).

        Asked of the tokenizer by example, because `add_bos_token` is not set on every tokenizer that adds one, and a
        Gemma forward without its <bos> decodes to punctuation instead of key tokens."""
        plain = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        full = self.tokenizer("a")["input_ids"]
        return full[:full.index(plain[0])] if plain and plain[0] in full else []

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def prompt_inputs(self, texts: list[str], is_query: bool) -> tuple[list[list[int]], list[list[int]], int]:
        """Each text's own token ids, and the model inputs (instruction + template around the truncated text)."""
        instruction = self.preset.query_instruction if is_query else self.preset.doc_instruction
        max_length = self.preset.query_max_length if is_query else self.preset.max_length
        head, tail = self._prompt_ids(instruction)
        budget = max(1, max_length - len(head) - len(tail))
        own = self.tokenize(texts)
        return own, [head + ids[:budget] + tail for ids in own], budget

    @torch.inference_mode()
    def encode(self, texts: list[str], is_query: bool = False, progress=None) -> EncodedBatch:
        """Embed texts in length-sorted batches (little padding), returning them in input order."""
        own, inputs, budget = self.prompt_inputs(texts, is_query)
        order = sorted(range(len(texts)), key=lambda i: (-len(inputs[i]), i))
        hidden = self.loaded.lm_head.shape[1] if self.loaded.lm_head is not None else self.loaded.model.config.hidden_size
        out = np.zeros((len(texts), hidden), dtype=np.float32)
        for start in range(0, len(order), self.preset.batch_size):
            batch = order[start:start + self.preset.batch_size]
            out[batch] = self.pool([inputs[i] for i in batch]).cpu().numpy()
            if progress is not None:
                progress.update(len(batch))
        truncated = np.array([len(ids) > budget for ids in own], dtype=bool)
        return EncodedBatch(out, [np.asarray(ids, dtype=np.int32) for ids in own], truncated)

    def pool(self, sequences: list[list[int]]) -> torch.Tensor:
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
        mask_f = mask.to(device).unsqueeze(-1).float()
        pooling = self.preset.pooling
        if pooling in ("last", "prompteol"):
            last = mask.sum(dim=1) - 1
            pooled = states[torch.arange(len(sequences)), last.to(device)]
        elif pooling == "mean":
            pooled = (states * mask_f).sum(1) / mask_f.sum(1)
        elif pooling == "weighted-mean":  # SGPT: weight of position i is i (1-based), over real tokens
            positions = torch.arange(1, width + 1, device=device).float().view(1, -1, 1) * mask_f
            pooled = (states * positions).sum(1) / positions.sum(1)
        else:
            raise ValueError(f"pooling {pooling!r} is not a decoder pooling")
        return pooled
