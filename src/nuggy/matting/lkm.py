"""Large-kernel matting (He, Sun & Tang, "Fast Matting Using Large Kernel Matting Laplacian
Matrices", CVPR 2010), solved with pymatting only inside the trimap's unknown band.

pymatting's solver is matrix-free (box filters) and constrains the known pixels softly, so a
crop keeps ``2·radius + 1`` known pixels around the band: every window that touches an unknown
pixel then lies inside the crop. Known pixels are reset to exactly 0 / 1 afterwards.
"""

from __future__ import annotations

import numpy as np

from .band import check_inputs, solve_in_band

__all__ = ["lkm_alpha"]


def lkm_alpha(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    epsilon: float = 1e-7,
    radius: int = 10,
    rtol: float = 1e-7,
    maxiter: int = 10000,
    max_tile_pixels: int = 1024 * 1024,
    overlap: int = 32,
    max_unknown: int | None = None,
) -> np.ndarray:
    """Large-kernel-matting alpha inside the unknown band.

    Args:
        image: H×W×3 RGB, uint8 or float in [0, 1] (not modified).
        trimap: uint8 H×W, 0 / 128 / 255.
        epsilon, radius: regularisation and window radius of the large-kernel Laplacian (the
            radius shrinks on crops smaller than ``4·radius + 1``, e.g. in tiny images).
        rtol, maxiter: conjugate-gradient stopping rule.
        max_tile_pixels, overlap, max_unknown: see :func:`nuggy.matting.band.solve_in_band`.

    Returns:
        float32 H×W alpha in [0, 1]; known pixels exactly 0 / 1.
    """
    from pymatting import estimate_alpha_lkm

    check_inputs(image, trimap)

    def solve(img: np.ndarray, tri: np.ndarray, **_: object) -> np.ndarray:
        # pymatting's box filters need crops of at least 4r + 1 pixels: shrink the kernel on
        # crops cut small by the image border; below r = 1, use the closed-form Laplacian
        r = min(radius, (min(tri.shape) - 1) // 4)
        if r < 1:
            from pymatting import estimate_alpha_cf

            return estimate_alpha_cf(img, tri, laplacian_kwargs={"epsilon": epsilon})
        return estimate_alpha_lkm(
            img,
            tri,
            laplacian_kwargs={"epsilon": epsilon, "radius": r},
            cg_kwargs={"rtol": rtol, "maxiter": maxiter},
        )

    return solve_in_band(
        image,
        trimap,
        solve,
        margin=2 * radius + 1,
        max_tile_pixels=max_tile_pixels,
        overlap=max(overlap, 2 * radius + 1),
        max_unknown=max_unknown,
    )
