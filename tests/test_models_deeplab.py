"""DeepLabV3 (torchvision) class-aware segmentation: probabilities, classes, strict loading."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from nuggy.models import create_model, load_checkpoint, remap_checkpoint  # noqa: E402
from nuggy.models.deeplab import VOC_CLASSES, class_index, deeplabv3  # noqa: E402

pytestmark = pytest.mark.torch


def test_voc_classes_match_torchvision():
    from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights as W

    assert list(VOC_CLASSES) == W.COCO_WITH_VOC_LABELS_V1.meta["categories"]


def test_class_index_and_aliases():
    assert class_index("cat") == 8
    assert class_index("Person") == 15
    assert class_index("airplane") == class_index("aeroplane") == 1
    with pytest.raises(ValueError, match="unknown class 'unicorn'.*person"):
        class_index("unicorn")


def test_tiny_forward_backward_and_class_probability():
    torch.manual_seed(0)
    model = deeplabv3("tiny").train()
    x = torch.randn(2, 3, 37, 45)
    probs = model(x)
    assert probs.shape == (2, 21, 37, 45)
    assert torch.allclose(probs.sum(1), torch.ones(2, 37, 45), atol=1e-5)
    probs.log().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    model.eval()
    with torch.no_grad():
        cat = model.class_probability(x, "cat")
        both = model.class_probability(x, ["cat", "dog"])
        all_probs = model(x)
    assert cat.shape == (2, 1, 37, 45)
    assert torch.allclose(cat[:, 0], all_probs[:, 8])
    assert torch.allclose(both[:, 0], all_probs[:, 8] + all_probs[:, 12], atol=1e-6)


@pytest.mark.parametrize(
    "name,builder",
    [
        ("deeplabv3_resnet50", "deeplabv3_resnet50"),
        ("deeplabv3_resnet101", "deeplabv3_resnet101"),
        ("deeplabv3_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"),
    ],
)
def test_torchvision_checkpoint_layout_remaps_exactly(name, builder):
    """The published checkpoints carry the auxiliary head (torchvision builds them with
    aux_loss=True); the remap drops it and prefixes ``net.``."""
    from torchvision.models import segmentation as seg

    with torch.device("meta"):
        ref = getattr(seg, builder)(weights=None, weights_backbone=None, aux_loss=True)
        model = create_model(name)
    ref_sd = ref.state_dict()
    assert any(k.startswith("aux_classifier.") for k in ref_sd)
    remapped = remap_checkpoint(name, ref_sd)
    own = model.state_dict()
    assert set(remapped) == set(own)
    assert all(remapped[k].shape == own[k].shape for k in own)


def test_strict_load_from_file(tmp_path):
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    torch.manual_seed(0)
    ref = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=True).eval()
    path = tmp_path / "deeplabv3_mobilenet_v3_large-fc3c493d.pth"
    torch.save(ref.state_dict(), path)
    model = load_checkpoint("deeplabv3_mobilenet_v3_large", path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), torch.softmax(ref(x)["out"], 1), atol=1e-6)
    sd = ref.state_dict()
    sd["classifier.4.weight"] = torch.zeros(5, 256, 1, 1)  # a 5-class head
    torch.save(sd, path)
    with pytest.raises(RuntimeError, match="wrong shape.*classifier.4.weight"):
        load_checkpoint("deeplabv3_mobilenet_v3_large", path)


def test_torch_predictor_class_map():
    from nuggy.registry import get_spec
    from nuggy.runtime.torch import TorchPredictor

    torch.manual_seed(0)
    model = deeplabv3("tiny")
    spec = get_spec("u2netp")  # any spec: 320×320, ImageNet mean/std
    pred = TorchPredictor("deeplabv3_resnet50", spec=spec, model=model, classes="person")
    image = torch.randint(0, 256, (50, 60, 3), dtype=torch.uint8).numpy()
    prob = pred.predict(image, flip=True)
    assert prob.shape == (320, 320) and prob.dtype.name == "float32"
    assert 0 <= prob.min() and prob.max() <= 1


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        deeplabv3("vgg")
