"""KNN matting (Chen, Li & Tang, "KNN Matting", TPAMI 2013), solved with pymatting only inside
the trimap's unknown band.

KNN matting is non-local: a pixel is tied to its nearest neighbours in a (colour, position)
feature space. Solving on a crop keeps the neighbours found within ``margin`` known pixels of
the band, which is where the useful colour samples are; all parts of the band share one crop
(their common bounding box), so separate parts still see each other's samples. pymatting scales
the position features by the crop's size, so the distance weights are rescaled here to keep the
image's spatial scale. The result approximates (does not equal) the full-image solution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .band import check_inputs, solve_in_band

__all__ = ["knn_alpha"]


def knn_alpha(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    n_neighbors: Sequence[int] = (20, 10),
    distance_weights: Sequence[float] = (2.0, 0.1),
    margin: int = 16,
    rtol: float = 1e-7,
    maxiter: int = 10000,
    max_tile_pixels: int = 1024 * 1024,
    overlap: int = 32,
    max_unknown: int | None = None,
) -> np.ndarray:
    """KNN-matting alpha inside the unknown band.

    Args:
        image: H×W×3 RGB, uint8 or float in [0, 1] (not modified).
        trimap: uint8 H×W, 0 / 128 / 255.
        n_neighbors, distance_weights: neighbour searches and the weight of the (x, y)
            features relative to the whole image (pymatting's ``knn_laplacian``).
        margin: known pixels around the band in each crop (colour samples for the neighbours).
        rtol, maxiter: conjugate-gradient stopping rule.
        max_tile_pixels, overlap, max_unknown: see :func:`nuggy.matting.band.solve_in_band`.

    Returns:
        float32 H×W alpha in [0, 1]; known pixels exactly 0 / 1.
    """
    from pymatting import estimate_alpha_knn

    check_inputs(image, trimap)

    def solve(img: np.ndarray, tri: np.ndarray, *, window, grid) -> np.ndarray:
        y0, y1, x0, x1 = window
        # pymatting's x, y features run 0..1 over the crop: rescale to the grid's 0..1
        f = math.sqrt(max(1, (y1 - y0 - 1) * (x1 - x0 - 1)) / max(1, (grid[0] - 1) * (grid[1] - 1)))
        return estimate_alpha_knn(
            img,
            tri,
            laplacian_kwargs={
                "n_neighbors": list(n_neighbors),
                "distance_weights": [w * f for w in distance_weights],
            },
            cg_kwargs={"rtol": rtol, "maxiter": maxiter},
        )

    return solve_in_band(
        image,
        trimap,
        solve,
        margin=margin,
        max_tile_pixels=max_tile_pixels,
        overlap=overlap,
        max_unknown=max_unknown,
        merge=True,
    )
