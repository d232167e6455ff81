"""Temporal matting metrics on alpha sequences (float H×W in [0, 1]).

- ``dtssd``: as the Robust Video Matting evaluation code (Lin et al. 2022) computes it:
  ``sqrt(Σ_p ((p_t − p_{t−1}) − (g_t − g_{t−1}))² / N) × 100`` per frame pair.
- ``messddt``: motion-compensated squared-error change (Erofeev et al., BMVC 2015), in the
  form of the video-matting evaluation codes: with ``v`` the motion of the true alpha from
  t−1 to t, ``Σ_p |e_{t−1}(p) − e_t(p + v(p))|`` where ``e = (pred − true)²``; target pixels
  rounded to the nearest pixel and clamped to the frame, as there. Reported ÷ 1000 (as SAD).
- ``sad`` (Σ|p − g| ÷ 1000) and ``mse`` (mean squared error × 1000) per frame, over the
  whole frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sad", "mse", "dtssd", "messddt", "affine_flow"]


def sad(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.abs(pred.astype(np.float64) - true).sum() / 1000.0)


def mse(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.square(pred.astype(np.float64) - true).mean() * 1000.0)


def dtssd(pred_t: np.ndarray, pred_tm1: np.ndarray, true_t: np.ndarray, true_tm1: np.ndarray) -> float:
    d = (pred_t.astype(np.float64) - pred_tm1) - (true_t.astype(np.float64) - true_tm1)
    return float(np.sqrt(np.square(d).sum() / d.size) * 100.0)


def affine_flow(m_prev: np.ndarray, m_cur: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Exact flow H×W×2 (dx, dy) of content under affine motions: frame pixel p at t−1 moves to
    ``M_t M_{t−1}⁻¹ p`` at t (both 2×3 matrices map the same source to the frame)."""
    H, W = size
    a = np.vstack([m_prev, [0, 0, 1]])
    b = np.vstack([m_cur, [0, 0, 1]])
    rel = (b @ np.linalg.inv(a))[:2]
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    nx = rel[0, 0] * xs + rel[0, 1] * ys + rel[0, 2]
    ny = rel[1, 0] * xs + rel[1, 1] * ys + rel[1, 2]
    return np.dstack([nx - xs, ny - ys])


def messddt(
    pred_t: np.ndarray, pred_tm1: np.ndarray, true_t: np.ndarray, true_tm1: np.ndarray, flow: np.ndarray
) -> float:
    """``flow``: H×W×2 (dx, dy) motion from t−1 to t (e.g. :func:`affine_flow`)."""
    H, W = true_t.shape
    e_prev = np.square(pred_tm1.astype(np.float64) - true_tm1)
    e_cur = np.square(pred_t.astype(np.float64) - true_t)
    ys, xs = np.mgrid[0:H, 0:W]
    tx = np.clip(np.rint(xs + flow[..., 0]).astype(np.int64), 0, W - 1)
    ty = np.clip(np.rint(ys + flow[..., 1]).astype(np.int64), 0, H - 1)
    return float(np.abs(e_prev - e_cur[ty, tx]).sum() / 1000.0)
