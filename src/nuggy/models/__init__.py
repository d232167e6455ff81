"""PyTorch models: pure ``nn.Module`` s registered by name, with strict checkpoint loading.

Importing this package does not import torch; the names below are loaded on first use.

- :func:`create_model` / :func:`list_architectures` (``u2net``, ``u2netp``, ``isnet``,
  ``isnet_gt_encoder``, ``fba``, ``deeplabv3_resnet50``, ``deeplabv3_resnet101``,
  ``deeplabv3_mobilenet_v3_large``)
- :func:`load_checkpoint` (upstream ``.pth`` with a per-checkpoint key-remap, or a registry
  ``.onnx`` converted by :func:`convert_onnx`)
- :func:`convert_onnx` / :func:`convert_registry_model` (ONNX initialisers → state dict)
- :func:`export_onnx` (torch → ONNX with a parity check and a spec sidecar)
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "create_model",
    "list_architectures",
    "load_checkpoint",
    "load_state_dict_strict",
    "remap_checkpoint",
    "convert_onnx",
    "convert_registry_model",
    "export_onnx",
    "fba_fusion",
]

_LAZY = {
    "create_model": "registry",
    "list_architectures": "registry",
    "load_checkpoint": "registry",
    "load_state_dict_strict": "registry",
    "remap_checkpoint": "registry",
    "convert_onnx": "convert",
    "convert_registry_model": "convert",
    "export_onnx": "export",
    "fba_fusion": "fba",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
