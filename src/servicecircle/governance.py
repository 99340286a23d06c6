"""Governance grids (网格): street blocks grouped into grids of a target household range.

community → grid → micro-grid (微网格) → building → households. Streets → blocks (cut by
community boundaries) → atoms (blocks divided along buildings, never through one) → grids,
rebalanced until every grid is in the household range wherever the search finds an
arrangement (:mod:`.governance_balance`) → micro-grids (:mod:`.governance_micro`) → codes
``<community>-<NNN>`` and ``<grid>-<NN>`` north-west to south-east. See
:func:`governance_hierarchy`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import require_metric
from ._errors import InputError
from .geometry import assign_cells, check_boundary, nw_order, polsby_popper, share_along
from .governance_balance import balance
from .governance_graph import atom_graph
from .governance_micro import Buildings, MicroGrids, MicroParams, micro_grids
from .governance_split import block_atoms
from .grid import DEFAULT_HOUSEHOLD_SIZE, households_of

if TYPE_CHECKING:
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

DEFAULT_HOUSEHOLDS = (300, 500)
"""Target households per governance grid (a few hundred, as in 社区 → 网格 practice)."""
DEFAULT_MICRO_HOUSEHOLDS = (30, 150)
"""Target households per micro-grid (微网格: a building, a few buildings, or units of one)."""
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
        Target range of households per grid (default 300–500). A building (or compound) over
        the maximum is a grid of its own, divided into micro-grids.
    household_size
        Residents per household when only population is known (default 2.62, 2020 census).
    major_roads
        ``highway=*`` values a grid prefers not to cross.
    default_community
        Community code used when no community layer is given.
    micro_households_min, micro_households_max
        Target range of households per micro-grid (default 30–150).
    unit_width_m
        Length of building frontage per stairwell unit (单元), to estimate a building's units
        from its footprint when it is divided by unit and floor (default 20 m).
    seed
        Seed of the random spanning trees of rebalancing; the same seed, the same grids.
    """

    households_min: float = DEFAULT_HOUSEHOLDS[0]
    households_max: float = DEFAULT_HOUSEHOLDS[1]
    household_size: float = DEFAULT_HOUSEHOLD_SIZE
    major_roads: tuple[str, ...] = MAJOR_ROADS
    default_community: str = "000"
    micro_households_min: float = DEFAULT_MICRO_HOUSEHOLDS[0]
    micro_households_max: float = DEFAULT_MICRO_HOUSEHOLDS[1]
    unit_width_m: float = 20.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.households_min <= self.households_max:
            problems.append(
                "household range must be MIN:MAX with 0 < MIN ≤ MAX; got "
                f"{self.households_min:g}:{self.households_max:g}"
            )
        if not 0 < self.micro_households_min <= self.micro_households_max:
            problems.append(
                "micro-grid household range must be MIN:MAX with 0 < MIN ≤ MAX; got "
                f"{self.micro_households_min:g}:{self.micro_households_max:g}"
            )
        if not self.household_size > 0:
            problems.append(f"household size must be positive; got {self.household_size:g}")
        if not self.unit_width_m > 0:
            problems.append(
                f"unit width must be a positive number of metres; got {self.unit_width_m:g}"
            )
        if problems:
            raise InputError("; ".join(problems))

    @property
    def atom_max(self) -> float:
        """Households above which a block is divided into atoms for rebalancing: half the
        width of the range (so that grids can trade in steps smaller than the range)."""
        lo, hi = self.households_min, self.households_max
        return max((hi - lo) / 2.0, hi / 8.0)


@dataclass(frozen=True)
class GovernanceHierarchy:
    """Governance grids with their micro-grids and buildings.

    Attributes
    ----------
    grids
        ``cell_id`` (``<community>-<NNN>``), ``community``, ``level`` (``grid``),
        ``population``, ``households``, ``blocks``, ``micro_grids``, ``single_building``
        (one building or compound over the maximum, a grid of its own), ``polsby_popper``,
        ``street_share``, ``flag`` (why a grid is outside the range), geometry.
    micro_grids
        ``cell_id`` (``<grid>-<NN>``), ``grid_id``, ``community``, ``level``
        (``micro_grid``), ``population``, ``households``, ``buildings``, ``demand_id`` and
        ``share`` (a part of one building), ``units``, ``floors``, ``flag``, geometry. They
        tile the grids.
    buildings
        One row per demand point and micro-grid it belongs to (several for a building divided
        by unit and floor): ``demand_id``, ``community``, ``grid_id``, ``micro_grid_id``,
        ``share``, ``households``, ``population``, geometry (the demand point). Index: the
        demand's.
    params
        The settings they were built with.
    """

    grids: gpd.GeoDataFrame
    micro_grids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    params: GovernanceParams


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
    """Governance grids (网格): the ``grids`` of :func:`governance_hierarchy`."""
    return governance_hierarchy(
        edges, boundary, demand, communities=communities, params=params
    ).grids


def governance_hierarchy(
    edges: gpd.GeoDataFrame,
    boundary: BaseGeometry,
    demand: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    params: GovernanceParams | None = None,
) -> GovernanceHierarchy:
    """Governance grids (网格) of a target household range and their micro-grids (微网格).

    1. Streets inside the boundary are polygonized into blocks; with a community layer, blocks
       are cut by community boundaries (a grid never crosses one).
    2. Each demand point goes to its block (households from ``households``, else population ÷
       household size).
    3. Blocks are divided along buildings into atoms of at most half the range's width
       (:attr:`GovernanceParams.atom_max`); a building over the maximum is an atom, and a
       grid, of its own. Footprints (a ``footprint`` column) go whole to one atom.
    4. Atoms are grown into grids, and grids outside the range are rebalanced with their
       neighbours by recombination along spanning trees and by moving boundary atoms,
       preferring compact grids bounded by streets and not crossing primary/secondary roads
       (:func:`servicecircle.governance_balance.balance`).
    5. Each grid is divided into micro-grids; a building over the micro maximum by unit and
       floor (:mod:`servicecircle.governance_micro`).
    6. Grids are coded ``<community code>-<NNN>`` and micro-grids ``<grid>-<NN>``, numbered
       north-west to south-east. A grid the search cannot bring into the range is kept and
       flagged with the reason.

    Returns
    -------
    GovernanceHierarchy
        Deterministic for the same input and :attr:`GovernanceParams.seed`. ``grids.attrs``:
        ``blocks``, ``atoms``, ``points_outside_boundary``, ``footprints_not_kept_whole``,
        ``recombinations``, ``shape_recombinations``, ``moves``; ``micro_grids.attrs``:
        ``footprints_not_kept_whole``.
    """
    import geopandas as gpd

    params = params or GovernanceParams()
    crs = require_metric(edges.crs, "streets")
    boundary = check_boundary(boundary)
    parts = _block_parts(edges, boundary, communities, params, crs)
    dem = demand[demand.geometry.notna()]
    hh = households_of(dem, params.household_size)
    pop = dem["population"].to_numpy(dtype=float)
    pts = dem.geometry.to_numpy()
    where = _demand_blocks(pts, parts, boundary)
    footprints = None
    if "footprint" in dem.columns:
        footprints = np.asarray(dem["footprint"].to_numpy(), dtype=object)
    atoms = block_atoms(
        parts,
        where,
        pts,
        hh,
        pop,
        atom_max=params.atom_max,
        tower_over=params.households_max,
        footprints=footprints,
    )
    af = atoms.frame
    graph = atom_graph(
        np.asarray(af["geometry"].to_numpy(), dtype=object),
        af["community"].to_numpy(),
        af["part"].to_numpy(),
        af["unit"].to_numpy(),
        af["households"].to_numpy(dtype=float),
        af["tower"].to_numpy(dtype=bool),
        edges,
        params.major_roads,
    )
    bal = balance(graph, params.households_min, params.households_max, seed=params.seed)
    grids, grid_of_label = _assemble(af, bal.grid_of, bal.flags, edges)
    point_grid = np.where(atoms.point_atom >= 0, grid_of_label[bal.grid_of][atoms.point_atom], -1)
    b = _buildings(dem, pts, hh, pop, footprints)
    micro = micro_grids(
        np.asarray(grids["geometry"].to_numpy(), dtype=object),
        grids["cell_id"].tolist(),
        grids["community"].tolist(),
        point_grid,
        b,
        MicroParams(params.micro_households_min, params.micro_households_max, params.unit_width_m),
    )
    mf = micro.frame
    grids["micro_grids"] = (
        mf.groupby("grid_id").size().reindex(grids["cell_id"]).fillna(0).astype("int64").to_numpy()
    )
    cols = ["cell_id", "community", "level", "population", "households", "blocks"]
    cols += ["micro_grids", "single_building", "polsby_popper", "street_share", "flag"]
    out = gpd.GeoDataFrame(grids[cols], geometry=grids["geometry"].to_numpy(), crs=crs)
    out.attrs.update(
        points_outside_boundary=int((where < 0).sum()),
        blocks=len(parts),
        atoms=len(af),
        footprints_not_kept_whole=len(atoms.not_whole),
        recombinations=bal.recombinations,
        shape_recombinations=bal.shape_recombinations,
        moves=bal.moves,
    )
    micro_out, buildings = _micro_frames(micro, b, dem.index, crs)
    return GovernanceHierarchy(out, micro_out, buildings, params)


def _buildings(
    dem: gpd.GeoDataFrame,
    pts: np.ndarray,
    hh: np.ndarray,
    pop: np.ndarray,
    footprints: np.ndarray | None,
) -> Buildings:
    """The demand points as arrays, with floors (``levels``) and ids (``demand_id``, else
    the index) where the demand has them."""
    levels = (
        pd.to_numeric(dem["levels"], errors="coerce").to_numpy(dtype=float)
        if "levels" in dem.columns
        else np.full(len(dem), np.nan)
    )
    ids = (
        dem["demand_id"].astype(str).to_numpy()
        if "demand_id" in dem.columns
        else np.asarray([str(i) for i in dem.index], dtype=object)
    )
    return Buildings(pts, hh, pop, levels, footprints, ids)


def _micro_frames(
    micro: MicroGrids, b: Buildings, index: pd.Index, crs: Any
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The ``micro_grids`` and ``buildings`` frames of the hierarchy."""
    import geopandas as gpd

    mf = micro.frame
    mcols = ["cell_id", "grid_id", "community", "population", "households", "buildings"]
    mcols += ["demand_id", "share", "units", "floors", "flag"]
    micro_out = gpd.GeoDataFrame(
        mf[mcols].assign(level="micro_grid"), geometry=mf["geometry"].to_numpy(), crs=crs
    )
    micro_out.attrs["footprints_not_kept_whole"] = len(micro.not_whole)
    mem = micro.members
    pos = mem["point"].to_numpy()
    row = mem["micro"].to_numpy()
    share = mem["share"].to_numpy(dtype=float)
    buildings = gpd.GeoDataFrame(
        {
            "demand_id": b.ids[pos],
            "community": mf["community"].to_numpy()[row],
            "grid_id": mf["grid_id"].to_numpy()[row],
            "micro_grid_id": mf["cell_id"].to_numpy()[row],
            "share": share,
            "households": b.hh[pos] * share,
            "population": b.pop[pos] * share,
        },
        geometry=b.pts[pos],
        index=index[pos],
        crs=crs,
    )
    return micro_out, buildings


def _block_parts(
    edges: gpd.GeoDataFrame,
    boundary: BaseGeometry,
    communities: gpd.GeoDataFrame | None,
    params: GovernanceParams,
    crs: Any,
) -> gpd.GeoDataFrame:
    """Street blocks, cut by the community boundaries, north-west to south-east."""
    import geopandas as gpd

    blocks = street_blocks(edges, boundary)
    if len(blocks) == 0:
        raise InputError("the streets form no block inside the boundary; check the area")
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
    return parts.iloc[nw_order(parts.geometry.to_numpy())].reset_index(drop=True)


def _demand_blocks(pts: np.ndarray, parts: gpd.GeoDataFrame, boundary: BaseGeometry) -> np.ndarray:
    """Block part of each demand point (the nearest one for points on a street line or in a
    gap; ``-1`` outside the boundary)."""
    import shapely

    where = assign_cells(pts, parts)
    missing = np.flatnonzero(where < 0)
    if len(missing):
        inside = shapely.contains(boundary, pts[missing])
        near = parts.sindex.nearest(pts[missing][inside], return_all=False)
        where[missing[inside][near[0]]] = near[1]
    return where


def _assemble(
    atoms: pd.DataFrame, grid_of: np.ndarray, flags: tuple[str, ...], edges: gpd.GeoDataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    """Grids from their atoms, coded per community north-west → south-east; and the row of
    each grid label."""
    import shapely

    geoms = np.asarray(atoms["geometry"].to_numpy(), dtype=object)
    count = int(grid_of.max()) + 1 if len(grid_of) else 0
    rows = []
    for gid in range(count):
        members = np.flatnonzero(grid_of == gid)
        sub = atoms.iloc[members]
        rows.append(
            {
                "geometry": shapely.make_valid(shapely.union_all(geoms[members])),
                "community": sub["community"].iloc[0],
                "households": float(sub["households"].sum()),
                "population": float(sub["population"].sum()),
                "blocks": int(sub["part"].nunique()),
                "single_building": bool(sub["tower"].any()),
                "flag": flags[gid],
            }
        )
    grids = pd.DataFrame(rows)
    order = nw_order(np.asarray(grids["geometry"].to_numpy(), dtype=object))
    grids = grids.iloc[order].reset_index(drop=True)
    row_of_label = np.empty(count, dtype="int64")
    row_of_label[order] = np.arange(count)
    seq = grids.groupby("community").cumcount() + 1
    grids["cell_id"] = grids["community"].astype(str) + "-" + seq.map(lambda i: f"{i:03d}")
    grids["level"] = "grid"
    gg = np.asarray(grids["geometry"].to_numpy(), dtype=object)
    grids["polsby_popper"] = np.round(polsby_popper(gg), 4)
    grids["street_share"] = np.round(share_along(gg, edges.geometry.to_numpy()), 4)
    return grids, row_of_label


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
