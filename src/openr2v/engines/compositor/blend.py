"""Per-frame drawing in the encoder's YUV 4:2:0 buffer: warped plates, warped sprites, alpha blends.

Everything here runs once per frame, so it is array code only (numpy and OpenCV's C loops, no
Python per pixel or per row). A frame is built in ``media.encode``'s (H * 3 // 2, W) buffer; the
camera, the staging and the motion of a sprite are folded into one 2x3 affine matrix, so each
picture is resampled exactly once. Blending splits the alpha: opaque pixels are a masked copy
(``np.copyto(where=)``) and only the thin feathered edge gets integer blend math, about a sixth
of the cost of blending a sprite's whole box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from openr2v.media.encode import rgb_to_yuv420, yuv420_planes

__all__ = ["Coverage", "Picture", "Planes", "Resize", "blend", "draw_ellipse", "draw_picture", "drawn_matrix",
           "planes_of", "plate_box", "resize_box", "resize_plate", "rgb_colour_yuv"]

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # Y (H, W), U and V (H/2, W/2)
_ONE = np.uint8(1)


@dataclass(eq=False)
class Picture:
    """A picture with alpha as 4:2:0 planes: y and a are (h, w), u, v and ac (alpha) (h/2, w/2); even sides."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    a: np.ndarray
    ac: np.ndarray = field(init=False)
    # The last resize: a still actor keeps its size for many frames while the camera drifts.
    _last: Resize | None = field(init=False, default=None, repr=False)
    _interleaved: tuple[np.ndarray, np.ndarray] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        h, w = self.a.shape
        if h % 2 or w % 2 or self.y.shape != (h, w):
            raise ValueError(f"a picture needs even sides and matching planes, got {self.y.shape} / {self.a.shape}")
        self.ac = cv2.resize(self.a, (w // 2, h // 2), interpolation=cv2.INTER_AREA)

    @property
    def size(self) -> tuple[int, int]:
        return self.y.shape[1], self.y.shape[0]

    @classmethod
    def from_rgb(cls, rgb: np.ndarray, alpha: np.ndarray) -> Picture:
        y, u, v = (p.copy() for p in yuv420_planes(rgb_to_yuv420(np.ascontiguousarray(rgb))))
        return cls(y, u, v, np.ascontiguousarray(alpha, dtype=np.uint8))

    def resized(self, ow: int, oh: int, *, keep: bool) -> Resize:
        """The picture at ow x oh (chroma at half); ``keep`` remembers it for the next frame. Frames are drawn
        on several threads: a resize is never changed once made, only replaced."""
        last = self._last
        if last is not None and last.size == (ow, oh):
            return last
        # Area averaging when shrinking (no aliasing); bilinear otherwise.
        interp = cv2.INTER_AREA if ow < 0.8 * self.y.shape[1] else cv2.INTER_LINEAR
        full, half = (ow, oh), (ow // 2, oh // 2)
        out = Resize((ow, oh), cv2.resize(self.y, full, interpolation=interp),
                     cv2.resize(self.a, full, interpolation=interp), cv2.resize(self.u, half, interpolation=interp),
                     cv2.resize(self.v, half, interpolation=interp), cv2.resize(self.ac, half, interpolation=interp))
        if keep:
            self._last = out
        return out

    def interleaved(self) -> tuple[np.ndarray, np.ndarray]:
        """Luma and alpha, and the two chroma planes, as 4-channel pictures (channels repeated), made once: OpenCV
        warps 4 channels in about a third of the time of 4 single ones. The luma one has a one-pixel frame (luma
        repeated, alpha 0), so that a constant border is a repeated one for luma and an empty one for alpha."""
        if self._interleaved is None:
            y = cv2.copyMakeBorder(self.y, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
            a = cv2.copyMakeBorder(self.a, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(0,))
            self._interleaved = cv2.merge([y, a, y, a]), cv2.merge([self.u, self.v, self.u, self.v])
        return self._interleaved


@dataclass(eq=False)
class Resize:
    """A picture resized to ``size``: luma and alpha, chroma and chroma alpha at half size."""

    size: tuple[int, int]
    y: np.ndarray
    a: np.ndarray
    u: np.ndarray
    v: np.ndarray
    ac: np.ndarray
    # Coverage of its alpha planes, per plane and visible window (see ``Coverage``).
    _coverage: dict[tuple[int, int, int, int, int], Coverage] = field(default_factory=dict, repr=False)

    def coverage(self, plane: int, window: tuple[int, int, int, int]) -> Coverage:
        """The coverage of the alpha (plane 0 luma, 1 chroma) in ``window`` (rows then columns), made once."""
        key = (plane, *window)
        found = self._coverage.get(key)
        if found is None:
            sy0, sy1, sx0, sx1 = window
            found = self._coverage[key] = Coverage.of((self.a, self.ac)[plane][sy0:sy1, sx0:sx1])
        return found


def planes_of(buf: np.ndarray) -> Planes:
    return yuv420_planes(buf)


def rgb_colour_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """One RGB colour in the buffer's Y'CbCr (BT.709, limited range), the same maths as the encoder's."""
    block = np.empty((2, 2, 3), np.uint8)
    block[:] = rgb
    y, u, v = yuv420_planes(rgb_to_yuv420(block))
    return int(y[0, 0]), int(u[0, 0]), int(v[0, 0])


@dataclass(eq=False)
class Coverage:
    """Where an alpha plane covers: its opaque pixels (a 0/1 mask) and its partial ones (flat indices, their
    rows and columns, and their alpha). Finding the partial pixels is most of a blend's cost, so a picture
    drawn again at the same size keeps its coverage."""

    opaque: np.ndarray
    edge: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    alpha: np.ndarray  # uint16

    @classmethod
    def of(cls, alpha: np.ndarray) -> Coverage:
        # alpha - 1 wraps 0 to 255 and maps 255 to 254: "< 254" picks exactly the partial pixels in one pass.
        # Flat indices are ten times cheaper to find than (row, column) pairs.
        edge = np.flatnonzero((alpha - _ONE) < 254)
        rows, cols = np.divmod(edge, alpha.shape[1])
        return cls(opaque=(alpha == 255).view(np.uint8), edge=edge, rows=rows, cols=cols,
                   alpha=alpha.reshape(-1)[edge].astype(np.uint16))


def blend(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray, coverage: Coverage | None = None) -> None:
    """dst = src * a + dst * (1 - a) in place, ``alpha`` uint8 0..255, exact /255 rounding."""
    cov = coverage or Coverage.of(alpha)
    cv2.copyTo(src, cov.opaque, dst)
    if cov.edge.size:
        a = cov.alpha
        s = src.reshape(-1)[cov.edge]
        # ``dst`` is a window of a frame plane: its pixels are addressed as one run of that plane's memory
        # (take and put on flat indices cost about half of indexing by rows and columns).
        stride = dst.strides[0]
        run = np.lib.stride_tricks.as_strided(dst, ((dst.shape[0] - 1) * stride + dst.shape[1],), (1,))
        at = cov.rows * stride + cov.cols
        acc = s * a + run.take(at) * (255 - a) + 128
        run.put(at, (acc + (acc >> 8)) >> 8)


def plate_box(shape: tuple[int, ...], box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The whole-pixel box of a plate of luma ``shape`` that ``resize_plate`` resizes for ``box``.

    Rounded to whole pixels: a resize is four times cheaper than a sub-pixel warp, and the
    rounding moves the picture by under half an output pixel. Callers place the actors with this
    box, so they stay locked to the plate.
    """
    sy, sx = shape[:2]
    x0, y0 = min(max(0, round(box[0])), sx - 2), min(max(0, round(box[1])), sy - 2)
    x1, y1 = max(x0 + 2, min(sx, round(box[2]))), max(y0 + 2, min(sy, round(box[3])))
    return x0, y0, x1, y1


def resize_plate(src: Planes, box: tuple[int, int, int, int], dst: Planes) -> None:
    """Resize the plate's ``box`` (whole luma pixels, from ``plate_box``) to fill the frame."""
    x0, y0, x1, y1 = box
    y, u, v = dst
    cv2.resize(src[0][y0:y1, x0:x1], (y.shape[1], y.shape[0]), dst=y, interpolation=cv2.INTER_LINEAR)
    cx0, cy0, cx1, cy1 = x0 // 2, y0 // 2, max(x0 // 2 + 1, x1 // 2), max(y0 // 2 + 1, y1 // 2)
    for s_plane, d_plane in ((src[1], u), (src[2], v)):
        cv2.resize(s_plane[cy0:cy1, cx0:cx1], (d_plane.shape[1], d_plane.shape[0]), dst=d_plane,
                   interpolation=cv2.INTER_LINEAR)


def _chroma(m: np.ndarray) -> np.ndarray:
    # Chroma planes are half size both ways: dst/2 = A (src/2) + t/2, so only the translation halves.
    mc = m.copy()
    mc[:, 2] *= 0.5
    return mc


def _box(m: np.ndarray, w: int, h: int, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The even-aligned frame box a w x h picture covers under ``m``, clipped to the frame; None if off it."""
    corners = m @ np.array([[0, w, 0, w], [0, 0, h, h], [1, 1, 1, 1]], dtype=np.float64)
    x0 = max(0, (math.floor(corners[0].min()) - 1) & ~1)
    y0 = max(0, (math.floor(corners[1].min()) - 1) & ~1)
    x1 = min(width, (math.ceil(corners[0].max()) + 2) & ~1)
    y1 = min(height, (math.ceil(corners[1].max()) + 2) & ~1)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def resize_box(size: tuple[int, int], m: np.ndarray, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """Where ``draw_picture`` puts a ``size`` picture by a plain resize (x0, y0, width, height in frame pixels),
    or None when it warps it instead (a rotation; a picture mostly off the frame)."""
    if not (m[0, 1] == 0 and m[1, 0] == 0 and m[0, 0] > 0 and m[1, 1] > 0):
        return None
    w, h = size
    x0, y0 = round(m[0, 2]), round(m[1, 2])
    ow, oh = max(2, 2 * round(w * m[0, 0] / 2)), max(2, 2 * round(h * m[1, 1] / 2))
    vw = min(x0 + ow, frame_shape[1]) - max(x0, 0)
    vh = min(y0 + oh, frame_shape[0]) - max(y0, 0)
    # Mostly visible: a resize (kept while the camera holds its scale). A close-up mostly off the frame is drawn
    # by its visible part instead (``_crop``, else a warp): resizing it whole costs more, and whole-pixel steps of
    # a large picture read as jitter.
    if vw > 0 and vh > 0 and vw * vh >= 0.6 * ow * oh:
        return x0, y0, ow, oh
    return None


@dataclass(frozen=True)
class _Span:
    """One axis of a crop resize: picture pixels [start, start + length) scaled by exactly ``scale`` land at frame
    pixel ``at``; ``offset`` is the translation that achieves (within ``CROP_SLACK`` of the one asked for)."""

    start: int
    length: int
    at: int
    offset: float


CROP_SLACK = 0.1  # pixels: how far a crop resize may place a picture from where it was asked
CROP_MIN_SCALE = 0.8  # a crop is resized bilinearly: not for a picture shrunk more (that needs area averaging)
_CROP_TRIES = 24  # crop starts tried (one picture pixel apart) for the closest placement


def _span(n: int, scale: float, offset: float, lo: int, hi: int) -> _Span | None:
    """The crop of an axis of ``n`` picture pixels (picture pixel i at scale * i + offset) that covers frame pixels
    [lo, hi) by a resize. A resize by ``scale`` of a crop starting at picture pixel c puts c's centre at
    (c + 0.5) * scale - 0.5 from a whole frame pixel: of the crop starts at or before the first one needed, the one
    that lands closest to ``offset`` is taken (None if none is within CROP_SLACK). A start before the picture's
    first pixel pads the crop (colour repeated, alpha 0, as a warp samples outside a picture)."""
    first = max(0, math.floor((lo - offset) / scale) - 1)
    end = min(n, math.ceil((hi - 1 - offset) / scale) + 2)
    if end - first < 2:
        return None
    best: _Span | None = None
    for c in range(first, max(-_CROP_TRIES, first - _CROP_TRIES), -1):
        exact = offset + scale * c - 0.5 * (scale - 1)  # where the crop's first output pixel must be
        at = round(exact)
        if best is None or abs(at - exact) < abs(best.offset - offset):
            best = _Span(c, end - c, at, offset + at - exact)
    return best if best is not None and abs(best.offset - offset) <= CROP_SLACK else None


@dataclass(frozen=True)
class _Crop:
    """A picture mostly off the frame, drawn by resizing only the part that shows (luma spans, then chroma)."""

    x: _Span
    y: _Span
    cx: _Span
    cy: _Span
    scale: tuple[float, float]


def _crop(size: tuple[int, int], m: np.ndarray, frame_shape: tuple[int, ...]) -> _Crop | None:
    """How ``draw_picture`` resizes part of a ``size`` picture for an axis-aligned, not shrinking ``m`` mostly off the
    frame (a resize is about five times cheaper than a warp), or None (it warps)."""
    if not (m[0, 1] == 0 and m[1, 0] == 0 and min(m[0, 0], m[1, 1]) >= CROP_MIN_SCALE):
        return None
    box = _box(m, size[0], size[1], frame_shape[1], frame_shape[0])
    if box is None:
        return None
    x0, y0, x1, y1 = box
    w, h = size
    sx, sy = float(m[0, 0]), float(m[1, 1])
    spans = (_span(w, sx, m[0, 2], x0, x1), _span(h, sy, m[1, 2], y0, y1),
             _span(w // 2, sx, 0.5 * m[0, 2], x0 // 2, x1 // 2), _span(h // 2, sy, 0.5 * m[1, 2], y0 // 2, y1 // 2))
    x, y, cx, cy = spans
    if x is None or y is None or cx is None or cy is None:
        return None
    return _Crop(x, y, cx, cy, (sx, sy))


def drawn_matrix(size: tuple[int, int], m: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """The 3x3 matrix a ``size`` picture is really drawn with for ``m`` (the rounded box of a resize, whose
    pixel centres map by (x + 0.5) * scale - 0.5; a crop resize's placement), so what is drawn over it (a face's
    warp) lines up."""
    box = resize_box(size, m, frame_shape)
    out = np.eye(3)
    out[:2] = m[:2]
    if box is not None:
        x0, y0, ow, oh = box
        sx, sy = ow / size[0], oh / size[1]
        out[:2] = ((sx, 0.0, x0 + 0.5 * (sx - 1)), (0.0, sy, y0 + 0.5 * (sy - 1)))
        return out
    crop = _crop(size, m, frame_shape)
    if crop is not None:
        out[0, 2], out[1, 2] = crop.x.offset, crop.y.offset
    return out


def draw_picture(frame: Planes, pic: Picture, m: np.ndarray, opacity: float = 1.0, *, still: bool = False) -> None:
    """Resample ``pic`` by ``m`` (picture pixels -> frame pixels) and blend it onto the frame.

    An axis-aligned ``m`` whose picture is mostly inside the frame is a plain resize to the rounded box
    (sub-pixel placement error under half a pixel; ``drawn_matrix`` is the matrix really used), clipped. One
    mostly off the frame (a close-up's neighbour) has the part that shows resized at its exact scale, within
    CROP_SLACK of its place; anything else (a rotation) warps only the visible part. A ``still`` picture (drawn
    again next frame) keeps its last resize.
    """
    if opacity <= 0:
        return
    box = resize_box(pic.size, m, frame[0].shape)
    if box is not None:
        _resized(frame, pic, *box, opacity, still)
        return
    crop = _crop(pic.size, m, frame[0].shape)
    if crop is not None:
        _cropped(frame, pic, crop, opacity)
    else:
        _warped(frame, pic, m, opacity, still)


def _resized(frame: Planes, pic: Picture, x0: int, y0: int, ow: int, oh: int, opacity: float,
             keep: bool) -> None:
    fy, fu, fv = frame
    out = pic.resized(ow, oh, keep=keep)
    luma, u, v = out.y, out.u, out.v
    # A kept resize at full opacity blends with its coverage from the last frame.
    cached = out if keep and opacity >= 1 else None
    alpha, alpha_c = _faded(out.a, opacity), _faded(out.ac, opacity)
    _blend_clipped(fy, luma, alpha, x0, y0, cached, 0)
    # Chroma at (x0 // 2, y0 // 2): an odd luma position shifts colour by half a chroma sample (invisible),
    # while luma keeps whole-pixel placement.
    _blend_clipped(fu, u, alpha_c, x0 // 2, y0 // 2, cached, 1)
    _blend_clipped(fv, v, alpha_c, x0 // 2, y0 // 2, cached, 1)


def _blend_clipped(plane: np.ndarray, src: np.ndarray, alpha: np.ndarray, x: int, y: int,
                   kept: Resize | None = None, index: int = 0) -> None:
    h, w = alpha.shape
    sx0, sy0 = max(0, -x), max(0, -y)
    sx1, sy1 = min(w, plane.shape[1] - x), min(h, plane.shape[0] - y)
    if sx1 > sx0 and sy1 > sy0:
        cov = kept.coverage(index, (sy0, sy1, sx0, sx1)) if kept is not None else None
        blend(plane[y + sy0:y + sy1, x + sx0:x + sx1], src[sy0:sy1, sx0:sx1], alpha[sy0:sy1, sx0:sx1], cov)


def _cropped(frame: Planes, pic: Picture, crop: _Crop, opacity: float) -> None:
    fy, fu, fv = frame
    sx, sy = crop.scale
    interp = cv2.INTER_LINEAR

    def part(plane: np.ndarray, x: _Span, y: _Span, alpha: bool = False) -> np.ndarray:
        piece = plane[max(0, y.start):y.start + y.length, max(0, x.start):x.start + x.length]
        if x.start < 0 or y.start < 0:
            piece = cv2.copyMakeBorder(piece, -min(0, y.start), 0, -min(0, x.start), 0,
                                       cv2.BORDER_CONSTANT if alpha else cv2.BORDER_REPLICATE, value=(0,))
        # No output size: the scale is exactly the one given (a size would round it).
        return cv2.resize(piece, None, fx=sx, fy=sy, interpolation=interp)

    alpha = _faded(part(pic.a, crop.x, crop.y, alpha=True), opacity)
    _blend_clipped(fy, part(pic.y, crop.x, crop.y), alpha, crop.x.at, crop.y.at)
    alpha_c = _faded(part(pic.ac, crop.cx, crop.cy, alpha=True), opacity)
    for plane, dst in ((pic.u, fu), (pic.v, fv)):
        _blend_clipped(dst, part(plane, crop.cx, crop.cy), alpha_c, crop.cx.at, crop.cy.at)


def _warped(frame: Planes, pic: Picture, m: np.ndarray, opacity: float, still: bool) -> None:
    fy, fu, fv = frame
    box = _box(m, pic.y.shape[1], pic.y.shape[0], fy.shape[1], fy.shape[0])
    if box is None:
        return
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    mm = m.copy()
    mm[:, 2] -= (x0, y0)
    luma, alpha, u, v = _warp_planes(pic, mm, (w, h), still)
    alpha = _faded(alpha, opacity)
    if not alpha.any():
        return
    blend(fy[y0:y1, x0:x1], luma, alpha)
    alpha_c = cv2.resize(alpha, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    for plane, dst in ((u, fu), (v, fv)):
        blend(dst[y0 // 2:y1 // 2, x0 // 2:x1 // 2], plane, alpha_c)


def _warp_planes(pic: Picture, m: np.ndarray, size: tuple[int, int],
                 still: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Luma, alpha (``size``) and chroma (half) of ``pic`` warped by ``m``. Outside the picture the colour planes
    repeat their edge and alpha is 0: no dark fringe bleeds in. A still picture (drawn again) warps its
    interleaved planes, made once: the same samples, a third of the cost."""
    w, h = size
    mc, linear = _chroma(m), cv2.INTER_LINEAR
    if not still:
        u, v = (cv2.warpAffine(p, mc, (w // 2, h // 2), flags=linear, borderMode=cv2.BORDER_REPLICATE)
                for p in (pic.u, pic.v))
        return (cv2.warpAffine(pic.y, m, size, flags=linear, borderMode=cv2.BORDER_REPLICATE),
                cv2.warpAffine(pic.a, m, size, flags=linear, borderMode=cv2.BORDER_CONSTANT, borderValue=(0,)), u, v)
    ya, uv = pic.interleaved()
    framed = m.copy()
    framed[:, 2] -= m[:, :2].sum(axis=1)  # picture pixel (0, 0) is (1, 1) of the framed one
    warped = cv2.warpAffine(ya, framed, size, flags=linear, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    colour = cv2.warpAffine(uv, mc, (w // 2, h // 2), flags=linear, borderMode=cv2.BORDER_REPLICATE)
    return (cv2.extractChannel(warped, 0), cv2.extractChannel(warped, 1), cv2.extractChannel(colour, 0),
            cv2.extractChannel(colour, 1))


def _faded(alpha: np.ndarray, opacity: float) -> np.ndarray:
    return alpha if opacity >= 1 else (alpha.astype(np.uint16) * round(opacity * 256) >> 8).astype(np.uint8)


def draw_ellipse(frame: Planes, centre: tuple[float, float], axes: tuple[float, float], angle: float,
                 colour: tuple[int, int, int], opacity: float) -> None:
    """A filled, anti-aliased ellipse of a flat Y'CbCr ``colour`` (a mouth opening, say)."""
    fy, fu, fv = frame
    rx, ry = max(axes[0], 0.5), max(axes[1], 0.5)
    r = max(rx, ry) + 2
    x0, y0 = max(0, int(centre[0] - r) & ~1), max(0, int(centre[1] - r) & ~1)
    x1, y1 = min(fy.shape[1], (int(centre[0] + r) + 2) & ~1), min(fy.shape[0], (int(centre[1] + r) + 2) & ~1)
    if x1 <= x0 or y1 <= y0 or opacity <= 0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    shift = 4  # sub-pixel centre and axes: cv2 takes fixed-point coordinates with this many fraction bits
    f = 1 << shift
    cv2.ellipse(mask, (round((centre[0] - x0) * f), round((centre[1] - y0) * f)), (round(rx * f), round(ry * f)),
                angle, 0, 360, (round(255 * min(1.0, opacity)),), -1, cv2.LINE_AA, shift)
    blend(fy[y0:y1, x0:x1], np.full_like(mask, colour[0]), mask)
    mask_c = cv2.resize(mask, ((x1 - x0) // 2, (y1 - y0) // 2), interpolation=cv2.INTER_AREA)
    for plane, value in ((fu, colour[1]), (fv, colour[2])):
        blend(plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2], np.full_like(mask_c, value), mask_c)
