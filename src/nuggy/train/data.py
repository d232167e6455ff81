"""Training data: find (image, mask) pairs in the public datasets' layouts, augment, batch.

Layouts (``root`` is the dataset folder; ``split`` picks a part of it):

* ``dis5k``         ``<root>/<split>/im/*.jpg`` + ``gt/*.png`` (``split``: ``DIS-TR``, ``DIS-VD``)
* ``am2k``          ``<root>/<split>/original/`` + ``mask/`` (``split``: ``train``, ``validation``)
* ``thinobject5k``  ``<root>/images/*.jpg`` + ``masks/*.png``; ``split`` names a list file
                    ``<root>/list/<split>.txt`` (one mask file name a line); no list: all pairs
* ``trans10k``      ``<root>/<split>/images/X.jpg`` + ``masks/X_mask.png`` (``split``:
                    ``train``, ``validation/easy`` …); colour masks (things red, stuff white)
                    are read as one foreground class
* ``generic``       ``<root>/<split>/image/`` + ``alpha/`` (or ``mask/``)

The DIS5K, AM-2k and generic layouts reuse :func:`nuggy.eval.datasets.open_dataset`.
Errors (:class:`~nuggy.eval.datasets.DatasetError`) list the unmatched files, name the
empty folder, or say which folder is missing.

Augmentation is a pure function of a per-sample seed drawn by the mixture sampler, so a
sample looks the same whichever worker loads it and after a resume.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nuggy.eval.datasets import IMAGE_SUFFIXES, DatasetError, Sample, open_dataset, read_matte

from .config import AugmentConfig, DatasetConfig

__all__ = [
    "DatasetError",
    "SourceDataset",
    "find_samples",
    "open_source",
    "read_mask",
    "augment_pair",
    "resize_pair",
    "normalise",
    "TrainSet",
    "ValSet",
    "collate_val",
]

_LISTED = 10


def _listing(items: Sequence[str]) -> str:
    more = len(items) - _LISTED
    return ", ".join(items[:_LISTED]) + (f" … and {more} more" if more > 0 else "")


@dataclass
class SourceDataset:
    """The samples of one configured dataset split."""

    name: str
    layout: str
    root: Path
    samples: list[Sample]

    def __len__(self) -> int:
        return len(self.samples)


def _files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found")
    return {
        f.stem: f
        for f in sorted(folder.iterdir())
        if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
    }


def _split_root(root: Path, split: str | None, layout: str, expected: str) -> Path:
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found ({layout} layout)")
    if split is None:
        return root
    sub = root / split
    if not sub.is_dir():
        have = sorted(d.name for d in root.iterdir() if d.is_dir())
        raise DatasetError(
            f"{root}: no split {split!r} ({layout} layout expects {expected}); "
            f"sub-folders here: {_listing(have) or 'none'}"
        )
    return sub


def _thinobject5k(root: Path, split: str | None) -> list[Sample]:
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found (thinobject5k layout)")
    images, masks = _files(root / "images"), _files(root / "masks")
    if split is not None:
        lst = root / "list" / f"{split}.txt"
        if not lst.is_file():
            have = sorted(p.stem for p in (root / "list").glob("*.txt"))
            raise DatasetError(
                f"{lst}: split list not found; lists here: {_listing(have) or 'none'} "
                "(or set split: null to use every pair)"
            )
        stems = [Path(x.strip()).stem for x in lst.read_text().splitlines() if x.strip()]
        missing = [s for s in stems if s not in images or s not in masks]
        if missing:
            raise DatasetError(
                f"{root}: {len(missing)} entr(ies) of {lst.name} lack an image in images/ or a "
                f"mask in masks/: {_listing(missing)}"
            )
        return [Sample(s, images[s], masks[s]) for s in stems]
    return _match(root, images, masks, "images/", "masks/")


def _trans10k(root: Path, split: str | None) -> list[Sample]:
    base = _split_root(root, split, "trans10k", "train/, validation/easy/ …")
    images = _files(base / "images")
    raw = _files(base / "masks")
    masks = {(s[: -len("_mask")] if s.endswith("_mask") else s): p for s, p in raw.items()}
    return _match(base, images, masks, "images/", "masks/ (X_mask.png)")


def _match(
    root: Path, images: dict[str, Path], masks: dict[str, Path], im_dir: str, mask_dir: str
) -> list[Sample]:
    no_mask = sorted(set(images) - set(masks))
    no_image = sorted(set(masks) - set(images))
    problems = []
    if no_mask:
        problems.append(f"{len(no_mask)} image(s) in {im_dir} have no mask: {_listing(no_mask)}")
    if no_image:
        problems.append(f"{len(no_image)} mask(s) in {mask_dir} have no image: {_listing(no_image)}")
    if problems:
        raise DatasetError(
            f"{root}: unmatched files:\n  "
            + "\n  ".join(problems)
            + "\nadd the missing files or remove the extra ones"
        )
    return [Sample(s, images[s], masks[s]) for s in sorted(images)]


def find_samples(root: str | os.PathLike, layout: str, split: str | None = None) -> list[Sample]:
    """The (image, mask) pairs of one dataset split.

    Raises:
        DatasetError: bad root or split, unmatched files (listed), no images.
    """
    root = Path(root).expanduser()
    if layout == "thinobject5k":
        samples = _thinobject5k(root, split)
    elif layout == "trans10k":
        samples = _trans10k(root, split)
    elif layout in ("dis5k", "am2k", "generic"):
        if not root.is_dir():
            raise DatasetError(f"{root}: dataset folder not found ({layout} layout)")
        samples = open_dataset(root, layout=layout, split=split).samples
    else:
        raise DatasetError(f"unknown layout {layout!r}")
    if not samples:
        raise DatasetError(f"{root}{'/' + split if split else ''}: no image/mask pairs ({layout})")
    return samples


def open_source(cfg: DatasetConfig, *, val: bool = False) -> SourceDataset:
    """Open the training (or, with ``val``, the validation) split of a configured dataset."""
    split = cfg.val_split if val else cfg.split
    try:
        samples = find_samples(cfg.root, cfg.layout, split)
    except DatasetError as exc:
        raise DatasetError(f"dataset {cfg.name!r}: {exc}") from None
    return SourceDataset(cfg.name, cfg.layout, Path(cfg.root), samples)


# ---------------------------------------------------------------------------------------------
# reading and augmentation (numpy / OpenCV)


def read_mask(path: str | os.PathLike, layout: str) -> np.ndarray:
    """A mask / alpha file as float32 H×W in [0, 1]. Trans10K colour masks: any lit channel."""
    if layout == "trans10k":
        from nuggy.io import open_image  # same limits and errors as every other reader

        a = np.asarray(open_image(path).convert("RGB"))
        return (a.max(axis=2) > 127).astype(np.float32)
    return read_matte(path)


def _load(sample: Sample, layout: str, masks_only: bool) -> tuple[np.ndarray | None, np.ndarray]:
    from nuggy.io import ImageError, load_image

    mask = read_mask(sample.alpha, layout)
    if masks_only:
        return None, mask
    try:
        image = load_image(sample.image)
    except ImageError as exc:
        raise DatasetError(str(exc)) from None
    if image.shape[:2] != mask.shape:
        raise DatasetError(
            f"{sample.name}: image {sample.image} is {image.shape[1]}×{image.shape[0]} but mask "
            f"{sample.alpha} is {mask.shape[1]}×{mask.shape[0]}"
        )
    return image, mask


def _resize(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = hw
    down = a.shape[0] > h or a.shape[1] > w
    return cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)


def resize_pair(
    image: np.ndarray | None, mask: np.ndarray, hw: tuple[int, int]
) -> tuple[np.ndarray | None, np.ndarray]:
    return (None if image is None else _resize(image, hw)), _resize(mask, hw)


def _jitter(image: np.ndarray, rng: np.random.Generator, cfg) -> np.ndarray:
    import cv2

    x = image.astype(np.float32)
    ops = rng.permutation(4)
    for op in ops:
        if op == 0 and cfg.brightness > 0:
            x *= rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
        elif op == 1 and cfg.contrast > 0:
            mean = float((x @ np.float32([0.299, 0.587, 0.114])).mean())
            x = (x - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
        elif op == 2 and cfg.saturation > 0:
            grey = (x @ np.float32([0.299, 0.587, 0.114]))[..., None]
            x = (x - grey) * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) + grey
        elif op == 3 and cfg.hue > 0:
            hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)
            shift = int(round(rng.uniform(-cfg.hue, cfg.hue) * 256))
            hsv[..., 0] = (hsv[..., 0].astype(np.int16) + shift) % 256
            x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
        np.clip(x, 0, 255, out=x)
    return x.round().astype(np.uint8)


def augment_pair(
    image: np.ndarray | None,
    mask: np.ndarray,
    hw: tuple[int, int],
    cfg: AugmentConfig,
    seed: int,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Random resized crop → resize to ``hw`` → horizontal flip → colour jitter.

    Deterministic for a given ``seed``. ``image`` may be ``None`` (mask-only, GT encoder).
    """
    rng = np.random.default_rng(seed)
    H, W = mask.shape
    c = cfg.random_resized_crop
    y0, x0, ch, cw = 0, 0, H, W
    if c.enabled:
        area = H * W
        for _ in range(10):
            target = area * rng.uniform(c.scale[0], c.scale[1])
            ratio = float(np.exp(rng.uniform(np.log(c.ratio[0]), np.log(c.ratio[1]))))
            cw_ = int(round(np.sqrt(target * ratio)))
            ch_ = int(round(np.sqrt(target / ratio)))
            if 0 < cw_ <= W and 0 < ch_ <= H:
                ch, cw = ch_, cw_
                y0 = int(rng.integers(0, H - ch + 1))
                x0 = int(rng.integers(0, W - cw + 1))
                break
    mask = mask[y0 : y0 + ch, x0 : x0 + cw]
    if image is not None:
        image = image[y0 : y0 + ch, x0 : x0 + cw]
    image, mask = resize_pair(image, mask, hw)
    if rng.random() < cfg.hflip:
        mask = mask[:, ::-1]
        image = None if image is None else image[:, ::-1]
    j = cfg.color_jitter
    if image is not None and rng.random() < j.p:
        image = _jitter(image, rng, j)
    return (None if image is None else np.ascontiguousarray(image)), np.ascontiguousarray(mask)


def normalise(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """RGB uint8 H×W×3 → float32 3×H×W, ``(x − mean) / std`` in 0..255 units."""
    x = image.astype(np.float32)
    x -= np.asarray(mean, np.float32)
    x /= np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


# ---------------------------------------------------------------------------------------------
# torch datasets (torch imported lazily, inside the methods)


class TrainSet:
    """Map-style dataset over several sources; indexed by ``(source, sample, seed)`` triples
    drawn by :class:`~nuggy.train.mixture.MixtureSampler`.

    Items: ``{"image": float32 3×H×W (normalised; absent when masks_only), "mask": float32
    1×H×W in [0, 1], "source": int}``.
    """

    def __init__(
        self,
        sources: Sequence[SourceDataset],
        hw: tuple[int, int],
        augment: AugmentConfig,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        masks_only: bool = False,
    ) -> None:
        self.sources = list(sources)
        self.hw = hw
        self.augment = augment
        self.mean, self.std = tuple(mean), tuple(std)
        self.masks_only = masks_only

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __getitem__(self, key) -> dict:
        import torch

        src_id, idx, seed = (int(v) for v in key)
        src = self.sources[src_id]
        image, mask = _load(src.samples[idx], src.layout, self.masks_only)
        image, mask = augment_pair(image, mask, self.hw, self.augment, seed)
        item = {"mask": torch.from_numpy(mask[None].astype(np.float32)), "source": src_id}
        if image is not None:
            item["image"] = torch.from_numpy(normalise(image, self.mean, self.std))
        return item


class ValSet:
    """Validation items of one source: image resized to the model input, full-size mask.

    Items: ``{"image": 3×h×w, "mask_input": 1×h×w (the mask at input size, for the GT
    encoder), "gt": float32 H×W numpy, "name": str}``. Use :func:`collate_val`.
    """

    def __init__(
        self,
        source: SourceDataset,
        hw: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        *,
        limit: int | None = None,
        masks_only: bool = False,
        indices: Sequence[int] | None = None,
    ) -> None:
        self.source = source
        self.hw = hw
        self.mean, self.std = tuple(mean), tuple(std)
        self.masks_only = masks_only
        n = len(source) if limit is None else min(limit, len(source))
        self.indices = list(range(n)) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        import torch

        s = self.source.samples[self.indices[i]]
        image, gt = _load(s, self.source.layout, self.masks_only)
        small_img, small_mask = resize_pair(image, gt, self.hw)
        item = {
            "mask_input": torch.from_numpy(small_mask[None].astype(np.float32)),
            "gt": gt,
            "name": s.name,
        }
        if small_img is not None:
            item["image"] = torch.from_numpy(normalise(small_img, self.mean, self.std))
        return item


def collate_val(items: list[dict]) -> dict:
    """Stack the tensors; keep ``gt`` (different sizes) and ``name`` as lists."""
    import torch

    out: dict = {"gt": [it["gt"] for it in items], "name": [it["name"] for it in items]}
    for k in ("image", "mask_input"):
        if k in items[0]:
            out[k] = torch.stack([it[k] for it in items])
    return out
