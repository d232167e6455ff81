"""FBA Matting (Forte & Pitié, "F, B, Alpha Matting", 2020).

A ResNet-50 encoder with Group Norm and Weight Standardisation (layers 3 and 4 dilated, output
stride 8) reads an 11-channel input: the ImageNet-normalised image (3), six Gaussian
distance-transform "click" maps of the trimap (6) and the two-channel trimap (2). A pyramid-
pooling decoder predicts alpha, foreground F and background B, which :func:`fba_fusion` then
makes mutually consistent.

Parameter names follow the authors' ``networks/models.py`` (``encoder.layer1.0.conv1.weight``,
``decoder.ppm.0.1.weight`` …) so ``FBA.pth`` loads strictly after :func:`remap_fba_checkpoint`.

The input encodings (:func:`trimap_two_channel`, :func:`trimap_clicks`,
:func:`normalise_image`) are pure NumPy functions; :class:`nuggy.runtime.torch.FBAPredictor`
runs the whole thing on an image and a trimap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import register_model, strip_prefixes

__all__ = [
    "WSConv2d",
    "FBAEncoder",
    "FBADecoder",
    "FBAMatting",
    "fba_fusion",
    "fba",
    "remap_fba_checkpoint",
    "trimap_two_channel",
    "trimap_clicks",
    "normalise_image",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "STRIDE",
]

from nuggy.registry import IMAGENET_MEAN_UNIT as IMAGENET_MEAN  # noqa: E402
from nuggy.registry import IMAGENET_STD_UNIT as IMAGENET_STD  # noqa: E402

#: Input height and width must be multiples of this.
STRIDE = 8


# --------------------------------------------------------------------------- layers


class WSConv2d(nn.Conv2d):
    """Conv2d with Weight Standardisation (Qiao et al. 2019).

    Each output filter is standardised to zero mean and unit (biased) variance over its
    ``in × kh × kw`` weights, ``eps`` = 1e-5, on every forward pass (train and eval alike).
    Upstream standardises the stored weight in place when switching modes; in eval mode the
    two are identical.
    """

    def __init__(self, *args, eps: float = 1e-5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps

    def standardized_weight(self) -> Tensor:
        w = self.weight
        flat = w.reshape(w.shape[0], -1)
        mean = flat.mean(dim=1, keepdim=True)
        var = flat.var(dim=1, unbiased=False, keepdim=True)
        return ((flat - mean) / torch.sqrt(var + self.eps)).reshape_as(w)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.standardized_weight(), self.bias)


def _gn(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3×3 conv) with GN + WS convs."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 32,
    ) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = WSConv2d(inplanes, planes, 1, bias=False)
        self.bn1 = _gn(planes, groups)
        self.conv2 = WSConv2d(
            planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = _gn(planes, groups)
        self.conv3 = WSConv2d(planes, out, 1, bias=False)
        self.bn3 = _gn(out, groups)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class FBAEncoder(nn.Module):
    """Dilated GN+WS ResNet-50 (output stride 8).

    ``forward``: ``(N, in_ch, H, W)`` → ``[x, stem (N, stem, H/2, W/2), layer1 (H/4),
    layer2 (H/8), layer3 (H/8), layer4 (N, 4·widths[3], H/8, W/8)]``.
    """

    def __init__(
        self,
        in_ch: int = 11,
        layers: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_width: int = 64,
        groups: int = 32,
    ) -> None:
        super().__init__()
        self.groups = groups
        self.conv1 = WSConv2d(in_ch, stem_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = _gn(stem_width, groups)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes = stem_width
        # (stride of the original ResNet, dilation of the first block, dilation of the rest)
        plan = ((1, 1, 1), (2, 1, 1), (2, 1, 2), (2, 2, 4))
        for i, (n, w, (stride, d_first, d_rest)) in enumerate(zip(layers, widths, plan), 1):
            self.add_module(f"layer{i}", self._make_layer(w, n, stride, d_first, d_rest))
        self.out_channels = widths[-1] * Bottleneck.expansion

    def _make_layer(self, planes: int, blocks: int, stride: int, d_first: int, d_rest: int) -> nn.Sequential:
        out = planes * Bottleneck.expansion
        # layers 3 and 4 keep their (1×1) downsample branch but lose its stride (dilated)
        dilated = d_rest > 1
        s = 1 if dilated else stride
        downsample = None
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(
                WSConv2d(self.inplanes, out, 1, stride=s, bias=False), _gn(out, self.groups)
            )
        mods = [Bottleneck(self.inplanes, planes, s, d_first, downsample, self.groups)]
        self.inplanes = out
        mods += [Bottleneck(out, planes, 1, d_rest, None, self.groups) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [x]
        h = self.relu(self.bn1(self.conv1(x)))
        feats.append(h)
        h = self.maxpool(h)
        for i in range(1, 5):
            h = getattr(self, f"layer{i}")(h)
            feats.append(h)
        return feats


class FBADecoder(nn.Module):
    """Pyramid-pooling decoder: features → raw ``(N, 7, H, W)`` (alpha, F, B before fusion)."""

    def __init__(
        self,
        in_ch: int = 2048,
        skip_ch: int = 256,
        stem_ch: int = 64,
        ppm_width: int = 256,
        width: int = 256,
        fine_width: int = 64,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        groups: int = 32,
    ) -> None:
        super().__init__()
        self.ppm = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(s),
                WSConv2d(in_ch, ppm_width, 1, bias=True),
                _gn(ppm_width, groups),
                nn.LeakyReLU(),
            )
            for s in pool_scales
        )
        self.conv_up1 = nn.Sequential(
            WSConv2d(in_ch + len(pool_scales) * ppm_width, width, 3, padding=1, bias=True),
            _gn(width, groups),
            nn.LeakyReLU(),
            WSConv2d(width, width, 3, padding=1, bias=True),
            _gn(width, groups),
            nn.LeakyReLU(),
        )
        self.conv_up2 = nn.Sequential(
            WSConv2d(width + skip_ch, width, 3, padding=1, bias=True),
            _gn(width, groups),
            nn.LeakyReLU(),
        )
        self.conv_up3 = nn.Sequential(
            WSConv2d(width + stem_ch, fine_width, 3, padding=1, bias=True),
            _gn(fine_width, groups),
            nn.LeakyReLU(),
        )
        self.conv_up4 = nn.Sequential(
            nn.Conv2d(fine_width + 3 + 3 + 2, 32, 3, padding=1, bias=True),
            nn.LeakyReLU(),
            nn.Conv2d(32, 16, 3, padding=1, bias=True),
            nn.LeakyReLU(),
            nn.Conv2d(16, 7, 1, bias=True),
        )

    def forward(self, feats: list[Tensor], image: Tensor, trimap: Tensor) -> Tensor:
        """``feats`` from :class:`FBAEncoder`; ``image`` ``(N,3,H,W)`` in [0, 1]; ``trimap``
        ``(N,2,H,W)`` → ``(N,7,H,W)``: alpha clamped to [0, 1], sigmoid F and B."""
        top = feats[-1]
        size = top.shape[-2:]
        pyramid = [top] + [
            F.interpolate(p(top), size=size, mode="bilinear", align_corners=False) for p in self.ppm
        ]
        x = self.conv_up1(torch.cat(pyramid, 1))
        x = _up2(x, feats[2])
        x = self.conv_up2(torch.cat((x, feats[2]), 1))
        x = _up2(x, feats[1])
        x = self.conv_up3(torch.cat((x, feats[1]), 1))
        x = _up2(x, image)
        out = self.conv_up4(torch.cat((x, feats[0][:, :3], image, trimap), 1))
        alpha = out[:, :1].clamp(0, 1)
        return torch.cat((alpha, torch.sigmoid(out[:, 1:7])), 1)


def _up2(x: Tensor, ref: Tensor) -> Tensor:
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def fba_fusion(
    alpha: Tensor, image: Tensor, fg: Tensor, bg: Tensor, la: float = 0.1
) -> tuple[Tensor, Tensor, Tensor]:
    """FBA's fusion step: make alpha, F and B consistent with ``image ≈ αF + (1−α)B``.

    Follows the official ``fba_fusion`` step by step (the published checkpoint was trained
    with it), in this order:

    1. ``F' = α·I + (1−α²)·F − α(1−α)·B``
    2. ``B' = (1−α)·I + (2α−α²)·B − α(1−α)·F'`` — from the *new, unclipped* ``F'``, not the
       decoder's ``F`` (read as simultaneous equations, the update would use ``F``);
    3. clip ``F'`` and ``B'`` to [0, 1];
    4. ``α' = (la·α + Σ_c (I−B')(F'−B')) / (Σ_c (F'−B')² + la)``, clipped to [0, 1].

    Shapes: alpha ``(N,1,H,W)``; image, fg, bg ``(N,3,H,W)``, float, in [0, 1]; ``la`` = 0.1 as
    upstream. Returns ``(alpha, fg, bg)`` with the input shapes, all in [0, 1].
    """
    a = alpha
    fg_new = a * image + (1 - a**2) * fg - a * (1 - a) * bg
    bg_new = (1 - a) * image + (2 * a - a**2) * bg - a * (1 - a) * fg_new
    fg_new = fg_new.clamp(0, 1)
    bg_new = bg_new.clamp(0, 1)
    diff = fg_new - bg_new
    num = a * la + ((image - bg_new) * diff).sum(1, keepdim=True)
    den = (diff * diff).sum(1, keepdim=True) + la
    return (num / den).clamp(0, 1), fg_new, bg_new


class FBAMatting(nn.Module):
    """FBA Matting network.

    ``forward(image, trimap, image_n, clicks)``: ``image`` ``(N,3,H,W)`` RGB in [0, 1],
    ``trimap`` ``(N,2,H,W)`` (channel 0 = definite background, 1 = definite foreground),
    ``image_n`` the ImageNet-normalised image ``(N,3,H,W)``, ``clicks`` ``(N,6,H,W)``
    (:func:`trimap_clicks`) → ``(N,7,H,W)``: alpha, F (3), B (3), all in [0, 1], after
    :func:`fba_fusion` (``fuse=False`` returns the decoder's raw prediction).
    H and W must be multiples of :data:`STRIDE` (8); pad first (the predictor does).
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_width: int = 64,
        ppm_width: int = 256,
        decoder_width: int = 256,
        fine_width: int = 64,
        groups: int = 32,
        fuse: bool = True,
    ) -> None:
        super().__init__()
        self.fuse = fuse
        self.encoder = FBAEncoder(11, layers, widths, stem_width, groups)
        self.decoder = FBADecoder(
            in_ch=self.encoder.out_channels,
            skip_ch=widths[0] * Bottleneck.expansion,
            stem_ch=stem_width,
            ppm_width=ppm_width,
            width=decoder_width,
            fine_width=fine_width,
            groups=groups,
        )

    def forward(self, image: Tensor, trimap: Tensor, image_n: Tensor, clicks: Tensor) -> Tensor:
        h, w = image.shape[-2:]
        if h % STRIDE or w % STRIDE:
            raise ValueError(
                f"FBA input must be a multiple of {STRIDE} in height and width, got {h}×{w}; pad it first"
            )
        feats = self.encoder(torch.cat((image_n, clicks, trimap), 1))
        out = self.decoder(feats, image, trimap)
        if not self.fuse:
            return out
        out, image = out.float(), image.float()  # fusion in float32 under autocast too
        alpha, fg, bg = fba_fusion(out[:, :1], image, out[:, 1:4], out[:, 4:7])
        return torch.cat((alpha, fg, bg), 1)


def remap_fba_checkpoint(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official ``FBA.pth`` (``MattingModule`` with ``encoder.*`` / ``decoder.*``) → our keys.

    Names already match (``encoder.conv1.weight`` [64, 11, 7, 7], ``decoder.ppm.0.1.weight`` …);
    strips ``module.`` wrappers. The checkpoint has no ``fc``/``avgpool`` entries.
    """
    return strip_prefixes(state_dict)


@register_model("fba", remap=remap_fba_checkpoint)
def fba(*, width_divisor: int = 1, layers: Sequence[int] = (3, 4, 6, 3), fuse: bool = True) -> FBAMatting:
    """FBA Matting (ResNet-50 GN+WS encoder, 34.7 M parameters).

    ``width_divisor`` shrinks every channel count and the group count (tests).
    """
    d = width_divisor
    return FBAMatting(
        layers=layers,
        widths=tuple(w // d for w in (64, 128, 256, 512)),
        stem_width=64 // d,
        ppm_width=256 // d,
        decoder_width=256 // d,
        fine_width=64 // d,
        groups=max(1, 32 // d),
        fuse=fuse,
    )


# --------------------------------------------------------------------------- input encodings


def trimap_two_channel(trimap: np.ndarray) -> np.ndarray:
    """Trimap ``H×W`` uint8 (0 background, 255 foreground, anything else unknown) →
    ``H×W×2`` float32: channel 0 = 1 on definite background, channel 1 = 1 on definite
    foreground."""
    t = np.asarray(trimap)
    if t.ndim != 2:
        raise ValueError(f"expected an H×W trimap, got shape {t.shape}")
    if t.dtype != np.uint8:
        raise ValueError(f"expected a uint8 trimap (0/128/255), got {t.dtype}")
    out = np.zeros(t.shape + (2,), np.float32)
    out[..., 0] = t == 0
    out[..., 1] = t == 255
    return out


def trimap_clicks(two_channel: np.ndarray, L: float = 320.0) -> np.ndarray:
    """FBA's distance-transform encoding of a two-channel trimap: ``H×W×2`` → ``6×H×W`` float32.

    For each channel (background, then foreground) and σ ∈ {0.02, 0.08, 0.16}·``L``:
    ``exp(−d² / (2σ²))`` where ``d`` is the Euclidean distance to the nearest pixel of that
    class (1 on the class itself, decaying away from it; 0 everywhere if the class is absent).
    """
    from scipy import ndimage

    t = np.asarray(two_channel)
    if t.ndim != 3 or t.shape[2] != 2:
        raise ValueError(f"expected H×W×2, got shape {t.shape}")
    h, w = t.shape[:2]
    out = np.zeros((6, h, w), np.float32)
    for k in range(2):
        mask = t[..., k] > 0.5
        if not mask.any():
            continue
        # exact Euclidean distance in float64 (OpenCV's DIST_MASK_PRECISE is exact too, but
        # its multi-threaded float32 passes gave 1-ulp run-to-run differences, which broke
        # bit-exact training resumes)
        d2 = ndimage.distance_transform_edt(~mask) ** 2
        for j, s in enumerate((0.02, 0.08, 0.16)):
            out[3 * k + j] = np.exp(-d2 / (2 * (s * L) ** 2))
    return out


def normalise_image(image: np.ndarray) -> np.ndarray:
    """RGB ``H×W×3`` float in [0, 1] → ImageNet-normalised float32 ``H×W×3``."""
    x = np.asarray(image, np.float32)
    return (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
