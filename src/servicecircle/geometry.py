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
    import shapely

    pts = shapely.get_coordinates(shapely.point_on_surface(geoms))
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
