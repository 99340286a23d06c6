"""Batch runs on a real Dask LocalCluster: merged results equal one whole-area run."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from conftest import NANJING, shared_file

distributed = pytest.importorskip("dask.distributed", reason="batch runs need dask[distributed]")

from servicecircle.batch import run_batch, tile_partitions  # noqa: E402
from servicecircle.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A real LocalCluster with 2 worker processes, shared by the tests."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c.scheduler_address


def scenario(tmp_path, source, facilities):
    path = tmp_path / "plan.toml"
    path.write_text(
        f'[area]\nsource = "{source}"\n[facilities]\nsource = "{facilities}"\n'
        f'[output]\ndir = "out"\n'
    )
    return path


def assert_equal_to_single(area, single, out):
    merged = pd.read_csv(out / "coverage.csv", dtype={"demand_id": str}).set_index("demand_id")
    one = single.set_index("demand_id")
    assert sorted(merged.index) == sorted(one.index)  # every resident, counted once
    for tier in ("centre_15min", "station_5min"):
        got = merged.loc[one.index, f"{tier}_walk_m"].to_numpy(float)
        want = one[f"{tier}_walk_m"].round(1).to_numpy(float)
        np.testing.assert_allclose(
            np.nan_to_num(got, nan=-1), np.nan_to_num(want, nan=-1), atol=0.051
        )
        assert (
            merged.loc[one.index, f"{tier}_covered"].to_numpy() == one[f"{tier}_covered"].to_numpy()
        ).all()


@pytest.mark.slow
def test_batch_equals_single_run_on_the_demo(tmp_path, demo_area, cluster):
    from servicecircle.plan import run_coverage

    single = run_coverage(demo_area, facilities="demo", out_dir=None).coverage.points
    parts = tile_partitions(demo_area.boundary_wgs84(), 0.6)
    assert 4 <= len(parts) <= 9
    s = run_batch(scenario(tmp_path, "demo", "demo"), parts, scheduler=cluster)
    assert s["failed"] == {}
    assert_equal_to_single(demo_area, single, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "partitions.csv")
    assert (table["status"] == "ok").all() and table["demand_points"].sum() == len(single)
    assert (table["worker_peak_rss_mb"] > 0).all()


@pytest.mark.slow
def test_batch_equals_single_run_on_nanjing(tmp_path, nanjing_area, cluster):
    from servicecircle.plan import run_coverage

    single = run_coverage(nanjing_area, facilities="osm", out_dir=None).coverage.points
    parts = tile_partitions(nanjing_area.boundary_wgs84(), 2.0)
    assert 4 <= len(parts) <= 9
    s = run_batch(scenario(tmp_path, shared_file(NANJING), "osm"), parts, scheduler=cluster)
    assert s["failed"] == {}
    assert_equal_to_single(nanjing_area, single, tmp_path / "out")


@pytest.mark.slow
def test_a_corrupt_partition_is_named_and_the_rest_finish(tmp_path, demo_area, cluster, capsys):
    parts = tile_partitions(demo_area.boundary_wgs84(), 0.9)
    bad = tmp_path / "broken.osm"
    bad.write_text("<osm><node id='1'")
    frame = gpd.GeoDataFrame(
        {"name": [p.name for p in parts], "source": ["demo"] * (len(parts) - 1) + [bad.name]},
        geometry=[p.polygon for p in parts],
        crs=4326,
    )
    frame.to_file(tmp_path / "parts.geojson")
    plan = scenario(tmp_path, "demo", "demo")
    code = main(
        [
            "-q",
            "batch",
            str(plan),
            "--partitions",
            str(tmp_path / "parts.geojson"),
            "--scheduler",
            cluster,
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"partition {parts[-1].name} failed" in err and "malformed OSM XML" in err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert list(s["failed"]) == [parts[-1].name]
    table = pd.read_csv(tmp_path / "o" / "partitions.csv")
    assert (table["status"] == "ok").sum() == len(parts) - 1
    assert s["demand_points"] == table["demand_points"].sum()


def test_bad_batch_input(tmp_path, capsys):
    plan = scenario(tmp_path, "demo", "demo")
    assert main(["batch", str(plan), "--tile-km", "0", "--out", str(tmp_path)]) == 2
    assert "--tile-km must be positive" in capsys.readouterr().err
    assert (
        main(["batch", str(plan), "--tile-km", "1", "--buffer-m", "-5", "--out", str(tmp_path)])
        == 2
    )
    assert "--buffer-m must be zero or more" in capsys.readouterr().err


@pytest.mark.slow
def test_batch_builds_grids_and_proposals_per_partition(tmp_path, demo_area, cluster):
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[area]\nsource = "demo"\n[facilities]\nsource = "demo"\n'
        '[grid]\nkind = "governance"\n'
        '[siting]\ntier = "station_5min"\nnew = 1\nmethod = "greedy"\n'
        '[output]\ndir = "out"\n'
    )
    parts = tile_partitions(demo_area.boundary_wgs84(), 0.9)
    s = run_batch(plan, parts, scheduler=cluster)
    assert s["failed"] == {}
    cells = gpd.read_file(tmp_path / "out" / "cells.gpkg")
    assert cells["cell_id"].is_unique and (cells["partition"].nunique() == len(parts))
    assert cells["population"].sum() == pytest.approx(s["residents"])
    props = gpd.read_file(tmp_path / "out" / "proposals.geojson")
    assert 1 <= len(props) <= len(parts) and props["id"].is_unique
    table = pd.read_csv(tmp_path / "out" / "partitions.csv")
    # one new station per partition at most (none where every resident is covered already)
    assert table["siting_proposals"].sum() == len(props)
