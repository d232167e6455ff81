"""Quality benchmark engine (nuggy.eval.quality) and benchmarks/quality.py.

Most tests run the real pipeline stages on generated photos (a textured subject with a soft
edge composited over a textured background) with a colour-based stand-in for the network, so
no model file is needed; the last one runs the benchmark script with u2netp on
../shared/evaldata.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import EVALDATA, ROOT
from PIL import Image

from nuggy.eval import quality as q
from nuggy.eval.protocol import count_failures
from nuggy.eval.split import split_names
from nuggy.registry import ModelSpec
from nuggy.runtime.preprocess import predict_flip_tta, to_model_input

H, W = 96, 128


def scene(seed: int, missed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 H×W×3, alpha float32 H×W): a warm textured ellipse with a 2-px soft edge over
    a cool textured gradient; ``missed``: the subject has the background's colours."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W].astype(np.float32)
    cy, cx = H / 2 + rng.uniform(-8, 8), W / 2 + rng.uniform(-10, 10)
    ry, rx = rng.uniform(22, 34), rng.uniform(28, 44)
    d = (np.hypot((yy - cy) / ry, (xx - cx) / rx) - 1.0) * min(ry, rx)
    alpha = np.clip(0.5 - d / 2.0, 0.0, 1.0).astype(np.float32)
    bg = np.stack([40 + 30 * xx / W, 90 + 40 * yy / H, 170 + 40 * xx / W], axis=2)
    bg += rng.normal(0, 8, bg.shape)
    fg = np.stack([200 + 0 * xx, 110 + 30 * np.sin(xx / 5), 50 + 20 * np.cos(yy / 4)], axis=2)
    fg += rng.normal(0, 10, fg.shape)
    if missed:
        fg = bg[::-1, ::-1] + rng.normal(0, 4, bg.shape)
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), alpha


class FakePredictor:
    """Stand-in for a salient-object network: P(subject) = sigmoid of red minus blue, on the
    spec's normalised model input, through the runtime's own flip TTA."""

    def __init__(self, name: str = "u2netp", sha256: str = "ab" * 32) -> None:
        self.spec = ModelSpec(
            name=name,
            architecture="u2netp",
            filename=f"{name}.onnx",
            sha256=sha256,
            size=0,
            licence="test",
            input_size=(48, 64),
            mean=(123.675, 116.28, 103.53),
            std=(58.395, 57.12, 57.375),
        )
        self.calls = 0
        self.input_size = self.spec.input_size

    def run_tensor(self, x: np.ndarray) -> np.ndarray:
        z = 2.5 * (x[0, 0] - x[0, 2])
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def predict(self, image: np.ndarray, *, flip: bool = False) -> np.ndarray:
        self.calls += 1
        return predict_flip_tta(self.run_tensor, to_model_input(image, self.spec), flip=flip)


@pytest.fixture
def fake_models(monkeypatch):
    """Pipelines load a FakePredictor; model strings with '+' are rejected like unknown ones."""
    import nuggy.pipeline.segment as seg

    made: list[FakePredictor] = []

    def load(config, **kw):
        if "+" in (config.model or ""):
            raise ValueError(f"unknown model {config.model!r}")
        made.append(FakePredictor(config.model))
        return made[-1]

    monkeypatch.setattr(seg, "load_predictor", load)
    return made


def write_set(
    root: Path, names: list[str], *, binary: bool, missed: set[str] = frozenset(), seed: int = 0
) -> Path:
    for i, n in enumerate(names):
        img, alpha = scene(seed + i, missed=n in missed)
        gt = (alpha >= 0.5) if binary else alpha
        (root / "image").mkdir(parents=True, exist_ok=True)
        (root / ("mask" if binary else "alpha")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / "image" / f"{n}.jpg", quality=95)
        Image.fromarray(np.round(gt * 255).astype(np.uint8)).save(
            root / ("mask" if binary else "alpha") / f"{n}.png"
        )
    return root


# ---------------------------------------------------------------------------------------------
# probability cache


def test_cached_predictor_returns_identical_maps_without_a_second_predict(tmp_path):
    img, _ = scene(0)
    inner, stats = FakePredictor(), {}
    cached = q.CachedPredictor(inner, tmp_path, stats)
    assert cached.spec is inner.spec and cached.input_size == (48, 64)  # same interface
    first = cached.predict(img, flip=True)
    assert inner.calls == 1 and first.dtype == np.float32 and first.shape == (48, 64)
    again = cached.predict(img, flip=True)
    assert inner.calls == 1 and np.array_equal(first, again)
    assert stats == {"calls": 2, "hits": 1, "misses": 1, "seconds": stats["seconds"]}
    # float16 storage: within 5e-4 of the network's map, the same value on a miss and a hit
    assert np.abs(first - inner.predict(img, flip=True)).max() <= 5e-4
    # a new wrapper (a second pipeline, a second run) reads the same file
    other = FakePredictor()
    assert np.array_equal(q.CachedPredictor(other, tmp_path).predict(img, flip=True), first)
    assert other.calls == 0
    assert len(list(tmp_path.rglob("*.npy"))) == 1


def test_cache_key_separates_flip_image_and_model(tmp_path):
    img, _ = scene(1)
    inner = FakePredictor()
    cached = q.CachedPredictor(inner, tmp_path)
    cached.predict(img, flip=True)
    cached.predict(img, flip=False)
    changed = img.copy()
    changed[5, 5, 0] ^= 1
    cached.predict(changed, flip=True)
    assert inner.calls == 3
    retrained = FakePredictor(sha256="cd" * 32)
    q.CachedPredictor(retrained, tmp_path).predict(img, flip=True)
    assert retrained.calls == 1
    # a user file without a checksum is never cached
    user = FakePredictor(sha256="")
    wrapped = q.CachedPredictor(user, tmp_path)
    wrapped.predict(img, flip=True)
    wrapped.predict(img, flip=True)
    assert user.calls == 2 and len(list(tmp_path.rglob("*.npy"))) == 4


def test_cache_predictors_on_a_pipeline(tmp_path, fake_models):
    from nuggy.pipeline.config import preset
    from nuggy.pipeline.pipeline import Pipeline
    from nuggy.runtime.preprocess import upsample

    img, alpha = scene(2)
    pipe = Pipeline(preset("default", model="u2netp"))
    preds = q.cache_predictors(pipe, tmp_path, {})
    assert preds is pipe.predictors and isinstance(pipe.predictor, q.CachedPredictor)
    res = pipe.run(img)
    assert fake_models[0].calls == 1
    # a second preset of the same model: no inference, same probability, its own post-stages
    best = Pipeline(preset("best", model="u2netp"))
    q.cache_predictors(best, tmp_path, {})
    res_best = best.run(img)
    assert fake_models[1].calls == 0
    assert np.array_equal(res.probability, res_best.probability)
    # the cached pipeline is the plain pipeline on the (float16-rounded) map
    prob = upsample(pipe.predictor.predict(img, flip=True), img.shape[:2])
    direct = Pipeline(preset("default", model="u2netp")).run(img, probability=prob)
    assert np.array_equal(direct.alpha, res.alpha)
    assert np.abs(res.alpha - alpha).mean() < 0.05  # the stand-in finds the subject


# ---------------------------------------------------------------------------------------------
# rows


def test_plan_rows_presets_and_stage_ladder():
    from nuggy.pipeline.config import preset

    rows, skipped = q.plan_rows(["u2netp"], ["fast", "default", "best"])
    assert [r.label for r in rows] == ["u2netp · fast", "u2netp · default", "u2netp · best"]
    assert not skipped
    assert rows[1].config == preset("default", model="u2netp", foreground=False)
    assert all(not r.config.foreground for r in rows)  # alpha does not depend on it
    rows, _ = q.plan_rows(["u2netp", "isnet"], ["fast"], stages=True)
    labels = [r.display for r in rows if r.model == "u2netp"]
    assert labels == [
        "u2netp · fast",
        "u2netp · + flip TTA",
        "u2netp · + interior fill",
        "u2netp · + guided filter",
        "u2netp · default (= + island removal)",
        "u2netp · best",
    ]
    assert len(rows) == 12
    with pytest.raises(ValueError, match="unknown preset.*quick"):
        q.plan_rows(["u2netp"], ["quick"])
    extra, notes = q.rembg_rows(["u2netp", "isnet"])
    assert [r.label for r in extra] == ["rembg -m u2netp", "rembg -m u2netp -a"]
    assert extra[1].command == ["-m", "u2netp", "-a"]
    assert len(notes) == 1 and "isnet" in notes[0]


# ---------------------------------------------------------------------------------------------
# runs, tables, JSON and comparison


@pytest.fixture
def two_sets(tmp_path):
    names = [f"{i:04d}" for i in range(2, 14, 2)]
    check = split_names(names, "check")
    soft = write_set(tmp_path / "soft-dev", names[:5], binary=False)
    masks = write_set(tmp_path / "masks-dev", names, binary=True, missed={check[0]}, seed=100)
    return soft, masks, names, check


def test_run_quality_on_generated_sets(tmp_path, fake_models, two_sets):
    soft, masks, names, check = two_sets
    sets = [q.prepare_dataset(soft, "check"), q.prepare_dataset(masks, "check")]
    assert [s.binary_gt for s in sets] == [False, True]
    assert sets[1].info["names"] == check and sets[1].info["split_size"] == 3
    assert sets[1].info["samples"] == 6 and sets[1].split == {"part": "check", "of": 6, "limit": None}
    rows, skipped = q.plan_rows(["u2netp", "u2netp+nosuch"], ["fast", "default"])
    lines: list[str] = []
    res = q.run_quality(rows, sets, cache_dir=tmp_path / "cache", log=lines.append, skipped=skipped)
    assert [(r["dataset"], r["row"]) for r in res["runs"]] == [
        ("soft-dev", "u2netp · fast"),
        ("masks-dev", "u2netp · fast"),
        ("soft-dev", "u2netp · default"),
        ("masks-dev", "u2netp · default"),
    ]
    assert {s["row"] for s in res["skipped"]} == {"u2netp+nosuch · fast", "u2netp+nosuch · default"}
    assert all("unknown model" in s["reason"] for s in res["skipped"])
    assert any(line.startswith("[") and "skipped u2netp+nosuch" in line for line in lines)
    for run in res["runs"]:
        ds = res["datasets"][run["dataset"]]
        assert [r["name"] for r in run["images"]] == ds["names"]  # the check half only
        assert run["meta"]["split"]["part"] == "check"
        assert set(q.KEYS) <= set(run["columns"])
        assert run["protocol"]["failures"] == count_failures(run["images"])
    fast_masks = res["runs"][1]["images"]
    by = {r["name"]: r for r in fast_masks}
    assert by[check[0]]["iou"] < 0.8  # the subject in the background's colours is missed
    assert res["runs"][1]["protocol"]["failures"] >= 1
    # 5 images × (fast: no flip, default: flip) — each computed once
    assert res["inference"]["u2netp"]["misses"] == 10 and res["inference"]["u2netp"]["hits"] == 0
    o = res["overall"]["u2netp · fast"]
    assert o["pooled"]["images"] == 5 and set(o["datasets"]) == {"soft-dev", "masks-dev"}

    text = q.result_markdown(res)
    soft_table, mask_table = q.dataset_table(res, "soft-dev"), q.dataset_table(res, "masks-dev")
    assert "maxF" in mask_table and "maxF" not in soft_table
    assert "check half, 3 of 6 images" in mask_table and "| u2netp · default |" in soft_table
    assert "**overall**" in text and "Failure: SAD > 50 or IoU < 0.8" in text
    assert "skipped u2netp+nosuch · fast" in text

    # a second run reads every map from the cache and gives the same numbers
    again = q.run_quality(rows[:2], sets, cache_dir=tmp_path / "cache")
    assert again["inference"]["u2netp"]["misses"] == 0 and again["inference"]["u2netp"]["hits"] == 10
    for a, b in zip(res["runs"], again["runs"]):
        assert [{k: r[k] for k in q.KEYS} for r in a["images"]] == [
            {k: r[k] for k in q.KEYS} for r in b["images"]
        ]


def test_json_round_trip_and_compare(tmp_path, fake_models, two_sets):
    soft, masks, _, check = two_sets
    sets = [q.prepare_dataset(soft, "check"), q.prepare_dataset(masks, "check")]
    rows, _ = q.plan_rows(["u2netp"], ["fast", "default"])
    res = q.run_quality(rows, sets, cache_dir=tmp_path / "cache")
    res["git"] = q.git_info(ROOT)
    path = q.write_result(res, tmp_path / "reports" / "old.json")
    loaded = q.load_result(path)
    assert json.loads(path.read_text())["format"] == q.FORMAT
    for a, b in zip(res["runs"], loaded["runs"]):
        for ra, rb in zip(a["images"], b["images"]):
            assert ra.keys() == rb.keys()
            assert all(
                ra[k] == rb[k] or (isinstance(ra[k], float) and math.isnan(ra[k]) and math.isnan(rb[k]))
                for k in ra
            )
    assert loaded["datasets"] == json.loads(json.dumps(res["datasets"]))

    same = q.compare_results(loaded, res)
    assert len(same["pairs"]) == 4 and not same["notes"]
    assert all(abs(m["delta_mean"]) < 1e-12 for p in same["pairs"] for m in p["metrics"].values())

    # the new run breaks one image of one row: +60 SAD turns it into a failure
    new = copy.deepcopy(res)
    run = next(r for r in new["runs"] if r["dataset"] == "masks-dev" and r["row"] == "u2netp · default")
    img = next(r for r in run["images"] if r["name"] != check[0])
    img["sad_whole"] += 60.0
    new["runs"].remove(
        next(r for r in new["runs"] if r["dataset"] == "soft-dev" and r["row"] == "u2netp · fast")
    )
    cmp = q.compare_results(loaded, new)
    pair = next(p for p in cmp["pairs"] if p["dataset"] == "masks-dev" and p["row"] == "u2netp · default")
    assert pair["n"] == 3
    assert pair["metrics"]["sad_whole"]["delta_mean"] == pytest.approx(20.0)
    assert pair["failures"]["delta"] == 1 and pair["failures"]["b"] == pair["failures"]["a"] + 1
    assert cmp["only_old"] == [("soft-dev", "u2netp · fast")]
    text = q.compare_markdown(cmp, new["datasets"])
    assert "+20.00" in text and "Δ maxF" in text and "only in old" in text

    # a run of the other half: nothing in common, and said so
    tune = q.run_quality(rows[:1], [q.prepare_dataset(masks, "tune")], cache_dir=tmp_path / "cache")
    cmp = q.compare_results(loaded, tune)
    assert cmp["notes"] == ["different splits: old check, new tune"]
    assert [p["n"] for p in cmp["pairs"]] == [0]
    scores = tmp_path / "reports" / "scores.json"  # a nuggy eval report is not a benchmark run
    scores.write_text(json.dumps({"meta": {}, "images": []}))
    with pytest.raises(ValueError, match="not a nuggy-quality/1 file"):
        q.load_result(scores)
    with pytest.raises(ValueError, match="cannot read"):
        q.load_result(tmp_path / "reports" / "none.json")


FAKE_REMBG = """#!{python}
# rembg p [-m MODEL] [-a] IN OUT, as rembg 2.0 lays it out: OUT/<stem>.png RGBA cut-outs
import os, sys
from pathlib import Path
import numpy as np
from PIL import Image
args = sys.argv[1:]
assert args[0] == "p" and args[1] == "-m"
model, inp, out = args[2], Path(args[-2]), Path(args[-1])
assert (Path(os.environ["U2NET_HOME"]) / (model + ".onnx")).read_bytes() == b"weights"
out.mkdir(parents=True, exist_ok=True)
for f in sorted(inp.iterdir())[1:]:  # the first image fails, as rembg prints and goes on
    rgb = np.asarray(Image.open(f).convert("RGB")).astype(np.int16)
    a = np.where(rgb[..., 0] - rgb[..., 2] > (0 if "-a" in args else 40), 255, 0).astype(np.uint8)
    Image.fromarray(np.dstack([rgb.astype(np.uint8), a])).save(out / (f.stem + ".png"))
"""


def test_rembg_rows_with_a_stand_in_executable(tmp_path, monkeypatch, two_sets):
    import nuggy.sources as sources

    soft, _, _, _ = two_sets
    weights = tmp_path / "u2netp.onnx"
    weights.write_bytes(b"weights")
    monkeypatch.setattr(sources, "ensure_model", lambda name, **kw: weights)
    exe = tmp_path / "rembg"
    exe.write_text(FAKE_REMBG.format(python=sys.executable))
    exe.chmod(0o755)
    rows, _ = q.rembg_rows(["u2netp"])
    ps = q.prepare_dataset(soft, "all")
    res = q.run_quality(rows, [ps], cache_dir=tmp_path / "cache", rembg=str(exe))
    assert [r["row"] for r in res["runs"]] == ["rembg -m u2netp", "rembg -m u2netp -a"]
    for run in res["runs"]:
        assert run["meta"]["source"]["kind"] == "rembg"
        assert [r["name"] for r in run["images"]] == ps.info["names"][1:]
        assert run["failures"][0]["error"].endswith("rembg wrote no output")
        assert run["protocol"]["unscored"] == 1 and run["protocol"]["images"] == 4
        assert run["meta"]["seconds_per_image"] > 0
    loose, tight = (res["runs"][i]["protocol"]["metrics"]["sad_whole"]["mean"] for i in (1, 0))
    assert loose != tight  # -a reached the tool
    assert "+ 1 unscored" in q.dataset_table(res, "soft-dev")
    # no executable: the rows are skipped, not run
    res = q.run_quality(rows, [ps], cache_dir=tmp_path / "cache")
    assert not res["runs"] and all("--rembg" in s["reason"] for s in res["skipped"])


# ---------------------------------------------------------------------------------------------
# the script on the real evaluation sets


def _u2netp_cached() -> bool:
    from nuggy.sources import cached_path

    return cached_path("u2netp") is not None


@pytest.mark.slow
@pytest.mark.needs_model
def test_benchmark_script_on_the_dev_sets(tmp_path):
    if not (EVALDATA / "alphamatting-dev").is_dir() or not (EVALDATA / "ecssd-dev").is_dir():
        pytest.skip(f"evaluation data not found at {EVALDATA}")
    if not _u2netp_cached():
        pytest.skip("u2netp is not cached (nuggy models pull u2netp)")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "quality.py"),
        "--limit",
        "2",
        "--models",
        "u2netp",
        "--presets",
        "fast,default",
        "--cache",
        str(tmp_path / "cache"),
        "--evaldata",
        str(EVALDATA),
    ]
    out = tmp_path / "q.json"
    proc = subprocess.run(cmd + ["--json", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("`python benchmarks/quality.py --limit 2")
    assert "**alphamatting-dev**" in proc.stdout and "**ecssd-dev**" in proc.stdout
    assert "**overall**" in proc.stdout and "| u2netp · default |" in proc.stdout
    res = json.loads(out.read_text())
    assert res["split"] == "check" and res["git"]["commit"] and res["command"].endswith(str(out))
    assert res["datasets"]["alphamatting-dev"]["samples"] == 9
    assert res["datasets"]["alphamatting-dev"]["split_size"] == 4
    assert res["datasets"]["ecssd-dev"]["split_size"] == 250 and res["datasets"]["ecssd-dev"]["binary_gt"]
    assert not res["datasets"]["alphamatting-dev"]["binary_gt"]
    for run in res["runs"]:
        names = [r["name"] for r in run["images"]]
        all_names = sorted(p.stem for p in (EVALDATA / run["dataset"] / "image").iterdir())
        assert len(names) == 2 and set(names) <= set(split_names(all_names, "check"))
        # a real model on real photos: the subject is found on most images
        assert 0.5 < run["protocol"]["metrics"]["iou"]["mean"] <= 1.0
    assert len(res["runs"]) == 4 and res["inference"]["u2netp"]["misses"] == 8
    # again, against the first run: every map from the cache, no change
    proc = subprocess.run(
        cmd + ["--json", str(tmp_path / "q2.json"), "--compare", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Δ = new − old" in proc.stdout and "| u2netp · fast    |      2 |  0.00 |" in proc.stdout
    res2 = json.loads((tmp_path / "q2.json").read_text())
    assert res2["inference"]["u2netp"]["misses"] == 0 and res2["compared_with"]["path"] == str(out)
