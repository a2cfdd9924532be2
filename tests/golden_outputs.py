"""Golden outputs of the official embedder code, run in its own environment, for tests/test_presets.py (not CI).

The presets' parity tests compare keytokens with the authors' code. Where that code runs under our pins (the
`gritlm` package, the Qwen3-Embedding card, which needs transformers >= 4.51) the tests call it directly; where it
does not (llm2vec 0.2.3 pins transformers <= 4.44.2) or where our pins change what it does (the e5-mistral card's
`add_eos_token` is not honoured by transformers 5), this script runs it in the environment it was written for and
writes token ids and embeddings of the parity texts (tests/golden/texts.json) to tests/golden/<preset>.json:

    .venv/bin/python -m tests.standins /tmp/hub                      # the stand-ins, as the tests build them
    python3 -m venv /tmp/golden && /tmp/golden/bin/pip install torch==2.13.0 transformers==4.44.2 peft==0.12.0 \\
        accelerate==0.34.2 sentencepiece protobuf "numpy<2.3" && /tmp/golden/bin/pip install --no-deps llm2vec==0.2.3
    HF_HUB_CACHE=/tmp/hub HF_HUB_OFFLINE=1 /tmp/golden/bin/python tests/golden_outputs.py /tmp/hub tests/golden

Official code per preset: `llm2vec-mistral-7b` the llm2vec package (its MistralBiModel, `LLM2Vec(model, tokenizer,
pooling_mode="mean", max_length=512).encode`, as Nie et al.'s embedding.py calls it, on the model their model.py
builds from the MNTP repository, an adapter over its base: the MNTP LoRA merged, the supervised LoRA on top, config
name the base's, so every text is wrapped in [INST]); `e5-mistral-7b` the
model card's code with the tokenizer appending </s> (`add_eos_token`, as the real repository's tokenizer config
sets it); `sgpt-*` the SGPT README (`tokenize_with_specb`, weighted mean); `prompteol-*` the paper's embedding.py.
Each file records the sha1 of the weights it read, so a test on other stand-ins says so instead of failing on numbers.
Tokenizer files written by transformers 5 are rewritten in place for this older tokenizers library (merges as
"a b" strings, the fast-tokenizer class of the family): the same vocabulary, merges and specials; LoRA configs lose
the fields this older peft does not know (all at their defaults).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

TASK = "Given a scientific claim, retrieve documents that support or refute the claim"
MNTP = "McGill-NLP/LLM2Vec-Mistral-7B-Instruct-v2-mntp"


def snapshot(hub: Path, repo: str) -> Path:
    return next((hub / f"models--{repo.replace('/', '--')}" / "snapshots").iterdir())


HUB = Path(".")  # set by main: the stand-ins' Hugging Face cache


def adapter_folder(repo: str) -> str:
    """An adapter's snapshot folder (peft 0.12 asks the Hub for a repository id even when the cache holds it); the
    id itself where no hub folder was given (the tests, whose peft reads the cache)."""
    return str(snapshot(HUB, repo)) if HUB != Path(".") else repo


def make_tokenizers_readable(hub: Path) -> None:
    """transformers 5's tokenizer.json (merges as pairs) and class name, as transformers 4.44's tokenizers reads them."""
    for path in hub.rglob("tokenizer.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        merges = data.get("model", {}).get("merges")
        if merges and isinstance(merges[0], list):
            data["model"]["merges"] = [" ".join(pair) for pair in merges]
            path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        config = path.with_name("tokenizer_config.json")
        if config.exists():
            values = json.loads(config.read_text(encoding="utf-8"))
            if values.get("tokenizer_class") in ("TokenizersBackend", None):
                sentencepiece = "<s>" in data["model"].get("vocab", {}) and data["model"].get("byte_fallback")
                # Mistral's SentencePiece family: the class whose add_bos/add_eos switches rebuild the post-processor;
                # the byte-level BPE family (the GPT-Neo, GPT-J, OPT and Qwen3 stand-ins): GPT-2's class
                values.update({"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": True, "add_eos_token": False,
                               "legacy": False} if sentencepiece else {"tokenizer_class": "GPT2TokenizerFast"})
                config.write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")


def make_adapters_readable(hub: Path) -> None:
    """LoRA configs written by a newer peft carry fields this peft does not know (all at their defaults): dropped."""
    from dataclasses import fields

    from peft import LoraConfig

    known = {f.name for f in fields(LoraConfig)}
    for path in hub.rglob("adapter_config.json"):
        values = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({k: v for k, v in values.items() if k in known}), encoding="utf-8")


def weights_sha1(hub: Path, repos: list[str]) -> str:
    digest = hashlib.sha1()
    for repo in repos:
        for path in sorted(snapshot(hub, repo).glob("*.safetensors")):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def e5(text: str, is_query: bool):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained("intfloat/e5-mistral-7b-instruct")
    tokenizer.add_eos_token = True  # the real repository's tokenizer_config.json sets it; the card relies on it
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModel.from_pretrained("intfloat/e5-mistral-7b-instruct").eval()
    text = f"Instruct: {TASK}\nQuery: {text}" if is_query else text
    batch = tokenizer([text], max_length=4096, padding=True, truncation=True, return_tensors="pt")
    out = model(**batch).last_hidden_state
    return batch["input_ids"][0].tolist(), F.normalize(out[:, -1], p=2, dim=1)[0]


def llm2vec(text: str, is_query: bool):
    from llm2vec import LLM2Vec
    from llm2vec.models import MistralBiModel
    from peft import PeftModel
    from transformers import AutoTokenizer

    # Nie et al.'s model.py: tokenizer and model from the MNTP repository, an adapter over Mistral-7B-Instruct-v0.2;
    # with peft installed, from_pretrained follows its adapter config to the base (whose name the config then
    # carries, so llm2vec wraps every text in [INST]) and loads the adapter; then the MNTP LoRA merged, the
    # supervised one on top
    tokenizer = AutoTokenizer.from_pretrained(MNTP)
    tokenizer.pad_token, tokenizer.padding_side = tokenizer.eos_token, "left"  # as LLM2Vec.from_pretrained sets them
    model = MistralBiModel.from_pretrained(adapter_folder(MNTP))  # its snapshot: this peft asks the Hub for ids
    assert model.config._name_or_path == "mistralai/Mistral-7B-Instruct-v0.2", model.config._name_or_path
    model = PeftModel.from_pretrained(model, adapter_folder(MNTP)).merge_and_unload()
    model = PeftModel.from_pretrained(model, adapter_folder(f"{MNTP}-supervised"))
    encoder = LLM2Vec(model, tokenizer, pooling_mode="mean", max_length=512)
    sentence = [f"{TASK}:", text] if is_query else ["", text]
    prepared = encoder.prepare_for_tokenization(encoder._convert_to_str(*sentence))
    ids = encoder.tokenize([prepared])["input_ids"][0].tolist()
    return ids, encoder.encode([sentence], batch_size=1, show_progress_bar=False, device="cpu")[0]


def sgpt(repo: str):
    def reference(text: str, is_query: bool):
        """SGPT README (Muennighoff/sgpt): `tokenize_with_specb` brackets + `get_weightedmean_embedding`."""
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(repo)
        # GPT-2's vocabulary has no pad token, which `tokenizer.pad` asks for even where, as with one text, nothing
        # is padded: eos stands in (the padding never reaches the embedding here)
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        model = AutoModel.from_pretrained(repo).eval()
        bos = tokenizer.encode("[" if is_query else "{", add_special_tokens=False)[0]
        eos = tokenizer.encode("]" if is_query else "}", add_special_tokens=False)[0]
        batch = tokenizer([text], padding=False, truncation=True, max_length=2046)  # its 2,048 positions, brackets in
        for seq, att in zip(batch["input_ids"], batch["attention_mask"]):
            seq.insert(0, bos)
            seq.append(eos)
            att.insert(0, 1)
            att.append(1)
        batch = tokenizer.pad(batch, padding=True, return_tensors="pt")
        last = model(**batch, output_hidden_states=True, return_dict=True).last_hidden_state
        weights = torch.arange(start=1, end=last.shape[1] + 1).unsqueeze(0).unsqueeze(-1).expand(last.size()).float()
        mask = batch["attention_mask"].unsqueeze(-1).expand(last.size()).float()
        pooled = torch.sum(last * mask * weights, dim=1) / torch.sum(mask * weights, dim=1)
        return batch["input_ids"][0].tolist(), pooled[0]
    return reference


def prompteol(repo: str, adapter: str | None = None):
    def reference(text: str, is_query: bool):
        """Nie et al.'s embedding.py (opt_eol / llama_eol / *_cse): the PromptEOL template, `_` -> ` ` after the
        text is inserted, no truncation, last hidden state (model.py sets pad id 0 and left padding)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(repo)
        tokenizer.pad_token_id, tokenizer.padding_side = 0, "left"
        model = AutoModelForCausalLM.from_pretrained(repo).eval()
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_folder(adapter)).eval()
        template = 'This_sentence_:_"*sent_0*"_means_in_one_word:"'
        inputs = tokenizer([template.replace("*sent_0*", text).replace("_", " ")], padding=True, return_tensors="pt")
        hidden = model(**inputs, output_hidden_states=True, return_dict=True).hidden_states[-1][:, -1, :]
        return inputs["input_ids"][0].tolist(), hidden[0]
    return reference


SGPT = "Muennighoff/SGPT-125M-weightedmean-msmarco-specb-bitfit"
# preset -> (official code, what it is, the repositories whose weights it reads, whether `huge` is within its cut)
OFFICIAL = {
    "e5-mistral-7b": (e5, "e5-mistral-7b-instruct model card, tokenizer add_eos_token=True",
                      ["intfloat/e5-mistral-7b-instruct"], True),
    "llm2vec-mistral-7b": (llm2vec, "llm2vec 0.2.3 LLM2Vec(max_length=512).encode on MistralBiModel + LoRAs",
                           ["mistralai/Mistral-7B-Instruct-v0.2", MNTP, f"{MNTP}-supervised"], False),
    "sgpt-125m": (sgpt(SGPT), "SGPT README tokenize_with_specb + weighted mean", [SGPT], False),
    "prompteol-opt-1.3b": (prompteol("facebook/opt-1.3b"), "Nie et al. embedding.py opt_eol", ["facebook/opt-1.3b"],
                           False),
    "prompteol-llama-7b": (prompteol("huggyllama/llama-7b"), "Nie et al. embedding.py llama_eol",
                           ["huggyllama/llama-7b"], False),
    "prompteol-cse-opt-1.3b": (prompteol("facebook/opt-1.3b", "royokong/prompteol-opt-1.3b"),
                               "Nie et al. model.py/embedding.py opt_eol_cse",
                               ["facebook/opt-1.3b", "royokong/prompteol-opt-1.3b"], False),
}


def main(hub: Path, out: Path) -> None:
    import transformers

    global HUB
    HUB = hub
    make_tokenizers_readable(hub)
    make_adapters_readable(hub)
    parity = json.loads((out / "texts.json").read_text(encoding="utf-8"))
    for preset, (code, official, repos, huge) in OFFICIAL.items():
        texts = parity["texts"] + ([parity["huge"]] if huge else [])
        sides = {}
        with torch.inference_mode():
            for side, is_query in (("query", True), ("document", False)):
                sides[side] = [{"ids": ids, "embedding": [round(float(x), 7) for x in vector]}
                               for ids, vector in (code(text, is_query) for text in texts)]
        record = {"preset": preset, "official": official,
                  "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
                  "weights_sha1": weights_sha1(hub, repos), "huge": huge, **sides}
        (out / f"{preset}.json").write_text(json.dumps(record) + "\n", encoding="utf-8")
        print(f"{preset}: {len(texts)} texts x 2 sides -> {out / f'{preset}.json'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parent / "golden"))
