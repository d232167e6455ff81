"""Speed and memory of the pipeline per stage, on photos of chosen sizes.

Test photos are a real example photo (so the model sees a real subject) resized to cover the
requested size and centre-cropped. Each size runs ``warmup`` times untimed, then ``runs`` times;
per stage the mean of :attr:`nuggy.pipeline.config.Result.timings` is reported, with the total
wall time of ``Pipeline.run`` and images per second.

Memory is the process's resident set size: the peak (``resource.getrusage().ru_maxrss``, a
high-water mark of the whole process) and its increase over the baseline, the RSS after
loading the model and one small run (so one-time runtime allocations are not charged to the
first size). The RSS just before each size is recorded too (``rss_before_mb``). Sizes run from small to large so each size's peak is its own; a size whose runs did
not raise the high-water mark is flagged (``peak_is_own = False``: its true peak is at most the
reported one).
"""

from __future__ import annotations

import math
import os
import platform
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "parse_size",
    "target_shape",
    "default_source",
    "synth_image",
    "current_rss",
    "peak_rss",
    "run_benchmark",
    "bench_markdown",
]


def parse_size(text: str) -> dict:
    """Parse one size: ``2mp`` / ``0.5MP`` (megapixels, the source's aspect ratio),
    ``1920x1080`` (width × height) or ``1024`` (long side, the source's aspect ratio).

    Raises:
        ValueError: naming the accepted forms.
    """
    t = text.strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*mp", t)
    if m and float(m.group(1)) > 0:
        return {"label": text.strip(), "pixels": float(m.group(1)) * 1e6}
    m = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", t)
    if m and int(m.group(1)) > 1 and int(m.group(2)) > 1:
        return {"label": text.strip(), "width": int(m.group(1)), "height": int(m.group(2))}
    m = re.fullmatch(r"(\d+)", t)
    if m and int(m.group(1)) > 1:
        return {"label": text.strip(), "long_side": int(m.group(1))}
    raise ValueError(
        f"size {text!r} not understood; use megapixels (2mp, 0.5mp), WIDTHxHEIGHT (1920x1080) "
        "or a long side in pixels (1024)"
    )


def target_shape(size: dict, aspect: float) -> tuple[int, int]:
    """(height, width) for a parsed size and a source aspect ratio ``aspect`` = width / height."""
    if "width" in size:
        return size["height"], size["width"]
    if "pixels" in size:
        h = math.sqrt(size["pixels"] / aspect)
        return max(2, round(h)), max(2, round(h * aspect))
    side = size["long_side"]
    if aspect >= 1:
        return max(2, round(side / aspect)), side
    return side, max(2, round(side * aspect))


def default_source() -> Path | None:
    """An example photo of the source tree (``examples/``), if present."""
    root = Path(__file__).resolve().parents[3] / "examples"
    for name in ("astronaut.jpg", "rocket.jpg", "coffee.jpg", "chelsea.jpg"):
        if (root / name).is_file():
            return root / name
    return None


def _procedural(h: int, w: int) -> np.ndarray:
    """A stand-in photo when no example is available: a shaded disc on a gradient."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bg = np.stack([xx / w, yy / h, 0.5 * np.ones_like(xx)], axis=2) * 180 + 40
    r = 0.3 * min(h, w)
    d = np.sqrt((yy - h / 2) ** 2 + (xx - w / 2) ** 2)
    disc = np.clip(r - d + 0.5, 0, 1)[..., None]
    fg = np.stack([200 - 80 * (yy / h), 60 + 40 * (xx / w), 50 * np.ones_like(xx)], axis=2)
    return np.clip(disc * fg + (1 - disc) * bg, 0, 255).astype(np.uint8)


def synth_image(shape: tuple[int, int], source: np.ndarray | None) -> np.ndarray:
    """A test photo of ``shape`` = (h, w): ``source`` (RGB uint8) resized to cover it and
    centre-cropped, or a procedural one when ``source`` is ``None``."""
    if source is None:
        return _procedural(*shape)
    from .composite import fit_background

    return fit_background(source, shape, fit="cover")[0]


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def current_rss() -> int:
    """Current resident set size of this process in bytes (``/proc``; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss()


def run_benchmark(
    config,
    sizes: Sequence[str],
    *,
    runs: int = 3,
    warmup: int = 1,
    source: str | os.PathLike | None = None,
    progress: bool = False,
    accept_license: str | None = None,
    log=None,
) -> dict:
    """Time the pipeline on each size.

    Args:
        config: a :class:`~nuggy.pipeline.config.PipelineConfig` or preset name.
        sizes: size strings (see :func:`parse_size`).
        runs: timed runs per size; warmup: untimed runs before them.
        source: photo to resize; default :func:`default_source` (procedural if none).
        progress: progress bar on stderr; log: callable receiving one line per size.

    Returns:
        ``{"meta": {...}, "sizes": [{label, height, width, megapixels, runs, stages (mean s),
        total_s, total_min_s, images_per_s, rss_before_mb, peak_rss_mb, peak_increase_mb
        (peak − baseline), peak_is_own}]}`` in the order of ``sizes``.
    """
    from tqdm import tqdm

    from .. import __version__
    from ..io import load_image
    from ..pipeline.config import preset
    from ..pipeline.pipeline import Pipeline

    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    parsed = [parse_size(s) for s in sizes]
    if not parsed:
        raise ValueError("no sizes given")
    baseline = current_rss()
    src_path = Path(source) if source is not None else default_source()
    src = load_image(src_path) if src_path is not None else None
    aspect = (src.shape[1] / src.shape[0]) if src is not None else 4 / 3
    cfg = preset(config) if isinstance(config, str) else config
    pipe = Pipeline(cfg, accept_license=accept_license)
    t0 = time.perf_counter()
    pipe.load()
    load_s = time.perf_counter() - t0
    # One small run first, so the runtime's one-time allocations (ONNX Runtime's arena, lazy
    # imports of later stages) count towards the baseline, not towards the first size.
    pipe.run(synth_image((64, 64), src))
    model_rss = current_rss()

    shapes = [target_shape(p, aspect) for p in parsed]
    order = sorted(range(len(parsed)), key=lambda i: shapes[i][0] * shapes[i][1])
    results: dict[int, dict] = {}
    bar = tqdm(
        total=len(parsed) * (runs + warmup),
        unit="run",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
        desc="bench",
    )
    for i in order:
        h, w = shapes[i]
        image = synth_image((h, w), src)
        rss_before = current_rss()
        peak_before = peak_rss()
        for _ in range(warmup):
            pipe.run(image)
            bar.update(1)
        stage_times: dict[str, list[float]] = {}
        totals: list[float] = []
        for _ in range(runs):
            t = time.perf_counter()
            res = pipe.run(image)
            totals.append(time.perf_counter() - t)
            for k, v in res.timings.items():
                stage_times.setdefault(k, []).append(v)
            del res
            bar.update(1)
        peak_after = peak_rss()
        mean_total = float(np.mean(totals))
        row = {
            "label": parsed[i]["label"],
            "height": h,
            "width": w,
            "megapixels": round(h * w / 1e6, 3),
            "runs": runs,
            "stages": {k: float(np.mean(v)) for k, v in stage_times.items()},
            "total_s": mean_total,
            "total_min_s": float(np.min(totals)),
            "images_per_s": 1.0 / mean_total if mean_total > 0 else float("inf"),
            "rss_before_mb": rss_before / 2**20,
            "peak_rss_mb": peak_after / 2**20,
            "peak_increase_mb": max(0, peak_after - model_rss) / 2**20,
            "peak_is_own": peak_after > peak_before,
        }
        results[i] = row
        del image
        if log:
            log(
                f"{row['label']} ({w}×{h}): {mean_total * 1000:.0f} ms/img, "
                f"peak RSS {row['peak_rss_mb']:.0f} MB"
            )
    bar.close()
    from dataclasses import asdict

    from ..runtime.onnx import available_cores

    meta = {
        "config": asdict(cfg),
        "source_image": str(src_path) if src_path is not None else "procedural",
        "warmup": warmup,
        "runs": runs,
        "model_load_s": load_s,
        "baseline_rss_mb": baseline / 2**20,
        "model_rss_mb": model_rss / 2**20,
        "nuggy": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": available_cores(),
    }
    return {"meta": meta, "sizes": [results[i] for i in range(len(parsed))]}


def bench_markdown(result: dict) -> str:
    """The benchmark as a Markdown table: one row per size, one column per stage (ms)."""
    from .report import markdown_table

    stages: dict[str, None] = {}
    for r in result["sizes"]:
        for k in r["stages"]:
            stages[k] = None
    header = (
        ["size", "W×H", "MP"]
        + [f"{k} ms" for k in stages]
        + ["total ms", "img/s", "peak RSS MB", "peak − baseline MB"]
    )
    rows = []
    for r in result["sizes"]:
        peak = f"{r['peak_rss_mb']:.0f}" + ("" if r["peak_is_own"] else " (≤)")
        rows.append(
            [r["label"], f"{r['width']}×{r['height']}", f"{r['megapixels']:.2f}"]
            + [f"{r['stages'].get(k, float('nan')) * 1000:.1f}" for k in stages]
            + [f"{r['total_s'] * 1000:.1f}", f"{r['images_per_s']:.2f}", peak, f"{r['peak_increase_mb']:.0f}"]
        )
    m = result["meta"]
    cfg = m["config"]
    head = (
        f"model {cfg.get('model') or cfg.get('weights')}, {m['cores']} cores, "
        f"{m['warmup']} warm-up + {m['runs']} timed runs per size (means); model load "
        f"{m['model_load_s'] * 1000:.0f} ms; RSS at start {m['baseline_rss_mb']:.0f} MB, "
        f"with the model loaded and run once {m['model_rss_mb']:.0f} MB"
    )
    return head + "\n\n" + markdown_table(header, rows) + "\n"
