"""Demand: residents as points with a population (and households).

From residential buildings (footprint × levels ÷ floor area per resident) or from a user file.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import require_metric
from ._errors import InputError
from .files import DEFAULT_FILES, FileOptions, cell_text, counted, id_texts, row_place

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildingPopulation:
    """How residents are estimated from building footprints (all overridable).

    population = footprint area (m²) × levels ÷ ``floor_area_per_resident_m2``

    Attributes
    ----------
    floor_area_per_resident_m2
        Gross floor area per resident. Default 40 m²: China's urban housing floor area per
        person (about 38.6 m² in the 2020 census) rounded up for walls and common space.
    default_levels
        Levels when ``building:levels`` is missing or unreadable. Default 6: the common
        multi-storey (多层) walk-up block.
    household_size
        Residents per household, for households = population ÷ size. Default 2.62 (2020 census).
    residential_kinds
        ``building=*`` values taken as homes.
    unspecified_is_residential
        Whether ``building=yes`` (no use given, as for most buildings in Chinese OSM data) counts
        as homes, unless it carries a non-residential tag (amenity, shop, office, tourism,
        healthcare) or lies in non-residential ``landuse``. Default True.
    min_footprint_m2
        Smaller footprints (sheds, kiosks) are not homes. Default 30 m².
    max_levels
        Levels above this are taken as tagging errors and capped. Default 60.
    """

    floor_area_per_resident_m2: float = 40.0
    default_levels: float = 6.0
    household_size: float = 2.62
    residential_kinds: tuple[str, ...] = (
        "residential",
        "apartments",
        "house",
        "detached",
        "semidetached_house",
        "terrace",
        "dormitory",
        "bungalow",
        "farm",
        "cabin",
        "static_caravan",
        "villa",
    )
    unspecified_is_residential: bool = True
    min_footprint_m2: float = 30.0
    max_levels: float = 60.0
    non_residential_landuse: tuple[str, ...] = (
        "commercial",
        "retail",
        "industrial",
        "military",
        "education",
        "religious",
        "railway",
        "construction",
        "institutional",
        "grass",
        "cemetery",
    )

    def __post_init__(self) -> None:
        for name in ("floor_area_per_resident_m2", "default_levels", "household_size"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be positive; got {getattr(self, name)}")


NON_RESIDENTIAL_TAGS = ("amenity", "shop", "office", "tourism", "healthcare", "craft")


def demand_from_buildings(
    buildings: gpd.GeoDataFrame,
    *,
    landuse: gpd.GeoDataFrame | None = None,
    params: BuildingPopulation | None = None,
) -> gpd.GeoDataFrame:
    """Resident points from residential building footprints.

    Parameters
    ----------
    buildings
        Footprints with OSM tags (``building``, ``building:levels``, …) in a metric CRS.
    landuse
        ``landuse=*`` polygons; buildings of unspecified use inside non-residential landuse are
        not counted as homes.
    params
        Estimation parameters (see :class:`BuildingPopulation`).

    Returns
    -------
    geopandas.GeoDataFrame
        ``demand_id`` (``b<osm id>``), ``population``, ``households``, ``levels``,
        ``levels_source`` (``tag`` or ``default``), ``footprint_m2``, ``building``, geometry
        (a point inside the footprint). ``attrs["counts"]`` says how many buildings were used
        and why the others were not.
    """
    import geopandas as gpd
    import shapely

    params = params or BuildingPopulation()
    crs = require_metric(buildings.crs, "buildings")
    counts: dict[str, int] = {"buildings": len(buildings)}
    if len(buildings) == 0:
        out = gpd.GeoDataFrame(
            {"demand_id": [], "population": [], "households": []}, geometry=[], crs=crs
        )
        out.attrs["counts"] = counts
        return out
    b = buildings.reset_index(drop=True)
    polygonal = b.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    counts["not_polygons"] = int((~polygonal).sum())
    kind = b["building"].astype("string").str.lower().fillna("yes").to_numpy()
    listed = np.isin(kind, params.residential_kinds)
    unspecified = kind == "yes"
    other_use = np.zeros(len(b), dtype=bool)
    for tag in NON_RESIDENTIAL_TAGS:
        if tag in b.columns:
            other_use |= b[tag].notna().to_numpy()
    if landuse is not None and len(landuse) and "landuse" in landuse.columns:
        nonres = landuse[landuse["landuse"].isin(params.non_residential_landuse)]
        if len(nonres):
            pts = b.geometry.representative_point()
            hit = nonres.sindex.query(pts.to_numpy(), predicate="within")
            in_nonres = np.zeros(len(b), dtype=bool)
            in_nonres[np.unique(hit[0])] = True
            other_use |= in_nonres & unspecified
    homes = polygonal & (listed | (unspecified & params.unspecified_is_residential & ~other_use))
    counts["not_residential"] = int((polygonal & ~homes).sum())
    area = shapely.area(b.geometry.to_numpy())
    small = homes & (area < params.min_footprint_m2)
    counts["too_small"] = int(small.sum())
    homes &= ~small
    b = b.loc[homes].reset_index(drop=True)
    area = area[homes]
    raw = b.get("building:levels", pd.Series(np.nan, index=b.index))
    levels = pd.to_numeric(
        raw.astype("string").str.extract(r"([0-9]+(?:\.[0-9]+)?)")[0], errors="coerce"
    )
    tagged = levels.notna() & (levels > 0)
    counts["levels_capped"] = int((levels > params.max_levels).sum())
    levels = levels.where(tagged, params.default_levels).clip(upper=params.max_levels)
    population = area * levels.to_numpy() / params.floor_area_per_resident_m2
    counts["used"] = len(b)
    counts["levels_from_tag"] = int(tagged.sum())
    counts["levels_default"] = int((~tagged).sum())
    ids = b["osm_id"].astype(str) if "osm_id" in b.columns else pd.Series(b.index.astype(str))
    out = gpd.GeoDataFrame(
        {
            "demand_id": ("b" + ids).to_numpy(),
            "population": population,
            "households": population / params.household_size,
            "levels": levels.to_numpy(),
            "levels_source": np.where(tagged, "tag", "default"),
            "footprint_m2": area,
            "building": b["building"].astype("string").to_numpy(),
            # the footprint rides along (not a geometry column) so grids never cut a building
            "footprint": np.asarray(b.geometry.to_numpy(), dtype=object),
        },
        geometry=b.geometry.representative_point().to_numpy(),
        crs=crs,
    )
    dup = out["demand_id"].duplicated()
    if dup.any():
        out.loc[dup, "demand_id"] = out.loc[dup, "demand_id"] + "_" + out.index[dup].astype(str)
    out.attrs["counts"] = counts
    out.attrs["params"] = asdict(params)
    log.info(
        "demand from buildings: %d of %d buildings taken as homes, %.0f residents "
        "(levels from tag for %d)",
        len(out),
        counts["buildings"],
        float(population.sum()),
        counts["levels_from_tag"],
    )
    return out


def read_demand(
    path: str | Path,
    *,
    crs: Any,
    household_size: float = BuildingPopulation.household_size,
    bbox: tuple[float, ...] | None = None,
    files: FileOptions = DEFAULT_FILES,
) -> gpd.GeoDataFrame:
    """Read demand from a file of points or polygons with a ``population`` column.

    ``households`` is optional (missing or unreadable values are estimated as population ÷
    ``household_size``, and counted); ``demand_id`` (or ``id``) is kept when present, numeric
    ids as whole numbers, and rows without one get ``d<row>`` (counted). Polygons become a
    point on their surface. ``attrs["counts"]`` says what was estimated.
    """
    require_metric(crs, "area")
    gdf = files.read(path, "demand file", to_crs=crs, bbox=bbox)
    if "demand_id" not in gdf.columns and "id" in gdf.columns:
        gdf = gdf.assign(demand_id=gdf["id"])
    gdf = validate_demand(gdf, what=f"demand file {path}")
    counts = dict(gdf.attrs.get("counts", {}))
    raw = gdf["households"] if "households" in gdf.columns else pd.Series(np.nan, gdf.index)
    hh = pd.to_numeric(raw, errors="coerce")
    hh = hh.where(np.isfinite(hh) & (hh >= 0))
    given = raw.notna() & (raw.astype("string").str.strip().fillna("") != "")  # blank: not given
    counts["households_unreadable"] = int((hh.isna() & given).sum())
    counts["households_estimated"] = int(hh.isna().sum())
    gdf["households"] = hh.fillna(gdf["population"] / household_size).astype("float64")
    kinds = set(gdf.geom_type)
    if kinds - {"Point"}:
        gdf["footprint"] = np.asarray(gdf.geometry.to_numpy(), dtype=object)
        gdf = gdf.set_geometry(gdf.geometry.representative_point())
    gdf.attrs["counts"] = {"features": len(gdf), **counts, **files.describe(gdf)}
    return gdf


def _row_ids(index: pd.Index) -> list[str]:
    """``d<row>`` ids from the file's rows (its index, kept by a bbox read; positions when the
    index is not one row number per feature)."""
    rows = index if pd.api.types.is_integer_dtype(index.dtype) and index.is_unique else None
    return [f"d{int(i)}" for i in (rows if rows is not None else range(len(index)))]


def validate_demand(demand: gpd.GeoDataFrame, what: str = "demand") -> gpd.GeoDataFrame:
    """Check a demand frame: metric CRS, ``population`` a finite number ≥ 0; ids as text,
    ``d<row>`` for rows without one (counted in ``attrs["counts"]["ids_generated"]``)."""
    require_metric(demand.crs, what)
    if "population" not in demand.columns:
        from .files import COLUMN_ALIASES

        names = ["population", *(k for k, v in COLUMN_ALIASES.items() if v == "population")]
        copied = {"demand_id"} if "id" in demand.columns else set()  # (read_demand's copy)
        found = [str(c) for c in demand.columns if c not in {"geometry", *copied}]
        raise InputError(
            f"{what}: has no population column ({' or '.join(names)}): add the residents of "
            f"each feature; its columns besides the coordinates: {', '.join(found) or 'none'}"
        )
    raw = demand["population"]
    pop = pd.to_numeric(raw, errors="coerce")
    for bad, why in (
        (pop.isna(), "a missing or non-numeric"),
        (~np.isfinite(pop.fillna(0)), "an infinite"),
        (pop < 0, "a negative"),
    ):
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            rows = counted(int(bad.sum()), "row has", "rows have")
            raise InputError(
                f"{what}: {rows} {why} population (first at {row_place(demand, first)}: "
                f"{cell_text(raw.iloc[first])}); give every row its residents as a number ≥ 0"
            )
    demand = demand.copy()
    demand["population"] = pop.astype("float64")
    counts = dict(demand.attrs.get("counts", {}))
    ids = (
        id_texts(demand["demand_id"])
        if "demand_id" in demand.columns
        else pd.Series(pd.NA, index=demand.index, dtype="string")
    )
    missing = ids.isna().to_numpy()
    if missing.any():
        counts["ids_generated"] = int(missing.sum())
        ids = ids.where(~missing, pd.Series(_row_ids(demand.index), index=ids.index))
    demand["demand_id"] = ids.astype(str)
    if demand["demand_id"].duplicated().any():
        dup = demand.loc[demand["demand_id"].duplicated(), "demand_id"].iloc[0]
        raise InputError(f"{what}: demand_id {dup!r} appears more than once; make ids unique")
    demand.attrs["counts"] = counts
    return demand
