"""What each command does: parse its options into library calls, run the workflow, print."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError
from .printing import Progress, print_audit, print_pages, print_summary, tier_line

if TYPE_CHECKING:
    from ..area import Area


def default_demo_out() -> Path:
    """The repository's ``maps/`` folder when run from a checkout, else ``./maps``."""
    here = Path(__file__).resolve()
    repo = here.parents[3]
    if (repo / "pyproject.toml").exists() and (repo / "src" / "servicecircle").is_dir():
        return repo / "maps"
    return Path.cwd() / "maps"


def boundary_coords(args: argparse.Namespace) -> str:
    """The system ``--boundary`` is in: ``--boundary-coords``, else the files' ``--coords``."""
    return str(getattr(args, "boundary_coords", None) or getattr(args, "coords", "wgs84"))


def parse_boundary(text: str | None) -> Any:
    """``--boundary``: a ``W,S,E,N`` box in degrees or a polygon file."""
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) > 1:
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            values = ()
        if len(values) == 4:
            return values
        if len(parts) != 4 or values:
            raise InputError(
                f"--boundary {text!r}: give W,S,E,N (four numbers in degrees, e.g. "
                "118.76,32.03,118.80,32.06) or a polygon file"
            )
    path = Path(text)
    if not path.exists():
        raise InputError(
            f"--boundary {text}: no such file; give a polygon file or W,S,E,N in degrees"
        )
    return path


def parse_households(text: str | None) -> tuple[float, float] | None:
    """``--households MIN:MAX``."""
    if text is None:
        return None
    try:
        lo, hi = (float(p) for p in text.split(":"))
    except ValueError:
        raise InputError(f"--households must be MIN:MAX, e.g. 300:500; got {text!r}") from None
    return lo, hi


def with_tier_labels(tiers: tuple[Any, ...], args: argparse.Namespace) -> tuple[Any, ...]:
    """Apply ``--tier-label NAME=TEXT`` to the tiers (an unknown NAME is an error)."""
    labels: dict[str, str] = {}
    for item in getattr(args, "tier_label", []) or []:
        name, sep, text = item.partition("=")
        if not sep or not text.strip():
            raise InputError(
                f"--tier-label {item!r}: give NAME=TEXT, e.g. station_5min=5分钟驿站圈"
            )
        labels[name.strip()] = text.strip()
    unknown = sorted(set(labels) - {t.name for t in tiers})
    if unknown:
        names = ", ".join(t.name for t in tiers)
        raise InputError(f"--tier-label {unknown[0]}: no such tier (the tiers are {names})")
    return tuple(t.with_label(labels[t.name]) if t.name in labels else t for t in tiers)


def parse_tiers(args: argparse.Namespace) -> tuple[Any, ...]:
    """The tiers of ``coverage``: a preset, ``--tier`` options and ``--goal``."""
    from ..tiers import DEFAULT_GOAL, check_unique, parse_tier, preset, tier_by_name

    goal = DEFAULT_GOAL if args.goal is None else args.goal
    if not 0 < goal <= 1:
        raise InputError(f"--goal must be a share in (0, 1], e.g. 0.85; got {args.goal}")
    tiers: list[Any] = []
    for name in args.preset or []:
        tiers += [t.with_goal(goal) for t in preset(name)]
    tiers += [
        parse_tier(t, goal=goal) if "=" in t else tier_by_name(t, goal=goal) for t in args.tier
    ]
    if not tiers:
        tiers = [t.with_goal(goal) for t in preset("default")]
    return with_tier_labels(check_unique(tiers), args)


def parse_fragments(args: argparse.Namespace) -> Any:
    """The fragment rule from ``--fragment-max-nodes``, ``--fragment-max-m``,
    ``--keep-fragments``."""
    from ..network import FragmentRule

    return FragmentRule(
        max_nodes=args.fragment_max_nodes, max_m=args.fragment_max_m, keep=args.keep_fragments
    )


def parse_cache(args: argparse.Namespace) -> Any:
    """The area cache from ``--cache-dir`` / ``--no-cache`` (``None`` when off)."""
    from ..cache import AreaCache

    if getattr(args, "no_cache", False):
        return None
    return AreaCache(getattr(args, "cache_dir", None))


def parse_segments(args: argparse.Namespace) -> Any:
    """The segments of ``--segments``, ``--segment-shares``, ``--segment-speeds``."""
    from ..segments import choose_segments, parse_pairs

    text = getattr(args, "segments", None)
    if text is not None and text.strip().lower() == "none":
        return ()
    names = [n.strip() for n in text.split(",") if n.strip()] if text else None
    return choose_segments(
        names,
        shares=parse_pairs(getattr(args, "segment_shares", None), "--segment-shares"),
        speeds=parse_pairs(getattr(args, "segment_speeds", None), "--segment-speeds"),
    )


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``--weights elderly=2,children=1.5``."""
    from ..segments import parse_pairs

    return parse_pairs(text, "--weights") or None


def parse_files(args: argparse.Namespace) -> Any:
    """How the user's files are read (``--coords``, ``--sheet``)."""
    from ..files import FileOptions

    return FileOptions(coords=getattr(args, "coords", "wgs84"), sheet=getattr(args, "sheet", None))


def check_tiles(args: argparse.Namespace) -> None:
    """Refuse a base map that cannot be drawn before any work (Tianditu needs a key)."""
    import os

    from ..pages import resolve_tiles

    if getattr(args, "tianditu_key", None):
        os.environ["TIANDITU_KEY"] = args.tianditu_key
    if getattr(args, "tiles", None) and not getattr(args, "no_map", False):
        resolve_tiles(args.tiles)


def _progress(args: argparse.Namespace, steps: list[str]) -> Progress:
    return Progress(steps, enabled=not args.quiet and sys.stderr.isatty())


def _facilities_or_demo(args: argparse.Namespace, *, required: bool) -> str | None:
    from ..area import DEMO
    from ..workflows.common import DEMO_FACILITIES

    if args.facilities is not None:
        return str(args.facilities)
    if args.area == DEMO:
        return DEMO_FACILITIES
    if required:
        raise InputError(
            "--facilities is required: give a facility file (.geojson/.gpkg/.csv with id, "
            "kind, lon, lat) or 'osm' to take them from the area's OSM tags"
        )
    return None


PYTHON_GC = gc.get_threshold()
"""The cyclic collector's thresholds Python started with."""

SHORT_RUN_GC = (100_000, 50, 1000)
"""The program's thresholds (:func:`servicecircle.cli.console`): a run makes millions of
objects and few cycles, and ends soon; ``batch``, which hosts a Dask scheduler for minutes,
goes back to :data:`PYTHON_GC`."""

HELD_UNTIL_EXIT: list[object] | None = None
"""A list when the program ends with ``os._exit`` (:func:`servicecircle.cli.console`): the
areas read are kept in it, so they are not freed object by object when a command returns
(about 0.2 s for a city of 100 k street nodes); ``None`` (in-process calls, tests): freed."""


def _boundary_note(args: argparse.Namespace, coords: str, what: str, like: str, fix: str) -> None:
    """Say that a boundary is read in the files' GCJ-02/BD-09 (a box from OSM is WGS84)."""
    if coords != "wgs84" and not getattr(args, "quiet", False):
        name = {"gcj02": "GCJ-02 (Amap)", "bd09": "BD-09 (Baidu)"}.get(coords, coords)
        print(f"note: {what} read in {name} coordinates, like the files ({like}); {fix} if it "
              "was taken from OSM or a GPS")  # fmt: skip


def _load_area(args: argparse.Namespace, boundary: Any) -> Area:
    """The area the command names (``args.area``), read with the command's cache options."""
    from ..area import load_area

    coords = boundary_coords(args)
    if boundary is not None and getattr(args, "boundary_coords", None) is None:
        _boundary_note(
            args, coords, "--boundary", f"--coords {coords}", "add --boundary-coords wgs84"
        )
    area = load_area(args.area, boundary=boundary, cache=parse_cache(args), coords=coords)
    if HELD_UNTIL_EXIT is not None:
        HELD_UNTIL_EXIT.append(area)
    return area


# --------------------------------------------------------------------------- commands
def cmd_coverage(args: argparse.Namespace) -> int:
    from ..outputs import check_out_dir
    from ..workflows import run_coverage

    out = check_out_dir(args.out)
    tiers = parse_tiers(args)
    facilities = _facilities_or_demo(args, required=True)
    boundary = parse_boundary(args.boundary)
    fragments = parse_fragments(args)
    segments = parse_segments(args)
    check_tiles(args)
    progress = _progress(
        args,
        ["area", "network", "demand", "facilities", "coverage", "cells", "service areas", "write"],
    )
    try:
        progress("area")
        area = _load_area(args, boundary)
        result = run_coverage(
            area,
            facilities=facilities,
            demand=args.demand,
            tiers=tiers,
            snap_limit_m=args.snap_limit_m,
            out_dir=out,
            write_map=not args.no_map,
            lang=args.lang,
            tiles=args.tiles,
            step=progress,
            cells=args.cells,
            write_service_areas=args.service_areas,
            fragments=fragments,
            files=parse_files(args),
            segments=segments,
            workers=args.workers,
        )
    finally:
        progress.close()
    if not args.quiet:
        print_summary(result.summary, out)
        print_pages(out, result.files)
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    from ..outputs import check_out_dir
    from ..workflows import run_grid

    out = check_out_dir(args.out)
    if args.kind in ("square", "hex") and args.size_m is None:
        raise InputError(f"--kind {args.kind} needs --size-m N (metres)")
    households = parse_households(args.households)
    try:
        micro = parse_households(args.micro_households)
    except InputError:
        raise InputError(
            f"--micro-households must be MIN:MAX, e.g. 30:150; got {args.micro_households!r}"
        ) from None
    area = _load_area(args, parse_boundary(args.boundary))
    _cells, summary = run_grid(
        area,
        kind=args.kind,
        size_m=args.size_m,
        h3_res=args.h3_res,
        households=households,
        micro_households=micro,
        communities=args.communities,
        demand=args.demand,
        out_dir=out,
        files=parse_files(args),
    )
    if not args.quiet:
        hh = summary["households"]
        print(
            f"{summary['area']}: {summary['count']} {args.kind} cells, households per cell "
            f"min {hh['min']:.0f} / median {hh['median']:.0f} / max {hh['max']:.0f}"
        )
        if summary["flagged"]:
            print(f"  {len(summary['flagged'])} cells flagged (see grid_summary.json)")
        if "governance" in summary:
            gov = summary["governance"]
            print(
                f"  {gov['micro_grids']['count']} micro-grids (微网格); grids of one large "
                f"building, divided by unit and floor: {gov['single_building_grids']}"
            )
        print(f"wrote {', '.join(summary['files'])} to {out}")
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
        "snap_limit_m": args.snap_limit_m,
        "fragments": parse_fragments(args),
        "files": parse_files(args),
        "segment": args.segment,
        "weights": parse_weights(args.weights),
        "out_dir": args.out,
        "write_map": not args.no_map,
        "lang": args.lang,
        "tiles": args.tiles,
        "whatif": args.whatif,
        "whatif_candidates": args.whatif_candidates,
    }


def cmd_propose(args: argparse.Namespace) -> int:
    from ..outputs import check_out_dir
    from ..tiers import tier_by_name
    from ..workflows import run_propose, run_two_level
    from ..workflows.propose import check_request

    check_out_dir(args.out)
    tier = with_tier_labels((tier_by_name(args.tier),), args)[0]
    if args.centres is not None:
        if args.capacity is not None:
            raise InputError("--capacity cannot be combined with --centres (the two-level plan)")
        if args.centres <= 0:
            raise InputError(f"--centres must be at least 1; got {args.centres}")
    check_request(args.new, args.goal, args.capacity, args.exclusion_m)
    check_tiles(args)
    facilities = _facilities_or_demo(args, required=False)
    area = _load_area(args, parse_boundary(args.boundary))
    if args.centres is not None:
        result = run_two_level(
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
                r = result.report["levels"][level]
                print(
                    f"{level}: {r['tier']['name']} (≤ {r['tier']['target_m']:.0f} m): "
                    f"{r['proposals']} new, covered {r['share_before']:.1%} → "
                    f"{r['share_after']:.1%}" + (" (proven optimal)" if r["optimal"] else "")
                )
    else:
        result = run_propose(
            area,
            tier=tier,
            new=args.new,
            goal=args.goal,
            facilities=facilities,
            capacity=args.capacity,
            **_siting_options(args),
        )
        if not args.quiet:
            _print_proposals(result, tier)
    if not args.quiet:
        print(f"wrote {', '.join(result.files)} to {args.out}")
    return 0


def _print_proposals(result: Any, tier: Any) -> None:
    report = result.report
    before, after = report["share_before"], report["share_after"]
    quality = (
        " (proven optimal)"
        if report["optimal"]
        else (f" (gap {report['gap']:.1%})" if report["gap"] is not None else "")
    )
    who = report["tier"].get("segment") or "residents"
    who = "residents" if who == "residents" else who
    print(
        f"{report['area']}: {report['tier']['name']} (≤ {report['tier']['target_m']:.0f} m"
        + ("" if who == "residents" else f" for {who}")
        + f"), {report['model']} by {report['method']}: {report['proposals']} new sites, "
        f"covered {before:.1%} → {after:.1%}{quality}"
    )
    for i, g in enumerate(report["marginal_gains"], 1):
        pid = result.proposals["id"].iloc[i - 1]
        print(f"  #{i:<3} {pid:<16} +{g:,.0f} {who}")


def cmd_scenario(args: argparse.Namespace, path: str, out: Path | None) -> int:
    from dataclasses import replace

    from ..outputs import check_out_dir
    from ..scenario import load_scenario
    from ..workflows import run_scenario

    sc = load_scenario(path)
    output = dict(sc.output)
    if getattr(args, "lang", None):
        output["lang"] = args.lang
    if getattr(args, "tiles", None):
        output["tiles"] = args.tiles
    sc = replace(sc, output=output)
    check_out_dir(out if out is not None else output["dir"])
    if sc.area.get("boundary") is not None:
        coords = str(sc.input.get("coords", "wgs84"))
        fix = "give it in that system (or the files in WGS84)"
        _boundary_note(args, coords, "[area] boundary", f"[input] coords = {coords!r}", fix)
    check_tiles(args)
    progress = _progress(args, ["area", "demand", "grid", "coverage", "siting", "map", "report"])
    try:
        summary = run_scenario(sc, out_dir=out, step=progress, cache=parse_cache(args))
    finally:
        progress.close()
    if not args.quiet:
        where = Path(summary["out_dir"])
        print_summary(summary, where)
        if "siting" in summary:
            s = summary["siting"]
            print(f"  siting: {s['proposals']} new sites ({s['model']}, {s['method']})")
        if "audit" in summary:
            levels = ", ".join(
                f"{k} {'n/a' if v is None else f'{v:.0%}'}"
                for k, v in summary["audit"]["levels"].items()
            )
            print(f"  life-circle audit, every basic type within reach: {levels}")
        print_pages(where, summary.get("files", []))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return cmd_scenario(args, args.scenario, args.out)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..workflows import packaged_data

    out = args.out or default_demo_out()
    return cmd_scenario(args, str(packaged_data("demo_scenario.toml")), out)


def cmd_batch(args: argparse.Namespace) -> int:
    from ..batch import read_partitions, run_batch, scenario_boundary, tile_partitions
    from ..outputs import check_out_dir
    from ..scenario import load_scenario

    gc.set_threshold(*PYTHON_GC)  # a long run with a scheduler's cycles, not a short one

    sc = load_scenario(args.scenario)
    check_out_dir(args.out if args.out is not None else sc.output["dir"])
    if args.partitions:
        parts = read_partitions(args.partitions)
    else:
        boundary = scenario_boundary(sc)
        if boundary is None:  # the area's own extent (reads the file once; give area.boundary)
            from ..area import load_area

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
        print(
            f"{ok} of {summary['partitions']} partitions done: "
            f"{summary.get('residents', 0):,.0f} residents"
        )
        for name, t in summary.get("tiers", {}).items():
            print(tier_line(name, t))
        for note in summary.get("not_computed", {}).values():
            print(f"  {note}")
        print(f"wrote {', '.join(summary.get('files', []))} to {summary['out_dir']}")
    for name, error in summary["failed"].items():
        print(f"servicecircle: error: partition {name} failed: {error}", file=sys.stderr)
    return 2 if summary["failed"] else 0


def parse_grid(text: str | None, area: Any) -> Any:
    """``--grid hex:300`` / ``square:250`` / ``h3:9``: a regular grid over the area."""
    if text is None:
        return None
    from ..grid import regular_grid

    kind, _, value = text.partition(":")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if kind not in ("hex", "square", "h3") or not np.isfinite(number):
        raise InputError(f"--grid {text!r}: give hex:METRES, square:METRES or h3:RESOLUTION")
    if kind == "h3":
        return regular_grid("h3", area.boundary, crs=area.crs, h3_res=int(number))
    return regular_grid(kind, area.boundary, crs=area.crs, size_m=number)


def cmd_audit(args: argparse.Namespace) -> int:
    from ..outputs import check_out_dir
    from ..standard import load_standard
    from ..workflows.audit import run_audit

    out = check_out_dir(args.out)
    std = load_standard(args.standard)
    fragments = parse_fragments(args)
    check_tiles(args)
    area = _load_area(args, parse_boundary(args.boundary))
    cells = args.cells if args.cells is not None else parse_grid(args.grid, area)
    run = run_audit(
        area,
        pois=args.pois,
        demand=args.demand,
        standard=std,
        cells=cells,
        snap_limit_m=args.snap_limit_m,
        fragments=fragments,
        out_dir=out,
        write_map=not args.no_map,
        lang=args.lang,
        tiles=args.tiles,
        files=parse_files(args),
    )
    if not args.quiet:
        print_audit(run.summary, std, out, lang=args.lang)
    return 0


COMMANDS = {
    "audit": cmd_audit,
    "demo": cmd_demo,
    "run": cmd_run,
    "batch": cmd_batch,
    "coverage": cmd_coverage,
    "grid": cmd_grid,
    "propose": cmd_propose,
}
