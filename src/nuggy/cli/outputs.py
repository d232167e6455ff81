"""Output planning shared by the verbs that write one file per input (``remove``, ``trimap``).

All outputs are planned before any work, so a run can neither write two inputs to one file nor
find out after minutes of work that a name or folder is unusable.
"""

from __future__ import annotations

import os

from nuggy.errors import UsageError

__all__ = ["distinct_outputs"]


def _key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def distinct_outputs(candidates: list[tuple[str, str, str]]) -> list[str]:
    """One output per input, never shared.

    Args:
        candidates: ``(input, name, full_name)`` per input: the output it gets normally
            (``cat.nuggy.png``) and the one that keeps the input's whole name
            (``cat.jpg.nuggy.png``).

    Returns:
        The output of each input: ``name``, or ``full_name`` for every input whose ``name`` is
        also another input's.

    Raises:
        UsageError: two inputs would still share an output (``a/cat.jpg`` and ``b/cat.jpg``
            into one folder); the message names both.
    """
    count: dict[str, int] = {}
    for _, name, _ in candidates:
        count[_key(name)] = count.get(_key(name), 0) + 1
    chosen = [full if count[_key(name)] > 1 else name for _, name, full in candidates]
    owner: dict[str, str] = {}
    for (src, _, _), dst in zip(candidates, chosen):
        first = owner.setdefault(_key(dst), src)
        if first != src:
            raise UsageError(
                f"{first} and {src} would both be written to {dst}; run them separately "
                "or into different folders (-o)"
            )
    return chosen
