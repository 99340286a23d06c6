"""PBF blocks as arrays: varints against Python's own arithmetic, dense node blocks against
pyosmium (libosmium) reading the same file and reading back what was written."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicecircle import pbf_blocks as pb


def python_varints(values: list[int]) -> bytes:
    out = bytearray()
    for v in values:
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1), st.sampled_from([127, 128])),
        max_size=60,
    )
)
def test_varints_match_a_plain_python_encoder_both_ways(values):
    encoded = pb.encode_varints(np.array(values, dtype=np.uint64))
    assert encoded == python_varints(values)
    assert pb.decode_varints(encoded).tolist() == values


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=40))
def test_zigzag_round_trips(values):
    v = np.array(values, dtype=np.int64)
    assert np.array_equal(pb.unzigzag(pb.zigzag(v)), v)


@given(st.lists(st.lists(st.integers(0, 2**40), max_size=8), max_size=6))
def test_several_runs_encode_and_decode_as_each_alone(runs):
    arrays = [np.array(r, dtype=np.uint64) for r in runs]
    packed = pb.encode_runs(arrays)
    assert packed == [pb.encode_varints(a) for a in arrays]
    assert [a.tolist() for a in pb.decode_runs(packed)] == runs


def test_a_truncated_varint_is_an_error():
    with pytest.raises(RuntimeError, match="truncated varint"):
        pb.decode_varints(b"\x81\x82")


def write_nodes(path, n=300, seed=3):
    """Nodes with sparse ids, negative and positive coordinates, tags on some and metadata."""
    import osmium

    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(10**10, n, replace=False) + 1)
    lon = rng.uniform(-179.9, 179.9, n).round(7)
    lat = rng.uniform(-89.9, 89.9, n).round(7)
    when = dt.datetime(2021, 5, 1, tzinfo=dt.UTC)
    with osmium.SimpleWriter(str(path)) as w:
        for k in range(n):
            tags = {"amenity": "cafe", "name": f"店{k}"} if k % 3 == 0 else {}
            w.add_node(
                osmium.osm.mutable.Node(
                    id=int(ids[k]),
                    location=(float(lon[k]), float(lat[k])),
                    tags=tags,
                    version=k % 5 + 1,
                    changeset=1000 + k,
                    uid=k % 7,
                    user=f"u{k % 7}",
                    timestamp=when + dt.timedelta(seconds=int(k)),
                )
            )
        w.add_way(osmium.osm.mutable.Way(id=1, nodes=[int(ids[0]), int(ids[1])], tags={"a": "b"}))


def osmium_nodes(path):
    import osmium

    return {
        n.id: (n.location.x, n.location.y, dict(n.tags), n.version, n.changeset, n.uid, n.user,
               n.timestamp)
        for n in osmium.FileProcessor(str(path), osmium.osm.NODE)
    }  # fmt: skip


def test_dense_blocks_read_as_osmium_reads_them_and_a_subset_reads_back(tmp_path):
    """Oracle: pyosmium on the same file; the blob of a subset, behind the file's header, is a
    file pyosmium reads with exactly those nodes, their tags and metadata."""
    src = tmp_path / "nodes.osm.pbf"
    write_nodes(src)
    want = osmium_nodes(src)
    data = src.read_bytes()
    blocks, header = [], None
    for raw, kind, blob in pb.iter_blobs(str(src), [(0, None)]):
        if kind == "OSMHeader":
            header = raw
            continue
        block = pb.dense_block(pb.blob_payload(blob))
        if block is not None:
            blocks.append(block)
    assert header is not None and data.startswith(header)
    assert sum(len(b.ids) for b in blocks) == len(want)  # the way's block is not dense: None
    for b in blocks:
        for i, nid in enumerate(b.ids.tolist()):
            assert (b.x[i], b.y[i]) == want[nid][:2]
    rows = np.flatnonzero(blocks[0].ids % 2 == 1)
    out = tmp_path / "subset.osm.pbf"
    out.write_bytes(header + blocks[0].subset(rows))
    got = osmium_nodes(out)
    assert got == {int(blocks[0].ids[r]): want[int(blocks[0].ids[r])] for r in rows}
    assert len(got) == len(rows) > 0


def test_a_block_with_ways_is_not_read_as_dense_nodes(tmp_path):
    src = tmp_path / "nodes.osm.pbf"
    write_nodes(src, n=5)
    kinds = [
        pb.dense_block(pb.blob_payload(blob)) is not None
        for _, kind, blob in pb.iter_blobs(str(src), [(0, None)])
        if kind == "OSMData"
    ]
    assert kinds == [True, False]


def write_ways(path, seed=5):
    """Ways with random node ids (some far apart, deltas of every size), tags, metadata, and
    relations with node, way and relation members."""
    import osmium

    rng = np.random.default_rng(seed)
    ways = {
        int(w): [int(x) for x in rng.choice(10**11, int(rng.integers(1, 30)), replace=False) + 1]
        for w in np.sort(rng.choice(10**9, 400, replace=False) + 1)
    }
    rels = {
        r: [("w" if k % 3 else "n", int(k * 7919 + r), "outer") for k in range(r % 5 + 1)]
        + [("r", 1, "sub")]
        for r in range(1, 60)
    }
    with osmium.SimpleWriter(str(path)) as w:
        for wid, refs in ways.items():
            w.add_way(
                osmium.osm.mutable.Way(
                    id=wid, nodes=refs, tags={"highway": "footway", "name": f"路{wid}"}, version=2
                )
            )
        for rid, members in rels.items():
            w.add_relation(
                osmium.osm.mutable.Relation(id=rid, members=members, tags={"type": "route"})
            )
    return ways, rels


def test_ways_and_relations_read_as_arrays_and_copied_as_they_are(tmp_path):
    """Oracle: pyosmium's own reading, and its reading of a subset block."""
    import osmium

    src = tmp_path / "ways.osm.pbf"
    ways, rels = write_ways(src)
    header, blocks = None, []
    for raw, kind, blob in pb.iter_blobs(str(src), [(0, None)]):
        if kind == "OSMHeader":
            header = raw
        else:
            blocks.append(pb.element_block(pb.blob_payload(blob), (8, 9, 10)))
    assert all(b is not None for b in blocks) and {b.kind for b in blocks} == {3, 4}
    got_ways, got_rels = {}, {}
    for b in blocks:
        field = 8 if b.kind == 3 else 9
        values, starts = b.runs[field]
        refs = pb.delta_runs(values, starts)
        ends = np.append(starts[1:], len(values))
        for k, oid in enumerate(b.ids.tolist()):
            run = refs[starts[k] : ends[k]].tolist()
            if b.kind == 3:
                got_ways[oid] = run
            else:
                types = b.runs[10][0][starts[k] : ends[k]].tolist()
                got_rels[oid] = [("nwr"[t], m) for t, m in zip(types, run, strict=True)]
    assert got_ways == ways
    assert got_rels == {r: [(t, m) for t, m, _ in ms] for r, ms in rels.items()}
    rows = np.flatnonzero(blocks[0].ids % 3 == 0)
    out = tmp_path / "subset.osm.pbf"
    out.write_bytes(header + blocks[0].subset(rows))
    back = {
        w.id: ([n.ref for n in w.nodes], dict(w.tags), w.version)
        for w in osmium.FileProcessor(str(out))
    }
    want = {int(blocks[0].ids[r]) for r in rows}
    assert (
        back == {w: (ways[w], {"highway": "footway", "name": f"路{w}"}, 2) for w in want}
        and len(back) == len(rows) > 0
    )


@given(st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=6), max_size=8))
def test_delta_runs_restart_at_each_element(runs):
    deltas = [np.diff(np.array(r, dtype=np.int64), prepend=0) for r in runs]
    values = pb.zigzag(np.concatenate(deltas)) if runs else np.zeros(0, np.uint64)
    starts = np.cumsum([0, *(len(r) for r in runs)])[:-1].astype(np.int64)
    assert pb.delta_runs(values, starts).tolist() == [x for r in runs for x in r]


def test_blocks_off_the_schema_are_left_to_pyosmium():
    """A value at string 0 in keys_vals, an empty group, a length ending inside a varint: not
    read as arrays (``None``), never misread."""
    strings = pb.message_field(1, pb.message_field(1, b"") + pb.message_field(1, b"k"))
    ids, lat, lon = (pb.encode_varints(pb.zigzag(np.array(v))) for v in ([1, 1], [0, 0], [0, 0]))
    kv = pb.encode_varints(np.array([1, 0, 0, 0], dtype=np.uint64))  # k="" | (none)
    dense = b"".join(pb.message_field(k, v) for k, v in ((1, ids), (8, lat), (9, lon), (10, kv)))
    block = strings + pb.message_field(2, pb.message_field(2, dense))
    assert pb.dense_block(block) is None
    assert pb.dense_block(strings + pb.message_field(2, b"")) is None
    assert pb.element_block(strings + pb.message_field(2, b"")) is None
    # a way: an unknown field of 1 byte whose length says 1, then id 5 and refs — but the
    # group's length prefix claims one byte less than the way holds
    way = pb.varint_field(1, 5) + pb.message_field(8, pb.encode_varints(np.array([2, 2])))
    bad = pb.message_field(3, way)[:-1] + b"\x02"
    assert pb.element_block(strings + pb.message_field(2, bad[:-2])) is None


def test_a_split_survives_an_empty_group_and_reads_the_rest(tmp_path):
    """A block with an empty group (valid, and pyosmium reads past it) does not stop the
    split: the extract holds what the file holds."""
    import osmium

    from servicecircle.osm_split import split_pbf

    src = tmp_path / "nodes.osm.pbf"
    write_nodes(src, n=50)
    raws = [raw for raw, _, _ in pb.iter_blobs(str(src), [(0, None)])]
    strings = pb.message_field(1, pb.message_field(1, b""))
    empty = pb.osm_data_blob(strings + pb.message_field(2, b""))
    odd = tmp_path / "odd.osm.pbf"
    odd.write_bytes(raws[0] + empty + b"".join(raws[1:]))
    result = split_pbf(odd, [(-180.0, -90.0, 180.0, 90.0)], tmp_path)
    got = {n.id for n in osmium.FileProcessor(str(result.extracts[0].path), osmium.osm.NODE)}
    assert got == set(osmium_nodes(src)) and result.extracts[0].ways == 1


def test_location_table_finds_nodes_from_sorted_or_unsorted_parts():
    """Parts in id order (a sorted file) are taken as they are, others sorted first; a node
    given twice is found where it was first given; a missing one is not found."""
    from servicecircle.pbf_blocks import LocationTable

    ids = np.array([5, 9, 12_000_000_000, 40], dtype=np.int64)
    x, y = ids * 10 + 1, ids * 10 + 2
    sorted_parts = [(ids[:2], x[:2], y[:2]), (np.sort(ids[2:]), np.sort(x[2:]), np.sort(y[2:]))]
    unsorted_parts = [(ids[::-1], x[::-1], y[::-1])]
    refs = np.array([40, 7, 5, 12_000_000_000, 9, 40], dtype=np.int64)
    for parts in (sorted_parts, unsorted_parts):
        e7, found = LocationTable(parts).lookup(refs)
        assert found.tolist() == [True, False, True, True, True, True]
        assert e7[found].tolist() == [[r * 10 + 1, r * 10 + 2] for r in refs[found]]
    twice = [(np.array([3, 1, 3]), np.array([30, 10, 31]), np.array([0, 0, 0]))]
    e7, found = LocationTable(twice).lookup(np.array([3, 1]))
    assert found.all() and e7[:, 0].tolist() == [30, 10]
    assert not LocationTable([]).lookup(np.array([1]))[1].any()
