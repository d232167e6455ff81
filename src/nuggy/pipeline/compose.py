"""Compose a cut-out: RGBA, mask, or the subject on a colour, image or blurred background."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import UsageError

__all__ = ["Background", "parse_background", "compose", "NAMED_COLOURS"]

NAMED_COLOURS = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
}


@dataclass(frozen=True)
class Background:
    """What goes behind the subject.

    kind: ``transparent`` (RGBA out), ``colour`` (``colour`` = RGB 0..255), ``image``
    (``image`` = RGB uint8, resized to cover), ``blur`` (the photo itself, blurred with
    ``blur_sigma`` as a fraction of the image diagonal).
    """

    kind: Literal["transparent", "colour", "image", "blur"] = "transparent"
    colour: tuple[int, int, int] = (255, 255, 255)
    image: np.ndarray | None = None
    blur_sigma: float = 0.01


def parse_background(text: str | None, *, load=None, option: str = "--bg ") -> Background:
    """Parse a ``--bg`` value: ``white``, ``#00ff00``, ``#0f0``, ``255,0,0``, ``blur``,
    ``blur:0.02``, ``transparent``, or a path to an image (read with ``load``,
    default :func:`nuggy.io.load_image`). Errors start with ``option`` and the value
    (``--bg 'x': …``; the HTTP API passes ``bg=``)."""
    if text is None or text == "" or text.lower() in ("none", "transparent"):
        return Background()
    t = text.strip()
    low = t.lower()
    if low in NAMED_COLOURS:
        return Background("colour", colour=NAMED_COLOURS[low])
    m = re.fullmatch(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})", t)
    if m and (t.startswith("#") or not Path(t).exists()):
        h = m.group(1)
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        return Background("colour", colour=tuple(int(h[i : i + 2], 16) for i in (0, 2, 4)))
    m = re.fullmatch(r"(\d{1,3}),(\d{1,3}),(\d{1,3})", t)
    if m:
        rgb = tuple(int(v) for v in m.groups())
        if max(rgb) > 255:
            raise UsageError(f"{option}{text!r}: colour components must be 0..255")
        return Background("colour", colour=rgb)
    if low == "blur" or low.startswith("blur:"):
        sigma = 0.01
        if ":" in low:
            try:
                sigma = float(low.split(":", 1)[1])
            except ValueError:
                raise UsageError(
                    f"{option}{text!r}: blur strength must be a number, e.g. blur:0.02"
                ) from None
            if not 0 < sigma <= 0.5:
                raise UsageError(f"{option}{text!r}: blur strength is a fraction of the diagonal in (0, 0.5]")
        return Background("blur", blur_sigma=sigma)
    path = Path(t).expanduser()
    if path.is_file():
        if load is None:
            from ..io import load_image as load
        return Background("image", image=load(path))
    raise UsageError(
        f"{option}{text!r}: not a colour name ({', '.join(NAMED_COLOURS)}), hex colour (#00ff00), "
        "R,G,B triple, 'blur[:strength]', 'transparent', or an existing image file"
    )


def _cover(bg: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``bg`` to cover ``size`` = (H, W) keeping its aspect ratio, centre-cropped."""
    from ..runtime.preprocess import resize

    H, W = size
    h, w = bg.shape[:2]
    s = max(H / h, W / w)
    nh, nw = max(H, round(h * s)), max(W, round(w * s))
    r = resize(bg, (nh, nw))
    y, x = (nh - H) // 2, (nw - W) // 2
    return r[y : y + H, x : x + W]


def _blurred_background(image: np.ndarray, alpha: np.ndarray, sigma_frac: float) -> np.ndarray:
    """The photo blurred with the subject left out (normalised convolution), float32 0..1."""
    import cv2

    H, W = alpha.shape
    sigma = max(1.0, sigma_frac * float(np.hypot(H, W)))
    # Blur at reduced resolution: a large Gaussian on a downscaled image is the same picture
    # at a fraction of the cost.
    scale = min(1.0, 4.0 / sigma)
    small = (max(1, round(W * scale)), max(1, round(H * scale)))
    img = cv2.resize(image, small, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    w = 1.0 - cv2.resize(alpha, small, interpolation=cv2.INTER_AREA).astype(np.float32)
    w = np.clip(w, 0, 1) ** 2
    s = sigma * scale
    num = cv2.GaussianBlur(img * w[..., None], (0, 0), s)
    den = cv2.GaussianBlur(w, (0, 0), s)[..., None]
    plain = cv2.GaussianBlur(img, (0, 0), s)
    out = np.where(den > 1e-3, num / np.maximum(den, 1e-6), plain)
    return cv2.resize(out, (W, H), interpolation=cv2.INTER_LINEAR)


def _to_u8(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] → uint8, rounded to nearest."""
    y = np.multiply(x, np.float32(255.0), dtype=np.float32)
    y += np.float32(0.5)
    np.clip(y, 0, 255, out=y)
    return y.astype(np.uint8)


def compose(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    foreground: np.ndarray | None = None,
    background: Background | None = None,
) -> np.ndarray:
    """Put the subject on ``background``.

    Args:
        image: RGB uint8 H×W×3, the photo.
        alpha: float32 H×W in [0, 1].
        foreground: float32 H×W×3 in [0, 1], estimated foreground colour (``None``: the photo).
        background: see :class:`Background` (``None``: transparent).

    Returns:
        uint8 H×W×4 (RGBA, straight alpha) for a transparent background, else uint8 H×W×3.
    """
    bg = background or Background()
    if image.shape[:2] != alpha.shape:
        raise ValueError(f"image {image.shape[:2]} and alpha {alpha.shape} differ in size")
    if bg.kind == "transparent":
        return np.dstack([image if foreground is None else _to_u8(foreground), _to_u8(alpha)])
    fg = image.astype(np.float32) / 255.0 if foreground is None else foreground.astype(np.float32)
    a = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    if bg.kind == "colour":
        back = np.broadcast_to(np.asarray(bg.colour, dtype=np.float32) / 255.0, fg.shape)
    elif bg.kind == "image":
        if bg.image is None:
            raise ValueError("image background without an image")
        back = _cover(bg.image, alpha.shape).astype(np.float32) / 255.0
    elif bg.kind == "blur":
        back = _blurred_background(image, a, bg.blur_sigma)
    else:
        raise ValueError(f"unknown background kind {bg.kind!r}")
    out = fg * a[..., None] + back * (1.0 - a[..., None])
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
