"""Pre- and post-processing shared by every predictor (ONNX Runtime and PyTorch).

Everything comes from the model's spec: input size, per-channel mean/std (0..255 units) and
the output activation. Nothing depends on the image's own statistics.
"""

from __future__ import annotations

import numpy as np

__all__ = ["resize", "to_model_input", "to_probability", "upsample", "predict_flip_tta"]


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an H×W or H×W×C array to ``size`` = (height, width).

    Area averaging when shrinking (no aliasing), bilinear when enlarging. dtype is kept.
    """
    import cv2

    h, w = image.shape[:2]
    th, tw = size
    if (h, w) == (th, tw):
        return image.copy()
    interp = cv2.INTER_AREA if th * tw < h * w else cv2.INTER_LINEAR
    out = cv2.resize(image, (tw, th), interpolation=interp)
    if image.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def to_model_input(image: np.ndarray, spec) -> np.ndarray:
    """RGB uint8 H×W×3 → float32 1×3×h×w network input for ``spec`` (a ModelSpec).

    Resized to ``spec.input_size`` (aspect ratio not kept, as the models were trained),
    normalised as ``(pixel - mean) / std`` with the spec's 0..255-unit statistics.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 H×W×3, got {image.dtype} {image.shape}")
    x = resize(image, tuple(spec.input_size)).astype(np.float32)
    x -= np.asarray(spec.mean, dtype=np.float32)
    x /= np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def to_probability(output: np.ndarray, activation: str) -> np.ndarray:
    """Network output (1×1×h×w, h×w or 1×h×w) → float32 h×w probability in [0, 1]."""
    y = np.asarray(output, dtype=np.float32)
    y = y.reshape(y.shape[-2], y.shape[-1])
    if activation == "sigmoid":
        y = 1.0 / (1.0 + np.exp(-y))
    elif activation != "none":
        raise ValueError(f"unknown activation {activation!r}")
    return np.clip(y, 0.0, 1.0)


def upsample(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float32 h×w probability map to ``size`` = (H, W), clipped to [0, 1]."""
    import cv2

    th, tw = size
    if prob.shape == (th, tw):
        return prob.astype(np.float32, copy=True)
    out = cv2.resize(prob.astype(np.float32), (tw, th), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0)


def predict_flip_tta(run_tensor, x: np.ndarray, *, flip: bool) -> np.ndarray:
    """``run_tensor(x)``, averaged with the un-flipped result of the mirrored input if ``flip``.

    ``x`` is a 1×3×h×w model input; ``run_tensor`` maps it to an h×w probability map.
    """
    prob = run_tensor(x)
    if flip:
        prob_f = run_tensor(np.ascontiguousarray(x[..., ::-1]))[:, ::-1]
        prob = 0.5 * (prob + prob_f)
    return prob
