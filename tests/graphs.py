"""Small hand-built and random networks for tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from servicecircle.network import WalkNetwork

CRS = "EPSG:32650"


def make_net(node_xy, edges, **options):
    ids = np.arange(len(node_xy))
    return WalkNetwork.from_arrays(
        node_id=ids,
        node_xy=np.asarray(node_xy, float),
        edge_u_id=np.array([e[0] for e in edges]),
        edge_v_id=np.array([e[1] for e in edges]),
        edge_geometry=np.array([e[2] if len(e) > 2 else None for e in edges], dtype=object),
        crs=CRS,
        **options,
    )


@st.composite
def random_network(draw, integer_points=False):
    n = draw(st.integers(3, 14))
    xy = draw(
        st.lists(
            st.tuples(st.integers(0, 1000), st.integers(0, 1000)),
            min_size=n,
            max_size=n,
            unique=True,
        )
    )
    # a spanning-ish tree plus extra edges; some nodes may stay isolated pieces
    edges = set()
    for i in range(1, n):
        if draw(st.booleans()) or i < 3:
            j = draw(st.integers(0, i - 1))
            edges.add((j, i))
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=n))
    for a, b in extra:
        if a != b:
            edges.add((min(a, b), max(a, b)))
    if not edges:
        edges.add((0, 1))
    if integer_points:  # equally near edges and facilities become common
        pts = st.tuples(st.integers(-100, 1100), st.integers(-100, 1100)).map(
            lambda p: (float(p[0]), float(p[1]))
        )
    else:
        pts = st.tuples(st.floats(-100, 1100), st.floats(-100, 1100))
    demand = draw(st.lists(pts, min_size=1, max_size=12))
    fac = draw(st.lists(pts, min_size=1, max_size=5))
    return xy, sorted(edges), demand, fac
