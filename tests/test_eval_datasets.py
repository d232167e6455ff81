"""Dataset readers (nuggy.eval.datasets) on small layouts written by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nuggy.eval.datasets import (
    DatasetError,
    check_dataset,
    detect_layout,
    load_sample,
    open_dataset,
    read_matte,
    read_trimap,
)

H, W = 12, 16


def png(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def photo(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def matte(h: int = H, w: int = W) -> np.ndarray:
    a = np.zeros((h, w), np.uint8)
    a[3:9, 4:12] = 255
    a[2, 4:12] = 128
    return a


def trimap(h: int = H, w: int = W) -> np.ndarray:
    t = np.zeros((h, w), np.uint8)
    t[1:10, 3:13] = 128
    t[4:8, 5:11] = 255
    return t


def write_set(
    root: Path, names, image_dir="image", alpha_dir="alpha", trimap_dir="trimap", image_ext=".png"
) -> Path:
    for i, n in enumerate(names):
        png(root / image_dir / f"{n}{image_ext}", photo(i))  # the suffix picks the format
        png(root / alpha_dir / f"{n}.png", matte())
        if trimap_dir:
            png(root / trimap_dir / f"{n}.png", trimap())
    return root


def test_generic_layout(tmp_path):
    root = write_set(tmp_path / "d", ["b", "a"], image_ext=".jpg")
    assert detect_layout(root) == "generic"
    ds = open_dataset(root)
    assert ds.layout == "generic"
    assert [s.name for s in ds] == ["a", "b"]
    assert ds.has_trimaps
    s = ds.samples[0]
    assert s.image.name == "a.jpg" and s.alpha.name == "a.png" and s.trimap.name == "a.png"
    check_dataset(ds)
    image, alpha, tri = load_sample(s)
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert alpha.dtype == np.float32 and alpha.shape == (H, W)
    np.testing.assert_allclose(alpha, matte() / 255.0, atol=1e-7)
    np.testing.assert_array_equal(tri, trimap())


def test_generic_mask_folder_without_trimaps(tmp_path):
    root = write_set(tmp_path / "d", ["x"], alpha_dir="mask", trimap_dir=None)
    ds = open_dataset(root)
    assert ds.layout == "generic" and not ds.has_trimaps
    assert ds.samples[0].trimap is None
    assert load_sample(ds.samples[0])[2] is None


def test_dis5k_layout_and_split(tmp_path):
    split = write_set(tmp_path / "DIS5K" / "DIS-VD", ["1#a", "2#b"], "im", "gt", None)
    write_set(tmp_path / "DIS5K" / "DIS-TE1", ["c"], "im", "gt", None)
    assert detect_layout(split) == "dis5k"
    assert [s.name for s in open_dataset(split)] == ["1#a", "2#b"]
    with pytest.raises(DatasetError, match="--subset.*DIS-TE1, DIS-VD"):
        open_dataset(tmp_path / "DIS5K")
    ds = open_dataset(tmp_path / "DIS5K", split="DIS-TE1")
    assert ds.layout == "dis5k" and [s.name for s in ds] == ["c"]


def test_am2k_layout(tmp_path):
    root = write_set(tmp_path / "validation", ["m_1", "m_2"], "original", "mask", "trimap")
    ds = open_dataset(root)
    assert ds.layout == "am2k" and ds.has_trimaps and len(ds) == 2


def test_alphamatting_layout(tmp_path):
    root = tmp_path / "am"
    for n in ("GT01", "GT02"):
        png(root / "input_training_lowres" / f"{n}.png", photo())
        png(root / "gt_training_lowres" / f"{n}.png", np.dstack([matte()] * 3))
        png(root / "trimap_training_lowres" / "Trimap1" / f"{n}.png", trimap())
        png(root / "trimap_training_lowres" / "Trimap2" / f"{n}.png", trimap())
    ds = open_dataset(root)
    assert ds.layout == "alphamatting"
    assert ds.info == {"trimap_set": "Trimap1", "split": "training_lowres"}
    assert ds.samples[0].trimap.parent.name == "Trimap1"
    assert open_dataset(root, trimap_set="Trimap2").samples[0].trimap.parent.name == "Trimap2"
    with pytest.raises(DatasetError, match="no trimap set 'Trimap9'"):
        open_dataset(root, trimap_set="Trimap9")
    # a second resolution: the split must be named
    png(root / "input_training_highres" / "GT01.png", photo())
    png(root / "gt_training_highres" / "GT01.png", matte())
    with pytest.raises(DatasetError, match="several image sets.*training_highres, training_lowres"):
        open_dataset(root)
    ds = open_dataset(root, split="training_highres")
    assert [s.name for s in ds] == ["GT01"] and ds.samples[0].trimap is None
    # RGB alpha with equal channels reads as grey
    np.testing.assert_allclose(read_matte(root / "gt_training_lowres" / "GT01.png"), matte() / 255.0)


def test_composition_layout_detected_by_manifest(tmp_path):
    root = write_set(tmp_path / "comp", ["fg_00"])
    (root / "manifest.json").write_text('{"protocol": "composition-1k", "items": []}')
    ds = open_dataset(root)
    assert ds.layout == "composition" and ds.info["protocol"] == "composition-1k"


def test_layout_override_and_unknown(tmp_path):
    root = write_set(tmp_path / "d", ["a"])
    assert open_dataset(root, layout="generic").layout == "generic"
    with pytest.raises(DatasetError, match="unknown layout 'nope'"):
        open_dataset(root, layout="nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="unknown dataset layout"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "missing")


def test_missing_pairs_are_listed(tmp_path):
    root = write_set(tmp_path / "d", ["a", "b", "c"])
    (root / "alpha" / "b.png").unlink()
    png(root / "alpha" / "zz.png", matte())
    (root / "trimap" / "c.png").unlink()
    with pytest.raises(DatasetError) as e:
        open_dataset(root)
    msg = str(e.value)
    assert "1 image(s) in image/ have no alpha in alpha/: b" in msg
    assert "1 alpha(s) in alpha/ have no image in image/: zz" in msg
    assert "have no trimap in trimap/: c" in msg


def test_duplicate_stems(tmp_path):
    root = write_set(tmp_path / "d", ["a"])
    png(root / "image" / "a.jpg", photo())
    with pytest.raises(DatasetError, match="share a name.*a.jpg / a.png"):
        open_dataset(root)


def test_size_mismatch(tmp_path):
    root = write_set(tmp_path / "d", ["a", "b"])
    png(root / "alpha" / "b.png", matte(H + 2, W))
    png(root / "trimap" / "a.png", trimap(H, W + 1))
    ds = open_dataset(root)
    with pytest.raises(DatasetError) as e:
        check_dataset(ds)
    msg = str(e.value)
    assert "2 problem(s)" in msg
    assert f"b: size mismatch: image b.png is {W}×{H} but alpha" in msg
    assert f"is {W}×{H + 2}" in msg and "trimap" in msg
    with pytest.raises(DatasetError, match="size mismatch"):
        load_sample(ds.samples[1])


def test_bad_trimap_values_are_reported(tmp_path):
    root = write_set(tmp_path / "d", ["a"])
    t = trimap()
    t[0, :3] = 127
    t[1, 0] = 64
    png(root / "trimap" / "a.png", t)
    ds = open_dataset(root)
    with pytest.raises(DatasetError, match=r"0, 128 or 255; found 127 \(3 px\), 64 \(1 px\)"):
        load_sample(ds.samples[0])


def test_unreadable_file(tmp_path):
    root = write_set(tmp_path / "d", ["a"])
    (root / "alpha" / "a.png").write_bytes(b"not a png")
    ds = open_dataset(root)
    with pytest.raises(DatasetError, match="a.png: not a readable image"):
        check_dataset(ds)
    with pytest.raises(DatasetError, match="not a readable image"):
        load_sample(ds.samples[0])


def test_read_matte_modes(tmp_path):
    a = matte()
    rgba = np.dstack([photo(), a])
    np.testing.assert_allclose(read_matte(png(tmp_path / "rgba.png", rgba)), a / 255.0)
    opaque = np.dstack([np.dstack([a] * 3), np.full_like(a, 255)])
    np.testing.assert_allclose(read_matte(png(tmp_path / "opaque.png", opaque)), a / 255.0)
    a16 = a.astype(np.uint16) * 257
    Image.fromarray(a16).save(tmp_path / "a16.png")
    np.testing.assert_allclose(read_matte(tmp_path / "a16.png"), a / 255.0, atol=1e-6)
    with pytest.raises(DatasetError, match="colour image"):
        read_matte(png(tmp_path / "colour.png", photo()))


def test_read_trimap_palette(tmp_path):
    t = trimap()
    im = Image.fromarray(t).convert("P")
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_trimap(tmp_path / "p.png"), t)


def test_shared_dev_data_reads_as_generic():
    root = Path(__file__).resolve().parents[2] / "shared" / "evaldata" / "alphamatting-dev"
    if not root.is_dir():
        pytest.skip(f"dev data not present at {root}")
    ds = open_dataset(root)
    assert ds.layout == "generic" and ds.has_trimaps and len(ds) >= 2
    check_dataset(ds)
    image, alpha, tri = load_sample(ds.samples[0])
    assert image.shape[:2] == alpha.shape == tri.shape
    assert set(np.unique(tri)) <= {0, 128, 255}
