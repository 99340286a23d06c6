"""The walkable streets of an OSM PBF read straight into arrays, in one pass over the file.

What pyrosm's ``get_network("walking", nodes=True)`` gives (one edge per pair of consecutive
nodes of each way, the nodes the edges use, in the order of first use), with its walking
filter (after osmnx's ``walk``: no areas, no cycleways or motorways, closed ways by the
``foot`` → ``access`` hierarchy, no private service roads, no streets whose sidewalks are
mapped as separate ways) and its bounding-box rule (a way with a node in the boundary's
bounds, its segments that meet the boundary), built from the blocks as whole arrays
(:mod:`servicecircle.pbf_blocks`) instead of a Python object per way. The same pass says
whether the file holds any building, POI or landuse tag at all, so that a file of streets
alone is not read three more times for none.

:func:`read_walk_ways` returns ``None`` for a file it does not read (plain node messages,
lzma/zstd blobs, a block off the schema): :func:`servicecircle.osm.read_pbf` then reads it
with pyrosm.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._arrays import first_seen, isin_ids
from .geometry import lines_meet
from .pbf_blocks import (
    DenseBlock,
    ElementBlock,
    LocationTable,
    blob_payload,
    delta_runs,
    dense_block,
    element_block,
    fields,
    iter_blobs,
)

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

#: Way tags read: the filter's and the edges' columns.
WAY_TAGS = (
    "highway",
    "name",
    "area",
    "foot",
    "access",
    "service",
    "sidewalk",
    "sidewalk:both",
    "sidewalk:left",
    "sidewalk:right",
)
#: pyrosm's walking filter: a way is left out when one of these tags has one of the values.
EXCLUDED = {
    "area": ("yes",),
    "highway": (
        "abandoned", "construction", "no", "planned", "platform", "proposed", "raceway",
        "razed", "rest_area", "services", "bus_guideway", "cycleway", "motor", "motorway",
        "motorway_link",
    ),
    "service": ("private",),
    "sidewalk": ("separate",),
    "sidewalk:both": ("separate",),
    "sidewalk:left": ("separate",),
    "sidewalk:right": ("separate",),
}  # fmt: skip
#: The access hierarchy of walking: the first of these a way carries decides.
ACCESS_KEYS = ("foot", "access")
CLOSED = ("no", "private")


@dataclass(frozen=True)
class WalkWays:
    """The walk edges (node ids ``u``, ``v``) and their nodes (EPSG:4326 degrees), and what the
    pass saw."""

    u: np.ndarray
    v: np.ndarray
    way_id: np.ndarray
    highway: pd.Series
    name: pd.Series
    node_ids: np.ndarray
    node_lonlat: np.ndarray
    ways_read: int
    ways_left_out: int
    has_features: bool


@dataclass
class _Pass:
    """What the pass over the blocks collects."""

    feature_keys: frozenset[bytes]
    feature_pairs: frozenset[tuple[bytes, bytes]]
    has_features: bool = False

    def __post_init__(self) -> None:
        self.node_parts: list[tuple[np.ndarray, ...]] = []  # (ids, x, y) of each block
        self.way_parts: list[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]]
        self.way_parts = []

    def dense(self, block: DenseBlock) -> None:
        self.node_parts.append((block.ids, block.x, block.y))
        if not self.has_features and block.keys_vals is not None:
            kv = block.keys_vals[block.keys_vals != 0]
            self._features(_strings(block.strings), kv[0::2], kv[1::2])

    def elements(self, block: ElementBlock) -> None:
        strings = _strings(block.strings)
        (keys, key_start), (vals, _) = block.runs[2], block.runs[3]
        if len(keys) != len(vals):
            raise ValueError("keys and values of different lengths")
        if not self.has_features:
            self._features(strings, keys, vals)
        if block.kind != 3:
            return
        n = len(block.ids)
        owner = np.repeat(np.arange(n), np.diff(np.append(key_start, len(keys))))
        table = np.array([s.decode("utf-8", "replace") for s in strings] + [None], dtype=object)
        index = {s: i for i, s in enumerate(strings)}
        tags = {}
        for tag in WAY_TAGS:
            at = np.full(n, len(strings), dtype=np.int64)  # the None at the end: no such tag
            i = index.get(tag.encode())
            if i is not None:
                hit = keys == i
                at[owner[hit]] = vals[hit].astype(np.int64)
            tags[tag] = table[at]
        has_highway = tags["highway"] != None  # noqa: E711 (an object array)
        refs, ref_start = block.runs[8]
        absolute = delta_runs(refs, ref_start)
        lengths = np.diff(np.append(ref_start, len(refs)))
        keep_refs = np.repeat(has_highway, lengths)
        self.way_parts.append(
            (
                block.ids[has_highway],
                {k: t[has_highway] for k, t in tags.items()},
                absolute[keep_refs],
                lengths[has_highway],
            )
        )

    def _features(self, strings: list[bytes], keys: np.ndarray, vals: np.ndarray) -> None:
        """Whether these tags hold a building, POI or landuse tag (see ``FEATURE_TAGS``)."""
        if len(keys) == 0:
            return
        wanted = [i for i, s in enumerate(strings) if s in self.feature_keys]
        if wanted and np.isin(keys, wanted).any():
            self.has_features = True
            return
        paired = {s for s, _ in self.feature_pairs}
        candidates = [i for i, s in enumerate(strings) if s in paired]
        if not candidates:
            return
        hit = np.isin(keys, candidates)
        for k, v in zip(keys[hit].tolist(), vals[hit].tolist(), strict=True):
            if (strings[k], strings[v]) in self.feature_pairs:
                self.has_features = True
                return


def _strings(table: bytes) -> list[bytes]:
    return [bytes(v) for k, v in fields(table) if k == 1]


def read_walk_ways(
    path: Path,
    feature_tags: dict[str, Any],
    walkable: Callable[[pd.DataFrame], np.ndarray],
    boundary: BaseGeometry | None = None,
) -> WalkWays | None:
    """The walk network of ``path`` in one pass; ``None`` when a block is not one read here.

    Parameters
    ----------
    path
        An ``.osm.pbf`` file.
    feature_tags
        The tags of buildings, POIs and landuse (``True`` for any value, or a list of values):
        ``has_features`` says whether any node, way or relation carries one.
    walkable
        Our own filter after pyrosm's, given the ways' tags as a frame
        (:func:`servicecircle.osm.walkable_mask`).
    boundary
        A polygon in degrees: only the ways with a node in its bounds, and of those the
        segments that meet it (pyrosm's ``bounding_box``).
    """
    keys = frozenset(k.encode() for k, v in feature_tags.items() if v is True)
    pairs = frozenset(
        (k.encode(), str(x).encode())
        for k, v in feature_tags.items()
        if isinstance(v, list)
        for x in v
    )
    seen = _Pass(keys, pairs)
    try:
        for _raw, kind, blob in iter_blobs(str(path), [(0, None)]):
            if kind == "OSMHeader":
                continue
            payload = blob_payload(blob) if kind == "OSMData" else None
            if payload is None:
                return None
            dense = dense_block(payload)
            if dense is not None:
                seen.dense(dense)
                continue
            group = element_block(payload, (2, 3, 8))
            if group is None:
                return None
            seen.elements(group)
    except (RuntimeError, ValueError, IndexError, KeyError, zlib.error) as err:  # pyrosm says
        log.debug("%s: not read as arrays (%s: %s); pyrosm reads it", path, type(err).__name__, err)
        return None
    return _edges(seen, walkable, boundary)


def _walkable(
    tags: dict[str, np.ndarray], walkable: Callable[[pd.DataFrame], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``(kept by pyrosm's walking filter, kept by ours too)`` for each highway way."""
    frame = pd.DataFrame({k: pd.array(t, dtype="string") for k, t in tags.items()})
    out = np.zeros(len(frame), dtype=bool)
    for tag, values in EXCLUDED.items():
        out |= _any_of(frame[tag], values)
    decided = np.zeros(len(frame), dtype=bool)
    for tag in ACCESS_KEYS:
        present = frame[tag].notna().to_numpy() & ~decided
        out |= present & _any_of(frame[tag], CLOSED)
        decided |= present
    pyrosm_kept = ~out
    return pyrosm_kept, pyrosm_kept & walkable(frame)


def _any_of(values: pd.Series, wanted: tuple[str, ...]) -> np.ndarray:
    """Whether each value is one of ``wanted``, or lists one among ``;``-separated values."""
    hit = np.array(values.isin(wanted).fillna(False), dtype=bool)
    multi = values.str.contains(";", regex=False).fillna(False).to_numpy(dtype=bool) & ~hit
    for i in np.flatnonzero(multi):
        hit[i] = any(part.strip() in wanted for part in str(values.iloc[i]).split(";"))
    return hit


def _edges(
    seen: _Pass, walkable: Callable[[pd.DataFrame], np.ndarray], boundary: BaseGeometry | None
) -> WalkWays:
    """Segments of the kept ways through their nodes present in the file."""
    parts = seen.way_parts
    way_ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    tags = {
        t: np.concatenate([p[1][t] for p in parts]) if parts else np.zeros(0, object)
        for t in WAY_TAGS
    }
    refs = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64)
    lengths = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, np.int64)
    pyrosm_kept, kept = _walkable(tags, walkable)
    owner = np.repeat(np.arange(len(way_ids)), lengths)
    e7, found = LocationTable(seen.node_parts).lookup(refs)
    lonlat = (e7 * 100).astype(np.float64) / 1e9  # as pyrosm: nanodegrees / 1e9
    use = found & np.repeat(pyrosm_kept, lengths)
    if boundary is not None:  # ways with a node in the bounds (pyrosm's complete ways)
        w, s, e, n = boundary.bounds
        x, y = lonlat[:, 0], lonlat[:, 1]
        in_box = use & (x >= w) & (x <= e) & (y >= s) & (y <= n)
        use &= np.isin(owner, owner[in_box])
    # one segment per pair of consecutive used refs of a way (missing nodes cut through)
    at = np.flatnonzero(use)
    pair = np.flatnonzero(owner[at[1:]] == owner[at[:-1]])
    a, b = at[pair], at[pair + 1]
    seg_way = owner[a]
    # the nodes in the order pyrosm lists them: of first use by a way with a segment
    used = at[np.isin(owner[at], seg_way)]
    first = used[first_seen(refs[used])]
    if boundary is not None and len(a):
        meets = lines_meet(lonlat[a], lonlat[b], boundary)
        a, b, seg_way = a[meets], b[meets], seg_way[meets]
    ways_read = len(np.unique(seg_way))
    walk = kept[seg_way]
    ways_left_out = ways_read - len(np.unique(seg_way[walk]))
    a, b, seg_way = a[walk], b[walk], seg_way[walk]
    first = first[isin_ids(refs[first], np.concatenate([refs[a], refs[b]]))]
    return WalkWays(
        u=refs[a],
        v=refs[b],
        way_id=way_ids[seg_way],
        highway=pd.Series(tags["highway"][seg_way], dtype="string"),
        name=pd.Series(tags["name"][seg_way], dtype="string"),
        node_ids=refs[first],
        node_lonlat=lonlat[first],
        ways_read=ways_read,
        ways_left_out=ways_left_out,
        has_features=seen.has_features,
    )
