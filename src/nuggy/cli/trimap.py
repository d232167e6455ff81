"""``nuggy trimap``: write the automatic trimap of images (to inspect, edit, or feed back)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DESCRIPTION = """Write the automatic trimap (0 background, 128 unknown, 255 foreground) of images.

  nuggy trimap dog.jpg                    -> dog.trimap.png next to it
  nuggy trimap dog.jpg -o dog_trimap.png  one input, one output file
  nuggy trimap shoots/*.jpg -o trimaps/   many inputs into a folder

The trimap comes from the same segmentation as 'nuggy remove' (same --preset / --model options).
Edit it and pass it back with 'nuggy remove dog.jpg --trimap dog_trimap.png'."""

SUFFIX = ".trimap.png"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files")
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="output file (one input) or folder (default: INPUT.trimap.png beside it)",
    )
    p.add_argument("--preset", default="default", help="fast | default | best (segmentation stages)")
    from nuggy.cli.settings import add_model_arguments

    add_model_arguments(p)
    from nuggy.cli.settings import add_setting_arguments

    st = p.add_argument_group("segmentation stages before the trimap (override the preset)")
    add_setting_arguments(
        st,
        (
            "tta",
            "interior",
            "interior_depth",
            "refine",
            "refine_radius",
            "refine_eps",
            "refine_band",
            "islands",
            "island_min_area",
            "fill_holes",
            "hole_max_area",
            "trimap_band",
            "threads",
        ),
    )
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")


def _outputs(inputs: list[str], output: str | None) -> list[tuple[str, str]]:
    """``(input, output)`` pairs, planned before any work; never two inputs to one output."""
    from nuggy.cli.outputs import distinct_outputs, names_a_file

    many = f"{len(inputs)} images" if len(inputs) > 1 else None
    if output and names_a_file(output, {".png"}, inputs=many):
        return [(inputs[0], output)]
    folder = (lambda s: Path(s).parent) if output is None else (lambda s: Path(output))
    candidates = [
        (s, str(folder(s) / (Path(s).stem + SUFFIX)), str(folder(s) / (Path(s).name + SUFFIX)))
        for s in inputs
    ]
    return list(zip(inputs, distinct_outputs(candidates)))


def run(args) -> int:
    from nuggy.io import ImageError, load_image, save_image
    from nuggy.pipeline.pipeline import Pipeline
    from nuggy.sources import ModelSourceError

    try:
        jobs = _outputs(args.inputs, args.output)
        from nuggy.cli.settings import config_from_args

        cfg = config_from_args(args, matting="none", foreground=False)
        pipe = Pipeline(cfg, accept_license=args.accept_license)
        pipe.load()
    except (ValueError, ModelSourceError, FileNotFoundError, RuntimeError) as exc:
        print(f"nuggy trimap: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for src, dst in jobs:
        if os.path.exists(dst) and not args.overwrite:
            print(f"nuggy trimap: {dst} exists (--overwrite to replace)", file=sys.stderr)
            failed += 1
            continue
        if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
            print(f"nuggy trimap: {dst} is the input; refusing to overwrite it", file=sys.stderr)
            failed += 1
            continue
        try:
            image = load_image(src)
            trimap = pipe.trimap(image)
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            save_image(trimap, dst)
        except (ImageError, ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if not args.quiet:
            unknown = float((trimap == 128).mean())
            print(f"{src} -> {dst} ({unknown:.1%} unknown)", file=sys.stderr)
    return 1 if failed else 0
