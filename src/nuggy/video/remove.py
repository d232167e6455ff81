"""``nuggy.video.remove(src, dst, ...)``: cut the subject out of every frame of a clip.

decode (thread) ──► segment (image model, or RVM's recurrent state) ──► the pipeline's
remaining stages per frame (interior, refine, clean, [trimap → matte]) ──► temporal
stabilisation of the alpha (image models) ──► foreground ──► compose ──► encode (thread).
Queues between the threads hold a few frames, so memory does not grow with the clip's length.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError, UsageError

__all__ = ["remove", "VideoReport", "check_request", "DEFAULT_TEMPORAL"]

#: default ``temporal`` strength for image models (chosen on the tune clips, benchmarks/video.py)
DEFAULT_TEMPORAL = 0.8
_QUEUE = 4  # frames buffered between decode → work → encode
_END = object()


@dataclass
class VideoReport:
    """What :func:`remove` wrote: ``frames``, ``seconds`` of wall time, ``fps``, the output
    path, whether audio was carried over, and the scene cuts found (frame indices)."""

    output: Path
    frames: int
    seconds: float
    audio: bool
    cuts: list[int] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def check_request(
    src,
    dst,
    *,
    bg=None,
    mask_only: bool = False,
    overwrite: bool = False,
    temporal: float | None = None,
    start: float | None = None,
    duration: float | None = None,
) -> str:
    """Every check that needs neither the video's frames nor a model; returns the output kind.

    Raises:
        UsageError: bad numbers, an ``.mp4`` output for a transparent cut-out, the output is
            the input, or the output exists without ``overwrite`` (each message names the fix).
        VideoError: the input is missing (checked further by :func:`nuggy.video.io.probe`).
    """
    from .io import OPAQUE_SUFFIXES, VideoError, output_kind

    if not os.path.exists(src):
        raise VideoError(f"{src}: no such file")
    kind = output_kind(dst)
    if _same_path(src, dst):
        raise UsageError(f"{dst}: the output is the input video; choose another -o")
    if bg and mask_only:
        raise UsageError("--bg and --mask-only exclude each other (a matte has no background)")
    transparent = not bg and not mask_only
    if transparent and "." + kind in OPAQUE_SUFFIXES:
        raise UsageError(
            f"{dst}: MP4 (H.264) cannot carry an alpha channel; write .webm (VP9 with alpha, "
            "plays in browsers) or .mov (ProRes 4444, for editors) or a folder/ of PNG frames, "
            "or add --bg COLOUR|IMAGE|blur or --mask-only for an opaque .mp4"
        )
    if os.path.lexists(dst):
        if not overwrite:
            raise UsageError(f"{dst}: exists; use --overwrite to replace it")
        if kind == "frames" and not os.path.isdir(dst):
            raise UsageError(f"{dst}: is a file; PNG frames need a folder")
        if kind != "frames" and os.path.isdir(dst):
            raise UsageError(f"{dst}: is a folder; name a file (or end it with / for PNG frames)")
    if temporal is not None and not (isinstance(temporal, (int, float)) and 0 <= temporal < 1):
        raise UsageError(f"--temporal must be in 0..1 (1 excluded; 0 = off), got {temporal!r}")
    if start is not None and not (start >= 0 and np.isfinite(start)):
        raise UsageError(f"--start must be ≥ 0 seconds, got {start!r}")
    if duration is not None and not (duration > 0 and np.isfinite(duration)):
        raise UsageError(f"--duration must be > 0 seconds, got {duration!r}")
    return kind


def remove(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    preset: str = "default",
    model: str | None = None,
    bg: str | None = None,
    mask_only: bool = False,
    temporal: float | None = None,
    start: float | None = None,
    duration: float | None = None,
    overwrite: bool = False,
    accept_license: str | None = None,
    weights: str | os.PathLike | None = None,
    progress: bool | None = None,
    config=None,
    **overrides: Any,
) -> VideoReport:
    """Cut the subject out of the video ``src`` and write ``dst``.

    Args:
        src: input video (anything FFmpeg reads).
        dst: ``.webm`` / ``.mkv`` (VP9 + alpha), ``.mov`` (ProRes 4444 + alpha), ``.mp4``
            (H.264; needs ``bg`` or ``mask_only``), or a folder (RGBA PNG frames plus
            ``timestamps.tsv`` and, if the input has sound, ``audio.mka``).
        preset, model, weights, accept_license, **overrides: as :func:`nuggy.remove`;
            ``model="rvm"`` runs Robust Video Matting (recurrent; GPL-3.0, opt-in).
        bg: background (``white``, ``#00ff00``, an image file, ``blur``): opaque output.
        mask_only: write the matte as greyscale video.
        temporal: stabilisation strength in [0, 1) (0 = off) of each frame's final alpha
            (:mod:`nuggy.video.temporal`); ``None``: :data:`DEFAULT_TEMPORAL` for image models,
            0 for ``rvm`` (its recurrent state already carries time).
        start, duration: the section to process, in seconds.
        overwrite: replace ``dst`` if it exists.
        progress: progress bar (``None``: only on a terminal).
        config: a ready :class:`~nuggy.pipeline.config.PipelineConfig` (instead of preset,
            model, weights and overrides).

    Returns:
        :class:`VideoReport`.

    Raises:
        UsageError: bad options (before anything is read). VideoError: unreadable input, no
        video stream, no frames. TruncatedVideoError: the stream breaks off; the frames
        before the break *were* written to ``dst`` (the error names the time stamp).
        OutputError: the output cannot be written (nothing is left under its name).
    """
    from ..api import preflight
    from ..pipeline.compose import parse_background
    from .io import probe

    kind = check_request(
        src,
        dst,
        bg=bg,
        mask_only=mask_only,
        overwrite=overwrite,
        temporal=temporal,
        start=start,
        duration=duration,
    )
    if config is None:
        from ..pipeline.settings import build_config

        if mask_only and overrides.get("foreground") is None:
            overrides["foreground"] = False
        config = build_config(preset, model=model, weights=str(weights) if weights else None, **overrides)
    preflight(config)
    background = parse_background(bg) if bg else None
    info = probe(src)
    from ..pipeline.pipeline import Pipeline

    pipe = Pipeline(config, accept_license=accept_license)
    predictors = pipe.predictors  # a missing model fails here, before any output exists
    recurrent = len(predictors) == 1 and hasattr(predictors[0], "step")
    if temporal is None:
        temporal = 0.0 if recurrent else DEFAULT_TEMPORAL
    return _run(
        src,
        dst,
        kind,
        info,
        pipe,
        predictors,
        recurrent=recurrent,
        temporal=float(temporal),
        background=background,
        mask_only=mask_only,
        start=start or 0.0,
        duration=duration,
        overwrite=overwrite,
        progress=progress,
    )


def _run(
    src,
    dst,
    kind,
    info,
    pipe,
    predictors,
    *,
    recurrent,
    temporal,
    background,
    mask_only,
    start,
    duration,
    overwrite,
    progress,
) -> VideoReport:
    from tqdm import tqdm

    from ..pipeline.compose import compose
    from ..pipeline.foreground import estimate_foreground
    from ..pipeline.segment import predict_fused
    from .io import TruncatedVideoError, VideoWriter, _open, read_items
    from .temporal import TemporalParams, TemporalStabiliser, is_scene_cut

    cfg = pipe.config
    stab = TemporalStabiliser(TemporalParams(strength=temporal)) if temporal > 0 else None
    # stabilisation acts on each frame's final alpha: the foreground colour is estimated after
    # it, from the stabilised alpha; a mask needs none. Then the stages run without their own
    # estimate (a second Pipeline; it is only given probability maps, so it never loads a model)
    late_foreground = stab is not None and cfg.foreground and not mask_only
    stages = pipe
    if cfg.foreground and (mask_only or stab is not None):
        from ..pipeline.pipeline import Pipeline

        stages = Pipeline(cfg.replace(foreground=False), accept_license=pipe.accept_license, download=False)
    transparent = background is None and not mask_only
    size = info.upright_size

    # audio stream of the input (for the writer's stream template): opened separately
    audio_container = _open(src)
    audio_stream = audio_container.streams.audio[0] if audio_container.streams.audio else None
    writer = VideoWriter(
        dst, info, size, transparent=transparent, audio_stream=audio_stream, overwrite=overwrite
    )

    inq: queue.Queue = queue.Queue(_QUEUE)
    outq: queue.Queue = queue.Queue(_QUEUE)
    stop = threading.Event()
    errors: dict[str, BaseException] = {}
    shift = [None]  # seconds subtracted from timestamps (the first frame's time with --start)

    def put(q, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            for item in read_items(src, start=start, duration=duration):
                if not put(inq, item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors["read"] = exc
        finally:
            put(inq, _END)

    def encode() -> None:
        try:
            pending_audio = []
            while True:
                item = outq.get()
                if item is _END:
                    break
                what, payload = item
                if what == "audio":
                    if shift[0] is None:
                        pending_audio.append(payload)  # before the first frame is known
                        continue
                    writer.write_audio(payload, shift[0])
                    continue
                image, pts, t = payload
                writer.write(image, pts, t)
                for pk in pending_audio:
                    writer.write_audio(pk, shift[0])
                pending_audio.clear()
        except BaseException as exc:  # noqa: BLE001
            errors["write"] = exc
            stop.set()  # the worker's put() gives up; nothing waits on this thread

    show = progress if progress is not None else sys.stderr.isatty()
    total = info.estimated_frames()
    if duration is not None and info.rate:
        total = min(total or 1 << 30, int(round(duration * float(info.rate))))
    bar = tqdm(
        total=total or None,
        unit="frame",
        desc=Path(os.fspath(src)).name,
        disable=not show,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    reader = threading.Thread(target=decode, name="nuggy-video-read", daemon=True)
    encoder = threading.Thread(target=encode, name="nuggy-video-write", daemon=True)
    t0 = time.perf_counter()
    reader.start()
    encoder.start()
    frames = 0
    cuts: list[int] = []
    prev_grey = None
    failed: BaseException | None = None
    try:
        while True:
            try:
                item = inq.get(timeout=0.2)
            except queue.Empty:
                if stop.is_set() or (not reader.is_alive() and inq.empty()):
                    break  # the writer failed, or the reader ended without its marker
                continue
            if item is _END or stop.is_set():
                break
            what, payload = item
            if what == "audio":
                if not put(outq, item):
                    break
                continue
            frame = payload
            image = frame.image
            if shift[0] is None:
                shift[0] = frame.time if start > 0 else 0.0
                shift_pts = int(round(shift[0] / info.time_base)) if shift[0] else 0
            if recurrent:
                grey = _grey_small(image)
                if prev_grey is not None and is_scene_cut(prev_grey, grey, threshold=0.35):
                    predictors[0].reset()
                    cuts.append(frames)
                prev_grey = grey
                prob = predictors[0].step(image)
            else:
                prob = predict_fused(predictors, image, tta=cfg.tta, fusion=cfg.fusion)
            result = stages.run(image, probability=prob)
            alpha, foreground = result.alpha, result.foreground
            if stab is not None:
                alpha = stab.update(image, alpha)
                if stab.cut and frames:
                    cuts.append(frames)
                if late_foreground and foreground is None:
                    foreground = estimate_foreground(image, alpha)
            if mask_only:
                out = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
            else:
                out = compose(image, alpha, foreground=foreground, background=background)
            if not put(outq, ("video", (out, frame.pts - shift_pts, frame.time - shift[0]))):
                break
            frames += 1
            bar.update(1)
    except BaseException as exc:  # noqa: BLE001
        failed = exc
        stop.set()
    finally:
        if failed is None and not stop.is_set():
            put(outq, _END)
        else:
            stop.set()
            try:
                outq.put_nowait(_END)
            except queue.Full:
                pass
        # let the reader finish (it stops at `stop`), drain its queue
        while reader.is_alive():
            try:
                inq.get(timeout=0.2)
            except queue.Empty:
                pass
        encoder.join()
        bar.close()
        audio_container.close()
    read_error = errors.get("read")
    write_error = errors.get("write")
    if (
        failed is not None
        or write_error is not None
        or (read_error is not None and not isinstance(read_error, TruncatedVideoError))
    ):
        writer.abort()
        if failed is not None:
            raise failed
        if write_error is not None:
            if isinstance(write_error, OSError) and not isinstance(write_error, OutputError):
                raise OutputError(f"{dst}: cannot write ({write_error})") from write_error
            raise write_error
        raise read_error
    out = writer.close()
    report = VideoReport(out, frames, time.perf_counter() - t0, audio_stream is not None, cuts)
    if read_error is not None:  # truncated: the good frames are written, now say so
        raise read_error
    return report


def _grey_small(image: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (64, 36), interpolation=cv2.INTER_AREA)
