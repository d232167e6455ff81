"""Manifest (local engine), the hot folder (--watch) and the object-store write path; no Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT
from PIL import Image
from test_bad_inputs import _png_header_only

from nuggy.cli.main import main

pytestmark = pytest.mark.usefixtures("u2netp_path")

BAD_TEXT = "not a recognised image file"


def make_shoot(root: Path, size: int = 160) -> Path:
    """Real photos downscaled to ``size`` px wide, a corrupt file and a pixel bomb."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("chelsea", "coffee", "rocket"):
        im = Image.open(EXAMPLES / f"{name}.jpg").convert("RGB")
        im.resize((size, round(size * im.height / im.width))).save(root / f"{name}.jpg", quality=92)
    (root / "broken.jpg").write_bytes(b"this is not a JPEG at all")
    (root / "bomb.png").write_bytes(_png_header_only(30_000, 30_000))
    return root


def test_local_manifest_records_every_file_and_rerun_skips(tmp_path):
    from nuggy.batch import read_manifest

    shoot = make_shoot(tmp_path / "shoot")
    out = tmp_path / "out"
    for ext in ("csv", "parquet"):
        manifest = tmp_path / f"run.{ext}"
        rc = main(
            ["remove", str(shoot), "-o", str(out), "--preset", "fast", "-q", "--manifest", str(manifest)]
        )
        assert rc == 1  # the two bad files
        rows = read_manifest(str(manifest)).to_pylist()
        by_name = {Path(r["input"]).name: r for r in rows}
        assert list(rows[0]) == [
            "input",
            "output",
            "status",
            "error",
            "seconds",
            "model",
            "preset",
            "nuggy_version",
        ]
        assert set(by_name) == {"chelsea.jpg", "coffee.jpg", "rocket.jpg", "broken.jpg", "bomb.png"}
        assert {r["model"] for r in rows} == {"u2netp"} and {r["preset"] for r in rows} == {"fast"}
        assert BAD_TEXT in by_name["broken.jpg"]["error"]
        assert by_name["broken.jpg"]["error"].startswith(str(shoot / "broken.jpg"))
        assert "exceeds the limit of 100.0 MP" in by_name["bomb.png"]["error"]
        good = [by_name[n] for n in ("chelsea.jpg", "coffee.jpg", "rocket.jpg")]
        if ext == "csv":  # first run writes them
            assert [r["status"] for r in good] == ["ok"] * 3
            assert all(r["seconds"] > 0 for r in good)
        else:  # the rerun resumes: existing outputs skipped, bad files fail again
            assert [r["status"] for r in good] == ["skipped"] * 3
        assert by_name["bomb.png"]["status"] == "failed"
        for r in good:
            assert Image.open(r["output"]).mode == "RGBA"


def test_manifest_usage_errors_exit_2(tmp_path, capsys):
    shoot = make_shoot(tmp_path / "shoot")
    assert main(["remove", str(shoot), "-o", str(tmp_path / "o"), "--manifest", "x.json"]) == 2
    assert "name a .parquet or .csv file" in capsys.readouterr().err
    assert main(["remove", str(shoot), "-o", str(tmp_path / "o"), "--actors", "2"]) == 2
    assert "only with --engine ray" in capsys.readouterr().err
    assert main(["remove", str(shoot), "--engine", "ray", "--watch"]) == 2
    assert "--watch runs on the local engine" in capsys.readouterr().err
    assert main(["remove", "-", "-o", "-", "--engine", "ray"]) == 2
    assert not (tmp_path / "o").exists()


def test_readiness_waits_for_a_stable_size(tmp_path):
    from nuggy.hotfolder import Readiness

    f = tmp_path / "a.jpg"
    f.write_bytes(b"x" * 10)
    now = time.time()
    os.utime(f, (now, now))
    r = Readiness(1.0)
    assert not r.ready(str(f), now)  # just written
    assert r.ready(str(f), now + 1.1)  # unchanged for an interval
    with open(f, "ab") as fh:
        fh.write(b"more")
    os.utime(f, (now + 1.2, now + 1.2))
    assert not r.ready(str(f), now + 1.3)  # grew: the clock starts again
    assert r.ready(str(f), now + 2.4)
    empty = tmp_path / "e.jpg"
    empty.write_bytes(b"")
    os.utime(empty, (now, now))
    assert not r.ready(str(empty), now + 2)  # an empty file may be a copy not yet begun
    assert r.ready(str(empty), now + 10.5)


@pytest.mark.slow
def test_hot_folder_processes_slow_writes_and_stops_on_sigint(tmp_path):
    """Files already there, then a file written slowly in chunks: each is cut out once it is
    complete (same pixels as a plain run), the manifest has every file, SIGINT stops cleanly."""
    from nuggy.batch import read_manifest

    inbox = tmp_path / "inbox"
    make_shoot(inbox)
    (inbox / "bomb.png").unlink()
    late = tmp_path / "late.jpg"
    Image.open(EXAMPLES / "astronaut.jpg").convert("RGB").resize((200, 200)).save(late, quality=92)
    out, manifest = tmp_path / "out", tmp_path / "hot.csv"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nuggy",
            "remove",
            str(inbox),
            "-o",
            str(out),
            "--watch",
            "--watch-interval",
            "0.4",
            "--preset",
            "fast",
            "--manifest",
            str(manifest),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 30
        while not (out / "rocket.png").exists():
            assert time.time() < deadline and proc.poll() is None, "the existing files were not done"
            time.sleep(0.1)
        data = late.read_bytes()
        seen_partial = []

        def write_slowly():
            with open(inbox / "astronaut.jpg", "wb") as f:
                for i in range(0, len(data), 1024):
                    f.write(data[i : i + 1024])
                    f.flush()
                    time.sleep(0.1)  # a slow copy: ~1 s in all, each pause shorter than 0.4 s
                    seen_partial.append((out / "astronaut.png").exists())

        writer = threading.Thread(target=write_slowly)
        writer.start()
        writer.join()
        while not (out / "astronaut.png").exists():
            assert time.time() < deadline and proc.poll() is None, "the new file was not done"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err  # broken.jpg failed, the rest written
    assert not any(seen_partial), "a file was read before it was completely written"
    assert "stopping after the file in progress" in err
    assert "nuggy: 4 written, 0 skipped, 1 failed" in err
    rows = {Path(r["input"]).name: r for r in read_manifest(str(manifest)).to_pylist()}
    assert {n: r["status"] for n, r in rows.items()} == {
        "chelsea.jpg": "ok",
        "coffee.jpg": "ok",
        "rocket.jpg": "ok",
        "broken.jpg": "failed",
        "astronaut.jpg": "ok",
    }
    assert BAD_TEXT in rows["broken.jpg"]["error"]
    # the slowly written file gives the same cut-out as a plain run on the finished file
    ref = tmp_path / "ref.png"
    assert main(["remove", str(late), "-o", str(ref), "--preset", "fast", "-q"]) == 0
    a = np.asarray(Image.open(out / "astronaut.png"))
    b = np.asarray(Image.open(ref))
    assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_object_store_put_and_read_go_through_the_filesystem(tmp_path):
    """The non-POSIX branch (one put, no rename) and reads, on an fsspec in-memory store
    wrapped as a pyarrow filesystem; errors name the path."""
    pytest.importorskip("fsspec")
    import fsspec
    import pyarrow.fs as pafs

    from nuggy.batch import OutputOptions, cut_file, read_input
    from nuggy.distributed.fs import atomic_put
    from nuggy.errors import ImageError
    from nuggy.pipeline.pipeline import Pipeline

    mem = fsspec.filesystem("memory")
    store = pafs.PyFileSystem(pafs.FSSpecHandler(mem))
    src = EXAMPLES / "chelsea.jpg"
    atomic_put(store, "/bucket/raw/cat.jpg", src.read_bytes())
    img = read_input("/bucket/raw/cat.jpg", filesystem=store)
    assert img.shape == (300, 451, 3)
    with pytest.raises(ImageError, match="no such file"):
        read_input("/bucket/raw/nope.jpg", filesystem=store)
    rec = cut_file(
        Pipeline("fast"),
        "/bucket/raw/cat.jpg",
        "/bucket/cut/cat.png",
        OutputOptions(preset="fast"),
        src_fs=store,
        dst_fs=store,
        label="mem://bucket/raw/cat.jpg",
    )
    assert rec.status == "ok", rec.error
    with store.open_input_stream("/bucket/cut/cat.png") as f:
        data = f.read()
    local = tmp_path / "cat.png"
    assert main(["remove", str(src), "-o", str(local), "--preset", "fast", "-q"]) == 0
    assert data == local.read_bytes()  # same encoder, same bytes
    assert [i.base_name for i in store.get_file_info(pafs.FileSelector("/bucket/cut"))] == ["cat.png"]
    mem.store.clear()
    mem.pseudo_dirs[:] = [""]
