"""Import the weights of an ONNX file into the matching PyTorch module.

ONNX exporters rename initialisers (``onnx::Conv_1896``), fold BatchNorm into the preceding
convolution, store weights as fp16 behind ``Cast`` nodes, or quantise them (``ConvInteger``
with uint8 weights, zero point and scale). This module folds the constant sub-graphs, reads
every convolution's effective float32 weight and bias (de-quantised where needed) and maps
them onto the module's ``Conv2d`` layers:

* by node name when the exporter kept module paths (``/stage1/rebnconv1/conv_s1/Conv``);
* otherwise by execution order (the torch module is traced once on the ``meta`` device, so
  nothing is computed), checking every kernel shape, stride, padding, dilation and group.

Where the ONNX graph has no ``BatchNormalization`` after a conv that has one in torch, the BN
was folded into the conv: the BN is set to the identity (weight 1, bias 0, mean 0,
variance 1 − eps). The result reproduces the ONNX model exactly in eval mode; fine-tuning it
with batch statistics is a different model (re-calibrate BN first).

Needs the ``onnx`` package (``pip install onnx``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .registry import create_model, resolve_architecture

__all__ = [
    "OnnxConv",
    "read_onnx_convs",
    "convert_onnx",
    "convert_registry_model",
    "conv_call_order",
]


@dataclass
class OnnxConv:
    """One convolution of an ONNX graph with its effective float32 weights."""

    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    group: int
    bn: dict[str, np.ndarray | float] | None = None  # scale, B, mean, var, epsilon
    module_path: str | None = None  # from the node name, when the exporter kept it


def _require_onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("converting ONNX weights needs the 'onnx' package: pip install onnx") from None
    return onnx, numpy_helper


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _fold_constants(graph) -> dict[str, np.ndarray]:
    """Initialisers, ``Constant`` outputs and the outputs of simple ops on constants."""
    _, numpy_helper = _require_onnx()
    import onnx

    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    def cast(node, x):
        return x.astype(onnx.helper.tensor_dtype_to_np_dtype(_attrs(node)["to"]))

    def dequant(node, x, scale, zp=None):
        axis = _attrs(node).get("axis", 1)
        zp = np.zeros((), x.dtype) if zp is None else zp
        if scale.ndim == 1 and x.ndim > 1:
            shape = [1] * x.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        return (x.astype(np.float32) - zp.astype(np.float32)) * scale.astype(np.float32)

    def unsqueeze(node, x, axes=None):
        axes = _attrs(node).get("axes") if axes is None else axes
        for a in sorted(int(v) % (x.ndim + len(axes)) for v in axes):
            x = np.expand_dims(x, a)
        return x

    fold = {
        "Identity": lambda n, x: x,
        "Cast": cast,
        "Reshape": lambda n, x, s: x.reshape([int(v) for v in s]),
        "DequantizeLinear": dequant,
        "Unsqueeze": unsqueeze,
        "Mul": lambda n, a, b: a * b,
        "Add": lambda n, a, b: a + b,
        "Sub": lambda n, a, b: a - b,
        "Div": lambda n, a, b: a / b,
        "Transpose": lambda n, x: np.transpose(x, _attrs(n).get("perm")),
    }
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
            continue
        ins = [i for i in node.input if i]
        if node.op_type in fold and ins and all(i in consts for i in ins):
            consts[node.output[0]] = np.asarray(fold[node.op_type](node, *[consts[i] for i in ins]))
    return consts


_PATH_RE = re.compile(r"^/(?P<path>.+)/(Conv|ConvInteger)[^/]*$")


def _module_path(node_name: str) -> str | None:
    """``/stage1/rebnconv1/conv_s1/Conv`` → ``stage1.rebnconv1.conv_s1`` (``None`` if absent)."""
    m = _PATH_RE.match(node_name or "")
    return m.group("path").replace("/", ".") if m else None


def read_onnx_convs(path: str | os.PathLike) -> list[OnnxConv]:
    """Every convolution of the ONNX file, in graph order, with float32 weights.

    Handles ``Conv`` with float32/fp16 initialisers (through ``Cast``/``DequantizeLinear``) and
    dynamically quantised ``ConvInteger`` (weight = (w − zero_point) · scale; bias from the
    following ``Add``). A ``BatchNormalization`` right after a conv is returned in ``bn``.
    """
    onnx, _ = _require_onnx()
    model = onnx.load(str(path))
    graph = model.graph
    consts = _fold_constants(graph)
    consumers: dict[str, list] = {}
    for node in graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)

    def only_consumer(name: str, op: str):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    def const_operand(node, not_this: str) -> np.ndarray | None:
        others = [i for i in node.input if i != not_this]
        return consts.get(others[0]) if len(others) == 1 else None

    convs: list[OnnxConv] = []
    for node in graph.node:
        if node.op_type not in ("Conv", "ConvInteger"):
            continue
        a = _attrs(node)
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ValueError(f"{path}: conv {node.name!r} uses auto_pad, not supported")
        out = node.output[0]
        if node.op_type == "Conv":
            if node.input[1] not in consts:
                raise ValueError(f"{path}: conv {node.name!r} has a non-constant weight")
            w = consts[node.input[1]].astype(np.float32)
            b = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        else:  # ConvInteger -> Cast -> Mul(scale) [-> Add(bias)]
            wq = consts[node.input[1]]
            wzp = consts[node.input[3]] if len(node.input) > 3 and node.input[3] else 0
            cast = only_consumer(out, "Cast")
            mul = cast and only_consumer(cast.output[0], "Mul")
            if mul is None:
                raise ValueError(f"{path}: cannot follow the scale of {node.name!r}")
            scale_name = [i for i in mul.input if i != cast.output[0]][0]
            scale_node = next((n for n in graph.node if scale_name in n.output), None)
            if scale_name in consts:  # static activation scale folded in
                raise ValueError(f"{path}: static quantisation of {node.name!r} not supported")
            if scale_node is None or scale_node.op_type != "Mul":
                raise ValueError(f"{path}: cannot find the weight scale of {node.name!r}")
            w_scale = next((consts[i] for i in scale_node.input if i in consts), None)
            if w_scale is None:
                raise ValueError(f"{path}: weight scale of {node.name!r} is not constant")
            w_scale = np.asarray(w_scale, np.float32)
            if w_scale.ndim == 1 and w_scale.size > 1:
                w_scale = w_scale.reshape(-1, 1, 1, 1)
            wzp = np.asarray(wzp, np.float32)
            if wzp.ndim == 1 and wzp.size > 1:
                wzp = wzp.reshape(-1, 1, 1, 1)
            w = (wq.astype(np.float32) - wzp) * w_scale
            out = mul.output[0]
            add = only_consumer(out, "Add")
            b = const_operand(add, out) if add is not None else None
            if b is not None:
                out = add.output[0]
        if b is not None:
            b = np.asarray(b, np.float32).reshape(-1)
        k = len(w.shape) - 2
        pads = tuple(int(p) for p in a.get("pads", [0] * (2 * k)))
        conv = OnnxConv(
            name=node.name or out,
            weight=np.ascontiguousarray(w, np.float32),
            bias=b,
            strides=tuple(int(s) for s in a.get("strides", [1] * k)),
            pads=pads,
            dilations=tuple(int(d) for d in a.get("dilations", [1] * k)),
            group=int(a.get("group", 1)),
            module_path=_module_path(node.name),
        )
        bn = only_consumer(out, "BatchNormalization")
        if bn is not None and all(i in consts for i in bn.input[1:5]):
            scale, beta, mean, var = (consts[i].astype(np.float32) for i in bn.input[1:5])
            eps = _attrs(bn).get("epsilon", 1e-5)
            conv.bn = dict(scale=scale, B=beta, mean=mean, var=var, epsilon=eps)
        convs.append(conv)
    return convs


def conv_call_order(model: nn.Module, example: Tensor | tuple[Tensor, ...]) -> list[tuple[str, str | None]]:
    """``(conv name, name of the BatchNorm fed by it or None)`` in execution order.

    ``model`` and ``example`` may live on the ``meta`` device (nothing is computed).
    """
    names = {m: n for n, m in model.named_modules()}
    order: list[str] = []
    produced: dict[int, str] = {}
    keep: list[Tensor] = []  # keep outputs alive so their ids stay unique
    bn_of: dict[str, str] = {}

    def conv_hook(mod, inp, out):
        order.append(names[mod])
        produced[id(out)] = names[mod]
        keep.append(out)

    def bn_hook(mod, inp, out):
        src = produced.get(id(inp[0]))
        if src is not None:
            bn_of[src] = names[mod]

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            hooks.append(m.register_forward_hook(bn_hook))
    try:
        with torch.no_grad():
            model.eval()
            model(*(example if isinstance(example, tuple) else (example,)))
    finally:
        for h in hooks:
            h.remove()
    seen: set[str] = set()
    result = []
    for n in order:
        if n in seen:
            raise ValueError(f"conv {n} runs more than once; cannot map by order")
        seen.add(n)
        result.append((n, bn_of.get(n)))
    return result


def _example_input(arch: str, input_size: tuple[int, int]) -> Tensor:
    ch = 1 if arch == "isnet_gt_encoder" else 3
    return torch.empty(1, ch, *input_size, device="meta")


def _check_conv(conv: nn.Conv2d, oc: OnnxConv, name: str) -> None:
    want = dict(
        shape=tuple(conv.weight.shape),
        strides=tuple(conv.stride),
        pads=tuple(conv.padding) * 2,
        dilations=tuple(conv.dilation),
        group=conv.groups,
    )
    got = dict(
        shape=tuple(oc.weight.shape),
        strides=oc.strides,
        pads=oc.pads,
        dilations=oc.dilations,
        group=oc.group,
    )
    if want != got:
        raise ValueError(f"ONNX conv {oc.name!r} does not match {name}: {got} vs {want}")


def convert_onnx(
    name_or_path: str | os.PathLike,
    arch: str | None = None,
    *,
    input_size: tuple[int, int] | None = None,
    model_kwargs: dict | None = None,
) -> dict[str, Tensor]:
    """State dict of architecture ``arch`` holding the weights of an ONNX file.

    ``name_or_path``: a registry model name (its cached file is used; ``arch`` and the input
    size default to the spec's) or a path (``arch`` from the argument, else from a sidecar
    ``<file>.json`` written by :func:`nuggy.models.export.export_onnx`). The result loads
    strictly into ``create_model(arch, **model_kwargs)``.
    """
    path, arch, size = _resolve_source(name_or_path, arch)
    input_size = input_size or size or (320, 320)
    arch = resolve_architecture(arch)
    with torch.device("meta"):
        model = create_model(arch, **(model_kwargs or {}))
    order = conv_call_order(model, _example_input(arch, input_size))
    onnx_convs = read_onnx_convs(path)
    if len(onnx_convs) != len(order):
        raise ValueError(f"{path}: {len(onnx_convs)} convolutions in the ONNX graph, {len(order)} in {arch}")
    modules = dict(model.named_modules())
    by_name = _match_by_name(onnx_convs, [n for n, _ in order])
    if by_name is not None:  # the exporter kept module paths: robust to node reordering
        pairs = [(n, bn, by_name[n]) for n, bn in order]
    else:
        pairs = [(n, bn, oc) for (n, bn), oc in zip(order, onnx_convs)]

    own = model.state_dict()
    sd: dict[str, Tensor] = {}
    for name, bn_name, oc in pairs:
        conv = modules[name]
        _check_conv(conv, oc, name)
        sd[f"{name}.weight"] = torch.from_numpy(oc.weight.copy())
        bias = oc.bias
        if conv.bias is not None:
            sd[f"{name}.bias"] = torch.from_numpy(
                bias.copy() if bias is not None else np.zeros(conv.out_channels, np.float32)
            )
            bias = None
        if bn_name is None:
            if bias is not None:
                raise ValueError(f"{name} has no bias but ONNX conv {oc.name!r} has one")
            if oc.bn is not None:
                raise ValueError(f"ONNX conv {oc.name!r} has a BatchNorm that {name} lacks")
            continue
        bn = modules[bn_name]
        c = bn.num_features
        if oc.bn is not None:  # BN kept as a node
            if bias is not None:
                raise ValueError(f"{name} has no bias but ONNX conv {oc.name!r} has one")
            vals = dict(
                weight=oc.bn["scale"], bias=oc.bn["B"], running_mean=oc.bn["mean"],
                running_var=oc.bn["var"] + np.float32(oc.bn["epsilon"] - bn.eps),
            )  # fmt: skip
        else:  # BN folded into the conv
            vals = dict(
                weight=np.ones(c, np.float32),
                bias=bias if bias is not None else np.zeros(c, np.float32),
                running_mean=np.zeros(c, np.float32),
                running_var=np.full(c, 1.0 - bn.eps, np.float32),
            )
        for k, v in vals.items():
            sd[f"{bn_name}.{k}"] = torch.from_numpy(np.asarray(v, np.float32).reshape(c).copy())
        if f"{bn_name}.num_batches_tracked" in own:
            sd[f"{bn_name}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    missing = sorted(set(own) - set(sd))
    if missing:
        raise ValueError(
            f"{path}: no ONNX weights for {len(missing)} entries of {arch} "
            f"(e.g. {', '.join(missing[:5])}); only conv(+BN) networks can be converted"
        )
    return sd


def _match_by_name(onnx_convs: list[OnnxConv], names: list[str]) -> dict[str, OnnxConv] | None:
    """Map module names to ONNX convs by the paths in node names, allowing a wrapper prefix
    (``/model/stage1/…`` for ``stage1.…``); ``None`` unless every conv matches exactly once."""
    wanted = set(names)
    found: dict[str, OnnxConv] = {}
    for oc in onnx_convs:
        if not oc.module_path:
            return None
        parts = oc.module_path.split(".")
        suffixes = (".".join(parts[i:]) for i in range(len(parts)))
        hit = next((sfx for sfx in suffixes if sfx in wanted), None)
        if hit is None or hit in found:
            return None
        found[hit] = oc
    return found if len(found) == len(wanted) else None


def _resolve_source(
    name_or_path: str | os.PathLike, arch: str | None
) -> tuple[Path, str, tuple[int, int] | None]:
    p = Path(name_or_path)
    if p.exists():
        size = None
        sidecar = p.with_suffix(".json")
        if sidecar.exists():
            meta = json.loads(sidecar.read_text())
            arch = arch or meta.get("arch") or meta.get("architecture")
            size = tuple(meta["input_size"]) if "input_size" in meta else None
        if arch is None or size is None:
            from nuggy.registry import list_models

            spec = next((s for s in list_models() if s.filename == p.name), None)
            if spec is not None:
                arch = arch or spec.architecture
                size = size or tuple(spec.input_size)
        if arch is None:
            raise ValueError(f"{p}: pass arch= (no sidecar {sidecar.name} names it)")
        return p, arch, size
    from nuggy.registry import get_spec
    from nuggy.sources import cached_path

    spec = get_spec(str(name_or_path))
    path = cached_path(spec)
    if path is None:
        raise FileNotFoundError(
            f"model {spec.name!r} is not in the cache; fetch it first (nuggy models pull {spec.name})"
        )
    return Path(path), arch or spec.architecture, tuple(spec.input_size)


def convert_registry_model(
    name: str, out: str | os.PathLike | None = None, *, accept_license: str | None = None
) -> Path:
    """Convert registry model ``name`` (fetched if needed) to a ``.pth`` state dict.

    Default output: ``<cache>/<name>.pth`` next to the ONNX file, reused while it is newer
    than the ONNX file. Written atomically.
    """
    from nuggy.registry import get_spec
    from nuggy.sources import ensure_model

    spec = get_spec(name)
    src = ensure_model(spec, accept_license=accept_license)
    if out is None:
        out = Path(src).with_name(f"{spec.name}.pth")
        if out.is_file() and out.stat().st_mtime >= Path(src).stat().st_mtime:
            return out  # converted before from the same (verified) ONNX file
    sd = convert_onnx(src, spec.architecture, input_size=tuple(spec.input_size))
    from nuggy.io import atomic_path

    out = Path(out)
    with atomic_path(out) as tmp:
        torch.save(sd, tmp)
    return out
