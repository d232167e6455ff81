"""ONNX → torch conversion (registry files), torch → ONNX export, TorchPredictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from nuggy.models import create_model, load_checkpoint, load_state_dict_strict  # noqa: E402
from nuggy.models.convert import convert_onnx, convert_registry_model, read_onnx_convs  # noqa: E402
from nuggy.models.export import ExportParityError, export_onnx, spec_from_sidecar  # noqa: E402
from nuggy.registry import get_spec  # noqa: E402

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = sorted((ROOT / "examples").glob("*.jpg"))[:2]
EVAL_PHOTOS = sorted((ROOT.parent / "shared/evaldata/alphamatting-dev/image").glob("*.png"))[:1]


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _cached(name: str) -> Path:
    from nuggy.sources import cached_path

    path = cached_path(get_spec(name))
    if path is None:
        pytest.skip(f"{name} ONNX not in the cache (nuggy models pull {name})")
    return Path(path)


@pytest.fixture(scope="module")
def u2netp_onnx() -> Path:
    return _cached("u2netp")


@pytest.fixture(scope="module")
def u2netp_converted(u2netp_onnx):
    sd = convert_onnx(u2netp_onnx, "u2netp")
    model = create_model("u2netp")
    load_state_dict_strict(model, sd)
    return model.eval()


@pytest.mark.needs_model
def test_u2netp_conversion_parity_on_real_photos(u2netp_onnx, u2netp_converted):
    import onnxruntime as ort

    from nuggy.runtime.preprocess import to_model_input

    photos = PHOTOS + EVAL_PHOTOS
    assert photos, "no example photos"
    spec = get_spec("u2netp")
    sess = ort.InferenceSession(str(u2netp_onnx), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    import copy

    model64 = copy.deepcopy(u2netp_converted).double()
    for photo in photos:
        x = to_model_input(_load_rgb(photo), spec)
        ref = sess.run(None, {name: x})
        with torch.no_grad():
            out = u2netp_converted(torch.from_numpy(x))
            truth = model64(torch.from_numpy(x).double())
        # Error budget, from the float64 run of the same weights (the truth for both engines):
        # float32 convolutions accumulate rounding in an order that differs between engines and
        # CPUs (vector width, threads), so ONNX-vs-torch is bounded by the sum of their errors,
        # not by one machine's figure. A probability (sigmoid, slope <= 1/4) after ~120 layers:
        # each engine measured <= 7e-5 from float64 on this CPU; we allow 4e-4 each (~6×, for
        # other summation orders), 8e-4 between them. The six side maps are not fused yet and
        # stand at up to 4× the fused map's error.
        for r, o, t in zip(ref, out, truth):  # all seven maps, fused first
            t = t.numpy()
            assert np.abs(r - t).max() <= 2e-3 and np.abs(o.numpy() - t).max() <= 2e-3, photo.name
        t0 = truth[0].numpy()
        assert np.abs(ref[0] - t0).max() <= 4e-4, photo.name  # ONNX Runtime vs float64
        assert np.abs(out[0].numpy() - t0).max() <= 4e-4, photo.name  # torch vs float64
        assert np.abs(ref[0] - out[0].numpy()).max() <= 8e-4, photo.name


@pytest.mark.needs_model
def test_u2netp_onnx_is_bn_folded_and_mapped_by_order(u2netp_onnx):
    convs = read_onnx_convs(u2netp_onnx)
    assert len(convs) == 119
    assert all(c.bn is None and c.module_path is None for c in convs)
    sd = convert_onnx(u2netp_onnx, "u2netp")
    assert torch.equal(sd["stage1.rebnconvin.bn_s1.weight"], torch.ones(64))
    assert sd["side1.weight"].shape == (1, 64, 3, 3)


@pytest.mark.needs_model
def test_convert_registry_model_and_load(tmp_path, u2netp_converted):
    out = convert_registry_model("u2netp", tmp_path / "u2netp.pth")
    model = load_checkpoint("u2netp", out)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x)[0], u2netp_converted(x)[0])


@pytest.mark.needs_model
def test_torch_predictor_matches_onnx_predictor(u2netp_onnx):
    from nuggy.runtime.onnx import OnnxPredictor
    from nuggy.runtime.torch import TorchPredictor

    spec = get_spec("u2netp")
    image = _load_rgb(PHOTOS[0])
    tp = TorchPredictor("u2netp", u2netp_onnx)
    op = OnnxPredictor(u2netp_onnx, spec)
    for flip in (False, True):
        a, b = tp.predict(image, flip=flip), op.predict(image, flip=flip)
        assert a.shape == b.shape == spec.input_size and a.dtype == np.float32
        assert np.abs(a - b).max() <= 1e-3


# --------------------------------------------------------------------------- export


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("u2netp", width_divisor=4).eval()
    out = tmp_path_factory.mktemp("export") / "tiny.onnx"
    export_onnx(model, out, arch="u2netp", input_size=(48, 64))
    return model, out


def test_export_writes_sidecar_and_passes_parity(tiny_export):
    _, path = tiny_export
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["arch"] == "u2netp" and meta["input_size"] == [48, 64]
    assert meta["activation"] == "none" and meta["output_index"] == 0
    assert meta["mean"] == pytest.approx([123.675, 116.28, 103.53])
    assert meta["parity_max_abs_diff"] <= 1e-4
    spec = spec_from_sidecar(path)
    assert spec.input_size == (48, 64) and spec.architecture == "u2netp"


def test_export_then_convert_back_is_exact(tiny_export):
    model, path = tiny_export
    sd = convert_onnx(path, model_kwargs={"width_divisor": 4})  # arch from the sidecar
    back = create_model("u2netp", width_divisor=4)
    load_state_dict_strict(back, sd)
    back.eval()
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        assert torch.allclose(back(x)[0], model(x)[0], atol=1e-5)


def test_exported_model_runs_in_the_onnx_predictor(tiny_export):
    from nuggy.runtime.onnx import OnnxPredictor
    from nuggy.runtime.torch import TorchPredictor

    model, path = tiny_export
    spec = spec_from_sidecar(path)
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    a = OnnxPredictor(path, spec).predict(image)
    b = TorchPredictor("u2netp", spec=spec, model=model).predict(image)
    assert a.shape == (48, 64)
    assert np.abs(a - b).max() <= 1e-4


def test_dynamic_quantised_onnx_is_dequantised(tiny_export, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model, path = tiny_export
    qpath = tmp_path / "tiny-quint8.onnx"
    quantize_dynamic(str(path), str(qpath), weight_type=QuantType.QUInt8, op_types_to_quantize=["Conv"])
    convs = read_onnx_convs(qpath)
    assert len(convs) == sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    sd = convert_onnx(qpath, "u2netp", input_size=(48, 64), model_kwargs={"width_divisor": 4})
    ref = convert_onnx(path, model_kwargs={"width_divisor": 4})  # float export, BN folded
    for k, w in ref.items():
        if k.endswith(".weight") and w.ndim == 4:
            step = float(w.max() - w.min()) / 255
            assert float((sd[k] - w).abs().max()) <= 0.51 * step + 1e-7, k


def test_export_parity_failure_raises_and_writes_nothing(tmp_path):
    model = create_model("u2netp", width_divisor=4).eval()
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportParityError):
        export_onnx(model, out, arch="u2netp", input_size=(32, 32), atol=-1.0)
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_export_deeplab_class_probability(tmp_path):
    import onnxruntime as ort

    from nuggy.models.deeplab import deeplabv3

    torch.manual_seed(0)
    model = deeplabv3("tiny").eval()
    out = export_onnx(
        model, tmp_path / "cat.onnx", arch="deeplabv3_resnet50", input_size=(40, 48), classes="cat"
    )
    assert json.loads(out.with_suffix(".json").read_text())["classes"] == ["cat"]
    x = np.random.default_rng(1).standard_normal((1, 3, 40, 48)).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": x})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x))[:, 8:9].numpy()
    assert np.abs(y - ref).max() <= 1e-4


@pytest.mark.slow
@pytest.mark.needs_model
def test_u2net_full_conversion_parity_if_cached():
    import onnxruntime as ort

    from nuggy.runtime.preprocess import to_model_input

    path = _cached("u2net")
    model = load_checkpoint("u2net", path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = to_model_input(_load_rgb(PHOTOS[0]), get_spec("u2net"))
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(x))[0].numpy()
    assert np.abs(ref - got).max() <= 1e-3  # measured ~1e-5


@pytest.mark.slow
@pytest.mark.needs_model
def test_isnet_fp16_conversion_parity_if_cached():
    """ONNX Runtime runs this file in fp16 (input cast to fp16, fp16 weights); torch runs the
    same weights in fp32, so activations differ by fp16 rounding: measured ≤ 6.3e-4 (mean
    ≤ 3.3e-5) on 5 photos; bound 2e-3."""
    import onnxruntime as ort

    from nuggy.runtime.preprocess import to_model_input

    path = _cached("isnet")
    model = load_checkpoint("isnet", path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = to_model_input(_load_rgb(PHOTOS[0]), get_spec("isnet"))
    ref = sess.run(["output"], {"input": x})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(x))[0][0].numpy()
    assert np.abs(ref - got).max() <= 2e-3


@pytest.mark.needs_model
def test_isnet_quint8_dequantised_weights_match_fp16_weights_if_cached():
    """Both files hold the same network: de-quantised uint8 weights lie within ~half a
    quantisation step (plus fp16 rounding) of the fp16 weights."""
    fp16 = convert_onnx(_cached("isnet"), "isnet")
    q8 = convert_onnx(_cached("isnet-quint8"), "isnet")
    assert fp16.keys() == q8.keys()
    for k, w in fp16.items():
        if k.endswith(".weight") and w.ndim == 4:
            step = float(w.max() - w.min()) / 255
            assert float((q8[k] - w).abs().max()) <= 0.6 * step, k
        elif k.endswith(".bias") and "bn_s1" not in k:
            assert float((q8[k] - w).abs().max()) <= 4e-3 * max(1.0, float(w.abs().max()) / 4), k


def test_export_isnet_main_map(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = create_model("isnet", width_divisor=8).eval()
    out = export_onnx(model, tmp_path / "isnet.onnx", arch="isnet", input_size=(32, 48))
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["mean"] == [128.0] * 3 and meta["std"] == [256.0] * 3
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.shape for o in sess.get_outputs()] == [[1, 1, 32, 48]]
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 48)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x))[0][0].numpy()
    assert np.abs(sess.run(None, {"input": x})[0] - ref).max() <= 1e-4
