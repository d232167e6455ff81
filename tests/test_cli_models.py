"""`nuggy models`: list, path, licence gate, offline errors, convert → export → remove."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from nuggy.cli.main import main


def test_list_shows_licences_and_cache(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("u2netp", "u2net", "isnet", "isnet-quint8"):
        assert name in out
    assert "AGPL-3.0 (opt-in)" in out and "--accept-license agpl-3.0" in out


def test_path_of_cached_and_missing(u2netp_path, capsys, tmp_path, monkeypatch):
    assert main(["models", "path", "u2netp"]) == 0
    assert capsys.readouterr().out.strip() == str(u2netp_path)
    monkeypatch.setenv("NUGGY_HOME", str(tmp_path))
    assert main(["models", "path", "u2netp"]) == 1
    assert "nuggy models pull u2netp" in capsys.readouterr().err


def test_gated_model_needs_licence_before_any_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NUGGY_HOME", str(tmp_path))
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "none"))
    assert main(["models", "pull", "isnet"]) == 2
    err = capsys.readouterr().err
    assert "AGPL-3.0" in err and "nuggy models pull isnet --accept-license agpl-3.0" in err
    assert not any(tmp_path.rglob("*.onnx"))


def test_remove_offline_without_model_names_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NUGGY_HOME", str(tmp_path))
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.u2net either
    monkeypatch.setenv("NUGGY_OFFLINE", "1")
    rc = main(["remove", str(EXAMPLES / "chelsea.jpg"), "-o", str(tmp_path / "x.png")])
    assert rc == 2
    assert "nuggy models pull u2netp" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_unknown_model(capsys):
    assert main(["models", "pull", "nope"]) == 2
    assert "known models" in capsys.readouterr().err


@pytest.mark.torch
@pytest.mark.slow
def test_convert_export_and_use_as_weights(u2netp_path, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pth, onnx_file = tmp_path / "u2netp.pth", tmp_path / "mine.onnx"
    assert main(["models", "convert", "u2netp", "-o", str(pth)]) == 0
    assert main(["models", "export", str(pth), "--arch", "u2netp", "-o", str(onnx_file)]) == 0
    assert onnx_file.is_file() and onnx_file.with_suffix(".json").is_file()
    mine, ref = tmp_path / "mine.png", tmp_path / "ref.png"
    src = str(EXAMPLES / "chelsea.jpg")
    assert main(["remove", src, "--weights", str(onnx_file), "-o", str(mine), "--preset", "fast", "-q"]) == 0
    assert main(["remove", src, "-o", str(ref), "--preset", "fast", "-q"]) == 0
    a = np.asarray(Image.open(mine))[..., 3].astype(int)
    b = np.asarray(Image.open(ref))[..., 3].astype(int)
    assert np.abs(a - b).max() <= 1  # one 8-bit step: fp32 conversion differences ≤ 1e-3
