"""Pre-processing comes from the spec, never from the image's own statistics."""

from __future__ import annotations

import numpy as np
import pytest

from nuggy.registry import get_spec
from nuggy.runtime.preprocess import to_model_input, to_probability, upsample


def test_normalisation_is_fixed_not_per_image():
    spec = get_spec("u2netp")
    dark = np.full((50, 60, 3), 40, np.uint8)
    x = to_model_input(dark, spec)
    assert x.shape == (1, 3, 320, 320) and x.dtype == np.float32
    expected = (40 - np.asarray(spec.mean)) / np.asarray(spec.std)
    np.testing.assert_allclose(x[0, :, 0, 0], expected, rtol=1e-6)
    # a per-image max normalisation would have mapped 40 to 1.0: make sure it did not
    bright = np.full((50, 60, 3), 255, np.uint8)
    assert not np.allclose(to_model_input(bright, spec), x)


def test_isnet_normalisation():
    spec = get_spec("isnet")
    x = to_model_input(np.full((8, 8, 3), 128, np.uint8), spec)
    assert x.shape == (1, 3, 1024, 1024)
    np.testing.assert_allclose(x, 0.0, atol=1e-7)


def test_bad_input():
    with pytest.raises(ValueError, match="RGB uint8"):
        to_model_input(np.zeros((8, 8), np.uint8), get_spec("u2netp"))


def test_probability_and_upsample():
    y = np.array([[[[-20.0, 0.0, 20.0]]]], np.float32)
    p = to_probability(y, "sigmoid")
    np.testing.assert_allclose(p, [[1 / (1 + np.exp(20)), 0.5, 1 / (1 + np.exp(-20))]], rtol=1e-5)
    np.testing.assert_array_equal(to_probability(np.array([[-0.1, 1.2]]), "none"), [[0.0, 1.0]])
    up = upsample(np.array([[0.0, 1.0]], np.float32), (3, 5))
    assert up.shape == (3, 5) and up.min() >= 0 and up.max() <= 1
    assert up[0, 0] == 0.0 and up[0, -1] == 1.0
