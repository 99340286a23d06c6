"""results.xlsx: sheets, headers, formats and row counts of a real demo run, read back with
openpyxl; the row counts are checked against the CSV files the same run writes."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from servicecircle._errors import InputError
from servicecircle.excel import results_workbook

openpyxl = pytest.importorskip("openpyxl")

LABELS = {"centre_15min": "15分钟圈", "station_5min": "5分钟圈"}
ZH_SHEETS = ["汇总", "居民点", "网格", "设施", "建议选址"]
EN_SHEETS = ["Summary", "Demand points", "Cells", "Facilities", "Proposals"]
STATUS_ZH = {"已覆盖", "步行过远", "所在路网无设施", "距道路过远"}


@pytest.fixture(scope="module")
def run(demo_area, tmp_path_factory):
    """A coverage run with a 400 m hex grid (its CSVs written) and two proposed stations."""
    from servicecircle.grid import regular_grid
    from servicecircle.plan import run_coverage, run_propose, tier_by_name

    first = run_coverage(demo_area, facilities="demo", out_dir=None)
    grid = regular_grid(
        "hex", demo_area.boundary, crs=demo_area.crs, size_m=400, demand=first.demand
    )
    out = tmp_path_factory.mktemp("xl_run")
    result = run_coverage(demo_area, facilities="demo", out_dir=out, write_map=False, cells=grid)
    siting = run_propose(
        demo_area, tier=tier_by_name("station_5min"), new=2, out_dir=None, write_map=False
    )
    return result, siting.proposals, out


def _frames(run):
    from servicecircle.coverage import coverage_table

    result, proposals, _out = run
    return {
        "summary": result.summary,
        "coverage": coverage_table(result.coverage),
        "cells": result.cells,
        "facilities": result.coverage.facilities,
        "proposals": proposals,
    }


def _write(path, run, **kw):
    results_workbook(path, **_frames(run), **kw)
    return openpyxl.load_workbook(path)


@pytest.fixture(scope="module")
def zh(run, tmp_path_factory):
    path = tmp_path_factory.mktemp("xl_zh") / "results.xlsx"
    return _write(path, run, tier_labels=LABELS, date=dt.date(2025, 3, 1))


@pytest.fixture(scope="module")
def en(run, tmp_path_factory):
    return _write(tmp_path_factory.mktemp("xl_en") / "results.xlsx", run, lang="en")


def header(ws) -> list[str]:
    return [c.value for c in ws[1]]


def column(ws, name: str) -> list:
    j = header(ws).index(name) + 1
    return [row[0] for row in ws.iter_rows(min_row=2, min_col=j, max_col=j)]


def width_of(ws, j: int) -> float:
    """Width of column ``j`` (1-based); a writer may store equal neighbours as one range."""
    for dim in ws.column_dimensions.values():
        if dim.min <= j <= dim.max:
            return dim.width
    raise AssertionError(f"{ws.title}: column {j} has no width")


def test_sheets_in_order(zh, en):
    assert zh.sheetnames == ZH_SHEETS
    assert en.sheetnames == EN_SHEETS


def test_only_sheets_whose_frame_is_given(run, tmp_path):
    frames = _frames(run)
    path = tmp_path / "results.xlsx"
    results_workbook(path, summary=frames["summary"], proposals=frames["proposals"])
    assert openpyxl.load_workbook(path).sheetnames == ["汇总", "建议选址"]


def test_summary_tier_table_zh(zh, run):
    ws = zh["汇总"]
    summary = run[0].summary
    assert header(ws) == [
        "服务圈",
        "步行距离(m)",
        "居民",
        "已覆盖居民",
        "覆盖率",
        "目标",
        "是否达标",
    ]
    for r, (tier_id, info) in enumerate(summary["tiers"].items(), start=2):
        row = [c.value for c in ws[r]]
        assert row[0] == LABELS[tier_id]
        assert row[1] == info["target_m"]
        assert row[2] == pytest.approx(info["residents"])
        assert row[3] == pytest.approx(info["covered_residents"])
        assert row[4] == pytest.approx(info["share"])
        assert ws.cell(row=r, column=5).number_format == "0.0%"
        assert ws.cell(row=r, column=3).number_format == "#,##0"
        assert row[6] == ("达标" if info["pass"] else "未达标")
    facts = {row[0]: row[1] for row in ws.iter_rows(min_row=4, max_col=2, values_only=True)}
    assert facts["区域"] == "demo"
    assert facts["日期"] == dt.datetime(2025, 3, 1)
    assert facts["居民点"] == summary["demand_points"]
    assert facts["无法接入路网的居民点"] == summary["unreachable_demand_points"]
    assert "地图数据 © OpenStreetMap contributors (ODbL)" in facts
    assert ws.freeze_panes == "A2"


def test_summary_tier_table_en(en, run):
    ws = en["Summary"]
    assert header(ws)[:2] == ["tier", "walking distance (m)"]
    tiers = run[0].summary["tiers"]
    names = [ws.cell(row=r, column=1).value for r in range(2, 2 + len(tiers))]
    assert names == list(tiers)  # no labels given: the tier ids
    verdicts = [ws.cell(row=r, column=7).value for r in range(2, 2 + len(tiers))]
    assert verdicts == ["PASS" if t["pass"] else "FAIL" for t in tiers.values()]
    col_a = [c.value for c in ws["A"]]
    assert "Map data © OpenStreetMap contributors (ODbL)" in col_a


def test_summary_with_keys_missing(tmp_path):
    """A partial summary still makes a sheet; share and verdict are derived when absent."""
    path = tmp_path / "results.xlsx"
    summary = {"tiers": {"t": {"target_m": 500, "residents": 200.0, "covered_residents": 180.0}}}
    results_workbook(path, summary=summary, lang="en")
    ws = openpyxl.load_workbook(path)["Summary"]
    assert [c.value for c in ws[2]][:5] == ["t", 500, 200, 180, pytest.approx(0.9)]
    assert ws.cell(row=2, column=7).value is None  # no goal: no verdict
    summary["tiers"]["t"]["goal"] = 85  # a goal in percent
    results_workbook(path, summary=summary, lang="en")
    ws = openpyxl.load_workbook(path)["Summary"]
    assert ws.cell(row=2, column=6).value == pytest.approx(0.85)
    assert ws.cell(row=2, column=7).value == "PASS"
    results_workbook(path, summary={})
    assert openpyxl.load_workbook(path).sheetnames == ["汇总"]


def test_demand_point_sheet_zh(zh, run):
    ws = zh["居民点"]
    csv = pd.read_csv(run[2] / "coverage.csv")
    assert ws.max_row - 1 == len(csv) == len(run[0].coverage.points)
    head = header(ws)
    assert head[:3] == ["居民点编号", "人口", "户数"]
    for label in LABELS.values():
        for what in ("步行距离(m)", "是否覆盖", "最近设施", "状态"):
            assert f"{label} {what}" in head
    assert {c.value for c in column(ws, "5分钟圈 状态")} <= STATUS_ZH
    assert {c.value for c in column(ws, "15分钟圈 是否覆盖")} <= {"是", "否"}
    walk = [c for c in column(ws, "15分钟圈 步行距离(m)") if c.value is not None]
    assert walk and {c.number_format for c in walk} == {"#,##0"}
    assert {c.number_format for c in column(ws, "人口")} == {"#,##0"}
    # the demand ids are those of the CSV, in order
    assert [c.value for c in column(ws, "居民点编号")] == csv["demand_id"].astype(str).tolist()


def test_missing_values_are_empty_cells(zh, run):
    """No "nan"/"None" text anywhere; a point with no station in reach has an empty cell."""
    for ws in zh.worksheets:
        for row in ws.iter_rows(values_only=True):
            assert not {"nan", "NaN", "None", "<NA>", "NaT"} & {
                v for v in row if isinstance(v, str)
            }
    csv = pd.read_csv(run[2] / "coverage.csv")
    missing = int(csv["station_5min_facility_id"].isna().sum())
    assert missing > 0
    cells = column(zh["居民点"], "5分钟圈 最近设施")
    assert sum(c.value is None for c in cells) == missing


def test_cell_sheet_zh(zh, run):
    ws = zh["网格"]
    csv = pd.read_csv(run[2] / "cells.csv")
    assert ws.max_row - 1 == len(csv) == len(run[0].cells)
    head = header(ws)
    assert head[:3] == ["网格编号", "标记", "人口"]
    assert {"15分钟圈 覆盖率", "15分钟圈 覆盖人口", "5分钟圈 责任设施"} <= set(head)
    assert "geometry" not in head
    shares = [c for c in column(ws, "5分钟圈 覆盖率") if c.value is not None]
    assert shares and {c.number_format for c in shares} == {"0.0%"}
    assert all(0 <= c.value <= 1 for c in shares)


def test_facility_and_proposal_sheets_zh(zh, run):
    fac = zh["设施"]
    assert fac.max_row - 1 == len(pd.read_csv(run[2] / "facilities.csv"))
    assert header(fac)[:5] == ["设施编号", "类型", "名称", "已接入路网", "接入距离(m)"]
    assert {c.value for c in column(fac, "类型")} <= {"党群服务中心", "服务站点"}
    prop = zh["建议选址"]
    assert prop.max_row - 1 == len(run[1])
    assert header(prop)[:6] == [
        "编号",
        "类型",
        "排序",
        "新增覆盖人口",
        "经度(WGS84)",
        "纬度(WGS84)",
    ]
    assert {c.number_format for c in column(prop, "经度(WGS84)")} == {"0.000000"}


def test_english_keeps_the_column_ids(en, run):
    frames = _frames(run)
    for sheet, key in zip(EN_SHEETS[1:4], ["coverage", "cells", "facilities"], strict=True):
        cols = [c for c in frames[key].columns if c != "geometry"]
        assert header(en[sheet]) == cols, sheet
    proposals = header(en["Proposals"])  # id, kind, rank, gain, lon, lat first
    assert proposals[:6] == ["id", "kind", "rank", "added_covered_residents", "lon", "lat"]
    assert sorted(proposals) == sorted(c for c in frames["proposals"].columns if c != "geometry")
    covered = {c.value for c in column(en["Demand points"], "centre_15min_covered")}
    assert covered == {True, False}
    shares = column(en["Cells"], "centre_15min_share")
    assert {c.number_format for c in shares if c.value is not None} == {"0.0%"}


def test_every_data_sheet_frozen_and_sized(zh, en):
    for wb in (zh, en):
        for ws in wb.worksheets[1:]:
            assert ws.freeze_panes == "B2"
            for cell in ws[1]:
                width = width_of(ws, cell.column)
                shown = sum(2 if "\u4e00" <= ch <= "\u9fff" else 1 for ch in cell.value)
                assert min(shown, 40) <= width <= 49, (ws.title, cell.value, width)


def test_proposal_coordinates_in_other_systems_follow_lon_lat(run, tmp_path):
    from servicecircle.coords import wgs84_to_gcj02

    proposals = run[1].copy()
    proposals["lon_gcj02"], proposals["lat_gcj02"] = wgs84_to_gcj02(
        proposals["lon"], proposals["lat"]
    )
    path = tmp_path / "results.xlsx"
    results_workbook(path, summary={}, proposals=proposals, lang="en")
    head = header(openpyxl.load_workbook(path)["Proposals"])
    assert head[4:8] == ["lon", "lat", "lon_gcj02", "lat_gcj02"]
    assert "geometry" not in head


def test_lists_in_a_frame_become_text(tmp_path):
    frame = pd.DataFrame({"facility_id": ["a", "b"], "ids": [["x", "y"], None]})
    path = tmp_path / "results.xlsx"
    results_workbook(path, summary={}, facilities=frame, lang="en")
    ws = openpyxl.load_workbook(path)["Facilities"]
    assert [c.value for c in ws["B"]] == ["ids", "x, y", None]


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="lang must be one of zh, en"):
        results_workbook(tmp_path / "results.xlsx", summary={}, lang="fr")
    with pytest.raises(InputError, match=r"must end in \.xlsx"):
        results_workbook(tmp_path / "results.xls", summary={})
    assert not list(tmp_path.iterdir())


def test_user_text_stays_text(tmp_path):
    """A facility name that looks like a formula or a link is written as plain text."""
    frame = pd.DataFrame({"facility_id": ["f1", "f2"], "name": ["=HYPERLINK(1)", "http://x.cn"]})
    path = tmp_path / "results.xlsx"
    results_workbook(path, summary={}, facilities=frame)
    ws = openpyxl.load_workbook(path)["设施"]
    assert [(c.value, c.data_type) for c in ws["B"][1:]] == [
        ("=HYPERLINK(1)", "s"),
        ("http://x.cn", "s"),
    ]
    assert ws["B3"].hyperlink is None
    assert all(c.font.b for c in ws[1])
