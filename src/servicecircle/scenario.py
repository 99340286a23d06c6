"""Scenarios: a whole plan in one TOML file, validated before anything runs.

A scenario names the area, demand, facilities, tiers, an optional grid, optional siting and
the outputs. Every problem is reported at once, each naming its key (``grid.size_m``) and the
fix. Paths are relative to the scenario file.

Example (``data/demo_scenario.toml``)::

    [area]
    source = "demo"

    [facilities]
    source = "demo"

    [tiers]
    preset = "default"
    goal = 0.85

    [grid]
    kind = "governance"
    households = [300, 500]

    [siting]
    tier = "station_5min"
    new = 3

    [output]
    dir = "maps"
"""

from __future__ import annotations

import difflib
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import InputError, InputFileNotFoundError
from .tiers import KINDS, PRESETS, Tier

log = logging.getLogger(__name__)

SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], str]]] = {
    "scenario": {"name": (str, "a name for the plan")},
    "segments": {
        "names": (list, 'segments counted at their own pace (default ["elderly", "children"])'),
        "shares": (dict, "shares of the population, e.g. {elderly = 0.187}"),
        "speeds": (dict, "walking speeds in m/s, e.g. {elderly = 0.8}"),
        "workers": (str, "'buildings' or a file with a workers column"),
    },
    "audit": {
        "pois": (str, "'osm' (the area's POIs by the standard's rules) or a POI file"),
        "standard": (str, "'gb50180' or a standard file of your own"),
        "map": (bool, "write audit_map.html (default true)"),
    },
    "input": {
        "coords": (str, "coordinates of the files: wgs84, gcj02 (Amap) or bd09 (Baidu)"),
        "sheet": (str, "the Excel sheet to read from .xlsx files"),
    },
    "area": {
        "source": (str, "an OSM file (.osm.pbf, .osm, .osm.bz2), a .graphml, or 'demo'"),
        "boundary": ((str, list), "a polygon file, or [west, south, east, north] in degrees"),
        "name": (str, "the area's name"),
        "fragment_max_nodes": (int, "street pieces with fewer nodes are fragments (default 100)"),
        "fragment_max_m": ((int, float), "… and less street than this, metres (default 2000)"),
        "keep_fragments": (bool, "snap onto fragments like any street (default false)"),
    },
    "demand": {
        "source": (str, "'buildings' or a file with a population column"),
        "floor_area_per_resident_m2": ((int, float), "m² of floor per resident (default 40)"),
        "default_levels": ((int, float), "levels when building:levels is missing (default 6)"),
        "household_size": ((int, float), "residents per household (default 2.62)"),
    },
    "facilities": {"source": (str, "a facility file, 'osm' or 'demo'")},
    "tiers": {
        "preset": (str, f"one of {', '.join(sorted(PRESETS))}"),
        "goal": ((int, float), "coverage goal for every tier, a share in (0, 1]"),
        "tier": (list, "a list of [[tiers.tier]] tables with name, metres or minutes, kinds"),
        "speed_m_per_min": ((int, float), "walking speed for tiers in minutes (default 60)"),
        "labels": (dict, "display names per tier id, e.g. {station_5min = '5分钟驿站圈'}"),
    },
    "grid": {
        "kind": (str, "square, hex, h3 or governance"),
        "size_m": ((int, float), "cell size in metres (square, hex)"),
        "h3_res": (int, "H3 resolution, 0–15"),
        "households": (list, "[MIN, MAX] households per governance grid"),
        "communities": (str, "a file of community polygons"),
    },
    "siting": {
        "tier": (str, "the tier to site for (a tier name)"),
        "new": (int, "how many new sites"),
        "goal": ((int, float), "the fewest sites that reach this share"),
        "centres": (int, "two-level plan: new centres first"),
        "method": (str, "exact or greedy"),
        "capacity": ((int, float), "residents per facility at most"),
        "candidates": (str, "a candidate file, 'network' or 'osm'"),
        "spacing_m": ((int, float), "candidate spacing along streets (default 100)"),
        "exclusion_m": ((int, float), "drop candidates this close to a facility (default 50)"),
        "time_limit_s": ((int, float), "solver time limit (default 60)"),
        "segment": (str, "site for one demand segment at its own pace (e.g. elderly)"),
        "weights": (dict, "count segments more, e.g. {elderly = 2}"),
    },
    "output": {
        "dir": (str, "output folder (relative to the scenario file)"),
        "map": (bool, "write the HTML map (default true)"),
        "report": (bool, "write report.html (default true)"),
        "service_areas": (bool, "write service_areas.gpkg and show them on the map"),
        "lang": (str, "zh or en"),
        "tiles": (str, "osm, none or a tile URL"),
        "snap_limit_m": ((int, float), "snap limit in metres (default 300)"),
        "whatif": (bool, "with [siting]: write whatif.html, the what-if page (default false)"),
        "whatif_candidates": (int, "other candidates on the what-if page (default 200)"),
    },
}
TIER_KEYS = {"name", "metres", "minutes", "kinds", "goal", "label"}


@dataclass(frozen=True)
class Scenario:
    """A validated scenario (paths resolved against the scenario file's folder)."""

    path: Path
    name: str
    area: dict[str, Any]
    demand: dict[str, Any]
    facilities: dict[str, Any]
    tiers: tuple[Tier, ...]
    grid: dict[str, Any] | None
    siting: dict[str, Any] | None
    output: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    segments: tuple[Any, ...] | None = None
    workers: str | None = None
    audit: dict[str, Any] | None = None


def _suggest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(options)})"


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raise one :class:`InputError` listing every problem."""
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"scenario {path}: no such file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"scenario {path}: not valid TOML ({err})") from err
    except UnicodeDecodeError as err:
        raise InputError(f"scenario {path}: not UTF-8 text ({err})") from err
    problems: list[str] = []
    wrong: list[tuple[str, str]] = []
    base = path.parent

    for section, body in raw.items():
        if section not in SCHEMA:
            problems.append(f"unknown section [{section}]{_suggest(section, list(SCHEMA))}")
            continue
        if not isinstance(body, dict):
            problems.append(f"[{section}] must be a table")
            continue
        for key, value in body.items():
            spec = SCHEMA[section].get(key)
            if spec is None:
                problems.append(
                    f"unknown key '{section}.{key}'{_suggest(key, list(SCHEMA[section]))}"
                )
                continue
            types, meaning = spec
            allowed = types if isinstance(types, tuple) else (types,)
            if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, types):
                problems.append(f"'{section}.{key}' must be {meaning}; got {value!r}")
                wrong.append((section, key))

    def get(section: str) -> dict[str, Any]:
        """The section without the keys already reported as of the wrong type."""
        body = raw.get(section, {})
        body = dict(body) if isinstance(body, dict) else {}
        return {k: v for k, v in body.items() if (section, k) not in wrong}

    area = get("area")
    if "source" not in area:
        problems.append("'area.source' is missing: give an OSM file or 'demo'")
    else:
        area["source"] = _resolve(area["source"], base, problems, "area.source", ("demo",))
    if isinstance(area.get("boundary"), str):
        area["boundary"] = _resolve(area["boundary"], base, problems, "area.boundary", ())
    elif isinstance(area.get("boundary"), list) and len(area["boundary"]) != 4:
        problems.append("'area.boundary' must be [west, south, east, north]")
    demand = get("demand")
    if "source" in demand and isinstance(demand["source"], str):
        demand["source"] = _resolve(
            demand["source"], base, problems, "demand.source", ("buildings",)
        )
    facilities = get("facilities")
    if "source" not in facilities:
        problems.append("'facilities.source' is missing: give a facility file, 'osm' or 'demo'")
    elif isinstance(facilities["source"], str):
        facilities["source"] = _resolve(
            facilities["source"], base, problems, "facilities.source", ("osm", "demo")
        )
    tiers = _tiers(get("tiers"), problems)
    grid = _check_grid(get("grid") or None, base, problems)
    siting = _check_siting(get("siting") or None, tiers, base, problems)
    segments, workers = _check_segments(get("segments"), base, problems)
    audit = get("audit") if "audit" in raw else None
    if audit is not None:
        if isinstance(audit.get("pois"), str):
            audit["pois"] = _resolve(audit["pois"], base, problems, "audit.pois", ("osm",))
        if isinstance(audit.get("standard"), str):
            audit["standard"] = _resolve(
                audit["standard"], base, problems, "audit.standard", ("gb50180",)
            )
    inputs = get("input")
    if inputs.get("coords", "wgs84") not in ("wgs84", "gcj02", "bd09"):
        problems.append(f"'input.coords' must be wgs84, gcj02 or bd09; got {inputs['coords']!r}")
    output = get("output")
    if output.get("lang", "zh") not in ("zh", "en"):
        problems.append(f"'output.lang' must be zh or en; got {output['lang']!r}")
    if output.get("whatif") and siting is None:
        problems.append("'output.whatif' needs a [siting] section (the page shows its proposals)")
    if output.get("whatif_candidates", 0) < 0:
        problems.append("'output.whatif_candidates' must be 0 or more")
    output["dir"] = str((base / output.get("dir", "out")).resolve())
    if problems:
        lines = "; ".join(problems)
        raise InputError(f"scenario {path}: {lines}")
    name = str(raw.get("scenario", {}).get("name", path.stem))
    return Scenario(
        path, name, area, demand, facilities, tiers, grid, siting, output, inputs, segments,
        workers, audit,
    )  # fmt: skip


def _check_grid(
    grid: dict[str, Any] | None, base: Path, problems: list[str]
) -> dict[str, Any] | None:
    """Problems of the ``[grid]`` section (appended to ``problems``); paths resolved."""
    if grid is not None:
        kind = grid.get("kind")
        if kind not in ("square", "hex", "h3", "governance"):
            problems.append(f"'grid.kind' must be square, hex, h3 or governance; got {kind!r}")
        if kind in ("square", "hex") and "size_m" not in grid:
            problems.append(f"'grid.size_m' is missing: a {kind} grid needs a cell size in metres")
        if "size_m" in grid and isinstance(grid["size_m"], int | float) and grid["size_m"] <= 0:
            problems.append(f"'grid.size_m' must be positive metres; got {grid['size_m']}")
        if kind == "h3" and "h3_res" not in grid:
            problems.append("'grid.h3_res' is missing: an H3 grid needs a resolution (0–15)")
        hh = grid.get("households")
        if hh is not None and (
            len(hh) != 2
            or not all(isinstance(v, int | float) for v in hh)
            or not 0 < hh[0] <= hh[1]
        ):
            problems.append(f"'grid.households' must be [MIN, MAX] with 0 < MIN ≤ MAX; got {hh}")
        if "communities" in grid:
            grid["communities"] = _resolve(
                grid["communities"], base, problems, "grid.communities", ()
            )
    return grid


def _check_siting(
    siting: dict[str, Any] | None, tiers: tuple[Tier, ...], base: Path, problems: list[str]
) -> dict[str, Any] | None:
    """Problems of the ``[siting]`` section (appended to ``problems``); paths resolved."""
    if siting is not None:
        if ("new" in siting) == ("goal" in siting):
            problems.append("[siting] needs exactly one of 'siting.new' or 'siting.goal'")
        if isinstance(siting.get("new"), int) and siting["new"] <= 0:
            problems.append(f"'siting.new' must be at least 1; got {siting['new']}")
        g = siting.get("goal")
        if isinstance(g, int | float) and not 0 < g <= 1:
            problems.append(f"'siting.goal' must be a share in (0, 1]; got {g}")
        if siting.get("method", "exact") not in ("exact", "greedy"):
            problems.append(f"'siting.method' must be exact or greedy; got {siting['method']!r}")
        if "tier" not in siting:
            problems.append("'siting.tier' is missing: name the tier to site for")
        elif tiers and siting["tier"] not in {t.name for t in tiers}:
            problems.append(
                f"'siting.tier' = {siting['tier']!r} is not one of the scenario's tiers "
                f"({', '.join(t.name for t in tiers)})"
            )
        if isinstance(siting.get("candidates"), str):
            siting["candidates"] = _resolve(
                siting["candidates"],
                base,
                problems,
                "siting.candidates",
                ("network", "osm", "default"),
            )
    return siting


def _check_segments(
    body: dict[str, Any], base: Path, problems: list[str]
) -> tuple[tuple[Any, ...] | None, str | None]:
    """The ``[segments]`` section: problems appended; the segments (None = the defaults)."""
    from .segments import choose_segments

    workers = body.get("workers")
    if isinstance(workers, str):
        workers = _resolve(workers, base, problems, "segments.workers", ("buildings",))
    if not body or set(body) == {"workers"}:
        return None, workers
    names = body.get("names")
    try:
        return choose_segments(
            names, shares=body.get("shares"), speeds=body.get("speeds")
        ), workers  # fmt: skip
    except (InputError, TypeError, ValueError) as err:
        problems.append(f"[segments]: {err}")
        return None, workers


def _resolve(value: str, base: Path, problems: list[str], key: str, words: tuple[str, ...]) -> str:
    if value in words:
        return value
    candidate = (base / value).resolve()
    if not candidate.exists():
        problems.append(f"'{key}' = {value!r}: no such file (paths are relative to the scenario)")
        return value
    return str(candidate)


def _tiers(body: dict[str, Any], problems: list[str]) -> tuple[Tier, ...]:
    from .tiers import DEFAULT_GOAL, DEFAULT_SPEED_M_PER_MIN, minutes_to_m

    goal = body.get("goal", DEFAULT_GOAL)
    if isinstance(goal, int | float) and not 0 < goal <= 1:
        problems.append(f"'tiers.goal' must be a share in (0, 1]; got {goal}")
        goal = DEFAULT_GOAL
    speed = body.get("speed_m_per_min", DEFAULT_SPEED_M_PER_MIN)
    tiers: list[Tier] = []
    if "preset" in body:
        if body["preset"] not in PRESETS:
            problems.append(
                f"'tiers.preset' = {body['preset']!r} is unknown; use one of "
                f"{', '.join(sorted(PRESETS))}"
            )
        else:
            tiers += [t.with_goal(goal) for t in PRESETS[body["preset"]]]
    for i, t in enumerate(body.get("tier", []) or []):
        where = f"tiers.tier[{i}]"
        if not isinstance(t, dict):
            problems.append(f"'{where}' must be a table")
            continue
        for key in t:
            if key not in TIER_KEYS:
                problems.append(f"unknown key '{where}.{key}'{_suggest(key, sorted(TIER_KEYS))}")
        name = t.get("name")
        if not isinstance(name, str):
            problems.append(f"'{where}.name' is missing")
            continue
        if ("metres" in t) == ("minutes" in t):
            problems.append(f"'{where}' needs exactly one of 'metres' or 'minutes'")
            continue
        value = t.get("metres", t.get("minutes"))
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            unit = "metres" if "metres" in t else "minutes"
            problems.append(f"'{where}.{unit}' must be a positive number; got {value!r}")
            continue
        kinds = t.get("kinds", ["centre"] if name.startswith("centre") else ["station", "centre"])
        if not isinstance(kinds, list) or any(k not in KINDS for k in kinds):
            problems.append(f"'{where}.kinds' must be a list of {', '.join(KINDS)}; got {kinds!r}")
            continue
        tier_goal = t.get("goal", goal)
        if not isinstance(tier_goal, int | float) or not 0 < tier_goal <= 1:
            problems.append(f"'{where}.goal' must be a share in (0, 1]; got {tier_goal!r}")
            continue
        try:
            if "minutes" in t:
                tier = Tier(name, minutes_to_m(value, speed), tuple(kinds), tier_goal, float(value))
            else:
                tier = Tier(name, float(value), tuple(kinds), tier_goal)
            if isinstance(t.get("label"), str):
                tier = tier.with_label(t["label"])
            tiers.append(tier)
        except InputError as err:
            problems.append(f"'{where}': {err}")
    if not tiers and "tier" not in body and "preset" not in body:
        tiers = [t.with_goal(goal) for t in PRESETS["default"]]
    names = [t.name for t in tiers]
    for n in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"tier {n!r} is defined twice")
    labels = body.get("labels", {})
    if isinstance(labels, dict):
        for key, text in labels.items():
            if key not in names:
                problems.append(f"'tiers.labels.{key}': no such tier{_suggest(key, names)}")
            elif not isinstance(text, str) or not text.strip():
                problems.append(f"'tiers.labels.{key}' must be a text; got {text!r}")
        tiers = [t.with_label(labels[t.name]) if isinstance(labels.get(t.name), str) else t
                 for t in tiers]  # fmt: skip
    return tuple(tiers)
