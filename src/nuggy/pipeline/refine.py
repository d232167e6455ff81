"""Edge refinement of a probability map with the guided filter.

The guided filter (He, Sun & Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) fits, in
every (2r+1)² window, a linear model ``q = a·I + b`` of the source ``p`` on the guide ``I`` and
averages the models of all windows covering a pixel. With the photo as guide, a blurry, low-res
probability map snaps to the photo's edges. The fast guided filter (He & Sun, "Fast Guided
Filter", arXiv:1505.00996, 2015) fits the models on a subsampled pair and applies the bilinearly
upsampled coefficients to the full-resolution guide.

:func:`refine_alpha` is the pipeline stage: it filters only a band around the subject's edge and
leaves the rest of the map bit-identical, so interiors keep no photo texture and crisp edges
elsewhere stay crisp.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "MIN_EPS",
    "box_filter",
    "guided_filter",
    "refine_alpha",
    "edge_weight",
    "default_refine_params",
]

#: Side of the model's input (U²-Net: 320); default radius/band scale with the upsampling factor.
MODEL_SIDE = 320
#: Pixels the fast variant aims to fit its coefficients on (auto ``subsample``).
_FAST_TARGET_PIXELS = 1_000_000
#: Probabilities in (u, 1 - u) are "uncertain": part of the edge band wherever they are.
_UNCERTAIN = 0.02
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
#: Smallest guided-filter ``eps``. The float32 window moments carry absolute errors of ~1e-8, so
#: a smaller regulariser only amplifies them; above it every intermediate (∝ 1/ε) stays finite.
MIN_EPS = 1e-12


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
    inv = 1.0 / (
        _window_counts(h, radius, np.float64)[:, None] * _window_counts(w, radius, np.float64)
    )
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
    if src.size == 0:
        return np.zeros(src.shape, np.float32)
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


# --------------------------------------------------------------------------------------------
# Pipeline stage
# --------------------------------------------------------------------------------------------


def default_refine_params(height: int, width: int) -> tuple[int, int]:
    """Default ``(radius, band)`` for an image of ``height``×``width`` pixels.

    Both scale with the upsampling factor ``f = sqrt(H·W) / 320`` from the model's input to the
    image: ``radius = max(2, round(4f))`` and ``band = max(1, round(f/2))``. The band is narrow
    on purpose: it extends the core of :func:`edge_weight` (the contour and the model's
    uncertain transition), and farther out the filter only adds the tails of its linear fits.
    On the alphamatting dev images with u2netp (f ≈ 2), SAD fell with narrower bands and with
    radii up to ~8f; eps 1e-4 was slightly better than 1e-3.
    """
    f = math.sqrt(height * width) / MODEL_SIDE
    radius = max(2, round(4.0 * f))
    band = max(1, round(0.5 * f))
    return radius, band


def _auto_subsample(height: int, width: int, radius: int) -> int:
    s = math.ceil(math.sqrt(height * width / _FAST_TARGET_PIXELS))
    return max(1, min(s, radius))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0, out=t)
    return t * t * (np.float32(3.0) - np.float32(2.0) * t)


def edge_weight(prob: np.ndarray, band: int) -> np.ndarray:
    """Blend weight in [0, 1] (float32 H×W) of the filtered map in :func:`refine_alpha`.

    The *core* of the edge is the pixels on either side of the 0.5 contour plus the uncertain
    pixels (``0.02 < p < 0.98``); the weight is 1 within ``band/2`` of the core and falls
    smoothly (smoothstep of the distance, a 3×3 chamfer approximation of the Euclidean one) to
    exactly 0 at distance ``band``, so it changes by at most ``3/band`` per pixel. For bands of
    8 pixels and more it is computed on ``prob`` area-downsampled by ``band // 4`` and upsampled
    bilinearly (the upsampled probability of a segmentation model is smooth at that scale).

    Args:
        prob: H×W floating probability map.
        band: reach of the band beyond the core, in pixels (>= 0; 0 gives all zeros).
    """
    prob = np.asarray(prob)
    if prob.ndim != 2 or not np.issubdtype(prob.dtype, np.floating):
        raise ValueError(f"prob must be a floating H×W array, got {prob.dtype} {prob.shape}")
    band = _check_int(band, "band", 0)
    h, w = prob.shape
    if prob.size == 0:
        return np.zeros((h, w), np.float32)
    k = max(1, band // 4)
    if k > 1:
        hs, ws = max(1, -(-h // k)), max(1, -(-w // k))
        p = cv2.resize(prob, (ws, hs), interpolation=cv2.INTER_AREA)
    else:
        p = prob
    lo = _UNCERTAIN
    core = cv2.morphologyEx((p > 0.5).view(np.uint8), cv2.MORPH_GRADIENT, _CROSS)
    core |= cv2.inRange(p, float(np.nextafter(np.float32(lo), np.float32(1))),
                        float(np.nextafter(np.float32(1 - lo), np.float32(0))))
    if band <= 0 or not cv2.countNonZero(core):
        return np.zeros((h, w), np.float32)
    # 3×3 chamfer approximation of the Euclidean distance (within ~8 %), Lipschitz ≤ 1
    dist = cv2.distanceTransform((core == 0).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_3)
    ramp = max(1.0, band / 2.0)
    # 1 for dist <= band - ramp, 0 for dist >= band
    dist *= np.float32(-k / ramp)
    dist += np.float32(band / ramp)
    wt = _smoothstep(dist)
    if k > 1:
        wt = cv2.resize(wt, (w, h), interpolation=cv2.INTER_LINEAR)
    return wt


def refine_alpha(
    image: np.ndarray,
    prob: np.ndarray,
    *,
    radius: int | None = None,
    eps: float = 1e-3,
    band: int | None = None,
    subsample: int | None = None,
) -> np.ndarray:
    """Refine the model's probability map near the subject's edge with the guided filter.

    The guided filter (photo as colour guide) runs only where :func:`edge_weight` is positive:
    on the pixels either side of the 0.5 contour and the uncertain ones (0.02 < p < 0.98),
    and up to ``band`` pixels beyond them; its result is blended in with that weight, so the
    map changes smoothly across the band's border and pixels outside the band are returned
    bit-identical.

    Args:
        image: uint8 H×W×3 RGB photo (or float in [0, 1]).
        prob: H×W probability map in [0, 1] (the model's upsampled output), floating point.
        radius: filter radius in pixels; ``None`` scales with the image
            (:func:`default_refine_params`).
        eps: guided-filter regularisation on 0..1 intensities.
        band: how far in pixels the band reaches beyond the contour and the uncertain pixels
            (weight 1 up to ``band/2``, 0 from ``band``); ``None`` scales with the image.
        subsample: fast-guided-filter factor; ``None`` picks it so the coefficients are fitted
            on about a megapixel (1 for images up to 1 MP, 4 at 12 MP), never above ``radius``.

    Returns:
        float32 H×W alpha in [0, 1].
    """
    image = np.asarray(image)
    prob = np.asarray(prob)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3, got shape {image.shape}")
    if prob.ndim != 2 or prob.shape != image.shape[:2]:
        raise ValueError(f"prob must be H×W like the image {image.shape[:2]}, got {prob.shape}")
    if not np.issubdtype(prob.dtype, np.floating):
        raise ValueError(f"prob must be floating point, got dtype {prob.dtype}")
    h, w = prob.shape
    d_radius, d_band = default_refine_params(h, w)
    radius = d_radius if radius is None else _check_int(radius, "radius", 1)
    band = d_band if band is None else _check_int(band, "band", 0)
    if subsample is None:
        s = _auto_subsample(h, w, radius)
    else:
        s = _check_int(subsample, "subsample", 1)
    out = prob.astype(np.float32)  # always a copy
    if out.size == 0:
        return out
    lo, hi = float(out.min()), float(out.max())
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        raise ValueError(f"prob must lie in [0, 1], got range [{lo}, {hi}]")

    weight = edge_weight(out, band)
    rows = np.flatnonzero(weight.any(axis=1))
    if rows.size == 0:
        return out
    cols = np.flatnonzero(weight.any(axis=0))
    # the result at a pixel depends on guide/source within 2r (two box filters), plus the
    # subsampling footprint of the fast variant
    m = 2 * radius + 2 * s + 2
    y0, y1 = max(0, rows[0] - m), min(h, rows[-1] + 1 + m)
    x0, x1 = max(0, cols[0] - m), min(w, cols[-1] + 1 + m)

    p = out[y0:y1, x0:x1]
    q = guided_filter(image[y0:y1, x0:x1], p, radius=radius, eps=eps, subsample=s)
    wc = weight[y0:y1, x0:x1]
    q -= p
    q *= wc
    q += p
    np.clip(q, 0.0, 1.0, out=q)
    out[y0:y1, x0:x1] = np.where(wc > 0, q, p)
    return out
