"""Where points meet the walk network: :class:`Snap`, the tie rule and street fragments.

A point's walk starts at its projection on the nearest walkable edge. Edges within
:data:`TIE_TOL_M` of the nearest distance are ties: the walk may start from any of them and the
distance is the minimum over them. A point whose nearest edge lies on a fragment (a small
disconnected piece, see :class:`FragmentRule`) is linked to the nearest edge of the main network
instead, when that lies within the snap limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ._errors import InputError

if TYPE_CHECKING:
    from shapely import STRtree

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
"""Snapping first looks this far around every point (one bulk query); the few points with no
street that close are searched again up to the snap limit."""


def nearest_edges(
    tree: STRtree, pts: np.ndarray, which: np.ndarray, limit_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, edge, distance) for every edge of ``tree`` within :data:`TIE_TOL_M` of each
    selected point's nearest one, for points with an edge within ``limit_m``.

    One bulk query (:func:`edges_within`) at :data:`FIRST_RADIUS_M` settles most points exactly
    (an edge nearer than the radius is among the hits); the rest go through ``query_nearest``.
    """
    which = np.asarray(which, dtype="int64")
    empty = np.zeros(0, dtype="int64")
    if len(which) == 0:
        return empty, empty, np.zeros(0)

    src, dst, dist = edges_within(tree, pts, which, min(limit_m, FIRST_RADIUS_M))
    best = np.full(len(pts), np.inf)
    np.minimum.at(best, src, dist)
    keep = dist <= best[src] + TIE_TOL_M
    src, dst, dist = src[keep], dst[keep], dist[keep]
    rest = which[~np.isfinite(best[which])]
    if len(rest) and limit_m > FIRST_RADIUS_M:
        (s, _), d = tree.query_nearest(
            pts[rest], max_distance=limit_m, return_distance=True, all_matches=False
        )
        ok = d <= limit_m
        if ok.any():
            s2, e2, d2 = edges_within(tree, pts, rest[s[ok]], d[ok] + TIE_TOL_M)
            src = np.concatenate([src, s2])
            dst = np.concatenate([dst, e2])
            dist = np.concatenate([dist, d2])
    return src, dst, dist


QUERY_CHUNK = 100_000
"""Points queried at once by :func:`edges_within` (each gets a box polygon while it is)."""


def edges_within(
    tree: STRtree, pts: np.ndarray, sel: np.ndarray, radius: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, edge, distance) for every edge of ``tree`` within ``radius`` (metres; one, or
    one per point) of each point ``pts[sel]``, in point order.

    The hits of each point's box grown by its radius, one ``shapely.distance`` each, kept when
    ``≤ radius``: the pairs of a ``dwithin`` query in about half the time (that query computes
    every distance, and they are needed again), and a pair exactly at the radius is always kept.
    """
    import shapely

    r_all = np.broadcast_to(np.asarray(radius, dtype="float64"), len(sel))
    parts = [(np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64"), np.zeros(0))]
    for start in range(0, len(sel), QUERY_CHUNK):
        s, r = sel[start : start + QUERY_CHUNK], r_all[start : start + QUERY_CHUNK]
        b = shapely.bounds(pts[s])
        hp, he = tree.query(shapely.box(b[:, 0] - r, b[:, 1] - r, b[:, 2] + r, b[:, 3] + r))
        dist = np.asarray(shapely.distance(pts[s[hp]], tree.geometries[he]), dtype="float64")
        near = dist <= r[hp]
        parts.append((s[hp[near]].astype("int64"), he[near].astype("int64"), dist[near]))
    src, dst, dist = (np.concatenate(column) for column in zip(*parts, strict=True))
    return src, dst, dist


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
