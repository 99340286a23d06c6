"""The command line's options: each shared option declared once, one small builder per command."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from .shared import (
    add_area,
    add_cache,
    add_demand,
    add_facilities,
    add_fragments,
    add_input,
    add_out,
    add_pages,
    add_segments,
    add_snap,
    add_tier_labels,
    add_verbosity,
)

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


def _sub(
    sub: Any, name: str, common: argparse.ArgumentParser, help_: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        parents=[common],
        help=help_,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


# --------------------------------------------------------------------------- commands
def demo_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = _sub(
        sub,
        "demo",
        common,
        "run the whole pipeline on the embedded demo area (Helsinki centre)",
        "Run the whole pipeline on the embedded demo area and write the tables and the map.",
        "example:\n  servicecircle demo --lang en --out demo/\n",
    )
    add_out(p, required=False, default="the repository's maps/ folder in a checkout, else ./maps")
    add_pages(p, no_map=False, default=False)
    add_cache(p)


def _scenario_keys() -> str:
    """Every scenario section and key with what it means, for ``run --help``."""
    from ..scenario import SCHEMA

    lines = []
    for section, keys in SCHEMA.items():
        lines.append(f"  [{section}]")
        lines += [f"    {key:<22} {about}" for key, (_kind, about) in keys.items()]
    return "\n".join(lines) + "\n"


def run_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = _sub(
        sub,
        "run",
        common,
        "run a whole plan from a scenario file (TOML)",
        "Run a whole plan from one scenario file: area, demand, facilities, tiers, grid, siting "
        "and outputs. The file is checked first; every problem is reported with its key.",
        "example:\n  servicecircle run plan.toml --out plan/\n\n"
        "sections and keys (paths are relative to the scenario file):\n" + _scenario_keys(),
    )
    p.add_argument("scenario", metavar="SCENARIO.toml")
    add_out(p, required=False, default="the scenario's output.dir")
    add_pages(p, no_map=False, default=False)
    add_cache(p)


def batch_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = _sub(
        sub,
        "batch",
        common,
        "run a scenario's coverage over many partitions on Dask (a city, a province)",
        "Split a large area into partitions (a polygon file, or square tiles) and run coverage "
        "for each as a Dask task, each reading only its partition plus a buffer of the largest "
        "search distance, so results equal one whole-area run. Without --scheduler a local "
        "cluster of worker processes is started.",
        "examples:\n"
        "  servicecircle batch city.toml --partitions subdistricts.gpkg --out city/\n"
        "  servicecircle batch city.toml --tile-km 5 --workers 2 --out city/\n"
        "  dask scheduler &   # on the scheduler machine; then on each worker machine:\n"
        "  dask worker tcp://SCHEDULER:8786\n"
        "  servicecircle batch city.toml --partitions p.gpkg --scheduler tcp://SCHEDULER:8786 "
        "--out city/\n",
    )
    p.add_argument("scenario", metavar="SCENARIO.toml")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--partitions", metavar="FILE", help="polygons (name column; optional source column)"
    )
    where.add_argument("--tile-km", type=float, metavar="N", help="square tiles of N km")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a running dask scheduler")
    p.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help="retries of a failed partition before it is reported (default 1)",
    )
    p.add_argument(
        "--buffer-m",
        type=float,
        default=None,
        metavar="M",
        help="network read around each partition (default: the largest tier distance × 2, "
        "which makes results equal a whole-area run)",
    )
    add_out(p, required=False, default="the scenario's output.dir")


def coverage_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = _sub(
        sub,
        "coverage",
        common,
        "walking coverage of residents by centres and stations",
        "Walking coverage of residents by centres and stations, per tier.",
        "examples:\n"
        "  servicecircle coverage demo --out out/\n"
        "  servicecircle coverage district.osm.pbf --facilities stations.geojson --out out/\n"
        "  servicecircle coverage area.osm.bz2 --facilities osm --preset gb50180 --goal 0.99 "
        "--cells grid/cells.gpkg --service-areas --out out/\n\n"
        "exit codes: 0 success, 2 bad input.\n",
    )
    add_area(p)
    add_cache(p)
    add_facilities(p)
    add_demand(p)
    add_input(p)
    add_segments(p)
    p.add_argument(
        "--tier",
        action="append",
        default=[],
        metavar="NAME=METRES[:KIND,KIND]",
        help="a tier, repeatable; METRES may be '<N>min' (60 m/min); KIND is centre or station "
        "(中心/站点/驿站 too). Default: centre_15min=1000:centre and "
        "station_5min=300:station,centre",
    )
    add_tier_labels(p)
    p.add_argument(
        "--preset",
        action="append",
        default=None,
        metavar="NAME",
        help="a tier preset, repeatable: 'default', 'gb50180' (adds the 800 m and 500 m "
        "circles) or 'workers' (小哥驿站 within 300 m of workers)",
    )
    p.add_argument(
        "--goal",
        type=float,
        default=None,
        metavar="SHARE",
        help="coverage goal for every tier, e.g. 0.85 or 0.99 (default 0.85)",
    )
    add_snap(p)
    add_fragments(p)
    p.add_argument(
        "--cells",
        metavar="FILE",
        help="polygons to roll coverage up to (grid cells, communities); writes cells.gpkg and "
        "cells.csv",
    )
    p.add_argument(
        "--service-areas",
        action="store_true",
        help="write service_areas.gpkg: the streets reachable within each tier from each "
        "facility, buffered, and their union",
    )
    add_out(p)
    add_pages(p)


def grid_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = _sub(
        sub,
        "grid",
        common,
        "build grid cells over an area: square, hex, H3 or governance grids (网格)",
        "Build grid cells over an area with population and households per cell. Governance "
        "grids merge street blocks into grids of a target household range.",
        "examples:\n"
        "  servicecircle grid demo --kind hex --size-m 250 --out grid/\n"
        "  servicecircle grid area.osm.bz2 --kind governance --households 300:500 "
        "--communities communities.gpkg --out grid/\n"
        "  servicecircle coverage area.osm.bz2 --facilities f.csv --cells grid/cells.gpkg "
        "--out out/\n",
    )
    add_area(p)
    add_cache(p)
    p.add_argument(
        "--kind",
        required=True,
        choices=["square", "hex", "h3", "governance"],
        help="square or hex cells of --size-m, H3 cells of --h3-res, or governance grids (网格) "
        "of --households from street blocks",
    )
    p.add_argument(
        "--size-m",
        type=float,
        metavar="N",
        help="cell size in metres (square side; hex: distance between centres)",
    )
    p.add_argument("--h3-res", type=int, metavar="R", help="H3 resolution, 0–15")
    p.add_argument(
        "--households",
        metavar="MIN:MAX",
        help="governance grids: target households per grid (default 300:500)",
    )
    p.add_argument(
        "--micro-households",
        metavar="MIN:MAX",
        help="governance grids: target households per micro-grid (微网格, default 30:150)",
    )
    p.add_argument(
        "--communities",
        metavar="FILE",
        help="governance grids: community polygons (code column) not to cross",
    )
    add_demand(p)
    add_input(p)
    add_out(p)


def propose_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = _sub(
        sub,
        "propose",
        common,
        "propose where new stations or centres should go",
        "Propose new sites for one tier: --new K sites that cover the most residents (maximal "
        "coverage), or the fewest sites that reach --goal SHARE (set cover). Existing "
        "facilities stay where they are.",
        "examples:\n"
        "  servicecircle propose demo --tier station_5min --new 3 --out prop/\n"
        "  servicecircle propose area.osm.bz2 --facilities f.csv --tier centre_15min "
        "--goal 0.85 --out prop/\n"
        "  servicecircle propose demo --tier station_5min --new 2 --capacity 3000 --out prop/\n"
        "  servicecircle propose demo --centres 1 --tier station_5min --new 3 --out prop/\n",
    )
    add_area(p)
    add_cache(p)
    p.add_argument(
        "--tier",
        required=True,
        metavar="NAME",
        help="a preset tier (station_5min, centre_15min, station_10min, …) or "
        "NAME=METRES[:KIND,KIND]",
    )
    add_tier_labels(p)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--new", type=int, metavar="K", help="how many new sites")
    how.add_argument(
        "--goal",
        type=float,
        metavar="SHARE",
        help="the fewest sites so that this share of residents is covered",
    )
    add_facilities(p, existing=True)
    add_demand(p)
    add_input(p)
    p.add_argument(
        "--candidates",
        metavar="FILE",
        help="candidate sites file, or 'network' / 'osm' (default: both: points along the "
        "streets and OSM features that can host a station)",
    )
    p.add_argument(
        "--spacing-m",
        type=float,
        default=100.0,
        metavar="M",
        help="spacing of candidates along the streets (default 100)",
    )
    p.add_argument(
        "--exclusion-m",
        type=float,
        default=50.0,
        metavar="M",
        help="drop candidates this close to an existing facility (default 50)",
    )
    p.add_argument(
        "--method",
        choices=["exact", "greedy"],
        default="exact",
        help="exact (HiGHS, with a time limit) or greedy (fast, with a bound)",
    )
    p.add_argument(
        "--capacity", type=float, metavar="C", help="at most C residents served per facility"
    )
    p.add_argument(
        "--time-limit-s",
        type=float,
        default=60.0,
        metavar="S",
        help="solver time limit (default 60)",
    )
    p.add_argument(
        "--segment",
        metavar="NAME",
        help="site for one demand segment at its own pace, e.g. elderly (5 minutes = 240 m at "
        "0.8 m/s) or workers (小哥驿站 where the workers are)",
    )
    p.add_argument(
        "--weights",
        metavar="NAME=W,…",
        help="count segments more, e.g. elderly=2 (each older resident twice; also in the "
        "two-level plan)",
    )
    p.add_argument(
        "--centres",
        type=int,
        metavar="K",
        help="two-level plan (一中心多站点): first K new centres for the 15-minute tier "
        "(centre_15min), then the stations asked for by --tier and --new/--goal, with every "
        "centre counting as a station",
    )
    p.add_argument(
        "--whatif",
        action="store_true",
        help="also write whatif.html: one offline page where staff switch facilities and "
        "candidate sites on and off and watch covered residents and pass/fail change",
    )
    p.add_argument(
        "--whatif-candidates",
        type=int,
        default=200,
        metavar="N",
        help="other candidates on the what-if page besides the proposals (default 200)",
    )
    add_snap(p)
    add_fragments(p)
    add_out(p)
    add_pages(p)


def audit_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = _sub(
        sub,
        "audit",
        common,
        "life-circle audit (生活圈体检): which required facility types each resident misses",
        "Audit every resident against every facility type of the 15/10/5-minute life circles "
        "(GB 50180-2018, TD/T 1062-2021, or your own standard file): for each type the walk to "
        "the nearest facility of that type and whether it is within the type's distance; per "
        "resident how many basic types are missing; per cell where that is worst.",
        "examples:\n"
        "  servicecircle audit xinjiekou.osm.bz2 --out audit/\n"
        "  servicecircle audit area.osm.bz2 --pois pois.csv --cells grid/cells.gpkg --out audit/\n"
        "  servicecircle audit area.osm.bz2 --standard my_city.toml --grid hex:300 --out audit/\n",
    )
    add_area(p)
    add_cache(p)
    p.add_argument(
        "--pois",
        default="osm",
        metavar="osm|FILE",
        help="facilities by type: 'osm' (default: the area's OSM POIs found by the standard's "
        "tags and Chinese names) or a file with id, type (a type id or its Chinese name), "
        "optional name",
    )
    add_demand(p)
    add_input(p)
    p.add_argument(
        "--standard",
        default="gb50180",
        metavar="NAME|FILE",
        help="the facility types and distances: 'gb50180' (default, shipped) or your TOML file",
    )
    cells = p.add_mutually_exclusive_group()
    cells.add_argument("--cells", metavar="FILE", help="polygons to roll the audit up to")
    cells.add_argument(
        "--grid",
        metavar="hex:M|square:M|h3:R",
        help="roll up to a regular grid built on the fly, e.g. hex:300",
    )
    add_snap(p)
    add_fragments(p)
    add_out(p)
    add_pages(p)


COMMANDS = (
    demo_parser,
    run_parser,
    batch_parser,
    coverage_parser,
    grid_parser,
    propose_parser,
    audit_parser,
)


class _Parser(argparse.ArgumentParser):
    """A parser whose mistakes are one line and where to look (not the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n  (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``servicecircle`` argument parser."""
    from .. import __version__

    parser = _Parser(
        prog="servicecircle",
        description="Plan community service circles: who is within a 15-minute walk of a "
        "centre and a 5-minute walk of a station, street by street.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"servicecircle {__version__}")
    add_verbosity(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    add_verbosity(common, suppress=True)  # -v/-q also after the command
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for build in COMMANDS:
        build(sub, common)
    return parser
