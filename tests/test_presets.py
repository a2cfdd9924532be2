"""Every paper preset against its authors' code, on tiny random stand-ins with real tokenizers (no downloads).

The stand-ins (tests/standins.py) are published into a temporary Hugging Face cache, so presets load through their
real HF ids. Each reference below is the official code: the `gritlm` package itself where it imports under our
pins, otherwise the authors' few lines ported and cited. References run one text at a time (no padding at all);
keytokens runs the mixed-length batch, so equality also shows that padding and pooling positions are right.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests import standins

TEXTS = [
    "Hello world.",
    "Quantum entanglement of photons was observed in a 1,024-qubit array at 4 K, as the authors report.",
    "😀 Café naïve — 中文 text, ñ.",
    "Alterations of the architecture of cerebral white matter in the developing human brain can affect cortical "
    "development and result in functional disabilities. A line scan diffusion-weighted magnetic resonance imaging "
    "sequence with diffusion tensor analysis was applied to measure the apparent diffusion coefficient.",
]
TASK = "Given a scientific claim, retrieve documents that support or refute the claim"
SIDES = [pytest.param(True, id="query"), pytest.param(False, id="document")]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The stand-ins in a Hugging Face cache that `from_pretrained("<org>/<name>")` reads, offline."""
    import huggingface_hub.constants as constants

    cache = standins.build(tmp_path_factory.mktemp("hub"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "HF_HUB_CACHE", str(cache))
        patch.setattr(constants, "HF_HUB_OFFLINE", True)
        patch.setenv("HF_HUB_CACHE", str(cache))
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield cache


def ours(name: str, is_query: bool, texts=TEXTS):
    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import PRESETS

    preset = PRESETS[name]
    embedder = Embedder(preset, load_model(preset, "cpu"))
    return embedder.prompts(texts, is_query).inputs, embedder.encode(texts, is_query).embeddings


# ---- references: the authors' code, one text at a time ------------------------------------------------------

def _last_token_pool(last_hidden_states, attention_mask):
    """`last_token_pool` of the e5-mistral-7b-instruct and Qwen3-Embedding model cards."""
    left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
    if left_padding:
        return last_hidden_states[:, -1]
    sequence_lengths = attention_mask.sum(dim=1) - 1
    return last_hidden_states[torch.arange(last_hidden_states.shape[0]), sequence_lengths]


def e5_reference(text: str, is_query: bool):
    """intfloat/e5-mistral-7b-instruct model card: `Instruct: ...\\nQuery: ` queries, EOS appended, last token, L2."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained("intfloat/e5-mistral-7b-instruct")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModel.from_pretrained("intfloat/e5-mistral-7b-instruct").eval()
    text = f"Instruct: {TASK}\nQuery: {text}" if is_query else text
    batch = tokenizer([text], max_length=4096 - 1, return_attention_mask=False, padding=False, truncation=True)
    batch["input_ids"] = [ids + [tokenizer.eos_token_id] for ids in batch["input_ids"]]
    batch = tokenizer.pad(batch, padding=True, return_attention_mask=True, return_tensors="pt")
    out = model(**batch)
    return batch["input_ids"][0].tolist(), F.normalize(_last_token_pool(out.last_hidden_state, batch["attention_mask"]), p=2, dim=1)[0]


def qwen3_reference(text: str, is_query: bool):
    """Qwen/Qwen3-Embedding model card: `Instruct: ...\\nQuery:` queries, <|endoftext|> appended, last token, L2."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained("Qwen/Qwen3-Embedding-0.6B", padding_side="left")
    model = AutoModel.from_pretrained("Qwen/Qwen3-Embedding-0.6B").eval()
    eod_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    text = f"Instruct: {TASK}\nQuery:{text}" if is_query else text
    batch = tokenizer([text], padding=False, truncation=True, max_length=8192 - 2)
    for seq, att in zip(batch["input_ids"], batch["attention_mask"]):
        seq.append(eod_id)
        att.append(1)
    batch = tokenizer.pad(batch, padding=True, return_tensors="pt")
    out = model(**batch)
    return batch["input_ids"][0].tolist(), F.normalize(_last_token_pool(out.last_hidden_state, batch["attention_mask"]), p=2, dim=1)[0]


def gritlm_reference(text: str, is_query: bool):
    """The `gritlm` package: GritLM.encode (attn bbcc = bidirectional, mean over the text only, normalised)."""
    from gritlm import GritLM

    model = GritLM("GritLM/GritLM-7B", torch_dtype=torch.float32, device="cpu")
    instruction = f"<|user|>\n{TASK}\n<|embed|>\n" if is_query else "<|embed|>\n"
    ids = model.tokenizer(instruction + text)["input_ids"]
    return ids, torch.from_numpy(model.encode([text], instruction=instruction, batch_size=1))[0]


def llm2vec_reference(text: str, is_query: bool):
    """llm2vec 0.2.3 (LLM2Vec._convert_to_str, prepare_for_tokenization, tokenize, get_pooling 'mean'), ported.

    Its MistralBiModel attends bidirectionally: here a 4-D all-visible mask (no padding, one text) does that. The
    model: Mistral-7B-Instruct-v0.2 + the MNTP LoRA merged + the supervised LoRA (as Nie et al.'s model.py loads it).
    """
    from peft import PeftModel
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained("mistralai/Mistral-7B-Instruct-v0.2")
    model = AutoModel.from_pretrained("mistralai/Mistral-7B-Instruct-v0.2")
    model = PeftModel.from_pretrained(model, "McGill-NLP/LLM2Vec-Mistral-7B-Instruct-v2-mntp").merge_and_unload()
    model = PeftModel.from_pretrained(model, "McGill-NLP/LLM2Vec-Mistral-7B-Instruct-v2-mntp-supervised").eval()
    instruction = f"{TASK}:" if is_query else ""
    sentence = f"{instruction.strip()} !@#$%^&*(){text}" if instruction else f"!@#$%^&*(){text}"
    sentence = "[INST] " + sentence.strip() + " [/INST]"  # prepare_for_tokenization, Mistral-7B-Instruct-v0.2
    parts = sentence.split("!@#$%^&*()")
    original = tokenizer(["".join(parts)], return_tensors="pt", truncation=True, max_length=512)
    n = len(tokenizer([parts[1]], add_special_tokens=False, truncation=True, max_length=512)["input_ids"][0])
    length = original["input_ids"].shape[1]
    states = model(input_ids=original["input_ids"], attention_mask=torch.zeros(1, 1, length, length)).last_hidden_state
    return original["input_ids"][0].tolist(), states[0, -n:, :].mean(dim=0)


def sgpt_reference(repo: str):
    def reference(text: str, is_query: bool):
        """SGPT README (Muennighoff/sgpt): `tokenize_with_specb` brackets + `get_weightedmean_embedding`."""
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(repo)
        model = AutoModel.from_pretrained(repo).eval()
        bos = tokenizer.encode("[" if is_query else "{", add_special_tokens=False)[0]
        eos = tokenizer.encode("]" if is_query else "}", add_special_tokens=False)[0]
        batch = tokenizer([text], padding=False, truncation=True)
        for seq, att in zip(batch["input_ids"], batch["attention_mask"]):
            seq.insert(0, bos)
            seq.append(eos)
            att.insert(0, 1)
            att.append(1)
        batch = tokenizer.pad(batch, padding=True, return_tensors="pt")
        last = model(**batch, output_hidden_states=True, return_dict=True).last_hidden_state
        weights = torch.arange(start=1, end=last.shape[1] + 1).unsqueeze(0).unsqueeze(-1).expand(last.size()).float()
        mask = batch["attention_mask"].unsqueeze(-1).expand(last.size()).float()
        return batch["input_ids"][0].tolist(), (torch.sum(last * mask * weights, dim=1) / torch.sum(mask * weights, dim=1))[0]
    return reference


def prompteol_reference(repo: str, adapter: str | None = None):
    def reference(text: str, is_query: bool):
        """Nie et al.'s embedding.py (opt_eol / llama_eol / *_cse): the PromptEOL template, last hidden state."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(repo)
        tokenizer.pad_token_id, tokenizer.padding_side = 0, "left"  # as model.py sets them for OPT and LLaMA
        model = AutoModelForCausalLM.from_pretrained(repo).eval()
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).eval()
        template = 'This_sentence_:_"*sent_0*"_means_in_one_word:"'
        inputs = tokenizer([template.replace("*sent_0*", text).replace("_", " ")], padding=True, return_tensors="pt")
        hidden = model(**inputs, output_hidden_states=True, return_dict=True).hidden_states[-1][:, -1, :]
        return inputs["input_ids"][0].tolist(), hidden[0]
    return reference


REFERENCES = {
    "e5-mistral-7b": e5_reference,
    "qwen3-embedding-0.6b": qwen3_reference,
    "gritlm-7b": gritlm_reference,
    "llm2vec-mistral-7b": llm2vec_reference,
    "sgpt-125m": sgpt_reference("Muennighoff/SGPT-125M-weightedmean-msmarco-specb-bitfit"),
    "sgpt-5.8b": sgpt_reference("Muennighoff/SGPT-5.8B-weightedmean-msmarco-specb-bitfit"),
    "prompteol-opt-1.3b": prompteol_reference("facebook/opt-1.3b"),
    "prompteol-llama-7b": prompteol_reference("huggyllama/llama-7b"),
    "prompteol-cse-opt-1.3b": prompteol_reference("facebook/opt-1.3b", "royokong/prompteol-opt-1.3b"),
    "prompteol-cse-llama-7b": prompteol_reference("huggyllama/llama-7b", "royokong/prompteol-llama-7b"),
}
# The paper's code (model.py, load_decoder_layer): which head decodes each embedder.
HEADS = {"e5-mistral-7b": "mistralai/Mistral-7B-v0.1", "llm2vec-mistral-7b": "mistralai/Mistral-7B-Instruct-v0.2",
         "sgpt-125m": "EleutherAI/gpt-neo-125m", "sgpt-5.8b": "EleutherAI/gpt-j-6b", "gritlm-7b": "GritLM/GritLM-7B",
         "prompteol-opt-1.3b": "facebook/opt-1.3b", "prompteol-llama-7b": "huggyllama/llama-7b",
         "qwen3-embedding-0.6b": "Qwen/Qwen3-0.6B-Base"}


def test_every_paper_preset_has_a_stand_in_and_a_reference():
    from encoders.presets import PRESETS

    paper = {name for name, p in PRESETS.items() if p.verified}
    assert paper - set(REFERENCES) <= {"qwen3-embedding-4b", "qwen3-embedding-8b"}  # same code path as 0.6b
    assert set(REFERENCES) == set(standins.STANDIN_PRESETS)


@pytest.mark.parametrize("is_query", SIDES)
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_preset_matches_official_code(hub, name, is_query):
    """Same token ids, and embeddings within 1e-5, as the authors' code on the same weights."""
    inputs, embeddings = ours(name, is_query)
    with torch.inference_mode():
        expected = [REFERENCES[name](text, is_query) for text in TEXTS]
    for text, ids, (ref_ids, _) in zip(TEXTS, inputs, expected):
        assert ids == ref_ids, f"{name}: token ids differ for {text!r}"
    reference = np.stack([vector.float().numpy() for _, vector in expected])
    np.testing.assert_allclose(embeddings, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_head_is_the_one_the_paper_decodes_with(hub, name):
    from transformers import AutoModelForCausalLM

    from encoders.models import load_model
    from encoders.presets import PRESETS

    expected = AutoModelForCausalLM.from_pretrained(HEADS[name]).get_output_embeddings().weight.detach()
    assert torch.equal(load_model(PRESETS[name], "cpu").lm_head, expected)


@pytest.mark.parametrize("is_query", SIDES)
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_batch_of_one_equals_padded_batch(hub, name, is_query):
    _, batched = ours(name, is_query)
    singles = np.concatenate([ours(name, is_query, [text])[1] for text in TEXTS])
    np.testing.assert_allclose(batched, singles, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,bidirectional", [("gritlm-7b", True), ("llm2vec-mistral-7b", True),
                                                ("e5-mistral-7b", False), ("prompteol-llama-7b", False)])
def test_attention_direction(hub, name, bidirectional):
    """Bidirectional presets: the first position's state depends on the last token; causal ones: it does not."""
    from encoders.models import load_model
    from encoders.presets import PRESETS

    model = load_model(PRESETS[name], "cpu").model
    ids = torch.tensor([[1, 400, 500, 600, 700]])
    changed = ids.clone()
    changed[0, -1] = 800
    with torch.inference_mode():
        first = model.base_model(input_ids=ids).last_hidden_state[0, 0]
        second = model.base_model(input_ids=changed).last_hidden_state[0, 0]
    assert (not torch.allclose(first, second, atol=1e-6)) == bidirectional


def test_adapters_give_the_merged_model(hub):
    """LoRA adapters change the output, and keytokens' merged model equals PEFT's unmerged adapter stack."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from encoders.models import load_model
    from encoders.presets import PRESETS

    ids = torch.tensor([[2, 400, 500, 600, 700, 800]])
    with torch.inference_mode():
        base = AutoModelForCausalLM.from_pretrained("facebook/opt-1.3b").eval()
        plain = base.model(input_ids=ids).last_hidden_state
        stacked = PeftModel.from_pretrained(base, "royokong/prompteol-opt-1.3b").eval()
        expected = stacked.base_model.model.model(input_ids=ids).last_hidden_state
        merged = load_model(PRESETS["prompteol-cse-opt-1.3b"], "cpu").model.base_model(input_ids=ids).last_hidden_state
    assert not torch.allclose(plain, expected, atol=1e-4)
    torch.testing.assert_close(merged, expected, atol=1e-5, rtol=0)


def test_one_model_per_weights_whatever_the_call_pattern(hub):
    from encoders.models import load_model
    from encoders.presets import PRESETS

    preset = PRESETS["e5-mistral-7b"]
    first = load_model(preset, "cpu")
    assert load_model(preset) is first and load_model(preset, "auto", "auto") is first
    assert load_model(replace(preset, name="e5-mean", pooling="mean", max_length=64)) is first


def test_budget_counts_the_text_only(hub):
    """E5's 22-token instruction does not eat the query budget; a cut text keeps its instruction and closing token."""
    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import PRESETS

    preset = replace(PRESETS["e5-mistral-7b"], query_max_length=5)
    embedder = Embedder(preset, load_model(preset, "cpu"))
    prompts = embedder.prompts([TEXTS[1]], is_query=True)
    instruction = embedder.tokenizer(f"Instruct: {TASK}\nQuery:")["input_ids"]  # the space joins the text
    assert prompts.truncated == [True]
    assert prompts.inputs[0][:len(instruction)] == instruction
    assert len(prompts.inputs[0]) - len(instruction) - 1 in (5, 6)  # 5 text tokens (+1 if the cut re-merges), </s>
    assert prompts.inputs[0][-1] == embedder.tokenizer.eos_token_id


def test_index_builds_for_every_stand_in(hub, sliced):
    """`make index model=<preset>`: encode -> project -> Lucene impact index, through each preset's HF ids."""
    import json

    from pipeline.encode import main as encode_main
    from pipeline.index import main as index_main

    for name in standins.STANDIN_PRESETS:
        flags = ["--dataset", "scifact", "--limit", "5", "--model", name, "--device", "cpu"]
        assert encode_main(flags) == 0 and index_main(flags) == 0
    from common.layout import index_root

    for name in standins.STANDIN_PRESETS:
        variants = [p for p in (index_root() / "scifact-limit5" / name).iterdir() if (p / "lucene").is_dir()]
        assert variants, name
        info = json.loads((variants[0] / "manifest.json").read_text())
        assert info["counts"]["documents"] == len(sliced.corpus)
