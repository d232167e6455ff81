"""``nuggy eval``, ``nuggy composite`` and ``nuggy bench`` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nuggy.cli.main import main

H, W = 24, 32
DEV = Path(__file__).resolve().parents[2] / "shared" / "evaldata" / "alphamatting-dev"


def png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def alpha() -> np.ndarray:
    a = np.zeros((H, W), np.uint8)
    a[6:18, 8:24] = 255
    return a


def dataset(root: Path, names=("x", "y"), trimaps: bool = True) -> Path:
    rng = np.random.default_rng(0)
    t = np.zeros((H, W), np.uint8)
    t[4:20, 6:26] = 128
    t[8:16, 10:22] = 255
    for n in names:
        png(root / "image" / f"{n}.jpg", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        png(root / "alpha" / f"{n}.png", alpha())
        if trimaps:
            png(root / "trimap" / f"{n}.png", t)
    return root


def preds(folder: Path, shifts: dict[str, int]) -> Path:
    for n, s in shifts.items():
        png(folder / f"{n}.png", np.roll(alpha(), s, axis=0))
    return folder


def _model_cached() -> bool:
    from nuggy.sources import cached_path

    return cached_path("u2netp") is not None


def test_eval_predictions(tmp_path, capsys):
    data = dataset(tmp_path / "d")
    p = preds(tmp_path / "p", {"x": 0, "y": 2})
    rc = main(["eval", str(data), "--predictions", str(p), "-o", str(tmp_path / "r"), "--no-plots"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "| sad_whole ↓" in out and "| sad_unknown ↓" in out and "predictions" in out
    assert "(y)" in out  # y is the worst
    assert "report written to" in err
    data_json = json.loads((tmp_path / "r" / "scores.json").read_text())
    assert data_json["meta"]["source"]["kind"] == "predictions"
    assert data_json["summary"]["sad_whole"] == pytest.approx(2 * 2 * 16 / 1000 / 2)
    assert (tmp_path / "r" / "worst.png").is_file()
    # whole only, quiet, no files
    rc = main(["eval", str(data), "--predictions", str(p), "--region", "whole", "-q"])
    out, err = capsys.readouterr()
    assert rc == 0 and "sad_unknown" not in out and err == ""


def test_eval_errors(tmp_path, capsys):
    data = dataset(tmp_path / "d", trimaps=False)
    p = preds(tmp_path / "p", {"x": 0})
    assert main(["eval", str(data), "--predictions", str(p)]) == 2
    assert "no prediction for 1 of 2 image(s): y" in capsys.readouterr().err
    preds(p, {"y": 0})
    assert main(["eval", str(data), "--predictions", str(p), "--region", "unknown"]) == 2
    assert "needs a trimap" in capsys.readouterr().err
    (data / "alpha" / "y.png").unlink()
    assert main(["eval", str(data), "--predictions", str(p)]) == 2
    assert "have no alpha in alpha/: y" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nope"), "--predictions", str(p)]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    assert main(["eval"]) == 2
    assert main(["eval", str(data), "--save-predictions"]) == 2
    assert "add -o DIR" in capsys.readouterr().err
    assert main(["eval", str(data), "--set", "nonsense=1"]) == 2
    assert "NAME one of" in capsys.readouterr().err


def test_eval_bad_file_fails_one_image(tmp_path, capsys):
    data = dataset(tmp_path / "d")
    t = np.zeros((H, W), np.uint8)
    t[0, 0] = 100
    png(data / "trimap" / "y.png", t)
    p = preds(tmp_path / "p", {"x": 0, "y": 0})
    rc = main(["eval", str(data), "--predictions", str(p)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "found 100 (1 px)" in err and "1 scored, 1 failed" in err
    assert "1/2 images)" in out


def test_eval_compare(tmp_path, capsys):
    data = dataset(tmp_path / "d")
    for name, shifts in (("A", {"x": 1, "y": 3}), ("B", {"x": 1, "y": 0})):
        p = preds(tmp_path / f"p{name}", shifts)
        assert (
            main(
                [
                    "eval",
                    str(data),
                    "--predictions",
                    str(p),
                    "-o",
                    str(tmp_path / name),
                    "--save-predictions",
                    "--no-plots",
                    "-q",
                ]
            )
            == 0
        )
    capsys.readouterr()
    rc = main(
        [
            "eval",
            str(data),
            "--compare",
            str(tmp_path / "A"),
            str(tmp_path / "B"),
            "-o",
            str(tmp_path / "cmp"),
            "--no-plots",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Δ mean" in out and "Per-image Δ" in out
    cmp = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    by = {r["name"]: r for r in cmp["images"]}
    assert by["x"]["sad_whole"]["delta"] == 0
    assert by["y"]["sad_whole"]["delta"] == pytest.approx(-3 * 2 * 16 / 1000)
    assert cmp["summary"]["sad_whole"]["better"] == "b"
    assert (tmp_path / "cmp" / "compare.png").is_file()  # both saved predictions
    # without DATA: still compares, no sheet
    assert main(["eval", "--compare", str(tmp_path / "A"), str(tmp_path / "B")]) == 0
    assert main(["eval", "--compare", str(tmp_path / "A"), str(tmp_path / "nope")]) == 2
    assert "no scores.json" in capsys.readouterr().err


def test_eval_split_scores_one_half(tmp_path, capsys):
    from nuggy.eval.split import split_names

    names = [f"{i:04d}" for i in range(2, 22, 2)]
    data = dataset(tmp_path / "d", names=names, trimaps=False)
    p = preds(tmp_path / "p", {n: i % 3 for i, n in enumerate(names)})
    check = split_names(names, "check")
    rc = main(
        [
            "eval",
            str(data),
            "--predictions",
            str(p),
            "--split",
            "check",
            "-o",
            str(tmp_path / "r"),
            "--no-plots",
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    rep = json.loads((tmp_path / "r" / "scores.json").read_text())
    assert [r["name"] for r in rep["images"]] == check and len(check) == 5
    assert rep["meta"]["split"] == {"part": "check", "of": 10, "limit": None}
    # a 12×16 subject 2 rows off has IoU 10/14 < 0.8: those images are failures
    k = sum(1 for i, n in enumerate(names) if n in check and i % 3 == 2)
    assert "split: check half of 10" in out and f"Failures (SAD > 50 or IoU < 0.8 (at 0.5)): {k}/5" in out
    assert {r["name"] for r in rep["images"] if r["iou"] < 0.8} == {
        n for i, n in enumerate(names) if n in check and i % 3 == 2
    }
    assert "| iou ↑" in out
    # --limit takes the first N of the split; the default is every image
    assert (
        main(
            [
                "eval",
                str(data),
                "--predictions",
                str(p),
                "--split",
                "tune",
                "--limit",
                "2",
                "-o",
                str(tmp_path / "t"),
                "--no-plots",
                "-q",
            ]
        )
        == 0
    )
    rep_t = json.loads((tmp_path / "t" / "scores.json").read_text())
    assert [r["name"] for r in rep_t["images"]] == split_names(names, "tune")[:2]
    assert rep_t["meta"]["split"] == {"part": "tune", "of": 10, "limit": 2}
    assert (
        main(["eval", str(data), "--predictions", str(p), "-o", str(tmp_path / "a"), "--no-plots", "-q"]) == 0
    )
    assert len(json.loads((tmp_path / "a" / "scores.json").read_text())["images"]) == 10
    # comparing the check run with the all run: the common (check) images, and the mismatch said
    capsys.readouterr()
    assert main(["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "5 common images" in out and "different splits (A: all, B: check)" in out
    assert f"Failures (SAD > 50 or IoU < 0.8 (at 0.5)) among the 5 common images: A {k}, B {k} (Δ +0)" in out
    # with DATA and --split, the comparison keeps that half only
    assert (
        main(["eval", str(data), "--split", "tune", "--compare", str(tmp_path / "a"), str(tmp_path / "t")])
        == 0
    )
    assert "2 common images" in capsys.readouterr().out
    assert main(["eval", str(data), "--predictions", str(p), "--split", "half"]) == 2
    assert "no split 'half'" in capsys.readouterr().err


def test_eval_subset_of_a_folder_of_sets(tmp_path, capsys):
    dataset(tmp_path / "sets" / "val", names=("a", "b", "c"), trimaps=False)
    dataset(tmp_path / "sets" / "train", names=("d",), trimaps=False)
    p = preds(tmp_path / "p", {"a": 0, "b": 0, "c": 0})
    assert main(["eval", str(tmp_path / "sets"), "--predictions", str(p)]) == 2
    assert "pick one with --subset" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                str(tmp_path / "sets"),
                "--subset",
                "val",
                "--split",
                "check",
                "--predictions",
                str(p),
                "-q",
            ]
        )
        == 0
    )
    assert "(generic, 1/1 images) — split: check half of 3" in capsys.readouterr().out
    # the old spelling: --split NAME for a sub-folder still works, with a note
    assert main(["eval", str(tmp_path / "sets"), "--split", "val", "--predictions", str(p)]) == 0
    io = capsys.readouterr()
    assert "3/3 images) — split: all 3" in io.out and "that is --subset val now" in io.err
    assert (
        main(["eval", str(tmp_path / "sets"), "--split", "val", "--subset", "val", "--predictions", str(p)])
        == 2
    )
    assert "--split must be one of tune, check, all" in capsys.readouterr().err


def test_composite_then_eval(tmp_path, capsys):
    rng = np.random.default_rng(2)
    png(tmp_path / "fg" / "f.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    png(tmp_path / "al" / "f.png", alpha())
    for j in range(3):
        png(tmp_path / "bg" / f"b{j}.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    out = tmp_path / "comp"
    rc = main(
        [
            "composite",
            "--fg",
            str(tmp_path / "fg"),
            "--alpha",
            str(tmp_path / "al"),
            "--bg",
            str(tmp_path / "bg"),
            "-n",
            "3",
            "-o",
            str(out),
            "--seed",
            "1",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "3 composites" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 1 and len(manifest["items"]) == 3
    assert (
        main(
            [
                "composite",
                "--fg",
                str(tmp_path / "fg"),
                "--alpha",
                str(tmp_path / "al"),
                "--bg",
                str(tmp_path / "bg"),
                "-n",
                "3",
                "-o",
                str(out),
            ]
        )
        == 2
    )
    assert "--overwrite" in capsys.readouterr().err
    # score the ground truth itself: perfect
    rc = main(["eval", str(out), "--predictions", str(out / "alpha"), "-q"])
    text = capsys.readouterr().out
    assert rc == 0 and "(composition, 3/3 images)" in text
    assert "| sad_whole ↓      |  0.000 |" in text


def test_cli_modules_import_nothing_heavy():
    code = (
        "import sys, nuggy.cli.main as m; m.build_parser(); "
        "heavy = [x for x in ('numpy', 'PIL', 'cv2', 'onnxruntime', 'matplotlib', 'tqdm') if x in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.needs_model
def test_bench_cli_small(tmp_path, capsys):
    if not _model_cached():
        pytest.skip("u2netp is not cached (nuggy models pull u2netp)")
    rc = main(
        [
            "bench",
            "--model",
            "u2netp",
            "--preset",
            "fast",
            "--size",
            "64x48,80x60",
            "--runs",
            "1",
            "--warmup",
            "0",
            "-o",
            str(tmp_path / "b.json"),
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "| 64x48" in out and "segment ms" in out
    res = json.loads((tmp_path / "b.json").read_text())
    assert [r["label"] for r in res["sizes"]] == ["64x48", "80x60"]
    assert (tmp_path / "b.md").is_file()
    assert main(["bench", "--size", "huge"]) == 2


@pytest.mark.slow
@pytest.mark.needs_model
def test_eval_end_to_end_real_model(tmp_path):
    if not DEV.is_dir():
        pytest.skip(f"dev data not present at {DEV}")
    if not _model_cached():
        pytest.skip("u2netp is not cached (nuggy models pull u2netp)")
    out = tmp_path / "report"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nuggy",
            "eval",
            str(DEV),
            "--model",
            "u2netp",
            "--preset",
            "fast",
            "--limit",
            "2",
            "-o",
            str(out),
            "--no-plots",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| sad_unknown ↓" in proc.stdout and "(generic, 2/2 images)" in proc.stdout
    data = json.loads((out / "scores.json").read_text())
    assert len(data["images"]) == 2 and data["meta"]["source"]["config"]["model"] == "u2netp"
    assert data["summary"]["time_segment"] > 0
    # a real model on these photos: far from random, far from perfect
    assert 0.0 < data["summary"]["mae"] < 0.2 and data["summary"]["max_f"] > 0.8
    assert (out / "worst.png").is_file() and (out / "index.html").is_file()
