"""Lattice helpers, subgraph extraction and the benchmark script's functions on a small case."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from lattice import lattice_network, random_points


def test_subgraph_equals_sparse_fancy_indexing():
    net = lattice_network(900, seed=3)
    nodes = np.sort(np.random.default_rng(0).choice(net.n_nodes, 200, replace=False))
    got = net.subgraph(nodes)
    want = net.csr[nodes][:, nodes]
    assert (abs(got - want)).max() == 0 and got.nnz == want.nnz
    neigh = net.neighbours(nodes[:5])
    assert set(neigh) == set(np.unique(net.csr[nodes[:5]].indices))


def test_benchmark_functions_run(capsys):
    import bench_coverage

    net = lattice_network(2500, seed=1)
    out = bench_coverage.bench_network(net, "tiny", 5, 100, 800.0, with_networkx=True, repeat=1)
    assert out["scipy_s"] > 0 and out["networkx_s"] > 0
    w = bench_coverage.bench_whatif(net, 10, 200, 300.0, 1)
    assert w["add_s"] > 0
    assert "what-if" in capsys.readouterr().out
    assert random_points(net, 3, seed=0).shape == (3, 2)


def test_street_lines_are_the_network_edges_in_page_coordinates():
    """The streets drawn on a map: each edge's vertices, moved to WGS84 (or GCJ-02 for Amap
    tiles) by pyproj and the coords module as an oracle, to float32 precision; none for a
    network over the limit."""
    import base64

    from pyproj import Transformer

    from servicecircle import coords as cc
    from servicecircle import map_markers
    from servicecircle.area import load_area
    from servicecircle.network import WalkNetwork
    from servicecircle.pages import PageCoords

    net = WalkNetwork.from_area(load_area("demo", cache=None))
    lon, lat = Transformer.from_crs(net.crs, 4326, always_xy=True).transform(
        net.edge_coords[:, 0], net.edge_coords[:, 1]
    )
    for system in ("wgs84", "gcj02"):
        spec = map_markers.street_lines(PageCoords(system), net)
        dx, dy = (np.frombuffer(base64.b64decode(spec[k]), "<f4") for k in ("dx", "dy"))
        starts = np.frombuffer(base64.b64decode(spec["starts"]), "<i4")
        assert np.array_equal(starts, net.edge_offsets)
        want = (
            (lon, lat) if system == "wgs84" else cc.from_wgs84(np.array(lon), np.array(lat), system)
        )
        got_lon = spec["origin"][0] + dx.astype(float)
        got_lat = spec["origin"][1] + dy.astype(float)
        assert np.abs(got_lon - want[0]).max() < 1e-6 and np.abs(got_lat - want[1]).max() < 1e-6
    limit = map_markers.STREETS_MAX_VERTICES
    try:
        map_markers.STREETS_MAX_VERTICES = len(net.edge_coords) - 1
        assert map_markers.street_lines(PageCoords(), net) is None
    finally:
        map_markers.STREETS_MAX_VERTICES = limit
