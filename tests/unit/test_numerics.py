"""Pure numerics: alignment rates, PC1 tools, quantisation, bench statistics (no model, no JVM, no dataset)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from encoders import pc1
from encoders.aligned import MAX_WEIGHT, quantize
from encoders.alignment_rates import alignment_from_lists


def test_alignment_metrics_known_answers():
    own = [{"cat", "sat", "mat"}, {"dog"}, set()]
    ranked = [["the", "cat", "on", "mat", "sat"], ["puppy", "bark", "dog"], ["x"]]
    result = alignment_from_lists(own, ranked, k=2)
    assert result.texts == 2  # texts without own terms are skipped
    assert result.hit_at_k == pytest.approx(0.5)  # text 1: 'cat' in top-2; text 2: no
    assert result.local == pytest.approx((1 / 3 + 0) / 2)  # top-3 of text 1 holds only 'cat'; top-1 of text 2 none
    assert result.global_rate == pytest.approx(1 / 4)  # matched {'cat'} of {'cat','sat','mat','dog'}


def test_pc1_finds_the_planted_direction():
    rng = np.random.default_rng(0)
    planted = np.zeros(16, dtype=np.float32)
    planted[3] = 1.0
    matrix = (rng.normal(size=(400, 16)) * 0.1 + np.outer(rng.normal(size=400) * 5, planted) + 2 * planted).astype(np.float32)
    u1, coefficient = pc1.direction(matrix)
    assert abs(float(u1 @ planted)) > 0.99 and coefficient > 0  # sign fixed towards the mean
    assert np.allclose(pc1.adjust(matrix, pc1.shift(u1, 0.5)) - matrix, 0.5 * u1, atol=1e-5)
    assert np.allclose(pc1.adjust(matrix, pc1.removal(u1)) @ u1, 0, atol=1e-4)
    entry = pc1.estimate(matrix, "auto", lambda adjusted, rows: -abs(float((adjusted @ u1).mean()) - 1.0))
    # The score peaks where the sample's mean PC1 coordinate is 1.0: the choice must be the grid point nearest to it.
    rows = matrix[:pc1.AUTO_SAMPLE]
    wanted = min(pc1.LAMBDA_GRID, key=lambda t: abs(float((rows @ u1).mean()) + t * entry["mean_coefficient"] - 1.0))
    assert entry["auto"]["chosen_multiple_of_mean_coefficient"] == float(wanted)
    assert entry["lambda"] == float(wanted) * entry["mean_coefficient"]
    assert pc1.estimate(matrix, "off") is None


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.floats(0, 1e6, allow_nan=False), max_size=20),
       st.floats(1e-6, 1e3))
def test_quantisation_is_positive_bounded_and_monotone(weights, scale):
    quantized = quantize(weights, scale)
    assert all(isinstance(w, int) and 1 <= w <= MAX_WEIGHT for w in quantized.values())
    assert set(quantized) == {t for t, w in weights.items() if w > 0}
    ordered = sorted(quantized, key=lambda t: weights[t])
    assert all(quantized[a] <= quantized[b] for a, b in zip(ordered, ordered[1:]))


def test_bench_statistics():
    from studies.bench import latency_stats

    assert latency_stats([0.001, 0.002, 0.003, 0.004]) == {"p50_ms": 2.5, "p95_ms": 3.85, "mean_ms": 2.5}
