"""The siting workflows: candidates → coverage matrix → solver → proposals, for one tier or the
two-level plan (一中心多站点: centres first, then stations)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError
from ..files import DEFAULT_FILES, FileOptions
from ..network import DEFAULT_FRAGMENTS, DEFAULT_SNAP_LIMIT_M, FragmentRule, Snap, WalkNetwork
from ..tiers import DEFAULT_TIERS, Tier
from .common import (
    OutDir,
    output_for,
    resolve_demand,
    resolve_facilities,
    siting_weights,
    summary_head,
)

if TYPE_CHECKING:
    import geopandas as gpd
    import scipy.sparse as sp

    from ..area import Area
    from ..outputs import RunOutput
    from ..siting import Solution


@dataclass(frozen=True, eq=False)
class SitingResult:
    """What a siting run produced: the ``siting.json`` content and the proposals (and, when
    the what-if page was asked for, the other candidates it shows)."""

    report: dict[str, Any]
    proposals: gpd.GeoDataFrame
    files: list[str] = field(default_factory=list)
    whatif_candidates: gpd.GeoDataFrame | None = None


@dataclass(frozen=True, eq=False)
class _Problem:
    """One tier's siting problem on arrays."""

    pop: np.ndarray
    dsnap: Snap
    fsnap: Snap | None
    csnap: Snap
    covered0: np.ndarray
    matrix: sp.csr_matrix
    matrix_s: float
    existing: sp.csr_matrix | None = None


def check_request(
    new: int | None, goal: float | None, capacity: float | None, exclusion_m: float = 0.0
) -> None:
    """Reject a siting request that cannot be answered, before any work."""
    if (new is None) == (goal is None):
        raise InputError("give either --new K (how many sites) or --goal SHARE (a coverage goal)")
    if new is not None and new <= 0:
        raise InputError(f"--new must be at least 1; got {new}")
    if goal is not None and not 0 < goal <= 1:
        raise InputError(f"--goal must be a share in (0, 1], e.g. 0.85; got {goal}")
    if capacity is not None and goal is not None:
        raise InputError("--capacity works with --new K; a goal with capacity is not supported")
    if capacity is not None and not (capacity > 0 and np.isfinite(capacity)):
        raise InputError(f"capacity must be a positive number of residents; got {capacity}")
    if not (exclusion_m >= 0 and np.isfinite(exclusion_m)):
        raise InputError(f"--exclusion-m must be zero or more metres; got {exclusion_m}")


def run_propose(
    area: Area,
    *,
    tier: Tier,
    new: int | None = None,
    goal: float | None = None,
    facilities: str | Path | gpd.GeoDataFrame | None = None,
    demand: str | Path | gpd.GeoDataFrame | None = None,
    candidates: str | Path | gpd.GeoDataFrame | None = None,
    spacing_m: float = 100.0,
    exclusion_m: float = 50.0,
    method: str = "exact",
    capacity: float | None = None,
    time_limit_s: float = 60.0,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
    out_dir: OutDir = None,
    write_map: bool = True,
    lang: str = "zh",
    tiles: str | None = "osm",
    network: WalkNetwork | None = None,
    fragments: FragmentRule = DEFAULT_FRAGMENTS,
    files: FileOptions = DEFAULT_FILES,
    whatif: bool = False,
    whatif_candidates: int = 200,
    whatif_tiers: Sequence[Tier] | None = None,
    segment: str | None = None,
    weights: dict[str, float] | None = None,
) -> SitingResult:
    """Propose new facilities for one tier: ``new`` sites that cover the most residents
    (MCLP), or the fewest sites that reach ``goal`` (LSCP); optionally with a capacity.

    Existing facilities stay where they are and keep what they cover. Candidates: a file, or
    by default points along the walk network every ``spacing_m`` plus OSM features that can
    host a station; those within ``exclusion_m`` of an existing facility or outside the
    boundary are dropped (and counted).

    Writes ``proposals.geojson``, ``proposals.gpkg``, ``siting.json`` and
    ``proposals_map.html`` when ``out_dir`` is given; with ``whatif`` also ``whatif.html``
    (:mod:`servicecircle.whatif_page`): the existing facilities, the proposals and
    ``whatif_candidates`` other candidates (see :func:`whatif_others`), for the tiers
    ``whatif_tiers`` (default: this tier and the default tiers of other names). ``segment``
    sites for one demand segment at its own pace (the elderly: 240 m in a 5-minute tier);
    ``weights`` counts segments more (``{"elderly": 2}``: each older resident twice).
    """
    check_request(new, goal, capacity, exclusion_m)
    if whatif_candidates < 0:
        raise InputError(f"--whatif-candidates must be 0 or more; got {whatif_candidates}")
    with output_for(out_dir, lang=lang, coords=files.coords, command="propose") as out:
        net = network or WalkNetwork.from_area(area, fragments=fragments)
        demand_gdf = resolve_demand(area, demand, files=files)
        tier, pop, demand_gdf = siting_weights(area, demand_gdf, tier, segment, weights, files)
        if len(demand_gdf) == 0 or float(pop.sum()) <= 0:
            raise InputError("no residents to cover; give a demand file with --demand")
        fac = resolve_facilities(area, facilities, files=files)
        tier_fac = fac[fac["kind"].isin(tier.kinds)]
        cand, counts = site_candidates(
            area, net, candidates, tier_fac, spacing_m=spacing_m, exclusion_m=exclusion_m,
            files=files,
        )  # fmt: skip
        problem = _problem(
            net, demand_gdf, tier_fac, cand, tier, snap_limit_m, counts, pop,
            with_existing=capacity is not None,
        )  # fmt: skip
        if new is not None and new > int(problem.csnap.ok.sum()):
            raise InputError(
                f"--new {new} is more than the {int(problem.csnap.ok.sum())} usable candidates; "
                "ask for fewer sites or give more candidates"
            )
        sol, picks, before, after, stats = _solve(
            problem, new, goal, capacity, method, time_limit_s
        )
        if capacity is None:
            _verify(net, problem, picks, tier, after)
        proposals = proposals_frame(cand, picks, sol.gains, tier, area.crs)
        others = whatif_others(problem, cand, picks, tier, whatif_candidates) if whatif else None
        report = summary_head(
            area=area.name,
            tier={
                "name": tier.name,
                "label": tier.display("zh"),
                "target_m": tier.target_m,
                "kinds": list(tier.kinds),
                "segment": segment or tier.segment,
                "weights": weights,
            },
            model="capacitated MCLP" if capacity is not None else ("MCLP" if new else "LSCP"),
            **_solution_fields(sol, new, goal, capacity, problem, before, after),
            proposals=len(proposals),
            candidates=counts,
            existing_facilities=len(tier_fac),
            problem=stats,
        )
        write_siting(
            out, area, net, demand_gdf, fac, proposals, report, [tier],
            write_map=write_map, lang=lang, tiles=tiles, snap_limit_m=snap_limit_m,
            whatif=others, whatif_tiers=page_tiers([tier], whatif_tiers),
        )  # fmt: skip
    return SitingResult(report, proposals, out.files, others)


def site_candidates(
    area: Area,
    net: WalkNetwork,
    candidates: str | Path | gpd.GeoDataFrame | None,
    facilities: gpd.GeoDataFrame,
    *,
    spacing_m: float,
    exclusion_m: float,
    files: FileOptions = DEFAULT_FILES,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Candidates from a file/frame, or along the streets and from OSM hosts (``None``,
    ``"default"``, ``"network"``, ``"osm"``), minus exclusions; with counts of what was left
    out."""
    import geopandas as gpd
    import pandas as pd

    from ..candidates import (
        candidates_along_network,
        candidates_from_features,
        exclude,
        read_candidates,
    )

    words = ("default", "network", "osm")
    if candidates is None or (isinstance(candidates, str) and candidates in words):
        which = "default" if candidates is None else str(candidates)
        parts = []
        if which in ("default", "network"):
            parts.append(candidates_along_network(net, spacing_m=spacing_m))
        if which in ("default", "osm"):
            feats = pd.concat([area.buildings, area.pois], ignore_index=True)
            if len(feats):
                parts.append(candidates_from_features(gpd.GeoDataFrame(feats, crs=area.crs)))
        cand = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry",
                                crs=area.crs)  # fmt: skip
        cand = cand.drop_duplicates("candidate_id").reset_index(drop=True)
    elif isinstance(candidates, gpd.GeoDataFrame):
        cand = candidates.to_crs(area.crs)
        if "candidate_id" not in cand:
            cand = cand.assign(candidate_id=[f"c{i:05d}" for i in range(len(cand))])
    else:
        cand = read_candidates(candidates, crs=area.crs, files=files)
    n_in = len(cand)
    cand = exclude(cand, boundary=area.boundary, facilities=facilities, exclusion_m=exclusion_m)
    excluded = dict(cand.attrs.get("excluded", {}))
    if len(cand) == 0:
        raise InputError(
            f"no candidate is left ({n_in} given; {excluded}); give candidates inside the "
            "area (--candidates FILE) or a smaller --exclusion-m"
        )
    return cand, {"given": n_in, "excluded": excluded}


def _problem(
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    tier_fac: gpd.GeoDataFrame,
    cand: gpd.GeoDataFrame,
    tier: Tier,
    snap_limit_m: float,
    counts: dict[str, Any],
    pop: np.ndarray,
    *,
    with_existing: bool = False,
) -> _Problem:
    from ..coverage import nearest_facility
    from ..siting import coverage_matrix

    csnap = net.snap(cand, snap_limit_m=snap_limit_m)
    counts["excluded"]["far_from_streets"] = int((~csnap.ok).sum())
    counts["used"] = int(csnap.ok.sum())
    dsnap = net.snap(demand, snap_limit_m=snap_limit_m)
    fsnap = net.snap(tier_fac, snap_limit_m=snap_limit_m) if len(tier_fac) else None
    if fsnap is not None:
        walk, _ = nearest_facility(net, dsnap, fsnap, limit_m=tier.target_m)
    else:
        walk = np.full(len(pop), np.inf)
    started = time.perf_counter()
    matrix = coverage_matrix(net, dsnap, csnap, target_m=tier.target_m)
    matrix_s = time.perf_counter() - started
    existing = None
    if with_existing:  # the capacitated model keeps existing facilities as fixed columns
        import scipy.sparse as sp

        existing = (
            coverage_matrix(net, dsnap, fsnap, target_m=tier.target_m)
            if fsnap is not None
            else sp.csr_matrix((len(pop), 0))
        )
    covered0 = walk <= tier.target_m + 1e-6
    return _Problem(pop, dsnap, fsnap, csnap, covered0, matrix, matrix_s, existing)


def whatif_others(
    p: _Problem, cand: gpd.GeoDataFrame, picks: list[int], tier: Tier, n: int
) -> gpd.GeoDataFrame:
    """The other candidates the what-if page shows, besides the proposals: half the ``n``
    slots (rounded up) go to the best residents added after the plan (the next sites to add),
    the rest to the best residents added to the existing facilities alone (alternatives to a
    proposal); a site in both lists is shown once, candidates that add no one are left out.
    Returns ``id``, ``kind``, ``name``, ``gain`` (residents added to the existing facilities
    alone), best first."""
    import geopandas as gpd

    a = (p.matrix > 0).astype(np.float64).tocsc()
    alone = np.asarray(a.T @ np.where(p.covered0, 0.0, p.pop)).ravel()
    after_cov = p.covered0.copy()
    if picks:
        after_cov |= np.asarray(a[:, picks].sum(axis=1)).ravel() > 0
    after = np.asarray(a.T @ np.where(after_cov, 0.0, p.pop)).ravel()
    usable = p.csnap.ok.copy()
    usable[picks] = False

    def best(score: np.ndarray) -> np.ndarray:
        idx = np.flatnonzero(usable & (score > 0))
        return idx[np.lexsort((idx, -score[idx]))]

    first = best(after)[: (n + 1) // 2]
    rest = best(alone)
    rest = rest[~np.isin(rest, first)][: max(n - len(first), 0)]
    rows = np.concatenate([first, rest]).astype("int64")
    rows = rows[np.lexsort((rows, -alone[rows]))]
    chosen = cand.iloc[rows]
    return gpd.GeoDataFrame(
        {
            "id": chosen["candidate_id"].astype(str).to_numpy(),
            "kind": "station" if "station" in tier.kinds else "centre",
            "name": chosen["name"].to_numpy() if "name" in chosen else None,
            "gain": np.round(alone[rows], 2),
        },
        geometry=chosen.geometry.to_numpy(),
        crs=cand.crs,
    )


def page_tiers(sited: Sequence[Tier], given: Sequence[Tier] | None) -> tuple[Tier, ...]:
    """The tiers of the what-if page: ``given``, else the sited tiers and the default tiers of
    other names, widest first."""
    if given:
        return tuple(given)
    names = {t.name for t in sited}
    both = [*[t for t in DEFAULT_TIERS if t.name not in names], *sited]
    return tuple(sorted(both, key=lambda t: -t.target_m))


def _solve(
    p: _Problem,
    new: int | None,
    goal: float | None,
    capacity: float | None,
    method: str,
    time_limit_s: float,
) -> tuple[Solution, list[int], float, float, dict[str, Any]]:
    """Solve; return the solution, picked candidate rows, covered before/after, and stats."""
    from ..siting import (
        GoalUnreachableError,
        reduce_problem,
        solve_capacitated,
        solve_max_cover,
        solve_set_cover,
    )

    total = float(p.pop.sum())
    if capacity is not None:
        assert new is not None and p.existing is not None
        sol = solve_capacitated(
            p.matrix, p.pop, p.existing, new, capacity, time_limit_s=time_limit_s
        )
        return sol, list(sol.picks), sol.extra["served_before"], sol.value, {}
    red = reduce_problem(p.matrix, p.pop, p.covered0)
    if new is not None:
        sol = solve_max_cover(red.a, red.weight, new, time_limit_s=time_limit_s, method=method)
    else:
        assert goal is not None
        need = goal * total - red.covered_before
        try:
            sol = solve_set_cover(red.a, red.weight, need, time_limit_s=time_limit_s, method=method)
        except GoalUnreachableError as err:
            best = (red.covered_before + err.coverable) / total
            raise GoalUnreachableError(err.coverable, err.need, share=best, goal=goal) from None
    picks = [int(red.columns[j]) for j in sol.picks]
    return sol, picks, red.covered_before, red.covered_before + sol.value, red.stats


def _verify(net: WalkNetwork, p: _Problem, picks: list[int], tier: Tier, after: float) -> None:
    """Check the model's covered residents against a full recomputation with the picks."""
    if not picks:
        return
    from ..coverage import nearest_facility

    both = p.csnap.subset(np.asarray(picks))
    if p.fsnap is not None:
        both = p.fsnap.concat(both)
    walk, _ = nearest_facility(net, p.dsnap, both, limit_m=tier.target_m)
    check = float(p.pop[walk <= tier.target_m + 1e-6].sum())
    if abs(check - after) > 1e-6 * max(1.0, float(p.pop.sum())):
        raise RuntimeError(f"siting check failed: model {after}, recomputed {check}")


def _solution_fields(
    sol: Solution,
    new: int | None,
    goal: float | None,
    capacity: float | None,
    p: _Problem,
    before: float,
    after: float,
) -> dict[str, Any]:
    total = float(p.pop.sum())
    return {
        "method": sol.method,
        "new": new,
        "goal": goal,
        "capacity": capacity,
        "residents": total,
        "covered_before": before,
        "covered_after": after,
        "share_before": before / total if total else None,
        "share_after": after / total if total else None,
        "optimal": bool(sol.optimal),
        "gap": None if not np.isfinite(sol.gap) else float(sol.gap),
        "bound_added_residents": None if not np.isfinite(sol.bound) else float(sol.bound),
        "solve_seconds": round(sol.seconds, 4),
        "matrix_seconds": round(p.matrix_s, 4),
        "matrix_nonzeros": int(p.matrix.nnz),
        "marginal_gains": [float(g) for g in sol.gains],
    }


def proposals_frame(
    cand: gpd.GeoDataFrame, picks: list[int], gains: Any, tier: Tier, crs: Any
) -> gpd.GeoDataFrame:
    """The picked candidates as ranked proposals with ``lon``/``lat`` (WGS84)."""
    import geopandas as gpd

    kind = "station" if "station" in tier.kinds else "centre"
    chosen = cand.iloc[picks]
    proposals = gpd.GeoDataFrame(
        {
            "id": chosen["candidate_id"].astype(str).to_numpy(),
            "kind": kind,
            "rank": np.arange(1, len(picks) + 1),
            "added_covered_residents": np.round(np.asarray(gains, dtype=float), 2),
            "source": chosen["source"].astype(str).to_numpy() if "source" in chosen else "file",
        },
        geometry=chosen.geometry.to_numpy(),
        crs=crs,
    )
    ll = proposals.to_crs(4326)
    proposals["lon"] = np.round(ll.geometry.x.to_numpy(), 7)
    proposals["lat"] = np.round(ll.geometry.y.to_numpy(), 7)
    return proposals


def write_siting(
    out: RunOutput,
    area: Area,
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    fac: gpd.GeoDataFrame,
    proposals: gpd.GeoDataFrame,
    report: dict[str, Any],
    tiers: list[Tier],
    *,
    write_map: bool,
    lang: str,
    tiles: str | None,
    snap_limit_m: float,
    whatif: gpd.GeoDataFrame | None = None,
    whatif_tiers: Sequence[Tier] = (),
) -> None:
    """Write the proposals, ``siting.json``, the map of coverage after the plan and, when
    ``whatif`` (the other candidates) is given, ``whatif.html``."""
    if not out.active:
        return
    from ..outputs import write_proposals

    write_proposals(out, proposals)
    if write_map:
        from ..coverage import compute_coverage
        from ..maps import coverage_map, map_html

        after = with_proposals(fac, proposals, prefix="proposal-")
        cov = compute_coverage(net, demand, after, tiers, snap_limit_m=snap_limit_m)
        page = coverage_map(
            area, demand, cov, fac, lang=lang, tiles=tiles, proposals=proposals, network=net
        )
        out.text("proposals_map.html", map_html(page))
    if whatif is not None:
        from ..whatif_page import whatif_html

        html = whatif_html(
            area, demand, fac, proposals, whatif, whatif_tiers or tiers, net,
            lang=lang, tiles=tiles, snap_limit_m=snap_limit_m,
        )  # fmt: skip
        out.text("whatif.html", html)
    out.json("siting.json", report)


def with_proposals(
    fac: gpd.GeoDataFrame, proposals: gpd.GeoDataFrame, *, prefix: str
) -> gpd.GeoDataFrame:
    """Existing facilities plus the proposals as facilities (ids ``<prefix><id>``)."""
    import geopandas as gpd
    import pandas as pd

    new = proposals.assign(facility_id=prefix + proposals["id"].astype(str))[
        ["facility_id", "kind", "geometry"]
    ]
    both = pd.concat([fac, new], ignore_index=True) if len(fac) else new
    return gpd.GeoDataFrame(both, geometry="geometry", crs=proposals.crs)


def run_two_level(
    area: Area,
    *,
    centres_new: int | None = None,
    centres_goal: float | None = None,
    stations_new: int | None = None,
    stations_goal: float | None = None,
    centre_tier: Tier | None = None,
    station_tier: Tier | None = None,
    facilities: str | Path | gpd.GeoDataFrame | None = None,
    out_dir: OutDir = None,
    write_map: bool = True,
    lang: str = "zh",
    tiles: str | None = "osm",
    whatif: bool = False,
    whatif_candidates: int = 200,
    whatif_tiers: Sequence[Tier] | None = None,
    **options: Any,
) -> SitingResult:
    """The two-level plan "one centre, many stations" (一中心多站点).

    First new centres for the 15-minute tier (``centres_new`` sites, or the fewest that reach
    ``centres_goal``); then new stations for the 5-minute tier (``stations_new`` or
    ``stations_goal``), with every existing and new centre counting as a station. ``options``
    go to :func:`run_propose` (demand, candidates, method, spacing, time limit…).

    The report's ``"levels"`` holds the two steps; one ``proposals.geojson`` holds both kinds
    (ranked per kind), with ``siting.json`` and a map; with ``whatif`` also ``whatif.html``
    (``whatif_candidates`` other candidates per level).
    """
    import geopandas as gpd
    import pandas as pd

    c_tier = centre_tier or DEFAULT_TIERS[0]
    s_tier = station_tier or DEFAULT_TIERS[1]
    if "centre" not in s_tier.kinds:
        raise InputError(
            f"tier {s_tier.name} must count centres as stations (kinds station,centre)"
        )
    if options.get("capacity") is not None:
        raise InputError("--capacity cannot be combined with --centres (the two-level plan)")
    check_request(centres_new, centres_goal, None)
    check_request(stations_new, stations_goal, None)
    coords = options.get("files", DEFAULT_FILES).coords
    with output_for(out_dir, lang=lang, coords=coords, command="propose") as out:
        fragments = options.pop("fragments", DEFAULT_FRAGMENTS)
        files = options.get("files", DEFAULT_FILES)
        net = options.pop("network", None) or WalkNetwork.from_area(area, fragments=fragments)
        demand = resolve_demand(area, options.pop("demand", None), files=files)
        fac = resolve_facilities(area, facilities, files=files)
        common = {"demand": demand, "network": net, "out_dir": None, **options}
        common.update(whatif=whatif, whatif_candidates=whatif_candidates)
        first = run_propose(
            area, tier=c_tier, new=centres_new, goal=centres_goal, facilities=fac, **common
        )
        fac2 = with_proposals(fac, first.proposals, prefix="new-")
        second = run_propose(
            area, tier=s_tier, new=stations_new, goal=stations_goal, facilities=fac2, **common
        )
        proposals = gpd.GeoDataFrame(
            pd.concat([first.proposals, second.proposals], ignore_index=True),
            geometry="geometry",
            crs=area.crs,
        )
        others = None
        if whatif:
            parts = [first.whatif_candidates, second.whatif_candidates]
            others = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=area.crs)
        report = summary_head(
            area=area.name,
            model="two-level: centres first, then stations (centres count as stations)",
            levels={"centres": first.report, "stations": second.report},
            proposals=len(proposals),
        )
        write_siting(
            out, area, net, demand, fac, proposals, report, [c_tier, s_tier],
            write_map=write_map, lang=lang, tiles=tiles,
            snap_limit_m=options.get("snap_limit_m", DEFAULT_SNAP_LIMIT_M),
            whatif=others, whatif_tiers=whatif_tiers or (c_tier, s_tier),
        )  # fmt: skip
    return SitingResult(report, proposals, out.files, others)
