"""Checks that run before the first training step and in ``nuggy train --check``; the
transparent-dataset warning; ``nuggy models export`` on checkpoints that are not exportable;
the DIS ground-truth threshold (``> 128``, as PySODMetrics)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("yaml")

from nuggy.train.config import load_config  # noqa: E402
from nuggy.train.synthetic import write_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    """configs/nuggy-mix.yaml's four datasets, 2 tiny samples each, under data/."""
    root = tmp_path_factory.mktemp("mix")
    write_dataset(root / "DIS5K", "dis5k", 2, size=24, seed=1, split="DIS-TR")
    write_dataset(root / "DIS5K", "dis5k", 1, size=24, seed=2, split="DIS-VD")
    write_dataset(root / "ThinObject5K", "thinobject5k", 2, size=24, seed=3)
    write_dataset(root / "AM-2k", "am2k", 2, size=24, seed=4, split="train")
    write_dataset(root / "AM-2k", "am2k", 1, size=24, seed=5, split="validation")
    write_dataset(root / "Trans10K", "trans10k", 2, size=24, seed=6, split="train")
    return root


def _mix_overrides(root: Path, *extra: str) -> list[str]:
    return [
        f"data.datasets.0.root={root / 'DIS5K'}", f"data.datasets.1.root={root / 'ThinObject5K'}",
        "data.datasets.1.split=null", "data.datasets.1.val_split=null",
        f"data.datasets.2.root={root / 'AM-2k'}", f"data.datasets.3.root={root / 'Trans10K'}",
        *extra,
    ]  # fmt: skip


def _check(args: list[str]) -> tuple[int, float]:
    """``nuggy train --check`` in-process: (exit code, seconds)."""
    from nuggy.cli import train as cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    t = time.perf_counter()
    rc = cli.run(p.parse_args(args))
    return rc, time.perf_counter() - t


def test_check_fails_fast_on_licence_missing_root_and_empty_split(mix, tmp_path, capsys):
    pytest.importorskip("torch")
    cfg = str(ROOT / "configs" / "nuggy-mix.yaml")
    sets = [x for o in _mix_overrides(mix) for x in ("--set", o)]
    # the registry isnet weights are AGPL-3.0: not accepted -> exit 2 before any step
    rc, secs = _check(["--config", cfg, "--check", *sets])
    err = capsys.readouterr().err
    assert rc == 2 and "model.accept_license" in err and "agpl-3.0" in err, err
    assert secs < 10, secs
    rc, secs = _check(["--config", cfg, "--check", *sets, "--set", "model.accept_license=agpl-3.0"])
    out = capsys.readouterr().out
    assert rc == 0 and "# dis5k (dis5k): 2 training samples, 1 validation" in out, out
    assert "# trans10k: excluded" in out and secs < 10
    # a dataset root that does not exist
    rc, secs = _check(["--config", cfg, "--check", *sets, "--set", "model.accept_license=agpl-3.0",
                       "--set", f"data.datasets.2.root={tmp_path / 'nowhere'}"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "nowhere" in err and "not found" in err and secs < 10, err
    # an empty split
    empty = tmp_path / "AM-2k"
    for sub in ("train/original", "train/mask"):
        (empty / sub).mkdir(parents=True)
    rc, secs = _check(["--config", cfg, "--check", *sets, "--set", "model.accept_license=agpl-3.0",
                       "--set", f"data.datasets.2.root={empty}"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "am2k" in err and "train" in err and secs < 10, err


def test_train_stops_on_the_licence_before_stage_one(mix, tmp_path):
    """The licence used to be checked after the whole GT encoder had trained."""
    pytest.importorskip("torch")
    from nuggy.train.config import ConfigError
    from nuggy.train.loop import train

    cfg = load_config(ROOT / "configs" / "nuggy-mix.yaml", _mix_overrides(
        mix, f"train.output_dir={tmp_path / 'run'}", "gt_encoder.steps=1", "train.steps=1",
        "data.input_size=32", "model.width_divisor=8", "data.num_workers=0"))  # fmt: skip
    with pytest.raises(ConfigError, match="accept_license"):
        train(cfg)
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test_fba_check_names_missing_backgrounds(tmp_path, capsys):
    pytest.importorskip("torch")
    write_dataset(tmp_path / "fg", "generic", 2, size=24, seed=1)
    (tmp_path / "bg").mkdir()
    args = [
        "--config",
        str(ROOT / "configs" / "fba-smoke-cpu.yaml"),
        "--check",
        "--set",
        f"data.datasets.0.root={tmp_path / 'fg'}",
        "--set",
        f"data.backgrounds.0={tmp_path / 'bg'}",
        "--set",
        "fba.val.root=null",
    ]
    rc, secs = _check(args)
    err = capsys.readouterr().err
    assert rc == 2 and "data.backgrounds" in err and "no images" in err and secs < 10, err


def test_transparent_datasets_warn_with_the_reason(mix, caplog):
    from nuggy.train.preflight import preflight

    base = _mix_overrides(mix, "model.init=null")
    cfg = load_config(ROOT / "configs" / "nuggy-mix.yaml", base)
    assert preflight(cfg).warnings == []  # Trans10K excluded: silent
    cfg = load_config(ROOT / "configs" / "nuggy-mix.yaml", [*base, "data.exclude=[]"])
    with caplog.at_level(logging.WARNING, logger="nuggy.train"):
        rep = preflight(cfg)
    (w,) = rep.warnings
    assert "trans10k" in w and "fur" in w and "data.exclude" in w
    assert any("fur" in r.getMessage() for r in caplog.records)
    # any dataset flagged transparent: true warns as well
    cfg = load_config(ROOT / "configs" / "nuggy-mix.yaml",
                      [*base, "data.datasets.2.transparent=true"])  # fmt: skip
    (w,) = preflight(cfg, warn=False).warnings
    assert "am2k" in w and "transparent: true" in w


def test_export_refuses_a_gt_encoder_checkpoint_and_says_what_to_export(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from nuggy.cli.main import main
    from nuggy.models import create_model

    run = tmp_path / "run"
    (run / "gt_encoder").mkdir(parents=True)
    enc = create_model("isnet_gt_encoder", width_divisor=8)
    ckpt = run / "gt_encoder" / "best.pt"
    torch.save({"format": "nuggy-train-checkpoint", "kind": "gt_encoder",
                "arch": "isnet_gt_encoder", "model_kwargs": {"width_divisor": 8},
                "input_size": [32, 32], "mean": [0.0], "std": [1.0],
                "model": enc.state_dict()}, ckpt)  # fmt: skip
    rc = main(["models", "export", str(ckpt), "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "ground-truth encoder of stage 1" in err and str(run.resolve() / "best.pt") in err, err
    assert "channel" not in err.lower()  # not the raw torch shape error
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.filterwarnings("ignore:This class will be removed")
def test_dis_metrics_binarise_8bit_gt_above_128_like_pysodmetrics():
    sod = pytest.importorskip("py_sod_metrics")
    from nuggy.eval.metrics import mae, max_f

    rng = np.random.default_rng(0)
    pred = rng.integers(0, 256, (40, 50)).astype(np.uint8)
    gt = np.where(rng.random((40, 50)) < 0.5, 0, 255).astype(np.uint8)
    gt[:, :20] = 128  # exactly on the threshold: background for the reference
    ref_mae, ref_f = sod.MAE(), sod.Fmeasure()
    ref_mae.step(pred, gt)  # the reference path: prepare_data (gt > 128, pred min-max)
    ref_f.step(pred, gt)
    p = pred.astype(np.float64) / 255
    p = (p - p.min()) / (p.max() - p.min())
    assert mae(p, gt) == pytest.approx(float(ref_mae.get_results()["mae"]), rel=1e-12)
    assert mae(p, gt.astype(np.float64) / 255) == mae(p, gt)  # a float copy scores the same
    assert max_f(p, gt) == pytest.approx(float(ref_f.get_results()["fm"]["curve"].max()), rel=1e-9)
    # 128 is background, 129 foreground
    assert mae(np.zeros((1, 2)), np.array([[128, 129]], np.uint8)) == 0.5
