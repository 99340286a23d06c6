"""Grid speed and memory.

    python benchmarks/bench_grid.py

Prints the time and peak traced memory of:

* a 50 m hexagonal grid over a 100 km² area (a disc, so that the edge cells are clipped),
  with 100,000 residents counted into the cells — target under 5 s;
* governance grids (300–500 households) for 50,000 households on a seeded street lattice with
  major roads every 600 m, buildings as points — target under 60 s;
* governance grids and micro-grids on real footprints: the Nanjing Xinjiekou extract
  (``../shared/data``, skipped when absent) — target under 10 s for the grids (reading the OSM
  file is timed apart), at most 5 % of grids flagged;
* governance grids and micro-grids for a synthetic district of 50,000 households WITH
  footprints (irregular blocks, buildings on plots, 1 in 150 a tower over the maximum) —
  target under 60 s, at most 5 % of grids flagged.

Asserts nothing (these machines are noisy).
"""

from __future__ import annotations

import math
import time
import tracemalloc
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from servicecircle.governance import GovernanceParams, governance_grid, governance_hierarchy
from servicecircle.grid import cell_figures, hex_grid

CRS = "EPSG:32650"
NANJING = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NANJING = NANJING / "nanjing_xinjiekou_2021.osm.bz2"
TARGETS = {
    "hex 50 m, 100 km², 100 k points": 5.0,
    "governance, 50 k households as points": 60.0,
    "governance + micro-grids, Nanjing footprints": 10.0,
    "governance + micro-grids, 50 k households with footprints": 60.0,
}


def timed(label: str, fn, *, trace: bool = True):  # type: ignore[no-untyped-def]
    """Run ``fn`` once; print wall and CPU time and memory. ``trace=False`` skips
    tracemalloc, which slows pure-Python code several times (the rebalancing search), so that
    the time is the time a user sees; the memory is then the process peak only."""
    if trace:
        tracemalloc.start()
    t, cpu = time.perf_counter(), time.process_time()
    out = fn()
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    traced = ""
    if trace:
        traced = f", traced peak {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MB (numpy/Python)"
        tracemalloc.stop()
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label}: {seconds:.2f} s (CPU {cpu:.2f} s){traced}, process peak RSS {rss:.0f} MB")
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


def report(label: str, h, seconds: float, target: float) -> None:  # type: ignore[no-untyped-def]
    g, m = h.grids, h.micro_grids
    flagged = g[g["flag"] != ""]
    towers = g[g["single_building"]]
    print(
        f"  {len(g)} grids from {g.attrs['blocks']} blocks ({g.attrs['atoms']} atoms, "
        f"{g.attrs['recombinations']} recombinations, {g.attrs['moves']} moves); households "
        f"min {g['households'].min():.0f} median {g['households'].median():.0f} max "
        f"{g['households'].max():.0f}"
    )
    print(
        f"  flagged {len(flagged)} ({len(flagged) / max(len(g), 1):.1%}; target ≤ 5 %), of "
        f"which for one building: {int(flagged['flag'].str.contains('one building').sum())}; "
        f"{len(towers)} grids of one large building"
    )
    for reason, n in flagged["flag"].value_counts().items():
        print(f"    {n} × {reason}")
    print(
        f"  {len(m)} micro-grids: households min {m['households'].min():.0f} median "
        f"{m['households'].median():.0f} max {m['households'].max():.0f}; "
        f"{int((m['flag'] != '').sum())} outside 30–150; "
        f"{m.loc[m['demand_id'] != '', 'demand_id'].nunique()} buildings divided by unit/floor"
    )
    print(
        f"  Polsby–Popper median {g['polsby_popper'].median():.2f} (min "
        f"{g['polsby_popper'].min():.2f}); street-following boundary median "
        f"{g['street_share'].median():.0%} (min {g['street_share'].min():.0%}); footprints "
        f"not kept whole {g.attrs['footprints_not_kept_whole']}"
    )
    print(
        f"  {label}: {seconds:.2f} s against a target of {target:.0f} s → {seconds / target:.2f}×"
    )


def nanjing_case() -> None:
    if not NANJING.exists():
        print(f"Nanjing: {NANJING} is absent; skipped")
        return
    from servicecircle.area import load_area
    from servicecircle.demand import demand_from_buildings

    t = time.perf_counter()
    area = load_area(NANJING)
    demand = demand_from_buildings(area.buildings, landuse=area.landuse)
    print(f"Nanjing: reading the OSM file and the demand {time.perf_counter() - t:.2f} s")
    label = "governance + micro-grids, Nanjing footprints"

    def run():  # type: ignore[no-untyped-def]
        return governance_hierarchy(area.edges, area.boundary, demand)

    h, seconds = timed(f"{label} ({demand['households'].sum():,.0f} households)", run, trace=False)
    report(label, h, seconds, TARGETS[label])


def footprint_district(households: float = 50_000, seed: int = 2):  # type: ignore[no-untyped-def]
    """Irregular street blocks (60–220 m), primary roads every fifth street, buildings as
    rectangles on 3 × 3 plots per block; households from footprint × floors, 1 building in
    150 a tower of 520–900 households."""
    rng = np.random.default_rng(seed)
    side = 26
    xs = np.concatenate([[0.0], np.cumsum(rng.uniform(60, 220, side))])
    ys = np.concatenate([[0.0], np.cumsum(rng.uniform(60, 220, side))])
    x0, y0 = 650_000.0, 3_550_000.0
    lines, kinds = [], []
    for i, x in enumerate(xs):
        lines.append(shapely.LineString([(x0 + x, y0), (x0 + x, y0 + ys[-1])]))
        kinds.append("primary" if i % 5 == 0 else "residential")
    for j, y in enumerate(ys):
        lines.append(shapely.LineString([(x0, y0 + y), (x0 + xs[-1], y0 + y)]))
        kinds.append("secondary" if j % 5 == 0 else "residential")
    edges = gpd.GeoDataFrame({"highway": kinds}, geometry=lines, crs=CRS)
    boundary = shapely.box(x0, y0, x0 + xs[-1], y0 + ys[-1])
    fps, levels = [], []
    for i in range(side):
        for j in range(side):
            sw, sh = (xs[i + 1] - xs[i]) / 3, (ys[j + 1] - ys[j]) / 3
            for k in range(9):
                if rng.random() < 0.25:
                    continue
                w, h = sw * rng.uniform(0.3, 0.7), sh * rng.uniform(0.3, 0.7)
                x = x0 + xs[i] + (k % 3) * sw + rng.uniform(0.05, 0.95 - w / sw) * sw
                y = y0 + ys[j] + (k // 3) * sh + rng.uniform(0.05, 0.95 - h / sh) * sh
                fps.append(shapely.box(x, y, x + w, y + h))
                levels.append(int(rng.integers(3, 19)))
    fps_arr = np.asarray(fps, dtype=object)
    lv = np.asarray(levels, dtype=float)
    hh = shapely.area(fps_arr) * lv
    tower = rng.random(len(hh)) < 1 / 150
    hh[tower] = rng.uniform(520, 900, int(tower.sum()))
    hh[~tower] *= (households - hh[tower].sum()) / hh[~tower].sum()
    lv[tower] = 30
    demand = gpd.GeoDataFrame(
        {
            "demand_id": [f"b{i}" for i in range(len(hh))],
            "households": hh,
            "population": hh * 2.62,
            "levels": lv,
            "footprint": fps_arr,
        },
        geometry=shapely.point_on_surface(fps_arr),
        crs=CRS,
    )
    return edges, boundary, demand


def footprint_case() -> None:
    edges, boundary, demand = footprint_district()
    label = "governance + micro-grids, 50 k households with footprints"

    def run():  # type: ignore[no-untyped-def]
        return governance_hierarchy(edges, boundary, demand)

    h, seconds = timed(f"{label} ({len(demand):,} buildings)", run, trace=False)
    report(label, h, seconds, TARGETS[label])


if __name__ == "__main__":
    print("targets: " + "; ".join(f"{k} < {v:g} s" for k, v in TARGETS.items()))
    hex_case()
    governance_case()
    nanjing_case()
    footprint_case()
