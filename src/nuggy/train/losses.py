"""Training losses.

Segmentation (DIS / U²-Net recipes, on logits so they are stable under mixed precision):

* :func:`side_bce` — the sum of BCE over every side output (U²-Net deep supervision over
  d0…d6; IS-Net over its six side maps; the GT encoder's self-reconstruction);
* :func:`soft_iou` — an optional IoU term per side output;
* :func:`feature_sync` — IS-Net's intermediate supervision: the distance (MSE by default)
  between the segmentation net's decoder features and the frozen GT encoder's features.

Matting (FBA Matting, Forte & Pitié 2020; for alpha/F/B fine-tunes):

* :func:`alpha_l1`, :func:`composition_loss`, :func:`gradient_loss`, :func:`laplacian_loss`
  (5 band-pass levels of a Laplacian pyramid, level ``i`` weighted ``2^i``, as Hou & Liu
  2019), :func:`exclusion_loss` (Zhang et al. 2018: gradients of F and B should not
  coincide), and :func:`fba_loss` combining them for alpha and for F, B. Each docstring says
  where it follows its reference and why it differs where it does.

Every loss accepts an optional ``mask`` (``N×1×H×W``, e.g. the trimap's unknown region) that
weights pixels; the mean is taken over the weighted pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "resize_target",
    "side_bce",
    "soft_iou",
    "feature_sync",
    "segmentation_loss",
    "alpha_l1",
    "composition_loss",
    "gradient_loss",
    "laplacian_pyramid",
    "laplacian_loss",
    "exclusion_loss",
    "FBALossWeights",
    "fba_loss",
]


# ---------------------------------------------------------------------------------------------
# segmentation


def resize_target(target: Tensor, like: Tensor) -> Tensor:
    """``target`` bilinearly resized to ``like``'s spatial size (unchanged if it matches)."""
    if target.shape[-2:] == like.shape[-2:]:
        return target
    return F.interpolate(target, size=like.shape[-2:], mode="bilinear", align_corners=False)


def side_bce(logits: Sequence[Tensor], target: Tensor) -> tuple[Tensor, Tensor]:
    """``(bce of logits[0], Σ_i bce of logits[i])``, each the mean over pixels.

    ``target`` in [0, 1] (soft alpha targets are fine), resized to each side output if needed.
    """
    first = total = None
    for i, lg in enumerate(logits):
        loss = F.binary_cross_entropy_with_logits(lg.float(), resize_target(target, lg).float())
        total = loss if total is None else total + loss
        if i == 0:
            first = loss
    if total is None:
        raise ValueError("side_bce: no outputs")
    return first, total


def soft_iou(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """``1 − Σ p·t / Σ (p + t − p·t)`` per image (``p = sigmoid(logits)``), averaged."""
    p = torch.sigmoid(logits.float())
    t = resize_target(target, logits).float()
    inter = (p * t).flatten(1).sum(1)
    union = (p + t - p * t).flatten(1).sum(1)
    return (1.0 - (inter + eps) / (union + eps)).mean()


def feature_sync(feats: Sequence[Tensor], gt_feats: Sequence[Tensor], mode: str = "mse") -> Tensor:
    """IS-Net intermediate supervision: ``Σ_levels d(feats[i], gt_feats[i])``.

    ``mode``: ``mse`` (the paper's choice), ``l1``, ``smooth_l1`` or ``kl`` (KL divergence
    between channel softmaxes). Shapes must agree level by level.
    """
    if len(feats) != len(gt_feats):
        raise ValueError(f"feature_sync: {len(feats)} feature maps vs {len(gt_feats)} targets")
    total = None
    for i, (f, g) in enumerate(zip(feats, gt_feats)):
        if f.shape != g.shape:
            raise ValueError(f"feature_sync: level {i}: {tuple(f.shape)} vs {tuple(g.shape)}")
        f, g = f.float(), g.float().detach()
        if mode == "mse":
            d = F.mse_loss(f, g)
        elif mode == "l1":
            d = F.l1_loss(f, g)
        elif mode == "smooth_l1":
            d = F.smooth_l1_loss(f, g)
        elif mode == "kl":
            # elementwise mean of KL(softmax g ‖ softmax f), as the DIS code's KLDivLoss
            log_t = F.log_softmax(g, dim=1)
            d = (log_t.exp() * (log_t - F.log_softmax(f, dim=1))).mean()
        else:
            raise ValueError(f"feature_sync: unknown mode {mode!r} (mse, l1, smooth_l1, kl)")
        total = d if total is None else total + d
    if total is None:
        raise ValueError("feature_sync: no features")
    return total


def segmentation_loss(
    logits: Sequence[Tensor], target: Tensor, *, bce: float = 1.0, iou: float = 0.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """Deep supervision over every side output: ``bce · Σ BCE + iou · Σ IoU``.

    Returns the loss and its parts (``bce0``: the main output's BCE, ``bce``, ``iou``).
    """
    first, total_bce = side_bce(logits, target)
    loss = bce * total_bce
    parts = {"bce0": first.detach(), "bce": total_bce.detach()}
    if iou > 0:
        total_iou = sum(soft_iou(lg, target) for lg in logits)
        loss = loss + iou * total_iou
        parts["iou"] = total_iou.detach()
    return loss, parts


# ---------------------------------------------------------------------------------------------
# matting (FBA)


def _masked_mean(err: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``err`` (N×C×H×W) over the pixels weighted by ``mask`` (N×1×H×W)."""
    if mask is None:
        return err.mean()
    m = resize_target(mask.to(err.dtype), err)
    denom = (m.sum() * err.shape[1]).clamp_min(1e-6)
    return (err * m).sum() / denom


def alpha_l1(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """``mean |α − α*|``."""
    return _masked_mean((pred - gt).abs(), mask)


def composition_loss(
    alpha: Tensor, fg: Tensor, bg: Tensor, image: Tensor, mask: Tensor | None = None
) -> Tensor:
    """``mean |α·F + (1 − α)·B − I|`` over the colour channels.

    FBA applies it twice: with the predicted alpha and the true F, B; and with the true alpha
    and the predicted F, B.
    """
    comp = alpha * fg + (1.0 - alpha) * bg
    return _masked_mean((comp - image).abs(), mask)


def _grad_xy(x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences, zero-padded at the far edge (same size as ``x``)."""
    gx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
    gy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return gx, gy


def gradient_loss(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """``mean (|∂x p − ∂x g| + |∂y p − ∂y g|)`` (FBA notes it is optional)."""
    px, py = _grad_xy(pred)
    gx, gy = _grad_xy(gt)
    return _masked_mean((px - gx).abs() + (py - gy).abs(), mask)


def _gauss_kernel(channels: int, device, dtype) -> Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype)
    k2 = torch.outer(k, k) / 256.0
    return k2.expand(channels, 1, 5, 5).contiguous()


def _blur(x: Tensor) -> Tensor:
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > 2 else "replicate"
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode=mode), _gauss_kernel(c, x.device, x.dtype), groups=c)


def laplacian_pyramid(x: Tensor, levels: int = 5, *, residual: bool = True) -> list[Tensor]:
    """Laplacian pyramid of ``x`` (N×C×H×W): ``levels`` band-pass images (finest first), then
    the low-pass residual when ``residual``. Each band is ``cur − up(down(blur(cur)))`` with
    the 5×5 binomial kernel (1 4 6 4 1)²/256; stops early once a side is below 2."""
    out: list[Tensor] = []
    cur = x
    for _ in range(levels):
        if min(cur.shape[-2:]) < 2:
            break
        down = _blur(cur)[..., ::2, ::2]
        up = _blur(F.interpolate(down, size=cur.shape[-2:], mode="bilinear", align_corners=False))
        out.append(cur - up)
        cur = down
    if residual:
        out.append(cur)
    return out


def laplacian_loss(pred: Tensor, gt: Tensor, mask: Tensor | None = None, levels: int = 5) -> Tensor:
    """``Σ_{i=0}^{levels−1} 2^i · mean |L_i(pred) − L_i(gt)|`` over ``levels`` band-pass levels
    (``i = 0`` finest), masked per level by the area-pooled ``mask``.

    FBA (§3.3) takes this loss from Hou & Liu 2019 (Context-Aware Image Matting): five
    levels, level ``s`` weighted ``2^(s−1)``. As in the FBA author's published implementation
    of it (a gist linked from MarcoForte/FBA_Matting issue #12, built on a band-pass-only
    pyramid) the low-pass residual is not compared: a constant offset costs nothing here (the
    L1 term sees it). Differences, on purpose: the expand step is bilinear + blur instead of
    zero insertion + 4× blur (the same low-pass up to a gain the subtraction absorbs), and the
    means are taken over the masked pixels. Works for alpha (1 channel) and for F / B (3).
    """
    lp = laplacian_pyramid(pred, levels, residual=False)
    lg = laplacian_pyramid(gt, levels, residual=False)
    total = pred.new_zeros(())
    for i, (a, b) in enumerate(zip(lp, lg)):
        m = None if mask is None else F.adaptive_avg_pool2d(mask.to(a.dtype), a.shape[-2:])
        total = total + (2.0**i) * _masked_mean((a - b).abs(), m)
    return total


def _pooled_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Per-(image, channel) mean over the pixels weighted by ``mask``: N×C."""
    if mask is None:
        return x.mean(dim=(-2, -1))
    m = resize_target(mask.to(x.dtype), x)
    return (x * m).sum(dim=(-2, -1)) / m.sum(dim=(-2, -1)).clamp_min(1e-6)


_ROOT_FLOOR = 1e-12


def exclusion_loss(
    fg: Tensor, bg: Tensor, mask: Tensor | None = None, levels: int = 3, eps: float = 1e-6
) -> Tensor:
    """Gradient exclusion between F and B (Zhang, Ng & Chen 2018, "Single Image Reflection
    Separation with Perceptual Losses", Eq. 5), which FBA Matting applies to its F and B.

    Follows the authors' released code (``compute_exclusion_loss``, which differs from the
    paper's equation): at each of ``levels`` scales (2× average pooling between them), for
    x and y separately, ``λ = 2 · mean|∂F| / mean|∂B|``,
    ``Ψ = (2σ(∂F) − 1)² · (2σ(λ ∂B) − 1)²``, and the term is ``(mean Ψ)^(1/4)`` per image
    and channel; the loss is ``(Σ_x + Σ_y) / (2 · levels)``. Zero when either layer is flat.

    Differences, each for a reason: per-image/channel terms are averaged over the batch
    (not summed) so the weight does not depend on the batch size; ``λ`` carries no gradient
    (it only balances the two gradient scales; through it the network could lower the loss
    by rescaling one layer's gradients); a mean below 1e-12 (flat or masked-out layers) counts
    as 0 with no gradient (the fourth root's derivative is unbounded there); ``mask`` (e.g.
    the unknown region) weights the pixels of the means; ``eps`` guards the λ division.
    """
    total = fg.new_zeros(())
    f, b, m = fg.float(), bg.float(), mask
    n = 0
    for _ in range(levels):
        fx, fy = _grad_xy(f)
        bx, by = _grad_xy(b)
        for gf, gb in ((fx, bx), (fy, by)):
            with torch.no_grad():
                lam = 2.0 * _pooled_mean(gf.abs(), m) / _pooled_mean(gb.abs(), m).clamp_min(eps)
            sf = 2.0 * torch.sigmoid(gf) - 1.0
            sb = 2.0 * torch.sigmoid(lam[..., None, None] * gb) - 1.0
            psi = _pooled_mean(sf * sf * sb * sb, m)
            # fourth root, 0 (with no gradient) where Ψ vanishes: d/dm m^¼ is unbounded at 0
            root = torch.where(psi > _ROOT_FLOOR, psi.clamp_min(_ROOT_FLOOR) ** 0.25, psi * 0)
            total = total + root.mean()
        n += 1
        if min(f.shape[-2:]) < 4:
            break
        f, b = F.avg_pool2d(f, 2), F.avg_pool2d(b, 2)
        m = None if m is None else F.avg_pool2d(m.to(f.dtype), 2)
    return total / (2.0 * n)


@dataclass
class FBALossWeights:
    """Weights of the FBA loss terms (0 disables a term): FBA §3.3 (Forte & Pitié 2020),
    ``L = L_α + 0.25 · L_FB`` with ``L_α = L1 + L_comp + L_lap + L_grad`` and
    ``L_FB = L1 + L_comp + L_lap + L_excl`` (F and B terms summed)."""

    alpha_l1: float = 1.0
    alpha_comp: float = 1.0
    alpha_grad: float = 1.0
    alpha_lap: float = 1.0
    fb_l1: float = 0.25
    fb_comp: float = 0.25
    fb_lap: float = 0.25
    fb_excl: float = 0.25


def fba_loss(
    alpha: Tensor,
    fg: Tensor,
    bg: Tensor,
    *,
    alpha_gt: Tensor,
    fg_gt: Tensor,
    bg_gt: Tensor,
    image: Tensor,
    mask: Tensor | None = None,
    weights: FBALossWeights | None = None,
    visible_fb: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    """FBA Matting's combined loss for predicted ``alpha`` (N×1×H×W), ``fg``, ``bg``
    (N×3×H×W), all in [0, 1], against the ground truth and the input ``image``.

    ``visible_fb``: score the F terms (L1, Laplacian) only where ``alpha_gt > 0`` and the B
    terms only where ``alpha_gt < 1`` (within ``mask``). The paper supervises F everywhere
    with foregrounds extended by Levin et al.'s F/B estimation; a composite made on the fly
    has no true F where α = 0 (nor a true B under α = 1), so the trainer sets this.

    Returns the weighted sum and every term (detached).
    """
    w = weights or FBALossWeights()
    terms: dict[str, Tensor] = {}
    f_mask = b_mask = mask
    if visible_fb:
        base = torch.ones_like(alpha_gt) if mask is None else resize_target(mask.to(alpha_gt.dtype), alpha_gt)
        f_mask = base * (alpha_gt > 0).to(base.dtype)
        b_mask = base * (alpha_gt < 1).to(base.dtype)
    if w.alpha_l1:
        terms["alpha_l1"] = alpha_l1(alpha, alpha_gt, mask)
    if w.alpha_comp:
        terms["alpha_comp"] = composition_loss(alpha, fg_gt, bg_gt, image, mask)
    if w.alpha_grad:
        terms["alpha_grad"] = gradient_loss(alpha, alpha_gt, mask)
    if w.alpha_lap:
        terms["alpha_lap"] = laplacian_loss(alpha, alpha_gt, mask)
    if w.fb_l1:
        terms["fb_l1"] = alpha_l1(fg, fg_gt, f_mask) + alpha_l1(bg, bg_gt, b_mask)
    if w.fb_comp:
        terms["fb_comp"] = composition_loss(alpha_gt, fg, bg, image, mask)
    if w.fb_lap:
        terms["fb_lap"] = laplacian_loss(fg, fg_gt, f_mask) + laplacian_loss(bg, bg_gt, b_mask)
    if w.fb_excl:
        terms["fb_excl"] = exclusion_loss(fg, bg, mask)
    total = alpha.new_zeros(())
    for k, v in terms.items():
        total = total + getattr(w, k) * v
    return total, {k: v.detach() for k, v in terms.items()}
