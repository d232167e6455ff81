"""Training data: every dataset layout, clear errors, deterministic augmentation, the
weighted DDP-aware mixture sampler, synthetic thin structures."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nuggy.train.config import AugmentConfig, DatasetConfig
from nuggy.train.data import DatasetError, augment_pair, find_samples, open_source, read_mask
from nuggy.train.mixture import MixtureSampler, mix_report
from nuggy.train.synthetic import THIN_KINDS, make_sample, simple_shapes, write_dataset

LAYOUTS = ["dis5k", "am2k", "thinobject5k", "trans10k", "generic"]


@pytest.fixture(scope="module")
def layout_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    for lay in LAYOUTS:
        write_dataset(root / lay, lay, 3, size=24, seed=1)
    write_dataset(root / "dis5k", "dis5k", 2, size=24, seed=2, split="DIS-VD")
    write_dataset(root / "thinobject5k", "thinobject5k", 2, size=24, seed=3, split="val")
    return root


# ---------------------------------------------------------------------------------------------
# layouts


@pytest.mark.parametrize(
    "layout, split", [("dis5k", "DIS-TR"), ("am2k", "train"), ("thinobject5k", "train"),
                      ("trans10k", "train"), ("generic", None)],
)  # fmt: skip
def test_every_layout_pairs_images_and_masks(layout_root, layout, split):
    samples = find_samples(layout_root / layout, layout, split)
    assert len(samples) == 3
    for s in samples:
        assert s.image.is_file() and s.alpha.is_file()
        m = read_mask(s.alpha, layout)
        assert m.dtype == np.float32 and m.shape == (24, 24) and 0 <= m.min() <= m.max() <= 1
    if layout == "trans10k":
        assert samples[0].alpha.name.endswith("_mask.png")
        assert set(np.unique(read_mask(samples[0].alpha, layout))) <= {0.0, 1.0}


def test_validation_splits(layout_root):
    cfg = DatasetConfig("d", "dis5k", str(layout_root / "dis5k"), "DIS-TR", val_split="DIS-VD")
    assert len(open_source(cfg)) == 3 and len(open_source(cfg, val=True)) == 2
    t = DatasetConfig("t", "thinobject5k", str(layout_root / "thinobject5k"), "train", val_split="val")
    assert len(open_source(t)) == 3 and len(open_source(t, val=True)) == 2
    # no list file named: every pair
    assert len(find_samples(layout_root / "thinobject5k", "thinobject5k", None)) == 5


def test_clear_errors(tmp_path, layout_root):
    with pytest.raises(DatasetError, match="not found"):
        find_samples(tmp_path / "nowhere", "am2k", "train")
    with pytest.raises(DatasetError, match=r"no split 'DIS-XX'.*DIS-TR"):
        find_samples(layout_root / "dis5k", "dis5k", "DIS-XX")
    with pytest.raises(DatasetError, match=r"no split 'valid'.*train"):
        find_samples(layout_root / "trans10k", "trans10k", "valid")
    # a missing mask is listed by name
    root = tmp_path / "am"
    write_dataset(root, "am2k", 3, size=16, seed=4)
    victim = sorted((root / "train" / "mask").iterdir())[1]
    victim.unlink()
    with pytest.raises(DatasetError, match=victim.stem):
        find_samples(root, "am2k", "train")
    # an empty dataset
    for d in ("images", "masks"):
        (tmp_path / "empty" / "train" / d).mkdir(parents=True)
    with pytest.raises(DatasetError, match="no image"):
        find_samples(tmp_path / "empty", "trans10k", "train")
    # a ThinObject-5K list naming a file that is not there
    lst = layout_root / "thinobject5k" / "list" / "broken.txt"
    lst.write_text("ghost.png\n")
    with pytest.raises(DatasetError, match="ghost"):
        find_samples(layout_root / "thinobject5k", "thinobject5k", "broken")
    with pytest.raises(DatasetError, match=r"lists here: .*train"):
        find_samples(layout_root / "thinobject5k", "thinobject5k", "nolist")
    cfg = DatasetConfig("mine", "generic", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="dataset 'mine'"):
        open_source(cfg)


# ---------------------------------------------------------------------------------------------
# augmentation


def test_augmentation_is_a_function_of_the_seed():
    image, alpha, _, _ = make_sample(5, (40, 60))
    cfg = AugmentConfig()
    a1, m1 = augment_pair(image, alpha, (32, 32), cfg, seed=123)
    a2, m2 = augment_pair(image, alpha, (32, 32), cfg, seed=123)
    a3, m3 = augment_pair(image, alpha, (32, 32), cfg, seed=124)
    assert a1.shape == (32, 32, 3) and m1.shape == (32, 32) and a1.dtype == np.uint8
    assert np.array_equal(a1, a2) and np.array_equal(m1, m2)
    assert not np.array_equal(a1, a3)
    none, m4 = augment_pair(None, alpha, (32, 32), cfg, seed=123)
    assert none is None and np.array_equal(m4, m1)  # mask-only gets the same geometry


def test_flip_only_mirrors_image_and_mask_together():
    image, alpha, _, _ = make_sample(6, 32)
    cfg = AugmentConfig()
    cfg.random_resized_crop.enabled = False
    cfg.color_jitter.p = 0.0
    cfg.hflip = 1.0
    a, m = augment_pair(image, alpha, (32, 32), cfg, seed=0)
    assert np.array_equal(a, image[:, ::-1]) and np.array_equal(m, alpha[:, ::-1])


# ---------------------------------------------------------------------------------------------
# mixture sampler


def _sampler(**kw) -> MixtureSampler:
    args = dict(sizes=[1000, 10, 50], weights=[1, 1, 2], batch_size=4, micro_batches=500, seed=7)
    args.update(kw)
    sizes, weights = args.pop("sizes"), args.pop("weights")
    return MixtureSampler(sizes, weights, **args)


def test_mixture_follows_weights_not_sizes():
    stream = _sampler().epoch_stream(0)
    frac = np.bincount(stream[:, 0], minlength=3) / len(stream)
    assert np.allclose(frac, [0.25, 0.25, 0.5], atol=0.03)
    # a small source is cycled through completely before repeating
    small = stream[stream[:, 0] == 1, 1]
    first = small[: 10 * (len(small) // 10)]
    assert set(Counter(first).values()) == {len(first) // 10}
    rep = mix_report(np.bincount(stream[:, 0]).tolist(), ["big", "small", "mid"], [1, 1, 2])
    assert rep["mid"]["target"] == 0.5 and rep["small"]["count"] == len(small)


def test_mixture_is_reproducible_and_epochs_differ():
    a, b = _sampler().epoch_stream(3), _sampler().epoch_stream(3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _sampler().epoch_stream(4))
    assert not np.array_equal(a, _sampler(seed=8).epoch_stream(3))
    assert _sampler(weights=[1, 0, 1]).epoch_stream(0)[:, 0].tolist().count(1) == 0


def test_ddp_shards_are_disjoint_and_cover_the_single_process_stream():
    world, B = 3, 2
    single = _sampler(batch_size=B * world, micro_batches=20)
    ranks = [_sampler(batch_size=B, micro_batches=20, num_replicas=world, rank=r) for r in range(world)]
    whole = single.rank_batches(0)  # (20, 6, 3)
    parts = [s.rank_batches(0) for s in ranks]
    for m in range(20):
        got = np.concatenate([p[m] for p in parts])
        assert np.array_equal(got, whole[m])  # same items per step, in rank order
    # positions in the stream are disjoint between ranks
    pos = [
        set(range(m * B * world + r * B, m * B * world + (r + 1) * B))
        for r in range(world)
        for m in range(20)
    ]
    assert len(set().union(*pos)) == sum(len(p) for p in pos)
    # resuming mid-epoch continues the same stream
    s = ranks[1]
    s.set_epoch(0, start=5)
    resumed = [b for b in s]
    assert len(resumed) == 15 and resumed[0] == [tuple(r) for r in parts[1][5].tolist()]


def test_sampler_rejects_bad_input():
    with pytest.raises(ValueError):
        MixtureSampler([10, 0], [1, 1], batch_size=1, micro_batches=1)
    with pytest.raises(ValueError):
        MixtureSampler([10], [0], batch_size=1, micro_batches=1)
    with pytest.raises(ValueError):
        MixtureSampler([10], [1], batch_size=1, micro_batches=1, num_replicas=2, rank=2)


# ---------------------------------------------------------------------------------------------
# synthetic data


@pytest.mark.parametrize("kind", THIN_KINDS)
def test_thin_structures_have_fractional_edges(kind):
    image, alpha, fg, bg = make_sample(11, 64, kind=kind)
    assert image.shape == (64, 64, 3) and alpha.shape == (64, 64)
    frac = ((alpha > 0.02) & (alpha < 0.98)).mean()
    assert 0.005 < frac and alpha.max() > 0.9
    again = make_sample(11, 64, kind=kind)
    assert np.array_equal(again[0], image)
    # the composite is αF + (1 − α)B
    comp = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    assert np.abs(comp * 255 - image).max() <= 0.51


def test_simple_shapes():
    image, mask = simple_shapes(2, 32)
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32) and mask.max() == 1.0
