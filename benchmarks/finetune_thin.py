"""Fine-tune u2netp on synthetic thin structures and measure what it changes.

1. Generates a training set and a held-out test set of thin-structure composites
   (:mod:`nuggy.train.synthetic`: wires, nets, fur over gradients, noise textures and
   defocused crops of the photos in ``examples/``), in the generic layout.
2. Scores the starting weights (the registry u2netp ONNX file converted to torch) on the
   held-out set (HCE, Grad, SAD, MAE, maxF at full resolution) and on the real photos of
   ``../shared/evaldata/alphamatting-dev`` (SAD, MSE over the whole image and over the
   trimap's unknown band) — evaluation only, never trained on.
3. Fine-tunes with ``nuggy.train`` (frozen BatchNorm, since the converted weights have it
   folded) and scores the result the same way.

    python benchmarks/finetune_thin.py                        # 200 steps, 320², batch 4
    python benchmarks/finetune_thin.py --steps 50 --out /tmp/ft

Prints a before/after table and writes ``results.json`` and the training run (config,
checkpoints, metrics, plot) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "evaldata" / "alphamatting-dev"


def _photos() -> list[np.ndarray]:
    from nuggy.io import load_image

    return [load_image(p) for p in sorted((ROOT / "examples").glob("*.jpg"))]


def make_sets(
    out: Path, train_n: int, test_n: int, size: int, blur: tuple[float, float]
) -> tuple[Path, Path]:
    from nuggy.train.synthetic import write_dataset

    train_dir, test_dir = out / "data" / "train", out / "data" / "test"
    photos = _photos()
    for d, n, seed in ((train_dir, train_n, 1), (test_dir, test_n, 9)):
        if (d / "image").is_dir() and len(list((d / "image").iterdir())) == n:
            continue
        t = time.time()
        write_dataset(d, "generic", n, size=size, seed=seed, photos=photos, photo_blur=blur)
        print(f"wrote {n} samples to {d} ({time.time() - t:.0f} s)", file=sys.stderr)
    return train_dir, test_dir


def make_replay(out: Path, model, size: int) -> Path:
    """The example photos with the starting model's own predictions as soft targets: a
    self-distillation anchor that keeps the fine-tune close to the model on real photos."""
    from PIL import Image

    d = out / "data" / "replay"
    (d / "image").mkdir(parents=True, exist_ok=True)
    (d / "mask").mkdir(parents=True, exist_ok=True)
    for p in sorted((ROOT / "examples").glob("*.jpg")):
        from nuggy.io import load_image

        image = load_image(p)
        prob = predict(model, image, size)
        Image.fromarray(image).save(d / "image" / f"{p.stem}.png")
        Image.fromarray(np.round(prob * 255).astype(np.uint8)).save(d / "mask" / f"{p.stem}.png")
    return d


def predict(model, image: np.ndarray, size: int):
    """Probability map at the image's size: resize to size², ImageNet normalisation, fused
    output d0, bilinear upsampling."""
    import cv2
    import torch

    from nuggy.train.data import normalise
    from nuggy.train.loop import _normalisation

    mean, std = _normalisation("u2netp")
    h, w = image.shape[:2]
    small = cv2.resize(
        image, (size, size), interpolation=cv2.INTER_AREA if min(h, w) > size else cv2.INTER_LINEAR
    )
    x = torch.from_numpy(normalise(small, mean, std))[None]
    with torch.no_grad():
        p = torch.sigmoid(model.forward_logits(x)[0])
        p = torch.nn.functional.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
    return p[0, 0].clamp(0, 1).numpy()


def score_synthetic(model, test_dir: Path, size: int) -> dict:
    from nuggy.eval import metrics as M
    from nuggy.eval.datasets import load_sample, open_dataset

    rows = []
    for s in open_dataset(test_dir, layout="generic"):
        image, gt, _ = load_sample(s)
        p = predict(model, image, size)
        rows.append({"hce": M.hce(p, gt), "grad": M.grad(p, gt), "sad": M.sad(p, gt),
                     "mae": M.mae(p, gt), "max_f": M.max_f(p, gt)})  # fmt: skip
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} | {"n": len(rows)}


def score_dev(model, size: int) -> dict | None:
    if not (DEV / "image").is_dir():
        print(f"no dev data at {DEV}: skipping the real-photo check", file=sys.stderr)
        return None
    from nuggy.eval import metrics as M
    from nuggy.eval.datasets import load_sample, open_dataset

    rows = []
    for s in open_dataset(DEV, layout="generic"):
        image, gt, trimap = load_sample(s)
        p = predict(model, image, size)
        band = trimap == 128
        rows.append({"sad": M.sad(p, gt), "mse": M.mse(p, gt),
                     "sad_unknown": M.sad(p, gt, mask=band), "mse_unknown": M.mse(p, gt, mask=band)})  # fmt: skip
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} | {"n": len(rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench-out" / "finetune_thin"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=320, help="model input and sample size")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--train-n", type=int, default=400)
    ap.add_argument("--test-n", type=int, default=40)
    ap.add_argument(
        "--blur", type=float, nargs=2, default=(2.0, 6.0), help="σ range (px) for the photo backdrops"
    )
    ap.add_argument(
        "--replay-weight",
        type=float,
        default=0.5,
        help="sampling weight of the self-distillation replay set (0: none)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--workers", type=int, default=1, help="data-loading processes")
    args = ap.parse_args(argv)

    import logging

    import torch

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    from nuggy.models import load_checkpoint
    from nuggy.models.convert import convert_registry_model
    from nuggy.sources import ensure_model
    from nuggy.train.config import config_from_dict
    from nuggy.train.loop import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ensure_model("u2netp")
    start_pth = out / "u2netp-start.pth"
    if not start_pth.exists():
        convert_registry_model("u2netp", start_pth)
    train_dir, test_dir = make_sets(out, args.train_n, args.test_n, args.size, tuple(args.blur))

    results: dict = {"args": vars(args)}
    t = time.time()
    before = load_checkpoint("u2netp", start_pth)
    results["before"] = {
        "synthetic": score_synthetic(before, test_dir, args.size),
        "dev": score_dev(before, args.size),
    }
    print(f"scored the starting weights ({time.time() - t:.0f} s)", file=sys.stderr)

    datasets = [{"name": "thin", "layout": "generic", "root": str(train_dir)}]
    if args.replay_weight > 0:
        replay = make_replay(out, before, args.size)
        datasets.append({"name": "replay", "layout": "generic", "root": str(replay),
                         "weight": args.replay_weight})  # fmt: skip
    run = out / "run"
    cfg = config_from_dict({
        "model": {"arch": "u2netp", "init": str(start_pth), "freeze_bn": "auto"},
        "data": {"input_size": args.size, "num_workers": args.workers,
                 "datasets": datasets},
        "augment": {"random_resized_crop": {"scale": [0.3, 1.0]}, "hflip": 0.5},
        "optim": {"name": "adam", "lr": args.lr},
        "schedule": {"name": "cosine", "warmup_steps": min(20, args.steps // 10), "min_lr_ratio": 0.1},
        "train": {"batch_size": args.batch, "steps": args.steps, "checkpoint_every": 50,
                  "log_every": 10, "output_dir": str(run), "seed": 0},
        "val": {"every": 0},
    })  # fmt: skip
    resume = run if (run / "last.pt").exists() else None
    t = time.time()
    res = train(cfg, resume=resume)
    train_s = time.time() - t
    print(f"fine-tuned {res['step']} steps in {train_s:.0f} s", file=sys.stderr)
    after = load_checkpoint("u2netp", run / "last.pt")
    results["after"] = {
        "synthetic": score_synthetic(after, test_dir, args.size),
        "dev": score_dev(after, args.size),
    }
    results["train_seconds"] = train_s
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in recs if r["kind"] == "train"]
    results["train_loss_first_last"] = [losses[0], losses[-1]] if losses else None
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    def row(name: str, key: str, sub: str, fmt: str = "{:.4g}") -> str:
        b, a = results["before"][sub], results["after"][sub]
        if b is None:
            return ""
        d = (a[key] - b[key]) / b[key] * 100 if b[key] else float("nan")
        return f"| {name} | {fmt.format(b[key])} | {fmt.format(a[key])} | {d:+.1f} % |"

    lines = [
        f"u2netp fine-tune: {res['step']} steps, batch {args.batch}, {args.size}², lr {args.lr}, "
        f"{args.train_n} synthetic training images; {train_s:.0f} s",
        "| metric | before | after | change |",
        "|---|---|---|---|",
        row(f"synthetic HCE (n={results['before']['synthetic']['n']}) ↓", "hce", "synthetic"),
        row("synthetic Grad ↓", "grad", "synthetic"),
        row("synthetic SAD ↓", "sad", "synthetic"),
        row("synthetic MAE ↓", "mae", "synthetic"),
        row("synthetic maxF ↑", "max_f", "synthetic"),
        row("alphamatting-dev SAD ↓", "sad", "dev"),
        row("alphamatting-dev MSE ↓", "mse", "dev"),
        row("alphamatting-dev SAD (unknown band) ↓", "sad_unknown", "dev"),
        row("alphamatting-dev MSE (unknown band) ↓", "mse_unknown", "dev"),
    ]
    print("\n".join(x for x in lines if x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
