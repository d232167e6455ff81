"""Run a matting solver only inside a trimap's unknown band, with bounded memory.

Classical matting solvers (closed-form, KNN, large-kernel) build a linear system over every pixel
of the image they are given; known pixels far from the unknown region only cost memory and time.
:func:`solve_in_band` hands a solver crops instead:

1. the unknown region, dilated by ``margin`` known pixels, is split into connected components;
   each component's bounding box is one crop (components closer than ``2·margin`` merge);
2. a crop larger than ``max_tile_pixels`` is cut into a grid of tiles; each tile is solved with
   ``overlap`` extra pixels of context on every side and the overlapping results are blended with
   linear ramps, so no seam shows at tile borders;
3. when the band holds more than ``max_unknown`` pixels (large photos), the problem is solved on
   an area-reduced grid and brought back with guided upsampling (:func:`guided_upsample`: a fast
   guided filter of the upsampled alpha with the full-resolution photo as guide).

Known pixels (trimap 0 / 255) come back as exactly 0.0 / 1.0, whatever the solver does. A tile
whose window holds only one known label is grown (within its component's box) until it holds
both; a component that touches only one label is that constant (the matting energy's minimiser).

For a solver whose matting Laplacian is local (closed-form with window radius ``r``: every row of
the system involves only pixels within ``2r`` of an unknown pixel), a margin of ``2r + 1`` known
pixels makes the crop's system identical to the full image's, so the band-restricted answer
equals the full-image one up to the iterative solver's tolerance (measured: |Δα| ≤ 1.4e-5 on the
alphamatting.com dev images).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Solver",
    "Tile",
    "as_image",
    "check_inputs",
    "band_tiles",
    "solve_in_band",
    "reduce_trimap",
    "guided_upsample",
]

#: ``solver(image, trimap, window=(y0, y1, x0, x1), grid=(H, W)) -> alpha``: ``image`` float64
#: h×w×3 in [0, 1] and ``trimap`` float64 h×w with 0 / 0.5 / 1 (pymatting's conventions) are the
#: crop ``window`` of a grid of size ``grid`` (the image, or its reduced copy); returns float h×w
#: alpha (its known pixels are overwritten).
Solver = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Tile:
    """One solve window ``[y0:y1, x0:x1]`` whose results are kept on ``core`` (same order) for
    the unknown pixels of component ``label``."""

    y0: int
    y1: int
    x0: int
    x1: int
    core: tuple[int, int, int, int]
    label: int
    box: tuple[int, int, int, int]  # the component's bounding box (y0, y1, x0, x1)


def check_inputs(image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``image`` (H×W×3 uint8 or float in [0, 1]) and ``trimap`` (uint8 0/128/255)."""
    image = np.asarray(image)
    trimap = np.asarray(trimap)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3, got shape {image.shape}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image must be uint8 or float in [0, 1], got {image.dtype}")
    if trimap.shape != image.shape[:2]:
        raise ValueError(f"trimap {trimap.shape} does not match the image {image.shape[:2]}")
    if trimap.dtype != np.uint8:
        raise ValueError(f"trimap must be uint8 with values 0/128/255, got {trimap.dtype}")
    return image, trimap


def as_image(image: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """``image`` as ``dtype`` in [0, 1] (a new array for uint8, C-contiguous)."""
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image, dtype=dtype) * dtype(1 / 255)
    return np.ascontiguousarray(np.clip(image, 0.0, 1.0), dtype=dtype)


def _known_alpha(trimap: np.ndarray) -> np.ndarray:
    """float32 alpha with known pixels 0/1 and unknown pixels 0."""
    return (trimap == 255).astype(np.float32)


def band_tiles(
    trimap: np.ndarray, *, margin: int, max_tile_pixels: int, overlap: int, merge: bool = False
) -> tuple[list[Tile], np.ndarray]:
    """Solve windows covering the unknown region (see the module docstring).

    With ``merge`` all components form one crop (their common bounding box): for non-local
    solvers, whose unknown pixels gain from every known sample nearby.

    Returns:
        ``(tiles, labels)``: the tiles, and int32 H×W component labels of the dilated unknown
        region (0 outside it).
    """
    import cv2

    h, w = trimap.shape
    unknown = (trimap == 128).view(np.uint8)
    if margin > 0:
        k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * margin + 1, 2 * margin + 1))
        grown = cv2.dilate(unknown, k)
    else:
        grown = unknown
    if merge:
        labels = grown.astype(np.int32)
        ys, xs = np.nonzero(grown)
        n = 2 if ys.size else 1
        stats = np.zeros((n, 4), np.int64)
        if ys.size:
            stats[1] = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
        del ys, xs
    else:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    side = max(16, int(math.isqrt(max_tile_pixels)))
    core_side = max(8, side - 2 * overlap)
    tiles: list[Tile] = []
    for lab in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[lab, :4])
        box = (y, y + bh, x, x + bw)
        if bw * bh <= max_tile_pixels:
            tiles.append(Tile(y, y + bh, x, x + bw, box, lab, box))
            continue
        ny, nx = math.ceil(bh / core_side), math.ceil(bw / core_side)
        ys = np.linspace(y, y + bh, ny + 1).round().astype(int)
        xs = np.linspace(x, x + bw, nx + 1).round().astype(int)
        for i in range(ny):
            for j in range(nx):
                cy0, cy1, cx0, cx1 = ys[i], ys[i + 1], xs[j], xs[j + 1]
                sel = (labels[cy0:cy1, cx0:cx1] == lab) & (trimap[cy0:cy1, cx0:cx1] == 128)
                if not sel.any():
                    continue
                tiles.append(
                    Tile(
                        max(y, cy0 - overlap),
                        min(y + bh, cy1 + overlap),
                        max(x, cx0 - overlap),
                        min(x + bw, cx1 + overlap),
                        (int(cy0), int(cy1), int(cx0), int(cx1)),
                        lab,
                        box,
                    )
                )
    return tiles, labels


def _ramp(n: int, c0: int, c1: int, overlap: int) -> np.ndarray:
    """1 on [c0, c1), falling linearly to ~0 ``overlap`` pixels outside (length ``n``)."""
    i = np.arange(n, dtype=np.float32)
    d = np.maximum(np.maximum(c0 - i, i - (c1 - 1)), 0)
    return np.clip(1.0 - d / np.float32(overlap + 1), 0.0, 1.0)


def _with_both_labels(trimap: np.ndarray, t: Tile) -> Tile:
    """``t`` with its window grown (doubling, within the component's box) until it holds both
    known labels, or is the whole box."""
    y0, y1, x0, x1 = t.y0, t.y1, t.x0, t.x1
    by0, by1, bx0, bx1 = t.box
    grow = max(8, (y1 - y0 + x1 - x0) // 4)
    while True:
        tri = trimap[y0:y1, x0:x1]
        if ((tri == 255).any() and (tri == 0).any()) or (y0, y1, x0, x1) == (by0, by1, bx0, bx1):
            break
        y0, y1 = max(by0, y0 - grow), min(by1, y1 + grow)
        x0, x1 = max(bx0, x0 - grow), min(bx1, x1 + grow)
        grow *= 2
    if (y0, y1, x0, x1) == (t.y0, t.y1, t.x0, t.x1):
        return t
    return Tile(y0, y1, x0, x1, t.core, t.label, t.box)


def _solve_tiles(
    image: np.ndarray,
    trimap: np.ndarray,
    solver: Solver,
    *,
    margin: int,
    max_tile_pixels: int,
    overlap: int,
    merge: bool = False,
) -> np.ndarray:
    alpha = _known_alpha(trimap)
    tiles, labels = band_tiles(
        trimap, margin=margin, max_tile_pixels=max_tile_pixels, overlap=overlap, merge=merge
    )
    by_box: dict[tuple[int, int, int, int], list[Tile]] = {}
    for t in tiles:
        by_box.setdefault(t.box + (t.label,), []).append(t)  # type: ignore[arg-type]
    for key, group in by_box.items():
        by0, by1, bx0, bx1, lab = key
        single = len(group) == 1 and group[0].core == group[0].box
        if not single:
            acc = np.zeros((by1 - by0, bx1 - bx0), np.float32)
            wsum = np.zeros_like(acc)
        for t in group:
            t = _with_both_labels(trimap, t)
            tri = trimap[t.y0 : t.y1, t.x0 : t.x1]
            has_fg, has_bg = bool((tri == 255).any()), bool((tri == 0).any())
            if has_fg and has_bg:
                sub = solver(
                    as_image(image[t.y0 : t.y1, t.x0 : t.x1]),
                    tri.astype(np.float64) / 255.0,
                    window=(t.y0, t.y1, t.x0, t.x1),
                    grid=trimap.shape,
                )
                sub = np.asarray(sub, np.float32).reshape(tri.shape)
            else:  # one label only: the constant is the matting energy's minimiser
                sub = np.full(tri.shape, 1.0 if has_fg else 0.0, np.float32)
            sel = (labels[t.y0 : t.y1, t.x0 : t.x1] == lab) & (tri == 128)
            if single:
                alpha[t.y0 : t.y1, t.x0 : t.x1][sel] = sub[sel]
                continue
            cy0, cy1, cx0, cx1 = t.core
            wy = _ramp(t.y1 - t.y0, cy0 - t.y0, cy1 - t.y0, overlap)
            wx = _ramp(t.x1 - t.x0, cx0 - t.x0, cx1 - t.x0, overlap)
            wt = (wy[:, None] * wx[None, :]) * sel
            a = acc[t.y0 - by0 : t.y1 - by0, t.x0 - bx0 : t.x1 - bx0]
            a += wt * sub
            wsum[t.y0 - by0 : t.y1 - by0, t.x0 - bx0 : t.x1 - bx0] += wt
        if not single:
            region = alpha[by0:by1, bx0:bx1]
            sel = wsum > 0
            region[sel] = acc[sel] / wsum[sel]
    np.clip(alpha, 0.0, 1.0, out=alpha)
    # known pixels exactly 0 / 1
    alpha[trimap == 255] = 1.0
    alpha[trimap == 0] = 0.0
    return alpha


def reduce_trimap(trimap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-reduce a trimap to ``size`` = (width, height): a reduced pixel is known only when
    every full-resolution pixel it covers is known with the same label (the band never shrinks)."""
    import cv2

    fg = cv2.resize((trimap == 255).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    bg = cv2.resize((trimap == 0).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    out = np.full(fg.shape, 128, np.uint8)
    out[fg >= 0.999] = 255
    out[bg >= 0.999] = 0
    return out


def guided_upsample(
    image: np.ndarray,
    trimap: np.ndarray,
    alpha_low: np.ndarray,
    *,
    radius: int | None = None,
    eps: float = 1e-5,
    max_tile_pixels: int = 2_000_000,
) -> np.ndarray:
    """Bring a reduced-grid alpha back to full resolution inside the unknown band.

    The low-resolution alpha is upsampled bilinearly, then filtered with a fast guided filter
    (coefficients fitted on a grid reduced by the scale factor, applied to the full-resolution
    photo), tile by tile over the band so memory stays bounded.

    Args:
        image: H×W×3 photo, uint8 or float in [0, 1].
        trimap: uint8 H×W, 0 / 128 / 255.
        alpha_low: float h×w alpha on the reduced grid.
        radius: guided-filter radius in full-resolution pixels (default ``2 × scale``).
        eps: guided-filter regularisation on 0..1 intensities.
        max_tile_pixels: largest window filtered at once.

    Returns:
        float32 H×W alpha; known pixels exactly 0 / 1.
    """
    import cv2

    from ..filters import guided_filter

    h, w = trimap.shape
    hl, wl = alpha_low.shape
    scale = max(h / hl, w / wl)
    if radius is None:
        radius = max(2, round(2 * scale))
    sub = max(1, min(int(scale), radius))
    alpha = _known_alpha(trimap)
    a_up = cv2.resize(np.asarray(alpha_low, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    margin = 2 * radius
    tiles, labels = band_tiles(trimap, margin=margin, max_tile_pixels=max_tile_pixels, overlap=margin)
    for t in tiles:
        cy0, cy1, cx0, cx1 = t.core
        guide = image[t.y0 : t.y1, t.x0 : t.x1]
        q = guided_filter(guide, a_up[t.y0 : t.y1, t.x0 : t.x1], radius=radius, eps=eps, subsample=sub)
        oy, ox = cy0 - t.y0, cx0 - t.x0
        qc = q[oy : oy + cy1 - cy0, ox : ox + cx1 - cx0]
        sel = (trimap[cy0:cy1, cx0:cx1] == 128) & (labels[cy0:cy1, cx0:cx1] == t.label)
        alpha[cy0:cy1, cx0:cx1][sel] = qc[sel]
    del a_up, labels
    np.clip(alpha, 0.0, 1.0, out=alpha)
    alpha[trimap == 255] = 1.0
    alpha[trimap == 0] = 0.0
    return alpha


def solve_in_band(
    image: np.ndarray,
    trimap: np.ndarray,
    solver: Solver,
    *,
    margin: int,
    max_tile_pixels: int = 1024 * 1024,
    overlap: int = 32,
    max_unknown: int | None = None,
    upsample_eps: float = 1e-5,
    merge: bool = False,
) -> np.ndarray:
    """Run ``solver`` on crops around the unknown band and paste the results back.

    Args:
        image: H×W×3 photo, uint8 or float in [0, 1] (not modified).
        trimap: uint8 H×W with 0 / 128 / 255 (not modified).
        solver: ``solver(image_f64, trimap_f64, window=..., grid=...) -> alpha`` on one crop
            (see :data:`Solver`).
        margin: known pixels kept around the unknown region in each crop (on the grid that is
            solved: the reduced one when reducing).
        max_tile_pixels: crops larger than this are tiled.
        overlap: context pixels on each side of a tile (blended with linear ramps).
        max_unknown: when the band has more unknown pixels, solve on a grid reduced by
            ``sqrt(unknown / max_unknown)`` and guided-upsample (``None``: never reduce).
        upsample_eps: guided-filter regularisation of the upsampling.
        merge: one crop for all components (see :func:`band_tiles`).

    Returns:
        float32 H×W alpha in [0, 1]; known pixels exactly 0.0 / 1.0.
    """
    import cv2

    image, trimap = check_inputs(image, trimap)
    n_unknown = int(np.count_nonzero(trimap == 128))
    if n_unknown == 0:
        return _known_alpha(trimap)
    h, w = trimap.shape
    if max_unknown is not None and n_unknown > max_unknown:
        s = math.sqrt(n_unknown / max_unknown)
        size = (max(1, round(w / s)), max(1, round(h / s)))
        low_img = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        low_tri = reduce_trimap(trimap, size)
        low = _solve_tiles(
            low_img,
            low_tri,
            solver,
            margin=margin,
            max_tile_pixels=max_tile_pixels,
            overlap=overlap,
            merge=merge,
        )
        return guided_upsample(image, trimap, low, eps=upsample_eps)
    return _solve_tiles(
        image,
        trimap,
        solver,
        margin=margin,
        max_tile_pixels=max_tile_pixels,
        overlap=overlap,
        merge=merge,
    )
