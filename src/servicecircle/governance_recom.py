"""Recombination of governance grids (ReCom): a grid outside the household range is merged
with neighbouring grids and the merged atoms re-split along random spanning trees.

The recombination step of GerryChain (DeFord, Duchin & Solomon, *Recombination: a family of
Markov chains for redistricting*, 2021): a spanning tree of the merged atoms is drawn (random
edge weights, a block's own atoms first, major roads last), and a tree edge is cut where one
side falls in the range and the other can hold the remaining grids. The merged grids may come
back as one fewer or one more grid when their households ask for it; of the splits found along
:data:`TREES` trees, the best-shaped one is kept. Used as a search for a feasible arrangement,
not as a Markov chain: a split is accepted only when it brings every grid it touches into the
range.
"""

from __future__ import annotations

import math

import numpy as np

from .governance_graph import (
    AtomGraph,
    components,
    deviation,
    grid_neighbours,
    grid_stats,
    set_score,
    shape_score,
)

TREES = 12
"""Spanning trees drawn per recombination."""
MAX_GROUP = 6
"""Grids re-split together at most (the grid outside the range and up to five neighbours)."""
GROUPS_PER_SIZE = 24
"""Neighbourhoods of one size tried per grid outside the range."""
COMPONENT_ATOMS = 150
"""A connected part of a community up to this many atoms is re-split whole as a last resort."""


def recombine(
    g: AtomGraph, grid_of: np.ndarray, lo: float, hi: float, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Re-split each grid outside the range together with its neighbours (see module doc)."""
    grid_of = grid_of.copy()
    done = 0
    tried: dict[int, bytes] = {}
    while True:
        count = int(grid_of.max()) + 1
        totals = np.bincount(grid_of, weights=g.hh, minlength=count)
        tower_grid = np.zeros(count, dtype=bool)
        tower_grid[grid_of[g.tower]] = True
        present = np.bincount(grid_of, minlength=count) > 0
        deviants = np.flatnonzero(present & ~tower_grid & (deviation(totals, lo, hi) > 0))
        if len(deviants) == 0:
            return grid_of, done
        progress = False
        for a in deviants.tolist():
            near = _nearby_atoms(g, grid_of, a)
            sig = near.tobytes()
            if tried.get(a) == sig:
                continue  # nothing changed around it since the last failure
            if _recombine_one(g, grid_of, a, lo, hi, rng):
                done += 1
                progress = True
                break
            tried[a] = sig
        if not progress and not _recombine_component(g, grid_of, lo, hi, rng):
            return grid_of, done
        done += int(not progress)


def _recombine_component(
    g: AtomGraph, grid_of: np.ndarray, lo: float, hi: float, rng: np.random.Generator
) -> bool:
    """Last resort for a small connected part (at most :data:`COMPONENT_ATOMS` atoms) with a
    grid still outside the range: re-split the whole part along spanning trees."""
    comp = components(g)
    count = int(grid_of.max()) + 1
    totals = np.bincount(grid_of, weights=g.hh, minlength=count)
    bad = np.flatnonzero(
        (deviation(totals, lo, hi) > 0) & (np.bincount(grid_of, minlength=count) > 0)
    )
    for c in sorted({int(comp[np.flatnonzero(grid_of == x)[0]]) for x in bad.tolist()}):
        atoms = np.flatnonzero(comp == c)
        if len(atoms) > COMPONENT_ATOMS or g.tower[atoms].any():
            continue
        total = float(g.hh[atoms].sum())
        ids = sorted(set(grid_of[atoms].tolist()))
        ks = [k for k in range(1, math.ceil(total / lo) + 2) if k * lo <= total <= k * hi]
        for k in sorted(ks, key=lambda k: (abs(k - len(ids)), k)):
            parts = partition(g, atoms, k, lo, hi, rng, tries=4 * TREES)
            if parts is None:
                continue
            for i, p in enumerate(parts):
                grid_of[p] = ids[i] if i < len(ids) else int(grid_of.max()) + 1
            return True
    return False


def _nearby_atoms(g: AtomGraph, grid_of: np.ndarray, a: int) -> np.ndarray:
    """The atoms of grid ``a`` and of the grids around it that its search reaches."""
    grids = {a}
    for _ in range(MAX_GROUP - 1):
        for x in sorted(grids):
            grids |= set(grid_neighbours(g, grid_of, np.flatnonzero(grid_of == x)))
    lab = np.isin(grid_of, sorted(grids))
    return np.flatnonzero(lab) * 1 + grid_of[lab] * g.n


def _recombine_one(
    g: AtomGraph, grid_of: np.ndarray, a: int, lo: float, hi: float, rng: np.random.Generator
) -> bool:
    """Try neighbourhoods of grid ``a`` of growing size; apply the best-shaped re-split of the
    smallest neighbourhood that brings every grid in it into the range."""
    level: list[tuple[int, ...]] = [(a,)]
    for size in range(2, MAX_GROUP + 1):
        nxt: list[tuple[int, ...]] = []
        seen: set[tuple[int, ...]] = set()
        for group in level:
            atoms = np.flatnonzero(np.isin(grid_of, group))
            for o in sorted(grid_neighbours(g, grid_of, atoms)):
                new = tuple(sorted({*group, o}))
                if len(new) == size and new not in seen:
                    seen.add(new)
                    nxt.append(new)
        level = nxt[:GROUPS_PER_SIZE]
        if not level:
            return False
        best: tuple[float, list[np.ndarray], tuple[int, ...]] | None = None
        for group in level:
            region = np.flatnonzero(np.isin(grid_of, group))
            total = float(g.hh[region].sum())
            old = sum(set_score(g, np.flatnonzero(grid_of == x)) for x in group)
            for k in (size, size - 1, size + 1):
                if k < 1 or not k * lo <= total <= k * hi:
                    continue
                parts = partition(g, region, k, lo, hi, rng)
                if parts is None:
                    continue
                delta = sum(set_score(g, p) for p in parts) - old
                if best is None or delta < best[0] - 1e-12:
                    best = (delta, parts, group)
                break
        if best is not None:
            _, parts, group = best
            ids = list(group)
            for i, p in enumerate(parts):
                grid_of[p] = ids[i] if i < len(ids) else int(grid_of.max()) + 1
            return True
    return False


def partition(
    g: AtomGraph,
    region: np.ndarray,
    k: int,
    lo: float,
    hi: float,
    rng: np.random.Generator,
    *,
    tries: int = TREES,
) -> list[np.ndarray] | None:
    """The best-shaped of the splits of ``region`` into ``k`` connected parts of ``lo``–``hi``
    households found along ``tries`` random spanning trees."""
    best, best_score = None, math.inf
    for t in range(tries):
        parts = _tree_split(g, region, k, lo, hi, rng, greedy=t == 0)
        if parts is None:
            continue
        s = sum(set_score(g, p) for p in parts)
        if s < best_score - 1e-12:
            best, best_score = parts, s
    return best


def _tree_split(
    g: AtomGraph,
    region: np.ndarray,
    k: int,
    lo: float,
    hi: float,
    rng: np.random.Generator,
    *,
    greedy: bool,
) -> list[np.ndarray] | None:
    """One random spanning tree of the region; cut a tree edge that leaves one part in range
    and the rest able to hold ``k − 1`` parts (the best-shaped such part when ``greedy``, else
    one at random, as GerryChain does); recurse on the rest."""
    total = float(g.hh[region].sum())
    if k == 1:
        return [region] if lo - 1e-9 <= total <= hi + 1e-9 else None
    r = len(region)
    loc = np.full(g.n, -1, dtype="int64")
    loc[region] = np.arange(r)
    em = (loc[g.eu] >= 0) & (loc[g.ev] >= 0)
    lu, lv = loc[g.eu[em]], loc[g.ev[em]]
    # spanning trees keep a block's atoms together and cut streets, major roads first
    weight = rng.random(len(lu)) + (1.0 - g.inner[em]) + g.major[em]
    tu, tv = _kruskal(r, lu, lv, weight)
    if len(tu) < r - 1:
        return None  # the region is not connected
    order, size = _preorder(r, tu, tv)
    tin = np.empty(r, dtype="int64")
    tin[order] = np.arange(r)
    hh_l = g.hh[region]
    sub = _subtree_sums(order, size, hh_l)
    cand = order[1:]
    s = sub[cand]
    c = total - s
    m = k - 1
    side_sub = (s >= lo - 1e-9) & (s <= hi + 1e-9) & (c >= m * lo - 1e-9) & (c <= m * hi + 1e-9)
    side_com = (c >= lo - 1e-9) & (c <= hi + 1e-9) & (s >= m * lo - 1e-9) & (s <= m * hi + 1e-9)
    ok = side_sub | side_com
    if not ok.any():
        return None
    cand, side_sub = cand[ok], side_sub[ok]
    start, stop = tin[cand][:, None], (tin[cand] + size[cand])[:, None]
    masks = (tin[None, :] >= start) & (tin[None, :] < stop)
    masks = np.where(side_sub[:, None], masks, ~masks)  # the single part of each candidate
    scores = _mask_scores(g, region, masks, em, lu, lv)
    if k == 2:
        scores = scores + _mask_scores(g, region, ~masks, em, lu, lv)
    best = int(np.argmin(scores)) if greedy else int(rng.integers(len(scores)))
    part = region[masks[best]]
    rest = _tree_split(g, region[~masks[best]], k - 1, lo, hi, rng, greedy=greedy)
    return None if rest is None else [part, *rest]


def _kruskal(
    r: int, lu: np.ndarray, lv: np.ndarray, weight: np.ndarray
) -> tuple[list[int], list[int]]:
    """Minimum spanning tree (forest) of a small graph: its edges' two ends."""
    parent = list(range(r))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    us, vs = lu.tolist(), lv.tolist()
    tu: list[int] = []
    tv: list[int] = []
    for e in np.argsort(weight, kind="stable").tolist():
        a, b = find(us[e]), find(vs[e])
        if a != b:
            parent[a] = b
            tu.append(us[e])
            tv.append(vs[e])
            if len(tu) == r - 1:
                break
    return tu, tv


def _preorder(r: int, tu: list[int], tv: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Depth-first preorder of a tree from node 0 (each subtree contiguous) and subtree sizes."""
    adj: list[list[int]] = [[] for _ in range(r)]
    for x, y in zip(tu, tv, strict=True):
        adj[x].append(y)
        adj[y].append(x)
    order: list[int] = []
    parent = [-1] * r
    seen = [False] * r
    seen[0] = True
    stack = [0]
    while stack:
        x = stack.pop()
        order.append(x)
        for y in sorted(adj[x], reverse=True):
            if not seen[y]:
                seen[y] = True
                parent[y] = x
                stack.append(y)
    size = np.ones(r, dtype="int64")
    for x in reversed(order[1:]):
        size[parent[x]] += size[x]
    return np.asarray(order, dtype="int64"), size


def _subtree_sums(order: np.ndarray, size: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Σ weight over the subtree of each node (subtrees are contiguous in the preorder)."""
    cum = np.concatenate([[0.0], np.cumsum(w[order])])
    tin = np.empty(len(order), dtype="int64")
    tin[order] = np.arange(len(order))
    return cum[tin + size] - cum[tin]


def _mask_scores(
    g: AtomGraph,
    region: np.ndarray,
    masks: np.ndarray,
    em: np.ndarray,
    lu: np.ndarray,
    lv: np.ndarray,
) -> np.ndarray:
    """Shape score of each candidate part (a boolean mask over the region's atoms)."""
    m = masks.astype(float)
    internal = (masks[:, lu] & masks[:, lv]).astype(float)
    L = g.length[em]
    return np.asarray(
        shape_score(
            m @ g.area[region],
            m @ g.perim[region],
            m @ g.inner_total[region],
            internal @ L,
            internal @ (L * g.inner[em]),
            internal @ (L * g.major[em]),
        )
    )


def improve_pairs(
    g: AtomGraph,
    grid_of: np.ndarray,
    lo: float,
    hi: float,
    rng: np.random.Generator,
    *,
    share: float = 0.3,
    tries: int = TREES // 2,
) -> tuple[np.ndarray, int]:
    """Recombination as an improvement step: the worst-shaped ``share`` of the grids, each
    with each neighbour in turn, re-split along spanning trees when that lowers their shape
    score and keeps both in range (one pass, worst first)."""
    grid_of = grid_of.copy()
    count = int(grid_of.max()) + 1
    tower_grid = np.zeros(count, dtype=bool)
    tower_grid[grid_of[g.tower]] = True
    st = grid_stats(g, grid_of, count)
    scores = shape_score(st["area"], st["psum"], st["itot"], st["lint"], st["lin"], st["lmaj"])
    present = np.bincount(grid_of, minlength=count) > 0
    order = [int(x) for x in np.argsort(-scores, kind="stable") if present[x] and not tower_grid[x]]
    done = 0
    for a in order[: max(1, int(len(order) * share))]:
        for b in sorted(grid_neighbours(g, grid_of, np.flatnonzero(grid_of == a))):
            pair = np.flatnonzero((grid_of == a) | (grid_of == b))
            total = float(g.hh[pair].sum())
            if not 2 * lo <= total <= 2 * hi:
                continue
            old = set_score(g, np.flatnonzero(grid_of == a)) + set_score(
                g, np.flatnonzero(grid_of == b)
            )
            parts = partition(g, pair, 2, lo, hi, rng, tries=tries)
            if parts is None:
                continue
            new = set_score(g, parts[0]) + set_score(g, parts[1])
            if new < old - 1e-6:
                grid_of[parts[0]] = a
                grid_of[parts[1]] = b
                done += 1
                break
    return grid_of, done
