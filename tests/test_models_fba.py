"""FBA Matting: upstream layout, tiny forward/backward, encodings, fusion, predictor."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nuggy.models import create_model, load_checkpoint, load_state_dict_strict  # noqa: E402
from nuggy.models.fba import (  # noqa: E402
    WSConv2d,
    fba_fusion,
    normalise_image,
    trimap_clicks,
    trimap_two_channel,
)

pytestmark = pytest.mark.torch


# Reference layout written from MarcoForte/FBA_Matting networks/models.py + resnet_GN_WS.py:
# MattingModule(encoder=ResnetDilated(ResNet-50 GN+WS, conv1 with 11 input channels),
# decoder=fba_decoder). GroupNorm has weight+bias only; L.Conv2d has bias unless bias=False.


def _gn(p: str, c: int) -> dict:
    return {f"{p}.weight": (c,), f"{p}.bias": (c,)}


def upstream_fba_keys() -> dict[str, tuple[int, ...]]:
    d: dict = {"encoder.conv1.weight": (64, 11, 7, 7), **_gn("encoder.bn1", 64)}
    inplanes = 64
    for li, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), 1):
        for b in range(blocks):
            p = f"encoder.layer{li}.{b}"
            d[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            d |= _gn(f"{p}.bn1", planes)
            d[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            d |= _gn(f"{p}.bn2", planes)
            d[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            d |= _gn(f"{p}.bn3", planes * 4)
            if b == 0:
                d[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                d |= _gn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    for i in range(4):
        d[f"decoder.ppm.{i}.1.weight"] = (256, 2048, 1, 1)
        d[f"decoder.ppm.{i}.1.bias"] = (256,)
        d |= _gn(f"decoder.ppm.{i}.2", 256)

    def conv(p, cin, cout, k):
        d[f"{p}.weight"] = (cout, cin, k, k)
        d[f"{p}.bias"] = (cout,)

    conv("decoder.conv_up1.0", 2048 + 4 * 256, 256, 3)
    d |= _gn("decoder.conv_up1.1", 256)
    conv("decoder.conv_up1.3", 256, 256, 3)
    d |= _gn("decoder.conv_up1.4", 256)
    conv("decoder.conv_up2.0", 256 + 256, 256, 3)
    d |= _gn("decoder.conv_up2.1", 256)
    conv("decoder.conv_up3.0", 256 + 64, 64, 3)
    d |= _gn("decoder.conv_up3.1", 64)
    conv("decoder.conv_up4.0", 64 + 3 + 3 + 2, 32, 3)
    conv("decoder.conv_up4.2", 32, 16, 3)
    conv("decoder.conv_up4.4", 16, 7, 1)
    return d


def test_layout_and_parameter_count():
    with torch.device("meta"):
        model = create_model("fba")
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ref = upstream_fba_keys()
    assert own == ref
    n = sum(p.numel() for p in model.parameters())
    assert n == sum(int(np.prod(s)) for s in ref.values()) == 34_693_031


def test_dilation_plan():
    with torch.device("meta"):
        enc = create_model("fba").encoder
    # layer3: stride removed, first 3×3 dilation 1, others 2; layer4: 2 then 4 (output stride 8)
    assert enc.layer3[0].conv2.stride == (1, 1) and enc.layer3[0].conv2.dilation == (1, 1)
    assert enc.layer3[0].downsample[0].stride == (1, 1)
    assert enc.layer3[1].conv2.dilation == (2, 2) and enc.layer3[1].conv2.padding == (2, 2)
    assert enc.layer4[0].conv2.dilation == (2, 2) and enc.layer4[2].conv2.dilation == (4, 4)
    assert enc.layer2[0].conv2.stride == (2, 2)


def test_strict_checkpoint_load(tmp_path):
    keys = upstream_fba_keys()
    sd = {k: torch.full(s, float(i)) for i, (k, s) in enumerate(keys.items())}
    path = tmp_path / "FBA.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    model = load_checkpoint("fba", path)
    got = model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in sd.items())
    del sd["decoder.conv_up4.4.bias"]
    with pytest.raises(RuntimeError, match="missing.*conv_up4.4.bias"):
        load_state_dict_strict(create_model("fba"), sd)
    sd["decoder.conv_up4.4.bias"] = torch.zeros(7)
    sd["encoder.fc.weight"] = torch.zeros(1000, 2048)
    with pytest.raises(RuntimeError, match="unexpected.*encoder.fc.weight"):
        load_state_dict_strict(create_model("fba"), sd)


def test_weight_standardisation_matches_definition():
    torch.manual_seed(0)
    conv = WSConv2d(4, 6, 3, padding=1, bias=True)
    w = conv.weight.detach()
    # upstream: F.batch_norm over (1, out, in·k·k), biased variance, eps 1e-5
    ref_w = torch.nn.functional.batch_norm(
        w.view(1, 6, -1), None, None, training=True, momentum=0.0, eps=1e-5
    ).reshape_as(w)
    x = torch.randn(1, 4, 9, 9)
    ref = torch.nn.functional.conv2d(x, ref_w, conv.bias, padding=1)
    assert torch.allclose(conv(x), ref, atol=1e-5)
    assert torch.allclose(conv.eval()(x), ref, atol=1e-5)  # same in eval mode


def _tiny():
    return create_model("fba", width_divisor=8, layers=(1, 1, 1, 1))


def _inputs(n=1, h=32, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(n, 3, h, w, generator=g)
    tri = torch.zeros(n, 2, h, w)
    tri[:, 0, :, : w // 4] = 1
    tri[:, 1, :, -w // 4 :] = 1
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return img, tri, (img - m) / s, torch.rand(n, 6, h, w, generator=g)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def test_tiny_forward_backward_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = _tiny().train()
    out = model(*_inputs(n=2))
    assert out.shape == (2, 7, 32, 40)
    assert float(out.detach().min()) >= 0 and float(out.detach().max()) <= 1
    target = torch.rand_like(out)
    (out - target).abs().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert float(p.grad.abs().sum()) > 0, name


def test_input_size_must_be_multiple_of_8():
    model = _tiny().eval()
    with pytest.raises(ValueError, match="multiple of 8"):
        model(*_inputs(h=30, w=40))


def test_raw_output_before_fusion():
    model = create_model("fba", width_divisor=8, layers=(1, 1, 1, 1), fuse=False).eval()
    with torch.no_grad():
        out = model(*_inputs())
    assert out.shape == (1, 7, 32, 40)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


# --------------------------------------------------------------------------- fusion


def test_fusion_keeps_a_consistent_triple():
    g = torch.Generator().manual_seed(1)
    alpha = torch.rand(2, 1, 5, 7, generator=g)
    fg = torch.rand(2, 3, 5, 7, generator=g)
    bg = torch.rand(2, 3, 5, 7, generator=g)
    img = alpha * fg + (1 - alpha) * bg
    a2, f2, b2 = fba_fusion(alpha, img, fg, bg)
    assert torch.allclose(a2, alpha, atol=1e-5)
    assert torch.allclose(f2, fg, atol=1e-5)
    assert torch.allclose(b2, bg, atol=1e-5)


def _fusion_reference(a, img, f, b, la=0.1):
    """Published fusion in float64 NumPy, one pixel: ``a`` scalar, ``img``/``f``/``b`` ``(3,)``.

    Written from the official ``fba_fusion`` order: F first; B from that new, *unclamped* F;
    then clip both; then the regularised alpha update, clipped.
    """
    img, f, b = (np.asarray(v, dtype=np.float64) for v in (img, f, b))
    f1 = a * img + (1 - a * a) * f - a * (1 - a) * b
    b1 = (1 - a) * img + (2 * a - a * a) * b - a * (1 - a) * f1
    f1, b1 = np.clip(f1, 0, 1), np.clip(b1, 0, 1)
    a1 = (a * la + np.dot(img - b1, f1 - b1)) / (np.dot(f1 - b1, f1 - b1) + la)
    return float(np.clip(a1, 0, 1)), f1, b1


def _fuse_pixel(a, img, f, b):
    def t(v):
        return torch.tensor(v, dtype=torch.float64).view(1, -1, 1, 1)

    ra, rf, rb = fba_fusion(t([a]), t(img), t(f), t(b))
    return ra.item(), rf.flatten().numpy(), rb.flatten().numpy()


def test_fusion_hand_computed_pixel():
    # Worked by hand: F' = 0.3 + 0.75 f − 0.25 b = (0.925, 0.5, 0.075);
    # B' = 0.5 img + 0.75 b − 0.25 F' = (0.21875, 0.3, 0.38125) (uses F', not f).
    a, img = 0.5, [0.6, 0.4, 0.2]
    f, b = [0.9, 0.5, 0.1], [0.2, 0.3, 0.4]
    ra, rf, rb = _fuse_pixel(a, img, f, b)
    assert rf == pytest.approx([0.925, 0.5, 0.075], abs=1e-12)
    assert rb == pytest.approx([0.21875, 0.3, 0.38125], abs=1e-12)
    d = np.subtract(rf, rb)
    want = (0.05 + np.dot(np.subtract(img, rb), d)) / (np.dot(d, d) + 0.1)
    assert 0 < want < 1  # the alpha clip is not active here
    assert ra == pytest.approx(want, abs=1e-12)
    wa, wf, wb = _fusion_reference(a, img, f, b)
    assert ra == pytest.approx(wa, abs=1e-12)
    assert rf == pytest.approx(wf, abs=1e-12) and rb == pytest.approx(wb, abs=1e-12)


def test_fusion_background_uses_the_updated_foreground():
    # α = 0.5, white pixel, black F and B. Worked by hand:
    # F' = 0.5·1 = 0.5; B' = 0.5·1 − 0.25·F' = 0.375 (the old F = 0 would give 0.5);
    # α' = (0.05 + 3·0.625·0.125) / (3·0.125² + 0.1) = 0.284375 / 0.146875 > 1 → 1
    # (with B' = 0.5 it would be 0.05 / 0.1 = 0.5: a 0.5 swing in alpha).
    ra, rf, rb = _fuse_pixel(0.5, [1.0] * 3, [0.0] * 3, [0.0] * 3)
    assert rf == pytest.approx([0.5] * 3, abs=1e-12)
    assert rb == pytest.approx([0.375] * 3, abs=1e-12)
    assert ra == pytest.approx(1.0, abs=1e-12)


def test_fusion_background_uses_the_foreground_before_clipping():
    # α = 0.5, white pixel, F = 1, B = 0: F' = 0.5 + 0.75 = 1.25 (clipped to 1 only afterwards);
    # B' = 0.5 − 0.25·1.25 = 0.1875 (0.25 if B used the clipped F' or the old F);
    # α' = (0.05 + 3·0.8125²) / (3·0.8125² + 0.1) = 2.03046875 / 2.08046875.
    ra, rf, rb = _fuse_pixel(0.5, [1.0] * 3, [1.0] * 3, [0.0] * 3)
    assert rf == pytest.approx([1.0] * 3, abs=1e-12)
    assert rb == pytest.approx([0.1875] * 3, abs=1e-12)
    assert ra == pytest.approx(2.03046875 / 2.08046875, abs=1e-12)


def test_fusion_matches_reference_on_random_pixels():
    rng = np.random.default_rng(3)
    a = rng.random((4, 1, 3, 5))
    img, f, b = (rng.random((4, 3, 3, 5)) for _ in range(3))
    ra, rf, rb = (x.numpy() for x in fba_fusion(*(torch.from_numpy(v) for v in (a, img, f, b))))
    old_order = 0.0  # largest alpha gap to a fusion whose B update used the decoder's F
    for n, y, x in np.ndindex(4, 3, 5):
        al, il, fl, bl = a[n, 0, y, x], img[n, :, y, x], f[n, :, y, x], b[n, :, y, x]
        wa, wf, wb = _fusion_reference(al, il, fl, bl)
        assert ra[n, 0, y, x] == pytest.approx(wa, abs=1e-12)
        assert rf[n, :, y, x] == pytest.approx(wf, abs=1e-12)
        assert rb[n, :, y, x] == pytest.approx(wb, abs=1e-12)
        bo = np.clip((1 - al) * il + (2 * al - al**2) * bl - al * (1 - al) * fl, 0, 1)
        ao = np.clip((al * 0.1 + np.dot(il - bo, wf - bo)) / (np.dot(wf - bo, wf - bo) + 0.1), 0, 1)
        old_order = max(old_order, abs(ao - wa))
    assert old_order > 0.05  # these inputs do tell the two orders apart


def test_network_output_is_the_published_fusion_of_the_raw_prediction():
    torch.manual_seed(0)
    raw_model = create_model("fba", width_divisor=8, layers=(1, 1, 1, 1), fuse=False).eval()
    fused_model = create_model("fba", width_divisor=8, layers=(1, 1, 1, 1)).eval()
    fused_model.load_state_dict(raw_model.state_dict())
    inputs = _inputs(h=16, w=16)
    with torch.no_grad():
        raw = raw_model(*inputs).double().numpy()
        out = fused_model(*inputs).double().numpy()
    img = inputs[0].double().numpy()
    for y, x in np.ndindex(16, 16):
        wa, wf, wb = _fusion_reference(raw[0, 0, y, x], img[0, :, y, x], raw[0, 1:4, y, x], raw[0, 4:7, y, x])
        assert out[0, 0, y, x] == pytest.approx(wa, abs=1e-4)
        assert out[0, 1:4, y, x] == pytest.approx(wf, abs=1e-5)
        assert out[0, 4:7, y, x] == pytest.approx(wb, abs=1e-5)


def test_fusion_clips():
    alpha = torch.full((1, 1, 2, 2), 0.5)
    img = torch.ones(1, 3, 2, 2)
    a, f, b = fba_fusion(alpha, img, torch.ones(1, 3, 2, 2) * 2, -torch.ones(1, 3, 2, 2))
    for t in (a, f, b):
        assert float(t.min()) >= 0 and float(t.max()) <= 1


# --------------------------------------------------------------------------- encodings


def test_two_channel_trimap():
    tri = np.array([[0, 128, 255], [255, 0, 7]], np.uint8)
    two = trimap_two_channel(tri)
    assert two.dtype == np.float32 and two.shape == (2, 3, 2)
    assert two[..., 0].tolist() == [[1, 0, 0], [0, 1, 0]]
    assert two[..., 1].tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(ValueError):
        trimap_two_channel(tri.astype(np.float32))


def test_clicks_are_gaussians_of_the_euclidean_distance():
    h, w = 41, 57
    tri = np.full((h, w), 128, np.uint8)
    tri[20, 30] = 255  # one foreground pixel, no background at all
    clicks = trimap_clicks(trimap_two_channel(tri))
    assert clicks.shape == (6, h, w) and clicks.dtype == np.float32
    assert not clicks[:3].any()  # absent class -> zeros
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = (yy - 20.0) ** 2 + (xx - 30.0) ** 2
    for j, s in enumerate((0.02, 0.08, 0.16)):
        ref = np.exp(-d2 / (2 * (s * 320) ** 2))
        np.testing.assert_allclose(clicks[3 + j], ref, atol=1e-4)
    assert clicks[3:, 20, 30].tolist() == [1, 1, 1]


def test_normalise_image():
    img = np.tile(np.array(IMAGENET_MEAN, np.float32), (2, 2, 1))
    assert np.abs(normalise_image(img)).max() < 1e-6
    assert normalise_image(np.ones((1, 1, 3)))[0, 0, 0] == pytest.approx((1 - 0.485) / 0.229)


# --------------------------------------------------------------------------- predictor


@pytest.mark.parametrize("shape", [(37, 53), (5, 6), (48, 64)])
def test_predictor_end_to_end_random_weights(shape):
    from nuggy.runtime.torch import FBAPredictor

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    h, w = shape
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:, : w // 3] = 0
    trimap[:, -w // 3 :] = 255
    alpha, fg, bg = FBAPredictor(model=_tiny()).predict(image, trimap)
    assert alpha.shape == (h, w) and fg.shape == bg.shape == (h, w, 3)
    assert alpha.dtype == fg.dtype == bg.dtype == np.float32
    for a in (alpha, fg, bg):
        assert a.min() >= 0 and a.max() <= 1
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()
    np.testing.assert_allclose(fg[trimap == 255], image[trimap == 255] / 255.0, atol=1e-6)
    np.testing.assert_allclose(bg[trimap == 0], image[trimap == 0] / 255.0, atol=1e-6)


def test_predictor_rejects_bad_input():
    from nuggy.runtime.torch import FBAPredictor

    p = FBAPredictor(model=_tiny())
    with pytest.raises(ValueError, match="trimap shape"):
        p.predict(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        p.predict(np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="weights"):
        FBAPredictor()
