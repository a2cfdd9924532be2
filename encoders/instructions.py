"""The task instruction an instruction-tuned embedder is given for each dataset, as its authors evaluate BEIR.

E5-Mistral's authors define one instruction per BEIR task (microsoft/unilm `e5/utils.py`,
`get_task_def_by_task_name_and_type`, type Retrieval). The other instruction-tuned presets evaluate with the same
definitions: GritLM's `evaluation/eval_mteb.py` (its default `--instruction_set e5`, the corpus side without one),
LLM2Vec's `test_configs/mteb/task_to_instructions.json` (each with a trailing ":", which its preset template adds),
and Qwen3-Embedding through MTEB's task metadata prompts (`mteb.get_task(...).metadata.prompt["query"]`, what
MTEB's Qwen3-Embedding implementation passes), which carry the same sentences (tests/unit/test_instructions.py
checks them against the installed mteb). A dataset none of them lists gets the web-search instruction, the
Qwen3-Embedding card's and E5's MS MARCO one. Presets write `{task}` where the instruction goes; `Preset.for_task`
fills it in, and the encode manifest records the filled prompts, so embeddings made under one instruction are never
reused under another.
"""
from __future__ import annotations

TASK_PLACEHOLDER = "{task}"
SOURCE = "E5-Mistral's BEIR task definitions (microsoft/unilm e5/utils.py), also used by GritLM, LLM2Vec and MTEB"

# BEIR dataset name (as BEIR folders and ir_datasets `beir/<name>` spell it) -> the authors' task definition
TASK_INSTRUCTIONS: dict[str, str] = {
    "arguana": "Given a claim, find documents that refute the claim",
    "climate-fever": "Given a claim about climate change, retrieve documents that support or refute the claim",
    "cqadupstack": "Given a question, retrieve detailed question descriptions from Stackexchange that are duplicates "
                   "to the given question",
    "dbpedia-entity": "Given a query, retrieve relevant entity descriptions from DBPedia",
    "fever": "Given a claim, retrieve documents that support or refute the claim",
    "fiqa": "Given a financial question, retrieve user replies that best answer the question",
    "hotpotqa": "Given a multi-hop question, retrieve documents that can help answer the question",
    "msmarco": "Given a web search query, retrieve relevant passages that answer the query",
    "nfcorpus": "Given a question, retrieve relevant documents that best answer the question",
    "nq": "Given a question, retrieve Wikipedia passages that answer the question",
    "quora": "Given a question, retrieve questions that are semantically equivalent to the given question",
    "scidocs": "Given a scientific paper title, retrieve paper abstracts that are cited by the given paper",
    "scifact": "Given a scientific claim, retrieve documents that support or refute the claim",
    "trec-covid": "Given a query on COVID-19, retrieve documents that answer the query",
    "webis-touche2020": "Given a question, retrieve detailed and persuasive arguments that answer the question",
}
DEFAULT_INSTRUCTION = TASK_INSTRUCTIONS["msmarco"]

# our dataset names -> MTEB's task names (for the check against MTEB's own metadata, whose CQADupStack tasks carry
# no prompt: that one rests on E5's utils.py alone)
MTEB_NAMES = {"arguana": "ArguAna", "climate-fever": "ClimateFEVER",
              "dbpedia-entity": "DBPedia", "fever": "FEVER", "fiqa": "FiQA2018", "hotpotqa": "HotpotQA",
              "msmarco": "MSMARCO", "nfcorpus": "NFCorpus", "nq": "NQ", "quora": "QuoraRetrieval",
              "scidocs": "SCIDOCS", "scifact": "SciFact", "trec-covid": "TRECCOVID",
              "webis-touche2020": "Touche2020"}


def task_instruction(dataset: str) -> str:
    """The instruction for a dataset name: BEIR's names, `cqadupstack/<forum>` or `cqadupstack-<forum>` as
    CQADupStack, anything else the web-search default."""
    name = dataset.lower().split("/")[0]
    if name.startswith("cqadupstack"):
        name = "cqadupstack"
    return TASK_INSTRUCTIONS.get(name, DEFAULT_INSTRUCTION)
