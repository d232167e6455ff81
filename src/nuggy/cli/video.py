"""``nuggy video``: cut the subject out of a clip, with alpha (WebM / MOV / PNG frames)."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Cut the subject out of a video, frame by frame, with a temporally stable matte.

  nuggy video clip.mp4 -o clip.webm          VP9 with alpha (yuva420p), plays in browsers
  nuggy video clip.mp4 -o clip.mov           ProRes 4444 with alpha, for editors
  nuggy video clip.mp4 -o frames/            RGBA PNG sequence (+ timestamps.tsv, audio.mka)
  nuggy video clip.mp4 -o white.mp4 --bg white|'#00ff00'|beach.jpg|blur   opaque H.264
  nuggy video clip.mp4 -o matte.mp4 --mask-only                           greyscale matte
  nuggy video clip.mp4 -o out.webm --model rvm --accept-license gpl-3.0  people: RVM
  nuggy video clip.mp4 -o out.webm --preset fast --temporal 0.8 --start 2.5 --duration 4

Frame rate (also variable), timestamps, size, rotation and the audio stream are kept. The
output is written under a temporary name and renamed when complete; an existing output is
replaced only with --overwrite."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("input", metavar="INPUT", help="video file")
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        required=True,
        help=".webm / .mkv (VP9+alpha), .mov (ProRes 4444+alpha), .mp4 (with --bg or "
        "--mask-only), or a folder/ for PNG frames",
    )
    p.add_argument("--preset", default="default", help="fast | default | best (default: %(default)s)")
    p.add_argument(
        "--model",
        default=None,
        help="registry model (default u2netp; rvm = Robust Video Matting, for people)",
    )
    p.add_argument("--weights", metavar="PATH", help="use this model file instead of the registry one")
    p.add_argument("--accept-license", metavar="ID", help="accept a gated model's licence (gpl-3.0 for rvm)")
    p.add_argument(
        "--temporal",
        type=float,
        default=None,
        metavar="K",
        help="temporal stabilisation strength 0..1 (0 = off; default 0.8, rvm: 0)",
    )
    p.add_argument("--start", type=float, default=None, metavar="SEC", help="start at this time")
    p.add_argument("--duration", type=float, default=None, metavar="SEC", help="process this many seconds")
    out = p.add_argument_group("output")
    out.add_argument(
        "--bg", metavar="BG", help="background: white, '#00ff00', R,G,B, an image file, blur[:strength]"
    )
    out.add_argument("--mask-only", action="store_true", help="write the matte (greyscale video)")
    out.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    from nuggy.cli.settings import add_setting_arguments

    st = p.add_argument_group("pipeline stages, per frame (override the preset; ranges in brackets)")
    add_setting_arguments(st)
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a terminal only)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")


def run(args) -> int:
    from nuggy.errors import NuggyError, UsageError

    try:
        from nuggy.api import preflight
        from nuggy.pipeline.compose import parse_background
        from nuggy.video.remove import check_request

        # usage errors first (exit 2), before PyAV or a model is loaded
        check_request(
            args.input,
            args.output,
            bg=args.bg,
            mask_only=args.mask_only,
            overwrite=args.overwrite,
            temporal=args.temporal,
            start=args.start,
            duration=args.duration,
        )
        from nuggy.cli.settings import config_from_args

        fixed = {}
        if args.mask_only and getattr(args, "foreground", None) is None:
            fixed["foreground"] = False  # a matte needs no colours
        config = config_from_args(args, **fixed)
        preflight(config)
        if args.bg:
            parse_background(args.bg)
    except UsageError as exc:
        print(f"nuggy video: {exc}", file=sys.stderr)
        return 2
    except NuggyError as exc:  # the input is missing
        print(f"nuggy video: {exc}", file=sys.stderr)
        return 1
    from nuggy.sources import ModelSourceError
    from nuggy.video import remove

    try:
        report = remove(
            args.input,
            args.output,
            config=config,
            bg=args.bg,
            mask_only=args.mask_only,
            temporal=args.temporal,
            start=args.start,
            duration=args.duration,
            overwrite=args.overwrite,
            accept_license=args.accept_license,
            progress=False if args.quiet else args.progress,
        )
    except UsageError as exc:
        print(f"nuggy video: {exc}", file=sys.stderr)
        return 2
    except (NuggyError, ModelSourceError) as exc:
        print(f"nuggy video: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        audio = ", audio copied" if report.audio else ""
        print(
            f"nuggy: {report.frames} frames → {report.output} in {report.seconds:.1f} s "
            f"({report.fps:.2f} fps{audio})",
            file=sys.stderr,
        )
    return 0
