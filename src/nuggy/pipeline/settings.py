"""The one table of user-facing pipeline settings, and the one way to build a configuration.

Every front end (``nuggy remove`` / ``trimap`` / ``eval``, :func:`nuggy.remove`, the HTTP API
and the Streamlit app) builds its :class:`~nuggy.pipeline.config.PipelineConfig` with
:func:`build_config` from overrides named in :data:`SETTINGS`. A field added to
``PipelineConfig`` and listed here appears in the CLI (``--name`` / ``--no-name``), the HTTP
query string, the web app's sidebar and ``--set NAME=VALUE`` from this one place; its type and
allowed values come from the dataclass and its range from :data:`~nuggy.pipeline.config.LIMITS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError, UsageError
from .config import FUSION_METHODS, LIMITS, MATTING_METHODS, PipelineConfig, preset

__all__ = ["Setting", "SETTINGS", "setting", "kind_of", "choices_of", "parse_value", "build_config"]

Kind = Literal["bool", "int", "float", "choice"]


@dataclass(frozen=True)
class Setting:
    """How one :class:`PipelineConfig` field is offered to users.

    Attributes:
        name: the field name (``refine_radius``); the CLI flag is ``--refine-radius``.
        label: a short label (web app).
        help: one line of help (CLI, HTTP docs, web app).
        metavar: the CLI placeholder for a value (``PX``).
        ui: ``(low, high, step)`` of the web app's slider for a number (a sub-range of the
            allowed one, where values are useful), or ``None`` for a checkbox / select box.
        needs: the switch this setting only matters with (the web app disables it when off).
        zero_is_none: the web app's slider uses 0 for ``None`` (automatic).
        steps: the web app offers these values only (a log-scale choice such as eps).
    """

    name: str
    label: str
    help: str
    metavar: str | None = None
    ui: tuple[float, float, float] | None = None
    needs: str | None = None
    zero_is_none: bool = False
    steps: tuple[float, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


#: The stage settings every front end offers, in the order the web app shows them.
SETTINGS: tuple[Setting, ...] = (
    Setting("tta", "Flip TTA", "flip test-time augmentation (mean with the mirrored photo's map)"),
    Setting("interior", "Solid interior", "make the confident inside of the subject fully opaque"),
    Setting(
        "interior_depth",
        "Interior depth (fraction of the diagonal)",
        "depth inside the 0.5 contour beyond which the subject is opaque (fraction of the image diagonal)",
        "FRAC",
        ui=(0.002, 0.05, 0.002),
        needs="interior",
    ),
    Setting("refine", "Guided filter refinement", "guided filter near the edge, photo as guide"),
    Setting(
        "refine_radius",
        "Guided filter radius (px, 0 = auto)",
        "guided filter radius in pixels (default: scales with the image)",
        "PX",
        ui=(0, 64, 1),
        needs="refine",
        zero_is_none=True,
    ),
    Setting(
        "refine_eps",
        "Guided filter eps",
        "guided filter regularisation (0..1 intensities)",
        "EPS",
        needs="refine",
        steps=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
    ),
    Setting(
        "refine_band",
        "Guided filter reach (px, 0 = auto)",
        "how far the filter reaches beyond the edge core, pixels (default: scales with the image)",
        "PX",
        ui=(0, 64, 1),
        needs="refine",
        zero_is_none=True,
    ),
    Setting("islands", "Remove islands", "remove small islands"),
    Setting(
        "island_min_area",
        "Island threshold (fraction of the largest part)",
        "islands smaller than this fraction of the largest part are dropped",
        "FRAC",
        ui=(0.0, 0.5, 0.01),
        needs="islands",
    ),
    Setting("fill_holes", "Fill holes", "fill enclosed background holes"),
    Setting(
        "hole_max_area",
        "Largest hole filled (fraction of the subject)",
        "holes up to this fraction of the subject's area are filled",
        "FRAC",
        ui=(0.0, 0.01, 0.0005),
        needs="fill_holes",
    ),
    Setting(
        "matting",
        "Matting solver",
        "solver in the trimap's unknown band (auto = FBA if its checkpoint is found, else "
        "closed-form; none = no trimap/matting)",
    ),
    Setting("matting_weights", "FBA checkpoint", "FBA Matting checkpoint (FBA.pth)", "PATH"),
    Setting(
        "trimap_band",
        "Trimap band (fraction of the diagonal)",
        "base half-width of the automatic unknown band, fraction of the image diagonal",
        "FRAC",
        ui=(0.002, 0.05, 0.001),
        needs="matting",
    ),
    Setting(
        "matting_prior",
        "Segmentation prior in closed-form matting",
        "weight of the segmentation as a prior in closed-form matting (0 = plain closed-form)",
        "W",
        ui=(0.0, 1.0, 0.01),
        needs="matting",
    ),
    Setting(
        "matting_min_megapixels",
        "Matting from (megapixels)",
        "automatic mode: photos smaller than this many megapixels skip trimap and matting",
        "MP",
        ui=(0.0, 2.0, 0.05),
        needs="matting",
    ),
    Setting(
        "foreground",
        "Decontaminate edge colours",
        "foreground colour decontamination where alpha is fractional",
    ),
    Setting("threads", "Threads", "inference threads (default: all cores)", "N"),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_FIELDS = {f.name: f for f in dataclasses.fields(PipelineConfig)}
_CHOICES: dict[str, tuple[str, ...]] = {
    "matting": MATTING_METHODS,
    "segmenter": ("salient", "deeplabv3"),
    "backend": ("onnx", "torch"),
    "fusion": FUSION_METHODS,
}


def setting(name: str) -> Setting:
    """The :class:`Setting` called ``name`` (``KeyError`` when it is not user-facing)."""
    return _BY_NAME[name]


def kind_of(name: str) -> Kind | Literal["str", "tuple"]:
    """The value kind of the :class:`PipelineConfig` field ``name``, from its annotation."""
    if name in _CHOICES:
        return "choice"
    t = str(_FIELDS[name].type)
    if t == "bool":
        return "bool"
    if t.startswith("int"):
        return "int"
    if t.startswith("float"):
        return "float"
    if t.startswith("tuple"):
        return "tuple"
    return "str"


def choices_of(name: str) -> tuple[str, ...]:
    """Allowed values of a choice field (``matting`` …)."""
    return _CHOICES[name]


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_value(name: str, text: str) -> Any:
    """The typed value of ``--set name=text`` (or a query string); raises ConfigError.

    ``none`` / ``null`` gives ``None``; booleans take true/false/yes/no/on/off/1/0; tuples take
    comma-separated names. The value's range is checked when the config is built.
    """
    if name not in _FIELDS:
        raise ConfigError(f"unknown setting {name!r}; settings: {', '.join(_FIELDS)}", field=name)
    s = text.strip()
    kind = kind_of(name)
    if s.lower() in ("none", "null") and _FIELDS[name].default is None:
        return None
    try:
        if kind == "bool":
            if s.lower() in _TRUE:
                return True
            if s.lower() in _FALSE:
                return False
            raise ValueError
        if kind == "int":
            return int(s)
        if kind == "float":
            return float(s)
    except ValueError:
        what = {"bool": "true or false", "int": "a whole number", "float": "a number"}[kind]
        raise ConfigError(f"{name} takes {what}, got {text!r}", field=name) from None
    if kind == "tuple":
        return tuple(p.strip() for p in s.split(",") if p.strip())
    return s


def parse_assignment(item: str) -> tuple[str, Any]:
    """``NAME=VALUE`` (``--set``) → ``(name, typed value)``; dashes in NAME become underscores."""
    name, sep, value = item.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or name not in _FIELDS:
        raise ConfigError(
            f"--set {item!r}: expected NAME=VALUE with NAME one of: " + ", ".join(_FIELDS), field=name or None
        )
    try:
        return name, parse_value(name, value)
    except ConfigError as exc:
        raise ConfigError(f"--set {item!r}: {exc}", field=name) from None


def build_config(
    preset_name: str = "default",
    *,
    model: str | None = None,
    weights: str | None = None,
    backend: str | None = None,
    **overrides: Any,
) -> PipelineConfig:
    """The configuration of ``preset_name`` with ``overrides``: the one rule for every front end.

    ``model`` replaces the preset's model; ``weights`` without ``model`` means the file alone
    says what it is (its sidecar, ``nuggy.registry.resolve_model``), so the preset's model is
    dropped. Values left ``None`` in ``overrides`` are not applied (an option not given).
    Every value is checked by :class:`PipelineConfig` (type, range, choices, cross-field
    rules); a :class:`~nuggy.errors.ConfigError` names the field, its range and the value.
    """
    changes = {k: v for k, v in overrides.items() if v is not None}
    if model:
        changes["model"] = model
    if weights:
        changes["weights"] = str(weights)
        if not model:
            changes["model"] = None
    if backend:
        changes["backend"] = backend
    if not isinstance(preset_name, str):
        raise UsageError(f"preset must be a name, got {preset_name!r}")
    return preset(preset_name, **changes)


def query_bounds(name: str) -> dict[str, float]:
    """``ge``/``gt``/``le`` bounds of a numeric setting for a query-parameter declaration."""
    lim = LIMITS.get(name)
    if lim is None:
        return {}
    return {"gt" if lim.lo_open else "ge": lim.lo, "le": lim.hi}


def literal_of(name: str) -> Any:
    """A ``Literal[...]`` of a choice field's values (for typed query parameters)."""
    return Literal[choices_of(name)]  # type: ignore[valid-type]
