"""The walk network as arrays: CSR adjacency, node coordinates and an edge-geometry index.

The graph is converted once (:meth:`WalkNetwork.from_area`, :meth:`WalkNetwork.from_graph`,
:meth:`WalkNetwork.from_arrays`); every distance query then runs on the CSR arrays with
``scipy.sparse.csgraph``. Points reach the network through :meth:`WalkNetwork.snap`: the
straight line to their projection on the nearest walkable edge (not the nearest node).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ._arrays import ends_index
from ._crs import require_metric
from ._errors import EmptyAreaError, InputError
from .edge_arrays import csr_min, first_of_each
from .geometry import line_ends, single_lines
from .snap_grid import EdgeSegments
from .snapping import (
    DEFAULT_FRAGMENTS,
    TIE_TOL_M,
    FragmentRule,
    Snap,
    SnapRows,
    fragment_edges,
    link_past_fragments,
    nearest_edges,
)

STORED_FIELDS = (
    "crs",
    "node_id",
    "node_xy",
    "edge_u",
    "edge_v",
    "edge_length_m",
    "edge_coords",
    "edge_offsets",
    "csr",
    "component",
    "fragment_edge",
)

__all__ = [
    "DEFAULT_FRAGMENTS",
    "DEFAULT_SNAP_LIMIT_M",
    "MIN_EDGE_M",
    "TIE_TOL_M",
    "FragmentRule",
    "Snap",
    "WalkNetwork",
]

if TYPE_CHECKING:
    import geopandas as gpd
    import networkx as nx
    import scipy.sparse as sp
    from pyproj import CRS

    from .area import Area

log = logging.getLogger(__name__)

DEFAULT_SNAP_LIMIT_M = 300.0
"""Points farther than this from every walkable edge are reported unreachable, not moved."""

MIN_EDGE_M = 1e-6
"""Zero-length pieces get this weight so that sparse storage keeps them as edges."""


@dataclass(frozen=True, eq=False)
class WalkNetwork:
    """A walk network converted once to arrays.

    Every edge can be walked both ways; the CSR matrix holds both directions with the edge's
    length in metres (parallel edges keep the shortest). Edges are undirected pieces: a way
    stored twice (once per direction) appears once.

    Attributes
    ----------
    crs
        Projected CRS in metres.
    node_id
        Original node ids (OSM ids), position = node index.
    node_xy
        ``(N, 2)`` node coordinates in metres.
    edge_u, edge_v
        Node indices at the start and end of each edge's geometry.
    edge_length_m
        Length of each edge's geometry (the weight of the edge).
    edge_coords, edge_offsets
        Each edge's line from ``u`` to ``v`` as coordinates: rows
        ``edge_offsets[i]:edge_offsets[i + 1]`` of ``edge_coords`` are edge ``i``'s vertices.
        Snapping works on these (:mod:`~servicecircle.snap_grid`); :attr:`edge_geometry` makes
        shapely lines of them when something asks.
    csr
        ``(N, N)`` symmetric adjacency with lengths in metres.
    component
        Connected-component label of each node.
    fragments
        The rule that tells fragments (small disconnected pieces) from the main network.
    fragment_edge
        Which edges lie on a fragment.
    main_edges
        The edges not on a fragment (empty when there is no fragment or fragments are kept).
    """

    crs: CRS
    node_id: np.ndarray
    node_xy: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    edge_coords: np.ndarray
    edge_offsets: np.ndarray
    csr: sp.csr_matrix
    component: np.ndarray
    fragments: FragmentRule = DEFAULT_FRAGMENTS
    fragment_edge: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    main_edges: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="int64"))
    lines: np.ndarray | None = field(default=None, repr=False)
    """The shapely lines of the edges when they were at hand (else made on first use)."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_area(cls, area: Area, *, fragments: FragmentRule = DEFAULT_FRAGMENTS) -> WalkNetwork:
        """Convert an :class:`~servicecircle.area.Area`'s walk network (from the area cache,
        beside the area, when the area came from it)."""
        from .area import walk_arrays
        from .cache import derived

        entry = derived(area, f"network v3 {fragments!r}")
        if entry is not None:
            stored = entry[0].load(entry[1], fields=STORED_FIELDS)
            if stored is not None:
                return cls.from_stored(stored, fragments=fragments)
        walk = walk_arrays(area)
        if walk is not None:  # our PBF pass's arrays: straight edges, no frame made
            net = cls.from_arrays(
                node_id=walk.node_id,
                node_xy=walk.node_xy,
                edge_u_id=walk.u,
                edge_v_id=walk.v,
                crs=area.crs,
                fragments=fragments,
            )
        else:
            net = cls.from_frames(area.nodes, area.edges, fragments=fragments)
        if entry is not None:
            entry[0].store(entry[1], net.stored())
        return net

    def stored(self) -> dict[str, Any]:
        """The arrays that make this network (for the cache)."""
        return {
            "crs": self.crs.to_wkt(),
            "node_id": self.node_id,
            "node_xy": self.node_xy,
            "edge_u": self.edge_u,
            "edge_v": self.edge_v,
            "edge_length_m": self.edge_length_m,
            "edge_coords": self.edge_coords,
            "edge_offsets": self.edge_offsets,
            "csr": (self.csr.data, self.csr.indices, self.csr.indptr, self.csr.shape),
            "component": self.component,
            "fragment_edge": self.fragment_edge,
        }

    @classmethod
    def from_stored(cls, s: dict[str, Any], *, fragments: FragmentRule) -> WalkNetwork:
        """The network :meth:`stored` kept (no shapely object is made until one is asked
        for)."""
        import scipy.sparse as sp
        from pyproj import CRS

        on_fragment = np.asarray(s["fragment_edge"], dtype=bool)
        main_edges = np.zeros(0, dtype="int64")
        if on_fragment.any() and not fragments.keep:
            main_edges = np.flatnonzero(~on_fragment).astype("int64")
        data, indices, indptr, shape = s["csr"]
        return cls(
            crs=CRS.from_wkt(s["crs"]),
            node_id=s["node_id"],
            node_xy=s["node_xy"],
            edge_u=s["edge_u"],
            edge_v=s["edge_v"],
            edge_length_m=s["edge_length_m"],
            edge_coords=s["edge_coords"],
            edge_offsets=s["edge_offsets"],
            csr=sp.csr_matrix((data, indices, indptr), shape=shape),
            component=s["component"],
            fragments=fragments,
            fragment_edge=on_fragment,
            main_edges=main_edges,
        )

    @classmethod
    def from_frames(
        cls,
        nodes: gpd.GeoDataFrame,
        edges: gpd.GeoDataFrame,
        *,
        fragments: FragmentRule = DEFAULT_FRAGMENTS,
    ) -> WalkNetwork:
        """From a node frame (index = node id) and an edge frame (``u``, ``v``, geometry)."""
        crs = require_metric(edges.crs, "walk network")
        if len(edges) == 0:
            raise EmptyAreaError("walk network has no edges; check the area's boundary")
        geoms = edges.geometry.to_numpy()
        node_xy = np.column_stack([nodes.geometry.x.to_numpy(), nodes.geometry.y.to_numpy()])
        return cls.from_arrays(
            node_id=nodes.index.to_numpy(dtype="int64"),
            node_xy=node_xy,
            edge_u_id=edges["u"].to_numpy(dtype="int64"),
            edge_v_id=edges["v"].to_numpy(dtype="int64"),
            edge_geometry=np.asarray(geoms, dtype=object)
            if len(geoms)
            else np.empty(0, dtype=object),
            crs=crs,
            fragments=fragments,
        )

    @classmethod
    def from_graph(
        cls,
        graph: nx.MultiDiGraph | nx.Graph,
        *,
        crs: Any = None,
        fragments: FragmentRule = DEFAULT_FRAGMENTS,
    ) -> WalkNetwork:
        """From a networkx graph with node ``x``/``y`` and optional edge ``geometry``.

        Edges without geometry become straight lines between their nodes. The CRS is taken
        from ``graph.graph["crs"]`` unless given, and must be in metres.
        """
        crs = require_metric(crs if crs is not None else graph.graph.get("crs"), "walk graph")
        ids = np.fromiter(graph.nodes, dtype="int64", count=graph.number_of_nodes())
        xy = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in graph.nodes])
        us, vs, geoms = [], [], []
        for u, v, data in graph.edges(data=True):
            us.append(u)
            vs.append(v)
            geoms.append(data.get("geometry"))
        return cls.from_arrays(
            node_id=ids,
            node_xy=xy.reshape(-1, 2),
            edge_u_id=np.asarray(us, dtype="int64"),
            edge_v_id=np.asarray(vs, dtype="int64"),
            edge_geometry=np.asarray(geoms, dtype=object),
            crs=crs,
            fragments=fragments,
        )

    @classmethod
    def from_arrays(
        cls,
        *,
        node_id: np.ndarray,
        node_xy: np.ndarray,
        edge_u_id: np.ndarray,
        edge_v_id: np.ndarray,
        edge_geometry: np.ndarray | None = None,
        crs: Any,
        fragments: FragmentRule = DEFAULT_FRAGMENTS,
    ) -> WalkNetwork:
        """From plain arrays. ``edge_geometry`` entries may be ``None`` (straight line).

        This is the one place the graph becomes CSR arrays.
        """
        import scipy.sparse as sp
        import shapely
        from scipy.sparse.csgraph import connected_components

        crs = require_metric(crs, "walk network")
        node_id = np.asarray(node_id, dtype="int64")
        node_xy = np.asarray(node_xy, dtype="float64").reshape(-1, 2)
        if len(node_id) == 0 or len(edge_u_id) == 0:
            raise EmptyAreaError("walk network is empty; check the area's boundary")
        order = np.argsort(node_id, kind="stable")
        sorted_ids = node_id[order]
        if np.any(sorted_ids[1:] == sorted_ids[:-1]):
            raise InputError("walk network has duplicate node ids; give each node one id")

        u_id, v_id = np.asarray(edge_u_id, dtype="int64"), np.asarray(edge_v_id, dtype="int64")
        u, v = ends_index(node_id, u_id, v_id)
        for pos, ids, what in ((u, u_id, "u"), (v, v_id, "v")):
            if (bad := pos < 0).any():
                raise InputError(
                    f"walk network: {int(bad.sum())} edges name an unknown {what} node "
                    f"(e.g. {int(ids[bad][0])}); every edge end must be a node"
                )
        geoms: np.ndarray | None = None
        if edge_geometry is None:  # straight lines: their length as GEOS sums it, no line made
            d = node_xy[v] - node_xy[u]
            length = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
        else:
            geoms = _oriented_lines(edge_geometry, node_xy, u, v)
            length = shapely.length(geoms).astype("float64")
        first = first_of_each(np.minimum(u, v), np.maximum(u, v), length, len(node_id))
        u, v, length = u[first], v[first], length[first]
        if geoms is not None:
            geoms = geoms[first]
        weight = np.maximum(length, MIN_EDGE_M)

        n = len(node_id)
        rows = np.concatenate([u, v])
        cols = np.concatenate([v, u])
        w = np.concatenate([weight, weight])
        csr = csr_min(rows, cols, w, n)
        _, component = connected_components(csr, directed=False)
        on_fragment = fragment_edges(component, u, length, fragments)
        main_edges = np.zeros(0, dtype="int64")
        if on_fragment.any() and not fragments.keep:
            main_edges = np.flatnonzero(~on_fragment)
        if geoms is None:
            coords = np.empty((2 * len(u), 2))
            coords[0::2], coords[1::2] = node_xy[u], node_xy[v]
            offsets = (np.arange(0, len(coords) + 1, 2, dtype=np.int64),)
        else:
            _, coords, offsets = shapely.to_ragged_array(geoms, include_z=False)
        log.debug(
            "walk network: %d nodes, %d edges (%d on fragments)", n, len(u), int(on_fragment.sum())
        )
        return cls(
            crs=crs,
            node_id=node_id,
            node_xy=node_xy,
            edge_u=u.astype("int64"),
            edge_v=v.astype("int64"),
            edge_length_m=length,
            edge_coords=coords,
            edge_offsets=offsets[0].astype("int64"),
            csr=sp.csr_matrix(csr),
            component=component.astype("int32"),
            fragments=fragments,
            fragment_edge=on_fragment,
            main_edges=main_edges.astype("int64"),
            lines=geoms,
        )

    # ------------------------------------------------------------------ queries
    @cached_property
    def edge_geometry(self) -> np.ndarray:
        """Shapely LineStrings from ``u`` to ``v``: the lines the network was made of, or, for
        a network from the cache, made of :attr:`edge_coords` (in 2-D) on first use."""
        if self.lines is not None:
            return self.lines
        import shapely

        return np.asarray(
            shapely.from_ragged_array(
                shapely.GeometryType.LINESTRING, self.edge_coords, (self.edge_offsets,)
            ),
            dtype=object,
        )

    @cached_property
    def segments(self) -> EdgeSegments:
        """The straight segments of every edge, for snapping."""
        return EdgeSegments.of_lines(self.edge_coords, self.edge_offsets)

    @cached_property
    def main_segments(self) -> EdgeSegments | None:
        """The segments of the edges not on a fragment (``None`` when none is set apart)."""
        if len(self.main_edges) == 0:
            return None
        return self.segments.take(~self.fragment_edge[self.segments.edge])

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_id)

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return len(self.edge_u)

    def snap(self, points: Any, *, snap_limit_m: float = DEFAULT_SNAP_LIMIT_M) -> Snap:
        """Project points onto their nearest walkable edge.

        The nearest edge is searched over the whole network; when it lies on a fragment (see
        :class:`FragmentRule`) and an edge of the main network is within the snap limit, the
        point is linked to that one instead (``Snap.linked``). Edges within :data:`TIE_TOL_M`
        of the nearest distance are ties: the walk may start from any of them (``Snap.tie_*``).

        Parameters
        ----------
        points
            A GeoSeries/GeoDataFrame in this network's CRS, an array of shapely Points, or an
            ``(n, 2)`` array of coordinates in metres.
        snap_limit_m
            Points farther than this from every edge are not moved: their ``edge`` is ``-1``.

        Returns
        -------
        Snap
            Edge, offset along it from ``u``, access leg, and projection point per input point.
        """
        import shapely

        if snap_limit_m <= 0 or not np.isfinite(snap_limit_m):
            raise InputError(f"snap limit must be a positive number of metres; got {snap_limit_m}")
        pts = self._as_points(points)
        n = len(pts)
        px, py = shapely.get_x(pts), shapely.get_y(pts)  # (NaN for a missing or empty point)
        valid = np.flatnonzero(np.isfinite(px) & np.isfinite(py))
        rows = nearest_edges(self.segments, px, py, valid, snap_limit_m)
        linked = np.zeros(n, dtype=bool)
        if self.main_segments is not None and len(rows.point):
            rows, linked = link_past_fragments(
                rows, self.fragment_edge, self.main_segments, px, py, snap_limit_m
            )
        return self._snap_rows(n, rows, linked, float(snap_limit_m))

    def _snap_rows(self, n: int, rows: SnapRows, linked: np.ndarray, snap_limit_m: float) -> Snap:
        """(point, edge, distance, …) rows → a Snap: the nearest row per point is its snap (ties
        by edge index), the others its ties, less those starting at the very same node."""
        edge = np.full(n, -1, dtype="int64")
        offset = np.full(n, np.nan)
        access = np.full(n, np.nan)
        px = np.full(n, np.nan)
        py = np.full(n, np.nan)
        if len(rows.point) == 0:
            return Snap(edge, offset, access, px, py, snap_limit_m, linked)
        order = np.lexsort((rows.edge, rows.dist, rows.point))
        src, dst, dist = rows.point[order], rows.edge[order], rows.dist[order]
        off = np.clip(rows.offset_m[order], 0.0, self.edge_length_m[dst])
        x, y = rows.x[order], rows.y[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = src[1:] != src[:-1]
        p = src[first]
        edge[p], offset[p], access[p] = dst[first], off[first], dist[first]
        px[p], py[p] = x[first], y[first]
        # where a row starts: at a node (an end of its edge) or inside the edge
        length = self.edge_length_m[dst]
        at_u, at_v = off <= TIE_TOL_M, off >= length - TIE_TOL_M
        anchor = np.where(at_u, self.edge_u[dst], np.where(at_v, self.edge_v[dst], -1))
        key = np.where(anchor >= 0, anchor, self.n_nodes + dst)
        _, keep = np.unique(np.column_stack([src, key]), axis=0, return_index=True)
        tie = np.zeros(len(src), dtype=bool)
        tie[keep] = True  # the first row of each start; a node reached by two edges once
        primary_key = key[np.flatnonzero(first)][np.cumsum(first) - 1]
        tie &= ~first & (key != primary_key)
        t = np.flatnonzero(tie)
        return Snap(
            edge, offset, access, px, py, snap_limit_m, linked,
            src[t], dst[t], off[t], dist[t], x[t], y[t],
        )  # fmt: skip

    def fragment_summary(self) -> dict[str, Any]:
        """The fragments of this network and the rule that found them (for summaries)."""
        comps = np.unique(self.component[self.edge_u[self.fragment_edge]])
        return {
            "components": len(np.unique(self.component[self.edge_u])),
            "fragments": len(comps),
            "fragment_nodes": int(np.isin(self.component, comps).sum()),
            "fragment_street_m": round(float(self.edge_length_m[self.fragment_edge].sum()), 1),
            "rule": {
                "max_nodes": self.fragments.max_nodes,
                "max_m": self.fragments.max_m,
                "keep_fragments": self.fragments.keep,
            },
        }

    def _as_points(self, points: Any) -> np.ndarray:
        import geopandas as gpd
        import shapely

        if isinstance(points, gpd.GeoDataFrame | gpd.GeoSeries):
            crs = require_metric(points.crs, "points")
            if not crs.equals(self.crs):
                raise InputError(
                    f"points are in {crs.to_string()} but the walk network is in "
                    f"{self.crs.to_string()}; reproject them with .to_crs(network.crs)"
                )
            geoms = np.asarray(points.geometry.to_numpy(), dtype=object)
        else:
            arr = np.asarray(points)
            if arr.dtype != object:
                arr = arr.astype("float64").reshape(-1, 2)
                return np.asarray(shapely.points(arr), dtype=object)
            geoms = arr
        kinds = set(shapely.get_type_id(geoms[~shapely.is_missing(geoms)]).tolist())
        if kinds - {0}:
            geoms = np.where(
                shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms)
            )
        return geoms

    def subgraph(self, nodes: np.ndarray) -> sp.csr_matrix:
        """CSR of the edges among ``nodes`` (sorted, unique), rows/cols in the order of ``nodes``.

        Costs O(edges of ``nodes``), unlike sparse fancy indexing, which touches every column.
        """
        import scipy.sparse as sp

        nodes = np.asarray(nodes, dtype="int64")
        csr = self.csr
        starts = csr.indptr[nodes].astype("int64")
        counts = csr.indptr[nodes + 1].astype("int64") - starts
        total = int(counts.sum())
        first = np.cumsum(counts) - counts
        pos = np.repeat(starts - first, counts) + np.arange(total)
        cols = np.searchsorted(nodes, csr.indices[pos])
        cols = np.minimum(cols, len(nodes) - 1)
        keep = nodes[cols] == csr.indices[pos]
        rows = np.repeat(np.arange(len(nodes)), counts)[keep]
        indptr = np.zeros(len(nodes) + 1, dtype="int64")
        np.cumsum(np.bincount(rows, minlength=len(nodes)), out=indptr[1:])
        return sp.csr_matrix(
            (csr.data[pos][keep], cols[keep].astype("int32"), indptr.astype("int32")),
            shape=(len(nodes), len(nodes)),
        )

    def neighbours(self, nodes: np.ndarray) -> np.ndarray:
        """Sorted unique neighbours of ``nodes``."""
        csr = self.csr
        nodes = np.asarray(nodes, dtype="int64")
        starts = csr.indptr[nodes].astype("int64")
        counts = csr.indptr[nodes + 1].astype("int64") - starts
        first = np.cumsum(counts) - counts
        pos = np.repeat(starts - first, counts) + np.arange(int(counts.sum()))
        return np.unique(csr.indices[pos]).astype("int64")

    def to_networkx(self) -> nx.Graph:
        """An undirected networkx graph of the same edges (for checks and oracles)."""
        import networkx as nx

        graph = nx.MultiGraph()
        graph.add_nodes_from(range(self.n_nodes))
        for i, (a, b, w) in enumerate(
            zip(
                self.edge_u.tolist(), self.edge_v.tolist(), self.edge_length_m.tolist(), strict=True
            )
        ):
            graph.add_edge(a, b, key=i, length=max(w, MIN_EDGE_M))
        return graph


def _oriented_lines(
    edge_geometry: np.ndarray, node_xy: np.ndarray, u: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """The edges' lines (a copy), straight from ``u`` to ``v`` where one is missing, each
    turned to run from ``u`` to ``v``."""
    import shapely

    geoms = single_lines(edge_geometry, "walk network")  # a copy: the caller's stays as it is
    missing = np.asarray(shapely.is_missing(geoms) | shapely.is_empty(geoms), dtype=bool)
    if missing.any():
        idx = np.flatnonzero(missing)
        coords = np.stack([node_xy[u[idx]], node_xy[v[idx]]], axis=1)
        geoms[idx] = shapely.linestrings(coords)
    start, end = line_ends(geoms)
    d_fwd = np.hypot(*(start - node_xy[u]).T) + np.hypot(*(end - node_xy[v]).T)
    d_rev = np.hypot(*(start - node_xy[v]).T) + np.hypot(*(end - node_xy[u]).T)
    flip = d_rev < d_fwd
    if flip.any():
        geoms[flip] = shapely.reverse(geoms[flip])
    return geoms
