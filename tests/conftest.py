"""Shared fixtures: real example photos, the dev set, the cached u2netp model."""

from __future__ import annotations

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
