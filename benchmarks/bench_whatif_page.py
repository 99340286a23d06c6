"""What-if page size and speed in headless chromium.

    python benchmarks/bench_whatif_page.py                 # 100 k residents, 300 sites, 2 tiers
    python benchmarks/bench_whatif_page.py --centres 300   # every site a centre (worst case)

Targets (issue 16): 100,000 residents, 300 facilities and candidates, two tiers (centres
≤ 1000 m, stations or centres ≤ 300 m): the page under 15 MB, first paint under 3 s and a
toggle under 50 ms in headless chromium on this machine.

On a seeded 100 k-node street lattice, residents (non-integer populations, so Float64) lie in
a square district; the sites are existing centres and stations, ranked proposals and other
candidates, all at random places in it. The page is built by the library
(:func:`servicecircle.whatif_page.whatif_html`, real coverage matrices), opened from a file
with every request refused, and measured: first paint = the page's ``painted`` timestamp
(the first frame after residents, markers and panel are drawn) against navigation start; toggle =
the synchronous ``toggle(id)`` (counts, panel, full canvas redraw) and the time to the next
painted frame. Asserts nothing (these machines are noisy).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lattice import CRS, lattice_network

TARGET_MB, TARGET_PAINT_S, TARGET_TOGGLE_MS = 15.0, 3.0, 50.0


def build(args: argparse.Namespace) -> tuple[str, dict[str, int]]:
    import geopandas as gpd
    import shapely

    from servicecircle.area import Area
    from servicecircle.tiers import DEFAULT_TIERS
    from servicecircle.whatif_page import whatif_html

    net = lattice_network(100_000, seed=4)
    rng = np.random.default_rng(11)
    centre = net.node_xy.mean(axis=0)
    half = args.extent_km * 500.0

    def points(n: int) -> gpd.GeoSeries:
        xy = rng.uniform(centre - half, centre + half, size=(n, 2))
        return gpd.GeoSeries(gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=CRS)

    demand = gpd.GeoDataFrame(
        {
            "demand_id": [f"b{i:06d}" for i in range(args.residents)],
            "population": rng.uniform(1.0, 60.0, args.residents).round(3),
        },
        geometry=points(args.residents),
    )
    n_prop = args.proposals
    n_cand = args.sites - args.existing - n_prop
    centres = min(args.centres, args.sites)
    kinds = np.array(["station"] * args.sites, dtype=object)
    kinds[rng.choice(args.sites, centres, replace=False)] = "centre"
    geoms = points(args.sites)
    fac = gpd.GeoDataFrame(
        {
            "facility_id": [f"f{i:03d}" for i in range(args.existing)],
            "kind": kinds[: args.existing],
            "name": [f"站点{i}" for i in range(args.existing)],
        },
        geometry=geoms.iloc[: args.existing].to_numpy(),
        crs=CRS,
    )
    prop = gpd.GeoDataFrame(
        {"id": [f"p{i:03d}" for i in range(n_prop)], "kind": kinds[args.existing :][:n_prop],
         "rank": np.arange(1, n_prop + 1)},
        geometry=geoms.iloc[args.existing : args.existing + n_prop].to_numpy(),
        crs=CRS,
    )  # fmt: skip
    cand = gpd.GeoDataFrame(
        {"id": [f"c{i:03d}" for i in range(n_cand)], "kind": kinds[args.existing + n_prop :],
         "gain": 0.0},
        geometry=geoms.iloc[args.existing + n_prop :].to_numpy(),
        crs=CRS,
    )  # fmt: skip
    lo, hi = centre - half, centre + half
    area = Area(
        name="lattice", source="synthetic", crs=net.crs, boundary=shapely.box(*lo, *hi),
        nodes=gpd.GeoDataFrame(geometry=[], crs=CRS), edges=gpd.GeoDataFrame(geometry=[], crs=CRS),
        buildings=gpd.GeoDataFrame(geometry=[], crs=CRS),
        pois=gpd.GeoDataFrame(geometry=[], crs=CRS), landuse=gpd.GeoDataFrame(geometry=[], crs=CRS),
    )  # fmt: skip
    html = whatif_html(area, demand, fac, prop, cand, DEFAULT_TIERS, net, tiles="none")
    return html, {"centres": centres, "stations": args.sites - centres}


def measure(path: Path, chromium: str, runs: int, toggles: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {
        "paint": [], "toggle": [], "frame": [], "figures": [], "toggle_wide": [], "recolour": []
    }  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        for run in range(runs):
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
                       else r.abort())  # fmt: skip
            page.goto(path.as_uri())
            page.wait_for_function("window.servicecircleWhatIf && servicecircleWhatIf.painted",
                                   timeout=60_000)  # fmt: skip
            out["paint"].append(page.evaluate("servicecircleWhatIf.painted") / 1000.0)
            if run == 0:
                ids = page.evaluate("servicecircleWhatIf.sites().map(s => s.id)")
                rng = np.random.default_rng(5)
                picks = [ids[i] for i in rng.choice(len(ids), toggles)]
                for sid in picks:
                    ms = page.evaluate(
                        """async id => { const api = window.servicecircleWhatIf;
                           const t0 = performance.now(); api.toggle(id); const t1 = api.last;
                           await new Promise(r => requestAnimationFrame(() =>
                             requestAnimationFrame(r)));
                           const t2 = performance.now() - t0;
                           const t3 = performance.now(); api.figures();
                           return [t1, t2, performance.now() - t3]; }""",
                        sid,
                    )
                    out["toggle"].append(ms[0])
                    out["frame"].append(ms[1])
                    out["figures"].append(ms[2])
                # residents coloured by the 1000 m tier: a centre's toggle repaints most points
                recolour = page.evaluate(
                    """() => { const t = performance.now();
                       servicecircleWhatIf.colourBy('centre_15min');
                       return performance.now() - t; }"""
                )
                out["recolour"].append(recolour)
                for sid in picks:
                    page.evaluate(f"servicecircleWhatIf.toggle({sid!r})")
                    out["toggle_wide"].append(page.evaluate("servicecircleWhatIf.last"))
            page.close()
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=300, help="facilities + candidates")
    parser.add_argument("--existing", type=int, default=150, help="existing facilities")
    parser.add_argument("--proposals", type=int, default=20)
    parser.add_argument("--centres", type=int, default=40, help="sites that are centres")
    parser.add_argument("--extent-km", type=float, default=5.0, help="side of the district")
    parser.add_argument("--runs", type=int, default=3, help="page loads (first paint)")
    parser.add_argument("--toggles", type=int, default=60)
    parser.add_argument("--keep", metavar="FILE", help="also write the page here")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    print(f"targets: page < {TARGET_MB:g} MB, first paint < {TARGET_PAINT_S:g} s, "
          f"toggle < {TARGET_TOGGLE_MS:g} ms")  # fmt: skip
    t = time.perf_counter()
    html, counts = build(args)
    t_build = time.perf_counter() - t
    size_mb = len(html.encode("utf-8")) / 1e6
    print(
        f"{args.residents:,} residents in a {args.extent_km:g} km square, {args.sites} sites "
        f"({counts['centres']} centres, {counts['stations']} stations; {args.existing} "
        f"existing, {args.proposals} proposals), tiers centre ≤ 1000 m and station ≤ 300 m"
    )
    print(f"page: {size_mb:.1f} MB, built in {t_build:.1f} s (matrices included)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "whatif.html"
        path.write_text(html, encoding="utf-8")
        if args.keep:
            shutil.copy(path, args.keep)
        m = measure(path, chromium, args.runs, args.toggles)

    def stats(v: list[float]) -> str:
        q = np.percentile(v, 95)
        return f"median {statistics.median(v):.1f}, p95 {q:.1f}, max {max(v):.1f}"

    paint = statistics.median(m["paint"])
    print(
        f"first paint: {', '.join(f'{s:.2f}' for s in m['paint'])} s "
        f"(median {paint:.2f} s; target < {TARGET_PAINT_S:g} s)"
    )
    print(f"toggle (API call: counts + panel + canvas redraw), {len(m['toggle'])} toggles: "
          f"{stats(m['toggle'])} ms (target < {TARGET_TOGGLE_MS:g} ms)")  # fmt: skip
    print(f"toggle, residents coloured by the 1000 m tier: {stats(m['toggle_wide'])} ms")
    print(
        f"toggle to the next painted frame (two animation frames included): {stats(m['frame'])} ms"
    )
    print(f"recolour by another tier (full canvas redraw): {m['recolour'][0]:.1f} ms")
    print(f"figures(): {stats(m['figures'])} ms")
    ok = (size_mb < TARGET_MB, statistics.median(m["paint"]) < TARGET_PAINT_S,
          max(m["toggle"] + m["toggle_wide"]) < TARGET_TOGGLE_MS)  # fmt: skip
    print("within targets: size {}, first paint {}, toggle {}".format(*ok))


if __name__ == "__main__":
    main()
