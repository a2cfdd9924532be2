"""A 2CR condition's work: one dataset evaluated as the BEIR suite did, its run copied out.

The functions behind `python -m pipeline.reproduce` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from common.errors import InputError
from plumbing.datasets import evaluation_split
from plumbing.exports import from_two_cr_name
from plumbing.settings import DataSettings
from steps.evaluate import evaluate


def reproduce(dataset: str, run: str, output: Path, data_limit: int | None, **evaluate_args) -> Path:
    name = from_two_cr_name(dataset)
    data = DataSettings(name, evaluation_split(name), limit=data_limit)
    evaluate(data, **evaluate_args)
    made = data.run_dir / f"{run}.trec"
    if not made.is_file():
        raise InputError(f"--run {run}: the evaluation of {name} made no such run (see {data.run_dir}); "
                         f"use a condition name from the 2CR YAML without its 'keytokens.' prefix")
    output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(made, output)
    print(f"{run} on {name} ({data.split}): {output}")
    return output
