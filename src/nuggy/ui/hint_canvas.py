"""The web app's hint canvas: draw a box or keep / drop strokes on the photo.

A small Streamlit component (``st.components.v2``, inline HTML/JS, no files) draws the photo
and the strokes so far on a ``<canvas>``; each finished stroke (pointer down → up) is sent to
Python as ``{"mode": "keep" | "drop" | "box", "radius": px, "points": [[x, y], …]}`` in the
canvas's pixels. The strokes of one photo live in the session as a list (undo pops the last);
:func:`hints_from_strokes` turns them into :class:`nuggy.pipeline.hints.Hints` (the last box,
and one hint image with every keep / drop stroke), the same value the CLI's ``--box`` /
``--hints`` give, so a downloaded hint image replays the fix from the command line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

MODES = ("keep", "drop", "box")

_JS = """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  let root = parentElement.querySelector('.nuggy-hints');
  if (!root) {
    root = document.createElement('div');
    root.className = 'nuggy-hints';
    parentElement.appendChild(root);
  }
  root.innerHTML = '';
  const W = data.width, H = data.height;
  const canvas = document.createElement('canvas');
  canvas.width = W; canvas.height = H;
  canvas.className = 'nuggy-hint-canvas';
  canvas.setAttribute('data-testid', 'nuggy-hint-canvas');
  canvas.setAttribute('data-strokes', String(data.strokes.length));
  canvas.style.width = '100%'; canvas.style.maxWidth = W + 'px';
  canvas.style.touchAction = 'none'; canvas.style.cursor = 'crosshair';
  root.appendChild(canvas);
  const ctx = canvas.getContext('2d');
  const img = new Image();
  const colours = {keep: 'rgba(0,200,70,0.75)', drop: 'rgba(230,30,30,0.75)', box: 'rgba(30,120,255,0.95)'};
  function stroke(s) {
    const pts = s.points;
    if (!pts.length) return;
    ctx.strokeStyle = colours[s.mode]; ctx.fillStyle = colours[s.mode];
    if (s.mode === 'box') {
      const a = pts[0], b = pts[pts.length - 1];
      ctx.lineWidth = 2;
      ctx.strokeRect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
      return;
    }
    ctx.lineWidth = 2 * s.radius; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
    ctx.beginPath(); ctx.moveTo(pts[0][0], pts[0][1]);
    for (const p of pts) ctx.lineTo(p[0], p[1]);
    if (pts.length === 1) { ctx.arc(pts[0][0], pts[0][1], s.radius, 0, 2 * Math.PI); ctx.fill(); }
    else ctx.stroke();
  }
  let current = null;
  function redraw() {
    ctx.clearRect(0, 0, W, H);
    if (img.complete && img.naturalWidth) ctx.drawImage(img, 0, 0, W, H);
    for (const s of data.strokes) stroke(s);
    if (current) stroke(current);
  }
  img.onload = redraw;
  img.src = data.src;
  function pos(e) {
    const r = canvas.getBoundingClientRect();
    return [Math.round((e.clientX - r.left) * W / r.width), Math.round((e.clientY - r.top) * H / r.height)];
  }
  canvas.addEventListener('pointerdown', (e) => {
    current = {mode: data.mode, radius: data.radius, points: [pos(e)]};
    try { canvas.setPointerCapture(e.pointerId); } catch (err) {}
    redraw();
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!current) return;
    current.points.push(pos(e));
    redraw();
  });
  const finish = (e) => {
    if (!current) return;
    current.points.push(pos(e));
    const s = current; current = null;
    setTriggerValue('stroke', s);
  };
  canvas.addEventListener('pointerup', finish);
  canvas.addEventListener('pointercancel', () => { current = null; redraw(); });
  redraw();
}
"""

_COMPONENT = None


def _component():
    """The registered component (registered once per process)."""
    global _COMPONENT
    if _COMPONENT is None:
        import streamlit as st

        # in the page DOM (not a shadow root), so the canvas is reachable like any element
        _COMPONENT = st.components.v2.component("nuggy_hint_canvas", js=_JS, isolate_styles=False)
    return _COMPONENT


def canvas(
    preview_rgb: np.ndarray, strokes: Sequence[dict], *, mode: str, radius: int, scale: float, key: str
) -> dict | None:
    """Draw the canvas; return the stroke just finished (full-image pixels) or ``None``.

    Args:
        preview_rgb: the photo as shown (uint8 h×w×3).
        strokes: the strokes so far, in full-image pixels.
        mode: ``keep``, ``drop`` or ``box``.
        radius: brush radius in full-image pixels.
        scale: full-image pixels per preview pixel.
        key: the widget key (one per photo).
    """
    import base64

    from nuggy.io import encode_image

    h, w = preview_rgb.shape[:2]
    src = "data:image/jpeg;base64," + base64.b64encode(encode_image(preview_rgb, "JPEG", quality=88)).decode(
        "ascii"
    )
    shown = [to_preview(s, scale) for s in strokes]
    res = _component()(
        data={
            "src": src,
            "width": w,
            "height": h,
            "strokes": shown,
            "mode": mode,
            "radius": max(1, round(radius / scale)),
        },
        key=key,
        on_stroke_change=lambda: None,
        height="content",
    )
    event = getattr(res, "stroke", None)
    if not event:
        return None
    return from_preview(event, scale)


def to_preview(stroke: dict, scale: float) -> dict:
    return {
        "mode": stroke["mode"],
        "radius": max(1, round(stroke["radius"] / scale)),
        "points": [[round(x / scale), round(y / scale)] for x, y in stroke["points"]],
    }


def from_preview(event: dict, scale: float) -> dict | None:
    """A canvas event as a stroke in full-image pixels (``None`` if malformed)."""
    try:
        mode = str(event["mode"])
        radius = float(event["radius"])
        points = [(float(x), float(y)) for x, y in event["points"]]
    except (KeyError, TypeError, ValueError):
        return None
    if mode not in MODES or not points:
        return None
    return {
        "mode": mode,
        "radius": max(1, round(radius * scale)),
        "points": [[round(x * scale), round(y * scale)] for x, y in points],
    }


def hints_from_strokes(strokes: Sequence[dict], shape: Sequence[int]):
    """The :class:`~nuggy.pipeline.hints.Hints` of a stroke list on an image of ``shape``
    (H, W): the last box (clipped to the image; a box under 2 px wide is ignored) and one hint
    image with every keep / drop stroke (later strokes drawn over earlier ones). ``None`` when
    there are no strokes."""
    import cv2

    from nuggy.pipeline.hints import DROP, KEEP, NO_HINT, Hints

    h, w = int(shape[0]), int(shape[1])
    img = np.full((h, w), NO_HINT, np.uint8)
    box = None
    drawn = False
    for s in strokes:
        pts = np.array(s["points"], np.float64).reshape(-1, 2)
        if s["mode"] == "box":
            (ax, ay), (bx, by) = pts[0], pts[-1]
            x0, x1 = sorted((int(np.clip(round(ax), 0, w)), int(np.clip(round(bx), 0, w))))
            y0, y1 = sorted((int(np.clip(round(ay), 0, h)), int(np.clip(round(by), 0, h))))
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                box = (x0, y0, x1, y1)
            continue
        value = KEEP if s["mode"] == "keep" else DROP
        r = max(1, int(s["radius"]))
        q = np.round(pts).astype(np.int32)
        q[:, 0] = np.clip(q[:, 0], 0, w - 1)
        q[:, 1] = np.clip(q[:, 1], 0, h - 1)
        if len(q) == 1 or (q == q[0]).all():
            cv2.circle(img, (int(q[0, 0]), int(q[0, 1])), r, int(value), thickness=-1)
        else:
            cv2.polylines(img, [q.reshape(-1, 1, 2)], False, int(value), thickness=2 * r, lineType=cv2.LINE_8)
        drawn = True
    if box is None and not drawn:
        return None
    return Hints(box=box, strokes=img if drawn else None)


def strokes_key(strokes: Sequence[dict]) -> str:
    """A short digest of a stroke list (cache key of the hinted result)."""
    return hashlib.sha1(json.dumps(list(strokes), sort_keys=True).encode()).hexdigest()[:16]


def replay_command(name: str, hints) -> str:
    """The ``nuggy remove`` line that replays ``hints`` with the downloaded hint image."""
    from pathlib import PurePath

    stem = PurePath(name.replace("\\", "/")).stem or "image"
    parts = ["nuggy", "remove", name]
    if hints.box is not None:
        parts += ["--box", ",".join(map(str, hints.box))]
    if hints.strokes is not None:
        parts += ["--hints", f"{stem}.hints.png"]
    return " ".join(parts)


def hint_panel(entry: dict, run, *, idx: int, preview_side: int) -> dict:
    """The "Fix with hints" panel of one photo; returns the entry to show (``entry`` itself
    without hints, else a derived entry holding the hinted result, cached per stroke list).

    Args:
        entry: the app's entry (``name``, ``result``).
        run: ``f(rgb, hints) -> Result`` (the app's pipeline for this entry's settings).
        idx: index of the photo on the page (widget keys).
        preview_side: longest side of the canvas.
    """
    import streamlit as st

    from nuggy.io import encode_image
    from nuggy.pipeline.hints import render_hint_image
    from nuggy.ui.app import preview

    result = entry["result"]
    rgb = result.image
    h, w = rgb.shape[:2]
    key = f"hints:{idx}:{entry['name']}:{h}x{w}"
    strokes: list = st.session_state.setdefault(key, [])
    if not st.toggle(
        "Fix with hints: draw a box, or paint what to keep / drop", key=f"{key}:on", value=bool(strokes)
    ):
        return entry
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
        label = c1.radio(
            "Tool",
            ["Keep (paint the subject)", "Drop (paint background)", "Box"],
            key=f"{key}:mode",
            horizontal=True,
        )
        mode = MODES[["Keep", "Drop", "Box"].index(label.split(" ")[0])]
        diag = (h * h + w * w) ** 0.5
        radius = c2.slider(
            "Brush radius (px)", 1, max(4, round(diag / 20)), max(2, round(diag / 150)), key=f"{key}:radius"
        )
        if c3.button("Undo", key=f"{key}:undo", disabled=not strokes):
            strokes.pop()
        if c4.button("Clear", key=f"{key}:clear", disabled=not strokes):
            strokes.clear()
        shown = preview(rgb, preview_side)
        scale = w / shown.shape[1]
        new = canvas(
            shown, strokes, mode=mode, radius=radius, scale=scale, key=f"{key}:canvas:{len(strokes)}"
        )
        if new is not None:
            strokes.append(new)
            st.rerun()
        hints = hints_from_strokes(strokes, (h, w))
        if hints is None:
            st.caption(
                "Green strokes keep, red strokes drop, a blue box bounds the subject; "
                "the cut-out updates after each stroke."
            )
            return entry
        cache = entry.setdefault("hinted", {})
        k = strokes_key(strokes)
        if k not in cache:
            try:
                with st.spinner("Applying the hints…"):
                    cache[k] = {"name": entry["name"], "result": run(rgb, hints), "png": {}}
            except Exception as exc:  # noqa: BLE001 - shown in the page
                from nuggy.ui.app import describe_error

                cache[k] = {"name": entry["name"], "error": describe_error(exc)}
            while len(cache) > 8:
                cache.pop(next(iter(cache)))
        st.caption(
            f"{len(strokes)} stroke{'s' * (len(strokes) != 1)} · replay: "
            f"`{replay_command(entry['name'], hints)}`"
        )
        st.download_button(
            "Download hint image",
            encode_image(render_hint_image(hints, (h, w)), "PNG"),
            file_name=f"{entry['name'].rsplit('.', 1)[0]}.hints.png",
            mime="image/png",
            key=f"{key}:dl",
            disabled=hints.strokes is None,
        )
        return cache[k]
