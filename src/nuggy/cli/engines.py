"""``nuggy remove`` on other engines: ``--engine ray`` (Ray Data) and ``--watch`` (hot folder).

Both use the same planning and checks as the local folder mode (``nuggy.cli.remove``) and the
same per-file work (``nuggy.batch``); ``--manifest`` works with every engine.
"""

from __future__ import annotations

import argparse
import os
import sys

from nuggy.errors import NuggyError, UsageError

__all__ = ["add_engine_arguments", "wants_engine", "run_engine", "batch_options"]

_RAY_OPTIONS = ("actors", "cpus_per_actor", "gpus_per_actor", "batch_size", "address")


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("batch engines")
    g.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local (this process, the default) or ray (Ray Data: a local Ray, or a "
        "cluster with --address; needs pip install 'nuggy[ray]')",
    )
    g.add_argument(
        "--manifest",
        metavar="PATH",
        help="write one row per input (input, output, status, error, seconds, model, "
        "preset, nuggy version) to PATH.parquet or PATH.csv",
    )
    g.add_argument(
        "--watch",
        action="store_true",
        help="hot folder (local engine): process INPUT's images, then each new file "
        "once completely written, until Ctrl-C",
    )
    g.add_argument(
        "--watch-interval",
        type=float,
        default=1.0,
        metavar="SEC",
        help="with --watch: how often to look, and how long a file's size must stay "
        "unchanged before it is read (default: %(default)s)",
    )
    g.add_argument(
        "--actors",
        type=int,
        default=None,
        metavar="N",
        help="ray: actors, each holding one model (default: CPUs / --cpus-per-actor)",
    )
    g.add_argument(
        "--cpus-per-actor",
        type=float,
        default=None,
        metavar="N",
        help="ray: CPUs per actor = its ONNX Runtime threads (default 1)",
    )
    g.add_argument(
        "--gpus-per-actor",
        type=float,
        default=None,
        metavar="N",
        help="ray: GPUs per actor; > 0 uses ONNX Runtime's CUDA provider",
    )
    g.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help="ray: files per map_batches call (default 1)",
    )
    g.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="ray: cluster to join (auto, HOST:PORT, ray://HOST:10001); default: start a local Ray",
    )


def wants_engine(args) -> bool:
    """Whether ``args`` need this module (not the plain local run)."""
    return (
        getattr(args, "engine", "local") != "local"
        or getattr(args, "watch", False)
        or any(getattr(args, n, None) is not None for n in _RAY_OPTIONS)
    )


def batch_options(config, args, background):
    """The :class:`nuggy.batch.OutputOptions` of a ``nuggy remove`` run."""
    from nuggy.batch import OutputOptions
    from nuggy.distributed import model_label

    return OutputOptions(
        mask_only=bool(args.mask_only),
        background=background,
        max_pixels=args.max_pixels,
        model=model_label(config),
        preset=args.preset,
    )


def _check_usage(args) -> None:
    if args.engine == "local":
        used = [n for n in _RAY_OPTIONS if getattr(args, n, None) is not None]
        if used:
            flags = ", ".join("--" + n.replace("_", "-") for n in used)
            raise UsageError(f"{flags}: only with --engine ray")
        return
    if args.watch:
        raise UsageError("--watch runs on the local engine; drop --engine ray")
    if "-" in args.inputs or args.output == "-":
        raise UsageError("--engine ray reads and writes files: '-' (stdin/stdout) is local only")
    if args.trimap:
        raise UsageError("--trimap belongs to one image: run it without --engine ray")
    if args.manifest:
        from nuggy.batch import manifest_format

        manifest_format(args.manifest)


def run_engine(args) -> int:
    """Run ``nuggy remove`` on the engine ``args`` ask for; exit status as the local mode."""
    try:
        _check_usage(args)
        if args.engine == "ray":
            from nuggy.distributed import require_ray

            require_ray()
            prepared = _prepare_ray(args)
        else:
            prepared = None
    except (NuggyError, ValueError, FileNotFoundError) as exc:
        print(f"nuggy remove: {exc}", file=sys.stderr)
        return 2
    if args.engine == "ray":
        return _run_ray(args, *prepared)
    from nuggy.hotfolder import run_watch

    return run_watch(args)


def _prepare_ray(args):
    """Plan and check everything before Ray starts: ``(tasks, src_fs, dst_fs, config, bg)``."""
    from nuggy.batch import check_manifest_path
    from nuggy.cli.remove import _check_before_work, _config_from_args, plan_jobs
    from nuggy.distributed.fs import is_uri
    from nuggy.distributed.plan import Task, plan_dataset

    config = _config_from_args(args)
    if any(is_uri(x) for x in args.inputs) or (args.output and is_uri(args.output)):
        if not args.output:
            raise UsageError("inputs in a filesystem URI need -o DEST (a folder or URI prefix)")
        from nuggy.api import preflight
        from nuggy.io import format_for, pixel_limit
        from nuggy.pipeline.compose import parse_background

        pixel_limit(args.max_pixels)
        preflight(config)
        if format_for("x." + (args.format or "png")) == "JPEG" and not (args.bg or args.mask_only):
            raise UsageError(
                "--format jpg: JPEG has no transparency: add --bg (e.g. --bg white) "
                "or --mask-only, or write png / webp"
            )
        background = parse_background(args.bg) if args.bg else None
        tasks, src_fs, dst_fs = plan_dataset(
            args.inputs, args.output, recursive=args.recursive, fmt=args.format or "png"
        )
    else:
        jobs = plan_jobs(args.inputs, args.output, recursive=args.recursive, fmt=args.format)
        background = _check_before_work(jobs, config, args)["background"]
        tasks = [Task(j.src, j.dst, j.label, j.dst) for j in jobs]
        src_fs = dst_fs = None
    if args.manifest:
        check_manifest_path(args.manifest)
    return tasks, src_fs, dst_fs, config, background


def _run_ray(args, tasks, src_fs, dst_fs, config, background) -> int:
    from nuggy.batch import FAILED, write_manifest
    from nuggy.distributed.engine import log_summary, run_tasks
    from nuggy.distributed.fs import split_uri
    from nuggy.sources import ModelSourceError

    options = batch_options(config, args, background)
    show = args.progress if args.progress is not None else (sys.stderr.isatty() and not args.quiet)
    try:
        records = run_tasks(
            tasks,
            config,
            options,
            src_fs=src_fs,
            dst_fs=dst_fs,
            actors=args.actors,
            cpus_per_actor=args.cpus_per_actor or 1,
            gpus_per_actor=args.gpus_per_actor or 0,
            batch_size=args.batch_size or 1,
            address=args.address,
            overwrite=args.overwrite,
            accept_license=args.accept_license,
            progress=show,
            verbose=os.environ.get("NUGGY_RAY_VERBOSE") == "1",
        )
    except (NuggyError, ModelSourceError, OSError, ValueError, RuntimeError) as exc:
        print(f"nuggy remove: {exc}", file=sys.stderr)
        return 2
    if args.manifest:
        mfs, mpath = split_uri(args.manifest)
        write_manifest(mpath, records, filesystem=mfs)
    log_summary(records, quiet=args.quiet)
    return 1 if any(r.status == FAILED for r in records) else 0
