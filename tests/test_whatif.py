"""What-if updates equal a full recomputation; coverage properties hold on random graphs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphs import make_net, random_network
from servicecircle import InputError
from servicecircle.coverage import nearest_facility
from servicecircle.whatif import add_facility, remove_facility, tier_state

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def full_state(net, demand, fac_xy, ids, target, pop=None):
    d = net.snap(np.asarray(demand, float), snap_limit_m=250)
    f = net.snap(np.asarray(fac_xy, float).reshape(-1, 2), snap_limit_m=250)
    pop = np.ones(len(demand)) if pop is None else pop
    return tier_state(net, d, pop, f, np.array(ids, dtype=object), target_m=target)


def assert_same(a, b):
    """Same walks and covered residents; each reported facility is one at the nearest
    distance (two equally near facilities may both be right: the check is their distance)."""
    np.testing.assert_allclose(a.walk_m, b.walk_m, rtol=1e-9, atol=1e-6)
    assert a.covered_residents == pytest.approx(b.covered_residents)
    for state in (a, b):
        reached = np.flatnonzero(state.point_label >= 0)
        assert np.all(np.isinf(state.walk_m[state.point_label < 0]))
        for slot in np.unique(state.point_label[reached]).tolist():
            assert state.active[slot]
            mine = reached[state.point_label[reached] == slot]
            alone, _ = nearest_facility(
                state.network,
                state.dsnap.subset(mine),
                state.fsnap.subset(np.array([slot])),
                limit_m=state.limit_m,
            )
            np.testing.assert_allclose(alone, state.walk_m[mine], rtol=1e-9, atol=1e-6)


@SETTINGS
@given(random_network(), st.data())
def test_add_equals_full_recomputation(case, data):
    xy, edges, demand, fac = case
    net = make_net(xy, edges)
    target = data.draw(st.sampled_from([150.0, 300.0, 1000.0]))
    new_xy = data.draw(st.tuples(st.floats(-100, 1100), st.floats(-100, 1100)))
    ids = [f"f{i}" for i in range(len(fac))]
    before = full_state(net, demand, fac, ids, target)
    after, change = add_facility(before, new_xy, "new")
    want = full_state(net, demand, [*fac, new_xy], [*ids, "new"], target)
    assert_same(after, want)
    # adding a facility never lowers coverage, and never lengthens a walk
    assert change.delta_residents >= -1e-9
    fin = np.isfinite(before.walk_m)
    assert np.all(after.walk_m[fin] <= before.walk_m[fin] + 1e-9)


@SETTINGS
@given(random_network(integer_points=True), st.data())
def test_add_and_remove_with_ties_equal_full_recomputation(case, data):
    """Integer coordinates make equally near edges and facilities common."""
    xy, edges, demand, fac = case
    net = make_net(xy, edges)
    ids = [f"f{i}" for i in range(len(fac))]
    before = full_state(net, demand, fac, ids, 300.0)
    new_xy = data.draw(st.tuples(st.integers(-100, 1100), st.integers(-100, 1100)))
    after, _ = add_facility(before, tuple(map(float, new_xy)), "new")
    assert_same(after, full_state(net, demand, [*fac, new_xy], [*ids, "new"], 300.0))
    k = data.draw(st.integers(0, len(fac) - 1))
    removed, _ = remove_facility(before, ids[k])
    rest = [p for i, p in enumerate(fac) if i != k]
    assert_same(removed, full_state(net, demand, rest, [x for x in ids if x != ids[k]], 300.0))


@SETTINGS
@given(random_network(), st.data())
def test_remove_equals_full_and_readding_restores(case, data):
    xy, edges, demand, fac = case
    net = make_net(xy, edges)
    target = data.draw(st.sampled_from([150.0, 300.0, 1000.0]))
    ids = [f"f{i}" for i in range(len(fac))]
    k = data.draw(st.integers(0, len(fac) - 1))
    before = full_state(net, demand, fac, ids, target)
    after, change = remove_facility(before, ids[k])
    rest = [p for i, p in enumerate(fac) if i != k]
    rest_ids = [x for i, x in enumerate(ids) if i != k]
    want = full_state(net, demand, rest, rest_ids, target)
    assert_same(after, want)
    assert change.delta_residents <= 1e-9
    restored, _ = add_facility(after, fac[k], ids[k] + "_again")
    np.testing.assert_allclose(restored.walk_m, before.walk_m, rtol=1e-9, atol=1e-6)
    assert restored.covered_residents == pytest.approx(before.covered_residents)


@SETTINGS
@given(random_network())
def test_longer_tier_covers_everyone_the_shorter_covers(case):
    xy, edges, demand, fac = case
    net = make_net(xy, edges)
    ids = [f"f{i}" for i in range(len(fac))]
    short = full_state(net, demand, fac, ids, 300.0)
    long = full_state(net, demand, fac, ids, 1000.0)
    assert np.all(long.covered[short.covered])


def test_whatif_rejects_unknown_and_duplicate_ids():
    net = make_net([(0, 0), (100, 0)], [(0, 1)])
    s = full_state(net, [(10, 0)], [(90, 0)], ["a"], 300.0)
    with pytest.raises(InputError, match="already in the plan"):
        add_facility(s, (50, 0), "a")
    with pytest.raises(InputError, match="not in the plan"):
        remove_facility(s, "zzz")


def test_whatif_on_a_real_network(demo_network, demo_area):
    """Removing and adding stations on the demo network equals full recomputation."""
    from servicecircle.demand import demand_from_buildings
    from servicecircle.facilities import facilities_from_pois

    d = demand_from_buildings(demo_area.buildings, landuse=demo_area.landuse)
    f = facilities_from_pois(demo_area.pois)
    dsnap = demo_network.snap(d)
    fsnap = demo_network.snap(f)
    ids = f["facility_id"].to_numpy(dtype=object)
    pop = d["population"].to_numpy()
    s = tier_state(demo_network, dsnap, pop, fsnap, ids, target_m=300)
    s2, ch = remove_facility(s, ids[3])
    keep = np.arange(len(ids)) != 3
    want = tier_state(demo_network, dsnap, pop, fsnap.subset(keep), ids[keep], target_m=300)
    np.testing.assert_allclose(s2.walk_m, want.walk_m, atol=1e-6)
    assert ch.nodes_changed > 0
    xy = demo_network.node_xy[100]
    s3, ch3 = add_facility(s2, tuple(xy), "new")
    assert s3.covered_residents >= s2.covered_residents
    assert ch3.delta_residents >= 0
