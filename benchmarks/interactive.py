"""Interactive-correction benchmark: simulated clicks (Xu et al. 2016 / RITM protocol) and a box.

For each photo of the ``check`` half (or ``--split tune``) of ecssd-dev and alphamatting-dev:

* **Clicks.** Start from the automatic result (0 clicks). Then, one click at a time, up to
  ``--max-clicks`` (20): compare the prediction with the ground truth (both at 0.5); the
  false-negative (missed subject) and false-positive (extra background) regions are each
  distance-transformed with the image border counting as boundary (RITM's ``get_next_points``);
  the click goes to the maximum of the larger one: ``keep`` for a missed subject, ``drop`` for
  false foreground. Every method gets all clicks so far at once (no state carried between
  clicks). A photo stops after ``max(5, clicks to reach IoU 0.90)`` clicks.
  Reported: **NoC@85 / NoC@90** (mean number of clicks until IoU ≥ 0.85 / 0.90, 0 when the
  automatic result already is; ``--max-clicks`` when never reached), **≥20@90** (photos that
  never reach 0.90), and mean **SAD after 0, 1, 3 and 5 clicks** (whole image,
  Composition-1k scale) and mean IoU after 5 clicks.
* **Box.** The ground-truth bounding box (of ``alpha ≥ 0.5``): SAD and IoU.

Methods: ``nuggy`` (the pipeline's ``--preset`` with :mod:`nuggy.pipeline.hints`), and OpenCV
``grabCut`` seeded the same way: its mask starts as "probably foreground / background" from the
same automatic result (the model's probability at 0.5) and each click is a disc of definite
foreground / background of the same radius; 5 iterations (OpenCV's sample uses 1 per call;
5 gave grabCut its best NoC on tune). With a box, grabCut starts from the box (``GC_INIT_WITH_RECT``,
its classic use) and nuggy runs the model on the box.

The model's probability is cached per image in ``--cache`` (the quality benchmark's cache
wrapper), so a second run costs no inference.

    python benchmarks/interactive.py                            # check halves, both methods
    python benchmarks/interactive.py --split tune --limit 80    # choose constants
    python benchmarks/interactive.py --set sigma=0.1 --set colour_cost=30 --methods nuggy
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EVALDATA = ROOT.parent / "shared" / "evaldata"
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

GRABCUT_ITERS = 5
THRESHOLDS = (0.85, 0.90)
SAD_AT = (0, 1, 3, 5)


def next_click(pred: np.ndarray, gt: np.ndarray) -> tuple[tuple[int, int], bool] | None:
    """RITM's next click: ``((x, y), is_keep)`` at the distance-transform maximum of the larger
    error region (the image border counts as boundary), or ``None`` when there is no error."""
    import cv2

    fn = gt & ~pred
    fp = pred & ~gt
    best = None
    for region, keep in ((fn, True), (fp, False)):
        if not region.any():
            continue
        padded = np.pad(region, 1).astype(np.uint8)
        dt = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(dt)), dt.shape)
        if best is None or dt[y, x] > best[0]:
            best = (float(dt[y, x]), (int(x), int(y)), keep)
    return None if best is None else (best[1], best[2])


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def grabcut(image: np.ndarray, prob: np.ndarray, keep, drop, *, box=None) -> np.ndarray:
    """OpenCV grabCut seeded like nuggy: float32 H×W alpha (0 / 1)."""
    import cv2

    from nuggy.pipeline.hints import Hints

    h, w = prob.shape
    bgr = np.ascontiguousarray(image[..., ::-1])
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    if box is not None:
        mask = np.zeros((h, w), np.uint8)
        x0, y0, x1, y1 = box
        cv2.grabCut(bgr, mask, (x0, y0, x1 - x0, y1 - y0), bgd, fgd, GRABCUT_ITERS, cv2.GC_INIT_WITH_RECT)
    else:
        mask = np.where(prob >= 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        k, d = Hints(keep=tuple(keep), drop=tuple(drop)).seeds((h, w))
        mask[k] = cv2.GC_FGD
        mask[d] = cv2.GC_BGD
        fg_any = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        bg_any = ~fg_any
        if fg_any.any() and bg_any.any():  # grabCut needs samples of both
            cv2.grabCut(bgr, mask, None, bgd, fgd, GRABCUT_ITERS, cv2.GC_INIT_WITH_MASK)
    return ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.float32)


def run_photo(method, image, gt_alpha, prob, max_clicks: int) -> dict:
    """One photo's click sequence: per-click IoU and SAD."""
    gt = gt_alpha >= 0.5
    keep: list[tuple[int, int]] = []
    drop: list[tuple[int, int]] = []
    ious, sads = [], []
    alpha = method(image, prob, keep, drop)
    while True:
        pred = alpha >= 0.5
        ious.append(iou(pred, gt))
        sads.append(float(np.abs(alpha - gt_alpha).sum() / 1000.0))
        n = len(keep) + len(drop)
        if n >= max_clicks or (n >= max(SAD_AT) and ious[-1] >= max(THRESHOLDS)):
            break
        nxt = next_click(pred, gt)
        if nxt is None:
            break
        (x, y), is_keep = nxt
        (keep if is_keep else drop).append((x, y))
        alpha = method(image, prob, keep, drop)
    # a sequence that stopped early (reached 0.90, or nothing left to fix) stays where it is
    while len(ious) < max(SAD_AT) + 1:
        ious.append(ious[-1])
        sads.append(sads[-1])
    return {"iou": ious, "sad": sads}


def noc(ious: list[float], thr: float, max_clicks: int) -> int:
    for k, v in enumerate(ious):
        if v >= thr:
            return k
    return max_clicks


def summarise(rows: list[dict], max_clicks: int) -> dict:
    out = {"images": len(rows)}
    for thr in THRESHOLDS:
        out[f"noc@{round(thr * 100)}"] = float(np.mean([noc(r["iou"], thr, max_clicks) for r in rows]))
    out["over@90"] = int(
        sum(noc(r["iou"], 0.90, max_clicks) >= max_clicks and max(r["iou"]) < 0.90 for r in rows)
    )
    for k in SAD_AT:
        out[f"sad@{k}"] = float(np.mean([r["sad"][k] for r in rows]))
    out["iou@5"] = float(np.mean([r["iou"][5] for r in rows]))
    return out


def main(argv: list[str] | None = None) -> int:
    from nuggy.eval.datasets import load_sample
    from nuggy.eval.quality import cache_predictors, prepare_dataset
    from nuggy.eval.split import SPLITS
    from nuggy.pipeline import hints as H
    from nuggy.pipeline.config import preset
    from nuggy.pipeline.pipeline import Pipeline

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="ecssd-dev,alphamatting-dev")
    ap.add_argument("--split", choices=SPLITS, default="check")
    ap.add_argument("--limit", type=int, default=None, help="first N photos of each half")
    ap.add_argument("--model", default="u2netp")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--methods", default="nuggy,grabcut")
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--no-box", action="store_true", help="skip the box-only rows")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a constant of nuggy.pipeline.hints (sigma, colour_cost, prob_cost, cutoff) for tuning",
    )
    ap.add_argument("--cache", type=Path, default=ROOT / ".scratch" / "probcache")
    ap.add_argument(
        "--out", type=Path, default=None, help="JSON report (default reports/interactive-<time>.json)"
    )
    args = ap.parse_args(argv)

    params = {}
    for item in args.set:
        k, _, v = item.partition("=")
        params[k.strip()] = float(v)
    cfg = preset(args.preset, model=args.model)
    pipe = Pipeline(cfg)
    cache_predictors(pipe, args.cache)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]

    def nuggy_method(image, prob, keep, drop):
        if not keep and not drop:
            return pipe.run(image, probability=prob).alpha
        hints = H.Hints(keep=tuple(keep), drop=tuple(drop))
        if params:
            hinted = H.apply_hints(prob, image, hints, **params)
            res = pipe.run(image, probability=hinted.probability)
            band = __import__("nuggy.pipeline.trimap", fromlist=["band_pixels"]).band_pixels(
                image.shape, cfg.trimap_band
            )
            return H.enforce(res.alpha, hinted, band)
        return pipe.run(image, probability=prob, hints=hints).alpha

    def grabcut_method(image, prob, keep, drop):
        if not keep and not drop:
            return pipe.run(image, probability=prob).alpha  # the same automatic start
        return grabcut(image, prob, keep, drop)

    impl = {"nuggy": nuggy_method, "grabcut": grabcut_method}
    started = datetime.now(timezone.utc)
    report = {
        "command": " ".join(sys.argv),
        "started": started.isoformat(),
        "split": args.split,
        "model": args.model,
        "preset": args.preset,
        "params": params,
        "datasets": {},
    }
    for dname in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        ps = prepare_dataset(EVALDATA / dname, args.split, args.limit)
        per: dict[str, list] = {m: [] for m in methods}
        box_rows: dict[str, list] = {"automatic": [], "nuggy box": [], "grabcut box": []}
        t0 = time.perf_counter()
        timing = {m: 0.0 for m in methods}
        for i, sample in enumerate(ps.dataset):
            image, gt_alpha, _ = load_sample(sample)
            prob = pipe._predict(image, cfg, _null_stage)
            for m in methods:
                t1 = time.perf_counter()
                per[m].append(
                    {"name": sample.name, **run_photo(impl[m], image, gt_alpha, prob, args.max_clicks)}
                )
                timing[m] += time.perf_counter() - t1
            if not args.no_box:
                gt = gt_alpha >= 0.5
                ys, xs = np.nonzero(gt)
                box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
                outs = {
                    "automatic": pipe.run(image, probability=prob).alpha,
                    "nuggy box": pipe.run(image, hints=H.Hints(box=box)).alpha,
                    "grabcut box": grabcut(image, prob, [], [], box=box),
                }
                for k, a in outs.items():
                    box_rows[k].append(
                        {
                            "name": sample.name,
                            "sad": float(np.abs(a - gt_alpha).sum() / 1000),
                            "iou": iou(a >= 0.5, gt),
                        }
                    )
            if (i + 1) % 25 == 0:
                print(
                    f"{dname}: {i + 1}/{len(ps.dataset)} ({time.perf_counter() - t0:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
        entry = {
            "images": len(ps.dataset),
            "split_size": ps.info["split_size"],
            "clicks": {m: summarise(per[m], args.max_clicks) for m in methods},
            "seconds_per_photo": {m: timing[m] / max(1, len(ps.dataset)) for m in methods},
            "per_image": per,
        }
        if not args.no_box:
            entry["box"] = {
                k: {
                    "sad": float(np.mean([r["sad"] for r in v])),
                    "iou": float(np.mean([r["iou"] for r in v])),
                }
                for k, v in box_rows.items()
            }
            entry["box_per_image"] = box_rows
        report["datasets"][dname] = entry
        print(_table(dname, entry, args), flush=True)
    out = args.out or ROOT / "reports" / f"interactive-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"report: {out}", file=sys.stderr)
    return 0


def _null_stage(name):
    from contextlib import nullcontext

    return nullcontext()


def _table(name: str, entry: dict, args) -> str:
    lines = [
        f"\n### {name} ({args.split} half: {entry['images']} of {entry['split_size']} photos)\n",
        "| method | NoC@85 | NoC@90 | ≥20@90 | SAD@0 | SAD@1 | SAD@3 | SAD@5 | IoU@5 | s/photo |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m, s in entry["clicks"].items():
        lines.append(
            f"| {m} | {s['noc@85']:.2f} | {s['noc@90']:.2f} | {s['over@90']} | "
            f"{s['sad@0']:.2f} | {s['sad@1']:.2f} | {s['sad@3']:.2f} | {s['sad@5']:.2f} | "
            f"{s['iou@5']:.3f} | {entry['seconds_per_photo'][m]:.2f} |"
        )
    if "box" in entry:
        lines += ["", "| box-only (GT bounding box) | SAD | IoU |", "|---|---|---|"]
        for k, v in entry["box"].items():
            lines.append(f"| {k} | {v['sad']:.2f} | {v['iou']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
