"""The evaluation protocol: which images are failures, and how per-image scores are summarised.

* A **failure** is an image whose whole-image SAD (Composition-1k scale, thousands of alpha
  units) exceeds :data:`FAILURE_SAD` or whose IoU at 0.5 (:func:`nuggy.eval.metrics.iou`) is
  below :data:`FAILURE_IOU`: the subject was missed, cut in pieces, or swamped by background.
* A **summary** of one metric over a set of images is its mean, median and count, NaNs left out.
* **Overall** over several datasets reports the pooled figures (every image counts once, so a
  large set dominates) *beside* each dataset's mean and the unweighted mean of those means
  (every dataset counts once); neither is presented as the other.

Constants and stage choices are tuned on the ``tune`` half of each dataset and reported on the
``check`` half (:mod:`nuggy.eval.split`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "FAILURE_SAD",
    "FAILURE_IOU",
    "IOU_THRESHOLD",
    "FAILURE_RULE",
    "FAILURE_KEYS",
    "is_failure",
    "count_failures",
    "stats",
    "summarise",
    "overall",
]

#: An image with ``sad_whole`` above this is a failure.
FAILURE_SAD = 50.0
#: An image with ``iou`` below this is a failure.
FAILURE_IOU = 0.8
#: Prediction and ground truth are thresholded at ``≥`` this for the IoU.
IOU_THRESHOLD = 0.5
#: The rule in words, for tables and reports.
FAILURE_RULE = f"SAD > {FAILURE_SAD:g} or IoU < {FAILURE_IOU:g} (at {IOU_THRESHOLD:g})"
#: The per-image metrics the rule needs.
FAILURE_KEYS = ("sad_whole", "iou")


def is_failure(metrics: Mapping[str, float]) -> bool:
    """True when one image's scores break the rule (:data:`FAILURE_RULE`).

    Args:
        metrics: per-image scores with ``sad_whole`` and ``iou``; a NaN in either is a failure
            (the image could not be judged good).

    Raises:
        KeyError: ``sad_whole`` or ``iou`` is missing.
    """
    missing = [k for k in FAILURE_KEYS if k not in metrics]
    if missing:
        raise KeyError(f"the failure rule needs {', '.join(missing)}")
    sad, iou = float(metrics["sad_whole"]), float(metrics["iou"])
    if not (math.isfinite(sad) and math.isfinite(iou)):
        return True
    return sad > FAILURE_SAD or iou < FAILURE_IOU


def count_failures(rows: Iterable[Mapping[str, float]]) -> int:
    """Number of rows that are failures (:func:`is_failure`)."""
    return sum(1 for r in rows if is_failure(r))


def stats(values: Iterable[float]) -> dict[str, float]:
    """``{"mean", "median", "n"}`` of the finite values (mean and median NaN when none)."""
    v = np.array([float(x) for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"mean": float("nan"), "median": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "n": int(v.size)}


def summarise(rows: Sequence[Mapping[str, float]], keys: Sequence[str]) -> dict:
    """Summary of per-image rows.

    Returns:
        ``{"images": n, "metrics": {key: stats}, "failures": k, "failure_rate": k / n}``;
        ``failures`` and ``failure_rate`` are ``None`` when the rows lack the rule's metrics.
    """
    rows = list(rows)
    out: dict = {
        "images": len(rows),
        "metrics": {k: stats(r[k] for r in rows if k in r) for k in keys},
        "failures": None,
        "failure_rate": None,
    }
    if rows and all(all(k in r for k in FAILURE_KEYS) for r in rows):
        k = count_failures(rows)
        out["failures"] = k
        out["failure_rate"] = k / len(rows)
    elif not rows:
        out["failures"], out["failure_rate"] = 0, float("nan")
    return out


def overall(per_dataset: Mapping[str, Sequence[Mapping[str, float]]], keys: Sequence[str]) -> dict:
    """Summary across datasets of one configuration.

    Args:
        per_dataset: dataset name -> its per-image rows.
        keys: the metrics to summarise.

    Returns:
        ``{"pooled": summarise(all rows), "datasets": {name: summarise(rows)},
        "mean_of_means": {key: unweighted mean of the datasets' means}}``; a dataset without
        a finite value of a key is left out of that key's mean of means.
    """
    per = {name: summarise(rows, keys) for name, rows in per_dataset.items()}
    pooled = summarise([r for rows in per_dataset.values() for r in rows], keys)
    mom: dict[str, float] = {}
    for k in keys:
        means = [s["metrics"][k]["mean"] for s in per.values()]
        means = [m for m in means if math.isfinite(m)]
        mom[k] = float(np.mean(means)) if means else float("nan")
    return {"pooled": pooled, "datasets": per, "mean_of_means": mom}
