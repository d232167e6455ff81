"""Closed-form matting (Levin, Lischinski & Weiss, "A Closed-Form Solution to Natural Image
Matting", TPAMI 2008), solved with pymatting only inside the trimap's unknown band.

The matting Laplacian couples pixels within ``2·radius`` of each other, so crops that keep
``2·radius + 1`` known pixels around the unknown region give exactly the full image's linear
system; see :mod:`nuggy.matting.band`.
"""

from __future__ import annotations

import numpy as np

from .band import check_inputs, solve_in_band

__all__ = ["closed_form_alpha"]


def closed_form_alpha(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    epsilon: float = 1e-7,
    radius: int = 1,
    rtol: float = 1e-7,
    maxiter: int = 10000,
    max_tile_pixels: int = 1024 * 1024,
    overlap: int = 32,
    max_unknown: int | None = None,
) -> np.ndarray:
    """Closed-form alpha inside the unknown band.

    Args:
        image: H×W×3 RGB, uint8 or float in [0, 1] (not modified).
        trimap: uint8 H×W, 0 (background) / 128 (unknown) / 255 (foreground).
        epsilon: regularisation of the matting Laplacian.
        radius: window radius of the matting Laplacian.
        rtol, maxiter: conjugate-gradient stopping rule (pymatting's ``cg``).
        max_tile_pixels, overlap, max_unknown: see :func:`nuggy.matting.band.solve_in_band`.
            Each crop costs ~400 bytes per pixel (the Laplacian): ~0.4 GB per 1 MP tile.

    Returns:
        float32 H×W alpha in [0, 1]; known pixels exactly 0 / 1.
    """
    from pymatting import estimate_alpha_cf

    check_inputs(image, trimap)

    def solve(img: np.ndarray, tri: np.ndarray, **_: object) -> np.ndarray:
        return estimate_alpha_cf(
            img,
            tri,
            laplacian_kwargs={"epsilon": epsilon, "radius": radius},
            cg_kwargs={"rtol": rtol, "maxiter": maxiter},
        )

    return solve_in_band(
        image,
        trimap,
        solve,
        margin=2 * radius + 1,
        max_tile_pixels=max_tile_pixels,
        overlap=overlap,
        max_unknown=max_unknown,
    )
