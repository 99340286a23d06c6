"""Batch runs on Dask over a seeded synthetic region of 2,002,225 street nodes: 1 vs 2 workers.

Target: 2 worker processes at least 1.8× faster than 1 on the 2 M-node region, wall time of
``run_batch`` (cluster start, the PBF split, the tasks and the merge all included).

    python benchmarks/bench_batch.py                  # writes the region once to /tmp, runs
    python benchmarks/bench_batch.py --small          # 160 k nodes, a quick check
    python benchmarks/bench_batch.py --repeat 3       # 1,2,1,2,1,2 (default 2 rounds)
    python benchmarks/bench_batch.py --whole-file     # every task reads the whole PBF (as before)

The region is a jittered street lattice written as a real OSM PBF (pyosmium): ways of 10 street
pieces (800 m) along rows and columns, as streets are cut into ways in OSM, and node and way ids
drawn at random over the id ranges of today's OSM, so the file looks like a city's to the split
(sorted by id, not by place). 200,000 residents in a GeoPackage, 2,000 facilities in a CSV. The
area is cut into square tiles; the PBF is split once into one extract per tile plus its buffer,
and each Dask task reads its extract (and its residents through the GeoPackage's spatial filter).

The two configurations are timed in alternating order (1, 2, 1, 2, …) and the minimum of each is
reported, beside what the machine itself allows two processes at a time (the same Python loop
and the same numpy sort run alone and two at once, before and after the runs: on a virtual
machine whose cores share their host, each of two at once can run slower than one alone), with
the split's own seconds (inside both), the tasks' seconds, the peak memory of a worker process
and the machine's load average before each run (other work on the machine slows the 2-worker
runs most). Asserts nothing (these machines are noisy).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

NODE_IDS = 12_000_000_000  # node ids in OSM today are below this
WAY_IDS = 1_300_000_000


def write_region(folder: Path, side: int, spacing_m: float = 80.0, seed: int = 0) -> Path:
    """Write the synthetic region (PBF + demand + facilities + scenario); return the scenario."""
    import geopandas as gpd
    from pyproj import Transformer

    folder.mkdir(parents=True, exist_ok=True)
    pbf = folder / "region.osm.pbf"
    rng = np.random.default_rng(seed)
    to_ll = Transformer.from_crs(32648, 4326, always_xy=True)  # UTM 48N (Chongqing)
    x0, y0 = 600_000.0, 3_200_000.0
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x = x0 + ii.ravel() * spacing_m + rng.uniform(-8, 8, side * side)
    y = y0 + jj.ravel() * spacing_m + rng.uniform(-8, 8, side * side)
    lon, lat = to_ll.transform(x, y)
    if not pbf.exists():
        _write_pbf(pbf, side, lon, lat, np.random.default_rng(seed + 1))
    extent = (x0, y0, x0 + (side - 1) * spacing_m, y0 + (side - 1) * spacing_m)
    n_dem, n_fac = 200_000, 2_000
    dx = rng.uniform(extent[0], extent[2], n_dem)
    dy = rng.uniform(extent[1], extent[3], n_dem)
    population = rng.integers(5, 300, n_dem).astype(float)
    if not (folder / "demand.gpkg").exists():
        dem = gpd.GeoDataFrame(
            {"demand_id": [f"d{i}" for i in range(n_dem)], "population": population},
            geometry=gpd.points_from_xy(dx, dy),
            crs=32648,
        ).to_crs(4326)
        dem.to_file(folder / "demand.gpkg", driver="GPKG")
    fx = rng.uniform(extent[0], extent[2], n_fac)
    fy = rng.uniform(extent[1], extent[3], n_fac)
    flon, flat = to_ll.transform(fx, fy)
    pd.DataFrame(
        {
            "id": [f"f{i}" for i in range(n_fac)],
            "kind": np.where(rng.random(n_fac) < 0.1, "centre", "station"),
            "lon": flon,
            "lat": flat,
        }
    ).to_csv(folder / "facilities.csv", index=False)
    west, south = to_ll.transform(extent[0], extent[1])
    east, north = to_ll.transform(extent[2], extent[3])
    scenario = folder / "region.toml"
    scenario.write_text(
        f'[area]\nsource = "region.osm.pbf"\nboundary = [{west}, {south}, {east}, {north}]\n'
        '[demand]\nsource = "demand.gpkg"\n[facilities]\nsource = "facilities.csv"\n'
        '[output]\ndir = "out"\n'
    )
    return scenario


def _write_pbf(
    pbf: Path, side: int, lon: np.ndarray, lat: np.ndarray, rng: np.random.Generator
) -> None:
    """Nodes sorted by their random ids, then ways of 11 nodes along rows and columns."""
    import osmium

    node_id = np.sort(rng.choice(NODE_IDS, side * side, replace=False) + 1)
    node_id = node_id[rng.permutation(side * side)]  # lattice position → id
    grid = node_id.reshape(side, side)
    rows = [grid[r, s : s + 11] for r in range(side) for s in range(0, side - 1, 10)]
    cols = [grid[s : s + 11, c] for c in range(side) for s in range(0, side - 1, 10)]
    way_id = np.sort(rng.choice(WAY_IDS, len(rows) + len(cols), replace=False) + 1)
    way_id = way_id[rng.permutation(len(way_id))]
    highway = ["residential"] * len(rows) + ["footway"] * len(cols)
    refs = rows + cols
    node, way = osmium.osm.mutable.Node, osmium.osm.mutable.Way
    lon_l, lat_l, ids = lon.tolist(), lat.tolist(), node_id.tolist()
    with osmium.SimpleWriter(str(pbf)) as writer:
        for k in np.argsort(node_id).tolist():
            writer.add_node(node(id=ids[k], location=(lon_l[k], lat_l[k])))
        for k in np.argsort(way_id).tolist():
            tags = {"highway": highway[k]}
            writer.add_way(way(id=int(way_id[k]), nodes=refs[k].tolist(), tags=tags))


def one_run(scenario: Path, parts: list, workers: int, out: Path) -> dict:
    from servicecircle.batch import run_batch

    load = os.getloadavg()[0]
    t = time.perf_counter()
    summary = run_batch(scenario, parts, n_workers=workers, out_dir=out)
    wall = time.perf_counter() - t
    table = pd.DataFrame(summary["partition_table"])
    split = next(iter(summary["split"].values()), {})
    return {
        "workers": workers,
        "wall_s": wall,
        "split_s": split.get("seconds", {}).get("total", 0.0),
        "split_scan_s": split.get("seconds", {}).get("scan", 0.0),
        "split_write_s": split.get("seconds", {}).get("write", 0.0),
        "task_s": table["seconds"].sum(),
        "worker_peak_rss_mb": table["worker_peak_rss_mb"].max(),
        "largest_partition_nodes": table["walk_nodes"].max(),
        "largest_extract_nodes": max(split.get("nodes_written", [0])),
        "failed": len(summary["failed"]),
        "phases": summary.get("seconds", {}),
        "load_before": load,
        "residents": summary.get("residents", 0),
        "shares": {k: v["share"] for k, v in summary.get("tiers", {}).items()},
    }


def _busy(kind: str) -> float:
    """Seconds of a fixed piece of work: a Python loop, or numpy sorting 8 M numbers (memory)."""
    t = time.perf_counter()
    if kind == "python":
        total = 0
        for i in range(20_000_000):
            total += i * i
    else:
        values = np.random.default_rng(0).random(8_000_000)
        for _ in range(3):
            np.sort(values)
    return time.perf_counter() - t


def machine_ceiling() -> dict[str, float]:
    """What two processes at once can gain on this machine now: for each kind of work, twice
    its time alone over the slower of two copies run side by side (2.0 on two free cores)."""
    from multiprocessing import get_context

    out = {}
    with get_context("spawn").Pool(2) as pool:
        for kind in ("python", "numpy"):
            pool.map(_busy, [kind, kind])  # (warm)
            alone = min(pool.apply(_busy, (kind,)) for _ in range(2))
            pair = min(max(pool.map(_busy, [kind, kind])) for _ in range(2))
            out[kind] = 2 * alone / pair
    return out


def main() -> None:
    import shapely

    from servicecircle.batch import tile_partitions
    from servicecircle.scenario import load_scenario

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=None, help="lattice side (1415 → 2 M nodes)")
    parser.add_argument("--tile-km", type=float, default=None)
    parser.add_argument("--small", action="store_true", help="400 × 400 nodes, 10 km tiles")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of (1 worker, 2 workers)")
    parser.add_argument("--whole-file", action="store_true", help="no split: tasks read it all")
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    side = args.side or (400 if args.small else 1415)
    tile_km = args.tile_km or (10.0 if args.small else 40.0)
    folder = args.folder or Path(f"/tmp/servicecircle-bench-region-v2-{side}")
    if args.whole_file:  # the behaviour before the split: every task parses the whole PBF
        import servicecircle.osm_split as osm_split

        osm_split.split_sources = lambda sources, *a, **k: ([None] * len(sources), {})
    t = time.perf_counter()
    scenario = write_region(folder, side)
    size_mb = (folder / "region.osm.pbf").stat().st_size / 2**20
    print(
        f"region: {side**2:,} street nodes, 200,000 residents, 2,000 facilities (ready in "
        f"{time.perf_counter() - t:.0f} s; PBF {size_mb:.0f} MB)"
    )
    sc = load_scenario(scenario)
    parts = tile_partitions(shapely.box(*sc.area["boundary"]), tile_km)
    buffer = max(t.target_m for t in sc.tiers) * 2
    print(f"{len(parts)} tiles of {tile_km:g} km, each with a {buffer:.0f} m buffer")
    ceilings = [machine_ceiling()]
    print("machine: two copies of the same work at once gain " + _ceiling_text(ceilings[0]))
    runs = []
    for r in range(args.repeat):
        for workers in (1, 2):
            run = one_run(scenario, parts, workers, folder / f"out{workers}")
            runs.append(run)
            print(
                f"  round {r + 1}, {workers} worker(s): {run['wall_s']:.1f} s wall (split "
                f"{run['split_s']:.1f} s = scan {run['split_scan_s']:.1f} + write "
                f"{run['split_write_s']:.1f}; tasks {run['task_s']:.0f} s); worker peak "
                f"{run['worker_peak_rss_mb']:.0f} MB; load before {run['load_before']:.2f}; "
                f"failed {run['failed']}; phases {run['phases']}",
                flush=True,
            )
    ceilings.append(machine_ceiling())
    print("machine, after the runs: " + _ceiling_text(ceilings[1]))
    frame = pd.DataFrame(runs)
    best = frame.groupby("workers")["wall_s"].min()
    print(
        f"largest partition {frame['largest_partition_nodes'].max():,.0f} walk nodes; largest "
        f"extract {frame['largest_extract_nodes'].max():,.0f} of {side**2:,} nodes; residents "
        f"{runs[0]['residents']:,.0f}, covered {runs[0]['shares']}"
    )
    print(
        f"minimum wall: 1 worker {best[1]:.1f} s, 2 workers {best[2]:.1f} s → speed-up "
        f"{best[1] / best[2]:.2f}× (target ≥ 1.8×); split minimum "
        f"{frame.groupby('workers')['split_s'].min().to_dict()}; peak RSS per worker "
        f"{frame.groupby('workers')['worker_peak_rss_mb'].max().to_dict()} MB; driver peak "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


def _ceiling_text(c: dict[str, float]) -> str:
    return f"{c['python']:.2f}× (a Python loop), {c['numpy']:.2f}× (numpy sorting) over one alone"


if __name__ == "__main__":
    main()
