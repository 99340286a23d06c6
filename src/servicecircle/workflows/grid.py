"""The grid workflow: area → demand → regular or governance cells → ``cells.gpkg`` and summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .common import OutDir, finish_summary, output_for, resolve_demand, summary_head

if TYPE_CHECKING:
    import geopandas as gpd

    from ..area import Area

DEFAULT_HOUSEHOLD_RANGE = (300.0, 500.0)


def run_grid(
    area: Area,
    *,
    kind: str,
    size_m: float | None = None,
    h3_res: int | None = None,
    households: tuple[float, float] | None = None,
    communities: str | Path | gpd.GeoDataFrame | None = None,
    demand: str | Path | gpd.GeoDataFrame | None = None,
    out_dir: OutDir = None,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Build a grid over the area, with population and households per cell, and write it.

    Writes ``cells.gpkg`` (layer ``cells``: ``cell_id``, ``population``, ``households``,
    ``flag``, geometry) and ``grid_summary.json`` when ``out_dir`` is given.
    """
    started = time.perf_counter()
    with output_for(out_dir) as out:
        demand_gdf = resolve_demand(area, demand, required=False)
        if kind == "governance":
            cells = _governance(area, demand_gdf, households, communities)
        else:
            from ..grid import regular_grid

            cells = regular_grid(
                kind, area.boundary, crs=area.crs, size_m=size_m, h3_res=h3_res, demand=demand_gdf
            )
        summary = grid_summary(area, cells, demand_gdf, kind=kind, size_m=size_m, h3_res=h3_res)
        if kind == "governance":
            summary["household_range"] = list(households or DEFAULT_HOUSEHOLD_RANGE)
            summary["blocks"] = cells.attrs.get("blocks")
        cols = ["cell_id", "population", "households", "flag"]
        cols += [c for c in ("community", "blocks") if c in cells.columns]
        out.gpkg("cells.gpkg", {"cells": cells[[*cols, "geometry"]]})
        finish_summary(out, summary, started, name="grid_summary.json")
    return cells, summary


def _governance(
    area: Area,
    demand: gpd.GeoDataFrame,
    households: tuple[float, float] | None,
    communities: str | Path | gpd.GeoDataFrame | None,
) -> gpd.GeoDataFrame:
    import geopandas as gpd

    from ..files import read_table
    from ..governance import GovernanceParams, governance_grid

    lo, hi = households or DEFAULT_HOUSEHOLD_RANGE
    comm = None
    if communities is not None:
        comm = (
            communities
            if isinstance(communities, gpd.GeoDataFrame)
            else read_table(communities, "community file")
        )
    return governance_grid(
        area.edges,
        area.boundary,
        demand,
        communities=comm,
        params=GovernanceParams(households_min=lo, households_max=hi),
    )


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
