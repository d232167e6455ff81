"""Time one optimiser step of the recipe's trainers and derive the time per epoch.

    python benchmarks/train_step_time.py --task fba --size 640 --batch 1 --steps 3
    python benchmarks/train_step_time.py --task isnet --size 1024 --batch 1 --steps 3
    python benchmarks/train_step_time.py --task fba --size 640 --device cuda --amp bf16 --steps 20

Each step is what ``nuggy train`` runs for the task: FBA (full width) forward with fusion,
the full FBA loss set, backward, RAdam step; IS-Net stage 2: forward, side BCE over the six
maps, the frozen GT encoder's forward and the feature-sync loss, backward, AdamW step. Inputs
are random tensors of the right shapes (data loading is left out: it runs in parallel
workers). The first ``--warmup`` steps are not timed. It also counts the FLOPs of one step
(``torch.utils.flop_counter``) so a time on other hardware can be estimated from it.

Prints one JSON line: seconds per step (median), samples/s, FLOPs per step, and the time
per epoch for ``--samples-per-epoch`` (default: the recipe's: FBA 43 100 composites,
IS-Net 10 000 samples) on ``--gpus`` processes of this step time (data-parallel, assuming
linear scaling).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def _fba_step(size: int, batch: int, device, amp: str, width_divisor: int):
    import torch

    from nuggy.models import create_model
    from nuggy.train.config import config_from_dict
    from nuggy.train.fba_task import fba_loss_fn

    cfg = config_from_dict({
        "task": "fba", "model": {"arch": "fba", "width_divisor": width_divisor},
        "data": {"input_size": size, "backgrounds": ["x"],
                 "datasets": [{"name": "x", "layout": "generic", "root": "x"}]},
        "train": {"steps": 1},
    })  # fmt: skip
    model = create_model("fba", width_divisor=width_divisor).to(device).train()
    opt = torch.optim.RAdam(model.parameters(), lr=1e-5, weight_decay=1e-4)
    loss_fn = fba_loss_fn(cfg)
    g = torch.Generator().manual_seed(0)
    alpha = torch.rand(batch, 1, size, size, generator=g)
    tri = torch.zeros(batch, 2, size, size)
    tri[:, 0] = (alpha < 0.05).float()
    tri[:, 1] = (alpha > 0.95).float()
    batch_t = {
        "image": torch.rand(batch, 3, size, size, generator=g), "trimap": tri,
        "image_n": torch.randn(batch, 3, size, size, generator=g),
        "clicks": torch.rand(batch, 6, size, size, generator=g), "alpha": alpha,
        "fg": torch.rand(batch, 3, size, size, generator=g),
        "bg": torch.rand(batch, 3, size, size, generator=g),
    }  # fmt: skip
    batch_t = {k: v.to(device) for k, v in batch_t.items()}
    return model, opt, lambda: loss_fn(model, batch_t)[0]


def _isnet_step(size: int, batch: int, device, amp: str, width_divisor: int):
    import torch

    from nuggy.models import create_model
    from nuggy.train.losses import feature_sync, segmentation_loss

    model = create_model("isnet", width_divisor=width_divisor).to(device).train()
    enc = create_model("isnet_gt_encoder", width_divisor=width_divisor).to(device).eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=g).to(device)
    mask = (torch.rand(batch, 1, size, size, generator=g) > 0.5).float().to(device)

    def step():
        maps, feats = model.forward_logits(x)
        loss, _ = segmentation_loss(list(maps), mask)
        with torch.no_grad():
            _, gt_feats = enc.forward_logits(mask)
        return loss + feature_sync(list(feats), list(gt_feats))

    return model, opt, step


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=["fba", "isnet"], required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    ap.add_argument("--width-divisor", type=int, default=1)
    ap.add_argument("--samples-per-epoch", type=int, default=None)
    ap.add_argument("--gpus", type=int, default=1, help="processes the epoch is split over")
    ap.add_argument("--no-flops", action="store_true")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    build = _fba_step if args.task == "fba" else _isnet_step
    model, opt, loss_of = build(args.size, args.batch, device, args.amp, args.width_divisor)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=args.amp == "fp16")

    def step() -> None:
        if dtype is not None:
            with torch.autocast(device_type=device.type, dtype=dtype):
                loss = loss_of()
        else:
            loss = loss_of()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    flops = None
    if not args.no_flops:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as fc:
            step()
        flops = int(fc.get_total_flops())
    for _ in range(args.warmup):
        step()
    sync()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    sec = statistics.median(times)
    spe = args.samples_per_epoch or (43100 if args.task == "fba" else 10000)
    steps_per_epoch = -(-spe // (args.batch * args.gpus))
    res = {
        "task": args.task, "size": args.size, "batch": args.batch, "device": str(device),
        "amp": args.amp, "width_divisor": args.width_divisor, "threads": torch.get_num_threads(),
        "sec_per_step": round(sec, 4), "step_times": [round(t, 4) for t in times],
        "samples_per_sec": round(args.batch / sec, 3), "flops_per_step": flops,
        "samples_per_epoch": spe, "gpus": args.gpus,
        "hours_per_epoch": round(steps_per_epoch * sec / 3600, 3),
    }  # fmt: skip
    if device.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name(device)
        res["max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
