"""Where points meet the walk network: :class:`Snap`, the tie rule and street fragments.

A point's walk starts at its projection on the nearest walkable edge. Edges within
:data:`TIE_TOL_M` of the nearest distance are ties: the walk may start from any of them and the
distance is the minimum over them. A point whose nearest edge lies on a fragment (a small
disconnected piece, see :class:`FragmentRule`) is linked to the nearest edge of the main network
instead, when that lies within the snap limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ._errors import InputError

if TYPE_CHECKING:
    from .snap_grid import EdgeSegments

TIE_TOL_M = 1e-3
"""Edges whose distance to a point is within this of the nearest one are tied: the walk may
start from any of them, and the distance is the minimum over them."""


@dataclass(frozen=True)
class FragmentRule:
    """Which connected pieces of the walk network are fragments.

    A fragment is a connected component, other than the largest, with fewer than
    ``max_nodes`` nodes and less than ``max_m`` metres of street: a courtyard path, a building
    passage, a footway whose end was never joined. A point whose nearest street is a fragment is
    linked to the nearest street of the main network instead when that lies within the snap
    limit (its access leg is then the straight line to it). ``keep=True`` snaps onto fragments
    like any street.
    """

    max_nodes: int = 100
    max_m: float = 2000.0
    keep: bool = False

    def __post_init__(self) -> None:
        if not (self.max_nodes >= 0 and self.max_m >= 0):
            raise InputError(
                f"fragment limits must be zero or more; got {self.max_nodes} nodes, {self.max_m} m"
            )


DEFAULT_FRAGMENTS = FragmentRule()


@dataclass(frozen=True, eq=False)
class Snap:
    """Where points meet the walk network (aligned to the input points).

    Attributes
    ----------
    edge
        Index of the edge each point snapped to, ``-1`` when it is past the snap limit.
    offset_m
        Distance along that edge from its ``u`` end to the projection point.
    access_m
        Straight-line length from the point to its projection (the access or egress leg).
    x, y
        The projection point (NaN when unsnapped).
    snap_limit_m
        The limit used.
    linked
        Points whose nearest street was a fragment and that were linked to the main network.
    tie_point, tie_edge, tie_offset_m, tie_access_m, tie_x, tie_y
        Further edges a point is tied to (within :data:`TIE_TOL_M` of its nearest distance):
        ``tie_point`` is the point's row; the walk may start from any of its edges.
    """

    edge: np.ndarray
    offset_m: np.ndarray
    access_m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    snap_limit_m: float
    linked: np.ndarray | None = None
    tie_point: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="int64"))
    tie_edge: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="int64"))
    tie_offset_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tie_access_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tie_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tie_y: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of points that reached the network."""
        return self.edge >= 0

    @property
    def linked_past_fragment(self) -> np.ndarray:
        """Boolean mask of points linked past a fragment to the main network."""
        if self.linked is None:
            return np.zeros(len(self.edge), dtype=bool)
        return self.linked

    def __len__(self) -> int:
        return len(self.edge)

    def _ties(self) -> tuple[np.ndarray, ...]:
        return (
            self.tie_point,
            self.tie_edge,
            self.tie_offset_m,
            self.tie_access_m,
            self.tie_x,
            self.tie_y,
        )

    def expand(self) -> tuple[Snap, np.ndarray]:
        """Every (point, edge) start as its own row, and the point each row belongs to.

        The first ``len(self)`` rows are the points themselves; tied edges follow. Code that
        takes the minimum over a point's rows (its distance) follows the tie rule.
        """
        if len(self.tie_point) == 0:
            return self, np.arange(len(self.edge))
        flat = Snap(
            edge=np.concatenate([self.edge, self.tie_edge]),
            offset_m=np.concatenate([self.offset_m, self.tie_offset_m]),
            access_m=np.concatenate([self.access_m, self.tie_access_m]),
            x=np.concatenate([self.x, self.tie_x]),
            y=np.concatenate([self.y, self.tie_y]),
            snap_limit_m=self.snap_limit_m,
        )
        return flat, np.concatenate([np.arange(len(self.edge)), self.tie_point])

    def concat(self, other: Snap) -> Snap:
        """These snaps followed by ``other``'s."""
        n = len(self.edge)
        a, b = self._ties(), other._ties()
        ties = [np.concatenate([a[0], b[0] + n])] + [
            np.concatenate([x, y]) for x, y in zip(a[1:], b[1:], strict=True)
        ]
        return Snap(
            np.concatenate([self.edge, other.edge]),
            np.concatenate([self.offset_m, other.offset_m]),
            np.concatenate([self.access_m, other.access_m]),
            np.concatenate([self.x, other.x]),
            np.concatenate([self.y, other.y]),
            self.snap_limit_m,
            np.concatenate([self.linked_past_fragment, other.linked_past_fragment]),
            *ties,
        )

    def subset(self, mask: np.ndarray) -> Snap:
        """The snaps of the selected points (a boolean mask or row numbers), with their ties."""
        rows = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)
        rows = rows.astype("int64")
        ties: list[np.ndarray] = [np.zeros(0, dtype="int64")] * 6
        if len(self.tie_point):
            new_row = np.full(len(self.edge), -1, dtype="int64")
            new_row[rows] = np.arange(len(rows))
            keep = new_row[self.tie_point] >= 0
            if np.unique(rows).size != rows.size:  # repeated rows: keep every copy's ties
                order = np.argsort(self.tie_point, kind="stable")
                tp = self.tie_point[order]
                pos = [np.flatnonzero(tp == r) for r in rows.tolist()]
                pick = order[np.concatenate(pos)] if pos else np.zeros(0, dtype="int64")
                owner = np.repeat(np.arange(len(rows)), [len(p) for p in pos])
                ties = [owner] + [t[pick] for t in self._ties()[1:]]
            else:
                ties = [new_row[self.tie_point[keep]]] + [t[keep] for t in self._ties()[1:]]
        return Snap(
            self.edge[rows],
            self.offset_m[rows],
            self.access_m[rows],
            self.x[rows],
            self.y[rows],
            self.snap_limit_m,
            self.linked_past_fragment[rows],
            *ties,
        )


FIRST_RADIUS_M = 50.0
"""Snapping first looks this far around every point; the few points with no street that close
are searched again at twice the radius, and so on up to the snap limit."""


class SnapRows(NamedTuple):
    """(point, edge) rows of a snap: the distance, where along the edge (from ``u``) the point
    projects, and the projection point."""

    point: np.ndarray
    edge: np.ndarray
    dist: np.ndarray
    offset_m: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def take(self, rows: np.ndarray) -> SnapRows:
        """The selected rows (a mask or row numbers)."""
        return SnapRows(*(column[rows] for column in self))

    @staticmethod
    def concat(parts: list[SnapRows]) -> SnapRows:
        """The rows of ``parts`` one after another."""
        return SnapRows(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _no_rows() -> SnapRows:
    empty_i, empty_f = np.zeros(0, dtype="int64"), np.zeros(0)
    return SnapRows(empty_i, empty_i, empty_f, empty_f, empty_f, empty_f)


def nearest_edges(
    segments: EdgeSegments, px: np.ndarray, py: np.ndarray, which: np.ndarray, limit_m: float
) -> SnapRows:
    """A row for every edge within :data:`TIE_TOL_M` of each selected point's nearest one,
    for points with an edge within ``limit_m``.

    Points are looked up at :data:`FIRST_RADIUS_M`, then the ones with no edge that near at
    twice the radius, and so on up to ``limit_m``: a point is settled by the first radius its
    nearest edge lies within (the query reaches :data:`TIE_TOL_M` further, for its ties).
    """
    which = np.asarray(which, dtype="int64")
    parts = [_no_rows()]
    radius = min(limit_m, FIRST_RADIUS_M)
    best = np.full(len(px), np.inf)
    while len(which):
        p, s, d, f = segments.within(px, py, which, radius + TIE_TOL_M)
        np.minimum.at(best, p, d)
        keep = (best[p] <= radius) & (d <= best[p] + TIE_TOL_M)
        parts.append(_per_edge(segments, px, py, p[keep], s[keep], d[keep], f[keep]))
        if radius >= limit_m:
            break
        which = which[~(best[which] <= radius)]
        radius = min(2.0 * radius, limit_m)
    return SnapRows.concat(parts)


def _per_edge(
    segments: EdgeSegments,
    px: np.ndarray,
    py: np.ndarray,
    p: np.ndarray,
    s: np.ndarray,
    d: np.ndarray,
    f: np.ndarray,
) -> SnapRows:
    """(point, segment) rows → one row per (point, edge): its least distance, on the first
    segment that has it (where ``line_locate_point`` projects)."""
    e = segments.edge[s]
    order = np.lexsort((s, d, e, p))
    p, s, d, f, e = p[order], s[order], d[order], f[order], e[order]
    first = np.ones(len(p), dtype=bool)
    first[1:] = (p[1:] != p[:-1]) | (e[1:] != e[:-1])
    p, s, d, f, e = p[first], s[first], d[first], f[first], e[first]
    ax, ay, bx, by = segments.ax[s], segments.ay[s], segments.bx[s], segments.by[s]
    dx, dy = bx - ax, by - ay
    offset = segments.start_m[s] + f * segments.length_m[s]
    x = np.where(f >= 1.0, bx, ax + f * dx)
    y = np.where(f >= 1.0, by, ay + f * dy)
    return SnapRows(p, e, d, offset, x, y)


def link_past_fragments(
    rows: SnapRows,
    fragment_edge: np.ndarray,
    main: EdgeSegments,
    px: np.ndarray,
    py: np.ndarray,
    limit_m: float,
) -> tuple[SnapRows, np.ndarray]:
    """Points whose nearest edges all lie on fragments, linked to the nearest edges of the
    main network (``main``) when those are within ``limit_m``; a tie between a fragment and
    the main network keeps only the main network's rows. Returns the rows and which points
    were linked."""
    linked = np.zeros(len(px), dtype=bool)
    on_frag = fragment_edge[rows.edge]
    p_frag = np.unique(rows.point[on_frag])
    has_main = np.zeros(len(px), dtype=bool)
    has_main[rows.point[~on_frag]] = True
    rows = rows.take(~(on_frag & has_main[rows.point]))
    stuck = p_frag[~has_main[p_frag]]
    moved = nearest_edges(main, px, py, stuck, limit_m)
    if len(moved.point):
        rows = SnapRows.concat([rows.take(~np.isin(rows.point, moved.point)), moved])
        linked[moved.point] = True
    return rows, linked


def fragment_edges(
    component: np.ndarray, edge_u: np.ndarray, length_m: np.ndarray, rule: FragmentRule
) -> np.ndarray:
    """Which edges lie on a fragment: a component other than the largest with fewer than
    ``rule.max_nodes`` nodes and less than ``rule.max_m`` metres of street."""
    nodes = np.bincount(component)
    if len(nodes) <= 1:
        return np.zeros(len(edge_u), dtype=bool)
    comp_of_edge = component[edge_u]
    metres = np.bincount(comp_of_edge, weights=length_m, minlength=len(nodes))
    small = (nodes < rule.max_nodes) & (metres < rule.max_m)
    small[int(np.argmax(nodes))] = False
    return np.asarray(small[comp_of_edge], dtype=bool)
