"""``pyarrow.fs`` helpers: local paths and object stores behind one set of calls.

A location is a local path (``shoots/``) or a URI that ``pyarrow.fs.FileSystem.from_uri``
understands (``s3://bucket/raw/``, ``gs://…``, ``hdfs://…``, ``file:///…``). Local paths stay
plain paths (``filesystem`` ``None``) so they go through ``nuggy.io`` exactly as in local mode.
"""

from __future__ import annotations

import os
import uuid

from ..errors import ImageError, OutputError, UsageError

__all__ = ["is_uri", "split_uri", "join", "read_bytes", "atomic_put", "exists_many", "is_local"]


def is_uri(location: str) -> bool:
    """Whether ``location`` names a filesystem by scheme (``s3://…``), not a local path."""
    return "://" in str(location)


def split_uri(location: str):
    """``(filesystem, path)``: ``(None, location)`` for a local path, else the
    ``pyarrow.fs.FileSystem`` and the path inside it.

    Raises:
        UsageError: a URI pyarrow cannot open (unknown scheme, missing credentials support).
    """
    if not is_uri(location):
        return None, str(location)
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(str(location))
    except (ValueError, OSError, ImportError) as exc:
        raise UsageError(
            f"{location}: cannot open this location ({exc}); use a local path or a "
            "URI pyarrow.fs supports (s3://, gs://, hdfs://, file://)"
        ) from None


def is_local(filesystem) -> bool:
    """``None`` (a plain path) or a ``pyarrow.fs.LocalFileSystem``."""
    if filesystem is None:
        return True
    import pyarrow.fs as pafs

    return isinstance(filesystem, pafs.LocalFileSystem)


def join(base: str, rel: str) -> str:
    """``base/rel`` with forward slashes (filesystem paths), keeping a URI's scheme."""
    return base.rstrip("/") + "/" + rel.lstrip("/")


def read_bytes(filesystem, path: str) -> bytes:
    """The bytes of ``path`` in ``filesystem``.

    Raises:
        ImageError: no such file, a folder, or unreadable (naming ``path``).
    """
    import pyarrow.fs as pafs

    try:
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise ImageError(f"{path}: no such file")
        if info.type == pafs.FileType.Directory:
            raise ImageError(f"{path}: is a folder, not an image")
        with filesystem.open_input_stream(path) as f:
            return f.read()
    except ImageError:
        raise
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the file ({exc})") from None


def atomic_put(filesystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that no reader ever sees a partial file.

    Local filesystems: a hidden temp file beside it, then a rename. Object stores: one
    ``open_output_stream`` written in full and closed (the object appears only when the upload
    completes; an interrupted upload leaves no object).

    Raises:
        OutputError: the write failed (naming ``path``).
    """
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    try:
        if parent:
            filesystem.create_dir(parent, recursive=True)
        if is_local(filesystem) or type(filesystem).__name__ in ("SubTreeFileSystem",):
            name = path.rsplit("/", 1)[-1]
            tmp = (parent + "/" if parent else "") + f".{name}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                with filesystem.open_output_stream(tmp) as f:
                    f.write(data)
                filesystem.move(tmp, path)
            except BaseException:
                try:
                    filesystem.delete_file(tmp)
                except OSError:
                    pass
                raise
        else:
            with filesystem.open_output_stream(path) as f:
                f.write(data)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc})") from exc


def exists_many(filesystem, paths: list[str]) -> list[bool]:
    """Whether each path exists (local: ``os.path.exists``; else one ``get_file_info`` call)."""
    if filesystem is None:
        return [os.path.exists(p) for p in paths]
    import pyarrow.fs as pafs

    return [i.type != pafs.FileType.NotFound for i in filesystem.get_file_info(paths)]
