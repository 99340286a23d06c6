"""read_table on files as Chinese planners have them: encodings, Excel, Chinese column names,
Amap/Baidu coordinates; real files written in tmp_path."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from servicecircle import coords
from servicecircle._errors import InputError
from servicecircle.demand import read_demand
from servicecircle.facilities import read_facilities
from servicecircle.files import COLUMN_ALIASES, read_table

CRS = 32650  # UTM 50N, Nanjing
HEADER_ZH = "编号,名称,类型,经度,纬度\n"
ROWS_ZH = "c1,新街口党群服务中心,中心,118.78,32.04\ns1,红色驿站,驿站,118.79,32.045\n"


def write_geojson(path, features, crs=None):
    """A FeatureCollection of points: ``features`` is [(properties, (lon, lat)), …]."""
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": props,
                "geometry": {"type": "Point", "coordinates": list(xy)},
            }
            for props, xy in features
        ],
    }
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def xy(gdf):
    return shapely.get_coordinates(gdf.geometry.to_numpy())


# --- encodings ------------------------------------------------------------------------------
def test_utf8_csv_without_bom(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,name,lon,lat\n1,红色驿站,118.78,32.04\n", encoding="utf-8")
    gdf = read_table(path, "facility file")
    assert gdf["name"].tolist() == ["红色驿站"]
    assert gdf.attrs["encoding"] == "utf-8" and gdf.attrs["coords"] == "wgs84"
    assert xy(gdf).tolist() == [[118.78, 32.04]]


def test_utf8_csv_with_bom_keeps_the_first_header_clean(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,name,lon,lat\n1,红色驿站,118.78,32.04\n", encoding="utf-8-sig")
    gdf = read_table(path, "facility file")
    assert gdf.columns.tolist() == ["id", "name", "geometry"]
    assert gdf.attrs["encoding"] == "utf-8-sig"


def test_gbk_csv_with_chinese_headers_and_names(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(HEADER_ZH + ROWS_ZH, encoding="gbk")
    gdf = read_table(path, "facility file")
    assert gdf.attrs["encoding"] == "gb18030"
    assert gdf.columns.tolist() == ["id", "name", "kind", "geometry"]
    assert gdf["name"].tolist() == ["新街口党群服务中心", "红色驿站"]
    f = read_facilities(path, crs=CRS)
    assert f["facility_id"].tolist() == ["c1", "s1"]
    assert f["kind"].tolist() == ["centre", "station"]


def test_gbk_csv_bad_coordinates_still_name_the_line(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(HEADER_ZH + "c1,中心甲,中心,118.78,32.04\nc2,中心乙,中心,,32.05\n", "gbk")
    with pytest.raises(InputError, match=r"1 row has no valid lon/lat .*first at line 3"):
        read_table(path, "facility file")


def test_csv_in_no_known_encoding(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"id,name,lon,lat\n1,\x80\xff,118.78,32.04\n")
    with pytest.raises(InputError, match=r"f\.csv: is neither UTF-8 nor GB18030.*CSV UTF-8"):
        read_table(path, "facility file")


def test_utf16_csv_is_named(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,lon,lat\n1,118.78,32.04\n", encoding="utf-16")
    with pytest.raises(InputError, match="UTF-16.*save it as CSV UTF-8"):
        read_table(path, "facility file")


# --- Excel ----------------------------------------------------------------------------------
def write_workbook(path):
    first = pd.DataFrame(
        {"编号": ["c1"], "名称": ["中心"], "类型": ["中心"], "经度": [118.78], "纬度": [32.04]}
    )
    second = pd.DataFrame(
        {"id": ["h1", "h2"], "人口": [120, 80], "户数": [40, 30], "lon": [118.781, 118.782],
         "lat": [32.041, 32.042]}
    )  # fmt: skip
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        first.to_excel(writer, sheet_name="设施", index=False)
        second.to_excel(writer, sheet_name="居民", index=False)
    return path


def test_xlsx_first_sheet_by_default(tmp_path):
    path = write_workbook(tmp_path / "plan.xlsx")
    gdf = read_table(path, "facility file")
    assert gdf.attrs["sheet"] == "设施" and gdf.attrs["encoding"] is None
    assert gdf.columns.tolist() == ["id", "name", "kind", "geometry"]
    assert xy(gdf).tolist() == [[118.78, 32.04]]
    assert read_facilities(path, crs=CRS)["kind"].tolist() == ["centre"]


def test_xlsx_named_sheet(tmp_path):
    path = write_workbook(tmp_path / "plan.xlsx")
    gdf = read_table(path, "demand file", sheet="居民")
    assert gdf.attrs["sheet"] == "居民"
    assert gdf["population"].tolist() == [120, 80] and gdf["households"].tolist() == [40, 30]


def test_xlsx_unknown_sheet_lists_the_sheets(tmp_path):
    path = write_workbook(tmp_path / "plan.xlsx")
    with pytest.raises(InputError, match=r"no sheet 'Sheet1'; its sheets are '设施', '居民'"):
        read_table(path, "demand file", sheet="Sheet1")


def test_xlsx_without_lonlat(tmp_path):
    path = tmp_path / "t.xlsx"
    pd.DataFrame({"id": [1], "x_m": [5]}).to_excel(path, index=False)
    with pytest.raises(InputError, match="an Excel sheet needs 'lon' and 'lat'.*found id, x_m"):
        read_table(path, "facility file")


def test_xlsx_header_with_stray_bom_and_spaces(tmp_path):
    path = tmp_path / "t.xlsx"
    frame = pd.DataFrame({"\ufeff编号": ["a"], " 人口 ": [10], "经度": [118.78], "纬度 ": [32.04]})
    frame.to_excel(path, index=False)
    assert read_table(path, "demand file").columns.tolist() == ["id", "population", "geometry"]


def test_old_xls_is_refused(tmp_path):
    path = tmp_path / "t.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InputError, match=r"old Excel \.xls.*save it as \.xlsx.*or as CSV UTF-8"):
        read_table(path, "facility file")


def test_sheet_for_a_csv_is_refused(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,lon,lat\n1,118.78,32.04\n")
    with pytest.raises(InputError, match="only .xlsx files have sheets"):
        read_table(path, "facility file", sheet="设施")


# --- column names ---------------------------------------------------------------------------
def test_aliases_are_documented_and_short():
    assert set(COLUMN_ALIASES.values()) <= {"name", "kind", "lon", "lat", "population",
                                             "households", "id"}  # fmt: skip
    assert len(COLUMN_ALIASES) <= 12


@pytest.mark.parametrize(
    ("header", "first", "second"),
    [
        ("name,名称,lon,lat", "name", "名称"),
        ("id,lon,lat,经度", "lon", "经度"),
        ("id,lng,纬度,经度", "经度", "lng"),
        ("ID,id,lon,lat", "ID", "id"),
        ("名称,设施名称,lon,lat", "名称", "设施名称"),
        ("id,name, name,lon,lat", "name", " name"),
    ],
)
def test_english_and_chinese_column_for_one_thing(tmp_path, header, first, second):
    path = tmp_path / "f.csv"
    n = header.count(",") + 1
    path.write_text(header + "\n" + ",".join(["118.78"] * (n - 1) + ["32.04"]) + "\n")
    with pytest.raises(InputError, match=f"has both '{first}' and '{second}'"):
        read_table(path, "facility file")


def test_x_y_columns_beside_chinese_lonlat_are_not_a_conflict(tmp_path):
    # x/y are often projected metres; 经度/纬度 win the lon/lat lookup
    path = tmp_path / "f.csv"
    path.write_text("id,x,y,经度,纬度\n1,500000,3500000,118.78,32.04\n", encoding="utf-8")
    gdf = read_table(path, "facility file")
    assert xy(gdf).tolist() == [[118.78, 32.04]] and {"x", "y"} <= set(gdf.columns)


def test_geojson_with_chinese_attribute_names(tmp_path):
    path = write_geojson(
        tmp_path / "d.geojson",
        [({"编号": "a", "名称": "一号楼", "人口": 120, "户数": 40}, (118.78, 32.04))],
    )
    gdf = read_table(path, "demand file")
    assert gdf.columns.tolist() == ["id", "name", "population", "households", "geometry"]
    d = read_demand(path, crs=CRS)
    assert d["demand_id"].tolist() == ["a"] and d["population"].tolist() == [120.0]
    assert d["households"].tolist() == [40]


def test_geojson_conflicting_attribute_names(tmp_path):
    path = write_geojson(tmp_path / "d.geojson", [({"人口": 1, "population": 2}, (118.78, 32.04))])
    with pytest.raises(InputError, match="d.geojson: has both '人口' and 'population'"):
        read_table(path, "demand file")


# --- coordinates ----------------------------------------------------------------------------
@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_csv_in_amap_or_baidu_coordinates_is_shifted_to_wgs84(tmp_path, system):
    path = tmp_path / "f.csv"
    path.write_text("id,lon,lat\n1,118.78,32.04\n2,118.79,32.045\n")
    gdf = read_table(path, "facility file", coords=system)
    expected = np.column_stack(coords.to_wgs84([118.78, 118.79], [32.04, 32.045], system))
    np.testing.assert_allclose(xy(gdf), expected, rtol=0, atol=1e-12)
    assert gdf.attrs["coords"] == system
    assert np.abs(xy(gdf) - [[118.78, 32.04], [118.79, 32.045]]).max() > 1e-3  # it did move


def test_csv_gcj02_matches_gcj02_to_wgs84_exactly(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(HEADER_ZH + ROWS_ZH, encoding="gbk")
    gdf = read_table(path, "facility file", coords="GCJ-02")
    lon, lat = coords.gcj02_to_wgs84([118.78, 118.79], [32.04, 32.045])
    assert xy(gdf).tolist() == np.column_stack([lon, lat]).tolist()


def test_geojson_in_gcj02_is_shifted_and_bbox_applies_in_wgs84(tmp_path):
    # at Nanjing GCJ-02 lies ~0.005° east of WGS84: a point's raw (GCJ) x is east of the box,
    # its WGS84 x inside; the box is in WGS84, so the point belongs in
    raw = (118.7850, 32.0400)
    wgs = np.array(coords.gcj02_to_wgs84(*raw)).ravel()
    assert raw[0] - wgs[0] > 0.004
    path = write_geojson(tmp_path / "f.geojson", [({"id": "a"}, raw)])
    bbox = (118.77, 32.03, float(wgs[0]) + 0.001, 32.05)
    gdf = read_table(path, "facility file", coords="gcj02", bbox=bbox)
    assert len(gdf) == 1
    np.testing.assert_allclose(xy(gdf)[0], wgs, rtol=0, atol=1e-12)
    # a raw point inside the box whose WGS84 position is west of it is left out
    out = read_table(
        path, "facility file", coords="gcj02", bbox=(wgs[0] + 0.001, 32.03, 119, 32.05)
    )
    assert len(out) == 0


def test_projected_vector_file_with_gcj02_is_refused(tmp_path):
    path = tmp_path / "f.gpkg"
    gdf = gpd.GeoDataFrame({"id": ["a"]}, geometry=[shapely.Point(668000, 3546000)], crs=CRS)
    gdf.to_file(path)
    assert len(read_table(path, "facility file")) == 1  # fine as WGS84-based data
    with pytest.raises(InputError, match=r"f\.gpkg: is in CRS EPSG:32650.*lon/lat degrees"):
        read_table(path, "facility file", coords="gcj02")


def test_unknown_coords_system(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,lon,lat\n1,118.78,32.04\n")
    with pytest.raises(InputError, match="use one of wgs84, gcj02, bd09"):
        read_table(path, "facility file", coords="baidu")


# --- empty and old behaviour ----------------------------------------------------------------
def test_empty_geojson_holds_no_features(tmp_path):
    path = write_geojson(tmp_path / "f.geojson", [])
    with pytest.raises(InputError, match=r"f\.geojson: holds no features; "):
        read_table(path, "facility file")
    with pytest.raises(InputError, match="holds no features"):
        read_facilities(path, crs=CRS, bbox=(118, 32, 119, 33))


def test_bbox_with_nothing_inside_is_not_an_error(tmp_path):
    path = write_geojson(tmp_path / "f.geojson", [({"id": "a"}, (118.78, 32.04))])
    assert len(read_table(path, "facility file", bbox=(100, 20, 101, 21))) == 0


def test_csv_messages_kept(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,kind,x_m\n1,centre,5\n")
    with pytest.raises(InputError, match="a CSV needs 'lon' and 'lat' columns in degrees"):
        read_table(path, "facility file")
    with pytest.raises(InputError, match=r"unknown file type '\.txt'.*\.xlsx"):
        (tmp_path / "f.txt").write_text("x")
        read_table(tmp_path / "f.txt", "facility file")


def test_to_crs_keeps_the_attrs(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("id,lon,lat\n1,118.78,32.04\n", encoding="utf-8-sig")
    gdf = read_table(path, "facility file", to_crs=CRS, coords="bd09")
    assert gdf.crs == CRS
    assert gdf.attrs["encoding"] == "utf-8-sig" and gdf.attrs["coords"] == "bd09"


def test_a_title_above_the_header_is_skipped_in_excel_and_csv(tmp_path, caplog):
    caplog.set_level("WARNING", logger="servicecircle")
    rows = [
        ["新街口街道驿站清单（2024年）", None, None, None],
        [None, None, None, None],
        ["编号", "类型", "经度", "纬度"],
        [1, "centre", 118.78, 32.04],
        [2, "红色驿站", 118.79, None],
    ]
    xlsx = tmp_path / "titled.xlsx"
    pd.DataFrame(rows).to_excel(xlsx, header=False, index=False)
    csv = tmp_path / "titled.csv"
    pd.DataFrame(rows).to_csv(csv, header=False, index=False)
    for path in (xlsx, csv):
        with pytest.raises(InputError, match=r"1 row has no valid lon/lat .*first at line 5"):
            read_table(path, "facility file")  # the file's own line numbers
        assert "the header is on line 3; the 2 lines above it (a title) skipped" in caplog.text
    pd.DataFrame(rows[:4]).to_csv(tmp_path / "ok.csv", header=False, index=False)
    gdf = read_table(tmp_path / "ok.csv", "facility file")
    assert list(gdf.columns) == ["id", "kind", "geometry"]
    assert gdf.geometry.x.tolist() == [118.78] and gdf["id"].tolist() == [1]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_an_empty_table_is_said_to_be_empty(tmp_path, kind):
    path = tmp_path / f"e.{kind}"
    if kind == "csv":
        path.write_bytes(b"")
    else:
        pd.DataFrame().to_excel(path)
    with pytest.raises(InputError, match=r"is empty \(no header, no rows\)"):
        read_table(path, "facility file")


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_csv_separated_by_semicolons_or_tabs_is_read(tmp_path, sep):
    path = tmp_path / "f.csv"
    path.write_text(
        sep.join(["id", "kind", "lon", "lat"])
        + "\n"
        + sep.join(["7", "centre", "118.78", "32.04"])
        + "\n"
    )
    gdf = read_table(path, "facility file")
    assert gdf["id"].tolist() == [7] and gdf.geometry.x.tolist() == [118.78]


def test_rows_ending_with_a_comma_and_decimal_commas_are_read(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("name,population,lon,lat\nA,100,118.78,32.04,\nB,50,118.79,32.05,\n")
    gdf = read_table(path, "demand file")
    assert gdf["name"].tolist() == ["A", "B"] and gdf.geometry.x.tolist() == [118.78, 118.79]
    path = tmp_path / "f.csv"
    path.write_text("id;kind;lon;lat\n1;centre;118,78;32,04\n2;station;118.79;32.05\n")
    gdf = read_table(path, "facility file")
    assert gdf.geometry.x.tolist() == [118.78, 118.79]
    assert gdf.geometry.y.tolist() == [32.04, 32.05]


def test_rows_with_more_values_than_the_header_are_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("name,population,lon,lat\nA,100,118.78,32.04,extra\n")
    with pytest.raises(InputError, match="some rows have more values than the header line"):
        read_table(path, "demand file")


def test_a_csv_title_line_without_commas_is_skipped(tmp_path, caplog):
    caplog.set_level("WARNING", logger="servicecircle")
    path = tmp_path / "f.csv"
    path.write_text("某街道驿站名单\nid,kind,lon,lat\n1,centre,118.78,32.04\n2,station,118.79,x\n")
    with pytest.raises(InputError, match=r"first at line 4\)"):
        read_table(path, "facility file")
    assert "the header is on line 2; the line above it (a title) skipped" in caplog.text
    path.write_text("某街道驿站名单\nid,kind,lon,lat\n1,centre,118.78,32.04\n")
    assert read_table(path, "facility file")["id"].tolist() == [1]
