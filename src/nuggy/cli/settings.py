"""CLI options for the pipeline settings, generated from :data:`nuggy.pipeline.settings.SETTINGS`.

Light to import (no numpy): ``nuggy --help`` builds every verb's parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

__all__ = ["add_model_arguments", "add_setting_arguments", "overrides_from_args", "config_from_args"]


def add_model_arguments(p, *, model_help: str = "registry model (default: u2netp)") -> None:
    """``--model``, ``--weights``, ``--backend``, ``--segmenter``, ``--class`` and
    ``--accept-license``: how every image verb names its segmentation model."""
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("--weights", metavar="PATH", help="use this model file instead of the registry one")
    p.add_argument("--backend", choices=["onnx", "torch"], default="onnx")
    p.add_argument(
        "--segmenter",
        choices=["salient", "deeplabv3"],
        default=None,
        help="salient-object model (default) or class-aware DeepLabV3 (needs --class)",
    )
    p.add_argument(
        "--class",
        dest="segmenter_class",
        metavar="NAME",
        help="with --segmenter deeplabv3: the class to cut out (cat, dog, person…)",
    )
    p.add_argument(
        "--accept-license", metavar="ID", help="accept a gated model's licence (agpl-3.0, gpl-3.0)"
    )


def add_setting_arguments(group, names: Iterable[str] | None = None) -> None:
    """Add ``--name`` options (``--name/--no-name`` for switches) for ``names`` (default: all)."""
    from nuggy.pipeline.config import LIMITS
    from nuggy.pipeline.settings import SETTINGS, choices_of, kind_of

    wanted = None if names is None else set(names)
    for s in SETTINGS:
        if wanted is not None and s.name not in wanted:
            continue
        kind = kind_of(s.name)
        help_text = s.help
        lim = LIMITS.get(s.name)
        if lim is not None:
            help_text += f" [{lim.lo:g}..{lim.hi:g}]"
        if kind == "bool":
            group.add_argument(
                s.flag, dest=s.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif kind == "choice":
            group.add_argument(s.flag, dest=s.name, choices=choices_of(s.name), default=None, help=help_text)
        else:
            typ = {"int": int, "float": float}.get(kind, str)
            group.add_argument(s.flag, dest=s.name, type=typ, default=None, metavar=s.metavar, help=help_text)


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The settings given on the command line (options left out are not included)."""
    from nuggy.pipeline.settings import SETTINGS

    out = {}
    for s in SETTINGS:
        v = getattr(args, s.name, None)
        if v is not None:
            out[s.name] = v
    for name in ("segmenter", "segmenter_class"):
        v = getattr(args, name, None)
        if v is not None:
            out[name] = v
    return out


def config_from_args(args: argparse.Namespace, **fixed):
    """``build_config`` from ``--preset/--model/--weights/--backend``, the setting options and
    ``--set NAME=VALUE`` (where the verb has it); ``fixed`` wins over what was given."""
    from nuggy.pipeline.settings import build_config, parse_assignment

    overrides = overrides_from_args(args)
    for item in getattr(args, "overrides", None) or []:
        name, value = parse_assignment(item)
        overrides[name] = value
    overrides.update(fixed)
    # --model / --weights / --backend win over the same names given with --set
    model = getattr(args, "model", None) or overrides.pop("model", None)
    weights = getattr(args, "weights", None) or overrides.pop("weights", None)
    backend = getattr(args, "backend", None) or overrides.pop("backend", None)
    for name in ("model", "weights", "backend"):
        overrides.pop(name, None)
    return build_config(
        getattr(args, "preset", "default"),
        model=model,
        weights=weights,
        backend=backend,
        **overrides,
    )
