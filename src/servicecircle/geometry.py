"""Small geometry helpers shared by grids, governance grids and roll-ups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._crs import require_metric
from ._errors import InputError

if TYPE_CHECKING:
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry


def check_boundary(boundary: Any) -> BaseGeometry:
    """Return ``boundary`` if it is a non-empty polygon, else raise :class:`InputError`."""
    from shapely.geometry.base import BaseGeometry

    if not isinstance(boundary, BaseGeometry) or boundary.geom_type not in (
        "Polygon",
        "MultiPolygon",
    ):
        kind = getattr(boundary, "geom_type", type(boundary).__name__)
        raise InputError(
            f"grid boundary must be a polygon; got {kind}. Pass the area's boundary polygon"
        )
    if boundary.is_empty or boundary.area <= 0:
        raise InputError("grid boundary is empty; pass a polygon that covers the planning area")
    return boundary


def polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of a geometry (an empty polygon when it has none)."""
    import shapely

    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts)


def nw_order(geoms: np.ndarray) -> np.ndarray:
    """Order polygons north-west to south-east (by x − y of a point inside, ties by x)."""

    pts = anchor_xy(geoms)
    if len(pts) == 0:
        return np.zeros(0, dtype=int)
    return np.lexsort((np.round(pts[:, 0], 3), np.round(pts[:, 0] - pts[:, 1], 3)))


def assign_cells(points: gpd.GeoSeries | np.ndarray, cells: gpd.GeoDataFrame) -> np.ndarray:
    """Row position of the cell each point falls in (``-1`` outside every cell).

    A point on a shared border goes to the first cell that holds it, so every point is counted
    in at most one cell.
    """
    require_metric(cells.crs, "cells")
    geoms = points.to_numpy() if hasattr(points, "to_numpy") else np.asarray(points)
    hit = cells.sindex.query(geoms, predicate="intersects")
    out = np.full(len(geoms), -1, dtype="int64")
    if hit.shape[1]:
        order = np.lexsort((hit[1], hit[0]))
        p, c = hit[0][order], hit[1][order]
        first = np.ones(len(p), dtype=bool)
        first[1:] = p[1:] != p[:-1]
        out[p[first]] = c[first]
    return out


def polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """Compactness ``4π·area / perimeter²`` of each polygon: 1 for a disc, about 0.785 for a
    square, near 0 for a sliver (Polsby & Popper 1991)."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    perim = shapely.length(geoms)
    with np.errstate(invalid="ignore", divide="ignore"):
        pp = 4.0 * np.pi * shapely.area(geoms) / perim**2
    return np.where(perim > 0, pp, np.nan)


def share_along(
    geoms: np.ndarray, lines: np.ndarray, *, tol_m: float = 1.0, step_m: float = 2.0
) -> np.ndarray:
    """Share of each polygon's boundary that runs within ``tol_m`` of one of ``lines`` (see
    :func:`line_share_near`)."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0)
    rings, owner = shapely.get_parts(shapely.boundary(geoms), return_index=True)
    share = line_share_near(rings, lines, tol_m=tol_m, step_m=step_m)
    length = shapely.length(rings)
    total = np.bincount(owner, weights=length, minlength=len(geoms))
    along = np.bincount(owner, weights=np.nan_to_num(share) * length, minlength=len(geoms))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, along / total, np.nan)


def line_share_near(
    lines: np.ndarray, ref: np.ndarray, *, tol_m: float = 1.0, step_m: float = 2.0
) -> np.ndarray:
    """Share of each line's length within ``tol_m`` of one of the ``ref`` lines.

    Each line is cut into pieces of at most ``step_m``; a piece counts when its midpoint lies
    within ``tol_m`` of a reference line. NaN for a line of no length.
    """
    import shapely

    lines = np.asarray(lines, dtype=object)
    out = np.full(len(lines), np.nan)
    if len(lines) == 0:
        return out
    parts, owner = shapely.get_parts(lines, return_index=True)
    parts = shapely.segmentize(parts, step_m)
    xy, part_of = shapely.get_coordinates(parts, return_index=True)
    same = part_of[1:] == part_of[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    seg_owner = owner[part_of[:-1][same]]
    seg_len = np.hypot(*(b - a).T)
    near = np.zeros(len(a), dtype=bool)
    ref = np.asarray(ref, dtype=object)
    if len(ref) and len(a):
        mid = shapely.points((a + b) / 2.0)
        hit = shapely.STRtree(ref).query(mid, predicate="dwithin", distance=tol_m)
        near[np.unique(hit[0])] = True
    total = np.bincount(seg_owner, weights=seg_len, minlength=len(lines))
    along = np.bincount(seg_owner, weights=seg_len * near, minlength=len(lines))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, along / total, np.nan)


def anchor_xy(geoms: np.ndarray) -> np.ndarray:
    """``(N, 2)`` coordinates of a point on each geometry: the point itself for points (no
    new objects), a point on the surface for anything else."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) and bool(np.all(shapely.get_type_id(geoms) == shapely.GeometryType.POINT)):
        return shapely.get_coordinates(geoms).reshape(-1, 2)
    return shapely.get_coordinates(shapely.point_on_surface(geoms)).reshape(-1, 2)


def line_ends(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first and last vertex of each line (one pass over the coordinates, no Point
    objects)."""
    import shapely

    coords, index = shapely.get_coordinates(geoms, return_index=True)
    counts = np.bincount(index, minlength=len(geoms))
    last = np.cumsum(counts) - 1
    first = last - counts + 1
    return coords[first], coords[last]


def lines_meet(
    a: np.ndarray, b: np.ndarray, polygon: BaseGeometry, lines: np.ndarray | None = None
) -> np.ndarray:
    """Which lines from ``a[i]`` to ``b[i]`` (their ends) meet ``polygon``: at once those with
    an end in it (most, no line made), the others tested as lines — ``lines[i]`` when given,
    else the straight segments. The same answer as ``shapely.intersects`` on every line."""
    import shapely

    shapely.prepare(polygon)
    meets = shapely.intersects_xy(polygon, a[:, 0], a[:, 1])
    meets |= shapely.intersects_xy(polygon, b[:, 0], b[:, 1])
    rest = np.flatnonzero(~meets)
    if len(rest):
        if lines is None:
            tested = shapely.linestrings(np.stack([a[rest], b[rest]], axis=1))
        else:
            tested = lines[rest]
        meets[rest] = shapely.intersects(polygon, tested)  # (the prepared one first)
    return meets


def single_lines(geoms: np.ndarray, what: str) -> np.ndarray:
    """Each geometry as one LineString (a new array; missing ones stay missing): a
    MultiLineString whose parts join end to end becomes that line; anything else is an
    :class:`~servicecircle._errors.InputError` naming ``what``."""
    import shapely

    geoms = np.array(geoms, dtype=object)
    kind = shapely.get_type_id(geoms)
    multi = np.flatnonzero(kind == shapely.GeometryType.MULTILINESTRING)
    if len(multi):
        geoms[multi] = shapely.line_merge(geoms[multi])
        kind = shapely.get_type_id(geoms)
    bad = (kind != shapely.GeometryType.LINESTRING) & (kind != shapely.GeometryType.MISSING)
    if bad.any():
        raise InputError(
            f"{what}: {int(bad.sum())} edges are not one line each (e.g. a "
            f"{geoms[bad][0].geom_type}); give every edge one LineString, split multi-part "
            "lines into one edge per part"
        )
    return geoms
