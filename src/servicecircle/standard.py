"""The life-circle standard as data: facility types, their level and walking distance.

GB 50180-2018 lists the facilities each level of a residential area must offer (appendix B)
and how far residents may walk to them (appendix C, table 3.0.4); TD/T 1062-2021 splits them
into basic (基础保障型) and quality (品质提升型) elements. The packaged preset
``data/life_circle_gb50180.toml`` (:func:`load_standard` with ``"gb50180"``) holds one table
per facility type; a city's own rules go in a TOML file of the same shape.

POIs become facilities of a type in one of two ways: :func:`match_pois` reads OSM POIs by the
types' tag rules and name patterns, :func:`read_pois` reads a user's file with a ``type``
column. Both return the same frame (``poi_id``, ``type``, ``name``, ``rule``, point geometry),
which :func:`servicecircle.audit.audit` measures.

One POI counts for every type whose rules match it (a 九年一贯制 school is a primary and a
middle school). The preset's rules keep the levels apart, as the standard's levels are not
nested: a 社区卫生服务中心 is not a 卫生服务站, and a generic ``amenity=school`` counts for no
school type unless its ``isced:level`` or its name says which.
"""

from __future__ import annotations

import difflib
import logging
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import require_metric
from ._errors import InputError, InputFileNotFoundError
from .files import DEFAULT_FILES, FileOptions
from .osmtags import Rule, first_match, name_matches

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)

LEVELS = ("15min", "10min", "5min", "block")
"""Life-circle levels, widest first: 15-, 10- and 5-minute residential areas and the 居住街坊."""

TYPE_KINDS = ("basic", "quality")
"""basic = 基础保障型 (counted as missing when out of reach), quality = 品质提升型."""

SEGMENTS = ("all", "children", "elderly")
"""Who a facility type is for (一老一小: children and the elderly)."""

PRESETS = {"gb50180": "life_circle_gb50180.toml"}
"""Packaged standards by name."""

TOP_SCHEMA: dict[str, tuple[type | tuple[type, ...], str]] = {
    "name": (str, "a short name for the standard"),
    "title": (str, "the standard's title"),
    "source": (str, "the documents it comes from"),
    "note": (str, "remarks"),
    "types": (dict, "one [types.<id>] table per facility type"),
}
TYPE_SCHEMA: dict[str, tuple[type | tuple[type, ...], str]] = {
    "id": (str, "the type's id (the same as its table key)"),
    "name_zh": (str, "the Chinese name"),
    "name_en": (str, "the English name"),
    "level": (str, f"one of {', '.join(LEVELS)}"),
    "max_walk_m": ((int, float), "a walking distance in metres, more than 0"),
    "kind": (str, f"one of {', '.join(TYPE_KINDS)}"),
    "segment": (str, f"one of {', '.join(SEGMENTS)}"),
    "source": (str, "the clause the type comes from"),
    "note": (str, "remarks, required when convention = true"),
    "convention": (bool, "true when no clause gives the distance"),
    "group": (str, "a group id: types of one group meet one requirement together"),
    "osm": (list, "a list of OSM tag rules, e.g. [{amenity = 'kindergarten'}]"),
    "name_patterns": (list, "a list of regular expressions searched in names"),
    "name_exclude": (list, "a list of regular expressions: matching names never count"),
}
REQUIRED = ("name_zh", "level", "max_walk_m", "kind", "source")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class FacilityType:
    """A facility type of the standard.

    Attributes
    ----------
    id
        Used in column names (``<id>_walk_m``): lower-case letters, digits and ``_``.
    name_zh, name_en
        Names.
    level, kind, segment
        ``15min`` | ``10min`` | ``5min`` | ``block`` (居住街坊); ``basic`` (基础保障型) |
        ``quality`` (品质提升型); ``all`` | ``children`` | ``elderly``.
    max_walk_m
        Walking distance in metres within which residents should reach one.
    source
        The clause the type and its distance come from.
    rules
        OSM tag rules (:mod:`servicecircle.osmtags`); a POI matching any of them counts.
    name_patterns, name_exclude
        Regular expressions searched in a POI's names: one matching counts; one matching
        ``name_exclude`` never counts for this type.
    note
        Remarks; says why when ``convention`` is set.
    convention
        True when no clause gives ``max_walk_m`` (a planning convention).
    group
        Types sharing a group meet one requirement together (菜市场或生鲜超市), or ``None``.
    """

    id: str
    name_zh: str
    name_en: str
    level: str
    max_walk_m: float
    kind: str
    segment: str
    source: str
    rules: tuple[Rule, ...] = ()
    name_patterns: tuple[str, ...] = ()
    name_exclude: tuple[str, ...] = ()
    note: str = ""
    convention: bool = False
    group: str | None = None

    @property
    def basic(self) -> bool:
        """Whether the type is 基础保障型 (counted when missing)."""
        return self.kind == "basic"


@dataclass(frozen=True)
class LifeCircleStandard:
    """A set of facility types (a preset or a city's own file).

    Attributes
    ----------
    name
        Short name (``gb50180`` or the file's stem).
    source
        The documents the types come from.
    types
        The facility types, in the file's order.
    title
        A longer title.
    path
        The file it was read from.
    """

    name: str
    source: str
    types: tuple[FacilityType, ...]
    title: str = ""
    path: str = ""

    @property
    def ids(self) -> tuple[str, ...]:
        """The type ids, in order."""
        return tuple(t.id for t in self.types)

    def by_id(self, type_id: str) -> FacilityType:
        """The type called ``type_id``; :class:`InputError` with a suggestion when unknown."""
        for t in self.types:
            if t.id == type_id:
                return t
        raise InputError(
            f"standard {self.name!r} has no facility type {type_id!r}"
            f"{_suggest(type_id, list(self.ids))}"
        )

    def levels(self) -> tuple[str, ...]:
        """The levels that have types, widest first."""
        present = {t.level for t in self.types}
        return tuple(level for level in LEVELS if level in present)

    def basic_types(self, level: str | None = None) -> tuple[FacilityType, ...]:
        """The basic (基础保障型) types of ``level``, or of every level when ``None``."""
        if level is not None and level not in LEVELS:
            raise InputError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
        return tuple(t for t in self.types if t.basic and level in (None, t.level))

    def requirements(self, level: str | None = None) -> tuple[tuple[FacilityType, ...], ...]:
        """The basic requirements of ``level`` (every level when ``None``): one tuple of types
        per requirement, the members of a ``group`` together (either of them will do)."""
        out: dict[str, list[FacilityType]] = {}
        for t in self.basic_types(level):
            out.setdefault(t.group or f"\0{t.id}", []).append(t)
        return tuple(tuple(members) for members in out.values())

    def resolve(self, word: str) -> str | None:
        """The id of the type named ``word`` (its id, Chinese or English name), or ``None``."""
        w = word.strip()
        for t in self.types:
            if w == t.id or w == t.name_zh or (t.name_en and w.lower() == t.name_en.lower()):
                return t.id
        return None


# --------------------------------------------------------------------------- loading
def load_standard(path_or_name: str | Path = "gb50180") -> LifeCircleStandard:
    """Read a life-circle standard: a packaged preset by name, or a TOML file.

    Parameters
    ----------
    path_or_name
        ``"gb50180"`` (the packaged GB 50180-2018 preset) or the path of a TOML file in the
        same format (one ``[types.<id>]`` table per facility type).

    Returns
    -------
    LifeCircleStandard

    Raises
    ------
    InputError
        One message listing every problem of the file, each with its key.

    Examples
    --------
    >>> std = load_standard()
    >>> std.by_id("kindergarten").max_walk_m
    300.0
    """
    if isinstance(path_or_name, str) and path_or_name.strip().lower() in PRESETS:
        path = _packaged(PRESETS[path_or_name.strip().lower()])
    else:
        path = Path(path_or_name)
        if not path.exists():
            if path.suffix.lower() != ".toml" and not isinstance(path_or_name, Path):
                raise InputError(
                    f"unknown standard {str(path_or_name)!r}"
                    f"{_suggest(str(path_or_name), list(PRESETS))}; use one of "
                    f"{', '.join(PRESETS)} or give a .toml file"
                )
            raise InputFileNotFoundError(f"standard {path}: no such file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"standard {path}: not valid TOML ({err})") from err
    except UnicodeDecodeError as err:
        raise InputError(f"standard {path}: not UTF-8 text ({err})") from err
    problems: list[str] = []
    types = _check(raw, problems)
    if problems:
        raise InputError(f"standard {path}: " + "; ".join(problems))
    std = LifeCircleStandard(
        name=str(raw.get("name", path.stem)),
        source=str(raw.get("source", "")),
        types=tuple(types),
        title=str(raw.get("title", "")),
        path=str(path),
    )
    log.debug("standard %s: %d facility types from %s", std.name, len(std.types), path)
    return std


def _packaged(name: str) -> Path:
    """A file of ``data/`` (shipped as ``servicecircle/_data``): the search of
    ``workflows.common.packaged_data``, which this layer cannot import."""
    here = Path(__file__).resolve().parent
    for folder in (here / "_data", here.parents[1] / "data"):
        if (folder / name).exists():
            return folder / name
    raise InputError(f"packaged data file {name!r} is missing; reinstall servicecircle")


def _suggest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(options)})"


def _wrong_type(value: Any, types: type | tuple[type, ...]) -> bool:
    allowed = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in allowed:
        return True
    return not isinstance(value, allowed)


def _check(raw: dict[str, Any], problems: list[str]) -> list[FacilityType]:
    """Every problem of a parsed standard file (appended to ``problems``), and its types."""
    for key, value in raw.items():
        if key not in TOP_SCHEMA:
            problems.append(f"unknown key {key!r}{_suggest(key, list(TOP_SCHEMA))}")
        elif _wrong_type(value, TOP_SCHEMA[key][0]):
            problems.append(f"{key!r} must be {TOP_SCHEMA[key][1]}; got {value!r}")
    body = raw.get("types")
    if not body:
        problems.append("no facility types: add one [types.<id>] table per type")
    if not isinstance(body, dict):
        return []
    types = []
    for type_id, table in body.items():
        where = f"types.{type_id}"
        if not isinstance(table, dict):
            problems.append(f"'{where}' must be a table")
            continue
        t = _check_type(type_id, table, where, problems)
        if t is not None:
            types.append(t)
    _check_across(types, problems)
    return types


def _check_type(
    type_id: str, table: dict[str, Any], where: str, problems: list[str]
) -> FacilityType | None:
    """The problems of one ``[types.<id>]`` table, and the type when it has none."""
    before = len(problems)
    if not _ID.match(type_id):
        problems.append(
            f"'{where}': a type id may hold lower-case letters, digits and _ only, starting "
            "with a letter"
        )
    for key, value in table.items():
        spec = TYPE_SCHEMA.get(key)
        if spec is None:
            problems.append(f"unknown key '{where}.{key}'{_suggest(key, list(TYPE_SCHEMA))}")
        elif _wrong_type(value, spec[0]):
            problems.append(f"'{where}.{key}' must be {spec[1]}; got {value!r}")
    if before != len(problems):
        return None
    for key in REQUIRED:
        if key not in table:
            problems.append(f"'{where}.{key}' is missing: give {TYPE_SCHEMA[key][1]}")
    if "id" in table and table["id"] != type_id:
        problems.append(f"'{where}.id' = {table['id']!r} differs from the table key {type_id!r}")
    for key, allowed in (("level", LEVELS), ("kind", TYPE_KINDS), ("segment", SEGMENTS)):
        if key in table and table[key] not in allowed:
            problems.append(
                f"'{where}.{key}' = {table[key]!r} is not allowed; use one of "
                f"{', '.join(allowed)}{_suggest(table[key], list(allowed))}"
            )
    walk = table.get("max_walk_m")
    if walk is not None and not (np.isfinite(walk) and walk > 0):
        problems.append(f"'{where}.max_walk_m' must be a positive number of metres; got {walk}")
    if table.get("convention") and not table.get("note"):
        problems.append(f"'{where}.note' is missing: say why the distance is a convention")
    rules = [
        _check_rule(r, f"{where}.osm[{i}]", problems) for i, r in enumerate(table.get("osm", []))
    ]
    patterns = {
        key: _check_patterns(table.get(key, []), f"{where}.{key}", problems)
        for key in ("name_patterns", "name_exclude")
    }
    if before != len(problems):
        return None
    return FacilityType(
        id=type_id,
        name_zh=table["name_zh"],
        name_en=table.get("name_en", ""),
        level=table["level"],
        max_walk_m=float(table["max_walk_m"]),
        kind=table["kind"],
        segment=table.get("segment", "all"),
        source=table["source"],
        rules=tuple(r for r in rules if r is not None),
        name_patterns=patterns["name_patterns"],
        name_exclude=patterns["name_exclude"],
        note=table.get("note", ""),
        convention=bool(table.get("convention", False)),
        group=table.get("group"),
    )


def _check_rule(rule: Any, where: str, problems: list[str]) -> Rule | None:
    """A tag rule with numbers turned to text, or ``None`` (and a problem) when it is wrong."""
    if not isinstance(rule, dict) or not rule:
        problems.append(
            f"'{where}' must be a non-empty table of tag = value, e.g. {{amenity = 'school'}}"
        )
        return None
    out: Rule = {}
    for tag, want in rule.items():
        if want is True or (isinstance(want, str) and want):
            out[tag] = want
        elif isinstance(want, int | float) and not isinstance(want, bool):
            out[tag] = str(want)
        elif (
            isinstance(want, list)
            and want
            and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in want)
        ):
            out[tag] = [str(v) for v in want]
        else:
            problems.append(
                f"'{where}.{tag}' must be true, a value, a list of values or '~regex'; got {want!r}"
            )
            continue
        if isinstance(want, str) and want.startswith("~"):
            _compiles(want[1:], f"{where}.{tag}", problems)
    return out


def _check_patterns(values: list[Any], where: str, problems: list[str]) -> tuple[str, ...]:
    out = []
    for i, p in enumerate(values):
        if not isinstance(p, str) or not p:
            problems.append(f"'{where}[{i}]' must be a regular expression (text); got {p!r}")
        elif _compiles(p, f"{where}[{i}]", problems):
            out.append(p)
    return tuple(out)


def _compiles(pattern: str, where: str, problems: list[str]) -> bool:
    try:
        re.compile(pattern)
    except re.error as err:
        problems.append(f"'{where}' = {pattern!r} is not a valid regular expression ({err})")
        return False
    return True


def _check_across(types: list[FacilityType], problems: list[str]) -> None:
    """Problems between types: shared Chinese names, groups mixing levels or kinds."""
    seen: dict[str, str] = {}
    for t in types:
        if t.name_zh in seen:
            problems.append(
                f"'types.{t.id}.name_zh' = {t.name_zh!r} is also the name of "
                f"'types.{seen[t.name_zh]}'; give each type its own name"
            )
        seen.setdefault(t.name_zh, t.id)
    groups: dict[str, list[FacilityType]] = {}
    for t in types:
        if t.group is not None:
            groups.setdefault(t.group, []).append(t)
    for group, members in groups.items():
        if len({(m.level, m.kind) for m in members}) > 1:
            problems.append(
                f"group {group!r} mixes levels or kinds ("
                + ", ".join(f"{m.id}: {m.level} {m.kind}" for m in members)
                + "); types of one group must share both"
            )


# --------------------------------------------------------------------------- POIs
POI_COLUMNS = ["poi_id", "type", "name", "rule"]


def match_pois(pois: gpd.GeoDataFrame, standard: LifeCircleStandard) -> gpd.GeoDataFrame:
    """The POIs that are facilities of the standard's types, by tag rules and name patterns.

    Parameters
    ----------
    pois
        OSM POIs with their tags as columns (an :class:`~servicecircle.area.Area`'s ``pois``);
        ``name`` may be absent or empty.
    standard
        The facility types.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per (POI, type) it counts for: ``poi_id`` (the OSM id, else the row number,
        as text), ``type``, ``name`` (empty when unnamed), ``rule`` (the tag rule or name
        pattern that matched), point geometry (a point on polygons), in the POIs' CRS. A POI
        counts for every type whose rules match it and whose ``name_exclude`` its names miss.
    """
    import geopandas as gpd

    pois = pois[~(pois.geometry.isna() | pois.geometry.is_empty)]
    ids = _poi_ids(pois)
    names = _display_names(pois)
    points = np.asarray(pois.geometry.representative_point().to_numpy(), dtype=object)
    frames = []
    counts = {}
    for t in standard.types:
        tag_hit, tag_why = first_match(pois, list(t.rules))
        name_hit, name_why = name_matches(pois, t.name_patterns)
        veto = name_matches(pois, t.name_exclude)[0]
        hit = (tag_hit | name_hit) & ~veto
        idx = np.flatnonzero(hit)
        counts[t.id] = len(idx)
        frames.append(
            pd.DataFrame(
                {
                    "poi_id": ids[idx],
                    "type": t.id,
                    "name": names[idx],
                    "rule": np.where(tag_hit, tag_why, name_why)[idx],
                    "geometry": points[idx],
                }
            )
        )
    log.info("facility types among %d POIs: %s", len(pois), counts)
    table = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(
        table[POI_COLUMNS].astype(str),
        geometry=gpd.GeoSeries(table["geometry"].to_numpy(), crs=pois.crs).to_numpy(),
        crs=pois.crs,
    )


def _poi_ids(pois: pd.DataFrame) -> np.ndarray:
    """The OSM id of each row as text (``way/123`` where a node and a way share a number),
    else the row number."""
    if "osm_id" not in pois.columns:
        return np.array([str(i) for i in range(len(pois))], dtype=object)
    raw = pois["osm_id"]
    num = pd.to_numeric(raw, errors="coerce")
    whole = num.notna() & (num == num.round())
    ids = np.where(whole, num.fillna(0).astype("int64").astype(str), raw.astype(str)).astype(object)
    ids[raw.isna().to_numpy()] = [f"row{i}" for i in np.flatnonzero(raw.isna().to_numpy())]
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any() and "element" in pois.columns:
        ids[dup] = pois["element"].astype(str).to_numpy()[dup] + "/" + ids[dup]
    dup = pd.Series(ids).duplicated().to_numpy()
    ids[dup] = [f"{ids[i]}_{i}" for i in np.flatnonzero(dup)]
    return ids


def _display_names(pois: pd.DataFrame) -> np.ndarray:
    """``name``, else ``name:zh``, else the empty string."""
    out = pd.Series("", index=pois.index, dtype=object)
    for col in ("name:zh", "name"):
        if col in pois.columns:
            text = pois[col].astype("string").str.strip()
            out = text.where(text.notna() & (text != ""), out).astype(object)
    return out.to_numpy(dtype=object)


def read_pois(
    path: str | Path,
    *,
    crs: Any,
    standard: LifeCircleStandard | str | Path = "gb50180",
    files: FileOptions = DEFAULT_FILES,
) -> gpd.GeoDataFrame:
    """Read a user's POI file: each row a facility of a type of the standard.

    Parameters
    ----------
    path
        GeoJSON / GeoPackage / CSV (``lon``, ``lat`` in degrees) with ``type`` (a type id or
        its Chinese name, e.g. ``kindergarten`` or ``幼儿园``), optional ``id`` and ``name``.
        Rows without an id get ``p00001``, ``p00002``…
    crs
        The area's metric CRS.
    standard
        The standard whose types the file names.

    Returns
    -------
    geopandas.GeoDataFrame
        ``poi_id``, ``type``, ``name``, ``rule`` (``file``), point geometry — the shape
        :func:`match_pois` returns.
    """
    import geopandas as gpd

    require_metric(crs, "area")
    std = standard if isinstance(standard, LifeCircleStandard) else load_standard(standard)
    gdf = files.read(path, "POI file", to_crs=crs)
    cols = {str(c).lower(): c for c in gdf.columns}
    type_col = cols.get("type") or cols.get("kind")  # 类型 reads as kind in every file
    if type_col is None:
        raise InputError(
            f"POI file {path}: has no 'type' (or 类型) column; give each POI a facility type "
            f"({', '.join(std.ids[:6])}, … or their Chinese names)"
        )
    raw = gdf[type_col].astype("string").fillna("")
    types = np.array([std.resolve(str(v)) for v in raw], dtype=object)
    bad = pd.isna(types)
    if bad.any():
        unknown = list(dict.fromkeys(str(v) for v in raw[bad]))
        raise InputError(
            f"POI file {path}: {int(bad.sum())} rows have an unknown type "
            f"({', '.join(repr(u) for u in unknown[:5])}{', …' if len(unknown) > 5 else ''}); "
            f"use a type id or its Chinese name: {', '.join(std.ids)}"
        )
    id_col = cols.get("id") or cols.get("poi_id")
    ids = gdf[id_col].astype("string") if id_col is not None else pd.Series("", index=gdf.index)
    missing = (ids.isna() | (ids.str.strip() == "")).to_numpy()
    ids = ids.astype(object)
    ids[missing] = [f"p{i:05d}" for i in range(1, int(missing.sum()) + 1)]
    ids = ids.astype(str)
    dup = ids.duplicated()
    if dup.any():
        raise InputError(
            f"POI file {path}: id {ids[dup].iloc[0]!r} appears more than once; give each POI "
            "its own id"
        )
    names = gdf[cols["name"]].astype("string").fillna("") if "name" in cols else ""
    geom = gdf.geometry
    if set(geom.geom_type) - {"Point"}:
        geom = geom.representative_point()
    table = {"poi_id": ids.to_numpy(), "type": types.astype(str), "name": names, "rule": "file"}
    return gpd.GeoDataFrame(
        pd.DataFrame(table, index=gdf.index), geometry=geom.to_numpy(), crs=gdf.crs
    ).reset_index(drop=True)
