"""Temporal stabilisation of per-frame mattes or probability maps (any image model).

For frame t with its per-frame map ``a_t`` (in the video pipeline: the pipeline's final alpha,
see below) the previous *stabilised* map is warped to frame t with dense optical flow (OpenCV's
DIS, Kroeger et al. 2016, on downscaled grey frames) and blended in::

    s_t = a_t + k · c_t · (warp(s_{t-1}) − a_t)

``k`` (``strength``, 0..1) sets how much of the past is kept; ``c_t`` (0..1 per pixel) is the
confidence of the motion-compensated estimate. It drops

- where the flow is unreliable: the forward flow (t−1 → t) sampled at the backward flow's
  target does not bring the pixel back (forward-backward error ``e``, in pixels of the flow
  resolution): ``exp(−(e / fb_scale)²)``;
- where the warp leaves the frame;
- where the warped previous *frame* does not match this frame (photometric error: the mean
  absolute RGB difference ``d``, 3×3 box-averaged, in grey levels): ``exp(−(d / photo_scale)²)``.
  This is what marks occlusion, uncovered background and motion the flow misses, whatever
  the map does there; sensor noise (σ ≈ 2 grey levels) keeps ``d`` well below the scale;
- optionally (``change_scale``, off by default) where the map and the warped estimate disagree
  strongly: ``exp(−(|Δ| / change_scale)²)``;
- everywhere at a scene cut (the grey-level histograms of consecutive frames differ by more
  than ``cut_threshold`` in total variation distance): the state restarts.

The result is an exponential moving average along motion trajectories: flicker (frame-to-frame
noise of the model and of the pipeline's image-guided stages) is averaged out; motion is
followed, not smeared. :func:`nuggy.video.remove` applies it to the *final* alpha of each frame
(after interior, refine, clean and matting), since those stages, run on each frame's own noisy
image, add flicker of their own that stabilising the model's map beforehand cannot remove
(tune clips, benchmarks/video.py: dtSSD on moving clips −13 % this way, −4 % on the map).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TemporalParams", "TemporalStabiliser", "is_scene_cut"]


@dataclass(frozen=True)
class TemporalParams:
    """Constants of :class:`TemporalStabiliser` (chosen on the ``tune`` clips of
    ``benchmarks/video.py``; see the README).

    strength: k in [0, 1): weight of the motion-compensated past (0 = off).
    flow_size: long side in pixels of the frames the flow is computed on.
    fb_scale: forward-backward error (flow pixels) at which confidence falls to 1/e.
    photo_scale: photometric error (grey levels, mean over RGB) between the frame and the
        warped previous frame at which confidence falls to 1/e; ``None``: no photometric gate.
    change_scale: map-vs-warp disagreement (0..1) at which confidence falls to 1/e; ``None``
        (default): no such gate.
    cut_threshold: total variation distance of 32-bin grey histograms that marks a cut.
    """

    strength: float = 0.8
    flow_size: int = 320
    fb_scale: float = 1.0
    photo_scale: float | None = 10.0
    change_scale: float | None = None
    cut_threshold: float = 0.35

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if not 0.0 <= self.strength < 1.0:
            raise ConfigError(
                f"temporal strength must be in 0..1 (1 excluded), got {self.strength!r}", field="temporal"
            )
        if (
            self.flow_size < 16
            or self.fb_scale <= 0
            or (self.change_scale is not None and self.change_scale <= 0)
            or (self.photo_scale is not None and self.photo_scale <= 0)
        ):
            raise ConfigError(
                "temporal flow_size ≥ 16, fb_scale > 0, photo_scale and change_scale > 0 (or None) required"
            )
        if not 0 < self.cut_threshold <= 1:
            raise ConfigError("temporal cut_threshold must be in (0, 1]")


def _histogram(grey: np.ndarray) -> np.ndarray:
    h = np.bincount((grey >> 3).ravel(), minlength=32).astype(np.float64)
    return h / max(h.sum(), 1.0)


def is_scene_cut(grey_a: np.ndarray, grey_b: np.ndarray, *, threshold: float) -> bool:
    """Whether two uint8 grey frames belong to different shots (histogram TV distance)."""
    return 0.5 * float(np.abs(_histogram(grey_a) - _histogram(grey_b)).sum()) > threshold


class TemporalStabiliser:
    """Stateful: call :meth:`update` once per frame, in order; :meth:`reset` at a new clip.

    Args:
        params: :class:`TemporalParams` (``strength=0`` passes maps through unchanged).
    """

    def __init__(self, params: TemporalParams | None = None) -> None:
        self.params = params or TemporalParams()
        self._dis = None
        self.reset()
        #: whether the last :meth:`update` found a scene cut (or had no previous frame)
        self.cut = True

    def reset(self) -> None:
        self._grey = None
        self._image = None
        self._state = None

    def _grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (x, y) of an h×w frame, float32, cached per size."""
        grids = self.__dict__.setdefault("_grids", {})
        if (h, w) not in grids:
            if len(grids) > 4:
                grids.clear()
            grids[(h, w)] = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        return grids[(h, w)]

    def _flow_engine(self):
        if self._dis is None:
            import cv2

            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        return self._dis

    def _small_grey(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        import cv2

        h, w = image.shape[:2]
        scale = min(1.0, self.params.flow_size / max(h, w))
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(16, round(w * scale)), max(16, round(h * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey, scale

    def update(
        self,
        image: np.ndarray,
        prob: np.ndarray,
        *,
        motion: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """The stabilised map of this frame.

        Args:
            image: RGB uint8 H×W×3, the frame (not modified; kept until the next call).
            prob: float32 H×W in [0, 1], the per-frame map for it (the pipeline's alpha or a
                model's probability; not modified).
            motion: instead of optical flow, the known motion from the previous frame:
                ``(map_x, map_y, confidence)``, float32 H×W each: where each pixel of this
                frame was in the previous one, and how far to trust that (0..1). For
                measurements with synthetic clips (``benchmarks/video.py --exact-motion``).

        Returns:
            float32 H×W in [0, 1].
        """
        import cv2

        if image.shape[:2] != prob.shape:
            raise ValueError(f"frame {image.shape[:2]} and map {prob.shape} differ in size")
        prob = np.asarray(prob, dtype=np.float32)
        p = self.params
        grey, scale = self._small_grey(image)
        prev_grey, prev_state, prev_image = self._grey, self._state, self._image
        self._grey = grey
        self._image = image.copy()  # the caller may reuse its buffer
        if (
            p.strength == 0
            or prev_grey is None
            or prev_state is None
            or prev_state.shape != prob.shape
            or prev_grey.shape != grey.shape
            or is_scene_cut(prev_grey, grey, threshold=p.cut_threshold)
        ):
            self.cut = True
            self._state = prob.copy()
            return self._state.copy()
        self.cut = False
        H, W = prob.shape
        if motion is not None:
            map_x, map_y, conf = (np.asarray(m, dtype=np.float32) for m in motion)
            if not (map_x.shape == map_y.shape == conf.shape == (H, W)):
                raise ValueError(f"motion maps must be {H}×{W}")
            inside = (map_x >= 0) & (map_x <= W - 1) & (map_y >= 0) & (map_y <= H - 1)
            return self._blend(image, prob, prev_state, prev_image, map_x, map_y, conf * inside)
        dis = self._flow_engine()
        back = dis.calc(grey, prev_grey, None)  # t → t-1: where each pixel of t came from
        fwd = dis.calc(prev_grey, grey, None)  # t-1 → t
        gh, gw = grey.shape
        xs, ys = self._grid(gh, gw)
        mx, my = xs + back[..., 0], ys + back[..., 1]
        fwd_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fb = np.hypot(back[..., 0] + fwd_at[..., 0], back[..., 1] + fwd_at[..., 1])
        conf = np.exp(-np.square(fb / p.fb_scale))
        inside = (mx >= 0) & (mx <= gw - 1) & (my >= 0) & (my <= gh - 1)
        conf *= inside
        # to full resolution
        if (gh, gw) != (H, W):
            sx, sy = W / gw, H / gh
            back_full = cv2.resize(back, (W, H), interpolation=cv2.INTER_LINEAR)
            back_full[..., 0] *= sx
            back_full[..., 1] *= sy
            conf = cv2.resize(conf.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
        else:
            back_full = back
        fx, fy = self._grid(H, W)
        map_x, map_y = fx + back_full[..., 0], fy + back_full[..., 1]
        return self._blend(image, prob, prev_state, prev_image, map_x, map_y, conf.astype(np.float32))

    def _blend(self, image, prob, prev_state, prev_image, map_x, map_y, conf) -> np.ndarray:
        """Warp the previous state with ``map_x/map_y`` and blend it in by strength × conf
        × the photometric (and change) gates; the new state."""
        import cv2

        p = self.params
        warped = cv2.remap(prev_state, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diff = warped - prob
        if p.photo_scale is not None and prev_image is not None and prev_image.shape == image.shape:
            prev_warped = cv2.remap(
                prev_image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            photo = cv2.absdiff(prev_warped, image).astype(np.float32).mean(axis=2)
            photo = cv2.blur(photo, (3, 3))
            conf *= np.exp(-np.square(photo / np.float32(p.photo_scale)))
        if p.change_scale is not None:
            conf *= np.exp(-np.square(diff / np.float32(p.change_scale)))
        out = prob + np.float32(p.strength) * conf * diff
        np.clip(out, 0.0, 1.0, out=out)
        self._state = out
        return out.copy()
