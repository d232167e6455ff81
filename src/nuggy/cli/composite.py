"""``nuggy composite``: build a Composition-1k-style benchmark set."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Composite every foreground over N backgrounds (Composition-1k protocol, Xu et al. 2017).

  nuggy composite --fg FG_DIR --alpha ALPHA_DIR --bg BG_DIR -n 20 -o comp/ [--seed 0]
  nuggy eval comp/ --model u2netp --preset default -o report/

Foregrounds and alphas are matched by name. Backgrounds (searched recursively) are shuffled
once with --seed and dealt out without repetition while there are enough; each is upscaled
only if it is smaller than the foreground (--fit dim, the original code; --fit cover scales
every background to just cover it and crops the centre), then cropped to the foreground's size.
I = a*F + (1-a)*B in float, rounded once (on sRGB values as the protocol does; --linear
blends in linear light). Writes image/ alpha/ trimap/ fg/ bg/ (<fg>_<k>.png) and
manifest.json; trimaps dilate the unknown region by --trimap-radius pixels."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--fg", required=True, metavar="FG_DIR", help="foreground colour images")
    p.add_argument("--alpha", required=True, metavar="ALPHA_DIR", help="their alpha mattes (same names)")
    p.add_argument("--bg", required=True, metavar="BG_DIR", help="background images")
    p.add_argument(
        "-n", type=int, default=20, metavar="N", help="backgrounds per foreground (default: %(default)s)"
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="background shuffle seed (default: %(default)s)")
    p.add_argument(
        "--fit", choices=["dim", "cover"], default="dim", help="background fitting (default: %(default)s)"
    )
    p.add_argument("--linear", action="store_true", help="composite in linear light, not on sRGB values")
    p.add_argument(
        "--trimap-radius",
        type=int,
        default=10,
        metavar="PX",
        help="unknown-band dilation radius of the generated trimaps (default: %(default)s)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a composite set already in DIR")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a terminal only)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")


def run(args) -> int:
    from nuggy.eval.composite import build_composition
    from nuggy.eval.datasets import DatasetError
    from nuggy.io import ImageError

    show = args.progress if args.progress is not None else (sys.stderr.isatty() and not args.quiet)
    try:
        manifest = build_composition(
            args.fg,
            args.alpha,
            args.bg,
            args.output,
            n=args.n,
            seed=args.seed,
            fit=args.fit,
            linear=args.linear,
            trimap_radius=args.trimap_radius,
            overwrite=args.overwrite,
            progress=show,
        )
    except (DatasetError, ImageError, ValueError) as exc:
        print(f"nuggy composite: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        for msg in manifest["notes"]:
            print(f"warning: {msg}", file=sys.stderr)
        print(
            f"nuggy: {len(manifest['items'])} composites ({manifest['foregrounds']} foregrounds × "
            f"{manifest['per_foreground']}, {manifest['backgrounds']} backgrounds) written to "
            f"{args.output}; score with: nuggy eval {args.output} --model u2netp -o REPORT",
            file=sys.stderr,
        )
    return 0
