"""U²-Net and U²-Net-P (Qin et al., 2020), and the RSU blocks that IS-Net shares.

Parameter and buffer names follow the authors' ``model/u2net.py`` (``stage1.rebnconvin.conv_s1
.weight`` …), so the published ``u2net.pth`` / ``u2netp.pth`` load strictly after
:func:`remap_u2net_checkpoint` (which only strips wrappers such as ``module.``).

Shapes: input ``(N, 3, H, W)`` (any H, W ≥ 1; the pools use ``ceil_mode`` and every decoder
step resizes to its skip connection), seven outputs ``(N, 1, H, W)``: the fused map first,
then the side maps d1…d6.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import register_model, strip_prefixes

__all__ = [
    "RSUSpec",
    "ConvBNReLU",
    "RSU",
    "U2Net",
    "U2NET_FULL",
    "U2NET_SMALL",
    "scale_specs",
    "u2net",
    "u2netp",
    "upsample_like",
    "remap_u2net_checkpoint",
]


def upsample_like(x: Tensor, ref: Tensor) -> Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``ref`` (half-pixel centres)."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def _pool(x: Tensor) -> Tensor:
    return F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)


@dataclass(frozen=True)
class RSUSpec:
    """One residual U-block: ``height`` levels, channels in → mid → out.

    ``dilated`` selects the RSU-4F form (no pooling; dilations 1, 2, 4, 8 instead).
    """

    height: int
    in_ch: int
    mid_ch: int
    out_ch: int
    dilated: bool = False


class ConvBNReLU(nn.Module):
    """3×3 conv (dilation ``d``, padding ``d``) → BatchNorm → ReLU; upstream ``REBNCONV``."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation)
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """Residual U-block RSU-L (or RSU-4F when ``dilated``).

    ``(N, in_ch, H, W) -> (N, out_ch, H, W)``. Children: ``rebnconvin``, ``rebnconv1`` …
    ``rebnconv{L}`` (encoder, the last one dilated), ``rebnconv{L-1}d`` … ``rebnconv1d``.
    """

    def __init__(self, spec: RSUSpec) -> None:
        super().__init__()
        L, cin, mid, cout = spec.height, spec.in_ch, spec.mid_ch, spec.out_ch
        if L < 2:
            raise ValueError(f"RSU height must be >= 2, got {L}")
        self.height = L
        self.dilated = spec.dilated
        self.rebnconvin = ConvBNReLU(cin, cout)
        for i in range(1, L + 1):
            if spec.dilated:
                d = 2 ** (i - 1)
            else:
                d = 2 if i == L else 1
            self.add_module(f"rebnconv{i}", ConvBNReLU(cout if i == 1 else mid, mid, d))
        for i in range(L - 1, 0, -1):
            d = 2 ** (i - 1) if spec.dilated else 1
            self.add_module(f"rebnconv{i}d", ConvBNReLU(2 * mid, cout if i == 1 else mid, d))

    def forward(self, x: Tensor) -> Tensor:
        L = self.height
        hxin = self.rebnconvin(x)
        skips: list[Tensor] = []
        h = hxin
        for i in range(1, L):
            h = getattr(self, f"rebnconv{i}")(h)
            skips.append(h)
            if not self.dilated and i < L - 1:
                h = _pool(h)
        h = getattr(self, f"rebnconv{L}")(h)
        for i in range(L - 1, 0, -1):
            h = getattr(self, f"rebnconv{i}d")(torch.cat((h, skips[i - 1]), 1))
            if not self.dilated and i > 1:
                h = upsample_like(h, skips[i - 2])
        return h + hxin


U2NET_FULL: dict[str, tuple[RSUSpec, ...]] = {
    "encoder": (
        RSUSpec(7, 3, 32, 64),
        RSUSpec(6, 64, 32, 128),
        RSUSpec(5, 128, 64, 256),
        RSUSpec(4, 256, 128, 512),
        RSUSpec(4, 512, 256, 512, dilated=True),
        RSUSpec(4, 512, 256, 512, dilated=True),
    ),
    # stage5d, stage4d, stage3d, stage2d, stage1d
    "decoder": (
        RSUSpec(4, 1024, 256, 512, dilated=True),
        RSUSpec(4, 1024, 128, 256),
        RSUSpec(5, 512, 64, 128),
        RSUSpec(6, 256, 32, 64),
        RSUSpec(7, 128, 16, 64),
    ),
}

U2NET_SMALL: dict[str, tuple[RSUSpec, ...]] = {
    "encoder": (
        RSUSpec(7, 3, 16, 64),
        RSUSpec(6, 64, 16, 64),
        RSUSpec(5, 64, 16, 64),
        RSUSpec(4, 64, 16, 64),
        RSUSpec(4, 64, 16, 64, dilated=True),
        RSUSpec(4, 64, 16, 64, dilated=True),
    ),
    "decoder": (
        RSUSpec(4, 128, 16, 64, dilated=True),
        RSUSpec(4, 128, 16, 64),
        RSUSpec(5, 128, 16, 64),
        RSUSpec(6, 128, 16, 64),
        RSUSpec(7, 128, 16, 64),
    ),
}


def _div(c: int, divisor: int) -> int:
    if c % divisor:
        raise ValueError(f"channel count {c} is not divisible by width_divisor={divisor}")
    return c // divisor


def scale_specs(
    specs: Sequence[RSUSpec], divisor: int, *, keep_first_input: bool = True
) -> tuple[RSUSpec, ...]:
    """Divide every channel count by ``divisor`` (for tiny test variants).

    The first block's input (the image channels) is kept when ``keep_first_input``.
    """
    if divisor == 1:
        return tuple(specs)
    out = []
    for k, s in enumerate(specs):
        cin = s.in_ch if (k == 0 and keep_first_input) else _div(s.in_ch, divisor)
        out.append(replace(s, in_ch=cin, mid_ch=_div(s.mid_ch, divisor), out_ch=_div(s.out_ch, divisor)))
    return tuple(out)


class RSUEncoderDecoder(nn.Module):
    """Shared body of U²-Net and IS-Net: RSU encoder ``stage1…stageN`` (2× max-pool between
    stages), RSU decoder ``stage{N-1}d…stage1d`` and 3×3 side convs ``side1…sideN``."""

    def _build_body(self, encoder: Sequence[RSUSpec], decoder: Sequence[RSUSpec], out_ch: int) -> None:
        if len(decoder) != len(encoder) - 1:
            raise ValueError("need exactly one decoder stage fewer than encoder stages")
        n = len(encoder)
        self.num_stages = n
        for i, spec in enumerate(encoder, start=1):
            self.add_module(f"stage{i}", RSU(spec))
        for j, spec in enumerate(decoder):
            self.add_module(f"stage{n - 1 - j}d", RSU(spec))
        # side i reads decoder stage i (i < n) or the deepest encoder stage (i == n)
        side_in = [decoder[n - 1 - i].out_ch for i in range(1, n)] + [encoder[-1].out_ch]
        for i, c in enumerate(side_in, start=1):
            self.add_module(f"side{i}", nn.Conv2d(c, out_ch, 3, padding=1))

    def _run_body(self, x: Tensor) -> list[Tensor]:
        """Features ``[stage1d, …, stage{N-1}d, stageN]`` (finest first)."""
        n = self.num_stages
        enc: list[Tensor] = []
        h = x
        for i in range(1, n + 1):
            h = getattr(self, f"stage{i}")(h)
            enc.append(h)
            if i < n:
                h = _pool(h)
        dec: list[Tensor] = [h]
        for i in range(n - 1, 0, -1):
            skip = enc[i - 1]
            h = getattr(self, f"stage{i}d")(torch.cat((upsample_like(h, skip), skip), 1))
            dec.append(h)
        return dec[::-1]


class U2Net(RSUEncoderDecoder):
    """U²-Net: nested U-structure salient-object network.

    ``forward``: ``(N, in_ch, H, W)`` → tuple of 7 probability maps ``(N, out_ch, H, W)``:
    the fused map d0 first, then side maps d1…d6. ``forward_logits`` gives the same before
    the sigmoid (use it with ``BCEWithLogitsLoss``).
    """

    def __init__(
        self,
        encoder: Sequence[RSUSpec] = U2NET_FULL["encoder"],
        decoder: Sequence[RSUSpec] = U2NET_FULL["decoder"],
        out_ch: int = 1,
    ) -> None:
        super().__init__()
        self._build_body(encoder, decoder, out_ch)
        self.outconv = nn.Conv2d(self.num_stages * out_ch, out_ch, 1)

    def forward_logits(self, x: Tensor) -> tuple[Tensor, ...]:
        feats = self._run_body(x)
        d1 = self.side1(feats[0])
        sides = [d1] + [
            upsample_like(getattr(self, f"side{i}")(f), d1) for i, f in enumerate(feats[1:], start=2)
        ]
        d0 = self.outconv(torch.cat(sides, 1))
        return (d0, *sides)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(torch.sigmoid(d) for d in self.forward_logits(x))


def _configured(cfg: Mapping[str, Sequence[RSUSpec]], width_divisor: int, in_ch: int):
    enc = scale_specs(cfg["encoder"], width_divisor)
    enc = (replace(enc[0], in_ch=in_ch), *enc[1:])
    dec = scale_specs(cfg["decoder"], width_divisor, keep_first_input=False)
    return enc, dec


def remap_u2net_checkpoint(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official ``u2net.pth`` / ``u2netp.pth`` → :class:`U2Net` keys (names already match;
    strips ``module.`` wrappers)."""
    return strip_prefixes(state_dict)


@register_model("u2net", remap=remap_u2net_checkpoint)
def u2net(*, in_ch: int = 3, out_ch: int = 1, width_divisor: int = 1) -> U2Net:
    """U²-Net (44.0 M parameters). ``width_divisor`` shrinks every channel count (tests)."""
    enc, dec = _configured(U2NET_FULL, width_divisor, in_ch)
    return U2Net(enc, dec, out_ch)


@register_model("u2netp", remap=remap_u2net_checkpoint)
def u2netp(*, in_ch: int = 3, out_ch: int = 1, width_divisor: int = 1) -> U2Net:
    """U²-Net-P, the small variant (1.13 M parameters)."""
    enc, dec = _configured(U2NET_SMALL, width_divisor, in_ch)
    return U2Net(enc, dec, out_ch)
