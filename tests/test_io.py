"""Image loading and saving: every input kind the brief names, and the error messages."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nuggy.io import ImageError, atomic_write_bytes, decode_image, encode_image, load_image, save_image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


@pytest.fixture()
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)


def test_rgb_png_roundtrip(rgb, tmp_path):
    p = tmp_path / "a.png"
    save_image(rgb, p)
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)
    np.testing.assert_array_equal(out, rgb)


def test_real_jpeg_example():
    im = load_image(EXAMPLES / "chelsea.jpg")
    assert im.shape == (300, 451, 3) and im.dtype == np.uint8
    assert im.std() > 10  # a real photo, not a blank


def test_exif_orientation_applied(rgb):
    # Orientation 6: the stored pixels must be rotated 90° clockwise for display.
    im = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _png_bytes(im, format="JPEG", exif=exif.tobytes(), quality=100)
    out = decode_image(data)
    assert out.shape == (40, 30, 3)
    ref = np.rot90(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), k=-1)
    np.testing.assert_array_equal(out, ref)


def test_cmyk_converted_explicitly(rgb):
    cmyk = Image.fromarray(rgb).convert("CMYK")
    out = decode_image(_png_bytes(cmyk, format="TIFF"))
    assert out.shape == (30, 40, 3)
    np.testing.assert_array_equal(out, np.asarray(cmyk.convert("RGB")))


def test_16bit_greyscale_scaled_to_8bit():
    a16 = (np.arange(64 * 16, dtype=np.uint32).reshape(16, 64) * 64).astype(np.uint16)
    im = Image.fromarray(a16)  # mode I;16
    assert im.mode.startswith("I")
    out = decode_image(_png_bytes(im))
    assert out.shape == (16, 64, 3)
    expected = np.round(a16.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)
    assert (out[..., 0] == out[..., 2]).all()


def test_16bit_rgb_png(tmp_path):
    # Pillow reads 16-bit RGB PNGs as 8-bit RGB; the result must still be a correct image.
    import cv2

    a = (np.linspace(0, 65535, 20 * 30 * 3).reshape(20, 30, 3)).astype(np.uint16)
    p = tmp_path / "rgb16.png"
    cv2.imwrite(str(p), a[..., ::-1])
    out = load_image(p)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(out.astype(int), (a >> 8).astype(int), atol=1)


def test_palette_and_greyscale_and_la(rgb):
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    out = decode_image(_png_bytes(pal))
    np.testing.assert_array_equal(out, np.asarray(pal.convert("RGB")))
    grey = Image.fromarray(rgb[..., 0], "L")
    out = decode_image(_png_bytes(grey))
    assert (out[..., 0] == rgb[..., 0]).all() and (out[..., 1] == rgb[..., 0]).all()
    la = Image.fromarray(np.dstack([rgb[..., 0], rgb[..., 1]]), "LA")
    out = decode_image(_png_bytes(la))
    np.testing.assert_array_equal(out[..., 0], rgb[..., 0])


def test_rgba_keeps_colour_channels(rgb):
    a = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    out = decode_image(_png_bytes(Image.fromarray(a, "RGBA")))
    np.testing.assert_array_equal(out, rgb)


def test_animated_gif_first_frame_and_frame_choice():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    first = decode_image(buf.getvalue())
    second = decode_image(buf.getvalue(), frame=1)
    assert first[0, 0, 0] > 200 and first[0, 0, 2] < 50
    assert second[0, 0, 2] > 200 and second[0, 0, 0] < 50
    with pytest.raises(ImageError, match="frame 5 does not exist"):
        decode_image(buf.getvalue(), frame=5)


def test_truncated_file_names_file(tmp_path):
    data = (EXAMPLES / "chelsea.jpg").read_bytes()
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match=r"cut\.jpg.*truncated or corrupt"):
        load_image(p)


def test_corrupt_file_names_file(tmp_path):
    p = tmp_path / "junk.png"
    p.write_bytes(b"this is not an image at all")
    with pytest.raises(ImageError, match=r"junk\.png.*not a recognised image"):
        load_image(p)


def test_empty_missing_and_folder(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_pixel_limit_guards_decompression_bombs(monkeypatch):
    data = _png_bytes(Image.new("RGB", (200, 100)))
    with pytest.raises(ImageError, match=r"exceeds the limit.*--max-pixels"):
        decode_image(data, max_pixels=10_000)
    monkeypatch.setenv("NUGGY_MAX_PIXELS", "5000")
    with pytest.raises(ImageError, match="exceeds the limit"):
        decode_image(data)
    assert decode_image(data, max_pixels=20_000).shape == (100, 200, 3)


def test_encode_formats_and_jpeg_transparency_error(rgb):
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    for fmt, mode in (("PNG", "RGBA"), ("WEBP", "RGBA"), ("TIFF", "RGBA")):
        back = Image.open(io.BytesIO(encode_image(rgba, fmt)))
        assert back.mode == mode and back.size == (40, 30)
        np.testing.assert_array_equal(np.asarray(back), rgba)  # all lossless
    with pytest.raises(ValueError, match="JPEG has no transparency"):
        encode_image(rgba, "JPEG")
    assert Image.open(io.BytesIO(encode_image(rgb[..., 0], "PNG"))).mode == "L"


def test_atomic_write_leaves_no_temp_and_usual_permissions(tmp_path):
    p = tmp_path / "sub" / "x.bin"
    atomic_write_bytes(p, b"abc")
    assert p.read_bytes() == b"abc"
    assert [f.name for f in p.parent.iterdir()] == ["x.bin"]
    assert (p.stat().st_mode & 0o777) == (0o666 & ~_current_umask())


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "x.bin"
    p.write_bytes(b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"old"
    assert [f.name for f in tmp_path.iterdir()] == ["x.bin"]


def test_save_image_unknown_suffix(rgb, tmp_path):
    from nuggy.errors import UsageError

    with pytest.raises(UsageError, match="unknown output format '.xyz'; use one of .jpeg"):
        save_image(rgb, tmp_path / "a.xyz")
    assert list(tmp_path.iterdir()) == []


def _current_umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_pixel_limit_holds_for_arrays_and_pil_images(monkeypatch):
    """Issue 18 (5): the decompression-bomb guard applies whatever the input type."""
    from PIL import Image

    from nuggy.api import as_rgb_array
    from nuggy.io import ImageError

    monkeypatch.setenv("NUGGY_MAX_PIXELS", "1000")
    big = np.zeros((40, 30, 3), np.uint8)  # 1200 pixels
    with pytest.raises(ImageError, match="<array>: 30×40 .* exceeds the limit"):
        as_rgb_array(big)
    with pytest.raises(ImageError, match="<PIL image>: 30×40"):
        as_rgb_array(Image.fromarray(big))
    assert as_rgb_array(big[:20]).shape == (20, 30, 3)


# ------------------------------------------------------------- one exception family (issue 18 item 9)


def test_api_errors_are_nuggy_errors_naming_the_input(tmp_path):
    """A truncated image opened with PIL, a 1×1 image in any form, a bad preset, an unknown
    model: each raises a NuggyError whose message names the input; a memoryview is accepted
    like the bytes it views."""
    import nuggy
    from nuggy.api import as_rgb_array
    from nuggy.errors import NuggyError

    data = (EXAMPLES / "chelsea.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match=r"cut\.jpg.*truncated or corrupt"):
        as_rgb_array(Image.open(cut))

    dot = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(dot)
    for source, label in (
        (dot, "dot.png"),
        (Image.open(dot), "dot.png"),
        (dot.read_bytes(), "<bytes>"),
        (np.zeros((1, 1, 3), np.uint8), "<array>"),
    ):
        with pytest.raises(ImageError, match=rf"{label}: 1×1 .*too small"):
            as_rgb_array(source)

    png = _png_bytes(Image.new("RGB", (6, 4), (10, 20, 30)))
    np.testing.assert_array_equal(as_rgb_array(memoryview(png)), decode_image(png))
    with pytest.raises(ImageError, match="<array>: expected"):
        as_rgb_array(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match="unsupported image type list"):
        as_rgb_array([1, 2, 3])

    assert nuggy.NuggyError is NuggyError
    with pytest.raises(NuggyError, match="unknown preset 'nope'"):
        nuggy.remove(dot, preset="nope")
    with pytest.raises(NuggyError, match="unknown model 'nosuch'; known models:"):
        nuggy.remove(np.zeros((8, 8, 3), np.uint8), model="nosuch")


def test_pixel_limit_is_checked_and_printed_in_real_units(monkeypatch):
    """Issue 18 (10): --max-pixels -1 was accepted and printed as '-0 MP'."""
    from nuggy.errors import ConfigError

    data = _png_bytes(Image.new("RGB", (40, 30)))
    with pytest.raises(ImageError, match=r"40×30 = 1,200 pixels exceeds the limit of 1,000 pixels"):
        decode_image(data, max_pixels=1000)
    for bad in (-1, 0, 3, 2.5, True):
        with pytest.raises(
            ConfigError, match=rf"max_pixels={bad!r}: the pixel limit must be a whole number >= 4"
        ):
            decode_image(data, max_pixels=bad)
    for env in ("-1", "lots", "1e6"):
        monkeypatch.setenv("NUGGY_MAX_PIXELS", env)
        with pytest.raises(ConfigError, match=r"NUGGY_MAX_PIXELS="):
            decode_image(data)
    monkeypatch.setenv("NUGGY_MAX_PIXELS", " 2000 ")
    assert decode_image(data).shape == (30, 40, 3)
