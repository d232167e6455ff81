"""Nuggy web app (Streamlit): drop photos, tune the pipeline, compare, download.

Run with ``nuggy ui`` (``streamlit run`` on this file). Everything above :func:`main` is plain
functions, importable and testable without a page; :func:`main` draws the page and runs when
Streamlit executes this file.

Environment: ``NUGGY_UI_PRESET`` (preset selected at start), ``NUGGY_MAX_PIXELS`` (largest
image decoded, default 40 MP here).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
import streamlit as st

ACCEPTED_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif"]
PREVIEW_SIDE = 900  # longest side of the images drawn in the page
SLIDER_WIDTH = 700  # CSS width of the before/after slider
BACKGROUNDS = ["Checkerboard (transparent)", "Colour", "Image", "Blurred photo"]


# --------------------------------------------------------------------------- pure helpers


def available_models() -> tuple[list[str], list[str]]:
    """(models the app can run: cached or the default; ``nuggy models pull`` lines for the rest)."""
    from nuggy import sources
    from nuggy.registry import DEFAULT_MODEL, list_models

    usable, missing = [], []
    for spec in list_models():
        if spec.name == DEFAULT_MODEL or sources.cached_path(spec) is not None:
            usable.append(spec.name)
        else:
            gate = f" --accept-license {spec.licence_gate}" if spec.licence_gate else ""
            missing.append(f"nuggy models pull {spec.name}{gate}")
    usable.sort(key=lambda n: (n != DEFAULT_MODEL, n))
    return usable, missing


def fba_available() -> bool:
    """Whether FBA Matting's checkpoint is in the model cache."""
    try:
        from nuggy.pipeline.matte import find_fba_weights

        return find_fba_weights() is not None
    except ImportError:
        return False


def default_preset() -> str:
    """``NUGGY_UI_PRESET`` if it names a preset, else ``default``."""
    from nuggy.pipeline.config import PRESETS

    wanted = os.environ.get("NUGGY_UI_PRESET", "default")
    return wanted if wanted in PRESETS else ("default" if "default" in PRESETS else next(iter(PRESETS)))


def result_key(data: bytes, config: Any) -> str:
    """Cache key of one image under one configuration."""
    h = hashlib.sha256(data)
    h.update(repr(config).encode())
    return h.hexdigest()[:32]


def pipeline_for(config: Any):
    """A pipeline for ``config`` whose model session is loaded once per process (shared by every
    configuration that uses the same model)."""
    from nuggy.api import get_pipeline
    from nuggy.pipeline.config import PRESETS
    from nuggy.pipeline.pipeline import Pipeline

    _load_model(config.model)
    if any(config == p.replace(model=config.model) for p in PRESETS.values()):
        return get_pipeline(config)
    return Pipeline(config, download=False)


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def _load_model(name: str) -> Any:
    """Load (fetching the default model if needed) and keep a model across reruns."""
    from nuggy.api import load_model

    return load_model(name)


def cut_out(data: bytes, name: str, config: Any, *, max_pixels: int | None = None):
    """Decode ``data`` and run the pipeline: :class:`nuggy.pipeline.config.Result`."""
    from nuggy.io import decode_image

    rgb = decode_image(data, max_pixels=max_pixels, name=name)  # default: NUGGY_MAX_PIXELS / 100 MP
    return pipeline_for(config).run(rgb)


def describe_error(exc: BaseException) -> str:
    """A one-paragraph message for the page (never a traceback)."""
    from nuggy.io import ImageError
    from nuggy.sources import ModelSourceError

    if isinstance(exc, (ImageError, ModelSourceError)):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory; try a smaller image"
    if isinstance(exc, (ValueError, KeyError, FileNotFoundError, RuntimeError)):
        return str(exc).strip("'\"")
    if isinstance(exc, ImportError):
        return f"a pipeline stage is not part of this build ({exc}); switch it off or pick another preset"
    return f"unexpected error ({type(exc).__name__}: {exc})"


def checkerboard(height: int, width: int, cell: int = 12) -> np.ndarray:
    """Light-grey checkerboard, uint8 H×W×3."""
    y, x = np.ogrid[:height, :width]
    light = ((y // cell) + (x // cell)) % 2 == 0
    out = np.where(light, 236, 200).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=2)


@dataclass(frozen=True)
class BackgroundChoice:
    """What the user picked: ``kind`` is transparent / colour / image / blur."""

    kind: str = "transparent"
    colour: tuple[int, int, int] = (255, 255, 255)
    image: np.ndarray | None = None
    blur: float = 0.01

    def key(self) -> str:
        if self.kind == "image" and self.image is not None:
            return "image:" + hashlib.sha1(self.image.tobytes()).hexdigest()[:16]
        if self.kind == "colour":
            return "colour:{},{},{}".format(*(int(c) for c in self.colour))
        if self.kind == "blur":
            return f"blur:{self.blur:g}"
        return "transparent"

    def background(self):
        from nuggy.pipeline.compose import Background

        if self.kind == "colour":
            return Background("colour", colour=self.colour)
        if self.kind == "image" and self.image is not None:
            return Background("image", image=self.image)
        if self.kind == "blur":
            return Background("blur", blur_sigma=self.blur)
        return Background()


def render(result: Any, choice: BackgroundChoice) -> np.ndarray:
    """The cut-out as downloaded: RGBA for a transparent background, else RGB on it."""
    from nuggy.pipeline.compose import compose

    return compose(result.image, result.alpha, foreground=result.foreground, background=choice.background())


def on_screen(rendered: np.ndarray) -> np.ndarray:
    """RGB for the page: an RGBA cut-out is shown on a checkerboard."""
    if rendered.shape[2] == 3:
        return rendered
    a = rendered[..., 3:4].astype(np.float32) / 255.0
    board = checkerboard(*rendered.shape[:2]).astype(np.float32)
    return (rendered[..., :3] * a + board * (1.0 - a) + 0.5).astype(np.uint8)


def preview(array: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    """Downscale so the longest side is at most ``side`` (page images only)."""
    from PIL import Image

    h, w = array.shape[:2]
    if max(h, w) <= side:
        return array
    im = Image.fromarray(array)
    im.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(im)


def _data_url(array: np.ndarray, fmt: str = "JPEG") -> str:
    from nuggy.io import encode_image

    mime = "jpeg" if fmt == "JPEG" else fmt.lower()
    data = encode_image(array, fmt, quality=88)
    return f"data:image/{mime};base64," + base64.b64encode(data).decode("ascii")


def comparison_html(before: np.ndarray, after: np.ndarray, *, width: int = SLIDER_WIDTH) -> tuple[str, int]:
    """A before/after slider (HTML + CSS, one line of JS) and the height it needs in pixels."""
    before, after = preview(before), preview(after)
    h, w = before.shape[:2]
    height = round(width * h / w) + 8
    html = f"""<!doctype html><html><head><style>
html,body{{margin:0;padding:0;background:transparent;font-family:sans-serif}}
.cmp{{position:relative;width:{width}px;max-width:100%;--pos:50%;user-select:none}}
.cmp img{{display:block;width:100%;height:auto}}
.cmp img.after{{position:absolute;top:0;left:0;clip-path:inset(0 0 0 var(--pos))}}
.cmp .bar{{position:absolute;top:0;bottom:0;left:var(--pos);width:2px;margin-left:-1px;
  background:#fff;box-shadow:0 0 3px rgba(0,0,0,.7);pointer-events:none}}
.cmp .tag{{position:absolute;top:6px;padding:1px 6px;border-radius:3px;font-size:12px;
  background:rgba(0,0,0,.55);color:#fff;pointer-events:none}}
.cmp input{{position:absolute;inset:0;width:100%;height:100%;margin:0;opacity:0;cursor:ew-resize}}
</style></head><body>
<div class="cmp" id="cmp" aria-label="before and after comparison">
<img class="before" alt="before" src="{_data_url(before)}">
<img class="after" alt="after" src="{_data_url(after)}">
<div class="bar"></div><span class="tag" style="left:6px">before</span>
<span class="tag" style="right:6px">after</span>
<input type="range" min="0" max="100" value="50" step="0.5" aria-label="slider"
 oninput="document.getElementById('cmp').style.setProperty('--pos', this.value + '%')">
</div></body></html>"""
    return html, height


def show_html(html: str, height: int) -> None:
    """Embed our own generated HTML (never user-provided markup) in an iframe."""
    if hasattr(st, "iframe"):
        st.iframe(html, height=height)
    else:  # Streamlit before st.iframe
        import streamlit.components.v1 as components

        components.html(html, height=height)


def output_name(upload_name: str, suffix: str, taken: set[str]) -> str:
    """``cat.jpg`` → ``cat.png`` (``cat-2.png`` if taken); folder parts are dropped."""
    stem = PurePath(upload_name.replace("\\", "/")).stem or "image"
    name = f"{stem}{suffix}"
    n = 2
    while name in taken:
        name = f"{stem}-{n}{suffix}"
        n += 1
    taken.add(name)
    return name


def build_zip(files: list[tuple[str, bytes]]) -> bytes:
    """A ZIP of ``(name, data)`` pairs (PNG data is stored, not recompressed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files:
            zf.writestr(name, data)
    return buf.getvalue()


def format_timings(timings: dict[str, float]) -> str:
    total = sum(timings.values())
    parts = " · ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items())
    return f"{parts} · total {total * 1000:.0f} ms"


# --------------------------------------------------------------------------- page state


def _store() -> OrderedDict:
    """Per-session results: key → ``{"name", "result" | "error", "png": {bg key: bytes}}``."""
    if "nuggy_results" not in st.session_state:
        st.session_state["nuggy_results"] = OrderedDict()
    return st.session_state["nuggy_results"]


def _trim(store: OrderedDict, keep: int) -> None:
    while len(store) > keep:
        store.popitem(last=False)


def _rendered(entry: dict, choice: BackgroundChoice) -> np.ndarray:
    """The full-size cut-out on ``choice``, kept for the latest background of each image."""
    k = choice.key()
    if entry.get("bg") != k:
        entry.update(bg=k, rendered=render(entry["result"], choice), png={})
    return entry["rendered"]


def _encoded(entry: dict, choice: BackgroundChoice) -> bytes:
    """PNG bytes of :func:`_rendered` (encoded once per background)."""
    from nuggy.io import encode_image

    rendered = _rendered(entry, choice)
    cache = entry["png"]
    if choice.key() not in cache:
        cache[choice.key()] = encode_image(rendered, "PNG")
    return cache[choice.key()]


def _mask_png(entry: dict) -> bytes:
    from nuggy.io import encode_image

    if "mask" not in entry:
        entry["mask"] = encode_image(entry["result"].alpha_u8(), "PNG")
    return entry["mask"]


# --------------------------------------------------------------------------- page


def _sidebar() -> tuple[Any, BackgroundChoice]:
    """Model, preset and stage controls (→ a PipelineConfig) and the background choice."""
    from nuggy.io import ImageError, decode_image
    from nuggy.pipeline.config import PRESETS
    from nuggy.pipeline.settings import build_config

    sb = st.sidebar
    sb.header("Model")
    usable, missing = available_models()
    model = sb.selectbox(
        "Model",
        usable,
        key="model",
        help="registry models in the cache (and the default, fetched on first use)",
    )
    if missing:
        sb.caption("Not cached: " + "; ".join(f"`{m}`" for m in missing))
    names = list(PRESETS)
    preset_name = sb.selectbox(
        "Preset",
        names,
        index=names.index(default_preset()),
        key="preset",
        help="stage settings below start from the preset",
    )
    base = PRESETS[preset_name]
    tag = f"{preset_name}"  # widget keys per preset: switching preset resets the stages

    sb.header("Stages")
    values = stage_widgets(sb, base, tag, fba=fba_available())
    config = build_config(preset_name, model=model, **values)

    sb.header("Background")
    kind = sb.radio("Background", BACKGROUNDS, key="bg_kind", label_visibility="collapsed")
    choice = BackgroundChoice()
    if kind == "Colour":
        hexcol = sb.color_picker("Colour", "#ffffff", key="bg_colour")
        choice = BackgroundChoice("colour", colour=tuple(int(hexcol[i : i + 2], 16) for i in (1, 3, 5)))
    elif kind == "Image":
        up = sb.file_uploader("Background image", type=ACCEPTED_TYPES, key="bg_image")
        if up is not None:
            try:
                choice = BackgroundChoice("image", image=decode_image(up.getvalue(), name=up.name))
            except ImageError as exc:
                sb.error(str(exc))
    elif kind == "Blurred photo":
        strength = sb.slider("Blur strength", 0.002, 0.05, 0.01, 0.002, format="%.3f", key="bg_blur")
        choice = BackgroundChoice("blur", blur=strength)
    return config, choice


#: Settings the page does not offer: server resources and paths.
UI_HIDDEN = frozenset({"threads", "matting_weights"})


def stage_widgets(sb: Any, base: Any, tag: str, *, fba: bool) -> dict[str, Any]:
    """One widget per setting of :data:`nuggy.pipeline.settings.SETTINGS` (less
    :data:`UI_HIDDEN`), starting from ``base``; returns the chosen values. Keys are
    ``name:tag`` so that switching preset resets them."""
    from nuggy.pipeline.settings import SETTINGS, choices_of, kind_of

    values: dict[str, Any] = {}
    for s in SETTINGS:
        if s.name in UI_HIDDEN:
            continue
        key = f"{s.name}:{tag}"
        start = getattr(base, s.name)
        off = s.needs is not None and values.get(s.needs) in (False, "none")
        kind = kind_of(s.name)
        if kind == "bool":
            values[s.name] = sb.checkbox(s.label, value=bool(start), key=key, help=s.help)
        elif kind == "choice":
            options = [c for c in choices_of(s.name) if not (s.name == "matting" and c == "fba" and not fba)]
            if start not in options:
                start = "auto" if "auto" in options else options[0]
            extra = "" if fba or s.name != "matting" else "; fba needs FBA.pth in the model cache"
            values[s.name] = sb.selectbox(
                s.label, options, index=options.index(start), key=key, help=s.help + extra
            )
        elif s.steps:
            labels = [f"{v:g}" for v in s.steps]  # strings: Streamlit matches floats loosely
            near = min(labels, key=lambda v: abs(np.log10(float(v)) - np.log10(start)))
            values[s.name] = float(
                sb.select_slider(s.label, labels, value=near, key=key, disabled=off, help=s.help)
            )
        elif s.ui:
            lo, hi, step = s.ui
            if kind == "int":
                v = sb.slider(
                    s.label, int(lo), int(hi), int(start or 0), int(step), key=key, disabled=off, help=s.help
                )
            else:
                v = sb.slider(
                    s.label,
                    float(lo),
                    float(hi),
                    float(start or 0.0),
                    float(step),
                    key=key,
                    disabled=off,
                    help=s.help,
                    format="%.4f" if step < 0.001 else "%.3f",
                )
            values[s.name] = None if (s.zero_is_none and v == 0) else v
    return values


def _process(files: list, config: Any, store: OrderedDict) -> list[str]:
    """Run every upload not yet in ``store``; returns the keys in upload order."""
    keys = [result_key(f.getvalue(), config) for f in files]
    todo = [(f, k) for f, k in zip(files, keys) if k not in store]
    if todo:
        bar = st.progress(0.0, text="Starting…")
        for i, (f, k) in enumerate(todo):
            bar.progress(i / len(todo), text=f"Cutting out {f.name} ({i + 1}/{len(todo)})…")
            try:
                store[k] = {"name": f.name, "result": cut_out(f.getvalue(), f.name, config), "config": config}
            except Exception as exc:  # noqa: BLE001 - shown in the page, never a traceback
                store[k] = {"name": f.name, "error": describe_error(exc)}
        bar.empty()
    for k in keys:
        store.move_to_end(k)
    _trim(store, max(12, len(keys)))
    return keys


def _show_one(entry: dict, choice: BackgroundChoice, idx: int, *, hints: bool = False) -> None:
    if hints and "result" in entry and "config" in entry:
        from nuggy.ui.hint_canvas import hint_panel

        config = entry["config"]
        entry = hint_panel(
            entry, lambda rgb, h: pipeline_for(config).run(rgb, hints=h), idx=idx, preview_side=PREVIEW_SIDE
        )
    if "error" in entry:
        msg = entry["error"]
        st.error(msg if msg.startswith(entry["name"]) else f"{entry['name']}: {msg}")
        return
    result = entry["result"]
    h, w = result.alpha.shape
    shown = on_screen(preview(_rendered(entry, choice)))
    html, height = comparison_html(result.image, shown)
    show_html(html, height)
    st.caption(f"{entry['name']} — {w}×{h} — {format_timings(result.timings)}")
    panels = [("Alpha", result.alpha_u8())]
    if result.trimap is not None:
        panels.append(("Trimap", result.trimap))
    panels.append(("Cut-out", shown))
    for col, (title, img) in zip(st.columns(len(panels)), panels):
        _image(col, preview(img), title)
    transparent = choice.kind == "transparent" or (choice.kind == "image" and choice.image is None)
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download PNG" + (" (transparent)" if transparent else " (on background)"),
        _encoded(entry, choice),
        file_name=output_name(entry["name"], ".png", set()),
        mime="image/png",
        key=f"dl:{idx}",
        type="primary",
    )
    c2.download_button(
        "Download mask",
        _mask_png(entry),
        file_name=output_name(entry["name"], ".mask.png", set()),
        mime="image/png",
        key=f"dlmask:{idx}",
    )


def _image(where: Any, img: np.ndarray, caption: str) -> None:
    """``st.image`` at the column's width (``width="stretch"`` where this Streamlit has it)."""
    try:
        where.image(img, caption=caption, width="stretch")
    except Exception:  # noqa: BLE001 - older Streamlit: width must be an int
        where.image(img, caption=caption, use_container_width=True)


def main() -> None:
    """Draw the page."""
    st.set_page_config(page_title="Nuggy — cut-outs", page_icon="✂️", layout="wide")
    st.title("Nuggy")
    st.caption(
        "Cut subjects out of photos: segmentation, edge refinement, island cleaning, "
        "matting, colour decontamination."
    )
    try:
        config, choice = _sidebar()
    except Exception as exc:  # noqa: BLE001
        st.error(f"Cannot set up the pipeline: {describe_error(exc)}")
        return
    files = st.file_uploader(
        "Drop photos here",
        type=ACCEPTED_TYPES,
        accept_multiple_files=True,
        key="uploads",
        help="one or many images; each is processed once "
        "per setting and kept while you adjust the background",
    )
    if not files:
        st.info("Drop one or more photos (PNG, JPEG, WebP, BMP, TIFF, GIF) to cut them out.")
        return
    try:
        _load_model(config.model)
    except Exception as exc:  # noqa: BLE001
        st.error(f"Cannot load model {config.model!r}: {describe_error(exc)}")
        return
    store = _store()
    keys = _process(files, config, store)
    entries = [store[k] for k in keys]
    good = [e for e in entries if "result" in e]
    if len(entries) > 1:
        st.subheader(f"{len(good)} of {len(entries)} images cut out")
        if good:
            taken: set[str] = set()
            payload = [(output_name(e["name"], ".png", taken), _encoded(e, choice)) for e in good]
            st.download_button(
                "Download all (ZIP)",
                build_zip(payload),
                file_name="nuggy-cutouts.zip",
                mime="application/zip",
                key="dl:zip",
                type="primary",
            )
    if len(entries) == 1:
        _show_one(entries[0], choice, 0, hints=True)
        return
    labels = [output_name(e["name"], "", set()) + (" ⚠" if "error" in e else "") for e in entries]
    if len(entries) <= 8:
        for i, (tab, e) in enumerate(zip(st.tabs(labels), entries)):
            with tab:
                _show_one(e, choice, i)
    else:
        for i, (label, e) in enumerate(zip(labels, entries)):
            with st.expander(label, expanded=i == 0):
                _show_one(e, choice, i)


if __name__ == "__main__":
    main()
