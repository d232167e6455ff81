"""Interior fill against a direct float64 distance-transform reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nuggy.pipeline.interior import fill_interior


def _reference(p: np.ndarray, depth: float) -> np.ndarray:
    d = depth * np.hypot(*p.shape)
    dist = ndimage.distance_transform_edt(p > 0.5)  # exact Euclidean, float64
    return np.maximum(p, np.clip((dist - d) / d, 0, 1))


def test_matches_exact_distance_reference():
    rng = np.random.default_rng(0)
    p = np.zeros((120, 160), np.float64)
    p[20:100, 30:130] = 0.7  # a grey subject
    p += rng.normal(0, 0.02, p.shape)
    p = np.clip(p, 0, 1).astype(np.float32)
    before = p.copy()
    out = fill_interior(p, depth=0.02)
    np.testing.assert_array_equal(p, before)  # input untouched
    ref = _reference(p.astype(np.float64), 0.02)
    # OpenCV's 5×5 mask distance differs from the exact EDT by < 2 %, i.e. < 0.02·dist;
    # over the ramp of width d ≈ 4 px that is at most ~0.15 in weight at the far end.
    assert np.abs(out - ref).max() < 0.15
    assert np.abs(out - ref).mean() < 0.01
    assert out.dtype == np.float32
    assert (out >= p).all()  # only raised
    assert (out[50:70, 70:90] == 1.0).all()  # deep inside → opaque
    np.testing.assert_array_equal(out[p <= 0.5], p[p <= 0.5])  # outside unchanged


def test_large_map_uses_coarse_grid_and_stays_close():
    p = np.zeros((1200, 1600), np.float32)
    p[200:1000, 300:1300] = 0.8
    out = fill_interior(p, depth=0.02)
    ref = _reference(p.astype(np.float64), 0.02)
    assert np.abs(out - ref).mean() < 0.005
    assert (out[p <= 0.5] == 0).all()


def test_edge_cases():
    empty = np.zeros((10, 10), np.float32)
    np.testing.assert_array_equal(fill_interior(empty), empty)
    with pytest.raises(ValueError, match="floating-point"):
        fill_interior(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="depth"):
        fill_interior(empty, depth=0)
