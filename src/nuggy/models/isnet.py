"""IS-Net (Qin et al., "Highly Accurate Dichotomous Image Segmentation", ECCV 2022).

:class:`ISNetDIS` is the segmentation network; :class:`ISNetGTEncoder` is the ground-truth
auto-encoder used for intermediate (feature-level) supervision while training it.
Parameter names follow the authors' ``IS-Net/models/isnet.py`` so ``isnet.pth`` and
``isnet-general-use.pth`` load strictly after :func:`remap_isnet_checkpoint`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch
from torch import Tensor, nn

from .registry import register_model, strip_prefixes
from .u2net import (
    RSU,
    U2NET_FULL,
    RSUEncoderDecoder,
    RSUSpec,
    _div,
    _pool,
    scale_specs,
    upsample_like,
)

__all__ = [
    "ISNetDIS",
    "ISNetGTEncoder",
    "ISNET_GT_ENCODER",
    "isnet",
    "isnet_gt_encoder",
    "remap_isnet_checkpoint",
]


class ISNetDIS(RSUEncoderDecoder):
    """IS-Net segmentation network.

    A stride-2 3×3 stem conv (``conv_in``, no norm) feeds the U²-Net body; six side maps are
    resized to the input. ``forward``: ``(N, in_ch, H, W)`` → ``(maps, features)`` where
    ``maps`` are 6 probability maps ``(N, out_ch, H, W)`` (``maps[0]`` is the prediction) and
    ``features`` the decoder outputs ``[stage1d … stage5d, stage6]`` (strides 2 … 64) that the
    intermediate supervision compares with :class:`ISNetGTEncoder`'s.
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 1,
        stem_ch: int = 64,
        encoder: tuple[RSUSpec, ...] | None = None,
        decoder: tuple[RSUSpec, ...] = U2NET_FULL["decoder"],
    ) -> None:
        super().__init__()
        if encoder is None:
            encoder = (replace(U2NET_FULL["encoder"][0], in_ch=stem_ch),) + U2NET_FULL["encoder"][1:]
        self.conv_in = nn.Conv2d(in_ch, stem_ch, 3, stride=2, padding=1)
        self._build_body(encoder, decoder, out_ch)

    def forward_logits(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        feats = self._run_body(self.conv_in(x))
        maps = [upsample_like(getattr(self, f"side{i}")(f), x) for i, f in enumerate(feats, 1)]
        return maps, feats

    def forward(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        maps, feats = self.forward_logits(x)
        return [torch.sigmoid(m) for m in maps], feats


class _StemConvBNReLU(nn.Module):
    """Stride-2 3×3 conv → BN → ReLU with upstream ``myrebnconv`` names (conv, bn, rl)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(out_ch)
        self.rl = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.rl(self.bn(self.conv(x)))


ISNET_GT_ENCODER: tuple[RSUSpec, ...] = (
    RSUSpec(7, 16, 16, 64),
    RSUSpec(6, 64, 16, 64),
    RSUSpec(5, 64, 32, 128),
    RSUSpec(4, 128, 32, 256),
    RSUSpec(4, 256, 64, 512, dilated=True),
    RSUSpec(4, 512, 64, 512, dilated=True),
)


class ISNetGTEncoder(nn.Module):
    """Ground-truth encoder of IS-Net (trained first, then frozen, for feature supervision).

    ``forward``: mask ``(N, in_ch, H, W)`` → ``(maps, features)``: 6 probability maps
    ``(N, out_ch, H, W)`` and the encoder features ``[stage1 … stage6]`` (strides 2 … 64),
    shaped like :class:`ISNetDIS`'s features.
    """

    def __init__(
        self,
        in_ch: int = 1,
        out_ch: int = 1,
        stem_ch: int = 16,
        encoder: tuple[RSUSpec, ...] = ISNET_GT_ENCODER,
    ) -> None:
        super().__init__()
        self.conv_in = _StemConvBNReLU(in_ch, stem_ch)
        self.num_stages = len(encoder)
        for i, spec in enumerate(encoder, start=1):
            self.add_module(f"stage{i}", RSU(spec))
            self.add_module(f"side{i}", nn.Conv2d(spec.out_ch, out_ch, 3, padding=1))

    def forward_logits(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        h = self.conv_in(x)
        feats: list[Tensor] = []
        for i in range(1, self.num_stages + 1):
            h = getattr(self, f"stage{i}")(h)
            feats.append(h)
            if i < self.num_stages:
                h = _pool(h)
        maps = [upsample_like(getattr(self, f"side{i}")(f), x) for i, f in enumerate(feats, 1)]
        return maps, feats

    def forward(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        maps, feats = self.forward_logits(x)
        return [torch.sigmoid(m) for m in maps], feats


def remap_isnet_checkpoint(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official ``isnet.pth`` / ``isnet-general-use.pth`` (and GT-encoder checkpoints) → our keys.

    Names already match; strips ``module.`` wrappers.
    """
    return strip_prefixes(state_dict)


@register_model("isnet", remap=remap_isnet_checkpoint)
def isnet(*, in_ch: int = 3, out_ch: int = 1, width_divisor: int = 1) -> ISNetDIS:
    """IS-Net (44.0 M parameters). ``width_divisor`` shrinks every channel count (tests)."""
    stem = _div(64, width_divisor)
    enc = scale_specs(U2NET_FULL["encoder"], width_divisor)
    enc = (replace(enc[0], in_ch=stem), *enc[1:])
    dec = scale_specs(U2NET_FULL["decoder"], width_divisor, keep_first_input=False)
    return ISNetDIS(in_ch, out_ch, stem, enc, dec)


@register_model("isnet_gt_encoder", remap=remap_isnet_checkpoint)
def isnet_gt_encoder(*, in_ch: int = 1, out_ch: int = 1, width_divisor: int = 1) -> ISNetGTEncoder:
    """IS-Net ground-truth encoder (intermediate supervision)."""
    stem = _div(16, width_divisor)
    enc = scale_specs(ISNET_GT_ENCODER, width_divisor, keep_first_input=False)
    return ISNetGTEncoder(in_ch, out_ch, stem, enc)
