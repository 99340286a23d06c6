"""Snapping on coordinate arrays: the edges' straight segments binned in uniform grids.

:class:`EdgeSegments` answers, in numpy and without a shapely object, what
:meth:`WalkNetwork.snap <servicecircle.network.WalkNetwork.snap>` asks: which edges lie within
a radius of each point, how far, and where along the edge the point projects. Distances follow
GEOS's point-to-segment formula (what ``shapely.distance`` computes for a point and a line) and
the position along an edge is the one ``shapely.line_locate_point`` gives: the first segment of
least distance, its projection factor clamped to the segment.

Each radius has its own grid (cells as wide as the radius, built on first use): every point
within ``r`` of a segment lies in the 3 × 3 cells around the point's cell, so a query reads
nine sorted ranges per point. Long segments are registered piece by piece (pieces no longer
than a cell), so a grid holds about as many entries as the streets have cells to cross.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_CELL_M = 10.0
"""The narrowest grid cell (a smaller radius reads a grid this wide)."""

PAIR_CHUNK = 2_000_000
"""Candidate (point, segment) pairs held at once by a query."""


def point_segment_distance(
    px: np.ndarray, py: np.ndarray, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point to its segment and the projection factor (GEOS's formulas).

    Returns the distances and the factor along ``a → b`` clamped to ``[0, 1]`` (0 for a segment
    of no length).
    """
    dx, dy = bx - ax, by - ay
    len2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ((px - ax) * dx + (py - ay) * dy) / len2
        s = ((ay - py) * dx - (ax - px) * dy) / len2
        inside = np.abs(s) * np.sqrt(len2)
    to_a = np.sqrt((px - ax) ** 2 + (py - ay) ** 2)
    to_b = np.sqrt((px - bx) ** 2 + (py - by) ** 2)
    point = len2 == 0
    dist = np.where(point | (r <= 0.0), to_a, np.where(r >= 1.0, to_b, inside))
    factor = np.where(point, 0.0, np.clip(np.nan_to_num(r), 0.0, 1.0))
    return dist, factor


@dataclass(frozen=True, eq=False)
class _Grid:
    cell_m: float
    x0: float
    y0: float
    ncol: int
    nrow: int
    keys: np.ndarray  # sorted cell keys, one per registered piece
    seg: np.ndarray  # the segment of each registered piece

    def ranges(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n, 9)`` start and end positions in ``keys`` of the 3 × 3 cells around each point."""
        cx = np.floor((px - self.x0) / self.cell_m).astype("int64")
        cy = np.floor((py - self.y0) / self.cell_m).astype("int64")
        step = np.array([-1, 0, 1])
        nx = (cx[:, None, None] + step[None, None, :]).repeat(3, axis=1)
        ny = (cy[:, None, None] + step[None, :, None]).repeat(3, axis=2)
        inside = (nx >= 0) & (nx < self.ncol) & (ny >= 0) & (ny < self.nrow)
        key = (ny * self.ncol + nx).reshape(len(px), 9)
        lo = np.searchsorted(self.keys, key, side="left")
        hi = np.searchsorted(self.keys, key, side="right")
        hi = np.where(inside.reshape(len(px), 9), hi, lo)
        return lo, hi


@dataclass(frozen=True, eq=False)
class EdgeSegments:
    """The straight segments of a set of lines, with what snapping needs of each.

    Attributes
    ----------
    ax, ay, bx, by
        Segment ends.
    edge
        The line (edge index) each segment belongs to.
    start_m
        Length along its line before the segment (GEOS's running sum of segment lengths).
    """

    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    edge: np.ndarray
    start_m: np.ndarray
    _grids: dict[float, _Grid] = field(default_factory=dict, repr=False)

    @classmethod
    def of_lines(
        cls, coords: np.ndarray, offsets: np.ndarray, edges: np.ndarray | None = None
    ) -> EdgeSegments:
        """From ragged line coordinates (``offsets[i]:offsets[i+1]`` are line ``i``'s rows),
        keeping only the lines ``edges`` when given (segments still name the original index).
        """
        offsets = np.asarray(offsets, dtype="int64")
        n_coords = np.diff(offsets)
        lines = np.arange(len(n_coords)) if edges is None else np.asarray(edges, dtype="int64")
        n_seg = np.maximum(n_coords[lines] - 1, 0)
        total = int(n_seg.sum())
        first_seg = np.cumsum(n_seg) - n_seg
        within = np.arange(total) - np.repeat(first_seg, n_seg)
        at = np.repeat(offsets[lines], n_seg) + within
        xy = np.asarray(coords, dtype="float64")
        ax, ay, bx, by = xy[at, 0], xy[at, 1], xy[at + 1, 0], xy[at + 1, 1]
        dx, dy = bx - ax, by - ay
        seg_len = np.sqrt(dx * dx + dy * dy)
        # GEOS adds a line's segment lengths one by one: the j-th segments of all lines at once
        start = np.zeros(total)
        order = np.argsort(within, kind="stable")
        cuts = np.searchsorted(within[order], np.arange(1, int(within.max(initial=0)) + 1))
        for rows in np.split(order, cuts)[1:]:
            start[rows] = start[rows - 1] + seg_len[rows - 1]
        return cls(ax, ay, bx, by, np.repeat(lines, n_seg), start)

    def __len__(self) -> int:
        return len(self.edge)

    def grid(self, cell_m: float) -> _Grid:
        """The grid with cells ``cell_m`` wide (made on first use, then kept)."""
        got = self._grids.get(cell_m)
        if got is None:
            got = self._grids[cell_m] = self._make_grid(cell_m)
        return got

    def _make_grid(self, cell_m: float) -> _Grid:
        length = np.hypot(self.bx - self.ax, self.by - self.ay)
        pieces = np.maximum(np.ceil(length / cell_m), 1).astype("int64")
        seg = np.repeat(np.arange(len(self)), pieces)
        j = np.arange(len(seg)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        t0, t1 = j / pieces[seg], (j + 1) / pieces[seg]
        dx, dy = (self.bx - self.ax)[seg], (self.by - self.ay)[seg]
        xa, xb = self.ax[seg] + t0 * dx, self.ax[seg] + t1 * dx
        ya, yb = self.ay[seg] + t0 * dy, self.ay[seg] + t1 * dy
        x0 = float(min(self.ax.min(), self.bx.min())) if len(self) else 0.0
        y0 = float(min(self.ay.min(), self.by.min())) if len(self) else 0.0

        def cell(v: np.ndarray, origin: float) -> np.ndarray:
            return np.floor((v - origin) / cell_m).astype("int64")

        ix0, ix1 = cell(np.minimum(xa, xb), x0), cell(np.maximum(xa, xb), x0)
        iy0, iy1 = cell(np.minimum(ya, yb), y0), cell(np.maximum(ya, yb), y0)
        ncol = int(ix1.max()) + 1 if len(seg) else 1
        nrow = int(iy1.max()) + 1 if len(seg) else 1
        wide, high = ix1 - ix0 + 1, iy1 - iy0 + 1  # each at most 2: a piece is ≤ one cell
        count = wide * high
        piece = np.repeat(np.arange(len(seg)), count)
        k = np.arange(len(piece)) - np.repeat(np.cumsum(count) - count, count)
        key = (iy0[piece] + k // wide[piece]) * ncol + ix0[piece] + k % wide[piece]
        order = np.argsort(key, kind="stable")
        return _Grid(cell_m, x0, y0, ncol, nrow, key[order], seg[piece[order]])

    def within(
        self, px: np.ndarray, py: np.ndarray, sel: np.ndarray, radius_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(point, segment, distance, projection factor) for every segment within
        ``radius_m`` of each selected point (``px[sel]``, ``py[sel]``); a segment may appear
        more than once for a point."""
        empty_i, empty_f = np.zeros(0, dtype="int64"), np.zeros(0)
        parts = [(empty_i, empty_i, empty_f, empty_f)]
        if len(self) == 0 or len(sel) == 0:
            return parts[0]
        grid = self.grid(max(float(radius_m), MIN_CELL_M))
        lo, hi = grid.ranges(px[sel], py[sel])
        counts = hi - lo
        per_point = counts.sum(axis=1)
        cum = np.cumsum(per_point)
        cuts = np.unique(np.searchsorted(cum, np.arange(PAIR_CHUNK, int(cum[-1]), PAIR_CHUNK)))
        for rows in np.split(np.arange(len(sel)), cuts):
            if len(rows) == 0:
                continue
            c = counts[rows].ravel()
            pos = np.repeat(lo[rows].ravel() - (np.cumsum(c) - c), c) + np.arange(int(c.sum()))
            point = sel[np.repeat(rows, per_point[rows])]
            seg = grid.seg[pos]
            dist, factor = point_segment_distance(
                px[point], py[point], self.ax[seg], self.ay[seg], self.bx[seg], self.by[seg]
            )
            near = dist <= radius_m
            parts.append((point[near], seg[near], dist[near], factor[near]))
        point, seg, dist, factor = (np.concatenate(column) for column in zip(*parts, strict=True))
        return point, seg, dist, factor
