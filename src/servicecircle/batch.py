"""Batch plans on Dask: one task per partition of a large area, on one machine or a cluster.

A partition is a polygon (a sub-district, a community, or a tile). Its task reads only the
partition plus a buffer of the largest search distance (tier distance × search factor, 2,000 m by
default), so a resident near the edge still walks to the facility in the next partition and every
resident's result equals a single whole-area run; each resident belongs to the first partition
(in the given order) that holds it. A ``.osm.pbf`` read by several partitions is split once into
one extract per partition (:mod:`servicecircle.osm_split`, write pass on the workers) in a
temporary folder next to the output; each task reads only its extract. Other OSM files are read
by each task with its bounding box. For a cluster: ``dask scheduler``, ``dask worker
tcp://SCHEDULER:8786`` on each machine (servicecircle installed; the data and the output
folder's parent shared at the same path), then ``--scheduler tcp://SCHEDULER:8786``; without it
a ``LocalCluster`` is started here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import utm_crs_of
from ._errors import InputError, ServiceCircleError
from .batch_task import PartitionResult, PartitionTask, coverage_rows, read_box, run_partition
from .coverage import DEFAULT_SEARCH_FACTOR
from .network import DEFAULT_SNAP_LIMIT_M
from .tiers import Tier

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

BATCH_NO_SEGMENTS = (
    "elderly and children (一老一小) at their own pace: not computed by batch; "
    "`servicecircle run` per area gives them"
)
"""What a batch summary says of the demand segments, which it does not compute."""


@dataclass(frozen=True)
class Partition:
    """A named polygon in EPSG:4326, optionally with its own source file."""

    name: str
    polygon: BaseGeometry
    source: str | None = None


def tile_partitions(boundary: BaseGeometry, tile_km: float) -> list[Partition]:
    """Square tiles of ``tile_km`` over a boundary given in EPSG:4326 (named ``t<col>-<row>``)."""
    import geopandas as gpd

    from .grid import square_grid

    if not tile_km > 0:
        raise InputError(f"--tile-km must be positive; got {tile_km}")
    gs = gpd.GeoSeries([boundary], crs=4326)
    crs = utm_crs_of(gs)
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


#: Scenario keys ``run`` accepts that a batch cannot honour per partition (each is rejected
#: by name rather than silently ignored).
BATCH_UNSUPPORTED = (
    ("siting", "capacity", "a capacity is a whole-area model; run it with `servicecircle run`"),
    ("siting", "centres", "the two-level plan needs the whole area; use `servicecircle run`"),
    ("siting", "candidates", "batch siting takes candidates along each partition's streets"),
)
#: ``[demand]`` keys a batch passes to :class:`~servicecircle.demand.BuildingPopulation`.
POPULATION_KEYS = ("floor_area_per_resident_m2", "default_levels", "household_size")


def check_batch_scenario(sc: Any) -> None:
    """Reject, by key, every scenario setting a batch run would otherwise ignore."""
    problems = []
    for section, key, why in BATCH_UNSUPPORTED:
        body = getattr(sc, section) or {}
        if key in body:
            problems.append(f"'{section}.{key}' is not supported by batch ({why})")
    if sc.audit is not None:
        problems.append("'[audit]' is not supported by batch (run `servicecircle audit` per area)")
    if sc.segments is not None or sc.workers is not None:
        problems.append(
            "'[segments]' is not supported by batch (its figures are for all residents; run "
            "`servicecircle run` per area for segments)"
        )
    if sc.output.get("whatif"):
        problems.append("'output.whatif' is not supported by batch (it is one page per area)")
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
        The summary written (``"partitions"`` lists each with its figures or its error), and
        ``"seconds"``: the wall time of the cluster's start, the split, the tasks and the merge
        (the cluster's close included).
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
    if buf < (exact := buffer_for(sc.tiers)):
        log.warning(
            "buffer %.0f m is below the largest search distance %.0f m: residents near partition "
            "edges may get longer walks than in a whole-area run", buf, exact
        )  # fmt: skip
    if scheduler is None and n_workers < 1:
        raise InputError(f"--workers must be 1 or more; got {n_workers}")
    tasks = _tasks(sc, partitions, buf)
    _check_inputs(tasks[0])
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    closing: list[threading.Thread] = []  # the cluster closes while the results are merged
    try:
        with _cluster(scheduler, n_workers, out_dir, closing) as (client, folder):
            seconds["cluster"], t = _lap(t)
            tasks, split = _split(tasks, client, folder)
            seconds["split"], t = _lap(t)
            results, failures = _run_tasks(tasks, client, retries, on_done)
            seconds["tasks"], t = _lap(t)
        if failures and not results:  # nothing to merge: one error, the output folder untouched
            first = next(iter(failures.values()))
            same = all(f == first for f in failures.values())
            raise InputError(
                f"every partition failed ({len(failures)})" + (f": {first}" if same else "")
                + ("" if same else f"; the first: {first}")
            )  # fmt: skip
        ordered = sorted(results.values(), key=lambda r: r.order)
        with RunOutput(out_dir, command="batch") as out:
            summary = _write_merged(out, sc, tasks, ordered, results, failures, buf, split)
    finally:
        for thread in closing:
            thread.join()
    summary["out_dir"] = str(out.out_dir)
    seconds["merge"], _ = _lap(t)  # the cluster's close included
    summary["seconds"] = seconds
    return summary


def _lap(start: float) -> tuple[float, float]:
    """Seconds since ``start`` (rounded) and now."""
    now = time.perf_counter()
    return round(now - start, 2), now


def _check_inputs(task: PartitionTask) -> None:
    """Read the facility file once here, so a wrong file, sheet or column is one error before
    any worker starts (the demand file is read in parts by the tasks)."""
    if task.facilities == "osm":  # "demo" is its file's path by now (see _tasks)
        return
    from .facilities import read_facilities
    from .files import FileOptions

    read_facilities(
        task.facilities, crs="EPSG:3857", files=FileOptions(coords=task.coords, sheet=task.sheet)
    )


#: Dask settings of the LocalCluster ``batch`` starts. glibc's malloc keeps what a task frees
#: for the next one: large blocks come from the heap, not from a fresh mapping each (Dask's
#: default MALLOC_TRIM_THRESHOLD_ of 64 KiB maps and unmaps every large numpy temporary), and
#: the heap is not given back to the system between tasks (a worker holds its largest
#: partition's peak). Measured on the 2 M-node region: page faults per task 20 000 → 1 000,
#: system time 0.6 → 0.05 s of 5 s. One task at a time per worker (none queued on it): the
#: largest partitions go first and the small ones fill in at the end, not held behind a busy
#: worker. No statistical profiler (a stack sample every 10 ms, for a dashboard nobody opens)
#: and slower event-loop ticks and system and memory monitors: with as many workers as cores,
#: their background work (measured: 1.6 s of CPU per 10 s over the driver and two idle workers,
#: 0.2 s with these) comes out of the tasks' time.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": str(2**32),
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": str(2**30),
    "distributed.nanny.pre-spawn-environ.MALLOC_TOP_PAD_": str(2**28),
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@contextlib.contextmanager
def _cluster(
    scheduler: str | None, n_workers: int, out_dir: Path, closing: list[threading.Thread]
) -> Iterator[tuple[Any, Path]]:
    """A Dask client (of the scheduler, or of a LocalCluster of ``n_workers`` processes) and a
    temporary folder next to the output folder, both gone at the end: the folder at once, the
    client and cluster in a thread added to ``closing`` (for the caller to join) when the block
    ended without an error, at once otherwise."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover
        raise InputError("batch runs need Dask: pip install 'dask[distributed]'") from err
    (parent := out_dir.resolve().parent).mkdir(parents=True, exist_ok=True)
    # Dask's own INFO lines (the scheduler's and nannies' start and close: 30 a run) are not
    # the planner's business; with debug logging on (-vv) they are shown
    dask_log = logging.getLogger("distributed")
    level = dask_log.level
    if not log.isEnabledFor(logging.DEBUG):
        dask_log.setLevel(max(logging.WARNING, dask_log.getEffectiveLevel()))
    cluster = client = None
    try:
        if not scheduler:
            import dask

            with dask.config.set(LOCAL_CLUSTER_CONFIG):
                cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    silence_logs=logging.CRITICAL,  # failures are reported by partition
                )
        client = Client(scheduler or cluster)
        with tempfile.TemporaryDirectory(prefix=".servicecircle-extracts-", dir=parent) as tmp:
            yield client, Path(tmp)
    except BaseException:
        _close(client, cluster, dask_log, level)
        raise
    closing.append(
        thread := threading.Thread(target=_close, args=(client, cluster, dask_log, level))
    )
    thread.start()


def _close(client: Any, cluster: Any, dask_log: logging.Logger, level: int) -> None:
    """Close a Dask client and a cluster (either may be ``None``); Dask's log level back."""
    try:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    finally:
        dask_log.setLevel(level)


def _split(
    tasks: list[PartitionTask], client: Any, folder: Path
) -> tuple[list[PartitionTask], dict[str, Any]]:
    """Cut every PBF that several tasks read into one extract per task, read by that task."""
    from .osm_split import split_sources

    paths, report = split_sources(
        [t.source for t in tasks],
        [read_box(t) for t in tasks],
        folder,
        run=lambda f, a: list(client.gather(client.map(f, *zip(*a, strict=True), pure=False))),
        jobs=max(1, sum(client.nthreads().values())),
    )
    return [
        t if p is None else replace(t, source=p, split_from=t.source)
        for t, p in zip(tasks, paths, strict=True)
    ], report


def scenario_boundary(sc: Any) -> BaseGeometry | None:
    """The scenario's ``[area] boundary`` in EPSG:4326 (from its ``[input] coords``), if any."""
    if sc.area.get("boundary") is None:
        return None
    from .area import boundary_in_wgs84

    return boundary_in_wgs84(sc.area["boundary"], _coords(sc)).union_all()


def _coords(sc: Any) -> str:
    return str(sc.input.get("coords", "wgs84"))


def _tasks(sc: Any, partitions: list[Partition], buf: float) -> list[PartitionTask]:
    from .workflows.common import demo_facilities_path

    boundary = scenario_boundary(sc)
    boundary_wkt = None if boundary is None else boundary.wkt
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
            population={k: float(sc.demand[k]) for k in POPULATION_KEYS if k in sc.demand},
            coords=_coords(sc),
            sheet=sc.input.get("sheet"),
        )
        for i, p in enumerate(partitions)
    ]


def _run_tasks(
    tasks: list[PartitionTask],
    client: Any,
    retries: int,
    on_done: Callable[[str, str], None] | None,
) -> tuple[dict[str, PartitionResult], dict[str, str]]:
    """Submit one Dask task per partition, the largest extracts first; the failure of one is
    reported, not raised."""
    from dask.distributed import as_completed

    results: dict[str, PartitionResult] = {}
    failures: dict[str, str] = {}
    size = {t.name: os.path.getsize(t.source) // 1024 if t.split_from else 0 for t in tasks}
    # submitted largest first too: the scheduler hands out the first ones before it has seen
    # the later ones' priorities
    futures = {
        client.submit(
            run_partition,
            t,
            key=f"servicecircle-{t.name}-{id(t)}",
            retries=retries,
            pure=False,
            priority=size[t.name],
        ): t.name
        for t in sorted(tasks, key=lambda t: -size[t.name])
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
    return results, failures


def _merged_points(ordered: list[PartitionResult]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Every partition's owned points and inside facilities, each once."""
    parts = [r for r in ordered if len(r.points)]
    points = (
        pd.concat([r.points for r in parts], ignore_index=True)
        if parts
        else pd.DataFrame({"demand_id": [], "population": [], "snapped": []})
    )
    n_before = len(points)
    points = points.iloc[_merged_order(parts)] if parts else points
    points = points.drop(columns="_row", errors="ignore").reset_index(drop=True)
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


def _merged_order(parts: list[PartitionResult]) -> np.ndarray:
    """Which rows of the partitions' points, one after the other, the merged table lists, in
    its order: each demand point where first owned, in the demand file's order when every
    partition's points came from one (their ``_row``), else in the partitions' order."""
    ids = pd.concat([r.points["demand_id"] for r in parts], ignore_index=True)
    keep = np.flatnonzero(~ids.duplicated(keep="first").to_numpy())
    if all("_row" in r.points for r in parts):
        file_rows = pd.concat([r.points["_row"] for r in parts], ignore_index=True).to_numpy()
        keep = keep[np.argsort(file_rows[keep], kind="stable")]
    return keep


def joined_csv(ordered: list[PartitionResult]) -> bytes | None:
    """``coverage.csv`` of the merged points from the lines the workers wrote: one header, the
    partitions' lines (in the demand file's order when the points came from one), a point on a
    border kept where it was first owned (as :func:`_merged_points` keeps it). ``None`` (the
    merged table is written here instead) when a partition sent no lines, or tables of other
    columns or dtypes (whose cells might read otherwise in the merged table), or lines that
    must be told apart and cannot be (a line break in a cell)."""
    parts = [r for r in ordered if len(r.points)]
    rows = [r.csv for r in parts if r.csv is not None]
    if not parts or len(rows) != len(parts):
        return None
    first = rows[0]
    if any((r.header, r.dtypes) != (first.header, first.dtypes) for r in rows):
        return None
    if not first.header.endswith(os.linesep):  # (workers of another system: its line ends)
        return None
    order = _merged_order(parts)
    starts = np.cumsum([0, *(len(r.points) for r in parts)])
    moved = bool((np.diff(order) < 0).any())  # (else only points on borders go)
    kept = np.zeros(starts[-1], dtype=bool)
    kept[order] = True
    pieces: list[bytes] = []  # a partition's lines, or each line when some go or all move
    for k, lines in enumerate(rows):
        keep = kept[starts[k] : starts[k + 1]]
        if not moved and keep.all():
            pieces.append(lines.body)
            continue
        if lines.ends is None:
            return None
        begins = np.concatenate([[0], lines.ends[:-1]])
        pieces += [lines.body[b:e] for b, e in zip(begins[keep], lines.ends[keep], strict=True)]
    if moved:  # pieces hold the kept lines in the partitions' order: put them in the merged one
        pieces = [pieces[k] for k in np.searchsorted(np.sort(order), order)]
    return b"".join([first.header.encode("utf-8"), *pieces])


def _write_merged(
    out: Any,
    sc: Any,
    tasks: list[PartitionTask],
    ordered: list[PartitionResult],
    results: dict[str, PartitionResult],
    failures: dict[str, str],
    buf: float,
    split: dict[str, Any],
) -> dict[str, Any]:
    import geopandas as gpd

    from .coverage import Coverage

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
    from .workflows.common import summary_head

    summary: dict[str, Any] = {
        **summary_head(scenario=str(sc.path)),
        "partitions": len(tasks),
        "buffer_m": buf,
        "failed": failures,
        "demand_points_on_borders": int(on_borders),
        "not_computed": {"segments": BATCH_NO_SEGMENTS},
        "split": split,
    }
    if len(points) and {"snapped", "population"} <= set(points.columns) and len(fac):
        fac = fac.assign(snapped=fac["snapped"].astype(bool))
        cov = Coverage(points, fac, sc.tiers, float(tasks[0].snap_limit_m), DEFAULT_SEARCH_FACTOR)
        summary.update(cov.summary())
        joined = joined_csv(ordered)
        if joined is not None:  # the workers' lines, joined
            out.with_writer("coverage.csv", lambda path: path.write_bytes(joined))
        else:
            out.csv("coverage.csv", coverage_rows(points, sc.tiers))
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
