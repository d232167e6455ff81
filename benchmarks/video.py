"""Video benchmark: temporal stability and accuracy on clips with ground truth, speed, memory.

Clips (nuggy.video.synth): a real foreground with its real alpha (alphamatting-dev) moving over
a real background photo (ecssd-dev) — translation, zoom, rotation and a static section — with
per-frame sensor noise. Rows: frame by frame (the model's map through the pipeline per frame),
stabilised (those alphas through nuggy.video.temporal, as nuggy.video.remove does; with
--grid also ``map …`` rows: the model's map stabilised before the stages), and rvm (if
cached; no clip shows a person, see the README). Metrics (nuggy.eval.video_metrics): SAD, MSE per frame; dtSSD and
MESSDdt per frame pair, all means over the clips' frames.

  python benchmarks/video.py quality --split tune --grid     # choose the temporal constants
  python benchmarks/video.py quality --split check           # report
  python benchmarks/video.py speed                           # fps at 720p / 1080p
  python benchmarks/video.py temporal-speed                  # ms/frame of the stabiliser alone
  python benchmarks/video.py memory                          # RSS over a 30 s clip

Timings: run under ``flock /tmp/nuggy-bench.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nuggy.eval.split import split_names  # noqa: E402
from nuggy.eval.video_metrics import affine_flow, dtssd, messddt, mse, sad  # noqa: E402
from nuggy.video.synth import MOTIONS, synth_clip  # noqa: E402

EVAL = Path(os.environ.get("NUGGY_EVALDATA", ROOT.parent / "shared" / "evaldata"))
if not EVAL.exists():
    EVAL = Path("/work/shared/evaldata")


def _load(path, mode="RGB"):
    from PIL import Image

    return np.array(Image.open(path).convert(mode))


def clip_specs(split: str, motions=MOTIONS):
    """(name, foreground, alpha, background, motion) for each clip of a split; the
    background photo of each clip is from the same split of ecssd-dev."""
    am = EVAL / "alphamatting-dev"
    names = sorted(Path(p).stem for p in glob.glob(str(am / "image" / "*.png")))
    fgs = split_names(names, split)
    bgs_all = sorted(Path(p).stem for p in glob.glob(str(EVAL / "ecssd-dev" / "image" / "*.jpg")))
    bgs = split_names(bgs_all, split)
    out = []
    for i, (name, motion) in enumerate(itertools.product(fgs, motions)):
        bg = bgs[(7 * i) % len(bgs)]
        out.append(
            (
                f"{name}-{motion}",
                am / "image" / f"{name}.png",
                am / "alpha" / f"{name}.png",
                EVAL / "ecssd-dev" / "image" / f"{bg}.jpg",
                motion,
            )
        )
    return out


def make_clip(spec, size, frames):
    name, fg, al, bg, motion = spec
    return list(
        synth_clip(
            _load(fg),
            _load(al, "L"),
            _load(bg),
            size=size,
            frames=frames,
            motion=motion,
            seed=zlib.crc32(name.encode()) % 1000,
        )
    )


def score(preds, clip):
    rows = {"sad": [], "mse": [], "dtssd": [], "messddt": []}
    for t, (p, f) in enumerate(zip(preds, clip)):
        rows["sad"].append(sad(p, f.alpha))
        rows["mse"].append(mse(p, f.alpha))
        if t:
            q, g = preds[t - 1], clip[t - 1]
            rows["dtssd"].append(dtssd(p, q, f.alpha, g.alpha))
            flow = affine_flow(g.matrix, f.matrix, f.alpha.shape)
            rows["messddt"].append(messddt(p, q, f.alpha, g.alpha, flow))
    return rows


def exact_motion(prev, cur):
    """Where each pixel of frame ``cur`` was in ``prev`` (a synthetic clip: the foreground moves
    by its affine matrix over a still background), and how far that holds: 1 on the
    foreground, on the background only where it was visible in ``prev`` too (not uncovered).
    The ``motion`` argument of ``TemporalStabiliser.update``; diagnostic only."""
    h, w = cur.alpha.shape
    back = affine_flow(cur.matrix, prev.matrix, (h, w))  # t → t−1
    fx, fy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = fx + back[..., 0].astype(np.float32), fy + back[..., 1].astype(np.float32)
    fg = cur.alpha > 0
    conf = np.where(fg, 1.0, prev.alpha == 0).astype(np.float32)
    return np.where(fg, mx, fx), np.where(fg, my, fy), conf


def quality(args) -> None:
    from nuggy.pipeline.pipeline import Pipeline
    from nuggy.pipeline.segment import predict_probability
    from nuggy.video.temporal import TemporalParams, TemporalStabiliser

    cfg_name = args.preset
    pipe = Pipeline(cfg_name)
    pipe.config = pipe.config.replace(foreground=False)  # alpha only
    pred = pipe.predictor
    rvm = None
    if args.rvm:
        from nuggy.pipeline.config import preset
        from nuggy.sources import cached_path

        if cached_path("rvm"):
            rvm = Pipeline(preset("fast", model="rvm"))
    sizes = [tuple(int(v) for v in s.split("x"))[::-1] for s in args.sizes.split(",")]

    def label(prm: TemporalParams) -> str:
        def g(v):
            return "off" if v is None else f"{v:g}"

        return (
            f"stab k={prm.strength:g} photo={g(prm.photo_scale)} change={g(prm.change_scale)} "
            f"fb={prm.fb_scale:g} flow={prm.flow_size}"
        )

    if args.grid:
        grid = [
            TemporalParams(strength=k, photo_scale=ph) for k in (0.6, 0.8, 0.9) for ph in (6.0, 10.0, 16.0)
        ]
        grid += [
            TemporalParams(photo_scale=10.0, change_scale=0.35),
            TemporalParams(photo_scale=None),
            TemporalParams(photo_scale=None, change_scale=0.35),
            TemporalParams(fb_scale=2.0),
            TemporalParams(flow_size=640),
        ]
        # the former design: the model's map stabilised before the pipeline's stages
        before = [TemporalParams(photo_scale=None, change_scale=0.35), TemporalParams()]
    else:
        grid, before = [TemporalParams()], []
    results: dict = {}
    t0 = time.time()
    for size in sizes:
        for spec in clip_specs(args.split, args.motions.split(",")):
            clip = make_clip(spec, size, args.frames)
            probs = [predict_probability(pred, f.image, tta=pipe.config.tta) for f in clip]
            rows = {"frame": [pipe.run(f.image, probability=p).alpha for f, p in zip(clip, probs)]}
            for prm in grid:  # as nuggy.video.remove: on the final alpha of each frame
                st = TemporalStabiliser(prm)
                rows[label(prm)] = [st.update(f.image, a) for f, a in zip(clip, rows["frame"])]
            if args.exact_motion:  # the ceiling: the same blend with the true motion
                for prm in (TemporalParams(), TemporalParams(photo_scale=None)):
                    st = TemporalStabiliser(prm)
                    rows["exact motion " + label(prm)] = [
                        st.update(f.image, a, motion=exact_motion(clip[t - 1], f) if t else None)
                        for t, (f, a) in enumerate(zip(clip, rows["frame"]))
                    ]
            for prm in before:
                st = TemporalStabiliser(prm)
                rows["map " + label(prm)] = [
                    pipe.run(f.image, probability=st.update(f.image, p)).alpha for f, p in zip(clip, probs)
                ]
            if rvm is not None:
                rvm.predictor.reset()
                rows["rvm"] = [rvm.run(f.image, probability=rvm.predictor.step(f.image)).alpha for f in clip]
            group = "static" if spec[4] == "static" else "moving"
            for method, preds in rows.items():
                r = score(preds, clip)
                for key in (f"{size[1]}x{size[0]} all", f"{size[1]}x{size[0]} {group}"):
                    agg = results.setdefault(key, {}).setdefault(method, {k: [] for k in r})
                    for k, v in r.items():
                        agg[k].extend(v)
            print(f"  {spec[0]} {size[1]}x{size[0]} done ({time.time() - t0:.0f} s)", file=sys.stderr)
    print(
        f"\n{args.split} split, preset {cfg_name}, {args.frames} frames per clip, "
        f"{len(clip_specs(args.split, args.motions.split(',')))} clips per size\n"
    )
    print("| size, clips | method | SAD | MSE | dtSSD | MESSDdt |\n|---|---|---|---|---|---|")
    for size, methods in results.items():
        for method, m in methods.items():
            print(
                f"| {size} | {method} | {np.mean(m['sad']):.2f} | {np.mean(m['mse']):.2f} | "
                f"{np.mean(m['dtssd']):.3f} | {np.mean(m['messddt']):.3f} |"
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    s: {k: {mm: float(np.mean(v)) for mm, v in m.items()} for k, m in ms.items()}
                    for s, ms in results.items()
                },
                indent=1,
            )
        )


def _write_clip(path, size, seconds, fps=25, *, spec=None):
    """Encode a synthetic clip (H.264) of ``seconds`` at ``size`` = (H, W) to ``path``."""
    import av

    spec = spec or clip_specs("check")[0]
    n = int(seconds * fps)
    period = list(
        synth_clip(
            _load(spec[1]),
            _load(spec[2], "L"),
            _load(spec[3]),
            size=size,
            frames=min(n, 50),
            motion="translate",
        )
    )
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "18"})
        s.height, s.width = size
        s.pix_fmt = "yuv420p"
        for i in range(n):
            fr = av.VideoFrame.from_ndarray(period[i % len(period)].image, format="rgb24")
            fr.pts = i
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def speed(args) -> None:
    from nuggy.video import remove

    tmp = Path(tempfile.mkdtemp(prefix="nuggy-vbench-"))
    print("| size | preset | output | frames | fps (end to end) |\n|---|---|---|---|---|")
    for size in [(720, 1280), (1080, 1920)]:
        src = tmp / f"in{size[0]}.mp4"
        _write_clip(src, size, args.seconds)
        for preset in ("fast", "default"):
            for out in args.outputs.split(","):
                r = remove(src, tmp / f"out.{out}", preset=preset, overwrite=True, progress=False)
                print(f"| {size[1]}x{size[0]} | {preset} | .{out} | {r.frames} | {r.fps:.2f} |", flush=True)


def temporal_speed(args) -> None:
    """ms per frame of TemporalStabiliser.update alone (flow, warps, gates) on a moving clip."""
    from nuggy.video.temporal import TemporalParams, TemporalStabiliser

    spec = clip_specs("check")[0]
    print("| size | flow_size | ms/frame |\n|---|---|---|")
    for s in args.sizes.split(","):
        size = tuple(int(v) for v in s.split("x"))[::-1]
        clip = make_clip(spec, size, args.frames)
        for flow_size in (320, 640):
            st = TemporalStabiliser(TemporalParams(flow_size=flow_size))
            st.update(clip[0].image, clip[0].alpha)  # first frame: no flow
            t0 = time.perf_counter()
            for f in clip[1:]:
                st.update(f.image, f.alpha)
            ms = 1000 * (time.perf_counter() - t0) / (len(clip) - 1)
            print(f"| {size[1]}x{size[0]} | {flow_size} | {ms:.1f} |", flush=True)


def memory(args) -> None:
    import psutil

    from nuggy.video import remove

    tmp = Path(tempfile.mkdtemp(prefix="nuggy-vmem-"))
    size = tuple(int(v) for v in args.size.split("x"))[::-1]
    src = tmp / "in.mp4"
    _write_clip(src, size, args.seconds)
    proc = psutil.Process()
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    t0 = time.time()

    def sample():
        while not done.is_set():
            samples.append((time.time() - t0, proc.memory_info().rss / 2**20))
            time.sleep(0.5)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    r = remove(src, tmp / "out.webm", preset=args.preset, overwrite=True, progress=False)
    done.set()
    th.join()
    rss = np.array([s[1] for s in samples])
    n = len(rss)
    print(
        f"{args.seconds:.0f} s clip {size[1]}x{size[0]} @25 fps, {r.frames} frames, preset "
        f"{args.preset} → .webm in {r.seconds:.0f} s ({r.fps:.2f} fps)"
    )
    for q in (0.1, 0.25, 0.5, 0.75, 1.0):
        i = min(n - 1, int(q * n) - 1 if q < 1 else n - 1)
        print(f"  RSS at {samples[i][0]:6.1f} s: {rss[i]:.0f} MiB")
    first, second = rss[: n // 2], rss[n // 2 :]
    print(
        f"  peak first half {first.max():.0f} MiB, second half {second.max():.0f} MiB, "
        f"overall {rss.max():.0f} MiB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--split", default="check", choices=["tune", "check"])
    q.add_argument("--sizes", default="640x360,1280x720")
    q.add_argument("--frames", type=int, default=16)
    q.add_argument("--preset", default="default")
    q.add_argument("--grid", action="store_true", help="try a grid of temporal constants")
    q.add_argument("--rvm", action="store_true", help="add rvm rows (if cached)")
    q.add_argument("--motions", default=",".join(MOTIONS))
    q.add_argument(
        "--exact-motion",
        action="store_true",
        help="add rows where the stabiliser gets the clip's true motion instead of optical flow "
        "(what temporal blending could reach at best)",
    )
    q.add_argument("--json")
    s = sub.add_parser("speed")
    s.add_argument("--seconds", type=float, default=2.0)
    s.add_argument("--outputs", default="webm")
    ts = sub.add_parser("temporal-speed")
    ts.add_argument("--sizes", default="640x360,1280x720,1920x1080")
    ts.add_argument("--frames", type=int, default=25)
    m = sub.add_parser("memory")
    m.add_argument("--seconds", type=float, default=30.0)
    m.add_argument("--size", default="320x180")
    m.add_argument("--preset", default="fast")
    args = ap.parse_args()
    {"quality": quality, "speed": speed, "memory": memory, "temporal-speed": temporal_speed}[args.what](args)


if __name__ == "__main__":
    main()
