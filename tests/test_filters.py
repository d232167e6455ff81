"""nuggy.filters.guided_filter with the mirrored border: OpenCV's path and ours, against a float64
reference (He et al.'s algorithm with NumPy's ``symmetric`` padding), on a real photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_refine import gf_tolerance, guided_filter64, reflect_mean64

from nuggy.filters import CV_MIN_EPS, guided_filter

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def photo():
    """examples/chelsea.jpg at 96×144 and a soft map of its subject (a blurred threshold)."""
    img = cv2.cvtColor(cv2.imread(str(EXAMPLES / "chelsea.jpg")), cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, (144, 96), interpolation=cv2.INTER_AREA)
    p = cv2.GaussianBlur((img[..., 0] > 120).astype(np.float32), (0, 0), 3)
    return img, p


@pytest.mark.parametrize("eps", [1e-2, 1e-3, CV_MIN_EPS, 1e-5, 1e-6])
@pytest.mark.parametrize("grey", [False, True])
def test_mirrored_border_matches_float64(photo, eps, grey):
    """eps >= CV_MIN_EPS runs OpenCV's filter, smaller ones our LDLᵀ solve on the padded image;
    both within the float32 budget of tests/test_refine.py's gf_tolerance (OpenCV does not centre
    its moments: the observed error is still well inside)."""
    img, p = photo
    guide = img[..., 1] if grey else img
    before = (guide.copy(), p.copy())
    r = 4
    q = guided_filter(guide, p, radius=r, eps=eps)
    assert q.dtype == np.float32 and q.shape == p.shape and np.isfinite(q).all()
    assert np.array_equal(guide, before[0]) and np.array_equal(p, before[1])  # inputs untouched
    ref = guided_filter64(guide / 255.0, p, r, eps, mean=reflect_mean64)
    np.testing.assert_allclose(q, ref, rtol=0, atol=gf_tolerance(eps))


def test_border_rules_differ_only_near_the_border(photo):
    img, p = photo
    r = 5
    a = guided_filter(img, p, radius=r, eps=1e-3, border="reflect")
    b = guided_filter(img, p, radius=r, eps=1e-3, border="inside")
    inner = (slice(2 * r, -2 * r), slice(2 * r, -2 * r))
    np.testing.assert_allclose(a[inner], b[inner], rtol=0, atol=gf_tolerance(1e-3))
    assert np.abs(a - b).max() > 10 * gf_tolerance(1e-3)  # the rules really differ at the border
    with pytest.raises(ValueError, match="border"):
        guided_filter(img, p, radius=r, eps=1e-3, border="wrap")


def test_float_guide_is_accepted_on_opencvs_path(photo):
    """A float guide in [0, 1] gives the uint8 guide's result (OpenCV runs on 0..255 units)."""
    img, p = photo
    q8 = guided_filter(img, p, radius=3, eps=1e-3)
    qf = guided_filter(img / 255.0, p, radius=3, eps=1e-3)
    np.testing.assert_allclose(qf, q8, rtol=0, atol=1e-5)


def test_fast_variant_with_mirrored_border_is_close_to_exact(photo):
    img, p = photo
    exact = guided_filter(img, p, radius=8, eps=1e-3)
    fast = guided_filter(img, p, radius=8, eps=1e-3, subsample=2)
    assert np.abs(fast - exact).mean() < 0.01
