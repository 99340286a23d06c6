"""Coordinates as Chinese map services give them: WGS84, GCJ-02 and BD-09.

Amap (高德) and Tencent maps publish GCJ-02 ("火星坐标", the 国测局 system: WGS84 shifted by a
few hundred metres inside China); Baidu publishes BD-09, a further shift of GCJ-02. Everything in
this package works in WGS84, so a user's file is converted once, right after reading
(:func:`to_wgs84`, :func:`geometries_to_wgs84`).

The formulas are the published ones, the same in every open-source implementation (for example
wandergis/coordtransform, googollee/eviltransform): an offset ``transformlat``/``transformlng``
on the Krasovsky 1940 ellipsoid (``a = 6378245.0``, ``ee = 0.00669342162296594323``), and for
BD-09 a rotation and scaling with ``x_pi = π · 3000 / 180``. They are written here with numpy so
that whole arrays convert at once (the PyPI packages for this convert one point per call). The
inverses have no closed form: GCJ-02 → WGS84 and BD-09 → GCJ-02 iterate until the forward
transform of the answer is within :data:`INVERSE_TOL_DEG` (≈ 1 cm) of the input.

Outside China every transform is the identity (the services leave coordinates there in WGS84).
"Inside" is the bounding box :data:`CHINA_BOX` of China's extreme points used by
wandergis/coordtransform (73.66–135.05° E, 3.86–53.55° N), tested on each function's input.
A box, not the border: near the border it also shifts points of neighbouring countries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._errors import InputError

if TYPE_CHECKING:
    import geopandas as gpd

COORDS = ("wgs84", "gcj02", "bd09")
"""Coordinate systems a user's file may be in: WGS84 (GPS, OSM), GCJ-02 (Amap, Tencent), BD-09
(Baidu)."""

CHINA_BOX = (73.66, 3.86, 135.05, 53.55)
"""``(west, south, east, north)`` in degrees: where GCJ-02 and BD-09 differ from WGS84."""

INVERSE_TOL_DEG = 1e-7
"""The inverse transforms stop when the forward transform of the answer is this close to the
input, in degrees of lon and of lat (1e-7° ≈ 1 cm)."""

MAX_ITERATIONS = 30
"""Safety limit for the inverse transforms; two to four iterations reach the tolerance."""

_A = 6378245.0  # Krasovsky 1940 semi-major axis, metres
_EE = 0.00669342162296594323  # Krasovsky 1940 first eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0

Floats = NDArray[np.float64]
_Transform = Callable[[Floats, Floats], tuple[Floats, Floats]]
_Convert = Callable[[ArrayLike, ArrayLike], tuple[Floats, Floats]]


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Whether points fall in :data:`CHINA_BOX`, where the Chinese systems shift coordinates.

    Parameters
    ----------
    lon, lat
        Degrees; arrays of one shape (or broadcastable), or scalars.

    Returns
    -------
    numpy.ndarray
        Booleans; ``False`` for NaN coordinates.
    """
    x, y = _arrays(lon, lat)
    west, south, east, north = CHINA_BOX
    return (x > west) & (x < east) & (y > south) & (y < north)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Shift WGS84 degrees to GCJ-02 (Amap, Tencent); the identity outside :data:`CHINA_BOX`.

    Parameters
    ----------
    lon, lat
        WGS84 longitude and latitude in degrees, arrays or scalars.

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 ``(lon, lat)`` in degrees, of the broadcast shape of the inputs.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02([116.404], [39.915])
    >>> print(f"{lon[0]:.6f} {lat[0]:.6f}")
    116.410244 39.916404
    """
    x, y = _arrays(lon, lat)
    inside = in_china(x, y)
    gx, gy = _gcj02_forward(x, y)
    return np.where(inside, gx, x), np.where(inside, gy, y)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Shift GCJ-02 degrees back to WGS84, by iteration (the shift has no closed-form inverse).

    Fixed-point iteration ``w ← w − (gcj(w) − g)`` from ``w = g``: the shift changes by less
    than 1 % of a step per step, so each iteration gains two or more digits, and the loop stops
    when ``gcj(w)`` is within :data:`INVERSE_TOL_DEG` of ``g`` (≈ 1 cm; the round trip is
    tested to stay below 0.5 m all over China). The identity outside :data:`CHINA_BOX`.

    Parameters
    ----------
    lon, lat
        GCJ-02 longitude and latitude in degrees, arrays or scalars.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 ``(lon, lat)`` in degrees.
    """
    x, y = _arrays(lon, lat)
    inside = in_china(x, y)
    wx, wy = _invert(_gcj02_forward, x, y, x, y)
    return np.where(inside, wx, x), np.where(inside, wy, y)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Shift GCJ-02 degrees to BD-09 (Baidu); the identity outside :data:`CHINA_BOX`.

    Parameters
    ----------
    lon, lat
        GCJ-02 longitude and latitude in degrees, arrays or scalars.

    Returns
    -------
    tuple of numpy.ndarray
        BD-09 ``(lon, lat)`` in degrees.
    """
    x, y = _arrays(lon, lat)
    inside = in_china(x, y)
    bx, by = _bd09_forward(x, y)
    return np.where(inside, bx, x), np.where(inside, by, y)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """Shift BD-09 (Baidu) degrees back to GCJ-02; the identity outside :data:`CHINA_BOX`.

    Starts from the published closed-form approximation (up to about a metre off) and refines
    it by fixed-point iteration to :data:`INVERSE_TOL_DEG`, so that it inverts
    :func:`gcj02_to_bd09` exactly.

    Parameters
    ----------
    lon, lat
        BD-09 longitude and latitude in degrees, arrays or scalars.

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 ``(lon, lat)`` in degrees.
    """
    x, y = _arrays(lon, lat)
    inside = in_china(x, y)
    u, v = x - 0.0065, y - 0.006
    z = np.hypot(u, v) - 0.00002 * np.sin(v * _X_PI)
    theta = np.arctan2(v, u) - 0.000003 * np.cos(u * _X_PI)
    gx, gy = _invert(_bd09_forward, x, y, z * np.cos(theta), z * np.sin(theta))
    return np.where(inside, gx, x), np.where(inside, gy, y)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """WGS84 degrees to BD-09 (Baidu), through GCJ-02.

    Parameters
    ----------
    lon, lat
        WGS84 longitude and latitude in degrees, arrays or scalars.

    Returns
    -------
    tuple of numpy.ndarray
        BD-09 ``(lon, lat)`` in degrees.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    """BD-09 (Baidu) degrees to WGS84, through GCJ-02 (both steps iterated to the tolerance).

    Parameters
    ----------
    lon, lat
        BD-09 longitude and latitude in degrees, arrays or scalars.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 ``(lon, lat)`` in degrees.
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def check_coords(coords: str) -> str:
    """The canonical name of a coordinate system, or :class:`InputError` naming the allowed ones.

    Case, ``-``, ``_`` and spaces are ignored: ``"GCJ-02"`` is ``"gcj02"``.

    Parameters
    ----------
    coords
        One of :data:`COORDS`.

    Returns
    -------
    str
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.
    """
    name = str(coords).lower().replace("-", "").replace("_", "").replace(" ", "")
    if name not in COORDS:
        raise InputError(
            f"coords {coords!r}: unknown coordinate system; use one of {', '.join(COORDS)} "
            "(gcj02 for Amap/Tencent, bd09 for Baidu)"
        )
    return name


def to_wgs84(lon: ArrayLike, lat: ArrayLike, coords: str) -> tuple[Floats, Floats]:
    """Convert degrees in ``coords`` (one of :data:`COORDS`) to WGS84.

    Parameters
    ----------
    lon, lat
        Longitude and latitude in degrees, arrays or scalars.
    coords
        The system they are in: ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 ``(lon, lat)`` in degrees.
    """
    return _TO_WGS84[check_coords(coords)](lon, lat)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, coords: str) -> tuple[Floats, Floats]:
    """Convert WGS84 degrees to ``coords`` (one of :data:`COORDS`).

    Parameters
    ----------
    lon, lat
        WGS84 longitude and latitude in degrees, arrays or scalars.
    coords
        The system wanted: ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(lon, lat)`` in degrees of ``coords``.
    """
    return _FROM_WGS84[check_coords(coords)](lon, lat)


def geometries_to_wgs84(
    gdf: gpd.GeoDataFrame, coords: str, *, what: str = "data"
) -> gpd.GeoDataFrame:
    """A copy of ``gdf`` with every coordinate of every geometry converted from ``coords``.

    Points, lines and polygons (multi-parts and collections too) keep their shape and vertex
    count; z values are kept as they are.

    Parameters
    ----------
    gdf
        Geometries in degrees, CRS EPSG:4326 (as Amap/Baidu publish them).
    coords
        The system the degrees are in: ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.
    what
        Name of the input for messages (``"facility file f.geojson"``).

    Returns
    -------
    geopandas.GeoDataFrame
        Same rows, columns and CRS (EPSG:4326), geometries in WGS84.
    """
    import shapely

    name = check_coords(coords)
    if gdf.crs is None or not _is_epsg4326(gdf.crs):
        crs = "no CRS" if gdf.crs is None else f"CRS {gdf.crs.to_string()}"
        raise InputError(
            f"{what}: is in {crs}, but {name} coordinates (Amap, Tencent, Baidu) are lon/lat "
            "degrees labelled EPSG:4326; save the file in EPSG:4326 as the service gave it, or "
            "use coords 'wgs84' for a file in a real CRS"
        )
    out = gdf.copy()
    if name == "wgs84":
        return out
    convert = _TO_WGS84[name]

    def transform(xyz: Floats) -> Floats:
        res = xyz.copy()
        res[:, 0], res[:, 1] = convert(xyz[:, 0], xyz[:, 1])
        return res

    geoms = shapely.transform(gdf.geometry.to_numpy(), transform, include_z=True)
    out[gdf.geometry.name] = type(gdf.geometry)(geoms, index=gdf.index, crs=gdf.crs)
    return out


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return x.copy(), y.copy()


def _gcj02_forward(x: Floats, y: Floats) -> tuple[Floats, Floats]:
    """WGS84 → GCJ-02 by the published formulas, everywhere (no China test)."""
    u, v = x - 105.0, y - 35.0
    common = (20.0 * np.sin(6.0 * u * np.pi) + 20.0 * np.sin(2.0 * u * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * u + 3.0 * v + 0.2 * v * v + 0.1 * u * v + 0.2 * np.sqrt(np.abs(u))
    dlat += common
    dlat += (20.0 * np.sin(v * np.pi) + 40.0 * np.sin(v / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(v / 12.0 * np.pi) + 320.0 * np.sin(v * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + u + 2.0 * v + 0.1 * u * u + 0.1 * u * v + 0.1 * np.sqrt(np.abs(u))
    dlon += common
    dlon += (20.0 * np.sin(u * np.pi) + 40.0 * np.sin(u / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(u / 12.0 * np.pi) + 300.0 * np.sin(u / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return x + dlon, y + dlat


def _bd09_forward(x: Floats, y: Floats) -> tuple[Floats, Floats]:
    """GCJ-02 → BD-09 by the published formula, everywhere (no China test)."""
    z = np.hypot(x, y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _invert(
    forward: _Transform, x: Floats, y: Floats, x0: Floats, y0: Floats
) -> tuple[Floats, Floats]:
    """Solve ``forward(u, v) == (x, y)`` from ``(x0, y0)`` by fixed-point iteration.

    The loop runs over iterations, never over points; points already within tolerance move by
    less than the tolerance in later rounds. NaN coordinates stay NaN and do not hold it up.
    """
    u, v = x0.copy(), y0.copy()
    for _ in range(MAX_ITERATIONS):
        fx, fy = forward(u, v)
        ex, ey = fx - x, fy - y
        u, v = u - ex, v - ey
        if not np.any(np.fmax(np.abs(ex), np.abs(ey)) > INVERSE_TOL_DEG):
            break
    return u, v


def _is_epsg4326(crs: object) -> bool:
    from pyproj import CRS

    return bool(CRS.from_user_input(crs).equals(CRS.from_epsg(4326), ignore_axis_order=True))


_TO_WGS84: dict[str, _Convert] = {
    "wgs84": _arrays,
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
_FROM_WGS84: dict[str, _Convert] = {
    "wgs84": _arrays,
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def check_lonlat_box(west: float, south: float, east: float, north: float) -> None:
    """Refuse a box whose values are not longitudes and latitudes in degrees, naming lat,lon
    order (with the box the other way round) and metres as such."""
    lon_ok = all(math.isfinite(v) and -180 <= v <= 180 for v in (west, east))
    lat_ok = all(math.isfinite(v) and -90 <= v <= 90 for v in (south, north))
    if lon_ok and lat_ok:
        return
    start = "boundary (--boundary W,S,E,N, or [area] boundary)"
    got = f"{west:g},{south:g},{east:g},{north:g}"
    swapped_ok = all(-90 <= v <= 90 for v in (west, east)) and all(
        -180 <= v <= 180 for v in (south, north)
    )
    if not swapped_ok:
        raise InputError(
            f"{start}: {got} is not in degrees (longitudes -180…180, latitudes -90…90); give "
            "west, south, east, north in degrees"
        )
    raise InputError(
        f"{start}: latitude {max(abs(south), abs(north)):g} is impossible — {got} looks like "
        f"lat,lon order; give west, south, east, north: {south:g},{west:g},{north:g},{east:g}"
    )
