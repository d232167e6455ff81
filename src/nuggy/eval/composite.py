"""Build a Composition-1k-style benchmark: every foreground over N backgrounds.

The protocol of Xu et al., *Deep Image Matting* (CVPR 2017), whose test set Composition-1k
puts each of 50 foregrounds over 20 PASCAL VOC backgrounds:

* **Backgrounds** are assigned without repetition while there are enough: the sorted background
  files are shuffled once with ``seed`` and dealt out in order, N per foreground (foregrounds in
  name order), so the same inputs and seed give the same set, byte for byte.
* **Fit**: ``dim`` (the original code) upscales a background only when it is smaller than the
  foreground, by the factor that makes it cover the foreground (bicubic, sizes rounded up),
  then takes the top-left crop; ``cover`` scales every background (up or down) so it just
  covers the foreground and takes the centre crop.
* **Compositing**: ``I = α·F + (1 − α)·B`` in float32, rounded once to 8 bits. By default on
  the 8-bit sRGB values divided by 255, as the original protocol (and the published numbers)
  do; ``linear=True`` composites in linear light (sRGB decoded, blended, re-encoded), which is
  physically right for real-world matting but gives different images from Composition-1k.
  ``α`` is the 8-bit alpha file divided by 255, exactly what is written to ``alpha/``.
* **Trimap** (written to ``trimap/``, as DIM generates trimaps from alpha): the unknown
  region — every pixel with 0 < α < 1, plus the boundary between α = 0 and α = 1 — dilated
  by ``trimap_radius`` pixels with an elliptical kernel; 255 = surely foreground (α = 1 and
  farther than the radius from any other value), 0 = surely background, 128 = unknown.
  (The official Composition-1k test trimaps were drawn by the authors; use them instead when
  comparing with published numbers: copy them into ``trimap/`` under the composite names.)

Output: the generic evaluation layout (``image/``, ``alpha/``, ``trimap/``) plus ``fg/`` (the
foreground colours), ``bg/`` (the fitted background crop actually used) — all named
``<foreground>_<k>.png`` — and ``manifest.json`` (protocol, settings, and per composite its
sources, scale and crop), which :func:`nuggy.eval.datasets.open_dataset` detects.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from .datasets import IMAGE_SUFFIXES, MANIFEST, DatasetError, _pair, read_matte

__all__ = [
    "srgb_to_linear",
    "linear_to_srgb",
    "composite",
    "fit_background",
    "make_trimap",
    "assign_backgrounds",
    "build_composition",
]

Fit = Literal["dim", "cover"]
SUBDIRS = ("image", "alpha", "trimap", "fg", "bg")


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1), float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] to sRGB-encoded values, float32."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, *, linear: bool = False) -> np.ndarray:
    """``α·F + (1 − α)·B`` as float32 H×W×3 in [0, 1].

    Args:
        fg, bg: uint8 H×W×3 (÷255) or float in [0, 1], same size.
        alpha: H×W, uint8 (÷255) or float in [0, 1].
        linear: blend in linear light (decode sRGB first, encode the result).
    """

    def f32(a):
        a = np.asarray(a)
        return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)

    F, B, a = f32(fg), f32(bg), f32(alpha)
    if F.shape != B.shape or F.shape[:2] != a.shape or F.ndim != 3:
        raise ValueError(f"shape mismatch: fg {F.shape}, alpha {a.shape}, bg {B.shape}")
    a = a[..., None]
    if linear:
        return linear_to_srgb(a * srgb_to_linear(F) + (1.0 - a) * srgb_to_linear(B))
    return (a * F + (1.0 - a) * B).astype(np.float32)


def fit_background(bg: np.ndarray, shape: tuple[int, int], *, fit: Fit = "dim") -> tuple[np.ndarray, dict]:
    """Resize and crop a background (uint8 H×W×3) to ``shape`` = (h, w).

    Returns:
        (uint8 h×w×3 crop, {"scale", "resized": [w, h], "crop": [x, y, w, h]}).
    """
    import cv2

    h, w = shape
    bh, bw = bg.shape[:2]
    ratio = max(h / bh, w / bw)
    if fit == "dim":
        scale = ratio if ratio > 1 else 1.0
    elif fit == "cover":
        scale = ratio
    else:
        raise ValueError(f"fit must be 'dim' or 'cover', got {fit!r}")
    if scale != 1.0:
        nw, nh = max(w, math.ceil(bw * scale)), max(h, math.ceil(bh * scale))
        interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
        bg = cv2.resize(bg, (nw, nh), interpolation=interp)
    rh, rw = bg.shape[:2]
    if fit == "dim":
        x, y = 0, 0
    else:
        x, y = (rw - w) // 2, (rh - h) // 2
    crop = np.ascontiguousarray(bg[y : y + h, x : x + w])
    return crop, {"scale": scale, "resized": [rw, rh], "crop": [x, y, w, h]}


def make_trimap(alpha: np.ndarray, radius: int = 10) -> np.ndarray:
    """Trimap from an alpha matte by dilating its unknown region (see the module doc).

    Args:
        alpha: uint8 H×W (0..255) or float in [0, 1].
        radius: dilation radius in pixels (0 = only the fractional pixels are unknown).

    Returns:
        uint8 H×W with 0 / 128 / 255.
    """
    import cv2

    a = np.asarray(alpha)
    if a.dtype != np.uint8:
        a = np.clip(a.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    fg = (a == 255).astype(np.uint8)
    bg = (a == 0).astype(np.uint8)
    if radius > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        fg = cv2.erode(fg, k, borderType=cv2.BORDER_REPLICATE)
        bg = cv2.erode(bg, k, borderType=cv2.BORDER_REPLICATE)
    t = np.full(a.shape, 128, np.uint8)
    t[fg.astype(bool)] = 255
    t[bg.astype(bool)] = 0
    return t


def assign_backgrounds(n_fg: int, backgrounds: list, n: int, seed: int) -> list[list]:
    """For each of ``n_fg`` foregrounds, its ``n`` backgrounds: the list shuffled with ``seed``
    and dealt in order, wrapping around (with a warning) when there are too few."""
    if not backgrounds:
        raise ValueError("no backgrounds")
    rng = np.random.default_rng(seed)
    order = [backgrounds[i] for i in rng.permutation(len(backgrounds))]
    if n_fg * n > len(order):
        warnings.warn(
            f"{len(order)} backgrounds for {n_fg} foregrounds × {n}: backgrounds are reused"
            + (" within a foreground" if n > len(order) else " across foregrounds"),
            stacklevel=2,
        )
    return [[order[(i * n + j) % len(order)] for j in range(n)] for i in range(n_fg)]


def _list_backgrounds(bg_dir: Path) -> list[Path]:
    if not bg_dir.is_dir():
        raise DatasetError(f"{bg_dir}: background folder not found")
    files = sorted(
        f
        for f in bg_dir.rglob("*")
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
    )
    if not files:
        raise DatasetError(f"{bg_dir}: no background images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _prepare_output(out: Path, overwrite: bool) -> list[str]:
    """Check the output folder; returns the composite names of a previous build there."""
    previous: list[str] = []
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            previous = [it["name"] for it in json.loads(manifest.read_text()).get("items", [])]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            previous = []
    used = manifest.is_file() or any((out / d).is_dir() and any((out / d).iterdir()) for d in SUBDIRS)
    if used and not overwrite:
        raise DatasetError(
            f"{out}: already holds a composite set; choose another -o folder or add --overwrite"
        )
    return previous


def build_composition(
    fg_dir: str | os.PathLike,
    alpha_dir: str | os.PathLike,
    bg_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    n: int = 20,
    seed: int = 0,
    fit: Fit = "dim",
    linear: bool = False,
    trimap_radius: int = 10,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Composite every foreground over ``n`` backgrounds and write the set (see module doc).

    Args:
        fg_dir: foreground colour images; ``alpha_dir``: their alpha mattes (matched by name).
        bg_dir: background images (searched recursively).
        out_dir: output folder (must be new or empty unless ``overwrite``).
        n: backgrounds per foreground; seed: background shuffle; fit: ``dim`` or ``cover``.
        linear: composite in linear light instead of on sRGB values.
        trimap_radius: unknown-band dilation radius in pixels.
        progress: progress bar on stderr.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        DatasetError: missing folders, unmatched foreground/alpha pairs (all listed),
            size mismatches, unreadable files, an output folder in use.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from .. import __version__
    from ..io import ImageError, load_image, save_image

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if trimap_radius < 0:
        raise ValueError(f"trimap radius must be >= 0, got {trimap_radius}")
    fg_dir, alpha_dir, bg_dir, out = (Path(p).expanduser() for p in (fg_dir, alpha_dir, bg_dir, out_dir))
    pairs = _pair(fg_dir, fg_dir, alpha_dir, None)
    backgrounds = _list_backgrounds(bg_dir)
    previous = _prepare_output(out, overwrite)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = assign_backgrounds(len(pairs), backgrounds, n, seed)
    notes = [str(w.message) for w in caught]
    width = max(2, len(str(n - 1)))

    def load(path: Path) -> np.ndarray:
        try:
            return load_image(path)
        except ImageError as exc:
            raise DatasetError(str(exc)) from None

    items: list[dict] = []
    bar = tqdm(
        total=len(pairs) * n,
        unit="img",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
        desc="composite",
    )
    with ThreadPoolExecutor(2, thread_name_prefix="nuggy-composite-write") as writer:
        pending = []
        for pair, bgs in zip(pairs, plan):
            fg = load(pair.image)
            a = read_matte(pair.alpha)
            if a.shape != fg.shape[:2]:
                raise DatasetError(
                    f"{pair.name}: size mismatch: foreground {pair.image} is {fg.shape[1]}×{fg.shape[0]} "
                    f"but alpha {pair.alpha} is {a.shape[1]}×{a.shape[0]}"
                )
            a8 = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
            trimap = make_trimap(a8, trimap_radius)
            for k, bg_path in enumerate(bgs):
                name = f"{pair.name}_{k:0{width}d}"
                crop, geo = fit_background(load(bg_path), fg.shape[:2], fit=fit)
                comp = composite(fg, a8, crop, linear=linear)
                image = np.clip(comp * 255.0 + 0.5, 0, 255).astype(np.uint8)
                for sub, arr in (
                    ("image", image),
                    ("alpha", a8),
                    ("trimap", trimap),
                    ("fg", fg),
                    ("bg", crop),
                ):
                    pending.append(writer.submit(save_image, arr, out / sub / f"{name}.png"))
                items.append(
                    {
                        "name": name,
                        "fg": str(pair.image),
                        "alpha": str(pair.alpha),
                        "bg": str(bg_path),
                        **geo,
                    }
                )
                if len(pending) > 40:
                    for f in pending[:20]:
                        f.result()
                    del pending[:20]
                bar.update(1)
        for f in pending:
            f.result()
    bar.close()
    names = {it["name"] for it in items}
    for stale in previous:
        if stale not in names:
            for sub in SUBDIRS:
                (out / sub / f"{stale}.png").unlink(missing_ok=True)
    manifest = {
        "protocol": "composition-1k",
        "created_by": f"nuggy {__version__}",
        "foregrounds": len(pairs),
        "backgrounds": len(backgrounds),
        "per_foreground": n,
        "seed": seed,
        "fit": fit,
        "space": "linear" if linear else "srgb",
        "trimap": {
            "method": "dilate unknown (0<alpha<1 and the 0/1 boundary)",
            "radius": trimap_radius,
            "kernel": "ellipse",
        },
        "sources": {"fg": str(fg_dir), "alpha": str(alpha_dir), "bg": str(bg_dir)},
        "notes": notes,
        "items": items,
    }
    out.mkdir(parents=True, exist_ok=True)
    from ..io import atomic_write_bytes

    atomic_write_bytes(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return manifest
