"""Image input/output: the only module that touches image files.

``load_image`` returns RGB ``uint8`` H×W×3 after EXIF orientation, converting palette, CMYK,
greyscale, 16-bit and alpha inputs explicitly; ``save_image`` writes atomically (temp file in the
same folder + ``os.replace``).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from struct import error as struct_error
from typing import IO, Union

import numpy as np

from .errors import ConfigError, ImageError, OutputError, UsageError

__all__ = [
    "ImageError",
    "DEFAULT_MAX_PIXELS",
    "MIN_SIDE",
    "check_pixels",
    "pixel_limit",
    "pil_to_rgb",
    "load_image",
    "decode_image",
    "encode_image",
    "save_image",
    "atomic_write_bytes",
    "atomic_path",
    "open_unchecked",
    "open_image",
    "OUTPUT_FORMATS",
]

from .limits import DEFAULT_MAX_PIXELS, MIN_SIDE  # noqa: E402  (re-exported)

#: Output formats by file suffix.
OUTPUT_FORMATS = {
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
}

PathLike = Union[str, os.PathLike]


def pixel_limit(max_pixels: int | None) -> int:
    """The pixel limit: ``max_pixels``, else ``NUGGY_MAX_PIXELS``, else 100 MP (at least
    ``MIN_SIDE²``: a smaller limit would refuse every image)."""
    if max_pixels is not None:
        source, value = "max_pixels", max_pixels
    else:
        env = os.environ.get("NUGGY_MAX_PIXELS", "").strip()
        if not env:
            return DEFAULT_MAX_PIXELS
        source, value = "NUGGY_MAX_PIXELS", env
        try:
            value = int(env)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < MIN_SIDE**2:
        raise ConfigError(
            f"{source}={value!r}: the pixel limit must be a whole number >= {MIN_SIDE**2} "
            f"(a {MIN_SIDE}×{MIN_SIDE} image); the default is {DEFAULT_MAX_PIXELS:,}",
            field="max_pixels",
        )
    return int(value)


def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} MP" if n >= 100_000 else f"{n:,} pixels"


def load_image(
    source: PathLike | bytes | IO[bytes],
    *,
    max_pixels: int | None = None,
    name: str | None = None,
    frame: int = 0,
) -> np.ndarray:
    """Read an image file (path, bytes or binary file object) as RGB uint8 H×W×3.

    EXIF orientation is applied; palette, CMYK, greyscale, 16-bit and images with an alpha
    channel are converted to RGB explicitly (alpha is composited on nothing: its colour channels
    are kept). Animated images give their first frame (``frame`` picks another).

    Args:
        source: file path, encoded bytes, or a binary file object.
        max_pixels: refuse images with more pixels (decompression-bomb guard);
            default ``NUGGY_MAX_PIXELS`` or 100 MP.
        name: name used in error messages (defaults to the path).
        frame: frame index for animated images.

    Raises:
        ImageError: unreadable, truncated or too large; the message names the file and the fix.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "<bytes>"
    elif hasattr(source, "read"):
        data = source.read()  # type: ignore[union-attr]
        label = name or getattr(source, "name", "<stream>")
    else:
        path = Path(os.fspath(source))
        label = name or str(path)
        if not path.exists():
            if path.is_symlink():
                raise ImageError(
                    f"{label}: broken symbolic link (to {os.readlink(path)}, which does not exist)"
                )
            raise ImageError(f"{label}: no such file")
        if path.is_dir():
            raise ImageError(f"{label}: is a folder, not an image")
        try:
            data = path.read_bytes()
        except OSError as exc:  # permission denied, a FIFO that fails, an I/O error
            raise ImageError(f"{label}: cannot read the file ({exc.strerror or exc})") from None
    if not data:
        raise ImageError(f"{label}: the file is empty")
    return decode_image(data, max_pixels=max_pixels, name=label, frame=frame)


def check_pixels(w: int, h: int, *, name: str, max_pixels: int | None = None) -> None:
    """Raise :class:`ImageError` when a w×h image exceeds the pixel limit (decompression bombs
    and images too large to process; default ``NUGGY_MAX_PIXELS`` or 100 MP) or is smaller
    than :data:`MIN_SIDE` on a side. Every input type goes through here."""
    limit = pixel_limit(max_pixels)
    if w * h > limit:
        raise ImageError(
            f"{name}: {w}×{h} = {_pixels(w * h)} exceeds the limit of {_pixels(limit)} "
            "(a guard against decompression bombs); raise it with --max-pixels, max_pixels= "
            "or NUGGY_MAX_PIXELS if the image is genuine"
        )
    if min(w, h) < MIN_SIDE:
        raise ImageError(
            f"{name}: {w}×{h} image is too small: it needs at least {MIN_SIDE}×{MIN_SIDE} pixels"
        )


def decode_image(
    data: bytes, *, max_pixels: int | None = None, name: str = "<bytes>", frame: int = 0
) -> np.ndarray:
    """Decode encoded image bytes to RGB uint8 H×W×3 (see :func:`load_image`)."""
    from PIL import UnidentifiedImageError

    limit = pixel_limit(max_pixels)
    try:
        im = open_unchecked(data)
    except UnidentifiedImageError:
        raise ImageError(
            f"{name}: not a recognised image file (corrupt, or a format Pillow cannot read); "
            "convert it to PNG or JPEG"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure becomes an ImageError
        raise _corrupt(name, exc) from None

    check_pixels(*im.size, name=name, max_pixels=limit)
    n_frames = getattr(im, "n_frames", 1)
    if frame:
        if frame >= n_frames:
            raise ImageError(f"{name}: has {n_frames} frame(s); frame {frame} does not exist")
        try:
            im.seek(frame)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise _corrupt(name, exc) from None
    return pil_to_rgb(im, name)


def open_image(source: PathLike | bytes, *, max_pixels: int | None = None, name: str | None = None):
    """A decoded PIL image (any mode, EXIF orientation applied) after the pixel limit was
    checked on the header: for readers that need the file's own mode (greyscale mattes, colour
    masks). Images for the pipeline use :func:`load_image`.

    Raises:
        ImageError: missing, unreadable, truncated or too large (naming the file and the fix).
    """
    from PIL import ImageOps, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), name or "<bytes>"
    else:
        path = Path(os.fspath(source))
        label = name or str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageError(f"{label}: no such file") from None
        except OSError as exc:
            raise ImageError(f"{label}: cannot read the file ({exc.strerror or exc})") from None
    if not data:
        raise ImageError(f"{label}: the file is empty")
    try:
        im = open_unchecked(data)
    except UnidentifiedImageError:
        raise ImageError(
            f"{label}: not a readable image (not a format Pillow recognises); re-export it as PNG"
        ) from None
    except Exception as exc:  # noqa: BLE001
        raise _corrupt(label, exc) from None
    check_pixels(*im.size, name=label, max_pixels=max_pixels)
    try:
        im.load()
        return ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _corrupt(label, exc) from None


def open_unchecked(data: bytes):
    """``PIL.Image.open`` of ``data`` (header only, lazy) without Pillow's own size check.

    Pillow checks the size against its process-wide ``Image.MAX_IMAGE_PIXELS`` inside
    ``Image.open``; Nuggy applies its own limit (:func:`check_pixels`) to the header's size
    before any pixel is decoded, so it opens through the format plugins directly, the way
    ``Image.open`` does, and never touches that global (other threads may be decoding).

    Raises:
        PIL.UnidentifiedImageError: no plugin recognises the data.
    """
    from PIL import Image, UnidentifiedImageError

    fp = io.BytesIO(data)
    prefix = data[:16]
    for preinit in (True, False):  # common formats first, then every plugin (like Image.open)
        Image.preinit() if preinit else Image.init()
        for fmt in list(Image.ID):
            factory, accept = Image.OPEN[fmt]
            if accept is not None:
                ok = accept(prefix)
                if isinstance(ok, str):  # a plugin's "this is me, but broken" message
                    raise SyntaxError(ok)
                if not ok:
                    continue
            fp.seek(0)
            try:
                im = factory(fp, "")
            except (SyntaxError, IndexError, TypeError, struct_error):
                continue
            return im
    raise UnidentifiedImageError("cannot identify image file")


def _corrupt(name: str, exc: BaseException) -> ImageError:
    return ImageError(f"{name}: the image data is truncated or corrupt ({exc}); re-export or re-download it")


def pil_to_rgb(im, name: str) -> np.ndarray:  # im: PIL.Image.Image
    """Decode a PIL image (``Image.open`` is lazy) to RGB uint8 H×W×3 after EXIF orientation.

    Raises:
        ImageError: truncated or corrupt data, or an unsupported mode (naming ``name``).
    """
    from PIL import ImageOps

    try:
        im.load()
        return _to_rgb_u8(ImageOps.exif_transpose(im), name)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _corrupt(name, exc) from None


def _to_rgb_u8(im, name: str) -> np.ndarray:  # im: PIL.Image.Image
    """Explicit conversion of any Pillow mode to RGB uint8."""
    mode = im.mode
    if mode == "RGB":
        arr = np.asarray(im)
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit (or 32-bit int) greyscale: scale the full range down to 8 bits.
        a = np.asarray(im).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        g = np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8)
        arr = np.repeat(g[..., None], 3, axis=2)
    elif mode == "F":
        a = np.asarray(im, dtype=np.float64)
        top = 1.0 if a.max() <= 1.0 else 255.0
        g = np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8)
        arr = np.repeat(g[..., None], 3, axis=2)
    elif mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        arr = np.asarray(im.convert("RGBA"))[..., :3]
    elif mode == "P":
        arr = np.asarray(im.convert("RGBA"))[..., :3]
    elif mode == "CMYK":
        arr = np.asarray(im.convert("RGB"))
    elif mode in ("L", "1"):
        arr = np.asarray(im.convert("RGB"))
    elif mode in ("YCbCr", "LAB", "HSV"):
        arr = np.asarray(im.convert("RGB"))
    elif mode.startswith("RGB") or mode.startswith("BGR"):
        arr = np.asarray(im.convert("RGB"))
    else:
        try:
            arr = np.asarray(im.convert("RGB"))
        except Exception:  # noqa: BLE001
            raise ImageError(
                f"{name}: unsupported pixel mode {mode!r}; convert the image to 8-bit RGB"
            ) from None
    if arr.dtype != np.uint8:
        if arr.dtype == np.uint16:
            arr = (arr.astype(np.uint32) * 255 + 32767) // 65535
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _to_pil(array: np.ndarray):
    from PIL import Image

    a = np.asarray(array)
    if a.dtype != np.uint8:
        if a.dtype.kind == "f":
            a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
        else:
            raise ImageError(f"<array>: expected uint8 or float in [0, 1], got {a.dtype}")
    if a.ndim == 2:
        return Image.fromarray(a, "L")
    if a.ndim == 3 and a.shape[2] == 3:
        return Image.fromarray(a, "RGB")
    if a.ndim == 3 and a.shape[2] == 4:
        return Image.fromarray(a, "RGBA")
    raise ImageError(f"<array>: expected an H×W, H×W×3 or H×W×4 array, got shape {a.shape}")


def encode_image(array: np.ndarray, fmt: str = "PNG", *, quality: int = 95) -> bytes:
    """Encode uint8 H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA) to bytes in ``fmt``.

    JPEG cannot hold transparency: RGBA input raises a :class:`UsageError` naming the fix.
    """
    fmt = fmt.upper()
    im = _to_pil(array)
    if fmt == "JPEG" and im.mode == "RGBA":
        raise UsageError(
            "JPEG has no transparency: write PNG/WebP/TIFF, or flatten the cut-out onto a "
            "background (--bg / bg=)"
        )
    buf = io.BytesIO()
    kwargs: dict = {}
    if fmt == "PNG":
        # zlib's run-length strategy (Z_RLE): on 2 MP cut-outs 1.8x faster to write than
        # level 3 and no larger (transparent runs and flat masks compress best this way).
        kwargs["compress_type"] = 3
    elif fmt == "WEBP":
        kwargs.update(lossless=True, quality=100) if im.mode == "RGBA" else kwargs.update(quality=quality)
    elif fmt == "JPEG":
        kwargs["quality"] = quality
    elif fmt == "TIFF":
        kwargs["compression"] = "tiff_deflate"
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@contextlib.contextmanager
def atomic_path(path: PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Write a file atomically: yields a fresh temporary path in the destination's folder; when
    the block succeeds the file is fsynced and renamed onto ``path``, otherwise removed. Readers
    see the old file or the complete new one, never a part.

    The temporary file is created empty with ``O_CREAT | O_EXCL`` and mode 0666, so the kernel
    applies the process umask (no need to read it, which would mean setting it); the writer
    may replace it (``torch.save``, ``Image.save``) or open it for writing.

    Raises:
        OutputError: the folder cannot be made or written (an ``OSError``; names the path).
    """
    path = Path(os.fspath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            try:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 collisions of 32 random bits
            raise FileExistsError(f"{path.parent}: no free temporary name")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`); returns the path."""
    path = Path(os.fspath(path))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def format_for(path: PathLike) -> str:
    """Pillow format name for an output path's suffix; clear error for unknown ones."""
    suffix = Path(os.fspath(path)).suffix.lower()
    try:
        return OUTPUT_FORMATS[suffix]
    except KeyError:
        raise UsageError(
            f"{path}: unknown output format {suffix or '(none)'!r}; use one of "
            + ", ".join(sorted(OUTPUT_FORMATS))
        ) from None


def save_image(array: np.ndarray, path: PathLike, *, fmt: str | None = None) -> Path:
    """Encode ``array`` (see :func:`encode_image`) and write it atomically to ``path``."""
    fmt = fmt or format_for(path)
    return atomic_write_bytes(path, encode_image(array, fmt))
