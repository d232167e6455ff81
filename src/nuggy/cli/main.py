"""``nuggy`` command line: one module per verb, each light to import (heavy work in ``run``)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# verb -> (module, one-line help). Modules define add_arguments(parser) and run(args) -> int.
VERBS: dict[str, tuple[str, str]] = {
    "remove": ("nuggy.cli.remove", "cut the subject out of images (files, folders, stdin)"),
    "video": ("nuggy.cli.video", "cut the subject out of a video, with alpha (WebM / MOV / PNG frames)"),
    "models": ("nuggy.cli.models", "list, fetch, locate, convert and export models"),
    "trimap": ("nuggy.cli.trimap", "write the automatic trimap of an image (to inspect or edit)"),
    "eval": ("nuggy.cli.eval", "score a model/preset or predictions against ground truth"),
    "composite": ("nuggy.cli.composite", "build a Composition-1k-style benchmark set"),
    "bench": ("nuggy.cli.bench", "speed and memory per pipeline stage"),
    "train": ("nuggy.cli.train", "fine-tune IS-Net / U²-Net on a dataset mixture"),
    "serve": ("nuggy.cli.serve", "run the HTTP API"),
    "ui": ("nuggy.cli.ui", "open the Streamlit web app"),
}


def build_parser() -> argparse.ArgumentParser:
    from nuggy import __version__

    parser = argparse.ArgumentParser(
        prog="nuggy",
        description="Cut subjects out of photos with production-grade edges.",
        epilog="Run 'nuggy VERB --help' for the options of a verb.",
    )
    parser.add_argument("--version", action="version", version=f"nuggy {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, (module, help_text) in VERBS.items():
        if importlib.util.find_spec(module) is None:  # verb not part of this build
            continue
        mod = importlib.import_module(module)
        p = sub.add_parser(verb, help=help_text, description=getattr(mod, "DESCRIPTION", help_text))
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "verb", None):
        parser.print_help()
        return 2
    import logging

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    from nuggy.errors import NuggyError, UsageError

    try:
        return int(args._module.run(args) or 0)
    except NuggyError as exc:  # a verb's own handling missed it: still one line, no traceback
        print(f"nuggy {args.verb}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
