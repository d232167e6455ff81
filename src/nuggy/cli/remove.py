"""``nuggy remove``: files, folders (recursive), globs, stdin/stdout."""

from __future__ import annotations

import argparse
import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from nuggy.cli.outputs import distinct_outputs, names_a_file
from nuggy.errors import UsageError

DESCRIPTION = """Cut the subject out of images.

  nuggy remove photo.jpg                  -> photo.nuggy.png next to it (or -o PATH)
  nuggy remove shoots/ -o cutouts/ -r     folders (recursive), globs, many inputs
  cat a.jpg | nuggy remove - -o - > a.png stdin / stdout
  nuggy remove a.jpg --bg white | --bg '#00ff00' | --bg beach.jpg | --bg blur | --mask-only
  nuggy remove shoots/ -o cutouts/ -r --engine ray [--address auto] [--manifest run.parquet]
  nuggy remove inbox/ -o cutouts/ --watch  hot folder: new files once written; Ctrl-C stops
  nuggy remove bear.jpg --box 40,10,780,520 --keep 300,450 --drop 20,30 --hints fix.png

Batch runs never overwrite an input, write each output atomically, skip outputs that exist
(unless --overwrite), carry on past bad files and exit with status 1 if any file failed."""

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif"}
OUTPUT_TAG = ".nuggy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs, or - for stdin")
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="output file (one input), folder (many inputs), or - for stdout",
    )
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--preset", default="default", help="fast | default | best (default: %(default)s)")
    from nuggy.cli.settings import add_model_arguments

    add_model_arguments(
        p,
        model_help="registry model, or several joined by '+' (u2netp+isnet: run each, fuse "
        "the maps), or auto (default: u2netp; --preset best: auto = u2netp plus every "
        "cached model whose licence you accepted; see 'nuggy models list')",
    )
    out = p.add_argument_group("output")
    out.add_argument("--mask-only", action="store_true", help="write the alpha matte (greyscale)")
    out.add_argument(
        "--bg", metavar="BG", help="background: white, '#00ff00', R,G,B, an image file, blur[:strength]"
    )
    out.add_argument(
        "--format",
        choices=["png", "webp", "tif", "jpg"],
        default=None,
        help="output format for generated names (default png; jpg needs --bg)",
    )
    out.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    out.add_argument(
        "--max-pixels", type=int, default=None, help="refuse larger images (default 100 MP; NUGGY_MAX_PIXELS)"
    )
    from nuggy.cli.settings import add_setting_arguments

    st = p.add_argument_group("pipeline stages (override the preset; ranges in brackets)")
    add_setting_arguments(st)
    mt = p.add_argument_group("trimap")
    mt.add_argument(
        "--trimap",
        metavar="PATH",
        help="your own trimap (0/128/255, same size as the single INPUT): no segmentation",
    )
    from nuggy.cli.hint_options import add_hint_arguments

    add_hint_arguments(p)
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a terminal only)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    from nuggy.cli.engines import add_engine_arguments

    add_engine_arguments(p)


@dataclass
class Job:
    src: str  # path, or "-" for stdin
    dst: str | None  # path, or "-" for stdout
    label: str


def _expand(inputs: list[str], recursive: bool, notes: list[str]) -> list[tuple[str, Path | None]]:
    """(file, base folder or None) for every input; folders and globs expanded, sorted.

    Files of other types found in folders or globs are counted in ``notes`` (hidden files and
    earlier outputs are passed over without a word)."""
    found: list[tuple[str, Path | None]] = []

    def keep(paths, where: str, base: Path | None) -> None:
        other: list[str] = []
        for f in sorted(Path(p) for p in paths):
            if f.name.startswith(".") or OUTPUT_TAG in f.name:
                continue
            broken = f.is_symlink() and not f.exists()  # reported as a failure, not lost
            if f.suffix.lower() in IMAGE_SUFFIXES and (broken or f.is_file()):
                found.append((str(f), base))
            elif f.is_file():
                other.append(f.suffix.lower() or "(no suffix)")
        if other:
            kinds = ", ".join(sorted(set(other)))
            notes.append(
                f"{where}: skipped {len(other)} file{'s' * (len(other) != 1)} of "
                f"unsupported type ({kinds}); images: {', '.join(sorted(IMAGE_SUFFIXES))}"
            )

    for item in inputs:
        if item == "-":
            found.append(("-", None))
            continue
        path = Path(item)
        if path.is_dir():
            keep(path.rglob("*") if recursive else path.glob("*"), item, path)
        elif path.exists():
            found.append((item, None))
        elif any(c in item for c in "*?["):
            matches = glob.glob(item, recursive=recursive)
            if not matches:
                raise UsageError(f"{item}: no file matches this pattern")
            keep(matches, item, None)
        else:
            found.append((item, None))  # reported as a missing file, in order
    return found


def plan_jobs(
    inputs: list[str], output: str | None, *, recursive: bool, fmt: str | None, notes: list[str] | None = None
) -> list[Job]:
    """Map inputs to outputs; never onto an input, never two inputs onto one output. What was
    passed over (files of other types) is added to ``notes``."""
    found = _expand(inputs, recursive, [] if notes is None else notes)
    if not found:
        raise UsageError(
            f"no input images found in {', '.join(inputs)} (images: {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    ext = "." + (fmt or "png")
    many = len(found) > 1 or any(base is not None for _, base in found)
    if "-" in [f for f, _ in found] and len(found) > 1:
        raise UsageError("'-' (stdin) cannot be combined with other inputs")
    if output == "-" and many:
        raise UsageError("-o - (stdout) takes exactly one input")
    out_dir: Path | None = None
    out_file: str | None = None
    if output and output != "-":
        from nuggy.io import OUTPUT_FORMATS, format_for

        described = None
        if many:
            described = f"{len(found)} images" if len(found) > 1 else "a folder"
        if names_a_file(output, OUTPUT_FORMATS, inputs=described):
            out_file = output
            if fmt and format_for(output) != format_for("x" + ext):
                raise UsageError(
                    f"-o {output} and --format {fmt} disagree; drop --format (it names the "
                    "format of generated names) or change the suffix"
                )
        else:
            out_dir = Path(output)
    jobs: list[Job] = []
    candidates: list[tuple[str, str, str]] = []
    for src, base in found:
        if src == "-":
            jobs.append(Job("-", output if output else "-", "<stdin>"))
            continue
        sp = Path(src)
        if output == "-":
            dst = "-"
        elif out_file:
            dst = out_file
        elif out_dir is not None:
            rel = sp.relative_to(base) if base is not None else Path(sp.name)
            candidates.append(
                (src, str(out_dir / rel.with_suffix(ext)), str(out_dir / rel.with_name(rel.name + ext)))
            )
            dst = None
        else:
            candidates.append(
                (
                    src,
                    str(sp.with_name(sp.stem + OUTPUT_TAG + ext)),
                    str(sp.with_name(sp.name + OUTPUT_TAG + ext)),
                )
            )
            dst = None
        jobs.append(Job(src, dst, src))
    planned = iter(distinct_outputs(candidates))
    for job in jobs:
        if job.dst is None:
            job.dst = next(planned)
    return jobs


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _config_from_args(args):
    from nuggy.cli.settings import config_from_args

    fixed = {}
    if args.mask_only and getattr(args, "foreground", None) is None:
        fixed["foreground"] = False  # the mask does not need colours
    return config_from_args(args, **fixed)


def run(args) -> int:
    import logging

    from nuggy.errors import NuggyError

    log = logging.getLogger("nuggy")
    from nuggy.cli.engines import run_engine, wants_engine

    if wants_engine(args):  # --engine ray, --watch (nuggy.cli.engines)
        return run_engine(args)
    notes: list[str] = []
    try:
        if args.manifest:
            from nuggy.batch import check_manifest_path

            check_manifest_path(args.manifest)
        jobs = plan_jobs(args.inputs, args.output, recursive=args.recursive, fmt=args.format, notes=notes)
        config = _config_from_args(args)
        checked = _check_before_work(jobs, config, args)
    except (NuggyError, ValueError, FileNotFoundError) as exc:
        print(f"nuggy remove: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        for note in notes:
            print(f"nuggy: {note}", file=sys.stderr)
    return process(jobs, config, args, log, **checked)


def _check_before_work(jobs: list[Job], config, args) -> dict:
    """Everything that can be refused before a model is loaded or an image read: the pixel
    limit, model names and files, JPEG outputs without a background, the background, the user
    trimap, and the output folders. Returns the parsed background and trimap."""
    from nuggy.api import preflight
    from nuggy.cli.outputs import check_writable
    from nuggy.errors import OutputError
    from nuggy.io import format_for, pixel_limit
    from nuggy.pipeline.compose import parse_background

    pixel_limit(args.max_pixels)
    if args.trimap and len(jobs) != 1:
        raise UsageError("--trimap takes exactly one INPUT (the trimap belongs to one image)")
    from nuggy.cli.hint_options import hints_from_args

    hints = hints_from_args(args, len(jobs), jobs[0].src if jobs else None)
    preflight(config)
    flat = bool(args.bg) or args.mask_only
    for job in jobs:
        name = "x." + (args.format or "png") if job.dst == "-" else job.dst
        if not flat and format_for(name) == "JPEG":
            shown = "--format jpg" if job.dst == "-" else job.dst
            raise UsageError(
                f"{shown}: JPEG has no transparency: add --bg (e.g. --bg white) or --mask-only, "
                "or write .png / .webp"
            )
    background = parse_background(args.bg) if args.bg else None
    trimap = None
    if args.trimap:
        from nuggy.pipeline.trimap import load_trimap

        trimap = load_trimap(args.trimap)
    for folder in sorted({os.path.dirname(os.path.abspath(j.dst)) for j in jobs if j.dst != "-"}):
        check_writable(folder)
    for job in jobs:
        if job.dst != "-" and os.path.isdir(job.dst):
            raise OutputError(f"{job.dst}: is a folder; the output for {job.label} would go there")
    return {"background": background, "user_trimap": trimap, "hints": hints}


def process(jobs: list[Job], config, args, log, *, background=None, user_trimap=None, hints=None) -> int:
    import time
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from nuggy import batch
    from nuggy.cli.engines import batch_options
    from nuggy.io import ImageError, encode_image, load_image
    from nuggy.pipeline.pipeline import Pipeline
    from nuggy.sources import ModelSourceError

    options = batch_options(config, args, background)
    records: dict[int, batch.Record] = {}  # the manifest: one row per job
    seconds: dict[int, float] = {}

    def record(job: Job, status: str, error: str = "") -> None:
        records[id(job)] = batch.Record(
            job.label,
            job.dst or "",
            status,
            error,
            round(seconds.pop(id(job), 0.0), 4),
            options.model,
            options.preset,
            options.version,
        )

    inputs = {os.path.abspath(j.src) for j in jobs if j.src != "-"}
    todo: list[Job] = []
    failed: list[tuple[str, str]] = []
    skipped = 0
    for j in jobs:
        if j.dst not in (None, "-"):
            if os.path.abspath(j.dst) in inputs or (
                j.src != "-" and os.path.exists(j.dst) and _same_file(j.src, j.dst)
            ):
                failed.append(
                    (j.label, f"output {j.dst} is an input file; refusing to overwrite it (use -o)")
                )
                record(j, batch.FAILED, f"{j.label}: {failed[-1][1]}")
                continue
            if os.path.exists(j.dst) and not args.overwrite:
                skipped += 1
                record(j, batch.SKIPPED)
                if not args.quiet:
                    log.info("skip %s: %s exists (--overwrite to replace)", j.label, j.dst)
                continue
        todo.append(j)

    pipe = Pipeline(config, accept_license=args.accept_license)
    if todo and user_trimap is None:
        try:
            pipe.load()  # load once, so a missing model is one clear error, not one per file
        except (ModelSourceError, FileNotFoundError, ValueError, RuntimeError) as exc:
            print(f"nuggy remove: {exc}", file=sys.stderr)
            return 2

    def timed(job: Job, t0: float) -> None:
        seconds[id(job)] = seconds.get(id(job), 0.0) + time.perf_counter() - t0

    # The stages of nuggy.batch.cut_file (shared with the Ray engine and the hot folder), run
    # here in threads so decoding and encoding overlap inference.
    def read(job: Job):
        t0 = time.perf_counter()
        try:
            if job.src == "-":
                return load_image(sys.stdin.buffer.read(), name="<stdin>", max_pixels=args.max_pixels)
            return batch.read_input(job.src, max_pixels=args.max_pixels)
        finally:
            timed(job, t0)

    def write(job: Job, result) -> None:
        t0 = time.perf_counter()
        out = batch.render(result, options)
        if job.dst == "-":
            fmt = {"jpg": "JPEG", "tif": "TIFF"}.get(args.format or "png", (args.format or "png").upper())
            sys.stdout.buffer.write(encode_image(out, fmt))
            sys.stdout.buffer.flush()
        else:
            batch.write_output(job.dst, out)
        timed(job, t0)

    show = args.progress if args.progress is not None else (sys.stderr.isatty() and not args.quiet)
    written = 0
    bar = tqdm(
        total=len(todo), unit="img", disable=not show or len(todo) < 2, file=sys.stderr, dynamic_ncols=True
    )
    # Decode ahead and encode behind in threads (they release the GIL), so both cores work
    # while inference runs; at most two images are buffered on each side.
    with (
        ThreadPoolExecutor(1, thread_name_prefix="nuggy-read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="nuggy-write") as writer,
    ):
        reads = [reader.submit(read, j) for j in todo[:2]]
        writes: list = []

        def settle(block_until: int) -> None:
            nonlocal written
            while len(writes) > block_until:
                job, fut = writes.pop(0)
                try:
                    fut.result()
                    written += 1
                    record(job, batch.OK)
                except Exception as exc:  # noqa: BLE001 - OutputError names the path already
                    failed.append((job.label, batch.failure_text(job.label, exc, dst=job.dst, writing=True)))
                    record(job, batch.FAILED, failed[-1][1])
                bar.update(1)

        for i, job in enumerate(todo):
            fut = reads.pop(0)
            if i + 2 < len(todo):
                reads.append(reader.submit(read, todo[i + 2]))
            try:
                image = fut.result()
                trimap = None
                if user_trimap is not None:
                    from nuggy.pipeline.trimap import validate_trimap

                    trimap = validate_trimap(user_trimap, shape=image.shape[:2], name=args.trimap)
                t0 = time.perf_counter()
                if hints is None:
                    result = pipe.run(image, trimap=trimap)
                else:
                    hints.check(image.shape[:2], name=args.hint_image or "hints")
                    result = pipe.run(image, trimap=trimap, hints=hints)
                timed(job, t0)
            except (ImageError, ValueError, OSError, MemoryError) as exc:
                failed.append((job.label, batch.failure_text(job.label, exc)))
                record(job, batch.FAILED, failed[-1][1])
                bar.update(1)
                continue
            writes.append((job, writer.submit(write, job, result)))
            settle(2)
        settle(0)
    bar.close()
    if getattr(args, "manifest", None):
        batch.write_manifest(args.manifest, [records[id(j)] for j in jobs if id(j) in records])
    for label, msg in failed:
        text = msg if msg.startswith(label) else f"{label}: {msg}"
        print(f"error: {text}", file=sys.stderr)
    if not args.quiet and (len(jobs) > 1 or failed or skipped):
        print(
            f"nuggy: {written} written, {skipped} skipped, {len(failed)} failed",
            file=sys.stderr,
        )
    return 1 if failed else 0
