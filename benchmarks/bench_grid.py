"""Grid speed and memory.

    python benchmarks/bench_grid.py

Prints the time and peak traced memory of:

* a 50 m hexagonal grid over a 100 km² area (a disc, so that the edge cells are clipped),
  with 100,000 residents counted into the cells — target under 5 s;
* governance grids (300–500 households) for 50,000 households on a seeded street lattice with
  major roads every 600 m — target under 60 s.

Asserts nothing (these machines are noisy).
"""

from __future__ import annotations

import math
import time
import tracemalloc

import geopandas as gpd
import numpy as np
import shapely

from servicecircle.governance import GovernanceParams, governance_grid
from servicecircle.grid import cell_figures, hex_grid

CRS = "EPSG:32650"


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{label}: {seconds:.2f} s, traced peak {peak:.0f} MB (numpy/Python), process peak "
        f"RSS {rss:.0f} MB"
    )
    return out, seconds


def hex_case() -> None:
    radius = math.sqrt(100e6 / math.pi)
    boundary = shapely.Point(650_000, 3_550_000).buffer(radius, 64)
    rng = np.random.default_rng(0)
    pts = shapely.points(
        rng.uniform(650_000 - radius, 650_000 + radius, 100_000),
        rng.uniform(3_550_000 - radius, 3_550_000 + radius, 100_000),
    )
    demand = gpd.GeoDataFrame({"population": rng.uniform(1, 50, len(pts))}, geometry=pts, crs=CRS)

    def run() -> gpd.GeoDataFrame:
        return cell_figures(hex_grid(boundary, 50.0, crs=CRS), demand)

    cells, _ = timed("hex 50 m over 100 km² (+100,000 demand points)", run)
    print(f"  {len(cells):,} cells; area check {cells.area.sum() / boundary.area:.12f}")


def governance_case(households: float = 50_000, block_m: float = 150.0) -> None:
    rng = np.random.default_rng(1)
    side = 20  # 20 × 20 blocks
    x0, y0 = 650_000.0, 3_550_000.0
    lines, kinds = [], []
    for i in range(side + 1):
        major = i % 4 == 0
        c = i * block_m
        lines.append(shapely.LineString([(x0 + c, y0), (x0 + c, y0 + side * block_m)]))
        lines.append(shapely.LineString([(x0, y0 + c), (x0 + side * block_m, y0 + c)]))
        kinds += ["primary" if major else "residential"] * 2
    edges = gpd.GeoDataFrame({"highway": kinds}, geometry=lines, crs=CRS)
    boundary = shapely.box(x0, y0, x0 + side * block_m, y0 + side * block_m)
    n_buildings = 2400
    xy = np.column_stack(
        [
            rng.uniform(x0 + 5, x0 + side * block_m - 5, n_buildings),
            rng.uniform(y0 + 5, y0 + side * block_m - 5, n_buildings),
        ]
    )
    hh = rng.gamma(2.0, 1.0, n_buildings)
    hh *= households / hh.sum()
    demand = gpd.GeoDataFrame(
        {"population": hh * 2.62, "households": hh}, geometry=shapely.points(xy), crs=CRS
    )

    def run() -> gpd.GeoDataFrame:
        return governance_grid(edges, boundary, demand, params=GovernanceParams())

    grids, _ = timed(f"governance grids for {households:,.0f} households", run)
    ok = grids[grids["flag"] == ""]
    print(
        f"  {len(grids)} grids from {grids.attrs['blocks']} blocks; {len(ok)} within "
        f"300–500 households, {len(grids) - len(ok)} flagged; households min "
        f"{grids['households'].min():.0f} median {grids['households'].median():.0f} max "
        f"{grids['households'].max():.0f}"
    )


if __name__ == "__main__":
    hex_case()
    governance_case()
