"""Seeded synthetic street lattices for benchmarks and scale tests."""

from __future__ import annotations

import numpy as np

from servicecircle.network import WalkNetwork

CRS = "EPSG:32650"


def lattice_arrays(
    n_nodes: int, *, spacing_m: float = 100.0, seed: int = 0, drop: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A jittered square street lattice of about ``n_nodes`` nodes.

    Nodes sit on a ``spacing_m`` grid moved by up to 10 % of the spacing; a share ``drop`` of the
    street pieces is removed (dead ends and missing links, as in a real district).

    Returns
    -------
    node_xy, edge_u, edge_v
    """
    rng = np.random.default_rng(seed)
    side = round(np.sqrt(n_nodes))
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    xy = np.column_stack([ii.ravel(), jj.ravel()]).astype(float) * spacing_m
    xy += rng.uniform(-0.1, 0.1, size=xy.shape) * spacing_m
    idx = np.arange(side * side).reshape(side, side)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    keep = rng.random(len(u)) >= drop
    return xy, u[keep], v[keep]


def lattice_network(n_nodes: int, *, seed: int = 0) -> WalkNetwork:
    """A :class:`WalkNetwork` on a seeded lattice (straight edges)."""
    xy, u, v = lattice_arrays(n_nodes, seed=seed)
    return WalkNetwork.from_arrays(
        node_id=np.arange(len(xy)), node_xy=xy, edge_u_id=u, edge_v_id=v, crs=CRS
    )


def random_points(net: WalkNetwork, n: int, *, seed: int) -> np.ndarray:
    """``n`` points uniformly over the lattice's extent."""
    rng = np.random.default_rng(seed)
    lo = net.node_xy.min(axis=0)
    hi = net.node_xy.max(axis=0)
    return rng.uniform(lo, hi, size=(n, 2))
