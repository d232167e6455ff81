"""U²-Net, U²-Net-P, IS-Net and its GT encoder: shapes, gradients, strict upstream loading."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from nuggy.models import create_model, load_checkpoint, load_state_dict_strict  # noqa: E402

pytestmark = pytest.mark.torch


# ---------------------------------------------------------------------------------------------
# Reference key lists, written from the authors' code (xuebinqin/U-2-Net model/u2net.py and
# xuebinqin/DIS IS-Net/models/isnet.py): every REBNCONV is conv_s1 (3×3, bias) + bn_s1, an
# RSU-L block has rebnconvin, rebnconv1…rebnconvL, rebnconv(L-1)d…rebnconv1d (RSU-4F the same
# names as RSU-4).


def _bn(p: str, c: int) -> dict:
    return {
        f"{p}.weight": (c,),
        f"{p}.bias": (c,),
        f"{p}.running_mean": (c,),
        f"{p}.running_var": (c,),
        f"{p}.num_batches_tracked": (),
    }


def _rebnconv(p: str, cin: int, cout: int) -> dict:
    return {
        f"{p}.conv_s1.weight": (cout, cin, 3, 3),
        f"{p}.conv_s1.bias": (cout,),
        **_bn(f"{p}.bn_s1", cout),
    }


def _rsu(p: str, L: int, cin: int, mid: int, cout: int) -> dict:
    d = _rebnconv(f"{p}.rebnconvin", cin, cout)
    d |= _rebnconv(f"{p}.rebnconv1", cout, mid)
    for i in range(2, L + 1):
        d |= _rebnconv(f"{p}.rebnconv{i}", mid, mid)
    for i in range(L - 1, 1, -1):
        d |= _rebnconv(f"{p}.rebnconv{i}d", 2 * mid, mid)
    d |= _rebnconv(f"{p}.rebnconv1d", 2 * mid, cout)
    return d


def _conv(p: str, cin: int, cout: int, k: int) -> dict:
    return {f"{p}.weight": (cout, cin, k, k), f"{p}.bias": (cout,)}


U2NET_STAGES = {  # name: (L, in, mid, out) from U2NET.__init__
    "stage1": (7, 3, 32, 64), "stage2": (6, 64, 32, 128), "stage3": (5, 128, 64, 256),
    "stage4": (4, 256, 128, 512), "stage5": (4, 512, 256, 512), "stage6": (4, 512, 256, 512),
    "stage5d": (4, 1024, 256, 512), "stage4d": (4, 1024, 128, 256), "stage3d": (5, 512, 64, 128),
    "stage2d": (6, 256, 32, 64), "stage1d": (7, 128, 16, 64),
}  # fmt: skip
U2NET_SIDES = (64, 64, 128, 256, 512, 512)
U2NETP_STAGES = {
    "stage1": (7, 3, 16, 64), "stage2": (6, 64, 16, 64), "stage3": (5, 64, 16, 64),
    "stage4": (4, 64, 16, 64), "stage5": (4, 64, 16, 64), "stage6": (4, 64, 16, 64),
    "stage5d": (4, 128, 16, 64), "stage4d": (4, 128, 16, 64), "stage3d": (5, 128, 16, 64),
    "stage2d": (6, 128, 16, 64), "stage1d": (7, 128, 16, 64),
}  # fmt: skip
U2NETP_SIDES = (64,) * 6
ISNET_STAGES = dict(U2NET_STAGES, stage1=(7, 64, 32, 64))
GT_STAGES = {
    "stage1": (7, 16, 16, 64), "stage2": (6, 64, 16, 64), "stage3": (5, 64, 32, 128),
    "stage4": (4, 128, 32, 256), "stage5": (4, 256, 64, 512), "stage6": (4, 512, 64, 512),
}  # fmt: skip
GT_SIDES = (64, 64, 128, 256, 512, 512)


def upstream_keys(arch: str) -> dict[str, tuple[int, ...]]:
    stages, sides = {
        "u2net": (U2NET_STAGES, U2NET_SIDES),
        "u2netp": (U2NETP_STAGES, U2NETP_SIDES),
        "isnet": (ISNET_STAGES, U2NET_SIDES),
        "isnet_gt_encoder": (GT_STAGES, GT_SIDES),
    }[arch]
    d: dict = {}
    if arch == "isnet":
        d |= _conv("conv_in", 3, 64, 3)
    if arch == "isnet_gt_encoder":
        d |= {"conv_in.conv.weight": (16, 1, 3, 3), "conv_in.conv.bias": (16,)}
        d |= _bn("conv_in.bn", 16)
    for name, (L, cin, mid, cout) in stages.items():
        d |= _rsu(name, L, cin, mid, cout)
    for i, c in enumerate(sides, 1):
        d |= _conv(f"side{i}", c, 1, 3)
    if arch.startswith("u2net"):
        d |= _conv("outconv", 6, 1, 1)
    return d


def _numbered_state_dict(keys: dict) -> dict:
    """One distinct constant per tensor so misplaced tensors are caught."""
    sd = {}
    for i, (k, shape) in enumerate(keys.items()):
        dtype = torch.long if k.endswith("num_batches_tracked") else torch.float32
        value = float(i) + (1.0 if k.endswith("running_var") else 0.0)
        sd[k] = torch.full(shape, value, dtype=dtype)
    return sd


def _n_params(keys: dict) -> int:
    n = 0
    for k, s in keys.items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        n += int(torch.tensor(s).prod().item()) if s else 1
    return n


ARCHS = ["u2net", "u2netp", "isnet", "isnet_gt_encoder"]


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arch,published",
    [("u2net", 44.0e6), ("u2netp", 1.13e6), ("isnet", 44.0e6), ("isnet_gt_encoder", None)],
)
def test_parameter_counts(arch, published):
    with torch.device("meta"):
        model = create_model(arch)
    n = sum(p.numel() for p in model.parameters())
    assert n == _n_params(upstream_keys(arch))
    if published:
        assert abs(n - published) / published < 0.01, n
    expected = {"u2net": 44_009_869, "u2netp": 1_131_181, "isnet": 44_046_790}
    if arch in expected:
        assert n == expected[arch]


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_matches_upstream_layout(arch):
    with torch.device("meta"):
        model = create_model(arch)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert own == upstream_keys(arch)


@pytest.mark.parametrize("arch", ["u2netp", "isnet_gt_encoder"])
def test_strict_load_places_every_tensor(arch):
    sd = _numbered_state_dict(upstream_keys(arch))
    model = create_model(arch)
    load_state_dict_strict(model, sd)
    got = model.state_dict()
    for k, v in sd.items():
        assert torch.equal(got[k], v), k


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["u2net", "isnet"])
def test_strict_load_full_size(arch):
    sd = _numbered_state_dict(upstream_keys(arch))
    model = create_model(arch)
    load_state_dict_strict(model, sd)
    got = model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in sd.items())


@pytest.mark.parametrize("arch", ["u2netp"])
def test_missing_extra_and_misshaped_keys_raise(arch):
    sd = _numbered_state_dict(upstream_keys(arch))
    model = create_model(arch)
    missing = dict(sd)
    del missing["stage3.rebnconv2d.conv_s1.weight"]
    with pytest.raises(RuntimeError, match="missing.*stage3.rebnconv2d.conv_s1.weight"):
        load_state_dict_strict(model, missing)
    extra = dict(sd, **{"stage7.rebnconvin.conv_s1.weight": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="unexpected.*stage7"):
        load_state_dict_strict(model, extra)
    bad = dict(sd, **{"side1.weight": torch.zeros(1, 32, 3, 3)})
    with pytest.raises(RuntimeError, match="wrong shape.*side1.weight"):
        load_state_dict_strict(model, bad)


def test_load_checkpoint_file_with_module_prefix_and_old_bn(tmp_path):
    """DataParallel ``module.`` prefixes are stripped; PyTorch < 0.4.1 checkpoints lack
    ``num_batches_tracked``."""
    sd = _numbered_state_dict(upstream_keys("u2netp"))
    old = {f"module.{k}": v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "u2netp.pth"
    torch.save(old, path)
    model = load_checkpoint("u2netp", path)
    assert not model.training
    assert torch.equal(model.state_dict()["outconv.weight"], sd["outconv.weight"])
    torch.save({"state_dict": sd, "epoch": 3}, path)
    load_checkpoint("u2netp", path)


def _tiny(arch: str):
    return create_model(arch, width_divisor=8 if arch != "u2netp" else 4)


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_forward_backward_every_parameter_gets_a_gradient(arch):
    torch.manual_seed(0)
    model = _tiny(arch).train()
    cin = 1 if arch == "isnet_gt_encoder" else 3
    x = torch.randn(2, cin, 64, 64)
    out = model(x)
    maps = out[0] if arch.startswith("isnet") else out
    assert len(maps) == (6 if arch.startswith("isnet") else 7)
    for m in maps:
        assert m.shape == (2, 1, 64, 64)
        assert float(m.detach().min()) >= 0.0 and float(m.detach().max()) <= 1.0
    loss = sum(torch.nn.functional.binary_cross_entropy(m, torch.rand_like(m)) for m in maps)
    if arch.startswith("isnet"):
        loss = loss + sum(f.square().mean() for f in out[1])
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        # a conv bias right before a training-mode BatchNorm is cancelled by the BN's mean
        # subtraction (as upstream): its gradient is ~0 by construction
        if not name.endswith(("conv_s1.bias", "conv_in.conv.bias")):
            assert float(p.grad.abs().sum()) > 0, name


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", [(33, 47), (1, 1), (321, 17)])
def test_odd_sizes(arch, size):
    model = _tiny(arch).eval()
    cin = 1 if arch == "isnet_gt_encoder" else 3
    with torch.no_grad():
        out = model(torch.randn(1, cin, *size))
    maps = out[0] if arch.startswith("isnet") else out
    assert all(m.shape == (1, 1, *size) for m in maps)


def test_isnet_features_match_gt_encoder_features():
    """Intermediate supervision compares ISNetDIS features with the GT encoder's: same shapes."""
    net = create_model("isnet", width_divisor=8).eval()
    gt = create_model("isnet_gt_encoder", width_divisor=8).eval()
    with torch.no_grad():
        _, f_net = net(torch.randn(1, 3, 96, 80))
        _, f_gt = gt(torch.rand(1, 1, 96, 80))
    assert [f.shape for f in f_net] == [f.shape for f in f_gt]
    assert f_net[0].shape[-2:] == (48, 40)


def test_forward_logits_consistent():
    model = _tiny("u2netp").eval()
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        probs, logits = model(x), model.forward_logits(x)
    for p, lg in zip(probs, logits):
        assert torch.allclose(p, torch.sigmoid(lg))


def test_width_divisor_must_divide():
    with pytest.raises(ValueError, match="divisible"):
        create_model("u2netp", width_divisor=3)
