"""Segmentation stage: load a predictor for a config, run it (with flip TTA), upsample once."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..registry import ModelSpec, get_spec, resolve_model
from ..runtime.preprocess import upsample

__all__ = [
    "spec_for_weights",
    "model_members",
    "is_file_member",
    "auto_models",
    "load_predictor",
    "load_predictors",
    "predict_probability",
    "predict_probabilities",
    "predict_fused",
]

#: ``model="auto"`` (the ``best`` preset): the default model plus, in this order, each further
#: registry model that is already in the cache and whose licence the caller accepted. Never
#: downloads anything but the default model.
AUTO_MODELS = ("u2netp", "isnet")
#: Fallback for a member of AUTO_MODELS that is not cached (same network, other weights).
_AUTO_ALTERNATIVES = {"isnet": ("isnet-quint8",)}


def model_members(model: str | None) -> list[str]:
    """The members of a ``+``-joined model string (``"u2netp+isnet"`` → two), in order.

    Raises:
        ValueError: an empty member (``"u2netp+"``) or a member given twice.
    """
    if model is None:
        return []
    members = [m.strip() for m in model.split("+")]
    if any(not m for m in members):
        raise ValueError(f"model {model!r}: empty name in a '+'-joined list")
    if len(set(members)) != len(members):
        raise ValueError(f"model {model!r}: a model is listed twice")
    return members


def auto_models(accept_license: str | None = None) -> list[str]:
    """Registry names ``model="auto"`` stands for: the default model (fetched if missing) and
    each further :data:`AUTO_MODELS` entry that is cached and whose licence gate is accepted."""
    from ..sources import cached_path

    chosen = [AUTO_MODELS[0]]
    accepted = (accept_license or "").strip().lower()
    for name in AUTO_MODELS[1:]:
        for candidate in (name, *_AUTO_ALTERNATIVES.get(name, ())):
            spec = get_spec(candidate)
            if spec.licence_gate and spec.licence_gate.lower() != accepted:
                continue
            if cached_path(spec) is not None:
                chosen.append(candidate)
                break
    return chosen


def is_file_member(member: str) -> bool:
    """True when a model-list member names a file (a path or a model-file suffix), not a name."""
    return os.sep in member or "/" in member or Path(member).suffix.lower() in (".onnx", ".pth", ".pt")


def spec_for_weights(weights: str | os.PathLike, model: str | None) -> ModelSpec:
    """The spec to run a user-supplied model file with: :func:`nuggy.registry.resolve_model`."""
    return resolve_model(model, weights)


DEEPLAB_FILES = {
    "deeplabv3_resnet101": "deeplabv3_resnet101_coco-586e9e4e.pth",
    "deeplabv3_resnet50": "deeplabv3_resnet50_coco-cd0a2569.pth",
    "deeplabv3_mobilenet_v3_large": "deeplabv3_mobilenet_v3_large-fc3c493d.pth",
}


def _torch_hub_checkpoints() -> Path:
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(home) / "hub" / "checkpoints"


def deeplab_predictor(config):
    """A DeepLabV3 predictor returning the probability of ``config.segmenter_class``.

    The checkpoint is ``config.weights`` or torchvision's file in the torch hub cache; the
    architecture follows the file name (resnet101 unless it names resnet50 / mobilenet_v3_large).
    The photo is resized to 520×520 with ImageNet mean/std, as torchvision evaluates it
    (torchvision keeps the aspect ratio; the stretch matches the salient models' input instead).
    """
    if not config.segmenter_class:
        raise ValueError("--segmenter deeplabv3 needs --class NAME (e.g. cat, dog, person)")
    if config.weights:
        path = Path(config.weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: DeepLabV3 checkpoint not found")
    else:
        hub = _torch_hub_checkpoints()
        found = [hub / f for f in DEEPLAB_FILES.values() if (hub / f).is_file()]
        if not found:
            raise FileNotFoundError(
                "DeepLabV3 needs torchvision's checkpoint (e.g. "
                f"{DEEPLAB_FILES['deeplabv3_resnet101']}): pass it with --weights PATH or put it "
                f"in {hub}"
            )
        path = found[0]
    arch = next((a for a in ("mobilenet_v3_large", "resnet50") if a in path.name), "resnet101")
    arch = f"deeplabv3_{arch}"
    try:
        from ..models.deeplab import DEEPLAB_MEAN, DEEPLAB_RESIZE, DEEPLAB_STD, class_index
        from ..runtime.torch import TorchPredictor
    except ImportError:
        raise ValueError("--segmenter deeplabv3 needs PyTorch: pip install 'nuggy[torch]'") from None
    class_index(config.segmenter_class)  # unknown class: a clear error before loading weights
    spec = ModelSpec(
        name=arch,
        architecture=arch,
        filename=path.name,
        sha256="",
        size=0,
        licence="BSD-3-Clause (torchvision)",
        input_size=(DEEPLAB_RESIZE, DEEPLAB_RESIZE),
        mean=tuple(255.0 * m for m in DEEPLAB_MEAN),
        std=tuple(255.0 * s for s in DEEPLAB_STD),
        description="torchvision DeepLabV3 (Pascal VOC classes)",
    )
    return TorchPredictor(arch, path, spec=spec, classes=config.segmenter_class)


def load_predictor(config, *, accept_license: str | None = None, download: bool = True):
    """The predictor for ``config`` (a PipelineConfig): fetches the model file if needed."""
    if config.segmenter == "deeplabv3":
        return deeplab_predictor(config)
    if config.segmenter != "salient":
        raise ValueError(f"unknown segmenter {config.segmenter!r}; choose salient or deeplabv3")
    if config.weights:
        path = Path(config.weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights file not found")
        spec = resolve_model(config.model, path)
    else:
        if not config.model:
            raise ValueError("no model: give a registry name (--model) or a file (--weights)")
        from ..sources import ensure_model

        spec = get_spec(config.model)
        path = ensure_model(spec, accept_license=accept_license, download=download)
    if spec.architecture == "rvm":  # recurrent video matting: its own feeding (runtime/rvm)
        if config.backend != "onnx" or path.suffix.lower() != ".onnx":
            raise ValueError(f"{path}: the rvm model runs as an .onnx file with --backend onnx")
        from ..runtime.rvm import RvmPredictor

        return RvmPredictor(path, spec, providers=config.providers, threads=config.threads)
    if config.backend == "onnx":
        if path.suffix.lower() != ".onnx":
            raise ValueError(
                f"{path}: the onnx backend needs an .onnx file; use --backend torch for PyTorch checkpoints"
            )
        from ..runtime.onnx import OnnxPredictor

        return OnnxPredictor(path, spec, providers=config.providers, threads=config.threads)
    if config.backend == "torch":
        try:
            from ..runtime.torch import TorchPredictor
        except ImportError:
            raise ValueError("the torch backend needs PyTorch: pip install 'nuggy[torch]'") from None
        return TorchPredictor(spec.architecture, path, spec=spec)
    raise ValueError(f"unknown backend {config.backend!r}; choose onnx or torch")


def load_predictors(config, *, accept_license: str | None = None, download: bool = True) -> list:
    """One predictor per member of ``config.model`` (``u2netp+isnet``, ``auto``, or one name).

    A member may be a registry name or a model file (a path; its architecture from its sidecar
    JSON). ``auto`` resolves with :func:`auto_models`.
    """
    multi = config.model == "auto" or "+" in (config.model or "")
    if config.segmenter != "salient" or not multi:
        return [load_predictor(config, accept_license=accept_license, download=download)]
    if config.weights:
        raise ValueError(
            "with several models, name each model file in the '+'-joined model list "
            "(--model u2netp+path/to/model.onnx) instead of --weights"
        )
    members = auto_models(accept_license) if config.model == "auto" else model_members(config.model)
    out = []
    for member in members:
        if is_file_member(member):
            member_cfg = replace(config, model=None, weights=member)
        else:
            get_spec(member)  # unknown name: the error lists the known ones
            member_cfg = replace(config, model=member, weights=None)
        out.append(load_predictor(member_cfg, accept_license=accept_license, download=download))
    return out


def predict_probability(predictor, image: np.ndarray, *, tta: bool = True) -> np.ndarray:
    """Full-resolution probability map: float32 H×W in [0, 1] for RGB uint8 H×W×3."""
    prob = predictor.predict(image, flip=tta)
    return upsample(prob, image.shape[:2])


def predict_probabilities(predictors, image: np.ndarray, *, tta: bool = True) -> list[np.ndarray]:
    """:func:`predict_probability` of each predictor (full-resolution float32 H×W maps)."""
    return [predict_probability(p, image, tta=tta) for p in predictors]


def predict_fused(
    predictors, image: np.ndarray, *, tta: bool = True, fusion: str = "reliability"
) -> np.ndarray:
    """One full-resolution probability map (float32 H×W in [0, 1]) from one or more models:
    each model's map (:func:`predict_probability`, flip TTA where ``tta``), fused with
    :func:`nuggy.pipeline.fuse.fuse_probabilities` when there are several.

    The fusion weights come from the flip-averaged maps. Computing them from each model's
    un-flipped map instead (the rule was fitted on those) was measured on the tune halves with
    u2netp+isnet ``default``: ECSSD SAD / MSE / Grad / failures 4.354 / 25.75 / 5.05 / 35 with
    the averaged maps, 4.440 / 26.54 / 5.14 / 34 with the un-flipped ones; alphamatting SAD
    67.27 vs 67.03. Not better on both: not taken.
    """
    probs = predict_probabilities(predictors, image, tta=tta)
    if len(probs) == 1:
        return probs[0]
    from .fuse import fuse_probabilities

    return fuse_probabilities(probs, method=fusion)
