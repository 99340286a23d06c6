"""The scenario workflow: a whole plan from one TOML file — area, demand, grid, coverage,
siting, one map with every layer and the report — staged and moved into place only when every
step has succeeded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import FileOptions
from ..network import DEFAULT_SNAP_LIMIT_M, FragmentRule, WalkNetwork
from ..outputs import RunOutput
from .common import Step, finish_summary, resolve_demand, ticker
from .coverage import PlanResult, run_coverage
from .grid import run_grid
from .propose import SitingResult, run_propose, run_two_level

if TYPE_CHECKING:
    import geopandas as gpd

    from ..area import Area
    from ..scenario import Scenario

SITING_SUMMARY_KEYS = (
    "model",
    "method",
    "proposals",
    "covered_before",
    "covered_after",
    "optimal",
    "gap",
)


def run_scenario(
    scenario: str | Path | Scenario,
    *,
    out_dir: str | Path | None = None,
    step: Step = None,
    cache: Any = None,
) -> dict[str, Any]:
    """Run a whole plan from a scenario file (see :mod:`servicecircle.scenario`).

    Everything is validated first; outputs are staged and moved into the output folder only
    when every step has succeeded, so a failed run leaves the folder as it was. Writes the
    coverage tables, ``cells.gpkg`` and ``grid_summary.json`` (with a grid),
    ``service_areas.gpkg`` (when asked), the siting outputs (with ``[siting]``), one
    ``coverage_map.html`` with every layer, and ``report.html``.
    """
    from ..area import load_area
    from ..scenario import Scenario, load_scenario

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    opts = sc.output
    lang, tiles = opts.get("lang", "zh"), opts.get("tiles", "osm")
    snap = float(opts.get("snap_limit_m", DEFAULT_SNAP_LIMIT_M))
    tick = ticker(step, f"scenario {sc.name}")
    started = time.perf_counter()
    files = FileOptions(coords=sc.input.get("coords", "wgs84"), sheet=sc.input.get("sheet"))
    target = out_dir if out_dir is not None else sc.output["dir"]
    with RunOutput(target, lang=lang, coords=files.coords, command="run") as out:
        tick("area")
        area = load_area(
            sc.area["source"],
            boundary=sc.area.get("boundary"),
            name=sc.area.get("name"),
            cache=cache,
            coords=files.coords,
        )
        network = WalkNetwork.from_area(area, fragments=_fragments(sc))
        tick("demand")
        demand = _demand(area, sc, files)
        cells = None
        if sc.grid is not None:
            tick("grid")
            g = sc.grid
            cells, _ = run_grid(
                area,
                kind=g["kind"],
                size_m=g.get("size_m"),
                h3_res=g.get("h3_res"),
                households=tuple(g["households"]) if "households" in g else None,
                communities=g.get("communities"),
                demand=demand,
                out_dir=out,
            )
        tick("coverage")
        result = run_coverage(
            area,
            facilities=sc.facilities["source"],
            demand=demand,
            tiers=sc.tiers,
            snap_limit_m=snap,
            out_dir=out,
            write_map=False,
            cells=cells,
            write_service_areas=bool(opts.get("service_areas", False)),
            network=network,
            files=files,
            segments=sc.segments,
            workers=sc.workers,
        )
        summary = dict(result.summary)
        summary["scenario"] = {"name": sc.name, "file": str(sc.path)}
        siting = None
        if sc.siting is not None:
            tick("siting")
            siting = _siting(area, network, sc, result, demand, out, snap, files)
            summary["siting"] = {k: siting.report.get(k) for k in SITING_SUMMARY_KEYS}
        if sc.audit is not None:
            tick("audit")
            summary["audit"] = _audit(area, network, sc, demand, cells, out, snap, files)
        _pages(
            out, area, demand, result, summary, siting, sc, tick,
            lang=lang, tiles=tiles, network=network,
        )  # fmt: skip
        from ..outputs import write_workbook

        write_workbook(
            out,
            summary,
            coverage=result.coverage,
            cells=result.cells,
            proposals=None if siting is None else siting.proposals,
            tiers=sc.tiers,
        )
        finish_summary(out, summary, started)
    summary["out_dir"] = str(out.out_dir)
    return summary


def _fragments(sc: Scenario) -> FragmentRule:
    base = FragmentRule()
    a = sc.area
    return FragmentRule(
        max_nodes=int(a.get("fragment_max_nodes", base.max_nodes)),
        max_m=float(a.get("fragment_max_m", base.max_m)),
        keep=bool(a.get("keep_fragments", base.keep)),
    )


def _demand(area: Area, sc: Scenario, files: FileOptions) -> gpd.GeoDataFrame:
    from ..demand import BuildingPopulation

    source = sc.demand.get("source", "buildings")
    if source != "buildings":
        return resolve_demand(area, source, files=files)
    base = BuildingPopulation()
    params = BuildingPopulation(
        floor_area_per_resident_m2=float(
            sc.demand.get("floor_area_per_resident_m2", base.floor_area_per_resident_m2)
        ),
        default_levels=float(sc.demand.get("default_levels", base.default_levels)),
        household_size=float(sc.demand.get("household_size", base.household_size)),
    )
    return resolve_demand(area, None, params=params)


def _siting(
    area: Area,
    network: WalkNetwork,
    sc: Scenario,
    result: PlanResult,
    demand: gpd.GeoDataFrame,
    out: RunOutput,
    snap: float,
    files: FileOptions,
) -> SitingResult:
    s = sc.siting or {}
    tier = next(t for t in sc.tiers if t.name == s["tier"])
    common: dict[str, Any] = {
        "facilities": result.facilities,
        "demand": demand,
        "candidates": s.get("candidates"),
        "method": s.get("method", "exact"),
        "spacing_m": float(s.get("spacing_m", 100.0)),
        "exclusion_m": float(s.get("exclusion_m", 50.0)),
        "time_limit_s": float(s.get("time_limit_s", 60.0)),
        "snap_limit_m": snap,
        "network": network,
        "out_dir": out,
        "write_map": False,
        "files": files,
        "segment": s.get("segment"),
        "weights": s.get("weights"),
        "whatif": bool(sc.output.get("whatif", False)),
        "whatif_candidates": int(sc.output.get("whatif_candidates", 200)),
        "whatif_tiers": sc.tiers,
        "lang": sc.output.get("lang", "zh"),
        "tiles": sc.output.get("tiles", "osm"),
    }
    if "centres" in s:
        centre_tier = next((t for t in sc.tiers if t.kinds == ("centre",)), None)
        return run_two_level(
            area,
            centres_new=int(s["centres"]),
            stations_new=s.get("new"),
            stations_goal=s.get("goal"),
            centre_tier=centre_tier,
            station_tier=tier,
            **common,
        )
    return run_propose(
        area, tier=tier, new=s.get("new"), goal=s.get("goal"), capacity=s.get("capacity"), **common
    )


def _audit(
    area: Area,
    network: WalkNetwork,
    sc: Scenario,
    demand: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame | None,
    out: RunOutput,
    snap: float,
    files: FileOptions,
) -> dict[str, Any]:
    """The life-circle audit of the scenario's residents (on its grid when it has one); its
    own files, and the figures per level for the run's summary."""
    from .audit import run_audit

    a = sc.audit or {}
    run = run_audit(
        area,
        pois=a.get("pois", "osm"),
        demand=demand,
        standard=a.get("standard", "gb50180"),
        cells=cells,
        snap_limit_m=snap,
        network=network,
        out_dir=out,
        write_map=bool(a.get("map", True)),
        lang=out.lang,
        tiles=sc.output.get("tiles", "osm"),
        files=files,
    )
    return {
        "levels": {k: v["share_all_basic"] for k, v in run.summary["levels"].items()},
        "absent_types": run.summary["absent_types"],
    }


def _pages(
    out: RunOutput,
    area: Area,
    demand: gpd.GeoDataFrame,
    result: PlanResult,
    summary: dict[str, Any],
    siting: SitingResult | None,
    sc: Scenario,
    tick: Any,
    *,
    lang: str,
    tiles: str | None,
    network: WalkNetwork | None = None,
) -> None:
    """The map with every layer (the streets of ``network``) and the report."""
    proposals = None if siting is None else siting.proposals
    if sc.output.get("map", True):
        from ..maps import coverage_map, map_html

        tick("map")
        page = coverage_map(
            area,
            demand,
            result.coverage,
            result.facilities,
            lang=lang,
            tiles=tiles,
            proposals=proposals,
            cells=result.cells,
            service_areas=result.service_areas,
            micro_grids=result.micro_grids,  # rolled up once, by run_coverage
            network=network,
        )
        out.text("coverage_map.html", map_html(page))
    if sc.output.get("report", True):
        from ..report import report_html

        tick("report")
        out.text(
            "report.html",
            report_html(
                summary,
                result.coverage,
                cells=result.cells,
                siting=None if siting is None else siting.report,
                proposals=proposals,
                lang=lang,
            ),
        )
