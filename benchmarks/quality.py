"""Quality benchmark of the automatic pipeline (no trimap) on real photos with ground truth.

Runs each configuration over a dataset in the generic layout (``image/``, ``alpha/``) and prints
mean SAD / MSE / Grad / Conn over the whole image (Composition-1k definitions, see
``nuggy.eval.metrics``), one row per configuration, stage by stage:

    raw model → + flip TTA → + interior fill → + guided filter → + island removal
    → + foreground estimation (alpha unchanged; listed for completeness) → default preset

and, where a rembg installation is given (``--rembg PATH/TO/rembg``), rembg's output with its
alpha matting (``rembg i -m MODEL -a``) on the same model file (``U2NET_HOME`` points it at
Nuggy's cached copy).

    python benchmarks/quality.py                       # ../shared/evaldata/alphamatting-dev
    python benchmarks/quality.py --model isnet --data DIR --rembg /path/to/venv/bin/rembg
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "evaldata" / "alphamatting-dev"


def stage_configs(model: str):
    from nuggy.pipeline.config import preset

    fast = preset("fast", model=model)
    rows = [
        ("raw model", fast),
        ("+ flip TTA", fast.replace(tta=True)),
        ("+ interior fill", fast.replace(tta=True, interior=True)),
        ("+ guided filter", fast.replace(tta=True, interior=True, refine=True)),
        ("+ island removal", fast.replace(tta=True, interior=True, refine=True, islands=True)),
        ("+ foreground est.", fast.replace(tta=True, interior=True, refine=True, islands=True,
                                           foreground=True)),
        ("default preset", preset("default", model=model)),
    ]
    from nuggy.pipeline.config import PRESETS

    if "best" in PRESETS:
        rows.append(("best preset", preset("best", model=model)))
    return rows


def load_pairs(data: Path):
    from nuggy.io import load_image

    pairs = []
    for img in sorted((data / "image").iterdir()):
        alpha = data / "alpha" / img.name
        if not alpha.exists():
            raise SystemExit(f"{alpha}: missing ground truth for {img.name}")
        gt = load_image(alpha)[..., 0].astype(np.float32) / 255.0
        pairs.append((img, load_image(img), gt))
    return pairs


def score(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    from nuggy.eval.metrics import matting_metrics

    return matting_metrics(pred, gt)


#: Registry models whose file is byte-identical to the one rembg uses under the same name (rembg
#: re-downloads a file that does not match its own checksum; Nuggy's ``isnet`` is the fp16
#: export, rembg's ``isnet-general-use`` is fp32, so there is no like-for-like comparison).
REMBG_SAME_FILE = ("u2netp", "u2net")


def run_rembg(rembg: str, model: str, model_file: Path, pairs) -> tuple[list[np.ndarray], float]:
    """rembg's cut-outs (alpha matting on) for every image, and seconds spent."""
    from PIL import Image

    preds = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "u2net"
        home.mkdir()
        shutil.copy(model_file, home / f"{model}.onnx")
        env = dict(os.environ, U2NET_HOME=str(home), OMP_NUM_THREADS=str(os.cpu_count() or 1))
        t0 = time.perf_counter()
        for img, _, _ in pairs:
            out = Path(tmp) / (img.stem + ".png")
            subprocess.run([rembg, "i", "-m", model, "-a", str(img), str(out)], check=True,
                           env=env, capture_output=True)
            preds.append(np.asarray(Image.open(out).convert("RGBA"))[..., 3].astype(np.float32) / 255)
        return preds, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default="u2netp")
    ap.add_argument("--accept-license", default=None)
    ap.add_argument("--rembg", default=shutil.which("rembg"), help="rembg executable to compare with")
    ap.add_argument("--json", type=Path, help="write the table as JSON")
    args = ap.parse_args(argv)
    if not (args.data / "image").is_dir():
        print(f"no dataset at {args.data} (needs image/ and alpha/)", file=sys.stderr)
        return 2

    from nuggy.pipeline.pipeline import Pipeline
    from nuggy.sources import ensure_model

    pairs = load_pairs(args.data)
    table: dict[str, dict[str, float]] = {}
    per_image: dict[str, list[float]] = {}
    for label, cfg in stage_configs(args.model):
        pipe = Pipeline(cfg, accept_license=args.accept_license)
        rows, t0 = [], time.perf_counter()
        for _, image, gt in pairs:
            rows.append(score(pipe.run(image).alpha, gt))
        secs = time.perf_counter() - t0
        table[label] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        table[label]["s/img"] = secs / len(pairs)
        per_image[label] = [r["sad"] for r in rows]
        print(f"  {label}: done", file=sys.stderr)
    if args.rembg and args.model not in REMBG_SAME_FILE:
        print(f"rembg comparison skipped: rembg has no model file identical to {args.model!r} "
              f"(only {', '.join(REMBG_SAME_FILE)})", file=sys.stderr)
    elif args.rembg:
        model_file = ensure_model(args.model, accept_license=args.accept_license)
        try:
            preds, secs = run_rembg(args.rembg, args.model, model_file, pairs)
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"rembg failed: {exc}", file=sys.stderr)
        else:
            rows = [score(p, gt) for p, (_, _, gt) in zip(preds, pairs)]
            label = f"rembg -m {args.model} -a"
            table[label] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            table[label]["s/img"] = secs / len(pairs)
            per_image[label] = [r["sad"] for r in rows]

    names = [p[0].stem for p in pairs]
    print(f"\n{args.model} on {args.data} ({len(pairs)} images, whole image, automatic mode)\n")
    print("| configuration | SAD | MSE | Grad | Conn | s/img |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, m in table.items():
        print(f"| {label} | {m['sad']:.2f} | {m['mse']:.2f} | {m['grad']:.2f} | {m['conn']:.2f} | {m['s/img']:.2f} |")
    print("\nper-image SAD: " + " ".join(names))
    for label, v in per_image.items():
        print(f"  {label:22s} " + " ".join(f"{x:6.1f}" for x in v))
    if args.json:
        args.json.write_text(json.dumps({"table": table, "per_image_sad": per_image, "images": names}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
