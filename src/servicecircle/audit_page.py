"""The audit map: one layer per facility type (residents within reach or not, and the type's
POIs), and a layer colouring residents by how many basic types they miss (缺项数)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .maps import AGGREGATE_ABOVE, aggregate_cells, layers_map, resident_arrays
from .pages import PageCoords, b64, page_html, texts

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from .area import Area
    from .audit import AuditResult
    from .standard import LifeCircleStandard

TEXT = {
    "zh": {
        "title": "生活圈体检",
        "within": "步行可达",
        "not_within": "步行不可达",
        "unsnapped": "距道路过远，无法接入",
        "missing": "缺项数（基础保障型）",
        "none_missing": "不缺",
        "walk_m": "步行距离（米）",
        "nearest": "最近设施",
        "missing_ids": "缺少",
        "basic": "基础保障型",
        "quality": "品质提升型",
    },
    "en": {
        "title": "Life-circle audit",
        "within": "within reach",
        "not_within": "not within reach",
        "unsnapped": "farther than the snap limit from any street",
        "missing": "basic types missing",
        "none_missing": "none missing",
        "walk_m": "walk (m)",
        "nearest": "nearest",
        "missing_ids": "missing",
        "basic": "basic",
        "quality": "quality",
    },
}
MISSING_COLOURS = ["#1a9641", "#a6d96a", "#ffffbf", "#fdae61", "#f46d43", "#a50026"]


def audit_map(
    area: Area,
    demand: gpd.GeoDataFrame,
    pois: gpd.GeoDataFrame,
    table: pd.DataFrame,
    std: LifeCircleStandard,
    result: AuditResult,
    *,
    lang: str = "zh",
    tiles: str | None = "osm",
    aggregate_above: int = AGGREGATE_ABOVE,
) -> str:
    """The audit page (self-contained HTML)."""
    t = TEXT.get(lang, TEXT["en"])
    pop = demand["population"].to_numpy(dtype=float)
    snapped = result.snapped

    def build(pc: PageCoords) -> dict[str, Any]:
        data = resident_arrays(pc, demand, pop)
        data["residents"]["ids"] = texts(table["demand_id"])
        layers = [_missing_layer(table, snapped, std, t, lang)]
        layers += _type_layers(pc, pois, table, snapped, std, result, t, lang)
        data["resident_layers"] = layers
        data["legend"] = [
            {"colour": p["colour"], "label": f"{t['missing']}: {p['label']}"}
            for p in layers[0]["palette"]
        ] + [
            {"colour": "#1a9641", "label": t["within"]},
            {"colour": "#d7191c", "label": t["not_within"]},
            {"colour": "#6a3d9a", "symbol": "◆", "label": "POI"},
        ]
        codes = [layer.pop("_codes") for layer in layers]
        if len(demand) > aggregate_above:
            data["aggregate"] = aggregate_cells(pc, area, demand, pop, [c == 0 for c in codes])
        return data

    title = f"{t['title']} · {area.name}"
    return page_html(layers_map(area, build, lang=lang, tiles=tiles, title=title))


def _missing_layer(
    table: pd.DataFrame,
    snapped: np.ndarray,
    std: LifeCircleStandard,
    t: dict[str, str],
    lang: str,
) -> dict[str, Any]:
    missing = table["types_missing"].to_numpy(dtype=int)
    top = len(MISSING_COLOURS) - 1
    code = np.minimum(missing, top).astype("uint8")
    palette = [{"colour": MISSING_COLOURS[0], "label": t["none_missing"]}]
    palette += [{"colour": MISSING_COLOURS[k], "label": str(k)} for k in range(1, top)]
    palette.append({"colour": MISSING_COLOURS[top], "label": f"≥ {top}"})
    names = {ty.id: (ty.name_zh if lang == "zh" else ty.name_en) for ty in std.types}
    lacks = [
        "、".join(
            "/".join(names.get(i, i) for i in req.split("|")) for req in ids.split(";") if req
        )
        for ids in texts(table["missing_ids"])
    ]
    return {
        "name": t["missing"],
        "show": True,
        "code": b64(code, "uint8"),
        "_codes": code,
        "palette": palette,
        "fields": [{"label": t["missing_ids"], "type": "text", "data": lacks}],
    }


def _type_layers(
    pc: PageCoords,
    pois: gpd.GeoDataFrame,
    table: pd.DataFrame,
    snapped: np.ndarray,
    std: LifeCircleStandard,
    result: AuditResult,
    t: dict[str, str],
    lang: str,
) -> list[dict[str, Any]]:
    palette = [
        {"colour": "#1a9641", "label": t["within"]},
        {"colour": "#d7191c", "label": t["not_within"]},
        {"colour": "#808080", "label": t["unsnapped"]},
    ]
    poi_type = pois["type"].astype(str).to_numpy()
    poi_names = texts(pois["name"]) if "name" in pois else [""] * len(pois)
    poi_ids = texts(pois["poi_id"])
    label_of = {i: (n or i) for i, n in zip(poi_ids, poi_names, strict=True)}
    lon, lat = pc.lonlat(pois) if len(pois) else (np.zeros(0), np.zeros(0))
    layers = []
    for ty in std.types:
        within = table[f"{ty.id}_within"].to_numpy() == "true"
        code = np.where(within, 0, np.where(snapped, 1, 2)).astype("uint8")
        ids = result.poi_ids[ty.id]
        names = [label_of.get(str(i), str(i)) for i in ids]
        fac = result.facility[:, std.ids.index(ty.id)]
        name = ty.name_zh if lang == "zh" else ty.name_en
        kind = t["basic"] if ty.kind == "basic" else t["quality"]
        sel = np.flatnonzero(poi_type == ty.id)
        layers.append(
            {
                "name": f"{name} ≤ {ty.max_walk_m:.0f} m · {kind}",
                "show": False,
                "code": b64(code, "uint8"),
                "_codes": code,
                "palette": palette,
                "fields": [
                    {
                        "label": t["walk_m"],
                        "type": "number",
                        "data": b64(table[f"{ty.id}_walk_m"].to_numpy(dtype=float), "float32"),
                    },
                    {
                        "label": t["nearest"],
                        "type": "ref",
                        "data": b64(fac, "int32"),
                        "names": names,
                    },
                ],
                "markers": [
                    {
                        "lat": float(lat[i]),
                        "lon": float(lon[i]),
                        "style": "poi",
                        "tip": f"{label_of[poi_ids[i]]} · {name}",
                    }
                    for i in sel.tolist()
                ],
            }
        )
    return layers
