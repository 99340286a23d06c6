"""Rebalancing governance grids: atoms (pieces of street blocks) → grids in a household range.

Three steps, all deterministic for the same input and seed:

1. **Grow.** Greedy region growing in north-west → south-east order: a grid takes the
   neighbouring atom of its own block first, then across a minor street, then across a major
   road, until it reaches the minimum without passing the maximum; grids still below the
   minimum join a neighbour when the two fit under the maximum.
2. **Recombine.** Each grid still outside the range is merged with one to five neighbouring
   grids and the merged atoms are re-split along random spanning trees, the recombination
   step of GerryChain (:mod:`servicecircle.governance_recom`); as a last resort a small
   connected part of a community is re-split whole.
3. **Refine.** Local search (descent, as in Ricca & Simeone, *Local search algorithms for
   political districting*, 2008): a boundary atom moves to a neighbouring grid when both stay
   contiguous and in range and the shape score improves; then the worst-shaped grids are
   re-split with each neighbour in turn when that improves both (recombination as an
   improvement step), and the descent runs once more.

Grids never cross a community boundary (atoms of different communities are not neighbours),
and an atom holding one building over the maximum (a *tower*) is a grid of its own.

The shape score (compact, street-bounded, not crossing major roads) is defined with the atom
graph in :mod:`servicecircle.governance_graph`. What is left outside the range is flagged with
the reason: what its connected part of the community holds when that settles it (no
arrangement exists), else that the search found none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .governance_graph import (
    AtomGraph,
    components,
    grid_stats,
    shape_score,
)
from .governance_recom import MAX_GROUP, improve_pairs, recombine


@dataclass(frozen=True)
class Balance:
    """Grids as labels of atoms, the flag of each grid, and what the search did: re-splits
    that brought grids into the range, re-splits that improved their shape, atom moves."""

    grid_of: np.ndarray
    flags: tuple[str, ...]
    recombinations: int
    shape_recombinations: int
    moves: int


def balance(g: AtomGraph, lo: float, hi: float, *, seed: int = 0) -> Balance:
    """Atoms → grids of ``lo``–``hi`` households wherever the search finds an arrangement;
    the grids it cannot bring into the range are flagged with the reason."""
    rng = np.random.default_rng(seed)
    grid_of = _grow(g, lo, hi)
    grid_of, recombinations = recombine(g, grid_of, lo, hi, rng)
    grid_of, moves = _refine(g, grid_of, lo, hi)
    grid_of, improved = improve_pairs(g, grid_of, lo, hi, rng)
    grid_of, more = _refine(g, grid_of, lo, hi)
    grid_of = np.unique(grid_of, return_inverse=True)[1].ravel().astype("int64")
    flags = tuple(_reasons(g, grid_of, lo, hi))
    return Balance(grid_of, flags, recombinations, improved, moves + more)


# ------------------------------------------------------------------ 1. grow
def _grow(g: AtomGraph, lo: float, hi: float) -> np.ndarray:
    """Greedy region growing, a whole block at a time where it fits (own block first, then
    across minor streets, then across major roads)."""
    n = g.n
    grid_of = np.full(n, -1, dtype="int64")
    towers = np.flatnonzero(g.tower)
    grid_of[towers] = np.arange(len(towers))
    next_id = len(towers)
    cls = np.where(g.inner > 0, 0, np.where(g.major >= 0.5, 2, 1))
    for seed in range(n):  # atoms come in NW → SE order
        if grid_of[seed] >= 0:
            continue
        gid, next_id = next_id, next_id + 1
        frontier: dict[int, list[float]] = {}
        total = 0.0
        pick = seed
        while True:
            added = _block_rest(g, grid_of, pick, hi - total)
            grid_of[added] = gid
            total += float(g.hh[added].sum())
            for a in added.tolist():
                for j, e in zip(g.nbrs[a].tolist(), g.nbr_edges[a].tolist(), strict=True):
                    if grid_of[j] < 0:
                        f = frontier.setdefault(j, [3.0, 0.0])
                        f[0] = min(f[0], float(cls[e]))
                        f[1] += float(g.length[e])
            if total >= lo:
                break
            pick, best_key = -1, (9.0, 0.0, 0)
            for j, (c, shared) in frontier.items():
                if grid_of[j] >= 0 or total + g.hh[j] > hi:
                    continue
                key = (c, -round(shared, 3), j)
                if key < best_key:
                    pick, best_key = j, key
            if pick < 0:
                break
    return _merge_small(g, grid_of, lo, hi)


def _block_rest(g: AtomGraph, grid_of: np.ndarray, a: int, room: float) -> np.ndarray:
    """Atom ``a`` with the free atoms of its unit (a block, or a part of a big one) reachable
    from it inside the unit, when they all fit in ``room`` households; else ``a`` alone."""
    seen = {a}
    stack = [a]
    while stack:
        x = stack.pop()
        for j in g.nbrs[x].tolist():
            if j not in seen and grid_of[j] < 0 and g.unit[j] == g.unit[a] and not g.tower[j]:
                seen.add(j)
                stack.append(j)
    block = np.asarray(sorted(seen), dtype="int64")
    if len(block) > 1 and g.hh[block].sum() <= room + 1e-9:
        return block
    return np.asarray([a], dtype="int64")


def _merge_small(g: AtomGraph, grid_of: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A grid below the minimum joins the neighbouring grid it fits with (minor streets first,
    then the smaller neighbour)."""
    count = int(grid_of.max()) + 1 if len(grid_of) else 0
    totals = np.bincount(grid_of, weights=g.hh, minlength=count)
    tower_grid = np.zeros(count, dtype=bool)
    tower_grid[grid_of[g.tower]] = True
    for gid in range(count):
        if tower_grid[gid] or totals[gid] >= lo:
            continue
        members = np.flatnonzero(grid_of == gid)
        if len(members) == 0:
            continue
        majors: dict[int, float] = {}
        for m in members.tolist():
            for j, e in zip(g.nbrs[m].tolist(), g.nbr_edges[m].tolist(), strict=True):
                o = int(grid_of[j])
                if o != gid and not tower_grid[o]:
                    majors[o] = min(majors.get(o, 1.0), float(g.major[e]))
        options = sorted(
            (round(f, 3), totals[o], o) for o, f in majors.items() if totals[o] + totals[gid] <= hi
        )
        if options:
            other = options[0][2]
            grid_of[members] = other
            totals[other] += totals[gid]
            totals[gid] = 0.0
    return grid_of


# ------------------------------------------------------------------ 3. refine
def _refine(
    g: AtomGraph, grid_of: np.ndarray, lo: float, hi: float, passes: int = 8
) -> tuple[np.ndarray, int]:
    """Move boundary atoms to a neighbouring grid while that lowers (households outside the
    range, shape score), keeping every grid contiguous. After the first pass only atoms next
    to a grid that changed are looked at again."""
    count = int(grid_of.max()) + 1
    st = {k: v.tolist() for k, v in grid_stats(g, grid_of, count).items()}
    lab: list[int] = grid_of.tolist()
    members: list[set[int]] = [set() for _ in range(count)]
    for i, x in enumerate(lab):
        members[x].add(i)
    tower_grid = [False] * count
    for t in np.flatnonzero(g.tower).tolist():
        tower_grid[lab[t]] = True
    nb = [x.tolist() for x in g.nbrs]
    ne = [x.tolist() for x in g.nbr_edges]
    L, Lin, Lmj = g.length.tolist(), (g.length * g.inner).tolist(), (g.length * g.major).tolist()
    atom = {"hh": g.hh.tolist(), "area": g.area.tolist(), "psum": g.perim.tolist()}
    atom["itot"] = g.inner_total.tolist()

    def score(x: int, sign: float, a: int, lint: float, lin: float, lmaj: float) -> float:
        """Shape score of grid ``x`` with atom ``a`` added (sign 1) or taken out (−1)."""
        return float(
            shape_score(
                st["area"][x] + sign * atom["area"][a],
                st["psum"][x] + sign * atom["psum"][a],
                st["itot"][x] + sign * atom["itot"][a],
                st["lint"][x] + sign * lint,
                st["lin"][x] + sign * lin,
                st["lmaj"][x] + sign * lmaj,
            )
        )

    def dev(x: float) -> float:
        return max(lo - x, 0.0) + max(x - hi, 0.0)

    active = set(range(count))
    moves = 0
    for _ in range(passes):
        touched: set[int] = set()
        for a in range(g.n):
            ga = lab[a]
            if tower_grid[ga] or len(members[ga]) == 1:
                continue
            acc: dict[int, list[float]] = {}
            for j, e in zip(nb[a], ne[a], strict=True):
                v = acc.setdefault(lab[j], [0.0, 0.0, 0.0])
                v[0] += L[e]
                v[1] += Lin[e]
                v[2] += Lmj[e]
            options = sorted(h for h in acc if h != ga and not tower_grid[h])
            if not options or (ga not in active and not active.intersection(options)):
                continue
            own = acc.get(ga, [0.0, 0.0, 0.0])
            old_g = score(ga, 0.0, a, 0.0, 0.0, 0.0)
            new_g = score(ga, -1.0, a, *own)
            h_a = atom["hh"][a]
            best: tuple[float, float, int] | None = None
            for h in options:
                d_dev = (
                    dev(st["hh"][ga] - h_a)
                    + dev(st["hh"][h] + h_a)
                    - dev(st["hh"][ga])
                    - dev(st["hh"][h])
                )
                if d_dev > 1e-9:
                    continue
                d_score = new_g + score(h, 1.0, a, *acc[h]) - old_g - score(h, 0.0, a, 0, 0, 0)
                key = (round(d_dev, 9), d_score, h)
                if (key[0] < 0 or d_score < -1e-9) and (best is None or key < best):
                    best = key
            if best is None or not _connected_without(nb, lab, members[ga], a):
                continue
            h = best[2]
            for name, i in (("lint", 0), ("lin", 1), ("lmaj", 2)):
                st[name][ga] -= own[i]
                st[name][h] += acc[h][i]
            for name in ("hh", "area", "psum", "itot"):
                st[name][ga] -= atom[name][a]
                st[name][h] += atom[name][a]
            members[ga].discard(a)
            members[h].add(a)
            lab[a] = h
            touched |= {ga, h}
            moves += 1
        active = touched
        if not touched:
            break
    return np.asarray(lab, dtype="int64"), moves


def _connected_without(nb: list[list[int]], lab: list[int], members: set[int], a: int) -> bool:
    """Whether the grid stays in one piece without atom ``a``: its neighbours in the grid must
    reach each other (the search stops as soon as they all have)."""
    own = lab[a]
    targets = {j for j in nb[a] if lab[j] == own}
    if len(targets) <= 1:
        return True
    start = min(targets)
    seen = {start, a}
    left = len(targets) - 1
    stack = [start]
    while stack:
        x = stack.pop()
        for j in nb[x]:
            if j not in seen and j in members:
                seen.add(j)
                if j in targets:
                    left -= 1
                    if left == 0:
                        return True
                stack.append(j)
    return False


# ------------------------------------------------------------------ reasons
def _reasons(g: AtomGraph, grid_of: np.ndarray, lo: float, hi: float) -> list[str]:
    """Why a grid is outside the range: what its connected part of the community holds when
    that settles it, else that the search found no regrouping with its neighbours."""
    count = int(grid_of.max()) + 1 if len(grid_of) else 0
    comp = components(g)
    comp_hh = np.bincount(comp, weights=np.where(g.tower, 0.0, g.hh))
    comp_size = np.bincount(comp)
    totals = np.bincount(grid_of, weights=g.hh, minlength=count)
    flags = []
    for gid in range(count):
        members = np.flatnonzero(grid_of == gid)
        h = totals[gid]
        if g.tower[members].any() or lo - 1e-9 <= h <= hi + 1e-9:
            flags.append("")
            continue
        kind = "below_min" if h < lo else "above_max"
        c = comp[members[0]]
        total = comp_hh[c]
        where = f"its connected part of community {g.community[members[0]]}"
        if comp_size[c] == 1:
            flags.append(f"{kind}: isolated block with no neighbour to merge with")
        elif total < lo:
            flags.append(
                f"{kind}: {where} holds only {total:.0f} households, fewer than the minimum "
                f"{lo:g}; no arrangement reaches it"
            )
        elif math.floor(total / lo + 1e-9) < math.ceil(total / hi - 1e-9):
            flags.append(
                f"{kind}: {where} holds {total:.0f} households, which no whole number of grids "
                f"of {lo:g}–{hi:g} adds up to"
            )
        else:
            flags.append(
                f"{kind}: no regrouping with up to {MAX_GROUP - 1} neighbouring grids found that "
                "keeps them all in range (their buildings come in lumps too large to move)"
            )
    return flags
