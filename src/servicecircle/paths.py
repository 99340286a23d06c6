"""The path engine: distances from demand points to their nearest facility on the CSR arrays.

distance = access leg (point → its projection on the nearest edge) + network path from that
projection + egress leg (the facility's projection → the facility). Each facility enters the
CSR graph as a virtual source node with two directed edges to the ends of its edge, weighted by
egress leg + offset; one multi-source Dijkstra (``min_only=True`` with a distance limit) then
gives every node its nearest facility exactly, including the facility's own legs. Points and
facilities tied to several edges (:mod:`servicecircle.snapping`) start from each of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .network import MIN_EDGE_M, Snap, WalkNetwork

if TYPE_CHECKING:
    import scipy.sparse as sp

_TOL_M = 1e-6


def facility_entries(
    network: WalkNetwork, fsnap: Snap, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where facilities enter the network: ``(node, weight_m, label)`` for both ends of each
    facility's edge (and of its tied edges), weighted by egress leg + distance along the edge to
    that end.

    ``labels`` names each facility (default its row in ``fsnap``); unsnapped rows are skipped.
    """
    labels = np.arange(len(fsnap)) if labels is None else np.asarray(labels)
    flat, owner = fsnap.expand()
    ok = flat.ok
    e = flat.edge[ok]
    u, v = network.edge_u[e], network.edge_v[e]
    length = network.edge_length_m[e]
    acc, off = flat.access_m[ok], flat.offset_m[ok]
    nodes = np.concatenate([u, v])
    weights = np.concatenate([acc + off, acc + (length - off)])
    lab = labels[owner[ok]]
    lab = np.concatenate([lab, lab])
    return nodes.astype("int64"), np.maximum(weights, MIN_EDGE_M), lab.astype("int64")


def multi_source(
    csr: sp.csr_matrix,
    entry_node: np.ndarray,
    entry_weight_m: np.ndarray,
    entry_label: np.ndarray,
    *,
    limit_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-entry distances on a CSR graph, with a start offset per entry.

    Each entry becomes a virtual node with one directed edge (its offset) into the graph; a
    single ``dijkstra(min_only=True, limit=…)`` from all virtual nodes then gives every node the
    distance to its nearest entry (offset included) and that entry's label. Virtual nodes have
    no incoming edges, so no path passes through one.

    Returns
    -------
    dist_m, label
        Arrays over the graph's nodes; ``inf`` and ``-1`` beyond ``limit_m``.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    n = csr.shape[0]
    k = len(entry_node)
    if k == 0:
        return np.full(n, np.inf), np.full(n, -1, dtype="int64")
    indptr = np.concatenate([csr.indptr, csr.indptr[-1] + np.arange(1, k + 1)])
    big = indptr[-1] >= np.iinfo(np.int32).max
    aug = sp.csr_matrix(
        (
            np.concatenate([csr.data, entry_weight_m]),
            np.concatenate([csr.indices, entry_node.astype(csr.indices.dtype)]),
            indptr.astype("int64" if big else "int32"),
        ),
        shape=(n + k, n + k),
    )
    dist, _pred, src = dijkstra(
        aug,
        directed=True,
        indices=np.arange(n, n + k),
        min_only=True,
        limit=limit_m,
        return_predecessors=True,
    )
    dist = dist[:n]
    src = src[:n].astype("int64")
    reached = np.isfinite(dist) & (src >= n)
    label = np.full(n, -1, dtype="int64")
    label[reached] = np.asarray(entry_label)[src[reached] - n]
    dist[~reached] = np.inf
    return dist, label


def node_distances(
    network: WalkNetwork, fsnap: Snap, *, limit_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from the nearest facility to every node, and which facility that is.

    Parameters
    ----------
    network
        The walk network.
    fsnap
        Snaps of the facilities (unsnapped rows are ignored).
    limit_m
        Nodes farther than this get ``inf`` and facility ``-1``.

    Returns
    -------
    dist_m, facility
        Arrays of length ``N``; ``facility`` indexes rows of ``fsnap``.
    """
    nodes, weights, labels = facility_entries(network, fsnap)
    return multi_source(network.csr, nodes, weights, labels, limit_m=limit_m)


def point_distances(
    network: WalkNetwork,
    dsnap: Snap,
    fsnap: Snap,
    node_dist_m: np.ndarray,
    node_facility: np.ndarray,
    *,
    limit_m: float,
    fsnap_label: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Walking distance from each demand point to its nearest facility, from node distances.

    A point at offset ``t`` on edge ``(u, v)`` of length ``L`` with access leg ``a`` is at
    ``a + min(t + d[u], L - t + d[v])``, or ``a + |t - s| + b`` straight along the edge to a
    facility on the same edge. A point tied to several edges takes the minimum over them.
    Unsnapped points and points beyond ``limit_m`` get ``inf``/``-1``. ``node_facility`` holds
    facility labels; ``fsnap_label`` gives the label of each ``fsnap`` row (default: the row
    number), used for facilities on the same edge. Among equally near facilities the one
    reported is the same on every run.
    """
    m = len(dsnap)
    walk = np.full(m, np.inf)
    fac = np.full(m, -1, dtype="int64")
    flat, owner = dsnap.expand()
    ok = flat.ok
    if not ok.any() or len(fsnap) == 0:
        return walk, fac
    idx = np.flatnonzero(ok)
    e = flat.edge[idx]
    u, v = network.edge_u[e], network.edge_v[e]
    length = network.edge_length_m[e]
    t = flat.offset_m[idx]
    via_u = t + node_dist_m[u]
    via_v = (length - t) + node_dist_m[v]
    best = np.minimum(via_u, via_v)
    best_fac = np.where(via_u <= via_v, node_facility[u], node_facility[v])
    # Facilities on the same edge: straight along it (numpy, no per-point Python loop).
    ff, f_owner = fsnap.expand()
    base_label = np.arange(len(fsnap)) if fsnap_label is None else np.asarray(fsnap_label)
    row_label = base_label[f_owner]
    fok = np.flatnonzero(ff.ok)
    order = fok[np.argsort(ff.edge[fok], kind="stable")]
    f_edge = ff.edge[order]
    lo = np.searchsorted(f_edge, e, side="left")
    cnt = np.searchsorted(f_edge, e, side="right") - lo
    sel = np.flatnonzero(cnt > 0)
    j = 0
    while len(sel):
        k = order[lo[sel] + j]
        direct = np.abs(t[sel] - ff.offset_m[k]) + ff.access_m[k]
        better = direct < best[sel]
        best[sel[better]] = direct[better]
        best_fac[sel[better]] = row_label[k[better]]
        j += 1
        sel = sel[cnt[sel] > j]
    total = flat.access_m[idx] + best
    reached = np.isfinite(total) & (total <= limit_m + _TOL_M) & (best_fac >= 0)
    idx, total, best_fac = idx[reached], total[reached], best_fac[reached]
    # the nearest start of each point (its rows in order: the point's own snap first)
    pts = owner[idx]
    first = np.lexsort((idx, total, pts))
    pts, total, best_fac = pts[first], total[first], best_fac[first]
    lead = np.ones(len(pts), dtype=bool)
    lead[1:] = pts[1:] != pts[:-1]
    walk[pts[lead]] = total[lead]
    fac[pts[lead]] = best_fac[lead]
    return walk, fac


def nearest_facility(
    network: WalkNetwork, dsnap: Snap, fsnap: Snap, *, limit_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Walking distance from each demand point to its nearest facility (``inf`` past the limit).

    ``fsnap`` may include unsnapped facilities; they are ignored. Returns ``(walk_m,
    facility)`` where ``facility`` indexes rows of ``fsnap`` (``-1`` when none in reach).
    """
    node_d, node_f = node_distances(network, fsnap, limit_m=limit_m)
    return point_distances(network, dsnap, fsnap, node_d, node_f, limit_m=limit_m)
