"""Maps: folium pages of coverage (the only module that produces EPSG:4326)."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import MissingDependencyError
from ._write import write_text

if TYPE_CHECKING:
    import folium
    import geopandas as gpd

    from .area import Area
    from .coverage import Coverage

log = logging.getLogger(__name__)

ATTRIBUTION = "© OpenStreetMap contributors"
TILES_OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
COLOURS = {
    "covered": "#1a9641",
    "too_far": "#d7191c",
    "no_facility_reachable": "#7b3294",
    "unsnapped": "#808080",
}
STATUS_LABELS = {
    "en": {
        "covered": "covered",
        "too_far": "not covered (too far)",
        "no_facility_reachable": "no facility on its street network",
        "unsnapped": "farther than the snap limit from any street",
    },
    "zh": {
        "covered": "已覆盖",
        "too_far": "未覆盖（步行过远）",
        "no_facility_reachable": "所在路网无设施",
        "unsnapped": "距道路过远，无法接入",
    },
}
KIND_STYLE = {"centre": ("#b2182b", "★", 22), "station": ("#2166ac", "●", 16)}
KIND_LABELS = {
    "en": {"centre": "centre (party-mass service centre)", "station": "station"},
    "zh": {"centre": "党群服务中心", "station": "服务站点"},
}
TEXT = {
    "en": {
        "title": "Service-circle coverage",
        "residents": "residents",
        "boundary": "area",
        "facilities": "facilities",
        "legend": "Legend",
        "within": "within",
        "proposals": "proposed sites (rank)",
        "cells": "cells, covered share",
        "service_area": "service area",
        "circle": "straight-line circle",
    },
    "zh": {
        "title": "社区服务圈覆盖",
        "residents": "居民",
        "boundary": "范围",
        "facilities": "设施",
        "legend": "图例",
        "within": "步行",
        "proposals": "建议新增站点（排序）",
        "cells": "网格覆盖率",
        "service_area": "服务范围",
        "circle": "直线半径圆",
    },
}


# long function: one layer after another; replaced by the compact-data map (issues 12, 17)
def coverage_map(
    area: Area,
    demand: gpd.GeoDataFrame,
    coverage: Coverage,
    facilities: gpd.GeoDataFrame,
    *,
    lang: str = "zh",
    tiles: str | None = "osm",
    title: str | None = None,
    proposals: gpd.GeoDataFrame | None = None,
    cells: gpd.GeoDataFrame | None = None,
    service_areas: gpd.GeoDataFrame | None = None,
    circles: bool = True,
) -> folium.Map:
    """A folium map: demand points coloured by coverage per tier, facilities by kind, a legend.

    Parameters
    ----------
    area
        The area (for the boundary).
    demand
        The demand points (aligned with ``coverage.points``).
    coverage
        Result of :func:`~servicecircle.coverage.compute_coverage`.
    facilities
        The facilities.
    lang
        ``"zh"`` (default) or ``"en"`` for labels.
    tiles
        ``"osm"`` for OpenStreetMap tiles, ``None``/``"none"`` for a plain background, or a tile
        URL template.
    title
        Page title; default a title in ``lang`` with the area's name.
    proposals
        Proposed sites (``id``, ``rank``, ``added_covered_residents``), drawn with their rank.
    cells
        Cells with coverage rolled up (:func:`~servicecircle.rollup.rollup`): a choropleth of
        the first tier's share, every tier's share in the popup.
    service_areas
        Service-area polygons per tier (``tier`` column), one layer each (off by default).
    circles
        Straight-line circles of each tier's radius around its facilities, for comparison
        (off by default).
    """
    try:
        import folium
    except ImportError as err:  # pragma: no cover - folium is a dependency
        raise MissingDependencyError("maps need folium; install it: pip install folium") from err
    import geopandas as gpd

    text = TEXT.get(lang, TEXT["en"])
    labels = STATUS_LABELS.get(lang, STATUS_LABELS["en"])
    kind_labels = KIND_LABELS.get(lang, KIND_LABELS["en"])
    boundary = gpd.GeoSeries([area.boundary], crs=area.crs).to_crs(4326)
    minx, miny, maxx, maxy = boundary.total_bounds
    fmap = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        tiles=None,
        control_scale=True,
        prefer_canvas=True,
    )
    inline_assets(fmap)
    if tiles and tiles != "none":
        url = TILES_OSM if tiles == "osm" else tiles
        folium.TileLayer(url, attr=ATTRIBUTION, name="OpenStreetMap", max_zoom=19).add_to(fmap)
    else:
        fmap.add_child(_attribution_only(ATTRIBUTION))
    folium.GeoJson(
        boundary.__geo_interface__,
        name=text["boundary"],
        style_function=lambda _f: {
            "color": "#333333",
            "weight": 2,
            "fill": False,
            "dashArray": "6 4",
        },
    ).add_to(fmap)

    if cells is not None and len(cells) and coverage.tiers:
        _cells_layer(folium, fmap, cells, coverage, text)
    if service_areas is not None and len(service_areas):
        for tier in coverage.tiers:
            sa = service_areas[service_areas["tier"] == tier.name]
            if len(sa) == 0:
                continue
            layer = folium.FeatureGroup(
                name=f"{text['service_area']} {tier.name} ≤ {tier.target_m:.0f} m", show=False
            )
            folium.GeoJson(
                sa[["tier", "geometry"]].to_crs(4326).__geo_interface__,
                style_function=lambda _f: {"color": "#1f78b4", "weight": 1, "fillOpacity": 0.15},
            ).add_to(layer)
            layer.add_to(fmap)
    if circles:
        fac_ll = facilities.to_crs(4326)
        for tier in coverage.tiers:
            sel = fac_ll[fac_ll["kind"].isin(tier.kinds)]
            if len(sel) == 0:
                continue
            layer = folium.FeatureGroup(
                name=f"{text['circle']} {tier.name} r = {tier.target_m:.0f} m", show=False
            )
            for geom in sel.geometry:
                folium.Circle(
                    [geom.y, geom.x],
                    radius=tier.target_m,
                    color="#555555",
                    weight=1,
                    dash_array="4 4",
                    fill=False,
                ).add_to(layer)
            layer.add_to(fmap)
    shares = {name: t["share"] for name, t in coverage.summary()["tiers"].items()}
    pts = demand.to_crs(4326)
    table = coverage.points
    pop = table["population"].to_numpy(dtype=float)
    radius = np.clip(np.sqrt(np.maximum(pop, 0)) / 3.0, 3, 14)
    for i, tier in enumerate(coverage.tiers):
        status = table[f"{tier.name}_status"].to_numpy()
        walk = table[f"{tier.name}_walk_m"].to_numpy(dtype=float)
        fac = table[f"{tier.name}_facility_id"].to_numpy()
        frame = gpd.GeoDataFrame(
            {
                "id": table["demand_id"].astype(str).to_numpy(),
                "pop": np.round(pop).astype(int),
                "status": [labels[s] for s in status],
                "walk_m": [("" if np.isnan(w) else f"{w:.0f}") for w in walk],
                "facility": ["" if f is None else str(f) for f in fac],
                "colour": [COLOURS[s] for s in status],
                "radius": radius,
            },
            geometry=pts.geometry.to_numpy(),
            crs=4326,
        )
        share = shares[tier.name]
        share_txt = "–" if share is None else f"{share:.0%}"
        name = f"{tier.name}: {text['within']} ≤ {tier.target_m:.0f} m ({share_txt})"
        group = folium.FeatureGroup(name=name, show=(i == len(coverage.tiers) - 1))
        folium.GeoJson(
            frame.__geo_interface__,
            marker=folium.CircleMarker(radius=5, weight=1, fill=True, fill_opacity=0.8),
            style_function=lambda f: {
                "color": f["properties"]["colour"],
                "fillColor": f["properties"]["colour"],
                "radius": f["properties"]["radius"],
            },
            popup=folium.GeoJsonPopup(
                fields=["id", "pop", "status", "walk_m", "facility"],
                aliases=["id", text["residents"], tier.name, "walk m", "facility"],
            ),
        ).add_to(group)
        group.add_to(fmap)

    fac4326 = facilities.to_crs(4326)
    fgroup = folium.FeatureGroup(name=text["facilities"], show=True)
    snapped = dict(
        zip(coverage.facilities["facility_id"], coverage.facilities["snapped"], strict=True)
    )
    for _, row in fac4326.iterrows():
        colour, symbol, size = KIND_STYLE[row["kind"]]
        label = html.escape(str(row.get("name") or row["facility_id"]))
        note = "" if snapped.get(row["facility_id"], True) else " (not on the street network)"
        folium.Marker(
            [row.geometry.y, row.geometry.x],
            icon=folium.DivIcon(
                html=(
                    f'<div class="sc-facility sc-{row["kind"]}" style="color:{colour};'
                    f'font-size:{size}px;line-height:{size}px;text-shadow:0 0 3px #fff">'
                    f"{symbol}</div>"
                ),
                icon_size=(size, size),
                icon_anchor=(size // 2, size // 2),
            ),
            tooltip=f"{label} · {kind_labels[row['kind']]}{note}",
        ).add_to(fgroup)
    fgroup.add_to(fmap)
    if proposals is not None and len(proposals):
        pgroup = folium.FeatureGroup(name=text["proposals"], show=True)
        for _, row in proposals.to_crs(4326).iterrows():
            folium.Marker(
                [row.geometry.y, row.geometry.x],
                icon=folium.DivIcon(
                    html=(
                        '<div class="sc-proposal" style="background:#ff7f00;color:#fff;'
                        "border:2px solid #fff;border-radius:11px;width:22px;height:22px;"
                        "line-height:18px;text-align:center;font:bold 12px sans-serif;"
                        f'box-shadow:0 0 3px #000">{int(row["rank"])}</div>'
                    ),
                    icon_size=(22, 22),
                    icon_anchor=(11, 11),
                ),
                tooltip=(
                    f"#{int(row['rank'])} {html.escape(str(row['id']))} · "
                    f"+{row['added_covered_residents']:,.0f} {text['residents']}"
                ),
            ).add_to(pgroup)
        pgroup.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    heading = title or f"{text['title']} · {area.name}"
    root: Any = fmap.get_root()
    root.html.add_child(folium.Element(_title_html(heading)))
    ramp = text["cells"] if cells is not None and len(cells) else None
    ranked = text["proposals"] if proposals is not None and len(proposals) else None
    root.html.add_child(
        folium.Element(
            _legend_html(text["legend"], labels, kind_labels, ramp=ramp, proposals=ranked)
        )
    )
    return fmap


VENDOR = Path(__file__).resolve().parent / "_vendor" / "leaflet"


def inline_assets(fmap: folium.Map) -> folium.Map:
    """Make the page self-contained: Leaflet's JS and CSS inlined instead of loaded from a CDN.

    The page then draws its vector layers with no network at all; only base tiles (optional)
    come from a tile server. folium's other default assets (jQuery, Bootstrap, Font Awesome,
    awesome-markers) are not used by these maps and are left out.
    """
    import base64

    import folium

    css = (VENDOR / "leaflet.css").read_text(encoding="utf-8")
    for name in ("layers.png", "layers-2x.png"):
        data = base64.b64encode((VENDOR / name).read_bytes()).decode("ascii")
        css = css.replace(f"url(images/{name})", f"url(data:image/png;base64,{data})")
    css = css.replace("url(images/marker-icon.png)", "none")
    js = (VENDOR / "leaflet.js").read_text(encoding="utf-8")
    fmap.default_js = []
    fmap.default_css = []
    root: Any = fmap.get_root()
    root.header.add_child(folium.Element(f"<style>{css}</style>"), name="leaflet_css_inline")
    root.header.add_child(folium.Element(f"<script>{js}</script>"), name="leaflet_js_inline")
    return fmap


SHARE_COLOURS = ["#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641"]


def _share_colour(share: float | None) -> str:
    if share is None or not np.isfinite(share):
        return "#bbbbbb"
    return SHARE_COLOURS[min(int(share * 5), 4)]


def _cells_layer(
    folium: Any, fmap: Any, cells: gpd.GeoDataFrame, coverage: Coverage, text: dict[str, str]
) -> None:
    first = coverage.tiers[-1].name  # the finest tier (stations) tells most per cell
    frame = cells.to_crs(4326).copy()
    fields, aliases = ["cell_id", "population"], ["cell", text["residents"]]
    frame["population"] = frame["population"].round(0)
    for tier in coverage.tiers:
        col = f"{tier.name}_share"
        if col in frame:
            frame[col + "_pct"] = [
                "–" if not np.isfinite(v) else f"{v:.0%}" for v in frame[col].astype(float)
            ]
            fields.append(col + "_pct")
            aliases.append(tier.name)
    frame["_colour"] = [
        _share_colour(v) for v in frame.get(f"{first}_share", [np.nan] * len(frame))
    ]
    keep = [*fields, "_colour", "geometry"]
    layer = folium.FeatureGroup(name=f"{text['cells']}: {first}", show=True)
    folium.GeoJson(
        frame[keep].__geo_interface__,
        style_function=lambda f: {
            "color": "#666666",
            "weight": 1,
            "fillColor": f["properties"]["_colour"],
            "fillOpacity": 0.45,
        },
        popup=folium.GeoJsonPopup(fields=fields, aliases=aliases),
    ).add_to(layer)
    layer.add_to(fmap)


def _title_html(title: str) -> str:
    return (
        '<div id="sc-title" style="position:fixed;top:10px;left:60px;z-index:1000;'
        "background:rgba(255,255,255,.92);padding:6px 12px;border-radius:4px;"
        'font:600 16px sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f"{html.escape(title)}</div>"
    )


def _legend_html(
    heading: str,
    labels: dict[str, str],
    kind_labels: dict[str, str],
    *,
    ramp: str | None = None,
    proposals: str | None = None,
) -> str:
    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;border-radius:6px;'
        f'background:{COLOURS[k]};margin-right:6px"></span>{html.escape(v)}</div>'
        for k, v in labels.items()
    )
    rows += "".join(
        f'<div><span style="color:{KIND_STYLE[k][0]};display:inline-block;width:12px;'
        f'margin-right:6px">{KIND_STYLE[k][1]}</span>{html.escape(v)}</div>'
        for k, v in kind_labels.items()
    )
    if proposals:
        rows += (
            '<div><span style="display:inline-block;width:14px;height:14px;border-radius:7px;'
            "background:#ff7f00;color:#fff;font:bold 10px sans-serif;text-align:center;"
            f'line-height:14px;margin-right:4px">1</span>{html.escape(proposals)}</div>'
        )
    if ramp:
        boxes = "".join(
            f'<span style="display:inline-block;width:18px;height:10px;background:{c}"></span>'
            for c in SHARE_COLOURS
        )
        rows += f'<div style="margin-top:4px">{html.escape(ramp)}<br>0% {boxes} 100%</div>'
    return (
        '<div id="sc-legend" style="position:fixed;bottom:60px;left:10px;z-index:1000;'
        "background:rgba(255,255,255,.92);padding:8px 10px;border-radius:4px;"
        'font:13px sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f"<b>{html.escape(heading)}</b>{rows}"
        f'<div style="margin-top:4px;color:#555;font-size:11px">{ATTRIBUTION}</div></div>'
    )


def _attribution_only(text: str) -> Any:
    """A map element that adds ``text`` to the attribution control (used when no tiles)."""
    from branca.element import MacroElement
    from jinja2 import Template

    el = MacroElement()
    el._template = Template(
        "{% macro script(this, kwargs) %}"
        f"{{{{ this._parent.get_name() }}}}.attributionControl.addAttribution({text!r});"
        "{% endmacro %}"
    )
    return el


def map_html(fmap: folium.Map) -> str:
    """The page of a folium map, as text."""
    return str(fmap.get_root().render())


def save_map(fmap: folium.Map, path: str | Path) -> Path:
    """Write a folium map to ``path`` atomically."""
    return write_text(path, map_html(fmap))
