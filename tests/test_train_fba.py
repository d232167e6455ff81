"""FBA Matting training (task: fba) on real composites: alphamatting-dev foregrounds over
ecssd-dev photos, downscaled. Compositing and its augmentations, the foreground layouts, the
smoke configuration CI runs, exact resume, the trained checkpoint in ``nuggy remove``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("yaml")
cv2 = pytest.importorskip("cv2")

from nuggy.eval.datasets import DatasetError  # noqa: E402
from nuggy.train.config import AugmentConfig, FBAConfig, load_config  # noqa: E402
from nuggy.train.matting_data import (  # noqa: E402
    compose_sample,
    encode_inputs,
    find_matting_samples,
    trimap_from_alpha,
)

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path("/work/shared/evaldata")
if not EVAL.is_dir():
    EVAL = ROOT.parent / "shared" / "evaldata"
AM, ECSSD = EVAL / "alphamatting-dev", EVAL / "ecssd-dev"
needs_data = pytest.mark.skipif(
    not (AM / "alpha").is_dir() or not (ECSSD / "image").is_dir(),
    reason="evaldata (alphamatting-dev, ecssd-dev) not present",
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _small(a: np.ndarray, side: int, interp) -> np.ndarray:
    h, w = a.shape[:2]
    s = side / max(h, w)
    return cv2.resize(a, (round(w * s), round(h * s)), interpolation=interp)


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    """fg/ + alpha/ of 3 alphamatting-dev photos (the photo as F), 8 ecssd backgrounds, and a
    validation folder: the same 3 foregrounds over 3 other ecssd photos, with trimaps."""
    if not (AM / "alpha").is_dir() or not (ECSSD / "image").is_dir():
        pytest.skip("evaldata not present")
    root = tmp_path_factory.mktemp("fba-data")
    for d in ("fg/fg", "fg/alpha", "bg", "val/image", "val/alpha", "val/trimap"):
        (root / d).mkdir(parents=True)
    names = sorted(p.stem for p in (AM / "alpha").glob("*.png"))[:3]
    bgs = sorted((ECSSD / "image").glob("*.jpg"))
    for p in bgs[:8]:
        cv2.imwrite(str(root / "bg" / p.name), _small(cv2.imread(str(p)), 120, cv2.INTER_AREA))
    for i, n in enumerate(names):
        fg = _small(cv2.imread(str(AM / "image" / f"{n}.png")), 120, cv2.INTER_AREA)
        a = _small(cv2.imread(str(AM / "alpha" / f"{n}.png"), 0), 120, cv2.INTER_AREA)
        cv2.imwrite(str(root / "fg/fg" / f"{n}.png"), fg)
        cv2.imwrite(str(root / "fg/alpha" / f"{n}.png"), a)
        b = cv2.resize(cv2.imread(str(bgs[8 + i])), (a.shape[1], a.shape[0]),
                       interpolation=cv2.INTER_AREA).astype(np.float32)  # fmt: skip
        af = a.astype(np.float32)[..., None] / 255
        comp = np.round(af * fg + (1 - af) * b).astype(np.uint8)
        cv2.imwrite(str(root / "val/image" / f"{n}.png"), comp)
        cv2.imwrite(str(root / "val/alpha" / f"{n}.png"), a)
        cv2.imwrite(str(root / "val/trimap" / f"{n}.png"), trimap_from_alpha(af[..., 0], 7, 7))
    return root


def _smoke_cfg(real: Path, out: Path, *extra: str):
    """configs/fba-smoke-cpu.yaml (what CI runs) pointed at the real composites."""
    return load_config(ROOT / "configs" / "fba-smoke-cpu.yaml", [
        f"data.datasets.0.root={real / 'fg'}", f"data.backgrounds.0={real / 'bg'}",
        f"fba.val.root={real / 'val'}", f"train.output_dir={out}", *extra,
    ])  # fmt: skip


# ---------------------------------------------------------------------------------------------
# compositing


def _scene(h=90, w=120):
    rng = np.random.default_rng(0)
    fg = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((30 - d) / 8, 0, 1).astype(np.float32)  # a disc with a soft 8 px rim
    bg = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    return fg, alpha, bg


def test_compose_sample_is_a_deterministic_valid_composite():
    fg, alpha, bg = _scene()
    fba = FBAConfig(crop_sizes=[48, 64], scale=[0.8, 1.2], trimap_kernel=[3, 7])
    aug = AugmentConfig()
    before = [fg.copy(), alpha.copy(), bg.copy()]
    a = compose_sample(fg, alpha, bg, (40, 56), fba, aug, seed=7)
    b = compose_sample(fg, alpha, bg, (40, 56), fba, aug, seed=7)
    for x, y in zip(before, (fg, alpha, bg)):
        np.testing.assert_array_equal(x, y)  # inputs untouched
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert a["image"].shape == (40, 56, 3) and a["alpha"].shape == (40, 56)
    # I = αF + (1 − α)B up to the 8-bit quantisation of the composite
    comp = a["alpha"][..., None] * a["fg"] + (1 - a["alpha"][..., None]) * a["bg"]
    assert np.abs(comp - a["image"]).max() <= 0.5 / 255 + 1e-6
    t, al = a["trimap"], a["alpha"]
    assert set(np.unique(t)) <= {0, 128, 255}
    assert (al[t == 255] >= 1 - 1e-6).all() and (al[t == 0] <= 1e-6).all()
    # the crop is centred on the unknown region: every crop holds soft alpha
    for seed in range(12):
        s = compose_sample(fg, alpha, bg, (40, 56), fba, aug, seed=seed)
        assert ((s["alpha"] > 0.01) & (s["alpha"] < 0.99)).any(), seed
        assert (s["trimap"] == 128).any()
    differs = compose_sample(fg, alpha, bg, (40, 56), fba, aug, seed=8)
    assert not np.array_equal(differs["image"], a["image"])


def test_trimap_from_alpha_bands_grow_with_the_kernels():
    _, alpha, _ = _scene()
    soft = (alpha > 0) & (alpha < 1)
    small, large = trimap_from_alpha(alpha, 3, 3), trimap_from_alpha(alpha, 15, 15)
    assert (small[soft] == 128).all() and (large[soft] == 128).all()
    assert (large == 128).sum() > (small == 128).sum() > soft.sum()


def test_encode_inputs_match_what_the_predictor_feeds_the_network():
    from nuggy.models.fba import normalise_image, trimap_clicks, trimap_two_channel

    _, alpha, _ = _scene(32, 40)
    tri = trimap_from_alpha(alpha, 5, 5)
    img = np.random.default_rng(1).random((32, 40, 3), dtype=np.float32)
    enc = encode_inputs(img, tri)
    two = trimap_two_channel(tri)
    np.testing.assert_array_equal(enc["trimap"], two.transpose(2, 0, 1))
    np.testing.assert_array_equal(enc["clicks"], trimap_clicks(two))
    np.testing.assert_allclose(enc["image_n"], normalise_image(img).transpose(2, 0, 1))
    assert enc["clicks"].shape == (6, 32, 40)


# ---------------------------------------------------------------------------------------------
# foreground layouts


def _png(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), a)


def test_foreground_layouts(tmp_path):
    fg, a8 = np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 200, np.uint8)
    for sub in ("Adobe-licensed images", "Other"):
        _png(tmp_path / "dim/Training_set" / sub / "fg/x.png", fg)
        _png(tmp_path / "dim/Training_set" / sub / "alpha/x.png", a8)
    got = find_matting_samples(tmp_path / "dim", "composition1k", "Training_set")
    assert [s.name for s in got] == ["Adobe-licensed images/x", "Other/x"]
    _png(tmp_path / "d646/Train/FG/a.png", fg)
    _png(tmp_path / "d646/Train/GT/a.png", a8)
    assert len(find_matting_samples(tmp_path / "d646", "distinctions646", "Train")) == 1
    _png(tmp_path / "am2k/train/original/m.jpg", fg)
    _png(tmp_path / "am2k/train/mask/m.png", a8)
    (s,) = find_matting_samples(tmp_path / "am2k", "am2k", "train")
    assert s.image.parent.name == "original"
    _png(tmp_path / "am2k/train/fg/m.png", fg)  # AM-2k's own foregrounds win when present
    (s,) = find_matting_samples(tmp_path / "am2k", "am2k", "train")
    assert s.image.parent.name == "fg"
    _png(tmp_path / "gen/image/p.png", fg)
    _png(tmp_path / "gen/alpha/p.png", a8)
    assert len(find_matting_samples(tmp_path / "gen", "generic")) == 1
    with pytest.raises(DatasetError, match=r"fg/ and alpha/.*sub-folders here: FG, GT"):
        find_matting_samples(tmp_path / "d646/Train", "composition1k")
    _png(tmp_path / "gen/alpha/orphan.png", a8)
    with pytest.raises(DatasetError, match="orphan"):
        find_matting_samples(tmp_path / "gen", "generic")


# ---------------------------------------------------------------------------------------------
# training on real composites


@needs_data
def test_smoke_config_runs_and_resume_is_exact(real, tmp_path):
    """CI's smoke configuration end to end; stopping after 4 steps and resuming gives the
    weights and Adam state of the uninterrupted 8-step run, bit for bit."""
    from nuggy.train.loop import load_training_checkpoint, train

    full = train(_smoke_cfg(real, tmp_path / "full"))
    assert full["step"] == 8 and full["best_path"]
    part = train(_smoke_cfg(real, tmp_path / "part"), stop_at_step=4)
    assert part["stopped"] and part["step"] == 4
    res = train(resume=tmp_path / "part")
    assert res["step"] == 8
    a = load_training_checkpoint(tmp_path / "full/last.pt")
    b = load_training_checkpoint(tmp_path / "part/last.pt")
    assert a["kind"] == "fba" and a["arch"] == "fba" and a["model_kwargs"] == {"width_divisor": 16}
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and len(sa) > 0
    for i in sa:
        for k in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(sa[i][k]), torch.as_tensor(sb[i][k])), (i, k)
    recs = [json.loads(x) for x in (tmp_path / "full/metrics.jsonl").read_text().splitlines()]
    train_recs = [r for r in recs if r["kind"] == "train"]
    assert {"loss/alpha_l1", "loss/alpha_lap", "loss/alpha_grad", "loss/fb_excl"} <= set(train_recs[-1])
    val = [r for r in recs if r["kind"] == "val"]
    assert [r["step"] for r in val] == [4, 8]
    assert all(np.isfinite(r["val/sad"]) and r["val/sad"] > 0 for r in val)
    assert (tmp_path / "full/metrics.csv").is_file()


@needs_data
@pytest.mark.slow
def test_tiny_fba_overfits_real_composites_and_runs_in_nuggy_remove(real, tmp_path):
    """A smoke overfit (not a quality claim): 3 real foregrounds, 60 steps of a width/32 FBA; the loss and the
    SAD in the unknown region of the validation composites (the same foregrounds over other
    photos) fall. The best checkpoint then drives ``nuggy remove --matting fba
    --matting-weights``."""
    from nuggy.cli.main import main
    from nuggy.train.loop import train

    cfg = _smoke_cfg(real, tmp_path / "run", "train.steps=60", "val.every=20",
                     "train.log_every=10", "train.checkpoint_every=20", "optim.lr=2e-3",
                     "model.width_divisor=32", "augment.color_jitter.p=0")  # fmt: skip
    res = train(cfg)
    recs = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    loss = [r["loss"] for r in recs if r["kind"] == "train"]
    sad = [r["val/sad"] for r in recs if r["kind"] == "val"]
    assert np.mean(loss[-3:]) < 0.7 * np.mean(loss[:3]), loss
    assert sad[-1] < 0.9 * sad[0], sad
    assert res["best"]["metric"] == "sad"

    photo = tmp_path / "photo.png"
    img = cv2.imread(str(real / "val/image" / sorted(p.name for p in (real / "val/image").iterdir())[0]))
    cv2.imwrite(str(photo), img)
    out = tmp_path / "cut.png"
    rc = main(["remove", str(photo), "-o", str(out), "--model", "u2netp", "--matting", "fba",
               "--matting-weights", res["best_path"], "-q"])  # fmt: skip
    assert rc == 0 and out.is_file()
    from PIL import Image

    with Image.open(out) as im:
        assert im.mode == "RGBA" and im.size == (img.shape[1], img.shape[0])


@needs_data
def test_fba_predictor_loads_our_checkpoints_and_refuses_others(real, tmp_path):
    from nuggy.errors import ConfigError
    from nuggy.runtime.torch import FBAPredictor
    from nuggy.train.loop import train

    res = train(_smoke_cfg(real, tmp_path / "r", "train.steps=1", "val.every=0", "fba.val.root=null"))
    pred = FBAPredictor(res["last"])
    assert pred.model.encoder.conv1.out_channels == 64 // 16
    img = cv2.imread(str(next((real / "val/image").iterdir())))[..., ::-1].copy()
    tri = cv2.imread(str(next((real / "val/trimap").iterdir())), 0)
    a, f, b = pred.predict(img, tri)
    assert a.shape == tri.shape and (a[tri == 255] == 1).all() and (a[tri == 0] == 0).all()
    # init a second run from the first run's checkpoint (ours), and fine-tune
    res2 = train(_smoke_cfg(real, tmp_path / "r2", "train.steps=1", "val.every=0",
                            "fba.val.root=null", f"model.init={res['last']}"))  # fmt: skip
    assert res2["step"] == 1
    other = tmp_path / "seg.pt"
    torch.save({"format": "nuggy-train-checkpoint", "arch": "u2netp", "kind": "segmentation",
                "model": {}}, other)  # fmt: skip
    with pytest.raises(ConfigError, match="u2netp.*not FBA Matting"):
        FBAPredictor(other)
