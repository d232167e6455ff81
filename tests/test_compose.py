"""Compositing and background parsing against direct float64 formulas."""

from __future__ import annotations

import numpy as np
import pytest

from nuggy.pipeline.compose import Background, compose, parse_background


@pytest.fixture()
def scene():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    alpha = rng.random((24, 32)).astype(np.float32)
    alpha[:4] = 0.0
    alpha[-4:] = 1.0
    return image, alpha


def test_transparent_gives_straight_rgba(scene):
    image, alpha = scene
    out = compose(image, alpha)
    assert out.shape == (24, 32, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., :3], image)
    np.testing.assert_array_equal(out[..., 3], np.round(alpha * 255).astype(np.uint8))


def test_colour_background_matches_formula(scene):
    image, alpha = scene
    fg = np.random.default_rng(2).random(image.shape).astype(np.float32)
    out = compose(image, alpha, foreground=fg, background=parse_background("#00ff00"))
    ref = fg.astype(np.float64) * alpha[..., None] + np.array([0, 1, 0]) * (1 - alpha[..., None])
    np.testing.assert_allclose(out, np.round(ref * 255), atol=1)  # rounding of float32 math
    assert (out[:4] == [0, 255, 0]).all()


def test_image_background_covers_and_is_not_modified(scene):
    image, alpha = scene
    bg = np.zeros((10, 100, 3), np.uint8)
    bg[:, :50] = 200
    before = bg.copy()
    out = compose(image, alpha, background=Background("image", image=bg))
    np.testing.assert_array_equal(bg, before)
    assert out.shape == (24, 32, 3)
    # alpha == 0 rows show the background, centre-cropped after covering: left half 200, right 0
    assert out[0, 0].tolist() == [200, 200, 200] and out[0, -1].tolist() == [0, 0, 0]


def test_blur_background_keeps_subject_colour_out(scene):
    image, _ = scene
    alpha = np.zeros((24, 32), np.float32)
    alpha[8:16, 10:20] = 1.0
    img = np.zeros_like(image)
    img[alpha > 0] = 255  # a white subject on black
    out = compose(img, alpha, background=Background("blur", blur_sigma=0.1))
    # where alpha is 0 the subject must not bleed into the blurred background
    assert out[alpha == 0].max() < 30
    assert (out[alpha == 1] == 255).all()


@pytest.mark.parametrize(
    "text,colour",
    [
        ("white", (255, 255, 255)),
        ("#00ff00", (0, 255, 0)),
        ("#0f0", (0, 255, 0)),
        ("10,20,30", (10, 20, 30)),
        ("00FF00", (0, 255, 0)),
    ],
)
def test_parse_colours(text, colour):
    bg = parse_background(text)
    assert bg.kind == "colour" and bg.colour == colour


def test_parse_blur_transparent_and_errors(tmp_path):
    assert parse_background(None).kind == "transparent"
    assert parse_background("transparent").kind == "transparent"
    assert parse_background("blur:0.05").blur_sigma == 0.05
    with pytest.raises(ValueError, match="blur strength"):
        parse_background("blur:abc")
    with pytest.raises(ValueError, match="0..255"):
        parse_background("300,0,0")
    with pytest.raises(ValueError, match="not a colour name"):
        parse_background("beach.jpg")  # missing file
    from PIL import Image

    p = tmp_path / "beach.png"
    Image.new("RGB", (5, 4), (1, 2, 3)).save(p)
    bg = parse_background(str(p))
    assert bg.kind == "image" and bg.image.shape == (4, 5, 3)


def test_size_mismatch(scene):
    image, alpha = scene
    with pytest.raises(ValueError, match="differ in size"):
        compose(image, alpha[:-1])
