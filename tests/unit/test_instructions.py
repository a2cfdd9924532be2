"""Per-task instructions: the table is the authors' (checked against MTEB's own task metadata, an independent copy),
each dataset gets its own, and a preset's prompts carry the one of the dataset being encoded."""
from __future__ import annotations

import pytest

from encoders.instructions import DEFAULT_INSTRUCTION, MTEB_NAMES, TASK_INSTRUCTIONS, task_instruction
from encoders.presets import PRESETS


@pytest.mark.parametrize("dataset", sorted(MTEB_NAMES))
def test_instructions_are_mtebs_task_prompts(dataset):
    import mteb

    prompt = mteb.get_task(MTEB_NAMES[dataset]).metadata.prompt
    assert TASK_INSTRUCTIONS[dataset] == prompt["query"]


def test_each_dataset_gets_its_own_instruction_and_others_the_default():
    assert task_instruction("scifact") != task_instruction("nfcorpus")
    assert task_instruction("cqadupstack/android") == task_instruction("cqadupstack-gis") == TASK_INSTRUCTIONS["cqadupstack"]
    assert task_instruction("my-own-collection") == DEFAULT_INSTRUCTION
    assert task_instruction("SciFact") == TASK_INSTRUCTIONS["scifact"]


@pytest.mark.parametrize("name, side, expected", [
    ("e5-mistral-7b", "query_instruction", "Instruct: {}\nQuery: "),
    ("gritlm-7b", "query_instruction", "<|user|>\n{}\n<|embed|>\n"),
    ("llm2vec-mistral-7b", "query_template", "[INST] {}: {{text}} [/INST]"),
    ("qwen3-embedding-8b", "query_instruction", "Instruct: {}\nQuery:"),
])
def test_presets_take_the_datasets_instruction(name, side, expected):
    for dataset in ("scifact", "fiqa", "webis-touche2020"):
        preset = PRESETS[name].for_task(dataset)
        assert getattr(preset, side) == expected.format(TASK_INSTRUCTIONS[dataset])
        assert "{task}" not in str(preset.describe())
    assert PRESETS[name].takes_task and not PRESETS["smollm2"].takes_task
    assert PRESETS["smollm2"].for_task("fiqa") == PRESETS["smollm2"]
