"""Everything a run writes goes through one :class:`RunOutput`.

A run's files are written into a hidden staging folder and moved into the output folder only
when the whole run has succeeded (pip's ``adjacent_tmp_file`` + ``os.replace``, for a folder):
a failed or interrupted run leaves the output folder exactly as it was — not created when it did
not exist, its old files untouched when it did. Workflows hand frames to the writer, never
paths; the writer knows the folder, the list of files written and the label language.

>>> with RunOutput(None) as out:   # a library call that writes nothing
...     out.json("summary.json", {"a": 1})
>>> out.files
[]
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._background import ForkedWriters
from ._errors import InputError
from .geometry import anchor_xy

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

log = logging.getLogger(__name__)

STAGING_PREFIX = ".servicecircle-staging-"


def check_out_dir(out_dir: str | Path) -> Path:
    """Check before any work that ``out_dir`` can be written; return it as a :class:`Path`.

    Raises :class:`InputError` naming the fix when it is an existing file, lies under a file,
    or its nearest existing folder is not writable.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, not a folder; give a folder for the outputs")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(
            f"--out {out}: {probe} is a file, so no folder can be made under it; give another "
            "folder"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: {probe} cannot be written; give a folder you can write to")
    try:  # the test that counts (root passes os.access on /proc, read-only mounts…)
        os.rmdir(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=probe))
    except OSError as err:
        raise InputError(
            f"--out {out}: no folder can be made in {probe} ({err.strerror}); give a folder you "
            "can write to"
        ) from err
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_safe(data: Any) -> Any:
    """``data`` with NaN and ±inf floats (also numpy scalars and arrays) as ``None``."""
    import numpy as np

    if isinstance(data, dict):
        return {str(k): json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(v) for v in data]
    if isinstance(data, np.ndarray):
        return [json_safe(v) for v in data.tolist()]
    if isinstance(data, np.bool_):
        return bool(data)
    if isinstance(data, np.integer):
        return int(data)
    if isinstance(data, float | np.floating):
        value = float(data)
        return value if math.isfinite(value) else None
    if isinstance(data, Path):
        return str(data)
    return data


def dumps(data: Any) -> str:
    """Strict JSON (never ``NaN``/``Infinity``), indented, UTF-8 text kept as it is."""
    return json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False)


class RunOutput:
    """The output folder of one run, staged until :meth:`commit`.

    Use it as a context manager: files written inside the block are moved into ``out_dir`` when
    the block ends without an exception, and thrown away otherwise. With ``out_dir=None``
    nothing is written (library calls that only want the results).

    Parameters
    ----------
    out_dir
        The folder to fill, or ``None``.
    lang
        Label language of pages and tables meant for people (``zh`` or ``en``).
    coords
        The coordinates the user's files were in: tables with ``lon``/``lat`` (WGS84) also get
        ``lon_gcj02``/``lat_gcj02`` (or ``_bd09``) so results go back into the tool they came
        from.
    command
        The command whose run this is (``coverage``, ``run``…): its files are recorded in the
        folder, and what its last run there wrote and this one did not is removed at
        :meth:`commit` (:mod:`~servicecircle.run_manifest`); ``None``: neither.
    """

    def __init__(
        self,
        out_dir: str | Path | None,
        *,
        lang: str = "zh",
        coords: str = "wgs84",
        command: str | None = None,
    ) -> None:
        self.out_dir = None if out_dir is None else check_out_dir(out_dir)
        self.lang = lang
        self.coords = coords
        self._files: list[str] = []
        self._stage: Path | None = None
        self._committed = False
        self._children = ForkedWriters()
        self._batch: list[tuple[str, Callable[[], None]]] | None = None
        self.command = command
        self._reading: contextlib.AbstractContextManager[list[Path]] | None = None
        self._read: list[Path] = []
        self.removed: list[str] = []  # what the command's last run wrote and this one did not

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> RunOutput:
        from .files import reads_noted

        self._reading = reads_noted()
        self._read = self._reading.__enter__()  # the files the run reads: never overwritten
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                try:
                    self.commit()
                except BaseException:
                    self.abort()
                    raise
            else:
                self.abort()
        finally:
            if self._reading is not None:
                self._reading.__exit__(None, None, None)
                self._reading = None

    @property
    def active(self) -> bool:
        """Whether files are written at all."""
        return self.out_dir is not None

    @property
    def files(self) -> list[str]:
        """Names of the files written so far, in order."""
        return list(self._files)

    def _stage_dir(self) -> Path:
        if self._stage is None:
            assert self.out_dir is not None
            base = self.out_dir
            if not base.exists():  # stage beside it, in the nearest folder that exists
                base = base.parent
                while not base.exists():
                    base = base.parent
            self._stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base))
        return self._stage

    def commit(self) -> Path | None:
        """Move every staged file into the output folder (creating it if needed)."""
        if self.out_dir is None or self._committed:
            return self.out_dir
        self._children.wait()  # the files written in children are all there, or it raises
        self._committed = True
        stage = self._stage_dir()
        out = self.out_dir
        try:
            if not out.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(stage, 0o777 & ~_umask())  # as a plain mkdir makes it, not mkdtemp's 0700
                os.replace(stage, out)
                self._stage = None
                self._record(out)
                return out
            self._refuse_overwriting_inputs(out)
            for name in self._files:
                os.replace(stage / name, out / name)
        finally:
            self.abort()
        self._record(out)
        return out

    def _refuse_overwriting_inputs(self, out: Path) -> None:
        read = set(self._read)
        clash = [n for n in self._files if (out / n).resolve() in read]
        if clash:
            raise InputError(
                f"--out {out}: this run read {', '.join(clash)} from there and would overwrite "
                "it; write the results to another folder, or keep the input elsewhere"
            )

    def _record(self, out: Path) -> None:
        """The command's files recorded in the folder; what its last run wrote and this one
        did not removed (:mod:`~servicecircle.run_manifest`)."""
        if self.command is not None:
            from .run_manifest import tidy

            self.removed = tidy(out, self.command, self._files)

    def abort(self) -> None:
        """Throw the staged files away (the output folder stays as it was)."""
        self._children.stop()
        if self._stage is not None:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None

    @contextlib.contextmanager
    def in_one_child(self) -> Iterator[None]:
        """Writers called in the block run one after another in one forked child, started as
        the block ends (here, when no child is free), while this process goes on with what
        follows: a run pairs its longest writer and a few short ones against its tables."""
        if self._batch is not None:  # nested: part of the outer block
            yield
            return
        batch: list[tuple[str, Callable[[], None]]] = []
        self._batch = batch
        try:
            yield
        except BaseException:  # none of them is written: none is listed
            queued = {name for name, _ in batch}
            self._files = [name for name in self._files if name not in queued]
            raise
        finally:
            self._batch = None
        if not batch:
            return

        def run_all() -> None:
            for _, job in batch:
                job()

        if not self._children.start(", ".join(name for name, _ in batch), run_all):
            run_all()

    # ------------------------------------------------------------------ writers
    def _write(
        self, name: str, writer: Callable[[Path], None], *, background: bool = False
    ) -> None:
        """Write one file with ``writer(path)``; with ``background``, in a forked child when
        one is free (:mod:`servicecircle._background`), checked at :meth:`commit`; inside
        :meth:`in_one_child`, when that block ends."""
        if self.out_dir is None:
            return
        if "/" in name or name.startswith("."):
            raise ValueError(f"output names are plain file names; got {name!r}")
        path = self._stage_dir() / name
        if path.exists():
            path.unlink()
        if self._batch is not None:
            self._batch.append((name, lambda: writer(path)))
        elif not (background and self._children.start(name, lambda: writer(path))):
            writer(path)
        if name not in self._files:
            self._files.append(name)
        log.debug("wrote %s", name)

    def text(self, name: str, text: str) -> None:
        """A text file (UTF-8): pages, notes."""

        def write(path: Path) -> None:
            path.write_text(text, encoding="utf-8")

        self._write(name, write)

    def text_from(self, name: str, make_text: Callable[[], str]) -> None:
        """A text file whose text ``make_text()`` builds (a page): built and written in a
        forked child when one is free, so the run goes on meanwhile."""

        def write(path: Path) -> None:
            path.write_text(make_text(), encoding="utf-8")

        self._write(name, write, background=True)

    def json(self, name: str, data: Any) -> None:
        """Strict JSON (NaN and infinities become ``null``)."""
        self.text(name, dumps(data) + "\n")

    def csv(self, name: str, frame: pd.DataFrame, *, float_format: str | None = None) -> None:
        """A CSV table (UTF-8, no index, empty cells for missing values)."""
        self._write(
            name,
            lambda p: write_csv(frame, p, float_format=float_format),
            background=True,
        )

    def gpkg(self, name: str, layers: dict[str, gpd.GeoDataFrame]) -> None:
        """A GeoPackage with one or more layers."""

        def write(path: Path) -> None:
            for i, (layer, frame) in enumerate(layers.items()):
                _gpkg_ready(frame).to_file(
                    path, driver="GPKG", layer=layer, mode="w" if i == 0 else "a"
                )

        self._write(name, write, background=True)

    def geojson(self, name: str, frame: gpd.GeoDataFrame) -> None:
        """GeoJSON in EPSG:4326 with 7 decimals (about 1 cm)."""
        ll = _gpkg_ready(frame.to_crs(4326))
        self._write(
            name,
            lambda p: ll.to_file(p, driver="GeoJSON", COORDINATE_PRECISION=7),
            background=True,
        )

    def with_writer(self, name: str, writer: Callable[[Path], None]) -> None:
        """Any other format: ``writer(path)`` writes the file (e.g. an Excel workbook)."""
        self._write(name, writer, background=True)


def write_csv(frame: pd.DataFrame, path: Path, *, float_format: str | None = None) -> None:
    """``frame.to_csv(path, index=False, na_rep="", float_format=...)``, byte for byte.

    Frames of plain columns (float64 without ``float_format``, integers, booleans, text) under
    plain labels (text or integers, one level) are turned into Python values
    :data:`CSV_CHUNK_ROWS` rows at a time and written through the csv module, about 1.5× faster
    than pandas' writer (a city's ``coverage.csv``: 0.33 s → 0.23 s); any other frame is left
    to pandas.
    """
    if not _plain_csv(frame, float_format):
        frame.to_csv(path, index=False, na_rep="", float_format=float_format)
        return
    with open(path, "w", encoding="utf-8", newline="") as fh:
        _csv_rows(fh, frame, float_format, header=True)


def csv_text(frame: pd.DataFrame, *, header: bool = True) -> str | None:
    """What :func:`write_csv` writes for ``frame`` (without ``float_format``), as text, with or
    without the header line; ``None`` for a frame it leaves to pandas. Each cell's text depends
    only on its value and its column's dtype, so frames with the same columns and dtypes give
    the lines of their concatenation."""
    import io

    if not _plain_csv(frame, None):
        return None
    buffer = io.StringIO(newline="")
    _csv_rows(buffer, frame, None, header=header)
    return buffer.getvalue()


def _plain_csv(frame: pd.DataFrame, float_format: str | None) -> bool:
    """Whether :func:`write_csv` writes ``frame`` itself (else pandas does)."""
    plain_labels = frame.columns.nlevels == 1 and all(
        isinstance(name, str) or type(name) is int for name in frame.columns
    )
    kinds_ok = all(
        _csv_values(frame.iloc[:0, i], float_format) is not None for i in range(frame.shape[1])
    )
    return bool(plain_labels and kinds_ok and frame.shape[1])


def _csv_rows(fh: Any, frame: pd.DataFrame, float_format: str | None, *, header: bool) -> None:
    import csv

    writer = csv.writer(fh, lineterminator=os.linesep)
    if header:
        writer.writerow([str(name) for name in frame.columns])
    for start in range(0, len(frame), CSV_CHUNK_ROWS):
        rows = frame.iloc[start : start + CSV_CHUNK_ROWS]
        columns = [_csv_values(rows.iloc[:, i], float_format) for i in range(frame.shape[1])]
        writer.writerows(zip(*columns, strict=True))


CSV_CHUNK_ROWS = 100_000
"""Rows :func:`write_csv` holds as Python values at once."""


def _csv_values(col: pd.Series, float_format: str | None) -> list[Any] | None:
    """A column's cells as Python values as pandas writes them (``None``: an empty cell), or
    ``None`` when only pandas knows how it writes this column."""
    import numpy as np
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, pd.StringDtype) or pd.api.types.is_object_dtype(dtype):
        values = col.to_numpy(dtype=object, copy=True)
        values[pd.isna(values)] = None
    elif isinstance(dtype, np.dtype) and dtype.kind in "iub":
        values = col.to_numpy()
    elif dtype == np.float64 and float_format is None:
        numbers = col.to_numpy()
        values = numbers.astype(object)
        values[np.isnan(numbers)] = None
    else:
        return None
    return list(values.tolist())


def _gpkg_ready(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Columns GDAL can store: pandas' nullable string/object columns as plain text or null,
    extra geometry columns (building footprints riding along) as WKT."""
    import pandas as pd
    import shapely

    out = frame.copy()
    for col in out.columns:
        if col == out.geometry.name:
            continue
        series = out[col]
        if isinstance(series.dtype, pd.StringDtype):
            out[col] = series.astype(object).where(series.notna(), None)
        elif series.dtype == object and len(series):
            sample = series.dropna()
            if len(sample) and isinstance(sample.iloc[0], shapely.Geometry):
                out[col] = shapely.to_wkt(series.to_numpy())
    return out


# --------------------------------------------------------------------------- the run's files
def with_lonlat(frame: pd.DataFrame, geometry: Any, crs: Any, coords: str) -> pd.DataFrame:
    """``frame`` with ``lon``/``lat`` in WGS84 (7 decimals) from ``geometry``, and the same in
    ``coords`` (``lon_gcj02``…) when the input was not WGS84."""
    import geopandas as gpd

    ll = gpd.GeoSeries(geometry, crs=crs).to_crs(4326)
    xy = anchor_xy(ll.to_numpy())
    out = frame.copy()
    out["lon"] = xy[:, 0].round(7) + 0.0  # (no -0.0)
    out["lat"] = xy[:, 1].round(7) + 0.0
    if coords != "wgs84":
        from .coords import from_wgs84

        lon, lat = from_wgs84(xy[:, 0], xy[:, 1], coords)
        out[f"lon_{coords}"] = lon.round(7) + 0.0
        out[f"lat_{coords}"] = lat.round(7) + 0.0
    return out


def write_coverage(
    out: RunOutput,
    coverage: Any,
    demand: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
) -> None:
    """``coverage.csv``/``.gpkg`` (one row per demand point) and ``facilities.csv``/``.gpkg``,
    with ``lon``/``lat`` (and the input's coordinates when they were GCJ-02 or BD-09)."""
    if not out.active:
        return
    import geopandas as gpd

    from .coverage import coverage_table

    table = coverage_table(coverage)
    points = gpd.GeoDataFrame(coverage.points, geometry=demand.geometry.to_numpy(), crs=demand.crs)
    out.gpkg("coverage.gpkg", {"demand": points})  # the longer one first (writers may fork)
    out.csv("coverage.csv", with_lonlat(table, demand.geometry.to_numpy(), demand.crs, out.coords))
    fac = coverage.facilities.drop(columns=["geometry"], errors="ignore")
    floats = fac.select_dtypes("float").columns
    fac = fac.round({c: 1 if c.endswith("_m") else 2 for c in floats})  # metres to 0.1 m
    for col in (c for c in floats if c.endswith("_load_points")):
        fac[col] = fac[col].round().astype("Int64")  # empty where a tier does not use it
    fac = with_lonlat(fac, facilities.geometry.to_numpy(), facilities.crs, out.coords)
    out.csv("facilities.csv", fac)
    out.gpkg(
        "facilities.gpkg",
        {"facilities": gpd.GeoDataFrame(fac, geometry=facilities.geometry.to_numpy(),
                                        crs=facilities.crs)},
    )  # fmt: skip


def write_cells(
    out: RunOutput, cells: gpd.GeoDataFrame, micro_grids: gpd.GeoDataFrame | None = None
) -> None:
    """``cells.gpkg`` and ``cells.csv``: per cell the residents and coverage; with the
    micro-grids rolled up, also their layer ``micro_grids`` and ``micro_grids.csv``."""
    layers = {"cells": cells}
    if micro_grids is not None:
        layers["micro_grids"] = micro_grids
    out.gpkg("cells.gpkg", layers)
    out.csv("cells.csv", cells.drop(columns="geometry"), float_format="%.4f")
    if micro_grids is not None:
        out.csv("micro_grids.csv", micro_grids.drop(columns="geometry"), float_format="%.4f")


def write_service_areas_file(
    out: RunOutput, per_facility: gpd.GeoDataFrame, union: gpd.GeoDataFrame
) -> None:
    """``service_areas.gpkg``: per facility and tier, and their union per tier."""
    out.gpkg("service_areas.gpkg", {"service_areas": per_facility, "service_area_union": union})


def write_proposals(out: RunOutput, proposals: gpd.GeoDataFrame) -> None:
    """``proposals.geojson`` (EPSG:4326) and ``proposals.gpkg``, with ``lon``/``lat`` (and the
    input's coordinates when they were GCJ-02 or BD-09)."""
    import geopandas as gpd

    props = gpd.GeoDataFrame(
        with_lonlat(proposals, proposals.geometry.to_numpy(), proposals.crs, out.coords),
        geometry=proposals.geometry.name,
        crs=proposals.crs,
    )
    out.geojson("proposals.geojson", props)
    out.gpkg("proposals.gpkg", {"proposals": props})


EXCEL_POINT_ROWS = 10_000
"""Above this many demand points the workbook leaves out the per-point sheet (coverage.csv has
it): writing 100,000 rows cell by cell takes half a minute."""


def write_workbook(
    out: RunOutput,
    summary: dict[str, Any],
    *,
    coverage: Any = None,
    cells: pd.DataFrame | None = None,
    proposals: pd.DataFrame | None = None,
    tiers: Any = (),
) -> None:
    """``results.xlsx``: the summary sheet and the run's tables, labels in the run's language."""
    if not out.active:
        return
    from .coverage import coverage_table
    from .excel import results_workbook

    points = None
    facilities = None
    if coverage is not None:
        facilities = coverage.facilities
        if len(coverage.points) <= EXCEL_POINT_ROWS:
            points = coverage_table(coverage)
        else:
            summary.setdefault("notes", []).append(
                f"results.xlsx leaves out the per-point sheet ({len(coverage.points):,} demand "
                f"points > {EXCEL_POINT_ROWS:,}); coverage.csv holds every point"
            )
    labels = {t.name: t.display(out.lang) for t in tiers}
    out.with_writer(
        "results.xlsx",
        lambda p: results_workbook(
            p,
            summary=summary,
            coverage=points,
            cells=None if cells is None else cells.drop(columns="geometry", errors="ignore"),
            facilities=facilities,
            proposals=None
            if proposals is None
            else proposals.drop(columns="geometry", errors="ignore"),
            tier_labels=labels,
            lang=out.lang,
        ),
    )
