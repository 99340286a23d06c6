"""Reading user tables: GeoJSON, GeoPackage, Shapefile, or CSV with lon/lat columns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._errors import CRSError, InputError, InputFileNotFoundError

if TYPE_CHECKING:
    import geopandas as gpd

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".parquet")
LON_NAMES = ("lon", "lng", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")


def read_table(
    path: str | Path, what: str, *, to_crs: Any = None, bbox: tuple[float, ...] | None = None
) -> gpd.GeoDataFrame:
    """Read a vector file or a CSV with lon/lat columns as a GeoDataFrame.

    Parameters
    ----------
    path
        ``.geojson``/``.json``/``.gpkg``/``.shp``/``.fgb``/``.parquet``, or ``.csv`` with
        ``lon``/``lat`` columns in degrees (EPSG:4326).
    what
        Name of the input for messages (``"facility file"``).
    to_crs
        Reproject to this CRS (the area's) when given.
    bbox
        ``(west, south, east, north)`` in degrees: read only features there (vector files read
        just that part; CSV rows are filtered after reading).
    """
    import geopandas as gpd

    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"{what} {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            frame = pd.read_csv(path)
        except Exception as err:
            raise InputError(f"{what} {path}: cannot be read as CSV ({err})") from err
        lower = {c.lower(): c for c in frame.columns}
        lon = next((lower[n] for n in LON_NAMES if n in lower), None)
        lat = next((lower[n] for n in LAT_NAMES if n in lower), None)
        if lon is None or lat is None:
            raise InputError(
                f"{what} {path}: a CSV needs 'lon' and 'lat' columns in degrees (EPSG:4326); "
                f"found {', '.join(map(str, frame.columns))}"
            )
        x = pd.to_numeric(frame[lon], errors="coerce")
        y = pd.to_numeric(frame[lat], errors="coerce")
        bad = x.isna() | y.isna() | (x.abs() > 180) | (y.abs() > 90)
        if bad.any():
            raise InputError(
                f"{what} {path}: {int(bad.sum())} rows have no valid lon/lat in degrees (first at "
                f"line {int(np.flatnonzero(bad.to_numpy())[0]) + 2}); fix or remove them"
            )
        gdf = gpd.GeoDataFrame(
            frame.drop(columns=[lon, lat]), geometry=gpd.points_from_xy(x, y), crs=4326
        )
        if bbox is not None:
            gdf = gdf.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    elif suffix in VECTOR_SUFFIXES:
        try:
            if suffix == ".parquet":
                gdf = gpd.read_parquet(path, bbox=bbox)
            elif bbox is not None:
                import pyogrio

                info = pyogrio.read_info(path)
                file_crs = info.get("crs")
                box = bbox
                if file_crs and not _is_wgs84(file_crs):
                    import shapely

                    box = tuple(
                        gpd.GeoSeries([shapely.box(*bbox)], crs=4326).to_crs(file_crs).total_bounds
                    )
                gdf = gpd.read_file(path, bbox=box)
            else:
                gdf = gpd.read_file(path)
        except Exception as err:
            raise InputError(
                f"{what} {path}: cannot be read ({type(err).__name__}: {err}); check the file"
            ) from err
        if not isinstance(gdf, gpd.GeoDataFrame) or "geometry" not in gdf:
            raise InputError(f"{what} {path}: has no geometry column")
        if gdf.crs is None:
            raise CRSError(
                f"{what} {path}: has no CRS; save it with one (GeoJSON is EPSG:4326 by default)"
            )
    else:
        raise InputError(
            f"{what} {path}: unknown file type {path.suffix!r}; use .geojson, .gpkg, .shp or "
            ".csv with lon,lat columns"
        )
    missing = gdf.geometry.isna() | gdf.geometry.is_empty
    gdf.attrs["rows_without_geometry"] = int(missing.sum())
    if missing.any():
        raise InputError(
            f"{what} {path}: {int(missing.sum())} rows have no geometry (first at row "
            f"{int(np.flatnonzero(missing.to_numpy())[0])}); fix or remove them"
        )
    if to_crs is not None:
        gdf = gdf.to_crs(to_crs)
    return gdf


def _is_wgs84(crs: Any) -> bool:
    from pyproj import CRS

    return bool(CRS.from_user_input(crs).equals(CRS.from_epsg(4326), ignore_axis_order=True))
