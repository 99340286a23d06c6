"""The ``servicecircle`` command line.

User mistakes (a missing file, a bad tier, an empty area…) print one line and exit with code 2;
only a bug shows a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._errors import InputError, ServiceCircleError

log = logging.getLogger("servicecircle")

EPILOG = """\
examples:
  servicecircle demo                       # whole pipeline on the embedded area → maps/
  servicecircle coverage demo --out out/   # coverage of the demo area with its example facilities
  servicecircle coverage district.osm.pbf --facilities stations.geojson --out out/
  servicecircle coverage area.osm.bz2 --facilities osm --tier station_5min=300:station,centre \\
      --tier centre_15min=15min:centre --out out/
  servicecircle grid area.osm.bz2 --kind governance --households 300:500 --out grid/
  servicecircle propose demo --tier station_5min --new 3 --out plan/
  servicecircle run data/demo_scenario.toml --out plan/
  servicecircle batch city.toml --tile-km 5 --out city/

exit codes: 0 success, 2 bad input (the message says which input and how to fix it).
"""


def default_demo_out() -> Path:
    """The repository's ``maps/`` folder when run from a checkout, else ``./maps``."""
    here = Path(__file__).resolve()
    repo = here.parents[2]
    if (repo / "pyproject.toml").exists() and (repo / "src" / "servicecircle").is_dir():
        return repo / "maps"
    return Path.cwd() / "maps"


def _boundary(text: str | None) -> Any:
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) == 4:
        try:
            return tuple(float(p) for p in parts)
        except ValueError:
            pass
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="servicecircle",
        description="Plan community service circles: who is within a 15-minute walk of a "
        "centre and a 5-minute walk of a station, street by street.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"servicecircle {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    verbosity.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress")
    # -v/-q are also accepted after the command (servicecircle coverage … -q)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more log output (-vv for debug)",
    )
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="errors only, no progress",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="run the whole pipeline on the embedded demo area (Helsinki centre)",
        description="Run the whole pipeline on the embedded demo area and write the tables "
        "and the map.",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: the repository's maps/ folder in a checkout, else ./maps)",
    )
    demo.add_argument(
        "--lang",
        choices=["zh", "en"],
        default=None,
        help="map and report labels (default: the scenario's, Chinese)",
    )
    demo.add_argument(
        "--tiles",
        default=None,
        metavar="osm|none|URL",
        help="base map tiles (default osm; 'none' for a plain background)",
    )

    run = sub.add_parser(
        "run",
        parents=[common],
        help="run a whole plan from a scenario file (TOML)",
        description="Run a whole plan from one scenario file: area, demand, facilities, tiers, "
        "grid, siting and outputs. The file is checked first; every problem is reported with "
        "its key.",
        epilog="example:\n  servicecircle run data/demo_scenario.toml --out plan/\n\n"
        "See data/demo_scenario.toml for every section and key.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", metavar="SCENARIO.toml")

    batch = sub.add_parser(
        "batch",
        parents=[common],
        help="run a scenario's coverage over many partitions on Dask (a city, a province)",
        description="Split a large area into partitions (a polygon file, or square tiles) and "
        "run coverage for each as a Dask task, each reading only its partition plus a buffer of "
        "the largest search distance, so results equal one whole-area run. Without --scheduler "
        "a local cluster of worker processes is started.",
        epilog="examples:\n"
        "  servicecircle batch city.toml --partitions subdistricts.gpkg --out city/\n"
        "  servicecircle batch city.toml --tile-km 5 --workers 2 --out city/\n"
        "  dask scheduler &   # on the scheduler machine; then on each worker machine:\n"
        "  dask worker tcp://SCHEDULER:8786\n"
        "  servicecircle batch city.toml --partitions p.gpkg --scheduler tcp://SCHEDULER:8786 "
        "--out city/\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("scenario", metavar="SCENARIO.toml")
    where = batch.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--partitions",
        metavar="FILE",
        help="polygons (name column; optional source column per partition)",
    )
    where.add_argument("--tile-km", type=float, metavar="N", help="square tiles of N km")
    batch.add_argument("--scheduler", metavar="ADDRESS", help="a running dask scheduler")
    batch.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    batch.add_argument(
        "--retries",
        type=int,
        default=1,
        help="retries of a failed partition before it is reported (default 1)",
    )
    batch.add_argument(
        "--buffer-m",
        type=float,
        default=None,
        metavar="M",
        help="network read around each partition (default: the largest tier distance × 2, "
        "which makes results equal a whole-area run)",
    )
    batch.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default: the scenario's output.dir)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default: the scenario's output.dir)",
    )
    run.add_argument("--lang", choices=["zh", "en"], default=None, help="labels language")
    run.add_argument("--tiles", default=None, metavar="osm|none|URL", help="base map tiles")

    cov = sub.add_parser(
        "coverage",
        parents=[common],
        help="walking coverage of residents by centres and stations",
        description="Walking coverage of residents by centres and stations, per tier.",
        epilog="examples:\n"
        "  servicecircle coverage demo --out out/\n"
        "  servicecircle coverage district.osm.pbf --facilities stations.geojson --out out/\n"
        "  servicecircle coverage area.osm.bz2 --facilities osm --preset gb50180 --goal 0.99 "
        "--cells grid/cells.gpkg --service-areas --out out/\n\n"
        "exit codes: 0 success, 2 bad input.\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cov.add_argument(
        "area",
        metavar="AREA",
        help="an OSM file (.osm.pbf, .osm, .osm.bz2), a .graphml walk network, or 'demo'",
    )
    cov.add_argument(
        "--facilities",
        metavar="FILE",
        help="facility file (.geojson/.gpkg/.csv with id, kind, lon, lat), 'osm' "
        "to take them from the area's OSM tags, or 'demo' (default for the demo "
        "area)",
    )
    cov.add_argument(
        "--demand",
        metavar="FILE",
        help="demand file with a population column (default: residents "
        "estimated from the area's buildings)",
    )
    cov.add_argument(
        "--tier",
        action="append",
        default=[],
        metavar="NAME=METRES[:KIND,KIND]",
        help="a tier, repeatable; METRES may be '<N>min' (60 m/min). Default: "
        "centre_15min=1000:centre and station_5min=300:station,centre",
    )
    cov.add_argument(
        "--preset",
        default=None,
        metavar="NAME",
        help="a tier preset: 'default' or 'gb50180' (adds the 800 m and 500 m circles)",
    )
    cov.add_argument(
        "--goal",
        type=float,
        default=None,
        metavar="SHARE",
        help="coverage goal for every tier, e.g. 0.85 or 0.99 (default 0.85)",
    )
    cov.add_argument(
        "--snap-limit-m",
        type=float,
        default=300.0,
        metavar="M",
        help="points farther than this from any street are reported unreachable (default 300)",
    )
    cov.add_argument(
        "--boundary",
        metavar="FILE|W,S,E,N",
        help="clip the area to this polygon file or lon/lat box",
    )
    cov.add_argument(
        "--cells",
        metavar="FILE",
        help="polygons to roll coverage up to (grid cells, communities); writes "
        "cells.gpkg and cells.csv",
    )
    cov.add_argument(
        "--service-areas",
        action="store_true",
        help="write service_areas.gpkg: the streets reachable within each tier "
        "from each facility, buffered, and their union",
    )
    cov.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    _map_options(cov)

    grid = sub.add_parser(
        "grid",
        parents=[common],
        help="build grid cells over an area: square, hex, H3 or governance grids (网格)",
        description="Build grid cells over an area with population and households per cell. "
        "Governance grids merge street blocks into grids of a target household range.",
        epilog="examples:\n"
        "  servicecircle grid demo --kind hex --size-m 250 --out grid/\n"
        "  servicecircle grid area.osm.bz2 --kind governance --households 300:500 "
        "--communities communities.gpkg --out grid/\n"
        "  servicecircle coverage area.osm.bz2 --facilities f.csv --cells grid/cells.gpkg "
        "--out out/\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grid.add_argument(
        "area", metavar="AREA", help="an OSM file, a .graphml walk network, or 'demo'"
    )
    grid.add_argument("--kind", required=True, choices=["square", "hex", "h3", "governance"])
    grid.add_argument(
        "--size-m",
        type=float,
        metavar="N",
        help="cell size in metres (square side; hex: distance between centres)",
    )
    grid.add_argument("--h3-res", type=int, metavar="R", help="H3 resolution, 0–15")
    grid.add_argument(
        "--households",
        metavar="MIN:MAX",
        help="governance grids: target households per grid (default 300:500)",
    )
    grid.add_argument(
        "--communities",
        metavar="FILE",
        help="governance grids: community polygons (code column) not to cross",
    )
    grid.add_argument(
        "--demand",
        metavar="FILE",
        help="demand file with population (and households); default: buildings",
    )
    grid.add_argument("--boundary", metavar="FILE|W,S,E,N", help="clip the area first")
    grid.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")

    prop = sub.add_parser(
        "propose",
        parents=[common],
        help="propose where new stations or centres should go",
        description="Propose new sites for one tier: --new K sites that cover the most "
        "residents (maximal coverage), or the fewest sites that reach --goal SHARE (set "
        "cover). Existing facilities stay where they are.",
        epilog="examples:\n"
        "  servicecircle propose demo --tier station_5min --new 3 --out prop/\n"
        "  servicecircle propose area.osm.bz2 --facilities f.csv --tier centre_15min "
        "--goal 0.85 --out prop/\n"
        "  servicecircle propose demo --tier station_5min --new 2 --capacity 3000 --out prop/\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prop.add_argument(
        "area", metavar="AREA", help="an OSM file, a .graphml walk network, or 'demo'"
    )
    prop.add_argument(
        "--tier",
        required=True,
        metavar="NAME",
        help="a preset tier (station_5min, centre_15min, station_10min, …) or "
        "NAME=METRES[:KIND,KIND]",
    )
    how = prop.add_mutually_exclusive_group(required=True)
    how.add_argument("--new", type=int, metavar="K", help="how many new sites")
    how.add_argument(
        "--goal",
        type=float,
        metavar="SHARE",
        help="the fewest sites so that this share of residents is covered",
    )
    prop.add_argument(
        "--facilities",
        metavar="FILE",
        help="existing facilities (file, 'osm' or 'demo'; default 'demo' for the "
        "demo area, none elsewhere)",
    )
    prop.add_argument("--demand", metavar="FILE", help="demand file (default: buildings)")
    prop.add_argument(
        "--candidates",
        metavar="FILE",
        help="candidate sites file, or 'network' / 'osm' (default: both: points "
        "along the streets and OSM features that can host a station)",
    )
    prop.add_argument(
        "--spacing-m",
        type=float,
        default=100.0,
        metavar="M",
        help="spacing of candidates along the streets (default 100)",
    )
    prop.add_argument(
        "--exclusion-m",
        type=float,
        default=50.0,
        metavar="M",
        help="drop candidates this close to an existing facility (default 50)",
    )
    prop.add_argument(
        "--method",
        choices=["exact", "greedy"],
        default="exact",
        help="exact (HiGHS, with a time limit) or greedy (fast, with a bound)",
    )
    prop.add_argument(
        "--capacity", type=float, metavar="C", help="at most C residents served per facility"
    )
    prop.add_argument(
        "--time-limit-s",
        type=float,
        default=60.0,
        metavar="S",
        help="solver time limit (default 60)",
    )
    prop.add_argument(
        "--centres",
        type=int,
        metavar="K",
        help="two-level plan (一中心多站点): first K new centres for the 15-minute tier "
        "(centre_15min), then the stations asked for by --tier and --new/--goal, with every "
        "centre counting as a station",
    )
    prop.add_argument("--boundary", metavar="FILE|W,S,E,N", help="clip the area first")
    prop.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    _map_options(prop)
    return parser


def _run_scenario(args: argparse.Namespace, path: str, out: Path | None) -> int:
    from dataclasses import replace

    from .plan import run_scenario
    from .scenario import load_scenario

    sc = load_scenario(path)
    output = dict(sc.output)
    if getattr(args, "lang", None):
        output["lang"] = args.lang
    if getattr(args, "tiles", None):
        output["tiles"] = args.tiles
    sc = replace(sc, output=output)
    steps = ["area", "demand", "grid", "coverage", "siting", "map", "report"]
    progress = _Progress(steps, enabled=not args.quiet and sys.stderr.isatty())
    try:
        summary = run_scenario(sc, out_dir=out, step=progress)
    finally:
        progress.close()
    if not args.quiet:
        _print_summary(summary, Path(summary["out_dir"]))
        if "siting" in summary:
            s = summary["siting"]
            print(f"  siting: {s['proposals']} new sites ({s['model']}, {s['method']})")
        print(f"open {Path(summary['out_dir']) / 'coverage_map.html'} and report.html in a browser")
    return 0


def _run_batch(args: argparse.Namespace) -> int:
    from .batch import read_partitions, run_batch, tile_partitions
    from .scenario import load_scenario

    sc = load_scenario(args.scenario)
    if args.partitions:
        parts = read_partitions(args.partitions)
    else:
        import shapely

        if isinstance(sc.area.get("boundary"), list):
            boundary = shapely.box(*sc.area["boundary"])
        else:  # the area's own extent (reads the file once here; give area.boundary for big ones)
            from .area import load_area

            boundary = load_area(sc.area["source"]).boundary_wgs84()
        parts = tile_partitions(boundary, args.tile_km)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(parts), unit="partition", file=sys.stderr)

    def done(name: str, status: str) -> None:
        if bar is not None:
            bar.set_description(name)
            bar.update(1)
        elif not args.quiet:
            print(f"  {name}: {status}", file=sys.stderr)

    try:
        summary = run_batch(
            sc.path,
            parts,
            out_dir=args.out,
            scheduler=args.scheduler,
            n_workers=args.workers,
            retries=args.retries,
            on_done=done,
            buffer_m=args.buffer_m,
        )
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        ok = summary["partitions"] - len(summary["failed"])
        print(f"{ok} of {summary['partitions']} partitions done")
        for name, t in summary.get("tiers", {}).items():
            share = "n/a" if t["share"] is None else f"{t['share']:.1%}"
            print(f"  {name:<22} ≤ {t['target_m']:>6.0f} m  covered {share}")
        print(f"wrote coverage.csv, partitions.csv, summary.json to {summary['out_dir']}")
    for name, error in summary["failed"].items():
        print(f"servicecircle: error: partition {name} failed: {error}", file=sys.stderr)
    return 2 if summary["failed"] else 0


def _run_two_level(args: argparse.Namespace, area: Any, tier: Any, facilities: Any) -> int:
    from .plan import run_two_level, tier_by_name

    if args.capacity is not None:
        raise InputError("--capacity cannot be combined with --centres (the two-level plan)")
    report = run_two_level(
        area,
        centres_new=args.centres,
        stations_new=args.new,
        stations_goal=args.goal,
        centre_tier=tier_by_name("centre_15min"),
        station_tier=tier,
        facilities=facilities,
        **_siting_options(args),
    )
    if not args.quiet:
        for level in ("centres", "stations"):
            r = report["levels"][level]
            print(
                f"{level}: {r['tier']['name']} (≤ {r['tier']['target_m']:.0f} m): "
                f"{r['proposals']} new, covered {r['share_before']:.1%} → "
                f"{r['share_after']:.1%}" + (" (proven optimal)" if r["optimal"] else "")
            )
        print(f"wrote proposals.geojson, proposals.gpkg, siting.json to {args.out}")
    return 0


def _siting_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options `propose` hands to both the one-level and the two-level plan."""
    return {
        "demand": args.demand,
        "candidates": args.candidates,
        "spacing_m": args.spacing_m,
        "exclusion_m": args.exclusion_m,
        "method": args.method,
        "time_limit_s": args.time_limit_s,
        "out_dir": args.out,
        "write_map": not args.no_map,
        "lang": args.lang,
        "tiles": args.tiles,
    }


def _run_propose(args: argparse.Namespace) -> int:
    from .area import DEMO, load_area
    from .plan import DEMO_FACILITIES, run_propose, tier_by_name

    tier = tier_by_name(args.tier)
    area = load_area(args.area, boundary=_boundary(args.boundary))
    facilities = args.facilities
    if facilities is None and args.area == DEMO:
        facilities = DEMO_FACILITIES
    if args.centres is not None:
        return _run_two_level(args, area, tier, facilities)
    report = run_propose(
        area,
        tier=tier,
        new=args.new,
        goal=args.goal,
        facilities=facilities,
        capacity=args.capacity,
        **_siting_options(args),
    )
    if not args.quiet:
        before, after = report["share_before"], report["share_after"]
        print(
            f"{report['area']}: {report['tier']['name']} (≤ {tier.target_m:.0f} m), "
            f"{report['model']} by {report['method']}: {report['proposals']} new sites, "
            f"covered {before:.1%} → {after:.1%}"
            + (
                " (proven optimal)"
                if report["optimal"]
                else f" (gap {report['gap']:.1%})"
                if report["gap"] is not None
                else ""
            )
        )
        for i, g in enumerate(report["marginal_gains"], 1):
            pid = report["_proposals"]["id"].iloc[i - 1]
            print(f"  #{i:<3} {pid:<16} +{g:,.0f} residents")
        print(f"wrote proposals.geojson, proposals.gpkg, siting.json to {args.out}")
    return 0


def _households(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = text.split(":")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"--households must be MIN:MAX, e.g. 300:500; got {text!r}") from None
    return lo, hi


def _run_grid(args: argparse.Namespace) -> int:
    from .area import load_area
    from .plan import run_grid

    if args.kind in ("square", "hex") and args.size_m is None:
        raise InputError(f"--kind {args.kind} needs --size-m N (metres)")
    area = load_area(args.area, boundary=_boundary(args.boundary))
    _cells, summary = run_grid(
        area,
        kind=args.kind,
        size_m=args.size_m,
        h3_res=args.h3_res,
        households=_households(args.households),
        communities=args.communities,
        demand=args.demand,
        out_dir=args.out,
    )
    if not args.quiet:
        hh = summary["households"]
        print(
            f"{summary['area']}: {summary['count']} {args.kind} cells, households per cell "
            f"min {hh['min']:.0f} / median {hh['median']:.0f} / max {hh['max']:.0f}"
        )
        if summary["flagged"]:
            print(f"  {len(summary['flagged'])} cells flagged (see grid_summary.json)")
        print(f"wrote cells.gpkg, grid_summary.json to {args.out}")
    return 0


def _map_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-map", action="store_true", help="do not write the HTML map")
    p.add_argument(
        "--lang",
        choices=["zh", "en"],
        default="zh",
        help="map labels: Chinese (default) or English",
    )
    p.add_argument(
        "--tiles",
        default="osm",
        metavar="osm|none|URL",
        help="base map tiles (default osm; 'none' for a plain background)",
    )


def _tiers(args: argparse.Namespace) -> tuple[Any, ...]:
    from .tiers import DEFAULT_GOAL, check_unique, parse_tier, preset

    goal = DEFAULT_GOAL if args.goal is None else args.goal
    if not 0 < goal <= 1:
        raise InputError(f"--goal must be a share in (0, 1], e.g. 0.85; got {args.goal}")
    tiers: list[Any] = []
    if args.preset:
        tiers += [t.with_goal(goal) for t in preset(args.preset)]
    tiers += [parse_tier(t, goal=goal) for t in args.tier]
    if not tiers:
        tiers = [t.with_goal(goal) for t in preset("default")]
    return check_unique(tiers)


class _Progress:
    """A progress bar over the named steps of a run (off with -q or when not a terminal)."""

    def __init__(self, steps: Sequence[str], enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(steps), unit="step", file=sys.stderr, leave=False)

    def __call__(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description(name)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_coverage(
    args: argparse.Namespace,
    *,
    area_source: str,
    facilities: str | None,
    out: Path,
    tiers: tuple[Any, ...],
    demand: str | None = None,
    snap_limit_m: float = 300.0,
    boundary: Any = None,
    cells: str | None = None,
    service_areas: bool = False,
) -> int:
    from .area import DEMO, load_area
    from .plan import DEMO_FACILITIES, run_coverage

    if facilities is None:
        if area_source != DEMO:
            raise InputError(
                "--facilities is required: give a facility file (.geojson/.gpkg/.csv with id, "
                "kind, lon, lat) or 'osm' to take them from the area's OSM tags"
            )
        facilities = DEMO_FACILITIES
    progress = _Progress(
        ["area", "network", "demand", "facilities", "coverage", "cells", "service areas", "write"],
        enabled=not args.quiet and sys.stderr.isatty(),
    )
    try:
        progress("area")
        area = load_area(area_source, boundary=boundary)
        result = run_coverage(
            area,
            facilities=facilities,
            demand=demand,
            tiers=tiers,
            snap_limit_m=snap_limit_m,
            out_dir=out,
            write_map=not args.no_map,
            lang=args.lang,
            tiles=args.tiles,
            step=progress,
            cells=cells,
            write_service_areas=service_areas,
        )
    finally:
        progress.close()
    if not args.quiet:
        _print_summary(result.summary, out)
    return 0


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    res = summary["residents"]
    print(
        f"{summary['area']['name']}: {summary['demand_points']} demand points, {res:,.0f} residents"
    )
    for name, t in summary["tiers"].items():
        share = "n/a" if t["share"] is None else f"{t['share']:.1%}"
        verdict = {True: "PASS", False: "FAIL", None: "n/a (no residents)"}[t["pass"]]
        print(
            f"  {name:<22} ≤ {t['target_m']:>6.0f} m  covered {t['covered_residents']:>10,.0f}"
            f"  {share:>6}  goal {t['goal']:.0%}  {verdict}"
            + ("  (no facility of this kind given)" if t.get("facilities") == 0 else "")
        )
    if summary["unreachable_demand_points"]:
        print(
            f"  {summary['unreachable_demand_points']} demand points farther than "
            f"{summary['snap_limit_m']:.0f} m from any street (not covered)"
        )
    if summary["facilities"]["unsnapped"]:
        print(
            f"  {summary['facilities']['unsnapped']} facilities farther than "
            f"{summary['snap_limit_m']:.0f} m from any street (not used): "
            + ", ".join(summary["facilities"]["unsnapped_ids"][:5])
        )
    print(f"wrote {', '.join(summary.get('files', []))} to {out}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``servicecircle`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (
        logging.ERROR
        if args.quiet
        else (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("servicecircle").setLevel(level)
    try:
        if args.command == "demo":
            from .plan import packaged_data

            out = args.out or default_demo_out()
            return _run_scenario(args, str(packaged_data("demo_scenario.toml")), out)
        if args.command == "batch":
            return _run_batch(args)
        if args.command == "run":
            return _run_scenario(args, args.scenario, args.out)
        if args.command == "propose":
            return _run_propose(args)
        if args.command == "grid":
            return _run_grid(args)
        if args.command == "coverage":
            return _run_coverage(
                args,
                area_source=args.area,
                facilities=args.facilities,
                out=args.out,
                tiers=_tiers(args),
                demand=args.demand,
                snap_limit_m=args.snap_limit_m,
                boundary=_boundary(args.boundary),
                cells=args.cells,
                service_areas=args.service_areas,
            )
    except ServiceCircleError as err:
        print(f"servicecircle: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print("servicecircle: interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")  # pragma: no cover
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
