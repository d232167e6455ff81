"""Export a PyTorch model to ONNX, check it against ONNX Runtime, and write a spec sidecar.

The exported graph has one input ``input`` ``(1, 3, h, w)`` (normalised as the sidecar says)
and one output ``output`` ``(1, 1, h, w)``: the probability map (sigmoid already applied, so
``activation`` is ``none`` and ``output_index`` 0). The sidecar ``<file>.json`` next to the
``.onnx`` carries ``arch``, ``input_size``, ``mean``, ``std`` (0..255 units), ``activation``,
``output_index`` and the parity measured, so the pipeline can run ``--weights model.onnx``
(:func:`spec_from_sidecar` turns it into a :class:`~nuggy.registry.ModelSpec`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .registry import load_checkpoint, resolve_architecture

__all__ = [
    "ProbabilityHead",
    "export_onnx",
    "read_sidecar",
    "spec_from_sidecar",
    "ExportParityError",
]


def _default_normalisation() -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    from nuggy.registry import IMAGENET_MEAN, IMAGENET_STD, get_spec

    table = {arch: (get_spec(arch).mean, get_spec(arch).std) for arch in ("u2net", "u2netp", "isnet")}
    for arch in ("deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large"):
        table[arch] = (IMAGENET_MEAN, IMAGENET_STD)
    return table


#: mean/std (0..255 units) per architecture, used when not given: the registry's own.
DEFAULT_NORMALISATION = _default_normalisation()


class ExportParityError(RuntimeError):
    """ONNX Runtime's output differs from PyTorch's by more than the tolerance."""


class ProbabilityHead(nn.Module):
    """Wraps a segmentation module so it returns only its main probability map ``(N,1,H,W)``.

    U²-Net: the fused map; IS-Net: ``maps[0]``; DeepLabV3: the summed probability of
    ``classes``.
    """

    def __init__(self, model: nn.Module, classes: Sequence[str] | str | None = None) -> None:
        super().__init__()
        self.model = model
        self.classes = classes

    def forward(self, x: Tensor) -> Tensor:
        if hasattr(self.model, "class_probability"):
            if not self.classes:
                raise ValueError("a DeepLabV3 export needs classes=, e.g. ['person']")
            return self.model.class_probability(x, self.classes)
        out = self.model(x)
        if isinstance(out, Tensor):
            return out
        first = out[0]
        return first[0] if isinstance(first, (list, tuple)) else first


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _test_inputs(input_size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """A smooth synthetic 'photo' and a noise image, both normalised roughly like real input."""
    h, w = input_size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = np.exp(-(((yy - h / 2) / (h / 4)) ** 2 + ((xx - w / 2) / (w / 5)) ** 2))
    smooth = np.stack([blob * 2 - 1, np.sin(xx / 9) * 0.8, np.cos(yy / 13) * 0.8])[None]
    noise = rng.standard_normal((1, 3, h, w)).astype(np.float32)
    return [smooth.astype(np.float32), noise]


def export_onnx(
    checkpoint_or_module: str | os.PathLike | nn.Module,
    out_path: str | os.PathLike,
    *,
    arch: str,
    input_size: tuple[int, int],
    opset: int = 17,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    classes: Sequence[str] | str | None = None,
    atol: float = 1e-3,
    example_inputs: Sequence[np.ndarray] | None = None,
) -> Path:
    """Export to ``out_path`` (``.onnx``) plus ``out_path.with_suffix('.json')``.

    ``checkpoint_or_module``: an ``nn.Module`` of architecture ``arch`` or a checkpoint for
    :func:`~nuggy.models.registry.load_checkpoint`. The export is checked on CPU with ONNX
    Runtime against PyTorch on ``example_inputs`` (``(1,3,h,w)`` float32, already normalised;
    default: two synthetic inputs); raises :class:`ExportParityError` when the largest
    absolute difference exceeds ``atol``. Returns the ``.onnx`` path.
    """
    import onnxruntime as ort

    arch = resolve_architecture(arch)
    if isinstance(checkpoint_or_module, nn.Module):
        model = checkpoint_or_module
    else:
        model = load_checkpoint(arch, checkpoint_or_module)
    if mean is None or std is None:
        if arch not in DEFAULT_NORMALISATION:
            raise ValueError(f"give mean= and std= for architecture {arch!r}")
        mean, std = DEFAULT_NORMALISATION[arch]
    h, w = (int(v) for v in input_size)
    head = ProbabilityHead(model, classes).eval().cpu().float()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    dummy = torch.zeros(1, 3, h, w)
    # the TorchScript exporter (dynamo=False) needs no onnxscript and keeps module paths in
    # node names; it warns that it is deprecated
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            head,
            (dummy,),
            str(tmp),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
    # parity: ONNX Runtime (CPU) vs PyTorch
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(tmp), sess_options=opts, providers=["CPUExecutionProvider"])
    inputs = list(example_inputs) if example_inputs is not None else _test_inputs((h, w))
    worst = 0.0
    for x in inputs:
        x = np.ascontiguousarray(x, np.float32)
        ref = sess.run(["output"], {"input": x})[0]
        with torch.no_grad():
            got = head(torch.from_numpy(x)).numpy()
        if ref.shape != got.shape:
            raise ExportParityError(f"output shape {ref.shape} (ONNX) vs {got.shape} (torch)")
        worst = max(worst, float(np.abs(ref - got).max()))
    if not worst <= atol:
        tmp.unlink(missing_ok=True)
        raise ExportParityError(
            f"ONNX Runtime differs from PyTorch by {worst:.3g} (> atol={atol}); not written"
        )
    os.replace(tmp, out)
    sidecar = {
        "arch": arch,
        "input_size": [h, w],
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "activation": "none",
        "output_index": 0,
        "input_name": "input",
        "output_name": "output",
        "opset": opset,
        "classes": [classes] if isinstance(classes, str) else list(classes or []),
        "sha256": _sha256(out),
        "size": out.stat().st_size,
        "parity_max_abs_diff": worst,
        "exported_with": f"torch {torch.__version__}",
    }
    from nuggy.io import atomic_write_bytes

    atomic_write_bytes(out.with_suffix(".json"), (json.dumps(sidecar, indent=2) + "\n").encode())
    return out


def read_sidecar(onnx_path: str | os.PathLike) -> dict:
    """The sidecar JSON written next to ``onnx_path`` by :func:`export_onnx`."""
    side = Path(onnx_path).with_suffix(".json")
    if not side.exists():
        raise FileNotFoundError(f"{side}: no spec sidecar next to {Path(onnx_path).name}")
    return json.loads(side.read_text())


def spec_from_sidecar(onnx_path: str | os.PathLike):
    """A :class:`~nuggy.registry.ModelSpec` for an exported file (not registered)."""
    from nuggy.registry import spec_from_sidecar as read_spec

    return read_spec(onnx_path)
