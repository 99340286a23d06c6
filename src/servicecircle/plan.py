"""One orchestration function for the CLI and notebooks: area → coverage → files and maps."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import __version__
from ._errors import InputError
from ._write import write_json, write_with
from .coverage import DEFAULT_SEARCH_FACTOR, Coverage, compute_coverage
from .network import DEFAULT_SNAP_LIMIT_M, WalkNetwork
from .tiers import DEFAULT_TIERS, Tier

if TYPE_CHECKING:
    import geopandas as gpd

    from .area import Area

log = logging.getLogger(__name__)

FACILITIES_FROM_OSM = "osm"
DEMO_FACILITIES = "demo"


def packaged_data(name: str) -> Path:
    """Path of a file in the project's ``data/`` folder (shipped as ``servicecircle/_data``)."""
    here = Path(__file__).resolve().parent
    for folder in (here / "_data", here.parents[1] / "data"):
        path = folder / name
        if path.exists():
            return path
    raise InputError(f"packaged data file {name!r} is missing; reinstall servicecircle")


def demo_facilities_path() -> Path:
    """The example facility file for the demo area (see ``data/README.md``)."""
    return packaged_data("demo_facilities.geojson")


@dataclass(frozen=True, eq=False)
class PlanResult:
    """What a run produced: the coverage, the summary written, and the files."""

    coverage: Coverage
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    demand: gpd.GeoDataFrame | None = None
    facilities: gpd.GeoDataFrame | None = None


def run_coverage(
    area: Area,
    *,
    facilities: str | Path | gpd.GeoDataFrame,
    demand: str | Path | gpd.GeoDataFrame | None = None,
    tiers: tuple[Tier, ...] | list[Tier] = DEFAULT_TIERS,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
    search_factor: float = DEFAULT_SEARCH_FACTOR,
    out_dir: str | Path | None = None,
    write_map: bool = True,
    lang: str = "zh",
    tiles: str | None = "osm",
    cells: str | Path | gpd.GeoDataFrame | None = None,
    write_service_areas: bool = False,
    service_area_buffer_m: float = 25.0,
    step: Callable[[str], None] | None = None,
) -> PlanResult:
    """Run coverage on an area and write the outputs.

    Parameters
    ----------
    area
        The planning area.
    facilities
        A facility file, a GeoDataFrame, ``"osm"`` (from the area's POIs by the tag preset) or
        ``"demo"`` (the example file for the demo area).
    demand
        A demand file or GeoDataFrame; default: residents estimated from the area's buildings.
    tiers, snap_limit_m, search_factor
        See :func:`~servicecircle.coverage.compute_coverage`.
    out_dir
        Folder for ``summary.json``, ``coverage.csv``, ``coverage.gpkg``, ``facilities.gpkg``
        and ``coverage_map.html``; nothing is written when ``None``.
    write_map, lang, tiles
        Whether to write the map, its label language and base tiles.
    cells
        Polygons (grid cells, communities…) to roll coverage up to: a vector file or a
        GeoDataFrame. Writes ``cells.gpkg`` and ``cells.csv``.
    write_service_areas, service_area_buffer_m
        Write ``service_areas.gpkg`` (layers ``service_areas`` per facility and tier, and
        ``service_area_union`` per tier), streets buffered by this half-width.
    step
        Called with the name of each step (for progress bars).
    """
    import geopandas as gpd

    from .demand import demand_from_buildings, read_demand
    from .facilities import facilities_from_pois, read_facilities

    def tick(name: str) -> None:
        log.info("step: %s", name)
        if step is not None:
            step(name)

    started = time.perf_counter()
    tick("network")
    network = WalkNetwork.from_area(area)
    tick("demand")
    demand_counts: dict[str, Any]
    if demand is None:
        demand_gdf = demand_from_buildings(area.buildings, landuse=area.landuse)
        demand_counts = {"source": "buildings", **demand_gdf.attrs.get("counts", {})}
        if len(demand_gdf) == 0:
            raise InputError(
                f"area {area.name}: no residential building found to estimate residents from; "
                "give a demand file with --demand"
            )
    elif isinstance(demand, gpd.GeoDataFrame):
        demand_gdf = demand.to_crs(area.crs)
        demand_counts = {"source": "GeoDataFrame", "features": len(demand_gdf)}
    else:
        demand_gdf = read_demand(demand, crs=area.crs)
        demand_counts = {"source": str(demand), **demand_gdf.attrs.get("counts", {})}
    tick("facilities")
    if isinstance(facilities, gpd.GeoDataFrame):
        fac_gdf = facilities.to_crs(area.crs)
        fac_source = "GeoDataFrame"
    elif str(facilities) == FACILITIES_FROM_OSM:
        fac_gdf = facilities_from_pois(area.pois)
        fac_source = "OSM tags (preset 'default')"
    elif str(facilities) == DEMO_FACILITIES:
        fac_gdf = read_facilities(demo_facilities_path(), crs=area.crs)
        fac_source = "demo facility file"
    else:
        fac_gdf = read_facilities(facilities, crs=area.crs)
        fac_source = str(facilities)
    if len(fac_gdf) == 0:
        raise InputError(
            f"no facility found ({fac_source}); give a facility file with --facilities FILE"
        )
    tick("coverage")
    cov = compute_coverage(
        network,
        demand_gdf,
        fac_gdf,
        tiers,
        snap_limit_m=snap_limit_m,
        search_factor=search_factor,
    )
    summary: dict[str, Any] = {
        "servicecircle": __version__,
        "area": {
            "name": area.name,
            "source": area.source,
            "crs": area.crs.to_string(),
            "walk_nodes": network.n_nodes,
            "walk_edges": network.n_edges,
            "read": area.report,
        },
        "demand": demand_counts,
        "facility_source": fac_source,
        **cov.summary(),
        "attribution": "Map data © OpenStreetMap contributors (ODbL)",
    }
    cell_table = None
    if cells is not None:
        from .rollup import read_cells, rollup, with_cell_id

        tick("cells")
        if isinstance(cells, gpd.GeoDataFrame):
            cell_gdf = with_cell_id(cells.to_crs(area.crs))
        else:
            cell_gdf = read_cells(cells, crs=area.crs)
        cell_table = rollup(cov, demand_gdf, cell_gdf)
        summary["cells"] = {
            "count": len(cell_table),
            "points_outside_cells": cell_table.attrs["points_outside_cells"],
            "residents_outside_cells": cell_table.attrs["residents_outside_cells"],
        }
    sa = None
    if write_service_areas:
        from .service_areas import service_areas

        tick("service areas")
        sa = service_areas(
            network, fac_gdf, cov.tiers, snap_limit_m=snap_limit_m, buffer_m=service_area_buffer_m
        )
        summary["service_areas"] = {
            row["tier"]: {"area_m2": row["area_m2"], "facilities": row["facilities"]}
            for _, row in sa[1].iterrows()
        }
    files: dict[str, Path] = {}
    if out_dir is not None:
        tick("write")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files["coverage.csv"] = write_coverage_csv(cov, out / "coverage.csv")
        points = gpd.GeoDataFrame(cov.points, geometry=demand_gdf.geometry.to_numpy(), crs=area.crs)
        files["coverage.gpkg"] = write_with(
            out / "coverage.gpkg",
            lambda tmp: points.to_file(tmp, driver="GPKG", layer="demand"),
        )
        fac_out = gpd.GeoDataFrame(
            cov.facilities.drop(columns=["name"]).assign(
                name=cov.facilities["name"].astype(object)
            ),
            geometry=fac_gdf.geometry.to_numpy(),
            crs=area.crs,
        )
        files["facilities.gpkg"] = write_with(
            out / "facilities.gpkg",
            lambda tmp: fac_out.to_file(tmp, driver="GPKG", layer="facilities"),
        )
        fac_table = cov.facilities.drop(columns=["geometry"], errors="ignore")
        files["facilities.csv"] = write_with(
            out / "facilities.csv", lambda tmp: fac_table.to_csv(tmp, index=False)
        )
        if cell_table is not None:
            ct = cell_table
            files["cells.gpkg"] = write_with(
                out / "cells.gpkg", lambda tmp: ct.to_file(tmp, driver="GPKG", layer="cells")
            )
            files["cells.csv"] = write_with(
                out / "cells.csv",
                lambda tmp: ct.drop(columns="geometry").to_csv(
                    tmp, index=False, float_format="%.4f"
                ),
            )
        if sa is not None:
            per, uni = sa

            def write_sa(tmp: Path) -> None:
                per.to_file(tmp, driver="GPKG", layer="service_areas")
                uni.to_file(tmp, driver="GPKG", layer="service_area_union", mode="a")

            files["service_areas.gpkg"] = write_with(out / "service_areas.gpkg", write_sa)
        if write_map:
            from .maps import coverage_map, save_map

            fmap = coverage_map(area, demand_gdf, cov, fac_gdf, lang=lang, tiles=tiles)
            files["coverage_map.html"] = save_map(fmap, out / "coverage_map.html")
        summary["seconds"] = round(time.perf_counter() - started, 3)
        summary["files"] = sorted([*files, "summary.json"])
        files["summary.json"] = write_json(out / "summary.json", summary)
    return PlanResult(cov, summary, files, demand_gdf, fac_gdf)


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


def write_coverage_csv(cov: Coverage, path: str | Path) -> Path:
    """Write ``coverage.csv`` (one row per demand point; empty walk when none in reach)."""
    table = coverage_table(cov)
    return write_with(path, lambda tmp: table.to_csv(tmp, index=False, na_rep=""))


def run_grid(
    area: Area,
    *,
    kind: str,
    size_m: float | None = None,
    h3_res: int | None = None,
    households: tuple[float, float] | None = None,
    communities: str | Path | gpd.GeoDataFrame | None = None,
    demand: str | Path | gpd.GeoDataFrame | None = None,
    out_dir: str | Path | None = None,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Build a grid over the area, with population and households per cell, and write it.

    Writes ``cells.gpkg`` (layer ``cells``: ``cell_id``, ``population``, ``households``,
    ``flag``, geometry) and ``grid_summary.json`` when ``out_dir`` is given.
    """
    import geopandas as gpd

    from .files import read_table
    from .grid import GovernanceParams, governance_grid, regular_grid

    demand_gdf = _demand_for(area, demand)
    if kind == "governance":
        lo, hi = households or (300.0, 500.0)
        comm = None
        if communities is not None:
            comm = (
                communities
                if isinstance(communities, gpd.GeoDataFrame)
                else read_table(communities, "community file")
            )
        cells = governance_grid(
            area.edges,
            area.boundary,
            demand_gdf,
            communities=comm,
            params=GovernanceParams(households_min=lo, households_max=hi),
        )
    else:
        cells = regular_grid(
            kind, area.boundary, crs=area.crs, size_m=size_m, h3_res=h3_res, demand=demand_gdf
        )
    hh = cells["households"].to_numpy(dtype=float)
    flagged = cells[cells["flag"].astype(str) != ""]
    summary: dict[str, Any] = {
        "area": area.name,
        "kind": kind,
        "size_m": size_m,
        "h3_res": h3_res,
        "count": len(cells),
        "households": {
            "total": float(hh.sum()),
            "min": float(hh.min()) if len(hh) else None,
            "median": float(np.median(hh)) if len(hh) else None,
            "max": float(hh.max()) if len(hh) else None,
        },
        "population": float(cells["population"].sum()),
        "demand_points": len(demand_gdf),
        "demand_points_outside_cells": int(cells.attrs.get("points_outside_cells", 0))
        + int(cells.attrs.get("points_outside_boundary", 0)),
        "flagged": [
            {"cell_id": r.cell_id, "households": round(float(r.households), 1), "reason": r.flag}
            for r in flagged.itertuples()
        ],
    }
    if kind == "governance":
        lo, hi = households or (300.0, 500.0)
        summary["household_range"] = [lo, hi]
        summary["blocks"] = cells.attrs.get("blocks")
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        cols = ["cell_id", "population", "households", "flag"]
        cols += [c for c in ("community", "blocks") if c in cells.columns]
        table = cells[[*cols, "geometry"]]
        write_with(out / "cells.gpkg", lambda tmp: table.to_file(tmp, driver="GPKG", layer="cells"))
        write_json(out / "grid_summary.json", summary)
    return cells, summary


def _demand_for(area: Area, demand: str | Path | gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    import geopandas as gpd

    from .demand import demand_from_buildings, read_demand

    if demand is None:
        return demand_from_buildings(area.buildings, landuse=area.landuse)
    if isinstance(demand, gpd.GeoDataFrame):
        return demand.to_crs(area.crs)
    return read_demand(demand, crs=area.crs)
