"""Reading user tables: GeoJSON, GeoPackage, Shapefile, or CSV/Excel with lon/lat columns.

Files as Chinese planners have them: CSV in UTF-8 (with or without BOM) or GB18030/GBK (what
Excel on Chinese Windows writes), ``.xlsx`` workbooks, Chinese column names
(:data:`COLUMN_ALIASES`), and coordinates from Amap/Tencent (GCJ-02) or Baidu (BD-09), which are
converted to WGS84 once, right after reading (:mod:`servicecircle.coords`).
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import math
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._errors import CRSError, InputError, InputFileNotFoundError, require
from .coords import check_coords, geometries_to_wgs84, to_wgs84

if TYPE_CHECKING:
    import geopandas as gpd

logger = logging.getLogger(__name__)

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".parquet")
ONE_BASED_FID_SUFFIXES = (".gpkg", ".sqlite")
"""Formats whose feature ids count from 1 (GDAL's GeoJSON, Shapefile, FlatGeobuf count from 0)."""
TABLE_SUFFIXES = (".csv", ".xlsx")
LON_NAMES = ("lon", "lng", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")
CSV_ENCODINGS = ("utf-8", "gb18030")
"""Tried in this order for a CSV without BOM (a BOM means ``utf-8-sig``). GB18030 is a superset
of GBK and GB2312, what Excel on Chinese Windows writes for "CSV (逗号分隔)"."""

COLUMN_ALIASES: dict[str, str] = {
    "名称": "name",
    "设施名称": "name",
    "小区名称": "name",
    "小区名": "name",
    "类型": "kind",
    "经度": "lon",
    "纬度": "lat",
    "人口": "population",
    "常住人口": "population",
    "户数": "households",
    "编号": "id",
    "ID": "id",
}
"""Column names renamed right after reading, in every kind of file (CSV, Excel, vector
attributes). Names are compared after stripping surrounding whitespace and a stray BOM. A file
that has a column under both names (``名称`` and ``name``; ``经度`` and ``lon``/``lng``/
``longitude``) is refused rather than one of them silently winning."""

BBOX_PAD_DEG = 0.05
"""Margin added to a bbox when reading GCJ-02/BD-09 files: the shift (≤ ~1.5 km) may carry a
feature into or out of the box; the exact filter runs after conversion."""

# English names that stand for the same thing as an alias target, for the conflict check.
_SAME_AS = {"lon": ("lon", "lng", "longitude"), "lat": ("lat", "latitude")}


@dataclass(frozen=True)
class FileOptions:
    """How to read every file of a run: the coordinates it is in and the Excel sheet."""

    coords: str = "wgs84"
    sheet: str | None = None

    def read(self, path: str | Path, what: str, **options: Any) -> gpd.GeoDataFrame:
        """:func:`read_table` with these options."""
        return read_table(path, what, coords=self.coords, sheet=self.sheet, **options)

    def describe(self, gdf: gpd.GeoDataFrame) -> dict[str, Any]:
        """What the summary says about a file read this way."""
        return {
            k: gdf.attrs.get(k)
            for k in ("coords", "encoding", "sheet")
            if gdf.attrs.get(k) is not None
        }


DEFAULT_FILES = FileOptions()


def counted(n: int, one: str, many: str | None = None) -> str:
    """``1 row has``, ``2 rows have``: ``n`` and the words for one or many (``one + "s"``).

    >>> counted(1, "row has", "rows have"), counted(3, "facility", "facilities")
    ('1 row has', '3 facilities')
    """
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def row_place(frame: pd.DataFrame, position: int, *, table: bool | None = None) -> str:
    """Where row ``position`` of a frame read by :func:`read_table` lies in its file, as a
    person finds it: ``line N`` of a CSV or the row number Excel shows (the header is 1),
    ``feature N`` of a vector file (from 1); ``row N`` (from 1) for any other frame. ``table``:
    whether it came from a CSV or Excel table (default: told by its ``attrs``)."""
    label = frame.index[position]
    if not isinstance(label, int | np.integer):
        return f"row {position + 1}"
    if table is None:
        table = frame.attrs.get("encoding") is not None or frame.attrs.get("sheet") is not None
    return f"line {int(label) + 2}" if table else f"feature {int(label) + 1}"


def cell_text(value: object) -> str:
    """A cell's value for a message: ``empty``, a number as written, text quoted."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "empty"
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        return f"{value:g}"
    return repr(str(value))


def id_texts(values: pd.Series) -> pd.Series:
    """Ids as text: numbers without a trailing ``.0`` (a numeric id column with a gap is read
    as floats), text stripped; missing ones as ``<NA>``."""
    series = pd.Series(values)
    if pd.api.types.is_float_dtype(series.dtype):
        whole = series.notna() & np.isfinite(series) & (series == series.round())
        as_int = series.where(whole).astype("Int64").astype("string")
        text = series.astype("string").where(~whole, as_int)
    else:
        text = series.astype("string").str.strip()
    return text.where(text.notna() & (text != "") & (text.str.lower() != "nan"))


_READ: ContextVar[list[Path] | None] = ContextVar("servicecircle_files_read", default=None)


def note_read(path: str | Path) -> None:
    """Note that the current run read ``path`` (see :func:`reads_noted`)."""
    read = _READ.get()
    if read is not None:
        read.append(Path(path).resolve())


@contextlib.contextmanager
def reads_noted() -> Iterator[list[Path]]:
    """Within the block, every file :func:`read_table` reads (and any :func:`note_read` names)
    is added to the list yielded: a run's writer keeps it from overwriting its inputs."""
    read: list[Path] = []
    token = _READ.set(read)
    try:
        yield read
    finally:
        _READ.reset(token)


def read_table(
    path: str | Path,
    what: str,
    *,
    to_crs: Any = None,
    bbox: tuple[float, ...] | None = None,
    coords: str = "wgs84",
    sheet: str | None = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a vector file, or a CSV/Excel table with lon/lat columns, as a GeoDataFrame.

    Parameters
    ----------
    path
        ``.geojson``/``.json``/``.gpkg``/``.shp``/``.fgb``/``.parquet``, or ``.csv``/``.xlsx``
        with ``lon``/``lat`` (or ``经度``/``纬度``) columns in degrees. A CSV may be UTF-8 (with
        or without BOM) or GB18030/GBK.
    what
        Name of the input for messages (``"facility file"``).
    to_crs
        Reproject to this CRS (the area's) when given.
    bbox
        ``(west, south, east, north)`` in WGS84 degrees: read only features there (vector files
        read just that part; table rows are filtered after reading).
    coords
        The system the file's degrees are in: ``"wgs84"`` (GPS, OSM), ``"gcj02"`` (Amap,
        Tencent) or ``"bd09"`` (Baidu); converted to WGS84 right after reading. A vector file
        must then be in EPSG:4326.
    sheet
        For ``.xlsx``: the sheet to read (default: the first).
    layer
        For a file of several layers (a GeoPackage): the layer to read (default: the first).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns renamed by :data:`COLUMN_ALIASES`; ``attrs`` say ``coords`` (the input system),
        ``encoding`` (of a CSV, else ``None``), ``sheet`` (of an ``.xlsx``, else ``None``) and
        ``rows_without_geometry``.
    """
    path = Path(path)
    system = check_coords(coords)
    if not path.exists():
        raise InputFileNotFoundError(f"{what} {path}: no such file")
    note_read(path)
    suffix = path.suffix.lower()
    if sheet is not None and suffix != ".xlsx":
        raise InputError(f"{what} {path}: sheet {sheet!r} given, but only .xlsx files have sheets")
    encoding = sheet_name = None
    if suffix in TABLE_SUFFIXES:
        if suffix == ".csv":
            frame, encoding = _read_csv(path, what)
        else:
            frame, sheet_name = _read_xlsx(path, what, sheet)
        frame = _below_title(_check_not_empty(frame, path, what, sheet_name), path, what)
        gdf = _points(_rename_columns(frame, f"{what} {path}"), path, what, system, sheet_name)
        if bbox is not None:
            gdf = gdf.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    elif suffix == ".xls":
        raise InputError(
            f"{what} {path}: old Excel .xls files cannot be read; save it as .xlsx "
            "(Excel 工作簿) or as CSV UTF-8"
        )
    elif suffix in VECTOR_SUFFIXES:
        gdf = _read_vector(path, what, bbox, system, layer)
    else:
        raise InputError(
            f"{what} {path}: unknown file type {path.suffix!r}; use .geojson, .gpkg, .shp, "
            ".xlsx or .csv with lon,lat columns"
        )
    missing = gdf.geometry.isna() | gdf.geometry.is_empty
    if missing.any():
        raise InputError(
            f"{what} {path}: {int(missing.sum())} rows have no geometry (first at "
            f"{row_place(gdf, int(np.flatnonzero(missing.to_numpy())[0]))}); fix or remove them"
        )
    if to_crs is not None:
        gdf = gdf.to_crs(to_crs)
    gdf.attrs.update(rows_without_geometry=0, coords=system, encoding=encoding, sheet=sheet_name)
    if encoding == "gb18030":
        logger.info("%s %s: not UTF-8, read as GB18030 (GBK)", what, path)
    if system != "wgs84":
        logger.info("%s %s: %d features converted from %s to WGS84", what, path, len(gdf), system)
    return gdf


def _read_csv(path: Path, what: str) -> tuple[pd.DataFrame, str]:
    """The table and the encoding it was read with: UTF-8 (BOM or not), else GB18030."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(
            f"{what} {path}: is UTF-16 text (Excel's 'Unicode text'); save it as CSV UTF-8 "
            "(Excel: 另存为 → CSV UTF-8 (逗号分隔))"
        )
    encodings = ("utf-8-sig",) if head.startswith(codecs.BOM_UTF8) else CSV_ENCODINGS
    for encoding in encodings:
        try:
            # (index_col=False: rows ending with a comma do not turn the first column into the
            # index)
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                frame = pd.read_csv(path, encoding=encoding, index_col=False)
            sep = next((c for c in ";\t|" if len(frame.columns) == 1 and c in frame.columns[0]), "")
            ragged = any(issubclass(w.category, pd.errors.ParserWarning) for w in seen)
            if not sep and ragged and (skip := _title_lines(path, encoding, what)):
                frame = pd.read_csv(path, encoding=encoding, index_col=False, skiprows=skip)
                frame.index += skip  # (the file's own rows, for messages)
            elif not sep and ragged:
                raise InputError(
                    f"{what} {path}: some rows have more values than the header line has "
                    "columns; fix them (a value with a comma needs quotes) or add the columns"
                )
            if sep:  # (a CSV saved with Excel's list separator of a European locale, or TSV;
                # with ';' numbers may have decimal commas, and those with points stay text)
                decimal = "," if sep == ";" else "."
                frame = pd.read_csv(
                    path, encoding=encoding, sep=sep, decimal=decimal, index_col=False
                )
            return frame, encoding
        except UnicodeDecodeError:
            continue
        except InputError:
            raise
        except pd.errors.EmptyDataError:
            raise InputError(
                f"{what} {path}: is empty (no header, no rows); give a table with a header "
                "line (lon, lat, …) and one row per feature"
            ) from None
        except Exception as err:
            raise InputError(f"{what} {path}: cannot be read as CSV ({err})") from err
    raise InputError(
        f"{what} {path}: is neither UTF-8 nor GB18030/GBK text; save it as CSV UTF-8 "
        "(Excel: 另存为 → CSV UTF-8 (逗号分隔))"
    )


def _title_lines(path: Path, encoding: str, what: str) -> int:
    """How many title lines lie above a CSV's header (one of the first
    :data:`TITLE_LINES_MAX` lines naming lon and lat); 0 when none is found."""
    with path.open(encoding=encoding, errors="replace") as fh:
        head = [fh.readline() for _ in range(TITLE_LINES_MAX)]
    for i, line in enumerate(head[1:], start=1):
        if _is_coordinate_header([v.strip().strip('"') for v in line.split(",")]):
            _title_skipped(path, what, i)
            return i
    return 0


def _title_skipped(path: Path, what: str, lines: int) -> None:
    """Say that the first ``lines`` lines of a table (a title) were skipped."""
    above = "line" if lines == 1 else f"{lines} lines"
    logger.warning(
        "%s %s: the header is on line %d; the %s above it (a title) skipped",
        what, path, lines + 1, above,
    )  # fmt: skip


def _check_not_empty(frame: pd.DataFrame, path: Path, what: str, sheet: str | None) -> pd.DataFrame:
    if len(frame.columns) == 0:
        where = f"sheet {sheet!r}" if sheet is not None else "the file"
        raise InputError(
            f"{what} {path}: {where} is empty (no header, no rows); give a table with a header "
            "line (lon, lat, …) and one row per feature"
        )
    return frame


def _is_coordinate_header(values: list[str]) -> bool:
    names = {COLUMN_ALIASES.get(v, v).lower() for v in values}
    return bool(names & set(LON_NAMES)) and bool(names & set(LAT_NAMES))


TITLE_LINES_MAX = 10
"""How far down a table's header is looked for when title lines (a sheet's 标题) lie above it."""


def _below_title(frame: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    """The table under its title: when the header has no lon/lat but one of the first
    :data:`TITLE_LINES_MAX` rows has (a title such as 新街口街道驿站清单 above the header, as
    sheets from offices often have), that row is the header and the rows above it are dropped
    (the index keeps the file's row numbers)."""
    if _is_coordinate_header([str(c).replace("\ufeff", "").strip() for c in frame.columns]):
        return frame
    for i in range(min(TITLE_LINES_MAX, len(frame))):
        values = ["" if pd.isna(v) else str(v).strip() for v in frame.iloc[i]]
        if _is_coordinate_header(values):
            body = frame.iloc[i + 1 :].copy()
            keep = [j for j, v in enumerate(values) if v or body.iloc[:, j].notna().any()]
            body = body.iloc[:, keep]
            body.columns = [values[j] or f"column {j + 1}" for j in keep]
            _title_skipped(path, what, i + 1)
            for col in body.columns:  # numbers read as text under a title line, as numbers
                with contextlib.suppress(ValueError, TypeError):
                    body[col] = pd.to_numeric(body[col])
            return body.infer_objects()
    return frame


def _read_xlsx(path: Path, what: str, sheet: str | None) -> tuple[pd.DataFrame, str]:
    """The table of one sheet (default the first) and that sheet's name."""
    require("openpyxl")
    try:
        with warnings.catch_warnings():
            # style and extension notes from openpyxl say nothing about the data
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            with pd.ExcelFile(path, engine="openpyxl") as book:
                names = [str(n) for n in book.sheet_names]
                if sheet is not None and sheet not in names:
                    raise InputError(
                        f"{what} {path}: has no sheet {sheet!r}; its sheets are "
                        f"{', '.join(map(repr, names))}"
                    )
                name = names[0] if sheet is None else sheet
                return pd.read_excel(book, sheet_name=name), name
    except InputError:
        raise
    except Exception as err:
        raise InputError(
            f"{what} {path}: cannot be read as an Excel .xlsx workbook ({type(err).__name__}: "
            f"{err}); save it again from Excel, or as CSV UTF-8"
        ) from err


def _rename_columns(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Columns stripped of whitespace and BOM, Chinese names mapped by :data:`COLUMN_ALIASES`.

    Two columns that end up meaning the same thing are an error naming both.
    """
    import geopandas as gpd

    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    new: dict[Any, str] = {}
    for col in frame.columns:
        if col == geometry:
            continue
        clean = str(col).replace("\ufeff", "").strip()
        new[col] = COLUMN_ALIASES.get(clean, clean)
    seen: dict[str, Any] = {}
    for col, name in new.items():
        if name in seen:
            raise InputError(
                f"{where}: has both {str(seen[name])!r} and {str(col)!r} for {name!r}; keep "
                "one of them (delete or rename the other)"
            )
        seen[name] = col
    for col, name in new.items():
        if name == str(col).replace("\ufeff", "").strip():
            continue  # not renamed by an alias
        for other, other_name in new.items():
            if other != col and other_name.lower() in _SAME_AS.get(name, (name,)):
                raise InputError(
                    f"{where}: has both {str(col)!r} and {str(other)!r} for {name!r}; keep one "
                    "of them (delete or rename the other)"
                )
    return frame.rename(columns=new)


SWAP_FAR_DEG, SWAP_NEAR_DEG = 1.0, 0.5
"""A row more than SWAP_FAR_DEG from the others' median that would lie within SWAP_NEAR_DEG
of it with lon and lat swapped is taken for a swapped row."""


def _refuse_swapped_rows(
    x: np.ndarray, y: np.ndarray, frame: pd.DataFrame, path: Path, what: str
) -> None:
    """One row with lon and lat the wrong way round (both still valid degrees) is an error,
    not a point a continent away that only shows up as unreachable."""
    if len(x) < 3:
        return
    mx, my = np.median(x), np.median(y)
    far = np.maximum(abs(x - mx), abs(y - my)) > SWAP_FAR_DEG
    swapped = far & (np.maximum(abs(y - mx), abs(x - my)) < SWAP_NEAR_DEG)
    if swapped.any():
        first = int(np.flatnonzero(swapped)[0])
        rows = counted(int(swapped.sum()), "row has", "rows have")
        where = row_place(frame, first, table=True)
        raise InputError(
            f"{what} {path}: {rows} lon and lat that look swapped (first at {where}: "
            f"lon {x[first]:g}, lat {y[first]:g}; the other way round it lies beside the other "
            "rows); swap them"
        )


def _degrees(col: pd.Series) -> pd.Series:
    """A column of degrees as numbers; text with a decimal comma (24,94) read as 24.94."""
    if not pd.api.types.is_numeric_dtype(col):
        col = col.astype("string").str.strip().str.replace(",", ".", regex=False)
    return pd.to_numeric(col, errors="coerce")


def _points(
    frame: pd.DataFrame, path: Path, what: str, system: str, sheet: str | None = None
) -> gpd.GeoDataFrame:
    """Points from the lon/lat columns of a table, converted from ``system`` to WGS84."""
    import geopandas as gpd

    lower = {str(c).lower(): c for c in frame.columns}
    lon = next((lower[n] for n in LON_NAMES if n in lower), None)
    lat = next((lower[n] for n in LAT_NAMES if n in lower), None)
    table = "a CSV" if path.suffix.lower() == ".csv" else "an Excel sheet"
    if lon is None or lat is None:
        raise InputError(
            f"{what} {path}: {table} needs 'lon' and 'lat' columns in degrees (EPSG:4326; or "
            f"经度/纬度); found {', '.join(map(str, frame.columns))}{_other_sheets(path, sheet)}"
        )
    x, y = (_degrees(frame[c]) for c in (lon, lat))
    bad = x.isna() | y.isna() | (x.abs() > 180) | (y.abs() > 90)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        fx, fy = x.iloc[first], y.iloc[first]
        why = "no valid lon/lat in degrees"
        if pd.notna(fx) and pd.notna(fy) and abs(fx) <= 90 < abs(fy) <= 180:
            why = f"lon and lat swapped (lon {fy:g}, lat {fx:g} would be a place)"
        elif pd.notna(fx) and pd.notna(fy) and max(abs(fx), abs(fy)) > 1000:
            why = "metres, not degrees (a projected CRS: give lon/lat, or a vector file with it)"
        rows = counted(int(bad.sum()), "row has", "rows have")
        raise InputError(
            f"{what} {path}: {rows} {why} (first at {row_place(frame, first, table=True)}); "
            "fix or remove them"
        )
    _refuse_swapped_rows(x.to_numpy(dtype=float), y.to_numpy(dtype=float), frame, path, what)
    wx, wy = to_wgs84(x.to_numpy(dtype=float), y.to_numpy(dtype=float), system)
    return gpd.GeoDataFrame(
        frame.drop(columns=[lon, lat]), geometry=gpd.points_from_xy(wx, wy), crs=4326
    )


def _other_sheets(path: Path, sheet: str | None) -> str:
    """For an Excel file: the sheet read and the others, to point at ``--sheet``."""
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return ""
    try:
        import openpyxl

        names = openpyxl.load_workbook(path, read_only=True).sheetnames
    except Exception:  # the file was read once already; a second look is only for the hint
        return ""
    read = sheet or names[0]
    others = [n for n in names if n != read]
    if not others:
        return ""
    return f" in sheet {read!r}; its other sheets: {', '.join(others)} (choose with --sheet)"


def _read_vector(
    path: Path, what: str, bbox: tuple[float, ...] | None, system: str, layer: str | None
) -> gpd.GeoDataFrame:
    """A vector file's features (those in ``bbox`` when given), in WGS84 if ``system`` says."""
    import geopandas as gpd

    box = bbox
    layer = layer or _first_layer(path)
    if bbox is not None and system != "wgs84":
        pad = BBOX_PAD_DEG
        box = (bbox[0] - pad, bbox[1] - pad, bbox[2] + pad, bbox[3] + pad)
    try:
        if path.suffix.lower() == ".parquet":  # whole: a bbox read would renumber the rows
            gdf = gpd.read_parquet(path)
            if box is not None:
                gdf = gdf.cx[box[0] : box[2], box[1] : box[3]]
        elif box is not None:
            import pyogrio

            file_crs = pyogrio.read_info(path, layer=layer).get("crs")
            if file_crs and not _is_wgs84(file_crs):
                import shapely

                box = tuple(
                    gpd.GeoSeries([shapely.box(*box)], crs=4326).to_crs(file_crs).total_bounds
                )
            gdf = gpd.read_file(path, bbox=box, layer=layer, fid_as_index=True)
        else:
            gdf = gpd.read_file(path, layer=layer, fid_as_index=True)
    except Exception as err:
        raise InputError(
            f"{what} {path}: cannot be read ({type(err).__name__}: {err}); check the file"
        ) from err
    if not isinstance(gdf, gpd.GeoDataFrame) or "geometry" not in gdf:
        raise InputError(f"{what} {path}: has no geometry column")
    gdf = _rows_by_fid(gdf, path)
    if len(gdf) == 0 and (bbox is None or _feature_count(path, layer) == 0):
        raise InputError(
            f"{what} {path}: holds no features; add them (or check that the right file was "
            "exported)"
        )
    if gdf.crs is None:
        raise CRSError(
            f"{what} {path}: has no CRS; save it with one (GeoJSON is EPSG:4326 by default)"
        )
    if system != "wgs84":
        gdf = geometries_to_wgs84(gdf, system, what=f"{what} {path}")
        if bbox is not None:
            gdf = gdf.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    return _rename_columns(gdf, f"{what} {path}")


def _rows_by_fid(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """Index the features by their 0-based feature id, the same whether the whole file or a bbox
    of it was read (ids made from rows, ``f1``…, must not depend on the part read: batch tasks
    read parts). GeoPackage fids count from 1."""
    index = pd.Index(gdf.index)
    if not pd.api.types.is_integer_dtype(index.dtype) or not index.is_unique:
        return gdf.reset_index(drop=True)
    if path.suffix.lower() in ONE_BASED_FID_SUFFIXES:
        index = index - 1
    out = gdf.copy(deep=False)
    out.index = index.rename(None)
    return out


def _first_layer(path: Path) -> str | None:
    """The layer read from a file of several (a GeoPackage): its first; ``None`` for others."""
    if path.suffix.lower() not in (".gpkg", ".sqlite"):
        return None
    import pyogrio

    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception:  # unreadable: read_file names the problem
        return None
    if len(names) > 1:
        logger.info("%s: reading its first layer %r of %s", path, names[0], ", ".join(names))
    return names[0] if names else None


def _feature_count(path: Path, layer: str | None = None) -> int:
    """How many features the whole file holds (to tell an empty file from an empty bbox)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.read_metadata(path).num_rows)
    import pyogrio

    return int(pyogrio.read_info(path, layer=layer, force_feature_count=True)["features"])


def _is_wgs84(crs: Any) -> bool:
    from pyproj import CRS

    return bool(CRS.from_user_input(crs).equals(CRS.from_epsg(4326), ignore_axis_order=True))
