"""The evaluation protocol (nuggy.eval.protocol) and the IoU metric it relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nuggy.eval.metrics import iou, sad
from nuggy.eval.protocol import (
    FAILURE_RULE,
    count_failures,
    is_failure,
    overall,
    stats,
    summarise,
)


def _disc(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    """A soft-edged disc: float32 H×W alpha with a 2-pixel ramp, like a real matte's edge."""
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(yy - cy, xx - cx) - r
    return np.clip(0.5 - d / 2.0, 0.0, 1.0).astype(np.float32)


def test_iou_hand_worked_and_threshold_is_inclusive():
    gt = np.zeros((4, 4), np.float32)
    gt[:2] = 1.0  # 8 px
    pred = np.zeros((4, 4), np.float32)
    pred[1:3] = 0.5  # 8 px at exactly the threshold: counted
    assert iou(pred, gt) == pytest.approx(4 / 12)
    assert iou(gt, gt) == 1.0
    assert iou(1.0 - gt, gt) == 0.0
    assert iou(np.full((4, 4), 0.4999, np.float32), gt) == 0.0
    assert iou(pred, gt, threshold=0.6) == 0.0
    with pytest.raises(ValueError, match="threshold"):
        iou(pred, gt, threshold=0.0)


def test_iou_of_empty_masks():
    empty = np.zeros((8, 8), np.float32)
    assert iou(empty, empty) == 1.0  # nothing to find, nothing found
    some = empty.copy()
    some[2:4, 2:4] = 1.0
    assert iou(some, empty) == 0.0 and iou(empty, some) == 0.0


def test_iou_of_a_shifted_subject():
    gt = _disc(120, 160, 60, 80, 35)
    r, d = 35.0, 4.0  # two discs of radius r, d apart: the lens-shaped intersection
    inter = 2 * r * r * math.acos(d / (2 * r)) - d / 2 * math.sqrt(4 * r * r - d * d)
    assert iou(_disc(120, 160, 60, 84, 35), gt) == pytest.approx(
        inter / (2 * math.pi * r * r - inter), abs=0.01
    )
    assert iou(_disc(120, 160, 60, 80, 20), gt) == pytest.approx((20 / 35) ** 2, abs=0.02)


def test_failure_rule_boundaries():
    assert FAILURE_RULE == "SAD > 50 or IoU < 0.8 (at 0.5)"
    assert not is_failure({"sad_whole": 50.0, "iou": 0.8})  # on the line: not a failure
    assert is_failure({"sad_whole": 50.01, "iou": 0.99})
    assert is_failure({"sad_whole": 1.0, "iou": 0.799})
    assert is_failure({"sad_whole": float("nan"), "iou": 0.99})
    with pytest.raises(KeyError, match="iou"):
        is_failure({"sad_whole": 1.0})


def test_failures_of_real_looking_predictions():
    """A 640×480 photo's matte: a good cut-out, a missed half, a swamped background."""
    gt = _disc(480, 640, 240, 320, 150)
    good = _disc(480, 640, 242, 321, 148)
    half = gt.copy()
    half[:, 320:] = 0.0
    swamped = np.maximum(gt, 0.4)  # background at 0.4 everywhere: SAD ≈ 0.4 × bg area / 1000
    rows = []
    for p in (good, half, swamped):
        rows.append({"sad_whole": sad(p, gt), "iou": iou(p, gt)})
    assert [is_failure(r) for r in rows] == [False, True, True]
    assert rows[1]["iou"] < 0.8 and rows[1]["sad_whole"] < 50  # failed on IoU alone
    assert rows[2]["iou"] == 1.0 and rows[2]["sad_whole"] > 50  # failed on SAD alone
    assert count_failures(rows) == 2


def test_stats_mean_median_and_nan():
    assert stats([3.0, 1.0, 2.0, 10.0]) == {"mean": 4.0, "median": 2.5, "n": 4}
    assert stats([1.0, float("nan"), 5.0, 3.0]) == {"mean": 3.0, "median": 3.0, "n": 3}
    s = stats([])
    assert math.isnan(s["mean"]) and math.isnan(s["median"]) and s["n"] == 0


def test_summarise_and_overall():
    small = [{"sad_whole": 10.0, "iou": 0.9}, {"sad_whole": 60.0, "iou": 0.95}]  # 1 failure
    large = [{"sad_whole": 2.0, "iou": 0.5}] + [{"sad_whole": 1.0, "iou": 0.98}] * 7
    s = summarise(small, ["sad_whole", "iou"])
    assert s["images"] == 2 and s["failures"] == 1 and s["failure_rate"] == 0.5
    assert s["metrics"]["sad_whole"] == {"mean": 35.0, "median": 35.0, "n": 2}
    assert summarise([{"sad_whole": 1.0}], ["sad_whole"])["failures"] is None  # no IoU: no rule
    o = overall({"small": small, "large": large}, ["sad_whole", "iou"])
    assert o["pooled"]["images"] == 10 and o["pooled"]["failures"] == 2
    assert o["pooled"]["failure_rate"] == pytest.approx(0.2)
    assert o["datasets"]["large"]["failures"] == 1
    # every image once vs every dataset once
    iou_small, iou_large = 0.925, (0.5 + 7 * 0.98) / 8
    assert o["pooled"]["metrics"]["iou"]["mean"] == pytest.approx((2 * iou_small + 8 * iou_large) / 10)
    assert o["mean_of_means"]["iou"] == pytest.approx((iou_small + iou_large) / 2)
