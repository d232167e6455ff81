"""Score a pipeline, or a folder of predictions, against a dataset's ground truth.

Per image: the matting metrics over the whole image and/or the trimap's unknown region
(``sad_whole``, ``mse_unknown``, …), the IoU at 0.5 (``iou``), the DIS metrics (``max_f``,
``mae``, ``hce``, …) and, for a pipeline, its wall time per stage (``time_segment``, …,
``time_total``, seconds). Images that cannot be read are listed as failures (``failures``);
the rest are still scored. Images that are scored but fail the protocol's quality rule
(:mod:`nuggy.eval.protocol`) are counted in the report summary.
"""

from __future__ import annotations

import heapq
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .datasets import Dataset, DatasetError, Sample, _images_by_stem, _listing, load_sample, read_matte

__all__ = [
    "Metric",
    "METRICS",
    "MATTING_METRICS",
    "DIS_METRICS",
    "REGIONS",
    "ImageResult",
    "WorstCase",
    "Evaluation",
    "Predict",
    "pipeline_predict",
    "folder_predict",
    "prediction_files",
    "evaluate",
    "metric_info",
    "default_rank_metric",
    "error_map",
]

REGIONS = ("whole", "unknown")
MATTING_METRICS = ("sad", "mse", "grad", "conn")
DIS_METRICS = ("max_f", "weighted_f", "mae", "s_measure", "e_measure_mean", "e_measure_max", "hce")


@dataclass(frozen=True)
class Metric:
    """How to show and rank one metric."""

    label: str
    higher_is_better: bool
    fmt: str = ".4f"


METRICS: dict[str, Metric] = {
    **{f"{m}_{r}": Metric(f"{m.upper()} ({r})", False, ".3f") for r in REGIONS for m in MATTING_METRICS},
    "iou": Metric("IoU@0.5", True),
    "max_f": Metric("max Fβ", True),
    "weighted_f": Metric("weighted Fβ", True),
    "mae": Metric("MAE", False),
    "s_measure": Metric("S-measure", True),
    "e_measure_mean": Metric("E-measure (mean)", True),
    "e_measure_max": Metric("E-measure (max)", True),
    "hce": Metric("HCEγ", False, ".1f"),
}


def metric_info(key: str) -> Metric:
    """Display and ranking info for a metric or timing column (timings: lower is better)."""
    if key in METRICS:
        return METRICS[key]
    if key.startswith("time_"):
        return Metric(f"time {key[5:]} (s)", False, ".3f")
    return Metric(key, False, ".4g")


#: ``predict(sample, image) -> (alpha float32 H×W in [0, 1], timings in seconds by stage)``
Predict = Callable[[Sample, np.ndarray], "tuple[np.ndarray, dict[str, float]]"]


@dataclass
class ImageResult:
    """Scores of one image: ``metrics`` by key (see :data:`METRICS`), ``timings`` in seconds."""

    name: str
    height: int
    width: int
    metrics: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, float | int | str]:
        """Flat record: name, width, height, every metric, ``time_<stage>``."""
        out: dict[str, float | int | str] = {"name": self.name, "width": self.width, "height": self.height}
        out.update(self.metrics)
        out.update({f"time_{k}": v for k, v in self.timings.items()})
        return out


@dataclass
class WorstCase:
    """Thumbnails of one badly scored image for the contact sheet (uint8, same height)."""

    name: str
    score: float
    image: np.ndarray  # H×W×3
    gt: np.ndarray  # H×W
    pred: np.ndarray  # H×W


@dataclass
class Evaluation:
    """Everything one evaluation run produced.

    Attributes:
        meta: dataset, source (model config or prediction folder), regions, wall time, host.
        images: per-image results, in dataset order.
        failures: (name, message) for images that could not be scored.
        worst: the worst images by ``meta["rank_by"]``, worst first, with thumbnails.
    """

    meta: dict
    images: list[ImageResult]
    failures: list[tuple[str, str]] = field(default_factory=list)
    worst: list[WorstCase] = field(default_factory=list)

    def columns(self) -> list[str]:
        """Metric and timing keys present in any image, in a stable order."""
        seen: dict[str, None] = {}
        for r in self.images:
            for k in r.metrics:
                seen[k] = None
        metric_keys = [k for k in METRICS if k in seen] + [k for k in seen if k not in METRICS]
        times: dict[str, None] = {}
        for r in self.images:
            for k in r.timings:
                times[f"time_{k}"] = None
        return metric_keys + list(times)

    def rows(self) -> list[dict]:
        return [r.row() for r in self.images]

    def summary(self) -> dict[str, float]:
        """Mean of every metric and timing over the scored images (NaN-free values only)."""
        rows = self.rows()
        out: dict[str, float] = {}
        for k in self.columns():
            vals = [float(r[k]) for r in rows if k in r and np.isfinite(float(r[k]))]
            out[k] = float(np.mean(vals)) if vals else float("nan")
        return out


def default_rank_metric(keys: Iterable[str]) -> str:
    """The metric the worst cases are ranked by: SAD (whole, else unknown), else MAE."""
    keys = list(keys)
    for k in ("sad_whole", "sad_unknown", "mae"):
        if k in keys:
            return k
    return keys[0]


# ---------------------------------------------------------------------------------------------
# prediction sources


def pipeline_predict(pipeline) -> Predict:
    """A :data:`Predict` running ``pipeline`` (a :class:`nuggy.Pipeline`); timings include
    ``total``, the wall time of ``pipeline.run``."""

    def predict(sample: Sample, image: np.ndarray):
        t0 = time.perf_counter()
        result = pipeline.run(image)
        total = time.perf_counter() - t0
        return result.alpha, {**result.timings, "total": total}

    return predict


def prediction_files(folder: str | os.PathLike, dataset: Dataset) -> dict[str, Path]:
    """name -> prediction file in ``folder`` for every sample (matched by file stem).

    Raises:
        DatasetError: the folder is missing, or predictions are missing (all listed).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{folder}: predictions folder not found")
    found = _images_by_stem(folder)
    missing = [s.name for s in dataset if s.name not in found]
    if missing:
        raise DatasetError(
            f"{folder}: no prediction for {len(missing)} of {len(dataset)} image(s): "
            f"{_listing(missing)}; predictions are matched by name without extension"
        )
    return {s.name: found[s.name] for s in dataset}


def folder_predict(folder: str | os.PathLike, dataset: Dataset) -> Predict:
    """A :data:`Predict` reading ``folder/<name>.*`` (grey → value/255, RGBA → its alpha)."""
    files = prediction_files(folder, dataset)

    def predict(sample: Sample, image: np.ndarray):
        pred = read_matte(files[sample.name])
        if pred.shape != image.shape[:2]:
            raise DatasetError(
                f"{files[sample.name]}: prediction is {pred.shape[1]}×{pred.shape[0]} but image "
                f"{sample.image.name} is {image.shape[1]}×{image.shape[0]}; save predictions "
                "at the image's size"
            )
        return pred, {}

    return predict


# ---------------------------------------------------------------------------------------------
# scoring


def score_image(
    pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None, regions: Sequence[str]
) -> dict[str, float]:
    """Matting metrics per region (``<metric>_<region>``), ``iou`` and the DIS metrics of one
    image.

    Args:
        pred, gt: float32 H×W in [0, 1].
        trimap: uint8 H×W (0/128/255); required for the ``unknown`` region.
        regions: subset of :data:`REGIONS`.
    """
    from .metrics import dis_metrics, iou, matting_metrics

    out: dict[str, float] = {}
    for region in regions:
        m = matting_metrics(pred, gt, trimap=trimap if region == "unknown" else None, region=region)
        out.update({f"{k}_{region}": float(v) for k, v in m.items()})
    out["iou"] = iou(pred, gt)
    out.update({k: float(v) for k, v in dis_metrics(pred, gt).items()})
    return out


def _thumb(a: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = a.shape[:2]
    if h <= height:
        return a.copy()
    nw = max(1, round(w * height / h))
    return cv2.resize(a, (nw, height), interpolation=cv2.INTER_AREA)


def error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Signed error as RGB uint8 H×W×3: red where the prediction has too much alpha,
    blue where it has too little, black where it is right (brightness = |error|)."""
    d = pred.astype(np.float32) - gt.astype(np.float32)
    if pred.dtype == np.uint8:
        d /= 255.0
    out = np.zeros(d.shape + (3,), np.uint8)
    out[..., 0] = np.clip(d * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[..., 2] = np.clip(-d * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)


def evaluate(
    dataset: Dataset,
    predict: Predict,
    *,
    regions: Sequence[str] = ("whole",),
    source: dict | None = None,
    progress: bool = False,
    keep_worst: int = 6,
    thumb_height: int = 200,
    rank_by: str | None = None,
    save_predictions: str | os.PathLike | None = None,
    split: dict | None = None,
    score: Callable[[np.ndarray, np.ndarray, np.ndarray | None], dict[str, float]] | None = None,
) -> Evaluation:
    """Score every sample of ``dataset``.

    Args:
        dataset: from :func:`nuggy.eval.datasets.open_dataset`.
        predict: :func:`pipeline_predict` or :func:`folder_predict` (or any :data:`Predict`).
        regions: subset of ``("whole", "unknown")``; ``unknown`` needs trimaps.
        source: what produced the predictions, recorded in ``meta["source"]``.
        progress: show a progress bar (tqdm, on stderr).
        keep_worst: how many worst cases to keep thumbnails of (for the contact sheet).
        thumb_height: thumbnail height in pixels.
        rank_by: metric ranking the worst cases; default :func:`default_rank_metric`.
        save_predictions: folder to write each prediction to (``<name>.png``, 8-bit grey), so
            it can be re-scored or compared later with ``--predictions``.
        split: which part of the dataset ``dataset`` is, recorded in ``meta["split"]``:
            ``{"part": "tune" | "check" | "all", "of": samples before the split, "limit": N |
            None}``; default ``{"part": "all", "of": len(dataset), "limit": None}``.
        score: ``score(pred, gt, trimap) -> {metric: value}`` for one image (pred and gt float32
            H×W in [0, 1], trimap uint8 H×W or ``None``); default :func:`score_image` with
            ``regions``. A narrower set of metrics makes large runs cheaper; ``rank_by`` must
            be one of the keys it returns when ``keep_worst > 0``.

    Raises:
        ValueError: bad regions, or ``unknown`` without trimaps.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    regions = tuple(regions)
    bad = [r for r in regions if r not in REGIONS]
    if bad or not regions:
        raise ValueError(f"regions must be a non-empty subset of {REGIONS}, got {regions}")
    if "unknown" in regions and not dataset.has_trimaps:
        lacking = [s.name for s in dataset if s.trimap is None]
        raise ValueError(
            f"{dataset.root}: the 'unknown' region needs a trimap for every image "
            f"({len(lacking)} have none: {_listing(lacking)}); use --region whole"
        )
    keys = [f"{m}_{r}" for r in regions for m in MATTING_METRICS] + ["iou"] + list(DIS_METRICS)
    rank_by = rank_by or default_rank_metric(keys)
    if rank_by not in keys:
        raise ValueError(f"cannot rank by {rank_by!r}; choose one of: {', '.join(keys)}")
    higher_better = metric_info(rank_by).higher_is_better

    images: list[ImageResult] = []
    failures: list[tuple[str, str]] = []
    heap: list[tuple[float, int, WorstCase]] = []  # min-heap on badness: keeps the worst
    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    samples = list(dataset)
    bar = tqdm(
        total=len(samples), unit="img", disable=not progress, file=sys.stderr, dynamic_ncols=True, desc="eval"
    )
    with ThreadPoolExecutor(1, thread_name_prefix="nuggy-eval-read") as reader:
        reads = [reader.submit(load_sample, s) for s in samples[:2]]
        for i, sample in enumerate(samples):
            fut = reads.pop(0)
            if i + 2 < len(samples):
                reads.append(reader.submit(load_sample, samples[i + 2]))
            try:
                image, gt, trimap = fut.result()
                pred, timings = predict(sample, image)
                pred = np.asarray(pred, dtype=np.float32)
                if not np.isfinite(pred).all():
                    raise ValueError(f"{sample.name}: the prediction contains NaN or inf")
                pred = np.clip(pred, 0.0, 1.0)
                metrics = (
                    score(pred, gt, trimap) if score is not None else score_image(pred, gt, trimap, regions)
                )
            except (DatasetError, ValueError, OSError) as exc:
                msg = str(exc)
                failures.append((sample.name, msg))
                bar.update(1)
                continue
            except MemoryError:
                failures.append((sample.name, "out of memory"))
                bar.update(1)
                continue
            if save_predictions is not None:
                from ..io import save_image

                save_image(_u8(pred), Path(save_predictions) / f"{sample.name}.png")
            images.append(ImageResult(sample.name, image.shape[0], image.shape[1], metrics, timings))
            if keep_worst > 0:
                value = metrics[rank_by]
                badness = -value if higher_better else value
                if len(heap) < keep_worst or badness > heap[0][0]:
                    case = WorstCase(
                        sample.name,
                        value,
                        _thumb(image, thumb_height),
                        _thumb(_u8(gt), thumb_height),
                        _thumb(_u8(pred), thumb_height),
                    )
                    item = (badness, i, case)
                    if len(heap) < keep_worst:
                        heapq.heappush(heap, item)
                    else:
                        heapq.heapreplace(heap, item)
            bar.update(1)
            if progress and images:
                bar.set_postfix_str(f"{rank_by}={metrics[rank_by]:{metric_info(rank_by).fmt}}")
    bar.close()
    worst = [c for _, _, c in sorted(heap, key=lambda t: (-t[0], t[1]))]

    from .. import __version__

    meta = {
        "dataset": str(dataset.root.resolve()),
        "layout": dataset.layout,
        "dataset_info": {k: v for k, v in dataset.info.items() if k != "items"},
        "samples": len(samples),
        "scored": len(images),
        "failed": len(failures),
        "split": dict(split) if split is not None else {"part": "all", "of": len(samples), "limit": None},
        "regions": list(regions),
        "rank_by": rank_by,
        "source": source or {},
        "started": started.isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - t_start, 3),
        "nuggy": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    return Evaluation(meta=meta, images=images, failures=failures, worst=worst)
