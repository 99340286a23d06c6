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
