"""Alignment metrics on hand-made lists, PC1 tools on a real embedding matrix, analysis outputs written."""
from __future__ import annotations

import json

import numpy as np
import pytest

from encoders.aligned import adjust_pc1
from encoders.alignment import alignment_from_lists
from encoders.pc1 import pc1_setting, principal_components
from pipeline.encode import shard_paths


def test_alignment_metrics_known_answers():
    own = [{"cat", "sat", "mat"}, {"dog"}, set()]
    ranked = [["the", "cat", "on", "mat", "sat"], ["puppy", "bark", "dog"], ["x"]]
    result = alignment_from_lists(own, ranked, k=2)
    assert result.texts == 2  # texts without own terms are skipped
    assert result.hit_at_k == pytest.approx(0.5)  # text 1: 'cat' in top-2; text 2: no
    assert result.local == pytest.approx((1 / 3 + 0) / 2)  # top-3 of text 1 holds only 'cat'; top-1 of text 2 none
    assert result.global_rate == pytest.approx(1 / 4)  # matched {'cat'} of {'cat','sat','mat','dog'}


def test_pc1_on_real_embeddings(embeddings):
    matrix = np.load(shard_paths(embeddings, 0)[0])
    mean, directions, singular = principal_components(matrix, 2)
    assert np.linalg.norm(directions[0]) == pytest.approx(1.0, abs=1e-5)
    assert abs(float(directions[0] @ directions[1])) < 1e-4 and float(mean @ directions[0]) >= 0
    setting = pc1_setting(matrix, "0.5")
    u1 = np.array(setting["u1"], dtype=np.float32)
    moved = adjust_pc1(matrix, setting) - matrix
    assert np.allclose(moved, 0.5 * u1, atol=1e-5)  # the adjustment moves along u1 only
    removed = adjust_pc1(matrix, pc1_setting(matrix, "remove"))
    assert np.allclose(removed @ u1, 0, atol=1e-3)


def test_analysis_writes_metrics_and_plots(embeddings, isolated_outputs):
    from pipeline.analyze import main

    main(["--dataset", "scifact", "--limit", "5", "--n", "8", "--device", "cpu"])
    folder = isolated_outputs / "runs" / "scifact-limit5" / "analysis" / "smollm2"
    data = json.loads((folder / "alignment.json").read_text())
    assert {"mean pc1=off normalized", "prompteol pc1=remove raw"} <= set(data["alignment"])
    for name in ("variation.png", "contribution.png", "lambda.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG" and (folder / name).stat().st_size > 10_000
    assert "hit@10" in (folder / "report.md").read_text()
