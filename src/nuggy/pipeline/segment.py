"""Segmentation stage: load a predictor for a config, run it (with flip TTA), upsample once."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..registry import ModelSpec, get_spec, spec_from_sidecar
from ..runtime.preprocess import upsample

__all__ = ["spec_for_weights", "load_predictor", "predict_probability"]


def spec_for_weights(weights: str | os.PathLike, model: str | None) -> ModelSpec:
    """The spec to run a user-supplied model file with.

    A JSON sidecar next to the file (``model.json`` as written by ``nuggy models export``, or
    ``model.onnx.json``) wins; otherwise the registry spec of ``model`` is used with the
    file's own name and no checksum.
    """
    path = Path(weights)
    try:
        return spec_from_sidecar(path)
    except FileNotFoundError:
        pass
    if model is None:
        raise ValueError(
            f"{path}: no spec file beside it ({path.name}.json); say which architecture it is "
            "with --model u2netp|u2net|isnet"
        )
    return replace(get_spec(model), filename=path.name, sha256="", size=0)


def load_predictor(config, *, accept_license: str | None = None, download: bool = True):
    """The predictor for ``config`` (a PipelineConfig): fetches the model file if needed."""
    if config.weights:
        path = Path(config.weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights file not found")
        spec = spec_for_weights(path, config.model)
    else:
        if not config.model:
            raise ValueError("no model: give a registry name (--model) or a file (--weights)")
        from ..sources import ensure_model

        spec = get_spec(config.model)
        path = ensure_model(spec, accept_license=accept_license, download=download)
    if config.backend == "onnx":
        if path.suffix.lower() != ".onnx":
            raise ValueError(
                f"{path}: the onnx backend needs an .onnx file; use --backend torch for "
                "PyTorch checkpoints"
            )
        from ..runtime.onnx import OnnxPredictor

        return OnnxPredictor(path, spec, providers=config.providers, threads=config.threads)
    if config.backend == "torch":
        try:
            from ..runtime.torch import TorchPredictor
        except ImportError:
            raise ValueError(
                "the torch backend needs PyTorch: pip install 'nuggy[torch]'"
            ) from None
        return TorchPredictor(spec.architecture, path, spec=spec)
    raise ValueError(f"unknown backend {config.backend!r}; choose onnx or torch")


def predict_probability(predictor, image: np.ndarray, *, tta: bool = True) -> np.ndarray:
    """Full-resolution probability map: float32 H×W in [0, 1] for RGB uint8 H×W×3."""
    prob = predictor.predict(image, flip=tta)
    return upsample(prob, image.shape[:2])
