"""The one-call Python API: ``nuggy.remove(image) -> PIL.Image``."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ImageError
from .pipeline.config import PipelineConfig
from .pipeline.config import preset as _preset
from .pipeline.pipeline import Pipeline

__all__ = ["remove", "load_model", "get_pipeline", "as_rgb_array", "preflight"]

_PIPELINES: OrderedDict[tuple, Pipeline] = OrderedDict()
_LOCK = threading.Lock()
_MAX_PIPELINES = 8  # configs kept; model sessions are cached separately by the runtime


def get_pipeline(config: PipelineConfig, *, accept_license: str | None = None) -> Pipeline:
    """A pipeline for ``config``, cached per process (least recently used of 8 configs)."""
    key = (config, accept_license)
    with _LOCK:
        pipe = _PIPELINES.get(key)
        if pipe is None:
            pipe = Pipeline(config, accept_license=accept_license)
            _PIPELINES[key] = pipe
            while len(_PIPELINES) > _MAX_PIPELINES:
                _PIPELINES.popitem(last=False)
        else:
            _PIPELINES.move_to_end(key)
        return pipe


def load_model(name: str = "u2netp", *, accept_license: str | None = None):
    """Fetch (if needed) and load the ONNX predictor of the registry model ``name``."""
    return get_pipeline(_preset("fast", model=name), accept_license=accept_license).predictor


def preflight(config: PipelineConfig) -> None:
    """Every check of ``config`` that needs neither an image nor a model: each registry name of
    ``model`` exists, and each file it names (weights, model-list members, the FBA checkpoint)
    is there. Cheap (loads nothing), so front ends run it before any image is read.

    Raises:
        UnknownModelError: a name that is not registered (the message lists the known ones).
        MissingFileError: a named file does not exist (the message names it and its setting).
    """
    from .errors import MissingFileError
    from .registry import get_spec

    if config.segmenter == "salient":
        from .pipeline.segment import is_file_member, model_members

        if config.weights and not Path(config.weights).expanduser().is_file():
            raise MissingFileError(f"{config.weights}: weights file not found (--weights / weights=)")
        if config.model != "auto":
            for member in model_members(config.model):
                if not is_file_member(member):
                    get_spec(member)
                elif not Path(member).expanduser().is_file():
                    raise MissingFileError(
                        f"{member}: model file not found (named in model={config.model!r})"
                    )
    if config.matting != "none":
        from .pipeline.matte import resolve_method

        resolve_method(config.matting, config.matting_weights)


class _UnsupportedType(ImageError, TypeError):
    """An object that is not an image at all (a TypeError too, as before)."""


def as_rgb_array(image: Any, *, max_pixels: int | None = None) -> np.ndarray:
    """Accept a path, bytes (or a bytearray / memoryview), binary file object, PIL image or
    array and return RGB uint8 H×W×3.

    Raises:
        ImageError: unreadable, corrupt, too large or too small (naming the file, or
            ``<array>`` / ``<PIL image>`` / ``<bytes>``), or not an image at all.
    """
    from .io import check_pixels, load_image, pil_to_rgb

    if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)):
        return load_image(image, max_pixels=max_pixels)
    if isinstance(image, np.ndarray):
        a = image
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
            raise ImageError(f"<array>: expected an H×W, H×W×3 or H×W×4 array, got shape {a.shape}")
        check_pixels(a.shape[1], a.shape[0], name="<array>", max_pixels=max_pixels)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        a = a[..., :3]
        if a.dtype != np.uint8:
            if a.dtype.kind != "f":
                raise ImageError(f"<array>: expected uint8 or float [0, 1] pixels, got {a.dtype}")
            if not np.isfinite(a).all():
                raise ImageError("<array>: the float pixels contain NaN or infinity")
            a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(a)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        raise _UnsupportedType(f"unsupported image type {type(image).__name__}") from None
    if isinstance(image, Image.Image):
        name = getattr(image, "filename", "") or "<PIL image>"
        check_pixels(*image.size, name=name, max_pixels=max_pixels)
        return pil_to_rgb(image, name)
    if hasattr(image, "read"):
        return load_image(image, max_pixels=max_pixels)
    raise _UnsupportedType(
        f"unsupported image type {type(image).__name__}: pass a path, bytes, PIL image or array"
    )


def remove(
    image: Any,
    *,
    model: str | None = None,
    preset: str = "default",
    bg: str | None = None,
    mask_only: bool = False,
    weights: str | Path | None = None,
    accept_license: str | None = None,
    box: tuple[int, int, int, int] | None = None,
    keep: Any = None,
    drop: Any = None,
    hints: Any = None,
    **overrides: Any,
):
    """Cut the subject out of ``image``.

    Args:
        image: path, bytes, PIL image or array (RGB/RGBA uint8, or float in [0, 1]).
        model: registry model name, a ``+``-joined list (``"u2netp+isnet"``, fused) or
            ``"auto"``; ``None``: the preset's (u2netp; ``best``: ``auto``).
        preset: ``fast``, ``default`` or ``best`` (adds the trimap and matting stage).
        bg: background for the output (see :func:`nuggy.pipeline.compose.parse_background`):
            ``None`` keeps it transparent.
        mask_only: return the alpha matte as an ``L`` image.
        weights: a model file to use instead of the registry one.
        accept_license: licence id accepted for gated models (``agpl-3.0``).
        box: ``(x0, y0, x1, y1)``: the subject is inside (x1, y1 one past the last pixel).
        keep, drop: clicks ``[(x, y), …]`` on the subject / on background.
        hints: a hint image (array H×W 0 drop / 128 none / 255 keep, or with an alpha channel
            where transparent = no hint), a path to one, or a
            :class:`nuggy.pipeline.hints.Hints`. See :mod:`nuggy.pipeline.hints`.
        **overrides: any :class:`PipelineConfig` field (``tta=False``, ``refine_radius=8``…).

    Returns:
        PIL.Image: ``RGBA`` cut-out, ``RGB`` on a background, or ``L`` mask.
    """
    from PIL import Image

    from .pipeline.compose import compose, parse_background
    from .pipeline.settings import build_config

    cfg = build_config(preset, model=model, weights=str(weights) if weights else None, **overrides)
    background = parse_background(bg)
    preflight(cfg)
    hint = _hints(box, keep, drop, hints)
    rgb = as_rgb_array(image)
    pipe = get_pipeline(cfg, accept_license=accept_license)
    result = pipe.run(rgb) if hint is None else pipe.run(rgb, hints=hint)
    if mask_only:
        return Image.fromarray(result.alpha_u8(), "L")
    out = compose(rgb, result.alpha, foreground=result.foreground, background=background)
    return Image.fromarray(out, "RGBA" if out.shape[2] == 4 else "RGB")


def _hints(box, keep, drop, hints):
    """The :class:`~nuggy.pipeline.hints.Hints` of :func:`remove`'s arguments, or ``None``."""
    if box is None and keep is None and drop is None and hints is None:
        return None
    from .pipeline.hints import Hints, as_hints, load_hint_image

    if isinstance(hints, Hints):
        if box is not None or keep is not None or drop is not None:
            from .pipeline.hints import HintError

            raise HintError(
                "pass box= / keep= / drop= inside the Hints value, or hints= as an image, not both"
            )
        return hints
    if isinstance(hints, (str, os.PathLike)):
        hints = load_hint_image(hints)
    return as_hints(box=box, keep=keep, drop=drop, strokes=hints)
