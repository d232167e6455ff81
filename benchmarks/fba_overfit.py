"""Smoke overfit of a tiny-width FBA on real composites (not a quality result).

    python benchmarks/fba_overfit.py --steps 150 --val-every 25

Builds, in a temporary folder, 3 alphamatting-dev photos (the photo as F, its alpha; longer
side --side px) as foregrounds, 8 ecssd-dev photos as backgrounds, and a validation folder of
the same 3 foregrounds over 3 other ecssd photos (with trimaps from the alpha), then trains
configs/fba-smoke-cpu.yaml (width_divisor 16, 64 px input) on it with colour jitter off.
Prints the training loss every 10 steps and SAD/MSE/Grad/Conn in the unknown region of the
validation composites. It shows the trainer learns; it says nothing about real quality.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path("/work/shared/evaldata")


def build(root: Path, side: int) -> None:
    import cv2

    from nuggy.train.matting_data import trimap_from_alpha

    am, ecssd = EVAL / "alphamatting-dev", EVAL / "ecssd-dev"

    def small(a, interp):
        h, w = a.shape[:2]
        s = side / max(h, w)
        return cv2.resize(a, (round(w * s), round(h * s)), interpolation=interp)

    for d in ("fg/fg", "fg/alpha", "bg", "val/image", "val/alpha", "val/trimap"):
        (root / d).mkdir(parents=True)
    names = sorted(p.stem for p in (am / "alpha").glob("*.png"))[:3]
    bgs = sorted((ecssd / "image").glob("*.jpg"))
    for p in bgs[:8]:
        cv2.imwrite(str(root / "bg" / p.name), small(cv2.imread(str(p)), cv2.INTER_AREA))
    for i, n in enumerate(names):
        fg = small(cv2.imread(str(am / "image" / f"{n}.png")), cv2.INTER_AREA)
        a = small(cv2.imread(str(am / "alpha" / f"{n}.png"), 0), cv2.INTER_AREA)
        cv2.imwrite(str(root / "fg/fg" / f"{n}.png"), fg)
        cv2.imwrite(str(root / "fg/alpha" / f"{n}.png"), a)
        b = cv2.resize(cv2.imread(str(bgs[8 + i])), (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
        af = a.astype(np.float32)[..., None] / 255
        cv2.imwrite(
            str(root / "val/image" / f"{n}.png"),
            np.round(af * fg + (1 - af) * b.astype(np.float32)).astype(np.uint8),
        )
        cv2.imwrite(str(root / "val/alpha" / f"{n}.png"), a)
        cv2.imwrite(str(root / "val/trimap" / f"{n}.png"), trimap_from_alpha(af[..., 0], 7, 7))


def main(argv=None) -> int:
    import torch

    from nuggy.train.config import load_config
    from nuggy.train.loop import train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--val-every", type=int, default=25)
    ap.add_argument("--side", type=int, default=120)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, args.side)
        cfg = load_config(ROOT / "configs" / "fba-smoke-cpu.yaml", [
            f"data.datasets.0.root={root / 'fg'}", f"data.backgrounds.0={root / 'bg'}",
            f"fba.val.root={root / 'val'}", f"train.output_dir={root / 'run'}",
            f"train.steps={args.steps}", f"val.every={args.val_every}", "train.log_every=10",
            f"train.checkpoint_every={args.val_every}", "augment.color_jitter.p=0",
            *args.overrides,
        ])  # fmt: skip
        t = time.perf_counter()
        train(cfg)
        wall = time.perf_counter() - t
        recs = [json.loads(x) for x in (root / "run/metrics.jsonl").read_text().splitlines()]
    out = {
        "wall_s": round(wall, 1),
        "loss": [(r["step"], round(r["loss"], 3)) for r in recs if r["kind"] == "train"],
        "val": [(r["step"], {k[4:]: round(v, 4) for k, v in r.items() if k.startswith("val/")})
                for r in recs if r["kind"] == "val"],
    }  # fmt: skip
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
