"""User hints: a box, keep / drop clicks and keep / drop strokes that correct the model.

A :class:`Hints` value is checked in one place (:meth:`Hints.check`, against the image size)
and acts in the pipeline between segmentation and refinement:

* **box** ``(x0, y0, x1, y1)``: pixel columns ``x0 … x1 − 1`` and rows ``y0 … y1 − 1`` (the
  half-open convention of array slices and ``PIL.Image.crop``). The model(s) run on the box
  grown by :data:`BOX_MARGIN` (context), at their full input resolution; outside the box the
  probability is 0 (background). See :func:`box_probability`.
* **keep / drop** clicks ``(x, y)`` (a disc of :data:`CLICK_RADIUS` × the diagonal) and
  **strokes** (a hint image: 255 keep, 0 drop, 128 or a transparent pixel no hint) are *seeds*.
  :func:`apply_hints` grows each seed's region of evidence with a geodesic distance whose local
  cost rises at colour edges of the photo and at edges of the model's own map (so a click in a
  part the model missed fills that part, bounded by the photo's and the model's edges, and a
  click where the model is right stays inside the region the model already agrees on). With
  ``D`` the geodesic distance to the nearest seed (in pixels of a working grid of at most
  :data:`WORK_PIXELS`) and ``σ = SIGMA × diagonal``, the seed's label pulls the probability by
  ``w = exp(−(D/σ)²)``: ``p' = p + w (label − p)``; ``w`` below :data:`CUTOFF` is 0, so outside
  the region of influence (:attr:`HintedMap.influence`) the map is exactly the model's.

The hinted map then goes through the same interior → refine → clean → trimap → matting stages,
so edges stay soft and a stroke near an edge moves the edge (and the trimap's unknown band that
follows it) rather than stamping a hard alpha step. Afterwards :func:`enforce` sets alpha to
the seed's label on seed pixels farther than the edge band from the hinted 0.5 contour, and
:func:`protect_kept` brings back kept regions that island removal dropped.

The constants were chosen on the ``tune`` halves of ecssd-dev and alphamatting-dev with
``benchmarks/interactive.py --split tune`` (see the README for the figures on ``check``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from ..errors import ImageError, UsageError

__all__ = [
    "Hints",
    "HintError",
    "HintedMap",
    "parse_box",
    "parse_point",
    "validate_hint_image",
    "load_hint_image",
    "render_hint_image",
    "box_crop",
    "box_probability",
    "apply_hints",
    "enforce",
    "protect_kept",
    "KEEP",
    "DROP",
    "NO_HINT",
]

KEEP, DROP, NO_HINT = 255, 0, 128

#: Context around a box: the model sees the box grown by this fraction of its longer side on
#: each side (at least 8 px), clipped to the image. Chosen on the tune halves with the
#: ground-truth box (first 30 ecssd-dev tune photos, mean SAD / IoU; no box 4.44 / 0.898):
#: margin 0.1 4.97 / 0.878 (a tight crop misleads the salient model), 0.3 4.23 / 0.897; the
#: full-photo map cleared outside the box scored 4.15 / 0.901. These photos (≤ 400 px) are
#: close to the model's 320 px input, so the crop's gain in resolution on large photos is not
#: measured by this set.
BOX_MARGIN = 0.3
#: Radius of a click's seed disc, fraction of the image diagonal (at least 2 px).
CLICK_RADIUS = 0.006
#: Scale of a seed's region of influence, fraction of the diagonal. On 30 ecssd-dev tune photos
#: (NoC@85 / NoC@90 / SAD after 1 and 5 clicks): 0.08 2.03 / 2.43 / 4.24 / 3.82, 0.15
#: 1.40 / 1.97 / 4.16 / 3.49, 0.3 1.00 / 1.53 / 4.96 / 3.68 (fewer clicks, but the first one
#: costs more than it fixes); 0.15 is the compromise.
SIGMA = 0.15
#: Extra geodesic cost per unit of colour gradient (0..1 intensities per pixel).
COLOUR_COST = 60.0
#: Extra geodesic cost per unit of the model's probability gradient (per pixel).
PROB_COST = 60.0
#: With ``local`` > 0 each seed's scale is also at most ``local`` × its depth in the region it
#: lies in (the distance from the seed to the model's 0.5 contour, at least ``MIN_SIGMA`` ×
#: the diagonal): a click next to the edge corrects the edge, not the whole region.
LOCAL = 0.0
MIN_SIGMA = 0.01
#: Influence below this is 0: the map is left exactly as the model made it.
CUTOFF = 0.02
#: The geodesic distance is computed on a grid of at most this many pixels.
WORK_PIXELS = 250_000

PathLike = Union[str, os.PathLike]


class HintError(UsageError):
    """A hint (box, click or hint image) is unusable; the message says which and the fix."""


class HintImageError(HintError, ImageError):
    """A hint image is unusable (wrong size, values, unreadable); the message names the file."""


def _int(v: object, what: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, float, np.floating)):
        raise HintError(f"{what} must be a whole number, got {v!r}")
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v) or v != int(v):
            raise HintError(f"{what} must be a whole number of pixels, got {v!r}")
    return int(v)


def _point(p: object, what: str) -> tuple[int, int]:
    if isinstance(p, str):
        return parse_point(p, option=what)
    try:
        x, y = p  # type: ignore[misc]
    except (TypeError, ValueError):
        raise HintError(f"{what} must be an (x, y) pair, got {p!r}") from None
    return _int(x, f"{what} x"), _int(y, f"{what} y")


@dataclass(frozen=True, eq=False)
class Hints:
    """What the user pointed at. Coordinates are pixels of the full image, ``x`` right, ``y``
    down.

    Attributes:
        box: ``(x0, y0, x1, y1)``, half-open (columns ``x0 … x1 − 1``), or ``None``.
        keep: clicks on the subject (``(x, y)`` pairs).
        drop: clicks on background.
        strokes: hint image, uint8 H×W with 255 keep / 0 drop / 128 no hint (see
            :func:`validate_hint_image`), or ``None``.
    """

    box: tuple[int, int, int, int] | None = None
    keep: tuple[tuple[int, int], ...] = ()
    drop: tuple[tuple[int, int], ...] = ()
    strokes: np.ndarray | None = None

    def __post_init__(self) -> None:
        box = self.box
        if box is not None:
            if isinstance(box, str):
                box = parse_box(box)
            try:
                vals = tuple(box)  # type: ignore[arg-type]
            except TypeError:
                raise HintError(f"box must be (x0, y0, x1, y1), got {self.box!r}") from None
            if len(vals) != 4:
                raise HintError(f"box must be 4 numbers (x0, y0, x1, y1), got {self.box!r}")
            x0, y0, x1, y1 = (_int(v, "box") for v in vals)
            if x1 <= x0 or y1 <= y0:
                raise HintError(
                    f"box {x0},{y0},{x1},{y1} is empty: it needs x0 < x1 and y0 < y1 (x1, y1 "
                    "are the right and bottom edges, one past the last pixel)"
                )
            object.__setattr__(self, "box", (x0, y0, x1, y1))
        for name in ("keep", "drop"):
            pts = getattr(self, name)
            if pts is None:
                pts = ()
            if isinstance(pts, str) or (len(pts) == 2 and all(isinstance(v, (int, np.integer)) for v in pts)):
                pts = [pts]  # one click given bare
            object.__setattr__(self, name, tuple(_point(p, f"{name} click") for p in pts))
        if self.strokes is not None:
            object.__setattr__(self, "strokes", validate_hint_image(self.strokes))

    @property
    def empty(self) -> bool:
        """True when there is nothing to apply."""
        no_strokes = self.strokes is None or not (self.strokes != NO_HINT).any()
        return self.box is None and not self.keep and not self.drop and no_strokes

    @property
    def has_seeds(self) -> bool:
        """True when there are clicks or stroke pixels."""
        return bool(self.keep or self.drop) or (
            self.strokes is not None and bool((self.strokes != NO_HINT).any())
        )

    def check(self, shape: Sequence[int], *, name: str = "hints") -> None:
        """Raise :class:`HintError` unless every hint lies on an image of ``shape`` (H, W)."""
        h, w = int(shape[0]), int(shape[1])
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
                raise HintError(
                    f"box {x0},{y0},{x1},{y1} is outside the {w}×{h} image: it must lie within "
                    f"0,0,{w},{h} (x0, y0 ≥ 0, x1 ≤ {w}, y1 ≤ {h})"
                )
        for label, pts in (("keep", self.keep), ("drop", self.drop)):
            for x, y in pts:
                if not (0 <= x < w and 0 <= y < h):
                    raise HintError(
                        f"{label} click {x},{y} is outside the {w}×{h} image (x in 0..{w - 1}, "
                        f"y in 0..{h - 1})"
                    )
        if self.strokes is not None and self.strokes.shape != (h, w):
            sh, sw = self.strokes.shape
            raise HintImageError(
                f"{name}: the hint image is {sw}×{sh} but the photo is {w}×{h}; draw it on the "
                "photo itself (same size)"
            )
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            for x, y in self.keep:
                if not (x0 <= x < x1 and y0 <= y < y1):
                    raise HintError(
                        f"keep click {x},{y} is outside the box {x0},{y0},{x1},{y1}: outside "
                        "the box is background; enlarge the box or move the click"
                    )

    def seeds(self, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(keep, drop) seed masks, bool H×W: click discs and stroke pixels.

        Where a keep and a drop seed overlap the later kind wins in this order: keep clicks,
        drop clicks, then strokes (a stroke is drawn over clicks)."""
        import cv2

        h, w = int(shape[0]), int(shape[1])
        label = np.full((h, w), NO_HINT, np.uint8)
        r = max(2, round(CLICK_RADIUS * math.hypot(h, w)))
        for value, pts in ((KEEP, self.keep), (DROP, self.drop)):
            for x, y in pts:
                cv2.circle(label, (int(x), int(y)), r, int(value), thickness=-1)
        if self.strokes is not None:
            drawn = self.strokes != NO_HINT
            label[drawn] = self.strokes[drawn]
        return label == KEEP, label == DROP


# --------------------------------------------------------------------------- parsing


def _numbers(text: str, n: int, option: str, form: str) -> list[int]:
    parts = [p.strip() for p in str(text).replace(" ", ",").split(",") if p.strip()]
    if len(parts) != n:
        raise HintError(f"{option} {text!r}: expected {form} ({n} whole numbers, comma-separated)")
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise HintError(f"{option} {text!r}: expected {form} (whole numbers of pixels)") from None


def parse_box(text: str, *, option: str = "--box") -> tuple[int, int, int, int]:
    """``"x0,y0,x1,y1"`` → a box (checked for emptiness by :class:`Hints`)."""
    x0, y0, x1, y1 = _numbers(text, 4, option, "x0,y0,x1,y1")
    return x0, y0, x1, y1


def parse_point(text: str, *, option: str = "--keep") -> tuple[int, int]:
    """``"x,y"`` → a click."""
    x, y = _numbers(text, 2, option, "x,y")
    return x, y


def validate_hint_image(
    hints: np.ndarray,
    *,
    shape: Sequence[int] | None = None,
    name: str = "hint image",
    tolerance: int = 2,
) -> np.ndarray:
    """Check a hint image and return it as uint8 H×W with 255 keep / 0 drop / 128 no hint.

    Accepted: H×W grey, H×W×3 with equal channels, H×W×4 / grey+alpha where a transparent
    pixel (alpha 0) is "no hint" and opaque pixels must be grey 0 or 255 (or 128); values within
    ``tolerance`` of 0, 128, 255 are snapped; bool arrays (True keep, False no hint). Anything
    else is a :class:`HintError` naming ``name``, what was found and the fix.
    """
    a = np.asarray(hints)
    transparent = None
    if a.ndim == 3 and a.shape[2] in (2, 4):
        transparent = a[..., -1] == 0
        if a.shape[2] == 4:
            a = a[..., :3]
        else:
            a = a[..., 0]
    if a.ndim == 3 and a.shape[2] == 3:
        c = a
        if (
            not ((c[..., 0] == c[..., 1]) | (transparent if transparent is not None else False)).all()
            or not ((c[..., 1] == c[..., 2]) | (transparent if transparent is not None else False)).all()
        ):
            raise HintImageError(
                f"{name}: colour hint image (its R, G, B channels differ); draw keep strokes "
                "white (255), drop strokes black (0), the rest grey 128 or transparent"
            )
        a = c[..., 0]
    if a.ndim != 2:
        raise HintImageError(f"{name}: expected an H×W hint image, got shape {a.shape}")
    if shape is not None and a.shape != tuple(shape[:2]):
        raise HintImageError(
            f"{name}: the hint image is {a.shape[1]}×{a.shape[0]} but the photo is "
            f"{shape[1]}×{shape[0]}; draw it on the photo itself (same size)"
        )
    if a.dtype == np.bool_:
        out = np.where(a, np.uint8(KEEP), np.uint8(NO_HINT))
    else:
        if not np.issubdtype(a.dtype, np.integer):
            raise HintImageError(f"{name}: expected 8-bit values 0 / 128 / 255, got dtype {a.dtype}")
        t = a.astype(np.int32)
        out = np.full(t.shape, NO_HINT, np.uint8)
        valid = np.zeros(t.shape, bool)
        for level in (DROP, NO_HINT, KEEP):
            near = np.abs(t - level) <= tolerance
            out[near] = level
            valid |= near
        if transparent is not None:
            valid |= transparent
        if not valid.all():
            values, counts = np.unique(t[~valid], return_counts=True)
            order = np.argsort(-counts)[:6]
            listed = ", ".join(f"{int(values[i])} ({int(counts[i])} px)" for i in sorted(order))
            raise HintImageError(
                f"{name}: {int(np.count_nonzero(~valid))} pixels have values other than 0 "
                f"(drop), 128 (no hint) and 255 (keep): {listed}; paint with those three values "
                "only (no anti-aliasing), save as PNG (JPEG changes values), or use a "
                "transparent background for 'no hint'"
            )
    if transparent is not None:
        out[transparent] = NO_HINT
    return out


def load_hint_image(path: PathLike, *, shape: Sequence[int] | None = None) -> np.ndarray:
    """Read a hint image file (PNG, keeping its alpha channel) and validate it."""
    import io as _io
    import warnings

    from PIL import Image

    label = os.fspath(path)
    p = os.fspath(path)
    if not os.path.exists(p):
        raise HintImageError(f"{label}: no such file (the hint image for --hints)")
    if os.path.isdir(p):
        raise HintImageError(f"{label}: is a folder, not a hint image")
    try:
        with open(p, "rb") as f:
            data = f.read()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(_io.BytesIO(data))
            im.load()
    except Exception as exc:  # noqa: BLE001 - any decoder error: one message naming the file
        raise HintImageError(f"{label}: cannot read the hint image ({exc})") from None
    return decode_hint_image(im, shape=shape, name=label)


def decode_hint_image(im, *, shape: Sequence[int] | None = None, name: str = "hint image"):
    """A PIL image (any mode) as a validated hint image."""
    mode = im.mode
    if mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):
        arr = np.asarray(im.convert("RGBA"))
    elif mode in ("L", "RGB"):
        arr = np.asarray(im)
    elif mode == "1":
        arr = np.asarray(im.convert("L"))
    else:
        raise HintImageError(
            f"{name}: unsupported pixel mode {mode!r} for a hint image; save it as an 8-bit "
            "greyscale or RGBA PNG"
        )
    return validate_hint_image(arr, shape=shape, name=name)


def render_hint_image(hints: Hints, shape: Sequence[int]) -> np.ndarray:
    """The clicks and strokes of ``hints`` as one hint image (uint8 H×W, 0 / 128 / 255), e.g. to
    download from the web app and replay with ``--hints`` (a box is not part of it)."""
    keep, drop = hints.seeds(shape)
    out = np.full(tuple(int(s) for s in shape[:2]), NO_HINT, np.uint8)
    out[keep] = KEEP
    out[drop] = DROP
    return out


# --------------------------------------------------------------------------- box


def box_crop(shape: Sequence[int], box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The region the model sees for ``box``: the box grown by :data:`BOX_MARGIN`, clipped."""
    h, w = int(shape[0]), int(shape[1])
    x0, y0, x1, y1 = box
    m = max(8, round(BOX_MARGIN * max(x1 - x0, y1 - y0)))
    return max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)


def box_probability(predict, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Full-size probability with the model run on the box (and margin) only.

    Args:
        predict: ``f(rgb uint8 h×w×3) -> float32 h×w`` probability at the crop's size (the
            pipeline's segment + fuse stages).
        image: RGB uint8 H×W×3.
        box: a checked box.

    Returns:
        float32 H×W in [0, 1]: the crop's probability inside the box, 0 outside it.
    """
    cx0, cy0, cx1, cy1 = box_crop(image.shape, box)
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    if min(crop.shape[:2]) < 2:
        raise HintError(f"box {box} is too small to run the model on (at least 2×2 pixels)")
    p = predict(crop)
    out = np.zeros(image.shape[:2], np.float32)
    x0, y0, x1, y1 = box
    out[y0:y1, x0:x1] = p[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]
    return out


def outside_box(shape: Sequence[int], box: tuple[int, int, int, int]) -> np.ndarray:
    """bool H×W: True outside ``box``."""
    m = np.ones(tuple(int(s) for s in shape[:2]), bool)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = False
    return m


# --------------------------------------------------------------------------- clicks/strokes


@dataclass
class HintedMap:
    """Result of :func:`apply_hints`.

    Attributes:
        probability: float32 H×W in [0, 1], the hinted map.
        keep, drop: bool H×W seed masks.
        influence: bool H×W, where the map may differ from the model's (``w > 0``).
    """

    probability: np.ndarray
    keep: np.ndarray
    drop: np.ndarray
    influence: np.ndarray


def _gradient(x: np.ndarray) -> np.ndarray:
    """Per-pixel gradient magnitude (central differences; channels summed in quadrature)."""
    import cv2

    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x[..., None]
    total = np.zeros(x.shape[:2], np.float32)
    for c in range(x.shape[2]):
        ch = np.ascontiguousarray(x[..., c])
        gx = cv2.Sobel(ch, cv2.CV_32F, 1, 0, ksize=1, borderType=cv2.BORDER_REPLICATE) * 0.5
        gy = cv2.Sobel(ch, cv2.CV_32F, 0, 1, ksize=1, borderType=cv2.BORDER_REPLICATE) * 0.5
        total += gx * gx + gy * gy
    return np.sqrt(total)


def _geodesic(cost: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Geodesic distance (float64 H×W) from the True pixels of ``seeds`` over ``cost``."""
    from skimage.graph import MCP_Geometric

    starts = np.argwhere(seeds)
    if starts.size == 0:
        return np.full(cost.shape, np.inf)
    dist, _ = MCP_Geometric(cost, fully_connected=True).find_costs(starts)
    return dist


def _reduce_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A seed mask on a smaller grid: a cell is a seed when any of its pixels is."""
    import cv2

    return cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA) > 0


def apply_hints(
    probability: np.ndarray,
    image: np.ndarray,
    hints: Hints,
    *,
    sigma: float = SIGMA,
    colour_cost: float = COLOUR_COST,
    prob_cost: float = PROB_COST,
    cutoff: float = CUTOFF,
    local: float = LOCAL,
    min_sigma: float = MIN_SIGMA,
) -> HintedMap:
    """Apply the clicks and strokes of ``hints`` (not the box) to a probability map.

    Args:
        probability: float32 H×W in [0, 1] (not modified).
        image: RGB uint8 H×W×3.
        hints: checked against the image (:meth:`Hints.check`).
        sigma, colour_cost, prob_cost, cutoff: see the module constants.

    Returns:
        a :class:`HintedMap`; with no seeds its probability is the input (a copy).
    """
    import cv2

    h, w = probability.shape
    keep, drop = hints.seeds((h, w))
    p = probability.astype(np.float32, copy=True)
    if not (keep.any() or drop.any()):
        return HintedMap(p, keep, drop, np.zeros((h, w), bool))
    s = math.sqrt(h * w / WORK_PIXELS)
    if s > 1.0:
        size = (max(2, round(w / s)), max(2, round(h / s)))
        img = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        pw = cv2.resize(p, size, interpolation=cv2.INTER_AREA)
        k, d = _reduce_mask(keep, size), _reduce_mask(drop, size)
    else:
        img, pw, k, d = image, p, keep, drop
    cost = 1.0 + colour_cost * _gradient(img.astype(np.float32) * np.float32(1 / 255))
    cost += prob_cost * _gradient(pw)
    diag = math.hypot(*pw.shape)
    if local > 0:
        wk, wd = (
            _local_weights(cost, k, pw, sigma * diag, local, min_sigma * diag),
            _local_weights(cost, d, pw, sigma * diag, local, min_sigma * diag),
        )
        weight = np.maximum(wk, wd).astype(np.float32)
        label = (wk >= wd).astype(np.float32)
    else:
        dk, dd = _geodesic(cost, k), _geodesic(cost, d)
        weight = np.exp(-np.square(np.minimum(dk, dd) / (sigma * diag))).astype(np.float32)
        label = (dk <= dd).astype(np.float32)
    weight[weight < cutoff] = 0.0
    if s > 1.0:
        weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
        weight[weight < cutoff] = 0.0
    out = p + weight * (label - p)
    out[keep] = 1.0
    out[drop] = 0.0
    np.clip(out, 0.0, 1.0, out=out)
    return HintedMap(out, keep, drop, (weight > 0) | keep | drop)


def _local_weights(cost, seeds, p, sigma_px, local, min_px) -> np.ndarray:
    """max over the seed's connected parts of ``exp(−(D_i/σ_i)²)``, with ``σ_i`` the global
    scale capped at ``local`` × the part's depth in its side of the 0.5 contour."""
    import cv2

    out = np.zeros(cost.shape, np.float64)
    if not seeds.any():
        return out
    fg = (p >= 0.5).astype(np.uint8)
    depth = np.maximum(
        cv2.distanceTransform(fg, cv2.DIST_L2, 3), cv2.distanceTransform(1 - fg, cv2.DIST_L2, 3)
    )
    n, labels = cv2.connectedComponents(seeds.astype(np.uint8), connectivity=8)
    for i in range(1, n):
        part = labels == i
        sig = min(sigma_px, max(min_px, local * float(depth[part].max())))
        dist = _geodesic(cost, part)
        np.maximum(out, np.exp(-np.square(dist / sig)), out=out)
    return out


def enforce(alpha: np.ndarray, hinted: HintedMap, band: float) -> np.ndarray:
    """Seed pixels farther than ``band`` pixels from the hinted map's 0.5 contour take their
    label (alpha 1 keep, 0 drop); nearer ones keep the soft edge the later stages made."""
    import cv2

    if not (hinted.keep.any() or hinted.drop.any()):
        return alpha
    fg = (hinted.probability >= 0.5).astype(np.uint8)
    d_in = cv2.distanceTransform(fg, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(1 - fg, cv2.DIST_L2, 3)
    far = np.maximum(d_in, d_out) > band
    out = alpha.astype(np.float32, copy=True)
    out[hinted.keep & far] = 1.0
    out[hinted.drop & far] = 0.0
    return out


def protect_kept(cleaned: np.ndarray, before: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Undo island removal on the components of ``before ≥ 0.5`` that hold a keep seed (the
    user said they belong to the subject)."""
    import cv2

    if not keep.any():
        return cleaned
    n, labels = cv2.connectedComponents((before >= 0.5).astype(np.uint8), connectivity=8)
    kept = np.unique(labels[keep & (labels > 0)])
    if kept.size == 0:
        return cleaned
    region = np.isin(labels, kept)
    out = cleaned.copy()
    out[region] = before[region]
    return out


def as_hints(
    value: Hints | None = None,
    *,
    box=None,
    keep: Iterable | None = None,
    drop: Iterable | None = None,
    strokes=None,
) -> Hints | None:
    """A :class:`Hints` from loose front-end values (``None`` when there are none)."""
    if value is not None:
        if any(v is not None for v in (box, keep, drop, strokes)):
            raise HintError("give either hints= or box= / keep= / drop= / strokes, not both")
        return value
    if box is None and not keep and not drop and strokes is None:
        return None
    return Hints(box=box, keep=tuple(keep or ()), drop=tuple(drop or ()), strokes=strokes)
