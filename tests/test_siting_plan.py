"""Siting on real areas: proposals, existing facilities kept, spopt agreement, bad input."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

from servicecircle import InputError
from servicecircle.cli import main
from servicecircle.plan import run_propose, tier_by_name
from servicecircle.siting import coverage_matrix, solve_max_cover


def test_coverage_matrix_equals_nearest_distances(demo_network, demo_area):
    """Each candidate's column equals single-facility walking distances (oracle: the
    coverage engine run with that candidate alone)."""
    from servicecircle.coverage import nearest_facility

    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = demo_area.boundary.bounds
    dem = np.column_stack([rng.uniform(minx, maxx, 200), rng.uniform(miny, maxy, 200)])
    cand = np.column_stack([rng.uniform(minx, maxx, 12), rng.uniform(miny, maxy, 12)])
    dsnap, csnap = demo_network.snap(dem), demo_network.snap(cand)
    m = coverage_matrix(demo_network, dsnap, csnap, target_m=400, memory_mb=1).toarray()
    for j in range(len(cand)):
        walk, _ = nearest_facility(demo_network, dsnap, csnap.subset(np.array([j])), limit_m=400)
        want = np.where(np.isfinite(walk), walk, 0.0)
        np.testing.assert_allclose(m[:, j], want, atol=1e-6)


@pytest.fixture(scope="module")
def proposal(tmp_path_factory, demo_area):
    out = tmp_path_factory.mktemp("prop")
    report = run_propose(
        demo_area,
        tier=tier_by_name("station_5min"),
        new=3,
        facilities="demo",
        out_dir=out,
        tiles="none",
    ).report
    return out, report


def test_proposals_are_written(proposal):
    out, _ = proposal
    geo = json.loads((out / "proposals.geojson").read_text())
    props = [f["properties"] for f in geo["features"]]
    assert [p["rank"] for p in props] == [1, 2, 3]
    assert {"id", "kind", "rank", "added_covered_residents", "lon", "lat"} <= set(props[0])
    gains = [p["added_covered_residents"] for p in props]
    assert gains == sorted(gains, reverse=True)
    s = json.loads((out / "siting.json").read_text())
    assert s["covered_after"] == pytest.approx(s["covered_before"] + sum(s["marginal_gains"]))
    assert s["optimal"] is True and s["gap"] == 0
    assert s["tier"]["target_m"] == 300
    assert (out / "proposals_map.html").exists() and (out / "proposals.gpkg").exists()


def test_existing_facilities_are_kept_and_never_worse(demo_area, proposal):
    _, report = proposal
    # the coverage before equals the coverage of the existing facilities alone
    from servicecircle.plan import run_coverage

    res = run_coverage(demo_area, facilities="demo", out_dir=None)
    assert report["covered_before"] == pytest.approx(
        res.summary["tiers"]["station_5min"]["covered_residents"]
    )
    # three sites were placed and each added residents (the plan is not empty)
    assert report["proposals"] == 3 and min(report["marginal_gains"]) > 0
    assert report["covered_after"] == pytest.approx(
        report["covered_before"] + sum(report["marginal_gains"])
    )
    assert report["covered_after"] > report["covered_before"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_exact_equals_spopt_on_the_same_matrix(demo_network, demo_area):
    pulp = pytest.importorskip("pulp", reason="spopt comparison needs the spopt test extra")
    locate = pytest.importorskip("spopt.locate", reason="spopt comparison needs spopt")
    from servicecircle.demand import demand_from_buildings

    d = demand_from_buildings(demo_area.buildings, landuse=demo_area.landuse)
    rng = np.random.default_rng(2)
    minx, miny, maxx, maxy = demo_area.boundary.bounds
    cand = np.column_stack([rng.uniform(minx, maxx, 40), rng.uniform(miny, maxy, 40)])
    m = coverage_matrix(demo_network, demo_network.snap(d), demo_network.snap(cand), target_m=300)
    w = d["population"].to_numpy()
    ours = solve_max_cover(m, w, 4)
    cost = np.where(m.toarray() > 0, m.toarray(), 1e6)
    model = locate.MCLP.from_cost_matrix(cost, w, 300.0, 4).solve(pulp.PULP_CBC_CMD(msg=False))
    chosen = [j for j, v in enumerate(model.fac_vars) if v.value() > 0.5]
    spopt_value = float(w[(m[:, chosen] > 0).toarray().any(axis=1)].sum())
    assert ours.value == pytest.approx(spopt_value, rel=1e-9)
    assert ours.optimal


def test_capacitated_plan_on_the_demo(demo_area):
    report = run_propose(
        demo_area,
        tier=tier_by_name("station_5min"),
        new=2,
        capacity=2000,
        facilities="demo",
        out_dir=None,
    ).report
    assert report["model"] == "capacitated MCLP"
    assert report["proposals"] == 2
    assert report["covered_after"] > report["covered_before"]
    assert report["covered_after"] <= report["covered_before"] + 2 * 2000 + 1e-6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--new", "0"], "--new must be at least 1"),
        (["--new", "100000"], "more than the"),
        (["--goal", "1.5"], "--goal must be a share"),
        (["--goal", "0"], "--goal must be a share"),
        (["--new", "2", "--tier", "nope"], "unknown tier 'nope'"),
        (["--goal", "0.999", "--snap-limit-m", "15"], "the goal cannot be reached"),
        (["--new", "1", "--capacity", "-5"], "capacity must be a positive"),
    ],
)
def test_bad_propose_input(args, message, tmp_path, capsys):
    argv = ["propose", "demo", "--out", str(tmp_path), "--no-map", *args]
    if "--tier" not in args:
        argv += ["--tier", "centre_15min" if "--goal" in args else "station_5min"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_candidates_all_outside_the_boundary(tmp_path, demo_area):
    far = gpd.GeoDataFrame({"id": ["x"]}, geometry=[shapely.Point(25.5, 61.0)], crs=4326)
    path = tmp_path / "cands.geojson"
    far.to_file(path)
    with pytest.raises(InputError, match="no candidate is left"):
        run_propose(demo_area, tier=tier_by_name("station_5min"), new=1, candidates=path)


def test_no_demand(tmp_path, demo_area):
    dem = gpd.GeoDataFrame({"population": [0.0]}, geometry=[shapely.Point(24.945, 60.17)], crs=4326)
    with pytest.raises(InputError, match="no residents to cover"):
        run_propose(demo_area, tier=tier_by_name("station_5min"), new=1, demand=dem)


def test_propose_cli(tmp_path, capsys):
    assert (
        main(
            [
                "propose",
                "demo",
                "--tier",
                "station_5min",
                "--new",
                "2",
                "--method",
                "greedy",
                "--out",
                str(tmp_path),
                "--tiles",
                "none",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "#1" in out and "#2" in out and "greedy" in out
    geo = json.loads((tmp_path / "proposals.geojson").read_text())
    assert len(geo["features"]) == 2


def test_two_level_plan_counts_new_centres_as_stations(demo_area, tmp_path):
    from servicecircle.plan import run_two_level

    report = run_two_level(
        demo_area, centres_new=1, stations_new=2, facilities="demo", out_dir=tmp_path, tiles="none"
    ).report
    c, s = report["levels"]["centres"], report["levels"]["stations"]
    alone = run_propose(
        demo_area, tier=tier_by_name("station_5min"), new=2, facilities="demo"
    ).report
    # the stations step starts from the coverage that the new centre already gives
    assert c["proposals"] == 1 and s["proposals"] == 2
    assert s["covered_before"] > alone["covered_before"]
    assert c["tier"]["name"] == "centre_15min" and s["tier"]["name"] == "station_5min"
    geo = json.loads((tmp_path / "proposals.geojson").read_text())
    kinds = [f["properties"]["kind"] for f in geo["features"]]
    assert kinds == ["centre", "station", "station"]
    assert (
        main(
            [
                "propose",
                "demo",
                "--centres",
                "1",
                "--tier",
                "station_5min",
                "--new",
                "1",
                "--capacity",
                "10",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
