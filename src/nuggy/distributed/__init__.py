"""Batch removal on Ray Data: ``remove_dataset(src, dst, ...) -> manifest table``.

Needs ``pip install 'nuggy[ray]'``; ``import nuggy.distributed`` itself imports nothing heavy
(Ray is imported when a job starts).

Example::

    from nuggy.distributed import remove_dataset
    from nuggy.pipeline.config import preset
    table = remove_dataset("s3://bucket/raw/", "s3://bucket/cut/", config=preset("fast"),
                           address="auto", actors=16, manifest="s3://bucket/run.parquet")
    table.filter(pc.equal(table["status"], "failed"))
"""

from __future__ import annotations

from typing import Any

__all__ = ["remove_dataset"]


def remove_dataset(
    src: str | list[str],
    dst: str,
    *,
    config=None,
    preset: str = "default",
    actors: int | None = None,
    cpus_per_actor: float = 1,
    gpus_per_actor: float = 0,
    batch_size: int = 1,
    address: str | None = None,
    overwrite: bool = False,
    recursive: bool = True,
    fmt: str = "png",
    mask_only: bool = False,
    bg: str | None = None,
    max_pixels: int | None = None,
    manifest: str | None = None,
    accept_license: str | None = None,
    actor_restarts: int = 3,
    progress: bool = False,
) -> Any:
    """Cut out every image under ``src`` into ``dst`` on a Ray cluster (or a local Ray).

    Args:
        src: a folder, a URI prefix (``s3://bucket/raw/``) or a list of files / URIs.
        dst: the output folder or URI prefix; each output is ``<dst>/<relative path>.<fmt>``.
        config: a :class:`~nuggy.pipeline.config.PipelineConfig`; ``None``: ``preset(preset)``.
        preset: the preset's name (also written to the manifest).
        actors: number of actors (each holds one pipeline); ``None``: as many as the
            cluster's CPUs (GPUs with ``gpus_per_actor``) allow.
        cpus_per_actor: CPUs reserved per actor; ONNX Runtime and OpenCV use that many threads.
        gpus_per_actor: GPUs per actor; > 0 selects ONNX Runtime's CUDA provider.
        batch_size: files per ``map_batches`` call.
        address: Ray address (``auto``, ``ray://head:10001``); ``None``: a running Ray of this
            process, else a new local one (shut down at the end).
        overwrite: replace outputs that exist (default: skip them, so a rerun resumes).
        fmt: output format (``png``, ``webp``, ``tif``; ``jpg`` needs ``bg`` or ``mask_only``).
        mask_only, bg, max_pixels: as ``nuggy remove --mask-only / --bg / --max-pixels``.
        manifest: also write the manifest here (``.parquet`` or ``.csv``; a path or URI).
        actor_restarts: how often a dead actor is restarted (its batch retried) before the job
            stops; files then unfinished are recorded ``failed`` ("rerun to resume").

    Returns:
        ``pyarrow.Table`` with one row per input: ``input, output, status`` (ok / skipped /
        failed), ``error, seconds, model, preset, nuggy_version``.

    Raises:
        UsageError: bad options, no images found, two inputs sharing an output, or Ray not
            installed; nothing has run then.
    """
    from ..api import preflight
    from ..batch import OutputOptions, check_manifest_path, write_manifest
    from ..errors import UsageError
    from ..io import format_for, pixel_limit
    from ..pipeline.compose import parse_background
    from ..pipeline.config import preset as make_preset
    from .engine import run_tasks
    from .fs import split_uri
    from .plan import plan_dataset

    cfg = config if config is not None else make_preset(preset)
    preflight(cfg)
    pixel_limit(max_pixels)
    if format_for("x." + fmt) == "JPEG" and not (bg or mask_only):
        raise UsageError(
            "fmt='jpg': JPEG has no transparency: add bg= (e.g. 'white') or "
            "mask_only=True, or write png / webp"
        )
    background = parse_background(bg) if bg else None
    if manifest:
        check_manifest_path(manifest)
    require_ray()
    tasks, src_fs, dst_fs = plan_dataset(src, dst, recursive=recursive, fmt=fmt)
    options = OutputOptions(
        mask_only=mask_only,
        background=background,
        max_pixels=max_pixels,
        model=model_label(cfg),
        preset=preset,
    )
    records = run_tasks(
        tasks,
        cfg,
        options,
        src_fs=src_fs,
        dst_fs=dst_fs,
        actors=actors,
        cpus_per_actor=cpus_per_actor,
        gpus_per_actor=gpus_per_actor,
        batch_size=batch_size,
        address=address,
        overwrite=overwrite,
        accept_license=accept_license,
        actor_restarts=actor_restarts,
        progress=progress,
    )
    if manifest:
        mfs, mpath = split_uri(manifest)
        return write_manifest(mpath, records, filesystem=mfs)
    from ..batch import records_table

    return records_table(records)


def require_ray() -> None:
    """Raise a :class:`UsageError` naming the install command when Ray Data is missing."""
    import importlib.util

    from ..errors import UsageError

    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.data") is None:
        raise UsageError("--engine ray needs Ray Data: pip install 'nuggy[ray]'")


def model_label(config) -> str:
    """The model as the manifest names it: registry name(s), or the weights file."""
    if config.segmenter != "salient":
        return f"{config.segmenter}:{config.segmenter_class}"
    return config.model or str(config.weights or "")
