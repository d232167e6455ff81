"""Alpha matting inside a trimap's unknown band.

One solver per module, each a function ``(image, trimap, *, ...) -> alpha`` on arrays:

==========  =================================================  =================================
name        function                                           method
==========  =================================================  =================================
``cf``      :func:`nuggy.matting.closed_form.closed_form_alpha` closed-form (Levin et al. 2008)
``knn``     :func:`nuggy.matting.knn.knn_alpha`                 KNN matting (Chen et al. 2013)
``lkm``     :func:`nuggy.matting.lkm.lkm_alpha`                 large-kernel (He et al. 2010)
``guided``  :func:`nuggy.matting.guided.guided_alpha`           guided filter (fast, approximate)
==========  =================================================  =================================

All take an RGB image (uint8 or float in [0, 1]) and a uint8 trimap (0 / 128 / 255), work only on
crops around the unknown band (:mod:`nuggy.matting.band`) and return float32 alpha whose known
pixels are exactly 0 / 1. OpenCV's information-flow matting (``cv2.alphamat``) is not part of
the opencv-contrib-python-headless wheels, so it is not offered.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

__all__ = ["SOLVERS", "solve", "get_solver"]

#: name -> (module, function)
SOLVERS: dict[str, tuple[str, str]] = {
    "cf": ("nuggy.matting.closed_form", "closed_form_alpha"),
    "knn": ("nuggy.matting.knn", "knn_alpha"),
    "lkm": ("nuggy.matting.lkm", "lkm_alpha"),
    "guided": ("nuggy.matting.guided", "guided_alpha"),
}


def get_solver(name: str):
    """The solver function registered as ``name``."""
    if name == "infoflow":
        raise ValueError(
            "information-flow matting needs OpenCV's alphamat module, which the "
            "opencv-contrib-python(-headless) wheels do not include; use cf, knn, lkm or guided"
        )
    try:
        module, attr = SOLVERS[name]
    except KeyError:
        raise ValueError(f"unknown matting solver {name!r}; choose one of: {', '.join(SOLVERS)}") from None
    return getattr(importlib.import_module(module), attr)


def solve(name: str, image: np.ndarray, trimap: np.ndarray, **options: Any) -> np.ndarray:
    """Run solver ``name`` on ``image`` with ``trimap``; ``options`` go to the solver."""
    return get_solver(name)(image, trimap, **options)
