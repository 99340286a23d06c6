"""Coverage: walking distance from every demand point to its nearest facility, per tier.

distance = access leg (point → its projection on the nearest edge) + network path from that
projection + egress leg (the facility's projection → the facility). Each facility enters the
CSR graph as a virtual source node with two directed edges to the ends of its edge, weighted by
egress leg + offset; one multi-source Dijkstra (``min_only=True`` with a distance limit) then
gives every node its nearest facility exactly, including the facility's own legs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._errors import InputError
from .demand import validate_demand
from .facilities import validate_facilities
from .network import DEFAULT_SNAP_LIMIT_M, MIN_EDGE_M, Snap, WalkNetwork
from .tiers import DEFAULT_TIERS, Tier, check_unique

if TYPE_CHECKING:
    import geopandas as gpd
    import scipy.sparse as sp

log = logging.getLogger(__name__)

DEFAULT_SEARCH_FACTOR = 2.0
"""Distances are searched up to this multiple of a tier's target, so that a planner sees how far
an uncovered resident is; farther ones are reported as ``too_far`` with no distance."""

STATUS_COVERED = "covered"
STATUS_TOO_FAR = "too_far"
STATUS_NO_FACILITY = "no_facility_reachable"
STATUS_UNSNAPPED = "unsnapped"
_TOL_M = 1e-6


# --------------------------------------------------------------------------- the core
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


# --------------------------------------------------------------------------- tables
@dataclass(frozen=True, eq=False)
class Coverage:
    """Coverage of demand points per tier.

    Attributes
    ----------
    points
        One row per demand point, aligned to the demand frame: ``demand_id``, ``population``,
        ``households`` (when given), ``snapped``, ``access_m``, and per tier
        ``<tier>_facility_id``, ``<tier>_walk_m`` (NaN when none within the search limit),
        ``<tier>_covered`` and ``<tier>_status`` (``covered``, ``too_far``,
        ``no_facility_reachable``, ``unsnapped``).
    facilities
        One row per facility: ``facility_id``, ``kind``, ``name``, ``snapped``, ``access_m``.
    tiers
        The tiers, in order.
    snap_limit_m, search_factor
        The settings used.
    """

    points: pd.DataFrame
    facilities: pd.DataFrame
    tiers: tuple[Tier, ...]
    snap_limit_m: float
    search_factor: float
    extras: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Population-weighted summary per tier, with counts of what could not be used."""
        pts = self.points
        pop = pts["population"].to_numpy()
        residents = float(pop.sum())
        unsnapped = ~pts["snapped"].to_numpy()
        fac = self.facilities
        out: dict[str, Any] = {
            "snap_limit_m": self.snap_limit_m,
            "search_factor": self.search_factor,
            "demand_points": len(pts),
            "residents": residents,
            "unreachable_demand_points": int(unsnapped.sum()),
            "unreachable_residents": float(pop[unsnapped].sum()),
            "facilities": {
                "total": len(fac),
                "by_kind": {k: int(v) for k, v in fac["kind"].value_counts().sort_index().items()},
                "unsnapped": int((~fac["snapped"]).sum()),
                "unsnapped_ids": fac.loc[~fac["snapped"], "facility_id"].astype(str).tolist(),
            },
            "tiers": {},
        }
        for tier in self.tiers:
            covered = pts[f"{tier.name}_covered"].to_numpy()
            status = pts[f"{tier.name}_status"]
            cov_res = float(pop[covered].sum())
            share = cov_res / residents if residents > 0 else None
            walk = pts[f"{tier.name}_walk_m"]
            entry: dict[str, Any] = {
                "label": tier.display("zh"),
                "label_en": tier.display("en"),
                "target_m": tier.target_m,
                "minutes": tier.minutes,
                "kinds": list(tier.kinds),
                "facilities": int(fac["kind"].isin(tier.kinds).sum()),
                "residents": residents,
                "covered_residents": cov_res,
                "share": share,
                "goal": tier.goal,
                "pass": None if share is None else bool(share + 1e-12 >= tier.goal),
                "demand_points": len(pts),
                "covered_points": int(covered.sum()),
                "points_by_status": {
                    k: int(v) for k, v in status.value_counts().sort_index().items()
                },
                "median_walk_m_of_reached": float(walk.median()) if walk.notna().any() else None,
            }
            out["tiers"][tier.name] = entry
        for key in ("linked_past_fragment", "circle_vs_walk"):
            if key in self.extras:
                out[key] = self.extras[key]
        return out


def compute_coverage(
    network: WalkNetwork,
    demand: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    tiers: tuple[Tier, ...] | list[Tier] = DEFAULT_TIERS,
    *,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
    search_factor: float = DEFAULT_SEARCH_FACTOR,
) -> Coverage:
    """Walking coverage of demand points by facilities, per tier.

    Parameters
    ----------
    network
        The walk network.
    demand
        Points (or polygons, taken at a point on their surface) with ``population`` (and
        optionally ``households`` and ``demand_id``), in the network's CRS.
    facilities
        Points with ``facility_id`` and ``kind`` (``centre`` or ``station``), in the network's
        CRS.
    tiers
        Targets to measure (default: centres within 1000 m, stations or centres within 300 m).
    snap_limit_m
        Points and facilities farther than this from every walkable edge are reported as
        unsnapped rather than moved.
    search_factor
        Distances are reported up to ``search_factor × target``.

    Returns
    -------
    Coverage
    """
    if search_factor < 1:
        raise InputError(f"search factor must be at least 1; got {search_factor}")
    tiers = check_unique(tiers)
    demand = validate_demand(demand)
    facilities = validate_facilities(facilities)
    dsnap = network.snap(demand, snap_limit_m=snap_limit_m)
    fsnap = network.snap(facilities, snap_limit_m=snap_limit_m)
    fac_ids = facilities["facility_id"].astype(str).to_numpy()
    kinds = facilities["kind"].to_numpy()
    _warn_unsnapped(demand, dsnap, fac_ids, fsnap, snap_limit_m)
    cols: dict[str, Any] = {
        "demand_id": demand["demand_id"].to_numpy(),
        "population": demand["population"].to_numpy(),
    }
    if "households" in demand.columns:
        cols["households"] = pd.to_numeric(demand["households"], errors="coerce").to_numpy()
    cols["snapped"] = dsnap.ok
    cols["access_m"] = dsnap.access_m
    cols["linked_past_fragment"] = dsnap.linked_past_fragment
    import shapely

    demand_xy = shapely.get_coordinates(shapely.point_on_surface(demand.geometry.to_numpy()))
    for tier in tiers:
        cols.update(
            tier_columns(network, dsnap, fsnap, fac_ids, kinds, tier, tier.target_m * search_factor)
        )
        circle = circle_distances(demand_xy, facilities, tier.kinds)
        cols[f"{tier.name}_circle_m"] = circle
        cols[f"{tier.name}_circle_covered"] = circle <= tier.target_m + _TOL_M
    points = pd.DataFrame(cols, index=demand.index)
    fac_table = pd.DataFrame(
        {
            "facility_id": fac_ids,
            "kind": kinds,
            "name": facilities["name"].astype("string").to_numpy()
            if "name" in facilities
            else pd.array([pd.NA] * len(facilities), dtype="string"),
            "snapped": fsnap.ok,
            "access_m": fsnap.access_m,
        },
        index=facilities.index,
    )
    fac_table = facility_load(points, fac_table, tiers)
    moved = dsnap.linked_past_fragment
    extras = {
        "circle_vs_walk": circle_vs_walk(points, tiers),
        "linked_past_fragment": {
            "demand_points": int(moved.sum()),
            "residents": float(demand["population"].to_numpy()[moved].sum()),
            "facilities": int(fsnap.linked_past_fragment.sum()),
            "facility_ids": fac_ids[fsnap.linked_past_fragment].tolist(),
        },
    }
    return Coverage(points, fac_table, tiers, float(snap_limit_m), float(search_factor), extras)


def _warn_unsnapped(
    demand: gpd.GeoDataFrame, dsnap: Snap, fac_ids: np.ndarray, fsnap: Snap, snap_limit_m: float
) -> None:
    n_fac = int((~fsnap.ok).sum())
    if n_fac:
        log.warning(
            "%d facilities lie farther than %g m from any walkable street and are not used: %s",
            n_fac,
            snap_limit_m,
            ", ".join(fac_ids[~fsnap.ok][:10]),
        )
    n_dem = int((~dsnap.ok).sum())
    if n_dem:
        log.warning(
            "%d demand points (%.0f residents) lie farther than %g m from any walkable street",
            n_dem,
            demand["population"].to_numpy()[~dsnap.ok].sum(),
            snap_limit_m,
        )


def tier_columns(
    network: WalkNetwork,
    dsnap: Snap,
    fsnap: Snap,
    fac_ids: np.ndarray,
    kinds: np.ndarray,
    tier: Tier,
    limit_m: float,
    *,
    target_m: float | None = None,
    prefix: str | None = None,
) -> dict[str, np.ndarray]:
    """One tier's per-point columns: ``<prefix>_facility_id``, ``_walk_m`` (NaN past the
    limit), ``_covered`` (within ``target_m``, default the tier's) and ``_status``."""
    target = tier.target_m if target_m is None else target_m
    name = prefix or tier.name
    sel = np.isin(kinds, tier.kinds)
    walk, fac = nearest_facility(network, dsnap, fsnap.subset(sel), limit_m=limit_m)
    ids = np.full(len(fac), None, dtype=object)
    if sel.any():
        ids[fac >= 0] = fac_ids[sel][fac[fac >= 0]]
    covered = walk <= target + _TOL_M
    d_comp = np.full(len(dsnap), -1)
    d_comp[dsnap.ok] = network.component[network.edge_u[dsnap.edge[dsnap.ok]]]
    ok = sel & fsnap.ok
    comps = np.unique(network.component[network.edge_u[fsnap.edge[ok]]])
    reachable = np.isin(d_comp, comps)
    status = np.where(
        covered,
        STATUS_COVERED,
        np.where(
            ~dsnap.ok, STATUS_UNSNAPPED, np.where(reachable, STATUS_TOO_FAR, STATUS_NO_FACILITY)
        ),
    )
    return {
        f"{name}_facility_id": ids,
        f"{name}_walk_m": np.where(np.isfinite(walk), walk, np.nan),
        f"{name}_covered": covered,
        f"{name}_status": status,
    }


def circle_distances(
    demand: gpd.GeoDataFrame | np.ndarray,
    facilities: gpd.GeoDataFrame,
    kinds: tuple[str, ...],
) -> np.ndarray:
    """Straight-line distance from each demand point (a frame, or ``(n, 2)`` coordinates) to
    the nearest facility of ``kinds``."""
    import shapely
    from scipy.spatial import cKDTree

    sel = facilities["kind"].isin(kinds).to_numpy()
    if not sel.any():
        return np.full(len(demand), np.inf)
    fxy = shapely.get_coordinates(shapely.point_on_surface(facilities.geometry.to_numpy()[sel]))
    if isinstance(demand, np.ndarray):
        dxy = demand
    else:
        dxy = shapely.get_coordinates(shapely.point_on_surface(demand.geometry.to_numpy()))
    dist, _ = cKDTree(fxy).query(dxy, k=1)
    return np.asarray(dist, dtype="float64")


def circle_vs_walk(points: pd.DataFrame, tiers: tuple[Tier, ...]) -> dict[str, Any]:
    """Compass-drawn circles of the tier's radius versus walking coverage, per tier.

    ``overcounted_residents`` are inside a circle but not within the distance on foot: the
    residents a straight-line analysis wrongly counts as served. ``walk_only_residents`` is
    always 0 (a walk is never shorter than the straight line); it is reported as a check.
    """
    pop = points["population"].to_numpy()
    residents = float(pop.sum())
    out: dict[str, Any] = {}
    for tier in tiers:
        circ = points[f"{tier.name}_circle_covered"].to_numpy(dtype=bool)
        walk = points[f"{tier.name}_covered"].to_numpy(dtype=bool)
        circle_res = float(pop[circ].sum())
        walk_res = float(pop[walk].sum())
        out[tier.name] = {
            "radius_m": tier.target_m,
            "circle_covered_residents": circle_res,
            "walk_covered_residents": walk_res,
            "circle_share": circle_res / residents if residents else None,
            "walk_share": walk_res / residents if residents else None,
            "overcounted_residents": float(pop[circ & ~walk].sum()),
            "overcounted_points": int((circ & ~walk).sum()),
            "walk_only_residents": float(pop[walk & ~circ].sum()),
        }
    return out


def facility_load(
    points: pd.DataFrame, facilities: pd.DataFrame, tiers: tuple[Tier, ...]
) -> pd.DataFrame:
    """Each facility's service load per tier: the residents (and points) it is nearest to
    within the tier's distance."""
    out = facilities.copy()
    for tier in tiers:
        covered = points[points[f"{tier.name}_covered"]]
        grouped = covered.groupby(f"{tier.name}_facility_id")["population"]
        load = grouped.sum()
        count = grouped.size()
        ids = out["facility_id"].astype(str)
        serves = out["kind"].isin(tier.kinds)
        out[f"{tier.name}_load_residents"] = np.where(serves, ids.map(load).fillna(0.0), np.nan)
        out[f"{tier.name}_load_points"] = np.where(serves, ids.map(count).fillna(0), np.nan)
    return out


def coverage_table(cov: Coverage) -> pd.DataFrame:
    """The per-point table as written to ``coverage.csv``."""
    cols = ["demand_id", "population"]
    if "households" in cov.points:
        cols.append("households")
    for tier in cov.tiers:
        cols += [
            f"{tier.name}_facility_id",
            f"{tier.name}_walk_m",
            f"{tier.name}_covered",
            f"{tier.name}_status",
        ]
    table = cov.points[cols].copy()
    for tier in cov.tiers:
        table[f"{tier.name}_walk_m"] = table[f"{tier.name}_walk_m"].round(1)
        table[f"{tier.name}_covered"] = np.where(table[f"{tier.name}_covered"], "true", "false")
    table["population"] = table["population"].round(2)
    if "households" in table:
        table["households"] = table["households"].round(2)
    return table
