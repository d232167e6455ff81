"""Interactive hints (issue 14): validation, box crop, keep/drop on real photos, locality, and
the CLI / API / server plumbing."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from conftest import EVALDATA, EXAMPLES, ROOT

from nuggy.errors import UsageError
from nuggy.pipeline.hints import (
    HintError,
    Hints,
    apply_hints,
    box_crop,
    box_probability,
    parse_box,
    render_hint_image,
    validate_hint_image,
)

ECSSD = EVALDATA / "ecssd-dev"

from nuggy.pipeline.config import preset  # noqa: E402

#: the default pipeline without colour decontamination (not what hints change; saves time)
_CFG = preset("default", foreground=False)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, shape, words",
    [
        ({"box": (10, 10, 5, 20)}, (40, 60), "empty"),
        ({"box": (10, 10, 10, 20)}, (40, 60), "empty"),
        ({"box": (0, 0, 61, 40)}, (40, 60), "outside the 60×40 image"),
        ({"box": (-1, 0, 20, 20)}, (40, 60), "outside"),
        ({"keep": [(60, 5)]}, (40, 60), "keep click 60,5 is outside the 60×40 image"),
        ({"drop": [(3, -1)]}, (40, 60), "drop click 3,-1 is outside"),
        ({"box": (0, 0, 20, 20), "keep": [(30, 30)]}, (40, 60), "outside the box"),
        (
            {"strokes": np.full((30, 60), 128, np.uint8)},
            (40, 60),
            "hint image is 60×30 but the photo is 60×40",
        ),
    ],
)
def test_bad_hints_are_clear_errors(kwargs, shape, words):
    with pytest.raises(HintError, match=words.replace("(", r"\(")):
        Hints(**kwargs).check(shape)


def test_bad_values_and_forms():
    with pytest.raises(HintError, match="whole number"):
        Hints(keep=[(1.5, 2)])
    with pytest.raises(HintError, match="expected x0,y0,x1,y1"):
        parse_box("1,2,3")
    with pytest.raises(UsageError, match="values other than 0"):
        bad = np.full((8, 8), 128, np.uint8)
        bad[2, 2] = 60
        validate_hint_image(bad, name="fix.png")
    with pytest.raises(HintError, match="colour hint image"):
        validate_hint_image(
            np.dstack(
                [np.zeros((4, 4), np.uint8), np.full((4, 4), 255, np.uint8), np.zeros((4, 4), np.uint8)]
            )
        )


def test_hint_image_forms():
    grey = np.full((6, 6), 128, np.uint8)
    grey[0, 0], grey[1, 1], grey[2, 2] = 255, 0, 254
    out = validate_hint_image(grey)
    assert out[0, 0] == 255 and out[1, 1] == 0 and out[2, 2] == 255 and out[3, 3] == 128
    rgba = np.zeros((6, 6, 4), np.uint8)  # transparent everywhere = no hint, any colour
    rgba[..., 0] = 77
    rgba[4, 4] = (255, 255, 255, 255)
    out = validate_hint_image(rgba)
    assert out[4, 4] == 255 and (out[np.arange(6) != 4] == 128).all()
    with pytest.raises(HintError, match="values other than"):
        rgba[1, 1] = (77, 77, 77, 255)  # opaque and not 0/128/255
        validate_hint_image(rgba)


def test_seeds_and_render_roundtrip():
    h = Hints(keep=[(10, 10)], drop=[(40, 20)])
    keep, drop = h.seeds((30, 50))
    assert keep[10, 10] and drop[20, 40] and not (keep & drop).any()
    img = render_hint_image(h, (30, 50))
    again = Hints(strokes=img).seeds((30, 50))
    assert (again[0] == keep).all() and (again[1] == drop).all()


# --------------------------------------------------------------------------- box


def test_box_crop_runs_the_model_on_the_crop_only():
    image = np.zeros((100, 200, 3), np.uint8)
    seen = []

    def predict(crop):
        seen.append(crop.shape)
        return np.full(crop.shape[:2], 0.8, np.float32)

    box = (50, 20, 150, 60)
    cx0, cy0, cx1, cy1 = box_crop(image.shape, box)
    assert (cx0, cy0, cx1, cy1) == (20, 0, 180, 90)  # 30 % of the longer side (100 px), clipped
    p = box_probability(predict, image, box)
    assert seen == [(90, 160, 3)]
    assert (p[20:60, 50:150] == np.float32(0.8)).all()
    p[20:60, 50:150] = 0
    assert not p.any()  # outside the box: background


@pytest.mark.slow
@pytest.mark.usefixtures("u2netp_path")
def test_pipeline_box_clears_outside_and_uses_the_model(chelsea):
    from nuggy.pipeline.pipeline import Pipeline

    pipe = Pipeline(_CFG)
    box = (200, 0, 451, 300)
    res = pipe.run(chelsea, hints=Hints(box=box))
    assert res.alpha[:, :200].max() == 0
    assert res.alpha[:, 200:].mean() > 0.3
    assert pipe.predictor is not None and res.timings["segment"] > 0  # the model ran (on the crop)


# --------------------------------------------------------------------------- clicks on real photos


def _photo(name: str):
    from nuggy.eval.datasets import read_matte
    from nuggy.io import load_image

    if not (ECSSD / "image" / f"{name}.jpg").is_file():
        pytest.skip(f"ecssd-dev not found at {ECSSD}")
    return load_image(ECSSD / "image" / f"{name}.jpg"), read_matte(ECSSD / "mask" / f"{name}.png") >= 0.5


def _iou(a, b):
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


@pytest.mark.slow
@pytest.mark.usefixtures("u2netp_path")
def test_keep_and_drop_clicks_fix_real_errors():
    """On ecssd-dev photos where u2netp errs, one simulated click (RITM rule) raises IoU."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from interactive import next_click

    from nuggy.pipeline.pipeline import Pipeline

    pipe = Pipeline(_CFG)
    kinds = set()
    for name in ("0016", "0020", "0032"):
        image, gt = _photo(name)
        prob = pipe._predict(image, pipe.config, _nostage)
        auto = pipe.run(image, probability=prob).alpha >= 0.5
        (x, y), is_keep = next_click(auto, gt)
        hints = Hints(keep=[(x, y)]) if is_keep else Hints(drop=[(x, y)])
        fixed = pipe.run(image, probability=prob, hints=hints).alpha
        assert fixed[y, x] == (1.0 if is_keep else 0.0)
        assert _iou(fixed >= 0.5, gt) > _iou(auto, gt) + 0.02, name
        kinds.add(is_keep)
    assert kinds == {True, False}  # both a keep and a drop case


def _nostage(name):
    from contextlib import nullcontext

    return nullcontext()


@pytest.mark.usefixtures("u2netp_path")
def test_agreeing_hint_changes_nothing_outside_its_region(chelsea):
    """A keep click on the cat (the model already has it) and a drop click on the background:
    the map changes only inside their region of influence, and the final alpha only within the
    reach of the local stages (guided filter radius) around it."""
    import cv2

    from nuggy.pipeline.pipeline import Pipeline

    pipe = Pipeline(_CFG)
    prob = pipe._predict(chelsea, pipe.config, _nostage)
    hints = Hints(keep=[(330, 170)], drop=[(30, 30)])
    assert prob[170, 330] > 0.9 and prob[30, 30] < 0.1
    hinted = apply_hints(prob, chelsea, hints)
    assert (hinted.probability[~hinted.influence] == prob[~hinted.influence]).all()
    assert hinted.influence.mean() < 0.9
    base = pipe.run(chelsea, probability=prob).alpha
    res = pipe.run(chelsea, probability=prob, hints=hints).alpha
    reach = cv2.dilate(hinted.influence.astype(np.uint8), np.ones((41, 41), np.uint8)) > 0
    # identical up to float32 rounding of the guided filter's running sums (an 8-bit output is
    # the same pixel for pixel)
    assert np.abs(res[~reach] - base[~reach]).max() < 1e-6
    u8 = lambda a: np.round(a * 255).astype(np.uint8)  # noqa: E731
    assert np.array_equal(u8(res)[~reach], u8(base)[~reach])
    # inside, an agreeing hint leaves the subject as it was (it only firms up faint alpha)
    assert np.mean((res >= 0.5) != (base >= 0.5)) < 0.005
    assert np.abs(res - base).mean() < 0.005


# --------------------------------------------------------------------------- front ends


def _cli(*args, cwd):
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "nuggy", "remove", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_usage_errors_exit_2(tmp_path):
    photo = str(EXAMPLES / "chelsea.jpg")
    cases = [
        (
            [photo, str(EXAMPLES / "coffee.jpg"), "--keep", "3,4", "-o", str(tmp_path)],
            "takes exactly one INPUT",
        ),
        ([photo, "--box", "0,0,500,100", "-o", str(tmp_path / "a.png")], "outside the 451×300 image"),
        ([photo, "--drop", "3", "-o", str(tmp_path / "a.png")], "expected x,y"),
        (
            [photo, "--hints", str(tmp_path / "none.png"), "-o", str(tmp_path / "a.png")],
            "none.png: no such file",
        ),
    ]
    small = np.full((10, 10), 128, np.uint8)
    from PIL import Image

    Image.fromarray(small).save(tmp_path / "small.png")
    cases.append(
        (
            [photo, "--hints", str(tmp_path / "small.png"), "-o", str(tmp_path / "a.png")],
            "small.png: the hint image is 10×10 but the photo is 451×300",
        )
    )
    for args, words in cases:
        r = _cli(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        assert words in r.stderr, (words, r.stderr)
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "a.png").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("u2netp_path")
def test_cli_api_and_server_apply_the_same_hints(tmp_path, chelsea):
    import nuggy
    from nuggy.io import load_image

    hint = np.full(chelsea.shape[:2], 128, np.uint8)
    hint[20:40, 20:60] = 0
    hint[150:160, 300:340] = 255
    from PIL import Image

    Image.fromarray(hint).save(tmp_path / "fix.png")
    args = ["--box", "100,0,451,300", "--keep", "320,170", "--drop", "120,20", "--mask-only"]
    r = _cli(
        str(EXAMPLES / "chelsea.jpg"),
        *args,
        "--hints",
        str(tmp_path / "fix.png"),
        "-o",
        str(tmp_path / "cli.png"),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    cli = load_image(tmp_path / "cli.png")[..., 0]
    api = np.asarray(
        nuggy.remove(
            chelsea,
            box=(100, 0, 451, 300),
            keep=[(320, 170)],
            drop=[(120, 20)],
            hints=hint,
            mask_only=True,
            foreground=False,
        )
    )
    assert np.array_equal(cli, api)
    assert api[:, :100].max() == 0 and api[25, 30] == 0

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from nuggy.server.app import create_app
    from nuggy.server.settings import Settings

    client = TestClient(create_app(Settings()))
    body = (EXAMPLES / "chelsea.jpg").read_bytes()
    resp = client.post(
        "/v1/remove?format=mask&box=100,0,451,300&keep=320,170&drop=120,20",
        files={
            "image": ("c.jpg", body, "image/jpeg"),
            "hints": ("fix.png", (tmp_path / "fix.png").read_bytes(), "image/png"),
        },
    )
    assert resp.status_code == 200, resp.text
    served = np.asarray(Image.open(io.BytesIO(resp.content)).convert("L"))
    assert np.array_equal(served, api)
    bad = client.post("/v1/remove?keep=999,5", files={"image": ("c.jpg", body, "image/jpeg")})
    assert bad.status_code == 422 and "outside the 451×300 image" in bad.json()["detail"]
    bad = client.post("/v1/remove?box=1,2,3", files={"image": ("c.jpg", body, "image/jpeg")})
    assert bad.status_code == 422 and "x0,y0,x1,y1" in bad.json()["detail"]
    wrong = io.BytesIO()
    Image.fromarray(np.full((5, 5), 128, np.uint8)).save(wrong, "PNG")
    bad = client.post(
        "/v1/remove",
        files={"image": ("c.jpg", body, "image/jpeg"), "hints": ("h.png", wrong.getvalue(), "image/png")},
    )
    assert bad.status_code == 422 and "5×5 but the photo is 451×300" in bad.json()["detail"]


def test_ui_strokes_become_hints():
    from nuggy.ui.hint_canvas import from_preview, hints_from_strokes, replay_command

    s = from_preview({"mode": "keep", "radius": 3, "points": [[10, 10], [20, 10]]}, 2.0)
    assert s == {"mode": "keep", "radius": 6, "points": [[20, 20], [40, 20]]}
    assert from_preview({"mode": "erase", "radius": 1, "points": [[1, 1]]}, 1.0) is None
    strokes = [
        s,
        {"mode": "box", "radius": 1, "points": [[90, 70], [5, 2]]},
        {"mode": "drop", "radius": 2, "points": [[80, 50]]},
    ]
    h = hints_from_strokes(strokes, (60, 100))
    assert h.box == (5, 2, 90, 60)
    assert h.strokes[20, 30] == 255 and h.strokes[50, 80] == 0 and h.strokes[0, 0] == 128
    assert hints_from_strokes([], (60, 100)) is None
    assert replay_command("cat.jpg", h) == "nuggy remove cat.jpg --box 5,2,90,60 --hints cat.hints.png"
