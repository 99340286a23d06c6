"""The life-circle audit workflow (生活圈体检): area → demand and the standard's facility types
→ one limited Dijkstra per type → per resident which required types are missing, per cell
where that is worst → tables, map and report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import InputError
from ..files import DEFAULT_FILES, FileOptions
from ..network import DEFAULT_FRAGMENTS, DEFAULT_SNAP_LIMIT_M, FragmentRule, WalkNetwork
from .common import (
    OutDir,
    Step,
    area_summary,
    finish_summary,
    input_summary,
    output_for,
    resolve_demand,
    summary_head,
    ticker,
    with_segments,
)

if TYPE_CHECKING:
    import geopandas as gpd

    from ..area import Area
    from ..audit import AuditResult
    from ..segments import Segment
    from ..standard import LifeCircleStandard

POIS_FROM_OSM = "osm"


@dataclass(frozen=True, eq=False)
class AuditRun:
    """What an audit run produced."""

    result: AuditResult
    table: pd.DataFrame
    summary: dict[str, Any]
    pois: gpd.GeoDataFrame
    demand: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame | None = None
    files: list[str] = field(default_factory=list)


def run_audit(
    area: Area,
    *,
    pois: str | Path | gpd.GeoDataFrame = POIS_FROM_OSM,
    demand: str | Path | gpd.GeoDataFrame | None = None,
    standard: str | Path | LifeCircleStandard = "gb50180",
    cells: str | Path | gpd.GeoDataFrame | None = None,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
    fragments: FragmentRule = DEFAULT_FRAGMENTS,
    out_dir: OutDir = None,
    write_map: bool = True,
    lang: str = "zh",
    tiles: str | None = "osm",
    network: WalkNetwork | None = None,
    step: Step = None,
    files: FileOptions = DEFAULT_FILES,
    segments: tuple[Segment, ...] | None = None,
) -> AuditRun:
    """Audit every resident against every facility type of a life-circle standard.

    Parameters
    ----------
    area
        The planning area.
    pois
        ``"osm"`` (the area's POIs found by the standard's tag rules and name patterns), a
        file with ``id``, ``type`` (a type id or its Chinese name) and optional ``name``, or a
        frame from :func:`~servicecircle.standard.match_pois`.
    demand
        A demand file or frame; default: residents estimated from the area's buildings.
    standard
        ``"gb50180"`` (the packaged GB 50180-2018 / TD/T 1062-2021 preset) or a user's TOML file
        of the same shape (a city's local rules).
    cells
        Polygons (a grid, communities) to roll the audit up to: per cell and type, the share of
        residents within reach.
    out_dir
        Folder for ``audit.csv``, ``audit_summary.json``, ``audit_cells.csv``/``.gpkg``,
        ``audit_map.html`` and ``audit_report.html``; nothing is written when ``None``.
    """
    from ..audit import audit
    from ..standard import LifeCircleStandard, load_standard

    started = time.perf_counter()
    tick = ticker(step, "audit")
    std = standard if isinstance(standard, LifeCircleStandard) else load_standard(standard)
    with output_for(out_dir, lang=lang, coords=files.coords, command="audit") as out:
        tick("network")
        net = network or WalkNetwork.from_area(area, fragments=fragments)
        tick("demand")
        demand_gdf = resolve_demand(area, demand, files=files)
        demand_gdf = with_segments(area, demand_gdf, segments_for_audit(std, segments))
        tick("pois")
        poi_gdf = resolve_pois(area, pois, std, files=files)
        tick("audit")
        result = audit(net, demand_gdf, poi_gdf, std, snap_limit_m=snap_limit_m)
        pop = demand_gdf["population"].to_numpy(dtype=float)
        table = audit_table(demand_gdf, result)
        audited = result.summary(pop)
        segment_figures(audited, result, demand_gdf, std, table)
        audited["standard"] = {"name": std.name, "source": std.source, "types": len(std.types)}
        summary = summary_head(
            area=area_summary(area, net),
            demand=demand_gdf.attrs.get("counts", {}),
            poi_source=_source(pois),
            input=input_summary(files, demand=demand_gdf, pois=poi_gdf),
            **audited,
        )
        cell_table = None
        if cells is not None:
            tick("cells")
            cell_table = audit_cells(area, demand_gdf, table, std, cells)
            summary["cells"] = {"count": len(cell_table), "worst": worst_cells(cell_table, std)}
        tick("write")
        _write(out, area, demand_gdf, poi_gdf, table, cell_table, summary, std, result,
               write_map=write_map, lang=lang, tiles=tiles)  # fmt: skip
        finish_summary(out, summary, started, name="audit_summary.json")
    return AuditRun(result, table, summary, poi_gdf, demand_gdf, cell_table, out.files)


def segments_for_audit(
    std: LifeCircleStandard, segments: tuple[Segment, ...] | None
) -> tuple[Segment, ...]:
    """The segments the standard's types serve (children, elderly), at their own pace."""
    from ..segments import choose_segments

    wanted = sorted({t.segment for t in std.types if t.segment != "all"})
    chosen = choose_segments(wanted) if segments is None else segments
    return tuple(s for s in chosen if s.name in wanted)


def segment_figures(
    summary: dict[str, Any],
    result: AuditResult,
    demand: gpd.GeoDataFrame,
    std: LifeCircleStandard,
    table: pd.DataFrame,
) -> None:
    """Types that serve a segment (幼儿园 → children, 日间照料 → elderly) count that segment at
    its own pace: within the type's minutes at the segment's speed. Adds the figures to the
    summary's types and ``<type>_<segment>_within`` columns to the table."""
    about = demand.attrs.get("segments", {})
    for j, t in enumerate(std.types):
        if t.segment not in about or t.segment not in demand.columns:
            continue
        speed = float(about[t.segment]["speed_m_per_s"])
        reach = t.max_walk_m * speed / 1.0  # the type's minutes at 1.0 m/s, walked at `speed`
        counts = demand[t.segment].to_numpy(dtype=float)
        within = result.walk_m[:, j] <= reach + 1e-6
        people = float(counts.sum())
        summary["types"][t.id].update(
            segment_speed_m_per_s=speed,
            segment_walk_m=round(reach, 1),
            segment_people=people,
            segment_within=float(counts[within].sum()),
            segment_share=float(counts[within].sum()) / people if people > 0 else None,
        )
        table[f"{t.id}_{t.segment}_within"] = np.where(within, "true", "false")


def _source(pois: object) -> str:
    if isinstance(pois, str) and pois == POIS_FROM_OSM:
        return "OSM tags and names (the standard's rules)"
    return "GeoDataFrame" if type(pois).__name__ == "GeoDataFrame" else str(pois)


def resolve_pois(
    area: Area,
    pois: str | Path | gpd.GeoDataFrame,
    std: LifeCircleStandard,
    *,
    files: FileOptions = DEFAULT_FILES,
) -> gpd.GeoDataFrame:
    """POIs by type: from the area's OSM POIs by the standard's rules, a file, or a frame."""
    import geopandas as gpd

    from ..standard import match_pois, read_pois

    if isinstance(pois, gpd.GeoDataFrame):
        return pois.to_crs(area.crs)
    if str(pois) == POIS_FROM_OSM:
        if len(area.pois) == 0:
            raise InputError(
                f"area {area.name}: holds no POIs to find facility types in; give a POI file "
                "with --pois FILE (id, type, optional name)"
            )
        return match_pois(area.pois, std)
    return read_pois(pois, crs=area.crs, standard=std, files=files)


def audit_table(demand: gpd.GeoDataFrame, result: AuditResult) -> pd.DataFrame:
    """``audit.csv``: ``demand_id``, ``population``, then per type ``<type>_walk_m`` (empty
    when none within twice its radius), ``<type>_within``, ``<type>_facility_id``, then
    ``types_missing``, ``missing_<level>``, ``missing_ids``."""
    table = result.table().reset_index(drop=True)
    head = pd.DataFrame(
        {
            "demand_id": demand["demand_id"].astype(str).to_numpy(),
            "population": demand["population"].to_numpy(dtype=float).round(2),
        }
    )
    for col in table.columns:
        if col.endswith("_walk_m"):
            table[col] = table[col].round(1)
        elif col.endswith("_within") or col == "snapped":
            table[col] = np.where(table[col].to_numpy(dtype=bool), "true", "false")
    return pd.concat([head, table], axis=1)


def audit_cells(
    area: Area,
    demand: gpd.GeoDataFrame,
    table: pd.DataFrame,
    std: LifeCircleStandard,
    cells: str | Path | gpd.GeoDataFrame,
) -> gpd.GeoDataFrame:
    """Per cell: residents, and per type the share of them with the type within reach; the
    mean number of basic requirements missing."""
    import geopandas as gpd

    from ..geometry import assign_cells
    from ..rollup import read_cells, with_cell_id

    if isinstance(cells, gpd.GeoDataFrame):
        cell_gdf = with_cell_id(cells.to_crs(area.crs))
    else:
        cell_gdf = read_cells(cells, crs=area.crs)
    where = assign_cells(demand.geometry, cell_gdf)
    inside = where >= 0
    pop = demand["population"].to_numpy(dtype=float)
    n = len(cell_gdf)
    total = np.bincount(where[inside], weights=pop[inside], minlength=n)
    out = cell_gdf[["cell_id", "geometry"]].copy()
    out["population"] = total
    with np.errstate(invalid="ignore", divide="ignore"):
        for t in std.types:
            ok = table[f"{t.id}_within"].to_numpy() == "true"
            got = np.bincount(where[inside], weights=(pop * ok)[inside], minlength=n)
            out[f"{t.id}_share"] = np.where(total > 0, got / total, np.nan)
        miss = table["types_missing"].to_numpy(dtype=float)
        weighted = np.bincount(where[inside], weights=(pop * miss)[inside], minlength=n)
        out["types_missing_mean"] = np.where(total > 0, weighted / total, np.nan)
    out.attrs["points_outside_cells"] = int((~inside).sum())
    return gpd.GeoDataFrame(out, geometry="geometry", crs=cell_gdf.crs)


def worst_cells(
    cells: gpd.GeoDataFrame, std: LifeCircleStandard, k: int = 10
) -> list[dict[str, Any]]:
    """The ``k`` cells with residents that miss the most basic types, and what they lack (types
    within reach of fewer than half their residents)."""
    have = cells[cells["population"] > 0].sort_values(
        ["types_missing_mean", "cell_id"], ascending=[False, True]
    )
    out = []
    for _, row in have.head(k).iterrows():
        lacks = [t.id for t in std.basic_types() if not row[f"{t.id}_share"] >= 0.5]
        out.append(
            {
                "cell_id": str(row["cell_id"]),
                "residents": round(float(row["population"]), 1),
                "types_missing_mean": round(float(row["types_missing_mean"]), 2),
                "lacks": lacks,
            }
        )
    return out


def _write(
    out: Any,
    area: Area,
    demand: gpd.GeoDataFrame,
    pois: gpd.GeoDataFrame,
    table: pd.DataFrame,
    cells: gpd.GeoDataFrame | None,
    summary: dict[str, Any],
    std: LifeCircleStandard,
    result: AuditResult,
    *,
    write_map: bool,
    lang: str,
    tiles: str | None,
) -> None:
    if not out.active:
        return
    out.csv("audit.csv", table)
    if cells is not None:
        out.csv("audit_cells.csv", cells.drop(columns="geometry"), float_format="%.4f")
        out.gpkg("audit_cells.gpkg", {"audit_cells": cells})
    if write_map:
        from ..audit_page import audit_map

        out.text(
            "audit_map.html",
            audit_map(area, demand, pois, table, std, result, lang=lang, tiles=tiles),
        )
    from ..report import audit_report_html

    out.text("audit_report.html", audit_report_html(summary, std, cells, lang=lang))
