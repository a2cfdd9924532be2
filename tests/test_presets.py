"""Every paper preset against its authors' code, on tiny random stand-ins with real tokenizers (no downloads).

The stand-ins (tests/standins.py) are published into a temporary Hugging Face cache, so presets load through their
real HF ids. Each reference below is the official code: the `gritlm` package itself where it imports under our
pins, otherwise the authors' few lines ported and cited. References run one text at a time (no padding at all);
keytokens runs the mixed-length batch, so equality also shows that padding and pooling positions are right.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests import standins
from tests.golden_outputs import prompteol, sgpt

# The parity text set, shared with tests/golden_outputs.py: short texts, emoji and non-Latin script, underscores,
# quotes and question marks, leading whitespace, and LONG (about 800 tokens: past LLM2Vec's 400 and every 512 cut,
# within OPT's and GPT-Neo's 2,048 positions); HUGE (past E5's 4,096 and Qwen3-Embedding's 8,192 tokens) only for
# the presets whose official code cuts there.
PARITY = json.loads((Path(__file__).parent / "golden" / "texts.json").read_text(encoding="utf-8"))
TEXTS, HUGE = PARITY["texts"], PARITY["huge"]
LONG = TEXTS[-1]
HUGE_TEXT_PRESETS = ("e5-mistral-7b", "qwen3-embedding-0.6b")
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

    preset = PRESETS[name].for_task("scifact")  # the parity texts are scifact's: its task instruction
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
    """Qwen/Qwen3-Embedding model card (its current code): `Instruct: ...\\nQuery:` queries, the tokenizer called
    with max_length=8192 (it ends every text with <|endoftext|> itself), last token, L2."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained("Qwen/Qwen3-Embedding-0.6B", padding_side="left")
    model = AutoModel.from_pretrained("Qwen/Qwen3-Embedding-0.6B").eval()
    text = f"Instruct: {TASK}\nQuery:{text}" if is_query else text
    batch = tokenizer([text], padding=True, truncation=True, max_length=8192, return_tensors="pt")
    out = model(**batch)
    return batch["input_ids"][0].tolist(), F.normalize(_last_token_pool(out.last_hidden_state, batch["attention_mask"]), p=2, dim=1)[0]


def gritlm_reference(text: str, is_query: bool):
    """The `gritlm` package: GritLM.encode (attn bbcc = bidirectional, mean over the text only, normalised)."""
    from gritlm import GritLM

    model = GritLM("GritLM/GritLM-7B", torch_dtype=torch.float32, device="cpu")
    instruction = f"<|user|>\n{TASK}\n<|embed|>\n" if is_query else "<|embed|>\n"
    ids = model.tokenizer(instruction + text, truncation=True, max_length=512)["input_ids"]  # as GritLM.encode
    return ids, torch.from_numpy(model.encode([text], instruction=instruction, batch_size=1))[0]


def llm2vec_reference(text: str, is_query: bool):
    """llm2vec 0.2.3 (LLM2Vec._convert_to_str with its word trimming, prepare_for_tokenization, tokenize,
    get_pooling 'mean'), ported line by line from llm2vec/llm2vec.py.

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
    length = len(tokenizer(text, truncation=True, max_length=512, add_special_tokens=False)["input_ids"])
    while length > 400:  # _convert_to_str: LLM2Vec(...)'s doc_max_length=400, as Nie et al.'s code constructs it
        text = " ".join(text.split()[:int(len(text.split()) * 400 / length)])
        length = len(tokenizer(text, truncation=True, max_length=512, add_special_tokens=False)["input_ids"])
    sentence = f"{instruction.strip()} !@#$%^&*(){text}" if instruction else f"!@#$%^&*(){text}"
    # prepare_for_tokenization wraps (and strips) a model whose config name is Mistral-7B-Instruct-v0.2: the MNTP
    # repository Nie et al.'s model.py loads is an adapter over that base, which from_pretrained loads under peft
    sentence = "[INST] " + sentence.strip() + " [/INST]"
    parts = sentence.split("!@#$%^&*()")
    original = tokenizer(["".join(parts)], return_tensors="pt", truncation=True, max_length=512)
    n = len(tokenizer([parts[1]], add_special_tokens=False, truncation=True, max_length=512)["input_ids"][0])
    length = original["input_ids"].shape[1]
    states = model(input_ids=original["input_ids"], attention_mask=torch.zeros(1, 1, length, length)).last_hidden_state
    return original["input_ids"][0].tolist(), states[0, -n:, :].mean(dim=0)


REFERENCES = {
    "e5-mistral-7b": e5_reference,
    "qwen3-embedding-0.6b": qwen3_reference,
    "gritlm-7b": gritlm_reference,
    "llm2vec-mistral-7b": llm2vec_reference,
    # SGPT's README and the paper's PromptEOL lines run under our pins too: the same functions the golden script runs
    "sgpt-125m": sgpt("Muennighoff/SGPT-125M-weightedmean-msmarco-specb-bitfit"),
    "sgpt-5.8b": sgpt("Muennighoff/SGPT-5.8B-weightedmean-msmarco-specb-bitfit"),
    "prompteol-opt-1.3b": prompteol("facebook/opt-1.3b"),
    "prompteol-llama-7b": prompteol("huggyllama/llama-7b"),
    "prompteol-cse-opt-1.3b": prompteol("facebook/opt-1.3b", "royokong/prompteol-opt-1.3b"),
    "prompteol-cse-llama-7b": prompteol("huggyllama/llama-7b", "royokong/prompteol-llama-7b"),
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
    """Same token ids, and embeddings within 1e-5, as the authors' code on the same weights, long texts included
    (each preset's own truncation rule)."""
    texts = TEXTS + ([HUGE] if name in HUGE_TEXT_PRESETS else [])
    inputs, embeddings = ours(name, is_query, texts)
    with torch.inference_mode():
        expected = [REFERENCES[name](text, is_query) for text in texts]
    for text, ids, (ref_ids, _) in zip(texts, inputs, expected):
        assert ids == ref_ids, f"{name}: token ids differ for {text[:60]!r} ({len(ids)} vs {len(ref_ids)} ids)"
    reference = np.stack([vector.float().numpy() for _, vector in expected])
    np.testing.assert_allclose(embeddings, reference, atol=1e-5, rtol=0)


GOLDEN = sorted(path.stem for path in (Path(__file__).parent / "golden").glob("*.json") if path.stem != "texts")


@pytest.mark.parametrize("is_query", SIDES)
@pytest.mark.parametrize("name", GOLDEN)
def test_preset_matches_golden_outputs_of_the_official_code(hub, name, is_query):
    """The official code run in its own environment (tests/golden_outputs.py: llm2vec 0.2.3 and transformers 4.44.2,
    the e5 card with the tokenizer appending </s>, SGPT's README, the paper's PromptEOL code) on these same stand-in
    weights: exactly its token ids, and its embeddings within 1e-5, on every parity text, long ones included."""
    from tests.golden_outputs import OFFICIAL, weights_sha1

    golden = json.loads((Path(__file__).parent / "golden" / f"{name}.json").read_text(encoding="utf-8"))
    assert weights_sha1(hub, OFFICIAL[name][2]) == golden["weights_sha1"], (
        f"the stand-ins of {name} are not the weights its golden file was made from: rerun tests/golden_outputs.py")
    texts = TEXTS + ([HUGE] if golden["huge"] else [])
    expected = golden["query" if is_query else "document"]
    inputs, embeddings = ours(name, is_query, texts)
    for text, ids, want in zip(texts, inputs, expected, strict=True):
        assert ids == want["ids"], f"{name}: token ids differ for {text[:60]!r} ({len(ids)} vs {len(want['ids'])} ids)"
    np.testing.assert_allclose(embeddings, np.array([w["embedding"] for w in expected]), atol=1e-5, rtol=0)


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


def test_text_budget_counts_the_text_only(hub):
    """truncation=text (SGPT): a cut text keeps its brackets, and the budget counts the text's own tokens only."""
    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import PRESETS

    preset = replace(PRESETS["sgpt-125m"], query_max_length=5)
    embedder = Embedder(preset, load_model(preset, "cpu"))
    prompts = embedder.prompts([TEXTS[1]], is_query=True)
    assert prompts.truncated == [True]
    assert prompts.inputs[0] == embedder.tokenizer("[", add_special_tokens=False)["input_ids"] + embedder.tokenizer(TEXTS[1], add_special_tokens=False)["input_ids"][:5] + embedder.tokenizer("]", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("name,limit", [("gritlm-7b", 512), ("e5-mistral-7b", 4096), ("qwen3-embedding-0.6b", 8192),
                                        ("llm2vec-mistral-7b", 512), ("prompteol-opt-1.3b", 2048)])
def test_whole_string_limits(hub, name, limit):
    """truncation=whole/llm2vec: the whole prompt (specials, instruction, appended token) stays within the limit
    the authors' code sets, and a text longer than it is flagged as cut."""
    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import PRESETS

    embedder = Embedder(PRESETS[name].for_task("scifact"), load_model(PRESETS[name], "cpu"))
    long = HUGE  # past every limit; only the prompts are built here, no forward pass
    for is_query in (True, False):
        prompts = embedder.prompts([long, TEXTS[0]], is_query)
        assert len(prompts.inputs[0]) <= limit and prompts.truncated == [True, False]
        if name == "llm2vec-mistral-7b":  # trimmed by words to at most 400 text tokens, well inside 512
            assert len(prompts.inputs[0]) - prompts.starts[0] <= 400


def test_underscores_reach_promptEOL_as_spaces_but_the_index_keeps_them(hub):
    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import PRESETS

    embedder = Embedder(PRESETS["prompteol-opt-1.3b"], load_model(PRESETS["prompteol-opt-1.3b"], "cpu"))
    prompts = embedder.prompts(["snake_case"], is_query=False)
    assert prompts.inputs[0] == embedder.tokenizer('This sentence : "snake case" means in one word:"')["input_ids"]
    assert prompts.own[0] == embedder.tokenizer("snake_case", add_special_tokens=False)["input_ids"]


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


def test_stand_in_tokenizers_are_each_familys_own():
    """tests/vocabularies.py: GPT-2's BPE and Qwen's give llama.cpp's reference ids (the families' Hugging Face
    tokenizers') on every test string; the LLaMA SentencePiece model reproduces them all through SentencePiece
    itself, and through transformers 5 on every string but those that open with a space (its dummy prefix is not
    added before an existing space); OPT is GPT-2's segmentation shifted by its four specials, after `</s>`;
    GPT-J's tokenizer has its 50,400 ids."""
    import sentencepiece

    from tests import vocabularies

    texts = vocabularies.references("llama-spm")
    failures = vocabularies.check()
    assert failures["gpt2"] == 0 and failures["qwen"] == 0
    llama = vocabularies.family("llama")
    processor = sentencepiece.SentencePieceProcessor(model_file=str(Path(llama.name_or_path) / "tokenizer.model"))
    assert all(processor.encode(text) == ids for text, ids in texts)
    differ = [text for text, ids in texts if llama.encode(text, add_special_tokens=False) != ids]
    assert failures["llama"] == len(differ) and all(text.startswith(" ") for text in differ)
    gpt2, opt = vocabularies.family("gpt2"), vocabularies.family("opt")
    for text, _ in vocabularies.references("gpt-2")[:10]:
        assert opt.encode(text) == [2] + [i + 4 for i in gpt2.encode(text)]
    assert len(vocabularies.family("gpt-j")) == 50_400 and len(vocabularies.family("qwen")) == 151_669


def test_every_head_is_its_own_so_a_wrong_head_fails(hub):
    """The stand-ins are seeded per repository: the three Mistral heads (E5's backbone, GritLM's own, LLM2Vec's
    base) differ, so a preset that loaded another preset's head would fail the head test above."""
    from encoders.models import load_model
    from encoders.presets import PRESETS

    heads = {name: load_model(PRESETS[name], "cpu").lm_head for name in ("e5-mistral-7b", "gritlm-7b", "llm2vec-mistral-7b")}
    names = sorted(heads)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            assert heads[first].shape == heads[second].shape and not torch.equal(heads[first], heads[second])


def test_two_datasets_are_encoded_with_two_instructions_and_two_manifests(hub, tmp_path, monkeypatch):
    """As `make beir` runs them: each dataset's queries carry its own task instruction, and the encode manifest of
    each dataset's embeddings records the prompts they were made with."""
    import json

    from plumbing.datasets import load_dataset
    from plumbing.settings import DataSettings, ModelSettings
    from steps.encode import encode_corpus

    monkeypatch.setenv("KEYTOKENS_INDEXES", str(tmp_path / "indexes"))
    source = load_dataset("scifact", "test", limit=2)
    manifests = {}
    for name in ("scifact", "fiqa"):
        folder = tmp_path / name
        (folder / "qrels").mkdir(parents=True)
        (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": "", "text": doc.contents}) + "\n"
                                                     for d, doc in list(source.corpus.items())[:3]))
        (folder / "queries.jsonl").write_text("")
        (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")  # a corpus to encode, unjudged
        data = DataSettings(name, "test", data_dir=str(folder))
        model = ModelSettings("e5-mistral-7b", device="cpu", task=name)
        embeddings = encode_corpus(data.load(), data, model)
        manifests[name] = json.loads((embeddings / "manifest.json").read_text())
        prompts = model.preset
        assert prompts.query_instruction == f"Instruct: {task_instruction_of(name)}\nQuery: "
    assert manifests["scifact"]["preset"]["query_instruction"] != manifests["fiqa"]["preset"]["query_instruction"]
    assert TASK in manifests["scifact"]["preset"]["query_instruction"]


def task_instruction_of(dataset: str) -> str:
    from encoders.instructions import task_instruction

    return task_instruction(dataset)


def test_prompteol_cuts_inside_the_text_and_keeps_the_template_end(hub):
    """Past the model's 2,048 positions (the authors' code never cuts) the prompt stays within them and still ends
    with `means in one word:"`, the position whose state is the embedding."""
    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import PRESETS

    preset = PRESETS["prompteol-llama-7b"]
    embedder = Embedder(preset, load_model(preset, "cpu"))
    prompts = embedder.prompts([HUGE, TEXTS[0]], is_query=False)
    ending = prompts.inputs[1][-5:]  # `▁means ▁in ▁one ▁word :"` as an uncut prompt ends
    assert embedder.tokenizer.decode(ending).strip() == 'means in one word:"'
    assert len(prompts.inputs[0]) <= 2048 and prompts.truncated == [True, False]
    assert prompts.inputs[0][-5:] == ending
