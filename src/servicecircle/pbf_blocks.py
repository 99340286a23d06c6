"""OSM PBF blocks read and written with numpy: the blob layout, dense nodes, ways, relations.

A PBF file is a run of blobs (a 4-byte length, a ``BlobHeader``, a ``Blob``), each blob a
zlib-compressed ``PrimitiveBlock`` of protobuf messages (``osmformat.proto``). Most of a city's
file is dense node blocks, every packed field a run of varints; a group of ways or relations
is varints through and through. Here both are decoded as whole arrays (and dense nodes encoded
again, ways and relations copied as they are), so that the split (:mod:`servicecircle.osm_split`)
routes millions of elements without a Python call for each.

Only what is needed is handled: :func:`dense_block` and :func:`element_block` return ``None``
for anything else (plain node messages, a block that does not read as the schema says, a
granularity or offset that is not a whole number of 1e-7° steps), and
:func:`blocks_for_pyosmium` hands such blocks, and lzma/zstd ones, to pyosmium.
"""

from __future__ import annotations

import contextlib
import itertools
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

# DenseInfo fields: (number, delta-coded, zigzag)
_INFO = {
    "version": (1, False, False),
    "timestamp": (2, True, True),
    "changeset": (3, True, True),
    "uid": (4, True, True),
    "user_sid": (5, True, True),
    "visible": (6, False, False),
}


# --------------------------------------------------------------------------- protobuf
def varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """One varint at ``pos``: ``(value, next position)``."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def fields(buf: bytes | memoryview) -> Iterator[tuple[int, Any]]:
    """``(field number, int or bytes)`` of a protobuf message of varint and length fields."""
    pos, view = 0, memoryview(buf)
    while pos < len(view):
        key, pos = varint(view, pos)
        n, pos = varint(view, pos)
        if key & 7 not in (0, 2):
            raise RuntimeError(f"unexpected protobuf wire type {key & 7}")
        yield key >> 3, (view[pos : pos + n] if key & 7 == 2 else n)
        pos += n if key & 7 == 2 else 0


def decode_varints(buf: bytes | memoryview) -> np.ndarray:
    """A packed run of varints as ``uint64`` values."""
    b = np.frombuffer(buf, dtype=np.uint8)
    if len(b) == 0:
        return np.zeros(0, dtype=np.uint64)
    last = b < 0x80
    if not last[-1]:
        raise RuntimeError("truncated varint")
    ends = np.flatnonzero(last)
    if len(ends) == len(b):  # every value below 128: one byte each
        return b.astype(np.uint64)
    starts = np.empty(len(ends), dtype=np.int64)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    pos = np.arange(len(b), dtype=np.int64)
    pos -= np.repeat(starts, ends - starts + 1)
    if pos.max() > 9:
        raise RuntimeError("varint longer than 10 bytes")
    parts = (b & np.uint8(0x7F)).astype(np.uint64) << (pos.astype(np.uint64) * np.uint64(7))
    return np.add.reduceat(parts, starts)


def decode_runs(buffers: list[bytes | memoryview]) -> list[np.ndarray]:
    """Several packed runs of varints, decoded in one pass."""
    joined = b"".join(bytes(x) for x in buffers)
    values = decode_varints(joined)
    counts = [int(np.count_nonzero(np.frombuffer(x, dtype=np.uint8) < 0x80)) for x in buffers]
    return np.split(values, np.cumsum(counts)[:-1]) if buffers else []


def encode_varints(values: np.ndarray) -> bytes:
    """``uint64`` values as a packed run of varints."""
    return b"".join(encode_runs([values]))


def encode_runs(runs: list[np.ndarray]) -> list[bytes]:
    """Several runs of ``uint64`` values as packed varints, encoded in one pass."""
    if not runs or sum(len(r) for r in runs) == 0:
        return [b"" for _ in runs]
    u = np.concatenate([np.asarray(r).astype(np.uint64) for r in runs])
    nbytes = np.ones(len(u), dtype=np.int64)
    for k in range(1, 10):
        nbytes += u >= np.uint64(1 << (7 * k))
    width = int(nbytes.max())
    table = np.empty((len(u), width), dtype=np.uint8)
    for k in range(width):
        table[:, k] = ((u >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        table[:, k] |= (nbytes > k + 1).astype(np.uint8) << 7
    data = table[np.arange(width) < nbytes[:, None]].tobytes()
    at = np.concatenate([[0], np.cumsum(nbytes)])[np.cumsum([0, *(len(r) for r in runs)])]
    return [data[i:j] for i, j in itertools.pairwise(at.tolist())]


def unzigzag(u: np.ndarray) -> np.ndarray:
    return (u >> np.uint64(1)).astype(np.int64) ^ -(u & np.uint64(1)).astype(np.int64)


def zigzag(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    return ((v << 1) ^ (v >> 63)).view(np.uint64)


def _uvarint(value: int) -> bytes:
    """One varint (a negative value as 64-bit two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def message_field(number: int, data: bytes) -> bytes:
    """A length-delimited field."""
    return _uvarint((number << 3) | 2) + _uvarint(len(data)) + data


def varint_field(number: int, value: int) -> bytes:
    """A varint field (negative values as 64-bit two's complement)."""
    return _uvarint(number << 3) + _uvarint(value)


# --------------------------------------------------------------------------- blobs
def blob_header(header: bytes) -> tuple[str, int]:
    """``(type, datasize)`` of a BlobHeader."""
    f = dict(fields(header))
    return bytes(f.get(1, b"")).decode("ascii", "replace"), int(f.get(3, -1))


def blob_payload(blob: bytes | memoryview) -> bytes | None:
    """The uncompressed block of a Blob, or ``None`` when it is lzma/lz4/zstd."""
    f = dict(fields(blob))
    if 1 in f:
        return bytes(f[1])
    if 3 in f:
        return zlib.decompress(f[3])
    return None


def read_spans(source: str, spans: list[tuple[int, int]]) -> bytes:
    """The bytes of the ``spans`` of a file, one after the other."""
    parts = []
    with open(source, "rb") as f:
        for a, b in spans:
            f.seek(a)
            parts.append(f.read(b - a))
    return b"".join(parts)


def iter_blobs(
    source: str, spans: list[tuple[int, int | None]]
) -> Iterator[tuple[bytes, str, memoryview]]:
    """``(whole blob, type, Blob bytes)`` of each blob of the ``spans`` of a file (each a run
    of whole blobs; an end of ``None``: to the end of the file), read one at a time."""
    with open(source, "rb") as f:
        for a, b in spans:
            f.seek(a)
            while b is None or f.tell() < b:
                head = f.read(4)
                if len(head) < 4:
                    if head or b is not None:
                        raise RuntimeError("truncated blob length")
                    break
                (size,) = struct.unpack(">I", head)
                header = f.read(size)
                kind, datasize = blob_header(header)
                body = f.read(datasize)
                if datasize < 0 or len(body) < datasize:
                    raise RuntimeError("truncated blob")
                raw = head + header + body
                yield raw, kind, memoryview(raw)[4 + size :]


def osm_data_blob(block: bytes, level: int = 1) -> bytes:
    """A whole ``OSMData`` blob (length, BlobHeader, zlib Blob) holding ``block``, compressed
    with zlib's run-length strategy: an extract is read once, soon after, and a block's
    varints compress little anyway (on a city's blocks: 160 MB/s to 75 % of the size, against
    75 MB/s to 65 % with the default strategy at level 1)."""
    packer = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_RLE)
    data = packer.compress(block) + packer.flush()
    blob = varint_field(2, len(block)) + message_field(3, data)
    header = message_field(1, b"OSMData") + varint_field(3, len(blob))
    return struct.pack(">I", len(header)) + header + blob


# --------------------------------------------------------------------------- dense nodes
@dataclass(frozen=True)
class DenseBlock:
    """The dense nodes of one block: ids, coordinates in 1e-7° (what osmium calls ``x``/``y``),
    their tags (``keys_vals`` and where each node's part starts), DenseInfo arrays, and the
    block's string table and settings to write a part of it back."""

    strings: bytes
    settings: bytes
    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    keys_vals: np.ndarray | None
    kv_start: np.ndarray | None
    info: dict[str, np.ndarray]

    def subset(self, rows: np.ndarray) -> bytes:
        """A whole PBF blob with the nodes at ``rows`` (in their order); coordinates are written
        in 1e-7° steps with no offset (the default granularity)."""
        runs = {1: zigzag(np.diff(self.ids[rows], prepend=0))}
        for name, (number, delta, zz) in _INFO.items():
            if name in self.info:
                v = self.info[name][rows]
                v = np.diff(v, prepend=0) if delta else v
                runs[100 + number] = zigzag(v) if zz else v
        runs[8] = zigzag(np.diff(self.y[rows], prepend=0))
        runs[9] = zigzag(np.diff(self.x[rows], prepend=0))
        if self.keys_vals is not None and self.kv_start is not None:
            ends = np.append(self.kv_start[1:], len(self.keys_vals))
            lengths = ends[rows] - self.kv_start[rows]
            at = np.repeat(self.kv_start[rows] - (np.cumsum(lengths) - lengths), lengths)
            runs[10] = self.keys_vals[at + np.arange(int(lengths.sum()))]
        packed = dict(zip(runs, encode_runs(list(runs.values())), strict=True))
        info = b"".join(message_field(k - 100, v) for k, v in packed.items() if k > 100)
        dense = message_field(1, packed[1]) + (message_field(5, info) if self.info else b"")
        dense += b"".join(message_field(k, packed[k]) for k in (8, 9, 10) if k in packed)
        group = message_field(2, dense)
        block = message_field(1, self.strings) + message_field(2, group) + self.settings
        return osm_data_blob(block)


def dense_block(block: bytes) -> DenseBlock | None:
    """The dense nodes of an uncompressed PrimitiveBlock, or ``None`` when the block holds
    anything else (or coordinates that are not whole 1e-7° steps)."""
    f = list(fields(block))
    groups = [v for k, v in f if k == 2]
    top = dict((k, v) for k, v in f if k != 2)
    granularity = int(top.get(17, 100))
    lat_off, lon_off = (int(np.uint64(top.get(k, 0)).view(np.int64)) for k in (19, 20))
    if len(groups) != 1 or granularity % 100 or lat_off % 100 or lon_off % 100:
        return None
    group = groups[0]
    if len(group) == 0:
        return None
    key, pos = varint(group, 0)
    size, pos = varint(group, pos)
    if key != (2 << 3) | 2 or pos + size != len(group):  # not one DenseNodes and nothing else
        return None
    d = dict(fields(group[pos:]))
    raw_info = dict(fields(d[5])) if 5 in d else {}
    wanted = [(k, d.get(k, b"")) for k in (1, 8, 9, 10) if k in d or k < 10]
    wanted += [(100 + n, raw_info[n]) for n, _, _ in _INFO.values() if n in raw_info]
    runs = dict(zip((k for k, _ in wanted), decode_runs([v for _, v in wanted]), strict=True))
    ids = np.cumsum(unzigzag(runs[1]))
    lat = np.cumsum(unzigzag(runs[8]))
    lon = np.cumsum(unzigzag(runs[9]))
    if not len(ids) == len(lat) == len(lon):
        raise RuntimeError("dense nodes with ids, lats and lons of different lengths")
    step = granularity // 100
    keys_vals = kv_start = None
    if 10 in runs:
        keys_vals = runs[10]
        ends = np.flatnonzero(keys_vals == 0)
        if len(ends) != len(ids):  # a value may be string 0 too: left to pyosmium
            return None
        kv_start = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    info: dict[str, np.ndarray] = {}
    for name, (number, delta, zz) in _INFO.items():
        if 100 + number in runs:
            v = runs[100 + number]
            v = unzigzag(v) if zz else v.astype(np.int64)
            info[name] = np.cumsum(v) if delta else v
    settings = varint_field(18, int(top[18])) if 18 in top else b""
    return DenseBlock(
        strings=bytes(top.get(1, b"")),
        settings=settings,
        ids=ids,
        x=lon * step + lon_off // 100,
        y=lat * step + lat_off // 100,
        keys_vals=keys_vals,
        kv_start=kv_start,
        info=info,
    )


# --------------------------------------------------------------------------- ways, relations
@dataclass(frozen=True)
class ElementBlock:
    """The ways (``kind`` 3) or relations (4) of one block: each element's id, its bytes (kept
    to be copied as they are) and the packed fields asked for, decoded."""

    strings: bytes
    settings: bytes
    kind: int
    data: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    ids: np.ndarray
    runs: dict[int, tuple[np.ndarray, np.ndarray]]

    def subset(self, rows: np.ndarray) -> bytes:
        """A whole PBF blob with the elements at ``rows``, their bytes as they were."""
        lengths = self.stop[rows] - self.start[rows]
        at = np.repeat(self.start[rows] - (np.cumsum(lengths) - lengths), lengths)
        group = self.data[at + np.arange(int(lengths.sum()))].tobytes()
        block = message_field(1, self.strings) + message_field(2, group) + self.settings
        return osm_data_blob(block)


def element_block(block: bytes, wanted: tuple[int, ...] = ()) -> ElementBlock | None:
    """The ways or relations of an uncompressed PrimitiveBlock with the packed fields
    ``wanted`` (e.g. 8 for a way's refs; 9 and 10 for a relation's member ids and types) as
    ``(values, start of each element's run)``; ``None`` for any other block."""
    f = list(fields(block))
    groups = [v for k, v in f if k == 2]
    if len(groups) != 1 or len(groups[0]) == 0:
        return None
    data = np.frombuffer(groups[0], dtype=np.uint8)
    try:
        walked = _walk(data, wanted)
    except (RuntimeError, IndexError, ValueError):  # not a run of varint messages
        return None
    if walked is None:
        return None
    kind, start, stop, ids, runs = walked
    if (
        kind == 4
        and 9 in runs
        and 10 in runs
        and (len(runs[9][0]) != len(runs[10][0]) or not np.array_equal(runs[9][1], runs[10][1]))
    ):
        return None  # member ids and types that do not pair up
    top = [(k, v) for k, v in f if k in (17, 18, 19, 20)]
    return ElementBlock(
        strings=bytes(dict(f).get(1, b"")),
        settings=b"".join(varint_field(k, int(v)) for k, v in top),
        kind=kind,
        data=data,
        start=start,
        stop=stop,
        ids=ids,
        runs=runs,
    )


def _walk(data: np.ndarray, wanted: tuple[int, ...]) -> tuple[Any, ...] | None:
    """Every message of a group of ways or relations, all fields varints or packed varints:
    the bytes are read as one run of varints and walked field by field, all elements at once."""
    value = decode_varints(data.data)
    last = np.flatnonzero(data < 0x80)
    t_start = np.concatenate([[0], last[:-1] + 1])  # first byte of each token
    t_end = last + 1
    n = len(value)

    # the token after a length-delimited field at each token (were it one)
    payload_end = t_end[1:] + np.minimum(value[1:], np.uint64(len(data))).astype(np.int64)
    jump = np.append(np.searchsorted(t_start, payload_end), n)
    exact = np.append(np.append(t_start, len(data))[jump[:-1]] == payload_end, False)
    # the group: one key, length and message per element, one after the other
    key = int(value[0])
    if key not in ((3 << 3) | 2, (4 << 3) | 2):
        return None
    hops = memoryview(jump.astype(np.int64).data)  # a Python int per element, not per token
    heads, t = [], 0
    while t < n:
        heads.append(t)
        t = hops[t]
    heads_arr = np.array(heads, dtype=np.int64)
    if (value[heads_arr] != key).any() or not exact[heads_arr].all():
        return None
    ends = np.append(heads_arr[1:], n)
    if t != n or t_end[-1] != len(data):
        return None
    ids = np.zeros(len(heads_arr), dtype=np.int64)
    spans = {w: (np.zeros(len(heads_arr), np.int64), np.zeros(len(heads_arr), np.int64))
             for w in wanted}  # fmt: skip
    cur = heads_arr + 2
    live = cur < ends
    while live.any():
        i = cur[live]
        k = value[i].astype(np.int64)
        field, wire = k >> 3, k & 7
        if ((wire != 0) & (wire != 2)).any():
            return None
        delim = wire == 2
        if not exact[i[delim]].all():  # a length that ends inside a varint: not this schema
            return None
        nxt = np.where(delim, jump[i], i + 2)
        rows = np.flatnonzero(live)
        is_id = (field == 1) & (wire == 0)
        ids[rows[is_id]] = value[i[is_id] + 1].astype(np.int64)
        for w in wanted:
            sel = (field == w) & delim
            spans[w][0][rows[sel]] = i[sel] + 2
            spans[w][1][rows[sel]] = nxt[sel]
        cur[rows] = nxt
        live = cur < ends
    if (cur != ends).any():
        return None
    runs = {}
    for w, (a, b) in spans.items():
        lengths = np.maximum(b - a, 0)
        at = np.repeat(a - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
        runs[w] = (value[at], np.cumsum(lengths) - lengths)
    start, stop = t_start[heads_arr], np.append(t_start[heads_arr[1:]], len(data))
    return key >> 3, start, stop, ids, runs


def delta_runs(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Zigzag delta-coded runs (one per element, starting at ``starts``) as absolute values."""
    v = unzigzag(values)
    total = np.cumsum(v)
    if len(v) == 0:
        return total
    first = np.zeros(len(v), dtype=bool)
    first[starts[starts < len(v)]] = True
    run = np.maximum.accumulate(np.where(first, np.arange(len(v)), 0))  # each value's run start
    return total - (total - v)[run]


# --------------------------------------------------------------------------- routing
class LocationTable:
    """Node locations (1e-7°) by id, sorted once (not at all when they come sorted, as the
    blocks of a file sorted by id do)."""

    def __init__(self, parts: list[tuple[np.ndarray, ...]]) -> None:
        ids, x, y = (np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, np.int64)
                     for k in range(3))  # fmt: skip
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
            order = np.argsort(ids, kind="stable")
            ids, x, y = ids[order], x[order], y[order]
        self.ids = ids
        self.e7 = np.empty((len(ids), 2), dtype=np.int64)
        self.e7[:, 0], self.e7[:, 1] = x, y

    def lookup(self, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The locations of ``refs`` and which of them are in the table (sorted first: the
        look-ups then walk the table in order)."""
        if len(self.ids) == 0:
            return np.zeros((len(refs), 2), np.int64), np.zeros(len(refs), dtype=bool)
        order = np.argsort(refs, kind="stable")
        pos = np.empty(len(refs), dtype=np.int64)
        pos[order] = np.minimum(np.searchsorted(self.ids, refs[order]), len(self.ids) - 1)
        return self.e7[pos], self.ids[pos] == refs


def blocks_for_pyosmium(
    source: str,
    header_end: int,
    spans: list[tuple[int, int]] | None,
    dense: Callable[[Any], None],
    elements: Callable[[Any], None] | None = None,
    element_fields: tuple[int, ...] = (),
    chunk_bytes: int = 64 * 2**20,
    keep_order: bool = True,
) -> Iterator[bytes]:
    """The blobs of ``spans`` (``None``: all after the header): each dense node block handed to
    ``dense`` and, with ``elements``, each block of ways or relations to it (with the packed
    ``element_fields`` decoded); the others yielded as PBF buffers (the file's header and up to
    ``chunk_bytes`` of blobs) for pyosmium. With ``keep_order``, once one block has gone to
    pyosmium so do all later ways and relations: what is written from both keeps nodes before
    ways before relations."""
    header = read_spans(source, [(0, header_end)])
    rest: list[bytes] = []
    size, sent = 0, False
    for raw, kind, blob in iter_blobs(source, spans or [(header_end, None)]):  # type: ignore[arg-type]
        payload = blob_payload(blob) if kind == "OSMData" else None
        block = group = None
        with contextlib.suppress(RuntimeError, IndexError, ValueError):  # pyosmium will say
            block = dense_block(payload) if payload is not None else None
            if block is None and elements is not None and payload is not None and not sent:
                group = element_block(payload, element_fields)
        if block is not None:
            dense(block)
            continue
        if group is not None and elements is not None:
            elements(group)
            continue
        rest.append(raw)
        size += len(raw)
        sent = keep_order
        if size > chunk_bytes:
            yield header + b"".join(rest)
            rest, size = [], 0
    if rest:
        yield header + b"".join(rest)
