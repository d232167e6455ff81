"""Load test of the HTTP API on loopback: throughput, status mix, output validity, memory,
and how it holds up against abusive clients.

Starts ``nuggy serve`` in a subprocess on a free 127.0.0.1 port, warms it up, records the
server's resident memory, sends N requests with C in flight (httpx, bounded), checks that every
200 is a PNG of the input's size and every 503 carries Retry-After, records memory again and
prints a summary. Then (unless --no-abuse), on raw sockets:

* slow uploads: as many as the server has places, each trickling its body, must get 408 after
  ``--upload-timeout`` and give their places back;
* while those hold every place, large uploads (--big of --big-mb MB) must get 503 at once, with
  their bodies unread: resident memory may not grow by more than one body;
* abandoned uploads (half a body, then the client closes) must each log one INFO line and no
  ERROR or traceback;
* malformed requests (oversize Content-Length, wrong content type, garbage, bad parameters)
  must get 413 / 415 / 422.

Exits 1 on a crash, an unexpected status, a bad image, resident memory growth above
--max-rss-growth (default 10 %) in the load phase, or any failed abuse check.

    python benchmarks/load_api.py                       # 300 requests, 8 concurrent
    python benchmarks/load_api.py --requests 50 --concurrency 4 --server-queue 8

All traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (psutil if present, else /proc)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    raise RuntimeError(f"cannot read the memory of process {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_image(side: int) -> tuple[bytes, tuple[int, int]]:
    from PIL import Image

    im = Image.open(ROOT / "examples" / "chelsea.jpg").convert("RGB")
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue(), im.size


@dataclass
class Tally:
    codes: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

    def add(self, code: int) -> None:
        self.codes[code] = self.codes.get(code, 0) + 1


async def fire(
    url: str, data: bytes, size: tuple[int, int], n: int, concurrency: int, timeout: float, tally: Tally
) -> None:
    import httpx
    from PIL import Image

    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one(i: int) -> None:
            async with gate:
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, files={"image": (f"{i}.jpg", data, "image/jpeg")})
                except httpx.HTTPError as exc:
                    tally.add(-1)
                    tally.bad.append(f"request {i}: {type(exc).__name__}: {exc}")
                    return
                dt = time.perf_counter() - t0
            tally.add(r.status_code)
            if r.status_code == 200:
                tally.latencies.append(dt)
                try:
                    im = Image.open(io.BytesIO(r.content))
                    im.load()
                    if im.format != "PNG" or im.size != size or im.mode != "RGBA":
                        tally.bad.append(f"request {i}: {im.format} {im.mode} {im.size}")
                except Exception as exc:  # noqa: BLE001
                    tally.bad.append(f"request {i}: undecodable PNG ({exc})")
            elif r.status_code == 503:
                if not r.headers.get("retry-after", "").isdigit():
                    tally.bad.append(f"request {i}: 503 without Retry-After")
            else:
                tally.bad.append(f"request {i}: HTTP {r.status_code} {r.text[:200]}")

        await asyncio.gather(*(one(i) for i in range(n)))


# --------------------------------------------------------------------------- abusive clients


async def raw_post(
    port: int,
    path: str,
    headers: dict[str, str],
    parts: list[bytes],
    *,
    delay: float = 0.0,
    close_after: int | None = None,
    timeout: float = 60.0,
) -> tuple[int | None, float]:
    """POST over a raw socket, sending ``parts`` ``delay`` s apart (or closing after
    ``close_after`` of them) while listening for the status line. Returns (status or None if
    the client closed first, seconds to the status)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    )
    t0 = time.perf_counter()

    async def status_line() -> bytes:
        return await asyncio.wait_for(reader.readline(), timeout)

    status_task = asyncio.ensure_future(status_line())
    try:
        writer.write(head.encode())
        for i, part in enumerate(parts):
            if close_after is not None and i >= close_after:
                status_task.cancel()
                return None, time.perf_counter() - t0
            if status_task.done():
                break
            writer.write(part)
            await writer.drain()
            if delay:
                await asyncio.wait({status_task}, timeout=delay)
        line = await status_task
        return (int(line.split()[1]) if line else None), time.perf_counter() - t0
    except (ConnectionError, asyncio.TimeoutError, IndexError, ValueError):
        if status_task.done() and not status_task.cancelled() and status_task.exception() is None:
            line = status_task.result()
            return (int(line.split()[1]) if line else None), time.perf_counter() - t0
        return None, time.perf_counter() - t0
    finally:
        if not status_task.done():
            status_task.cancel()
        writer.close()


def abuse(port: int, pid: int, data: bytes, args, log_path: Path) -> tuple[list[str], list[str]]:
    """The abusive-client checks (see the module docstring): (report lines, failures)."""
    failures: list[str] = []
    capacity = args.server_concurrency + args.server_queue
    url = f"/v1/remove?preset={args.preset}"
    mb = 1024 * 1024

    async def run() -> dict:
        # 1. slow uploads take every place; 2. meanwhile large uploads must bounce unread
        slow_body = data * 4
        slow = [
            asyncio.ensure_future(
                raw_post(
                    port,
                    url,
                    {"Content-Type": "image/jpeg", "Content-Length": str(len(slow_body))},
                    [slow_body[i : i + 64] for i in range(0, len(slow_body), 64)],
                    delay=0.5,
                    timeout=args.upload_timeout + 30,
                )
            )
            for _ in range(capacity)
        ]
        await asyncio.sleep(1.0)  # the slow ones are admitted
        rss_before = rss_bytes(pid)
        big_body = os.urandom(args.big_mb * mb)
        big = await asyncio.gather(
            *(
                raw_post(
                    port,
                    url,
                    {"Content-Type": "image/jpeg", "Content-Length": str(len(big_body))},
                    [big_body[i : i + mb] for i in range(0, len(big_body), mb)],
                    timeout=30,
                )
                for _ in range(args.big)
            )
        )
        rss_big = rss_bytes(pid)
        slow_done = await asyncio.gather(*slow)
        # 3. abandoned uploads, as many at a time as the server has places (more would be
        #    refused unread, before there is an upload to abandon)
        half = [data[: len(data) // 2], data[len(data) // 2 :]]
        for start in range(0, args.abandon, capacity):
            await asyncio.gather(
                *(
                    raw_post(
                        port,
                        url,
                        {"Content-Type": "image/jpeg", "Content-Length": str(len(data))},
                        half,
                        close_after=1,
                    )
                    for _ in range(min(capacity, args.abandon - start))
                )
            )
            await asyncio.sleep(0.5)
        # 4. malformed requests
        bad = await asyncio.gather(
            raw_post(
                port,
                url,
                {"Content-Type": "image/jpeg", "Content-Length": str(30 * mb)},
                [b"x" * 1024],
                timeout=10,
            ),
            raw_post(port, url, {"Content-Type": "text/plain", "Content-Length": "5"}, [b"hello"]),
            raw_post(port, url, {"Content-Type": "image/png", "Content-Length": "5"}, [b"hello"]),
            raw_post(
                port,
                url + "&refine_radius=100000",
                {"Content-Type": "image/jpeg", "Content-Length": str(len(data))},
                [data],
            ),
            raw_post(
                port,
                url + "&bg=300,0,0",
                {"Content-Type": "image/jpeg", "Content-Length": str(len(data))},
                [data],
            ),
        )
        return {"slow": slow_done, "big": big, "bad": bad, "rss_before": rss_before, "rss_big": rss_big}

    r = asyncio.run(run())
    log_text = log_path.read_text(errors="replace")
    disconnects = log_text.count("disconnected during the upload")
    tracebacks = log_text.count("Traceback")
    errors = sum(1 for line in log_text.splitlines() if line.startswith("ERROR"))
    slow_codes = [c for c, _ in r["slow"]]
    slow_secs = sorted(t for _, t in r["slow"])
    big_codes = [c for c, _ in r["big"]]
    big_secs = sorted(t for _, t in r["big"])
    growth = (r["rss_big"] - r["rss_before"]) / mb
    lines = [f"abusive clients (server places: {capacity}, upload timeout {args.upload_timeout:g} s)"]
    lines.append(
        f"  slow uploads  {len(slow_codes)}: statuses {dict(Counter(slow_codes))}, answered after "
        f"{slow_secs[0]:.1f}-{slow_secs[-1]:.1f} s"
    )
    lines.append(
        f"  large uploads {len(big_codes)} × {args.big_mb} MB while full: statuses "
        f"{dict(Counter(big_codes))}, p50 {statistics.median(big_secs) * 1000:.0f} ms, "
        f"server RSS {r['rss_before'] / mb:.1f} -> {r['rss_big'] / mb:.1f} MiB ({growth:+.1f} MiB)"
    )
    lines.append(
        f"  abandoned     {args.abandon}: {disconnects} INFO lines, {errors} ERROR lines, "
        f"{tracebacks} tracebacks in the server log"
    )
    lines.append(
        f"  malformed     statuses {[c for c, _ in r['bad']]} "
        "(oversize, text/plain, garbage, refine_radius=100000, bg=300,0,0)"
    )
    if any(c != 408 for c in slow_codes):
        failures.append(f"slow uploads got {slow_codes}, expected 408 each")
    if any(c != 503 for c in big_codes):
        failures.append(f"large uploads to a full server got {dict(Counter(big_codes))}, expected 503")
    if growth > args.big_mb:
        failures.append(f"RSS grew {growth:.1f} MiB while refusing large uploads (bodies read?)")
    if disconnects != args.abandon or errors or tracebacks:
        failures.append(
            f"abandoned uploads logged {disconnects} INFO lines (expected "
            f"{args.abandon}), {errors} ERROR lines, {tracebacks} tracebacks"
        )
    if [c for c, _ in r["bad"]] != [413, 415, 415, 422, 422]:
        failures.append(f"malformed requests got {[c for c, _ in r['bad']]}")
    return lines, failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    p.add_argument("--warmup", type=int, default=16)
    p.add_argument("--size", type=int, default=160, help="longest side of the test photo")
    p.add_argument("--preset", default="fast")
    p.add_argument("--server-concurrency", type=int, default=1)
    p.add_argument(
        "--server-queue",
        type=int,
        default=8,
        help="server queue (default 8: no 503 at 8 in flight; lower it to see 503s)",
    )
    p.add_argument("--max-rss-growth", type=float, default=0.10)
    p.add_argument("--max-seconds", type=float, default=900, help="abort the run after this")
    p.add_argument(
        "--abuse",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the abusive-client checks (default: on)",
    )
    p.add_argument("--upload-timeout", type=float, default=3.0, help="server upload timeout (s)")
    p.add_argument("--big", type=int, default=40, help="large uploads sent to the full server")
    p.add_argument("--big-mb", type=int, default=8, help="size of each large upload (MB)")
    p.add_argument("--abandon", type=int, default=50, help="uploads abandoned half-way")
    args = p.parse_args(argv)

    import httpx

    data, size = make_image(args.size)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v1/remove?preset={args.preset}"
    cmd = [
        sys.executable,
        "-m",
        "nuggy",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--concurrency",
        str(args.server_concurrency),
        "--queue",
        str(args.server_queue),
        "--upload-timeout",
        str(args.upload_timeout),
        "--log-level",
        "info",
    ]
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"nuggy-load-{port}.log"
    log = open(log_path, "wb")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    failures: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print(log_path.read_text(), file=sys.stderr)
                print("server did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        rss_start = rss_bytes(server.pid)

        warm = Tally()
        asyncio.run(fire(url, data, size, args.warmup, args.concurrency, 120, warm))
        rss_warm = rss_bytes(server.pid)

        peak = [rss_warm]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.2):
                try:
                    peak[0] = max(peak[0], rss_bytes(server.pid))
                except (OSError, RuntimeError):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        tally = Tally()
        t0 = time.perf_counter()
        try:
            asyncio.run(
                asyncio.wait_for(
                    fire(url, data, size, args.requests, args.concurrency, 120, tally),
                    timeout=args.max_seconds,
                )
            )
        except asyncio.TimeoutError:
            failures.append(f"run exceeded --max-seconds {args.max_seconds:g}")
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
        time.sleep(0.5)
        alive = server.poll() is None
        rss_end = rss_bytes(server.pid) if alive else 0
        health = httpx.get(base + "/healthz", timeout=5).json() if alive else {}
        abuse_lines: list[str] = []
        abuse_failures: list[str] = []
        if args.abuse and alive:
            log.flush()
            abuse_lines, abuse_failures = abuse(port, server.pid, data, args, log_path)
            alive = server.poll() is None
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        log.close()

    ok = tally.codes.get(200, 0)
    busy = tally.codes.get(503, 0)
    other = sum(v for k, v in tally.codes.items() if k not in (200, 503))
    growth = (rss_end - rss_warm) / rss_warm if rss_end else float("nan")
    lat = sorted(tally.latencies)
    mb = 1024 * 1024
    print(
        f"nuggy API load test: {args.requests} requests, {args.concurrency} in flight, "
        f"{size[0]}×{size[1]} JPEG, preset {args.preset}, server concurrency "
        f"{args.server_concurrency} + queue {args.server_queue}"
    )
    print(f"  statuses      200: {ok}   503: {busy}   other: {other}  {dict(sorted(tally.codes.items()))}")
    print(f"  wall          {wall:.1f} s   throughput {ok / wall:.1f} images/s")
    if lat:
        print(
            f"  latency (200) p50 {statistics.median(lat) * 1000:.0f} ms   "
            f"p95 {lat[int(0.95 * (len(lat) - 1))] * 1000:.0f} ms   max {lat[-1] * 1000:.0f} ms"
        )
    print(
        f"  server RSS    start {rss_start / mb:.1f} MiB   after warm-up {rss_warm / mb:.1f} MiB   "
        f"peak {peak[0] / mb:.1f} MiB   end {rss_end / mb:.1f} MiB   growth {growth * 100:+.1f} %"
    )
    print(f"  after the run {health}")
    for line in abuse_lines:
        print(line)

    if not alive:
        failures.append(f"the server process died (log: {log_path})")
    if other:
        failures.append(f"{other} responses were neither 200 nor 503")
    failures.extend(tally.bad[:10])
    failures.extend(abuse_failures)
    if alive and growth > args.max_rss_growth:
        failures.append(f"RSS grew {growth * 100:.1f} % (limit {args.max_rss_growth * 100:.0f} %)")
    if ok == 0:
        failures.append("no request succeeded")
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    print("PASS" if not failures else "FAIL")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
