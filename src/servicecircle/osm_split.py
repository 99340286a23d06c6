"""Splitting an OSM PBF into one extract per box, so that no batch task reads the whole file.

:func:`split_pbf` writes, per box ``(west, south, east, north)`` in degrees, a PBF with every
node inside the box, every way with a node inside it with *all* its nodes ("complete ways"), and
every relation with such a way as a member: what pyrosm keeps when it reads a file with a
bounding box, so reading an extract with a box inside its box returns what reading the whole
file with that box returns. Not kept, in either read: relations with no member way in the box,
and the member ways of a kept relation with no node in the box (a multipolygon across the edge
is the same partial geometry in both).

Two passes, their jobs run by ``run`` (e.g. on Dask workers), none holding the file in Python:

1. scan (all blocks with nodes and a share of those with ways, per job), node locations in
   libosmium's index: each way's coordinates from its WKB, tested against all boxes at once in
   numpy → per box the ways it touches, and where the nodes outside it of leaving ways lie;
2. write (a range of blocks per job): a node goes to the boxes that hold it and to those that
   need its location for a leaving way (by location, not id: reading an id from pyosmium costs
   as much; another node at the very same spot is written too, which no reader minds), a way or
   relation to the boxes that picked it. Pieces are joined in file order.

Memory is arrays only: the location index (16 bytes a node, in libosmium), a batch of ways,
sorted chosen ids and outside locations; not pyosmium's ``IdTracker``/``IdFilter``, whose dense
id sets take 4 MB per 33.5 M ids touched (≈ 1.4 GB for a real city's node ids).
"""

from __future__ import annotations

import itertools
import logging
import math
import struct
import time
import zlib
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import InputError

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
_KINDS = ("nodes", "ways", "relations")
Runner = Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]

#: Degrees added on every side of a box: more than the rounding between readers of the same
#: PBF coordinates (1e-7°), so an extract never misses a node its reader will see in the box.
MARGIN_DEG = 1e-6
WAY_BATCH = 20_000  # ways decoded per numpy batch in the first pass
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
        header_end, ranges, scan_spans = _layout(source, jobs)
        run = run or (lambda f, a: [f(*x) for x in a])
        scans = run(_scan_ways, [(str(source), header_end, sp, box_arr) for sp in scan_spans])
        merged = (_cat([getattr(sc, k) for sc in scans]) for k in ("touched", "outside", "members"))
        plan = _plan(box_arr, _Scan(*merged))
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
    except (RuntimeError, OSError) as err:
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
def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes | memoryview) -> Iterator[tuple[int, Any]]:
    """``(field number, int or bytes)`` of a protobuf message of varint and length fields."""
    pos, view = 0, memoryview(buf)
    while pos < len(view):
        key, pos = _varint(view, pos)
        n, pos = _varint(view, pos)
        if key & 7 not in (0, 2):
            raise RuntimeError(f"unexpected protobuf wire type {key & 7}")
        yield key >> 3, (view[pos : pos + n] if key & 7 == 2 else n)
        pos += n if key & 7 == 2 else 0


def _blob_size(header: bytes) -> tuple[str, int]:
    """``(type, datasize)`` of a BlobHeader."""
    f = dict(_fields(header))
    return bytes(f.get(1, b"")).decode("ascii", "replace"), int(f.get(3, -1))


def _census(blob: bytes) -> tuple[set[int], int]:
    """The element kinds in a data blob (1 or 2 nodes, 3 ways, 4 relations; 0: not known) and
    about how many elements it holds (jobs are balanced by these counts)."""
    f = dict(_fields(blob))
    if 1 not in f and 3 not in f:  # lzma, lz4 or zstd: not looked into
        return {0}, 8000
    kinds, count = set(), 0
    for k, group in _fields(f[1] if 1 in f else zlib.decompress(f[3])):
        kind, value = next(_fields(group), (0, b"")) if k == 2 else (-1, b"")
        kinds.add(kind)
        if kind == 2:  # dense nodes: one varint per id
            ids = next((v for i, v in _fields(value) if i == 1), b"")
            count += int(np.count_nonzero(np.frombuffer(ids, np.uint8) < 128))
        elif kind > 0:  # a group of ways, relations or plain nodes: about 50 bytes each
            count += len(group) // 50 + 1
    return kinds - {-1}, count


def _balanced(items: list[tuple[int, int, int]], n: int) -> list[list[tuple[int, int]]]:
    """``(start, stop, weight)`` cut into at most ``n`` runs of about the same weight, in order."""
    if not items:
        return []
    ends = np.cumsum([w for _, _, w in items])
    cuts = np.searchsorted(ends, ends[-1] * np.arange(1, n) / n)
    edges = sorted({0, *(int(c) + 1 for c in cuts), len(items)})
    return [[(a, b) for a, b, _ in items[i:j]] for i, j in itertools.pairwise(edges)]


def _layout(path: Path, jobs: int) -> tuple[int, list[Any], list[Any]]:
    """The header blob's end; the block ranges of the write jobs (``jobs``, none above
    :data:`RANGE_BYTES` unless one blob is); the spans of the scan jobs: all blocks with nodes
    and a share of the others (``None``: one scan of the file, its nodes too big to hold)."""
    blobs: list[tuple[int, int, set[int], int]] = []
    with open(path, "rb") as f:
        while len(head := f.read(4)) == 4:
            start = f.tell() - 4
            kind, size = _blob_size(f.read(struct.unpack(">I", head)[0]))
            if size < 0 or len(data := f.read(size)) < size:
                raise RuntimeError("truncated blob")
            blobs.append((start, f.tell(), *(_census(data) if kind == "OSMData" else ({-1}, 0))))
        if head:
            raise RuntimeError("truncated blob length")
    if not blobs or blobs[0][2] != {-1}:
        raise RuntimeError("no OSMHeader blob at the start")
    items = [(a, b, n) for a, b, k, n in blobs[1:] if -1 not in k]
    runs = _balanced(items, max(jobs, -(-sum(b - a for a, b, _ in items) // RANGE_BYTES)))
    writes = [(r[0][0], r[-1][1]) for r in runs]
    nodes = [(a, b) for a, b, k, _ in blobs[1:] if k - {3, 4} and -1 not in k]
    ways = [(a, b, n) for a, b, k, n in blobs[1:] if k and not k - {3, 4}]
    if jobs < 2 or sum(b - a for a, b in nodes) > 4 * RANGE_BYTES or not ways:
        return blobs[0][1], writes, [None]
    return blobs[0][1], writes, [nodes + part for part in _balanced(ways, jobs)]


# --------------------------------------------------------------------------- pass 1
@dataclass
class _Scan:
    """Pass 1, as pairs: (way id, box) of the ways with a node in a box; (location key, box) of
    the nodes outside a box of the ways that leave it; (relation id, way id) of way members."""

    touched: tuple[np.ndarray, np.ndarray]
    outside: tuple[np.ndarray, np.ndarray]
    members: tuple[np.ndarray, np.ndarray]


def _read(source: str, spans: list[tuple[int, int]]) -> bytes:
    """The bytes of the ``spans`` of a file, one after the other."""
    parts = []
    with open(source, "rb") as f:
        for a, b in spans:
            f.seek(a)
            parts.append(f.read(b - a))
    return b"".join(parts)


def _scan_ways(source: str, header_end: int, spans: Any, boxes: np.ndarray) -> _Scan:
    """Pass 1 over the blocks ``spans`` of ``source`` (``None``: all of it)."""
    import osmium

    factory = osmium.geom.WKBFactory()
    ids: list[int] = []
    hexes: list[str] = []
    hits: list[Any] = []  # (touched, outside) pairs per batch
    rel_of: list[int] = []
    members: list[int] = []

    def flush() -> None:
        if ids:
            hits.append(_box_hits(np.array(ids, dtype=np.int64), hexes, boxes))
            del ids[:], hexes[:]

    def way(w: Any) -> None:
        try:
            hexes.append(factory.create_linestring(w))
        except (osmium.InvalidLocationError, RuntimeError):  # missing nodes, one point
            pts = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
            hexes.append((struct.pack("<BII", 1, 2, len(pts)) + np.array(pts).tobytes()).hex())
        ids.append(w.id)
        if len(ids) >= WAY_BATCH:
            flush()

    def relation(r: Any) -> None:
        for m in r.members:
            if m.type == "w":
                rel_of.append(r.id)
                members.append(m.ref)

    handler = osmium.SimpleHandler()
    handler.way = way  # type: ignore[attr-defined]
    handler.relation = relation  # type: ignore[attr-defined]
    if spans is None:
        handler.apply_file(source, locations=True, idx="sparse_mem_array")
    else:
        data = _read(source, [(0, header_end), *spans])
        handler.apply_buffer(data, "pbf", locations=True, idx="sparse_mem_array")
    flush()
    pairs = (np.array(rel_of, dtype=np.int64), np.array(members, dtype=np.int64))
    return _Scan(_cat([h[0] for h in hits]), _cat([h[1] for h in hits]), pairs)


def _cat(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    a, b = ([p[k] for p in pairs] or [np.zeros(0, np.int64)] for k in (0, 1))
    return np.concatenate(a).astype(np.int64), np.concatenate(b).astype(np.int64)


def _coordinates(hexes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (M, 2) of hex WKB line strings and the index of the line of each."""
    import shapely

    raw = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8)
    size = np.fromiter(map(len, hexes), dtype=np.int64, count=len(hexes)) // 2
    start = np.cumsum(size) - size
    ok = len(raw) and (raw[start] == 1).all() and (raw[start + 1] == 2).all()
    if not ok or ((size - 9) % 16).any():  # not plain little-endian line strings
        xy, owner = shapely.get_coordinates(shapely.from_wkb(hexes), return_index=True)
        return xy, owner
    body = np.ones(len(raw), dtype=bool)
    body[(start[:, None] + np.arange(9)).ravel()] = False
    xy = np.frombuffer(raw[body].tobytes(), dtype="<f8").reshape(-1, 2)
    return xy, np.repeat(np.arange(len(hexes)), (size - 9) // 16)


def _box_hits(
    ids: np.ndarray, hexes: list[str], boxes: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """For one batch of ways: (way id, box) pairs of the ways with a point in a box, and
    (location key, box) pairs of the points outside a box of the ways that leave it."""
    xy, owner = _coordinates(hexes)
    n_points = np.bincount(owner, minlength=len(ids))
    first = np.cumsum(n_points) - n_points  # the points of a way are consecutive
    e7 = np.rint(xy * 1e7).astype(np.int64)
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
    return _cat(list(zip(t_way, t_box, strict=True))), _cat(list(zip(o_key, o_box, strict=True)))


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


def _plan(boxes: np.ndarray, scan: _Scan) -> SplitPlan:
    """The routing tables of the write pass; a relation goes where one of its ways goes."""
    way_ids, way_boxes = scan.touched
    order = np.argsort(way_ids, kind="stable")
    sorted_ways, sorted_boxes = way_ids[order], way_boxes[order]
    member_rel, member_way = scan.members
    lo = np.searchsorted(sorted_ways, member_way, side="left")
    count = np.searchsorted(sorted_ways, member_way, side="right") - lo
    at = np.repeat(lo - (np.cumsum(count) - count), count) + np.arange(int(count.sum()))
    rel_ids, rel_combo, rel_sets = _group_pairs(np.repeat(member_rel, count), sorted_boxes[at])
    w_ids, w_combo, w_sets = _group_pairs(way_ids, way_boxes)
    n_ids, n_combo, n_sets = _group_pairs(*scan.outside)
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
def _cells(boxes: np.ndarray, wanted: list[int]) -> tuple[tuple[int, ...], dict[int, Any]]:
    """A grid over the boxes ``wanted`` (1e-7°): ``((x0, y0, cw, ch, nx, ny), cells)``, with
    ``cells[iy * nx + ix] = (boxes holding all of it, ((w, s, e, n, box), ...) holding part)``."""
    sub = boxes[wanted]
    x0, y0 = int(sub[:, 0].min()), int(sub[:, 1].min())
    x1, y1 = int(sub[:, 2].max()), int(sub[:, 3].max())
    side = max(1, int(np.min(np.minimum(sub[:, 2] - sub[:, 0], sub[:, 3] - sub[:, 1])) // 4))
    nx = min((x1 - x0) // side + 1, 512)
    ny = min((y1 - y0) // side + 1, 512)
    cw, ch = (x1 - x0) // nx + 1, (y1 - y0) // ny + 1
    full: dict[int, list[int]] = defaultdict(list)
    part: dict[int, list[tuple[int, ...]]] = defaultdict(list)
    for b in wanted:
        w, s, e, n = (int(v) for v in boxes[b])
        for iy in range((s - y0) // ch, (n - y0) // ch + 1):
            for ix in range((w - x0) // cw, (e - x0) // cw + 1):
                cx, cy, k = x0 + ix * cw, y0 + iy * ch, iy * nx + ix
                if w <= cx and cx + cw - 1 <= e and s <= cy and cy + ch - 1 <= n:
                    full[k].append(b)
                else:
                    part[k].append((w, s, e, n, b))
    cells = {k: (tuple(full[k]), tuple(part[k])) for k in full.keys() | part.keys()}
    return (x0, y0, cw, ch, nx, ny), cells


def _write_range(
    source: str,
    header_end: int,
    start: int,
    stop: int,
    plan: SplitPlan,
    wanted: list[int],
    prefix: str,
) -> dict[int, tuple[int, int, int]]:
    """Write the blocks ``start:stop`` of ``source`` into one ``<prefix>-<box>.osm.pbf`` per
    box of ``wanted`` that gets anything; return the nodes, ways, relations written per box."""
    import osmium

    data = _read(source, [(0, header_end), (start, stop)])
    (x0, y0, cw, ch, nx, ny), cells = _cells(plan.boxes_e7, wanted)
    wanted_set = set(wanted)
    combos = [tuple(b for b in c if b in wanted_set) for c in plan.combos]
    outside = dict(zip(plan.outside_keys.tolist(), plan.outside_combo.tolist(), strict=True))
    way_ids, way_combo = plan.way_ids.tolist(), plan.way_combo.tolist()
    rel_ids, rel_combo = plan.relation_ids.tolist(), plan.relation_combo.tolist()
    writers: list[Any] = [None] * len(plan.boxes_e7)
    n_nodes, n_ways, n_rels = [0] * len(writers), [0] * len(writers), [0] * len(writers)
    bufsz = max(2**16, min(2**22, 2**28 // max(1, len(wanted))))

    def open_writer(b: int) -> Any:
        header = osmium.io.Header()
        west, south, east, north = (int(v) / 1e7 for v in plan.boxes_e7[b])
        header.add_box(osmium.osm.Box(west, south, east, north))
        writers[b] = osmium.SimpleWriter(f"{prefix}-{b:05d}.osm.pbf", bufsz, header, overwrite=True)
        return writers[b]

    def node(o: Any) -> None:
        loc = o.location
        x, y = loc.x, loc.y
        ix, iy = (x - x0) // cw, (y - y0) // ch
        hit: tuple[int, ...] = ()
        if 0 <= ix < nx and 0 <= iy < ny:
            cell = cells.get(iy * nx + ix)
            if cell is not None:
                hit, part = cell
                if part:
                    hit += tuple(b for w, s, e, n, b in part if w <= x <= e and s <= y <= n)
        if outside:
            c = outside.get(x * 4294967296 + y)
            if c is not None:
                hit = tuple(sorted({*hit, *combos[c]}))
        for b in hit:
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
        handler.apply_buffer(data, "pbf")
    finally:
        for w in writers:
            if w is not None:
                w.close()
    return {b: (n_nodes[b], n_ways[b], n_rels[b]) for b, w in enumerate(writers) if w is not None}


def _join_parts(folder: Path, boxes: Any, args: list[Any], counts: list[Any]) -> list[Extract]:
    """Join each box's pieces in file order (dropping their headers after the first)."""
    import osmium

    pieces: dict[int, list[Path]] = {b: [] for b in range(len(boxes))}
    totals = np.zeros((len(boxes), 3), dtype=np.int64)
    for a, c in zip(args, counts, strict=True):
        for b, n in sorted(c.items()):
            pieces[b].append(Path(f"{a[6]}-{b:05d}.osm.pbf"))
            totals[b] += n
    extracts = []
    for b, parts in pieces.items():
        path = folder / f"extract-{b:05d}.osm.pbf"
        if parts:
            with open(path, "wb") as dst:
                for k, part in enumerate(parts):
                    data = part.read_bytes()
                    head = 4 + struct.unpack(">I", data[:4])[0]
                    dst.write(data if k == 0 else data[head + _blob_size(data[4:head])[1] :])
                    part.unlink()
        else:  # nothing in this box: a valid file with a header only
            header = osmium.io.Header()
            header.add_box(osmium.osm.Box(*(float(v) for v in boxes[b])))
            osmium.SimpleWriter(str(path), 2**16, header, overwrite=True).close()
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
