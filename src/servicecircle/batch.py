"""Batch plans on Dask: one task per partition of a large area, on one machine or a cluster.

A partition is a polygon (a sub-district, a community, or a tile). Its task reads only the
partition plus a buffer of the largest search distance (the tier distance × the search factor,
2,000 m by default) from the source file — network, buildings, POIs and facilities — so a
resident near the edge still walks to the facility in the next partition, and the result for
every resident equals a single whole-area run. Residents are counted once: each belongs to the
first partition (in the given order) that holds it.

Start a cluster by hand with ``dask scheduler`` on one machine and ``dask worker
tcp://SCHEDULER:8786`` on each worker machine (all with servicecircle installed and the data
at the same path), then pass ``--scheduler tcp://SCHEDULER:8786``. Without ``--scheduler`` a
``LocalCluster`` of worker processes is started on this machine.
"""

from __future__ import annotations

import logging
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._errors import InputError, ServiceCircleError
from .coverage import DEFAULT_SEARCH_FACTOR
from .network import DEFAULT_SNAP_LIMIT_M
from .tiers import Tier

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Partition:
    """A named polygon in EPSG:4326, optionally with its own source file."""

    name: str
    polygon: BaseGeometry
    source: str | None = None


@dataclass(frozen=True)
class PartitionTask:
    """Everything a worker needs for one partition (picklable, no data inside)."""

    name: str
    order: int
    polygon_wkt: str
    source: str
    boundary_wkt: str | None
    buffer_m: float
    facilities: str
    demand: str | None
    tiers: tuple[Tier, ...]
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M
    search_factor: float = DEFAULT_SEARCH_FACTOR
    grid: dict[str, Any] | None = None
    siting: dict[str, Any] | None = None


@dataclass
class PartitionResult:
    """What a worker sends back: the coverage rows it owns, its cells and proposals (EPSG:4326)
    and its figures."""

    name: str
    order: int
    points: pd.DataFrame
    facilities: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    cells: Any = None
    proposals: Any = None


def tile_partitions(boundary: BaseGeometry, tile_km: float) -> list[Partition]:
    """Square tiles of ``tile_km`` over a boundary given in EPSG:4326 (named ``t<col>-<row>``)."""
    import geopandas as gpd

    from .grid import square_grid

    if not tile_km > 0:
        raise InputError(f"--tile-km must be positive; got {tile_km}")
    gs = gpd.GeoSeries([boundary], crs=4326)
    crs = gs.estimate_utm_crs()
    b = gs.to_crs(crs).iloc[0]
    cells = (
        square_grid(b, tile_km * 1000.0, crs=crs)
        if tile_km * 1000.0 <= max(b.bounds[2] - b.bounds[0], b.bounds[3] - b.bounds[1])
        else gpd.GeoDataFrame({"cell_id": ["sq-0-0"]}, geometry=[b], crs=crs)
    )
    cells = cells.to_crs(4326)
    return [
        Partition("t" + cid.split("-", 1)[1], geom)
        for cid, geom in zip(cells["cell_id"], cells.geometry, strict=True)
    ]


def read_partitions(path: str | Path) -> list[Partition]:
    """Partitions from a polygon file: name from ``name``/``code``/``id``; an optional
    ``source`` column gives each partition its own OSM file (relative to the file)."""
    from .files import read_table

    path = Path(path)
    gdf = read_table(path, "partition file", to_crs=4326)
    kinds = set(gdf.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"partition file {path}: needs polygons; got {', '.join(sorted(kinds))}")
    col = next((c for c in ("name", "code", "id") if c in gdf.columns), None)
    names = gdf[col].astype(str).tolist() if col else [f"p{i:03d}" for i in range(len(gdf))]
    if len(set(names)) != len(names):
        raise InputError(f"partition file {path}: names must be unique")
    sources: list[str | None] = [None] * len(gdf)
    if "source" in gdf.columns:
        sources = [
            None if pd.isna(s) else (str(s) if str(s) == "demo" else str(path.parent / str(s)))
            for s in gdf["source"]
        ]
    return [Partition(n, g, s) for n, g, s in zip(names, gdf.geometry, sources, strict=True)]


def buffer_for(tiers: tuple[Tier, ...], search_factor: float = DEFAULT_SEARCH_FACTOR) -> float:
    """The buffer that makes partition results equal a whole-area run: the largest search
    distance (tier distance × search factor)."""
    return max(t.target_m for t in tiers) * search_factor


def run_partition(task: PartitionTask) -> PartitionResult:
    """Coverage of one partition (runs on a Dask worker)."""
    import geopandas as gpd
    import shapely

    from .area import load_area
    from .coverage import compute_coverage
    from .demand import demand_from_buildings, read_demand
    from .facilities import facilities_from_pois, read_facilities
    from .geometry import assign_cells
    from .workflows.common import demo_facilities_path

    started = time.perf_counter()
    poly = shapely.from_wkt(task.polygon_wkt)
    gs = gpd.GeoSeries([poly], crs=4326)
    crs = gs.estimate_utm_crs()
    grown = gpd.GeoSeries([gs.to_crs(crs).iloc[0].buffer(task.buffer_m)], crs=crs).to_crs(4326)
    region = grown.iloc[0]
    if task.boundary_wkt is not None:
        region = region.intersection(shapely.from_wkt(task.boundary_wkt))
    area = load_area(task.source, boundary=gpd.GeoSeries([region], crs=4326), name=task.name)
    from .network import WalkNetwork

    net = WalkNetwork.from_area(area)
    if task.demand in (None, "buildings"):
        demand = demand_from_buildings(area.buildings, landuse=area.landuse)
    else:
        demand = read_demand(task.demand, crs=area.crs, bbox=region.bounds)
    if task.facilities == "osm":
        fac = facilities_from_pois(area.pois)
    elif task.facilities == "demo":
        fac = read_facilities(demo_facilities_path(), crs=area.crs)
    else:
        fac = read_facilities(task.facilities, crs=area.crs, bbox=region.bounds)
    own_poly = gpd.GeoDataFrame(geometry=[poly], crs=4326).to_crs(area.crs)
    owned = assign_cells(demand.geometry, own_poly) >= 0
    demand = demand.loc[owned]
    if len(demand):
        cov = compute_coverage(
            net,
            demand,
            fac,
            task.tiers,
            snap_limit_m=task.snap_limit_m,
            search_factor=task.search_factor,
        )
        cov_points = cov.points.copy()
        fac_table = cov.facilities.copy()
        fac_table["_inside"] = assign_cells(fac.geometry, own_poly) >= 0 if len(fac) else []
        ll = demand.geometry.to_crs(4326)
        cov_points["lon"] = ll.x.to_numpy()
        cov_points["lat"] = ll.y.to_numpy()
    else:
        cov_points = pd.DataFrame({"demand_id": pd.Series([], dtype=str)})
        fac_table = pd.DataFrame({"facility_id": [], "kind": [], "_inside": []})
    stats = {
        "partition": task.name,
        "demand_points": len(demand),
        "residents": float(demand["population"].sum()) if len(demand) else 0.0,
        "walk_nodes": net.n_nodes,
        "walk_edges": net.n_edges,
        "facilities_in_reach": len(fac),
        "seconds": round(time.perf_counter() - started, 3),
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    cells_ll = None
    if task.grid is not None and len(demand):
        cells_ll = _partition_grid(task, area, net, demand, cov, own_poly.geometry.iloc[0])
        stats["cells"] = len(cells_ll)
    proposals_ll = None
    if task.siting is not None and len(demand):
        proposals_ll, siting = _partition_siting(
            task, area, net, demand, fac, own_poly.geometry.iloc[0]
        )
        stats.update(
            {
                f"siting_{k}": siting[k]
                for k in ("proposals", "covered_before", "covered_after", "optimal")
            }
        )
    for tier in task.tiers:
        col = f"{tier.name}_covered"
        if col in cov_points:
            stats[f"{tier.name}_covered_residents"] = float(
                cov_points.loc[cov_points[col].astype(bool), "population"].sum()
            )
    return PartitionResult(
        task.name, task.order, cov_points, fac_table, stats, cells_ll, proposals_ll
    )


def _partition_grid(
    task: PartitionTask, area: Any, net: Any, demand: Any, cov: Any, own: Any
) -> Any:
    """The scenario's grid over the partition (not its buffer), with coverage rolled up."""
    from .governance import GovernanceParams, governance_grid
    from .grid import regular_grid
    from .rollup import rollup

    g = task.grid or {}
    kind = g.get("kind", "governance")
    if kind == "governance":
        lo, hi = g.get("households", (300, 500))
        cells = governance_grid(
            area.edges, own, demand, params=GovernanceParams(households_min=lo, households_max=hi)
        )
        cells["cell_id"] = task.name + ":" + cells["cell_id"].astype(str)
    else:
        cells = regular_grid(
            kind, own, crs=area.crs, size_m=g.get("size_m"), h3_res=g.get("h3_res"), demand=demand
        )
    rolled = rollup(cov, demand, cells)
    rolled["partition"] = task.name
    return rolled.to_crs(4326)


def _partition_siting(
    task: PartitionTask, area: Any, net: Any, demand: Any, fac: Any, own: Any
) -> tuple[Any, dict[str, Any]]:
    """Proposals for the partition's residents from candidates inside the partition."""
    from .candidates import candidates_along_network, exclude
    from .workflows import run_propose

    s = task.siting or {}
    tier = next(t for t in task.tiers if t.name == s["tier"])
    cand = candidates_along_network(net, spacing_m=float(s.get("spacing_m", 100.0)))
    cand = exclude(cand, boundary=own)
    result = run_propose(
        area,
        tier=tier,
        new=s.get("new"),
        goal=s.get("goal"),
        facilities=fac,
        demand=demand,
        candidates=cand,
        method=s.get("method", "exact"),
        exclusion_m=float(s.get("exclusion_m", 50.0)),
        time_limit_s=float(s.get("time_limit_s", 60.0)),
        network=net,
        out_dir=None,
    )
    proposals = result.proposals.copy()
    proposals["id"] = task.name + ":" + proposals["id"].astype(str)
    proposals["partition"] = task.name
    return proposals.to_crs(4326), result.report


#: Scenario keys ``run`` accepts that a batch cannot honour per partition (each is rejected
#: by name rather than silently ignored).
BATCH_UNSUPPORTED = (
    ("siting", "capacity", "a capacity is a whole-area model; run it with `servicecircle run`"),
    ("siting", "centres", "the two-level plan needs the whole area; use `servicecircle run`"),
    ("siting", "candidates", "batch siting takes candidates along each partition's streets"),
    ("grid", "communities", "batch grids are built per partition without a community layer"),
    ("demand", "floor_area_per_resident_m2", "batch estimates residents with the defaults"),
    ("demand", "default_levels", "batch estimates residents with the defaults"),
    ("demand", "household_size", "batch estimates residents with the defaults"),
)


def check_batch_scenario(sc: Any) -> None:
    """Reject, by key, every scenario setting a batch run would otherwise ignore."""
    problems = []
    for section, key, why in BATCH_UNSUPPORTED:
        body = getattr(sc, section) or {}
        if key in body:
            problems.append(f"'{section}.{key}' is not supported by batch ({why})")
    if problems:
        raise InputError(f"scenario {sc.path}: " + "; ".join(problems))


def run_batch(
    scenario: str | Path,
    partitions: list[Partition],
    *,
    out_dir: str | Path | None = None,
    scheduler: str | None = None,
    n_workers: int = 2,
    retries: int = 1,
    buffer_m: float | None = None,
    on_done: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Run a scenario's coverage over partitions as Dask tasks and merge the results.

    Parameters
    ----------
    scenario
        A scenario file (its area, demand, facilities and tiers are used).
    partitions
        The partitions, in ownership order.
    out_dir
        Where to write ``coverage.csv``, ``summary.json`` and ``partitions.csv`` (default: the
        scenario's output folder).
    scheduler
        Address of a running ``dask scheduler``; default: a ``LocalCluster`` of ``n_workers``
        worker processes on this machine.
    retries
        How often a failed partition is retried before it is reported.
    buffer_m
        Buffer around each partition (default: :func:`buffer_for` the scenario's tiers).
    on_done
        Called with (partition name, "ok" or the error) as each partition finishes.

    Returns
    -------
    dict
        The summary written (``"partitions"`` lists each with its figures or its error).
    """
    from .outputs import RunOutput, check_out_dir
    from .scenario import load_scenario

    sc = load_scenario(scenario)
    check_batch_scenario(sc)
    if not partitions:
        raise InputError("no partitions: give a partition file or --tile-km N")
    out_dir = check_out_dir(out_dir if out_dir is not None else sc.output["dir"])
    buf = buffer_for(sc.tiers) if buffer_m is None else float(buffer_m)
    if buf < 0:
        raise InputError(f"--buffer-m must be zero or more metres; got {buf}")
    if buf < buffer_for(sc.tiers):
        log.warning(
            "buffer %.0f m is below the largest search distance %.0f m: residents near partition "
            "edges may get longer walks than in a whole-area run",
            buf,
            buffer_for(sc.tiers),
        )
    tasks = _tasks(sc, partitions, buf)
    results, failures = _run_tasks(tasks, scheduler, n_workers, retries, on_done)
    ordered = sorted(results.values(), key=lambda r: r.order)
    with RunOutput(out_dir) as out:
        summary = _write_merged(out, sc, tasks, ordered, results, failures, buf)
    summary["out_dir"] = str(out.out_dir)
    return summary


def _tasks(sc: Any, partitions: list[Partition], buf: float) -> list[PartitionTask]:
    import shapely

    from .workflows.common import demo_facilities_path

    boundary_wkt = None
    if isinstance(sc.area.get("boundary"), list):
        boundary_wkt = shapely.box(*sc.area["boundary"]).wkt
    facilities = sc.facilities["source"]
    if facilities == "demo":
        facilities = str(demo_facilities_path())
    demand = sc.demand.get("source")
    return [
        PartitionTask(
            name=p.name,
            order=i,
            polygon_wkt=p.polygon.wkt,
            source=p.source or sc.area["source"],
            boundary_wkt=boundary_wkt,
            buffer_m=buf,
            facilities=facilities,
            demand=None if demand in (None, "buildings") else demand,
            tiers=sc.tiers,
            snap_limit_m=float(sc.output.get("snap_limit_m", DEFAULT_SNAP_LIMIT_M)),
            grid=sc.grid,
            siting=sc.siting,
        )
        for i, p in enumerate(partitions)
    ]


def _run_tasks(
    tasks: list[PartitionTask],
    scheduler: str | None,
    n_workers: int,
    retries: int,
    on_done: Callable[[str, str], None] | None,
) -> tuple[dict[str, PartitionResult], dict[str, str]]:
    """Submit one Dask task per partition; the failure of one is reported, not raised."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as err:  # pragma: no cover
        raise InputError("batch runs need Dask: pip install 'dask[distributed]'") from err
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster)
    results: dict[str, PartitionResult] = {}
    failures: dict[str, str] = {}
    try:
        futures = {
            client.submit(
                run_partition, t, key=f"servicecircle-{t.name}-{id(t)}", retries=retries, pure=False
            ): t.name
            for t in tasks
        }
        for fut in as_completed(futures):
            name = futures[fut]
            try:
                results[name] = fut.result()
                status = "ok"
            except Exception as err:
                kind = "input" if isinstance(err, ServiceCircleError) else type(err).__name__
                failures[name] = f"{kind}: {err}"
                log.debug("partition %s failed:\n%s", name, traceback.format_exc())
                status = failures[name]
            if on_done is not None:
                on_done(name, status)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results, failures


def _merged_points(ordered: list[PartitionResult]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Every partition's owned points and inside facilities, each once."""
    frames = [r.points for r in ordered if len(r.points)]
    points = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame({"demand_id": [], "population": [], "snapped": []})
    )
    n_before = len(points)
    points = points.drop_duplicates("demand_id", keep="first").reset_index(drop=True)
    fac_frames = [
        r.facilities[r.facilities.get("_inside", True)] for r in ordered if len(r.facilities)
    ]
    fac = (
        pd.concat(fac_frames, ignore_index=True).drop_duplicates("facility_id")
        if fac_frames
        else pd.DataFrame(columns=["facility_id", "kind", "snapped"])
    )
    fac = fac.drop(columns=["_inside"], errors="ignore").reset_index(drop=True)
    return points, fac, n_before - len(points)


def _write_merged(
    out: Any,
    sc: Any,
    tasks: list[PartitionTask],
    ordered: list[PartitionResult],
    results: dict[str, PartitionResult],
    failures: dict[str, str],
    buf: float,
) -> dict[str, Any]:
    import geopandas as gpd

    from .coverage import Coverage, coverage_table

    points, fac, on_borders = _merged_points(ordered)
    rows = []
    for t in tasks:
        row = {
            "partition": t.name,
            "status": "failed" if t.name in failures else "ok",
            "error": failures.get(t.name, ""),
        }
        if t.name in results:
            row.update(results[t.name].stats)
        rows.append(row)
    table = pd.DataFrame(rows)
    summary: dict[str, Any] = {
        "scenario": str(sc.path),
        "partitions": len(tasks),
        "buffer_m": buf,
        "failed": failures,
        "demand_points_on_borders": int(on_borders),
    }
    if len(points) and {"snapped", "population"} <= set(points.columns) and len(fac):
        fac = fac.assign(snapped=fac["snapped"].astype(bool))
        cov = Coverage(points, fac, sc.tiers, float(tasks[0].snap_limit_m), DEFAULT_SEARCH_FACTOR)
        summary.update(cov.summary())
        merged = coverage_table(cov)
        merged["lon"] = points["lon"].round(7)
        merged["lat"] = points["lat"].round(7)
        out.csv("coverage.csv", merged)
    out.csv("partitions.csv", table)
    cell_frames = [r.cells for r in ordered if r.cells is not None and len(r.cells)]
    if cell_frames:
        cells = gpd.GeoDataFrame(pd.concat(cell_frames, ignore_index=True), crs=4326)
        out.gpkg("cells.gpkg", {"cells": cells})
        summary["cells"] = len(cells)
    prop_frames = [r.proposals for r in ordered if r.proposals is not None and len(r.proposals)]
    if prop_frames:
        props = gpd.GeoDataFrame(pd.concat(prop_frames, ignore_index=True), crs=4326)
        out.geojson("proposals.geojson", props)
        summary["proposals"] = len(props)
    summary["partition_table"] = table.replace({np.nan: None}).to_dict(orient="records")
    summary["files"] = sorted({*out.files, "summary.json"})
    out.json("summary.json", summary)
    return summary
