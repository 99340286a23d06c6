"""Reading areas offline from real OSM files, and refusing bad ones clearly."""

from __future__ import annotations

import bz2

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BEIJING, NANJING, shared_file
from servicecircle import EmptyAreaError, InputError, InputFileNotFoundError
from servicecircle.area import load_area
from servicecircle.osm import walkable_mask


def test_demo_area_is_projected_and_walkable(demo_area):
    assert demo_area.crs.to_epsg() == 32635  # UTM 35N for Helsinki
    assert len(demo_area.edges) > 5000 and len(demo_area.buildings) > 400
    assert demo_area.edges.crs == demo_area.crs and demo_area.buildings.crs == demo_area.crs
    # metres: the area is a few km across, not a few thousandths of a degree
    minx, miny, maxx, maxy = demo_area.boundary.bounds
    assert 500 < maxx - minx < 5000 and 500 < maxy - miny < 5000


@pytest.mark.parametrize("path", [NANJING, BEIJING], ids=["nanjing", "beijing"])
def test_chinese_extracts_keep_only_walkable_ways_and_clip_to_the_core(path):
    area = load_area(shared_file(path))
    assert area.crs.to_epsg() == 32650
    # no building outline became a street
    assert area.edges["highway"].notna().all()
    assert not area.edges["highway"].isin(["motorway", "construction", "proposed"]).any()
    b = area.boundary_wgs84().bounds
    # the walkable core, not the far-away nodes of route relations
    assert b[2] - b[0] < 0.06 and b[3] - b[1] < 0.04
    assert len(area.buildings) > 300 and len(area.pois) > 100
    assert area.report["walk_edges"] == len(area.edges)


def test_nanjing_core_matches_provenance(nanjing_area):
    west, south, east, north = nanjing_area.boundary_wgs84().bounds
    assert 118.75 < west < 118.77 and 118.79 < east < 118.81
    assert 32.02 < south < 32.04 and 32.05 < north < 32.06


def test_boundary_clips_and_is_counted(nanjing_area):
    area = load_area(shared_file(NANJING), boundary=(118.775, 32.038, 118.785, 32.046))
    assert len(area.edges) < len(nanjing_area.edges)
    assert area.report["walk_edges_outside_boundary"] > 0
    assert area.report["buildings_outside_boundary"] > 0


def test_walkable_filter():
    import pandas as pd

    tags = pd.DataFrame(
        {
            "highway": [
                "footway",
                "motorway",
                "residential",
                "cycleway",
                "cycleway",
                "service",
                "pedestrian",
                "primary",
                None,
            ],
            "area": [None, None, None, None, None, None, "yes", None, None],
            "foot": [None, None, "no", None, "yes", None, None, None, None],
            "service": [None, None, None, None, None, "private", None, None, None],
        }
    )
    assert walkable_mask(tags).tolist() == [
        True,
        False,
        False,
        False,
        True,
        False,
        False,
        True,
        False,
    ]


def test_graphml_round_trip(tmp_path, nanjing_area):
    import osmnx as ox

    # build a small walk graph with osmnx from our own edges and read it back as it is
    from servicecircle.network import WalkNetwork

    net = WalkNetwork.from_area(nanjing_area)
    g = net.to_networkx()
    import networkx as nx

    dg = nx.MultiDiGraph(crs=nanjing_area.crs.to_string())
    for i in range(net.n_nodes):
        dg.add_node(int(net.node_id[i]), x=float(net.node_xy[i, 0]), y=float(net.node_xy[i, 1]))
    for a, b, data in g.edges(data=True):
        dg.add_edge(int(net.node_id[a]), int(net.node_id[b]), length=data["length"])
    path = tmp_path / "walk.graphml"
    ox.save_graphml(dg, path)
    area = load_area(path)
    assert len(area.nodes) == len(dg)
    assert area.crs.equals(nanjing_area.crs)


# ----------------------------------------------------------------- bad input
def test_missing_file():
    with pytest.raises(InputFileNotFoundError, match="no such file"):
        load_area("nowhere/area.osm.pbf")


def test_unknown_extension(tmp_path):
    path = tmp_path / "area.shp.zip"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match=r"unknown file type '\.zip'.*\.osm\.pbf"):
        load_area(path)


def test_malformed_xml(tmp_path):
    path = tmp_path / "broken.osm"
    path.write_text('<?xml version="1.0"?><osm><node id="1" lat="1" lon="1"></osm>')
    with pytest.raises(InputError, match="malformed OSM XML .*re-export"):
        load_area(path)


def test_truncated_bz2(tmp_path):
    raw = bz2.compress(b'<?xml version="1.0"?><osm>' + b"<node id='1' lat='1' lon='1'/>" * 200)
    path = tmp_path / "cut.osm.bz2"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="cut.osm.bz2"):
        load_area(path)


def test_xml_without_streets(tmp_path):
    path = tmp_path / "nostreet.osm"
    path.write_text(
        '<?xml version="1.0"?><osm version="0.6">'
        '<node id="1" lat="32.0" lon="118.0"/><node id="2" lat="32.001" lon="118.0"/>'
        '<node id="3" lat="32.001" lon="118.001"/>'
        '<way id="9"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="1"/>'
        '<tag k="building" v="yes"/></way></osm>'
    )
    with pytest.raises(EmptyAreaError, match="no walkable highway"):
        load_area(path)


def test_empty_area_after_clipping():
    with pytest.raises(EmptyAreaError, match="no walkable street inside the boundary"):
        load_area("demo", boundary=(10.0, 50.0, 10.01, 50.01))


def test_boundary_that_is_not_a_polygon():
    import shapely

    with pytest.raises(InputError, match="boundary must be a polygon"):
        load_area("demo", boundary=shapely.LineString([(24.94, 60.16), (24.95, 60.17)]))


def test_boundary_tuple_in_wrong_order():
    with pytest.raises(InputError, match="west < east"):
        load_area("demo", boundary=(24.95, 60.17, 24.94, 60.16))


def test_demo_edges_are_both_directions(demo_network):
    # every edge is usable both ways: the CSR is symmetric
    diff = demo_network.csr - demo_network.csr.T
    assert np.abs(diff.data).max(initial=0) < 1e-9


@settings(max_examples=300, deadline=None)
@given(
    lon=st.floats(-179.9, 179.9).filter(lambda x: abs((x + 180) / 6 - round((x + 180) / 6)) > 1e-6),
    lat=st.floats(-79.9, 83.9).filter(lambda y: abs(y) > 1e-9),
)
def test_the_utm_zone_formula_picks_what_the_crs_database_picks(lon, lat):
    """Oracle: geopandas' ``estimate_utm_crs`` (a query of pyproj's database)."""
    import geopandas as gpd
    import shapely

    from servicecircle._crs import utm_crs

    expected = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).estimate_utm_crs()
    assert utm_crs(lon, lat).to_epsg() == expected.to_epsg()


def test_a_pbf_cut_between_blocks_is_called_incomplete_not_a_boundary_problem(tmp_path):
    """Cut after the node blocks, the file is valid but holds no ways; no boundary was given,
    so the message must not send the user to it."""
    from servicecircle.area import demo_path
    from servicecircle.pbf_blocks import blob_payload, dense_block, iter_blobs

    kept = []
    for raw, kind, blob in iter_blobs(str(demo_path()), [(0, None)]):
        if kind == "OSMHeader" or dense_block(blob_payload(blob)) is not None:
            kept.append(raw)
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(b"".join(kept))
    with pytest.raises(EmptyAreaError, match="holds no walkable street; check that it is the"):
        load_area(cut)
