"""Coverage: walking distance from every demand point to its nearest facility, per tier, and
the tables and summaries made of it (the distances themselves come from
:mod:`servicecircle.paths`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._errors import InputError
from .demand import validate_demand
from .facilities import validate_facilities
from .geometry import anchor_xy
from .network import DEFAULT_SNAP_LIMIT_M, Snap, WalkNetwork
from .paths import (
    facility_entries,
    multi_source,
    nearest_facility,
    node_distances,
    point_distances,
)
from .tiers import DEFAULT_TIERS, Tier, check_unique

if TYPE_CHECKING:
    from .segments import Segment

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)

__all__ = [
    "Coverage",
    "compute_coverage",
    "coverage_table",
    "facility_entries",
    "multi_source",
    "nearest_facility",
    "node_distances",
    "point_distances",
]

DEFAULT_SEARCH_FACTOR = 2.0
"""Distances are searched up to this multiple of a tier's target, so that a planner sees how far
an uncovered resident is; farther ones are reported as ``too_far`` with no distance."""

STATUS_COVERED = "covered"
STATUS_TOO_FAR = "too_far"
STATUS_NO_FACILITY = "no_facility_reachable"
STATUS_UNSNAPPED = "unsnapped"
_TOL_M = 1e-6


# --------------------------------------------------------------------------- tables
@dataclass(frozen=True, eq=False)
class Coverage:
    """Coverage of demand points per tier.

    Attributes
    ----------
    points
        One row per demand point, aligned to the demand frame: ``demand_id``, ``population``,
        ``households`` (when given), ``snapped``, ``access_m``, and per tier
        ``<tier>_facility_id``, ``<tier>_walk_m`` (NaN when none within the search limit),
        ``<tier>_covered`` and ``<tier>_status`` (``covered``, ``too_far``,
        ``no_facility_reachable``, ``unsnapped``).
    facilities
        One row per facility: ``facility_id``, ``kind``, ``name``, ``snapped``, ``access_m``.
    tiers
        The tiers, in order.
    snap_limit_m, search_factor
        The settings used.
    segments
        Demand segments (:mod:`servicecircle.segments`): ``points`` then holds each segment's
        count and ``<tier>_<segment>_covered`` (within the distance of the tier's minutes at the
        segment's pace).
    """

    points: pd.DataFrame
    facilities: pd.DataFrame
    tiers: tuple[Tier, ...]
    snap_limit_m: float
    search_factor: float
    extras: dict[str, Any] = field(default_factory=dict)
    segments: tuple[Segment, ...] = ()

    def weights(self, tier: Tier) -> np.ndarray:
        """Who counts in a tier: the population, or its segment's counts (workers)."""
        if tier.segment != "residents" and tier.segment in self.points:
            return self.points[tier.segment].to_numpy(dtype=float)
        return self.points["population"].to_numpy(dtype=float)

    def summary(self) -> dict[str, Any]:
        """Population-weighted summary per tier, with counts of what could not be used."""
        pts = self.points
        pop = pts["population"].to_numpy()
        residents = float(pop.sum())
        unsnapped = ~pts["snapped"].to_numpy()
        fac = self.facilities
        by_kind = {k: int(v) for k, v in fac["kind"].value_counts().sort_index().items()}
        out: dict[str, Any] = {
            "snap_limit_m": self.snap_limit_m,
            "search_factor": self.search_factor,
            "demand_points": len(pts),
            "residents": residents,
            "unreachable_demand_points": int(unsnapped.sum()),
            "unreachable_residents": float(pop[unsnapped].sum()),
            "facilities": {
                "total": len(fac),
                "by_kind": by_kind,
                "unsnapped": int((~fac["snapped"]).sum()),
                "unsnapped_ids": fac.loc[~fac["snapped"], "facility_id"].astype(str).tolist(),
                "in_no_tier": {  # kinds that no tier counts (worker stations by default)
                    k: n for k, n in by_kind.items() if not any(k in t.kinds for t in self.tiers)
                },
            },
            "tiers": {},
        }
        for tier in self.tiers:
            covered = pts[f"{tier.name}_covered"].to_numpy()
            status = pts[f"{tier.name}_status"]
            w = self.weights(tier)
            people = float(w.sum())
            cov_res = float(w[covered].sum())
            share = cov_res / people if people > 0 else None
            walk = pts[f"{tier.name}_walk_m"]
            entry: dict[str, Any] = {
                "label": tier.display("zh"),
                "label_en": tier.display("en"),
                "target_m": tier.target_m,
                "minutes": tier.minutes,
                "kinds": list(tier.kinds),
                "facilities": int(fac["kind"].isin(tier.kinds).sum()),
                "segment": tier.segment,
                "residents": people,
                "covered_residents": cov_res,
                "share": share,
                "goal": tier.goal,
                "pass": None if share is None else bool(share + 1e-12 >= tier.goal),
                "demand_points": len(pts),
                "covered_points": int(covered.sum()),
                "points_by_status": {
                    k: int(v) for k, v in status.value_counts().sort_index().items()
                },
                "median_walk_m_of_reached": float(walk.median()) if walk.notna().any() else None,
            }
            if self.segments:
                entry["segments"] = self.segment_summary(tier)
            out["tiers"][tier.name] = entry
        for key in ("linked_past_fragment", "circle_vs_walk"):
            if key in self.extras:
                out[key] = self.extras[key]
        return out

    def segment_summary(self, tier: Tier) -> dict[str, Any]:
        """Per segment of a tier: people, covered, share, goal, pass, and the metres used."""
        return _segment_summary(self, tier)


def _segment_summary(cov: Coverage, tier: Tier) -> dict[str, Any]:
    pts = cov.points
    out: dict[str, Any] = {}
    for seg in cov.segments:
        if seg.name not in pts or (tier.segment != "residents" and seg.name != tier.segment):
            continue
        counts = pts[seg.name].to_numpy(dtype=float)
        covered = pts[f"{tier.name}_{seg.name}_covered"].to_numpy(dtype=bool)
        total = float(counts.sum())
        got = float(counts[covered].sum())
        share = got / total if total > 0 else None
        out[seg.name] = {
            "label": seg.display("zh"),
            "label_en": seg.display("en"),
            "speed_m_per_s": seg.speed_m_per_s,
            "target_m": round(tier.metres_at(seg.speed_m_per_min), 1),
            "people": total,
            "covered": got,
            "share": share,
            "goal": tier.goal,
            "pass": None if share is None else bool(share + 1e-12 >= tier.goal),
        }
    return out


def compute_coverage(
    network: WalkNetwork,
    demand: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    tiers: tuple[Tier, ...] | list[Tier] = DEFAULT_TIERS,
    *,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
    search_factor: float = DEFAULT_SEARCH_FACTOR,
    segments: tuple[Segment, ...] = (),
) -> Coverage:
    """Walking coverage of demand points by facilities, per tier.

    Parameters
    ----------
    network
        The walk network.
    demand
        Points (or polygons, taken at a point on their surface) with ``population`` (and
        optionally ``households`` and ``demand_id``), in the network's CRS.
    facilities
        Points with ``facility_id`` and ``kind`` (``centre`` or ``station``), in the network's
        CRS.
    tiers
        Targets to measure (default: centres within 1000 m, stations or centres within 300 m).
    snap_limit_m
        Points and facilities farther than this from every walkable edge are reported as
        unsnapped rather than moved.
    search_factor
        Distances are reported up to ``search_factor × target``.
    segments
        Demand segments whose counts are columns of ``demand`` (see
        :func:`~servicecircle.segments.add_segments`): each is covered within the distance of
        the tier's minutes at its own pace.

    Returns
    -------
    Coverage
    """
    if search_factor < 1:
        raise InputError(f"search factor must be at least 1; got {search_factor}")
    tiers = check_unique(tiers)
    demand = validate_demand(demand)
    facilities = validate_facilities(facilities)
    dsnap = network.snap(demand, snap_limit_m=snap_limit_m)
    fsnap = network.snap(facilities, snap_limit_m=snap_limit_m)
    fac_ids = facilities["facility_id"].astype(str).to_numpy()
    kinds = facilities["kind"].to_numpy()
    _warn_unsnapped(demand, dsnap, fac_ids, fsnap, snap_limit_m)
    cols: dict[str, Any] = {"demand_id": demand["demand_id"].to_numpy()}
    if "name" in demand.columns and demand["name"].notna().any():  # (a compound's 小区名称)
        cols["name"] = demand["name"].astype("string").to_numpy(dtype=object, na_value=None)
    cols["population"] = demand["population"].to_numpy()
    if "households" in demand.columns:
        cols["households"] = pd.to_numeric(demand["households"], errors="coerce").to_numpy()
    cols["snapped"] = dsnap.ok
    cols["access_m"] = dsnap.access_m
    cols["linked_past_fragment"] = dsnap.linked_past_fragment
    for seg in segments:
        if seg.name in demand.columns:
            cols[seg.name] = pd.to_numeric(demand[seg.name], errors="coerce").fillna(0).to_numpy()

    demand_xy = anchor_xy(demand.geometry.to_numpy())
    for tier in tiers:
        cols.update(
            tier_columns(network, dsnap, fsnap, fac_ids, kinds, tier, tier.target_m * search_factor)
        )
        walk = cols[f"{tier.name}_walk_m"]
        for seg in segments:
            if seg.name in demand.columns:
                reach = tier.metres_at(seg.speed_m_per_min)
                cols[f"{tier.name}_{seg.name}_covered"] = np.nan_to_num(walk, nan=np.inf) <= (
                    reach + _TOL_M
                )
        circle = circle_distances(demand_xy, facilities, tier.kinds)
        cols[f"{tier.name}_circle_m"] = circle
        cols[f"{tier.name}_circle_covered"] = circle <= tier.target_m + _TOL_M
    points = pd.DataFrame(cols, index=demand.index)
    fac_table = pd.DataFrame(
        {
            "facility_id": fac_ids,
            "kind": kinds,
            "name": facilities["name"].astype("string").to_numpy()
            if "name" in facilities
            else pd.array([pd.NA] * len(facilities), dtype="string"),
            "snapped": fsnap.ok,
            "access_m": fsnap.access_m,
        },
        index=facilities.index,
    )
    fac_table = facility_load(points, fac_table, tiers)
    moved = dsnap.linked_past_fragment
    extras = {
        "circle_vs_walk": circle_vs_walk(points, tiers),
        "linked_past_fragment": {
            "demand_points": int(moved.sum()),
            "residents": float(demand["population"].to_numpy()[moved].sum()),
            "facilities": int(fsnap.linked_past_fragment.sum()),
            "facility_ids": fac_ids[fsnap.linked_past_fragment].tolist(),
        },
    }
    return Coverage(
        points, fac_table, tiers, float(snap_limit_m), float(search_factor), extras, segments
    )


def _warn_unsnapped(
    demand: gpd.GeoDataFrame, dsnap: Snap, fac_ids: np.ndarray, fsnap: Snap, snap_limit_m: float
) -> None:
    """Log what could not be snapped (the summary and the CLI report it: info, not warning)."""
    n_fac = int((~fsnap.ok).sum())
    if n_fac:
        log.info(
            "%d facilities lie farther than %g m from any walkable street and are not used: %s",
            n_fac,
            snap_limit_m,
            ", ".join(fac_ids[~fsnap.ok][:10]),
        )
    n_dem = int((~dsnap.ok).sum())
    if n_dem:
        log.info(
            "%d demand points (%.0f residents) lie farther than %g m from any walkable street",
            n_dem,
            demand["population"].to_numpy()[~dsnap.ok].sum(),
            snap_limit_m,
        )


def tier_columns(
    network: WalkNetwork,
    dsnap: Snap,
    fsnap: Snap,
    fac_ids: np.ndarray,
    kinds: np.ndarray,
    tier: Tier,
    limit_m: float,
    *,
    target_m: float | None = None,
    prefix: str | None = None,
) -> dict[str, np.ndarray]:
    """One tier's per-point columns: ``<prefix>_facility_id``, ``_walk_m`` (NaN past the
    limit), ``_covered`` (within ``target_m``, default the tier's) and ``_status``."""
    target = tier.target_m if target_m is None else target_m
    name = prefix or tier.name
    sel = np.isin(kinds, tier.kinds)
    walk, fac = nearest_facility(network, dsnap, fsnap.subset(sel), limit_m=limit_m)
    ids = np.full(len(fac), None, dtype=object)
    if sel.any():
        ids[fac >= 0] = fac_ids[sel][fac[fac >= 0]]
    covered = walk <= target + _TOL_M
    d_comp = np.full(len(dsnap), -1)
    d_comp[dsnap.ok] = network.component[network.edge_u[dsnap.edge[dsnap.ok]]]
    ok = sel & fsnap.ok
    comps = np.unique(network.component[network.edge_u[fsnap.edge[ok]]])
    reachable = np.isin(d_comp, comps)
    status = np.where(
        covered,
        STATUS_COVERED,
        np.where(
            ~dsnap.ok, STATUS_UNSNAPPED, np.where(reachable, STATUS_TOO_FAR, STATUS_NO_FACILITY)
        ),
    )
    return {
        f"{name}_facility_id": ids,
        f"{name}_walk_m": np.where(np.isfinite(walk), walk, np.nan),
        f"{name}_covered": covered,
        f"{name}_status": status,
    }


def circle_distances(
    demand: gpd.GeoDataFrame | np.ndarray,
    facilities: gpd.GeoDataFrame,
    kinds: tuple[str, ...],
) -> np.ndarray:
    """Straight-line distance from each demand point (a frame, or ``(n, 2)`` coordinates) to
    the nearest facility of ``kinds``."""
    from scipy.spatial import cKDTree

    sel = facilities["kind"].isin(kinds).to_numpy()
    if not sel.any():
        return np.full(len(demand), np.inf)
    fxy = anchor_xy(facilities.geometry.to_numpy()[sel])
    if isinstance(demand, np.ndarray):
        dxy = demand
    else:
        dxy = anchor_xy(demand.geometry.to_numpy())
    dist, _ = cKDTree(fxy).query(dxy, k=1)
    return np.asarray(dist, dtype="float64")


def circle_vs_walk(points: pd.DataFrame, tiers: tuple[Tier, ...]) -> dict[str, Any]:
    """Compass-drawn circles of the tier's radius versus walking coverage, per tier.

    ``overcounted_residents`` are inside a circle but not within the distance on foot: the
    residents a straight-line analysis wrongly counts as served. ``walk_only_residents`` is
    always 0 (a walk is never shorter than the straight line); it is reported as a check.
    """
    pop = points["population"].to_numpy()
    residents = float(pop.sum())
    out: dict[str, Any] = {}
    for tier in tiers:
        circ = points[f"{tier.name}_circle_covered"].to_numpy(dtype=bool)
        walk = points[f"{tier.name}_covered"].to_numpy(dtype=bool)
        circle_res = float(pop[circ].sum())
        walk_res = float(pop[walk].sum())
        out[tier.name] = {
            "radius_m": tier.target_m,
            "circle_covered_residents": circle_res,
            "walk_covered_residents": walk_res,
            "circle_share": circle_res / residents if residents else None,
            "walk_share": walk_res / residents if residents else None,
            "overcounted_residents": float(pop[circ & ~walk].sum()),
            "overcounted_points": int((circ & ~walk).sum()),
            "walk_only_residents": float(pop[walk & ~circ].sum()),
        }
    return out


def facility_load(
    points: pd.DataFrame, facilities: pd.DataFrame, tiers: tuple[Tier, ...]
) -> pd.DataFrame:
    """Each facility's service load per tier: the residents (and points) it is nearest to
    within the tier's distance."""
    out = facilities.copy()
    for tier in tiers:
        covered = points[points[f"{tier.name}_covered"]]
        who = tier.segment if tier.segment in points.columns else "population"
        grouped = covered.groupby(f"{tier.name}_facility_id")[who]
        load = grouped.sum()
        count = grouped.size()
        ids = out["facility_id"].astype(str)
        serves = out["kind"].isin(tier.kinds)
        out[f"{tier.name}_load_residents"] = np.where(serves, ids.map(load).fillna(0.0), np.nan)
        out[f"{tier.name}_load_points"] = np.where(serves, ids.map(count).fillna(0), np.nan)
    return out


def coverage_table(cov: Coverage) -> pd.DataFrame:
    """The per-point table as written to ``coverage.csv``: ids (and names, where the demand
    file has them), population (households and
    segment counts when there are), and per tier the nearest facility, the walk, covered and
    status, and ``<tier>_<segment>_covered`` per segment."""
    cols = ["demand_id", *(["name"] if "name" in cov.points else []), "population"]
    if "households" in cov.points:
        cols.append("households")
    segs = [s.name for s in cov.segments if s.name in cov.points]
    cols += segs
    flags = []
    for tier in cov.tiers:
        cols += [
            f"{tier.name}_facility_id",
            f"{tier.name}_walk_m",
            f"{tier.name}_covered",
            f"{tier.name}_status",
        ]
        seg_cols = [
            f"{tier.name}_{s}_covered" for s in segs if f"{tier.name}_{s}_covered" in cov.points
        ]
        cols += seg_cols
        flags += [f"{tier.name}_covered", *seg_cols]
    table = cov.points[cols].copy()
    for tier in cov.tiers:
        table[f"{tier.name}_walk_m"] = table[f"{tier.name}_walk_m"].round(1)
    for col in flags:
        table[col] = np.where(table[col].to_numpy(dtype=bool), "true", "false")
    for col in ("population", "households", *segs):
        if col in table:
            table[col] = table[col].round(2)
    return table
