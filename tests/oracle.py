"""An independent oracle for walking distances: networkx on a graph split at every projection.

It shares nothing with servicecircle's distance code: points are snapped by brute force over
every edge (shapely distance/project), each edge is cut at the projections of the points on
it, every point becomes a node joined to its projection(s) by its access leg(s), and networkx's
Dijkstra gives the nearest facility.

It implements the README's rules on its own:

* ties: every edge within ``TIE_TOL_M`` of the nearest distance is a start (the distance is the
  minimum over them);
* fragments: a connected piece other than the largest (ties: the one holding the lowest node)
  with fewer than ``max_nodes`` nodes and less than ``max_m`` metres of street; a point whose
  nearest edges are all on fragments starts from the nearest main edges instead when one is
  within the snap limit; a tie between a fragment edge and a main edge keeps the main one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import pairwise

import networkx as nx
import numpy as np
import shapely
from shapely.geometry import LineString, Point

TIE_TOL_M = 1e-3


def fragment_lines(node_ids, edges, lines, *, max_nodes=100, max_m=2000.0, keep=False):
    """Which edges lie on a fragment (networkx components of the node/edge lists)."""
    on = [False] * len(edges)
    if keep:
        return on
    g = nx.MultiGraph()
    g.add_nodes_from(node_ids)
    for i, (u, v, _) in enumerate(edges):
        g.add_edge(u, v, key=i)
    order = {n: k for k, n in enumerate(node_ids)}
    comps = [set(c) for c in nx.connected_components(g)]
    if len(comps) <= 1:
        return on
    largest = max(comps, key=lambda c: (len(c), -min(order[n] for n in c)))
    for comp in comps:
        if comp is largest:
            continue
        idx = [i for i, (u, _v, _g) in enumerate(edges) if u in comp]
        metres = sum(lines[i].length for i in idx)
        if len(comp) < max_nodes and metres < max_m:
            for i in idx:
                on[i] = True
    return on


def brute_snap(point: Point, lines: list[LineString], limit: float, on_fragment=None):
    """Every (edge index, offset, access) a point may start from; [] past the limit."""
    dists = [line.distance(point) for line in lines]
    on_fragment = on_fragment or [False] * len(lines)
    best = min(dists)
    if best > limit:
        return []
    cand = [i for i, d in enumerate(dists) if d <= best + TIE_TOL_M]
    main = [i for i in range(len(lines)) if not on_fragment[i]]
    if any(not on_fragment[i] for i in cand):
        cand = [i for i in cand if not on_fragment[i]]
    elif main and min(dists[i] for i in main) <= limit:
        best_main = min(dists[i] for i in main)
        cand = [i for i in main if dists[i] <= best_main + TIE_TOL_M]
    return [(i, lines[i].project(point), dists[i]) for i in cand]


def oracle_nearest(
    node_xy: dict[int, tuple[float, float]],
    edges: list[tuple[int, int, LineString | None]],
    demand_xy: np.ndarray,
    facility_xy: np.ndarray,
    *,
    snap_limit: float = 300.0,
    fragments: dict | None = None,
    per_facility: bool = False,
) -> np.ndarray:
    """Walking distance from each demand point to its nearest facility (inf when none).

    With ``per_facility`` the result is a (demand, facility) matrix of distances to each
    facility alone.
    """
    lines = [
        geom if geom is not None else LineString([node_xy[u], node_xy[v]]) for u, v, geom in edges
    ]
    on_fragment = fragment_lines(list(node_xy), edges, lines, **(fragments or {}))
    # directed: facilities only lead out, demand points only lead in, so no walk passes
    # through a point's own legs
    g = nx.DiGraph()
    g.add_nodes_from(("n", n) for n in node_xy)
    on_edge: dict[int, list[tuple[float, object]]] = defaultdict(list)
    point_nodes: dict[str, list[object]] = {"d": [], "f": []}
    for tag, pts in (("d", demand_xy), ("f", facility_xy)):
        for i, (x, y) in enumerate(pts):
            node = (tag, i)
            point_nodes[tag].append(node)
            g.add_node(node)
            for e, off, acc in brute_snap(Point(x, y), lines, snap_limit, on_fragment):
                proj = ("p", tag, i, e)
                if tag == "f":
                    g.add_edge(node, proj, w=acc)
                else:
                    g.add_edge(proj, node, w=acc)
                on_edge[e].append((off, proj))

    def add(a, b, w):
        if a == b:
            return
        if g.has_edge(a, b):
            w = min(w, g.edges[a, b]["w"])
        g.add_edge(a, b, w=w)
        g.add_edge(b, a, w=w)

    for e, (u, v, _) in enumerate(edges):
        length = lines[e].length
        stops = sorted(on_edge.get(e, []), key=lambda s: s[0])
        chain = [(0.0, ("n", u)), *stops, (length, ("n", v))]
        for (o1, a), (o2, b) in pairwise(chain):
            add(a, b, max(o2 - o1, 0.0))
    if per_facility:
        out = np.full((len(demand_xy), len(facility_xy)), math.inf)
        for j, f in enumerate(point_nodes["f"]):
            dist = nx.single_source_dijkstra_path_length(g, f, weight="w")
            out[:, j] = [dist.get(node, math.inf) for node in point_nodes["d"]]
        return out
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
