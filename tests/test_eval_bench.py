"""Speed/memory benchmark (nuggy.eval.benchmark)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nuggy.eval import benchmark
from nuggy.eval.benchmark import (
    bench_markdown,
    current_rss,
    default_source,
    parse_size,
    peak_rss,
    run_benchmark,
    synth_image,
    target_shape,
)


def test_parse_size_and_shape():
    assert parse_size("2mp") == {"label": "2mp", "pixels": 2e6}
    assert parse_size("0.5MP")["pixels"] == 5e5
    assert parse_size("1920x1080") == {"label": "1920x1080", "width": 1920, "height": 1080}
    assert parse_size("1024") == {"label": "1024", "long_side": 1024}
    for bad in ("", "2gb", "0mp", "1x", "axb"):
        with pytest.raises(ValueError, match="not understood"):
            parse_size(bad)
    h, w = target_shape(parse_size("12mp"), 4 / 3)
    assert (h, w) == (3000, 4000)
    assert target_shape(parse_size("640x480"), 1.0) == (480, 640)
    assert target_shape(parse_size("1000"), 0.5) == (1000, 500)
    assert target_shape(parse_size("1000"), 2.0) == (500, 1000)


def test_synth_image():
    src = default_source()
    source = None
    if src is not None:
        from nuggy.io import load_image

        source = load_image(src)
    for s in (source, None):
        img = synth_image((30, 50), s)
        assert img.shape == (30, 50, 3) and img.dtype == np.uint8 and img.std() > 0


def test_rss_readings():
    assert current_rss() > 1e6 and peak_rss() >= current_rss() * 0.5


class _FakeResult:
    def __init__(self, image):
        self.timings = {"segment": 0.001, "refine": 0.002}


class _FakePipeline:
    def __init__(self, config, **kw):
        self.config = config
        self.runs = 0

    @property
    def predictor(self):
        return object()

    def load(self):
        return self

    def run(self, image):
        self.runs += 1
        self.keep = np.ones(image.shape[:2], np.float64)  # some memory per run
        return _FakeResult(image)


def test_run_benchmark_with_a_fake_pipeline(monkeypatch):
    import nuggy.pipeline.pipeline as pl

    monkeypatch.setattr(pl, "Pipeline", _FakePipeline)
    lines: list[str] = []
    res = run_benchmark("fast", ["0.2mp", "64x48"], runs=2, warmup=1, log=lines.append)
    assert [r["label"] for r in res["sizes"]] == ["0.2mp", "64x48"]  # requested order
    small, big = res["sizes"][1], res["sizes"][0]
    assert (small["height"], small["width"]) == (48, 64)
    assert abs(big["megapixels"] - 0.2) < 0.01
    assert small["stages"] == pytest.approx({"segment": 0.001, "refine": 0.002})
    assert small["runs"] == 2 and small["images_per_s"] > 0 and small["peak_rss_mb"] > 0
    assert lines[0].startswith("64x48")  # small sizes run first
    json.dumps(res)
    md = bench_markdown(res)
    assert "| segment ms" in md and "| 64x48" in md and "img/s" in md
    with pytest.raises(ValueError, match="runs >= 1"):
        run_benchmark("fast", ["1mp"], runs=0)


@pytest.mark.needs_model
def test_run_benchmark_real_model():
    from nuggy.sources import cached_path

    if cached_path("u2netp") is None:
        pytest.skip("u2netp is not cached (nuggy models pull u2netp)")
    res = run_benchmark("fast", ["96x64"], runs=1, warmup=1)
    row = res["sizes"][0]
    assert "segment" in row["stages"] and row["total_s"] > 0
    assert res["meta"]["config"]["model"] == "u2netp" and res["meta"]["model_load_s"] >= 0
    assert benchmark.bench_markdown(res).count("\n") >= 3
