"""Every front end gives the same pixels for the same photo and settings.

One real photo goes through the CLI (``nuggy remove``), :func:`nuggy.remove`, the HTTP API and
the web app's processing function, with the same non-default settings given the way each front
end takes them; the alpha mattes must be identical (all four build their configuration with
``nuggy.pipeline.settings.build_config`` and run the same ``Pipeline``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.needs_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SETTINGS = {"refine_radius": 6, "islands": False, "trimap_band": 0.02, "interior_depth": 0.02}


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A real photo (examples/chelsea.jpg) at 240 px, as a lossless file every front end reads."""
    img = Image.open(EXAMPLES / "chelsea.jpg").convert("RGB")
    img.thumbnail((240, 240))
    path = tmp_path_factory.mktemp("frontends") / "chelsea.png"
    img.save(path)
    return path


def _alpha(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def test_cli_api_http_and_ui_give_identical_alpha(photo, tmp_path):
    from nuggy.cli.main import main

    out = tmp_path / "cli.png"
    flags = ["--refine-radius", "6", "--no-islands", "--trimap-band", "0.02", "--interior-depth", "0.02"]
    assert main(["remove", str(photo), "-o", str(out), "--mask-only", "-q", *flags]) == 0
    cli = _alpha(out.read_bytes())

    import nuggy

    api = np.asarray(nuggy.remove(str(photo), mask_only=True, **SETTINGS))

    from fastapi.testclient import TestClient

    from nuggy.server.app import create_app
    from nuggy.server.settings import Settings

    with TestClient(create_app(Settings())) as client:
        query = "&".join(f"{k}={str(v).lower()}" for k, v in SETTINGS.items())
        r = client.post(
            f"/v1/remove?format=mask&{query}",
            files={"image": ("chelsea.png", photo.read_bytes(), "image/png")},
        )
    assert r.status_code == 200, r.text
    http = _alpha(r.content)

    pytest.importorskip("streamlit")
    from nuggy.pipeline.settings import build_config
    from nuggy.ui import app as ui

    ui_result = ui.cut_out(photo.read_bytes(), "chelsea.png", build_config("default", **SETTINGS))
    web = ui_result.alpha_u8()

    assert cli.shape == api.shape == http.shape == web.shape
    assert 0.05 < (cli > 127).mean() < 0.95  # a real cut-out, not an empty or full matte
    np.testing.assert_array_equal(api, cli)
    np.testing.assert_array_equal(http, cli)
    np.testing.assert_array_equal(web, cli)
    # the settings took effect: the default settings give another matte
    plain = np.asarray(nuggy.remove(str(photo), mask_only=True))
    assert not np.array_equal(plain, cli)


def test_every_setting_reaches_every_front_end():
    """A setting listed once in SETTINGS is a CLI option, a query parameter and a web widget."""
    import argparse

    from nuggy.cli.remove import add_arguments
    from nuggy.pipeline.settings import SETTINGS
    from nuggy.server.app import SERVER_ONLY, stage_query

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    dests = {a.dest for a in parser._actions}
    import inspect

    query = set(inspect.signature(stage_query()).parameters)
    for s in SETTINGS:
        assert s.name in dests, s.name
        assert (s.name in query) != (s.name in SERVER_ONLY), s.name

    pytest.importorskip("streamlit")
    from nuggy.pipeline.config import PRESETS
    from nuggy.ui import app as ui

    class Recorder:  # stands in for st.sidebar: records which widget each setting got
        def __init__(self):
            self.keys = []

        def _w(self, *args, key, **kw):
            self.keys.append(key.split(":")[0])
            if "value" in kw:
                return kw["value"]
            if "index" in kw:
                return args[1][kw["index"]]
            return args[3] if len(args) > 3 else None

        checkbox = selectbox = select_slider = slider = _w

    rec = Recorder()
    values = ui.stage_widgets(rec, PRESETS["default"], "t", fba=False)
    assert set(rec.keys) == {s.name for s in SETTINGS} - ui.UI_HIDDEN
    assert build_ok(values)


def build_ok(values) -> bool:
    from nuggy.pipeline.settings import build_config

    return build_config("default", **values) == build_config("default")
