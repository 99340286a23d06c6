"""Fuzzing the command line with users' files: random subsets of optional columns, nulls,
wrong types, duplicate ids, empty files, points far away, other CRSs, encodings and formats.

Every run either succeeds or exits 2 with one line naming the input; never a traceback, never
a file left behind. The area is read once per session (the files are what is fuzzed, not the OSM
reader).
"""

from __future__ import annotations

import functools
import json
import string
import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servicecircle import InputError
from servicecircle.cli import main

# a box inside the demo area (Helsinki centre)
W, S, E, N = 24.925, 60.160, 24.960, 60.175
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module", autouse=True)
def area_read_once():
    import servicecircle.area as area_module

    real = area_module.load_area
    memo = functools.lru_cache(maxsize=4)(lambda source, boundary: real(source, boundary=boundary))

    def load(source, *, boundary=None, name=None, **_):
        return memo(str(source), boundary if not isinstance(boundary, list) else tuple(boundary))

    area_module.load_area = load
    yield
    area_module.load_area = real


text = st.text(alphabet=string.ascii_letters + "驿站中心<>&'\"${}` ", min_size=0, max_size=12)
ids = st.one_of(
    st.integers(0, 40),
    st.floats(0, 40),
    st.just(float("nan")),
    text,
    st.none(),
)
kinds = st.one_of(st.sampled_from(["centre", "station", "中心", "站点", "驿站", "CENTER"]), text,
                  st.integers(), st.none())  # fmt: skip
population = st.one_of(
    st.floats(0, 5000, allow_nan=False),
    st.integers(-5, 5000),
    st.sampled_from(["", "n/a", "100", None, float("inf"), float("nan")]),
)


@st.composite
def points(draw, n):
    far = draw(st.booleans()) and draw(st.integers(0, 3)) == 0
    xs, ys = [], []
    for _ in range(n):
        if far and draw(st.booleans()):
            xs.append(draw(st.floats(100, 120)))
            ys.append(draw(st.floats(20, 40)))
        else:
            xs.append(draw(st.floats(W, E)))
            ys.append(draw(st.floats(S, N)))
    return xs, ys


@st.composite
def table(draw, kind):
    n = draw(st.integers(0, 6))
    xs, ys = draw(points(n))
    cols: dict[str, list] = {}
    if kind == "facilities":
        if draw(st.integers(0, 9)):
            cols["id"] = [draw(ids) for _ in range(n)]
        if draw(st.integers(0, 9)):
            cols["kind"] = [draw(kinds) for _ in range(n)]
    else:
        if draw(st.booleans()):
            cols["id"] = [draw(ids) for _ in range(n)]
        if draw(st.integers(0, 9)):
            cols["population"] = [draw(population) for _ in range(n)]
        if draw(st.booleans()):
            cols["households"] = [draw(st.one_of(population, text)) for _ in range(n)]
    if draw(st.booleans()):
        cols["name"] = [draw(st.one_of(text, st.none(), st.integers())) for _ in range(n)]
    if draw(st.booleans()):
        cols["extra"] = [draw(st.one_of(text, st.floats(allow_nan=True))) for _ in range(n)]
    fmt = draw(st.sampled_from(["geojson", "gpkg", "csv", "csv-bom", "xlsx"]))
    crs = draw(st.sampled_from([4326, 3857, 32635]))
    return cols, xs, ys, fmt, crs


def write(cols, xs, ys, fmt, crs, path: Path) -> Path:
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in cols.items()})
    if fmt.startswith("csv") or fmt == "xlsx":
        frame["lon"], frame["lat"] = xs, ys
        if fmt == "xlsx":
            path = path.with_suffix(".xlsx")
            frame.to_excel(path, index=False)
        else:
            path = path.with_suffix(".csv")
            frame.to_csv(path, index=False, encoding="utf-8-sig" if fmt == "csv-bom" else "utf-8")
        return path
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(xs, ys), crs=4326).to_crs(crs)
    for col in gdf.columns.drop("geometry"):  # GDAL wants one type per column
        gdf[col] = gdf[col].map(lambda v: None if v is None else str(v))
    path = path.with_suffix("." + fmt)
    gdf.to_file(path, driver="GPKG" if fmt == "gpkg" else "GeoJSON")
    return path


def run_and_check(argv, out: Path, tmp: Path, capsys) -> int:
    before = {p.name for p in tmp.iterdir()}
    code = main(argv)  # a traceback here fails the test
    captured = capsys.readouterr()
    assert code in (0, 2), code
    if code == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("servicecircle: error: "), captured.err
        assert not out.exists(), "a failed run left its output folder"
    else:
        written = list(out.glob("*.json"))
        assert written
        for path in written:  # valid JSON: no NaN, no Infinity
            text = path.read_text()
            assert "NaN" not in text and "Infinity" not in text, path
            json.loads(text)
    after = {p.name for p in tmp.iterdir()}
    assert not [n for n in after - before if n.startswith(".")], "staging left behind"
    return code


@FUZZ
@given(fac=table("facilities"), dem=st.one_of(st.none(), table("demand")), data=st.data())
def test_coverage_survives_users_files(fac, dem, data, tmp_path_factory, capsys):
    tmp = tmp_path_factory.mktemp("fuzz")
    fpath = write(*fac, tmp / "facilities")
    argv = ["coverage", "demo", "--facilities", str(fpath), "--boundary", f"{W},{S},{E},{N}"]
    if dem is not None:
        argv += ["--demand", str(write(*dem, tmp / "demand"))]
    if data.draw(st.booleans()):
        argv += ["--no-map"]
    out = tmp / "out"
    run_and_check([*argv, "--out", str(out), "--tiles", "none"], out, tmp, capsys)


@FUZZ
@given(cand=table("facilities"), data=st.data())
def test_propose_survives_users_candidates(cand, data, tmp_path_factory, capsys):
    tmp = tmp_path_factory.mktemp("fuzzp")
    cpath = write(*cand, tmp / "candidates")
    new = data.draw(st.integers(-1, 3))
    out = tmp / "out"
    argv = ["propose", "demo", "--tier", "station_5min", "--new", str(new), "--candidates",
            str(cpath), "--boundary", f"{W},{S},{E},{N}", "--no-map",
            "--out", str(out)]  # fmt: skip
    run_and_check(argv, out, tmp, capsys)


SECTIONS = {
    "area": ["source", "boundary", "name", "fragment_max_nodes", "sourse"],
    "demand": ["source", "household_size", "default_levels"],
    "facilities": ["source"],
    "tiers": ["preset", "goal", "labels", "speed_m_per_min"],
    "grid": ["kind", "size_m", "h3_res", "households"],
    "siting": ["tier", "new", "goal", "method", "capacity"],
    "output": ["dir", "map", "lang", "tiles", "snap_limit_m"],
    "input": ["coords", "sheet"],
    "extra": ["x"],
}
values = st.one_of(
    st.integers(-10, 2000),
    st.floats(-1, 2, allow_nan=False),
    st.booleans(),
    st.sampled_from(
        [
            "demo",
            "buildings",
            "osm",
            "default",
            "hex",
            "governance",
            "station_5min",
            "zh",
            "en",
            "gcj02",
            "nowhere.csv",
            "exact",
        ]
    ),
    st.lists(st.integers(0, 600), max_size=4),
)


@settings(max_examples=150, deadline=None)
@given(body=st.dictionaries(st.sampled_from(sorted(SECTIONS)), st.dictionaries(
    st.sampled_from(sorted({k for v in SECTIONS.values() for k in v})), values, max_size=4),
    max_size=6))  # fmt: skip
def test_scenario_files_are_checked_not_crashed(body, tmp_path_factory):
    from servicecircle.scenario import load_scenario

    tmp = tmp_path_factory.mktemp("sc")
    lines = []
    for section, keys in body.items():
        lines.append(f"[{section}]")
        for key, value in keys.items():
            lines.append(f"{key} = {json.dumps(value)}")
    path = tmp / "plan.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tomllib.loads(path.read_text())  # the fuzzer writes valid TOML
    try:
        load_scenario(path)
    except InputError as err:
        assert "\n" not in str(err) and str(err).startswith(f"scenario {path}")


def test_a_run_interrupted_after_its_first_file_leaves_out_as_it_was(tmp_path, monkeypatch):
    """Ctrl-C after the first file is written: --out keeps exactly what it held."""
    from servicecircle.outputs import RunOutput

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "coverage.csv").write_text("old results")
    real = RunOutput._write
    calls = []

    def interrupting(self, name, writer, **how):
        real(self, name, writer, **how)
        calls.append(name)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunOutput, "_write", interrupting)
    code = main(["-q", "coverage", "demo", "--out", str(out), "--no-map"])
    assert code == 130 and calls == ["coverage.gpkg"]
    assert sorted(p.name for p in out.iterdir()) == ["coverage.csv", "keep.txt"]
    assert (out / "coverage.csv").read_text() == "old results"
    # and a new folder is not even created
    code = main(["-q", "coverage", "demo", "--out", str(tmp_path / "new" / "out"), "--no-map"])
    assert code == 130 and not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "FILE"], "is a file, not a folder"),
        (["--out", "FILE/sub"], "is a file, so no folder can be made under it"),
        (["--boundary", "1,2,3"], "give W,S,E,N"),
        (["--tier", "x=300:驿站", "--tier", "y=300:nope"], "unknown facility kind 'nope'"),
        (["--tier-label", "nope=x"], "no such tier"),
        (["--tiles", "tianditu"], "needs a Tianditu key"),
        (["--out", "/proc/servicecircle-out"], "no folder can be made in /proc"),
        (["--segments", "foo"], "segment 'foo': the demand has no 'foo' column"),
    ],
)
def test_bad_options_are_refused_before_any_work(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TIANDITU_KEY", raising=False)
    (tmp_path / "FILE").write_text("x")
    argv = ["coverage", "demo"]
    args = [a.replace("FILE", str(tmp_path / "FILE")) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "o")]
    assert main([*argv, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_swapped_lon_lat_is_named(tmp_path, capsys):
    fac = tmp_path / "f.csv"
    fac.write_text("id,kind,lon,lat\na,centre,60.17,24.95\n")
    assert main(["coverage", "demo", "--facilities", str(fac), "--out", str(tmp_path / "o")]) == 2
    assert "lon and lat look swapped" in capsys.readouterr().err


def test_one_swapped_row_among_good_ones_is_named_with_its_line(tmp_path, capsys):
    """Both values are valid degrees, so only the other rows tell: without this the facility
    is a continent away and only shows up as one not used."""
    fac = tmp_path / "f.csv"
    fac.write_text(
        "lon,lat,kind\n24.94,60.17,centre\n24.95,60.16,station\n60.16,24.94,station\n"
        "24.93,60.17,station\n"
    )
    out = tmp_path / "o"
    assert main(["coverage", "demo", "--facilities", str(fac), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1 row has lon and lat that look swapped (first at line 4" in err
    assert err.count("\n") == 1 and not out.exists()


def test_infinite_population_and_null_facility_ids_are_refused(tmp_path, capsys):
    dem = tmp_path / "d.csv"
    dem.write_text("population,lon,lat\ninf,24.95,60.17\n")
    assert main(["coverage", "demo", "--demand", str(dem), "--out", str(tmp_path / "o")]) == 2
    assert "infinite population" in capsys.readouterr().err
    fac = gpd.GeoDataFrame(
        {"id": [None, "b"], "kind": ["centre", "station"]},
        geometry=[shapely.Point(24.95, 60.17), shapely.Point(24.94, 60.17)],
        crs=4326,
    )
    fac.to_file(tmp_path / "f.geojson")
    argv = ["coverage", "demo", "--facilities", str(tmp_path / "f.geojson")]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert "1 facility has no id (first at feature 1)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            "d1,100,24.94,60.167\nd2,,24.941,60.167\n",
            "1 row has a missing or non-numeric population (first at line 3: empty)",
        ),
        (
            "d1,100,24.94,60.167\nd2,-5,24.941,60.167\nd3,-1,24.9,60.1\n",
            "2 rows have a negative population (first at line 3: -5)",
        ),
        ("d1,lots,24.94,60.167\n", "(first at line 2: 'lots')"),
    ],
    ids=["empty", "negative", "text"],
)
def test_a_bad_population_is_named_by_its_line_and_value(tmp_path, capsys, rows, expected):
    dem = tmp_path / "d.csv"
    dem.write_text("id,population,lon,lat\n" + rows)
    assert main(["coverage", "demo", "--demand", str(dem), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert expected in err and "np.float64" not in err


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        (
            "32.035,118.764,32.052,118.796",
            "latitude 118.796 is impossible — "
            "32.035,118.764,32.052,118.796 looks like lat,lon order; give west, south, east, "
            "north: 118.764,32.035,118.796,32.052",
        ),
        ("600000,3200000,610000,3210000", "is not in degrees"),
        ("24.9,60.1,nan,60.2", "is not in degrees"),
    ],
    ids=["lat-lon-order", "metres", "nan"],
)
def test_a_boundary_not_in_lon_lat_degrees_is_refused_with_the_fix(tmp_path, capsys, box, expected):
    argv = ["coverage", "demo", f"--boundary={box}", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_optional_columns_absent_everywhere(tmp_path, capsys):
    """Facilities with only id, kind and coordinates (numeric ids, no name) and demand with only
    population and coordinates: every command and every output works, labels fall back to ids."""
    fac = tmp_path / "f.csv"
    fac.write_text("id,kind,lon,lat\n1,centre,24.9527,60.1683\n2,station,24.9400,60.1660\n")
    dem = tmp_path / "d.csv"
    rng = np.random.default_rng(1)
    pops, xs, ys = rng.integers(10, 200, 30), rng.uniform(W, E, 30), rng.uniform(S, N, 30)
    rows = [f"{p},{x:.5f},{y:.5f}" for p, x, y in zip(pops, xs, ys, strict=True)]
    dem.write_text("population,lon,lat\n" + "\n".join(rows) + "\n")
    out = tmp_path / "cov"
    assert main(["-q", "coverage", "demo", "--facilities", str(fac), "--demand", str(dem),
                 "--tiles", "none", "--out", str(out)]) == 0  # fmt: skip
    facilities = pd.read_csv(out / "facilities.csv", dtype=str)
    assert facilities["facility_id"].tolist() == ["1", "2"]
    html = (out / "coverage_map.html").read_text()
    assert '"tip":"1 · ' in html and "nan" not in html.split('id="sc-data">')[1][:200000]
    cov = pd.read_csv(out / "coverage.csv", dtype=str)
    assert set(cov["centre_15min_facility_id"].dropna()) <= {"1"}
    assert cov["demand_id"].str.startswith("d").all()
    prop = tmp_path / "prop"
    assert main(["-q", "propose", "demo", "--facilities", str(fac), "--demand", str(dem),
                 "--tier", "station_5min", "--new", "1", "--tiles", "none",
                 "--out", str(prop)]) == 0  # fmt: skip
    assert (prop / "proposals_map.html").exists()
    aud = tmp_path / "aud"
    assert main(["-q", "audit", "demo", "--demand", str(dem), "--tiles", "none",
                 "--out", str(aud)]) == 0  # fmt: skip
    assert (aud / "audit.csv").exists()


def test_output_folders_are_made_as_mkdir_makes_them(tmp_path):
    """Staged in a private temporary folder, the output folder still gets the mode a plain
    mkdir gives (colleagues and web servers can open the maps), not mkdtemp's 0700."""
    import os
    import stat

    out = tmp_path / "new"
    assert main(["-q", "coverage", "demo", "--out", str(out), "--no-map"]) == 0
    os.mkdir(tmp_path / "plain")
    want = stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    assert stat.S_IMODE(os.stat(out).st_mode) == want


def test_a_planners_list_without_ids_gbk_chinese_headers(tmp_path, capsys):
    """名称, 类型, 经度, 纬度 and nothing else, in GBK: ids f1, f2… by row; the names shown."""
    fac = tmp_path / "驿站.csv"
    fac.write_bytes(
        "名称,类型,经度,纬度\n中心甲,中心,24.95,60.17\n驿站乙,驿站,24.94,60.17\n".encode("gbk")
    )
    out = tmp_path / "o"
    assert main(["-q", "coverage", "demo", "--facilities", str(fac), "--out", str(out)]) == 0
    table = pd.read_csv(out / "facilities.csv")
    assert list(table["facility_id"]) == ["f1", "f2"]
    assert list(table["name"]) == ["中心甲", "驿站乙"]
    assert "中心甲" in (out / "coverage_map.html").read_text(encoding="utf-8")


def test_a_poi_file_with_the_chinese_type_header(tmp_path):
    from servicecircle.standard import read_pois

    pois = tmp_path / "p.csv"
    pois.write_text("名称,类型,经度,纬度\n幼儿园甲,幼儿园,24.95,60.17\n", encoding="utf-8")
    got = read_pois(pois, crs="EPSG:32635", standard="gb50180")
    assert len(got) == 1 and got["poi_id"].iloc[0] == "p00001"


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".parquet", ".csv"])
def test_ids_made_from_rows_do_not_depend_on_the_part_read(tmp_path, suffix):
    """Without an id column, ids come from the file's rows; a batch task reads only the part
    of the file near its tile, and the second feature must still be f2 / d1 there (a renumbered
    part gave two different facilities one id, and the merge kept one of them)."""
    from servicecircle.demand import read_demand
    from servicecircle.facilities import read_facilities

    lon = np.array([24.90, 24.95, 24.96, 25.00])
    frame = gpd.GeoDataFrame(
        {"kind": ["centre", "station", "station", "station"], "population": [5, 6, 7, 8]},
        geometry=gpd.points_from_xy(lon, np.full(4, 60.17)),
        crs=4326,
    )
    path = tmp_path / f"f{suffix}"
    if suffix == ".csv":
        frame.assign(lon=lon, lat=60.17).drop(columns="geometry").to_csv(path, index=False)
    elif suffix == ".parquet":
        pytest.importorskip("pyarrow", reason="GeoParquet needs pyarrow, not installed here")
        frame.to_parquet(path)
    else:
        frame.to_file(path)
    part = (24.94, 60.0, 24.97, 60.3)  # the 2nd and 3rd features
    crs = "EPSG:32635"
    whole = read_facilities(path, crs=crs)
    some = read_facilities(path, crs=crs, bbox=part)
    assert list(whole["facility_id"]) == ["f1", "f2", "f3", "f4"]
    assert list(some["facility_id"]) == ["f2", "f3"]
    assert read_demand(path, crs=crs, bbox=part)["demand_id"].tolist() == ["d1", "d2"]
    assert read_demand(path, crs=crs)["demand_id"].tolist() == ["d0", "d1", "d2", "d3"]
