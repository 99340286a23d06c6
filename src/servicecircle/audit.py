"""The life-circle audit (生活圈体检): which required facility types each resident reaches.

For every demand point and facility type of a :class:`~servicecircle.standard.LifeCircleStandard`:
the walking distance to the nearest POI of that type (the walk of DESIGN.md: access leg +
network path + egress leg), whether it is within the type's ``max_walk_m``, and which POI it
is. Distances are searched up to ``max_walk_m × search_factor`` (farther ones are ``NaN``), as
in :func:`servicecircle.coverage.compute_coverage`.

The array core, :func:`audit_distances`, takes snaps: demand is snapped once by the caller,
and each type runs one limited multi-source Dijkstra through the coverage engine
(:func:`servicecircle.coverage.nearest_facility`). :func:`audit` is the GeoDataFrame adapter:
it snaps demand and every POI once and hands each type its subset.

What counts as missing: a point misses a *requirement* when no POI of it is within reach. A
requirement is one basic (基础保障型) type, or the types of one ``group`` together (菜市场或
生鲜超市: either will do). ``types_missing`` counts the requirements of every level a point
misses; ``missing_<level>`` counts them per level. Quality (品质提升型) types are measured but
never counted as missing. Points that did not reach the network miss everything.

The core is weight-agnostic: :meth:`AuditResult.summary` takes the population vector. Each
type's ``segment`` (children, elderly) is carried into the summary for segment weighting.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._errors import InputError
from .coverage import DEFAULT_SEARCH_FACTOR
from .network import DEFAULT_SNAP_LIMIT_M, Snap, WalkNetwork
from .paths import nearest_facility
from .standard import FacilityType, LifeCircleStandard, load_standard

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)

_TOL_M = 1e-6
"""A walk this much over the distance still counts as within (float noise)."""


@dataclass(frozen=True, eq=False)
class AuditResult:
    """Walks from every demand point to the nearest POI of every facility type.

    Attributes
    ----------
    standard
        The facility types; column ``j`` of the arrays is ``standard.types[j]``.
    walk_m
        ``(points, types)`` walking distance in metres; ``inf`` beyond the search limit, for
        unsnapped points and for types with no POI.
    facility
        ``(points, types)`` row of the nearest POI among that type's POIs, ``-1`` when none.
    poi_ids
        Per type, the ids of its POIs (the rows ``facility`` indexes).
    pois_snapped
        Per type, how many of its POIs reached the walk network.
    snapped
        Demand points that reached the walk network.
    search_factor
        Distances were searched up to ``max_walk_m × search_factor``.
    index
        The demand frame's index (row labels of :meth:`table`).
    """

    standard: LifeCircleStandard
    walk_m: np.ndarray
    facility: np.ndarray
    poi_ids: dict[str, np.ndarray]
    pois_snapped: dict[str, int]
    snapped: np.ndarray
    search_factor: float
    index: pd.Index

    @property
    def type_ids(self) -> tuple[str, ...]:
        """The facility type of each column."""
        return self.standard.ids

    @property
    def max_walk_m(self) -> np.ndarray:
        """Each type's walking distance."""
        return np.array([t.max_walk_m for t in self.standard.types], dtype="float64")

    @property
    def search_limit_m(self) -> np.ndarray:
        """Each type's search limit (``max_walk_m × search_factor``)."""
        return self.max_walk_m * self.search_factor

    @property
    def within(self) -> np.ndarray:
        """``(points, types)``: the nearest POI of the type is within its distance."""
        return self.walk_m <= self.max_walk_m[None, :] + _TOL_M

    @property
    def pois_found(self) -> dict[str, int]:
        """Per type, how many POIs it has (snapped or not)."""
        return {t: len(ids) for t, ids in self.poi_ids.items()}

    def met(self, level: str | None = None) -> tuple[list[tuple[FacilityType, ...]], np.ndarray]:
        """The basic requirements of ``level`` (every level when ``None``) and a ``(points,
        requirements)`` mask of the ones each point has within reach."""
        reqs = list(self.standard.requirements(level))
        col = {t: j for j, t in enumerate(self.type_ids)}
        within = self.within
        mask = np.zeros((len(self.snapped), len(reqs)), dtype=bool)
        for k, members in enumerate(reqs):
            mask[:, k] = within[:, [col[m.id] for m in members]].any(axis=1)
        return reqs, mask

    def missing(self, level: str | None = None) -> np.ndarray:
        """How many basic requirements of ``level`` (every level when ``None``) each point
        misses."""
        _reqs, mask = self.met(level)
        return (~mask).sum(axis=1).astype("int64")

    def table(self) -> pd.DataFrame:
        """One row per demand point: ``snapped``; per type ``<type>_walk_m`` (NaN beyond the
        search limit), ``<type>_within`` and ``<type>_facility_id`` (``<NA>`` when none in
        reach); ``types_missing`` (basic requirements of every level not within reach),
        ``missing_<level>`` per level, and ``missing_ids`` (the missing requirements, ``;``
        between them, ``|`` between the types of a group)."""
        cols: dict[str, Any] = {"snapped": self.snapped}
        within = self.within
        for j, t in enumerate(self.standard.types):
            walk = self.walk_m[:, j]
            fac = self.facility[:, j]
            ids = np.full(len(fac), None, dtype=object)
            ids[fac >= 0] = self.poi_ids[t.id][fac[fac >= 0]]
            cols[f"{t.id}_walk_m"] = np.where(np.isfinite(walk), walk, np.nan)
            cols[f"{t.id}_within"] = within[:, j]
            cols[f"{t.id}_facility_id"] = pd.array(ids, dtype="string")
        reqs, mask = self.met()
        cols["types_missing"] = (~mask).sum(axis=1).astype("int64")
        for level in self.standard.levels():
            cols[f"missing_{level}"] = self.missing(level)
        labels = ["|".join(m.id for m in members) for members in reqs]
        cols["missing_ids"] = [
            ";".join(label for label, ok in zip(labels, row, strict=True) if not ok)
            for row in mask.tolist()
        ]
        return pd.DataFrame(cols, index=self.index)

    def summary(self, population: Sequence[float] | np.ndarray | None = None) -> dict[str, Any]:
        """Per type and per level, weighted by ``population`` (one per point when ``None``).

        Per type: level, kind, segment, distance, search limit, POIs found and snapped,
        residents within reach and their share. Per level (and ``all_levels``): the residents
        with every basic requirement within reach, also counting only the requirements that
        have a POI in the area, and the mean number missing. ``absent_types``: types with no
        POI in the whole area.
        """
        pop = self._population(population)
        residents = float(pop.sum())

        def share(x: float) -> float | None:
            return x / residents if residents > 0 else None

        within = self.within
        types: dict[str, Any] = {}
        for j, t in enumerate(self.standard.types):
            walk = self.walk_m[:, j]
            reached = np.isfinite(walk)
            inside = float(pop[within[:, j]].sum())
            types[t.id] = {
                "name_zh": t.name_zh,
                "level": t.level,
                "kind": t.kind,
                "segment": t.segment,
                "group": t.group,
                "max_walk_m": t.max_walk_m,
                "convention": t.convention,
                "search_limit_m": t.max_walk_m * self.search_factor,
                "pois": self.pois_found[t.id],
                "pois_snapped": self.pois_snapped[t.id],
                "points_within": int(within[:, j].sum()),
                "residents_within": inside,
                "share": share(inside),
                "median_walk_m_of_reached": float(np.median(walk[reached]))
                if reached.any()
                else None,
            }
        levels = {level: self._level_summary(level, pop, share) for level in self.standard.levels()}
        unsnapped = ~self.snapped
        return {
            "standard": self.standard.name,
            "search_factor": self.search_factor,
            "demand_points": len(self.snapped),
            "residents": residents,
            "unsnapped_points": int(unsnapped.sum()),
            "unsnapped_residents": float(pop[unsnapped].sum()),
            "types": types,
            "levels": levels,
            "all_levels": self._level_summary(None, pop, share),
            "absent_types": [t for t in self.type_ids if self.pois_found[t] == 0],
        }

    def _level_summary(self, level: str | None, pop: np.ndarray, share: Any) -> dict[str, Any]:
        reqs, mask = self.met(level)
        found = self.pois_found
        present = np.array([any(found[m.id] > 0 for m in r) for r in reqs], dtype=bool)
        all_met = mask.all(axis=1)
        present_met = mask[:, present].all(axis=1)
        missing = (~mask).sum(axis=1)
        residents = float(pop.sum())
        return {
            "requirements": ["|".join(m.id for m in r) for r in reqs],
            "absent_requirements": [
                "|".join(m.id for m in r) for r, p in zip(reqs, present, strict=True) if not p
            ],
            "residents_all_basic": float(pop[all_met].sum()),
            "share_all_basic": share(float(pop[all_met].sum())),
            # with no basic type present at all, "every present type" is vacuous: None, not 100 %
            "residents_all_basic_present": float(pop[present_met].sum()) if present.any() else None,
            "share_all_basic_present": share(float(pop[present_met].sum()))
            if present.any()
            else None,
            "mean_missing": float((missing * pop).sum() / residents) if residents > 0 else None,
        }

    def _population(self, population: Sequence[float] | np.ndarray | None) -> np.ndarray:
        n = len(self.snapped)
        if population is None:
            return np.ones(n)
        pop = np.asarray(population, dtype="float64")
        if pop.shape != (n,):
            raise InputError(
                f"population has {pop.size} values for {n} demand points; give one per point"
            )
        if not np.all(np.isfinite(pop)) or (pop < 0).any():
            raise InputError("population must be finite and not negative for every point")
        return pop


def audit_distances(
    network: WalkNetwork,
    dsnap: Snap,
    pois_by_type: Mapping[str, Snap],
    standard: LifeCircleStandard,
    *,
    search_factor: float = DEFAULT_SEARCH_FACTOR,
    poi_ids: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
    index: pd.Index | None = None,
) -> AuditResult:
    """Walk from every snapped demand point to the nearest POI of every facility type.

    Parameters
    ----------
    network
        The walk network.
    dsnap
        The demand points' snaps (``network.snap(demand)``), made once by the caller.
    pois_by_type
        Per type id, the snaps of that type's POIs; a type of ``standard`` left out has none.
    standard
        The facility types.
    search_factor
        Each type is searched up to ``max_walk_m × search_factor`` (at least 1).
    poi_ids
        Per type, the ids of its POIs (default: their row numbers, as text).
    index
        Row labels of the demand points (default ``0 … n-1``).

    Returns
    -------
    AuditResult
    """
    if not (np.isfinite(search_factor) and search_factor >= 1):
        raise InputError(f"search factor must be at least 1; got {search_factor}")
    known = standard.ids
    unknown = [k for k in pois_by_type if k not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(
            f"POIs given for unknown facility type {unknown[0]!r}{hint}; the standard "
            f"{standard.name!r} has {', '.join(known)}"
        )
    n = len(dsnap)
    walk = np.full((n, len(known)), np.inf)
    fac = np.full((n, len(known)), -1, dtype="int64")
    ids_out: dict[str, np.ndarray] = {}
    snapped: dict[str, int] = {}
    for j, t in enumerate(standard.types):
        fsnap = pois_by_type.get(t.id)
        count = 0 if fsnap is None else len(fsnap)
        given = None if poi_ids is None else poi_ids.get(t.id)
        ids = np.array([str(i) for i in range(count)] if given is None else given, dtype=object)
        if len(ids) != count:
            raise InputError(f"{t.id}: {len(ids)} POI ids for {count} POIs; give one per POI")
        ids_out[t.id] = ids.astype(str).astype(object)
        snapped[t.id] = 0 if fsnap is None else int(fsnap.ok.sum())
        if fsnap is None or snapped[t.id] == 0:
            continue
        w, f = nearest_facility(network, dsnap, fsnap, limit_m=t.max_walk_m * search_factor)
        walk[:, j], fac[:, j] = w, f
    log.info(
        "audit: %d demand points, %d facility types (%d with POIs)",
        n,
        len(known),
        sum(1 for v in snapped.values() if v),
    )
    return AuditResult(
        standard=standard,
        walk_m=walk,
        facility=fac,
        poi_ids=ids_out,
        pois_snapped=snapped,
        snapped=dsnap.ok.copy(),
        search_factor=float(search_factor),
        index=pd.RangeIndex(n) if index is None else pd.Index(index),
    )


def audit(
    network: WalkNetwork,
    demand: gpd.GeoDataFrame,
    pois: gpd.GeoDataFrame,
    standard: LifeCircleStandard | str = "gb50180",
    *,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
    search_factor: float = DEFAULT_SEARCH_FACTOR,
) -> AuditResult:
    """The audit of ``demand`` against ``pois`` (GeoDataFrame adapter of
    :func:`audit_distances`).

    Parameters
    ----------
    network
        The walk network.
    demand
        Demand points (or polygons, taken at a point on their surface) in the network's CRS.
    pois
        Facilities with ``poi_id`` and ``type`` (:func:`servicecircle.standard.match_pois` or
        :func:`servicecircle.standard.read_pois`), in the network's CRS.
    standard
        The facility types, or the name or path of a standard file.
    snap_limit_m
        Points and POIs farther than this from every walkable street are not moved.
    search_factor
        Each type is searched up to ``max_walk_m × search_factor``.

    Returns
    -------
    AuditResult
        Rows in the order of ``demand`` (its index).
    """
    std = standard if isinstance(standard, LifeCircleStandard) else load_standard(standard)
    for col in ("poi_id", "type"):
        if col not in pois.columns:
            raise InputError(
                f"POIs have no {col!r} column; make them with match_pois() or read_pois()"
            )
    types = pois["type"].astype(str).to_numpy()
    bad = sorted(set(types) - set(std.ids))
    if bad:
        raise InputError(
            f"POIs name unknown facility types ({', '.join(bad[:5])}); the standard "
            f"{std.name!r} has {', '.join(std.ids)}"
        )
    dsnap = network.snap(demand, snap_limit_m=snap_limit_m)
    fsnap = network.snap(pois, snap_limit_m=snap_limit_m)
    ids = pois["poi_id"].astype(str).to_numpy()
    if (~fsnap.ok).any():
        log.warning(
            "%d POIs lie farther than %g m from any walkable street and are not used: %s",
            int((~fsnap.ok).sum()),
            snap_limit_m,
            ", ".join(ids[~fsnap.ok][:10]),
        )
    if (~dsnap.ok).any():
        log.warning(
            "%d demand points lie farther than %g m from any walkable street",
            int((~dsnap.ok).sum()),
            snap_limit_m,
        )
    by_type = {t.id: fsnap.subset(types == t.id) for t in std.types}
    id_by_type = {t.id: ids[types == t.id] for t in std.types}
    return audit_distances(
        network,
        dsnap,
        by_type,
        std,
        search_factor=search_factor,
        poi_ids=id_by_type,
        index=demand.index,
    )
