"""The model catalogue: every entry is complete and resolves one way (parametrised over it)."""

from __future__ import annotations

import json

import pytest

from nuggy.errors import UsageError
from nuggy.registry import list_models, resolve_model

SPECS = list_models()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_entry_is_complete(spec):
    assert len(spec.sha256) == 64 and spec.size > 0 and spec.sources
    assert spec.licence and spec.input_size[0] > 0 and spec.input_size[1] > 0
    assert len(spec.mean) == 3 and all(s > 0 for s in spec.std)
    assert spec.preprocessing, "say how the input is prepared and what it was measured against"
    assert resolve_model(spec.name) is spec


@pytest.mark.torch
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_entry_names_a_torch_architecture(spec):
    pytest.importorskip("torch")
    from nuggy.models.registry import list_architectures

    if spec.architecture == "rvm":  # recurrent; runs with ONNX Runtime only (runtime/rvm.py)
        pytest.skip("rvm has no PyTorch port (ONNX Runtime only)")
    assert spec.architecture in list_architectures()


def test_weights_resolve_by_sidecar_then_by_model(tmp_path):
    f = tmp_path / "mine.onnx"
    f.write_bytes(b"x")
    with pytest.raises(UsageError, match="--model"):
        resolve_model(None, f)
    spec = resolve_model("u2netp", f)
    assert spec.filename == "mine.onnx" and spec.sha256 == "" and spec.input_size == (320, 320)
    (tmp_path / "mine.json").write_text(
        json.dumps({"arch": "isnet", "input_size": [64, 64], "mean": [0, 0, 0], "std": [1, 1, 1]})
    )
    spec = resolve_model("u2netp", f)  # the sidecar wins
    assert spec.architecture == "isnet" and spec.input_size == (64, 64)
