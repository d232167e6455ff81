"""Synthetic clips with ground truth: a real foreground (with its real alpha) moving over a
real background photo. Used by the video benchmark and tests, never for training.

Frame t is ``I_t = α_t F_t + (1 − α_t) B + n_t`` where ``F_t``, ``α_t`` are the foreground and
its alpha warped by an affine motion ``M_t`` (translation, zoom, rotation or none), ``B`` is the
background resized to cover the frame, and ``n_t`` mild Gaussian sensor noise (σ = 2 grey
levels, new every frame, as a camera adds). The exact motion of the alpha gives the flow that
MESSDdt needs (no optical flow estimate involved).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["MOTIONS", "SynthFrame", "motion_matrix", "synth_clip"]

MOTIONS = ("translate", "zoom", "rotate", "static")


@dataclass
class SynthFrame:
    """``image`` RGB uint8 H×W×3, ``alpha`` float32 H×W in [0, 1] (ground truth), ``matrix``
    the 2×3 affine mapping foreground pixels to frame pixels."""

    image: np.ndarray
    alpha: np.ndarray
    matrix: np.ndarray


def motion_matrix(
    motion: str, t: float, *, fg_size: tuple[int, int], frame_size: tuple[int, int], amount: float = 1.0
) -> np.ndarray:
    """2×3 affine matrix for ``motion`` at phase ``t`` in [0, 1] (foreground → frame pixels).

    The foreground is scaled to 70 % of the frame height and centred; ``translate`` moves it
    by ±15 % of the frame width, ``zoom`` scales it 0.85..1.15, ``rotate`` turns it ±12°.
    """
    import cv2

    fh, fw = fg_size
    H, W = frame_size
    base = 0.7 * H / fh
    angle, scale, dx = 0.0, 1.0, 0.0
    phase = np.sin(2 * np.pi * t)
    if motion == "translate":
        dx = 0.15 * W * phase * amount
    elif motion == "zoom":
        scale = 1.0 + 0.15 * phase * amount
    elif motion == "rotate":
        angle = 12.0 * phase * amount
    elif motion != "static":
        raise ValueError(f"unknown motion {motion!r}; choose one of {', '.join(MOTIONS)}")
    m = cv2.getRotationMatrix2D((fw / 2, fh / 2), angle, base * scale)
    m[0, 2] += W / 2 - fw / 2 + dx
    m[1, 2] += H / 2 - fh / 2 + 0.05 * H
    return m


def synth_clip(
    foreground: np.ndarray,
    alpha: np.ndarray,
    background: np.ndarray,
    *,
    size: tuple[int, int] = (360, 640),
    frames: int = 24,
    motion: str = "translate",
    noise: float = 2.0,
    seed: int = 0,
) -> Iterator[SynthFrame]:
    """Frames of one clip.

    Args:
        foreground: RGB uint8 h×w×3 (the photo the alpha belongs to).
        alpha: float32 h×w in [0, 1], or uint8 0..255.
        background: RGB uint8, resized to cover ``size`` = (H, W).
        frames: number of frames (one period of the motion over the clip).
        motion: one of :data:`MOTIONS`.
        noise: σ of the per-frame Gaussian noise in grey levels (0 = none).
        seed: noise seed.
    """
    import cv2

    from ..pipeline.compose import _cover

    if alpha.dtype == np.uint8:
        alpha = alpha.astype(np.float32) / 255.0
    H, W = size
    back = _cover(background, (H, W)).astype(np.float32)
    fg = foreground.astype(np.float32)
    rng = np.random.default_rng(seed)
    for i in range(frames):
        m = motion_matrix(motion, i / max(frames, 1), fg_size=alpha.shape, frame_size=(H, W))
        a = cv2.warpAffine(
            alpha.astype(np.float32),
            m,
            (W, H),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        f = cv2.warpAffine(fg, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        a = np.clip(a, 0.0, 1.0)
        img = a[..., None] * f + (1.0 - a[..., None]) * back
        if noise:
            img += rng.normal(0.0, noise, img.shape).astype(np.float32)
        yield SynthFrame(np.clip(img + 0.5, 0, 255).astype(np.uint8), a, m)
