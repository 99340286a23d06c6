"""Governance grids (网格): street blocks merged into grids of a target household range.

Streets → blocks (cut by community boundaries) → blocks over the maximum split along buildings
(never through one) → blocks below the minimum merged with neighbours across minor streets →
codes ``<community>-<NNN>`` north-west to south-east. See :func:`governance_grid`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import require_metric
from ._errors import InputError
from .geometry import assign_cells, check_boundary, nw_order, polygonal
from .grid import DEFAULT_HOUSEHOLD_SIZE, households_of

if TYPE_CHECKING:
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

DEFAULT_HOUSEHOLDS = (300, 500)
"""Target households per governance grid (a few hundred, as in 社区 → 网格 practice)."""
MAJOR_ROADS = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "motorway_link",
    "trunk_link",
    "primary_link",
    "secondary_link",
)


@dataclass(frozen=True)
class GovernanceParams:
    """Settings of governance grids.

    Attributes
    ----------
    households_min, households_max
        Target range of households per grid (default 300–500).
    household_size
        Residents per household when only population is known (default 2.62, 2020 census).
    major_roads
        ``highway=*`` values a grid prefers not to cross.
    default_community
        Community code used when no community layer is given.
    """

    households_min: float = DEFAULT_HOUSEHOLDS[0]
    households_max: float = DEFAULT_HOUSEHOLDS[1]
    household_size: float = DEFAULT_HOUSEHOLD_SIZE
    major_roads: tuple[str, ...] = MAJOR_ROADS
    default_community: str = "000"

    def __post_init__(self) -> None:
        if not 0 < self.households_min <= self.households_max:
            raise InputError(
                "household range must be MIN:MAX with 0 < MIN ≤ MAX; got "
                f"{self.households_min:g}:{self.households_max:g}"
            )


def street_blocks(edges: gpd.GeoDataFrame, boundary: BaseGeometry) -> gpd.GeoDataFrame:
    """Polygonize the streets inside ``boundary`` into blocks (faces of the street network).

    Returns blocks with ``block_id`` (``b00000``… in NW→SE order) and geometry.
    """
    import geopandas as gpd
    import shapely

    require_metric(edges.crs, "streets")
    boundary = check_boundary(boundary)
    lines = np.asarray(edges.geometry.to_numpy(), dtype=object)
    rings = shapely.boundary(boundary)
    noded = shapely.node(shapely.union_all(np.append(shapely.intersection(lines, boundary), rings)))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 1.0]
    # only faces inside the boundary (polygonize can also return holes filled by the boundary)
    reps = shapely.point_on_surface(faces)
    faces = faces[shapely.contains(boundary, reps)]
    faces = shapely.make_valid(faces)
    order = nw_order(faces)
    faces = faces[order]
    return gpd.GeoDataFrame(
        {"block_id": [f"b{i:05d}" for i in range(len(faces))]}, geometry=faces, crs=edges.crs
    )


def governance_grid(
    edges: gpd.GeoDataFrame,
    boundary: BaseGeometry,
    demand: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    params: GovernanceParams | None = None,
) -> gpd.GeoDataFrame:
    """Governance grids (网格) of a target household range, built from street blocks.

    1. Streets inside the boundary are polygonized into blocks; with a community layer, blocks
       are cut by community boundaries (a grid never crosses one).
    2. Each demand point goes to its block (households from ``households``, else population ÷
       household size).
    3. Blocks with more households than the maximum are split along buildings — demand points
       are divided into balanced groups by recursive cuts across the block's longer side, and
       each group takes the Voronoi region of its points — so no building is cut.
    4. Blocks below the minimum are merged with neighbours (blocks sharing a street), preferring
       minor streets over primary/secondary roads, until the grid reaches the minimum without
       passing the maximum.
    5. Grids are coded ``<community code>-<NNN>``, numbered north-west to south-east.
       A grid that cannot meet the range is kept and flagged with the reason.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id``, ``community``, ``population``, ``households``, ``blocks``, ``flag``,
        geometry. Deterministic for the same input.
    """
    import geopandas as gpd
    import shapely

    params = params or GovernanceParams()
    crs = require_metric(edges.crs, "streets")
    boundary = check_boundary(boundary)
    blocks = street_blocks(edges, boundary)
    if len(blocks) == 0:
        raise InputError("the streets form no block inside the boundary; check the area")
    # communities
    if communities is not None:
        comm = _communities(communities, boundary, crs)
        parts = gpd.overlay(
            blocks, comm[["community", "geometry"]], how="intersection", keep_geom_type=True
        )
        parts = parts.explode(ignore_index=True)
        parts = parts[parts.area > 1.0]
    else:
        parts = blocks.assign(community=params.default_community)
    parts = parts.reset_index(drop=True)
    parts = parts.iloc[nw_order(parts.geometry.to_numpy())].reset_index(drop=True)
    # demand into blocks (nearest block for points on a street line or in a gap)
    dem = demand[demand.geometry.notna()].copy()
    hh = households_of(dem, params.household_size)
    pop = dem["population"].to_numpy(dtype=float)
    pts = dem.geometry.to_numpy()
    where = assign_cells(pts, parts)
    missing = np.flatnonzero(where < 0)
    inside_boundary = (
        shapely.contains(boundary, pts[missing]) if len(missing) else np.zeros(0, bool)
    )
    if len(missing):
        near = parts.sindex.nearest(pts[missing][inside_boundary], return_all=False)
        where[missing[inside_boundary][near[0]]] = near[1]
    outside = int((where < 0).sum())
    # split blocks that hold too many households
    footprints = None
    if "footprint" in dem.columns:
        footprints = np.asarray(dem["footprint"].to_numpy(), dtype=object)
    units = _split_big(parts, where, pts, hh, pop, params, footprints)
    grids = _merge_small(units, edges, params)
    # codes: per community, NW → SE
    geoms = np.asarray(grids["geometry"].to_numpy(), dtype=object)
    grids = grids.iloc[nw_order(geoms)].reset_index(drop=True)
    seq = grids.groupby("community").cumcount() + 1
    grids["cell_id"] = grids["community"].astype(str) + "-" + seq.map(lambda i: f"{i:03d}")
    out = gpd.GeoDataFrame(
        grids[["cell_id", "community", "population", "households", "blocks", "flag"]],
        geometry=grids["geometry"].to_numpy(),
        crs=crs,
    )
    out.attrs["points_outside_boundary"] = outside
    out.attrs["blocks"] = len(parts)
    return out


def _communities(
    communities: gpd.GeoDataFrame, boundary: BaseGeometry, crs: Any
) -> gpd.GeoDataFrame:
    comm = communities.to_crs(crs).copy()
    kinds = set(comm.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"community layer must be polygons; got {', '.join(sorted(kinds))}")
    for col in ("code", "community", "id", "name"):
        if col in comm.columns:
            comm["community"] = comm[col].astype(str)
            break
    else:
        comm["community"] = [f"{i + 1:03d}" for i in range(len(comm))]
    if comm["community"].duplicated().any():
        raise InputError("community layer: codes must be unique; give each community its code")
    comm = comm[comm.intersects(boundary)]
    if len(comm) == 0:
        raise InputError(
            "community layer does not overlap the area; check that it covers the same place "
            "(and its CRS)"
        )
    return comm


def _split_big(
    parts: gpd.GeoDataFrame,
    where: np.ndarray,
    pts: np.ndarray,
    hh: np.ndarray,
    pop: np.ndarray,
    params: GovernanceParams,
    footprints: np.ndarray | None = None,
) -> pd.DataFrame:
    """Blocks → units with at most ``households_max`` households where buildings allow.

    A block over the maximum is divided along its buildings: a building at or over the maximum
    is a unit of its own, the others are cut into balanced groups; each group takes the
    Voronoi regions of its buildings inside the block, and every building footprint (when the
    demand carries a ``footprint`` column) goes whole to its group, so no building is cut.
    Pieces of a group that fall apart are separate units; pieces without a building, and parts
    cut off by a whole building, join the neighbouring piece they share most border with.
    """
    import shapely

    rows: list[dict[str, Any]] = []
    for b in range(len(parts)):
        geom = parts.geometry.iloc[b]
        community = parts["community"].iloc[b]
        mine = np.flatnonzero(where == b)
        total = float(hh[mine].sum())
        coords = shapely.get_coordinates(pts[mine]) if len(mine) else np.zeros((0, 2))
        uniq, inv = (
            np.unique(np.round(coords, 3), axis=0, return_inverse=True)
            if len(mine)
            else (coords, np.zeros(0, dtype=int))
        )
        inv = np.asarray(inv).ravel()
        if total <= params.households_max or len(uniq) < 2:
            flag = ""
            if total > params.households_max:
                flag = "above_max: one building holds more households than the maximum"
            rows.append(
                {
                    "geometry": geom,
                    "community": community,
                    "households": total,
                    "population": float(pop[mine].sum()),
                    "flag": flag,
                }
            )
            continue
        # group per location (buildings sharing a point stay together)
        loc_hh = np.bincount(inv, weights=hh[mine], minlength=len(uniq))
        big = loc_hh >= params.households_max
        groups = np.full(len(uniq), -1, dtype="int64")
        groups[big] = np.arange(int(big.sum()))
        rest = np.flatnonzero(~big)
        if len(rest):
            k = max(1, math.ceil(float(loc_hh[rest].sum()) / params.households_max))
            groups[rest] = int(big.sum()) + _balanced_groups(uniq[rest], loc_hh[rest], k)
        pieces_arr = _group_pieces(uniq, groups, geom)
        # which buildings each piece holds
        loc_pts = shapely.points(uniq)
        ptree = shapely.STRtree(pieces_arr)
        ph = ptree.query(loc_pts, predicate="intersects")
        piece_of_loc = np.full(len(uniq), -1, dtype="int64")
        for p_, r_ in zip(ph[0].tolist(), ph[1].tolist(), strict=True):
            if piece_of_loc[p_] < 0:
                piece_of_loc[p_] = r_
        missing = piece_of_loc < 0
        if missing.any():
            near = ptree.query_nearest(loc_pts[missing], all_matches=False)
            piece_of_loc[np.flatnonzero(missing)[near[0]]] = near[1]
        holds = np.bincount(piece_of_loc, minlength=len(pieces_arr)) > 0
        owner = np.arange(len(pieces_arr))
        for e in np.flatnonzero(~holds).tolist():
            shared = shapely.length(shapely.intersection(pieces_arr[e], pieces_arr[holds]))
            owner[e] = np.flatnonzero(holds)[int(np.argmax(shared))]
        pt_piece = piece_of_loc[inv]
        owned = {int(o): shapely.union_all(pieces_arr[owner == o]) for o in np.flatnonzero(holds)}
        if footprints is not None:
            owned = _footprints_whole(owned, mine, pt_piece, footprints, geom)
        owned, pt_piece = _reattach_parts(owned, pt_piece, shapely.points(coords))
        for o in sorted(owned):
            geom_o = owned[o]
            sel = pt_piece == o
            h = float(hh[mine][sel].sum())
            flag = ""
            if h > params.households_max:
                flag = "above_max: one building holds more households than the maximum"
            rows.append(
                {
                    "geometry": polygonal(shapely.make_valid(geom_o)),
                    "community": community,
                    "households": h,
                    "population": float(pop[mine][sel].sum()),
                    "flag": flag,
                }
            )
    units = pd.DataFrame(rows)
    units = units[~units["geometry"].map(lambda g: g.is_empty)].reset_index(drop=True)
    return units


def _group_pieces(uniq: np.ndarray, groups: np.ndarray, geom: Any) -> np.ndarray:
    """Each group of building locations takes the Voronoi regions of its locations inside the
    block; the parts of those unions, as pieces."""
    import shapely

    regions = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(uniq), extend_to=geom))
    reg_tree = shapely.STRtree(regions)
    hit = reg_tree.query(shapely.points(uniq), predicate="intersects")
    region_group = np.full(len(regions), -1, dtype="int64")
    for p_, r_ in zip(hit[0].tolist(), hit[1].tolist(), strict=True):
        if region_group[r_] < 0:
            region_group[r_] = groups[p_]
    pieces: list[Any] = []
    for g in np.unique(groups).tolist():
        merged = shapely.union_all(regions[region_group == g])
        piece = polygonal(shapely.make_valid(shapely.intersection(merged, geom)))
        pieces.extend(p for p in shapely.get_parts(piece) if p.area > 0.01)
    return np.asarray(pieces, dtype=object)


def _footprints_whole(
    owned: dict[int, Any],
    mine: np.ndarray,
    pt_piece: np.ndarray,
    footprints: np.ndarray,
    geom: Any,
) -> dict[int, Any]:
    """A building belongs wholly to the piece of its point: never cut through it."""
    import shapely

    owned = {key: shapely.make_valid(g) for key, g in owned.items()}
    for i, o in zip(mine.tolist(), pt_piece.tolist(), strict=True):
        f = footprints[i]
        if f is None or f.is_empty:
            continue
        try:
            f = polygonal(shapely.make_valid(shapely.intersection(shapely.make_valid(f), geom)))
            if f.is_empty:
                continue
            for other in owned:
                if other != o and owned[other].intersects(f):
                    owned[other] = polygonal(
                        shapely.make_valid(shapely.difference(owned[other], f))
                    )
            owned[o] = polygonal(shapely.make_valid(shapely.union(owned[o], f)))
        except shapely.errors.GEOSException:  # pragma: no cover - degenerate footprint
            log.debug("footprint %d could not be kept whole", i)
    return owned


def _reattach_parts(
    owned: dict[int, Any], pt_piece: np.ndarray, pts: np.ndarray
) -> tuple[dict[int, Any], np.ndarray]:
    """Keep each unit in one part: a part cut off (by a building given whole to a neighbour)
    joins the unit it shares the longest border with; buildings follow their part."""
    import shapely

    keys = sorted(owned)
    for _ in range(3):  # a moved part can itself create a new cut-off; settle in few rounds
        moved = False
        for o in keys:
            parts = list(shapely.get_parts(owned[o]))
            if len(parts) <= 1:
                continue
            mine = pts[pt_piece == o]
            held = [int(shapely.contains(p, mine).sum()) if len(mine) else 0 for p in parts]
            # the part holding most of the unit's buildings (then the largest) stays
            main = max(range(len(parts)), key=lambda j: (held[j], parts[j].area))
            keep = [parts[main]]
            for j, part in enumerate(parts):
                if j == main:
                    continue
                best, best_len = None, 0.0
                for other in keys:
                    if other == o:
                        continue
                    length = shapely.length(shapely.intersection(part, owned[other]))
                    if length > best_len + 1e-9:
                        best, best_len = other, length
                if best is None:
                    keep.append(part)
                    continue
                owned[best] = polygonal(shapely.make_valid(shapely.union(owned[best], part)))
                inside = shapely.covers(part, pts) & (pt_piece == o)
                pt_piece = np.where(inside, best, pt_piece)
                moved = True
            owned[o] = polygonal(shapely.make_valid(shapely.union_all(keep)))
        if not moved:
            break
    return owned, pt_piece


def _balanced_groups(xy: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Split points into ``k`` spatially compact groups of about equal weight, by recursive
    cuts across the longer side (deterministic)."""
    out = np.zeros(len(xy), dtype="int64")

    def cut(idx: np.ndarray, parts: int, first: int) -> None:
        if parts <= 1 or len(idx) <= 1:
            out[idx] = first
            return
        span = xy[idx].max(axis=0) - xy[idx].min(axis=0)
        axis = 0 if span[0] >= span[1] else 1
        order = idx[np.lexsort((xy[idx, 1 - axis], xy[idx, axis]))]
        left_parts = parts // 2
        cum = np.cumsum(weight[order])
        target = cum[-1] * left_parts / parts
        split = int(np.searchsorted(cum, target)) + 1
        split = min(max(split, 1), len(order) - 1)
        cut(order[:split], left_parts, first)
        cut(order[split:], parts - left_parts, first + left_parts)

    cut(np.arange(len(xy)), k, 0)
    return out


def _merge_small(
    units: pd.DataFrame, edges: gpd.GeoDataFrame, params: GovernanceParams
) -> pd.DataFrame:
    """Greedy, deterministic region growing of units into grids of the household range."""
    import shapely

    geoms = np.asarray(units["geometry"].to_numpy(), dtype=object)
    n = len(geoms)
    hh = units["households"].to_numpy(dtype=float)
    community = units["community"].to_numpy()
    # adjacency: units sharing a boundary line (a street between them), same community only
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = (a < b) & (community[a] == community[b])
    a, b = a[keep], b[keep]
    shared = shapely.intersection(geoms[a], geoms[b])
    length = shapely.length(shared)
    real = length > 1.0
    a, b, shared, length = a[real], b[real], shared[real], length[real]
    # how much of the shared border runs along a major road
    major = edges[edges["highway"].astype("string").isin(params.major_roads).fillna(False)]
    if len(major) and len(shared):
        major_zone = shapely.buffer(shapely.union_all(major.geometry.to_numpy()), 2.0)
        along = shapely.length(shapely.intersection(shared, major_zone)) / np.maximum(length, 1e-9)
    else:
        along = np.zeros(len(shared))
    neigh: list[dict[int, float]] = [dict() for _ in range(n)]
    for i, j, f in zip(a.tolist(), b.tolist(), along.tolist(), strict=True):
        neigh[i][j] = f
        neigh[j][i] = f
    grid_of = np.full(n, -1, dtype="int64")
    grids: list[list[int]] = []
    totals: list[float] = []
    for seed in range(n):  # units come in NW → SE order
        if grid_of[seed] >= 0:
            continue
        gid = len(grids)
        members = [seed]
        grid_of[seed] = gid
        total = hh[seed]
        while total < params.households_min:
            best = None
            best_key: tuple[float, float, int] | None = None
            for m in members:
                for j, f in neigh[m].items():
                    if grid_of[j] >= 0 or total + hh[j] > params.households_max:
                        continue
                    key = (round(f, 3), abs(params.households_min - (total + hh[j])), j)
                    if best_key is None or key < best_key:
                        best, best_key = j, key
            if best is None:
                break
            members.append(best)
            grid_of[best] = gid
            total += hh[best]
        grids.append(members)
        totals.append(total)
    # grids still below the minimum: join a neighbouring grid if it stays within the maximum
    flags = ["" for _ in grids]
    for gid in range(len(grids)):
        if totals[gid] >= params.households_min or not grids[gid]:
            continue
        cands: dict[int, float] = {}
        for m in grids[gid]:
            for j, f in neigh[m].items():
                other = int(grid_of[j])
                if other != gid and grids[other]:
                    cands[other] = min(cands.get(other, 1.0), f)
        options = sorted(
            (round(f, 3), totals[o], o)
            for o, f in cands.items()
            if totals[o] + totals[gid] <= params.households_max
        )
        if options:
            other = options[0][2]
            for m in grids[gid]:
                grid_of[m] = other
            grids[other] = grids[other] + grids[gid]
            totals[other] += totals[gid]
            grids[gid] = []
            totals[gid] = 0.0
        elif not cands:
            flags[gid] = "below_min: isolated block with no neighbour to merge with"
        else:
            flags[gid] = "below_min: every neighbour would pass the maximum"
    rows = []
    for gid, members in enumerate(grids):
        if not members:
            continue
        sub = units.iloc[members]
        unit_flags = [f for f in sub["flag"].tolist() if f]
        flag = flags[gid] or (unit_flags[0] if unit_flags else "")
        if not flag and totals[gid] > params.households_max:
            flag = "above_max: cannot be split further"
        rows.append(
            {
                "geometry": shapely.make_valid(shapely.union_all(geoms[members])),
                "community": sub["community"].iloc[0],
                "households": float(sub["households"].sum()),
                "population": float(sub["population"].sum()),
                "blocks": len(members),
                "flag": flag,
            }
        )
    return pd.DataFrame(rows)
