"""PC1 tools on a real embedding matrix, analysis outputs written (hand-made alignment cases: tests/unit)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from encoders import pc1
from plumbing.shards import shard_paths


def test_pc1_on_real_embeddings(embeddings):
    matrix = np.load(shard_paths(embeddings, 0)[0])
    mean, directions, singular = pc1.principal_components(matrix, 2)
    assert np.linalg.norm(directions[0]) == pytest.approx(1.0, abs=1e-5)
    assert abs(float(directions[0] @ directions[1])) < 1e-4 and float(mean @ directions[0]) >= 0
    setting = pc1.estimate(matrix, "0.5")
    u1 = np.array(setting["u1"], dtype=np.float32)
    moved = pc1.adjust(matrix, setting) - matrix
    assert np.allclose(moved, 0.5 * u1, atol=1e-5)  # the adjustment moves along u1 only
    removed = pc1.adjust(matrix, pc1.estimate(matrix, "remove"))
    assert np.allclose(removed @ u1, 0, atol=1e-3)


def test_analysis_writes_metrics_and_plots(embeddings, isolated_outputs):
    from studies.analyze import main

    main(["--dataset", "scifact", "--limit", "5", "--n", "8", "--device", "cpu"])
    folder = isolated_outputs / "runs" / "scifact-limit5" / "analysis" / "smollm2"
    data = json.loads((folder / "alignment.json").read_text())
    assert {"mean pc1=off normalized", "prompteol pc1=remove raw"} <= set(data["alignment"])
    for name in ("variation.png", "contribution.png", "lambda.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG" and (folder / name).stat().st_size > 10_000
    assert "hit@10" in (folder / "report.md").read_text()
