"""Dividing a polygon among groups of buildings, never through a building.

Governance grids use it twice: street blocks are divided into *atoms* (the pieces that
rebalancing moves between grids, :func:`block_atoms`), and grids into micro-grids
(:mod:`servicecircle.governance_micro`). Each group of buildings takes the Voronoi regions of
its buildings inside the polygon; every footprint goes whole to the piece of its building.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .geometry import nw_order, polygonal

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Division:
    """A polygon divided among groups of buildings.

    Attributes
    ----------
    pieces
        Polygons that tile the divided polygon.
    piece_group
        The group label of each piece (a group may have fallen apart into several pieces).
    point_piece
        The piece each building point went to.
    not_whole
        Positions (in the footprints handed in) of footprints that could not be kept whole
        because the geometry operation failed; they stay with the piece of their point.
    """

    pieces: list[Any]
    piece_group: np.ndarray
    point_piece: np.ndarray
    not_whole: tuple[int, ...]


@dataclass(frozen=True)
class Atoms:
    """Street blocks divided into the pieces grids are made of.

    ``frame`` has ``geometry``, ``community``, ``part`` (the block part it lies in),
    ``households``, ``population`` and ``tower`` (holds one building above the grid maximum),
    in north-west to south-east order; ``point_atom`` is the atom of each demand point (``-1``
    outside every block); ``not_whole`` the demand rows whose footprint could not be kept whole.
    """

    frame: pd.DataFrame
    point_atom: np.ndarray
    not_whole: tuple[int, ...]


def locations(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct building locations (to the millimetre) and the location of each point."""
    if len(coords) == 0:
        return coords, np.zeros(0, dtype="int64")
    uniq, inv = np.unique(np.round(coords, 3), axis=0, return_inverse=True)
    return uniq, np.asarray(inv).ravel()


def balanced_groups(xy: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Split points into ``k`` spatially compact groups of about equal weight, by recursive
    cuts across the longer side (deterministic)."""
    out = np.zeros(len(xy), dtype="int64")

    def cut(idx: np.ndarray, parts: int, first: int) -> None:
        if parts <= 1 or len(idx) <= 1:
            out[idx] = first
            return
        span = xy[idx].max(axis=0) - xy[idx].min(axis=0)
        axis = 0 if span[0] >= span[1] else 1
        order = idx[np.lexsort((xy[idx, 1 - axis], xy[idx, axis]))]
        left_parts = parts // 2
        cum = np.cumsum(weight[order])
        target = cum[-1] * left_parts / parts
        split = int(np.searchsorted(cum, target)) + 1
        split = min(max(split, 1), len(order) - 1)
        cut(order[:split], left_parts, first)
        cut(order[split:], parts - left_parts, first + left_parts)

    cut(np.arange(len(xy)), k, 0)
    return out


def capped_groups(xy: np.ndarray, weight: np.ndarray, cap: float) -> np.ndarray:
    """Balanced groups of at most ``cap`` weight each, where single points allow: groups
    still over the cap are cut again (deterministic). Labels are ``0…k-1``."""
    if len(xy) == 0:
        return np.zeros(0, dtype="int64")
    k = max(1, math.ceil(float(weight.sum()) / cap))
    groups = balanced_groups(xy, weight, k)
    for _ in range(8):
        sums = np.bincount(groups, weights=weight)
        sizes = np.bincount(groups)
        over = np.flatnonzero((sums > cap) & (sizes > 1))
        if len(over) == 0:
            break
        nxt = int(groups.max()) + 1
        for g in over.tolist():
            idx = np.flatnonzero(groups == g)
            sub = balanced_groups(xy[idx], weight[idx], math.ceil(float(sums[g]) / cap) + 1)
            groups[idx] = np.where(sub == 0, g, nxt + sub - 1)
            nxt = int(groups.max()) + 1
    return np.unique(groups, return_inverse=True)[1].ravel().astype("int64")


def divide(
    geom: Any,
    uniq: np.ndarray,
    groups: np.ndarray,
    inv: np.ndarray,
    footprints: np.ndarray | None,
) -> Division:
    """Divide ``geom`` among groups of building locations.

    Parameters
    ----------
    geom
        The polygon to divide (a block part or a grid).
    uniq
        Building locations (x, y), at least two.
    groups
        Group label of each location.
    inv
        Location of each building point.
    footprints
        Footprint of each building point (``None`` entries allowed), or ``None``.
    """
    import shapely

    pieces, piece_group = _group_pieces(uniq, groups, geom)
    loc_pts = shapely.points(uniq)
    ptree = shapely.STRtree(pieces)
    ph = ptree.query(loc_pts, predicate="intersects")
    piece_of_loc = np.full(len(uniq), -1, dtype="int64")
    for p_, r_ in zip(ph[0].tolist(), ph[1].tolist(), strict=True):
        if piece_of_loc[p_] < 0 or piece_group[r_] == groups[p_] != piece_group[piece_of_loc[p_]]:
            piece_of_loc[p_] = r_
    missing = piece_of_loc < 0
    if missing.any():
        near = ptree.query_nearest(loc_pts[missing], all_matches=False)
        piece_of_loc[np.flatnonzero(missing)[near[0]]] = near[1]
    # pieces without a building join the neighbouring piece they share most border with
    holds = np.bincount(piece_of_loc, minlength=len(pieces)) > 0
    owner = np.arange(len(pieces))
    held = np.flatnonzero(holds)
    for e in np.flatnonzero(~holds).tolist():
        shared = shapely.length(shapely.intersection(pieces[e], pieces[held]))
        owner[e] = held[int(np.argmax(shared))]
    pt_piece = piece_of_loc[inv]
    owned = {int(o): shapely.union_all(pieces[owner == o]) for o in held}
    not_whole: tuple[int, ...] = ()
    clipped: list[Any] = [None] * len(inv)
    if footprints is not None:
        owned, clipped, not_whole = _footprints_whole(owned, pt_piece, footprints, geom)
    owned, pt_piece = _reattach_parts(owned, pt_piece, shapely.points(uniq[inv]), clipped)
    keys = sorted(k for k in owned if not owned[k].is_empty)
    remap = np.full(len(pieces), -1, dtype="int64")
    remap[keys] = np.arange(len(keys))
    out_pieces = [polygonal(shapely.make_valid(owned[k])) for k in keys]
    point_piece = remap[pt_piece]
    lost = np.flatnonzero(point_piece < 0)
    if len(lost):  # a piece emptied by its neighbours' footprints: its buildings go next door
        near = shapely.STRtree(out_pieces).query_nearest(
            shapely.points(uniq[inv[lost]]), all_matches=False
        )
        point_piece[lost[near[0]]] = near[1]
    return Division(out_pieces, piece_group[keys], point_piece, not_whole)


def _group_pieces(uniq: np.ndarray, groups: np.ndarray, geom: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each group of building locations takes the Voronoi regions of its locations inside the
    polygon; the parts of those unions, as pieces, with the group of each."""
    import shapely

    regions = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(uniq), extend_to=geom))
    reg_tree = shapely.STRtree(regions)
    hit = reg_tree.query(shapely.points(uniq), predicate="intersects")
    region_group = np.full(len(regions), -1, dtype="int64")
    for p_, r_ in zip(hit[0].tolist(), hit[1].tolist(), strict=True):
        if region_group[r_] < 0:
            region_group[r_] = groups[p_]
    pieces: list[Any] = []
    labels: list[int] = []
    for g in np.unique(groups).tolist():
        merged = shapely.union_all(regions[region_group == g])
        piece = polygonal(shapely.make_valid(shapely.intersection(merged, geom)))
        parts = [p for p in shapely.get_parts(piece) if p.area > 0.01]
        pieces.extend(parts)
        labels.extend([g] * len(parts))
    return np.asarray(pieces, dtype=object), np.asarray(labels, dtype="int64")


def _footprints_whole(
    owned: dict[int, Any], pt_piece: np.ndarray, footprints: np.ndarray, geom: Any
) -> tuple[dict[int, Any], list[Any], tuple[int, ...]]:
    """A building belongs wholly to the piece of its point: never cut through it. Returns the
    pieces, each point's footprint inside ``geom`` (``None`` if none), and the positions of
    footprints the geometry engine could not keep whole."""
    import shapely

    owned = {key: shapely.make_valid(g) for key, g in owned.items()}
    clipped: list[Any] = [None] * len(pt_piece)
    failed: list[int] = []
    for i, o in enumerate(pt_piece.tolist()):
        f = footprints[i]
        if f is None or f.is_empty:
            continue
        try:
            f = polygonal(shapely.make_valid(shapely.intersection(shapely.make_valid(f), geom)))
            if f.is_empty:
                continue
            for other in owned:
                if other != o and owned[other].intersects(f):
                    owned[other] = polygonal(
                        shapely.make_valid(shapely.difference(owned[other], f))
                    )
            owned[o] = polygonal(shapely.make_valid(shapely.union(owned[o], f)))
            clipped[i] = f
        except shapely.errors.GEOSException as err:
            log.debug("footprint %d could not be kept whole: %s", i, err)
            failed.append(i)
    return owned, clipped, tuple(failed)


def _reattach_parts(
    owned: dict[int, Any], pt_piece: np.ndarray, pts: np.ndarray, footprints: list[Any]
) -> tuple[dict[int, Any], np.ndarray]:
    """Keep each piece in one part: a part cut off (by a building given whole to a neighbour)
    joins the piece it shares the longest border with; buildings follow their part. A part
    that holds a piece of a footprint whose point lies in another part (a building in two
    parts, as an invalid outline becomes) stays, so that the building is not cut."""
    import shapely

    keys = sorted(owned)
    for _ in range(3):  # a moved part can itself create a new cut-off; settle in few rounds
        moved = False
        for o in keys:
            parts = list(shapely.get_parts(owned[o]))
            if len(parts) <= 1:
                continue
            mine = pts[pt_piece == o]
            held = [int(shapely.contains(p, mine).sum()) if len(mine) else 0 for p in parts]
            # the part holding most of the piece's buildings (then the largest) stays
            main = max(range(len(parts)), key=lambda j: (held[j], parts[j].area))
            keep = [parts[main]]
            for j, part in enumerate(parts):
                if j == main:
                    continue
                best, best_len = None, 0.0
                for other in keys:
                    if other == o:
                        continue
                    length = shapely.length(shapely.intersection(part, owned[other]))
                    if length > best_len + 1e-9:
                        best, best_len = other, length
                if best is None or _holds_others(part, pts, pt_piece == o, footprints):
                    keep.append(part)
                    continue
                owned[best] = polygonal(shapely.make_valid(shapely.union(owned[best], part)))
                inside = shapely.covers(part, pts) & (pt_piece == o)
                pt_piece = np.where(inside, best, pt_piece)
                moved = True
            owned[o] = polygonal(shapely.make_valid(shapely.union_all(keep)))
        if not moved:
            break
    return owned, pt_piece


def _holds_others(part: Any, pts: np.ndarray, mine: np.ndarray, footprints: list[Any]) -> bool:
    """Whether ``part`` overlaps the footprint of one of the piece's buildings outside it."""
    import shapely

    for i in np.flatnonzero(mine & ~shapely.covers(part, pts)).tolist():
        f = footprints[i]
        if f is not None and shapely.area(shapely.intersection(part, f)) > 1e-6:
            return True
    return False


def block_atoms(
    parts: gpd.GeoDataFrame,
    where: np.ndarray,
    pts: np.ndarray,
    hh: np.ndarray,
    pop: np.ndarray,
    *,
    atom_max: float,
    tower_over: float,
    footprints: np.ndarray | None = None,
) -> Atoms:
    """Block parts → atoms of at most ``atom_max`` households where buildings allow.

    A part with more than ``atom_max`` households is divided along its buildings: a building
    location over ``tower_over`` (the grid maximum) is an atom of its own (a *tower*), the
    others are cut into balanced *units* of at most ``tower_over`` (what a grid takes whole
    when it grows) and each unit into balanced groups of at most ``atom_max``; pieces of a
    group that fall apart are separate atoms. No building is cut. ``unit`` numbers the units
    (a part of at most ``tower_over`` households is one).
    """
    import shapely

    rows: list[dict[str, Any]] = []
    point_atom = np.full(len(pts), -1, dtype="int64")
    not_whole: list[int] = []
    units = 0
    order = np.argsort(where, kind="stable")
    bounds = np.searchsorted(where[order], np.arange(len(parts) + 1))
    part_geoms = np.asarray(parts.geometry.to_numpy(), dtype=object)
    part_comm = parts["community"].to_numpy()
    for b in range(len(parts)):
        geom = part_geoms[b]
        community = part_comm[b]
        mine = np.sort(order[bounds[b] : bounds[b + 1]])
        coords = shapely.get_coordinates(pts[mine]) if len(mine) else np.zeros((0, 2))
        uniq, inv = locations(coords)
        loc_hh = np.bincount(inv, weights=hh[mine], minlength=len(uniq))
        total = float(loc_hh.sum())
        if total <= atom_max or len(uniq) < 2:
            point_atom[mine] = len(rows)
            rows.append(_atom(geom, community, b, hh[mine], pop[mine], total > tower_over))
            rows[-1]["unit"] = units
            units += 1
            continue
        groups, unit_of_group = _nested_groups(uniq, loc_hh, atom_max, tower_over)
        fps = footprints[mine] if footprints is not None else None
        div = divide(geom, uniq, groups, inv, fps)
        not_whole.extend(int(mine[i]) for i in div.not_whole)
        for p, piece in enumerate(div.pieces):
            sel = div.point_piece == p
            point_atom[mine[sel]] = len(rows)
            is_tower = bool((loc_hh[np.unique(inv[sel])] > tower_over).any())
            rows.append(_atom(piece, community, b, hh[mine][sel], pop[mine][sel], is_tower))
            rows[-1]["unit"] = units + int(unit_of_group[div.piece_group[p]])
        units += int(unit_of_group.max()) + 1
    frame = pd.DataFrame(rows)
    keep = ~frame["geometry"].map(lambda g: g.is_empty).to_numpy()
    # atoms in north-west → south-east order, points following their atom
    idx = np.flatnonzero(keep)
    idx = idx[nw_order(np.asarray(frame["geometry"].to_numpy(), dtype=object)[idx])]
    new_of_old = np.full(len(frame), -1, dtype="int64")
    new_of_old[idx] = np.arange(len(idx))
    point_atom = np.where(point_atom >= 0, new_of_old[np.maximum(point_atom, 0)], -1)
    return Atoms(frame.iloc[idx].reset_index(drop=True), point_atom, tuple(sorted(not_whole)))


def _nested_groups(
    xy: np.ndarray, weight: np.ndarray, atom_max: float, unit_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Atom group of each location and the unit of each group: a location over ``unit_max``
    alone, the others in units of at most ``unit_max`` cut into groups of at most
    ``atom_max``."""
    big = weight > unit_max
    groups = np.full(len(xy), -1, dtype="int64")
    groups[big] = np.arange(int(big.sum()))
    unit_of_group = list(range(int(big.sum())))
    rest = np.flatnonzero(~big)
    if len(rest):
        coarse = capped_groups(xy[rest], weight[rest], unit_max)
        for c in np.unique(coarse).tolist():
            idx = rest[coarse == c]
            fine = capped_groups(xy[idx], weight[idx], atom_max)
            groups[idx] = len(unit_of_group) + fine
            unit_of_group += [int(big.sum()) + c] * (int(fine.max()) + 1)
    return groups, np.asarray(unit_of_group, dtype="int64")


def _atom(
    geom: Any, community: Any, part: int, hh: np.ndarray, pop: np.ndarray, tower: bool
) -> dict[str, Any]:
    return {
        "geometry": geom,
        "community": community,
        "part": part,
        "households": float(hh.sum()),
        "population": float(pop.sum()),
        "tower": bool(tower),
    }
