"""Throughput of ``nuggy remove`` on the local engine vs ``--engine ray`` (one node).

48 ecssd-dev photos (check half) upscaled to ~2 MP (1732×1155, Lanczos) in a temp folder; each
configuration is the real command line in a subprocess (Ray start-up included), outputs
overwritten. Peak RSS: the local process; for Ray, each actor process (``ray::MapWorker``) and
the driver. Also the Ray job alone with Ray already running (``remove_dataset`` after
``ray.init``), which is what a long-lived cluster pays.

    flock /tmp/nuggy-bench.lock python benchmarks/distributed.py [--presets fast default]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ECSSD = ROOT.parent / "shared" / "evaldata" / "ecssd-dev" / "image"


def make_photos(folder: Path, n: int = 48, size: tuple[int, int] = (1732, 1155)) -> Path:
    from PIL import Image

    from nuggy.eval.split import split_names

    folder.mkdir(parents=True, exist_ok=True)
    names = split_names(sorted(p.stem for p in ECSSD.glob("*.jpg")), "check")[:n]
    for name in names:
        dst = folder / f"{name}.jpg"
        if not dst.exists():
            im = Image.open(ECSSD / f"{name}.jpg").convert("RGB")
            wh = size if im.width >= im.height else size[::-1]
            im.resize(wh, Image.LANCZOS).save(dst, quality=92)
    return folder


class RssSampler(threading.Thread):
    """Peak RSS (MB) of process ``pid`` (key ``"main"``) and of each descendant matching
    ``keep(proc)`` (key: its pid), sampled every 0.2 s."""

    def __init__(self, pid: int, keep) -> None:
        super().__init__(daemon=True)
        self.pid, self.keep, self.peak, self.stop = pid, keep, {}, threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                main = psutil.Process(self.pid)
                procs = [("main", main)] + [(c.pid, c) for c in main.children(recursive=True) if self.keep(c)]
                for key, proc in procs:
                    rss = proc.memory_info().rss / 2**20
                    self.peak[key] = max(self.peak.get(key, 0), rss)
            except (psutil.Error, OSError):
                pass
            self.stop.wait(0.2)


def run_cli(args: list[str], keep=lambda p: False) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nuggy", "remove", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = RssSampler(proc.pid, keep)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{err[-2000:]}")
    return wall, sampler.peak


def is_actor(p) -> bool:
    try:
        return "MapWorker" in (p.name() + " " + " ".join(p.cmdline()))
    except Exception:  # noqa: BLE001
        return False


def max_alpha_diff(a: Path, b: Path) -> int:
    from PIL import Image

    worst = 0
    for f in sorted(a.glob("*.png")):
        x = np.asarray(Image.open(f))[..., 3].astype(int)
        y = np.asarray(Image.open(b / f.name))[..., 3].astype(int)
        worst = max(worst, int(np.abs(x - y).max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["fast", "default"])
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "nuggy-bench-ray"))
    a = ap.parse_args()
    work = Path(a.work)
    photos = make_photos(work / "in", a.n)
    n = len(list(photos.glob("*.jpg")))
    print(f"{n} photos of 1732×1155 (2.0 MP) in {photos}; {os.cpu_count()} CPUs\n")
    rows = []
    for preset in a.presets:
        base = [str(photos), "--preset", preset, "--model", "u2netp", "-q", "--overwrite"]
        wall, peak = run_cli(base + ["-o", str(work / f"local-{preset}")])
        rows.append(
            (
                preset,
                "local (1 process, 2 threads + I/O overlap)",
                wall,
                n / wall,
                f"{peak.get('main', 0):.0f}",
                "-",
            )
        )
        for actors, cpus in ((2, 1), (1, 2)):
            if preset != "fast" and (actors, cpus) == (1, 2):
                continue
            out = work / f"ray-{preset}-{actors}x{cpus}"
            wall, peak = run_cli(
                base
                + ["-o", str(out), "--engine", "ray", "--actors", str(actors), "--cpus-per-actor", str(cpus)],
                is_actor,
            )
            diff = max_alpha_diff(work / f"local-{preset}", out)
            actor_rss = [v for k, v in peak.items() if k != "main"]
            rss = ", ".join(f"{v:.0f}" for v in sorted(actor_rss)) + f" (driver {peak.get('main', 0):.0f})"
            rows.append((preset, f"ray CLI, {actors} actor(s) × {cpus} CPU", wall, n / wall, rss, str(diff)))
    # the job alone, Ray already up (a long-lived cluster's cost)
    import ray

    from nuggy.distributed import remove_dataset
    from nuggy.pipeline.config import preset as make_preset

    sys.path.insert(0, str(ROOT / "src"))
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    init = time.perf_counter() - t0
    for preset in a.presets:
        t0 = time.perf_counter()
        remove_dataset(
            str(photos),
            str(work / f"ray-api-{preset}"),
            config=make_preset(preset),
            preset=preset,
            actors=2,
            overwrite=True,
        )
        wall = time.perf_counter() - t0
        rows.append(
            (
                preset,
                "ray job only (Ray already running), 2 × 1 CPU",
                wall,
                n / wall,
                "-",
                str(max_alpha_diff(work / f"local-{preset}", work / f"ray-api-{preset}")),
            )
        )
    ray.shutdown()
    print(f"ray.init (local, {os.cpu_count()} CPUs): {init:.1f} s\n")
    print(
        "| preset | engine | wall s | images/s | peak RSS MB (per actor) | max alpha diff vs local (/255) |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.2f} | {r[4]} | {r[5]} |")


if __name__ == "__main__":
    main()
