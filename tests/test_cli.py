"""The command line as a user runs it: outputs, one-line errors, exit code 2."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import NANJING, shared_file
from servicecircle.cli import main


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["-q", "demo", "--out", str(out)]) == 0
    return out


def test_demo_writes_the_outputs(demo_run):
    for name in (
        "summary.json",
        "coverage.csv",
        "coverage.gpkg",
        "facilities.gpkg",
        "coverage_map.html",
    ):
        assert (demo_run / name).stat().st_size > 0, name
    assert not [p for p in demo_run.glob(".*") if p.name != ".servicecircle-runs.json"], (
        "temporary files left behind"
    )


def test_coverage_csv_columns(demo_run):
    with open(demo_run / "coverage.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols = rows[0].keys()
    for tier in ("centre_15min", "station_5min"):
        for suffix in ("_facility_id", "_walk_m", "_covered"):
            assert tier + suffix in cols
    assert {"demand_id", "population"} <= set(cols)
    for row in rows:
        for tier, target in (("centre_15min", 1000), ("station_5min", 300)):
            covered = row[f"{tier}_covered"]
            assert covered in ("true", "false")
            walk = row[f"{tier}_walk_m"]
            if covered == "true":
                assert float(walk) <= target + 0.05 and row[f"{tier}_facility_id"]
            elif walk:
                assert float(walk) > target - 0.05


def test_summary_counts_add_up(demo_run):
    s = json.loads((demo_run / "summary.json").read_text())
    assert s["tiers"]["centre_15min"]["target_m"] == 1000
    assert s["tiers"]["station_5min"]["target_m"] == 300
    for t in s["tiers"].values():
        assert t["covered_residents"] <= t["residents"]
        assert sum(t["points_by_status"].values()) == s["demand_points"]
        assert 0 <= t["share"] <= 1
    assert "unreachable_demand_points" in s and "unsnapped" in s["facilities"]
    # the 1000 m centre tier covers everyone a 300 m tier of centres alone would: every point
    # within 300 m of a centre is within 1000 m of one
    with open(demo_run / "coverage.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        walk = row["centre_15min_walk_m"]
        if walk and float(walk) <= 300:
            assert row["centre_15min_covered"] == "true"
    assert s["attribution"].startswith("Map data © OpenStreetMap contributors")


def test_map_has_layers_legend_and_attribution(demo_run):
    html = (demo_run / "coverage_map.html").read_text()
    assert "<title>社区服务圈覆盖 · demo</title>" in html  # the browser tab names the map
    assert "© OpenStreetMap contributors" in html
    assert "servicecircleMapInit" in html and "党群服务中心" in html
    data = json.loads(html.split('id="sc-data">', 1)[1].split("</script>", 1)[0])
    names = [layer["name"] for layer in data["resident_layers"]]
    assert names[0].startswith("15分钟党群服务圈: 步行 ≤ 1000 m")
    assert names[1].startswith("5分钟站点服务圈: 步行 ≤ 300 m")
    assert any(n.startswith("老年人 · 5分钟站点服务圈 ≤ 240 m") for n in names)
    assert (
        data["residents"]["n"]
        == json.loads((demo_run / "summary.json").read_text())["demand_points"]
    )


def test_coverage_on_nanjing_with_osm_facilities_and_english_map(tmp_path):
    out = tmp_path / "nj"
    code = main(
        [
            "-q",
            "coverage",
            str(shared_file(NANJING)),
            "--facilities",
            "osm",
            "--tier",
            "station_5min=300:station,centre",
            "--tier",
            "centre_15min=15min",
            "--lang",
            "en",
            "--tiles",
            "none",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["tiers"]["centre_15min"]["target_m"] == 900  # 15 min × 60 m/min, stated in metres
    assert s["tiers"]["centre_15min"]["minutes"] == 15
    assert "covered" in (out / "coverage_map.html").read_text()


def test_coverage_with_user_files(tmp_path, demo_area):
    fac = tmp_path / "fac.csv"
    fac.write_text(
        "id,kind,name,lon,lat\nc1,centre,Town hall,24.9527,60.1683\ns1,station,Far away,25.5,60.5\n"
    )
    dem = tmp_path / "dem.csv"
    dem.write_text(
        "id,population,lon,lat\nh1,120,24.9500,60.1690\nh2,80,24.9420,60.1700\nh3,50,24.80,60.10\n"
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "-q",
                "coverage",
                "demo",
                "--facilities",
                str(fac),
                "--demand",
                str(dem),
                "--out",
                str(out),
                "--no-map",
            ]
        )
        == 0
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["facilities"]["unsnapped_ids"] == ["s1"]
    # h3 lies about 9 km outside the demo's boundary: left out of the run, and counted
    assert s["demand"]["far_outside_boundary"] == 1
    assert s["demand"]["residents_far_outside_boundary"] == 50
    assert s["unreachable_demand_points"] == 0 and s["residents"] == 200
    with open(out / "coverage.csv", newline="") as fh:
        rows = {r["demand_id"]: r for r in csv.DictReader(fh)}
    assert sorted(rows) == ["h1", "h2"]
    assert rows["h1"]["centre_15min_facility_id"] == "c1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["coverage", "nowhere.osm.pbf", "--facilities", "x.csv"], "no such file"),
        (["coverage", "demo", "--facilities", "missing.geojson"], "facility file"),
        (["coverage", "demo", "--tier", "bad"], "unknown tier 'bad'"),
        (["coverage", "demo", "--tier", "bad=x"], "is not NAME=METRES"),
        (["coverage", "demo", "--tier", "x=-5"], "positive number of metres"),
        (["coverage", "demo", "--tier", "x=300:hospital"], "unknown facility kind 'hospital'"),
        (["coverage", "demo", "--goal", "1.5"], "--goal must be a share"),
        (["coverage", "demo", "--preset", "nope"], "unknown preset 'nope'"),
        (["coverage", "demo", "--boundary", "10,50,10.01,50.01"], "no walkable street"),
        (["coverage", "demo", "--snap-limit-m", "0"], "snap limit must be a positive"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, message, tmp_path, capsys):
    code = main(["-q", *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("servicecircle: error: ")
    assert "Traceback" not in err


def test_a_facility_file_with_a_header_only_says_it_has_no_rows(tmp_path, capsys):
    fac = tmp_path / "fac.csv"
    fac.write_text("name,lon,lat,kind\n", encoding="utf-8")
    code = main(["-q", "coverage", "demo", "--facilities", str(fac), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"facility file {fac} has no rows" in err
    assert not (tmp_path / "o").exists()


def test_non_demo_area_needs_facilities(tmp_path, capsys):
    assert main(["coverage", str(shared_file(NANJING)), "--out", str(tmp_path)]) == 2
    assert "--facilities is required" in capsys.readouterr().err


def test_console_script_exit_code_without_traceback(tmp_path):
    bad = tmp_path / "broken.osm"
    bad.write_text("<osm><node id='1'")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "servicecircle",
            "coverage",
            str(bad),
            "--facilities",
            "osm",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "malformed OSM XML" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o" / "summary.json").exists()


def test_console_script_finishes_every_file_and_line_before_it_exits(tmp_path):
    """The program ends with os._exit once main returns: what it printed to a pipe and what
    the forked writers wrote must all be there (the same as main() in-process gives)."""
    out = tmp_path / "o"
    proc = subprocess.run(
        [sys.executable, "-m", "servicecircle", "coverage", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.rstrip().splitlines()
    last = next(line for line in lines if line.startswith("wrote "))
    assert last.endswith(f" to {out}")
    assert lines[-1] == f"open {out / 'coverage_map.html'} and report.html in a browser"
    for name in last[len("wrote ") : -len(f" to {out}")].split(", "):
        assert (out / name).stat().st_size > 0, name
    assert "</html>" in (out / "coverage_map.html").read_text(encoding="utf-8")[-200:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["residents"] > 0 and summary["files"]


def test_a_reader_that_stops_reading_ends_the_program_without_a_traceback(tmp_path):
    """``servicecircle … | head -1`` with unbuffered output (PYTHONUNBUFFERED=1, common in
    containers): the summary cannot be printed, the files are all written, exit code 141."""
    out = tmp_path / "o"
    proc = subprocess.Popen(
        [sys.executable, "-m", "servicecircle", "coverage", "demo", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is printed
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert (out / "coverage_map.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["files"]


def test_map_title_is_text_not_markup(demo_area):
    from servicecircle.maps import layers_map, map_html

    title = "</title><script>window.__pwned=1</script> 驿站 & co"
    page = map_html(layers_map(demo_area, lambda pc: {}, tiles="none", title=title))
    assert (
        "<title>&lt;/title&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt; 驿站 &amp; co</title>"
        in page
    )


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["coverage", "--help"])
    assert exc.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_facilities_outside_a_boundary_are_said_to_be_outside(tmp_path, capsys):
    """A boundary around part of the demo: the facilities beyond it that no street of the area
    reaches are reported as outside the boundary, not as if misplaced."""
    out = tmp_path / "o"
    box = "24.935,60.165,24.945,60.170"
    argv = ["coverage", "demo", "--boundary", box, "--no-map", "--no-cache", "--out", str(out)]
    assert main(argv) == 0
    fac = json.loads((out / "summary.json").read_text())["facilities"]
    assert fac["unsnapped"] > 0 and fac["unsnapped_outside_boundary"] == fac["unsnapped"]
    line = next(x for x in capsys.readouterr().out.splitlines() if "(not used" in x)
    assert f"0 inside the boundary, {fac['unsnapped']} outside it" in line


def test_facilities_of_a_kind_no_tier_counts_are_said_so(tmp_path, capsys):
    """A worker station (暖新驿站) in a file run with the default tiers is not counted, and the
    run says so with the preset that counts it; 红色驿站 is a station."""
    fac = tmp_path / "f.csv"
    fac.write_text(
        "id,kind,lon,lat\n1,党群服务中心,24.94,60.167\n2,红色驿站,24.942,60.168\n"
        "3,暖新驿站,24.938,60.166\n",
        encoding="utf-8",
    )
    out = tmp_path / "o"
    argv = ["coverage", "demo", "--facilities", str(fac), "--no-map", "--no-cache", "--out"]
    assert main([*argv, str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["facilities"]["by_kind"] == {"centre": 1, "station": 1, "worker_station": 1}
    assert summary["facilities"]["in_no_tier"] == {"worker_station": 1}
    assert summary["tiers"]["station_5min"]["facilities"] == 2  # (stations or centres)
    printed = capsys.readouterr().out
    assert "1 facility of kind worker_station in no tier (not counted; --preset workers" in printed


def test_a_boundary_read_in_the_files_amap_coordinates_is_said_so(tmp_path, capsys):
    box = "24.935,60.165,24.945,60.170"
    argv = ["coverage", "demo", "--boundary", box, "--coords", "gcj02", "--no-map", "--no-cache"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    note = "note: --boundary read in GCJ-02 (Amap) coordinates, like the files (--coords gcj02)"
    assert note in capsys.readouterr().out
    assert main([*argv, "--boundary-coords", "wgs84", "--out", str(tmp_path / "b")]) == 0
    assert "note:" not in capsys.readouterr().out


def test_demand_names_reach_the_table(tmp_path):
    dem = tmp_path / "d.csv"
    dem.write_text(
        "小区名称,population,lon,lat\n幸福小区,100,24.94,60.167\n,200,24.941,60.1672\n",
        encoding="utf-8",
    )
    out = tmp_path / "o"
    argv = ["coverage", "demo", "--demand", str(dem), "--no-map", "--no-cache", "--out", str(out)]
    assert main(argv) == 0
    with open(out / "coverage.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["幸福小区", ""]
    assert list(rows[0])[:3] == ["demand_id", "name", "population"]


def test_a_tier_that_counts_workers_says_so(tmp_path, capsys):
    argv = ["coverage", "demo", "--preset", "workers", "--no-map", "--no-cache"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    tier = json.loads((tmp_path / "o" / "summary.json").read_text())["tiers"]["worker_station"]
    line = next(x for x in capsys.readouterr().out.splitlines() if "worker_station" in x)
    assert f"(workers: {tier['covered_residents']:,.0f} of {tier['residents']:,.0f})" in line
