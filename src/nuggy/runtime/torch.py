"""PyTorch predictors: :class:`TorchPredictor` (same interface as
:class:`nuggy.runtime.onnx.OnnxPredictor`) and :class:`FBAPredictor` (alpha matting).

Pre-processing is shared with the ONNX path (:func:`nuggy.runtime.preprocess.to_model_input`),
so both runtimes see identical input tensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .preprocess import predict_flip_tta, to_model_input

__all__ = ["TorchPredictor", "FBAPredictor", "resolve_spec"]


def resolve_spec(arch: str, weights_path: str | os.PathLike | None = None):
    """The :class:`~nuggy.registry.ModelSpec` giving pre-processing for ``arch`` with
    ``weights_path``: :func:`nuggy.registry.resolve_model` (the sidecar of an exported file
    wins; a registry name describes any other file). An architecture name that is no registry
    entry and a file without a sidecar is an error naming the fix (no guess)."""
    from nuggy.registry import UnknownModelError, get_spec, resolve_model

    try:
        get_spec(arch)
        name = arch
    except UnknownModelError:
        name = None
    return resolve_model(name, weights_path) if weights_path is not None else get_spec(arch)


def _cached_weights(spec) -> Path:
    """A converted ``<cache>/<name>.pth`` (from ``convert_registry_model``) if present, else the
    cached ONNX file (converted on load)."""
    from nuggy.sources import cached_path

    onnx_path = cached_path(spec)
    if onnx_path is None:
        raise FileNotFoundError(
            f"{spec.name} is not in the cache; fetch it (nuggy models pull {spec.name}) or pass weights_path"
        )
    pth = Path(onnx_path).with_name(f"{spec.name}.pth")
    if pth.exists() and pth.stat().st_mtime >= Path(onnx_path).stat().st_mtime:
        return pth
    return Path(onnx_path)


class TorchPredictor:
    """Runs one salient-object model with PyTorch; pre/post-processing from its spec.

    Args:
        arch: registry model name (``u2netp``, ``u2net``, ``isnet``…) or torch architecture.
        weights_path: upstream/converted ``.pth`` or a registry ``.onnx`` (converted on load).
            ``None``: the registry model's cached ONNX file, converted.
        device: torch device (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
        spec: override the :class:`~nuggy.registry.ModelSpec` (pre-processing).
        model: an already built module (``weights_path`` is then ignored).
        classes: for class-aware models (DeepLabV3): the class name(s) whose probability is
            returned (``"cat"``, ``["person", "dog"]``).
    """

    def __init__(
        self,
        arch: str,
        weights_path: str | os.PathLike | None = None,
        *,
        device: str | torch.device = "cpu",
        spec=None,
        model: nn.Module | None = None,
        classes: str | list[str] | None = None,
    ) -> None:
        from nuggy.models.export import ProbabilityHead
        from nuggy.models.registry import load_checkpoint, resolve_architecture

        self.spec = spec or resolve_spec(arch, weights_path)
        self.arch = resolve_architecture(arch)
        self.device = torch.device(device)
        if model is None:
            if weights_path is None:
                weights_path = _cached_weights(self.spec)
            model = load_checkpoint(self.arch, weights_path)
        self.weights_path = Path(weights_path) if weights_path is not None else None
        self.model = ProbabilityHead(model, classes).eval().to(self.device)

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.spec.input_size)

    def run_tensor(self, x: np.ndarray) -> np.ndarray:
        """Run a prepared ``1×3×h×w`` float32 input; returns the ``h×w`` probability map."""
        with torch.inference_mode():
            y = self.model(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device))
        # the modules apply their own sigmoid/softmax: the output is a probability already
        y = y.float().cpu().numpy().reshape(y.shape[-2], y.shape[-1])
        return np.clip(y, 0.0, 1.0).astype(np.float32, copy=False)

    def predict(self, image: np.ndarray, *, flip: bool = False) -> np.ndarray:
        """Probability map at model resolution (float32 h×w in [0, 1]) for RGB uint8 H×W×3.

        ``flip``: also predict the horizontally flipped input, un-flip it and average (TTA).
        """
        return predict_flip_tta(self.run_tensor, to_model_input(image, self.spec), flip=flip)


def _load_fba(weights: str | os.PathLike) -> nn.Module:
    """FBA Matting from ``FBA.pth``, a plain state dict, or a ``nuggy train`` checkpoint."""
    from nuggy.errors import ConfigError
    from nuggy.models.registry import create_model, load_state_dict_strict, remap_checkpoint

    obj = torch.load(Path(weights), map_location="cpu", weights_only=True)
    kwargs: dict = {}
    if isinstance(obj, dict) and obj.get("format") == "nuggy-train-checkpoint":
        if obj.get("arch") != "fba":
            raise ConfigError(
                f"{weights}: a nuggy train checkpoint of {obj.get('arch')} "
                f"({obj.get('kind')}), not FBA Matting; --matting-weights takes FBA.pth or a "
                "checkpoint of a task: fba run (RUN/best.pt)"
            )
        kwargs = dict(obj.get("model_kwargs") or {})
        obj = obj["model"]
    elif isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    model = create_model("fba", **kwargs)
    load_state_dict_strict(model, remap_checkpoint("fba", sd))
    return model.eval()


class FBAPredictor:
    """FBA Matting on one image and trimap (CPU by default).

    Args:
        weights: ``FBA.pth`` (official), a state dict saved from :class:`FBAMatting`, or a
            checkpoint written by ``nuggy train`` with ``task: fba`` (``last.pt`` /
            ``best.pt``; its ``model_kwargs``, e.g. a reduced width, are honoured).
        model: an already built :class:`~nuggy.models.fba.FBAMatting` (instead of ``weights``).
        device: torch device.

    Raises:
        ConfigError: ``weights`` is a ``nuggy train`` checkpoint of another network.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        model: nn.Module | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if model is None:
            if weights is None:
                raise ValueError("FBAPredictor needs weights= (FBA.pth) or model=")
            model = _load_fba(weights)
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    def predict(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``image`` RGB uint8 H×W×3, ``trimap`` uint8 H×W (0 bg, 255 fg, else unknown) →
        ``(alpha H×W, fg H×W×3, bg H×W×3)``, float32 in [0, 1].

        The inputs are padded (reflection) to a multiple of 8 and the outputs cropped back.
        Known trimap regions are enforced: alpha is 0/1 there, F equals the image where
        alpha = 1 and B where alpha = 0.
        """
        from nuggy.models.fba import STRIDE, normalise_image, trimap_clicks, trimap_two_channel

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected RGB uint8 H×W×3, got {image.dtype} {image.shape}")
        if trimap.shape != image.shape[:2]:
            raise ValueError(f"trimap shape {trimap.shape} != image shape {image.shape[:2]}")
        h, w = trimap.shape
        ph, pw = (-h) % STRIDE, (-w) % STRIDE
        mode = "reflect" if (h > ph and w > pw) else "edge"
        img = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode).astype(np.float32) / 255.0
        tri = np.pad(trimap, ((0, ph), (0, pw)), mode=mode)
        two = trimap_two_channel(tri)

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, np.float32))[None].to(self.device)

        with torch.inference_mode():
            out = self.model(
                t(img.transpose(2, 0, 1)),
                t(two.transpose(2, 0, 1)),
                t(normalise_image(img).transpose(2, 0, 1)),
                t(trimap_clicks(two)),
            )
        out = out[0, :, :h, :w].float().cpu().numpy()
        alpha = np.ascontiguousarray(out[0])
        fg = np.ascontiguousarray(out[1:4].transpose(1, 2, 0))
        bg = np.ascontiguousarray(out[4:7].transpose(1, 2, 0))
        src = img[:h, :w]
        alpha[trimap == 0] = 0.0
        alpha[trimap == 255] = 1.0
        fg[alpha == 1] = src[alpha == 1]
        bg[alpha == 0] = src[alpha == 0]
        return alpha, fg, bg
