"""Quality benchmark of the automatic pipeline (no trimap): the engine of ``benchmarks/quality.py``.

Rows are configurations: every model string × preset (``preset(p, model=m)``; a ``+``-joined
model string is a multi-model configuration), optionally each model's stage ladder
(:func:`plan_rows` with ``stages``), and rembg on the same model file (:func:`rembg_rows`).
Every row runs over one half (``tune`` / ``check`` / ``all``, :mod:`nuggy.eval.split`) of every
dataset through :func:`nuggy.eval.evaluate.evaluate`, scored per image by
:func:`quality_scores` (SAD / MSE / Grad / Conn over the whole image, IoU at 0.5, maxF, MAE);
summaries and failures follow :mod:`nuggy.eval.protocol`.

Speed: segmentation is the expensive stage and is the same for every preset of a model, so
each predictor of a pipeline is wrapped in a :class:`CachedPredictor` that keeps its output per
image on disk (float16 ``.npy``): the second preset of a model runs no inference. The other
stages run for every row. Foreground colour estimation is off in every row: it does not change
alpha, and only alpha is scored.

Result of :func:`run_quality` (written as JSON, ``"format": "nuggy-quality/1"``)::

    command, argv, git {commit, dirty}, started, wall_s, host, nuggy, split, limit,
    failure_rule, keys,
    datasets {name: {root, layout, binary_gt, samples, split_size, names, errors}},
    rows [{label, display, kind, model, preset, config | command}],
    skipped [{row, dataset, reason}],
    runs [{dataset, row, meta, columns, images, failures, summary, protocol}],
        (``failures``: images that could not be scored; ``protocol``: nuggy.eval.protocol
        .summarise of the scored ones plus ``unscored``, their count)
    overall {row: nuggy.eval.protocol.overall(...)},
    inference {model: {calls, hits, misses, seconds}}

Each ``runs`` entry has the shape of a ``nuggy eval`` ``scores.json`` (``meta`` with ``split``,
``columns``, ``images``, ``failures``). Comparing two benchmark files (:func:`compare_results`)
pairs their runs by (dataset, row) and hands each pair to
:func:`nuggy.eval.report.compare_reports`, the function behind ``nuggy eval --compare A/ B/``
(which compares two report folders of one dataset and one configuration each); on top it
tabulates Δ mean, Δ median and the failure counts per dataset and row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import protocol

__all__ = [
    "FORMAT",
    "KEYS",
    "MATTING_KEYS",
    "BINARY_KEYS",
    "REMBG_SAME_FILE",
    "Row",
    "CachedPredictor",
    "cache_predictors",
    "quality_scores",
    "is_binary",
    "discover_datasets",
    "prepare_dataset",
    "plan_rows",
    "rembg_rows",
    "run_quality",
    "dataset_table",
    "overall_table",
    "result_markdown",
    "write_result",
    "load_result",
    "compare_results",
    "compare_markdown",
    "git_info",
]

FORMAT = "nuggy-quality/1"
MATTING_KEYS = ("sad_whole", "mse_whole", "grad_whole", "conn_whole")
#: Shown only for datasets whose ground truth is binary (salient-object sets).
BINARY_KEYS = ("max_f", "mae")
KEYS = MATTING_KEYS + ("iou",) + BINARY_KEYS

#: Registry models whose file is byte-identical to the one rembg uses under the same name (rembg
#: re-downloads a file that does not match its own checksum; Nuggy's ``isnet`` is the fp16
#: export, rembg's ``isnet-general-use`` is fp32, so there is no like-for-like comparison).
REMBG_SAME_FILE = ("u2netp", "u2net")

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# scoring


def quality_scores(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> dict[str, float]:
    """The benchmark's per-image metrics (:data:`KEYS`) of one prediction.

    Args:
        pred, gt: float32 H×W in [0, 1] (gt may be soft; maxF and MAE binarise it at 0.5).
        trimap: ignored (the benchmark scores the whole image); accepted to fit
            :func:`nuggy.eval.evaluate.evaluate`'s ``score``.
    """
    from .metrics import iou, mae, matting_metrics, max_f

    out = {f"{k}_whole": float(v) for k, v in matting_metrics(pred, gt).items()}
    out["iou"] = iou(pred, gt, threshold=protocol.IOU_THRESHOLD)
    out["max_f"] = max_f(pred, gt)
    out["mae"] = mae(pred, gt)
    return out


def is_binary(gt: np.ndarray) -> bool:
    """True when every value of a float ground truth (H×W in [0, 1]) is exactly 0 or 1."""
    return bool(((gt == 0.0) | (gt == 1.0)).all())


# ---------------------------------------------------------------------------------------------
# probability cache


class CachedPredictor:
    """A segmentation predictor whose outputs are kept on disk, one float16 ``.npy`` per input.

    Same interface as the predictor it wraps (``.spec``, ``.predict(image, *, flip)``; other
    attributes are passed through). The key is the spec's name, sha256, input size, mean, std,
    activation and output index, the wrapped class, ``flip`` and the SHA-1 of the image (shape
    and bytes). A spec without a sha256 (a user file) is not cached: the key would not say which
    file made the map.

    Every call returns the float16-rounded map as float32, on a miss too, so a result does not
    depend on whether the cache was warm (the rounding is below 5e-4, an eighth of an 8-bit step).

    Args:
        inner: the predictor (``predict(image uint8 H×W×3, *, flip) -> float32 h×w``).
        cache_dir: folder of the cache (created on the first write).
        stats: a dict updated with ``calls``, ``hits``, ``misses`` and ``seconds`` (time in
            ``inner.predict``), shared between wrappers to count across pipelines.
    """

    def __init__(self, inner, cache_dir: str | os.PathLike, stats: dict | None = None) -> None:
        self.inner = inner
        self.cache_dir = Path(cache_dir)
        self.stats = stats if stats is not None else {}
        for k in ("calls", "hits", "misses", "seconds"):
            self.stats.setdefault(k, 0)

    @property
    def spec(self):
        return self.inner.spec

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet (copy / unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def key(self, image: np.ndarray, flip: bool) -> str | None:
        """Hex digest naming the cache file for ``image`` and ``flip``; ``None`` = uncacheable."""
        spec = self.inner.spec
        if not getattr(spec, "sha256", ""):
            return None
        image = np.ascontiguousarray(image)
        digest = hashlib.sha1(f"{image.shape}|{image.dtype}|".encode())
        digest.update(image.tobytes())
        parts = {
            "name": spec.name,
            "sha256": spec.sha256,
            "input_size": list(spec.input_size),
            "mean": [float(m) for m in spec.mean],
            "std": [float(s) for s in spec.std],
            "activation": getattr(spec, "activation", None),
            "output_index": getattr(spec, "output_index", None),
            "predictor": type(self.inner).__name__,
            "flip": bool(flip),
            "image": digest.hexdigest(),
        }
        return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.cache_dir / str(self.inner.spec.name) / key[:2] / f"{key}.npy"

    def predict(self, image: np.ndarray, *, flip: bool = False) -> np.ndarray:
        """The wrapped predictor's float32 h×w map for ``image``, from the cache when present."""
        self.stats["calls"] += 1
        key = self.key(image, flip)
        if key is not None:
            f = self.path(key)
            try:
                prob = np.load(f, allow_pickle=False)
            except (OSError, ValueError):
                prob = None
            if prob is not None and prob.dtype == np.float16 and prob.ndim == 2:
                self.stats["hits"] += 1
                return prob.astype(np.float32)
        t0 = time.perf_counter()
        prob = np.asarray(self.inner.predict(image, flip=flip), dtype=np.float32)
        self.stats["seconds"] += time.perf_counter() - t0
        self.stats["misses"] += 1
        half = prob.astype(np.float16)
        if key is not None:
            from ..io import atomic_path

            with atomic_path(self.path(key), fsync=False) as tmp, open(tmp, "wb") as fh:
                np.save(fh, half, allow_pickle=False)  # a cache: no fsync needed
        return half.astype(np.float32)


def cache_predictors(pipe, cache_dir: str | os.PathLike, stats: dict | None = None) -> list:
    """Wrap every predictor of ``pipe`` (a Pipeline) in a :class:`CachedPredictor`, in place.

    Loads the model(s) if they are not loaded yet. ``stats``: ``{model name: stats dict}``,
    filled per model. Returns ``pipe.predictors``.
    """
    preds = pipe.predictors
    for i, p in enumerate(preds):
        if not isinstance(p, CachedPredictor):
            name = str(p.spec.name)
            per = stats.setdefault(name, {}) if stats is not None else None
            preds[i] = CachedPredictor(p, cache_dir, per)
    return preds


# ---------------------------------------------------------------------------------------------
# datasets


def discover_datasets(root: str | os.PathLike) -> list[Path]:
    """Every sub-folder of ``root`` that :func:`nuggy.eval.datasets.open_dataset` can read."""
    from .datasets import DatasetError, open_dataset

    root = Path(root)
    found = []
    if not root.is_dir():
        return found
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        try:
            open_dataset(d)
        except DatasetError:
            continue
        found.append(d)
    return found


@dataclass
class PreparedSet:
    """One dataset restricted to its split: what every row is run on."""

    name: str
    dataset: object  # nuggy.eval.datasets.Dataset
    split: dict
    binary_gt: bool
    info: dict


def prepare_dataset(root: str | os.PathLike, split: str, limit: int | None = None) -> PreparedSet:
    """Open ``root``, keep the ``split`` half (then its first ``limit``), check the files and
    read every ground truth once to tell whether it is binary.

    Raises:
        DatasetError: unreadable dataset (size mismatches and bad files are listed).
        ValueError: unknown split.
    """
    from .datasets import DatasetError, check_dataset, open_dataset, read_matte
    from .split import split_names

    ds = open_dataset(root)
    total = len(ds)
    ds = ds.subset(split_names([s.name for s in ds], split))
    size = len(ds)
    if limit is not None:
        ds.samples = ds.samples[:limit]
    check_dataset(ds)
    binary, errors = True, []
    for s in ds:
        try:
            binary = binary and is_binary(read_matte(s.alpha))
        except DatasetError as exc:
            errors.append(str(exc))
    name = Path(root).name
    info = {
        "root": str(Path(root).resolve()),
        "layout": ds.layout,
        "binary_gt": binary and not errors,
        "samples": total,
        "split_size": size,
        "names": [s.name for s in ds],
        "errors": errors,
    }
    return PreparedSet(name, ds, {"part": split, "of": total, "limit": limit}, info["binary_gt"], info)


# ---------------------------------------------------------------------------------------------
# rows


@dataclass
class Row:
    """One configuration of the benchmark.

    Attributes:
        label: stable key (``u2netp · default``), used to match rows between runs.
        kind: ``pipeline`` or ``rembg``.
        model: the model string.
        preset: the preset name, or ``None`` for a stage step or rembg.
        config: the PipelineConfig (pipeline rows).
        command: rembg's arguments after ``p`` (rembg rows), e.g. ``["-m", "u2netp", "-a"]``.
        aliases: other names of the same configuration (a stage step equal to a preset).
    """

    label: str
    kind: str
    model: str
    preset: str | None = None
    config: object = None
    command: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)

    @property
    def display(self) -> str:
        return self.label + (f" (= {', '.join(self.aliases)})" if self.aliases else "")

    def record(self) -> dict:
        out = {
            "label": self.label,
            "display": self.display,
            "kind": self.kind,
            "model": self.model,
            "preset": self.preset,
        }
        if self.config is not None:
            out["config"] = dataclasses.asdict(self.config)
        if self.command:
            out["command"] = list(self.command)
        return out


def _ladder(model: str) -> list[tuple[str, object, bool]]:
    """The stage ladder of ``model``: (step, config, is a preset)."""
    from ..pipeline.config import PRESETS, preset

    fast = preset("fast", model=model)
    steps = [
        ("fast", fast, True),
        ("+ flip TTA", fast.replace(tta=True), False),
        ("+ interior fill", fast.replace(tta=True, interior=True), False),
        ("+ guided filter", fast.replace(tta=True, interior=True, refine=True), False),
        ("+ island removal", fast.replace(tta=True, interior=True, refine=True, islands=True), False),
        ("default", preset("default", model=model), True),
    ]
    if "best" in PRESETS:
        steps.append(("best", preset("best", model=model), True))
    return steps


def plan_rows(
    models: Sequence[str], presets: Sequence[str], *, stages: bool = False
) -> tuple[list[Row], list[dict]]:
    """Pipeline rows for every model × preset (and the stage ladder with ``stages``).

    Foreground estimation is switched off in every configuration (alpha does not depend on it).
    Steps with the same configuration as an earlier row of the model become its aliases; a
    preset's name wins as the label.

    Returns:
        (rows, skipped) — ``skipped``: ``{"row", "reason"}`` for model strings the
        configuration rejects.

    Raises:
        ValueError: an unknown preset name.
    """
    from ..pipeline.config import PRESETS, preset

    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise ValueError(f"unknown preset(s) {', '.join(unknown)}; choose from: {', '.join(PRESETS)}")
    rows: list[Row] = []
    skipped: list[dict] = []
    for model in models:
        try:
            steps = _ladder(model) if stages else []
            named = {s for s, _, is_preset in steps if is_preset}
            steps += [(p, preset(p, model=model), True) for p in presets if p not in named]
        except (ValueError, TypeError, KeyError) as exc:
            skipped.append(
                {
                    "row": f"{model} · {','.join(presets)}",
                    "dataset": None,
                    "reason": f"configuration rejected: {exc}",
                }
            )
            continue
        mine: list[Row] = []
        for step, cfg, is_preset in steps:
            cfg = cfg.replace(foreground=False)
            label = f"{model} · {step}"
            same = next((r for r in mine if r.config == cfg), None)
            if same is None:
                mine.append(Row(label, "pipeline", model, step if is_preset else None, cfg))
            elif is_preset and same.preset is None:
                same.aliases.append(same.label.split(" · ", 1)[1])
                same.label, same.preset = label, step
            else:
                same.aliases.append(step)
        rows.extend(mine)
    return rows, skipped


def rembg_rows(models: Sequence[str]) -> tuple[list[Row], list[str]]:
    """``rembg -m MODEL`` and ``rembg -m MODEL -a`` for each model rembg has the same file of.

    Returns:
        (rows, notes) — a note for each model left out and why.
    """
    rows, notes = [], []
    for m in dict.fromkeys(models):
        if m in REMBG_SAME_FILE:
            rows.append(Row(f"rembg -m {m}", "rembg", m, command=["-m", m]))
            rows.append(Row(f"rembg -m {m} -a", "rembg", m, command=["-m", m, "-a"]))
        else:
            notes.append(
                f"no rembg rows for {m}: rembg has no model file identical to it "
                f"(only {', '.join(REMBG_SAME_FILE)})"
            )
    return rows, notes


# ---------------------------------------------------------------------------------------------
# running


def _rembg_version(rembg: str) -> str | None:
    py = Path(rembg).resolve().parent / "python"
    if not py.exists():
        return None
    try:
        out = subprocess.run(
            [str(py), "-c", "import importlib.metadata as m; print(m.version('rembg'))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _run_rembg(rembg: str, row: Row, model_file: Path, ps: PreparedSet, out: Path) -> float:
    """``rembg p`` over the set's images into ``out``; seconds of wall time."""
    tmp = out.parent
    inp = tmp / "in"
    inp.mkdir()
    for s in ps.dataset:
        (inp / s.image.name).symlink_to(s.image.resolve())
    home = tmp / "u2net"
    home.mkdir()
    target = home / f"{row.model}.onnx"
    try:
        target.symlink_to(Path(model_file).resolve())
    except OSError:
        shutil.copy(model_file, target)
    env = dict(os.environ, U2NET_HOME=str(home), OMP_NUM_THREADS=str(os.cpu_count() or 1))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [rembg, "p", *row.command, str(inp), str(out)], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"rembg exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return wall


def _rembg_predict(folder: Path):
    """A Predict reading rembg's cut-out ``folder/<name>.png`` (its alpha channel)."""
    from PIL import Image

    from .datasets import DatasetError

    def predict(sample, image):
        f = folder / f"{sample.image.stem}.png"
        if not f.is_file():
            raise DatasetError(f"{sample.name}: rembg wrote no output")
        with Image.open(f) as im:
            a = np.asarray(im.convert("RGBA"))[..., 3].astype(np.float32) / 255.0
        if a.shape != image.shape[:2]:
            raise DatasetError(
                f"{sample.name}: rembg's output is {a.shape[1]}×{a.shape[0]}, "
                f"the image {image.shape[1]}×{image.shape[0]}"
            )
        return a, {}

    return predict


def _run_record(ps: PreparedSet, row: Row, ev) -> dict:
    rows = ev.rows()
    return {
        "dataset": ps.name,
        "row": row.label,
        "meta": ev.meta,
        "columns": ev.columns(),
        "images": rows,
        "failures": [{"name": n, "error": e} for n, e in ev.failures],
        "summary": ev.summary(),
        "protocol": {**protocol.summarise(rows, KEYS), "unscored": len(ev.failures)},
    }


def run_quality(
    rows: Sequence[Row],
    sets: Sequence[PreparedSet],
    *,
    cache_dir: str | os.PathLike,
    accept_license: str | None = None,
    rembg: str | None = None,
    progress: bool = False,
    log: Log = _quiet,
    skipped: Sequence[dict] = (),
) -> dict:
    """Run every row on every prepared set; the result described in the module doc (without
    ``command``, ``argv`` and ``git``, which the caller adds).

    Rows the pipeline cannot load or run are skipped with a reason (logged and kept in
    ``skipped``); so are rembg rows without ``rembg``.
    """
    from .evaluate import evaluate, pipeline_predict

    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    skipped = [dict(s) for s in skipped]
    runs: list[dict] = []
    inference: dict[str, dict] = {}
    total = len(rows) * len(sets)
    done = 0

    def finished(row: Row, ps: PreparedSet, run: dict, secs: float) -> None:
        nonlocal done
        done += 1
        p = run["protocol"]
        fails = "–" if p["failures"] is None else f"{p['failures']}/{p['images']}"
        log(
            f"[{done}/{total}] {row.display} on {ps.name}: {p['images']} images in {secs:.1f} s, "
            f"failures {fails}"
        )

    def skip(row: Row, ps: PreparedSet | None, reason: str) -> None:
        nonlocal done
        n = 1 if ps is not None else len(sets)
        done += n
        skipped.append({"row": row.label, "dataset": ps.name if ps else None, "reason": reason})
        log(f"[{done}/{total}] skipped {row.label}{f' on {ps.name}' if ps else ''}: {reason}")

    rembg_version = _rembg_version(rembg) if rembg else None
    for row in rows:
        if row.kind == "rembg":
            if not rembg:
                skip(row, None, "no rembg executable given (--rembg PATH)")
                continue
            from ..sources import ensure_model

            try:
                model_file = ensure_model(row.model, accept_license=accept_license)
            except Exception as exc:  # noqa: BLE001 - any failure to locate the file skips the row
                skip(row, None, f"{type(exc).__name__}: {exc}")
                continue
            for ps in sets:
                t0 = time.perf_counter()
                with tempfile.TemporaryDirectory(prefix="nuggy-rembg-") as tmp:
                    out = Path(tmp) / "out"
                    try:
                        wall = _run_rembg(rembg, row, model_file, ps, out)
                    except (RuntimeError, OSError) as exc:
                        skip(row, ps, str(exc))
                        continue
                    source = {
                        "kind": "rembg",
                        "label": row.label,
                        "command": ["rembg", "p", *row.command],
                        "rembg": rembg_version,
                        "model_file": str(model_file),
                        "wall_s": wall,
                    }
                    ev = evaluate(
                        ps.dataset,
                        _rembg_predict(out),
                        regions=("whole",),
                        source=source,
                        progress=progress,
                        keep_worst=0,
                        split=ps.split,
                        score=quality_scores,
                    )
                run = _run_record(ps, row, ev)
                run["meta"]["seconds_per_image"] = wall / max(1, len(ps.dataset))
                runs.append(run)
                finished(row, ps, run, time.perf_counter() - t0)
            continue

        from ..pipeline.pipeline import Pipeline

        try:
            pipe = Pipeline(row.config, accept_license=accept_license)
            cache_predictors(pipe, cache_dir, inference)
        except Exception as exc:  # noqa: BLE001 - whatever the pipeline rejects, skip the row
            skip(row, None, f"{type(exc).__name__}: {exc}")
            continue
        from ..pipeline.matte import resolve_method

        try:
            matting = resolve_method(row.config.matting, row.config.matting_weights)
        except (ValueError, FileNotFoundError) as exc:
            skip(row, None, f"{type(exc).__name__}: {exc}")
            continue
        source = {
            "kind": "pipeline",
            "label": row.label,
            "preset": row.preset,
            "config": dataclasses.asdict(row.config),
            "matting_resolved": matting,
        }
        for ps in sets:
            t0 = time.perf_counter()
            try:
                ev = evaluate(
                    ps.dataset,
                    pipeline_predict(pipe),
                    regions=("whole",),
                    source=source,
                    progress=progress,
                    keep_worst=0,
                    split=ps.split,
                    score=quality_scores,
                )
            except Exception as exc:  # noqa: BLE001 - a row that breaks must not stop the others
                skip(row, ps, f"{type(exc).__name__}: {exc}")
                continue
            run = _run_record(ps, row, ev)
            stage_s = [
                float(r.get("time_total", 0.0)) - float(r.get("time_segment", 0.0)) for r in run["images"]
            ]
            run["meta"]["seconds_per_image"] = float(np.mean(stage_s)) if stage_s else float("nan")
            runs.append(run)
            finished(row, ps, run, time.perf_counter() - t0)

    overall = {}
    for row in rows:
        per = {r["dataset"]: r["images"] for r in runs if r["row"] == row.label}
        if per:
            overall[row.label] = protocol.overall(per, KEYS)
    from .. import __version__

    return {
        "format": FORMAT,
        "started": started.isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - t_start, 3),
        "nuggy": __version__,
        "host": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "split": sets[0].split["part"] if sets else None,
        "limit": sets[0].split["limit"] if sets else None,
        "failure_rule": {
            "text": protocol.FAILURE_RULE,
            "sad_whole_above": protocol.FAILURE_SAD,
            "iou_below": protocol.FAILURE_IOU,
            "iou_threshold": protocol.IOU_THRESHOLD,
        },
        "keys": list(KEYS),
        "datasets": {ps.name: ps.info for ps in sets},
        "rows": [r.record() for r in rows],
        "skipped": skipped,
        "runs": runs,
        "overall": overall,
        "inference": inference,
        "rembg": {"path": rembg, "version": rembg_version} if rembg else None,
    }


# ---------------------------------------------------------------------------------------------
# tables


def _f(v, fmt: str) -> str:
    from .report import _fmt

    return _fmt(v, fmt)


_COL = {
    "sad_whole": ("SAD", ".2f"),
    "mse_whole": ("MSE", ".2f"),
    "grad_whole": ("Grad", ".2f"),
    "conn_whole": ("Conn", ".2f"),
    "iou": ("IoU", ".3f"),
    "max_f": ("maxF", ".3f"),
    "mae": ("MAE", ".4f"),
}


def _fails(p: dict) -> str:
    """``k/n (r %)``, plus the images that could not be scored (no output, unreadable)."""
    extra = f" + {p['unscored']} unscored" if p.get("unscored") else ""
    if p.get("failures") is None:
        return "–" + extra
    rate = p["failure_rate"]
    return (f"{p['failures']}/{p['images']} ({100 * rate:.0f} %)" if p["images"] else "0/0") + extra


def _display(result: dict) -> dict[str, str]:
    return {r["label"]: r.get("display", r["label"]) for r in result["rows"]}


def dataset_table(result: dict, name: str) -> str:
    """Markdown table of one dataset: a row per configuration, means, median SAD, failures."""
    from .report import markdown_table

    info = result["datasets"][name]
    binary = info.get("binary_gt")
    shown = _display(result)
    header = ["configuration", "SAD", "MSE", "Grad", "Conn", "med SAD", "failures", "IoU"]
    if binary:
        header += ["maxF", "MAE"]
    header.append("s/img")
    body = []
    for run in (r for r in result["runs"] if r["dataset"] == name):
        m = run["protocol"]["metrics"]
        cells = [shown.get(run["row"], run["row"])]
        cells += [_f(m[k]["mean"], _COL[k][1]) for k in MATTING_KEYS]
        cells += [_f(m["sad_whole"]["median"], ".2f"), _fails(run["protocol"]), _f(m["iou"]["mean"], ".3f")]
        if binary:
            cells += [_f(m[k]["mean"], _COL[k][1]) for k in BINARY_KEYS]
        cells.append(_f(run["meta"].get("seconds_per_image"), ".3f"))
        body.append(cells)
    sp = result.get("split")
    part = (
        f"all {info['samples']} images"
        if sp == "all"
        else f"{sp} half, {info['split_size']} of {info['samples']} images"
    )
    if len(info["names"]) < info["split_size"]:
        part = f"first {len(info['names'])} of the {part}"
    head = (
        f"**{name}** — {part} "
        f"({info['layout']}, {'binary' if binary else 'soft'} ground truth); whole image, "
        f"automatic mode; means unless marked"
    )
    return head + "\n\n" + markdown_table(header, body)


def overall_table(result: dict) -> str:
    """Markdown table across datasets: pooled failures and IoU beside each dataset's mean SAD
    and failures, and the unweighted mean of the datasets' mean IoU."""
    from .report import markdown_table

    names = list(result["datasets"])
    shown = _display(result)
    header = ["configuration", "images", "failures (pooled)", "IoU (pooled)", "IoU (mean of sets)"]
    for n in names:
        header += [f"SAD {n}", f"failures {n}"]
    body = []
    for label, o in result["overall"].items():
        pooled = o["pooled"]
        cells = [
            shown.get(label, label),
            str(pooled["images"]),
            _fails(pooled),
            _f(pooled["metrics"]["iou"]["mean"], ".3f"),
            _f(o["mean_of_means"]["iou"], ".3f"),
        ]
        for n in names:
            d = o["datasets"].get(n)
            cells += [_f(d["metrics"]["sad_whole"]["mean"], ".2f"), _fails(d)] if d else ["–", "–"]
        body.append(cells)
    note = (
        "Pooled: every image counts once, so the larger set dominates; mean of sets: every "
        "dataset counts once. SAD is not pooled: it scales with image size."
    )
    return "**overall**\n\n" + markdown_table(header, body) + "\n\n" + note


def result_markdown(result: dict) -> str:
    """Every table of a result: one per dataset, then the overall table and notes."""
    parts = [dataset_table(result, n) for n in result["datasets"]]
    if result["overall"]:
        parts.append(overall_table(result))
    notes = [
        f"Failure: {result['failure_rule']['text']}. Split: {result['split']} half of each "
        "dataset (nuggy.eval.split)."
    ]
    notes.append(
        "s/img: pipeline rows, the stages after segmentation (the model's probability "
        "is cached per image); rembg rows, the whole tool (model and start-up included)."
    )
    for model, st in result.get("inference", {}).items():
        if st.get("misses"):
            notes.append(
                f"{model} inference: {st['misses']} maps computed, {st['seconds'] / st['misses']:.3f} s/img; "
                f"{st['hits']} cache hits"
            )
        else:
            notes.append(f"{model} inference: all {st.get('hits', 0)} maps from the cache")
    for s in result.get("skipped", []):
        notes.append(f"skipped {s['row']}{' on ' + s['dataset'] if s.get('dataset') else ''}: {s['reason']}")
    return "\n\n".join(parts) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


# ---------------------------------------------------------------------------------------------
# files and comparison


def write_result(result: dict, path: str | os.PathLike) -> Path:
    """Write ``result`` as JSON (NaN as ``null``), atomically; returns the path."""
    from ..io import atomic_write_bytes
    from .report import _json_bytes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, _json_bytes(result))


def load_result(path: str | os.PathLike) -> dict:
    """A result written by :func:`write_result` (``null`` metric values back to NaN).

    Raises:
        ValueError: not a readable benchmark file of this format.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{p}: cannot read the benchmark JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{p}: not a {FORMAT} file (written by benchmarks/quality.py)")
    for run in data["runs"]:
        for r in run["images"]:
            for k in run["columns"]:
                if k in r and r[k] is None:
                    r[k] = float("nan")
        run["path"] = f"{p}#{run['dataset']}/{run['row']}"
    data["path"] = str(p)
    return data


def compare_results(old: dict, new: dict) -> dict:
    """Per dataset and row, the change from ``old`` to ``new`` over the images both scored.

    Returns:
        ``{"old", "new"`` (paths, splits), ``"pairs"``: [{dataset, row, n, metrics: {key:
        {old_mean, new_mean, delta_mean, old_median, new_median, delta_median}}, failures:
        {a, b, delta, n} | None}], ``"only_old"``, ``"only_new"`` ((dataset, row) pairs), and
        ``"notes"``}. Δ = new − old. Means come from :func:`nuggy.eval.report.compare_reports`.
    """
    from .report import compare_reports

    def index(res):
        return {(r["dataset"], r["row"]): r for r in res["runs"]}

    io, inew = index(old), index(new)
    pairs = []
    for key, rn in inew.items():
        ro = io.get(key)
        if ro is None:
            continue
        cmp = compare_reports(ro, rn)
        keys = [k for k in KEYS if k in cmp["columns"]]
        metrics = {}
        for k in keys:
            so = protocol.stats(r[k]["a"] for r in cmp["images"])
            sn = protocol.stats(r[k]["b"] for r in cmp["images"])
            metrics[k] = {
                "old_mean": so["mean"],
                "new_mean": sn["mean"],
                "delta_mean": sn["mean"] - so["mean"],
                "old_median": so["median"],
                "new_median": sn["median"],
                "delta_median": sn["median"] - so["median"],
            }
        pairs.append(
            {
                "dataset": key[0],
                "row": key[1],
                "n": len(cmp["names"]),
                "metrics": metrics,
                "failures": cmp["failures"],
                "only_old": cmp["only_a"],
                "only_new": cmp["only_b"],
            }
        )
    notes = []
    if old.get("split") != new.get("split"):
        notes.append(f"different splits: old {old.get('split')}, new {new.get('split')}")
    for name in sorted(set(old["datasets"]) & set(new["datasets"])):
        a, b = old["datasets"][name], new["datasets"][name]
        if a.get("root") != b.get("root"):
            notes.append(f"{name}: old read {a.get('root')}, new {b.get('root')}")
    return {
        "old": {
            "path": old.get("path"),
            "split": old.get("split"),
            "started": old.get("started"),
            "git": old.get("git"),
        },
        "new": {
            "path": new.get("path"),
            "split": new.get("split"),
            "started": new.get("started"),
            "git": new.get("git"),
        },
        "pairs": pairs,
        "only_old": sorted(k for k in io if k not in inew),
        "only_new": sorted(k for k in inew if k not in io),
        "notes": notes,
    }


def compare_markdown(cmp: dict, datasets: dict | None = None) -> str:
    """Per-dataset tables of Δ (new − old): means, median SAD and failure counts."""
    from .report import _fmt_delta, markdown_table

    def commit(side):
        g = cmp[side].get("git") or {}
        return (g.get("commit") or "?")[:10] + ("+dirty" if g.get("dirty") else "")

    head = (
        f"Δ = new − old; old {cmp['old']['path']} ({cmp['old']['split']}, {commit('old')}), "
        f"new {cmp['new']['path'] or 'this run'} ({cmp['new']['split']}, {commit('new')})"
    )
    parts = [head]
    for name in dict.fromkeys(p["dataset"] for p in cmp["pairs"]):
        binary = bool((datasets or {}).get(name, {}).get("binary_gt"))
        header = [
            "configuration",
            "images",
            "Δ SAD",
            "Δ MSE",
            "Δ Grad",
            "Δ Conn",
            "Δ med SAD",
            "failures old → new",
            "Δ IoU",
        ] + (["Δ maxF", "Δ MAE"] if binary else [])
        body = []
        for p in (q for q in cmp["pairs"] if q["dataset"] == name):
            m = p["metrics"]

            def d(k, which="delta_mean", m=m):
                return _fmt_delta(m[k][which], _COL[k][1]) if k in m else "–"

            f = p["failures"]
            fails = f"{f['a']} → {f['b']} ({f['delta']:+d})" if f else "–"
            cells = [p["row"], str(p["n"])] + [d(k) for k in MATTING_KEYS]
            cells += [d("sad_whole", "delta_median"), fails, d("iou")]
            if binary:
                cells += [d(k) for k in BINARY_KEYS]
            body.append(cells)
        parts.append(f"**{name}**\n\n" + markdown_table(header, body))
    for side, what in (("only_old", "only in old"), ("only_new", "only in new")):
        if cmp[side]:
            parts.append(f"{what} (not compared): " + ", ".join(f"{r} on {d}" for d, r in cmp[side]))
    parts += [f"note: {n}" for n in cmp["notes"]]
    if not cmp["pairs"]:
        parts.append("no (dataset, configuration) pair in common")
    return "\n\n".join(parts) + "\n"


def git_info(root: str | os.PathLike) -> dict:
    """``{"commit", "dirty"}`` of the git checkout at ``root`` (``None``s outside git)."""

    def git(*args):
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}
