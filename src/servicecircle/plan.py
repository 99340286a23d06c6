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
    cells: gpd.GeoDataFrame | None = None
    service_areas: gpd.GeoDataFrame | None = None


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
    network: WalkNetwork | None = None,
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

    def tick(name: str) -> None:
        log.info("step: %s", name)
        if step is not None:
            step(name)

    started = time.perf_counter()
    tick("network")
    network = network or WalkNetwork.from_area(area)
    tick("demand")
    demand_gdf = _demand_for(area, demand)
    demand_counts = {
        "source": _source_label(demand, "buildings"),
        **demand_gdf.attrs.get("counts", {}),
    }
    if demand is None and len(demand_gdf) == 0:
        raise InputError(
            f"area {area.name}: no residential building found to estimate residents from; "
            "give a demand file with --demand"
        )
    tick("facilities")
    fac_gdf = _facilities_for(area, facilities)
    fac_source = _source_label(facilities, "none")
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
    return PlanResult(
        cov, summary, files, demand_gdf, fac_gdf, cell_table, None if sa is None else sa[1]
    )


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


def _source_label(source: object, default: str) -> str:
    """How a demand or facility source is named in summaries."""
    if source is None:
        return default
    if type(source).__name__ == "GeoDataFrame":
        return "GeoDataFrame"
    return {
        FACILITIES_FROM_OSM: "OSM tags (preset 'default')",
        DEMO_FACILITIES: "demo facility file",
    }.get(str(source), str(source))


def _demand_for(area: Area, demand: str | Path | gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """Demand from a frame, a file, or (None) the area's residential buildings."""
    import geopandas as gpd

    from .demand import demand_from_buildings, read_demand

    if demand is None:
        return demand_from_buildings(area.buildings, landuse=area.landuse)
    if isinstance(demand, gpd.GeoDataFrame):
        return demand.to_crs(area.crs)
    return read_demand(demand, crs=area.crs)


def tier_by_name(text: str) -> Tier:
    """A tier from a preset name (``station_5min``) or ``NAME=METRES[:KIND,KIND]``."""
    from .tiers import PRESETS, parse_tier

    if "=" in text:
        return parse_tier(text)
    for tiers in PRESETS.values():
        for t in tiers:
            if t.name == text:
                return t
    names = sorted({t.name for tiers in PRESETS.values() for t in tiers})
    raise InputError(
        f"unknown tier {text!r}; use one of {', '.join(names)} or NAME=METRES[:KIND,KIND]"
    )


def run_propose(
    area: Area,
    *,
    tier: Tier,
    new: int | None = None,
    goal: float | None = None,
    facilities: str | Path | gpd.GeoDataFrame | None = None,
    demand: str | Path | gpd.GeoDataFrame | None = None,
    candidates: str | Path | gpd.GeoDataFrame | None = None,
    spacing_m: float = 100.0,
    exclusion_m: float = 50.0,
    method: str = "exact",
    capacity: float | None = None,
    time_limit_s: float = 60.0,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
    out_dir: str | Path | None = None,
    write_map: bool = True,
    lang: str = "zh",
    tiles: str | None = "osm",
    network: WalkNetwork | None = None,
) -> dict[str, Any]:
    """Propose new facilities for one tier: ``new`` sites that cover the most residents
    (MCLP), or the fewest sites that reach ``goal`` (LSCP); optionally with a capacity.

    Existing facilities stay where they are and keep what they cover. Candidates: a file, or
    by default points along the walk network every ``spacing_m`` plus OSM features that can
    host a station; those within ``exclusion_m`` of an existing facility or outside the
    boundary are dropped (and counted).

    Returns the ``siting.json`` content; writes ``proposals.geojson``, ``proposals.gpkg``,
    ``siting.json`` and ``proposals_map.html`` when ``out_dir`` is given.
    """
    import geopandas as gpd
    import pandas as pd

    from .candidates import (
        candidates_along_network,
        candidates_from_features,
        exclude,
        read_candidates,
    )
    from .coverage import nearest_facility, validate_facilities
    from .siting import (
        coverage_matrix,
        reduce_problem,
        solve_capacitated,
        solve_max_cover,
        solve_set_cover,
    )

    if (new is None) == (goal is None):
        raise InputError("give either --new K (how many sites) or --goal SHARE (a coverage goal)")
    if new is not None and new <= 0:
        raise InputError(f"--new must be at least 1; got {new}")
    if goal is not None and not 0 < goal <= 1:
        raise InputError(f"--goal must be a share in (0, 1], e.g. 0.85; got {goal}")
    if capacity is not None and goal is not None:
        raise InputError("--capacity works with --new K; a goal with capacity is not supported")
    net = network or WalkNetwork.from_area(area)
    demand_gdf = _demand_for(area, demand)
    if len(demand_gdf) == 0 or float(demand_gdf["population"].sum()) <= 0:
        raise InputError("no residents to cover; give a demand file with --demand")
    # existing facilities of this tier
    fac = _facilities_for(area, facilities)
    if len(fac):
        fac = validate_facilities(fac)
    tier_fac = fac[fac["kind"].isin(tier.kinds)] if len(fac) else fac
    # candidates
    if candidates is None or str(candidates) in ("default", "network", "osm"):
        parts = []
        if candidates is None or str(candidates) in ("default", "network"):
            parts.append(candidates_along_network(net, spacing_m=spacing_m))
        if candidates is None or str(candidates) in ("default", "osm"):
            feats = pd.concat([area.buildings, area.pois], ignore_index=True)
            if len(feats):
                parts.append(candidates_from_features(gpd.GeoDataFrame(feats, crs=area.crs)))
        cand = pd.concat(parts, ignore_index=True)
        cand = gpd.GeoDataFrame(cand, geometry="geometry", crs=area.crs)
        cand = cand.drop_duplicates("candidate_id").reset_index(drop=True)
    elif isinstance(candidates, gpd.GeoDataFrame):
        cand = candidates.to_crs(area.crs)
        if "candidate_id" not in cand:
            cand = cand.assign(candidate_id=[f"c{i:05d}" for i in range(len(cand))])
    else:
        cand = read_candidates(candidates, crs=area.crs)
    n_cand_in = len(cand)
    cand = exclude(cand, boundary=area.boundary, facilities=tier_fac, exclusion_m=exclusion_m)
    excluded = dict(cand.attrs.get("excluded", {}))
    if len(cand) == 0:
        raise InputError(
            f"no candidate is left ({n_cand_in} given; {excluded}); give candidates inside the "
            "area (--candidates FILE) or a smaller --exclusion-m"
        )
    csnap = net.snap(cand, snap_limit_m=snap_limit_m)
    excluded["far_from_streets"] = int((~csnap.ok).sum())
    if new is not None and new > int(csnap.ok.sum()):
        raise InputError(
            f"--new {new} is more than the {int(csnap.ok.sum())} usable candidates; ask for "
            "fewer sites or give more candidates"
        )
    dsnap = net.snap(demand_gdf, snap_limit_m=snap_limit_m)
    pop = demand_gdf["population"].to_numpy(dtype=float)
    fsnap = net.snap(tier_fac, snap_limit_m=snap_limit_m) if len(tier_fac) else None
    if fsnap is not None:
        walk, _ = nearest_facility(net, dsnap, fsnap, limit_m=tier.target_m)
    else:
        walk = np.full(len(pop), np.inf)
    covered0 = walk <= tier.target_m + 1e-6
    started = time.perf_counter()
    matrix = coverage_matrix(net, dsnap, csnap, target_m=tier.target_m)
    matrix_s = time.perf_counter() - started
    total = float(pop.sum())
    if capacity is not None:
        import scipy.sparse as sp

        existing = (
            coverage_matrix(net, dsnap, fsnap, target_m=tier.target_m)
            if fsnap is not None
            else sp.csr_matrix((len(pop), 0))
        )
        assert new is not None
        sol = solve_capacitated(matrix, pop, existing, new, capacity, time_limit_s=time_limit_s)
        picks = list(sol.picks)
        covered_before = sol.extra["served_before"]
        covered_after = sol.value
        stats = {"candidates": len(cand)}
    else:
        red = reduce_problem(matrix, pop, covered0)
        stats = red.stats
        if new is not None:
            sol = solve_max_cover(red.a, red.weight, new, time_limit_s=time_limit_s, method=method)
        else:
            assert goal is not None
            need = goal * total - red.covered_before
            from .siting import GoalUnreachableError

            try:
                sol = solve_set_cover(
                    red.a, red.weight, need, time_limit_s=time_limit_s, method=method
                )
            except GoalUnreachableError as err:
                best = (red.covered_before + err.coverable) / total
                raise GoalUnreachableError(err.coverable, err.need, share=best, goal=goal) from None
        picks = [int(red.columns[j]) for j in sol.picks]
        covered_before = red.covered_before
        covered_after = covered_before + sol.value
    # check against a full recomputation with the proposals added
    if picks and capacity is None:
        both = csnap.subset(np.asarray(picks))
        if fsnap is not None:
            both = fsnap.concat(both)
        w2, _ = nearest_facility(net, dsnap, both, limit_m=tier.target_m)
        check = float(pop[w2 <= tier.target_m + 1e-6].sum())
        if abs(check - covered_after) > 1e-6 * max(1.0, total):
            raise RuntimeError(f"siting check failed: model {covered_after}, recomputed {check}")
    kind = "station" if "station" in tier.kinds else "centre"
    chosen = cand.iloc[picks]
    proposals = gpd.GeoDataFrame(
        {
            "id": chosen["candidate_id"].astype(str).to_numpy(),
            "kind": kind,
            "rank": np.arange(1, len(picks) + 1),
            "added_covered_residents": np.round(np.asarray(sol.gains, dtype=float), 2),
            "source": chosen["source"].astype(str).to_numpy() if "source" in chosen else "file",
        },
        geometry=chosen.geometry.to_numpy(),
        crs=area.crs,
    )
    ll = proposals.to_crs(4326)
    proposals["lon"] = np.round(ll.geometry.x.to_numpy(), 7)
    proposals["lat"] = np.round(ll.geometry.y.to_numpy(), 7)
    report: dict[str, Any] = {
        "servicecircle": __version__,
        "area": area.name,
        "tier": {"name": tier.name, "target_m": tier.target_m, "kinds": list(tier.kinds)},
        "model": "capacitated MCLP"
        if capacity is not None
        else ("MCLP" if new is not None else "LSCP"),
        "method": sol.method,
        "new": new,
        "goal": goal,
        "capacity": capacity,
        "residents": total,
        "covered_before": covered_before,
        "covered_after": covered_after,
        "share_before": covered_before / total if total else None,
        "share_after": covered_after / total if total else None,
        "optimal": bool(sol.optimal),
        "gap": None if not np.isfinite(sol.gap) else float(sol.gap),
        "bound_added_residents": None if not np.isfinite(sol.bound) else float(sol.bound),
        "solve_seconds": round(sol.seconds, 4),
        "matrix_seconds": round(matrix_s, 4),
        "matrix_nonzeros": int(matrix.nnz),
        "marginal_gains": [float(g) for g in sol.gains],
        "proposals": len(proposals),
        "candidates": {"given": n_cand_in, "used": int(csnap.ok.sum()), "excluded": excluded},
        "existing_facilities": len(tier_fac),
        "problem": stats,
        "attribution": "Map data © OpenStreetMap contributors (ODbL)",
    }
    if out_dir is not None:
        _write_siting(
            Path(out_dir),
            area,
            net,
            demand_gdf,
            fac,
            proposals,
            report,
            [tier],
            write_map=write_map,
            lang=lang,
            tiles=tiles,
            snap_limit_m=snap_limit_m,
        )
    report["_proposals"] = proposals
    return report


def _write_siting(
    out: Path,
    area: Area,
    net: WalkNetwork,
    demand_gdf: gpd.GeoDataFrame,
    fac: gpd.GeoDataFrame,
    proposals: gpd.GeoDataFrame,
    report: dict[str, Any],
    tiers: list[Tier],
    *,
    write_map: bool,
    lang: str,
    tiles: str | None,
    snap_limit_m: float,
) -> None:
    """Write proposals.geojson/.gpkg, siting.json and the map of coverage after the plan."""
    import geopandas as gpd

    out.mkdir(parents=True, exist_ok=True)
    geo = proposals.to_crs(4326)
    write_with(
        out / "proposals.geojson",
        lambda tmp: geo.to_file(tmp, driver="GeoJSON", layer="proposals", COORDINATE_PRECISION=7),
    )
    write_with(
        out / "proposals.gpkg",
        lambda tmp: proposals.to_file(tmp, driver="GPKG", layer="proposals"),
    )
    if write_map:
        from .coverage import compute_coverage
        from .maps import coverage_map, save_map

        new_fac = proposals.assign(facility_id="proposal-" + proposals["id"].astype(str))[
            ["facility_id", "kind", "geometry"]
        ]
        after = pd.concat([fac, new_fac], ignore_index=True) if len(fac) else new_fac
        after = gpd.GeoDataFrame(after, geometry="geometry", crs=area.crs)
        cov = compute_coverage(net, demand_gdf, after, tiers, snap_limit_m=snap_limit_m)
        fmap = coverage_map(
            area,
            demand_gdf,
            cov,
            fac if len(fac) else after.iloc[:0],
            lang=lang,
            tiles=tiles,
            proposals=proposals,
        )
        save_map(fmap, out / "proposals_map.html")
    write_json(out / "siting.json", report)


def run_two_level(
    area: Area,
    *,
    centres_new: int | None = None,
    centres_goal: float | None = None,
    stations_new: int | None = None,
    stations_goal: float | None = None,
    centre_tier: Tier | None = None,
    station_tier: Tier | None = None,
    facilities: str | Path | gpd.GeoDataFrame | None = None,
    out_dir: str | Path | None = None,
    write_map: bool = True,
    lang: str = "zh",
    tiles: str | None = "osm",
    **options: Any,
) -> dict[str, Any]:
    """The two-level plan "one centre, many stations" (一中心多站点).

    First new centres for the 15-minute tier (``centres_new`` sites, or the fewest that reach
    ``centres_goal``); then new stations for the 5-minute tier (``stations_new`` or
    ``stations_goal``), with every existing and new centre counting as a station. ``options``
    go to :func:`run_propose` (demand, candidates, method, spacing, time limit…).

    Returns the combined ``siting.json`` content (``"levels"``: the two steps); writes one
    ``proposals.geojson`` with both kinds (ranked per kind), ``siting.json`` and a map.
    """
    import geopandas as gpd

    from .tiers import DEFAULT_TIERS

    c_tier = centre_tier or DEFAULT_TIERS[0]
    s_tier = station_tier or DEFAULT_TIERS[1]
    if "centre" not in s_tier.kinds:
        raise InputError(
            f"tier {s_tier.name} must count centres as stations (kinds station,centre)"
        )
    net = options.pop("network", None) or WalkNetwork.from_area(area)
    demand = options.pop("demand", None)
    demand_gdf = _demand_for(area, demand)
    fac = _facilities_for(area, facilities)
    first = run_propose(
        area,
        tier=c_tier,
        new=centres_new,
        goal=centres_goal,
        facilities=fac,
        demand=demand_gdf,
        network=net,
        out_dir=None,
        **options,
    )
    new_centres = first.pop("_proposals")
    as_fac = new_centres.assign(facility_id="new-" + new_centres["id"].astype(str))[
        ["facility_id", "kind", "geometry"]
    ]
    fac2 = gpd.GeoDataFrame(
        pd.concat([fac, as_fac], ignore_index=True) if len(fac) else as_fac,
        geometry="geometry",
        crs=area.crs,
    )
    second = run_propose(
        area,
        tier=s_tier,
        new=stations_new,
        goal=stations_goal,
        facilities=fac2,
        demand=demand_gdf,
        network=net,
        out_dir=None,
        **options,
    )
    new_stations = second.pop("_proposals")
    proposals = gpd.GeoDataFrame(
        pd.concat([new_centres, new_stations], ignore_index=True),
        geometry="geometry",
        crs=area.crs,
    )
    report: dict[str, Any] = {
        "servicecircle": __version__,
        "area": area.name,
        "model": "two-level: centres first, then stations (centres count as stations)",
        "levels": {"centres": first, "stations": second},
        "proposals": len(proposals),
        "attribution": "Map data © OpenStreetMap contributors (ODbL)",
    }
    if out_dir is not None:
        _write_siting(
            Path(out_dir),
            area,
            net,
            demand_gdf,
            fac,
            proposals,
            report,
            [c_tier, s_tier],
            write_map=write_map,
            lang=lang,
            tiles=tiles,
            snap_limit_m=options.get("snap_limit_m", DEFAULT_SNAP_LIMIT_M),
        )
    report["_proposals"] = proposals
    return report


def _facilities_for(
    area: Area, facilities: str | Path | gpd.GeoDataFrame | None
) -> gpd.GeoDataFrame:
    """Existing facilities from a frame, a file, 'osm' or 'demo' (empty when None)."""
    import geopandas as gpd

    from .facilities import facilities_from_pois, read_facilities

    if facilities is None:
        return gpd.GeoDataFrame({"facility_id": [], "kind": []}, geometry=[], crs=area.crs)
    if isinstance(facilities, gpd.GeoDataFrame):
        return facilities.to_crs(area.crs)
    if str(facilities) == FACILITIES_FROM_OSM:
        return facilities_from_pois(area.pois)
    if str(facilities) == DEMO_FACILITIES:
        return read_facilities(demo_facilities_path(), crs=area.crs)
    return read_facilities(facilities, crs=area.crs)


def run_scenario(
    scenario: str | Path | Any,
    *,
    out_dir: str | Path | None = None,
    step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run a whole plan from a scenario file (see :mod:`servicecircle.scenario`).

    Everything is validated first; outputs are staged in a hidden folder and moved into the
    output folder only when every step has succeeded, so a failed run leaves nothing
    half-written. Writes the coverage tables, ``cells.gpkg`` and ``grid_summary.json`` (with a
    grid), ``service_areas.gpkg`` (when asked), the siting outputs (with ``[siting]``), one
    ``coverage_map.html`` with every layer, and ``report.html``.
    """
    import os
    import shutil
    import tempfile

    from .area import load_area
    from .demand import BuildingPopulation, demand_from_buildings
    from .maps import coverage_map, save_map
    from .report import report_html, write_report
    from .scenario import Scenario, load_scenario

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    out = Path(out_dir) if out_dir is not None else Path(sc.output["dir"])
    opts = sc.output
    lang, tiles = opts.get("lang", "zh"), opts.get("tiles", "osm")
    snap = float(opts.get("snap_limit_m", DEFAULT_SNAP_LIMIT_M))

    def tick(name: str) -> None:
        log.info("scenario %s: %s", sc.name, name)
        if step is not None:
            step(name)

    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        tick("area")
        boundary = sc.area.get("boundary")
        area = load_area(sc.area["source"], boundary=boundary, name=sc.area.get("name"))
        network = WalkNetwork.from_area(area)
        tick("demand")
        source = sc.demand.get("source", "buildings")
        if source == "buildings":
            base = BuildingPopulation()
            params = BuildingPopulation(
                floor_area_per_resident_m2=float(
                    sc.demand.get("floor_area_per_resident_m2", base.floor_area_per_resident_m2)
                ),
                default_levels=float(sc.demand.get("default_levels", base.default_levels)),
                household_size=float(sc.demand.get("household_size", base.household_size)),
            )
            demand_gdf = demand_from_buildings(area.buildings, landuse=area.landuse, params=params)
        else:
            demand_gdf = _demand_for(area, source)
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
                demand=demand_gdf,
                out_dir=stage,
            )
        tick("coverage")
        result = run_coverage(
            area,
            facilities=sc.facilities["source"],
            demand=demand_gdf,
            tiers=sc.tiers,
            snap_limit_m=snap,
            out_dir=stage,
            write_map=False,
            cells=cells,
            write_service_areas=bool(opts.get("service_areas", False)),
            network=network,
        )
        summary = dict(result.summary)
        summary["scenario"] = {"name": sc.name, "file": str(sc.path)}
        siting_report = None
        proposals = None
        if sc.siting is not None:
            tick("siting")
            s = sc.siting
            tier = next(t for t in sc.tiers if t.name == s["tier"])
            common = {
                "facilities": result.facilities,
                "demand": demand_gdf,
                "candidates": s.get("candidates"),
                "method": s.get("method", "exact"),
                "spacing_m": float(s.get("spacing_m", 100.0)),
                "exclusion_m": float(s.get("exclusion_m", 50.0)),
                "time_limit_s": float(s.get("time_limit_s", 60.0)),
                "snap_limit_m": snap,
                "network": network,
            }
            if "centres" in s:
                centre_tier = next((t for t in sc.tiers if t.kinds == ("centre",)), None)
                siting_report = run_two_level(
                    area,
                    centres_new=int(s["centres"]),
                    stations_new=s.get("new"),
                    stations_goal=s.get("goal"),
                    centre_tier=centre_tier,
                    station_tier=tier,
                    out_dir=stage,
                    write_map=False,
                    **common,
                )
            else:
                siting_report = run_propose(
                    area,
                    tier=tier,
                    new=s.get("new"),
                    goal=s.get("goal"),
                    capacity=s.get("capacity"),
                    out_dir=stage,
                    write_map=False,
                    **common,
                )
            proposals = siting_report.pop("_proposals")
            write_json(stage / "siting.json", siting_report)
            summary["siting"] = {
                k: siting_report.get(k)
                for k in (
                    "model",
                    "method",
                    "proposals",
                    "covered_before",
                    "covered_after",
                    "optimal",
                    "gap",
                )
            }
        if opts.get("map", True):
            tick("map")
            fmap = coverage_map(
                area,
                demand_gdf,
                result.coverage,
                result.facilities,
                lang=lang,
                tiles=tiles,
                proposals=proposals,
                cells=result.cells,
                service_areas=result.service_areas,
            )
            save_map(fmap, stage / "coverage_map.html")
        if opts.get("report", True):
            tick("report")
            page = report_html(
                summary,
                result.coverage,
                cells=result.cells,
                siting=siting_report,
                proposals=proposals,
                lang=lang,
            )
            write_report(stage / "report.html", page)
        files = sorted(p.name for p in stage.iterdir() if not p.name.startswith("."))
        summary["files"] = sorted({*files, "summary.json"})
        write_json(stage / "summary.json", summary)
        for name in summary["files"]:
            os.replace(stage / name, out / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    summary["out_dir"] = str(out)
    return summary
