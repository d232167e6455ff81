"""A cheap matting solver: the guided filter of a trimap-constrained alpha.

Start from an initial alpha in the unknown band (the segmentation's own alpha when given,
otherwise a ramp between the nearest known background and foreground pixels), then repeat:
guided filter with the photo as guide (He, Sun & Tang, 2010/2013: a local linear model of alpha
on colour, which snaps the ramp to the photo's edges), clip to [0, 1] and reset the known
pixels. Linear time, no linear system; runs on crops of the band like the other solvers.
"""

from __future__ import annotations

import numpy as np

from .band import check_inputs, solve_in_band

__all__ = ["guided_alpha", "ramp_alpha"]


def ramp_alpha(trimap: np.ndarray) -> np.ndarray:
    """Initial alpha: ``d_bg / (d_bg + d_fg)`` in the unknown region, where ``d_*`` is the
    distance to the nearest known background / foreground pixel (float32 H×W in [0, 1])."""
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


def guided_alpha(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    prior: np.ndarray | None = None,
    radius: int = 8,
    eps: float = 1e-3,
    iterations: int = 3,
    max_tile_pixels: int = 1024 * 1024,
    overlap: int | None = None,
) -> np.ndarray:
    """Guided-filter alpha inside the unknown band.

    Args:
        image: H×W×3 RGB, uint8 or float in [0, 1] (not modified).
        trimap: uint8 H×W, 0 / 128 / 255.
        prior: optional float H×W initial alpha in [0, 1] (e.g. the segmentation's alpha);
            default :func:`ramp_alpha`.
        radius, eps: guided-filter window radius (pixels) and regularisation (0..1 intensities).
        iterations: filter / constrain rounds.
        max_tile_pixels, overlap: see :func:`nuggy.matting.band.solve_in_band` (overlap defaults
            to ``2 × radius × iterations``, the filter's reach).

    Returns:
        float32 H×W alpha in [0, 1]; known pixels exactly 0 / 1.
    """
    from ..pipeline.refine import guided_filter

    check_inputs(image, trimap)
    if prior is not None:
        prior = np.asarray(prior)
        if prior.shape != trimap.shape:
            raise ValueError(f"prior {prior.shape} does not match the trimap {trimap.shape}")
    reach = 2 * radius * max(1, iterations)

    def solve(img: np.ndarray, tri: np.ndarray, *, window, grid) -> np.ndarray:
        y0, y1, x0, x1 = window
        t8 = np.round(tri * 255).astype(np.uint8)
        known = t8 != 128
        target = (t8 == 255).astype(np.float32)
        if prior is None:
            a = ramp_alpha(t8)
        else:
            a = np.clip(prior[y0:y1, x0:x1], 0, 1).astype(np.float32)
        a[known] = target[known]
        g = img.astype(np.float32)
        for _ in range(max(1, iterations)):
            a = guided_filter(g, a, radius=radius, eps=eps)
            np.clip(a, 0.0, 1.0, out=a)
            a[known] = target[known]
        return a

    return solve_in_band(
        image,
        trimap,
        solve,
        margin=reach,
        max_tile_pixels=max_tile_pixels,
        overlap=reach if overlap is None else overlap,
    )
