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


def read_micro_grids(path: str | Path, *, crs: Any) -> gpd.GeoDataFrame | None:
    """The ``micro_grids`` layer (微网格) of a ``cells.gpkg`` written by ``servicecircle grid
    --kind governance``, in the area's CRS; ``None`` when the file has no such layer."""
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        return None
    import pyogrio

    if "micro_grids" not in {str(name) for name in pyogrio.list_layers(path)[:, 0]}:
        return None
    micro = read_table(path, "cell file", to_crs=crs, layer="micro_grids")
    return with_cell_id(micro, what=f"cell file {path}, layer micro_grids")


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
        Polygons in the same CRS, with ``cell_id`` (see :func:`with_cell_id`). A cell may
        hold a share of one demand point instead of whole points: with ``demand_id`` and
        ``share`` columns (as the micro-grids of a building divided by unit and floor have,
        see :func:`~servicecircle.governance.governance_hierarchy`), the figures of the demand
        point with that ``demand_id`` are divided among its cells by share, wherever its point
        lies; such a point counts as a demand point in each of its cells.

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
    pts = _divided(pts, demand, cells, extra=[s.name for s in coverage.segments])
    outside = pts["_cell"].to_numpy() < 0
    inside = pts[~outside]
    groups = inside.groupby("_cell")
    extra = [c for c in ("flag", "community", "grid_id", "level") if c in cells.columns]
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
        for seg in coverage.segments:
            flag = f"{name}_{seg.name}_covered"
            if flag not in inside or seg.name not in inside:
                continue
            people = inside[seg.name].astype(float)
            total = per_cell(people.groupby(inside["_cell"]).sum())
            got = per_cell(people.where(inside[flag], 0.0).groupby(inside["_cell"]).sum())
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"{name}_{seg.name}_share"] = np.where(total > 0, got / total, np.nan)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=cells.crs)
    out.attrs["points_outside_cells"] = int(outside.sum())
    out.attrs["residents_outside_cells"] = float(pts.loc[outside, "population"].sum())
    if out.attrs["points_outside_cells"]:
        log.warning(
            "%d demand points (%.0f residents) lie outside every cell and are not in any cell's "
            "figures",
            out.attrs["points_outside_cells"],
            out.attrs["residents_outside_cells"],
        )
    return out


def _divided(
    pts: pd.DataFrame,
    demand: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    *,
    extra: list[str] | None = None,
) -> pd.DataFrame:
    """Demand points that cells hold in shares (``demand_id`` + ``share`` columns): one row
    per share, with population, households and the ``extra`` counts (segments) multiplied by
    it."""
    if not {"demand_id", "share"} <= set(cells.columns) or "demand_id" not in demand.columns:
        return pts
    ids = cells["demand_id"].astype("string")
    share = pd.to_numeric(cells["share"], errors="coerce")
    parts = pd.DataFrame({"_did": ids, "_share": share, "_cell": np.arange(len(cells))})
    parts = parts[parts["_did"].notna() & (parts["_did"] != "") & parts["_share"].notna()]
    if len(parts) == 0:
        return pts
    sums = parts.groupby("_did")["_share"].sum()
    bad = sums[(sums - 1.0).abs() > 1e-6]
    if len(bad):
        raise InputError(
            f"cells: the shares of demand point {bad.index[0]!r} add up to {bad.iloc[0]:.6g}, "
            "not 1; give every part of a divided building in the same cell layer"
        )
    dem_ids = pd.Series(demand["demand_id"].astype("string").to_numpy(), index=pts.index)
    divided = dem_ids.isin(parts["_did"]).to_numpy()
    if not divided.any():
        return pts
    whole = pts[~divided]
    split = pts[divided].drop(columns="_cell").assign(_did=dem_ids[divided].to_numpy())
    split = split.assign(_row=split.index).reset_index(drop=True)
    split = split.merge(parts, on="_did", how="inner")
    for col in ("population", "households", *(extra or [])):
        if col in split:
            split[col] = split[col] * split["_share"]
    split = split.set_index("_row")
    split.index.name = pts.index.name
    return pd.concat([whole, split[whole.columns]])
