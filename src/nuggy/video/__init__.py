"""Video in, video with alpha out: ``nuggy.video.remove(src, dst, ...)``.

``io`` (PyAV decode/encode), ``temporal`` (motion-compensated stabilisation of probability
maps), ``remove`` (the bounded decode → segment → encode pipeline). PyAV is imported only when
a video is read or written.
"""

from __future__ import annotations

from .remove import DEFAULT_TEMPORAL, VideoReport, remove

__all__ = ["remove", "VideoReport", "DEFAULT_TEMPORAL"]
