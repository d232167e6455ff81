"""Matting benchmarks (run on demand, not part of the tests).

  python benchmarks/matting.py solvers [--direct] [--solvers cf knn lkm guided] [--images GT04 ...]
      each solver with the ground-truth trimaps of the dev set: SAD / MSE over the unknown
      region and time, band-restricted (ours) and, with --direct, pymatting on the full image.
  python benchmarks/matting.py presets [--model u2netp] [--presets default best best:knn]
      automatic mode: whole-image SAD / MSE / Grad of each preset on the dev set.
  python benchmarks/matting.py scale --megapixels 12 [--preset best]
      one run of the preset on a synthetic photo (examples/chelsea.jpg upscaled), in a
      subprocess: seconds per stage and peak RSS.

Dev data: ../shared/evaldata/alphamatting-dev (image/, alpha/, trimap/), or --data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "evaldata" / "alphamatting-dev"
DIRECT = {"cf": "estimate_alpha_cf", "knn": "estimate_alpha_knn", "lkm": "estimate_alpha_lkm"}


def load_dev(data: Path, names: list[str] | None):
    from nuggy.io import load_image

    files = sorted((data / "image").glob("*.png"))
    for f in files:
        if names and f.stem not in names:
            continue
        image = load_image(f)
        gt = load_image(data / "alpha" / f.name)[..., 0].astype(np.float32) / 255
        trimap = load_image(data / "trimap" / f.name)[..., 0]
        yield f.stem, image, gt, trimap


def region_scores(alpha, gt, trimap):
    u = trimap == 128
    err = alpha.astype(np.float64) - gt
    return float(np.abs(err[u]).sum() / 1000), float((err[u] ** 2).mean() * 1000)


def cmd_solvers(args) -> None:
    import pymatting

    from nuggy.matting import solve
    from nuggy.pipeline.trimap import validate_trimap

    # warm up (numba compiles on first use): timings then measure the solve only
    rng = np.random.default_rng(0)
    wimg = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    wtri = np.zeros((64, 64), np.uint8)
    wtri[24:40] = 128
    wtri[40:] = 255
    for method in args.solvers:
        solve(method, wimg, wtri)
        if args.direct and method in DIRECT:
            getattr(pymatting, DIRECT[method])(wimg / 255.0, wtri / 255.0)
    rows = []
    for name, image, gt, trimap in load_dev(args.data, args.images):
        trimap = validate_trimap(trimap)
        for method in args.solvers:
            t0 = time.perf_counter()
            a = solve(method, image, trimap)
            dt = time.perf_counter() - t0
            s, m = region_scores(a, gt, trimap)
            row = {"image": name, "solver": method, "sad": s, "mse": m, "time": dt}
            if args.direct and method in DIRECT:
                t0 = time.perf_counter()
                d = getattr(pymatting, DIRECT[method])(image.astype(np.float64) / 255, trimap / 255.0)
                row["time_direct"] = time.perf_counter() - t0
                row["sad_direct"], row["mse_direct"] = region_scores(d, gt, trimap)
                row["max_abs_diff"] = float(np.abs(a - d)[trimap == 128].max())
            rows.append(row)
            print(json.dumps(row), flush=True)
    summarise(rows)


def summarise(rows) -> None:
    methods = sorted({r["solver"] for r in rows}, key=[r["solver"] for r in rows].index)
    cols = ["sad", "mse", "time", "sad_direct", "mse_direct", "time_direct"]
    print("\n| solver | " + " | ".join(f"mean {c}" for c in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for m in methods:
        rs = [r for r in rows if r["solver"] == m]
        cells = []
        for c in cols:
            v = [r[c] for r in rs if c in r]
            cells.append(f"{np.mean(v):.3f}" if v else "–")
        print(f"| {m} | " + " | ".join(cells) + " |")


def cmd_presets(args) -> None:
    from nuggy.eval.metrics import matting_metrics
    from nuggy.pipeline.config import preset
    from nuggy.pipeline.pipeline import Pipeline

    table = {}
    for pname in args.presets:
        base, _, method = pname.partition(":")  # "best:knn" = the best preset with knn
        cfg = preset(base, model=args.model)
        if method:
            cfg = cfg.replace(matting=method)
        pipe = Pipeline(cfg, accept_license=args.accept_license)
        scores = []
        for name, image, gt, _trimap in load_dev(args.data, args.images):
            t0 = time.perf_counter()
            res = pipe.run(image)
            dt = time.perf_counter() - t0
            m = matting_metrics(res.alpha, gt)
            m["time"] = dt
            scores.append(m)
            print(json.dumps({"preset": pname, "model": args.model, "image": name, **m}), flush=True)
        table[pname] = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
    print(f"\nmodel {args.model}, whole image, mean over {len(scores)} images")
    print("| preset | SAD | MSE | Grad | Conn | s/image |\n|---|---|---|---|---|---|")
    for pname, t in table.items():
        print(
            f"| {pname} | {t['sad']:.2f} | {t['mse']:.2f} | {t['grad']:.2f} | {t['conn']:.2f} | {t['time']:.2f} |"
        )


SCALE_CHILD = r"""
import json, resource, sys, time
import numpy as np
import cv2
from nuggy.io import load_image
from nuggy.pipeline.pipeline import Pipeline
from nuggy.pipeline.config import preset
src, mp, pname, model = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
img = load_image(src)
h, w = img.shape[:2]
s = (mp * 1e6 / (h * w)) ** 0.5
img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pipe = Pipeline(preset(pname, model=model))
pipe.predictor
t0 = time.perf_counter()
res = pipe.run(img)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
unk = int((res.trimap == 128).sum()) if res.trimap is not None else 0
print(json.dumps({"size": f"{img.shape[1]}x{img.shape[0]}", "megapixels": img.shape[0] * img.shape[1] / 1e6,
                  "preset": pname, "seconds": dt, "timings": res.timings, "unknown_px": unk,
                  "peak_rss_gb": peak / 1024**2, "rss_before_run_gb": base / 1024**2}))
"""


def cmd_scale(args) -> None:
    for mp in args.megapixels:
        out = subprocess.run(
            [sys.executable, "-c", SCALE_CHILD, str(args.source), str(mp), args.preset, args.model],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(out.returncode)
        print(out.stdout.strip().splitlines()[-1], flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("solvers")
    s.add_argument("--solvers", nargs="+", default=["cf", "knn", "lkm", "guided"])
    s.add_argument("--images", nargs="+")
    s.add_argument("--direct", action="store_true", help="also run pymatting on the full image")
    s = sub.add_parser("presets")
    s.add_argument(
        "--presets",
        nargs="+",
        default=["default", "best"],
        help="preset names; NAME:SOLVER overrides the matting solver (best:knn)",
    )
    s.add_argument("--model", default="u2netp")
    s.add_argument("--accept-license", default="agpl-3.0")
    s.add_argument("--images", nargs="+")
    s = sub.add_parser("scale")
    s.add_argument("--megapixels", type=float, nargs="+", default=[12.0, 24.0])
    s.add_argument("--preset", default="best")
    s.add_argument("--model", default="u2netp")
    s.add_argument("--source", type=Path, default=ROOT / "examples" / "chelsea.jpg")
    args = p.parse_args(argv)
    if args.cmd in ("solvers", "presets") and not args.data.is_dir():
        raise SystemExit(f"{args.data}: dev data not found (--data)")
    {"solvers": cmd_solvers, "presets": cmd_presets, "scale": cmd_scale}[args.cmd](args)


if __name__ == "__main__":
    main()
