"""Output planning shared by the verbs that write one file per input (``remove``, ``trimap``).

All outputs are planned before any work, so a run can neither write two inputs to one file nor
find out after minutes of work that a name or folder is unusable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from nuggy.errors import OutputError, UsageError

__all__ = ["distinct_outputs", "names_a_file", "check_writable"]


def check_writable(folder: str | os.PathLike) -> None:
    """``folder`` exists and may be written, or can be made: its nearest existing ancestor is
    a folder this process may write into. Creates nothing.

    Raises:
        OutputError: that ancestor is a file, or may not be written (naming it).
    """
    probe = Path(os.path.abspath(folder))
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{probe} is a file, not a folder: cannot write {folder}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {probe}: permission denied; choose another -o")


def names_a_file(output: str, formats: Iterable[str], *, inputs: str | None = None) -> bool:
    """Whether ``-o output`` names a file (else a folder): a path with a suffix is a file,
    unless it ends with ``/`` or is an existing folder.

    Args:
        output: the ``-o`` value.
        formats: the suffixes a file may have (``.png``…).
        inputs: ``None`` for one input; else how the inputs read in a message
            (``"2 images"``, ``"a folder"``), which makes a file name an error.

    Raises:
        UsageError: a suffix that is not one of ``formats``, or a file name for many inputs.
    """
    path = Path(output)
    if output.endswith(("/", os.sep)) or path.is_dir():
        return False
    suffix = path.suffix.lower()
    if not suffix:
        return False
    formats = sorted(formats)
    if suffix not in formats:
        raise UsageError(
            f"{output}: unknown output format {suffix!r}; use one of {', '.join(formats)}, "
            "or end it with / to name a folder"
        )
    if inputs is not None:
        raise UsageError(
            f"-o {output} names one file, but the inputs are {inputs}; name a folder instead (end it with /)"
        )
    return True


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
