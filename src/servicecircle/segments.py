"""Demand segments: who is served, each at its own walking pace.

一老一小 (the elderly and young children) and 新就业群体 (delivery riders and couriers) walk at
their own pace: a 5-minute walk of an older resident is shorter than an adult's. A segment has a
count per demand point — a column of the user's file, or a share of the population — and a
walking speed; a tier's minutes become metres per segment in :meth:`Tier.metres_at` (the one
conversion), and every output states the metres used.

Default speeds: adults 1.0 m/s (the pace GB 50180-2018 implies: 300 m in 5 minutes), the elderly
0.8 m/s and children 0.8 m/s (gait studies put older people at risk of mobility loss near
0.76 m/s against 1.2–1.3 m/s for adults; the US MUTCD checks crossings at 0.9 m/s for slow
walkers), workers 1.0 m/s. Default shares: the 2020 census (第七次全国人口普查), national:
60 and over 18.70 %, 0–14 years 17.95 % — settable (a province's or a district's own figures).
Workers come from non-residential floor area (offices, shops, commercial landuse) ÷ m² per
worker, or from a user file.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import require_metric
from ._errors import InputError
from .files import cell_text, row_place

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)

RESIDENTS = "residents"
ADULT_SPEED_M_PER_S = 1.0


@dataclass(frozen=True)
class Segment:
    """A part of the demand with its own walking pace.

    Attributes
    ----------
    name
        Column-safe name (``elderly``, ``children``, ``workers`` or the user's).
    speed_m_per_s
        Walking speed.
    share
        Share of the population when a demand point has no count of its own (``None``: the
        segment needs its own column, as workers do).
    source
        Where the share comes from.
    label, label_en
        Display names.
    """

    name: str
    speed_m_per_s: float
    share: float | None = None
    source: str = ""
    label: str | None = None
    label_en: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.name) or self.name == RESIDENTS:
            raise InputError(
                f"segment name {self.name!r} must start with a letter and use only letters, "
                f"digits and '_' (and not be {RESIDENTS!r})"
            )
        if not (self.speed_m_per_s > 0 and np.isfinite(self.speed_m_per_s)):
            raise InputError(f"segment {self.name}: speed must be positive m/s")
        if self.share is not None and not 0 <= self.share <= 1:
            raise InputError(
                f"segment {self.name}: share must be between 0 and 1; got {self.share}"
            )

    @property
    def speed_m_per_min(self) -> float:
        """The speed in metres per minute."""
        return self.speed_m_per_s * 60.0

    def display(self, lang: str = "zh") -> str:
        """The segment's display name in ``lang``."""
        if lang == "en":
            return self.label_en or self.label or self.name
        return self.label or self.name


CENSUS_2020 = "2020 census (第七次全国人口普查), national"
DEFAULT_SEGMENTS = (
    Segment("elderly", 0.8, 0.1870, f"{CENSUS_2020}: aged 60 and over", "老年人", "elderly"),
    Segment("children", 0.8, 0.1795, f"{CENSUS_2020}: aged 0–14", "儿童", "children"),
    Segment("workers", 1.0, None, "non-residential floor area or a file", "新就业群体", "workers"),
)
SEGMENTS_BY_NAME = {s.name: s for s in DEFAULT_SEGMENTS}


def parse_pairs(text: str | None, what: str) -> dict[str, float]:
    """``elderly=0.187,children=0.114`` → ``{"elderly": 0.187, "children": 0.114}``."""
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or not name.strip() or not np.isfinite(number):
            raise InputError(f"{what} {text!r}: give NAME=NUMBER pairs, e.g. elderly=0.187")
        out[name.strip()] = number
    return out


def choose_segments(
    names: list[str] | None = None,
    *,
    shares: dict[str, float] | None = None,
    speeds: dict[str, float] | None = None,
) -> tuple[Segment, ...]:
    """The segments of a run: ``names`` (default elderly and children), with shares and speeds
    (m/s) overriding the defaults. Bad names, negative shares or shares above 1 in total are
    refused with one line."""
    shares, speeds = shares or {}, speeds or {}
    chosen = list(names) if names else ["elderly", "children"]
    for name in {*shares, *speeds} - set(chosen):
        chosen.append(name)
    out = []
    for name in chosen:
        base = SEGMENTS_BY_NAME.get(name) or Segment(name, ADULT_SPEED_M_PER_S, None, "your column")
        share = shares.get(name, base.share)
        if share is not None and share < 0:
            raise InputError(f"--segment-shares {name}={share}: a share cannot be negative")
        out.append(
            replace(
                base,
                share=share,
                speed_m_per_s=speeds.get(name, base.speed_m_per_s),
                source="given" if name in shares else base.source,
            )
        )
    total = sum(s.share for s in out if s.share is not None and s.name != "workers")
    if total > 1 + 1e-9:
        raise InputError(
            f"segment shares add up to {total:.3f}, more than the whole population; check "
            "--segment-shares"
        )
    names_seen = [s.name for s in out]
    if len(set(names_seen)) != len(names_seen):
        raise InputError("a segment is named twice; give each segment once")
    return tuple(out)


def add_segments(demand: gpd.GeoDataFrame, segments: tuple[Segment, ...]) -> gpd.GeoDataFrame:
    """A copy of ``demand`` with one count column per segment: the file's own column when it has
    one (numbers ≥ 0, at most the population unless the segment is ``workers``), else the
    population × the segment's share. ``attrs["segments"]`` says which, per segment."""
    out = demand.copy()
    pop = out["population"].to_numpy(dtype=float)
    about: dict[str, Any] = {}
    for seg in segments:
        if seg.name in out.columns:
            raw = out[seg.name]
            counts = pd.to_numeric(raw, errors="coerce")
            bad = counts.isna() & raw.notna() | (counts < 0) | ~np.isfinite(counts.fillna(0))
            if bad.any():
                first = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(
                    f"demand: column {seg.name!r} has {int(bad.sum())} values that are not counts "
                    f"≥ 0 (first at {row_place(out, first)}: {cell_text(raw.iloc[first])})"
                )
            counts = counts.fillna(0.0).to_numpy(dtype=float)
            how = "column"
        elif seg.share is not None:
            counts = pop * seg.share
            how = "share"
        elif seg.name == "workers":  # worker points come as their own demand (--workers)
            counts = np.zeros(len(out))
            how = "none"
        else:
            known = ", ".join(n for n in SEGMENTS_BY_NAME if n != "workers")
            raise InputError(
                f"segment {seg.name!r}: the demand has no {seg.name!r} column and no share was "
                f"given; name a column of the demand file, give --segment-shares {seg.name}=0.1, "
                f"or use {known}"
            )
        out[seg.name] = counts
        about[seg.name] = {
            "from": how,
            "share": seg.share if how == "share" else None,
            "source": seg.source if how == "share" else f"column {seg.name!r}",
            "speed_m_per_s": seg.speed_m_per_s,
            "total": float(counts.sum()),
        }
    out.attrs = {**demand.attrs, "segments": about}
    return out


#: Non-residential uses that hold workplaces (building or landuse values).
WORKPLACE_BUILDINGS = ("commercial", "office", "retail", "industrial", "warehouse", "hotel",
                       "supermarket", "kiosk")  # fmt: skip
WORKPLACE_LANDUSE = ("commercial", "retail", "industrial")


@dataclass(frozen=True)
class WorkerEstimate:
    """How workers are estimated from buildings: floor area ÷ ``floor_area_per_worker_m2``.

    The default 30 m² per worker is a planning convention (offices hold about 10–20 m² per
    desk, shops and restaurants more); ``default_levels`` as for homes.
    """

    floor_area_per_worker_m2: float = 30.0
    default_levels: float = 3.0
    max_levels: float = 60.0


def workers_from_buildings(
    buildings: gpd.GeoDataFrame,
    *,
    landuse: gpd.GeoDataFrame | None = None,
    params: WorkerEstimate | None = None,
) -> gpd.GeoDataFrame:
    """Worker points from workplace buildings (offices, shops, commercial landuse).

    Returns demand points with ``population`` 0 and ``workers`` = floor area ÷ m² per worker.
    """
    import geopandas as gpd

    params = params or WorkerEstimate()
    crs = require_metric(buildings.crs, "buildings")
    empty = gpd.GeoDataFrame({"demand_id": [], "population": [], "workers": []}, geometry=[],
                             crs=crs)  # fmt: skip
    if len(buildings) == 0:
        return empty
    b = buildings.reset_index(drop=True)
    b = b[b.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)
    kind = b["building"].astype("string").str.lower().fillna("") if "building" in b else ""
    work = np.array(pd.Series(kind).isin(WORKPLACE_BUILDINGS), dtype=bool)
    for tag in ("office", "shop"):
        if tag in b.columns:
            work |= b[tag].notna().to_numpy()
    if landuse is not None and len(landuse) and "landuse" in landuse.columns:
        zones = landuse[landuse["landuse"].isin(WORKPLACE_LANDUSE)]
        if len(zones):
            hit = zones.sindex.query(b.geometry.representative_point().to_numpy(), "within")
            work[np.unique(hit[0])] = True
    b = b.loc[work].reset_index(drop=True)
    if len(b) == 0:
        return empty
    raw = b.get("building:levels", pd.Series(np.nan, index=b.index))
    levels = pd.to_numeric(raw.astype("string").str.extract(r"([0-9]+(?:\.[0-9]+)?)")[0],
                           errors="coerce")  # fmt: skip
    levels = levels.where(levels > 0, params.default_levels).clip(upper=params.max_levels)
    workers = b.geometry.area.to_numpy() * levels.to_numpy() / params.floor_area_per_worker_m2
    ids = b["osm_id"].astype(str) if "osm_id" in b.columns else pd.Series(b.index.astype(str))
    out = gpd.GeoDataFrame(
        {"demand_id": ("w" + ids).to_numpy(), "population": 0.0, "workers": workers},
        geometry=b.geometry.representative_point().to_numpy(),
        crs=crs,
    )
    out = out[~out["demand_id"].duplicated()].reset_index(drop=True)
    out.attrs["counts"] = {"workplaces": len(out), "workers": float(workers.sum())}
    return out
