"""Pipeline configuration and result types.

``PipelineConfig`` holds every switch of the pipeline; the presets are plain instances of it.
``Result`` is what :meth:`nuggy.Pipeline.run` returns, whatever the interface (CLI, API, web).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from ..errors import ConfigError, UsageError

if TYPE_CHECKING:  # numpy only for annotations: importing the config stays light
    import numpy as np

__all__ = ["PipelineConfig", "Result", "PRESETS", "preset"]

MattingMethod = Literal["none", "auto", "fba", "cf", "knn", "lkm", "guided"]
MATTING_METHODS: tuple[str, ...] = get_args(MattingMethod)
FusionMethod = Literal["reliability", "mean"]  # the keys of nuggy.pipeline.fuse.FUSIONS
FUSION_METHODS: tuple[str, ...] = get_args(FusionMethod)


@dataclass(frozen=True)
class Limit:
    """The range of a numeric setting, from what it means; ``check`` raises a
    :class:`~nuggy.errors.ConfigError` naming the setting, the range and the value."""

    lo: float
    hi: float
    kind: Literal["int", "float", "fraction"] = "float"
    lo_open: bool = False  # lo itself is excluded
    unit: str = ""

    def check(self, name: str, value: object) -> None:
        # numbers.Real/Integral include numpy's scalars; numpy's bool is neither
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if ok and self.kind == "int":
            ok = isinstance(value, numbers.Integral)
        if ok:
            v = float(value)
            ok = math.isfinite(v) and (v > self.lo if self.lo_open else v >= self.lo) and v <= self.hi
        if not ok:
            what = {"int": "a whole number", "float": "a number", "fraction": "a fraction"}[self.kind]
            unit = f" of {self.unit}" if self.unit and self.kind == "int" else ""
            rng = f"{self.lo:g}..{self.hi:g}" + (f", above {self.lo:g}" if self.lo_open else "")
            tail = f" ({self.unit})" if self.unit and self.kind != "int" else ""
            raise ConfigError(f"{name} must be {what}{unit} in {rng}{tail}, got {value!r}", field=name)


#: Ranges of the numeric settings (``None`` stays allowed where it is the default). Every front
#: end uses this table: the CLI and the Python API through :class:`PipelineConfig`, the HTTP API
#: also for its documented query bounds.
LIMITS: dict[str, Limit] = {
    # ONNX Runtime intra-op threads: above the core count they only oversubscribe; 256 bounds
    # how many threads a request can make the process start.
    "threads": Limit(1, 256, "int"),
    # depth inside the 0.5 contour beyond which the subject is opaque
    "interior_depth": Limit(0, 0.2, "fraction", lo_open=True, unit="of the image diagonal"),
    # guided-filter window radius. The default is 4 × the model-to-image scale (4f) and quality
    # rose up to ~8f (refine.default_refine_params); 8f at the 100 MP input limit is ~250 px.
    # (A radius larger than the image gives the same result as the image's size: box_filter
    # clamps it, so cost stays bounded.)
    "refine_radius": Limit(1, 256, "int", unit="pixels"),
    # a variance of 0..1 intensities: below refine.MIN_EPS float32 rounding dominates; a
    # window's variance is at most 0.25, so at 1 the filter is a plain box blur
    "refine_eps": Limit(1e-12, 1.0),
    # how far beyond the edge core the filter reaches (default f/2 px); same bound as the radius
    "refine_band": Limit(0, 256, "int", unit="pixels"),
    # a fraction of the largest component: above 1 even the subject itself would be dropped
    "island_min_area": Limit(0, 1, "fraction", unit="of the largest part's area"),
    "hole_max_area": Limit(0, 1, "fraction", unit="of the subject's area"),
    # weight of the segmentation prior against the matting Laplacian; at 100 the prior
    # overrides the colour model wherever it is not exactly 0.5
    "matting_prior": Limit(0, 100),
    # base half-width of the trimap's unknown band; hard edges get 3× that, so at 0.1 the band
    # is already 0.3 of the diagonal wide on each side: beyond, it covers nearly any image
    "trimap_band": Limit(0, 0.1, "fraction", unit="of the image diagonal"),
    # photo size below which the automatic matting stage is skipped; the decode limit is 100 MP
    "matting_min_megapixels": Limit(0, 1000, unit="megapixels"),
}


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
        matting_min_megapixels: automatic mode only: photos smaller than this (width × height
            / 10⁶) skip trimap and matting (``best``: 0.25, see :data:`BEST_MATTING_MIN_MP`).
            A user trimap is always solved.
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
    fusion: FusionMethod = "reliability"

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
    matting_min_megapixels: float = 0.0

    foreground: bool = True

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in LIMITS:
                if not (value is None and f.default is None):
                    LIMITS[f.name].check(f.name, value)
            elif f.type == "bool" and not (
                isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy's bool
            ):
                raise ConfigError(f"{f.name} must be true or false, got {value!r}", field=f.name)
        choices = {
            "segmenter": ("salient", "deeplabv3"),
            "backend": ("onnx", "torch"),
            "fusion": FUSION_METHODS,
            "matting": MATTING_METHODS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}",
                    field=name,
                )
        for name in ("model", "weights", "segmenter_class", "matting_weights"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise ConfigError(f"{name} must be a non-empty string or None, got {value!r}", field=name)
        if self.providers is not None and not (
            isinstance(self.providers, tuple) and all(isinstance(p, str) for p in self.providers)
        ):
            raise ConfigError(
                f"providers must be a tuple of names or None, got {self.providers!r}", field="providers"
            )
        if self.segmenter == "deeplabv3" and not self.segmenter_class:
            raise ConfigError(
                "segmenter 'deeplabv3' needs --class NAME / segmenter_class= (the class to cut "
                "out: cat, dog, person…)",
                field="segmenter_class",
            )
        if self.segmenter == "salient" and self.segmenter_class:
            raise ConfigError(
                f"segmenter_class={self.segmenter_class!r}: segmenter_class applies to "
                "--segmenter deeplabv3 only (segmenter='deeplabv3')",
                field="segmenter_class",
            )
        if self.segmenter == "salient" and not self.model and not self.weights:
            raise ConfigError(
                "no model: give a registry name (--model / model=) or a file (--weights / weights=)",
                field="model",
            )

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


#: ``best`` skips matting on photos under this size (megapixels). Chosen on the tune halves:
#: on ECSSD (0.07–0.16 MP, binary masks) the matting stage raised MSE and Grad for every model
#: at equal SAD (u2netp: MSE 30.87 → 31.73, Grad 5.98 → 6.23); on alphamatting (0.40–0.58 MP,
#: soft ground truth) it lowered all three. 0.25 MP lies in the gap between the two sets (their
#: geometric middle). Our data cannot tell "small photo" from "hard-edged subject": both sets
#: differ in both, so this is the measurable proxy, not a proven cause (README, Quality).
BEST_MATTING_MIN_MP = 0.25

PRESETS: dict[str, PipelineConfig] = {
    # The raw model, nothing else: fastest.
    "fast": PipelineConfig(
        tta=False,
        interior=False,
        refine=False,
        islands=False,
        fill_holes=False,
        foreground=False,
    ),
    # The hybrid pipeline.
    "default": PipelineConfig(),
    # The hybrid pipeline + adaptive trimap and matting in its unknown band (FBA when its
    # checkpoint is found, else closed-form matting).
    # ``model="auto"``: every cached, accepted model, fused (u2netp alone when none other is).
    # Matting only from BEST_MATTING_MIN_MP megapixels.
    "best": PipelineConfig(model="auto", matting="auto", matting_min_megapixels=BEST_MATTING_MIN_MP),
}


def preset(name: str, **overrides: object) -> PipelineConfig:
    """The named preset (``fast``, ``default``, ``best``) with ``overrides`` applied."""
    try:
        cfg = PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
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
        import numpy as np

        if self.foreground is None:
            return self.image
        return np.clip(self.foreground * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def alpha_u8(self) -> np.ndarray:
        """Alpha as uint8 H×W (0..255, rounded)."""
        import numpy as np

        return np.clip(self.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def rgba(self) -> np.ndarray:
        """Cut-out as uint8 H×W×4 (straight, not premultiplied, alpha)."""
        import numpy as np

        return np.dstack([self.foreground_u8(), self.alpha_u8()])
