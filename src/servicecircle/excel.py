"""results.xlsx: the workbook a planner pastes into a report.

Sheets 汇总 (the tier table and the run's facts), 居民点, 网格, 设施 and 建议选址 (each only when
its table is given); Chinese headers by default, the column ids with ``lang="en"``. Written by
pandas with XlsxWriter: frozen bold header, shares as %, distances without decimals, populations
with thousands separators, no geometry, missing values as empty cells, user text never a formula.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import InputError
from ._write import write_with
from .tiers import KIND_LABELS

if TYPE_CHECKING:
    import pandas as pd

LANGS = ("zh", "en")
PERCENT, GOAL_PERCENT, WHOLE, DEGREES, DATE = "0.0%", "0%", "#,##0", "0.000000", "yyyy-mm-dd"
HEADER = "header"
MIN_WIDTH, MAX_WIDTH = 6, 48
# User text (facility names) stays text: never a formula or a link in the planner's workbook.
XLSX_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False}
FORMATS = (PERCENT, GOAL_PERCENT, WHOLE, DEGREES, DATE)
SHOWN = {PERCENT: "{:.1%}", WHOLE: "{:,.0f}", DEGREES: "{:.6f}"}
MAX_ROWS = 1_048_575  # an Excel sheet's rows, less the header

# fmt: off
# Column ids as written to the CSVs → Chinese headers; unknown columns keep their names.
COLUMNS_ZH = {
    "demand_id": "居民点编号", "cell_id": "网格编号", "facility_id": "设施编号", "id": "编号",
    "kind": "类型", "name": "名称", "source": "来源", "flag": "标记", "community": "社区",
    "population": "人口", "households": "户数", "demand_points": "居民点数",
    "snapped": "已接入路网", "access_m": "接入距离(m)", "linked_past_fragment": "跨路网碎片接入",
    "rank": "排序", "added_covered_residents": "新增覆盖人口",
    "lon": "经度(WGS84)", "lat": "纬度(WGS84)", "lon_gcj02": "经度(GCJ-02)",
    "lat_gcj02": "纬度(GCJ-02)", "lon_bd09": "经度(BD-09)", "lat_bd09": "纬度(BD-09)",
}
# ``<tier>_<suffix>`` columns → ``<tier label> <header>``.
TIER_COLUMNS_ZH = {
    "walk_m": "步行距离(m)", "covered": "是否覆盖", "facility_id": "最近设施", "status": "状态",
    "circle_m": "直线距离(m)", "circle_covered": "直线圆内", "share": "覆盖率",
    "covered_residents": "覆盖人口", "responsible_id": "责任设施",
    "circle_covered_residents": "直线圆覆盖人口", "overcounted_residents": "直线圆多计人口",
    "median_walk_m": "步行距离中位数(m)", "load_residents": "服务人口",
    "load_points": "服务居民点数",
}
STATUS_ZH = {
    "covered": "已覆盖", "too_far": "步行过远", "no_facility_reachable": "所在路网无设施",
    "unsnapped": "距道路过远",
}
# Every other text of the workbook as (Chinese, English).
TEXT: dict[str, tuple[Any, Any]] = {
    "summary": ("汇总", "Summary"), "coverage": ("居民点", "Demand points"),
    "cells": ("网格", "Cells"), "facilities": ("设施", "Facilities"),
    "proposals": ("建议选址", "Proposals"),
    "tier": ("服务圈", "tier"), "target_m": ("步行距离(m)", "walking distance (m)"),
    "tier_residents": ("居民", "residents"), "covered": ("已覆盖居民", "covered residents"),
    "share": ("覆盖率", "share"), "goal": ("目标", "goal"), "verdict": ("是否达标", "pass/fail"),
    "pass": ("达标", "PASS"), "fail": ("未达标", "FAIL"), "yes": ("是", True), "no": ("否", False),
    "area": ("区域", "area"), "source": ("数据来源", "source"), "date": ("日期", "date"),
    "demand_points": ("居民点", "demand points"), "residents": ("居民", "residents"),
    "unreachable_points": ("无法接入路网的居民点", "unreachable demand points"),
    "unreachable_residents": ("无法接入路网的居民", "unreachable residents"),
    "facility_total": ("设施", "facilities"), "snap_limit_m": ("接入距离上限(m)", "snap limit (m)"),
    "attribution": ("地图数据 © OpenStreetMap contributors (ODbL)",
                    "Map data © OpenStreetMap contributors (ODbL)"),
}
# fmt: on
_SUFFIXES = sorted(TIER_COLUMNS_ZH, key=len, reverse=True)  # longest first: circle_covered
YES_NO_COLUMNS = {"snapped", "linked_past_fragment"}
YES_NO_SUFFIXES = {"covered", "circle_covered"}
PROPOSAL_ORDER = ("id", "kind", "rank", "added_covered_residents", "lon", "lat")
SUMMARY_COLUMNS = ("tier", "target_m", "tier_residents", "covered", "share", "goal", "verdict")
SUMMARY_FORMATS = (None, WHOLE, WHOLE, WHOLE, PERCENT, GOAL_PERCENT, None)


def results_workbook(
    path: str | Path,
    *,
    summary: dict[str, Any],
    coverage: pd.DataFrame | None = None,
    cells: pd.DataFrame | None = None,
    facilities: pd.DataFrame | None = None,
    proposals: pd.DataFrame | None = None,
    tier_labels: dict[str, str] | None = None,
    lang: str = "zh",
    date: dt.date | None = None,
) -> None:
    """Write ``results.xlsx``: the summary and the run's tables, ready to paste into a report.

    Parameters
    ----------
    path
        The workbook to write (``.xlsx``); written atomically.
    summary
        A run's summary (the content of ``summary.json``); missing keys leave cells empty.
    coverage, cells, facilities, proposals
        The tables of ``coverage.csv``, ``cells.csv``, ``facilities.csv`` and the proposals;
        each becomes a sheet when given. Geometry columns are dropped.
    tier_labels
        Display names of tiers by tier id (``{"centre_15min": "15分钟圈"}``); else the id.
    lang
        ``"zh"`` (Chinese headers and values) or ``"en"`` (column ids kept).
    date
        The date stated on the summary sheet; today when omitted.

    Examples
    --------
    >>> import tempfile
    >>> summary = {"area": {"name": "demo"}, "tiers": {"station_5min": {"target_m": 300.0,
    ...     "residents": 100.0, "covered_residents": 90.0, "share": 0.9, "goal": 0.85,
    ...     "pass": True}}}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     results_workbook(Path(d) / "results.xlsx", summary=summary)
    """
    if lang not in LANGS:
        raise InputError(f"lang must be one of {', '.join(LANGS)}; got {lang!r}")
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise InputError(f"{path}: an Excel workbook must end in .xlsx; give e.g. results.xlsx")
    labels = dict(tier_labels or {})
    t = {key: pair[LANGS.index(lang)] for key, pair in TEXT.items()}
    tables = {"coverage": coverage, "cells": cells, "facilities": facilities}
    tables["proposals"] = None if proposals is None else _proposal_columns(proposals)

    def write(tmp: Path) -> None:
        import pandas as pd

        kwargs = {"options": XLSX_OPTIONS}
        with pd.ExcelWriter(tmp, engine="xlsxwriter", engine_kwargs=kwargs) as writer:
            styles = {fmt: writer.book.add_format({"num_format": fmt}) for fmt in FORMATS}
            styles[HEADER] = writer.book.add_format({"bold": True, "bottom": 1})
            _summary_sheet(writer, styles, summary, labels, t, date or dt.date.today())
            for key, frame in tables.items():
                if frame is None:
                    continue
                table, formats = _table(frame, labels, t, lang)
                ws = writer.book.add_worksheet(t[key])
                writer.sheets[t[key]] = ws
                _write_cells(ws, table)
                _finish(ws, styles, table, formats, freeze_col=1)
                if len(table) and len(table.columns):
                    ws.autofilter(0, 0, len(table), len(table.columns) - 1)

    write_with(path, write)


def _summary_sheet(
    writer: pd.ExcelWriter,
    styles: dict[str, Any],
    summary: dict[str, Any],
    labels: dict[str, str],
    t: dict[str, Any],
    date: dt.date,
) -> None:
    """The tier table from A1 (header frozen), then the run's facts and the attribution."""
    import pandas as pd

    tiers = summary.get("tiers")
    tiers = tiers if isinstance(tiers, dict) else {}
    rows = [
        _tier_row(tid, info, labels, t) for tid, info in tiers.items() if isinstance(info, dict)
    ]
    table = pd.DataFrame(rows, columns=[t[key] for key in SUMMARY_COLUMNS])
    area = summary.get("area")
    area = area if isinstance(area, dict) else {"name": area}
    fac = summary.get("facilities")
    facts = [
        (t["area"], area.get("name"), None),
        (t["source"], area.get("source"), None),
        (t["date"], date, DATE),
        (t["demand_points"], _num(summary.get("demand_points")), WHOLE),
        (t["residents"], _num(summary.get("residents")), WHOLE),
        (t["unreachable_points"], _num(summary.get("unreachable_demand_points")), WHOLE),
        (t["unreachable_residents"], _num(summary.get("unreachable_residents")), WHOLE),
        (t["facility_total"], _num(fac.get("total") if isinstance(fac, dict) else fac), WHOLE),
        (t["snap_limit_m"], _num(summary.get("snap_limit_m")), WHOLE),
    ]
    facts = [
        (label, v if isinstance(v, float | dt.date) else str(v), fmt)
        for label, v, fmt in facts
        if v is not None and v != ""
    ]
    name = t["summary"]
    table.to_excel(writer, sheet_name=name, index=False, na_rep="", inf_rep="")
    ws = writer.sheets[name]
    _finish(ws, styles, table, list(SUMMARY_FORMATS), freeze_col=0)
    row = len(table) + 2  # one empty row between the table and the facts
    for label, value, fmt in facts:
        ws.write(row, 0, label)
        ws.write(row, 1, value, styles.get(fmt or ""))
        row += 1
    ws.write(row + 1, 0, t["attribution"])  # overflows into the empty cells to its right
    width_a = max([_text_width(label) + 2 for label, _, _ in facts], default=0)
    width_a = max(_width(table.columns[0], table.iloc[:, 0], None), width_a)
    ws.set_column(0, 0, min(width_a, MAX_WIDTH))


def _tier_row(
    tier_id: str, info: dict[str, Any], labels: dict[str, str], t: dict[str, Any]
) -> list[Any]:
    """One row of the tier table; a share or a verdict missing from the summary is derived."""
    residents, covered = _num(info.get("residents")), _num(info.get("covered_residents"))
    share, goal = _num(info.get("share")), _num(info.get("goal"))
    if share is None and residents and covered is not None:
        share = covered / residents
    if goal is not None and goal > 1:  # a goal given in percent
        goal /= 100
    passed = info.get("pass")
    if passed is None and share is not None and goal is not None:
        passed = share >= goal
    verdict = None if passed is None else t["pass"] if passed else t["fail"]
    label = labels.get(tier_id, tier_id)
    return [label, _num(info.get("target_m")), residents, covered, share, goal, verdict]


def _table(
    frame: pd.DataFrame, labels: dict[str, str], t: dict[str, Any], lang: str
) -> tuple[pd.DataFrame, list[str | None]]:
    """A frame ready for a sheet: no geometry, values and headers in ``lang``, and the number
    format of each column (by the column ids, before renaming)."""
    import pandas as pd

    if len(frame) > MAX_ROWS:
        raise InputError(
            f"{len(frame):,} rows do not fit an Excel sheet ({MAX_ROWS:,} at most); "
            "use the CSV files for a table this large"
        )
    geometry = [c for c in frame.columns if _is_geometry(frame[c])]
    table = pd.DataFrame(frame.drop(columns=geometry)).reset_index(drop=True)
    formats = [_number_format(str(c)) for c in table.columns]
    yes, no = t["yes"], t["no"]
    for col in table.columns:
        suffix = _split_tier(str(col))[1]
        if col in YES_NO_COLUMNS or suffix in YES_NO_SUFFIXES:
            table[col] = table[col].map(lambda v: _yes_no(v, yes, no)).astype(object)
        elif lang == "zh" and (suffix == "status" or col == "kind"):
            words = STATUS_ZH if suffix == "status" else KIND_LABELS["zh"]
            table[col] = table[col].map(lambda v, w=words: w.get(v, v) if isinstance(v, str) else v)
        elif table[col].dtype == object:  # lists and dicts riding along: as text
            table[col] = table[col].map(_as_text)
    if lang == "zh":
        table.columns = pd.Index([_header_zh(str(c), labels) for c in table.columns])
    return table, formats


def _proposal_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Proposals with id, kind, rank, gain and coordinates first; other columns after them."""
    first = [c for c in PROPOSAL_ORDER if c in frame.columns]
    coords = [c for c in frame.columns if str(c).startswith(("lon_", "lat_"))]
    rest = [c for c in frame.columns if c not in first and c not in coords]
    return frame[[*first, *coords, *rest]]


def _write_cells(ws: Any, table: pd.DataFrame) -> None:
    """The table's values below its header, typed per column (numbers as numbers, text as
    text, missing as empty cells) — straight to xlsxwriter, which is several times faster
    than going through ``DataFrame.to_excel`` cell by cell."""
    import numpy as np
    import pandas as pd

    for j, col in enumerate(table.columns):
        series = table[col]
        if pd.api.types.is_bool_dtype(series.dtype):
            for i, v in enumerate(series.tolist(), start=1):
                ws.write_boolean(i, j, bool(v))
        elif pd.api.types.is_numeric_dtype(series.dtype):
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
            for i in np.flatnonzero(np.isfinite(values)).tolist():
                ws.write_number(i + 1, j, float(values[i]))
        else:
            for i, v in enumerate(series.tolist(), start=1):
                if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
                    continue
                if isinstance(v, bool | np.bool_):
                    ws.write_boolean(i, j, bool(v))
                elif isinstance(v, int | float | np.integer | np.floating):
                    ws.write_number(i, j, float(v))
                else:
                    ws.write_string(i, j, str(v))


def _finish(
    ws: Any, styles: dict[str, Any], table: pd.DataFrame, formats: list[str | None], freeze_col: int
) -> None:
    """Bold header row, frozen; each column's number format and width."""
    for j, fmt in enumerate(formats):
        width = _width(table.columns[j], table.iloc[:, j], fmt)
        ws.set_column(j, j, width, styles.get(fmt or ""))
    ws.write_row(0, 0, [str(c) for c in table.columns], styles[HEADER])
    ws.freeze_panes(1, freeze_col)


def _width(header: Any, values: pd.Series, fmt: str | None) -> int:
    """Column width from the header (bold, maybe a filter button) and the values as shown;
    CJK characters count double."""
    import pandas as pd

    values = values[values.notna()]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        values = values.agg(["min", "max"]) if len(values) else values  # widest are the ends
    shown = [_shown(v, fmt) for v in values.unique()]
    width = max([_text_width(str(header)) + 4, *(_text_width(v) + 1 for v in shown)])
    return min(max(width, MIN_WIDTH), MAX_WIDTH)


def _split_tier(col: str) -> tuple[str | None, str | None]:
    """``("centre_15min", "walk_m")`` for ``centre_15min_walk_m``; ``(None, None)`` otherwise."""
    if col in COLUMNS_ZH:
        return None, None
    for suffix in _SUFFIXES:
        if col.endswith("_" + suffix) and len(col) > len(suffix) + 1:
            return col[: -len(suffix) - 1], suffix
    return None, None


def _header_zh(col: str, labels: dict[str, str]) -> str:
    from .segments import SEGMENTS_BY_NAME

    tier, suffix = _split_tier(col)
    if tier is not None and suffix is not None:
        who = ""
        if tier not in labels:  # <tier>_<segment>_<suffix>: the segment's name after the tier's
            for name, seg in SEGMENTS_BY_NAME.items():
                if tier.endswith("_" + name) and tier[: -len(name) - 1] in labels:
                    tier, who = tier[: -len(name) - 1], f" {seg.display('zh')}"
                    break
        return f"{labels.get(tier, tier)}{who} {TIER_COLUMNS_ZH[suffix]}"
    if col in SEGMENTS_BY_NAME:
        return SEGMENTS_BY_NAME[col].display("zh")
    return COLUMNS_ZH.get(col, col)


def _number_format(col: str) -> str | None:
    """The Excel number format of a column, from its id."""
    if col.endswith("share"):
        return PERCENT
    if col in ("lon", "lat") or col.startswith(("lon_", "lat_")):
        return DEGREES
    whole = ("_m", "residents", "population", "households", "points", "rank")
    return WHOLE if col.endswith(whole) else None


def _is_geometry(series: pd.Series) -> bool:
    import shapely

    if str(series.dtype) == "geometry":
        return True
    sample = series.dropna()
    return (
        series.dtype == object and len(sample) > 0 and isinstance(sample.iloc[0], shapely.Geometry)
    )


def _yes_no(value: Any, yes: Any, no: Any) -> Any:
    """``True``/``False`` (or the CSV's ``"true"``/``"false"``) as ``yes``/``no``."""
    if isinstance(value, str):
        value = {"true": True, "false": False}.get(value.strip().lower(), value)
    if isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b":
        return yes if value else no
    return value


def _as_text(value: Any) -> Any:
    """Lists and dicts (which a cell cannot hold) as text; anything else as it is."""
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, list | tuple | set):
        return ", ".join(map(str, value))
    return value


def _is_number(value: Any) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _num(value: Any) -> float | None:
    """A finite number as ``float``; anything else (missing, text, NaN, bool) as ``None``."""
    if not _is_number(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _shown(value: Any, fmt: str | None) -> str:
    """Roughly the text Excel shows for ``value`` under ``fmt`` (for the column width)."""
    if fmt in SHOWN and _is_number(value):
        return SHOWN[fmt].format(value)
    return str(value)


def _text_width(text: str) -> int:
    """Display width: CJK (wide and full-width) characters count double."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
