"""The tune / check split (nuggy.eval.split): balanced, deterministic, disjoint, covering."""

from __future__ import annotations

import hashlib
import random

import pytest
from conftest import EVALDATA

from nuggy.eval.split import SPLITS, split_names, split_of

# the naming schemes of the real sets: ECSSD's even half, alphamatting.com's GTxx
ECSSD_NAMES = [f"{i:04d}" for i in range(2, 1001, 2)]
AM_NAMES = [f"GT{i:02d}" for i in range(1, 28, 3)]


@pytest.mark.parametrize("names", [ECSSD_NAMES, AM_NAMES, ["only"], []])
def test_halves_are_balanced_disjoint_and_cover(names):
    tune, check = split_names(names, "tune"), split_names(names, "check")
    assert len(tune) - len(check) in (0, 1)  # tune gets the odd one
    assert not set(tune) & set(check)
    assert sorted(tune + check) == sorted(names)
    assert split_names(names, "all") == names
    # original order is kept inside each half
    assert tune == [n for n in names if n in set(tune)]


def test_split_is_deterministic_and_independent_of_order():
    tune = split_names(ECSSD_NAMES, "tune")
    assert split_names(list(ECSSD_NAMES), "tune") == tune
    shuffled = ECSSD_NAMES[:]
    random.Random(3).shuffle(shuffled)
    assert set(split_names(shuffled, "tune")) == set(tune)
    # fixed by the salted SHA-1 of each name: the same on every machine
    first = sorted(ECSSD_NAMES, key=lambda n: hashlib.sha1(b"nuggy-split:" + n.encode()).hexdigest())
    assert set(tune) == set(first[:250])
    assert split_of(tune[0], ECSSD_NAMES) == "tune"
    assert split_of(split_names(ECSSD_NAMES, "check")[0], ECSSD_NAMES) == "check"


def test_split_is_unrelated_to_file_numbering():
    tune = set(split_names(ECSSD_NAMES, "tune"))
    low = sum(1 for n in ECSSD_NAMES[:250] if n in tune)
    # a numbering-based split would put all 250 (or none) of the first half in tune
    assert 100 < low < 150


def test_split_errors():
    with pytest.raises(ValueError, match="unknown split 'test'"):
        split_names(["a"], "test")
    with pytest.raises(ValueError, match="unique"):
        split_names(["a", "a"], "tune")
    assert SPLITS == ("tune", "check", "all")


def test_real_datasets_split_in_halves():
    from nuggy.eval.datasets import open_dataset

    if not (EVALDATA / "ecssd-dev").is_dir():
        pytest.skip(f"evaluation data not found at {EVALDATA}")
    for name, n_tune in (("ecssd-dev", 250), ("alphamatting-dev", 5)):
        names = [s.name for s in open_dataset(EVALDATA / name)]
        assert len(split_names(names, "tune")) == n_tune
        assert len(split_names(names, "check")) == len(names) - n_tune
