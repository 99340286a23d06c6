"""Coverage speed and memory, measured against baselines in the same run.

    python benchmarks/bench_coverage.py            # 10 k and 100 k lattices, real extracts
    python benchmarks/bench_coverage.py --big      # also the 1 M-node lattice (≈ 1 min)

For each seeded street lattice it times, on the same arrays and the same facilities:

* ``scipy``: a bare ``scipy.sparse.csgraph.dijkstra(min_only=True, limit=…)`` from the
  facilities' nearest nodes — the floor;
* ``servicecircle sp``: the shortest-path part of servicecircle (exact facility offsets, labels);
* ``servicecircle all``: snapping demand and facilities + shortest paths + per-point distances;
* ``networkx``: ``multi_source_dijkstra_path_length`` with a cutoff — the naive baseline;
* ``what-if``: adding and removing one station, against a full recomputation.

It prints times (best of several runs) and ratios; it asserts nothing (these machines are
noisy). Targets: ≥ 20× faster than networkx at 100 k nodes; shortest paths within 1.5× of bare
scipy; 1 M nodes, 1,000 facilities, 100,000 demand points fully computed (snapping included,
building the arrays excluded) in under 5 s and 2 GB; what-if ≥ 10× faster than a full run.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lattice import lattice_network, random_points  # noqa: E402

from servicecircle.coverage import nearest_facility, node_distances, point_distances  # noqa: E402
from servicecircle.whatif import add_facility, remove_facility, tier_state  # noqa: E402

SHARED = HERE.parents[1] / "shared" / "data"


def best(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def per_call(fn: Callable[[], object], number: int = 20, repeat: int = 5) -> float:
    """Best mean time per call over ``repeat`` loops of ``number`` calls (for short calls)."""
    import timeit

    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_network(
    net, label: str, n_fac: int, n_dem: int, limit_m: float, *, with_networkx: bool, repeat: int
) -> dict[str, float]:
    from scipy.sparse.csgraph import dijkstra

    fac_xy = random_points(net, n_fac, seed=1)
    dem_xy = random_points(net, n_dem, seed=2)
    fsnap = net.snap(fac_xy)
    sources = np.unique(net.edge_u[fsnap.edge[fsnap.ok]])

    def bare() -> None:
        dijkstra(net.csr, directed=True, indices=sources, min_only=True, limit=limit_m)

    def ours_sp() -> None:
        node_distances(net, fsnap, limit_m=limit_m)

    def ours_all() -> None:
        d = net.snap(dem_xy)
        f = net.snap(fac_xy)
        nearest_facility(net, d, f, limit_m=limit_m)

    out = {
        "nodes": net.n_nodes,
        "edges": net.n_edges,
        "facilities": n_fac,
        "demand": n_dem,
        "limit_m": limit_m,
    }
    out["scipy_s"] = best(bare, repeat)
    out["ours_sp_s"] = best(ours_sp, repeat)
    tracemalloc.start()
    out["ours_all_s"] = best(ours_all, max(1, repeat // 2))
    out["ours_all_traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    if with_networkx:
        import networkx as nx

        g = nx.Graph()
        g.add_weighted_edges_from(
            zip(net.edge_u.tolist(), net.edge_v.tolist(), net.edge_length_m.tolist(), strict=True)
        )
        src = set(sources.tolist())
        out["networkx_s"] = best(
            lambda: nx.multi_source_dijkstra_path_length(g, src, cutoff=limit_m),
            max(1, repeat // 2),
        )
    out["peak_rss_mb"] = peak_rss_mb()
    ratio = out["ours_sp_s"] / out["scipy_s"]
    line = (
        f"{label:<22} {net.n_nodes:>9,} nodes {n_fac:>5} fac {n_dem:>7,} dem | "
        f"scipy {out['scipy_s'] * 1e3:8.1f} ms | sc sp {out['ours_sp_s'] * 1e3:8.1f} ms "
        f"({ratio:.2f}× scipy) | sc all {out['ours_all_s'] * 1e3:8.1f} ms"
    )
    if "networkx_s" in out:
        speedup = out["networkx_s"] / out["ours_sp_s"]
        line += f" | networkx {out['networkx_s'] * 1e3:8.1f} ms ({speedup:.0f}× slower than sc sp)"
    print(line)
    return out


def bench_whatif(net, n_fac: int, n_dem: int, target_m: float, repeat: int) -> dict[str, float]:
    fac_xy = random_points(net, n_fac, seed=1)
    dem_xy = random_points(net, n_dem, seed=2)
    dsnap = net.snap(dem_xy)
    fsnap = net.snap(fac_xy)
    ids = np.array([f"f{i}" for i in range(n_fac)], dtype=object)
    pop = np.ones(n_dem)

    def full() -> object:
        nd, nl = node_distances(net, fsnap, limit_m=2 * target_m)
        return point_distances(net, dsnap, fsnap, nd, nl, limit_m=2 * target_m)

    def scratch() -> object:
        d = net.snap(dem_xy)
        f = net.snap(fac_xy)
        return tier_state(net, d, pop, f, ids, target_m=target_m)

    state = tier_state(net, dsnap, pop, fsnap, ids, target_m=target_m)
    new_xy = tuple(random_points(net, 1, seed=99)[0])
    t_full = per_call(full, 5, repeat)
    t_scratch = best(scratch, 3)
    t_add = per_call(lambda: add_facility(state, new_xy, "new"), 20, repeat)
    t_rem = per_call(lambda: remove_facility(state, "f7"), 20, repeat)
    print(
        f"what-if {net.n_nodes:,} nodes, {n_fac} stations, {target_m:.0f} m: "
        f"add one {t_add * 1e3:.2f} ms, remove one {t_rem * 1e3:.2f} ms | full distances "
        f"(points already snapped) {t_full * 1e3:.1f} ms: {t_full / t_add:.1f}× / "
        f"{t_full / t_rem:.1f}× | from scratch (snapping too) {t_scratch * 1e3:.0f} ms: "
        f"{t_scratch / t_add:.0f}× / {t_scratch / t_rem:.0f}×"
    )
    return {"full_s": t_full, "scratch_s": t_scratch, "add_s": t_add, "remove_s": t_rem}


def bench_real(repeat: int) -> list[dict[str, float]]:
    from servicecircle.area import load_area
    from servicecircle.demand import demand_from_buildings
    from servicecircle.network import WalkNetwork

    rows = []
    sources = [("demo (Helsinki)", "demo")]
    for name in ("nanjing_xinjiekou_2021.osm.bz2", "beijing_wudaokou_2017.osm.bz2"):
        if (SHARED / name).exists():
            sources.append((name.split("_")[0], str(SHARED / name)))
        else:
            print(f"skip {name}: ../shared/data is absent")
    for label, src in sources:
        area = load_area(src)
        net = WalkNetwork.from_area(area)
        n_dem = len(demand_from_buildings(area.buildings, landuse=area.landuse))
        rows.append(
            bench_network(net, label, 20, max(n_dem, 1), 1000.0, with_networkx=True, repeat=repeat)
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big", action="store_true", help="also run the 1 M-node lattice")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    results: dict[str, object] = {}
    for n, fac, dem in ((10_000, 20, 1_000), (100_000, 200, 10_000)):
        t = time.perf_counter()
        net = lattice_network(n)
        build = time.perf_counter() - t
        print(f"lattice {n:,}: arrays built in {build:.2f} s")
        results[f"lattice_{n}"] = bench_network(
            net, f"lattice {n // 1000}k", fac, dem, 1200.0, with_networkx=True, repeat=args.repeat
        )
        if n == 100_000:
            results["whatif_100k_300m"] = bench_whatif(net, fac, dem, 300.0, args.repeat)
            results["whatif_100k_1000m"] = bench_whatif(net, fac, dem, 1000.0, args.repeat)
    if args.big:
        t = time.perf_counter()
        net = lattice_network(1_000_000)
        build = time.perf_counter() - t
        print(
            f"lattice 1,000,000: arrays built in {build:.2f} s; peak RSS so far "
            f"{peak_rss_mb():.0f} MB"
        )
        results["lattice_1000000"] = bench_network(
            net, "lattice 1M", 1000, 100_000, 1200.0, with_networkx=False, repeat=2
        )
        r = results["lattice_1000000"]
        assert isinstance(r, dict)
        print(
            f"1 M nodes, 1,000 facilities, 100,000 demand points: {r['ours_all_s']:.2f} s "
            f"(target < 5 s); traced peak during the run {r['ours_all_traced_peak_mb']:.0f} MB, "
            f"process peak RSS {r['peak_rss_mb']:.0f} MB (target < 2048 MB)"
        )
    results["real"] = bench_real(args.repeat)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
