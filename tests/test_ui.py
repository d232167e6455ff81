"""Streamlit app: page flows through ``streamlit.testing.v1.AppTest`` (real u2netp, preset
``fast``, small photos) and the app's pure helpers."""

from __future__ import annotations

import io
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("streamlit")
from conftest import EXAMPLES  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from nuggy.ui import APP_PATH  # noqa: E402
from nuggy.ui import app as ui  # noqa: E402

pytestmark = pytest.mark.usefixtures("u2netp_path")


def _png(name: str, side: int = 96) -> bytes:
    im = Image.open(EXAMPLES / name).convert("RGB")
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def cat() -> bytes:
    return _png("chelsea.jpg")


@pytest.fixture(scope="module")
def cup() -> bytes:
    return _png("coffee.jpg")


def _app(preset: str = "fast") -> AppTest:
    at = AppTest.from_file(str(APP_PATH), default_timeout=120)
    at.run()
    assert not at.exception
    at.selectbox(key="preset").set_value(preset).run()
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _results(at: AppTest) -> list[dict]:
    return list(at.session_state["nuggy_results"].values())


def _labels(at: AppTest, kind: str) -> list[str]:
    return [w.label for w in at.get(kind)]


def _captions(at: AppTest) -> list[str]:
    return [c for im in at.get("image") for c in im.captions]


# --------------------------------------------------------------------------- page flows


def test_loads_without_upload_and_lists_presets_and_models():
    from nuggy.pipeline.config import PRESETS

    at = AppTest.from_file(str(APP_PATH), default_timeout=60)
    at.run()
    _ok(at)
    assert "Drop one or more photos" in at.info[0].value
    assert at.selectbox(key="preset").options == list(PRESETS)
    assert at.selectbox(key="preset").value == "default"
    assert "u2netp" in at.selectbox(key="model").options
    eps = float(at.select_slider(key="refine_eps:default").value)
    assert eps == pytest.approx(PRESETS["default"].refine_eps)
    assert {"Flip TTA", "Guided filter refinement", "Remove islands", "Decontaminate edge colours"} <= {
        c.label for c in at.sidebar.checkbox
    }
    assert not at.get("download_button")


def test_preset_from_environment(monkeypatch):
    monkeypatch.setenv("NUGGY_UI_PRESET", "fast")
    at = AppTest.from_file(str(APP_PATH), default_timeout=60)
    at.run()
    _ok(at)
    assert at.selectbox(key="preset").value == "fast"
    assert at.checkbox(key="tta:fast").value is False  # stage widgets start from the preset


def test_one_upload_shows_cutout_alpha_and_downloads(cat):
    at = _app()
    at.file_uploader(key="uploads").set_value(("cat.png", cat, "image/png"))
    at.run()
    _ok(at)
    assert not at.error
    assert {"Alpha", "Cut-out"} <= set(_captions(at))
    assert "Trimap" not in _captions(at)  # no matting stage in preset fast
    assert any("cat.png — 96×64 — segment" in c.value for c in at.caption)
    assert _labels(at, "download_button") == ["Download PNG (transparent)", "Download mask"]
    (entry,) = _results(at)
    assert entry["result"].alpha.shape == (64, 96)
    png = Image.open(io.BytesIO(entry["png"]["transparent"]))
    assert png.mode == "RGBA" and png.size == (96, 64)


def test_background_colour_changes_output_without_recomputing(cat):
    at = _app()
    at.file_uploader(key="uploads").set_value(("cat.png", cat, "image/png"))
    at.run()
    first = _results(at)[0]["result"]
    at.radio(key="bg_kind").set_value("Colour")
    at.run()
    at.color_picker(key="bg_colour").set_value("#ff0000")
    at.run()
    _ok(at)
    (entry,) = _results(at)
    assert entry["result"] is first  # same settings: the cut-out is reused
    assert "Download PNG (on background)" in _labels(at, "download_button")
    out = np.asarray(Image.open(io.BytesIO(entry["png"]["colour:255,0,0"])))
    assert out.shape == (64, 96, 3)
    alpha = first.alpha_u8()
    assert (out[alpha == 0] == (255, 0, 0)).all()


def test_changing_a_stage_reruns_the_pipeline(cat):
    at = _app()
    at.file_uploader(key="uploads").set_value(("cat.png", cat, "image/png"))
    at.run()
    at.checkbox(key="tta:fast").check()
    at.run()
    _ok(at)
    entries = _results(at)
    assert len(entries) == 2  # one result per (image, settings)
    assert not np.array_equal(entries[0]["result"].alpha, entries[1]["result"].alpha)


def test_many_uploads_zip_and_bad_file_shown_as_error(cat, cup):
    at = _app()
    at.file_uploader(key="uploads").set_value(
        [
            ("cat.png", cat, "image/png"),
            ("cup.png", cup, "image/png"),
            ("broken.png", b"not an image", "image/png"),
        ]
    )
    at.run()
    _ok(at)
    assert len(at.tabs) == 3
    assert "2 of 3 images cut out" in at.subheader[0].value
    assert "Download all (ZIP)" in _labels(at, "download_button")
    (err,) = at.error
    assert err.value.startswith("broken.png: not a recognised image")
    assert "Traceback" not in err.value


def test_matting_controls_are_shown():
    at = _app("default")
    _ok(at)
    assert "Matting solver" in [s.label for s in at.sidebar.selectbox]
    assert any(s.label.startswith("Trimap band") for s in at.sidebar.slider)


def test_matting_solver_shows_the_trimap(cat):
    at = _app()
    at.selectbox(key="matting:fast").set_value("guided")
    at.file_uploader(key="uploads").set_value(("cat.png", cat, "image/png"))
    at.run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    assert _captions(at) == ["Alpha", "Trimap", "Cut-out"]
    (entry,) = _results(at)
    assert set(np.unique(entry["result"].trimap)) <= {0, 128, 255}
    if not ui.fba_available():
        assert "fba" not in at.selectbox(key="matting:fast").options


def test_trimap_panel_shown_when_the_result_has_one():
    def page() -> None:
        import numpy as np

        from nuggy.pipeline.config import Result
        from nuggy.ui.app import BackgroundChoice, _show_one

        img = np.full((40, 60, 3), 120, np.uint8)
        alpha = np.zeros((40, 60), np.float32)
        alpha[10:30, 20:40] = 1.0
        trimap = np.where(alpha > 0, 255, 0).astype(np.uint8)
        trimap[9:31, 19:41][alpha[9:31, 19:41] == 0] = 128
        result = Result(
            image=img, alpha=alpha, probability=alpha, trimap=trimap, timings={"segment": 0.01, "matte": 0.02}
        )
        _show_one({"name": "synthetic.png", "result": result}, BackgroundChoice(), 0)

    at = AppTest.from_function(page, default_timeout=30)
    at.run()
    _ok(at)
    assert [c for im in at.get("image") for c in im.captions] == ["Alpha", "Trimap", "Cut-out"]


# --------------------------------------------------------------------------- helpers


def test_cut_out_and_errors(cat):
    from nuggy.pipeline.config import preset

    result = ui.cut_out(cat, "cat.png", preset("fast"))
    assert result.alpha.shape == (64, 96) and result.alpha.dtype == np.float32
    with pytest.raises(Exception) as info:
        ui.cut_out(cat, "cat.png", preset("fast"), max_pixels=100)
    assert "exceeds the limit" in ui.describe_error(info.value)
    assert ui.describe_error(MemoryError()) == "out of memory; try a smaller image"


def test_result_key_depends_on_bytes_and_config():
    from nuggy.pipeline.config import preset

    a, b = preset("fast"), preset("fast", tta=True)
    assert ui.result_key(b"x", a) == ui.result_key(b"x", preset("fast"))
    assert len({ui.result_key(b"x", a), ui.result_key(b"y", a), ui.result_key(b"x", b)}) == 3


def test_comparison_html_embeds_both_images():
    before = np.zeros((1200, 1800, 3), np.uint8)
    after = np.full((1200, 1800, 3), 255, np.uint8)
    html, height = ui.comparison_html(before, after)
    assert html.count("data:image/jpeg;base64,") == 2
    assert 'type="range"' in html
    assert height == round(700 * 1200 / 1800) + 8


def test_on_screen_puts_rgba_on_a_checkerboard():
    rgba = np.zeros((24, 24, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:12, :, 3] = 255
    shown = ui.on_screen(rgba)
    assert shown.shape == (24, 24, 3)
    assert (shown[:12] == (255, 0, 0)).all()
    assert set(np.unique(shown[12:])) == {200, 236}


def test_output_names_and_zip():
    taken: set[str] = set()
    names = [ui.output_name(n, ".png", taken) for n in ("a.jpg", "a.png", "dir/b.webp", "")]
    assert names == ["a.png", "a-2.png", "b.png", "image.png"]
    data = ui.build_zip([(n, n.encode()) for n in names])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == names
        assert zf.read("b.png") == b"b.png"


def test_ui_command_line():
    from nuggy.cli.main import build_parser
    from nuggy.cli.ui import streamlit_command

    args = build_parser().parse_args(["ui", "--port", "8765"])
    cmd = streamlit_command(args)
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(APP_PATH)]
    joined = " ".join(cmd)
    assert "--server.headless true" in joined
    assert "--server.address 127.0.0.1" in joined and "--server.port 8765" in joined
    assert "--browser.gatherUsageStats false" in joined
