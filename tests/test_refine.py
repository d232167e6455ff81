"""Guided filter and the edge-band refinement stage.

References: a direct float64 implementation of He et al.'s formulas (explicit windows, a 3×3
solve per pixel) and OpenCV's ``cv2.ximgproc.guidedFilter``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from nuggy.filters import MIN_EPS, _solve_colour, box_filter
from nuggy.filters import guided_filter as _guided_filter
from nuggy.pipeline.refine import default_refine_params, edge_weight, refine_alpha


def guided_filter(guide, src, **kw):
    """Our own implementation with He et al.'s border rule, which the float64 references of
    this file follow (the mirrored border and OpenCV's path: tests/test_filters.py)."""
    kw.setdefault("border", "inside")
    return _guided_filter(guide, src, **kw)


U32 = 2.0**-24  # float32 unit roundoff


# ---------------------------------------------------------------------------- references ----


def window_mean64(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the in-image part of every (2r+1)² window, one window at a time."""
    x = np.asarray(x, np.float64)
    h, w = x.shape[:2]
    out = np.empty_like(x)
    for y in range(h):
        for c in range(w):
            out[y, c] = x[max(0, y - r) : y + r + 1, max(0, c - r) : c + r + 1].mean(axis=(0, 1))
    return out


def integral_mean64(x: np.ndarray, r: int) -> np.ndarray:
    """:func:`window_mean64` vectorised with float64 integral images (for larger images)."""
    x = np.asarray(x, np.float64)
    h, w = x.shape[:2]
    ii = np.zeros((h + 1, w + 1) + x.shape[2:])
    ii[1:, 1:] = x.cumsum(axis=0).cumsum(axis=1)
    y0, y1 = np.clip(np.arange(h) - r, 0, h), np.clip(np.arange(h) + r + 1, 0, h)
    x0, x1 = np.clip(np.arange(w) - r, 0, w), np.clip(np.arange(w) + r + 1, 0, w)
    sums = ii[y1][:, x1] - ii[y0][:, x1] - ii[y1][:, x0] + ii[y0][:, x0]
    n = (y1 - y0)[:, None] * (x1 - x0)[None, :]
    return sums / (n if x.ndim == 2 else n[..., None])


def reflect_mean64(x: np.ndarray, r: int) -> np.ndarray:
    """Window mean in float64 with the image mirrored beyond its border (edge pixel repeated:
    NumPy's ``symmetric`` padding, OpenCV's ``BORDER_REFLECT``)."""
    x = np.asarray(x, np.float64)
    pad = [(r, r), (r, r)] + [(0, 0)] * (x.ndim - 2)
    xp = np.pad(x, pad, mode="symmetric") if r < min(x.shape[:2]) else np.pad(x, pad, "symmetric")
    return integral_mean64(xp, r)[r : -r or None, r : -r or None]


def guided_coefficients64(guide, src, r, eps, mean=window_mean64):
    """Window-averaged (a, b) of He et al. (TPAMI 2013, Alg. 1 / eq. 14) in float64, with an
    explicit per-pixel solve (LAPACK, partial pivoting): H×W×C and H×W."""
    g = np.asarray(guide, np.float64)
    if g.ndim == 2:
        g = g[..., None]
    p = np.asarray(src, np.float64)
    c = g.shape[2]
    mean_i = mean(g, r)
    mean_p = mean(p, r)
    mean_ip = mean(g * p[..., None], r)
    mean_ii = mean((g[..., :, None] * g[..., None, :]).reshape(*p.shape, c * c), r)
    sigma = mean_ii.reshape(*p.shape, c, c) - mean_i[..., :, None] * mean_i[..., None, :]
    cov = mean_ip - mean_i * mean_p[..., None]
    a = np.linalg.solve(sigma + eps * np.eye(c), cov[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(axis=-1)
    return mean(a, r), mean(b, r)


def guided_filter64(guide, src, r: int, eps: float, mean=window_mean64) -> np.ndarray:
    """He et al.'s guided filter in float64 (see :func:`guided_coefficients64`)."""
    g = np.asarray(guide, np.float64)
    if g.ndim == 2:
        g = g[..., None]
    a, b = guided_coefficients64(g, src, r, eps, mean)
    return (a * g).sum(axis=-1) + b


def fast_guided_filter64(guide8: np.ndarray, src: np.ndarray, r: int, eps: float, s: int):
    """He & Sun's fast guided filter in float64: coefficients fitted on the ``s``-times
    area-reduced pair (the uint8 guide reduced as uint8, like the code under test), upsampled
    bilinearly, applied to the full-resolution guide."""
    h, w = src.shape
    size = (-(-w // s), -(-h // s))
    g_small = cv2.resize(guide8, size, interpolation=cv2.INTER_AREA) / 255.0
    p_small = cv2.resize(src.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    a, b = guided_coefficients64(g_small, p_small, max(1, round(r / s)), eps, integral_mean64)
    a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
    b = cv2.resize(b, (w, h), interpolation=cv2.INTER_LINEAR)
    g = (guide8 / 255.0).reshape(h, w, -1)
    return (a * g).sum(axis=-1) + b


def structured(h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Colour guide with steps, ramps and a disc; source = blurred disc mask + noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    disc = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (0.3 * min(h, w)) ** 2).astype(np.float64)
    guide = np.stack([0.2 + 0.6 * disc, (xx / w) * 0.8 + 0.1 * (yy > h / 3), 0.5 + 0.3 * np.sin(xx / 3)], -1)
    guide += rng.normal(0, 0.02, guide.shape)
    src = cv2.GaussianBlur(disc, (0, 0), 2.0) + rng.normal(0, 0.05, disc.shape)
    return np.clip(guide, 0, 1), src


def gf_tolerance(eps: float) -> float:
    """float32 error bound used below.

    The filter runs in float32 on mean-centred data, so the window moments carry absolute
    errors of a few ``u`` (u = 2^-24). The solve ``(Σ + εI)⁻¹ cov`` amplifies them by at most
    the condition number of ``Σ + εI``, ≤ 1 + 3·0.25/ε for three channels in [0, 1]; the final
    averages of a and b do not amplify further. We allow ``u · κ_max`` (observed errors are
    50–300× below it; a wrong formula or border rule gives errors of 1e-2 and more).
    """
    return U32 * (1.0 + 3 * 0.25 / eps) * 4


# ------------------------------------------------------------------------------ box filter ---


@pytest.mark.parametrize("r", [1, 2, 5, 40])
@pytest.mark.parametrize("shape", [(17, 23), (17, 23, 3), (5, 31, 1)])
def test_box_filter_matches_window_mean(r, shape):
    x = np.random.default_rng(r).random(shape).astype(np.float32)
    out = box_filter(x, r)
    assert out.shape == x.shape and out.dtype == np.float32
    # float32 output of double-accumulated sums: relative rounding ~u
    np.testing.assert_allclose(out, window_mean64(x, r), rtol=0, atol=8 * U32)


def test_box_filter_dtypes_and_identity():
    x = np.arange(30, dtype=np.uint8).reshape(5, 6)
    out = box_filter(x, 1)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, window_mean64(x, 1), atol=1e-12)
    x64 = np.random.default_rng(0).random((6, 7))
    assert box_filter(x64, 2).dtype == np.float64
    np.testing.assert_allclose(box_filter(x64, 2), window_mean64(x64, 2), atol=1e-12)
    same = box_filter(x64, 0)
    assert same is not x64 and np.array_equal(same, x64)
    # the mean of a constant is that constant everywhere, borders included
    np.testing.assert_allclose(box_filter(np.full((9, 4), 0.3, np.float32), 3), 0.3, atol=1e-6)


def test_box_filter_rejects_bad_input():
    with pytest.raises(ValueError):
        box_filter(np.zeros((3, 3)), -1)
    with pytest.raises(ValueError):
        box_filter(np.zeros((3, 3)), 1.5)
    with pytest.raises(ValueError):
        box_filter(np.zeros(5), 1)
    with pytest.raises(ValueError):
        box_filter(np.zeros((3, 3), complex), 1)


# --------------------------------------------------------------------------- guided filter ---


@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("r", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("data", ["random", "structured"])
def test_guided_filter_matches_float64_formulas(colour, r, data):
    rng = np.random.default_rng(100 * r + colour)
    h, w = 23, 31
    if data == "random":
        guide, src = rng.random((h, w, 3)), rng.random((h, w))
    else:
        guide, src = structured(h, w, rng)
    if not colour:
        guide = guide.mean(axis=2)
    for eps in (1e-3, 1e-2):
        g32, s32 = guide.astype(np.float32), src.astype(np.float32)
        q = guided_filter(g32, s32, radius=r, eps=eps)
        assert q.dtype == np.float32 and q.shape == (h, w)
        ref = guided_filter64(g32, s32, r, eps)  # same (float32-rounded) inputs
        np.testing.assert_allclose(q, ref, rtol=0, atol=gf_tolerance(eps))


def test_guided_filter_uint8_guide_is_scaled_to_unit_range():
    rng = np.random.default_rng(3)
    g8 = rng.integers(0, 256, (20, 25, 3), dtype=np.uint8)
    src = rng.random((20, 25)).astype(np.float32)
    q8 = guided_filter(g8, src, radius=2, eps=1e-2)
    ref = guided_filter64(g8 / 255.0, src, 2, 1e-2)
    np.testing.assert_allclose(q8, ref, rtol=0, atol=gf_tolerance(1e-2))
    # a grey guide given as H×W×1 is the same as H×W
    g1 = g8[..., :1]
    np.testing.assert_array_equal(
        guided_filter(g1, src, radius=2, eps=1e-2),
        guided_filter(g8[..., 0], src, radius=2, eps=1e-2),
    )


@pytest.mark.parametrize("colour", [False, True])
def test_guided_filter_matches_opencv_away_from_borders(colour):
    """OpenCV's guidedFilter takes eps in the guide's own units (× 255² for uint8 guides) and
    reflects at the border, so only pixels at least 2r from the border are comparable."""
    rng = np.random.default_rng(7)
    guide, src = structured(48, 64, rng)
    g8 = np.clip(guide * 255 + 0.5, 0, 255).astype(np.uint8)
    if not colour:
        g8 = np.ascontiguousarray(g8[..., 1])
    src = src.astype(np.float32)
    r, eps = 4, 1e-3
    ours = guided_filter(g8, src, radius=r, eps=eps)
    cv = cv2.ximgproc.guidedFilter(g8, src, r, eps * 255.0**2, -1)
    inner = (slice(2 * r, -2 * r), slice(2 * r, -2 * r))
    # two float32 implementations of the same formulas: both within gf_tolerance of exact
    np.testing.assert_allclose(ours[inner], cv[inner], rtol=0, atol=2 * gf_tolerance(eps))
    # ... and the border rule really differs (otherwise this test would not need `inner`)
    assert np.abs(ours - cv).max() > 1e-3


def test_fast_guided_filter_close_to_exact_on_smooth_data():
    h, w = 160, 200
    yy, xx = np.mgrid[0:h, 0:w] / 40.0
    guide = np.stack([0.5 + 0.4 * np.sin(xx), 0.5 + 0.4 * np.cos(yy), 0.5 + 0.2 * np.sin(xx + yy)], -1)
    src = 0.5 + 0.4 * np.sin(0.7 * xx + 0.3 * yy)
    g, s = guide.astype(np.float32), src.astype(np.float32)
    exact = guided_filter(g, s, radius=8, eps=1e-3)
    for sub in (2, 4):
        fast = guided_filter(g, s, radius=8, eps=1e-3, subsample=sub)
        assert fast.dtype == np.float32 and fast.shape == (h, w)
        # smooth data: the coefficients vary slowly, bilinear upsampling of them loses little
        inner = (slice(16, -16), slice(16, -16))
        assert np.abs(fast - exact)[inner].max() < 5e-3
        assert np.abs(fast - exact).mean() < 2e-3


def test_guided_filter_preserves_edges_and_smooths_flat_regions():
    rng = np.random.default_rng(0)
    guide = np.zeros((40, 40), np.float32)
    guide[:, 20:] = 1.0
    src = guide + rng.normal(0, 0.1, guide.shape).astype(np.float32)
    q = guided_filter(guide, src, radius=4, eps=1e-4)
    # the step stays a step; the noise in the flat halves is averaged down
    assert q[:, :18].mean() < 0.05 and q[:, 22:].mean() > 0.95
    assert q[:, 5:15].std() < 0.5 * src[:, 5:15].std()


def test_guided_filter_does_not_modify_inputs():
    rng = np.random.default_rng(1)
    g, s = rng.random((12, 13, 3)).astype(np.float32), rng.random((12, 13)).astype(np.float32)
    g0, s0 = g.copy(), s.copy()
    guided_filter(g, s, radius=2, eps=1e-3)
    guided_filter(g, s, radius=2, eps=1e-3, subsample=2)
    assert np.array_equal(g, g0) and np.array_equal(s, s0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(guide=np.zeros((5, 5, 2)), src=np.zeros((5, 5))),
        dict(guide=np.zeros((5, 6)), src=np.zeros((5, 5))),
        dict(guide=np.zeros((5, 5)), src=np.zeros((5, 5, 1))),
        dict(guide=np.zeros((5, 5)), src=np.zeros((5, 5), np.uint8)),
        dict(guide=np.zeros((5, 5), np.int16), src=np.zeros((5, 5))),
        dict(guide=np.zeros((5, 5)), src=np.zeros((5, 5)), radius=0),
        dict(guide=np.zeros((5, 5)), src=np.zeros((5, 5)), eps=0.0),
        dict(guide=np.zeros((5, 5)), src=np.zeros((5, 5)), eps=float("nan")),
        dict(guide=np.zeros((5, 5)), src=np.zeros((5, 5)), eps=MIN_EPS / 10),
        dict(guide=np.zeros((5, 5)), src=np.zeros((5, 5)), subsample=0),
    ],
)
def test_guided_filter_rejects_bad_input(kwargs):
    args = dict(radius=1, eps=1e-3) | kwargs
    with pytest.raises(ValueError):
        guided_filter(args.pop("guide"), args.pop("src"), **args)


# ---------------------------------------------------------------------------- refine_alpha ---


def blurry_scene(h: int = 240, w: int = 320, seed: int = 0):
    """Photo of a disc with a wavy edge, its true alpha, and a low-res-looking probability."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = np.arctan2(yy - h / 2, xx - w / 2)
    d = np.sqrt((yy - h / 2) ** 2 + (xx - w / 2) ** 2) - 0.3 * min(h, w) + 4 * np.sin(ang * 9)
    alpha = np.clip(0.5 - d, 0, 1).astype(np.float32)
    fg = np.array([0.85, 0.35, 0.2], np.float32)
    bg = np.stack([0.1 + 0.2 * xx / w, 0.6 + 0 * xx, 0.8 - 0.3 * yy / h], -1)
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    img = np.clip(img * 255 + rng.normal(0, 2, img.shape) + 0.5, 0, 255).astype(np.uint8)
    small = cv2.resize(alpha, (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    prob = np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)
    return img, alpha, prob.astype(np.float32)


def test_refine_alpha_changes_only_the_band_and_improves_the_edge():
    img, alpha, prob = blurry_scene()  # prob: alpha at 1/8 resolution, upsampled (f = 8)
    prob_in = prob.copy()
    img_in = img.copy()
    for radius, band in ((24, 2), (16, 8)):
        out = refine_alpha(img, prob, radius=radius, band=band)
        assert out.dtype == np.float32 and out.shape == prob.shape
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert np.array_equal(prob, prob_in) and np.array_equal(img, img_in)
        w = edge_weight(prob, band)
        outside = w == 0
        assert outside.mean() > 0.5  # the band is a band, not the whole image
        assert np.array_equal(out[outside], prob[outside])  # bit-identical
        # deep interior and far background are outside, whatever the photo's texture
        assert out[120, 160] == prob[120, 160] and out[5, 5] == prob[5, 5]
        # the photo-guided edge is closer to the truth than the blurry probability
        # (SAD 1444 -> 682 and 1098 here; the filter is deterministic)
        assert np.abs(out - alpha).sum() < 0.8 * np.abs(prob - alpha).sum()


def test_refine_alpha_band_blends_smoothly():
    img, _, prob = blurry_scene()
    w = edge_weight(prob, 12)
    assert w.dtype == np.float32 and w.min() >= 0 and w.max() <= 1
    assert (w == 1).any() and ((w > 0) & (w < 1)).any()
    # no jumps: smoothstep of a distance (Lipschitz 1) over a ramp of band/2 = 6 pixels
    # changes by at most 1.5/6 per pixel
    assert np.abs(np.diff(w, axis=0)).max() <= 1.5 / 6 + 1e-6
    assert np.abs(np.diff(w, axis=1)).max() <= 1.5 / 6 + 1e-6
    # uncertain pixels far from the 0.5 contour are in the band too
    p = np.zeros((60, 60), np.float32)
    p[30:, :] = 1.0
    p[5:10, 5:10] = 0.3
    wu = edge_weight(p, 4)
    assert (wu[5:10, 5:10] == 1).all() and wu[20, 40] == 0 and wu[30, 30] == 1
    # ramp over distances 2..4 (chamfer steps of 0.955 px): rows 11 / 12-13 / 14 below the core
    assert wu[11, 7] == 1 and 0 < wu[12, 7] < 1 and 0 < wu[13, 7] < 1 and wu[14, 7] == 0
    assert not edge_weight(np.zeros((9, 9), np.float32), 4).any()


def test_refine_alpha_defaults_and_fast_path():
    assert default_refine_params(320, 320) == (4, 1)
    r, band = default_refine_params(3000, 4000)  # f = 10.8
    assert r == 43 and band == 5
    img, _, prob = blurry_scene(480, 640, seed=2)
    auto = refine_alpha(img, prob)
    exact = refine_alpha(img, prob, subsample=1)
    fast = refine_alpha(img, prob, subsample=2)
    assert np.array_equal(auto, exact)  # 0.3 MP: no subsampling by default
    assert np.abs(fast - exact).max() < 0.1 and np.abs(fast - exact).mean() < 1e-3


def test_refine_alpha_without_edge_returns_prob():
    img = np.full((30, 40, 3), 128, np.uint8)
    prob = np.zeros((30, 40), np.float32)
    out = refine_alpha(img, prob)
    assert out is not prob and np.array_equal(out, prob)
    prob64 = np.ones((30, 40))
    assert refine_alpha(img, prob64).dtype == np.float32


@pytest.mark.parametrize(
    "image, prob, kwargs",
    [
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.float32), {}),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), np.float32), {}),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8), {}),
        (np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 1.5, np.float32), {}),
        (np.zeros((8, 8, 3), np.uint8), np.full((8, 8), np.nan, np.float32), {}),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32), {"radius": 0}),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32), {"band": -1}),
    ],
)
def test_refine_alpha_rejects_bad_input(image, prob, kwargs):
    with pytest.raises(ValueError):
        refine_alpha(image, prob, **kwargs)


# ------------------------------------------------------ degenerate windows (issue 19) ---

#: Every eps the code passes to guided_filter: refine_alpha's default (1e-3), the presets'
#: refine_eps and guided_alpha's (1e-4), guided_upsample's (1e-5: matting on a reduced grid and
#: FBA), and two far smaller ones.
EPS_USED = (1e-3, 1e-4, 1e-5, 1e-6, 1e-8)


@pytest.mark.parametrize("eps", EPS_USED)
@pytest.mark.parametrize("radius, subsample", [(2, 1), (3, 1), (8, 1), (3, 2), (8, 3)])
def test_guided_filter_is_finite_and_accurate_on_saturated_grey_and_flat_windows(
    eps, radius, subsample, saturated_photo, no_float_warnings
):
    """Saturated white, near-grey strands (an almost rank-1 colour covariance) and a near-flat
    patch: the closed-form 3×3 inverse gave errors of 0.3–30 at eps = 1e-5 and NaN below.

    Tolerance: gf_tolerance (u × the largest condition number of Σ + εI), the same worst-case
    bound as for generic data above; observed errors are 10–1000× below it (1e-8, where the
    bound says nothing, is the float32 limit of the moments: only finiteness is asserted there
    in effect).
    """
    for seed in (0, 1):
        img, prob = saturated_photo(120, 160, seed)
        q = guided_filter(img, prob, radius=radius, eps=eps, subsample=subsample)
        assert q.dtype == np.float32 and np.isfinite(q).all()
        if subsample == 1:
            ref = guided_filter64(img / 255.0, prob, radius, eps, mean=integral_mean64)
        else:
            ref = fast_guided_filter64(img, prob, radius, eps, subsample)
        np.testing.assert_allclose(q, ref, rtol=0, atol=gf_tolerance(eps))


@pytest.mark.parametrize("eps", EPS_USED)
def test_colour_guide_with_equal_channels_is_the_grey_filter(eps, no_float_warnings):
    """R = G = B = L gives Σ = var(L)·11ᵀ and cov = cov(L, p)·1, so a = cov/(3 var + ε)·1: the
    colour filter equals the grey filter of L with ε/3 (exactly; singular Σ for every window).

    Tolerance: for the rank-1 Σ the float32 errors do not grow with 1/ε (the solve is exact in
    the guide's only direction of variation): 1e-5 is ~20× the errors observed (≤ 6e-7)."""
    rng = np.random.default_rng(5)
    lum = np.full((90, 110), 255, np.uint8)  # saturated white ...
    lum[:, 40:] = rng.integers(20, 200, (90, 70))  # ... beside grey texture
    lum[60:, :30] = 120 + rng.integers(-1, 2, (30, 30))  # and a near-flat patch
    src = np.clip(rng.random(lum.shape) * 0.3 + (np.arange(110) > 55) * 0.7, 0, 1)
    src = src.astype(np.float32)
    img = np.repeat(lum[..., None], 3, axis=2)
    for r in (2, 3, 8):
        q = guided_filter(img, src, radius=r, eps=eps)
        ref = guided_filter64(lum / 255.0, src, r, eps / 3, mean=integral_mean64)
        np.testing.assert_allclose(q, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("colour", [(255, 255, 255), (0, 0, 0), (17, 200, 3)])
@pytest.mark.parametrize("eps", EPS_USED)
def test_single_colour_guide(colour, eps, no_float_warnings):
    """A constant guide explains nothing (cov = 0, a = 0): the output is the source smoothed
    twice by the box filter, whose float64 value is the reference (float32 rounding: ~u)."""
    rng = np.random.default_rng(2)
    img = np.empty((40, 50, 3), np.uint8)
    img[:] = colour
    src = rng.random((40, 50)).astype(np.float32)
    for r in (1, 4):
        ref = integral_mean64(integral_mean64(src, r), r)
        for guide in (img, img[..., 1]):
            q = guided_filter(guide, src, radius=r, eps=eps)
            np.testing.assert_allclose(q, ref, rtol=0, atol=16 * U32)
        q = guided_filter(img, src, radius=r, eps=eps, subsample=2)
        assert np.isfinite(q).all()
        # a constant source stays that constant, whatever the guide
        const = guided_filter(img, np.full((40, 50), 0.3, np.float32), radius=r, eps=eps)
        np.testing.assert_allclose(const, 0.3, rtol=0, atol=8 * U32)
    # the box filter of a single-colour image is that colour, borders included
    np.testing.assert_allclose(box_filter(img / 255.0, 3), img / 255.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(box_filter(img.astype(np.float32), 3), img, rtol=1e-6)


def test_solve_colour_falls_back_to_the_grey_solution():
    """Moments that no real window has (an indefinite "covariance", as rounding can produce
    beside eps ~1e-8) drive the LDLᵀ solve far past the exact bound ε|a|² <= var(p): that
    window gets the grey-guide (L = mean of R, G, B) solution; the sound window next to it is
    solved as a 3×3 system."""
    eps = 1e-6
    m = np.zeros((1, 2, 13), np.float32)
    m[..., 4:7] = (1e-3, 2e-3, -5e-4)  # E[I·p] with E[I] = E[p] = 0: cov(I, p)
    m[0, 0, 7:13] = (0.0, 0.5, 0.0, 0.0, 0.0, 0.0)  # rr rg rb gg gb bb: var 0, cov(r, g) 0.5
    m[0, 1, 7:13] = (0.04, 0.01, 0.0, 0.03, 0.0, 0.02)
    ab = _solve_colour(m, eps, 1.0)
    assert ab.dtype == np.float32 and np.isfinite(ab).all()
    var_l = (2 * 0.5) / 9  # var((r + g + b) / 3)
    a_l = (1e-3 + 2e-3 - 5e-4) / 3 / (var_l + eps)
    np.testing.assert_allclose(ab[0, 0], [a_l / 3] * 3 + [0.0], rtol=1e-5)
    sigma = np.array([[0.04, 0.01, 0], [0.01, 0.03, 0], [0, 0, 0.02]]) + eps * np.eye(3)
    a = np.linalg.solve(sigma, [1e-3, 2e-3, -5e-4])
    np.testing.assert_allclose(ab[0, 1, :3], a, rtol=1e-5)


@pytest.mark.parametrize("eps", EPS_USED)
def test_refine_alpha_on_a_saturated_photo(eps, saturated_photo, no_float_warnings):
    """refine_alpha = clip(p + w·(q − p)) with q the guided filter of its band's crop; the
    filter is exact-path equivariant to the crop's centring and border (the band lies 2r + 2s
    + 2 inside the crop), so the full-image float64 filter, blended alike, is the reference
    (the blend weight is <= 1 and clipping is 1-Lipschitz: the same tolerance)."""
    img, prob = saturated_photo(120, 160, 0)
    r, band = 3, 6
    out = refine_alpha(img, prob, radius=r, eps=eps, band=band, subsample=1)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    w = edge_weight(prob, band)
    # the stage filters with the mirrored border (OpenCV's path)
    q64 = guided_filter64(img / 255.0, prob, r, eps, mean=reflect_mean64)
    ref = np.clip(prob + w * (q64 - prob), 0.0, 1.0)
    np.testing.assert_allclose(out, ref, rtol=0, atol=gf_tolerance(eps))
    fast = refine_alpha(img, prob, radius=8, eps=eps, band=band, subsample=3)
    assert np.isfinite(fast).all() and fast.min() >= 0.0 and fast.max() <= 1.0
