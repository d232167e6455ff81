"""A fast matting solver: local colour-line estimate, smoothed by the guided filter.

For every unknown pixel, the local foreground and background colours ``F`` and ``B`` are the
mean colours of the nearest known foreground / background pixels (normalised box filters at
growing radii, so each pixel takes the smallest neighbourhood that holds known samples). Alpha
is the least-squares solution of the compositing equation ``I = αF + (1 − α)B`` for that pair,
``α = (I − B)·(F − B) / |F − B|²``; where ``F`` and ``B`` are too alike for the projection to mean
anything it falls back to a prior (the segmentation's alpha, or a distance ramp between the
known regions). A guided filter with the photo as guide (He, Sun & Tang 2010/2013) then removes
the per-pixel noise along the photo's edges. Linear time, no linear system: the solver for
speed. Runs on crops of the band like the other solvers.
"""

from __future__ import annotations

import numpy as np

from .band import check_inputs, solve_in_band

__all__ = ["guided_alpha", "ramp_alpha", "local_colour"]

#: Box radii (pixels) tried in turn by :func:`local_colour`.
_RADII = (4, 16, 64, 256)


def ramp_alpha(trimap: np.ndarray) -> np.ndarray:
    """Distance ramp: ``d_bg / (d_bg + d_fg)`` where ``d_*`` is the distance to the nearest known
    background / foreground pixel (float32 H×W in [0, 1]; 1 on foreground, 0 on background)."""
    import cv2

    t = np.asarray(trimap)
    fg = t == 255
    bg = t == 0
    if not fg.any():
        return np.zeros(t.shape, np.float32)
    if not bg.any():
        return np.ones(t.shape, np.float32)
    d_fg = cv2.distanceTransform((~fg).view(np.uint8), cv2.DIST_L2, 5)
    d_bg = cv2.distanceTransform((~bg).view(np.uint8), cv2.DIST_L2, 5)
    return d_bg / np.maximum(d_bg + d_fg, np.float32(1e-6))


def local_colour(image: np.ndarray, mask: np.ndarray, radii: tuple[int, ...] = _RADII) -> np.ndarray:
    """Mean colour of the ``mask`` pixels near every pixel (float32 H×W×3).

    Each pixel takes the smallest radius in ``radii`` whose box holds a mask pixel; pixels with
    none within the largest radius get the mask's global mean colour.
    """
    import cv2

    m = mask.astype(np.float32)
    out = np.zeros(image.shape, np.float32)
    done = np.zeros(mask.shape, bool)
    for r in radii:
        k = (2 * r + 1, 2 * r + 1)
        den = cv2.blur(m, k)
        num = cv2.blur(image * m[..., None], k)
        ok = (den > 1e-3) & ~done
        out[ok] = num[ok] / den[ok][:, None]
        done |= ok
        if done.all():
            break
    if not done.all():
        out[~done] = image[mask].mean(axis=0) if mask.any() else 0.0
    return out


def guided_alpha(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    prior: np.ndarray | None = None,
    radius: int = 4,
    eps: float = 1e-4,
    min_contrast: float = 1e-3,
    margin: int = 32,
    max_tile_pixels: int = 2048 * 2048,
    overlap: int = 16,
) -> np.ndarray:
    """Fast alpha inside the unknown band (see the module docstring).

    Args:
        image: H×W×3 RGB, uint8 or float in [0, 1] (not modified).
        trimap: uint8 H×W, 0 / 128 / 255.
        prior: optional float H×W alpha in [0, 1] used where ``F`` and ``B`` are alike (e.g. the
            segmentation's alpha); default :func:`ramp_alpha`.
        radius, eps: guided-filter window radius (pixels) and regularisation (0..1 intensities).
        min_contrast: ``|F − B|²`` at which the colour estimate and the prior weigh the same.
        margin: known pixels around the band in each crop (the colour samples).
        max_tile_pixels, overlap: see :func:`nuggy.matting.band.solve_in_band`.

    Returns:
        float32 H×W alpha in [0, 1]; known pixels exactly 0 / 1.
    """
    from ..filters import guided_filter

    check_inputs(image, trimap)
    if prior is not None:
        prior = np.asarray(prior)
        if prior.shape != trimap.shape:
            raise ValueError(f"prior {prior.shape} does not match the trimap {trimap.shape}")
    # n2 / (n2 + min_contrast) is 0 / 0 where F = B (single-colour regions) unless it is > 0
    if (
        isinstance(min_contrast, bool)
        or not isinstance(min_contrast, (int, float, np.number))
        or not 0 < min_contrast < np.inf
    ):
        raise ValueError(f"min_contrast must be a finite number > 0, got {min_contrast!r}")

    def solve(img: np.ndarray, tri: np.ndarray, *, window, grid) -> np.ndarray:
        y0, y1, x0, x1 = window
        t8 = np.round(tri * 255).astype(np.uint8)
        known = t8 != 128
        target = (t8 == 255).astype(np.float32)
        g = img.astype(np.float32)
        f = local_colour(g, t8 == 255)
        b = local_colour(g, t8 == 0)
        f -= b  # F - B
        g_b = g - b
        n2 = np.einsum("ijk,ijk->ij", f, f)
        a = np.einsum("ijk,ijk->ij", g_b, f) / (n2 + np.float32(1e-6))
        del f, b, g_b
        np.clip(a, 0.0, 1.0, out=a)
        fallback = ramp_alpha(t8) if prior is None else np.clip(prior[y0:y1, x0:x1], 0, 1)
        c = n2 / (n2 + np.float32(min_contrast))
        a = c * a + (1 - c) * fallback.astype(np.float32)
        a[known] = target[known]
        a = guided_filter(g, a, radius=radius, eps=eps)
        return np.clip(a, 0.0, 1.0, out=a)

    return solve_in_band(
        image,
        trimap,
        solve,
        margin=margin,
        max_tile_pixels=max_tile_pixels,
        overlap=max(overlap, 2 * radius),
    )
