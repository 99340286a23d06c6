"""One batch task: the coverage of one partition, read from its extract (runs on a worker).

:func:`run_partition` is what :func:`servicecircle.batch.run_batch` sends to each Dask worker:
a :class:`PartitionTask` (picklable, no data inside) in, a :class:`PartitionResult` out.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import utm_crs_of
from ._errors import InputError
from .coverage import DEFAULT_SEARCH_FACTOR
from .network import DEFAULT_SNAP_LIMIT_M
from .tiers import Tier

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class PartitionTask:
    """Everything a worker needs for one partition (picklable, no data inside); ``source`` is
    its extract when ``split_from`` names the file it was cut from."""

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
    population: dict[str, Any] | None = None
    split_from: str | None = None
    coords: str = "wgs84"
    sheet: str | None = None


@dataclass(frozen=True)
class CsvRows:
    """A partition's rows of the merged ``coverage.csv``, written on its worker: the header
    they go under, the dtypes of the table they were written from, the lines (UTF-8) and where
    each ends (``None`` when a cell holds a line break)."""

    header: str
    dtypes: tuple[str, ...]
    body: bytes
    ends: np.ndarray | None


@dataclass
class PartitionResult:
    """What a worker sends back: its coverage rows (as a table and as CSV lines), cells,
    proposals (EPSG:4326) and figures."""

    name: str
    order: int
    points: pd.DataFrame
    facilities: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    cells: Any = None
    proposals: Any = None
    csv: CsvRows | None = None


def coverage_rows(points: pd.DataFrame, tiers: tuple[Tier, ...]) -> pd.DataFrame:
    """The rows of the batch's ``coverage.csv`` for coverage ``points`` (with ``lon``/``lat``):
    the coverage table's columns (no segments), then the coordinates to 7 decimals."""
    from .coverage import Coverage, coverage_table

    cov = Coverage(points, points.iloc[:0], tiers, 0.0, DEFAULT_SEARCH_FACTOR)
    table = coverage_table(cov)
    table["lon"] = points["lon"].round(7).to_numpy()
    table["lat"] = points["lat"].round(7).to_numpy()
    return table


def csv_rows(points: pd.DataFrame, tiers: tuple[Tier, ...]) -> CsvRows | None:
    """:func:`coverage_rows` as CSV lines (``None`` when they cannot be written apart)."""
    from .outputs import csv_text

    if not len(points) or not {"snapped", "population", "lon", "lat"} <= set(points.columns):
        return None
    table = coverage_rows(points.reset_index(drop=True), tiers)
    header, body = csv_text(table.iloc[:0]), csv_text(table, header=False)
    if header is None or body is None:
        return None
    # text columns of either dtype are written alike: each cell's text, empty when missing
    dtypes = tuple(
        "text" if t is np.dtype(object) or isinstance(t, pd.StringDtype) else str(t)
        for t in table.dtypes
    )
    data = body.encode("utf-8")
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")) + 1
    return CsvRows(header, dtypes, data, ends if len(ends) == len(table) else None)


def partition_region(task: PartitionTask) -> BaseGeometry:
    """What a task reads (EPSG:4326): its partition grown by the buffer, within the boundary."""
    import geopandas as gpd
    import shapely

    gs = gpd.GeoSeries([shapely.from_wkt(task.polygon_wkt)], crs=4326)
    crs = utm_crs_of(gs)
    grown = gpd.GeoSeries([gs.to_crs(crs).iloc[0].buffer(task.buffer_m)], crs=crs).to_crs(4326)
    region = grown.iloc[0]
    if task.boundary_wkt is not None:
        region = region.intersection(shapely.from_wkt(task.boundary_wkt))
    return region


def run_partition(task: PartitionTask) -> PartitionResult:
    """Coverage of one partition (runs on a Dask worker)."""
    import geopandas as gpd
    import shapely

    from .area import load_area
    from .coverage import compute_coverage
    from .demand import BuildingPopulation, demand_from_buildings, read_demand
    from .facilities import facilities_from_pois, read_facilities
    from .files import FileOptions
    from .geometry import assign_cells
    from .network import WalkNetwork

    started = time.perf_counter()
    files = FileOptions(coords=task.coords, sheet=task.sheet)
    poly = shapely.from_wkt(task.polygon_wkt)
    region = partition_region(task)
    if task.split_from is not None and not Path(task.source).exists():
        raise InputError(
            f"extract {task.source} of {task.split_from} is not visible on this worker; with "
            "--scheduler, the output folder's parent must be shared at the same path"
        )
    area = load_area(task.source, boundary=gpd.GeoSeries([region], crs=4326), name=task.name)
    net = WalkNetwork.from_area(area)
    if task.demand in (None, "buildings"):
        params = replace(BuildingPopulation(), **(task.population or {}))
        demand = demand_from_buildings(area.buildings, landuse=area.landuse, params=params)
    else:
        demand = read_demand(task.demand, crs=area.crs, bbox=region.bounds, files=files)
    if task.facilities == "osm":
        fac = facilities_from_pois(area.pois)
    else:
        fac = read_facilities(task.facilities, crs=area.crs, bbox=region.bounds, files=files)
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
        rows = cov_points.index
        if task.demand is not None and rows.is_unique and pd.api.types.is_integer_dtype(rows):
            cov_points["_row"] = rows.to_numpy()  # the file's rows: the merged table's order
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
        "residents": round(float(demand["population"].sum()), 2) if len(demand) else 0.0,
        "walk_nodes": net.n_nodes,
        "walk_edges": net.n_edges,
        "facilities_in_reach": len(fac),
        "seconds": round(time.perf_counter() - started, 3),
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "extract_mb": round(os.path.getsize(task.source) / 2**20, 2) if task.split_from else None,
    }
    cells_ll = None
    if task.grid is not None and len(demand):
        cells_ll = _partition_grid(task, area, net, demand, cov, own_poly.geometry.iloc[0])
        stats["cells"] = 0 if cells_ll is None else len(cells_ll)
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
    for tier in task.tiers:  # (rounded as the table of partitions shows them; 0 for none)
        col = f"{tier.name}_covered"
        covered = cov_points[col].astype(bool) if col in cov_points else []
        stats[f"{tier.name}_covered_residents"] = (
            round(float(cov_points.loc[covered, "population"].sum()), 2) if len(covered) else 0.0
        )
    rows = csv_rows(cov_points, task.tiers)  # (written here, on every worker at once)
    return PartitionResult(
        task.name, task.order, cov_points, fac_table, stats, cells_ll, proposals_ll, rows
    )


def _partition_grid(
    task: PartitionTask, area: Any, net: Any, demand: Any, cov: Any, own: Any
) -> Any:
    """The scenario's grid over the partition (not its buffer), with coverage rolled up; with a
    community layer, grids follow the communities that reach the partition (none: no grid)."""
    from .governance import GovernanceParams, governance_grid
    from .grid import regular_grid
    from .rollup import rollup

    g = task.grid or {}
    kind = g.get("kind", "governance")
    if kind == "governance":
        lo, hi = g.get("households", (300, 500))
        comm = None
        if g.get("communities") is not None:  # the communities that reach this partition
            from .files import read_table

            comm = read_table(g["communities"], "community file", to_crs=area.crs)
            comm = comm[comm.intersects(own)]
            if len(comm) == 0:
                return None
        params = GovernanceParams(households_min=lo, households_max=hi)
        cells = governance_grid(area.edges, own, demand, communities=comm, params=params)
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


def read_box(task: PartitionTask) -> tuple[float, float, float, float]:
    """A (west, south, east, north) box in degrees around :func:`partition_region`, found
    without a projection."""
    import shapely

    from .osm_split import grow_box

    box = grow_box(shapely.from_wkt(task.polygon_wkt).bounds, task.buffer_m)
    if task.boundary_wkt is not None:
        bw, bs, be, bn = shapely.from_wkt(task.boundary_wkt).bounds
        box = (max(box[0], bw), max(box[1], bs), min(box[2], be), min(box[3], bn))
    return box
