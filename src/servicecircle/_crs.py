"""CRS checks: metric steps refuse degrees."""

from __future__ import annotations

from typing import Any

from pyproj import CRS

from ._errors import CRSError


def require_metric(crs: Any, what: str) -> CRS:
    """Return ``crs`` as a :class:`pyproj.CRS` in metres, or raise :class:`CRSError`.

    Parameters
    ----------
    crs
        Anything :class:`pyproj.CRS` accepts (``None`` is an error).
    what
        Name of the input, used in the message.
    """
    if crs is None:
        raise CRSError(
            f"{what} has no CRS; set one (e.g. gdf.set_crs('EPSG:4326')) so it can be "
            "reprojected to metres"
        )
    crs = CRS.from_user_input(crs)
    if crs.is_geographic:
        raise CRSError(
            f"{what} is in a geographic CRS ({crs.to_string()}, degrees) but this step needs "
            "metres; reproject first, e.g. gdf.to_crs(gdf.estimate_utm_crs())"
        )
    unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
    if unit not in ("metre", "meter"):
        raise CRSError(f"{what} uses {unit} units; reproject it to a CRS in metres (e.g. UTM)")
    return crs


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 UTM zone of a point in degrees (EPSG:326xx north of the equator, 327xx
    south) — what ``GeoSeries.estimate_utm_crs`` picks for the centre of its bounds, by the
    zone formula rather than a query of the CRS database (about 0.1 s)."""
    zone = min(max(int((lon + 180.0) // 6.0) + 1, 1), 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def utm_crs_of(frame: Any) -> CRS:
    """:func:`utm_crs` of the centre of a GeoSeries/GeoDataFrame's bounds (any CRS)."""
    west, south, east, north = frame.to_crs(4326).total_bounds
    return utm_crs((west + east) / 2.0, (south + north) / 2.0)
