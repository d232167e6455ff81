"""Composition-1k builder (nuggy.eval.composite): arithmetic, fitting, trimaps, determinism."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nuggy.eval.composite import (
    assign_backgrounds,
    build_composition,
    composite,
    fit_background,
    linear_to_srgb,
    make_trimap,
    srgb_to_linear,
)
from nuggy.eval.datasets import DatasetError, load_sample, open_dataset


def png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_composite_equals_alpha_blend_on_known_arrays():
    F = np.array([[[255, 0, 0], [0, 255, 0]]], np.uint8)
    B = np.array([[[0, 0, 255], [255, 255, 255]]], np.uint8)
    a = np.array([[0.25, 1.0]], np.float32)
    out = composite(F, a, B)
    expected = np.array([[[0.25, 0, 0.75], [0, 1, 0]]], np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-7)
    rng = np.random.default_rng(1)
    F = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    B = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    a8 = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    al = a8[..., None] / 255.0
    np.testing.assert_allclose(composite(F, a8, B), al * F / 255.0 + (1 - al) * B / 255.0, atol=1e-6)


def test_composite_linear_light():
    F = np.full((1, 1, 3), 255, np.uint8)
    B = np.zeros((1, 1, 3), np.uint8)
    out = composite(F, np.array([[0.5]], np.float32), B, linear=True)
    # half of white in linear light is sRGB ~0.735, not 0.5
    np.testing.assert_allclose(out, linear_to_srgb(np.full((1, 1, 3), 0.5)), atol=1e-6)
    assert abs(float(out[0, 0, 0]) - 0.7354) < 1e-3
    x = np.linspace(0, 1, 11, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)
    with pytest.raises(ValueError, match="shape mismatch"):
        composite(F, np.zeros((2, 2)), B)


def test_fit_background_dim_and_cover():
    bg = np.arange(10 * 20 * 3, dtype=np.uint32).reshape(10, 20, 3).astype(np.uint8)
    # big enough: DIM leaves it at scale 1 and takes the top-left crop
    crop, geo = fit_background(bg, (6, 8), fit="dim")
    assert geo["scale"] == 1.0 and geo["crop"] == [0, 0, 8, 6]
    np.testing.assert_array_equal(crop, bg[:6, :8])
    # too small: DIM upscales just enough to cover
    crop, geo = fit_background(bg, (30, 20), fit="dim")
    assert crop.shape == (30, 20, 3) and geo["scale"] == 3.0 and geo["resized"] == [60, 30]
    # cover scales down too and takes the centre
    crop, geo = fit_background(bg, (5, 5), fit="cover")
    assert crop.shape == (5, 5, 3) and geo["scale"] == 0.5 and geo["resized"] == [10, 5]
    assert geo["crop"] == [2, 0, 5, 5]
    with pytest.raises(ValueError, match="fit must be"):
        fit_background(bg, (5, 5), fit="stretch")


def test_make_trimap_dilates_unknown():
    a = np.zeros((40, 40), np.uint8)
    a[10:30, 10:30] = 255
    a[10:30, 20] = 100  # a fractional line inside the square
    t = make_trimap(a, radius=3)
    assert set(np.unique(t)) == {0, 128, 255}
    assert t[0, 0] == 0 and t[15, 14] == 255
    assert t[15, 20] == 128 and t[15, 22] == 128 and t[15, 24] == 255  # radius 3 around the line
    assert t[15, 10] == 128 and t[15, 8] == 128 and t[15, 6] == 0  # hard edge gets a band too
    t0 = make_trimap(a, radius=0)
    assert (t0 == 128).sum() == 20 and t0[15, 10] == 255
    np.testing.assert_array_equal(make_trimap(a.astype(np.float32) / 255.0, radius=3), t)


def test_assign_backgrounds_deterministic_and_without_repeats():
    bgs = [f"b{i}" for i in range(12)]
    p1 = assign_backgrounds(3, bgs, 4, seed=7)
    assert p1 == assign_backgrounds(3, bgs, 4, seed=7)
    assert p1 != assign_backgrounds(3, bgs, 4, seed=8)
    flat = [b for row in p1 for b in row]
    assert len(flat) == 12 and len(set(flat)) == 12
    with pytest.warns(UserWarning, match="reused"):
        p2 = assign_backgrounds(2, bgs[:3], 2, seed=0)
    assert all(len(row) == 2 for row in p2)


def _inputs(root: Path, n_fg: int = 2, n_bg: int = 5) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    for i in range(n_fg):
        h, w = 20 + 4 * i, 24
        png(root / "fg" / f"f{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        a = np.zeros((h, w), np.uint8)
        a[4:-4, 5:-5] = 255
        a[3, 5:-5] = 77
        png(root / "alpha" / f"f{i}.png", a)
    for j in range(n_bg):  # various sizes: some smaller than the foregrounds
        png(root / "bg" / f"b{j}.jpg", rng.integers(0, 256, (10 + 9 * j, 15 + 7 * j, 3), dtype=np.uint8))
    return root / "fg", root / "alpha", root / "bg"


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.png"))
    }


def test_build_composition_correct_and_deterministic(tmp_path):
    fg, alpha, bg = _inputs(tmp_path / "in")
    m = build_composition(fg, alpha, bg, tmp_path / "out1", n=2, seed=3)
    assert m["protocol"] == "composition-1k" and len(m["items"]) == 4
    assert [it["name"] for it in m["items"]] == ["f0_00", "f0_01", "f1_00", "f1_01"]
    assert len({it["bg"] for it in m["items"]}) == 4  # no background reused
    out = tmp_path / "out1"
    for sub in ("image", "alpha", "trimap", "fg", "bg"):
        assert sorted(p.name for p in (out / sub).iterdir()) == [f"{it['name']}.png" for it in m["items"]]
    # every composite is exactly round(255 · (α·F + (1 − α)·B)) of what was written
    for it in m["items"]:
        name = it["name"]
        img = np.asarray(Image.open(out / "image" / f"{name}.png")).astype(np.float64)
        F = np.asarray(Image.open(out / "fg" / f"{name}.png")).astype(np.float64)
        B = np.asarray(Image.open(out / "bg" / f"{name}.png")).astype(np.float64)
        a = np.asarray(Image.open(out / "alpha" / f"{name}.png")).astype(np.float64)[..., None] / 255
        assert F.shape == B.shape == img.shape
        np.testing.assert_array_equal(img, np.round(a * F + (1 - a) * B))
        src_a = np.asarray(Image.open(it["alpha"]))
        np.testing.assert_array_equal(a[..., 0] * 255, src_a)
    # same seed: byte-identical; manifest records the sources
    build_composition(fg, alpha, bg, tmp_path / "out2", n=2, seed=3)
    assert _digest(out) == _digest(tmp_path / "out2")
    assert (
        json.loads((out / "manifest.json").read_text())["items"]
        == json.loads((tmp_path / "out2" / "manifest.json").read_text())["items"]
    )
    other = build_composition(fg, alpha, bg, tmp_path / "out3", n=2, seed=4)
    assert [it["bg"] for it in other["items"]] != [it["bg"] for it in m["items"]]
    # the result is an evaluation dataset
    ds = open_dataset(out)
    assert ds.layout == "composition" and ds.has_trimaps and len(ds) == 4
    image, gt, tri = load_sample(ds.samples[0])
    assert image.shape[:2] == gt.shape == tri.shape


def test_build_composition_refuses_used_output_and_cleans_stale(tmp_path):
    fg, alpha, bg = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    build_composition(fg, alpha, bg, out, n=3, seed=0)
    with pytest.raises(DatasetError, match="--overwrite"):
        build_composition(fg, alpha, bg, out, n=2, seed=0)
    build_composition(fg, alpha, bg, out, n=2, seed=0, overwrite=True)
    assert len(list((out / "image").iterdir())) == 4  # the *_02 files of the first run are gone


def test_build_composition_missing_pair(tmp_path):
    fg, alpha, bg = _inputs(tmp_path / "in")
    (alpha / "f1.png").unlink()
    with pytest.raises(DatasetError, match="have no alpha in alpha/: f1"):
        build_composition(fg, alpha, bg, tmp_path / "out", n=1)
