"""Issue 18: bad inputs, options and output paths, as a new user and as an attacker would try.

Every case checks the exit status, one clear message naming the file (no traceback), inputs
unchanged (hashes), no temp files left, and the output either correct or absent.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from nuggy.cli.main import main

from conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("u2netp_path")


def test_trimap_outputs_are_distinct(tmp_path, capsys):
    """`nuggy trimap d/cat.jpg d/cat.png` wrote both to cat.trimap.png (with --overwrite the
    second replaced the first)."""
    shutil.copy(EXAMPLES / "chelsea.jpg", tmp_path / "cat.jpg")
    Image.open(EXAMPLES / "coffee.jpg").resize((60, 40)).save(tmp_path / "cat.png")
    rc = main(["trimap", str(tmp_path / "cat.jpg"), str(tmp_path / "cat.png"), "--preset", "fast",
               "--overwrite", "-q"])
    assert rc == 0, capsys.readouterr().err
    a = np.asarray(Image.open(tmp_path / "cat.jpg.trimap.png"))
    b = np.asarray(Image.open(tmp_path / "cat.png.trimap.png"))
    assert a.shape == (300, 451) and b.shape == (40, 60)
    assert set(np.unique(a)) <= {0, 128, 255}


@pytest.mark.parametrize("verb", [
    ["trimap", str(EXAMPLES / "chelsea.jpg")],
    ["bench", "--size", "64", "--runs", "1", "--warmup", "0"],
])
def test_unknown_output_suffix_is_refused_before_work(tmp_path, capsys, verb):
    """Issue 18 (6) for the other verbs that write files: -o out.bmp is a file name with an
    unsupported suffix, not a folder to create."""
    out = tmp_path / "out.bmp"
    assert main([*verb, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: unknown output format '.bmp'" in err and "end it with /" in err
    assert list(tmp_path.iterdir()) == []
