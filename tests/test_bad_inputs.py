"""Issue 18: bad inputs, options and output paths, as a new user and as an attacker would try.

Every case checks the exit status, one clear message naming the file (no traceback), inputs
unchanged (hashes), no temp files left, and the output either correct or absent.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from nuggy.cli.main import main

pytestmark = pytest.mark.usefixtures("u2netp_path")


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Case:
    """One corpus file: ``size`` (W, H) of the correct cut-out, or ``error`` (a phrase of the
    one message that must name the file)."""

    size: tuple[int, int] | None = None
    error: str | None = None


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header claiming width×height, and almost no data: a
    decompression bomb as far as the header goes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def build_corpus(root: Path) -> dict[str, Case]:
    """Write the corpus into ``root``; returns the expected outcome per file name."""
    photo = Image.open(EXAMPLES / "chelsea.jpg").convert("RGB").resize((40, 30))
    jpeg = _save(photo, "JPEG", quality=90)
    files: dict[str, tuple[bytes, Case]] = {
        "empty.jpg": (b"", Case(error="the file is empty")),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], Case(error="truncated or corrupt")),
        "text.png": (b"just some text, not a picture\n", Case(error="not a recognised image")),
        "html.jpg": (b"<!doctype html><title>404</title>", Case(error="not a recognised image")),
        "dot.png": (_save(Image.new("RGB", (1, 1)), "PNG"), Case(error="1×1 image is too small")),
        "bomb.png": (_png_header_only(30_000, 30_000), Case(error="exceeds the limit of 100.0 MP")),
        "cmyk.jpg": (_save(photo.convert("CMYK"), "JPEG"), Case((40, 30))),
        "grey16.png": (
            _save(Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257), "PNG"),
            Case((40, 30)),
        ),
        "palette.png": (_save(photo.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), Case((40, 30))),
        "palette-transparent.gif": (_save(photo.convert("P"), "GIF", transparency=0), Case((40, 30))),
        "la.png": (_save(photo.convert("LA"), "PNG"), Case((40, 30))),
        "rgba.webp": (_save(photo.convert("RGBA"), "WEBP", lossless=True), Case((40, 30))),
        "deflate.tiff": (_save(photo, "TIFF", compression="tiff_deflate"), Case((40, 30))),
        "plain.bmp": (_save(photo, "BMP"), Case((40, 30))),
        "animated.gif": (
            _save(photo, "GIF", save_all=True, append_images=[photo.rotate(180)], duration=100),
            Case((40, 30)),
        ),
        "strip.png": (_save(Image.new("RGB", (4000, 2), (200, 10, 10)), "PNG"), Case((4000, 2))),
        "tiny.png": (_save(photo.resize((2, 2)), "PNG"), Case((2, 2))),
        "png-named.jpg": (_save(photo, "PNG"), Case((40, 30))),
        "café ☕ 猫.jpg": (jpeg, Case((40, 30))),
        "same.jpg": (jpeg, Case((40, 30))),
        "same.png": (_save(photo.resize((20, 16)), "PNG"), Case((20, 16))),
    }
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display: the cut-out is 30×40
    files["rotated.jpg"] = (_save(photo, "JPEG", exif=exif.tobytes()), Case((30, 40)))
    for name, (data, _) in files.items():
        (root / name).write_bytes(data)
    cases = {name: case for name, (_, case) in files.items()}
    os.symlink("cmyk.jpg", root / "link.jpg")
    cases["link.jpg"] = Case((40, 30))
    os.symlink("gone.jpg", root / "dangling.jpg")
    cases["dangling.jpg"] = Case(error="broken symbolic link (to gone.jpg")
    (root / "folder.jpg").mkdir()  # a folder named like an image: not an input of a folder run
    (root / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / "phone.heic").write_bytes(b"\0\0\0\x18ftypheic")
    (root / ".hidden.jpg").write_bytes(jpeg)
    return cases


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, Case]]:
    root = tmp_path_factory.mktemp("corpus")
    return root, build_corpus(root)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _no_temp_files(*folders: Path) -> None:
    for folder in folders:
        left = [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".nuggy")]
        assert left == [], left


def _cutout_name(name: str, cases: dict[str, Case]) -> str:
    stem = name.rsplit(".", 1)[0]
    shared = sum(n.rsplit(".", 1)[0] == stem for n in cases) > 1
    return (name if shared else stem) + ".png"


def test_folder_run_over_the_whole_corpus(corpus, tmp_path):
    """One real `nuggy remove` process over the corpus folder: exit 1 (some files are bad),
    one error line per bad file naming it, a correct RGBA cut-out per good file and nothing
    else, the unsupported files counted, inputs byte-identical, no temp files, no traceback."""
    root, cases = corpus
    before = _hashes(root)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "nuggy", "remove", str(root), "-o", str(out), "--preset", "fast"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    err = proc.stderr
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    bad = {n: c for n, c in cases.items() if c.error}
    good = {n: c for n, c in cases.items() if c.size}
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad), err
    for name, case in bad.items():
        (line,) = [e for e in errors if e.startswith(f"error: {root / name}: ")]
        assert case.error in line, line
    assert f"{root}: skipped 2 files of unsupported type (.heic, .svg)" in err
    assert f"nuggy: {len(good)} written, 0 skipped, {len(bad)} failed" in err
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(_cutout_name(n, cases) for n in good)
    for name, case in good.items():
        im = Image.open(out / _cutout_name(name, cases))
        assert (im.format, im.mode, im.size) == ("PNG", "RGBA", case.size), name
    assert _hashes(root) == before
    _no_temp_files(root, out)


def test_each_bad_file_alone(corpus, tmp_path, capsys):
    """Each bad file as the only input: exit 1, one message naming it, no output."""
    root, cases = corpus
    before = _hashes(root)
    for name, case in cases.items():
        if not case.error:
            continue
        out = tmp_path / f"{name}.png"
        assert main(["remove", str(root / name), "-o", str(out), "--preset", "fast"]) == 1, name
        err = capsys.readouterr().err
        assert err.startswith(f"error: {root / name}: ") and err.count("error: ") == 1, err
        assert case.error in err.splitlines()[0], err
        assert not out.exists()
    assert _hashes(root) == before
    _no_temp_files(root, tmp_path)


def test_python_api_over_the_corpus(corpus, tmp_path):
    """nuggy.remove on each bad file (as a path, as bytes, and opened with PIL where PIL opens
    it) raises a NuggyError whose message names it; a few good ones give the right size."""
    import nuggy

    root, cases = corpus
    for name, case in cases.items():
        path = root / name
        if case.error:
            with pytest.raises(nuggy.NuggyError, match=case.error.replace("(", r"\(")) as e:
                nuggy.remove(path, preset="fast")
            assert str(path) in str(e.value)
            try:
                opened = Image.open(path)
            except Exception:  # noqa: BLE001 - PIL itself refuses it: nothing to pass on
                continue
            with pytest.raises(nuggy.NuggyError, match=str(path).replace("(", r"\(")):
                nuggy.remove(opened, preset="fast")
    for name in ("rotated.jpg", "grey16.png", "animated.gif"):
        for source in (root / name, (root / name).read_bytes(), Image.open(root / name)):
            assert nuggy.remove(source, preset="fast", mask_only=True).size == cases[name].size


def test_folders_named_like_images_and_empty_inputs(corpus, capsys):
    root, _ = corpus
    assert main(["remove", str(root / "folder.jpg")]) == 2
    assert f"no input images found in {root / 'folder.jpg'}" in capsys.readouterr().err
    assert main(["remove", str(root / "*.nothing")]) == 2
    assert "no file matches this pattern" in capsys.readouterr().err


@pytest.mark.parametrize(
    "trimap, message, code",
    [
        (lambda: Image.new("L", (40, 30), 128), "every pixel is unknown (128)", 2),
        (lambda: Image.new("RGB", (40, 30), (0, 128, 255)), "colour trimap", 2),
        (
            lambda: Image.fromarray(np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1))),
            "not a trimap label",
            2,
        ),
        (lambda: Image.new("L", (20, 30), 0), "trimap is 20×30 but the image is 40×30", 1),
        (lambda: None, "no such file", 2),
        (lambda: b"not an image", "not a recognised image", 2),
    ],
)
def test_bad_trimaps(corpus, tmp_path, capsys, trimap, message, code):
    root, _ = corpus
    made = trimap()
    path = tmp_path / "trimap.png"
    if isinstance(made, Image.Image):
        made.save(path)
    elif made is not None:
        path.write_bytes(made)
    out = tmp_path / "out.png"
    assert main(["remove", str(root / "cmyk.jpg"), "--trimap", str(path), "-o", str(out)]) == code
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err
    assert not out.exists()


def test_bad_option_in_a_real_process(corpus, tmp_path):
    """What a user sees for a bad option: one line, exit 2, no traceback, nothing written."""
    root, _ = corpus
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nuggy",
            "remove",
            str(root),
            "-o",
            str(tmp_path / "o"),
            "--island-min-area",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "nuggy remove: island_min_area must be a fraction in 0..1 (of the largest part's area), got 5.0"
    )
    assert list(tmp_path.iterdir()) == []


def test_trimap_outputs_are_distinct(tmp_path, capsys):
    """`nuggy trimap d/cat.jpg d/cat.png` wrote both to cat.trimap.png (with --overwrite the
    second replaced the first)."""
    shutil.copy(EXAMPLES / "chelsea.jpg", tmp_path / "cat.jpg")
    Image.open(EXAMPLES / "coffee.jpg").resize((60, 40)).save(tmp_path / "cat.png")
    rc = main(
        [
            "trimap",
            str(tmp_path / "cat.jpg"),
            str(tmp_path / "cat.png"),
            "--preset",
            "fast",
            "--overwrite",
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    a = np.asarray(Image.open(tmp_path / "cat.jpg.trimap.png"))
    b = np.asarray(Image.open(tmp_path / "cat.png.trimap.png"))
    assert a.shape == (300, 451) and b.shape == (40, 60)
    assert set(np.unique(a)) <= {0, 128, 255}


@pytest.mark.parametrize(
    "verb",
    [
        ["trimap", str(EXAMPLES / "chelsea.jpg")],
        ["bench", "--size", "64", "--runs", "1", "--warmup", "0"],
    ],
)
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

    from nuggy.filters import box_filter
    from nuggy.pipeline.refine import refine_alpha

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


@pytest.mark.parametrize(
    "verb",
    [
        ["remove", "missing.jpg", "-o", "{tmp}/x.png"],
        ["trimap", "missing.jpg", "-o", "{tmp}/x.png"],
        ["bench", "--image", "missing.jpg"],
        ["eval", "{tmp}/no-such-dataset"],
    ],
)
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


@pytest.mark.parametrize(
    "option, message",
    [
        (["--runs", "0"], "need runs >= 1 and warmup >= 0, got runs=0"),
        (["--warmup", "-1"], "need runs >= 1 and warmup >= 0, got runs=3, warmup=-1"),
        (["--set", "refine_radius=100000"], "refine_radius must be a whole number of pixels in 1..256"),
    ],
)
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
    from nuggy.pipeline.pipeline import Pipeline

    image = _thumb()
    plain = Pipeline(preset("default")).run(image).alpha
    for band in (0.01, 0.05, 0.1):
        cfg = preset("best", model="u2netp", trimap_band=band, matting_min_megapixels=0)
        result = Pipeline(cfg).run(image)
        a = result.alpha
        assert (a < 0.05).mean() > 0.05 and (a > 0.95).mean() > 0.05, band
        assert abs(float(a.mean()) - float(plain.mean())) < 0.1, band
        assert (result.trimap == 0).any() and (result.trimap == 255).any()
    unsure = np.full(image.shape[:2], 0.6, np.float32)
    alpha, _, trimap = _pipeline_matte(image, unsure, preset("best"))
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


def _pipeline_matte(image, alpha, cfg, *, trimap=None):
    """The matting stage as a Pipeline built from ``cfg`` runs it (solver resolved once)."""
    from nuggy.pipeline.pipeline import Pipeline

    return Pipeline(cfg)._matte(image, alpha, trimap=trimap)
