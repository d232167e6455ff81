"""The HTTP API's hints: ``box`` / ``keep`` / ``drop`` query parameters and a ``hints`` upload."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: Most clicks of one kind in one request.
MAX_CLICKS = 200


@dataclass(frozen=True, eq=False)
class RequestHints:
    """A request's hints, parsed before the upload is read and checked against the image size
    once its header is probed (errors are ``ValueError``s: 422)."""

    box: tuple[int, int, int, int] | None = None
    keep: tuple[tuple[int, int], ...] = ()
    drop: tuple[tuple[int, int], ...] = ()
    strokes: np.ndarray | None = None

    @classmethod
    def from_query(
        cls, box: str | None, keep: list[str] | None, drop: list[str] | None
    ) -> RequestHints | None:
        if box is None and not keep and not drop:
            return cls()
        from nuggy.pipeline.hints import Hints, parse_box, parse_point

        for name, pts in (("keep", keep), ("drop", drop)):
            if pts and len(pts) > MAX_CLICKS:
                raise ValueError(f"{name}: at most {MAX_CLICKS} clicks per request")
        h = Hints(
            box=parse_box(box, option="box=") if box else None,
            keep=tuple(parse_point(t, option="keep=") for t in keep or ()),
            drop=tuple(parse_point(t, option="drop=") for t in drop or ()),
        )
        return cls(h.box, h.keep, h.drop)

    def with_image(self, data: bytes | None, shape: tuple[int, int]) -> RequestHints | None:
        """Add the uploaded hint image (``data``) and check everything against ``shape``
        (H, W); ``None`` when the request has no hints at all."""
        strokes = None
        if data is not None:
            import io
            import warnings

            from PIL import Image

            from nuggy.pipeline.hints import HintImageError, decode_hint_image

            if not data:
                raise HintImageError("hints: the hint image upload is empty (0 bytes)")
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    im = Image.open(io.BytesIO(data))
                    if im.size != (shape[1], shape[0]):
                        raise HintImageError(
                            f"hints: the hint image is {im.size[0]}×{im.size[1]} but the photo is "
                            f"{shape[1]}×{shape[0]}; draw it on the photo itself (same size)"
                        )
                    im.load()
            except HintImageError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise HintImageError(f"hints: cannot read the hint image ({exc}); send a PNG") from None
            strokes = decode_hint_image(im, shape=shape, name="hints")
        out = replace(self, strokes=strokes)
        built = out.build()
        if built.empty:
            return None
        built.check(shape, name="hints")
        return out

    def build(self):
        from nuggy.pipeline.hints import Hints

        return Hints(box=self.box, keep=self.keep, drop=self.drop, strokes=self.strokes)
