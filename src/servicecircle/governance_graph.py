"""The atom graph of governance grids: atoms (pieces of street blocks) and the borders they
share, with the shape score the rebalancing search minimises.

Shape score of a grid (lower is better): ``(1 − Polsby–Popper) + W_INNER × (share of its
boundary that runs through blocks instead of along streets) + W_MAJOR × (length of major
road inside it ÷ its perimeter)``. All of it is computed on the atom graph, without unions:
a grid's perimeter is the sum of its atoms' perimeters less twice their shared borders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .geometry import line_share_near

if TYPE_CHECKING:
    import geopandas as gpd

W_INNER = 1.0
"""Weight of a grid boundary that runs through a block rather than along a street."""
W_MAJOR = 2.0
"""Weight of a primary/secondary road running inside a grid (the grid crosses it)."""


@dataclass(frozen=True)
class AtomGraph:
    """Atoms and the borders they share (within one community), as arrays."""

    hh: np.ndarray
    area: np.ndarray
    perim: np.ndarray
    inner_total: np.ndarray
    community: np.ndarray
    tower: np.ndarray
    unit: np.ndarray
    eu: np.ndarray
    ev: np.ndarray
    length: np.ndarray
    inner: np.ndarray
    major: np.ndarray
    nbrs: tuple[np.ndarray, ...]
    nbr_edges: tuple[np.ndarray, ...]

    @property
    def n(self) -> int:
        return len(self.hh)


def atom_graph(
    geoms: np.ndarray,
    community: np.ndarray,
    part: np.ndarray,
    unit: np.ndarray,
    hh: np.ndarray,
    tower: np.ndarray,
    edges: gpd.GeoDataFrame,
    major_roads: tuple[str, ...],
) -> AtomGraph:
    """Neighbouring atoms: same community, sharing more than 1 m of border. A border between
    atoms of one block runs through the block (``inner``); between blocks it is a street, and
    ``major`` is the share of it along a primary/secondary road."""
    import shapely

    n = len(geoms)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = (a < b) & (community[a] == community[b])
    a, b = a[keep], b[keep]
    shared = shapely.intersection(geoms[a], geoms[b])
    length = shapely.length(shared)
    real = length > 1.0
    a, b, shared, length = a[real], b[real], shared[real], length[real]
    inner = (part[a] == part[b]).astype(float)
    along = np.zeros(len(shared))
    if "highway" in edges.columns:
        major = edges[edges["highway"].astype("string").isin(major_roads).fillna(False)]
        street = inner == 0
        if len(major) and street.any():
            along[street] = line_share_near(shared[street], major.geometry.to_numpy(), tol_m=2.0)
    along = np.clip(along, 0.0, 1.0)
    inner_total = np.bincount(a, weights=length * inner, minlength=n) + np.bincount(
        b, weights=length * inner, minlength=n
    )
    ends = np.concatenate([a, b])
    others = np.concatenate([b, a])
    eidx = np.concatenate([np.arange(len(a)), np.arange(len(a))])
    order = np.lexsort((others, ends))
    bounds = np.searchsorted(ends[order], np.arange(n + 1))
    others, eidx = others[order], eidx[order]
    nbrs = tuple(others[bounds[i] : bounds[i + 1]] for i in range(n))
    nbr_edges = tuple(eidx[bounds[i] : bounds[i + 1]] for i in range(n))
    return AtomGraph(
        hh=np.asarray(hh, dtype=float),
        area=shapely.area(geoms),
        perim=shapely.length(geoms),
        inner_total=inner_total,
        community=community,
        tower=np.asarray(tower, dtype=bool),
        unit=np.asarray(unit),
        eu=a,
        ev=b,
        length=length,
        inner=inner,
        major=along,
        nbrs=nbrs,
        nbr_edges=nbr_edges,
    )


def shape_score(area: Any, psum: Any, itot: Any, lint: Any, lin: Any, lmaj: Any) -> Any:
    """Shape score (see the module docstring) from a grid's area, Σ atom perimeters, Σ inner
    borders of its atoms, and its internal borders: all, inner, along major roads."""
    perim = np.maximum(psum - 2.0 * lint, 1e-9)
    pp = 4.0 * math.pi * area / perim**2
    return (1.0 - pp) + W_INNER * (itot - 2.0 * lin) / perim + W_MAJOR * lmaj / perim


def grid_stats(g: AtomGraph, grid_of: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """Per grid: households, area, Σ atom perimeters, Σ inner borders, and the internal
    border lengths (all, inner, along major roads)."""
    same = grid_of[g.eu] == grid_of[g.ev]
    gid = grid_of[g.eu][same]
    L = g.length[same]
    return {
        "hh": np.bincount(grid_of, weights=g.hh, minlength=count),
        "area": np.bincount(grid_of, weights=g.area, minlength=count),
        "psum": np.bincount(grid_of, weights=g.perim, minlength=count),
        "itot": np.bincount(grid_of, weights=g.inner_total, minlength=count),
        "lint": np.bincount(gid, weights=L, minlength=count),
        "lin": np.bincount(gid, weights=L * g.inner[same], minlength=count),
        "lmaj": np.bincount(gid, weights=L * g.major[same], minlength=count),
    }


def set_score(g: AtomGraph, atoms: np.ndarray) -> float:
    """Shape score of one set of atoms taken as a grid."""
    lab = np.zeros(g.n, dtype="int64")
    lab[atoms] = 1
    s = {k: v[1] for k, v in grid_stats(g, lab, 2).items()}
    return float(shape_score(s["area"], s["psum"], s["itot"], s["lint"], s["lin"], s["lmaj"]))


def deviation(h: Any, lo: float, hi: float) -> Any:
    """Households outside the range ``lo``–``hi`` (0 inside it)."""
    return np.maximum(lo - h, 0.0) + np.maximum(h - hi, 0.0)


def grid_neighbours(g: AtomGraph, grid_of: np.ndarray, members: np.ndarray) -> dict[int, float]:
    """Neighbouring grids of a set of atoms and the border shared with each."""
    out: dict[int, float] = {}
    own = int(grid_of[members[0]])
    for m in members.tolist():
        for j, e in zip(g.nbrs[m].tolist(), g.nbr_edges[m].tolist(), strict=True):
            other = int(grid_of[j])
            if other != own and not g.tower[j]:
                out[other] = out.get(other, 0.0) + float(g.length[e])
    return out


def components(g: AtomGraph) -> np.ndarray:
    """Connected part of each atom (towers apart: a tower is a grid of its own)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ok = ~(g.tower[g.eu] | g.tower[g.ev])
    adj = coo_matrix((np.ones(int(ok.sum())), (g.eu[ok], g.ev[ok])), shape=(g.n, g.n))
    return np.asarray(connected_components(adj, directed=False)[1], dtype="int64")
