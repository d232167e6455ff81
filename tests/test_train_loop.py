"""The training loop on tiny synthetic datasets (CPU): both IS-Net stages over every layout,
bit-exact resume, overfitting, a 2-process gloo DDP run, the CLI and ONNX export."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("yaml")

from nuggy.train.config import config_from_dict, config_to_dict, load_config  # noqa: E402
from nuggy.train.loop import load_training_checkpoint, train  # noqa: E402
from nuggy.train.synthetic import write_dataset  # noqa: E402

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ["dis5k", "am2k", "thinobject5k", "trans10k", "generic"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models are fastest (and deterministic) on one thread; the CI box is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train-data")
    for lay in LAYOUTS:
        write_dataset(root / lay, lay, 4, size=40, seed=1)
    write_dataset(root / "dis5k", "dis5k", 2, size=40, seed=2, split="DIS-VD")
    write_dataset(root / "shapes", "generic", 4, size=48, seed=3, shapes=True)
    return root


def _mix(data: Path) -> list[dict]:
    return [
        {"name": "dis5k", "layout": "dis5k", "root": str(data / "dis5k"), "split": "DIS-TR",
         "val_split": "DIS-VD", "weight": 2},
        {"name": "am2k", "layout": "am2k", "root": str(data / "am2k"), "split": "train"},
        {"name": "thin", "layout": "thinobject5k", "root": str(data / "thinobject5k"), "split": "train"},
        {"name": "trans10k", "layout": "trans10k", "root": str(data / "trans10k"), "split": "train"},
        {"name": "generic", "layout": "generic", "root": str(data / "generic")},
    ]  # fmt: skip


def _cfg(root: Path, out: Path, arch: str = "u2netp", **sections) -> dict:
    d = {
        "model": {"arch": arch, "width_divisor": 8 if arch == "isnet" else 4},
        "gt_encoder": {"steps": 2, "checkpoint_every": 1, "val_every": 2},
        "data": {"input_size": 32, "num_workers": 0, "exclude": ["trans10k"], "datasets": _mix(root)},
        "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4},
        "schedule": {"name": "cosine", "warmup_steps": 1},
        "train": {"batch_size": 2, "steps": 3, "checkpoint_every": 2, "log_every": 1,
                  "output_dir": str(out)},
        "val": {"every": 2, "metrics": ["max_f", "mae"]},
    }  # fmt: skip
    for k, v in sections.items():
        d.setdefault(k, {}).update(v)
    return d


def _records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------


def test_isnet_two_stages_over_every_layout(data, tmp_path):
    out = tmp_path / "run"
    raw = _cfg(data, out, "isnet", val={"every": 2, "metrics": ["max_f", "mae", "hce", "sad"]})
    res = train(config_from_dict(raw))
    assert res["step"] == 3 and not res["stopped"] and res["best_path"]
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "last.pt", "best.pt", "metrics.jsonl", "metrics.csv", "plot.png",
            "gt_encoder"} <= names  # fmt: skip
    assert {"last.pt", "best.pt", "metrics.jsonl"} <= {p.name for p in (out / "gt_encoder").iterdir()}
    # the resolved config round-trips
    assert config_to_dict(load_config(out / "config.yaml")) == config_to_dict(config_from_dict(raw))

    stage1 = load_training_checkpoint(out / "gt_encoder" / "last.pt")
    assert stage1["kind"] == "gt_encoder" and stage1["arch"] == "isnet_gt_encoder"
    last = load_training_checkpoint(out / "last.pt")
    assert last["kind"] == "segmentation" and last["step"] == 3 and last["arch"] == "isnet"
    assert last["input_size"] == [32, 32] and last["mean"] == [128.0] * 3 and last["std"] == [256.0] * 3
    assert set(last["gt_encoder"]) == set(stage1["model"])
    for key in ("optimizer", "scheduler", "rng", "config", "best"):
        assert key in last

    recs = _records(out / "metrics.jsonl")
    train_recs = [r for r in recs if r["kind"] == "train"]
    assert [r["step"] for r in train_recs] == [1, 2, 3]
    assert all("loss/fs" in r and r["loss/fs"] > 0 for r in train_recs)  # feature sync is on
    val = [r for r in recs if r["kind"] == "val"]
    assert [r["step"] for r in val] == [2, 3]
    assert {"val/dis5k/max_f", "val/dis5k/hce", "val/dis5k/sad", "val/max_f"} <= set(val[-1])
    mixes = [r["mix"] for r in recs if r["kind"] == "mix"]
    assert mixes and all(set(m) == {"dis5k", "am2k", "thin", "generic"} for m in mixes)
    assert sum(m["dis5k"]["count"] for m in mixes) + sum(m["am2k"]["count"] for m in mixes) > 0
    assert "val/max_f" in (out / "metrics.csv").read_text().splitlines()[0]

    # the checkpoint loads into the model (state dict under "model")
    from nuggy.models import load_checkpoint

    model = load_checkpoint("isnet", out / "best.pt", width_divisor=8)
    assert model.conv_in.weight.shape[0] == 8

    # a trained GT encoder can be reused: stage 1 is skipped
    out2 = tmp_path / "reuse"
    raw2 = _cfg(data, out2, "isnet", gt_encoder={"weights": str(out / "gt_encoder" / "best.pt")},
                train={"steps": 1, "output_dir": str(out2)})  # fmt: skip
    train(config_from_dict(raw2))
    assert not (out2 / "gt_encoder").exists() and (out2 / "last.pt").exists()
    # a fresh run refuses to overwrite a run
    with pytest.raises(FileExistsError, match="--resume"):
        train(config_from_dict(raw2))


def test_resume_is_bit_exact(data, tmp_path):
    def cfg(out):
        return config_from_dict(
            _cfg(
                data,
                out,
                train={"steps": 6, "grad_accum": 2, "checkpoint_every": 100, "output_dir": str(out)},
                val={"every": 4},
            )  # fmt: skip
        )

    train(cfg(tmp_path / "straight"))
    res = train(cfg(tmp_path / "broken"), stop_at_step=3)
    assert res["stopped"] and res["step"] == 3
    assert load_training_checkpoint(tmp_path / "broken" / "last.pt")["step"] == 3
    res = train(cfg(tmp_path / "broken"), resume=tmp_path / "broken")
    assert res["step"] == 6 and not res["stopped"]

    a = load_training_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_training_checkpoint(tmp_path / "broken" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for k in sa:
            assert torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k]))
    assert a["best"] == b["best"]
    la = [
        (r["step"], r["loss"])
        for r in _records(tmp_path / "straight" / "metrics.jsonl")
        if r["kind"] == "train"
    ]
    lb = [
        (r["step"], r["loss"])
        for r in _records(tmp_path / "broken" / "metrics.jsonl")
        if r["kind"] == "train"
    ]
    assert la == lb  # the log was trimmed back to the checkpoint and continued


def test_isnet_resumes_inside_stage_one(data, tmp_path):
    out = tmp_path / "run"
    raw = _cfg(data, out, "isnet", train={"steps": 1, "output_dir": str(out)}, val={"every": 0})
    res = train(config_from_dict(raw), stop_at_step=1)
    assert res["stopped"] and res["last"].endswith("gt_encoder/last.pt") and not (out / "last.pt").exists()
    res = train(None, resume=out)  # the config comes from the checkpoint
    assert res["step"] == 1 and load_training_checkpoint(out / "gt_encoder" / "last.pt")["step"] == 2


@pytest.mark.slow
def test_tiny_model_overfits_a_few_shapes(data, tmp_path):
    raw = _cfg(
        data, tmp_path / "of",
        data={"input_size": 48, "exclude": [],
              "datasets": [{"name": "s", "layout": "generic", "root": str(data / "shapes")}]},
        augment={"random_resized_crop": {"enabled": False}, "hflip": 0.0, "color_jitter": {"p": 0.0}},
        optim={"name": "adam", "lr": 1e-2, "weight_decay": 0.0},
        schedule={"name": "constant", "warmup_steps": 0},
        train={"batch_size": 4, "steps": 150, "output_dir": str(tmp_path / "of")},
        val={"every": 0},
    )  # fmt: skip
    train(config_from_dict(raw))
    recs = [r for r in _records(tmp_path / "of" / "metrics.jsonl") if r["kind"] == "train"]
    first, last = recs[0], recs[-5:]
    main_drop = 1 - np.mean([r["loss/bce0"] for r in last]) / first["loss/bce0"]
    total_drop = 1 - np.mean([r["loss"] for r in last]) / first["loss"]
    # the prediction (fused map d0) fits the shapes; the total also carries the coarse side maps
    assert main_drop > 0.9, (main_drop, total_drop)
    assert total_drop > 0.8, (main_drop, total_drop)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(data, tmp_path):
    """torchrun, 2 CPU processes (gloo), batch 1 each == 1 process with batch 2 (frozen BN, so
    the per-rank batch statistics do not matter)."""
    import yaml

    raw = _cfg(data, tmp_path / "ddp", model={"arch": "u2netp", "width_divisor": 4, "freeze_bn": True},
               train={"batch_size": 1, "steps": 4, "output_dir": str(tmp_path / "ddp")})  # fmt: skip
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
           "-m", "nuggy.train", "--config", str(path)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    raw1 = _cfg(data, tmp_path / "one", model={"arch": "u2netp", "width_divisor": 4, "freeze_bn": True},
                train={"batch_size": 2, "steps": 4, "output_dir": str(tmp_path / "one")})  # fmt: skip
    train(config_from_dict(raw1))
    torch.manual_seed(0)  # the loop builds the model right after seeding with train.seed
    from nuggy.models import create_model

    start = create_model("u2netp", width_divisor=4).state_dict()
    a = load_training_checkpoint(tmp_path / "ddp" / "last.pt")
    b = load_training_checkpoint(tmp_path / "one" / "last.pt")
    assert a["world_size"] == 2 and b["world_size"] == 1
    diff = max(float((a["model"][k].float() - b["model"][k].float()).abs().max()) for k in a["model"])
    moved = max(float((a["model"][k].float() - start[k].float()).abs().max()) for k in start)
    # Adam turns float-rounding differences of the all-reduce into ~1e-6..1e-5 differences;
    # 4 steps at lr 1e-3 move the weights by ~4e-3
    assert diff < 1e-4 and moved > 1e-3, (diff, moved)
    la = [r["loss"] for r in _records(tmp_path / "ddp" / "metrics.jsonl") if r["kind"] == "train"]
    lb = [r["loss"] for r in _records(tmp_path / "one" / "metrics.jsonl") if r["kind"] == "train"]
    assert np.allclose(la, lb, rtol=1e-4)
    # rank 0 alone wrote the log: one record per step, not two
    steps = [r["step"] for r in _records(tmp_path / "ddp" / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4]
    mix = [r["mix"] for r in _records(tmp_path / "ddp" / "metrics.jsonl") if r["kind"] == "mix"]
    assert sum(v["count"] for m in mix for v in m.values()) == 4 * 2  # both ranks counted


def test_cli_check_run_and_errors(data, tmp_path, capsys):
    import yaml

    from nuggy.cli.main import main

    out = tmp_path / "cli"
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(_cfg(data, out, train={"steps": 1, "output_dir": str(out)}, val={"every": 0}))
    )
    assert main(["train", "--config", str(path), "--check"]) == 0
    text = capsys.readouterr().out
    assert "# dis5k (dis5k): 4 training samples, 2 validation" in text and "# trans10k: excluded" in text
    assert not out.exists()
    assert main(["train", "--config", str(path)]) == 0
    assert (out / "last.pt").exists()
    assert main(["train", "--config", str(path)]) == 2  # refuses to overwrite
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "--set", "optim.lrr=1"]) == 2
    assert "unknown key" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "-o", str(tmp_path / "x"), "--set",
                 "data.datasets.0.root=/nonexistent"]) == 2  # fmt: skip
    assert "dataset 'dis5k'" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--set", "train.steps=2"]) == 0
    assert load_training_checkpoint(out / "last.pt")["step"] == 2


def test_checkpoint_exports_to_onnx(data, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    out = tmp_path / "run"
    train(config_from_dict(_cfg(data, out, train={"steps": 1, "output_dir": str(out)})))
    ckpt = load_training_checkpoint(out / "best.pt")
    from nuggy.models import export_onnx, load_checkpoint

    model = load_checkpoint(ckpt["arch"], out / "best.pt", **ckpt["model_kwargs"])
    onnx_path = export_onnx(model, tmp_path / "mine.onnx", arch=ckpt["arch"],
                            input_size=tuple(ckpt["input_size"]), mean=ckpt["mean"], std=ckpt["std"])  # fmt: skip
    side = json.loads(onnx_path.with_suffix(".json").read_text())
    assert side["arch"] == "u2netp" and side["input_size"] == [32, 32]
    assert side["parity_max_abs_diff"] < 1e-3


@pytest.mark.slow
@pytest.mark.needs_model
def test_finetune_from_registry_weights_freezes_folded_batchnorm(data, tmp_path, u2netp_path):
    out = tmp_path / "ft"
    raw = _cfg(data, out, model={"arch": "u2netp", "width_divisor": 1, "init": "u2netp"},
               train={"steps": 1, "output_dir": str(out)}, val={"every": 0})  # fmt: skip
    train(config_from_dict(raw))
    from nuggy.models.convert import convert_onnx

    start = convert_onnx(u2netp_path, "u2netp")
    last = load_training_checkpoint(out / "last.pt")
    assert last["freeze_bn"] is True
    bn = "stage1.rebnconvin.bn_s1"
    assert torch.equal(last["model"][f"{bn}.running_var"], start[f"{bn}.running_var"])  # frozen
    assert not torch.equal(last["model"]["stage1.rebnconvin.conv_s1.weight"],
                           start["stage1.rebnconvin.conv_s1.weight"])  # but trained  # fmt: skip
