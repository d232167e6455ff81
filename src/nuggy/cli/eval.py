"""``nuggy eval``: score a model/preset or a folder of predictions against ground truth."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Score a model + preset, or predictions made by any tool, against ground truth.

  nuggy eval DATA --model u2netp --preset default [--split check] [--region whole|unknown|both]
                 [-o report/]
  nuggy eval DATA --predictions preds/      score masks from any tool (matched by name;
                                            RGBA -> its alpha, grey -> value/255)
  nuggy eval DATA --compare report_a/ report_b/ [-o cmp/]   side by side, per-image deltas

DATA layouts (detected, or --layout): generic image/ + alpha/ (or mask/) [+ trimap/];
Composition-1k sets made by 'nuggy composite'; DIS5K im/ + gt/; AM-2k original/ + mask/;
alphamatting.com input_*/ + gt_*/ [+ trimap_*/]. Folders of several sets need --subset
(DIS-VD, validation, training_lowres).

--split tune|check|all scores one half of the set (default all): the halves are fixed by a hash
of each image's name (nuggy.eval.split), so constants are chosen on tune and reported on check.
The split is written into the report; --limit N then keeps the first N of it.

Metrics: SAD, MSE, Grad, Conn over the whole image and/or the trimap's unknown region
(Composition-1k scales), IoU at 0.5, maxF, weighted F, MAE, S-measure, E-measure, HCE (DIS),
the failure count (SAD > 50 or IoU < 0.8), and the pipeline's time per stage. -o writes scores.csv/json, summary.md, a bar chart per metric,
worst.png (image | ground truth | prediction | error) and index.html.
Exit status: 0 all scored, 1 some images failed, 2 bad arguments or data."""


def add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    """Model and preset options shared by ``eval`` and ``bench``."""
    g = p.add_argument_group("pipeline")
    g.add_argument("--model", default=None, help="registry model (default: the preset's, u2netp)")
    g.add_argument("--preset", default="default", help="fast | default (default: %(default)s)")
    g.add_argument("--weights", metavar="PATH", help="use this model file instead of the registry one")
    g.add_argument("--backend", choices=["onnx", "torch"], default="onnx")
    g.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    g.add_argument("--accept-license", metavar="ID", help="accept a gated model's licence (agpl-3.0)")
    g.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a pipeline setting, e.g. --set tta=false --set refine_radius=8 "
        "(repeatable; names as in PipelineConfig)",
    )


def config_from_args(args):
    """The PipelineConfig for ``--preset``, ``--model``, ``--weights``, ``--set`` …

    Raises:
        ConfigError (a ValueError): unknown preset or setting, or a value of the wrong kind.
    """
    from nuggy.cli.settings import config_from_args as build

    return build(args)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("data", nargs="?", metavar="DATA", help="dataset folder (optional with --compare)")
    d = p.add_argument_group("dataset")
    d.add_argument(
        "--layout",
        choices=["generic", "composition", "dis5k", "am2k", "alphamatting"],
        help="dataset layout (default: detected)",
    )
    d.add_argument(
        "--split",
        default="all",
        metavar="tune|check|all",
        help="score one half of the set, fixed by a hash of the names (default: all)",
    )
    d.add_argument(
        "--subset",
        metavar="NAME",
        help="sub-folder of a folder of sets (DIS-VD, validation) or alphamatting set (training_lowres)",
    )
    d.add_argument(
        "--trimap-set", metavar="NAME", help="alphamatting trimap folder (default: the first, Trimap1)"
    )
    d.add_argument(
        "--limit", type=int, default=None, metavar="N", help="score the first N images of the split only"
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--predictions", metavar="DIR", help="score these masks instead of running a model")
    src.add_argument(
        "--compare", nargs=2, metavar=("REPORT_A", "REPORT_B"), help="compare two report folders (Δ = B − A)"
    )
    add_pipeline_arguments(p)
    r = p.add_argument_group("scoring and report")
    r.add_argument(
        "--region",
        choices=["whole", "unknown", "both"],
        default=None,
        help="matting-metric region (default: both when every image has a trimap, else whole)",
    )
    r.add_argument("-o", "--output", metavar="DIR", help="write the report (or comparison) here")
    r.add_argument(
        "--save-predictions",
        action="store_true",
        help="also write every prediction to DIR/predictions/ (for --compare sheets and re-scoring)",
    )
    r.add_argument("--worst", type=int, default=6, metavar="N", help="worst cases in the contact sheet")
    r.add_argument("--rank-by", metavar="METRIC", help="metric ranking the worst cases (default sad_whole)")
    r.add_argument("--no-plots", action="store_true", help="skip the bar charts")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a terminal only)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print the summary and errors only")


def _err(msg: str) -> int:
    print(f"nuggy eval: {msg}", file=sys.stderr)
    return 2


def _split_args(args, note=None) -> tuple[str, str | None]:
    """(half, sub-folder) from ``--split`` and ``--subset``. ``--split NAME`` with a name other
    than tune/check/all is the sub-folder, as before ``--subset`` existed (with a note)."""
    from nuggy.eval.split import SPLITS

    part, subset = args.split or "all", args.subset
    if part not in SPLITS:
        if subset is not None:
            raise ValueError(f"--split must be one of {', '.join(SPLITS)}, got {part!r}")
        if note is not None:
            note(
                f"note: --split {part} names a sub-folder; that is --subset {part} now "
                "(--split picks the tune/check half)"
            )
        part, subset = "all", part
    return part, subset


def _open(args, note=None):
    """The dataset of ``args`` restricted to ``--split`` and ``--limit``, with the split record
    for the report: (Dataset, {"part", "of", "limit"})."""
    from nuggy.eval.datasets import check_dataset, open_dataset
    from nuggy.eval.split import split_names

    part, subset = _split_args(args, note)
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    ds = open_dataset(args.data, layout=args.layout, split=subset, trimap_set=args.trimap_set)
    total = len(ds)
    ds = ds.subset(split_names([s.name for s in ds], part))
    if args.limit is not None:
        ds.samples = ds.samples[: args.limit]
    check_dataset(ds)
    return ds, {"part": part, "of": total, "limit": args.limit}


def _compare(args, note) -> int:
    from nuggy.eval.datasets import DatasetError
    from nuggy.eval.report import (
        ReportError,
        compare_reports,
        comparison_markdown,
        comparison_sheet,
        load_report,
        write_comparison,
    )

    try:
        a, b = (load_report(p) for p in args.compare)
        ds = _open(args, note)[0] if args.data else None
    except (ReportError, DatasetError, ValueError) as exc:
        return _err(str(exc))
    if ds is not None:
        from pathlib import Path

        for rep in (a, b):
            scored = rep["meta"].get("dataset")
            if scored and Path(scored) != ds.root.resolve():
                note(f"note: {rep['path']} scored {scored}, not {ds.root.resolve()}")
    cmp = compare_reports(a, b, names=[s.name for s in ds] if ds is not None else None)
    if not cmp["names"]:
        return _err(f"{args.compare[0]} and {args.compare[1]} have no image in common")
    print(comparison_markdown(cmp))
    if args.output:
        sheet = comparison_sheet(cmp, ds, count=args.worst) if ds is not None else None
        if sheet is None:
            note("no side-by-side sheet: needs DATA and both reports made with --save-predictions")
        written = write_comparison(cmp, args.output, plots=not args.no_plots, sheet=sheet, log=note)
        note(f"comparison written to {written['html']}")
    return 0


def run(args) -> int:
    from pathlib import Path

    quiet = args.quiet

    def note(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr)

    if args.compare:
        return _compare(args, note)
    if not args.data:
        return _err("give the dataset folder DATA (or --compare REPORT_A REPORT_B)")
    if args.save_predictions and not args.output:
        return _err("--save-predictions writes into the report folder: add -o DIR")

    from nuggy.eval.datasets import DatasetError
    from nuggy.eval.evaluate import evaluate, folder_predict, pipeline_predict

    config = None
    if not args.predictions:
        try:
            config = config_from_args(args)  # bad settings first: cheaper than reading data
            from nuggy.api import preflight

            preflight(config)  # model names and files too
        except (ValueError, TypeError, FileNotFoundError) as exc:
            return _err(str(exc))
    try:
        ds, split = _open(args, note)
    except (DatasetError, ValueError) as exc:
        return _err(str(exc))
    if args.region is None:
        regions = ("whole", "unknown") if ds.has_trimaps else ("whole",)
    elif args.region == "both":
        regions = ("whole", "unknown")
    else:
        regions = (args.region,)

    if args.predictions:
        try:
            predict = folder_predict(args.predictions, ds)
        except DatasetError as exc:
            return _err(str(exc))
        source = {"kind": "predictions", "path": str(Path(args.predictions).resolve())}
    else:
        import dataclasses

        from nuggy.pipeline.pipeline import Pipeline
        from nuggy.sources import ModelSourceError

        pipe = Pipeline(config, accept_license=args.accept_license)
        try:
            pipe.load()  # load once: a missing model is one clear error
        except (ModelSourceError, FileNotFoundError, ValueError, RuntimeError) as exc:
            return _err(str(exc))
        predict = pipeline_predict(pipe)
        source = {"kind": "pipeline", "preset": args.preset, "config": dataclasses.asdict(config)}

    show = args.progress if args.progress is not None else (sys.stderr.isatty() and not quiet)
    out = Path(args.output) if args.output else None
    try:
        ev = evaluate(
            ds,
            predict,
            regions=regions,
            source=source,
            progress=show,
            keep_worst=args.worst if out else 0,
            rank_by=args.rank_by,
            save_predictions=out / "predictions" if (out and args.save_predictions) else None,
            split=split,
        )
    except ImportError as exc:
        return _err(f"the pipeline needs a module that is missing ({exc}); try --preset fast")
    except ValueError as exc:
        return _err(str(exc))

    from nuggy.eval.report import summary_markdown, write_report

    print(summary_markdown(ev))
    if out is not None:
        written = write_report(ev, out, plots=not args.no_plots, log=note)
        note(f"report written to {written['html']}")
        if "worst" in written:
            note(f"worst cases: {written['worst']}")
    if ev.failures:
        for name, msg in ev.failures:
            print(f"error: {msg if msg.startswith(name) else f'{name}: {msg}'}", file=sys.stderr)
        print(f"nuggy eval: {len(ev.images)} scored, {len(ev.failures)} failed", file=sys.stderr)
        return 1
    return 0
