"""`nuggy remove` on real photos: files, folders, stdin/stdout, backgrounds, bad files."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from nuggy.cli.main import main

pytestmark = pytest.mark.usefixtures("u2netp_path")


@pytest.fixture()
def photos(tmp_path) -> Path:
    d = tmp_path / "shoot"
    (d / "sub").mkdir(parents=True)
    shutil.copy(EXAMPLES / "chelsea.jpg", d / "cat.jpg")
    shutil.copy(EXAMPLES / "coffee.jpg", d / "sub" / "cup.jpg")
    return d


def _rgba(path: Path) -> np.ndarray:
    im = Image.open(path)
    assert im.mode == "RGBA"
    return np.asarray(im)


def test_single_file_default_name(photos):
    assert main(["remove", str(photos / "cat.jpg"), "--preset", "fast", "-q"]) == 0
    out = photos / "cat.nuggy.png"
    a = _rgba(out)
    assert a.shape == (300, 451, 4)
    alpha = a[..., 3].astype(float) / 255
    assert alpha.std() > 0.2  # not constant: subject and background both present


def test_folder_recursive_keeps_structure_and_skips_existing(photos, tmp_path, capsys):
    out = tmp_path / "cutouts"
    assert main(["remove", str(photos), "-o", str(out), "-r", "--preset", "fast"]) == 0
    assert (out / "cat.png").is_file() and (out / "sub" / "cup.png").is_file()
    # non-recursive sees only the top folder
    out2 = tmp_path / "flat"
    assert main(["remove", str(photos), "-o", str(out2), "--preset", "fast", "-q"]) == 0
    assert [p.name for p in out2.iterdir()] == ["cat.png"]
    # existing outputs are skipped, not rewritten
    before = (out / "cat.png").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["remove", str(photos), "-o", str(out), "-r", "--preset", "fast"]) == 0
    err = capsys.readouterr().err
    assert "0 written, 2 skipped, 0 failed" in err
    assert (out / "cat.png").stat().st_mtime_ns == before
    assert main(["remove", str(photos), "-o", str(out), "-r", "--preset", "fast", "--overwrite", "-q"]) == 0
    assert (out / "cat.png").stat().st_mtime_ns != before


def test_bad_file_does_not_stop_the_batch(photos, tmp_path, capsys):
    (photos / "broken.jpg").write_bytes((EXAMPLES / "chelsea.jpg").read_bytes()[:2000])
    (photos / "notes.png").write_bytes(b"hello")
    out = tmp_path / "o"
    rc = main(["remove", str(photos), "-o", str(out), "--preset", "fast"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "broken.jpg" in err and "truncated or corrupt" in err
    assert "notes.png" in err and "not a recognised image" in err
    assert "1 written, 0 skipped, 2 failed" in err
    assert (out / "cat.png").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["cat.png"]  # no partial files


def test_inputs_with_one_stem_get_distinct_outputs(photos, tmp_path, capsys):
    """Issue 18 (1): cat.jpg and cat.png in one folder used to both write cat.nuggy.png (the
    second replaced the first, and the summary counted two). Outputs are planned before any
    work: inputs that would share a name each get their full name in it."""
    Image.open(EXAMPLES / "coffee.jpg").save(photos / "cat.png")
    assert main(["remove", str(photos), "--preset", "fast", "--mask-only"]) == 0
    assert "2 written, 0 skipped, 0 failed" in capsys.readouterr().err
    outs = sorted(p.name for p in photos.iterdir() if ".nuggy" in p.name)
    assert outs == ["cat.jpg.nuggy.png", "cat.png.nuggy.png"]
    cat, cup = (np.asarray(Image.open(photos / n)) for n in outs)
    assert cat.shape == (300, 451) and cup.shape == (400, 600)  # one output per input
    # the same into a folder, and two folders whose files share names
    out = tmp_path / "o"
    assert main(["remove", str(photos), "-o", str(out), "--preset", "fast", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cat.jpg.png", "cat.png.png"]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(photos / "cat.jpg", other / "cat.jpg")
    rc = main(["remove", str(photos / "cat.jpg"), str(other / "cat.jpg"), "-o", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert rc == 2 and not (tmp_path / "p").exists()
    assert f"{photos / 'cat.jpg'} and {other / 'cat.jpg'} would both be written to" in err


@pytest.mark.parametrize("name", ["out.bmp", "out.xyz", "out.PNG.gif"])
def test_output_with_an_unknown_suffix_is_refused(photos, tmp_path, capsys, name):
    """Issue 18 (6): -o out.bmp / out.xyz exited 0 and created a folder out.bmp/."""
    out = tmp_path / name
    assert main(["remove", str(photos / "cat.jpg"), "-o", str(out), "--preset", "fast"]) == 2
    err = capsys.readouterr().err
    assert f"{out}: unknown output format" in err and ".png, .tif, .tiff, .webp" in err
    assert "end it with /" in err
    assert list(tmp_path.iterdir()) == [photos]


def test_output_file_or_folder(photos, tmp_path, capsys):
    # a file name for a folder of inputs
    assert main(["remove", str(photos), "-r", "-o", str(tmp_path / "x.png")]) == 2
    assert "names one file, but the inputs are 2 images" in capsys.readouterr().err
    # a name that says one format while --format says another
    assert main(["remove", str(photos / "cat.jpg"), "-o", str(tmp_path / "x.webp"), "--format", "png"]) == 2
    assert "--format png" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == [photos]
    # a trailing slash makes a dotted name a folder
    dotted = tmp_path / "cutouts.v2"
    assert main(["remove", str(photos / "cat.jpg"), "-o", f"{dotted}/", "--preset", "fast", "-q"]) == 0
    assert [p.name for p in dotted.iterdir()] == ["cat.png"]


@pytest.fixture()
def no_model(monkeypatch):
    """Loading a model is an error: what is checked here must be refused before that."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr("nuggy.pipeline.segment.load_predictors", refuse)


@pytest.mark.parametrize(
    "option, message",
    [
        # issue 18 (2): 100000 ran 67 s and used 11 GB on this 451×300 photo
        (
            ["--refine-radius", "100000"],
            "refine_radius must be a whole number of pixels in 1..256, got 100000",
        ),
        (["--refine-radius", "-3"], "refine_radius must be a whole number of pixels in 1..256, got -3"),
        (["--refine-eps", "-1"], "refine_eps must be a number in 1e-12..1"),
        (["--refine-eps", "nan"], "refine_eps must be a number in 1e-12..1, got nan"),
        (["--island-min-area", "5"], "island_min_area must be a fraction in 0..1"),
        (["--trimap-band", "0.5"], "trimap_band must be a fraction in 0..0.1"),
        (["--matting-prior", "-1"], "matting_prior must be a number in 0..100"),
        (["--threads", "0"], "threads must be a whole number in 1..256"),
        (["--class", "cat"], "segmenter_class applies to --segmenter deeplabv3 only"),
        (["--max-pixels", "-1"], "max_pixels=-1: the pixel limit must be a whole number >= 4"),
    ],
)
def test_bad_option_values_are_refused_before_any_work(photos, tmp_path, capsys, no_model, option, message):
    """Issue 18 (2, 8): every numeric option has a range; out of it is a usage error (exit 2)
    before a model is loaded or an image read, naming the setting and the value."""
    out = tmp_path / "x.png"
    assert main(["remove", str(photos / "cat.jpg"), "-o", str(out), *option]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_bad_output_locations_are_refused_before_any_work(photos, tmp_path, capsys, no_model, monkeypatch):
    """Issue 18 (8): -o x.jpg without --bg, or an output folder that cannot be written, failed
    only after the model had run on each file."""
    cat = str(photos / "cat.jpg")
    assert main(["remove", cat, "-o", str(tmp_path / "x.jpg")]) == 2
    assert "JPEG has no transparency" in capsys.readouterr().err
    (tmp_path / "afile").write_text("not a folder")
    assert main(["remove", cat, "-o", str(tmp_path / "afile" / "x.png")]) == 2
    assert f"{tmp_path / 'afile'} is a file, not a folder" in capsys.readouterr().err
    import os

    real_access = os.access
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: False if str(p) == str(ro) else real_access(p, mode, **kw)
    )
    assert main(["remove", cat, "-o", str(ro / "sub" / "x.png")]) == 2
    assert f"cannot write into {ro}: permission denied" in capsys.readouterr().err
    assert main(["remove", cat, "--trimap", str(tmp_path / "nope.png")]) == 2
    assert "nope.png: no such file" in capsys.readouterr().err
    assert main(["remove", cat, "--bg", str(tmp_path / "nope.jpg")]) == 2
    assert "nope.jpg" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "ro", "shoot"]
    assert list(ro.iterdir()) == []


def test_python_api_refuses_bad_options_before_work(monkeypatch):
    import nuggy
    from nuggy.errors import ConfigError

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr("nuggy.pipeline.segment.load_predictors", refuse)
    photo = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(
        ConfigError, match="refine_radius must be a whole number of pixels in 1..256, got 100000"
    ) as e:
        nuggy.remove(photo, refine_radius=100000)
    assert e.value.field == "refine_radius"
    with pytest.raises(ConfigError, match="tta must be true or false, got 'no'"):
        nuggy.remove(photo, tta="no")
    with pytest.raises(ConfigError, match="matting must be one of"):
        nuggy.remove(photo, matting="magic")
    with pytest.raises(nuggy.NuggyError, match="unknown setting 'radius'"):
        nuggy.remove(photo, radius=3)
    with pytest.raises(nuggy.NuggyError, match="not a colour name"):
        nuggy.remove(photo, bg="nonsense")
    with pytest.raises(FileNotFoundError, match="nope.onnx: weights file not found"):
        nuggy.remove(photo, weights="nope.onnx")


def test_folder_run_says_what_it_skipped(photos, capsys):
    """Issue 18 (10): .heic / .svg files in a folder were skipped without a word."""
    (photos / "phone.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    (photos / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (photos / "notes.txt").write_text("not an image")
    (photos / ".DS_Store").write_bytes(b"\0")
    assert main(["remove", str(photos), "--preset", "fast", "--mask-only"]) == 0
    err = capsys.readouterr().err
    assert f"{photos}: skipped 3 files of unsupported type (.heic, .svg, .txt)" in err
    assert err.count("\n") == 1 and (photos / "cat.nuggy.png").is_file()


def test_never_overwrites_an_input(photos, capsys):
    src = photos / "cat.png"
    Image.open(photos / "cat.jpg").save(src)
    before = src.read_bytes()
    rc = main(["remove", str(src), "-o", str(src), "--preset", "fast", "--overwrite"])
    assert rc == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert src.read_bytes() == before


@pytest.mark.parametrize("bg,mode", [("white", "RGB"), ("#00ff00", "RGB"), ("blur", "RGB")])
def test_backgrounds(photos, tmp_path, bg, mode):
    out = tmp_path / "x.png"
    assert (
        main(["remove", str(photos / "cat.jpg"), "-o", str(out), "--bg", bg, "--preset", "fast", "-q"]) == 0
    )
    im = Image.open(out)
    assert im.mode == mode and im.size == (451, 300)


def test_image_background_and_mask_only(photos, tmp_path):
    out = tmp_path / "x.png"
    bg = EXAMPLES / "rocket.jpg"
    assert (
        main(["remove", str(photos / "cat.jpg"), "-o", str(out), "--bg", str(bg), "--preset", "fast", "-q"])
        == 0
    )
    assert Image.open(out).mode == "RGB"
    m = tmp_path / "m.png"
    assert (
        main(["remove", str(photos / "cat.jpg"), "-o", str(m), "--mask-only", "--preset", "fast", "-q"]) == 0
    )
    mask = Image.open(m)
    assert mask.mode == "L" and np.asarray(mask).std() > 50


def test_bad_arguments(photos, tmp_path, capsys):
    assert main(["remove", str(photos / "cat.jpg"), "--bg", "nonsense", "-q"]) == 2
    assert "not a colour name" in capsys.readouterr().err
    assert main(["remove", str(photos), "-o", "-"]) == 2
    assert "exactly one input" in capsys.readouterr().err
    assert main(["remove", str(tmp_path / "missing.jpg"), "-q"]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["remove", str(photos / "cat.jpg"), "--preset", "nope"]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert main(["remove", str(photos / "cat.jpg"), "--preset", "best", "--matting-prior", "-1"]) == 2
    assert "matting_prior must be a number in 0..100, got -1" in capsys.readouterr().err


def test_stdin_stdout_subprocess():
    data = (EXAMPLES / "chelsea.jpg").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "nuggy", "remove", "-", "-o", "-", "--preset", "fast"],
        input=data,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    im = Image.open(io.BytesIO(proc.stdout))
    assert im.mode == "RGBA" and im.size == (451, 300)
    assert proc.stderr == b""  # nothing but the image on stdout, nothing noisy on stderr


def test_help_is_fast():
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nuggy", "--help"], capture_output=True, timeout=30)
    dt = time.perf_counter() - t0
    assert proc.returncode == 0 and b"remove" in proc.stdout
    # Interpreter start-up is ~30 ms; importing numpy/onnxruntime/cv2 would add > 300 ms.
    assert dt < 0.3 * 3, dt  # generous on a loaded CI core; the import check below is strict
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from nuggy.cli.main import build_parser; build_parser();"
            "heavy=[m for m in ('numpy','onnxruntime','cv2','torch','PIL','scipy') if m in sys.modules];"
            "print(','.join(heavy))",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stdout.strip() == "", f"heavy modules imported by --help: {proc.stdout}"
