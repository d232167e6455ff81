"""Settings of the HTTP API: limits, concurrency, models; from CLI flags and ``NUGGY_*`` env vars.

Every field has an environment variable (``NUGGY_`` + the field name in capitals), read by
:meth:`Settings.from_env`; ``nuggy serve`` flags override the environment. Workers started by
uvicorn (``--workers N``) read their settings from the environment, so the CLI exports them
with :meth:`Settings.to_env` before it starts uvicorn.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from nuggy.limits import DEFAULT_MAX_PIXELS

__all__ = ["Settings", "DEFAULT_FORMATS"]

#: Pillow formats the API decodes. Anything else is refused with 415 before decoding, so
#: formats whose decoders call out to other programs (EPS → Ghostscript) are never reached.
DEFAULT_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "TIFF", "GIF")


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r} (use 1/0, true/false)")


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


@dataclass(frozen=True)
class Settings:
    """Limits and switches of one API process.

    Attributes:
        host, port: where ``nuggy serve`` listens (loopback by default).
        workers: uvicorn worker processes (each loads its own models).
        max_upload_bytes: largest request body; larger gives 413.
        max_pixels: largest decoded image (width × height); larger gives 413.
        concurrency: images processed at the same time (a semaphore).
        queue: requests that may wait for a free slot; beyond ``concurrency + queue``
            requests in flight, new ones get 503 with ``Retry-After`` at once.
        upload_timeout: seconds an upload may take (from admission to its last byte); a slower
            one gets 408 and gives its place back.
        request_timeout: seconds from the end of the upload to the response. A request still
            waiting for a slot then gets 503 (with ``Retry-After``); one whose image is being
            processed gets 504 (the work finishes in the background and keeps its slot, so
            timeouts cannot pile up unbounded work).
        default_model: the model used when a request names none; it may be fetched on first
            use (unless ``NUGGY_OFFLINE=1``).
        models: models a request may name, in addition to the default; ``None`` allows every
            registered model that is already in the cache. A request never triggers a
            download of a non-default model.
        formats: Pillow formats accepted as input.
        retry_after: minimum ``Retry-After`` seconds sent with 503.
        docs: serve the OpenAPI docs at ``/docs`` and the schema at ``/openapi.json``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS  # nuggy.io's, the one default (100 MP)
    concurrency: int = 1
    queue: int = 8
    upload_timeout: float = 30.0
    request_timeout: float = 60.0
    default_model: str = "u2netp"
    models: tuple[str, ...] | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    retry_after: int = 1
    docs: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.max_upload_bytes < 1:
            problems.append("max_upload_bytes must be ≥ 1")
        if self.max_pixels < 4:
            problems.append("max_pixels must be ≥ 4")
        if self.concurrency < 1:
            problems.append("concurrency must be ≥ 1")
        if self.queue < 0:
            problems.append("queue must be ≥ 0")
        if not self.upload_timeout > 0:
            problems.append("upload_timeout must be > 0")
        if not self.request_timeout > 0:
            problems.append("request_timeout must be > 0")
        if self.workers < 1:
            problems.append("workers must be ≥ 1")
        if not 0 < self.port < 65536:
            problems.append("port must be 1..65535")
        if self.retry_after < 1:
            problems.append("retry_after must be ≥ 1")
        if problems:
            raise ValueError("invalid server settings: " + "; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``NUGGY_*`` variables (``environ``, default ``os.environ``), then
        ``overrides`` (``None`` values are ignored, so unset CLI flags keep the env value)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get("NUGGY_" + f.name.upper())
            if raw is None:
                continue
            try:
                values[f.name] = _parse(f.name, raw)
            except ValueError as exc:
                raise ValueError(f"NUGGY_{f.name.upper()}={raw!r}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """``NUGGY_*`` variables that reproduce these settings in another process."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, tuple):
                v = ",".join(v)
            elif isinstance(v, bool):
                v = "1" if v else "0"
            out["NUGGY_" + f.name.upper()] = str(v)
        return out


_INT = {"port", "workers", "max_upload_bytes", "max_pixels", "concurrency", "queue", "retry_after"}


def _parse(name: str, raw: str) -> object:
    if name in _INT:
        return int(raw)
    if name in ("request_timeout", "upload_timeout"):
        return float(raw)
    if name == "docs":
        return _bool(raw)
    if name == "models":
        names = _names(raw)
        return names or None
    if name == "formats":
        return tuple(n.upper() for n in _names(raw))
    return raw
