"""Losses: deep-supervision BCE, IS-Net feature sync, and the FBA matting losses."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from nuggy.train.losses import (  # noqa: E402
    alpha_l1,
    composition_loss,
    exclusion_loss,
    fba_loss,
    feature_sync,
    gradient_loss,
    laplacian_loss,
    laplacian_pyramid,
    segmentation_loss,
    side_bce,
    soft_iou,
)

pytestmark = pytest.mark.torch


def _maps(seed=0, n=2, h=16, w=16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, h, w, generator=g)


# ---------------------------------------------------------------------------------------------
# segmentation


def test_side_bce_is_the_sum_of_per_side_bce_with_resized_targets():
    target = (_maps(1) > 0.5).float()
    logits = [torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16), torch.randn(2, 1, 8, 8)]
    first, total = side_bce(logits, target)
    ref0 = F.binary_cross_entropy(torch.sigmoid(logits[0]), target)
    small = F.interpolate(target, size=(8, 8), mode="bilinear", align_corners=False)
    ref = (
        ref0
        + F.binary_cross_entropy(torch.sigmoid(logits[1]), target)
        + F.binary_cross_entropy(torch.sigmoid(logits[2]), small)
    )
    assert first == pytest.approx(float(ref0), rel=1e-5)
    assert total == pytest.approx(float(ref), rel=1e-5)


def test_segmentation_loss_parts_and_iou():
    target = (_maps(2) > 0.5).float()
    perfect = (target * 2 - 1) * 30.0
    assert float(soft_iou(perfect, target)) < 1e-3
    assert float(soft_iou(-perfect, target)) > 0.9
    loss, parts = segmentation_loss([perfect, -perfect], target, bce=1.0, iou=0.5)
    assert set(parts) == {"bce0", "bce", "iou"}
    assert float(parts["bce0"]) < 1e-6 < float(parts["bce"])
    assert float(loss) == pytest.approx(float(parts["bce"] + 0.5 * parts["iou"]), rel=1e-6)


@pytest.mark.parametrize("arch, n_sides", [("u2netp", 7), ("isnet", 6)])
def test_deep_supervision_covers_every_side_output(arch, n_sides):
    from nuggy.models import create_model
    from nuggy.train.loop import _Logits, _sides

    torch.manual_seed(0)
    model = _Logits(create_model(arch, width_divisor=8 if arch == "isnet" else 4))
    out = model(torch.randn(2, 3, 32, 32))
    sides = _sides(out)
    assert len(sides) == n_sides and all(s.shape == (2, 1, 32, 32) for s in sides)
    loss, _ = segmentation_loss(sides, torch.ones(2, 1, 32, 32))
    loss.backward()
    side_convs = [n for n, p in model.named_parameters() if ".side" in n or ".outconv" in n]
    assert side_convs and all(
        p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n in side_convs
    )


def test_feature_sync_matches_isnet_and_gt_encoder_features():
    from nuggy.models import create_model

    torch.manual_seed(0)
    net, enc = create_model("isnet", width_divisor=8), create_model("isnet_gt_encoder", width_divisor=8)
    _, feats = net.forward_logits(torch.randn(2, 3, 64, 64))
    with torch.no_grad():
        _, gt_feats = enc.eval().forward_logits(torch.rand(2, 1, 64, 64))
    assert [f.shape for f in feats] == [g.shape for g in gt_feats]
    mse = feature_sync(feats, gt_feats, "mse")
    ref = sum(F.mse_loss(f, g) for f, g in zip(feats, gt_feats))
    assert float(mse.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    mse.backward()
    assert net.conv_in.weight.grad is not None
    for mode in ("l1", "smooth_l1", "kl"):
        assert float(feature_sync(feats, gt_feats, mode).detach()) > 0
    assert float(feature_sync(gt_feats, gt_feats)) == 0.0
    with pytest.raises(ValueError, match="level 0"):
        feature_sync([feats[0][:, :1]], [gt_feats[0]])
    with pytest.raises(ValueError, match="unknown mode"):
        feature_sync(feats, gt_feats, "cos")


# ---------------------------------------------------------------------------------------------
# FBA matting losses


def _scene(seed=0, h=32, w=32):
    g = torch.Generator().manual_seed(seed)
    alpha = torch.rand(2, 1, h, w, generator=g)
    fg = torch.rand(2, 3, h, w, generator=g)
    bg = torch.rand(2, 3, h, w, generator=g)
    image = alpha * fg + (1 - alpha) * bg
    return alpha, fg, bg, image


def test_alpha_l1_and_masking():
    a, b = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    b[..., :2, :] = 1.0
    assert float(alpha_l1(a, b)) == pytest.approx(0.5)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 0, :] = 1.0  # only the first row, all wrong
    assert float(alpha_l1(a, b, mask)) == pytest.approx(1.0)
    mask[..., 3, :] = 1.0  # plus a row that is right
    assert float(alpha_l1(a, b, mask)) == pytest.approx(0.5)


def test_composition_loss():
    alpha, fg, bg, image = _scene()
    assert float(composition_loss(alpha, fg, bg, image)) < 1e-6
    shifted = composition_loss(alpha, fg + 0.1, bg, image)
    assert float(shifted) == pytest.approx(float(0.1 * alpha.mean()), rel=1e-4)


def test_gradient_loss_ignores_offsets_and_sees_edges():
    alpha = _maps(3)
    assert float(gradient_loss(alpha + 0.3, alpha)) < 1e-6
    assert float(gradient_loss(torch.zeros_like(alpha), alpha)) > 0.1


def test_laplacian_pyramid_and_loss():
    x = _maps(4, h=32, w=32)
    levels = laplacian_pyramid(x, 5)
    assert [tuple(level.shape[-2:]) for level in levels] == [
        (32, 32),
        (16, 16),
        (8, 8),
        (4, 4),
        (2, 2),
        (1, 1),
    ]
    assert len(laplacian_pyramid(x, 5, residual=False)) == 5
    assert float(laplacian_loss(x, x)) == 0.0
    # a constant offset lives only in the low-pass residual, which the loss (5 band-pass
    # levels, as FBA's reference implementation) does not compare
    assert float(laplacian_loss(x + 0.1, x, levels=5)) == pytest.approx(0.0, abs=1e-5)
    step = torch.zeros(1, 1, 64, 64)
    step[..., 32:] = 1.0
    assert float(laplacian_loss(step, torch.zeros_like(step))) > 0
    # fine detail is seen by the band-pass levels
    noise = torch.randn_like(x) * 0.1
    lv = [float((a - b).abs().mean()) for a, b in zip(laplacian_pyramid(x + noise), levels)]
    assert lv[0] > lv[-1]
    rgb = torch.rand(1, 3, 32, 32)
    assert float(laplacian_loss(rgb, rgb.flip(-1))) > 0


def test_exclusion_loss():
    h = w = 32
    flat = torch.full((1, 3, h, w), 0.5)
    stripes_x = torch.zeros(1, 3, h, w)
    stripes_x[..., :, ::4] = 1.0  # vertical stripes: x-gradients
    stripes_y = torch.zeros(1, 3, h, w)
    stripes_y[..., ::4, :] = 1.0
    assert float(exclusion_loss(stripes_x, flat)) == pytest.approx(0.0, abs=1e-6)
    same = float(exclusion_loss(stripes_x, stripes_x))
    shifted = stripes_x.roll(2, dims=-1)  # edges in other places
    assert same > float(exclusion_loss(stripes_x, shifted)) > 0
    f = stripes_x.clone().requires_grad_(True)
    exclusion_loss(f, stripes_y + stripes_x).backward()
    assert f.grad is not None and f.grad.abs().sum() > 0


def test_fba_loss_is_zero_for_a_perfect_prediction_and_trains_all_outputs():
    alpha, fg, _, _ = _scene(5)
    bg = torch.full_like(fg, 0.2)  # a flat background: no exclusion term either
    image = alpha * fg + (1 - alpha) * bg
    total, parts = fba_loss(alpha, fg, bg, alpha_gt=alpha, fg_gt=fg, bg_gt=bg, image=image)
    assert float(total) == pytest.approx(0.0, abs=1e-5)
    assert set(parts) == {
        "alpha_l1",
        "alpha_comp",
        "alpha_grad",
        "alpha_lap",
        "fb_l1",
        "fb_comp",
        "fb_lap",
        "fb_excl",
    }  # FBA §3.3: the gradient loss is in the set
    a = torch.rand_like(alpha).requires_grad_(True)
    f = torch.rand_like(fg).requires_grad_(True)
    b = torch.rand_like(bg).requires_grad_(True)
    mask = (alpha > 0.2).float()
    total, parts = fba_loss(a, f, b, alpha_gt=alpha, fg_gt=fg, bg_gt=bg, image=image, mask=mask)
    total.backward()
    for t in (a, f, b):
        assert t.grad is not None and t.grad.abs().sum() > 0
    assert all(float(v) > 0 for v in parts.values())


def _exclusion_reference(f: np.ndarray, b: np.ndarray, levels: int = 3) -> float:
    """Zhang et al.'s released compute_exclusion_loss, in NumPy (N×C×H×W), with the batch mean
    in place of its sum; float64."""

    def sig(x):
        return 1.0 / (1.0 + np.exp(-x))

    total = 0.0
    for _ in range(levels):
        for axis in (3, 2):  # x, then y
            g1 = np.diff(f, axis=axis)
            g2 = np.diff(b, axis=axis)
            pad = [(0, 0)] * 4
            pad[axis] = (0, 1)  # zero gradient at the far edge, as ours
            g1, g2 = np.pad(g1, pad), np.pad(g2, pad)
            lam = 2.0 * np.abs(g1).mean(axis=(2, 3)) / np.abs(g2).mean(axis=(2, 3))
            s1 = 2 * sig(g1) - 1
            s2 = 2 * sig(g2 * lam[..., None, None]) - 1
            total += float(((s1**2 * s2**2).mean(axis=(2, 3)) ** 0.25).mean())
        f = f.reshape(*f.shape[:2], f.shape[2] // 2, 2, f.shape[3] // 2, 2).mean(axis=(3, 5))
        b = b.reshape(*b.shape[:2], b.shape[2] // 2, 2, b.shape[3] // 2, 2).mean(axis=(3, 5))
    return total / (2 * levels)


def test_exclusion_loss_matches_the_reference_formula():
    g = torch.Generator().manual_seed(3)
    f = torch.rand(2, 3, 32, 24, generator=g, dtype=torch.float64)
    b = torch.rand(2, 3, 32, 24, generator=g, dtype=torch.float64)
    ref = _exclusion_reference(f.numpy(), b.numpy())
    # the loss runs in float32 (the reference in float64): ~1e-7 relative rounding; a change
    # of formula (λ, the root, the level average) moves it by > 1e-3
    assert float(exclusion_loss(f, b)) == pytest.approx(ref, rel=1e-6)
    fm = f.clone().requires_grad_(True)
    exclusion_loss(fm, b).backward()
    assert torch.isfinite(fm.grad).all()
