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
