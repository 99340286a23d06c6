"""Splitting an OSM PBF into one extract per box, so that no batch task reads the whole file.

:func:`split_pbf` writes, per box ``(west, south, east, north)`` in degrees, a PBF with every
node inside the box, every way with a node inside it with *all* its nodes ("complete ways"), and
every relation with such a way as a member: what pyrosm keeps when it reads a file with a
bounding box, so reading an extract with a box inside its box returns what reading the whole
file with that box returns. Not kept, in either read: relations with no member way in the box,
and the member ways of a kept relation with no node in the box (a multipolygon across the edge
is the same partial geometry in both).

Two passes, their jobs run by ``run`` (e.g. on Dask workers), none holding the file in Python
objects: blocks are read as arrays (:mod:`~servicecircle.pbf_blocks`: dense nodes, ways,
relations), and only a block in another encoding (plain nodes, lzma) goes through pyosmium.

1. scan (:mod:`~servicecircle.osm_split_scan`): node jobs save their share of node locations,
   way jobs look up each way's points in all of them and test them against all boxes at once
   → per box the ways it touches, and where the nodes outside it of leaving ways lie;
2. write (a range of blocks per job): a node goes to the boxes that hold it and to those that
   need its location for a leaving way (by location, not id; another node at the very same spot
   is written too, which no reader minds), a way or relation to the boxes that picked it — each
   block's chosen rows written as a new block (nodes re-encoded, ways and relations copied as
   they are). Pieces are joined in file order.

Memory is arrays only: the location table (16 bytes a node), a block at a time, sorted chosen
ids and outside locations; not pyosmium's ``IdTracker``/``IdFilter``, whose dense id sets take
4 MB per 33.5 M ids touched (≈ 1.4 GB for a real city's node ids).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import zlib
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import InputError
from .osm_split_scan import Runner, Scan, cat, scan
from .pbf_blocks import blob_payload, blocks_for_pyosmium, fields, iter_blobs, varint

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
_KINDS = ("nodes", "ways", "relations")

#: Degrees added on every side of a box: more than the rounding between readers of the same
#: PBF coordinates (1e-7°), so an extract never misses a node its reader will see in the box.
MARGIN_DEG = 1e-6
RANGE_BYTES, WRITERS_PER_JOB = 64 * 2**20, 256  # source bytes and extracts per job at most


@dataclass(frozen=True)
class Extract:
    """One extract: its file and what it holds."""

    path: Path
    nodes: int
    ways: int
    relations: int


@dataclass(frozen=True)
class SplitResult:
    """The extracts, in the order of the boxes, and the seconds each pass took."""

    extracts: tuple[Extract, ...]
    seconds: dict[str, float]


@dataclass(frozen=True)
class SplitPlan:
    """What the write pass needs (picklable): boxes in 1e-7°; sorted ids of the chosen ways and
    relations and location keys (``x * 2**32 + y``) of outside nodes, each with its box set."""

    boxes_e7: np.ndarray
    way_ids: np.ndarray
    way_combo: np.ndarray
    relation_ids: np.ndarray
    relation_combo: np.ndarray
    outside_keys: np.ndarray
    outside_combo: np.ndarray
    combos: tuple[tuple[int, ...], ...]


def split_pbf(
    source: str | Path,
    boxes: Sequence[Box],
    folder: str | Path,
    *,
    run: Runner | None = None,
    jobs: int = 1,
) -> SplitResult:
    """Write one PBF extract per box into ``folder`` (see the module docstring).

    Parameters
    ----------
    source
        An ``.osm.pbf`` file.
    boxes
        ``(west, south, east, north)`` in degrees, one per extract.
    folder
        An existing folder; the extracts are ``extract-00000.osm.pbf`` … in box order.
    run
        How the write jobs run: called as ``run(function, [args, ...])`` and returning their
        results in order (for instance on a Dask client). Default: one after the other here.
    jobs
        How many write jobs to aim for (the number of workers that run them).

    Returns
    -------
    SplitResult
        The extracts, and the seconds of the scan and write passes.

    Raises
    ------
    InputError
        The source cannot be read as a PBF file.
    """
    started = time.perf_counter()
    source, folder = Path(source), Path(folder)
    margin = np.array([-MARGIN_DEG, -MARGIN_DEG, MARGIN_DEG, MARGIN_DEG])
    box_arr = np.asarray(boxes, dtype=float).reshape(-1, 4) + margin
    seconds: dict[str, float] = {}
    try:
        header_end, ranges, node_spans, way_spans = _layout(source, jobs)
        run = run or (lambda f, a: [f(*x) for x in a])
        scans = scan(run, str(source), header_end, node_spans, way_spans, box_arr, folder)
        merged = (cat([getattr(sc, k) for sc in scans]) for k in ("touched", "outside", "members"))
        plan = _plan(box_arr, Scan(*merged))
        seconds["scan"] = time.perf_counter() - started
        every = list(range(len(box_arr)))
        groups = [every[i : i + WRITERS_PER_JOB] for i in range(0, len(every), WRITERS_PER_JOB)]
        args = [
            (str(source), header_end, start, stop, plan, group, str(folder / f"part-{j:04d}"))
            for j, (start, stop) in enumerate(ranges)
            for group in groups
        ]
        counts = run(_write_range, args)
        extracts = _join_parts(folder, box_arr, args, counts)
    except (RuntimeError, OSError, IndexError, ValueError) as err:
        raise InputError(
            f"{source}: cannot be split as an OSM PBF file ({err}); check that it is complete"
        ) from err
    seconds["write"] = time.perf_counter() - started - seconds["scan"]
    seconds["total"] = time.perf_counter() - started
    log.info("split %s into %d extracts in %.1f s", source.name, len(extracts), seconds["total"])
    return SplitResult(tuple(extracts), {k: round(v, 3) for k, v in seconds.items()})


def grow_box(box: Box, buffer_m: float) -> Box:
    """``box`` (°) grown by ``buffer_m`` (+1 %: a UTM metre is ≤ 1.0004 m) in the fewest m/°."""
    west, south, east, north = box
    d_lat = buffer_m * 1.01 / 110_574.0 + 1e-6
    lat = min(max(abs(south), abs(north)) + d_lat, 89.0)
    d_lon = buffer_m * 1.01 / (111_320.0 * math.cos(math.radians(lat))) + 1e-6
    return (west - d_lon, south - d_lat, east + d_lon, north + d_lat)


# --------------------------------------------------------------------------- blocks
def _census(blob: bytes | memoryview) -> tuple[set[int], int]:
    """The element kinds in a data blob (1 or 2 nodes, 3 ways, 4 relations; 0: not known) and
    its weight, what jobs are balanced by: the bytes it holds uncompressed, twice for nodes
    (writing a byte of nodes — routed per box and re-encoded — costs about twice a byte of ways,
    copied as they are). Told by the first bytes of the block where they are enough (a string
    table and one group, as osmium writes them), by the whole block otherwise."""
    quick = _one_group(blob)
    if quick is not None:
        kind, size = quick
        return {kind}, size * (2 if kind in (1, 2) else 1)
    return _census_all(blob)


def _one_group(blob: bytes | memoryview) -> tuple[int, int] | None:
    """``(kind, uncompressed size)`` of a zlib blob whose block is a string table and one
    group and nothing else, from its first bytes (inflated up to the group's first field);
    ``None`` for any other blob."""
    f = dict(fields(blob))
    size, data = f.get(2), f.get(3)
    if not isinstance(size, int) or data is None:
        return None
    inflate = zlib.decompressobj()
    head = bytearray(inflate.decompress(data, 16))

    def first(n: int) -> bytearray:  # the block's first n bytes (fewer if it ends before)
        while len(head) < n:
            more = inflate.decompress(inflate.unconsumed_tail, n - len(head))
            if not more:
                break
            head.extend(more)
        return head

    try:
        key, pos = varint(first(16), 0)
        if key != 1 << 3 | 2:  # a string table first
            return None
        n, pos = varint(head, pos)
        key, pos = varint(first(pos + n + 16), pos + n)
        n, pos = varint(head, pos)
        if key != 2 << 3 | 2 or pos + n != size:  # one group, and nothing after it
            return None
        return (varint(head, pos)[0] >> 3 if n else 0), size
    except (IndexError, zlib.error):
        return None


def _census_all(blob: bytes | memoryview) -> tuple[set[int], int]:
    """:func:`_census` from the whole block."""
    payload = blob_payload(blob)
    if payload is None:  # lzma, lz4 or zstd: not looked into
        return {0}, 4 * len(blob)
    kinds = set()
    for k, group in fields(payload):
        kinds.add(next(fields(group), (0, b""))[0] if k == 2 else -1)
    kinds -= {-1}
    return kinds, len(payload) * (2 if kinds & {1, 2} else 1)


def _balanced(items: list[tuple[int, int, int]], n: int) -> list[list[tuple[int, int]]]:
    """``(start, stop, weight)`` cut into at most ``n`` runs of about the same weight, in order."""
    if not items:
        return []
    ends = np.cumsum([w for _, _, w in items])
    cuts = np.searchsorted(ends, ends[-1] * np.arange(1, n) / n)
    edges = sorted({0, *(int(c) + 1 for c in cuts), len(items)})
    return [[(a, b) for a, b, _ in items[i:j]] for i, j in itertools.pairwise(edges)]


def _layout(path: Path, jobs: int) -> tuple[int, list[Any], list[Any], list[Any]]:
    """The header blob's end; the block ranges of the write jobs (``jobs``, none above
    :data:`RANGE_BYTES` unless one blob is); the spans of the node jobs of the scan (a share
    each of the blocks of nodes alone) and of its way jobs (a share each of the blocks of ways
    and relations, and every block that may hold nodes with other elements). With one job, or
    nodes too big to hold twice: no node jobs and one way job over the whole file (``None``)."""
    blobs: list[tuple[int, int, set[int], int]] = []
    start = 0
    for raw, kind, blob in iter_blobs(str(path), [(0, None)]):
        census = _census(blob) if kind == "OSMData" else ({-1}, 0)
        blobs.append((start, start := start + len(raw), *census))
    if not blobs or blobs[0][2] != {-1}:
        raise RuntimeError("no OSMHeader blob at the start")
    items = [(a, b, n) for a, b, k, n in blobs[1:] if -1 not in k]
    runs = _balanced(items, max(jobs, -(-sum(b - a for a, b, _ in items) // RANGE_BYTES)))
    writes = [(r[0][0], r[-1][1]) for r in runs]
    nodes = [(a, b, n) for a, b, k, n in blobs[1:] if k and k <= {1, 2}]
    mixed = [(a, b) for a, b, k, _ in blobs[1:] if k - {3, 4} and not k <= {1, 2} and -1 not in k]
    ways = [(a, b, n) for a, b, k, n in blobs[1:] if k and not k - {3, 4}]
    node_bytes = sum(b - a for a, b, _ in nodes) + sum(b - a for a, b in mixed)
    if jobs < 2 or node_bytes > 4 * RANGE_BYTES or not ways:
        return blobs[0][1], writes, [], [None]
    return blobs[0][1], writes, _balanced(nodes, jobs), [mixed + p for p in _balanced(ways, jobs)]


def _group_pairs(
    ids: np.ndarray, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[tuple[int, ...], ...]]:
    """From (id, box) pairs: the sorted unique ids, for each the index of its set of boxes
    in the returned list of box sets (each a sorted tuple)."""
    if len(ids) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32), ()
    order = np.lexsort((boxes, ids))
    ids, boxes = ids[order], boxes[order]
    keep = np.ones(len(ids), dtype=bool)
    keep[1:] = (ids[1:] != ids[:-1]) | (boxes[1:] != boxes[:-1])
    ids, boxes = ids[keep], boxes[keep]
    first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    count = np.diff(np.r_[first, len(ids)])
    rows = np.repeat(np.arange(len(first)), count)
    table = np.full((len(first), int(count.max())), -1, dtype=np.int64)
    table[rows, np.arange(len(ids)) - first[rows]] = boxes
    base = int(boxes.max()) + 2  # a row as one number when it fits (np.unique of rows is slow)
    if base ** table.shape[1] < 2**62:
        key = (table + 1) @ (base ** np.arange(table.shape[1], dtype=np.int64))
        _, at, inverse = np.unique(key, return_index=True, return_inverse=True)
        sets = table[at]
    else:
        sets, inverse = np.unique(table, axis=0, return_inverse=True)
    combos = tuple(tuple(int(b) for b in row if b >= 0) for row in sets)
    return ids[first], inverse.reshape(-1).astype(np.int32), combos


def _plan(boxes: np.ndarray, found: Scan) -> SplitPlan:
    """The routing tables of the write pass; a relation goes where one of its ways goes."""
    way_ids, way_boxes = found.touched
    order = np.argsort(way_ids, kind="stable")
    sorted_ways, sorted_boxes = way_ids[order], way_boxes[order]
    member_rel, member_way = found.members
    lo = np.searchsorted(sorted_ways, member_way, side="left")
    count = np.searchsorted(sorted_ways, member_way, side="right") - lo
    at = np.repeat(lo - (np.cumsum(count) - count), count) + np.arange(int(count.sum()))
    rel_ids, rel_combo, rel_sets = _group_pairs(np.repeat(member_rel, count), sorted_boxes[at])
    w_ids, w_combo, w_sets = _group_pairs(way_ids, way_boxes)
    n_ids, n_combo, n_sets = _group_pairs(*found.outside)
    combos = tuple(dict.fromkeys((*w_sets, *rel_sets, *n_sets)))
    index = {c: i for i, c in enumerate(combos)}

    def remap(combo: np.ndarray, sets: tuple[tuple[int, ...], ...]) -> np.ndarray:
        table = np.array([index[s] for s in sets], dtype=np.int32)
        return table[combo] if len(combo) else combo

    boxes_e7 = np.hstack([np.floor(boxes[:, :2] * 1e7), np.ceil(boxes[:, 2:] * 1e7)])
    return SplitPlan(
        boxes_e7.astype(np.int64),
        w_ids,
        remap(w_combo, w_sets),
        rel_ids,
        remap(rel_combo, rel_sets),
        n_ids,
        remap(n_combo, n_sets),
        combos,
    )


# --------------------------------------------------------------------------- pass 2
class _NodeRouter:
    """Which of the boxes ``wanted`` a node goes to: those that hold it (1e-7°, bounds
    included) and those that need it for a way leaving them (by location key)."""

    def __init__(self, plan: SplitPlan, wanted: list[int]) -> None:
        self.wanted = list(wanted)
        self.bounds = plan.boxes_e7[wanted].T  # west, south, east, north rows
        col = {b: j for j, b in enumerate(wanted)}
        member = np.zeros((len(plan.combos), len(wanted)), dtype=bool)
        for c, combo in enumerate(plan.combos):
            member[c, [col[b] for b in combo if b in col]] = True
        self.combo_member = member
        self.keys, self.key_combo = plan.outside_keys, plan.outside_combo

    def hits(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(N, len(wanted))``: whether each node goes to each box."""
        w, s, e, n = self.bounds
        x, y = np.asarray(x, np.int64)[:, None], np.asarray(y, np.int64)[:, None]
        hit = (x >= w) & (x <= e) & (y >= s) & (y <= n)
        if len(self.keys):
            key = x[:, 0] * 2**32 + y[:, 0]
            pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
            found = self.keys[pos] == key
            hit[found] |= self.combo_member[self.key_combo[pos[found]]]
        return hit


def _write_range(
    source: str,
    header_end: int,
    start: int,
    stop: int,
    plan: SplitPlan,
    wanted: list[int],
    prefix: str,
) -> dict[int, tuple[int, int, int]]:
    """Write the blocks ``start:stop`` of ``source`` into pieces per box of ``wanted`` that
    gets anything: ``<prefix>-<box>.blobs`` (dense nodes, ways and relations, routed as arrays
    and written as blobs, see :mod:`~servicecircle.pbf_blocks`) and ``<prefix>-<box>.osm.pbf``
    (what pyosmium had to read: plain nodes, blocks in other encodings); return the nodes,
    ways and relations written per box."""
    import osmium

    router = _NodeRouter(plan, wanted)
    wanted_set = set(wanted)
    combos = [tuple(b for b in c if b in wanted_set) for c in plan.combos]
    way_ids, way_combo = plan.way_ids.tolist(), plan.way_combo.tolist()
    rel_ids, rel_combo = plan.relation_ids.tolist(), plan.relation_combo.tolist()
    writers: list[Any] = [None] * len(plan.boxes_e7)
    node_files: dict[int, Any] = {}
    n_nodes, n_ways, n_rels = [0] * len(writers), [0] * len(writers), [0] * len(writers)
    bufsz = max(2**16, min(2**22, 2**28 // max(1, len(wanted))))

    def open_writer(b: int) -> Any:
        header = osmium.io.Header()
        header.add_box(_osmium_box(plan.boxes_e7[b] / 1e7))
        writers[b] = osmium.SimpleWriter(f"{prefix}-{b:05d}.osm.pbf", bufsz, header, overwrite=True)
        return writers[b]

    def write_rows(block: Any, hit: np.ndarray, count: list[int]) -> None:
        for j in np.flatnonzero(hit.any(axis=0)):
            b, rows = wanted[j], np.flatnonzero(hit[:, j])
            if b not in node_files:
                node_files[b] = open(f"{prefix}-{b:05d}.blobs", "wb")
            node_files[b].write(block.subset(rows))
            count[b] += len(rows)

    def dense(block: Any) -> None:
        write_rows(block, router.hits(block.x, block.y), n_nodes)

    def elements(block: Any) -> None:  # ways and relations go where the plan picked them
        ids, combo = (
            (plan.way_ids, plan.way_combo)
            if block.kind == 3
            else (plan.relation_ids, plan.relation_combo)
        )
        hit = np.zeros((len(block.ids), len(wanted)), dtype=bool)
        if len(ids):
            pos = np.minimum(np.searchsorted(ids, block.ids), len(ids) - 1)
            found = ids[pos] == block.ids
            hit[found] = router.combo_member[combo[pos[found]]]
        write_rows(block, hit, n_ways if block.kind == 3 else n_rels)

    def node(o: Any) -> None:  # a node of a block that is not dense (rare): one at a time
        for j in np.flatnonzero(router.hits(np.array([o.location.x]), np.array([o.location.y]))[0]):
            b = wanted[j]
            (writers[b] if writers[b] is not None else open_writer(b)).add_node(o)
            n_nodes[b] += 1

    def picker(ids: list[int], combo: list[int], count: list[int], add: str) -> Any:
        def pick(o: Any) -> None:  # the ways or relations chosen for a box
            i = bisect_left(ids, o.id)
            if i < len(ids) and ids[i] == o.id:
                for b in combos[combo[i]]:
                    getattr(writers[b] if writers[b] is not None else open_writer(b), add)(o)
                    count[b] += 1

        return pick

    handler = osmium.SimpleHandler()
    handler.node = node  # type: ignore[attr-defined]
    handler.way = picker(way_ids, way_combo, n_ways, "add_way")  # type: ignore[attr-defined]
    handler.relation = picker(rel_ids, rel_combo, n_rels, "add_relation")  # type: ignore[attr-defined]
    try:
        for chunk in blocks_for_pyosmium(source, header_end, [(start, stop)], dense, elements):
            handler.apply_buffer(chunk, "pbf")
    finally:
        for w in writers:
            if w is not None:
                w.close()
        for f in node_files.values():
            f.close()
    wrote = {b for b, w in enumerate(writers) if w is not None} | set(node_files)
    return {b: (n_nodes[b], n_ways[b], n_rels[b]) for b in sorted(wrote)}


def _osmium_box(box: Any) -> Any:
    """A header's box (degrees), within the world (a box grown by the margin may not be)."""
    import osmium

    w, s, e, n = (float(v) for v in box)
    return osmium.osm.Box(max(w, -180.0), max(s, -90.0), min(e, 180.0), min(n, 90.0))


def _join_parts(folder: Path, boxes: Any, args: list[Any], counts: list[Any]) -> list[Extract]:
    """Join each box's pieces after a header: per block range its blobs, then what pyosmium
    wrote of it without its header — nodes before ways before relations, and a sorted source's
    order unless dense and plain node blocks alternate in it."""
    import osmium

    totals = np.zeros((len(boxes), 3), dtype=np.int64)
    extracts = []
    for b in range(len(boxes)):
        path = folder / f"extract-{b:05d}.osm.pbf"
        header = osmium.io.Header()
        header.add_box(_osmium_box(boxes[b]))
        osmium.SimpleWriter(str(path), 2**16, header, overwrite=True).close()
        prefixes = [a[6] for a, c in zip(args, counts, strict=True) if b in c]
        for c in counts:
            totals[b] += c.get(b, (0, 0, 0))
        with open(path, "ab") as dst:
            for p in prefixes:  # a job's blobs come before what pyosmium wrote of its range
                if (part := Path(f"{p}-{b:05d}.blobs")).exists():
                    dst.write(part.read_bytes())
                    part.unlink()
                if (part := Path(f"{p}-{b:05d}.osm.pbf")).exists():
                    for raw, kind, _ in iter_blobs(str(part), [(0, None)]):
                        if kind != "OSMHeader":
                            dst.write(raw)
                    part.unlink()
        extracts.append(Extract(path, *(int(v) for v in totals[b])))
    return extracts


def split_sources(
    sources: Sequence[str],
    boxes: Sequence[Box],
    folder: str | Path,
    *,
    run: Runner | None = None,
    jobs: int = 1,
) -> tuple[list[str | None], dict[str, Any]]:
    """Split every PBF that two or more items read into one extract per item: ``sources[i]``
    is the file item ``i`` reads (or ``"demo"``), ``boxes[i]`` its box. Returns per item its
    extract's path (``None``: its file is read as it is — not a PBF, read by one item, missing,
    or not splittable, which the item then reports), and a report per split file."""
    from .area import DEMO, demo_path

    groups: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        groups.setdefault(str(s), []).append(i)
    out: list[str | None] = [None] * len(sources)
    report: dict[str, Any] = {}
    for k, (name, items) in enumerate(groups.items()):
        path = demo_path() if name == DEMO else Path(name)
        if len(items) < 2 or not path.name.lower().endswith(".pbf") or not path.is_file():
            continue
        sub = Path(folder) / f"source-{k:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        try:
            result = split_pbf(path, [boxes[i] for i in items], sub, run=run, jobs=jobs)
        except InputError as err:
            log.warning("%s; each partition reads the whole file instead", err)
            continue
        for i, ex in zip(items, result.extracts, strict=True):
            out[i] = str(ex.path)
        report[str(path)] = {
            "extracts": len(result.extracts),
            "seconds": result.seconds,
            "source_mb": round(path.stat().st_size / 2**20, 2),
            "extracts_mb": round(sum(e.path.stat().st_size for e in result.extracts) / 2**20, 2),
            **{f"{k}_written": [getattr(e, k) for e in result.extracts] for k in _KINDS},
        }
    return out, report
