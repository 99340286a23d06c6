"""Pass 1 of :mod:`~servicecircle.osm_split`: which ways (and relations) each box needs, and
where the nodes outside it of its leaving ways lie.

Node jobs, a share of the blocks of nodes each, save their node locations in the split's
folder; way jobs, a share of the blocks of ways each, read all of them into one table
(:class:`~servicecircle.pbf_blocks.LocationTable`), look up each way's points in it and test
them against all boxes at once. With one job, one pass over the whole file does both. Blocks
are read as arrays (:mod:`~servicecircle.pbf_blocks`); only a block in another encoding
(plain nodes, lzma) goes through pyosmium.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .pbf_blocks import LocationTable, blocks_for_pyosmium, delta_runs

Runner = Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]


@dataclass
class Scan:
    """Pass 1, as pairs: (way id, box) of the ways with a node in a box; (location key, box) of
    the nodes outside a box of the ways that leave it; (relation id, way id) of way members."""

    touched: tuple[np.ndarray, np.ndarray]
    outside: tuple[np.ndarray, np.ndarray]
    members: tuple[np.ndarray, np.ndarray]


def _read_blocks(
    source: str, header_end: int, spans: Any, *, elements: bool
) -> tuple[
    list[tuple[np.ndarray, ...]],
    list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    list[tuple[np.ndarray, np.ndarray]],
]:
    """The blocks ``spans`` of ``source`` (``None``: all of it) as arrays: dense nodes' (ids,
    x, y); with ``elements``, ways' (ids, lengths, node refs) and relations' (relation id, way
    member id) pairs (:mod:`~servicecircle.pbf_blocks`); any other block through pyosmium."""
    import osmium

    nodes: list[tuple[np.ndarray, ...]] = []
    ways: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # ids, lengths, refs per block
    rels: list[tuple[np.ndarray, np.ndarray]] = []
    slow: dict[str, list[Any]] = {"way": [], "rel": [], "node": []}

    def element_block(block: Any) -> None:
        vals, starts = block.runs[8 if block.kind == 3 else 9]
        lengths = np.diff(np.append(starts, len(vals)))
        refs = delta_runs(vals, starts)
        if block.kind == 3:
            ways.append((block.ids, lengths, refs))
        else:  # member types are not delta-coded: 1 = way
            is_way = block.runs[10][0] == 1
            rels.append((np.repeat(block.ids, lengths)[is_way], refs[is_way]))

    def way(w: Any) -> None:  # ways of blocks not read as arrays (rare)
        slow["way"].append((w.id, [n.ref for n in w.nodes]))

    def relation(r: Any) -> None:
        slow["rel"].extend((r.id, m.ref) for m in r.members if m.type == "w")

    def node(n: Any) -> None:
        if n.location.valid():
            slow["node"].append((n.id, n.location.x, n.location.y))

    handler = osmium.SimpleHandler()
    handler.way, handler.relation, handler.node = way, relation, node  # type: ignore[attr-defined]
    dense = lambda b: nodes.append((b.ids, b.x, b.y))  # noqa: E731
    fields_ = (8, 9, 10)  # ways' refs; relations' member ids and types
    on_elements = element_block if elements else None
    for chunk in blocks_for_pyosmium(source, header_end, spans, dense, on_elements, fields_, False):
        handler.apply_buffer(chunk, "pbf")
    if slow["node"]:
        nodes.append(tuple(np.array(slow["node"], dtype=np.int64).reshape(-1, 3).T))
    if slow["way"]:
        slow_refs = [r for _, r in slow["way"]]
        ways.append((
            np.array([i for i, _ in slow["way"]], dtype=np.int64),
            np.array([len(r) for r in slow_refs], dtype=np.int64),
            np.array([x for r in slow_refs for x in r], dtype=np.int64),
        ))  # fmt: skip
    if slow["rel"]:
        rels.append(tuple(np.array(slow["rel"], dtype=np.int64).reshape(-1, 2).T))  # type: ignore[arg-type]
    return nodes, ways, rels


def _scan_nodes(source: str, header_end: int, spans: list[tuple[int, int]], out: str) -> None:
    """Pass 1, node job: the locations of the nodes of the blocks ``spans`` (ids, x, y in
    1e-7°, one row each) saved as ``out`` (``.npy``) for the way jobs."""
    nodes, _, _ = _read_blocks(source, header_end, spans, elements=False)
    parts = [np.stack([np.asarray(a, np.int64) for a in p]) for p in nodes]
    np.save(out, np.concatenate(parts, axis=1) if parts else np.zeros((3, 0), np.int64))


def _scan_ways(
    source: str, header_end: int, spans: Any, boxes: np.ndarray, tables: Sequence[str]
) -> Scan:
    """Pass 1, way job, over the blocks ``spans`` of ``source`` (``None``: all of it): the
    locations of the node jobs' ``tables`` and of the nodes in ``spans`` into one table; each
    way's points looked up in it and tested against the boxes, a block at a time."""
    nodes, ways, rels = _read_blocks(source, header_end, spans, elements=True)
    nodes += [tuple(np.load(t)) for t in tables]
    table = LocationTable(nodes)
    hits = []
    for ids, lengths, refs in ways:
        e7, found = table.lookup(refs)
        owner = np.repeat(np.arange(len(ids)), lengths)[found]
        hits.append(_box_hits(ids, e7[found], owner, boxes))
    return Scan(cat([h[0] for h in hits]), cat([h[1] for h in hits]), cat(rels))


def scan(
    run: Runner,
    source: str,
    header_end: int,
    node_spans: list[Any],
    way_spans: list[Any],
    boxes: np.ndarray,
    folder: Path,
) -> list[Scan]:
    """Pass 1: the node jobs (each saving its share of node locations in ``folder``), then the
    way jobs (each reading all those shares); the shares are removed at the end."""
    tables = [str(folder / f"nodes-{k:04d}.npy") for k in range(len(node_spans))]
    try:
        if node_spans:
            jobs = zip(node_spans, tables, strict=True)
            run(_scan_nodes, [(source, header_end, sp, t) for sp, t in jobs])
        return run(_scan_ways, [(source, header_end, sp, boxes, tables) for sp in way_spans])
    finally:
        for t in tables:
            Path(t).unlink(missing_ok=True)


def cat(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    a, b = ([p[k] for p in pairs] or [np.zeros(0, np.int64)] for k in (0, 1))
    return np.concatenate(a).astype(np.int64), np.concatenate(b).astype(np.int64)


def _box_hits(
    ids: np.ndarray, e7: np.ndarray, owner: np.ndarray, boxes: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """For a batch of ways (their points in 1e-7°, consecutive per way, and the way of each):
    (way id, box) pairs of the ways with a point in a box, and (location key, box) pairs of
    the points outside a box of the ways that leave it."""
    xy = e7 / 1e7  # degrees, as osmium's Location.lon/lat give them
    n_points = np.bincount(owner, minlength=len(ids))
    first = np.cumsum(n_points) - n_points
    keys = e7[:, 0] * 2**32 + e7[:, 1]
    order = np.argsort(xy[:, 0], kind="stable")
    xs = xy[order, 0]
    lo = np.searchsorted(xs, boxes[:, 0], side="left")
    hi = np.searchsorted(xs, boxes[:, 2], side="right")
    t_way, t_box, o_key, o_box = [], [], [], []
    for b, (w, s, e, n) in enumerate(boxes):
        cand = order[lo[b] : hi[b]]
        y = xy[cand, 1]
        inside = cand[(y >= s) & (y <= n)]
        if len(inside) == 0:
            continue
        way, count = np.unique(owner[inside], return_counts=True)
        t_way.append(ids[way])
        t_box.append(np.full(len(way), b))
        out = way[count < n_points[way]]
        if len(out):
            pts = np.repeat(first[out] - np.cumsum(n_points[out]) + n_points[out], n_points[out])
            pts += np.arange(len(pts))
            x, y = xy[pts, 0], xy[pts, 1]
            away = pts[(x < w) | (x > e) | (y < s) | (y > n)]
            o_key.append(keys[away])
            o_box.append(np.full(len(away), b))
    return cat(list(zip(t_way, t_box, strict=True))), cat(list(zip(o_key, o_box, strict=True)))
