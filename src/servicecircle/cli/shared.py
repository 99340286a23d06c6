"""The options several commands share, each declared once."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

AREA_HELP = "an OSM file (.osm.pbf, .osm, .osm.bz2), a .graphml walk network, or 'demo'"


def add_area(p: argparse.ArgumentParser) -> None:
    """The positional AREA and ``--boundary``."""
    p.add_argument("area", metavar="AREA", help=AREA_HELP)
    p.add_argument(
        "--boundary",
        metavar="FILE|W,S,E,N",
        help="clip the area to this polygon file or lon/lat box",
    )
    p.add_argument(
        "--boundary-coords",
        choices=["wgs84", "gcj02", "bd09"],
        default=None,
        help="coordinates of --boundary (default: those of --coords; e.g. wgs84 for a box taken "
        "from OSM while the files come from Amap)",
    )


def add_cache(p: argparse.ArgumentParser) -> None:
    """``--cache-dir`` and ``--no-cache``: where parsed areas are kept between runs."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--cache-dir",
        metavar="DIR",
        type=Path,
        help="keep parsed areas here, keyed by the file's content and --boundary, so the next "
        "run on the same file starts at once (default: $SERVICECIRCLE_CACHE_DIR, else the user "
        "cache folder, e.g. ~/.cache/servicecircle; safe to delete)",
    )
    group.add_argument(
        "--no-cache",
        action="store_true",
        help="read the area file anew and store nothing in the cache",
    )


def add_demand(p: argparse.ArgumentParser) -> None:
    """``--demand``."""
    p.add_argument(
        "--demand",
        metavar="FILE",
        help="demand file with a population column (optional households); default: residents "
        "estimated from the area's buildings",
    )


def add_facilities(p: argparse.ArgumentParser, *, existing: bool = False) -> None:
    """``--facilities``."""
    what = "existing facilities" if existing else "facility file"
    p.add_argument(
        "--facilities",
        metavar="FILE",
        help=f"{what} (.geojson/.gpkg/.csv/.xlsx with kind and lon, lat, or 类型, 经度, 纬度; id "
        "(编号) and name (名称) optional), 'osm' to take them from the area's OSM tags, or 'demo' "
        "(default for the demo area)",
    )


def add_out(p: argparse.ArgumentParser, *, required: bool = True, default: str = "") -> None:
    """``--out``."""
    p.add_argument(
        "--out",
        type=Path,
        required=required,
        default=None,
        metavar="DIR",
        help="output folder" + (f" (default: {default})" if default else ""),
    )


def add_snap(p: argparse.ArgumentParser) -> None:
    """``--snap-limit-m``."""
    p.add_argument(
        "--snap-limit-m",
        type=float,
        default=300.0,
        metavar="M",
        help="points farther than this from any street are reported unreachable (default 300)",
    )


def add_segments(p: argparse.ArgumentParser) -> None:
    """``--segments``, ``--segment-shares``, ``--segment-speeds``, ``--workers``."""
    p.add_argument(
        "--segments",
        metavar="NAME,NAME|none",
        help="demand segments counted at their own pace (default elderly,children; any column "
        "of your demand file may be one; 'none' for none)",
    )
    p.add_argument(
        "--segment-shares",
        metavar="NAME=SHARE,…",
        help="shares of the population for points without their own count (default "
        "elderly=0.187,children=0.1795: 2020 census, national, 60+ and 0–14)",
    )
    p.add_argument(
        "--segment-speeds",
        metavar="NAME=M_PER_S,…",
        help="walking speeds (default elderly=0.8,children=0.8,workers=1.0; adults 1.0 as GB "
        "50180 implies)",
    )
    p.add_argument(
        "--workers",
        metavar="buildings|FILE",
        help="workers (新就业群体) as demand: 'buildings' (offices, shops, commercial landuse: "
        "floor area ÷ 30 m²) or a file with a workers column",
    )


def add_tier_labels(p: argparse.ArgumentParser) -> None:
    """``--tier-label NAME=TEXT``."""
    p.add_argument(
        "--tier-label",
        action="append",
        default=[],
        metavar="NAME=TEXT",
        help="display name of a tier on the map, in the report and in Excel (CSV and JSON "
        "keep the id), e.g. --tier-label station_5min=5分钟驿站服务圈; repeatable",
    )


def add_fragments(p: argparse.ArgumentParser) -> None:
    """``--fragment-max-nodes``, ``--fragment-max-m``, ``--keep-fragments``."""
    p.add_argument(
        "--fragment-max-nodes",
        type=int,
        default=100,
        metavar="N",
        help="a disconnected piece of street with fewer nodes (and less street than "
        "--fragment-max-m) is a fragment: points whose nearest street it is walk from the main "
        "network when that is within the snap limit (default 100)",
    )
    p.add_argument(
        "--fragment-max-m",
        type=float,
        default=2000.0,
        metavar="M",
        help="… and less than this many metres of street (default 2000)",
    )
    p.add_argument(
        "--keep-fragments",
        action="store_true",
        help="snap onto fragments like any street (points there may reach nothing)",
    )


def add_input(p: argparse.ArgumentParser) -> None:
    """``--coords`` and ``--sheet``: how the user's files are read."""
    p.add_argument(
        "--coords",
        choices=["wgs84", "gcj02", "bd09"],
        default="wgs84",
        help="coordinates of your files: wgs84 (GPS, OSM; default), gcj02 (Amap 高德, Tencent) "
        "or bd09 (Baidu 百度); converted to WGS84 once when read, and results carry both",
    )
    p.add_argument(
        "--sheet",
        metavar="NAME",
        help="the Excel sheet to read from .xlsx files (default: the first)",
    )


def add_pages(p: argparse.ArgumentParser, *, no_map: bool = True, default: bool = True) -> None:
    """``--no-map``, ``--lang``, ``--tiles`` (defaults ``None`` = the scenario's when
    ``default`` is False)."""
    if no_map:
        p.add_argument(
            "--no-map", action="store_true", help="do not write the HTML map (nor report.html)"
        )
    p.add_argument(
        "--lang",
        choices=["zh", "en"],
        default="zh" if default else None,
        help="map and report labels: Chinese (default) or English",
    )
    p.add_argument(
        "--tiles",
        default="osm" if default else None,
        metavar="osm|tianditu|amap|none|URL",
        help="base map: osm (default), tianditu (天地图, Chinese labels; needs --tianditu-key or "
        "TIANDITU_KEY), amap (高德; every layer drawn in GCJ-02 to sit on its streets), none (a "
        "plain background) or a tile URL with {z}/{x}/{y}",
    )
    p.add_argument("--tianditu-key", metavar="KEY", help="your Tianditu key for --tiles tianditu")


def add_verbosity(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    """``-v`` / ``-q`` (accepted before and after the command)."""
    kw: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="more log output (-vv for debug)",
        **({"default": 0} if not suppress else kw),
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="errors only, no progress",
        **kw,
    )
