"""``nuggy serve``: the HTTP API under uvicorn."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Run the HTTP API (FastAPI + uvicorn; needs pip install 'nuggy[server]').

  nuggy serve --port 8000
  curl -F image=@cat.jpg 'localhost:8000/v1/remove?preset=default&bg=white' -o cat.png
  curl --data-binary @cat.jpg -H 'Content-Type: image/jpeg' 'localhost:8000/v1/remove' -o cat.png

Routes: POST /v1/remove, GET /v1/models, GET /healthz; interactive docs at /docs.
Status codes: 408 upload slower than --upload-timeout, 413 body or pixels over the limit,
415 not an accepted image, 422 bad parameter, 503 saturated or timed out waiting for a slot
(with Retry-After) or model not loadable, 504 processing exceeded --timeout.

Every limit also reads NUGGY_<NAME> from the environment (NUGGY_PORT, NUGGY_MAX_UPLOAD_BYTES,
NUGGY_MAX_PIXELS, NUGGY_CONCURRENCY, NUGGY_QUEUE, NUGGY_UPLOAD_TIMEOUT, NUGGY_REQUEST_TIMEOUT,
NUGGY_DEFAULT_MODEL, NUGGY_MODELS); flags win. Only models already in the cache (and the default) are served:
fetch others first with 'nuggy models pull NAME'."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "--host",
        default=None,
        help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)",
    )
    p.add_argument("--port", type=int, default=None, help="port (default 8000)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="uvicorn worker processes, each with its own models (default 1)",
    )
    lim = p.add_argument_group("limits")
    lim.add_argument(
        "--max-upload-mb",
        type=float,
        default=None,
        metavar="MB",
        help="largest request body (default 20; 413 beyond)",
    )
    lim.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="largest image in pixels (default 100000000, as every front end; 413 beyond)",
    )
    lim.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="images processed at once (default 1: one image uses every core)",
    )
    lim.add_argument(
        "--queue",
        type=int,
        default=None,
        metavar="N",
        help="requests that may wait for a slot (default 8; 503 beyond)",
    )
    lim.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds per request (default 60; 503 if still queued, 504 if processing)",
    )
    lim.add_argument(
        "--upload-timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds an upload may take (default 30; 408 beyond)",
    )
    mod = p.add_argument_group("models")
    mod.add_argument(
        "--default-model",
        default=None,
        metavar="NAME",
        help="model used when a request names none (default u2netp)",
    )
    mod.add_argument(
        "--models",
        default=None,
        metavar="A,B",
        help="models requests may name (default: every cached registry model)",
    )
    p.add_argument("--no-docs", action="store_true", help="do not serve /docs and /openapi.json")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def settings_from_args(args):
    """:class:`~nuggy.server.settings.Settings` from the environment, then the flags."""
    from nuggy.server.settings import Settings, _names

    return Settings.from_env(
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_upload_bytes=(int(args.max_upload_mb * 1024 * 1024) if args.max_upload_mb is not None else None),
        max_pixels=args.max_pixels,
        concurrency=args.concurrency,
        queue=args.queue,
        request_timeout=args.timeout,
        upload_timeout=args.upload_timeout,
        default_model=args.default_model,
        models=(_names(args.models) or None) if args.models is not None else None,
        docs=False if args.no_docs else None,
    )


def run(args) -> int:
    import importlib.util
    import os

    missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"nuggy serve: {', '.join(missing)} not installed; install the server extra:\n"
            "  pip install 'nuggy[server]'",
            file=sys.stderr,
        )
        return 2
    try:
        settings = settings_from_args(args)
        from nuggy.registry import get_spec

        get_spec(settings.default_model)
    except (ValueError, KeyError) as exc:
        print(f"nuggy serve: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    if settings.workers > 1:
        # Worker processes build their app from the environment (uvicorn factory mode, by
        # import string): the only way to hand them the settings. This runs in the CLI's own
        # process before uvicorn starts, with no other thread alive; one worker needs none.
        os.environ.update(settings.to_env())
        target = "nuggy.server.app:create_app"
    else:
        from nuggy.server.app import create_app

        target = create_app(settings)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"nuggy serve: listening on {settings.host}: reachable from other machines", file=sys.stderr)
    print(f"nuggy serve: http://{settings.host}:{settings.port}/docs", file=sys.stderr)
    uvicorn.run(
        target,
        factory=isinstance(target, str),
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=args.log_level,
        log_config=log_config(args.log_level),
        timeout_graceful_shutdown=5,
    )
    return 0


def log_config(level: str = "info") -> dict:
    """uvicorn's logging set-up, with nuggy's own messages (``nuggy.server``: client
    disconnects, unexpected errors) through the same handler at ``level`` (``--log-level``)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["nuggy"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return cfg
