"""``task: fba`` — FBA Matting training on composites, on the shared trainer of
:mod:`nuggy.train.loop` (checkpoints, exact resume, DDP, AMP, metrics, plot).

* data: :class:`~nuggy.train.matting_data.FBATrainSet` (foregrounds of the configured
  datasets composited over ``data.backgrounds``), drawn by the weighted mixture sampler;
* model: :func:`nuggy.models.fba.fba` (Group Norm + Weight Standardisation, so batch size 1
  trains as well as larger ones; ``model.width_divisor`` gives tiny variants), initialised
  from ``model.init`` (``FBA.pth`` or one of our checkpoints) or at random;
* loss: :func:`~nuggy.train.losses.fba_loss` on the fused outputs with the weights of
  ``fba.*`` (paper §3.3), averaged over the trimap's unknown region (``fba.loss_region``);
* validation: SAD / MSE / Grad / Conn in the unknown region (:func:`nuggy.eval.metrics.
  matting_metrics`) on ``fba.val.root``, the full-resolution photos run through
  :class:`nuggy.runtime.torch.FBAPredictor` exactly as ``nuggy remove --matting fba`` runs them.

The checkpoints (``kind: fba``, ``arch: fba``, ``model_kwargs``) load in ``nuggy remove
--matting fba --matting-weights RUN/best.pt``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .config import TrainConfig
from .losses import FBALossWeights, fba_loss

__all__ = ["fba_loss_fn", "validate_fba", "train_fba"]

log = logging.getLogger("nuggy.train")

_IMAGENET = ([0.485 * 255, 0.456 * 255, 0.406 * 255], [0.229 * 255, 0.224 * 255, 0.225 * 255])


def fba_loss_fn(cfg: TrainConfig):
    """``(net, batch) -> (loss, parts)`` for the trainer."""
    f = cfg.fba
    w = FBALossWeights(
        alpha_l1=f.alpha_l1, alpha_comp=f.alpha_comp, alpha_grad=f.alpha_grad,
        alpha_lap=f.alpha_lap, fb_l1=f.fb_l1, fb_comp=f.fb_comp, fb_lap=f.fb_lap,
        fb_excl=f.fb_excl,
    )  # fmt: skip

    def fn(net: nn.Module, batch: dict[str, Tensor]):
        out = net(batch["image"], batch["trimap"], batch["image_n"], batch["clicks"]).float()
        mask = None
        if f.loss_region == "unknown":
            # two-channel trimap: neither definite background nor definite foreground
            mask = (1.0 - batch["trimap"].sum(1, keepdim=True)).clamp(0, 1)
        return fba_loss(
            out[:, :1], out[:, 1:4], out[:, 4:7], alpha_gt=batch["alpha"], fg_gt=batch["fg"],
            bg_gt=batch["bg"], image=batch["image"], mask=mask, weights=w, visible_fb=True,
        )  # fmt: skip

    return fn


@torch.no_grad()
def validate_fba(model: nn.Module, samples, cfg: TrainConfig, env) -> dict[str, float]:
    """Mean SAD / MSE / Grad / Conn (unknown region, Composition-1k scales) over ``samples``,
    sharded over the ranks and summed with all-reduce: ``{"val/<metric>": v}``."""
    import cv2

    from nuggy.eval.metrics import matting_metrics
    from nuggy.runtime.torch import FBAPredictor

    from .loop import _all_reduce
    from .matting_data import FBAValSet

    metrics = list(cfg.val.metrics)
    was_training = model.training
    ds = FBAValSet(samples, cfg.fba.val.trimap_band, cfg.val.limit)
    pred = FBAPredictor(model=model, device=env.device)
    sums = torch.zeros(len(metrics) + 1, dtype=torch.float64)
    max_side = cfg.fba.val.max_side
    for i in range(env.rank, len(ds), env.world_size):
        it = ds[i]
        image, gt, tri = it["image"], it["alpha"], it["trimap"]
        h, w = tri.shape
        s = max(h, w) / max_side if max_side else 1.0
        if s > 1.0:
            size = (max(8, round(w / s)), max(8, round(h / s)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            small_t = cv2.resize(tri, size, interpolation=cv2.INTER_NEAREST)
            a, _, _ = pred.predict(small, small_t)
            a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
            a = np.where(tri == 0, 0.0, np.where(tri == 255, 1.0, a)).astype(np.float32)
        else:
            a, _, _ = pred.predict(image, tri)
        m = matting_metrics(np.clip(a, 0, 1), gt, trimap=tri, region="unknown")
        for j, k in enumerate(metrics):
            sums[j] += m[k]
        sums[-1] += 1
    model.train(was_training)
    sums = _all_reduce(sums, env)
    n = max(float(sums[-1]), 1.0)
    return {f"val/{k}": float(sums[j]) / n for j, k in enumerate(metrics)}


def train_fba(cfg: TrainConfig, env, ckpt: dict | None, stop_at_step: int | None) -> dict:
    """The FBA stage on the shared trainer (called by :func:`nuggy.train.loop.train`)."""
    from .loop import _result, _Stage, _total_steps, _Trainer, build_model, load_initial_weights
    from .matting_data import FBATrainSet, list_backgrounds, open_fba_val, open_matting_source

    out = Path(cfg.train.output_dir)
    sources = [open_matting_source(d) for d in cfg.active_datasets]
    backgrounds = list_backgrounds(cfg.data.backgrounds)
    val_samples = open_fba_val(cfg)
    if env.is_main:
        for s, d in zip(sources, cfg.active_datasets):
            log.info("foregrounds %s (%s): %d, weight %g", s.name, s.layout, len(s), d.weight)
        log.info("backgrounds: %d images", len(backgrounds))
        if val_samples:
            log.info("validation %s: %d photos", cfg.fba.val.root, len(val_samples))
    trainer = _Trainer(cfg, env, sources, [val_samples] if val_samples else [],
                       stop_at_step=stop_at_step)  # fmt: skip
    torch.manual_seed(cfg.train.seed)
    model = build_model("fba", cfg.model.width_divisor)
    if ckpt is None and cfg.model.init:
        src = load_initial_weights(model, "fba", cfg.model.init, cfg.model.accept_license)
        if env.is_main:
            log.info("initial weights: %s", src)
    torch.manual_seed(cfg.train.seed + env.rank)
    o = cfg.optim
    trainset = FBATrainSet(sources, backgrounds, cfg.input_hw, cfg.fba, cfg.augment)
    stage = _Stage(
        name="fba", model=model, arch="fba", out=out, total_steps=_total_steps(cfg, trainer),
        input_key="image", lr=o.lr, schedule=cfg.schedule.name, warmup=cfg.schedule.warmup_steps,
        checkpoint_every=cfg.train.checkpoint_every, val_every=cfg.val.every,
        val_metric=cfg.val.metric, val_metrics=list(cfg.val.metrics), freeze_bn=False,
        loss_fn=fba_loss_fn(cfg),
        resume=ckpt if (ckpt is not None and ckpt.get("kind") == "fba") else None,
        trainset=trainset, wrap=lambda m: m,
        validate_fn=lambda m, amp: validate_fba(m, val_samples, cfg, env),
        mean_std=_IMAGENET,
    )  # fmt: skip
    res = trainer.run(stage)
    return _result(out, res, stage_dir=out)
