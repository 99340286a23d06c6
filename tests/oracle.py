"""An independent oracle for walking distances: networkx on a graph split at every projection.

It shares nothing with servicecircle's distance code: points are snapped by brute force over
every edge (shapely distance/project), each edge is cut at the projections of the points on
it, every point becomes a node joined to its projection by its access leg, and networkx's
Dijkstra gives the nearest facility.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import pairwise

import networkx as nx
import numpy as np
import shapely
from shapely.geometry import LineString, Point


def brute_snap(point: Point, lines: list[LineString], limit: float):
    """(edge index, offset, access) of the nearest line, or None past the limit."""
    dists = [line.distance(point) for line in lines]
    i = int(np.argmin(dists))
    if dists[i] > limit:
        return None
    return i, lines[i].project(point), dists[i]


def oracle_nearest(
    node_xy: dict[int, tuple[float, float]],
    edges: list[tuple[int, int, LineString | None]],
    demand_xy: np.ndarray,
    facility_xy: np.ndarray,
    *,
    snap_limit: float = 300.0,
) -> np.ndarray:
    """Walking distance from each demand point to its nearest facility (inf when none)."""
    lines = [
        geom if geom is not None else LineString([node_xy[u], node_xy[v]]) for u, v, geom in edges
    ]
    g = nx.Graph()
    g.add_nodes_from(("n", n) for n in node_xy)
    on_edge: dict[int, list[tuple[float, object]]] = defaultdict(list)
    point_nodes: dict[str, list[object]] = {"d": [], "f": []}
    for tag, pts in (("d", demand_xy), ("f", facility_xy)):
        for i, (x, y) in enumerate(pts):
            node = (tag, i)
            point_nodes[tag].append(node)
            g.add_node(node)
            snapped = brute_snap(Point(x, y), lines, snap_limit)
            if snapped is None:
                continue
            e, off, acc = snapped
            proj = ("p", tag, i)
            g.add_edge(node, proj, w=acc)
            on_edge[e].append((off, proj))

    def add(a, b, w):
        if a == b:
            return
        if g.has_edge(a, b):
            w = min(w, g.edges[a, b]["w"])
        g.add_edge(a, b, w=w)

    for e, (u, v, _) in enumerate(edges):
        length = lines[e].length
        stops = sorted(on_edge.get(e, []), key=lambda s: s[0])
        chain = [(0.0, ("n", u)), *stops, (length, ("n", v))]
        for (o1, a), (o2, b) in pairwise(chain):
            add(a, b, max(o2 - o1, 0.0))
    if not point_nodes["f"]:
        return np.full(len(demand_xy), math.inf)
    dist = nx.multi_source_dijkstra_path_length(g, set(point_nodes["f"]), weight="w")
    return np.array([dist.get(node, math.inf) for node in point_nodes["d"]])


def network_edges(net) -> tuple[dict[int, tuple[float, float]], list]:
    """The nodes and edges of a WalkNetwork in the oracle's shape."""
    node_xy = {i: tuple(xy) for i, xy in enumerate(net.node_xy.tolist())}
    edges = [
        (int(u), int(v), shapely.from_wkb(shapely.to_wkb(g)))
        for u, v, g in zip(net.edge_u, net.edge_v, net.edge_geometry, strict=True)
    ]
    return node_xy, edges
