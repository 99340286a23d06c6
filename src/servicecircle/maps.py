"""Maps: one self-contained page per run (the only module that produces EPSG:4326).

The page is a folium map (Leaflet inlined) whose layers are drawn by ``js/map.js`` from one
JSON block: residents as compact typed arrays drawn on canvas (aggregated into hex cells at low
zoom above :data:`AGGREGATE_ABOVE` points), facilities and proposals as markers, cells, service
areas and straight-line circles as polygons. User text is data: it is escaped into the JSON and
set with ``textContent`` (see :mod:`servicecircle.pages`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._write import write_text
from .map_markers import facility_markers, proposal_markers, street_lines
from .pages import (
    SHARE_COLOURS,
    PageCoords,
    add_title,
    aggregate_cells,
    b64,
    base_map,
    call_on_map,
    json_script,
    page_html,
    raw_element,
    resolve_tiles,
    script,
    texts,
)
from .tiers import KIND_LABELS

if TYPE_CHECKING:
    import folium
    import geopandas as gpd

    from .area import Area
    from .coverage import Coverage
    from .network import WalkNetwork
    from .pages import Tiles

log = logging.getLogger(__name__)

AGGREGATE_ABOVE = 20_000
"""Above this many demand points residents are drawn as hex cells until zoom
:data:`POINTS_FROM_ZOOM` and as points from there."""
POINTS_FROM_ZOOM = 15
AGGREGATE_HEX_M = 250.0
MICRO_GRIDS_FROM_ZOOM = 16

STATUSES = ("covered", "too_far", "no_facility_reachable", "unsnapped")
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
KIND_STYLE = {
    "centre": ("#b2182b", "★", 22),
    "station": ("#2166ac", "●", 16),
    "worker_station": ("#e66101", "▲", 16),
}
TEXT = {
    "en": {
        "title": "Service-circle coverage",
        "residents": "residents",
        "name": "name",
        "boundary": "area",
        "streets": "streets (walk network)",
        "facilities": "facilities",
        "legend": "Legend",
        "within": "walk",
        "proposals": "proposed sites (rank)",
        "proposed_centres": "proposed centres (rank)",
        "cells": "cells, covered share",
        "cell": "cell",
        "service_area": "service area",
        "circle": "straight-line circle",
        "walk_m": "walk (m)",
        "facility": "nearest facility",
        "not_on_network": " (not on the street network)",
        "kind": "kind",
        "access_m": "walk to its street (m)",
        "serves": "residents served (points)",
        "micro_grids": "micro-grids (zoom in)",
        "attribution": "Map data © OpenStreetMap contributors (ODbL)",
    },
    "zh": {
        "title": "社区服务圈覆盖",
        "residents": "居民",
        "name": "名称",
        "boundary": "范围",
        "streets": "步行路网",
        "facilities": "设施",
        "legend": "图例",
        "within": "步行",
        "proposals": "建议新增站点（排序）",
        "proposed_centres": "建议新增中心（排序）",
        "cells": "网格覆盖率",
        "cell": "网格",
        "service_area": "服务范围",
        "circle": "直线半径圆",
        "walk_m": "步行距离（米）",
        "facility": "最近设施",
        "not_on_network": "（不在路网上）",
        "kind": "类型",
        "access_m": "到路网距离（米）",
        "serves": "服务居民（点数）",
        "micro_grids": "微网格（放大后显示）",
        "attribution": "地图数据 © OpenStreetMap contributors (ODbL)",
    },
}
STYLE = (
    "<style>.sc-title{position:absolute;top:10px;left:60px;z-index:1000;"
    "background:rgba(255,255,255,.92);padding:6px 12px;border-radius:4px;font:600 16px "
    "sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)}.sc-legend{position:absolute;bottom:60px;"
    "left:10px;z-index:1000;background:rgba(255,255,255,.92);padding:8px 10px;border-radius:4px;"
    "font:13px sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3);max-width:320px}"
    ".sc-key{display:inline-block;width:12px;height:12px;margin-right:6px;text-align:center;"
    "line-height:12px}.sc-box{display:inline-block;width:18px;height:10px}.sc-ramp{margin-top:4px}"
    ".sc-note{margin-top:4px;color:#555;font-size:11px}table.sc-popup th{text-align:left;"
    "padding-right:8px;font-weight:600}table.sc-popup td{text-align:right}"
    ".sc-tip{white-space:pre}</style>"
)


def share_colour(share: float | None) -> str:
    """The ramp colour of a covered share (grey when unknown)."""
    if share is None or not np.isfinite(share):
        return "#bbbbbb"
    return SHARE_COLOURS[min(int(share * 5), 4)]


def facility_labels(facilities: gpd.GeoDataFrame) -> list[str]:
    """Each facility's display name: its name, else its id (never "nan")."""
    ids = texts(facilities["facility_id"])
    names = texts(facilities["name"]) if "name" in facilities else [""] * len(ids)
    return [n.strip() or i for n, i in zip(names, ids, strict=True)]


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
    micro_grids: gpd.GeoDataFrame | None = None,
    tier_labels: dict[str, str] | None = None,
    extra: Callable[[PageCoords], dict[str, list[Any]]] | None = None,
    tianditu_key: str | None = None,
    aggregate_above: int = AGGREGATE_ABOVE,
    network: WalkNetwork | None = None,
) -> folium.Map:
    """The coverage map: residents coloured by coverage per tier, facilities by kind, cells,
    service areas, straight-line circles and proposals, with a legend.

    Parameters
    ----------
    area, demand, coverage, facilities
        The area (for the boundary), the demand points (aligned with ``coverage.points``), the
        result of :func:`~servicecircle.coverage.compute_coverage`, the facilities.
    lang
        ``"zh"`` (default) or ``"en"`` for labels.
    tiles
        ``osm``, ``tianditu``, ``amap`` (every layer drawn in GCJ-02 to sit on its streets),
        ``none`` (a plain background) or a tile URL template.
    title
        Page title; default a title in ``lang`` with the area's name.
    proposals, cells, service_areas
        Ranked proposed sites; cells with coverage rolled up (a choropleth of the finest
        tier's share); service-area polygons per tier (``tier`` column, off by default).
    circles
        Straight-line circles of each tier's radius around its facilities (off by default).
    tier_labels
        Display name per tier id (default each tier's own display name in ``lang``).
    extra
        Called with the page's coordinate transform; returns more layers (``resident_layers``,
        ``polygons``, ``markers``, ``legend`` lists in the page's data format).
    aggregate_above
        Above this many demand points, residents are hex cells until zoom 15.
    network
        The walk network: its streets are drawn (faintly; shown at once without tiles, and
        when the tiles cannot be loaded, as on a computer offline), up to
        :data:`~servicecircle.map_markers.STREETS_MAX_VERTICES` vertices.
    """
    text = TEXT.get(lang, TEXT["en"])
    board = resolve_tiles(tiles, tianditu_key=tianditu_key)
    pc = PageCoords(board.coords)
    labels = {t.name: (tier_labels or {}).get(t.name) or t.display(lang) for t in coverage.tiers}
    fac_names = facility_labels(facilities)
    summary = coverage.summary()["tiers"]
    data = page_data(area, pc, lang, title)
    if network is not None:
        data["streets"] = street_lines(pc, network)
    data["legend"] = _legend(
        lang,
        proposals is not None and len(proposals) > 0,
        worker="worker_station" in set(facilities["kind"]) if len(facilities) else False,
        centres=proposals is not None
        and "kind" in proposals
        and bool((proposals["kind"].astype(str) == "centre").any()),
    )
    if cells is not None and len(cells) and coverage.tiers:
        data["polygons"].append(_cells_layer(pc, cells, coverage, labels, text))
        data["ramp"] = {"label": text["cells"], "colours": SHARE_COLOURS}
    if micro_grids is not None and len(micro_grids) and coverage.tiers:
        micro = _cells_layer(pc, micro_grids, coverage, labels, text)
        micro.update(name=text["micro_grids"], min_zoom=MICRO_GRIDS_FROM_ZOOM)
        micro["style"] = {"color": "#444444", "weight": 0.6, "dashArray": "3 3"}
        data["polygons"].append(micro)
    if service_areas is not None and len(service_areas):
        for tier in coverage.tiers:
            sa = service_areas[service_areas["tier"] == tier.name]
            if len(sa):
                name = f"{text['service_area']} {labels[tier.name]} ≤ {tier.target_m:.0f} m"
                data["polygons"].append(
                    {
                        "name": name,
                        "show": False,
                        "geojson": pc.geojson(sa),
                        "style": {"color": "#1f78b4", "fillOpacity": 0.15},
                    }
                )
    if circles and len(facilities):
        data["circles"] = _circle_layers(pc, facilities, coverage, labels, text)
    _residents(data, pc, demand, coverage, fac_names, labels, summary, text, aggregate_above, area)
    kinds = KIND_LABELS.get(lang, KIND_LABELS["en"])
    data["markers"].append(
        facility_markers(pc, facilities, coverage, fac_names, kinds, labels, text)
    )
    if proposals is not None and len(proposals):
        data["markers"].append(proposal_markers(pc, proposals, text))
    if extra is not None:
        for key, items in extra(pc).items():
            data.setdefault(key, []).extend(items)
    return _page(area, data, board, pc)


def page_data(area: Area, pc: PageCoords, lang: str, title: str | None) -> dict[str, Any]:
    """The skeleton of a page's data: labels, title, boundary and empty layer lists."""
    text = TEXT.get(lang, TEXT["en"])
    return {
        "lang": lang,
        "title": title or f"{text['title']} · {area.name}",
        "text": text,
        "boundary": pc.geojson(_series(area)),
        "bounds": pc.bounds(_series(area)),  # (west, south, east, north: the view fits it)
        "polygons": [],
        "circles": [],
        "markers": [],
        "resident_layers": [],
        "aggregate": None,
        "legend": [],
        "ramp": None,
        "marker_styles": _marker_styles(),
    }


def layers_map(
    area: Area,
    build: Callable[[PageCoords], dict[str, Any]],
    *,
    lang: str = "zh",
    tiles: str | None = "osm",
    title: str | None = None,
    tianditu_key: str | None = None,
) -> folium.Map:
    """A page of layers made by ``build(page_coords)`` (entries of the page data: residents,
    ``resident_layers``, ``polygons``, ``markers``, ``legend``…) over the area's boundary."""
    board = resolve_tiles(tiles, tianditu_key=tianditu_key)
    pc = PageCoords(board.coords)
    data = page_data(area, pc, lang, title)
    data.update(build(pc))
    return _page(area, data, board, pc)


def _series(area: Area) -> gpd.GeoSeries:
    import geopandas as gpd

    return gpd.GeoSeries([area.boundary], crs=area.crs)


def _page(area: Area, data: dict[str, Any], board: Tiles, pc: PageCoords) -> folium.Map:
    fmap = base_map(pc.bounds(_series(area)), board, fit=False)  # (map.js fits the view)
    if not board.urls:
        data["attribution_only"] = board.attribution
    root: Any = fmap.get_root()
    add_title(fmap, str(data["title"]))
    root.header.add_child(raw_element(STYLE), name="servicecircle_style")
    root.html.add_child(raw_element(json_script(data, "sc-data")), name="servicecircle_data")
    root.header.add_child(raw_element(script("map.js")), name="servicecircle_js")
    call_on_map(
        fmap,
        "servicecircleMapInit(MAP, JSON.parse(document.getElementById('sc-data').textContent));",
    )
    return fmap


def _legend(
    lang: str, with_proposals: bool, *, worker: bool = False, centres: bool = False
) -> list[dict[str, Any]]:
    labels = STATUS_LABELS.get(lang, STATUS_LABELS["en"])
    kinds = KIND_LABELS.get(lang, KIND_LABELS["en"])
    rows: list[dict[str, Any]] = [{"colour": COLOURS[k], "label": labels[k]} for k in STATUSES]
    rows += [
        {"colour": KIND_STYLE[k][0], "symbol": KIND_STYLE[k][1], "label": kinds[k]}
        for k in ("centre", "station", *(("worker_station",) if worker else ()))
    ]
    if with_proposals:
        rows.append({"colour": "#ff7f00", "symbol": "1", "label": TEXT[lang]["proposals"]})
    if centres:
        rows.append({"colour": "#b2182b", "symbol": "■", "label": TEXT[lang]["proposed_centres"]})
    return rows


def _marker_styles() -> dict[str, dict[str, Any]]:
    base = "text-align:center;text-shadow:0 0 3px #fff;"
    styles = {
        kind: {
            "cls": kind,
            "symbol": sym,
            "size": size,
            "css": f"{base}color:{colour};font-size:{size}px;line-height:{size}px",
        }
        for kind, (colour, sym, size) in KIND_STYLE.items()
    }
    styles["proposal"] = {
        "cls": "proposal",
        "symbol": "",
        "size": 22,
        "css": "background:#ff7f00;color:#fff;border:2px solid #fff;border-radius:11px;"
        "width:22px;height:22px;line-height:18px;text-align:center;font:bold 12px sans-serif;"
        "box-shadow:0 0 3px #000;box-sizing:border-box",
    }
    styles["proposal_centre"] = {  # a new centre of a two-level plan: square, the centre red
        **styles["proposal"],
        "cls": "proposal_centre",
        "css": str(styles["proposal"]["css"])
        .replace("background:#ff7f00", "background:#b2182b")
        .replace("border-radius:11px", "border-radius:2px"),
    }
    styles["poi"] = {
        "cls": "poi",
        "symbol": "◆",
        "size": 12,
        "css": f"{base}color:#6a3d9a;font-size:12px;line-height:12px",
    }
    return styles


def resident_arrays(
    pc: PageCoords, demand: gpd.GeoDataFrame, population: np.ndarray
) -> dict[str, Any]:
    """The residents block of the page data: coordinates as float32 offsets from an origin,
    populations and ids."""
    lon, lat = pc.lonlat(demand)
    at = pc.offsets(lon, lat)
    return {
        "origin": at["origin"],
        "residents": {
            "n": len(lon),
            "dx": at["dx"],
            "dy": at["dy"],
            "pop": b64(population, "float32"),
            "ids": texts(demand["demand_id"]) if "demand_id" in demand else [""] * len(lon),
        },
    }


def _residents(
    data: dict[str, Any],
    pc: PageCoords,
    demand: gpd.GeoDataFrame,
    coverage: Coverage,
    fac_names: list[str],
    labels: dict[str, str],
    summary: dict[str, Any],
    text: dict[str, str],
    aggregate_above: int,
    area: Area,
) -> None:
    table = coverage.points
    pop = table["population"].to_numpy(dtype=float)
    block = resident_arrays(pc, demand, pop)
    block["residents"]["ids"] = texts(table["demand_id"])
    if "name" in table:
        block["residents"]["names"] = texts(table["name"])
    data.update(block)
    status_labels = STATUS_LABELS.get(data["lang"], STATUS_LABELS["en"])
    palette = [{"colour": COLOURS[s], "label": status_labels[s]} for s in STATUSES]
    import pandas as pd

    index = pd.Index(texts(coverage.facilities["facility_id"]))
    layers = []
    for i, tier in enumerate(coverage.tiers):
        code = pd.Categorical(table[f"{tier.name}_status"], categories=STATUSES).codes
        fac = index.get_indexer(texts(table[f"{tier.name}_facility_id"]))
        share = summary[tier.name]["share"]
        share_txt = "–" if share is None else f"{share:.0%}"
        layers.append(
            {
                "name": f"{labels[tier.name]}: {text['within']} ≤ {tier.target_m:.0f} m "
                f"({share_txt})",
                "show": i == len(coverage.tiers) - 1,
                "code": b64(code, "uint8"),
                "palette": palette,
                "fields": [
                    _walk_field(table, tier.name, text),
                    {
                        "label": text["facility"],
                        "type": "ref",
                        "data": b64(fac, "int32"),
                        "names": fac_names,
                    },
                ],
            }
        )
    goods = [table[f"{t.name}_status"].to_numpy() == "covered" for t in coverage.tiers]
    seg_layers, seg_goods = _segment_layers(table, coverage, labels, summary, text, palette)
    data["resident_layers"] = layers + seg_layers
    data["aggregate"] = None
    if len(table) > aggregate_above:
        good = goods + seg_goods
        data["aggregate"] = aggregate_cells(
            pc, area, demand, pop, good, size_m=AGGREGATE_HEX_M, min_zoom=POINTS_FROM_ZOOM
        )


def _walk_field(table: Any, tier: str, text: dict[str, str]) -> dict[str, Any]:
    """A resident popup's walk to the tier's nearest facility (float32, metres)."""
    data = b64(table[f"{tier}_walk_m"].to_numpy(dtype=float), "float32")
    return {"label": text["walk_m"], "type": "number", "data": data}


def _segment_layers(
    table: Any,
    coverage: Coverage,
    labels: dict[str, str],
    summary: dict[str, Any],
    text: dict[str, str],
    palette: list[dict[str, str]],
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """One layer per segment of the finest tier for residents: covered at the segment's own
    pace or not (the elderly walk less far in five minutes)."""
    resident_tiers = [t for t in coverage.tiers if t.segment == "residents"]
    if not resident_tiers or not coverage.segments:
        return [], []
    tier = resident_tiers[-1]
    lang_key = "label_en" if text is TEXT["en"] else "label"
    layers, goods = [], []
    status = table[f"{tier.name}_status"].astype(str).to_numpy()
    for name, s in (summary[tier.name].get("segments") or {}).items():
        covered = table[f"{tier.name}_{name}_covered"].to_numpy(dtype=bool)
        code = np.where(covered, 0, np.where(status == "unsnapped", 3, 1)).astype("uint8")
        share = "–" if s["share"] is None else f"{s['share']:.0%}"
        layers.append(
            {
                "name": f"{s[lang_key]} · {labels[tier.name]} ≤ {s['target_m']:.0f} m "
                f"({s['speed_m_per_s']:g} m/s, {share})",
                "show": False,
                "code": b64(code, "uint8"),
                "palette": palette,
                "fields": [_walk_field(table, tier.name, text)],
            }
        )
        goods.append(covered)
    return layers, goods


def _cells_layer(
    pc: PageCoords,
    cells: gpd.GeoDataFrame,
    coverage: Coverage,
    labels: dict[str, str],
    text: dict[str, str],
) -> dict[str, Any]:
    finest = coverage.tiers[-1].name  # the finest tier (stations) tells most per cell
    props: dict[str, list[Any]] = {
        "id": texts(cells["cell_id"]),
        "pop": np.round(cells["population"].to_numpy(dtype=float)).tolist(),
    }
    fields = [[text["cell"], "id"], [text["residents"], "pop"]]
    for k, tier in enumerate(coverage.tiers):
        col = f"{tier.name}_share"
        if col in cells:
            vals = cells[col].to_numpy(dtype=float)
            props[f"s{k}"] = ["–" if not np.isfinite(v) else f"{v:.0%}" for v in vals]
            fields.append([labels[tier.name], f"s{k}"])
    shares = cells.get(f"{finest}_share")
    props["_c"] = [
        share_colour(v) for v in (shares if shares is not None else [np.nan] * len(cells))
    ]
    return {
        "name": f"{text['cells']}: {labels[finest]}",
        "show": True,
        "geojson": pc.geojson(cells, props),
        "fields": fields,
    }


def _circle_layers(
    pc: PageCoords,
    facilities: gpd.GeoDataFrame,
    coverage: Coverage,
    labels: dict[str, str],
    text: dict[str, str],
) -> list[dict[str, Any]]:
    out = []
    lon, lat = pc.lonlat(facilities)
    kinds = facilities["kind"].to_numpy()
    for tier in coverage.tiers:
        sel = np.isin(kinds, tier.kinds)
        if sel.any():
            out.append(
                {
                    "name": f"{text['circle']} {labels[tier.name]} r = {tier.target_m:.0f} m",
                    "show": False,
                    "radius": tier.target_m,
                    "points": np.column_stack([lat[sel], lon[sel]]).tolist(),
                }
            )
    return out


def map_html(fmap: folium.Map) -> str:
    """The page of a folium map, as text."""
    return page_html(fmap)


def save_map(fmap: folium.Map, path: str | Path) -> Path:
    """Write a folium map to ``path`` atomically."""
    return write_text(path, map_html(fmap))
