"""`--segmenter deeplabv3 --class NAME`: torchvision-layout checkpoint found in the hub cache."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES

from nuggy.cli.main import main
from nuggy.pipeline.config import preset
from nuggy.pipeline.pipeline import Pipeline

torch = pytest.importorskip("torch")
tv_seg = pytest.importorskip("torchvision.models.segmentation")
pytestmark = pytest.mark.torch


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """A torch hub cache holding a DeepLabV3 checkpoint in torchvision's own layout.

    Random weights (no network): this proves the plumbing — file lookup, strict loading of
    torchvision's keys, class selection, pre-processing — not segmentation quality.
    """
    torch.manual_seed(0)
    net = tv_seg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=True)
    ckpt = tmp_path / "torch" / "hub" / "checkpoints" / "deeplabv3_mobilenet_v3_large-fc3c493d.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(net.state_dict(), ckpt)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return ckpt


def test_deeplab_class_probability_through_the_pipeline(hub, chelsea):
    cfg = preset("fast", segmenter="deeplabv3", segmenter_class="cat")
    result = Pipeline(cfg).run(chelsea)
    assert result.alpha.shape == chelsea.shape[:2] and result.alpha.dtype == np.float32
    assert 0.0 <= result.alpha.min() <= result.alpha.max() <= 1.0
    # another class gives another map: the class really selects an output channel
    dog = Pipeline(cfg.replace(segmenter_class="dog")).run(chelsea).alpha
    assert np.abs(dog - result.alpha).max() > 1e-4


def test_deeplab_errors(tmp_path, monkeypatch, chelsea, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="needs --class"):
        Pipeline(preset("fast", segmenter="deeplabv3")).run(chelsea)
    with pytest.raises(FileNotFoundError, match="deeplabv3_resnet101_coco-586e9e4e.pth"):
        Pipeline(preset("fast", segmenter="deeplabv3", segmenter_class="cat")).run(chelsea)
    rc = main(
        [
            "remove",
            str(EXAMPLES / "chelsea.jpg"),
            "-o",
            str(tmp_path / "x.png"),
            "--segmenter",
            "deeplabv3",
            "--class",
            "cat",
        ]
    )
    assert rc == 2 and "--weights PATH" in capsys.readouterr().err


def test_deeplab_unknown_class(hub, chelsea):
    with pytest.raises(ValueError, match="class"):
        Pipeline(preset("fast", segmenter="deeplabv3", segmenter_class="unicorn")).run(chelsea)


def test_cli_with_weights_path(hub, tmp_path):
    out = tmp_path / "cat.png"
    rc = main(
        [
            "remove",
            str(EXAMPLES / "chelsea.jpg"),
            "-o",
            str(out),
            "--segmenter",
            "deeplabv3",
            "--class",
            "cat",
            "--weights",
            str(hub),
            "--preset",
            "fast",
            "-q",
        ]
    )
    assert rc == 0 and out.is_file()
