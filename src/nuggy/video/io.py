"""Video decoding and encoding with PyAV (its wheels carry FFmpeg).

Reading: :func:`probe` describes a file, :func:`read_items` yields its decoded video frames
(RGB uint8, upright) interleaved with its audio packets, in file order.

Writing: :func:`output_kind` maps an output path to a container (``.webm`` / ``.mkv`` VP9 with
alpha, ``.mov`` ProRes 4444 with alpha, ``.mp4`` / ``.m4v`` opaque H.264, a folder = RGBA PNG
sequence); :class:`VideoWriter` writes to a temporary name beside the output and renames it on
:meth:`VideoWriter.close`, so a failed run never leaves a half-written file under the name.

Alpha in WebM: FFmpeg's native ``vp9`` decoder ignores the alpha layer (stored as Matroska
BlockAdditional side data); the ``libvpx-vp9`` decoder reads it and returns ``yuva420p``
frames (:func:`open_alpha_decoder`). Browsers (Chrome, Firefox, Edge) play it with alpha.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import ImageError, OutputError, UsageError

__all__ = [
    "VideoError",
    "TruncatedVideoError",
    "VideoInfo",
    "VideoFrame",
    "probe",
    "read_items",
    "output_kind",
    "VideoWriter",
    "open_alpha_decoder",
    "ALPHA_SUFFIXES",
    "OPAQUE_SUFFIXES",
]

#: containers that carry alpha: suffix -> (codec, pixel format with alpha, without alpha)
ALPHA_SUFFIXES = {
    ".webm": ("libvpx-vp9", "yuva420p", "yuv420p"),
    ".mkv": ("libvpx-vp9", "yuva420p", "yuv420p"),
    ".mov": ("prores_ks", "yuva444p10le", "yuv444p10le"),
}
#: opaque containers: H.264
OPAQUE_SUFFIXES = {".mp4": ("libx264", None, "yuv420p"), ".m4v": ("libx264", None, "yuv420p")}

_CODEC_OPTIONS = {
    # constant quality, no bitrate cap; speed 4 with row threading: ~real time at 720p on 2 cores
    "libvpx-vp9": {"crf": "28", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"},
    # profile 4 = 4444 (with alpha when the pixel format has it), Apple's vendor tag
    "prores_ks": {"profile": "4", "vendor": "apl0"},
    "libx264": {"crf": "18", "preset": "veryfast"},
}

#: audio codecs each container takes as they are; others are re-encoded (opus / aac)
_AUDIO_COPY = {
    ".webm": {"opus", "vorbis"},
    ".mp4": {"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac"},
    ".m4v": {"aac", "mp3", "ac3", "alac"},
    ".mov": {"aac", "mp3", "ac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le", "pcm_s16be"},
    ".mkv": None,  # anything
    ".mka": None,
}


class VideoError(ImageError):
    """An input video cannot be read or used; the message names the file."""


class TruncatedVideoError(VideoError):
    """The video stream breaks off; the frames before the break were written.

    Attributes:
        timestamp: seconds of the last good frame (``None`` when no frame was decoded).
        frames: frames written.
    """

    def __init__(self, message: str, *, timestamp: float | None, frames: int) -> None:
        super().__init__(message)
        self.timestamp = timestamp
        self.frames = frames


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found.

    ``rate``: average frame rate (frames per second, a Fraction); ``time_base``: the video
    stream's time base; ``frames``: the frame count the container declares (0 = unknown);
    ``duration``: seconds (0 = unknown); ``rotation``: degrees of the display matrix
    (counter-clockwise, as FFmpeg reports it); ``width`` × ``height``: as stored.
    """

    path: str
    width: int
    height: int
    rate: Fraction
    time_base: Fraction
    frames: int
    duration: float
    rotation: int
    codec: str
    audio_codec: str | None

    @property
    def upright_size(self) -> tuple[int, int]:
        """(height, width) of the frames as shown (after rotation)."""
        if self.rotation % 180:
            return self.width, self.height
        return self.height, self.width

    def estimated_frames(self) -> int:
        """The declared frame count, else duration × rate (0 when neither is known)."""
        if self.frames:
            return self.frames
        return int(round(self.duration * float(self.rate))) if self.rate else 0


@dataclass
class VideoFrame:
    """One decoded frame: ``image`` RGB uint8 H×W×3 (upright), ``pts`` in ``time_base`` units,
    ``time`` in seconds."""

    image: np.ndarray
    pts: int
    time: float


def _av():
    try:
        import av
    except ImportError:
        raise UsageError("video needs PyAV: pip install 'nuggy[video]'") from None
    return av


def _open(path: str | os.PathLike):
    av = _av()
    p = Path(path)
    if not p.exists():
        raise VideoError(f"{p}: no such file")
    if p.is_dir():
        raise VideoError(f"{p}: is a folder, not a video file")
    try:
        return av.open(str(p), "r")
    except av.error.EOFError:
        raise VideoError(f"{p}: the file ends before its first frame (no frames, or empty)") from None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError(f"{p}: not a video file FFmpeg can read ({exc})") from None


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe the video of ``path``.

    Raises:
        VideoError: no such file, not a video container, or no video stream.
    """
    with _open(path) as container:
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
            raise VideoError(f"{path}: has no video stream (streams: {kinds})")
        st = container.streams.video[0]
        cc = st.codec_context
        rate = st.average_rate or st.guessed_rate or st.base_rate or Fraction(25)
        duration = 0.0
        if st.duration is not None and st.time_base:
            duration = float(st.duration * st.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        width, height, codec = cc.width, cc.height, cc.name
        return VideoInfo(
            path=str(path),
            width=width,
            height=height,
            rate=Fraction(rate),
            time_base=Fraction(st.time_base or Fraction(1, 1000)),
            frames=int(st.frames or 0),
            duration=duration,
            rotation=_first_frame_rotation(container, st),
            codec=codec,
            audio_codec=audio,
        )


def _first_frame_rotation(container, stream) -> int:
    """Display rotation (degrees counter-clockwise) of the first decodable frame; 0 if none."""
    av = _av()
    try:
        for frame in container.decode(stream):
            return int(round(getattr(frame, "rotation", 0) or 0)) % 360
    except av.error.FFmpegError:
        pass
    return 0


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise) to an H×W×C frame."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def read_items(
    path: str | os.PathLike,
    *,
    start: float = 0.0,
    duration: float | None = None,
) -> Iterator[tuple[str, object]]:
    """Decode ``path``: yields ``("video", VideoFrame)`` and ``("audio", packet)`` in file order.

    ``start`` / ``duration`` (seconds) select a section: frames from ``start`` up to
    ``start + duration``; the audio packets that overlap it. Timestamps are as in the file.

    Raises:
        VideoError: unreadable, no video stream, or no frame in the section.
        TruncatedVideoError: decoding failed part way (after the good frames were yielded),
            or the stream ends well before the duration its container declares.
    """
    av = _av()
    info = probe(path)
    end = None if duration is None else start + duration
    container = _open(path)
    try:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        streams = [vs] + ([container.streams.audio[0]] if container.streams.audio else [])
        if start > 0:
            container.seek(int(start / vs.time_base), stream=vs, backward=True, any_frame=False)
        tb = vs.time_base
        last_time: float | None = None
        count = 0
        rotation = info.rotation

        def frames_of(packet):
            for fr in vs.decode(packet):
                if fr.pts is None:
                    continue
                t = float(fr.pts * tb)
                if t < start - 1e-6 or (end is not None and t >= end - 1e-6):
                    continue
                rot = int(round(fr.rotation)) if getattr(fr, "rotation", 0) else rotation
                img = _upright(fr.to_ndarray(format="rgb24"), rot)
                yield VideoFrame(img, int(fr.pts), t)

        try:
            for packet in container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.pts is None or packet.size == 0:
                        continue
                    t = float(packet.pts * packet.stream.time_base)
                    pd = float((packet.duration or 0) * packet.stream.time_base)
                    if t + pd < start - 1e-6 or (end is not None and t >= end):
                        continue
                    yield "audio", packet
                    continue
                if end is not None and packet.pts is not None and float(packet.pts * tb) >= end + 2:
                    break  # well past the section (2 s allows for reordering)
                for frame in frames_of(packet):
                    count += 1
                    last_time = frame.time
                    yield "video", frame
        except av.error.FFmpegError as exc:
            where = f"after {last_time:.3f} s" if last_time is not None else "before the first frame"
            if count == 0:
                raise VideoError(f"{path}: the video stream cannot be decoded ({exc})") from None
            raise TruncatedVideoError(
                f"{path}: the video stream breaks off {where} (frame {count}): {exc}; the "
                f"{count} frames before it were written",
                timestamp=last_time,
                frames=count,
            ) from None
        if count == 0:
            what = "in the selected section" if (start or duration) else "at all"
            raise VideoError(f"{path}: the video stream has no frames {what}")
        declared = info.duration if end is None else min(info.duration, end)
        step = 1.0 / float(info.rate) if info.rate else 0.04
        if info.duration and last_time is not None and last_time + 3 * step < declared - step:
            raise TruncatedVideoError(
                f"{path}: the video stream ends at {last_time:.3f} s but the file declares "
                f"{info.duration:.3f} s (truncated file?); the {count} frames up to "
                f"{last_time:.3f} s were written",
                timestamp=last_time,
                frames=count,
            )
    finally:
        container.close()


def output_kind(dst: str | os.PathLike) -> str:
    """``webm``, ``mkv``, ``mov``, ``mp4``, ``m4v`` or ``frames`` (a folder: PNG sequence).

    A path ending in ``/``, an existing folder or a path without suffix is a folder.

    Raises:
        UsageError: an unknown suffix (the message lists the known ones).
    """
    s = os.fspath(dst)
    p = Path(s)
    if s.endswith(("/", os.sep)) or p.is_dir() or not p.suffix:
        return "frames"
    suffix = p.suffix.lower()
    if suffix in ALPHA_SUFFIXES or suffix in OPAQUE_SUFFIXES:
        return suffix[1:]
    known = ", ".join(sorted([*ALPHA_SUFFIXES, *OPAQUE_SUFFIXES]))
    raise UsageError(
        f"{s}: unknown video format {suffix!r}; use {known}, or a folder (ending in /) for PNG frames"
    )


def _temp_beside(dst: Path, *, folder: bool = False) -> Path:
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.part{'' if folder else dst.suffix}")
    return tmp


class VideoWriter:
    """Write frames (and copied audio) to ``dst``, atomically.

    Args:
        dst: output path (kind from :func:`output_kind`).
        info: the input's :class:`VideoInfo` (rate, time base, rotation).
        size: (height, width) of the upright frames to be written.
        transparent: frames are RGBA (alpha kept); otherwise RGB or greyscale.
        audio_stream: the input's audio stream to carry over, or ``None``.
        overwrite: replace an existing output (on :meth:`close` only).
    """

    def __init__(
        self,
        dst,
        info: VideoInfo,
        size: tuple[int, int],
        *,
        transparent: bool,
        audio_stream=None,
        overwrite: bool = False,
    ) -> None:
        self.dst = Path(os.fspath(dst))
        self.kind = output_kind(dst)
        self.info = info
        self.size = size
        self.transparent = transparent
        self.overwrite = overwrite
        self.frames = 0
        self._audio_out = None
        self._audio_tx = None
        self._audio_dts: int | None = None
        self._times: list[str] = []
        try:
            self.dst.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.dst}: cannot create its folder ({exc.strerror or exc})") from exc
        if self.kind == "frames":
            self.tmp = _temp_beside(self.dst, folder=True)
            self.tmp.mkdir()
            self.container = None
            self.audio_container = None
            if audio_stream is not None:
                self.audio_container = _av().open(str(self.tmp / "audio.mka"), "w")
                self._add_audio(self.audio_container, ".mka", audio_stream)
            return
        self.tmp = _temp_beside(self.dst)
        av = _av()
        suffix = self.dst.suffix.lower()
        codec, alpha_fmt, opaque_fmt = {**ALPHA_SUFFIXES, **OPAQUE_SUFFIXES}[suffix]
        try:
            self.container = av.open(str(self.tmp), "w", format={"m4v": "mp4"}.get(self.kind, self.kind))
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self.dst}: cannot write ({exc})") from exc
        h, w = size
        rot = info.rotation % 360
        self._rot_back = (-rot) % 360
        if rot % 180:  # stored (not shown) size
            h, w = w, h
        if codec in ("libx264", "libvpx-vp9") and (h % 2 or w % 2):
            raise OutputError(
                f"{self.dst}: {codec} needs an even width and height, the frames are {w}×{h}; "
                "write .mov or a PNG folder instead"
            )
        st = self.container.add_stream(codec, rate=info.rate, options=dict(_CODEC_OPTIONS[codec]))
        st.width, st.height = w, h
        st.pix_fmt = alpha_fmt if transparent else opaque_fmt
        st.time_base = info.time_base
        st.codec_context.time_base = info.time_base
        st.thread_type = "AUTO"
        if rot:
            try:
                st.set_display_rotation(rot)
            except Exception:  # noqa: BLE001 - metadata only; the frames stay correct
                pass
        self.stream = st
        if audio_stream is not None:
            self._add_audio(self.container, suffix, audio_stream)

    def _add_audio(self, container, suffix: str, audio_stream) -> None:
        allowed = _AUDIO_COPY.get(suffix)
        name = audio_stream.codec_context.name
        if allowed is None or name in allowed:
            self._audio_out = container.add_stream_from_template(audio_stream)
            self._audio_in_tb = audio_stream.time_base
            return
        # re-encode: WebM takes Opus, the others AAC
        av = _av()
        codec = "libopus" if suffix == ".webm" else "aac"
        rate = audio_stream.codec_context.sample_rate or 48000
        if codec == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
            rate = 48000
        out = container.add_stream(codec, rate=rate)
        layout = audio_stream.codec_context.layout.name if audio_stream.codec_context.layout else "stereo"
        out.layout = layout
        self._audio_out = out
        self._audio_in_tb = audio_stream.time_base
        self._audio_tx = (
            av.codec.CodecContext.create(audio_stream.codec_context.name, "r"),
            av.AudioResampler(format=out.format.name, layout=layout, rate=rate),
        )
        dec = self._audio_tx[0]
        if audio_stream.codec_context.extradata:
            dec.extradata = audio_stream.codec_context.extradata
        dec.sample_rate = audio_stream.codec_context.sample_rate
        dec.layout = layout

    def write(self, image: np.ndarray, pts: int, time: float) -> None:
        """Write one upright frame: RGBA uint8 H×W×4, RGB H×W×3 or greyscale H×W; ``pts`` in
        the input's time base."""
        if image.shape[:2] != tuple(self.size):
            raise ValueError(f"frame is {image.shape[:2]}, the writer was opened for {self.size}")
        if self.kind == "frames":
            from ..io import encode_image

            name = f"{self.frames:06d}.png"
            (self.tmp / name).write_bytes(encode_image(image, "PNG"))
            self._times.append(f"{name}\t{pts}\t{time:.6f}")
            self.frames += 1
            return
        av = _av()
        if self._rot_back:
            image = _upright(image, self._rot_back)
        fmt = {4: "rgba", 3: "rgb24"}.get(image.shape[2] if image.ndim == 3 else 0, "gray")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
        frame.pts = pts
        frame.time_base = self.info.time_base
        try:
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self.dst}: encoding frame {self.frames} failed ({exc})") from exc
        self.frames += 1

    def write_audio(self, packet, shift: float = 0.0) -> None:
        """Carry one audio packet over (timestamps moved back by ``shift`` seconds)."""
        if self._audio_out is None:
            return
        av = _av()
        container = self.audio_container if self.kind == "frames" else self.container
        off = int(round(shift / self._audio_in_tb)) if shift else 0
        if self._audio_tx is None:
            if packet.pts is not None:
                packet.pts -= off
            if packet.dts is not None:
                packet.dts -= off
            if packet.pts is not None and packet.pts < 0:
                return
            if packet.dts is not None:
                if self._audio_dts is not None and packet.dts <= self._audio_dts:
                    return  # out of order after a seek
                self._audio_dts = packet.dts
            packet.stream = self._audio_out
            try:
                container.mux(packet)
            except av.error.FFmpegError as exc:
                raise OutputError(f"{self.dst}: cannot write the audio ({exc})") from exc
            return
        dec, resampler = self._audio_tx
        for frame in dec.decode(packet):
            if frame.pts is not None:
                frame.pts -= off
                if frame.pts < 0:
                    continue
            for rf in resampler.resample(frame):
                rf.pts = None
                try:
                    for p in self._audio_out.encode(rf):
                        container.mux(p)
                except av.error.FFmpegError as exc:
                    raise OutputError(f"{self.dst}: cannot write the audio ({exc})") from exc

    def _flush(self) -> None:
        av = _av()
        if self.kind != "frames":
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        if self._audio_tx is not None:
            container = self.audio_container if self.kind == "frames" else self.container
            try:
                for p in self._audio_out.encode(None):
                    container.mux(p)
            except av.error.FFmpegError:
                pass

    def close(self) -> Path:
        """Finish the file and move it to ``dst`` (replacing it only with ``overwrite``)."""
        try:
            self._flush()
            if self.container is not None:
                self.container.close()
            if getattr(self, "audio_container", None) is not None:
                self.audio_container.close()
            if self.kind == "frames":
                (self.tmp / "timestamps.tsv").write_text(
                    "file\tpts\tseconds\n" + "\n".join(self._times) + "\n", encoding="utf-8"
                )
        except BaseException:
            self.abort()
            raise
        return self._install()

    def _install(self) -> Path:
        dst = self.dst
        if os.path.lexists(dst) and not self.overwrite:
            self.abort()
            raise OutputError(f"{dst}: exists (appeared while writing); use --overwrite")
        try:
            if self.kind == "frames":
                old = None
                if dst.exists():
                    old = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.old")
                    os.replace(dst, old)
                os.replace(self.tmp, dst)
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(self.tmp, dst)
        except OSError as exc:
            self.abort()
            raise OutputError(f"{dst}: cannot write ({exc.strerror or exc})") from exc
        return dst

    def abort(self) -> None:
        """Drop the temporary output."""
        for c in (self.container, getattr(self, "audio_container", None)):
            if c is not None:
                try:
                    c.close()
                except Exception:  # noqa: BLE001
                    pass
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            try:
                self.tmp.unlink()
            except FileNotFoundError:
                pass


def open_alpha_decoder():
    """A ``libvpx-vp9`` decoder context: feed it the packets of a VP9 WebM/Matroska stream to
    get ``yuva420p`` frames with the alpha layer (FFmpeg's native ``vp9`` decoder drops it)."""
    return _av().codec.CodecContext.create("libvpx-vp9", "r")
