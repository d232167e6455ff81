"""End to end with the real u2netp model on real photos."""

from __future__ import annotations

import numpy as np
import pytest

import nuggy
from nuggy.pipeline.config import PRESETS, preset
from nuggy.pipeline.pipeline import Pipeline

pytestmark = pytest.mark.usefixtures("u2netp_path")


def test_default_pipeline_on_a_real_photo(chelsea):
    result = Pipeline("default").run(chelsea)
    a = result.alpha
    assert a.shape == chelsea.shape[:2] and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    # chelsea: a cat's head filling the lower-middle of the frame, background top corners
    h, w = a.shape
    assert a[int(0.6 * h), w // 2] > 0.9, "the cat's face must be opaque"
    assert a[5, 5] < 0.1 and a[5, w - 5] < 0.1, "the top corners are background"
    assert 0.2 < (a > 0.5).mean() < 0.9
    assert result.foreground is not None and result.foreground.shape == chelsea.shape
    assert set(result.timings) >= {"segment", "interior", "refine", "clean", "foreground"}
    rgba = result.rgba()
    assert rgba.shape == (h, w, 4) and rgba.dtype == np.uint8


def test_fast_is_the_raw_model_and_tta_is_symmetric(chelsea):
    fast = Pipeline("fast").run(chelsea)
    np.testing.assert_array_equal(fast.alpha, fast.probability)
    assert fast.foreground is None and list(fast.timings) == ["segment"]
    # flip TTA: the prediction of the mirrored photo is the mirror of the prediction
    tta = Pipeline(preset("fast", tta=True))
    a = tta.run(chelsea).alpha
    b = tta.run(np.ascontiguousarray(chelsea[:, ::-1])).alpha[:, ::-1]
    # Equal up to resampling: OpenCV area-resizing by a non-integer factor is not mirror-exact
    # (0.5 grey levels on average here), which moves steep edges by a fraction of a pixel;
    # a missing un-flip would give a mean difference of ~0.1.
    diff = np.abs(a - b)
    assert diff.mean() < 1e-2 and np.quantile(diff, 0.999) < 0.1, (diff.mean(), diff.max())


def test_python_api_remove(chelsea, tmp_path):
    from PIL import Image

    path = tmp_path / "cat.png"
    Image.fromarray(chelsea).save(path)
    out = nuggy.remove(str(path))
    assert out.mode == "RGBA" and out.size == (451, 300)
    on_white = nuggy.remove(chelsea, bg="white", preset="fast")
    assert on_white.mode == "RGB"
    mask = nuggy.remove(Image.fromarray(chelsea), mask_only=True, preset="fast")
    assert mask.mode == "L"
    with pytest.raises(ValueError, match="unknown preset"):
        nuggy.remove(chelsea, preset="nope")
    with pytest.raises(TypeError, match="unsupported image type"):
        nuggy.remove(42)


def test_bad_arrays():
    pipe = Pipeline("fast")
    with pytest.raises(ValueError, match="RGB uint8"):
        pipe.run(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        pipe.run(np.zeros((10, 10, 3), np.float32))


def test_presets_are_configs():
    assert {"fast", "default"} <= set(PRESETS)
    assert preset("default", tta=False).tta is False
    with pytest.raises(TypeError):
        preset("default", no_such_switch=1)


def test_weights_file_without_spec_needs_model(u2netp_path, tmp_path, chelsea):
    import shutil

    mine = tmp_path / "mine.onnx"
    shutil.copy(u2netp_path, mine)
    with pytest.raises(ValueError, match="--model"):
        Pipeline(preset("fast", model=None, weights=str(mine))).run(chelsea)
    a = Pipeline(preset("fast", model="u2netp", weights=str(mine))).run(chelsea).alpha
    b = Pipeline("fast").run(chelsea).alpha
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["u2netp", "isnet"])
def test_default_beats_raw_and_best_beats_default_on_dev_set(dev_dir, model):
    """Each preset must earn its place: mean SAD, MSE and Grad over the whole image below the
    previous preset's. Measured with benchmarks/quality.py (fast -> default -> best):
    u2netp 54.58/97.63/29.47 -> 40.06/72.72/26.40 -> 39.23/72.24/25.39;
    isnet 52.14/89.39/27.25 -> 47.72/83.44/24.14 -> 46.11/83.03/23.75.
    isnet (AGPL) runs only where it is already cached; it is never downloaded here."""
    from nuggy.eval.metrics import grad, mse, sad
    from nuggy.io import load_image
    from nuggy.sources import cached_path

    if cached_path(model) is None:
        pytest.skip(f"{model} is not cached (nuggy models pull {model})")
    pipes = {
        name: Pipeline(preset(name, model=model), accept_license="agpl-3.0", download=False)
        for name in ("fast", "default", "best")
    }
    scores: dict[str, list] = {name: [] for name in pipes}
    for img in sorted((dev_dir / "image").glob("*.png")):
        image = load_image(img)
        gt = load_image(dev_dir / "alpha" / img.name)[..., 0].astype(np.float32) / 255
        for name, pipe in pipes.items():
            a = pipe.run(image).alpha
            scores[name].append((sad(a, gt), mse(a, gt), grad(a, gt)))
    r, d, b = (np.mean(scores[name], axis=0) for name in pipes)
    assert (d < r).all(), f"default {d} vs raw {r} (SAD, MSE, Grad)"
    assert (b < d).all(), f"best {b} vs default {d} (SAD, MSE, Grad)"


def test_best_skips_matting_below_its_size_threshold(chelsea):
    """`best` solves the matte only on photos of at least matting_min_megapixels; below, its
    alpha is the default pipeline's, and a user trimap is solved whatever the size."""
    from nuggy.pipeline.config import BEST_MATTING_MIN_MP

    small = chelsea[:200, :300]  # 0.06 MP
    assert small.shape[0] * small.shape[1] < BEST_MATTING_MIN_MP * 1e6
    best = Pipeline(preset("best", model="u2netp")).run(small)
    default = Pipeline(preset("default", model="u2netp")).run(small)
    assert best.trimap is None and "matte" not in best.timings
    np.testing.assert_array_equal(best.alpha, default.alpha)
    forced = Pipeline(preset("best", model="u2netp", matting_min_megapixels=0)).run(small)
    assert forced.trimap is not None and "matte" in forced.timings
    assert not np.array_equal(forced.alpha, default.alpha)
    trimap = np.full(small.shape[:2], 128, np.uint8)
    trimap[:20], trimap[90:110, 140:160] = 0, 255
    user = Pipeline(preset("best", model="u2netp")).run(small, trimap=trimap)
    assert user.trimap is not None and "matte" in user.timings
    with pytest.raises(ValueError, match="matting_min_megapixels"):
        preset("best", matting_min_megapixels=-1)


@pytest.mark.torch
def test_torch_backend_gives_the_onnx_alpha(chelsea):
    """`--backend torch` runs the converted weights with the same pre/post-processing."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    a = Pipeline("fast").run(chelsea).alpha
    b = Pipeline(preset("fast", backend="torch")).run(chelsea).alpha
    # fp32 both ways; the only differences are summation order in the convolutions
    assert np.abs(a - b).max() < 1e-3
