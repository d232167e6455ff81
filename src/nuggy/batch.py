"""Per-file batch work shared by every engine (local folder, hot folder, Ray Data).

One file is: read and decode (``nuggy.io`` limits and errors) → ``Pipeline.run`` → compose
(or the mask) → encode → atomic write. The stages are separate functions so the local engine
can overlap them in threads; :func:`cut_file` runs them in order (the Ray actor and the hot
folder). Failures become the same one-line text in every engine (:func:`failure_text`), and
each file gives one manifest :class:`Record`.

Paths are local paths, or URIs of a ``pyarrow.fs`` filesystem (``s3://…``, ``gs://…``) when a
``filesystem`` is given; local files always go through ``nuggy.io`` (temp file + rename).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .errors import ImageError, OutputError, UsageError

__all__ = [
    "OK",
    "SKIPPED",
    "FAILED",
    "Record",
    "OutputOptions",
    "read_input",
    "render",
    "write_output",
    "failure_text",
    "cut_file",
    "MANIFEST_COLUMNS",
    "manifest_format",
    "write_manifest",
    "read_manifest",
    "summary_line",
    "records_table",
]

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
MANIFEST_COLUMNS = ("input", "output", "status", "error", "seconds", "model", "preset", "nuggy_version")


@dataclass
class Record:
    """One manifest row: what happened to one input."""

    input: str
    output: str
    status: str  # ok | skipped | failed
    error: str = ""
    seconds: float = 0.0
    model: str = ""
    preset: str = ""
    nuggy_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OutputOptions:
    """What is written for each input.

    Args:
        mask_only: write the alpha matte (uint8 H×W) instead of the cut-out.
        background: a parsed background (:func:`nuggy.pipeline.compose.parse_background`),
            ``None`` keeps it transparent.
        max_pixels: decode limit (``None``: ``NUGGY_MAX_PIXELS`` or 100 MP).
        model: model label for the manifest; preset: preset label for the manifest.
    """

    mask_only: bool = False
    background: Any = None
    max_pixels: int | None = None
    model: str = ""
    preset: str = ""
    version: str = field(default_factory=lambda: _version())


def _version() -> str:
    from . import __version__

    return __version__


def read_input(src: str, *, max_pixels: int | None = None, filesystem=None) -> np.ndarray:
    """Decode ``src`` to RGB uint8 H×W×3 with the limits and errors of :func:`nuggy.io.load_image`.

    ``filesystem``: a ``pyarrow.fs.FileSystem`` holding ``src`` (its path within it comes from
    :func:`nuggy.distributed.fs.split_uri`); ``None`` reads a local path.

    Raises:
        ImageError: missing, unreadable, corrupt, too large or too small (naming ``src``).
    """
    from .io import load_image

    if filesystem is None:
        return load_image(src, max_pixels=max_pixels)
    from .distributed.fs import read_bytes

    return load_image(read_bytes(filesystem, src), name=src, max_pixels=max_pixels)


def render(result, options: OutputOptions) -> np.ndarray:
    """The array to encode for one :class:`~nuggy.pipeline.config.Result`: the alpha matte
    (uint8 H×W) with ``mask_only``, else the composed RGBA / RGB uint8 image."""
    if options.mask_only:
        return result.alpha_u8()
    from .pipeline.compose import compose

    return compose(result.image, result.alpha, foreground=result.foreground, background=options.background)


def write_output(dst: str, array: np.ndarray, *, filesystem=None) -> None:
    """Encode ``array`` in the format of ``dst``'s suffix and write it atomically: temp file +
    rename on a local path, one put on an object store (never a partial object).

    Raises:
        OutputError: the output cannot be written (naming ``dst``).
    """
    from .io import atomic_write_bytes, encode_image, format_for

    data = encode_image(array, format_for(dst))
    if filesystem is None:
        atomic_write_bytes(dst, data)
    else:
        from .distributed.fs import atomic_put

        atomic_put(filesystem, dst, data)


def failure_text(label: str, exc: BaseException, *, dst: str | None = None, writing: bool = False) -> str:
    """The one-line error of a failed file, ``"<label>: <what>"`` (the same in every engine)."""
    if isinstance(exc, MemoryError):
        msg = "out of memory; lower --max-pixels or resize the image"
    elif writing and not isinstance(exc, OutputError):
        msg = f"cannot write {dst}: {exc}"
    else:
        msg = str(exc)
    return msg if msg.startswith(label) else f"{label}: {msg}"


#: What a file may raise while it is read and cut out: recorded, the batch goes on.
READ_ERRORS = (ImageError, ValueError, OSError, MemoryError)


def cut_file(
    pipe,
    src: str,
    dst: str,
    options: OutputOptions,
    *,
    src_fs=None,
    dst_fs=None,
    label: str | None = None,
    dst_label: str | None = None,
) -> Record:
    """Read, cut out and write one file; never raises for a bad file (the record says).

    Args:
        pipe: a :class:`nuggy.Pipeline` (its model already loaded, or loaded here once).
        src, dst: input and output: local paths, or paths in ``src_fs`` / ``dst_fs``
            (``pyarrow.fs`` filesystems; ``None``: local).
        options: what to write.
        label, dst_label: the input's and output's names in messages and the record
            (default ``src`` / ``dst``; the URI when they are in a filesystem).

    Returns:
        Record with status ``ok`` or ``failed`` (``error``: :func:`failure_text`).
    """
    label = label or src
    rec = Record(
        label, dst_label or dst, OK, model=options.model, preset=options.preset, nuggy_version=options.version
    )
    t0 = time.perf_counter()
    try:
        image = read_input(src, max_pixels=options.max_pixels, filesystem=src_fs)
        result = pipe.run(image)
    except READ_ERRORS as exc:
        rec.status, rec.error = FAILED, failure_text(label, exc)
    else:
        try:
            write_output(dst, render(result, options), filesystem=dst_fs)
        except Exception as exc:  # noqa: BLE001 - any write failure is this file's failure
            rec.status, rec.error = FAILED, failure_text(label, exc, dst=dst_label or dst, writing=True)
    rec.seconds = round(time.perf_counter() - t0, 4)
    return rec


def manifest_format(path: str) -> str:
    """``parquet`` or ``csv`` from the manifest path's suffix.

    Raises:
        UsageError: another suffix.
    """
    lower = str(path).lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith(".csv"):
        return "csv"
    raise UsageError(f"--manifest {path}: unknown manifest format; name a .parquet or .csv file")


def records_table(records: list[Record]):
    import pyarrow as pa

    schema = pa.schema([(c, pa.float64() if c == "seconds" else pa.string()) for c in MANIFEST_COLUMNS])
    cols = {c: [getattr(r, c) for r in records] for c in MANIFEST_COLUMNS}
    return pa.table(cols, schema=schema)


def write_manifest(path: str, records: list[Record], *, filesystem=None):
    """Write the manifest (one row per input, :data:`MANIFEST_COLUMNS`) atomically as Parquet or
    CSV by suffix; returns it as a ``pyarrow.Table``."""
    import pyarrow as pa

    table = records_table(records)
    sink = pa.BufferOutputStream()
    if manifest_format(path) == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, sink)
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, sink)
    data = sink.getvalue().to_pybytes()
    if filesystem is None:
        from .io import atomic_write_bytes

        atomic_write_bytes(path, data)
    else:
        from .distributed.fs import atomic_put

        atomic_put(filesystem, path, data)
    return table


def read_manifest(path: str):
    """Read a manifest written by :func:`write_manifest` as a ``pyarrow.Table``."""
    if manifest_format(path) == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    import pyarrow as pa
    import pyarrow.csv as pcsv

    types = {c: (pa.float64() if c == "seconds" else pa.string()) for c in MANIFEST_COLUMNS}
    return pcsv.read_csv(
        path,
        convert_options=pcsv.ConvertOptions(
            column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )


def summary_line(records: list[Record]) -> str:
    """``nuggy: N written, N skipped, N failed`` (the last line of every batch run)."""
    n = {s: 0 for s in (OK, SKIPPED, FAILED)}
    for r in records:
        n[r.status] += 1
    return f"nuggy: {n[OK]} written, {n[SKIPPED]} skipped, {n[FAILED]} failed"


def check_manifest_path(path: str) -> None:
    """Refuse a manifest path with an unknown suffix or an unwritable folder before any work."""
    manifest_format(path)
    if "://" not in str(path):
        from .cli.outputs import check_writable

        if os.path.isdir(path):
            raise OutputError(f"--manifest {path}: is a folder; name a .parquet or .csv file")
        check_writable(os.path.dirname(os.path.abspath(path)))
