"""Which inputs a dataset run reads and where each output goes (local paths and URIs).

The rules are those of ``nuggy remove`` on a folder: image suffixes only, hidden files and
earlier outputs (``*.nuggy.*``) passed over, ``<dst>/<relative path>.<fmt>``, and when two
inputs would share a name (``cat.jpg`` + ``cat.png``) both keep their full name
(``cat.jpg.png``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from ..errors import UsageError
from .fs import is_uri, join, split_uri

__all__ = ["Task", "IMAGE_SUFFIXES", "OUTPUT_TAG", "plan_dataset"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif"}
OUTPUT_TAG = ".nuggy"


@dataclass(frozen=True)
class Task:
    """One file: ``src`` / ``dst`` are paths inside their filesystems, ``label`` /
    ``dst_label`` what messages and the manifest show (the path or the URI)."""

    src: str
    dst: str
    label: str
    dst_label: str


def _scheme_prefix(location: str) -> str:
    return location.split("://", 1)[0] + "://" if is_uri(location) else ""


def plan_dataset(src: str | list[str], dst: str, *, recursive: bool = True, fmt: str = "png"):
    """``(tasks, src_fs, dst_fs)`` for every image under ``src`` (a folder, a URI prefix or a
    list of files/URIs on one filesystem) written under the folder ``dst``.

    Raises:
        UsageError: nothing to do, mixed filesystems, or two inputs that would share an output.
    """
    import pyarrow.fs as pafs

    from ..cli.outputs import distinct_outputs

    locations = [src] if isinstance(src, str) else list(src)
    if not locations:
        raise UsageError("no inputs given")
    prefixes = {_scheme_prefix(loc) for loc in locations}
    if len(prefixes) > 1:
        raise UsageError(
            f"inputs on different filesystems ({', '.join(sorted(prefixes))}): run them separately"
        )
    prefix = prefixes.pop()
    src_fs, _ = split_uri(locations[0])
    fs_for_listing = src_fs or pafs.LocalFileSystem()
    dst_fs, dst_root = split_uri(dst)
    dst_prefix = _scheme_prefix(dst)
    found: list[tuple[str, str]] = []  # (path in fs, path relative to its folder)
    for loc in locations:
        _, path = split_uri(loc)
        if src_fs is None:
            import os

            path = os.path.abspath(path)
        info = fs_for_listing.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            sel = pafs.FileSelector(path, recursive=recursive)
            for f in sorted(fs_for_listing.get_file_info(sel), key=lambda i: i.path):
                if f.type != pafs.FileType.File:
                    continue
                rel = (
                    f.path[len(path.rstrip("/")) + 1 :]
                    if f.path.startswith(path.rstrip("/") + "/")
                    else f.base_name
                )
                name = PurePosixPath(rel).name
                if (
                    name.startswith(".")
                    or OUTPUT_TAG in name
                    or any(part.startswith(".") for part in PurePosixPath(rel).parts[:-1])
                    or PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES
                ):
                    continue
                found.append((f.path, rel))
        else:  # a file, or a missing one (recorded as failed, as in local mode)
            found.append((path, PurePosixPath(path).name))
    if not found:
        raise UsageError(
            f"no input images found in {', '.join(locations)} (images: {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    ext = "." + fmt
    candidates = []
    for path, rel in found:
        r = PurePosixPath(rel)
        candidates.append(
            (path, join(dst_root, str(r.with_suffix(ext))), join(dst_root, str(r.with_name(r.name + ext))))
        )
    outs = distinct_outputs(candidates)
    tasks = [
        Task(p, o, prefix + p if prefix else p, dst_prefix + o if dst_prefix else o)
        for (p, _), o in zip(found, outs)
    ]
    return tasks, src_fs, dst_fs
