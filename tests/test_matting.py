"""Band-restricted matting solvers, the matte stage, and their CLI."""

from __future__ import annotations

import numpy as np
import pytest

from nuggy.matting import SOLVERS, get_solver, solve

SOLVER_NAMES = list(SOLVERS)


def composite(h: int = 120, w: int = 160) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic photo with known alpha: smooth F and B colour fields, a wavy disc with a
    6-px soft edge. Returns (image uint8, trimap uint8, alpha float64)."""
    import cv2

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    f = np.stack([0.8 - 0.3 * yy / h, 0.3 + 0.4 * xx / w, 0.2 + 0.1 * np.sin(xx / 9)], -1)
    b = np.stack([0.1 + 0.2 * xx / w, 0.2 + 0.1 * np.cos(yy / 11), 0.7 - 0.3 * yy / h], -1)
    r = np.hypot(yy - h / 2, xx - w / 2)
    radius = 0.3 * min(h, w) + 4 * np.sin(np.arctan2(yy - h / 2, xx - w / 2) * 7)
    alpha = np.clip((radius - r) / 6 + 0.5, 0, 1)
    image = np.clip(np.round((alpha[..., None] * f + (1 - alpha[..., None]) * b) * 255), 0, 255)
    frac = ((alpha > 0) & (alpha < 1)).astype(np.uint8)
    unknown = cv2.dilate(frac, np.ones((7, 7), np.uint8)) > 0
    trimap = np.where(alpha >= 0.5, 255, 0).astype(np.uint8)
    trimap[unknown] = 128
    return image.astype(np.uint8), trimap, alpha


@pytest.fixture(scope="module")
def synthetic():
    return composite()


@pytest.fixture
def one_numba_thread():
    """pymatting's parallel numba kernels crawl on an oversubscribed CI box: use one thread."""
    import numba

    old = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(old)


# Mean absolute alpha error in the unknown band, per solver, on the synthetic composite.
# The composite satisfies the colour-line model exactly (F and B are smooth, alpha is a ramp),
# so the Laplacian solvers recover it up to 8-bit quantisation and the smoothness prior:
# measured 0.006 (cf), 0.028 (knn), 0.019 (lkm), 0.010 (guided); the bounds leave ~2× headroom.
# The trimap's own guess (0.5 everywhere unknown) is off by 0.40 on average.
BOUNDS = {"cf": 0.015, "knn": 0.06, "lkm": 0.04, "guided": 0.025}


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_solver_recovers_known_alpha(name, synthetic, one_numba_thread):
    image, trimap, gt = synthetic
    unknown = trimap == 128
    image0, trimap0 = image.copy(), trimap.copy()
    alpha = solve(name, image, trimap)
    # inputs untouched
    assert np.array_equal(image, image0) and np.array_equal(trimap, trimap0)
    assert alpha.dtype == np.float32 and alpha.shape == trimap.shape
    assert alpha.min() >= 0 and alpha.max() <= 1
    # known regions exactly 0 / 1
    assert np.all(alpha[trimap == 255] == 1.0) and np.all(alpha[trimap == 0] == 0.0)
    err = np.abs(alpha - gt)[unknown].mean()
    guess = np.abs(0.5 - gt)[unknown].mean()
    assert err < BOUNDS[name], f"{name}: mean error {err:.4f}"
    assert err < guess / 5


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_tiny_image(name, one_numba_thread):
    """Crops smaller than a solver's window (lkm: 4r + 1 = 41 px) still solve."""
    image, trimap, gt = composite(24, 30)
    alpha = solve(name, image, trimap)
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
    unknown = trimap == 128
    assert np.abs(alpha - gt)[unknown].mean() < np.abs(0.5 - gt)[unknown].mean()


def test_no_unknown_returns_known_alpha(synthetic):
    image, trimap, _ = synthetic
    t = np.where(trimap == 255, 255, 0).astype(np.uint8)
    for name in ("cf", "guided"):
        a = solve(name, image, t)
        assert np.array_equal(a, (t == 255).astype(np.float32))


def test_band_equals_full_image_closed_form(synthetic):
    """Crops with 2r+1 known pixels give the full image's linear system: same answer."""
    from pymatting import estimate_alpha_cf

    image, trimap, _ = synthetic
    t = trimap.copy()
    t[5:15, 5:15] = 128  # a second, separate unknown component (all-background crop)
    t[5:15, 140:150] = 128
    t[8:12, 143:147] = 255  # a third with both labels
    full = estimate_alpha_cf(image / 255.0, t / 255.0)
    band = solve("cf", image, t)
    unknown = t == 128
    # CG stops at a relative residual of 1e-7 and we store float32: agreement to ~1e-5
    assert np.abs(band - full)[unknown].max() < 1e-4


def test_tiling_and_reduced_grid_stay_close(synthetic):
    image, trimap, gt = synthetic
    unknown = trimap == 128
    whole = solve("cf", image, trimap)
    tiled = solve("cf", image, trimap, max_tile_pixels=48 * 48, overlap=16)
    reduced = solve("cf", image, trimap, max_unknown=unknown.sum() // 4)
    for a in (tiled, reduced):
        assert np.all(a[trimap == 255] == 1.0) and np.all(a[trimap == 0] == 0.0)
    # tiles see 16 px of context: the blend seams cost little
    assert np.abs(tiled - whole)[unknown].mean() < 0.01
    # half resolution + guided upsampling: still far better than the trimap's guess
    assert np.abs(reduced - gt)[unknown].mean() < 0.05


def test_solver_errors(synthetic):
    image, trimap, _ = synthetic
    with pytest.raises(ValueError, match="unknown matting solver"):
        get_solver("nope")
    with pytest.raises(ValueError, match="alphamat"):
        get_solver("infoflow")
    with pytest.raises(ValueError, match="does not match"):
        solve("cf", image, trimap[:-1])
    with pytest.raises(ValueError, match="uint8"):
        solve("cf", image, trimap.astype(np.float32))


# --------------------------------------------------- degenerate photos (issue 19)

UNIFORM = [(255, 255, 255), (0, 0, 0), (128, 128, 128), (17, 200, 3)]


def _column_trimap(h: int, w: int) -> np.ndarray:
    """Background left of x = 0.3 w, foreground right of 0.7 w, unknown between."""
    t = np.zeros((h, w), np.uint8)
    t[:, round(0.7 * w) :] = 255
    t[:, round(0.3 * w) : round(0.7 * w)] = 128
    return t


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_solvers_on_single_colour_images(name, one_numba_thread, no_float_warnings):
    """A single-colour image carries no colour information: every solver must give a finite
    alpha in [0, 1] that does not depend on the colour, rising from background to foreground.
    (cf, lkm: a window's covariance is 0, the Laplacian is the same for every colour; knn: the
    colour features are equal; guided: F = B, alpha is its prior.) Agreement across colours is
    to the CG tolerance (rtol 1e-7) in float32 storage: 1e-4 leaves room for its conditioning."""
    h, w = 40, 60
    trimap = _column_trimap(h, w)
    unknown = trimap == 128
    results = []
    for colour in UNIFORM:
        image = np.empty((h, w, 3), np.uint8)
        image[:] = colour
        a = solve(name, image, trimap)
        assert a.dtype == np.float32 and np.isfinite(a).all()
        assert a.min() >= 0.0 and a.max() <= 1.0
        assert np.all(a[trimap == 255] == 1) and np.all(a[trimap == 0] == 0)
        results.append(a)
    for a in results[1:]:
        np.testing.assert_allclose(a, results[0], rtol=0, atol=1e-4)
    cols = np.where(unknown, results[0], np.nan)[:, unknown.any(axis=0)]
    profile = np.nanmean(cols, axis=0)
    assert np.all(np.diff(profile) >= -1e-4) and profile[-1] - profile[0] > 0.3


@pytest.mark.parametrize("bad", [0, 0.0, -1e-3, float("nan"), float("inf"), True, "1e-3"])
def test_guided_solver_rejects_a_min_contrast_that_divides_by_zero(bad, synthetic):
    image, trimap, _ = synthetic
    with pytest.raises(ValueError, match="min_contrast"):
        solve("guided", image, trimap, min_contrast=bad)
    a = solve("guided", image, trimap, min_contrast=np.float32(1e-3))  # numpy scalars are fine
    assert np.isfinite(a).all()


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_solvers_on_saturated_and_near_flat_images(name, saturated_photo, one_numba_thread):
    """Saturated white, near-grey strands, a 200 ± 1 patch: finite alpha in [0, 1]."""
    image, prob = saturated_photo(60, 80, 3)
    rng = np.random.default_rng(4)
    near_flat = (200 + rng.integers(-1, 2, (60, 80, 1))).repeat(3, axis=2).astype(np.uint8)
    trimap = _column_trimap(60, 80)
    for img in (image, near_flat):
        with np.errstate(all="raise"):
            a = solve(name, img, trimap)
        assert np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0
        assert np.all(a[trimap == 255] == 1) and np.all(a[trimap == 0] == 0)


@pytest.mark.parametrize("scale", [1.5, 3.0])
def test_guided_upsample_on_a_saturated_photo(scale, saturated_photo, no_float_warnings):
    """Matting on a reduced grid comes back through guided_upsample (guided filter, eps 1e-5):
    on this photo the closed-form 3×3 inverse returned NaN. At scale 1.5 the filter runs
    unsubsampled (radius 3) on tiles that keep 2r pixels of context, so it equals the
    full-image float64 filter at the unknown pixels (tolerance: test_refine.gf_tolerance)."""
    import cv2
    from test_refine import gf_tolerance, guided_filter64, integral_mean64

    from nuggy.matting.band import guided_upsample
    from nuggy.pipeline.trimap import make_trimap

    h, w = 480, 640
    image, prob = saturated_photo(h, w, 0)
    trimap = make_trimap(prob, image=image)
    unknown = trimap == 128
    low = cv2.resize(prob, (round(w / scale), round(h / scale)), interpolation=cv2.INTER_AREA)
    alpha = guided_upsample(image, trimap, low)
    assert alpha.dtype == np.float32 and np.isfinite(alpha).all()
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
    if scale == 1.5:
        up = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
        ref = np.clip(guided_filter64(image / 255.0, up, 3, 1e-5, mean=integral_mean64), 0, 1)
        np.testing.assert_allclose(alpha[unknown], ref[unknown], rtol=0, atol=gf_tolerance(1e-5))


def test_closed_form_on_a_reduced_grid_of_a_saturated_photo(saturated_photo, one_numba_thread):
    """The automatic pipeline's cf call (prior, PRIOR_EPSILON) with a band larger than
    max_unknown: solved on the reduced grid, brought back by guided_upsample."""
    from nuggy.matting.closed_form import closed_form_alpha
    from nuggy.pipeline.matte import PRIOR_EPSILON
    from nuggy.pipeline.trimap import make_trimap

    image, prob = saturated_photo(480, 640, 0)
    trimap = make_trimap(prob, image=image)
    n_unknown = int(np.count_nonzero(trimap == 128))
    alpha = closed_form_alpha(image, trimap, prior=prob, epsilon=PRIOR_EPSILON, max_unknown=n_unknown // 2)
    assert alpha.dtype == np.float32 and np.isfinite(alpha).all()
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)


@pytest.mark.slow
def test_best_preset_on_a_large_saturated_photo(saturated_photo, no_fba):
    """Issue 19 end to end: ``best`` (auto → cf without FBA) on a 1707×1280 photo whose band is
    solved on a reduced grid; it exited with 'alpha must lie in [0, 1], got range [nan, nan]'."""
    from nuggy.pipeline.config import preset
    from nuggy.pipeline.matte import MAX_UNKNOWN
    from nuggy.pipeline.pipeline import Pipeline

    image, prob = saturated_photo(1707, 1280, 0)
    assert (image == 255).all(axis=2).mean() > 0.12  # at least the share of white
    result = Pipeline(preset("best")).run(image, probability=prob)
    assert np.count_nonzero(result.trimap == 128) > MAX_UNKNOWN["cf"]  # the reduced-grid path
    a = result.alpha
    assert a.dtype == np.float32 and np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1
    assert np.all(a[result.trimap == 255] == 1) and np.all(a[result.trimap == 0] == 0)
    fg = result.foreground
    assert np.isfinite(fg).all() and fg.min() >= 0 and fg.max() <= 1


# ------------------------------------------------------------------------------ cf + prior


def test_cf_prior_vanishing_weight_is_plain_cf(synthetic):
    """The prior system is assembled by us: with a negligible weight it must give pymatting's
    own closed-form answer (CG tolerance 1e-7, float32 storage: agreement to ~1e-5)."""
    from nuggy.matting.closed_form import closed_form_alpha

    image, trimap, gt = synthetic
    prior = np.full(trimap.shape, 0.9, np.float32)
    plain = closed_form_alpha(image, trimap)
    tiny = closed_form_alpha(image, trimap, prior=prior, prior_weight=1e-12)
    off = closed_form_alpha(image, trimap, prior=prior, prior_weight=0.0)
    unknown = trimap == 128
    assert np.abs(tiny - plain)[unknown].max() < 1e-4
    assert np.array_equal(off, plain)


def test_cf_prior_holds_where_confident():
    """A subject whose right part has the background's colour: colour alone calls that part
    background. A confident prior (the true mask) keeps it opaque; a prior of 0.5 carries no
    confidence and leaves the closed-form answer unchanged."""
    from nuggy.matting.closed_form import closed_form_alpha

    h, w = 40, 100
    xx = np.mgrid[0:h, 0:w][1]
    truth = (xx < 60).astype(np.float32)  # subject: columns 0..59
    image = np.where((xx < 40)[..., None], [200, 60, 40], [40, 60, 200])  # 40..59 camouflaged
    noise = np.random.default_rng(0).integers(-8, 9, image.shape)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:, :20], trimap[:, 80:] = 255, 0
    unknown = trimap == 128
    camo = unknown & (xx >= 40) & (xx < 60)
    plain = closed_form_alpha(image, trimap)
    # measured: camouflaged part 0.008 plain, 0.87 with the prior; mean error 0.33 -> 0.085
    assert plain[camo].mean() < 0.05
    prior = truth.copy()
    held = closed_form_alpha(image, trimap, prior=prior)
    assert np.array_equal(prior, truth)  # input untouched
    assert held[camo].mean() > 0.8
    err_plain = np.abs(plain - truth)[unknown].mean()
    assert np.abs(held - truth)[unknown].mean() < err_plain / 3
    neutral = closed_form_alpha(image, trimap, prior=np.full((h, w), 0.5, np.float32))
    assert np.abs(neutral - plain)[unknown].max() < 1e-4
    # the reduced-grid path resizes the prior to the grid it solves on (measured 0.73)
    reduced = closed_form_alpha(image, trimap, prior=prior, max_unknown=int(unknown.sum()) // 4)
    assert reduced[camo].mean() > 0.6
    assert np.all(reduced[trimap == 255] == 1) and np.all(reduced[trimap == 0] == 0)


def test_cf_prior_errors(synthetic):
    from nuggy.matting.closed_form import closed_form_alpha

    image, trimap, _ = synthetic
    with pytest.raises(ValueError, match="prior .* does not match"):
        closed_form_alpha(image, trimap, prior=np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="float alpha"):
        closed_form_alpha(image, trimap, prior=trimap)
    with pytest.raises(ValueError, match="prior_weight"):
        closed_form_alpha(image, trimap, prior=trimap / 255.0, prior_weight=-1)


# ------------------------------------------------------------------------------ dev data


def _dev(name: str, crop=None):
    from conftest import DEV

    if not (DEV / "image").is_dir():
        pytest.skip(f"dev data not found at {DEV}")
    from nuggy.io import load_image

    image = load_image(DEV / "image" / f"{name}.png")
    gt = load_image(DEV / "alpha" / f"{name}.png")[..., 0].astype(np.float64) / 255
    trimap = load_image(DEV / "trimap" / f"{name}.png")[..., 0]
    if crop is not None:
        image, gt, trimap = image[crop], gt[crop], trimap[crop]
    return np.ascontiguousarray(image), np.ascontiguousarray(trimap), gt


def _sad_mse(alpha, gt, unknown):
    err = alpha.astype(np.float64) - gt
    return np.abs(err[unknown]).sum() / 1000, (err[unknown] ** 2).mean() * 1000


# Band-restricted vs pymatting on the full image, same inputs (ground-truth trimap). The
# 240×200 window of GT01 has its unknown region in ~30 % of the window, so the band crop is
# genuinely smaller than the image.
# cf: the systems are identical (see nuggy.matting.band); measured |Δα| ≤ 1.4e-5 (whole GT01),
#     3e-8 (window): SAD/MSE agree to 1e-5 relative, asserted to 1e-3.
# lkm: known pixels are soft constraints, so pixels at the crop border see fewer windows;
#     measured SAD −0.09 %, MSE −0.01 %, |Δα| ≤ 1.4e-3 (window): asserted to 1 %.
# knn: the crop only offers neighbours near the band and pymatting scales the position features
#     per crop (we rescale them by the geometric mean of the two axes); measured SAD +2.5 %,
#     MSE +5.8 %, |Δα| ≤ 0.04 on the window (+0.07 % / +0.05 % SAD on whole GT01 / GT04):
#     asserted to 5 % (SAD) and 10 % (MSE).
WINDOW = (slice(200, 400), slice(400, 640))
PARITY = [
    ("cf", None, 1e-3, 1e-3),
    ("cf", WINDOW, 1e-3, 1e-3),
    ("lkm", WINDOW, 0.01, 0.01),
    ("knn", WINDOW, 0.05, 0.10),
]


@pytest.mark.parametrize("method,crop,rel_sad,rel_mse", PARITY)
def test_dev_band_matches_full_image(method, crop, rel_sad, rel_mse, one_numba_thread):
    import pymatting

    image, trimap, gt = _dev("GT01", crop)
    unknown = trimap == 128
    assert unknown.any()
    direct = getattr(pymatting, f"estimate_alpha_{method}")(image / 255.0, trimap / 255.0)
    band = solve(method, image, trimap)
    s_band, m_band = _sad_mse(band, gt, unknown)
    s_full, m_full = _sad_mse(direct, gt, unknown)
    assert s_band == pytest.approx(s_full, rel=rel_sad)
    assert m_band == pytest.approx(m_full, rel=rel_mse)
    if method == "cf":
        assert np.abs(band - direct)[unknown].max() < 1e-4


# ------------------------------------------------------------------------------ matte stage


@pytest.fixture
def no_fba(tmp_path, monkeypatch):
    monkeypatch.setenv("NUGGY_HOME", str(tmp_path))


def _prob(gt: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur((gt >= 0.5).astype(np.float32), (0, 0), 2.0)


def test_matte_stage(synthetic, no_fba):
    from nuggy.pipeline.config import PipelineConfig
    from nuggy.pipeline.matte import resolve_method

    image, _, gt = synthetic
    prob = _prob(gt)
    prob0 = prob.copy()
    assert resolve_method("auto") == "cf"
    for method in ("auto", "cf", "guided"):
        cfg = PipelineConfig(matting=method, trimap_band=0.02)
        alpha, fg, trimap = _pipeline_matte(image, prob, cfg)
        assert fg is None
        assert set(np.unique(trimap)) <= {0, 128, 255}
        assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
        assert np.abs(alpha - gt).mean() < np.abs(prob - gt).mean()
    assert np.array_equal(prob, prob0)


def test_matte_user_trimap_and_fba_errors(synthetic, no_fba, tmp_path):
    from nuggy.pipeline.config import PipelineConfig
    from nuggy.pipeline.pipeline import Pipeline
    from nuggy.pipeline.trimap import TrimapError

    image, trimap, gt = synthetic
    cfg = PipelineConfig(matting="cf", foreground=False)
    alpha, _, used = _pipeline_matte(image, None, cfg, trimap=trimap)
    assert np.array_equal(used, trimap)
    # the pipeline's user-trimap path: no model is loaded, the trimap's unknown band is solved
    pipe = Pipeline(cfg.replace(model="no-such-model"))
    res = pipe.run(image, trimap=trimap)
    assert np.array_equal(res.alpha, alpha) and res.foreground is None
    assert pipe._predictors is None and list(res.timings) == ["matte"]
    with pytest.raises(TrimapError, match="same size"):
        _pipeline_matte(image, None, cfg, trimap=trimap[:-2])
    with pytest.raises(FileNotFoundError, match="FBA.pth"):
        _pipeline_matte(image, _prob(gt), cfg.replace(matting="fba"))
    with pytest.raises(FileNotFoundError, match="not found"):
        _pipeline_matte(
            image, _prob(gt), cfg.replace(matting="auto", matting_weights=str(tmp_path / "x.pth"))
        )


def test_matte_fba_plumbing(synthetic, tmp_path, monkeypatch):
    """FBA path with a tiny random-weight network: alpha pasted in the band, known pixels exact,
    F returned at full resolution; on a reduced grid F is left to the pipeline."""
    pytest.importorskip("torch")
    from nuggy.models.registry import create_model
    from nuggy.pipeline import matte as matte_mod
    from nuggy.pipeline.config import PipelineConfig
    from nuggy.runtime.torch import FBAPredictor

    weights = tmp_path / "FBA.pth"
    weights.write_bytes(b"")  # found by name; the predictor itself is replaced below
    monkeypatch.setenv("NUGGY_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "FBA.pth").write_bytes(b"")
    predictor = FBAPredictor(model=create_model("fba", width_divisor=8, layers=(1, 1, 1, 1)))
    monkeypatch.setattr(matte_mod, "_fba_predictor", lambda path: predictor)
    image, trimap, _ = synthetic
    assert matte_mod.resolve_method("auto") == "fba"
    cfg = PipelineConfig(matting="auto")
    alpha, fg, used = _pipeline_matte(image, None, cfg, trimap=trimap)
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
    assert fg is not None and fg.shape == image.shape and fg.dtype == np.float32
    assert np.allclose(fg[trimap == 255], image[trimap == 255] / 255.0, atol=1e-6)
    monkeypatch.setattr(matte_mod, "FBA_MAX_PIXELS", 2000)
    alpha2, fg2, _ = _pipeline_matte(image, None, cfg.replace(matting_weights=str(weights)), trimap=trimap)
    assert fg2 is None
    assert np.all(alpha2[trimap == 255] == 1) and np.all(alpha2[trimap == 0] == 0)
    assert 0 <= alpha2.min() and alpha2.max() <= 1


def test_best_preset():
    from nuggy.pipeline.config import preset

    assert preset("best").matting == "auto"
    assert preset("best").matting_prior > 0
    with pytest.raises(ValueError, match="matting_prior must be a number in 0..100"):
        preset("best", matting_prior=-0.1)


def test_matte_stage_passes_the_prior_to_cf(synthetic, no_fba):
    """The automatic path gives cf the pipeline's alpha as its prior; weight 0 is plain cf."""
    from nuggy.matting.closed_form import closed_form_alpha
    from nuggy.pipeline.config import PipelineConfig
    from nuggy.pipeline.matte import PRIOR_EPSILON

    image, _, gt = synthetic
    prob = _prob(gt)
    cfg = PipelineConfig(matting="cf", trimap_band=0.02)
    with_prior, _, trimap = _pipeline_matte(image, prob, cfg)
    expected = closed_form_alpha(image, trimap, prior=prob, prior_weight=0.1, epsilon=PRIOR_EPSILON)
    assert np.array_equal(with_prior, expected)
    plain, _, _ = _pipeline_matte(image, prob, cfg.replace(matting_prior=0.0))
    assert np.array_equal(plain, closed_form_alpha(image, trimap))
    assert not np.array_equal(plain, with_prior)


def test_matte_keeps_the_alpha_where_the_band_has_one_known_side(no_fba):
    """On a real photo: an uncertain gap closed by the subject and the image's border (no
    definite background near it) came out solid foreground from closed-form matting; the
    pipeline's alpha is kept there, and the rest of the band is solved as before."""
    from conftest import EXAMPLES

    from nuggy.io import load_image
    from nuggy.matting.closed_form import closed_form_alpha
    from nuggy.pipeline.config import PipelineConfig
    from nuggy.pipeline.matte import PRIOR_EPSILON
    from nuggy.pipeline.trimap import make_trimap, one_sided

    image = load_image(EXAMPLES / "chelsea.jpg")[:120, :160]
    h, w = image.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    alpha[:, 40:] = 1.0  # the subject: the right part, to the border
    alpha[50:70, 140:] = 0.4  # an uncertain gap at the right border
    cfg = PipelineConfig(matting="cf", trimap_band=0.02)
    out, _, trimap = _pipeline_matte(image, alpha, cfg)
    assert np.array_equal(trimap, make_trimap(alpha, band=0.02, image=image))
    keep = one_sided(trimap)
    assert keep[50:70, 145:].all() and not keep[:, :45].any()
    assert np.array_equal(out[keep], alpha[keep])
    solved = closed_form_alpha(image, trimap, prior=alpha, prior_weight=0.1, epsilon=PRIOR_EPSILON)
    assert solved[50:70, 145:].mean() > 0.9  # what the solver alone made of the gap
    assert np.array_equal(out[~keep], solved[~keep])
    # with a user trimap nothing is kept back: it is solved as given
    user, _, _ = _pipeline_matte(image, None, cfg.replace(matting_prior=0.0), trimap=trimap)
    assert np.array_equal(user, closed_form_alpha(image, trimap))


# ------------------------------------------------------------------------------ CLI


def test_cli_trimap(tmp_path, u2netp_path):
    from conftest import EXAMPLES
    from PIL import Image

    from nuggy.cli.main import main

    out = tmp_path / "cat_trimap.png"
    assert main(["trimap", str(EXAMPLES / "chelsea.jpg"), "-o", str(out), "-q"]) == 0
    t = np.asarray(Image.open(out))
    assert t.ndim == 2 and set(np.unique(t)) == {0, 128, 255}
    # refuses to overwrite without --overwrite
    assert main(["trimap", str(EXAMPLES / "chelsea.jpg"), "-o", str(out), "-q"]) == 1


def test_cli_remove_with_user_trimap(tmp_path, synthetic, capsys, no_fba):
    from PIL import Image

    from nuggy.cli.main import main

    image, trimap, gt = synthetic
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(trimap, "L").save(tmp_path / "a_trimap.png")
    out = tmp_path / "a_cut.png"
    rc = main(
        [
            "remove",
            str(tmp_path / "a.png"),
            "--trimap",
            str(tmp_path / "a_trimap.png"),
            "--matting",
            "cf",
            "--no-foreground",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert rc == 0
    rgba = np.asarray(Image.open(out))
    assert rgba.shape == image.shape[:2] + (4,)
    a = rgba[..., 3] / 255.0
    assert np.abs(a - gt)[trimap == 128].mean() < 0.02
    bad = trimap.copy()
    bad[0, 0] = 77
    Image.fromarray(bad, "L").save(tmp_path / "bad.png")
    rc = main(
        [
            "remove",
            str(tmp_path / "a.png"),
            "--trimap",
            str(tmp_path / "bad.png"),
            "-o",
            str(tmp_path / "b.png"),
            "-q",
        ]
    )
    assert rc == 2  # refused before the model runs (issue 18 item 8)
    assert "values must be 0, 128, 255" in capsys.readouterr().err
    rc = main(
        [
            "remove",
            str(tmp_path / "a.png"),
            str(tmp_path / "a_trimap.png"),
            "--trimap",
            str(tmp_path / "a_trimap.png"),
            "-o",
            str(tmp_path / "outs"),
            "-q",
        ]
    )
    assert rc == 2
    rc = main(["remove", str(tmp_path / "a.png"), "--matting", "fba", "-o", str(tmp_path / "c.png")])
    assert rc == 2 and "FBA.pth" in capsys.readouterr().err


def _pipeline_matte(image, alpha, cfg, *, trimap=None):
    """The matting stage as a Pipeline built from ``cfg`` runs it (solver resolved once)."""
    from nuggy.pipeline.pipeline import Pipeline

    return Pipeline(cfg)._matte(image, alpha, trimap=trimap)
