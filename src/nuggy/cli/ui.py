"""``nuggy ui``: the Streamlit web app on localhost."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Open the web app (Streamlit; needs pip install 'nuggy[ui]').

  nuggy ui                    http://127.0.0.1:8501
  nuggy ui --port 9000 --preset fast --open

Drop one or many photos, pick model and preset, tune each stage, compare before/after,
download PNGs (a ZIP for many). Runs: python -m streamlit run <nuggy/ui/app.py>."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s; 0.0.0.0 exposes it)"
    )
    p.add_argument("--port", type=int, default=8501, help="port (default %(default)s)")
    p.add_argument("--preset", default=None, help="preset selected at start (default: default)")
    p.add_argument(
        "--max-upload-mb",
        type=int,
        default=50,
        metavar="MB",
        help="largest upload per file (default %(default)s)",
    )
    p.add_argument("--open", action="store_true", help="open the app in a browser")


def streamlit_command(args) -> list[str]:
    """The ``streamlit run`` command line for ``args``."""
    from nuggy.ui import APP_PATH

    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.headless",
        "true",
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--server.maxUploadSize",
        str(args.max_upload_mb),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def run(args) -> int:
    import importlib.util
    import os
    import signal
    import subprocess

    if importlib.util.find_spec("streamlit") is None:
        print(
            "nuggy ui: streamlit is not installed; install the ui extra:\n  pip install 'nuggy[ui]'",
            file=sys.stderr,
        )
        return 2
    env = dict(os.environ)
    if args.preset:
        from nuggy.pipeline.config import PRESETS

        if args.preset not in PRESETS:
            print(
                f"nuggy ui: unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}",
                file=sys.stderr,
            )
            return 2
        env["NUGGY_UI_PRESET"] = args.preset
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    print(f"nuggy ui: {url}  (Ctrl+C to stop)", file=sys.stderr)
    proc = subprocess.Popen(streamlit_command(args), env=env)
    # A SIGTERM to nuggy stops Streamlit too (no orphaned server).
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        if args.open:
            _open_when_up(url, proc)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _open_when_up(url: str, proc) -> None:
    """Open ``url`` in a browser once Streamlit answers its health check (up to 60 s)."""
    import time
    import urllib.request
    import webbrowser

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                webbrowser.open(url)
                return
        except OSError:
            time.sleep(0.3)
