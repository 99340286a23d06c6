"""Service areas: the ground reachable on foot within a tier, from each facility.

Built from the reached pieces of street (whole edges, and the partly walked frontier edges cut
where the distance runs out), each buffered by a sidewalk/frontage width and merged — not a
convex hull of the reached nodes, which would cover blocks nobody can walk into.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InputError
from .facilities import validate_facilities
from .network import DEFAULT_SNAP_LIMIT_M, WalkNetwork
from .paths import facility_entries
from .tiers import Tier

if TYPE_CHECKING:
    import geopandas as gpd
    import scipy.sparse as sp

log = logging.getLogger(__name__)

DEFAULT_BUFFER_M = 25.0
"""Half-width of a walked street in a service area: sidewalk plus building frontage."""


def _incidence(network: WalkNetwork) -> sp.csr_matrix:
    import scipy.sparse as sp

    e = np.arange(network.n_edges)
    rows = np.concatenate([network.edge_u, network.edge_v])
    cols = np.concatenate([e, e])
    return sp.csr_matrix(
        (np.ones(len(rows), dtype=bool), (rows, cols)), shape=(network.n_nodes, network.n_edges)
    )


def reached_pieces(
    network: WalkNetwork,
    node_dist_m: np.ndarray,
    budget_m: float,
    *,
    incidence: sp.csr_matrix | None = None,
) -> list[tuple[int, float, float]]:
    """Pieces of edges reachable within ``budget_m`` given each node's distance.

    Returns ``(edge, start_m, end_m)`` offsets from the edge's ``u`` end.
    """
    inc = _incidence(network) if incidence is None else incidence
    reached = np.flatnonzero(node_dist_m <= budget_m)
    if len(reached) == 0:
        return []
    edges = np.unique(inc[reached].indices)
    u, v = network.edge_u[edges], network.edge_v[edges]
    length = network.edge_length_m[edges]
    ru = np.clip(budget_m - node_dist_m[u], 0, None)
    rv = np.clip(budget_m - node_dist_m[v], 0, None)
    ru = np.where(np.isfinite(ru), ru, 0.0)
    rv = np.where(np.isfinite(rv), rv, 0.0)
    pieces: list[tuple[int, float, float]] = []
    whole = ru + rv >= length
    for e, ln in zip(edges[whole].tolist(), length[whole].tolist(), strict=True):
        pieces.append((e, 0.0, ln))
    for e, ln, a, b in zip(
        edges[~whole].tolist(),
        length[~whole].tolist(),
        ru[~whole].tolist(),
        rv[~whole].tolist(),
        strict=True,
    ):
        if a > 0:
            pieces.append((e, 0.0, a))
        if b > 0:
            pieces.append((e, ln - b, ln))
    return pieces


def _polygon(network: WalkNetwork, pieces: list[tuple[int, float, float]], buffer_m: float) -> Any:
    import shapely
    from shapely.ops import substring

    if not pieces:
        return shapely.Polygon()
    geoms = []
    for e, start, end in pieces:
        line = network.edge_geometry[e]
        if start <= 0 and end >= network.edge_length_m[e] - 1e-9:
            geoms.append(line)
        else:
            geoms.append(substring(line, start, end))
    merged = shapely.union_all(shapely.buffer(np.asarray(geoms, dtype=object), buffer_m))
    return shapely.make_valid(merged)


def service_areas(
    network: WalkNetwork,
    facilities: gpd.GeoDataFrame,
    tiers: tuple[Tier, ...] | list[Tier],
    *,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
    buffer_m: float = DEFAULT_BUFFER_M,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Per-facility service areas and their union per tier.

    Parameters
    ----------
    network
        The walk network.
    facilities
        ``facility_id``, ``kind`` and point geometry in the network's CRS.
    tiers
        Each tier's distance is the walking budget (the facility's egress leg counts).
    snap_limit_m
        Facilities farther than this from every street get no service area.
    buffer_m
        Half-width given to every reached piece of street.

    Returns
    -------
    per_facility, union
        ``per_facility``: ``tier``, ``facility_id``, ``kind``, ``target_m``, ``area_m2``,
        geometry. ``union``: one row per tier with ``tier``, ``target_m``, ``facilities``,
        ``area_m2``, geometry.
    """
    import geopandas as gpd
    import shapely
    from scipy.sparse.csgraph import dijkstra
    from shapely.ops import substring

    if buffer_m <= 0:
        raise InputError(f"service-area buffer must be positive metres; got {buffer_m}")
    facilities = validate_facilities(facilities)
    fsnap = network.snap(facilities, snap_limit_m=snap_limit_m)
    inc = _incidence(network)
    rows: list[dict[str, object]] = []
    unions: list[dict[str, object]] = []
    # dense rows per Dijkstra batch kept under ~200 MB
    batch = max(1, int(2e8 // (16 * max(network.n_nodes, 1))))
    for tier in tiers:
        sel = np.flatnonzero(facilities["kind"].isin(tier.kinds).to_numpy() & fsnap.ok)
        polys = []
        for start in range(0, len(sel), batch):
            chunk = sel[start : start + batch]
            sub = fsnap.subset(chunk)
            nodes, weights, labels = facility_entries(network, sub)
            dist = dijkstra(network.csr, directed=True, indices=nodes, limit=tier.target_m)
            for j, f in enumerate(chunk.tolist()):
                mine = labels == j
                d = np.min(dist[mine] + weights[mine, None], axis=0)
                pieces = reached_pieces(network, d, tier.target_m, incidence=inc)
                # the facility's own edge, walked both ways from its projection
                e = int(fsnap.edge[f])
                r0 = tier.target_m - float(fsnap.access_m[f])
                poly = _polygon(network, pieces, buffer_m)
                if r0 > 0:
                    s = float(fsnap.offset_m[f])
                    length = float(network.edge_length_m[e])
                    own = substring(network.edge_geometry[e], max(0.0, s - r0), min(length, s + r0))
                    access = shapely.LineString(
                        [facilities.geometry.iloc[f].coords[0], (fsnap.x[f], fsnap.y[f])]
                    )
                    extra = shapely.buffer(np.asarray([own, access], dtype=object), buffer_m)
                    poly = shapely.make_valid(shapely.union_all([poly, *extra]))
                polys.append(poly)
                rows.append(
                    {
                        "tier": tier.name,
                        "facility_id": str(facilities["facility_id"].iloc[f]),
                        "kind": str(facilities["kind"].iloc[f]),
                        "target_m": tier.target_m,
                        "area_m2": float(poly.area),
                        "geometry": poly,
                    }
                )
        union = shapely.make_valid(shapely.union_all(polys)) if polys else shapely.Polygon()
        unions.append(
            {
                "tier": tier.name,
                "target_m": tier.target_m,
                "facilities": len(sel),
                "area_m2": float(union.area),
                "geometry": union,
            }
        )
    per = (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=network.crs)
        if rows
        else (
            gpd.GeoDataFrame(
                {"tier": [], "facility_id": [], "kind": [], "target_m": [], "area_m2": []},
                geometry=[],
                crs=network.crs,
            )
        )
    )
    uni = gpd.GeoDataFrame(unions, geometry="geometry", crs=network.crs)
    return per, uni
