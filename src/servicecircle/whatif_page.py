"""The what-if page: staff switch stations on and off in one offline page and watch coverage.

One self-contained HTML file (Leaflet inlined, like the coverage map) with the existing
facilities, the ranked proposals and other top candidates. Clicking a candidate adds it,
clicking a chosen site removes it; a panel shows per tier the covered residents, share, goal,
pass/fail and the change against the starting plan; residents recolour; the chosen set
downloads as GeoJSON or CSV that ``servicecircle coverage --facilities`` reads unchanged. The
page's script is ``js/whatif.js``; ``window.servicecircleWhatIf`` is its API (``toggle(id)``,
``chosen()``, ``figures()``, ``reset()``).

Exact, not approximate
----------------------
For every site on the page and every tier whose kinds include the site's kind, the page holds
the demand points the site reaches within the tier and their walks: the sparse
:func:`~servicecircle.siting.coverage_matrix` on the same network, snaps and snap limit as a
coverage run, keeping the entries with walk ≤ ``target_m + 1e-6`` — the tolerance
:func:`~servicecircle.coverage.compute_coverage` uses. A point is covered when at least one
chosen site reaches it (the nearest chosen site is then within the target), so the covered
residents in the page are those of a coverage run on the chosen set. The page keeps, per tier
and point, how many chosen sites reach it; a toggle walks only the toggled site's points
(adding: +1, removing: −1 — no second-best needed), so it costs what that site reaches.

Encoding (the ``<script type="application/json" id="sc-whatif">`` block)
------------------------------------------------------------------------
Typed arrays are base64 of their little-endian bytes.

``residents``
    ``n`` points in a spatial (Morton) order; ``origin`` [lon, lat] and ``dx``/``dy``
    (Float32 degrees from it, in the page's coordinates: GCJ-02 with Amap tiles); ``pop``
    (Float32 when every population is exactly a float32, else Float64: ``pop_dtype``); ``ids``
    (texts); ``unsnapped`` (Int32 indices of points past the snap limit); ``total`` (residents,
    summed as the coverage summary does).
``sites``
    ``n`` sites in page order: existing facilities, proposals by rank, other candidates.
    ``ids``, ``names`` (``""`` when none), ``kinds``, ``role`` (0 existing, 1 proposal,
    2 candidate; roles 0 and 1 start chosen), ``rank`` (proposals), ``gain`` (candidates: the
    residents it adds to the existing facilities alone), ``lat``/``lon`` (drawn, page
    coordinates, 1e-6°) and ``wlon``/``wlat`` (WGS84, full precision, for the download).
``tiers``
    Per tier: ``name``, ``label``, ``target_m``, ``goal``, ``kinds``; ``count`` (Uint32, per
    site the number of points it reaches, 0 for sites not of the tier's kinds); ``points``
    (Uint8, per site its point indices ascending, as LEB128 varints of the gaps: index =
    previous + gap, previous starting at −1); ``walk`` (Uint16, the walks in units of
    ``walk_unit_m``, for display only: coverage is decided by the entry being there).

With points in Morton order a site's points lie in few runs, so most gaps take one byte: an
entry costs about 3 bytes (4 in base64). 100 k residents, 300 sites of which 40 centres, two
tiers: a 5 MB page; every site a centre (300 × 1000 m reaches): 12 MB
(``benchmarks/bench_whatif_page.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .geometry import anchor_xy
from .maps import STATUS_LABELS, resident_arrays
from .network import DEFAULT_SNAP_LIMIT_M, WalkNetwork
from .pages import (
    PageCoords,
    add_title,
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
    import geopandas as gpd
    import scipy.sparse as sp

    from .area import Area
    from .tiers import Tier

log = logging.getLogger(__name__)

TOL_M = 1e-6
"""Covered means walk ≤ target + this (as in :mod:`servicecircle.coverage`)."""
ROLES = ("existing", "proposal", "candidate")

COLOURS = {
    "kept": "#1a9641",
    "gained": "#9b4dca",
    "lost": "#f59b00",
    "open": "#d7191c",
    "unsnapped": "#808080",
}
TEXT = {
    "zh": {
        "title": "服务圈站点增减推演",
        "tier": "服务圈",
        "covered": "覆盖居民",
        "share": "覆盖率",
        "goal": "目标",
        "result": "结果",
        "change": "较初始方案",
        "pass": "达标",
        "fail": "未达标",
        "residents": "居民",
        "existing": "现有设施",
        "proposal": "建议站点",
        "candidate": "候选站点",
        "chosen": "已选",
        "not_chosen": "未选",
        "add": "点击添加",
        "remove": "点击移除",
        "reset": "重置",
        "download_geojson": "下载 GeoJSON",
        "download_csv": "下载 CSV",
        "colour_by": "居民着色",
        "hint": "点击空心圆（候选站点）添加；点击现有设施或建议站点移除，再次点击恢复。",
        "kept": "保持覆盖",
        "gained": "新增覆盖",
        "lost": "失去覆盖",
        "open": "未覆盖",
        "nearest": "最近设施",
        "walk_m": "步行（米）",
        "none_within": "无（超出 {m} 米）",
        "id": "编号",
        "sites": "设施",
        "attribution": "地图数据 © OpenStreetMap contributors (ODbL)",
    },
    "en": {
        "title": "Service circles: what if",
        "tier": "tier",
        "covered": "covered residents",
        "share": "share",
        "goal": "goal",
        "result": "result",
        "change": "vs. start",
        "pass": "pass",
        "fail": "fail",
        "residents": "residents",
        "existing": "existing facilities",
        "proposal": "proposed sites",
        "candidate": "candidate sites",
        "chosen": "chosen",
        "not_chosen": "not chosen",
        "add": "click to add",
        "remove": "click to remove",
        "reset": "Reset",
        "download_geojson": "Download GeoJSON",
        "download_csv": "Download CSV",
        "colour_by": "colour residents by",
        "hint": "Click a hollow ring (a candidate) to add it; click an existing facility or a "
        "proposal to remove it, and again to bring it back.",
        "kept": "still covered",
        "gained": "newly covered",
        "lost": "no longer covered",
        "open": "not covered",
        "nearest": "nearest facility",
        "walk_m": "walk (m)",
        "none_within": "none within {m} m",
        "id": "id",
        "sites": "sites",
        "attribution": "Map data © OpenStreetMap contributors (ODbL)",
    },
}
STYLE = (
    "<style>.sc-panel{position:absolute;top:10px;right:10px;z-index:1000;width:390px;"
    "max-height:calc(100% - 40px);overflow:auto;background:rgba(255,255,255,.95);"
    "padding:8px 12px;border-radius:4px;font:13px sans-serif;box-shadow:0 1px 4px "
    "rgba(0,0,0,.3)}.sc-panel h1{font-size:16px;margin:0 0 6px}.sc-panel table{"
    "border-collapse:collapse;width:100%}.sc-panel th,.sc-panel td{padding:2px 4px;"
    "text-align:right;border-bottom:1px solid #eee;vertical-align:top;white-space:nowrap}"
    ".sc-panel th:first-child,.sc-panel td:first-child{text-align:left;white-space:normal}"
    ".sc-pass{color:#1a9641;font-weight:600}"
    ".sc-fail{color:#d7191c;font-weight:600}.sc-up{color:#7b2fb0}.sc-down{color:#c46a00}"
    ".sc-panel button{margin:6px 6px 0 0;font:13px sans-serif;padding:3px 8px;cursor:pointer}"
    ".sc-row{margin-top:6px}.sc-key{display:inline-block;width:10px;height:10px;"
    "border-radius:5px;margin:0 4px 0 8px}.sc-note{margin-top:6px;color:#555;font-size:12px}"
    ".sc-site{box-sizing:border-box;text-align:center;cursor:pointer;font:bold 11px sans-serif}"
    ".sc-off{opacity:.35;filter:grayscale(1)}.sc-tip{white-space:pre}"
    "table.sc-popup th{text-align:left;padding-right:8px}table.sc-popup td{text-align:right}"
    "</style>"
)


def page_sites(
    facilities: gpd.GeoDataFrame,
    proposals: gpd.GeoDataFrame | None = None,
    candidates: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """The page's sites in order: existing facilities (``facility_id``), proposals by rank
    (``id``), then other candidates (``id``, optional ``gain``).

    Ids stay those of the facility file and of ``proposals.geojson``; a later site whose id is
    already taken (the same candidate at both levels of a two-level plan) becomes
    ``<id>-<kind>`` (then ``-2``, ``-3``…).

    Returns
    -------
    geopandas.GeoDataFrame
        ``site_id``, ``kind``, ``name``, ``role`` (0/1/2), ``rank``, ``gain``, in the
        facilities' CRS.
    """
    import geopandas as gpd
    import pandas as pd

    crs = facilities.crs
    parts = []
    for role, frame, id_col in ((0, facilities, "facility_id"), (1, proposals, "id"),
                                (2, candidates, "id")):  # fmt: skip
        if frame is None or len(frame) == 0:
            continue
        if role == 1 and "rank" in frame:
            frame = frame.sort_values("rank", kind="stable")
        frame = frame.to_crs(crs) if crs is not None else frame
        part = pd.DataFrame(
            {
                "site_id": texts(frame[id_col]),
                "kind": frame["kind"].astype(str).to_numpy(),
                "name": texts(frame["name"]) if "name" in frame else [""] * len(frame),
                "role": role,
                "rank": pd.to_numeric(frame["rank"]).to_numpy(dtype=float)
                if role == 1 and "rank" in frame
                else np.nan,
                "gain": pd.to_numeric(frame["gain"]).to_numpy(dtype=float)
                if "gain" in frame
                else np.nan,
                "geometry": frame.geometry.to_numpy(),
            }
        )
        parts.append(part)
    if not parts:
        empty: dict[str, list[Any]] = {k: [] for k in ("site_id", "kind", "name", "role")}
        empty.update(rank=[], gain=[])
        return gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    sites = pd.concat(parts, ignore_index=True)
    seen: set[str] = set()
    ids = []
    for sid, kind in zip(sites["site_id"], sites["kind"], strict=True):
        new, k = sid, 1
        if new in seen:
            new = f"{sid}-{kind}"
        while new in seen:
            k += 1
            new = f"{sid}-{kind}-{k}"
        seen.add(new)
        ids.append(new)
    sites["site_id"] = ids
    return gpd.GeoDataFrame(sites, geometry="geometry", crs=crs)


def spatial_order(xy: np.ndarray, *, cell_m: float = 10.0) -> np.ndarray:
    """A permutation putting points in Morton (Z-curve) order on a grid of ``cell_m``."""
    n = len(xy)
    if n == 0:
        return np.zeros(0, dtype="int64")
    xy = np.nan_to_num(np.asarray(xy, dtype=float))
    lo = xy.min(axis=0)
    span = float((xy.max(axis=0) - lo).max())
    cell = max(cell_m, span / 65535.0)
    q = np.clip((xy - lo) / cell, 0, 65535).astype(np.uint64)

    def spread(v: np.ndarray) -> np.ndarray:
        v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
        v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
        v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
        return (v | (v << np.uint64(1))) & np.uint64(0x55555555)

    key = spread(q[:, 0]) | (spread(q[:, 1]) << np.uint64(1))
    return np.argsort(key, kind="stable")


def leb128(values: np.ndarray) -> np.ndarray:
    """Unsigned integers (< 2³⁵) as LEB128 varints: 7 bits a byte, low first, high bit set on
    every byte but a value's last."""
    v = np.asarray(values, dtype=np.uint64)
    nbytes = np.ones(len(v), dtype="int64")
    for b in range(1, 5):
        nbytes += v >= np.uint64(1 << (7 * b))
    ends = np.cumsum(nbytes)
    starts = ends - nbytes
    out = np.zeros(int(ends[-1]) if len(v) else 0, dtype=np.uint8)
    for b in range(5):
        sel = nbytes > b
        if not sel.any():
            break
        byte = (v[sel] >> np.uint64(7 * b)) & np.uint64(0x7F)
        more = (nbytes[sel] > b + 1).astype(np.uint64) << np.uint64(7)
        out[starts[sel] + b] = (byte | more).astype(np.uint8)
    return out


def tier_entries(
    network: WalkNetwork,
    dsnap: Any,
    ssnap: Any,
    site_kinds: np.ndarray,
    tier: Tier,
) -> sp.csc_matrix:
    """Demand × site walks within the tier (``target_m + 1e-6``), for every site (columns of
    sites not of the tier's kinds are empty)."""
    import scipy.sparse as sp

    from .siting import coverage_matrix

    sel = np.flatnonzero(np.isin(site_kinds, tier.kinds))
    limit = tier.target_m + TOL_M
    if len(sel) == 0 or len(dsnap) == 0:
        return sp.csc_matrix((len(dsnap), len(site_kinds)))
    m = coverage_matrix(network, dsnap, ssnap.subset(sel), target_m=limit).tocoo()
    keep = m.data <= limit
    return sp.csc_matrix(
        (m.data[keep], (m.row[keep], sel[m.col[keep]])), shape=(len(dsnap), len(site_kinds))
    )


def encode_tier(entries: sp.csc_matrix, order: np.ndarray, tier: Tier, lang: str) -> dict:
    """One tier's block of the page data (see the module docstring), points renumbered so that
    point ``order[i]`` of the demand is point ``i`` of the page."""
    import scipy.sparse as sp

    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order))
    coo = entries.tocoo()
    m = sp.csc_matrix((coo.data, (rank[coo.row], coo.col)), shape=entries.shape)
    m.sort_indices()
    counts = np.diff(m.indptr)
    idx = m.indices.astype("int64")
    prev = np.empty_like(idx)
    if len(idx):
        prev[1:] = idx[:-1]
        prev[m.indptr[:-1][counts > 0]] = -1
    unit = 0.1 if tier.target_m + TOL_M <= 6500 else 1.0
    walk = np.clip(np.rint(m.data / unit), 0, 65535)
    return {
        "name": tier.name,
        "label": tier.display(lang),
        "target_m": float(tier.target_m),
        "goal": float(tier.goal),
        "kinds": list(tier.kinds),
        "entries": len(idx),
        "count": b64(counts, "uint32"),
        "points": b64(leb128(idx - prev), "uint8"),
        "walk": b64(walk, "uint16"),
        "walk_unit_m": unit,
    }


def whatif_data(
    area: Area,
    demand: gpd.GeoDataFrame,
    sites: gpd.GeoDataFrame,
    tiers: Sequence[Tier],
    network: WalkNetwork,
    pc: PageCoords,
    *,
    lang: str = "zh",
    title: str | None = None,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
) -> dict[str, Any]:
    """The page's data block: residents, sites and per tier the sparse entries."""
    import geopandas as gpd

    text = TEXT.get(lang, TEXT["en"])
    dsnap = network.snap(demand, snap_limit_m=snap_limit_m)
    ssnap = network.snap(sites, snap_limit_m=snap_limit_m)
    pop = demand["population"].to_numpy(dtype="float64")
    xy = anchor_xy(demand.geometry.to_numpy())
    order = spatial_order(xy)
    block = resident_arrays(pc, demand.iloc[order], pop[order])
    res = block["residents"]
    exact32 = bool(np.array_equal(pop.astype("float32").astype("float64"), pop))
    res["pop_dtype"] = "float32" if exact32 else "float64"
    res["pop"] = b64(pop[order], res["pop_dtype"])
    res["total"] = float(pop.sum())
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order))
    res["unsnapped"] = b64(np.sort(rank[~dsnap.ok]), "int32")
    kinds = sites["kind"].to_numpy()
    tier_blocks = []
    for tier in tiers:
        entries = tier_entries(network, dsnap, ssnap, kinds, tier)
        _check_start(network, dsnap, ssnap, sites, tier, entries, pop)
        tier_blocks.append(encode_tier(entries, order, tier, lang))
    if len(sites):
        lon, lat = pc.lonlat(sites)
        ll = sites.to_crs(4326).geometry
        wlon, wlat = ll.x.to_numpy(), ll.y.to_numpy()
    else:
        lon = lat = wlon = wlat = np.zeros(0)
    kind_labels = KIND_LABELS.get(lang, KIND_LABELS["en"])
    status = STATUS_LABELS.get(lang, STATUS_LABELS["en"])
    return {
        "lang": lang,
        "title": title or f"{text['title']} · {area.name}",
        "text": {**text, "unsnapped": status["unsnapped"]},
        "kind_labels": kind_labels,
        "colours": COLOURS,
        "boundary": pc.geojson(gpd.GeoSeries([area.boundary], crs=area.crs)),
        **{k: v for k, v in block.items() if k != "residents"},
        "residents": res,
        "sites": {
            "n": len(sites),
            "ids": list(sites["site_id"]),
            "names": list(sites["name"]),
            "kinds": [str(k) for k in kinds],
            "role": [int(r) for r in sites["role"]],
            "rank": [None if not np.isfinite(r) else int(r) for r in sites["rank"]],
            "gain": [None if not np.isfinite(g) else round(float(g), 2) for g in sites["gain"]],
            "lon": lon.tolist(),
            "lat": lat.tolist(),
            "wlon": [float(v) for v in wlon],
            "wlat": [float(v) for v in wlat],
        },
        "tiers": tier_blocks,
    }


def _check_start(
    network: WalkNetwork,
    dsnap: Any,
    ssnap: Any,
    sites: gpd.GeoDataFrame,
    tier: Tier,
    entries: sp.csc_matrix,
    pop: np.ndarray,
) -> None:
    """Warn when the entries disagree with the path engine on the starting set (never
    expected: both walk the same network from the same snaps)."""
    from .coverage import nearest_facility

    start = (sites["role"].to_numpy() < 2) & np.isin(sites["kind"].to_numpy(), tier.kinds)
    if not start.any():
        return
    walk, _ = nearest_facility(network, dsnap, ssnap.subset(start), limit_m=tier.target_m * 2)
    engine = walk <= tier.target_m + TOL_M
    reached = np.asarray((entries[:, np.flatnonzero(start)] > 0).sum(axis=1)).ravel() > 0
    if not np.array_equal(engine, reached):
        log.warning(
            "what-if page, tier %s: %d demand points differ from the path engine on the "
            "starting set (%.0f vs %.0f residents)",
            tier.name,
            int((engine != reached).sum()),
            float(pop[reached].sum()),
            float(pop[engine].sum()),
        )


def whatif_html(
    area: Area,
    demand: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    proposals: gpd.GeoDataFrame | None,
    candidates: gpd.GeoDataFrame | None,
    tiers: Sequence[Tier],
    network: WalkNetwork,
    *,
    lang: str = "zh",
    tiles: str | None = "osm",
    title: str | None = None,
    snap_limit_m: float = DEFAULT_SNAP_LIMIT_M,
    tianditu_key: str | None = None,
) -> str:
    """The what-if page, as text.

    Parameters
    ----------
    area, demand, network
        The area (boundary and name), the demand points with ``population`` and the walk
        network, as for a coverage run.
    facilities
        Existing facilities (``facility_id``, ``kind``, optional ``name``); they start chosen.
    proposals
        Ranked proposals (``id``, ``kind``, ``rank``) as in ``proposals.geojson``; they start
        chosen.
    candidates
        Other candidate sites (``id``, ``kind``, optional ``name`` and ``gain``); they start
        off.
    tiers
        The tiers the panel shows (each counts the sites of its kinds).
    lang, tiles, title, tianditu_key
        Labels (``"zh"`` or ``"en"``), base tiles (see :func:`~servicecircle.pages.resolve_tiles`),
        page title.
    snap_limit_m
        The snap limit, as for the coverage run the figures must equal.
    """
    import geopandas as gpd

    board = resolve_tiles(tiles, tianditu_key=tianditu_key)
    pc = PageCoords(board.coords)
    sites = page_sites(facilities, proposals, candidates)
    data = whatif_data(
        area, demand, sites, tiers, network, pc, lang=lang, title=title, snap_limit_m=snap_limit_m
    )
    if not board.urls:
        data["attribution_only"] = board.attribution
    fmap = base_map(pc.bounds(gpd.GeoSeries([area.boundary], crs=area.crs)), board)
    add_title(fmap, str(data["title"]))
    root: Any = fmap.get_root()
    root.header.add_child(raw_element(STYLE), name="servicecircle_whatif_style")
    root.html.add_child(raw_element(json_script(data, "sc-whatif")), name="servicecircle_whatif")
    root.header.add_child(raw_element(script("whatif.js")), name="servicecircle_whatif_js")
    call_on_map(
        fmap,
        "servicecircleWhatIfInit(MAP, JSON.parse(document.getElementById('sc-whatif')"
        ".textContent));",
    )
    return page_html(fmap)
