"""Closed-form matting (Levin, Lischinski & Weiss, "A Closed-Form Solution to Natural Image
Matting", TPAMI 2008), solved with pymatting only inside the trimap's unknown band.

The matting Laplacian couples pixels within ``2·radius`` of each other, so crops that keep
``2·radius + 1`` known pixels around the unknown region give exactly the full image's linear
system; see :mod:`nuggy.matting.band`.

**Model prior.** In the automatic pipeline the unknown band is wide where the segmentation is
unsure, and closed-form matting fed only with the colours of the confident regions can drive a
large, genuinely opaque (or see-through) part to the wrong value. With ``prior`` (the pipeline's
alpha) the energy gains a data term that pulls each unknown pixel towards the prior in proportion
to how confident the prior is::

    min_α  αᵀ L α  +  Σ_i λ · |2·prior_i − 1|^p · (α_i − prior_i)²      (known pixels fixed)

so the colour-line model decides where the prior is near 0.5 (hair, fur, the soft edge) and the
prior holds where it is nearly 0 or 1 (λ = ``prior_weight``, p = ``prior_power``). The system
stays symmetric positive definite and is solved the same way (incomplete-Cholesky CG).
"""

from __future__ import annotations

import numpy as np

from .band import check_inputs, solve_in_band

__all__ = ["closed_form_alpha"]


def _prior_on_grid(prior: np.ndarray, grid: tuple[int, int], cache: dict) -> np.ndarray:
    """``prior`` on the solver's grid (area-reduced when the band is solved on a reduced grid)."""
    if prior.shape == tuple(grid):
        return prior
    if grid not in cache:
        import cv2

        cache[grid] = cv2.resize(prior, (grid[1], grid[0]), interpolation=cv2.INTER_AREA)
    return cache[grid]


def closed_form_alpha(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    epsilon: float = 1e-7,
    radius: int = 1,
    prior: np.ndarray | None = None,
    prior_weight: float = 0.1,
    prior_power: float = 4.0,
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
        prior: optional float H×W alpha in [0, 1] (e.g. the segmentation's) that unknown pixels
            are pulled towards where it is confident (see the module docstring); ``None``:
            plain closed-form matting, identical to pymatting's ``estimate_alpha_cf``.
        prior_weight: λ, the weight of the prior term (0 disables it).
        prior_power: p, the confidence exponent: ``|2·prior − 1|^p``.
        rtol, maxiter: conjugate-gradient stopping rule (pymatting's ``cg``).
        max_tile_pixels, overlap, max_unknown: see :func:`nuggy.matting.band.solve_in_band`.
            Each crop costs ~400 bytes per pixel (the Laplacian): ~0.4 GB per 1 MP tile.

    Returns:
        float32 H×W alpha in [0, 1]; known pixels exactly 0 / 1.
    """
    from pymatting import estimate_alpha_cf

    check_inputs(image, trimap)
    if prior is not None:
        prior = np.asarray(prior)
        if prior.shape != trimap.shape:
            raise ValueError(f"prior {prior.shape} does not match the trimap {trimap.shape}")
        if not np.issubdtype(prior.dtype, np.floating):
            raise ValueError(f"prior must be float alpha in [0, 1], got {prior.dtype}")
        if prior_weight < 0 or prior_power <= 0:
            raise ValueError(f"need prior_weight >= 0 and prior_power > 0, got {prior_weight}, {prior_power}")
        if prior_weight == 0:
            prior = None
        else:
            prior = np.clip(prior, 0.0, 1.0).astype(np.float32)  # a copy: input untouched
    grids: dict = {}

    def solve(img: np.ndarray, tri: np.ndarray, *, window, grid) -> np.ndarray:
        if prior is None:
            return estimate_alpha_cf(
                img,
                tri,
                laplacian_kwargs={"epsilon": epsilon, "radius": radius},
                cg_kwargs={"rtol": rtol, "maxiter": maxiter},
            )
        import scipy.sparse
        from pymatting import cf_laplacian, cg, ichol, trimap_split

        y0, y1, x0, x1 = window
        p = _prior_on_grid(prior, grid, grids)[y0:y1, x0:x1].astype(np.float64).ravel()
        is_fg, _, is_known, is_unknown = trimap_split(tri)
        lap = cf_laplacian(img, epsilon=epsilon, radius=radius, is_known=is_known)
        lap_u = lap[is_unknown, :][:, is_unknown]
        rhs = -lap[is_unknown, :][:, is_known].dot(is_fg[is_known])
        pu = p[is_unknown]
        c = prior_weight * np.abs(2.0 * pu - 1.0) ** prior_power
        a = (lap_u + scipy.sparse.diags(c)).tocsr()
        x = tri.astype(np.float64).ravel()
        x[is_unknown] = cg(a, rhs + c * pu, M=ichol(a), rtol=rtol, maxiter=maxiter)
        return np.clip(x, 0.0, 1.0).reshape(tri.shape)

    return solve_in_band(
        image,
        trimap,
        solve,
        margin=2 * radius + 1,
        max_tile_pixels=max_tile_pixels,
        overlap=overlap,
        max_unknown=max_unknown,
    )
