"""Synthetic training / test data: thin structures composited over varied backgrounds.

* Alpha mattes of thin structures — :func:`wires` (smooth curves, 0.4–3 px wide), :func:`mesh`
  (a net or fence: a rotated grid clipped to a blob), :func:`fur` (a body with many short
  curved strands along its outline) — drawn anti-aliased at 4× and area-downsampled, so
  sub-pixel strands get fractional alpha.
* Backgrounds — smooth colour gradients, multi-octave noise textures, or crops of photos.
* :func:`composite` (``I = αF + (1 − α)B``) and :func:`make_sample` (one random item),
  :func:`simple_shapes` (solid discs / boxes, for overfitting checks) and
  :func:`write_dataset` (a folder in any training layout: dis5k, am2k, thinobject5k,
  trans10k, generic).

Everything is a pure function of the seed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "THIN_KINDS",
    "gradient_background",
    "noise_background",
    "photo_background",
    "random_background",
    "wires",
    "mesh",
    "fur",
    "thin_alpha",
    "composite",
    "make_sample",
    "simple_shapes",
    "write_dataset",
]

THIN_KINDS = ("wires", "mesh", "fur")
_SS = 4  # supersampling factor for anti-aliased drawing


# ---------------------------------------------------------------------------------------------
# backgrounds (float32 H×W×3 in [0, 1])


def gradient_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth blend of 2–4 random colours placed at random points."""
    k = int(rng.integers(2, 5))
    pts = rng.uniform(0, 1, size=(k, 2)) * [h, w]
    cols = rng.uniform(0, 1, size=(k, 3))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.stack([np.hypot(yy - p[0], xx - p[1]) for p in pts]) + 1.0
    wgt = 1.0 / d**2
    wgt /= wgt.sum(0, keepdims=True)
    return np.einsum("khw,kc->hwc", wgt, cols).astype(np.float32)


def noise_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Coloured multi-octave value noise (a texture with detail at several scales)."""
    import cv2

    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for octave in range(5):
        cells = 2 ** (octave + 1)
        grid = rng.uniform(0, 1, size=(cells + 1, cells + 1)).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.55
    out = (out / total - out.min() / total) / max(np.ptp(out) / total, 1e-6)
    c0, c1 = rng.uniform(0, 1, size=(2, 3)).astype(np.float32)
    return np.clip(c0 + out[..., None] * (c1 - c0), 0, 1).astype(np.float32)


def photo_background(
    rng: np.random.Generator, h: int, w: int, photo: np.ndarray, blur: float = 0.0
) -> np.ndarray:
    """A random crop of ``photo`` (RGB uint8), resized to h×w, possibly flipped, and blurred
    with a Gaussian of σ = ``blur`` px (a defocused backdrop) when ``blur > 0``."""
    import cv2

    H, W = photo.shape[:2]
    s = rng.uniform(0.3, 1.0)
    ch, cw = max(8, int(H * s)), max(8, int(W * s))
    y, x = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
    crop = photo[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    out = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_AREA)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    return out.astype(np.float32) / 255.0


def random_background(
    rng: np.random.Generator,
    h: int,
    w: int,
    photos: Sequence[np.ndarray] = (),
    photo_blur: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """A gradient, a noise texture or (when ``photos`` are given, half the time) a photo crop
    blurred by a σ drawn from ``photo_blur``."""
    choices = ["gradient", "noise"] + (["photo", "photo"] if photos else [])
    kind = choices[int(rng.integers(len(choices)))]
    if kind == "gradient":
        return gradient_background(rng, h, w)
    if kind == "noise":
        return noise_background(rng, h, w)
    photo = photos[int(rng.integers(len(photos)))]
    return photo_background(rng, h, w, photo, float(rng.uniform(*photo_blur)))


# ---------------------------------------------------------------------------------------------
# thin-structure alpha (float32 H×W in [0, 1])


def _canvas(h: int, w: int) -> np.ndarray:
    return np.zeros((h * _SS, w * _SS), np.uint8)


def _down(canvas: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _curve(rng: np.random.Generator, p0, p1, bend: float, n: int = 48) -> np.ndarray:
    """A quadratic Bézier from p0 to p1 with a random control point."""
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    mid = (p0 + p1) / 2
    normal = np.array([-(p1 - p0)[1], (p1 - p0)[0]])
    c = mid + normal * rng.uniform(-bend, bend)
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * p1


def _polyline(canvas: np.ndarray, pts: np.ndarray, width_px: float) -> None:
    import cv2

    th = max(1, int(round(width_px * _SS)))
    poly = np.round(pts * _SS).astype(np.int32)[:, None, :]
    cv2.polylines(canvas, [poly], False, 255, th, cv2.LINE_AA)


def wires(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """1–6 smooth wires crossing the frame, 0.4–3 px wide."""
    c = _canvas(h, w)
    for _ in range(int(rng.integers(1, 7))):
        side = rng.integers(0, 2)
        if side == 0:  # left to right
            p0, p1 = (0, rng.uniform(0, h)), (w, rng.uniform(0, h))
        else:  # top to bottom
            p0, p1 = (rng.uniform(0, w), 0), (rng.uniform(0, w), h)
        pts = _curve(rng, p0, p1, bend=0.4, n=96)
        _polyline(c, pts, rng.uniform(0.4, 3.0))
    return _down(c, h, w)


def _blob(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """A filled random blob (smooth closed curve) on the supersampled canvas."""
    import cv2

    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    r = scale * min(h, w)
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    k = rng.uniform(-0.25, 0.25, size=4)
    rad = r * (1 + k[0] * np.sin(2 * t + k[1] * 9) + k[2] * np.cos(3 * t + k[3] * 9))
    pts = np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1)
    c = _canvas(h, w)
    cv2.fillPoly(c, [np.round(pts * _SS).astype(np.int32)], 255, cv2.LINE_AA)
    return c, pts


def mesh(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A net: a rotated grid of 0.5–2 px strands, spacing 5–18 px, clipped to a blob."""
    import cv2

    region, _ = _blob(rng, h, w, rng.uniform(0.3, 0.45))
    grid = _canvas(h, w)
    H, W = grid.shape
    spacing = rng.uniform(5, 18) * _SS
    th = max(1, int(round(rng.uniform(0.5, 2.0) * _SS)))
    angle = rng.uniform(0, np.pi / 2)
    diag = int(np.hypot(H, W))
    for theta in (angle, angle + rng.uniform(np.pi / 3, 2 * np.pi / 3)):
        d = np.array([np.cos(theta), np.sin(theta)])
        nrm = np.array([-d[1], d[0]])
        for off in np.arange(-diag, diag, spacing):
            p = np.array([W / 2, H / 2]) + nrm * off
            a, b = p - d * diag, p + d * diag
            pa, pb = tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int))
            cv2.line(grid, pa, pb, 255, th, cv2.LINE_AA)
    out = (grid.astype(np.uint16) * region // 255).astype(np.uint8)
    return _down(out, h, w)


def fur(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A solid body whose outline sprouts hundreds of short curved strands (0.3–1.5 px)."""
    body, outline = _blob(rng, h, w, rng.uniform(0.18, 0.3))
    cy, cx = outline.mean(0)[::-1]
    n = int(rng.integers(150, 400))
    length = rng.uniform(0.04, 0.12) * min(h, w)
    idx = rng.integers(0, len(outline), size=n)
    t = rng.uniform(0, 1, size=n)
    nxt = (idx + 1) % len(outline)
    roots = outline[idx] * (1 - t[:, None]) + outline[nxt] * t[:, None]
    for p in roots:
        out = p - np.array([cx, cy])
        out /= np.linalg.norm(out) + 1e-6
        ang = np.arctan2(out[1], out[0]) + rng.normal(0, 0.35)
        tip = p + length * rng.uniform(0.5, 1.3) * np.array([np.cos(ang), np.sin(ang)])
        _polyline(body, _curve(rng, p, tip, bend=0.3, n=12), rng.uniform(0.3, 1.5))
    return _down(body, h, w)


def thin_alpha(rng: np.random.Generator, h: int, w: int, kind: str | None = None) -> np.ndarray:
    """One thin-structure matte of ``kind`` (random among :data:`THIN_KINDS` if None)."""
    kind = kind or THIN_KINDS[int(rng.integers(len(THIN_KINDS)))]
    fn = {"wires": wires, "mesh": mesh, "fur": fur}.get(kind)
    if fn is None:
        raise ValueError(f"unknown thin-structure kind {kind!r}; choose from {THIN_KINDS}")
    return fn(rng, h, w)


# ---------------------------------------------------------------------------------------------
# samples


def composite(alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``αF + (1 − α)B`` as RGB uint8 (float inputs in [0, 1])."""
    a = alpha[..., None].astype(np.float32)
    img = a * fg + (1.0 - a) * bg
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _foreground(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A subject colour with a gentle shading gradient."""
    base = rng.uniform(0, 1, size=3).astype(np.float32)
    shade = gradient_background(rng, h, w) * 0.3 - 0.15
    return np.clip(base + shade, 0, 1)


def make_sample(
    seed: int,
    size: int | tuple[int, int] = 128,
    *,
    kind: str | None = None,
    photos: Sequence[np.ndarray] = (),
    photo_blur: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(image uint8 H×W×3, alpha float32 H×W, fg, bg float32 H×W×3)`` for ``seed``."""
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7411]))
    alpha = thin_alpha(rng, h, w, kind)
    bg = random_background(rng, h, w, photos, photo_blur)
    fg = _foreground(rng, h, w)
    # keep the subject visible against its background
    if np.abs(fg.mean((0, 1)) - bg.mean((0, 1))).sum() < 0.3:
        fg = 1.0 - fg
    return composite(alpha, fg, bg), alpha, fg, bg


def simple_shapes(seed: int, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A solid disc, box or triangle on a noise background: ``(image uint8, mask float32)``."""
    import cv2

    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5A]))
    m = np.zeros((size * _SS, size * _SS), np.uint8)
    kind = int(rng.integers(3))
    c = rng.uniform(0.3, 0.7, size=2) * size * _SS
    r = rng.uniform(0.15, 0.3) * size * _SS
    if kind == 0:
        cv2.circle(m, tuple(np.round(c).astype(int)), int(r), 255, -1, cv2.LINE_AA)
    elif kind == 1:
        p0, p1 = tuple(np.round(c - r).astype(int)), tuple(np.round(c + r).astype(int))
        cv2.rectangle(m, p0, p1, 255, -1)
    else:
        pts = np.array([c + r * np.array([np.cos(a), np.sin(a)]) for a in (0, 2.1, 4.2)])
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)
    mask = _down(m, size, size)
    bg = noise_background(rng, size, size) * 0.5
    fg = np.full((size, size, 3), rng.uniform(0.6, 1.0), np.float32)
    return composite(mask, fg, bg), mask


def _save(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype != np.uint8:
        array = np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)
    Image.fromarray(array).save(path)


def write_dataset(
    root: str | os.PathLike,
    layout: str,
    n: int,
    *,
    size: int = 64,
    seed: int = 0,
    split: str | None = None,
    kind: str | None = None,
    shapes: bool = False,
    photos: Sequence[np.ndarray] = (),
    photo_blur: tuple[float, float] = (0.0, 0.0),
) -> Path:
    """Write ``n`` synthetic samples in ``layout`` under ``root``; returns the split folder.

    ``split`` defaults to each layout's training split (``DIS-TR``, ``train``; the generic
    layout writes into ``root`` itself). ThinObject-5K gets ``list/<split>.txt``; Trans10K
    masks are written as colour ``X_mask.png`` files (things in red).
    """
    root = Path(root)
    defaults = {"dis5k": "DIS-TR", "am2k": "train", "trans10k": "train", "thinobject5k": "train"}
    split = split if split is not None else defaults.get(layout)
    names = [f"s{seed:04d}_{i:04d}" for i in range(n)]
    if layout == "thinobject5k":
        base = root
        lst = root / "list" / f"{split}.txt"
        lst.parent.mkdir(parents=True, exist_ok=True)
        old = lst.read_text().splitlines() if lst.exists() else []
        lst.write_text("\n".join(old + [f"{nm}.png" for nm in names]) + "\n")
    else:
        base = root / split if split else root
    dirs = {
        "dis5k": ("im", "gt", ".jpg"),
        "am2k": ("original", "mask", ".jpg"),
        "thinobject5k": ("images", "masks", ".jpg"),
        "trans10k": ("images", "masks", ".jpg"),
        "generic": ("image", "mask", ".png"),
    }
    if layout not in dirs:
        raise ValueError(f"unknown layout {layout!r}")
    im_dir, mask_dir, ext = dirs[layout]
    for i, nm in enumerate(names):
        if shapes:
            image, alpha = simple_shapes(seed * 100003 + i, size)
        else:
            image, alpha, _, _ = make_sample(
                seed * 100003 + i, size, kind=kind, photos=photos, photo_blur=photo_blur
            )
        _save(base / im_dir / f"{nm}{ext}", image)
        if layout == "trans10k":
            rgb = np.zeros((*alpha.shape, 3), np.uint8)
            rgb[..., 0] = np.where(alpha > 0.5, 255, 0)
            _save(base / mask_dir / f"{nm}_mask.png", rgb)
        else:
            _save(base / mask_dir / f"{nm}.png", alpha)
    return base
