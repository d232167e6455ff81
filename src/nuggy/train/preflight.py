"""Checks that run before the first training step (and in ``nuggy train --check``).

:func:`preflight` validates everything that can fail later, so a run never trains for hours
and then stops on a licence or a missing folder:

* ``model.init``: the file exists, or the registry model exists, has the right architecture
  and its licence gate is accepted (``model.accept_license``) — checked without fetching or
  converting anything;
* ``gt_encoder.weights``: the file exists (IS-Net with intermediate supervision);
* every active dataset: the root and split exist and hold pairs (training and validation
  splits); ``task: fba``: the background folders hold images and ``fba.val.root`` opens;
* a warning for each transparent-object dataset mixed in (Trans10K, or ``transparent:
  true``).

Nothing here imports torch, so ``--check`` stays fast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, TrainConfig

__all__ = ["TRANSPARENT_REASON", "Report", "resolve_initial_weights", "preflight"]

log = logging.getLogger("nuggy.train")

#: why mixing transparent objects in deserves a warning (the recipe's finding)
TRANSPARENT_REASON = (
    "its masks label see-through objects (glass, plastic) as solid foreground or cut through "
    "them; in the recipe's experiments mixing such data in made fur and hair edges worse. "
    "Drop it with data.exclude: [{name}] unless your subjects are transparent"
)


@dataclass
class Report:
    """What :func:`preflight` found: one line per dataset, and the warnings."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def resolve_initial_weights(arch: str, init: str, accept_license: str | None):
    """Check ``model.init`` without loading anything: a file path (returned as a ``Path``), or
    a registry model whose licence gate ``accept_license`` opens (its spec is returned).

    ``fba``: a bare file name (``FBA.pth``) is also looked up in the model cache.

    Raises:
        ConfigError: not a file nor a registry name, wrong architecture, licence not accepted.
    """
    path = Path(init).expanduser()
    if path.is_file():
        return path
    if arch == "fba":
        from nuggy.sources import models_dir

        cached = models_dir() / path.name
        if path.parent == Path(".") and cached.is_file():
            return cached
        raise ConfigError(
            f"model.init: {init}: FBA checkpoint not found (nor in {models_dir()}); give the "
            "path of FBA.pth (from the FBA Matting authors' repository) or of a checkpoint "
            "written by nuggy train, or null for random weights"
        )
    from nuggy.registry import UnknownModelError, get_spec

    try:
        spec = get_spec(init)
    except UnknownModelError:
        raise ConfigError(
            f"model.init: {init!r} is neither a file nor a registry model name "
            "(nuggy models list shows the names)"
        ) from None
    if spec.architecture != arch:
        raise ConfigError(
            f"model.init: registry model {init!r} is a {spec.architecture}, but model.arch is {arch}"
        )
    if getattr(spec, "licence_gate", None) and accept_license != spec.licence_gate:
        raise ConfigError(
            f"model.init: the {init} weights are {spec.licence} (opt-in); set "
            f"model.accept_license: {spec.licence_gate} (or --set model.accept_license="
            f"{spec.licence_gate}) to accept it, or start from a .pth file"
        )
    return spec


def preflight(cfg: TrainConfig, *, resume: bool = False, warn: bool = True) -> Report:
    """Run every check that can fail before training (see the module docstring).

    Args:
        resume: the run resumes from a checkpoint (the initial weights are not read then).
        warn: log the warnings (rank 0).

    Raises:
        ConfigError: initial weights or their licence.
        DatasetError: a dataset root, split, background folder or validation folder is
            missing or empty (the message names it).
    """
    from .data import open_source

    rep = Report()
    m = cfg.model
    if m.init and not resume:
        resolve_initial_weights(m.arch, m.init, m.accept_license)
    if cfg.uses_gt_encoder and cfg.gt_encoder.weights and not resume:
        if not Path(cfg.gt_encoder.weights).expanduser().is_file():
            raise ConfigError(
                f"gt_encoder.weights: {cfg.gt_encoder.weights}: file not found (a GT encoder "
                "from a run's gt_encoder/best.pt), or null to train one (stage 1)"
            )
    for d in cfg.data.datasets:
        if d.name in cfg.data.exclude:
            rep.lines.append(f"{d.name}: excluded")
    if cfg.task == "fba":
        from .matting_data import list_backgrounds, open_fba_val, open_matting_source

        for d in cfg.active_datasets:
            n = len(open_matting_source(d))
            rep.lines.append(f"{d.name} ({d.layout}): {n} foregrounds, weight {d.weight:g}")
        nb = len(list_backgrounds(cfg.data.backgrounds))
        rep.lines.append(f"backgrounds: {nb} images in {', '.join(cfg.data.backgrounds)}")
        nv = len(open_fba_val(cfg))
        rep.lines.append(f"validation: {nv} photos" + (f" in {cfg.fba.val.root}" if nv else ""))
    else:
        for d in cfg.active_datasets:
            n = len(open_source(d))
            nv = len(open_source(d, val=True)) if d.val_split else 0
            rep.lines.append(f"{d.name} ({d.layout}): {n} training samples, {nv} validation, "
                             f"weight {d.weight:g}")  # fmt: skip
    for d in cfg.transparent_datasets:
        why = "Trans10K" if d.layout == "trans10k" else "flagged transparent: true"
        rep.warnings.append(
            f"dataset {d.name!r} ({why}) is mixed in: " + TRANSPARENT_REASON.format(name=d.name)
        )
    if warn:
        for w in rep.warnings:
            log.warning("%s", w)
    return rep
