"""`make demo`'s train-if-missing logic on a tiny budget (real SmolLM2, real scifact pairs): an absent model is
trained, a ready one reused untouched, one with fewer steps resumed, one with other settings moved aside (not
deleted) and retrained; and the `--limit` taste runs the whole loop to a leaderboard that opens with the key figure."""
from __future__ import annotations

import json
import re

import pytest

from common import layout
from plumbing.settings import DataSettings, ModelSettings
from steps.demo import ensure_trained, model_state, run_demo
from steps.train import TrainRun, TrainSettings

BACKBONE = ModelSettings("smollm2", device="cpu")
DATA = DataSettings("scifact", "test")
TINY = TrainSettings.for_model(BACKBONE, batch_size=4, query_max_length=16, doc_max_length=32)


def _tiny_run(steps: int, name: str = "demo-tiny") -> TrainRun:
    return TrainRun(steps, name, save_every=1, eval_every=0)


def test_absent_model_is_trained_and_a_ready_one_reused(isolated_outputs):
    name = "demo-absent"  # a name no other test trains, so "absent" holds in any test order
    assert model_state(name, TINY, 1) == "absent"
    assert ensure_trained(DATA, BACKBONE, TINY, _tiny_run(1, name)).action == "trained (absent)"
    weights = layout.trained_model_dir(name) / "model" / "model.safetensors"
    written = weights.stat().st_mtime_ns
    assert model_state(name, TINY, 1) == "ready"
    assert ensure_trained(DATA, BACKBONE, TINY, _tiny_run(1, name)).action == "reused"
    assert weights.stat().st_mtime_ns == written  # reused: not retrained, not rewritten


def test_stale_models_are_resumed_or_moved_aside(isolated_outputs):
    folder = layout.trained_model_dir("demo-tiny")
    if model_state("demo-tiny", TINY, 1) != "ready":
        ensure_trained(DATA, BACKBONE, TINY, _tiny_run(1))
    assert ensure_trained(DATA, BACKBONE, TINY, _tiny_run(2)).action == "trained (stale: 1 of 2 steps)"
    assert json.loads((folder / "manifest.json").read_text())["steps"] == 2  # resumed from the checkpoint

    other = TrainSettings.for_model(BACKBONE, batch_size=4, query_max_length=16, doc_max_length=32, lr=1e-4)
    assert model_state("demo-tiny", other, 2) == "stale: trained with other settings (lr differ)"
    assert ensure_trained(DATA, BACKBONE, other, _tiny_run(2)).action.startswith("trained (stale: trained with other")
    aside = list(folder.parent.glob("demo-tiny.stale-*"))
    assert len(aside) == 1 and (aside[0] / "model" / "model.safetensors").is_file()  # the old model is kept
    assert json.loads((folder / "manifest.json").read_text())["settings"]["lr"] == 1e-4


def test_taste_runs_the_loop_to_the_key_figure(isolated_outputs, tmp_path, monkeypatch):
    monkeypatch.setenv("KEYTOKENS_RUNS", str(tmp_path / "runs"))  # the test run's slice leaderboard stays smollm2's
    summary = run_demo(DataSettings("scifact", "test", 5), BACKBONE, "float32")
    assert summary["model"] == "smollm2-ft-taste" and summary["training"] == "trained (absent)"
    assert set(summary["stage_seconds"]) == {"train", "encode smollm2-ft-taste", "encode splade-tiny",
                                             "eval (indexes, runs, metrics)", "total"}
    assert summary["key_figure"][0].startswith("**The no-LLM sparse run (smollm2-ft-taste.")
    folder = layout.runs_root() / "scifact-limit5"
    leaderboard = (folder / "leaderboard.md").read_text()
    assert leaderboard.splitlines()[2] == summary["key_figure"][0]
    # the figure's numbers are the scored runs' (read back from metrics.json), and its difference their difference
    rows = {r["name"]: r["metrics"]["ndcg@10"] for r in json.loads((folder / "metrics.json").read_text())["runs"]}
    found = re.search(r"scores ([0-9.]+): ([+-][0-9.]+) against BM25 \(([0-9.]+)\)", summary["key_figure"][0])
    key = next(name for name in rows if summary["key_figure"][0].startswith(f"**The no-LLM sparse run ({name}:"))
    assert float(found[1]) == rows[key] and float(found[3]) == rows["bm25"]
    assert float(found[2]) == pytest.approx(rows[key] - rows["bm25"], abs=1e-4)
    assert "fine-tuned from smollm2" in leaderboard  # the trained embedder's rows say what it was trained on
