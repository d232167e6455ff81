"""The training loop: single process or DDP under ``torchrun``, one code path.

:func:`train` runs a :class:`~nuggy.train.config.TrainConfig`:

* IS-Net with ``gt_encoder.enabled``: stage 1 trains the ground-truth encoder on masks
  (self-reconstruction, side BCE; in ``<output_dir>/gt_encoder/``) unless ``gt_encoder.weights``
  gives one; stage 2 trains IS-Net with side BCE (+ IoU) plus the feature-synchronisation loss
  against the frozen encoder. Without it, and for U²-Net: deep supervision over every side
  output.
* Each optimiser step consumes ``batch_size × grad_accum × world_size`` samples drawn from the
  weighted mixture (:class:`~nuggy.train.mixture.MixtureSampler`); the effective mix is logged.
* Mixed precision (``bf16`` / ``fp16`` with a gradient scaler) on CUDA, gradient accumulation
  (``no_sync`` between micro-batches under DDP), gradient clipping.
* Every ``checkpoint_every`` steps and at the end: ``last.pt`` (model, optimiser, scheduler,
  scaler, step, RNG states, config, best metric); validation every ``val.every`` steps with the
  best model in ``best.pt`` (the final model when no dataset has a ``val_split``). Resuming from ``last.pt`` continues the exact sample stream, so a
  resumed CPU run ends with bit-identical weights.
* Rank 0 alone writes files: ``config.yaml`` (resolved), checkpoints, ``metrics.jsonl``,
  ``metrics.csv`` and ``plot.png``.

Checkpoint dicts hold ``model`` (state dict), ``arch``, ``model_kwargs``, ``input_size``,
``mean`` and ``std`` (0..255 units), so ``nuggy models export run/best.pt -o m.onnx`` and
:func:`nuggy.models.load_checkpoint` read them directly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import (
    HIGHER_IS_BETTER,
    ConfigError,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    save_config,
)
from .data import SourceDataset, TrainSet, ValSet, collate_val, open_source
from .losses import feature_sync, segmentation_loss
from .mixture import MixtureSampler, mix_report
from .preflight import resolve_initial_weights

__all__ = [
    "CHECKPOINT_FORMAT",
    "DistEnv",
    "setup_distributed",
    "build_model",
    "resolve_initial_weights",
    "load_initial_weights",
    "bn_is_folded",
    "set_train_mode",
    "make_optimizer",
    "make_scheduler",
    "lr_factor",
    "load_training_checkpoint",
    "find_resume_checkpoint",
    "train",
]

log = logging.getLogger("nuggy.train")

CHECKPOINT_FORMAT = "nuggy-train-checkpoint"
CHECKPOINT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# distributed set-up


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialised_here: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _pick_device(pref: str, local_rank: int) -> torch.device:
    if pref == "cpu":
        return torch.device("cpu")
    if pref.startswith("cuda:"):
        return torch.device(pref)
    if pref == "cuda" or (pref == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("train.device: cuda asked for, but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def setup_distributed(device_pref: str = "auto") -> DistEnv:
    """Read torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and initialise
    the process group (NCCL on CUDA, gloo on CPU) when the world has more than one process."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    device = _pick_device(device_pref, local)
    env = DistEnv(rank, world, local, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        env.initialised_here = True
    return env


def _all_reduce(t: Tensor, env: DistEnv) -> Tensor:
    if env.distributed:
        import torch.distributed as dist

        buf = t.to(env.device) if env.device.type == "cuda" else t
        dist.all_reduce(buf)
        return buf.cpu() if buf is not t else buf
    return t


def _barrier(env: DistEnv) -> None:
    if env.distributed:
        import torch.distributed as dist

        dist.barrier()


def _broadcast_object(obj: Any, env: DistEnv) -> Any:
    if not env.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ---------------------------------------------------------------------------------------------
# model


def _normalisation(arch: str) -> tuple[list[float], list[float]]:
    from nuggy.models.export import DEFAULT_NORMALISATION

    mean, std = DEFAULT_NORMALISATION[arch]
    return [float(v) for v in mean], [float(v) for v in std]


def load_initial_weights(model: nn.Module, arch: str, init: str, accept_license: str | None) -> str:
    """Load ``init`` (a ``.pth``/``.pt`` path, or a registry model converted from its ONNX
    weights) strictly into ``model``; returns a description of the source."""
    from nuggy.models.registry import load_state_dict_strict, read_state_dict, remap_checkpoint

    found = resolve_initial_weights(arch, init, accept_license)
    if isinstance(found, Path):
        sd = remap_checkpoint(arch, read_state_dict(found))
        load_state_dict_strict(model, sd)
        return str(found)
    from nuggy.models.convert import convert_registry_model

    pth = convert_registry_model(init, accept_license=accept_license)
    load_state_dict_strict(model, remap_checkpoint(arch, read_state_dict(pth)))
    return f"{init} (registry ONNX weights, converted: {pth})"


def bn_is_folded(model: nn.Module) -> bool:
    """True when every BatchNorm is the identity left by folding it into its conv (ONNX
    conversion: mean 0, variance 1 − eps, weight 1, no batches tracked)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return False
    for m in bns:
        if m.running_mean is None or m.running_var is None:
            return False
        if m.running_mean.abs().max() != 0 or m.weight is None or (m.weight != 1).any():
            return False
        if (m.running_var - (1.0 - m.eps)).abs().max() > 1e-7:
            return False
    return True


def set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    """``model.train()``, keeping BatchNorm layers in eval mode (fixed statistics) when asked."""
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def build_model(arch: str, width_divisor: int = 1) -> nn.Module:
    from nuggy.models import create_model

    return create_model(arch, width_divisor=width_divisor)


class _Logits(nn.Module):
    """Routes ``forward`` to the wrapped model's ``forward_logits`` (so DDP sees the call)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor):
        return self.model.forward_logits(x)


def _sides(out) -> list[Tensor]:
    """Side-output logits of U²-Net (a tuple of maps) or IS-Net / GT encoder ((maps, feats))."""
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], list):
        return list(out[0])
    return list(out)


def _feats(out) -> list[Tensor]:
    return list(out[1])


# ---------------------------------------------------------------------------------------------
# optimiser and schedule


def make_optimizer(params, name: str, lr: float, weight_decay: float, betas, eps: float):
    params = [p for p in params if p.requires_grad]
    cls = {"adamw": torch.optim.AdamW, "radam": torch.optim.RAdam}.get(name, torch.optim.Adam)
    return cls(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


def lr_factor(
    step: int, total: int, name: str, warmup: int, min_ratio: float, step_size: int, gamma: float
) -> float:
    """Learning-rate multiplier at optimiser step ``step`` (0-based)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if name == "constant":
        return 1.0
    if name == "step":
        return gamma ** (step // step_size)
    t = min(step - warmup, max(1, total - warmup))
    span = max(1, total - warmup)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t / span))


def make_scheduler(
    optimizer, total: int, name: str, warmup: int, min_ratio: float, step_size: int, gamma: float
):
    """``LambdaLR`` following :func:`lr_factor` (stepped once per optimiser step)."""

    def fn(step: int) -> float:
        return lr_factor(step, total, name, warmup, min_ratio, step_size, gamma)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)


# ---------------------------------------------------------------------------------------------
# checkpoints


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_save(obj: Any, path: Path) -> None:
    from nuggy.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_training_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint written by :func:`train` (``weights_only`` load, on CPU)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: checkpoint not found")
    ckpt = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{p}: not a nuggy training checkpoint (no format={CHECKPOINT_FORMAT!r})")
    return ckpt


def find_resume_checkpoint(path: str | os.PathLike) -> Path:
    """``path`` itself, or for a run directory its newest ``last.pt`` (stage 2, else stage 1)."""
    p = Path(path)
    if p.is_dir():
        for cand in (p / "last.pt", p / "gt_encoder" / "last.pt"):
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"{p}: no last.pt (nor gt_encoder/last.pt) to resume from")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: checkpoint not found")
    return p


# ---------------------------------------------------------------------------------------------
# logging: metrics.jsonl, metrics.csv, plot.png


class _RunLog:
    def __init__(self, out: Path, enabled: bool, resume_step: int | None) -> None:
        self.out = out
        self.enabled = enabled
        self.path = out / "metrics.jsonl"
        self.records: list[dict] = []
        if enabled and resume_step is not None and self.path.is_file():
            # drop what an interrupted run logged after the checkpoint it resumes from
            for line in self.path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    rec = json.loads(line)
                    if rec.get("step", 0) <= resume_step:
                        self.records.append(rec)
            self._rewrite()
        elif enabled and self.path.exists():
            self.path.unlink()

    def _rewrite(self) -> None:
        from nuggy.io import atomic_write_bytes

        atomic_write_bytes(self.path, "".join(json.dumps(r) + "\n" for r in self.records).encode())

    def add(self, rec: dict) -> None:
        if not self.enabled:
            return
        rec = {"time": round(time.time(), 3), **rec}
        self.records.append(rec)
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def write_csv(self) -> None:
        if not self.enabled:
            return
        import csv

        rows = [r for r in self.records if r.get("kind") in ("train", "val")]
        cols: list[str] = []
        for r in rows:
            for k, v in r.items():
                if k not in cols and not isinstance(v, (dict, list)):
                    cols.append(k)
        from nuggy.io import atomic_path

        with atomic_path(self.out / "metrics.csv", fsync=False) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow(r)

    def plot(self, title: str) -> None:
        if not self.enabled:
            return
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            log.info("matplotlib is not installed: no plot.png (pip install matplotlib)")
            return
        train = [r for r in self.records if r.get("kind") == "train"]
        val = [r for r in self.records if r.get("kind") == "val"]
        vkeys = sorted({k for r in val for k in r if k.startswith("val/")})
        fig, axes = plt.subplots(1, 2 if vkeys else 1, figsize=(11 if vkeys else 6, 4), squeeze=False)
        ax = axes[0][0]
        if train:
            for k in [k for k in train[-1] if k == "loss" or k.startswith("loss/")]:
                ax.plot([r["step"] for r in train if k in r], [r[k] for r in train if k in r], label=k)
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        ax.set_xlabel("step")
        ax.set_title(f"{title}: training loss")
        if vkeys:
            ax = axes[0][1]
            for k in vkeys:
                pts = [(r["step"], r[k]) for r in val if k in r]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=k)
            ax.set_xlabel("step")
            ax.set_title("validation")
            ax.legend(fontsize=7)
        fig.tight_layout()
        from nuggy.io import atomic_path

        with atomic_path(self.out / "plot.png", fsync=False) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)


# ---------------------------------------------------------------------------------------------
# validation


def _metric_fns() -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    from nuggy.eval import metrics as M

    return {"max_f": M.max_f, "mae": M.mae, "hce": M.hce, "sad": M.sad, "mse": M.mse, "grad": M.grad}


@torch.no_grad()
def _validate(
    model: nn.Module,
    val_sources: list[SourceDataset],
    *,
    input_key: str,
    metrics: list[str],
    hw: tuple[int, int],
    mean,
    std,
    limit: int | None,
    env: DistEnv,
    amp_ctx: Callable[[], Any],
    num_workers: int,
) -> dict[str, float]:
    """Per-dataset means of ``metrics`` (sharded over ranks, summed with all-reduce) and their
    mean over datasets, as ``{"val/<dataset>/<metric>": v, "val/<metric>": v}``."""
    from torch.utils.data import DataLoader

    fns = _metric_fns()
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    per_metric: dict[str, list[float]] = {m: [] for m in metrics}
    for src in val_sources:
        n = len(src) if limit is None else min(limit, len(src))
        shard = list(range(env.rank, n, env.world_size))
        ds = ValSet(src, hw, mean, std, masks_only=input_key == "mask_input", indices=shard)
        loader = DataLoader(ds, batch_size=1, num_workers=num_workers, collate_fn=collate_val)
        sums = torch.zeros(len(metrics) + 1, dtype=torch.float64)
        for batch in loader:
            x = batch[input_key].to(env.device, non_blocking=True)
            with amp_ctx():
                logits = _sides(model.forward_logits(x))[0]
            prob = torch.sigmoid(logits.float())
            for i, gt in enumerate(batch["gt"]):
                p = F.interpolate(prob[i : i + 1], size=gt.shape, mode="bilinear", align_corners=False)
                p = p[0, 0].clamp_(0, 1).cpu().numpy()
                for j, m in enumerate(metrics):
                    sums[j] += fns[m](p, gt)
                sums[-1] += 1
        sums = _all_reduce(sums, env)
        count = max(float(sums[-1]), 1.0)
        for j, m in enumerate(metrics):
            v = float(sums[j]) / count
            out[f"val/{src.name}/{m}"] = v
            per_metric[m].append(v)
    for m, vals in per_metric.items():
        if vals:
            out[f"val/{m}"] = float(np.mean(vals))
    model.train(was_training)
    return out


# ---------------------------------------------------------------------------------------------
# one training stage


@dataclass
class _Stage:
    name: str  # "segmentation" or "gt_encoder"
    model: nn.Module
    arch: str
    out: Path
    total_steps: int
    input_key: str  # "image" or "mask_input"
    lr: float
    schedule: str
    warmup: int
    checkpoint_every: int
    val_every: int
    val_metric: str
    val_metrics: list[str]
    freeze_bn: bool
    loss_fn: Callable[[Any, dict], tuple[Tensor, dict[str, Tensor]]]
    stop_metric_at: float | None = None
    gt_encoder: nn.Module | None = None
    resume: dict | None = None
    extra_ckpt: dict = field(default_factory=dict)
    #: task hooks (default: the segmentation task): the training dataset, the module DDP
    #: wraps around the model, and the validation function ``(model, amp_ctx) -> metrics``
    trainset: Any = None
    wrap: Callable[[nn.Module], nn.Module] | None = None
    validate_fn: Callable[[nn.Module, Callable[[], Any]], dict[str, float]] | None = None
    #: normalisation stored in the checkpoint (0..255 units); null: the architecture's
    mean_std: tuple[list[float], list[float]] | None = None


class _Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        env: DistEnv,
        sources: list[SourceDataset],
        val_sources: list[SourceDataset],
        *,
        stop_at_step: int | None = None,
    ) -> None:
        self.cfg = cfg
        self.env = env
        self.sources = sources
        self.val_sources = val_sources
        self.stop_at_step = stop_at_step
        self.hw = cfg.input_hw
        self.weights = [d.weight for d in cfg.active_datasets]
        self.names = [s.name for s in sources]
        r = cfg.train
        self.global_batch = r.batch_size * env.world_size
        spe = cfg.data.samples_per_epoch or sum(len(s) for s in sources)
        micro = -(-spe // self.global_batch)
        self.steps_per_epoch = max(1, -(-micro // r.grad_accum))
        self.micro_per_epoch = self.steps_per_epoch * r.grad_accum
        amp = r.amp if env.device.type == "cuda" else "none"
        if r.amp != "none" and amp == "none" and env.is_main:
            log.warning("train.amp=%s needs CUDA; training in float32 on %s", r.amp, env.device)
        self.amp = amp
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)

    def amp_ctx(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    # -----------------------------------------------------------------------------------
    def run(self, st: _Stage) -> dict:
        cfg, env = self.cfg, self.env
        r = cfg.train
        model = st.model.to(env.device)
        resume = st.resume
        if resume is not None:
            from nuggy.models.registry import load_state_dict_strict

            load_state_dict_strict(model, resume["model"])
        if cfg.model.sync_bn and env.distributed and env.device.type == "cuda" and not st.freeze_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        wrapper = st.wrap(model) if st.wrap is not None else _Logits(model)
        if env.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [env.device.index] if env.device.type == "cuda" else None
            net: nn.Module = DDP(wrapper, device_ids=ids)
        else:
            net = wrapper
        o, s = cfg.optim, cfg.schedule
        opt = make_optimizer(model.parameters(), o.name, st.lr, o.weight_decay, o.betas, o.eps)
        sched = make_scheduler(
            opt, st.total_steps, st.schedule, st.warmup, s.min_lr_ratio, s.step_size, s.gamma
        )
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")
        step, best = 0, None
        if resume is not None:
            opt.load_state_dict(resume["optimizer"])
            sched.load_state_dict(resume["scheduler"])
            if resume.get("scaler"):
                scaler.load_state_dict(resume["scaler"])
            step = int(resume["step"])
            best = resume.get("best")
            if env.is_main:
                _set_rng_state(resume["rng"])
                log.info("%s: resumed at step %d of %d", st.name, step, st.total_steps)

        runlog = _RunLog(st.out, env.is_main, step if resume is not None else None)
        masks_only = st.input_key == "mask_input"
        if st.trainset is not None:
            trainset = st.trainset
        else:
            mean, std = _normalisation(cfg.model.arch)
            trainset = TrainSet(self.sources, self.hw, cfg.augment, mean, std, masks_only=masks_only)
        sampler = MixtureSampler(
            [len(x) for x in self.sources], self.weights, batch_size=r.batch_size,
            micro_batches=self.micro_per_epoch, seed=r.seed, num_replicas=env.world_size,
            rank=env.rank,
        )  # fmt: skip
        from torch.utils.data import DataLoader

        if env.is_main:
            log.info(
                "%s: %d steps, %d per epoch, global batch %d (%d × %d accum × %d processes), "
                "device %s%s", st.name, st.total_steps, self.steps_per_epoch,
                self.global_batch * r.grad_accum, r.batch_size, r.grad_accum, env.world_size,
                env.device, f", amp {self.amp}" if self.amp != "none" else "",
            )  # fmt: skip
        set_train_mode(model, st.freeze_bn)
        counts = torch.zeros(len(self.sources), dtype=torch.float64)
        run_loss: dict[str, Tensor] = {}
        run_n = 0
        last_saved = last_val = -1
        stopped_early = False
        bar = None
        if env.is_main and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=st.total_steps, initial=step, desc=st.name, dynamic_ncols=True, leave=True)
        t0 = time.time()
        accum = r.grad_accum

        def checkpoint() -> None:
            nonlocal last_saved
            if env.is_main:
                self._save(st, model, opt, sched, scaler, step, best)
            last_saved = step

        def validate() -> bool:
            """Validate; True when it reached the stage's stop target."""
            nonlocal best, last_val
            last_val = step
            if not self.val_sources:
                return False
            if st.validate_fn is not None:
                res = st.validate_fn(model, self.amp_ctx)
            else:
                res = _validate(
                    model, self.val_sources, input_key=st.input_key, metrics=st.val_metrics,
                    hw=self.hw, mean=mean, std=std, limit=cfg.val.limit, env=env,
                    amp_ctx=self.amp_ctx, num_workers=cfg.data.num_workers,
                )  # fmt: skip
            set_train_mode(model, st.freeze_bn)
            key = f"val/{st.val_metric}"
            value = res.get(key)
            improved = False
            if value is not None:
                higher = st.val_metric in HIGHER_IS_BETTER
                if best is None or (value > best["value"] if higher else value < best["value"]):
                    best = {"metric": st.val_metric, "value": value, "step": step}
                    improved = True
            runlog.add({"kind": "val", "stage": st.name, "step": step, **res})
            if env.is_main:
                shown = ", ".join(f"{k[4:]}={v:.4g}" for k, v in res.items())
                log.info("%s step %d: %s%s", st.name, step, shown, " (best)" if improved else "")
                if improved:
                    self._save_best(st, model, step, best)
                runlog.write_csv()
                runlog.plot(st.name)
            if st.stop_metric_at is not None and value is not None:
                return value >= st.stop_metric_at
            return False

        def log_mix(reason: str) -> None:
            total = _all_reduce(counts.clone(), env)
            rep = mix_report(total.tolist(), self.names, self.weights)
            runlog.add({"kind": "mix", "stage": st.name, "step": step, "reason": reason, "mix": rep})
            if env.is_main:
                shown = ", ".join(
                    f"{n} {v['count']} ({v['fraction']:.0%}, target {v['target']:.0%})"
                    for n, v in rep.items()
                )
                log.info("%s mix (%s, step %d): %s", st.name, reason, step, shown)
            counts.zero_()

        epoch = step // self.steps_per_epoch
        start_micro = (step % self.steps_per_epoch) * accum
        # one loader for the whole stage: the sampler (in this process) is told the epoch
        # before each pass, the workers persist
        loader = DataLoader(
            trainset, batch_sampler=sampler, num_workers=cfg.data.num_workers,
            pin_memory=env.device.type == "cuda", persistent_workers=cfg.data.num_workers > 0,
        )  # fmt: skip
        while step < st.total_steps and not stopped_early:
            sampler.set_epoch(epoch, start_micro)
            micro = 0
            for batch in loader:
                last_micro = (micro + 1) % accum == 0
                # DDP: all-reduce the gradients only on the last micro-batch of a step
                no_sync = env.distributed and not last_micro
                with net.no_sync() if no_sync else contextlib.nullcontext():
                    dev_batch = {
                        k: v.to(env.device, non_blocking=True) for k, v in batch.items()
                        if isinstance(v, Tensor)
                    }  # fmt: skip
                    with self.amp_ctx():
                        loss, parts = st.loss_fn(net, dev_batch)
                    scaler.scale(loss / accum).backward()
                counts += torch.bincount(batch["source"].long(), minlength=len(self.sources)).double()
                for k, v in (("loss", loss), *((f"loss/{k}", v) for k, v in parts.items())):
                    v = v.detach().float()
                    run_loss[k] = run_loss[k] + v if k in run_loss else v
                run_n += 1
                micro += 1
                if not last_micro:
                    continue
                if r.detect_nan and self.amp != "fp16" and not torch.isfinite(run_loss["loss"]):
                    raise FloatingPointError(
                        f"{st.name}: non-finite loss at step {step + 1}; lower optim.lr, set "
                        "optim.grad_clip, or check the data"
                    )
                if o.grad_clip is not None:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
                lr_used = opt.param_groups[0]["lr"]
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
                sched.step()
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(run_loss['loss']) / run_n:.4f}", refresh=False)
                if step % r.log_every == 0 or step == st.total_steps:
                    keys = sorted(run_loss)
                    vec = torch.stack([run_loss[k].double().cpu() for k in keys])
                    n = torch.tensor([float(run_n)], dtype=torch.float64)
                    vec = _all_reduce(torch.cat([vec, n]), env)
                    rec = {k: float(vec[i] / vec[-1]) for i, k in enumerate(keys)}
                    rec = {"kind": "train", "stage": st.name, "step": step, "epoch": epoch,
                           "lr": lr_used, **rec}  # fmt: skip
                    runlog.add(rec)
                    if env.is_main and bar is None:
                        rate = (time.time() - t0) / max(1, step)
                        log.info("%s step %d/%d loss %.4f lr %.3g (%.2f s/step)", st.name, step,
                                 st.total_steps, rec["loss"], rec["lr"], rate)  # fmt: skip
                    run_loss, run_n = {}, 0
                if st.val_every and step % st.val_every == 0 and step < st.total_steps:
                    log_mix(f"every {st.val_every} steps")
                    if validate():
                        stopped_early = True
                        if env.is_main:
                            log.info("%s: val %s reached %.4g at step %d; stage done", st.name,
                                     st.val_metric, st.stop_metric_at, step)  # fmt: skip
                if (step % r.checkpoint_every == 0 and step < st.total_steps) or stopped_early:
                    checkpoint()
                stop_at = self.stop_at_step
                if stop_at is not None and stop_at <= step < st.total_steps:
                    if last_saved != step:
                        checkpoint()
                    if bar is not None:
                        bar.close()
                    runlog.write_csv()
                    return {"step": step, "stopped": True, "best": best}
                if step >= st.total_steps or stopped_early:
                    break
            else:
                log_mix(f"end of epoch {epoch}")
                epoch += 1
                start_micro = 0
                continue
            break
        if bar is not None:
            bar.close()
        if last_val != step:
            if counts.sum() > 0:
                log_mix("end of training")
            validate()
        if last_saved != step or last_val == step:
            checkpoint()
        if not self.val_sources and env.is_main:
            # nothing to select with: best.pt is the final model (what export reads)
            self._save_best(st, model, step, None)
        runlog.write_csv()
        runlog.plot(st.name)
        _barrier(env)
        return {"step": step, "stopped": False, "best": best}

    # -----------------------------------------------------------------------------------
    def _meta(self, st: _Stage, model: nn.Module) -> dict:
        if st.mean_std is not None:
            mean, std = st.mean_std
        elif st.name == "gt_encoder":
            mean, std = [0.0], [1.0]
        else:
            mean, std = _normalisation(st.arch)
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "task": self.cfg.task,
            "kind": st.name,
            "arch": st.arch,
            "model_kwargs": {"width_divisor": self.cfg.model.width_divisor},
            "input_size": list(self.hw),
            "mean": mean,
            "std": std,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "config": config_to_dict(self.cfg),
        }

    def _save(self, st: _Stage, model, opt, sched, scaler, step: int, best) -> None:
        ckpt = self._meta(st, model)
        ckpt.update(
            optimizer=opt.state_dict(),
            scheduler=sched.state_dict(),
            scaler=scaler.state_dict() if scaler.is_enabled() else {},
            step=step,
            total_steps=st.total_steps,
            best=best,
            world_size=self.env.world_size,
            rng=_rng_state(),
            **st.extra_ckpt,
        )
        _atomic_save(ckpt, st.out / "last.pt")
        keep = self.cfg.train.keep_checkpoints
        if keep > 0:
            _atomic_save(ckpt, st.out / f"step_{step:07d}.pt")
            numbered = sorted(st.out.glob("step_*.pt"))
            for old in numbered[:-keep]:
                old.unlink(missing_ok=True)

    def _save_best(self, st: _Stage, model, step: int, best: dict | None) -> None:
        ckpt = self._meta(st, model)
        ckpt.update(step=step, best=best)
        _atomic_save(ckpt, st.out / "best.pt")


# ---------------------------------------------------------------------------------------------
# losses per stage


def _seg_loss(cfg: TrainConfig, gt_encoder: nn.Module | None):
    lc, gc = cfg.loss, cfg.gt_encoder

    def fn(net, batch):
        out = net(batch["image"])
        loss, parts = segmentation_loss(_sides(out), batch["mask"], bce=lc.bce, iou=lc.iou)
        if gt_encoder is not None and gc.feature_weight > 0:
            with torch.no_grad():
                _, gt_feats = gt_encoder.forward_logits(batch["mask"])
            fs = feature_sync(_feats(out), gt_feats, gc.feature_loss)
            loss = loss + gc.feature_weight * fs
            parts["fs"] = fs.detach()
        return loss, parts

    return fn


def _gt_encoder_loss():
    def fn(net, batch):
        out = net(batch["mask"])
        return segmentation_loss(_sides(out), batch["mask"])

    return fn


# ---------------------------------------------------------------------------------------------
# entry point


def _open_sources(cfg: TrainConfig) -> tuple[list[SourceDataset], list[SourceDataset]]:
    train = [open_source(d) for d in cfg.active_datasets]
    val = [open_source(d, val=True) for d in cfg.active_datasets if d.val_split]
    return train, val


def _config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        key = f"{prefix}{k}"
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_diff(va, vb, key + ".")
        elif va != vb:
            out.append(key)
    return out


def train(
    cfg: TrainConfig | None = None,
    *,
    resume: str | os.PathLike | None = None,
    stop_at_step: int | None = None,
) -> dict:
    """Train as ``cfg`` says (single process, or one rank of a ``torchrun`` job).

    Args:
        cfg: the configuration; ``None`` with ``resume``: the one stored in the checkpoint.
        resume: a ``last.pt`` (or a run directory) to continue from.
        stop_at_step: stop (after writing ``last.pt``) once this many steps of the current
            stage are done — to simulate an interruption.

    Returns:
        ``{"output_dir", "step", "best", "stopped", "last", "best_path"}`` (same on every rank).
    """
    ckpt = None
    if resume is not None:
        rpath = find_resume_checkpoint(resume)
        ckpt = load_training_checkpoint(rpath)
        stored = config_from_dict(ckpt["config"])
        if cfg is None:
            cfg = stored
        else:
            changed = _config_diff(config_to_dict(stored), config_to_dict(cfg))
            if changed:
                log.warning("resuming with a config that differs from the checkpoint's in: %s",
                            ", ".join(changed))  # fmt: skip
            if stored.model.arch != cfg.model.arch:
                raise ConfigError(
                    f"--resume: the checkpoint is a {stored.model.arch}, the config asks for {cfg.model.arch}"
                )
    if cfg is None:
        raise ConfigError("train: give a config (or resume from a checkpoint)")

    env = setup_distributed(cfg.train.device)
    try:
        return _train(cfg, env, ckpt, stop_at_step)
    finally:
        if env.initialised_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(cfg: TrainConfig, env: DistEnv, ckpt: dict | None, stop_at_step: int | None) -> dict:
    from .preflight import preflight

    # every check that can fail runs before anything is written or trained
    preflight(cfg, resume=ckpt is not None, warn=env.is_main)
    out = Path(cfg.train.output_dir)
    problem = None
    if ckpt is None and env.is_main:
        for p in (out / "last.pt", out / "gt_encoder" / "last.pt"):
            if p.exists():
                problem = f"{p} exists: continue that run with --resume {out}, or set a new train.output_dir"
                break
    problem = _broadcast_object(problem, env)  # every rank stops, not only rank 0
    if problem:
        raise FileExistsError(problem)
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        dropped = [d.name for d in cfg.data.datasets if d.name in set(cfg.data.exclude)]
        if dropped:
            log.info("excluded datasets: %s", ", ".join(dropped))
    if cfg.task == "fba":
        from .fba_task import train_fba

        return train_fba(cfg, env, ckpt, stop_at_step)
    sources, val_sources = _open_sources(cfg)
    if env.is_main:
        for s, d in zip(sources, cfg.active_datasets):
            log.info("dataset %s (%s): %d samples, weight %g", s.name, s.layout, len(s), d.weight)
        for s in val_sources:
            log.info("validation %s: %d samples", s.name, len(s))
    trainer = _Trainer(cfg, env, sources, val_sources, stop_at_step=stop_at_step)
    seed = cfg.train.seed
    freeze_cfg = cfg.model.freeze_bn

    # ---- stage 1: GT encoder (IS-Net intermediate supervision) ----
    gt_encoder = None
    gt_state = None
    if cfg.uses_gt_encoder:
        if ckpt is not None and ckpt.get("kind") == "segmentation":
            gt_state = ckpt.get("gt_encoder")
            if gt_state is None:
                raise ValueError("the checkpoint has no gt_encoder weights; cannot resume stage 2")
        elif cfg.gt_encoder.weights:
            from nuggy.models.registry import read_state_dict, remap_checkpoint

            gt_state = remap_checkpoint("isnet_gt_encoder", read_state_dict(cfg.gt_encoder.weights))
        torch.manual_seed(seed)
        gt_encoder = build_model("isnet_gt_encoder", cfg.model.width_divisor)
        if gt_state is None:
            g = cfg.gt_encoder
            stage1 = _Stage(
                name="gt_encoder", model=gt_encoder, arch="isnet_gt_encoder", out=out / "gt_encoder",
                total_steps=g.steps, input_key="mask_input", lr=g.lr, schedule="constant", warmup=0,
                checkpoint_every=g.checkpoint_every, val_every=g.val_every, val_metric="max_f",
                val_metrics=["max_f", "mae"], freeze_bn=False, loss_fn=_gt_encoder_loss(),
                stop_metric_at=g.target_max_f,
                resume=ckpt if (ckpt is not None and ckpt.get("kind") == "gt_encoder") else None,
            )  # fmt: skip
            res = trainer.run(stage1)
            if res["stopped"]:
                return _result(out, res, stage_dir=out / "gt_encoder")
            ckpt = None if (ckpt is not None and ckpt.get("kind") == "gt_encoder") else ckpt
            best_path = out / "gt_encoder" / "best.pt"
            if env.is_main and best_path.is_file():
                gt_state = load_training_checkpoint(best_path)["model"]
            gt_state = _broadcast_object(gt_state, env)
            if gt_state is None:
                gt_state = {k: v.detach().cpu() for k, v in gt_encoder.state_dict().items()}
        from nuggy.models.registry import load_state_dict_strict

        gt_encoder = gt_encoder.cpu()
        load_state_dict_strict(gt_encoder, gt_state)
        gt_encoder = gt_encoder.to(env.device).eval()
        for p in gt_encoder.parameters():
            p.requires_grad_(False)

    # ---- stage 2: the segmentation network ----
    torch.manual_seed(seed)
    model = build_model(cfg.model.arch, cfg.model.width_divisor)
    if ckpt is None and cfg.model.init:
        src = load_initial_weights(model, cfg.model.arch, cfg.model.init, cfg.model.accept_license)
        if env.is_main:
            log.info("initial weights: %s", src)
    folded = bn_is_folded(model)
    freeze = freeze_cfg == "true" or (freeze_cfg == "auto" and folded)
    if ckpt is not None and ckpt.get("freeze_bn") is not None and freeze_cfg == "auto":
        freeze = bool(ckpt["freeze_bn"])
    if env.is_main and freeze:
        why = " (folded BN in the starting weights)" if folded else ""
        log.info("BatchNorm statistics frozen%s", why)
    torch.manual_seed(seed + env.rank)
    extra = {"freeze_bn": freeze}
    if gt_encoder is not None:
        extra["gt_encoder"] = {k: v.detach().cpu() for k, v in gt_encoder.state_dict().items()}
    o = cfg.optim
    stage2 = _Stage(
        name="segmentation", model=model, arch=cfg.model.arch, out=out,
        total_steps=_total_steps(cfg, trainer), input_key="image", lr=o.lr,
        schedule=cfg.schedule.name, warmup=cfg.schedule.warmup_steps,
        checkpoint_every=cfg.train.checkpoint_every,
        val_every=cfg.val.every, val_metric=cfg.val.metric, val_metrics=list(cfg.val.metrics),
        freeze_bn=freeze, loss_fn=_seg_loss(cfg, gt_encoder), gt_encoder=gt_encoder,
        resume=ckpt if (ckpt is not None and ckpt.get("kind") == "segmentation") else None,
        extra_ckpt=extra,
    )  # fmt: skip
    res = trainer.run(stage2)
    return _result(out, res, stage_dir=out)


def _total_steps(cfg: TrainConfig, trainer: _Trainer) -> int:
    if cfg.train.steps is not None:
        return cfg.train.steps
    return int(cfg.train.epochs) * trainer.steps_per_epoch


def _result(out: Path, res: dict, stage_dir: Path) -> dict:
    best = stage_dir / "best.pt"
    return {
        "output_dir": str(out),
        "step": res["step"],
        "best": res["best"],
        "stopped": res["stopped"],
        "last": str(stage_dir / "last.pt"),
        "best_path": str(best) if best.exists() else None,
    }
