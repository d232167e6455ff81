"""Tests for nuggy.eval.metrics.

Matting metrics are checked on hand-worked arrays and against direct float64 transcriptions
of the Composition-1k MATLAB definitions written here; DIS metrics on hand-worked arrays and
against PySODMetrics computed live (skipped when it is not installed).
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import pytest
from scipy import ndimage

from nuggy.eval.metrics import (
    conn,
    dis_metrics,
    e_measure,
    grad,
    hce,
    mae,
    matting_metrics,
    max_f,
    mse,
    s_measure,
    sad,
    weighted_f,
)

EPS = float(np.spacing(1.0))  # MATLAB eps, as used by the SOD reference code


# --------------------------------------------------------------------------------------------
# helpers


def _structured_pair(seed: int, h: int = 96, w: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A seeded ground truth of ellipses, thin lines and holes, and a plausible prediction:
    the gt shifted, blurred, with noise, added / removed blobs, quantised to k/255."""
    r = np.random.default_rng(seed)
    gt = np.zeros((h, w), np.uint8)
    for _ in range(3):
        centre = (int(r.integers(15, w - 15)), int(r.integers(15, h - 15)))
        axes = (int(r.integers(6, 30)), int(r.integers(6, 25)))
        cv2.ellipse(gt, centre, axes, float(r.uniform(0, 180)), 0, 360, 255, -1)
    for _ in range(3):
        p0 = tuple(int(v) for v in r.integers(0, (w, h)))
        p1 = tuple(int(v) for v in r.integers(0, (w, h)))
        cv2.line(gt, p0, p1, 255, int(r.integers(1, 4)))
    for _ in range(2):
        cv2.circle(
            gt, (int(r.integers(10, w - 10)), int(r.integers(10, h - 10))), int(r.integers(3, 8)), 0, -1
        )
    pred = np.roll(gt, 2, axis=1).astype(np.float64) / 255.0
    pred = cv2.GaussianBlur(pred, (0, 0), 1.5)
    for _ in range(4):
        blob = np.zeros((h, w), np.uint8)
        cv2.circle(blob, (int(r.integers(0, w)), int(r.integers(0, h))), int(r.integers(4, 16)), 1, -1)
        pred[blob > 0] = float(r.choice([0.0, 0.9]))
    pred = np.clip(pred + r.normal(0.0, 0.08, pred.shape), 0.0, 1.0)
    pred = np.round(pred * 255.0) / 255.0
    return pred, gt > 127


# --------------------------------------------------------------------------------------------
# SAD / MSE


def test_sad_one_wrong_pixel():
    gt = np.zeros((10, 10))
    pred = gt.copy()
    pred[3, 4] = 0.5
    assert sad(pred, gt) == pytest.approx(0.5 / 1000)
    # uint8 inputs are divided by 255
    gt8 = np.zeros((10, 10), np.uint8)
    pred8 = gt8.copy()
    pred8[3, 4] = 255
    assert sad(pred8, gt8) == pytest.approx(1 / 1000)
    assert sad(pred8, gt8.astype(np.float32)) == pytest.approx(1 / 1000)


def test_sad_mask_restricts_region():
    gt = np.zeros((10, 10))
    pred = gt.copy()
    pred[3, 4] = 0.5
    pred[8, 8] = 0.25
    mask = np.zeros((10, 10), bool)
    mask[:5, :5] = True  # contains (3, 4) only
    assert sad(pred, gt, mask=mask) == pytest.approx(0.5 / 1000)
    assert sad(pred, gt, mask=~mask) == pytest.approx(0.25 / 1000)
    assert sad(pred, gt, mask=np.zeros((10, 10), bool)) == 0.0


def test_mse_is_mean_over_region_times_1000():
    gt = np.zeros((10, 10))
    pred = gt.copy()
    pred[3, 4] = 0.5
    # whole image: 0.25 / 100 pixels * 1000
    assert mse(pred, gt) == pytest.approx(2.5)
    # region of 4 pixels containing the error: 0.25 / 4 * 1000 (divided by the region size,
    # as Composition-1k divides by the number of unknown pixels, not by H*W)
    mask = np.zeros((10, 10), bool)
    mask[3:5, 3:5] = True
    assert mse(pred, gt, mask=mask) == pytest.approx(62.5)
    assert math.isnan(mse(pred, gt, mask=np.zeros((10, 10), bool)))


# --------------------------------------------------------------------------------------------
# Grad


def _gaussgradient_direct(img: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Straight float64 transcription of the Composition-1k gaussgradient.m: 2-D kernel
    built element by element, L2-normalised, 2-D convolution with replicated borders."""
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2)))
    size = 2 * half + 1

    def gauss(x):
        return math.exp(-x * x / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))

    def dgauss(x):
        return -x * gauss(x) / sigma**2

    hx = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            hx[i, j] = gauss(i - half) * dgauss(j - half)
    hx /= math.sqrt((hx * hx).sum())
    hy = hx.T
    return (ndimage.convolve(img, hx, mode="nearest"), ndimage.convolve(img, hy, mode="nearest"))


def _grad_direct(pred, gt, mask=None, sigma=1.4):
    px, py = _gaussgradient_direct(pred, sigma)
    gx, gy = _gaussgradient_direct(gt, sigma)
    err = (np.sqrt(px**2 + py**2) - np.sqrt(gx**2 + gy**2)) ** 2
    return (err.sum() if mask is None else err[mask].sum()) / 1000


def test_grad_of_impulse_is_twice_unit_kernel_energy():
    # A unit impulse far from the border reproduces both kernels; each is L2-normalised, so
    # sum(gx^2 + gy^2) = 1 + 1, and with gt = 0 the error is 2 / 1000. The kernel half size
    # is ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(1.4 * 2.588) = 4, so a 9x9
    # window around the impulse catches all of it and a 7x7 window does not.
    pred = np.zeros((21, 21))
    pred[10, 10] = 1.0
    gt = np.zeros_like(pred)
    assert grad(pred, gt) == pytest.approx(2 / 1000, rel=1e-12)
    win9 = np.zeros_like(pred, dtype=bool)
    win9[6:15, 6:15] = True
    assert grad(pred, gt, mask=win9) == pytest.approx(2 / 1000, rel=1e-12)
    win7 = np.zeros_like(pred, dtype=bool)
    win7[7:14, 7:14] = True
    assert grad(pred, gt, mask=win7) < 2 / 1000 * (1 - 1e-3)


def test_grad_of_linear_ramp_matches_closed_form():
    # f(y, x) = a x. Away from borders the x-filter gives -a * sum(g^) * sum(dg^ u) and the
    # y-filter 0 (sum(dg^) = 0, sum(g^ u) = 0), where g^, dg^ are the L2-normalised 1-D
    # Gaussian and derivative samples at u = -4..4 (the 2-D kernel is their outer product).
    sigma, a = 1.4, 0.01
    u = np.arange(-4, 5, dtype=np.float64)
    g = np.exp(-(u**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dg = -u * g / sigma**2
    amp = a * abs(g.sum() / np.linalg.norm(g)) * abs((dg * u).sum() / np.linalg.norm(dg))
    h, w = 20, 40
    pred = np.tile(a * np.arange(w, dtype=np.float64), (h, 1))
    inner = np.zeros((h, w), bool)
    inner[4:-4, 4:-4] = True
    expected = inner.sum() * amp**2 / 1000
    assert grad(pred, np.zeros((h, w)), mask=inner) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grad_matches_direct_2d_implementation(seed):
    # Our separable filtering vs the element-by-element 2-D kernel: same maths in float64,
    # so only rounding (~1e-16 relative) can differ.
    pred, gt = _structured_pair(seed, 40, 56)
    gt = np.clip(cv2.GaussianBlur(gt.astype(np.float64), (0, 0), 1.0), 0, 1)
    mask = np.random.default_rng(seed).random(gt.shape) < 0.5
    assert grad(pred, gt) == pytest.approx(_grad_direct(pred, gt), rel=1e-10)
    assert grad(pred, gt, mask=mask) == pytest.approx(_grad_direct(pred, gt, mask), rel=1e-10)
    assert grad(pred, gt, sigma=2.0) == pytest.approx(_grad_direct(pred, gt, sigma=2.0), rel=1e-10)


# --------------------------------------------------------------------------------------------
# Conn


def test_conn_two_level_toy():
    # gt = 1 everywhere, pred = [1, 0.35, 1]. For t = 0.1..0.3 all three pixels form one
    # component; from t = 0.4 pixel 1 drops out and the two ends tie (size 1): the first
    # (column-major) wins, so pixels 1 and 2 get l = 0.3, pixel 0 keeps l = 1.
    # pred: d = [0, 0.05, 0.7] -> phi = [1, 1, 0.3];  gt: d = [0, 0.7, 0.7] -> phi = [1, 0.3, 0.3]
    # sum |diff| = 0.7.
    pred = np.array([[1.0, 0.35, 1.0]])
    assert conn(pred, np.ones((1, 3))) == pytest.approx(0.7 / 1000)


def test_conn_uses_4_connectivity():
    # The pair (0,0)-(0,1) is the largest 4-connected component; (1,2) touches it only
    # diagonally, so it is outside Omega from t = 0.1 on: l = 0, d_pred = 0.6, d_gt = 0.7,
    # |phi diff| = 0.1. (With 8-connectivity it would stay until t = 0.7, l = 0.6, and the
    # gt's d = 0.1 < 0.15 would give 0.)
    pred = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.6]])
    gt = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.7]])
    assert conn(pred, gt) == pytest.approx(0.1 / 1000)


def test_conn_ties_go_to_first_component_in_column_major_order():
    # Two single-pixel components (1,0) and (0,1): column-major order meets (1,0) first
    # (MATLAB bwconncomp labels it 1, max() returns the first maximum). It stays in Omega until
    # t = 0.7 (l = 0.6, both phi = 1), while (0,1) gets l = 0 with d = 1 for both maps:
    # error 0. Picking (0,1) (row-major) would give |0.4 - 0.3| = 0.1 at (1,0).
    pred = np.array([[0.0, 1.0], [0.6, 0.0]])
    gt = np.array([[0.0, 1.0], [0.7, 0.0]])
    assert conn(pred, gt) == pytest.approx(0.0, abs=1e-15)
    assert conn(pred.T, gt.T) == pytest.approx(0.1 / 1000)


def test_conn_isolated_pixel_and_mask():
    # gt: left two columns = 1; pred adds an isolated 1 at (2, 4). Omega is the gt block for
    # every t, so the isolated pixel has l = 0 -> phi_pred = 0, phi_gt = 1: error 1.
    gt = np.zeros((5, 5))
    gt[:, :2] = 1.0
    pred = gt.copy()
    pred[2, 4] = 1.0
    assert conn(pred, gt) == pytest.approx(1 / 1000)
    mask = np.zeros((5, 5), bool)
    mask[:, :3] = True
    assert conn(pred, gt, mask=mask) == 0.0


def _conn_direct(pred, gt, step=0.1):
    """Loop transcription of compute_connectivity_error.m (4-connected bwconncomp, max()
    returning the first component in column-major order), with scipy labelling."""
    ts = np.round(np.arange(0, 1 + step / 2, step), 12)
    level = -np.ones_like(pred)
    for i in range(1, len(ts)):
        lab, n = ndimage.label((pred >= ts[i]) & (gt >= ts[i]))  # default: 4-connected
        omega = np.zeros(pred.shape, bool)
        if n:
            flat = lab.ravel(order="F")
            _, first = np.unique(flat, return_index=True)
            order = [flat[k] for k in sorted(first) if flat[k] > 0]  # column-major label order
            sizes = {v: np.count_nonzero(lab == v) for v in order}
            omega = lab == max(order, key=lambda v: sizes[v])
        level[(level == -1) & ~omega] = ts[i - 1]
    level[level == -1] = 1

    def phi(a):
        d = a - level
        return 1 - d * (d >= 0.15)

    return np.abs(phi(pred) - phi(gt)).sum() / 1000


def test_conn_matches_direct_implementation_on_random_maps():
    r = np.random.default_rng(7)
    for _ in range(25):
        h, w = (int(v) for v in r.integers(2, 24, 2))
        levels = int(r.integers(1, 6))
        gt = np.round(r.random((h, w)) * levels) / levels
        pred = np.clip(gt + r.normal(0, 0.3, (h, w)) * (r.random((h, w)) < 0.5), 0, 1)
        pred = np.round(pred * 255) / 255
        # identical arithmetic on identical thresholds: only summation order may differ
        assert conn(pred, gt) == pytest.approx(_conn_direct(pred, gt), rel=1e-12, abs=1e-15)
    pred, gt = _structured_pair(3, 48, 64)
    gt = np.clip(cv2.GaussianBlur(gt.astype(np.float64), (0, 0), 1.0), 0, 1)
    assert conn(pred, gt) == pytest.approx(_conn_direct(pred, gt), rel=1e-12)
    assert conn(pred, gt, step=0.25) == pytest.approx(_conn_direct(pred, gt, 0.25), rel=1e-12)


# --------------------------------------------------------------------------------------------
# matting: common behaviour


def test_matting_perfect_and_complementary():
    pred, gt = _structured_pair(0, 40, 50)
    alpha = np.clip(cv2.GaussianBlur(gt.astype(np.float64), (0, 0), 1.0), 0, 1)
    assert matting_metrics(alpha, alpha) == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}
    # a binary gt and its complement: every pixel is wrong by 1
    g = gt.astype(np.float64)
    n = g.size
    assert sad(1 - g, g) == pytest.approx(n / 1000)
    assert mse(1 - g, g) == pytest.approx(1000.0)
    # both maps have the same gradient magnitude everywhere (negated image)
    assert grad(1 - g, g) == pytest.approx(0.0, abs=1e-12)
    # every pixel is outside Omega from t = 0.1 (the maps never overlap), so l = 0 and
    # |phi_pred - phi_gt| = |(1 - 1*[pred=1]) - (1 - 1*[gt=1])| = 1 everywhere
    assert conn(1 - g, g) == pytest.approx(n / 1000)


def test_matting_metrics_unknown_region_equals_masked_functions():
    pred, gt = _structured_pair(1, 40, 50)
    alpha = np.clip(cv2.GaussianBlur(gt.astype(np.float64), (0, 0), 1.5), 0, 1)
    trimap = np.full(gt.shape, 0, np.uint8)
    trimap[alpha > 0.98] = 255
    trimap[(alpha > 0.02) & (alpha <= 0.98)] = 128
    unknown = trimap == 128
    out = matting_metrics(pred, alpha, trimap=trimap, region="unknown")
    assert out == {
        "sad": sad(pred, alpha, mask=unknown),
        "mse": mse(pred, alpha, mask=unknown),
        "grad": grad(pred, alpha, mask=unknown),
        "conn": conn(pred, alpha, mask=unknown),
    }
    whole = matting_metrics(pred, alpha, trimap=trimap)
    assert whole["sad"] == sad(pred, alpha) > out["sad"]


def test_matting_validation():
    a = np.zeros((4, 4))
    with pytest.raises(ValueError, match="shape mismatch"):
        sad(a, np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sad(a + 1.5, a)
    with pytest.raises(ValueError, match="NaN"):
        mse(np.full((4, 4), np.nan), a)
    with pytest.raises(ValueError, match="dtype"):
        grad(a.astype(np.int32), a)
    with pytest.raises(ValueError, match="H×W"):
        conn(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="mask must be a bool"):
        sad(a, a, mask=np.ones((4, 4), np.uint8))
    with pytest.raises(ValueError, match="shape mismatch"):
        sad(a, a, mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="step"):
        conn(a, a, step=0)
    with pytest.raises(ValueError, match="sigma"):
        grad(a, a, sigma=0)
    with pytest.raises(ValueError, match="needs a trimap"):
        matting_metrics(a, a, region="unknown")
    with pytest.raises(ValueError, match="0, 128 or 255"):
        matting_metrics(a, a, trimap=np.full((4, 4), 127, np.uint8), region="unknown")
    with pytest.raises(ValueError, match="uint8"):
        matting_metrics(a, a, trimap=np.full((4, 4), 128.0), region="unknown")
    with pytest.raises(ValueError, match="region"):
        matting_metrics(a, a, region="all")


def test_rounding_noise_is_clipped_but_real_overshoot_rejected():
    gt = np.zeros((4, 4))
    gt[1:3, 1:3] = 1.0
    noisy = gt.copy()
    noisy[1, 1] = 1.0 + 1e-12  # e.g. what a Gaussian blur of a 0/1 map produces
    noisy[0, 0] = -1e-12
    assert sad(noisy, gt) == 0.0
    assert noisy[1, 1] == 1.0 + 1e-12  # clipping happened on a copy
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sad(gt * 1.001, gt)


def test_uint8_and_bool_inputs_match_float():
    pred, gt = _structured_pair(7, 48, 64)
    pred8 = np.round(pred * 255).astype(np.uint8)  # pred is already on the k/255 grid
    gt8 = gt.astype(np.uint8) * 255
    assert dis_metrics(pred8, gt8) == dis_metrics(pred, gt)
    assert matting_metrics(pred8, gt8) == matting_metrics(pred, gt.astype(np.float64))


def test_inputs_are_not_modified():
    pred, gt = _structured_pair(2, 32, 40)
    pred32 = pred.astype(np.float32)
    gt8 = gt.astype(np.uint8) * 255
    trimap = np.where(gt, 255, 0).astype(np.uint8)
    trimap[10:20, 10:20] = 128
    copies = [x.copy() for x in (pred32, gt8, trimap)]
    matting_metrics(pred32, gt8, trimap=trimap, region="unknown")
    dis_metrics(pred32, gt8)
    for before, after in zip(copies, (pred32, gt8, trimap)):
        assert after.dtype == before.dtype
        np.testing.assert_array_equal(after, before)


@pytest.mark.slow
def test_conn_and_grad_speed_on_4_megapixels():
    r = np.random.default_rng(0)
    gt = np.zeros((2000, 2000))
    cv2.circle(gt, (1000, 1000), 600, 1.0, -1)
    gt = cv2.GaussianBlur(gt, (0, 0), 5)
    pred = np.clip(gt + r.normal(0, 0.05, gt.shape), 0, 1)
    for fn in (conn, grad):
        t0 = time.perf_counter()
        value = fn(pred, gt)
        elapsed = time.perf_counter() - t0
        assert value > 0
        assert elapsed < 3.0, f"{fn.__name__} took {elapsed:.2f} s on 2000x2000"


# --------------------------------------------------------------------------------------------
# DIS metrics: hand-worked cases


def test_mae_one_wrong_pixel():
    gt = np.zeros((10, 10), bool)
    pred = np.zeros((10, 10))
    pred[2, 2] = 0.5
    assert mae(pred, gt) == pytest.approx(0.005)
    assert mae(np.zeros((10, 10), np.uint8), np.full((10, 10), 255, np.uint8)) == 1.0


def test_max_f_hand_worked():
    # gt: 20 foreground pixels in a 10x10; pred: 10 of them at 0.9 (level 229), 10 at 0.4
    # (level 102), 5 background pixels at 0.6 (level 153), the rest 0.
    #   t in 230..255: nothing predicted                       -> F = 0
    #   t in 154..229: TP 10, FP 0  -> P 1,   R .5 -> 1.3*.5/(.3+.5)        = 0.8125
    #   t in 103..153: TP 10, FP 5  -> P 2/3, R .5 -> 1.3*(1/3)/(0.2+.5)   = 0.619...
    #   t in   1..102: TP 20, FP 5  -> P .8,  R 1  -> 1.3*.8/(.24+1)       = 0.8387...
    #   t = 0: all 100 predicted    -> P .2,  R 1  -> 1.3*.2/(.06+1)       = 0.245...
    gt = np.zeros((10, 10), bool)
    gt[:2, :] = True
    pred = np.zeros((10, 10))
    pred[0, :] = 0.9
    pred[1, :] = 0.4
    pred[5, :5] = 0.6
    assert max_f(pred, gt) == pytest.approx(1.04 / 1.24)
    assert max_f(pred, gt, beta2=1.0) == pytest.approx(2 * 0.8 / 1.8)


def test_max_f_perfect_and_complementary():
    _, gt = _structured_pair(4)
    assert max_f(gt.astype(np.float64), gt) == pytest.approx(1.0)
    # complement: no threshold >= 1 catches a true positive; t = 0 predicts everything,
    # P = |gt| / N, R = 1
    p_all = gt.mean()
    assert max_f(1.0 - gt, gt) == pytest.approx(1.3 * p_all / (0.3 * p_all + 1))


def test_weighted_f_hand_worked():
    gt = np.zeros((20, 20), bool)
    gt[8:12, 8:12] = True  # 16 px, >= 3 px from the border
    # perfect: no error -> R = 1, P = 1
    assert weighted_f(gt.astype(np.float64), gt) == pytest.approx(1.0)
    # one false positive 5 px (Euclidean) from the object: its weight is 2 - 0.5**(5/5) = 1.5,
    # foreground errors stay 0 -> R = 1, P = 16 / (16 + 1.5), F = 2 R P / (R + P)
    pred = gt.astype(np.float64)
    pred[8, 16] = 1.0
    p = 16 / 17.5
    assert weighted_f(pred, gt) == pytest.approx(2 * p / (1 + p), rel=1e-12)
    # half-confident object: every (nearest-foreground) error is 0.5, the 7x7 blur of a
    # constant is the constant -> foreground Ew = 0.5, background Ew = 0 -> R = .5, P = 1
    assert weighted_f(0.5 * gt, gt) == pytest.approx(2 * 0.5 / 1.5, rel=1e-9)
    assert weighted_f(0.5 * gt, gt, beta2=0.3) == pytest.approx(1.3 * 0.5 / 0.8, rel=1e-9)
    # no foreground in gt -> 0 by convention
    assert weighted_f(pred, np.zeros_like(gt)) == 0.0


def test_s_measure_degenerate_gt():
    pred = np.linspace(0, 1, 30).reshape(5, 6)
    assert s_measure(pred, np.zeros((5, 6), bool)) == pytest.approx(1 - pred.mean())
    assert s_measure(pred, np.ones((5, 6), bool)) == pytest.approx(pred.mean())


def test_s_measure_perfect():
    _, gt = _structured_pair(5)
    assert s_measure(gt.astype(np.float64), gt) == pytest.approx(1.0, abs=1e-12)


def test_s_measure_hand_worked_with_matlab_rounding():
    # 4x2 image, gt = column 0 of rows 0-1; pred = 1, 0.5 there, 0 elsewhere.
    # Object: fg values [1, .5]: mean .75, std (n-1) = sqrt(.125);
    #   bg values 1 - 0 = 1 (6 px): 2*1/(1+1+0) = 1; u = 2/8.
    # Region: centroid (row .5, col 0) -> MATLAB round(.5 + 1) = 2 rows, round(0 + 1) = 1 col.
    #   top-left block (2x1): gt constant 1, pred varies -> SSIM numerator 0, denominator > 0
    #   -> 0; the other three blocks are all-zero in both maps -> 1; each weighs 2/8.
    gt = np.zeros((4, 2), bool)
    gt[:2, 0] = True
    pred = np.zeros((4, 2))
    pred[0, 0], pred[1, 0] = 1.0, 0.5
    o_fg = 2 * 0.75 / (0.75**2 + 1 + math.sqrt(0.125) + EPS)
    o_bg = 2 * 1.0 / (1 + 1 + 0 + EPS)
    s_object = 0.25 * o_fg + 0.75 * o_bg
    s_region = 0.25 * 0 + 0.75 * 1
    assert s_measure(pred, gt) == pytest.approx(0.5 * s_object + 0.5 * s_region, rel=1e-12)
    assert s_measure(pred, gt, alpha=1.0) == pytest.approx(s_object, rel=1e-12)


def test_s_measure_finite_when_centroid_split_leaves_empty_blocks():
    # gt = bottom row: the centroid split (row round(1 + 1) = 2 = H) leaves empty bottom
    # blocks, where the reference code yields NaN; we skip zero-area blocks.
    gt = np.array([[False, False], [True, True]])
    assert s_measure(gt.astype(np.float64), gt) == pytest.approx(1.0, abs=1e-12)


def test_e_measure_hand_worked():
    n = 6 * 7
    zeros = np.zeros((6, 7))
    # empty gt, empty pred: t = 0 predicts everything (score 0), t >= 1 predicts nothing and
    # every pixel counts: N / (N - 1)
    assert e_measure(zeros, zeros.astype(bool), reduction="max") == pytest.approx(n / (n - 1))
    assert e_measure(zeros, zeros.astype(bool)) == pytest.approx(255 / 256 * n / (n - 1))
    # complement of a binary gt: for t >= 1 every pixel is misaligned (score ~0, exactly
    # ((1 - 2a^2/(2a^2 + eps))^2 / 4 ~ 1e-32 per pixel); at t = 0 everything is predicted,
    # the demeaned prediction is 0, alignment 0, each pixel scores 1/4
    gt = np.zeros((6, 7), bool)
    gt[1:4, 2:6] = True
    t0 = n / 4 / (n - 1)
    assert e_measure(1.0 - gt, gt, reduction="max") == pytest.approx(t0, rel=1e-12)
    assert e_measure(1.0 - gt, gt) == pytest.approx(t0 / 256, rel=1e-12)
    # perfect binary prediction: t >= 1 aligned everywhere -> N / (N - 1)
    assert e_measure(gt.astype(np.float64), gt, reduction="max") == pytest.approx(n / (n - 1))
    assert e_measure(gt.astype(np.float64), gt) == pytest.approx((255 * n + n / 4) / 256 / (n - 1))


def _hce_scene():
    h, w = 80, 90
    rect = np.zeros((h, w), bool)
    rect[10:30, 10:30] = True  # the object, predicted exactly
    bar = np.zeros((h, w), bool)
    bar[50:53, 10:22] = True  # a thin (3 px) separate part of the object
    blob = np.zeros((h, w), bool)
    blob[10:22, 60:72] = True  # a 12x12 false positive far from everything
    return rect, bar, blob


def test_hce_hand_worked():
    rect, bar, blob = _hce_scene()
    gt = rect | bar
    assert hce(gt.astype(np.float64), gt) == 0.0
    # Missed thin bar: 3 px wide, so the union eroded 5 times loses it and only its skeleton
    # stays as a false negative; given here as a straight line, its contour is one run of
    # boundary pixels all next to background -> Douglas-Peucker keeps its 2 ends: 2 points.
    # (The rectangle's own skeleton lies inside the true positives and would add nothing.)
    line = np.zeros_like(gt)
    line[51, 11:21] = True
    assert hce(rect, gt, gt_ske=line) == 2.0
    # the default skimage skeleton of the bar also lies in the 3-row band (< epsilon = 2 px
    # from the chord), so it also costs 2 points
    assert hce(rect, gt) == 2.0
    # Extra 12x12 blob: it survives the erosion (2x2 core), regrows within itself, touches
    # neither TP nor FN -> an independent region: 1 click.
    assert hce(rect | blob, rect) == 1.0
    # both errors together: 2 + 1
    assert hce(rect | blob, gt) == 3.0


def test_dis_metrics_perfect_and_keys():
    _, gt = _structured_pair(6)
    out = dis_metrics(gt.astype(np.float64), gt)
    assert set(out) == {"max_f", "weighted_f", "mae", "s_measure", "e_measure_mean", "e_measure_max", "hce"}
    n = gt.size
    assert out["max_f"] == pytest.approx(1.0)
    assert out["weighted_f"] == pytest.approx(1.0)
    assert out["mae"] == 0.0
    assert out["s_measure"] == pytest.approx(1.0, abs=1e-12)
    assert out["e_measure_max"] == pytest.approx(n / (n - 1))
    assert out["hce"] == 0.0


def test_dis_validation():
    a = np.zeros((4, 4))
    with pytest.raises(ValueError, match="shape mismatch"):
        max_f(a, np.zeros((5, 4), bool))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        s_measure(a - 0.1, a > 0)
    with pytest.raises(ValueError, match="dtype"):
        mae(a.astype(np.int64), a > 0)
    with pytest.raises(ValueError, match="reduction"):
        e_measure(a, a > 0, reduction="median")
    with pytest.raises(ValueError, match="relax"):
        hce(a, a > 0, relax=-1)
    with pytest.raises(ValueError, match="shape mismatch"):
        hce(a, a > 0, gt_ske=np.zeros((3, 3), bool))


# --------------------------------------------------------------------------------------------
# DIS metrics against PySODMetrics (computed live)


def _pysod(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    sod = pytest.importorskip("py_sod_metrics")
    fm = sod.FmeasureV2(
        metric_handlers={"fm": sod.FmeasureHandler(with_dynamic=True, with_adaptive=False, beta=0.3)}
    )
    wfm, mae_, sm, em, hce_ = (
        sod.WeightedFmeasure(),
        sod.MAE(),
        sod.Smeasure(),
        sod.Emeasure(),
        sod.HumanCorrectionEffortMeasure(),
    )
    # normalize=False: pred is used as given (float in [0, 1]) and gt as a bool mask, which
    # is our convention (the default path would min-max stretch each prediction).
    for m in (fm, wfm, mae_, sm, em, hce_):
        m.step(pred, gt, normalize=False)
    curve = em.get_results()["em"]["curve"]
    return {
        "max_f": float(fm.get_results()["fm"]["dynamic"].max()),
        "weighted_f": float(wfm.get_results()["wfm"]),
        "mae": float(mae_.get_results()["mae"]),
        "s_measure": float(sm.get_results()["sm"]),
        "e_measure_mean": float(curve.mean()),
        "e_measure_max": float(curve.max()),
        "hce": float(hce_.get_results()["hce"]),
    }


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_dis_metrics_match_pysodmetrics(seed):
    pred, gt = _structured_pair(seed)
    # S-measure centroid rounding differs from PySODMetrics only at exact .5 (documented);
    # make sure these cases are not on it
    for coords in np.nonzero(gt):
        assert 2 * int(coords.sum()) % (2 * coords.size) != coords.size  # mean not k + 0.5
    ref = _pysod(pred, gt)
    ours = dis_metrics(pred, gt)
    # Both sides evaluate the same float64 formulas on the same 256 quantised thresholds;
    # only summation order differs (bincount/cumsum vs histogram, loop order), i.e. rounding
    # at ~1e-16 relative. 1e-12 leaves room for that and would catch any definitional
    # difference (a shifted threshold alone changes these values by > 1e-4). HCE is a count.
    for key in ("max_f", "weighted_f", "mae", "s_measure", "e_measure_mean", "e_measure_max"):
        assert ours[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-15), key
    assert ours["hce"] == ref["hce"]


def _hce_pair(seed: int, h: int = 160, w: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Binary gt with blobs, thin lines and holes; pred with blobs / strokes added and cut."""
    r = np.random.default_rng(seed)
    gt = np.zeros((h, w), np.uint8)
    for _ in range(3):
        cv2.ellipse(
            gt,
            (int(r.integers(20, w - 20)), int(r.integers(20, h - 20))),
            (int(r.integers(8, 45)), int(r.integers(8, 35))),
            float(r.uniform(0, 180)),
            0,
            360,
            255,
            -1,
        )
    for _ in range(4):
        cv2.line(
            gt,
            tuple(int(v) for v in r.integers(0, (w, h))),
            tuple(int(v) for v in r.integers(0, (w, h))),
            255,
            int(r.integers(1, 4)),
        )
    for _ in range(3):
        cv2.circle(
            gt, (int(r.integers(20, w - 20)), int(r.integers(20, h - 20))), int(r.integers(3, 10)), 0, -1
        )
    pred = gt.copy()
    for _ in range(8):
        cv2.circle(
            pred,
            (int(r.integers(0, w)), int(r.integers(0, h))),
            int(r.integers(4, 25)),
            int(r.choice([0, 255])),
            -1,
        )
    for _ in range(3):
        cv2.line(
            pred,
            tuple(int(v) for v in r.integers(0, (w, h))),
            tuple(int(v) for v in r.integers(0, (w, h))),
            int(r.choice([0, 255])),
            int(r.integers(1, 6)),
        )
    return pred.astype(np.float64) / 255.0, gt > 127


def test_hce_matches_pysodmetrics_on_structured_errors():
    sod = pytest.importorskip("py_sod_metrics")
    total = 0.0
    for seed in range(10):
        pred, gt = _hce_pair(seed)
        relax, epsilon = [(5, 2.0), (0, 2.0), (2, 1.0)][seed % 3]
        ref = sod.HumanCorrectionEffortMeasure(relax=relax, epsilon=epsilon)
        ref.step(pred, gt, normalize=False)
        ours = hce(pred, gt, relax=relax, epsilon=epsilon)
        assert ours == float(ref.get_results()["hce"]), seed  # integer counts: exact
        total += ours
    assert total > 50  # the cases exercise real boundaries, not just empty error maps
    # the hand-worked scene agrees too
    rect, bar, blob = _hce_scene()
    ref = sod.HumanCorrectionEffortMeasure()
    ref.step((rect | blob).astype(np.float64), rect | bar, normalize=False)
    assert float(ref.get_results()["hce"]) == 3.0
