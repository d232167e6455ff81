"""Issue 18: bad inputs, options and output paths, as a new user and as an attacker would try.

Every case checks the exit status, one clear message naming the file (no traceback), inputs
unchanged (hashes), no temp files left, and the output either correct or absent.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from nuggy.cli.main import main

from conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("u2netp_path")


def test_trimap_outputs_are_distinct(tmp_path, capsys):
    """`nuggy trimap d/cat.jpg d/cat.png` wrote both to cat.trimap.png (with --overwrite the
    second replaced the first)."""
    shutil.copy(EXAMPLES / "chelsea.jpg", tmp_path / "cat.jpg")
    Image.open(EXAMPLES / "coffee.jpg").resize((60, 40)).save(tmp_path / "cat.png")
    rc = main(["trimap", str(tmp_path / "cat.jpg"), str(tmp_path / "cat.png"), "--preset", "fast",
               "--overwrite", "-q"])
    assert rc == 0, capsys.readouterr().err
    a = np.asarray(Image.open(tmp_path / "cat.jpg.trimap.png"))
    b = np.asarray(Image.open(tmp_path / "cat.png.trimap.png"))
    assert a.shape == (300, 451) and b.shape == (40, 60)
    assert set(np.unique(a)) <= {0, 128, 255}


@pytest.mark.parametrize("verb", [
    ["trimap", str(EXAMPLES / "chelsea.jpg")],
    ["bench", "--size", "64", "--runs", "1", "--warmup", "0"],
])
def test_unknown_output_suffix_is_refused_before_work(tmp_path, capsys, verb):
    """Issue 18 (6) for the other verbs that write files: -o out.bmp is a file name with an
    unsupported suffix, not a folder to create."""
    out = tmp_path / "out.bmp"
    assert main([*verb, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: unknown output format '.bmp'" in err and "end it with /" in err
    assert list(tmp_path.iterdir()) == []


def test_a_radius_beyond_the_image_costs_what_the_image_size_costs():
    """Issue 18 (2): the guided filter's cost grew with the radius even past the image's size
    (--refine-radius 100000 on a 451×300 photo: 67 s, 11 GB). A window larger than the image
    covers all of it, so the result is the same as with radius = the image's size."""
    import time

    from nuggy.pipeline.refine import box_filter, refine_alpha

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    prob = np.zeros((30, 40), np.float32)
    prob[8:22, 10:30] = 1.0
    t0 = time.perf_counter()
    far = refine_alpha(image, prob, radius=1_000_000)
    assert time.perf_counter() - t0 < 1.0
    np.testing.assert_array_equal(far, refine_alpha(image, prob, radius=39))
    x = rng.random((30, 40)).astype(np.float32)
    np.testing.assert_array_equal(box_filter(x, 10**7), box_filter(x, 39))
    np.testing.assert_allclose(box_filter(x, 10**7), np.full_like(x, x.mean()), rtol=1e-5)


@pytest.mark.parametrize("verb", [
    ["remove", "missing.jpg", "-o", "{tmp}/x.png"],
    ["trimap", "missing.jpg", "-o", "{tmp}/x.png"],
    ["bench", "--image", "missing.jpg"],
    ["eval", "{tmp}/no-such-dataset"],
])
@pytest.mark.parametrize("model", ["nosuch", "u2netp+nosuch"])
def test_unknown_model_is_a_usage_error_before_any_input_is_read(tmp_path, capsys, verb, model):
    """Issue 18 (3): a mistyped model name is exit 2 with the known names, before any image
    (here: a missing one) or dataset is looked at, in every verb that runs a model."""
    args = [a.format(tmp=tmp_path) for a in verb]
    assert main([*args, "--model", model]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nosuch'; known models: " in err and "u2netp" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_unknown_model_is_refused_even_when_every_output_exists(tmp_path, capsys):
    """Issue 18 (3): when all outputs existed (skipped), --model nosuch exited 0."""
    src = tmp_path / "cat.jpg"
    shutil.copy(EXAMPLES / "chelsea.jpg", src)
    (tmp_path / "cat.nuggy.png").write_bytes(b"an earlier output")
    assert main(["remove", str(src), "--model", "nosuch"]) == 2
    assert "unknown model 'nosuch'" in capsys.readouterr().err
    assert (tmp_path / "cat.nuggy.png").read_bytes() == b"an earlier output"


@pytest.mark.parametrize("option, message", [
    (["--runs", "0"], "need runs >= 1 and warmup >= 0, got runs=0"),
    (["--warmup", "-1"], "need runs >= 1 and warmup >= 0, got runs=3, warmup=-1"),
    (["--set", "refine_radius=100000"], "refine_radius must be a whole number of pixels in 1..256"),
])
def test_bench_options_have_ranges(capsys, option, message):
    assert main(["bench", "--size", "64", *option]) == 2
    assert message in capsys.readouterr().err


def _thumb(side: int = 96) -> np.ndarray:
    im = Image.open(EXAMPLES / "chelsea.jpg").convert("RGB")
    im.thumbnail((side, side))
    return np.asarray(im)  # 96×64


def test_matting_never_turns_a_seen_subject_solid():
    """Issue 18 (4): preset=best&trimap_band=0.2 returned a fully opaque mask and 0.3 / 0.5 a
    fully transparent one, on the server's 96×64 test photo. The widest band allowed now (0.1)
    keeps both sides known; and where an automatic trimap still has no known pixel of a kind
    (a map uncertain everywhere) the stage keeps the pipeline's alpha instead of a solid one."""
    from nuggy.pipeline.config import preset
    from nuggy.pipeline.matte import matte
    from nuggy.pipeline.pipeline import Pipeline

    image = _thumb()
    plain = Pipeline(preset("default")).run(image).alpha
    for band in (0.01, 0.05, 0.1):
        result = Pipeline(preset("best", model="u2netp", trimap_band=band)).run(image)
        a = result.alpha
        assert (a < 0.05).mean() > 0.05 and (a > 0.95).mean() > 0.05, band
        assert abs(float(a.mean()) - float(plain.mean())) < 0.1, band
        assert (result.trimap == 0).any() and (result.trimap == 255).any()
    unsure = np.full(image.shape[:2], 0.6, np.float32)
    alpha, _, trimap = matte(image, unsure, preset("best"))
    assert np.all(trimap == 128)
    np.testing.assert_array_equal(alpha, unsure)


def test_user_trimap_with_no_known_pixels_is_refused(tmp_path, capsys):
    """Issue 18 (4): an all-unknown user trimap wrote a transparent image and exited 0."""
    src = tmp_path / "cat.jpg"
    shutil.copy(EXAMPLES / "chelsea.jpg", src)
    tri = tmp_path / "all-unknown.png"
    Image.new("L", (451, 300), 128).save(tri)
    out = tmp_path / "out.png"
    assert main(["remove", str(src), "--trimap", str(tri), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{tri}: every pixel is unknown (128)" in err
    assert not out.exists()
