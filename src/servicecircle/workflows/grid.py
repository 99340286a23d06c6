"""The grid workflow: area → demand → regular or governance cells → ``cells.gpkg`` and summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..files import DEFAULT_FILES, FileOptions
from .common import OutDir, finish_summary, output_for, resolve_demand, summary_head

if TYPE_CHECKING:
    import geopandas as gpd

    from ..area import Area
    from ..governance import GovernanceHierarchy

DEFAULT_HOUSEHOLD_RANGE = (300.0, 500.0)


def run_grid(
    area: Area,
    *,
    kind: str,
    size_m: float | None = None,
    h3_res: int | None = None,
    households: tuple[float, float] | None = None,
    micro_households: tuple[float, float] | None = None,
    communities: str | Path | gpd.GeoDataFrame | None = None,
    demand: str | Path | gpd.GeoDataFrame | None = None,
    out_dir: OutDir = None,
    files: FileOptions = DEFAULT_FILES,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Build a grid over the area, with population and households per cell, and write it.

    Writes ``cells.gpkg`` (layer ``cells``: ``cell_id``, ``population``, ``households``,
    ``flag``, geometry) and ``grid_summary.json`` when ``out_dir`` is given. Governance grids
    add, in ``cells.gpkg``, the layers ``micro_grids`` (微网格, ``cell_id`` ``<grid>-<NN>``,
    ``grid_id``) and ``buildings`` (each demand point with its grid and micro-grid), and, in
    the summary, the hierarchy community → grid → micro-grid with shape figures.
    """
    started = time.perf_counter()
    with output_for(out_dir, command="grid") as out:
        demand_gdf = resolve_demand(area, demand, required=False, files=files)
        hierarchy = None
        if kind == "governance":
            hierarchy = _governance(
                area, demand_gdf, households, micro_households, communities, files
            )
            cells = hierarchy.grids
        else:
            from ..grid import regular_grid

            cells = regular_grid(
                kind, area.boundary, crs=area.crs, size_m=size_m, h3_res=h3_res, demand=demand_gdf
            )
        summary = grid_summary(area, cells, demand_gdf, kind=kind, size_m=size_m, h3_res=h3_res)
        cols = ["cell_id", "population", "households", "flag"]
        layers = {}
        if hierarchy is not None:
            summary["household_range"] = list(households or DEFAULT_HOUSEHOLD_RANGE)
            summary["blocks"] = cells.attrs.get("blocks")
            summary["governance"] = governance_summary(hierarchy)
            cols += [c for c in GRID_COLUMNS if c not in cols]
            layers["micro_grids"] = hierarchy.micro_grids
            layers["buildings"] = hierarchy.buildings
            cells.attrs["micro_grids"] = hierarchy.micro_grids  # for maps: drawn when zoomed in
        out.gpkg("cells.gpkg", {"cells": cells[[*cols, "geometry"]], **layers})
        finish_summary(out, summary, started, name="grid_summary.json")
    return cells, summary


GRID_COLUMNS = (
    "community",
    "level",
    "blocks",
    "micro_grids",
    "single_building",
    "polsby_popper",
    "street_share",
)
"""Columns of governance grids written to the ``cells`` layer after the common ones."""


def _governance(
    area: Area,
    demand: gpd.GeoDataFrame,
    households: tuple[float, float] | None,
    micro_households: tuple[float, float] | None,
    communities: str | Path | gpd.GeoDataFrame | None,
    files: FileOptions = DEFAULT_FILES,
) -> GovernanceHierarchy:
    import geopandas as gpd

    from ..governance import DEFAULT_MICRO_HOUSEHOLDS, GovernanceParams, governance_hierarchy

    lo, hi = households or DEFAULT_HOUSEHOLD_RANGE
    mlo, mhi = micro_households or DEFAULT_MICRO_HOUSEHOLDS
    comm = None
    if communities is not None:
        comm = (
            communities
            if isinstance(communities, gpd.GeoDataFrame)
            else files.read(communities, "community file")
        )
    params = GovernanceParams(
        households_min=lo, households_max=hi, micro_households_min=mlo, micro_households_max=mhi
    )
    return governance_hierarchy(area.edges, area.boundary, demand, communities=comm, params=params)


def _spread(values: Any) -> dict[str, float | None]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"min": None, "median": None, "max": None}
    return {
        "min": round(float(v.min()), 4),
        "median": round(float(np.median(v)), 4),
        "max": round(float(v.max()), 4),
    }


def governance_summary(h: GovernanceHierarchy) -> dict[str, Any]:
    """The ``governance`` block of ``grid_summary.json``: what rebalancing did, shape figures,
    micro-grids, and the hierarchy community → grid → micro-grid (with buildings and
    households at each level, which add up)."""
    grids, micro, buildings = h.grids, h.micro_grids, h.buildings
    flagged = grids["flag"].astype(str) != ""
    mflag = micro[micro["flag"].astype(str) != ""]
    by_grid = {gid: sub for gid, sub in micro.groupby("grid_id", sort=False)}
    grid_rows = []
    for r in grids.itertuples():
        sub = by_grid.get(r.cell_id, micro.iloc[0:0])
        grid_rows.append(
            {
                "cell_id": r.cell_id,
                "community": str(r.community),
                "households": round(float(r.households), 1),
                "population": round(float(r.population), 1),
                "single_building": bool(r.single_building),
                "polsby_popper": None if np.isnan(r.polsby_popper) else float(r.polsby_popper),
                "street_share": None if np.isnan(r.street_share) else float(r.street_share),
                "flag": r.flag,
                "micro_grids": [
                    {
                        "cell_id": m.cell_id,
                        "households": round(float(m.households), 1),
                        "buildings": int(m.buildings),
                        **({"demand_id": m.demand_id} if m.demand_id else {}),
                        **({"units": m.units} if m.units else {}),
                        **({"floors": m.floors} if m.floors else {}),
                    }
                    for m in sub.itertuples()
                ],
            }
        )
    communities = [
        {
            "community": str(c),
            "grids": len(sub),
            "households": round(float(sub["households"].sum()), 1),
        }
        for c, sub in grids.groupby("community", sort=True)
    ]
    return {
        "atoms": grids.attrs.get("atoms"),
        "recombinations": grids.attrs.get("recombinations"),
        "shape_recombinations": grids.attrs.get("shape_recombinations"),
        "moves": grids.attrs.get("moves"),
        "flagged_share": round(float(flagged.mean()), 4) if len(grids) else 0.0,
        "single_building_grids": int(grids["single_building"].sum()),
        "shape": {
            "polsby_popper": _spread(grids["polsby_popper"]),
            "street_share": _spread(grids["street_share"]),
        },
        "footprints_not_kept_whole": {
            "grids": int(grids.attrs.get("footprints_not_kept_whole", 0)),
            "micro_grids": int(micro.attrs.get("footprints_not_kept_whole", 0)),
        },
        "micro_grids": {
            "count": len(micro),
            "household_range": [h.params.micro_households_min, h.params.micro_households_max],
            "households": _spread(micro["households"]),
            "divided_buildings": int(micro.loc[micro["demand_id"] != "", "demand_id"].nunique()),
            "flagged": [
                {"cell_id": r.cell_id, "households": round(float(r.households), 1), "reason": f}
                for r, f in zip(mflag.itertuples(), mflag["flag"], strict=True)
            ],
        },
        "hierarchy": {
            "levels": ["community", "grid", "micro_grid", "building"],
            "communities": communities,
            "counts": {
                "communities": len(communities),
                "grids": len(grids),
                "micro_grids": len(micro),
                "buildings": int(buildings["demand_id"].nunique()),
            },
            "households": {
                "grids": round(float(grids["households"].sum()), 3),
                "micro_grids": round(float(micro["households"].sum()), 3),
                "buildings": round(float(buildings["households"].sum()), 3),
            },
        },
        "grids": grid_rows,
    }


def grid_summary(
    area: Area,
    cells: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    *,
    kind: str,
    size_m: float | None,
    h3_res: int | None,
) -> dict[str, Any]:
    """``grid_summary.json``: cell count, households min/median/max, flagged cells."""
    hh = cells["households"].to_numpy(dtype=float)
    flagged = cells[cells["flag"].astype(str) != ""]
    return summary_head(
        area=area.name,
        kind=kind,
        size_m=size_m,
        h3_res=h3_res,
        count=len(cells),
        households={
            "total": float(hh.sum()),
            "min": float(hh.min()) if len(hh) else None,
            "median": float(np.median(hh)) if len(hh) else None,
            "max": float(hh.max()) if len(hh) else None,
        },
        population=float(cells["population"].sum()),
        demand=demand.attrs.get("counts", {}),
        demand_points=len(demand),
        demand_points_outside_cells=int(cells.attrs.get("points_outside_cells", 0))
        + int(cells.attrs.get("points_outside_boundary", 0)),
        flagged=[
            {"cell_id": r.cell_id, "households": round(float(r.households), 1), "reason": r.flag}
            for r in flagged.itertuples()
        ],
    )
