"""HTTP API: every route, every status code, both upload styles, every output format.

Runs the real u2netp pipeline (preset ``fast``) on small photos through FastAPI's TestClient;
slow-work cases (504) use a stand-in pipeline so they take a fraction of a second.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

with warnings.catch_warnings():  # starlette prefers httpx2; httpx works
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient

from conftest import EXAMPLES

from nuggy.server.app import WorkLimiter, create_app, safe_background
from nuggy.server.settings import Settings

pytestmark = pytest.mark.usefixtures("u2netp_path")

FAST = "/v1/remove?preset=fast"


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    im = Image.open(EXAMPLES / "chelsea.jpg").convert("RGB")
    im.thumbnail((96, 96))
    return im  # 96×64


@pytest.fixture(scope="module")
def png(photo) -> bytes:
    return _encode(photo, "PNG")


@pytest.fixture(scope="module")
def jpeg(photo) -> bytes:
    return _encode(photo, "JPEG")


@contextmanager
def client_for(**kw):
    app = create_app(Settings(**kw))
    with TestClient(app) as client:
        client.app_ = app
        yield client


@pytest.fixture(scope="module")
def client():
    with client_for() as c:
        yield c


def _open(content: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(content))
    im.load()
    return im


@contextmanager
def pipeline_for(client, fn):
    """Replace ``app.state.pipeline_for`` for the duration (State does not suit monkeypatch)."""
    state = client.app_.state
    old = state.pipeline_for
    state.pipeline_for = fn
    try:
        yield
    finally:
        state.pipeline_for = old


def _detail(r) -> str:
    d = r.json()["detail"]
    return d if isinstance(d, str) else str(d)


# --------------------------------------------------------------------------- routes


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["active"] == 0 and body["queued"] == 0
    assert body["capacity"] == 1 + 8


def test_models_lists_registry_presets_and_availability(client):
    from nuggy.pipeline.config import PRESETS
    from nuggy.registry import list_models
    from nuggy.sources import cached_path

    r = client.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["default_model"] == "u2netp"
    assert set(body["presets"]) == set(PRESETS)
    assert body["presets"]["fast"]["tta"] is False
    rows = {m["name"]: m for m in body["models"]}
    assert set(rows) == {s.name for s in list_models()}
    assert rows["u2netp"]["available"] and rows["u2netp"]["default"]
    for name, row in rows.items():
        cached = cached_path(name) is not None
        assert row["cached"] == cached
        assert row["available"] == (cached or name == "u2netp")
        if not cached:
            assert row["fetch"].startswith(f"nuggy models pull {name}")


def test_openapi_documents_both_upload_styles(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/remove"]["post"]
    assert {"multipart/form-data", "image/jpeg", "application/octet-stream"} <= set(
        op["requestBody"]["content"]
    )
    assert {"413", "415", "422", "503", "504"} <= set(op["responses"])
    params = {p["name"] for p in op["parameters"]}
    assert {
        "format",
        "bg",
        "preset",
        "model",
        "tta",
        "interior",
        "refine_radius",
        "island_min_area",
        "matting",
        "foreground",
    } <= params
    from nuggy.pipeline.config import PRESETS

    preset_param = next(p for p in op["parameters"] if p["name"] == "preset")
    assert preset_param["schema"]["enum"] == list(PRESETS)  # new presets appear by themselves


def test_docs_can_be_switched_off():
    with client_for(docs=False) as c:
        assert c.get("/docs").status_code == 404
        assert c.get("/openapi.json").status_code == 404


# --------------------------------------------------------------------------- 200


def test_multipart_png_is_rgba_of_input_size(client, jpeg, photo):
    r = client.post(FAST, files={"image": ("cat.jpg", jpeg, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert "segment;dur=" in r.headers["server-timing"]
    assert r.headers["x-nuggy-model"] == "u2netp"
    im = _open(r.content)
    assert im.format == "PNG" and im.mode == "RGBA" and im.size == photo.size
    a = np.asarray(im)[..., 3]
    assert a.max() > 200 and a.min() == 0  # a cat was found, and background removed


def test_raw_body_webp(client, png, photo):
    r = client.post(FAST + "&format=webp", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/webp"
    im = _open(r.content)
    assert im.format == "WEBP" and im.mode == "RGBA" and im.size == photo.size


def test_raw_body_octet_stream_mask(client, jpeg, photo):
    r = client.post(FAST + "&format=mask", content=jpeg, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    im = _open(r.content)
    assert im.format == "PNG" and im.mode == "L" and im.size == photo.size


@pytest.fixture(scope="module")
def mask(client, png) -> np.ndarray:
    r = client.post(FAST + "&format=mask", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    return np.asarray(_open(r.content))


@pytest.mark.parametrize(
    "bg, rgb",
    [("red", (255, 0, 0)), ("%2300ff00", (0, 255, 0)), ("0,0,255", (0, 0, 255)), ("abc", (0xAA, 0xBB, 0xCC))],
)
def test_bg_colour(client, png, photo, mask, bg, rgb, tmp_path, monkeypatch):
    # a file named like the colour must not be read as an image background
    monkeypatch.chdir(tmp_path)
    photo.save(tmp_path / "abc", "PNG")
    r = client.post(f"{FAST}&bg={bg}", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    im = _open(r.content)
    assert im.mode == "RGB" and im.size == photo.size
    out = np.asarray(im).astype(int)
    back, subject = mask == 0, mask >= 250
    assert back.sum() > 100 and subject.sum() > 100
    np.testing.assert_allclose(out[back], np.broadcast_to(rgb, out[back].shape), atol=1)
    np.testing.assert_allclose(out[subject], np.asarray(photo).astype(int)[subject], atol=6)


def test_bg_blur_gives_rgb(client, png, photo):
    r = client.post(FAST + "&bg=blur:0.02&format=webp", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    im = _open(r.content)
    assert im.mode == "RGB" and im.size == photo.size


def test_stage_switches_reach_the_pipeline(client, png):
    pytest.importorskip("nuggy.pipeline.refine")
    r = client.post(
        FAST + "&refine=true&refine_radius=4&refine_eps=0.01&format=mask",
        content=png,
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code == 200, r.text
    assert "refine;dur=" in r.headers["server-timing"]
    plain = client.post(FAST + "&format=mask", content=png, headers={"Content-Type": "image/png"})
    assert "refine" not in plain.headers["server-timing"]


def test_matting_stage_runs(client, png, photo):
    r = client.post(FAST + "&matting=guided", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert "matte;dur=" in r.headers["server-timing"]
    assert _open(r.content).size == photo.size


def test_preset_best(client, jpeg, photo):
    # the 96×64 photo is below best's matting_min_megapixels: matting is skipped unless lowered
    r = client.post("/v1/remove?preset=best&bg=white", files={"image": ("cat.jpg", jpeg, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.headers["x-nuggy-preset"] == "best"
    assert "matte;dur=" not in r.headers["server-timing"]
    r = client.post(
        "/v1/remove?preset=best&bg=white&matting_min_megapixels=0",
        files={"image": ("cat.jpg", jpeg, "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    assert "matte;dur=" in r.headers["server-timing"]
    im = _open(r.content)
    assert im.mode == "RGB" and im.size == photo.size


def test_422_fba_without_its_checkpoint(client, png):
    from nuggy.pipeline.matte import find_fba_weights

    if find_fba_weights() is not None:
        pytest.skip("FBA.pth is in the model cache")
    r = client.post(FAST + "&matting=fba", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 422
    assert "FBA.pth" in _detail(r)


def test_other_cached_model_is_served(client, png, monkeypatch):
    from nuggy.pipeline.config import PipelineConfig

    seen: list[PipelineConfig] = []
    default = client.app_.state.pipeline_for

    def spy(cfg, base):
        seen.append(cfg)
        return default(cfg.replace(model="u2netp"), base.replace(model="u2netp"))

    monkeypatch.setattr("nuggy.sources.cached_path", lambda spec, **kw: Path("/cached"))
    with pipeline_for(client, spy):
        r = client.post(FAST + "&model=u2net", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert seen[0].model == "u2net" and r.headers["x-nuggy-model"] == "u2net"


# --------------------------------------------------------------------------- 413


def test_413_by_content_length(png):
    with client_for(max_upload_bytes=1000) as c:
        r = c.post(FAST, files={"image": ("cat.png", png, "image/png")})
        assert r.status_code == 413
        assert "1,000 bytes" in _detail(r)


def test_413_chunked_body_counted(png):
    def chunks():
        for i in range(0, len(png), 512):
            yield png[i : i + 512]

    with client_for(max_upload_bytes=2000) as c:
        r = c.post(FAST, content=chunks(), headers={"Content-Type": "image/png"})
        assert r.status_code == 413


def test_413_pixels(png):
    with client_for(max_pixels=1000) as c:
        r = c.post(FAST, content=png, headers={"Content-Type": "image/png"})
        assert r.status_code == 413
        assert "96×64" in _detail(r) and "--max-pixels" in _detail(r)


# --------------------------------------------------------------------------- 415


def test_415_not_an_image(client):
    r = client.post(FAST, content=b"definitely not an image", headers={"Content-Type": "image/png"})
    assert r.status_code == 415
    assert "not a recognised image" in _detail(r)


def test_415_truncated_image(client, jpeg):
    r = client.post(FAST, content=jpeg[: len(jpeg) // 3], headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 415
    assert "truncated" in _detail(r) or "corrupt" in _detail(r)


def test_415_wrong_content_type(client, png):
    r = client.post(FAST, content=png, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert "-F image=@" in _detail(r)


def test_415_format_not_accepted(jpeg):
    with client_for(formats=("PNG",)) as c:
        r = c.post(FAST, content=jpeg, headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 415
        assert "JPEG is not accepted" in _detail(r)


# --------------------------------------------------------------------------- 422


@pytest.mark.parametrize(
    "query, needle",
    [
        ("preset=nope", "preset"),
        ("preset=fast&format=gif", "format"),
        ("preset=fast&refine_radius=0", "refine_radius"),
        ("preset=fast&island_min_area=2", "island_min_area"),
        ("preset=fast&tta=maybe", "tta"),
        ("preset=fast&matting=magic", "matting"),
        ("preset=best&matting_prior=-1", "matting_prior"),
        ("preset=fast&model=nosuchmodel", "unknown model"),
        ("preset=fast&bg=/etc/passwd", "not accepted by the API"),
        ("preset=fast&bg=http://example.com/x.jpg", "not accepted by the API"),
        ("preset=fast&bg=blur:9", "blur strength"),
        ("preset=fast&bg=300,0,0", "0..255"),
        ("preset=fast&format=mask&bg=white", "does not apply"),
    ],
)
def test_422_bad_parameters(client, png, query, needle):
    r = client.post(f"/v1/remove?{query}", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 422, r.text
    assert needle in _detail(r)


def test_query_bounds_are_the_config_ranges(client, png):
    """Issue 18 (2): one table of ranges (PipelineConfig's LIMITS) for every front end: the
    API's documented bounds are those the CLI and Python API enforce."""
    from nuggy.pipeline.config import LIMITS

    spec = client.get("/openapi.json").json()["paths"]["/v1/remove"]["post"]["parameters"]
    params = {p["name"]: p["schema"] for p in spec}
    seen = 0
    for name, lim in LIMITS.items():
        if name not in params:
            continue
        (schema,) = [s for s in params[name].get("anyOf", [params[name]]) if s.get("type") != "null"]
        assert schema["maximum"] == lim.hi
        assert schema["exclusiveMinimum" if lim.lo_open else "minimum"] == lim.lo
        seen += 1
    assert seen >= 7
    r = client.post(
        "/v1/remove?preset=best&trimap_band=0.2", content=png, headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 422 and "trimap_band" in _detail(r)


@pytest.mark.parametrize("bg", ["300,0,0", "blur:9", "blur:x"])
def test_bg_errors_speak_the_api(client, png, bg):
    """Issue 18 (10): the API's error for a bad bg named the CLI flag (--bg)."""
    r = client.post(f"/v1/remove?preset=fast&bg={bg}", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 422
    assert _detail(r).startswith(f"bg={bg!r}: ") and "--bg" not in _detail(r)


def test_422_missing_image_field(client, png):
    r = client.post(FAST, files={"photo": ("cat.png", png, "image/png")})
    assert r.status_code == 422
    assert "'image' field" in _detail(r)


def test_422_empty_body(client):
    r = client.post(FAST, content=b"", headers={"Content-Type": "image/png"})
    assert r.status_code == 422
    assert "empty" in _detail(r)


def test_422_uncached_model_names_the_fetch_command(client, png, monkeypatch):
    monkeypatch.setattr("nuggy.sources.cached_path", lambda spec, **kw: None)
    r = client.post(FAST + "&model=isnet-quint8", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 422
    assert "nuggy models pull isnet-quint8 --accept-license agpl-3.0" in _detail(r)


def test_422_model_not_enabled(png):
    with client_for(models=("u2netp",)) as c:
        r = c.post(FAST + "&model=isnet", content=png, headers={"Content-Type": "image/png"})
        assert r.status_code == 422
        assert "not enabled" in _detail(r)


# --------------------------------------------------------------------------- 503 / 504


def test_503_when_saturated_then_recovers(png):
    with client_for(concurrency=1, queue=0) as c:
        with c.app_.state.limiter.hold():
            r = c.post(FAST, content=png, headers={"Content-Type": "image/png"})
            assert r.status_code == 503
            assert int(r.headers["retry-after"]) >= 1
            assert "busy" in _detail(r)
            assert c.get("/healthz").json()["active"] == 1
        r = c.post(FAST, content=png, headers={"Content-Type": "image/png"})
        assert r.status_code == 200


def test_503_when_queued_past_the_timeout(png):
    with client_for(concurrency=1, queue=1, request_timeout=0.3) as c:
        with c.app_.state.limiter.hold():
            t0 = time.monotonic()
            r = c.post(FAST, content=png, headers={"Content-Type": "image/png"})
            assert r.status_code == 503
            assert 0.25 < time.monotonic() - t0 < 5
            assert "no processing slot" in _detail(r)
            assert "retry-after" in r.headers
        assert c.get("/healthz").json()["queued"] == 0


class _SlowPipeline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.finished = threading.Event()

    def run(self, image):
        from nuggy.pipeline.config import Result

        time.sleep(self.seconds)
        h, w = image.shape[:2]
        alpha = np.zeros((h, w), np.float32)
        self.finished.set()
        return Result(image=image, alpha=alpha, probability=alpha)


def test_504_when_processing_exceeds_the_timeout(png):
    slow = _SlowPipeline(0.8)
    with client_for(concurrency=1, queue=0, request_timeout=0.2) as c:
        c.app_.state.pipeline_for = lambda cfg, base: slow  # this app only
        r = c.post(FAST, content=png, headers={"Content-Type": "image/png"})
        assert r.status_code == 504
        assert "0.2 s" in _detail(r)
        # the abandoned work keeps its place until it finishes: no pile-up
        busy = c.post(FAST, content=png, headers={"Content-Type": "image/png"})
        assert busy.status_code == 503
        assert slow.finished.wait(5)
        deadline = time.monotonic() + 5
        while c.get("/healthz").json()["active"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.get("/healthz").json()["active"] == 0


def test_503_when_the_model_cannot_be_loaded(client, png):
    from nuggy.sources import ModelNotFoundError

    def missing(cfg, base):
        raise ModelNotFoundError(
            "model 'u2netp' is not in the cache. Fetch it with:\n  nuggy models pull u2netp"
        )

    with pipeline_for(client, missing):
        r = client.post(FAST, content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 503
    assert "nuggy models pull u2netp" in _detail(r)


def test_concurrent_requests_queue_and_all_succeed(png):
    with client_for(concurrency=1, queue=3) as c:
        codes: list[int] = []

        def post() -> None:
            codes.append(
                c.post(FAST + "&format=mask", content=png, headers={"Content-Type": "image/png"}).status_code
            )

        threads = [threading.Thread(target=post) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert codes == [200] * 3


# --------------------------------------------------------------------------- units


def test_safe_background_never_reads_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "beach.jpg").write_bytes(b"x")
    for text in ("beach.jpg", str(tmp_path / "beach.jpg"), "file:///etc/passwd", "~/x.png"):
        with pytest.raises(ValueError):
            safe_background(text)
    assert safe_background("ABC").colour == (0xAA, 0xBB, 0xCC)
    assert safe_background(None).kind == "transparent"
    assert safe_background("blur").kind == "blur"


def test_limiter_bounds():
    lim = WorkLimiter(concurrency=1, queue=1)
    assert lim.admit() and lim.admit() and not lim.admit()
    assert lim.acquire(0) and not lim.acquire(0.01)
    assert lim.active == 1 and lim.queued == 1
    lim.release(2.0)
    lim.leave()
    assert lim.admit()
    assert lim.retry_after() >= 1


def test_settings_from_env_and_flags():
    env = {
        "NUGGY_PORT": "9001",
        "NUGGY_MAX_UPLOAD_BYTES": "5000",
        "NUGGY_MODELS": "u2netp, isnet",
        "NUGGY_REQUEST_TIMEOUT": "2.5",
        "NUGGY_DOCS": "0",
        "NUGGY_FORMATS": "png,jpeg",
    }
    s = Settings.from_env(env, port=None, concurrency=3)
    assert (s.port, s.max_upload_bytes, s.models, s.request_timeout, s.docs, s.formats, s.concurrency) == (
        9001,
        5000,
        ("u2netp", "isnet"),
        2.5,
        False,
        ("PNG", "JPEG"),
        3,
    )
    assert Settings.from_env(s.to_env()) == s
    with pytest.raises(ValueError, match="NUGGY_PORT"):
        Settings.from_env({"NUGGY_PORT": "eighty"})
    with pytest.raises(ValueError, match="concurrency"):
        Settings(concurrency=0)


def test_serve_flags_override_env(monkeypatch):
    from nuggy.cli.main import build_parser
    from nuggy.cli.serve import settings_from_args

    monkeypatch.setenv("NUGGY_QUEUE", "3")
    monkeypatch.setenv("NUGGY_PORT", "9999")
    args = build_parser().parse_args(
        [
            "serve",
            "--port",
            "8123",
            "--max-upload-mb",
            "2",
            "--concurrency",
            "2",
            "--timeout",
            "7",
            "--models",
            "u2netp",
            "--no-docs",
        ]
    )
    s = settings_from_args(args)
    assert (
        s.port,
        s.max_upload_bytes,
        s.concurrency,
        s.queue,
        s.request_timeout,
        s.models,
        s.docs,
        s.host,
    ) == (8123, 2 * 1024 * 1024, 2, 3, 7.0, ("u2netp",), False, "127.0.0.1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_nuggy_serve_answers_on_loopback(png, tmp_path):
    import httpx

    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nuggy", "serve", "--port", str(port), "--log-level", "warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "nuggy serve did not come up"
            time.sleep(0.2)
        r = httpx.post(
            url + "/v1/remove?preset=fast&bg=white",
            files={"image": ("cat.png", png, "image/png")},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert _open(r.content).mode == "RGB"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_422_fused_model_list_checked_member_by_member(client, png, monkeypatch):
    monkeypatch.setattr(
        "nuggy.sources.cached_path", lambda spec, **kw: Path("/c") if spec.name == "u2netp" else None
    )
    r = client.post(FAST + "&model=u2netp%2Bisnet-quint8", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 422
    assert "nuggy models pull isnet-quint8 --accept-license agpl-3.0" in _detail(r)
    r = client.post(FAST + "&model=u2netp%2B", content=png, headers={"Content-Type": "image/png"})
    assert r.status_code == 422 and "empty name" in _detail(r)


# ------------------------------------------------- uploads under load (issue 18 item 7)


def _asgi_post(
    app,
    chunks,
    *,
    query: str = "preset=fast",
    delay: float = 0.0,
    disconnect_after: int | None = None,
    ctype: str = "image/png",
):
    """POST to the ASGI app directly, feeding the body in ``chunks`` (``delay`` s apart;
    ``disconnect_after`` chunks, then the client goes away). Returns (status, body chunks read,
    exception raised out of the app or None)."""
    import asyncio

    total = sum(len(c) for c in chunks)
    state = {"read": 0, "status": None}

    async def receive():
        if disconnect_after is not None and state["read"] >= disconnect_after:
            await asyncio.sleep(delay)
            return {"type": "http.disconnect"}
        if state["read"] >= len(chunks):
            await asyncio.sleep(3600)  # a finished request waits for the disconnect
        await asyncio.sleep(delay)
        i = state["read"]
        state["read"] += 1
        return {"type": "http.request", "body": chunks[i], "more_body": i + 1 < len(chunks)}

    async def send(message):
        if message["type"] == "http.response.start":
            state["status"] = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/remove",
        "raw_path": b"/v1/remove",
        "root_path": "",
        "query_string": query.encode(),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "headers": [(b"content-type", ctype.encode()), (b"content-length", str(total).encode())],
    }

    async def go():
        try:
            await asyncio.wait_for(app(scope, receive, send), 30)
        except Exception as exc:  # noqa: BLE001 - what escapes the app is what uvicorn logs
            return exc
        return None

    escaped = asyncio.run(go())
    return state["status"], state["read"], escaped


def _pieces(data: bytes, n: int) -> list[bytes]:
    step = -(-len(data) // n)
    return [data[i : i + step] for i in range(0, len(data), step)]


def test_saturated_server_refuses_before_reading_the_upload(png):
    """100 concurrent 19 MB uploads to a full server added 1.3 GB: each body was read whole
    before the queue limit applied. Now a full server answers 503 before the first chunk."""
    app = create_app(Settings(concurrency=1, queue=0))
    with app.state.limiter.hold():
        status, read, escaped = _asgi_post(app, _pieces(png, 8))
    assert (status, read, escaped) == (503, 0, None)
    assert app.state.limiter.queued == 0 and app.state.limiter.active == 0


def test_slow_upload_times_out_with_408_and_frees_its_place(png):
    """Slow uploads had no timeout (300 held open for 70 s)."""
    app = create_app(Settings(concurrency=1, queue=0, upload_timeout=0.3))
    t0 = time.monotonic()
    status, read, escaped = _asgi_post(app, _pieces(png, 20), delay=0.1)
    assert (status, escaped) == (408, None) and read < 20
    assert time.monotonic() - t0 < 3
    assert app.state.limiter.admit()  # the place came back


def test_abandoned_upload_is_one_info_line(png, caplog):
    """Each abandoned upload logged an ERROR with a traceback (301 of them, ~20,000 lines)."""
    import logging

    app = create_app(Settings(concurrency=1, queue=0))
    form = (
        b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png + b"\r\n--xyz--\r\n"
    )
    with caplog.at_level(logging.DEBUG):
        for ctype, body in (("image/png", png), ("multipart/form-data; boundary=xyz", form)):
            status, read, escaped = _asgi_post(app, _pieces(body, 8), disconnect_after=3, ctype=ctype)
            assert escaped is None and read == 3
    records = [r for r in caplog.records if r.levelno >= logging.INFO]  # DEBUG: other libraries
    assert [r.levelname for r in records] == ["INFO", "INFO"]
    assert all("client 127.0.0.1:50000 disconnected during the upload" in r.getMessage() for r in records)
    assert app.state.limiter.admit()
