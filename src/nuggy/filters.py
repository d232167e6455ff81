"""Image filters on arrays: box filter and guided filter (He et al.), used by every layer above.

Plain functions (keyword-only options, input never modified, float32 kept). The guided filter
(He, Sun & Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) fits, in every (2r+1)²
window, a linear model ``q = a·I + b`` of the source ``p`` on the guide ``I`` and averages the
models of all windows covering a pixel. The fast guided filter (He & Sun, "Fast Guided Filter",
arXiv:1505.00996, 2015) fits the models on a subsampled pair and applies the bilinearly
upsampled coefficients to the full-resolution guide.

:func:`guided_filter` runs OpenCV's ``cv2.ximgproc.guidedFilter`` where it computes the same
thing (full resolution, mirrored border, ``eps >= CV_MIN_EPS``: 3–6× faster than the NumPy
code at 1–2 MP). Our own implementation stays for what OpenCV cannot do: the fast subsampled
variant, He's reference border rule (means over the in-image part of each window,
``border="inside"``), and regularisers below ``CV_MIN_EPS``, where OpenCV's unclamped float32
3×3 inversion drifts from the exact solution in flat or grey windows (our LDLᵀ solve clamps its
pivots; see :func:`_solve_colour`).
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np

__all__ = ["MIN_EPS", "CV_MIN_EPS", "box_filter", "guided_filter"]

#: Smallest guided-filter ``eps``. The float32 window moments carry absolute errors of ~1e-8, so
#: a smaller regulariser only amplifies them; above it every intermediate (∝ 1/ε) stays finite.
MIN_EPS = 1e-12
#: Smallest ``eps`` (on 0..1 intensities) handed to OpenCV. From there on its result agrees with
#: the float64 reference within our float32 error budget on saturated photos (tests/test_refine.py,
#: tests/test_filters.py); at 1e-5 its unclamped float32 inverse of Σ + εI erred by 0.05 in
#: saturated windows and gave NaN in guided upsampling, so smaller regularisers use our solve.
CV_MIN_EPS = 1e-4


# --------------------------------------------------------------------------------------------
# Box filter
# --------------------------------------------------------------------------------------------


def _window_counts(n: int, radius: int, dtype: np.dtype) -> np.ndarray:
    """Number of in-image samples of a (2r+1) window centred on each of ``n`` positions."""
    i = np.arange(n)
    return (np.minimum(i + radius, n - 1) - np.maximum(i - radius, 0) + 1).astype(dtype)


def box_filter(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2·radius+1)² window around every pixel, clipped to the image.

    Border handling follows He et al.'s reference: near the border the mean is taken over the
    part of the window that lies inside the image (sum of in-image samples / their count), i.e.
    no padding values enter the result.

    Args:
        x: H×W or H×W×C array. float32/float64 are kept; float16 becomes float32; integer and
            bool inputs become float64 (as :func:`numpy.mean` does).
        radius: window radius ``r >= 0`` in pixels (``0`` returns a copy; radii beyond the
            image's size give the same result as ``max(H, W) - 1``).

    Returns:
        Array of the same shape as ``x``.
    """
    x = np.asarray(x)
    if x.ndim not in (2, 3):
        raise ValueError(f"box_filter expects an H×W or H×W×C array, got shape {x.shape}")
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be an integer >= 0, got {radius!r}")
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    elif x.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
            raise ValueError(f"box_filter expects a real numeric array, got dtype {x.dtype}")
        x = x.astype(np.float64)
    radius = int(radius)
    if radius == 0 or x.size == 0:
        return x.copy()
    h, w = x.shape[:2]
    # a window of radius max(h, w) - 1 already covers the whole image from every pixel: larger
    # radii give the same means, and OpenCV's cost (padding) would grow with the kernel
    radius = min(radius, max(h, w) - 1) or 1
    k = 2 * radius + 1
    src = np.ascontiguousarray(x)
    if x.ndim == 3 and x.shape[2] > 512:  # OpenCV's channel limit
        sums = np.stack([_box_sum(src[..., c], k) for c in range(x.shape[2])], axis=-1)
    else:
        sums = _box_sum(src, k)
    inv = 1.0 / (_window_counts(h, radius, np.float64)[:, None] * _window_counts(w, radius, np.float64))
    inv = inv.astype(x.dtype)
    if x.ndim == 3:
        inv = inv[..., None]
    sums *= inv
    return sums


def _box_sum(x: np.ndarray, k: int) -> np.ndarray:
    """Sum over k×k windows with zeros outside the image (OpenCV, double accumulation)."""
    out = cv2.boxFilter(x, -1, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return out.reshape(x.shape)  # OpenCV drops a trailing channel axis of length 1


# --------------------------------------------------------------------------------------------
# Guided filter
# --------------------------------------------------------------------------------------------


def _as_unit_float32(a: np.ndarray, name: str) -> np.ndarray:
    """uint8 → float32 / 255; floats → float32 (no copy when already float32)."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) * np.float32(1.0 / 255.0)
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32, copy=False)
    raise ValueError(f"{name} must be uint8 or floating point, got dtype {a.dtype}")


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Window-averaged linear coefficients (mean a, mean b) as an H×W×(C+1) float32 array.

    ``guide`` is H×W×C (C in {1, 3}) and ``src`` H×W, both float32 and roughly zero-mean (the
    caller centres them, which keeps the float32 variance ``E[I²] − E[I]²`` accurate). Every
    window's coefficients are finite for finite inputs and ``eps >= MIN_EPS`` (see
    :func:`_solve_colour` for the colour case).
    """
    c = guide.shape[2]
    p = src[..., None]
    if c == 1:
        stack = np.concatenate([guide, p, guide * p, guide * guide], axis=2)
        m = box_filter(stack, radius)
        m_i, m_p, m_ip, m_ii = m[..., 0], m[..., 1], m[..., 2], m[..., 3]
        # a variance is >= 0; float32 cancellation in flat windows can make it slightly negative
        var = np.maximum(m_ii - m_i * m_i, np.float32(0.0))
        var += np.float32(eps)
        a = (m_ip - m_i * m_p) / var
        b = m_p - a * m_i
        ab = np.stack([a, b], axis=2)
        return box_filter(ab, radius)

    r, g, bl = guide[..., 0], guide[..., 1], guide[..., 2]
    stack = np.stack(
        [r, g, bl, src, r * src, g * src, bl * src, r * r, r * g, r * bl, g * g, g * bl, bl * bl],
        axis=2,
    )
    m = box_filter(stack, radius)
    del stack
    p_range = float(src.max()) - float(src.min()) if src.size else 0.0
    return box_filter(_solve_colour(m, eps, p_range), radius)


def _solve_colour(m: np.ndarray, eps: float, p_range: float) -> np.ndarray:
    """Per-window coefficients ``(a_r, a_g, a_b, b)`` (float32 H×W×4) of the colour guided filter.

    ``m`` is the float32 H×W×13 stack of window means ``E[I] (3), E[p], E[I·p] (3)`` and the
    upper triangle of ``E[I·Iᵀ]`` (rr, rg, rb, gg, gb, bb); ``p_range`` bounds ``max p − min p``.

    ``a = (Σ + εI)⁻¹ cov(I, p)`` is solved by an LDLᵀ factorisation. For a covariance ``Σ``
    (positive semi-definite) every pivot of ``Σ + εI`` is ``>= ε``; float32 rounding of the
    moments can push a pivot of a (near-)singular ``Σ`` (flat, saturated or grey windows, where
    the colour channels are equal or constant) below that, so variances are clamped at 0 and
    pivots at ``ε``. The exact solution satisfies ``ε·|a|² <= var(p) <= p_range²/4``; a window
    whose computed ``a`` breaks that bound (by 4×) or is not finite gets the grey-guide solution
    (guide ``(R + G + B)/3``) instead.
    """
    mr, mg, mb, mp = m[..., 0], m[..., 1], m[..., 2], m[..., 3]
    cr = m[..., 4] - mr * mp
    cg = m[..., 5] - mg * mp
    cb = m[..., 6] - mb * mp
    e = np.float32(eps)
    zero = np.float32(0.0)
    s00 = np.maximum(m[..., 7] - mr * mr, zero)
    s00 += e
    s01 = m[..., 8] - mr * mg
    s02 = m[..., 9] - mr * mb
    s11 = np.maximum(m[..., 10] - mg * mg, zero)
    s11 += e
    s12 = m[..., 11] - mg * mb
    s22 = np.maximum(m[..., 12] - mb * mb, zero)
    s22 += e
    with np.errstate(over="ignore", invalid="ignore"):
        # Σ + εI = L·diag(s00, d1, d2)·Lᵀ; intermediates can overflow only for pathologically
        # tiny ε in windows that the bound check below hands to the grey solution
        l10 = s01 / s00
        l20 = s02 / s00
        d1 = np.maximum(s11 - l10 * s01, e)
        l21 = (s12 - l20 * s01) / d1
        d2 = np.maximum(s22 - l20 * s02 - l21 * l21 * d1, e)
        y1 = cg - l10 * cr
        y2 = cb - l20 * cr - l21 * y1
        ab = np.empty(mp.shape + (4,), np.float32)
        a2 = np.divide(y2, d2, out=ab[..., 2])
        a1 = np.divide(y1, d1, out=ab[..., 1])
        a1 -= l21 * a2
        a0 = np.divide(cr, s00, out=ab[..., 0])
        a0 -= l10 * a1
        a0 -= l20 * a2
        norm2 = a0 * a0 + a1 * a1 + a2 * a2
        bad = ~(norm2 <= np.float32(p_range * p_range / eps))  # also catches NaN / inf
    del l10, l20, l21, d1, d2, y1, y2, norm2
    if bad.any():
        ys, xs = np.nonzero(bad)
        sel = (ys, xs)
        sm = s01[sel] + s02[sel] + s12[sel]
        var_l = (s00[sel] + s11[sel] + s22[sel] - 3 * e + 2 * sm) / np.float32(9.0)
        var_l = np.maximum(var_l, zero) + e
        a_l = (cr[sel] + cg[sel] + cb[sel]) / (np.float32(3.0) * var_l)
        ab[ys, xs, :3] = (a_l / np.float32(3.0))[:, None]
    ab[..., 3] = mp - ab[..., 0] * mr - ab[..., 1] * mg - ab[..., 2] * mb
    return ab


def guided_filter(
    guide: np.ndarray,
    src: np.ndarray,
    *,
    radius: int,
    eps: float,
    subsample: int = 1,
    border: Literal["reflect", "inside"] = "reflect",
) -> np.ndarray:
    """Guided filter of ``src`` by ``guide`` (He et al. 2010/2013; fast variant: He & Sun 2015).

    Args:
        guide: H×W (grey) or H×W×3 (colour) guide; uint8 (divided by 255) or float in [0, 1].
        src: H×W source to filter, floating point (computed in float32).
        radius: window radius r >= 1 in full-resolution pixels.
        eps: regularisation (>= :data:`MIN_EPS`) on 0..1 intensities, i.e. a variance: edges
            whose local variance is well above ``eps`` are kept, flatter regions are smoothed.
        subsample: s >= 1. With s > 1 the coefficients are fitted on a copy of guide and source
            downsampled by s (area averaging) with radius ``max(1, round(r/s))``, then upsampled
            bilinearly and applied to the full-resolution guide (fast guided filter).
        border: ``reflect``: windows reaching past the image see it mirrored (edge pixel
            repeated, OpenCV's ``BORDER_REFLECT``; what ``cv2.ximgproc.guidedFilter`` does);
            ``inside``: He et al.'s reference rule, every mean is over the part of the window
            inside the image. The two differ only within ``2·radius`` of the border.

    Returns:
        float32 H×W filtered ``src``, finite for finite inputs (flat, saturated and grey guides
        included). Computation is in float32; the inputs are centred on their global means
        first, which keeps the variances accurate to ~1e-7 absolute.
    """
    guide = np.asarray(guide)
    src = np.asarray(src)
    if guide.ndim == 3 and guide.shape[2] == 1:
        guide = guide[..., 0]
    if not (guide.ndim == 2 or (guide.ndim == 3 and guide.shape[2] == 3)):
        raise ValueError(f"guide must be H×W or H×W×3, got shape {guide.shape}")
    if src.ndim != 2:
        raise ValueError(f"src must be H×W, got shape {src.shape}")
    if guide.shape[:2] != src.shape:
        raise ValueError(f"guide {guide.shape[:2]} and src {src.shape} differ in size")
    if not np.issubdtype(src.dtype, np.floating):
        raise ValueError(f"src must be floating point, got dtype {src.dtype}")
    if guide.dtype != np.uint8 and not np.issubdtype(guide.dtype, np.floating):
        raise ValueError(f"guide must be uint8 or floating point, got dtype {guide.dtype}")
    radius = _check_int(radius, "radius", 1)
    s = _check_int(subsample, "subsample", 1)
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.number)):
        raise ValueError(f"eps must be a number, got {eps!r}")
    if not (eps >= MIN_EPS and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= {MIN_EPS:g}, got {eps!r}")
    if border not in ("reflect", "inside"):
        raise ValueError(f"border must be 'reflect' or 'inside', got {border!r}")
    if src.size == 0:
        return np.zeros(src.shape, np.float32)
    # a window wider than the image sees all of it: larger radii act as max(H, W) - 1, so the
    # cost stays bounded by the image's size (OpenCV's box filter would pad by the radius)
    radius = max(1, min(radius, max(src.shape) - 1))
    if border == "reflect" and s == 1 and eps >= CV_MIN_EPS and hasattr(cv2, "ximgproc"):
        return _cv_guided(guide, src, radius, float(eps))
    if border == "reflect":
        return _reflected(guide, src, radius, float(eps), s)
    if guide.ndim == 2:
        guide = guide[..., None]
    c = guide.shape[2]
    h, w = src.shape

    if s == 1:
        g = _as_unit_float32(guide, "guide")
        p = src.astype(np.float32, copy=False)
        # centring: the guided filter is equivariant to constant shifts of guide and source
        g_mean = g.reshape(-1, c).mean(axis=0, dtype=np.float64).astype(np.float32)
        p_mean = np.float32(p.mean(dtype=np.float64))
        g = g - g_mean
        ab = _coefficients(g, p - p_mean, radius, float(eps))
        q = ab[..., c] + p_mean
        for k in range(c):
            q += ab[..., k] * g[..., k]
        return q

    # fast guided filter: fit on the subsampled pair, apply to the full-resolution guide
    hs, ws = max(1, -(-h // s)), max(1, -(-w // s))
    g_small = cv2.resize(np.ascontiguousarray(guide), (ws, hs), interpolation=cv2.INTER_AREA)
    g_small = _as_unit_float32(g_small.reshape(hs, ws, c), "guide")
    p_small = cv2.resize(src.astype(np.float32), (ws, hs), interpolation=cv2.INTER_AREA)
    g_mean = g_small.reshape(-1, c).mean(axis=0, dtype=np.float64).astype(np.float32)
    p_mean = np.float32(p_small.mean(dtype=np.float64))
    ab = _coefficients(g_small - g_mean, p_small - p_mean, max(1, round(radius / s)), float(eps))
    # fold the centring (and uint8 scaling) into the coefficients: q = sum_k a_k·guide_k + b
    ab[..., c] += p_mean - (ab[..., :c] * g_mean).sum(axis=2)
    if guide.dtype == np.uint8:
        ab[..., :c] *= np.float32(1.0 / 255.0)
    ab = cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, c + 1)
    q = ab[..., c].copy()
    for k in range(c):
        q += ab[..., k] * guide[..., k]
    return q


def _cv_guided(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """``cv2.ximgproc.guidedFilter`` on 0..255 units (guide uint8 or float·255, eps·255²).

    OpenCV's float path is accurate on 0..255 values; with a 0..1 float guide its results drifted
    by up to 0.4 on a 2 MP photo (measured), so floats are scaled to 0..255 first.
    """
    if guide.dtype == np.uint8:
        g = np.ascontiguousarray(guide)
    else:
        g = np.ascontiguousarray(guide, dtype=np.float32) * np.float32(255.0)
    p = src.astype(np.float32) * np.float32(255.0)
    q = cv2.ximgproc.guidedFilter(g, p, int(radius), eps * 255.0 * 255.0)
    q *= np.float32(1.0 / 255.0)
    if not np.isfinite(q).all():  # never seen at eps >= CV_MIN_EPS; the same filter, exactly
        return _reflected(guide, src, radius, eps, 1)
    return q


def _reflected(guide: np.ndarray, src: np.ndarray, radius: int, eps: float, s: int) -> np.ndarray:
    """Our filter with the mirrored border: the inside rule on the image padded by 2r (+ the
    subsampling footprint), which is all that reaches any pixel."""
    h, w = src.shape
    pad = min(2 * radius + 2 * s, max(h, w) - 1)
    gp = cv2.copyMakeBorder(np.ascontiguousarray(guide), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    gp = gp.reshape(h + 2 * pad, w + 2 * pad, *guide.shape[2:])
    sp = cv2.copyMakeBorder(src.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    q = guided_filter(gp, sp, radius=radius, eps=eps, subsample=s, border="inside")
    return np.ascontiguousarray(q[pad : pad + h, pad : pad + w])
