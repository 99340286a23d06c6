"""Chinese planners' files as they come: GCJ-02/BD-09 coordinates, GBK CSV with Chinese
headers, Excel sheets; results.xlsx; Amap tiles with every layer shifted to GCJ-02."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import NANJING, shared_file
from servicecircle.cli import main
from servicecircle.coords import wgs84_to_bd09, wgs84_to_gcj02


@pytest.fixture(scope="module")
def nanjing_files(tmp_path_factory):
    """Nanjing's OSM facilities as a planner would get them: WGS84 CSV, GCJ-02 GBK CSV with
    Chinese headers, GCJ-02 Excel sheet, BD-09 CSV."""
    from servicecircle.area import load_area
    from servicecircle.facilities import facilities_from_pois

    path = shared_file(NANJING)
    folder = tmp_path_factory.mktemp("cn")
    fac = facilities_from_pois(load_area(path).pois).to_crs(4326)
    lon, lat = fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy()
    kind = np.where(fac["kind"] == "centre", "中心", "驿站")
    names = fac["name"].astype("string").fillna("")
    pd.DataFrame({"id": fac["facility_id"], "kind": fac["kind"], "lon": lon, "lat": lat}).to_csv(
        folder / "wgs.csv", index=False
    )
    glon, glat = wgs84_to_gcj02(lon, lat)
    cn = pd.DataFrame({"编号": fac["facility_id"], "名称": names, "类型": kind, "经度": glon,
                       "纬度": glat})  # fmt: skip
    cn.to_csv(folder / "gcj_gbk.csv", index=False, encoding="gbk", errors="replace")
    with pd.ExcelWriter(folder / "gcj.xlsx") as xl:
        pd.DataFrame({"说明": ["见下一页"]}).to_excel(xl, sheet_name="封面", index=False)
        cn.to_excel(xl, sheet_name="设施", index=False)
    blon, blat = wgs84_to_bd09(lon, lat)
    cn.assign(经度=blon, 纬度=blat).to_csv(folder / "bd.csv", index=False, encoding="utf-8-sig")
    return path, folder, (lon, lat, glon, glat)


def _coverage(path, folder, name, *extra):
    out = folder / f"out_{name}"
    argv = ["-q", "coverage", str(path), "--facilities", str(folder / name), "--out", str(out)]
    assert main([*argv, "--no-map", *extra]) == 0
    return out


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("gcj_gbk.csv", ["--coords", "gcj02"]),
        ("gcj.xlsx", ["--coords", "gcj02", "--sheet", "设施"]),
        ("bd.csv", ["--coords", "bd09"]),
    ],
)
def test_amap_and_baidu_files_give_the_same_walks(nanjing_files, name, extra):
    path, folder, _ = nanjing_files
    want = pd.read_csv(_coverage(path, folder, "wgs.csv") / "coverage.csv")
    out = _coverage(path, folder, name, *extra)
    got = pd.read_csv(out / "coverage.csv")
    for col in ("centre_15min_walk_m", "station_5min_walk_m"):
        both = want[col].notna()
        assert (got[col].notna() == both).all()
        assert np.abs(got[col][both] - want[col][both]).max() <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["coords"] == extra[1]
    if name.endswith("gbk.csv"):
        assert summary["input"]["facilities"]["encoding"] == "gb18030"
    fac = pd.read_csv(out / "facilities.csv")
    suffix = extra[1]
    assert {"lon", "lat", f"lon_{suffix}", f"lat_{suffix}"} <= set(fac.columns)


def test_outputs_carry_the_input_coordinates_back(nanjing_files):
    path, folder, (lon, lat, glon, glat) = nanjing_files
    out = _coverage(path, folder, "gcj_gbk.csv", "--coords", "gcj02")
    fac = pd.read_csv(out / "facilities.csv").set_index("facility_id")
    # back to the Amap positions the file gave (the inverse is below 0.5 m, ~5e-6°)
    assert np.allclose(fac["lon_gcj02"].to_numpy(), glon, atol=5e-6)
    assert np.allclose(fac["lat_gcj02"].to_numpy(), glat, atol=5e-6)
    assert np.allclose(fac["lon"].to_numpy(), lon, atol=5e-6)
    assert np.allclose(fac["lat"].to_numpy(), lat, atol=5e-6)
    cov = pd.read_csv(out / "coverage.csv")
    assert {"lon", "lat", "lon_gcj02", "lat_gcj02"} <= set(cov.columns)
    assert (cov["lon_gcj02"] - cov["lon"]).abs().min() > 1e-4  # shifted, not copied


def test_results_workbook_matches_the_csvs(nanjing_files):
    openpyxl = pytest.importorskip("openpyxl")
    path, folder, _ = nanjing_files
    out = _coverage(path, folder, "gcj_gbk.csv", "--coords", "gcj02")
    book = openpyxl.load_workbook(out / "results.xlsx", read_only=True)
    assert book.sheetnames[:3] == ["汇总", "居民点", "设施"]
    rows = list(book["汇总"].iter_rows(values_only=True))
    assert rows[0][0] == "服务圈" and rows[1][0] == "15分钟党群服务圈"
    n = len(pd.read_csv(out / "coverage.csv"))
    assert book["居民点"].max_row - 1 == n
    assert book["设施"].max_row - 1 == len(pd.read_csv(out / "facilities.csv"))


def test_a_file_with_both_english_and_chinese_columns_is_refused(tmp_path, capsys):
    bad = tmp_path / "both.csv"
    bad.write_text("id,名称,name,kind,lon,lat\na,甲,A,centre,24.95,60.17\n", encoding="utf-8")
    assert main(["coverage", "demo", "--facilities", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "名称" in err and "name" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_amap_tiles_draw_every_layer_in_gcj02(nanjing_files, tmp_path):
    """On an Amap page a facility's marker sits at its GCJ-02 position (where Amap's streets
    are), not at its WGS84 one."""
    from test_browser import CHROMIUM, open_offline

    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    path, folder, (lon, lat, glon, glat) = nanjing_files
    out = tmp_path / "amap"
    argv = ["-q", "coverage", str(path), "--facilities", str(folder / "wgs.csv"), "--tiles",
            "amap", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page, errors, blocked = open_offline(b, out / "coverage_map.html")
        marks = page.evaluate(
            """() => { const out = []; const l = servicecircleMap.layers;
            Object.keys(l).filter(k => k.startsWith('markers')).forEach(k => l[k].eachLayer(m =>
              out.push([m.getLatLng().lng, m.getLatLng().lat]))); return out; }"""
        )
        attribution = page.locator(".leaflet-control-attribution").inner_text()
        b.close()
    assert errors == []
    assert all("autonavi.com" in u for u in blocked)
    assert "高德" in attribution or "AutoNavi" in attribution
    got = np.array(sorted(marks))
    want = np.array(sorted(zip(glon, glat, strict=True)))
    assert np.allclose(got, want, atol=2e-6)
    wgs = np.array(sorted(zip(lon, lat, strict=True)))
    assert np.abs(got - wgs).max() > 1e-3  # drawn shifted


def test_boundary_coords_apart_from_the_files(tmp_path):
    """Amap (GCJ-02) stations with a WGS84 box copied from the extract's notes:
    ``--boundary-coords wgs84`` keeps the box where it is, so the run equals the all-WGS84 one;
    without it the box is read as GCJ-02 and moves (other residents)."""
    src = str(shared_file(NANJING))
    box = "118.764,32.035,118.796,32.052"
    lon, lat = np.array([118.772, 118.780, 118.788]), np.array([32.040, 32.044, 32.048])
    wgs = pd.DataFrame({"id": ["a", "b", "c"], "kind": ["centre", "station", "station"]})
    wgs.assign(lon=lon, lat=lat).to_csv(tmp_path / "wgs.csv", index=False)
    glon, glat = wgs84_to_gcj02(lon, lat)
    wgs.assign(lon=glon, lat=glat).to_csv(tmp_path / "gcj.csv", index=False)
    gcj = ["--facilities", str(tmp_path / "gcj.csv"), "--coords", "gcj02"]
    runs = {
        "wgs": ["--facilities", str(tmp_path / "wgs.csv")],
        "apart": [*gcj, "--boundary-coords", "wgs84"],
        "together": gcj,
    }
    got = {}
    for name, extra in runs.items():
        out = tmp_path / name
        args = ["-q", "coverage", src, "--boundary", box, *extra, "--out", str(out), "--no-map"]
        assert main(args) == 0
        got[name] = json.loads((out / "summary.json").read_text())
    shares = {k: [t["share"] for t in v["tiers"].values()] for k, v in got.items()}
    assert got["apart"]["demand_points"] == got["wgs"]["demand_points"]
    assert shares["apart"] == pytest.approx(shares["wgs"], abs=1e-9)
    assert got["together"]["demand_points"] != got["wgs"]["demand_points"]
