"""``nuggy models``: list, pull, path (and convert / export with the torch extra)."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Manage model files.

  nuggy models list                          registered models, licence, size, cached or not
  nuggy models pull NAME [--accept-license]  fetch into the cache (NUGGY_HOME, ~/.cache/nuggy)
  nuggy models path NAME                     print the cached file's path"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="list registered models")
    pull = sub.add_parser("pull", help="fetch a model into the cache")
    pull.add_argument("name")
    pull.add_argument("--accept-license", metavar="ID", help="accept a gated licence (agpl-3.0, gpl-3.0)")
    pull.add_argument("--force", action="store_true", help="fetch again even if cached")
    path = sub.add_parser("path", help="print the cached file path of a model")
    path.add_argument("name")
    _add_torch_actions(sub)


def _add_torch_actions(sub) -> None:
    conv = sub.add_parser("convert", help="registry ONNX weights -> PyTorch .pth (needs [torch])")
    conv.add_argument("name", help="registry model (u2netp, u2net, isnet, isnet-quint8)")
    conv.add_argument("-o", "--output", help="output .pth (default: next to the cached model)")
    conv.add_argument("--accept-license", metavar="ID")
    exp = sub.add_parser("export", help="PyTorch checkpoint -> ONNX with a parity check (needs [torch])")
    exp.add_argument("checkpoint", help=".pth / .pt checkpoint (training run or converted)")
    exp.add_argument("-o", "--output", required=True, help="output .onnx")
    exp.add_argument("--arch", default=None, help="u2netp | u2net | isnet (default: from the checkpoint)")
    exp.add_argument("--input-size", type=int, default=None, help="square input size")


def run(args) -> int:
    from nuggy import sources
    from nuggy.registry import UnknownModelError, get_spec, list_models

    try:
        if args.action == "list":
            rows = [("name", "arch", "input", "size", "licence", "cached", "description")]
            for s in list_models():
                cached = "yes" if sources.cached_path(s) else "no"
                lic = s.licence + (" (opt-in)" if s.licence_gate else "")
                rows.append(
                    (
                        s.name,
                        s.architecture,
                        f"{s.input_size[0]}²",
                        f"{s.size / 1e6:.0f} MB",
                        lic,
                        cached,
                        s.description,
                    )
                )
            widths = [max(len(r[i]) for r in rows) for i in range(6)]
            for r in rows:
                print("  ".join(c.ljust(w) for c, w in zip(r[:6], widths)) + "  " + r[6])
            print(f"\ncache: {sources.models_dir()}  (set NUGGY_HOME to move it)")
            gated = [s.name for s in list_models() if s.licence_gate]
            if gated:
                for gate in sorted({s.licence_gate for s in list_models() if s.licence_gate}):
                    names = [s.name for s in list_models() if s.licence_gate == gate]
                    print(
                        f"{', '.join(names)}: {gate.upper()} weights; fetch with "
                        f"'nuggy models pull NAME --accept-license {gate}'"
                    )
            return 0
        if args.action == "pull":
            path = sources.pull(args.name, accept_license=args.accept_license, force=args.force)
            print(path)
            return 0
        if args.action == "path":
            spec = get_spec(args.name)
            path = sources.cached_path(spec)
            if path is None:
                print(
                    f"nuggy models: {args.name} is not in the cache; fetch it with "
                    f"'nuggy models pull {args.name}'",
                    file=sys.stderr,
                )
                return 1
            print(path)
            return 0
        if args.action in ("convert", "export"):
            try:
                import torch  # noqa: F401
            except ImportError:
                print(
                    "nuggy models: this needs PyTorch; install it with pip install 'nuggy[torch]'",
                    file=sys.stderr,
                )
                return 2
            if args.action == "convert":
                from nuggy.models.convert import convert_registry_model

                print(convert_registry_model(args.name, args.output, accept_license=args.accept_license))
                return 0
            print(export_checkpoint(args.checkpoint, args.output, arch=args.arch, input_size=args.input_size))
            return 0
    except (UnknownModelError, sources.ModelSourceError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"nuggy models: {exc}", file=sys.stderr)
        return 2
    return 2


def _refuse_non_segmentation(checkpoint: str, meta: dict) -> None:
    """Checkpoints of ``nuggy train`` that are not a photo → mask network say what they are."""
    from pathlib import Path

    kind, arch = meta.get("kind"), meta.get("arch")
    if kind == "gt_encoder" or arch == "isnet_gt_encoder":
        run = Path(checkpoint).resolve().parent
        run = run.parent if run.name == "gt_encoder" else run
        raise ValueError(
            f"{checkpoint}: this is the IS-Net ground-truth encoder of stage 1 (it reads masks, "
            "not photos, and only supervises stage 2's features), so it cannot remove a "
            f"background; export the stage-2 segmentation checkpoint instead: nuggy models "
            f"export {run / 'best.pt'} -o model.onnx (or {run / 'last.pt'}); if stage 2 has "
            f"not run yet, continue the run with: nuggy train --resume {run}"
        )
    if kind == "fba" or arch == "fba":
        raise ValueError(
            f"{checkpoint}: an FBA Matting checkpoint (alpha matting from an image and a "
            "trimap), not a segmentation network; it is not exported to ONNX: use it as it is "
            f"with nuggy remove PHOTO --matting fba --matting-weights {checkpoint}"
        )


def export_checkpoint(
    checkpoint: str, output: str, *, arch: str | None = None, input_size: int | None = None
):
    """Export a training checkpoint (or a plain state dict) to ONNX with a parity check.

    The architecture and input size come from the checkpoint's ``arch`` / ``input_size``
    entries (written by ``nuggy train``) unless given; a plain state dict needs ``arch``.
    """
    import torch

    from nuggy.models.export import export_onnx
    from nuggy.registry import list_models

    meta = torch.load(checkpoint, map_location="cpu", weights_only=True)
    meta = meta if isinstance(meta, dict) else {}
    _refuse_non_segmentation(checkpoint, meta)
    arch = arch or meta.get("arch")
    if not arch:
        raise ValueError(f"{checkpoint}: no architecture recorded; pass --arch u2netp|u2net|isnet")
    size = input_size or meta.get("input_size")
    if size is None:
        size = next((s.input_size for s in list_models() if s.architecture == arch), None)
    if size is None:
        raise ValueError(f"{checkpoint}: no input size recorded; pass --input-size N")
    if isinstance(size, int):
        size = (size, size)
    kwargs = {}
    if meta.get("mean") is not None and meta.get("std") is not None:
        kwargs = {"mean": tuple(meta["mean"]), "std": tuple(meta["std"])}
    source = checkpoint
    if meta.get("model_kwargs"):  # e.g. a reduced-width model trained by nuggy train
        from nuggy.models.registry import load_checkpoint

        source = load_checkpoint(arch, checkpoint, **meta["model_kwargs"])
    return export_onnx(source, output, arch=arch, input_size=tuple(size), **kwargs)
