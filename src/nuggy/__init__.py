"""Nuggy: cut subjects out of photos with production-grade edges.

Quick use::

    import nuggy
    cutout = nuggy.remove("photo.jpg")            # PIL.Image, RGBA
    cutout.save("photo.png")

    from nuggy import Pipeline, PipelineConfig
    result = Pipeline(PipelineConfig(model="u2netp")).run(rgb_uint8_array)
    result.alpha, result.foreground, result.timings

Every error nuggy raises for a bad input, option, model or output is a ``nuggy.NuggyError``
(see :mod:`nuggy.errors`); its message names the file, field or value and the fix.

Heavy modules (onnxruntime, OpenCV, PyTorch) are imported on first use, so ``import nuggy``
and ``nuggy --help`` stay instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "NuggyError",
    "remove",
    "Pipeline",
    "PipelineConfig",
    "Result",
    "preset",
    "load_model",
    "list_models",
    "load_image",
    "save_image",
]

_LAZY = {
    "NuggyError": ("nuggy.errors", "NuggyError"),
    "remove": ("nuggy.api", "remove"),
    "load_model": ("nuggy.api", "load_model"),
    "Pipeline": ("nuggy.pipeline.pipeline", "Pipeline"),
    "PipelineConfig": ("nuggy.pipeline.config", "PipelineConfig"),
    "Result": ("nuggy.pipeline.config", "Result"),
    "preset": ("nuggy.pipeline.config", "preset"),
    "list_models": ("nuggy.registry", "list_models"),
    "load_image": ("nuggy.io", "load_image"),
    "save_image": ("nuggy.io", "save_image"),
}

if TYPE_CHECKING:  # pragma: no cover
    from .api import load_model, remove
    from .errors import NuggyError
    from .io import load_image, save_image
    from .pipeline.config import PipelineConfig, Result, preset
    from .pipeline.pipeline import Pipeline
    from .registry import list_models


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'nuggy' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
