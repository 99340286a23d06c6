"""Snapping on coordinate arrays: the edges' straight segments listed in a uniform grid.

:class:`EdgeSegments` answers, in numpy and without a shapely object, what
:meth:`WalkNetwork.snap <servicecircle.network.WalkNetwork.snap>` asks: which edges lie within
a radius of each point, how far, and where along the edge the point projects. Distances follow
GEOS's point-to-segment formula (what ``shapely.distance`` computes for a point and a line) and
the position along an edge is the one ``shapely.line_locate_point`` gives: the first segment of
least distance, its projection factor clamped to the segment.

One grid serves every radius: segments longer than a cell are cut into pieces no longer than
one, and each piece is listed in the cell of its middle (when cells far outnumber pieces, only
cells that hold one take room). Cells are at least :data:`CELL_M` wide and no narrower than
the median segment. A piece within ``r`` of a point has its middle within ``r`` + half a piece
of it, so a query reads the square of cells that far around each point's cell, one run of
columns per row of the grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

CELL_M = 50.0
"""The narrowest grid cell (the first radius snapping looks at)."""

DENSE_CELLS_PER_PIECE = 8
"""Up to this many cells per piece, the grid keeps a table of every cell (a lookup per run of
cells); beyond, as for towns far apart, it keeps the occupied cells only (a binary search)."""

PAIR_CHUNK = 250_000
"""Candidate (point, segment) pairs, or runs of cells read, held at once by a query. About
twenty arrays of this length are alive at once (16 MB each at 2 M pairs, 2 MB at 250 k): at
1 M nodes and 100 k points, 250 k snaps in 0.58 s with a traced peak of 90 MB, 2 M in 0.78 s
and 327 MB (fresh memory costs more than the extra numpy calls)."""


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
    half_m: float  # half the longest piece: a piece within r of a point has its middle within
    # r + half_m of it
    x0: float
    y0: float
    ncol: int
    nrow: int
    keys: np.ndarray  # the cell (row * ncol + column) of each piece, sorted
    seg: np.ndarray  # the segment of each piece, in the order of ``keys``
    start: np.ndarray | None  # where each cell's pieces start (when cells are few enough)

    def ranges(self, px: np.ndarray, py: np.ndarray, ring: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and end positions in ``seg`` of the cells within ``ring`` cells of each
        point's cell, one run of columns per grid row (an ``(n, rows)`` pair of arrays):
        the cost grows with the ring, not with its square, and only rows of the grid count."""
        cx = np.floor((px - self.x0) / self.cell_m).astype("int64")
        cy = np.floor((py - self.y0) / self.cell_m).astype("int64")
        col_lo = np.clip(cx - ring, 0, self.ncol - 1)
        col_hi = np.clip(cx + ring, 0, self.ncol - 1)
        row_lo, row_hi = np.maximum(cy - ring, 0), np.minimum(cy + ring, self.nrow - 1)
        width = min(2 * ring + 1, self.nrow)
        rows = row_lo[:, None] + np.arange(width)[None, :]
        inside = (rows <= row_hi[:, None]) & ((cx + ring >= 0) & (cx - ring < self.ncol))[:, None]
        first = np.where(inside, rows * self.ncol + col_lo[:, None], 0)
        last = np.where(inside, rows * self.ncol + col_hi[:, None], 0)
        if self.start is not None:
            lo, hi = self.start[first], self.start[last + 1]
        else:
            lo = np.searchsorted(self.keys, first, side="left")
            hi = np.searchsorted(self.keys, last, side="right")
        return lo, np.where(inside, hi, lo)


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
    length_m
        The segment's length.
    """

    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    edge: np.ndarray
    start_m: np.ndarray
    length_m: np.ndarray

    @classmethod
    def of_lines(cls, coords: np.ndarray, offsets: np.ndarray) -> EdgeSegments:
        """From ragged line coordinates (``offsets[i]:offsets[i+1]`` are line ``i``'s rows)."""
        offsets = np.asarray(offsets, dtype="int64")
        n_seg = np.maximum(np.diff(offsets) - 1, 0)
        lines = np.arange(len(n_seg))
        total = int(n_seg.sum())
        first_seg = np.cumsum(n_seg) - n_seg
        within = np.arange(total) - np.repeat(first_seg, n_seg)
        at = np.repeat(offsets[:-1], n_seg) + within
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
        return cls(ax, ay, bx, by, np.repeat(lines, n_seg), start, seg_len)

    def __len__(self) -> int:
        return len(self.edge)

    def take(self, keep: np.ndarray) -> EdgeSegments:
        """The selected segments (a mask or positions), with their place along their lines."""
        return EdgeSegments(
            self.ax[keep], self.ay[keep], self.bx[keep], self.by[keep],
            self.edge[keep], self.start_m[keep], self.length_m[keep],
        )  # fmt: skip

    @cached_property
    def grid(self) -> _Grid:
        """The grid of these segments (made on first use, then kept)."""
        ax, ay, bx, by, length = self.ax, self.ay, self.bx, self.by, self.length_m
        x0 = float(np.minimum(ax, bx).min(initial=np.inf)) if len(self) else 0.0
        y0 = float(np.minimum(ay, by).min(initial=np.inf)) if len(self) else 0.0
        extent = max(
            float(np.maximum(ax, bx).max(initial=x0)) - x0,
            float(np.maximum(ay, by).max(initial=y0)) - y0,
        )
        median = float(np.median(length)) if len(self) else 0.0
        c = max(CELL_M, median, extent / 2**30)  # (row * ncol + column fits in 64 bits)
        n = np.maximum(np.ceil(length / c), 1).astype("int64")  # pieces no longer than a cell
        seg = np.repeat(np.arange(len(self)), n)
        mid = (np.arange(len(seg)) - np.repeat(np.cumsum(n) - n, n) + 0.5) / n[seg]
        col = np.floor((ax[seg] + mid * (bx - ax)[seg] - x0) / c).astype("int64")
        row = np.floor((ay[seg] + mid * (by - ay)[seg] - y0) / c).astype("int64")
        col, row = np.clip(col, 0, None), np.clip(row, 0, None)
        ncol, nrow = int(col.max(initial=0)) + 1, int(row.max(initial=0)) + 1
        key = row * ncol + col
        order = np.argsort(key, kind="stable")
        half = float((length / n).max(initial=0.0)) / 2
        start = None
        if ncol * nrow <= DENSE_CELLS_PER_PIECE * len(seg) + 1024:  # a city: one table of cells
            start = np.zeros(ncol * nrow + 1, dtype="int64")
            np.cumsum(np.bincount(key, minlength=ncol * nrow), out=start[1:])
        return _Grid(c, half, x0, y0, ncol, nrow, key[order], seg[order], start)

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
        grid = self.grid
        ring = int(np.ceil((radius_m + grid.half_m) / grid.cell_m + 1e-6))
        step = max(1, PAIR_CHUNK // (2 * ring + 1))
        for first in range(0, len(sel), step):
            part = sel[first : first + step]
            lo, hi = grid.ranges(px[part], py[part], ring)
            counts = hi - lo
            per_point = counts.sum(axis=1)
            cum = np.cumsum(per_point)
            cuts = np.unique(np.searchsorted(cum, np.arange(PAIR_CHUNK, int(cum[-1]), PAIR_CHUNK)))
            for rows in np.split(np.arange(len(part)), cuts):
                if len(rows):
                    parts.append(self._pairs(px, py, part, rows, lo, counts, radius_m))
        point, seg, dist, factor = (np.concatenate(column) for column in zip(*parts, strict=True))
        return point, seg, dist, factor

    def _pairs(
        self,
        px: np.ndarray,
        py: np.ndarray,
        part: np.ndarray,
        rows: np.ndarray,
        lo: np.ndarray,
        counts: np.ndarray,
        radius_m: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        c = counts[rows].ravel()
        pos = np.repeat(lo[rows].ravel() - (np.cumsum(c) - c), c) + np.arange(int(c.sum()))
        point = part[np.repeat(rows, counts[rows].sum(axis=1))]
        seg = self.grid.seg[pos]
        dist, factor = point_segment_distance(
            px[point], py[point], self.ax[seg], self.ay[seg], self.bx[seg], self.by[seg]
        )
        near = dist <= radius_m
        return point[near], seg[near], dist[near], factor[near]
