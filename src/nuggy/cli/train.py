"""``nuggy train``: fine-tune IS-Net / U²-Net on a weighted dataset mixture."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Train or fine-tune a segmentation model (task: segmentation) or FBA Matting
(task: fba) from a YAML config.

  nuggy train --config configs/nuggy-mix.yaml
  nuggy train --config configs/fba-composition.yaml
  nuggy train --config my.yaml --set optim.lr=1e-4 --set train.steps=5000
  nuggy train --resume runs/exp1/last.pt            (config from the checkpoint)
  nuggy train --config my.yaml --check              (run every pre-training check, then stop)
  torchrun --nproc-per-node 8 -m nuggy.train --config my.yaml      (multi-GPU / multi-node)

Writes into train.output_dir: config.yaml (resolved), last.pt, best.pt, metrics.jsonl,
metrics.csv, plot.png. Export with: nuggy models export RUN/best.pt -o mine.onnx
(FBA: nuggy remove photo.jpg --matting fba --matting-weights RUN/best.pt)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--config", "-c", help="training config (YAML)")
    p.add_argument("--resume", metavar="CKPT", help="continue from last.pt (or a run directory)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. optim.lr=1e-4 (repeatable)",
    )
    p.add_argument("--output-dir", "-o", help="shortcut for --set train.output_dir=DIR")
    p.add_argument(
        "--check", action="store_true", help="validate the config and list the datasets, then exit"
    )


def run(args) -> int:
    try:
        from nuggy.train.config import ConfigError, config_from_dict, config_to_yaml, load_config
        from nuggy.train.data import DatasetError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        print(f"nuggy train: {exc}; install the training extra: pip install 'nuggy[train]'", file=sys.stderr)
        return 2
    overrides = list(args.overrides or [])
    if args.output_dir:
        overrides.append(f"train.output_dir={args.output_dir}")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("nuggy train: needs PyTorch: pip install 'nuggy[train]'", file=sys.stderr)
        return 2
    try:
        if args.config:
            cfg = load_config(args.config, overrides)
        elif args.resume:
            from nuggy.train.loop import find_resume_checkpoint, load_training_checkpoint

            ckpt = load_training_checkpoint(find_resume_checkpoint(args.resume))
            cfg = config_from_dict(ckpt["config"], overrides)
        else:
            print("nuggy train: give --config FILE (or --resume CKPT)", file=sys.stderr)
            return 2
        if args.check:
            from nuggy.train.preflight import preflight

            # the same checks train() runs before its first step: licence, files, datasets
            rep = preflight(cfg, resume=bool(args.resume and not args.config), warn=False)
            print(config_to_yaml(cfg), end="")
            for line in rep.lines:
                print(f"# {line}")
            for w in rep.warnings:
                print(f"nuggy train: warning: {w}", file=sys.stderr)
            return 0
        from nuggy.train.loop import train

        res = train(cfg, resume=args.resume)
    except (ConfigError, DatasetError, FileNotFoundError, FileExistsError) as exc:
        print(f"nuggy train: {exc}", file=sys.stderr)
        return 2
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        best = res.get("best")
        msg = f"done at step {res['step']}: {res['last']}"
        if best:
            msg += f"; best {best['metric']}={best['value']:.4g} at step {best['step']} ({res['best_path']})"
        print(msg, file=sys.stderr)
    return 0
