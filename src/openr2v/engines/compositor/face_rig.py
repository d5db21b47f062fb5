"""A photo's face, animated by warping the photo itself: a triangle mesh over its landmarks.

The mesh (built once per picture of the cut-out and kept on it) joins a subset of the face mesh's landmarks
(lips, lids, irises, brows, nose, oval, cheeks) with a ring around the head and a fixed border
around the face's box, Delaunay-triangulated. Each frame moves the landmarks (jaw drop and lip
parting, width and rounding from the visemes; upper lids onto the lower ones for a blink; irises
for gaze; then tilt, nod and a parallax turn of the whole head about the neck) and warps the
frame's face box piecewise-affinely from the rest mesh to the moved one, after the cut-out is
drawn, so the face is resampled at the size it is seen. The border stays put: the warp meets the
unwarped picture seamlessly. The parted lips' gap is painted by ``mouth``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from openr2v.engines.compositor import face_mesh as fm
from openr2v.engines.compositor.blend import Picture, Planes
from openr2v.engines.compositor.blink import LidLook, lid_look, paint_lid
from openr2v.engines.compositor.head import HeadPose
from openr2v.engines.compositor.mouth import MouthLook, mouth_look, paint_interior
from openr2v.engines.compositor.visemes import Visemes

__all__ = ["FaceParts", "FacePart", "FaceRig", "Mesh", "Warp", "face_mesh_of"]

MIN_SCREEN_FACE = 28  # output pixels of face height below which nothing is warped
GRID_ROWS = 72  # the warp's map is computed on at most this many rows, then scaled up (it is smooth)
OPEN_GAP = 0.10  # of the face height: the inner lips' gap at full opening
WIDTH = 0.05  # of the face width: how far each mouth corner moves at full spread
ROUND = 0.05  # of the face width: how far each corner comes in for a rounded mouth
BLINK = 1.0  # how far the upper lid travels toward the lower one at a full blink (all the way: shut)
GAZE = 0.16  # of the eye's width: the irises' shift at full gaze
TURN = 0.045  # of the face width: the nose tip's shift at a full turn
REUSE = 0.4  # output pixels: a mesh that moved less than this keeps its last warp maps
TUCK = 0.65  # of the jaw's drop: how far the lower lip comes back up for an f or v


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class Mesh:
    """Rest points (cut-out pixels), triangles, and each point's share of every motion."""

    points: np.ndarray  # (N, 2) float64
    triangles: np.ndarray  # (T, 3) int32
    ids: dict[int, int]  # landmark id -> point index
    face_h: float
    face_w: float
    jaw: np.ndarray  # (N,) share of the jaw drop
    lift: np.ndarray  # (N,) share of the upper lip's lift
    spread: np.ndarray  # (N,) signed share of the corners' sideways motion
    head: np.ndarray  # (N,) share of the head's motion (1 on the face, 0 on the border)
    depth: np.ndarray  # (N,) parallax of a turn (the nose most)
    eyes: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]  # upper ids, lower xs, lower ys, irises
    seal: tuple[np.ndarray, np.ndarray, np.ndarray]  # upper and lower inner lip ids, the rest gap between them
    lids: list[tuple[np.ndarray, np.ndarray]]  # per eye: the upper lid and the crease above it, corner to corner
    lip: np.ndarray  # the lower lip's inner and outer points (not its corners)
    lips: np.ndarray  # both lips' outer points, corner to corner
    border: np.ndarray  # (4,) x0, y0, x1, y1 of the warped box, upright pixels (it may reach past the cut-out:
    # the box must end where the mesh's fixed border is, or the warp would stop short of it with a seam)
    to_picture: np.ndarray  # 3x3: the upright face's pixels -> cut-out pixels (a rotation about the face)

    def idx(self, ids: tuple[int, ...]) -> np.ndarray:
        return np.array([self.ids[i] for i in ids], dtype=np.int64)

    def in_picture(self, points: np.ndarray) -> np.ndarray:
        return points @ self.to_picture[:2, :2].T + self.to_picture[:2, 2]


def _delaunay(points: np.ndarray) -> np.ndarray:
    x0, y0 = points.min(axis=0) - 10
    x1, y1 = points.max(axis=0) + 10
    sub = cv2.Subdiv2D((int(x0), int(y0), int(x1 - x0) + 1, int(y1 - y0) + 1))
    for p in points:
        sub.insert((float(p[0]), float(p[1])))
    tris = np.asarray(sub.getTriangleList()).reshape(-1, 3, 2)
    # Back to point indices: the nearest rest point to each corner (Subdiv2D hands back the coordinates).
    d = np.linalg.norm(tris[:, :, None, :] - points[None, None, :, :], axis=3)
    nearest = d.argmin(axis=2)
    ok = d.min(axis=2).max(axis=1) < 0.01
    out = nearest[ok]
    out = out[(out[:, 0] != out[:, 1]) & (out[:, 1] != out[:, 2]) & (out[:, 0] != out[:, 2])]
    return out.astype(np.int32)


def _creases(marks: np.ndarray) -> np.ndarray:
    """Fixed points a little above each upper lid: a blink stretches only the lid's own skin down over the eye,
    not the brow or a pair of glasses."""
    out = []
    for (upper, lower), brow in zip((fm.RIGHT_LIDS, fm.LEFT_LIDS), (fm.BROWS[:10], fm.BROWS[10:]), strict=True):
        brow_low = float(marks[list(brow), 1].max())
        for u, lo in zip(upper[1:-1], lower[1:-1], strict=True):
            up = marks[u].astype(np.float64)
            opening = float(marks[lo][1] - up[1])
            rise = min(0.5 * max(opening, 1.0), 0.4 * max(0.0, up[1] - brow_low))
            out.append((up[0], up[1] - max(rise, 0.5)))
    return np.array(out)


def _upright(marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``marks`` turned about their centre until the eyes' outer corners are level, and the 3x3 matrix back: a
    tilted head opens its jaw and closes its lids along its own axis, not the picture's."""
    right, left = marks[fm.EYE_CORNERS[0][0]], marks[fm.EYE_CORNERS[1][0]]
    roll = math.atan2(float(left[1] - right[1]), float(left[0] - right[0]))
    centre = marks[: fm.COUNT - 10].astype(np.float64).mean(axis=0)
    c, s = math.cos(roll), math.sin(roll)
    back = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    back[:2, 2] = centre - back[:2, :2] @ centre
    return (marks - centre) @ back[:2, :2] + centre, back


def face_mesh_of(marks: np.ndarray, triangles: np.ndarray | None = None) -> Mesh:
    """The rig's mesh over face landmarks ``marks`` (cut-out pixels), built upright (``Mesh.to_picture`` turns it
    back); ``triangles``: another picture's of the same face (else triangulated here)."""
    marks, to_picture = _upright(marks)
    groups = (fm.UPPER_INNER + fm.LOWER_INNER + fm.UPPER_OUTER + fm.LOWER_OUTER + fm.RIGHT_LIDS[0]
              + fm.RIGHT_LIDS[1] + fm.LEFT_LIDS[0] + fm.LEFT_LIDS[1] + fm.EYE_CORNERS[0] + fm.EYE_CORNERS[1]
              + fm.IRISES[0] + fm.IRISES[1] + fm.BROWS + fm.OVAL[::2] + fm.NOSE + fm.SKIN)
    landmark_ids = list(dict.fromkeys(groups))
    face = np.concatenate([marks[landmark_ids].astype(np.float64), _creases(marks)])
    face_h = float(np.linalg.norm(marks[fm.FOREHEAD] - marks[fm.CHIN]))
    face_w = float(np.linalg.norm(marks[fm.CHEEK_RIGHT] - marks[fm.CHEEK_LEFT]))
    oval = marks[list(fm.OVAL)].astype(np.float64)
    centre = oval.mean(axis=0)
    ring = centre + (oval[::2] - centre) * 1.2
    ox0, oy0 = oval.min(axis=0)
    ox1, oy1 = oval.max(axis=0)
    # The warped box: the face and a margin for the head's motion to fade out in (it costs its area every frame).
    bx0, bx1 = ox0 - 0.22 * face_w, ox1 + 0.22 * face_w
    by0, by1 = oy0 - 0.2 * face_h, oy1 + 0.25 * face_h
    xs, ys = np.linspace(bx0, bx1, 5), np.linspace(by0, by1, 5)
    border = np.array([(x, by0) for x in xs] + [(x, by1) for x in xs] + [(bx0, y) for y in ys[1:-1]]
                      + [(bx1, y) for y in ys[1:-1]])
    points = np.concatenate([face, ring, border])
    n_face, n_ring = len(face), len(ring)
    ids = {lid: i for i, lid in enumerate(landmark_ids)}

    # The jaw: everything below the lips' meeting line, fading out sideways and toward the ears.
    upper_inner = np.array([ids[i] for i in fm.UPPER_INNER[1:-1]])
    lower_inner = np.array([ids[i] for i in fm.LOWER_INNER[1:-1]])
    mouth_y = float(points[np.concatenate([upper_inner, lower_inner]), 1].mean())
    mouth_x = float(points[[ids[61], ids[291]], 0].mean())
    chin_y = float(marks[fm.CHIN][1])
    below = _smoothstep((points[:, 1] - mouth_y) / max(1.0, 0.25 * (chin_y - mouth_y)))
    sideways = 1 - _smoothstep((np.abs(points[:, 0] - mouth_x) - 0.2 * face_w) / (0.35 * face_w))
    jaw = below * sideways
    lift = np.zeros(len(points))
    # Along the lips the opening tapers to the fixed corners: a lens, not a slot.
    half = max(1.0, float(abs(marks[291][0] - marks[61][0])) / 2)
    along = np.clip(np.abs(points[:, 0] - mouth_x) / half, 0.0, 1.0)
    for lid in fm.LOWER_INNER[1:-1] + fm.LOWER_OUTER[1:-1]:
        jaw[ids[lid]] = 1.0 - 0.7 * along[ids[lid]] ** 2
    for lid in fm.UPPER_INNER[1:-1]:
        lift[ids[lid]] = 1.0 - along[ids[lid]] ** 2
    for lid in fm.UPPER_OUTER[1:-1]:
        lift[ids[lid]] = 0.6 * (1.0 - along[ids[lid]] ** 2)
    for lid in (78, 308, 61, 291):
        jaw[ids[lid]] = 0.3
    jaw[n_face:] *= 0.4  # the ring follows a little; the border not at all
    jaw[n_face + n_ring:] = 0.0
    # Sideways: the corners fully, the lips by their distance from the middle, the cheeks a little.
    rel = np.clip((points[:, 0] - mouth_x) / half, -1.5, 1.5)
    near = 1 - _smoothstep((np.linalg.norm(points - (mouth_x, mouth_y), axis=1) - half) / (0.6 * half))
    spread = rel * near
    spread[n_face:] = 0.0
    head = np.concatenate([np.ones(n_face), np.full(n_ring, 0.45), np.zeros(len(border))])
    depth = np.full(len(points), 0.6)
    depth[[ids[i] for i in fm.OVAL[::2]]] = 0.3
    depth[[ids[i] for i in fm.NOSE]] = 0.9
    depth[ids[fm.NOSE_TIP]] = 1.0
    depth[n_face:] = 0.2
    eyes = []
    for (upper, lower), iris in zip((fm.RIGHT_LIDS, fm.LEFT_LIDS), fm.IRISES, strict=True):
        corners = fm.EYE_CORNERS[0] if upper is fm.RIGHT_LIDS[0] else fm.EYE_CORNERS[1]
        lows = np.array([ids[i] for i in (corners[0],) + lower + (corners[1],)])
        order = np.argsort(points[lows, 0])
        eyes.append((np.array([ids[i] for i in upper]), points[lows[order], 0].copy(), points[lows[order], 1].copy(),
                     np.array([ids[i] for i in iris])))
    seal = (upper_inner, lower_inner, points[lower_inner] - points[upper_inner])
    lids = []
    for e, ((upper, _), (a, b)) in enumerate(zip((fm.RIGHT_LIDS, fm.LEFT_LIDS), fm.EYE_CORNERS, strict=True)):
        creases = len(landmark_ids) + e * (len(upper) - 2) + np.arange(len(upper) - 2)
        lids.append((np.array([ids[i] for i in (a,) + upper + (b,)]),
                     np.concatenate([[ids[a]], creases, [ids[b]]])))
    lip = np.array([ids[i] for i in fm.LOWER_INNER[1:-1] + fm.LOWER_OUTER[1:-1]])
    lips = np.array([ids[i] for i in fm.UPPER_OUTER + fm.LOWER_OUTER])
    mesh = Mesh(points=points, triangles=np.zeros((0, 3), np.int32), ids=ids, face_h=face_h, face_w=face_w, jaw=jaw,
                lift=lift, spread=spread, head=head, depth=depth, eyes=eyes, seal=seal, lids=lids, lip=lip, lips=lips,
                border=np.array([bx0, by0, bx1, by1]), to_picture=to_picture)
    # Triangulated with the mouth half open, so no triangle joins the upper lip to the lower one.
    mesh.triangles = (_delaunay(deform(mesh, 0.5, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0, 0.0, 0.0, 0.0))
                      if triangles is None else triangles)
    return mesh


def _curve(points: np.ndarray, ids: np.ndarray, x: np.ndarray) -> np.ndarray:
    order = np.argsort(points[ids, 0])
    return np.interp(x, points[ids[order], 0], points[ids[order], 1])


def _lidded(rest: np.ndarray, moved: np.ndarray, iris: np.ndarray, lid: np.ndarray, crease: np.ndarray,
            low_x: np.ndarray, low_y: np.ndarray) -> np.ndarray:
    """The irises' heights as the lid closes: the band from the crease to the lid stretches down, the
    opening below it shrinks onto the lower lid, so no triangle folds and nothing above the crease moves."""
    x, y = rest[iris, 0], rest[iris, 1]
    top, was, now = _curve(rest, crease, x), _curve(rest, lid, x), _curve(moved, lid, x)
    low = np.interp(x, low_x, low_y)
    in_band = top + (y - top) / np.maximum(was - top, 1e-6) * (now - top)
    in_eye = now + (y - was) / np.maximum(low - was, 1e-6) * (low - now)
    return np.where(y <= was, np.where(y <= top, y, in_band), np.minimum(in_eye, np.maximum(low, y)))


def deform(mesh: Mesh, opening: float, width: float, rounding: float, blink: float, gaze: tuple[float, float],
           tilt: float, nod: float, turn: float, seal: float, tuck: float = 0.0) -> np.ndarray:
    """The mesh's points moved by one frame's parameters (cut-out pixels); ``seal`` closes a photo's parted lips,
    ``tuck`` raises the lower lip to the upper teeth (f, v) while the jaw stays a little open."""
    p = mesh.points.copy()
    h, w = mesh.face_h, mesh.face_w
    gap = OPEN_GAP * h * opening
    p[:, 1] += mesh.jaw * 0.8 * gap - mesh.lift * 0.2 * gap
    if tuck:
        p[mesh.lip, 1] -= TUCK * tuck * mesh.jaw[mesh.lip] * 0.8 * gap
    if seal:
        p[mesh.seal[0]] += 0.5 * seal * mesh.seal[2]
        p[mesh.seal[1]] -= 0.5 * seal * mesh.seal[2]
    p[:, 0] += mesh.spread * (WIDTH * w * width - ROUND * w * rounding)
    if rounding and opening:
        mid = mesh.idx((13, 14, 82, 87, 312, 317))
        p[mid, 1] += np.array([-1, 1, -1, 1, -1, 1], np.float64) * 0.015 * h * rounding * opening
    for (upper, low_x, low_y, iris), (lid, crease) in zip(mesh.eyes, mesh.lids, strict=True):
        eye_w = float(low_x[-1] - low_x[0])
        if blink:
            p[upper, 1] += BLINK * blink * (np.interp(p[upper, 0], low_x, low_y) - p[upper, 1])
            p[iris, 1] = _lidded(mesh.points, p, iris, lid, crease, low_x, low_y)
        p[iris, 0] += gaze[0] * GAZE * eye_w
        p[iris, 1] += gaze[1] * GAZE * eye_w
    # The head: a turn (parallax: the nose moves most), a nod, and a tilt about the neck.
    p[:, 0] += mesh.head * mesh.depth * TURN * w * turn
    p[:, 1] += mesh.head * nod * h
    pivot = mesh.points[mesh.ids[fm.CHIN]] + (0.0, 0.3 * h)
    a = math.radians(tilt)
    c, s = math.cos(a), math.sin(a)
    rel = p - pivot
    rotated = np.stack([c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1]], axis=1) + pivot
    return p + mesh.head[:, None] * (rotated - p)


Maps = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # luma x and y, chroma x and y: displacements


def grid_displacements(grid: np.ndarray, src: np.ndarray, triangles: np.ndarray, gw: int, gh: int,
                       cell: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """How far (box pixels) each cell centre of a ``gw`` x ``gh`` grid fetches from: the source point with the
    same barycentric coordinates in its triangle (0 outside every triangle).

    ``grid``: the points where they are drawn, in grid units (cell (i, j)'s centre at x=j, y=i); ``src``:
    where they are in the picture, in box pixels; a cell is ``cell`` (width, height) box pixels. Every
    triangle's bounding cells are tested at once: one pass of array arithmetic, no rasteriser call per
    triangle. A centre on an edge shared by two triangles may take either: both give the same point."""
    dx, dy = np.zeros((gh, gw), np.float32), np.zeros((gh, gw), np.float32)
    if not triangles.size:
        return dx, dy
    tri, s = grid[triangles], src[triangles]  # (T, 3, 2)
    first, second, third = tri[:, 0], tri[:, 1], tri[:, 2]
    lo = np.maximum(np.ceil(np.minimum(np.minimum(first, second), third) - 1e-6), 0).astype(np.int64)
    hi = np.floor(np.maximum(np.maximum(first, second), third) + 1e-6)
    hi = np.minimum(hi, (gw - 1, gh - 1)).astype(np.int64)
    nx, ny = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0), np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
    counts = nx * ny
    total = int(counts.sum())
    if not total:
        return dx, dy
    # Per triangle, the barycentric u and v and the source x and y as affine functions of the cell (px, py).
    a, ab, ac = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    inv = 1.0 / (ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0])
    ux, uy, vx, vy = ac[:, 1] * inv, -ac[:, 0] * inv, -ab[:, 1] * inv, ab[:, 0] * inv
    u0, v0 = -(a[:, 0] * ux + a[:, 1] * uy), -(a[:, 0] * vx + a[:, 1] * vy)
    e1, e2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]
    # The source minus the cell centre ((p + 0.5) * cell - 0.5 box pixels): the displacement, likewise affine.
    coef = np.stack([ux, uy, u0, vx, vy, v0,
                     e1[:, 0] * ux + e2[:, 0] * vx - cell[0], e1[:, 0] * uy + e2[:, 0] * vy,
                     s[:, 0, 0] + e1[:, 0] * u0 + e2[:, 0] * v0 - 0.5 * cell[0] + 0.5,
                     e1[:, 1] * ux + e2[:, 1] * vx, e1[:, 1] * uy + e2[:, 1] * vy - cell[1],
                     s[:, 0, 1] + e1[:, 1] * u0 + e2[:, 1] * v0 - 0.5 * cell[1] + 0.5], axis=1)
    # Every triangle's bounding cells, row by row: (triangle, row) pairs, then the cells of each row.
    rows_of = np.repeat(np.arange(len(tri)), ny)
    row_y = lo[rows_of, 1] + np.arange(rows_of.size) - np.repeat(np.cumsum(ny) - ny, ny)
    per_row = nx[rows_of]
    # Single precision from here: cells are at most a few hundred apart, and this is most of a map's work.
    py = np.repeat(row_y, per_row).astype(np.float32)
    px = (np.arange(total) - np.repeat(np.cumsum(per_row) - per_row - lo[rows_of, 0], per_row)).astype(np.float32)
    c = np.repeat(coef.astype(np.float32), counts, axis=0)
    u = c[:, 0] * px + c[:, 1] * py + c[:, 2]
    v = c[:, 3] * px + c[:, 4] * py + c[:, 5]
    eps = np.float32(1e-5)
    inside = np.flatnonzero((u >= -eps) & (v >= -eps) & (u + v <= 1 + eps))
    c, px, py = c[inside], px[inside], py[inside]
    at = py.astype(np.intp) * gw + px.astype(np.intp)
    dx.reshape(-1)[at] = c[:, 6] * px + c[:, 7] * py + c[:, 8]
    dy.reshape(-1)[at] = c[:, 9] * px + c[:, 10] * py + c[:, 11]
    return dx, dy


def _fade_cut_sides(dx: np.ndarray, dy: np.ndarray, cut: tuple[bool, bool, bool, bool], step: int) -> None:
    """Scale the grid's displacements down to 0 at each cut side, smoothly over a band three times as
    wide as the largest displacement (at least 24 output pixels, at most half the box)."""
    reach = float(max(np.abs(dx).max(), np.abs(dy).max()))
    gh, gw = dx.shape
    for side, is_cut in enumerate(cut):
        if not is_cut:
            continue
        along = gw if side in (0, 2) else gh
        band = min(max(2, math.ceil(max(24.0, 3 * reach) / step)), max(2, along // 2))
        ramp = _smoothstep(np.arange(along, dtype=np.float64) / band).astype(np.float32)
        if side >= 2:
            ramp = ramp[::-1]
        shape = (1, along) if side in (0, 2) else (along, 1)
        dx *= ramp.reshape(shape)
        dy *= ramp.reshape(shape)


def warp_maps(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray, box: tuple[int, int, int, int],
              cut: tuple[bool, bool, bool, bool] = (False, False, False, False),
              fine: tuple[int, int, int, int] | None = None) -> Maps:
    """Remap tables for ``box`` (even luma pixels) that move the mesh at ``src`` to ``dst`` (output pixels):
    displacements, luma then chroma, for ``cv2.remap``'s relative maps.

    The map is piecewise affine, so smooth: it is made on a coarse grid (each cell fetches from the
    point with the same barycentric coordinates in its triangle's source) and scaled up to the box.
    ``cut``: the box's left, top, right and bottom sides that the frame's edge cut off (the mesh's
    fixed border lies beyond them): there the motion fades to nothing, since the pixels it would
    fetch from past the edge do not exist (sampling the edge instead smears it across the face).
    ``fine``: a part of the box (output pixels) mapped pixel by pixel instead, where the map is not smooth: lips
    that meet over a photo's parted teeth (a coarse map would blend the two lips' motions across the line where
    they meet and fetch the teeth between them there, a bright staircase).
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    step = max(1, math.ceil(h / GRID_ROWS))
    gw, gh = max(2, math.ceil(w / step)), max(2, math.ceil(h / step))
    cell = (w / gw, h / gh)
    # Grid cells placed where a bilinear resize of gw x gh to w x h puts them.
    grid = (dst - (x0, y0) + 0.5) / cell - 0.5
    source = src - (x0, y0)
    # A triangle squashed flat (a shut lid, closed lips) covers no pixel: it is not drawn, or its
    # near-infinite affine would fetch from anywhere along its edge.
    d, sd = dst[triangles], src[triangles]
    d, sd = d - d[:, :1], sd - sd[:, :1]
    (d1x, d1y), (d2x, d2y) = d[:, 1].T, d[:, 2].T
    det = d1x * d2y - d1y * d2x  # twice the drawn area
    live = np.abs(det) > 0.5
    # The drawn-to-source affine's linear part: source edges times the inverse of the drawn ones.
    (s1x, s1y), (s2x, s2y) = sd[:, 1].T, sd[:, 2].T
    lin = np.stack([s1x * d2y - s2x * d1y, s2x * d1x - s1x * d2x, s1y * d2y - s2y * d1y, s2y * d1x - s1y * d2x],
                   axis=1) / np.where(live, det, 1.0)[:, None]
    live &= np.abs(lin).max(axis=1) < 12
    dx, dy = grid_displacements(grid, source, triangles[live], gw, gh, cell)
    if any(cut):
        _fade_cut_sides(dx, dy, cut, step)
    # Displacements, not positions, are scaled up: a resize repeats its edge, and a displacement of zero at
    # the box's fixed edge stays zero there (positions would come out half a grid cell inside: a seam).
    # Chroma sample j sits at luma 2j + 0.5: it moves by half the displacement there.
    cx = cv2.resize(dx, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR) * np.float32(0.5)
    cy = cv2.resize(dy, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR) * np.float32(0.5)
    if step > 1:
        dx, dy = (cv2.resize(dx, (w, h), interpolation=cv2.INTER_LINEAR),
                  cv2.resize(dy, (w, h), interpolation=cv2.INTER_LINEAR))
    if fine is not None and not any(cut):
        _map_finely((dx, dy, cx, cy), src, dst, triangles[live], box, fine)
    return dx, dy, cx, cy


def _map_finely(maps: Maps, src: np.ndarray, dst: np.ndarray, triangles: np.ndarray, box: tuple[int, int, int, int],
                fine: tuple[int, int, int, int]) -> None:
    """Overwrite ``maps`` (``box``'s) in ``fine`` (output pixels) with the map made pixel by pixel."""
    x0, y0, x1, y1 = box
    fx0, fy0 = max(x0, fine[0]) & ~1, max(y0, fine[1]) & ~1
    fx1, fy1 = min(x1, fine[2] + 2) & ~1, min(y1, fine[3] + 2) & ~1
    if fx1 <= fx0 or fy1 <= fy0:
        return
    drawn = dst[triangles]
    near = ((drawn.min(axis=1) <= (fx1, fy1)) & (drawn.max(axis=1) >= (fx0, fy0))).all(axis=1)
    fdx, fdy = grid_displacements(dst - (fx0, fy0), src - (fx0, fy0), triangles[near], fx1 - fx0, fy1 - fy0,
                                  (1.0, 1.0))
    dx, dy, cx, cy = maps
    rows, cols = slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0)
    dx[rows, cols], dy[rows, cols] = fdx, fdy
    half = ((fx1 - fx0) // 2, (fy1 - fy0) // 2)
    rows, cols = slice((fy0 - y0) // 2, (fy1 - y0) // 2), slice((fx0 - x0) // 2, (fx1 - x0) // 2)
    cx[rows, cols] = cv2.resize(fdx, half, interpolation=cv2.INTER_AREA) * np.float32(0.5)
    cy[rows, cols] = cv2.resize(fdy, half, interpolation=cv2.INTER_AREA) * np.float32(0.5)


_RELATIVE = cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP


def apply_maps(frame: Planes, maps: Maps, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    dx, dy, cx, cy = maps
    fy, fu, fv = frame
    region = fy[y0:y1, x0:x1]
    region[:] = cv2.remap(region.copy(), dx, dy, _RELATIVE, borderMode=cv2.BORDER_REPLICATE)
    for plane in (fu, fv):
        sub = plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2]
        sub[:] = cv2.remap(sub.copy(), cx, cy, _RELATIVE, borderMode=cv2.BORDER_REPLICATE)


@dataclass
class FacePart:
    """One picture's face: its mesh and the colours its mouth and lids are painted with."""

    mesh: Mesh
    look: MouthLook
    lids: list[LidLook]
    upper: np.ndarray  # the inner lips' point indices, upper and lower
    lower: np.ndarray


class FaceParts:
    """The faces of a cut-out's pictures (one for a photo, one per picture of a video), each built when first
    drawn and kept in the cut-out's ``cache``. Every picture's mesh has the first one's triangles and colours
    (the same landmarks in the same order), so a video's face is one mesh whose rest shape follows the video."""

    def __init__(self, pictures: list[Picture], landmarks: np.ndarray, index: np.ndarray, cache: dict[str, object],
                 seed: int) -> None:
        self.pictures, self.landmarks, self.index, self.cache, self.seed = pictures, landmarks, index, cache, seed

    def at(self, k: int) -> FacePart | None:
        """The face of the picture shown at frame ``k`` (None: its face was lost)."""
        i = int(self.index[k % len(self.index)])
        key = f"part{i}"
        if key not in self.cache:
            self.cache[key] = self._build(i)
        part = self.cache[key]
        assert part is None or isinstance(part, FacePart)
        return part

    def _build(self, i: int) -> FacePart | None:
        marks = self.landmarks[i]
        if not np.isfinite(marks).all():
            return None
        first = self.cache.get("first")
        if not isinstance(first, FacePart):
            mesh, picture = face_mesh_of(marks), self.pictures[i]
            part = FacePart(mesh, mouth_look(picture, marks, self.seed),
                            [lid_look(picture, mesh.in_picture(mesh.points[lid]), mesh.in_picture(mesh.points[crease]))
                             for lid, crease in mesh.lids],
                            mesh.idx(fm.UPPER_INNER), mesh.idx(fm.LOWER_INNER))
            self.cache["first"] = part
            return part
        # A video's later pictures: their own shape, the first face's colours (sampling them again for every
        # picture costs more than the rest of the rig, and lips and lids keep their colours over a clip).
        mesh = face_mesh_of(marks, first.mesh.triangles)
        return FacePart(mesh, first.look, first.lids, first.upper, first.lower)


@dataclass
class Warp:
    """One frame's warp of a face: the picture's face, the output box it covers, the mesh at rest and posed
    (output pixels), and the maps."""

    part: FacePart
    box: tuple[int, int, int, int]
    src: np.ndarray
    dst: np.ndarray
    maps: Maps


class FaceRig:
    """One actor's animated face: its pictures' faces and per-frame parameters."""

    def __init__(self, parts: FaceParts, visemes: Visemes, blinks: np.ndarray, head: HeadPose,
                 frame_size: tuple[int, int]) -> None:
        self.parts = parts
        self.visemes = visemes
        self.blinks = blinks
        self.head = head
        self.frame_size = frame_size
        self._last: Warp | None = None

    def pose(self, mesh: Mesh, k: int) -> np.ndarray:
        """``mesh``'s points at frame ``k`` (cut-out pixels)."""
        shape = self.visemes.at(k)
        blink = float(self.blinks[min(k, self.blinks.size - 1)])
        tilt, nod, turn, gaze = self.head.at(k)
        # The lips seal as the mouth closes (a photo's parted lips meet in silence and on m, b, p).
        seal = 1.0 if shape.closed else max(0.0, 1.0 - shape.open / 0.2)
        return deform(mesh, shape.open, shape.width, shape.round, blink, (gaze, 0.0), tilt, nod, turn, seal,
                      shape.tuck)

    def prepare(self, m: np.ndarray, k: int) -> Warp | None:
        """Frame ``k``'s warp of the face drawn at ``m`` (cut-out pixels -> output, 3x3); None when
        the face is too small, off the frame or lost. Call it in frame order: it keeps its last maps for
        reuse. It reads no pixels, so a frame's warp can be made while the previous frame is drawn."""
        part = self.parts.at(k)
        if part is None:
            return None
        mesh = part.mesh
        m = m @ mesh.to_picture
        lin, off = m[:2, :2], m[:2, 2]
        scale = math.sqrt(abs(np.linalg.det(lin)))
        if mesh.face_h * scale < MIN_SCREEN_FACE:
            return None
        fw, fh = self.frame_size
        bx0, by0, bx1, by1 = mesh.border
        corners = np.array([[bx0, by0], [bx1, by0], [bx0, by1], [bx1, by1]]) @ lin.T + off
        left, top = corners.min(axis=0)
        right, bottom = corners.max(axis=0)
        x0, y0 = max(0, math.floor(left)) & ~1, max(0, math.floor(top)) & ~1
        x1, y1 = min(fw, math.ceil(right) + 1) & ~1, min(fh, math.ceil(bottom) + 1) & ~1
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        cut = (left < 0, top < 0, right > fw, bottom > fh)
        src = mesh.points @ lin.T + off
        dst = self.pose(mesh, k) @ lin.T + off
        box = (x0, y0, x1, y1)
        # A face that moved less than REUSE pixels anywhere since the maps were made keeps them (idle frames).
        last = self._last
        if (last is None or last.box != box or np.abs(last.src - src).max() > REUSE
                or np.abs(last.dst - dst).max() > REUSE):
            self._last = Warp(part, box, src, dst, warp_maps(src, dst, mesh.triangles, box, cut,
                                                             self._sealing(mesh, dst, scale)))
            return self._last
        return Warp(part, box, src, dst, last.maps)

    @staticmethod
    def _sealing(mesh: Mesh, dst: np.ndarray, scale: float) -> tuple[int, int, int, int] | None:
        """The lips' box (output pixels) when a photo's parted lips are brought together over its teeth (their
        gap now under a third of its rest, which was over a pixel), else None."""
        upper, lower, rest = mesh.seal
        was = float(np.linalg.norm(rest, axis=1).max()) * scale
        now = float(np.linalg.norm(dst[lower] - dst[upper], axis=1).max())
        if was <= 1.0 or now >= was / 3:
            return None
        lips = dst[mesh.lips]
        (left, top), (right, bottom) = np.floor(lips.min(axis=0)), np.ceil(lips.max(axis=0))
        # A margin of skin around the lips, where the coarse map outside meets the fine one without a step.
        margin = max(4, round(0.2 * float(right - left)))
        return int(left) - margin, int(top) - margin, int(right) + margin, int(bottom) + margin

    def paint(self, frame: Planes, warp: Warp, k: int, opacity: float = 1.0) -> bool:
        """Apply ``warp`` (``prepare``'s for frame ``k``) to the frame, then the mouth's inside and the lids."""
        if opacity <= 0:
            return False
        part = warp.part
        apply_maps(frame, warp.maps, warp.box)
        paint_interior(frame, warp.dst[part.upper], warp.dst[part.lower], part.look, opacity,
                       self.visemes.at(k).tuck)
        blink = float(self.blinks[min(k, self.blinks.size - 1)])
        for (lid, crease), look in zip(part.mesh.lids, part.lids, strict=True):
            paint_lid(frame, warp.dst[lid], warp.dst[crease], look, blink * opacity)
        return True
