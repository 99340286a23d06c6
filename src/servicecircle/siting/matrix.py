"""The coverage matrix (demand × candidates within a walking distance) and its reduction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..network import MIN_EDGE_M, Snap, WalkNetwork

if TYPE_CHECKING:
    import scipy.sparse as sp

log = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT_S = 60.0
_TOL = 1e-9


# --------------------------------------------------------------------------- the matrix
def coverage_matrix(
    network: WalkNetwork,
    dsnap: Snap,
    csnap: Snap,
    *,
    target_m: float,
    memory_mb: float = 256.0,
) -> sp.csr_matrix:
    """Sparse demand × candidate matrix of walking distances within ``target_m``.

    Entries hold the distance in metres (at least ``MIN_EDGE_M``); absent entries are beyond
    the target. A point or candidate tied to several edges takes the shortest walk over them.
    Candidates are taken tile by tile: everything a candidate reaches within the
    target lies within the target as the crow flies, so each tile's limited Dijkstra runs on
    the subgraph of nodes near the tile only (one virtual source node per candidate, so its
    egress leg and offset are exact). Never a dense all-pairs matrix: each batch holds at most
    ``memory_mb`` of distances.
    """
    from scipy.sparse.csgraph import dijkstra
    from scipy.spatial import cKDTree

    m, c = len(dsnap), len(csnap)
    # tied starts are rows of their own; each entry goes back to its point, shortest kept
    dsnap, d_owner = dsnap.expand()
    csnap, c_owner = csnap.expand()
    d_ok = np.flatnonzero(dsnap.ok)
    c_ok = np.flatnonzero(csnap.ok)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    if len(d_ok) and len(c_ok):
        node_tree = cKDTree(network.node_xy)
        dem_tree = cKDTree(np.column_stack([dsnap.x[d_ok], dsnap.y[d_ok]]))
        e_d = dsnap.edge[d_ok]
        pu_all, pv_all = network.edge_u[e_d], network.edge_v[e_d]
        t_all = dsnap.offset_m[d_ok]
        lt_all = network.edge_length_m[e_d] - t_all
        a_all = dsnap.access_m[d_ok]
        tile = max(2.0 * target_m, 200.0)
        cxy = np.column_stack([csnap.x[c_ok], csnap.y[c_ok]])
        keys = np.floor(cxy / tile).astype("int64")
        _, group = np.unique(keys, axis=0, return_inverse=True)
        group = np.asarray(group).ravel()
        order = np.argsort(group, kind="stable")
        bounds = np.flatnonzero(np.diff(group[order])) + 1
        radius = tile * np.sqrt(2.0) / 2.0 + target_m + 1e-6
        for members in np.split(order, bounds):
            centre = (keys[members[0]] + 0.5) * tile
            nodes = np.sort(np.asarray(node_tree.query_ball_point(centre, radius), dtype="int64"))
            near = np.asarray(dem_tree.query_ball_point(centre, radius), dtype="int64")
            if len(nodes) == 0 or len(near) == 0:
                continue
            sub = network.subgraph(nodes)
            ce = csnap.subset(c_ok[members])
            u, v = network.edge_u[ce.edge], network.edge_v[ce.edge]
            length = network.edge_length_m[ce.edge]
            aug = _with_sources(
                sub,
                _local(nodes, u),
                _local(nodes, v),
                ce.access_m + ce.offset_m,
                ce.access_m + length - ce.offset_m,
            )
            lu, lv = _local(nodes, pu_all[near]), _local(nodes, pv_all[near])
            n_sub = len(nodes)
            per_row = 8.0 * (n_sub + len(members) + 2 * len(near))
            batch = max(1, int(memory_mb * 2**20 // per_row))
            for start in range(0, len(members), batch):
                chunk = np.arange(start, min(start + batch, len(members)))
                dist = dijkstra(aug, directed=True, indices=n_sub + chunk, limit=target_m)
                # real nodes, then one column of inf for edge ends outside the subgraph
                dist = np.concatenate([dist[:, :n_sub], np.full((len(chunk), 1), np.inf)], axis=1)
                du = dist[:, lu] + t_all[near]
                np.minimum(du, dist[:, lv] + lt_all[near], out=du)
                du += a_all[near]
                r, q = np.nonzero(du <= target_m + _TOL)
                rows.append(d_ok[near[q]])
                cols.append(c_ok[members[chunk[r]]])
                vals.append(du[r, q])
        # straight along a shared edge
        same_rows, same_cols, same_vals = _same_edge_pairs(dsnap, csnap)
        rows.append(same_rows)
        cols.append(same_cols)
        vals.append(same_vals)
    if rows:
        r = np.concatenate(rows)
        q = np.concatenate(cols)
        v = np.maximum(np.concatenate(vals), MIN_EDGE_M)
        keep = v <= target_m + _TOL
        # duplicates (network and same-edge, tied starts) → keep the shorter walk
        return _min_duplicates(d_owner[r[keep]], c_owner[q[keep]], v[keep], (m, c))
    import scipy.sparse as sp

    return sp.csr_matrix((m, c))


def _local(nodes: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Positions of ``which`` in sorted ``nodes``; ``len(nodes)`` (a column of inf) if absent."""
    pos = np.searchsorted(nodes, which)
    pos = np.minimum(pos, len(nodes) - 1)
    return np.where(nodes[pos] == which, pos, len(nodes))


def _with_sources(
    csr: sp.csr_matrix,
    u: np.ndarray,
    v: np.ndarray,
    wu: np.ndarray,
    wv: np.ndarray,
) -> sp.csr_matrix:
    """``csr`` plus one virtual node per source with edges to its ``u`` and ``v`` (skipping
    ends outside the graph, marked ``len(csr)``)."""
    import scipy.sparse as sp

    n, k = csr.shape[0], len(u)
    wu = np.maximum(wu, MIN_EDGE_M)
    wv = np.maximum(wv, MIN_EDGE_M)
    loop = u == v
    wu = np.where(loop, np.minimum(wu, wv), wu)
    cols = np.stack([u, v], 1).ravel()
    data = np.stack([wu, wv], 1).ravel()
    keep = np.stack([u < n, (v < n) & ~loop], 1).ravel()
    counts = keep.reshape(-1, 2).sum(axis=1)
    indptr = np.concatenate([csr.indptr, csr.indptr[-1] + np.cumsum(counts)])
    return sp.csr_matrix(
        (
            np.concatenate([csr.data, data[keep]]),
            np.concatenate([csr.indices, cols[keep].astype(csr.indices.dtype)]),
            indptr.astype("int64" if indptr[-1] >= 2**31 - 1 else "int32"),
        ),
        shape=(n + k, n + k),
    )


def _min_duplicates(
    r: np.ndarray, q: np.ndarray, v: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    import scipy.sparse as sp

    order = np.lexsort((v, q, r))
    r, q, v = r[order], q[order], v[order]
    first = np.ones(len(r), dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (q[1:] != q[:-1])
    return sp.csr_matrix((v[first], (r[first], q[first])), shape=shape)


def _same_edge_pairs(dsnap: Snap, csnap: Snap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d_ok = np.flatnonzero(dsnap.ok)
    c_ok = np.flatnonzero(csnap.ok)
    order = c_ok[np.argsort(csnap.edge[c_ok], kind="stable")]
    ce = csnap.edge[order]
    lo = np.searchsorted(ce, dsnap.edge[d_ok], "left")
    cnt = np.searchsorted(ce, dsnap.edge[d_ok], "right") - lo
    rows, cols, vals = [], [], []
    sel = np.flatnonzero(cnt > 0)
    j = 0
    while len(sel):
        k = order[lo[sel] + j]
        i = d_ok[sel]
        rows.append(i)
        cols.append(k)
        vals.append(
            dsnap.access_m[i] + np.abs(dsnap.offset_m[i] - csnap.offset_m[k]) + csnap.access_m[k]
        )
        j += 1
        sel = sel[cnt[sel] > j]
    if not rows:
        return np.zeros(0, "int64"), np.zeros(0, "int64"), np.zeros(0)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


@dataclass(frozen=True, eq=False)
class ReducedProblem:
    """A maximal-coverage instance after removing what existing facilities already cover.

    Attributes
    ----------
    a
        Boolean CSR (unique coverage sets × useful candidates).
    weight
        Residents per row.
    columns
        Candidate index (into the caller's candidate list) of each column.
    row_of_demand
        Row of each demand point (``-1``: already covered, or no candidate reaches it).
    covered_before
        Residents the existing facilities already cover.
    total
        All residents.
    """

    a: sp.csr_matrix
    weight: np.ndarray
    columns: np.ndarray
    row_of_demand: np.ndarray
    covered_before: float
    total: float
    stats: dict[str, int] = field(default_factory=dict)


def _dominated_columns(a: sp.csr_matrix) -> np.ndarray:
    """Columns whose rows are a subset of another column's rows (equal sets: all but the
    first). Dropping them changes no optimum of maximal coverage or set cover."""
    m = a.astype(np.int32).tocsc()
    size = np.diff(m.indptr)
    ov = (m.T @ m).tocoo()
    j, k = ov.row, ov.col
    sub = (ov.data == size[j]) & (j != k)
    sub &= (size[j] < size[k]) | ((size[j] == size[k]) & (k < j))
    return np.unique(j[sub])


def reduce_problem(
    matrix: sp.csr_matrix,
    population: np.ndarray,
    covered_before: np.ndarray,
    *,
    drop_dominated: bool = True,
) -> ReducedProblem:
    """Drop covered demand, merge demand rows with identical coverage sets, drop candidates
    that cover nothing new, and (by default) candidates whose coverage set lies inside
    another's."""
    import scipy.sparse as sp

    pop = np.asarray(population, dtype="float64")
    covered = np.asarray(covered_before, dtype=bool)
    a = (matrix > 0).astype(np.int8).tocsr()
    open_rows = np.flatnonzero(~covered & (np.diff(a.indptr) > 0))
    sub = a[open_rows]
    useful = np.flatnonzero(np.diff(sub.tocsc().indptr) > 0)
    sub = sub[:, useful].tocsr()
    dominated = _dominated_columns(sub) if drop_dominated else np.zeros(0, dtype="int64")
    if len(dominated):
        keep = np.setdiff1d(np.arange(sub.shape[1]), dominated)
        useful = useful[keep]
        sub = sub[:, keep].tocsr()
    sub.sort_indices()
    keys = [sub.indices[sub.indptr[i] : sub.indptr[i + 1]].tobytes() for i in range(sub.shape[0])]
    uniq: dict[bytes, int] = {}
    group = np.empty(len(keys), dtype="int64")
    for i, k in enumerate(keys):
        group[i] = uniq.setdefault(k, len(uniq))
    first = np.full(len(uniq), -1, dtype="int64")
    for i in range(len(keys) - 1, -1, -1):
        first[group[i]] = i
    reduced = sub[first].astype(bool).tocsr()
    weight = np.bincount(group, weights=pop[open_rows], minlength=len(uniq))
    row_of = np.full(len(pop), -1, dtype="int64")
    row_of[open_rows] = group
    return ReducedProblem(
        a=sp.csr_matrix(reduced),
        weight=weight,
        columns=useful,
        row_of_demand=row_of,
        covered_before=float(pop[covered].sum()),
        total=float(pop.sum()),
        stats={
            "demand_points": len(pop),
            "already_covered_points": int(covered.sum()),
            "open_points_reachable": len(open_rows),
            "rows_after_merge": len(uniq),
            "candidates": matrix.shape[1],
            "candidates_useful": len(useful),
            "candidates_dominated": len(dominated),
        },
    )
