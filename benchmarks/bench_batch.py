"""Batch runs on Dask over a seeded synthetic region of about 2 M street nodes.

    python benchmarks/bench_batch.py                  # writes the region once to /tmp, runs
    python benchmarks/bench_batch.py --side 1415      # side × side lattice (2 M nodes)

The region is a jittered street lattice written as a real OSM PBF (pyosmium), with 200,000
residents in a GeoPackage and 2,000 facilities in a CSV. It is cut into square tiles; each Dask
task reads only its tile plus the buffer from those files (pyrosm's bounding box, the
GeoPackage's spatial filter). Prints the wall time and the peak memory of each worker, for 1 and
2 worker processes. Asserts nothing (these machines are noisy).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_region(folder: Path, side: int, spacing_m: float = 80.0, seed: int = 0) -> Path:
    """Write the synthetic region (PBF + demand + facilities + scenario); return the scenario."""
    import geopandas as gpd
    import osmium
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
        writer = osmium.SimpleWriter(str(pbf))
        node = osmium.osm.mutable.Node
        for k in range(side * side):
            writer.add_node(node(id=k + 1, location=(float(lon[k]), float(lat[k]))))
        ids = np.arange(1, side * side + 1).reshape(side, side)
        way = osmium.osm.mutable.Way
        for r in range(side):
            writer.add_way(way(id=r + 1, nodes=ids[r, :].tolist(), tags={"highway": "residential"}))
            writer.add_way(
                way(id=side + r + 1, nodes=ids[:, r].tolist(), tags={"highway": "footway"})
            )
        writer.close()
    extent = (x0, y0, x0 + (side - 1) * spacing_m, y0 + (side - 1) * spacing_m)
    n_dem, n_fac = 200_000, 2_000
    dx = rng.uniform(extent[0], extent[2], n_dem)
    dy = rng.uniform(extent[1], extent[3], n_dem)
    dem = gpd.GeoDataFrame(
        {
            "demand_id": [f"d{i}" for i in range(n_dem)],
            "population": rng.integers(5, 300, n_dem).astype(float),
        },
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


def main() -> None:
    from servicecircle.batch import run_batch, tile_partitions
    from servicecircle.scenario import load_scenario

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=1415, help="lattice side (1415 → 2 M nodes)")
    parser.add_argument("--tile-km", type=float, default=40.0)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/servicecircle-bench-region"))
    args = parser.parse_args()
    t = time.perf_counter()
    scenario = write_region(args.folder, args.side)
    print(
        f"region: {args.side**2:,} street nodes, 200,000 residents, 2,000 facilities "
        f"(written in {time.perf_counter() - t:.0f} s; PBF "
        f"{(args.folder / 'region.osm.pbf').stat().st_size / 2**20:.0f} MB)"
    )
    import shapely

    sc = load_scenario(scenario)
    parts = tile_partitions(shapely.box(*sc.area["boundary"]), args.tile_km)
    print(
        f"{len(parts)} tiles of {args.tile_km:g} km, each with a "
        f"{max(t.target_m for t in sc.tiers) * 2:.0f} m buffer"
    )
    for workers in (1, 2):
        t = time.perf_counter()
        summary = run_batch(
            scenario, parts, n_workers=workers, out_dir=args.folder / f"out{workers}"
        )
        wall = time.perf_counter() - t
        table = pd.DataFrame(summary["partition_table"])
        peak = table["worker_peak_rss_mb"].max()
        nodes = table["walk_nodes"].max()
        print(
            f"{workers} worker(s): {wall:.0f} s wall for {len(parts)} partitions "
            f"({table['seconds'].sum():.0f} s of task time); peak memory per worker "
            f"{peak:.0f} MB; largest partition {nodes:,.0f} nodes; failed: "
            f"{summary['failed'] or 'none'}"
        )
        shares = {k: f"{v['share']:.1%}" for k, v in summary.get("tiers", {}).items()}
        print(f"  residents {summary.get('residents', 0):,.0f}, covered {shares}")


if __name__ == "__main__":
    main()
