"""Quality metrics for alpha mattes and dichotomous (binary) segmentation.

Matting metrics follow the Composition-1k evaluation code (Xu et al., *Deep Image Matting*,
CVPR 2017; the MATLAB scripts ``compute_{sad,mse,gradient,connectivity}_*``), which in turn
implement the alphamatting.com definitions (Rhemann et al., CVPR 2009):

* :func:`sad`, :func:`mse`, :func:`grad`, :func:`conn`, and :func:`matting_metrics`.

DIS metrics follow the DIS benchmark (Qin et al., ECCV 2022) as computed by the
salient-object-detection toolboxes (the MATLAB originals and their Python port PySODMetrics)
and by the DIS repository's ``hce_metric_main.py``. Their ground truth is binarised at
``gt > 128`` (8-bit), as PySODMetrics' ``prepare_data`` does; a float ground truth at
``> 128/255`` (the same pixels when it was read from an 8-bit file):

* :func:`max_f`, :func:`weighted_f`, :func:`mae`, :func:`s_measure`, :func:`e_measure`,
  :func:`hce`, and :func:`dis_metrics`.

:func:`iou` (intersection over union of both maps thresholded at 0.5) measures whether the
right subject was found, whole; the evaluation protocol (:mod:`nuggy.eval.protocol`) counts
an image with a low IoU as a failure.

Inputs are single-channel ``H×W`` maps. Alpha / probability maps may be floating point in
``[0, 1]``, ``uint8`` in ``0..255`` (divided by 255) or ``bool`` (0 / 1); float values
within 1e-6 outside ``[0, 1]`` (rounding noise) are clipped, anything further raises
``ValueError``. Inputs are never modified; all arithmetic is done in float64.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from scipy import ndimage

__all__ = [
    "sad",
    "mse",
    "grad",
    "conn",
    "matting_metrics",
    "max_f",
    "weighted_f",
    "mae",
    "s_measure",
    "e_measure",
    "hce",
    "dis_metrics",
    "iou",
]

# MATLAB's ``eps``; the SOD reference code adds it to denominators.
_EPS = float(np.spacing(1.0))
# Float maps may overshoot [0, 1] by this much (filter / float32 rounding); they are clipped.
_RANGE_TOL = 1e-6
# 3×3 cross, i.e. ``skimage.morphology.disk(1)``.
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# input handling


def _as_map(x: np.ndarray, name: str) -> np.ndarray:
    """Return ``x`` as a new float64 ``H×W`` array in ``[0, 1]``; validate dtype and range."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be a single-channel H×W array, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    if x.dtype == np.bool_:
        return x.astype(np.float64)
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be float in [0, 1], uint8 in 0..255 or bool, got dtype {x.dtype}")
    out = x.astype(np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = float(out.min()), float(out.max())
    if lo < -_RANGE_TOL or hi > 1.0 + _RANGE_TOL:
        raise ValueError(f"{name} values must lie in [0, 1], got range [{lo:.9g}, {hi:.9g}]")
    if lo < 0.0 or hi > 1.0:  # rounding noise of filters / float32 models
        np.clip(out, 0.0, 1.0, out=out)
    return out


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = _as_map(pred, "pred")
    g = _as_map(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: pred {p.shape} vs gt {g.shape}")
    return p, g


def _region(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Validate a region mask (bool ``H×W``); ``None`` means the whole image."""
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise ValueError(
            "mask must be a bool numpy array (e.g. trimap == 128), got "
            f"{getattr(mask, 'dtype', type(mask).__name__)}"
        )
    if mask.shape != shape:
        raise ValueError(f"shape mismatch: mask {mask.shape} vs pred {shape}")
    return mask


def _region_sum(err: np.ndarray, mask: np.ndarray | None) -> float:
    return float(err.sum() if mask is None else err[mask].sum())


#: DIS ground truth cut: ``gt > 128`` on 8-bit maps, as PySODMetrics' ``prepare_data`` and
#: the DIS evaluation code; float maps use the same cut on the 0..1 scale (``> 128/255``), so a
#: float map read from an 8-bit PNG (``gt / 255``) binarises exactly as the PNG does.
GT_THRESHOLD_8BIT = 128


def _binarise_gt(gt: np.ndarray) -> np.ndarray:
    """The ground truth as bool: uint8 ``> 128``, float ``> 128/255``, bool as is."""
    if isinstance(gt, np.ndarray) and gt.dtype == np.uint8:
        return gt > GT_THRESHOLD_8BIT
    return _as_map(gt, "gt") > GT_THRESHOLD_8BIT / 255.0


def _binary_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pred as float64 in [0, 1] and gt binarised as :func:`_binarise_gt` (``> 128``)."""
    p, _ = _pair(pred, gt)
    return p, _binarise_gt(gt)


# ---------------------------------------------------------------------------------------------
# matting metrics (Composition-1k)


def sad(pred: np.ndarray, gt: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Sum of absolute differences, ``Σ |pred − gt| / 1000`` over the region.

    Args:
        pred, gt: alpha mattes, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        mask: bool ``H×W`` region to score (e.g. ``trimap == 128``); ``None`` = whole image.

    Returns:
        SAD in thousands of alpha units (``≥ 0``), as in Composition-1k.
    """
    p, g = _pair(pred, gt)
    m = _region(mask, p.shape)
    return _region_sum(np.abs(p - g), m) / 1000.0


def mse(pred: np.ndarray, gt: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Mean squared error ×1000: ``1000 · Σ_region (pred − gt)² / |region|``.

    The mean is over the *region's* pixels (the Composition-1k code divides the masked sum
    by the number of ``trimap == 128`` pixels), then scaled by 1000 as papers report it.

    Args:
        pred, gt: alpha mattes, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        mask: bool ``H×W`` region to score; ``None`` = whole image.

    Returns:
        MSE ×1000 (``≥ 0``); ``nan`` when the region is empty (0 / 0, as the reference).
    """
    p, g = _pair(pred, gt)
    m = _region(mask, p.shape)
    n = p.size if m is None else int(np.count_nonzero(m))
    if n == 0:
        return float("nan")
    return 1000.0 * _region_sum((p - g) ** 2, m) / n


def _dog_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """1-D factors of the Composition-1k derivative-of-Gaussian kernel.

    The 2-D kernel is ``hx[i, j] = G(u_i) · G'(u_j)`` with ``u = −h..h``,
    ``h = ceil(σ · sqrt(−2 ln(sqrt(2π) σ ε)))``, ``ε = 0.01`` (``h = 4`` for σ = 1.4),
    ``G(x) = exp(−x²/2σ²)/(σ sqrt(2π))``, ``G'(x) = −x G(x)/σ²``, divided by its L2 norm.
    It is separable, and its L2 norm is ``‖G‖·‖G'‖``; so return both factors normalised.
    """
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * 0.01))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * np.sqrt(2.0 * np.pi))
    dgauss = -u * gauss / sigma**2
    return gauss / np.linalg.norm(gauss), dgauss / np.linalg.norm(dgauss)


def _gradient_magnitude(img: np.ndarray, sigma: float) -> np.ndarray:
    smooth, deriv = _dog_kernels(sigma)
    # MATLAB imfilter(..., 'replicate', 'conv'): a convolution with replicated borders.
    # cv2 filters by correlation, so the kernels are flipped.
    smooth, deriv = smooth[::-1].copy(), deriv[::-1].copy()
    border = cv2.BORDER_REPLICATE
    gx = cv2.sepFilter2D(img, cv2.CV_64F, deriv, smooth, borderType=border)  # d/dx (columns)
    gy = cv2.sepFilter2D(img, cv2.CV_64F, smooth, deriv, borderType=border)  # d/dy (rows)
    np.multiply(gx, gx, out=gx)
    gx += gy * gy
    return np.sqrt(gx, out=gx)


def grad(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    sigma: float = 1.4,
) -> float:
    """Gradient error: ``Σ_region (‖∇_σ pred‖ − ‖∇_σ gt‖)² / 1000``.

    ``∇_σ`` is the first-order derivative-of-Gaussian filter pair of the Composition-1k code
    (``gaussgradient.m``: kernel half-size from ``ε = 0.01``, i.e. 9×9 for σ = 1.4,
    L2-normalised, convolution with replicated borders). Filtering runs on the whole image;
    only the sum is restricted to ``mask``. Unlike the MATLAB script, maps are *not*
    min-max stretched (``mat2gray``) first; that is the same whenever both maps span
    ``[0, 1]`` (as Composition-1k mattes do).

    Args:
        pred, gt: alpha mattes, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        mask: bool ``H×W`` region to score; ``None`` = whole image.
        sigma: Gaussian standard deviation in pixels, in ``(0, 39.89)`` (the reference's
            kernel-size formula is undefined beyond).

    Returns:
        Gradient error / 1000 (``≥ 0``).
    """
    # the reference's kernel-size formula needs sqrt(2π)·σ·0.01 < 1
    if not 0 < sigma < 1.0 / (np.sqrt(2.0 * np.pi) * 0.01):
        raise ValueError(f"sigma must be in (0, 39.89), got {sigma}")
    p, g = _pair(pred, gt)
    m = _region(mask, p.shape)
    diff = _gradient_magnitude(p, sigma) - _gradient_magnitude(g, sigma)
    return _region_sum(diff * diff, m) / 1000.0


def _thresholds(step: float) -> np.ndarray:
    """``0:step:1`` as MATLAB's colon, each value rounded to the nearest decimal double."""
    n = int(np.floor(1.0 / step + 1e-9))
    return np.round(np.arange(n + 1) * step, 12)


def _largest_component(binary: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of ``binary`` (all False if none).

    Ties go to the component met first in column-major order, as MATLAB's
    ``bwconncomp`` + ``max`` pick it.
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.view(np.uint8), connectivity=4, ltype=cv2.CV_32S
    )
    if n <= 1:
        return np.zeros(binary.shape, dtype=bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    best = np.flatnonzero(areas == areas.max()) + 1
    if best.size > 1:
        left = stats[best, cv2.CC_STAT_LEFT]
        best = best[left == left.min()]  # first column-major pixel lies in the leftmost column
        if best.size > 1:
            col = labels[:, int(stats[best[0], cv2.CC_STAT_LEFT])]
            first_row = [int(np.argmax(col == lab)) for lab in best]
            best = best[[int(np.argmin(first_row))]]
    return labels == best[0]


def conn(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    step: float = 0.1,
) -> float:
    """Connectivity error (Rhemann et al. 2009) as in Composition-1k's MATLAB code.

    For each threshold ``t_i`` in ``0:step:1`` (from the second on), ``Ω_i`` is the largest
    4-connected component of ``(pred ≥ t_i) & (gt ≥ t_i)``. A pixel's level ``l`` is
    ``t_{i−1}`` for the first ``i`` at which it is outside ``Ω_i`` (``1`` if never). With
    ``d = α − l`` and ``φ = 1 − d·[d ≥ 0.15]`` for both maps, the error is
    ``Σ_region |φ_pred − φ_gt| / 1000``. Components are found on the whole image; only the
    sum is restricted to ``mask``. Thresholds are exact decimals (0.6, not 0.6000000000000001).

    Args:
        pred, gt: alpha mattes, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        mask: bool ``H×W`` region to score; ``None`` = whole image.
        step: threshold step in ``(0, 1]``.

    Returns:
        Connectivity error / 1000 (``≥ 0``).
    """
    if not 0.0 < step <= 1.0:
        raise ValueError(f"step must be in (0, 1], got {step}")
    p, g = _pair(pred, gt)
    m = _region(mask, p.shape)
    ts = _thresholds(step)
    level = np.ones(p.shape, dtype=np.float64)
    assigned = np.zeros(p.shape, dtype=bool)
    both = np.minimum(p, g)  # pred >= t and gt >= t  <=>  min(pred, gt) >= t
    for i in range(1, ts.size):
        omega = _largest_component(both >= ts[i])
        newly = ~omega
        newly &= ~assigned
        level[newly] = ts[i - 1]
        assigned |= newly
        if assigned.all():
            break

    def phi(alpha: np.ndarray) -> np.ndarray:
        d = alpha - level
        d[d < 0.15] = 0.0
        return np.subtract(1.0, d, out=d)

    err = phi(p)
    err -= phi(g)
    return _region_sum(np.abs(err, out=err), m) / 1000.0


def matting_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    trimap: np.ndarray | None = None,
    region: Literal["whole", "unknown"] = "whole",
) -> dict[str, float]:
    """SAD, MSE, Grad and Conn of one matte (Composition-1k definitions and scales).

    Args:
        pred, gt: alpha mattes, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        trimap: ``uint8`` ``H×W`` with values in ``{0, 128, 255}``; required for
            ``region="unknown"``, validated whenever given.
        region: ``"whole"`` scores every pixel; ``"unknown"`` only ``trimap == 128``.

    Returns:
        ``{"sad", "mse", "grad", "conn"}`` as returned by :func:`sad`, :func:`mse`,
        :func:`grad` and :func:`conn`.
    """
    if region not in ("whole", "unknown"):
        raise ValueError(f"region must be 'whole' or 'unknown', got {region!r}")
    p, g = _pair(pred, gt)
    mask = None
    if trimap is not None:
        if not isinstance(trimap, np.ndarray) or trimap.dtype != np.uint8:
            raise ValueError(f"trimap must be a uint8 array, got {getattr(trimap, 'dtype', type(trimap))}")
        if trimap.shape != p.shape:
            raise ValueError(f"shape mismatch: trimap {trimap.shape} vs pred {p.shape}")
        bad = np.setdiff1d(np.unique(trimap), [0, 128, 255])
        if bad.size:
            raise ValueError(f"trimap values must be 0, 128 or 255, found {bad[:5].tolist()}")
        if region == "unknown":
            mask = trimap == 128
    elif region == "unknown":
        raise ValueError("region='unknown' needs a trimap")
    return {
        "sad": sad(p, g, mask=mask),
        "mse": mse(p, g, mask=mask),
        "grad": grad(p, g, mask=mask),
        "conn": conn(p, g, mask=mask),
    }


# ---------------------------------------------------------------------------------------------
# DIS / salient-object metrics


def _confusion_curves(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True / false positives at thresholds ``t = 0..255`` of ``floor(255·pred) ≥ t``.

    Returns ``(tp, fp)``, int64 arrays of length 256 indexed by ``t``.
    """
    q = (p * 255.0).astype(np.uint8)  # floor, as the reference toolboxes quantise
    fg_hist = np.bincount(q[g], minlength=256)
    bg_hist = np.bincount(q[~g], minlength=256)
    tp = np.cumsum(fg_hist[::-1])[::-1]
    fp = np.cumsum(bg_hist[::-1])[::-1]
    return tp, fp


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def max_f(pred: np.ndarray, gt: np.ndarray, *, beta2: float = 0.3) -> float:
    """Maximum F-measure over the 256 thresholds of ``floor(255·pred)``.

    ``F_t = (1 + β²) P_t R_t / (β² P_t + R_t)`` with ``P_t``, ``R_t`` of
    ``floor(255·pred) ≥ t`` against ``gt > 128`` (8-bit), ``t = 0..255``; 0/0 counts as 0.

    Args:
        pred: probability map, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        gt: ground truth, ``H×W``, same dtypes, binarised at ``> 128`` (8-bit; floats ``> 128/255``).
        beta2: ``β²`` (``> 0``), 0.3 in the DIS / SOD literature.

    Returns:
        maxFβ in ``[0, 1]``.
    """
    if not beta2 > 0:
        raise ValueError(f"beta2 must be > 0, got {beta2}")
    p, g = _binary_pair(pred, gt)
    tp, fp = _confusion_curves(p, g)
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, np.count_nonzero(g))
    f = _safe_div((1.0 + beta2) * precision * recall, beta2 * precision + recall)
    return float(f.max())


def _matlab_gaussian(size: int, sigma: float) -> np.ndarray:
    """``fspecial('gaussian', size, sigma)``."""
    r = (size - 1) / 2.0
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0.0
    return h / h.sum()


def weighted_f(pred: np.ndarray, gt: np.ndarray, *, beta2: float = 1.0) -> float:
    """Weighted F-measure ``F^w_β`` (Margolin et al., CVPR 2014).

    Errors ``E = |pred − gt|``; background pixels take the error of their nearest foreground
    pixel before a 7×7 Gaussian (σ = 5, zero padding) smooths them (pixel dependency);
    foreground errors become ``min(E, smoothed E)``; background errors are weighted by
    ``2 − 0.5^{d/5}`` with ``d`` the distance to the foreground (pixel importance). Then
    ``R = 1 − mean_fg(E_w)``, ``P = TP_w / (TP_w + FP_w)`` and
    ``F = (1 + β²) R P / (R + β² P)``. Returns 0 when ``gt`` has no foreground.

    Args:
        pred: probability map, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        gt: ground truth, ``H×W``, same dtypes, binarised at ``> 128`` (8-bit; floats ``> 128/255``).
        beta2: ``β²`` (``> 0``), 1 by convention.

    Returns:
        ``F^w_β`` in ``[0, 1]``.
    """
    if not beta2 > 0:
        raise ValueError(f"beta2 must be > 0, got {beta2}")
    p, g = _binary_pair(pred, gt)
    if not g.any():
        return 0.0
    dist, (iy, ix) = ndimage.distance_transform_edt(~g, return_indices=True)
    err = np.abs(p - g)
    err_nearest = err[iy, ix]  # foreground pixels are their own nearest foreground pixel
    smoothed = ndimage.correlate(err_nearest, _matlab_gaussian(7, 5.0), mode="constant")
    err_min = np.where(g & (smoothed < err), smoothed, err)
    weight = np.where(g, 1.0, 2.0 - np.exp(np.log(0.5) / 5.0 * dist))
    err_w = err_min * weight
    fg_err = err_w[g]
    tp_w = np.count_nonzero(g) - fg_err.sum()
    fp_w = err_w[~g].sum()
    recall = 1.0 - fg_err.mean()
    precision = tp_w / (tp_w + fp_w + _EPS)
    return float((1.0 + beta2) * recall * precision / (recall + beta2 * precision + _EPS))


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error ``mean |pred − gt|``, ``gt`` binarised at ``> 128`` (8-bit).

    Args:
        pred: probability map, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        gt: ground truth, ``H×W``, same dtypes.

    Returns:
        MAE in ``[0, 1]``.
    """
    p, g = _binary_pair(pred, gt)
    return float(np.abs(p - g).mean())


def _object_similarity(x: np.ndarray) -> float:
    mean = x.mean()
    std = x.std(ddof=1) if x.size > 1 else 0.0
    return 2.0 * mean / (mean * mean + 1.0 + std + _EPS)


def _block_ssim(p: np.ndarray, g: np.ndarray) -> float:
    n = p.size
    mx, my = p.mean(), g.mean()
    dx, dy = p - mx, g - my
    vx = (dx * dx).sum() / (n - 1 + _EPS)
    vy = (dy * dy).sum() / (n - 1 + _EPS)
    cxy = (dx * dy).sum() / (n - 1 + _EPS)
    num = 4.0 * mx * my * cxy
    den = (mx * mx + my * my) * (vx + vy)
    if num != 0:
        return num / (den + _EPS)
    return 1.0 if den == 0 else 0.0


def s_measure(pred: np.ndarray, gt: np.ndarray, *, alpha: float = 0.5) -> float:
    """Structure measure ``S_α = α S_object + (1 − α) S_region`` (Fan et al., ICCV 2017).

    Follows the authors' MATLAB code: ``1 − mean(pred)`` for an empty ``gt``,
    ``mean(pred)`` for a full one; the region term splits both maps at the ``gt`` centroid
    rounded half away from zero (MATLAB ``round``; PySODMetrics rounds half to even, which
    differs only when a centroid coordinate is exactly ``k + 0.5``) and weights each block's
    SSIM by its area. Blocks of zero area are skipped (the reference yields NaN there).
    The result is clipped at 0.

    Args:
        pred: probability map, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        gt: ground truth, ``H×W``, same dtypes, binarised at ``> 128`` (8-bit; floats ``> 128/255``).
        alpha: weight of the object term, in ``[0, 1]``.

    Returns:
        ``S_α`` in ``[0, 1]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    p, g = _binary_pair(pred, gt)
    fg_ratio = g.mean()
    if fg_ratio == 0:
        return float(1.0 - p.mean())
    if fg_ratio == 1:
        return float(p.mean())

    s_object = fg_ratio * _object_similarity(p[g]) + (1.0 - fg_ratio) * _object_similarity(1.0 - p[~g])

    h, w = g.shape
    n = int(np.count_nonzero(g))
    rows, cols = np.nonzero(g)
    # 1-based MATLAB centroid round(mean + 1), half away from zero, in exact integer maths:
    # floor(S/n + 1.5) == (2S + 3n) // (2n). It is also the size of the top / left blocks.
    cy = (2 * int(rows.sum()) + 3 * n) // (2 * n)
    cx = (2 * int(cols.sum()) + 3 * n) // (2 * n)
    s_region = 0.0
    for ys in (slice(0, cy), slice(cy, h)):
        for xs in (slice(0, cx), slice(cx, w)):
            pb, gb = p[ys, xs], g[ys, xs]
            if pb.size:
                s_region += pb.size / (h * w) * _block_ssim(pb, gb.astype(np.float64))
    return float(max(0.0, alpha * s_object + (1.0 - alpha) * s_region))


def _e_curve(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Enhanced-alignment measure at the thresholds ``t = 0..255`` of ``floor(255·pred)``."""
    size = g.size
    n_fg = int(np.count_nonzero(g))
    tp, fp = _confusion_curves(p, g)
    pred_fg = tp + fp
    if n_fg == 0:
        total = (size - pred_fg).astype(np.float64)
    elif n_fg == size:
        total = pred_fg.astype(np.float64)
    else:
        mu_p = pred_fg / size
        mu_g = n_fg / size
        fn = n_fg - tp
        tn = size - pred_fg - fn
        total = np.zeros(256)
        # (count, demeaned pred value, demeaned gt value) of the four binary combinations
        for count, a, b in (
            (tp, 1.0 - mu_p, 1.0 - mu_g),
            (fp, 1.0 - mu_p, -mu_g),
            (fn, -mu_p, 1.0 - mu_g),
            (tn, -mu_p, -mu_g),
        ):
            align = 2.0 * a * b / (a * a + b * b + _EPS)
            total += (align + 1.0) ** 2 / 4.0 * count
    return total / (size - 1 + _EPS)


def e_measure(pred: np.ndarray, gt: np.ndarray, *, reduction: Literal["mean", "max"] = "mean") -> float:
    """Enhanced-alignment measure ``E_φ`` (Fan et al., IJCAI 2018), over thresholds.

    ``E_φ`` of the binary map ``floor(255·pred) ≥ t`` is computed for ``t = 0..255`` (as
    PySODMetrics' ``Emeasure`` curve); ``reduction="mean"`` gives the mean E-measure
    ``E^m_φ`` reported by DIS, ``"max"`` the maximum ``E^x_φ``. The reference divides by
    ``H·W − 1``, so a perfect map scores ``H·W / (H·W − 1)`` at its best thresholds.

    Args:
        pred: probability map, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        gt: ground truth, ``H×W``, same dtypes, binarised at ``> 128`` (8-bit; floats ``> 128/255``).
        reduction: ``"mean"`` or ``"max"`` over the 256 thresholds.

    Returns:
        ``E_φ`` (about ``[0, 1]``).
    """
    if reduction not in ("mean", "max"):
        raise ValueError(f"reduction must be 'mean' or 'max', got {reduction!r}")
    curve = _e_curve(*_binary_pair(pred, gt))
    return float(curve.mean() if reduction == "mean" else curve.max())


def _edit_effort(region: np.ndarray, condition: np.ndarray, epsilon: float) -> tuple[int, int]:
    """Polygon control points and independent components needed to fix ``region``.

    Boundary pixels of ``region`` (``cv2.findContours``, all contours, no compression) that
    touch ``condition`` (within a 4-neighbourhood) and have not been seen on an earlier
    contour form runs; each run is simplified with Douglas–Peucker (``epsilon``, open
    curve) and its vertices counted. Components (8-connected) with no such boundary pixel
    count one each.
    """
    if not region.any():
        return 0, 0
    touch = cv2.dilate(condition.view(np.uint8), _CROSS).astype(bool)
    contours, _ = cv2.findContours(region.view(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_NONE)
    n_comp, labels = cv2.connectedComponents(region.view(np.uint8), connectivity=8)
    w = region.shape[1]
    if not contours:
        return 0, n_comp - 1
    pts = [c.reshape(-1, 2) for c in contours]  # (x, y)
    allpts = np.concatenate(pts)
    lin = allpts[:, 1].astype(np.int64) * w + allpts[:, 0]
    first = np.zeros(lin.size, dtype=bool)
    first[np.unique(lin, return_index=True)[1]] = True
    usable = touch[allpts[:, 1], allpts[:, 0]] & first
    corrected = np.unique(labels[allpts[usable, 1], allpts[usable, 0]])
    independent = (n_comp - 1) - corrected.size

    points = 0
    start = 0
    for c in pts:
        ok = usable[start : start + len(c)]
        start += len(c)
        if not ok.any():
            continue
        edges = np.diff(np.concatenate(([0], ok.view(np.int8), [0])))
        runs = [c[a:b] for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]
        if len(runs) > 1 and np.abs(runs[0][0] - runs[-1][-1]).max() == 1:
            # the contour is closed: a run touching the start continues the last one
            runs[-1] = np.concatenate((runs[-1], runs[0][::-1]))
            runs.pop(0)
        for run in runs:
            poly = cv2.approxPolyDP(np.ascontiguousarray(run, dtype=np.int32)[:, None, :], epsilon, False)
            points += len(poly)
    return points, independent


def hce(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    gt_ske: np.ndarray | None = None,
    relax: int = 5,
    epsilon: float = 2.0,
) -> float:
    """Human correction efforts ``HCE_γ`` (Qin et al., ECCV 2022), as ``hce_metric_main.py``.

    The prediction is binarised at ``> 0.5``, the ground truth at ``> 128`` (8-bit). False
    positives / negatives are relaxed: only the parts reachable within ``relax`` constrained 4-neighbour dilations from the union
    eroded ``relax`` times are kept (thin errors along true edges are forgiven), and
    skeleton pixels of ``gt`` outside the true positives are always kept as false negatives.
    The effort is the number of Douglas–Peucker (``epsilon``) vertices along the error
    boundaries that touch the rest of the object (FP: touching TP or FN; FN: touching
    background), plus one per error component that touches nothing (a click deletes it).

    Args:
        pred: probability map, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        gt: ground truth, ``H×W``, same dtypes, binarised at ``> 128`` (8-bit; floats ``> 128/255``).
        gt_ske: optional skeleton of ``gt`` (``H×W``, same dtypes, binarised as ``gt``);
            default ``skimage.morphology.skeletonize(gt)``.
        relax: number of erosion / dilation steps (``≥ 0``), γ = 5 in DIS.
        epsilon: Douglas–Peucker tolerance in pixels (``≥ 0``).

    Returns:
        The number of edits (an integer, as float).
    """
    if int(relax) != relax or relax < 0:
        raise ValueError(f"relax must be a non-negative integer, got {relax}")
    if not epsilon >= 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    p, g = _binary_pair(pred, gt)
    p = p > 0.5
    if gt_ske is None:
        try:
            from skimage.morphology import skeletonize
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "hce() needs scikit-image for the default gt skeleton "
                "(pip install scikit-image), or pass gt_ske"
            ) from exc
        ske = skeletonize(g)
    else:
        ske = _binarise_gt(gt_ske)
        if ske.shape != g.shape:
            raise ValueError(f"shape mismatch: gt_ske {ske.shape} vs gt {g.shape}")

    tp = g & p
    fp = p & ~g
    fn = g & ~p
    union = (g | p).view(np.uint8)
    core = cv2.erode(union, _CROSS, iterations=int(relax)).astype(bool)

    fp_r = fp & core
    for _ in range(int(relax)):
        fp_r = cv2.dilate(fp_r.view(np.uint8), _CROSS).astype(bool) & ~g
    fp_r &= fp

    fn_r = fn & core
    for _ in range(int(relax)):
        fn_r = cv2.dilate(fn_r.view(np.uint8), _CROSS).astype(bool) & ~p
    fn_r &= fn
    fn_r |= ske & ~tp

    fp_points, fp_indep = _edit_effort(fp_r, tp | fn_r, epsilon)
    fn_points, fn_indep = _edit_effort(fn_r, ~(tp | fp_r | fn_r), epsilon)
    return float(fp_points + fp_indep + fn_points + fn_indep)


def iou(pred: np.ndarray, gt: np.ndarray, *, threshold: float = 0.5) -> float:
    """Intersection over union of ``pred ≥ threshold`` and ``gt ≥ threshold``.

    Args:
        pred, gt: ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        threshold: in ``(0, 1]``; 0.5 by convention.

    Returns:
        IoU in ``[0, 1]``; 1.0 when both masks are empty (nothing to find, nothing found).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    p, g = _pair(pred, gt)
    pm, gm = p >= threshold, g >= threshold
    union = int(np.count_nonzero(pm | gm))
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pm & gm) / union)


def dis_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """All DIS metrics of one prediction, with the DIS settings.

    Args:
        pred: probability map, ``H×W``; float in ``[0, 1]``, ``uint8`` (``/255``) or bool.
        gt: ground truth, ``H×W``, same dtypes, binarised at ``> 128`` (8-bit; floats ``> 128/255``).

    Returns:
        ``{"max_f"`` (β² = 0.3), ``"weighted_f"`` (β² = 1), ``"mae"``, ``"s_measure"``
        (α = 0.5), ``"e_measure_mean"``, ``"e_measure_max"``, ``"hce"`` (γ = 5, ε = 2)``}``.
    """
    p, g = _binary_pair(pred, gt)
    curve = _e_curve(p, g)
    return {
        "max_f": max_f(p, g),
        "weighted_f": weighted_f(p, g),
        "mae": mae(p, g),
        "s_measure": s_measure(p, g),
        "e_measure_mean": float(curve.mean()),
        "e_measure_max": float(curve.max()),
        "hce": hce(p, g),
    }
