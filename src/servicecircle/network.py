"""The walk network as arrays: CSR adjacency, node coordinates and an edge-geometry index.

The graph is converted once (:meth:`WalkNetwork.from_area`, :meth:`WalkNetwork.from_graph`,
:meth:`WalkNetwork.from_arrays`); every distance query then runs on the CSR arrays with
``scipy.sparse.csgraph``. Points reach the network through :meth:`WalkNetwork.snap`: the
straight line to their projection on the nearest walkable edge (not the nearest node).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._crs import require_metric
from ._errors import EmptyAreaError, InputError

if TYPE_CHECKING:
    import geopandas as gpd
    import networkx as nx
    import scipy.sparse as sp
    from pyproj import CRS
    from shapely import STRtree

    from .area import Area

log = logging.getLogger(__name__)

DEFAULT_SNAP_LIMIT_M = 300.0
"""Points farther than this from every walkable edge are reported unreachable, not moved."""

MIN_EDGE_M = 1e-6
"""Zero-length pieces get this weight so that sparse storage keeps them as edges."""


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
    """

    edge: np.ndarray
    offset_m: np.ndarray
    access_m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    snap_limit_m: float

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of points that reached the network."""
        return self.edge >= 0

    def __len__(self) -> int:
        return len(self.edge)

    def concat(self, other: Snap) -> Snap:
        """These snaps followed by ``other``'s."""
        return Snap(
            edge=np.concatenate([self.edge, other.edge]),
            offset_m=np.concatenate([self.offset_m, other.offset_m]),
            access_m=np.concatenate([self.access_m, other.access_m]),
            x=np.concatenate([self.x, other.x]),
            y=np.concatenate([self.y, other.y]),
            snap_limit_m=self.snap_limit_m,
        )

    def subset(self, mask: np.ndarray) -> Snap:
        """The snaps of the selected points."""
        return Snap(
            edge=self.edge[mask],
            offset_m=self.offset_m[mask],
            access_m=self.access_m[mask],
            x=self.x[mask],
            y=self.y[mask],
            snap_limit_m=self.snap_limit_m,
        )


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
    edge_geometry
        Shapely LineStrings from ``u`` to ``v``.
    csr
        ``(N, N)`` symmetric adjacency with lengths in metres.
    component
        Connected-component label of each node.
    tree
        STRtree over ``edge_geometry`` for snapping.
    """

    crs: CRS
    node_id: np.ndarray
    node_xy: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    edge_geometry: np.ndarray
    csr: sp.csr_matrix
    component: np.ndarray
    tree: STRtree

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_area(cls, area: Area) -> WalkNetwork:
        """Convert an :class:`~servicecircle.area.Area`'s walk network."""
        return cls.from_frames(area.nodes, area.edges)

    @classmethod
    def from_frames(cls, nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame) -> WalkNetwork:
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
        )

    @classmethod
    def from_graph(cls, graph: nx.MultiDiGraph | nx.Graph, *, crs: Any = None) -> WalkNetwork:
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

        def to_index(ids: np.ndarray, what: str) -> np.ndarray:
            pos = np.searchsorted(sorted_ids, ids)
            pos = np.clip(pos, 0, len(sorted_ids) - 1)
            bad = sorted_ids[pos] != ids
            if bad.any():
                raise InputError(
                    f"walk network: {int(bad.sum())} edges name an unknown {what} node "
                    f"(e.g. {int(ids[bad][0])}); every edge end must be a node"
                )
            return order[pos]

        u = to_index(np.asarray(edge_u_id, dtype="int64"), "u")
        v = to_index(np.asarray(edge_v_id, dtype="int64"), "v")
        if edge_geometry is None:
            edge_geometry = np.full(len(u), None, dtype=object)
        geoms = np.asarray(edge_geometry, dtype=object)
        missing = np.array([g is None for g in geoms], dtype=bool)
        if missing.any():
            idx = np.flatnonzero(missing)
            coords = np.stack([node_xy[u[idx]], node_xy[v[idx]]], axis=1)
            geoms[idx] = shapely.linestrings(coords)
        # Orient every geometry from u to v.
        start = shapely.get_coordinates(shapely.get_point(geoms, 0))
        end = shapely.get_coordinates(shapely.get_point(geoms, -1))
        d_fwd = np.hypot(*(start - node_xy[u]).T) + np.hypot(*(end - node_xy[v]).T)
        d_rev = np.hypot(*(start - node_xy[v]).T) + np.hypot(*(end - node_xy[u]).T)
        flip = d_rev < d_fwd
        if flip.any():
            geoms[flip] = shapely.reverse(geoms[flip])
        length = shapely.length(geoms).astype("float64")
        # One undirected edge per (unordered pair, length): drops the reverse copy of a way.
        a, b = np.minimum(u, v), np.maximum(u, v)
        key = np.round(length * 1000).astype("int64")
        order = np.lexsort((key, b, a))
        sa, sb, sk = a[order], b[order], key[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (sa[1:] != sa[:-1]) | (sb[1:] != sb[:-1]) | (sk[1:] != sk[:-1])
        first = np.sort(order[new])
        u, v, geoms, length = u[first], v[first], geoms[first], length[first]
        weight = np.maximum(length, MIN_EDGE_M)

        n = len(node_id)
        rows = np.concatenate([u, v])
        cols = np.concatenate([v, u])
        w = np.concatenate([weight, weight])
        csr = _csr_min(rows, cols, w, n)
        _, component = connected_components(csr, directed=False)
        tree = shapely.STRtree(geoms)
        log.debug("walk network: %d nodes, %d edges", n, len(u))
        return cls(
            crs=crs,
            node_id=node_id,
            node_xy=node_xy,
            edge_u=u.astype("int64"),
            edge_v=v.astype("int64"),
            edge_length_m=length,
            edge_geometry=geoms,
            csr=sp.csr_matrix(csr),
            component=component.astype("int32"),
            tree=tree,
        )

    # ------------------------------------------------------------------ queries
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
        edge = np.full(n, -1, dtype="int64")
        offset = np.full(n, np.nan)
        access = np.full(n, np.nan)
        px = np.full(n, np.nan)
        py = np.full(n, np.nan)
        valid = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
        if n and valid.any():
            idx_valid = np.flatnonzero(valid)
            (src, dst), dist = self.tree.query_nearest(
                pts[idx_valid], max_distance=snap_limit_m, return_distance=True, all_matches=False
            )
            src = idx_valid[src]
            ok = dist <= snap_limit_m
            src, dst, dist = src[ok], dst[ok], dist[ok]
            geoms = self.edge_geometry[dst]
            off = shapely.line_locate_point(geoms, pts[src])
            proj = shapely.line_interpolate_point(geoms, off)
            xy = shapely.get_coordinates(proj)
            edge[src] = dst
            offset[src] = np.clip(off, 0.0, self.edge_length_m[dst])
            access[src] = dist
            px[src], py[src] = xy[:, 0], xy[:, 1]
        return Snap(
            edge=edge,
            offset_m=offset,
            access_m=access,
            x=px,
            y=py,
            snap_limit_m=float(snap_limit_m),
        )

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


def _csr_min(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n: int) -> sp.csr_matrix:
    """CSR matrix keeping the minimum weight of duplicate (row, col) pairs."""
    import scipy.sparse as sp

    order = np.lexsort((weights, cols, rows))
    rows, cols, weights = rows[order], cols[order], weights[order]
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, weights = rows[keep], cols[keep], weights[keep]
    indptr = np.zeros(n + 1, dtype="int64")
    np.add.at(indptr, rows + 1, 1)
    np.cumsum(indptr, out=indptr)
    return sp.csr_matrix(
        (weights, cols.astype("int32"), indptr.astype("int32") if len(rows) < 2**31 else indptr),
        shape=(n, n),
    )
