"""Cleaning of an alpha matte: island removal and hole filling.

Both work on the confident region ``alpha > threshold`` (foreground components are
8-connected, background components 4-connected, so the two are consistent) and return a new
array of the input's dtype; the input is never modified.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["remove_islands", "fill_holes"]

#: Alpha at or below this rounds to 0 in 8 bits; the soft halo of an island is what lies above.
_SOFT = 0.5 / 255.0


def _check_alpha(alpha: np.ndarray, threshold: float) -> np.ndarray:
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be H×W, got shape {alpha.shape}")
    if not np.issubdtype(alpha.dtype, np.floating):
        raise ValueError(f"alpha must be floating point in [0, 1], got dtype {alpha.dtype}")
    if not (0.0 <= float(threshold) < 1.0):
        raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
    return alpha


def _check_fraction(value: float, name: str) -> float:
    value = float(value)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def _above(alpha: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 mask (0/1) of ``alpha > threshold``."""
    return (alpha > threshold).view(np.uint8)


def remove_islands(
    alpha: np.ndarray,
    *,
    min_relative_area: float = 0.05,
    threshold: float = 0.5,
    attach_level: float = 0.02,
) -> np.ndarray:
    """Drop confident components that are small, isolated islands, with their halo.

    The components of ``alpha > threshold`` (8-connectivity) are found; the largest is kept,
    as is every other component whose area is at least ``min_relative_area`` × the largest
    area (genuinely separate parts of the subject), and every component joined to a kept one
    by a path of ``alpha > attach_level`` (hair strands, leaves, spokes: fine parts the model
    sees as attached, however small). The others are dropped: their pixels are
    set to 0, and so is their soft halo, i.e. every pixel with ``alpha > 0.5/255`` (visible in
    8 bits) that is connected to a dropped component through such pixels and lies strictly
    closer to a dropped component than to a kept one of the same connected soft region
    (Euclidean distance, 5×5 chamfer approximation). Kept components are never changed.
    Sub-visible alpha (at most 0.5/255) is left as it is. A soft region that holds no kept
    component is zeroed whole, so only a dropped island whose halo merges with a kept
    component's costs distance transforms (over that region's bounding box).

    Args:
        alpha: H×W float alpha in [0, 1] (float32 or float64).
        min_relative_area: area fraction of the largest component below which a component is
            dropped (0 keeps everything).
        threshold: confidence threshold in [0, 1).
        attach_level: alpha above which a path attaches a small component to a kept one
            (``>= threshold`` disables attachment).

    Returns:
        New array, same shape and dtype as ``alpha``.
    """
    alpha = _check_alpha(alpha, threshold)
    min_relative_area = _check_fraction(min_relative_area, "min_relative_area")
    attach_level = _check_fraction(attach_level, "attach_level")
    out = alpha.copy()
    if alpha.size == 0:
        return out
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        _above(alpha, threshold), connectivity=8, ltype=cv2.CV_32S
    )
    if n <= 2:  # background + at most one component
        return out
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= min_relative_area * areas.max()
    keep[1 + int(np.argmax(areas))] = True
    if keep[1:].all():
        return out
    if attach_level < threshold:
        # small components reachable from a kept one through alpha > attach_level stay
        _, attached = cv2.connectedComponents(_above(alpha, attach_level), connectivity=8, ltype=cv2.CV_32S)
        comp_region = np.zeros(n, np.int32)
        comp_region[labels.ravel()] = attached.ravel()
        region_kept = np.zeros(int(attached.max()) + 1, bool)
        region_kept[comp_region[keep]] = True
        keep[1:] |= region_kept[comp_region[1:]]
        if keep[1:].all():
            return out
    drop = ~keep
    drop[0] = False

    # the soft support and its 8-connected components (each confident component lies inside
    # exactly one of them)
    soft_level = min(_SOFT, float(threshold))
    n_soft, soft, soft_stats, _ = cv2.connectedComponentsWithStats(
        _above(alpha, soft_level), connectivity=8, ltype=cv2.CV_32S
    )
    comp_soft = np.zeros(n, np.int32)
    comp_soft[labels.ravel()] = soft.ravel()
    soft_has_drop = np.zeros(n_soft, bool)
    soft_has_drop[comp_soft[drop]] = True
    soft_has_keep = np.zeros(n_soft, bool)
    soft_has_keep[comp_soft[keep]] = True
    soft_has_drop[0] = soft_has_keep[0] = False

    # soft components that hold dropped but no kept components go entirely
    only_drop = soft_has_drop & ~soft_has_keep
    if only_drop.any():
        out[only_drop[soft]] = 0
    # soft components that hold both: split by the nearest confident component
    for sid in np.flatnonzero(soft_has_drop & soft_has_keep):
        x, y, w, h = soft_stats[sid, :4]
        sl = (slice(y, y + h), slice(x, x + w))
        reg = soft[sl] == sid
        lab = labels[sl]
        kept_px = keep[lab] & reg
        d_keep = _distance_to(kept_px)
        d_drop = _distance_to(drop[lab] & reg)
        zero = reg & (d_drop < d_keep) & ~kept_px
        out[sl][zero] = 0
    return out


def _distance_to(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (5×5 chamfer approximation) to the nearest True pixel of ``mask``."""
    return cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, 5)


def fill_holes(alpha: np.ndarray, *, max_relative_area: float = 0.001, threshold: float = 0.5) -> np.ndarray:
    """Fill small enclosed background holes of the subject.

    A hole is a 4-connected component of ``alpha <= threshold`` that does not touch the image
    border. Holes of at most ``max_relative_area`` × the subject area (the number of pixels
    with ``alpha > threshold``) are set to 1; the fractional rim around a hole (alpha above the
    threshold) is left as it is.

    Args:
        alpha: H×W float alpha in [0, 1] (float32 or float64).
        max_relative_area: largest hole to fill, as a fraction of the subject area.
        threshold: confidence threshold in [0, 1).

    Returns:
        New array, same shape and dtype as ``alpha``.
    """
    alpha = _check_alpha(alpha, threshold)
    max_relative_area = _check_fraction(max_relative_area, "max_relative_area")
    out = alpha.copy()
    if alpha.size == 0:
        return out
    fg = _above(alpha, threshold)
    subject = int(cv2.countNonZero(fg))
    if subject == 0:
        return out
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - fg, connectivity=4, ltype=cv2.CV_32S)
    if n <= 1:
        return out
    fill = np.zeros(n, bool)
    fill[1:] = stats[1:, cv2.CC_STAT_AREA] <= max_relative_area * subject
    # components touching the border are background, not holes
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        fill[edge] = False
    fill[0] = False
    if fill.any():
        out[fill[labels]] = 1
    return out
