"""ONNX Runtime predictor: providers, threads, one cached session per (file, providers, threads)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from .preprocess import predict_flip_tta, to_model_input, to_probability

__all__ = ["available_cores", "choose_providers", "get_session", "OnnxPredictor"]

#: Accelerated providers tried in this order before the CPU.
PREFERRED_PROVIDERS = (
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
)


def available_cores() -> int:
    """CPU cores this process may use (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def choose_providers(requested: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """Execution providers to use.

    ``requested`` (or ``NUGGY_PROVIDERS``, comma-separated) wins and is validated against what
    this onnxruntime build offers; otherwise the first available accelerated provider, then CPU.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested is None:
        env = os.environ.get("NUGGY_PROVIDERS")
        requested = tuple(p.strip() for p in env.split(",") if p.strip()) if env else None
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ValueError(
                f"execution provider(s) {', '.join(missing)} not available in this onnxruntime "
                f"build; available: {', '.join(available)}"
            )
        return list(requested)
    chosen = [p for p in PREFERRED_PROVIDERS if p in available]
    return chosen + ["CPUExecutionProvider"]


_SESSIONS: dict[tuple, object] = {}
_SESSIONS_LOCK = threading.Lock()


def get_session(path: str | os.PathLike, *, providers=None, threads: int | None = None):
    """A cached ``onnxruntime.InferenceSession`` for ``path`` (one per process and settings)."""
    import onnxruntime as ort

    path = str(Path(path).resolve())
    provs = tuple(choose_providers(providers))
    n = threads or available_cores()
    key = (path, provs, n)
    with _SESSIONS_LOCK:
        sess = _SESSIONS.get(key)
        if sess is None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = n
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3
            # No busy-waiting between ops: batch runs decode and encode in threads beside
            # inference, and spinning workers would steal their cores.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                sess = ort.InferenceSession(path, sess_options=opts, providers=list(provs))
            except Exception as exc:  # noqa: BLE001 - a bad file must name itself
                raise RuntimeError(
                    f"{path}: ONNX Runtime cannot load this model ({exc}); delete it and fetch it "
                    "again (nuggy models pull NAME --force)"
                ) from None
            _SESSIONS[key] = sess
        return sess


class OnnxPredictor:
    """Runs one salient-object ONNX model; pre/post-processing from its spec.

    Args:
        path: the .onnx file.
        spec: the model's :class:`~nuggy.registry.ModelSpec` (input size, mean/std,
            activation, output index).
        providers: ONNX Runtime providers (``None``: automatic).
        threads: intra-op threads (``None``: all available cores).
    """

    def __init__(self, path: str | os.PathLike, spec, *, providers=None, threads=None) -> None:
        self.path = Path(path)
        self.spec = spec
        self.session = get_session(self.path, providers=providers, threads=threads)
        inputs = self.session.get_inputs()
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        if len(shape) == 4 and all(isinstance(d, int) for d in shape[2:]):
            if tuple(shape[2:]) != tuple(spec.input_size):
                raise ValueError(
                    f"{path}: the model takes {shape[2]}×{shape[3]} input but its spec says "
                    f"{spec.input_size[0]}×{spec.input_size[1]}"
                )
        self.output_name = self.session.get_outputs()[spec.output_index].name
        # fp16 models take fp16 input
        self.input_dtype = np.float16 if "float16" in inputs[0].type else np.float32

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.spec.input_size)

    def run_tensor(self, x: np.ndarray) -> np.ndarray:
        """Run a prepared 1×3×h×w float32 input; returns the h×w probability map (float32)."""
        out = self.session.run([self.output_name], {self.input_name: x.astype(self.input_dtype)})[0]
        return to_probability(out, self.spec.activation)

    def predict(self, image: np.ndarray, *, flip: bool = False) -> np.ndarray:
        """Probability map at model resolution (float32 h×w in [0, 1]) for RGB uint8 H×W×3.

        ``flip``: also predict the horizontally flipped input, un-flip it and average (TTA).
        """
        return predict_flip_tta(self.run_tensor, to_model_input(image, self.spec), flip=flip)
