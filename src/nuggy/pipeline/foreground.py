"""Foreground colour estimation (colour decontamination) for a known alpha matte.

Where alpha is fractional a pixel mixes the subject's colour with the background's,
``I = αF + (1−α)B``; compositing ``I`` itself onto a new background keeps a fringe of the old
one. These estimators recover ``F``:

* ``"ml"``: multi-level foreground estimation (Germer, Uelwer, Conrad & Harmeling,
  "Fast Multi-Level Foreground Estimation", ICPR 2020). For every pixel, F and B minimise
  ``(αF + (1−α)B − I)²`` plus a smoothness term ``Σ_neighbours (ε + w|Δα|)(|ΔF|² + |ΔB|²)``;
  the 2×2 per-pixel systems are relaxed Gauss–Seidel style on a pyramid from 1×1 up to full
  size. Our solver only visits pixels near fractional alpha (a band of ``margin`` pixels around
  them, and its footprint on every coarser level); elsewhere ``F = I``, the solution wherever
  α = 1. The band's 4-neighbour ring is held fixed at the coarser level's values.
* ``"blur"``: blur-fusion (Forte & Pitié, "Approximate Fast Foreground Colour Estimation",
  ICIP 2021): two rounds of alpha-weighted local means of F and B, then the per-pixel correction
  ``F = F̄ + α(I − αF̄ − (1−α)B̄)``.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np

from nuggy.filters import box_filter

__all__ = ["estimate_foreground", "estimate_foreground_ml", "estimate_foreground_blur"]

#: Alpha within this distance of 0 or 1 counts as opaque/transparent (no solve needed).
_ALPHA_TOL = 1e-3


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _check_inputs(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``image`` (uint8 or float) and ``alpha`` as C-contiguous float32."""
    image = np.asarray(image)
    alpha = np.asarray(alpha)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3, got shape {image.shape}")
    if alpha.ndim != 2 or alpha.shape != image.shape[:2]:
        raise ValueError(f"alpha must be H×W like the image {image.shape[:2]}, got {alpha.shape}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image must be uint8 or floating point in [0, 1], got {image.dtype}")
    if not np.issubdtype(alpha.dtype, np.floating):
        raise ValueError(f"alpha must be floating point in [0, 1], got dtype {alpha.dtype}")
    if alpha.size:
        lo, hi = float(alpha.min()), float(alpha.max())
        if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
            raise ValueError(f"alpha must lie in [0, 1], got range [{lo}, {hi}]")
    return image, np.ascontiguousarray(alpha, dtype=np.float32)


def _to_unit_float32(image: np.ndarray) -> np.ndarray:
    """float32 copy in [0, 1] (uint8 / 255, floats clipped)."""
    if image.dtype == np.uint8:
        return np.multiply(image, np.float32(1.0 / 255.0), dtype=np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _gather_unit(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``image[ys, xs]`` as float32 N×3 in [0, 1]."""
    px = image[ys, xs]
    if image.dtype == np.uint8:
        return np.multiply(px, np.float32(1.0 / 255.0), dtype=np.float32)
    return np.clip(px, 0.0, 1.0).astype(np.float32)


def _fractional(alpha32: np.ndarray) -> np.ndarray:
    """uint8 mask (0/255) of pixels whose alpha is neither (almost) 0 nor (almost) 1."""
    lo = float(np.nextafter(np.float32(_ALPHA_TOL), np.float32(1.0)))
    hi = float(np.nextafter(np.float32(1.0 - _ALPHA_TOL), np.float32(0.0)))
    return cv2.inRange(alpha32, lo, hi)


def _nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (int32) of the non-zero pixels of a uint8 mask, in raster order."""
    pts = cv2.findNonZero(mask)
    if pts is None:
        empty = np.zeros(0, np.int32)
        return empty, empty
    pts = pts.reshape(-1, 2)
    return pts[:, 1].copy(), pts[:, 0].copy()


def _index_map(shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """int32 map of each stored pixel's position in (ys, xs); -1 elsewhere."""
    idx = np.full(shape, -1, np.int32)
    idx[ys, xs] = np.arange(ys.size, dtype=np.int32)
    return idx


# --------------------------------------------------------------------------------------------
# numba kernels (compiled on first use, cached on disk; importing nuggy does not import numba)
# --------------------------------------------------------------------------------------------

_KERNELS: dict[str, object] = {}


def _kernels() -> dict[str, object]:
    if _KERNELS:
        return _KERNELS
    from numba import njit

    @njit(cache=True, nogil=True)
    def solve_level(ys, xs, active, idx, alpha, image, fg, bg, reg, grad_w, n_iter):
        """Gauss–Seidel sweeps, in raster order, of the per-pixel 2×2 systems (active pixels)."""
        h, w = idx.shape
        n = ys.shape[0]
        for _ in range(n_iter):
            for k in range(n):
                if not active[k]:
                    continue
                y = ys[k]
                x = xs[k]
                a0 = np.float64(alpha[k])
                a1 = 1.0 - a0
                m00 = a0 * a0
                m01 = a0 * a1
                m11 = a1 * a1
                f0 = a0 * image[k, 0]
                f1 = a0 * image[k, 1]
                f2 = a0 * image[k, 2]
                b0 = a1 * image[k, 0]
                b1 = a1 * image[k, 1]
                b2 = a1 * image[k, 2]
                for d in range(4):
                    if d == 0:
                        j = idx[y, max(x - 1, 0)]
                    elif d == 1:
                        j = idx[y, min(x + 1, w - 1)]
                    elif d == 2:
                        j = idx[max(y - 1, 0), x]
                    else:
                        j = idx[min(y + 1, h - 1), x]
                    da = reg + grad_w * abs(a0 - alpha[j])
                    m00 += da
                    m11 += da
                    f0 += da * fg[j, 0]
                    f1 += da * fg[j, 1]
                    f2 += da * fg[j, 2]
                    b0 += da * bg[j, 0]
                    b1 += da * bg[j, 1]
                    b2 += da * bg[j, 2]
                inv = 1.0 / (m00 * m11 - m01 * m01)
                i00 = m11 * inv
                i01 = -m01 * inv
                i11 = m00 * inv
                fg[k, 0] = min(max(i00 * f0 + i01 * b0, 0.0), 1.0)
                fg[k, 1] = min(max(i00 * f1 + i01 * b1, 0.0), 1.0)
                fg[k, 2] = min(max(i00 * f2 + i01 * b2, 0.0), 1.0)
                bg[k, 0] = min(max(i01 * f0 + i11 * b0, 0.0), 1.0)
                bg[k, 1] = min(max(i01 * f1 + i11 * b1, 0.0), 1.0)
                bg[k, 2] = min(max(i01 * f2 + i11 * b2, 0.0), 1.0)

    @njit(cache=True, nogil=True)
    def sparse_box_mean(ys_q, xs_q, ys_p, xs_p, idx_p, vals, radius):
        """Mean of ``vals`` (given at the pixels ys_p, xs_p) over the in-image (2r+1)² window
        of each query pixel, separably: row sums at every stored pixel, then column sums.
        Every in-image window pixel of a query must be stored, and so must the row windows
        of the pixels up to r rows above and below it."""
        h, w = idx_p.shape
        c = vals.shape[1]
        rows = np.zeros(vals.shape, np.float64)
        for k in range(ys_p.shape[0]):
            y = ys_p[k]
            for xx in range(max(xs_p[k] - radius, 0), min(xs_p[k] + radius + 1, w)):
                j = idx_p[y, xx]
                if j >= 0:
                    for ch in range(c):
                        rows[k, ch] += vals[j, ch]
        out = np.empty((ys_q.shape[0], c), np.float32)
        acc = np.zeros(c, np.float64)
        for k in range(ys_q.shape[0]):
            x = xs_q[k]
            y_lo = max(ys_q[k] - radius, 0)
            y_hi = min(ys_q[k] + radius + 1, h)
            n = (y_hi - y_lo) * (min(x + radius + 1, w) - max(x - radius, 0))
            acc[:] = 0.0
            for yy in range(y_lo, y_hi):
                j = idx_p[yy, x]
                for ch in range(c):
                    acc[ch] += rows[j, ch]
            for ch in range(c):
                out[k, ch] = acc[ch] / n
        return out

    @njit(cache=True, nogil=True)
    def bilinear_at(grid, ys, xs, factor):
        """Sample an h×w×C ``grid`` of ``factor``×``factor`` block means at full-size pixels."""
        gh, gw, c = grid.shape
        n = ys.shape[0]
        out = np.empty((n, c), np.float32)
        for k in range(n):
            v = min(max((ys[k] + 0.5) / factor - 0.5, 0.0), gh - 1.0)
            u = min(max((xs[k] + 0.5) / factor - 0.5, 0.0), gw - 1.0)
            v0 = int(v)
            u0 = int(u)
            v1 = min(v0 + 1, gh - 1)
            u1 = min(u0 + 1, gw - 1)
            fv = v - v0
            fu = u - u0
            for ch in range(c):
                top = grid[v0, u0, ch] * (1.0 - fu) + grid[v0, u1, ch] * fu
                bot = grid[v1, u0, ch] * (1.0 - fu) + grid[v1, u1, ch] * fu
                out[k, ch] = top * (1.0 - fv) + bot * fv
        return out

    @njit(cache=True, nogil=True)
    def block_means(image, alpha, y0, x0, hc, wc, factor, scale):
        """Means of α, I and αI (7 channels) over factor×factor blocks of a crop."""
        hs = (hc + factor - 1) // factor
        ws = (wc + factor - 1) // factor
        acc = np.zeros((hs, ws, 7), np.float64)
        cnt = np.zeros((hs, ws), np.float64)
        for y in range(hc):
            by = y // factor
            for x in range(wc):
                bx = x // factor
                a = np.float64(alpha[y0 + y, x0 + x])
                acc[by, bx, 0] += a
                for ch in range(3):
                    v = min(max(image[y0 + y, x0 + x, ch] * scale, 0.0), 1.0)
                    acc[by, bx, 1 + ch] += v
                    acc[by, bx, 4 + ch] += a * v
                cnt[by, bx] += 1.0
        out = np.empty((hs, ws, 7), np.float32)
        for by in range(hs):
            for bx in range(ws):
                for ch in range(7):
                    out[by, bx, ch] = acc[by, bx, ch] / cnt[by, bx]
        return out

    _KERNELS["bilinear_at"] = bilinear_at
    _KERNELS["block_means"] = block_means
    _KERNELS["solve_level"] = solve_level
    _KERNELS["sparse_box_mean"] = sparse_box_mean
    return _KERNELS


# --------------------------------------------------------------------------------------------
# Multi-level estimation
# --------------------------------------------------------------------------------------------


def _level_sizes(h: int, w: int) -> list[tuple[int, int]]:
    """Pyramid sizes from 1×1 to h×w: level i of n is ``round(h^(i/n)) × round(w^(i/n))``."""
    n = math.ceil(math.log2(max(h, w))) if max(h, w) > 1 else 0
    if n == 0:
        return [(h, w)]
    return [(max(1, round(h ** (i / n))), max(1, round(w ** (i / n)))) for i in range(n + 1)]


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def estimate_foreground_ml(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    regularization: float = 1e-5,
    gradient_weight: float = 1.0,
    n_small_iterations: int = 10,
    n_big_iterations: int = 2,
    small_size: int = 32,
    margin: int = 4,
    return_background: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Multi-level foreground estimation (Germer et al. 2020), solved only near fractional alpha.

    Args:
        image: H×W×3 RGB, uint8 or float in [0, 1].
        alpha: H×W floating alpha in [0, 1].
        regularization: ε > 0, smoothness weight of F and B everywhere (keeps every 2×2
            system invertible).
        gradient_weight: extra smoothness where alpha changes, ``w|Δα|``.
        n_small_iterations: sweeps on levels no larger than ``small_size`` in both sides.
        n_big_iterations: sweeps on larger levels.
        small_size: see ``n_small_iterations``.
        margin: pixels (full resolution) around fractional alpha (0.001 < α < 0.999) that are
            solved as well; beyond them F = image. Larger values follow a whole-image solve
            more closely (mean |ΔF| to pymatting ≲ 1e-3 at the default 4).
        return_background: also return the estimated background colour (solved in the band;
            the image elsewhere).

    Returns:
        F, float32 H×W×3 in [0, 1] (and B, same form, when ``return_background``).
    """
    image, alpha32 = _check_inputs(image, alpha)
    margin = _check_count(margin, "margin", 0)
    n_small_iterations = _check_count(n_small_iterations, "n_small_iterations", 0)
    n_big_iterations = _check_count(n_big_iterations, "n_big_iterations", 0)
    small_size = _check_count(small_size, "small_size", 0)
    regularization, gradient_weight = float(regularization), float(gradient_weight)
    if not (regularization > 0 and math.isfinite(regularization)):
        raise ValueError(f"regularization must be a finite number > 0, got {regularization}")
    if not (gradient_weight >= 0 and math.isfinite(gradient_weight)):
        raise ValueError(f"gradient_weight must be a finite number >= 0, got {gradient_weight}")
    h0, w0 = alpha32.shape
    fg_out = _to_unit_float32(image)
    bg_out = fg_out.copy() if return_background else None
    frac = _fractional(alpha32) if alpha32.size else None
    if frac is None or not cv2.countNonZero(frac):
        return (fg_out, bg_out) if return_background else fg_out

    solve = _kernels()["solve_level"]
    sizes = _level_sizes(h0, w0)

    # Stored pixels per level, finest to coarsest: the active band plus its 4-neighbour ring,
    # which is held at the coarser level's values. A coarser level's band is the footprint
    # of the finer level's stored pixels, so every stored pixel has a stored parent.
    margin = min(margin, max(h0, w0))  # a larger band cannot cover more
    if margin:
        ker = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * margin + 1, 2 * margin + 1))
        act_mask = cv2.dilate(frac, ker)
    else:
        act_mask = frac
    levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for lev in range(len(sizes) - 1, -1, -1):
        h, w = sizes[lev]
        ys, xs = _nonzero(cv2.dilate(act_mask, _CROSS))
        levels.append((ys, xs, act_mask[ys, xs] > 0))
        if lev:
            hp, wp = sizes[lev - 1]
            act_mask = np.zeros((hp, wp), np.uint8)
            act_mask[(ys.astype(np.int64) * hp) // h, (xs.astype(np.int64) * wp) // w] = 1
    levels.reverse()

    # the 1×1 level starts at the mean opaque / transparent colours
    step = max(1, int(math.sqrt(h0 * w0 / 1e6)))
    a_s = alpha32[::step, ::step]
    i_s = image[::step, ::step]
    fg_mean = _mean_colour(i_s, a_s > 0.9)
    bg_mean = _mean_colour(i_s, a_s < 0.1)

    prev = None
    for lev, (h, w) in enumerate(sizes):
        ys, xs, active = levels[lev]
        sy = (ys.astype(np.int64) * h0) // h  # nearest-neighbour sampling of the full image
        sx = (xs.astype(np.int64) * w0) // w
        a_c = alpha32[sy, sx]
        i_c = _gather_unit(image, sy, sx)
        idx = _index_map((h, w), ys, xs)
        if prev is None:
            fg = np.empty((ys.size, 3), np.float32)
            bg = np.empty((ys.size, 3), np.float32)
            fg[:] = fg_mean
            bg[:] = bg_mean
        else:
            p_idx, p_fg, p_bg, (hp, wp) = prev
            j = p_idx[(ys.astype(np.int64) * hp) // h, (xs.astype(np.int64) * wp) // w]
            fg = p_fg[j]
            bg = p_bg[j]
        n_iter = n_small_iterations if (h <= small_size and w <= small_size) else n_big_iterations
        solve(ys, xs, active, idx, a_c, i_c, fg, bg, regularization, gradient_weight, n_iter)
        prev = (idx, fg, bg, (h, w))

    ys, xs, active = levels[-1]
    _, fg, bg, _ = prev
    ya, xa = ys[active], xs[active]
    fg_out[ya, xa] = fg[active]
    if return_background:
        bg_out[ya, xa] = bg[active]
        return fg_out, bg_out
    return fg_out


def _mean_colour(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean colour (float32, 0..1) of the masked pixels; 0 where the mask is empty."""
    m = mask.view(np.uint8)
    if not cv2.countNonZero(m):
        return np.zeros(3, np.float32)
    mean = np.array(cv2.mean(np.ascontiguousarray(image), mask=m)[:3])
    return (mean / 255.0 if image.dtype == np.uint8 else mean).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Blur fusion
# --------------------------------------------------------------------------------------------


def _fuse(fbar: np.ndarray, bbar: np.ndarray, a: np.ndarray, img: np.ndarray) -> np.ndarray:
    """``clip(F̄ + α(I − αF̄ − (1−α)B̄), 0, 1)``; ``a`` broadcasts against the colours."""
    f = fbar + a * (img - a * fbar - (1.0 - a) * bbar)
    return np.clip(f, 0.0, 1.0, out=f)


def estimate_foreground_blur(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    radii: tuple[int, ...] = (45, 3),
    downsample: int | None = None,
) -> np.ndarray:
    """Blur-fusion foreground estimate (Forte & Pitié 2021), one round per radius.

    Each round takes alpha-weighted local means (box filters of radius r) of the current F
    and B, ``F̄ = mean(αF)/mean(α)`` and ``B̄ = mean((1−α)B)/mean(1−α)``, and sets
    ``F = clip(F̄ + α(I − αF̄ − (1−α)B̄), 0, 1)``, ``B = B̄``; F = B = I at the start. The
    default radii (45, 3) are the paper's box sizes 90 and 6. The first round runs on
    ``downsample``² block means of α, I and αI (default ``max(1, radii[0] // 8)``; its box means
    are smooth at that scale) and is sampled bilinearly; later rounds are evaluated exactly,
    only at the pixels that reach fractional alpha. F = image wherever alpha is (almost) 0 or 1.

    Args:
        image: H×W×3 RGB, uint8 or float in [0, 1].
        alpha: H×W floating alpha in [0, 1].
        radii: box-filter radii of the successive rounds (each >= 1).
        downsample: factor of the first round (1 = exact, slower).

    Returns:
        F, float32 H×W×3 in [0, 1].
    """
    image, alpha32 = _check_inputs(image, alpha)
    radii = tuple(_check_count(r, "radius", 1) for r in radii)
    if not radii:
        raise ValueError("radii must not be empty")
    k = max(1, radii[0] // 8) if downsample is None else _check_count(downsample, "downsample", 1)
    out = _to_unit_float32(image)
    frac = _fractional(alpha32) if alpha32.size else None
    if frac is None or not cv2.countNonZero(frac):
        return out
    h, w = alpha32.shape
    rows = np.flatnonzero(frac.any(axis=1))
    cols = np.flatnonzero(frac.any(axis=0))
    m = sum(radii) + 2 * k  # every window the result depends on lies inside the crop
    y0, y1 = max(0, rows[0] - m), min(h, rows[-1] + 1 + m)
    x0, x1 = max(0, cols[0] - m), min(w, cols[-1] + 1 + m)
    hc, wc = y1 - y0, x1 - x0
    img = out[y0:y1, x0:x1]
    a = alpha32[y0:y1, x0:x1]
    frac = frac[y0:y1, x0:x1]

    # pixels each round must be evaluated at: the fractional ones, grown by the later radii
    reach = [sum(radii[i + 1 :]) for i in range(len(radii))]
    sets = []
    for r in reach:
        grown = frac if r == 0 else cv2.dilate(frac, np.ones((2 * r + 1, 2 * r + 1), np.uint8))
        sets.append(_nonzero(grown))

    # round 1 (F = B = I): dense, on block means of the crop
    if k > 1:
        scale = 1.0 / 255.0 if image.dtype == np.uint8 else 1.0
        small = _kernels()["block_means"](image, alpha32, y0, x0, hc, wc, k, scale)
        r0 = max(1, round(radii[0] / k))
    else:
        small, r0 = np.dstack([a, img, img * a[..., None]]), radii[0]
    mean = box_filter(small, r0)
    ma, mi, mai = mean[..., :1], mean[..., 1:4], mean[..., 4:7]
    fb = np.concatenate([mai / (ma + 1e-5), (mi - mai) / (1.0 - ma + 1e-5)], axis=2)
    ys, xs = sets[0]
    if k > 1:
        fb = _kernels()["bilinear_at"](np.ascontiguousarray(fb, np.float32), ys, xs, float(k))
    else:
        fb = fb[ys, xs]
    a_q = a[ys, xs][:, None]
    fg = _fuse(fb[:, :3], fb[:, 3:], a_q, img[ys, xs])
    bg = fb[:, 3:]

    # later rounds: exact window means over the previous round's pixels
    for i in range(1, len(radii)):
        idx = _index_map((hc, wc), ys, xs)
        vals = np.concatenate([a_q, fg * a_q, bg * (1.0 - a_q)], axis=1).astype(np.float32)
        yq, xq = sets[i]
        mean = _kernels()["sparse_box_mean"](yq, xq, ys, xs, idx, vals, radii[i])
        ys, xs = yq, xq
        ma = mean[:, :1]
        fbar = mean[:, 1:4] / (ma + 1e-5)
        bbar = mean[:, 4:7] / (1.0 - ma + 1e-5)
        a_q = a[ys, xs][:, None]
        fg = _fuse(fbar, bbar, a_q, img[ys, xs])
        bg = bbar
    img[ys, xs] = fg  # a view into ``out``
    return out


# --------------------------------------------------------------------------------------------
# Pipeline stage
# --------------------------------------------------------------------------------------------


def estimate_foreground(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    method: Literal["ml", "blur"] = "ml",
    **options: object,
) -> np.ndarray:
    """Foreground colour F with ``image ≈ αF + (1−α)B``, free of background bleed.

    Args:
        image: H×W×3 RGB, uint8 or float in [0, 1].
        alpha: H×W floating alpha in [0, 1].
        method: ``"ml"`` (multi-level, :func:`estimate_foreground_ml`) or ``"blur"``
            (blur fusion, :func:`estimate_foreground_blur`, faster, a little less exact).
        **options: keyword options of the chosen estimator.

    Returns:
        F, float32 H×W×3 in [0, 1]; equal to the image (scaled to [0, 1]) wherever alpha is
        0 or 1 away from fractional alpha.
    """
    if "return_background" in options:
        raise ValueError("estimate_foreground returns F only; for B call estimate_foreground_ml")
    if method == "ml":
        return estimate_foreground_ml(image, alpha, **options)  # type: ignore[arg-type]
    if method == "blur":
        return estimate_foreground_blur(image, alpha, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown foreground method {method!r}; choose 'ml' or 'blur'")
