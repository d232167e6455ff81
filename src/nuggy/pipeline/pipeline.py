"""Orchestration: ``Pipeline(config).run(image) -> Result``.

load → segment (TTA) → refine (guided filter near the edge) → clean (islands, holes)
→ [trimap → matte] → foreground → (compose happens at the caller).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

from .config import PipelineConfig, Result, preset

__all__ = ["Pipeline"]


class Pipeline:
    """One configured pipeline; the model is loaded lazily on the first run and reused.

    Args:
        config: a :class:`PipelineConfig` or a preset name (``fast``, ``default``).
        accept_license: licence id accepted for gated models (``agpl-3.0``).
        download: fetch a missing model file (otherwise a missing file is an error naming the
            command that fetches it).
    """

    def __init__(
        self,
        config: PipelineConfig | str = "default",
        *,
        accept_license: str | None = None,
        download: bool = True,
    ) -> None:
        self.config = preset(config) if isinstance(config, str) else config
        self.accept_license = accept_license
        self.download = download
        self._predictors = None
        self._matting_method: str | None = None

    @property
    def matting_method(self) -> str:
        """The matting solver this pipeline runs (``auto`` resolved once: ``fba`` when its
        checkpoint is found, else the classical default; ``none`` counts as ``auto`` for a
        user trimap). Raises a ConfigError when ``fba`` is asked for and not found."""
        if self._matting_method is None:
            from .matte import resolve_method

            method = "auto" if self.config.matting == "none" else self.config.matting
            self._matting_method = resolve_method(method, self.config.matting_weights)
        return self._matting_method

    def _matte(self, image, alpha, *, trimap=None):
        from .matte import matte

        cfg = self.config
        return matte(
            image,
            alpha,
            method=self.matting_method,
            weights=cfg.matting_weights,
            prior_weight=cfg.matting_prior,
            band=cfg.trimap_band,
            trimap=trimap,
        )

    def trimap(self, image: np.ndarray) -> np.ndarray:
        """The automatic trimap the matting stage would use for ``image``: uint8 H×W with
        0 / 128 / 255 (segmentation → interior → refine → clean, then the adaptive band)."""
        from .trimap import make_trimap

        _check_image(image)

        @contextmanager
        def untimed(name: str):
            yield

        alpha = self._segment(image, self.config, untimed, matting=False)[0]
        return make_trimap(alpha, band=self.config.trimap_band, image=image)

    @property
    def predictors(self) -> list:
        """The segmentation predictors, one per model of ``config.model`` (loaded on first use).

        Each has ``.spec`` and ``.predict(image, *, flip) -> float32 h×w`` at model resolution.
        """
        if self._predictors is None:
            from .segment import load_predictors

            self._predictors = load_predictors(
                self.config, accept_license=self.accept_license, download=self.download
            )
        return self._predictors

    def load(self) -> Pipeline:
        """Load (fetching if needed) the segmentation model(s) now rather than on the first run,
        so a missing model is one clear error before any image is read; returns ``self``."""
        _ = self.predictors
        return self

    @property
    def predictor(self):
        """The (first) segmentation predictor (loaded on first use)."""
        return self.predictors[0]

    def run(
        self,
        image: np.ndarray,
        *,
        trimap: np.ndarray | None = None,
        probability: np.ndarray | None = None,
        hints=None,
    ) -> Result:
        """Cut the subject out of ``image`` (RGB uint8 H×W×3); see :class:`Result`.

        ``probability``: a full-resolution subject probability (float H×W in [0, 1]) made
        elsewhere (another model, a cached prediction). Segmentation is then skipped and the map
        goes through the same interior → refine → clean → matting stages.

        ``trimap``: a user trimap (uint8 H×W, 0 / 128 / 255, e.g. from
        :func:`nuggy.pipeline.trimap.load_trimap`). Segmentation and its clean-up are then
        skipped: alpha is solved in the trimap's unknown region with ``config.matting``
        (``none`` counts as ``auto``), and ``Result.probability`` is the trimap / 255.

        ``hints``: a :class:`nuggy.pipeline.hints.Hints` (box, keep / drop clicks, strokes),
        checked against the image before any work. A box runs the model(s) on the box (with a
        margin) at full model resolution, outside it is background (with ``probability``
        given, the map is only cleared outside the box); clicks and strokes correct the map
        before the interior → refine → clean → matting stages (:mod:`nuggy.pipeline.hints`).
        Not combinable with ``trimap``.
        """
        _check_image(image)
        cfg = self.config
        timings: dict[str, float] = {}
        if hints is not None:
            from .hints import HintError, Hints

            if not isinstance(hints, Hints):
                raise HintError(f"hints must be a nuggy.pipeline.hints.Hints, got {type(hints).__name__}")
            if trimap is not None and not hints.empty:
                raise HintError(
                    "hints and a user trimap cannot be combined: the trimap already "
                    "says what is subject; draw the fix into the trimap instead"
                )
            hints.check(image.shape[:2])
            if hints.empty:
                hints = None

        @contextmanager
        def stage(name: str):
            t0 = time.perf_counter()
            yield
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0

        if trimap is not None:
            with stage("matte"):
                alpha, foreground, trimap = self._matte(image, None, trimap=trimap)
            prob = trimap.astype(np.float32) * np.float32(1 / 255)
        else:
            if probability is not None:
                probability = _check_probability(probability, image.shape[:2])
            alpha, prob, foreground, trimap = self._segment(image, cfg, stage, probability, hints)
        if cfg.foreground and foreground is None:
            from .foreground import estimate_foreground

            with stage("foreground"):
                foreground = estimate_foreground(image, alpha)
        return Result(
            image=image,
            alpha=alpha.astype(np.float32, copy=False),
            probability=prob,
            foreground=foreground,
            trimap=trimap,
            timings=timings,
        )

    def _predict(self, image: np.ndarray, cfg: PipelineConfig, stage) -> np.ndarray:
        """segment (each model, TTA) → fuse: float32 H×W probability at full size."""
        from .segment import predict_fused

        predictors = self.predictors
        with stage("segment"):
            return predict_fused(predictors, image, tta=cfg.tta, fusion=cfg.fusion)

    def _segment(
        self, image: np.ndarray, cfg: PipelineConfig, stage, prob=None, hints=None, *, matting: bool = True
    ):
        """segment → fuse → [hints] → interior → refine → clean → [trimap → matte]:
        (alpha, prob, fg, trimap)."""
        hinted = None
        if hints is not None and hints.box is not None:
            from .hints import box_probability, outside_box

            if prob is None:
                prob = box_probability(lambda crop: self._predict(crop, cfg, stage), image, hints.box)
            else:
                prob = np.where(outside_box(prob.shape, hints.box), np.float32(0), prob)
        elif prob is None:
            prob = self._predict(image, cfg, stage)
        if hints is not None and hints.has_seeds:
            from .hints import apply_hints

            with stage("hints"):
                hinted = apply_hints(prob, image, hints)
            prob = hinted.probability
        alpha = prob
        if cfg.interior:
            from .interior import fill_interior

            with stage("interior"):
                alpha = fill_interior(alpha, depth=cfg.interior_depth)
        if cfg.refine:
            from .refine import refine_alpha

            with stage("refine"):
                alpha = refine_alpha(
                    image, alpha, radius=cfg.refine_radius, eps=cfg.refine_eps, band=cfg.refine_band
                )
        if cfg.islands or cfg.fill_holes:
            from .clean import fill_holes, remove_islands

            with stage("clean"):
                if cfg.islands:
                    before = alpha
                    alpha = remove_islands(alpha, min_relative_area=cfg.island_min_area)
                    if hinted is not None:
                        from .hints import protect_kept

                        alpha = protect_kept(alpha, before, hinted.keep)
                if cfg.fill_holes:
                    alpha = fill_holes(alpha, max_relative_area=cfg.hole_max_area)
        trimap = foreground = None
        h, w = image.shape[:2]
        if matting and cfg.matting != "none" and h * w >= cfg.matting_min_megapixels * 1e6:
            with stage("matte"):
                alpha, foreground, trimap = self._matte(image, alpha)
        if hinted is not None:
            from .hints import enforce
            from .trimap import band_pixels

            alpha = enforce(alpha, hinted, band_pixels(image.shape, cfg.trimap_band))
        if hints is not None and hints.box is not None:
            from .hints import outside_box

            alpha = np.where(outside_box(alpha.shape, hints.box), np.float32(0), alpha)
        return alpha, prob, foreground, trimap


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 H×W×3 array, got {getattr(image, 'shape', type(image))}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    if min(image.shape[:2]) < 2:
        raise ValueError(f"image too small: {image.shape[1]}×{image.shape[0]}")


def _check_probability(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A caller's probability map as float32 H×W in [0, 1], or a ValueError saying what is off."""
    prob = np.asarray(prob)
    if prob.shape != tuple(size):
        raise ValueError(f"probability map is {prob.shape}, the image is {tuple(size)}")
    if not np.issubdtype(prob.dtype, np.floating):
        raise ValueError(f"probability map must be floating point in [0, 1], got {prob.dtype}")
    prob = prob.astype(np.float32, copy=False)
    if not np.isfinite(prob).all() or prob.min() < 0 or prob.max() > 1:
        raise ValueError("probability map must be finite and lie in [0, 1]")
    return prob
