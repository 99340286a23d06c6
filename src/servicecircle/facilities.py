"""Facilities: centres (党群服务中心) and stations (驿站/站点), from a file or from OSM tags."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import require_metric
from ._errors import InputError
from .files import DEFAULT_FILES, FileOptions, counted, id_texts, row_place
from .osmtags import rule_matches, rule_text
from .tiers import KIND_WORDS, KINDS, NOT_OURS, kind_of

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)

#: Words accepted in a facility file's ``kind`` column, mapped to the two kinds.
KIND_ALIASES = KIND_WORDS
#: Worker stations first (their names also say 驿站), then centres, then stations.
PRESET_ORDER = ("worker_station", "centre", "station")

CENTRE_NAMES = "党群服务中心|党群中心|社区服务中心|社区综合服务中心|街道办事处"

#: The documented OSM tag preset: which POIs count as centres and stations (names of other
#: services, :data:`~servicecircle.tiers.NOT_OURS`, as in facility files, never).
#: A rule matches when every tag in it matches (a value list means any of them; a string that
#: starts with ``~`` is a regular expression). Centres are checked first.
OSM_PRESETS: dict[str, dict[str, list[dict[str, Any]]]] = {
    "default": {
        "worker_station": [
            {"name": "~小哥|骑手|户外劳动者|快递员|外卖员|新就业群体|暖新驿站|暖蜂驿站"},
        ],
        "centre": [
            {"name": f"~^(?!.*(?:{NOT_OURS})).*(?:{CENTRE_NAMES})"},
            {"amenity": ["community_centre", "townhall"]},
            {"office": "government", "government": ["community", "social_services"]},
        ],
        "station": [
            {"name": f"~^(?!.*(?:{NOT_OURS})).*(?:驿站|服务站|工作站|便民服务点|居委会|村委会)"},
            {"amenity": ["social_facility", "social_centre", "library", "post_office"]},
            {"social_facility": True},
        ],
    },
}


def read_facilities(
    path: str | Path,
    *,
    crs: Any,
    bbox: tuple[float, ...] | None = None,
    files: FileOptions = DEFAULT_FILES,
) -> gpd.GeoDataFrame:
    """Read facilities from GeoJSON / GeoPackage / CSV / Excel (``lon``, ``lat``).

    The file needs ``kind`` (``centre`` or ``station``; 中心/站点/驿站… are accepted); ``id``
    is optional (without the column, ids are ``f1``, ``f2``… by row), and so is ``name``
    (missing or blank names show the id). Numeric ids stay ids (``7``, not ``7.0``). Polygons
    become a point on their surface.

    Returns
    -------
    geopandas.GeoDataFrame
        ``facility_id``, ``kind``, ``name`` and the file's other columns, in ``crs``.
    """
    require_metric(crs, "area")
    gdf = files.read(path, "facility file", to_crs=crs, bbox=bbox)
    cols = {str(c).lower(): c for c in gdf.columns}
    id_col = cols.get("id") or cols.get("facility_id")
    if id_col is None:  # a list with no 编号: ids from the rows, stable under a bbox filter
        id_col = "_row_id"
        gdf = gdf.assign(_row_id=[f"f{int(i) + 1}" for i in gdf.index])
        log.info("facility file %s: no id column; ids f1, f2, … from the rows", path)
    if "kind" not in cols:
        raise InputError(
            f"facility file {path}: has no 'kind' column; set kind to 'centre' or 'station' "
            "for every facility"
        )
    ids = id_texts(gdf[id_col])
    if ids.isna().any():
        first = int(np.flatnonzero(ids.isna().to_numpy())[0])
        missing = counted(int(ids.isna().sum()), "facility has", "facilities have")
        raise InputError(
            f"facility file {path}: {missing} no id (first at "
            f"{row_place(gdf, first)}); give each facility an id, or leave out the id column"
        )
    raw = gdf[cols["kind"]].astype("string").str.strip()
    word_kind = {w: kind_of(w) for w in raw.dropna().unique()}  # (each word once)
    kind = raw.map(word_kind)
    bad = kind.isna()
    if bad.any():
        words = list(dict.fromkeys("" if k is pd.NA else str(k) for k in raw[bad]))
        shown = ", ".join(repr(w) for w in words[:5]) + (" …" if len(words) > 5 else "")
        unknown = counted(int(bad.sum()), "facility is", "facilities are")
        raise InputError(
            f"facility file {path}: {unknown} of unknown kind "
            f"({shown}; the first: id {str(ids[bad].iloc[0])!r}); use 'centre' (党群服务中心), "
            "'station' (驿站, 站点) or 'worker_station' (小哥驿站), or leave out the rows of "
            "other services"
        )
    by_name = raw[~raw.str.lower().isin(list(KIND_WORDS))].dropna()
    if len(by_name):  # (read by their endings: say so, a planner checks them)
        named = by_name.value_counts(sort=False)
        log.warning(
            "facility file %s: kinds read from their names: %s", path,
            ", ".join(f"{w} → {word_kind[w]} ({n})" for w, n in named.items()),
        )  # fmt: skip
    out = gdf.drop(columns=[c for c in (id_col, cols["kind"]) if c in gdf.columns])
    out.insert(0, "facility_id", ids.astype(str).to_numpy())
    out.insert(1, "kind", kind.astype(str).to_numpy())
    names = out["name"] if "name" in out.columns else pd.Series(pd.NA, index=out.index)
    names = names.astype("string").str.strip()
    out["name"] = names.where(names.notna() & (names != ""))
    dup = out["facility_id"].duplicated()
    if dup.any():
        raise InputError(
            f"facility file {path}: id {out.loc[dup, 'facility_id'].iloc[0]!r} appears more than "
            "once; give each facility its own id"
        )
    areas = int((out.geom_type != "Point").sum())
    if areas:  # (a building's outline, a site's polygon: a facility is a point on it)
        log.warning(
            "facility file %s: %s drawn as areas or lines; each is placed at a point inside it",
            path, counted(areas, "facility is", "facilities are"),
        )  # fmt: skip
        out = out.set_geometry(out.geometry.representative_point())
    out.attrs["file"] = files.describe(gdf)
    return out


def facilities_from_pois(pois: gpd.GeoDataFrame, *, preset: str = "default") -> gpd.GeoDataFrame:
    """Centres and stations among OSM POIs, by a tag preset (see :data:`OSM_PRESETS`).

    Returns
    -------
    geopandas.GeoDataFrame
        ``facility_id`` (``osm<id>``), ``kind``, ``name``, ``rule`` (which preset rule matched),
        point geometry, in the POIs' CRS.
    """
    import geopandas as gpd

    if preset not in OSM_PRESETS:
        raise InputError(f"unknown facility preset {preset!r}; use one of {sorted(OSM_PRESETS)}")
    crs = require_metric(pois.crs, "POIs")
    rules = OSM_PRESETS[preset]
    kind = np.full(len(pois), None, dtype=object)
    why = np.full(len(pois), None, dtype=object)
    for k in PRESET_ORDER:
        for rule in rules.get(k, []):
            hit = rule_matches(pois, rule) & (kind == None)  # noqa: E711
            kind[hit] = k
            why[hit] = rule_text(rule)
    sel = kind != None  # noqa: E711
    chosen = pois.loc[sel]
    ids = chosen["osm_id"].astype(str) if "osm_id" in chosen else chosen.index.astype(str)
    out = gpd.GeoDataFrame(
        {
            "facility_id": ("osm" + pd.Series(np.asarray(ids), dtype=str)).to_numpy(),
            "kind": kind[sel].astype(str),
            "name": chosen["name"].astype("string").to_numpy()
            if "name" in chosen
            else pd.array([pd.NA] * int(sel.sum()), dtype="string"),
            "rule": why[sel].astype(str),
        },
        geometry=chosen.geometry.representative_point().to_numpy(),
        crs=crs,
    )
    dup = out["facility_id"].duplicated()
    out.loc[dup, "facility_id"] = out.loc[dup, "facility_id"] + "_" + out.index[dup].astype(str)
    out = _one_per_place(out, chosen.geom_type.to_numpy() == "Point")
    log.info("facilities from OSM tags (%s): %s", preset, out["kind"].value_counts().to_dict())
    return out.reset_index(drop=True)


#: Two OSM objects of one kind and name closer than this are one facility (a node and the
#: building outline of the same 图书馆, as OSM often has both).
SAME_PLACE_M = 150.0


def _one_per_place(out: gpd.GeoDataFrame, is_point: np.ndarray) -> gpd.GeoDataFrame:
    """Keep one facility per kind, name and place (the node rather than the outline); the
    number merged is in ``attrs["osm_duplicates_merged"]``."""
    names = out["name"].astype("string").str.strip()
    named = (names.notna() & (names != "")).to_numpy()
    keep = np.ones(len(out), dtype=bool)
    xy = np.column_stack([out.geometry.x.to_numpy(), out.geometry.y.to_numpy()])
    key = out["kind"].astype(str) + "\x00" + names.fillna("")
    for _, rows in pd.Series(np.arange(len(out)))[named].groupby(key[named].to_numpy()):
        if len(rows) < 2:
            continue
        order = rows.to_numpy()[np.argsort(~is_point[rows.to_numpy()], kind="stable")]
        kept: list[int] = []
        for r in order:
            if any(np.hypot(*(xy[r] - xy[k])) < SAME_PLACE_M for k in kept):
                keep[r] = False
            else:
                kept.append(int(r))
    result = out.loc[keep].copy()
    result.attrs["osm_duplicates_merged"] = int((~keep).sum())
    if (~keep).any():
        log.info("%d OSM facilities were the same place as another of that name", (~keep).sum())
    return result


def write_facilities(facilities: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write facilities as GeoJSON (EPSG:4326) or GeoPackage, atomically."""
    from ._write import write_with

    path = Path(path)
    driver = "GPKG" if path.suffix.lower() == ".gpkg" else "GeoJSON"
    frame = facilities.to_crs(4326) if driver == "GeoJSON" else facilities
    options = {"COORDINATE_PRECISION": 7} if driver == "GeoJSON" else {}
    return write_with(
        path, lambda tmp: frame.to_file(tmp, driver=driver, layer=path.stem, **options)
    )


def validate_facilities(facilities: gpd.GeoDataFrame, what: str = "facilities") -> gpd.GeoDataFrame:
    """Check a facility frame: metric CRS, unique ``facility_id``, known ``kind``."""
    require_metric(facilities.crs, what)
    for col in ("facility_id", "kind"):
        if col not in facilities.columns:
            raise InputError(f"{what} has no {col!r} column; read them with read_facilities()")
    bad = ~facilities["kind"].isin(KINDS)
    if bad.any():
        raise InputError(
            f"{what}: unknown kind {facilities.loc[bad, 'kind'].iloc[0]!r}; use "
            f"{' or '.join(KINDS)}"
        )
    ids = facilities["facility_id"].astype(str)
    if ids.duplicated().any():
        raise InputError(
            f"{what}: facility id {ids[ids.duplicated()].iloc[0]!r} appears more than once; "
            "give each facility its own id"
        )
    return facilities
