"""Roll coverage up to polygons: grid cells, communities (社区), sub-districts (街道)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import require_metric
from ._errors import InputError
from .files import read_table
from .geometry import assign_cells

if TYPE_CHECKING:
    import geopandas as gpd

    from .coverage import Coverage

log = logging.getLogger(__name__)


def read_cells(path: str | Path, *, crs: Any) -> gpd.GeoDataFrame:
    """Read a polygon layer (cells, communities…) and reproject it to the area's CRS.

    The id is taken from ``cell_id``, else ``id``, else ``code``/``name``, else the row number.
    """
    require_metric(crs, "area")
    cells = read_table(path, "cell file", to_crs=crs)
    kinds = set(cells.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(
            f"cell file {path}: needs polygons; got {', '.join(sorted(kinds))}. Give a layer of "
            "grid cells or community boundaries"
        )
    return with_cell_id(cells, what=f"cell file {path}")


def with_cell_id(cells: gpd.GeoDataFrame, *, what: str = "cells") -> gpd.GeoDataFrame:
    """A copy with a unique string ``cell_id`` column."""
    cells = cells.copy()
    for col in ("cell_id", "id", "code", "name"):
        if col in cells.columns:
            cells["cell_id"] = cells[col].astype(str)
            break
    else:
        cells["cell_id"] = [f"c{i:04d}" for i in range(len(cells))]
    if cells["cell_id"].duplicated().any():
        dup = cells.loc[cells["cell_id"].duplicated(), "cell_id"].iloc[0]
        raise InputError(f"{what}: cell id {dup!r} appears more than once; make ids unique")
    return cells


def _responsible(inside: pd.DataFrame, tier: str) -> pd.Series:
    """Per cell, the facility nearest on foot for the most residents (the cell's responsible
    centre or station in the "one centre, many stations" map)."""
    col = f"{tier}_facility_id"
    have = inside[inside[col].notna()]
    if len(have) == 0:
        return pd.Series(dtype=object)
    load = have.groupby(["_cell", col])["population"].sum().reset_index()
    load = load.sort_values(["_cell", "population", col], ascending=[True, False, True])
    return load.drop_duplicates("_cell").set_index("_cell")[col]


def rollup(
    coverage: Coverage, demand: gpd.GeoDataFrame, cells: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Population-weighted coverage per cell.

    Parameters
    ----------
    coverage
        Result of :func:`~servicecircle.coverage.compute_coverage` on ``demand``.
    demand
        The demand points (same rows as ``coverage.points``).
    cells
        Polygons in the same CRS, with ``cell_id`` (see :func:`with_cell_id`).

    Returns
    -------
    geopandas.GeoDataFrame
        Per cell: ``cell_id``, ``population``, ``households``, ``demand_points``, and per tier
        ``<tier>_covered_residents``, ``<tier>_share`` (NaN when the cell has no residents),
        ``<tier>_circle_covered_residents``, ``<tier>_overcounted_residents`` (inside the
        straight-line circle but not within the distance on foot), ``<tier>_median_walk_m``,
        ``<tier>_responsible_id`` (the facility nearest on foot for most of the cell's
        residents).
        ``attrs["points_outside_cells"]`` counts demand points in no cell.
    """
    import geopandas as gpd

    cells = with_cell_id(cells)
    if not gpd.GeoSeries(demand.geometry).crs == cells.crs:
        raise InputError("cells and demand are in different CRSs; reproject the cells first")
    where = assign_cells(demand.geometry, cells)
    pts = coverage.points.copy()
    pts["_cell"] = where
    inside = pts[pts["_cell"] >= 0]
    groups = inside.groupby("_cell")
    extra = [c for c in ("flag", "community") if c in cells.columns]
    out = cells[["cell_id", *extra, "geometry"]].copy()
    pos = np.arange(len(cells))

    def per_cell(series: pd.Series, fill: float = 0.0) -> np.ndarray:
        return series.reindex(pos).fillna(fill).to_numpy()

    out["population"] = per_cell(groups["population"].sum())
    if "households" in inside:
        out["households"] = per_cell(groups["households"].sum())
    out["demand_points"] = per_cell(groups.size()).astype("int64")
    pop = inside["population"]
    for tier in coverage.tiers:
        name = tier.name
        cov = pop.where(inside[f"{name}_covered"], 0.0).groupby(inside["_cell"]).sum()
        circ = pop.where(inside[f"{name}_circle_covered"], 0.0).groupby(inside["_cell"]).sum()
        over_mask = inside[f"{name}_circle_covered"] & ~inside[f"{name}_covered"]
        over = pop.where(over_mask, 0.0).groupby(inside["_cell"]).sum()
        out[f"{name}_covered_residents"] = per_cell(cov)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = out[f"{name}_covered_residents"] / out["population"]
        out[f"{name}_share"] = share.where(out["population"] > 0)
        out[f"{name}_circle_covered_residents"] = per_cell(circ)
        out[f"{name}_overcounted_residents"] = per_cell(over)
        out[f"{name}_median_walk_m"] = per_cell(groups[f"{name}_walk_m"].median(), np.nan)
        out[f"{name}_responsible_id"] = _responsible(inside, name).reindex(pos).to_numpy()
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=cells.crs)
    out.attrs["points_outside_cells"] = int((where < 0).sum())
    out.attrs["residents_outside_cells"] = float(pts.loc[where < 0, "population"].sum())
    if out.attrs["points_outside_cells"]:
        log.warning(
            "%d demand points (%.0f residents) lie outside every cell and are not in any cell's "
            "figures",
            out.attrs["points_outside_cells"],
            out.attrs["residents_outside_cells"],
        )
    return out
