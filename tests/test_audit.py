"""The audit's array core: per-type walks against hand-computed values, the networkx oracle and
the coverage engine; missing counts, groups, summaries, and the GeoDataFrame adapter."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphs import CRS, make_net, random_network
from oracle import network_edges, oracle_nearest
from servicecircle import InputError
from servicecircle.audit import audit, audit_distances
from servicecircle.coverage import nearest_facility
from servicecircle.standard import FacilityType, LifeCircleStandard, load_standard, match_pois


def ftype(type_id, level, walk_m, *, kind="basic", group=None, segment="all"):
    return FacilityType(
        id=type_id,
        name_zh=type_id,
        name_en=type_id,
        level=level,
        max_walk_m=float(walk_m),
        kind=kind,
        segment=segment,
        source="test",
        group=group,
    )


# a ≤ 100 m (5 min), b ≤ 300 m (10 min), c1 or c2 ≤ 150 m (10 min, one requirement), q quality.
STD = LifeCircleStandard(
    "test",
    "hand-made",
    (
        ftype("a", "5min", 100, segment="children"),
        ftype("b", "10min", 300),
        ftype("c1", "10min", 150, group="g"),
        ftype("c2", "10min", 150, group="g"),
        ftype("q", "5min", 100, kind="quality"),
    ),
)

# A line 0 —100— 1 —100— 2 along y=0 and a spur 1 —100— 3 north.
LINE = [(0, 0), (100, 0), (200, 0), (100, 100)]
LINE_EDGES = [(0, 1), (1, 2), (1, 3)]
DEMAND = [(30, -10), (190, 5), (100, 95), (50, -1000)]  # the last is past the snap limit
POIS = {"a": [(105, 60)], "b": [(0, 3)], "c1": [(200, -2)]}


def points(xy, **cols):
    return gpd.GeoDataFrame(cols, geometry=[shapely.Point(p) for p in xy], crs=CRS)


def run(net, demand, pois, std=STD, **kw):
    dsnap = net.snap(np.asarray(demand, float))
    snaps = {t: net.snap(np.asarray(xy, float)) for t, xy in pois.items()}
    return audit_distances(net, dsnap, snaps, std, **kw)


@pytest.fixture
def line():
    return make_net(LINE, LINE_EDGES)


def test_hand_computed_walks_within_and_nearest(line):
    res = run(line, DEMAND, POIS, poi_ids={"a": ["A"], "b": ["B"], "c1": ["C"]})
    want = {
        # access + path + egress, searched to 2 × the distance
        "a": [10 + 70 + 60 + 5, 5 + 90 + 60 + 5, 35 + 5, math.nan],
        "b": [10 + 30 + 3, 5 + 190 + 3, 95 + 100 + 3, math.nan],
        "c1": [10 + 70 + 100 + 2, 5 + 10 + 2, 95 + 100 + 2, math.nan],
        "c2": [math.nan] * 4,
        "q": [math.nan] * 4,
    }
    table = res.table()
    for t, walks in want.items():
        np.testing.assert_allclose(table[f"{t}_walk_m"], walks, atol=1e-9)
    assert table["a_within"].tolist() == [False, False, True, False]
    assert table["b_within"].tolist() == [True, True, True, False]
    assert table["c1_within"].tolist() == [False, True, False, False]
    assert table["a_facility_id"].tolist()[:3] == ["A", "A", "A"]
    assert table["a_facility_id"].isna().tolist() == [False, False, False, True]
    assert table["c2_facility_id"].isna().all()
    assert table["snapped"].tolist() == [True, True, True, False]
    assert res.facility[:, 0].tolist() == [0, 0, 0, -1]


def test_missing_counts_groups_and_levels(line):
    table = run(line, DEMAND, POIS).table()
    # basic requirements: a (5 min), b and c1|c2 (10 min); q is quality and never missing
    assert table["types_missing"].tolist() == [2, 1, 1, 3]
    assert table["missing_5min"].tolist() == [1, 1, 0, 1]
    assert table["missing_10min"].tolist() == [1, 0, 1, 2]
    assert table["missing_ids"].tolist() == ["a;c1|c2", "a", "c1|c2", "a;b;c1|c2"]
    assert (table["types_missing"] == table["missing_5min"] + table["missing_10min"]).all()
    # the group is met by either member: give c2 a POI next to point 0
    t2 = run(line, DEMAND, {**POIS, "c2": [(40, 0)]}).table()
    assert t2["missing_ids"].tolist()[0] == "a"


def test_search_limit_cuts_walks_but_never_within(line):
    wide = run(line, DEMAND, POIS, search_factor=2.0).table()
    tight = run(line, DEMAND, POIS, search_factor=1.0).table()
    assert wide["a_walk_m"].iloc[0] == pytest.approx(145) and math.isnan(tight["a_walk_m"].iloc[0])
    for t in STD.ids:
        assert (wide[f"{t}_within"] == tight[f"{t}_within"]).all()
    with pytest.raises(InputError, match="search factor must be at least 1"):
        run(line, DEMAND, POIS, search_factor=0.5)


def test_summary_weights_shares_levels_and_absent_types(line):
    res = run(line, DEMAND, POIS)
    s = res.summary([10, 20, 30, 40])
    assert s["residents"] == 100 and s["unsnapped_points"] == 1 and s["unsnapped_residents"] == 40
    assert s["types"]["a"]["residents_within"] == 30 and s["types"]["a"]["share"] == 0.3
    assert s["types"]["b"]["share"] == 0.6 and s["types"]["c1"]["share"] == 0.2
    assert s["types"]["a"]["segment"] == "children" and s["types"]["a"]["search_limit_m"] == 200
    assert s["types"]["a"]["pois"] == 1 and s["types"]["a"]["pois_snapped"] == 1
    assert s["types"]["a"]["median_walk_m_of_reached"] == pytest.approx(145)
    assert s["absent_types"] == ["c2", "q"]
    five, ten = s["levels"]["5min"], s["levels"]["10min"]
    assert five["requirements"] == ["a"] and ten["requirements"] == ["b", "c1|c2"]
    assert five["share_all_basic"] == 0.3 and ten["share_all_basic"] == 0.2
    assert ten["absent_requirements"] == [] and ten["share_all_basic_present"] == 0.2
    assert s["all_levels"]["share_all_basic"] == 0.0
    assert s["all_levels"]["mean_missing"] == pytest.approx((2 * 10 + 20 + 30 + 3 * 40) / 100)
    # unweighted: one per point
    assert res.summary()["types"]["b"]["residents_within"] == 3
    json.dumps(s)  # plain data, ready for summary.json
    with pytest.raises(InputError, match="population has 2 values for 4 demand points"):
        res.summary([1, 2])
    with pytest.raises(InputError, match="not negative"):
        res.summary([1, -2, 3, 4])


def test_absent_requirement_does_not_hide_the_present_ones(line):
    res = run(line, DEMAND, {"b": POIS["b"], "c1": POIS["c1"]})  # no POI of a
    five = res.summary()["levels"]["5min"]
    assert five["absent_requirements"] == ["a"] and five["share_all_basic"] == 0
    assert five["share_all_basic_present"] is None  # no requirement of 5 min has a POI: n/a


def test_unknown_types_and_id_lengths(line):
    with pytest.raises(InputError, match="unknown facility type 'c11' \\(did you mean 'c1'\\?\\)"):
        run(line, DEMAND, {"c11": [(0, 0)]})
    with pytest.raises(InputError, match="2 POI ids for 1 POIs"):
        run(line, DEMAND, POIS, poi_ids={"a": ["x", "y"]})


# --------------------------------------------------------------------------- oracles
# A 3 × 3 block of 100 m streets with one curved street and a dead end.
GRID = [(x, y) for y in (0, 100, 200) for x in (0, 100, 200)] + [(300, 300)]
GRID_EDGES = [
    (0, 1),
    (1, 2),
    (3, 4),
    (4, 5),
    (6, 7),
    (7, 8),
    (0, 3),
    (3, 6),
    (1, 4),
    (4, 7),
    (2, 5, shapely.LineString([(200, 0), (260, 50), (200, 100)])),
    (8, 9),
]
GRID_DEMAND = [(10, 5), (150, 95), (240, 40), (290, 280), (55, 190), (180, 180), (5, 150)]
GRID_POIS = {"a": [(205, 195)], "b": [(0, 50), (150, 205)], "c1": [(260, 60)], "c2": [(97, 130)]}


def test_walks_equal_networkx_oracle_on_hand_built_graphs(line):
    grid = make_net(GRID, GRID_EDGES)
    for net, demand, pois in ((line, DEMAND, POIS), (grid, GRID_DEMAND, GRID_POIS)):
        res = run(net, demand, pois, search_factor=50)
        node_xy, edges = network_edges(net)
        for j, t in enumerate(STD.ids):
            if t not in pois:
                assert np.isinf(res.walk_m[:, j]).all()
                continue
            want = oracle_nearest(node_xy, edges, np.array(demand, float), np.array(pois[t], float))
            np.testing.assert_allclose(res.walk_m[:, j], want, rtol=1e-9, atol=1e-6)


def test_walks_equal_nearest_facility_per_type_on_the_demo_area(demo_area, demo_network):
    std = load_standard()
    pois = match_pois(demo_area.pois, std)
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = demo_area.boundary.bounds
    xy = np.column_stack([rng.uniform(minx, maxx, 400), rng.uniform(miny, maxy, 400)])
    demand = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=demo_area.crs)
    res = audit(demo_network, demand, pois, std)
    dsnap = demo_network.snap(demand)
    types_with_pois = 0
    for j, t in enumerate(std.types):
        sel = pois["type"].to_numpy() == t.id
        fsnap = demo_network.snap(pois[sel])
        want, fac = nearest_facility(demo_network, dsnap, fsnap, limit_m=t.max_walk_m * 2)
        np.testing.assert_array_equal(res.walk_m[:, j], want)
        np.testing.assert_array_equal(res.facility[:, j], fac)
        ids = res.table()[f"{t.id}_facility_id"].to_numpy()
        hit = fac >= 0
        assert (ids[hit] == pois.loc[sel, "poi_id"].to_numpy()[fac[hit]]).all()
        types_with_pois += bool(sel.any())
    assert types_with_pois >= 10
    assert res.within.any(axis=0).sum() >= 8  # several types are within reach of someone


@st.composite
def audit_case(draw):
    xy, edges, demand, fac = draw(random_network())
    walks = draw(st.lists(st.floats(20, 900), min_size=2, max_size=2))
    owner = draw(st.lists(st.integers(0, 1), min_size=len(fac), max_size=len(fac)))
    return xy, edges, demand, fac, walks, owner


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(audit_case())
def test_within_lies_inside_the_search_and_the_search_never_changes_a_walk(case):
    xy, edges, demand, fac, walks, owner = case
    net = make_net(xy, edges)
    std = LifeCircleStandard(
        "p", "p", (ftype("x", "5min", walks[0]), ftype("y", "15min", walks[1]))
    )
    pois = {
        t: [p for p, o in zip(fac, owner, strict=True) if o == k] for k, t in enumerate(std.ids)
    }
    pois = {t: p for t, p in pois.items() if p}
    two = run(net, demand, pois, std, search_factor=2.0)
    five = run(net, demand, pois, std, search_factor=5.0)
    limit = two.search_limit_m[None, :]
    within = two.within
    # within ⊆ reached within the 2× search
    assert not (within & ~(np.isfinite(two.walk_m) & (two.walk_m <= limit + 1e-6))).any()
    assert (
        two.walk_m[np.isfinite(two.walk_m)]
        <= np.broadcast_to(limit, two.walk_m.shape)[np.isfinite(two.walk_m)] + 1e-6
    ).all()
    # a wider search finds the same walks and the same within
    assert (within == five.within).all()
    found = np.isfinite(two.walk_m)
    np.testing.assert_allclose(two.walk_m[found], five.walk_m[found], rtol=1e-12, atol=1e-9)
    # and equals the unlimited engine wherever that is inside the limit
    dsnap = net.snap(np.asarray(demand, float))
    for j, t in enumerate(std.ids):
        if t not in pois:
            continue
        free, _ = nearest_facility(net, dsnap, net.snap(np.asarray(pois[t], float)), limit_m=1e12)
        lim = two.search_limit_m[j]
        inside = free <= lim - 1e-6
        np.testing.assert_allclose(two.walk_m[inside, j], free[inside], rtol=1e-12, atol=1e-9)
        assert np.isinf(two.walk_m[free > lim + 1e-6, j]).all()


# --------------------------------------------------------------------------- the adapter
def test_audit_adapter_from_frames(line):
    demand = points(DEMAND[:3], population=[1.0, 2.0, 3.0])
    demand.index = ["d0", "d1", "d2"]
    pois = points(
        [POIS["a"][0], POIS["b"][0], POIS["c1"][0], (50, -2000)],
        poi_id=["A", "B", "C", "FAR"],
        type=["a", "b", "c1", "c2"],
    )
    res = audit(line, demand, pois, STD)
    table = res.table()
    assert list(table.index) == ["d0", "d1", "d2"]
    assert table["b_facility_id"].tolist() == ["B", "B", "B"]
    assert table["missing_ids"].tolist() == ["a;c1|c2", "a", "c1|c2"]
    s = res.summary(demand["population"].to_numpy())
    assert s["types"]["c2"]["pois"] == 1 and s["types"]["c2"]["pois_snapped"] == 0
    assert s["absent_types"] == ["q"]  # c2 has a POI, past the snap limit


def test_audit_adapter_refuses_bad_pois(line):
    demand = points(DEMAND[:2])
    with pytest.raises(InputError, match="no 'type' column"):
        audit(line, demand, points([(0, 0)], poi_id=["x"]), STD)
    with pytest.raises(InputError, match=r"unknown facility types \(zz\)"):
        audit(line, demand, points([(0, 0)], poi_id=["x"], type=["zz"]), STD)
    empty = gpd.GeoDataFrame({"poi_id": [], "type": []}, geometry=[], crs=CRS)
    res = audit(line, demand, empty, STD)
    assert res.summary()["absent_types"] == list(STD.ids)
    assert res.table()["types_missing"].tolist() == [3, 3]


def test_nanjing_audit_end_to_end(nanjing_area):
    from servicecircle.demand import demand_from_buildings
    from servicecircle.network import WalkNetwork

    std = load_standard()
    net = WalkNetwork.from_area(nanjing_area)
    demand = demand_from_buildings(nanjing_area.buildings, landuse=nanjing_area.landuse)
    pois = match_pois(nanjing_area.pois, std)
    res = audit(net, demand, pois, std)
    table = res.table()
    assert len(table) == len(demand) and (table.index == demand.index).all()
    levels = [c for c in table.columns if c.startswith("missing_") and c != "missing_ids"]
    assert (table["types_missing"] == table[levels].sum(axis=1)).all()
    s = res.summary(demand["population"].to_numpy())
    counts = pois["type"].value_counts()
    for t in std.ids:
        assert s["types"][t]["pois"] == counts.get(t, 0)
        walk = table[f"{t}_walk_m"]
        assert (walk[table[f"{t}_within"]] <= std.by_id(t).max_walk_m + 1e-6).all()
    assert "waste_collection" in s["absent_types"]
    assert s["types"]["primary_school"]["share"] > 0
    print(
        "nanjing shares:",
        json.dumps({t: round(v["share"], 3) for t, v in s["types"].items()}, sort_keys=True),
    )
