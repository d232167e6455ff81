"""Evaluation reports: per-image CSV/JSON, Markdown summary, bar charts, worst-case contact
sheet and an ``index.html`` tying them together; and side-by-side comparison of two reports.

Report folder (:func:`write_report`)::

    scores.csv  scores.json  summary.md  worst.png  plots/<metric>.png  index.html
    [predictions/<name>.png]   (when the evaluation was asked to save them)

Comparison folder (:func:`write_comparison`)::

    compare.csv  compare.json  compare.md  plots/<metric>.png  [compare.png]  index.html

Plots need matplotlib (``pip install 'nuggy[eval]'``); without it they are skipped and the
report says so.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..io import atomic_write_bytes, save_image
from .evaluate import Evaluation, WorstCase, error_map, metric_info

__all__ = [
    "ReportError",
    "write_report",
    "summary_markdown",
    "load_report",
    "compare_reports",
    "comparison_markdown",
    "write_comparison",
    "comparison_sheet",
    "contact_sheet",
    "plot_metric",
    "markdown_table",
]

SCORES_JSON = "scores.json"
PLOTS_MISSING = "matplotlib is not installed: plots skipped (pip install 'nuggy[eval]' to get them)"


class ReportError(ValueError):
    """A report folder cannot be read; the message names it and the fix."""


# ---------------------------------------------------------------------------------------------
# formatting helpers


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "–"
    return format(v, fmt)


def _fmt_delta(value: float, fmt: str) -> str:
    s = _fmt(value, fmt)
    if s == "–":
        return s
    if float(s) == 0.0:  # no "-0.000" / "+0.000" for differences below the shown precision
        return _fmt(0.0, fmt)
    return s if s.startswith("-") else "+" + s


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool] | None = None
) -> str:
    """A Markdown table, columns padded so it also reads well as plain text."""
    rows = [list(map(str, r)) for r in rows]
    header = list(map(str, header))
    right = list(right) if right is not None else [False] + [True] * (len(header) - 1)
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]

    def line(cells):
        return (
            "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)) + " |"
        )

    sep = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right)) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def _html_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], classes: Iterable[Sequence[str]] | None = None
) -> str:
    esc = html.escape
    out = ["<table>", "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
    classes = list(classes) if classes is not None else None
    for i, r in enumerate(rows):
        cls = classes[i] if classes else [""] * len(r)
        out.append(
            "<tr>"
            + "".join(
                f'<td class="{c}">{esc(str(v))}</td>' if c else f"<td>{esc(str(v))}</td>"
                for v, c in zip(r, cls)
            )
            + "</tr>"
        )
    out.append("</table>")
    return "\n".join(out)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
th{background:#f3f3f3}.better{background:#e3f6e3}.worse{background:#fbe3e3}
img{max-width:100%}.plots img{width:420px;margin:4px;border:1px solid #ddd}
code{background:#f3f3f3;padding:1px 4px}"""


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _source_text(meta: dict) -> str:
    src = meta.get("source") or {}
    if src.get("kind") == "predictions":
        return f"predictions {src.get('path')}"
    if src.get("kind") == "pipeline":
        cfg = src.get("config") or {}
        model = cfg.get("model") or cfg.get("weights") or "?"
        return f"model {model}, preset {src.get('preset', '?')}"
    return "?"


# ---------------------------------------------------------------------------------------------
# single report


def _split_text(meta: dict) -> str:
    """``check half of 500`` / ``all 9`` / ``tune half of 500, first 2``; ``?`` for old reports."""
    sp = meta.get("split")
    if not isinstance(sp, dict):
        return "?"
    part, of, limit = sp.get("part", "?"), sp.get("of", "?"), sp.get("limit")
    text = f"all {of}" if part == "all" else f"{part} half of {of}"
    return text + (f", first {limit}" if limit else "")


def _protocol_failures(rows: list[dict]) -> int | None:
    """Images failing the protocol's rule, or ``None`` when the rows lack its metrics."""
    from .protocol import FAILURE_KEYS, count_failures

    if not rows or not all(all(k in r for k in FAILURE_KEYS) for r in rows):
        return None
    return count_failures(rows)


def _failures_text(rows: list[dict]) -> str | None:
    from .protocol import FAILURE_RULE

    k = _protocol_failures(rows)
    if k is None:
        return None
    return f"Failures ({FAILURE_RULE}): {k}/{len(rows)} ({100.0 * k / len(rows):.1f} %)"


def _stats(rows: list[dict], key: str) -> tuple[float, float, str, float]:
    """mean, median, worst image name, worst value of ``key`` over ``rows``."""
    vals = [(r["name"], float(r[key])) for r in rows if key in r and math.isfinite(float(r[key]))]
    if not vals:
        return float("nan"), float("nan"), "–", float("nan")
    arr = np.array([v for _, v in vals])
    hib = metric_info(key).higher_is_better
    i = int(np.argmin(arr) if hib else np.argmax(arr))
    return float(arr.mean()), float(np.median(arr)), vals[i][0], float(arr[i])


def summary_markdown(report: dict | Evaluation) -> str:
    """Markdown summary of a report: a header line and one table row per metric (mean,
    median, worst image). ``report`` is an :class:`Evaluation` or a loaded ``scores.json``."""
    data = _as_report(report)
    meta, rows = data["meta"], data["images"]
    keys = data["columns"]
    head = (
        f"**{Path(meta.get('dataset', '?')).name}** ({meta.get('layout', '?')}, "
        f"{meta.get('scored', len(rows))}/{meta.get('samples', len(rows))} images) — split: "
        f"{_split_text(meta)} — {_source_text(meta)} — wall {meta.get('wall_s', float('nan')):.1f} s"
    )
    table_rows = []
    for k in keys:
        info = metric_info(k)
        mean, median, worst_name, worst = _stats(rows, k)
        arrow = "↑" if info.higher_is_better else "↓"
        table_rows.append(
            [
                f"{k} {arrow}",
                _fmt(mean, info.fmt),
                _fmt(median, info.fmt),
                f"{_fmt(worst, info.fmt)} ({worst_name})",
            ]
        )
    text = head + "\n\n" + markdown_table(["metric", "mean", "median", "worst (image)"], table_rows)
    fails = _failures_text(rows)
    if fails:
        text += "\n\n" + fails
    if data.get("failures"):
        text += "\n\nFailed:\n" + "\n".join(f"- {f['name']}: {f['error']}" for f in data["failures"])
    return text + "\n"


def _as_report(report: dict | Evaluation) -> dict:
    """The JSON form of an evaluation (what ``scores.json`` holds)."""
    if isinstance(report, Evaluation):
        return {
            "meta": report.meta,
            "columns": report.columns(),
            "summary": report.summary(),
            "images": report.rows(),
            "failures": [{"name": n, "error": e} for n, e in report.failures],
        }
    return report


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _json_bytes(data: dict) -> bytes:
    def clean(v):  # NaN is not JSON: write null
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return (json.dumps(clean(data), indent=2, default=_json_default) + "\n").encode("utf-8")


def _csv_bytes(header: list[str], rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue().encode("utf-8")


def _have_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def plot_metric(
    key: str, names: Sequence[str], series: dict[str, Sequence[float]], path: str | os.PathLike
) -> Path:
    """Bar chart of one metric per image (grouped bars for several series, e.g. two reports),
    with each series' mean as a dashed line. Needs matplotlib (Agg canvas, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    info = metric_info(key)
    n = len(names)
    many = n > 60
    fig = Figure(figsize=(min(14.0, max(5.0, 0.45 * n + 2.0)) if not many else 10.0, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    k = len(series)
    width = 0.8 / max(k, 1)
    x = np.arange(n)
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    for j, (label, vals) in enumerate(series.items()):
        v = np.array([float(a) if a is not None else np.nan for a in vals], dtype=float)
        c = colours[j % len(colours)]
        ax.bar(x + (j - (k - 1) / 2) * width, v, width=width, color=c, label=label)
        if np.isfinite(v).any():
            ax.axhline(
                float(np.nanmean(v)),
                color=c,
                linestyle="--",
                linewidth=1,
                label=f"mean {label}: {format(float(np.nanmean(v)), info.fmt)}",
            )
    better = "higher is better" if info.higher_is_better else "lower is better"
    ax.set_title(f"{info.label} ({better})", fontsize=10)
    if many:
        ax.set_xticks([])
        ax.set_xlabel(f"{n} images")
    else:
        ax.set_xticks(x)
        ax.set_xticklabels(
            [str(s)[:28] for s in names],
            rotation=60 if n > 8 else 0,
            ha="right" if n > 8 else "center",
            fontsize=8,
        )
    ax.legend(fontsize=7, loc="best")
    ax.grid(axis="y", alpha=0.3)
    longest = max((len(str(s)) for s in names), default=0)
    bottom = min(0.5, 0.1 + 0.017 * longest) if n > 8 and not many else 0.14
    fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=bottom)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def contact_sheet(
    rows: Sequence[tuple[str, Sequence[np.ndarray]]],
    labels: Sequence[str],
    *,
    title: str | None = None,
    gap: int = 6,
) -> np.ndarray:
    """Tiles in a grid, one titled row per item: RGB uint8 H×W×3.

    Args:
        rows: (row title, tiles) per row; tiles are uint8 H×W (grey) or H×W×3, any size
            (laid out left to right at their own size).
        labels: caption above each column's tile.
        title: optional line at the top of the sheet.
    """
    from PIL import Image, ImageDraw

    font = _font(13)
    line_h = 18
    tiles_rgb = [
        [t if t.ndim == 3 else np.repeat(t[..., None], 3, axis=2) for t in tiles] for _, tiles in rows
    ]
    row_w = [sum(t.shape[1] for t in ts) + gap * (len(ts) + 1) for ts in tiles_rgb] or [200]
    row_h = [max((t.shape[0] for t in ts), default=0) + 2 * line_h + gap for ts in tiles_rgb]
    top = line_h + gap if title else 0
    width = max(row_w + [400])
    height = top + sum(row_h) + gap
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((gap, gap // 2), title, fill=(0, 0, 0), font=font)
    y = top
    for (row_title, _), ts, rh in zip(rows, tiles_rgb, row_h):
        draw.text((gap, y + 2), row_title, fill=(0, 0, 0), font=font)
        x = gap
        for t, label in zip(ts, labels):
            draw.text((x, y + line_h + 1), label, fill=(90, 90, 90), font=font)
            sheet.paste(Image.fromarray(np.ascontiguousarray(t)), (x, y + 2 * line_h))
            x += t.shape[1] + gap
        y += rh
    return np.asarray(sheet)


def _worst_sheet(worst: list[WorstCase], rank_by: str) -> np.ndarray:
    info = metric_info(rank_by)
    rows = [
        (
            f"{c.name}   {rank_by} = {format(c.score, info.fmt)}",
            [c.image, c.gt, c.pred, error_map(c.pred, c.gt)],
        )
        for c in worst
    ]
    return contact_sheet(
        rows,
        ["image", "ground truth", "prediction", "error (red: too much alpha, blue: too little)"],
        title=f"Worst {len(worst)} images by {info.label} ({'higher' if info.higher_is_better else 'lower'} is better)",
    )


def write_report(
    evaluation: Evaluation,
    out_dir: str | os.PathLike,
    *,
    plots: bool = True,
    log=None,
) -> dict[str, Path]:
    """Write the report folder (see the module doc); returns the paths written by kind.

    ``log`` (a callable taking a string) receives notes such as the plots being skipped.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = _as_report(evaluation)
    written: dict[str, Path] = {}
    header = ["name", "width", "height"] + data["columns"]
    written["csv"] = atomic_write_bytes(out / "scores.csv", _csv_bytes(header, data["images"]))
    written["json"] = atomic_write_bytes(out / SCORES_JSON, _json_bytes(data))
    md = summary_markdown(data)
    written["markdown"] = _write_text(out / "summary.md", md)
    if evaluation.worst:
        written["worst"] = save_image(
            _worst_sheet(evaluation.worst, data["meta"]["rank_by"]), out / "worst.png"
        )
    plot_paths: list[Path] = []
    plot_note = None
    if plots and data["images"]:
        if _have_matplotlib():
            names = [r["name"] for r in data["images"]]
            for k in data["columns"]:
                vals = [r.get(k) for r in data["images"]]
                plot_paths.append(
                    plot_metric(k, names, {_source_text(data["meta"]): vals}, out / "plots" / f"{k}.png")
                )
        else:
            plot_note = PLOTS_MISSING
            if log:
                log(PLOTS_MISSING)
    written["html"] = _write_text(
        out / "index.html", _report_html(data, md, written, plot_paths, plot_note, out)
    )
    return written


def _rel(path: Path, base: Path) -> str:
    return html.escape(os.path.relpath(path, base).replace(os.sep, "/"))


def _report_html(data, md, written, plot_paths, plot_note, out: Path) -> str:
    meta = data["meta"]
    parts = [
        f"<p>{html.escape(_source_text(meta))} on <code>{html.escape(str(meta.get('dataset')))}</code> "
        f"({html.escape(str(meta.get('layout')))}); {meta.get('scored')}/{meta.get('samples')} images scored "
        f"({html.escape(_split_text(meta))}); "
        f"regions: {html.escape(', '.join(meta.get('regions', [])))}; wall {meta.get('wall_s', 0):.1f} s; "
        f"started {html.escape(str(meta.get('started')))}.</p>",
        f"<p>Files: <a href='scores.csv'>scores.csv</a> · <a href='{SCORES_JSON}'>{SCORES_JSON}</a> · "
        "<a href='summary.md'>summary.md</a></p>",
        "<h2>Summary</h2>",
    ]
    rows = []
    for k in data["columns"]:
        info = metric_info(k)
        mean, median, worst_name, worst = _stats(data["images"], k)
        rows.append(
            [
                f"{info.label} {'↑' if info.higher_is_better else '↓'}",
                _fmt(mean, info.fmt),
                _fmt(median, info.fmt),
                f"{_fmt(worst, info.fmt)} ({worst_name})",
            ]
        )
    parts.append(_html_table(["metric", "mean", "median", "worst (image)"], rows))
    fails = _failures_text(data["images"])
    if fails:
        parts.append(f"<p>{html.escape(fails)}</p>")
    if data.get("failures"):
        parts.append(
            "<h2>Failed</h2><ul>"
            + "".join(
                f"<li>{html.escape(f['name'])}: {html.escape(f['error'])}</li>" for f in data["failures"]
            )
            + "</ul>"
        )
    if "worst" in written:
        parts.append(f"<h2>Worst cases</h2><img src='{_rel(written['worst'], out)}' alt='worst cases'>")
    parts.append("<h2>Per metric</h2>")
    if plot_note:
        parts.append(f"<p>{html.escape(plot_note)}</p>")
    parts.append(
        "<div class='plots'>"
        + "".join(f"<img src='{_rel(p, out)}' alt='{html.escape(p.stem)}'>" for p in plot_paths)
        + "</div>"
    )
    parts.append("<h2>Per image</h2>")
    cols = data["columns"]
    parts.append(
        _html_table(
            ["image", "size"] + cols,
            [
                [r["name"], f"{r['width']}×{r['height']}"]
                + [_fmt(r.get(k), metric_info(k).fmt) for k in cols]
                for r in data["images"]
            ],
        )
    )
    parts.append(
        f"<details><summary>Run details</summary><pre>{html.escape(json.dumps(meta, indent=2, default=str))}</pre></details>"
    )
    return _page(f"Nuggy evaluation — {Path(str(meta.get('dataset', '?'))).name}", "\n".join(parts))


# ---------------------------------------------------------------------------------------------
# reading and comparing reports


def load_report(path: str | os.PathLike) -> dict:
    """A report written by :func:`write_report` (its folder or its ``scores.json``).

    Raises:
        ReportError: no such report, or not one of ours.
    """
    p = Path(path).expanduser()
    f = p / SCORES_JSON if p.is_dir() else p
    if not f.is_file():
        raise ReportError(
            f"{p}: not an evaluation report (no {SCORES_JSON}); write one with 'nuggy eval DATA ... -o DIR'"
        )
    try:
        data = json.loads(f.read_text())
        data["meta"], data["images"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"{f}: not a readable evaluation report ({exc}); re-run 'nuggy eval'") from None
    data.setdefault("failures", [])
    if "columns" not in data:
        data["columns"] = (
            [k for k in data["images"][0] if k not in ("name", "width", "height")] if data["images"] else []
        )
    for r in data["images"]:  # null (NaN) back to float
        for k in data["columns"]:
            if k in r and r[k] is None:
                r[k] = float("nan")
    data["path"] = str(f.parent)
    return data


def _label(report: dict, fallback: str) -> str:
    return Path(report.get("path", fallback)).name or fallback


def compare_reports(a: dict, b: dict, *, names: Iterable[str] | None = None) -> dict:
    """Side-by-side comparison of two loaded reports over the images both scored.

    Args:
        a, b: from :func:`load_report`.
        names: restrict to these images (e.g. the samples of a dataset).

    Returns:
        ``{"a", "b"`` (labels and paths), ``"columns"``, ``"names"`` (common images),
        ``"only_a"``, ``"only_b"``, ``"summary"`` ({metric: {a, b, delta, better}}),
        ``"failures"`` (protocol failures among the common images: {a, b, delta, n}, or
        ``None`` without ``sad_whole`` and ``iou``) and ``"images"`` ([{name, <metric>: {a, b,
        delta}}])}. ``delta = b − a``; ``better`` is ``"a"``, ``"b"`` or ``"="`` by the metric's
        direction. ``a`` and ``b`` also carry each report's ``split`` (``meta["split"]``).
    """
    ra = {r["name"]: r for r in a["images"]}
    rb = {r["name"]: r for r in b["images"]}
    common = [n for n in ra if n in rb]
    if names is not None:
        keep = set(names)
        common = [n for n in common if n in keep]
    cols = [k for k in a["columns"] if k in b["columns"]]
    summary = {}
    for k in cols:
        va = np.array([float(ra[n][k]) for n in common], dtype=float) if common else np.array([])
        vb = np.array([float(rb[n][k]) for n in common], dtype=float) if common else np.array([])
        ma = float(np.nanmean(va)) if va.size and np.isfinite(va).any() else float("nan")
        mb = float(np.nanmean(vb)) if vb.size and np.isfinite(vb).any() else float("nan")
        summary[k] = {"a": ma, "b": mb, "delta": mb - ma, "better": _better(k, ma, mb)}
    images = []
    for n in common:
        row: dict = {"name": n}
        for k in cols:
            x, y = float(ra[n][k]), float(rb[n][k])
            row[k] = {"a": x, "b": y, "delta": y - x}
        images.append(row)
    la, lb = _label(a, "A"), _label(b, "B")
    if la == lb:
        la, lb = f"A:{la}", f"B:{lb}"
    fa = _protocol_failures([ra[n] for n in common])
    fb = _protocol_failures([rb[n] for n in common])
    fails = None if fa is None or fb is None else {"a": fa, "b": fb, "delta": fb - fa, "n": len(common)}
    return {
        "a": {
            "label": la,
            "path": a.get("path"),
            "source": _source_text(a["meta"]),
            "split": a["meta"].get("split"),
        },
        "b": {
            "label": lb,
            "path": b.get("path"),
            "source": _source_text(b["meta"]),
            "split": b["meta"].get("split"),
        },
        "columns": cols,
        "names": common,
        "failures": fails,
        "only_a": sorted(set(ra) - set(rb)),
        "only_b": sorted(set(rb) - set(ra)),
        "summary": summary,
        "images": images,
    }


def _better(key: str, a: float, b: float) -> str:
    if not (math.isfinite(a) and math.isfinite(b)):
        return "?"
    fmt = metric_info(key).fmt
    if format(a, fmt) == format(b, fmt):
        return "="
    b_higher = b > a
    return "b" if b_higher == metric_info(key).higher_is_better else "a"


#: metrics shown per image in the terminal comparison (all are in the files)
KEY_METRICS = ("sad_whole", "mse_whole", "sad_unknown", "grad_unknown", "iou", "max_f", "mae", "hce")


def comparison_markdown(cmp: dict, *, per_image: Sequence[str] | None = None) -> str:
    """Mean table (A, B, Δ = B − A, which is better) and a per-image Δ table for
    ``per_image`` metrics (default: the key metrics present)."""
    la, lb = cmp["a"]["label"], cmp["b"]["label"]
    head = (
        f"**A** = {la} ({cmp['a']['source']}), **B** = {lb} ({cmp['b']['source']}); "
        f"{len(cmp['names'])} common images; Δ = B − A"
    )
    rows = []
    for k in cmp["columns"]:
        s = cmp["summary"][k]
        info = metric_info(k)
        better = {"a": f"A ({la})", "b": f"B ({lb})", "=": "=", "?": "?"}[s["better"]]
        rows.append(
            [
                f"{k} {'↑' if info.higher_is_better else '↓'}",
                _fmt(s["a"], info.fmt),
                _fmt(s["b"], info.fmt),
                _fmt_delta(s["delta"], info.fmt),
                better,
            ]
        )
    text = head + "\n\n" + markdown_table(["metric", "A mean", "B mean", "Δ mean", "better"], rows)
    text += _comparison_notes(cmp)
    keys = [k for k in (per_image or KEY_METRICS) if k in cmp["columns"]]
    if keys and cmp["images"]:
        prow = []
        for r in cmp["images"]:
            prow.append([r["name"]] + [_fmt_delta(r[k]["delta"], metric_info(k).fmt) for k in keys])
        text += "\n\nPer-image Δ (B − A):\n\n" + markdown_table(["image"] + [f"Δ {k}" for k in keys], prow)
    for side in ("only_a", "only_b"):
        if cmp[side]:
            text += f"\n\nOnly in {'A' if side == 'only_a' else 'B'} (not compared): {', '.join(cmp[side])}"
    return text + "\n"


def _comparison_notes(cmp: dict) -> str:
    """Failure counts and a split mismatch, as lines to append to the mean table ('' if none)."""
    from .protocol import FAILURE_RULE

    out = ""
    f = cmp.get("failures")
    if f:
        out += (
            f"\n\nFailures ({FAILURE_RULE}) among the {f['n']} common images: "
            f"A {f['a']}, B {f['b']} (Δ {f['delta']:+d})"
        )
    sa, sb = (cmp[s].get("split") for s in ("a", "b"))
    pa, pb = ((s or {}).get("part", "?") for s in (sa, sb))
    if pa != pb:
        out += f"\n\nNote: the reports scored different splits (A: {pa}, B: {pb})."
    return out


def write_comparison(
    cmp: dict,
    out_dir: str | os.PathLike,
    *,
    plots: bool = True,
    sheet: np.ndarray | None = None,
    log=None,
) -> dict[str, Path]:
    """Write compare.csv (per image: A, B, Δ of every metric), compare.json, compare.md, grouped
    bar charts, the optional side-by-side ``sheet`` (compare.png) and index.html."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    header = ["name"] + [f"{k}_{s}" for k in cmp["columns"] for s in ("a", "b", "delta")]
    flat = [
        {"name": r["name"], **{f"{k}_{s}": r[k][s] for k in cmp["columns"] for s in ("a", "b", "delta")}}
        for r in cmp["images"]
    ]
    written["csv"] = atomic_write_bytes(out / "compare.csv", _csv_bytes(header, flat))
    written["json"] = atomic_write_bytes(out / "compare.json", _json_bytes(cmp))
    md = comparison_markdown(cmp)
    written["markdown"] = _write_text(out / "compare.md", md)
    if sheet is not None:
        written["sheet"] = save_image(sheet, out / "compare.png")
    plot_paths: list[Path] = []
    note = None
    if plots and cmp["images"]:
        if _have_matplotlib():
            names = cmp["names"]
            for k in cmp["columns"]:
                series = {
                    cmp["a"]["label"]: [r[k]["a"] for r in cmp["images"]],
                    cmp["b"]["label"]: [r[k]["b"] for r in cmp["images"]],
                }
                plot_paths.append(plot_metric(k, names, series, out / "plots" / f"{k}.png"))
        else:
            note = PLOTS_MISSING
            if log:
                log(PLOTS_MISSING)
    la, lb = cmp["a"]["label"], cmp["b"]["label"]
    parts = [
        f"<p><b>A</b> = {html.escape(la)} ({html.escape(cmp['a']['source'])}), "
        f"<b>B</b> = {html.escape(lb)} ({html.escape(cmp['b']['source'])}); "
        f"{len(cmp['names'])} common images; Δ = B − A.</p>",
        "<p>Files: <a href='compare.csv'>compare.csv</a> · <a href='compare.json'>compare.json</a> · "
        "<a href='compare.md'>compare.md</a></p>",
        "<h2>Means</h2>",
    ]
    rows, classes = [], []
    for k in cmp["columns"]:
        s = cmp["summary"][k]
        info = metric_info(k)
        rows.append(
            [
                f"{info.label} {'↑' if info.higher_is_better else '↓'}",
                _fmt(s["a"], info.fmt),
                _fmt(s["b"], info.fmt),
                _fmt_delta(s["delta"], info.fmt),
                s["better"].upper(),
            ]
        )
        cls = {"b": "better", "a": "worse"}.get(s["better"], "")
        classes.append(["", "", "", cls, cls])
    parts.append(_html_table(["metric", "A mean", "B mean", "Δ mean", "better"], rows, classes))
    notes = _comparison_notes(cmp).strip()
    if notes:
        parts.extend(f"<p>{html.escape(n)}</p>" for n in notes.split("\n\n"))
    if "sheet" in written:
        parts.append(
            f"<h2>Largest differences</h2><img src='{_rel(written['sheet'], out)}' alt='comparison'>"
        )
    parts.append("<h2>Per metric</h2>")
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    parts.append(
        "<div class='plots'>"
        + "".join(f"<img src='{_rel(p, out)}' alt='{html.escape(p.stem)}'>" for p in plot_paths)
        + "</div>"
    )
    parts.append("<h2>Per image Δ (B − A)</h2>")
    cols = cmp["columns"]
    prow, pcls = [], []
    for r in cmp["images"]:
        prow.append([r["name"]] + [_fmt_delta(r[k]["delta"], metric_info(k).fmt) for k in cols])
        pcls.append(
            [""] + [{"b": "better", "a": "worse"}.get(_better(k, r[k]["a"], r[k]["b"]), "") for k in cols]
        )
    parts.append(_html_table(["image"] + cols, prow, pcls))
    written["html"] = _write_text(
        out / "index.html", _page(f"Nuggy comparison — {la} vs {lb}", "\n".join(parts))
    )
    return written


def comparison_sheet(
    cmp: dict,
    dataset,
    *,
    key: str | None = None,
    count: int = 6,
    thumb_height: int = 160,
) -> np.ndarray | None:
    """Contact sheet of the ``count`` images whose ``key`` changed most between A and B:
    image | ground truth | A | B | A error | B error. Needs both reports' ``predictions/``
    folders (``nuggy eval --save-predictions``); ``None`` when either is missing.

    Args:
        cmp: from :func:`compare_reports`.
        dataset: the :class:`~nuggy.eval.datasets.Dataset` both reports scored.
        key: metric ranking the differences; default SAD (whole), else the first metric.
    """
    from .datasets import load_sample, read_matte
    from .evaluate import _thumb, _u8, default_rank_metric

    dirs = [Path(cmp[s]["path"] or "") / "predictions" for s in ("a", "b")]
    if not all(d.is_dir() for d in dirs) or not cmp["images"]:
        return None
    key = key or default_rank_metric(cmp["columns"])
    by_name = {s.name: s for s in dataset}
    ranked = sorted(
        (r for r in cmp["images"] if r["name"] in by_name and math.isfinite(r[key]["delta"])),
        key=lambda r: -abs(r[key]["delta"]),
    )[:count]
    info = metric_info(key)
    rows = []
    for r in ranked:
        image, gt, _ = load_sample(by_name[r["name"]])
        preds = []
        for d in dirs:
            f = d / f"{r['name']}.png"
            if not f.is_file():
                return None
            preds.append(_thumb(_u8(read_matte(f)), thumb_height))
        g = _thumb(_u8(gt), thumb_height)
        rows.append(
            (
                f"{r['name']}   {key}: A {format(r[key]['a'], info.fmt)}  B {format(r[key]['b'], info.fmt)}"
                f"  delta {_fmt_delta(r[key]['delta'], info.fmt)}",
                [
                    _thumb(image, thumb_height),
                    g,
                    preds[0],
                    preds[1],
                    error_map(preds[0], g),
                    error_map(preds[1], g),
                ],
            )
        )
    la, lb = cmp["a"]["label"], cmp["b"]["label"]
    return contact_sheet(
        rows,
        ["image", "ground truth", f"A {la}", f"B {lb}", "A error", "B error"],
        title=f"Largest changes in {info.label} (red: too much alpha, blue: too little)",
    )
