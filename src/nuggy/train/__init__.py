"""Training: fine-tune IS-Net / U²-Net on a weighted mixture of datasets, or train FBA Matting
on composites (``task: fba``); DDP-ready.

Modules (import them directly; nothing here imports torch):

- :mod:`~nuggy.train.config`    YAML → validated dataclasses (:func:`load_config`)
- :mod:`~nuggy.train.data`      dataset layouts (DIS5K, AM-2k, ThinObject-5K, Trans10K,
                                generic), augmentation, torch datasets
- :mod:`~nuggy.train.mixture`   the weighted, reproducible, DDP-sharded sampler
- :mod:`~nuggy.train.losses`    side BCE / IoU, IS-Net feature sync, FBA matting losses
- :mod:`~nuggy.train.loop`      :func:`train` (AMP, accumulation, checkpoints, exact resume)
- :mod:`~nuggy.train.preflight` every check that can fail, run before the first step
- :mod:`~nuggy.train.matting_data` foreground layouts, compositing, FBA input encodings
- :mod:`~nuggy.train.fba_task`  the FBA stage on the shared trainer
- :mod:`~nuggy.train.synthetic` thin-structure composites for tests and benchmarks

Entry points: ``nuggy train --config X.yaml`` and ``torchrun … -m nuggy.train --config X.yaml``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["train", "load_config", "TrainConfig", "ConfigError"]

_LAZY = {"train": "loop", "load_config": "config", "TrainConfig": "config", "ConfigError": "config"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
