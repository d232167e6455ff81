"""Pipeline configuration and result types.

``PipelineConfig`` holds every switch of the pipeline; the presets are plain instances of it.
``Result`` is what :meth:`nuggy.Pipeline.run` returns, whatever the interface (CLI, API, web).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import ConfigError, UsageError

__all__ = ["PipelineConfig", "Result", "PRESETS", "preset"]

MattingMethod = Literal["none", "auto", "fba", "cf", "knn", "lkm", "guided"]


@dataclass(frozen=True)
class PipelineConfig:
    """Every switch of the pipeline. Use :func:`preset` for the named presets.

    Segmentation:
        segmenter: ``salient`` (a registry salient-object model) or ``deeplabv3``
            (torchvision's class-aware DeepLabV3, needs PyTorch and its checkpoint in
            ``weights`` or the torch hub cache).
        segmenter_class: with ``deeplabv3``: the class to cut out (``cat``, ``person``…).
        model: registry name, or ``None`` with ``weights`` pointing to an ONNX file; several
            models joined by ``+`` (``u2netp+isnet``: each runs once, their maps are fused);
            ``auto``: the default model plus every further model that is cached and whose
            licence was accepted (see :func:`nuggy.pipeline.segment.auto_models`).
        fusion: how several models' maps are fused (:mod:`nuggy.pipeline.fuse`):
            ``reliability`` (per-image weights from each map's relative uncertainty) or
            ``mean``.
        weights: path to a model file that replaces the registry file (``.onnx``; ``.pth``
            with the torch backend).
        backend: ``onnx`` (ONNX Runtime) or ``torch``.
        providers: ONNX Runtime execution providers; ``None`` picks automatically.
        threads: intra-op threads; ``None`` = all available cores.
        tta: add the un-flipped prediction of the horizontally flipped image (mean of both).
    Interior:
        interior: raise the confident inside of the subject (deeper than ``interior_depth`` ×
            the image diagonal inside the 0.5 contour) to full opacity.
        interior_depth: see ``interior``.
    Refinement (guided filter with the photo as guide, only near the edge):
        refine: run the guided filter.
        refine_radius: filter radius in pixels; ``None`` scales with the image size.
        refine_eps: regularisation of the guided filter (on 0..1 intensities).
        refine_band: how far in pixels the filter may reach beyond the edge core (both
            sides of the 0.5 contour plus uncertain pixels); ``None`` scales with the image.
    Cleaning:
        islands: drop small connected components that are not part of the subject.
        island_min_area: components smaller than this fraction of the largest one are dropped.
        fill_holes: fill enclosed background holes.
        hole_max_area: holes up to this fraction of the subject area are filled.
    Trimap and matting:
        matting: solver inside the trimap's unknown band (``none`` skips trimap and matting).
        matting_weights: checkpoint for FBA Matting.
        matting_prior: weight λ of the segmentation prior in closed-form matting (``cf``): unknown
            pixels are pulled towards the pipeline's alpha by ``λ·|2α − 1|⁴``, so the solver
            cannot overturn confident parts of the segmentation; 0 = plain closed-form matting.
        trimap_band: base half-width of the unknown band as a fraction of the image diagonal.
    Foreground:
        foreground: estimate the foreground colour where alpha is fractional (decontamination).
    """

    segmenter: Literal["salient", "deeplabv3"] = "salient"
    segmenter_class: str | None = None
    model: str | None = "u2netp"
    weights: str | None = None
    backend: Literal["onnx", "torch"] = "onnx"
    providers: tuple[str, ...] | None = None
    threads: int | None = None
    fusion: Literal["reliability", "mean"] = "reliability"

    tta: bool = True

    interior: bool = True
    interior_depth: float = 0.01

    refine: bool = True
    refine_radius: int | None = None
    refine_eps: float = 1e-4
    refine_band: int | None = None

    islands: bool = True
    island_min_area: float = 0.05
    fill_holes: bool = False
    hole_max_area: float = 0.001

    matting: MattingMethod = "none"
    matting_weights: str | None = None
    matting_prior: float = 0.1
    trimap_band: float = 0.01

    foreground: bool = True

    def __post_init__(self) -> None:
        from .fuse import FUSIONS

        if self.fusion not in FUSIONS:
            raise ConfigError(
                f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}", field="fusion"
            )
        for name in ("matting_prior", "trimap_band"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}", field=name)

    def replace(self, **changes: object) -> PipelineConfig:
        """A copy with ``changes`` applied (unknown names raise :class:`UnknownSetting`, a
        ``TypeError`` too)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise UnknownSetting(
                f"unknown setting {', '.join(map(repr, unknown))}; settings: "
                + ", ".join(f.name for f in dataclasses.fields(self)),
                field=unknown[0],
            )
        return dataclasses.replace(self, **changes)


class UnknownSetting(ConfigError, TypeError):
    """A setting that :class:`PipelineConfig` does not have (a ``TypeError`` too, as the
    dataclass raised before)."""


PRESETS: dict[str, PipelineConfig] = {
    # The raw model, nothing else: fastest.
    "fast": PipelineConfig(
        tta=False, interior=False, refine=False, islands=False, fill_holes=False,
        foreground=False,
    ),
    # The hybrid pipeline.
    "default": PipelineConfig(),
    # The hybrid pipeline + adaptive trimap and matting in its unknown band (FBA when its
    # checkpoint is found, else closed-form matting).
    # ``model="auto"``: every cached, accepted model, fused (u2netp alone when none other is).
    "best": PipelineConfig(model="auto", matting="auto"),
}


def preset(name: str, **overrides: object) -> PipelineConfig:
    """The named preset (``fast``, ``default``, ``best``) with ``overrides`` applied."""
    try:
        cfg = PRESETS[name]
    except KeyError:
        raise UsageError(
            f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}"
        ) from None
    return cfg.replace(**overrides) if overrides else cfg


@dataclass
class Result:
    """Output of one pipeline run.

    Attributes:
        image: the input, uint8 H×W×3 RGB.
        alpha: float32 H×W in [0, 1].
        foreground: float32 H×W×3 in [0, 1], the estimated foreground colour, or ``None``
            when the pipeline did not estimate it (then the input colours are used).
        probability: float32 H×W in [0, 1], the model's (TTA-averaged) probability at full size.
        trimap: uint8 H×W with 0 / 128 / 255, when the matting stage ran.
        timings: seconds per stage, in run order.
    """

    image: np.ndarray
    alpha: np.ndarray
    probability: np.ndarray
    foreground: np.ndarray | None = None
    trimap: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def foreground_u8(self) -> np.ndarray:
        """Foreground colour as uint8 H×W×3 (the input where none was estimated)."""
        if self.foreground is None:
            return self.image
        return np.clip(self.foreground * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def alpha_u8(self) -> np.ndarray:
        """Alpha as uint8 H×W (0..255, rounded)."""
        return np.clip(self.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def rgba(self) -> np.ndarray:
        """Cut-out as uint8 H×W×4 (straight, not premultiplied, alpha)."""
        return np.dstack([self.foreground_u8(), self.alpha_u8()])
