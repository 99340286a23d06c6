"""Micro-grids (微网格): each governance grid divided into groups of buildings.

community → grid → micro-grid → building → households. A grid's buildings are grouped into
micro-grids of a range of their own (default 30–150 households), each taking the Voronoi
regions of its buildings inside the grid, footprints whole. A building (or compound) with more
households than the micro maximum is divided by unit and floor: its region is cut across its
long side into unit bands (units estimated from the footprint's length, one per
``unit_width_m``), and a unit band into floor bands when units alone are too big. Floor bands
are drawn side by side across the unit band (a drawing convention: the ``floors`` column says
which floors a micro-grid holds). Such a micro-grid holds a ``share`` of one building
(``demand_id``); roll-ups divide that building's residents by the share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .geometry import nw_order, polygonal
from .governance_split import capped_groups, divide, locations


@dataclass(frozen=True)
class MicroParams:
    """Target households per micro-grid, and the frontage of a stairwell unit (单元)."""

    households_min: float
    households_max: float
    unit_width_m: float


@dataclass(frozen=True)
class MicroGrids:
    """Micro-grids and which buildings (demand rows) they hold.

    ``frame``: ``cell_id`` (``<grid>-<NN>``), ``grid_id``, ``community``, ``households``,
    ``population``, ``buildings``, ``demand_id`` and ``share`` (for a part of one building),
    ``units``, ``floors``, ``flag``, ``geometry``. ``members``: ``point`` (demand row
    position), ``micro`` (row of ``frame``), ``share`` of the building's households.
    """

    frame: pd.DataFrame
    members: pd.DataFrame
    not_whole: tuple[int, ...]


@dataclass(frozen=True)
class Buildings:
    """The demand rows handed to :func:`micro_grids`, as arrays."""

    pts: np.ndarray
    hh: np.ndarray
    pop: np.ndarray
    levels: np.ndarray
    footprints: np.ndarray | None
    ids: np.ndarray


def micro_grids(
    grid_geoms: np.ndarray,
    grid_ids: list[str],
    grid_community: list[Any],
    point_grid: np.ndarray,
    b: Buildings,
    params: MicroParams,
) -> MicroGrids:
    """Divide every grid into micro-grids (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    members: list[tuple[int, int, float]] = []
    not_whole: list[int] = []
    order = np.argsort(point_grid, kind="stable")
    bounds = np.searchsorted(point_grid[order], np.arange(len(grid_ids) + 1))
    for gi, geom in enumerate(grid_geoms):
        sel = np.sort(order[bounds[gi] : bounds[gi + 1]])
        cells, mem, nw = _divide_grid(geom, sel, b, params)
        not_whole.extend(nw)
        idx = nw_order(np.asarray([c["geometry"] for c in cells], dtype=object))
        new_pos = np.empty(len(cells), dtype="int64")
        new_pos[idx] = np.arange(len(cells))
        base = len(rows)
        for rank, ci in enumerate(idx.tolist()):
            c = cells[ci]
            c["flag"] = _flag(c["households"], c.pop("whole_one"), params)
            c["cell_id"] = f"{grid_ids[gi]}-{rank + 1:02d}"
            c["grid_id"] = grid_ids[gi]
            c["community"] = grid_community[gi]
            rows.append(c)
        members.extend((p, base + int(new_pos[ci]), s) for p, ci, s in mem)
    frame = pd.DataFrame(rows)
    mem_frame = pd.DataFrame(members, columns=["point", "micro", "share"]).astype(
        {"point": "int64", "micro": "int64", "share": float}
    )
    counts = mem_frame.groupby("micro")["point"].nunique()
    frame["buildings"] = counts.reindex(range(len(frame))).fillna(0).astype("int64").to_numpy()
    cols = ["cell_id", "grid_id", "community", "households", "population", "buildings"]
    cols += ["demand_id", "share", "units", "floors", "flag", "geometry"]
    return MicroGrids(frame[cols], mem_frame, tuple(sorted(not_whole)))


def _divide_grid(
    geom: Any, sel: np.ndarray, b: Buildings, params: MicroParams
) -> tuple[list[dict[str, Any]], list[tuple[int, int, float]], list[int]]:
    """One grid → micro-grid rows (unordered), (point, row, share) members, footprints not
    kept whole."""
    import shapely

    if len(sel) == 0:
        return [_cell(geom, 0.0, 0.0)], [], []
    coords = shapely.get_coordinates(b.pts[sel])
    uniq, inv = locations(coords)
    loc_hh = np.bincount(inv, weights=b.hh[sel], minlength=len(uniq))
    groups = micro_groups(uniq, loc_hh, params.households_min, params.households_max)
    not_whole: list[int] = []
    if len(np.unique(groups)) == 1:
        regions = {int(groups[0]): geom}
        point_group = np.full(len(sel), int(groups[0]), dtype="int64")
    else:
        fps = b.footprints[sel] if b.footprints is not None else None
        div = divide(geom, uniq, groups, inv, fps)
        not_whole = [int(sel[i]) for i in div.not_whole]
        point_group = div.piece_group[div.point_piece]
        regions = _group_regions(div.pieces, div.piece_group, point_group)
    cells: list[dict[str, Any]] = []
    members: list[tuple[int, int, float]] = []
    for gval in sorted(regions):
        mine = sel[point_group == gval]
        _group_cells(regions[gval], mine, b, params, cells, members)
    return cells, members, not_whole


def micro_groups(xy: np.ndarray, weight: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Micro-grid group of each building location: a location over ``hi`` alone (it is
    divided by unit and floor later), the others in balanced groups of at most ``hi``; a
    group below ``lo`` joins the nearest group it fits with."""
    split = weight > hi
    groups = np.full(len(xy), -1, dtype="int64")
    groups[split] = np.arange(int(split.sum()))
    rest = np.flatnonzero(~split)
    if len(rest) == 0:
        return groups
    base = int(split.sum())
    groups[rest] = base + capped_groups(xy[rest], weight[rest], hi)
    labels = np.unique(groups[rest]).tolist()
    sums = {g: float(weight[groups == g].sum()) for g in labels}
    centre = {g: xy[groups == g].mean(axis=0) for g in labels}
    for g in sorted(labels, key=lambda x: (sums[x], x)):
        if sums[g] >= lo or sums[g] <= 0:
            continue
        fits = [o for o in labels if o != g and sums[o] > 0 and sums[o] + sums[g] <= hi]
        if not fits:
            continue
        o = min(fits, key=lambda x: (float(np.hypot(*(centre[x] - centre[g]))), x))
        groups[groups == g] = o
        sums[o] += sums[g]
        sums[g] = 0.0
    return np.unique(groups, return_inverse=True)[1].ravel().astype("int64")


def _group_regions(
    pieces: list[Any], piece_group: np.ndarray, point_group: np.ndarray
) -> dict[int, Any]:
    """One region per group of buildings; a region left without buildings joins the region
    it shares the longest border with, so the micro-grids still tile the grid."""
    import shapely

    regions: dict[int, Any] = {}
    for gval in np.unique(piece_group).tolist():
        parts = [p for p, q in zip(pieces, piece_group.tolist(), strict=True) if q == gval]
        regions[int(gval)] = polygonal(shapely.make_valid(shapely.union_all(parts)))
    held = set(np.unique(point_group).tolist())
    for gval in sorted(set(regions) - held):
        region = regions.pop(gval)
        others = sorted(regions)
        shared = [shapely.length(shapely.intersection(region, regions[o])) for o in others]
        best = others[int(np.argmax(shared))]
        regions[best] = polygonal(shapely.make_valid(shapely.union(regions[best], region)))
    return regions


def _group_cells(
    region: Any,
    mine: np.ndarray,
    b: Buildings,
    params: MicroParams,
    cells: list[dict[str, Any]],
    members: list[tuple[int, int, float]],
) -> None:
    """The micro-grid(s) of one group of buildings: one, or the unit and floor bands of its
    largest building when that is over the micro maximum (the other buildings of the group,
    if any, go whole to the band their point lies in)."""
    import shapely

    h = b.hh[mine]
    top = int(np.argmax(h))
    if h[top] <= params.households_max:
        for m in mine.tolist():
            members.append((int(m), len(cells), 1.0))
        c = _cell(region, float(h.sum()), float(b.pop[mine].sum()))
        c["whole_one"] = len(mine) == 1
        cells.append(c)
        return
    p = int(mine[top])
    fp = b.footprints[p] if b.footprints is not None else None
    tiles = _tiles(region, fp, float(h[top]), b.levels[p], params)
    geoms = np.asarray([t[0] for t in tiles], dtype=object)
    first = len(cells)
    for tile, share, units, floors in tiles:
        members.append((p, len(cells), share))
        c = _cell(tile, float(h[top]) * share, float(b.pop[p]) * share)
        c.update(demand_id=str(b.ids[p]), share=share, units=units, floors=floors)
        cells.append(c)
    others = np.delete(mine, top)
    if len(others):
        tree = shapely.STRtree(geoms)
        near = tree.query_nearest(b.pts[others], all_matches=False)
        for o, t in zip(others[near[0]].tolist(), near[1].tolist(), strict=True):
            members.append((int(o), first + t, 1.0))
            cells[first + t]["households"] += float(b.hh[o])
            cells[first + t]["population"] += float(b.pop[o])


def _cell(geom: Any, hh: float, pop: float) -> dict[str, Any]:
    return {
        "geometry": geom,
        "households": hh,
        "population": pop,
        "demand_id": "",
        "share": np.nan,
        "units": "",
        "floors": "",
        "whole_one": False,
    }


def _flag(households: float, whole_one: bool, params: MicroParams) -> str:
    lo, hi = params.households_min, params.households_max
    if lo - 1e-9 <= households <= hi + 1e-9:
        return ""
    if households <= 0:
        return "below_min: no households"
    if households > hi:
        if whole_one:
            return "above_max: one building that cannot be divided by unit and floor"
        return "above_max: its buildings could not be grouped more evenly"
    return "below_min: its buildings could not be grouped more evenly"


def unit_floor_split(
    households: float, units: int, floors: int, lo: float, hi: float
) -> tuple[list[int], list[int]]:
    """How to divide a building of ``units`` × ``floors`` into micro-grids of ``lo``–``hi``
    households: the sizes of the unit groups and of the floor bands.

    Within the range: the fewest floor bands first (a unit, with its own stairs and
    entrance, is the natural micro-grid; floors are split only when a unit alone holds too
    many households), then the fewest micro-grids. When no division of the estimated units
    and floors fits, more units than estimated are used.
    """
    need = max(1, math.ceil(households / hi))
    best: tuple[Any, ...] | None = None
    for nu in range(1, max(units, need) + 1):
        u_total = max(units, nu)
        us = [len(a) for a in np.array_split(np.arange(u_total), nu)]
        for nf in range(1, floors + 1):
            fs = [len(a) for a in np.array_split(np.arange(floors), nf)]
            parts = households * np.outer(np.asarray(us) / u_total, np.asarray(fs) / floors)
            dev = float((np.maximum(lo - parts, 0) + np.maximum(parts - hi, 0)).sum())
            key = (dev > 1e-9, nu > units, round(dev, 6), nf, nu * nf, nu)
            if best is None or key < best[0]:
                best = (key, us, fs)
            if nu * nf >= need and dev <= 1e-9:
                break
    assert best is not None
    return best[1], best[2]


def _tiles(
    region: Any, footprint: Any, households: float, levels: Any, params: MicroParams
) -> list[tuple[Any, float, str, str]]:
    """A building's region cut into unit bands (across the long side of its footprint) and
    floor bands: (geometry, share of the building, units, floors)."""
    import shapely

    shape = footprint if footprint is not None and not footprint.is_empty else region
    shape = polygonal(shapely.make_valid(shapely.intersection(shape, region)))
    if shape.is_empty:
        shape = region
    d, e = _axes(shape)
    origin = shapely.get_coordinates(shapely.centroid(region))[0]
    s = (shapely.get_coordinates(shape) - origin) @ d
    long_m = float(s.max() - s.min())
    floors = int(levels) if levels is not None and np.isfinite(levels) and levels >= 1 else 1
    units = max(1, int(long_m // params.unit_width_m))
    us, fs = unit_floor_split(
        households, units, floors, params.households_min, params.households_max
    )
    u_total = sum(us)
    big = float(np.ptp(shapely.get_coordinates(region), axis=0).sum()) * 4 + 100.0
    ucut = s.min() + long_m * np.cumsum(us)[:-1] / u_total
    u_edges = [-big, *ucut.tolist(), big]
    out: list[tuple[Any, float, str, str]] = []
    u0 = 0
    pending = 0.0
    for i, nu in enumerate(us):
        band = _band(origin, d, e, (u_edges[i], u_edges[i + 1]), (-big, big))
        band_region = polygonal(shapely.make_valid(shapely.intersection(region, band)))
        inside = polygonal(shapely.make_valid(shapely.intersection(shape, band)))
        t = (shapely.get_coordinates(inside if not inside.is_empty else band_region) - origin) @ e
        t0, span = (float(t.min()), float(np.ptp(t))) if len(t) else (0.0, 0.0)
        f_edges = [-big, *(t0 + span * np.cumsum(fs)[:-1] / floors).tolist(), big]
        label_u = _label(u0 + 1, u0 + nu) if u_total > 1 else ""
        f0, first = 0, 1  # floors so far; first floor of the band being drawn
        band_start = len(out)
        for j, nf in enumerate(fs):
            cell = _band(origin, d, e, (u_edges[i], u_edges[i + 1]), (f_edges[j], f_edges[j + 1]))
            tile = polygonal(shapely.make_valid(shapely.intersection(band_region, cell)))
            pending += (nu / u_total) * (nf / floors)
            f0 += nf
            if tile.is_empty or tile.area < 0.01:
                continue  # nothing to draw: its floors go to the next band
            out.append((tile, pending, label_u, _label(first, f0) if floors > 1 else ""))
            pending, first = 0.0, f0 + 1
        if pending and len(out) > band_start:  # the top floors had nothing to draw either
            g, sh, lu_, lf = out[-1]
            lf = _label(int(lf.split("-")[0]), floors) if lf else lf
            out[-1] = (g, sh + pending, lu_, lf)
            pending = 0.0
        u0 += nu  # a unit band with nothing to draw passes its share on to the next
    if pending and out:
        g, sh, lu_, lf = out[-1]
        out[-1] = (g, sh + pending, lu_, lf)
    if not out:
        return [(region, 1.0, "", "")]
    return out


def _label(a: int, b: int) -> str:
    return f"{a}" if a == b else f"{a}-{b}"


def _axes(shape: Any) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors along the long and the short side of the minimum rotated rectangle."""
    import shapely

    rect = shapely.get_coordinates(shapely.oriented_envelope(shape))
    if len(rect) < 4:
        return np.array([1.0, 0.0]), np.array([0.0, 1.0])
    v1, v2 = rect[1] - rect[0], rect[2] - rect[1]
    long_v = v1 if np.hypot(*v1) >= np.hypot(*v2) else v2
    norm = float(np.hypot(*long_v))
    if norm == 0:
        return np.array([1.0, 0.0]), np.array([0.0, 1.0])
    d = long_v / norm
    if d[0] < 0 or (d[0] == 0 and d[1] < 0):
        d = -d  # units numbered from the west (or south) end
    e = np.array([-d[1], d[0]])
    return d, e


def _band(
    origin: np.ndarray,
    d: np.ndarray,
    e: np.ndarray,
    s_range: tuple[float, float],
    t_range: tuple[float, float],
) -> Any:
    """The rectangle ``s0 ≤ (x − origin)·d ≤ s1, t0 ≤ (x − origin)·e ≤ t1``."""
    import shapely

    (s0, s1), (t0, t1) = s_range, t_range
    corners = [origin + s0 * d + t0 * e, origin + s1 * d + t0 * e]
    corners += [origin + s1 * d + t1 * e, origin + s0 * d + t1 * e]
    return shapely.Polygon(corners)
