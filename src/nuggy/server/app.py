"""HTTP API (FastAPI): ``POST /v1/remove``, ``GET /v1/models``, ``GET /healthz``; docs at ``/docs``.

Build the app with :func:`create_app` (``nuggy serve`` does, through uvicorn's factory mode).

Status codes of ``POST /v1/remove``:

* 200 — the cut-out (``image/png``, ``image/webp``; ``format=mask`` gives a greyscale PNG).
* 408 — the upload did not arrive within ``upload_timeout``.
* 413 — the body exceeds ``max_upload_bytes``, or the image exceeds ``max_pixels``.
* 415 — the body is not an image of an accepted format, or cannot be decoded.
* 422 — a bad parameter (unknown preset, model not available, bad colour, a setting out of its
  range, missing image).
* 503 — saturated: every processing slot and queue place is taken (checked before the upload is
  read: an upload in progress holds a place), or the request waited for a slot until its
  ``request_timeout``; it carries ``Retry-After``. Also sent when the model cannot be loaded
  (the message names the command that fetches it).
* 504 — processing started but did not finish within ``request_timeout``.

A client that disconnects during its upload is logged as one INFO line.
"""

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from .settings import Settings

__all__ = ["create_app", "WorkLimiter", "safe_background"]

log = logging.getLogger("nuggy.server")

_MEDIA = {"png": "image/png", "webp": "image/webp", "mask": "image/png"}
_RAW_TYPES = ("image/", "application/octet-stream")


# --------------------------------------------------------------------------- limits


class WorkLimiter:
    """Bounded admission plus a semaphore of processing slots.

    At most ``concurrency + queue`` requests are admitted (in flight); of those, at most
    ``concurrency`` hold a slot and process an image. A request leaves only when its work has
    finished, even if its client was already answered with a timeout, so abandoned work still
    counts against the bound.
    """

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency = concurrency
        self.capacity = concurrency + queue
        self.slots = threading.Semaphore(concurrency)
        self._lock = threading.Lock()
        self._admitted = 0
        self._active = 0
        self._mean_seconds = 1.0

    def admit(self) -> bool:
        """Take a place in flight; ``False`` when saturated."""
        with self._lock:
            if self._admitted >= self.capacity:
                return False
            self._admitted += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._admitted -= 1

    def acquire(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a processing slot."""
        if not self.slots.acquire(timeout=max(0.0, timeout)):
            return False
        with self._lock:
            self._active += 1
        return True

    def release(self, seconds: float | None = None) -> None:
        """Give the slot back; ``seconds`` (the work's duration) feeds ``Retry-After``."""
        with self._lock:
            self._active -= 1
            if seconds is not None:
                self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * seconds
        self.slots.release()

    @property
    def active(self) -> int:
        return self._active

    @property
    def queued(self) -> int:
        return max(0, self._admitted - self._active)

    def retry_after(self, floor: int = 1) -> int:
        """Seconds until a place is likely free (the queue ahead times the mean work time)."""
        ahead = self.queued + 1
        return max(floor, math.ceil(self._mean_seconds * ahead / self.concurrency))

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Occupy one place and one slot (to drain a server, or to saturate it in tests)."""
        if not self.admit():
            raise RuntimeError("the limiter is already saturated")
        if not self.acquire(timeout=3600):
            self.leave()
            raise RuntimeError("no processing slot came free")
        try:
            yield
        finally:
            self.release()
            self.leave()


@dataclass
class _Ticket:
    """Shared state of one job between the event loop and its worker thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    started: bool = False
    cancelled: bool = False

    def try_start(self) -> bool:
        with self.lock:
            if not self.cancelled:
                self.started = True
            return self.started

    def try_cancel(self) -> bool:
        with self.lock:
            if not self.started:
                self.cancelled = True
            return self.cancelled


class _QueueTimeout(Exception):
    pass


class _BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413 (by Content-Length, and by
    counting the bytes of chunked uploads as they arrive)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = (
            f"request body exceeds the limit of {self.limit:,} bytes "
            "(the operator sets it with nuggy serve --max-upload-mb / NUGGY_MAX_UPLOAD_BYTES)"
        )
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited_receive, send)


# --------------------------------------------------------------------------- parameters


def safe_background(text: str | None):
    """Parse a request's ``bg``: colour names, ``#rgb``/``#rrggbb`` (``#`` optional), ``R,G,B``,
    ``blur[:strength]``, ``transparent``. Never a path or URL (nothing is read or fetched).

    Raises:
        ValueError: anything else.
    """
    from nuggy.pipeline.compose import NAMED_COLOURS, Background, parse_background

    if text is None or text.strip() == "":
        return Background()
    t = text.strip().lower()
    if t in ("transparent", "none") or t in NAMED_COLOURS:
        return parse_background(t, option="bg=")
    if re.fullmatch(r"#?(?:[0-9a-f]{3}|[0-9a-f]{6})", t):
        return parse_background("#" + t.lstrip("#"), option="bg=")
    if re.fullmatch(r"\d{1,3},\d{1,3},\d{1,3}", t) or re.fullmatch(r"blur(?::[0-9.eE+-]{1,12})?", t):
        return parse_background(t, option="bg=")
    raise ValueError(
        f"bg={text!r}: use a colour name ({', '.join(NAMED_COLOURS)}), a hex colour "
        "(%2300ff00 or 00ff00), R,G,B, blur or blur:0.02, or transparent; image backgrounds "
        "are not accepted by the API"
    )


#: Settings a client may not choose: server resources and paths on the server.
SERVER_ONLY = frozenset({"threads", "matting_weights"})


def stage_query() -> Callable[..., dict[str, Any]]:
    """A FastAPI dependency whose query parameters are the pipeline settings of
    :data:`nuggy.pipeline.settings.SETTINGS` (less :data:`SERVER_ONLY`), typed and bounded from
    the same table as the CLI and the web app; it returns the settings given."""
    import inspect

    from nuggy.pipeline.settings import SETTINGS, kind_of, literal_of, query_bounds

    params = []
    for s in SETTINGS:
        if s.name in SERVER_ONLY:
            continue
        kind = kind_of(s.name)
        typ = {"bool": bool, "int": int, "float": float}.get(kind) or literal_of(s.name)
        bounds = query_bounds(s.name) if kind in ("int", "float") else {}
        params.append(
            inspect.Parameter(
                s.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=typ | None,
                default=Query(None, description=s.help, **bounds),
            )
        )

    def given(**values: Any) -> dict[str, Any]:
        return {k: v for k, v in values.items() if v is not None}

    given.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return given


def _pull_command(spec) -> str:
    cmd = f"nuggy models pull {spec.name}"
    if spec.licence_gate:
        cmd += f" --accept-license {spec.licence_gate}"
    return cmd


def _check_model(name: str, settings: Settings) -> None:
    """422 unless ``name`` is the default model, or an allowed registry model in the cache;
    a ``+``-joined list (fused models) is checked member by member."""
    from nuggy.registry import UnknownModelError, get_spec
    from nuggy.sources import cached_path

    if "+" in name:
        from nuggy.pipeline.segment import model_members

        try:
            members = model_members(name)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        for member in members:
            _check_model(member, settings)
        return
    try:
        spec = get_spec(name)
    except UnknownModelError as exc:
        raise HTTPException(422, str(exc)) from None
    if name == settings.default_model:
        return
    if settings.models is not None and name not in settings.models:
        allowed = ", ".join(dict.fromkeys((settings.default_model, *settings.models)))
        raise HTTPException(422, f"model {name!r} is not enabled on this server; enabled: {allowed}")
    if cached_path(spec) is None:
        raise HTTPException(
            422,
            f"model {name!r} is not available on this server (not in its model cache); the "
            f"operator can fetch it with: {_pull_command(spec)}",
        )


def _check_matting(method: str) -> None:
    """422 for FBA matting when its checkpoint is not in the server's model cache."""
    if method != "fba":
        return
    from nuggy.pipeline.matte import find_fba_weights

    if find_fba_weights() is None:
        raise HTTPException(
            422,
            "matting=fba is not available on this server (no FBA.pth checkpoint in its "
            "model cache); use matting=auto, cf, knn, lkm or guided",
        )


def _probe(data: bytes, settings: Settings) -> tuple[str, int, int]:
    """Format and size from the image header (no decoding); 415 / 413 as appropriate."""
    from PIL import UnidentifiedImageError

    from nuggy.io import open_unchecked

    if not data:
        raise HTTPException(422, "the image is empty (0 bytes)")
    try:
        im = open_unchecked(data)  # header only; the size is checked below
    except UnidentifiedImageError:
        raise HTTPException(
            415,
            "not a recognised image; send one of: " + ", ".join(settings.formats),
        ) from None
    except Exception as exc:  # noqa: BLE001 - any header error is an undecodable upload
        raise HTTPException(415, f"cannot read the image ({exc})") from None
    fmt = (im.format or "").upper()
    w, h = im.size
    im.close()
    if fmt not in settings.formats:
        raise HTTPException(
            415,
            f"image format {fmt or 'unknown'} is not accepted; send one of: " + ", ".join(settings.formats),
        )
    if w * h > settings.max_pixels:
        raise HTTPException(
            413,
            f"image is {w}×{h} = {w * h:,} pixels, over the limit of {settings.max_pixels:,} "
            "(the operator sets it with nuggy serve --max-pixels / NUGGY_MAX_PIXELS)",
        )
    return fmt, w, h


async def _read_image(request: Request) -> bytes:
    """The uploaded bytes: multipart field ``image``, or the raw body with an image type."""
    data, _ = await _read_upload(request)
    return data


async def _read_upload(request: Request) -> tuple[bytes, bytes | None]:
    """The uploaded image bytes and the optional ``hints`` file field (a hint image)."""
    ctype = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if ctype == "multipart/form-data":
        from starlette.datastructures import UploadFile

        async with request.form(max_files=2, max_fields=16) as form:
            item = form.get("image")
            if item is None:
                raise HTTPException(
                    422, "multipart upload without an 'image' field (curl -F image=@photo.jpg)"
                )
            if not isinstance(item, UploadFile):
                raise HTTPException(422, "the 'image' field must be a file, not text")
            hint = form.get("hints")
            if hint is not None and not isinstance(hint, UploadFile):
                raise HTTPException(422, "the 'hints' field must be a file (curl -F hints=@hints.png)")
            return await item.read(), (await hint.read() if hint is not None else None)
    if not ctype.startswith(_RAW_TYPES):
        raise HTTPException(
            415,
            f"unsupported content type {ctype or '(none)'!r}: send multipart/form-data with an "
            "'image' file field (curl -F image=@photo.jpg), or the raw image with "
            "Content-Type image/jpeg, image/png, … (curl --data-binary @photo.jpg "
            "-H 'Content-Type: image/jpeg')",
        )
    return await request.body(), None


# --------------------------------------------------------------------------- pipelines


def _default_pipeline_for(config, base, lock: threading.Lock):
    """The shared pipeline for a plain preset (``nuggy.api.get_pipeline``); for a request with
    stage overrides a fresh, light :class:`Pipeline` that reuses the same cached ONNX session
    (so a stream of distinct parameters cannot grow the process-wide pipeline cache)."""
    from nuggy.api import get_pipeline
    from nuggy.pipeline.pipeline import Pipeline

    shared = get_pipeline(base)
    with lock:  # the first request loads (or fetches) the model once
        shared.load()
    if config == base:
        return shared
    return Pipeline(config, download=False)


def _work(
    data: bytes, config, base, out_format: str, background, app_state, hints=None
) -> tuple[bytes, dict]:
    """Decode, run, compose and encode one image (in a worker thread)."""
    from nuggy.io import decode_image, encode_image
    from nuggy.pipeline.compose import compose

    settings: Settings = app_state.settings
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rgb = decode_image(data, max_pixels=settings.max_pixels, name="upload")
    timings["decode"] = time.perf_counter() - t0
    pipe = app_state.pipeline_for(config, base)
    result = pipe.run(rgb) if hints is None else pipe.run(rgb, hints=hints.build())
    timings.update(result.timings)
    t1 = time.perf_counter()
    if out_format == "mask":
        out = result.alpha_u8()
    else:
        out = compose(rgb, result.alpha, foreground=result.foreground, background=background)
    body = encode_image(out, "WEBP" if out_format == "webp" else "PNG")
    timings["encode"] = time.perf_counter() - t1
    return body, timings


def _error_status(exc: BaseException) -> tuple[int, str]:
    from nuggy.io import ImageError
    from nuggy.registry import UnknownModelError
    from nuggy.sources import ModelSourceError

    if isinstance(exc, ImageError):
        return 415, str(exc)
    if isinstance(exc, (ModelSourceError, UnknownModelError)):
        return 503, f"the model cannot be loaded: {exc}"
    if isinstance(exc, MemoryError):
        return 503, "out of memory while processing the image; try a smaller image"
    if isinstance(exc, (FileNotFoundError, ImportError)):  # a stage's files or packages
        return 503, f"a pipeline stage is not available on this server: {exc}"
    if isinstance(exc, ValueError):
        return 422, str(exc)
    log.exception("unexpected error while processing a request", exc_info=exc)
    return 500, f"internal error ({type(exc).__name__}); see the server log"


# --------------------------------------------------------------------------- app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API. ``settings`` default to :meth:`Settings.from_env`.

    ``app.state`` holds ``settings``, ``limiter`` (:class:`WorkLimiter`), ``executor`` (the
    worker threads) and ``pipeline_for(config, base) -> Pipeline`` (replaceable, e.g. in tests).
    """
    from nuggy import __version__
    from nuggy.errors import NuggyError
    from nuggy.pipeline.config import PRESETS, MattingMethod
    from nuggy.pipeline.settings import build_config

    settings = settings or Settings.from_env()
    limiter = WorkLimiter(settings.concurrency, settings.queue)
    # One thread per admitted request: queued jobs wait on the slot semaphore in their thread.
    executor = ThreadPoolExecutor(limiter.capacity, thread_name_prefix="nuggy-work")
    load_lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="Nuggy",
        version=__version__,
        description=__doc__,
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
        lifespan=lifespan,
    )
    app.add_middleware(_BodyLimit, limit=settings.max_upload_bytes)
    app.state.settings = settings
    app.state.limiter = limiter
    app.state.executor = executor
    app.state.pipeline_for = lambda config, base: _default_pipeline_for(config, base, load_lock)

    preset_names = tuple(PRESETS)
    PresetName = Literal[preset_names]  # type: ignore[valid-type]
    default_preset = "default" if "default" in PRESETS else preset_names[0]

    def busy(detail: str) -> HTTPException:
        return HTTPException(
            503, detail, headers={"Retry-After": str(limiter.retry_after(settings.retry_after))}
        )

    @app.get("/healthz", summary="liveness and load")
    async def healthz() -> dict:
        return {
            "status": "ok",
            "version": __version__,
            "concurrency": limiter.concurrency,
            "active": limiter.active,
            "queued": limiter.queued,
            "capacity": limiter.capacity,
        }

    @app.get("/v1/models", summary="models, presets and which of them this server accepts")
    def models() -> dict:  # sync: runs in the threadpool (may hash a model file once)
        from nuggy.registry import list_models
        from nuggy.sources import cached_path

        rows = []
        for spec in list_models():
            cached = cached_path(spec) is not None
            enabled = spec.name == settings.default_model or (
                settings.models is None or spec.name in settings.models
            )
            row = {
                "name": spec.name,
                "architecture": spec.architecture,
                "input_size": list(spec.input_size),
                "licence": spec.licence,
                "description": spec.description,
                "cached": cached,
                "available": enabled and (cached or spec.name == settings.default_model),
                "default": spec.name == settings.default_model,
            }
            if not cached:
                row["fetch"] = _pull_command(spec)
            rows.append(row)
        return {
            "default_model": settings.default_model,
            "models": rows,
            "presets": {name: _config_dict(cfg) for name, cfg in PRESETS.items()},
            "default_preset": default_preset,
            "matting": list(get_args(MattingMethod)),
        }

    @app.post(
        "/v1/remove",
        summary="cut the subject out of an image",
        response_class=Response,
        openapi_extra=_REMOVE_OPENAPI,
        responses=_REMOVE_RESPONSES,
    )
    async def remove(
        request: Request,
        format: Literal["png", "webp", "mask"] = Query(
            "png", description="png / webp cut-out (RGBA, or RGB on a bg), or mask (greyscale PNG)"
        ),
        bg: str | None = Query(
            None,
            max_length=40,
            description="background: white, %23ff8800, 255,136,0, blur, blur:0.02 (default "
            "transparent). No URLs or files.",
        ),
        preset: PresetName = Query(default_preset, description="named pipeline preset"),
        model: str | None = Query(
            None,
            max_length=64,
            description="registry model (default: the server's default); "
            "only cached models are accepted, see GET /v1/models",
        ),
        overrides: dict[str, Any] = Depends(stage_query()),
        box: str | None = Query(
            None,
            max_length=64,
            description="x0,y0,x1,y1: the subject is "
            "inside this box (pixels; x1, y1 one past the last pixel)",
        ),
        keep: list[str] | None = Query(
            None, max_length=32, description="x,y: a click on the subject (repeat the parameter for more)"
        ),
        drop: list[str] | None = Query(
            None, max_length=32, description="x,y: a click on background (repeatable)"
        ),
    ) -> Response:
        overrides = dict(overrides)
        if format == "mask":
            if bg:
                raise HTTPException(422, "bg does not apply to format=mask")
            overrides.setdefault("foreground", False)  # a mask needs no colours
        try:
            background = safe_background(bg)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        name = model or settings.default_model
        try:
            base = build_config(preset, model=name)
            config = build_config(preset, model=name, **overrides)
        except NuggyError as exc:  # a setting out of its range or a rule across settings
            raise HTTPException(422, str(exc)) from None

        from starlette.concurrency import run_in_threadpool
        from starlette.requests import ClientDisconnect

        from .hint_params import RequestHints

        try:
            request_hints = RequestHints.from_query(box, keep, drop)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

        def check_stages() -> None:  # may stat or hash a model file: off the event loop
            _check_model(name, settings)
            _check_matting(config.matting)

        await run_in_threadpool(check_stages)

        # The place in flight is taken before the upload is read: a full server refuses bodies
        # unread (memory stays bounded), and an upload counts against the bound until it has
        # arrived or timed out (upload_timeout), so slow clients cannot pile up either.
        if not limiter.admit():
            raise busy(
                f"busy: {limiter.capacity} requests in flight "
                f"({limiter.concurrency} processing, {limiter.capacity - limiter.concurrency} "
                "queued); retry later"
            )
        handed_over = False  # until the job owns the place, leaving is up to this function
        try:
            try:
                data, hint_data = await asyncio.wait_for(_read_upload(request), settings.upload_timeout)
            except asyncio.TimeoutError:
                raise HTTPException(
                    408,
                    f"the upload did not finish within {settings.upload_timeout:g} s (the "
                    "operator sets it with nuggy serve --upload-timeout / NUGGY_UPLOAD_TIMEOUT)",
                    headers={"Connection": "close"},
                ) from None
            except ClientDisconnect:  # an abandoned upload is routine: one line, no traceback
                peer = f"{request.client.host}:{request.client.port}" if request.client else "?"
                log.info("client %s disconnected during the upload", peer)
                return Response(status_code=499)  # nobody is left to read it
            _, width, height = await run_in_threadpool(_probe, data, settings)
            try:
                request_hints = await run_in_threadpool(request_hints.with_image, hint_data, (height, width))
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
            deadline = time.monotonic() + settings.request_timeout
            ticket = _Ticket()

            def job() -> tuple[bytes, dict]:
                try:
                    if not limiter.acquire(deadline - time.monotonic()):
                        raise _QueueTimeout
                    t0 = time.perf_counter()
                    try:
                        if not ticket.try_start():
                            raise _QueueTimeout
                        return _work(data, config, base, format, background, app.state, request_hints)
                    finally:
                        limiter.release(time.perf_counter() - t0)
                finally:
                    limiter.leave()

            loop = asyncio.get_running_loop()
            try:
                fut = loop.run_in_executor(executor, job)
            except RuntimeError:  # executor shut down
                raise busy("the server is shutting down") from None
            handed_over = True
        finally:
            if not handed_over:
                limiter.leave()
        done, _ = await asyncio.wait({fut}, timeout=max(0.0, deadline - time.monotonic()))
        if not done:
            fut.add_done_callback(_discard)
            if ticket.try_cancel():
                raise busy(f"busy: no processing slot came free within {settings.request_timeout:g} s")
            raise HTTPException(
                504, f"processing took longer than the limit of {settings.request_timeout:g} s"
            )
        exc = fut.exception()
        if isinstance(exc, _QueueTimeout):
            raise busy(f"busy: no processing slot came free within {settings.request_timeout:g} s")
        if exc is not None:
            status, detail = _error_status(exc)
            raise HTTPException(status, detail)
        body, timings = fut.result()
        ext = "png" if format == "mask" else format
        headers = {
            "Server-Timing": ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items()),
            "Content-Disposition": f'inline; filename="cutout.{ext}"',
            "X-Nuggy-Model": name,
            "X-Nuggy-Preset": preset,
            "X-Image-Size": f"{width}x{height}",
        }
        return Response(body, media_type=_MEDIA[format], headers=headers)

    return app


def _discard(fut: "asyncio.Future") -> None:
    """Retrieve an abandoned job's outcome so it is not reported as never retrieved."""
    if not fut.cancelled():
        fut.exception()


def _config_dict(cfg) -> dict:
    import dataclasses

    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in dataclasses.asdict(cfg).items()
        if k not in ("weights", "matting_weights", "providers", "backend", "threads")
    }


_BINARY = {"schema": {"type": "string", "format": "binary"}}

_REMOVE_OPENAPI = {
    "requestBody": {
        "required": True,
        "description": "the image: a multipart field `image`, or the raw body with an image content type",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "hints": {
                            "type": "string",
                            "format": "binary",
                            "description": "optional hint image, same size: 255 keep, 0 drop, 128 or "
                            "transparent no hint",
                        },
                    },
                }
            },
            "image/jpeg": _BINARY,
            "image/png": _BINARY,
            "image/webp": _BINARY,
            "application/octet-stream": _BINARY,
        },
    }
}

_REMOVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the cut-out",
        "content": {"image/png": _BINARY, "image/webp": _BINARY},
    },
    408: {"description": "the upload took longer than upload_timeout"},
    413: {"description": "body over max_upload_bytes, or image over max_pixels"},
    415: {"description": "not an accepted image format, or undecodable"},
    422: {"description": "bad parameter, missing image, or model not available"},
    503: {"description": "saturated (Retry-After), or the model cannot be loaded"},
    504: {"description": "processing exceeded request_timeout"},
}
