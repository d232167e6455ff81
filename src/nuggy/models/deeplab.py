"""Class-aware segmentation with torchvision's DeepLabV3 (Pascal VOC classes).

:class:`DeepLabV3Segmenter` wraps a ``torchvision.models.segmentation.DeepLabV3`` and turns its
logits into per-class probabilities, so a class name (``"cat"``, ``"person"``) gives a
probability map. The published torchvision checkpoints (``deeplabv3_resnet50_coco-cd0a2569.pth``,
``deeplabv3_resnet101_coco-586e9e4e.pth``, ``deeplabv3_mobilenet_v3_large-fc3c493d.pth``) load
strictly through :func:`remap_torchvision_deeplab` (which prefixes ``net.`` and drops the
auxiliary head, unused at inference).

Pre-processing (not done here): RGB in [0, 1], ImageNet mean/std, shorter side resized to 520.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from .registry import register_model, strip_prefixes

__all__ = [
    "VOC_CLASSES",
    "DEEPLAB_MEAN",
    "DEEPLAB_STD",
    "DEEPLAB_RESIZE",
    "DeepLabV3Segmenter",
    "class_index",
    "deeplabv3",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
    "deeplabv3_mobilenet_v3_large",
    "remap_torchvision_deeplab",
]

#: The 21 output classes of torchvision's DeepLabV3 checkpoints (COCO subset with VOC labels).
VOC_CLASSES: tuple[str, ...] = (
    "__background__", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep",
    "sofa", "train", "tvmonitor",
)  # fmt: skip

from nuggy.registry import IMAGENET_MEAN_UNIT as DEEPLAB_MEAN  # noqa: E402
from nuggy.registry import IMAGENET_STD_UNIT as DEEPLAB_STD  # noqa: E402

#: torchvision's evaluation transform resizes the shorter side to this.
DEEPLAB_RESIZE = 520

_ALIASES = {
    "background": "__background__",
    "airplane": "aeroplane",
    "plane": "aeroplane",
    "bike": "bicycle",
    "motorcycle": "motorbike",
    "dining table": "diningtable",
    "table": "diningtable",
    "potted plant": "pottedplant",
    "plant": "pottedplant",
    "couch": "sofa",
    "tv": "tvmonitor",
    "monitor": "tvmonitor",
    "people": "person",
    "human": "person",
}


def class_index(name: str, classes: Sequence[str] = VOC_CLASSES) -> int:
    """Index of class ``name`` (case-insensitive; a few aliases such as ``airplane``)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return list(classes).index(key)
    except ValueError:
        known = ", ".join(c for c in classes if not c.startswith("_"))
        raise ValueError(f"unknown class {name!r}; known classes: {known}") from None


class DeepLabV3Segmenter(nn.Module):
    """Per-class probabilities from a torchvision DeepLabV3.

    ``forward``: normalised image ``(N, 3, H, W)`` → softmax probabilities ``(N, C, H, W)``
    (C = ``len(class_names)``). :meth:`class_probability` sums the requested classes into
    ``(N, 1, H, W)``.
    """

    def __init__(self, net: nn.Module, class_names: Sequence[str] = VOC_CLASSES) -> None:
        super().__init__()
        self.net = net
        self.class_names = tuple(class_names)

    def forward_logits(self, x: Tensor) -> Tensor:
        return self.net(x)["out"]

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(self.forward_logits(x), dim=1)

    def class_probability(self, x: Tensor, classes: str | Sequence[str]) -> Tensor:
        """Probability that each pixel belongs to any of ``classes``: ``(N, 1, H, W)``."""
        names = [classes] if isinstance(classes, str) else list(classes)
        idx = sorted({class_index(c, self.class_names) for c in names})
        return self(x)[:, idx].sum(1, keepdim=True).clamp(0, 1)


class _TinyBackbone(nn.Module):
    """Two stride-2 conv blocks returning ``{"out": (N, ch, H/4, W/4)}`` (tests only)."""

    def __init__(self, ch: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, ch, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return OrderedDict(out=self.body(x))


def deeplabv3(backbone: str = "resnet50", *, num_classes: int = len(VOC_CLASSES)) -> DeepLabV3Segmenter:
    """DeepLabV3 on ``backbone`` ∈ {resnet50, resnet101, mobilenet_v3_large, tiny}, random
    weights (no download), without the auxiliary head. ``tiny`` is a small test network with
    the same head."""
    from torchvision.models import segmentation as seg

    if backbone == "tiny":
        from torchvision.models.segmentation.deeplabv3 import DeepLabHead

        net = seg.DeepLabV3(_TinyBackbone(16), DeepLabHead(16, num_classes), None)
    else:
        builders = {
            "resnet50": seg.deeplabv3_resnet50,
            "resnet101": seg.deeplabv3_resnet101,
            "mobilenet_v3_large": seg.deeplabv3_mobilenet_v3_large,
        }
        if backbone not in builders:
            raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(builders)}, tiny")
        net = builders[backbone](weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    names = VOC_CLASSES if num_classes == len(VOC_CLASSES) else tuple(map(str, range(num_classes)))
    return DeepLabV3Segmenter(net, names)


def remap_torchvision_deeplab(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """torchvision DeepLabV3 checkpoint → :class:`DeepLabV3Segmenter` keys.

    ``backbone.*`` / ``classifier.*`` → ``net.backbone.*`` / ``net.classifier.*``; the
    ``aux_classifier.*`` head (training only) is dropped.
    """
    out = {}
    for k, v in strip_prefixes(state_dict).items():
        if k.startswith("aux_classifier."):
            continue
        out[k if k.startswith("net.") else "net." + k] = v
    return out


@register_model("deeplabv3_resnet50", remap=remap_torchvision_deeplab)
def deeplabv3_resnet50(**kwargs) -> DeepLabV3Segmenter:
    """DeepLabV3-ResNet50 (39.6 M parameters without the auxiliary head)."""
    return deeplabv3("resnet50", **kwargs)


@register_model("deeplabv3_resnet101", remap=remap_torchvision_deeplab)
def deeplabv3_resnet101(**kwargs) -> DeepLabV3Segmenter:
    """DeepLabV3-ResNet101."""
    return deeplabv3("resnet101", **kwargs)


@register_model("deeplabv3_mobilenet_v3_large", remap=remap_torchvision_deeplab)
def deeplabv3_mobilenet_v3_large(**kwargs) -> DeepLabV3Segmenter:
    """DeepLabV3-MobileNetV3-Large."""
    return deeplabv3("mobilenet_v3_large", **kwargs)
