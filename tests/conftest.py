"""Shared fixtures: real example photos, the dev set, the cached u2netp model, and synthetic
photos with degenerate (saturated, flat, grey) regions."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EVALDATA = ROOT.parent / "shared" / "evaldata"
DEV = EVALDATA / "alphamatting-dev"


@pytest.fixture(scope="session")
def u2netp_path() -> Path:
    """The verified u2netp ONNX file from the cache (make test fetches it); skip if absent."""
    from nuggy.sources import cached_path

    path = cached_path("u2netp")
    if path is None:
        pytest.skip("u2netp is not cached: run 'nuggy models pull u2netp' (make test does)")
    return path


@pytest.fixture(scope="session")
def dev_dir() -> Path:
    if not (DEV / "image").is_dir():
        pytest.skip(f"dev data not found at {DEV} (only in the project's shared checkout)")
    return DEV


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    from nuggy.io import load_image

    return load_image(EXAMPLES / "chelsea.jpg")


def make_saturated_photo(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A photo whose colour windows are degenerate, and a soft probability map across them.

    uint8 H×W×3 RGB: saturated white (255, 255, 255) background crossed by near-grey strands
    (G = B, R = G ± 1, so a window's colour covariance is almost rank 1: what made the colour
    guided filter's closed-form 3×3 inverse lose every digit, issue 19), a near-flat patch
    (200 ± 1) at the lower left and a colour-textured subject on the right (x > 0.55 w).
    The float32 H×W probability ramps from 0 at x = 0.3 w to 1 at x = 0.55 w.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.full((h, w, 3), 255, np.uint8)
    strands = np.sin(xx / 2.5 + 4 * np.sin(yy / 37)) > 0.3
    level = rng.integers(30, 160, (h, w))
    img[strands] = level[strands][:, None]
    red = img[..., 0].astype(np.int16) + rng.integers(-1, 2, (h, w)) * strands
    img[..., 0] = np.clip(red, 0, 255)
    flat = (yy > 0.7 * h) & (xx < 0.3 * w)
    img[flat] = (200 + rng.integers(-1, 2, (h, w)))[flat][:, None]
    subject = xx > 0.55 * w
    texture = np.stack(
        [
            128 + 80 * np.sin(xx / 7) * np.cos(yy / 11),
            100 + 60 * np.sin((xx + yy) / 5),
            90 + 70 * np.cos(xx / 3),
        ],
        -1,
    ) + rng.normal(0, 8, (h, w, 3))
    img[subject] = np.clip(texture[subject] + 0.5, 0, 255).astype(np.uint8)
    prob = np.clip((xx - 0.3 * w) / (0.25 * w), 0, 1).astype(np.float32)
    return img, prob


@pytest.fixture(scope="session")
def saturated_photo():
    """:func:`make_saturated_photo` (call it with ``h, w[, seed]``)."""
    return make_saturated_photo


@pytest.fixture
def no_float_warnings():
    """Every floating-point warning (divide by zero, overflow, invalid value) is an error."""
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield
