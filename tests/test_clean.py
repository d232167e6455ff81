"""Island removal and hole filling."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from nuggy.pipeline.clean import fill_holes, remove_islands

VISIBLE = 0.5 / 255  # alpha at or below this is 0 in 8 bits


def disc(alpha: np.ndarray, cx: int, cy: int, r: int) -> None:
    cv2.circle(alpha, (cx, cy), r, 1.0, -1)


def soft(mask: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def scene() -> np.ndarray:
    """Two large separate subjects (areas ~5000 and ~3800 px) and a small speck (~50 px),
    each with a Gaussian soft edge; none of the halos touch."""
    a = np.zeros((200, 320), np.float32)
    disc(a, 70, 100, 40)
    disc(a, 220, 100, 35)
    disc(a, 150, 170, 4)
    return soft(a)


def test_keeps_two_large_subjects_and_drops_speck_with_halo():
    alpha = scene()
    before = alpha.copy()
    out = remove_islands(alpha, min_relative_area=0.05)
    assert out.dtype == alpha.dtype and out.shape == alpha.shape
    assert np.array_equal(alpha, before)  # input untouched
    # the speck and its whole soft halo (fractional alpha around it) are gone; what is left
    # of the Gaussian's tail rounds to 0 in 8 bits
    speck = np.zeros_like(alpha, np.uint8)
    cv2.circle(speck, (150, 170), 14, 1, -1)
    assert alpha[speck > 0].max() > 0.5 and (alpha[speck > 0] > VISIBLE).sum() > 100
    assert out[speck > 0].max() <= VISIBLE
    # both large subjects, halo included, are bit-identical
    rest = speck == 0
    assert np.array_equal(out[rest], alpha[rest])


def test_min_relative_area_decides():
    alpha = scene()
    # 0: everything is kept
    assert np.array_equal(remove_islands(alpha, min_relative_area=0.0), alpha)
    # above the second subject's share (~3800/5000) only the largest survives
    out = remove_islands(alpha, min_relative_area=0.9)
    assert out[100, 70] == alpha[100, 70] and out[100, 220] == 0 and out[170, 150] == 0
    assert out[:, 170:].max() <= VISIBLE


def test_halo_shared_with_a_kept_subject_is_split_by_distance():
    a = np.zeros((120, 200), np.float32)
    disc(a, 60, 60, 40)
    disc(a, 122, 60, 7)  # ~150 px island whose blurred edge merges with the subject's
    alpha = soft(a, 3.0)
    confident = alpha > 0.5
    n, labels = cv2.connectedComponents(confident.view(np.uint8), connectivity=8)
    assert n == 3  # two confident components, joined by a soft bridge
    assert alpha[60, 100:116].min() > VISIBLE
    out = remove_islands(alpha)
    big = labels == labels[60, 60]
    assert np.array_equal(out[big], alpha[big])  # the kept component is never changed
    assert not out[labels == labels[60, 122]].any()  # the island goes
    # the bridge is split where it is equally far from both confident sets
    row, orow = alpha[60], out[60]
    edge_big = np.flatnonzero(big[60]).max()
    edge_isl = np.flatnonzero(labels[60] == labels[60, 122]).min()
    mid = (edge_big + edge_isl) / 2
    cols = np.arange(edge_big + 1, edge_isl)
    assert np.array_equal(orow[cols[cols < mid]], row[cols[cols < mid]])
    assert not orow[cols[cols > mid]].any()
    # and everything right of the island's halo that belonged to it is gone
    assert out[:, 122:].max() <= VISIBLE


def test_nothing_to_drop_returns_an_equal_copy():
    a = np.zeros((50, 60), np.float64)
    disc(a, 30, 25, 10)
    out = remove_islands(a)
    assert out is not a and out.dtype == np.float64 and np.array_equal(out, a)
    empty = np.zeros((10, 10), np.float32)
    assert np.array_equal(remove_islands(empty), empty)


def test_threshold_selects_the_confident_region():
    a = np.zeros((60, 100), np.float32)
    a[10:50, 5:45] = 0.9
    a[20:24, 70:74] = 0.6  # above 0.5: an island; below 0.7: not confident at all
    assert not remove_islands(a, threshold=0.5)[20:24, 70:74].any()
    assert np.array_equal(remove_islands(a, threshold=0.7), a)


def test_fill_holes():
    a = np.ones((100, 100), np.float32)
    a[:, :20] = 0  # background touching the border: never a hole
    a[50:53, 50:53] = 0  # 9 px hole
    a[30:32, 70:72] = 0.2  # 4 px hole of low alpha
    a[60:80, 25:45] = 0  # 400 px hole: too large at the default 0.001
    before = a.copy()
    out = fill_holes(a, max_relative_area=0.002)  # subject 7587 px: holes up to 15 px
    assert np.array_equal(a, before) and out.dtype == a.dtype
    assert (out[50:53, 50:53] == 1).all() and (out[30:32, 70:72] == 1).all()
    assert (out[60:80, 25:45] == 0).all() and (out[:, :20] == 0).all()
    changed = out != a
    assert changed.sum() == 9 + 4
    default = fill_holes(a)  # 0.001 of the subject: 7.6 px, only the 4 px hole
    assert (default[30:32, 70:72] == 1).all()
    assert np.array_equal(default[50:53, 50:53], a[50:53, 50:53])
    assert (default != a).sum() == 4
    # a larger limit fills the big hole too
    assert (fill_holes(a, max_relative_area=0.06)[60:80, 25:45] == 1).all()


def test_fill_holes_uses_4_connected_background():
    """A diagonal gap in an 8-connected ring does not connect the inside to the outside."""
    a = np.zeros((20, 20), np.float32)
    a[5:15, 5:15] = 1
    a[7:13, 7:13] = 0  # 36 px hole
    a[6, 6] = 0  # hole grows one px diagonally towards the outside...
    a[5, 5] = 0  # ...and the corner pixel is cut: touches the hole only diagonally
    out = fill_holes(a, max_relative_area=1.0)
    assert (out[7:13, 7:13] == 1).all() and out[6, 6] == 1
    assert out[5, 5] == 0  # 4-connected to the outside background


def test_fill_holes_without_subject_or_holes():
    z = np.zeros((10, 10), np.float32)
    assert np.array_equal(fill_holes(z), z)
    o = np.ones((10, 10), np.float32)
    assert np.array_equal(fill_holes(o), o)


@pytest.mark.parametrize("fn", [remove_islands, fill_holes])
def test_rejects_bad_input(fn):
    with pytest.raises(ValueError):
        fn(np.zeros((5, 5, 3), np.float32))
    with pytest.raises(ValueError):
        fn(np.zeros((5, 5), np.uint8))
    with pytest.raises(ValueError):
        fn(np.zeros((5, 5), np.float32), threshold=1.0)
    with pytest.raises(ValueError):
        fn(np.zeros((5, 5), np.float32), threshold=-0.1)
    key = "min_relative_area" if fn is remove_islands else "max_relative_area"
    with pytest.raises(ValueError):
        fn(np.zeros((5, 5), np.float32), **{key: 1.5})


def test_small_part_attached_by_soft_alpha_is_kept():
    """A fine part (a strand of hair, a leaf) joined to the subject by fractional alpha is part
    of the subject, however small; the same speck floating free is an island."""
    a = np.zeros((120, 220), np.float32)
    disc(a, 60, 60, 40)
    disc(a, 160, 60, 4)  # ~50 px confident blob: far below 5 % of the subject
    a[59:62, 100:157] = 0.3  # a soft strand (alpha 0.3 > attach_level) reaching it
    alpha = a
    out = remove_islands(alpha, min_relative_area=0.05)
    assert np.array_equal(out, alpha)  # nothing dropped
    cut = alpha.copy()
    cut[59:62, 120:125] = 0.0  # break the strand: now the blob is an island
    out = remove_islands(cut, min_relative_area=0.05)
    assert not out[56:65, 156:165].any()
    # disabling attachment restores plain area-based removal
    assert not remove_islands(alpha, attach_level=0.5)[56:65, 156:165].any()
