"""Ray Data engine: a path dataset → ``map_batches`` with one :class:`Pipeline` per actor.

Each actor loads the model once and runs :func:`nuggy.batch.cut_file` on every file of its
batches (decode with ``nuggy.io`` limits → pipeline → encode → atomic write), so outputs and
error texts are those of the local engine. Only paths travel through Ray's object store; each
actor reads its inputs and writes its outputs itself (a local path, or a ``pyarrow.fs``
filesystem), and returns one manifest row per file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import warnings
from typing import Any

from ..batch import FAILED, SKIPPED, OutputOptions, Record, cut_file, summary_line
from ..errors import UsageError
from .fs import exists_many
from .plan import Task

__all__ = ["CutOutActor", "run_tasks", "TEST_EXIT_ENV"]

log = logging.getLogger("nuggy")

#: Test hook: ``N`` or ``N:marker`` makes each actor ``os._exit`` after writing N files (only
#: while ``marker`` does not exist; the first actor to exit creates it). Never set it in use.
TEST_EXIT_ENV = "NUGGY_TEST_ACTOR_EXIT_AFTER"


class CutOutActor:
    """Ray Data callable class: one pipeline per actor, one manifest row per input row.

    Args:
        config: the :class:`PipelineConfig` (threads already set to the actor's CPUs).
        options: what to write (:class:`nuggy.batch.OutputOptions`).
        src_fs, dst_fs: ``pyarrow.fs`` filesystems of inputs and outputs (``None``: local).
        cpus: the actor's CPUs (OpenCV's thread pool is limited to them too).
    """

    def __init__(
        self,
        config,
        options: OutputOptions,
        src_fs=None,
        dst_fs=None,
        *,
        cpus: int = 1,
        accept_license: str | None = None,
        exit_after: str | None = None,
    ) -> None:
        self.options, self.src_fs, self.dst_fs = options, src_fs, dst_fs
        self.error: str | None = None
        self.exit_after, self.done = exit_after, 0
        try:
            import cv2

            cv2.setNumThreads(max(1, int(cpus)))
        except ImportError:  # pragma: no cover - a hard dependency
            pass
        from ..pipeline.pipeline import Pipeline

        self.pipe = Pipeline(config, accept_license=accept_license)
        try:
            self.pipe.load()  # the model loads once, here
        except Exception as exc:  # noqa: BLE001 - reported on every row, not a crash loop
            self.error = f"the model could not be loaded on this worker: {exc}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        rows: list[Record] = []
        for src, dst, label, dst_label in zip(batch["src"], batch["dst"], batch["label"], batch["dst_label"]):
            src, dst, label, dst_label = str(src), str(dst), str(label), str(dst_label)
            if self.error:
                rows.append(
                    Record(
                        label,
                        dst_label,
                        FAILED,
                        f"{label}: {self.error}",
                        model=self.options.model,
                        preset=self.options.preset,
                        nuggy_version=self.options.version,
                    )
                )
                continue
            rows.append(
                cut_file(
                    self.pipe,
                    src,
                    dst,
                    self.options,
                    src_fs=self.src_fs,
                    dst_fs=self.dst_fs,
                    label=label,
                    dst_label=dst_label,
                )
            )
            self.done += 1
            self._maybe_exit()
        out = {k: [getattr(r, k) for r in rows] for k in Record.__dataclass_fields__}
        out["i"] = [int(i) for i in batch["i"]]
        return out

    def _maybe_exit(self) -> None:
        if not self.exit_after:
            return
        n, _, marker = self.exit_after.partition(":")
        if self.done >= int(n) and not (marker and os.path.exists(marker)):
            if marker:
                open(marker, "w").close()
            os._exit(17)


def _start_ray(address: str | None, verbose: bool):
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(
            address=address,
            include_dashboard=False,
            ignore_reinit_error=True,
            logging_level=logging.INFO if verbose else logging.WARNING,
            log_to_driver=verbose,
        )
        started = True
    return ray, started


def run_tasks(
    tasks: list[Task],
    config,
    options: OutputOptions,
    *,
    src_fs=None,
    dst_fs=None,
    actors: int | None = None,
    cpus_per_actor: float = 1,
    gpus_per_actor: float = 0,
    batch_size: int = 1,
    address: str | None = None,
    overwrite: bool = False,
    accept_license: str | None = None,
    actor_restarts: int = 3,
    progress: bool = False,
    verbose: bool = False,
) -> list[Record]:
    """Run ``tasks`` on Ray Data; returns one :class:`Record` per task, in task order.

    Outputs that exist are skipped unless ``overwrite`` (so a rerun resumes); an output that is
    an input is refused. Files in flight when the job broke (actors dead past their
    restarts, the cluster gone) are recorded ``failed`` with a message saying to rerun.

    Raises:
        UsageError: bad resource settings (before Ray starts).
        ModelSourceError, FileNotFoundError, RuntimeError: with a local Ray, the model cannot
            be fetched or loaded (checked in this process before Ray starts).
    """
    if cpus_per_actor <= 0 or gpus_per_actor < 0 or batch_size < 1 or (actors is not None and actors < 1):
        raise UsageError(
            "--actors and --batch-size must be >= 1, --cpus-per-actor > 0 and --gpus-per-actor >= 0"
        )
    common = dict(model=options.model, preset=options.preset, nuggy_version=options.version)
    records: dict[int, Record] = {}

    def key(label: str) -> str:
        return os.path.abspath(label) if dst_fs is None and src_fs is None else label

    inputs = {key(t.label) for t in tasks}
    exists = exists_many(dst_fs, [t.dst for t in tasks])
    todo: list[tuple[int, Task]] = []
    for i, (t, there) in enumerate(zip(tasks, exists)):
        if key(t.dst_label) in inputs:
            records[i] = Record(
                t.label,
                t.dst_label,
                FAILED,
                f"{t.label}: output {t.dst_label} is an input file; refusing to overwrite it (use -o)",
                **common,
            )
        elif there and not overwrite:
            records[i] = Record(t.label, t.dst_label, SKIPPED, **common)
            log.debug("skip %s: %s exists (--overwrite to replace)", t.label, t.dst_label)
        else:
            todo.append((i, t))
    if todo and address is None:
        # A local Ray shares this machine's model cache: fetch and check the model once here,
        # so a missing model is one clear error (not one per actor, nor parallel downloads).
        from ..pipeline.pipeline import Pipeline

        Pipeline(dataclasses.replace(config, threads=1), accept_license=accept_license).load()
    if todo:
        _run_on_ray(
            todo,
            records,
            config,
            options,
            src_fs=src_fs,
            dst_fs=dst_fs,
            actors=actors,
            cpus_per_actor=cpus_per_actor,
            gpus_per_actor=gpus_per_actor,
            batch_size=batch_size,
            address=address,
            accept_license=accept_license,
            actor_restarts=actor_restarts,
            progress=progress,
            verbose=verbose,
        )
    return [records[i] for i in range(len(tasks))]


def _run_on_ray(
    todo,
    records,
    config,
    options,
    *,
    src_fs,
    dst_fs,
    actors,
    cpus_per_actor,
    gpus_per_actor,
    batch_size,
    address,
    accept_license,
    actor_restarts,
    progress,
    verbose,
) -> None:
    from tqdm import tqdm

    ray, started = _start_ray(address, verbose)
    try:
        import ray.data

        # Ray Data's own start/finish notices and its "progress bars disabled" warning: not
        # ours to show unless asked (NUGGY_RAY_VERBOSE=1 / verbose=True); errors still show.
        logging.getLogger("ray.data").setLevel(logging.INFO if verbose else logging.ERROR)

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # ours is per file, below
        ctx.print_on_execution_start = verbose
        resources = ray.cluster_resources()
        if actors is None:
            if gpus_per_actor:
                actors = int(resources.get("GPU", 0) // gpus_per_actor)
            else:
                actors = int(resources.get("CPU", 1) // cpus_per_actor)
            actors = max(1, actors)
        actors = min(actors, len(todo))
        threads = config.threads or max(1, int(cpus_per_actor))
        changes: dict[str, Any] = {"threads": threads}
        if gpus_per_actor and config.providers is None:
            changes["providers"] = ("CUDAExecutionProvider", "CPUExecutionProvider")
        cfg = dataclasses.replace(config, **changes)
        items = [
            {"i": i, "src": t.src, "dst": t.dst, "label": t.label, "dst_label": t.dst_label} for i, t in todo
        ]
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), actors * 4))
        with warnings.catch_warnings():
            # Ray 2.60 names max_restarts / max_task_retries only through **ray_remote_args
            # (deprecated there, with no named replacement yet); without them a file that kills
            # its actor every time would be retried for ever.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
            order = ds.map_batches(
                CutOutActor,
                fn_constructor_kwargs=dict(
                    config=cfg,
                    options=options,
                    src_fs=src_fs,
                    dst_fs=dst_fs,
                    cpus=threads,
                    accept_license=accept_license,
                    exit_after=os.environ.get(TEST_EXIT_ENV) or None,
                ),
                batch_size=batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=cpus_per_actor,
                num_gpus=gpus_per_actor or None,
                max_restarts=actor_restarts,
                max_task_retries=max(actor_restarts, 0),
            )
        bar = tqdm(total=len(todo), unit="img", disable=not progress, file=sys.stderr, dynamic_ncols=True)
        try:
            for row in order.iter_rows():
                rec = Record(**{k: row[k] for k in Record.__dataclass_fields__})
                records[int(row["i"])] = rec
                bar.update(1)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - record what is unknown
            if isinstance(exc, KeyboardInterrupt):
                why = "interrupted (Ctrl-C)"
            else:
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.error(
                "nuggy: the Ray job stopped (%s); rerun the same command to resume: "
                "finished outputs are skipped",
                why,
            )
            for i, t in todo:
                if i not in records:
                    records[i] = Record(
                        t.label,
                        t.dst_label,
                        FAILED,
                        f"{t.label}: not finished: the Ray job stopped ({why}); rerun to resume",
                        model=options.model,
                        preset=options.preset,
                        nuggy_version=options.version,
                    )
        finally:
            bar.close()
    finally:
        if started:
            ray.shutdown()


def log_summary(records: list[Record], *, quiet: bool = False) -> None:
    """Print each failure and the summary line to stderr (as the local engine does)."""
    for r in records:
        if r.status == FAILED:
            print(f"error: {r.error}", file=sys.stderr)
    if not quiet or any(r.status == FAILED for r in records):
        print(summary_line(records), file=sys.stderr)
