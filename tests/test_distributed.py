"""``--engine ray`` / ``nuggy.distributed.remove_dataset`` on a local Ray (2 CPUs, no network).

One Ray for the whole module (start-up is the slow part). Compared with the local engine on
real photos: same pixels, same error texts, same skip rules; killed actors leave no partial
output and a rerun completes the job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image
from test_batch_engines import BAD_TEXT, make_shoot

from nuggy.cli.main import main

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("u2netp_path", "local_ray")]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def _alpha(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))[..., 3].astype(int)


def _rows(table) -> dict[str, dict]:
    return {Path(r["input"]).name: r for r in table.to_pylist()}


def _no_leftovers(folder: Path) -> None:
    assert not [p for p in folder.rglob(".*")], "temp files left behind"
    for p in folder.rglob("*.png"):
        Image.open(p).load()  # complete, decodable


def test_ray_matches_local_engine_and_rerun_skips(tmp_path, capsys):
    from nuggy.batch import read_manifest
    from nuggy.distributed import remove_dataset
    from nuggy.pipeline.config import preset

    shoot = make_shoot(tmp_path / "shoot")
    local_out, ray_out = tmp_path / "local", tmp_path / "ray"
    assert (
        main(
            [
                "remove",
                str(shoot),
                "-o",
                str(local_out),
                "--preset",
                "fast",
                "-q",
                "--manifest",
                str(tmp_path / "local.csv"),
            ]
        )
        == 1
    )
    local = _rows(read_manifest(str(tmp_path / "local.csv")))
    table = remove_dataset(
        str(shoot),
        str(ray_out),
        config=preset("fast"),
        preset="fast",
        actors=1,
        manifest=str(tmp_path / "ray.parquet"),
    )
    remote = _rows(table)
    assert _rows(read_manifest(str(tmp_path / "ray.parquet"))) == remote
    assert set(remote) == set(local)
    for name, row in remote.items():
        assert row["status"] == local[name]["status"], name
        assert row["error"] == local[name]["error"], name  # the very same text
        assert row["model"] == "u2netp" and row["preset"] == "fast"
    assert BAD_TEXT in remote["broken.jpg"]["error"]
    assert "exceeds the limit of 100.0 MP" in remote["bomb.png"]["error"]
    for name in ("chelsea", "coffee", "rocket"):
        diff = np.abs(_alpha(ray_out / f"{name}.png") - _alpha(local_out / f"{name}.png")).max()
        assert diff <= 1, (name, diff)  # max alpha difference <= 1/255
    _no_leftovers(ray_out)
    capsys.readouterr()
    # rerun through the CLI: everything done is skipped, the bad files fail again -> exit 1
    assert (
        main(
            [
                "remove",
                str(shoot),
                "-o",
                str(ray_out),
                "--preset",
                "fast",
                "--engine",
                "ray",
                "--manifest",
                str(tmp_path / "again.csv"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "nuggy: 0 written, 3 skipped, 2 failed" in err
    again = _rows(read_manifest(str(tmp_path / "again.csv")))
    assert {n: r["status"] for n, r in again.items()} == {
        "chelsea.jpg": "skipped",
        "coffee.jpg": "skipped",
        "rocket.jpg": "skipped",
        "broken.jpg": "failed",
        "bomb.png": "failed",
    }


def _photos(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    names = ["chelsea", "coffee", "rocket", "astronaut"]
    for i in range(n):
        im = Image.open(EXAMPLES / f"{names[i % 4]}.jpg").convert("RGB")
        im.resize((120 + 8 * i, 96)).save(root / f"p{i}.jpg", quality=92)
    return root


def test_killed_actor_is_restarted_and_the_job_completes(tmp_path, monkeypatch):
    from nuggy.distributed import remove_dataset
    from nuggy.distributed.engine import TEST_EXIT_ENV
    from nuggy.pipeline.config import preset

    src = _photos(tmp_path / "in", 3)
    monkeypatch.setenv(TEST_EXIT_ENV, f"1:{tmp_path / 'died'}")  # the actor dies once
    table = remove_dataset(str(src), str(tmp_path / "out"), config=preset("fast"), preset="fast", actors=1)
    assert (tmp_path / "died").exists()  # an actor did exit part way
    assert table["status"].to_pylist() == ["ok"] * 3
    _no_leftovers(tmp_path / "out")


def test_interrupted_job_leaves_no_partial_output_and_a_rerun_completes(tmp_path, monkeypatch):
    from nuggy.distributed import remove_dataset
    from nuggy.distributed.engine import TEST_EXIT_ENV
    from nuggy.pipeline.config import preset

    src, out = _photos(tmp_path / "in", 4), tmp_path / "out"
    monkeypatch.setenv(TEST_EXIT_ENV, "1")  # the actor dies after its first file, for good
    table = remove_dataset(
        str(src), str(out), config=preset("fast"), preset="fast", actors=1, actor_restarts=0
    )
    rows = table.to_pylist()
    stopped = [r for r in rows if r["status"] == "failed"]
    assert stopped and all(
        "the Ray job stopped" in r["error"] and "rerun to resume" in r["error"] for r in stopped
    )
    done = sorted(p.name for p in out.glob("*.png")) if out.exists() else []
    assert len(done) < 4
    if out.exists():
        _no_leftovers(out)
    monkeypatch.delenv(TEST_EXIT_ENV)
    table = remove_dataset(str(src), str(out), config=preset("fast"), preset="fast", actors=1)
    status = {Path(r["output"]).name: r["status"] for r in table.to_pylist()}
    assert sorted(n for n, s in status.items() if s == "skipped") == done
    assert sum(s == "ok" for s in status.values()) == 4 - len(done)
    assert sorted(p.name for p in out.glob("*.png")) == [f"p{i}.png" for i in range(4)]
    _no_leftovers(out)
