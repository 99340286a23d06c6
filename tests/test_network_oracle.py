"""Walking distances against hand-computed values and an independent networkx oracle."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString

from graphs import make_net, random_network
from oracle import network_edges, oracle_nearest
from servicecircle.coverage import nearest_facility
from servicecircle.network import WalkNetwork

CRS = "EPSG:32650"


def walk(net, demand_xy, fac_xy, *, limit=1e9, snap=300.0):
    d = net.snap(np.asarray(demand_xy, float), snap_limit_m=snap)
    f = net.snap(np.asarray(fac_xy, float), snap_limit_m=snap)
    return nearest_facility(net, d, f, limit_m=limit)


# A line 0 —100— 1 —100— 2, and a spur 1 —100— 3 (north).
LINE = [(0, 0), (100, 0), (200, 0), (100, 100)]
LINE_EDGES = [(0, 1), (1, 2), (1, 3)]


def test_hand_computed_access_path_egress():
    net = make_net(LINE, LINE_EDGES)
    # demand 10 m south of x=30; facility 5 m east of the spur at y=60.
    dist, fac = walk(net, [(30, -10)], [(105, 60)])
    assert dist[0] == pytest.approx(10 + 70 + 60 + 5)
    assert fac[0] == 0


def test_two_points_on_the_same_edge_walk_straight_along_it():
    net = make_net(LINE, LINE_EDGES)
    dist, _ = walk(net, [(20, 3)], [(80, -4)])
    assert dist[0] == pytest.approx(3 + 60 + 4)
    # and the reverse order on the edge
    dist, _ = walk(net, [(80, -4)], [(20, 3)])
    assert dist[0] == pytest.approx(4 + 60 + 3)


def test_point_exactly_on_a_node_and_facility_on_a_node():
    net = make_net(LINE, LINE_EDGES)
    dist, _ = walk(net, [(100, 0)], [(200, 0)])
    assert dist[0] == pytest.approx(100)
    dist, _ = walk(net, [(0, 0)], [(0, 0)])
    assert dist[0] == pytest.approx(0, abs=1e-5)


def test_nearest_of_several_facilities_and_its_id():
    net = make_net(LINE, LINE_EDGES)
    dist, fac = walk(net, [(150, 0)], [(0, 0), (100, 100), (190, 0)])
    assert dist[0] == pytest.approx(40)
    assert fac[0] == 2


def test_point_past_the_snap_limit_is_unreachable_not_moved():
    net = make_net(LINE, LINE_EDGES)
    d = net.snap(np.array([(50, -400.0), (50, -299.0)]), snap_limit_m=300)
    assert d.edge[0] == -1 and math.isnan(d.access_m[0])
    assert d.edge[1] >= 0 and d.access_m[1] == pytest.approx(299)
    dist, fac = walk(net, [(50, -400)], [(0, 0)])
    assert math.isinf(dist[0]) and fac[0] == -1


def test_facility_on_a_disconnected_piece_is_not_reached():
    # Main line plus an island edge far away.
    nodes = [*LINE, (1000, 1000), (1100, 1000)]
    net = make_net(nodes, [*LINE_EDGES, (4, 5)])
    dist, fac = walk(net, [(50, 0)], [(1050, 1001)])
    assert math.isinf(dist[0]) and fac[0] == -1
    # a demand point on the island reaches it
    dist, _ = walk(net, [(1020, 999)], [(1050, 1001)])
    assert dist[0] == pytest.approx(1 + 30 + 1)


def test_curved_edge_uses_its_geometry_length():
    # An L-shaped way from (0,0) via (0,100) to (100,100): 200 m, not the 141 m chord.
    geom = LineString([(0, 0), (0, 100), (100, 100)])
    net = make_net([(0, 0), (100, 100)], [(0, 1, geom)])
    dist, _ = walk(net, [(0, 0)], [(100, 100)])
    assert dist[0] == pytest.approx(200)
    # a geometry stored from v to u is re-oriented
    net2 = make_net([(0, 0), (100, 100)], [(0, 1, shapely.reverse(geom))])
    dist2, _ = walk(net2, [(-5, 10)], [(100, 100)])
    assert dist2[0] == pytest.approx(5 + 190)


def test_limit_cuts_off_far_facilities():
    net = make_net(LINE, LINE_EDGES)
    dist, fac = walk(net, [(0, 0)], [(200, 0)], limit=150)
    assert math.isinf(dist[0]) and fac[0] == -1
    dist, _ = walk(net, [(0, 0)], [(200, 0)], limit=200)
    assert dist[0] == pytest.approx(200)


def test_parallel_edges_keep_the_shorter():
    long = LineString([(0, 0), (50, 80), (100, 0)])
    net = make_net([(0, 0), (100, 0)], [(0, 1, long), (0, 1)])
    dist, _ = walk(net, [(0, -1)], [(100, -1)])
    assert dist[0] == pytest.approx(102)


# Counterexamples found by the random search stay here (the two of the fragments-and-ties
# issue, as they were reported, and one found while fixing them).
TIE_CASE_1 = (
    [(84, 972), (0, 4), (0, 972), (0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2),
     (1, 3), (2, 0), (2, 1), (3, 0)],
    [(0, 1), (0, 2), (1, 2)],
    [(0.0, 0.0)],
    [(28.0, 944.0)],
)  # fmt: skip
# (0, 0) is 1 m from the main network (node (0, 1), where the facility is) and 1 m from the
# 2-node island (1, 0)–(1, 1): the tie goes to the main network.
TIE_ISLAND = (
    [(0, 6), (1, 3), (2, 0), (0, 0), (0, 5), (0, 7), (2, 1), (1, 0), (0, 1), (0, 2), (0, 3),
     (0, 4), (1, 1), (1, 2)],
    [(0, 1), (0, 2), (0, 8), (7, 12)],
    [(0.0, 0.0)],
    [(0.0, 1.0)],
)  # fmt: skip
# (0, 1) lies on two overlapping edges; along one the facility is 1 m away, along the other 3 m.
TIE_TWO_WAYS = ([(0, 0), (0, 1), (0, 2)], [(0, 1), (0, 2)], [(0.0, 1.0)], [(0.0, 2.0)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_network())
@example(TIE_CASE_1)
@example(TIE_ISLAND)
@example(TIE_TWO_WAYS)
def test_random_graphs_match_networkx_oracle(case):
    """Distances and the facility that serves each point, against the oracle.

    Several facilities may be equally near; the engine reports one of them, the same one on
    every run: the oracle checks that the one reported is at the nearest distance."""
    xy, edges, demand, fac = case
    net = make_net(xy, edges)
    got, which = walk(net, demand, fac, snap=250)
    node_xy, oracle_edges = network_edges(net)
    want = oracle_nearest(node_xy, oracle_edges, np.array(demand), np.array(fac), snap_limit=250)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)
    each = oracle_nearest(
        node_xy, oracle_edges, np.array(demand), np.array(fac), snap_limit=250, per_facility=True
    )
    reached = np.isfinite(want)
    assert np.all(which[~reached] == -1)
    rows = np.flatnonzero(reached)
    np.testing.assert_allclose(each[rows, which[rows]], want[rows], rtol=1e-9, atol=1e-6)
    _, which_again = walk(net, demand, fac, snap=250)
    assert np.array_equal(which, which_again)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_network(integer_points=True))
def test_integer_points_with_many_ties_match_the_oracle(case):
    test_random_graphs_match_networkx_oracle.hypothesis.inner_test(case)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_network(integer_points=True))
def test_siting_matrix_takes_the_tie_rule_too(case):
    """Each candidate's column of the siting matrix equals the engine run with it alone."""
    from servicecircle.siting import coverage_matrix

    xy, edges, demand, cands = case
    net = make_net(xy, edges)
    d = net.snap(np.asarray(demand, float), snap_limit_m=250)
    c = net.snap(np.asarray(cands, float), snap_limit_m=250)
    m = coverage_matrix(net, d, c, target_m=400.0).toarray()
    for j in range(len(cands)):
        alone, _ = nearest_facility(net, d, c.subset(np.array([j])), limit_m=400.0)
        np.testing.assert_allclose(m[:, j], np.where(np.isfinite(alone), alone, 0.0), atol=1e-6)


def test_tie_between_an_island_and_the_main_network_walks_on_the_main_network():
    net = make_net(*TIE_ISLAND[:2])
    assert net.fragment_edge.tolist() == [False, False, False, True]
    got, _ = walk(net, TIE_ISLAND[2], TIE_ISLAND[3], snap=250)
    assert got[0] == pytest.approx(1.0)  # not inf: the island reaches no facility


def test_two_tied_edges_take_the_shorter_walk():
    net = make_net(*TIE_TWO_WAYS[:2])
    d = net.snap(np.array(TIE_TWO_WAYS[2]))
    assert len(d.tie_edge) == 1  # both edges are starts
    got, _ = walk(net, TIE_TWO_WAYS[2], TIE_TWO_WAYS[3])
    assert got[0] == pytest.approx(1.0)
    # and the first reported case agrees with the oracle
    net = make_net(*TIE_CASE_1[:2])
    got, _ = walk(net, TIE_CASE_1[2], TIE_CASE_1[3], snap=250)
    node_xy, oracle_edges = network_edges(net)
    want = oracle_nearest(
        node_xy, oracle_edges, np.array(TIE_CASE_1[2]), np.array(TIE_CASE_1[3]), snap_limit=250
    )
    assert got[0] == pytest.approx(want[0])


# A main street 0 —1000— 1 along y = 0, and a 2-node courtyard path 2–3 at y = 8.
FRAGMENT_NODES = [(0, 0), (1000, 0), (400, 8), (420, 8)]
FRAGMENT_EDGES = [(0, 1), (2, 3)]


def test_point_beside_a_fragment_walks_on_the_main_network():
    net = make_net(FRAGMENT_NODES, FRAGMENT_EDGES)
    assert net.fragment_edge.tolist() == [False, True]
    # 3 m from the courtyard path, 5 m from the main street, where the facility is
    d = net.snap(np.array([(410.0, 5.0)]))
    assert d.edge[0] == 0 and d.linked_past_fragment[0] and d.access_m[0] == pytest.approx(5)
    got, _ = walk(net, [(410, 5)], [(0, 0)])
    assert got[0] == pytest.approx(5 + 410)
    node_xy, oracle_edges = network_edges(net)
    want = oracle_nearest(node_xy, oracle_edges, np.array([(410, 5)]), np.array([(0, 0)]))
    assert want[0] == pytest.approx(got[0])


def test_fragments_kept_when_asked_and_when_the_main_network_is_too_far():
    from servicecircle.network import FragmentRule

    kept = make_net(FRAGMENT_NODES, FRAGMENT_EDGES, fragments=FragmentRule(keep=True))
    got, _ = walk(kept, [(410, 5)], [(0, 0)])
    assert math.isinf(got[0])  # on the courtyard path, which reaches nothing
    net = make_net(FRAGMENT_NODES, FRAGMENT_EDGES)
    got, _ = walk(net, [(410, 7)], [(0, 0)], snap=5)  # the main street is 7 m away: past 5 m
    assert math.isinf(got[0])
    d = net.snap(np.array([(410.0, 7.0)]), snap_limit_m=5)
    assert d.edge[0] == 1 and not d.linked_past_fragment[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_network())
def test_linking_past_fragments_never_lowers_coverage_nor_lengthens_a_walk(case):
    """Against the network with its fragments deleted, no walk is longer (fragments only add
    starts and streets); against the network with fragments kept, when no facility lies on a
    fragment, every point reached stays reached and points not moved walk the same."""
    from servicecircle.network import FragmentRule

    xy, edges, demand, fac = case
    net = make_net(xy, edges)
    got, _ = walk(net, demand, fac, snap=250)
    main_edges = [e for e, frag in zip(edges, net.fragment_edge, strict=True) if not frag]
    free = make_net(xy, main_edges)
    free_walk, _ = walk(free, demand, fac, snap=250)
    assert np.all(got <= free_walk + 1e-6)
    kept_net = make_net(xy, edges, fragments=FragmentRule(keep=True))
    kept, _ = walk(kept_net, demand, fac, snap=250)
    f = kept_net.snap(np.asarray(fac, float), snap_limit_m=250)
    if not np.any(net.fragment_edge[f.edge[f.ok]]):
        d = net.snap(np.asarray(demand, float), snap_limit_m=250)
        assert np.all(np.isfinite(got) >= np.isfinite(kept))
        same = ~d.linked_past_fragment
        np.testing.assert_allclose(got[same], kept[same], rtol=1e-9, atol=1e-6)


def test_real_extract_matches_networkx_oracle(nanjing_area):
    """A few hundred random points on the Nanjing extract against the oracle built from the
    area's raw edges (independent of WalkNetwork's conversion)."""
    net = WalkNetwork.from_area(nanjing_area)
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = nanjing_area.boundary.bounds
    demand = np.column_stack([rng.uniform(minx, maxx, 300), rng.uniform(miny, maxy, 300)])
    fac = np.column_stack([rng.uniform(minx, maxx, 12), rng.uniform(miny, maxy, 12)])
    got, _ = walk(net, demand, fac)
    nodes = nanjing_area.nodes
    node_xy = {int(i): (p.x, p.y) for i, p in zip(nodes.index, nodes.geometry, strict=True)}
    # The area holds each way once per direction; keep one copy of each physical way
    # (same geometry either way round) so the oracle does not see two parallel streets.
    seen, edges = set(), []
    for u, v, g in zip(
        nanjing_area.edges["u"], nanjing_area.edges["v"], nanjing_area.edges.geometry, strict=True
    ):
        key = shapely.normalize(g).wkb
        if key not in seen:
            seen.add(key)
            edges.append((int(u), int(v), g))
    want = oracle_nearest(node_xy, edges, demand, fac)
    assert np.isfinite(want).sum() > 200
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-5)


def test_snap_refuses_points_in_another_crs(demo_network):
    pts = gpd.GeoSeries([shapely.Point(24.94, 60.17)], crs=4326)
    from servicecircle import CRSError

    with pytest.raises(CRSError, match="geographic CRS"):
        demo_network.snap(pts)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.sampled_from([1.0, 1.0004, 2.5, 7.0])),
        min_size=1,
        max_size=40,
    )
)
def test_edge_dedup_and_csr_minimum_by_brute_force(edges):
    """The first edge of each (unordered pair, length to the mm) is kept, in order; the CSR
    holds the least weight of each (row, col): against plain Python dictionaries."""
    from servicecircle.edge_arrays import csr_min, first_of_each

    u = np.array([e[0] for e in edges])
    v = np.array([e[1] for e in edges])
    length = np.array([e[2] for e in edges])
    seen, want = set(), []
    for i, (a, b, w) in enumerate(edges):
        key = (min(a, b), max(a, b), round(w * 1000))
        if key not in seen:
            seen.add(key)
            want.append(i)
    got = first_of_each(np.minimum(u, v), np.maximum(u, v), length, 6)
    assert got.tolist() == want
    least: dict[tuple[int, int], float] = {}
    for a, b, w in edges:
        least[(a, b)] = min(w, least.get((a, b), math.inf))
    csr = csr_min(u, v, length, 6)
    coo = csr.tocoo()
    cells = zip(coo.row.tolist(), coo.col.tolist(), strict=True)
    assert dict(zip(cells, coo.data.tolist(), strict=True)) == least
    assert csr.has_sorted_indices


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31 - 1),
    radius=st.sampled_from([0.0, 5.0, 30.0, 250.0]),
    chunk=st.sampled_from([1, 7, 2_000_000]),
    rounded=st.booleans(),
)
def test_segment_grid_finds_every_edge_within_the_radius(seed, radius, chunk, rounded, monkeypatch):
    """The grid query against brute force (every point × every line, shapely's distance and
    line_locate_point): the same (point, edge) pairs, the same distances to the last bit, and
    the same place along the edge, in chunks of any size; lines with repeated vertices, points
    on vertices and far outside."""
    import shapely

    from servicecircle import snap_grid
    from servicecircle.snap_grid import EdgeSegments
    from servicecircle.snapping import _per_edge

    monkeypatch.setattr(snap_grid, "PAIR_CHUNK", chunk)
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(int(rng.integers(1, 25))):
        xy = rng.uniform(0, 100, (int(rng.integers(2, 6)), 2))
        if rng.random() < 0.2:
            xy[1] = xy[0]  # a segment of no length
        lines.append(shapely.linestrings(np.round(xy) if rounded else xy))
    lines = np.array(lines)
    _, coords, (offsets,) = shapely.to_ragged_array(lines)
    segs = EdgeSegments.of_lines(coords, offsets)
    xy = rng.uniform(-60, 160, (14, 2))
    xy = np.round(xy) if rounded else xy
    xy[0] = coords[int(rng.integers(len(coords)))]  # on a vertex
    pts = shapely.points(xy)
    sel = np.sort(rng.choice(14, 10, replace=False)).astype("int64")
    p, s, d, f = segs.within(xy[:, 0], xy[:, 1], sel, radius)
    rows = _per_edge(segs, xy[:, 0], xy[:, 1], p, s, d, f)
    every = shapely.distance(pts[sel][:, None], lines[None, :])
    want_p, want_e = np.nonzero(every <= radius)
    got = sorted(zip(rows.point.tolist(), rows.edge.tolist(), rows.dist.tolist(), strict=True))
    want = sorted(
        zip(sel[want_p].tolist(), want_e.tolist(), every[want_p, want_e].tolist(), strict=True)
    )
    assert got == want
    located = shapely.line_locate_point(lines[rows.edge], pts[rows.point])
    assert np.allclose(rows.offset_m, located, rtol=0, atol=1e-9)
    on_line = shapely.line_interpolate_point(lines[rows.edge], located)
    assert np.allclose(np.column_stack([rows.x, rows.y]), shapely.get_coordinates(on_line))


def test_segment_grid_keeps_a_pair_exactly_at_the_radius():
    from servicecircle.snap_grid import EdgeSegments

    coords = np.array([(0, 0), (10, 0), (0, 20), (10, 20)], dtype=float)
    segs = EdgeSegments.of_lines(coords, np.array([0, 2, 4]))
    xy = np.array([(5, 5), (5, 0), (30, 30)], dtype=float)
    p, s, d, _ = segs.within(xy[:, 0], xy[:, 1], np.array([0, 1, 2]), 5.0)
    assert sorted(set(zip(p.tolist(), segs.edge[s].tolist(), d.tolist(), strict=True))) == [
        (0, 0, 5.0),
        (1, 0, 0.0),
    ]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), limit=st.sampled_from([20.0, 50.0, 130.0, 400.0]))
def test_nearest_edges_are_the_nearest_and_their_ties_by_brute_force(seed, limit):
    """Growing radii (50 m, 100 m, … up to the limit) find what one look at every line finds:
    for each point with a line within the limit, every line within TIE_TOL_M of the nearest."""
    import shapely

    from servicecircle.snap_grid import EdgeSegments
    from servicecircle.snapping import TIE_TOL_M, nearest_edges

    rng = np.random.default_rng(seed)
    ends = np.round(rng.uniform(0, 300, (30, 2, 2)))
    lines = shapely.linestrings(ends)
    _, coords, (offsets,) = shapely.to_ragged_array(lines)
    xy = np.round(rng.uniform(-200, 500, (20, 2)))
    rows = nearest_edges(
        EdgeSegments.of_lines(coords, offsets), xy[:, 0], xy[:, 1], np.arange(20), limit
    )
    every = shapely.distance(shapely.points(xy)[:, None], lines[None, :])
    nearest = every.min(axis=1)
    want = {
        (i, e)
        for i in range(20)
        if nearest[i] <= limit
        for e in np.flatnonzero(every[i] <= nearest[i] + TIE_TOL_M).tolist()
    }
    assert set(zip(rows.point.tolist(), rows.edge.tolist(), strict=True)) == want
    assert len(rows.point) == len(want)


def test_towns_far_apart_and_a_far_point_snap_as_brute_force_finds():
    """Two clusters 1000 km apart (the grid keeps only its occupied cells), a point 90 km from
    the only street with a snap limit of 100 km, and points that are not finite."""
    import shapely

    from servicecircle.network import FragmentRule, WalkNetwork

    rng = np.random.default_rng(3)
    ends = np.round(rng.uniform(0, 300, (40, 2, 2)))
    ends[20:] += 1_000_000.0
    lines = shapely.linestrings(ends)
    xy = ends.reshape(-1, 2)
    net = WalkNetwork.from_arrays(
        node_id=np.arange(len(xy)),
        node_xy=xy,
        edge_u_id=np.arange(0, len(xy), 2),
        edge_v_id=np.arange(1, len(xy), 2),
        edge_geometry=lines,
        crs=32650,
        fragments=FragmentRule(keep=True),  # every line is its own piece: snap onto any
    )
    assert net.segments.grid.start is None  # (the sparse grid is what this test is about)
    pts = np.vstack([rng.uniform(-50, 350, (30, 2)), rng.uniform(-50, 350, (30, 2)) + 1e6])
    snap = net.snap(pts, snap_limit_m=1000.0)
    every = shapely.distance(shapely.points(pts)[:, None], net.edge_geometry[None, :])
    assert np.allclose(snap.access_m, every.min(axis=1), rtol=0, atol=1e-9)
    assert snap.ok.all()
    one = WalkNetwork.from_arrays(
        node_id=np.array([0, 1]),
        node_xy=np.array([[0.0, 0.0], [100.0, 0.0]]),
        edge_u_id=np.array([0]),
        edge_v_id=np.array([1]),
        crs=32650,
    )
    far = one.snap(np.array([[50.0, 90_000.0], [np.inf, 0.0], [np.nan, 1.0]]), snap_limit_m=1e5)
    assert far.edge.tolist() == [0, -1, -1] and far.access_m[0] == 90_000.0


def test_edges_drawn_as_multi_lines_are_joined_and_other_shapes_refused():
    import shapely

    from servicecircle._errors import InputError
    from servicecircle.network import WalkNetwork

    xy = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 100.0]])

    def net(first_edge):
        return WalkNetwork.from_arrays(
            node_id=np.arange(3),
            node_xy=xy,
            edge_u_id=np.array([0, 1]),
            edge_v_id=np.array([1, 2]),
            edge_geometry=np.array([first_edge, None], dtype=object),
            crs=32650,
        )

    joined = net(shapely.MultiLineString([[(100, 0), (50, 0)], [(50, 0), (0, 0)]]))
    assert joined.edge_length_m.tolist() == [100.0, 100.0]
    assert joined.snap(np.array([[40.0, 5.0]])).offset_m.tolist() == [40.0]
    for bad in (shapely.MultiLineString([[(0, 0), (10, 0)], [(50, 0), (100, 0)]]), shapely.Point()):
        with pytest.raises(InputError, match="not one line each"):
            net(bad)


def test_edges_are_tied_to_their_nodes_by_id_in_any_order_and_unknown_ids_refused():
    """Node ids are looked up whatever their order (a hash lookup, not a search of sorted
    ids); an edge naming a node that is not there, or a repeated node id, is one error."""
    from servicecircle._errors import InputError

    ids = np.array([907, 3, 12_000_000_001, 55])  # not sorted, one above 2**32
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 50.0], [0.0, 50.0]])
    net = WalkNetwork.from_arrays(
        node_id=ids,
        node_xy=xy,
        edge_u_id=np.array([907, 3, 12_000_000_001]),
        edge_v_id=np.array([3, 12_000_000_001, 55]),
        crs=32650,
    )
    assert net.edge_u.tolist() == [0, 1, 2] and net.edge_v.tolist() == [1, 2, 3]
    assert net.edge_length_m.tolist() == [100.0, 50.0, 100.0]
    with pytest.raises(InputError, match=r"1 edges name an unknown v node \(e.g. 56\)"):
        WalkNetwork.from_arrays(
            node_id=ids, node_xy=xy, edge_u_id=np.array([3]), edge_v_id=np.array([56]), crs=32650
        )
    with pytest.raises(InputError, match="duplicate node ids"):
        WalkNetwork.from_arrays(
            node_id=np.array([3, 4, 3]),
            node_xy=xy[:3],
            edge_u_id=np.array([3]),
            edge_v_id=np.array([4]),
            crs=32650,
        )
