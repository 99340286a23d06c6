"""What a coverage map draws besides the residents, as the page's data: facilities (a tooltip
and a popup with their figures), proposed sites (their rank) and the walk network's streets
(for a map opened without its tiles)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .pages import PageCoords, b64, texts

if TYPE_CHECKING:
    import geopandas as gpd

    from .coverage import Coverage
    from .network import WalkNetwork

STREETS_MAX_VERTICES = 250_000
"""Above this many vertices the streets are left out of the page (about 2.7 MB at the limit):
a city's network would outweigh the residents; the tiles show its streets."""


def facility_markers(
    pc: PageCoords,
    facilities: gpd.GeoDataFrame,
    coverage: Coverage,
    names: list[str],
    kinds: dict[str, str],
    labels: dict[str, str],
    text: dict[str, str],
) -> dict[str, Any]:
    """The facilities' markers: a tooltip (name · kind) and a popup with their figures: name,
    id, kind, the walk from it to its street, and per tier it serves the residents (and
    points) whose nearest facility it is within the tier."""
    import pandas as pd

    lon, lat = pc.lonlat(facilities) if len(facilities) else (np.zeros(0), np.zeros(0))
    fids = texts(facilities["facility_id"])
    table = coverage.facilities.set_index(pd.Index(texts(coverage.facilities["facility_id"])))
    table = table[~table.index.duplicated()]
    found = pd.Index(fids).isin(table.index)
    on_network = table["snapped"].astype(bool).reindex(fids, fill_value=True).to_numpy()
    table = table.reindex(fids)  # (one row per marker, in order)
    access = np.where(on_network, table["access_m"].to_numpy(dtype=float), np.nan)
    loads = [
        (f"{labels[t.name]}: {text['serves']}", table[f"{t.name}_load_residents"].to_numpy(float),
         table[f"{t.name}_load_points"].to_numpy(float))
        for t in coverage.tiers
        if f"{t.name}_load_residents" in table
    ]  # fmt: skip
    items = []
    for i, (fid, kind) in enumerate(zip(fids, facilities["kind"].astype(str), strict=True)):
        rows = [[text["name"], names[i]], ["id", fid], [text["kind"], kinds.get(kind, kind)]]
        if found[i]:
            rows.append([text["access_m"], f"{access[i]:,.0f}" if np.isfinite(access[i]) else "–"])
            rows += [
                [label, f"{r[i]:,.0f} ({int(p[i])})"] for label, r, p in loads if np.isfinite(r[i])
            ]
        items.append(
            {
                "lat": float(lat[i]),
                "lon": float(lon[i]),
                "style": kind,
                "tip": f"{names[i]} · {kinds.get(kind, kind)}"
                + ("" if on_network[i] else text["not_on_network"]),
                "rows": rows,
            }
        )
    return {"name": text["facilities"], "show": True, "items": items}


def proposal_markers(
    pc: PageCoords, proposals: gpd.GeoDataFrame, text: dict[str, str]
) -> dict[str, Any]:
    """The proposed sites' markers: their rank, and a tooltip with the residents they add."""
    lon, lat = pc.lonlat(proposals)
    kinds = proposals["kind"].astype(str).to_numpy() if "kind" in proposals else None
    items = []
    for i, (pid, rank, gain) in enumerate(
        zip(
            texts(proposals["id"]),
            proposals["rank"].to_numpy(dtype=int),
            proposals["added_covered_residents"].to_numpy(dtype=float),
            strict=True,
        )
    ):
        centre = kinds is not None and kinds[i] == "centre"
        items.append(
            {
                "lat": float(lat[i]),
                "lon": float(lon[i]),
                "style": "proposal_centre" if centre else "proposal",
                "symbol": str(int(rank)),
                "tip": f"#{int(rank)} {pid} · +{gain:,.0f} {text['residents']}",
            }
        )
    return {"name": text["proposals"], "show": True, "items": items}


def street_lines(pc: PageCoords, network: WalkNetwork) -> dict[str, Any] | None:
    """The network's edges as lines in the page's coordinates: vertex offsets (float32) from an
    origin and each line's first vertex; ``None`` above :data:`STREETS_MAX_VERTICES`."""
    coords, offsets = network.edge_coords, network.edge_offsets
    if len(coords) == 0 or len(coords) > STREETS_MAX_VERTICES:
        return None
    from pyproj import Transformer

    to_wgs84 = Transformer.from_crs(network.crs, 4326, always_xy=True)
    lon, lat = pc.from_wgs84(*to_wgs84.transform(coords[:, 0], coords[:, 1]))
    return {**pc.offsets(lon, lat), "starts": b64(offsets, "int32")}
