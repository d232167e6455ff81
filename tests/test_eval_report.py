"""Evaluation over a tiny dataset with prediction files, reports and comparisons."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nuggy.eval.datasets import DatasetError, open_dataset
from nuggy.eval.evaluate import error_map, evaluate, folder_predict, prediction_files
from nuggy.eval.report import (
    ReportError,
    compare_reports,
    comparison_markdown,
    comparison_sheet,
    contact_sheet,
    load_report,
    markdown_table,
    summary_markdown,
    write_comparison,
    write_report,
)

H, W = 32, 40
NAMES = ["a", "b", "c"]


def png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def gt_alpha() -> np.ndarray:
    a = np.zeros((H, W), np.uint8)
    a[8:24, 10:30] = 255
    a[7, 10:30] = 128
    return a


def make_dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    t = np.zeros((H, W), np.uint8)
    t[5:27, 7:33] = 128
    t[10:22, 12:28] = 255
    for n in NAMES:
        png(root / "image" / f"{n}.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        png(root / "alpha" / f"{n}.png", gt_alpha())
        png(root / "trimap" / f"{n}.png", t)
    return root


def make_predictions(folder: Path, shift: dict[str, int], rgba: bool = False) -> Path:
    """Predictions: the ground truth shifted right by ``shift[name]`` pixels."""
    for n in NAMES:
        p = np.roll(gt_alpha(), shift[n], axis=1)
        if rgba:
            p = np.dstack([np.full((H, W, 3), 200, np.uint8), p])
        png(folder / f"{n}.png", p)
    return folder


def test_evaluate_predictions_perfect_and_shifted(tmp_path):
    ds = open_dataset(make_dataset(tmp_path / "d"))
    perfect = make_predictions(tmp_path / "p0", {"a": 0, "b": 0, "c": 0}, rgba=True)
    ev = evaluate(ds, folder_predict(perfect, ds), regions=("whole", "unknown"))
    assert [r.name for r in ev.images] == NAMES and not ev.failures
    for r in ev.images:
        for k in ("sad_whole", "mse_whole", "sad_unknown", "hce"):
            assert r.metrics[k] == pytest.approx(0.0, abs=1e-9), k
        # DIS metrics binarise the ground truth: the half-alpha row counts as an error
        assert r.metrics["mae"] == pytest.approx(20 * (1 - 128 / 255) / (H * W), rel=1e-6)
        assert r.metrics["max_f"] == pytest.approx(1.0, abs=1e-3)
        assert r.timings == {}
    shifted = make_predictions(tmp_path / "p2", {"a": 0, "b": 2, "c": 4})
    ev = evaluate(ds, folder_predict(shifted, ds), regions=("whole",), keep_worst=2)
    sad = {r.name: r.metrics["sad_whole"] for r in ev.images}
    # a shift of s columns moves 2·s·(16 rows + 1 half row) of alpha
    assert sad["b"] == pytest.approx(2 * 2 * (16 + 0.502) / 1000, rel=1e-2)
    assert sad["a"] == 0 and sad["c"] > sad["b"]
    assert "sad_unknown" not in ev.images[0].metrics
    assert [c.name for c in ev.worst] == ["c", "b"]
    assert ev.meta["rank_by"] == "sad_whole" and ev.meta["scored"] == 3
    assert ev.summary()["sad_whole"] == pytest.approx(np.mean(list(sad.values())))


def test_predictions_missing_and_wrong_size(tmp_path):
    ds = open_dataset(make_dataset(tmp_path / "d"))
    preds = make_predictions(tmp_path / "p", {"a": 0, "b": 0, "c": 0})
    (preds / "b.png").unlink()
    with pytest.raises(DatasetError, match="no prediction for 1 of 3 image.*: b"):
        prediction_files(preds, ds)
    png(preds / "b.png", np.zeros((H + 1, W), np.uint8))
    ev = evaluate(ds, folder_predict(preds, ds))
    assert [r.name for r in ev.images] == ["a", "c"]
    assert ev.failures[0][0] == "b" and "save predictions at the image's size" in ev.failures[0][1]


def test_unknown_region_needs_trimaps(tmp_path):
    root = make_dataset(tmp_path / "d")
    for f in (root / "trimap").iterdir():
        f.unlink()
    (root / "trimap").rmdir()
    ds = open_dataset(root)
    preds = make_predictions(tmp_path / "p", {"a": 0, "b": 0, "c": 0})
    with pytest.raises(ValueError, match="needs a trimap.*--region whole"):
        evaluate(ds, folder_predict(preds, ds), regions=("unknown",))


def _report(tmp_path: Path, name: str, shift: dict[str, int], plots: bool = False) -> Path:
    ds = (
        open_dataset(tmp_path / "d")
        if (tmp_path / "d").is_dir()
        else open_dataset(make_dataset(tmp_path / "d"))
    )
    preds = make_predictions(tmp_path / f"pred_{name}", shift)
    out = tmp_path / name
    ev = evaluate(
        ds,
        folder_predict(preds, ds),
        regions=("whole", "unknown"),
        keep_worst=2,
        source={"kind": "predictions", "path": str(preds)},
        save_predictions=out / "predictions",
    )
    write_report(ev, out, plots=plots)
    return out


def test_report_files(tmp_path):
    out = _report(tmp_path, "rep", {"a": 1, "b": 3, "c": 0}, plots=True)
    for f in ("scores.csv", "scores.json", "summary.md", "worst.png", "index.html"):
        assert (out / f).is_file(), f
    assert sorted(p.name for p in (out / "predictions").iterdir()) == ["a.png", "b.png", "c.png"]
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert [r["name"] for r in rows] == NAMES
    assert {"sad_whole", "sad_unknown", "max_f", "hce", "width", "height"} <= set(rows[0])
    data = json.loads((out / "scores.json").read_text())
    assert data["meta"]["regions"] == ["whole", "unknown"]
    assert data["summary"]["sad_whole"] == pytest.approx(
        np.mean([float(r["sad_whole"]) for r in rows]), rel=1e-4
    )
    md = (out / "summary.md").read_text()
    assert "| sad_whole ↓" in md and "(b)" in md  # b is the worst image
    html = (out / "index.html").read_text()
    assert "worst.png" in html and "scores.csv" in html
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in html
    else:
        assert (out / "plots" / "sad_whole.png").is_file() and "plots/sad_whole.png" in html
    sheet = np.asarray(Image.open(out / "worst.png"))
    assert sheet.ndim == 3 and sheet.shape[0] > 2 * H
    assert load_report(out)["images"][1]["name"] == "b"
    assert summary_markdown(load_report(out)) == md


def test_report_without_matplotlib(tmp_path, monkeypatch):
    import nuggy.eval.report as report

    monkeypatch.setattr(report, "_have_matplotlib", lambda: False)
    ds = open_dataset(make_dataset(tmp_path / "d"))
    ev = evaluate(ds, folder_predict(make_predictions(tmp_path / "p", {"a": 0, "b": 1, "c": 0}), ds))
    notes: list[str] = []
    written = write_report(ev, tmp_path / "r", log=notes.append)
    assert not (tmp_path / "r" / "plots").exists()
    assert notes and "matplotlib is not installed" in notes[0]
    assert "matplotlib is not installed" in written["html"].read_text()


def test_compare_deltas(tmp_path):
    a = _report(tmp_path, "A", {"a": 1, "b": 3, "c": 0})
    b = _report(tmp_path, "B", {"a": 2, "b": 1, "c": 0})
    ra, rb = load_report(a), load_report(b)
    cmp = compare_reports(ra, rb)
    assert cmp["names"] == NAMES and cmp["a"]["label"] == "A"
    by = {r["name"]: r for r in cmp["images"]}
    for n in NAMES:
        sa = next(r for r in ra["images"] if r["name"] == n)["sad_whole"]
        sb = next(r for r in rb["images"] if r["name"] == n)["sad_whole"]
        assert by[n]["sad_whole"]["delta"] == pytest.approx(sb - sa)
    assert by["a"]["sad_whole"]["delta"] > 0 and by["b"]["sad_whole"]["delta"] < 0
    assert by["c"]["sad_whole"]["delta"] == 0
    s = cmp["summary"]["sad_whole"]
    assert s["delta"] == pytest.approx(s["b"] - s["a"]) and s["delta"] < 0
    assert s["better"] == "b"  # lower SAD
    assert cmp["summary"]["max_f"]["better"] in ("b", "=")
    md = comparison_markdown(cmp)
    assert "Δ mean" in md and "Per-image Δ" in md and "| a " in md
    # restricted to a subset of names, e.g. a dataset's samples
    assert compare_reports(ra, rb, names=["b"])["names"] == ["b"]
    ds = open_dataset(tmp_path / "d")
    sheet = comparison_sheet(cmp, ds, count=2)
    assert sheet is not None and sheet.shape[0] > 2 * H
    written = write_comparison(cmp, tmp_path / "cmp", sheet=sheet)
    for f in ("compare.csv", "compare.json", "compare.md", "compare.png", "index.html"):
        assert (tmp_path / "cmp" / f).is_file(), f
    rows = list(csv.DictReader((tmp_path / "cmp" / "compare.csv").open()))
    assert float(rows[0]["sad_whole_delta"]) == pytest.approx(by["a"]["sad_whole"]["delta"], rel=1e-4)
    assert "compare.png" in written["html"].read_text()


def test_load_report_errors(tmp_path):
    with pytest.raises(ReportError, match="no scores.json"):
        load_report(tmp_path)
    (tmp_path / "scores.json").write_text("{not json")
    with pytest.raises(ReportError, match="not a readable evaluation report"):
        load_report(tmp_path)


def test_helpers():
    t = markdown_table(["m", "v"], [["x", "1.0"], ["long name", "22.5"]])
    lines = t.splitlines()
    assert lines[1].startswith("|--") and lines[1].endswith(":|")
    assert len({len(line) for line in lines}) == 1
    e = error_map(np.array([[1.0, 0.0, 0.5]]), np.array([[0.0, 1.0, 0.5]]))
    assert (
        e[0, 0].tolist() == [255, 0, 0] and e[0, 1].tolist() == [0, 0, 255] and e[0, 2].tolist() == [0, 0, 0]
    )
    sheet = contact_sheet(
        [("row", [np.zeros((10, 12), np.uint8), np.zeros((10, 8, 3), np.uint8)])], ["x", "y"]
    )
    assert sheet.dtype == np.uint8 and sheet.shape[2] == 3
    assert not math.isnan(float(sheet.mean()))
