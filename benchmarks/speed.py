"""Folder throughput: images/s and peak memory of ``nuggy remove DIR`` (fast and default),
beside ``rembg p`` on the same model file where rembg is installed.

Each tool runs as its own process over the same folder of real photos resized to the chosen
size (2 MP by default), one after the other, ``--repeat`` times; the best run is reported
(the least disturbed by other load). Peak memory is the child's maximum resident set size.

    python benchmarks/speed.py                         # 16 photos of 2 MP
    python benchmarks/speed.py -n 32 --megapixels 12 --presets default
    python benchmarks/speed.py --rembg /path/to/venv/bin/rembg
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_folder(dest: Path, n: int, megapixels: float) -> None:
    """``n`` JPEG photos of about ``megapixels`` MP made from the bundled examples."""
    import numpy as np
    from PIL import Image

    examples = sorted((ROOT / "examples").glob("*.jpg"))
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = Image.open(examples[i % len(examples)]).convert("RGB")
        s = math.sqrt(megapixels * 1e6 / (src.width * src.height))
        im = src.resize((round(src.width * s), round(src.height * s)), Image.Resampling.BICUBIC)
        if i >= len(examples):  # vary the content a little so no two files are identical
            im = Image.fromarray(np.ascontiguousarray(np.asarray(im)[:, ::-1]))
        im.save(dest / f"photo_{i:03d}.jpg", quality=90)


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0


def model_floor(photos: Path, model: str) -> float:
    """Seconds the model alone takes over the folder: one pass per photo (no flip), decoded
    beforehand, in this process, after one warm-up: the floor any preset stands on."""
    from nuggy.io import load_image
    from nuggy.pipeline.config import preset
    from nuggy.pipeline.pipeline import Pipeline

    predictor = Pipeline(preset("fast", model=model)).load().predictor
    images = [load_image(f) for f in sorted(photos.glob("*.jpg"))]
    predictor.predict(images[0], flip=False)
    t0 = time.perf_counter()
    for im in images:
        predictor.predict(im, flip=False)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=16, help="number of photos")
    ap.add_argument("--megapixels", type=float, default=2.0)
    ap.add_argument("--model", default="u2netp")
    ap.add_argument("--presets", default="fast,default")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--rembg", default=shutil.which("rembg"), help="rembg executable to compare with")
    args = ap.parse_args(argv)

    from nuggy.sources import ensure_model

    model_file = ensure_model(args.model)
    nuggy = [sys.executable, "-m", "nuggy"]
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = tmp / "photos"
        make_folder(photos, args.n, args.megapixels)
        runs: list[tuple[str, list[str], dict | None]] = []
        for p in args.presets.split(","):
            out = tmp / f"out_{p}"
            runs.append(
                (
                    f"nuggy --preset {p}",
                    nuggy
                    + [
                        "remove",
                        str(photos),
                        "-o",
                        str(out),
                        "--preset",
                        p,
                        "--model",
                        args.model,
                        "--overwrite",
                        "-q",
                    ],
                    None,
                )
            )
        if args.rembg:
            home = tmp / "u2net"
            home.mkdir()
            shutil.copy(model_file, home / f"{args.model}.onnx")
            env = dict(os.environ, U2NET_HOME=str(home))
            runs.append(
                (
                    f"rembg p -m {args.model}",
                    [args.rembg, "p", "-m", args.model, str(photos), str(tmp / "out_rembg")],
                    env,
                )
            )
        floor = None
        for _ in range(args.repeat):  # interleaved: each tool sees the same machine state
            f = model_floor(photos, args.model)
            floor = f if floor is None else min(floor, f)
            for label, cmd, env in runs:
                if label.startswith("rembg"):
                    shutil.rmtree(tmp / "out_rembg", ignore_errors=True)
                    (tmp / "out_rembg").mkdir()
                wall, rss = timed(cmd, env)
                best = results.get(label)
                if best is None or wall < best[0]:
                    results[label] = (wall, rss)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"\n{args.n} photos of {args.megapixels:g} MP, model {args.model}, {cores} cores, "
        f"best of {args.repeat}\n"
    )
    print("| tool | seconds | images/s | peak RSS (MB) |")
    print("|---|---:|---:|---:|")
    for label, (wall, rss) in results.items():
        print(f"| {label} | {wall:.1f} | {args.n / wall:.2f} | {rss:.0f} |")
    print(f"| model alone, one pass per photo (in process) | {floor:.1f} | {args.n / floor:.2f} | |")
    print()
    for label, (wall, _) in results.items():
        if label.startswith("nuggy"):
            print(f"{label}: {wall / floor:.2f}× the model floor")
    base = results.get(f"rembg p -m {args.model}")
    fast = results.get("nuggy --preset fast")
    if base and fast:
        print(f"nuggy fast vs rembg p: {base[0] / fast[0]:.2f}× the throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
