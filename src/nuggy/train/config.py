"""Training configuration: YAML → validated dataclasses → resolved YAML saved with every run.

:func:`load_config` reads a YAML file, applies ``--set section.key=value`` overrides and
validates everything (unknown keys, types, ranges, dataset names) with messages that name the
offending key. :func:`config_to_dict` / :func:`save_config` write the resolved form back, so a
run directory always holds the exact configuration it was trained with.

Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from .. import errors

__all__ = [
    "ConfigError",
    "ModelConfig",
    "GTEncoderConfig",
    "DatasetConfig",
    "DataConfig",
    "CropConfig",
    "ColorJitterConfig",
    "AugmentConfig",
    "LossConfig",
    "OptimConfig",
    "ScheduleConfig",
    "RunConfig",
    "ValConfig",
    "TrainConfig",
    "FBAConfig",
    "FBAValConfig",
    "TASKS",
    "ARCHS",
    "DATASET_LAYOUTS",
    "VAL_METRICS",
    "HIGHER_IS_BETTER",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "config_to_yaml",
    "save_config",
    "apply_overrides",
]

TASKS = ("segmentation", "fba")
ARCHS = ("isnet", "u2net", "u2netp", "fba")
DATASET_LAYOUTS = (
    "dis5k", "am2k", "thinobject5k", "trans10k", "generic", "composition1k", "distinctions646",
)  # fmt: skip
#: layouts that hold foreground + alpha for compositing (``task: fba``)
MATTING_LAYOUTS = ("composition1k", "distinctions646", "am2k", "generic")
#: layouts whose objects are transparent (glass, plastic): their masks teach the network to
#: cut through see-through regions, which the recipe found hurts fur edges
TRANSPARENT_LAYOUTS = ("trans10k",)
VAL_METRICS = ("max_f", "mae", "hce", "sad", "mse", "grad", "conn")
#: validation metrics where a larger value is better (the rest: smaller is better)
HIGHER_IS_BETTER = frozenset({"max_f"})


class ConfigError(errors.ConfigError):
    """The training configuration is invalid; the message names the key and the fix."""


# ---------------------------------------------------------------------------------------------
# schema


@dataclass
class ModelConfig:
    """Which network to train and where its starting weights come from."""

    arch: Literal["isnet", "u2net", "u2netp", "fba"] = "u2netp"
    #: registry model name (its ONNX weights are converted), a ``.pth``/``.pt`` path, or null
    #: for random initialisation
    init: str | None = None
    #: licence id to accept for gated registry weights (``agpl-3.0`` for ``isnet``)
    accept_license: str | None = None
    #: divide every channel count (tiny variants for tests)
    width_divisor: int = 1
    #: keep BatchNorm statistics fixed (eval mode) while training; ``auto``: when the
    #: starting weights have BatchNorm folded into the convolutions (ONNX-converted weights)
    freeze_bn: Literal["auto", "true", "false"] = "auto"
    #: convert BatchNorm to SyncBatchNorm under multi-GPU DDP
    sync_bn: bool = False


@dataclass
class GTEncoderConfig:
    """IS-Net intermediate supervision (DIS paper, §4): stage 1 trains a ground-truth encoder on
    masks; stage 2 matches the segmentation net's features to the frozen encoder's."""

    enabled: bool = True
    #: a trained GT-encoder state dict (``.pth``); null: stage 1 trains one
    weights: str | None = None
    steps: int = 2000
    lr: float = 1e-3
    #: stage 1 stops early once the validation maxF of the reconstructions reaches this
    target_max_f: float = 0.99
    feature_loss: Literal["mse", "l1", "smooth_l1", "kl"] = "mse"
    feature_weight: float = 1.0
    checkpoint_every: int = 500
    val_every: int = 500


@dataclass
class DatasetConfig:
    """One training source."""

    name: str
    layout: Literal[
        "dis5k", "am2k", "thinobject5k", "trans10k", "generic", "composition1k", "distinctions646"
    ]
    root: str
    #: sub-folder (DIS5K ``DIS-TR``, AM-2k ``train``, Trans10K ``train``) or list name
    #: (ThinObject-5K ``train`` → ``list/train.txt``); null: ``root`` itself
    split: str | None = None
    #: relative sampling weight (need not sum to 1); independent of the dataset's size
    weight: float = 1.0
    #: split used for per-dataset validation (null: not validated)
    val_split: str | None = None
    #: the dataset shows transparent objects (glass, water…): mixing it in logs a warning.
    #: Trans10K is always treated as transparent.
    transparent: bool = False


@dataclass
class DataConfig:
    datasets: list[DatasetConfig] = field(default_factory=list)
    #: dataset names removed even if listed (e.g. ``[trans10k]``)
    exclude: list[str] = field(default_factory=list)
    #: model input (square side, or [height, width])
    input_size: list[int] = field(default_factory=lambda: [320, 320])
    #: samples that make one epoch (null: the sum of the dataset sizes)
    samples_per_epoch: int | None = None
    num_workers: int = 2
    #: ``task: fba``: folders of background photos (searched recursively) composited behind
    #: the foregrounds
    backgrounds: list[str] = field(default_factory=list)


@dataclass
class CropConfig:
    enabled: bool = True
    #: fraction of the image area kept
    scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    #: aspect ratio range (width / height), sampled log-uniformly
    ratio: list[float] = field(default_factory=lambda: [0.75, 4.0 / 3.0])


@dataclass
class ColorJitterConfig:
    #: each factor is drawn from [1 - x, 1 + x]; hue shifts by up to ±hue of a full turn
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    #: probability of applying the jitter to a sample
    p: float = 0.8


@dataclass
class AugmentConfig:
    random_resized_crop: CropConfig = field(default_factory=CropConfig)
    #: probability of a horizontal flip
    hflip: float = 0.5
    color_jitter: ColorJitterConfig = field(default_factory=ColorJitterConfig)


@dataclass
class LossConfig:
    #: weight of the summed side-output BCE (U²-Net: d0…d6; IS-Net: its 6 side maps)
    bce: float = 1.0
    #: weight of a soft-IoU term on every side output (0: off)
    iou: float = 0.0


@dataclass
class OptimConfig:
    #: ``radam``: FBA Matting's optimiser (§4)
    name: Literal["adam", "adamw", "radam"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    #: clip the global gradient norm (null: no clipping)
    grad_clip: float | None = None


@dataclass
class ScheduleConfig:
    name: Literal["constant", "cosine", "step"] = "constant"
    warmup_steps: int = 0
    #: cosine: final learning rate as a fraction of ``optim.lr``
    min_lr_ratio: float = 0.0
    #: step: multiply by ``gamma`` every ``step_size`` optimiser steps
    step_size: int = 10000
    gamma: float = 0.1


@dataclass
class RunConfig:
    #: per-process batch size
    batch_size: int = 8
    grad_accum: int = 1
    #: length of training: ``steps`` (optimiser steps) wins over ``epochs``
    steps: int | None = None
    epochs: int | None = None
    #: mixed precision on CUDA (ignored on CPU, with a warning)
    amp: Literal["none", "bf16", "fp16"] = "none"
    seed: int = 0
    #: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1`` …
    device: str = "auto"
    output_dir: str = "runs/exp"
    #: write ``last.pt`` every N optimiser steps (and always at the end)
    checkpoint_every: int = 1000
    #: also keep the last N numbered checkpoints ``step_000123.pt`` (0: only last.pt)
    keep_checkpoints: int = 0
    #: log the loss every N optimiser steps (metrics.jsonl; a line on non-TTY output)
    log_every: int = 20
    #: fail early on a non-finite loss
    detect_nan: bool = True


@dataclass
class ValConfig:
    #: validate every N optimiser steps (and at the end); 0: only at the end
    every: int = 1000
    #: metric that selects ``best.pt`` (mean over the validated datasets)
    metric: Literal["max_f", "mae", "hce", "sad", "mse", "grad", "conn"] = "max_f"
    #: metrics computed and logged (the selection metric is always included)
    metrics: list[str] = field(default_factory=lambda: ["max_f", "mae"])
    #: at most N validation images per dataset (null: all)
    limit: int | None = None


@dataclass
class FBAValConfig:
    """Validation of ``task: fba`` on real photos with ground truth: a folder in any layout of
    :func:`nuggy.eval.datasets.open_dataset` (``image/`` + ``alpha/`` [+ ``trimap/``],
    alphamatting.com, AM-2k …). Without trimaps, one is made from the alpha (fixed band)."""

    #: the folder (null: no validation; best.pt is the final model)
    root: str | None = None
    #: layout name for open_dataset (null: detected)
    layout: str | None = None
    split: str | None = None
    #: half-width in pixels of the unknown band of trimaps made from the alpha
    trimap_band: int = 10
    #: photos larger than this (longer side) are scaled down for the network; the alpha is
    #: scaled back up and scored at full size (0: never)
    max_side: int = 1024


@dataclass
class FBAConfig:
    """FBA Matting training (Forte & Pitié 2020, §3 and §4): on-the-fly compositing, trimaps
    from the alpha, and the paper's loss set ``L = L_α + 0.25 · L_FB``.

    Loss weights (paper §3.3): every alpha term 1 (L1, compositional, Laplacian, gradient); the
    four F/B terms (L1, compositional, Laplacian, exclusion) share the 0.25 of ``L_FB``.
    """

    #: square crop sides (pixels of the rescaled foreground) drawn uniformly, centred on a
    #: pixel of the unknown region; the crop is then resized to ``data.input_size``
    crop_sizes: list[int] = field(default_factory=lambda: [320, 480, 640])
    #: random rescale of foreground and alpha before cropping (factor range)
    scale: list[float] = field(default_factory=lambda: [0.5, 1.5])
    #: trimap from alpha: the unknown band is ``dilate(α > 0, k) − erode(α = 1, k')`` with
    #: ``k, k'`` (pixels, at input size) drawn independently from this range
    trimap_kernel: list[int] = field(default_factory=lambda: [3, 25])
    #: probability of merging a second foreground (same dataset) into the first before
    #: compositing (``α = α₁ + α₂(1 − α₁)``; the two-foreground augmentation of GCA Matting,
    #: Li & Lu 2020, common in Composition-1k training; 0: off)
    two_fg: float = 0.0
    #: where the losses are averaged: ``unknown`` (the trimap's unknown region, as the
    #: paper's alpha losses) or ``whole``
    loss_region: Literal["unknown", "whole"] = "unknown"
    #: ``L`` of the distance-transform click maps (σ = 0.02, 0.08, 0.16 · L), as the network
    #: was published with
    clicks_L: float = 320.0
    alpha_l1: float = 1.0
    alpha_comp: float = 1.0
    alpha_lap: float = 1.0
    alpha_grad: float = 1.0
    fb_l1: float = 0.25
    fb_comp: float = 0.25
    fb_lap: float = 0.25
    fb_excl: float = 0.25
    val: FBAValConfig = field(default_factory=FBAValConfig)


@dataclass
class TrainConfig:
    #: ``segmentation`` (IS-Net / U²-Net on masks) or ``fba`` (FBA Matting on composites)
    task: Literal["segmentation", "fba"] = "segmentation"
    model: ModelConfig = field(default_factory=ModelConfig)
    gt_encoder: GTEncoderConfig = field(default_factory=GTEncoderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: RunConfig = field(default_factory=RunConfig)
    val: ValConfig = field(default_factory=ValConfig)
    fba: FBAConfig = field(default_factory=FBAConfig)

    # -- derived -------------------------------------------------------------------------
    @property
    def input_hw(self) -> tuple[int, int]:
        s = self.data.input_size
        return (s[0], s[0]) if len(s) == 1 else (s[0], s[1])

    @property
    def active_datasets(self) -> list[DatasetConfig]:
        """The listed datasets minus the excluded ones."""
        drop = set(self.data.exclude)
        return [d for d in self.data.datasets if d.name not in drop]

    @property
    def uses_gt_encoder(self) -> bool:
        return self.task == "segmentation" and self.model.arch == "isnet" and self.gt_encoder.enabled

    @property
    def transparent_datasets(self) -> list[DatasetConfig]:
        """Active datasets of transparent objects (Trans10K, or flagged ``transparent: true``)."""
        return [d for d in self.active_datasets if d.transparent or d.layout in TRANSPARENT_LAYOUTS]


# ---------------------------------------------------------------------------------------------
# dict -> dataclass with type checks


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"list of {_type_name(inner)}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: must not be null (expected {_type_name(tp)})")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, where)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) and all(isinstance(c, str) for c in choices):
            value = "true" if value else "false"  # YAML reads `freeze_bn: true` as a bool
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of: {', '.join(map(str, choices))}")
        return value
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            scalar = isinstance(value, (int, float)) and not isinstance(value, bool)
            if inner in (int, float) and scalar:
                value = [value]  # `input_size: 320`
            else:
                raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):
            try:  # PyYAML reads `1e-4` (no dot) as a string
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(map(str, data)) - set(names))
    if unknown:
        raise ConfigError(
            f"{where or 'config'}: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}"
        )
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        if f.name in data:
            kwargs[f.name] = _convert(data[f.name], hints[f.name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required")
    return cls(**kwargs)


def _check_fba(cfg: TrainConfig, need) -> None:
    f, d = cfg.fba, cfg.data
    need(cfg.model.arch == "fba", f"model.arch: task fba trains arch fba, not {cfg.model.arch}")
    d32 = 32 % cfg.model.width_divisor == 0 and cfg.model.width_divisor <= 32
    need(d32, "model.width_divisor: FBA needs a divisor of 32 (1, 2, 4, 8, 16, 32)")
    for i, x in enumerate(d.datasets):
        need(x.layout in MATTING_LAYOUTS,
             f"data.datasets[{i}] ({x.name}).layout: {x.layout} has no foreground/alpha for "
             f"compositing; FBA training reads {', '.join(MATTING_LAYOUTS)}")  # fmt: skip
    need(bool(d.backgrounds), "data.backgrounds: list at least one folder of background photos")
    need(all(isinstance(b, str) and b.strip() for b in d.backgrounds), "data.backgrounds: empty folder name")
    need(
        all(v % 8 == 0 for v in d.input_size),
        f"data.input_size: FBA needs multiples of 8; got {d.input_size}",
    )
    need(
        bool(f.crop_sizes) and all(c >= 16 for c in f.crop_sizes),
        f"fba.crop_sizes: give sides >= 16; got {f.crop_sizes}",
    )
    need(
        len(f.scale) == 2 and 0 < f.scale[0] <= f.scale[1],
        f"fba.scale: need [lo, hi] with 0 < lo <= hi; got {f.scale}",
    )
    need(
        len(f.trimap_kernel) == 2 and 1 <= f.trimap_kernel[0] <= f.trimap_kernel[1],
        f"fba.trimap_kernel: need [lo, hi] with 1 <= lo <= hi; got {f.trimap_kernel}",
    )
    need(0 <= f.two_fg <= 1, "fba.two_fg: a probability in [0, 1]")
    need(f.clicks_L > 0, "fba.clicks_L: must be > 0")
    names = ("alpha_l1", "alpha_comp", "alpha_lap", "alpha_grad", "fb_l1", "fb_comp", "fb_lap",
             "fb_excl")  # fmt: skip
    need(all(getattr(f, k) >= 0 for k in names), "fba: loss weights must be >= 0")
    need(sum(getattr(f, k) for k in names) > 0, "fba: every loss weight is 0")
    need(f.val.trimap_band >= 1, "fba.val.trimap_band: must be >= 1")
    need(f.val.max_side >= 0, "fba.val.max_side: must be >= 0")
    bad = sorted(set(cfg.val.metrics) - {"sad", "mse", "grad", "conn"})
    if cfg.val.metrics == ["max_f", "mae"]:  # the segmentation default: switch to matting
        cfg.val.metrics = ["sad", "mse", "grad", "conn"]
        bad = []
    need(not bad, f"val.metrics: {', '.join(bad)} are segmentation metrics; FBA validates with "
                  "sad, mse, grad, conn")  # fmt: skip
    if cfg.val.metric == "max_f":  # the segmentation default
        cfg.val.metric = "sad"
    need(
        cfg.val.metric in ("sad", "mse", "grad", "conn"),
        f"val.metric: {cfg.val.metric} is not a matting metric (sad, mse, grad, conn)",
    )


def _check(cfg: TrainConfig) -> None:
    """Range and consistency checks (types are already right)."""

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError(msg)

    m, g, d, a, o, s, r, v = (
        cfg.model, cfg.gt_encoder, cfg.data, cfg.augment, cfg.optim, cfg.schedule, cfg.train,
        cfg.val,
    )  # fmt: skip
    need(m.width_divisor >= 1, "model.width_divisor: must be >= 1")
    if cfg.task == "fba":
        _check_fba(cfg, need)
    else:
        need(m.arch != "fba", "model.arch: fba is a matting network; set task: fba")
    need(m.init is None or m.init.strip() != "", "model.init: empty; use null for random weights")
    if cfg.uses_gt_encoder:
        need(g.steps >= 0, "gt_encoder.steps: must be >= 0")
        need(
            g.weights is not None or g.steps > 0,
            "gt_encoder: give weights (a trained GT encoder) or steps > 0 to train one",
        )
        need(g.lr > 0, "gt_encoder.lr: must be > 0")
        need(0 < g.target_max_f <= 1, "gt_encoder.target_max_f: must be in (0, 1]")
        need(g.feature_weight >= 0, "gt_encoder.feature_weight: must be >= 0")
        need(g.checkpoint_every >= 1, "gt_encoder.checkpoint_every: must be >= 1")
        need(g.val_every >= 0, "gt_encoder.val_every: must be >= 0")

    need(bool(d.datasets), "data.datasets: list at least one dataset")
    names = [x.name for x in d.datasets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    need(not dupes, f"data.datasets: duplicate name(s) {', '.join(dupes)}; names must be unique")
    stray = sorted(set(d.exclude) - set(names))
    need(not stray, f"data.exclude: {', '.join(stray)} not among data.datasets "
                    f"({', '.join(names)}); check the spelling")  # fmt: skip
    for i, x in enumerate(d.datasets):
        need(x.name.strip() != "", f"data.datasets[{i}].name: empty")
        need(x.weight >= 0, f"data.datasets[{i}] ({x.name}).weight: must be >= 0")
        need(x.root.strip() != "", f"data.datasets[{i}] ({x.name}).root: empty")
    active = cfg.active_datasets
    need(bool(active), "data: every dataset is excluded; nothing left to train on")
    need(
        sum(x.weight for x in active) > 0,
        "data.datasets: the weights of the datasets left after exclusion sum to 0",
    )
    need(
        len(d.input_size) in (1, 2) and all(v_ >= 16 for v_ in d.input_size),
        f"data.input_size: give a side or [height, width], each >= 16; got {d.input_size}",
    )
    need(
        d.samples_per_epoch is None or d.samples_per_epoch >= 1,
        "data.samples_per_epoch: must be >= 1 (or null)",
    )
    need(d.num_workers >= 0, "data.num_workers: must be >= 0")

    c = a.random_resized_crop
    need(
        len(c.scale) == 2 and 0 < c.scale[0] <= c.scale[1] <= 1,
        f"augment.random_resized_crop.scale: need [lo, hi] with 0 < lo <= hi <= 1; got {c.scale}",
    )
    need(
        len(c.ratio) == 2 and 0 < c.ratio[0] <= c.ratio[1],
        f"augment.random_resized_crop.ratio: need [lo, hi] with 0 < lo <= hi; got {c.ratio}",
    )
    need(0 <= a.hflip <= 1, "augment.hflip: a probability in [0, 1]")
    j = a.color_jitter
    for k in ("brightness", "contrast", "saturation"):
        need(0 <= getattr(j, k) < 1, f"augment.color_jitter.{k}: must be in [0, 1)")
    need(0 <= j.hue <= 0.5, "augment.color_jitter.hue: must be in [0, 0.5]")
    need(0 <= j.p <= 1, "augment.color_jitter.p: a probability in [0, 1]")

    need(cfg.loss.bce >= 0 and cfg.loss.iou >= 0, "loss: weights must be >= 0")
    need(cfg.loss.bce + cfg.loss.iou > 0, "loss: bce and iou are both 0")
    need(o.lr > 0, "optim.lr: must be > 0")
    need(o.weight_decay >= 0, "optim.weight_decay: must be >= 0")
    need(
        len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
        f"optim.betas: need two values in [0, 1); got {o.betas}",
    )
    need(o.eps > 0, "optim.eps: must be > 0")
    need(o.grad_clip is None or o.grad_clip > 0, "optim.grad_clip: must be > 0 (or null)")
    need(s.warmup_steps >= 0, "schedule.warmup_steps: must be >= 0")
    need(0 <= s.min_lr_ratio <= 1, "schedule.min_lr_ratio: must be in [0, 1]")
    need(s.step_size >= 1, "schedule.step_size: must be >= 1")
    need(0 < s.gamma <= 1, "schedule.gamma: must be in (0, 1]")

    need(r.batch_size >= 1, "train.batch_size: must be >= 1")
    need(r.grad_accum >= 1, "train.grad_accum: must be >= 1")
    need(r.steps is not None or r.epochs is not None, "train: give steps or epochs")
    need(r.steps is None or r.steps >= 1, "train.steps: must be >= 1")
    need(r.epochs is None or r.epochs >= 1, "train.epochs: must be >= 1")
    need(r.checkpoint_every >= 1, "train.checkpoint_every: must be >= 1")
    need(r.keep_checkpoints >= 0, "train.keep_checkpoints: must be >= 0")
    need(r.log_every >= 1, "train.log_every: must be >= 1")
    need(r.output_dir.strip() != "", "train.output_dir: empty")
    dev = r.device
    need(
        dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit()),
        f"train.device: {dev!r}; use auto, cpu, cuda or cuda:N",
    )

    need(v.every >= 0, "val.every: must be >= 0")
    bad = sorted(set(v.metrics) - set(VAL_METRICS))
    need(not bad, f"val.metrics: unknown {', '.join(bad)}; choose from {', '.join(VAL_METRICS)}")
    need(v.limit is None or v.limit >= 1, "val.limit: must be >= 1 (or null)")
    if v.metric not in v.metrics:
        v.metrics = [v.metric, *v.metrics]


# ---------------------------------------------------------------------------------------------
# public API


def _parse_scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply ``section.key=value`` overrides (value parsed as YAML) to a raw config mapping.

    ``data.datasets.0.weight=2`` indexes into lists.
    """
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. optim.lr=1e-4")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = data
        for i, p in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(node, list):
                if not p.isdigit() or int(p) >= len(node):
                    raise ConfigError(f"override {key}: no list item {p}")
                node = node[int(p)]
            else:
                if node.get(p) is None:
                    node[p] = [] if nxt.isdigit() else {}
                node = node[p]
        last = parts[-1]
        value = _parse_scalar(text)
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ConfigError(f"override {key}: no list item {last}")
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"override {key}: {'.'.join(parts[:-1])} is not a section")
    return data


def config_from_dict(data: dict | None, overrides: list[str] | None = None) -> TrainConfig:
    """Validate a raw mapping (as read from YAML) into a :class:`TrainConfig`.

    Raises:
        ConfigError: unknown or missing keys, wrong types, out-of-range values.
    """
    import copy

    data = apply_overrides(copy.deepcopy(data or {}), overrides)
    cfg = _build(TrainConfig, data, "")
    _check(cfg)
    return cfg


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
    """Read and validate a YAML training configuration.

    Relative dataset roots, initial-weight paths and the output directory are kept as written
    (they resolve against the working directory, as on the command line).
    """
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("reading a YAML config needs PyYAML: pip install 'nuggy[train]'") from exc
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from None
    try:
        return config_from_dict(data, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def config_to_dict(cfg: TrainConfig) -> dict:
    """Plain nested dict (lists, str, numbers, bools, None) of a config."""
    return dataclasses.asdict(cfg)


def config_to_yaml(cfg: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (atomically)."""
    from nuggy.io import atomic_write_bytes

    text = "# resolved nuggy training configuration\n" + config_to_yaml(cfg)
    return atomic_write_bytes(path, text.encode())
