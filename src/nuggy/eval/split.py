"""Deterministic ``tune`` / ``check`` halves of an evaluation set.

Constants and stage choices are chosen on ``tune``; results are reported on ``check``. The split
depends only on each sample's name: the names are ordered by the SHA-1 of ``"nuggy-split:" +
name`` and the first half (rounded up) is ``tune``. So it is balanced, unrelated to the file
numbering or to the image content, and the same on every machine and every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["SPLITS", "split_names", "split_of"]

SPLITS = ("tune", "check", "all")
_SALT = b"nuggy-split:"


def _key(name: str) -> str:
    return hashlib.sha1(_SALT + name.encode("utf-8")).hexdigest()


def split_names(names: Iterable[str], part: str) -> list[str]:
    """The names of ``part`` (``tune``, ``check`` or ``all``), in their original order.

    Raises:
        ValueError: ``part`` is not one of :data:`SPLITS`, or ``names`` has duplicates.
    """
    names = list(names)
    if part not in SPLITS:
        raise ValueError(f"unknown split {part!r}; choose one of: {', '.join(SPLITS)}")
    if len(set(names)) != len(names):
        raise ValueError("sample names must be unique to split a dataset")
    if part == "all":
        return names
    ranked = sorted(names, key=_key)
    n_tune = (len(ranked) + 1) // 2
    chosen = set(ranked[:n_tune] if part == "tune" else ranked[n_tune:])
    return [n for n in names if n in chosen]


def split_of(name: str, names: Iterable[str]) -> str:
    """``tune`` or ``check``: the half of ``names`` that ``name`` belongs to."""
    return "tune" if name in split_names(names, "tune") else "check"
