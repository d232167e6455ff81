"""Trimap generation (adaptive band) and user-trimap validation."""

from __future__ import annotations

import numpy as np
import pytest

from nuggy.pipeline.trimap import (
    TrimapError,
    band_pixels,
    load_trimap,
    make_trimap,
    one_sided,
    validate_trimap,
)


def disc(size: int, *, soft: float = 0.0) -> np.ndarray:
    """Probability map of a centred disc (radius 0.3·size); ``soft`` = ramp width / size."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    r = np.hypot(yy - size / 2, xx - size / 2)
    if soft == 0:
        return (r <= 0.3 * size).astype(np.float32)
    return np.clip((0.3 * size - r) / (soft * size) + 0.5, 0, 1).astype(np.float32)


def band_width(trimap: np.ndarray, row: int) -> int:
    """Unknown pixels on one row (two crossings of the edge)."""
    return int(np.count_nonzero(trimap[row] == 128))


def test_values_dtype_and_shape():
    rng = np.random.default_rng(0)
    prob = rng.random((50, 70)).astype(np.float32)
    for p in (prob, prob > 0.5, (prob * 255).astype(np.uint8), prob.astype(np.float64)):
        t = make_trimap(p, band=0.02)
        assert t.dtype == np.uint8 and t.shape == (50, 70)
        assert set(np.unique(t)) <= {0, 128, 255}


def test_band_scales_with_image_size():
    small = make_trimap(disc(200), band=0.04)
    large = make_trimap(disc(400), band=0.04)
    ws, wl = band_width(small, 100), band_width(large, 200)
    assert ws > 0
    # base half-width = 0.04 × diagonal: 11.3 px vs 22.6 px (crisp edge: half of it on each
    # side, plus the two contour pixels, which do not scale)
    assert wl / ws == pytest.approx(2.0, rel=0.15)
    # and the unknown area (∝ perimeter × width) grows ~4×
    ratio = np.count_nonzero(large == 128) / np.count_nonzero(small == 128)
    assert ratio == pytest.approx(4.0, rel=0.2)


def test_crisp_edge_band_is_narrow_and_known_sides_correct():
    p = disc(300)
    t = make_trimap(p, band=0.01)
    base = band_pixels(p.shape, 0.01)
    # a crisp, confident edge gets crisp × base on each side (0.5 × 4.2 px ≈ 2 px), plus the
    # contour pixels themselves
    assert band_width(t, 150) <= 2 * (2 * 0.5 * base + 2)
    assert np.all(t[p >= 0.5][(t[p >= 0.5] != 128)] == 255)
    assert np.all(t[p < 0.5][(t[p < 0.5] != 128)] == 0)
    assert t[150, 150] == 255 and t[0, 0] == 0


def test_uncertain_regions_widen_the_band():
    size = 300
    crisp, soft = disc(size), disc(size, soft=0.08)
    p = crisp.copy()
    p[:, size // 2 :] = soft[:, size // 2 :]  # right half of the edge is uncertain
    t = make_trimap(p, band=0.01)
    row = t[size // 2]
    left = int(np.count_nonzero(row[: size // 2] == 128))
    right = int(np.count_nonzero(row[size // 2 :] == 128))
    assert right >= 3 * left
    # uncertainty widening goes beyond the uncertain pixels themselves
    assert right > np.count_nonzero(
        (soft[size // 2, size // 2 :] > 0.05) & (soft[size // 2, size // 2 :] < 0.95)
    )


def test_fine_structure_widens_the_band():
    size = 300
    p = disc(size)
    p[40:260, 20:22] = 1.0  # a 2-px strand (hair) far from the disc
    t = make_trimap(p, band=0.01)
    strand = int(np.count_nonzero(t[150, :60] == 128))
    body = int(np.count_nonzero(t[150, 60:150] == 128))  # one crossing of the disc's edge
    assert strand > 2 * body


def test_image_edge_density_widens_the_band():
    size = 200
    p = disc(size)
    image = np.full((size, size, 3), 120, np.uint8)
    rng = np.random.default_rng(1)
    image[:, size // 2 :] = rng.integers(0, 256, (size, size - size // 2, 3), dtype=np.uint8)
    with_img = make_trimap(p, band=0.01, image=image)
    without = make_trimap(p, band=0.01)
    r = size // 2
    assert np.count_nonzero(with_img[r, r:] == 128) > np.count_nonzero(without[r, r:] == 128)
    assert np.count_nonzero(with_img[r, :r] == 128) == np.count_nonzero(without[r, :r] == 128)


def test_uncertain_pixels_always_unknown_and_edge_cases():
    p = np.zeros((40, 40), np.float32)
    p[10:20, 10:20] = 0.5  # no foreground at all, but uncertain
    t = make_trimap(p, band=0.01)
    assert np.all(t[10:20, 10:20] == 128) and np.count_nonzero(t == 255) == 0
    assert np.all(make_trimap(np.ones((30, 30), np.float32)) == 255)
    assert np.all(make_trimap(np.zeros((30, 30), np.float32)) == 0)
    # band 0: a crisp mask has no unknown pixels
    assert np.count_nonzero(make_trimap(disc(100), band=0.0) == 128) == 0


@pytest.mark.parametrize("size", [160, 1100])  # 1100²: scores on the reduced working grid
def test_flat_saturated_and_single_colour_images_add_no_band(size, no_float_warnings):
    """A photo without edges (single colour, saturated white, 200 ± 1 noise: gradients far
    below the edge threshold) must not change the trimap; nothing divides by the image, so
    the result is exactly the image-less one, for soft, crisp and constant maps."""
    rng = np.random.default_rng(0)
    images = [np.full((size, size, 3), v, np.uint8) for v in (0, 255)]
    images.append(np.empty((size, size, 3), np.uint8))
    images[-1][:] = (17, 200, 3)
    images.append((200 + rng.integers(-1, 2, (size, size, 1))).repeat(3, axis=2).astype(np.uint8))
    for p in (disc(size, soft=0.05), disc(size), np.full((size, size), 0.5, np.float32)):
        without = make_trimap(p, band=0.01)
        for image in images:
            np.testing.assert_array_equal(make_trimap(p, band=0.01, image=image), without)


def test_saturated_photo_trimap(saturated_photo, no_float_warnings):
    """Saturated white with near-grey strands (dense edges): values 0 / 128 / 255 only, every
    uncertain pixel unknown; a crisp edge across the strands gets a wider band than without
    the photo."""
    image, prob = saturated_photo(240, 320, 0)
    t = make_trimap(prob, band=0.01, image=image)
    assert t.dtype == np.uint8 and set(np.unique(t)) <= {0, 128, 255}
    assert np.all(t[(prob > 0.05) & (prob < 0.95)] == 128)
    crisp = (prob > 0.2).astype(np.float32)  # edge at x ≈ 0.35 w, among the strands
    with_image = np.count_nonzero(make_trimap(crisp, band=0.01, image=image) == 128)
    assert with_image > np.count_nonzero(make_trimap(crisp, band=0.01) == 128)


def test_inputs_not_modified():
    p = disc(120, soft=0.05)
    image = np.random.default_rng(2).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    p0, i0 = p.copy(), image.copy()
    make_trimap(p, band=0.02, image=image)
    assert np.array_equal(p, p0) and np.array_equal(image, i0)


def test_large_image_uses_working_grid():
    # 1.5 MP: scores computed on a reduced grid; band still scales (0.01 × diag ≈ 17 px)
    p = disc(1200)
    t = make_trimap(p, band=0.01)
    w = band_width(t, 600)
    base = band_pixels(p.shape, 0.01)
    assert 2 * (2 * 0.5 * base) <= w <= 2 * (2 * 3.0 * base + 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="H×W"):
        make_trimap(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        make_trimap(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="differ in size"):
        make_trimap(np.zeros((4, 4)), image=np.zeros((5, 4, 3), np.uint8))


# ------------------------------------------------------------------------------ validation


def test_validate_accepts_exact_and_near_values():
    t = np.array([[0, 128, 255], [1, 127, 254], [2, 130, 253]], np.uint8)
    out = validate_trimap(t)
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 128, 255]] * 3
    with pytest.raises(TrimapError):
        validate_trimap(t, tolerance=0)


def test_validate_rgb_bool_float():
    grey = np.array([[0, 128], [255, 0]], np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    assert np.array_equal(validate_trimap(rgb), grey)
    rgba = np.dstack([rgb, np.full((2, 2), 255, np.uint8)])
    assert np.array_equal(validate_trimap(rgba), grey)
    assert np.array_equal(validate_trimap(grey > 200), np.array([[0, 0], [255, 0]], np.uint8))
    assert np.array_equal(validate_trimap(grey / 255.0), grey)
    colour = rgb.copy()
    colour[0, 0, 1] = 128
    with pytest.raises(TrimapError, match="colour trimap"):
        validate_trimap(colour)


def test_validate_error_names_values_and_fix():
    t = np.zeros((10, 10), np.uint8)
    t[2:4] = 128
    t[5, 5] = 64
    t[6, :3] = 200
    with pytest.raises(TrimapError) as err:
        validate_trimap(t, name="dog_trimap.png")
    msg = str(err.value)
    assert "dog_trimap.png" in msg
    assert "64 (1 px)" in msg and "200 (3 px)" in msg
    assert "values must be 0, 128, 255" in msg


def test_validate_size_mismatch():
    with pytest.raises(TrimapError, match=r"trimap is 10×8 but the image is 12×8"):
        validate_trimap(np.zeros((8, 10), np.uint8), shape=(8, 12), name="t.png")


def test_validate_input_not_modified():
    t = np.array([[1, 127, 254]], np.uint8)
    t0 = t.copy()
    validate_trimap(t)
    assert np.array_equal(t, t0)


def test_load_trimap_file(tmp_path):
    from PIL import Image

    good = np.zeros((6, 8), np.uint8)
    good[2:4] = 128
    good[4:] = 255
    Image.fromarray(good, "L").save(tmp_path / "good.png")
    assert np.array_equal(load_trimap(tmp_path / "good.png", shape=(6, 8)), good)
    bad = good.copy()
    bad[0, 0] = 90
    Image.fromarray(bad, "L").save(tmp_path / "bad.png")
    with pytest.raises(TrimapError, match=r"bad\.png.*90 \(1 px\).*values must be 0, 128, 255"):
        load_trimap(tmp_path / "bad.png")
    with pytest.raises(TrimapError, match="no such file"):
        load_trimap(tmp_path / "missing.png")
    with pytest.raises(TrimapError, match="same size"):
        load_trimap(tmp_path / "good.png", shape=(7, 8))


# ------------------------------------------------------ solid results (issue 18 item 4)


@pytest.mark.parametrize("band", [0.05, 0.1, 0.2, 0.5])
@pytest.mark.parametrize("shape", [(64, 96), (300, 451), (40, 400)])
def test_band_never_swallows_a_side(band, shape):
    """The unknown band reaches 3 × band × diagonal into hard edges: at band 0.2 it covered the
    whole background of a 96×64 photo (a fully opaque result), at 0.3 everything (fully
    transparent). Each side keeps its deeper half as definite foreground / background."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # a soft-edged subject (a wide uncertain ramp: the hardest kind of edge)
    r = np.hypot((yy - h / 2) / (0.3 * h), (xx - w / 2) / (0.3 * w))
    prob = np.clip((1.0 - r) * 4 + 0.5, 0, 1).astype(np.float32)
    t = make_trimap(prob, band=band)
    fg, bg = prob >= 0.95, prob <= 0.05
    assert np.count_nonzero(t == 255) > 0 and np.count_nonzero(t == 0) > 0
    assert np.all(t[t == 255] == 255) and np.all(prob[t == 255] >= 0.5)
    assert np.all(prob[t == 0] < 0.5)
    # the deepest pixel of each side stays known
    from scipy import ndimage

    inside = ndimage.distance_transform_edt(prob >= 0.5)
    outside = ndimage.distance_transform_edt(prob < 0.5)
    assert t.flat[np.argmax(inside)] == 255 and t.flat[np.argmax(outside)] == 0
    assert fg.any() and bg.any()


def test_user_trimap_without_known_pixels_is_an_error():
    """An all-unknown trimap wrote a transparent image (exit 0); one with no definite
    background an opaque one. Neither can give a result: the error says why."""
    unknown = np.full((6, 8), 128, np.uint8)
    with pytest.raises(TrimapError, match=r"t\.png: every pixel is unknown \(128\)"):
        validate_trimap(unknown, name="t.png")
    no_bg = unknown.copy()
    no_bg[:2] = 255
    with pytest.raises(TrimapError, match=r"t\.png: .*no definite background \(0\)"):
        validate_trimap(no_bg, name="t.png")
    no_fg = unknown.copy()
    no_fg[:2] = 0
    with pytest.raises(TrimapError, match=r"no definite foreground \(255\)"):
        validate_trimap(no_fg, name="t.png")
    # without an unknown region any labels are a result in themselves
    assert np.all(validate_trimap(np.full((6, 8), 255, np.uint8)) == 255)


def test_one_sided_marks_band_parts_without_both_known_sides():
    """A band part that borders foreground and background is solvable; one enclosed by
    foreground and the image border (a gap at the frame's edge), or by background alone, is
    not."""
    t = np.zeros((40, 60), np.uint8)
    t[10:30, 10:60] = 255  # the subject reaches the right border
    t[8:32, 8:12] = 128  # its left edge: borders both sides
    t[14:20, 54:60] = 128  # a gap closed by foreground and the border
    t[2:4, 40:44] = 128  # a speck inside the background
    t0 = t.copy()
    bad = one_sided(t)
    assert bad.dtype == bool and bad.shape == t.shape and np.array_equal(t, t0)
    assert not bad[8:32, 8:12].any()
    assert bad[14:20, 54:60].all() and bad[2:4, 40:44].all()
    assert np.count_nonzero(bad) == 6 * 6 + 2 * 4
    # opening the gap to the background (a diagonal contact counts) makes it solvable
    t[10:14, 54] = 128  # reaches row 9, background
    assert not one_sided(t)[14:20, 54:60].any()
    assert not one_sided(np.full((5, 5), 255, np.uint8)).any()
