"""The coverage workflow: area → demand and facilities → walking coverage → tables and map."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InputError
from ..coverage import DEFAULT_SEARCH_FACTOR, Coverage, compute_coverage
from ..files import DEFAULT_FILES, FileOptions
from ..network import DEFAULT_FRAGMENTS, DEFAULT_SNAP_LIMIT_M, FragmentRule, WalkNetwork
from ..tiers import DEFAULT_TIERS, Tier
from .common import (
    OutDir,
    Step,
    area_summary,
    finish_summary,
    input_summary,
    output_for,
    resolve_demand,
    resolve_facilities,
    source_label,
    summary_head,
    ticker,
    with_segments,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from ..area import Area
    from ..segments import Segment


@dataclass(frozen=True, eq=False)
class PlanResult:
    """What a coverage run produced: the coverage, the summary written, and the files."""

    coverage: Coverage
    summary: dict[str, Any]
    files: list[str] = field(default_factory=list)
    demand: gpd.GeoDataFrame | None = None
    facilities: gpd.GeoDataFrame | None = None
    cells: gpd.GeoDataFrame | None = None
    service_areas: gpd.GeoDataFrame | None = None
    micro_grids: gpd.GeoDataFrame | None = None  # the cells' micro-grids, rolled up


def run_coverage(
    area: Area,
    *,
    facilities: str | Path | gpd.GeoDataFrame,
    demand: str | Path | gpd.GeoDataFrame | None = None,
    tiers: tuple[Tier, ...] | list[Tier] = DEFAULT_TIERS,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
    search_factor: float = DEFAULT_SEARCH_FACTOR,
    out_dir: OutDir = None,
    write_map: bool = True,
    lang: str = "zh",
    tiles: str | None = "osm",
    cells: str | Path | gpd.GeoDataFrame | None = None,
    write_service_areas: bool = False,
    service_area_buffer_m: float = 25.0,
    step: Step = None,
    network: WalkNetwork | None = None,
    fragments: FragmentRule = DEFAULT_FRAGMENTS,
    files: FileOptions = DEFAULT_FILES,
    segments: tuple[Segment, ...] | None = None,
    workers: str | Path | gpd.GeoDataFrame | None = None,
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
        Folder for the tables, ``results.xlsx``, the map and the report (or a staged
        :class:`~servicecircle.outputs.RunOutput`); nothing is written when ``None``.
    write_map, lang, tiles
        Whether to write the map and report, their label language and base tiles.
    cells
        Polygons (grid cells, communities…) to roll coverage up to (``cells.gpkg``/``.csv``).
    write_service_areas, service_area_buffer_m
        Write ``service_areas.gpkg`` (layers ``service_areas`` per facility and tier, and
        ``service_area_union`` per tier), streets buffered by this half-width.
    step, network
        Called with the name of each step (progress bars); the area's converted network.
    fragments
        Which small disconnected pieces of street points are linked past (see
        :class:`~servicecircle.network.FragmentRule`); ignored when ``network`` is given.
    files
        How the user's files are read: their coordinates (WGS84, GCJ-02, BD-09) and Excel sheet.
    segments, workers
        Demand segments counted at their own pace (default: the elderly and children, from the
        file's columns or the census shares; ``()`` for none), and worker points
        (``"buildings"`` or a file) for tiers and segments of workers.
    """
    started = time.perf_counter()
    tick = ticker(step, "coverage")
    with output_for(out_dir, lang=lang, coords=files.coords, command="coverage") as out:
        tick("network")
        network = network or WalkNetwork.from_area(area, fragments=fragments)
        tick("demand")
        segments = segments_for(tiers, segments, workers)
        demand_gdf = coverage_demand(area, demand, tiers, segments, workers, files)
        tick("facilities")
        fac_gdf = resolve_facilities(area, facilities, files=files)
        if len(fac_gdf) == 0:
            raise _no_facility(facilities)
        tick("coverage")
        cov = compute_coverage(
            network,
            demand_gdf,
            fac_gdf,
            tiers,
            snap_limit_m=snap_limit_m,
            search_factor=search_factor,
            segments=segments,
        )
        summary = summary_head(
            area=area_summary(area, network),
            demand=demand_gdf.attrs.get("counts", {}),
            facility_source=source_label(facilities, "none"),
            input=input_summary(files, demand=demand_gdf, facilities=fac_gdf),
            segments=demand_gdf.attrs.get("segments", {}),
            **cov.summary(),
        )
        summary["facilities"]["unsnapped_outside_boundary"] = _unused_outside(cov, fac_gdf, area)
        tables: tuple[gpd.GeoDataFrame | None, gpd.GeoDataFrame | None] = (None, None)
        if cells is not None:
            tick("cells")
            tables = _rolled_up(area, cov, demand_gdf, cells, summary)
        sa = None
        if write_service_areas:
            tick("service areas")
            sa = _service_areas(network, fac_gdf, cov, summary, snap_limit_m, service_area_buffer_m)
        tick("write")
        _write(
            out, area, demand_gdf, fac_gdf, cov, summary, tables, sa, write_map, lang, tiles,
            network,
        )  # fmt: skip
        finish_summary(out, summary, started)
    return PlanResult(
        cov,
        summary,
        out.files,
        demand_gdf,
        fac_gdf,
        tables[0],
        None if sa is None else sa[1],
        tables[1],
    )


def coverage_demand(
    area: Area,
    demand: str | Path | gpd.GeoDataFrame | None,
    tiers: tuple[Tier, ...] | list[Tier],
    segments: tuple[Segment, ...],
    workers: str | Path | gpd.GeoDataFrame | None,
    files: FileOptions,
) -> gpd.GeoDataFrame:
    """The run's demand with its segment counts (and worker points where a tier needs them)."""
    gdf = resolve_demand(area, demand, files=files)
    return with_segments(area, gdf, segments, workers=workers_for(tiers, workers), files=files)


def segments_for(
    tiers: tuple[Tier, ...] | list[Tier],
    segments: tuple[Segment, ...] | None,
    workers: object,
) -> tuple[Segment, ...]:
    """The segments of a run: the given ones (default elderly and children), plus workers when
    a tier is for workers or worker points are given."""
    from ..segments import SEGMENTS_BY_NAME, choose_segments

    chosen = choose_segments() if segments is None else tuple(segments)
    need = workers is not None or any(t.segment == "workers" for t in tiers)
    if need and "workers" not in {s.name for s in chosen}:
        chosen = (*chosen, SEGMENTS_BY_NAME["workers"])
    return chosen


def workers_for(tiers: tuple[Tier, ...] | list[Tier], workers: object) -> object:
    """Where worker points come from: as given, else the area's workplace buildings when a tier
    is for workers."""
    if workers is None and any(t.segment == "workers" for t in tiers):
        return "buildings"
    return workers


def _rolled_up(
    area: Area,
    cov: Coverage,
    demand: gpd.GeoDataFrame,
    cells: str | Path | gpd.GeoDataFrame,
    summary: dict[str, Any],
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """The cells rolled up, and their micro-grids when they have some (``None`` if not); their
    blocks added to ``summary``."""
    import geopandas as gpd

    from ..rollup import read_cells, read_micro_grids, rollup, with_cell_id

    if isinstance(cells, gpd.GeoDataFrame):
        cell_gdf = with_cell_id(cells.to_crs(area.crs))
        micro = cells.attrs.get("micro_grids")
        micro = None if micro is None else with_cell_id(micro.to_crs(area.crs))
    else:
        cell_gdf = read_cells(cells, crs=area.crs)
        micro = read_micro_grids(cells, crs=area.crs)
    table = rollup(cov, demand, cell_gdf)
    summary["cells"] = cells_summary(table)
    if micro is None:
        return table, None
    micro_table = rollup(cov, demand, micro)  # the micro-grids of governance grids as well
    summary["micro_grids"] = cells_summary(micro_table)
    return table, micro_table


def _write(
    out: Any,
    area: Area,
    demand: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    cov: Coverage,
    summary: dict[str, Any],
    cell_tables: tuple[gpd.GeoDataFrame | None, gpd.GeoDataFrame | None],
    sa: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame] | None,
    write_map: bool,
    lang: str,
    tiles: str | None,
    network: WalkNetwork | None = None,
) -> None:
    """The tables, the workbook and the map of a coverage run (its streets from ``network``)."""
    from ..outputs import write_cells, write_coverage, write_service_areas_file, write_workbook

    cells, micro = cell_tables
    with_map = write_map and out.active
    if with_map:  # the map (the longest writer), the workbook and the report in one child,
        from ..report import report_html  # while the tables are written here

        with out.in_one_child():
            _write_map(
                out, area, demand, cov, facilities, cell_tables, sa,
                lang=lang, tiles=tiles, network=network,
            )  # fmt: skip
            write_workbook(out, summary, coverage=cov, cells=cells, tiers=cov.tiers)
            out.text_from("report.html", lambda: report_html(summary, cov, cells=cells, lang=lang))
    write_coverage(out, cov, demand, facilities)
    if cells is not None:
        write_cells(out, cells, micro)
    if sa is not None:
        write_service_areas_file(out, *sa)
    if not with_map:
        write_workbook(out, summary, coverage=cov, cells=cells, tiers=cov.tiers)


def _service_areas(
    network: WalkNetwork,
    facilities: gpd.GeoDataFrame,
    cov: Coverage,
    summary: dict[str, Any],
    snap_limit_m: float,
    buffer_m: float,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The tiers' service areas (streets and polygons), their figures added to ``summary``."""
    from ..service_areas import service_areas

    sa = service_areas(network, facilities, cov.tiers, snap_limit_m=snap_limit_m, buffer_m=buffer_m)
    summary["service_areas"] = service_areas_summary(sa[1])
    return sa


def _no_facility(facilities: object) -> InputError:
    """The error for a run without facilities: an empty file says so."""
    if isinstance(facilities, str | Path) and Path(facilities).is_file():
        return InputError(
            f"facility file {facilities} has no rows; add one row per centre or station"
        )
    return InputError(
        f"no facility found ({source_label(facilities, 'none')}); give a facility file with "
        "--facilities FILE"
    )


def _write_map(
    out: Any,
    area: Area,
    demand: gpd.GeoDataFrame,
    cov: Coverage,
    facilities: gpd.GeoDataFrame,
    cell_tables: tuple[gpd.GeoDataFrame | None, gpd.GeoDataFrame | None],
    sa: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame] | None,
    *,
    lang: str,
    tiles: str | None,
    network: WalkNetwork | None = None,
) -> None:
    from ..maps import coverage_map, map_html

    def page() -> str:
        return map_html(
            coverage_map(
                area,
                demand,
                cov,
                facilities,
                lang=lang,
                tiles=tiles,
                cells=cell_tables[0],
                service_areas=None if sa is None else sa[1],
                micro_grids=cell_tables[1],
                network=network,
            )
        )

    out.text_from("coverage_map.html", page)


def service_areas_summary(union: gpd.GeoDataFrame) -> dict[str, Any]:
    """The ``service_areas`` block of a summary: area and facilities per tier."""
    return {
        row["tier"]: {"area_m2": row["area_m2"], "facilities": row["facilities"]}
        for _, row in union.iterrows()
    }


def cells_summary(cell_table: gpd.GeoDataFrame) -> dict[str, Any]:
    """The ``cells`` block of a summary."""
    return {
        "count": len(cell_table),
        "points_outside_cells": cell_table.attrs["points_outside_cells"],
        "residents_outside_cells": cell_table.attrs["residents_outside_cells"],
    }


def _unused_outside(cov: Any, facilities: gpd.GeoDataFrame, area: Area) -> int:
    """How many of the facilities too far from every street lie outside the area's boundary
    (the area's streets end at it: those are not misplaced, only outside)."""
    import shapely

    unused = ~cov.facilities["snapped"].to_numpy(dtype=bool)
    if not unused.any():
        return 0
    points = facilities.geometry.reindex(cov.facilities.index).to_numpy()
    return int((unused & ~shapely.within(points, area.boundary)).sum())
