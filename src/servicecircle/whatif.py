"""What-if: add or remove one facility and update a tier's coverage locally.

A :class:`TierState` keeps, for one tier, every node's distance to its nearest facility and
that facility's label, and every demand point's walking distance. Adding a facility runs one
Dijkstra limited to the search distance around it; removing one re-solves only the nodes whose
nearest facility it was, seeded from the unchanged nodes around them. Only demand points on
edges that touch a changed node (or on the facility's own edge) are recomputed. The result
equals a full recomputation (tested), at a fraction of its cost.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._errors import InputError
from .network import Snap, WalkNetwork
from .paths import facility_entries, multi_source, point_distances

_TOL_M = 1e-6


@dataclass(frozen=True, eq=False)
class TierState:
    """Coverage of one tier, kept so that one facility can be added or removed cheaply.

    Facility slots are never reused: a removed facility's slot is marked inactive, so labels
    stay valid. Build it with :func:`tier_state`.
    """

    network: WalkNetwork
    target_m: float
    limit_m: float
    dsnap: Snap
    population: np.ndarray
    fsnap: Snap
    facility_id: np.ndarray
    active: np.ndarray
    node_dist_m: np.ndarray
    node_label: np.ndarray
    walk_m: np.ndarray
    point_label: np.ndarray
    point_u: np.ndarray
    point_v: np.ndarray
    node_tree: Any
    row_owner: np.ndarray
    row_edge: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        """Which demand points are within the target."""
        return self.walk_m <= self.target_m + _TOL_M

    @property
    def covered_residents(self) -> float:
        """Residents within the target."""
        return float(self.population[self.covered].sum())

    def nearest_facility_id(self) -> np.ndarray:
        """Nearest facility id per demand point (``None`` when none within the limit)."""
        out = np.full(len(self.walk_m), None, dtype=object)
        hit = self.point_label >= 0
        out[hit] = self.facility_id[self.point_label[hit]]
        return out


@dataclass(frozen=True)
class WhatIfChange:
    """What one addition or removal changed."""

    action: str
    facility_id: str
    covered_before: float
    covered_after: float
    nodes_changed: int
    points_changed: int

    @property
    def delta_residents(self) -> float:
        """Change in covered residents (positive when coverage grew)."""
        return self.covered_after - self.covered_before


def tier_state(
    network: WalkNetwork,
    dsnap: Snap,
    population: np.ndarray,
    fsnap: Snap,
    facility_id: np.ndarray,
    *,
    target_m: float,
    limit_m: float | None = None,
) -> TierState:
    """Full coverage of one tier, kept for what-if updates.

    Parameters
    ----------
    network, dsnap, population
        The network, the demand points' snaps and their residents.
    fsnap, facility_id
        The tier's facilities (unsnapped ones are kept but never reach anyone).
    target_m
        The tier's distance.
    limit_m
        Search limit (default ``2 × target_m``).
    """
    limit = 2.0 * target_m if limit_m is None else float(limit_m)
    if limit < target_m:
        raise InputError(f"search limit {limit} m is below the target {target_m} m")
    ids = np.asarray(facility_id, dtype=object)
    if len(set(ids.tolist())) != len(ids):
        raise InputError("facility ids must be unique for what-if; give each its own id")
    active = np.ones(len(fsnap), dtype=bool)
    nodes, weights, labels = facility_entries(network, fsnap)
    node_d, node_l = multi_source(network.csr, nodes, weights, labels, limit_m=limit)
    walk, plabel = point_distances(network, dsnap, fsnap, node_d, node_l, limit_m=limit)
    # the two nodes at the ends of each start's edge (N, a never-changed slot, when unsnapped);
    # a point tied to several edges has a start on each
    flat, row_owner = dsnap.expand()
    point_u = np.full(len(flat), network.n_nodes, dtype="int64")
    point_v = point_u.copy()
    point_u[flat.ok] = network.edge_u[flat.edge[flat.ok]]
    point_v[flat.ok] = network.edge_v[flat.edge[flat.ok]]
    from scipy.spatial import cKDTree

    return TierState(
        network=network,
        target_m=float(target_m),
        limit_m=limit,
        dsnap=dsnap,
        population=np.asarray(population, dtype="float64"),
        fsnap=fsnap,
        facility_id=ids,
        active=active,
        node_dist_m=node_d,
        node_label=node_l,
        walk_m=walk,
        point_label=plabel,
        point_u=point_u,
        point_v=point_v,
        node_tree=cKDTree(network.node_xy),
        row_owner=row_owner,
        row_edge=flat.edge,
    )


def _update_points(
    state: TierState,
    fsnap: Snap,
    active: np.ndarray,
    node_d: np.ndarray,
    node_l: np.ndarray,
    changed_nodes: np.ndarray,
    extra_points: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Recompute the demand points touched by the changed nodes (or flagged extra)."""
    net = state.network
    dsnap = state.dsnap
    touched = extra_points.copy()
    if len(changed_nodes):
        mark = np.zeros(net.n_nodes + 1, dtype=bool)
        mark[changed_nodes] = True
        rows = mark[state.point_u] | mark[state.point_v]
        touched[state.row_owner[rows]] = True
    walk = state.walk_m.copy()
    label = state.point_label.copy()
    idx = np.flatnonzero(touched)
    if len(idx):
        rows = np.flatnonzero(active)
        w, lab = point_distances(
            net,
            dsnap.subset(idx),
            fsnap.subset(rows),
            node_d,
            node_l,
            limit_m=state.limit_m,
            fsnap_label=rows,
        )
        walk[idx] = w
        label[idx] = lab
    return walk, label, len(idx)


def add_facility(
    state: TierState, point_xy: tuple[float, float], facility_id: str
) -> tuple[TierState, WhatIfChange]:
    """Add one facility at ``point_xy`` (metres, the network's CRS) and update coverage.

    Returns the new state and the change; ``state`` itself is not modified.
    """
    if facility_id in set(state.facility_id.tolist()):
        raise InputError(f"facility id {facility_id!r} is already in the plan; use a new id")
    net = state.network
    snap = net.snap(np.asarray([point_xy], dtype=float), snap_limit_m=state.fsnap.snap_limit_m)
    slot = len(state.facility_id)
    fsnap = state.fsnap.concat(snap)
    ids = np.append(state.facility_id, np.array([facility_id], dtype=object))
    active = np.append(state.active, True)
    node_d, node_l = state.node_dist_m, state.node_label
    changed = np.zeros(0, dtype="int64")
    extra = np.zeros(len(state.dsnap), dtype=bool)
    if snap.ok[0]:
        nodes, weights, _ = facility_entries(net, snap)
        if float(weights.min()) <= state.limit_m:
            # Every node within the limit on foot lies within the limit as the crow flies, so
            # the search runs on the subgraph of nodes in that circle only.
            ball = np.sort(
                np.asarray(
                    state.node_tree.query_ball_point(point_xy, state.limit_m + 1e-6), dtype="int64"
                )
            )
            pos = np.minimum(np.searchsorted(ball, nodes), len(ball) - 1)
            inside = ball[pos] == nodes
            d_loc, _ = multi_source(
                net.subgraph(ball),
                pos[inside],
                weights[inside],
                np.zeros(int(inside.sum()), dtype="int64"),
                limit_m=state.limit_m,
            )
            better = d_loc < node_d[ball]
            changed = ball[better]
            node_d = node_d.copy()
            node_l = node_l.copy()
            node_d[changed] = d_loc[better]
            node_l[changed] = slot
        extra = _on_edges(state, snap)
    walk, label, n_pts = _update_points(state, fsnap, active, node_d, node_l, changed, extra)
    new = replace(
        state,
        fsnap=fsnap,
        facility_id=ids,
        active=active,
        node_dist_m=node_d,
        node_label=node_l,
        walk_m=walk,
        point_label=label,
    )
    change = WhatIfChange(
        "add", facility_id, state.covered_residents, new.covered_residents, len(changed), n_pts
    )
    return new, change


def remove_facility(state: TierState, facility_id: str) -> tuple[TierState, WhatIfChange]:
    """Remove one facility and update coverage locally.

    Nodes whose nearest facility it was are re-solved from the unchanged nodes around them
    (seeded with their distances) and from other facilities that enter among them.
    """
    hits = np.flatnonzero((state.facility_id == facility_id) & state.active)
    if len(hits) == 0:
        raise InputError(f"facility id {facility_id!r} is not in the plan; nothing to remove")
    slot = int(hits[0])
    net = state.network
    active = state.active.copy()
    active[slot] = False
    # the nodes it served lie within the search limit of it, as the crow flies
    # (around its projection, widened by its access leg: a tied start may lie on the far side)
    fxy = state.fsnap.x[slot], state.fsnap.y[slot]
    if state.fsnap.ok[slot]:
        radius = state.limit_m + 2.0 * float(state.fsnap.access_m[slot]) + 1e-6
        ball = np.asarray(state.node_tree.query_ball_point(fxy, radius), dtype="int64")
        affected = np.sort(ball[state.node_label[ball] == slot])
    else:
        affected = np.zeros(0, dtype="int64")
    node_d = state.node_dist_m.copy()
    node_l = state.node_label.copy()
    if len(affected):
        in_a = np.zeros(net.n_nodes, dtype=bool)
        in_a[affected] = True
        neigh = net.neighbours(affected)
        boundary = neigh[~in_a[neigh] & np.isfinite(node_d[neigh])]
        sub_nodes = np.sort(np.concatenate([affected, boundary]))
        local = np.full(net.n_nodes, -1, dtype="int64")
        local[sub_nodes] = np.arange(len(sub_nodes))
        sub = net.subgraph(sub_nodes)
        # seeds: boundary nodes with their (unchanged) distances and labels ...
        e_node = [local[boundary]]
        e_w = [np.maximum(node_d[boundary], 0.0)]
        e_l = [node_l[boundary]]
        # ... and other active facilities whose edge ends lie among the affected nodes
        rows_active = np.flatnonzero(active)
        f_nodes, f_w, f_l = facility_entries(
            net, state.fsnap.subset(rows_active), labels=rows_active
        )
        inside = in_a[f_nodes]
        e_node.append(local[f_nodes[inside]])
        e_w.append(f_w[inside])
        e_l.append(f_l[inside])
        d_sub, l_sub = multi_source(
            sub,
            np.concatenate(e_node),
            np.maximum(np.concatenate(e_w), 1e-9),
            np.concatenate(e_l),
            limit_m=state.limit_m,
        )
        node_d[affected] = d_sub[local[affected]]
        node_l[affected] = l_sub[local[affected]]
    extra = (state.point_label == slot) | _on_edges(state, state.fsnap.subset(np.array([slot])))
    walk, label, n_pts = _update_points(state, state.fsnap, active, node_d, node_l, affected, extra)
    new = replace(
        state, active=active, node_dist_m=node_d, node_label=node_l, walk_m=walk, point_label=label
    )
    change = WhatIfChange(
        "remove",
        facility_id,
        state.covered_residents,
        new.covered_residents,
        len(affected),
        n_pts,
    )
    return new, change


def _on_edges(state: TierState, fsnap: Snap) -> np.ndarray:
    """Demand points with a start on any edge of these facilities (walks straight along it)."""
    flat, _ = fsnap.expand()
    edges = flat.edge[flat.ok]
    out = np.zeros(len(state.dsnap), dtype=bool)
    if len(edges):
        out[state.row_owner[np.isin(state.row_edge, edges) & (state.row_edge >= 0)]] = True
    return out
