"""Hot folder: ``nuggy remove inbox/ -o cutouts/ --watch``.

Processes every image in the folder, then each new one once it is completely written, on the
local engine with the rules of a folder run: outputs planned by ``nuggy.cli.remove.plan_jobs``
(so names match ``nuggy remove inbox/ -o cutouts/``), existing outputs skipped unless
``--overwrite``, atomic writes, one manifest row per file (rewritten after each file).

A file counts as completely written when its size and modification time are the same at two
looks ``--watch-interval`` apart (or its last change is older than that). This works on every
filesystem, network shares included, where close-write events are not delivered. Empty files
wait ten intervals (a copy may not have started writing yet) and then fail as empty.

Ctrl-C (SIGINT) or SIGTERM stops after the file in progress; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["Readiness", "run_watch"]


class Readiness:
    """Tells which paths are completely written, from successive ``stat`` looks.

    Args:
        interval: seconds a file must stay unchanged (size and mtime).
        empty_wait: how many intervals an empty file must stay empty before it is ready.
    """

    def __init__(self, interval: float, *, empty_wait: int = 10) -> None:
        self.interval = interval
        self.empty_wait = empty_wait
        self._seen: dict[str, tuple[int, int, float]] = {}  # path -> (size, mtime_ns, since)

    def ready(self, path: str, now: float | None = None) -> bool:
        """Whether ``path`` has stopped changing (``False`` while it grows or is gone)."""
        now = time.time() if now is None else now
        try:
            st = os.stat(path)
        except OSError:
            self._seen.pop(path, None)
            return os.path.islink(path)  # a broken link is "ready": it fails with its message
        key = (st.st_size, st.st_mtime_ns)
        prev = self._seen.get(path)
        if prev is None or prev[:2] != key:
            self._seen[path] = (*key, now)
            since = now
        else:
            since = prev[2]
        unchanged_for = max(now - since, now - st.st_mtime)
        need = self.interval * (self.empty_wait if st.st_size == 0 else 1)
        return unchanged_for >= need

    def forget(self, path: str) -> None:
        self._seen.pop(path, None)


def run_watch(args) -> int:
    """The ``--watch`` loop; returns 1 if any file failed, else 0 (after Ctrl-C)."""
    import logging

    from nuggy import batch
    from nuggy.cli.engines import batch_options
    from nuggy.cli.remove import _check_before_work, _config_from_args, _same_file, plan_jobs
    from nuggy.errors import NuggyError, UsageError
    from nuggy.pipeline.pipeline import Pipeline
    from nuggy.sources import ModelSourceError

    log = logging.getLogger("nuggy")
    try:
        if len(args.inputs) != 1 or not os.path.isdir(args.inputs[0]):
            raise UsageError("--watch takes one INPUT: the folder to watch")
        if args.output == "-" or args.trimap:
            raise UsageError("--watch writes one file per input: drop -o - / --trimap")
        if not args.watch_interval > 0:
            raise UsageError(f"--watch-interval must be > 0 seconds, got {args.watch_interval}")
        if args.manifest:
            batch.check_manifest_path(args.manifest)
        config = _config_from_args(args)
        inbox = args.inputs[0]
        folder_out = args.output
        if folder_out and not folder_out.endswith(("/", os.sep)):
            folder_out += os.sep  # always a folder: more files will come
        first = _plan(plan_jobs, inbox, folder_out, args)
        background = _check_before_work(first, config, args)["background"]
        pipe = Pipeline(config, accept_license=args.accept_license)
        pipe.load()  # load once: a missing model is one clear error
    except (NuggyError, ValueError, FileNotFoundError, ModelSourceError, RuntimeError) as exc:
        print(f"nuggy remove: {exc}", file=sys.stderr)
        return 2

    options = batch_options(config, args, background)
    stop = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("nuggy: stopping after the file in progress (Ctrl-C again to stop now)", file=sys.stderr)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    records: list[batch.Record] = []
    handled: dict[str, str] = {}  # input -> its output, fixed the first time it is seen
    readiness = Readiness(args.watch_interval)
    problems: set[str] = set()
    if not args.quiet:
        print(f"nuggy: watching {inbox} (Ctrl-C to stop)", file=sys.stderr)
    try:
        jobs = first
        while not stop.is_set():
            inputs = {os.path.abspath(j.src) for j in jobs}
            for job in jobs:
                if stop.is_set():
                    break
                if job.src in handled or not readiness.ready(job.src):
                    continue
                handled[job.src] = job.dst
                readiness.forget(job.src)
                rec = _one(pipe, job, options, args, inputs, _same_file, log)
                records.append(rec)
                if rec.status == batch.FAILED:
                    print(f"error: {rec.error}", file=sys.stderr)
                elif rec.status == batch.OK and not args.quiet:
                    print(f"{job.label} -> {job.dst} ({rec.seconds:.1f} s)", file=sys.stderr)
                if args.manifest:
                    batch.write_manifest(args.manifest, records)
            stop.wait(min(args.watch_interval, 1.0) / 2)
            if stop.is_set():
                break
            try:
                jobs = _plan(plan_jobs, inbox, folder_out, args)
            except UsageError as exc:  # two new files would share an output: say it once
                if str(exc) not in problems:
                    problems.add(str(exc))
                    print(f"error: {exc}", file=sys.stderr)
                jobs = []
            jobs = [j for j in jobs if j.src not in handled]
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if args.manifest:
            batch.write_manifest(args.manifest, records)
    print(batch.summary_line(records), file=sys.stderr)
    return 1 if any(r.status == batch.FAILED for r in records) else 0


def _plan(plan_jobs, inbox: str, output: str | None, args) -> list:
    """The folder's jobs now ([] while it holds no image)."""
    from nuggy.errors import UsageError

    try:
        return plan_jobs([inbox], output, recursive=args.recursive, fmt=args.format)
    except UsageError as exc:
        if str(exc).startswith("no input images found"):
            return []
        raise


def _one(pipe, job, options, args, inputs: set[str], same_file, log):
    """One hot-folder file, with the folder mode's refusal and skip rules."""
    from nuggy import batch

    rec = batch.Record(
        job.label,
        job.dst,
        batch.SKIPPED,
        model=options.model,
        preset=options.preset,
        nuggy_version=options.version,
    )
    if os.path.abspath(job.dst) in inputs or (os.path.exists(job.dst) and same_file(job.src, job.dst)):
        rec.status = batch.FAILED
        rec.error = f"{job.label}: output {job.dst} is an input file; refusing to overwrite it (use -o)"
        return rec
    if os.path.exists(job.dst) and not args.overwrite:
        if not args.quiet:
            log.info("skip %s: %s exists (--overwrite to replace)", job.label, job.dst)
        return rec
    return batch.cut_file(pipe, job.src, job.dst, options, label=job.label)
