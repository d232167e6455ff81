"""Trimaps: automatic generation from a probability map, and validation of user trimaps.

A trimap marks every pixel as definite background (0), unknown (128) or definite foreground
(255); matting solvers compute alpha only in the unknown region.

:func:`make_trimap` builds an adaptive unknown band around the 0.5 contour of a probability map
(or mask). Its half-width is ``band × diagonal`` pixels scaled by a per-edge factor between
``crisp`` (sharp, confident edges) and ``wide`` (hard edges). An edge is "hard" where

* the model is uncertain: the probability ramps slowly across the edge (a soft transition wider
  than a couple of pixels), measured as the local mean of ``1 − |2p − 1|``;
* the edge is fine structure: parts of the mask thinner than the band that a morphological
  opening removes (strands, whiskers), or thin gaps that a closing fills;
* (with ``image``) the photo is dense with edges there (hair, fur): the fraction of pixels with a
  strong gradient in the neighbourhood.

Pixels whose probability is itself uncertain (between ``uncertain[0]`` and ``uncertain[1]``) are
always unknown. The scores are computed on a working grid of at most ~1 MP and carried to every
pixel from its nearest contour pixel, so the cost stays linear in the image size.

:func:`validate_trimap` / :func:`load_trimap` check user trimaps (see there for what is
accepted).
"""

from __future__ import annotations

import math
import os
from typing import Union

import numpy as np

from ..errors import ImageError

__all__ = [
    "UNKNOWN",
    "FOREGROUND",
    "BACKGROUND",
    "TrimapError",
    "make_trimap",
    "one_sided",
    "validate_trimap",
    "unsolvable",
    "load_trimap",
    "band_pixels",
]

BACKGROUND, UNKNOWN, FOREGROUND = 0, 128, 255

#: Pixels of the grid on which the edge scores are computed (large images are area-reduced).
_WORK_PIXELS = 1_000_000
#: Gradient magnitude (per pixel, on 0..1 grey) above which a pixel counts as an image edge.
_EDGE_GRADIENT = 0.08
#: Edge-density ramp: the density of a single crisp edge line is ~2/(2r+1); hair is 0.3+.
_EDGE_DENSITY = (0.15, 0.35)
#: Thin-structure density at which the fine-structure score saturates.
_THIN_DENSITY = 0.10

PathLike = Union[str, os.PathLike]


class TrimapError(ImageError):
    """A trimap is invalid; the message names it, what was found and the fix."""


def band_pixels(shape: tuple[int, int], band: float) -> float:
    """Base half-width in pixels of the unknown band: ``band × diagonal`` (at least 1)."""
    h, w = shape[:2]
    return max(1.0, float(band) * math.hypot(h, w))


def _as_probability(prob: np.ndarray) -> np.ndarray:
    p = np.asarray(prob)
    if p.ndim != 2:
        raise ValueError(f"expected an H×W probability map or mask, got shape {p.shape}")
    if min(p.shape) < 1:
        raise ValueError(f"empty probability map, shape {p.shape}")
    if p.dtype == np.bool_:
        return p.astype(np.float32)
    if p.dtype == np.uint8:
        return p.astype(np.float32) * np.float32(1 / 255)
    if not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"expected float in [0, 1], uint8 or bool, got dtype {p.dtype}")
    p = p.astype(np.float32)  # copy: the input is never modified
    if not np.isfinite(p).all():
        raise ValueError("probability map contains NaN or infinity")
    return np.clip(p, 0.0, 1.0, out=p)


def _box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    k = 2 * radius + 1
    return cv2.blur(x.astype(np.float32, copy=False), (k, k), borderType=cv2.BORDER_REFLECT)


def _ellipse(radius: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _contour(mask: np.ndarray) -> np.ndarray:
    """Pixels on either side of the boundary between ``mask`` and its complement (bool)."""
    import cv2

    m = mask.view(np.uint8)
    k = np.ones((3, 3), np.uint8)
    inner = m & ~cv2.erode(m, k, borderType=cv2.BORDER_REPLICATE) & 1
    outer = cv2.dilate(m, k, borderType=cv2.BORDER_REPLICATE) & ~m & 1
    return (inner | outer).astype(bool)


def _edge_difficulty(
    p: np.ndarray, mask: np.ndarray, base: float, image: np.ndarray | None, fine_structure: bool
) -> np.ndarray:
    """Difficulty in [0, 1] (float32, shape of ``p``) of the nearest contour pixel."""
    import cv2

    r = max(1, round(base))
    # 1. uncertainty: estimated width of the probability ramp across the edge. The local sum of
    #    u = 1 - |2p - 1| over a (2r+1)² window is ≈ (ramp width / 2) × (2r+1) for a straight
    #    edge; a crisp ramp is 1–2 px wide, a ramp as wide as the band gives 1.
    u = 1.0 - np.abs(2.0 * p - 1.0)
    ramp = _box_mean(u, r) * np.float32(2 * (2 * r + 1))
    score = np.clip((ramp - 2.0) / np.float32(2.0 * base), 0.0, 1.0)
    # 2. fine structure: mask parts thinner than the band (opening) and thin gaps (closing).
    if fine_structure:
        m = mask.view(np.uint8)
        ro = max(1, round(base / 2))
        opened = cv2.morphologyEx(m, cv2.MORPH_OPEN, _ellipse(ro), borderType=cv2.BORDER_REPLICATE)
        closed = cv2.morphologyEx(m, cv2.MORPH_CLOSE, _ellipse(ro), borderType=cv2.BORDER_REPLICATE)
        thin = (m ^ opened) | (closed ^ m)
        np.maximum(score, np.clip(_box_mean(thin, r) / np.float32(_THIN_DENSITY), 0, 1), out=score)
    # 3. image edge density (hair, fur).
    if image is not None:
        grey = image.astype(np.float32).mean(axis=2) if image.ndim == 3 else image.astype(np.float32)
        if image.dtype == np.uint8:
            grey *= np.float32(1 / 255)
        gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
        gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)
        edges = (gx * gx + gy * gy) > np.float32(_EDGE_GRADIENT**2)
        lo, hi = _EDGE_DENSITY
        dens = (_box_mean(edges.view(np.uint8), r) - np.float32(lo)) / np.float32(hi - lo)
        np.maximum(score, np.clip(dens, 0, 1), out=score)
    # carry each contour pixel's score to every pixel whose nearest contour pixel it is
    edge = _contour(mask)
    if not edge.any():
        return np.zeros(p.shape, np.float32)
    src = np.full(p.shape, 255, np.uint8)
    src[edge] = 0
    _, labels = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros(int(labels.max()) + 1, np.float32)
    lut[labels[edge]] = score[edge]
    return lut[labels]


def make_trimap(
    prob: np.ndarray,
    *,
    band: float = 0.01,
    image: np.ndarray | None = None,
    threshold: float = 0.5,
    uncertain: tuple[float, float] = (0.05, 0.95),
    crisp: float = 0.5,
    wide: float = 3.0,
    fine_structure: bool = True,
) -> np.ndarray:
    """Adaptive trimap from a probability map or mask.

    Args:
        prob: H×W probability in [0, 1] (float), or a mask (bool, or uint8 0..255).
        band: base half-width of the unknown band as a fraction of the image diagonal.
        image: optional H×W×3 photo (uint8, or float in [0, 1]) of the same size; widens the
            band where the photo has dense edges (hair, fur).
        threshold: probability at and above which a pixel is foreground.
        uncertain: ``(lo, hi)``: pixels with ``lo < prob < hi`` are always unknown.
        crisp: half-width factor on crisp, confident edges (× the base half-width).
        wide: half-width factor on the hardest edges (uncertain or fine structure).
        fine_structure: widen the band around mask parts/gaps thinner than the band.

    Returns:
        uint8 H×W trimap with values 0 (background), 128 (unknown), 255 (foreground) only.
        Where the mask has both sides, the band leaves each side's pixels deeper than half
        its greatest depth known, whatever ``band`` (uncertain pixels are unknown anyway).
    """
    import cv2

    p = _as_probability(prob)
    h, w = p.shape
    if image is not None:
        image = np.asarray(image)
        if image.shape[:2] != (h, w):
            raise ValueError(f"image {image.shape[:2]} and probability {p.shape} differ in size")
    if not 0.0 < crisp <= wide:
        raise ValueError(f"need 0 < crisp <= wide, got crisp={crisp}, wide={wide}")
    if band < 0:
        raise ValueError(f"band must be >= 0, got {band}")
    lo, hi = uncertain
    mask = p >= np.float32(threshold)
    base = band_pixels((h, w), band)
    unknown = (p > np.float32(lo)) & (p < np.float32(hi))
    if band > 0 and mask.any() and not mask.all():
        # difficulty on a working grid of at most ~1 MP
        f = max(1.0, math.sqrt(h * w / _WORK_PIXELS))
        if f > 1.0:
            ws, hs = max(1, round(w / f)), max(1, round(h / f))
            pw = cv2.resize(p, (ws, hs), interpolation=cv2.INTER_AREA)
            iw = None if image is None else cv2.resize(image, (ws, hs), interpolation=cv2.INTER_AREA)
        else:
            pw, iw = p, image
        diff = _edge_difficulty(pw, pw >= np.float32(threshold), base / f, iw, fine_structure)
        if f > 1.0:
            diff = cv2.resize(diff, (w, h), interpolation=cv2.INTER_LINEAR)
        half = diff
        half *= np.float32(base * (wide - crisp))
        half += np.float32(base * crisp)
        # distance to the nearest contour pixel (contour pixels on both sides are at 0)
        edge = _contour(mask)
        src = np.full((h, w), 255, np.uint8)
        src[edge] = 0
        dist = cv2.distanceTransform(src, cv2.DIST_L2, 5)
        del src
        # The band must not swallow a side: wide bands on small subjects (or on a thin strip of
        # background) made every pixel unknown, and the solver then returned a solid matte.
        # Each side keeps the pixels deeper than half its greatest depth from the edge.
        cap = np.where(mask, np.float32(0.5 * dist[mask].max()), np.float32(0.5 * dist[~mask].max()))
        np.minimum(half, cap, out=half)
        del cap
        unknown |= dist <= half
    trimap = np.where(mask, np.uint8(FOREGROUND), np.uint8(BACKGROUND))
    trimap[unknown] = UNKNOWN
    return trimap


# --------------------------------------------------------------------------------------------
# User trimaps


def _value_list(values: np.ndarray, counts: np.ndarray, limit: int = 8) -> str:
    order = np.argsort(-counts)[:limit]
    items = ", ".join(f"{int(values[i])} ({int(counts[i])} px)" for i in sorted(order))
    more = len(values) - len(order)
    return items + (f" and {more} more" if more > 0 else "")


def validate_trimap(
    trimap: np.ndarray,
    *,
    shape: tuple[int, int] | None = None,
    name: str = "trimap",
    tolerance: int = 2,
) -> np.ndarray:
    """Check a user trimap and return it as uint8 H×W with values 0 / 128 / 255 only.

    Accepted: H×W, or H×W×3 / H×W×4 with equal colour channels (a fourth, alpha, channel is
    ignored); integer values within ``tolerance`` of 0, 128 or 255 (so 127, the ``255 // 2`` some
    tools write, is read as unknown) are snapped to them; bool masks and floats in [0, 1]
    (0, 0.5, 1, same tolerance in 0..255 units) too. Anything else is an error: JPEG-compressed
    and anti-aliased trimaps carry many in-between values and must be re-exported, because
    silently mapping them would turn edge pixels into "definite" ones. A trimap with an unknown
    region but no definite foreground or background is an error too (see :func:`unsolvable`).

    Args:
        trimap: the array to check (not modified).
        shape: the image's ``(H, W)``; a different trimap size is an error.
        name: used in messages (e.g. the file name).
        tolerance: the largest accepted distance (in 0..255 units) from 0, 128 or 255.

    Raises:
        TrimapError: with the values found and the fix.
    """
    t = np.asarray(trimap)
    if t.ndim == 3 and t.shape[2] in (3, 4):
        c = t[..., :3]
        if not ((c[..., 0] == c[..., 1]).all() and (c[..., 1] == c[..., 2]).all()):
            raise TrimapError(
                f"{name}: colour trimap (its R, G, B channels differ); a trimap is greyscale with "
                "values 0 (background), 128 (unknown), 255 (foreground): save it as greyscale"
            )
        t = c[..., 0]
    if t.ndim != 2:
        raise TrimapError(f"{name}: expected an H×W (greyscale) trimap, got shape {t.shape}")
    if shape is not None and t.shape != tuple(shape[:2]):
        raise TrimapError(
            f"{name}: trimap is {t.shape[1]}×{t.shape[0]} but the image is "
            f"{shape[1]}×{shape[0]}; they must be the same size (resize the trimap with "
            "nearest-neighbour interpolation, or redraw it on the image)"
        )
    if t.dtype == np.bool_:
        return np.where(t, np.uint8(FOREGROUND), np.uint8(BACKGROUND))
    if np.issubdtype(t.dtype, np.floating):
        if not np.isfinite(t).all() or t.min() < 0 or t.max() > 1:
            raise TrimapError(f"{name}: float trimaps must lie in [0, 1] (0, 0.5, 1)")
        t = np.round(t * 255.0)
    elif not np.issubdtype(t.dtype, np.integer):
        raise TrimapError(f"{name}: unsupported trimap dtype {t.dtype}")
    t = t.astype(np.int32)
    out = np.full(t.shape, 255, np.uint8)
    valid = np.zeros(t.shape, bool)
    for level in (BACKGROUND, UNKNOWN, FOREGROUND):
        near = np.abs(t - level) <= tolerance
        out[near] = level
        valid |= near
    if not valid.all():
        values, counts = np.unique(t[~valid], return_counts=True)
        raise TrimapError(
            f"{name}: {int(np.count_nonzero(~valid))} pixels have values that are not a trimap "
            f"label: {_value_list(values, counts)}; values must be 0, 128, 255 "
            "(background, unknown, foreground). Re-export the trimap as PNG without "
            "anti-aliasing (JPEG compression changes values)"
        )
    missing = unsolvable(out)
    if missing:
        raise TrimapError(f"{name}: {missing}")
    return out


def unsolvable(trimap: np.ndarray) -> str | None:
    """Why alpha in the unknown region of a 0/128/255 trimap cannot be solved, or ``None``.

    Matting explains each unknown pixel as a mix of nearby definite foreground and background
    colours: with no unknown pixels the trimap is the answer; without either kind of known
    pixel every solver returns a solid matte (all 0 or all 1), which is no result.
    """
    if not (trimap == UNKNOWN).any():
        return None
    fg, bg = (trimap == FOREGROUND).any(), (trimap == BACKGROUND).any()
    if not fg and not bg:
        return (
            "every pixel is unknown (128): mark definite foreground (255) and background "
            "(0), the colours the solver explains the unknown pixels with"
        )
    if not bg:
        return (
            "the trimap has an unknown region (128) but no definite background (0): alpha "
            "there could only come out 1; mark some of the background 0"
        )
    if not fg:
        return (
            "the trimap has an unknown region (128) but no definite foreground (255): alpha "
            "there could only come out 0; mark some of the subject 255"
        )
    return None


def one_sided(trimap: np.ndarray) -> np.ndarray:
    """Unknown pixels that no solver can decide: bool H×W, True on the connected components
    (8-connected) of a 0/128/255 trimap's unknown region that touch no definite background or
    no definite foreground pixel.

    :func:`unsolvable` for each part of the band: a matting solver explains an unknown pixel
    with the known colours around it, so a part enclosed by foreground and the image border
    (a gap between an arm and the body at the frame's edge) can only come out 1, and one
    enclosed by background only 0.
    """
    import cv2

    unknown = trimap == UNKNOWN
    if not unknown.any():
        return unknown
    n, labels = cv2.connectedComponents(unknown.view(np.uint8), connectivity=8)
    kernel = np.ones((3, 3), np.uint8)
    touched = np.zeros((2, n), bool)
    for i, value in enumerate((BACKGROUND, FOREGROUND)):
        near = cv2.dilate((trimap == value).view(np.uint8), kernel).view(bool)
        touched[i, labels[near & unknown]] = True
    bad = ~(touched[0] & touched[1])
    bad[0] = False  # label 0: the known pixels
    return bad[labels]


def load_trimap(path: PathLike, *, shape: tuple[int, int] | None = None, tolerance: int = 2) -> np.ndarray:
    """Read a trimap file and :func:`validate_trimap` it (errors name the file).

    Returns:
        uint8 H×W with values 0 / 128 / 255.
    """
    from ..io import ImageError, load_image

    label = os.fspath(path)
    try:
        rgb = load_image(path)
    except ImageError as exc:
        raise TrimapError(str(exc)) from None
    return validate_trimap(rgb, shape=shape, name=label, tolerance=tolerance)
