"""Foreground colour estimation: multi-level (vs pymatting) and blur fusion (vs a float64
reference), on composites with a known foreground."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from nuggy.pipeline.foreground import (
    estimate_foreground,
    estimate_foreground_blur,
    estimate_foreground_ml,
)

EVALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata" / "alphamatting-dev"


def composite(h: int = 96, w: int = 128, seed: int = 0):
    """Known F, B (smooth colour fields) and alpha (soft disc + thin strands); I = αF + (1−α)B.

    Returns the uint8 image, alpha (float32) and the true F and B (float64).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx, r = h / 2, w / 2, 0.3 * min(h, w)
    ang = np.arctan2(yy - cy, xx - cx)
    d = np.hypot(yy - cy, xx - cx) - r
    alpha = np.clip(0.5 - d / 3, 0, 1)
    strands = (np.sin(ang * 40) > 0.5) & (d > 0) & (d < 0.25 * r)
    alpha = np.maximum(alpha, strands * np.clip(1 - d / (0.25 * r), 0, 1) * 0.8)
    fg = np.stack([0.8 + 0.1 * np.sin(xx / 20), 0.3 + 0.1 * np.cos(yy / 15), 0.2 + 0 * xx], -1)
    bg = np.stack([0.1 + 0 * xx, 0.5 + 0.3 * np.sin(xx / 30 + yy / 40), 0.9 - 0.2 * np.cos(yy / 50)], -1)
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    img = np.clip(img * 255 + rng.normal(0, 0.5, img.shape) + 0.5, 0, 255).astype(np.uint8)
    return img, alpha.astype(np.float32), fg, bg


def fractional(alpha: np.ndarray) -> np.ndarray:
    return (alpha > 1e-3) & (alpha < 1 - 1e-3)


def fg_error(f_est: np.ndarray, f_true: np.ndarray, alpha: np.ndarray) -> float:
    """Alpha-weighted mean abs colour error over fractional pixels (what shows on a new bg)."""
    m = fractional(alpha)
    err = np.abs(f_est - f_true).mean(axis=-1) * alpha
    return float(err[m].sum() / alpha[m].sum())


def blur_fusion64(image: np.ndarray, alpha: np.ndarray, radii=(45, 3)) -> np.ndarray:
    """Forte & Pitié's blur fusion in float64 on the whole image, with the in-image mean."""

    def mean(x, r):
        k = (2 * r + 1, 2 * r + 1)
        s = cv2.boxFilter(x, -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
        n = cv2.boxFilter(np.ones(x.shape[:2]), -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
        return s / (n[..., None] if x.ndim == 3 else n)

    i = image / 255.0
    a = alpha.astype(np.float64)[..., None]
    f = b = i
    for r in radii:
        ma = mean(a[..., 0], r)[..., None]
        fbar = mean(f * a, r) / (ma + 1e-5)
        bbar = mean(b * (1 - a), r) / (1 - ma + 1e-5)
        f = np.clip(fbar + a * (i - a * fbar - (1 - a) * bbar), 0, 1)
        b = bbar
    return f


# ------------------------------------------------------------------------------ multi-level --


def test_ml_recovers_known_foreground_far_better_than_the_image():
    img, alpha, f_true, _ = composite()
    f = estimate_foreground_ml(img, alpha)
    assert f.dtype == np.float32 and f.shape == img.shape
    assert f.min() >= 0 and f.max() <= 1
    naive = fg_error(img / 255.0, f_true, alpha)
    ours = fg_error(f, f_true, alpha)
    assert naive > 0.05  # the composite really bleeds
    assert ours < 0.1 * naive


def test_ml_whole_image_band_equals_pymatting():
    """With a band covering the whole image our solver visits the same pixels in the same
    order on the same pyramid as pymatting's; only rounding differs (we accumulate the 2×2
    systems in float64, pymatting partly in float32: ~1e-7 per update, observed max 6e-7)."""
    pymatting = pytest.importorskip("pymatting")
    img, alpha, _, _ = composite(seed=1)
    ref = pymatting.estimate_foreground_ml(img / 255.0, alpha)
    ours = estimate_foreground_ml(img, alpha, margin=10**6)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


def test_ml_band_close_to_pymatting_inside_the_band():
    """The default band (4 px around fractional alpha) holds its outer ring at the coarser
    level's values instead of relaxing it; inside the fractional region this moves F by
    < 1e-3 on average (0.6e-4 .. 0.9e-3 on the alphamatting dev images)."""
    pymatting = pytest.importorskip("pymatting")
    img, alpha, _, _ = composite(192, 256, seed=2)
    ref = pymatting.estimate_foreground_ml(img / 255.0, alpha)
    ours = estimate_foreground_ml(img, alpha)
    m = fractional(alpha)
    assert np.abs(ours - ref)[m].mean() < 2e-3
    # opaque pixels away from the band keep the image colour
    far = cv2.erode((alpha >= 1).view(np.uint8), np.ones((11, 11), np.uint8)) > 0
    assert far.any()
    np.testing.assert_allclose(ours[far], img[far] / 255.0, atol=1e-7)


@pytest.mark.skipif(not EVALDATA.is_dir(), reason="shared evaldata not present")
@pytest.mark.parametrize("name", ["GT04.png", "GT19.png"])
def test_ml_matches_pymatting_on_real_mattes(name):
    pymatting = pytest.importorskip("pymatting")
    from PIL import Image

    img = np.asarray(Image.open(EVALDATA / "image" / name).convert("RGB"))
    alpha = np.asarray(Image.open(EVALDATA / "alpha" / name).convert("L")).astype(np.float32) / 255
    ref = pymatting.estimate_foreground_ml(img / 255.0, alpha)
    ours = estimate_foreground_ml(img, alpha)
    m = (alpha > 0) & (alpha < 1)
    assert np.abs(ours - ref)[m].mean() < 2e-3  # measured 5.7e-5 (GT04), 7.2e-4 (GT19)


def test_ml_background_and_options():
    img, alpha, _, b_true = composite()
    f, b = estimate_foreground_ml(img, alpha, return_background=True)
    assert b.dtype == np.float32 and b.shape == img.shape
    m = fractional(alpha) & (alpha > 0.5)  # where the image hides B most
    assert np.abs(b - b_true)[m].mean() < 0.5 * np.abs(img / 255.0 - b_true)[m].mean()
    # stronger regularisation still gives a valid, different answer
    f2 = estimate_foreground_ml(img, alpha, regularization=1e-2)
    assert f2.min() >= 0 and f2.max() <= 1 and not np.array_equal(f, f2)


def test_ml_float_image_and_no_fractional_alpha():
    img, alpha, _, _ = composite()
    f8 = estimate_foreground_ml(img, alpha)
    ff = estimate_foreground_ml(img / 255.0, alpha.astype(np.float64))
    np.testing.assert_allclose(ff, f8, atol=1e-6)
    hard = (alpha > 0.5).astype(np.float32)
    f = estimate_foreground_ml(img, hard)
    np.testing.assert_allclose(f, img / 255.0, atol=1e-7)


# ------------------------------------------------------------------------------ blur fusion --


def test_blur_exact_mode_matches_float64_reference():
    img, alpha, _, _ = composite(120, 160, seed=3)
    ref = blur_fusion64(img, alpha)
    ours = estimate_foreground_blur(img, alpha, downsample=1)
    m = fractional(alpha)
    # float32 box means (double accumulation) and float32 fusion: a few u (2^-24) relative;
    # the division by mean(α) + 1e-5 stays well conditioned where α is fractional
    np.testing.assert_allclose(ours[m], ref[m], rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours[~m], img[~m] / 255.0, atol=1e-7)


def test_blur_default_is_close_to_exact_and_beats_the_image():
    img, alpha, f_true, _ = composite(240, 320, seed=4)
    exact = estimate_foreground_blur(img, alpha, downsample=1)
    fast = estimate_foreground_blur(img, alpha)  # first round at 1/5 resolution
    m = fractional(alpha)
    assert np.abs(fast - exact)[m].mean() < 5e-3
    assert fg_error(fast, f_true, alpha) < 0.5 * fg_error(img / 255.0, f_true, alpha)


def test_estimate_foreground_dispatches():
    img, alpha, _, _ = composite()
    assert np.array_equal(estimate_foreground(img, alpha), estimate_foreground_ml(img, alpha))
    assert np.array_equal(
        estimate_foreground(img, alpha, method="ml", margin=2),
        estimate_foreground_ml(img, alpha, margin=2),
    )
    assert np.array_equal(
        estimate_foreground(img, alpha, method="blur"), estimate_foreground_blur(img, alpha)
    )
    with pytest.raises(ValueError):
        estimate_foreground(img, alpha, method="cf")
    with pytest.raises(ValueError):
        estimate_foreground(img, alpha, return_background=True)
    with pytest.raises(TypeError):
        estimate_foreground(img, alpha, method="blur", margin=3)  # an option of the other method


@pytest.mark.parametrize("fn", [estimate_foreground_ml, estimate_foreground_blur])
def test_inputs_not_modified(fn):
    img, alpha, _, _ = composite()
    img0, alpha0 = img.copy(), alpha.copy()
    fn(img, alpha)
    assert np.array_equal(img, img0) and np.array_equal(alpha, alpha0)


@pytest.mark.parametrize("fn", [estimate_foreground_ml, estimate_foreground_blur])
@pytest.mark.parametrize(
    "image, alpha",
    [
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.float32)),
        (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8), np.float32)),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), np.float32)),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)),
        (np.zeros((8, 8, 3), np.int32), np.zeros((8, 8), np.float32)),
        (np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 1.2, np.float32)),
        (np.zeros((8, 8, 3), np.uint8), np.full((8, 8), np.nan, np.float32)),
    ],
)
def test_rejects_bad_input(fn, image, alpha):
    with pytest.raises(ValueError):
        fn(image, alpha)


def test_rejects_bad_options():
    img, alpha, _, _ = composite(16, 16)
    with pytest.raises(ValueError):
        estimate_foreground_ml(img, alpha, margin=-1)
    with pytest.raises(ValueError):
        estimate_foreground_ml(img, alpha, regularization=0.0)
    with pytest.raises(ValueError):
        estimate_foreground_ml(img, alpha, gradient_weight=-1.0)
    with pytest.raises(ValueError):
        estimate_foreground_blur(img, alpha, radii=())
    with pytest.raises(ValueError):
        estimate_foreground_blur(img, alpha, radii=(0,))


# ------------------------------------------------- flat, saturated, single-colour images --


def degenerate_alphas(h: int, w: int) -> list[np.ndarray]:
    """A ramp, fractional everywhere (0.5), almost transparent (0.002) beside opaque, random."""
    xx = np.mgrid[0:h, 0:w][1]
    return [
        np.clip((xx - 0.25 * w) / (0.5 * w), 0, 1).astype(np.float32),
        np.full((h, w), 0.5, np.float32),
        np.where(xx > w / 2, 1.0, 0.002).astype(np.float32),
        np.random.default_rng(1).random((h, w)).astype(np.float32),
    ]


@pytest.mark.parametrize("colour", [(255, 255, 255), (0, 0, 0), (17, 200, 3)])
def test_single_colour_image(colour, no_float_warnings):
    """I = c everywhere: F = B = c satisfies I = αF + (1−α)B at no smoothness cost, so the
    multi-level estimate is c (float32 rounding). Blur fusion's 1e-5 regularisers scale F̄ by
    mean(α) / (mean(α) + 1e-5), at most 0.5 % off where α >= 0.002, once per round: F stays
    within 1 % of c (two rounds); its exact mode
    matches the float64 reference on fractional pixels (tolerance as in
    test_blur_exact_mode_matches_float64_reference)."""
    h, w = 60, 80
    img = np.empty((h, w, 3), np.uint8)
    img[:] = colour
    c = np.array(colour) / 255.0
    for alpha in degenerate_alphas(h, w):
        ml, bg = estimate_foreground_ml(img, alpha, return_background=True)
        np.testing.assert_allclose(ml, np.broadcast_to(c, ml.shape), rtol=0, atol=1e-6)
        np.testing.assert_allclose(bg, np.broadcast_to(c, bg.shape), rtol=0, atol=1e-6)
        for downsample in (None, 1):
            f = estimate_foreground_blur(img, alpha, downsample=downsample)
            assert np.isfinite(f).all() and f.min() >= 0 and f.max() <= 1
            assert np.all(np.abs(f - c) <= 0.01 * c + 1e-6)
        exact = estimate_foreground_blur(img, alpha, downsample=1)
        m = fractional(alpha)
        np.testing.assert_allclose(exact[m], blur_fusion64(img, alpha)[m], rtol=0, atol=1e-5)


def test_saturated_and_near_flat_images(saturated_photo, no_float_warnings):
    """Saturated white (255, 255, 255), near-grey strands, a 200 ± 1 patch: F (and B) finite
    and in [0, 1], F = the image away from fractional alpha."""
    img, _ = saturated_photo(60, 80, 2)
    rng = np.random.default_rng(3)
    near_flat = (200 + rng.integers(-1, 2, (60, 80, 1))).repeat(3, axis=2).astype(np.uint8)
    for image in (img, near_flat):
        for alpha in degenerate_alphas(60, 80):
            ml, bg = estimate_foreground_ml(image, alpha, return_background=True)
            for f in (ml, bg, estimate_foreground_blur(image, alpha)):
                assert f.dtype == np.float32 and np.isfinite(f).all()
                assert f.min() >= 0 and f.max() <= 1
            hard = (alpha <= 1e-3) | (alpha >= 1 - 1e-3)
            far = cv2.erode(hard.astype(np.uint8), np.ones((11, 11), np.uint8)) > 0
            np.testing.assert_allclose(ml[far], image[far] / 255.0, rtol=0, atol=1e-7)
