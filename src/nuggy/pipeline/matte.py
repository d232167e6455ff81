"""Matting stage: trimap from the pipeline's alpha, then a solver inside the unknown band.

``matte(image, alpha, method=…)`` builds the adaptive trimap (:func:`nuggy.pipeline.trimap.make_trimap`,
half-width ``cfg.trimap_band`` × diagonal) and solves alpha in its unknown band with
``cfg.matting``:

* ``fba``: FBA Matting (Forte & Pitié 2020) with the checkpoint ``cfg.matting_weights`` or
  ``FBA.pth`` in the model cache; it also returns the foreground colour F.
* ``cf`` / ``knn`` / ``lkm``: pymatting's closed-form, KNN and large-kernel solvers on crops of
  the band (:mod:`nuggy.matting`); large bands are solved on a reduced grid and guided-upsampled.
  In automatic mode ``cf`` also gets the pipeline's alpha as a confidence-weighted prior
  (``cfg.matting_prior``, see :mod:`nuggy.matting.closed_form`): the solver decides where the
  segmentation is unsure and cannot overturn it where it is sure.
* ``guided``: the fast colour-line + guided-filter solver, seeded with the pipeline's alpha.
* ``auto``: ``fba`` when its checkpoint is found, otherwise :data:`AUTO_CLASSICAL` (the best
  classical solver on the alphamatting.com dev set; see ``benchmarks/matting.py``).

A user-supplied trimap goes through ``Pipeline.run(image, trimap=...)``: no segmentation.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import numpy as np

from ..errors import MissingFileError

__all__ = [
    "AUTO_CLASSICAL",
    "MAX_UNKNOWN",
    "FBA_MAX_PIXELS",
    "find_fba_weights",
    "resolve_method",
    "solve_alpha",
    "matte",
]

log = logging.getLogger("nuggy")

#: The classical solver ``auto`` uses when FBA is unavailable (measured on the dev set: lowest
#: SAD/MSE in the unknown region with the ground-truth trimaps; see benchmarks/matting.py).
AUTO_CLASSICAL = "cf"
#: Unknown pixels above which a solver works on a reduced grid (speed and memory bound).
MAX_UNKNOWN = {"cf": 150_000, "knn": 150_000, "lkm": 100_000}
#: Matting-Laplacian regularisation of closed-form matting when it runs with the segmentation
#: prior (automatic mode). pymatting's 1e-7 fits colour lines to JPEG block noise: where the
#: prior holds a large flat region at a fractional alpha the 8×8 blocks show in the matte
#: (examples/chelsea.jpg); 1e-6 removes them and scores the same on the dev set
#: (isnet SAD/MSE/Grad 46.05/82.98/23.79 vs 46.03/82.92/23.76). With a user trimap (no prior)
#: pymatting's 1e-7 stays: there it is the better value (dev SAD in the band 6.71 vs 7.52).
PRIOR_EPSILON = 1e-6
#: FBA runs on at most this many pixels (the band's bounding box, reduced if larger).
FBA_MAX_PIXELS = 1_500_000
#: File names of the FBA checkpoint looked up in the model cache.
FBA_FILENAMES = ("FBA.pth", "fba.pth")


def find_fba_weights(weights: str | None = None) -> Path | None:
    """The FBA checkpoint: ``weights`` if given (must exist), else ``FBA.pth`` in the cache."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MissingFileError(f"{path}: FBA checkpoint not found (--matting-weights / matting_weights=)")
        return path
    from ..sources import models_dir

    for name in FBA_FILENAMES:
        path = models_dir() / name
        if path.is_file():
            return path
    return None


def resolve_method(method: str, weights: str | None = None) -> str:
    """The solver that runs for ``method`` (``auto`` → ``fba`` or :data:`AUTO_CLASSICAL`)."""
    if method == "auto":
        return "fba" if find_fba_weights(weights) is not None else AUTO_CLASSICAL
    if method == "fba" and find_fba_weights(weights) is None:
        from ..sources import models_dir

        raise MissingFileError(
            "FBA Matting needs its checkpoint FBA.pth (Forte & Pitié, from the authors' "
            f"repository): pass it with --matting-weights PATH or put it in {models_dir()}; "
            "or use --matting auto|cf|knn|lkm|guided"
        )
    return method


@functools.lru_cache(maxsize=2)
def _fba_predictor(path: str):
    from ..runtime.torch import FBAPredictor

    return FBAPredictor(path)


def _fba(image: np.ndarray, trimap: np.ndarray, weights: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """FBA alpha (and F) on the band's bounding box, reduced to :data:`FBA_MAX_PIXELS`."""
    import cv2

    from ..matting.band import guided_upsample, reduce_trimap

    h, w = trimap.shape
    alpha = (trimap == 255).astype(np.float32)
    ys, xs = np.nonzero(trimap == 128)
    if ys.size == 0:
        return alpha, None
    pad = max(32, round(0.05 * math.hypot(h, w)))
    y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + 1 + pad)
    x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)
    del ys, xs
    img, tri = image[y0:y1, x0:x1], trimap[y0:y1, x0:x1]
    predictor = _fba_predictor(str(weights))
    ch, cw = tri.shape
    s = math.sqrt(ch * cw / FBA_MAX_PIXELS)
    if s <= 1.0:
        a, f, _ = predictor.predict(np.ascontiguousarray(img), np.ascontiguousarray(tri))
        alpha[y0:y1, x0:x1][tri == 128] = a[tri == 128]
        fg = image.astype(np.float32) * np.float32(1 / 255)
        fg[y0:y1, x0:x1] = np.where((a > 0)[..., None], f, fg[y0:y1, x0:x1])
        return alpha, fg
    size = (max(8, round(cw / s)), max(8, round(ch / s)))
    low_img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    low_tri = reduce_trimap(tri, size)
    a, _, _ = predictor.predict(low_img, low_tri)
    alpha[y0:y1, x0:x1] = guided_upsample(img, tri, a)
    return alpha, None  # F at reduced resolution would blur the edge: the pipeline estimates it


def solve_alpha(
    method: str,
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    prior: np.ndarray | None = None,
    prior_weight: float = 0.1,
    weights: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Alpha (float32 H×W) and, from FBA only, F (float32 H×W×3) for a validated trimap.

    ``prior`` (float H×W alpha in [0, 1], e.g. the segmentation's) seeds ``guided`` and, with
    ``prior_weight`` > 0, is the confidence-weighted data term of ``cf``.
    """
    method = resolve_method(method, weights)
    if method == "fba":
        return _fba(image, trimap, find_fba_weights(weights))  # type: ignore[arg-type]
    if method == "guided":
        from ..matting.guided import guided_alpha

        return guided_alpha(image, trimap, prior=prior), None
    from ..matting import get_solver

    options: dict = {"max_unknown": MAX_UNKNOWN.get(method)}
    if method == "cf" and prior is not None and prior_weight > 0:
        options.update(prior=prior, prior_weight=prior_weight, epsilon=PRIOR_EPSILON)
    return get_solver(method)(image, trimap, **options), None


def matte(
    image: np.ndarray,
    alpha: np.ndarray | None,
    *,
    method: str,
    weights: str | None = None,
    prior_weight: float = 0.1,
    band: float = 0.01,
    trimap: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The pipeline's matting stage.

    Args:
        image: RGB uint8 H×W×3.
        alpha: the pipeline's float H×W alpha in [0, 1] (segmentation → refine → clean);
            ``None`` only with ``trimap``.
        method: the solver, already resolved (``fba``, ``cf``, ``knn``, ``lkm``, ``guided``;
            :class:`~nuggy.pipeline.Pipeline` resolves ``auto`` once, with
            :func:`resolve_method`).
        weights: the FBA checkpoint (with ``fba``).
        prior_weight: ``matting_prior`` (closed-form's segmentation prior).
        band: ``trimap_band``, the automatic trimap's base half-width (fraction of the
            diagonal).
        trimap: a user trimap (uint8 H×W, 0/128/255; validated) that replaces the automatic one.

    An automatic trimap with an unknown region but no definite foreground or background
    (:func:`~nuggy.pipeline.trimap.unsolvable`) is not solved: the pipeline's alpha is returned.
    The same holds per part of the band: where a connected part of an automatic trimap's
    unknown region borders no definite background or no definite foreground
    (:func:`~nuggy.pipeline.trimap.one_sided`), a classical solver could only fill it solid, so
    the pipeline's alpha is kept there (measured on the tune halves, see the README). FBA, a
    learned model, is not restricted. A user trimap is always solved as given.

    Returns:
        ``(alpha, foreground, trimap)``: float32 H×W alpha in [0, 1] (exactly 0 / 1 on the
        trimap's known pixels), FBA's float32 H×W×3 foreground in [0, 1] or ``None`` (the
        pipeline then estimates it), and the uint8 trimap used.
    """
    from .trimap import make_trimap, one_sided, unsolvable, validate_trimap

    keep = None
    if trimap is None:
        if alpha is None:
            raise ValueError("matte needs the pipeline's alpha or a trimap")
        trimap = make_trimap(alpha, band=band, image=image)
        if unsolvable(trimap):  # e.g. a map uncertain everywhere: a solver would return a
            # solid matte (all 0 or all 1)
            log.info(
                "matting skipped: the automatic trimap has no definite foreground or "
                "background; the segmentation's alpha is kept"
            )
            return alpha.astype(np.float32, copy=False), None, trimap
        if method != "fba":
            keep = one_sided(trimap)
            if not keep.any():
                keep = None
            elif np.count_nonzero(keep) == np.count_nonzero(trimap == 128):
                log.info(
                    "matting skipped: no part of the unknown band borders both foreground and background"
                )
                return alpha.astype(np.float32, copy=False), None, trimap
    else:
        trimap = validate_trimap(trimap, shape=image.shape[:2])
    out, fg = solve_alpha(method, image, trimap, prior=alpha, prior_weight=prior_weight, weights=weights)
    if keep is not None:
        out = out.copy() if not out.flags.writeable else out
        out[keep] = alpha[keep]
    return out, fg, trimap
