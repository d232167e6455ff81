"""Training config: YAML → validated dataclasses, clear errors, overrides, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("yaml")

from nuggy.train.config import (  # noqa: E402
    ConfigError,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)

ROOT = Path(__file__).resolve().parents[1]


def _minimal(**extra) -> dict:
    d = {
        "model": {"arch": "u2netp"},
        "data": {"datasets": [{"name": "a", "layout": "generic", "root": "x"}]},
        "train": {"steps": 10},
    }
    for k, v in extra.items():
        d.setdefault(k, {}).update(v)
    return d


def test_shipped_recipe_loads_and_excludes_trans10k():
    cfg = load_config(ROOT / "configs" / "nuggy-mix.yaml")
    assert cfg.model.arch == "isnet"
    assert "trans10k" in [d.name for d in cfg.data.datasets]
    assert "trans10k" not in [d.name for d in cfg.active_datasets]
    assert cfg.uses_gt_encoder
    assert cfg.input_hw == (1024, 1024)
    assert cfg.val.metric in cfg.val.metrics


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    load_config(path)


def test_defaults_and_coercions():
    cfg = config_from_dict(_minimal(data={"input_size": 64}, model={"freeze_bn": True}))
    assert cfg.input_hw == (64, 64)
    assert cfg.model.freeze_bn == "true"  # YAML bool → the literal
    assert cfg.optim.lr == 1e-3
    cfg = config_from_dict(_minimal(optim={"lr": "1e-4"}))  # PyYAML reads 1e-4 as a string
    assert cfg.optim.lr == pytest.approx(1e-4)
    cfg = config_from_dict(_minimal(val={"metric": "hce", "metrics": ["mae"]}))
    assert cfg.val.metrics[0] == "hce"  # the selection metric is always computed


@pytest.mark.parametrize(
    "patch, words",
    [
        ({"optim": {"lrr": 1}}, ["optim", "lrr", "known", "lr"]),
        ({"model": {"arch": "resnet"}}, ["model.arch", "resnet", "isnet"]),
        ({"train": {"batch_size": 0}}, ["train.batch_size"]),
        ({"train": {"batch_size": 2.5}}, ["train.batch_size", "integer"]),
        ({"data": {"exclude": ["trans10"]}}, ["data.exclude", "trans10", "spelling"]),
        ({"data": {"exclude": ["a"]}}, ["every dataset is excluded"]),
        ({"schedule": {"name": "linear"}}, ["schedule.name", "cosine"]),
        ({"train": {"amp": "fp8"}}, ["train.amp"]),
        ({"val": {"metrics": ["iou"]}}, ["val.metrics", "iou"]),
        ({"augment": {"hflip": 2}}, ["augment.hflip"]),
        ({"train": {"device": "tpu"}}, ["train.device"]),
    ],
)
def test_errors_name_the_key(patch, words):
    with pytest.raises(ConfigError) as exc:
        config_from_dict(_minimal(**patch))
    for w in words:
        assert w in str(exc.value)


def test_dataset_errors():
    d = _minimal()
    d["data"]["datasets"].append({"name": "a", "layout": "dis5k", "root": "y"})
    with pytest.raises(ConfigError, match="duplicate"):
        config_from_dict(d)
    d = _minimal()
    d["data"]["datasets"][0]["layout"] = "coco"
    with pytest.raises(ConfigError, match=r"layout.*coco"):
        config_from_dict(d)
    d = _minimal()
    del d["data"]["datasets"][0]["root"]
    with pytest.raises(ConfigError, match=r"root: required"):
        config_from_dict(d)
    d = _minimal()
    del d["train"]["steps"]
    with pytest.raises(ConfigError, match="steps or epochs"):
        config_from_dict(d)


def test_overrides_and_round_trip(tmp_path):
    cfg = config_from_dict(
        _minimal(), overrides=["optim.lr=5e-5", "data.datasets.0.weight=3", "train.amp=bf16"]
    )
    assert cfg.optim.lr == pytest.approx(5e-5)
    assert cfg.data.datasets[0].weight == 3.0
    assert cfg.train.amp == "bf16"
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        config_from_dict(_minimal(), overrides=["optim.lr"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config(path)
    assert config_to_dict(again) == config_to_dict(cfg)


def test_load_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("model: {arch: u2netp}\ntrain: {steps: 1}\ndata: {datasets: []}\n")
    with pytest.raises(ConfigError, match=r"wrong.yaml.*at least one dataset"):
        load_config(wrong)
