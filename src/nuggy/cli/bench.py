"""``nuggy bench``: speed and memory per pipeline stage."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Time the pipeline per stage and measure its memory, on photos of chosen sizes.

  nuggy bench --model u2netp --preset default --size 2mp,12mp [--runs 3] [-o bench.json]

Test photos are an example photo resized to each size (--image to pick another). Each size
runs --warmup times untimed, then --runs times; the table shows the mean time per stage,
images per second, the process's peak RSS and its increase over the baseline (the RSS
with the model loaded and run once).
-o FILE.json writes JSON (and FILE.md beside it); -o DIR writes DIR/bench.json and bench.md."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from nuggy.cli.eval import add_pipeline_arguments

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "--size",
        default="1mp",
        metavar="SIZES",
        help="comma-separated sizes: 2mp, 1920x1080, 1024 (long side) (default: %(default)s)",
    )
    p.add_argument("--runs", type=int, default=3, help="timed runs per size (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default: %(default)s)")
    p.add_argument("--image", metavar="PATH", help="photo to resize (default: an example photo)")
    p.add_argument("-o", "--output", metavar="PATH", help="write JSON (+ Markdown) here")
    add_pipeline_arguments(p)
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a terminal only)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print the table and errors only")


def run(args) -> int:
    import json
    from pathlib import Path

    from nuggy.cli.eval import config_from_args
    from nuggy.eval.benchmark import bench_markdown, parse_size, run_benchmark
    from nuggy.io import ImageError, atomic_write_bytes
    from nuggy.sources import ModelSourceError

    def note(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr)

    sizes = [s for s in args.size.split(",") if s.strip()]
    try:
        for s in sizes:
            parse_size(s)
        if args.output:
            from nuggy.cli.outputs import names_a_file

            names_a_file(args.output, {".json"})
        config = config_from_args(args)
        from nuggy.api import preflight

        preflight(config)  # model names and files before the photo is read
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"nuggy bench: {exc}", file=sys.stderr)
        return 2
    show = args.progress if args.progress is not None else (sys.stderr.isatty() and not args.quiet)
    try:
        result = run_benchmark(
            config,
            sizes,
            runs=args.runs,
            warmup=args.warmup,
            source=args.image,
            progress=show,
            accept_license=args.accept_license,
            log=note,
        )
    except ImportError as exc:
        print(
            f"nuggy bench: the pipeline needs a module that is missing ({exc}); try --preset fast",
            file=sys.stderr,
        )
        return 2
    except (ModelSourceError, FileNotFoundError, ImageError, ValueError, RuntimeError) as exc:
        print(f"nuggy bench: {exc}", file=sys.stderr)
        return 2
    md = bench_markdown(result)
    print(md)
    if args.output:
        out = Path(args.output)
        js = out if out.suffix.lower() == ".json" else out / "bench.json"
        atomic_write_bytes(js, (json.dumps(result, indent=2, default=str) + "\n").encode())
        atomic_write_bytes(js.with_suffix(".md"), md.encode())
        note(f"written {js} and {js.with_suffix('.md')}")
    return 0
