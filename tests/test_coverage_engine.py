"""Coverage engine: presets, goals, roll-ups, service load, circles, service areas, edge cases."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from graphs import CRS, make_net
from servicecircle import InputError
from servicecircle.coverage import compute_coverage
from servicecircle.rollup import rollup
from servicecircle.service_areas import service_areas
from servicecircle.tiers import PRESETS, Tier, minutes_to_m, parse_tier

# A street 0 —300— 1 —300— 2 along y=0 and a parallel street 3 —600— 4 at y=200 that is only
# joined to the first at the west end (node 0 —200— 3). Straight-line circles see across the
# block; walkers must go round.
NODES = [(0, 0), (300, 0), (600, 0), (0, 200), (600, 200)]
EDGES = [(0, 1), (1, 2), (0, 3), (3, 4)]


@pytest.fixture
def net():
    return make_net(NODES, EDGES)


def points(xy, **cols):
    return gpd.GeoDataFrame(cols, geometry=[shapely.Point(p) for p in xy], crs=CRS)


def facilities(xy, kinds, ids=None):
    ids = ids or [f"f{i}" for i in range(len(xy))]
    return points(xy, facility_id=ids, kind=kinds)


def test_hand_computed_coverage_and_circle_overcount(net):
    demand = points(
        [(590, 190), (290, 10), (10, 5)], demand_id=["a", "b", "c"], population=[100.0, 50.0, 10.0]
    )
    fac = facilities([(600, -10)], ["station"])
    tiers = [Tier("s", 300.0, ("station",))]
    cov = compute_coverage(net, demand, fac, tiers, search_factor=10)
    walk = cov.points["s_walk_m"].to_numpy()
    # a: 10 + 590 + 200 + 600 + 10 = 1410; b: 10 + 310 + 10 = 330; c: 5 + 590 + 10 = 605
    np.testing.assert_allclose(walk, [10 + 590 + 200 + 600 + 10, 10 + 310 + 10, 5 + 590 + 10])
    assert cov.points["s_covered"].tolist() == [False, False, False]
    # the circle of 300 m around the station holds 'a' (200 m away) — wrongly
    cvw = cov.summary()["circle_vs_walk"]["s"]
    assert cvw["overcounted_residents"] == 100 and cvw["walk_only_residents"] == 0


def test_service_load_and_nearest_ids(net):
    demand = points([(100, 5), (200, 5), (500, 5)], population=[1.0, 2.0, 4.0])
    fac = facilities([(150, -5), (550, -5)], ["station", "centre"], ids=["s", "c"])
    tiers = [Tier("s5", 300.0, ("station", "centre")), Tier("c15", 1000.0, ("centre",))]
    cov = compute_coverage(net, demand, fac, tiers)
    assert cov.points["s5_facility_id"].tolist() == ["s", "s", "c"]
    load = cov.facilities.set_index("facility_id")
    assert load.loc["s", "s5_load_residents"] == 3 and load.loc["c", "s5_load_residents"] == 4
    assert load.loc["c", "c15_load_residents"] == 7
    assert np.isnan(load.loc["s", "c15_load_residents"])  # stations do not serve centre tiers


def test_goal_pass_fail_and_zero_population(net):
    demand = points([(100, 5), (590, 190)], population=[85.0, 15.0])
    fac = facilities([(100, -5)], ["centre"])
    s = compute_coverage(net, demand, fac, [Tier("c", 800.0, ("centre",), goal=0.85)]).summary()
    assert s["tiers"]["c"]["share"] == pytest.approx(0.85) and s["tiers"]["c"]["pass"] is True
    s = compute_coverage(net, demand, fac, [Tier("c", 800.0, ("centre",), goal=0.99)]).summary()
    assert s["tiers"]["c"]["pass"] is False
    empty = points([(100, 5)], population=[0.0])
    s = compute_coverage(net, empty, fac, [Tier("c", 1000.0, ("centre",))]).summary()
    assert s["tiers"]["c"]["share"] is None and s["tiers"]["c"]["pass"] is None


def test_duplicate_facility_ids_are_refused(net):
    demand = points([(100, 5)], population=[1.0])
    fac = facilities([(100, -5), (200, -5)], ["centre", "station"], ids=["x", "x"])
    with pytest.raises(InputError, match="facility id 'x' appears more than once"):
        compute_coverage(net, demand, fac)


def test_island_facility_and_unsnapped_points_are_reported():
    nodes = [*NODES, (5000, 5000), (5100, 5000)]
    net = make_net(nodes, [*EDGES, (5, 6)])
    demand = points([(100, 5), (5050, 4990), (9000, 9000)], population=[1.0, 2.0, 4.0])
    fac = facilities([(5050, 5010), (20000, 0)], ["station", "station"], ids=["isl", "far"])
    cov = compute_coverage(net, demand, fac, [Tier("s", 300.0, ("station",))])
    assert cov.points["s_status"].tolist() == ["no_facility_reachable", "covered", "unsnapped"]
    s = cov.summary()
    assert s["facilities"]["unsnapped_ids"] == ["far"]
    assert s["unreachable_demand_points"] == 1 and s["unreachable_residents"] == 4


def test_presets_and_minutes():
    assert [t.target_m for t in PRESETS["gb50180"]] == [1000, 800, 500, 300]
    assert minutes_to_m(5) == 300
    t = parse_tier("walk10=10min:station", speed_m_per_min=50)
    assert t.target_m == 500 and t.minutes == 10 and t.kinds == ("station",)
    assert parse_tier("centre_x=900").kinds == ("centre",)
    assert parse_tier("local=300").kinds == ("station", "centre")
    with pytest.raises(InputError, match="goal must be a share"):
        Tier("x", 300, ("station",), goal=1.2)


def test_rollup_sums_to_the_total_and_flags_outside(net):
    demand = points(
        [(100, 5), (400, 5), (590, 190), (5000, 0)],
        population=[1.0, 2.0, 4.0, 8.0],
        households=[1, 1, 1, 1],
    )
    fac = facilities([(100, -5)], ["centre"])
    cov = compute_coverage(net, demand, fac, [Tier("c", 450.0, ("centre",))])
    cells = gpd.GeoDataFrame(
        {"cell_id": ["w", "e"]},
        geometry=[shapely.box(-50, -50, 300, 300), shapely.box(300, -50, 700, 300)],
        crs=CRS,
    )
    r = rollup(cov, demand, cells).set_index("cell_id")
    assert r.loc["w", "population"] == 1 and r.loc["e", "population"] == 6
    assert r["population"].sum() + 8 == demand["population"].sum()
    assert r.attrs["points_outside_cells"] == 1
    # (400,5) walks 5+300+5=310 ≤ 450; (590,190) walks round the block: not covered
    assert r.loc["e", "c_covered_residents"] == 2
    assert r.loc["e", "c_share"] == pytest.approx(2 / 6)


def test_service_areas_follow_streets_not_hulls(net):
    fac = facilities([(0, -5)], ["centre"])
    per, uni = service_areas(net, fac, [Tier("c", 400.0, ("centre",))], buffer_m=20)
    poly = per.geometry.iloc[0]
    assert poly.is_valid and uni.geometry.iloc[0].is_valid
    # reached: along y=0 up to x=395, up the link to (0,200), along y=200 to x=195
    assert poly.contains(shapely.Point(390, 0)) and not poly.contains(shapely.Point(420, 0))
    assert poly.contains(shapely.Point(190, 200)) and not poly.contains(shapely.Point(215, 200))
    # the middle of the block is not walked (a convex hull would hold it)
    assert not poly.contains(shapely.Point(150, 100))
    assert poly.area < shapely.convex_hull(poly).area * 0.6


def test_service_area_holds_every_covered_point_near_a_street(demo_network, demo_area):
    from servicecircle.demand import demand_from_buildings
    from servicecircle.facilities import facilities_from_pois

    d = demand_from_buildings(demo_area.buildings, landuse=demo_area.landuse)
    f = facilities_from_pois(demo_area.pois)
    tier = Tier("s", 300.0, ("station", "centre"))
    cov = compute_coverage(demo_network, d, f, [tier])
    _, uni = service_areas(demo_network, f, [tier], buffer_m=25)
    union = uni.geometry.iloc[0]
    assert union.is_valid
    near = cov.points["s_covered"] & (cov.points["access_m"] < 24)
    inside = d.geometry[near.to_numpy()].within(union)
    assert inside.all() and near.sum() > 10
