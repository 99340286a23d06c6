"""Demand segments (一老一小, workers), each at its own walking pace."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphs import CRS, make_net, random_network
from servicecircle import InputError
from servicecircle.cli import main
from servicecircle.coverage import compute_coverage
from servicecircle.segments import Segment, add_segments, choose_segments, parse_pairs
from servicecircle.tiers import Tier


def frames(demand_xy, fac_xy, pop=None):
    n = len(demand_xy)
    demand = gpd.GeoDataFrame(
        {"population": pop if pop is not None else np.full(n, 10.0)},
        geometry=gpd.points_from_xy(*np.asarray(demand_xy, float).T),
        crs=CRS,
    )
    fac = gpd.GeoDataFrame(
        {"facility_id": [f"f{i}" for i in range(len(fac_xy))], "kind": "station"},
        geometry=gpd.points_from_xy(*np.asarray(fac_xy, float).reshape(-1, 2).T),
        crs=CRS,
    )
    return demand, fac


def test_five_minutes_is_240_m_for_the_elderly():
    tier = Tier("station_5min", 300.0, ("station",))
    assert tier.walk_minutes == 5
    assert tier.metres_at(48.0) == pytest.approx(240)  # 0.8 m/s
    assert Tier.from_minutes("t", 15, ("centre",)).metres_at(48.0) == pytest.approx(720)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_network(), st.floats(0.3, 1.0))
def test_segment_coverage_is_plain_coverage_at_scaled_metres(case, speed):
    """Oracle: a segment at speed v is covered exactly where the plain engine, run with the
    tier's metres × v / 1.0 m/s, says covered; and never more than adults."""
    xy, edges, demand_xy, fac_xy = case
    net = make_net(xy, edges)
    demand, fac = frames(demand_xy, fac_xy)
    seg = Segment("slow", speed, 0.5)
    tier = Tier("t", 300.0, ("station",))
    cov = compute_coverage(net, add_segments(demand, (seg,)), fac, [tier], segments=(seg,))
    scaled = Tier("t", 300.0 * speed, ("station",))
    plain = compute_coverage(net, demand, fac, [scaled])
    np.testing.assert_array_equal(cov.points["t_slow_covered"], plain.points["t_covered"])
    assert not np.any(cov.points["t_slow_covered"] & ~cov.points["t_covered"])
    s = cov.summary()["tiers"]["t"]["segments"]["slow"]
    assert s["target_m"] == pytest.approx(300 * speed, abs=0.05)
    assert s["share"] <= cov.summary()["tiers"]["t"]["share"] + 1e-12


def test_segment_counts_from_columns_or_shares():
    demand, _ = frames([(0, 0), (1, 1)], [(0, 0)], pop=np.array([100.0, 50.0]))
    demand["elderly"] = [30, None]
    segs = choose_segments(["elderly", "children"], shares={"children": 0.1})
    out = add_segments(demand, segs)
    assert out["elderly"].tolist() == [30.0, 0.0]
    assert out["children"].tolist() == [10.0, 5.0]
    assert out.attrs["segments"]["elderly"]["from"] == "column"
    assert out.attrs["segments"]["children"]["source"] == "given"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ["bad-name"]}, "must start with a letter"),
        ({"shares": {"elderly": -0.1}}, "cannot be negative"),
        ({"shares": {"elderly": 0.7, "children": 0.5}}, "add up to 1.200"),
        ({"speeds": {"elderly": 0}}, "speed must be positive"),
    ],
)
def test_bad_segments_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        choose_segments(kwargs.get("names"), shares=kwargs.get("shares"),
                        speeds=kwargs.get("speeds"))  # fmt: skip


def test_bad_pairs_are_refused():
    with pytest.raises(InputError, match="NAME=NUMBER"):
        parse_pairs("elderly:0.2", "--segment-shares")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segment-shares", "elderly=0.9,children=0.3"], "add up to"),
        (["--segment-shares", "elderly=-1"], "cannot be negative"),
        (["--segments", "9lives"], "must start with a letter"),
    ],
)
def test_segment_options_give_one_line(args, message, tmp_path, capsys):
    assert main(["coverage", "demo", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_demo_states_segments_in_summary_report_and_map(tmp_path):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--out", str(out), "--tiles", "none"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["segments"]["elderly"]["share"] == pytest.approx(0.187)
    assert "census" in s["segments"]["elderly"]["source"]
    eld = s["tiers"]["station_5min"]["segments"]["elderly"]
    assert eld["target_m"] == pytest.approx(240) and eld["speed_m_per_s"] == 0.8
    report = (out / "report.html").read_text()
    assert "老年人" in report and "0.8 m/s" in report and "覆盖最差的人群" in report
    page = (out / "coverage_map.html").read_text()
    assert "老年人 · 5分钟站点服务圈 ≤ 240 m" in page
    cov = pd.read_csv(out / "coverage.csv")
    assert {"elderly", "station_5min_elderly_covered"} <= set(cov.columns)


def test_worker_stations_serve_workers(tmp_path):
    out = tmp_path / "w"
    assert main(["-q", "coverage", "demo", "--preset", "workers", "--preset", "default",
                 "--no-map", "--out", str(out)]) == 0  # fmt: skip
    s = json.loads((out / "summary.json").read_text())
    tier = s["tiers"]["worker_station"]
    assert tier["segment"] == "workers" and tier["residents"] > 0
    assert set(tier["segments"]) == {"workers"}
    cov = pd.read_csv(out / "coverage.csv")
    workers = cov[cov["demand_id"].str.startswith("w")]
    assert len(workers) and (workers["population"] == 0).all()
    assert s["residents"] == pytest.approx(cov["population"].sum(), rel=1e-6)


def test_siting_for_the_elderly_is_siting_at_their_metres(demo_area):
    """`--segment elderly` sites for the elderly counts at 240 m: the same optimum as a plain
    240 m tier with the elderly counts as the demand."""
    from servicecircle.demand import demand_from_buildings
    from servicecircle.plan import run_propose, tier_by_name

    demand = demand_from_buildings(demo_area.buildings, landuse=demo_area.landuse)
    seg = run_propose(demo_area, tier=tier_by_name("station_5min"), new=2, facilities="demo",
                      demand=demand, segment="elderly", method="greedy").report  # fmt: skip
    assert seg["tier"]["target_m"] == pytest.approx(240) and seg["tier"]["segment"] == "elderly"
    elderly = demand.assign(population=demand["population"] * 0.187)
    t240 = Tier("station_5min", 240.0, ("station", "centre"))
    plain = run_propose(demo_area, tier=t240, new=2, facilities="demo", demand=elderly,
                        method="greedy").report  # fmt: skip
    assert seg["covered_after"] == pytest.approx(plain["covered_after"], rel=1e-9)
    assert seg["marginal_gains"] == pytest.approx(plain["marginal_gains"], rel=1e-9)
    weighted = run_propose(demo_area, tier=tier_by_name("station_5min"), new=1,
                           facilities="demo", demand=demand, weights={"elderly": 2.0},
                           method="greedy").report  # fmt: skip
    assert weighted["residents"] == pytest.approx(demand["population"].sum() * 1.187, rel=1e-9)


def test_cells_carry_segment_shares(tmp_path):
    grid = tmp_path / "grid"
    assert main(["-q", "grid", "demo", "--kind", "hex", "--size-m", "400", "--out", str(grid)]) == 0
    out = tmp_path / "cov"
    assert main(["-q", "coverage", "demo", "--cells", str(grid / "cells.gpkg"), "--no-map",
                 "--out", str(out)]) == 0  # fmt: skip
    cells = pd.read_csv(out / "cells.csv")
    assert {"station_5min_elderly_share", "station_5min_share"} <= set(cells.columns)
    both = cells[["station_5min_elderly_share", "station_5min_share"]].dropna()
    assert (both["station_5min_elderly_share"] <= both["station_5min_share"] + 1e-9).all()
