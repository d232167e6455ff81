"""Quality benchmark of the automatic pipeline (no trimap) on every evaluation set, one half each.

Runs every model × preset (and, with ``--stages``, each model's stage ladder: raw → + flip TTA
→ + interior fill → + guided filter → + island removal → default → best) over the ``check``
half (or ``--split tune|all``) of every dataset under ``../shared/evaldata/`` and prints, per
dataset, a Markdown table of mean SAD / MSE / Grad / Conn (whole image, Composition-1k scales),
median SAD, failures (SAD > 50 or IoU < 0.8 at 0.5), mean IoU, maxF / MAE where the ground truth
is binary, and an overall table across datasets. Constants and stage choices are chosen on
``tune``; README tables show ``check``.

With ``--rembg PATH/TO/rembg``: rows ``rembg -m u2netp`` and ``rembg -m u2netp -a`` (its alpha
matting) on Nuggy's cached model file (``U2NET_HOME`` points rembg at it; only for u2netp/u2net,
whose files rembg uses byte for byte).

Every run is kept as JSON (default ``reports/quality-<UTC time>.json``: command line, git
commit, split, dataset sizes, per-image values; the time is the start of the run). ``--compare OLD.json`` prints, per dataset and
configuration, the change from an older run (Δ mean, Δ median SAD, failures old → new) over the
images both scored; ``--compare OLD.json NEW.json`` compares two files without running. Each
run inside the JSON has the shape of a ``nuggy eval`` ``scores.json`` and is compared with the
same function as ``nuggy eval --compare A/ B/`` (which compares two report folders of one
dataset and one configuration each).

The model's probability per image is cached in ``--cache`` (default ``.scratch/probcache/``),
so a second preset of a model, or a second run, costs no inference.

    python benchmarks/quality.py                                   # u2netp, fast/default/best, check
    python benchmarks/quality.py --split tune --stages             # choose stages on tune
    python benchmarks/quality.py --models u2netp,isnet --accept-license agpl-3.0 \\
        --rembg /path/to/venv/bin/rembg
    python benchmarks/quality.py --datasets ecssd-dev --limit 20 --compare reports/old.json
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVALDATA = ROOT.parent / "shared" / "evaldata"
if str(ROOT / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None):
    from nuggy.eval.split import SPLITS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models",
        default="u2netp",
        type=_csv,
        help="comma-separated model strings; a+b is a multi-model config (default: %(default)s)",
    )
    ap.add_argument(
        "--presets",
        default="fast,default,best",
        type=_csv,
        help="comma-separated presets (default: %(default)s)",
    )
    ap.add_argument("--stages", action="store_true", help="also the stage-by-stage rows of every model")
    ap.add_argument(
        "--split", choices=SPLITS, default="check", help="half of every dataset (default: %(default)s)"
    )
    ap.add_argument(
        "--datasets",
        type=_csv,
        default=None,
        help="comma-separated dataset folders, or names under --evaldata (default: every "
        "readable folder there)",
    )
    ap.add_argument(
        "--evaldata", type=Path, default=EVALDATA, help="folder of datasets (default: %(default)s)"
    )
    ap.add_argument(
        "--limit", type=int, default=None, metavar="N", help="first N images of the split (development)"
    )
    ap.add_argument("--accept-license", metavar="ID", help="accept a gated model's licence (agpl-3.0)")
    ap.add_argument("--rembg", metavar="PATH", help="rembg executable for the comparison rows")
    ap.add_argument(
        "--cache",
        type=Path,
        default=ROOT / ".scratch" / "probcache",
        help="probability cache folder (default: %(default)s)",
    )
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the run here (default: reports/quality-<UTC time>.json)",
    )
    ap.add_argument(
        "--compare",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="OLD.json: deltas of this run against it; OLD.json NEW.json: compare two files",
    )
    ap.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar per configuration (default: on a terminal)",
    )
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be at least 1")
    if args.compare and len(args.compare) > 2:
        ap.error("--compare takes OLD.json, or OLD.json NEW.json")
    return args


def _dataset_paths(args) -> list[Path]:
    from nuggy.eval.quality import discover_datasets

    if args.datasets is None:
        return discover_datasets(args.evaldata)
    out = []
    for d in args.datasets:
        p = Path(d)
        out.append(p if p.is_dir() else args.evaldata / d)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(timezone.utc)
    argv = sys.argv[1:] if argv is None else list(argv)
    from nuggy.eval import quality as q

    git = q.git_info(ROOT)  # the code that runs, not what is committed by the time it ends
    command = "python benchmarks/quality.py" + (" " + shlex.join(argv) if argv else "")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.compare and len(args.compare) == 2:
        try:
            old, new = (q.load_result(p) for p in args.compare)
        except ValueError as exc:
            log(f"quality: {exc}")
            return 2
        print(f"`{command}`\n")
        print(q.compare_markdown(q.compare_results(old, new), new["datasets"]))
        return 0
    old = None
    if args.compare:
        try:
            old = q.load_result(args.compare[0])
        except ValueError as exc:
            log(f"quality: {exc}")
            return 2

    from nuggy.eval.datasets import DatasetError

    paths = _dataset_paths(args)
    if not paths:
        log(f"quality: no dataset found under {args.evaldata} (give --datasets or --evaldata)")
        return 2
    sets = []
    for p in paths:
        try:
            sets.append(q.prepare_dataset(p, args.split, args.limit))
        except DatasetError as exc:
            log(f"quality: {exc}")
            return 2
    if len({s.name for s in sets}) != len(sets):
        log("quality: two datasets have the same folder name; give distinct ones")
        return 2
    try:
        rows, skipped = q.plan_rows(args.models, args.presets, stages=args.stages)
    except ValueError as exc:
        log(f"quality: {exc}")
        return 2
    if args.rembg:
        extra, notes = q.rembg_rows(args.models)
        rows += extra
        for n in notes:
            log(n)
    for s in skipped:
        log(f"skipped {s['row']}: {s['reason']}")

    print(f"`{command}`\n")
    sizes = ", ".join(f"{s.name} {len(s.dataset)}/{s.info['samples']}" for s in sets)
    log(f"{len(rows)} configurations × {len(sets)} datasets ({args.split} half: {sizes})")
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    result = q.run_quality(
        rows,
        sets,
        cache_dir=args.cache,
        accept_license=args.accept_license,
        rembg=args.rembg,
        progress=show,
        log=log,
        skipped=skipped,
    )
    result["command"] = command
    result["argv"] = argv
    result["git"] = git
    print(q.result_markdown(result))
    if old is not None:
        cmp = q.compare_results(old, result)
        result["compared_with"] = {"path": str(args.compare[0]), "pairs": cmp["pairs"], "notes": cmp["notes"]}
        print(q.compare_markdown(cmp, result["datasets"]))
    path = args.json or ROOT / "reports" / f"quality-{started:%Y%m%dT%H%M%SZ}.json"
    written = q.write_result(result, path)
    log(f"run written to {written} ({result['wall_s']:.0f} s)")
    return 0 if result["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
