"""FBA Matting training data: foreground + alpha layouts, background folders, on-the-fly
compositing with the paper's augmentations, and the network's input encodings.

Foreground layouts (``root`` the dataset folder, ``split`` a sub-folder or null):

* ``composition1k``    Adobe Deep Image Matting / Composition-1k: ``<root>/<split>/fg/`` +
                       ``alpha/``; a split holding sub-sets that each have ``fg/`` + ``alpha/``
                       (``Training_set/Adobe-licensed images``, ``Training_set/Other``) reads
                       them all.
* ``distinctions646``  ``<root>/<split>/FG/`` + ``GT/`` (``split``: ``Train``, ``Test``).
* ``am2k``             ``<root>/<split>/fg/`` + ``mask/`` when AM-2k's ``fg/`` is there, else
                       ``original/`` + ``mask/`` (the photo as F: exact where α = 1, an
                       approximation in the soft band).
* ``generic``          ``<root>/<split>/fg/`` (or ``image/``) + ``alpha/`` (or ``mask/``).

Backgrounds: every image below the folders of ``data.backgrounds`` (recursively; COCO or
VOC as in the paper, or any photos).

One training item (:func:`compose_sample`, a pure function of its seed):

1. optionally merge a second foreground (``fba.two_fg``);
2. rescale foreground and alpha by a factor from ``fba.scale``, flip (``augment.hflip``);
3. crop a square of a side from ``fba.crop_sizes`` centred on a random pixel of the unknown
   region (0 < α < 1; the padded margin has α = 0), resize it to ``data.input_size``;
4. colour-jitter the foreground (``augment.color_jitter``); crop, resize and flip a random
   background; composite ``I = αF + (1 − α)B`` and quantise it to 8 bits as a photo is;
5. trimap from the alpha: unknown = ``dilate(α > 0, k) − erode(α = 1, k')`` with random
   elliptical kernels from ``fba.trimap_kernel``;
6. the encodings :class:`~nuggy.models.fba.FBAMatting` reads: the two-channel trimap, its six
   Gaussian distance-transform maps (:func:`~nuggy.models.fba.trimap_clicks`) and the
   ImageNet-normalised image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nuggy.eval.datasets import IMAGE_SUFFIXES, DatasetError, Sample, read_matte

from .config import AugmentConfig, DatasetConfig, FBAConfig
from .data import SourceDataset, _files, _jitter, _listing, _match, _split_root

__all__ = [
    "find_matting_samples",
    "open_matting_source",
    "list_backgrounds",
    "open_fba_val",
    "trimap_from_alpha",
    "compose_sample",
    "encode_inputs",
    "FBATrainSet",
    "FBAValSet",
]


def _pick_dir(base: Path, names: Sequence[str]) -> Path | None:
    for n in names:
        if (base / n).is_dir():
            return base / n
    return None


def _pairs(base: Path, fg_names: Sequence[str], alpha_names: Sequence[str], layout: str) -> list[Sample]:
    fg_dir, a_dir = _pick_dir(base, fg_names), _pick_dir(base, alpha_names)
    if fg_dir is None or a_dir is None:
        have = sorted(d.name for d in base.iterdir() if d.is_dir())
        raise DatasetError(
            f"{base}: the {layout} layout expects {' or '.join(f + '/' for f in fg_names)} and "
            f"{' or '.join(a + '/' for a in alpha_names)}; sub-folders here: "
            f"{_listing(have) or 'none'}"
        )
    return _match(base, _files(fg_dir), _files(a_dir), f"{fg_dir.name}/", f"{a_dir.name}/")


def find_matting_samples(root: str | os.PathLike, layout: str, split: str | None = None) -> list[Sample]:
    """Foreground/alpha pairs (``Sample.image`` is the foreground) of one dataset split.

    Raises:
        DatasetError: missing root, split or sub-folder (named), unmatched files, no pairs.
    """
    root = Path(root).expanduser()
    if layout == "composition1k":
        base = _split_root(root, split, layout, "Training_set/, Test_set/ …")
        if (base / "fg").is_dir():
            samples = _pairs(base, ["fg"], ["alpha"], layout)
        else:
            subs = [d for d in sorted(base.iterdir()) if (d / "fg").is_dir() and (d / "alpha").is_dir()]
            if not subs:
                samples = _pairs(base, ["fg"], ["alpha"], layout)  # raises, naming the folders
            else:
                samples = []
                for d in subs:
                    samples += [Sample(f"{d.name}/{s.name}", s.image, s.alpha)
                                for s in _pairs(d, ["fg"], ["alpha"], layout)]  # fmt: skip
    elif layout == "distinctions646":
        base = _split_root(root, split, layout, "Train/, Test/")
        samples = _pairs(base, ["FG", "fg"], ["GT", "alpha"], layout)
    elif layout == "am2k":
        base = _split_root(root, split, layout, "train/, validation/")
        samples = _pairs(base, ["fg", "original"], ["mask", "alpha"], layout)
    elif layout == "generic":
        base = _split_root(root, split, layout, "a sub-folder")
        samples = _pairs(base, ["fg", "image"], ["alpha", "mask"], layout)
    else:
        raise DatasetError(f"layout {layout!r} has no foreground/alpha pairs for compositing")
    if not samples:
        raise DatasetError(
            f"{root}{'/' + split if split else ''}: no foreground/alpha pairs ({layout} layout)"
        )
    return samples


def open_matting_source(cfg: DatasetConfig) -> SourceDataset:
    """The training split of a configured foreground dataset."""
    try:
        samples = find_matting_samples(cfg.root, cfg.layout, cfg.split)
    except DatasetError as exc:
        raise DatasetError(f"dataset {cfg.name!r}: {exc}") from None
    return SourceDataset(cfg.name, cfg.layout, Path(cfg.root), samples)


def list_backgrounds(folders: Sequence[str]) -> list[Path]:
    """Every image file below ``folders`` (recursive, sorted).

    Raises:
        DatasetError: a folder is missing, or none of them holds an image.
    """
    out: list[Path] = []
    for f in folders:
        p = Path(f).expanduser()
        if not p.is_dir():
            raise DatasetError(f"data.backgrounds: {p}: folder not found")
        found = sorted(
            x for x in p.rglob("*")
            if x.is_file() and not x.name.startswith(".") and x.suffix.lower() in IMAGE_SUFFIXES
        )  # fmt: skip
        if not found:
            raise DatasetError(f"data.backgrounds: {p}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        out += found
    return out


def open_fba_val(cfg) -> list[Sample]:
    """The validation samples of ``fba.val.root`` (a list; empty without a root)."""
    from nuggy.eval.datasets import open_dataset

    v = cfg.fba.val
    if not v.root:
        return []
    try:
        ds = open_dataset(v.root, layout=v.layout, split=v.split)
    except DatasetError as exc:
        raise DatasetError(f"fba.val.root: {exc}") from None
    if not ds.samples:
        raise DatasetError(f"fba.val.root: {v.root}: no image/alpha pairs")
    return list(ds.samples)


# ---------------------------------------------------------------------------------------------
# augmentation (pure numpy / OpenCV)


def _ellipse(k: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def trimap_from_alpha(alpha: np.ndarray, k_dilate: int, k_erode: int) -> np.ndarray:
    """``alpha`` float H×W in [0, 1] → uint8 trimap (0 / 128 / 255): unknown is
    ``dilate(α > 0, k_dilate) − erode(α = 1, k_erode)`` (elliptical kernels, pixels)."""
    import cv2

    a = np.asarray(alpha)
    fg = (a >= 1.0 - 1e-6).astype(np.uint8)
    anything = (a > 1e-6).astype(np.uint8)
    sure = cv2.erode(fg, _ellipse(max(1, int(k_erode))))
    maybe = cv2.dilate(anything, _ellipse(max(1, int(k_dilate))))
    tri = np.where(maybe > 0, 128, 0).astype(np.uint8)
    tri[sure > 0] = 255
    return tri


def _resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    down = a.shape[0] > h or a.shape[1] > w
    return cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)


def _merge_two(fg1, a1, fg2, a2):
    """Second foreground behind the first: ``α = α₁ + α₂(1 − α₁)``, F the matching blend."""
    h, w = a1.shape
    fg2, a2 = _resize(fg2, w, h), _resize(a2, w, h)
    f1, f2 = fg1.astype(np.float32), fg2.astype(np.float32)
    alpha = a1 + a2 * (1 - a1)
    num = a1[..., None] * f1 + ((1 - a1) * a2)[..., None] * f2
    fg = np.where(alpha[..., None] > 1e-6, num / np.maximum(alpha, 1e-6)[..., None], f1)
    return np.clip(fg, 0, 255).round().astype(np.uint8), np.clip(alpha, 0, 1).astype(np.float32)


def _bg_crop(bg: np.ndarray, hw: tuple[int, int], rng: np.random.Generator, hflip: float) -> np.ndarray:
    h, w = hw
    H, W = bg.shape[:2]
    s = min(H / h, W / w) * rng.uniform(0.6, 1.0)  # a crop of the target aspect, 60–100 %
    ch, cw = max(1, min(H, round(h * s))), max(1, min(W, round(w * s)))
    y0, x0 = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
    out = _resize(bg[y0 : y0 + ch, x0 : x0 + cw], w, h)
    if rng.random() < hflip:
        out = out[:, ::-1]
    return out


def compose_sample(
    fg: np.ndarray,
    alpha: np.ndarray,
    bg: np.ndarray,
    hw: tuple[int, int],
    fba: FBAConfig,
    augment: AugmentConfig,
    seed: int,
    *,
    fg2: np.ndarray | None = None,
    alpha2: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One composite (deterministic for ``seed``; inputs never modified).

    Args:
        fg, bg: RGB uint8 H×W×3 (any sizes); alpha: float32 H×W in [0, 1] (``fg``'s size).
        fg2, alpha2: a second foreground merged in front of the background (``fba.two_fg``).

    Returns:
        ``image``, ``fg``, ``bg`` float32 h×w×3 in [0, 1] (``image`` 8-bit quantised),
        ``alpha`` float32 h×w, ``trimap`` uint8 h×w (0/128/255).
    """
    rng = np.random.default_rng(seed)
    h, w = hw
    if fg2 is not None and alpha2 is not None:
        fg, alpha = _merge_two(fg, alpha, fg2, alpha2)
    s = rng.uniform(fba.scale[0], fba.scale[1])
    H, W = alpha.shape
    nh, nw = max(8, round(H * s)), max(8, round(W * s))
    fg, alpha = _resize(fg, nw, nh), np.clip(_resize(alpha, nw, nh), 0, 1)
    if rng.random() < augment.hflip:
        fg, alpha = fg[:, ::-1], alpha[:, ::-1]
    # square crop centred on an unknown pixel; pad (α = 0, edge colours) where it overhangs
    c = int(rng.choice(fba.crop_sizes))
    unknown = np.argwhere((alpha > 1e-3) & (alpha < 1 - 1e-3))
    if unknown.size == 0:
        unknown = np.argwhere(alpha > 0.5)
    if unknown.size:
        cy, cx = unknown[int(rng.integers(0, len(unknown)))]
    else:
        cy, cx = int(rng.integers(0, nh)), int(rng.integers(0, nw))
    half = c // 2
    pad = ((half, half + 1), (half, half + 1))
    fgp = np.pad(fg, (*pad, (0, 0)), mode="edge")
    ap = np.pad(alpha, pad, mode="constant")
    y0 = int(cy) + half - c // 2 + int(rng.integers(-(c // 8), c // 8 + 1))
    x0 = int(cx) + half - c // 2 + int(rng.integers(-(c // 8), c // 8 + 1))
    y0 = int(np.clip(y0, 0, ap.shape[0] - c))
    x0 = int(np.clip(x0, 0, ap.shape[1] - c))
    crop_fg = _resize(np.ascontiguousarray(fgp[y0 : y0 + c, x0 : x0 + c]), w, h)
    crop_a = np.clip(_resize(np.ascontiguousarray(ap[y0 : y0 + c, x0 : x0 + c]), w, h), 0, 1)
    j = augment.color_jitter
    if rng.random() < j.p:
        crop_fg = _jitter(crop_fg, rng, j)
    back = _bg_crop(bg, hw, rng, augment.hflip)
    if rng.random() < j.p:
        back = _jitter(np.ascontiguousarray(back), rng, j)
    f = crop_fg.astype(np.float32) / 255.0
    b = back.astype(np.float32) / 255.0
    a = crop_a.astype(np.float32)
    image = a[..., None] * f + (1.0 - a[..., None]) * b
    image = np.round(image * 255.0) / 255.0
    k_lo, k_hi = fba.trimap_kernel
    tri = trimap_from_alpha(a, int(rng.integers(k_lo, k_hi + 1)), int(rng.integers(k_lo, k_hi + 1)))
    return {"image": image.astype(np.float32), "fg": f, "bg": b, "alpha": a, "trimap": tri}


def encode_inputs(image: np.ndarray, trimap: np.ndarray, clicks_L: float = 320.0) -> dict[str, np.ndarray]:
    """FBA's inputs from ``image`` float32 H×W×3 in [0, 1] and a uint8 trimap: ``image``
    (3×H×W), ``image_n`` (ImageNet-normalised, 3×H×W), ``trimap`` (two-channel, 2×H×W) and
    ``clicks`` (6×H×W), all float32."""
    from nuggy.models.fba import normalise_image, trimap_clicks, trimap_two_channel

    two = trimap_two_channel(trimap)
    return {
        "image": np.ascontiguousarray(image.transpose(2, 0, 1), np.float32),
        "image_n": np.ascontiguousarray(normalise_image(image).transpose(2, 0, 1), np.float32),
        "trimap": np.ascontiguousarray(two.transpose(2, 0, 1), np.float32),
        "clicks": trimap_clicks(two, L=clicks_L),
    }


# ---------------------------------------------------------------------------------------------
# torch datasets (torch imported lazily)


def _load_fg(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    from nuggy.io import ImageError, load_image

    try:
        fg = load_image(sample.image)
    except ImageError as exc:
        raise DatasetError(str(exc)) from None
    alpha = read_matte(sample.alpha)
    if fg.shape[:2] != alpha.shape:
        raise DatasetError(
            f"{sample.name}: foreground {sample.image} is {fg.shape[1]}×{fg.shape[0]} but alpha "
            f"{sample.alpha} is {alpha.shape[1]}×{alpha.shape[0]}"
        )
    return fg, alpha


class FBATrainSet:
    """Map-style dataset of composites, indexed by the ``(source, sample, seed)`` triples of
    :class:`~nuggy.train.mixture.MixtureSampler`.

    Items (torch float32): ``image``, ``image_n``, ``fg``, ``bg`` 3×h×w; ``trimap`` 2×h×w;
    ``clicks`` 6×h×w; ``alpha`` 1×h×w; ``source`` int.
    """

    def __init__(
        self,
        sources: Sequence[SourceDataset],
        backgrounds: Sequence[Path],
        hw: tuple[int, int],
        fba: FBAConfig,
        augment: AugmentConfig,
    ) -> None:
        if not backgrounds:
            raise DatasetError("data.backgrounds: no background images")
        self.sources = list(sources)
        self.backgrounds = list(backgrounds)
        self.hw = hw
        self.fba = fba
        self.augment = augment

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __getitem__(self, key) -> dict:
        import torch

        from nuggy.io import ImageError, load_image

        src_id, idx, seed = (int(v) for v in key)
        rng = np.random.default_rng(seed)
        src = self.sources[src_id]
        fg, alpha = _load_fg(src.samples[idx])
        fg2 = a2 = None
        if self.fba.two_fg > 0 and len(src) > 1 and rng.random() < self.fba.two_fg:
            other = int(rng.integers(0, len(src) - 1))
            fg2, a2 = _load_fg(src.samples[other + (other >= idx)])
        bg_path = self.backgrounds[int(rng.integers(0, len(self.backgrounds)))]
        try:
            bg = load_image(bg_path)
        except ImageError as exc:
            raise DatasetError(f"background {bg_path}: {exc}") from None
        comp = compose_sample(fg, alpha, bg, self.hw, self.fba, self.augment,
                              int(rng.integers(0, 2**31 - 1)), fg2=fg2, alpha2=a2)  # fmt: skip
        enc = encode_inputs(comp["image"], comp["trimap"], self.fba.clicks_L)
        item = {k: torch.from_numpy(v) for k, v in enc.items()}
        item["fg"] = torch.from_numpy(np.ascontiguousarray(comp["fg"].transpose(2, 0, 1)))
        item["bg"] = torch.from_numpy(np.ascontiguousarray(comp["bg"].transpose(2, 0, 1)))
        item["alpha"] = torch.from_numpy(comp["alpha"][None].copy())
        item["source"] = src_id
        return item


class FBAValSet:
    """Validation photos with ground truth: items ``{"image": uint8 H×W×3, "alpha": float32
    H×W, "trimap": uint8 H×W, "name": str}`` (trimap made from the alpha with a fixed band of
    ``band`` pixels when the dataset has none)."""

    def __init__(self, samples: Sequence[Sample], band: int, limit: int | None = None) -> None:
        n = len(samples) if limit is None else min(limit, len(samples))
        self.samples = list(samples)[:n]
        self.band = band

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        from nuggy.eval.datasets import load_sample

        s = self.samples[i]
        image, alpha, trimap = load_sample(s)
        if trimap is None:
            k = 2 * self.band + 1
            trimap = trimap_from_alpha(alpha, k, k)
        return {"image": image, "alpha": alpha, "trimap": trimap, "name": s.name}
