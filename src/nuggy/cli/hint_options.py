"""``nuggy remove`` options for interactive hints: ``--box``, ``--keep``, ``--drop``, ``--hints``."""

from __future__ import annotations

import argparse

from nuggy.errors import UsageError


def add_hint_arguments(p: argparse.ArgumentParser) -> None:
    """Add the hint options (one image only) to ``p``."""
    g = p.add_argument_group(
        "hints (one INPUT only): say what the subject is",
        "pixel coordinates of the photo, x right, y down; see the README section "
        "'Fixing a cut-out with hints'",
    )
    g.add_argument(
        "--box",
        metavar="X0,Y0,X1,Y1",
        help="the subject lies inside this box (x1, y1: one past the right/bottom "
        "pixel); the model runs on it, outside is background",
    )
    g.add_argument(
        "--keep", metavar="X,Y", action="append", default=None, help="a click on the subject (repeatable)"
    )
    g.add_argument(
        "--drop",
        metavar="X,Y",
        action="append",
        default=None,
        help="a click on background the model took for subject (repeatable)",
    )
    g.add_argument(
        "--hints",
        metavar="PATH",
        dest="hint_image",
        help="hint image, same size as the photo: white (255) keep, black (0) drop, "
        "grey 128 or transparent no hint",
    )


def any_hints(args) -> bool:
    return bool(
        getattr(args, "box", None)
        or getattr(args, "keep", None)
        or getattr(args, "drop", None)
        or getattr(args, "hint_image", None)
    )


def hints_from_args(args, n_jobs: int, src: str | None = None):
    """The :class:`~nuggy.pipeline.hints.Hints` of the command line (``None`` without any),
    checked against the size in ``src``'s header when it is a readable file (otherwise once
    the image is read). Raises UsageError (a HintError)."""
    if not any_hints(args):
        return None
    given = [
        f
        for f, v in (
            ("--box", args.box),
            ("--keep", args.keep),
            ("--drop", args.drop),
            ("--hints", args.hint_image),
        )
        if v
    ]
    if n_jobs != 1:
        raise UsageError(
            f"{', '.join(given)} {'take' if len(given) > 1 else 'takes'} exactly one INPUT (hints are pixel positions on one photo); "
            f"got {n_jobs} inputs"
        )
    if getattr(args, "trimap", None):
        raise UsageError(
            f"--trimap and {', '.join(given)} cannot be combined: a trimap already "
            "says what is subject (draw the fix into it instead)"
        )
    from nuggy.pipeline.hints import Hints, load_hint_image, parse_box, parse_point

    box = parse_box(args.box, option="--box") if args.box else None
    keep = tuple(parse_point(t, option="--keep") for t in args.keep or ())
    drop = tuple(parse_point(t, option="--drop") for t in args.drop or ())
    strokes = load_hint_image(args.hint_image) if args.hint_image else None
    hints = Hints(box=box, keep=keep, drop=drop, strokes=strokes)
    size = _header_size(src)
    if size is not None:
        hints.check((size[1], size[0]), name=args.hint_image or "hints")
    return hints


def _header_size(src: str | None) -> tuple[int, int] | None:
    """(width, height) after EXIF rotation from an image file's header, or ``None``."""
    if not src or src == "-":
        return None
    try:
        from PIL import Image

        with Image.open(src) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - unreadable: the run reports it, naming the file
        return None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
