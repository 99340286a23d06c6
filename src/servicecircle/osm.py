"""Reading OSM files offline: the walkable ways as a graph, and buildings, POIs and landuse.

``.osm.pbf`` with pyrosm; ``.osm`` / ``.osm.bz2`` / ``.osm.gz`` XML with osmnx after one streaming
pass keeps only walkable ``highway=*`` ways (osmnx's ``graph_from_xml`` would keep every way,
building outlines too); ``.graphml`` in osmnx's format, taken as the walk network as it is.
Each reader returns :class:`OsmFrames` in EPSG:4326; :func:`servicecircle.area.load_area`
chooses the boundary and the metric CRS and clips.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import tempfile
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from ._arrays import ends_index
from ._errors import EmptyAreaError, InputError

if TYPE_CHECKING:
    import geopandas as gpd

    from .cache_files import PackedFrame
    from .pbf_network import WalkWays

log = logging.getLogger(__name__)

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
    # stops and stations, for the life-circle audit (not every street: only these values)
    "highway": ["bus_stop"],
    "railway": ["station", "halt", "subway_entrance", "tram_stop"],
    "public_transport": ["station", "stop_position", "platform"],
}


@dataclass(frozen=True, eq=False)
class OsmFrames:
    """What a reader found, before clipping: walk nodes/edges, features, and counts."""

    nodes: gpd.GeoDataFrame | None
    edges: gpd.GeoDataFrame | None
    buildings: gpd.GeoDataFrame
    pois: gpd.GeoDataFrame
    landuse: gpd.GeoDataFrame
    default_boundary: gpd.GeoSeries | None = None
    report: dict[str, Any] = field(default_factory=dict)
    walk: WalkWays | None = None
    """The walk network as arrays (our PBF pass), instead of ``nodes`` and ``edges``: built
    as frames once, in the area's CRS (:func:`walk_frames`)."""

    def walk_frames(self, crs: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
        """``(nodes, edges)`` in ``crs``."""
        if self.walk is not None:
            return walk_frames(self.walk, crs)
        if self.nodes is None or self.edges is None:
            raise ValueError("OsmFrames without a walk network")
        return self.nodes.to_crs(crs), self.edges.to_crs(crs)

    def walk_box(self) -> gpd.GeoSeries:
        """The bounding box of the walk edges (their ends: the used nodes)."""
        import geopandas as gpd
        import shapely

        if self.walk is not None:  # its nodes are the edges' ends
            xy = self.walk.node_lonlat
            return gpd.GeoSeries([shapely.box(*xy.min(axis=0), *xy.max(axis=0))], crs=4326)
        if self.edges is None:
            raise ValueError("OsmFrames without a walk network")
        return gpd.GeoSeries([shapely.box(*self.edges.total_bounds)], crs=self.edges.crs)


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


def read_xml(path: Path, boundary: gpd.GeoSeries | None = None) -> OsmFrames:
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
    nodes, edges = graph_to_frames(graph)
    try:
        feats = ox.features_from_xml(path, tags=FEATURE_TAGS)
    except Exception as err:  # osmnx raises InsufficientResponseError when nothing matches
        if type(err).__name__ != "InsufficientResponseError":
            raise InputError(f"{path}: features cannot be read ({err})") from err
        feats = gpd.GeoDataFrame(geometry=[], crs=4326)
    buildings, pois, landuse = split_features(feats)
    default = None
    if bounds is not None and all(np.isfinite(bounds)):
        default = gpd.GeoSeries([shapely.box(*bounds)], crs=4326)
        report["default_boundary"] = "the file's <bounds>"
    return OsmFrames(
        nodes=nodes,
        edges=edges,
        buildings=buildings,
        pois=pois,
        landuse=landuse,
        default_boundary=default,
        report=report,
    )


# --------------------------------------------------------------------------- PBF
def read_pbf(path: Path, boundary: gpd.GeoSeries | None = None) -> OsmFrames:
    """The walk network in one pass of our own (:mod:`servicecircle.pbf_network`), pyrosm's
    for a file that pass does not read; buildings, POIs and landuse with pyrosm, when the
    file holds any."""
    from .pbf_network import read_walk_ways

    polygon = boundary.to_crs(4326).iloc[0] if boundary is not None else None
    ways = read_walk_ways(path, FEATURE_TAGS, walkable_mask, polygon)
    if ways is None:
        return _read_pbf_pyrosm(path, polygon)
    if len(ways.u) == 0:
        raise _no_street(path, boundary is not None)
    report = {
        "highway_ways_read": ways.ways_read,
        "highway_ways_not_walkable": ways.ways_left_out,
    }
    if ways.has_features:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            buildings, pois, landuse = _read_features(_pyrosm_osm(path, polygon))
    else:
        buildings = pois = landuse = _empty()
    return OsmFrames(None, None, buildings, pois, landuse, None, report, walk=ways)


def walk_frames(ways: WalkWays, crs: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The nodes and edges (2-point lines) of :class:`~servicecircle.pbf_network.WalkWays`
    in ``crs``: the nodes projected once (as ``to_crs`` would), the lines made from them."""
    import geopandas as gpd
    import shapely

    xy, at_u, at_v = walk_points(ways, crs)
    lines = shapely.linestrings(np.stack([xy[at_u], xy[at_v]], axis=1))
    edges = gpd.GeoDataFrame(walk_edge_columns(ways), geometry=lines, crs=crs)
    nodes = gpd.GeoDataFrame(
        geometry=shapely.points(xy), index=pd.Index(ways.node_ids, name="node_id"), crs=crs
    )
    return nodes, edges


def walk_points(ways: WalkWays, crs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nodes' coordinates in ``crs`` and, for each edge, the rows of its two nodes."""
    from pyproj import Transformer

    to_crs = Transformer.from_crs(4326, crs, always_xy=True)
    x, y = to_crs.transform(ways.node_lonlat[:, 0], ways.node_lonlat[:, 1])
    return np.column_stack([x, y]), *ends_index(ways.node_ids, ways.u, ways.v)


def walk_edge_columns(ways: WalkWays, rows: np.ndarray | None = None) -> dict[str, Any]:
    """The columns of the edges' frame but the geometry (of the edges ``rows``; all of them
    without)."""
    pick = slice(None) if rows is None else rows
    name = ways.name.to_numpy()[pick]
    n = len(name)
    return {
        "u": ways.u[pick],
        "v": ways.v[pick],
        "highway": ways.highway.to_numpy()[pick],
        "name": name  # as pyrosm's frame has it: no names, no column
        if ways.name.notna().any()
        else pd.array(np.full(n, pd.NA, dtype=object), dtype="string"),
        "osm_way_id": ways.way_id[pick],
    }


def walk_edges_packed(
    ways: WalkWays, rows: np.ndarray, xy: np.ndarray, at_u: np.ndarray, at_v: np.ndarray, wkt: str
) -> PackedFrame:
    """The edges' frame as arrays: ``rows`` of the pass's edges, straight from ``u`` to ``v``
    (``xy`` of the nodes, ``at_u``/``at_v`` their rows; made only when something reads the
    frame or stores it: a batch task never does)."""
    import shapely

    from .cache_files import PackedFrame

    attrs = pd.DataFrame(walk_edge_columns(ways, rows))
    ends = np.empty((2 * len(rows), 2))
    ends[0::2], ends[1::2] = xy[at_u[rows]], xy[at_v[rows]]
    offsets = (np.arange(0, len(ends) + 1, 2, dtype=np.int64),)
    ragged = (shapely.GeometryType.LINESTRING, ends, offsets)
    return PackedFrame(attrs, "geometry", [*attrs.columns, "geometry"], wkt, ragged)


def _no_street(path: Path, bounded: bool) -> EmptyAreaError:
    return EmptyAreaError(
        f"{path}: holds no walkable street inside the boundary; check the boundary"
        if bounded
        else f"{path}: holds no walkable street; check that it is the area's file and "
        "complete (a file cut between two blocks reads as a shorter one)"
    )


def _empty() -> gpd.GeoDataFrame:
    import geopandas as gpd

    return gpd.GeoDataFrame(geometry=[], crs=4326)


def _pyrosm_osm(path: Path, polygon: Any) -> Any:
    try:
        import pyrosm
    except ImportError as err:  # pragma: no cover
        raise InputError("reading .osm.pbf needs pyrosm; install it: pip install pyrosm") from err
    try:
        # no bar or "Reading … took" line of pyrosm's own: the CLI shows its progress
        return pyrosm.OSM(str(path), bounding_box=polygon, progress=False)
    except Exception as err:
        raise _unreadable(path, err) from err


def _unreadable(path: Path, err: Exception) -> InputError:
    return InputError(
        f"{path}: cannot be read as an OSM PBF file ({type(err).__name__}: {err}); "
        "check that the file is complete"
    )


def _read_features(osm: Any) -> tuple[gpd.GeoDataFrame, ...]:
    """Buildings, POIs (:data:`FEATURE_TAGS`) and landuse of a ``pyrosm.OSM``."""
    buildings = osm.get_buildings()
    pois = osm.get_pois(
        custom_filter={
            k: (v if isinstance(v, list) else True)
            for k, v in FEATURE_TAGS.items()
            if k not in ("building", "landuse")
        }
    )
    landuse = osm.get_landuse()
    return tuple(
        tidy_features(frame) if frame is not None else _empty()
        for frame in (buildings, pois, landuse)
    )


def _read_pbf_pyrosm(path: Path, polygon: Any) -> OsmFrames:
    """The whole read with pyrosm (network, then features)."""
    import geopandas as gpd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = _pyrosm_osm(path, polygon)
        try:
            net = osm.get_network(network_type="walking", nodes=True)
        except Exception as err:
            raise _unreadable(path, err) from err
        if net is None or net[1] is None or len(net[1]) == 0:
            raise _no_street(path, polygon is not None)
        pnodes, pedges = net
        buildings, pois, landuse = _read_features(osm)
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
    node_points = (  # pyrosm's own points when it made them (they cost 0.2 s per 100 k)
        pnodes.geometry.to_numpy()
        if isinstance(pnodes, gpd.GeoDataFrame)
        and pnodes.crs is not None
        and pnodes.crs.to_epsg() == 4326
        else gpd.points_from_xy(pnodes["lon"], pnodes["lat"])
    )
    nodes = gpd.GeoDataFrame(
        geometry=node_points,
        index=pd.Index(pnodes["id"].astype("int64").to_numpy(), name="node_id"),
        crs=4326,
    )
    nodes = nodes[~nodes.index.duplicated()]
    return OsmFrames(nodes, edges, buildings, pois, landuse, None, report)


# --------------------------------------------------------------------------- GraphML
def read_graphml(path: Path, boundary: gpd.GeoSeries | None = None) -> OsmFrames:
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
    nodes, edges = graph_to_frames(graph)
    empty = gpd.GeoDataFrame(geometry=[], crs=edges.crs)
    return OsmFrames(
        nodes=nodes,
        edges=edges,
        buildings=empty,
        pois=empty,
        landuse=empty,
        default_boundary=None,
        report={"graphml": "taken as the walk network as it is (no tag filter)"},
    )


# --------------------------------------------------------------------------- shared
def graph_to_frames(graph: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
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


def tidy_features(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Drop pyrosm's bookkeeping columns and keep an ``osm_id``."""
    frame = frame.copy()
    if "id" in frame.columns:
        frame = frame.rename(columns={"id": "osm_id"})
    drop = [c for c in ("tags", "visible", "version", "timestamp", "changeset") if c in frame]
    return frame.drop(columns=drop).reset_index(drop=True)


def split_features(
    feats: gpd.GeoDataFrame,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """osmnx features → buildings, POIs, landuse."""
    feats = feats.reset_index()
    if "id" in feats.columns:
        feats = feats.rename(columns={"id": "osm_id"})

    def has(col: str) -> pd.Series:
        if col not in feats.columns:
            return pd.Series(False, index=feats.index)
        want = FEATURE_TAGS.get(col, True)
        if isinstance(want, list):
            return feats[col].isin(want).fillna(False).astype(bool)
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
