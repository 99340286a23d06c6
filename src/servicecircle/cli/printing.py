"""What the command line prints: progress bars and the summary lines."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..files import counted


class Progress:
    """A progress bar over the named steps of a run (off with -q or when not a terminal)."""

    def __init__(self, steps: Sequence[str], enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no monitor thread: the writers may fork (_background)
            self.bar = tqdm(total=len(steps), unit="step", file=sys.stderr, leave=False)

    def __call__(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description(name)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def tier_line(name: str, t: dict[str, Any]) -> str:
    """A tier's line: its distance, the residents covered, their share, the goal and verdict."""
    share = "n/a" if t["share"] is None else f"{t['share']:.1%}"
    verdict = {True: "PASS", False: "FAIL", None: "n/a (no residents)"}[t["pass"]]
    return (
        f"  {name:<22} ≤ {t['target_m']:>6.0f} m  covered {t['covered_residents']:>10,.0f}"
        f"  {share:>6}  goal {t['goal']:.0%}  {verdict}"
        + ("  (no facility of this kind given)" if t.get("facilities") == 0 else "")
        + (  # a tier that counts a segment (workers) says so, beside the residents above
            f"  ({t['segment']}: {t['covered_residents']:,.0f} of {t['residents']:,.0f})"
            if t.get("segment") not in (None, "residents", "population")
            else ""
        )
    )


def print_summary(summary: dict[str, Any], out: Path) -> None:
    """The per-tier lines of a coverage summary, and what could not be used."""
    res = summary["residents"]
    print(
        f"{summary['area']['name']}: {counted(summary['demand_points'], 'demand point')}, "
        f"{res:,.0f} residents"
    )
    for name, t in summary["tiers"].items():
        print(tier_line(name, t))
        for seg, s in (t.get("segments") or {}).items():
            share = "n/a" if s["share"] is None else f"{s['share']:.1%}"
            print(
                f"    {seg:<20} ≤ {s['target_m']:>6.0f} m  at {s['speed_m_per_s']:g} m/s{share:>14}"
            )
    altered = altered_line(summary.get("demand", {}))
    if altered:
        print(f"  input: {altered}")
    linked = summary.get("linked_past_fragment", {})
    parts = []
    if linked.get("demand_points"):
        parts.append(
            f"{counted(linked['demand_points'], 'demand point')} "
            f"({linked['residents']:,.0f} residents)"
        )
    if linked.get("facilities"):
        parts.append(counted(linked["facilities"], "facility", "facilities"))
    if parts:
        print(
            f"  {' and '.join(parts)} linked past a street fragment to the main network "
            "(--keep-fragments to snap onto fragments)"
        )
    if summary["unreachable_demand_points"]:
        print(
            f"  {counted(summary['unreachable_demand_points'], 'demand point')} farther than "
            f"{summary['snap_limit_m']:.0f} m from any street (not covered)"
        )
    fac = summary["facilities"]
    outside = fac.get("unsnapped_outside_boundary", 0)
    if fac["unsnapped"]:
        within = f"{fac['unsnapped'] - outside} inside the boundary, " if outside else ""
        print(
            f"  {counted(fac['unsnapped'], 'facility', 'facilities')} farther than "
            f"{summary['snap_limit_m']:.0f} m from any street of the area (not used"
            + (f"; {within}{outside} outside it" if outside else "")
            + "): "
            + ", ".join(fac["unsnapped_ids"][:5])
        )
    for kind, n in fac.get("in_no_tier", {}).items():
        hint = "; --preset workers counts them" if kind == "worker_station" else ""
        what = counted(n, "facility", "facilities")
        print(f"  {what} of kind {kind} in no tier (not counted{hint})")
    print(f"wrote {', '.join(summary.get('files', []))} to {out}")


PAGES = ("coverage_map.html", "report.html", "audit_report.html", "whatif.html")
"""The pages a run writes for a browser, in the order they are named."""


def print_pages(out: Path, files: Sequence[str]) -> None:
    """Which of the run's pages to open, the first with its folder (none: nothing printed)."""
    pages = [p for p in PAGES if p in files]
    if pages:
        rest = f" and {', '.join(pages[1:])}" if len(pages) > 1 else ""
        print(f"open {out / pages[0]}{rest} in a browser")


def print_audit(summary: dict[str, Any], std: Any, out: Path, *, lang: str = "zh") -> None:
    """The audit's lines: per level the share with every basic type, the absent types."""
    print(
        f"{summary['area']['name']}: {counted(summary['demand_points'], 'demand point')}, "
        f"{summary['residents']:,.0f} residents, {len(std.types)} facility types ({std.name})"
    )
    for level, s in summary["levels"].items():
        share = s["share_all_basic"]
        present = s["share_all_basic_present"]
        print(
            f"  {level:<6} every basic type within reach: "
            + ("n/a" if share is None else f"{share:.1%}")
            + (
                "  (no basic type of this level was found in the area)"
                if present is None
                else f"  (types present in the area only: {present:.1%})"
            )
        )
    name = "name_zh" if lang == "zh" else "name_en"
    absent = [getattr(std.by_id(i), name) for i in summary["absent_types"]]
    if absent:
        print(f"  no facility found at all for {len(absent)} types: {', '.join(absent)}")
    print(f"wrote {', '.join(summary.get('files', []))} to {out}")


ALTERED = (
    ("outside_boundary", "demand point", "just outside the area boundary (kept, walking from "
     "the nearest street)"),
    ("far_outside_boundary", "demand point", "more than {far:g} m outside the boundary (left out)"),
    ("ids_generated", "demand point", "without an id (given d<row>)"),
    ("households_estimated", "households", "estimated from population"),
    ("households_unreadable", "households value", "unreadable (estimated)"),
    ("levels_capped", "building", "with levels capped"),
    ("levels_default", "building", "without building:levels (default levels)"),
)  # fmt: skip
"""What a run estimated, generated or left out, by ``summary["demand"]`` key: the thing
counted (one of it) and what happened to it."""


def altered_line(counts: dict[str, Any]) -> str:
    """One line naming what of the input was estimated, generated or left as it was but
    outside; empty when nothing was."""
    from ..workflows.common import FAR_OUTSIDE_M

    return "; ".join(
        f"{counted(counts[key], one, one if one.endswith('s') else None)} "
        + text.format(far=FAR_OUTSIDE_M)
        for key, one, text in ALTERED
        if counts.get(key)
    )
