"""Robust Video Matting (Lin et al., WACV 2022) through ONNX Runtime.

The exported graph (upstream ``rvm_mobilenetv3_fp32.onnx``) takes ``src`` (1×3×H×W RGB in
[0, 1]), four recurrent states ``r1i``..``r4i`` (1×1×1×1 zeros on the first frame) and
``downsample_ratio`` (shape [1]); it returns ``fgr`` (1×3×H×W), ``pha`` (1×1×H×W) and the next
states ``r1o``..``r4o``. Inference runs at full resolution: the graph shrinks the frame by the
ratio for its backbone and its deep guided filter brings the matte back to H×W.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .onnx import get_session

__all__ = ["downsample_ratio", "RvmPredictor"]

_STATES = ("r1i", "r2i", "r3i", "r4i")


def downsample_ratio(height: int, width: int) -> float:
    """The backbone's scale for an H×W frame: ``min(1, 512 / long side)``.

    This is upstream's guidance table as one rule (≤512²: 1; 1280×720: 0.4 vs their 0.375;
    1920×1080: 0.27 vs 0.25; 3840×2160: 0.13 vs 0.125 for portraits).
    """
    return float(min(1.0, 512.0 / max(height, width)))


class RvmPredictor:
    """RVM on frames; ``predict`` for single images, ``step`` for a video (keeps the state).

    Args:
        path: the .onnx file; spec: its registry spec; providers / threads as for
            :class:`~nuggy.runtime.onnx.OnnxPredictor`.
    """

    def __init__(self, path: str | os.PathLike, spec, *, providers=None, threads=None) -> None:
        self.path = Path(path)
        self.spec = spec
        self.session = get_session(self.path, providers=providers, threads=threads)
        names = {i.name for i in self.session.get_inputs()}
        missing = {"src", "downsample_ratio", *_STATES} - names
        if missing:
            raise ValueError(
                f"{path}: not a Robust Video Matting graph (inputs lack {', '.join(sorted(missing))})"
            )
        self._state: list[np.ndarray] | None = None
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        """Forget the recurrent state (a new clip, or a scene cut)."""
        self._state = None
        self._size = None

    def _run(self, image: np.ndarray, state: list[np.ndarray] | None):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected RGB uint8 H×W×3, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
        x *= np.float32(1 / 255)
        if state is None:
            state = [np.zeros((1, 1, 1, 1), np.float32)] * 4
        feed = {"src": x, "downsample_ratio": np.array([downsample_ratio(h, w)], np.float32)}
        feed.update(zip(_STATES, state))
        fgr, pha, *rec = self.session.run(None, feed)
        return np.clip(pha[0, 0], 0.0, 1.0).astype(np.float32, copy=False), fgr, rec

    def predict(self, image: np.ndarray, *, flip: bool = False) -> np.ndarray:
        """Alpha of one image (float32 H×W in [0, 1], at full size) from a fresh state.

        The recurrent state is settled by running the image twice (the first pass starts from
        zeros); ``flip`` adds the un-flipped matte of the mirrored image (mean of both).
        """

        def once(img):
            _, _, rec = self._run(img, None)
            return self._run(img, rec)[0]

        pha = once(image)
        if flip:
            pha = 0.5 * (pha + once(np.ascontiguousarray(image[:, ::-1]))[:, ::-1])
        return pha

    def step(self, frame: np.ndarray) -> np.ndarray:
        """Alpha of the next video frame (float32 H×W in [0, 1]); the state carries over.

        A frame of another size than the previous one starts from a fresh state.
        """
        if self._size != frame.shape[:2]:
            self._state = None
        pha, _, rec = self._run(frame, self._state)
        self._state = rec
        self._size = frame.shape[:2]
        return pha
