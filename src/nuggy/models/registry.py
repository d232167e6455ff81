"""Registry of PyTorch model factories and their checkpoint key-remaps.

Each architecture registers a factory under a name (``u2net``, ``isnet``, ``fba`` …) together
with a small function that maps its upstream checkpoint's keys onto the module's own.
:func:`load_checkpoint` builds the module and loads a file strictly (``.pth`` state dicts, or
a registry ``.onnx`` file through :mod:`nuggy.models.convert`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "register_model",
    "create_model",
    "list_architectures",
    "resolve_architecture",
    "remap_checkpoint",
    "load_state_dict_strict",
    "load_checkpoint",
    "read_state_dict",
    "strip_prefixes",
]

Remap = Callable[[Mapping[str, Tensor]], dict[str, Tensor]]


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., nn.Module]
    remap: Remap | None


_MODELS: dict[str, _Entry] = {}
_BUILTIN_LOADED = False


def register_model(name: str, *, remap: Remap | None = None):
    """Decorator: register ``factory`` under ``name`` with an optional checkpoint key-remap."""

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS and _MODELS[name].factory is not factory:
            raise ValueError(f"torch model {name!r} is already registered")
        _MODELS[name] = _Entry(factory, remap)
        return factory

    return deco


def _load_builtin() -> None:
    global _BUILTIN_LOADED
    if not _BUILTIN_LOADED:
        _BUILTIN_LOADED = True
        from . import deeplab, fba, isnet, u2net  # noqa: F401  (registration side effects)


def list_architectures() -> list[str]:
    """Names accepted by :func:`create_model`."""
    _load_builtin()
    return sorted(_MODELS)


def resolve_architecture(name: str) -> str:
    """A torch architecture name for ``name``: itself, or a registry spec's ``architecture``
    (``isnet-quint8`` → ``isnet``)."""
    _load_builtin()
    if name in _MODELS:
        return name
    from nuggy.registry import UnknownModelError, get_spec

    try:
        arch = get_spec(name).architecture
    except UnknownModelError:
        arch = None
    if arch not in _MODELS:
        raise KeyError(f"unknown torch model {name!r}; known: {', '.join(sorted(_MODELS))}") from None
    return arch


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered architecture ``name`` (random weights); kwargs go to its factory."""
    return _MODELS[resolve_architecture(name)].factory(**kwargs)


def strip_prefixes(
    state_dict: Mapping[str, Tensor], prefixes: tuple[str, ...] = ("module.", "_orig_mod.")
) -> dict[str, Tensor]:
    """Drop wrapper prefixes (DataParallel ``module.``, ``torch.compile``'s ``_orig_mod.``)."""
    out: dict[str, Tensor] = {}
    for k, v in state_dict.items():
        changed = True
        while changed:
            changed = False
            for p in prefixes:
                if k.startswith(p):
                    k = k[len(p) :]
                    changed = True
        out[k] = v
    return out


def remap_checkpoint(name: str, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Apply the key-remap registered for architecture ``name``."""
    entry = _MODELS[resolve_architecture(name)]
    return entry.remap(state_dict) if entry.remap else strip_prefixes(state_dict)


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Tensors of a ``.pth``/``.pt`` file (``weights_only``), unwrapping ``{"state_dict": …}``-style
    containers."""
    obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model_state_dict", "model", "net", "params"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: not a state dict (got {type(obj).__name__})")
    return {k: v for k, v in obj.items() if isinstance(v, Tensor)}


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, Tensor]) -> nn.Module:
    """``model.load_state_dict(state_dict, strict=True)`` with a readable error.

    Missing ``num_batches_tracked`` buffers (checkpoints from PyTorch < 0.4.1) are filled with 0;
    anything else missing, unexpected or of the wrong shape raises ``RuntimeError``.
    """
    sd = dict(state_dict)
    own = model.state_dict()
    for k, v in own.items():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros_like(v, device="cpu")
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = sorted(k for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:5])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:5])})")
        if wrong:
            w = ", ".join(f"{k}: {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in wrong[:5])
            parts.append(f"{len(wrong)} of the wrong shape ({w})")
        raise RuntimeError(f"checkpoint does not match {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(sd, strict=True)
    return model


def load_checkpoint(model_name: str, path: str | os.PathLike, **kwargs) -> nn.Module:
    """Build ``model_name`` and load ``path`` strictly; returns the module in eval mode.

    ``path`` is an upstream ``.pth`` (remapped with the architecture's key-remap), a state
    dict saved by Nuggy, or an ``.onnx`` file of the registry (converted with
    :func:`nuggy.models.convert.convert_onnx`). kwargs go to the factory.
    """
    arch = resolve_architecture(model_name)
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from .convert import convert_onnx

        sd = convert_onnx(path, arch)
    else:
        sd = remap_checkpoint(arch, read_state_dict(path))
    model = create_model(arch, **kwargs)
    load_state_dict_strict(model, sd)
    return model.eval()
