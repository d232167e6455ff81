"""Multi-model segmentation: the fusion rule, '+'-joined model lists, model="auto"."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nuggy.pipeline import segment
from nuggy.pipeline.config import preset
from nuggy.pipeline.fuse import fuse_probabilities, fusion_weights, relative_uncertainty
from nuggy.pipeline.pipeline import Pipeline
from nuggy.registry import get_spec


def _decided(h=40, w=48):
    """A crisp subject: the left half is 1, the rest 0."""
    p = np.zeros((h, w), np.float32)
    p[:, : w // 2] = 1.0
    return p


def _hedging(h=40, w=48):
    """A model unsure about half of what it calls subject: 0.6 over the left half, else 0."""
    p = np.zeros((h, w), np.float32)
    p[:, : w // 2] = 0.6
    p[:, : w // 4] = 1.0
    return p


def test_relative_uncertainty_by_hand():
    p = _hedging()
    # subject (p >= 0.5): half the image; uncertain (0.1 < p < 0.9): a quarter (the 0.6 band)
    assert relative_uncertainty(p) == pytest.approx(math.log(0.25 / 0.5 + 1e-3))
    assert relative_uncertainty(_decided()) == pytest.approx(math.log(1e-3))
    # no subject at all: the subject fraction is floored at 1e-3
    empty = np.full((10, 10), 0.3, np.float32)
    assert relative_uncertainty(empty) == pytest.approx(math.log(1.0 / 1e-3 + 1e-3))


def test_weights_favour_the_decided_map_and_sum_to_one():
    w = fusion_weights([_hedging(), _decided()])
    assert w.sum() == pytest.approx(1.0)
    # softmax(-4·u) by hand
    u = np.array([math.log(0.5 + 1e-3), math.log(1e-3)])
    expected = np.exp(-4 * (u - u.min()))
    np.testing.assert_allclose(w, expected / expected.sum(), rtol=1e-12)
    assert w[1] > 0.999
    # equally reliable maps: equal weights (the mean)
    np.testing.assert_allclose(fusion_weights([_decided(), _decided()[:, ::-1].copy()]), [0.5, 0.5])


def test_fuse_is_the_weighted_sum_and_keeps_inputs():
    a, b = _hedging(), _decided()
    a0, b0 = a.copy(), b.copy()
    out = fuse_probabilities([a, b])
    w = fusion_weights([a, b])
    np.testing.assert_allclose(out, w[0] * a + w[1] * b, atol=1e-6)
    assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    np.testing.assert_allclose(fuse_probabilities([a, b], method="mean"), 0.5 * (a + b), atol=1e-7)
    single = fuse_probabilities([a.astype(np.float64)])
    assert single.dtype == np.float32 and single is not a
    np.testing.assert_array_equal(single, a)


@pytest.mark.parametrize(
    "args, match",
    [
        (([],), "at least one"),
        (([np.zeros((4, 4)), np.zeros((4, 5))],), "differ in shape"),
        (([np.zeros((4, 4))],), None),
    ],
)
def test_fuse_rejects_bad_input(args, match):
    if match is None:
        fuse_probabilities(*args)
        return
    with pytest.raises(ValueError, match=match):
        fuse_probabilities(*args)
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse_probabilities([np.zeros((4, 4))], method="max")


def test_model_members():
    assert segment.model_members("u2netp+isnet") == ["u2netp", "isnet"]
    assert segment.model_members(" u2netp ") == ["u2netp"]
    assert segment.model_members(None) == []
    with pytest.raises(ValueError, match="empty name"):
        segment.model_members("u2netp+")
    with pytest.raises(ValueError, match="twice"):
        segment.model_members("u2netp+u2netp")


def test_auto_models_use_only_cached_and_accepted(monkeypatch):
    cached = {"u2netp", "isnet"}

    def fake_cached(spec):
        return "/x" if spec.name in cached else None

    import nuggy.sources

    monkeypatch.setattr(nuggy.sources, "cached_path", fake_cached)
    assert segment.auto_models(None) == ["u2netp"]  # AGPL weights never without acceptance
    assert segment.auto_models("agpl-3.0") == ["u2netp", "isnet"]
    cached.discard("isnet")
    assert segment.auto_models("agpl-3.0") == ["u2netp"]  # never downloads
    cached.add("isnet-quint8")
    assert segment.auto_models("AGPL-3.0") == ["u2netp", "isnet-quint8"]


def test_unknown_member_is_a_usage_error():
    with pytest.raises(ValueError, match="known models"):
        Pipeline(preset("fast", model="u2netp+nosuch")).load()
    with pytest.raises(ValueError, match="instead of --weights"):
        segment.load_predictors(preset("fast", model="u2netp+isnet", weights="/x.onnx"))


class _FakePredictor:
    """A predictor with a fixed model-resolution map (no model file)."""

    def __init__(self, name: str, prob: np.ndarray):
        self.spec = get_spec(name)
        self.prob = prob
        self.calls = 0

    def predict(self, image, *, flip=False):
        self.calls += 1
        return self.prob


def test_pipeline_fuses_each_model_once(chelsea):
    h, w = chelsea.shape[:2]
    small_a = np.zeros((32, 32), np.float32)
    small_a[8:24, 8:24] = 0.55  # hedging
    small_b = np.zeros((64, 64), np.float32)
    small_b[16:48, 16:48] = 1.0  # decided
    pipe = Pipeline(preset("fast", model="u2netp+isnet"))
    fakes = [_FakePredictor("u2netp", small_a), _FakePredictor("isnet", small_b)]
    pipe._predictors = fakes
    result = pipe.run(chelsea)
    assert [f.calls for f in fakes] == [1, 1]
    from nuggy.runtime.preprocess import upsample

    expected = fuse_probabilities([upsample(small_a, (h, w)), upsample(small_b, (h, w))])
    np.testing.assert_array_equal(result.probability, expected)
    np.testing.assert_array_equal(result.alpha, expected)
    assert list(result.timings) == ["segment"]
    # the decided model dominates
    assert np.abs(result.alpha - upsample(small_b, (h, w))).mean() < 0.01


def test_probability_argument_skips_segmentation(chelsea):
    pipe = Pipeline(preset("default", model="nosuch-never-loaded"))
    prob = np.zeros(chelsea.shape[:2], np.float32)
    prob[100:250, 100:350] = 1.0
    result = pipe.run(chelsea, probability=prob)
    assert "segment" not in result.timings and result.alpha.shape == prob.shape
    assert result.alpha[175, 225] > 0.99 and result.alpha[10, 10] < 0.01
    with pytest.raises(ValueError, match="is \\(2, 2\\)"):
        pipe.run(chelsea, probability=np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pipe.run(chelsea, probability=prob + 2)


def test_fusion_field_is_validated():
    with pytest.raises(ValueError, match="fusion"):
        preset("default", fusion="max")
    assert preset("best").model == "auto"
