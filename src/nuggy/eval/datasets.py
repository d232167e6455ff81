"""Evaluation datasets: find (image, alpha, trimap) triples in the common on-disk layouts.

Layouts (auto-detected, or named with ``layout=``):

* ``generic``      ``image/`` + ``alpha/`` (or ``mask/``) + optional ``trimap/``, matched by stem.
* ``composition``  the generic layout written by :mod:`nuggy.eval.composite`, plus
                   ``fg/``, ``bg/`` and ``manifest.json`` (``"protocol": "composition-1k"``).
* ``dis5k``        ``im/`` + ``gt/`` (one DIS5K split, e.g. ``DIS5K/DIS-VD``).
* ``am2k``         ``original/`` + ``mask/`` + optional ``trimap/`` (one AM-2k split).
* ``alphamatting`` alphamatting.com: ``input_<X>/``, ``gt_<X>/``, optional ``trimap_<X>/``
                   (files directly inside, or in ``Trimap1/``, ``Trimap2/``, … — the first is
                   used unless ``trimap_set`` names another).

A root that holds several splits (``DIS5K/`` with ``DIS-TE1`` … ``DIS-VD``; AM-2k with
``train``/``validation``; alphamatting with ``*_training_lowres`` and ``*_training_highres``)
needs ``split=`` to pick one; the error lists the choices.

Reading (:func:`load_sample`, :func:`read_matte`) validates what it reads: size mismatches,
trimap values other than 0/128/255 (the offending values are listed), unreadable files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "DatasetError",
    "Sample",
    "Dataset",
    "LAYOUTS",
    "IMAGE_SUFFIXES",
    "open_dataset",
    "detect_layout",
    "check_dataset",
    "load_sample",
    "read_matte",
    "read_trimap",
    "image_size",
]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
LAYOUTS = ("generic", "composition", "dis5k", "am2k", "alphamatting")
MANIFEST = "manifest.json"
_MAX_LISTED = 12


class DatasetError(ValueError):
    """A dataset cannot be read as asked; the message names the files and the fix."""


@dataclass(frozen=True)
class Sample:
    """One evaluation item: a photo, its ground-truth alpha and an optional trimap."""

    name: str
    image: Path
    alpha: Path
    trimap: Path | None = None


@dataclass
class Dataset:
    """Samples of one dataset split, sorted by name.

    Attributes:
        root: the folder the samples were read from (the split folder, if one was picked).
        layout: one of :data:`LAYOUTS`.
        samples: the matched samples.
        info: layout extras (the Composition-1k manifest; the alphamatting trimap set).
    """

    root: Path
    layout: str
    samples: list[Sample]
    info: dict = field(default_factory=dict)

    @property
    def has_trimaps(self) -> bool:
        """True when every sample has a trimap."""
        return bool(self.samples) and all(s.trimap is not None for s in self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    def subset(self, names: Iterable[str]) -> Dataset:
        """The samples whose name is in ``names`` (same order as the dataset)."""
        keep = set(names)
        return Dataset(self.root, self.layout, [s for s in self.samples if s.name in keep], self.info)


# ---------------------------------------------------------------------------------------------
# discovery


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" … and {more} more" if more > 0 else "")


def _images_by_stem(folder: Path) -> dict[str, Path]:
    """stem -> file for the image files directly in ``folder``; duplicate stems are an error."""
    found: dict[str, Path] = {}
    dupes: list[str] = []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if f.stem in found:
            dupes.append(f"{found[f.stem].name} / {f.name}")
            continue
        found[f.stem] = f
    if dupes:
        raise DatasetError(
            f"{folder}: several files share a name, so they cannot be matched by name: "
            f"{_listing(dupes)}; keep one file per name"
        )
    return found


def _pair(root: Path, image_dir: Path, alpha_dir: Path, trimap_dir: Path | None) -> list[Sample]:
    """Match the three folders by file stem; every image needs an alpha (and a trimap, if the
    trimap folder exists) and vice versa."""
    for d in (image_dir, alpha_dir):
        if not d.is_dir():
            raise DatasetError(f"{d}: folder not found")
    images = _images_by_stem(image_dir)
    alphas = _images_by_stem(alpha_dir)
    trimaps = _images_by_stem(trimap_dir) if trimap_dir is not None else {}
    problems: list[str] = []
    no_alpha = sorted(set(images) - set(alphas))
    no_image = sorted(set(alphas) - set(images))
    if no_alpha:
        problems.append(
            f"{len(no_alpha)} image(s) in {image_dir.name}/ have no alpha in {alpha_dir.name}/: "
            + _listing(no_alpha)
        )
    if no_image:
        problems.append(
            f"{len(no_image)} alpha(s) in {alpha_dir.name}/ have no image in {image_dir.name}/: "
            + _listing(no_image)
        )
    if trimap_dir is not None:
        no_trimap = sorted(set(images) - set(trimaps))
        if no_trimap:
            problems.append(
                f"{len(no_trimap)} image(s) have no trimap in {trimap_dir.name}/: " + _listing(no_trimap)
            )
    if problems:
        raise DatasetError(
            f"{root}: unmatched files (files are paired by name without extension):\n  "
            + "\n  ".join(problems)
            + "\nadd the missing files or remove the extra ones"
        )
    if not images:
        raise DatasetError(f"{image_dir}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [
        Sample(name, images[name], alphas[name], trimaps.get(name) if trimap_dir else None)
        for name in sorted(images)
    ]


def _dir(root: Path, name: str) -> Path | None:
    p = root / name
    return p if p.is_dir() else None


def _alphamatting_suffixes(root: Path) -> list[str]:
    """The ``X`` of every ``input_X`` folder with a matching ``gt_X`` folder."""
    out = []
    for d in sorted(root.glob("input_*")):
        x = d.name[len("input_") :]
        if d.is_dir() and (root / f"gt_{x}").is_dir():
            out.append(x)
    return out


def detect_layout(root: str | os.PathLike) -> str | None:
    """The layout of ``root`` (one of :data:`LAYOUTS`), or ``None`` if none fits."""
    root = Path(root)
    if _dir(root, "image") and (_dir(root, "alpha") or _dir(root, "mask")):
        manifest = root / MANIFEST
        if manifest.is_file():
            try:
                if json.loads(manifest.read_text()).get("protocol") == "composition-1k":
                    return "composition"
            except (OSError, ValueError, AttributeError):
                pass
        return "generic"
    if _dir(root, "im") and _dir(root, "gt"):
        return "dis5k"
    if _dir(root, "original") and _dir(root, "mask"):
        return "am2k"
    if _alphamatting_suffixes(root):
        return "alphamatting"
    return None


def _splits(root: Path) -> list[str]:
    """Sub-folders of ``root`` that hold a dataset of a known layout."""
    try:
        return [d.name for d in sorted(root.iterdir()) if d.is_dir() and detect_layout(d)]
    except OSError:
        return []


def open_dataset(
    root: str | os.PathLike,
    *,
    layout: str | None = None,
    split: str | None = None,
    trimap_set: str | None = None,
) -> Dataset:
    """Find the samples of a dataset.

    Args:
        root: the dataset folder (or a folder of splits, with ``split``).
        layout: one of :data:`LAYOUTS`; ``None`` detects it.
        split: sub-folder to use (DIS5K ``DIS-VD``, AM-2k ``validation``), or for the
            alphamatting layout the ``X`` of ``input_X`` (``training_lowres``).
        trimap_set: alphamatting only: the trimap sub-folder (``Trimap1`` … ); default the first.

    Raises:
        DatasetError: folder missing, layout unknown, unmatched files (all listed).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if layout is not None and layout not in LAYOUTS:
        raise DatasetError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    am_split = None
    if split is not None:
        if (root / split).is_dir():
            root = root / split
        elif _alphamatting_suffixes(root):
            am_split = split
        else:
            raise DatasetError(
                f"{root}: no split {split!r}; splits here: {_listing(_splits(root)) or 'none'}"
            )
    found = detect_layout(root)
    if layout is None:
        layout = found
    if layout is None:
        splits = _splits(root)
        if splits:
            raise DatasetError(
                f"{root}: holds several datasets; pick one with --subset (split= in the API): {_listing(splits)}"
            )
        raise DatasetError(
            f"{root}: unknown dataset layout; expected image/ + alpha/ (or mask/) [+ trimap/], "
            "im/ + gt/ (DIS5K), original/ + mask/ (AM-2k), or input_*/ + gt_*/ [+ trimap_*/] "
            "(alphamatting.com); or name it with --layout"
        )

    info: dict = {}
    if layout in ("generic", "composition"):
        alpha_dir = root / "alpha" if (root / "alpha").is_dir() else root / "mask"
        samples = _pair(root, root / "image", alpha_dir, _dir(root, "trimap"))
        if layout == "composition":
            try:
                info = json.loads((root / MANIFEST).read_text())
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{root / MANIFEST}: cannot read the manifest ({exc})") from None
    elif layout == "dis5k":
        samples = _pair(root, root / "im", root / "gt", None)
    elif layout == "am2k":
        samples = _pair(root, root / "original", root / "mask", _dir(root, "trimap"))
    elif layout == "alphamatting":
        suffixes = _alphamatting_suffixes(root)
        if am_split is not None:
            if am_split not in suffixes:
                raise DatasetError(
                    f"{root}: no input_{am_split}/ with gt_{am_split}/; choose --subset (split=) from: "
                    + (_listing(suffixes) or "none")
                )
            x = am_split
        elif len(suffixes) == 1:
            x = suffixes[0]
        elif not suffixes:
            raise DatasetError(f"{root}: no input_*/ folder with a matching gt_*/ folder")
        else:
            raise DatasetError(
                f"{root}: several image sets; pick one with --subset (split= in the API): {_listing(suffixes)}"
            )
        tdir = _dir(root, f"trimap_{x}")
        if tdir is not None:
            subsets = sorted(d.name for d in tdir.iterdir() if d.is_dir())
            if trimap_set is not None:
                if trimap_set not in subsets:
                    raise DatasetError(
                        f"{tdir}: no trimap set {trimap_set!r}; choose from: "
                        + (_listing(subsets) or "none (the trimaps lie directly in it)")
                    )
                tdir = tdir / trimap_set
            elif subsets:
                tdir = tdir / subsets[0]
            info["trimap_set"] = tdir.name
        info["split"] = x
        samples = _pair(root, root / f"input_{x}", root / f"gt_{x}", tdir)
    else:  # pragma: no cover - guarded above
        raise AssertionError(layout)
    return Dataset(root=root, layout=layout, samples=samples, info=info)


# ---------------------------------------------------------------------------------------------
# reading and validation


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file from its header, after EXIF orientation.

    Raises:
        DatasetError: the file is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            try:
                orientation = im.getexif().get(274, 1)
            except Exception:  # noqa: BLE001 - broken EXIF: treat as unrotated
                orientation = 1
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc}); re-export it as PNG") from None
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def check_dataset(dataset: Dataset) -> None:
    """Check that every file opens and that image, alpha and trimap sizes agree (headers
    only, no decoding). All problems are reported together.

    Raises:
        DatasetError: listing every unreadable file and every size mismatch.
    """
    problems: list[str] = []
    for s in dataset.samples:
        sizes: dict[str, tuple[int, int]] = {}
        for role, path in (("image", s.image), ("alpha", s.alpha), ("trimap", s.trimap)):
            if path is None:
                continue
            try:
                sizes[role] = image_size(path)
            except DatasetError as exc:
                problems.append(str(exc))
        if "image" in sizes:
            for role in ("alpha", "trimap"):
                if role in sizes and sizes[role] != sizes["image"]:
                    problems.append(_size_message(s, role, sizes["image"], sizes[role]))
    if problems:
        raise DatasetError(
            f"{dataset.root}: {len(problems)} problem(s):\n  "
            + "\n  ".join(problems[:50])
            + (f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else "")
        )


def _size_message(s: Sample, role: str, image: tuple[int, int], other: tuple[int, int]) -> str:
    path = s.alpha if role == "alpha" else s.trimap
    return (
        f"{s.name}: size mismatch: image {s.image.name} is {image[1]}×{image[0]} but {role} "
        f"{path} is {other[1]}×{other[0]}; the {role} must have the image's size"
    )


def _open(path: Path):
    """The file decoded through :func:`nuggy.io.open_image` (same limits and errors as the
    pipeline's inputs), as a DatasetError when it fails."""
    from nuggy.io import ImageError, open_image

    try:
        return open_image(path)
    except ImageError as exc:
        raise DatasetError(str(exc)) from None


def read_matte(path: str | os.PathLike) -> np.ndarray:
    """An alpha matte / mask / prediction file as float32 H×W in [0, 1].

    Greyscale is ``value / 255`` (16-bit: ``/ 65535``); RGBA, LA and transparent palettes give
    their alpha channel (unless it is fully opaque: then the colour channels are used, as
    for RGB); RGB must have equal channels (JPEG noise of a few levels is averaged away).

    Raises:
        DatasetError: unreadable, or a colour image that is not a matte.
    """
    path = Path(path)
    im = _open(path)
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        a = np.asarray(im.getchannel("A"))
        if a.min() < 255:
            return a.astype(np.float32) / 255.0
        im = im.convert("RGB" if mode in ("RGBA", "RGBa") else "L")
        mode = im.mode
    if mode == "1":
        return np.asarray(im, dtype=np.float32)
    if mode == "L":
        return np.asarray(im).astype(np.float32) / 255.0
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        return np.clip(a / top, 0.0, 1.0).astype(np.float32)
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        top = 1.0 if a.max() <= 1.0 else 255.0
        return np.clip(a / top, 0.0, 1.0).astype(np.float32)
    rgb = np.asarray(im.convert("RGB")).astype(np.int16)
    spread = int((rgb.max(axis=2) - rgb.min(axis=2)).max())
    if spread == 0:
        return rgb[..., 0].astype(np.float32) / 255.0
    if spread <= 8:  # lossy compression noise on a grey matte
        return rgb.mean(axis=2).astype(np.float32) / 255.0
    raise DatasetError(
        f"{path}: is a colour image (channels differ by up to {spread} levels), not a matte; "
        "give a greyscale alpha/mask or an RGBA cut-out"
    )


def read_trimap(path: str | os.PathLike) -> np.ndarray:
    """A trimap file as uint8 H×W with values 0 (background), 128 (unknown), 255 (foreground).

    Raises:
        DatasetError: unreadable, or values other than 0/128/255 (the offending values and
            their pixel counts are listed).
    """
    path = Path(path)
    im = _open(path)
    if im.mode in ("RGBA", "LA", "PA", "P"):
        im = im.convert("RGB")
    if im.mode == "RGB":
        rgb = np.asarray(im)
        if not ((rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])).all():
            raise DatasetError(f"{path}: trimap is a colour image; it must be greyscale 0/128/255")
        t = np.ascontiguousarray(rgb[..., 0])
    elif im.mode == "L":
        t = np.asarray(im)
    else:
        raise DatasetError(f"{path}: trimap has mode {im.mode}; it must be 8-bit greyscale")
    values, counts = np.unique(t, return_counts=True)
    bad = [(int(v), int(c)) for v, c in zip(values, counts) if v not in (0, 128, 255)]
    if bad:
        bad.sort(key=lambda vc: -vc[1])
        listed = ", ".join(f"{v} ({c} px)" for v, c in bad[:8])
        more = f" and {len(bad) - 8} more values" if len(bad) > 8 else ""
        raise DatasetError(
            f"{path}: trimap values must be 0, 128 or 255; found {listed}{more}; "
            "re-save it without anti-aliasing or resampling (nearest-neighbour only)"
        )
    return t


def load_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read a sample: (RGB uint8 H×W×3, alpha float32 H×W in [0, 1], trimap uint8 H×W | None).

    Raises:
        DatasetError: unreadable file, size mismatch, bad trimap values.
    """
    from ..io import ImageError, load_image

    try:
        image = load_image(sample.image)
    except ImageError as exc:
        raise DatasetError(str(exc)) from None
    alpha = read_matte(sample.alpha)
    shape = image.shape[:2]
    if alpha.shape != shape:
        raise DatasetError(_size_message(sample, "alpha", shape, alpha.shape))
    trimap = None
    if sample.trimap is not None:
        trimap = read_trimap(sample.trimap)
        if trimap.shape != shape:
            raise DatasetError(_size_message(sample, "trimap", shape, trimap.shape))
    return image, alpha, trimap
