"""What every self-contained page shares: data as escaped JSON, compact arrays, Leaflet inlined,
base tiles, and the coordinates a page draws in.

User text never becomes markup: data goes into the page as JSON inside
``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as ``\\u003c``-style
escapes (as Django's ``json_script`` does), and the page's script puts it into the DOM with
``textContent`` only.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InputError
from .geometry import anchor_xy

if TYPE_CHECKING:
    import folium
    import geopandas as gpd

    from .area import Area

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "_vendor" / "leaflet"
SCRIPTS = HERE / "js"

OSM_ATTRIBUTION = (
    '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors (ODbL)'
)
TILE_CHOICES = ("osm", "tianditu", "amap", "none")


@dataclass(frozen=True)
class Tiles:
    """A base map: tile URL templates (none for a plain background), attribution, and the
    coordinates its streets are drawn in (``gcj02`` for Amap: every layer is shifted to match)."""

    name: str
    urls: tuple[str, ...]
    attribution: str
    coords: str = "wgs84"
    subdomains: str = ""
    max_zoom: int = 19


def resolve_tiles(tiles: str | None, *, tianditu_key: str | None = None) -> Tiles:
    """The base map for ``--tiles``: ``osm``, ``tianditu`` (vector + Chinese labels, a key from
    ``tianditu_key`` or ``TIANDITU_KEY``), ``amap`` (GCJ-02), ``none``, or a URL template."""
    name = "none" if tiles in (None, "", "none") else str(tiles)
    if name == "none":
        return Tiles("none", (), OSM_ATTRIBUTION)
    if name == "osm":
        return Tiles("osm", ("https://tile.openstreetmap.org/{z}/{x}/{y}.png",), OSM_ATTRIBUTION)
    if name == "tianditu":
        key = tianditu_key or os.environ.get("TIANDITU_KEY")
        if not key:
            raise InputError(
                "--tiles tianditu needs a Tianditu key (天地图开发者 key): give --tianditu-key KEY "
                "or set TIANDITU_KEY; or use --tiles osm"
            )
        base = "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
        base += "&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
        base += "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk=" + key
        return Tiles(
            "tianditu",
            (base.format(s="{s}", layer="vec"), base.format(s="{s}", layer="cva")),
            "天地图 © 国家地理信息公共服务平台; " + OSM_ATTRIBUTION,
            subdomains="01234567",
            max_zoom=18,
        )
    if name == "amap":
        return Tiles(
            "amap",
            (
                "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
                "&style=8&x={x}&y={y}&z={z}",
            ),
            "高德地图 © AutoNavi; " + OSM_ATTRIBUTION,
            coords="gcj02",
            subdomains="1234",
            max_zoom=18,
        )
    if "{z}" in name and "{x}" in name and "{y}" in name:
        return Tiles("custom", (name,), OSM_ATTRIBUTION)
    raise InputError(
        f"--tiles {tiles!r}: use osm, tianditu, amap, none or a tile URL with {{z}}, {{x}}, {{y}}"
    )


def json_script(data: Any, element_id: str) -> str:
    """``data`` as JSON in a ``<script type="application/json">`` that no text can break out
    of (``<``, ``>``, ``&`` escaped; NaN and infinities as ``null``)."""
    from .outputs import json_safe

    text = json.dumps(json_safe(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def b64(values: Any, dtype: str) -> str:
    """A numeric array as base64 of its little-endian bytes (a typed array in the page)."""
    arr = np.ascontiguousarray(np.asarray(values), dtype=np.dtype(dtype).newbyteorder("<"))
    return base64.b64encode(arr.tobytes()).decode("ascii")


def texts(values: Any) -> list[str]:
    """Values as display strings: missing ones as ``""`` (never "nan" or "None"); whole
    numbers stored as floats (a numeric id column with a gap) without a trailing ``.0``."""
    import pandas as pd

    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    if pd.api.types.is_float_dtype(series.dtype):
        whole = series.notna() & (series == series.round())
        out = series.astype(object).where(~whole, series.where(whole).astype("Int64"))
        series = out
    text = series.astype("string").fillna("")
    return [str(v) for v in text.tolist()]


def raw_element(html: str) -> Any:
    """A page element holding ``html`` as it is.

    ``folium.Element(text)`` takes its argument as a Jinja *template*: user text inside it
    (``{{7*7}}``, ``{% … %}``) would be evaluated when the page renders. This element prints
    ``html`` through one ``{{ this.raw }}`` expression, so nothing in it is ever evaluated.
    """
    from branca.element import Element

    el: Any = Element("{{ this.raw }}")
    el.raw = html
    return el


def inline_leaflet(fmap: folium.Map) -> folium.Map:
    """Make a folium page self-contained: Leaflet's JS and CSS inlined instead of loaded from a
    CDN, so its layers draw with no network at all (only base tiles need one). folium's other
    default assets (jQuery, Bootstrap, Font Awesome) are not used and left out."""
    css = (VENDOR / "leaflet.css").read_text(encoding="utf-8")
    for name in ("layers.png", "layers-2x.png"):
        data = base64.b64encode((VENDOR / name).read_bytes()).decode("ascii")
        css = css.replace(f"url(images/{name})", f"url(data:image/png;base64,{data})")
    css = css.replace("url(images/marker-icon.png)", "none")
    js = (VENDOR / "leaflet.js").read_text(encoding="utf-8")
    fmap.default_js = []
    fmap.default_css = []
    root: Any = fmap.get_root()
    root.header.add_child(raw_element(f"<style>{css}</style>"), name="leaflet_css_inline")
    root.header.add_child(raw_element(f"<script>{js}</script>"), name="leaflet_js_inline")
    return fmap


def script(name: str) -> str:
    """One of the project's page scripts (``js/<name>``), inlined."""
    return "<script>" + (SCRIPTS / name).read_text(encoding="utf-8") + "</script>"


def add_title(fmap: folium.Map, title: str) -> None:
    """The page's ``<title>`` (what the browser tab shows), escaped: it names a user's area."""
    from html import escape

    root: Any = fmap.get_root()
    element = raw_element(f"<title>{escape(title)}</title>")
    root.header.add_child(element, name="servicecircle_title")


def base_map(
    bounds: tuple[float, float, float, float], tiles: Tiles, *, fit: bool = True
) -> folium.Map:
    """A folium map over ``bounds`` (west, south, east, north in the page's coordinates) with
    Leaflet inlined and the base tiles (or a plain background carrying the attribution);
    ``fit=False`` leaves fitting the view to the page's script (which knows its panels)."""
    import folium

    west, south, east, north = bounds
    fmap = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        tiles=None,
        control_scale=False,  # Leaflet's default adds feet and miles; metres only, below
        prefer_canvas=True,
        max_zoom=19,
    )
    inline_leaflet(fmap)
    for url in tiles.urls:
        options: dict[str, Any] = {"max_zoom": tiles.max_zoom}
        if tiles.subdomains:
            options["subdomains"] = tiles.subdomains
        folium.TileLayer(
            url, attr=tiles.attribution, name=tiles.name, control=False, **options
        ).add_to(fmap)
    if fit:
        fmap.fit_bounds([[south, west], [north, east]])
    call_on_map(fmap, "L.control.scale({imperial: false}).addTo(MAP);")
    return fmap


def call_on_map(fmap: folium.Map, code: str) -> None:
    """Run ``code`` once the map exists; ``MAP`` in it stands for the Leaflet map object."""
    from branca.element import MacroElement
    from jinja2 import Template

    el = MacroElement()
    el._template = Template(
        "{% macro script(this, kwargs) %}"
        + code.replace("MAP", "{{ this._parent.get_name() }}")
        + "{% endmacro %}"
    )
    fmap.add_child(el)


def page_html(fmap: folium.Map) -> str:
    """The page of a folium map, as text."""
    return str(fmap.get_root().render())


@dataclass(frozen=True)
class PageCoords:
    """Turns frames in the area's CRS into the page's lon/lat (WGS84, or GCJ-02 for Amap
    tiles), rounded to 1e-6° (about 10 cm)."""

    coords: str = "wgs84"

    def lonlat(self, gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray]:
        """A point on each geometry (the point itself for points) in the page's lon/lat."""
        xy = anchor_xy(gdf.to_crs(4326).geometry.to_numpy())
        return self.from_wgs84(xy[:, 0], xy[:, 1])

    def from_wgs84(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 degrees as the page's lon/lat, rounded to 1e-6°."""
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        if self.coords != "wgs84":
            from .coords import from_wgs84

            lon, lat = from_wgs84(lon, lat, self.coords)
        return np.round(lon, 6), np.round(lat, 6)

    @staticmethod
    def offsets(lon: np.ndarray, lat: np.ndarray) -> dict[str, Any]:
        """Page coordinates as the page's data holds many: an ``origin`` (rounded to 1e-4°)
        and ``dx``/``dy``, float32 offsets from it in base64 (a typed array in the page)."""
        lon0 = float(np.round(np.mean(lon), 4)) if len(lon) else 0.0
        lat0 = float(np.round(np.mean(lat), 4)) if len(lat) else 0.0
        return {
            "origin": [lon0, lat0],
            "dx": b64(lon - lon0, "float32"),
            "dy": b64(lat - lat0, "float32"),
        }

    def bounds(self, gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> tuple[float, float, float, float]:
        """(west, south, east, north) in the page's coordinates."""
        west, south, east, north = gdf.to_crs(4326).total_bounds
        if self.coords != "wgs84":
            from .coords import from_wgs84

            lon, lat = from_wgs84(np.array([west, east]), np.array([south, north]), self.coords)
            west, east, south, north = lon[0], lon[1], lat[0], lat[1]
        return float(west), float(south), float(east), float(north)

    def geojson(
        self, gdf: gpd.GeoDataFrame | gpd.GeoSeries, props: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A FeatureCollection of the geometries with the given property columns (lists)."""
        import shapely

        geoms = np.asarray(gdf.to_crs(4326).geometry.to_numpy(), dtype=object)

        geoms = shapely.transform(geoms, lambda xy: np.column_stack(self.from_wgs84(*xy.T)))
        props = props or {}
        feats = []
        for i, g in enumerate(geoms):
            if g is None or g.is_empty:
                continue
            feats.append(
                {
                    "type": "Feature",
                    "geometry": g.__geo_interface__,
                    "properties": {k: v[i] for k, v in props.items()},
                }
            )
        return {"type": "FeatureCollection", "features": feats}


SHARE_COLOURS = ["#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641"]


def aggregate_cells(
    pc: PageCoords,
    area: Area,
    demand: gpd.GeoDataFrame,
    pop: np.ndarray,
    good: list[np.ndarray],
    *,
    size_m: float = 250.0,
    min_zoom: int = 15,
) -> dict[str, Any]:
    """Hex cells holding residents, with each layer's share of residents in its first (good)
    class, for drawing at low zoom."""
    from .geometry import assign_cells
    from .grid import hex_grid

    hexes = hex_grid(area.boundary, size_m, crs=area.crs)
    where = assign_cells(demand.geometry, hexes)
    inside = where >= 0
    total = np.bincount(where[inside], weights=pop[inside], minlength=len(hexes))
    used = np.flatnonzero(total > 0)
    shares = []
    for g in good:
        cov = np.bincount(where[inside], weights=(pop * g)[inside], minlength=len(hexes))
        shares.append(b64(cov[used] / total[used], "float32"))
    return {
        "min_zoom": min_zoom,
        "ramp": SHARE_COLOURS,
        "cells": pc.geojson(hexes.iloc[used], {"pop": np.round(total[used]).tolist()}),
        "shares": shares,
    }
