"""Nuggy's HTTP API (FastAPI): ``create_app(settings)``; run it with ``nuggy serve``.

Needs the ``server`` extra: ``pip install 'nuggy[server]'``. Importing this package is cheap;
FastAPI is imported with :mod:`nuggy.server.app`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "Settings"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(f"module 'nuggy.server' has no attribute {name!r}")
