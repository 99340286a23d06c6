"""Regular grids: square, hexagonal and H3 cells clipped to the boundary.

Cells are built on a lattice anchored at the CRS origin, so a cell's id depends only on where
it is (stable across runs and boundaries), and neighbouring cells share bit-identical vertices
(no slivers); they are then clipped to the boundary, so they tile it exactly. Governance grids
(网格 from street blocks) are in :mod:`servicecircle.governance`.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._crs import require_metric
from ._errors import InputError
from .geometry import assign_cells, check_boundary, polygonal

if TYPE_CHECKING:
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

GRID_KINDS = ("square", "hex", "h3", "governance")
MAX_CELLS = 1_000_000
"""Grids are refused, with the estimate, above this many cells (a 1 m hex grid over a district
would be millions of polygons and gigabytes)."""
DEFAULT_HOUSEHOLD_SIZE = 2.62
"""Residents per household (2020 census) when only population is known."""


def _clip(cells: np.ndarray, ids: np.ndarray, boundary: BaseGeometry, crs: Any) -> gpd.GeoDataFrame:
    """Clip lattice cells to the boundary: inside cells stay as they are, edge cells are cut."""
    import geopandas as gpd
    import shapely

    shapely.prepare(boundary)
    inside = shapely.contains_properly(boundary, cells)
    touching = ~inside & shapely.intersects(boundary, cells)
    out = cells.copy()
    out[touching] = shapely.intersection(cells[touching], boundary)
    keep = inside | touching
    geoms, ids = out[keep], ids[keep]
    # keep only the polygonal part of edge cells (a cell may touch the boundary in a line)
    geoms = np.array([polygonal(g) for g in geoms], dtype=object)
    nonempty = ~shapely.is_empty(geoms) & (shapely.area(geoms) > 0)
    return gpd.GeoDataFrame({"cell_id": ids[nonempty]}, geometry=geoms[nonempty], crs=crs)


def square_grid(boundary: BaseGeometry, size_m: float, *, crs: Any) -> gpd.GeoDataFrame:
    """Square cells of ``size_m`` clipped to ``boundary`` (metres).

    Ids are ``sq<size>-<column>-<row>`` on a lattice anchored at the CRS origin.
    """
    import shapely

    require_metric(crs, "grid boundary")
    boundary = check_boundary(boundary)
    _check_size(boundary, size_m)
    minx, miny, maxx, maxy = boundary.bounds
    c0, c1 = math.floor(minx / size_m), math.ceil(maxx / size_m)
    r0, r1 = math.floor(miny / size_m), math.ceil(maxy / size_m)
    col_grid, row_grid = np.meshgrid(np.arange(c0, c1), np.arange(r0, r1), indexing="ij")
    cols, rows = col_grid.ravel(), row_grid.ravel()
    x0, x1 = cols * size_m, (cols + 1) * size_m
    y0, y1 = rows * size_m, (rows + 1) * size_m
    ring = np.stack(
        [
            np.stack([x0, y0], 1),
            np.stack([x1, y0], 1),
            np.stack([x1, y1], 1),
            np.stack([x0, y1], 1),
            np.stack([x0, y0], 1),
        ],
        axis=1,
    )
    cells = shapely.polygons(ring)
    tag = _size_tag(size_m)
    ids = np.array([f"sq{tag}-{c}-{r}" for c, r in zip(cols, rows, strict=True)], dtype=object)
    return _clip(cells, ids, boundary, crs)


def hex_grid(boundary: BaseGeometry, size_m: float, *, crs: Any) -> gpd.GeoDataFrame:
    """Pointy-top hexagons clipped to ``boundary``; ``size_m`` is the distance between the
    centres of neighbouring cells (the width across flats).

    Ids are ``hx<size>-<q>-<r>`` (axial lattice coordinates). Vertices are computed from
    integer lattice indices, so neighbours share them exactly.
    """
    import shapely

    require_metric(crs, "grid boundary")
    boundary = check_boundary(boundary)
    _check_size(boundary, size_m)
    w = float(size_m)
    h = 2.0 * w / math.sqrt(3.0)
    ux, uy = w / 2.0, h / 4.0  # vertex lattice units
    minx, miny, maxx, maxy = boundary.bounds
    r0, r1 = math.floor(miny / (3 * uy)) - 1, math.ceil(maxy / (3 * uy)) + 1
    rs = np.arange(r0, r1 + 1)
    qs_lo = np.floor((minx / ux - rs) / 2).astype(int) - 1
    qs_hi = np.ceil((maxx / ux - rs) / 2).astype(int) + 1
    q_list, r_list = [], []
    for r, lo, hi in zip(rs.tolist(), qs_lo.tolist(), qs_hi.tolist(), strict=True):
        q = np.arange(lo, hi + 1)
        q_list.append(q)
        r_list.append(np.full(len(q), r))
    q = np.concatenate(q_list)
    r = np.concatenate(r_list)
    cx = 2 * q + r  # centre in vertex units
    cy = 3 * r
    dx = np.array([0, 1, 1, 0, -1, -1, 0])
    dy = np.array([2, 1, -1, -2, -1, 1, 2])
    vx = (cx[:, None] + dx[None, :]) * ux
    vy = (cy[:, None] + dy[None, :]) * uy
    cells = shapely.polygons(np.stack([vx, vy], axis=2))
    tag = _size_tag(size_m)
    ids = np.array([f"hx{tag}-{a}-{b}" for a, b in zip(q, r, strict=True)], dtype=object)
    return _clip(cells, ids, boundary, crs)


def h3_grid(boundary: BaseGeometry, resolution: int, *, crs: Any) -> gpd.GeoDataFrame:
    """H3 cells of ``resolution`` (0–15) that overlap ``boundary``, clipped to it.

    Ids are the H3 cell indexes. The boundary is given in ``crs`` (metres); the cells are
    found in longitude/latitude and projected back.
    """
    import geopandas as gpd
    import shapely

    try:
        import h3
    except ImportError as err:  # pragma: no cover
        raise InputError("H3 grids need the h3 package: pip install h3") from err
    if not isinstance(resolution, int | np.integer) or not 0 <= int(resolution) <= 15:
        raise InputError(f"H3 resolution must be an integer from 0 to 15; got {resolution}")
    require_metric(crs, "grid boundary")
    boundary = check_boundary(boundary)
    estimate = boundary.area / h3.average_hexagon_area(int(resolution), unit="m^2")
    if estimate > MAX_CELLS:
        raise InputError(
            f"H3 resolution {resolution} gives about {estimate:,.0f} cells over this area (more "
            f"than {MAX_CELLS:,}); choose a coarser resolution (9 ≈ 0.1 km² cells)"
        )
    ll = gpd.GeoSeries([boundary], crs=crs).to_crs(4326).iloc[0]
    shape = h3.geo_to_h3shape(ll.__geo_interface__)
    found = set(h3.h3shape_to_cells_experimental(shape, int(resolution), contain="overlap"))
    rep = ll.representative_point()
    found.add(h3.latlng_to_cell(rep.y, rep.x, int(resolution)))
    # 'overlap' can miss cells along holes and thin parts; their neighbours close the gaps,
    # and clipping below drops whatever lies outside
    ring = set()
    for cell in found:
        ring.update(h3.grid_disk(cell, 1))
    cells = sorted(found | ring)
    if len(cells) > 2 * MAX_CELLS:
        raise InputError(
            f"H3 resolution {resolution} gives {len(cells):,} cells here; choose a coarser one"
        )
    polys = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    geo = gpd.GeoSeries(polys, crs=4326).to_crs(crs).to_numpy()
    return _clip(np.asarray(geo, dtype=object), np.asarray(cells, dtype=object), boundary, crs)


def _size_tag(size_m: float) -> str:
    return f"{size_m:g}"


def _check_size(boundary: BaseGeometry, size_m: float) -> None:
    if not np.isfinite(size_m) or size_m <= 0:
        raise InputError(f"cell size must be a positive number of metres; got {size_m}")
    minx, miny, maxx, maxy = boundary.bounds
    if size_m > max(maxx - minx, maxy - miny):
        raise InputError(
            f"cell size {size_m:g} m is larger than the area ({maxx - minx:.0f} × "
            f"{maxy - miny:.0f} m); choose a smaller size"
        )
    n = boundary.area / (size_m * size_m)
    if n > MAX_CELLS:
        raise InputError(
            f"cell size {size_m:g} m gives about {n:,.0f} cells over this area (more than "
            f"{MAX_CELLS:,}); choose a larger size"
        )


# --------------------------------------------------------------------------- demand in cells
def households_of(
    demand: gpd.GeoDataFrame, household_size: float = DEFAULT_HOUSEHOLD_SIZE
) -> np.ndarray:
    """Households per demand point: the ``households`` column, else population ÷ size."""
    if "households" in demand.columns:
        hh = pd.to_numeric(demand["households"], errors="coerce").to_numpy(dtype=float)
        pop = demand["population"].to_numpy(dtype=float)
        return np.where(np.isnan(hh), pop / household_size, hh)
    return demand["population"].to_numpy(dtype=float) / household_size


def cell_figures(
    cells: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame | None,
    *,
    household_size: float = DEFAULT_HOUSEHOLD_SIZE,
) -> gpd.GeoDataFrame:
    """Add ``population`` and ``households`` per cell (each demand point counted once)."""
    cells = cells.copy()
    cells["population"] = 0.0
    cells["households"] = 0.0
    if demand is not None and len(demand):
        where = assign_cells(demand.geometry, cells)
        inside = where >= 0
        pop = np.bincount(
            where[inside], weights=demand["population"].to_numpy()[inside], minlength=len(cells)
        )
        hh = np.bincount(
            where[inside],
            weights=households_of(demand, household_size)[inside],
            minlength=len(cells),
        )
        cells["population"] = pop
        cells["households"] = hh
        cells.attrs["points_outside_cells"] = int((~inside).sum())
    if "flag" not in cells.columns:
        cells["flag"] = ""
    return cells


def regular_grid(
    kind: str,
    boundary: BaseGeometry,
    *,
    crs: Any,
    size_m: float | None = None,
    h3_res: int | None = None,
    demand: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """A square, hex or H3 grid with population and households per cell."""
    if kind == "square":
        cells = square_grid(boundary, _need(size_m, "--size-m"), crs=crs)
    elif kind == "hex":
        cells = hex_grid(boundary, _need(size_m, "--size-m"), crs=crs)
    elif kind == "h3":
        if h3_res is None:
            raise InputError("an H3 grid needs a resolution (--h3-res, 0–15; 9 ≈ 170 m cells)")
        cells = h3_grid(boundary, h3_res, crs=crs)
    else:
        raise InputError(f"unknown grid kind {kind!r}; use one of {', '.join(GRID_KINDS)}")
    return cell_figures(cells, demand)


def _need(value: float | None, flag: str) -> float:
    if value is None:
        raise InputError(f"this grid needs a cell size; give {flag} N (metres)")
    return float(value)
